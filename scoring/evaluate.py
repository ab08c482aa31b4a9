"""One call from the service into the core: filter, score, combine, map to 0..10.

Combination (documented in scoring/README.md), exact integer arithmetic throughout:

* every strategy gives each node an integer 0..100; a strategy that does not apply to the pod
  (BalancedAllocation for a best-effort pod; a GPU strategy without GPU state) and strategies of
  weight 0 take no part;
* a node's combined score is the weighted mean ``Σ w·s / Σ w`` of the taking-part strategies
  (0 on every node when none takes part, e.g. BalancedAllocation alone and a best-effort pod);
* where a node's load data is stale or missing, the policy's fallback applies: ``requests``
  takes the weighted mean of the requests-based strategies only (the implicit LeastAllocated
  cpu=1, memory=1 when none takes part), ``zero`` scores the load strategies 0, ``reject`` has
  already failed the node in the filter;
* infeasible nodes score 0;
* with ``score.spread`` the feasible nodes' combined scores are stretched linearly so that the
  lowest becomes 0 and the highest 100 (nothing happens with fewer than two distinct values);
* the extender's 0..10 is ``floor(combined / 10 + 1/2)``: round half up, computed on the exact
  rational (numerator over a common denominator), so a tie at .5 always goes up.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

from scoring.estimate import estimate_pod
from scoring.filters import Verdict, filter_nodes, load_usable
from scoring.policy import LOAD_KIND, Policy, ResourcesArgs, StrategySpec, strategy_kind
from scoring.strategies import GPU_STRATEGIES, LOAD_STRATEGIES, REQUESTS_STRATEGIES, least_allocated
from scoring.types import BoolArray, FloatArray, IntArray, NodeTable, PodDemand

MAX_EXTENDER_PRIORITY = 10  # k8s.io/kube-scheduler/extender/v1 MaxExtenderPriority
MAX_NODE_SCORE = 100


@dataclasses.dataclass(frozen=True, eq=False)
class Evaluation:
    """Everything the service answers from, and explains with.

    verdict: per-node filter result; components: strategy name -> (N,) int64 raw 0..100 score,
    or None where the strategy does not apply to this pod (load strategies' values count only
    where ``load_ok``); combined: (N,) float64 0..100 after fallback and spreading; scores: (N,)
    int64 0..10; load_ok: (N,) fresh load data; fallback: (N,) True where the requests fallback
    replaced the load strategies; estimate: (R,) the pod's estimated usage; implicit: (N,)
    int64 the implicit LeastAllocated where the fallback used it, else None.
    """

    verdict: Verdict
    components: dict[str, IntArray | None]
    combined: FloatArray
    scores: npt.NDArray[np.int64]
    load_ok: BoolArray
    fallback: BoolArray
    estimate: FloatArray
    implicit: IntArray | None = None

    def take(self, rows: npt.NDArray[np.int64]) -> Evaluation:
        """The evaluation of ``rows`` only, aligned with ``NodeTable.take(rows)``."""
        return Evaluation(
            self.verdict.take(rows),
            {k: None if c is None else c[rows] for k, c in self.components.items()},
            self.combined[rows],
            self.scores[rows],
            self.load_ok[rows],
            self.fallback[rows],
            self.estimate,
            None if self.implicit is None else self.implicit[rows],
        )


def to_extender_scores(combined: FloatArray) -> npt.NDArray[np.int64]:
    """(N,) 0..100 float -> (N,) int64 0..10, round half up; NaN -> 0. For callers holding
    floats; ``evaluate`` itself rounds the exact rationals."""
    safe = np.nan_to_num(combined, nan=0.0, posinf=100.0, neginf=0.0)
    return np.clip(np.floor(safe / 10.0 + 0.5), 0, MAX_EXTENDER_PRIORITY).astype(np.int64)


def _components(
    pod: PodDemand, nodes: NodeTable, policy: Policy, estimate: FloatArray, feasible: BoolArray
) -> dict[str, IntArray | None]:
    out: dict[str, IntArray | None] = {}
    for spec in policy.strategies:
        if spec.name in LOAD_STRATEGIES:
            out[spec.name] = LOAD_STRATEGIES[spec.name](pod, nodes, spec.args, estimate=estimate)
        elif spec.name in GPU_STRATEGIES:
            out[spec.name] = GPU_STRATEGIES[spec.name](pod, nodes, spec.args, feasible=feasible)
        else:
            out[spec.name] = REQUESTS_STRATEGIES[spec.name](pod, nodes, spec.args)
    return out


def _weighted_sum(
    specs: list[StrategySpec], components: dict[str, IntArray | None], n: int, mask: BoolArray | None = None
) -> IntArray:
    total = np.zeros(n, np.int64)
    for s in specs:
        c = components[s.name]
        assert c is not None
        total += s.weight * (c if mask is None else np.where(mask, c, 0))
    return total


def _combine(
    pod: PodDemand,
    nodes: NodeTable,
    policy: Policy,
    components: dict[str, IntArray | None],
    load_ok: BoolArray,
) -> tuple[IntArray, int, BoolArray, IntArray | None]:
    """(numerator (N,) int64, common denominator, fallback mask, implicit scores or None):
    ``combined = numerator / denominator`` exactly."""
    n = len(nodes)
    taking = [s for s in policy.strategies if s.weight > 0 and components[s.name] is not None]
    load = [s for s in taking if strategy_kind(s.name) == LOAD_KIND]
    req = [s for s in taking if strategy_kind(s.name) != LOAD_KIND]
    w_all = sum(s.weight for s in taking)
    no_load = ~load_ok if load else np.zeros(n, bool)
    mode = policy.load.fallback
    if w_all == 0:
        return np.zeros(n, np.int64), 1, np.zeros(n, bool), None
    if mode == "zero" and load:
        return (
            _weighted_sum(req, components, n) + _weighted_sum(load, components, n, load_ok),
            w_all,
            np.zeros(n, bool),
            None,
        )
    total = _weighted_sum(taking, components, n)
    if mode != "requests" or not no_load.any():
        return total, w_all, np.zeros(n, bool), None
    implicit = None
    w_fb = sum(s.weight for s in req)
    if w_fb > 0:
        total_fb = _weighted_sum(req, components, n)
    else:
        implicit = least_allocated(pod, nodes, ResourcesArgs())
        total_fb, w_fb = implicit, 1
    den = math.lcm(w_all, w_fb)
    num = np.where(no_load, total_fb * (den // w_fb), total * (den // w_all))
    return num, den, no_load, implicit


def _levels(num: IntArray, den: int) -> npt.NDArray[np.int64]:
    """``floor(num / den / 10 + 1/2)`` exactly: ``(2·num + 10·den) // (20·den)``."""
    return (2 * num + 10 * den) // (20 * den)  # 0 <= num <= 100·den: always 0..10


