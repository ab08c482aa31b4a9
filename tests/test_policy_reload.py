"""Policy changes without a restart, piece by piece: ``PolicyFile`` (when it looks, what it
takes for a change, what it keeps on a bad file), the verbs taking one policy per call, the
version in the decision log and /explain, and what the cluster cache takes from a new policy
(in the worker and in the cache process). Under gunicorn: tests/test_policy_reload_server.py."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import yaml

from extender.cache.config import CacheConfig, CachePolicy
from extender.cache.feed import Cache
from extender.cache.node_source import CacheSource
from extender.cache.process import CacheProcess
from extender.cache.store import ClusterState, CompensationSpec
from extender.load.window import LoadWindow
from extender.metrics import Metrics
from extender.policy_file import (
    INVALID,
    RACY_S,
    RELOADED,
    UNCHANGED,
    UNREADABLE,
    PolicyFile,
    policy_version,
)
from extender.server.app import create_app
from extender.settings import Settings, SettingsError
from extender.verbs.policy import VersionedPolicy
from extender.verbs.source import StatelessSource
from extender.verbs.verbs import Verbs
from scoring import Policy, parse_policy
from tests.conftest import write_kubeconfig
from tests.kubeapi import FakeKubeAPI
from tests.policy_volume import POLICY_A, POLICY_B, POLICY_C, POLICY_INVALID, KubeletVolume
from tests.test_cache_mode import node_obj, pod_obj
from tests.test_cache_source import PREFIX, T0, _Cache
from tests.test_cache_source import _args as cache_args
from tests.test_cache_source import _node as cache_node
from tests.test_cluster import FakeLoad, node, pod
from tests.test_golden import CLOCK, RecordingBinder, golden

HOUR_NS = 3600 * 10**9


class Clock:
    """The monotonic clock ``PolicyFile`` reads, moved by hand; wall time an hour ahead of
    every file, so that no identity is too young to trust unless a test says so."""

    def __init__(self) -> None:
        self.now = 100.0
        self.wall_ns = time.time_ns() + HOUR_NS

    def __call__(self) -> float:
        return self.now


def watched(path: Path, clock: Clock, interval_s: float = 2.0) -> tuple[PolicyFile, list[str]]:
    outcomes: list[str] = []
    policies = PolicyFile(path, interval_s=interval_s, monotonic=clock, wall_ns=lambda: clock.wall_ns)
    policies.on_reload = lambda outcome, current: outcomes.append(outcome)
    return policies, outcomes


def started(tmp_path: Path) -> tuple[KubeletVolume, Clock, PolicyFile, list[str]]:
    """A ConfigMap volume holding policy A, watched."""
    volume = KubeletVolume(tmp_path)
    volume.publish(POLICY_A)
    clock = Clock()
    return volume, clock, *watched(volume.path, clock)


def weights(current: VersionedPolicy) -> list[float]:
    return [s.weight for s in current.policy.strategies]


# --- PolicyFile ---------------------------------------------------------------------------------


def test_a_configmap_update_is_taken_at_the_first_look_after_the_interval(tmp_path: Path) -> None:
    volume, clock, policies, outcomes = started(tmp_path)
    first = policies.current()
    assert first.version == policy_version(POLICY_A.encode()) and weights(first) == [2, 1, 1]
    volume.publish(POLICY_B)
    clock.now += 1.9
    assert policies.current() is first  # not looked at again before the interval
    clock.now += 0.1
    second = policies.current()
    assert second.version == policy_version(POLICY_B.encode()) and weights(second) == [1, 3, 1]
    assert outcomes == [RELOADED]
    clock.now += 5
    assert policies.current() is second and outcomes == [RELOADED]  # no change: nothing read


def test_an_update_of_another_key_is_unchanged(tmp_path: Path) -> None:
    volume, _, policies, outcomes = started(tmp_path)
    first = policies.current()
    volume.publish(POLICY_A)  # the ConfigMap changed elsewhere: a new directory, the same bytes
    assert policies.check() == UNCHANGED and policies.current() is first
    assert policies.check() is None and outcomes == [UNCHANGED]


def test_an_edit_in_place_of_the_same_size_and_time_is_seen_while_the_file_is_young(tmp_path: Path) -> None:
    """A file system keeps mtime at a coarse clock: two writes within one tick leave the
    identity as it was. A file younger than RACY_S is read again at each look."""
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_A)
    clock = Clock()
    clock.wall_ns = path.stat().st_mtime_ns + int(RACY_S * 1e9) // 2  # young
    policies, outcomes = watched(path, clock)
    before = os.stat(path)
    edited = POLICY_A.replace("cpu: 80", "cpu: 70")
    assert len(edited) == len(POLICY_A)
    with open(path, "r+", encoding="utf-8") as f:
        f.write(edited)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same tick
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert policies.check() == RELOADED
    assert policies.current().policy.filters.usageThresholds["cpu"] == 70
    clock.wall_ns += HOUR_NS  # old now: its identity is the key, no read at the next look
    assert policies.check() is None and policies.check() is None and outcomes == [RELOADED]


def test_an_invalid_file_keeps_the_policy_logs_the_field_and_counts_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    volume, _, policies, outcomes = started(tmp_path)
    first = policies.current()
    with caplog.at_level(logging.ERROR, logger="extender"):
        volume.publish(POLICY_INVALID)
        assert policies.check() == INVALID
    assert policies.current() is first
    (record,) = caplog.records
    message = record.getMessage()
    assert "filters.usageThresholds.memroy" in message and first.version in message
    volume.publish(POLICY_INVALID)  # the same bad bytes again: neither logged nor counted again
    assert policies.check() is None and outcomes == [INVALID]
    volume.edit_in_place(POLICY_C)  # the next valid edit applies
    assert policies.check() == RELOADED and weights(policies.current()) == [1, 0, 4]
    assert outcomes == [INVALID, RELOADED]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "empty policy file"),  # a write in progress, not a wish for every default
        ("filters: [", "not valid YAML"),
        ("strategies:\n  - name: LoadAware\n    weight: -1\n", "strategies[0].weight"),
    ],
)
def test_what_does_not_validate_is_invalid(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_A)
    clock = Clock()
    policies, outcomes = watched(path, clock)
    path.write_text(text)
    os.utime(path, ns=(0, 10**9))  # another identity whatever the clock
    assert policies.check() == INVALID and outcomes == [INVALID]
    assert policies.current().version == policy_version(POLICY_A.encode())


def test_a_file_gone_is_unreadable_once_and_taken_again_when_back(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_A)
    clock = Clock()
    policies, outcomes = watched(path, clock)
    first = policies.current()
    path.unlink()
    assert policies.check() == UNREADABLE and policies.current() is first
    assert policies.check() is None
    path.write_text(POLICY_B)
    assert policies.check() == RELOADED and outcomes == [UNREADABLE, RELOADED]


def test_interval_zero_reads_at_start_only(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_A)
    clock = Clock()
    policies, outcomes = watched(path, clock, interval_s=0)
    path.write_text(POLICY_B)
    clock.now += 10**6
    assert policies.current().version == policy_version(POLICY_A.encode()) and outcomes == []


def test_the_reload_interval_is_a_validated_setting() -> None:
    assert Settings().policy_reload_s == 2.0
    assert Settings.from_env({"EXTENDER_POLICY_RELOAD_S": "0"}).policy_reload_s == 0
    for bad in ("-1", "4000"):
        with pytest.raises(SettingsError, match="EXTENDER_POLICY_RELOAD_S"):
            Settings.from_env({"EXTENDER_POLICY_RELOAD_S": bad})


# --- the verbs: one policy per call -------------------------------------------------------------


class Flipping:
    """A policy source that answers A and B in turn: a call that asked twice would mix them."""

    def __init__(self, *texts: str) -> None:
        self.versions = [
            VersionedPolicy(parse_policy(yaml.safe_load(t)), policy_version(t.encode())) for t in texts
        ]
        self.asked = 0

    def current(self) -> VersionedPolicy:
        self.asked += 1
        return self.versions[(self.asked - 1) % len(self.versions)]


def _verbs(policy: Any) -> Verbs:
    return Verbs(
        policy=policy,
        source=StatelessSource(clock=lambda: CLOCK),
        binder=RecordingBinder(),  # type: ignore[arg-type]
        logger=logging.getLogger("test"),
    )


def _alone(text: str, verb: str, body: bytes) -> Any:
    return json.loads(getattr(_verbs(_policy(text)), verb)(body).body)


@pytest.mark.parametrize("verb", ["filter", "prioritize", "preempt"])
def test_each_call_takes_the_policy_once_and_answers_under_it(verb: str) -> None:
    bodies = {
        "filter": golden("filter-nodes.request.json"),
        "prioritize": golden("prioritize-nodes.request.json"),
        "preempt": golden("preempt-victims.request.json"),
    }
    prime = bodies["filter"]  # stateless preempt re-judges the nodes of the last filter call
    want = []
    for text in (POLICY_A, POLICY_B):
        alone = _verbs(_policy(text))
        alone.filter(prime)
        want.append(json.loads(getattr(alone, verb)(bodies[verb]).body))
    assert want[0] != want[1]
    flipping = Flipping(POLICY_A, POLICY_B)
    verbs = _verbs(flipping)
    for _ in range(4):
        verbs.filter(prime)
        before = flipping.asked
        got = json.loads(getattr(verbs, verb)(bodies[verb]).body)
        assert flipping.asked == before + 1  # once per call
        assert got == want[before % 2]  # all of it under that one


def test_prioritize_after_filter_under_another_policy_judges_again() -> None:
    """The judgement filter leaves for prioritize (the same pod over the very same node table,
    as the cache answers it) is the old policy's: prioritize under a new one must not reuse it.
    n0 is at 78 % CPU; with the pod's 765m estimate 85.7 %: over A's 80 %, under B's 90 %."""
    now = [T0]
    state = ClusterState(
        estimator_factors={"cpu": 85, "memory": 70},
        annotation_prefix=PREFIX,
        load=LoadWindow(("cpu", "memory"), window_s=3600.0),
        clock=lambda: now[0],
    )
    state.nodes_handler.replace([cache_node("n0", 10000, 7800, 30), cache_node("n1", 10000, 2000, 30)])
    state.pods_handler.replace([])
    state.publish(force=True)
    source = CacheSource(_Cache(state), clock=lambda: now[0])  # type: ignore[arg-type]

    def verbs(policy: Any) -> Verbs:
        return Verbs(policy=policy, source=source, binder=None, logger=logging.getLogger("test"))  # type: ignore[arg-type]

    body = cache_args(["n0", "n1"])
    flipping = verbs(Flipping(POLICY_A, POLICY_B))
    assert json.loads(flipping.filter(body).body)["FailedNodes"] == {"n0": mock.ANY}  # under A
    got = json.loads(flipping.prioritize(body).body)  # under B
    assert got == json.loads(verbs(_policy(POLICY_B)).prioritize(body).body)
    assert got != json.loads(verbs(_policy(POLICY_A)).prioritize(body).body)


