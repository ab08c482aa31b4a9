"""Hand-computed examples, most of them the upstream projects' own test cases.

Each case runs against the core and against tests/scoring/reference.py (which must reproduce the
upstream expectation: that validates the reference itself). A case on which the core departs
from upstream would be a strict xfail for the core only, with the reason (none at present: the
cases that were, skipped resources, plain requests and best-effort pods in BalancedAllocation,
expiry at the limit and thresholds of 0, now pass). RequestedToCapacityRatio's cases are in
test_rtcr.py.

Sources:
* kube-scheduler ``pkg/scheduler/framework/plugins/noderesources/least_allocated_test.go``
  (``TestLeastAllocatedScoringStrategy``), ``most_allocated_test.go``
  (``TestMostAllocatedScoringStrategy``), ``balanced_allocation_test.go``
  (``TestNodeResourcesBalancedAllocation`` as of v1.35, before kubernetes/kubernetes#135573:
  the ``formula: v1.35`` cases; the ``v1.36`` ones are computed by hand from that release's
  formula); ``extendedRes`` is ``abc.com/xyz``,
  ``extendedResourceSet`` cpu=1, memory=1, abc.com/xyz=1. ``st.MakePod().Req(...)`` adds a
  container with exactly those requests (an explicit "0" counts as set, so the non-zero variant
  equals the plain one); ``st.MakePod().Obj()`` has no container (no defaults either);
  ``Container("container")`` has a container without requests (defaults 100m / 200 MiB).
* Koordinator ``pkg/scheduler/plugins/loadaware/load_aware_test.go`` (``TestScore``,
  ``TestFilterUsage``, ``TestFilterExpiredNodeMetric``; node allocatable 96 CPU / 512 GiB, default
  args: weights cpu=1 memory=1, factors cpu=85 memory=70, thresholds cpu=65 memory=95, expiry
  180 s) and ``estimator/default_estimator_test.go`` (``TestDefaultEstimatorEstimatePod``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from scoring import evaluate, parse_policy, to_extender_scores
from scoring.estimate import estimate_pod, go_round, go_round_scalar
from scoring.filters import (
    INSUFFICIENT,
    NO_ALLOCATABLE,
    NO_FRESH_LOAD,
    OK,
    USAGE_THRESHOLD,
    filter_nodes,
    load_usable,
)
from scoring.strategies import balanced_allocation, least_allocated, load_aware, most_allocated
from tests.scoring import reference as ref
from tests.scoring.generators import pod, table

Gi, Mi = 2**30, 2**20
EXT, GPU = "abc.com/xyz", "nvidia.com/gpu"
CM = ("cpu", "memory")
CME = ("cpu", "memory", EXT)


@dataclasses.dataclass
class Case:
    id: str
    nodes: Any
    pod: Any
    expected: list
    resources: list | None = None  # [(name, weight)]: args of a requests strategy
    policy: dict | None = None
    bug: str | None = None  # the core departs from upstream here (strict xfail)


def params(cases: list[Case]) -> list:
    out = []
    for c in cases:
        out.append(pytest.param(c, "reference", id=f"{c.id}-reference"))
        marks = [pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else []
        out.append(pytest.param(c, "core", id=f"{c.id}-core", marks=marks))
    return out


def resources_args(name: str, resources: list | None, formula: str | None = None):
    args: dict = {}
    if resources is not None:
        args["resources"] = [{"name": n, "weight": w} for n, w in resources]
    if formula is not None:
        args["formula"] = formula
    return parse_policy({"strategies": [{"name": name, "args": args}]}).strategies[0].args


# --------------------------------------------------------------------------------------------
# LeastAllocated: least_allocated_test.go TestLeastAllocatedScoringStrategy

LEAST = [
    # CPU ((4000 - 0) * 100) / 4000 = 100, memory 100 -> (100 + 100) / 2 = 100 on both nodes
    Case(
        "nothing scheduled, nothing requested",
        table(CM, [[4000, 10000], [4000, 10000]]),
        pod(CM, [0, 0]),
        [100, 100],
    ),
    # node1: cpu (4000 - 3000) * 100 / 4000 = 25, memory (10000 - 5000) * 100 / 10000 = 50 -> 37
    # node2: cpu (6000 - 3000) * 100 / 6000 = 50, memory 50 -> 50
    Case(
        "nothing scheduled, resources requested, differently sized nodes",
        table(CM, [[4000, 10000], [6000, 10000]]),
        pod(CM, [3000, 5000]),
        [37, 50],
    ),
    Case(
        "no resources requested, pods scheduled",
        table(CM, [[4000, 10000], [4000, 10000]]),
        pod(CM, [0, 0]),
        [100, 100],
    ),
    # node1: cpu (10000 - 6000) * 100 / 10000 = 40, memory 100 -> 70
    # node2: cpu 40, memory (20000 - 5000) * 100 / 20000 = 75 -> 57
    Case(
        "no resources requested, pods scheduled with resources",
        table(CM, [[10000, 20000], [10000, 20000]], requested=[[6000, 0], [6000, 5000]]),
        pod(CM, [0, 0]),
        [70, 57],
    ),
    Case(
        "resources requested, pods scheduled with resources",
        table(CM, [[10000, 20000], [10000, 20000]], requested=[[3000, 0], [3000, 5000]]),
        pod(CM, [3000, 5000]),
        [57, 45],
    ),
    # node2: memory (50000 - 10000) * 100 / 50000 = 80 -> (40 + 80) / 2 = 60
    Case(
        "resources requested, pods scheduled with resources, differently sized nodes",
        table(CM, [[10000, 20000], [10000, 50000]], requested=[[3000, 0], [3000, 5000]]),
        pod(CM, [3000, 5000]),
        [57, 60],
    ),
    # cpu 6000 > 4000 -> 0; node1 memory 100 -> 50; node2 memory 50 -> 25
    Case(
        "requested resources exceed node capacity",
        table(CM, [[4000, 10000], [4000, 10000]], requested=[[3000, 0], [3000, 5000]]),
        pod(CM, [3000, 0]),
        [50, 25],
    ),
    Case(
        "zero node resources, pods scheduled with resources",
        table(CM, [[0, 0], [0, 0]], requested=[[3000, 0], [3000, 5000]]),
        pod(CM, [0, 0]),
        [0, 0],
    ),
    # node1: (25 * 1 + 50 * 2) / 3 = 41; node2: (50 + 100) / 3 = 50
    Case(
        "nothing scheduled, resources requested with different weight on CPU and memory",
        table(CM, [[4000, 10000], [6000, 10000]]),
        pod(CM, [3000, 5000]),
        [41, 50],
        resources=[("memory", 2), ("cpu", 1)],
    ),
    # the extended resource is bypassed (resource_allocation.go calculateResourceAllocatableRequest:
    # a scalar resource the pod does not request -> (0, 0)): (50 + 50) / 2 = 50 on both
    Case(
        "bypass extended resource if the pod does not request",
        table(CME, [[6000, 10000, 0], [6000, 10000, 4]]),
        pod(CME, [3000, 5000, 0]),
        [50, 50],
        resources=[("cpu", 1), ("memory", 1), (EXT, 1)],
    ),
    # node1 extended (4 - 2) * 100 / 4 = 50 -> 50; node2 (10 - 2) * 100 / 10 = 80 -> (50 + 50 + 80) / 3 = 60
    Case(
        "honor extended resource if the pod requests",
        table(CME, [[6000, 10000, 4], [6000, 10000, 10]]),
        pod(CME, [3000, 5000, 2]),
        [50, 60],
        resources=[("cpu", 1), ("memory", 1), (EXT, 1)],
    ),
    # the extended resource is left out of both sums (weight 2 included): cpu 50, memory
    # (10000 - 4000) / 100 = 60 -> 55 on both (keeping its weight would give node1 27, node2 77)
    Case(
        "if the node doesn't have a resource",
        table(CME, [[6000, 10000, 0], [6000, 10000, 4]]),
        pod(CME, [3000, 4000, 0]),
        [55, 55],
        resources=[(EXT, 2), ("cpu", 1), ("memory", 1)],
    ),
    # not upstream: memory above 2**53 / 100 takes the core's int64 path; (999999999999999 - 1e13)
    # * 100 // 999999999999999 = 98 (float64 would give 99); cpu 100 -> 99
    Case(
        "huge memory (int64 path)",
        table(CM, [[1000, 999_999_999_999_999]], requested=[[0, 10**13]]),
        pod(CM, [0, 0]),
        [99],
    ),
]


@pytest.mark.parametrize(("case", "impl"), params(LEAST))
def test_least_allocated_examples(case: Case, impl: str):
    args = resources_args("LeastAllocated", case.resources)
    got = (
        least_allocated(case.pod, case.nodes, args).tolist()
        if impl == "core"
        else ref.least_allocated(case.pod, case.nodes, args)
    )
    assert got == case.expected


# --------------------------------------------------------------------------------------------
# MostAllocated: most_allocated_test.go TestMostAllocatedScoringStrategy

MOST = [
    Case(
        "nothing scheduled, nothing requested",
        table(CM, [[4000, 10000], [4000, 10000]]),
        pod(CM, [0, 0]),
        [0, 0],
    ),
    # node1: cpu 3000 * 100 / 4000 = 75, memory 50 -> 62; node2: 50, 50 -> 50
    Case(
        "nothing scheduled, resources requested, differently sized nodes",
        table(CM, [[4000, 10000], [6000, 10000]]),
        pod(CM, [3000, 5000]),
        [62, 50],
    ),
    # node1: 6000 * 100 / 10000 = 60, 0 -> 30; node2: 60, 5000 * 100 / 20000 = 25 -> 42
    Case(
        "no resources requested, pods scheduled with resources",
        table(CM, [[10000, 20000], [10000, 20000]], requested=[[6000, 0], [6000, 5000]]),
        pod(CM, [0, 0]),
        [30, 42],
    ),
    Case(
        "resources requested, pods scheduled with resources",
        table(CM, [[10000, 20000], [10000, 20000]], requested=[[3000, 0], [3000, 5000]]),
        pod(CM, [3000, 5000]),
        [42, 55],
    ),
    # node1: 5000 * 100 / 5000 = 100, 9000 * 100 / 10000 = 90 -> 95; node2: 50, 100 -> 75
    Case(
        "resources requested equal node capacity",
        table(CM, [[5000, 10000], [10000, 9000]]),
        pod(CM, [5000, 9000]),
        [95, 75],
    ),
    # node1: (75 + 50 * 2) / 3 = 58; node2: 50
    Case(
        "nothing scheduled, resources requested, differently sized nodes, weights",
        table(CM, [[4000, 10000], [6000, 10000]]),
        pod(CM, [3000, 5000]),
        [58, 50],
        resources=[("memory", 2), ("cpu", 1)],
    ),
    # 250m / 1000Mi nodes; node1 runs two pods without requests (non-zero 100m / 200Mi each), the
    # pod has one container without requests: node1 cpu 300 > 250 -> 100, memory 600Mi -> 60 -> 80;
    # node2: 100 / 250 = 40, 200 / 1000 = 20 -> 30
    Case(
        "no resources requested, pods scheduled, nonzero request for resource",
        table(
            CM,
            [[250, 1000 * Mi], [250, 1000 * Mi]],
            requested=[[0, 0], [0, 0]],
            nonzero=[[200, 400 * Mi], [0, 0]],
        ),
        pod(CM, [0, 0], nonzero=[100, 200 * Mi]),
        [80, 30],
    ),
    Case(
        "bypass extended resource if the pod does not request",
        table(CME, [[6000, 10000, 0], [6000, 10000, 4]]),
        pod(CME, [3000, 5000, 0]),
        [50, 50],
        resources=[("cpu", 1), ("memory", 1), (EXT, 1)],
    ),
    # extended: node1 2 * 100 / 4 = 50 -> 50; node2 2 * 100 / 10 = 20 -> (50 + 50 + 20) / 3 = 40
    Case(
        "honor extended resource if the pod request",
        table(CME, [[6000, 10000, 4], [6000, 10000, 10]]),
        pod(CME, [3000, 5000, 2]),
        [50, 40],
        resources=[("cpu", 1), ("memory", 1), (EXT, 1)],
    ),
    # cpu 3000 * 100 / 6000 = 50, memory 40 -> 45 on both
    Case(
        "if the node doesn't have a resource",
        table(CME, [[6000, 10000, 0], [6000, 10000, 4]]),
        pod(CME, [3000, 4000, 0]),
        [45, 45],
        resources=[(EXT, 2), ("cpu", 1), ("memory", 1)],
    ),
    # not upstream: the int64 path at 2**53: (2**53 - 1) * 100 // 2**53 = 99; cpu 0 -> 49
    Case(
        "2**53 memory (int64 path)",
        table(CM, [[1000, 2**53]], requested=[[0, 2**53 - 1]]),
        pod(CM, [0, 0]),
        [49],
    ),
]


@pytest.mark.parametrize(("case", "impl"), params(MOST))
def test_most_allocated_examples(case: Case, impl: str):
    args = resources_args("MostAllocated", case.resources)
    got = (
        most_allocated(case.pod, case.nodes, args).tolist()
        if impl == "core"
        else ref.most_allocated(case.pod, case.nodes, args)
    )
    assert got == case.expected


# --------------------------------------------------------------------------------------------
# BalancedAllocation, formula v1.35: balanced_allocation_test.go TestNodeResourcesBalancedAllocation
# as of v1.35 (the balance with the pod: int64((1 - std) * 100))

CMG = ("cpu", "memory", GPU)
BALANCED_V135 = [
    # a best-effort pod: PreScore returns Skip, the plugin takes no part: None (with the
    # non-zero defaults it would score fractions 100/4000 and 200Mi/10000 instead)
    Case(
        "nothing scheduled, nothing requested, skip in PreScore",
        table(CM, [[4000, 10000], [4000, 10000]]),
        pod(CM, [0, 0], nonzero=[100, 200 * Mi]),
        None,
    ),
    # node1: 3000 / 4000 = 0.75, 5000 / 10000 = 0.5, std (0.75 - 0.5) / 2 = 0.125 -> 87
    # node2: 0.5, 0.5 -> std 0 -> 100
    Case(
        "nothing scheduled, resources requested, differently sized nodes",
        table(CM, [[4000, 10000], [6000, 10000]]),
        pod(CM, [3000, 5000]),
        [87, 100],
    ),
    # node1: 6000 / 10000 = 0.6, 5000 / 20000 = 0.25 -> std 0.175 -> 82; node2: 0.6, 0.5 -> 0.05 -> 95
    Case(
        "resources requested, pods scheduled with resources",
        table(CM, [[10000, 20000], [10000, 20000]], requested=[[3000, 0], [3000, 5000]]),
        pod(CM, [3000, 5000]),
        [82, 95],
    ),
    # node2: 0.6, 10000 / 50000 = 0.2 -> std 0.2 -> 80
    Case(
        "resources requested, pods scheduled with resources, differently sized nodes",
        table(CM, [[10000, 20000], [10000, 50000]], requested=[[3000, 0], [3000, 5000]]),
        pod(CM, [3000, 5000]),
        [82, 80],
    ),
    # node1: 6000 / 6000 = 1, 0 -> std 0.5 -> 50; node2: 1, 0.5 -> 0.25 -> 75
    Case(
        "requested resources at node capacity",
        table(CM, [[6000, 10000], [6000, 10000]], requested=[[3000, 0], [3000, 5000]]),
        pod(CM, [3000, 0]),
        [50, 75],
    ),
    # the pod sets memory "0" and one GPU, no CPU request (plain 0; non-zero 100m).
    # node1: 3000 / 3500 = 0.857, 5000 / 40000 = 0.125, (3 + 1) / 8 = 0.5 -> std 0.300 -> 70
    # node2: 0.857, 0.125, 1 / 8 = 0.125 -> std 0.345 -> 65 (plain requests: useRequested; with the
    # non-zero 100m, 3100 / 3500, it would be 68, 64)
    Case(
        "include scalar resource on a node for balanced resource allocation",
        table(CMG, [[3500, 40000, 8], [3500, 40000, 8]], requested=[[3000, 5000, 3], [3000, 5000, 0]]),
        pod(CMG, [0, 0, 1], nonzero=[100, 0, 1]),
        [70, 65],
        resources=[("cpu", 1), ("memory", 1), (GPU, 1)],
    ),
    # the pod does not request the GPU: skipped; 0.857, 0.125 -> std 0.366 -> 63 on both
    # (keeping the GPU fraction 0 / 8 on node1 would give three fractions, std 0.35 -> 62)
    Case(
        "node without the scalar resource should skip the scalar resource",
        table(CMG, [[3500, 40000, 8], [3500, 40000, 0]]),
        pod(CMG, [3000, 5000, 0]),
        [63, 63],
        resources=[("cpu", 1), ("memory", 1), (GPU, 1)],
    ),
]


# BalancedAllocation, formula v1.36 (the default): kubernetes/kubernetes#135573, computed by hand
# from that formula: balance(x) as above, score = 50 + (50 + balance(with) - balance(without)) / 2
# in int64 (the numerator is 0..100: truncation is floor); "with" holds the node's requests and the
# pod's, "without" the node's own.


def same_inputs_v136(v135_id: str, expected: list | None) -> Case:
    """The v1.35 case ``v135_id``'s inputs, with the score v1.36's formula gives them."""
    case = next(c for c in BALANCED_V135 if c.id == v135_id)
    return dataclasses.replace(case, id=f"v1.36 {case.id}", expected=expected)


BALANCED_V136 = [
    same_inputs_v136("nothing scheduled, nothing requested, skip in PreScore", None),
    # node1: with 0.75, 0.5 -> 87; without 0, 0 -> 100; 50 + (50 + 87 - 100) / 2 = 50 + 18 = 68
    # node2: with 0.5, 0.5 -> 100; without 100; 50 + 50 / 2 = 75 (the balance kept: 75)
    same_inputs_v136("nothing scheduled, resources requested, differently sized nodes", [68, 75]),
    # node1: with 0.6, 0.25 -> std 0.175 -> 82; without 0.3, 0 -> 0.15 -> 85; 50 + 47 / 2 = 73
    # node2: with 0.6, 0.5 -> 95; without 0.3, 0.25 -> std 0.025 -> 97; 50 + 48 / 2 = 74
    same_inputs_v136("resources requested, pods scheduled with resources", [73, 74]),
    # the three landmarks of the formula, a pod of 1000 CPU on 1000 / 1000 nodes: node1 empty
    # (balanced, 100) gets CPU only (1, 0 -> 50): 50 + (50 + 50 - 100) / 2 = 50; node2 holds 1000
    # memory (0, 1 -> 50), the pod completes it (1, 1 -> 100): 50 + 100 / 2 = 100; node3 holds 1000
    # CPU (1, 0 -> 50), the pod's CPU is capped at the full fraction (still 1, 0 -> 50): 75
    Case(
        "v1.36 balanced to imbalanced 50, imbalanced to balanced 100, unchanged 75",
        table(CM, [[1000, 1000]] * 3, requested=[[0, 0], [0, 1000], [1000, 0]]),
        pod(CM, [1000, 0]),
        [50, 100, 75],
    ),
    # one pod (2000 memory of 4000) restoring one node's balance and breaking another's:
    # node1 holds 2000 CPU: without 0.5, 0 -> 75, with 0.5, 0.5 -> 100: 50 + 75 / 2 = 87 (v1.35: 100);
    # node2 holds 2000 and 2000: without 100, with 0.5, 1 -> 75: 50 + 25 / 2 = 62 (v1.35: 75)
    Case(
        "v1.36 a pod restoring one node's balance and breaking another's",
        table(CM, [[4000, 4000], [4000, 4000]], requested=[[2000, 0], [2000, 2000]]),
        pod(CM, [0, 2000]),
        [87, 62],
    ),
    # past allocatable the fraction is capped at 1 (with and without alike): 3000 + 4500 of 6000 CPU
    # -> 1, 5000 / 10000 -> 0.5: 75; without 0.5, 0.5 -> 100; 50 + 25 / 2 = 62
    Case(
        "v1.36 requested past allocatable counts as full",
        table(CM, [[6000, 10000]], requested=[[3000, 5000]]),
        pod(CM, [4500, 0]),
        [62],
    ),
    # three resources, plain requests (the pod's CPU 0, not 100m). node1: with 3000 / 3500, 0.125,
    # 4 / 8 -> std 0.300 -> 70; without 3000 / 3500, 0.125, 3 / 8 -> std 0.304 -> 69; 50 + 51 / 2 = 75
    # node2: with 0.857, 0.125, 1 / 8 -> std 0.345 -> 65; without 0.857, 0.125, 0 -> 0.378 -> 62;
    # 50 + 53 / 2 = 76
    same_inputs_v136("include scalar resource on a node for balanced resource allocation", [75, 76]),
    # an unrequested GPU is skipped in both balances (allocatable 8 or 0 alike): with 0.857, 0.125
    # -> std 0.366 -> 63; without 0, 0 -> 100; 50 + 13 / 2 = 56 on both
    same_inputs_v136("node without the scalar resource should skip the scalar resource", [56, 56]),
]


def check_balanced(case: Case, impl: str, formula: str | None) -> None:
    args = resources_args("BalancedAllocation", case.resources, formula)
    if impl == "core":
        core = balanced_allocation(case.pod, case.nodes, args)
        got = None if core is None else core.tolist()
    else:
        got = ref.balanced_allocation(case.pod, case.nodes, args)
    assert got == case.expected


@pytest.mark.parametrize(("case", "impl"), params(BALANCED_V135))
def test_balanced_allocation_v135_examples(case: Case, impl: str):
    check_balanced(case, impl, "v1.35")


@pytest.mark.parametrize(("case", "impl"), params(BALANCED_V136))
def test_balanced_allocation_v136_examples(case: Case, impl: str):
    check_balanced(case, impl, None)  # the default


# --------------------------------------------------------------------------------------------
# Koordinator estimator: default_estimator_test.go TestDefaultEstimatorEstimatePod

ESTIMATES = [
    # a container without requests or limits: DefaultMilliCPURequest 250, DefaultMemoryRequest 200Mi
    ("estimate empty pod", [0, 0], [0, 0], {}, [250, 200 * Mi]),
    # round(4000 * 85 / 100) = 3400; round(8Gi * 70 / 100) = round(6012954214.4) = 6012954214
    ("estimate guaranteed pod", [4000, 8 * Gi], [4000, 8 * Gi], {}, [3400, 6012954214]),
    # limit 8 > request 4: round(8000 * 0.85) = 6800
    ("estimate burstable pod", [4000, 8 * Gi], [8000, 8 * Gi], {}, [6800, 6012954214]),
    # round(4000 * 110 / 100) = 4400 > limit 4000 -> 4000
    (
        "estimate guaranteed pod and zoomed cpu factors",
        [4000, 8 * Gi],
        [4000, 8 * Gi],
        {"cpu": 110},
        [4000, 6012954214],
    ),
    (
        "estimate guaranteed pod and zoomed memory factors",
        [4000, 8 * Gi],
        [4000, 8 * Gi],
        {"memory": 110},
        [3400, 8 * Gi],
    ),
    # no limits: round(4000 * 0.8) = 3200, round(8Gi * 0.8) = round(6871947673.6) = 6871947674
    ("estimate pod only has request", [4000, 8 * Gi], [0, 0], {"cpu": 80, "memory": 80}, [3200, 6871947674]),
]


@pytest.mark.parametrize("impl", ["reference", "core"])
@pytest.mark.parametrize(
    ("requests", "limits", "factors", "expected"), [pytest.param(*e[1:], id=e[0]) for e in ESTIMATES]
)
def test_koordinator_estimator_examples(requests, limits, factors, expected, impl):
    p = pod(CM, requests, limits=limits)
    merged = {"cpu": 85, "memory": 70, **factors}  # SetDefaults_LoadAwareSchedulingArgs fills the rest
    if impl == "core":
        got = estimate_pod(p, merged).tolist()
    else:
        est = ref.estimate_pod(p, merged)
        got = [est["cpu"], est["memory"]]
    assert got == expected


# --------------------------------------------------------------------------------------------
# Koordinator LoadAware score: load_aware_test.go TestScore (96 CPU / 512Gi, default args)

NODE96 = [[96_000, 512 * Gi]]
BIG_POD = pod(CM, [16_000, 32 * Gi], limits=[16_000, 32 * Gi])  # estimate 13600, 24051816858
# expected: per node (score, usable). The score is computed whatever the metric's age (None: no
# measurement to compute from); ``usable`` is False where Koordinator scores the node 0 because
# its NodeMetric is expired or missing (the project leaves such nodes to the fallback instead).
LOAD_SCORES = [
    # cpu (96000 - 13600) * 100 / 96000 = 85 (85.8); memory (512Gi - 24051816858) * 100 / 512Gi = 95
    # (95.6) -> (85 + 95) / 2 = 90
    Case("score empty node", table(CM, NODE96, usage=[[0, 0]], age=[0.0]), BIG_POD, [(90, True)]),
    # cpu 32000 + 13600 = 45600 -> 52 (52.5); memory 10Gi + 24051816858 -> 93 (93.7) -> 72
    Case("score load node", table(CM, NODE96, usage=[[32_000, 10 * Gi]], age=[0.0]), BIG_POD, [(72, True)]),
    # plus the just-assigned pod's estimate: cpu 59200 -> 38 (38.3); memory 58841051956 -> 89 (89.3) -> 63
    Case(
        "score load node with just assigned pod",
        table(CM, NODE96, usage=[[32_000, 10 * Gi]], pending=[[13_600, 24051816858]], age=[0.0]),
        BIG_POD,
        [(63, True)],
    ),
    # estimate 250m / 200Mi: cpu (96000 - 250) * 100 / 96000 = 99; memory 99 -> 99
    Case("score empty pod", table(CM, NODE96, usage=[[0, 0]], age=[0.0]), pod(CM, [0, 0]), [(99, True)]),
    # Koordinator scores a node with an expired NodeMetric 0 (isNodeMetricExpired:
    # time.Since(updateTime) >= nodeMetricExpirationSeconds, the limit itself included)
    Case(
        "score node with expired nodeMetric (181s)",
        table(CM, NODE96, usage=[[0, 0]], age=[181.0]),
        pod(CM, [0, 0]),
        [(99, False)],
    ),
    Case(
        "score node with expired nodeMetric (180s, the limit)",
        table(CM, NODE96, usage=[[0, 0]], age=[180.0]),
        pod(CM, [0, 0]),
        [(99, False)],
    ),
    Case(
        "score node with a fresh nodeMetric (179.999s)",
        table(CM, NODE96, usage=[[0, 0]], age=[179.999]),
        pod(CM, [0, 0]),
        [(99, True)],
    ),
    Case("score node missing NodeMetrics", table(CM, NODE96), BIG_POD, [(None, False)]),
    # not upstream: dominantResourceWeight 1, estimates 0 (factor 0, requests > 0). cpu (1000 - 900)
    # * 100 / 1000 = 10, memory 100; (10 + 100 + 1 * min(10, 100)) / (1 + 1 + 1) = 40 (55 without)
    Case(
        "dominant resource weight (hand-computed)",
        table(CM, [[1000, 1000]], usage=[[900, 0]], age=[0.0]),
        pod(CM, [1, 1]),
        [(40, True)],
        policy={
            "strategies": [
                {
                    "name": "LoadAware",
                    "args": {"dominantResourceWeight": 1, "estimatedScalingFactors": {"cpu": 0, "memory": 0}},
                }
            ]
        },
    ),
    # not upstream: a resource weight of 0 still takes part in the dominant minimum; memory above
    # 2**53 / 100 (int64 path): (999999999999999 - 1e13) * 100 // 999999999999999 = 98; cpu 100:
    # (0 * 100 + 1 * 98 + 2 * 98) / (0 + 1 + 2) = 98
    Case(
        "zero weight and huge memory (hand-computed)",
        table(CM, [[1000, 999_999_999_999_999]], usage=[[0, 10**13]], age=[0.0]),
        pod(CM, [1, 1]),
        [(98, True)],
        policy={
            "strategies": [
                {
                    "name": "LoadAware",
                    "args": {
                        "resourceWeights": {"cpu": 0, "memory": 1},
                        "dominantResourceWeight": 2,
                        "estimatedScalingFactors": {"cpu": 0, "memory": 0},
                    },
                }
            ]
        },
    ),
]


@pytest.mark.parametrize(("case", "impl"), params(LOAD_SCORES))
def test_koordinator_load_aware_score_examples(case: Case, impl: str):
    policy = parse_policy(case.policy or {"strategies": [{"name": "LoadAware"}]})
    args = policy.strategies[0].args
    n = len(case.nodes)
    if impl == "core":
        est = estimate_pod(case.pod, args.estimatedScalingFactors)
        raw = load_aware(case.pod, case.nodes, args, estimate=est)
        assert raw.dtype == np.int64 and raw.shape == (n,)
        usable = load_usable(case.nodes, policy).tolist()
        scores = [
            int(x) if want is not None else None for x, (want, _) in zip(raw, case.expected, strict=True)
        ]
    else:
        est = ref.estimate_pod(case.pod, args.estimatedScalingFactors)
        usable = [ref.load_usable(case.nodes, i, policy) for i in range(n)]
        scores = ref.load_aware(case.pod, case.nodes, args, estimate=est)
    assert list(zip(scores, usable, strict=True)) == case.expected


# --------------------------------------------------------------------------------------------
# Filters: Koordinator TestFilterUsage / TestFilterExpiredNodeMetric, NodeResourcesFit fitsRequest

KOORD_THRESHOLDS = {"cpu": 65, "memory": 95}
EMPTY_POD = pod(CM, [0, 0])  # &corev1.Pod{}: estimated at 250m / 200Mi
CMP = ("cpu", "memory", "pods")
NO_THRESHOLDS = {"filters": {"usageThresholds": {}}}
FILTERS = [
    # cpu (60000 + 250) / 96000 = 62.8% -> 63 <= 65; memory (256Gi + 200Mi) / 512Gi -> 50 <= 95
    Case(
        "filter normal usage",
        table(CM, NODE96, usage=[[60_000, 256 * Gi]], age=[0.0]),
        EMPTY_POD,
        [(OK, None)],
        policy={"filters": {"usageThresholds": KOORD_THRESHOLDS}},
    ),
    Case(
        "filter node missing NodeMetrics",
        table(CM, NODE96),
        EMPTY_POD,
        [(OK, None)],
        policy={"filters": {"usageThresholds": KOORD_THRESHOLDS}},
    ),
    # (70000 + 250) / 96000 = 73.2% -> 73 > 65
    Case(
        "filter exceed cpu usage",
        table(CM, NODE96, usage=[[70_000, 256 * Gi]], age=[0.0]),
        EMPTY_POD,
        [(USAGE_THRESHOLD, "cpu")],
        policy={"filters": {"usageThresholds": KOORD_THRESHOLDS}},
    ),
    # (500Gi + 200Mi) / 512Gi = 97.7% -> 98 > 95
    Case(
        "filter exceed memory usage",
        table(CM, NODE96, usage=[[30_000, 500 * Gi]], age=[0.0]),
        EMPTY_POD,
        [(USAGE_THRESHOLD, "memory")],
        policy={"filters": {"usageThresholds": KOORD_THRESHOLDS}},
    ),
    # node annotation memory=60: (316Gi + 200Mi) / 512Gi = 61.8% -> 62 > 60
    Case(
        "filter exceed memory usage by custom usage thresholds",
        table(CM, NODE96, usage=[[30_000, 316 * Gi]], age=[0.0], override=[[math.nan, 60]]),
        EMPTY_POD,
        [(USAGE_THRESHOLD, "memory")],
        policy={"filters": {"usageThresholds": KOORD_THRESHOLDS}},
    ),
    # usageThresholds {memory: 0}: 0 disables the check (cpu is not checked: the map replaces defaults)
    Case(
        "disable filter exceed memory usage",
        table(CM, NODE96, usage=[[30_000, 500 * Gi]], age=[0.0]),
        EMPTY_POD,
        [(OK, None)],
        policy={"filters": {"usageThresholds": {"memory": 0}}},
    ),
    # not upstream: a per-node override of 0 disables the resource on that node only (the
    # project's per-cell override); node 2 keeps the policy's 65 and fails at 73%
    Case(
        "per-node threshold override of 0",
        table(
            CM, NODE96 * 2, usage=[[70_000, 0]] * 2, age=[0.0, 0.0], override=[[0, math.nan], [math.nan] * 2]
        ),
        EMPTY_POD,
        [(OK, None), (USAGE_THRESHOLD, "cpu")],
        policy={"filters": {"usageThresholds": KOORD_THRESHOLDS}},
    ),
    # FilterExpiredNodeMetrics with EnableScheduleWhenNodeMetricsExpired false = fallback reject
    Case(
        "filter healthy nodeMetrics",
        table(CM, NODE96, usage=[[0, 0]], age=[0.0]),
        EMPTY_POD,
        [(OK, None)],
        policy={"load": {"fallback": "reject"}},
    ),
    Case(
        "filter unhealthy nodeMetric with nil updateTime",
        table(CM, NODE96, usage=[[0, 0]]),
        EMPTY_POD,
        [(NO_FRESH_LOAD, None)],
        policy={"load": {"fallback": "reject"}},
    ),
    Case(
        "filter unhealthy nodeMetric with expired updateTime (-180s)",
        table(CM, NODE96, usage=[[0, 0]], age=[180.0]),
        EMPTY_POD,
        [(NO_FRESH_LOAD, None)],
        policy={"load": {"fallback": "reject"}},
    ),
    # fit.go fitsRequest (hand-computed): one more pod than AllowedPodNumber -> "Too many pods"
    Case(
        "fit: too many pods",
        table(CMP, [[1000, 1000, 110]], requested=[[0, 0, 110]]),
        pod(CMP, [1, 1, 1]),
        [(INSUFFICIENT, "pods")],
        policy=NO_THRESHOLDS,
    ),
    # 100 > 1000 - 950; and a request above allocatable itself (unresolvable)
    Case(
        "fit: insufficient cpu",
        table(CMP, [[1000, 1000, 110], [1000, 1000, 110]], requested=[[950, 0, 0], [0, 0, 0]]),
        pod(CMP, [100, 1, 1]),
        [(INSUFFICIENT, "cpu"), (OK, None)],
        policy=NO_THRESHOLDS,
    ),
    # a request of 0 is not checked even on an over-committed node (podRequest.MilliCPU > 0 && ...)
    Case(
        "fit: zero request on an over-committed node",
        table(CMP, [[1000, 1000, 110]], requested=[[5000, 5000, 1]]),
        pod(CMP, [0, 0, 1]),
        [(OK, None)],
        policy=NO_THRESHOLDS,
    ),
    Case(
        "fit: extended resource the node lacks",
        table(("cpu", "memory", "pods", GPU), [[1000, 1000, 110, 0]]),
        pod(("cpu", "memory", "pods", GPU), [1, 1, 1, 1]),
        [(INSUFFICIENT, GPU)],
        policy=NO_THRESHOLDS,
    ),
    # the project's own rule: no allocatable memory at all fails the node first
    Case(
        "no allocatable memory",
        table(CMP, [[1000, 0, 110]]),
        pod(CMP, [0, 0, 1]),
        [(NO_ALLOCATABLE, "memory")],
        policy=NO_THRESHOLDS,
    ),
]


@pytest.mark.parametrize(("case", "impl"), params(FILTERS))
def test_filter_examples(case: Case, impl: str):
    policy = parse_policy(case.policy or {})
    factors = ref.load_aware_args(policy)[1]
    n = len(case.nodes)
    if impl == "core":
        v = filter_nodes(
            case.pod,
            case.nodes,
            policy,
            estimate=estimate_pod(case.pod, factors),
            load_ok=load_usable(case.nodes, policy),
        )
        got = [
            (int(v.code[i]), case.nodes.resources[int(v.resource[i])] if v.resource[i] >= 0 else None)
            for i in range(n)
        ]
    else:
        est = ref.estimate_pod(case.pod, factors)
        verdicts = [
            ref.verdict(case.pod, case.nodes, i, policy, est, ref.load_usable(case.nodes, i, policy))
            for i in range(n)
        ]
        got = [(v.code, v.resource) for v in verdicts]
    assert got == case.expected


def test_fit_unresolvable_examples():
    """fit.go: Unresolvable when the request exceeds the node's allocatable itself."""
    nodes = table(CMP, [[1000, 1000, 110], [1000, 1000, 110]], requested=[[950, 0, 0], [0, 0, 0]])
    v = filter_nodes(
        pod(CMP, [1100, 1, 1]),
        nodes,
        parse_policy({"filters": {"usageThresholds": {}}}),
        estimate=np.zeros(3),
        load_ok=np.ones(2, bool),
    )
    assert v.code.tolist() == [INSUFFICIENT, INSUFFICIENT]
    assert v.unresolvable.tolist() == [True, True]
    v = filter_nodes(
        pod(CMP, [100, 1, 1]),
        nodes,
        parse_policy({"filters": {"usageThresholds": {}}}),
        estimate=np.zeros(3),
        load_ok=np.ones(2, bool),
    )
    assert v.code.tolist() == [INSUFFICIENT, OK] and v.unresolvable.tolist() == [False, False]


