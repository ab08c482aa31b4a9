"""Cluster-cache mode (``nodeCacheCapable: true``) over HTTP: ``python -m benchmarks names``.

What kube-scheduler pays per filter / prioritize call when it sends node names only, and
whether the watch-fed cache keeps up with pod churn while it serves.

Per size N: a fake Kubernetes API server (``tests.kubeapi.FakeKubeAPI``, real HTTP, real REST
paths and chunked watch streams) in a *separate process* holds N realistic Nodes (fresh load
annotations) and ``--pods-per-node`` running Pods bound to each; the real extender
(``python -m extender serve --kubeconfig ...``, gunicorn) lists and watches it. We time the
extender's readiness (list + decode of every Node and Pod), then filter and prioritize calls
with all N names, one at a time on one keep-alive connection, first on a still cluster
(steady), then while a driver in the fake's process adds, updates and deletes pods at
``--events-per-s`` (churn). See benchmarks/README.md ("names") for the method and how to read
the figures.

The fake API server at scale is ``benchmarks.names_fake`` (its objects ``benchmarks.names_objects``),
the client's bodies, checks and timed phases ``benchmarks.names_client``, the report's tables
``benchmarks.names_report``; this module runs one size and the whole benchmark.

``--profile`` adds, per size, the server's work for the same requests in this process
(``create_app`` on the same fake): stage timings, cProfile, and pod events applied from a
thread while the main thread serves (``benchmarks.names_profile``).
"""

from __future__ import annotations

import argparse
import datetime
import random
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    DEFAULT_OUT,
    BenchmarkError,
    Client,
    Server,
    _command,
    _ms,
    _non_negative,
    _positive,
    _sizes,
    _write,
    check_prioritize,
    facts_lines,
    machine_facts,
    running_server,
)
from benchmarks.names_client import (
    POD_EVENTS,
    Phase,
    _bodies,
    _informer,
    _run_phase,
    check_names_filter,
    metrics_snapshot,
)
from benchmarks.names_fake import FakeAPIProcess, _kubeconfig, fake_api
from benchmarks.names_profile import profile_in_process
from benchmarks.names_report import (
    TARGET,
    _cache_row,
    _notes,
    _size_record,
    cache_table,
    latency_table,
    target_lines,
)

DEFAULT_SIZES = (1000, 5000, 10000)
DEFAULT_PODS_PER_NODE = 30
DEFAULT_EVENTS_PER_S = 5000
DEFAULT_CHURN_S = 10.0
WARMUP_CALLS = 3
RESTAMP_AFTER_S = 60.0  # older load stamps are renewed before the steady phase (stale at 180 s)


def default_calls(nodes: int) -> int:
    """Timed calls per verb and phase: 200 up to 5,000 nodes, 100 above."""
    return 200 if nodes <= 5000 else 100


# --- one size -----------------------------------------------------------------------------------