# --- the app: metrics, the decision log and /explain say which version decided ---------------------


@pytest.fixture()
def reloading_app(tmp_path: Path) -> Iterator[tuple[Any, KubeletVolume]]:
    volume = KubeletVolume(tmp_path / "policy")
    volume.publish(POLICY_A)
    settings = Settings(api_access=False, policy=volume.path, policy_reload_s=0.001, debug_endpoints=True)
    app = create_app(settings, binder=RecordingBinder(), clock=lambda: CLOCK)  # type: ignore[arg-type]
    yield app.test_client(), volume


def _after_the_interval() -> None:
    time.sleep(0.01)


def test_the_app_serves_the_new_version_and_says_which_decided(reloading_app: Any) -> None:
    client, volume = reloading_app
    body = golden("prioritize-nodes.request.json")
    uid = json.loads(body)["Pod"]["metadata"]["uid"]
    version_a, version_b = policy_version(POLICY_A.encode()), policy_version(POLICY_B.encode())
    client.post("/filter", data=golden("filter-nodes.request.json"))
    assert client.post("/prioritize", data=body).get_json() == _alone(POLICY_A, "prioritize", body)
    decision = client.get(f"/debug/decisions/{uid}").get_json()
    assert decision["filter"]["policy"] == decision["prioritize"]["policy"] == version_a
    assert client.post("/explain", data=body).get_json()["policy"] == version_a
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'extender_info{{mode="stateless",policy="{version_a}"}} 1.0' in metrics

    volume.publish(POLICY_B)
    _after_the_interval()
    metrics = client.get("/metrics").get_data(as_text=True)  # a scrape looks at the file too
    assert f'extender_info{{mode="stateless",policy="{version_b}"}} 1.0' in metrics
    assert version_a not in metrics
    assert 'extender_policy_reload_total{outcome="reloaded"} 1.0' in metrics
    assert client.post("/prioritize", data=body).get_json() == _alone(POLICY_B, "prioritize", body)
    decision = client.get(f"/debug/decisions/{uid}").get_json()
    assert (decision["filter"]["policy"], decision["prioritize"]["policy"]) == (version_a, version_b)
    assert client.post("/explain", data=body).get_json()["policy"] == version_b

    volume.edit_in_place(POLICY_INVALID)
    _after_the_interval()
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'extender_policy_reload_total{outcome="invalid"} 1.0' in metrics
    assert f'policy="{version_b}"' in metrics
    assert client.post("/prioritize", data=body).get_json() == _alone(POLICY_B, "prioritize", body)


