"""Hypothesis strategies for the scoring core's inputs: node tables, pods and policies.

Every quantity is an integer (as the extender produces them: millicores, bytes, counts) stored
as float64, in the core's documented domain 0..``MAX_QUANTITY`` (2**53). The generators cover
that whole domain and deliberately produce the awkward cases: nodes with zero allocatable,
over-committed nodes (requested > allocatable), overloaded nodes (usage > allocatable), values
on both sides of the float/int64 switch (2**53 / 100) up to 2**53 itself, missing metrics (NaN
usage, NaN window averages), stale, borderline (exactly at the limit) and unknown (+inf) load
ages, per-node threshold overrides (0 included), usage thresholds of 0, extended resources
(scalar and non-scalar) the pod does or does not request, best-effort pods, pods with limits
above and below their requests, strategy weights of 0, resources the table lacks, and
RequestedToCapacityRatio shapes of every form (rising, falling, flat, one point), and
BalancedAllocation under the formula of each kube-scheduler release it reproduces.

Hypothesis draws the structure (how many nodes, which resources, the mix of node kinds and
metric states, which strategies in which order, fallback, spread, the pod's and the policy's
shape) and a seed; the numbers come from a numpy generator with that seed, boundary-heavy.
Drawing every cell through hypothesis costs ~0.1 ms a cell, far too slow for 500 examples a
property on a 40-node table. ``Scenario.__repr__`` prints every array and the policy document,
so a failing example is reproducible from the report alone.

The Trimaran strategies (TargetLoadPacking, LoadVariationRiskBalancing, LowRiskOverCommitment)
are not generated here: their reference lives in reference_trimaran.py. The GPU strategies
(GPUFragmentation, GPUBestFit, GPUPacking) have their own generator, ``gpu_scenarios`` (end of
this file): GPU state, typical tasks and GPU pods.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
from hypothesis import strategies as st

from scoring import NodeTable, PodDemand, parse_policy
from scoring.policy import BALANCED_FORMULAS, Policy
from scoring.types import GPU_MILLI, MAX_QUANTITY, GPURequest, TaskType

# Below this allocatable the core takes its float64 path, above it the int64 one
# (scoring.strategies.FLOAT_EXACT_LIMIT): both sides and the edge itself are generated.
SAFE_MAX = 2**53 // 100
HUGE_MAX = MAX_QUANTITY

CPU, MEMORY, PODS = "cpu", "memory", "pods"
GPU, HUGEPAGES, EPHEMERAL = "example.com/gpu", "hugepages-2Mi", "ephemeral-storage"
EXTENDED = (GPU, HUGEPAGES, EPHEMERAL)
ABSENT = "example.com/fpga"  # a resource name no table carries
STALE_LIMITS = (60.0, 180.0, 300.0)
STRATEGY_NAMES = (
    "LoadAware",
    "LeastAllocated",
    "MostAllocated",
    "BalancedAllocation",
    "RequestedToCapacityRatio",
)
REQUESTS_STRATEGY_NAMES = STRATEGY_NAMES[1:]
TRIMARAN_NAMES = ("TargetLoadPacking", "LoadVariationRiskBalancing", "LowRiskOverCommitment")
ALL_STRATEGY_NAMES = STRATEGY_NAMES + TRIMARAN_NAMES

DEFAULT_MILLI_CPU = 100  # kube-scheduler DefaultMilliCPURequest
DEFAULT_MEMORY = 200 * 1024 * 1024  # kube-scheduler DefaultMemoryRequest

EDGE_QUANTITIES = np.array(
    [
        0,
        1,
        2,
        3,
        7,
        99,
        100,
        101,
        1000,
        1024,
        4000,
        10_000,
        SAFE_MAX - 1,
        SAFE_MAX,
        SAFE_MAX + 1,
        2**53 - 2,
        2**53 - 1,
        2**53,
    ],
    dtype=np.int64,
)
EDGE_AGES = np.array(
    [
        0.0,
        59.0,
        60.0,
        61.0,
        179.0,
        180.0,
        181.0,
        299.5,
        300.0,
        math.inf,
        *(math.nextafter(s, d) for s in STALE_LIMITS for d in (0.0, math.inf)),
    ]
)
KINDS = ("normal", "overcommitted", "tight", "zero", "huge")

# Shapes of RequestedToCapacityRatio besides random ones: bin packing, spreading, one point,
# flat, kube-scheduler's TestBrokenLinearFunction shapes.
SHAPES = (
    ((0, 0), (100, 10)),
    ((0, 10), (100, 0)),
    ((50, 5),),
    ((0, 2), (40, 2), (100, 2)),
    ((10, 1), (90, 9)),
    ((0, 2), (40, 10), (100, 0)),
    ((0, 0), (100, 1)),
    ((0, 10), (1, 0)),
)

SEEDS = st.integers(0, 2**63 - 1)
BOOLS = st.booleans()
KIND_MIXES = st.sampled_from(
    [
        (1, 0, 0, 0, 0),
        (4, 1, 1, 1, 1),
        (1, 1, 1, 1, 1),
        (0, 1, 0, 1, 0),
        (0, 0, 1, 0, 1),
        (2, 0, 0, 1, 0),
        (0, 0, 0, 0, 1),
    ]
)
METRIC_MIXES = st.sampled_from([(1, 0, 0), (4, 1, 1), (0, 1, 0), (1, 0, 1), (1, 1, 1)])
EXTENDED_SETS = st.sampled_from(
    [(), (GPU,), (HUGEPAGES,), (EPHEMERAL,), (GPU, EPHEMERAL), (HUGEPAGES, GPU), (EPHEMERAL, HUGEPAGES)]
)
# One draw each for the choices below (hypothesis charges ~0.2 ms a draw; fewer, richer draws keep
# 500 examples a property affordable). Simplest first: that is where hypothesis shrinks to.
MIXES = st.sampled_from(list(itertools.product(KIND_MIXES.elements, METRIC_MIXES.elements)))
# Every ordered selection of the strategies, with the lists where the combination's special
# cases live (a load strategy alone or beside BalancedAllocation only: the implicit
# LeastAllocated; BalancedAllocation alone: nothing may take part) repeated to be drawn often.
SPECIAL_LISTS = (
    (("LoadAware",),) * 24
    + (("LoadAware", "BalancedAllocation"),) * 16
    + (("BalancedAllocation", "LoadAware"),) * 8
    + (("BalancedAllocation",),) * 8
)
# The Trimaran strategies: every ordered selection of up to three of all eight, and all eight.
TRIMARAN_LISTS = [
    p
    for k in range(1, 4)
    for p in itertools.permutations(ALL_STRATEGY_NAMES, k)
    if set(p) & set(TRIMARAN_NAMES)
] + [ALL_STRATEGY_NAMES, ALL_STRATEGY_NAMES[::-1]]
ALL_LISTS = (
    [p for k in range(1, len(STRATEGY_NAMES) + 1) for p in itertools.permutations(STRATEGY_NAMES, k)]
    + list(SPECIAL_LISTS)
    + TRIMARAN_LISTS
)
STRATEGY_LISTS = st.sampled_from(ALL_LISTS)
# Strategies whose score may rise with load: TargetLoadPacking packs up to its target by design;
# LowRiskOverCommitment's Beta fit is not monotone in the average upstream (test_trimaran.py).
NOT_SPREADING = ("TargetLoadPacking", "LowRiskOverCommitment")
SPREADING_LISTS = st.sampled_from([p for p in ALL_LISTS if not set(p) & set(NOT_SPREADING)])
# (staleAfterSeconds, fallback, spread, resourceFit)
SETTINGS = st.sampled_from(
    list(itertools.product(STALE_LIMITS, ("requests", "zero", "reject"), (False, True), (True, False)))
)
NODE_COUNTS: dict[tuple[int, int], st.SearchStrategy[int]] = {}


def node_counts(lo: int, hi: int) -> st.SearchStrategy[int]:
    if (lo, hi) not in NODE_COUNTS:
        NODE_COUNTS[(lo, hi)] = st.integers(lo, hi)
    return NODE_COUNTS[(lo, hi)]


# --------------------------------------------------------------------------------------------
# numpy helpers (values only; the structure comes from hypothesis)


def rand_quantities(rng: np.random.Generator, max_value: int, size: int | tuple) -> np.ndarray:
    """Boundary-heavy non-negative int64 up to ``max_value``: edge values (the float/int64
    switch and 2**53 among them), small values, log-uniform over the whole range, values at
    and near the maximum."""
    u = rng.random((4, *np.atleast_1d(size)))
    which = np.floor(u[0] * 4)
    k = len(EDGE_QUANTITIES)
    edge = EDGE_QUANTITIES[np.minimum((u[1] * k).astype(np.int64), k - 1)]
    small = np.floor(u[1] * 100_001)
    logu = np.floor(np.exp(u[2] * math.log(max_value + 1))) - 1
    near = max_value - np.floor(u[3] * 3) * np.floor(u[2] * (max_value // 3 + 1))
    out = np.where(which == 0, edge, np.where(which == 1, small, np.where(which == 2, logu, near)))
    return np.clip(out, 0, max_value).astype(np.int64)


def rand_below(rng: np.random.Generator, upper: np.ndarray) -> np.ndarray:
    """Uniform int64 in 0..upper (inclusive), elementwise."""
    upper = np.asarray(upper)
    return np.floor(rng.uniform(0, 1, upper.shape) * (upper + 1)).astype(np.int64).clip(0, upper)


def _clip(x: np.ndarray) -> np.ndarray:
    """Into the core's domain 0..MAX_QUANTITY (exact integers in float64)."""
    return np.clip(x, 0, MAX_QUANTITY).astype(np.int64)


