"""``parse_policy``: the defaults, the shipped file, and errors that name the faulty field."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scoring import Policy, PolicyError, parse_policy
from scoring.policy import (
    BalancedAllocationArgs,
    LoadAwareArgs,
    LoadVariationRiskBalancingArgs,
    LowRiskOverCommitmentArgs,
    RequestedToCapacityRatioArgs,
    ResourcesArgs,
    ResourceWeight,
    ShapePoint,
    TargetLoadPackingArgs,
    resource_name_problem,
)

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "extender-policy.yaml"


def shipped() -> dict:
    with SHIPPED.open() as f:
        return yaml.safe_load(f)


def test_empty_document_gives_the_documented_defaults():
    p = parse_policy({})
    assert isinstance(p, Policy)
    assert p.filters.resourceFit is True
    assert dict(p.filters.usageThresholds) == {"cpu": 80, "memory": 90}
    assert [(s.name, s.weight) for s in p.strategies] == [
        ("LoadAware", 2),
        ("LeastAllocated", 1),
        ("BalancedAllocation", 1),
    ]
    la, least, balanced = (s.args for s in p.strategies)
    # Koordinator's LoadAwareSchedulingArgs defaults (apis/config/v1/defaults.go)
    assert isinstance(la, LoadAwareArgs)
    assert dict(la.resourceWeights) == {"cpu": 1, "memory": 1}
    assert dict(la.estimatedScalingFactors) == {"cpu": 85, "memory": 70}
    assert la.dominantResourceWeight == 0
    # kube-scheduler's default scoring resources cpu=1, memory=1
    for args in (least, balanced):
        assert isinstance(args, ResourcesArgs)
        assert args.resources == (ResourceWeight("cpu", 1), ResourceWeight("memory", 1))
    # the formula of the kube-scheduler release config/deploy deploys (v1.36.4)
    assert isinstance(balanced, BalancedAllocationArgs) and balanced.formula == "v1.36"
    assert (p.load.staleAfterSeconds, p.load.fallback) == (180.0, "requests")
    assert p.score.spread is False
    assert p.estimator is la
    assert_integer_weights(p)
    assert p.load_resources == frozenset({"cpu", "memory"})


def assert_integer_weights(p: Policy) -> None:
    """Every weight, factor and threshold is a Python int (the combination is integer arithmetic)."""
    values = list(p.filters.usageThresholds.values())
    for s in p.strategies:
        values.append(s.weight)
        if isinstance(s.args, (ResourcesArgs, RequestedToCapacityRatioArgs)):
            values += [r.weight for r in s.args.resources]
        if isinstance(s.args, RequestedToCapacityRatioArgs):
            values += [x for pt in s.args.shape for x in (pt.utilization, pt.score)]
        if isinstance(s.args, LoadAwareArgs):
            values += [
                *s.args.resourceWeights.values(),
                *s.args.estimatedScalingFactors.values(),
                s.args.dominantResourceWeight,
            ]
    assert all(type(v) is int for v in values), values


@pytest.mark.parametrize(
    "doc", [None, {"filters": None, "load": None, "score": None}], ids=["null document", "null sections"]
)
def test_null_sections_mean_defaults(doc):
    assert parse_policy(doc) == parse_policy({})


def test_shipped_policy_file_parses_to_what_it_says():
    p = parse_policy(shipped())
    assert p.filters.resourceFit is True
    assert dict(p.filters.usageThresholds) == {"cpu": 80, "memory": 90}
    assert [(s.name, s.weight) for s in p.strategies] == [
        ("LoadAware", 2),
        ("LeastAllocated", 1),
        ("BalancedAllocation", 1),
    ]
    la = p.strategies[0].args
    assert dict(la.resourceWeights) == {"cpu": 1, "memory": 1}
    assert dict(la.estimatedScalingFactors) == {"cpu": 85, "memory": 70}
    assert_integer_weights(p)
    assert (p.load.staleAfterSeconds, p.load.fallback, p.score.spread) == (180.0, "requests", False)
    assert p == parse_policy({})  # the shipped file spells out the defaults


def test_policy_is_frozen():
    p = parse_policy(shipped())
    with pytest.raises(AttributeError):
        p.load.fallback = "zero"  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.filters.usageThresholds["cpu"] = 1  # type: ignore[index]


def test_accepted_variants():
    p = parse_policy(
        {
            "filters": {"resourceFit": False, "usageThresholds": {}},
            "strategies": [
                {
                    "name": "MostAllocated",
                    "weight": 3,
                    "args": {"resources": [{"name": "nvidia.com/gpu", "weight": 5}, {"name": "cpu"}]},
                },
                {
                    "name": "LoadAware",
                    "weight": 0,
                    "args": {"estimatedScalingFactors": {"cpu": 100}, "dominantResourceWeight": 1},
                },
            ],
            "load": {"staleAfterSeconds": 30.5, "fallback": "reject"},
            "score": {"spread": True},
        }
    )
    assert p.filters.resourceFit is False and dict(p.filters.usageThresholds) == {}
    assert p.strategies[0].args.resources == (ResourceWeight("nvidia.com/gpu", 5), ResourceWeight("cpu", 1))
    # unspecified scaling factors keep Koordinator's defaults
    assert dict(p.strategies[1].args.estimatedScalingFactors) == {"cpu": 100, "memory": 70}
    assert (p.load.staleAfterSeconds, p.load.fallback, p.score.spread) == (30.5, "reject", True)
    assert_integer_weights(p)


def test_integral_floats_become_ints():
    """YAML may spell an integer weight as 2.0: accepted, stored as the int 2."""
    p = parse_policy(
        {
            "filters": {"usageThresholds": {"cpu": 80.0, "memory": 0.0}},
            "strategies": [
                {
                    "name": "LoadAware",
                    "weight": 2.0,
                    "args": {
                        "resourceWeights": {"cpu": 1.0, "memory": 0.0},
                        "estimatedScalingFactors": {"cpu": 85.0},
                        "dominantResourceWeight": 1.0,
                    },
                },
                {
                    "name": "MostAllocated",
                    "weight": 0.0,
                    "args": {"resources": [{"name": "cpu", "weight": 100.0}]},
                },
                {
                    "name": "RequestedToCapacityRatio",
                    "weight": 100.0,
                    "args": {
                        "shape": [{"utilization": 0.0, "score": 10.0}, {"utilization": 100.0, "score": 0.0}]
                    },
                },
            ],
        }
    )
    assert_integer_weights(p)
    assert [s.weight for s in p.strategies] == [2, 0, 100]
    assert dict(p.filters.usageThresholds) == {"cpu": 80, "memory": 0}
    assert p.strategies[2].args.shape == (ShapePoint(0, 10), ShapePoint(100, 0))


def _set(path: list, value):
    """A mutation of the shipped document: set ``value`` at ``path`` (keys / indexes)."""

    def mutate(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return doc

    return mutate


def _delete(path: list):
    def mutate(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return doc

    return mutate


REJECTED = [
    # (id, mutation of the shipped document, the field the message must start with)
    ("unknown strategy", _set(["strategies", 1, "name"], "LeastRequested"), "strategies[1].name"),
    ("strategy without a name", _delete(["strategies", 0, "name"]), "strategies[0].name"),
    (
        "unknown argument of a requests strategy",
        _set(["strategies", 1, "args", "shape"], []),
        "strategies[1].args.shape",
    ),
    (
        "unknown argument of LoadAware",
        _set(["strategies", 0, "args", "usageThresholds"], {"cpu": 65}),
        "strategies[0].args.usageThresholds",
    ),
    ("unknown field of a strategy", _set(["strategies", 2, "wieght"], 1), "strategies[2].wieght"),
    ("unknown top-level field", _set(["scoring"], {}), "policy.scoring"),
    ("unknown filter", _set(["filters", "nodeAffinity"], True), "filters.nodeAffinity"),
    ("negative strategy weight", _set(["strategies", 1, "weight"], -1), "strategies[1].weight"),
    ("fractional strategy weight", _set(["strategies", 1, "weight"], 1.5), "strategies[1].weight"),
    ("strategy weight above 100", _set(["strategies", 0, "weight"], 101), "strategies[0].weight"),
    (
        "fractional resource weight",
        _set(["strategies", 2, "args", "resources", 1, "weight"], 0.5),
        "strategies[2].args.resources[1].weight",
    ),
    (
        "resource weight above 100 (kube-scheduler requires 1..100)",
        _set(["strategies", 1, "args", "resources", 0, "weight"], 101),
        "strategies[1].args.resources[0].weight",
    ),
    (
        "fractional LoadAware resource weight",
        _set(["strategies", 0, "args", "resourceWeights", "cpu"], 0.5),
        "strategies[0].args.resourceWeights.cpu",
    ),
    (
        "fractional scaling factor",
        _set(["strategies", 0, "args", "estimatedScalingFactors", "memory"], 70.5),
        "strategies[0].args.estimatedScalingFactors.memory",
    ),
    (
        "fractional dominantResourceWeight",
        _set(["strategies", 0, "args", "dominantResourceWeight"], 0.5),
        "strategies[0].args.dominantResourceWeight",
    ),
    (
        "fractional threshold",
        _set(["filters", "usageThresholds", "cpu"], 80.5),
        "filters.usageThresholds.cpu",
    ),
    (
        "negative resource weight",
        _set(["strategies", 2, "args", "resources", 1, "weight"], -2),
        "strategies[2].args.resources[1].weight",
    ),
    (
        "zero resource weight (kube-scheduler requires 1..100)",
        _set(["strategies", 1, "args", "resources", 0, "weight"], 0),
        "strategies[1].args.resources[0].weight",
    ),
    (
        "negative LoadAware resource weight",
        _set(["strategies", 0, "args", "resourceWeights", "cpu"], -1),
        "strategies[0].args.resourceWeights.cpu",
    ),
    (
        "negative dominantResourceWeight",
        _set(["strategies", 0, "args", "dominantResourceWeight"], -1),
        "strategies[0].args.dominantResourceWeight",
    ),
    ("boolean weight", _set(["strategies", 0, "weight"], True), "strategies[0].weight"),
    ("string weight", _set(["strategies", 0, "weight"], "2"), "strategies[0].weight"),
    ("NaN weight", _set(["strategies", 0, "weight"], math.nan), "strategies[0].weight"),
    ("infinite weight", _set(["strategies", 0, "weight"], math.inf), "strategies[0].weight"),
    (
        "all strategy weights zero",
        lambda d: {**d, "strategies": [{**s, "weight": 0} for s in d["strategies"]]},
        "strategies",
    ),
    (
        "all LoadAware resource weights zero",
        _set(["strategies", 0, "args", "resourceWeights"], {"cpu": 0, "memory": 0}),
        "strategies[0].args.resourceWeights",
    ),
    (
        "no LoadAware resource weights",
        _set(["strategies", 0, "args", "resourceWeights"], {}),
        "strategies[0].args.resourceWeights",
    ),
    (
        "threshold above 100",
        _set(["filters", "usageThresholds", "memory"], 101),
        "filters.usageThresholds.memory",
    ),
    ("negative threshold", _set(["filters", "usageThresholds", "cpu"], -5), "filters.usageThresholds.cpu"),
    ("thresholds not a mapping", _set(["filters", "usageThresholds"], [80, 90]), "filters.usageThresholds"),
    (
        "scaling factor above 100",
        _set(["strategies", 0, "args", "estimatedScalingFactors", "cpu"], 150),
        "strategies[0].args.estimatedScalingFactors.cpu",
    ),
    ("bad fallback", _set(["load", "fallback"], "ignore"), "load.fallback"),
    ("fallback with different case", _set(["load", "fallback"], "Requests"), "load.fallback"),
    ("zero staleness limit", _set(["load", "staleAfterSeconds"], 0), "load.staleAfterSeconds"),
    ("spread as a string", _set(["score", "spread"], "yes"), "score.spread"),
    ("spread as an integer", _set(["score", "spread"], 1), "score.spread"),
    ("resourceFit as a string", _set(["filters", "resourceFit"], "true"), "filters.resourceFit"),
    (
        "duplicate strategy",
        lambda d: {**d, "strategies": d["strategies"] + [copy.deepcopy(d["strategies"][1])]},
        "strategies[3].name",
    ),
    (
        "duplicate resource",
        _set(["strategies", 1, "args", "resources", 1, "name"], "cpu"),
        "strategies[1].args.resources[1].name",
    ),
    (
        "resources not a list",
        _set(["strategies", 1, "args", "resources"], {"cpu": 1, "memory": 1}),
        "strategies[1].args.resources",
    ),
    (
        "resources an empty list",
        _set(["strategies", 2, "args", "resources"], []),
        "strategies[2].args.resources",
    ),
    (
        "resource without a name",
        _set(["strategies", 1, "args", "resources", 0], {"weight": 1}),
        "strategies[1].args.resources[0].name",
    ),
    ("args not a mapping", _set(["strategies", 1, "args"], ["cpu"]), "strategies[1].args"),
    (
        "BalancedAllocation formula of no supported release",
        _set(["strategies", 2, "args", "formula"], "v1.34"),
        "strategies[2].args.formula",
    ),
    (
        "BalancedAllocation formula as a YAML number",
        _set(["strategies", 2, "args", "formula"], 1.35),
        "strategies[2].args.formula",
    ),
    (
        "BalancedAllocation formula without the v",
        _set(["strategies", 2, "args", "formula"], "1.35"),
        "strategies[2].args.formula",
    ),
    (
        "formula on LeastAllocated",
        _set(["strategies", 1, "args", "formula"], "v1.35"),
        "strategies[1].args.formula",
    ),
    ("strategies not a list", _set(["strategies"], {"name": "LoadAware"}), "strategies"),
    ("strategies empty", _set(["strategies"], []), "strategies"),
    ("document not a mapping", lambda d: list(d), "policy"),
]


@pytest.mark.parametrize(("mutate", "field"), [pytest.param(m, f, id=i) for i, m, f in REJECTED])
def test_invalid_policies_are_rejected_naming_the_field(mutate, field):
    doc = mutate(shipped())
    with pytest.raises(PolicyError) as err:
        parse_policy(doc)
    message = str(err.value)
    assert message.startswith(f"{field}: ") or message.startswith(f"{field}."), message
    assert isinstance(err.value, ValueError)


def test_yaml_number_spellings():
    """PyYAML (YAML 1.1) reads `1e3` as a string: rejected, naming the field, rather than
    silently misread; `1.0e+1` is the float 10.0, an integral value: accepted as 10; `1.0e+3`
    is out of range."""
    doc = yaml.safe_load("strategies: [{name: LoadAware, weight: 1e3}]")
    with pytest.raises(PolicyError, match=r"^strategies\[0\]\.weight: must be an integer"):
        parse_policy(doc)
    doc = yaml.safe_load("strategies: [{name: LoadAware, weight: 1.0e+1}]")
    weight = parse_policy(doc).strategies[0].weight
    assert weight == 10 and type(weight) is int
    doc = yaml.safe_load("strategies: [{name: LoadAware, weight: 1.0e+3}]")
    with pytest.raises(PolicyError, match=r"^strategies\[0\]\.weight: must be an integer in 0\.\.100"):
        parse_policy(doc)


# --------------------------------------------------------------------------------------------
# RequestedToCapacityRatio (kube-scheduler) and the Trimaran strategies


def one(strategy: dict, **doc) -> Policy:
    return parse_policy({"filters": {"usageThresholds": {}}, "strategies": [strategy], **doc})


BIN_PACK = [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]


def test_balanced_allocation_formula():
    """``formula`` names the kube-scheduler release whose BalancedAllocation to reproduce:
    v1.36 (the default, the deployed scheduler's) or v1.35; anything else is refused naming
    the field and the choices."""

    def balanced(args: dict) -> BalancedAllocationArgs:
        return one({"name": "BalancedAllocation", "args": args}).strategies[0].args

    assert balanced({}).formula == "v1.36"
    assert balanced({"formula": "v1.36"}) == balanced({})
    old = balanced({"formula": "v1.35", "resources": [{"name": "cpu"}, {"name": "memory"}]})
    assert old.formula == "v1.35" and old.resources == balanced({}).resources
    with pytest.raises(
        PolicyError,
        match=r"^strategies\[0\]\.args\.formula: must be one of v1\.36, v1\.35 "
        r"\(the kube-scheduler release .*got 'v1\.37'$",
    ):
        balanced({"formula": "v1.37"})


def test_requested_to_capacity_ratio_args():
    args = one({"name": "RequestedToCapacityRatio", "args": {"shape": BIN_PACK}}).strategies[0].args
    assert isinstance(args, RequestedToCapacityRatioArgs)
    assert args.shape == (ShapePoint(0, 0), ShapePoint(100, 10))
    assert args.resources == (ResourceWeight("cpu", 1), ResourceWeight("memory", 1))  # default
    args = (
        one(
            {
                "name": "RequestedToCapacityRatio",
                "args": {
                    "shape": [{"utilization": 50, "score": 3}],
                    "resources": [
                        {"name": "intel.com/foo", "weight": 3},
                        {"name": "intel.com/bar", "weight": 100},
                    ],
                },
            }
        )
        .strategies[0]
        .args
    )
    assert args.shape == (ShapePoint(50, 3),)
    assert args.resources == (ResourceWeight("intel.com/foo", 3), ResourceWeight("intel.com/bar", 100))


def test_trimaran_defaults():
    """scheduler-plugins apis/config/v1/defaults.go: targetUtilization 40, defaultRequests cpu
    1000m, defaultRequestsMultiplier "1.5", safeVarianceMargin 1, safeVarianceSensitivity 1,
    smoothingWindowSize 5, riskLimitWeights cpu 0.5 memory 0.5."""
    tlp = one({"name": "TargetLoadPacking"}).strategies[0].args
    assert tlp == TargetLoadPackingArgs(40, 1000.0, 1.5)
    lvrb = one({"name": "LoadVariationRiskBalancing"}).strategies[0].args
    assert lvrb == LoadVariationRiskBalancingArgs(1.0, 1.0)
    lroc = one({"name": "LowRiskOverCommitment"}).strategies[0].args
    assert isinstance(lroc, LowRiskOverCommitmentArgs)
    assert lroc.smoothingWindowSize == 5 and dict(lroc.riskLimitWeights) == {"cpu": 0.5, "memory": 0.5}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"targetUtilization": 70}, (70, 1000.0, 1.5)),
        ({"targetUtilization": 1.0}, (1, 1000.0, 1.5)),
        ({"targetUtilization": 100}, (100, 1000.0, 1.5)),
        ({"defaultRequests": {"cpu": "500m"}}, (40, 500.0, 1.5)),
        ({"defaultRequests": {"cpu": "2"}}, (40, 2000.0, 1.5)),
        ({"defaultRequests": {"cpu": "1.5"}}, (40, 1500.0, 1.5)),
        ({"defaultRequests": {"cpu": 0.25}}, (40, 250.0, 1.5)),
        ({"defaultRequests": {"cpu": 2}}, (40, 2000.0, 1.5)),
        ({"defaultRequestsMultiplier": "2.5"}, (40, 1000.0, 2.5)),  # upstream's type is a string
        ({"defaultRequestsMultiplier": 1}, (40, 1000.0, 1.0)),
    ],
    ids=lambda v: repr(v),
)
def test_target_load_packing_args(args, expected):
    got = one({"name": "TargetLoadPacking", "args": args}).strategies[0].args
    assert (got.targetUtilization, got.defaultRequestsCpuMillis, got.defaultRequestsMultiplier) == expected
    assert type(got.targetUtilization) is int


def test_load_variation_and_over_commitment_args():
    lvrb = (
        one(
            {
                "name": "LoadVariationRiskBalancing",
                "args": {"safeVarianceMargin": 0, "safeVarianceSensitivity": 2.5},
            }
        )
        .strategies[0]
        .args
    )
    assert (lvrb.safeVarianceMargin, lvrb.safeVarianceSensitivity) == (0.0, 2.5)
    lroc = (
        one(
            {
                "name": "LowRiskOverCommitment",
                "args": {"smoothingWindowSize": 1, "riskLimitWeights": {"cpu": 0, "memory": 1}},
            }
        )
        .strategies[0]
        .args
    )
    assert lroc.smoothingWindowSize == 1 and dict(lroc.riskLimitWeights) == {"cpu": 0.0, "memory": 1.0}
    lroc = (
        one({"name": "LowRiskOverCommitment", "args": {"riskLimitWeights": {"memory": 0.25}}})
        .strategies[0]
        .args
    )
    assert dict(lroc.riskLimitWeights) == {"cpu": 0.5, "memory": 0.25}  # the unset one keeps its default


RTCR, TLP = "RequestedToCapacityRatio", "TargetLoadPacking"
LVRB, LROC = "LoadVariationRiskBalancing", "LowRiskOverCommitment"


def shape(*points: tuple) -> dict:
    return {"shape": [dict(zip(("utilization", "score"), p, strict=False)) for p in points]}


NEW_REJECTED = [
    # (id, strategy, args, the field under strategies[0].args the message must start with)
    ("RequestedToCapacityRatio without a shape", RTCR, None, "shape"),
    ("empty shape", RTCR, {"shape": []}, "shape"),
    ("shape not a list", RTCR, {"shape": {"utilization": 0}}, "shape"),
    ("shape point without a score", RTCR, shape((0,)), "shape[0].score"),
    ("shape point without a utilization", RTCR, {"shape": [{"score": 1}]}, "shape[0].utilization"),
    ("shape utilization above 100", RTCR, shape((0, 0), (101, 10)), "shape[1].utilization"),
    ("negative shape utilization", RTCR, shape((-1, 0)), "shape[0].utilization"),
    ("fractional shape utilization", RTCR, shape((10.5, 0)), "shape[0].utilization"),
    ("shape score above 10", RTCR, shape((0, 11)), "shape[0].score"),
    ("negative shape score", RTCR, shape((0, -1)), "shape[0].score"),
    ("fractional shape score", RTCR, shape((0, 2.5)), "shape[0].score"),
    ("shape utilization not increasing", RTCR, shape((50, 0), (50, 10)), "shape[1].utilization"),
    ("shape utilization decreasing", RTCR, shape((60, 0), (40, 10)), "shape[1].utilization"),
    (
        "unknown field of a shape point",
        RTCR,
        {"shape": [{"utilization": 0, "score": 0, "weight": 1}]},
        "shape[0].weight",
    ),
    (
        "RequestedToCapacityRatio resource weight 0",
        RTCR,
        {**shape((0, 0)), "resources": [{"name": "cpu", "weight": 0}]},
        "resources[0].weight",
    ),
    (
        "RequestedToCapacityRatio fractional resource weight",
        RTCR,
        {**shape((0, 0)), "resources": [{"name": "cpu", "weight": 1.5}]},
        "resources[0].weight",
    ),
    ("targetUtilization 0", TLP, {"targetUtilization": 0}, "targetUtilization"),
    ("targetUtilization above 100", TLP, {"targetUtilization": 101}, "targetUtilization"),
    ("fractional targetUtilization", TLP, {"targetUtilization": 40.5}, "targetUtilization"),
    ("targetUtilization as a string", TLP, {"targetUtilization": "40"}, "targetUtilization"),
    (
        "defaultRequests cpu not a quantity",
        TLP,
        {"defaultRequests": {"cpu": "1 core"}},
        "defaultRequests.cpu",
    ),
    ("defaultRequests cpu negative", TLP, {"defaultRequests": {"cpu": -1}}, "defaultRequests.cpu"),
    ("defaultRequests for memory", TLP, {"defaultRequests": {"memory": "1Gi"}}, "defaultRequests.memory"),
    ("defaultRequests not a mapping", TLP, {"defaultRequests": "1000m"}, "defaultRequests"),
    (
        "defaultRequestsMultiplier not a number",
        TLP,
        {"defaultRequestsMultiplier": "one and a half"},
        "defaultRequestsMultiplier",
    ),
    ("defaultRequestsMultiplier NaN", TLP, {"defaultRequestsMultiplier": "nan"}, "defaultRequestsMultiplier"),
    ("defaultRequestsMultiplier 0", TLP, {"defaultRequestsMultiplier": 0}, "defaultRequestsMultiplier"),
    (
        "defaultRequestsMultiplier negative",
        TLP,
        {"defaultRequestsMultiplier": "-1"},
        "defaultRequestsMultiplier",
    ),
    ("unknown TargetLoadPacking argument", TLP, {"watcherAddress": "x"}, "watcherAddress"),
    ("negative safeVarianceMargin", LVRB, {"safeVarianceMargin": -1}, "safeVarianceMargin"),
    ("safeVarianceSensitivity 0", LVRB, {"safeVarianceSensitivity": 0}, "safeVarianceSensitivity"),
    ("safeVarianceMargin as a string", LVRB, {"safeVarianceMargin": "1"}, "safeVarianceMargin"),
    ("smoothingWindowSize 0", LROC, {"smoothingWindowSize": 0}, "smoothingWindowSize"),
    ("fractional smoothingWindowSize", LROC, {"smoothingWindowSize": 2.5}, "smoothingWindowSize"),
    ("riskLimitWeights above 1", LROC, {"riskLimitWeights": {"cpu": 1.5}}, "riskLimitWeights.cpu"),
    ("negative riskLimitWeights", LROC, {"riskLimitWeights": {"memory": -0.1}}, "riskLimitWeights.memory"),
    (
        "riskLimitWeights for another resource",
        LROC,
        {"riskLimitWeights": {"nvidia.com/gpu": 0.5}},
        "riskLimitWeights.nvidia.com/gpu",
    ),
    (
        "riskLimitWeights for a misspelt resource",
        LROC,
        {"riskLimitWeights": {"memroy": 0.5}},
        "riskLimitWeights.memroy",
    ),
    (
        "defaultRequests for a misspelt resource",
        TLP,
        {"defaultRequests": {"cpus": "1"}},
        "defaultRequests.cpus",
    ),
]


@pytest.mark.parametrize(("name", "args", "field"), [pytest.param(*c[1:], id=c[0]) for c in NEW_REJECTED])
def test_invalid_new_strategy_args_are_rejected_naming_the_field(name, args, field):
    field = f"strategies[0].args.{field}"
    with pytest.raises(PolicyError) as err:
        one({"name": name} if args is None else {"name": name, "args": args})
    message = str(err.value)
    assert message.startswith(f"{field}: ") or message.startswith(f"{field}."), message


# --------------------------------------------------------------------------------------------
# Policy.load_resources: whose measured usage makes a node's load data usable


# (ids with sets sorted: every pytest-xdist worker must collect the same ids, whatever PYTHONHASHSEED)
@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, {"cpu", "memory"}),  # default thresholds and LoadAware weights
        ({"filters": {"usageThresholds": {}}, "strategies": [{"name": "LeastAllocated"}]}, set()),
        # no LoadAware: Koordinator's default weights play no part
        (
            {"filters": {"usageThresholds": {"memory": 0}}, "strategies": [{"name": "MostAllocated"}]},
            {"memory"},
        ),
        (
            {
                "filters": {"usageThresholds": {}},
                "strategies": [
                    {"name": "LoadAware", "weight": 0, "args": {"resourceWeights": {"nvidia.com/gpu": 1}}},
                    {"name": "LeastAllocated"},
                ],
            },
            {"nvidia.com/gpu"},
        ),  # LoadAware listed, even at weight 0
        (
            {
                "filters": {"usageThresholds": {"ephemeral-storage": 90}},
                "strategies": [{"name": "TargetLoadPacking"}],
            },
            {"cpu", "ephemeral-storage"},
        ),
        (
            {"filters": {"usageThresholds": {}}, "strategies": [{"name": "LoadVariationRiskBalancing"}]},
            {"cpu", "memory"},
        ),
        (
            {"filters": {"usageThresholds": {}}, "strategies": [{"name": "LowRiskOverCommitment"}]},
            {"cpu", "memory"},
        ),
        (
            {
                "filters": {"usageThresholds": {}},
                "strategies": [{"name": "RequestedToCapacityRatio", "args": {"shape": BIN_PACK}}],
            },
            set(),
        ),
    ],
    ids=lambda v: repr(sorted(v) if isinstance(v, set) else v)[:60],
)
def test_load_resources(doc, expected):
    assert parse_policy(doc).load_resources == frozenset(expected)


# --------------------------------------------------------------------------------------------
# Resource names: a policy cannot name a resource that no node has (issue 16, item 7)


def _key(name: Any) -> str:
    """How a field path shows a mapping key: as it is, quoted if it would break the line."""
    return name if not isinstance(name, str) or name.isprintable() else repr(name)


def _in_thresholds(name: Any) -> tuple[dict, str]:
    return {"filters": {"usageThresholds": {name: 80}}}, f"filters.usageThresholds.{_key(name)}"


def _in_load_aware(arg: str, value: int) -> Callable[[Any], tuple[dict, str]]:
    def build(name: Any) -> tuple[dict, str]:
        args = {arg: {name: value}}
        return (
            {"filters": {"usageThresholds": {}}, "strategies": [{"name": "LoadAware", "args": args}]},
            f"strategies[0].args.{arg}.{_key(name)}",
        )

    return build


def _in_resources(strategy: str, **extra: Any) -> Callable[[Any], tuple[dict, str]]:
    def build(name: Any) -> tuple[dict, str]:
        args = {**extra, "resources": [{"name": name, "weight": 2}]}
        return (
            {"filters": {"usageThresholds": {}}, "strategies": [{"name": strategy, "args": args}]},
            "strategies[0].args.resources[0].name",
        )

    return build


# Every field of the policy that takes a resource name: (id, document naming it there, its path)
RESOURCE_NAME_FIELDS = [
    ("filters.usageThresholds", _in_thresholds),
    ("LoadAware.resourceWeights", _in_load_aware("resourceWeights", 1)),
    ("LoadAware.estimatedScalingFactors", _in_load_aware("estimatedScalingFactors", 50)),
    ("LeastAllocated.resources", _in_resources("LeastAllocated")),
    ("MostAllocated.resources", _in_resources("MostAllocated")),
    ("BalancedAllocation.resources", _in_resources("BalancedAllocation")),
    ("RequestedToCapacityRatio.resources", _in_resources("RequestedToCapacityRatio", shape=BIN_PACK)),
]

LONG_PREFIX = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 58])  # a DNS subdomain of 250 characters

ACCEPTED_NAMES = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "pods",
    "hugepages-2Mi",
    "hugepages-1Gi",
    "hugepages-64Ki",
    "nvidia.com/gpu",
    "example.com/foo",
    "amd.com/gpu",
    "gpu.intel.com/i915",
    "example.com/Foo_bar.1",  # the name part allows upper case, '_' and '.' (IsQualifiedName)
    # kubernetes.io-prefixed names that are not built in: kube-apiserver lets containers request
    # them and kube-scheduler counts them (IsPrefixedNativeResource); Koordinator puts
    # kubernetes.io/batch-cpu and kubernetes.io/batch-memory on its nodes.
    "kubernetes.io/batch-cpu",
    "kubernetes.io/foo",
    "node.kubernetes.io/bar",
]

REFUSED_NAMES = [
    # (name, something the message must say besides the field and the name)
    ("memroy", "did you mean 'memory'?"),
    ("cpus", "did you mean 'cpu'?"),
    ("CPU", "did you mean 'cpu'?"),
    ("ephemeral_storage", "did you mean 'ephemeral-storage'?"),
    ("gpu", "domain prefix"),  # an extended resource needs its domain (nvidia.com/gpu)
    ("storage", "not a resource of nodes"),  # a PersistentVolumeClaim's, never a node's
    ("requests.cpu", "did you mean 'cpu'?"),  # ResourceQuota's spelling, not a node's
    ("limits.memory", "did you mean 'memory'?"),
    ("requests.nvidia.com/gpu", "did you mean 'nvidia.com/gpu'?"),
    ("attachable-volumes-aws-ebs", "not a resource of nodes"),
    ("hugepages-2048Ki", "did you mean 'hugepages-2Mi'?"),
    ("hugepages-2097152", "did you mean 'hugepages-2Mi'?"),
    ("hugepages-2M", "page size"),
    ("hugepages-1.5Gi", "page size"),
    ("hugepages-foo", "page size"),
    ("hugepages-", "page size"),
    ("hugepages-0", "page size"),
    ("hugepages-512", "page size"),  # the kubelet's page sizes are whole KiB
    ("Example.com/gpu", "prefix"),  # a DNS subdomain is lower case
    ("example.com/", "name part"),
    ("/gpu", "prefix"),
    ("example.com/a/b", "at most one '/'"),
    ("example_com/gpu", "prefix"),
    ("nvidia.com/gpu ", "name part"),
    ("my gpu", "name part"),
    ("cpu!", "name part"),
    ("memory\n", "name part"),
    ("example.com\n/gpu", "prefix"),
    ("hugepages-2Mi\n", "page size"),
    ("-cpu", "name part"),
    ("example.com/" + "x" * 64, "name part"),
    (LONG_PREFIX + "/gpu", "prefix"),  # "requests." + the name is no qualified name (IsExtendedResourceName)
    ("kubernetes.io/", "name part"),
]


@pytest.mark.parametrize("name", ACCEPTED_NAMES)
@pytest.mark.parametrize("build", [pytest.param(b, id=i) for i, b in RESOURCE_NAME_FIELDS])
def test_every_resource_name_field_accepts_what_a_node_can_have(build, name):
    doc, _ = build(name)
    parse_policy(doc)


@pytest.mark.parametrize(("name", "says"), REFUSED_NAMES)
@pytest.mark.parametrize("build", [pytest.param(b, id=i) for i, b in RESOURCE_NAME_FIELDS])
def test_every_resource_name_field_refuses_what_no_node_has(build, name, says):
    doc, field = build(name)
    with pytest.raises(PolicyError) as err:
        parse_policy(doc)
    message = str(err.value)
    assert message.startswith(f"{field}: "), message
    assert repr(name) in message and says in message, message
    assert "\n" not in message


@pytest.mark.parametrize("name", [5, "", None])
@pytest.mark.parametrize("build", [pytest.param(b, id=i) for i, b in RESOURCE_NAME_FIELDS])
def test_a_resource_name_must_be_a_non_empty_string(build, name):
    doc, _ = build(name)
    with pytest.raises(PolicyError, match="must be a non-empty string"):
        parse_policy(doc)


def test_resource_name_rule_directly():
    """``resource_name_problem`` is the one rule every field uses: None for a name a node can
    have, else why not."""
    for name in ACCEPTED_NAMES:
        assert resource_name_problem(name) is None, name
    for name, says in REFUSED_NAMES:
        problem = resource_name_problem(name)
        assert problem is not None and says in problem, (name, problem)
