"""Scalar reference implementations of what the scoring core claims to compute.

Written from the published definitions, not from ``scoring/``: one node and one resource at a
time, Python ``int`` wherever the upstream Go code uses ``int64`` (so there is no float rounding
and no overflow), Go's truncating integer division, Go's ``math.Round`` computed exactly, and no
numpy in any formula (table entries are read out of the arrays and converted first).

Sources (the newest versions found in the stored copies of the upstream repositories; file and
function named at each function):

* kube-scheduler, ``kubernetes/kubernetes`` ``pkg/scheduler/framework/plugins/noderesources/``,
  as of release v1.36 (the release config/deploy deploys; its changelog since v1.35.0 changes
  one formula of these, BalancedAllocation's, kubernetes/kubernetes#135573, and both of its
  formulas are here; v1.36's is read from the PR's diff, the file at the v1.36 tag not being
  among the stored copies):
  ``least_allocated.go`` (``leastResourceScorer``, ``leastRequestedScore``),
  ``most_allocated.go`` (``mostResourceScorer``, ``mostRequestedScore``),
  ``balanced_allocation.go`` (``PreScore``, ``Score``, ``NewBalancedAllocation``,
  ``balancedResourceScorer``; v1.36 adds ``balancedResourceScore``), ``requested_to_capacity_ratio.go``
  (``buildRequestedToCapacityRatioScorerFunction``, ``scaledUtilization``,
  ``requestedToCapacityRatioScorer``), ``resource_allocation.go`` (``score``,
  ``calculateResourceAllocatableRequest``, ``calculatePodResourceRequest``,
  ``isBestEffortPod``), ``fit.go`` (``fitsRequest``, ``nodeResourceStrategyTypeMap``: the Fit
  strategies do not set ``useRequested``); ``pkg/scheduler/framework/plugins/helper/
  shape_score.go`` (``BuildBrokenLinearFunction``).
* Koordinator, ``koordinator-sh/koordinator`` ``pkg/scheduler/plugins/loadaware/``:
  ``load_aware.go`` (``Filter``, ``filterNodeUsage``, ``Score``, ``loadAwareSchedulingScorer``
  with ``dominantResourceWeight`` as of v1.7, ``leastUsedScore``), ``helper.go``
  (``isNodeMetricExpired``, ``getResourceValue``),
  ``estimator/default_estimator.go`` (``estimatedPodUsed``, ``estimatedUsedByResource``),
  defaults from ``pkg/scheduler/apis/config/v1/defaults.go``.
* The GPU strategies (GPUFragmentation, GPUBestFit, GPUPacking): reference_gpu.py, from the
  simulator of the FGD paper (``hkust-adsl/kubernetes-scheduler-simulator``).
* The extender's own rules: the combination from the module docstring of ``scoring/evaluate.py``
  (strategies of weight 0 and strategies that do not apply take no part; weighted mean;
  fallback for stale or missing load; infeasible nodes 0; spread; ``floor(x / 10 + 0.5)``), the
  verdict codes / precedence documented in ``scoring/filters.py``, and which resources' usage
  must be known for load data to be usable (``Policy.load_resources`` in ``scoring/policy.py``).

Mapping of the core's inputs onto the upstream ones (as the project defines them):

* kube-scheduler's ``nodeInfo.Allocatable`` is ``NodeTable.allocatable``; a resource the table
  does not carry has allocatable 0. ``nodeInfo.NonZeroRequested`` is
  ``NodeTable.nonzero_requested``, ``nodeInfo.Requested`` is ``NodeTable.requested``; the
  incoming pod's ``calculatePodResourceRequest`` is ``PodDemand.nonzero_requests`` (CPU and
  memory defaults substituted: ``NonMissingContainerRequests``) or ``PodDemand.requests`` when
  the plugin sets ``useRequested``, except for ``pods``: ``PodDemand.requests`` carries 1 there
  for the fit check, but ``PodRequests`` (the containers' requests) never holds a ``pods``
  entry, so the scorers see 0. ``AllowedPodNumber`` is the ``pods`` column of allocatable and
  ``len(nodeInfo.Pods)`` the ``pods`` column of ``requested``.
* Koordinator's ``NodeMetric`` node usage is ``NodeTable.usage`` (NaN = no NodeMetric, i.e. no
  data), the estimated usage of assigned-but-unreported pods is ``NodeTable.pending``, the age
  of ``NodeMetric.Status.UpdateTime`` is ``NodeTable.load_age_s`` (+inf = never reported), and
  a node's ``CustomUsageThresholds`` annotation is ``NodeTable.threshold_override`` *per cell*
  (NaN = the policy's value). Note that Koordinator's ``generateUsageThresholdsFilterProfile``
  replaces the *whole* threshold map when the annotation sets any threshold; the per-cell
  override is the project's own definition and is what is implemented here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from tests.scoring import reference_gpu as rg
from tests.scoring import reference_trimaran as rt

MAX_NODE_SCORE = 100  # k8s.io/kube-scheduler/framework MaxNodeScore
MAX_EXTENDER_PRIORITY = 10  # k8s.io/kube-scheduler/extender/v1 MaxExtenderPriority

CPU, MEMORY, PODS, EPHEMERAL_STORAGE = "cpu", "memory", "pods", "ephemeral-storage"

# Koordinator estimator defaults (estimator/default_estimator.go).
KOORD_DEFAULT_MILLI_CPU_REQUEST = 250
KOORD_DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
# Koordinator LoadAwareSchedulingArgs defaults (apis/config/v1/defaults.go).
KOORD_DEFAULT_RESOURCE_WEIGHTS = {CPU: 1, MEMORY: 1}
KOORD_DEFAULT_SCALING_FACTORS = {CPU: 85, MEMORY: 70}

# Verdict codes and their precedence (first failing check wins), scoring/filters.py.
OK, INSUFFICIENT, NO_ALLOCATABLE, USAGE_THRESHOLD, NO_FRESH_LOAD = 0, 1, 2, 3, 4

# kube-scheduler MaxCustomPriorityScore: the range of a RequestedToCapacityRatio shape's scores.
MAX_CUSTOM_PRIORITY_SCORE = 10
MAX_UTILIZATION = 100  # requested_to_capacity_ratio.go maxUtilization

REQUESTS_STRATEGIES = ("LeastAllocated", "MostAllocated", "RequestedToCapacityRatio", "BalancedAllocation")
LOAD_STRATEGIES = ("LoadAware", "TargetLoadPacking", "LoadVariationRiskBalancing", "LowRiskOverCommitment")
# The resources whose measured usage each Trimaran strategy reads (scoring/policy.py): TLP CPU only,
# LVRB and LROC CPU and memory.
TRIMARAN_RESOURCES = {
    "TargetLoadPacking": (CPU,),
    "LoadVariationRiskBalancing": (CPU, MEMORY),
    "LowRiskOverCommitment": (CPU, MEMORY),
}


# --------------------------------------------------------------------------------------------
# Go arithmetic


def go_int(x: Any) -> int:
    """The int64 an integral table entry stands for (exact; refuses NaN, inf and fractions)."""
    f = float(x)
    if not math.isfinite(f) or f != math.floor(f):
        raise ValueError(f"not an integral quantity: {f!r}")
    return int(f)


def go_div(a: int, b: int) -> int:
    """Go's ``a / b`` on int64: truncates toward zero (Python's ``//`` floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def go_round(x: float) -> float:
    """Go's ``math.Round``: the nearest integer, halves away from zero, computed exactly (the
    Go implementation works on the bits, so it is exact for every float64)."""
    if math.isnan(x) or math.isinf(x) or x == 0:
        return x
    n = math.floor(abs(Fraction(x)) + Fraction(1, 2))
    return math.copysign(float(n), x)