def rand_table(
    rng: np.random.Generator,
    resources: tuple[str, ...],
    n: int,
    *,
    kind_mix,
    metric_mix,
    max_value: int = MAX_QUANTITY,
) -> NodeTable:
    """``n`` nodes of the given kinds (weights ``kind_mix`` over KINDS) and metric states
    (weights ``metric_mix`` over full / none / partial)."""
    r = len(resources)
    u = rng.random((14, n, r))  # all the randomness of the table at once
    q = rand_quantities(rng, max_value, (3, n, r))
    mix = np.cumsum(np.array(kind_mix, dtype=np.float64))
    kind = np.searchsorted(mix / mix[-1], u[0, :, :1], side="right").repeat(r, axis=1)
    alloc = np.where(kind == 4, max_value // 2 + np.floor(u[1] * (max_value - max_value // 2 + 1)), q[0])
    alloc = _clip(np.where((kind == 3) & (u[2] < 0.5), 0, alloc))
    below = _clip(np.floor(u[3] * (alloc + 1)))  # uniform in 0..alloc
    req = np.where(u[4] < 0.7, below, q[1])
    req = np.where(kind == 1, alloc + 1 + np.floor(u[5] * 2 * np.maximum(alloc, 1)), req)
    req = np.where(kind == 2, np.maximum(alloc - np.floor(u[5] * 4), 0), req)
    req = np.where(kind == 4, below, req)
    small = np.array([0, 1, 500])[np.minimum((u[5] * 3).astype(int), 2)]
    req = _clip(np.where((kind == 3) & (alloc == 0), small, req))
    col = {name: j for j, name in enumerate(resources)}
    if PODS in col:
        choices = np.array([0, 1, 2, 110, 250])
        pods_alloc = choices[np.minimum((u[6, :, 0] * len(choices)).astype(int), len(choices) - 1)]
        alloc[:, col[PODS]] = pods_alloc
        req[:, col[PODS]] = np.floor(u[6, :, -1] * (pods_alloc + 2)).astype(np.int64)
    nonzero = req.copy()  # pods without CPU / memory requests already on the node
    nonzero[:, col[CPU]] += np.floor(u[7, :, 0] * 4).astype(np.int64) * DEFAULT_MILLI_CPU
    nonzero[:, col[MEMORY]] += np.floor(u[7, :, -1] * 4).astype(np.int64) * DEFAULT_MEMORY
    nonzero = _clip(nonzero)
    which = np.floor(u[8] * 3)
    usage = np.where(which == 0, below, np.where(which == 1, q[2], alloc + np.floor(u[9] * (alloc + 1))))
    usage = _clip(usage).astype(np.float64)  # up to twice allocatable: overloaded nodes
    mix = np.cumsum(np.array(metric_mix, dtype=np.float64))
    metrics = np.searchsorted(mix / mix[-1], u[10, :, :1], side="right")  # full, none, partial
    usage[(metrics == 1) | ((metrics == 2) & (u[10] < 0.5))] = np.nan
    which = np.floor(u[11] * 4)
    some = np.array([1, 250, 1000])[(u[9] * 3).astype(int) % 3]
    pending = _clip(np.where(which <= 1, 0, np.where(which == 2, some, np.floor(u[2] * (alloc + 1)))))
    override = np.where(u[11] < 0.1, np.floor(u[1] * 101), np.nan)  # 0 (disabled) .. 100
    ages = np.where(
        u[0, :, -1] < 0.5,
        u[3, :, 0] * 1000,
        EDGE_AGES[np.minimum((u[4, :, 0] * len(EDGE_AGES)).astype(int), len(EDGE_AGES) - 1)],
    )
    # Trimaran's inputs, which the other strategies must ignore: limits (>= requests mostly),
    # the window average (NaN in places), std and p95
    limits = _clip(np.where(u[12] < 0.7, req + np.floor(u[13] * (req + 1)), np.floor(u[13] * (req + 1))))
    usage_avg = np.minimum(np.where(u[12] < 0.25, np.nan, np.floor(usage * (0.5 + u[13]))), MAX_QUANTITY)
    usage_std = np.where(u[13] < 0.3, np.nan, np.floor(u[12] * np.nan_to_num(usage) / 4))
    p95 = np.floor(np.nan_to_num(usage) * (1 + u[12] / 4))
    usage_p95 = np.minimum(np.where(np.isnan(usage), np.nan, p95), MAX_QUANTITY)
    return NodeTable.build(
        names=tuple(f"node-{i}" for i in range(n)),
        resources=resources,
        allocatable=alloc.astype(np.float64),
        requested=req.astype(np.float64),
        nonzero_requested=nonzero.astype(np.float64),
        limits=limits.astype(np.float64),
        usage=usage,
        usage_avg=usage_avg,
        usage_std=usage_std,
        usage_p95=usage_p95,
        pending=pending.astype(np.float64),
        threshold_override=override.astype(np.float64),
        load_age_s=ages.astype(np.float64),
    )


def rand_pod(
    rng: np.random.Generator, resources: tuple[str, ...], *, max_value: int = MAX_QUANTITY
) -> PodDemand:
    """A pod as extender/kube/demand.py builds it: ``pods`` = 1; the non-zero variant substitutes
    100m / 200 MiB where no CPU / memory request is set; limits 0 (none), equal to, below or
    above the request, or anything. One pod in six is best-effort (no requests, no limits);
    some come split into containers with an overhead (which the non-Trimaran strategies
    ignore). Half the pods are small (up to 10**3..10**9), so that they fit most nodes."""
    r = len(resources)
    u = rng.random((5, r))
    scale = max_value if rng.random() < 0.5 else min(max_value, 10 ** int(rng.integers(3, 10)))
    q = rand_quantities(rng, scale, (2, r))
    best_effort = u[4, 0] < 1 / 6
    req = np.where((u[0] < 0.3) | best_effort, 0, q[0])
    base = np.array([name in (CPU, MEMORY) for name in resources])
    default = np.array([DEFAULT_MILLI_CPU if n == CPU else DEFAULT_MEMORY for n in resources])
    missing = base & (req == 0) & ((u[1] < 0.5) | best_effort)
    nonzero = np.where(missing, default, req)
    mode = np.floor(u[2] * 5)
    limit = np.select(
        [mode == 0, mode == 1, mode == 2, mode == 3],
        [0, req, np.floor(req * u[3]), req + 1 + np.floor(u[3] * (req + 10))],
        q[1],
    )
    limit = _clip(np.where(best_effort, 0, limit))
    if PODS in resources:
        j = resources.index(PODS)
        req[j], nonzero[j], limit[j] = 1, 1, 0
    containers = {}
    if u[4, -1] < 0.3 and not best_effort:
        c = int(rng.integers(1, 4))
        share = rng.dirichlet(np.ones(c), size=r).T  # (C, R)
        creq = np.floor(share * req)
        creq[0] += req - creq.sum(axis=0)  # the containers sum to the pod's requests
        containers = {
            "container_requests": creq.astype(np.float64),
            "container_limits": np.floor(share * limit).astype(np.float64),
            "overhead": np.zeros(r),
        }
    qos = "BestEffort" if best_effort else ("Guaranteed" if (limit == req).all() else "Burstable")
    return PodDemand(
        resources=resources,
        requests=req.astype(np.float64),
        nonzero_requests=nonzero.astype(np.float64),
        limits=limit.astype(np.float64),
        qos=qos,
        **containers,
    )


def _subset(rng: np.random.Generator, candidates: tuple[str, ...], lo: int, hi: int) -> list[str]:
    k = int(rng.integers(lo, min(hi, len(candidates)) + 1))
    return [candidates[i] for i in rng.permutation(len(candidates))[:k]]


def _weight(rng: np.random.Generator, choices: tuple[int, ...], lo: int, hi: int) -> int:
    """One of the boundary-heavy ``choices`` or uniform in lo..hi."""
    pick = int(rng.integers(0, len(choices) + 1))
    return choices[pick] if pick < len(choices) else int(rng.integers(lo, hi + 1))


def rand_resource_list(rng: np.random.Generator, candidates: tuple[str, ...]) -> list[dict]:
    """kube-scheduler ``resources``: 1..4 names, integer weights 1..100."""
    return [
        {"name": n, "weight": _weight(rng, (1, 1, 2, 3, 5, 100), 1, 100)}
        for n in _subset(rng, candidates, 1, 4)
    ]


def rand_resources_args(rng: np.random.Generator, candidates: tuple[str, ...]) -> dict:
    """``args`` of LeastAllocated or MostAllocated."""
    return {"resources": rand_resource_list(rng, candidates)}


def rand_balanced_args(rng: np.random.Generator, candidates: tuple[str, ...]) -> dict:
    """``args`` of BalancedAllocation: resources, and the formula of either kube-scheduler
    release, or none (the default)."""
    args = rand_resources_args(rng, candidates)
    formula = (None, *BALANCED_FORMULAS)[int(rng.integers(0, len(BALANCED_FORMULAS) + 1))]
    if formula is not None:
        args["formula"] = formula
    return args


def rand_shape(rng: np.random.Generator) -> list[dict]:
    """A valid RequestedToCapacityRatio shape: 1..5 points, utilization strictly increasing
    in 0..100, scores 0..10; the listed SHAPES half of the time."""
    if rng.random() < 0.5:
        points = SHAPES[int(rng.integers(0, len(SHAPES)))]
    else:
        k = int(rng.integers(1, 6))
        utils = np.sort(rng.choice(101, size=k, replace=False))
        points = tuple((int(x), int(rng.integers(0, 11))) for x in utils)
    return [{"utilization": x, "score": y} for x, y in points]


def rand_rtcr_args(rng: np.random.Generator, candidates: tuple[str, ...]) -> dict:
    return {"resources": rand_resource_list(rng, candidates), "shape": rand_shape(rng)}


def rand_load_aware_args(rng: np.random.Generator, candidates: tuple[str, ...]) -> dict:
    """LoadAware ``args``: integer weights 0..100 (at least one > 0), scaling factors 0..100,
    an integer dominant weight."""
    names = _subset(rng, candidates, 1, 4)
    weights = {n: _weight(rng, (0, 1, 1, 2, 5, 100), 0, 100) for n in names}
    if sum(weights.values()) == 0:
        weights[names[0]] = 1
    factors = {
        n: int(rng.choice([0, 1, 50, 70, 85, 99, 100, int(rng.integers(0, 101))]))
        for n in _subset(rng, candidates, 0, 3)
    }
    return {
        "resourceWeights": weights,
        "estimatedScalingFactors": factors,
        "dominantResourceWeight": int(rng.choice([0, 0, 1, 2, 3, 100])),
    }


def rand_trimaran_args(rng: np.random.Generator, name: str) -> dict:
    """Arguments of a Trimaran strategy: the defaults' neighbourhood and the edges."""
    if name == "TargetLoadPacking":
        return {
            "targetUtilization": int(rng.choice([1, 40, 50, 99, 100, int(rng.integers(1, 101))])),
            "defaultRequests": {"cpu": str(rng.choice(["1000m", "500m", "2", "1m"]))},
            "defaultRequestsMultiplier": str(rng.choice(["1.5", "1", "2.0", "0.5"])),
        }
    if name == "LoadVariationRiskBalancing":
        return {
            "safeVarianceMargin": float(rng.choice([0.0, 0.5, 1.0, 2.0, 10.0])),
            "safeVarianceSensitivity": float(rng.choice([0.5, 1.0, 2.0, 3.0])),
        }
    return {
        "smoothingWindowSize": int(rng.choice([1, 5, 10])),
        "riskLimitWeights": {r: float(rng.choice([0.0, 0.25, 0.5, 1.0])) for r in (CPU, MEMORY)},
    }


def rand_policy_doc(
    rng: np.random.Generator,
    resources: tuple[str, ...],
    names: tuple[str, ...],
    *,
    stale: float,
    fallback: str,
    spread: bool,
    resource_fit: bool,
) -> dict:
    """A policy document over the whole domain: strategy weights 0..100 (at least one > 0),
    any resource in a strategy's list (extended ones the pod does not request, ``pods``, one
    the table lacks), usage thresholds 0..100 (0 disables)."""
    ext = tuple(r for r in resources if r not in (CPU, MEMORY, PODS))
    score_candidates = (CPU, MEMORY, *ext, ABSENT, PODS)
    weights = [_weight(rng, (0, 1, 1, 2, 3, 100), 0, 100) for _ in names]
    if sum(weights) == 0:
        weights[int(rng.integers(0, len(names)))] = 1
    strategies = []
    for name, weight in zip(names, weights, strict=True):
        if name == "LoadAware":
            args = rand_load_aware_args(rng, (CPU, MEMORY, *ext, ABSENT, PODS))
        elif name == "RequestedToCapacityRatio":
            args = rand_rtcr_args(rng, score_candidates)
        elif name in TRIMARAN_NAMES:
            args = rand_trimaran_args(rng, name)
        elif name == "BalancedAllocation":
            args = rand_balanced_args(rng, score_candidates)
        else:
            args = rand_resources_args(rng, score_candidates)
        strategies.append({"name": name, "weight": weight, "args": args})
    thresholds = {
        n: int(rng.choice([0, 50, 65, 80, 90, 95, 100, int(rng.integers(0, 101))]))
        for n in _subset(rng, (CPU, MEMORY, *ext, ABSENT), 0, 3)
    }
    return {
        "filters": {"resourceFit": resource_fit, "usageThresholds": thresholds},
        "strategies": strategies,
        "load": {"staleAfterSeconds": stale, "fallback": fallback},
        "score": {"spread": spread},
    }


# --------------------------------------------------------------------------------------------
# hand-written inputs


def table(
    resources, alloc, *, requested=None, nonzero=None, usage=None, pending=None, age=None, override=None
) -> NodeTable:
    """A NodeTable from nested lists (one row per node); ``nonzero`` defaults to ``requested``;
    usage NaN, age +inf and no overrides unless given."""
    n = len(alloc)

    def arr(x):
        return None if x is None else np.array(x, dtype=np.float64).reshape(n, len(resources))

    return NodeTable.build(
        names=tuple(f"node{i + 1}" for i in range(n)),
        resources=tuple(resources),
        allocatable=arr(alloc),
        requested=arr(requested),
        nonzero_requested=arr(nonzero if nonzero is not None else requested),
        usage=arr(usage),
        pending=arr(pending),
        threshold_override=arr(override),
        load_age_s=None if age is None else np.array(age, dtype=np.float64),
    )


def pod(resources, requests, *, nonzero=None, limits=None) -> PodDemand:
    """A PodDemand from lists; ``nonzero`` defaults to ``requests``, limits to none."""
    r = np.array(requests, dtype=np.float64)
    return PodDemand(
        resources=tuple(resources),
        requests=r,
        nonzero_requests=r.copy() if nonzero is None else np.array(nonzero, dtype=np.float64),
        limits=np.zeros(len(resources)) if limits is None else np.array(limits, dtype=np.float64),
    )


# --------------------------------------------------------------------------------------------
# hypothesis strategies

TABLE_REPR_FIELDS = (
    "allocatable",
    "requested",
    "nonzero_requested",
    "limits",
    "usage",
    "usage_avg",
    "usage_std",
    "usage_p95",
    "pending",
    "threshold_override",
    "load_age_s",
)


@dataclasses.dataclass
class Scenario:
    nodes: NodeTable
    pod: PodDemand
    policy: Policy
    doc: dict  # the policy document the Policy was parsed from

    def __repr__(self) -> str:  # hypothesis prints this on failure: make it reproducible
        n, p = self.nodes, self.pod
        arrays = {f: getattr(n, f).tolist() for f in TABLE_REPR_FIELDS}
        gpu = ""
        if n.gpu_free is not None and n.gpu_present is not None:
            gpu += f"gpu_free={n.gpu_free.tolist()!r}, gpu_present={n.gpu_present.tolist()!r}, "
        if n.task_counts is not None:
            gpu += f"task_counts={n.task_counts.tolist()!r}, "
        if p.gpu is not None:
            gpu += f"pod_gpu={p.gpu!r}, "
        return (
            f"Scenario(resources={n.resources!r}, arrays={arrays!r}, {gpu}"
            f"pod=(requests={p.requests.tolist()!r}, nonzero={p.nonzero_requests.tolist()!r}, "
            f"limits={p.limits.tolist()!r}, qos={p.qos!r}, "
            f"container_requests={p.container_requests.tolist()!r}, "
            f"container_limits={p.container_limits.tolist()!r}, overhead={p.overhead.tolist()!r}), "
            f"policy={self.doc!r})"
        )

    def _repr_pretty_(self, p, cycle) -> None:  # hypothesis's pretty printer prefers this
        p.text(repr(self))


def scenario(nodes: NodeTable, p: PodDemand, doc: dict) -> Scenario:
    """A hand-written Scenario (for ``@example``)."""
    return Scenario(nodes, p, parse_policy(doc), doc)


@st.composite
def node_tables(
    draw, resources: tuple[str, ...], *, min_nodes: int = 1, max_nodes: int = 40, **kwargs
) -> NodeTable:
    """A node table on ``resources`` (see ``rand_table`` for the keyword arguments)."""
    n = draw(node_counts(min_nodes, max_nodes))
    kind_mix, metric_mix = draw(MIXES)
    return rand_table(
        np.random.default_rng(draw(SEEDS)), resources, n, kind_mix=kind_mix, metric_mix=metric_mix, **kwargs
    )


@st.composite
def scenarios(
    draw,
    *,
    max_value: int = MAX_QUANTITY,
    min_nodes: int = 1,
    max_nodes: int = 40,
    spread: bool | None = None,
    only: tuple[str, ...] | None = None,
    fallback: str | None = None,
    spreading: bool = False,
) -> Scenario:
    """A node table, a pod and a validated policy over the same resources. ``only``: the
    strategies to use (in that order); ``spread`` / ``fallback``: fix those settings;
    ``spreading``: only strategies whose score never rises with load."""
    resources = (CPU, MEMORY, PODS, *draw(EXTENDED_SETS))
    names = draw(SPREADING_LISTS if spreading else STRATEGY_LISTS) if only is None else only
    stale, drawn_fallback, drawn_spread, resource_fit = draw(SETTINGS)
    fallback = drawn_fallback if fallback is None else fallback
    spread = drawn_spread if spread is None else spread
    n = draw(node_counts(min_nodes, max_nodes))
    kind_mix, metric_mix = draw(MIXES)
    rng = np.random.default_rng(draw(SEEDS))
    p = rand_pod(rng, resources, max_value=max_value)
    doc = rand_policy_doc(
        rng, resources, names, stale=stale, fallback=fallback, spread=spread, resource_fit=resource_fit
    )
    nodes = rand_table(rng, resources, n, kind_mix=kind_mix, metric_mix=metric_mix, max_value=max_value)
    return Scenario(nodes, p, parse_policy(doc), doc)


def strategy_args(name: str, args: dict | None):
    """The validated ``args`` of one strategy from its document."""
    doc: dict = {"name": name, "weight": 1}
    if args is not None:
        doc["args"] = args
    return parse_policy({"strategies": [doc]}).strategies[0].args


SCORE_CANDIDATES = (CPU, MEMORY, ABSENT, PODS)


@st.composite
def requests_cases(draw, name: str, *, max_value: int = MAX_QUANTITY):
    """(nodes, pod, args) for one requests-based strategy: any resource in its list (extended
    ones the pod may not request, ``pods``, one the table lacks), weights 1..100, and for
    RequestedToCapacityRatio any valid shape."""
    resources = (CPU, MEMORY, PODS, *draw(EXTENDED_SETS))
    rng = np.random.default_rng(draw(SEEDS))
    p = rand_pod(rng, resources, max_value=max_value)
    candidates = (*SCORE_CANDIDATES, *resources[3:])
    if name == "RequestedToCapacityRatio":
        args = strategy_args(name, rand_rtcr_args(rng, candidates))
    elif name == "BalancedAllocation":
        args = strategy_args(name, rand_balanced_args(rng, candidates))
    else:
        args = strategy_args(name, rand_resources_args(rng, candidates))
    nodes = draw(node_tables(resources, max_value=max_value))
    return nodes, p, args


# --------------------------------------------------------------------------------------------
# GPU scenarios (scoring/gpu.py)

NVIDIA = "nvidia.com/gpu"
GPU_STRATEGY_NAMES = ("GPUFragmentation", "GPUBestFit", "GPUPacking")
GPU_STATES = ("shares", "shares", "whole", "derived", "derived", "none")
WORKLOADS = ("policy", "policy", "observed", "observed", "nothing seen")
GPU_POD_KINDS = ("cpu only", "whole", "shared", "whole by request", "no requests")
CPU_STEPS = np.array([0, 1, 100, 999, 1000, 2000, 3152, 4000, 8000, 11300, 16000, 32000, 96000])
SHARES = np.array([1, 50, 100, 230, 250, 320, 470, 499, 500, 501, 650, 810, 999])
TASK_GPUS = np.array([0, 1, 1, 1, 2, 4, 8, 9])
TASK_WEIGHTS = np.array([1, 1, 2, 3, 7, 100, 10**9])


def rand_tasks(rng: np.random.Generator, count: int) -> tuple[TaskType, ...]:
    """``count`` task kinds at most (duplicates dropped), boundary-heavy: CPUs from a few steps
    (so that a node's CPU left often equals one), 0..9 GPUs (9: more than any node has), whole
    GPUs and shares."""
    out: dict[tuple[int, int, int], TaskType] = {}
    for _ in range(count):
        gpus = int(rng.choice(TASK_GPUS))
        milli = 0 if gpus == 0 else GPU_MILLI if gpus > 1 or rng.random() < 0.5 else int(rng.choice(SHARES))
        t = TaskType(int(rng.choice(CPU_STEPS)), gpus, milli, int(rng.choice(TASK_WEIGHTS)))
        out.setdefault(t.spec, t)
    return tuple(out.values())


def _task_doc(t: TaskType) -> dict:
    return {"cpu": f"{t.cpu}m", "gpus": t.gpus, "gpuMilli": t.milli, "weight": t.weight}


def rand_gpu_free(rng: np.random.Generator, n: int, slots: int, whole: bool, pod_milli: int) -> tuple:
    """(free, present) (N, G): each node 0..G GPUs on random slots (not always the first ones),
    free shares 0 or 1000, or (not ``whole``) boundary values around the pod's share and the
    task shares too."""
    present = np.zeros((n, slots), bool)
    for i in range(n):
        count = int(rng.integers(0, slots + 1)) if rng.random() < 0.7 else slots
        present[i, rng.permutation(slots)[:count]] = True
    edges = np.array([0, 0, 1000, 1000, 1000, 1, 999, 500, pod_milli - 1, pod_milli, pod_milli + 1, *SHARES])
    if whole:
        values = np.where(rng.random((n, slots)) < 0.75, GPU_MILLI, 0)
    else:
        values = np.where(
            rng.random((n, slots)) < 0.5, rng.choice(edges, (n, slots)), rng.integers(0, 1001, (n, slots))
        )
    free = np.where(present, np.clip(values, 0, GPU_MILLI), 0).astype(np.int64)
    return free, present


@st.composite
def gpu_scenarios(
    draw,
    *,
    min_nodes: int = 1,
    max_nodes: int = 30,
    only: tuple[str, ...] | None = None,
    state: str | None = None,
    pod_kind: str | None = None,
    workload: str | None = None,
) -> Scenario:
    """A node table with GPU state (per-GPU shares, whole GPUs, whole GPUs derived from
    ``nvidia.com/gpu``, or none), a pod (CPU only, whole GPUs, a share of one GPU, whole GPUs by
    its ``nvidia.com/gpu`` request, or no request at all) and a policy of GPU strategies (``only``,
    else a random selection, sometimes beside LeastAllocated), with the typical tasks in the
    policy, observed on the table (``task_counts``, a random coverage) or none seen."""
    state = draw(st.sampled_from(GPU_STATES)) if state is None else state
    pod_kind = draw(st.sampled_from(GPU_POD_KINDS)) if pod_kind is None else pod_kind
    workload = draw(st.sampled_from(WORKLOADS)) if workload is None else workload
    n = draw(node_counts(min_nodes, max_nodes))
    slots = draw(st.sampled_from((0, 1, 2, 4, 8, 8, 8, 12)))
    rng = np.random.default_rng(draw(SEEDS))
    resources = (CPU, MEMORY, PODS) + ((NVIDIA,) if state == "derived" or rng.random() < 0.3 else ())
    tasks = rand_tasks(rng, int(rng.integers(1, 12)))

    # the pod
    cpu = (
        int(rng.choice(CPU_STEPS if rng.random() < 0.2 else CPU_STEPS[:9]))
        if pod_kind != "no requests"
        else 0
    )
    gpu = None
    k_req = 0
    if pod_kind == "whole":
        gpu = GPURequest(int(rng.choice([1, 1, 1, 2, 4, 8])), GPU_MILLI)
    elif pod_kind == "shared":
        gpu = GPURequest(1, int(rng.choice(SHARES)))
    elif pod_kind == "whole by request":
        k_req = int(rng.choice([1, 1, 1, 2, 4, 8]))
    memory = 0 if pod_kind == "no requests" else int(rng.integers(0, 2**30))
    req = np.array([cpu, memory, 1, *([k_req] if NVIDIA in resources else [])], dtype=np.float64)
    if NVIDIA not in resources and k_req:
        gpu = GPURequest(k_req, GPU_MILLI)  # the table has no such column: ask through .gpu
    nonzero = req.copy()
    if pod_kind == "no requests" and rng.random() < 0.5:
        nonzero[0] = 100.0  # a container without requests: the non-zero default
    p = PodDemand(resources, req, nonzero, np.zeros(len(resources)), gpu=gpu)

    # the nodes
    alloc = np.zeros((n, len(resources)))
    alloc[:, 0] = rng.choice(CPU_STEPS[4:], n)
    alloc[:, 1] = 2.0**36
    alloc[:, 2] = 110
    requested = np.zeros_like(alloc)
    requested[:, 0] = np.where(
        rng.random(n) < 0.3,
        np.maximum(alloc[:, 0] - cpu, 0),
        rng.integers(0, 2, n) * rng.choice(CPU_STEPS, n),
    )
    requested[:, 1] = np.where(rng.random(n) < 0.1, alloc[:, 1], 0)  # some nodes fail the filter
    if NVIDIA in resources:
        alloc[:, 3] = rng.choice([0, 1, 2, 4, 8, 8, 8], n)
        requested[:, 3] = np.where(
            rng.random(n) < 0.1, alloc[:, 3] + 1, np.floor(rng.random(n) ** 2 * (alloc[:, 3] + 1))
        )
    free = present = None
    if state in ("shares", "whole"):
        free, present = rand_gpu_free(rng, n, slots, state == "whole", gpu.milli if gpu else GPU_MILLI)
    observed: tuple[TaskType, ...] = ()
    if workload == "observed":
        observed = tasks
    nodes = NodeTable.build(
        names=tuple(f"node{i + 1}" for i in range(n)),
        resources=resources,
        allocatable=alloc,
        requested=requested,
        gpu_free=free,
        gpu_present=present,
        task_counts=observed,
    )

    # the policy
    names = only if only is not None else tuple(rng.permutation(GPU_STRATEGY_NAMES)[: rng.integers(1, 4)])
    strategies: list[dict] = []
    for name in names:
        entry: dict = {"name": str(name), "weight": int(rng.integers(0, 4)) if len(names) > 1 else 1}
        if name == "GPUFragmentation":
            if workload == "policy":
                entry["args"] = {"typicalTasks": [_task_doc(t) for t in tasks]}
            else:
                entry["args"] = {"coverage": int(rng.choice([1, 50, 60, 95, 100]))}
        strategies.append(entry)
    if only is None and rng.random() < 0.3:
        strategies.append({"name": "LeastAllocated", "weight": int(rng.integers(1, 3))})
    if sum(s["weight"] for s in strategies) == 0:
        strategies[0]["weight"] = 1
    doc = {
        "filters": {"usageThresholds": {}, "resourceFit": bool(rng.random() < 0.8)},
        "score": {"spread": bool(rng.random() < 0.3)},
        "strategies": strategies,
    }
    return Scenario(nodes, p, parse_policy(doc), doc)
