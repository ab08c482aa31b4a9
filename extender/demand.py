"""What a pod asks for, computed the way kube-scheduler computes it.

Requests follow ``k8s.io/component-helpers/resource`` ``PodRequests`` (used by the scheduler's
NodeResourcesFit): the sum over the containers, against the largest init container, where
restartable ("sidecar") init containers run alongside everything after them; plus
``spec.overhead``. The non-zero variant substitutes kube-scheduler's defaults for a container
without a CPU or memory request (``DefaultMilliCPURequest`` 100m, ``DefaultMemoryRequest``
200 MiB; ``pkg/scheduler/util/pod_resources.go``), as its scoring plugins do. Limits are summed
the same way over the containers that set one (0 = no limit), as ``PodLimits`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from extender.quantity import QuantityError, base_units, cpu_millis
from extender.wire import BadRequest, Container, Pod, ResourceList
from scoring import CPU, MEMORY, PODS, PodDemand
from scoring.types import MAX_QUANTITY

DEFAULT_MILLI_CPU_REQUEST = 100.0  # kube-scheduler pkg/scheduler/util DefaultMilliCPURequest
DEFAULT_MEMORY_REQUEST = 200.0 * 1024 * 1024  # kube-scheduler DefaultMemoryRequest (200 MiB)
SIDECAR_RESTART_POLICY = "Always"  # an init container with restartPolicy Always is a sidecar


def to_units(resource: str) -> Callable[[str | int | float], float]:
    """The converter of a resource: CPU in millicores, everything else in base units."""
    return cpu_millis if resource == CPU else base_units


def nonnegative(convert: Callable[[str | int | float], float], value: str | int | float, where: str,
                error: type[Exception]) -> float:
    """``convert(value)``; ``error`` naming ``where`` for an invalid or negative quantity."""
    try:
        amount = convert(value)
    except QuantityError as exc:
        raise error(f"{where}: {exc}") from None
    if amount < 0:
        raise error(f"{where}: negative quantity {value!r}")
    if amount > MAX_QUANTITY:
        raise error(f"{where}: quantity {value!r} is absurd (more than {MAX_QUANTITY} "
                    f"{'millicores' if convert is cpu_millis else 'units'})")
    return amount


def _amounts(resources: tuple[str, ...], values: ResourceList | None, where: str) -> list[float]:
    # Plain lists, not numpy: a handful of resources per container, where numpy's per-call
    # overhead would dominate (the cluster cache runs this for every pod event).
    if not values:
        return [0.0] * len(resources)
    return [nonnegative(to_units(name), v, f"{where}.{name}", BadRequest) if (v := values.get(name)) is not None
            else 0.0 for name in resources]


def _container_amounts(resources: tuple[str, ...], c: Container, where: str, *, limits: bool,
                       nonzero: bool) -> list[float]:
    res = c.resources
    values = (res.limits if limits else res.requests) if res is not None else None
    out = _amounts(resources, values, f"{where}.resources.{'limits' if limits else 'requests'}")
    if nonzero:
        for r, name in enumerate(resources):
            if name in (CPU, MEMORY) and not (values and name in values):
                out[r] = DEFAULT_MILLI_CPU_REQUEST if name == CPU else DEFAULT_MEMORY_REQUEST
    return out


def _add(a: list[float], b: list[float]) -> list[float]:
    return [x + y for x, y in zip(a, b, strict=True)]


def _aggregate(resources: tuple[str, ...], pod: Pod, *, limits: bool, nonzero: bool) -> np.ndarray:
    """PodRequests / PodLimits over containers, init containers and overhead."""
    spec = pod.spec
    containers = (spec.containers or []) if spec else []
    zero = [0.0] * len(resources)
    total = zero
    for i, c in enumerate(containers):
        total = _add(total, _container_amounts(resources, c, f"Pod.spec.containers[{i}]", limits=limits,
                                               nonzero=nonzero))
    sidecars = zero
    init_max = zero
    for i, c in enumerate((spec.initContainers or []) if spec else []):
        amounts = _container_amounts(resources, c, f"Pod.spec.initContainers[{i}]", limits=limits,
                                     nonzero=nonzero)
        if c.restartPolicy == SIDECAR_RESTART_POLICY:
            total = _add(total, amounts)
            sidecars = _add(sidecars, amounts)
            amounts = sidecars
        else:
            amounts = _add(amounts, sidecars)
        init_max = [max(x, y) for x, y in zip(init_max, amounts, strict=True)]
    total = [max(x, y) for x, y in zip(total, init_max, strict=True)]
    if spec is not None and spec.overhead:
        total = _add(total, _amounts(resources, spec.overhead, "Pod.spec.overhead"))
    return np.array(total, dtype=np.float64)


def _resources_key(c: Container) -> tuple[object, ...]:
    res = c.resources
    if res is None:
        return ()
    return (tuple(res.requests.items()) if res.requests else (), tuple(res.limits.items()) if res.limits else ())


def accounting_key(pod: Pod) -> tuple[object, ...]:
    """Everything ``pod_demand(..., containers=False)``'s requests and limits depend on: the
    containers' and init containers' resources (and restart policy), and the overhead. Pods
    of one template share it, so the cluster cache computes their accounting once."""
    spec = pod.spec
    if spec is None:
        return ()
    return (tuple(_resources_key(c) for c in spec.containers or ()),
            tuple((_resources_key(c), c.restartPolicy) for c in spec.initContainers or ()),
            tuple(spec.overhead.items()) if spec.overhead else ())


def requested_resources(pod: Pod, base: Iterable[str] = (CPU, MEMORY, PODS)) -> tuple[str, ...]:
    """The resource axis for this pod: the base resources, then every extended resource any of
    its containers requests or limits, in first-seen order."""
    names = list(base)
    spec = pod.spec
    for c in ((spec.containers or []) + (spec.initContainers or [])) if spec else []:
        for values in (c.resources.requests, c.resources.limits) if c.resources else ():
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
    req = [_container_amounts(resources, c, f"Pod.spec.containers[{i}]", limits=False, nonzero=False)
           for i, c in enumerate(containers)] or [np.zeros(len(resources))]
    lim = [_container_amounts(resources, c, f"Pod.spec.containers[{i}]", limits=True, nonzero=False)
           for i, c in enumerate(containers)] or [np.zeros(len(resources))]
    overhead = _amounts(resources, spec.overhead if spec else None, "Pod.spec.overhead")
    return np.array(req), np.array(lim), np.array(overhead, dtype=np.float64)


def pod_demand(pod: Pod, resources: tuple[str, ...], *, containers: bool = True) -> PodDemand:
    """The pod's PodDemand on ``resources``; BadRequest names the field of a bad quantity.
    ``containers=False`` skips the per-container values (the cluster cache's pods on nodes,
    which no strategy predicts container by container)."""
    requests = _aggregate(resources, pod, limits=False, nonzero=False)
    nonzero = _aggregate(resources, pod, limits=False, nonzero=True)
    limits = _aggregate(resources, pod, limits=True, nonzero=False)
    if PODS in resources:
        requests[resources.index(PODS)] = nonzero[resources.index(PODS)] = 1.0
    for name, values in (("requests", requests), ("limits", limits)):
        if values.max(initial=0.0) > MAX_QUANTITY:
            raise BadRequest(f"Pod: total {name} of {resources[int(values.argmax())]} exceed "
                             f"{MAX_QUANTITY}, the largest quantity the extender scores")
    if not containers:
        return PodDemand(resources=resources, requests=requests, nonzero_requests=nonzero,
                         limits=limits, qos=_qos(pod, requests, limits))
    c_req, c_lim, overhead = _per_container(resources, pod)
    return PodDemand(resources=resources, requests=requests, nonzero_requests=nonzero,
                     limits=limits, qos=_qos(pod, requests, limits), container_requests=c_req,
                     container_limits=c_lim, overhead=overhead)