def go_float_to_int64(x: float) -> int:
    """Go's ``int64(f)`` conversion: truncation toward zero."""
    return int(x)


# --------------------------------------------------------------------------------------------
# Table access (plain Python values only)


def node_value(matrix: Any, nodes: Any, i: int, name: str) -> float:
    """Entry ``(i, name)`` of an (N, R) NodeTable array as a Python float; 0.0 when the table
    does not carry the resource (the project's rule: absent = allocatable 0)."""
    if name not in nodes.resources:
        return 0.0
    return float(matrix[i, nodes.resources.index(name)])


def pod_value(vector: Any, pod: Any, name: str) -> float:
    if name not in pod.resources:
        return 0.0
    return float(vector[pod.resources.index(name)])


def node_count(nodes: Any) -> int:
    return len(nodes.names)


# --------------------------------------------------------------------------------------------
# kube-scheduler: NodeResourcesFit scoring strategies and NodeResourcesBalancedAllocation


def is_scalar_resource_name(name: str) -> bool:
    """``pkg/scheduler/util`` ``IsScalarResourceName``: extended resources (any domain-prefixed
    name, ``IsExtendedResourceName``), ``kubernetes.io/``-prefixed native resources
    (``IsPrefixedNativeResource``), ``hugepages-*`` and ``attachable-volumes-*``."""
    return "/" in name or name.startswith("hugepages-") or name.startswith("attachable-volumes-")


def k8s_pod_request(pod: Any, name: str, *, use_requested: bool) -> int:
    """``resource_allocation.go`` ``calculatePodResourceRequest``: ``PodRequests`` with
    ``NonMissingContainerRequests`` (100m CPU / 200 MiB for a container that sets no CPU or
    memory request) unless ``useRequested``; only CPU and memory get defaults. ``PodRequests``
    sums container requests, which cannot name ``pods``: 0 for it."""
    if name == PODS:
        return 0
    if not use_requested and name in (CPU, MEMORY):
        return go_int(pod_value(pod.nonzero_requests, pod, name))
    return go_int(pod_value(pod.requests, pod, name))


def k8s_allocatable_allocated(
    nodes: Any, i: int, name: str, pod_request: int, *, use_requested: bool
) -> tuple[int, int]:
    """``resource_allocation.go`` ``calculateResourceAllocatableRequest`` (DRA off): the node's
    allocatable and its own requests (``allocated``, without the incoming pod: v1.36 hands the
    scorers both; up to v1.35 only ``allocated`` + the pod).

    CPU and memory: the node's ``NonZeroRequested`` (``Requested`` with ``useRequested``);
    ephemeral storage and scalar resources: ``Requested``; a scalar resource the pod does not
    request returns ``(0, 0)`` ("bypass scoring on this resource"); anything else (e.g.
    ``pods``) returns ``(0, 0)``."""
    if pod_request == 0 and is_scalar_resource_name(name):
        return 0, 0
    alloc = go_int(node_value(nodes.allocatable, nodes, i, name))
    if name in (CPU, MEMORY):
        node_req = nodes.requested if use_requested else nodes.nonzero_requested
        return alloc, go_int(node_value(node_req, nodes, i, name))
    if name == EPHEMERAL_STORAGE or (is_scalar_resource_name(name) and name in nodes.resources):
        return alloc, go_int(node_value(nodes.requested, nodes, i, name))
    return 0, 0


