"""Why one gunicorn worker with several threads: ``python -m benchmarks workers``.

Filter latency while a slow bind is in flight, gunicorn ``--threads 1`` against the default,
on the real server (``benchmarks.harness``) with a fake API server that answers the Binding
slowly. See benchmarks/README.md ("workers").
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    DEFAULT_OUT,
    WARMUP_CALLS,
    BenchmarkError,
    Client,
    Server,
    _command,
    _ms,
    _positive,
    _write,
    check_bind,
    check_filter,
    facts_lines,
    machine_facts,
    request_body,
    running_server,
)

# --- workers: why one worker with several threads ----------------------------------------------

WORKERS_HEADER = (
    "| threads | filter alone p50 ms | filter during a slow bind p50 ms | during a slow bind max ms "
    "| bind call p50 ms | repetitions |\n|---|---:|---:|---:|---:|---:|"
)


def add_workers_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=_positive, default=1000, help="nodes in each filter call (default 1,000)")
    p.add_argument(
        "--repeat",
        type=_positive,
        default=7,
        help="filter calls alone and during a bind, per thread count (default 7)",
    )
    p.add_argument(
        "--bind-delay",
        type=float,
        default=1.5,
        help="seconds the fake API holds each binding "
        "POST (default 1.5; below the extender's 4 s bind timeout)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for the JSON and Markdown results (default benchmarks/results/)",
    )


def run_workers(args: argparse.Namespace) -> int:
    """Worker model: filter latency while a bind waits on a slow Kubernetes API, with gunicorn
    --threads 1 against the default 4 (one gthread worker either way). The API is the in-test
    fake (tests/kubeapi) holding every binding POST for --bind-delay seconds."""
    from tests.kubeapi import FakeKubeAPI  # the repository's in-test API server

    command = _command(args)
    body, names = request_body(args.nodes)
    results: list[dict[str, Any]] = []
    try:
        with FakeKubeAPI() as api, tempfile.TemporaryDirectory(prefix="extender-bench-") as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            kubeconfig.write_text(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
                f"clusters: [{{name: fake, cluster: {{server: '{api.url}'}}}}]\n"
                "users: [{name: bench, user: {token: dummy-benchmark-token}}]\n"
                "contexts: [{name: fake, context: {cluster: fake, user: bench}}]\n"
            )
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
        lines.append(
            f"| {r['threads_label']} | {_ms(r['alone_ms']['p50'])} | {_ms(r['during_bind_ms']['p50'])} "
            f"| {_ms(r['during_bind_ms']['max'])} | {_ms(r['bind_ms']['p50'])} | {r['repeat']} |"
        )
    table = "\n".join(lines)
    text = (
        f"\n{table}\n\n{args.nodes:,}-node filter calls; each bind held {args.bind_delay:g} s by the API; "
        "the filter is sent once the binding POST has reached the API.\n"
    )
    print(text)
    record = {
        "benchmark": "workers",
        "command": command,
        "machine": facts,
        "config": {"nodes": args.nodes, "repeat": args.repeat, "bind_delay_s": args.bind_delay},
        "rows": results,
    }
    json_path, md_path = _write(
        args.out, "workers", record, "\n".join(["```", *facts_lines(command, facts or {}), "```", text])
    )
    print(f"written: {json_path} and {md_path}")
    return 0


def _measure_workers(
    api: Any,
    server: Server,
    threads: int | None,
    body: bytes,
    names: frozenset[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    label = str(threads) if threads else "4 (default)"
    client, binder = Client(server.host, server.port), Client(server.host, server.port)
    try:
        for _ in range(WARMUP_CALLS):
            check_filter(client.post("/filter", body), names)
        alone = []
        for _ in range(args.repeat):
            reply = client.post("/filter", body)
            check_filter(reply, names)
            alone.append(reply.wall_ms)
        during, binds = [], []
        for i in range(args.repeat):
            name = f"bench-t{threads or 0}-{i}"
            uid = api.add_pod(
                {
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                }
            )["metadata"]["uid"]
            api.delay("POST", f"/pods/{name}/binding$", args.bind_delay, times=1)
            bind_body = json.dumps(
                {"PodName": name, "PodNamespace": "default", "PodUID": uid, "Node": "node-00000"}
            ).encode()
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
            check_filter(reply, names)
            during.append(reply.wall_ms)
            thread.join(30)
            bound = outcome.get("reply")
            if bound is None:
                raise BenchmarkError(f"bind of {name} failed: {outcome}:\n{server.log_tail()}")
            check_bind(bound, name)
            binds.append(bound.wall_ms)
    finally:
        client.close()
        binder.close()
    print(
        f"  threads {label}: filter alone p50 {_ms(statistics.median(alone))} ms, during a slow bind "
        f"p50 {_ms(statistics.median(during))} ms",
        flush=True,
    )
    return {
        "threads": threads or 4,
        "threads_label": label,
        "repeat": args.repeat,
        "alone_ms": {"p50": statistics.median(alone), "max": max(alone), "samples": alone},
        "during_bind_ms": {"p50": statistics.median(during), "max": max(during), "samples": during},
        "bind_ms": {"p50": statistics.median(binds), "samples": binds},
    }
