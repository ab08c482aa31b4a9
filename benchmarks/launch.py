"""Starting the extender as a user starts it, for the benchmarks, the demo and the tests.

``running_server`` runs ``python -m extender serve`` (gunicorn, one gthread worker) on free
loopback ports until its block ends; ``Server`` says where it listens and finds its processes.
Standard library only, so that ``benchmarks.demo`` runs in the runtime venv (``scripts/demo``:
requirements.txt, without the benchmarks' own dependencies); ``benchmarks.harness`` re-exports
all of it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class BenchmarkError(RuntimeError):
    """A wrong answer or a server that would not start: the figures would be meaningless."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    host: str
    port: int
    master_pid: int
    log: Any  # the temporary file holding the server's output
    ops_port: int = 0  # the operations listener (probes, /metrics); 0: the verbs port serves them

    @property
    def url(self) -> str:
        """The verbs listener."""
        return f"http://{self.host}:{self.port}"

    @property
    def ops_url(self) -> str:
        """The operations listener: /livez, /readyz, /metrics (and /debug/*, /explain if enabled)."""
        return f"http://{self.host}:{self.ops_port or self.port}"

    def worker_pid(self) -> int | None:
        """The gunicorn worker: the child of the master (= the process we started, since
        ``python -m extender serve`` execs gunicorn)."""
        children = children_of(self.master_pid)
        return min(children) if children else None

    def cache_pids(self) -> list[int]:
        """The worker's own children: the cache process (``EXTENDER_CACHE_PROCESS``) and
        multiprocessing's resource tracker; none when the cache runs in the worker."""
        worker = self.worker_pid()
        return children_of(worker) if worker is not None else []

    def log_tail(self, limit: int = 3000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc; empty where /proc is unusable)."""
    return [child for child, ppid in _processes() if ppid == pid]


def _processes() -> Iterator[tuple[int, int]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                yield int(entry.name), int(fields[1])


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on; the command name may contain spaces."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


@contextlib.contextmanager
def running_server(
    *args: str,
    env: dict[str, str] | None = None,
    timeout_s: float = 60.0,
    command: Sequence[str] = (),
    cwd: Path = ROOT,
) -> Iterator[Server]:
    """``python -m extender serve --host 127.0.0.1 --port <free> --ops-port <free> ARGS`` until
    the block ends: the production layout, verbs and operations on listeners of their own (ARGS
    may say ``--ops-port 0``). ``env``: extra ``EXTENDER_*`` variables; the caller's own are
    dropped. ``command`` in place of ``python -m extender serve`` (the installed command, the
    image's entrypoint), run in ``cwd``. Tests use it too."""
    port, ops_port, rest = free_port(), free_port(), list(args)
    while ops_port == port:
        ops_port = free_port()
    if "--ops-port" in rest:  # the caller's choice, in place of a free port
        at = rest.index("--ops-port")
        ops_port = int(rest[at + 1])
        del rest[at : at + 2]
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTENDER_")}
    env.update(extra)
    log = tempfile.TemporaryFile(prefix="extender-bench-")  # never an unread pipe
    cmd = [*(command or (sys.executable, "-m", "extender", "serve")), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--ops-port", str(ops_port), *rest]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server("127.0.0.1", port, proc.pid, log, ops_port)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise BenchmarkError(f"extender exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(f"{server.ops_url}/livez", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchmarkError(
                        f"extender not live after {timeout_s:.0f} s:\n{server.log_tail()}"
                    ) from None
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
