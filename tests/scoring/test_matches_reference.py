"""The vectorised core against the scalar references (tests/scoring/reference.py), exactly.

Each property runs 500 generated examples over the core's whole documented input domain
(quantities up to 2**53, zero allocatable, unrequested extended resources, best-effort pods,
missing and stale metrics, ages exactly at the limit, thresholds and strategy weights of 0; see
generators.py). Each keeps, as an explicit ``@example``, the counterexample that showed a
divergence the core has since fixed. A divergence the core still has is a strict xfail with its
own counterexample, so it fails deterministically and alerts (XPASS) the day the core is fixed.
RequestedToCapacityRatio has its own file, test_rtcr.py.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoring import NodeTable, PodDemand, evaluate
from scoring.estimate import estimate_pod, estimate_usage, go_round, go_round_scalar
from scoring.filters import filter_nodes, load_usable
from scoring.policy import BALANCED_FORMULAS
from scoring.strategies import balanced_allocation, least_allocated, load_aware, most_allocated
from tests.scoring import generators as gen
from tests.scoring import reference as ref
from tests.scoring.generators import pod, table

PROPERTY = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# --------------------------------------------------------------------------------------------
# inputs


strategy_args = gen.strategy_args
requests_cases = gen.requests_cases


def assert_matches(core: np.ndarray | None, expected: list | None, nodes: NodeTable) -> None:
    """The core's (N,) int64 scores equal the reference's wherever the reference has a value
    (None: nothing to compare, e.g. LoadAware without a measurement); None (the strategy does
    not apply) on both sides or neither."""
    if expected is None or core is None:
        assert core is None and expected is None, f"core {core!r}, reference {expected!r}"
        return
    assert core.shape == (len(nodes),) and core.dtype == np.int64, (core.shape, core.dtype)
    for i, want in enumerate(expected):
        if want is not None:
            assert core[i] == want, f"node {i}: core {core[i]} != reference {want}"


# Counterexamples of divergences the core has fixed (kept as explicit examples).
HUGE = table(("cpu", "memory"), [[1000, 999_999_999_999_999]], requested=[[0, 10_000_000_000_000]])
HUGE_POD = pod(("cpu", "memory"), [0, 0])
MEMORY_ONLY = {"resources": [{"name": "memory", "weight": 1}]}
HUGE_MOST = table(("cpu", "memory"), [[1000, 999_999_999_999_999]], requested=[[0, 989_999_999_999_999]])
# 2**53 itself, with requested one below it (the int64 path at its top)
TOP = table(("cpu", "memory"), [[1000, 2**53]], requested=[[0, 2**53 - 1]])
# kube-scheduler least_allocated_test.go "if the node doesn't have a resource"
EXT = "abc.com/xyz"
NO_EXT_NODES = table(("cpu", "memory", EXT), [[6000, 10000, 0], [6000, 10000, 4]])
NO_EXT_POD = pod(("cpu", "memory", EXT), [3000, 4000, 0])
NO_EXT_RESOURCES = {
    "resources": [{"name": EXT, "weight": 2}, {"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
}
# kube-scheduler balanced_allocation_test.go "include scalar resource on a node for balanced
# resource allocation": the pod sets no CPU request (non-zero default 100m, plain 0).
GPU = "nvidia.com/gpu"
SCALAR_NODES = table(
    ("cpu", "memory", GPU), [[3500, 40000, 8], [3500, 40000, 8]], requested=[[3000, 5000, 3], [3000, 5000, 0]]
)
SCALAR_POD = pod(("cpu", "memory", GPU), [0, 0, 1], nonzero=[100, 0, 1])
SCALAR_ARGS = strategy_args(
    "BalancedAllocation",
    {
        "resources": [
            {"name": "cpu", "weight": 1},
            {"name": "memory", "weight": 1},
            {"name": GPU, "weight": 1},
        ]
    },
)
# balanced_allocation_test.go "nothing scheduled, nothing requested, skip in PreScore"
BEST_EFFORT_POD = pod(("cpu", "memory"), [0, 0], nonzero=[100, 200 * 2**20])


# --------------------------------------------------------------------------------------------
# kube-scheduler LeastAllocated / MostAllocated


@PROPERTY
@given(case=requests_cases("LeastAllocated"))
@example(case=(NO_EXT_NODES, NO_EXT_POD, strategy_args("LeastAllocated", NO_EXT_RESOURCES)))  # [55, 55]
@example(case=(HUGE, HUGE_POD, strategy_args("LeastAllocated", MEMORY_ONLY)))  # 98 (float: 99)
@example(case=(TOP, HUGE_POD, strategy_args("LeastAllocated", MEMORY_ONLY)))
def test_least_allocated_matches_kube_scheduler(case):
    """Exact, skipped resources (allocatable 0, unrequested scalar resources, ``pods``)
    included, on both sides of the float/int64 switch up to 2**53."""
    nodes, p, args = case
    assert_matches(least_allocated(p, nodes, args), ref.least_allocated(p, nodes, args), nodes)


@PROPERTY
@given(case=requests_cases("MostAllocated"))
@example(case=(NO_EXT_NODES, NO_EXT_POD, strategy_args("MostAllocated", NO_EXT_RESOURCES)))  # [45, 45]
@example(case=(HUGE_MOST, HUGE_POD, strategy_args("MostAllocated", MEMORY_ONLY)))
@example(case=(TOP, HUGE_POD, strategy_args("MostAllocated", MEMORY_ONLY)))
def test_most_allocated_matches_kube_scheduler(case):
    nodes, p, args = case
    assert_matches(most_allocated(p, nodes, args), ref.most_allocated(p, nodes, args), nodes)


# --------------------------------------------------------------------------------------------
# kube-scheduler BalancedAllocation (float64 in Go too), the formula of each release


def with_formula(case, formula: str):
    """The drawn (nodes, pod, args) with BalancedAllocation's ``formula`` set."""
    nodes, p, args = case
    return nodes, p, dataclasses.replace(args, formula=formula)


