"""Stateless-mode HTTP latency (``latency``) and the worker-model check (``workers``).

Both drive the real server, started exactly as a user starts it (``python -m extender serve``:
gunicorn, one gthread worker), over loopback, the way kube-scheduler calls an extender:
one call at a time on a keep-alive connection, ``Content-Type: application/json`` and a known
``Content-Length``. Request bodies are Go-encoded ``ExtenderArgs`` with full Node objects
(``nodeCacheCapable: false``) from ``benchmarks.k8s_objects``.

Nothing is pinned: client and server share whatever cores the machine has, and the figures
say so. See benchmarks/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import http.client
import json
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson

from benchmarks import k8s_objects

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results"
DEFAULT_SIZES = (100, 1000, 5000)
QUICK_SIZES = (100, 1000)
QUICK_REPEAT = 10
WARMUP_CALLS = 3
TARGET_NODES, TARGET_RATIO = 1000, 1.3
_SERVER_TIMING = re.compile(r"(?:^|,)\s*app;dur=([0-9.]+)")


def default_repeat(nodes: int) -> int:
    """Timed calls per verb: 200 up to 100 nodes, 100 up to 1,000, 30 above."""
    return 200 if nodes <= 100 else 100 if nodes <= 1000 else 30


class BenchmarkError(RuntimeError):
    """A wrong answer or a server that would not start: the figures would be meaningless."""


# --- the server under test --------------------------------------------------------------------


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

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def worker_pid(self) -> int | None:
        """The gunicorn worker: the child of the master (= the process we started, since
        ``python -m extender serve`` execs gunicorn)."""
        children = [pid for pid, ppid in _processes() if ppid == self.master_pid]
        return min(children) if children else None

    def log_tail(self, limit: int = 3000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]


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
    return data[data.rindex(")") + 2:].split()


@dataclass(frozen=True)
class ProcCounters:
    """CPU time (all threads, clock-tick resolution) and minor page faults of a process."""

    user_s: float
    system_s: float
    minor_faults: int


def proc_counters(pid: int | None) -> ProcCounters | None:
    """From /proc/<pid>/stat (utime, stime, minflt); None where /proc is unusable."""
    fields = _stat_fields(pid) if pid is not None else None
    if fields is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return ProcCounters(int(fields[11]) / tick, int(fields[12]) / tick, int(fields[7]))


@contextlib.contextmanager
def running_server(*args: str, env: dict[str, str] | None = None, timeout_s: float = 60.0) -> Iterator[Server]:
    """``python -m extender serve --host 127.0.0.1 --port <free> ARGS`` until the block ends
    (``env``: extra ``EXTENDER_*`` variables; the caller's own are dropped). Tests use it too."""
    port = free_port()
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTENDER_")}
    env.update(extra)
    log = tempfile.TemporaryFile(prefix="extender-bench-")  # never an unread pipe
    cmd = [sys.executable, "-m", "extender", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server("127.0.0.1", port, proc.pid, log)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise BenchmarkError(f"extender exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(f"{server.url}/livez", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"extender not live after {timeout_s:.0f} s:\n{server.log_tail()}") from None
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


def metric_value(server: Server, name: str) -> float | None:
    """One unlabelled sample from /metrics (None when absent)."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


# --- the client: kube-scheduler's way of calling ----------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    wall_ms: float  # request sent -> whole response read
    server_ms: float | None  # Server-Timing: app;dur=<ms>


class Client:
    """One keep-alive connection, one call at a time (concurrency 1)."""

    def __init__(self, host: str, port: int, timeout_s: float = 120.0) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout_s)  # sets TCP_NODELAY

    def post(self, path: str, body: bytes) -> Reply:
        conn = self.conn
        start = time.perf_counter()
        # Headers, then the body in one sendall: http.client's request() would first copy a
        # bytes body onto the headers (a 60 MB memcpy inside the timed region).
        conn.putrequest("POST", path, skip_accept_encoding=True)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.putheader("Accept-Encoding", "gzip")  # as Go's transport sends it
        conn.endheaders()
        conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        wall_ms = (time.perf_counter() - start) * 1e3
        timing = _SERVER_TIMING.search(resp.getheader("Server-Timing") or "")
        return Reply(resp.status, data, wall_ms, float(timing.group(1)) if timing else None)

    def close(self) -> None:
        self.conn.close()


# --- answer checks ----------------------------------------------------------------------------


class _Items(msgspec.Struct):
    items: list[msgspec.Raw]


class _FilterAnswer(msgspec.Struct):
    """Every key of ExtenderFilterResult is required (the Go encoder always writes them)."""

    Nodes: _Items | None  # noqa: N815
    NodeNames: list[str] | None  # noqa: N815
    FailedNodes: dict[str, str] | None  # noqa: N815
    FailedAndUnresolvableNodes: dict[str, str] | None  # noqa: N815
    Error: str  # noqa: N815


_filter_answer = msgspec.json.Decoder(_FilterAnswer)


def check_filter(reply: Reply, names: frozenset[str], *, full: bool) -> dict[str, int]:
    """Status 200, NodeNames null, every node exactly once in Nodes.items, FailedNodes or
    FailedAndUnresolvableNodes. ``full`` also decodes every echoed Node and compares names
    (slow at 5,000 nodes, so done on the first call of each size)."""
    _check_status(reply, "filter")
    try:
        ans = _filter_answer.decode(reply.body)
    except msgspec.DecodeError as exc:
        raise BenchmarkError(f"filter: malformed answer: {exc}") from None
    if ans.NodeNames is not None or ans.Nodes is None or ans.Error:
        raise BenchmarkError(f"filter: expected the Nodes form and no Error, got NodeNames="
                             f"{ans.NodeNames is not None} Nodes={ans.Nodes is not None} Error={ans.Error!r}")
    failed, unresolvable = ans.FailedNodes or {}, ans.FailedAndUnresolvableNodes or {}
    counts = {"passing": len(ans.Nodes.items), "failed": len(failed), "unresolvable": len(unresolvable)}
    if sum(counts.values()) != len(names):
        raise BenchmarkError(f"filter: {counts} do not add up to {len(names)} nodes")
    if full:
        passing = [orjson.loads(memoryview(raw))["metadata"]["name"] for raw in ans.Nodes.items]
        seen = [*passing, *failed, *unresolvable]
        if len(set(seen)) != len(seen) or set(seen) != names:
            raise BenchmarkError("filter: the answer does not name every request node exactly once")
    return counts


def check_prioritize(reply: Reply, names: frozenset[str]) -> dict[str, int]:
    """Status 200; a list of one {Host, Score} per node, Score an integer 0..10."""
    _check_status(reply, "prioritize")
    try:
        ans = orjson.loads(reply.body)
    except orjson.JSONDecodeError as exc:
        raise BenchmarkError(f"prioritize: malformed answer: {exc}") from None
    if not isinstance(ans, list) or len(ans) != len(names):
        raise BenchmarkError(f"prioritize: expected a list of {len(names)} entries")
    hosts = set()
    for entry in ans:
        score = entry.get("Score") if isinstance(entry, dict) else None
        if set(entry) != {"Host", "Score"} or type(score) is not int or not 0 <= score <= 10:
            raise BenchmarkError(f"prioritize: bad entry {entry!r}")
        hosts.add(entry["Host"])
    if hosts != names:
        raise BenchmarkError("prioritize: the hosts are not the request's nodes")
    return {"scored": len(ans)}


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
    sharing = ("client and server share the cores (nothing pinned)" if shared else
               "client and server on separate cores" if shared is not None else "server cores unknown")
    return [
        f"command: {command}",
        f"machine: {facts['cpu_count']} CPUs ({facts['cpu_model']}), {facts['platform']}; "
        f"client CPUs {facts['client_cpus']}, server worker CPUs {facts.get('server_cpus', '?')}: {sharing}; "
        f"load average at start {facts['loadavg_at_start']}",
        f"versions: python {facts['python']}, numpy {facts['numpy']}, orjson {facts['orjson']}, "
        f"msgspec {facts['msgspec']}, flask {facts['flask']}, gunicorn {facts['gunicorn']}",
    ]


def _command() -> str:
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if argv and Path(argv[0]).resolve() == Path(sys.executable).resolve():
        with contextlib.suppress(ValueError):
            argv[0] = os.path.relpath(argv[0], Path.cwd())
    return shlex.join(argv)


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


# --- latency ----------------------------------------------------------------------------------


@dataclass
class Row:
    nodes: int
    verb: str
    calls: int
    request_bytes: int
    response_bytes: list[int] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    orjson_ms: list[float] = field(default_factory=list)
    orjson_nogc_ms: list[float] = field(default_factory=list)
    server_cpu_ms_per_call: float | None = None
    server_cpu_detail: dict[str, float] | None = None
    answer: dict[str, int] = field(default_factory=dict)
    fallback_nodes_per_call: float | None = None

    def summary(self) -> dict[str, Any]:
        server_p50 = statistics.median(self.server_ms) if self.server_ms else None
        floor_p50 = statistics.median(self.orjson_ms)
        return {
            "nodes": self.nodes, "verb": self.verb, "calls": self.calls,
            "request_bytes": self.request_bytes,
            "response_bytes": int(statistics.median(self.response_bytes)),
            "client_ms": {"p50": statistics.median(self.client_ms), "p99": pct(self.client_ms, 99),
                          "max": max(self.client_ms)},
            "server_ms": ({"p50": server_p50, "p99": pct(self.server_ms, 99)} if self.server_ms else None),
            "orjson_loads_ms": {"p50": floor_p50, "min": min(self.orjson_ms)},
            "orjson_loads_gc_disabled_ms": ({"p50": statistics.median(self.orjson_nogc_ms)}
                                            if self.orjson_nogc_ms else None),
            "ratio_server_orjson_p50": server_p50 / floor_p50 if server_p50 is not None else None,
            "server_cpu_ms_per_call": self.server_cpu_ms_per_call,
            "server_cpu_detail_per_call": self.server_cpu_detail,
            "answer": self.answer,
            "fallback_nodes_per_call": self.fallback_nodes_per_call,
        }

    def samples(self) -> dict[str, list[float] | list[int]]:
        return {"client_ms": self.client_ms, "server_ms": self.server_ms, "orjson_loads_ms": self.orjson_ms,
                "orjson_loads_gc_disabled_ms": self.orjson_nogc_ms, "response_bytes": self.response_bytes}


LATENCY_HEADER = ("| nodes | verb | request MB | response KB | client p50 ms | client p99 ms | client max ms "
                  "| server p50 ms | server p99 ms | orjson.loads p50 ms | ratio server/orjson p50 "
                  "| server CPU ms/call |\n"
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def latency_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [LATENCY_HEADER]
    for r in rows:
        srv = r["server_ms"] or {}
        ratio = r["ratio_server_orjson_p50"]
        lines.append(
            f"| {r['nodes']:,} | {r['verb']} | {r['request_bytes'] / 1e6:.2f} | {r['response_bytes'] / 1e3:,.1f} "
            f"| {_ms(r['client_ms']['p50'])} | {_ms(r['client_ms']['p99'])} | {_ms(r['client_ms']['max'])} "
            f"| {_ms(srv.get('p50'))} | {_ms(srv.get('p99'))} | {_ms(r['orjson_loads_ms']['p50'])} "
            f"| {'n/a' if ratio is None else f'{ratio:.2f}'} | {_ms(r['server_cpu_ms_per_call'])} |")
    return "\n".join(lines)


def target_line(rows: Sequence[dict[str, Any]]) -> str:
    at = [r for r in rows if r["nodes"] == TARGET_NODES]
    if not at:
        return f"target (server p50 within {TARGET_RATIO}x of orjson.loads at {TARGET_NODES:,} nodes): not measured"
    parts = []
    for r in at:
        ratio = r["ratio_server_orjson_p50"]
        verdict = "n/a" if ratio is None else f"{ratio:.2f} ({'met' if ratio <= TARGET_RATIO else 'MISSED'})"
        parts.append(f"{r['verb']} {verdict}")
    return f"target: server p50 within {TARGET_RATIO}x of orjson.loads at {TARGET_NODES:,} nodes: " + ", ".join(parts)


def add_latency_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true",
                   help=f"sizes {','.join(map(str, QUICK_SIZES))} and {QUICK_REPEAT} calls per verb")
    p.add_argument("--sizes", type=_sizes, help="node counts, e.g. 100,1000,5000 (default: those)")
    p.add_argument("--repeat", type=_positive, help="timed calls per verb and size (default: 200 at <=100 nodes, "
                   "100 at <=1,000, 30 above; 10 with --quick)")
    p.add_argument("--warmup", type=_non_negative, default=WARMUP_CALLS, help="untimed calls per verb first (default 3)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for the JSON and Markdown "
                   "results (default benchmarks/results/, gitignored)")


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


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x.replace("_", "")) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of node counts: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("node counts must be >= 1")
    return sizes


def run_latency(args: argparse.Namespace) -> int:
    """Stateless-mode latency: filter and prioritize with N full Node objects per request,
    against a real server; server time (Server-Timing) compared with orjson.loads of the same
    body, the least any Python server must spend on it."""
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    command = _command()
    try:
        with running_server("--no-api") as server:
            facts = machine_facts(server)
            print("\n".join(facts_lines(command, facts)), flush=True)
            rows = []
            client = Client(server.host, server.port)
            try:
                for n in sizes:
                    repeat = args.repeat or (QUICK_REPEAT if args.quick else default_repeat(n))
                    rows.extend(_measure_size(server, client, n, repeat, args.warmup))
            finally:
                client.close()
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summaries = [r.summary() for r in rows]
    table = latency_table(summaries)
    target = target_line(summaries)
    notes = _latency_notes(summaries)
    text = "\n".join(["", table, "", target, *notes, ""])
    print(text)
    record = {"benchmark": "latency", "command": command, "machine": facts,
              "config": {"sizes": list(sizes), "warmup": args.warmup, "quick": args.quick,
                         "repeat": args.repeat, "target": {"nodes": TARGET_NODES, "ratio": TARGET_RATIO}},
              "rows": [{**s, "samples": r.samples()} for s, r in zip(summaries, rows, strict=True)]}
    markdown = "\n".join(["```", *facts_lines(command, facts), "```", text])
    json_path, md_path = _write(args.out, "latency", record, markdown)
    print(f"written: {json_path} and {md_path}")
    return 0


def _latency_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    notes = []
    nogc = [r for r in rows if r["orjson_loads_gc_disabled_ms"] and r["server_ms"]]
    if nogc:
        notes.append("floor with the cyclic GC disabled (gc.disable() around orjson.loads): " + "; ".join(
            f"{r['nodes']:,} {r['verb']} {_ms(r['orjson_loads_gc_disabled_ms']['p50'])} ms, ratio "
            f"{r['server_ms']['p50'] / r['orjson_loads_gc_disabled_ms']['p50']:.2f}" for r in nogc))
    if any(r["server_ms"] is None for r in rows):
        notes.append("note: the server sent no 'Server-Timing: app;dur=' header; server time unknown")
    stale = [r for r in rows if r["fallback_nodes_per_call"]]
    if stale:
        notes.append("warning: the server used the stale-load fallback for some nodes "
                     f"({', '.join(str(r['nodes']) + ' ' + r['verb'] for r in stale)})")
    return notes


def _measure_size(server: Server, client: Client, n: int, repeat: int, warmup: int) -> list[Row]:
    print(f"{n:,} nodes: building the request ...", flush=True)
    body, names = request_body(n)
    worker = server.worker_pid()
    rows = []
    checks: dict[str, Callable[[Reply, bool], dict[str, int]]] = {
        "filter": lambda reply, full: check_filter(reply, names, full=full),
        "prioritize": lambda reply, _full: check_prioritize(reply, names),
    }
    for verb, check in checks.items():
        row = Row(n, verb, repeat, len(body))
        for i in range(warmup):
            check(client.post(f"/{verb}", body), i == 0)
        fallback0 = metric_value(server, "extender_load_fallback_nodes_total")
        cpu0 = proc_counters(worker)
        for _ in range(repeat):
            reply = client.post(f"/{verb}", body)
            row.answer = check(reply, not row.client_ms and warmup == 0)
            row.client_ms.append(reply.wall_ms)
            if reply.server_ms is not None:
                row.server_ms.append(reply.server_ms)
            row.response_bytes.append(len(reply.body))
            del reply
        cpu1 = proc_counters(worker)
        fallback1 = metric_value(server, "extender_load_fallback_nodes_total")
        if cpu0 is not None and cpu1 is not None:
            user, system = (cpu1.user_s - cpu0.user_s) * 1e3 / repeat, (cpu1.system_s - cpu0.system_s) * 1e3 / repeat
            row.server_cpu_ms_per_call = user + system
            row.server_cpu_detail = {"user_ms": user, "system_ms": system,
                                     "minor_page_faults": (cpu1.minor_faults - cpu0.minor_faults) / repeat}
        if fallback0 is not None and fallback1 is not None:
            row.fallback_nodes_per_call = (fallback1 - fallback0) / repeat
        print(f"  {verb}: {repeat} calls, client p50 {_ms(statistics.median(row.client_ms))} ms", flush=True)
        rows.append(row)
    # The floor, after the HTTP calls (load annotations are stamped at build time and go stale
    # after 180 s), in this process with the same body and the same number of repetitions.
    for row in rows:
        row.orjson_ms = time_calls(lambda: orjson.loads(body), repeat)
    gc.disable()
    try:
        rows[0].orjson_nogc_ms = time_calls(lambda: orjson.loads(body), repeat)
    finally:
        gc.enable()
    rows[1].orjson_nogc_ms = rows[0].orjson_nogc_ms
    print(f"  orjson.loads p50 {_ms(statistics.median(rows[0].orjson_ms))} ms", flush=True)
    return rows


# --- workers: why one worker with several threads ----------------------------------------------

WORKERS_HEADER = ("| threads | filter alone p50 ms | filter during a slow bind p50 ms | during a slow bind max ms "
                  "| bind call p50 ms | repetitions |\n|---|---:|---:|---:|---:|---:|")


def add_workers_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=_positive, default=1000, help="nodes in each filter call (default 1,000)")
    p.add_argument("--repeat", type=_positive, default=7, help="filter calls alone and during a bind, per "
                   "thread count (default 7)")
    p.add_argument("--bind-delay", type=float, default=1.5, help="seconds the fake API holds each binding "
                   "POST (default 1.5; below the extender's 4 s bind timeout)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for the JSON and Markdown "
                   "results (default benchmarks/results/)")


def run_workers(args: argparse.Namespace) -> int:
    """Worker model: filter latency while a bind waits on a slow Kubernetes API, with gunicorn
    --threads 1 against the default 4 (one gthread worker either way). The API is the in-test
    fake (tests/kubeapi) holding every binding POST for --bind-delay seconds."""
    from tests.kubeapi import FakeKubeAPI  # the repository's in-test API server

    command = _command()
    body, names = request_body(args.nodes)
    results: list[dict[str, Any]] = []
    try:
        with FakeKubeAPI() as api, tempfile.TemporaryDirectory(prefix="extender-bench-") as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
                f"clusters: [{{name: fake, cluster: {{server: '{api.url}'}}}}]\n"
                "users: [{name: bench, user: {token: dummy-benchmark-token}}]\n"
                "contexts: [{name: fake, context: {cluster: fake, user: bench}}]\n")
            facts = None
            for threads in (1, None):  # None: serve's default (4)
                extra = ("--threads", str(threads)) if threads else ()
                with running_server("--kubeconfig", str(kubeconfig), *extra) as server:
                    facts = facts or machine_facts(server)
                    if len(results) == 0:
                        print("\n".join(facts_lines(command, facts)), flush=True)
                    results.append(_measure_workers(api, server, threads, body, names, args))
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    lines = [WORKERS_HEADER]
    for r in results:
        lines.append(f"| {r['threads_label']} | {_ms(r['alone_ms']['p50'])} | {_ms(r['during_bind_ms']['p50'])} "
                     f"| {_ms(r['during_bind_ms']['max'])} | {_ms(r['bind_ms']['p50'])} | {r['repeat']} |")
    table = "\n".join(lines)
    text = (f"\n{table}\n\n{args.nodes:,}-node filter calls; each bind held {args.bind_delay:g} s by the API; "
            "the filter is sent once the binding POST has reached the API.\n")
    print(text)
    record = {"benchmark": "workers", "command": command, "machine": facts,
              "config": {"nodes": args.nodes, "repeat": args.repeat, "bind_delay_s": args.bind_delay},
              "rows": results}
    json_path, md_path = _write(args.out, "workers", record,
                                "\n".join(["```", *facts_lines(command, facts or {}), "```", text]))
    print(f"written: {json_path} and {md_path}")
    return 0


def _measure_workers(api: Any, server: Server, threads: int | None, body: bytes, names: frozenset[str],
                     args: argparse.Namespace) -> dict[str, Any]:
    label = str(threads) if threads else "4 (default)"
    client, binder = Client(server.host, server.port), Client(server.host, server.port)
    try:
        for _ in range(WARMUP_CALLS):
            check_filter(client.post("/filter", body), names, full=False)
        alone = []
        for _ in range(args.repeat):
            reply = client.post("/filter", body)
            check_filter(reply, names, full=False)
            alone.append(reply.wall_ms)
        during, binds = [], []
        for i in range(args.repeat):
            name = f"bench-t{threads or 0}-{i}"
            uid = api.add_pod({"metadata": {"name": name, "namespace": "default"},
                               "spec": {"containers": [{"name": "c", "image": "nginx"}]}})["metadata"]["uid"]
            api.delay("POST", f"/pods/{name}/binding$", args.bind_delay, times=1)
            bind_body = json.dumps({"PodName": name, "PodNamespace": "default", "PodUID": uid,
                                    "Node": "node-00000"}).encode()
            outcome: dict[str, Any] = {}

            def bind(bind_body: bytes = bind_body, outcome: dict[str, Any] = outcome) -> None:
                try:
                    outcome["reply"] = binder.post("/bind", bind_body)
                except Exception as exc:  # noqa: BLE001 - reported below
                    outcome["error"] = exc

            thread = threading.Thread(target=bind, name=f"bind-{name}")
            thread.start()
            if not api.wait_until(lambda name=name: bool(api.requests("POST", f"/pods/{name}/binding$")), 10):
                raise BenchmarkError(f"the bind of {name} never reached the API:\n{server.log_tail()}")
            reply = client.post("/filter", body)
            check_filter(reply, names, full=False)
            during.append(reply.wall_ms)
            thread.join(30)
            bound = outcome.get("reply")
            if bound is None or bound.status != 200 or orjson.loads(bound.body) != {"Error": ""}:
                raise BenchmarkError(f"bind of {name} failed: {outcome}:\n{server.log_tail()}")
            binds.append(bound.wall_ms)
    finally:
        client.close()
        binder.close()
    print(f"  threads {label}: filter alone p50 {_ms(statistics.median(alone))} ms, during a slow bind "
          f"p50 {_ms(statistics.median(during))} ms", flush=True)
    return {"threads": threads or 4, "threads_label": label, "repeat": args.repeat,
            "alone_ms": {"p50": statistics.median(alone), "max": max(alone), "samples": alone},
            "during_bind_ms": {"p50": statistics.median(during), "max": max(during), "samples": during},
            "bind_ms": {"p50": statistics.median(binds), "samples": binds}}
