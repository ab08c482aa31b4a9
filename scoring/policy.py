"""The scoring policy: which filters and strategies run, with what arguments.

A policy arrives as plain data (a dict read from YAML by the extender) and is validated once,
at start-up, into frozen dataclasses. Every error names the field it is about
(``strategies[1].args.resourceWeights.cpu: must be an integer >= 0``) so that an operator can
fix a ConfigMap without reading code. Argument names and validation ranges are the anchors'
own:

* kube-scheduler ``NodeResourcesFitArgs.scoringStrategy`` (``resources`` with ``name`` and an
  integer ``weight`` 1..100, ``requestedToCapacityRatio.shape`` with integer ``utilization``
  0..100 strictly increasing and ``score`` 0..10; ``pkg/scheduler/apis/config/validation``);
  BalancedAllocation's ``formula`` is the project's own: the kube-scheduler release whose
  formula to reproduce (upstream has no such argument: each release has one formula);
* Trimaran (``apis/config/v1/defaults.go``): ``targetUtilization`` 40, ``defaultRequests``
  cpu 1000m, ``defaultRequestsMultiplier`` "1.5", ``safeVarianceMargin`` 1,
  ``safeVarianceSensitivity`` 1, ``smoothingWindowSize`` 5, ``riskLimitWeights`` 0.5;
* Koordinator ``LoadAwareSchedulingArgs`` (integer ``resourceWeights``,
  ``estimatedScalingFactors`` 0..100, ``dominantResourceWeight``, ``usageThresholds`` 0..100
  where 0 disables the resource).

Strategy weights are integers (like kube-scheduler's plugin and extender weights), so that the
combination is exact integer arithmetic (scoring/README.md).

Every resource name in the policy must be one a node can have (``resource_name_problem``): a
misspelt one (``memroy``) would otherwise match no node and silently switch off what the
policy says about it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeVar, overload

from scoring.types import (
    CPU,
    EPHEMERAL_STORAGE,
    GPU_MILLI,
    MAX_NODE_GPUS,
    MAX_QUANTITY,
    MEMORY,
    PODS,
    TaskType,
)


class PolicyError(ValueError):
    """The policy document is invalid; the message names the field."""


_V = TypeVar("_V")


def _frozen(d: Mapping[str, _V]) -> Mapping[str, _V]:
    return MappingProxyType(dict(d))


# --------------------------------------------------------------------------------------------
# Strategy arguments


@dataclasses.dataclass(frozen=True)
class ResourceWeight:
    name: str
    weight: int


CPU_MEMORY = (ResourceWeight(CPU, 1), ResourceWeight(MEMORY, 1))


@dataclasses.dataclass(frozen=True)
class ResourcesArgs:
    """Args of LeastAllocated and MostAllocated, and the base of BalancedAllocation's
    (kube-scheduler's ``scoringStrategy.resources``; default cpu=1, memory=1)."""

    resources: tuple[ResourceWeight, ...] = CPU_MEMORY


# kube-scheduler releases whose NodeResourcesBalancedAllocation formula BalancedAllocation can
# reproduce (scoring/strategies.py ``balanced_allocation`` has both): v1.36 is the first release
# with kubernetes/kubernetes#135573, which scores the change in balance the pod brings; v1.35 is
# the last with the earlier formula, the balance with the pod only.
BALANCED_FORMULAS = ("v1.36", "v1.35")
# The default is the release config/deploy/deployment.yaml deploys
# (registry.k8s.io/kube-scheduler:v1.36.4): the in-tree plugin beside the extender and the
# extender's BalancedAllocation then give a node the same value.
DEFAULT_BALANCED_FORMULA = "v1.36"


@dataclasses.dataclass(frozen=True)
class BalancedAllocationArgs(ResourcesArgs):
    """Args of BalancedAllocation: ``resources`` (their weights are accepted, as upstream
    accepts them, and unused) and ``formula``, the kube-scheduler release whose formula to
    reproduce (``BALANCED_FORMULAS``). Choosing ``v1.35`` keeps the scores of a cluster whose
    scheduler is not yet on v1.36 (or keeps earlier decisions reproducible)."""

    formula: str = DEFAULT_BALANCED_FORMULA


@dataclasses.dataclass(frozen=True)
class ShapePoint:
    utilization: int  # percent, 0..100
    score: int  # 0..10 (kube-scheduler MaxCustomPriorityScore), scaled x10 when scoring


@dataclasses.dataclass(frozen=True)
class RequestedToCapacityRatioArgs:
    """kube-scheduler ``RequestedToCapacityRatio``: ``resources`` and the broken-line ``shape``."""

    shape: tuple[ShapePoint, ...]
    resources: tuple[ResourceWeight, ...] = CPU_MEMORY


@dataclasses.dataclass(frozen=True)
class LoadAwareArgs:
    """Args of Koordinator's LoadAwareScheduling score (defaults from its v1 defaults.go)."""

    resourceWeights: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: _frozen({CPU: 1, MEMORY: 1})
    )
    estimatedScalingFactors: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: _frozen({CPU: 85, MEMORY: 70})
    )
    dominantResourceWeight: int = 0


