"""Scalar reference of the GPU strategies (scoring/gpu.py): one node, one GPU, one task at a time.

Written from the simulator's definitions, not from ``scoring/gpu.py``: plain Python ints and
lists, no numpy in any formula. Sources (``hkust-adsl/kubernetes-scheduler-simulator``, the
stored versions named in scoring/gpu.py's docstring):

* ``pkg/utils/frag.go``: ``GetNodePodFrag`` (a task without GPUs: XL / XR; else Q3 when the node
  can host it on GPU memory and CPU, Q4 / Q2 / Q1 otherwise), ``CanNodeHostPodOnGpuMemory``
  (``k`` GPUs each with at least ``m`` free), ``NodeGpuShareFragAmount`` (Q3: the GPUs with less
  than ``m`` free are a Q2 fragment, the rest Q3; any other category: every idle share),
  ``FragAmountSumExceptQ3``, ``GetTypicalPods``;
* ``pkg/simulator/plugin/fgd_score.go`` ``calculateGpuShareFragExtendScore`` and
  ``plugin_utils.go`` ``sigmoid``;
* ``pkg/type/resource.go`` ``NodeResource.Sub`` (GPUs sorted by free share ascending, stable;
  the first ``k`` with at least ``m`` free each give ``m``), ``GetFullyFreeGpuNum``,
  ``SortedMilliGpuLeftIndexList``, ``TargetPodList.Less`` / ``PodResource.Less``;
* ``best_fit_score.go`` ``getBestFitScore`` and ``plugin_utils.go`` ``NormalizeScore``;
* ``gpu_packing_score.go`` ``getPackingScore``.

The categories are kept (Q1..Q4, XL, XR) and summed except Q3, as the simulator does, with the
frequencies exact: ``p_t = w_t / Σ w``, the amounts summed as ``Σ w_t · share`` in integers and
divided once (``Fraction``). The reference's ΔF is exact, the core's is exact by its integer
form, so both give ``σ`` the same argument.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

MILLI = 1000
MAX_NODE_SCORE = 100
MAX_SPEC_CPU, MAX_SPEC_GPU = 128_000, 8_000

Q1_LACK_BOTH, Q2_LACK_GPU, Q3_SATISFIED, Q4_LACK_CPU, XL_SATISFIED, XR_LACK_CPU = (
    "q1",
    "q2",
    "q3",
    "q4",
    "xl",
    "xr",
)


class Node:
    """A node as the simulator's ``NodeResource``: CPU left (millicores) and the free share of
    each of its GPUs (thousandths), in device order."""

    def __init__(self, cpu_left: int, free: list[int]) -> None:
        self.cpu_left = cpu_left
        self.free = list(free)

    def copy(self) -> Node:
        return Node(self.cpu_left, self.free)


def can_host_on_gpu_memory(node: Node, k: int, m: int) -> bool:
    needed = k
    for f in node.free:
        if f >= m:
            needed -= 1
            if needed <= 0:
                return True
    return False


def node_pod_frag(node: Node, cpu: int, k: int, m: int) -> str:
    if m == 0:
        return XL_SATISFIED if node.cpu_left >= cpu else XR_LACK_CPU
    if can_host_on_gpu_memory(node, k, m):
        return Q3_SATISFIED if node.cpu_left >= cpu else Q4_LACK_CPU
    return Q2_LACK_GPU if node.cpu_left >= cpu else Q1_LACK_BOTH


def frag_amount(node: Node, tasks: list[tuple[int, int, int, int]]) -> dict[str, int]:
    """``NodeGpuShareFragAmount`` times Σ w: per category, Σ w_t · (the share of that category)
    (integers; the frequency p_t is w_t / Σ w)."""
    out: dict[str, int] = {}
    total = sum(node.free)
    for cpu, k, m, w in tasks:
        kind = node_pod_frag(node, cpu, k, m)
        if kind == Q3_SATISFIED:
            small = sum(f for f in node.free if f < m)
            out[Q2_LACK_GPU] = out.get(Q2_LACK_GPU, 0) + w * small
            out[Q3_SATISFIED] = out.get(Q3_SATISFIED, 0) + w * (total - small)
        else:
            out[kind] = out.get(kind, 0) + w * total
    return out


def frag(node: Node, tasks: list[tuple[int, int, int, int]]) -> Fraction:
    """``FragAmountSumExceptQ3``: the node's fragmentation, thousandths of a GPU (exact)."""
    weighted = sum(v for kind, v in frag_amount(node, tasks).items() if kind != Q3_SATISFIED)
    return Fraction(weighted, sum(t[3] for t in tasks))


