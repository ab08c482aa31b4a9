"""Golden requests, encoded as kube-scheduler encodes them, against the expected answers.

Hand computation under the shipped policy (LoadAware x2, LeastAllocated x1,
BalancedAllocation x1; thresholds cpu 80 %, memory 90 %). The pod requests 500m CPU and
512 MiB with a 512 MiB memory limit; Koordinator's estimator gives CPU 500 x 85 % = 425m and
memory 512 MiB x 70 % = 375,809,638 B. Every node has 4 CPU (4000m) and 8 GiB allocatable.

* n1, measured 1 CPU / 2 GiB. LoadAware: cpu (4000 - 1425) x 100 / 4000 = 64; memory
  (8 GiB - 2 GiB - 375,809,638) x 100 / 8 GiB = 70; mean 67. LeastAllocated: cpu 3500 x 100 /
  4000 = 87, memory 93; mean 90. BalancedAllocation (kube-scheduler v1.36, the change in
  balance the pod brings): with the pod 500 / 4000 = 0.125 and 512 MiB / 8 GiB = 0.0625,
  std |0.125 - 0.0625| / 2 = 0.03125, balance int64(96.875) = 96; without it (the Nodes form
  carries no pods: nothing requested) 0, 0, balance 100; 50 + (50 + 96 - 100) / 2 = 50 + 23 =
  73 (v1.35's formula gave 96). Combined (2 x 67 + 90 + 73) / 4 = 74.25 -> floor(7.425 + 0.5) = 7.
* n2, measured 3000m: cpu (3000 + 425) / 4000 = 85.6 % -> 86 % > 80 %: FailedNodes (evicting
  pods can lower it, so preemption may help).
* n3, allocatable cpu "4x": not a quantity, FailedAndUnresolvableNodes naming node and field.
* n4, no load annotations: fallback "requests": (90 + 73) / 2 = 81.5 -> floor(8.15 + 0.5) = 8.
Preempt: n1 stays feasible; n2 with a 100m victim (estimate 85m) is still at
(3000 - 85 + 425) / 4000 = 83.5 % -> 84 % and is dropped; n4 (no load data) is kept; n5 was not
in any filter call, so stateless mode cannot judge it and keeps it.
"""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from extender.kube.bind import BindOutcome, BindResult
from extender.protocol.wire import decode_scheduling_request
from extender.server.app import create_app
from extender.settings import Settings
from extender.verbs.source import StatelessSource

GOLDEN = Path(__file__).parent / "golden"
MEASURED_AT = "2026-11-27T11:59:30Z"
CLOCK = datetime.datetime(2026, 11, 27, 12, 0, 0, tzinfo=datetime.UTC).timestamp()


def golden(name: str) -> bytes:
    return (GOLDEN / name).read_bytes()


def fresh(body: bytes) -> bytes:
    """The golden body with its measurement time moved to 30 s ago (for the live server)."""
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=30)
    return body.replace(MEASURED_AT.encode(), now.strftime("%Y-%m-%dT%H:%M:%SZ").encode())


