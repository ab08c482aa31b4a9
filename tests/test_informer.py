"""The Nodes/Pods informer against the fake API server, through the REAL `kubernetes` client.

Every test drives the informer over HTTP and judges it two ways: the handler's view (key ->
resourceVersion) must equal the server's objects, and the server's audit log must show the
expected requests (how many lists, which watches from which resourceVersion, no busy loops).

The stateful test at the end runs against a pluggable cache: `CACHE_FACTORY` builds the
handlers and the read-back; swap it for the real cluster cache to run the same machine there.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from kubernetes import client

from extender.cache.informer import Informer, InformerHandler
from extender.kube.objects import decode_meta, decode_pod
from tests.kubeapi import AuditEntry, FakeKubeAPI

pytestmark = pytest.mark.timeout(60)

Key = tuple[str, str]  # (namespace, name); namespace "" for nodes
KINDS = ("nodes", "pods")
FAST = {"backoff_base_s": 0.02, "backoff_max_s": 0.2, "stall_timeout_s": 5.0, "connect_timeout_s": 2.0}


# ---- the cache under test (pluggable) ---------------------------------------------------------


class DictHandler:
    """The simplest correct cache: key -> resourceVersion, plus a log of every call in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rvs: dict[Key, str] = {}
        self.calls: list[tuple[Any, ...]] = []

    @staticmethod
    def _key_rv(raw: bytes) -> tuple[Key, str]:
        meta = decode_meta(raw)
        return (meta.namespace, meta.name), meta.resourceVersion

    def replace(self, items: Sequence[bytes]) -> None:
        new = dict(self._key_rv(raw) for raw in items)
        with self._lock:
            self._rvs = new
            self.calls.append(("replace", frozenset(new)))

    def upsert(self, raw: bytes) -> None:
        key, rv = self._key_rv(raw)
        with self._lock:
            self._rvs[key] = rv
            self.calls.append(("upsert", key, rv))

    def delete(self, raw: bytes) -> None:
        key, rv = self._key_rv(raw)
        with self._lock:
            self._rvs.pop(key, None)
            self.calls.append(("delete", key, rv))

    def view(self) -> dict[Key, str]:
        with self._lock:
            return dict(self._rvs)

    def changes(self) -> list[tuple[Any, ...]]:
        with self._lock:
            return [c for c in self.calls if c[0] != "replace"]


@dataclasses.dataclass
class CacheHarness:
    """Handlers to feed (one per kind) and a read-back of what the cache now holds."""

    handlers: Mapping[str, InformerHandler]
    view: Callable[[str], dict[Key, str]]  # kind -> {(namespace, name): resourceVersion}
    close: Callable[[], None] = lambda: None


def make_dict_cache() -> CacheHarness:
    handlers = {kind: DictHandler() for kind in KINDS}
    return CacheHarness(handlers, lambda kind: handlers[kind].view())


CACHE_FACTORY: Callable[[], CacheHarness] = make_dict_cache


# ---- helpers ------------------------------------------------------------------------------------


def server_view(api: FakeKubeAPI, kind: str) -> dict[Key, str]:
    objs = api.nodes() if kind == "nodes" else api.pods()
    return {
        (o["metadata"].get("namespace", ""), o["metadata"]["name"]): o["metadata"]["resourceVersion"]
        for o in objs
    }


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `predicate` (handler state does not wake the server's condition) until true or timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def caught_up(
    api: FakeKubeAPI, view: Callable[[str], dict[Key, str]], kind: str, timeout: float = 5.0
) -> bool:
    return eventually(lambda: view(kind) == server_view(api, kind), timeout)


def lists(api: FakeKubeAPI, kind: str) -> list[AuditEntry]:
    return [e for e in api.requests("GET", f"^/api/v1/{kind}$") if e.query.get("watch") != "true"]


def watches(api: FakeKubeAPI, kind: str) -> list[AuditEntry]:
    return [e for e in api.requests("GET", f"^/api/v1/{kind}$") if e.query.get("watch") == "true"]


def open_watches(api: FakeKubeAPI, kind: str) -> int:
    return len([e for e in watches(api, kind) if e.status == 200])


def await_watch(api: FakeKubeAPI, kind: str, n: int = 1) -> None:
    """Block until the informer's n-th successful watch request reached the server."""
    assert api.wait_until(lambda: open_watches(api, kind) >= n), f"no watch #{n} on {kind}"


def _node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": dict(labels)}}


def _pod(name: str, ns: str = "default") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


def _modify(api: FakeKubeAPI, kind: str, key: Key, value: str) -> dict[str, Any]:
    objs = api.nodes() if kind == "nodes" else api.pods()
    obj = next(o for o in objs if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) == key)
    obj["metadata"].setdefault("labels", {})["v"] = value
    return api.update_node(obj) if kind == "nodes" else api.update_pod(obj)