@pytest.mark.parametrize("formula", BALANCED_FORMULAS)
@PROPERTY
@given(case=requests_cases("BalancedAllocation"))
@example(case=(SCALAR_NODES, SCALAR_POD, SCALAR_ARGS))  # k8s v1.35 expects [70, 65]; v1.36 [75, 76]
@example(
    case=(
        table(("cpu", "memory"), [[4000, 10000]]),
        BEST_EFFORT_POD,
        strategy_args("BalancedAllocation", None),
    )
)  # skipped: None
@example(
    case=(
        HUGE,
        pod(("cpu", "memory"), [1, 10_000_000_000_000]),  # memory past 2**53 // 100
        strategy_args("BalancedAllocation", None),
    )
)
def test_balanced_allocation_matches_kube_scheduler(case, formula):
    """Plain requests (``useRequested``), None (PreScore Skip) for a best-effort pod; v1.36's
    balance without the pod reads the node's own requests, skipped like the with-pod ones."""
    nodes, p, args = with_formula(case, formula)
    assert_matches(balanced_allocation(p, nodes, args), ref.balanced_allocation(p, nodes, args), nodes)


PODS_ONLY_NODES = table(("cpu", "memory", "pods"), [[4000, 10000, 110]])
PODS_ONLY_POD = pod(("cpu", "memory", "pods"), [0, 0, 1], nonzero=[100, 200 * 2**20, 1])


# Once a divergence: the pod slot (`pods` = 1 in PodDemand.requests, the extender's fit
# semantics) must not make a pod that requests nothing else "not best-effort"; kube-scheduler's
# isBestEffortPod reads the containers' requests, which never hold `pods`.
@PROPERTY
@given(case=requests_cases("BalancedAllocation"))
@example(
    case=(
        PODS_ONLY_NODES,
        PODS_ONLY_POD,
        strategy_args(
            "BalancedAllocation",
            {
                "resources": [
                    {"name": "cpu", "weight": 1},
                    {"name": "memory", "weight": 1},
                    {"name": "pods", "weight": 1},
                ]
            },
        ),
    )
)
def test_balanced_allocation_does_not_count_the_pod_slot_as_a_request(case):
    nodes, p, args = case  # the formula as drawn: either release, or the default
    assert_matches(balanced_allocation(p, nodes, args), ref.balanced_allocation(p, nodes, args), nodes)