def k8s_scorer_lists(
    pod: Any, nodes: Any, i: int, names: Sequence[str], *, use_requested: bool
) -> tuple[list[int], list[int], list[int]]:
    """``resource_allocation.go`` ``score``: the (requested, allocated, allocatable) lists
    handed to the scorer, requested = allocated + the pod's request; entries whose allocatable
    is 0 are left at (0, 0, 0)."""
    requested, allocated, allocatable = [0] * len(names), [0] * len(names), [0] * len(names)
    for j, name in enumerate(names):
        pod_request = k8s_pod_request(pod, name, use_requested=use_requested)
        alloc, held = k8s_allocatable_allocated(nodes, i, name, pod_request, use_requested=use_requested)
        if alloc == 0:
            continue
        allocatable[j], allocated[j], requested[j] = alloc, held, held + pod_request
    return requested, allocated, allocatable


def k8s_vectors(
    pod: Any, nodes: Any, i: int, names: Sequence[str], *, use_requested: bool
) -> tuple[list[int], list[int]]:
    """The (requested, allocatable) lists of ``k8s_scorer_lists``: all that the Fit strategies
    read."""
    requested, _, allocatable = k8s_scorer_lists(pod, nodes, i, names, use_requested=use_requested)
    return requested, allocatable


def k8s_skipped_resources(
    pod: Any, nodes: Any, i: int, names: Sequence[str], *, use_requested: bool
) -> list[str]:
    """The resources kube-scheduler leaves out of node ``i``'s score (allocatable 0 after
    ``calculateResourceAllocatableRequest``)."""
    _, allocatable = k8s_vectors(pod, nodes, i, names, use_requested=use_requested)
    return [n for n, a in zip(names, allocatable, strict=True) if a == 0]


def least_requested_score(requested: int, capacity: int) -> int:
    """``least_allocated.go`` ``leastRequestedScore``."""
    if capacity == 0:
        return 0
    if requested > capacity:
        return 0
    return go_div((capacity - requested) * MAX_NODE_SCORE, capacity)


def most_requested_score(requested: int, capacity: int) -> int:
    """``most_allocated.go`` ``mostRequestedScore``."""
    if capacity == 0:
        return 0
    if requested > capacity:
        # `requested` might be greater than `capacity` because pods with no requests get
        # minimum values.
        requested = capacity
    return go_div(requested * MAX_NODE_SCORE, capacity)


def _weighted_scorer(
    per_resource, weights: Sequence[int], requested: Sequence[int], allocatable: Sequence[int]
) -> int:
    """The loop shared by ``leastResourceScorer`` and ``mostResourceScorer``: resources with
    allocatable 0 are skipped entirely (neither score nor weight); 0 if nothing is left."""
    node_score = weight_sum = 0
    for w, req, alloc in zip(weights, requested, allocatable, strict=True):
        if alloc == 0:
            continue
        node_score += per_resource(req, alloc) * w
        weight_sum += w
    if weight_sum == 0:
        return 0
    return go_div(node_score, weight_sum)


def _names_weights(args: Any) -> tuple[list[str], list[int]]:
    """``config.ResourceSpec`` list: names and int64 weights."""
    return [r.name for r in args.resources], [go_int(r.weight) for r in args.resources]


def least_allocated(pod: Any, nodes: Any, args: Any) -> list[int]:
    """NodeResourcesFit ``LeastAllocated`` per node (``least_allocated.go``
    ``leastResourceScorer`` over ``resource_allocation.go`` ``score``)."""
    names, weights = _names_weights(args)
    out = []
    for i in range(node_count(nodes)):
        requested, allocatable = k8s_vectors(pod, nodes, i, names, use_requested=False)
        out.append(_weighted_scorer(least_requested_score, weights, requested, allocatable))
    return out


def most_allocated(pod: Any, nodes: Any, args: Any) -> list[int]:
    """NodeResourcesFit ``MostAllocated`` per node (``most_allocated.go``
    ``mostResourceScorer`` over ``resource_allocation.go`` ``score``)."""
    names, weights = _names_weights(args)
    out = []
    for i in range(node_count(nodes)):
        requested, allocatable = k8s_vectors(pod, nodes, i, names, use_requested=False)
        out.append(_weighted_scorer(most_requested_score, weights, requested, allocatable))
    return out