class Events:
    """on_event recorder: (monotonic time, kind, what)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.log: list[tuple[float, str, str]] = []

    def __call__(self, kind: str, what: str) -> None:
        with self._lock:
            self.log.append((time.monotonic(), kind, what))

    def count(self, what: str, kind: str | None = None) -> int:
        with self._lock:
            return sum(1 for _, k, w in self.log if w == what and kind in (None, k))

    def times(self, what: str) -> list[float]:
        with self._lock:
            return [t for t, _, w in self.log if w == what]


@dataclasses.dataclass
class Running:
    informer: Informer
    handler: DictHandler
    events: Events


@pytest.fixture()
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI(bookmark_interval_s=0.2) as server:
        yield server


@pytest.fixture()
def api_client(api: FakeKubeAPI) -> Iterator[client.ApiClient]:
    with client.ApiClient(configuration=client.Configuration(host=api.url)) as c:
        yield c


@pytest.fixture()
def start(api_client: client.ApiClient) -> Iterator[Callable[..., Running]]:
    started: list[Informer] = []

    def _start(kind: str, handler: DictHandler | None = None, *, sync: bool = True, **kw: Any) -> Running:
        handler = handler or DictHandler()
        events = Events()
        inf = Informer(
            kind,
            api_client,
            handler,
            on_event=events,  # type: ignore[arg-type]
            rng=random.Random(7),
            **{**FAST, **kw},
        )
        started.append(inf)
        inf.start()
        if sync:
            assert inf.wait_synced(5), f"{kind} informer did not sync"
        return Running(inf, handler, events)

    yield _start
    for inf in started:
        inf.stop()


def _threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


# ---- sync, order, bookmarks ---------------------------------------------------------------------


def test_initial_sync_is_paged_then_changes_arrive_in_order(
    api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    for i in range(7):
        api.add_node(_node(f"n{i}"))
    for i in range(12):
        api.add_pod(_pod(f"p{i}", ns=f"ns{i % 3}"))
    nodes, pods = start("nodes", page_size=5), start("pods", page_size=5)

    for kind, run, pages in (("nodes", nodes, 2), ("pods", pods, 3)):
        reqs = lists(api, kind)
        assert len(reqs) == pages and all(r.query["limit"] == "5" for r in reqs)
        assert "continue" not in reqs[0].query and all(r.query["continue"] for r in reqs[1:])
        assert run.handler.calls == [("replace", frozenset(server_view(api, kind)))]  # ONE replace
        assert run.handler.view() == server_view(api, kind)
        assert run.informer.synced and run.informer.last_sync_monotonic is not None
        assert run.informer.resource_version == api.resource_version == "19"
        await_watch(api, kind)
        assert watches(api, kind)[0].query["resourceVersion"] == "19"
        assert watches(api, kind)[0].query["allowWatchBookmarks"] == "true"

    p = api.add_pod(_pod("new", "ns0"))["metadata"]["resourceVersion"]
    p2 = _modify(api, "pods", ("ns0", "new"), "x")["metadata"]["resourceVersion"]
    p3 = api.delete_pod("ns0", "new")["metadata"]["resourceVersion"]
    n1 = _modify(api, "nodes", ("", "n1"), "y")["metadata"]["resourceVersion"]
    n2 = api.delete_node("n1")["metadata"]["resourceVersion"]
    assert eventually(lambda: len(pods.handler.changes()) == 3 and len(nodes.handler.changes()) == 2)
    assert pods.handler.view() == server_view(api, "pods")
    assert nodes.handler.view() == server_view(api, "nodes")
    assert pods.handler.changes() == [
        ("upsert", ("ns0", "new"), p),
        ("upsert", ("ns0", "new"), p2),
        ("delete", ("ns0", "new"), p3),
    ]
    assert nodes.handler.changes() == [("upsert", ("", "n1"), n1), ("delete", ("", "n1"), n2)]
    assert eventually(lambda: pods.informer.resource_version == api.resource_version)
    assert len(lists(api, "nodes")) == 2 and len(lists(api, "pods")) == 3  # no relist
    assert pods.events.count("event") == 3 and nodes.events.count("event") == 2
    assert pods.events.count("error") == nodes.events.count("error") == 0


class DecodingHandler(DictHandler):
    """DictHandler offering the optional decoded path: the informer must decode each watch
    object once with ``decode`` and hand the result over; the raw methods serve lists only."""

    def __init__(self) -> None:
        super().__init__()
        self.decoded = 0

    def decode(self, raw: bytes) -> Any:
        self.decoded += 1
        return decode_pod(raw)

    def upsert(self, raw: bytes) -> None:
        raise AssertionError("upsert(raw) called although decode is offered")

    def delete(self, raw: bytes) -> None:
        raise AssertionError("delete(raw) called although decode is offered")

    def _record(self, what: str, pod: Any) -> None:
        key, rv = (pod.metadata.namespace, pod.metadata.name), pod.metadata.resourceVersion
        with self._lock:
            if what == "upsert":
                self._rvs[key] = rv
            else:
                self._rvs.pop(key, None)
            self.calls.append((what, key, rv))

    def upsert_decoded(self, pod: Any) -> None:
        self._record("upsert", pod)

    def delete_decoded(self, pod: Any) -> None:
        self._record("delete", pod)


def test_a_handler_that_decodes_gets_each_watch_object_decoded_once(
    api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    api.add_pod(_pod("p0"))
    pods = start("pods", DecodingHandler())
    await_watch(api, "pods")
    p = api.add_pod(_pod("new", "ns0"))["metadata"]["resourceVersion"]
    p2 = _modify(api, "pods", ("ns0", "new"), "x")["metadata"]["resourceVersion"]
    p3 = api.delete_pod("ns0", "new")["metadata"]["resourceVersion"]
    assert eventually(lambda: len(pods.handler.changes()) == 3)
    assert pods.handler.changes() == [
        ("upsert", ("ns0", "new"), p),
        ("upsert", ("ns0", "new"), p2),
        ("delete", ("ns0", "new"), p3),
    ]
    assert pods.handler.view() == server_view(api, "pods")
    assert eventually(lambda: pods.informer.resource_version == api.resource_version)
    assert pods.handler.decoded == 3 + pods.events.count("bookmark")  # once per watch line
    assert pods.events.count("error") == pods.events.count("malformed") == 0


def test_bookmarks_advance_rv_without_handler_calls(api: FakeKubeAPI, start: Callable[..., Running]) -> None:
    api.add_node(_node("n0"))
    nodes = start("nodes")
    await_watch(api, "nodes")
    for i in range(3):  # pod changes move the global resourceVersion; the node watch only bookmarks
        api.add_pod(_pod(f"p{i}"))
    assert eventually(lambda: nodes.informer.resource_version == api.resource_version == "4")
    assert nodes.events.count("bookmark") >= 1
    assert nodes.handler.calls == [("replace", frozenset({("", "n0")}))]
    api.drop_watches()  # the resume point is the bookmark's resourceVersion
    await_watch(api, "nodes", 2)
    assert watches(api, "nodes")[-1].query["resourceVersion"] == "4"
    assert len(lists(api, "nodes")) == 1


def test_list_restarts_from_scratch_when_continue_token_expires(
    api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    for i in range(7):
        api.add_node(_node(f"n{i}"))
    api.list_continue_expired("^/api/v1/nodes$")
    nodes = start("nodes", page_size=3)
    reqs = lists(api, "nodes")
    assert [r.status for r in reqs] == [200, 410, 200, 200, 200]
    assert ["continue" in r.query for r in reqs] == [False, True, False, True, True]
    assert nodes.handler.calls == [("replace", frozenset(server_view(api, "nodes")))]
    assert nodes.events.count("relist") == 1 and nodes.events.count("error") == 0


# ---- watch interruptions ------------------------------------------------------------------------


def test_dropped_watch_resumes_from_last_rv_without_relist(
    api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    api.add_node(_node("n0"))
    nodes = start("nodes")
    await_watch(api, "nodes")
    api.add_node(_node("n1"))
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes")
    assert api.drop_watches() == 1
    api.add_node(_node("n2"))  # may land while the watch is down: the rewatch replays it
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes")
    await_watch(api, "nodes", 2)
    assert watches(api, "nodes")[1].query["resourceVersion"] == "2"
    assert len(lists(api, "nodes")) == 1
    assert nodes.events.count("restart") == 1 and nodes.events.count("error") == 0


def test_watch_timeout_rewatches_without_relist(api: FakeKubeAPI, start: Callable[..., Running]) -> None:
    nodes = start("nodes", watch_timeout_s=1)
    await_watch(api, "nodes")
    api.add_node(_node("n0"))
    await_watch(api, "nodes", 3)  # the server ended two watches at timeoutSeconds
    api.add_node(_node("n1"))
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes")
    assert [w.query["timeoutSeconds"] for w in watches(api, "nodes")][:3] == ["1", "1", "1"]
    assert len(lists(api, "nodes")) == 1
    assert nodes.events.count("restart") == nodes.events.count("error") == 0


@pytest.mark.parametrize("how", ["in-stream ERROR 410", "HTTP 410", "history expired"])
def test_expired_watch_relists_exactly_once(
    how: str, api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    for i in range(4):
        api.add_node(_node(f"n{i}"))
    nodes = start("nodes", page_size=3)
    await_watch(api, "nodes")
    lists_before = len(lists(api, "nodes"))  # 2 pages
    if how == "in-stream ERROR 410":
        api.watch_inject_error_410("^/api/v1/nodes$")
    elif how == "HTTP 410":
        api.watch_http_410("^/api/v1/nodes$")
    else:  # the rewatch is held while objects change and history is compacted past its rv
        api.delay("GET", "^/api/v1/nodes$", 0.3)
    api.drop_watches()
    if how == "history expired":
        assert api.wait_until(lambda: len(watches(api, "nodes")) == 2)
    api.add_node(_node("late"))
    api.delete_node("n0")
    _modify(api, "nodes", ("", "n1"), "z")
    if how == "history expired":
        api.expire_history("nodes")
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes")
    assert api.wait_until(lambda: open_watches(api, "nodes") >= 3 - (how == "HTTP 410"))
    assert len(lists(api, "nodes")) == lists_before + 2  # one more full list (2 pages)
    assert [c[0] for c in nodes.handler.calls].count("replace") == 2
    assert nodes.events.count("relist") == 2 and nodes.events.count("error") == 0
    assert nodes.handler.view() == server_view(api, "nodes")


def test_stalled_watch_is_restarted(api: FakeKubeAPI, start: Callable[..., Running]) -> None:
    nodes = start("nodes", stall_timeout_s=0.6)
    await_watch(api, "nodes")
    api.watch_stall(3.0)
    api.drop_watches()
    assert eventually(lambda: nodes.events.count("restart") == 2)  # the drop, then the stall
    api.add_node(_node("n0"))
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes")
    assert len(watches(api, "nodes")) == 3 and len(lists(api, "nodes")) == 1


def test_malformed_line_rewatches_from_last_good_rv(
    api: FakeKubeAPI, start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    nodes = start("nodes")
    await_watch(api, "nodes")
    api.add_node(_node("n0"))
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes")
    api.watch_inject_malformed_line()
    with caplog.at_level(logging.WARNING, logger="extender.informer"):
        api.drop_watches()
        assert eventually(lambda: nodes.events.count("malformed") == 1)
        api.add_node(_node("n1"))
        assert caught_up(api, lambda k: nodes.handler.view(), "nodes")
    assert [w.query["resourceVersion"] for w in watches(api, "nodes")][:3] == ["0", "1", "1"]
    assert len(lists(api, "nodes")) == 1
    assert any("malformed watch line" in r.getMessage() for r in caplog.records)


# ---- HTTP errors and backoff --------------------------------------------------------------------


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (429, 1), (503, None)])
def test_errors_on_list_back_off_then_sync(
    status: int, retry_after: int | None, api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    api.add_node(_node("n0"))
    api.fail("GET", "^/api/v1/nodes$", status=status, times=2, retry_after=retry_after)
    t0 = time.monotonic()
    nodes = start("nodes")
    assert [r.status for r in lists(api, "nodes")] == [status, status, 200]  # no silent urllib3 retry
    assert nodes.events.count("error") == 2 and nodes.handler.view() == server_view(api, "nodes")
    if retry_after:
        assert time.monotonic() - t0 >= 2 * retry_after - 0.1  # Retry-After honoured


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (429, 1)])
def test_errors_on_watch_back_off_and_rewatch_without_relist(
    status: int, retry_after: int | None, api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    nodes = start("nodes")
    await_watch(api, "nodes")
    api.add_node(_node("n0"))
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes")
    api.fail("GET", "^/api/v1/nodes$", status=status, times=1, retry_after=retry_after)
    api.drop_watches()
    await_watch(api, "nodes", 2)
    t_err, t_ok = nodes.events.times("error"), watches(api, "nodes")
    assert [w.status for w in t_ok] == [200, status, 200] and len(t_err) == 1
    assert all(w.query["resourceVersion"] == "1" for w in t_ok[1:])
    api.add_node(_node("n1"))
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes")
    assert len(lists(api, "nodes")) == 1
    if retry_after:
        assert eventually(lambda: nodes.events.count("event") == 2)
        assert nodes.events.times("event")[-1] - t_err[0] >= retry_after - 0.1


@pytest.mark.parametrize("retry_after", ["1e10", "inf", "86400"])
def test_a_huge_retry_after_neither_kills_nor_parks_the_informer(
    retry_after: str, api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    # issue 17: "1e10" and "inf" made the backoff's Event.wait raise OverflowError, killing the
    # thread (no new object ever reached the cache); "86400" put it to sleep for a day
    api.add_node(_node("n0"))
    api.fail("GET", "^/api/v1/nodes$", status=503, times=1, retry_after=retry_after)
    nodes = start("nodes", sync=False, retry_after_max_s=0.3)
    assert nodes.informer.wait_synced(5)
    assert nodes.events.count("error") == 1 and nodes.handler.view() == server_view(api, "nodes")
    assert _threads_named("informer-nodes")


@pytest.mark.parametrize("retry_after", ["-5", "nan", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_negative_or_unreadable_retry_after_leaves_our_own_backoff(
    retry_after: str, api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    api.add_node(_node("n0"))
    api.fail("GET", "^/api/v1/nodes$", status=503, times=2, retry_after=retry_after)
    nodes = start("nodes", sync=False)
    assert nodes.informer.wait_synced(5)
    assert [r.status for r in lists(api, "nodes")] == [503, 503, 200]


def test_the_default_retry_after_cap_keeps_the_thread_waiting_not_dead(
    api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    api.fail("GET", "^/api/v1/nodes$", status=503, times=1, retry_after="1e10")
    nodes = start("nodes", sync=False)
    assert eventually(lambda: nodes.events.count("error") == 1)
    time.sleep(0.3)
    assert _threads_named("informer-nodes")  # backing off (at most 30 s), not dead
    t0 = time.monotonic()
    nodes.informer.stop()
    assert time.monotonic() - t0 < 1.0 and not _threads_named("informer-nodes")


def test_a_crash_of_the_informer_loop_restarts_it_and_is_counted(
    api: FakeKubeAPI,
    start: Callable[..., Running],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a failure inside the failure handling (here: the backoff) used to end the thread for good
    real_pause = Informer._pause
    crashes = []

    def pause_once(self: Informer, retry_after: float | None = None) -> None:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("injected crash in the informer loop")
        real_pause(self, retry_after)

    monkeypatch.setattr(Informer, "_pause", pause_once)
    restarts: list[str] = []
    api.add_node(_node("n0"))
    api.fail("GET", "^/api/v1/nodes$", status=500, times=1)
    with caplog.at_level(logging.ERROR, logger="extender.informer"):
        nodes = start("nodes", sync=False, on_thread_restart=restarts.append)
        assert nodes.informer.wait_synced(5)
    assert restarts == ["informer-nodes"] and nodes.informer.thread_restarts == 1
    assert any("injected crash" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    api.add_node(_node("n1"))
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes")


def test_health_reports_an_informer_failing_beyond_the_limit_and_a_dead_thread(
    api: FakeKubeAPI, start: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = start("nodes")
    await_watch(api, "nodes")
    assert nodes.informer.health(0.3) is None
    api.fail("GET", "^/api/v1/nodes$", status=500, times=10**6)
    api.drop_watches()  # the stream broke: resumed, not yet failing
    assert eventually(lambda: nodes.events.count("error") >= 1)
    assert nodes.informer.health(30.0) is None  # failing, within the limit
    assert eventually(lambda: nodes.informer.health(0.3) is not None)
    assert "no list or watch has succeeded for" in (nodes.informer.health(0.3) or "")
    api.clear_faults()
    api.add_node(_node("n0"))  # a watch event: progress
    assert eventually(lambda: nodes.informer.health(0.3) is None)

    def end_thread(self: Informer) -> None:
        """The loop returns though nobody stopped it: the thread ends (a bug)."""

    monkeypatch.setattr(Informer, "_loop", end_thread)
    pods = start("pods", sync=False)
    assert eventually(lambda: pods.informer.health(60.0) == "informer-pods: its thread has ended")


# ---- progress: a watch that says nothing, a list that never answers, a thread that hangs -----------

# the server ends each watch after 1 s; the informer cuts one silent for 0.5 s
QUICK_WATCH = {"watch_timeout_s": 1, "stall_timeout_s": 0.5}


def stale(running: Running) -> str:
    """health()'s complaint about progress ("" when it has none); the failure limit is far off."""
    why = running.informer.health(60.0) or ""
    return why if "no progress" in why else ""