@dataclasses.dataclass(frozen=True)
class TargetLoadPackingArgs:
    """Trimaran TargetLoadPacking: pack CPU up to ``targetUtilization`` percent. A container's
    predicted CPU is its limit, else ``request x defaultRequestsMultiplier``, else
    ``defaultRequests.cpu`` (millicores)."""

    targetUtilization: int = 40
    defaultRequestsCpuMillis: float = 1000.0
    defaultRequestsMultiplier: float = 1.5


@dataclasses.dataclass(frozen=True)
class LoadVariationRiskBalancingArgs:
    """Trimaran LoadVariationRiskBalancing: mean + margin-scaled std of usage, cpu and memory."""

    safeVarianceMargin: float = 1.0
    safeVarianceSensitivity: float = 1.0


@dataclasses.dataclass(frozen=True)
class LowRiskOverCommitmentArgs:
    """Trimaran LowRiskOverCommitment: limit risk and Beta-fitted load risk, cpu and memory."""

    smoothingWindowSize: int = 5
    riskLimitWeights: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: _frozen({CPU: 0.5, MEMORY: 0.5})
    )


# The GPU strategies (scoring/gpu.py). Their names and arguments are the project's own: the
# simulator they reproduce (hkust-adsl/kubernetes-scheduler-simulator) configures them in Go.
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
# The share of the observed pods the typical tasks cover, percent: the simulator's experiments
# set podPopularityThreshold 95 (scripts/generate_config_and_run.py); its Go default is 60.
DEFAULT_COVERAGE = 95
MAX_TASK_WEIGHT = 10**9  # a task's weight; with at most MAX_TASKS of them the sum stays < 2**40
MAX_TASKS = 1000  # so that weight x thousandths x GPUs stays exact in int64


@dataclasses.dataclass(frozen=True)
class GPUArgs:
    """Args of GPUBestFit and GPUPacking: ``resource``, the extended resource counting whole
    GPUs, from which the GPU state is derived when the node table has no per-GPU shares."""

    resource: str = DEFAULT_GPU_RESOURCE


@dataclasses.dataclass(frozen=True)
class GPUFragmentationArgs(GPUArgs):
    """Args of GPUFragmentation: ``resource`` as GPUArgs; the target workload, either
    ``typicalTasks`` (the task kinds and their integer weights, as given) or, when none is
    given, the pods the node table says were seen (``NodeTable.task_counts``), the most
    frequent kinds until they cover ``coverage`` percent of them (the simulator's
    ``GetTypicalPods``)."""

    typicalTasks: tuple[TaskType, ...] = ()
    coverage: int = DEFAULT_COVERAGE


StrategyArgs = (
    ResourcesArgs
    | BalancedAllocationArgs
    | RequestedToCapacityRatioArgs
    | LoadAwareArgs
    | TargetLoadPackingArgs
    | LoadVariationRiskBalancingArgs
    | LowRiskOverCommitmentArgs
    | GPUArgs
    | GPUFragmentationArgs
)


@dataclasses.dataclass(frozen=True)
class StrategySpec:
    name: str
    weight: int
    args: StrategyArgs


# --------------------------------------------------------------------------------------------
# Filters, load, score


@dataclasses.dataclass(frozen=True)
class FilterSpec:
    """``resourceFit``: requests (and the pod count) against allocatable minus requested.
    ``usageThresholds``: percent of allocatable per resource, Koordinator semantics (the
    incoming pod's estimated usage included; 0 disables that resource); empty disables the
    filter. Our defaults (cpu 80, memory 90) are less strict on CPU than Koordinator's
    (65, 95): an extender beside the default scheduler should not starve CPU-hungry pods."""

    resourceFit: bool = True
    usageThresholds: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: _frozen({CPU: 80, MEMORY: 90})
    )


