"""``python -m benchmarks core``: the numpy scoring core per strategy, against its scalar reference.

For each size N and each policy (one strategy at a time, with the default filters, and the
default policy), one ``scoring.evaluate`` call is the unit of work: filters, the strategy,
the combination and the 0..10 mapping for all N nodes. The same inputs go through the
plain-Python reference of the test suite (``tests/scoring/reference.py``), once per cell (it
is slow by design), and the two answers must agree node for node; the ratio of the medians is
the speed-up. Per-table facts (``NodeTable.stats``: computed once per snapshot, then reused by
every call) are timed separately.

Inputs: a seeded synthetic cluster (``make_inputs``): three node shapes, requests 0..95 % of
allocatable, measured usage 0..90 % (window average and std beside it), 5 % of the nodes
without a measurement, 5 % stale, a few with recently placed pods not yet measured; one
Burstable pod (500m / 512 Mi requests, 1 CPU / 1 Gi limits).

The GPU strategies run on the same nodes with GPU state added (``add_gpus``, shaped like the
openb trace): 80 % of the nodes with 8 GPUs, each fully free, fully used or shared (30..810
thousandths free), and 90 pod kinds seen, of which the 95 % coverage keeps about 35 as typical
tasks; the pod asks for one whole GPU, eight, or 470 thousandths of one (``GPU_CASES``). Their
per-table facts (the GPU state, per task share counts, each node's fragmentation as it is:
computed on a table's first GPU call, then reused) are timed separately, like the table stats.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import _command, _write, facts_lines, machine_facts
from scoring import NodeTable, PodDemand, Policy, evaluate, parse_policy
from scoring.types import GPURequest, TaskType

RESOURCES = ("cpu", "memory", "pods")
GIB = 1024**3

POLICIES: dict[str, dict[str, Any]] = {
    "LeastAllocated": {"strategies": [{"name": "LeastAllocated"}]},
    "MostAllocated": {"strategies": [{"name": "MostAllocated"}]},
    "RequestedToCapacityRatio": {
        "strategies": [
            {
                "name": "RequestedToCapacityRatio",
                "args": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]},
            }
        ]
    },
    "BalancedAllocation": {"strategies": [{"name": "BalancedAllocation"}]},
    "LoadAware": {"strategies": [{"name": "LoadAware"}]},
    "TargetLoadPacking": {"strategies": [{"name": "TargetLoadPacking"}]},
    "LoadVariationRiskBalancing": {"strategies": [{"name": "LoadVariationRiskBalancing"}]},
    "LowRiskOverCommitment": {"strategies": [{"name": "LowRiskOverCommitment"}]},
    "default policy": {},
}


GPU_CASES: dict[str, tuple[dict[str, Any], GPURequest]] = {
    "GPUFragmentation, 1 GPU": ({"strategies": [{"name": "GPUFragmentation"}]}, GPURequest(1)),
    "GPUFragmentation, 8 GPUs": ({"strategies": [{"name": "GPUFragmentation"}]}, GPURequest(8)),
    "GPUFragmentation, shared GPU": ({"strategies": [{"name": "GPUFragmentation"}]}, GPURequest(1, 470)),
    "GPUBestFit, 1 GPU": ({"strategies": [{"name": "GPUBestFit"}]}, GPURequest(1)),
    "GPUPacking, shared GPU": ({"strategies": [{"name": "GPUPacking"}]}, GPURequest(1, 470)),
    "default policy + GPUFragmentation, 1 GPU": (
        {
            "strategies": [
                {"name": "LoadAware", "weight": 2},
                {"name": "LeastAllocated"},
                {"name": "GPUFragmentation"},
            ]
        },
        GPURequest(1),
    ),
}
GPU_SHARES = np.array([30, 110, 160, 230, 320, 370, 470, 550, 650, 810])


def add_gpus(table: NodeTable, *, seed: int = 11) -> NodeTable:
    """``table`` with GPU state (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n, slots = len(table), 8
    present = np.repeat(rng.random(n)[:, None] < 0.8, slots, axis=1)
    u = rng.random((n, slots))
    free = np.where(u < 0.5, 1000, np.where(u < 0.75, 0, rng.choice(GPU_SHARES, (n, slots))))
    free = np.where(present, free, 0).astype(np.int64)
    kinds: dict[tuple[int, int, int], TaskType] = {}
    while len(kinds) < 90:
        gpus = int(rng.choice([0, 1, 1, 1, 1, 2, 4, 8]))
        milli = 0 if gpus == 0 else 1000 if gpus > 1 or rng.random() < 0.5 else int(rng.choice(GPU_SHARES))
        t = TaskType(int(rng.choice([1000, 2000, 3152, 4000, 8000, 11300, 12000, 16000])), gpus, milli)
        kinds.setdefault(t.spec, dataclasses.replace(t, weight=int(rng.zipf(1.6)) % 2000 + 1))
    return dataclasses.replace(table, gpu_free=free, gpu_present=present, task_counts=_counts(kinds.values()))


def _counts(kinds: Any) -> np.ndarray:
    return np.array([(t.cpu, t.gpus, t.milli, t.weight) for t in kinds], dtype=np.int64)


def gpu_pod(pod: PodDemand, gpu: GPURequest) -> PodDemand:
    return dataclasses.replace(pod, gpu=gpu)


def make_inputs(n: int, *, seed: int = 7) -> tuple[NodeTable, PodDemand]:
    """A synthetic cluster of ``n`` nodes and one pod (see the module docstring)."""
    rng = np.random.default_rng(seed)
    shapes = np.array([[16_000, 64 * GIB, 110], [32_000, 128 * GIB, 110], [96_000, 384 * GIB, 250]], float)
    alloc = shapes[rng.integers(0, len(shapes), n)]
    frac = rng.uniform(0.0, 0.95, (n, 1)) * rng.uniform(0.7, 1.0, (n, 3))
    requested = np.floor(alloc * frac)
    requested[:, 2] = np.floor(alloc[:, 2] * frac[:, 0] * 0.5)
    limits = np.floor(requested * rng.uniform(1.0, 2.0, (n, 3)))
    usage = np.floor(alloc * rng.uniform(0.0, 0.9, (n, 1)) * rng.uniform(0.6, 1.0, (n, 3)))
    usage[:, 2] = np.nan
    usage[rng.random(n) < 0.05] = np.nan
    avg = np.floor(usage * rng.uniform(0.8, 1.1, (n, 3)))
    std = np.floor(usage * rng.uniform(0.0, 0.3, (n, 3)))
    age = rng.uniform(0, 120, n)
    age[rng.random(n) < 0.05] = 600.0
    pending = np.where(rng.random((n, 1)) < 0.1, np.floor(alloc * 0.02), 0.0)
    table = NodeTable.build(
        names=tuple(f"node-{i:05d}" for i in range(n)),
        resources=RESOURCES,
        allocatable=alloc,
        capacity=alloc,
        requested=requested,
        nonzero_requested=requested,
        limits=limits,
        usage=usage,
        usage_avg=avg,
        usage_std=std,
        load_age_s=age,
        pending=pending,
    )
    req = np.array([500.0, 512.0 * 1024**2, 1.0])
    pod = PodDemand(RESOURCES, req, req.copy(), np.array([1000.0, 1.0 * GIB, 0.0]), "Burstable")
    return table, pod


def _median_ms(fn: Callable[[], object], *, min_calls: int, min_seconds: float) -> tuple[float, int]:
    """Median wall time of ``fn()`` in ms over at least ``min_calls`` calls and ``min_seconds``."""
    fn()  # warm-up
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples), len(samples)


