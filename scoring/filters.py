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
from scoring.types import CPU, MEMORY, PODS, BoolArray, FloatArray, NodeTable, PodDemand

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
        ok: BoolArray = self.code == OK  # ndarray.__eq__ is typed Any (object.__eq__ compatibility)
        return ok

    def counts(self) -> dict[int, int]:
        """Nodes per verdict code (codes with none left out); bincount, codes being 0..4."""
        return {c: k for c, k in enumerate(np.bincount(self.code.astype(np.intp)).tolist()) if k}

    def take(self, rows: npt.NDArray[np.int64]) -> Verdict:
        return Verdict(self.code[rows], self.resource[rows], self.value[rows], self.unresolvable[rows])


def load_usable(nodes: NodeTable, policy: Policy) -> BoolArray:
    """(N,) True where the node has a measurement of every resource in
    ``policy.load_resources`` that the table carries, younger than ``load.staleAfterSeconds``
    (an age equal to the limit is stale: Koordinator ``isNodeMetricExpired``,
    ``time.Since(updateTime) >= expiration``)."""
    fresh = nodes.load_age_s < policy.load.staleAfterSeconds
    cols = sorted(c for c in (nodes.column(r) for r in policy.load_resources) if c >= 0)
    if cols:
        fresh &= ~np.isnan(nodes.usage[:, cols]).any(axis=1)
    return fresh


# One check: (failing mask (N,), code, resource column, value (N,) or scalar,
# unresolvable (N,) or scalar). Checks are listed in precedence order.
Check = tuple[BoolArray, int, int, "FloatArray | float", "BoolArray | bool"]


def _checks(
    pod: PodDemand, nodes: NodeTable, policy: Policy, estimate: FloatArray, load_ok: BoolArray
) -> list[Check]:
    n = len(nodes)
    out: list[Check] = []
    for name in (CPU, MEMORY):
        col = nodes.column(name)
        if col >= 0 and nodes.stats.alloc_all_positive[col]:
            continue
        out.append(
            (nodes.allocatable[:, col] <= 0 if col >= 0 else np.ones(n, bool), NO_ALLOCATABLE, col, 0.0, True)
        )
    if policy.filters.resourceFit:
        for r, name in enumerate(pod.resources):
            want = 1.0 if name == PODS else float(pod.requests[r])
            if want <= 0:
                continue
            col = nodes.column(name)
            if col < 0:  # the table does not carry it: allocatable 0, never fits
                out.append((np.ones(n, bool), INSUFFICIENT, -1 - r, want, True))
                continue
            alloc = nodes.allocatable[:, col]
            out.append((want > alloc - nodes.requested[:, col], INSUFFICIENT, col, want, want > alloc))
    if policy.load.fallback == "reject":
        out.append((~load_ok, NO_FRESH_LOAD, -1, nodes.load_age_s, True))
    for name, threshold in policy.filters.usageThresholds.items():
        col = nodes.column(name)
        if col < 0:
            continue
        # Koordinator filterNodeUsage: int64(math.Round(used / allocatable * 100)) > threshold,
        # a threshold of 0 skips the resource. For x >= 0 and an integer threshold t,
        # round(x) > t  <=>  x >= t + 1/2, so the percentage is rounded only for the nodes that
        # fail (filter_nodes), not for all of them.
        if nodes.stats.has_threshold_override[col]:
            override = nodes.threshold_override[:, col]
            per_node = np.where(np.isnan(override), float(threshold), override)
            limit: FloatArray | float = per_node
            enabled: BoolArray | None = per_node != 0
        elif threshold == 0:
            continue
        else:
            limit, enabled = float(threshold), None
        alloc = nodes.allocatable[:, col]
        pod_col = pod.resources.index(name) if name in pod.resources else -1
        used = nodes.usage[:, col] + nodes.pending[:, col] + (estimate[pod_col] if pod_col >= 0 else 0.0)
        positive = nodes.stats.alloc_all_positive[col]
        pct = used / (alloc if positive else np.maximum(alloc, 1.0)) * 100.0
        over = (pct >= np.floor(limit) + 0.5) & load_ok
        if not positive:
            over &= alloc > 0
        out.append((over if enabled is None else over & enabled, USAGE_THRESHOLD, col, pct, False))
    return out


def filter_nodes(
    pod: PodDemand, nodes: NodeTable, policy: Policy, *, estimate: FloatArray, load_ok: BoolArray
) -> Verdict:
    """Judge every node; the first failing check (in the order of the codes' documentation)
    gives the node's verdict. ``estimate`` is the pod's (R,) estimated usage, ``load_ok`` the
    (N,) mask from ``load_usable``. The masks are computed for all nodes at once; the verdict
    details are written only for the nodes that fail something."""
    n = len(nodes)
    v = Verdict(np.zeros(n, np.int8), np.full(n, -1, np.int16), np.zeros(n), np.zeros(n, bool))
    checks = _checks(pod, nodes, policy, estimate, load_ok)
    failing = np.zeros(n, bool)
    for mask, *_ in checks:
        failing |= mask
    idx = np.flatnonzero(failing)
    if not len(idx):
        return v
    code = np.zeros(len(idx), np.int8)
    for mask, c, col, value, unresolvable in checks:
        hit = mask[idx] & (code == OK)
        if not hit.any():
            continue
        rows = idx[hit]
        code[hit] = c
        v.resource[rows] = col
        v.value[rows] = value[rows] if isinstance(value, np.ndarray) else value
        v.unresolvable[rows] = unresolvable[rows] if isinstance(unresolvable, np.ndarray) else unresolvable
    v.code[idx] = code
    threshold = idx[code == USAGE_THRESHOLD]
    v.value[threshold] = go_round(v.value[threshold])
    return v