def balanced_resource_score(held: Sequence[int], allocatable: Sequence[int]) -> int:
    """``balanced_allocation.go`` ``balancedResourceScore`` (v1.36; the whole of
    ``balancedResourceScorer`` up to v1.35): the balance of a node holding ``held``, float64
    operations in Go's order."""
    fractions: list[float] = []
    total_fraction = 0.0
    for req, alloc in zip(held, allocatable, strict=True):
        if alloc == 0:
            continue
        fraction = float(req) / float(alloc)
        if fraction > 1:
            fraction = 1.0
        total_fraction += fraction
        fractions.append(fraction)
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = total_fraction / float(len(fractions))
        acc = 0.0
        for fraction in fractions:
            acc = acc + (fraction - mean) * (fraction - mean)
        std = math.sqrt(acc / float(len(fractions)))
    return go_float_to_int64((1 - std) * float(MAX_NODE_SCORE))


def balanced_resource_scorer_v136(
    requested: Sequence[int], allocated: Sequence[int], allocatable: Sequence[int]
) -> int:
    """``balanced_allocation.go`` ``balancedResourceScorer`` since v1.36
    (kubernetes/kubernetes#135573): the change in balance the pod brings,
    ``MaxNodeScore/2 + (MaxNodeScore/2 + scoreWithPod - scoreWithoutPod) / 2`` in int64."""
    half = go_div(MAX_NODE_SCORE, 2)
    with_pod = balanced_resource_score(requested, allocatable)
    without_pod = balanced_resource_score(allocated, allocatable)
    return half + go_div(half + with_pod - without_pod, 2)


def is_best_effort_for(pod: Any, names: Sequence[str]) -> bool:
    """``resource_allocation.go`` ``isBestEffortPod`` over BalancedAllocation's resources
    (its pod requests use ``useRequested``: no non-zero defaults)."""
    return all(k8s_pod_request(pod, n, use_requested=True) == 0 for n in names)


def balanced_allocation(pod: Any, nodes: Any, args: Any) -> list[int] | None:
    """NodeResourcesBalancedAllocation per node, in the formula of the kube-scheduler release
    ``args.formula`` names: ``v1.36`` (``balanced_resource_scorer_v136``) or ``v1.35``
    (``balanced_resource_score`` of the node with the pod). ``NewBalancedAllocation`` sets
    ``useRequested: true``: the node's ``Requested`` and the pod's plain requests, no non-zero
    defaults. A best-effort pod (no request for any of the resources) is skipped: ``PreScore``
    returns ``Skip``, so the plugin takes no part in the pod's scoring: None. Weights are not
    used."""
    names = [r.name for r in args.resources]
    if is_best_effort_for(pod, names):
        return None
    out = []
    for i in range(node_count(nodes)):
        requested, allocated, allocatable = k8s_scorer_lists(pod, nodes, i, names, use_requested=True)
        if args.formula == "v1.35":
            out.append(balanced_resource_score(requested, allocatable))
        elif args.formula == "v1.36":
            out.append(balanced_resource_scorer_v136(requested, allocated, allocatable))
        else:
            raise ValueError(f"no kube-scheduler release {args.formula!r} in the reference")
    return out


def scaled_utilization(requested: int, capacity: int, maximum: int) -> int:
    """``requested_to_capacity_ratio.go`` ``scaledUtilization``: ``requested * max / capacity``
    exact (Go widens to 128 bits; Python ints are exact anyway), requested clamped to
    ``[0, capacity]``."""
    if capacity <= 0 or requested <= 0:
        return 0
    if requested >= capacity:
        return maximum
    return go_div(requested * maximum, capacity)


def broken_linear_function(shape: Sequence[tuple[int, int]]):
    """``helper/shape_score.go`` ``BuildBrokenLinearFunction`` over ``(utilization, score)``
    points: ``shape[0].Score`` up to the first point, ``shape[-1].Score`` past the last, linear
    in between with Go's int64 arithmetic (``*`` then ``/``, truncating toward zero: a falling
    segment rounds up)."""

    def f(p: int) -> int:
        for i in range(len(shape)):
            if p <= shape[i][0]:
                if i == 0:
                    return shape[0][1]
                (u0, s0), (u1, s1) = shape[i - 1], shape[i]
                return s0 + go_div((s1 - s0) * (p - u0), u1 - u0)
        return shape[-1][1]

    return f


def rtcr_shape(args: Any) -> list[tuple[int, int]]:
    """``requestedToCapacityRatioScorer``: the configured shape, scores scaled by
    ``MaxNodeScore / MaxCustomPriorityScore`` (integer division: 10)."""
    scale = MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE
    return [(go_int(p.utilization), go_int(p.score) * scale) for p in args.shape]


def requested_to_capacity_ratio_scorer(
    shape: Sequence[tuple[int, int]],
    weights: Sequence[int],
    requested: Sequence[int],
    allocatable: Sequence[int],
) -> int:
    """``buildRequestedToCapacityRatioScorerFunction``: resources with allocatable 0 are
    skipped; ``resourceScoringFunction`` is the shape at ``maxUtilization`` when
    ``requested > capacity`` (or capacity 0), else at ``scaledUtilization``; a resource scoring
    0 leaves both sums; ``int64(math.Round(float64(nodeScore) / float64(weightSum)))``."""
    raw = broken_linear_function(shape)

    def resource_score(req: int, cap: int) -> int:
        if cap == 0 or req > cap:
            return raw(MAX_UTILIZATION)
        return raw(scaled_utilization(req, cap, MAX_UTILIZATION))

    node_score = weight_sum = 0
    for w, req, alloc in zip(weights, requested, allocatable, strict=True):
        if alloc == 0:
            continue
        score = resource_score(req, alloc)
        if score > 0:
            node_score += score * w
            weight_sum += w
    if weight_sum == 0:
        return 0
    return go_float_to_int64(go_round(float(node_score) / float(weight_sum)))