def _reference() -> Any:
    """The scalar reference of the test suite (imported late: it is test code)."""
    from tests.scoring import reference

    return reference


def _reference_scores(ref: Any, table: NodeTable, pod: PodDemand, policy: Policy) -> list[int] | None:
    try:
        return list(ref.evaluate(pod, table, policy).scores)
    except (KeyError, NotImplementedError, AttributeError):
        return None  # a strategy the reference does not model


def _cases(table: NodeTable, pod: PodDemand) -> list[tuple[str, dict[str, Any], NodeTable, PodDemand]]:
    """(label, policy document, table, pod) of every row at one size."""
    cases = [(label, doc, table, pod) for label, doc in POLICIES.items()]
    gtable = add_gpus(table)
    for label, (doc, gpu) in GPU_CASES.items():
        cases.append((label, doc, gtable, gpu_pod(pod, gpu)))
    return cases


def measure(
    sizes: Sequence[int], *, ref_max: int, min_calls: int, min_seconds: float
) -> list[dict[str, Any]]:
    ref = _reference()
    rows = []
    for n in sizes:
        table, pod = make_inputs(n)
        t0 = time.perf_counter()
        _ = table.stats
        stats_ms = (time.perf_counter() - t0) * 1e3
        for label, doc, tbl, pd in _cases(table, pod):
            policy = parse_policy(doc)
            first_ms = None
            if tbl is not table:  # the GPU table's per-table facts: on a fresh copy, first call
                fresh = dataclasses.replace(tbl)
                _ = fresh.stats
                t0 = time.perf_counter()
                evaluate(pod=pd, nodes=fresh, policy=policy)
                first_ms = (time.perf_counter() - t0) * 1e3
            ev = evaluate(pod=pd, nodes=tbl, policy=policy)
            core_ms, calls = _median_ms(
                lambda p=policy, d=pd, t=tbl: evaluate(pod=d, nodes=t, policy=p),
                min_calls=min_calls,
                min_seconds=min_seconds,
            )
            row: dict[str, Any] = {
                "nodes": n,
                "policy": label,
                "core_ms": core_ms,
                "calls": calls,
                "stats_ms": stats_ms,
                "first_call_ms": first_ms,
                "ref_ms": None,
                "ratio": None,
                "agree": None,
                "feasible": int(ev.verdict.feasible.sum()),
                "score_histogram": np.bincount(ev.scores, minlength=11).tolist(),
            }
            if n <= ref_max:
                gc.collect()
                t0 = time.perf_counter()
                want = _reference_scores(ref, tbl, pd, policy)
                ref_ms = (time.perf_counter() - t0) * 1e3
                if want is not None:
                    row.update(
                        ref_ms=ref_ms,
                        ratio=ref_ms / core_ms,
                        agree=int(np.sum(np.asarray(want) == ev.scores)),
                    )
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    ref = "n/a" if row["ref_ms"] is None else f"{row['ref_ms']:,.1f}"
    ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:,.0f}x"
    agree = "n/a" if row["agree"] is None else f"{row['agree']}/{row['nodes']}"
    return f"| {row['nodes']:,} | {row['policy']} | {row['core_ms']:.3f} | {ref} | {ratio} | {agree} |"


