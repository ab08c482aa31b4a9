"""The largest requests the extender accepts, and what they cost in memory: ``python -m benchmarks memory``.

Issue 17: a 120 MiB request once peaked at 2.5 GB RSS in a container limited to 1 GiB. The
limits now derive from one setting, ``EXTENDER_MEMORY_BUDGET_BYTES`` (768 MiB in the
manifests, whose memory limit is 1 GiB): the body limit (budget / 32) and the nodes per call
(budget / 8 KiB). Per request shape, a fresh extender (stateless, the production layout) is sent
the largest request of that shape it accepts, and we read its worker's peak RSS (``VmHWM``)
and its RSS afterwards, against the RSS before the call, after one call and after three (the
memory a call leaves is the allocator's, reused by the next call; the Python objects a call
keeps are ~2 MB, tracemalloc, for the realistic filter):

- ``realistic``: a filter with as many realistic Node objects (labels, status, fresh load
  annotations) as fit the body limit;
- ``tiny``: a filter with as many minimal Nodes (a name) as a call may have;
- ``filter-refused``: a body at the limit of tiny items, more than a call may have (413
  before anything per node is built);
- ``prioritize``: the realistic body, prioritized.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from benchmarks import k8s_objects
from benchmarks.harness import (
    DEFAULT_OUT,
    BenchmarkError,
    Client,
    _command,
    _write,
    facts_lines,
    machine_facts,
    proc_status_kb,
    running_server,
)
from extender.settings import Settings

REPEAT = 3  # calls of each shape; RSS after the first and after all


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)


def _status_kb(pid: int | None, key: str) -> float:
    value = proc_status_kb(pid, key)
    if value is None:
        raise BenchmarkError(f"cannot read {key} of the extender's worker (pid {pid}) in /proc")
    return value


def _realistic(limit: int) -> bytes:
    """The most realistic nodes whose filter body fits ``limit`` bytes."""
    one = len(orjson.dumps(k8s_objects.cluster(1)[0])) + 1
    n = limit // one
    while True:
        body = k8s_objects.extender_args(k8s_objects.cluster(n))
        if len(body) <= limit:
            return body
        n = int(n * 0.98)


def _tiny(n: int) -> bytes:
    items = b",".join(b'{"metadata":{"name":"n%d"}}' % i for i in range(n))
    return b'{"Pod":' + orjson.dumps(k8s_objects.pod()) + b',"Nodes":{"items":[' + items + b"]}}"


def run(args: argparse.Namespace) -> int:
    """Peak and retained RSS of the largest accepted request of each shape."""
    s = Settings()
    limit, max_nodes = s.body_limit, s.max_nodes
    realistic = _realistic(limit)
    refused = b'{"Pod":{},"Nodes":{"items":[' + b"{}," * ((limit - 40) // 3) + b"{}]}}"
    shapes = [
        ("realistic", "/filter", realistic),
        ("tiny", "/filter", _tiny(max_nodes)),
        ("filter-refused", "/filter", refused),
        ("prioritize", "/prioritize", realistic),
    ]
    rows: list[dict[str, Any]] = []
    facts: dict[str, Any] = {}
    for name, path, body in shapes:
        with running_server("--no-api", "--log-level", "warning") as server:
            facts = facts or machine_facts(server)
            pid = server.worker_pid()
            client = Client(server.host, server.port, timeout_s=120)
            client.post(path, k8s_objects.extender_args(k8s_objects.cluster(10)))  # warm: imports, first call
            before = _status_kb(pid, "VmRSS")
            reply = client.post(path, body)
            peak, after = _status_kb(pid, "VmHWM"), _status_kb(pid, "VmRSS")
            for _ in range(REPEAT - 1):  # the memory a call leaves is reused by the next, not added to
                client.post(path, body)
            peak_n, after_n = _status_kb(pid, "VmHWM"), _status_kb(pid, "VmRSS")
            nodes = len(json.loads(reply.body)) if path == "/prioritize" and reply.status == 200 else None
            metrics = urllib.request.urlopen(f"{server.ops_url}/metrics", timeout=10).read().decode()
            client.conn.close()
        row = {
            "shape": name,
            "path": path,
            "body_bytes": len(body),
            "status": reply.status,
            "nodes": nodes,
            "rss_before_mb": before / 1024,
            "peak_rss_mb": peak / 1024,
            "rss_after_mb": after / 1024,
            f"peak_rss_after_{REPEAT}_mb": peak_n / 1024,
            f"rss_after_{REPEAT}_mb": after_n / 1024,
            "server_ms": reply.server_ms,
            "wall_ms": reply.wall_ms,
            "errors_metric": [ln for ln in metrics.splitlines() if ln.startswith("extender_errors_total{")],
        }
        rows.append(row)
        print(
            f"{name:>15}: {len(body) / 2**20:5.1f} MiB -> {reply.status}, "
            f"RSS {row['rss_before_mb']:.0f} MB before, peak {row['peak_rss_mb']:.0f} MB, "
            f"{row['rss_after_mb']:.0f} MB after; after {REPEAT} calls peak {peak_n / 1024:.0f} MB, "
            f"{after_n / 1024:.0f} MB; {reply.wall_ms:,.0f} ms",
            flush=True,
        )
    md = [
        "# The largest accepted requests and their memory",
        "",
        *facts_lines(_command(args), facts),
        "",
        f"Defaults: memory budget {s.memory_budget_bytes / 2**20:.0f} MiB, body limit "
        f"{limit / 2**20:.0f} MiB, {max_nodes:,} nodes per call; the manifests' container limit "
        "1 GiB. Worker RSS (MB): before the call, its peak (VmHWM, since the worker started), after.",
        "",
        f"| shape | verb | body MiB | status | RSS before | peak | after | peak, {REPEAT} calls "
        f"| after {REPEAT} calls | wall ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['shape']} | {r['path']} | {r['body_bytes'] / 2**20:.1f} | {r['status']} "
            f"| {r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['rss_after_mb']:.0f} "
            f"| {r[f'peak_rss_after_{REPEAT}_mb']:.0f} | {r[f'rss_after_{REPEAT}_mb']:.0f} "
            f"| {r['wall_ms']:,.0f} |"
            for r in rows
        ),
    ]
    json_path, md_path = _write(args.out, "memory", {"facts": facts, "rows": rows}, "\n".join(md) + "\n")
    print(f"\nwrote {md_path} and {json_path}")
    return 0