# --- the cluster cache --------------------------------------------------------------------------


def _pods_and_binds(s: ClusterState, now: list[float]) -> None:
    """Pods of several shapes, some bound before the factors change (compensated), a resource
    that grows the axis after the first pods were recorded, and a limit below the request."""
    s.nodes_handler.replace([node("a"), node("b")])
    s.pods_handler.replace([pod("old", "a", cpu="1", memory="2Gi")])  # bound before we started
    for i, (cpu, memory, limits) in enumerate(
        [
            ("100m", "64Mi", {"cpu": "300m", "nvidia.com/gpu": "1"}),  # the axis grows
            ("500m", "1Gi", None),
            ("500m", "1Gi", None),  # the same shape: one accounting
            (None, None, None),  # neither: Koordinator's default estimate
            ("2", "1Gi", {"cpu": "1", "memory": "4Gi"}),  # a limit below the request
        ]
    ):
        now[0] += 1
        s.pods_handler.upsert(pod(f"p{i}", "ab"[i % 2], cpu=cpu, memory=memory, limits=limits))
    s.pods_handler.delete(pod("p2", "a"))


@pytest.mark.parametrize("factors", [{"cpu": 50, "memory": 100}, {"cpu": 85}, {}])
def test_new_estimator_factors_equal_a_store_that_had_them_from_the_start(factors: dict[str, int]) -> None:
    def state(start: dict[str, float]) -> tuple[ClusterState, list[float]]:
        now = [1000.0]
        s = ClusterState(
            estimator_factors=start,
            load=FakeLoad(),
            clock=lambda: now[0],
            compensation=CompensationSpec(report_lag_s=60, max_s=300),
        )
        return s, now

    changed, now = state({"cpu": 85, "memory": 70})
    _pods_and_binds(changed, now)
    before = changed.publish(force=True)
    assert changed.set_estimator_factors(factors)
    assert not changed.set_estimator_factors(factors)  # the same again: nothing to do
    from_start, now2 = state(dict(factors))
    _pods_and_binds(from_start, now2)
    for s in (changed, from_start):  # a pod of a shape seen before the change: estimated anew
        s.pods_handler.upsert(pod("p5", "b", cpu="500m", memory="1Gi"))  # the accounting memo has it
    got, want = changed.publish(), from_start.publish(force=True)
    assert got is not before  # the change publishes
    assert got.resources == want.resources and got.names == want.names
    for field in ("pending", "requested", "limits"):
        np.testing.assert_array_equal(got.arrays[field], want.arrays[field], err_msg=field)
    assert got.compensated_pods == want.compensated_pods == 5
    for uid in ("old", "p0", "p1", "p3", "p4", "p5"):
        for a, b in zip(
            changed.pod_vectors(uid, got.resources) or (),
            from_start.pod_vectors(uid, got.resources) or (),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b, err_msg=uid)
    now[0] += 400  # past max_s: the compensation runs out as it would have
    assert not changed.publish(force=True).arrays["pending"].any()