# --------------------------------------------------------------------------------------------
# Koordinator estimator and Go's math.Round


def core_estimate(p: PodDemand, est: dict[str, int]) -> np.ndarray:
    """The reference estimate on the pod's resource axis (0 where no factor applies)."""
    return np.array([float(est.get(name, 0)) for name in p.resources])


@st.composite
def estimate_cases(draw):
    resources = (gen.CPU, gen.MEMORY, gen.PODS, *draw(gen.EXTENDED_SETS))
    rng = np.random.default_rng(draw(gen.SEEDS))
    p = gen.rand_pod(rng, resources, max_value=gen.HUGE_MAX)
    factors = {
        n: int(rng.choice([0, 1, 33, 50, 70, 85, 99, 100, int(rng.integers(0, 101))]))
        for n in gen._subset(rng, resources, 0, len(resources))
    }
    return p, factors


@PROPERTY
@given(case=estimate_cases())
def test_estimate_matches_koordinator_default_estimator(case):
    p, factors = case
    expected = ref.estimate_pod(p, factors)
    got = estimate_pod(p, factors)
    assert got.shape == (len(p.resources),)
    for r, name in enumerate(p.resources):
        assert got[r] == expected.get(name, 0), name
    # the batch form (the estimate of the pods a preemption would evict) agrees, one row a pod
    batch = estimate_usage(
        np.stack([p.requests, p.limits]), np.stack([p.limits, p.requests]), p.resources, factors
    )
    assert batch[0].tolist() == got.tolist()
    swapped = ref.estimate_pod(dataclasses.replace(p, requests=p.limits, limits=p.requests), factors)
    assert batch[1].tolist() == [float(swapped.get(name, 0)) for name in p.resources]


ROUND_EDGES = (
    0.49999999999999994,
    -0.49999999999999994,
    0.5,
    -0.5,
    1.5,
    2.5,
    -2.5,
    2.0**52 + 1,
    -(2.0**52 + 1),
    2.0**52 - 0.5,
    2.0**53 - 1,
    4503599627370495.5,
    5e-324,
    1.7976931348623157e308,
)


@PROPERTY
@given(x=st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(ROUND_EDGES))
@example(x=0.49999999999999994)  # floor(x + 0.5) gives 1; Go 0
@example(x=2.0**52 + 1)  # floor(x + 0.5) gives 2**52 + 2; Go keeps it
@example(x=-0.3)  # Go: -0 (the sign survives)
def test_go_round_matches_math_round(x):
    want = ref.go_round(x)
    for got in (go_round(np.array([x]))[0], go_round_scalar(x)):
        assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want)


@pytest.mark.parametrize("x", [math.inf, -math.inf, math.nan, 0.0, -0.0])
def test_go_round_passes_specials_through(x):
    for got in (go_round(np.array([x]))[0], go_round_scalar(x)):
        assert (math.isnan(got) and math.isnan(x)) or got == x


# --------------------------------------------------------------------------------------------
# Load freshness and the LoadAware score


AT_THE_LIMIT = gen.scenario(
    table(("cpu", "memory"), [[1000, 1000]], usage=[[0, 0]], age=[180.0]), pod(("cpu", "memory"), [0, 0]), {}
)


