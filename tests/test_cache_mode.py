"""Cluster-cache mode end to end: the real extender under gunicorn, the real client, the
in-test API server (tests/kubeapi) with its faults, and kube-scheduler's names-form calls."""

from __future__ import annotations

import collections
import datetime
import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import running_extender, write_kubeconfig
from tests.kubeapi import FakeKubeAPI

PREFIX = "load.extender.scheduling/"


def rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_obj(
    name: str,
    *,
    cpu: str = "8",
    memory: str = "32Gi",
    usage_cpu: str | None = "2",
    usage_memory: str = "8Gi",
    measured: float | None = None,
) -> dict[str, Any]:
    ann = {}
    if usage_cpu is not None:
        ann = {
            PREFIX + "cpu": usage_cpu,
            PREFIX + "memory": usage_memory,
            PREFIX + "updated": rfc3339(time.time() if measured is None else measured),
        }
    res = {"cpu": cpu, "memory": memory, "pods": "110"}
    return {"metadata": {"name": name, "annotations": ann}, "status": {"allocatable": res, "capacity": res}}


def pod_obj(name: str, node: str = "", cpu: str = "500m", memory: str = "1Gi") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
    }
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
        "status": {"phase": "Running" if node else "Pending"},
    }


def call(url: str, body: bytes | None = None, timeout: float = 15) -> tuple[int, Any]:
    req = urllib.request.Request(
        url,
        data=body,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def args(pod: dict[str, Any], names: list[str]) -> bytes:
    return json.dumps({"Pod": pod, "NodeNames": names}).encode()


def metric(url: str, name: str, labels: str = "") -> float | None:
    _, text = call(f"{url}/metrics")
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = call(f"{url}/readyz")
        if status == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"not ready: {call(f'{url}/readyz')}")


def pod_events(url: str) -> float:
    """Watch events the cache's pods informer has applied (counted after the cache has them)."""
    return metric(url, "extender_informer_events_total", '{kind="pods",what="event"}') or 0.0