HEADER = (
    "| nodes | policy | core median ms | scalar reference ms | speed-up | scores equal |\n"
    "|---:|---|---:|---:|---:|---:|"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default="100,1000,5000,10000", help="comma-separated node counts")
    p.add_argument(
        "--ref-max", type=int, default=5000, help="largest size also run through the scalar reference"
    )
    p.add_argument("--min-calls", type=int, default=50, help="core calls per cell, at least")
    p.add_argument("--min-seconds", type=float, default=0.5, help="core time per cell, at least")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))


def run(args: argparse.Namespace) -> int:
    """Time the scoring core per strategy and for the default policy; compare with the scalar
    reference (see benchmarks/README.md)."""
    sizes = tuple(int(s) for s in str(args.sizes).split(","))
    facts = machine_facts()
    lines = facts_lines(_command(args), facts)
    print("\n".join(lines))
    print(HEADER)
    rows = measure(sizes, ref_max=args.ref_max, min_calls=args.min_calls, min_seconds=args.min_seconds)
    stats = {r["nodes"]: r["stats_ms"] for r in rows}
    notes = [f"NodeTable.stats (once per table) at {n:,} nodes: {ms:.3f} ms" for n, ms in stats.items()]
    for r in rows:
        if r["first_call_ms"] is not None:
            notes.append(
                f"{r['policy']} at {r['nodes']:,} nodes, first call on a new table (GPU per-table "
                f"facts included): {r['first_call_ms']:.3f} ms"
            )
    gpu_5k = [r for r in rows if r["policy"] in GPU_CASES and r["nodes"] == 5000]
    if gpu_5k:
        worst = max(gpu_5k, key=lambda r: r["core_ms"])
        notes.append(
            f"targets: GPU strategies at 5,000 nodes at most {worst['core_ms']:.3f} ms "
            f"({worst['policy']}; target <= 2 ms)"
        )
    default_5k = [r for r in rows if r["policy"] == "default policy" and r["nodes"] == 5000]
    if default_5k:
        r = default_5k[0]
        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:,.0f}x"
        notes.append(
            f"targets: default policy at 5,000 nodes {r['core_ms']:.3f} ms (target <= 1 ms), "
            f"{ratio} the scalar reference (target >= 50x)"
        )
    disagreements = [r for r in rows if r["agree"] is not None and r["agree"] != r["nodes"]]
    if disagreements:
        notes.append(f"DISAGREEMENT with the reference in {len(disagreements)} cells")
    print("\n".join(notes))
    markdown = "\n".join([*lines, "", HEADER, *(_line(r) for r in rows), "", *notes]) + "\n"
    json_path, md_path = _write(args.out, "core", {"machine": facts, "rows": rows, "notes": notes}, markdown)
    print(f"wrote {json_path} and {md_path}")
    return 1 if disagreements else 0