def requested_to_capacity_ratio(pod: Any, nodes: Any, args: Any) -> list[int]:
    """NodeResourcesFit ``RequestedToCapacityRatio`` per node over ``resource_allocation.go``
    ``score`` (non-zero requests for CPU and memory: the Fit plugin does not set
    ``useRequested``)."""
    names, weights = _names_weights(args)
    shape = rtcr_shape(args)
    out = []
    for i in range(node_count(nodes)):
        requested, allocatable = k8s_vectors(pod, nodes, i, names, use_requested=False)
        out.append(requested_to_capacity_ratio_scorer(shape, weights, requested, allocatable))
    return out


# --------------------------------------------------------------------------------------------
# kube-scheduler NodeResourcesFit filter


def fits_request(pod: Any, nodes: Any, i: int) -> list[tuple[str, bool]]:
    """``fit.go`` ``fitsRequest``: the insufficient resources of node ``i`` as
    ``(resource, unresolvable)``, in the pod's resource order. The pod count: one more pod
    must fit ``AllowedPodNumber`` (``Unresolvable`` is not set for it upstream). Other
    resources: a request > 0 must not exceed allocatable − requested; unresolvable when it
    exceeds allocatable itself."""
    out = []
    for name in pod.resources:
        alloc = go_int(node_value(nodes.allocatable, nodes, i, name))
        used = go_int(node_value(nodes.requested, nodes, i, name))
        if name == PODS:
            if used + 1 > alloc:
                out.append((name, False))
            continue
        want = go_int(pod_value(pod.requests, pod, name))
        if want > 0 and want > alloc - used:
            out.append((name, want > alloc))
    return out


# --------------------------------------------------------------------------------------------
# Koordinator LoadAwareScheduling


def estimated_used_by_resource(request: int, limit: int, name: str, scaling_factor: int) -> int:
    """``estimator/default_estimator.go`` ``estimatedUsedByResource``."""
    quantity = limit if limit > request else request
    if quantity == 0:
        if name == CPU:
            return KOORD_DEFAULT_MILLI_CPU_REQUEST
        if name == MEMORY:
            return KOORD_DEFAULT_MEMORY_REQUEST
        return 0
    estimated = go_float_to_int64(go_round(float(quantity) * float(scaling_factor) / 100))
    if limit > 0 and estimated > limit:
        estimated = limit
    return estimated


def estimate_pod(pod: Any, factors: Mapping[str, float]) -> dict[str, int]:
    """``default_estimator.go`` ``estimatedPodUsed``: one entry per scaling factor; requests
    and limits are plain ``PodRequests`` / ``PodLimits`` (no non-zero defaults)."""
    return {
        name: estimated_used_by_resource(
            go_int(pod_value(pod.requests, pod, name)),
            go_int(pod_value(pod.limits, pod, name)),
            name,
            go_int(f),
        )
        for name, f in factors.items()
    }


def is_node_metric_expired(age_s: float, expiration_s: float) -> bool:
    """``helper.go`` ``isNodeMetricExpired``: no update time, or
    ``time.Since(updateTime) >= expiration`` (an age equal to the limit is expired)."""
    return not age_s < expiration_s  # +inf (never reported) and NaN are expired


def load_aware_args(policy: Any) -> tuple[dict[str, float], dict[str, float], float]:
    """(resourceWeights, estimatedScalingFactors, dominantResourceWeight) of the policy's
    LoadAware strategy, or Koordinator's defaults when there is none."""
    for spec in policy.strategies:
        if spec.name == "LoadAware":
            a = spec.args
            return dict(a.resourceWeights), dict(a.estimatedScalingFactors), a.dominantResourceWeight
    return dict(KOORD_DEFAULT_RESOURCE_WEIGHTS), dict(KOORD_DEFAULT_SCALING_FACTORS), 0


def load_resources(policy: Any) -> set[str]:
    """The resources whose measured usage the policy reads (``Policy.load_resources``): the
    usage thresholds' keys (a 0 included: a per-node override may enable it), LoadAware's
    ``resourceWeights`` keys when the policy lists LoadAware (whatever its weight), CPU for
    TargetLoadPacking, CPU and memory for LoadVariationRiskBalancing and LowRiskOverCommitment.
    Koordinator's defaults play no part when the policy has no LoadAware strategy."""
    names = set(policy.filters.usageThresholds)
    for spec in policy.strategies:
        if spec.name == "LoadAware":
            names |= set(spec.args.resourceWeights)
        names |= set(TRIMARAN_RESOURCES.get(spec.name, ()))
    return names


def load_usable(nodes: Any, i: int, policy: Any) -> bool:
    """Node ``i`` has a finite measured usage of every resource in ``load_resources`` that the
    table carries, and it is not expired after ``load.staleAfterSeconds`` (Koordinator's
    ``isNodeMetricExpired``: an age equal to the limit is expired)."""
    if is_node_metric_expired(float(nodes.load_age_s[i]), policy.load.staleAfterSeconds):
        return False
    for name in load_resources(policy):
        if name in nodes.resources and not math.isfinite(node_value(nodes.usage, nodes, i, name)):
            return False
    return True


