"""A bind's pod is counted in every order of events (``ClusterState.assume`` / ``forget``,
``CachedBinder``): one test per order, each of which the code before issue 16 failed where
noted; the random interleavings are tests/test_bind_differential.py's."""

from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np

from extender.cache.node_source import CachedBinder, CacheSource
from extender.cache.store import CONFIRMED, COUNTED, ELSEWHERE, KNOWN, UNKNOWN_POD, Assumption, ClusterState
from extender.kube.bind import BindOutcome, BindResult, BindTarget
from extender.kube.objects import Pod, decode_pod
from extender.verbs.verbs import Verbs
from tests.test_bind_differential import POLICY, _Cache
from tests.test_cluster import node, pod


def cpu_on(s: ClusterState, name: str) -> float:
    """CPU requested on ``name`` in the snapshot the verbs read now (no publisher round)."""
    snap = s.snapshot
    return float(snap.arrays["requested"][snap.resources.index("cpu"), snap.index[name]])


def cluster() -> ClusterState:
    s = ClusterState(estimator_factors={"cpu": 85, "memory": 70})
    s.nodes_handler.replace([node("a"), node("b")])
    s.pods_handler.replace([])
    s.publish(force=True)
    return s


def test_watch_first_then_bind() -> None:
    """The watch applied the bound pod (the publisher has not run) before the bind's own
    bookkeeping: the snapshot must show it when the bind returns (failed before issue 16)."""
    s = cluster()
    s.pods_handler.upsert(pod("1", ""))
    s.publish()
    s.pods_handler.upsert(pod("1", "a"))  # no publisher round
    seen = s.assume(uid="1", node="a")
    assert seen.outcome == CONFIRMED and cpu_on(s, "a") == 500


def test_bind_first_then_watch() -> None:
    s = cluster()
    s.pods_handler.upsert(pod("1", ""))
    assert s.assume(uid="1", node="a").outcome == COUNTED and cpu_on(s, "a") == 500
    s.pods_handler.upsert(pod("1", ""))  # an update older than the bind: still counted
    s.publish()
    assert cpu_on(s, "a") == 500
    s.pods_handler.upsert(pod("1", "a"))  # the watch shows the bind: counted once
    s.publish()
    assert cpu_on(s, "a") == 500 and s.counts() == (2, 1)
    assert not s.forget("1")  # confirmed: a late failure of a retried bind changes nothing


def test_a_pod_the_watch_never_showed_is_counted_from_the_request() -> None:
    """Only the scheduling request carried the pod (failed before issue 16)."""
    s = cluster()
    assert s.assume(uid="1", node="a").outcome == UNKNOWN_POD and cpu_on(s, "a") == 0
    spec = decode_pod(pod("1", "", cpu="2"))
    assert s.assume(uid="1", node="a", pod=spec).outcome == COUNTED and cpu_on(s, "a") == 2000
    s.pods_handler.upsert(pod("1", "", cpu="2"))  # the watch catches up with the pending pod
    s.publish()
    assert cpu_on(s, "a") == 2000
    s.pods_handler.delete(pod("1", "a"))
    s.publish()
    assert cpu_on(s, "a") == 0


def test_a_failed_bind_is_forgotten_and_the_pod_is_pending_again() -> None:
    s = cluster()
    s.pods_handler.upsert(pod("1", ""))
    assert s.assume(uid="1", node="a").outcome == COUNTED
    assert s.forget("1") and cpu_on(s, "a") == 0
    assert s.assume(uid="1", node="b").outcome == COUNTED and cpu_on(s, "b") == 500  # its spec was kept


def test_a_relist_keeps_a_bound_pod_it_shows_pending_and_drops_one_it_does_not_show() -> None:
    s = cluster()
    s.pods_handler.upsert(pod("1", ""))
    s.pods_handler.upsert(pod("2", ""))
    s.assume(uid="1", node="a")
    s.assume(uid="2", node="a")
    s.pods_handler.replace([pod("1", "")])  # listed before the bind landed; pod 2 is gone
    s.publish()
    assert cpu_on(s, "a") == 500


def test_outcomes_for_a_pod_counted_elsewhere_or_already_here() -> None:
    s = cluster()
    s.pods_handler.upsert(pod("1", "b"))
    assert s.assume(uid="1", node="a").outcome == ELSEWHERE
    s.pods_handler.upsert(pod("2", ""))
    s.assume(uid="2", node="a")
    assert s.assume(uid="2", node="a").outcome == KNOWN and cpu_on(s, "a") == 500