def _resource_name(col: int, nodes: NodeTable, pod: PodDemand) -> str:
    """The resource of a verdict's column: the table's, or (-1 - r) the pod's r-th that the
    table does not carry, or none (-1)."""
    return nodes.resources[col] if col >= 0 else (pod.resources[-1 - col] if col < -1 else "")


def _stale_sentence(what: str, policy: Policy) -> str:
    return f"{what} (stale after {policy.load.staleAfterSeconds:g}s; policy fallback: reject)"


def describe(v: Verdict, i: int, nodes: NodeTable, pod: PodDemand, policy: Policy) -> str:
    """One node's verdict as a sentence with that node's own figures (the explanation's)."""
    code, col, value = int(v.code[i]), int(v.resource[i]), float(v.value[i])
    name = _resource_name(col, nodes, pod)
    if code == INSUFFICIENT:
        return "Too many pods" if name == PODS else f"Insufficient {name}"
    if code == NO_ALLOCATABLE:
        return f"node reports no allocatable {name or 'cpu/memory'}"
    if code == USAGE_THRESHOLD:
        limit = nodes.threshold_override[i, col]
        limit = policy.filters.usageThresholds[name] if np.isnan(limit) else limit
        return (
            f"node {name} usage too high: {value:.0f}% of allocatable with this pod "
            f"(estimated), threshold {limit:g}%"
        )
    if code == NO_FRESH_LOAD:
        return _stale_sentence(
            "no load data" if not np.isfinite(value) else f"load data is {value:.0f}s old", policy
        )
    return ""


def _threshold_limits(
    v: Verdict, rows: npt.NDArray[np.int64], nodes: NodeTable, policy: Policy
) -> FloatArray:
    """(len(rows),) the usage threshold in percent that applied to each of ``rows`` (nodes
    failing USAGE_THRESHOLD): the node's override, else the policy's."""
    out = np.zeros(len(rows))
    cols = v.resource[rows].astype(np.int64)
    for col in np.unique(cols).tolist():
        sel = cols == col
        override = nodes.threshold_override[rows[sel], col]
        default = float(policy.filters.usageThresholds[nodes.resources[col]])
        out[sel] = np.where(np.isnan(override), default, override)
    return out


def _group_sentence(
    code: int, col: int, detail: float, nodes: NodeTable, pod: PodDemand, policy: Policy
) -> str:
    name = _resource_name(col, nodes, pod)
    if code == USAGE_THRESHOLD:  # Koordinator's "node(s) <res> usage exceed threshold", with the limit
        return f"node(s) {name} usage exceed threshold {detail:g}% (measured + estimated, with this pod)"
    if code == NO_FRESH_LOAD:
        return _stale_sentence("no load data" if detail else "load data stale", policy)
    return ""


def reason_groups(
    v: Verdict, nodes: NodeTable, pod: PodDemand, policy: Policy
) -> list[tuple[str, npt.NDArray[np.int64]]]:
    """The failing nodes grouped by the sentence the filter answers for them, as
    ``[(reason, rows (K,) int64), ...]``.

    kube-scheduler's FailedScheduling event counts identical reasons ("0/5000 nodes are
    available: 120 Insufficient cpu, 40 node(s) cpu usage exceed threshold 80% ..."), so these
    sentences carry no per-node figure (``describe`` and the explanation have them): a few
    distinct reasons instead of one per node, and one sentence built per group, not per node.
    """
    failing = np.flatnonzero(v.code != OK)
    if not len(failing):
        return []
    code = v.code[failing].astype(np.int64)
    col = v.resource[failing].astype(np.int64)
    detail = np.zeros(len(failing))
    threshold = code == USAGE_THRESHOLD
    if threshold.any():
        detail[threshold] = _threshold_limits(v, failing[threshold], nodes, policy)
    stale = code == NO_FRESH_LOAD
    if stale.any():
        detail[stale] = ~np.isfinite(v.value[failing[stale]])
    # one int64 key per node (np.unique over rows of a 2-D array is several times slower):
    # code < 2**7, resource column + 2**15 < 2**16, detail (threshold x 1000 <= 10**5) < 2**20
    # (an absurd per-node threshold above 1,048 % shares its group's first node's sentence)
    milli = np.clip(np.round(detail * 1000), 0, (1 << 20) - 1).astype(np.int64)
    key = (code << 36) | ((col + (1 << 15)) << 20) | milli
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    out = []
    for g, i in enumerate(first.tolist()):
        rows = failing[inverse == g]
        sentence = _group_sentence(
            int(code[i]), int(col[i]), float(detail[i]), nodes, pod, policy
        ) or describe(v, int(rows[0]), nodes, pod, policy)
        out.append((sentence, rows))
    return out
