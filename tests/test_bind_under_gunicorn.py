"""Bind through the real server, the real client and the in-test API server.

The scheduler's binding cycle is asynchronous: bind calls arrive while filter and prioritize
run for the next pods, so a slow API server must never delay them.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import k8s_objects
from tests.conftest import running_extender, write_kubeconfig
from tests.kubeapi import FakeKubeAPI

BINDING = r"/pods/[^/]+/binding$"


def post(url: str, body: bytes, timeout: float = 15) -> tuple[int, Any, float]:
    started = time.monotonic()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read()), time.monotonic() - started


def bind_body(name: str, uid: str, node: str) -> bytes:
    return json.dumps({"PodName": name, "PodNamespace": "default", "PodUID": uid, "Node": node}).encode()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeKubeAPI, str]]:
    with FakeKubeAPI() as api:
        kubeconfig = write_kubeconfig(Path(tmp_path_factory.mktemp("kube")) / "config", api.url)
        # stateless scoring with API access for bind only: what these tests are about
        with running_extender("--kubeconfig", str(kubeconfig), "--no-cache") as url:
            yield api, url


def add_pod(api: FakeKubeAPI, name: str) -> str:
    pod = api.add_pod({"metadata": {"name": name, "namespace": "default"}, "spec": {"containers": []}})
    return str(pod["metadata"]["uid"])


@pytest.mark.timeout(60)
def test_bind_creates_one_binding_and_a_retry_succeeds(cluster: tuple[FakeKubeAPI, str]) -> None:
    api, url = cluster
    uid = add_pod(api, "web-1")
    for _ in range(2):  # the scheduler retries when a reply is lost: both must succeed
        status, answer, _ = post(f"{url}/bind", bind_body("web-1", uid, "node-a"))
        assert (status, answer) == (200, {"Error": ""})
    assert api.get_pod("default", "web-1")["spec"]["nodeName"] == "node-a"
    created = [e for e in api.requests("POST", "web-1/binding$") if e.status == 201]
    assert len(created) == 1
    status, answer, _ = post(f"{url}/bind", bind_body("web-1", uid, "node-b"))
    assert status == 200 and "node-a" in answer["Error"]


@pytest.mark.timeout(60)
def test_slow_bind_does_not_delay_filter(cluster: tuple[FakeKubeAPI, str]) -> None:
    api, url = cluster
    uid = add_pod(api, "slow-1")
    filter_body = k8s_objects.extender_args(k8s_objects.cluster(200))
    _, _, baseline = post(f"{url}/filter", filter_body)
    api.delay("POST", BINDING, seconds=2.0)
    result: dict[str, Any] = {}
    t = threading.Thread(
        target=lambda: result.update(bind=post(f"{url}/bind", bind_body("slow-1", uid, "node-a")))
    )
    t.start()
    time.sleep(0.3)  # the bind has reached the API server, which holds it for 2 s
    status, answer, took = post(f"{url}/filter", filter_body)
    bind_still_running = t.is_alive()
    t.join(10)
    assert status == 200 and len(answer["Nodes"]["items"]) + len(answer["FailedNodes"]) == 200
    assert bind_still_running, "the bind should still have been waiting on the API server"
    assert took < 1.5, f"filter took {took:.2f}s while a bind was slow (baseline {baseline:.2f}s)"
    assert result["bind"][1] == {"Error": ""}


@pytest.mark.timeout(60)
def test_bind_api_errors_are_reported_not_raised(cluster: tuple[FakeKubeAPI, str]) -> None:
    api, url = cluster
    status, answer, _ = post(f"{url}/bind", bind_body("missing", "uid-x", "node-a"))
    assert status == 200 and "not found" in answer["Error"]
    uid = add_pod(api, "web-err")
    api.fail("POST", "web-err/binding$", status=500, times=5)
    status, answer, took = post(f"{url}/bind", bind_body("web-err", uid, "node-a"))
    assert status == 200 and "500" in answer["Error"] and took < 5.0
    metrics = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    assert 'extender_bind_total{outcome="bound"}' in metrics
    assert 'extender_bind_total{outcome="not_found"} 1.0' in metrics
    assert 'extender_bind_total{outcome="api_error"} 1.0' in metrics