def test_many_binds_without_a_publisher_round_each_show_at_once() -> None:
    """More binds than a derived snapshot patches (MAX_PATCHED) in a row: each is seen."""
    s = ClusterState(estimator_factors={})
    s.nodes_handler.replace([node(f"n{i}") for i in range(40)])
    s.pods_handler.replace([pod(str(k), "") for k in range(80)])
    s.publish(force=True)
    for k in range(80):
        assert s.assume(uid=str(k), node=f"n{k % 40}")
        assert cpu_on(s, f"n{k % 40}") == 500 * (k // 40 + 1)


class _SlowBinder:
    """The API's Binding, held until the test lets it answer."""

    timeout_s = 4.0

    def __init__(self, ok: bool) -> None:
        self.ok = ok
        self.entered, self.go = threading.Event(), threading.Event()

    def bind(self, target: BindTarget, *, timeout_s: float | None = None) -> BindResult:
        self.entered.set()
        assert self.go.wait(5)
        return BindResult(BindOutcome.BOUND, "") if self.ok else BindResult(BindOutcome.API_ERROR, "boom")


def _prioritize(verbs: Verbs, uid: str) -> dict[str, int]:
    body = json.dumps({"Pod": json.loads(pod(uid, "", cpu="3")), "NodeNames": ["a", "b"]}).encode()
    return {h["Host"]: h["Score"] for h in json.loads(verbs.prioritize(body).body)}


def test_a_call_while_a_bind_is_in_flight_sees_the_pod_and_a_failed_bind_is_undone() -> None:
    """kube-scheduler binds asynchronously: the next pod's calls can arrive while the Binding
    is in flight. The pod counts from the moment its bind arrives; if the API refuses it, it
    is uncounted before the bind answers."""
    for ok in (True, False):
        s = cluster()
        slow = _SlowBinder(ok)
        verbs = Verbs(
            policy=POLICY,
            source=CacheSource(_Cache(s)),
            binder=CachedBinder(slow, s),
            logger=logging.getLogger("test"),
        )
        first = _prioritize(verbs, "1")
        assert first["a"] == first["b"]
        answer: list[bytes] = []
        body = json.dumps({"PodName": "p1", "PodNamespace": "default", "PodUID": "1", "Node": "a"}).encode()
        t = threading.Thread(target=lambda v=verbs, out=answer, b=body: out.append(v.bind(b).body))
        t.start()
        assert slow.entered.wait(5)
        during = _prioritize(verbs, "2")
        assert during["a"] < during["b"], during  # counted while its Binding is in flight
        slow.go.set()
        t.join(5)
        assert json.loads(answer[0])["Error"] == ("" if ok else "boom")
        after = _prioritize(verbs, "2")
        assert (after["a"] < after["b"]) is ok, after
        assert np.isclose(cpu_on(s, "a"), 3000 if ok else 0)


class _SlowState:
    """A cache that takes all the time it is given for each call (a child that barely answers)."""

    def __init__(self) -> None:
        self.given: list[float] = []

    def assume(
        self, *, uid: str, node: str, pod: Pod | None = None, timeout_s: float | None = None
    ) -> Assumption:
        assert timeout_s is not None
        self.given.append(timeout_s)
        time.sleep(min(timeout_s, 0.3))
        return Assumption(COUNTED, node)

    def forget(self, uid: str, *, timeout_s: float | None = None) -> bool:
        assert timeout_s is not None
        self.given.append(timeout_s)
        time.sleep(timeout_s)
        return True


class _FullBinder:
    """An API bind that uses the whole time it is given, then fails."""

    timeout_s = 1.0

    def bind(self, target: BindTarget, *, timeout_s: float | None = None) -> BindResult:
        assert timeout_s is not None
        time.sleep(max(0.0, timeout_s))
        return BindResult(BindOutcome.API_ERROR, "timed out")


def test_a_bind_with_its_count_binding_and_uncount_stays_inside_the_bind_timeout() -> None:
    # issue 17: the uncount of a refused bind came on top of EXTENDER_BIND_TIMEOUT_S
    state = _SlowState()
    binder = CachedBinder(_FullBinder(), state)
    start = time.monotonic()
    result = binder.bind(BindTarget("p", "default", "u1", "a"))
    took = time.monotonic() - start
    assert not result.ok
    assert took < _FullBinder.timeout_s + 0.05, took
    assert len(state.given) == 2 and state.given[1] > 0.2  # the uncount had its reserve


class _CountingBinder:
    """The API's Binding: succeeds (or not), counting the requests."""

    timeout_s = 4.0

    def __init__(self, ok: bool = True) -> None:
        self.ok, self.calls = ok, 0

    def bind(self, target: BindTarget, *, timeout_s: float | None = None) -> BindResult:
        self.calls += 1
        return BindResult(BindOutcome.BOUND, "") if self.ok else BindResult(BindOutcome.API_ERROR, "boom")


def test_a_retried_bind_sends_no_second_binding_before_the_watch_confirms() -> None:
    """The scheduler retries a bind whose answer it lost; the watch has not shown the pod bound
    yet (the cache counts it as KNOWN only): the retry succeeds without a second Binding, and
    a retry to another node is refused. A bind the API refused is not remembered."""
    s = cluster()
    s.pods_handler.upsert(pod("1", ""))
    api = _CountingBinder()
    binder = CachedBinder(api, s)
    target = BindTarget(pod_name="p-1", namespace="ns", pod_uid="1", node="a")
    assert binder.bind(target).outcome == BindOutcome.BOUND
    assert binder.bind(target).outcome == BindOutcome.ALREADY_BOUND and api.calls == 1
    other = BindTarget(pod_name="p-1", namespace="ns", pod_uid="1", node="b")
    assert binder.bind(other).outcome == BindOutcome.CONFLICT and api.calls == 1
    refused = _CountingBinder(ok=False)
    s.pods_handler.upsert(pod("2", ""))
    binder = CachedBinder(refused, s)
    two = BindTarget(pod_name="p-2", namespace="ns", pod_uid="2", node="a")
    assert binder.bind(two).outcome == BindOutcome.API_ERROR
    assert binder.bind(two).outcome == BindOutcome.API_ERROR and refused.calls == 2
