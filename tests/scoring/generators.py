"""Hypothesis strategies for the scoring core's inputs: node tables, pods and policies.

Every quantity is an integer (as the extender produces them: millicores, bytes, counts) stored
as float64. The generators deliberately produce the awkward cases: nodes with zero allocatable,
over-committed nodes (requested > allocatable), overloaded nodes (usage > allocatable), huge
values, missing metrics (NaN usage), stale, borderline and unknown (+inf) load ages, per-node
threshold overrides, extended resources (scalar and non-scalar), pods with zero requests and
with limits above and below their requests, zero weights, resources the table lacks.

Hypothesis draws the structure (how many nodes, which resources, the mix of node kinds and
metric states, which strategies in which order, fallback, spread, the pod's and the policy's
shape) and a seed; the numbers come from a numpy generator with that seed, boundary-heavy.
Drawing every cell through hypothesis costs ~0.1 ms a cell, far too slow for 500 examples a
property on a 40-node table. ``Scenario.__repr__`` prints every array and the policy document,
so a failing example is reproducible from the report alone.

``compatible=True`` keeps to inputs on which the published definitions and the project's
documented mapping coincide (the xfail tests cover the rest, see test_matches_reference.py):
requests-based strategies weight only CPU, memory and extended resources the pod requests;
non-zero and plain requests coincide when BalancedAllocation is used; the pod requests CPU and
memory (not best-effort); usage thresholds and requests-strategy weights are > 0; no load age
sits exactly on the staleness limit.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
from hypothesis import strategies as st

from scoring import NodeTable, PodDemand, parse_policy
from scoring.policy import Policy

# Largest value v for which v * 100 (the int64 products of kube-scheduler and Koordinator) is
# exact in float64: the range the core documents as exact ("memory up to ~90 TB per node").
SAFE_MAX = 2**53 // 100
HUGE_MAX = 10**15  # ~1 PB: beyond the documented exact range, far from int64 overflow

CPU, MEMORY, PODS = "cpu", "memory", "pods"
GPU, HUGEPAGES, EPHEMERAL = "example.com/gpu", "hugepages-2Mi", "ephemeral-storage"
EXTENDED = (GPU, HUGEPAGES, EPHEMERAL)
ABSENT = "example.com/fpga"  # a resource name no table carries
STALE_LIMITS = (60.0, 180.0, 300.0)
STRATEGY_NAMES = ("LoadAware", "LeastAllocated", "MostAllocated", "BalancedAllocation")

DEFAULT_MILLI_CPU = 100  # kube-scheduler DefaultMilliCPURequest
DEFAULT_MEMORY = 200 * 1024 * 1024  # kube-scheduler DefaultMemoryRequest

EDGE_QUANTITIES = np.array([0, 1, 2, 3, 7, 99, 100, 101, 1000, 1024, 4000, 10_000], dtype=np.int64)
EDGE_AGES = np.array([0.0, 59.0, 60.0, 61.0, 179.0, 180.0, 181.0, 299.5, 300.0, math.inf])
KINDS = ("normal", "overcommitted", "tight", "zero", "huge")

SEEDS = st.integers(0, 2**63 - 1)
BOOLS = st.booleans()
KIND_MIXES = st.sampled_from([(1, 0, 0, 0, 0), (4, 1, 1, 1, 1), (1, 1, 1, 1, 1), (0, 1, 0, 1, 0),
                              (0, 0, 1, 0, 1), (2, 0, 0, 1, 0)])
METRIC_MIXES = st.sampled_from([(1, 0, 0), (4, 1, 1), (0, 1, 0), (1, 0, 1), (1, 1, 1)])
EXTENDED_SETS = st.sampled_from([(), (GPU,), (HUGEPAGES,), (EPHEMERAL,), (GPU, EPHEMERAL),
                                 (HUGEPAGES, GPU), (EPHEMERAL, HUGEPAGES)])
# One draw each for the choices below (hypothesis charges ~0.2 ms a draw; fewer, richer draws keep
# 500 examples a property affordable). Simplest first: that is where hypothesis shrinks to.
MIXES = st.sampled_from(list(itertools.product(KIND_MIXES.elements, METRIC_MIXES.elements)))
STRATEGY_LISTS = st.sampled_from([p for k in range(1, 5) for p in itertools.permutations(STRATEGY_NAMES, k)])
# (staleAfterSeconds, fallback, spread, resourceFit)
SETTINGS = st.sampled_from(list(itertools.product(STALE_LIMITS, ("requests", "zero", "reject"),
                                                  (False, True), (True, False))))
NODE_COUNTS: dict[tuple[int, int], st.SearchStrategy[int]] = {}


def node_counts(lo: int, hi: int) -> st.SearchStrategy[int]:
    if (lo, hi) not in NODE_COUNTS:
        NODE_COUNTS[(lo, hi)] = st.integers(lo, hi)
    return NODE_COUNTS[(lo, hi)]


# --------------------------------------------------------------------------------------------
# numpy helpers (values only; the structure comes from hypothesis)


def rand_quantities(rng: np.random.Generator, max_value: int, size: int | tuple) -> np.ndarray:
    """Boundary-heavy non-negative int64 up to ``max_value``: edge values, small values,
    log-uniform over the whole range, values at and near the maximum."""
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


def rand_table(rng: np.random.Generator, resources: tuple[str, ...], n: int, *, kind_mix, metric_mix,
               max_value: int = SAFE_MAX, zero_alloc: bool = True, nonzero_equal: bool = False,
               stale: float | None = None, allow_zero_override: bool = False) -> NodeTable:
    """``n`` nodes of the given kinds (weights ``kind_mix`` over KINDS) and metric states
    (weights ``metric_mix`` over full / none / partial). ``stale``: move ages equal to it just
    past it; ``allow_zero_override``: per-node thresholds of 0 may occur."""
    r = len(resources)
    u = rng.random((12, n, r))  # all the randomness of the table at once
    q = rand_quantities(rng, max_value, (3, n, r))
    mix = np.cumsum(np.array(kind_mix, dtype=np.float64) * ([1, 1, 1, 0 if not zero_alloc else 1, 1]))
    kind = np.searchsorted(mix / mix[-1], u[0, :, :1], side="right").repeat(r, axis=1)
    alloc = np.where(kind == 4, max_value // 2 + np.floor(u[1] * (max_value - max_value // 2 + 1)), q[0])
    alloc = np.where((kind == 3) & (u[2] < 0.5), 0, alloc).astype(np.int64)
    below = np.floor(u[3] * (alloc + 1)).astype(np.int64)  # uniform in 0..alloc
    req = np.where(u[4] < 0.7, below, q[1])
    req = np.where(kind == 1, alloc + 1 + np.floor(u[5] * 2 * np.maximum(alloc, 1)).astype(np.int64), req)
    req = np.where(kind == 2, np.maximum(alloc - np.floor(u[5] * 4).astype(np.int64), 0), req)
    req = np.where(kind == 4, below, req)
    small = np.array([0, 1, 500])[np.minimum((u[5] * 3).astype(int), 2)]
    req = np.where((kind == 3) & (alloc == 0), small, req)
    col = {name: j for j, name in enumerate(resources)}
    if PODS in col:
        choices = np.array([0, 1, 2, 110, 250] if zero_alloc else [1, 2, 110, 250])
        pods_alloc = choices[np.minimum((u[6, :, 0] * len(choices)).astype(int), len(choices) - 1)]
        alloc[:, col[PODS]] = pods_alloc
        req[:, col[PODS]] = np.floor(u[6, :, -1] * (pods_alloc + 2)).astype(np.int64)
    if not zero_alloc:
        for name in (CPU, MEMORY):
            alloc[:, col[name]] = np.maximum(alloc[:, col[name]], 1)
    nonzero = req.copy()
    if not nonzero_equal:  # pods without CPU / memory requests already on the node
        nonzero[:, col[CPU]] += np.floor(u[7, :, 0] * 4).astype(np.int64) * DEFAULT_MILLI_CPU
        nonzero[:, col[MEMORY]] += np.floor(u[7, :, -1] * 4).astype(np.int64) * DEFAULT_MEMORY
    which = np.floor(u[8] * 3)
    usage = np.where(which == 0, below, np.where(which == 1, q[2], alloc + np.floor(u[9] * (alloc + 1))))
    usage = usage.astype(np.float64)  # up to twice allocatable: overloaded nodes
    mix = np.cumsum(np.array(metric_mix, dtype=np.float64))
    metrics = np.searchsorted(mix / mix[-1], u[10, :, :1], side="right")  # full, none, partial
    usage[(metrics == 1) | ((metrics == 2) & (u[10] < 0.5))] = np.nan
    which = np.floor(u[11] * 4)
    some = np.array([1, 250, 1000])[(u[9] * 3).astype(int) % 3]
    pending = np.where(which <= 1, 0, np.where(which == 2, some, np.floor(u[2] * (alloc + 1))))
    override = np.where(u[11] < 0.1, np.floor(u[1] * (101 if allow_zero_override else 100))
                        + (0 if allow_zero_override else 1), np.nan)
    ages = np.where(u[0, :, -1] < 0.5, u[3, :, 0] * 1000,
                    EDGE_AGES[np.minimum((u[4, :, 0] * len(EDGE_AGES)).astype(int), len(EDGE_AGES) - 1)])
    if stale is not None:  # Koordinator's boundary (age == limit is expired) is tested on its own
        ages = np.where(ages == stale, math.nextafter(stale, math.inf), ages)
    return NodeTable.build(
        names=tuple(f"node-{i}" for i in range(n)), resources=resources,
        allocatable=alloc.astype(np.float64), requested=req.astype(np.float64),
        nonzero_requested=nonzero.astype(np.float64), usage=usage, pending=pending.astype(np.float64),
        threshold_override=override.astype(np.float64), load_age_s=ages.astype(np.float64))


def rand_pod(rng: np.random.Generator, resources: tuple[str, ...], *, max_value: int = SAFE_MAX,
             nonzero_equal: bool = False, min_request: int = 0) -> PodDemand:
    """A pod as extender/demand.py builds it: ``pods`` = 1; the non-zero variant substitutes
    100m / 200 MiB where no CPU / memory request is set; limits 0 (none), equal to, below or
    above the request, or anything."""
    r = len(resources)
    u = rng.random((4, r))
    q = rand_quantities(rng, max_value, (2, r))
    req = np.where(u[0] < 0.3, 0, q[0])
    base = np.array([name in (CPU, MEMORY) for name in resources])
    req = np.where(base, np.maximum(req, min_request), req)
    default = np.array([DEFAULT_MILLI_CPU if n == CPU else DEFAULT_MEMORY for n in resources])
    missing = base & (req == 0) & (u[1] < 0.5) & (not nonzero_equal)
    nonzero = np.where(missing, default, req)
    mode = np.floor(u[2] * 5)
    limit = np.select([mode == 0, mode == 1, mode == 2, mode == 3],
                      [0, req, np.floor(req * u[3]), req + 1 + np.floor(u[3] * (req + 10))], q[1])
    if PODS in resources:
        j = resources.index(PODS)
        req[j], nonzero[j], limit[j] = 1, 1, 0
    return PodDemand(resources=resources, requests=req.astype(np.float64),
                     nonzero_requests=nonzero.astype(np.float64), limits=limit.astype(np.float64))


def _subset(rng: np.random.Generator, candidates: tuple[str, ...], lo: int, hi: int) -> list[str]:
    k = int(rng.integers(lo, min(hi, len(candidates)) + 1))
    return [candidates[i] for i in rng.permutation(len(candidates))[:k]]


def rand_resources_args(rng: np.random.Generator, candidates: tuple[str, ...]) -> dict:
    """``args`` of a requests-based strategy: a non-empty ``resources`` list, int weights 1..5."""
    return {"resources": [{"name": n, "weight": int(rng.integers(1, 6))}
                          for n in _subset(rng, candidates, 1, 4)]}


def rand_load_aware_args(rng: np.random.Generator, candidates: tuple[str, ...]) -> dict:
    """LoadAware ``args``: weights 0..5 (at least one > 0), scaling factors 0..100, dominant."""
    names = _subset(rng, candidates, 1, 4)
    weights = {n: int(rng.integers(0, 6)) for n in names}
    if sum(weights.values()) == 0:
        weights[names[0]] = 1
    factors = {n: int(rng.choice([0, 1, 50, 70, 85, 99, 100, int(rng.integers(0, 101))]))
               for n in _subset(rng, candidates, 0, 3)}
    return {"resourceWeights": weights, "estimatedScalingFactors": factors,
            "dominantResourceWeight": int(rng.choice([0, 0, 1, 2, 3]))}


def rand_policy_doc(rng: np.random.Generator, resources: tuple[str, ...], names: tuple[str, ...], *,
                    requested_ext: list[str], compatible: bool, stale: float, fallback: str,
                    spread: bool, resource_fit: bool) -> dict:
    ext = tuple(r for r in resources if r not in (CPU, MEMORY, PODS))
    if compatible:
        score_candidates = (CPU, MEMORY, *[r for r in ext if r in requested_ext])
    else:
        score_candidates = (CPU, MEMORY, *ext, ABSENT, PODS)
    strategies = []
    for i, name in enumerate(names):
        if name == "LoadAware":
            weight = int(rng.integers(0, 6))
            args = rand_load_aware_args(rng, (CPU, MEMORY, *ext, ABSENT))
        else:
            weight = int(rng.integers(1 if compatible else 0, 6))
            args = rand_resources_args(rng, score_candidates)
        strategies.append({"name": name, "weight": max(weight, 1) if i == 0 else weight, "args": args})
    lowest = 1 if compatible else 0
    thresholds = {n: int(rng.choice([lowest, 50, 65, 80, 90, 95, 100, int(rng.integers(1, 101))]))
                  for n in _subset(rng, (CPU, MEMORY, *ext, ABSENT), 0, 3)}
    if compatible and any(r["name"] not in (CPU, MEMORY) for s in strategies if s["name"] != "LoadAware"
                          for r in s["args"]["resources"]):
        # a node lacking an extended resource the pod requests must fail the fit filter, or
        # kube-scheduler's "skip resources with allocatable 0" shows in its combined score
        resource_fit = True
    return {
        "filters": {"resourceFit": resource_fit, "usageThresholds": thresholds},
        "strategies": strategies,
        "load": {"staleAfterSeconds": stale, "fallback": fallback},
        "score": {"spread": spread},
    }


# --------------------------------------------------------------------------------------------
# hand-written inputs


def table(resources, alloc, *, requested=None, nonzero=None, usage=None, pending=None, age=None,
          override=None) -> NodeTable:
    """A NodeTable from nested lists (one row per node); ``nonzero`` defaults to ``requested``;
    usage NaN, age +inf and no overrides unless given."""
    n = len(alloc)

    def arr(x):
        return None if x is None else np.array(x, dtype=np.float64).reshape(n, len(resources))

    return NodeTable.build(
        names=tuple(f"node{i + 1}" for i in range(n)), resources=tuple(resources), allocatable=arr(alloc),
        requested=arr(requested), nonzero_requested=arr(nonzero if nonzero is not None else requested),
        usage=arr(usage), pending=arr(pending), threshold_override=arr(override),
        load_age_s=None if age is None else np.array(age, dtype=np.float64))


def pod(resources, requests, *, nonzero=None, limits=None) -> PodDemand:
    """A PodDemand from lists; ``nonzero`` defaults to ``requests``, limits to none."""
    r = np.array(requests, dtype=np.float64)
    return PodDemand(resources=tuple(resources), requests=r,
                     nonzero_requests=r.copy() if nonzero is None else np.array(nonzero, dtype=np.float64),
                     limits=np.zeros(len(resources)) if limits is None
                     else np.array(limits, dtype=np.float64))


# --------------------------------------------------------------------------------------------
# hypothesis strategies


@dataclasses.dataclass
class Scenario:
    nodes: NodeTable
    pod: PodDemand
    policy: Policy
    doc: dict  # the policy document the Policy was parsed from

    def __repr__(self) -> str:  # hypothesis prints this on failure: make it reproducible
        n = self.nodes
        arrays = {f: getattr(n, f).tolist() for f in (
            "allocatable", "requested", "nonzero_requested", "usage", "pending",
            "threshold_override", "load_age_s")}
        return (f"Scenario(resources={n.resources!r}, arrays={arrays!r}, "
                f"pod=(requests={self.pod.requests.tolist()!r}, "
                f"nonzero={self.pod.nonzero_requests.tolist()!r}, limits={self.pod.limits.tolist()!r}), "
                f"policy={self.doc!r})")

    def _repr_pretty_(self, p, cycle) -> None:  # hypothesis's pretty printer prefers this
        p.text(repr(self))


@st.composite
def node_tables(draw, resources: tuple[str, ...], *, min_nodes: int = 1, max_nodes: int = 40,
                **kwargs) -> NodeTable:
    """A node table on ``resources`` (see ``rand_table`` for the keyword arguments)."""
    n = draw(node_counts(min_nodes, max_nodes))
    kind_mix, metric_mix = draw(MIXES)
    return rand_table(np.random.default_rng(draw(SEEDS)), resources, n, kind_mix=kind_mix,
                      metric_mix=metric_mix, **kwargs)


@st.composite
def scenarios(draw, *, compatible: bool = True, max_value: int = SAFE_MAX, min_nodes: int = 1,
              max_nodes: int = 40, spread: bool | None = None, only: tuple[str, ...] | None = None,
              fallback: str | None = None) -> Scenario:
    """A node table, a pod and a validated policy over the same resources. ``only``: the
    strategies to use (in that order); ``spread`` / ``fallback``: fix those settings."""
    resources = (CPU, MEMORY, PODS, *draw(EXTENDED_SETS))
    names = draw(STRATEGY_LISTS) if only is None else only
    stale, drawn_fallback, drawn_spread, resource_fit = draw(SETTINGS)
    fallback = drawn_fallback if fallback is None else fallback
    spread = drawn_spread if spread is None else spread
    n = draw(node_counts(min_nodes, max_nodes))
    kind_mix, metric_mix = draw(MIXES)
    rng = np.random.default_rng(draw(SEEDS))
    nonzero_equal = compatible and "BalancedAllocation" in names
    pod = rand_pod(rng, resources, max_value=max_value, nonzero_equal=nonzero_equal,
                   min_request=1 if compatible else 0)
    requested_ext = [r for r in resources if r not in (CPU, MEMORY, PODS)
                     and pod.requests[resources.index(r)] > 0]
    doc = rand_policy_doc(rng, resources, names, requested_ext=requested_ext, compatible=compatible,
                          stale=stale, fallback=fallback, spread=spread, resource_fit=resource_fit)
    nodes = rand_table(rng, resources, n, kind_mix=kind_mix, metric_mix=metric_mix, max_value=max_value,
                       nonzero_equal=nonzero_equal, stale=stale if compatible else None,
                       allow_zero_override=not compatible)
    return Scenario(nodes, pod, parse_policy(doc), doc)