# --------------------------------------------------------------------------------------------
# The combination (scoring/evaluate.py docstring), hand-computed


# cpu 1000m, memory 1000Mi, 500m / 500Mi requested, measured 15m / 30Mi; the pod requests 100m /
# 100Mi (no limits). Estimate: round(100 * 0.85) = 85, round(100Mi * 0.70) = 73400320 (70Mi).
# LoadAware: cpu 15 + 85 = 100 -> (1000 - 100) * 100 / 1000 = 90; memory 30Mi + 70Mi -> 90 -> 90.
# LeastAllocated: (1000 - 600) * 100 / 1000 = 40 twice -> 40. BalancedAllocation (v1.36, the
# default): with the pod 0.6, 0.6 -> 100, without 0.5, 0.5 -> 100, the balance kept: 50 + 50 / 2 = 75
# (v1.35: 100). Default policy (LoadAware 2, LeastAllocated 1, BalancedAllocation 1):
# (180 + 40 + 75) / 4 = 73.75 -> floor(7.375 + 0.5) = 7.
# Stale: "requests" -> (40 + 75) / 2 = 57.5 -> 6; "zero", BalancedAllocation v1.35 (a tie at .5):
# (0 + 40 + 100) / 4 = 35 -> floor(3.5 + 0.5) = 4; "reject" -> filtered, 0.
def combo_nodes(age: float, usage=(15, 30 * Mi, 0)) -> Any:
    return table(
        CMP, [[1000, 1000 * Mi, 110]], requested=[[500, 500 * Mi, 0]], usage=[list(usage)], age=[age]
    )