def sub(node: Node, cpu: int, k: int, m: int) -> Node:
    """``NodeResource.Sub``: CPU less, then the ``k`` GPUs with the least sufficient free share."""
    out = node.copy()
    out.cpu_left -= cpu
    if k == 0:
        return out
    order = sorted(range(len(out.free)), key=lambda g: out.free[g])  # stable
    needed = k
    for g in order:
        if m <= out.free[g]:
            out.free[g] -= m
            needed -= 1
            if needed == 0:
                return out
    raise ValueError("the pod does not fit")


def fits(node: Node, cpu: int, k: int, m: int) -> bool:
    return node.cpu_left >= cpu and (k == 0 or can_host_on_gpu_memory(node, k, m))


def sigmoid_score(delta: Fraction) -> int:
    """``int64(sigmoid(ΔF / 1000) · 100)``; ΔF exact, converted once as the core does."""
    x = float(delta.numerator) / float(delta.denominator * MILLI)
    return int(1.0 / (1.0 + math.exp(-x)) * MAX_NODE_SCORE)


def fgd_score(node: Node, tasks: list[tuple[int, int, int, int]], cpu: int, k: int, m: int) -> int:
    """``calculateGpuShareFragExtendScore``; 0 where the pod does not fit."""
    if not fits(node, cpu, k, m):
        return 0
    before = frag(node, tasks)
    if k == 1 and m < MILLI:  # a share of one GPU: the best GPU
        best = None
        for g, f in enumerate(node.free):
            if f >= m:
                after_node = node.copy()
                after_node.cpu_left -= cpu
                after_node.free[g] -= m
                s = sigmoid_score(before - frag(after_node, tasks))
                if best is None or s > best:
                    best = s
        assert best is not None
        return best
    return sigmoid_score(before - frag(sub(node, cpu, k, m), tasks))


