"""What a pod asks for, computed the way kube-scheduler v1.36 computes it.

Sources (kubernetes/kubernetes). The release-1.36 copy of the helper is not in the stored
index: the rules below are read from the stored versions around it (an earlier one with
``determineContainerReqs`` and no pod-level status; two commits, 155ee470 and 84c2dea2, that
quote the code of the time with the pod-level status added; master after PR #140047), dated by
``CHANGELOG/CHANGELOG-1.36.md`` and the feature gates (``pkg/features/kube_features.go``):

* ``staging/src/k8s.io/component-helpers/resource/helpers.go`` ``PodRequests`` /
  ``PodLimits``: the sum over the containers, against the largest init container, where
  restartable ("sidecar") init containers run alongside everything after them (KEP-753).
  Pod-level ``spec.resources`` (PodLevelResources, beta and on since 1.34) then *replaces* the
  aggregate, but only for the names it sets that are supported at pod level (cpu, memory,
  ``hugepages-*``: ``IsSupportedPodLevelResource``); pod-level requests count when one
  supported name is in ``requests`` (``IsPodLevelRequestsSet``), pod-level limits when one is
  in ``requests`` or ``limits`` (``IsPodLevelResourcesSet``). ``spec.overhead`` is added on top
  of every request, but only to a limit that is set and non-zero.
* In-place resize (``UseStatusResources``; InPlacePodVerticalScaling, GA and locked since
  1.35): a container whose ``status.containerStatuses[]`` entry (matched by name, init
  statuses included) has ``resources`` counts ``max(spec, status.resources.requests,
  status.allocatedResources)`` per container, or ``max(status.resources.requests,
  allocatedResources)`` when the pod's ``PodResizePending`` condition says ``Infeasible``;
  limits ``max(spec, status.resources.limits)`` (infeasible: the status's). Among init
  containers only sidecars read their status. Deferred and in-progress resizes are not told
  apart: the max covers both. ``status.resize`` is not read (the conditions replaced it).
  This is the per-container max: the max-of-sums form of kubernetes PR #140047 (issue #140046)
  merged after 1.36.0, and no 1.36 backport was found.
* Pod-level resize (``InPlacePodLevelResourcesVerticalScalingEnabled``; beta and on in 1.36,
  #137684): with ``status.resources`` present, each pod-level name takes
  ``max(spec.resources, status.resources, status.allocatedResources)`` (infeasible: without
  the spec; limits without allocated). Overhead is still added on top, although the kubelet's
  pod-level status already includes it (issue #139627; the fix #140481 is not in 1.36).

Which options the scheduler passes, per call site:

* A pod on a node (``pkg/scheduler/framework/types.go`` ``PodInfo.CalculateResource``, what
  ``NodeInfo.Requested`` / ``NonZeroRequested`` sum): status and pod-level status both read.
  Its non-zero requests (``getNonMissingContainerRequests``) give a container without a CPU or
  memory request ``DefaultMilliCPURequest`` 100m / ``DefaultMemoryRequest`` 200 MiB
  (``pkg/scheduler/util/pod_resources.go``), except that a pod with pod-level requests gets a
  default only for cpu / memory absent from its requests altogether.
* The pod being scheduled: NodeResourcesFit's PreFilter (``plugins/noderesources/fit.go``
  ``computePodResourceRequest``) reads the spec only; the scoring plugins' non-zero requests
  (``resource_allocation.go`` ``calculatePodResourceRequest``) pass ``UseStatusResources`` but
  not the pod-level status flag, and always give the per-container defaults (pod-level values
  then replace what they set).

The limits of a pod follow ``PodLimits`` with the options of its requests (the scheduler's
default plugins read no limits; the load-aware strategies do).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import numpy as np

from extender.kube.objects import (
    BadRequest,
    Container,
    ContainerStatus,
    Pod,
    ResourceList,
    ResourceRequirements,
)
from extender.kube.quantity import QuantityError, base_units, cpu_millis
from scoring import CPU, MEMORY, PODS, PodDemand
from scoring.types import MAX_QUANTITY

DEFAULT_MILLI_CPU_REQUEST = 100.0  # kube-scheduler pkg/scheduler/util DefaultMilliCPURequest
DEFAULT_MEMORY_REQUEST = 200.0 * 1024 * 1024  # kube-scheduler DefaultMemoryRequest (200 MiB)
SIDECAR_RESTART_POLICY = "Always"  # an init container with restartPolicy Always is a sidecar
HUGEPAGES_PREFIX = "hugepages-"  # k8s.io/api core/v1 ResourceHugePagesPrefix
RESIZE_PENDING = "PodResizePending"  # core/v1 PodResizePending condition type
RESIZE_INFEASIBLE = "Infeasible"  # core/v1 PodReasonInfeasible


def to_units(resource: str) -> Callable[[str | int | float], float]:
    """The converter of a resource: CPU in millicores, everything else in base units."""
    return cpu_millis if resource == CPU else base_units


def nonnegative(
    convert: Callable[[str | int | float], float],
    value: str | int | float,
    where: str,
    error: type[Exception],
) -> float:
    """``convert(value)``; ``error`` naming ``where`` for an invalid or negative quantity."""
    try:
        amount = convert(value)
    except QuantityError as exc:
        raise error(f"{where}: {exc}") from None
    if amount < 0:
        raise error(f"{where}: negative quantity {value!r}")
    if amount > MAX_QUANTITY:
        raise error(
            f"{where}: quantity {value!r} is absurd (more than {MAX_QUANTITY} "
            f"{'millicores' if convert is cpu_millis else 'units'})"
        )
    return amount


def _amounts(resources: tuple[str, ...], values: ResourceList | None, where: str) -> list[float]:
    # Plain lists, not numpy: a handful of resources per container, where numpy's per-call
    # overhead would dominate (every incoming pod's per-container values go through here).
    if not values:
        return [0.0] * len(resources)
    return [
        nonnegative(to_units(name), v, f"{where}.{name}", BadRequest)
        if (v := values.get(name)) is not None
        else 0.0
        for name in resources
    ]


def _container_amounts(resources: tuple[str, ...], c: Container, where: str, *, limits: bool) -> list[float]:
    res = c.resources
    values = (res.limits if limits else res.requests) if res is not None else None
    return _amounts(resources, values, f"{where}.resources.{'limits' if limits else 'requests'}")


# --- PodRequests / PodLimits ------------------------------------------------------------------
#
# A ResourceList is a dict name -> amount in our units. Presence matters as in Go's maps: a
# container that names cpu, even at 0, keeps its own value against the non-zero default, and
# overhead is added only to a limit present and non-zero. None stands for a nil list (a field
# left out), which some rules tell apart from an empty one.

RList = dict[str, float]


@dataclasses.dataclass(frozen=True)
class Options:
    """The ``PodResourcesOptions`` a call site passes (pod-level resources are never skipped:
    PodLevelResources is on in 1.36; overhead is never excluded)."""

    use_status: bool  # UseStatusResources (InPlacePodVerticalScaling)
    pod_level_status: bool  # InPlacePodLevelResourcesVerticalScalingEnabled


SPEC_ONLY = Options(use_status=False, pod_level_status=False)  # Fit PreFilter, incoming pod
SCORING = Options(use_status=True, pod_level_status=False)  # resource_allocation.go, incoming pod
ON_NODE = Options(use_status=True, pod_level_status=True)  # PodInfo.CalculateResource

_NON_MISSING: RList = {CPU: DEFAULT_MILLI_CPU_REQUEST, MEMORY: DEFAULT_MEMORY_REQUEST}


def is_pod_level_resource(name: str) -> bool:
    """``IsSupportedPodLevelResource``: cpu, memory and every ``hugepages-*``."""
    return name in (CPU, MEMORY) or name.startswith(HUGEPAGES_PREFIX)


def _pod_level_requests_set(pod: Pod) -> bool:
    """``IsPodLevelRequestsSet``: a supported name in ``spec.resources.requests``."""
    res = pod.spec.resources if pod.spec is not None else None
    return res is not None and any(is_pod_level_resource(n) for n in res.requests or ())


def _pod_level_resources_set(pod: Pod) -> bool:
    """``IsPodLevelResourcesSet``: a supported name in its requests or its limits."""
    res = pod.spec.resources if pod.spec is not None else None
    names = (*(res.requests or ()), *(res.limits or ())) if res is not None else ()
    return any(is_pod_level_resource(n) for n in names)


def resize_infeasible(pod: Pod) -> bool:
    """``IsPodResizeInfeasible``: the first ``PodResizePending`` condition has reason
    ``Infeasible`` (its status is not read, as upstream)."""
    for cond in (pod.status.conditions if pod.status is not None else None) or ():
        if cond.type == RESIZE_PENDING:
            return cond.reason == RESIZE_INFEASIBLE
    return False


class _Reader:
    """Parses the resource lists of one pod on the resource axis, naming the field of a bad
    quantity (BadRequest), each list once."""

    def __init__(self, axis: tuple[str, ...]) -> None:
        self.axis_names = frozenset(axis)
        self._memo: dict[str, RList] = {}

    def read(self, values: ResourceList | None, where: str) -> RList | None:
        if values is None:
            return None
        got = self._memo.get(where)
        if got is None:
            got = {
                name: nonnegative(to_units(name), v, f"{where}.{name}", BadRequest)
                for name, v in values.items()
                if name in self.axis_names
            }
            self._memo[where] = got
        return got

    def requirements(self, res: ResourceRequirements | None, where: str, *, limits: bool) -> RList | None:
        if res is None:
            return None
        field = "limits" if limits else "requests"
        return self.read(res.limits if limits else res.requests, f"{where}.{field}")


def _add_into(acc: RList, other: RList | None) -> None:
    for name, v in (other or {}).items():
        acc[name] = acc.get(name, 0.0) + v


def _max_into(acc: RList, other: RList | None) -> None:
    for name, v in (other or {}).items():
        if name not in acc or v > acc[name]:
            acc[name] = v


def _max(*lists: RList | None) -> RList:
    out: RList = {}
    for values in lists:
        _max_into(out, values)
    return out


def _effective(
    infeasible: bool, spec: RList | None, actuated: RList | None, allocated: RList | None, *, limits: bool
) -> RList:
    """``determineEffectiveRequests`` / ``...Limits``: the largest of what is desired,
    actuated and admitted; an infeasible resize leaves the desired values out (limits have no
    admitted values)."""
    if limits:
        return dict(actuated or {}) if infeasible else _max(spec, actuated)
    return _max(actuated, allocated) if infeasible else _max(spec, actuated, allocated)


def _statuses(pod: Pod) -> dict[str, tuple[ContainerStatus, str]]:
    """Container statuses by name, app then init (a later one wins, as Go's map does)."""
    out: dict[str, tuple[ContainerStatus, str]] = {}
    status = pod.status
    if status is None:
        return out
    for field in ("containerStatuses", "initContainerStatuses"):
        for i, cs in enumerate(getattr(status, field) or ()):
            out[cs.name] = (cs, f"Pod.status.{field}[{i}]")
    return out


def _container_list(
    r: _Reader,
    c: Container,
    where: str,
    found: tuple[ContainerStatus, str] | None,
    infeasible: bool,
    *,
    limits: bool,
) -> RList | None:
    """One container's requests or limits, from its status when it has ``resources``."""
    spec = r.requirements(c.resources, f"{where}.resources", limits=limits)
    if found is None or found[0].resources is None:
        return spec
    cs, at = found
    actuated = r.requirements(cs.resources, f"{at}.resources", limits=limits)
    allocated = None if limits else r.read(cs.allocatedResources, f"{at}.allocatedResources")
    return _effective(infeasible, spec, actuated, allocated, limits=limits)


def _with_defaults(values: RList | None, non_missing: RList) -> RList:
    """``applyNonMissing``: the defaults for the names the list does not name."""
    out = dict(values or {})
    for name, v in non_missing.items():
        if name not in out:
            out[name] = v
    return out


def _aggregate(r: _Reader, pod: Pod, opts: Options, *, limits: bool, non_missing: RList | None) -> RList:
    """``AggregateContainerRequests`` / ``AggregateContainerLimits``: the containers' sum,
    sidecars running beside the containers and the init containers after them, against the
    largest init container."""
    spec = pod.spec
    if spec is None:
        return {}
    statuses = _statuses(pod) if opts.use_status else {}
    infeasible = opts.use_status and resize_infeasible(pod)
    total: RList = {}
    for i, c in enumerate(spec.containers or ()):
        values = _container_list(
            r, c, f"Pod.spec.containers[{i}]", statuses.get(c.name), infeasible, limits=limits
        )
        _add_into(total, _with_defaults(values, non_missing) if non_missing else values)
    sidecars: RList = {}
    init_max: RList = {}
    for i, c in enumerate(spec.initContainers or ()):
        sidecar = c.restartPolicy == SIDECAR_RESTART_POLICY
        found = statuses.get(c.name) if sidecar else None  # only sidecars read their status
        values = _container_list(r, c, f"Pod.spec.initContainers[{i}]", found, infeasible, limits=limits)
        if non_missing:
            values = _with_defaults(values, non_missing)
        if sidecar:
            _add_into(total, values)
            _add_into(sidecars, values)
            _max_into(init_max, sidecars)
        else:
            running = dict(values or {})
            _add_into(running, sidecars)
            _max_into(init_max, running)
    _max_into(total, init_max)
    return total


def _pod_level(r: _Reader, pod: Pod, opts: Options, out: RList, *, limits: bool) -> None:
    """Replace the aggregate by the pod-level values, for the supported names set there."""
    spec_res = pod.spec.resources if pod.spec is not None else None
    if spec_res is None:
        return
    desired = r.requirements(spec_res, "Pod.spec.resources", limits=limits)
    named = spec_res.limits if limits else spec_res.requests
    status = pod.status
    effective = None
    if opts.use_status and opts.pod_level_status and status is not None and status.resources is not None:
        actuated = r.requirements(status.resources, "Pod.status.resources", limits=limits)
        allocated = None if limits else r.read(status.allocatedResources, "Pod.status.allocatedResources")
        effective = _effective(resize_infeasible(pod), desired, actuated, allocated, limits=limits)
    for name in named or ():
        if is_pod_level_resource(name) and name in r.axis_names:
            out[name] = effective.get(name, 0.0) if effective is not None else (desired or {})[name]


def pod_requests(r: _Reader, pod: Pod, opts: Options, non_missing: RList | None = None) -> RList:
    """``PodRequests``: the aggregate, pod-level requests where set, plus the overhead."""
    out = _aggregate(r, pod, opts, limits=False, non_missing=non_missing)
    if _pod_level_requests_set(pod):
        _pod_level(r, pod, opts, out, limits=False)
    _add_into(out, r.read(pod.spec.overhead if pod.spec is not None else None, "Pod.spec.overhead"))
    return out


def pod_limits(r: _Reader, pod: Pod, opts: Options) -> RList:
    """``PodLimits``: the aggregate, pod-level limits where set, plus the overhead on every
    limit that is set and non-zero (a missing limit means none, and stays 0)."""
    out = _aggregate(r, pod, opts, limits=True, non_missing=None)
    if _pod_level_resources_set(pod):
        _pod_level(r, pod, opts, out, limits=True)
    overhead = r.read(pod.spec.overhead if pod.spec is not None else None, "Pod.spec.overhead")
    for name, v in (overhead or {}).items():
        if out.get(name):
            out[name] += v
    return out


def _requirements_key(res: ResourceRequirements | None) -> object:
    if res is None:
        return None
    return (
        None if res.requests is None else tuple(res.requests.items()),
        None if res.limits is None else tuple(res.limits.items()),
    )


def _list_key(values: ResourceList | None) -> object:
    return None if values is None else tuple(values.items())


def _moving(c: Container, cs: ContainerStatus | None) -> tuple[object, ...] | None:
    """The key of a container status that can change what ``c`` counts, or None. A status
    without ``resources`` is not read; one that repeats the spec (actuated requests and limits
    equal to the spec's, admitted requests equal or absent: every running container between
    resizes) counts exactly as the spec does, infeasible or not, so it is left out and such
    pods share their template's key."""
    if cs is None or cs.resources is None:
        return None
    spec = c.resources
    requests, limits = (spec.requests, spec.limits) if spec is not None else (None, None)
    if (
        cs.resources.requests == requests
        and cs.resources.limits == limits
        and (cs.allocatedResources is None or cs.allocatedResources == requests)
    ):
        return None
    return (c.name, _requirements_key(cs.resources), _list_key(cs.allocatedResources))


def accounting_key(pod: Pod) -> tuple[object, ...]:
    """Everything the accounting of a pod on a node (``pod_demand(..., assigned=True)``)
    depends on: the containers' and init containers' names, resources and restart policy, the
    overhead and the pod-level resources; during an in-place resize also the statuses that
    differ from the spec (container ``resources`` / ``allocatedResources`` of the containers
    and sidecars; pod-level ``status.resources`` / ``allocatedResources`` when pod-level
    resources are set) and whether the resize is infeasible. Pods of one template in the same
    state share it, so the cluster cache computes their accounting once; a resize changes it,
    so the pod's accounting is computed anew. Cheap on purpose: it runs on every pod event."""
    spec, status = pod.spec, pod.status
    if spec is None:
        return ()
    key: tuple[object, ...] = (
        tuple((c.name, _requirements_key(c.resources)) for c in spec.containers or ()),
        tuple((c.name, _requirements_key(c.resources), c.restartPolicy) for c in spec.initContainers or ()),
        _list_key(spec.overhead),
        _requirements_key(spec.resources),
    )
    if status is None:
        return key
    moving = []
    if status.containerStatuses or status.initContainerStatuses:
        by_name = {cs.name: cs for cs in status.containerStatuses or ()}  # as _statuses, without paths
        by_name.update((cs.name, cs) for cs in status.initContainerStatuses or ())
        for c in spec.containers or ():
            if (m := _moving(c, by_name.get(c.name))) is not None:
                moving.append(m)
        for c in spec.initContainers or ():
            if (
                c.restartPolicy == SIDECAR_RESTART_POLICY
                and (m := _moving(c, by_name.get(c.name))) is not None
            ):
                moving.append(m)
    pod_level = None
    if spec.resources is not None and status.resources is not None:
        pod_level = (_requirements_key(status.resources), _list_key(status.allocatedResources))
    if not moving and pod_level is None:
        return key
    return (*key, tuple(moving), pod_level, resize_infeasible(pod))


def requested_resources(pod: Pod, base: Iterable[str] = (CPU, MEMORY, PODS)) -> tuple[str, ...]:
    """The resource axis for this pod: the base resources, then every other resource its
    containers, its pod-level resources or its overhead name, in first-seen order (a resize
    cannot add a name: only cpu and memory are resizable)."""
    names = list(base)
    spec = pod.spec
    if spec is None:
        return tuple(names)
    lists = [
        values
        for c in (spec.containers or []) + (spec.initContainers or [])
        if c.resources
        for values in (c.resources.requests, c.resources.limits)
    ]
    if spec.resources is not None:
        lists += [spec.resources.requests, spec.resources.limits]
    lists.append(spec.overhead)
    for values in lists:
        for name in values or ():
            if name not in names:
                names.append(name)
    return tuple(names)


def _qos(pod: Pod, requests: np.ndarray, limits: np.ndarray) -> str:
    """QoS class (``pkg/apis/core/v1/helper/qos``): status.qosClass when the API server set it."""
    if pod.status is not None and pod.status.qosClass in ("Guaranteed", "Burstable", "BestEffort"):
        return pod.status.qosClass
    spec = pod.spec
    containers = ((spec.containers or []) + (spec.initContainers or [])) if spec else []
    any_set, guaranteed = False, bool(containers)
    for c in containers:
        req = (c.resources.requests if c.resources else None) or {}
        lim = (c.resources.limits if c.resources else None) or {}
        if any(k in req or k in lim for k in (CPU, MEMORY)):
            any_set = True
        for k in (CPU, MEMORY):
            if k not in lim or (k in req and to_units(k)(req[k]) != to_units(k)(lim[k])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _per_container(resources: tuple[str, ...], pod: Pod) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C, R) requests and limits of the app containers (at least one row) and (R,) overhead,
    for strategies that predict usage container by container (Trimaran TargetLoadPacking)."""
    spec = pod.spec
    containers = (spec.containers or []) if spec else []
    req = [
        _container_amounts(resources, c, f"Pod.spec.containers[{i}]", limits=False)
        for i, c in enumerate(containers)
    ] or [[0.0] * len(resources)]
    lim = [
        _container_amounts(resources, c, f"Pod.spec.containers[{i}]", limits=True)
        for i, c in enumerate(containers)
    ] or [[0.0] * len(resources)]
    overhead = _amounts(resources, spec.overhead if spec else None, "Pod.spec.overhead")
    return np.array(req), np.array(lim), np.array(overhead, dtype=np.float64)


def _accounting(pod: Pod, resources: tuple[str, ...], *, assigned: bool) -> tuple[RList, RList, RList]:
    """(requests, non-zero requests, limits) as dicts, with the options of the call site."""
    r = _Reader(resources)
    if not assigned:
        return (
            pod_requests(r, pod, SPEC_ONLY),
            pod_requests(r, pod, SCORING, _NON_MISSING),
            pod_limits(r, pod, SPEC_ONLY),
        )
    requests = pod_requests(r, pod, ON_NODE)
    non_missing = _NON_MISSING
    if _pod_level_requests_set(pod):  # getNonMissingContainerRequests
        non_missing = {name: v for name, v in _NON_MISSING.items() if name not in requests}
    nonzero = pod_requests(r, pod, ON_NODE, non_missing) if non_missing else requests
    return requests, nonzero, pod_limits(r, pod, ON_NODE)


def pod_demand(
    pod: Pod, resources: tuple[str, ...], *, containers: bool = True, assigned: bool = False
) -> PodDemand:
    """The pod's PodDemand on ``resources``; BadRequest names the field of a bad quantity.

    ``assigned`` counts a pod on a node as the scheduler's NodeInfo does (in-place resize
    read from the status); otherwise the pod is the one being scheduled. ``containers=False``
    skips the per-container values (pods on nodes, which no strategy predicts container by
    container)."""
    req, nz, lim = _accounting(pod, resources, assigned=assigned)
    requests = np.array([req.get(name, 0.0) for name in resources], dtype=np.float64)
    nonzero = np.array([nz.get(name, 0.0) for name in resources], dtype=np.float64)
    limits = np.array([lim.get(name, 0.0) for name in resources], dtype=np.float64)
    if PODS in resources:
        requests[resources.index(PODS)] = nonzero[resources.index(PODS)] = 1.0
    for name, values in (("requests", requests), ("non-zero requests", nonzero), ("limits", limits)):
        if values.max(initial=0.0) > MAX_QUANTITY:
            raise BadRequest(
                f"Pod: total {name} of {resources[int(values.argmax())]} exceed "
                f"{MAX_QUANTITY}, the largest quantity the extender scores"
            )
    if not containers:
        return PodDemand(
            resources=resources,
            requests=requests,
            nonzero_requests=nonzero,
            limits=limits,
            qos=_qos(pod, requests, limits),
        )
    c_req, c_lim, overhead = _per_container(resources, pod)
    return PodDemand(
        resources=resources,
        requests=requests,
        nonzero_requests=nonzero,
        limits=limits,
        qos=_qos(pod, requests, limits),
        container_requests=c_req,
        container_limits=c_lim,
        overhead=overhead,
    )