COMBO_POD = pod(CMP, [100, 100 * Mi, 1])
DEFAULT_WITH_V135 = [
    {"name": "LoadAware", "weight": 2},
    {"name": "LeastAllocated", "weight": 1},
    {"name": "BalancedAllocation", "weight": 1, "args": {"formula": "v1.35"}},
]
COMBINATIONS = [
    ("fresh load, default policy", combo_nodes(10.0), {}, [73.75], [7]),
    ("stale load, fallback requests", combo_nodes(500.0), {"load": {"fallback": "requests"}}, [57.5], [6]),
    ("missing load, fallback requests", combo_nodes(10.0, usage=(math.nan,) * 3), {}, [57.5], [6]),
    (
        "stale load, fallback zero (35 rounds half up)",
        combo_nodes(500.0),
        {"load": {"fallback": "zero"}, "strategies": DEFAULT_WITH_V135},
        [35.0],
        [4],
    ),
    ("stale load, fallback reject", combo_nodes(500.0), {"load": {"fallback": "reject"}}, [0.0], [0]),
    # LoadAware only, stale: the implicit LeastAllocated cpu=1, memory=1 -> 40 -> 4
    (
        "LoadAware only, stale, implicit LeastAllocated",
        combo_nodes(500.0),
        {"strategies": [{"name": "LoadAware"}]},
        [40.0],
        [4],
    ),
    # age 180 = staleAfterSeconds: stale (Koordinator isNodeMetricExpired)
    ("load exactly at the staleness limit, fallback requests", combo_nodes(180.0), {}, [57.5], [6]),
    (
        "LoadAware only, stale, fallback zero",
        combo_nodes(500.0),
        {"strategies": [{"name": "LoadAware"}], "load": {"fallback": "zero"}},
        [0.0],
        [0],
    ),
    # a strategy of weight 0 takes no part: LoadAware 0 -> no fallback either, (40 + 75) / 2 = 57.5
    (
        "LoadAware of weight 0, stale",
        combo_nodes(500.0),
        {
            "strategies": [
                {"name": "LoadAware", "weight": 0},
                {"name": "LeastAllocated"},
                {"name": "BalancedAllocation"},
            ]
        },
        [57.5],
        [6],
    ),
    # (180 + 75) / 3 = 85 -> floor(8.5 + 0.5) = 9
    (
        "LeastAllocated of weight 0, fresh",
        combo_nodes(10.0),
        {
            "strategies": [
                {"name": "LoadAware", "weight": 2},
                {"name": "LeastAllocated", "weight": 0},
                {"name": "BalancedAllocation", "weight": 1},
            ]
        },
        [(180 + 75) / 3],
        [9],
    ),
    # RequestedToCapacityRatio bin packing: cpu 600 / 1000 -> 60, memory 60 -> 60; with LoadAware 1:
    # (90 + 60) / 2 = 75 -> floor(7.5 + 0.5) = 8; stale: 60 alone -> 6
    (
        "RequestedToCapacityRatio beside LoadAware, fresh",
        combo_nodes(10.0),
        {
            "strategies": [
                {"name": "LoadAware"},
                {
                    "name": "RequestedToCapacityRatio",
                    "args": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]},
                },
            ]
        },
        [75.0],
        [8],
    ),
    (
        "RequestedToCapacityRatio beside LoadAware, stale",
        combo_nodes(500.0),
        {
            "strategies": [
                {"name": "LoadAware"},
                {
                    "name": "RequestedToCapacityRatio",
                    "args": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]},
                },
            ]
        },
        [60.0],
        [6],
    ),
    # LeastAllocated on cpu only: 500 + 100 of 1000 -> 40, 400 + 100 -> 50, 100 + 100 -> 80, and a
    # node without memory (infeasible). Spread over the feasible: 0, (50 - 40) * 100 / 40 = 25 -> 3, 100.
    (
        "spread",
        table(
            CMP,
            [[1000, Gi, 110]] * 3 + [[1000, 0, 110]],
            requested=[[500, 0, 0], [400, 0, 0], [100, 0, 0], [0, 0, 0]],
        ),
        {
            "score": {"spread": True},
            "filters": {"usageThresholds": {}},
            "strategies": [{"name": "LeastAllocated", "args": {"resources": [{"name": "cpu", "weight": 1}]}}],
        },
        [0.0, 25.0, 100.0, 0.0],
        [0, 3, 10, 0],
    ),
]


