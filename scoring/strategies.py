"""Scoring strategies, vectorised over all candidate nodes at once.

Each strategy maps (pod, nodes) to an (N,) float64 score in 0..100 (kube-scheduler's
``MaxNodeScore``). Requests-based strategies reproduce kube-scheduler's integer arithmetic
(int64, truncating division) so that they give the same numbers as the in-tree plugins; the
values stay exact in float64 below 2**53 (memory up to ~90 TB per node). Load-based strategies
return NaN for nodes whose load data is not usable; the combiner decides what that means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from scoring.policy import LoadAwareArgs, ResourcesArgs, StrategyArgs
from scoring.types import BoolArray, FloatArray, NodeTable, PodDemand

MAX_NODE_SCORE = 100.0  # k8s.io/kube-scheduler/framework MaxNodeScore


def _columns(nodes: NodeTable, names: tuple[str, ...]) -> list[int]:
    return [nodes.column(n) for n in names]


def _take(matrix: FloatArray, col: int) -> FloatArray:
    """Column ``col`` of an (N, R) array; zeros when the table lacks the resource."""
    return matrix[:, col] if col >= 0 else np.zeros(matrix.shape[0])


def _requested_after(pod: PodDemand, nodes: NodeTable, col: int, name: str) -> tuple[FloatArray, FloatArray]:
    """(allocatable, non-zero requested including the pod) for one resource, as scored by
    kube-scheduler's ``resource_allocation.go`` (``calculateResourceAllocatableRequest``)."""
    pod_col = pod.resources.index(name) if name in pod.resources else -1
    pod_req = pod.nonzero_requests[pod_col] if pod_col >= 0 else 0.0
    return _take(nodes.allocatable, col), _take(nodes.nonzero_requested, col) + pod_req


def _weighted(per_resource: list[FloatArray], weights: list[float]) -> FloatArray:
    """``Σ w·s / Σ w`` truncated, as the in-tree scorers combine resources."""
    total = sum(w * s for w, s in zip(weights, per_resource, strict=True))
    return np.floor(total / sum(weights))


def least_allocated(pod: PodDemand, nodes: NodeTable, args: ResourcesArgs) -> FloatArray:
    """kube-scheduler LeastAllocated (``least_allocated.go``):
    ``s_r = (alloc − req)·100 / alloc`` (0 if req > alloc or alloc = 0), node = ``Σ w·s / Σ w``."""
    scores = []
    for rw, col in zip(args.resources, _columns(nodes, tuple(r.name for r in args.resources)), strict=True):
        alloc, req = _requested_after(pod, nodes, col, rw.name)
        ok = (alloc > 0) & (req <= alloc)
        safe = np.where(alloc > 0, alloc, 1.0)
        scores.append(np.where(ok, np.floor((alloc - req) * MAX_NODE_SCORE / safe), 0.0))
    return _weighted(scores, [r.weight for r in args.resources])


def most_allocated(pod: PodDemand, nodes: NodeTable, args: ResourcesArgs) -> FloatArray:
    """kube-scheduler MostAllocated (``most_allocated.go``):
    ``s_r = min(req, alloc)·100 / alloc`` (0 if alloc = 0), node = ``Σ w·s / Σ w``."""
    scores = []
    for rw, col in zip(args.resources, _columns(nodes, tuple(r.name for r in args.resources)), strict=True):
        alloc, req = _requested_after(pod, nodes, col, rw.name)
        safe = np.where(alloc > 0, alloc, 1.0)
        scores.append(np.where(alloc > 0, np.floor(np.minimum(req, alloc) * MAX_NODE_SCORE / safe), 0.0))
    return _weighted(scores, [r.weight for r in args.resources])


def balanced_allocation(pod: PodDemand, nodes: NodeTable, args: ResourcesArgs) -> FloatArray:
    """kube-scheduler NodeResourcesBalancedAllocation (``balanced_allocation.go``):
    fractions ``φ_r = min(req/alloc, 1)`` over resources with alloc > 0; with two resources
    ``std = |φ1 − φ2| / 2``, otherwise the population std; score = ``trunc((1 − std)·100)``."""
    fracs, present = [], []
    for rw, col in zip(args.resources, _columns(nodes, tuple(r.name for r in args.resources)), strict=True):
        alloc, req = _requested_after(pod, nodes, col, rw.name)
        has = alloc > 0
        fracs.append(np.where(has, np.minimum(req / np.where(has, alloc, 1.0), 1.0), 0.0))
        present.append(has)
    phi, mask = np.stack(fracs, axis=1), np.stack(present, axis=1)
    count = mask.sum(axis=1)
    mean = np.where(count > 0, (phi * mask).sum(axis=1) / np.maximum(count, 1), 0.0)
    std = np.sqrt(((phi - mean[:, None]) ** 2 * mask).sum(axis=1) / np.maximum(count, 1))
    std = np.where(count > 2, std, 0.0)
    if phi.shape[1] >= 2:  # the two-resource special case of the Go code (same value, other rounding)
        two = count == 2
        first = np.argmax(mask, axis=1)
        last = phi.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
        rows = np.arange(len(phi))
        std = np.where(two, np.abs(phi[rows, first] - phi[rows, last]) / 2, std)
    return np.trunc((1.0 - std) * MAX_NODE_SCORE)


def load_aware(pod: PodDemand, nodes: NodeTable, args: LoadAwareArgs, *,
               estimate: FloatArray, load_ok: BoolArray) -> FloatArray:
    """Koordinator LoadAwareScheduling Score (``load_aware.go``):
    ``used_r = measured_r + pending_r + est_r(pod)``; ``leastUsed_r = (alloc − used)·100 / alloc``
    (0 if used > alloc or alloc = 0); node = ``(Σ w_r·leastUsed_r + dw·min_r leastUsed_r) /
    (Σ w_r + dw)``, integer division. NaN where ``load_ok`` is False."""
    names = tuple(args.resourceWeights)
    per, weights = [], []
    for name, col in zip(names, _columns(nodes, names), strict=True):
        pod_col = pod.resources.index(name) if name in pod.resources else -1
        alloc = _take(nodes.allocatable, col)
        used = np.floor(_take(nodes.usage, col) + _take(nodes.pending, col)
                        + (estimate[pod_col] if pod_col >= 0 else 0.0) + 0.5)
        ok = (alloc > 0) & (used <= alloc)
        safe = np.where(alloc > 0, alloc, 1.0)
        per.append(np.where(ok, np.floor((alloc - used) * MAX_NODE_SCORE / safe), 0.0))
        weights.append(args.resourceWeights[name])
    total = sum(w * s for w, s in zip(weights, per, strict=True))
    dominant = args.dominantResourceWeight
    if dominant > 0:
        total = total + dominant * np.minimum.reduce(per)
    score = np.floor(total / (sum(weights) + dominant))
    return np.where(load_ok, score, np.nan)


REQUESTS_STRATEGIES: Mapping[str, Callable[[PodDemand, NodeTable, StrategyArgs], FloatArray]] = MappingProxyType({
    "LeastAllocated": least_allocated,  # type: ignore[dict-item]
    "MostAllocated": most_allocated,  # type: ignore[dict-item]
    "BalancedAllocation": balanced_allocation,  # type: ignore[dict-item]
})
