"""RequestedToCapacityRatio: the core against the scalar reference and kube-scheduler's cases.

The reference (``reference.requested_to_capacity_ratio``) is written from
``pkg/scheduler/framework/plugins/noderesources/requested_to_capacity_ratio.go``
(``buildRequestedToCapacityRatioScorerFunction``, ``scaledUtilization``,
``requestedToCapacityRatioScorer``) and ``pkg/scheduler/framework/plugins/helper/shape_score.go``
(``BuildBrokenLinearFunction``). The table cases are kube-scheduler's own, from
``requested_to_capacity_ratio_test.go`` (test function and case named at each), run against both
the reference (which validates it) and the core.

Node shapes in those tests: ``st.MakeNode().Capacity(...)`` sets capacity and allocatable;
``makeNode(name, milliCPU, memory, extended)`` likewise with the extended resources. A pod built
with ``st.MakePod().Obj()`` has no container (no requests, and no non-zero defaults either);
``Req(...)`` adds a container with exactly those requests.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoring import evaluate, parse_policy
from scoring.strategies import broken_linear_table, requested_to_capacity_ratio
from tests.scoring import generators as gen
from tests.scoring import reference as ref
from tests.scoring.generators import pod, table

PROPERTY = settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

Mi = 2**20
CM = ("cpu", "memory")
FOO, BAR = "intel.com/foo", "intel.com/bar"
BIN_PACK = [(0, 0), (100, 10)]
SPREAD = [(0, 10), (100, 0)]


def rtcr_args(shape: list[tuple[int, int]], resources: list[tuple[str, int]] | None = None):
    args: dict = {"shape": [{"utilization": u, "score": s} for u, s in shape]}
    if resources is not None:
        args["resources"] = [{"name": n, "weight": w} for n, w in resources]
    return gen.strategy_args("RequestedToCapacityRatio", args)


# --------------------------------------------------------------------------------------------
# the core equals the reference


HUGE = table(
    CM, [[1000, 2**53], [1000, 999_999_999_999_999]], requested=[[0, 2**53 - 1], [0, 10_000_000_000_000]]
)


@PROPERTY
@given(case=gen.requests_cases("RequestedToCapacityRatio"))
@example(case=(HUGE, pod(CM, [0, 0]), rtcr_args(SPREAD, [("memory", 1)])))  # utilisation 99, 1: [1, 99]
@example(case=(table(CM, [[3000, 1000]]), pod(CM, [1000, 0]), rtcr_args([(0, 10), (30, 0)])))
def test_requested_to_capacity_ratio_matches_kube_scheduler(case):
    """Exact over the whole domain: skipped resources (allocatable 0, unrequested scalar
    resources, ``pods``), over-committed nodes (utilisation 100), quantities up to 2**53, any
    valid shape (falling segments truncate toward zero), weights 1..100."""
    nodes, p, args = case
    got = requested_to_capacity_ratio(p, nodes, args)
    assert got.dtype == np.int64 and got.shape == (len(nodes),)
    assert got.tolist() == ref.requested_to_capacity_ratio(p, nodes, args)


@st.composite
def shapes(draw):
    rng = np.random.default_rng(draw(gen.SEEDS))
    return rtcr_args([(d["utilization"], d["score"]) for d in gen.rand_shape(rng)])


@PROPERTY
@given(args=shapes())
def test_broken_linear_table_matches_build_broken_linear_function(args):
    f = ref.broken_linear_function(ref.rtcr_shape(args))
    got = broken_linear_table(args)
    assert got.shape == (101,)
    assert got.tolist() == [f(u) for u in range(101)]
    assert ((got >= 0) & (got <= 100)).all()


# --------------------------------------------------------------------------------------------
# TestBrokenLinearFunction (helper.BuildBrokenLinearFunction, unscaled points)

BROKEN_LINEAR = [
    (
        [(10, 1), (90, 9)],
        [
            (-10, 1),
            (0, 1),
            (9, 1),
            (10, 1),
            (15, 1),
            (19, 1),
            (20, 2),
            (89, 8),
            (90, 9),
            (99, 9),
            (100, 9),
            (110, 9),
        ],
    ),
    (
        [(0, 2), (40, 10), (100, 0)],
        [(-10, 2), (0, 2), (20, 6), (30, 8), (40, 10), (70, 5), (100, 0), (110, 0)],
    ),
    ([(0, 2), (40, 2), (100, 2)], [(-10, 2), (0, 2), (20, 2), (30, 2), (40, 2), (70, 2), (100, 2), (110, 2)]),
]


@pytest.mark.parametrize(
    ("points", "assertions"), [pytest.param(*c, id=f"case_{i}") for i, c in enumerate(BROKEN_LINEAR)]
)
def test_broken_linear_function_examples(points, assertions):
    f = ref.broken_linear_function(points)
    assert [f(p) for p, _ in assertions] == [want for _, want in assertions]
    # the core tabulates the scaled function (scores x 10) on 0..100
    table_ = broken_linear_table(rtcr_args(points))
    scaled = ref.broken_linear_function([(u, s * 10) for u, s in points])
    assert table_.tolist() == [scaled(u) for u in range(101)]
    for p, want in assertions:
        if 0 <= p <= 100 and p in (u for u, _ in points):
            assert table_[p] == want * 10


def test_falling_segment_truncates_toward_zero():
    """(0, 10) .. (30, 0), scaled to (0, 100) .. (30, 0): f(10) = 100 + (-100 * 10) / 30, Go's
    int64 division truncates -33.3 to -33 -> 67 (Python's floor division would give 66)."""
    f = ref.broken_linear_function([(0, 100), (30, 0)])
    assert [f(10), f(20), f(29), f(30)] == [67, 34, 4, 0]
    assert broken_linear_table(rtcr_args([(0, 10), (30, 0)]))[[10, 20, 29, 30]].tolist() == [67, 34, 4, 0]


# --------------------------------------------------------------------------------------------
# kube-scheduler's scoring cases


@dataclasses.dataclass
class Case:
    id: str
    nodes: Any
    pod: Any
    expected: list
    shape: list
    resources: list | None = None  # [(name, weight)]; None: cpu=1, memory=1


def ext_node_table(resources: tuple[str, ...], rows: list[dict], requested: list[dict] | None = None):
    """``makeNode(name, 4000, 10000*1024*1024, extended)`` rows on cpu, memory and ``resources``."""
    names = (*CM, *resources)
    alloc = [[4000, 10000 * Mi, *(r.get(x, 0) for x in resources)] for r in rows]
    req = None if requested is None else [[0, 0, *(r.get(x, 0) for x in resources)] for r in requested]
    return table(names, alloc, requested=req)


def ext_pod(resources: tuple[str, ...], requests: dict):
    return pod((*CM, *resources), [0, 0, *(requests.get(x, 0) for x in resources)])


FOO_ONLY = (FOO,)
FOO_BAR = (FOO, BAR)
SINGLE = [{FOO: 8}, {FOO: 4}]  # extendedResource2, extendedResource1
MULTIPLE = [{FOO: 8, BAR: 4}, {FOO: 4, BAR: 8}]  # extendedResources2, extendedResources1
CASES = [
    # TestRequestedToCapacityRatioScoringStrategy (shape {0, 10}, {100, 0}; cpu=1, memory=1)
    Case(
        "TestRequestedToCapacityRatioScoringStrategy/nothing scheduled, nothing requested",
        table(CM, [[4000, 10000], [4000, 10000]]),
        pod(CM, [0, 0]),
        [100, 100],
        SPREAD,
    ),
    # node1: cpu 3000 * 100 / 4000 = 75 -> 100 - 75 = 25; memory 50 -> 50; round(75 / 2) = 38
    # node2: cpu 50, memory 50 -> 50
    Case(
        "TestRequestedToCapacityRatioScoringStrategy/nothing scheduled, resources requested, "
        "differently sized nodes",
        table(CM, [[4000, 10000], [6000, 10000]]),
        pod(CM, [3000, 5000]),
        [38, 50],
        SPREAD,
    ),
    Case(
        "TestRequestedToCapacityRatioScoringStrategy/no resources requested, pods scheduled with resources",
        table(CM, [[4000, 10000], [6000, 10000]], requested=[[3000, 5000], [3000, 5000]]),
        pod(CM, [0, 0]),
        [38, 50],
        SPREAD,
    ),
    # TestResourceBinPackingSingleExtended (shape {0, 0}, {100, 1}; intel.com/foo=1)
    # the pod does not request intel.com/foo: bypassed, nothing left -> 0
    Case(
        "TestResourceBinPackingSingleExtended/nothing scheduled, nothing requested",
        ext_node_table(FOO_ONLY, SINGLE),
        ext_pod(FOO_ONLY, {}),
        [0, 0],
        [(0, 0), (100, 1)],
        [(FOO, 1)],
    ),
    # 2 / 8 -> 25 -> 10 * 25 / 100 = 2; 2 / 4 -> 50 -> 5
    Case(
        "TestResourceBinPackingSingleExtended/resources requested, pods scheduled with less resources",
        ext_node_table(FOO_ONLY, SINGLE),
        ext_pod(FOO_ONLY, {FOO: 2}),
        [2, 5],
        [(0, 0), (100, 1)],
        [(FOO, 1)],
    ),
    # node2 already runs a pod with 2: (2 + 2) / 4 -> 100 -> 10
    Case(
        "TestResourceBinPackingSingleExtended/resources requested, pods scheduled with resources, "
        "on node with existing pod running",
        ext_node_table(FOO_ONLY, SINGLE, [{}, {FOO: 2}]),
        ext_pod(FOO_ONLY, {FOO: 2}),
        [2, 10],
        [(0, 0), (100, 1)],
        [(FOO, 1)],
    ),
    Case(
        "TestResourceBinPackingSingleExtended/resources requested, pods scheduled with more resources",
        ext_node_table(FOO_ONLY, SINGLE),
        ext_pod(FOO_ONLY, {FOO: 4}),
        [5, 10],
        [(0, 0), (100, 1)],
        [(FOO, 1)],
    ),
    # TestResourceBinPackingMultipleExtended (shape {0, 0}, {100, 1}; foo=3, bar=5)
    # nothing requested: both scalar resources bypassed -> 0
    Case(
        "TestResourceBinPackingMultipleExtended/nothing scheduled, nothing requested",
        ext_node_table(FOO_BAR, MULTIPLE),
        ext_pod(FOO_BAR, {}),
        [0, 0],
        [(0, 0), (100, 1)],
        [(FOO, 3), (BAR, 5)],
    ),
    # node1: foo 2 / 8 -> 2, bar 2 / 4 -> 5: round((2 * 3 + 5 * 5) / 8) = round(3.875) = 4
    # node2: foo 2 / 4 -> 5, bar 2 / 8 -> 2: round((15 + 10) / 8) = round(3.125) = 3
    Case(
        "TestResourceBinPackingMultipleExtended/resources requested, pods scheduled with less resources",
        ext_node_table(FOO_BAR, MULTIPLE),
        ext_pod(FOO_BAR, {FOO: 2, BAR: 2}),
        [4, 3],
        [(0, 0), (100, 1)],
        [(FOO, 3), (BAR, 5)],
    ),
    # node2 runs foo 4, bar 2: foo (4 + 2) / 4 > 1 -> 10, bar 4 / 8 -> 5: round((30 + 25) / 8) = 7
    Case(
        "TestResourceBinPackingMultipleExtended/resources requested, pods scheduled with resources, "
        "on node with existing pod running",
        ext_node_table(FOO_BAR, MULTIPLE, [{}, {FOO: 4, BAR: 2}]),
        ext_pod(FOO_BAR, {FOO: 2, BAR: 2}),
        [4, 7],
        [(0, 0), (100, 1)],
        [(FOO, 3), (BAR, 5)],
    ),
    # node1: foo 4 / 8 -> 5, bar 2 / 4 -> 5: 5; node2: foo 4 / 4 -> 10, bar 2 / 8 -> 2: (30 + 10) / 8 = 5
    Case(
        "TestResourceBinPackingMultipleExtended/resources requested, pods scheduled with more resources",
        ext_node_table(FOO_BAR, MULTIPLE),
        ext_pod(FOO_BAR, {FOO: 4, BAR: 2}),
        [5, 5],
        [(0, 0), (100, 1)],
        [(FOO, 3), (BAR, 5)],
    ),
    # hand-computed: bin packing {0, 0}, {100, 10} on cpu and memory (alloc 4000 / 10000), a pod
    # requesting nothing. node1: cpu 1000 / 4000 -> 25, memory 7000 / 10000 -> 70:
    # round(95 / 2) = round(47.5) = 48; node2 full: 100, 100 -> 100; node3 empty: both score 0,
    # dropped from both sums -> 0; node4: cpu 100, memory 0 dropped: 100 (a 0 does not dilute)
    Case(
        "bin packing shape",
        table(CM, [[4000, 10000]] * 4, requested=[[1000, 7000], [4000, 10000], [0, 0], [4000, 0]]),
        pod(CM, [0, 0]),
        [48, 100, 0, 100],
        BIN_PACK,
    ),
    # hand-computed: spreading {0, 10}, {100, 0}: 100 - utilisation; the pod requests memory 1000.
    # node1: cpu 3000 / 4000 -> 25, memory 3000 / 10000 -> 70: round(47.5) = 48; node2: both at
    # 100 -> both 0, dropped -> 0; node3: 100, 90 -> 95; node4: cpu full (dropped), memory 90;
    # node5 over-committed (requested > allocatable: utilisation 100): cpu 0 (dropped), memory
    # 9000 / 10000 -> 10
    Case(
        "spreading shape",
        table(
            CM, [[4000, 10000]] * 5, requested=[[3000, 2000], [4000, 9000], [0, 0], [4000, 0], [9000, 8000]]
        ),
        pod(CM, [0, 1000]),
        [48, 0, 95, 90, 10],
        SPREAD,
    ),
]


@pytest.mark.parametrize("impl", ["reference", "core"])
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_requested_to_capacity_ratio_examples(case: Case, impl: str):
    args = rtcr_args(case.shape, case.resources)
    got = (
        requested_to_capacity_ratio(case.pod, case.nodes, args).tolist()
        if impl == "core"
        else ref.requested_to_capacity_ratio(case.pod, case.nodes, args)
    )
    assert got == case.expected


def test_rtcr_in_a_policy_is_a_requests_strategy():
    """In ``evaluate``: a requests-based strategy (it stays in the 'requests' fallback), its
    component the scorer's output."""
    doc = {
        "filters": {"usageThresholds": {}},
        "strategies": [
            {"name": "LoadAware", "weight": 1},
            {
                "name": "RequestedToCapacityRatio",
                "weight": 1,
                "args": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]},
            },
        ],
    }
    nodes = table(
        ("cpu", "memory", "pods"),
        [[4000, 10000, 110]] * 2,
        requested=[[1000, 6000, 0]] * 2,
        usage=[[0, 0, 0], [0, 0, 0]],
        age=[0.0, 1000.0],
    )
    p = pod(("cpu", "memory", "pods"), [1000, 1000, 1])
    ev = evaluate(pod=p, nodes=nodes, policy=parse_policy(doc))
    # cpu 2000 / 4000 -> 50, memory 7000 / 10000 -> 70: 60 on both nodes; node 2 is stale: 60 alone
    assert ev.components["RequestedToCapacityRatio"].tolist() == [60, 60]
    assert ev.fallback.tolist() == [False, True] and ev.combined[1] == 60.0
    want = ref.evaluate(p, nodes, parse_policy(doc))
    assert ev.scores.tolist() == want.scores and ev.combined.tolist() == [float(c) for c in want.combined]