def typical_tasks(counts: list[tuple[int, int, int, int]], coverage: int) -> list[tuple[int, int, int, int]]:
    """``GetTypicalPods`` (popularity threshold ``coverage``, increase step 1, no GPU model):
    ``counts`` as (cpu, gpus, milli, count)."""

    def less(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
        # TargetPodList.Less: percentage, then PodResource.Less (MilliCpu, MilliGpu, GpuNumber)
        if a[3] != b[3]:
            return a[3] < b[3]
        return (a[0], a[2], a[1]) < (b[0], b[2], b[1])

    ordered = list(counts)
    # sort.Sort(sort.Reverse(pl)): a before b when b.Less(a); the order is total (kinds differ)
    for i in range(len(ordered)):
        for j in range(len(ordered) - 1 - i):
            if less(ordered[j], ordered[j + 1]):
                ordered[j], ordered[j + 1] = ordered[j + 1], ordered[j]
    total = sum(c[3] for c in ordered)
    expected = Fraction(coverage * total, 100)
    taken, cum, i = [], 0, 0
    while cum < expected:
        cum += ordered[i][3]
        taken.append(ordered[i])
        i += 1
    return taken


def best_fit_raw(node: Node, cpu: int, k: int, m: int) -> int:
    """``getBestFitScore`` (float64 in Go's order; -1 when a total is short)."""
    free_vec = [float(node.cpu_left), float(sum(node.free))]
    req_vec = [float(cpu), float(m * k)]
    spec = [float(MAX_SPEC_CPU), float(MAX_SPEC_GPU)]
    weights = [0.5, 0.5]
    score = 0.0
    for i in range(2):
        if free_vec[i] < req_vec[i]:
            return -1
        score += (free_vec[i] - req_vec[i]) / spec[i] * weights[i]
    return int((1.0 - score) * float(MAX_NODE_SCORE))


def normalize(scores: list[int | None]) -> list[int]:
    """``NormalizeScore`` over the nodes with a score (None: filtered out, scored 0)."""
    values = [s for s in scores if s is not None]
    if not values:
        return [0] * len(scores)
    lo, hi = min(values), max(values)
    out = []
    for s in scores:
        if s is None or hi == lo:
            out.append(0)
        else:
            out.append((s - lo) * MAX_NODE_SCORE // (hi - lo))
    return out


def packing_score(node: Node, gpu_count: int, cpu: int, k: int, m: int) -> int:
    """``getPackingScore``; 0 where the pod does not fit."""
    if not fits(node, cpu, k, m):
        return 0
    full = sum(1 for f in node.free if f == MILLI)
    if full == gpu_count:
        return max(MAX_NODE_SCORE // 3 - full, full)
    order = sorted(range(len(node.free)), key=lambda g: node.free[g])
    needed, full_used, used = k, 0, []
    for g in order:
        if needed == 0:
            break
        if m <= node.free[g]:
            needed -= 1
            used.append(g)
            if node.free[g] == MILLI:
                full_used += 1
    assert needed == 0
    if full_used > 0:
        return max(MAX_NODE_SCORE // 2 - full_used, MAX_NODE_SCORE // 3)
    pct = sum(node.free[g] * 100 // MILLI for g in used)
    return max(MAX_NODE_SCORE - pct // 10, MAX_NODE_SCORE // 2)


# --------------------------------------------------------------------------------------------
# From the core's inputs (NodeTable, PodDemand, policy args): plain values first


def nodes_of(table: Any, resource: str) -> tuple[list[Node], list[int]] | None:
    """The table's nodes and GPU counts, or None without GPU state (the project's rule: per-GPU
    shares if given, else whole GPUs from the resource's allocatable and requested)."""
    cpu_col = table.resources.index("cpu") if "cpu" in table.resources else -1
    nodes, counts = [], []
    if table.gpu_free is None and resource not in table.resources:
        return None
    for i in range(len(table.names)):
        cpu_left = (
            int(float(table.allocatable[i, cpu_col])) - int(float(table.requested[i, cpu_col]))
            if cpu_col >= 0
            else 0
        )
        if table.gpu_free is not None:
            free = [
                int(f)
                for f, p in zip(table.gpu_free[i].tolist(), table.gpu_present[i].tolist(), strict=True)
                if p
            ]
        else:
            col = table.resources.index(resource)
            alloc = min(max(math.floor(float(table.allocatable[i, col])), 0), 64)
            used = max(math.ceil(float(table.requested[i, col])), 0)
            n_free = max(alloc - used, 0)
            free = [MILLI] * n_free + [0] * (alloc - n_free)
        nodes.append(Node(cpu_left, free))
        counts.append(len(free))
    return nodes, counts


def pod_of(pod: Any, resource: str) -> tuple[int, int, int]:
    """(cpu, k, m): non-zero CPU requests, GPUs and share of each."""
    cpu = int(float(pod.nonzero_requests[pod.resources.index("cpu")])) if "cpu" in pod.resources else 0
    if pod.gpu is not None:
        return cpu, pod.gpu.count, pod.gpu.milli if pod.gpu.count else 0
    k = int(float(pod.requests[pod.resources.index(resource)])) if resource in pod.resources else 0
    return cpu, k, MILLI if k else 0


def has_requests(pod: Any) -> bool:
    return pod.gpu is not None or any(
        float(v) != 0 for name, v in zip(pod.resources, pod.requests.tolist(), strict=True) if name != "pods"
    )


def tasks_of(table: Any, args: Any) -> list[tuple[int, int, int, int]]:
    if args.typicalTasks:
        return [(t.cpu, t.gpus, t.milli, t.weight) for t in args.typicalTasks]
    counts = (
        [] if table.task_counts is None else [tuple(int(v) for v in r) for r in table.task_counts.tolist()]
    )
    return typical_tasks(counts, args.coverage) if counts else []


def gpu_fragmentation(pod: Any, table: Any, args: Any) -> list[int] | None:
    got = nodes_of(table, args.resource)
    tasks = tasks_of(table, args)
    if got is None or not tasks or not has_requests(pod):
        return None
    cpu, k, m = pod_of(pod, args.resource)
    return [fgd_score(node, tasks, cpu, k, m) for node in got[0]]


def gpu_best_fit(pod: Any, table: Any, args: Any, feasible: list[bool]) -> list[int] | None:
    got = nodes_of(table, args.resource)
    if got is None:
        return None
    cpu, k, m = pod_of(pod, args.resource)
    raw: list[int | None] = [
        best_fit_raw(node, cpu, k, m) if ok and fits(node, cpu, k, m) else None
        for node, ok in zip(got[0], feasible, strict=True)
    ]
    return normalize(raw)


def gpu_packing(pod: Any, table: Any, args: Any) -> list[int] | None:
    got = nodes_of(table, args.resource)
    cpu, k, m = pod_of(pod, args.resource)
    if got is None or k == 0:
        return None
    return [packing_score(node, count, cpu, k, m) for node, count in zip(*got, strict=True)]
