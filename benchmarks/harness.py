"""What the HTTP benchmarks share: the server under test, kube-scheduler's way of calling it,
the answer checks, request bodies, statistics, machine facts and report helpers.

The server is started exactly as a user starts it (``python -m extender serve``: gunicorn, one
gthread worker) and called over loopback the way kube-scheduler calls an extender: one call at
a time on a keep-alive connection, ``Content-Type: application/json`` and a known
``Content-Length``. Used by ``latency`` (with ``driver``), ``workers`` and ``names``; imports
none of them.
"""

import argparse
import contextlib
import datetime
import gc
import http.client
import os
import platform
import re
import shlex
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson

from benchmarks import k8s_objects
from benchmarks.launch import BenchmarkError, Server, _stat_fields
from benchmarks.launch import children_of as children_of
from benchmarks.launch import free_port as free_port
from benchmarks.launch import running_server as running_server

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results"
WARMUP_CALLS = 3
_SERVER_TIMING = re.compile(r"(?:^|,)\s*app;dur=([0-9.]+)")
_SERVER_CPU = re.compile(r"(?:^|,)\s*cpu;dur=([0-9.]+)")


# --- the server under test (started by benchmarks.launch) -------------------------------------


@dataclass(frozen=True)
class ProcCounters:
    """CPU time (all threads, clock-tick resolution) and minor page faults of a process."""

    user_s: float
    system_s: float
    minor_faults: int