def _server_env(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("EXTENDER_"):
        raise argparse.ArgumentTypeError(f"expected EXTENDER_NAME=VALUE, got {text!r}")
    return key, value


def _measure_size(
    n: int, args: argparse.Namespace, facts_box: dict[str, Any], command: str
) -> dict[str, Any]:
    calls = args.calls or default_calls(n)
    print(f"{n:,} nodes x {args.pods_per_node} pods: building the fake API server ...", flush=True)
    # the fake keeps every event of the churn phase: a slow watcher lags, it is never cut off (410)
    history = int(args.events_per_s * (args.churn_max_seconds + 5) * 1.2) + 10_000
    with (
        fake_api(n, args.pods_per_node, timeout_s=args.ready_timeout, history=history) as fake,
        tempfile.TemporaryDirectory(prefix="extender-bench-") as tmp,
    ):
        info = fake.info
        mb = {kind: info["json_bytes"][kind] / 1e6 for kind in ("nodes", "pods")}
        print(
            f"  fake API server: {info['nodes']:,} nodes ({mb['nodes']:.0f} MB JSON), "
            f"{info['pods']:,} pods ({mb['pods']:.0f} MB) built in {info['build_s']:.1f} s",
            flush=True,
        )
        kubeconfig = _kubeconfig(Path(tmp) / "kubeconfig", fake.url)
        started = time.monotonic()
        with running_server(
            "--kubeconfig",
            str(kubeconfig),
            "--log-level",
            "warning",
            env=dict(args.server_env),
            timeout_s=args.ready_timeout,
        ) as server:
            live_s = time.monotonic() - started
            ready_s, ready_text = _wait_ready(server, started, args.ready_timeout)
            served = fake.call("stats")["served"]
            print(
                f"  extender ready after {ready_s:.1f} s ({ready_text}); pages served by the fake: "
                f"{served['list_requests']} ({served['list_bytes'] / 1e6:.0f} MB, "
                f"{served['list_s']:.1f} s of its time)",
                flush=True,
            )
            if not facts_box:
                facts_box.update(machine_facts(server))
                print("\n".join(facts_lines(command, facts_box)), flush=True)
            expected = f"{n} nodes, {info['pods']} pods"
            if expected not in ready_text:
                raise BenchmarkError(f"the extender's cache holds {ready_text!r}, expected {expected}")
            restamped = _restamp_if_old(server, fake, info, n, args.ready_timeout)
            names = [f"node-{i:05d}" for i in range(n)]
            random.Random(n).shuffle(names)
            body = _bodies(names, args.percentage)
            client = Client(server.host, server.port, timeout_s=60)
            try:
                k = 0
                for _ in range(args.warmup):
                    data, sent = body(k)
                    k += 1
                    check_names_filter(client.post("/filter", data), sent)
                    check_prioritize(client.post("/prioritize", data), sent)
                # the churn's new pods rendered now, while nothing is measured (see _Churn)
                fake.call("prepare_churn", args.events_per_s, n, args.churn_max_seconds + 2, timeout_s=300)
                steady = Phase(n, "steady")
                k = _run_phase(server, client, None, steady, names, body, k, calls, 0.0)
                _print_phase(steady)
                churn = Phase(n, "churn")
                churn.events_base = metrics_snapshot(server).get(POD_EVENTS) or 0.0
                fake.call("churn", args.events_per_s, n)
                try:
                    time.sleep(0.3)  # the driver is up to speed before the first timed call
                    k = _run_phase(
                        server,
                        client,
                        fake,
                        churn,
                        names,
                        body,
                        k,
                        calls,
                        args.churn_seconds,
                        args.churn_max_seconds,
                    )
                finally:
                    stopped = fake.call("stop_churn")
                drain = _drain(
                    server, fake, churn.events_base, stopped["churn"]["emitted"], timeout_s=args.drain_timeout
                )
                _print_phase(churn)
            finally:
                client.close()
            tail = server.log_tail(2000)
        profile = None
        if args.profile:  # after the server stopped: nothing else runs on the machine but the fake
            print("  profiling in-process ...", flush=True)
            fake.call("restamp", timeout_s=args.ready_timeout)  # fresh load, as in the measurement
            profile = profile_in_process(kubeconfig, names, body, k, args.profile_calls, args.ready_timeout)
    return {
        "nodes": n,
        "pods": info["pods"],
        "pods_per_node": args.pods_per_node,
        "calls": calls,
        "fake": {k: info[k] for k in ("build_s", "json_bytes", "load_updated")},
        "live_s": live_s,
        "ready_s": ready_s,
        "restamped": restamped,
        "ready_text": ready_text,
        "list_served": served,
        "steady": steady,
        "churn": churn,
        "churn_stats": stopped,
        "drain": drain,
        "profile": profile,
        "server_log_tail": tail if ("WARNING" in tail or "ERROR" in tail) else "",
    }


def _restamp_if_old(
    server: Server, fake: FakeAPIProcess, info: dict[str, Any], n: int, timeout_s: float
) -> dict[str, Any] | None:
    """Renew the nodes' load stamps when the first sync took so long that they would go stale
    (180 s) before the measurement ends; wait until the extender has applied all N node events."""
    stamp = datetime.datetime.fromisoformat(info["load_updated"]).timestamp()
    age = time.time() - stamp
    if age < RESTAMP_AFTER_S:
        return None
    key = 'extender_informer_events_total{kind="nodes",what="event"}'
    before = metrics_snapshot(server).get(key) or 0.0
    t0 = time.monotonic()
    updated = fake.call("restamp", timeout_s=timeout_s)
    while (metrics_snapshot(server).get(key) or 0.0) - before < n:
        if time.monotonic() - t0 > timeout_s:
            raise BenchmarkError(f"the extender did not apply the {n} node updates within {timeout_s:.0f} s")
        time.sleep(0.1)
    seconds = time.monotonic() - t0
    print(
        f"  load stamps were {age:.0f} s old: renewed ({n:,} node updates applied in {seconds:.1f} s)",
        flush=True,
    )
    return {"old_age_s": age, "updated": updated, "seconds": seconds}


def _wait_ready(server: Server, started: float, timeout_s: float) -> tuple[float, str]:
    deadline = started + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{server.ops_url}/readyz", timeout=10) as r:
                if r.status == 200:
                    return time.monotonic() - started, r.read().decode().strip()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchmarkError(f"extender not ready after {timeout_s:.0f} s:\n{server.log_tail()}")
        time.sleep(0.05)


def _drain(
    server: Server, fake: FakeAPIProcess, events_base: float, emitted: int, timeout_s: float
) -> dict[str, Any]:
    """After the driver stopped: how long until the extender has applied every emitted event
    (its pod event counter reaches ``events_base + emitted``)."""
    t0 = time.monotonic()
    trace = []
    relists0 = None
    while True:
        m = metrics_snapshot(server)
        applied = (m.get(POD_EVENTS) or 0.0) - events_base
        relists = _informer(m, "relist")
        relists0 = relists if relists0 is None else relists0
        t = time.monotonic() - t0
        trace.append((round(t, 2), int(applied)))
        if applied >= emitted:
            return {"seconds": t, "complete": True, "relists": relists - relists0, "trace": trace}
        if t > timeout_s:
            return {
                "seconds": t,
                "complete": False,
                "left": int(emitted - applied),
                "relists": relists - relists0,
                "fake_backlog": fake.call("stats")["watch_backlog"],
                "trace": trace,
            }
        time.sleep(0.25)


def _print_phase(p: Phase) -> None:
    parts = []
    for verb in ("filter", "prioritize"):
        s = p.verb_summary(verb)
        srv, cpu = s["server_ms"] or {}, s["server_cpu_ms"] or {}
        parts.append(
            f"{verb} p50 {_ms(s['client_ms']['p50'])} / p99 {_ms(s['client_ms']['p99'])} ms "
            f"(server {_ms(srv.get('p50'))} / {_ms(srv.get('p99'))}, "
            f"its CPU {_ms(cpu.get('p50'))} / {_ms(cpu.get('p99'))})"
        )
    print(
        f"  {p.phase}: {len(p.client_ms['filter'])} cycles in {p.seconds:.1f} s; " + "; ".join(parts),
        flush=True,
    )


# --- the whole benchmark ----------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sizes", type=_sizes, default=DEFAULT_SIZES, help="node counts (default 1000,5000,10000)"
    )
    p.add_argument(
        "--pods-per-node",
        type=_positive,
        default=DEFAULT_PODS_PER_NODE,
        help="running pods bound to each node (default 30)",
    )
    p.add_argument(
        "--calls",
        type=_positive,
        help="timed filter + prioritize pairs per phase and size (default 200 up to 5,000 nodes, 100 above)",
    )
    p.add_argument(
        "--warmup", type=_non_negative, default=WARMUP_CALLS, help="untimed pairs first (default 3)"
    )
    p.add_argument(
        "--events-per-s",
        type=float,
        default=DEFAULT_EVENTS_PER_S,
        help="pod events per second the fake emits during the churn phase (default 5000)",
    )
    p.add_argument(
        "--churn-seconds",
        type=float,
        default=DEFAULT_CHURN_S,
        help="the churn phase lasts at least this long, calling all the while (default 10)",
    )
    p.add_argument(
        "--churn-max-seconds",
        type=float,
        default=60.0,
        help="... and at most this long, even if fewer than --calls pairs were made (default 60)",
    )
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=900.0,
        help="seconds to wait for the fake to build and for the extender's first sync (default 900)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="seconds to wait after the churn for the extender to apply the backlog (default 60)",
    )
    p.add_argument(
        "--percentage",
        type=int,
        default=100,
        choices=range(0, 101),
        metavar="0..100",
        help="percentageOfNodesToScore: 100 (default) sends every node in every call, the "
        "worst case; 0 sends kube-scheduler's adaptive sample (500 of 5,000 nodes), "
        "a different window each call",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="EXTENDER_NAME=VALUE",
        type=_server_env,
        help="a setting for the extender under test, e.g. "
        "EXTENDER_LINGER_S=0 (repeatable; the caller's own EXTENDER_* are not passed on)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also time the server's stages in-process and cProfile them (per size)",
    )
    p.add_argument(
        "--profile-calls", type=_positive, default=50, help="calls per verb for --profile (default 50)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for the JSON and Markdown results (default benchmarks/results/, gitignored)",
    )