def test_the_in_process_cache_applies_a_new_policy_in_its_publisher(api_client: Any) -> None:
    policy_a, policy_b = _policy(POLICY_A), _policy(POLICY_B)
    c = Cache(api_client, policy_a, CacheConfig())
    assert c.state._factors == {"cpu": 85.0, "memory": 70.0}
    changed = _policy(POLICY_B.replace("cpu: 85, memory: 70", "cpu: 40, memory: 60").replace("180", "30"))
    c.use_policy(changed, "v2")
    assert c.state._factors == {"cpu": 85.0, "memory": 70.0}  # not on the caller's thread
    c.apply_policy()  # the publisher, before its next round
    assert c.state._factors == {"cpu": 40.0, "memory": 60.0}
    assert c._policy == CachePolicy.of(changed, "v2") and c._policy.stale_after_s == 30
    c.use_policy(policy_b, "v3")  # other weights, the same factors: nothing estimated again
    c.apply_policy()
    assert c.state._factors == {"cpu": 85.0, "memory": 70.0}


def _policy(text: str) -> Policy:
    return parse_policy(yaml.safe_load(text))


@pytest.mark.timeout(120)
def test_the_cache_process_gets_a_new_policy_and_a_new_child_starts_with_it(
    api: FakeKubeAPI, tmp_path: Path
) -> None:
    """The heartbeat hands the new factors to the child; a child started after that (the old
    one killed) starts with the worker's policy, never the file's, which may be invalid by then."""
    api.add_node(node_obj("n0", usage_cpu=None))  # no load data: compensation lasts max_s
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY_A)
    settings = Settings(
        kubeconfig=str(write_kubeconfig(tmp_path / "kubeconfig", api.url)), policy=policy_file
    )
    cache = CacheProcess(settings, policy=_policy(POLICY_A), metrics=Metrics(mode="cache", cache=False))
    cache.start()
    try:
        _wait(lambda: cache.readiness()[0])
        uid = api.add_pod(pod_obj("p", node="n0", cpu="1", memory="1Gi"))["metadata"]["uid"]  # bound now

        def estimate() -> float | None:
            vectors = cache.state.pod_vectors(uid, ("cpu",))
            return None if vectors is None else float(vectors[2][0])

        def pending() -> float:
            snap = cache.state.snapshot
            return float(snap.arrays["pending"][snap.resources.index("cpu"), snap.index["n0"]])

        _wait(lambda: estimate() == 850.0 and pending() == 850.0)  # 1 CPU x 85 %
        halved = _policy(POLICY_A.replace("cpu: 85, memory: 70", "cpu: 50, memory: 70"))
        cache.use_policy(halved, "halved")
        _wait(lambda: estimate() == 500.0 and pending() == 500.0, timeout=5)  # a heartbeat, a publish

        policy_file.write_text(POLICY_INVALID)  # the file on disk is no longer valid
        old = cache._process
        old.kill()
        _wait(lambda: cache._process is not old and cache.readiness()[0], timeout=60)
        _wait(lambda: estimate() == 500.0)  # the new child has it too (its list: nothing pending)
    finally:
        cache.stop()


