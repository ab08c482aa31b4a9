"""Bad input against the real server: a clear 4xx with {"Error": ...}, never a 500 or a hang."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.conftest import running_extender

VALID_POD = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {"containers": []}}


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


CASES = [
    ("not-json", "filter", b"this is not json", "not valid JSON"),
    ("empty", "filter", b"", "empty request body"),
    ("array", "prioritize", b"[]", "Expected `object`"),
    ("pod-wrong-type", "filter", b'{"Pod": 3, "NodeNames": ["a"]}', "`Pod`"),
    ("missing-pod", "filter", b'{"NodeNames": ["a"]}', "Pod is missing"),
    ("lowercase-keys", "filter", b'{"pod": {}, "nodenames": ["a"]}', "PascalCase"),
    (
        "neither-form",
        "filter",
        json.dumps({"Pod": VALID_POD, "Nodes": None, "NodeNames": None}).encode(),
        "neither of Nodes and NodeNames",
    ),
    (
        "both-forms",
        "prioritize",
        json.dumps({"Pod": VALID_POD, "Nodes": {"items": []}, "NodeNames": []}).encode(),
        "both of Nodes and NodeNames",
    ),
    (
        "duplicate-nodes",
        "filter",
        json.dumps(
            {"Pod": VALID_POD, "Nodes": {"items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "a"}}]}}
        ).encode(),
        "'a' appears more than once",
    ),
    (
        "nameless-node",
        "filter",
        json.dumps({"Pod": VALID_POD, "Nodes": {"items": [{"metadata": {}}]}}).encode(),
        "empty name",
    ),
    (
        "node-wrong-type",
        "filter",
        json.dumps(
            {
                "Pod": VALID_POD,
                "Nodes": {"items": [{"metadata": {"name": "a"}, "status": {"allocatable": {"cpu": ["1"]}}}]},
            }
        ).encode(),
        "Nodes.items[0].status.allocatable",
    ),
    (
        "bad-pod-quantity",
        "filter",
        json.dumps(
            {
                "Pod": {"spec": {"containers": [{"resources": {"requests": {"cpu": "lots"}}}]}},
                "Nodes": {"items": []},
            }
        ).encode(),
        "Pod.spec.containers[0].resources.requests.cpu",
    ),
    (
        "absurd-pod-quantity",
        "prioritize",
        json.dumps(
            {
                "Pod": {"spec": {"containers": [{"resources": {"requests": {"memory": "1e400"}}}]}},
                "Nodes": {"items": []},
            }
        ).encode(),
        "Pod.spec.containers[0].resources.requests.memory",
    ),
    (
        "pod-quantity-over-2**53",
        "filter",
        json.dumps(
            {
                "Pod": {"spec": {"containers": [{"resources": {"requests": {"memory": "9Pi"}}}]}},
                "Nodes": {"items": []},
            }
        ).encode(),
        "is absurd",
    ),
    (
        "pod-total-over-2**53",
        "filter",
        json.dumps(
            {
                "Pod": {
                    "spec": {
                        "containers": [
                            {"resources": {"requests": {"memory": "5Pi"}}},
                            {"resources": {"requests": {"memory": "5Pi"}}},
                        ]
                    }
                },
                "Nodes": {"items": []},
            }
        ).encode(),
        "total requests of memory exceed",
    ),
    (
        "negative-pod-quantity",
        "filter",
        json.dumps(
            {
                "Pod": {"spec": {"containers": [{"resources": {"requests": {"cpu": "-1"}}}]}},
                "Nodes": {"items": []},
            }
        ).encode(),
        "negative",
    ),
    (
        "names-without-cache",
        "filter",
        json.dumps({"Pod": VALID_POD, "NodeNames": ["a"]}).encode(),
        "stateless mode",
    ),
    ("bind-missing-fields", "bind", b'{"PodName": "p"}', "missing PodNamespace, Node"),
    ("bind-wrong-type", "bind", b'{"PodName": 1}', "`PodName`"),
    ("preempt-neither", "preempt", json.dumps({"Pod": VALID_POD}).encode(), "neither of NodeNameToVictims"),
    (
        "preempt-victim-without-uid",
        "preempt",
        json.dumps(
            {
                "Pod": VALID_POD,
                "NodeNameToVictims": {"a": {"Pods": [{"metadata": {"name": "v"}}], "NumPDBViolations": 0}},
            }
        ).encode(),
        "no metadata.uid",
    ),
    (
        "deep-nesting",
        "filter",
        b'{"Pod": {"metadata": {"annotations": ' + b"[" * 100000 + b"]" * 100000 + b"}}}",
        "`Pod.metadata.annotations`",
    ),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("verb", "body", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request_gets_400_with_error(extender_url: str, verb: str, body: bytes, needle: str) -> None:
    status, answer = post(f"{extender_url}/{verb}", body)
    assert status == 400, answer
    assert list(answer) == ["Error"]
    assert needle in answer["Error"]


@pytest.mark.timeout(60)
def test_absurd_node_quantity_fails_that_node_only(extender_url: str) -> None:
    nodes = [
        {
            "metadata": {"name": "huge"},
            "status": {"allocatable": {"cpu": "4", "memory": "9Pi", "pods": "110"}},
        },
        {"metadata": {"name": "ok"}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}},
    ]
    status, answer = post(
        f"{extender_url}/filter", json.dumps({"Pod": VALID_POD, "Nodes": {"items": nodes}}).encode()
    )
    assert status == 200, answer
    assert [n["metadata"]["name"] for n in answer["Nodes"]["items"]] == ["ok"]
    reason = answer["FailedAndUnresolvableNodes"]["huge"]
    assert "status.allocatable.memory" in reason and "absurd" in reason


@pytest.mark.timeout(60)
def test_unknown_route_and_wrong_method_are_json(extender_url: str) -> None:
    status, answer = post(f"{extender_url}/predicates", b"{}")
    assert status == 404 and "404" in answer["Error"]
    try:
        urllib.request.urlopen(f"{extender_url}/filter", timeout=5)
    except urllib.error.HTTPError as e:
        assert e.code == 405 and "405" in json.loads(e.read())["Error"]
    else:
        raise AssertionError("GET /filter must fail")


@pytest.mark.timeout(60)
def test_oversized_body_gets_413_and_server_stays_up() -> None:
    with running_extender("--no-api", env={"EXTENDER_MAX_BODY_BYTES": "1000"}) as url:
        status, answer = post(f"{url}/filter", b'{"Pod": {}, "NodeNames": [' + b'"n",' * 500 + b'"n"]}')
        assert status == 413 and "Error" in answer
        status, _ = post(f"{url}/filter", json.dumps({"Pod": VALID_POD, "Nodes": {"items": []}}).encode())
        assert status == 200


@pytest.mark.timeout(60)
def test_stalled_body_is_cut_off_and_does_not_hold_a_thread() -> None:
    with running_extender("--no-api", "--threads", "1", env={"EXTENDER_READ_TIMEOUT_S": "1"}) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(
                b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"Pod":'
            )
            s.settimeout(10)
            started = time.monotonic()
            reply = b""
            while b"}" not in reply:
                chunk = s.recv(4096)
                assert chunk, reply
                reply += chunk
            assert time.monotonic() - started < 5
            assert reply.startswith(b"HTTP/1.1 408") and b"EXTENDER_READ_TIMEOUT_S" in reply
        # the only thread is free again: a valid call is answered
        status, _ = post(f"{url}/filter", json.dumps({"Pod": VALID_POD, "Nodes": {"items": []}}).encode())
        assert status == 200


@pytest.mark.timeout(60)
def test_verb_answers_are_sized_and_keep_the_connection(extender_url: str) -> None:
    """The verbs are answered without Flask (app.VerbRoutes): every answer, an error too,
    carries its Content-Length (kube-scheduler's client reads exactly that; no chunked
    framing), and the connection serves the next call."""
    import http.client

    host, port = extender_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    good = json.dumps({"Pod": VALID_POD, "Nodes": {"items": []}}).encode()
    try:
        for body, status in ((good, 200), (b"not json", 400), (good, 200)):
            conn.request("POST", "/filter", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            assert r.status == status and r.getheader("Transfer-Encoding") is None
            assert (
                int(r.getheader("Content-Length")) == len(data)
                and r.getheader("Content-Type") == "application/json"
            )
            assert "Error" in json.loads(data)
    finally:
        conn.close()