@PROPERTY
@given(sc=gen.scenarios())
@example(sc=AT_THE_LIMIT)  # isNodeMetricExpired: age == limit is expired
@example(
    sc=gen.scenario(  # no LoadAware, no thresholds: only the age matters
        table(("cpu", "memory"), [[1000, 1000]] * 2, age=[0.0, 180.0]),
        pod(("cpu", "memory"), [0, 0]),
        {"filters": {"usageThresholds": {}}, "strategies": [{"name": "LeastAllocated"}]},
    )
)
def test_load_usable_matches_koordinator_expiry_and_policy_resources(sc):
    got = load_usable(sc.nodes, sc.policy)
    assert got.dtype == np.bool_
    assert got.tolist() == [ref.load_usable(sc.nodes, i, sc.policy) for i in range(len(sc.nodes))]
    assert set(sc.policy.load_resources) == ref.load_resources(sc.policy)


def check_load_aware(sc) -> None:
    est = ref.estimate_pod(sc.pod, ref.load_aware_args(sc.policy)[1])
    args = sc.policy.strategies[0].args
    got = load_aware(sc.pod, sc.nodes, args, estimate=core_estimate(sc.pod, est))
    assert_matches(got, ref.load_aware(sc.pod, sc.nodes, args, estimate=est), sc.nodes)


@PROPERTY
@given(sc=gen.scenarios(only=("LoadAware",)))
@example(
    sc=gen.scenario(
        table(("cpu", "memory"), [[1000, 999_999_999_999_999]], usage=[[0, 10_000_000_000_000]], age=[0.0]),
        pod(("cpu", "memory"), [0, 1]),  # memory estimate round(1 * 0 / 100) = 0
        {
            "strategies": [
                {
                    "name": "LoadAware",
                    "args": {"resourceWeights": {"memory": 1}, "estimatedScalingFactors": {"memory": 0}},
                }
            ]
        },
    )
)
def test_load_aware_matches_koordinator(sc):
    """Exact on every node with a measurement (fresh or not), up to 2**53. Example:
    Koordinator (999999999999999 - 1e13) * 100 / 999999999999999 = 98 (float64: 99)."""
    check_load_aware(sc)


# --------------------------------------------------------------------------------------------
# Filters: NodeResourcesFit, Koordinator usage thresholds, the project's own checks


def check_filter(sc) -> None:
    n = len(sc.nodes)
    est = ref.estimate_pod(sc.pod, ref.load_aware_args(sc.policy)[1])
    usable = [ref.load_usable(sc.nodes, i, sc.policy) for i in range(n)]
    v = filter_nodes(
        sc.pod, sc.nodes, sc.policy, estimate=core_estimate(sc.pod, est), load_ok=np.array(usable)
    )
    for i in range(n):
        want = ref.verdict(sc.pod, sc.nodes, i, sc.policy, est, usable[i])
        col = int(v.resource[i])
        got_resource = sc.nodes.resources[col] if col >= 0 else None
        assert (int(v.code[i]), got_resource) == (want.code, want.resource), f"node {i}"
        if want.unresolvable is not None:
            assert bool(v.unresolvable[i]) == want.unresolvable, f"node {i}"
    assert v.feasible.tolist() == [c == ref.OK for c in v.code.tolist()]


@PROPERTY
@given(sc=gen.scenarios())
@example(
    sc=gen.scenario(  # load_aware_test.go TestFilterUsage "disable filter exceed memory usage"
        table(("cpu", "memory"), [[96_000, 512 * 2**30]], usage=[[30_000, 500 * 2**30]], age=[0.0]),
        pod(("cpu", "memory"), [0, 0]),
        {"filters": {"usageThresholds": {"memory": 0}}},
    )
)
@example(
    sc=gen.scenario(  # a per-node override of 0 disables the resource on that node only
        table(
            ("cpu", "memory"),
            [[1000, 1000]] * 2,
            usage=[[990, 0]] * 2,
            age=[0.0, 0.0],
            override=[[0, math.nan], [math.nan, math.nan]],
        ),
        pod(("cpu", "memory"), [0, 0]),
        {"filters": {"usageThresholds": {"cpu": 50}}},
    )
)
def test_filter_matches_fit_and_koordinator_thresholds(sc):
    check_filter(sc)


# --------------------------------------------------------------------------------------------
# The whole evaluation