FALLBACKS = ("requests", "zero", "reject")


@dataclasses.dataclass(frozen=True)
class LoadSpec:
    """How old load data may be before it counts as stale (an age equal to the limit is stale,
    as Koordinator's ``isNodeMetricExpired``), and what stale or missing data means:
    ``requests`` (score the node with the requests-based strategies only, the default),
    ``zero`` (load strategies score 0) or ``reject`` (the node fails the filter)."""

    staleAfterSeconds: float = 180.0  # Koordinator nodeMetricExpirationSeconds default
    fallback: str = "requests"


@dataclasses.dataclass(frozen=True)
class ScoreSpec:
    """``spread``: stretch the combined scores of the feasible candidates to the full 0..100
    range before mapping to 0..10, so close nodes land on different levels."""

    spread: bool = False


REQUESTS_KIND, LOAD_KIND = "requests", "load"


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
        return DEFAULT_LOAD_AWARE

    @property
    def load_resources(self) -> frozenset[str]:
        """Resources whose measured usage the load strategies and thresholds read: a node
        without a fresh measurement of each has no usable load data."""
        names = set(self.filters.usageThresholds)  # a per-node override may enable a 0
        for s in self.strategies:
            if strategy_kind(s.name) == LOAD_KIND:
                names |= set(LOAD_STRATEGY_RESOURCES.get(s.name, ()))
                if isinstance(s.args, LoadAwareArgs):
                    names |= set(s.args.resourceWeights)
        return frozenset(names)


DEFAULT_LOAD_AWARE = LoadAwareArgs()

# Resources each Trimaran strategy reads (TLP: CPU only; LVRB and LROC: CPU and memory).
LOAD_STRATEGY_RESOURCES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "TargetLoadPacking": (CPU,),
        "LoadVariationRiskBalancing": (CPU, MEMORY),
        "LowRiskOverCommitment": (CPU, MEMORY),
    }
)


# --------------------------------------------------------------------------------------------
# Validation helpers


@overload
def _num(value: Any, path: str, *, lo: float = ..., hi: float = ..., integer: Literal[True]) -> int: ...
@overload
def _num(value: Any, path: str, *, lo: float = ..., hi: float = ..., integer: bool = ...) -> float: ...
def _num(value: Any, path: str, *, lo: float = 0.0, hi: float = math.inf, integer: bool = False) -> float:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyError(f"{path}: must be {kind}, got {value!r}")
    if integer and value != int(value):
        raise PolicyError(f"{path}: must be {kind}, got {value!r}")
    if not lo <= value <= hi:
        bound = f">= {lo:g}" if hi == math.inf else f"in {lo:g}..{hi:g}"
        raise PolicyError(f"{path}: must be {kind} {bound}, got {value!r}")
    return int(value) if integer else float(value)


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


# --------------------------------------------------------------------------------------------
# Resource names


# The unprefixed names a node has: what the kubelet reports (cpu, memory, ephemeral-storage,
# pods, and hugepages-<size>, checked apart).
NODE_STANDARD_RESOURCES: tuple[str, ...] = (CPU, MEMORY, EPHEMERAL_STORAGE, PODS)
HUGEPAGES_PREFIX = "hugepages-"  # v1.ResourceHugePagesPrefix
_NATIVE_NAMESPACE = "kubernetes.io/"  # v1.ResourceDefaultNamespacePrefix
_REQUESTS_PREFIX = "requests."  # v1.DefaultResourceRequestsPrefix, ResourceQuota's spelling
_QUOTA_PREFIXES = (_REQUESTS_PREFIX, "limits.")
# apimachinery validate/content IsLabelKey (alias IsQualifiedName) and IsDNS1123Subdomain;
# used with fullmatch (Go's ^...$ never matches a trailing newline, Python's $ does).
_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_NAME_PART_MAX = 63
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_SUBDOMAIN_MAX = 253
_PAGE_SIZE = re.compile(r"([1-9][0-9]*)(Ki|Mi|Gi|Ti|Pi|Ei)?")
_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_INT64_MAX = 2**63 - 1
_SUGGESTION_CUTOFF = 0.75  # memroy -> memory (0.83), cpus -> cpu (0.86); not gpu -> cpu (0.67)
_WHAT_NODES_HAVE = (
    "a node's resources are cpu, memory, ephemeral-storage, pods, hugepages-<size> "
    "(e.g. hugepages-2Mi) and extended resources named with their domain prefix "
    "(e.g. nvidia.com/gpu)"
)