def estimated_used(nodes: Any, i: int, name: str, estimate: Mapping[str, int]) -> int:
    """``load_aware.go`` ``GetEstimatedUsed``: node usage + estimated usage of assigned pods
    the metric does not show yet + the incoming pod's estimate."""
    return (
        go_int(node_value(nodes.usage, nodes, i, name))
        + go_int(node_value(nodes.pending, nodes, i, name))
        + estimate.get(name, 0)
    )


def least_used_score(used: int, capacity: int) -> int:
    """``load_aware.go`` ``leastUsedScore``."""
    if capacity == 0:
        return 0
    if used > capacity:
        return 0
    return go_div((capacity - used) * MAX_NODE_SCORE, capacity)


def load_aware_scheduling_scorer(
    dominant_weight: int, weights: Sequence[int], used: Sequence[int], allocatable: Sequence[int]
) -> int:
    """``load_aware.go`` ``loadAwareSchedulingScorer`` (with ``dominantResourceWeight``): the
    dominant score is the lowest per-resource score (the most used resource)."""
    node_score = dominant_score = weight_sum = 0
    if dominant_weight != 0:
        dominant_score, weight_sum = MAX_NODE_SCORE, dominant_weight
    for w, u, a in zip(weights, used, allocatable, strict=True):
        score = least_used_score(u, a)
        node_score += score * w
        weight_sum += w
        if dominant_score > score:
            dominant_score = score
    node_score += dominant_score * dominant_weight
    if weight_sum <= 0:
        return 0
    return go_div(node_score, weight_sum)


def load_aware(pod: Any, nodes: Any, args: Any, *, estimate: Mapping[str, int]) -> list[int | None]:
    """Koordinator LoadAwareScheduling ``Score`` per node, whether or not the metric is fresh
    (staleness is the combination's business: ``load_usable``); None where the node has no
    measured usage of one of the weighted resources the table carries (no NodeMetric: nothing to
    compute from). A weighted resource the table lacks has allocatable 0: score 0, its weight
    counts (``leastUsedScore`` with capacity 0)."""
    names = list(args.resourceWeights)
    weights = [go_int(args.resourceWeights[n]) for n in names]
    dominant = go_int(args.dominantResourceWeight)
    out: list[int | None] = []
    for i in range(node_count(nodes)):
        if any(
            n in nodes.resources and not math.isfinite(node_value(nodes.usage, nodes, i, n)) for n in names
        ):
            out.append(None)
            continue
        used = [estimated_used(nodes, i, n, estimate) for n in names]
        alloc = [go_int(node_value(nodes.allocatable, nodes, i, n)) for n in names]
        out.append(load_aware_scheduling_scorer(dominant, weights, used, alloc))
    return out


# --------------------------------------------------------------------------------------------
# Trimaran over the project's NodeTable (scalar formulas in reference_trimaran.py)
#
# Mapping (the project's definition): the measured average is ``usage_avg``, the latest
# ``usage`` where the average is NaN (Trimaran reads AVG or Latest); an unknown std is 0; TLP
# reads the node's ``capacity`` and ``pending`` (the not-yet-measured usage of recent pods) and
# the pod's per-container CPU; LVRB/LROC read CPU and memory; a resource the table lacks has
# allocatable 0 and no metric. LROC does not apply to a pod with no CPU or memory request or
# limit (upstream scores it 0 on every node).


def avg_or_latest(nodes: Any, i: int, name: str) -> float:
    if name not in nodes.resources:
        return math.nan
    avg = node_value(nodes.usage_avg, nodes, i, name)
    return node_value(nodes.usage, nodes, i, name) if math.isnan(avg) else avg


def known_std(nodes: Any, i: int, name: str) -> float:
    std = node_value(nodes.usage_std, nodes, i, name)
    return 0.0 if math.isnan(std) else std


def target_load_packing(pod: Any, nodes: Any, args: Any) -> list[int]:
    """Trimaran TargetLoadPacking per node (``targetloadpacking.go`` ``Score``)."""
    if CPU not in nodes.resources:
        return [0] * node_count(nodes)
    if CPU in pod.resources:
        c = pod.resources.index(CPU)
        reqs = [go_int(v) for v in pod.container_requests[:, c]]
        lims = [go_int(v) for v in pod.container_limits[:, c]]
        overhead = go_int(pod.overhead[c])
    else:
        reqs, lims, overhead = [0], [0], 0
    pod_cpu = rt.tlp_pod_cpu(
        reqs, lims, overhead, args.defaultRequestsMultiplier, int(args.defaultRequestsCpuMillis)
    )
    return [
        rt.tlp_score(
            go_int(node_value(nodes.capacity, nodes, i, CPU)),
            avg_or_latest(nodes, i, CPU),
            node_value(nodes.pending, nodes, i, CPU),
            float(pod_cpu),
            args.targetUtilization,
        )
        for i in range(node_count(nodes))
    ]


