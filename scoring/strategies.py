"""Scoring strategies, vectorised over all candidate nodes at once.

Each strategy maps (pod, nodes, args) to an (N,) int64 score in 0..100 (kube-scheduler's
``MaxNodeScore``), or None when it does not apply to this pod at all (BalancedAllocation for a
best-effort pod: kube-scheduler's PreScore returns Skip). The formulas are the upstream ones in
their own arithmetic: int64 with truncating division for kube-scheduler and Koordinator
(quantities are at most ``MAX_QUANTITY`` = 2**53, so ``x * 100`` cannot overflow and all
operands are non-negative, where truncation and ``//`` agree), float64 in Go's operation order
where upstream uses float64. Load-based strategies score every node; which nodes have usable
load data is the combiner's business (``Evaluation.load_ok``).

Sources (``kubernetes/kubernetes`` ``pkg/scheduler/framework/plugins/noderesources/``,
``koordinator-sh/koordinator`` ``pkg/scheduler/plugins/loadaware/``,
``kubernetes-sigs/scheduler-plugins`` ``pkg/trimaran/``) are named at each function. The
kube-scheduler strategies are those of v1.36, the release config/deploy deploys: its changelog
since v1.35.0 changes one scoring formula of theirs, BalancedAllocation's (#135573), which
keeps v1.35's as an option (``BalancedAllocationArgs.formula``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from scoring import gpu, trimaran
from scoring.estimate import go_round
from scoring.policy import (
    BalancedAllocationArgs,
    LoadAwareArgs,
    LoadVariationRiskBalancingArgs,
    LowRiskOverCommitmentArgs,
    RequestedToCapacityRatioArgs,
    ResourcesArgs,
    ResourceWeight,
    StrategyArgs,
    TargetLoadPackingArgs,
)
from scoring.types import (
    CPU,
    EPHEMERAL_STORAGE,
    MEMORY,
    PODS,
    BoolArray,
    FloatArray,
    IntArray,
    NodeTable,
    PodDemand,
)

MAX_NODE_SCORE = 100  # k8s.io/kube-scheduler/framework MaxNodeScore
MAX_CUSTOM_PRIORITY_SCORE = 10  # kube-scheduler config.MaxCustomPriorityScore (shape scores)


def is_scalar_resource_name(name: str) -> bool:
    """kube-scheduler ``IsScalarResourceName``: extended (domain-prefixed) and
    ``kubernetes.io/``-prefixed resources, ``hugepages-*`` and ``attachable-volumes-*``."""
    return "/" in name or name.startswith("hugepages-") or name.startswith("attachable-volumes-")


def _pod_value(pod: PodDemand, vector: FloatArray, name: str) -> float:
    return float(vector[pod.resources.index(name)]) if name in pod.resources else 0.0


# Below this allocatable, ``x * 100 / a`` (0 <= x <= a, both integers) is exact in float64 up
# to the final rounding of the division, which can never reach the next integer (the gap to it
# is at least 1/a > 100 * 2**-53): float floor equals Go's int64 division. Above it the int64
# path runs (quantities are at most 2**53, so x * 100 fits in int64).
FLOAT_EXACT_LIMIT = float(2**53 // 100)


def floor_percent(
    x: FloatArray, alloc: FloatArray, *, positive: bool = False, alloc_max: float = math.inf
) -> FloatArray:
    """(N,) ``x·100 / alloc`` truncated, as Go's int64 division, for integers
    ``0 <= x <= alloc``; 0 where ``alloc`` is 0. float64 result. ``positive`` (every alloc > 0)
    and ``alloc_max`` (the column's largest) come from ``NodeTable.stats`` and skip work."""
    q = np.floor(x * float(MAX_NODE_SCORE) / (alloc if positive else np.maximum(alloc, 1.0)))
    if alloc_max >= FLOAT_EXACT_LIMIT:
        big = alloc >= FLOAT_EXACT_LIMIT
        if big.any():
            q[big] = x[big].astype(np.int64) * MAX_NODE_SCORE // alloc[big].astype(np.int64)
    return q


@dataclasses.dataclass(frozen=True)
class ResourceColumns:
    """What ``resource_allocation.go`` hands a scorer for one resource: (N,) requested
    including the pod, (N,) allocated (the node's own requests, without the pod: since
    kube-scheduler v1.36 the scorers receive it as well, for BalancedAllocation's change in
    balance), (N,) allocatable (float64 holding integers) and the weight."""

    name: str
    requested: FloatArray
    allocated: FloatArray
    allocatable: FloatArray
    weight: int
    positive: bool = False  # every node has allocatable > 0
    alloc_max: float = math.inf

    def percent(self, x: FloatArray) -> FloatArray:
        """``floor_percent(x, allocatable)`` with this column's facts."""
        return floor_percent(x, self.allocatable, positive=self.positive, alloc_max=self.alloc_max)


def requested_and_allocatable(
    pod: PodDemand, nodes: NodeTable, resources: tuple[ResourceWeight, ...], *, use_requested: bool
) -> list[ResourceColumns]:
    """``resource_allocation.go`` ``score`` / ``calculateResourceAllocatableRequest``: the
    scored resources, each with requested-including-the-pod, allocated (the node's own) and
    allocatable columns.

    CPU and memory use the node's non-zero requests and the pod's non-zero requests (100m /
    200 MiB for containers without one) unless ``use_requested``; ephemeral storage and scalar
    resources the plain requests. A scalar resource the pod does not request, a resource the
    table does not carry and any other resource (``pods``) are left out; an allocatable of 0
    leaves the resource out of that node's score (the scorers mask on ``allocatable > 0``).
    """
    out = []
    for rw in resources:
        name, col = rw.name, nodes.column(rw.name)
        cpu_mem = name in (CPU, MEMORY)
        nonzero = cpu_mem and not use_requested
        req = _pod_value(pod, pod.nonzero_requests if nonzero else pod.requests, name)
        if col < 0 or (req == 0 and is_scalar_resource_name(name)):
            continue
        if not (cpu_mem or name == EPHEMERAL_STORAGE or is_scalar_resource_name(name)):
            continue
        node_req = (nodes.nonzero_requested if nonzero else nodes.requested)[:, col]
        st = nodes.stats
        out.append(
            ResourceColumns(
                name,
                node_req + req,
                node_req,
                nodes.allocatable[:, col],
                rw.weight,
                st.alloc_all_positive[col],
                st.alloc_max[col],
            )
        )
    return out


def _weighted_mean(
    scores: list[FloatArray],
    cols: list[ResourceColumns],
    n: int,
    *,
    rounding: str = "trunc",
    counted: list[BoolArray] | None = None,
) -> IntArray:
    """``Σ w·s / Σ w`` over each node's counted resources (allocatable > 0 unless ``counted``
    says otherwise), truncated (``trunc``, int64 division) or Go ``math.Round`` (``round``);
    0 where nothing counts. All values are small integers: float64 is exact."""
    # the common case: every resource counts on every node
    if counted is None and all(c.positive for c in cols):
        total = np.zeros(n)
        for s, c in zip(scores, cols, strict=True):
            total += c.weight * s
        wsum: FloatArray | float = float(sum(c.weight for c in cols) or 1)
    else:
        masks = counted if counted is not None else [c.allocatable > 0 for c in cols]
        total, wsum = np.zeros(n), np.zeros(n)
        for s, c, m in zip(scores, cols, masks, strict=True):
            mf = m.astype(np.float64)
            total += c.weight * (s * mf)
            wsum += c.weight * mf
        wsum = np.maximum(wsum, 1.0)
    mean = np.floor(total / wsum) if rounding == "trunc" else go_round(total / wsum)
    return mean.astype(np.int64)


def least_allocated(pod: PodDemand, nodes: NodeTable, args: ResourcesArgs) -> IntArray:
    """NodeResourcesFit LeastAllocated (``least_allocated.go`` ``leastResourceScorer``,
    ``leastRequestedScore``): ``s_r = (alloc − req)·100 / alloc`` (0 if req > alloc),
    node = ``Σ w·s / Σ w`` over resources with alloc > 0."""
    cols = requested_and_allocatable(pod, nodes, args.resources, use_requested=False)
    scores = [c.percent(np.maximum(c.allocatable - c.requested, 0.0)) for c in cols]
    return _weighted_mean(scores, cols, len(nodes))


def most_allocated(pod: PodDemand, nodes: NodeTable, args: ResourcesArgs) -> IntArray:
    """NodeResourcesFit MostAllocated (``most_allocated.go`` ``mostResourceScorer``,
    ``mostRequestedScore``): ``s_r = min(req, alloc)·100 / alloc``, node = ``Σ w·s / Σ w``
    over resources with alloc > 0."""
    cols = requested_and_allocatable(pod, nodes, args.resources, use_requested=False)
    scores = [c.percent(np.minimum(c.requested, c.allocatable)) for c in cols]
    return _weighted_mean(scores, cols, len(nodes))


def broken_linear_table(args: RequestedToCapacityRatioArgs) -> FloatArray:
    """(101,) the shape function at every utilisation 0..100, shape scores scaled by
    ``MaxNodeScore / MaxCustomPriorityScore`` (``requestedToCapacityRatioScorer``) and
    interpolated with Go's truncating int64 division (``helper.BuildBrokenLinearFunction``)."""
    scale = MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE
    pts = [(p.utilization, p.score * scale) for p in args.shape]
    out = []
    for u in range(MAX_NODE_SCORE + 1):
        value = pts[-1][1]
        for i, (pu, ps) in enumerate(pts):
            if u <= pu:
                if i == 0:
                    value = ps
                else:
                    qu, qs = pts[i - 1]
                    num, den = (ps - qs) * (u - qu), pu - qu
                    value = qs + (abs(num) // den) * (1 if num >= 0 else -1)
                break
        out.append(value)
    return np.array(out, dtype=np.float64)


def requested_to_capacity_ratio(
    pod: PodDemand,
    nodes: NodeTable,
    args: RequestedToCapacityRatioArgs,
    *,
    shape_table: FloatArray | None = None,
) -> IntArray:
    """NodeResourcesFit RequestedToCapacityRatio (``requested_to_capacity_ratio.go``
    ``buildRequestedToCapacityRatioScorerFunction``, ``scaledUtilization``): utilisation
    ``u = req·100 / alloc`` (100 when req > alloc, 0 when req <= 0), ``f(u)`` from the broken
    line; resources whose score is 0 are dropped from both sums; node = ``round(Σ w·f / Σ w)``
    (Go ``math.Round``)."""
    table = broken_linear_table(args) if shape_table is None else shape_table
    cols = requested_and_allocatable(pod, nodes, args.resources, use_requested=False)
    scores, counted = [], []
    for c in cols:
        util = c.percent(np.minimum(c.requested, c.allocatable))
        f = table[util.astype(np.intp)]
        scores.append(f)
        counted.append((c.allocatable > 0) & (f > 0))
    return _weighted_mean(scores, cols, len(nodes), rounding="round", counted=counted)


def balanced_allocation(pod: PodDemand, nodes: NodeTable, args: BalancedAllocationArgs) -> IntArray | None:
    """NodeResourcesBalancedAllocation (``balanced_allocation.go``; ``NewBalancedAllocation``
    sets ``useRequested``: plain requests, no non-zero defaults), in the formula of the
    kube-scheduler release ``args.formula`` names. Both rest on the balance of a node holding
    ``x`` (``balancedResourceScore``): fractions ``φ_r = min(x_r/alloc_r, 1)`` over resources
    with alloc > 0; two of them: ``std = |φ1 − φ2| / 2``, more: the population std, fewer:
    0; balance = ``int64((1 − std)·100)``, in 50..100 (a std of fractions in [0, 1] is at most
    1/2).

    * ``v1.36`` (kubernetes/kubernetes#135573, first carried by v1.36.0; the default): the
      change in balance the pod brings, ``50 + (50 + balance(node + pod) − balance(node)) / 2``
      in int64, in 50..100: 75 when the pod leaves the balance as it was, towards 100 when it
      improves it, towards 50 when it worsens it. ``balance(node)`` reads the node's own
      requests on the same resources, skipped the same way (allocatable 0, unrequested scalar
      resources).
    * ``v1.35`` (v1.35 and earlier): ``balance(node + pod)``.

    None for a pod that requests none of the resources (PreScore returns Skip), under both.

    Sources for v1.36: #135573's diff (``balancedResourceScorer(requested, allocated,
    allocatable)`` and its return statement) and v1.36.0's changelog. balanced_allocation.go
    at the v1.36 tag was not available to read: that the merged code is that diff, and that
    ``allocated`` skips resources exactly as ``requested`` does, are inferred (the diff moves
    the pod's request out of ``calculateResourceAllocatableRequest``)."""
    # isBestEffortPod reads the containers' requests, which never hold the pod slot
    if all(_pod_value(pod, pod.requests, rw.name) == 0 for rw in args.resources if rw.name != PODS):
        return None
    cols = requested_and_allocatable(pod, nodes, args.resources, use_requested=True)
    with_pod = _balance(cols, [c.requested for c in cols], len(nodes))
    if args.formula == "v1.35":
        return with_pod
    half = MAX_NODE_SCORE // 2
    without_pod = _balance(cols, [c.allocated for c in cols], len(nodes))
    # Go's int64 division truncates; both balances are in 50..100, so the numerator is 0..100
    # and // (floor) is the same
    return half + (half + with_pod - without_pod) // 2


def _balance(cols: list[ResourceColumns], held: list[FloatArray], n: int) -> IntArray:
    """(N,) ``balancedResourceScore`` of nodes holding ``held`` (one (N,) array per column),
    float64 in Go's operation order, truncated to int64."""
    fracs: list[FloatArray] = []
    present: list[BoolArray | None] = []
    for c, x in zip(cols, held, strict=True):
        if c.positive:
            fracs.append(np.minimum(x / c.allocatable, 1.0))
            present.append(None)
        else:
            has = c.allocatable > 0
            fracs.append(np.minimum(x / np.maximum(c.allocatable, 1.0), 1.0) * has)
            present.append(has)
    if len(cols) < 2:
        std = np.zeros(n)
    elif len(cols) == 2:
        std = np.abs((fracs[0] - fracs[1]) / 2)
        if present[0] is not None or present[1] is not None:
            std *= (cols[0].allocatable > 0) & (cols[1].allocatable > 0)
    else:
        std = _balanced_std(fracs, [c.allocatable > 0 for c in cols])
    return np.trunc((1.0 - std) * float(MAX_NODE_SCORE)).astype(np.int64)


def _balanced_std(fracs: list[FloatArray], present: list[BoolArray]) -> FloatArray:
    """The std of ``balancedResourceScore`` for more than two resources, summing in Go's
    order; a node with exactly two present takes ``|φ1 − φ2| / 2`` of those two."""
    count = np.zeros(len(fracs[0]))
    total = np.zeros(len(fracs[0]))
    for f, p in zip(fracs, present, strict=True):
        count += p
        total = total + f
    safe = np.maximum(count, 1.0)
    mean = total / safe
    acc = np.zeros(len(fracs[0]))
    for f, p in zip(fracs, present, strict=True):
        d = f - mean
        acc = acc + d * d * p
    std = np.sqrt(acc / safe)
    # exactly two present: the first two present fractions, in order
    first, second = np.zeros_like(total), np.zeros_like(total)
    seen = np.zeros_like(total)
    for f, p in zip(fracs, present, strict=True):
        first = np.where(p & (seen == 0), f, first)
        second = np.where(p & (seen == 1), f, second)
        seen += p
    two = np.abs((first - second) / 2)
    return np.where(count == 2, two, np.where(count > 2, std, 0.0))


def load_aware(pod: PodDemand, nodes: NodeTable, args: LoadAwareArgs, *, estimate: FloatArray) -> IntArray:
    """Koordinator LoadAwareScheduling Score (``load_aware.go`` ``loadAwareSchedulingScorer``,
    ``leastUsedScore``): ``used_r = measured_r + pending_r + est_r(pod)``;
    ``leastUsed_r = (alloc − used)·100 / alloc`` (0 if used > alloc or alloc = 0); node =
    ``(Σ w_r·leastUsed_r + dw·min_r leastUsed_r) / (Σ w_r + dw)``, int64 division.
    Nodes without measured usage are scored as if it were 0; the caller masks them."""
    n = len(nodes)
    total = np.zeros(n)
    dominant = None
    for name, w in args.resourceWeights.items():
        col = nodes.column(name)
        if col < 0:
            s = np.zeros(n)  # allocatable 0: leastUsedScore 0, the weight still counts
        else:
            alloc = nodes.allocatable[:, col]
            pod_est = estimate[pod.resources.index(name)] if name in pod.resources else 0.0
            used = nodes.usage[:, col] + nodes.pending[:, col] + pod_est
            # fmax: NaN usage (no measurement) scores 0 without a warning; masked by load_ok
            s = floor_percent(
                np.fmax(alloc - used, 0.0),
                alloc,
                positive=nodes.stats.alloc_all_positive[col],
                alloc_max=nodes.stats.alloc_max[col],
            )
        total += w * s
        dominant = s if dominant is None else np.minimum(dominant, s)
    dw = args.dominantResourceWeight
    if dw and dominant is not None:
        total += dw * dominant
    return np.floor(total / float(sum(args.resourceWeights.values()) + dw)).astype(np.int64)


def _cpu_memory(nodes: NodeTable, matrix: FloatArray, *, fill: float = np.nan) -> FloatArray:
    """(N, 2) the CPU and memory columns of an (N, R) table array; ``fill`` where the table
    does not carry the resource."""
    out = np.full((len(nodes), 2), fill)
    for j, name in enumerate((CPU, MEMORY)):
        col = nodes.column(name)
        if col >= 0:
            out[:, j] = matrix[:, col]
    return out


def _usage_avg(nodes: NodeTable) -> FloatArray:
    """(N, 2) CPU and memory window-average usage, the latest measurement where the source has
    no average (Trimaran's collectors read AVG or Latest, whichever the provider gives)."""
    avg = _cpu_memory(nodes, nodes.usage_avg)
    return np.where(np.isnan(avg), _cpu_memory(nodes, nodes.usage), avg)


def _pod_cpu_memory(pod: PodDemand, vector: FloatArray) -> FloatArray:
    return np.array([_pod_value(pod, vector, CPU), _pod_value(pod, vector, MEMORY)])


CPU_MEMORY_IS_MEMORY = np.array([False, True])


def target_load_packing(
    pod: PodDemand, nodes: NodeTable, args: TargetLoadPackingArgs, *, estimate: FloatArray
) -> IntArray:
    """Trimaran TargetLoadPacking (``targetloadpacking.go`` ``Score``), CPU only: predicted
    utilisation of the node's *capacity* with the incoming pod's predicted CPU (per container:
    limit, else request x multiplier, else the default; plus overhead) and the usage of
    recently placed pods the measurement does not show yet (``pending``, which the extender
    estimates with the policy's estimator, not with TLP's predictor); see ``scoring.trimaran``."""
    col = nodes.column(CPU)
    if col < 0:
        return np.zeros(len(nodes), np.int64)
    pcol = pod.resources.index(CPU) if CPU in pod.resources else -1
    c_req, c_lim, c_overhead = pod.container_requests, pod.container_limits, pod.overhead
    # PodDemand.__post_init__ sets all three
    assert c_req is not None and c_lim is not None and c_overhead is not None
    reqs = c_req[:, pcol] if pcol >= 0 else np.zeros(1)
    lims = c_lim[:, pcol] if pcol >= 0 else np.zeros(1)
    overhead = float(c_overhead[pcol]) if pcol >= 0 else 0.0
    pod_cpu = trimaran.tlp_predicted_cpu(
        reqs,
        lims,
        overhead,
        multiplier=args.defaultRequestsMultiplier,
        default_millis=args.defaultRequestsCpuMillis,
    )
    return trimaran.target_load_packing(
        nodes.capacity[:, col],
        _usage_avg(nodes)[:, 0],
        nodes.pending[:, col],
        pod_cpu,
        target=args.targetUtilization,
    )


def load_variation_risk_balancing(
    pod: PodDemand, nodes: NodeTable, args: LoadVariationRiskBalancingArgs, *, estimate: FloatArray
) -> IntArray:
    """Trimaran LoadVariationRiskBalancing (``loadvariationriskbalancing.go`` ``Score``,
    ``analysis.go`` ``computeScore``): per resource ``risk = (μ + margin·σ^(1/sensitivity)) / 2``
    with μ the average usage plus the pod's request over allocatable and σ the usage std over
    allocatable (0 where unknown); node = min over CPU and memory of ``(1 − risk)·100``,
    rounded."""
    return trimaran.load_variation_risk_balancing(
        _cpu_memory(nodes, nodes.allocatable, fill=0.0).astype(np.int64),
        _usage_avg(nodes),
        np.nan_to_num(_cpu_memory(nodes, nodes.usage_std), nan=0.0),
        _pod_cpu_memory(pod, pod.requests),
        margin=args.safeVarianceMargin,
        sensitivity=args.safeVarianceSensitivity,
        resource_is_memory=CPU_MEMORY_IS_MEMORY,
    )


def low_risk_over_commitment(
    pod: PodDemand, nodes: NodeTable, args: LowRiskOverCommitmentArgs, *, estimate: FloatArray
) -> IntArray | None:
    """Trimaran LowRiskOverCommitment (``lowriskovercommitment.go`` ``Score``): per resource
    ``risk = w·riskLimit + (1 − w)·riskLoad`` (limits over allocatable; a Beta distribution
    fitted to the usage mean and std); node = ``round(100·(1 − max_r risk_r))``. None for a
    best-effort pod (upstream scores it 0 on every node: it does not rank the nodes).
    ``NodeTable.limits`` must hold the per-pod ``max(limits, requests)`` sums."""
    pod_request = _pod_cpu_memory(pod, pod.requests)
    pod_limit = _pod_cpu_memory(pod, pod.limits)
    if not (pod_request.any() or pod_limit.any()):
        return None
    weights = np.array([args.riskLimitWeights.get(r, 0.5) for r in (CPU, MEMORY)])
    return trimaran.low_risk_over_commitment(
        _cpu_memory(nodes, nodes.allocatable, fill=0.0).astype(np.int64),
        _cpu_memory(nodes, nodes.requested, fill=0.0).astype(np.int64),
        _cpu_memory(nodes, nodes.limits, fill=0.0).astype(np.int64),
        pod_request,
        pod_limit,
        _usage_avg(nodes),
        np.nan_to_num(_cpu_memory(nodes, nodes.usage_std), nan=0.0),
        smoothing_window_size=args.smoothingWindowSize,
        risk_limit_weights=weights,
        resource_is_memory=CPU_MEMORY_IS_MEMORY,
        best_effort=False,
    )


RequestsStrategy = Callable[[PodDemand, NodeTable, StrategyArgs], "IntArray | None"]
LoadStrategy = Callable[..., "IntArray | None"]
GPUStrategy = Callable[..., "IntArray | None"]

REQUESTS_STRATEGIES: Mapping[str, RequestsStrategy] = MappingProxyType(
    {
        "LeastAllocated": least_allocated,  # type: ignore[dict-item]
        "MostAllocated": most_allocated,  # type: ignore[dict-item]
        "RequestedToCapacityRatio": requested_to_capacity_ratio,  # type: ignore[dict-item]
        "BalancedAllocation": balanced_allocation,  # type: ignore[dict-item]
    }
)

LOAD_STRATEGIES: Mapping[str, LoadStrategy] = MappingProxyType(
    {
        "LoadAware": load_aware,
        "TargetLoadPacking": target_load_packing,
        "LoadVariationRiskBalancing": load_variation_risk_balancing,
        "LowRiskOverCommitment": low_risk_over_commitment,
    }
)

# Requests-kind strategies on the GPU state (scoring/gpu.py); they take the filter's verdict
# (``feasible``), over which GPUBestFit normalises as the simulator does over its filtered nodes.
GPU_STRATEGIES: Mapping[str, GPUStrategy] = MappingProxyType(
    {
        "GPUFragmentation": gpu.gpu_fragmentation,
        "GPUBestFit": gpu.gpu_best_fit,
        "GPUPacking": gpu.gpu_packing,
    }
)