def _spread(num: IntArray, den: int, feasible: BoolArray) -> tuple[FloatArray, npt.NDArray[np.int64]] | None:
    """The stretched (combined, levels), or None when there is nothing to stretch."""
    if np.count_nonzero(feasible) < 2:
        return None
    values = num[feasible]
    lo, hi = int(values.min()), int(values.max())
    if hi <= lo:
        return None
    d = hi - lo
    shifted = np.where(feasible, num - lo, 0)
    combined = shifted * float(MAX_NODE_SCORE) / float(d)
    levels = (20 * shifted + d) // (2 * d)  # 0 <= shifted <= d: always 0..10
    return combined, np.where(feasible, levels, 0)


@dataclasses.dataclass(frozen=True, eq=False)
class Feasibility:
    """The filter half of an evaluation: ``estimate`` (R,) the pod's estimated usage,
    ``load_ok`` (N,) fresh load data, ``verdict`` per node. All a filter answer needs; the
    scores need it too, so a prioritize call for the same pod and nodes can start from it."""

    estimate: FloatArray
    load_ok: BoolArray
    verdict: Verdict


def feasibility(*, pod: PodDemand, nodes: NodeTable, policy: Policy) -> Feasibility:
    """Judge every node in ``nodes`` for ``pod`` under ``policy``, without scoring."""
    estimate = estimate_pod(pod, policy.estimator.estimatedScalingFactors)
    load_ok = load_usable(nodes, policy)
    verdict = filter_nodes(pod, nodes, policy, estimate=estimate, load_ok=load_ok)
    return Feasibility(estimate, load_ok, verdict)


def evaluate(
    *, pod: PodDemand, nodes: NodeTable, policy: Policy, judged: Feasibility | None = None
) -> Evaluation:
    """Filter and score every node in ``nodes`` for ``pod`` under ``policy``. ``judged``: the
    ``feasibility`` of this very pod, nodes and policy when the caller already has it."""
    judged = judged or feasibility(pod=pod, nodes=nodes, policy=policy)
    estimate, load_ok, verdict = judged.estimate, judged.load_ok, judged.verdict
    feasible = verdict.feasible
    components = _components(pod, nodes, policy, estimate, feasible)
    num, den, fallback, implicit = _combine(pod, nodes, policy, components, load_ok)
    num = np.where(feasible, num, 0)
    spread = _spread(num, den, feasible) if policy.score.spread else None
    if spread is None:
        combined, scores = num / float(den), _levels(num, den)
    else:
        combined, scores = spread
    return Evaluation(
        verdict, components, combined, scores.astype(np.int64), load_ok, fallback, estimate, implicit
    )


def release(
    nodes: NodeTable,
    *,
    freed_requests: FloatArray,
    freed_usage: FloatArray,
    freed_limits: FloatArray | None = None,
) -> NodeTable:
    """The node table as it would be after pods leave: (N, R) requests, limits and estimated
    usage subtracted (never below zero). Used to re-check preemption candidates. Arrays that
    do not change are shared with ``nodes`` (all are read-only). Per-GPU shares
    (``gpu_free``) are kept as they are: which GPUs the victims hold is not known here (whole
    GPUs derived from a resource's ``requested`` are freed with it)."""
    return dataclasses.replace(
        nodes,
        requested=np.maximum(nodes.requested - freed_requests, 0.0),
        nonzero_requested=np.maximum(nodes.nonzero_requested - freed_requests, 0.0),
        limits=nodes.limits if freed_limits is None else np.maximum(nodes.limits - freed_limits, 0.0),
        usage=np.maximum(nodes.usage - freed_usage, 0.0),
    )