def wait_pod_events(url: str, count: float, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while pod_events(url) < count:
        assert time.monotonic() < deadline, f"the watch showed {pod_events(url)} pod events, not {count}"
        time.sleep(0.05)


def start(api: FakeKubeAPI, tmp_path: Path, *extra: str, env: dict[str, str] | None = None):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    return running_extender("--kubeconfig", str(kubeconfig), *extra, env=env)


@pytest.mark.timeout(90)
def test_names_mode_answers_from_the_cache(
    api: FakeKubeAPI, tmp_path: Path, cache_env: dict[str, str]
) -> None:
    for i in range(3):
        api.add_node(node_obj(f"n{i}"))
    for k in range(6):  # n0 carries 6 x 500m of requests
        api.add_pod(pod_obj(f"old-{k}", "n0"))
    with start(api, tmp_path, env=cache_env) as url:
        wait_ready(url)
        status, text = call(f"{url}/readyz")
        assert status == 200 and "3 nodes, 6 pods" in text
        incoming = pod_obj("new")
        incoming["metadata"]["uid"] = "uid-new"
        status, answer = call(f"{url}/filter", args(incoming, ["n0", "n1", "n2", "ghost"]))
        assert status == 200, answer
        assert answer["NodeNames"] == ["n0", "n1", "n2"] and answer["Nodes"] is None, answer
        assert "not in the extender's cluster cache" in answer["FailedAndUnresolvableNodes"]["ghost"]
        status, prio = call(f"{url}/prioritize", args(incoming, ["n0", "n1", "n2"]))
        scores = {p["Host"]: p["Score"] for p in prio}
        assert scores["n1"] == scores["n2"] > scores["n0"]  # n0's requests count
        # a pod appears on n1 through the watch: n1 falls below n2
        for k in range(8):
            api.add_pod(pod_obj(f"w-{k}", "n1", cpu="1"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            _, prio = call(f"{url}/prioritize", args(incoming, ["n1", "n2"]))
            if prio[0]["Score"] < prio[1]["Score"]:
                break
            time.sleep(0.1)
        assert prio[0]["Score"] < prio[1]["Score"], prio
        assert metric(url, "extender_cache_objects", '{kind="pods"}') == 14
        assert metric(url, "extender_informer_events_total", '{kind="pods",what="event"}') >= 8
        # the decision log has the pod
        status, decisions = call(f"{url}/debug/decisions")
        assert status == 200 and decisions["decisions"][0]["uid"] == "uid-new"
        status, one = call(f"{url}/debug/decisions/uid-new")
        assert one["prioritize"]["top"][0]["node"] == "n2" and one["filter"]["unresolved"] == 1
        assert [t["node"] for t in one["prioritize"]["top"]] == ["n2", "n1"]  # best first, explained
        assert one["prioritize"]["top"][0]["strategies"] and one["bestNode"] == "n2"
        (ghost,) = one["filter"]["topReasons"]
        assert ghost["nodes"] == 1 and "not in the extender's cluster cache" in ghost["reason"]
        assert call(f"{url}/debug/decisions/nope")[0] == 404


@pytest.mark.timeout(90)
def test_not_ready_until_the_first_sync(api: FakeKubeAPI, tmp_path: Path, cache_env: dict[str, str]) -> None:
    api.add_node(node_obj("n0"))
    api.fail("GET", r"/api/v1/pods$", status=500, times=1000)
    with start(api, tmp_path, env=cache_env) as url:
        deadline = time.monotonic() + 10  # the cache process says what it waits for once it runs
        while True:
            status, text = call(f"{url}/readyz")
            assert status == 503, text
            if "pods informer" in text or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert "pods informer" in text
        assert call(f"{url}/livez")[0] == 200
        status, answer = call(f"{url}/filter", args(pod_obj("p"), ["n0"]))
        assert status == 200 and "waiting for the first sync" in answer["Error"]
        status, answer = call(f"{url}/prioritize", args(pod_obj("p"), ["n0"]))
        assert status == 503 and "waiting for the first sync" in answer["Error"]
        api.clear_faults()
        wait_ready(url, timeout=40)
        status, answer = call(f"{url}/filter", args(pod_obj("p"), ["n0"]))
        assert status == 200 and answer["NodeNames"] == ["n0"]


def bind(url: str, name: str, uid: str, node: str) -> dict[str, Any]:
    status, answer = call(
        f"{url}/bind",
        json.dumps({"PodName": name, "PodNamespace": "default", "PodUID": uid, "Node": node}).encode(),
    )
    assert status == 200
    return answer


@pytest.mark.timeout(90)
def test_bind_through_the_cache(api: FakeKubeAPI, tmp_path: Path, cache_env: dict[str, str]) -> None:
    api.add_node(node_obj("n0"))
    api.add_node(node_obj("n1"))
    with start(api, tmp_path, env=cache_env) as url:
        wait_ready(url)
        seen = pod_events(url)
        uid = api.add_pod(pod_obj("web"))["metadata"]["uid"]
        wait_pod_events(url, seen + 1)  # the cache has the pending pod (its spec, for its accounting)
        assert bind(url, "web", uid, "n0") == {"Error": ""}
        assert bind(url, "web", uid, "n0") == {"Error": ""}  # the scheduler's retry
        assert "already bound to node n0" in bind(url, "web", uid, "n1")["Error"]
        bindings = [e for e in api.requests("POST", r"/pods/web/binding$")]
        assert len(bindings) == 1 and bindings[0].status == 201
        status, one = call(f"{url}/debug/decisions/{uid}")
        assert status == 200 and one["boundNode"] == "n0"


@pytest.mark.timeout(120)
def test_a_burst_of_identical_pods_spreads_while_the_load_lags(
    api: FakeKubeAPI, tmp_path: Path, cache_env: dict[str, str]
) -> None:
    """50 identical pods back to back through filter, prioritize and bind; the measured load
    never moves (it lags a metrics interval), so only the requests and the compensation of
    the pods just bound can tell the nodes apart."""
    names = [f"n{i}" for i in range(10)]
    for name in names:
        api.add_node(node_obj(name, usage_cpu="2"))
    policy = tmp_path / "policy.yaml"
    policy.write_text("strategies: [{name: LoadAware, weight: 1}]\n")  # load only: no requests strategy
    with start(api, tmp_path, "--policy", str(policy), env=cache_env) as url:
        wait_ready(url)
        placed: collections.Counter[str] = collections.Counter()
        for k in range(50):
            p = api.add_pod(pod_obj(f"burst-{k}", cpu="1", memory="2Gi"))
            uid = p["metadata"]["uid"]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # the scheduler only sees pods the watch has shown it
                status, answer = call(f"{url}/filter", args(p, names))
                if status == 200 and not answer["Error"]:
                    break
            _, prio = call(f"{url}/prioritize", args(p, answer["NodeNames"]))
            best = max(prio, key=lambda h: (h["Score"], -names.index(h["Host"])))["Host"]
            assert bind(url, f"burst-{k}", uid, best) == {"Error": ""}
            placed[best] += 1
        assert sum(placed.values()) == 50
        assert max(placed.values()) <= 8, placed  # without compensation all 50 land on n0
        assert len(placed) >= 7, placed
        assert metric(url, "extender_compensated_pods") > 0


@pytest.mark.timeout(90)
def test_stale_and_missing_load_fall_back_and_metrics_show_it(
    api: FakeKubeAPI, tmp_path: Path, cache_env: dict[str, str]
) -> None:
    api.add_node(node_obj("fresh"))
    api.add_node(node_obj("stale", measured=time.time() - 240))  # > staleAfterSeconds 180, < window 300
    api.add_node(node_obj("none", usage_cpu=None))
    with start(api, tmp_path, env=cache_env) as url:
        wait_ready(url)
        p = pod_obj("p")
        p["metadata"]["uid"] = "uid-p"
        before = metric(url, "extender_load_fallback_nodes_total") or 0.0
        status, _ = call(f"{url}/prioritize", args(p, ["fresh", "stale", "none"]))
        assert status == 200
        assert metric(url, "extender_load_fallback_nodes_total") == before + 2
        call(f"{url}/filter", args(p, ["fresh", "stale", "none"]))  # judges, scores nothing: not counted
        assert metric(url, "extender_load_fallback_nodes_total") == before + 2
        deadline = time.monotonic() + 5
        while metric(url, "extender_load_stale_nodes") != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metric(url, "extender_load_stale_nodes") == 2
        _, explained = call(f"{url}/explain", args(p, ["fresh", "stale", "none"]))
        rows = {r["node"]: r for r in explained["nodes"]}
        assert rows["fresh"]["fallback"] is False and rows["stale"]["fallback"] is True
        assert rows["none"]["loadAgeSeconds"] is None and rows["stale"]["loadAgeSeconds"] >= 240


@pytest.mark.timeout(120)
def test_no_lost_and_no_duplicate_bindings_under_bind_faults(
    api: FakeKubeAPI, tmp_path: Path, cache_env: dict[str, str]
) -> None:
    api.add_node(node_obj("n0"))
    api.add_node(node_obj("n1"))
    with start(api, tmp_path, env=cache_env) as url:
        wait_ready(url)
        seen = pod_events(url)
        pods = [api.add_pod(pod_obj(f"f-{k}")) for k in range(20)]
        wait_pod_events(url, seen + 20)
        binding = r"/pods/[^/]+/binding$"
        api.fail("POST", binding, status=500, times=3)
        api.drop("POST", binding, times=3, after_processing=True)  # bound, reply lost
        api.fail("POST", binding, status=429, times=2)
        calls: dict[str, int] = {}
        for k, p in enumerate(pods):
            target = f"n{k % 2}"
            for attempt in range(1, 7):  # the scheduler retries a failed bind (a new cycle)
                calls[p["metadata"]["name"]] = attempt
                if bind(url, p["metadata"]["name"], p["metadata"]["uid"], target) == {"Error": ""}:
                    break
            else:
                raise AssertionError(f"{p['metadata']['name']} never bound")
        for k, p in enumerate(pods):
            name = p["metadata"]["name"]
            sent = api.requests("POST", rf"/pods/{name}/binding$")
            # the API server refuses a second Binding (409), so "no duplicate" means: every request
            # for this pod named the same node, and at most one was answered 201 (a dropped reply
            # may hide the one that took effect); "no loss": the pod sits where we said it does.
            # Each bind call sends at most two Bindings (our single retry); how many calls a pod
            # needs depends on whether the watch showed it bound before the scheduler's retry.
            assert {e.body["target"]["name"] for e in sent} == {f"n{k % 2}"}, sent
            assert sum(e.status == 201 for e in sent) <= 1 and len(sent) <= 2 * calls[name], sent
            assert api.get_pod("default", name)["spec"]["nodeName"] == f"n{k % 2}"


@pytest.mark.timeout(90)
def test_preempt_by_uid_uses_the_cache(api: FakeKubeAPI, tmp_path: Path, cache_env: dict[str, str]) -> None:
    """NodeNameToMetaVictims (nodeCacheCapable: true): victims come as UIDs only; the cache
    knows their requests, so a candidate whose victims free enough is kept, the other dropped."""
    api.add_node(node_obj("n0", cpu="4"))
    api.add_node(node_obj("n1", cpu="4"))
    big = api.add_pod(pod_obj("big", "n0", cpu="3500m"))
    api.add_pod(pod_obj("big1", "n1", cpu="3500m"))
    tiny = api.add_pod(pod_obj("tiny", "n1", cpu="100m", memory="64Mi"))
    with start(api, tmp_path, env=cache_env) as url:
        wait_ready(url)
        incoming = pod_obj("urgent", cpu="2")
        status, answer = call(f"{url}/filter", args(incoming, ["n0", "n1"]))
        assert status == 200 and answer["NodeNames"] == [] and set(answer["FailedNodes"]) == {"n0", "n1"}
        body = json.dumps(
            {
                "Pod": incoming,
                "NodeNameToMetaVictims": {
                    "n0": {"Pods": [{"UID": big["metadata"]["uid"]}], "NumPDBViolations": 0},
                    "n1": {"Pods": [{"UID": tiny["metadata"]["uid"]}], "NumPDBViolations": 0},
                },
            }
        ).encode()
        status, answer = call(f"{url}/preempt", body)
        assert status == 200, answer
        assert set(answer["NodeNameToMetaVictims"]) == {"n0"}
        assert answer["NodeNameToMetaVictims"]["n0"]["Pods"] == [{"UID": big["metadata"]["uid"]}]