@pytest.mark.parametrize(
    ("nodes", "doc", "combined", "scores"), [pytest.param(*c[1:], id=c[0]) for c in COMBINATIONS]
)
@pytest.mark.parametrize("impl", ["reference", "core"])
def test_combination_examples(nodes, doc, combined, scores, impl):
    policy = parse_policy(doc)
    if impl == "core":
        ev = evaluate(pod=COMBO_POD, nodes=nodes, policy=policy)
        assert ev.combined.tolist() == combined
        assert ev.scores.tolist() == scores
    else:
        ev = ref.evaluate(COMBO_POD, nodes, policy)
        assert [float(c) for c in ev.combined] == combined
        assert ev.scores == scores


@pytest.mark.parametrize(
    ("combined", "score"),
    [
        (0.0, 0),
        (4.999999, 0),
        (5.0, 1),
        (14.99, 1),
        (15.0, 2),
        (44.5, 4),
        (45.0, 5),
        (94.9, 9),
        (95.0, 10),
        (100.0, 10),
        (150.0, 10),
        (-3.0, 0),
        (math.nan, 0),
        (math.inf, 10),
        (-math.inf, 0),
    ],
)
def test_extender_score_mapping(combined, score):
    """floor(x / 10 + 0.5) clipped to 0..10 (MaxExtenderPriority); NaN -> 0."""
    got = to_extender_scores(np.array([combined]))
    assert got.dtype == np.int64 and got.tolist() == [score]
    if math.isfinite(combined):
        assert ref.to_extender_score(combined) == score


