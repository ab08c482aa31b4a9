"""Filters: which candidate nodes can take the pod, and a reason for each that cannot.

Verdicts are arrays (a reason code, the resource concerned and a number per node) so that the
whole candidate set is judged at once; ``describe`` turns one node's verdict into the sentence
kube-scheduler shows in the pod's FailedScheduling event.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from scoring.estimate import go_round
from scoring.policy import Policy
from scoring.types import PODS, BoolArray, FloatArray, NodeTable, PodDemand

OK = 0
INSUFFICIENT = 1  # requests do not fit allocatable minus requested (kube-scheduler NodeResourcesFit)
NO_ALLOCATABLE = 2  # the node reports no allocatable CPU or memory at all
USAGE_THRESHOLD = 3  # Koordinator LoadAware filter: estimated usage over the threshold
NO_FRESH_LOAD = 4  # load data stale or missing and the policy's fallback is "reject"


@dataclasses.dataclass(frozen=True, eq=False)
class Verdict:
    """Per node: ``code`` (int8, OK = passes), ``resource`` (column index, -1 if none),
    ``value`` (the percentage or amount behind the code) and ``unresolvable`` (True when
    evicting pods from the node cannot help, so preemption must not consider it)."""

    code: npt.NDArray[np.int8]
    resource: npt.NDArray[np.int16]
    value: FloatArray
    unresolvable: BoolArray

    @property
    def feasible(self) -> BoolArray:
        return self.code == OK


def _record(v: Verdict, mask: BoolArray, code: int, col: int, value: FloatArray | float,
            unresolvable: BoolArray | bool) -> None:
    """Write a failure into nodes that have none yet (the first failing check wins)."""
    fresh = mask & (v.code == OK)
    v.code[fresh] = code
    v.resource[fresh] = col
    v.value[fresh] = np.broadcast_to(value, fresh.shape)[fresh]
    v.unresolvable[fresh] = np.broadcast_to(unresolvable, fresh.shape)[fresh]


def load_usable(nodes: NodeTable, policy: Policy) -> BoolArray:
    """(N,) True where the node has a measurement of every resource the load strategies and
    thresholds use, no older than ``load.staleAfterSeconds``."""
    needed = set(policy.filters.usageThresholds) | set(policy.estimator.resourceWeights)
    cols = [nodes.column(r) for r in needed if nodes.column(r) >= 0]
    fresh = nodes.load_age_s <= policy.load.staleAfterSeconds
    if cols:
        fresh &= np.isfinite(nodes.usage[:, cols]).all(axis=1)
    return fresh


def filter_nodes(pod: PodDemand, nodes: NodeTable, policy: Policy, *, estimate: FloatArray,
                 load_ok: BoolArray) -> Verdict:
    """Judge every node. ``estimate`` is the pod's (R,) estimated usage, ``load_ok`` the
    (N,) mask from ``load_usable``."""
    n = len(nodes)
    v = Verdict(np.zeros(n, np.int8), np.full(n, -1, np.int16), np.zeros(n), np.zeros(n, bool))
    for name in ("cpu", "memory"):
        col = nodes.column(name)
        alloc = nodes.allocatable[:, col] if col >= 0 else np.zeros(n)
        _record(v, alloc <= 0, NO_ALLOCATABLE, col, 0.0, True)
    if policy.filters.resourceFit:
        for r, name in enumerate(pod.resources):
            want = 1.0 if name == PODS else pod.requests[r]
            if want <= 0:
                continue
            col = nodes.column(name)
            alloc = nodes.allocatable[:, col] if col >= 0 else np.zeros(n)
            used = nodes.requested[:, col] if col >= 0 else np.zeros(n)
            _record(v, want > alloc - used, INSUFFICIENT, col if col >= 0 else -1 - r, want,
                    want > alloc)
    if policy.load.fallback == "reject":
        _record(v, ~load_ok, NO_FRESH_LOAD, -1, nodes.load_age_s, True)
    for name, threshold in policy.filters.usageThresholds.items():
        col = nodes.column(name)
        if col < 0:
            continue
        pod_col = pod.resources.index(name) if name in pod.resources else -1
        alloc = nodes.allocatable[:, col]
        used = nodes.usage[:, col] + nodes.pending[:, col] + (estimate[pod_col] if pod_col >= 0 else 0.0)
        pct = go_round(used / np.where(alloc > 0, alloc, 1.0) * 100.0)
        limit = np.where(np.isnan(nodes.threshold_override[:, col]), threshold,
                         nodes.threshold_override[:, col])
        _record(v, load_ok & (alloc > 0) & (pct > limit), USAGE_THRESHOLD, col, pct, False)
    return v


def describe(v: Verdict, i: int, nodes: NodeTable, pod: PodDemand, policy: Policy) -> str:
    """One node's verdict as a sentence for the FailedScheduling event."""
    code, col, value = int(v.code[i]), int(v.resource[i]), float(v.value[i])
    name = nodes.resources[col] if col >= 0 else (pod.resources[-1 - col] if col < -1 else "")
    if code == INSUFFICIENT:
        return "Too many pods" if name == PODS else f"Insufficient {name}"
    if code == NO_ALLOCATABLE:
        return f"node reports no allocatable {name or 'cpu/memory'}"
    if code == USAGE_THRESHOLD:
        limit = nodes.threshold_override[i, col]
        limit = policy.filters.usageThresholds[name] if np.isnan(limit) else limit
        return (f"node {name} usage too high: {value:.0f}% of allocatable with this pod "
                f"(estimated), threshold {limit:g}%")
    if code == NO_FRESH_LOAD:
        age = "no load data" if not np.isfinite(value) else f"load data is {value:.0f}s old"
        return f"{age} (stale after {policy.load.staleAfterSeconds:g}s; policy fallback: reject)"
    return ""
