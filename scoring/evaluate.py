"""One call from the service into the core: filter, score, combine, map to 0..10.

Combination (documented in scoring/README.md): the weighted mean of the enabled strategies'
0..100 scores. Where a node's load data is stale or missing, the policy's fallback applies:
``requests`` drops the load strategies for that node (the weighted mean of the requests-based
strategies only; the implicit LeastAllocated cpu=1, memory=1 if the policy has none), ``zero``
scores them 0, ``reject`` has already failed the node in the filter. Infeasible nodes score 0.
With ``score.spread`` the feasible nodes' combined scores are stretched linearly to 0..100.
The final map to the extender's range is ``floor(score / 10 + 0.5)`` (round half up), clipped
to 0..10 (``MaxExtenderPriority``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from scoring.estimate import estimate_pod
from scoring.filters import Verdict, filter_nodes, load_usable
from scoring.policy import LOAD_KIND, LoadAwareArgs, Policy, ResourcesArgs, strategy_kind
from scoring.strategies import REQUESTS_STRATEGIES, least_allocated, load_aware
from scoring.types import BoolArray, FloatArray, NodeTable, PodDemand

MAX_EXTENDER_PRIORITY = 10  # k8s.io/kube-scheduler/extender/v1 MaxExtenderPriority


@dataclasses.dataclass(frozen=True, eq=False)
class Evaluation:
    """Everything the service answers from, and explains with.

    verdict: per-node filter result; components: strategy name -> (N,) raw 0..100 score
    (NaN where a load strategy had no usable data); combined: (N,) 0..100 after fallback and
    spreading; scores: (N,) int64 0..10; load_ok: (N,) fresh load data; fallback: (N,) True
    where the fallback replaced the load strategies; estimate: (R,) the pod's estimated usage.
    """

    verdict: Verdict
    components: dict[str, FloatArray]
    combined: FloatArray
    scores: npt.NDArray[np.int64]
    load_ok: BoolArray
    fallback: BoolArray
    estimate: FloatArray


def to_extender_scores(combined: FloatArray) -> npt.NDArray[np.int64]:
    """(N,) 0..100 float -> (N,) int64 0..10, round half up; NaN -> 0."""
    safe = np.nan_to_num(combined, nan=0.0, posinf=100.0, neginf=0.0)
    return np.clip(np.floor(safe / 10.0 + 0.5), 0, MAX_EXTENDER_PRIORITY).astype(np.int64)


def _components(pod: PodDemand, nodes: NodeTable, policy: Policy, estimate: FloatArray,
                load_ok: BoolArray) -> dict[str, FloatArray]:
    out = {}
    for spec in policy.strategies:
        if isinstance(spec.args, LoadAwareArgs):
            out[spec.name] = load_aware(pod, nodes, spec.args, estimate=estimate, load_ok=load_ok)
        else:
            out[spec.name] = REQUESTS_STRATEGIES[spec.name](pod, nodes, spec.args)
    return out


def _combine(policy: Policy, components: dict[str, FloatArray], load_ok: BoolArray,
             fallback_scores: FloatArray) -> tuple[FloatArray, BoolArray]:
    n = len(load_ok)
    total, weight = np.zeros(n), 0.0
    req_total, req_weight = np.zeros(n), 0.0
    for spec in policy.strategies:
        s = components[spec.name]
        if strategy_kind(spec.name) == LOAD_KIND:
            total += spec.weight * np.nan_to_num(s, nan=0.0)
        else:
            total += spec.weight * s
            req_total += spec.weight * s
            req_weight += spec.weight
        weight += spec.weight
    combined = total / weight
    use_fallback = ~load_ok & (policy.load.fallback == "requests")
    if use_fallback.any():
        fb = req_total / req_weight if req_weight > 0 else fallback_scores
        combined = np.where(use_fallback, fb, combined)
    has_load = any(strategy_kind(s.name) == LOAD_KIND for s in policy.strategies)
    return combined, use_fallback & has_load


def _spread(combined: FloatArray, feasible: BoolArray) -> FloatArray:
    if feasible.sum() < 2:
        return combined
    lo, hi = combined[feasible].min(), combined[feasible].max()
    if hi <= lo:
        return combined
    return np.where(feasible, (combined - lo) * 100.0 / (hi - lo), combined)


def evaluate(*, pod: PodDemand, nodes: NodeTable, policy: Policy) -> Evaluation:
    """Filter and score every node in ``nodes`` for ``pod`` under ``policy``."""
    estimate = estimate_pod(pod, policy.estimator.estimatedScalingFactors)
    load_ok = load_usable(nodes, policy)
    verdict = filter_nodes(pod, nodes, policy, estimate=estimate, load_ok=load_ok)
    components = _components(pod, nodes, policy, estimate, load_ok)
    needs_implicit = policy.load.fallback == "requests" and not any(
        strategy_kind(s.name) != LOAD_KIND for s in policy.strategies)
    implicit = least_allocated(pod, nodes, ResourcesArgs()) if needs_implicit else np.zeros(len(nodes))
    combined, fallback = _combine(policy, components, load_ok, implicit)
    combined = np.where(verdict.feasible, np.clip(combined, 0.0, 100.0), 0.0)
    if policy.score.spread:
        combined = _spread(combined, verdict.feasible)
    return Evaluation(verdict, components, combined, to_extender_scores(combined), load_ok,
                      fallback, estimate)


def release(nodes: NodeTable, *, freed_requests: FloatArray, freed_usage: FloatArray) -> NodeTable:
    """The node table as it would be after pods leave: (N, R) requests and estimated usage
    subtracted (never below zero). Used to re-check preemption candidates."""
    return dataclasses.replace(
        nodes,
        requested=np.maximum(nodes.requested - freed_requests, 0.0),
        nonzero_requested=np.maximum(nodes.nonzero_requested - freed_requests, 0.0),
        usage=np.maximum(nodes.usage - freed_usage, 0.0),
        pending=nodes.pending.copy(), allocatable=nodes.allocatable.copy(),
        capacity=nodes.capacity.copy(), usage_std=nodes.usage_std.copy(),
        usage_p95=nodes.usage_p95.copy(), load_age_s=nodes.load_age_s.copy(),
        threshold_override=nodes.threshold_override.copy(),
    )