# --------------------------------------------------------------------------------------------
# Go arithmetic: the reference's helpers, and the core where the difference shows


@pytest.mark.parametrize(
    ("a", "b", "quotient"),
    [(100, 3, 33), (-100, 3, -33), (100, -3, -33), (-100, -3, 33), (0, 7, 0), (99, 100, 0)],
)
def test_reference_go_division_truncates(a, b, quotient):
    """Go's int64 ``/`` truncates toward zero (Python's ``//`` floors: -100 // 3 == -34). Every
    numerator the core divides is >= 0 on valid input (scores of resources with requested >
    allocatable are 0 before dividing), so its floor() equals Go's truncation there."""
    assert ref.go_div(a, b) == quotient


@pytest.mark.parametrize(
    ("x", "rounded"),
    [
        (0.5, 1.0),
        (1.5, 2.0),
        (2.5, 3.0),
        (-2.5, -3.0),
        (-0.5, -1.0),
        (0.49999999999999994, 0.0),
        (2.0**52 + 1, 2.0**52 + 1),
        (-(2.0**52) - 1, -(2.0**52) - 1),
        (1e300, 1e300),
    ],
)
def test_go_round_is_math_round(x, rounded):
    """Go's math.Round: halves away from zero (numpy's round is half to even: 2.5 -> 2), exact
    for every float64 (floor(|x| + 0.5) would round 0.49999999999999994 up and move odd
    integers above 2**52)."""
    assert ref.go_round(x) == rounded
    assert go_round(np.array([x])).tolist() == [rounded]
    assert go_round_scalar(x) == rounded


def test_core_estimate_rounds_halves_away_from_zero():
    """5m CPU at factor 50: 2.5 -> math.Round 3 (numpy.round would give 2)."""
    assert estimate_pod(pod(CM, [5, 5], limits=[0, 0]), {"cpu": 50, "memory": 50}).tolist() == [3.0, 3.0]
    assert ref.estimate_pod(pod(CM, [5, 5]), {"cpu": 50, "memory": 50}) == {"cpu": 3, "memory": 3}