def check_evaluate(sc) -> None:
    ev = evaluate(pod=sc.pod, nodes=sc.nodes, policy=sc.policy)
    want = ref.evaluate(sc.pod, sc.nodes, sc.policy)
    n = len(sc.nodes)
    assert ev.estimate.tolist() == core_estimate(sc.pod, want.estimate).tolist()
    assert ev.load_ok.tolist() == want.usable
    assert ev.fallback.tolist() == want.fallback
    for i in range(n):
        col = int(ev.verdict.resource[i])
        assert (int(ev.verdict.code[i]), sc.nodes.resources[col] if col >= 0 else None) == (
            want.verdicts[i].code,
            want.verdicts[i].resource,
        ), f"node {i}"
    assert set(ev.components) == set(want.components)
    for name, expected in want.components.items():
        assert_matches(ev.components[name], expected, sc.nodes)
    if want.implicit is None:
        assert ev.implicit is None
    else:
        assert ev.implicit is not None and ev.implicit.tolist() == want.implicit
    assert ev.scores.dtype == np.int64 and ev.combined.dtype == np.float64
    # combined is num / den in float64: the correctly rounded value of the exact rational
    assert ev.combined.tolist() == [float(c) for c in want.combined]
    assert ev.scores.tolist() == want.scores


def _spread_tie_scenario() -> gen.Scenario:
    # LeastAllocated w1 + MostAllocated w2 on memory (alloc 100): combined = (100 + r) / 3 for a
    # node with r requested. r = 0, 4, 1 -> 100/3, 104/3, 101/3; spread: (1/3) * 100 / (4/3) = 25
    # exactly -> floor(2.5 + 0.5) = 3 (a float64 mean stretched gives 24.999999999999734 -> 2).
    doc = {
        "filters": {"usageThresholds": {}},
        "score": {"spread": True},
        "strategies": [
            {"name": "LeastAllocated", "weight": 1, "args": {"resources": [{"name": "memory", "weight": 1}]}},
            {"name": "MostAllocated", "weight": 2, "args": {"resources": [{"name": "memory", "weight": 1}]}},
        ],
    }
    nodes = table(
        ("cpu", "memory", "pods"), [[1000, 100, 110]] * 3, requested=[[0, 0, 0], [0, 4, 0], [0, 1, 0]]
    )
    return gen.scenario(nodes, pod(("cpu", "memory", "pods"), [0, 0, 1]), doc)


def _zero_weight_fallback_scenario() -> gen.Scenario:
    # LoadAware w1 and LeastAllocated w0; node 2 has no load data. "requests" fallback: no
    # requests-based strategy takes part, so the implicit LeastAllocated cpu=1, memory=1 applies:
    # cpu (1000 - 100) * 100 / 1000 = 90, memory (2**30 - 2**20) * 100 / 2**30 = 99 (99.9),
    # (90 + 99) / 2 = 94 -> 9. Node 1: LoadAware (91 + 99) / 2 = 95 -> 10.
    doc = {
        "filters": {"usageThresholds": {}},
        "load": {"fallback": "requests"},
        "strategies": [{"name": "LoadAware", "weight": 1}, {"name": "LeastAllocated", "weight": 0}],
    }
    nodes = table(
        ("cpu", "memory", "pods"),
        [[1000, 2**30, 110]] * 2,
        usage=[[0, 0, 0], [math.nan] * 3],
        age=[0.0, math.inf],
    )
    return gen.scenario(nodes, pod(("cpu", "memory", "pods"), [100, 2**20, 1]), doc)


def _best_effort_balanced_fallback_scenario() -> gen.Scenario:
    # LoadAware w1 and BalancedAllocation w3, a best-effort pod: BalancedAllocation takes no part,
    # so node 1 (fresh) is LoadAware alone and node 2 (stale) the implicit LeastAllocated.
    doc = {
        "filters": {"usageThresholds": {}},
        "strategies": [{"name": "LoadAware", "weight": 1}, {"name": "BalancedAllocation", "weight": 3}],
    }
    nodes = table(
        ("cpu", "memory", "pods"),
        [[1000, 2**30, 110]] * 2,
        requested=[[500, 0, 0]] * 2,
        nonzero=[[500, 0, 0]] * 2,
        usage=[[0, 0, 0]] * 2,
        age=[0.0, 180.0],
    )
    return gen.scenario(nodes, pod(("cpu", "memory", "pods"), [0, 0, 1], nonzero=[100, 200 * 2**20, 1]), doc)