def _qualified_name_problem(name: str) -> str | None:
    """apimachinery's ``IsQualifiedName``: an optional DNS-1123 subdomain prefix and '/', then
    at most 63 of ``[-A-Za-z0-9_.]`` starting and ending alphanumeric."""
    parts = name.split("/")
    if len(parts) > 2:
        return "a resource name has at most one '/' (domain prefix '/' name)"
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            return "the prefix part before '/' is empty"
        if len(prefix) > _DNS1123_SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN.fullmatch(prefix):
            return (
                f"the prefix part must be a lower-case DNS subdomain of at most "
                f"{_DNS1123_SUBDOMAIN_MAX} characters (e.g. example.com)"
            )
    if not _NAME_PART.fullmatch(parts[-1]) or len(parts[-1]) > _NAME_PART_MAX:
        return (
            f"the name part must be 1..{_NAME_PART_MAX} characters of letters, digits, '-', '_' "
            "and '.', starting and ending with a letter or digit"
        )
    return None


def _canonical_size(size: int) -> str:
    """Go's ``Quantity.String()`` of ``NewQuantity(size, BinarySI)`` for a whole number of KiB
    (apimachinery ``quantity.go``, ``CanonicalizeBytes``): the largest binary suffix that
    divides exactly."""
    exponent = 0
    while size % 1024 == 0 and exponent < len(_BINARY_SUFFIXES) - 1:
        size //= 1024
        exponent += 1
    return f"{size}{_BINARY_SUFFIXES[exponent]}"


def _hugepages_problem(name: str) -> str | None:
    """A ``hugepages-<size>`` name is the kubelet's: ``HugePageResourceName(NewQuantity(bytes,
    BinarySI))`` with the page size cAdvisor reports in KiB, so the size is a whole number of
    KiB in canonical form. Any other spelling of a size (``2048Ki``) is a name no node reports,
    and a size that is no quantity is refused by kube-apiserver too (a container's request for
    it fails ``IsHugePageResourceValueDivisible``)."""
    m = _PAGE_SIZE.fullmatch(name[len(HUGEPAGES_PREFIX) :])
    size = int(m[1]) * 1024 ** _BINARY_SUFFIXES.index(m[2] or "") if m else 0
    if not 0 < size <= _INT64_MAX or size % 1024:
        return (
            f"{name!r} is not a huge page resource: the page size must be a whole number of KiB "
            "with an optional binary suffix, as the kubelet names it (e.g. hugepages-2Mi, "
            "hugepages-1Gi)"
        )
    canonical = HUGEPAGES_PREFIX + _canonical_size(size)
    if canonical != name:
        return f"{name!r} is not how the kubelet names that page size; did you mean {canonical!r}?"
    return None


def _closest_standard(name: str) -> str | None:
    if name.lower() in NODE_STANDARD_RESOURCES:
        return name.lower()
    close = difflib.get_close_matches(name, NODE_STANDARD_RESOURCES, n=1, cutoff=_SUGGESTION_CUTOFF)
    return close[0] if close else None


def _quota_spelling_problem(name: str, prefixes: tuple[str, ...]) -> str | None:
    """``requests.cpu`` and friends are ResourceQuota's names; suggest the node's."""
    for prefix in prefixes:
        rest = name[len(prefix) :]
        if name.startswith(prefix) and rest and resource_name_problem(rest) is None:
            return f"{name!r} is a ResourceQuota spelling, not a node's resource; did you mean {rest!r}?"
    return None


