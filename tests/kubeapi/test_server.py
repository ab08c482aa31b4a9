"""The fake API server, exercised through the REAL `kubernetes` client over HTTP.

These tests pin both the fake's behaviour and the official client's reactions to it (how it
reports timeouts, what `watch.stream` does with a 410), so tests built on the fake can trust it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.kubeapi import FakeKubeAPI

pytestmark = pytest.mark.timeout(30)


@pytest.fixture()
def api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI(bookmark_interval_s=0.2) as server:
        yield server


@pytest.fixture()
def v1(api: FakeKubeAPI) -> Iterator[client.CoreV1Api]:
    cfg = client.Configuration(host=api.url)
    with client.ApiClient(configuration=cfg) as api_client:
        yield client.CoreV1Api(api_client)


def _pod(name: str, ns: str = "default", node: str = "", phase: str = "Pending") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec, "status": {"phase": phase}}


def _binding(pod: str, node: str, uid: str | None = None) -> client.V1Binding:
    return client.V1Binding(
        metadata=client.V1ObjectMeta(name=pod, uid=uid),
        target=client.V1ObjectReference(api_version="v1", kind="Node", name=node),
    )


def test_list_nodes_and_pods_typed_and_raw(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    api.add_node({"metadata": {"name": "n1", "labels": {"zone": "a"}}})
    api.add_node({"metadata": {"name": "n2"}})
    api.add_pod(_pod("p1", "ns1", node="n1", phase="Running"))
    api.add_pod(_pod("p2", "ns2", phase="Succeeded"))

    nodes = v1.list_node()
    assert [n.metadata.name for n in nodes.items] == ["n1", "n2"]
    assert nodes.metadata.resource_version == api.resource_version == "4"

    raw = v1.list_pod_for_all_namespaces(_preload_content=False)
    doc = json.loads(raw.data)
    assert doc["kind"] == "PodList" and doc["apiVersion"] == "v1"
    assert doc["metadata"]["resourceVersion"] == "4"
    assert {p["metadata"]["name"] for p in doc["items"]} == {"p1", "p2"}
    assert all(p["metadata"]["uid"] for p in doc["items"])

    assert [p.metadata.name for p in v1.list_namespaced_pod("ns2").items] == ["p2"]
    on_n1 = v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")
    assert [p.metadata.name for p in on_n1.items] == ["p1"]
    unbound_live = v1.list_pod_for_all_namespaces(
        field_selector="spec.nodeName=,status.phase!=Succeeded,status.phase!=Failed"
    )
    assert unbound_live.items == []
    assert [n.metadata.name for n in v1.list_node(label_selector="zone=a").items] == ["n1"]
    assert api.requests("GET", r"^/api/v1/pods$")[1].query["fieldSelector"] == "spec.nodeName=n1"


def test_pagination_with_limit_and_continue(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    for i in range(5):
        api.add_pod(_pod(f"p{i}"))
    first = v1.list_pod_for_all_namespaces(limit=2)
    assert [p.metadata.name for p in first.items] == ["p0", "p1"]
    assert first.metadata.remaining_item_count == 3 and first.metadata._continue
    names = [p.metadata.name for p in first.items]
    token = first.metadata._continue
    while token:
        page = v1.list_pod_for_all_namespaces(limit=2, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [p.metadata.name for p in page.items]
        token = page.metadata._continue
    assert names == [f"p{i}" for i in range(5)]


def test_get_pod_and_404_status(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    created = api.add_pod(_pod("p1", "ns"))
    assert v1.read_namespaced_pod("p1", "ns").metadata.uid == created["metadata"]["uid"]
    with pytest.raises(ApiException) as exc:
        v1.read_namespaced_pod("nope", "ns")
    assert exc.value.status == 404
    body = json.loads(exc.value.body)
    assert body["kind"] == "Status" and body["reason"] == "NotFound" and body["code"] == 404


def test_watch_sees_added_modified_deleted_and_bookmarks(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    api.add_node({"metadata": {"name": "old"}})
    start_rv = v1.list_node().metadata.resource_version
    seen: list[tuple[str, str, str]] = []

    def mutate() -> None:  # once the watch is open, so these arrive live rather than as replay
        api.wait_until(lambda: any(e.query.get("watch") for e in api.requests("GET", "^/api/v1/nodes$")))
        api.add_node({"metadata": {"name": "n1"}})
        node = next(n for n in api.nodes() if n["metadata"]["name"] == "n1")
        node["metadata"]["labels"] = {"x": "y"}
        api.update_node(node)
        api.delete_node("n1")

    t = threading.Thread(target=mutate)
    t.start()
    w = watch.Watch()
    t0 = time.monotonic()
    for ev in w.stream(
        v1.list_node, resource_version=start_rv, timeout_seconds=2, allow_watch_bookmarks=True
    ):
        meta = ev["raw_object"]["metadata"]
        seen.append((ev["type"], meta.get("name", ""), meta["resourceVersion"]))
    t.join()
    assert 1.5 < time.monotonic() - t0 < 4  # the server closed the stream at timeoutSeconds
    changes = [(typ, name) for typ, name, _ in seen if typ != "BOOKMARK"]
    assert changes == [("ADDED", "n1"), ("MODIFIED", "n1"), ("DELETED", "n1")]
    assert [int(rv) for typ, _, rv in seen if typ != "BOOKMARK"] == [2, 3, 4]
    assert any(typ == "BOOKMARK" for typ, _, _ in seen)
    assert w.resource_version == "4"  # bookmarks and events advance the client's resume point


def test_watch_replays_history_and_filters_by_field_selector(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    api.add_pod(_pod("a"))
    rv = api.resource_version
    pod_b = api.add_pod(_pod("b"))
    pod_b["spec"]["nodeName"] = "n1"
    api.update_pod(pod_b)  # leaves the spec.nodeName= selection: seen as DELETED by that watch
    events = [
        (e["type"], e["raw_object"]["metadata"]["name"])
        for e in watch.Watch().stream(
            v1.list_namespaced_pod,
            "default",
            resource_version=rv,
            timeout_seconds=1,
            field_selector="spec.nodeName=",
        )
    ]
    assert events == [("ADDED", "b"), ("DELETED", "b")]


def test_watch_from_expired_rv_in_stream_410(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    api.add_node({"metadata": {"name": "n1"}})
    api.add_node({"metadata": {"name": "n2"}})
    api.expire_history()  # history now starts after rv 2: a watch from rv 1 is too old
    with pytest.raises(ApiException) as exc:
        list(watch.Watch().stream(v1.list_node, resource_version="1", timeout_seconds=2))
    assert exc.value.status == 410 and "too old resource version" in exc.value.reason
    # Without timeout_seconds the client retries once from the same rv, then raises.
    api.expire_history()
    with pytest.raises(ApiException) as exc:
        list(watch.Watch().stream(v1.list_node, resource_version="1"))
    assert exc.value.status == 410
    assert len(api.requests("GET", "/api/v1/nodes")) == 3


def test_watch_raw_410_event_shape(api: FakeKubeAPI) -> None:
    api.watch_inject_error_410()
    resp = urllib3.PoolManager().request("GET", f"{api.url}/api/v1/pods?watch=true&resourceVersion=7")
    lines = resp.data.decode().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert event["object"] | {"message": ""} == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "reason": "Expired",
        "code": 410,
        "message": "",
    }


def test_watch_http_410(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    api.watch_http_410()
    with pytest.raises(ApiException) as exc:
        list(watch.Watch().stream(v1.list_node, resource_version="1", timeout_seconds=2))
    assert exc.value.status == 410
    assert json.loads(exc.value.body)["reason"] == "Expired"
    assert v1.list_node().items == []  # the switch was consumed by the watch only


def test_watch_faults_close_malformed_stall(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    for i in range(3):
        api.add_node({"metadata": {"name": f"n{i}"}})
    api.watch_close_after(2)
    got = [e["type"] for e in watch.Watch().stream(v1.list_node, resource_version="0", timeout_seconds=5)]
    assert got == ["ADDED", "ADDED"]

    api.watch_inject_malformed_line()
    got2 = list(watch.Watch().stream(v1.list_node, resource_version="3", timeout_seconds=1))
    assert got2 == [None]  # the client yields None for an undecodable line instead of raising

    api.watch_stall(3.0)
    t0 = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        list(
            watch.Watch().stream(
                v1.list_node, resource_version="3", timeout_seconds=5, _request_timeout=(2, 0.5)
            )
        )
    assert time.monotonic() - t0 < 2.5


def test_silenced_watches_answer_then_say_nothing_until_released(
    api: FakeKubeAPI, v1: client.CoreV1Api
) -> None:
    api.add_node({"metadata": {"name": "n0"}})
    api.silence_watches("^/api/v1/nodes$")
    t0 = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):  # headers came, then nothing
        resp = v1.list_node(
            watch=True,
            resource_version="0",
            allow_watch_bookmarks=True,
            timeout_seconds=1,  # not honoured while silent either
            _preload_content=False,
            _request_timeout=(2, 1.5),
        )
        assert resp.status == 200
        resp.read()
    assert 1.4 < time.monotonic() - t0 < 3.0
    assert [e.status for e in api.requests("GET", "^/api/v1/nodes$")] == [200]
    assert v1.list_node().items[0].metadata.name == "n0"  # lists still answer
    api.release_watches()
    got = [e["type"] for e in watch.Watch().stream(v1.list_node, resource_version="0", timeout_seconds=1)]
    assert got[0] == "ADDED"


def test_hung_lists_send_nothing_until_released(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    api.add_node({"metadata": {"name": "n0"}})
    api.hang_lists("^/api/v1/nodes$")
    t0 = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError):  # no answer: urllib3 retries the GET 3x
        v1.list_node(_preload_content=False, _request_timeout=(2, 0.3))
    assert time.monotonic() - t0 < 3.0
    assert [e.status for e in api.requests("GET", "^/api/v1/nodes$")] == [0, 0, 0, 0]
    done: list[Any] = []
    waiting = threading.Thread(target=lambda: done.append(v1.list_node(_request_timeout=(2, 10))))
    waiting.start()
    time.sleep(0.3)
    assert not done  # still held
    api.release_lists()
    waiting.join(5)
    assert [n.metadata.name for n in done[0].items] == ["n0"]


def test_binding_201_409_404(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    uid = api.add_pod(_pod("p1", "ns"))["metadata"]["uid"]
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod_binding(
            "p1", "ns", _binding("p1", "n1", uid="wrong"), _preload_content=False
        )
    assert exc.value.status == 409
    assert "Precondition failed: UID in precondition: wrong, UID in object meta: " + uid in exc.value.body

    resp = v1.create_namespaced_pod_binding("p1", "ns", _binding("p1", "n1", uid=uid), _preload_content=False)
    assert resp.status == 201
    assert json.loads(resp.data) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }
    pod = api.get_pod("ns", "p1")
    assert pod is not None and pod["spec"]["nodeName"] == "n1"

    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod_binding("p1", "ns", _binding("p1", "n2"), _preload_content=False)
    assert exc.value.status == 409 and 'pod p1 is already assigned to node \\"n1\\"' in exc.value.body

    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod_binding("ghost", "ns", _binding("ghost", "n1"), _preload_content=False)
    assert exc.value.status == 404 and json.loads(exc.value.body)["reason"] == "NotFound"
    assert [e.status for e in api.requests("POST", "/binding$")] == [409, 201, 409, 404]


def test_binding_default_deserialisation_fails_like_python_825(
    api: FakeKubeAPI, v1: client.CoreV1Api
) -> None:
    api.add_pod(_pod("p1"))
    with pytest.raises(Exception) as exc:  # a model validation error, not ApiException
        v1.create_namespaced_pod_binding("p1", "default", _binding("p1", "n1"))
    assert not isinstance(exc.value, ApiException)
    assert api.get_pod("default", "p1")["spec"]["nodeName"] == "n1"  # type: ignore[index]  # bound anyway


def test_binding_422_for_non_node_target(api: FakeKubeAPI) -> None:
    api.add_pod(_pod("p1"))
    resp = urllib3.PoolManager().request(
        "POST",
        f"{api.url}/api/v1/namespaces/default/pods/p1/binding",
        body=json.dumps({"metadata": {"name": "p1"}, "target": {"kind": "Pod", "name": "x"}}),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 422 and json.loads(resp.data)["reason"] == "Invalid"


def test_events_metrics_and_prometheus(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    ev = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="e1"),
        reason="Scheduled",
        message="m",
        involved_object=client.V1ObjectReference(kind="Pod", name="p1", namespace="ns"),
    )
    v1.create_namespaced_event("ns", ev, _preload_content=False)
    assert api.events()[0]["reason"] == "Scheduled"
    assert api.requests("POST", "/events$")[0].status == 201

    api.set_node_metrics({"n1": {"cpu": "1500m", "memory": "3Gi"}}, window="30s")
    http = urllib3.PoolManager()
    nm = json.loads(http.request("GET", f"{api.url}/apis/metrics.k8s.io/v1beta1/nodes").data)
    assert nm["kind"] == "NodeMetricsList"
    assert nm["items"][0]["usage"] == {"cpu": "1500m", "memory": "3Gi"} and nm["items"][0]["window"] == "30s"
    assert nm["items"][0]["timestamp"].endswith("Z")

    api.set_prom_result("up", [{"metric": {"instance": "n1"}, "value": [1700000000, "0.5"]}])
    prom = json.loads(http.request("GET", f"{api.url}/api/v1/query", fields={"query": "up"}).data)
    assert prom["status"] == "success" and prom["data"]["result"][0]["value"][1] == "0.5"
    prom = json.loads(
        http.request("POST", f"{api.url}/api/v1/query", fields={"query": "nope"}, encode_multipart=False).data
    )
    assert prom["data"] == {"resultType": "vector", "result": []}


def test_fail_fault_500_then_recovers(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    api.fail("GET", r"^/api/v1/nodes$", status=500)
    with pytest.raises(ApiException) as exc:
        v1.list_node()
    assert exc.value.status == 500 and json.loads(exc.value.body)["code"] == 500
    assert v1.list_node().items == []
    assert [e.status for e in api.requests("GET", "/api/v1/nodes")] == [500, 200]


def test_get_503_with_retry_after_is_retried_by_urllib3(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    api.fail("GET", r"^/api/v1/nodes$", status=503, retry_after=1)
    t0 = time.monotonic()
    assert v1.list_node().items == []  # urllib3's default Retry honours Retry-After on GET
    assert time.monotonic() - t0 >= 0.9
    assert [e.status for e in api.requests("GET", "/api/v1/nodes")] == [503, 200]


def test_delay_fault_against_request_timeout(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    api.add_pod(_pod("p1"))
    api.delay("POST", "/binding$", 2.0)
    t0 = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):  # POST: raised as-is, never retried
        v1.create_namespaced_pod_binding(
            "p1", "default", _binding("p1", "n1"), _preload_content=False, _request_timeout=0.5
        )
    assert time.monotonic() - t0 < 1.5

    api.delay("GET", "^/api/v1/nodes$", 2.0, times=4)
    t0 = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError):  # GET: urllib3 retries read timeouts 3x
        v1.list_node(_request_timeout=0.3)
    assert 1.1 < time.monotonic() - t0 < 2.5
    assert len(api.requests("GET", "^/api/v1/nodes$")) == 4


def test_drop_fault(api: FakeKubeAPI, v1: client.CoreV1Api) -> None:
    api.add_pod(_pod("p1"))
    api.drop("POST", "/binding$")
    with pytest.raises(urllib3.exceptions.ProtocolError):
        v1.create_namespaced_pod_binding("p1", "default", _binding("p1", "n1"), _preload_content=False)
    assert api.get_pod("default", "p1")["spec"].get("nodeName") is None  # type: ignore[index]
    api.drop("GET", "^/api/v1/nodes$")
    assert v1.list_node().items == []  # a dropped GET is silently retried by urllib3
    assert [e.status for e in api.requests("GET", "^/api/v1/nodes$")] == [0, 200]
