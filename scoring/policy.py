"""The scoring policy: which filters and strategies run, with what arguments.

A policy arrives as plain data (a dict read from YAML by the extender) and is validated once,
at start-up, into frozen dataclasses. Every error names the field it is about
(``strategies[1].args.resourceWeights.cpu: must be a number >= 0``) so that an operator can fix
a ConfigMap without reading code. Argument names are the anchors' own: kube-scheduler's
``resources`` with ``name``/``weight``, Koordinator's ``resourceWeights``,
``estimatedScalingFactors``, ``dominantResourceWeight`` and ``usageThresholds``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from scoring.types import CPU, MEMORY


class PolicyError(ValueError):
    """The policy document is invalid; the message names the field."""


@dataclasses.dataclass(frozen=True)
class ResourceWeight:
    name: str
    weight: float


@dataclasses.dataclass(frozen=True)
class ResourcesArgs:
    """Args of LeastAllocated, MostAllocated and BalancedAllocation (kube-scheduler's
    ``NodeResourcesFitArgs.scoringStrategy.resources``; default cpu=1, memory=1)."""

    resources: tuple[ResourceWeight, ...] = (ResourceWeight(CPU, 1.0), ResourceWeight(MEMORY, 1.0))


@dataclasses.dataclass(frozen=True)
class LoadAwareArgs:
    """Args of Koordinator's LoadAwareScheduling score (defaults from its v1 defaults.go)."""

    resourceWeights: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: MappingProxyType({CPU: 1.0, MEMORY: 1.0}))
    estimatedScalingFactors: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: MappingProxyType({CPU: 85.0, MEMORY: 70.0}))
    dominantResourceWeight: float = 0.0


StrategyArgs = ResourcesArgs | LoadAwareArgs


@dataclasses.dataclass(frozen=True)
class StrategySpec:
    name: str
    weight: float
    args: StrategyArgs


@dataclasses.dataclass(frozen=True)
class FilterSpec:
    """``resourceFit``: requests (and the pod count) against allocatable minus requested.
    ``usageThresholds``: percent of allocatable per resource, Koordinator semantics (the
    incoming pod's estimated usage included); empty disables the filter."""

    resourceFit: bool = True
    usageThresholds: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: MappingProxyType({CPU: 80.0, MEMORY: 90.0}))


FALLBACKS = ("requests", "zero", "reject")


@dataclasses.dataclass(frozen=True)
class LoadSpec:
    """How old load data may be before it counts as stale, and what stale or missing data
    means: ``requests`` (score the node with the requests-based strategies only, the default),
    ``zero`` (load strategies score 0) or ``reject`` (the node fails the filter)."""

    staleAfterSeconds: float = 180.0  # Koordinator nodeMetricExpirationSeconds default
    fallback: str = "requests"


@dataclasses.dataclass(frozen=True)
class ScoreSpec:
    """``spread``: stretch the combined scores of the feasible candidates to the full 0..100
    range before mapping to 0..10, so close nodes land on different levels."""

    spread: bool = False


@dataclasses.dataclass(frozen=True)
class Policy:
    filters: FilterSpec
    strategies: tuple[StrategySpec, ...]
    load: LoadSpec
    score: ScoreSpec

    @property
    def estimator(self) -> LoadAwareArgs:
        """Scaling factors used to estimate pod usage (LoadAware's if configured)."""
        for s in self.strategies:
            if isinstance(s.args, LoadAwareArgs):
                return s.args
        return LoadAwareArgs()


# Strategy name -> (kind, args parser). "requests" strategies need only requests; "load"
# strategies need fresh measured usage and fall back per LoadSpec.
REQUESTS_KIND, LOAD_KIND = "requests", "load"


def _num(value: Any, path: str, *, lo: float = 0.0, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyError(f"{path}: must be a number, got {value!r}")
    if not lo <= value <= hi:
        bound = f">= {lo:g}" if hi == math.inf else f"in {lo:g}..{hi:g}"
        raise PolicyError(f"{path}: must be {bound}, got {value!r}")
    return float(value)


def _mapping(value: Any, path: str, allowed: tuple[str, ...] | None = None) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path}: must be a mapping, got {type(value).__name__}")
    if allowed is not None:
        for key in value:
            if key not in allowed:
                raise PolicyError(f"{path}.{key}: unknown field (allowed: {', '.join(allowed)})")
    return value


def _resource_map(value: Any, path: str, *, hi: float = math.inf) -> Mapping[str, float]:
    out = {}
    for name, v in _mapping(value, path).items():
        if not isinstance(name, str) or not name:
            raise PolicyError(f"{path}: resource names must be non-empty strings")
        out[name] = _num(v, f"{path}.{name}", hi=hi)
    return MappingProxyType(out)