def resource_name_problem(name: str) -> str | None:
    """Why no node can have a resource called ``name``, or None if one can.

    The one rule for every resource name in a policy (usage thresholds, LoadAware's weights and
    scaling factors, the ``resources`` of the kube-scheduler strategies): a name no node has
    matches nothing, so the policy would silently mean less than it says.

    Anchor: kube-apiserver's validation of a container's resource names (the names a pod can
    request, so the ones a node usefully offers) plus ``pods``, as in Kubernetes v1.36 (the
    deployed kube-scheduler is v1.36.4): kubernetes/kubernetes
    ``pkg/apis/core/validation/validation.go`` (``validateResourceName``,
    ``validateContainerResourceName``, ``validateResourceQuantityHugePageValue``),
    ``pkg/apis/core/helper/helpers.go`` (``IsStandardContainerResourceName``,
    ``IsNativeResource``, ``IsExtendedResourceName``, ``IsHugePageResourceName``,
    ``HugePageSizeFromResourceName``), ``pkg/apis/core/v1/helper/helpers.go``
    (``IsScalarResourceName``) and apimachinery ``pkg/api/validate/content/kube.go``
    (``IsLabelKey``, which ``IsQualifiedName`` now is). They were read in recent main-branch
    copies (with PodLevelResources and ``content.IsLabelKey``), not at the v1.36.4 tag itself;
    older copies (release-1.26 era) read beside them have the same rules. A node's own status
    is no guide:
    ``ValidateNodeResources`` checks the quantities of capacity and allocatable, never their
    names, so the names a node "can have" are taken to be those its kubelet, device plugins
    and controllers write and its pods can request.

    * Every name is a qualified name: ``[prefix/]name``, the prefix a lower-case DNS subdomain
      (at most 253), the name 1..63 of ``[-A-Za-z0-9_.]`` starting and ending alphanumeric.
    * Without a prefix (the kubernetes.io namespace): ``cpu``, ``memory``,
      ``ephemeral-storage`` (``IsStandardContainerResourceName``), ``pods`` (every node's
      allocatable; no container requests it) and ``hugepages-<size>`` with the size as the
      kubelet writes it (``_hugepages_problem``). Not ``storage`` and the ``requests.*`` /
      ``limits.*`` names, which ``IsStandardResourceName`` admits for volume claims and quotas
      but no node has, nor ``attachable-volumes-*``, which no pod can request and the kubelet
      no longer reports (kubernetes PR #126924; CSINode holds volume limits).
    * With a ``kubernetes.io/`` in the prefix (``IsNativeResource``): accepted, as
      kube-apiserver accepts them in a container and kube-scheduler counts them on a node
      (``IsPrefixedNativeResource`` in ``IsScalarResourceName``); Koordinator's colocation
      resources are such names (``kubernetes.io/batch-cpu``, ``kubernetes.io/batch-memory``).
    * Any other prefix is an extended resource (``IsExtendedResourceName``): not starting with
      ``requests.``, and ``requests.<name>`` must itself be a qualified name (so the prefix has
      at most 244 characters).
    """
    if "/" not in name and name.startswith(HUGEPAGES_PREFIX):
        return _hugepages_problem(name)
    syntax = _qualified_name_problem(name)
    if syntax is not None:
        return f"{name!r} is not a valid resource name: {syntax}"
    if "/" not in name:
        if name in NODE_STANDARD_RESOURCES:
            return None
        quota = _quota_spelling_problem(name, _QUOTA_PREFIXES)
        if quota is not None:
            return quota
        closest = _closest_standard(name)
        hint = f" (did you mean {closest!r}?)" if closest else ""
        return f"{name!r} is not a resource of nodes{hint}: {_WHAT_NODES_HAVE}"
    if _NATIVE_NAMESPACE in name:
        return None
    quota = _quota_spelling_problem(name, (_REQUESTS_PREFIX,))
    if quota is not None:
        return quota
    if name.startswith(_REQUESTS_PREFIX):
        return f"{name!r} is not an extended resource name: it must not start with {_REQUESTS_PREFIX!r}"
    if _qualified_name_problem(_REQUESTS_PREFIX + name) is not None:
        return (
            f"{name!r} is not an extended resource name: the prefix part is too long for "
            f"{_REQUESTS_PREFIX!r} + the name to be a qualified name (at most "
            f"{_DNS1123_SUBDOMAIN_MAX - len(_REQUESTS_PREFIX)} characters)"
        )
    return None


def _resource_name(name: Any, path: str) -> str:
    """``name`` if a node can have that resource, else PolicyError naming ``path``."""
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{path}: a resource name must be a non-empty string, got {name!r}")
    problem = resource_name_problem(name)
    if problem is not None:
        raise PolicyError(f"{path}: {problem}")
    return name


@overload
def _resource_map(
    value: Any,
    path: str,
    *,
    hi: float = ...,
    integer: Literal[True] = ...,
    allowed: tuple[str, ...] | None = ...,
) -> Mapping[str, int]: ...
@overload
def _resource_map(
    value: Any, path: str, *, hi: float = ..., integer: bool, allowed: tuple[str, ...] | None = ...
) -> Mapping[str, float]: ...
def _resource_map(
    value: Any,
    path: str,
    *,
    hi: float = math.inf,
    integer: bool = True,
    allowed: tuple[str, ...] | None = None,
) -> Mapping[str, float]:
    out: dict[str, float] = {}
    for name, v in _mapping(value, path, allowed).items():
        if not isinstance(name, str) or not name:
            _resource_name(name, path)
        # a key with a newline or tab is quoted, so that the error stays one line
        _resource_name(name, f"{path}.{name if name.isprintable() else repr(name)}")
        out[name] = _num(v, f"{path}.{name}", hi=hi, integer=integer)
    return _frozen(out)