def load_variation_risk_balancing(pod: Any, nodes: Any, args: Any) -> list[int]:
    """Trimaran LoadVariationRiskBalancing per node (``loadvariationriskbalancing.go``)."""
    out = []
    for i in range(node_count(nodes)):
        per = []
        for name in (CPU, MEMORY):
            avg = avg_or_latest(nodes, i, name)
            score = rt.lvrb_resource_score(
                go_int(node_value(nodes.allocatable, nodes, i, name)),
                avg,
                known_std(nodes, i, name),
                pod_value(pod.requests, pod, name),
                args.safeVarianceMargin,
                args.safeVarianceSensitivity,
                name == MEMORY,
            )
            per.append((not math.isnan(avg), score))
        out.append(rt.lvrb_score(per))
    return out


def low_risk_over_commitment(pod: Any, nodes: Any, args: Any) -> list[int] | None:
    """Trimaran LowRiskOverCommitment per node (``lowriskovercommitment.go``); None for a pod
    without CPU or memory requests and limits."""
    req = {n: go_int(pod_value(pod.requests, pod, n)) for n in (CPU, MEMORY)}
    lim = {n: go_int(pod_value(pod.limits, pod, n)) for n in (CPU, MEMORY)}
    if not any(req.values()) and not any(lim.values()):
        return None
    out = []
    for i in range(node_count(nodes)):
        risks = []
        for name in (CPU, MEMORY):
            avg = avg_or_latest(nodes, i, name)
            risks.append(
                rt.lroc_risk(
                    go_int(node_value(nodes.allocatable, nodes, i, name)),
                    go_int(node_value(nodes.requested, nodes, i, name)),
                    go_int(node_value(nodes.limits, nodes, i, name)),
                    req[name],
                    lim[name],
                    avg,
                    known_std(nodes, i, name),
                    window=args.smoothingWindowSize,
                    weight=args.riskLimitWeights.get(name, 0.5),
                    is_memory=name == MEMORY,
                    present=not math.isnan(avg),
                )
            )
        out.append(rt.lroc_score(risks))
    return out


TRIMARAN = {
    "TargetLoadPacking": target_load_packing,
    "LoadVariationRiskBalancing": load_variation_risk_balancing,
    "LowRiskOverCommitment": low_risk_over_commitment,
}


def usage_threshold_violation(
    nodes: Any, i: int, policy: Any, estimate: Mapping[str, int]
) -> tuple[str, int] | None:
    """``load_aware.go`` ``filterNodeUsage``: the first resource whose
    ``int64(math.Round(estimatedUsed / allocatable * 100))`` exceeds its threshold, with that
    percentage; a threshold of 0 and an allocatable of 0 skip the resource."""
    for name, threshold in policy.filters.usageThresholds.items():
        if name in nodes.resources:
            override = node_value(nodes.threshold_override, nodes, i, name)
            if not math.isnan(override):
                threshold = override
        if threshold == 0:
            continue
        total = go_int(node_value(nodes.allocatable, nodes, i, name))
        if total == 0:
            continue
        usage = go_float_to_int64(
            go_round(float(estimated_used(nodes, i, name, estimate)) / float(total) * 100)
        )
        if usage <= threshold:
            continue
        return name, usage
    return None


# --------------------------------------------------------------------------------------------
# The extender's filter verdict and combination (scoring/filters.py, scoring/evaluate.py)


@dataclasses.dataclass
class Verdict:
    code: int
    resource: str | None  # None: no resource concerned
    unresolvable: bool | None  # None: not defined upstream for this code


def verdict(pod: Any, nodes: Any, i: int, policy: Any, estimate: Mapping[str, int], usable: bool) -> Verdict:
    """Node ``i``'s verdict, checks in the documented precedence: no allocatable CPU or memory
    (``NO_ALLOCATABLE``, the project's rule), NodeResourcesFit (``INSUFFICIENT``), stale or
    missing load under ``fallback: reject`` (``NO_FRESH_LOAD``, Koordinator's
    ``EnableScheduleWhenNodeMetricsExpired: false``), usage thresholds (``USAGE_THRESHOLD``,
    only where load data is usable, as Koordinator skips nodes without a fresh NodeMetric)."""
    for name in (CPU, MEMORY):
        if node_value(nodes.allocatable, nodes, i, name) <= 0:
            return Verdict(NO_ALLOCATABLE, name if name in nodes.resources else None, True)
    if policy.filters.resourceFit:
        failing = fits_request(pod, nodes, i)
        if failing:
            name, unresolvable = failing[0]
            return Verdict(INSUFFICIENT, name, None if name == PODS else unresolvable)
    if policy.load.fallback == "reject" and not usable:
        return Verdict(NO_FRESH_LOAD, None, None)
    if usable:
        violation = usage_threshold_violation(nodes, i, policy, estimate)
        if violation is not None:
            return Verdict(USAGE_THRESHOLD, violation[0], False)
    return Verdict(OK, None, None)


def to_extender_score(x: Fraction | float) -> int:
    """``floor(x / 10 + 0.5)`` clipped to 0..MaxExtenderPriority (exact on a Fraction)."""
    v = math.floor(Fraction(x) / 10 + Fraction(1, 2))
    return max(0, min(MAX_EXTENDER_PRIORITY, v))


def requests_component(name: str, pod: Any, nodes: Any, args: Any) -> list[int] | None:
    return {
        "LeastAllocated": least_allocated,
        "MostAllocated": most_allocated,
        "RequestedToCapacityRatio": requested_to_capacity_ratio,
        "BalancedAllocation": balanced_allocation,
    }[name](pod, nodes, args)