def _wait(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.timeout(120)
def test_a_reloaded_policy_reaches_the_cache(
    api: FakeKubeAPI, tmp_path: Path, cache_env: dict[str, str]
) -> None:
    """The app's reload hands the policy to the cluster cache, in the worker or in its process:
    a pod it counts is estimated with the new factors."""
    api.add_node(node_obj("n0"))
    uid = api.add_pod(pod_obj("p", node="n0", cpu="1", memory="1Gi"))["metadata"]["uid"]
    volume = KubeletVolume(tmp_path / "policy")
    volume.publish(POLICY_A)
    settings = Settings(
        kubeconfig=str(write_kubeconfig(tmp_path / "kubeconfig", api.url)),
        policy=volume.path,
        policy_reload_s=0.001,
        cache_process=cache_env["EXTENDER_CACHE_PROCESS"] == "true",
    )
    app = create_app(settings)
    client, cache = app.test_client(), app.extensions["extender"]["cache"]
    try:

        def estimate() -> float | None:
            vectors = cache.state.pod_vectors(uid, ("cpu",))
            return None if vectors is None else float(vectors[2][0])

        _wait(lambda: client.get("/readyz").status_code == 200 and estimate() == 850.0)
        volume.publish(POLICY_A.replace("cpu: 85, memory: 70", "cpu: 30, memory: 70"))
        _after_the_interval()
        assert 'outcome="reloaded"' in client.get("/metrics").get_data(as_text=True)
        _wait(lambda: estimate() == 300.0, timeout=5)
    finally:
        cache.stop()
