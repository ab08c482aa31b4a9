"""Idle and slow clients against the verbs: ``python -m benchmarks abuse``.

Issue 17's target: while ``--idle`` connections that send nothing and ``--drip`` connections
that send a request one byte a second are open, a names-form filter at ``--nodes`` nodes keeps
its p99 within 2x of the same run without them, and no connection is held longer than its
deadline. The extender runs in cluster-cache mode against the fake API server of ``names``
(another process), in the production layout (verbs and operations on listeners of their own).

Per worker (``--workers``: ours, and gthread, gunicorn's own, for the comparison):
1. quiet: ``--calls`` filters (and more until ``--min-seconds``), one at a time on one
   kept-alive connection, as kube-scheduler;
2. abused: the same while the idle connections are open and the dripping ones send a byte each
   per second, half of them their headers, half their body after whole headers; a dripping
   connection closed by the server is counted with how long it was held and opened again.
Every call has kube-scheduler's deadline (``--timeout``, its default ``httpTimeout`` 5 s); a
call that misses it is a timeout, counted, and the phase stops after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    DEFAULT_OUT,
    CallTimeout,
    Client,
    Server,
    _command,
    _ms,
    _write,
    facts_lines,
    machine_facts,
    proc_status_kb,
    running_server,
)
from benchmarks.names import _wait_ready
from benchmarks.names_client import _bodies, check_names_filter
from benchmarks.names_fake import _kubeconfig, fake_api

WORKERS = {"extender": None, "gthread": "--worker-class=gthread"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--pods-per-node", type=int, default=10)
    p.add_argument("--calls", type=int, default=300, help="filters per phase, at least (default 300)")
    p.add_argument(
        "--min-seconds",
        type=float,
        default=30.0,
        help="a phase goes on until this long too (default 30: the dripping connections reach "
        "their deadlines and are opened again several times)",
    )
    p.add_argument("--idle", type=int, default=64, help="connections that send nothing (default 64)")
    p.add_argument("--drip", type=int, default=16, help="connections sending a byte a second (default 16)")
    p.add_argument("--timeout", type=float, default=5.0, help="each call's deadline, s (default 5)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="a phase's longest run (default 120)")
    p.add_argument(
        "--workers", default="extender,gthread", help="comma-separated: extender, gthread (default both)"
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)


class Abuse:
    """The idle and dripping connections, kept open (and reopened) until stopped."""

    def __init__(self, server: Server, idle: int, drip: int) -> None:
        self.addr = (server.host, server.port)
        self.idle = [socket.create_connection(self.addr, timeout=10) for _ in range(idle)]
        self.drip = drip
        self.stop = threading.Event()
        self.held_s: list[float] = []  # how long each dripping connection lasted before the server closed it
        self.answers: dict[str, int] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, i: int) -> tuple[socket.socket, bytes, float]:
        s = socket.create_connection(self.addr, timeout=10)
        s.setblocking(False)
        head = b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        if i % 2:  # a body drip: whole headers first
            s.send(head + b"Content-Length: 100000\r\n\r\n")
            return s, b"{" * 100000, time.monotonic()
        return s, b"X-Slow: " + b"a" * 100000, time.monotonic()

    def _run(self) -> None:
        conns = [self._open(i) for i in range(self.drip)]
        at = 0
        while not self.stop.wait(1.0):
            for i, (s, rest, opened) in enumerate(conns):
                try:
                    s.send(rest[at : at + 1])
                    got = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    got = b""
                self.held_s.append(time.monotonic() - opened)
                status = got[9:12].decode(errors="replace") if got.startswith(b"HTTP/1.1 ") else "closed"
                self.answers[status] = self.answers.get(status, 0) + 1
                s.close()
                conns[i] = self._open(i)
            at += 1
        for s, _, _ in conns:
            s.close()

    def __enter__(self) -> Abuse:
        self.thread.start()
        time.sleep(1.5)  # every dripping connection open and sending
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        for s in self.idle:
            s.close()


def _phase(
    server: Server, body: Any, calls: int, timeout_s: float, max_s: float, min_s: float = 0.0
) -> dict[str, Any]:
    client = Client(server.host, server.port, timeout_s=60)
    wall: list[float] = []
    timeouts, start = 0, time.monotonic()
    try:
        k = 0
        while k < calls or time.monotonic() - start < min_s:
            if time.monotonic() - start > max_s:
                break
            k += 1
            data, names = body(k)
            try:
                reply = client.post("/filter", data, deadline_s=timeout_s)
            except CallTimeout:
                timeouts += 1
                client = Client(server.host, server.port, timeout_s=60)
                continue
            check_names_filter(reply, names)
            wall.append(reply.wall_ms)
    finally:
        client.conn.close()
    wall.sort()
    return {
        "calls": len(wall) + timeouts,
        "timeouts": timeouts,
        "p50_ms": statistics.median(wall) if wall else None,
        "p99_ms": wall[min(len(wall) - 1, int(len(wall) * 0.99))] if wall else None,
        "max_ms": wall[-1] if wall else None,
        "seconds": time.monotonic() - start,
    }


def run(args: argparse.Namespace) -> int:
    """Filter latency of kube-scheduler's calls while idle and slow clients hold connections."""
    command, rows, facts = _command(args), [], {}
    body = _bodies([f"node-{i:05d}" for i in range(args.nodes)])
    with (
        fake_api(args.nodes, args.pods_per_node, timeout_s=300) as fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        kubeconfig = _kubeconfig(Path(tmp) / "kubeconfig", fake.url)
        for worker in args.workers.split(","):
            env = {"GUNICORN_CMD_ARGS": WORKERS[worker]} if WORKERS[worker] else {}
            with running_server("--kubeconfig", str(kubeconfig), "--log-level", "error", env=env) as server:
                _wait_ready(server, time.monotonic(), 300.0)
                facts = facts or machine_facts(server)
                _phase(server, body, 10, args.timeout, args.max_seconds)  # warm-up
                quiet = _phase(server, body, args.calls, args.timeout, args.max_seconds, args.min_seconds)
                with Abuse(server, args.idle, args.drip) as abuse:
                    abused = _phase(
                        server, body, args.calls, args.timeout, args.max_seconds, args.min_seconds
                    )
                    rss_kb = proc_status_kb(server.worker_pid(), "VmRSS")
                row = {
                    "worker": worker,
                    "quiet": quiet,
                    "abused": abused,
                    "drip_held_s_max": max(abuse.held_s, default=None),
                    "drip_closed": dict(abuse.answers),
                    "worker_rss_mb": None if rss_kb is None else rss_kb / 1024,
                }
                rows.append(row)
                print(_line(row), flush=True)
    record = {
        "command": command,
        "facts": facts,
        "args": {k: str(v) for k, v in vars(args).items()},
        "rows": rows,
    }
    md = _markdown(command, facts, args, rows)
    json_path, md_path = _write(args.out, "abuse", record, md)
    print(f"\nwrote {md_path} and {json_path}")
    ours = next((r for r in rows if r["worker"] == "extender"), None)
    if ours and ours["quiet"]["p99_ms"] and ours["abused"]["p99_ms"]:
        ratio = ours["abused"]["p99_ms"] / ours["quiet"]["p99_ms"]
        print(f"target: abused p99 within 2x of quiet: {ratio:.2f}x ({'met' if ratio <= 2 else 'MISSED'})")
    return 0


def _line(r: dict[str, Any]) -> str:
    q, a = r["quiet"], r["abused"]
    return (
        f"{r['worker']:>8}: quiet p50 {_ms(q['p50_ms'])} p99 {_ms(q['p99_ms'])} ms, "
        f"{q['timeouts']} timeouts | "
        f"abused p50 {_ms(a['p50_ms'])} p99 {_ms(a['p99_ms'])} max {_ms(a['max_ms'])} ms, "
        f"{a['timeouts']} timeouts of {a['calls']} | dripping connections held at most "
        f"{r['drip_held_s_max'] or 0:.1f} s, closed with {r['drip_closed']}"
    )


def _markdown(
    command: str, facts: dict[str, Any], args: argparse.Namespace, rows: list[dict[str, Any]]
) -> str:
    out = [
        "# Idle and slow clients against the verbs",
        "",
        *facts_lines(command, facts),
        "",
        f"Names-form filter at {args.nodes:,} nodes, one call at a time on one kept-alive connection, "
        f"deadline {args.timeout:g} s; abused: {args.idle} idle connections and {args.drip} sending a "
        "byte a second (half headers, half a body), reopened when the server closes them.",
        "",
        "| worker | quiet p50 / p99 ms | abused p50 / p99 / max ms | abused timeouts | p99 ratio "
        "| dripping conn. held, max s | worker RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        q, a = r["quiet"], r["abused"]
        ratio = a["p99_ms"] / q["p99_ms"] if a["p99_ms"] and q["p99_ms"] else None
        out.append(
            f"| {r['worker']} | {_ms(q['p50_ms'])} / {_ms(q['p99_ms'])} | {_ms(a['p50_ms'])} / "
            f"{_ms(a['p99_ms'])} / {_ms(a['max_ms'])} | {a['timeouts']} of {a['calls']} | "
            f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | {r['drip_held_s_max'] or 0:.1f} | "
            f"{r['worker_rss_mb'] or 0:.0f} |"
        )
    return "\n".join(out) + "\n"
