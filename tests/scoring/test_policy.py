"""``parse_policy``: the defaults, the shipped file, and errors that name the faulty field."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from scoring import Policy, PolicyError, parse_policy
from scoring.policy import LoadAwareArgs, ResourcesArgs, ResourceWeight

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "extender-policy.yaml"


def shipped() -> dict:
    with SHIPPED.open() as f:
        return yaml.safe_load(f)


def test_empty_document_gives_the_documented_defaults():
    p = parse_policy({})
    assert isinstance(p, Policy)
    assert p.filters.resourceFit is True
    assert dict(p.filters.usageThresholds) == {"cpu": 80.0, "memory": 90.0}
    assert [(s.name, s.weight) for s in p.strategies] == [
        ("LoadAware", 2.0), ("LeastAllocated", 1.0), ("BalancedAllocation", 1.0)]
    la, least, balanced = (s.args for s in p.strategies)
    # Koordinator's LoadAwareSchedulingArgs defaults (apis/config/v1/defaults.go)
    assert isinstance(la, LoadAwareArgs)
    assert dict(la.resourceWeights) == {"cpu": 1.0, "memory": 1.0}
    assert dict(la.estimatedScalingFactors) == {"cpu": 85.0, "memory": 70.0}
    assert la.dominantResourceWeight == 0.0
    # kube-scheduler's default scoring resources cpu=1, memory=1
    for args in (least, balanced):
        assert isinstance(args, ResourcesArgs)
        assert args.resources == (ResourceWeight("cpu", 1.0), ResourceWeight("memory", 1.0))
    assert (p.load.staleAfterSeconds, p.load.fallback) == (180.0, "requests")
    assert p.score.spread is False
    assert p.estimator is la


@pytest.mark.parametrize("doc", [None, {"filters": None, "load": None, "score": None}],
                         ids=["null document", "null sections"])
def test_null_sections_mean_defaults(doc):
    assert parse_policy(doc) == parse_policy({})


def test_shipped_policy_file_parses_to_what_it_says():
    p = parse_policy(shipped())
    assert p.filters.resourceFit is True
    assert dict(p.filters.usageThresholds) == {"cpu": 80.0, "memory": 90.0}
    assert [(s.name, s.weight) for s in p.strategies] == [
        ("LoadAware", 2.0), ("LeastAllocated", 1.0), ("BalancedAllocation", 1.0)]
    la = p.strategies[0].args
    assert dict(la.resourceWeights) == {"cpu": 1.0, "memory": 1.0}
    assert dict(la.estimatedScalingFactors) == {"cpu": 85.0, "memory": 70.0}
    assert (p.load.staleAfterSeconds, p.load.fallback, p.score.spread) == (180.0, "requests", False)
    assert p == parse_policy({})  # the shipped file spells out the defaults


def test_policy_is_frozen():
    p = parse_policy(shipped())
    with pytest.raises(AttributeError):
        p.load.fallback = "zero"  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.filters.usageThresholds["cpu"] = 1  # type: ignore[index]


def test_accepted_variants():
    p = parse_policy({
        "filters": {"resourceFit": False, "usageThresholds": {}},
        "strategies": [{"name": "MostAllocated", "weight": 3,
                        "args": {"resources": [{"name": "nvidia.com/gpu", "weight": 5}, {"name": "cpu"}]}},
                       {"name": "LoadAware", "weight": 0, "args": {"estimatedScalingFactors": {"cpu": 100},
                                                                   "dominantResourceWeight": 1}}],
        "load": {"staleAfterSeconds": 30.5, "fallback": "reject"},
        "score": {"spread": True},
    })
    assert p.filters.resourceFit is False and dict(p.filters.usageThresholds) == {}
    assert p.strategies[0].args.resources == (ResourceWeight("nvidia.com/gpu", 5.0),
                                              ResourceWeight("cpu", 1.0))
    # unspecified scaling factors keep Koordinator's defaults
    assert dict(p.strategies[1].args.estimatedScalingFactors) == {"cpu": 100.0, "memory": 70.0}
    assert (p.load.staleAfterSeconds, p.load.fallback, p.score.spread) == (30.5, "reject", True)


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
    ("unknown argument of a requests strategy", _set(["strategies", 1, "args", "shape"], []),
     "strategies[1].args.shape"),
    ("unknown argument of LoadAware", _set(["strategies", 0, "args", "usageThresholds"], {"cpu": 65}),
     "strategies[0].args.usageThresholds"),
    ("unknown field of a strategy", _set(["strategies", 2, "wieght"], 1), "strategies[2].wieght"),
    ("unknown top-level field", _set(["scoring"], {}), "policy.scoring"),
    ("unknown filter", _set(["filters", "nodeAffinity"], True), "filters.nodeAffinity"),
    ("negative strategy weight", _set(["strategies", 1, "weight"], -1), "strategies[1].weight"),
    ("negative resource weight", _set(["strategies", 2, "args", "resources", 1, "weight"], -2),
     "strategies[2].args.resources[1].weight"),
    ("zero resource weight (kube-scheduler requires 1..100)",
     _set(["strategies", 1, "args", "resources", 0, "weight"], 0), "strategies[1].args.resources[0].weight"),
    ("negative LoadAware resource weight", _set(["strategies", 0, "args", "resourceWeights", "cpu"], -1),
     "strategies[0].args.resourceWeights.cpu"),
    ("negative dominantResourceWeight", _set(["strategies", 0, "args", "dominantResourceWeight"], -1),
     "strategies[0].args.dominantResourceWeight"),
    ("boolean weight", _set(["strategies", 0, "weight"], True), "strategies[0].weight"),
    ("string weight", _set(["strategies", 0, "weight"], "2"), "strategies[0].weight"),
    ("NaN weight", _set(["strategies", 0, "weight"], math.nan), "strategies[0].weight"),
    ("infinite weight", _set(["strategies", 0, "weight"], math.inf), "strategies[0].weight"),
    ("all strategy weights zero",
     lambda d: {**d, "strategies": [{**s, "weight": 0} for s in d["strategies"]]}, "strategies"),
    ("all LoadAware resource weights zero",
     _set(["strategies", 0, "args", "resourceWeights"], {"cpu": 0, "memory": 0}),
     "strategies[0].args.resourceWeights"),
    ("no LoadAware resource weights", _set(["strategies", 0, "args", "resourceWeights"], {}),
     "strategies[0].args.resourceWeights"),
    ("threshold above 100", _set(["filters", "usageThresholds", "memory"], 101),
     "filters.usageThresholds.memory"),
    ("negative threshold", _set(["filters", "usageThresholds", "cpu"], -5), "filters.usageThresholds.cpu"),
    ("thresholds not a mapping", _set(["filters", "usageThresholds"], [80, 90]), "filters.usageThresholds"),
    ("scaling factor above 100", _set(["strategies", 0, "args", "estimatedScalingFactors", "cpu"], 150),
     "strategies[0].args.estimatedScalingFactors.cpu"),
    ("bad fallback", _set(["load", "fallback"], "ignore"), "load.fallback"),
    ("fallback with different case", _set(["load", "fallback"], "Requests"), "load.fallback"),
    ("zero staleness limit", _set(["load", "staleAfterSeconds"], 0), "load.staleAfterSeconds"),
    ("spread as a string", _set(["score", "spread"], "yes"), "score.spread"),
    ("spread as an integer", _set(["score", "spread"], 1), "score.spread"),
    ("resourceFit as a string", _set(["filters", "resourceFit"], "true"), "filters.resourceFit"),
    ("duplicate strategy",
     lambda d: {**d, "strategies": d["strategies"] + [copy.deepcopy(d["strategies"][1])]},
     "strategies[3].name"),
    ("duplicate resource", _set(["strategies", 1, "args", "resources", 1, "name"], "cpu"),
     "strategies[1].args.resources[1].name"),
    ("resources not a list", _set(["strategies", 1, "args", "resources"], {"cpu": 1, "memory": 1}),
     "strategies[1].args.resources"),
    ("resources an empty list", _set(["strategies", 2, "args", "resources"], []),
     "strategies[2].args.resources"),
    ("resource without a name", _set(["strategies", 1, "args", "resources", 0], {"weight": 1}),
     "strategies[1].args.resources[0].name"),
    ("args not a mapping", _set(["strategies", 1, "args"], ["cpu"]), "strategies[1].args"),
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
    silently misread."""
    doc = yaml.safe_load("strategies: [{name: LoadAware, weight: 1e3}]")
    with pytest.raises(PolicyError, match=r"^strategies\[0\]\.weight: must be a number"):
        parse_policy(doc)
    doc = yaml.safe_load("strategies: [{name: LoadAware, weight: 1.0e+3}]")
    assert parse_policy(doc).strategies[0].weight == 1000
