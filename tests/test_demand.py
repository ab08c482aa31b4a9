"""What a pod asks for, from the decoded wire object: kube-scheduler's PodRequests semantics
and the per-container values TargetLoadPacking predicts from.

The tables below are computed by hand from the upstream rules (``extender/kube/demand.py`` names
the files and the release): one row per case, requests / non-zero requests / limits on
(cpu millicores, memory MiB). ``assigned`` rows are pods on a node (the scheduler's
``NodeInfo`` accounting, which reads the pod's status during an in-place resize); the others
are the pod being scheduled (NodeResourcesFit's PreFilter and the scoring plugins).
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.kube.demand import accounting_key, pod_demand, requested_resources
from extender.kube.objects import BadRequest, MalformedObject, Pod, decode_pod, decode_pod_watch_line
from scoring import trimaran

MI = 1024.0**2
AXIS = ("cpu", "memory")


def decode(doc: dict) -> Pod:
    return msgspec.json.decode(msgspec.json.encode(doc), type=Pod)


POD = decode(
    {
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2"}},
                },
                {"name": "side", "resources": {"requests": {"cpu": "100m"}}},
                {"name": "bare"},
            ],
            "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "3", "memory": "64Mi"}}}],
            "overhead": {"cpu": "50m"},
        }
    }
)


def test_requests_follow_pod_requests_and_the_non_zero_defaults() -> None:
    d = pod_demand(POD, ("cpu", "memory", "pods"))
    # max(containers 600m, init 3000m) + overhead 50m; memory max(1Gi, 64Mi)
    assert d.requests.tolist() == [3050.0, 1024.0**3, 1.0]
    # non-zero: "bare" counts 100m / 200 MiB, "side" 200 MiB of memory
    assert d.nonzero_requests.tolist() == [3050.0, 1024.0**3 + 400 * 1024**2, 1.0]
    assert d.limits.tolist() == [2050.0, 0.0, 0.0]
    assert d.qos == "Burstable"


def test_containers_and_overhead_feed_target_load_packing() -> None:
    d = pod_demand(POD, ("cpu", "memory", "pods"))
    assert d.container_requests[:, 0].tolist() == [500.0, 100.0, 0.0]
    assert d.container_limits[:, 0].tolist() == [2000.0, 0.0, 0.0]
    assert d.overhead.tolist() == [50.0, 0.0, 0.0]
    # TLP: limit 2000 + round(100 x 1.5) + default 1000 for "bare" + overhead 50; init ignored
    assert (
        trimaran.tlp_predicted_cpu(d.container_requests[:, 0], d.container_limits[:, 0], float(d.overhead[0]))
        == 3200.0
    )


def test_a_pod_without_containers_is_one_empty_container() -> None:
    d = pod_demand(decode({"spec": {}}), ("cpu", "memory"))
    assert d.container_requests.shape == (1, 2) and not np.any(d.container_requests)
    assert d.qos == "BestEffort"


# --- table tests ------------------------------------------------------------------------------


def rr(cpu: str | None = None, memory: str | None = None, **more: str) -> dict[str, str]:
    """A ResourceList with the given entries (``hugepages_2Mi`` -> ``hugepages-2Mi``)."""
    out = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    out.update({k.replace("_", "-"): v for k, v in more.items()})
    return out


def requirements(requests: dict | None, limits: dict | None) -> dict[str, Any]:
    """A ResourceRequirements with the lists given (None: left out)."""
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v is not None}


def ctr(
    name: str, req: dict | None = None, lim: dict | None = None, *, sidecar: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "resources": requirements(req, lim)}
    if sidecar:
        out["restartPolicy"] = "Always"
    return out


def cstatus(
    name: str, actual: dict | None = None, allocated: dict | None = None, actual_lim: dict | None = None
) -> dict[str, Any]:
    """A containerStatuses entry: ``resources`` (actuated) only when ``actual``/``actual_lim``."""
    out: dict[str, Any] = {"name": name}
    if actual is not None or actual_lim is not None:
        out["resources"] = requirements(actual, actual_lim)
    if allocated is not None:
        out["allocatedResources"] = allocated
    return out


def pod(
    containers: list,
    *,
    init: list | None = None,
    overhead: dict | None = None,
    pod_req: dict | None = None,
    pod_lim: dict | None = None,
    statuses: list | None = None,
    init_statuses: list | None = None,
    status_req: dict | None = None,
    status_lim: dict | None = None,
    status_alloc: dict | None = None,
    resize: str | None = None,
) -> Pod:
    """A Pod; ``resize`` is the PodResizePending reason (Deferred / Infeasible) or
    ``InProgress`` for a PodResizeInProgress condition."""
    spec: dict[str, Any] = {
        "containers": containers,
        **{k: v for k, v in (("initContainers", init), ("overhead", overhead)) if v},
    }
    if pod_req is not None or pod_lim is not None:
        spec["resources"] = requirements(pod_req, pod_lim)
    status: dict[str, Any] = {
        "phase": "Running",
        **{k: v for k, v in (("containerStatuses", statuses), ("initContainerStatuses", init_statuses)) if v},
    }
    if status_req is not None or status_lim is not None:
        status["resources"] = requirements(status_req, status_lim)
    if status_alloc is not None:
        status["allocatedResources"] = status_alloc
    if resize == "InProgress":
        status["conditions"] = [{"type": "PodResizeInProgress", "status": "True"}]
    elif resize:
        status["conditions"] = [
            {"type": "Ready", "status": "True"},
            {"type": "PodResizePending", "status": "True", "reason": resize},
        ]
    return decode({"metadata": {"name": "p", "uid": "u"}, "spec": spec, "status": status})


def demand(p: Pod, *, assigned: bool) -> tuple[list[float], list[float], list[float]]:
    d = pod_demand(p, AXIS, assigned=assigned)
    mib = [1.0, 1 / MI]
    return (
        [x * s for x, s in zip(d.requests.tolist(), mib, strict=True)],
        [x * s for x, s in zip(d.nonzero_requests.tolist(), mib, strict=True)],
        [x * s for x, s in zip(d.limits.tolist(), mib, strict=True)],
    )


APP = ctr("app", rr("500m", "256Mi"), rr("1", "512Mi"))

# (pod, assigned, requests, non-zero requests, limits) in (millicores, MiB)
TABLE = [
    pytest.param(
        pod([ctr("a", rr("500m", "1Gi"), rr("1")), ctr("b", rr("250m"))]),
        False,
        [750, 1024],
        [750, 1224],
        [1000, 0],
        id="containers-only",
    ),
    pytest.param(
        pod([ctr("a", rr("500m", "256Mi"))], init=[ctr("i1", rr("2", "128Mi")), ctr("i2", rr("1", "512Mi"))]),
        False,
        [2000, 512],
        [2000, 512],
        [0, 0],
        id="init-containers-max-against-the-sum",
    ),
    # containers (500, 256); s1 runs beside all after it: sum (700, 320); i1 runs with s1: (1200, 1088);
    # s2 joins: sum (1000, 320), for non-zero s2 has no memory: 200 MiB; max(sum, init) = (1200, 1088)
    pytest.param(
        pod(
            [ctr("a", rr("500m", "256Mi"))],
            init=[
                ctr("s1", rr("200m", "64Mi"), sidecar=True),
                ctr("i1", rr("1", "1Gi")),
                ctr("s2", rr("300m"), sidecar=True),
            ],
        ),
        False,
        [1200, 1088],
        [1200, 1088],
        [0, 0],
        id="sidecars",
    ),
    pytest.param(
        pod([ctr("a", rr("500m", "256Mi")), ctr("b")], init=[ctr("s", rr("300m", "1Gi"), sidecar=True)]),
        False,
        [800, 1280],
        [900, 1480],
        [0, 0],
        id="sidecar-plus-bare-container",
    ),
    pytest.param(
        pod([APP], overhead=rr("100m", "64Mi")),
        False,
        [600, 320],
        [600, 320],
        [1100, 576],
        id="overhead-with-limits",
    ),
    # PodLimits adds overhead only to a limit that is set and non-zero
    pytest.param(
        pod([ctr("app", rr("500m", "256Mi"), rr("1"))], overhead=rr("100m", "64Mi")),
        False,
        [600, 320],
        [600, 320],
        [1100, 0],
        id="overhead-without-memory-limit",
    ),
    pytest.param(
        pod([ctr("app", rr("500m", "256Mi"), rr("1", "0"))], overhead=rr("100m", "64Mi")),
        False,
        [600, 320],
        [600, 320],
        [1100, 0],
        id="overhead-on-a-zero-limit",
    ),
    pytest.param(
        pod([ctr("app", rr("500m"))], overhead=rr("100m", "64Mi")),
        False,
        [600, 64],
        [600, 264],
        [0, 0],
        id="overhead-no-limits-at-all",
    ),
    # pod-level cpu replaces the containers' cpu (500m + 0); memory stays the containers' sum
    pytest.param(
        pod(
            [ctr("a", rr("500m", "256Mi")), ctr("b", rr(memory="128Mi"))],
            pod_req=rr("2"),
            overhead=rr("100m"),
        ),
        False,
        [2100, 384],
        [2100, 384],
        [0, 0],
        id="pod-level-cpu-only",
    ),
    # requests: containers (500, -) then pod-level memory 1Gi. Non-zero of the incoming pod
    # (resource_allocation.go): defaults per container first, (600, 400), then pod-level memory
    pytest.param(
        pod([ctr("a", rr("500m")), ctr("b")], pod_req=rr(memory="1Gi")),
        False,
        [500, 1024],
        [600, 1024],
        [0, 0],
        id="pod-level-memory-only-incoming",
    ),
    # ... while a pod on a node (types.go getNonMissingContainerRequests) gets a default only for
    # cpu / memory missing from its requests altogether: both are present, so none
    pytest.param(
        pod([ctr("a", rr("500m")), ctr("b")], pod_req=rr(memory="1Gi")),
        True,
        [500, 1024],
        [500, 1024],
        [0, 0],
        id="pod-level-memory-only-assigned",
    ),
    pytest.param(
        pod([ctr("a"), ctr("b")], pod_req=rr(memory="1Gi")),
        True,
        [0, 1024],
        [200, 1024],
        [0, 0],
        id="pod-level-memory-no-cpu-anywhere-assigned",
    ),
    pytest.param(
        pod(
            [ctr("a", rr("500m", "256Mi"), rr("1", "512Mi"))],
            pod_req=rr("1", "1Gi"),
            pod_lim=rr(memory="2Gi"),
            overhead=rr("100m", "64Mi"),
        ),
        False,
        [1100, 1088],
        [1100, 1088],
        [1100, 2112],
        id="pod-level-limits-and-overhead",
    ),
    # pod-level limits alone: requests stay the containers'; limits replaced where set
    pytest.param(
        pod([ctr("a", rr("500m", "256Mi"), rr("1", "512Mi"))], pod_lim=rr("4")),
        False,
        [500, 256],
        [500, 256],
        [4000, 512],
        id="pod-level-limits-only",
    ),
    # resize up pending: the spec is larger than status: the spec counts
    pytest.param(
        pod(
            [ctr("a", rr("1", "1Gi"))],
            statuses=[cstatus("a", rr("500m", "1Gi"), rr("500m", "1Gi"))],
            resize="Deferred",
        ),
        True,
        [1000, 1024],
        [1000, 1024],
        [0, 0],
        id="resize-up-deferred",
    ),
    # resize down in progress: the container still has 1 CPU: the status counts
    pytest.param(
        pod(
            [ctr("a", rr("500m", "1Gi"))],
            statuses=[cstatus("a", rr("1", "1Gi"), rr("500m", "1Gi"))],
            resize="InProgress",
        ),
        True,
        [1000, 1024],
        [1000, 1024],
        [0, 0],
        id="resize-down-in-progress",
    ),
    pytest.param(
        pod([ctr("a", rr("500m", "1Gi"))], statuses=[cstatus("a", rr("500m", "1Gi"), rr("2", "1Gi"))]),
        True,
        [2000, 1024],
        [2000, 1024],
        [0, 0],
        id="resize-allocated-not-yet-actuated",
    ),
    # infeasible: the spec is ignored, max(actuated, allocated)
    pytest.param(
        pod(
            [ctr("a", rr("4", "1Gi"))],
            statuses=[cstatus("a", rr("1", "1Gi"), rr("1", "1Gi"))],
            resize="Infeasible",
        ),
        True,
        [1000, 1024],
        [1000, 1024],
        [0, 0],
        id="resize-infeasible",
    ),
    # v1.36 takes the max per container, then sums (kubernetes#140046 over-estimate): 2 + 2 CPU
    pytest.param(
        pod(
            [ctr("a", rr("1")), ctr("b", rr("2"))],
            statuses=[cstatus("a", rr("1"), rr("2")), cstatus("b", rr("2"), rr("1"))],
        ),
        True,
        [4000, 0],
        [4000, 400],
        [0, 0],
        id="resize-max-per-container",
    ),
    # a status without resources is not read, even with allocatedResources
    pytest.param(
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", allocated=rr("1"))]),
        True,
        [500, 0],
        [500, 200],
        [0, 0],
        id="status-without-resources-ignored",
    ),
    # only sidecars' statuses count among init containers: i1 stays 1 CPU, s1 counts 400m
    pytest.param(
        pod(
            [ctr("a", rr("500m"))],
            init=[ctr("s1", rr("200m"), sidecar=True), ctr("i1", rr("1"))],
            init_statuses=[cstatus("s1", rr("400m")), cstatus("i1", rr("3"))],
        ),
        True,
        [1400, 0],
        [1400, 400],
        [0, 0],
        id="resize-sidecar-not-init",
    ),
    pytest.param(
        pod([ctr("a", rr("500m"), rr("1"))], statuses=[cstatus("a", rr("500m"), actual_lim=rr("2"))]),
        True,
        [500, 0],
        [500, 200],
        [2000, 0],
        id="resize-limits-status-larger",
    ),
    pytest.param(
        pod(
            [ctr("a", rr("500m"), rr("4"))],
            statuses=[cstatus("a", rr("500m"), actual_lim=rr("2"))],
            resize="Infeasible",
        ),
        True,
        [500, 0],
        [500, 200],
        [2000, 0],
        id="resize-limits-infeasible",
    ),
    # the pod being scheduled: NodeResourcesFit reads the spec only; the scoring plugins'
    # non-zero requests pass UseStatusResources and so read container statuses
    pytest.param(
        pod([ctr("a", rr("500m", "1Gi"))], statuses=[cstatus("a", rr("1", "1Gi"), rr("1", "1Gi"))]),
        False,
        [500, 1024],
        [1000, 1024],
        [0, 0],
        id="incoming-status-only-in-scoring",
    ),
    # pod-level in-place resize (InPlacePodLevelResourcesVerticalScaling, beta in 1.36)
    pytest.param(
        pod(
            [ctr("a", rr("500m"))],
            pod_req=rr("1"),
            status_req=rr("2"),
            status_alloc=rr("1500m"),
            overhead=rr("100m"),
        ),
        True,
        [2100, 0],
        [2100, 200],
        [0, 0],
        id="pod-level-resize-down",
    ),
    pytest.param(
        pod(
            [ctr("a", rr("500m"))],
            pod_req=rr("4"),
            status_req=rr("2"),
            status_alloc=rr("2"),
            resize="Infeasible",
        ),
        True,
        [2000, 0],
        [2000, 200],
        [0, 0],
        id="pod-level-resize-infeasible",
    ),
    pytest.param(
        pod([ctr("a", rr("500m"))], pod_req=rr("1"), status_alloc=rr("3")),
        True,
        [1000, 0],
        [1000, 200],
        [0, 0],
        id="pod-level-allocated-without-status-resources",
    ),
    pytest.param(
        pod([ctr("a", rr("500m"), rr("1"))], pod_lim=rr("2"), status_req=rr("500m"), status_lim=rr("3")),
        True,
        [500, 0],
        [500, 200],
        [3000, 0],
        id="pod-level-limits-resize",
    ),
    pytest.param(
        pod([ctr("a", rr("500m"))], pod_req=rr("1"), status_req=rr("2")),
        False,
        [1000, 0],
        [1000, 200],
        [0, 0],
        id="pod-level-status-not-read-for-incoming",
    ),
]


@pytest.mark.parametrize(("p", "assigned", "requests", "nonzero", "limits"), TABLE)
def test_pod_accounting_table(
    p: Pod, assigned: bool, requests: list[float], nonzero: list[float], limits: list[float]
) -> None:
    got = demand(p, assigned=assigned)
    assert got == ([float(x) for x in requests], [float(x) for x in nonzero], [float(x) for x in limits])


def test_pod_level_hugepages_replace_the_containers() -> None:
    """hugepages-* is a supported pod-level resource (IsSupportedPodLevelResource); an
    unsupported one alone does not make pod-level requests "set"."""
    p = pod([ctr("a", rr("1", "1Gi", hugepages_2Mi="2Mi"))], pod_req=rr(hugepages_2Mi="8Mi"))
    axis = ("cpu", "memory", "hugepages-2Mi", "ephemeral-storage")
    assert pod_demand(p, axis).requests.tolist() == [1000.0, 1024 * MI, 8 * MI, 0.0]
    p = pod([ctr("a", rr("1", ephemeral_storage="1Gi"))], pod_req=rr(ephemeral_storage="5Gi"))
    assert pod_demand(p, axis).requests.tolist() == [1000.0, 0.0, 0.0, 1024 * MI]
    assert requested_resources(pod([ctr("a", rr("1"))], pod_req=rr(hugepages_1Gi="1Gi"))) == (
        "cpu",
        "memory",
        "pods",
        "hugepages-1Gi",
    )


def test_the_accounting_key_sees_everything_that_counts() -> None:
    """Pods that count the same may share a key; any field that changes what counts changes it."""
    base = pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"), rr("500m"))])
    assert accounting_key(base) == accounting_key(
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"), rr("500m"))])
    )
    moving = [cstatus("a", rr("1"), rr("500m"))]
    variants = [
        pod([ctr("a", rr("500m"))], statuses=moving),
        pod([ctr("a", rr("500m"))], statuses=moving, resize="Infeasible"),
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"), rr("1"))]),
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"), rr("500m"), actual_lim=rr("1"))]),
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"), rr("500m"))], pod_req=rr("1")),
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"), rr("500m"))], pod_lim=rr("1")),
        pod([ctr("a", rr("500m"))], pod_req=rr("1"), status_req=rr("2")),
        pod([ctr("a", rr("500m"))], pod_req=rr("1"), status_req=rr("2"), status_alloc=rr("3")),
        pod([ctr("a", rr("500m"))], pod_req=rr("1"), status_req=rr("2"), resize="Infeasible"),
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"), rr("500m"))], overhead=rr("1")),
    ]
    keys = [accounting_key(v) for v in variants]
    assert len(set(keys)) == len(keys) and accounting_key(base) not in keys
    # what does not change what counts leaves the key alone: a resize condition while the
    # status repeats the spec, pod-level status without pod-level resources, a status that
    # repeats the spec, a status of no counted container (a non-sidecar init container's)
    same = [
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"), rr("500m"))], resize="Deferred"),
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"), rr("500m"))], resize="Infeasible"),
        pod([ctr("a", rr("500m"))], status_req=rr("2"), status_alloc=rr("2")),  # no pod-level spec
        pod([ctr("a", rr("500m"))]),
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"))]),
        pod([ctr("a", rr("500m"))], statuses=[cstatus("a", rr("500m"), rr("500m")), cstatus("b", rr("1"))]),
    ]
    assert all(accounting_key(p) == accounting_key(base) for p in same)
    init = [ctr("i", rr("1"))]
    assert accounting_key(
        pod([ctr("a", rr("500m"))], init=init, init_statuses=[cstatus("i", rr("2"))])
    ) == accounting_key(pod([ctr("a", rr("500m"))], init=init))
    sidecar = [ctr("s", rr("1"), sidecar=True)]
    assert accounting_key(
        pod([ctr("a", rr("500m"))], init=sidecar, init_statuses=[cstatus("s", rr("2"))])
    ) != accounting_key(pod([ctr("a", rr("500m"))], init=sidecar))
    # and a key shared is an accounting shared: equal keys, equal demand
    for p in [base, *same]:
        assert demand(p, assigned=True) == demand(base, assigned=True)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"spec": {"resources": {"requests": ["1"]}}}, "spec.resources.requests"),
        ({"status": {"containerStatuses": [{"name": 3}]}}, "status.containerStatuses[0].name"),
        (
            {"status": {"initContainerStatuses": [{"name": "s", "allocatedResources": "1"}]}},
            "status.initContainerStatuses[0].allocatedResources",
        ),
        ({"status": {"resources": {"limits": 5}}}, "status.resources.limits"),
        (
            {"status": {"conditions": [{"type": "PodResizePending", "reason": 1}]}},
            "status.conditions[0].reason",
        ),
    ],
)
def test_malformed_new_fields_are_refused_naming_the_field(doc: dict, field: str) -> None:
    raw = msgspec.json.encode(doc)
    with pytest.raises(MalformedObject, match=field.replace("[", r"\[").replace("]", r"\]")):
        decode_pod(raw)
    # the pod watch's one-pass decoder declines the line, so the general path words the error
    assert decode_pod_watch_line(b'{"type": "MODIFIED", "object": ' + raw + b"}") is None


def test_the_pod_watch_decoder_reads_the_new_fields() -> None:
    raw = msgspec.json.encode(
        {
            "metadata": {"uid": "u", "resourceVersion": "7"},
            "spec": {"containers": [{"name": "a"}], "resources": {"requests": {"cpu": "1"}}},
            "status": {
                "containerStatuses": [
                    {"name": "a", "resources": {"requests": {"cpu": "2"}}, "allocatedResources": {"cpu": "2"}}
                ],
                "resources": {"requests": {"cpu": "2"}},
                "allocatedResources": {"cpu": "2"},
                "conditions": [{"type": "PodResizePending", "reason": "Infeasible"}],
            },
        }
    )
    got = decode_pod_watch_line(b'{"type": "MODIFIED", "object": ' + raw + b"}")
    assert got is not None and got == ("MODIFIED", decode_pod(raw))
    p = got[1]
    assert p.spec.resources.requests == {"cpu": "1"} and p.status.allocatedResources == {"cpu": "2"}
    assert p.status.containerStatuses[0].resources.requests == {"cpu": "2"}
    assert p.status.conditions[0].reason == "Infeasible"


@pytest.mark.parametrize(
    ("p", "where"),
    [
        (
            pod([ctr("a", rr("1"))], statuses=[cstatus("a", rr("1"), rr("lots"))]),
            "Pod.status.containerStatuses[0].allocatedResources.cpu",
        ),
        (
            pod([ctr("a", rr("1"))], statuses=[cstatus("a", rr("-1"))]),
            "Pod.status.containerStatuses[0].resources.requests.cpu",
        ),
        (pod([ctr("a", rr("1"))], pod_req=rr("x")), "Pod.spec.resources.requests.cpu"),
        (
            pod([ctr("a", rr("1"))], pod_req=rr("1"), status_req=rr("1"), status_alloc=rr(memory="1Q")),
            "Pod.status.allocatedResources.memory",
        ),
    ],
)
def test_bad_quantities_in_the_new_fields_name_the_field(p: Pod, where: str) -> None:
    with pytest.raises(BadRequest, match=where.replace("[", r"\[").replace("]", r"\]")):
        pod_demand(p, AXIS, assigned=True)


_Q = st.sampled_from(["500m", "1", "2"])
_LIST = st.one_of(st.none(), st.dictionaries(st.sampled_from(["cpu", "memory"]), _Q, max_size=2))


@st.composite
def _pod_pair(draw: st.DrawFn) -> tuple[Pod, Pod]:
    """Two pods with one spec and two statuses, drawn independently or one from the other
    (small value sets, so statuses often repeat the spec and keys often coincide)."""

    def drawn() -> dict[str, Any]:
        return requirements(draw(_LIST), draw(_LIST))

    spec: dict[str, Any] = {
        "containers": [{"name": n, "resources": drawn()} for n in draw(st.sampled_from([["a"], ["a", "b"]]))],
        "initContainers": [
            {"name": "s", "restartPolicy": "Always", "resources": drawn()},
            {"name": "i", "resources": drawn()},
        ][: draw(st.integers(0, 2))],
    }
    if draw(st.integers(0, 2)):
        spec["resources"] = drawn()
    if draw(st.booleans()):
        spec["overhead"] = {"cpu": "500m"}

    def status() -> dict[str, Any]:
        out: dict[str, Any] = {
            "containerStatuses": [
                {
                    "name": n,
                    **({"resources": drawn()} if draw(st.booleans()) else {}),
                    **({"allocatedResources": a} if (a := draw(_LIST)) is not None else {}),
                }
                for n in draw(st.lists(st.sampled_from(["a", "b", "s", "i"]), max_size=3))
            ]
        }
        if draw(st.booleans()):
            out["resources"] = drawn()
            out["allocatedResources"] = draw(_LIST)
        if draw(st.booleans()):
            out["conditions"] = [
                {"type": "PodResizePending", "reason": draw(st.sampled_from(["Infeasible", "Deferred"]))}
            ]
        return out

    first = status()
    second = draw(st.sampled_from(["drawn", "conditions", "pod-level", "pod-level allocated", "steady a"]))
    if second == "drawn":
        other = status()
    elif second == "conditions":  # the same statuses, the resize condition toggled
        other = {k: v for k, v in first.items() if k != "conditions"}
        if "conditions" not in first:
            other["conditions"] = [{"type": "PodResizePending", "reason": "Infeasible"}]
    elif second == "pod-level":  # the same container statuses, the pod-level ones dropped
        other = {k: v for k, v in first.items() if k not in ("resources", "allocatedResources")}
    elif second == "steady a":  # a status of "a" that repeats its spec, then one field drawn again
        a = spec["containers"][0]["resources"]
        steady = {"name": "a", "resources": dict(a), "allocatedResources": a.get("requests")}
        first["containerStatuses"] = [steady]
        field = draw(st.sampled_from(["requests", "limits", "allocatedResources"]))
        moved = dict(steady, resources=dict(a)) if field != "allocatedResources" else dict(steady)
        (moved["resources"] if field != "allocatedResources" else moved)[field] = draw(_LIST)
        other = dict(first, containerStatuses=[moved])
    else:  # pod-level resources mid-resize; only the pod-level admitted requests drawn again
        spec["resources"] = {"requests": {"cpu": "1"}}
        first["resources"] = {"requests": {"cpu": "500m"}}
        other = dict(first, allocatedResources=draw(_LIST))
    return decode({"spec": spec, "status": first}), decode({"spec": spec, "status": other})


@settings(max_examples=500, deadline=None)
@given(pair=_pod_pair())
def test_pods_with_one_accounting_key_count_the_same(pair: tuple[Pod, Pod]) -> None:
    """The cluster cache hands the accounting of the first pod of a key to every later one:
    that is right only if one key means one accounting."""
    p, q = pair
    if accounting_key(p) == accounting_key(q):
        assert demand(p, assigned=True) == demand(q, assigned=True)