@dataclasses.dataclass
class Evaluation:
    estimate: dict[str, int]
    usable: list[bool]
    verdicts: list[Verdict]
    components: dict[str, list[int | None] | None]  # None: the strategy does not apply
    fallback: list[bool]  # the requests fallback replaced the load strategies
    combined: list[Fraction]  # exact
    scores: list[int]
    implicit: list[int] | None  # the implicit LeastAllocated, when the fallback used it


@dataclasses.dataclass(frozen=True)
class _ResourceSpec:
    name: str
    weight: int


@dataclasses.dataclass(frozen=True)
class _ResourcesArgs:
    resources: tuple[_ResourceSpec, ...]


# kube-scheduler's default scoring resources (cpu=1, memory=1): the implicit LeastAllocated.
DEFAULT_RESOURCES_ARGS = _ResourcesArgs((_ResourceSpec(CPU, 1), _ResourceSpec(MEMORY, 1)))


def evaluate(pod: Any, nodes: Any, policy: Any) -> Evaluation:
    """Filter, score and combine as documented in ``scoring/evaluate.py``, in exact
    arithmetic (Fractions).

    A strategy takes part when its weight is > 0 and it applies to the pod (not None). A node's
    combined score is the weighted mean of the taking-part strategies' scores (0 when none
    takes part). Where load data is not usable and a load strategy takes part, the fallback
    decides: ``requests`` takes the weighted mean of the taking-part requests-based strategies
    (the implicit LeastAllocated cpu=1, memory=1 when none takes part) and flags the node,
    ``zero`` counts the load strategies as 0, ``reject`` has failed the node. Infeasible nodes
    0; ``spread`` stretches the feasible nodes linearly to 0..100 (at least two of them and two
    distinct values); then ``floor(x / 10 + 0.5)``."""
    n = node_count(nodes)
    _, factors, _ = load_aware_args(policy)
    estimate = estimate_pod(pod, factors)
    usable = [load_usable(nodes, i, policy) for i in range(n)]
    verdicts = [verdict(pod, nodes, i, policy, estimate, usable[i]) for i in range(n)]
    components: dict[str, list[int | None] | None] = {}
    for spec in policy.strategies:
        if spec.name == "LoadAware":
            components[spec.name] = load_aware(pod, nodes, spec.args, estimate=estimate)
        elif spec.name in TRIMARAN:
            components[spec.name] = TRIMARAN[spec.name](pod, nodes, spec.args)
        elif spec.name == "GPUFragmentation":
            components[spec.name] = rg.gpu_fragmentation(pod, nodes, spec.args)
        elif spec.name == "GPUBestFit":  # normalised over the nodes that pass the filter
            feasible = [v.code == OK for v in verdicts]
            components[spec.name] = rg.gpu_best_fit(pod, nodes, spec.args, feasible)
        elif spec.name == "GPUPacking":
            components[spec.name] = rg.gpu_packing(pod, nodes, spec.args)
        else:
            components[spec.name] = requests_component(spec.name, pod, nodes, spec.args)
    taking = [s for s in policy.strategies if s.weight > 0 and components[s.name] is not None]
    load = [s for s in taking if s.name in LOAD_STRATEGIES]
    req = [s for s in taking if s.name not in LOAD_STRATEGIES]
    w_all = sum(go_int(s.weight) for s in taking)
    w_req = sum(go_int(s.weight) for s in req)
    implicit = None
    if load and not req and policy.load.fallback == "requests" and not all(usable):
        implicit = least_allocated(pod, nodes, DEFAULT_RESOURCES_ARGS)

    def weighted(specs, i: int, *, load_as_zero: bool = False) -> Fraction:
        total = Fraction(0)
        for s in specs:
            v = 0 if load_as_zero and s.name in LOAD_STRATEGIES else components[s.name][i]
            assert v is not None, (s.name, i)  # a load score is read only where usable
            total += go_int(s.weight) * v
        return total

    combined: list[Fraction] = []
    fallback: list[bool] = []
    for i in range(n):
        fb = bool(load) and not usable[i] and policy.load.fallback == "requests"
        fallback.append(fb)
        if w_all == 0:
            c = Fraction(0)
        elif fb and req:
            c = weighted(req, i) / w_req
        elif fb:
            c = Fraction(implicit[i])
        elif load and not usable[i]:  # "zero" (or "reject": the node is infeasible anyway)
            c = weighted(taking, i, load_as_zero=True) / w_all
        else:
            c = weighted(taking, i) / w_all
        assert 0 <= c <= MAX_NODE_SCORE
        combined.append(c if verdicts[i].code == OK else Fraction(0))
    if policy.score.spread:
        feasible = [i for i in range(n) if verdicts[i].code == OK]
        if len(feasible) >= 2:
            lo = min(combined[i] for i in feasible)
            hi = max(combined[i] for i in feasible)
            if hi > lo:
                for i in feasible:
                    combined[i] = (combined[i] - lo) * MAX_NODE_SCORE / (hi - lo)
    scores = [to_extender_score(c) for c in combined]
    return Evaluation(estimate, usable, verdicts, components, fallback, combined, scores, implicit)