def _resource_list(raw: Mapping[str, Any], path: str) -> tuple[ResourceWeight, ...]:
    if "resources" not in raw:
        return CPU_MEMORY
    items = raw["resources"]
    if not isinstance(items, list) or not items:
        raise PolicyError(f"{path}.resources: must be a non-empty list of {{name, weight}}")
    out: list[ResourceWeight] = []
    for i, item in enumerate(items):
        p = f"{path}.resources[{i}]"
        item = _mapping(item, p, ("name", "weight"))
        name = _resource_name(item.get("name"), f"{p}.name")
        if any(r.name == name for r in out):
            raise PolicyError(f"{p}.name: duplicate resource {name!r}")
        # kube-scheduler ValidateNodeResourcesFitArgs: weight in 1..100
        out.append(
            ResourceWeight(name, _num(item.get("weight", 1), f"{p}.weight", lo=1, hi=100, integer=True))
        )
    return tuple(out)


def _resources_args(raw: Any, path: str) -> ResourcesArgs:
    raw = _mapping(raw, path, ("resources",))
    return ResourcesArgs(_resource_list(raw, path))


def _balanced_args(raw: Any, path: str) -> BalancedAllocationArgs:
    raw = _mapping(raw, path, ("resources", "formula"))
    formula = raw.get("formula", DEFAULT_BALANCED_FORMULA)
    if formula not in BALANCED_FORMULAS:  # a YAML 1.35 is the float 1.35: named, not accepted
        raise PolicyError(
            f"{path}.formula: must be one of {', '.join(BALANCED_FORMULAS)} (the "
            f"kube-scheduler release whose BalancedAllocation to reproduce), got {formula!r}"
        )
    return BalancedAllocationArgs(_resource_list(raw, path), formula)


def _rtcr_args(raw: Any, path: str) -> RequestedToCapacityRatioArgs:
    raw = _mapping(raw, path, ("resources", "shape"))
    shape = raw.get("shape")
    if not isinstance(shape, list) or not shape:
        raise PolicyError(f"{path}.shape: must be a non-empty list of {{utilization, score}}")
    points: list[ShapePoint] = []
    for i, item in enumerate(shape):
        p = f"{path}.shape[{i}]"
        item = _mapping(item, p, ("utilization", "score"))
        for key in ("utilization", "score"):
            if key not in item:
                raise PolicyError(f"{p}.{key}: required")
        u = _num(item["utilization"], f"{p}.utilization", hi=100, integer=True)
        s = _num(item["score"], f"{p}.score", hi=10, integer=True)
        if points and u <= points[-1].utilization:
            raise PolicyError(
                f"{p}.utilization: must be greater than the previous point's "
                f"({points[-1].utilization}); shape must increase in utilization"
            )
        points.append(ShapePoint(u, s))
    return RequestedToCapacityRatioArgs(tuple(points), _resource_list(raw, path))


def _load_aware_args(raw: Any, path: str) -> LoadAwareArgs:
    raw = _mapping(raw, path, ("resourceWeights", "estimatedScalingFactors", "dominantResourceWeight"))
    d = DEFAULT_LOAD_AWARE
    weights = (
        _resource_map(raw["resourceWeights"], f"{path}.resourceWeights")
        if "resourceWeights" in raw
        else d.resourceWeights
    )
    if not weights or sum(weights.values()) <= 0:
        raise PolicyError(f"{path}.resourceWeights: at least one weight must be > 0")
    factors = dict(d.estimatedScalingFactors)
    factors.update(
        _resource_map(raw.get("estimatedScalingFactors"), f"{path}.estimatedScalingFactors", hi=100)
    )
    dominant = _num(raw.get("dominantResourceWeight", 0), f"{path}.dominantResourceWeight", integer=True)
    return LoadAwareArgs(weights, _frozen(factors), dominant)


_CPU_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")