def run(args: argparse.Namespace) -> int:
    """Cluster-cache mode: filter and prioritize with node names only against the real extender
    fed by a fake API server (in its own process) holding N nodes and N x pods-per-node pods;
    readiness time, steady latency, and latency plus the cache's event rate under pod churn."""
    command = _command(args)
    facts: dict[str, Any] = {}
    results = []
    # SIGTERM unwinds like Ctrl-C, so that the extender and the fake API server are stopped
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        for n in args.sizes:
            results.append(_measure_size(n, args, facts, command))
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    rows = [
        r[ph].verb_summary(v) for r in results for ph in ("steady", "churn") for v in ("filter", "prioritize")
    ]
    cache_rows = [_cache_row(r) for r in results]
    text = "\n".join(
        [
            "",
            latency_table(rows, cache_rows),
            "",
            cache_table(cache_rows),
            "",
            *target_lines(rows, cache_rows),
            *_notes(results, cache_rows),
            "",
        ]
    )
    print(text)
    record = {
        "benchmark": "names",
        "command": command,
        "machine": facts,
        "config": {
            "sizes": list(args.sizes),
            "pods_per_node": args.pods_per_node,
            "calls": args.calls,
            "warmup": args.warmup,
            "events_per_s": args.events_per_s,
            "churn_seconds": args.churn_seconds,
            "churn_max_seconds": args.churn_max_seconds,
            "server_env": dict(args.server_env),
            "target": TARGET,
        },
        "rows": rows,
        "cache": cache_rows,
        "sizes": [_size_record(r) for r in results],
    }
    markdown = "\n".join(["```", *facts_lines(command, facts), "```", text])
    json_path, md_path = _write(args.out, "names", record, markdown)
    print(f"written: {json_path} and {md_path}")
    return 0


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)