def proc_status_kb(pid: int | None, key: str) -> float | None:
    """One ``kB`` field of /proc/<pid>/status (``VmRSS``, ``VmHWM``); None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def proc_counters(pid: int | None) -> ProcCounters | None:
    """From /proc/<pid>/stat (utime, stime, minflt); None where /proc is unusable."""
    fields = _stat_fields(pid) if pid is not None else None
    if fields is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return ProcCounters(int(fields[11]) / tick, int(fields[12]) / tick, int(fields[7]))


def runqueue_wait_s(pid: int | None) -> float | None:
    """Seconds the process's threads spent runnable but waiting for a CPU, summed over its
    threads (/proc/<pid>/task/*/schedstat, second field, ns). A call that is slow while the
    server's own CPU time per call is not was waiting for a core: this says how long. None
    where /proc is unusable; threads that ended are not counted."""
    if pid is None:
        return None
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended meanwhile
    return total / 1e9


def metric_value(server: Server, name: str) -> float | None:
    """One unlabelled sample from /metrics (None when absent)."""
    with urllib.request.urlopen(f"{server.ops_url}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


# --- the client: kube-scheduler's way of calling ----------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes | bytearray
    wall_ms: float  # request sent -> whole response read
    server_ms: float | None  # Server-Timing: app;dur=<ms>
    server_cpu_ms: float | None = None  # Server-Timing: cpu;dur=<ms>, the answering thread's CPU


class CallTimeout(Exception):
    """A call that did not end within its deadline: kube-scheduler's extender ``httpTimeout``
    (Go's ``http.Client.Timeout``: connect, request and reading the whole answer)."""

    def __init__(self, path: str, wall_ms: float, deadline_s: float) -> None:
        super().__init__(f"POST {path}: no complete answer within {deadline_s:g} s ({wall_ms:,.0f} ms)")
        self.wall_ms = wall_ms


READ_CHUNK = 1 << 20  # with a deadline, answers are read this much at a time, the time left re-armed


class Client:
    """One keep-alive connection, one call at a time (concurrency 1)."""

    def __init__(self, host: str, port: int, timeout_s: float = 120.0) -> None:
        self.timeout_s = timeout_s
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout_s)  # sets TCP_NODELAY

    def post(self, path: str, body: bytes, *, deadline_s: float | None = None) -> Reply:
        """POST ``body``; with ``deadline_s`` the whole exchange (connect, send, the whole answer
        read) must end within it, else the connection is closed and CallTimeout raised, as Go's
        ``http.Client.Timeout`` does. Every socket operation is bounded by the time left, so a
        stalled server costs about the deadline, never a hang; an answer completed late counts
        as a timeout too (the scheduler would have given up on it)."""
        conn = self.conn
        start = time.perf_counter()
        limit = None if deadline_s is None else start + deadline_s
        try:
            self._arm(limit)
            # Headers, then the body in one sendall: http.client's request() would first copy a
            # bytes body onto the headers (a 60 MB memcpy inside the timed region).
            conn.putrequest("POST", path, skip_accept_encoding=True)
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
            conn.putheader("Accept-Encoding", "gzip")  # as Go's transport sends it
            conn.endheaders()
            conn.send(body)
            self._arm(limit)
            resp = conn.getresponse()
            data = resp.read() if limit is None else self._read(resp, limit)
        except TimeoutError:
            if deadline_s is None:
                raise
            conn.close()
            raise CallTimeout(path, (time.perf_counter() - start) * 1e3, deadline_s) from None
        wall_ms = (time.perf_counter() - start) * 1e3
        if deadline_s is not None and wall_ms > deadline_s * 1e3:
            raise CallTimeout(path, wall_ms, deadline_s)
        header = resp.getheader("Server-Timing") or ""
        timing, cpu = _SERVER_TIMING.search(header), _SERVER_CPU.search(header)
        return Reply(
            resp.status,
            data,
            wall_ms,
            float(timing.group(1)) if timing else None,
            float(cpu.group(1)) if cpu else None,
        )

    def _arm(self, limit: float | None) -> None:
        """Socket timeout: the time left before ``limit`` (None: the client's own timeout)."""
        timeout = self.timeout_s if limit is None else limit - time.perf_counter()
        if timeout <= 0:
            raise TimeoutError("deadline passed")
        self.conn.timeout = timeout  # for a (re)connect
        if self.conn.sock is not None:
            self.conn.sock.settimeout(timeout)

    def _read(self, resp: http.client.HTTPResponse, limit: float) -> bytes | bytearray:
        """The whole answer, READ_CHUNK at a time with the time left re-armed before each."""
        if resp.length is None:  # chunked: each read still bounded by the time left
            return resp.read()
        buf = bytearray(resp.length)
        view, got = memoryview(buf), 0
        while got < len(buf):
            self._arm(limit)
            n = resp.readinto(view[got : got + READ_CHUNK])
            if not n:
                raise http.client.IncompleteRead(bytes(buf[:got]), len(buf) - got)
            got += n
        view.release()
        return buf

    def close(self) -> None:
        self.conn.close()


# --- answer checks ----------------------------------------------------------------------------


class _Name(msgspec.Struct, frozen=True):
    name: str = ""


class _Named(msgspec.Struct, frozen=True):
    """An echoed Node of a Nodes-form answer, of which only the name is read."""

    metadata: _Name = _Name()


class _Items(msgspec.Struct):
    items: list[_Named]


class _FilterAnswer(msgspec.Struct):
    """Every key of ExtenderFilterResult is required (the Go encoder always writes them)."""

    Nodes: _Items | None
    NodeNames: list[str] | None
    FailedNodes: dict[str, str] | None
    FailedAndUnresolvableNodes: dict[str, str] | None
    Error: str


_filter_answer = msgspec.json.Decoder(_FilterAnswer)


@dataclass(frozen=True)
class FilterOutcome:
    """A checked ExtenderFilterResult: the passing node names in the answer's order, and the
    rejected ones with their messages."""

    passing: tuple[str, ...]
    failed: dict[str, str]
    unresolvable: dict[str, str]

    def counts(self) -> dict[str, int]:
        return {
            "passing": len(self.passing),
            "failed": len(self.failed),
            "unresolvable": len(self.unresolvable),
        }


def decode_filter(reply: Reply, names: frozenset[str], *, names_form: bool) -> FilterOutcome:
    """Status 200, no Error, the answer in the form asked (``names_form``: NodeNames and Nodes
    null, else Nodes and NodeNames null: kube-scheduler reads only the key of its
    nodeCacheCapable setting, k/k pkg/scheduler/extender.go Filter), and the passing, failed
    and unresolvable nodes naming every request node exactly once between them."""
    _check_status(reply, "filter")
    try:
        ans = _filter_answer.decode(reply.body)
    except msgspec.DecodeError as exc:
        raise BenchmarkError(f"filter: malformed answer: {exc}") from None
    if ans.Error or (ans.NodeNames is None) == names_form or (ans.Nodes is None) != names_form:
        raise BenchmarkError(
            f"filter: expected the {'NodeNames' if names_form else 'Nodes'} form and no Error, got "
            f"NodeNames={'null' if ans.NodeNames is None else len(ans.NodeNames)} "
            f"Nodes={'null' if ans.Nodes is None else len(ans.Nodes.items)} Error={ans.Error!r}"
        )
    passing = tuple(
        ans.NodeNames
        if ans.NodeNames is not None
        else [item.metadata.name for item in ans.Nodes.items]
        if ans.Nodes is not None
        else ()
    )
    outcome = FilterOutcome(passing, ans.FailedNodes or {}, ans.FailedAndUnresolvableNodes or {})
    seen = [*outcome.passing, *outcome.failed, *outcome.unresolvable]
    if len(seen) != len(names) or set(seen) != names:
        counts = outcome.counts()
        raise BenchmarkError(
            f"filter: {counts['passing']} passing + {counts['failed']} failed + "
            f"{counts['unresolvable']} unresolvable do not name the {len(names)} request "
            "nodes exactly once"
        )
    return outcome


def check_filter(reply: Reply, names: frozenset[str]) -> dict[str, int]:
    """A Nodes-form filter answer checked (``decode_filter``); its counts."""
    return decode_filter(reply, names, names_form=False).counts()


def decode_prioritize(reply: Reply, names: frozenset[str]) -> dict[str, int]:
    """Status 200; a list of one {Host, Score} per request node, Score an integer 0..10;
    host -> score."""
    _check_status(reply, "prioritize")
    try:
        ans = orjson.loads(reply.body)
    except orjson.JSONDecodeError as exc:
        raise BenchmarkError(f"prioritize: malformed answer: {exc}") from None
    if not isinstance(ans, list) or len(ans) != len(names):
        raise BenchmarkError(f"prioritize: expected a list of {len(names)} entries")
    scores = {}
    for entry in ans:
        score = entry.get("Score") if isinstance(entry, dict) else None
        if set(entry) != {"Host", "Score"} or type(score) is not int or not 0 <= score <= 10:
            raise BenchmarkError(f"prioritize: bad entry {entry!r}")
        scores[entry["Host"]] = score
    if set(scores) != names:
        raise BenchmarkError("prioritize: the hosts are not the request's nodes")
    return scores


def check_prioritize(reply: Reply, names: frozenset[str]) -> dict[str, int]:
    """A prioritize answer checked (``decode_prioritize``); how many nodes it scored."""
    return {"scored": len(decode_prioritize(reply, names))}


def check_bind(reply: Reply, what: str) -> None:
    """Status 200 and ``{"Error": ""}`` (ExtenderBindingResult): the extender bound the pod."""
    _check_status(reply, "bind")
    try:
        ans = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        ans = None
    if ans != {"Error": ""}:
        raise BenchmarkError(f"bind of {what}: {bytes(reply.body[:500])!r}")


def _check_status(reply: Reply, verb: str) -> None:
    if reply.status != 200:
        raise BenchmarkError(f"{verb}: HTTP {reply.status}: {reply.body[:500]!r}")


# --- request bodies ---------------------------------------------------------------------------


def _rfc3339(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_body(nodes: int) -> tuple[bytes, frozenset[str]]:
    """ExtenderArgs in the Nodes form for ``nodes`` realistic nodes whose load annotations were
    measured just now (``cluster()`` stamps a fixed time, which would be stale by now and send
    every node down the requests-only fallback)."""
    items = k8s_objects.cluster(nodes)
    now = _rfc3339(time.time())
    for item in items:
        item["metadata"]["annotations"][k8s_objects.LOAD_PREFIX + "updated"] = now
    body = k8s_objects.extender_args(items, k8s_objects.pod())
    names = frozenset(item["metadata"]["name"] for item in items)
    del items
    gc.collect()  # leave no large object graph behind for the floor measurement
    return body, names


# --- statistics and machine facts --------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """Percentile with linear interpolation (p99 of 30 samples sits between the two largest)."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


def time_calls(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall time of ``fn()`` in ms, ``repeat`` times; the result is freed outside the timing."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        out.append((time.perf_counter() - start) * 1e3)
        del result
    return out


def machine_facts(server: Server | None = None) -> dict[str, Any]:
    import flask
    import gunicorn

    facts: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "orjson": orjson.__version__,
        "msgspec": msgspec.__version__,
        "flask": flask.__version__ if hasattr(flask, "__version__") else _dist_version("flask"),
        "gunicorn": gunicorn.__version__,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "client_cpus": sorted(os.sched_getaffinity(0)),
    }
    worker = server.worker_pid() if server else None
    if worker is not None:
        server_cpus = sorted(os.sched_getaffinity(worker))
        facts["server_cpus"] = server_cpus
        facts["shared_cores"] = bool(set(server_cpus) & set(facts["client_cpus"]))
    return facts


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def facts_lines(command: str, facts: dict[str, Any]) -> list[str]:
    shared = facts.get("shared_cores")
    sharing = (
        "client and server share the cores (nothing pinned)"
        if shared
        else "client and server on separate cores"
        if shared is not None
        else "server cores unknown"
    )
    return [
        f"command: {command}",
        f"machine: {facts['cpu_count']} CPUs ({facts['cpu_model']}), {facts['platform']}; "
        f"client CPUs {facts['client_cpus']}, server worker CPUs {facts.get('server_cpus', '?')}: {sharing}; "
        f"load average at start {facts['loadavg_at_start']}",
        f"versions: python {facts['python']}, numpy {facts['numpy']}, orjson {facts['orjson']}, "
        f"msgspec {facts['msgspec']}, flask {facts['flask']}, gunicorn {facts['gunicorn']}",
    ]


def _command(args: argparse.Namespace | None = None) -> str:
    """The command that ran this benchmark, as a shell line to run it again: the interpreter as
    it was invoked (``.venv/bin/python``, not a bare ``python`` that may lack the dependencies),
    then ``-m benchmarks`` and the arguments this benchmark was parsed from (``args.argv``, set by
    ``benchmarks.__main__``: under ``all``, or when called as ``main([...])`` by a test, the
    process's own command line is another one). Without them, the process's command line."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    interpreter = argv[0] if argv else sys.executable
    if Path(interpreter).resolve() == Path(sys.executable).resolve() and os.sep in interpreter:
        with contextlib.suppress(ValueError):
            interpreter = os.path.relpath(interpreter, Path.cwd())
    parsed = getattr(args, "argv", None)
    if parsed is not None:
        return shlex.join([interpreter, "-m", "benchmarks", *parsed])
    return shlex.join([interpreter, *argv[1:]])


def _write(out: Path, stem: str, record: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path, md_path = out / f"{stem}-{stamp}.json", out / f"{stem}-{stamp}.md"
    json_path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    md_path.write_text(markdown)
    return json_path, md_path


def _ms(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if x >= 1000 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _percentage(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 0..100, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x.replace("_", "")) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of node counts: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("node counts must be >= 1")
    return sizes