def _cpu_millis(value: Any, path: str) -> float:
    """A CPU quantity as in a ResourceList (``"1000m"``, ``"1"``, ``0.5``) in millicores."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _num(value, path) * 1000.0
    m = _CPU_QUANTITY.match(value) if isinstance(value, str) else None
    if m is None:
        raise PolicyError(f'{path}: must be a CPU quantity such as "1000m" or "1", got {value!r}')
    return float(m.group(1)) * (1.0 if m.group(2) else 1000.0)


def _tlp_args(raw: Any, path: str) -> TargetLoadPackingArgs:
    raw = _mapping(raw, path, ("targetUtilization", "defaultRequests", "defaultRequestsMultiplier"))
    d = TargetLoadPackingArgs()
    target = _num(
        raw.get("targetUtilization", d.targetUtilization),
        f"{path}.targetUtilization",
        lo=1,
        hi=100,
        integer=True,
    )
    defaults = _mapping(raw.get("defaultRequests"), f"{path}.defaultRequests", ("cpu",))
    cpu = (
        _cpu_millis(defaults["cpu"], f"{path}.defaultRequests.cpu")
        if "cpu" in defaults
        else d.defaultRequestsCpuMillis
    )
    mult = raw.get("defaultRequestsMultiplier", d.defaultRequestsMultiplier)
    if isinstance(mult, str):  # upstream's type is a string ("1.5")
        try:
            mult = float(mult)
        except ValueError:
            raise PolicyError(f"{path}.defaultRequestsMultiplier: must be a number, got {mult!r}") from None
    mult = _num(mult, f"{path}.defaultRequestsMultiplier", lo=1e-9)
    return TargetLoadPackingArgs(target, cpu, mult)


def _lvrb_args(raw: Any, path: str) -> LoadVariationRiskBalancingArgs:
    raw = _mapping(raw, path, ("safeVarianceMargin", "safeVarianceSensitivity"))
    d = LoadVariationRiskBalancingArgs()
    return LoadVariationRiskBalancingArgs(
        _num(raw.get("safeVarianceMargin", d.safeVarianceMargin), f"{path}.safeVarianceMargin"),
        _num(
            raw.get("safeVarianceSensitivity", d.safeVarianceSensitivity),
            f"{path}.safeVarianceSensitivity",
            lo=1e-9,
        ),
    )


def _lroc_args(raw: Any, path: str) -> LowRiskOverCommitmentArgs:
    raw = _mapping(raw, path, ("smoothingWindowSize", "riskLimitWeights"))
    d = LowRiskOverCommitmentArgs()
    window = _num(
        raw.get("smoothingWindowSize", d.smoothingWindowSize),
        f"{path}.smoothingWindowSize",
        lo=1,
        integer=True,
    )
    weights = dict(d.riskLimitWeights)
    weights.update(
        _resource_map(
            raw.get("riskLimitWeights"),
            f"{path}.riskLimitWeights",
            hi=1,
            integer=False,
            allowed=(CPU, MEMORY),
        )
    )
    return LowRiskOverCommitmentArgs(window, _frozen(weights))


def _gpu_resource(raw: Mapping[str, Any], path: str) -> str:
    name = _resource_name(raw.get("resource", DEFAULT_GPU_RESOURCE), f"{path}.resource")
    if "/" not in name:
        raise PolicyError(
            f"{path}.resource: must be the extended resource that counts a node's whole GPUs "
            f"(e.g. {DEFAULT_GPU_RESOURCE}), got {name!r}"
        )
    return name


def _gpu_args(raw: Any, path: str) -> GPUArgs:
    raw = _mapping(raw, path, ("resource",))
    return GPUArgs(_gpu_resource(raw, path))


_TASK_FIELDS = ("cpu", "gpus", "gpuMilli", "weight")


def _task(raw: Any, path: str) -> TaskType:
    raw = _mapping(raw, path, _TASK_FIELDS)
    for key in ("cpu", "gpus"):
        if key not in raw:
            raise PolicyError(f"{path}.{key}: required")
    cpu = _cpu_millis(raw["cpu"], f"{path}.cpu")
    if cpu != math.floor(cpu) or cpu > MAX_QUANTITY:
        raise PolicyError(f"{path}.cpu: must be a whole number of millicores, got {raw['cpu']!r}")
    gpus = _num(raw["gpus"], f"{path}.gpus", hi=MAX_NODE_GPUS, integer=True)
    if gpus == 0:
        milli = _num(raw.get("gpuMilli", 0), f"{path}.gpuMilli", hi=0, integer=True)
    else:
        milli = _num(raw.get("gpuMilli", GPU_MILLI), f"{path}.gpuMilli", lo=1, hi=GPU_MILLI, integer=True)
        if gpus > 1 and milli != GPU_MILLI:
            raise PolicyError(
                f"{path}.gpuMilli: a share of a GPU ({milli} thousandths) is for one GPU only; "
                f"a task with {gpus} GPUs takes them whole ({GPU_MILLI})"
            )
    weight = _num(raw.get("weight", 1), f"{path}.weight", lo=1, hi=MAX_TASK_WEIGHT, integer=True)
    return TaskType(int(cpu), gpus, milli, weight)


def _gpu_fragmentation_args(raw: Any, path: str) -> GPUFragmentationArgs:
    raw = _mapping(raw, path, ("resource", "typicalTasks", "coverage"))
    resource = _gpu_resource(raw, path)
    tasks: list[TaskType] = []
    if "typicalTasks" in raw:
        items = raw["typicalTasks"]
        if not isinstance(items, list) or not items:
            raise PolicyError(
                f"{path}.typicalTasks: must be a non-empty list of {{cpu, gpus, gpuMilli, weight}} "
                "(leave it out to take the typical tasks from the pods seen)"
            )
        if len(items) > MAX_TASKS:
            raise PolicyError(f"{path}.typicalTasks: at most {MAX_TASKS} task kinds, got {len(items)}")
        if "coverage" in raw:
            raise PolicyError(
                f"{path}.coverage: picks the typical tasks among the pods seen; with typicalTasks "
                "given it would do nothing (remove one of the two)"
            )
        for i, item in enumerate(items):
            task = _task(item, f"{path}.typicalTasks[{i}]")
            if any(t.spec == task.spec for t in tasks):
                raise PolicyError(
                    f"{path}.typicalTasks[{i}]: the same kind (cpu {task.cpu}m, {task.gpus} GPUs of "
                    f"{task.milli} thousandths) is listed twice; give it one weight"
                )
            tasks.append(task)
    coverage = _num(raw.get("coverage", DEFAULT_COVERAGE), f"{path}.coverage", lo=1, hi=100, integer=True)
    return GPUFragmentationArgs(resource, tuple(tasks), coverage)


# Strategy name -> (kind, args parser). "requests" strategies need only what is allocated
# (requests; the GPU strategies also the GPU state); "load" strategies need fresh measured usage
# and fall back per LoadSpec.
STRATEGIES: Mapping[str, tuple[str, Callable[[Any, str], StrategyArgs]]] = MappingProxyType(
    {
        "LeastAllocated": (REQUESTS_KIND, _resources_args),
        "MostAllocated": (REQUESTS_KIND, _resources_args),
        "RequestedToCapacityRatio": (REQUESTS_KIND, _rtcr_args),
        "BalancedAllocation": (REQUESTS_KIND, _balanced_args),
        "LoadAware": (LOAD_KIND, _load_aware_args),
        "TargetLoadPacking": (LOAD_KIND, _tlp_args),
        "LoadVariationRiskBalancing": (LOAD_KIND, _lvrb_args),
        "LowRiskOverCommitment": (LOAD_KIND, _lroc_args),
        "GPUFragmentation": (REQUESTS_KIND, _gpu_fragmentation_args),
        "GPUBestFit": (REQUESTS_KIND, _gpu_args),
        "GPUPacking": (REQUESTS_KIND, _gpu_args),
    }
)

MAX_STRATEGY_WEIGHT = 100


def strategy_kind(name: str) -> str:
    return STRATEGIES[name][0]


def _strategies(raw: Any) -> tuple[StrategySpec, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise PolicyError("strategies: must be a non-empty list of {name, weight, args}")
    out: list[StrategySpec] = []
    for i, item in enumerate(raw):
        p = f"strategies[{i}]"
        item = _mapping(item, p, ("name", "weight", "args"))
        name = item.get("name")
        if not isinstance(name, str) or name not in STRATEGIES:
            raise PolicyError(f"{p}.name: unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
        if any(s.name == name for s in out):
            raise PolicyError(f"{p}.name: strategy {name!r} listed twice")
        weight = _num(item.get("weight", 1), f"{p}.weight", hi=MAX_STRATEGY_WEIGHT, integer=True)
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
    thresholds = (
        _resource_map(f["usageThresholds"], "filters.usageThresholds", hi=100)
        if "usageThresholds" in f
        else FilterSpec().usageThresholds
    )
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