def _overshoot_scenario() -> gen.Scenario:
    # combined = (100 + r) / 3 with r = 0 and 32: a float64 stretch gives 100.00000000000001
    doc = {
        "filters": {"usageThresholds": {}},
        "score": {"spread": True},
        "strategies": [
            {"name": "LeastAllocated", "weight": 1, "args": {"resources": [{"name": "memory", "weight": 1}]}},
            {"name": "MostAllocated", "weight": 2, "args": {"resources": [{"name": "memory", "weight": 1}]}},
        ],
    }
    nodes = table(("cpu", "memory", "pods"), [[1000, 100, 110]] * 2, requested=[[0, 0, 0], [0, 32, 0]])
    return gen.scenario(nodes, pod(("cpu", "memory", "pods"), [0, 0, 1]), doc)


@PROPERTY
@given(sc=gen.scenarios())
@example(sc=_spread_tie_scenario())
@example(sc=_zero_weight_fallback_scenario())
@example(sc=_best_effort_balanced_fallback_scenario())
@example(sc=_overshoot_scenario())
@example(sc=AT_THE_LIMIT)
def test_evaluate_matches_reference(sc):
    """Everything ``evaluate`` returns equals the exact reference: verdicts, components, the
    fallback and implicit scores, ``combined`` to the last bit and the 0..10 levels."""
    check_evaluate(sc)


def test_spread_rounds_exact_ties_half_up():
    sc = _spread_tie_scenario()
    want = ref.evaluate(sc.pod, sc.nodes, sc.policy)
    assert want.combined[2] == Fraction(25) and want.scores == [0, 10, 3]
    ev = evaluate(pod=sc.pod, nodes=sc.nodes, policy=sc.policy)
    assert ev.scores.tolist() == want.scores and ev.combined.tolist() == [0.0, 100.0, 25.0]


def test_requests_fallback_with_zero_weight_requests_strategies():
    sc = _zero_weight_fallback_scenario()
    want = ref.evaluate(sc.pod, sc.nodes, sc.policy)
    assert want.scores == [10, 9] and want.implicit == [94, 94]
    ev = evaluate(pod=sc.pod, nodes=sc.nodes, policy=sc.policy)
    assert ev.scores.tolist() == want.scores
    assert ev.fallback.tolist() == [False, True]
    assert ev.implicit is not None and ev.implicit.tolist() == [94, 94]


def test_best_effort_pod_leaves_balanced_allocation_out_of_the_mean():
    sc = _best_effort_balanced_fallback_scenario()
    ev = evaluate(pod=sc.pod, nodes=sc.nodes, policy=sc.policy)
    assert ev.components["BalancedAllocation"] is None
    # node 1: LoadAware cpu (1000 - 250) -> 75, memory (2**30 - 200Mi) -> 80 (80.4): 77;
    # node 2 (age 180 = the limit: stale): implicit LeastAllocated cpu (1000 - 600) -> 40,
    # memory (2**30 - 200Mi) -> 80: 60
    assert ev.combined.tolist() == [77.0, 60.0] and ev.scores.tolist() == [8, 6]
    assert ev.combined.tolist() == [float(c) for c in ref.evaluate(sc.pod, sc.nodes, sc.policy).combined]


def test_spread_keeps_the_top_at_exactly_100():
    sc = _overshoot_scenario()
    ev = evaluate(pod=sc.pod, nodes=sc.nodes, policy=sc.policy)
    assert ev.combined.tolist() == [0.0, 100.0] and ev.scores.tolist() == [0, 10]
