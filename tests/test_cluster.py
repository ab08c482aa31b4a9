"""ClusterState: kube-scheduler's pod accounting, incremental updates, snapshots and the
recent-bind compensation, driven through the informer handler protocol with raw API JSON."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from extender.cache.store import LOAD_REFRESH_S, ClusterState, CompensationSpec

GI = 1024.0**3


def node(
    name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110", rv: str = "1", **ann: str
) -> bytes:
    return json.dumps(
        {
            "metadata": {"name": name, "resourceVersion": rv, "annotations": ann},
            "status": {
                "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                "capacity": {"cpu": cpu, "memory": memory, "pods": pods},
                "addresses": [{"type": "InternalIP", "address": f"10.0.0.{len(name)}"}],
            },
        }
    ).encode()


def pod(
    uid: str,
    node_name: str = "",
    cpu: str | None = "500m",
    memory: str | None = "1Gi",
    phase: str = "Running",
    init_cpu: str | None = None,
    limits: dict | None = None,
) -> bytes:
    res: dict[str, Any] = {"requests": {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}}
    if limits:
        res["limits"] = limits
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": res}]}
    if init_cpu:
        spec["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": init_cpu}}}]
    if node_name:
        spec["nodeName"] = node_name
    return json.dumps(
        {
            "metadata": {"name": f"p-{uid}", "namespace": "ns", "uid": uid},
            "spec": spec,
            "status": {"phase": phase},
        }
    ).encode()


class FakeLoad:
    def __init__(self) -> None:
        self.samples: dict[str, tuple[float, dict[str, float]]] = {}
        self.version = 0

    def record(self, node: str, t: float, values: dict[str, float], *, source: str) -> None:
        self.samples[node] = (t, dict(values))
        self.version += 1

    def forget(self, node: str) -> None:
        self.samples.pop(node, None)
        self.version += 1

    def view(self, names, resources, now):
        n, r = len(names), len(resources)
        usage = np.full((n, r), np.nan)
        newest = np.full(n, -np.inf)
        for i, name in enumerate(names):
            if name in self.samples:
                t, values = self.samples[name]
                newest[i] = t
                for j, res in enumerate(resources):
                    if res in values:
                        usage[i, j] = values[res]

        class V:
            pass

        v = V()
        v.usage, v.usage_avg, v.usage_std, v.usage_p95, v.newest = (
            usage,
            usage.copy(),
            np.full((n, r), np.nan),
            usage.copy(),
            newest,
        )
        return v


def requested(state: ClusterState) -> dict[str, dict[str, float]]:
    return state.view()


def test_pod_accounting_follows_kube_scheduler() -> None:
    s = ClusterState(estimator_factors={"cpu": 85, "memory": 70})
    s.nodes_handler.replace([node("a"), node("b")])
    s.pods_handler.replace(
        [pod("1", "a"), pod("2", "a", init_cpu="2"), pod("3", ""), pod("4", "b", phase="Succeeded")]
    )
    view = requested(s)
    # pod 1: 500m; pod 2: max(500m, init 2000m) = 2000m; pod 3 unbound; pod 4 finished
    assert view["a"]["cpu"] == 2500 and view["a"]["memory"] == 2 * GI and view["a"]["pods"] == 2
    assert view["b"]["cpu"] == 0 and view["b"]["pods"] == 0
    s.pods_handler.upsert(pod("3", "b"))  # bound by someone
    s.pods_handler.upsert(pod("1", "a", phase="Failed"))  # finished: frees its node
    s.pods_handler.delete(pod("2", "a"))
    view = requested(s)
    assert view["a"] == {"cpu": 0.0, "memory": 0.0, "pods": 0.0, "ephemeral-storage": 0.0}
    assert view["b"]["cpu"] == 500 and view["b"]["pods"] == 1


def test_pods_before_their_node_and_node_deletion() -> None:
    s = ClusterState(estimator_factors={})
    s.pods_handler.replace([pod("1", "later")])
    assert requested(s) == {}
    s.nodes_handler.upsert(node("later"))
    assert requested(s)["later"]["cpu"] == 500
    s.nodes_handler.delete(node("later"))
    assert requested(s) == {}
    s.nodes_handler.upsert(node("later"))  # comes back: its pod still counts
    assert requested(s)["later"]["cpu"] == 500
    s.pods_handler.delete(pod("1", "later"))
    assert requested(s)["later"]["cpu"] == 0


def test_relist_replaces_everything() -> None:
    s = ClusterState(estimator_factors={})
    s.nodes_handler.replace([node("a"), node("b")])
    s.pods_handler.replace([pod("1", "a"), pod("2", "b")])
    s.nodes_handler.replace([node("b"), node("c", cpu="8")])
    s.pods_handler.replace([pod("2", "b"), pod("5", "c")])
    view = requested(s)
    assert set(view) == {"b", "c"} and view["b"]["cpu"] == 500 and view["c"]["cpu"] == 500
    snap = s.publish(force=True)
    assert snap.arrays["allocatable"][snap.resources.index("cpu"), snap.index["c"]] == 8000


def test_extended_resources_grow_the_axis() -> None:
    s = ClusterState(estimator_factors={})
    s.nodes_handler.replace([node("a")])
    gpu_node = json.loads(node("g"))
    gpu_node["status"]["allocatable"]["example.com/gpu"] = "4"
    s.nodes_handler.upsert(json.dumps(gpu_node).encode())
    gpu_pod = json.loads(pod("1", "g"))
    gpu_pod["spec"]["containers"][0]["resources"]["requests"]["example.com/gpu"] = "1"
    s.pods_handler.upsert(json.dumps(gpu_pod).encode())
    s.pods_handler.upsert(pod("2", "g"))
    view = requested(s)
    assert (
        view["g"]["example.com/gpu"] == 1 and view["g"]["cpu"] == 1000 and view["a"]["example.com/gpu"] == 0
    )


def test_pods_of_one_template_share_their_accounting() -> None:
    """Accounting is computed once per distinct set of container resources (the churn path):
    pods of one template share it, any difference in resources gives another, and an extended
    resource that grows the axis does not reuse an entry made for the shorter axis."""
    s = ClusterState(estimator_factors={"cpu": 85, "memory": 70})
    s.nodes_handler.replace([node("a", cpu="64", memory="256Gi")])
    for k in range(3):
        s.pods_handler.upsert(pod(f"t{k}", "a"))
    s.pods_handler.upsert(pod("other", "a", cpu="501m"))
    s.pods_handler.upsert(pod("init", "a", init_cpu="2"))
    recs = s._pods
    assert recs["t0"].acct is recs["t1"].acct is recs["t2"].acct
    assert recs["other"].acct is not recs["t0"].acct and recs["init"].acct is not recs["t0"].acct
    assert requested(s)["a"]["cpu"] == 3 * 500 + 501 + 2000
    gpu_pod = json.loads(pod("g", "a"))
    gpu_pod["spec"]["containers"][0]["resources"]["requests"]["example.com/gpu"] = "1"
    s.pods_handler.upsert(json.dumps(gpu_pod).encode())
    s.pods_handler.upsert(
        json.dumps(dict(gpu_pod, metadata={"name": "g2", "namespace": "ns", "uid": "g2"})).encode()
    )
    view = requested(s)["a"]
    assert view["example.com/gpu"] == 2 and view["cpu"] == 5 * 500 + 501 + 2000
    for uid in ("t0", "t1", "g"):
        s.pods_handler.delete(pod(uid, "a"))
    view = requested(s)["a"]
    assert view["example.com/gpu"] == 1 and view["cpu"] == 2 * 500 + 501 + 2000


def test_a_resize_and_pod_level_resources_do_not_share_the_template_accounting() -> None:
    """What a pod counts now depends on more than its containers' resources: an in-place
    resize (container statuses, an infeasible resize) and pod-level resources. The memo key
    sees them, so a resizing pod does not share its template's accounting, and the status
    update that starts or ends a resize changes what its node counts."""
    s = ClusterState(estimator_factors={"cpu": 85, "memory": 70})
    s.nodes_handler.replace([node("a", cpu="64", memory="256Gi")])
    steady = json.loads(pod("t0", "a"))
    steady["status"]["containerStatuses"] = [
        {
            "name": "c",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
            "allocatedResources": {"cpu": "500m", "memory": "1Gi"},
        }
    ]
    s.pods_handler.upsert(json.dumps(steady).encode())
    twin = dict(steady, metadata={"name": "p-t2", "namespace": "ns", "uid": "t2"})
    s.pods_handler.upsert(json.dumps(twin).encode())
    resizing = json.loads(json.dumps(steady))
    resizing["metadata"] = {"name": "p-t1", "namespace": "ns", "uid": "t1"}
    resizing["status"]["containerStatuses"][0]["resources"]["requests"]["cpu"] = (
        "2"  # scaled down, not yet actuated
    )
    s.pods_handler.upsert(json.dumps(resizing).encode())
    recs = s._pods
    assert recs["t0"].acct is recs["t2"].acct and recs["t1"].acct is not recs["t0"].acct
    assert requested(s)["a"]["cpu"] == 500 + 500 + 2000
    resizing["status"]["containerStatuses"][0]["resources"]["requests"]["cpu"] = "500m"  # actuated
    s.pods_handler.upsert(json.dumps(resizing).encode())
    assert requested(s)["a"]["cpu"] == 3 * 500 and recs["t1"].acct is recs["t0"].acct
    resizing["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "4"  # up, but the node cannot
    resizing["status"]["conditions"] = [
        {"type": "PodResizePending", "status": "True", "reason": "Infeasible"}
    ]
    s.pods_handler.upsert(json.dumps(resizing).encode())
    assert requested(s)["a"]["cpu"] == 3 * 500
    del resizing["status"]["conditions"]  # deferred / in progress: the desired 4 CPU count
    s.pods_handler.upsert(json.dumps(resizing).encode())
    assert requested(s)["a"]["cpu"] == 2 * 500 + 4000
    pod_level = json.loads(json.dumps(twin))
    pod_level["metadata"] = {"name": "p-t3", "namespace": "ns", "uid": "t3"}
    pod_level["spec"]["resources"] = {"requests": {"cpu": "3"}}
    s.pods_handler.upsert(json.dumps(pod_level).encode())
    assert recs["t3"].acct is not recs["t0"].acct
    assert requested(s)["a"]["cpu"] == 2 * 500 + 4000 + 3000


def test_snapshot_table_rows_and_limits() -> None:
    s = ClusterState(estimator_factors={})
    s.nodes_handler.replace([node("a"), node("b")])
    s.pods_handler.replace([pod("1", "b", limits={"cpu": "2"}), pod("2", "b")])
    snap = s.publish(force=True)
    t = snap.table(np.array([snap.index["b"]]), now=0.0)
    assert t.names == ("b",) and t.allocatable.flags.f_contiguous
    cpu = t.column("cpu")
    assert t.requested[0, cpu] == 1000 and t.limits[0, cpu] == 2500  # max(limit, request) per pod
    assert np.isnan(t.usage).all() and t.load_age_s[0] == np.inf


def test_assume_counts_a_bound_pod_at_once_and_compensates_until_the_load_catches_up() -> None:
    now = [1000.0]
    load = FakeLoad()
    s = ClusterState(
        estimator_factors={"cpu": 85, "memory": 70},
        load=load,
        clock=lambda: now[0],
        compensation=CompensationSpec(report_lag_s=60, max_s=300),
        annotation_prefix="x/",
    )
    s.nodes_handler.replace([node("a", **{"x/cpu": "1", "x/updated": "1970-01-01T00:16:00Z"})])  # t=960
    s.pods_handler.replace([pod("1", "")])
    assert s.assume(uid="1", node="a")
    snap = s.snapshot  # published by assume
    i, cpu = snap.index["a"], snap.resources.index("cpu")
    assert snap.arrays["requested"][cpu, i] == 500
    assert snap.arrays["pending"][cpu, i] == 425  # 500m x 85 %
    assert snap.arrays["usage"][cpu, i] == 1000 and snap.compensated_pods == 1
    assert s._pods["1"].node == "a" and s.node_by_ip("10.0.0.1") == "a"
    # a sample newer than bind + lag: the measurement includes the pod now
    load.record("a", 1000.0 + 61, {"cpu": 1500.0}, source="test")
    now[0] = 1062.0
    snap = s.publish(force=True)
    assert snap.arrays["pending"][cpu, i] == 0 and snap.compensated_pods == 0
    # the watch later shows the same pod bound: still one pod, no double count
    s.pods_handler.upsert(pod("1", "a"))
    assert requested(s)["a"]["pods"] == 1


def test_compensation_expires_after_max() -> None:
    now = [0.0]
    s = ClusterState(
        estimator_factors={"cpu": 100},
        load=FakeLoad(),
        clock=lambda: now[0],
        compensation=CompensationSpec(report_lag_s=60, max_s=300),
    )
    s.nodes_handler.replace([node("a")])
    s.pods_handler.replace([])
    s.pods_handler.upsert(pod("1", "a"))  # the watch shows a new binding
    snap = s.publish(force=True)
    assert snap.arrays["pending"][snap.resources.index("cpu"), 0] == 500
    now[0] = 301.0
    snap = s.publish(force=True)
    assert snap.arrays["pending"][snap.resources.index("cpu"), 0] == 0


def test_a_polled_sample_reaches_the_next_snapshot_without_any_event() -> None:
    # metrics-server and Prometheus write into the load window, not through the informers: a
    # quiet cluster (no pod or node event) must still see them at the next publish
    from extender.load.window import LoadWindow

    now = [1000.0]
    s = ClusterState(estimator_factors={"cpu": 100}, load=LoadWindow(("cpu", "memory")), clock=lambda: now[0])
    s.nodes_handler.replace([node("a")])
    s.pods_handler.replace([])
    first = s.publish()
    cpu = first.resources.index("cpu")
    assert np.isnan(first.arrays["usage"][cpu, 0])
    assert s.publish() is first  # nothing changed: the same snapshot (tables built from it stay valid)
    s._load.record("a", 999.0, {"cpu": 1500.0}, source="metrics-server")
    snap = s.publish()
    assert snap is not first and snap.arrays["usage"][cpu, 0] == 1500 and snap.newest_sample[0] == 999.0
    assert s.publish() is snap
    now[0] += LOAD_REFRESH_S  # window statistics age even without samples: rebuilt now and then
    assert s.publish() is not snap


def test_compensation_republishes_only_when_something_runs_out() -> None:
    now = [0.0]
    load = FakeLoad()
    s = ClusterState(
        estimator_factors={"cpu": 100},
        load=load,
        clock=lambda: now[0],
        compensation=CompensationSpec(report_lag_s=60, max_s=8),
    )  # runs out before LOAD_REFRESH_S
    s.nodes_handler.replace([node("a")])
    s.pods_handler.replace([])
    s.pods_handler.upsert(pod("1", "a"))  # compensated from now on
    snap = s.publish()
    cpu = snap.resources.index("cpu")
    assert snap.arrays["pending"][cpu, 0] == 500
    now[0] = 5.0
    assert s.publish() is snap  # nothing ran out, no new sample: no rebuild every publish
    load.record("a", 4.0, {"cpu": 100.0}, source="test")  # a new sample, but not bind + lag
    snap = s.publish()
    assert snap.arrays["pending"][cpu, 0] == 500 and snap.arrays["usage"][cpu, 0] == 100
    now[0] = 8.5  # past max_s
    snap = s.publish()
    assert snap.arrays["pending"][cpu, 0] == 0 and snap.compensated_pods == 0


def test_malformed_objects_raise_for_the_informer_to_handle() -> None:
    from extender.kube.objects import MalformedObject

    s = ClusterState(estimator_factors={})
    with pytest.raises(MalformedObject):
        s.nodes_handler.upsert(b'{"metadata": 3}')
    with pytest.raises(MalformedObject):
        s.pods_handler.upsert(b'{"metadata": {"name": "x"}}')  # no uid


# --------------------------------------------------------------------------------------------
# Incremental accounting equals a recount from scratch, after any sequence of events

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NODE_NAMES = ("a", "b", "c")
UIDS = tuple(str(i) for i in range(6))
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("node+"), st.sampled_from(NODE_NAMES), st.sampled_from(["2", "4", "8"])),
        st.tuples(st.just("node-"), st.sampled_from(NODE_NAMES), st.just("")),
        st.tuples(
            st.just("pod+"),
            st.sampled_from(UIDS),
            st.tuples(
                st.sampled_from(("",) + NODE_NAMES),
                st.sampled_from(["100m", "1", "2500m"]),
                st.sampled_from(["Running", "Pending", "Succeeded", "Failed"]),
                st.sampled_from([None, "3"]),
            ),
        ),
        st.tuples(st.just("pod-"), st.sampled_from(UIDS), st.just("")),
        st.tuples(st.just("relist"), st.just(""), st.just("")),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_incremental_accounting_equals_a_recount(ops) -> None:
    s = ClusterState(estimator_factors={})
    s.nodes_handler.replace([])
    s.pods_handler.replace([])
    nodes: dict[str, bytes] = {}
    pods: dict[str, bytes] = {}
    for op, key, arg in ops:
        if op == "node+":
            nodes[key] = node(key, cpu=arg)
            s.nodes_handler.upsert(nodes[key])
        elif op == "node-" and key in nodes:
            s.nodes_handler.delete(nodes.pop(key))
        elif op == "pod+":
            node_name, cpu, phase, init = arg
            pods[key] = pod(key, node_name, cpu=cpu, phase=phase, init_cpu=init)
            s.pods_handler.upsert(pods[key])
        elif op == "pod-" and key in pods:
            s.pods_handler.delete(pods.pop(key))
        elif op == "relist":
            s.nodes_handler.replace(list(nodes.values()))
            s.pods_handler.replace(list(pods.values()))
    fresh = ClusterState(estimator_factors={})
    fresh.nodes_handler.replace(list(nodes.values()))
    fresh.pods_handler.replace(list(pods.values()))
    assert s.view() == fresh.view()
    # and the recount by hand: cpu per node
    want = {name: 0.0 for name in nodes}
    for raw in pods.values():
        obj = json.loads(raw)
        n = obj["spec"].get("nodeName", "")
        if n in want and obj["status"]["phase"] not in ("Succeeded", "Failed"):
            c = obj["spec"]["containers"][0]["resources"]["requests"]["cpu"]
            c = float(c[:-1]) if c.endswith("m") else float(c) * 1000
            init = obj["spec"].get("initContainers")
            want[n] += max(c, 3000.0) if init else c
    assert {k: v["cpu"] for k, v in s.view().items()} == want


# --------------------------------------------------------------------------------------------
# Compensation after any sequence of binds, deletions, samples and clock steps equals a plain
# recomputation: a pod bound at b on node x is pending until a build at t with t - b > max_s,
# or with x's newest sample >= b + lag (and never again after).

COMP_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("bind"), st.sampled_from(NODE_NAMES[:2]), st.just(0.0)),
        st.tuples(st.just("delete"), st.integers(0, 30), st.just(0.0)),
        st.tuples(
            st.just("sample"), st.sampled_from(NODE_NAMES[:2]), st.floats(-40, 30)
        ),  # < 0: a clock ahead of ours
        st.tuples(st.just("tick"), st.just(""), st.floats(0, 40)),
        st.tuples(st.just("publish"), st.booleans(), st.just(0.0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=COMP_OPS)
# a node's sample already covers a pod bound after the last build (a clock ahead of ours)
@example(ops=[("sample", "a", -40.0), ("publish", True, 0.0), ("bind", "a", 0.0), ("publish", False, 0.0)])
def test_compensation_equals_a_recomputation(ops) -> None:
    from extender.load.window import LoadWindow

    now = [1000.0]
    lag, max_s = 20.0, 100.0
    s = ClusterState(
        estimator_factors={"cpu": 100},
        load=LoadWindow(("cpu",), window_s=10**6),
        clock=lambda: now[0],
        compensation=CompensationSpec(report_lag_s=lag, max_s=max_s),
    )
    s.nodes_handler.replace([node(n) for n in NODE_NAMES])
    s.pods_handler.replace([])
    pending: dict[str, list] = {}  # uid -> [node, bound at, still pending]
    newest = dict.fromkeys(NODE_NAMES, -np.inf)
    uids = []
    snap = s.publish(force=True)
    for op, a, x in ops:
        if op == "bind":
            uid = str(len(uids))
            uids.append(uid)
            s.pods_handler.upsert(pod(uid, a, cpu="500m", memory=None))
            pending[uid] = [a, now[0], True]
        elif op == "delete" and a < len(uids) and uids[a] in pending:
            s.pods_handler.delete(pod(uids[a], pending.pop(uids[a])[0], cpu="500m", memory=None))
        elif op == "sample":
            s._load.record(a, now[0] - x, {"cpu": 1.0}, source="test")
            newest[a] = max(newest[a], now[0] - x)
        elif op == "tick":
            now[0] += x
        elif op == "publish":
            before = snap
            snap = s.publish(force=a)
            if snap is not before:  # a build: expiry ran at its time
                for p in pending.values():
                    if p[2] and (now[0] - p[1] > max_s or newest[p[0]] >= p[1] + lag):
                        p[2] = False
                cpu = snap.resources.index("cpu")
                for n in NODE_NAMES:
                    want = sum(500.0 for p in pending.values() if p[0] == n and p[2])
                    assert snap.arrays["pending"][cpu, snap.index[n]] == pytest.approx(want, abs=1e-6)
                assert snap.compensated_pods == sum(p[2] for p in pending.values())


def test_a_status_update_changes_nothing_counted_and_publishes_nothing() -> None:
    """Most pod events are status updates of running pods: same node, same resources. They
    leave the counts, the compensation queues and the snapshot as they were; a change of
    resources or node is applied."""
    now = [0.0]
    s = ClusterState(estimator_factors={"cpu": 100}, load=FakeLoad(), clock=lambda: now[0])
    s.nodes_handler.replace([node("a"), node("b")])
    s.pods_handler.replace([])
    s.pods_handler.upsert(pod("1", "a"))  # newly bound: compensated
    snap = s.publish()
    queued = len(s._recent_q)
    for _ in range(3):
        s.pods_handler.upsert(pod("1", "a", phase="Running"))  # the kubelet's status updates
    assert s.publish() is snap and len(s._recent_q) == queued
    assert s.events_applied == 4
    s.pods_handler.upsert(pod("1", "a", cpu="700m"))  # resized: applied
    snap = s.publish()
    cpu = snap.resources.index("cpu")
    assert snap.arrays["requested"][cpu, snap.index["a"]] == 700
    s.pods_handler.upsert(pod("1", "b", cpu="700m"))  # moved (a delete and re-create in practice)
    snap = s.publish()
    assert (
        snap.arrays["requested"][cpu, snap.index["a"]] == 0
        and snap.arrays["requested"][cpu, snap.index["b"]] == 700
    )


def test_pod_events_reuse_the_load_copy_until_the_load_moves() -> None:
    """A snapshot rebuilt for pod events shares the previous one's load arrays (the window did
    not move); a new sample, a new node or LOAD_REFRESH_S later, they are read again, and
    always equal what the window says."""
    from extender.load.window import LoadWindow

    now = [1000.0]
    window = LoadWindow(("cpu", "memory"))
    s = ClusterState(estimator_factors={"cpu": 100}, load=window, clock=lambda: now[0])
    s.nodes_handler.replace([node("a"), node("b")])
    s.pods_handler.replace([])
    window.record("a", 999.0, {"cpu": 1500.0}, source="metrics-server")
    first = s.publish()

    def fresh(snap: Any) -> np.ndarray:
        return window.view(snap.names, snap.resources, now[0]).usage.T

    s.pods_handler.upsert(pod("1", "a"))
    second = s.publish()
    assert second is not first and second.arrays["usage"] is first.arrays["usage"]
    assert second.newest_sample is first.newest_sample
    np.testing.assert_array_equal(second.arrays["usage"], fresh(second))
    window.record("b", 1000.0, {"cpu": 700.0}, source="metrics-server")
    third = s.publish()
    assert third.arrays["usage"] is not second.arrays["usage"]
    np.testing.assert_array_equal(third.arrays["usage"], fresh(third))
    s.nodes_handler.upsert(node("c"))
    fourth = s.publish()
    assert fourth.arrays["usage"].shape[1] == 3
    np.testing.assert_array_equal(fourth.arrays["usage"], fresh(fourth))
    now[0] += LOAD_REFRESH_S
    s.pods_handler.upsert(pod("2", "b"))
    assert s.publish().arrays["usage"] is not fourth.arrays["usage"]


# --- a bind's snapshot (ClusterState.assume derives it from the current one) -------------------


def assert_same_snapshot(got: Any, want: Any, rng: np.random.Generator) -> None:
    """Equal content (not identity): names, axis, counts, every array, and the node tables the
    verbs build from it, of every node and of random subsets in random order."""
    from scoring.types import ARRAY_FIELDS

    assert got.names == want.names and got.resources == want.resources
    assert (got.pods, got.compensated_pods) == (want.pods, want.compensated_pods)
    assert got.fields == want.fields
    for f in want.fields:
        np.testing.assert_array_equal(got.arrays[f], want.arrays[f])
    n = len(want.names)
    for rows in (None, rng.permutation(n), rng.choice(n, size=max(1, n // 3), replace=False)):
        a, b = got.table(rows, 5.0), want.table(rows, 5.0)
        assert a.names == b.names
        for f in ("load_age_s", *ARRAY_FIELDS):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def bind_state(nodes: int = 12) -> ClusterState:
    load = FakeLoad()
    s = ClusterState(
        estimator_factors={"cpu": 85, "memory": 70},
        load=load,
        clock=lambda: 1000.0,
        compensation=CompensationSpec(report_lag_s=60, max_s=300),
    )
    s.nodes_handler.replace([node(f"n{i}") for i in range(nodes)])
    for i in range(0, nodes, 2):
        load.record(f"n{i}", 990.0, {"cpu": 100.0 * i}, source="test")
    s.pods_handler.replace(
        [pod(f"run-{i}", f"n{i % nodes}") for i in range(2 * nodes)]
        + [pod(f"new-{k}", cpu=f"{100 + k}m") for k in range(200)]
    )
    s.publish(force=True)
    return s


@pytest.mark.parametrize("seed", range(6))
def test_a_bind_snapshot_equals_a_full_build(seed: int) -> None:
    """Chains of binds (the same node again, others, up to the patch limit) give the snapshot
    a full build of the same store gives; the next full build starts clean."""
    from extender.cache.snapshot import MAX_PATCHED

    rng = np.random.default_rng(seed)
    s, k = bind_state(), 0
    for chain in (1, 3, 8, MAX_PATCHED + 5):
        for _ in range(chain):
            assert s.assume(uid=f"new-{k}", node=f"n{int(rng.integers(12))}")
            k += 1
        derived = s.snapshot
        assert not s._dirty  # nothing else was pending: the bind's snapshot is the whole truth
        assert_same_snapshot(derived, s.publish(force=True), rng)
        assert not s.snapshot.patched


def test_a_bind_snapshot_shares_what_it_did_not_change() -> None:
    s = bind_state()
    before = s.snapshot
    assert s.assume(uid="new-0", node="n3")
    after = s.snapshot
    i = after.index["n3"]
    assert after.generation > before.generation and after.by_node is before.by_node
    assert set(after.patched) == {i} and after.pods == before.pods + 1
    assert after.arrays["allocatable"] is before.arrays["allocatable"]  # not touched by a bind
    assert after.arrays["requested"] is not before.arrays["requested"]
    assert not after.arrays["requested"].flags.writeable and not after.patched[i].flags.writeable
    cpu = after.resources.index("cpu")
    assert after.arrays["requested"][cpu, i] == before.arrays["requested"][cpu, i] + 100
    assert after.arrays["pending"][cpu, i] == before.arrays["pending"][cpu, i] + 85  # 100m x 85 %
    assert after.table(np.array([i]), 0.0).requested[0, cpu] == after.arrays["requested"][cpu, i]


def test_a_bind_leaves_other_pending_changes_to_the_next_full_build() -> None:
    s = bind_state()
    s.pods_handler.upsert(pod("late", "n5", cpu="2"))  # applied to the store, not yet published
    assert s._dirty
    assert s.assume(uid="new-0", node="n1")
    cpu = s.snapshot.resources.index("cpu")
    assert requested_cpu(s.snapshot, "n1") == 2 * 500 + 100  # the bind shows at once
    assert requested_cpu(s.snapshot, "n5") == 2 * 500  # the watch's pod waits for its turn
    assert s._dirty  # ... which the publisher still owes
    full = s.publish()
    assert requested_cpu(full, "n5") == 2 * 500 + 2000 and requested_cpu(full, "n1") == 1100
    assert cpu == full.resources.index("cpu")


def requested_cpu(snap: Any, name: str) -> float:
    return float(snap.arrays["requested"][snap.resources.index("cpu"), snap.index[name]])


def test_a_bind_builds_the_whole_snapshot_when_it_cannot_patch_one_node() -> None:
    s = bind_state()
    # a node the store knows but no snapshot has shown yet
    s.nodes_handler.upsert(node("fresh"))
    assert "fresh" not in s.snapshot.index
    assert s.assume(uid="new-0", node="fresh")
    assert "fresh" in s.snapshot.index and not s.snapshot.patched and not s._dirty
    # a pod that brings a resource the axis did not have
    gpu_pod = json.loads(pod("gpu"))
    gpu_pod["spec"]["containers"][0]["resources"]["requests"]["example.com/gpu"] = "1"
    s.pods_handler.upsert(json.dumps(gpu_pod).encode())
    assert s.assume(uid="gpu", node="n2")
    snap = s.snapshot
    assert snap.arrays["requested"][snap.resources.index("example.com/gpu"), snap.index["n2"]] == 1
    assert not snap.patched


def test_binds_patch_at_most_max_patched_nodes_before_a_full_build() -> None:
    from extender.cache.snapshot import MAX_PATCHED

    s = bind_state(nodes=MAX_PATCHED + 4)
    for j in range(MAX_PATCHED):
        assert s.assume(uid=f"new-{j}", node=f"n{j}")
        assert len(s.snapshot.patched) == j + 1
    assert s.assume(uid=f"new-{MAX_PATCHED}", node=f"n{MAX_PATCHED}")
    assert not s.snapshot.patched  # built whole
    assert requested_cpu(s.snapshot, f"n{MAX_PATCHED}") == 1000 + 100 + MAX_PATCHED


# --- binds among watch events: a stateful test of the derived snapshots -------------------------

from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule  # noqa: E402

NODES = tuple(f"n{i}" for i in range(5))


class BindsAmongEvents(RuleBasedStateMachine):
    """Watch events, our binds and publishes in any order. ``state`` publishes as it does in
    the extender (a bind derives its snapshot; the rest waits for ``publish()``); ``twin``
    gets the same changes and is built whole after each. Whenever ``state`` owes no publish,
    its snapshot (a chain of derived ones included) must be the twin's."""

    def __init__(self) -> None:
        super().__init__()
        self.state, self.twin = (self._fresh() for _ in range(2))
        self.pending: list[str] = []  # pods seen unbound, not yet bound
        self.bound: dict[str, str] = {}  # uid -> node
        self.cpu: dict[str, int] = {}  # uid -> its request, millicores
        self.uids = 0
        self.rng = np.random.default_rng(0)

    @staticmethod
    def _fresh() -> ClusterState:
        s = ClusterState(
            estimator_factors={"cpu": 85, "memory": 70},
            load=FakeLoad(),
            clock=lambda: 1000.0,
            compensation=CompensationSpec(report_lag_s=60, max_s=300),
        )
        s.nodes_handler.replace([node(n) for n in NODES[:3]])
        s.pods_handler.replace([])
        s.publish(force=True)
        return s

    def _both(self, kind: str, raw: bytes, delete: bool = False) -> None:
        for s in (self.state, self.twin):
            handler = s.nodes_handler if kind == "nodes" else s.pods_handler
            (handler.delete if delete else handler.upsert)(raw)
        self.twin.publish(force=True)

    @rule(cpu=st.integers(1, 4000), bound=st.booleans(), at=st.sampled_from(NODES))
    def watch_adds_a_pod(self, cpu: int, bound: bool, at: str) -> None:
        self.uids += 1
        uid = f"u{self.uids}"
        self.cpu[uid] = cpu
        self._both("pods", pod(uid, at if bound else "", cpu=f"{cpu}m"))
        if bound:
            self.bound[uid] = at
        else:
            self.pending.append(uid)

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def we_bind(self, data: st.DataObject) -> None:
        uid = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        at = data.draw(st.sampled_from(NODES))
        assert self.state.assume(uid=uid, node=at) and self.twin.assume(uid=uid, node=at)
        self.twin.publish(force=True)
        self.bound[uid] = at

    @precondition(lambda self: bool(self.bound))
    @rule(data=st.data(), how=st.sampled_from(["shown bound", "finished", "deleted"]))
    def watch_changes_a_bound_pod(self, data: st.DataObject, how: str) -> None:
        uid = data.draw(st.sampled_from(sorted(self.bound)))
        at = self.bound[uid]
        cpu = f"{self.cpu[uid]}m"  # "shown bound": the pod the bind assumed, now from the watch
        raw = pod(uid, at, cpu=cpu) if how == "shown bound" else pod(uid, at, cpu=cpu, phase="Succeeded")
        self._both("pods", raw, delete=how == "deleted")
        if how != "shown bound":
            del self.bound[uid]

    @rule(at=st.sampled_from(NODES))
    def watch_shows_a_node(self, at: str) -> None:
        self._both("nodes", node(at, cpu="8"))  # n3, n4: new (their pods and binds came first)

    @rule()
    def publisher_turn(self) -> None:
        self.state.publish()

    @invariant()
    def what_is_served_is_the_store(self) -> None:
        if not self.state._dirty:
            assert_same_snapshot(self.state.snapshot, self.twin.snapshot, self.rng)
        assert self.state.counts() == self.twin.counts()


BindsAmongEvents.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestBindsAmongEvents = BindsAmongEvents.TestCase