def test_a_silent_watch_is_resumed_and_past_the_limit_names_its_thread(
    api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    # issue 17: a watch the server accepted and then never spoke on (no event, no bookmark, no
    # end at timeoutSeconds) was cut and resumed for ever while health() said all was well
    nodes = start("nodes", **QUICK_WATCH)
    await_watch(api, "nodes")
    assert nodes.informer.health(60.0) is None
    api.silence_watches("^/api/v1/nodes$")
    api.drop_watches()
    t_fault = time.monotonic()
    api.add_node(_node("n0"))  # the cache misses it while the watches are silent
    assert eventually(lambda: bool(stale(nodes)), timeout=10), nodes.informer.health(60.0)
    t_stale = time.monotonic()
    assert stale(nodes).startswith("informer-nodes: no progress")
    assert nodes.events.count("restart") >= 2  # each silent watch cut at the read timeout, resumed
    assert len(lists(api, "nodes")) == 1 and _threads_named("informer-nodes")
    api.release_watches()
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes", timeout=10)
    assert eventually(lambda: nodes.informer.health(60.0) is None, timeout=10)
    healed = time.monotonic() - t_stale
    print(f"silent watch: stale after {t_stale - t_fault:.2f} s, current {healed:.2f} s after it spoke")


def test_a_hung_list_makes_the_informer_stale_and_it_heals_once_lists_answer(
    api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    nodes = start("nodes", **QUICK_WATCH)
    await_watch(api, "nodes")
    api.hang_lists("^/api/v1/nodes$")
    api.watch_inject_error_410("^/api/v1/nodes$")  # the next watch expires: the informer relists
    api.drop_watches()
    assert eventually(lambda: bool(stale(nodes)), timeout=10), nodes.informer.health(60.0)
    assert nodes.events.count("error") >= 1  # each hung list cut at the read timeout
    api.add_node(_node("n0"))
    api.release_lists()
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes", timeout=10)
    assert eventually(lambda: nodes.informer.health(60.0) is None, timeout=10)


class BlockingHandler(DictHandler):
    """upsert() waits while ``open`` is clear: a thread alive but stuck in a call."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.open.set()

    def upsert(self, raw: bytes) -> None:
        self.open.wait()
        super().upsert(raw)


def test_a_thread_blocked_in_its_handler_is_reported_though_alive(
    api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    handler = BlockingHandler()
    nodes = start("nodes", handler, **QUICK_WATCH)
    await_watch(api, "nodes")
    handler.open.clear()
    api.add_node(_node("n0"))
    try:
        assert eventually(lambda: bool(stale(nodes)), timeout=10), nodes.informer.health(60.0)
        assert _threads_named("informer-nodes")  # alive: only its progress tells
    finally:
        handler.open.set()
    assert caught_up(api, lambda k: nodes.handler.view(), "nodes", timeout=10)
    assert eventually(lambda: nodes.informer.health(60.0) is None, timeout=10)


def test_a_quiet_watch_without_bookmarks_stays_current() -> None:
    # no event and no bookmark for longer than the limit: the server's own end of each watch
    # at timeoutSeconds is the progress, so a quiet cluster is not taken for a stale cache
    with FakeKubeAPI(bookmark_interval_s=3600) as api:
        with client.ApiClient(configuration=client.Configuration(host=api.url)) as api_client:
            inf = Informer("nodes", api_client, DictHandler(), watch_timeout_s=1, stall_timeout_s=1.5)
            inf.start()
            try:
                assert inf.wait_synced(5)
                deadline = time.monotonic() + 2 * inf.stale_after_s
                while time.monotonic() < deadline:
                    assert inf.health(60.0) is None
                    time.sleep(0.05)
                assert len(watches(api, "nodes")) >= 3 and len(lists(api, "nodes")) == 1
            finally:
                inf.stop()


def test_the_read_timeout_and_the_progress_limit_derive_from_the_watch_timeout(
    api_client: client.ApiClient,
) -> None:
    inf = Informer("nodes", api_client, DictHandler(), watch_timeout_s=60)
    assert inf.stall_timeout_s == 90.0 and inf.stale_after_s == 150.0
    assert Informer("pods", api_client, DictHandler()).stale_after_s == 150.0  # the default: 60 s
    explicit = Informer("pods", api_client, DictHandler(), watch_timeout_s=10, stall_timeout_s=4)
    assert explicit.stale_after_s == 14.0
    for i in (inf, explicit):
        i.stop()


def test_dropped_list_connection_is_seen_not_silently_retried(
    api: FakeKubeAPI, start: Callable[..., Running]
) -> None:
    api.drop("GET", "^/api/v1/nodes$")
    nodes = start("nodes")
    assert [r.status for r in lists(api, "nodes")] == [0, 200]
    assert nodes.events.count("error") == 1


def test_persistent_500_is_not_a_busy_loop(api: FakeKubeAPI, start: Callable[..., Running]) -> None:
    api.fail("GET", "^/api/v1/nodes$", status=500, times=10_000)
    nodes = start("nodes", sync=False, backoff_base_s=0.05, backoff_max_s=0.4)
    time.sleep(2.0)
    n = len(lists(api, "nodes"))
    assert 4 <= n <= 25, n  # full jitter: mean pause ~0.2 s at the cap
    assert not nodes.informer.synced and nodes.events.count("error") in (n - 1, n)


def test_unreachable_server_backs_off() -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    events = Events()
    with client.ApiClient(configuration=client.Configuration(host=url)) as api_client:
        inf = Informer(
            "nodes",
            api_client,
            DictHandler(),
            on_event=events,
            rng=random.Random(1),
            backoff_base_s=0.05,
            backoff_max_s=0.2,
        )
        inf.start()
        try:
            time.sleep(1.0)
            assert 3 <= events.count("error") <= 30 and not inf.synced
        finally:
            inf.stop()


# ---- handler failures, resync, stop ---------------------------------------------------------------


class FlakyHandler(DictHandler):
    """Raises on the first replace() and on the first upsert()."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: set[str] = set()

    def _maybe_fail(self, what: str) -> None:
        if what not in self.failed:
            self.failed.add(what)
            raise RuntimeError(f"cache bug in {what}")

    def replace(self, items: Sequence[bytes]) -> None:
        self._maybe_fail("replace")
        super().replace(items)

    def upsert(self, raw: bytes) -> None:
        self._maybe_fail("upsert")
        super().upsert(raw)


def test_handler_exception_is_logged_and_relists(
    api: FakeKubeAPI, start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    api.add_node(_node("n0"))
    with caplog.at_level(logging.ERROR, logger="extender.informer"):
        nodes = start("nodes", FlakyHandler())
        await_watch(api, "nodes")
        api.add_node(_node("n1"))  # upsert raises: relist instead
        assert caught_up(api, lambda k: nodes.handler.view(), "nodes")
    assert len(lists(api, "nodes")) == 3
    assert nodes.events.count("error") == 2 and nodes.events.count("relist") == 2
    tracebacks = [r for r in caplog.records if r.exc_info and "cache bug" in str(r.exc_info[1])]
    assert len(tracebacks) == 2
    assert _threads_named("informer-nodes")


def test_resync_relists_periodically(api: FakeKubeAPI, start: Callable[..., Running]) -> None:
    api.add_node(_node("n0"))
    nodes = start("nodes", resync_s=1.0)
    first = nodes.informer.last_sync_monotonic
    assert eventually(lambda: [c[0] for c in nodes.handler.calls].count("replace") >= 3)
    assert nodes.informer.last_sync_monotonic is not None and first is not None
    assert nodes.informer.last_sync_monotonic - first >= 1.5
    assert len(lists(api, "nodes")) >= 3
    assert nodes.events.count("error") == nodes.events.count("restart") == 0


@pytest.mark.parametrize("during", ["stalled watch", "long backoff"])
def test_stop_is_prompt(during: str, api: FakeKubeAPI, start: Callable[..., Running]) -> None:
    if during == "stalled watch":
        nodes = start("nodes", stall_timeout_s=30.0)
        await_watch(api, "nodes")
        api.watch_stall(20.0)
        api.drop_watches()
        await_watch(api, "nodes", 2)
    else:
        api.fail("GET", "^/api/v1/nodes$", status=503, retry_after=30)
        nodes = start("nodes", sync=False)
        assert eventually(lambda: nodes.events.count("error") == 1)
    time.sleep(0.2)  # the informer is now blocked reading, or sleeping
    assert _threads_named("informer-nodes")
    t0 = time.monotonic()
    nodes.informer.stop()
    assert time.monotonic() - t0 < 1.0
    assert not _threads_named("informer-nodes")


def test_callers_api_client_is_left_alone(api_client: client.ApiClient, api: FakeKubeAPI) -> None:
    before = (api_client.configuration.retries, dict(api_client.default_headers))
    inf = Informer("pods", api_client, DictHandler())
    inf.start()
    assert inf.wait_synced(5)
    inf.stop()
    assert (api_client.configuration.retries, dict(api_client.default_headers)) == before
    with pytest.raises(ValueError):
        Informer("services", api_client, DictHandler())  # type: ignore[arg-type]


# ---- stateful: any sequence of changes and faults ends with cache == server ------------------------


class InformerMachine(RuleBasedStateMachine):
    cache_factory: Callable[[], CacheHarness] = staticmethod(lambda: CACHE_FACTORY())  # subclasses swap it

    """Changes and faults in any order; after catching up, the cache equals the server."""

    def __init__(self) -> None:
        super().__init__()
        self.api = FakeKubeAPI(bookmark_interval_s=0.1).start()
        self.client = client.ApiClient(configuration=client.Configuration(host=self.api.url))
        self.cache = self.cache_factory()
        self.serial = 0
        self.informers = [
            Informer(
                kind,
                self.client,
                self.cache.handlers[kind],
                page_size=3,  # type: ignore[arg-type]
                rng=random.Random(3),
                **FAST,
            )
            for kind in KINDS
        ]

    def _name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def _pick(self, kind: str, i: int) -> Key | None:
        keys = sorted(server_view(self.api, kind))
        return keys[i % len(keys)] if keys else None

    @initialize(n_nodes=st.integers(0, 7), n_pods=st.integers(0, 7))
    def start_informers(self, n_nodes: int, n_pods: int) -> None:
        for _ in range(n_nodes):  # present before the first list: paged initial sync
            self.api.add_node(_node(self._name("n")))
        for i in range(n_pods):
            self.api.add_pod(_pod(self._name("p"), f"ns{i % 2}"))
        for inf in self.informers:
            inf.start()
        for inf in self.informers:
            assert inf.wait_synced(5)

    @rule(kind=st.sampled_from(KINDS), ns=st.sampled_from(["ns0", "ns1"]))
    def add(self, kind: str, ns: str) -> None:
        if kind == "nodes":
            self.api.add_node(_node(self._name("n")))
        else:
            self.api.add_pod(_pod(self._name("p"), ns))

    @rule(kind=st.sampled_from(KINDS), i=st.integers(0, 15), value=st.sampled_from("ab"))
    def modify(self, kind: str, i: int, value: str) -> None:
        if key := self._pick(kind, i):
            _modify(self.api, kind, key, value)

    @rule(kind=st.sampled_from(KINDS), i=st.integers(0, 15))
    def delete(self, kind: str, i: int) -> None:
        if key := self._pick(kind, i):
            if kind == "nodes":
                self.api.delete_node(key[1])
            else:
                self.api.delete_pod(*key)

    @rule()
    def drop_watches(self) -> None:
        self.api.drop_watches()

    @rule(kind=st.sampled_from(KINDS), http=st.booleans())
    def inject_410(self, kind: str, http: bool) -> None:
        (self.api.watch_http_410 if http else self.api.watch_inject_error_410)(f"^/api/v1/{kind}$")
        self.api.drop_watches(f"^/api/v1/{kind}$")

    @rule()
    def expire_history(self) -> None:
        self.api.expire_history()

    @rule()
    def catch_up(self) -> None:
        self.check()

    def check(self) -> None:
        for kind in KINDS:
            assert caught_up(self.api, self.cache.view, kind), (
                f"{kind}: cache {sorted(self.cache.view(kind).items())} "
                f"!= server {sorted(server_view(self.api, kind).items())}"
            )

    @invariant()
    def informers_alive(self) -> None:  # and those of earlier examples all stopped
        names = sorted(t.name for t in threading.enumerate() if t.name.startswith("informer-"))
        assert names == ["informer-nodes", "informer-pods"]

    def teardown(self) -> None:
        try:
            if all(inf.synced for inf in self.informers):
                self.check()
        finally:
            for inf in self.informers:
                inf.stop()
            self.cache.close()
            self.client.close()
            self.api.stop()


TestInformerMachine = InformerMachine.TestCase
TestInformerMachine.settings = settings(
    max_examples=40, stateful_step_count=8, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# ---- one-pass decoding of pod watch lines -------------------------------------------------------

_QUANTITY = st.sampled_from(["100m", "1", "2.5", "512Mi", "1Gi", "0", "3e2", "1k", "x", ""])
_RESOURCES = st.dictionaries(
    st.sampled_from(["cpu", "memory", "pods", "nvidia.com/gpu"]), _QUANTITY, max_size=3
)
_CONTAINER = st.fixed_dictionaries(
    {"name": st.text(max_size=5)},
    optional={
        "resources": st.fixed_dictionaries({}, optional={"requests": _RESOURCES, "limits": _RESOURCES}),
        "restartPolicy": st.sampled_from(["Always", "Never"]),
        "image": st.text(max_size=8),
    },
)
_REQUIREMENTS = st.one_of(
    st.fixed_dictionaries({}, optional={"requests": _RESOURCES, "limits": _RESOURCES}),
    st.just({"requests": ["1"]}),
)
_CONTAINER_STATUS = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=5), st.just(3))},
    optional={"resources": _REQUIREMENTS, "allocatedResources": _RESOURCES, "ready": st.booleans()},
)
_POD = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"name": st.text(max_size=6)},
            optional={
                "namespace": st.text(max_size=4),
                "uid": st.text(max_size=6),
                "resourceVersion": st.sampled_from(["", "1", "42"]),
                "annotations": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
                "managedFields": st.lists(st.dictionaries(st.text(max_size=3), st.integers()), max_size=2),
            },
        )
    },
    optional={
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "containers": st.lists(_CONTAINER, max_size=2),
                "initContainers": st.lists(_CONTAINER, max_size=2),
                "overhead": _RESOURCES,
                "nodeName": st.text(max_size=4),
                "resources": _REQUIREMENTS,
            },
        ),
        "status": st.fixed_dictionaries(
            {},
            optional={
                "phase": st.sampled_from(["Running", "Succeeded"]),
                "qosClass": st.sampled_from(["Burstable", ""]),
                "containerStatuses": st.lists(_CONTAINER_STATUS, max_size=2),
                "initContainerStatuses": st.lists(_CONTAINER_STATUS, max_size=1),
                "resources": _REQUIREMENTS,
                "allocatedResources": _RESOURCES,
                "conditions": st.lists(
                    st.fixed_dictionaries(
                        {"type": st.sampled_from(["PodResizePending", "Ready"])},
                        optional={
                            "reason": st.one_of(st.sampled_from(["Infeasible", "Deferred"]), st.integers())
                        },
                    ),
                    max_size=2,
                ),
            },
        ),
        "kind": st.just("Pod"),
    },
)
_OBJECT = st.one_of(
    _POD,
    st.none(),
    st.integers(),
    st.lists(st.integers(), max_size=2),
    st.just({"kind": "Status", "metadata": {}, "status": "Failure", "code": 410}),
    st.just({"metadata": {"name": 5}}),
    st.just({"spec": {"containers": "no"}}),
)
_TYPE = st.sampled_from(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR", "", "FOO"])


@settings(max_examples=300, deadline=None)
@given(etype=_TYPE, obj=_OBJECT, drop_type=st.booleans(), garble=st.sampled_from([b"", b"}", b"x"]))
def test_one_pass_pod_line_agrees_with_the_general_path(
    etype: str, obj: Any, drop_type: bool, garble: bytes
) -> None:
    """The one-pass decode of a pod watch line gives exactly what the envelope-then-object
    path gives, and declines (None) every line that path would not apply as a change, so the
    informer judges those as before."""
    import json as _json

    from extender.kube.objects import MalformedObject, decode_pod_watch_line, decode_watch_event

    event = {"object": obj} if drop_type else {"type": etype, "object": obj}
    line = _json.dumps(event).encode() + garble
    fast = decode_pod_watch_line(line)
    try:
        ev = decode_watch_event(line)
        changes = ("ADDED", "MODIFIED", "DELETED", "BOOKMARK")
        general = (ev.type, decode_pod(ev.raw)) if ev.type in changes else None
    except MalformedObject:
        general = None
    assert fast == general