def _resources_args(raw: Mapping[str, Any], path: str) -> ResourcesArgs:
    raw = _mapping(raw, path, ("resources",))
    if "resources" not in raw:
        return ResourcesArgs()
    items = raw["resources"]
    if not isinstance(items, list) or not items:
        raise PolicyError(f"{path}.resources: must be a non-empty list of {{name, weight}}")
    out = []
    for i, item in enumerate(items):
        p = f"{path}.resources[{i}]"
        item = _mapping(item, p, ("name", "weight"))
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise PolicyError(f"{p}.name: must be a non-empty string")
        if any(r.name == name for r in out):
            raise PolicyError(f"{p}.name: duplicate resource {name!r}")
        out.append(ResourceWeight(name, _num(item.get("weight", 1), f"{p}.weight", lo=1e-9)))
    return ResourcesArgs(tuple(out))


def _load_aware_args(raw: Mapping[str, Any], path: str) -> LoadAwareArgs:
    raw = _mapping(raw, path, ("resourceWeights", "estimatedScalingFactors", "dominantResourceWeight"))
    d = LoadAwareArgs()
    weights = _resource_map(raw["resourceWeights"], f"{path}.resourceWeights") \
        if "resourceWeights" in raw else d.resourceWeights
    if not weights or sum(weights.values()) <= 0:
        raise PolicyError(f"{path}.resourceWeights: at least one weight must be > 0")
    factors = dict(d.estimatedScalingFactors)
    factors.update(_resource_map(raw.get("estimatedScalingFactors"),
                                 f"{path}.estimatedScalingFactors", hi=100))
    dominant = _num(raw.get("dominantResourceWeight", 0), f"{path}.dominantResourceWeight")
    return LoadAwareArgs(weights, MappingProxyType(factors), dominant)


STRATEGIES: Mapping[str, tuple[str, Any]] = MappingProxyType({
    "LeastAllocated": (REQUESTS_KIND, _resources_args),
    "MostAllocated": (REQUESTS_KIND, _resources_args),
    "BalancedAllocation": (REQUESTS_KIND, _resources_args),
    "LoadAware": (LOAD_KIND, _load_aware_args),
})


def strategy_kind(name: str) -> str:
    return STRATEGIES[name][0]


def _strategies(raw: Any) -> tuple[StrategySpec, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise PolicyError("strategies: must be a non-empty list of {name, weight, args}")
    out = []
    for i, item in enumerate(raw):
        p = f"strategies[{i}]"
        item = _mapping(item, p, ("name", "weight", "args"))
        name = item.get("name")
        if name not in STRATEGIES:
            raise PolicyError(f"{p}.name: unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
        if any(s.name == name for s in out):
            raise PolicyError(f"{p}.name: strategy {name!r} listed twice")
        weight = _num(item.get("weight", 1), f"{p}.weight")
        out.append(StrategySpec(name, weight, STRATEGIES[name][1](item.get("args"), f"{p}.args")))
    if sum(s.weight for s in out) <= 0:
        raise PolicyError("strategies: at least one strategy needs a weight > 0")
    return tuple(out)


def parse_policy(doc: Any) -> Policy:
    """Validate a policy document (the YAML file's content) into a frozen Policy."""
    doc = _mapping(doc, "policy", ("filters", "strategies", "load", "score"))
    f = _mapping(doc.get("filters"), "filters", ("resourceFit", "usageThresholds"))
    fit = f.get("resourceFit", True)
    if not isinstance(fit, bool):
        raise PolicyError(f"filters.resourceFit: must be true or false, got {fit!r}")
    thresholds = _resource_map(f["usageThresholds"], "filters.usageThresholds", hi=100) \
        if "usageThresholds" in f else FilterSpec().usageThresholds
    load = _mapping(doc.get("load"), "load", ("staleAfterSeconds", "fallback"))
    fallback = load.get("fallback", "requests")
    if fallback not in FALLBACKS:
        raise PolicyError(f"load.fallback: must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
    stale = _num(load.get("staleAfterSeconds", 180), "load.staleAfterSeconds", lo=1e-9)
    score = _mapping(doc.get("score"), "score", ("spread",))
    spread = score.get("spread", False)
    if not isinstance(spread, bool):
        raise PolicyError(f"score.spread: must be true or false, got {spread!r}")
    strategies = _strategies(doc.get("strategies", DEFAULT_STRATEGIES))
    return Policy(FilterSpec(fit, thresholds), strategies, LoadSpec(stale, fallback), ScoreSpec(spread))


# The default policy: Koordinator's LoadAware on measured usage, with kube-scheduler's
# requests-based spreading beside it (and as the fallback where load data is stale).
DEFAULT_STRATEGIES: tuple[Mapping[str, Any], ...] = (
    MappingProxyType({"name": "LoadAware", "weight": 2}),
    MappingProxyType({"name": "LeastAllocated", "weight": 1}),
    MappingProxyType({"name": "BalancedAllocation", "weight": 1}),
)