def post(url: str, body: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def check_filter_nodes(answer: dict[str, Any], request: bytes) -> None:
    assert list(answer) == ["Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"]
    items = json.loads(request)["Nodes"]["items"]
    assert answer["Nodes"] == {"metadata": {}, "items": [items[0], items[3]]}  # echoed unchanged
    assert answer["NodeNames"] is None
    assert answer["Error"] == ""
    assert answer["FailedNodes"] == {
        "n2": "node(s) cpu usage exceed threshold 80% (measured + estimated, with this pod)"
    }
    assert list(answer["FailedAndUnresolvableNodes"]) == ["n3"]
    reason = answer["FailedAndUnresolvableNodes"]["n3"]
    assert reason.startswith("node n3: status.allocatable.cpu:") and "4x" in reason


@pytest.mark.timeout(60)
def test_nodes_form_over_gunicorn(extender_url: str) -> None:
    body = fresh(golden("filter-nodes.request.json"))
    status, answer = post(f"{extender_url}/filter", body)
    assert status == 200
    check_filter_nodes(answer, body)

    status, answer = post(f"{extender_url}/prioritize", fresh(golden("prioritize-nodes.request.json")))
    assert (status, answer) == (200, json.loads(golden("prioritize-nodes.response.json")))

    # preempt right after the filter call whose nodes it re-checks (stateless mode)
    post(f"{extender_url}/filter", body)
    status, answer = post(f"{extender_url}/preempt", golden("preempt-victims.request.json"))
    assert (status, answer) == (200, json.loads(golden("preempt-victims.response.json")))


@pytest.mark.timeout(60)
def test_names_form_is_refused_without_cache_over_gunicorn(extender_url: str) -> None:
    for verb, name in (
        ("filter", "filter-names"),
        ("prioritize", "prioritize-names"),
        ("preempt", "preempt-meta"),
    ):
        status, answer = post(f"{extender_url}/{verb}", golden(f"{name}.request.json"))
        assert status == 400
        assert list(answer) == ["Error"] and "stateless mode" in answer["Error"]


@pytest.mark.timeout(60)
def test_bind_without_api_access_says_so(extender_url: str) -> None:
    status, answer = post(f"{extender_url}/bind", golden("bind.request.json"))
    assert status == 200
    assert "no Kubernetes API access" in answer["Error"]


class CachedSource:
    """A names-form source for wire tests: node data fixed from the Nodes-form golden file."""

    mode = "cache"

    def __init__(self) -> None:
        self._inner = StatelessSource(clock=lambda: CLOCK)
        self._objects = decode_scheduling_request(golden("filter-nodes.request.json"))

    def candidates(self, request: Any, resources: tuple[str, ...]) -> Any:
        self._inner.candidates(self._objects, resources)
        return self._inner.known_nodes(request.names, resources)

    def known_nodes(self, names: Any, resources: tuple[str, ...]) -> Any:
        return self.candidates(type("R", (), {"names": tuple(names)})(), resources)

    def readiness(self) -> tuple[bool, str]:
        return True, "fixed"


class RecordingBinder:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def bind(self, target: Any) -> BindResult:
        self.calls.append(target)
        return BindResult(BindOutcome.BOUND, "")


@pytest.fixture()
def names_client() -> Any:
    binder = RecordingBinder()
    app = create_app(
        Settings(api_access=False),
        source=CachedSource(),
        binder=binder,  # type: ignore[arg-type]
        clock=lambda: CLOCK,
    )
    client = app.test_client()
    client.binder = binder
    return client


def test_names_form_answers_names(names_client: Any) -> None:
    r = names_client.post("/filter", data=golden("filter-names.request.json"))
    assert r.status_code == 200
    answer = r.get_json()
    assert list(answer) == ["Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"]
    assert answer["Nodes"] is None
    assert answer["NodeNames"] == ["n1", "n4"]
    assert list(answer["FailedNodes"]) == ["n2"]
    assert list(answer["FailedAndUnresolvableNodes"]) == ["n3"]

    r = names_client.post("/prioritize", data=golden("prioritize-names.request.json"))
    assert r.get_json() == json.loads(golden("prioritize-names.response.json"))

    r = names_client.post("/preempt", data=golden("preempt-meta.request.json"))
    assert r.get_json() == json.loads(golden("preempt-meta.response.json"))


def test_bind_passes_the_request_to_the_binder(names_client: Any) -> None:
    r = names_client.post("/bind", data=golden("bind.request.json"))
    assert r.status_code == 200 and r.data == golden("bind.response.json").strip()
    (target,) = names_client.binder.calls
    assert (target.pod_name, target.namespace, target.pod_uid, target.node) == (
        "web-0",
        "default",
        "7d3b5c9e-1f2a-4b6c-8d0e-123456789abc",
        "n1",
    )


def test_nodes_form_in_process_matches_golden() -> None:
    app = create_app(Settings(api_access=False), binder=RecordingBinder(), clock=lambda: CLOCK)  # type: ignore[arg-type]
    client = app.test_client()
    body = golden("filter-nodes.request.json")
    check_filter_nodes(client.post("/filter", data=body).get_json(), body)
