"""The policy file changed under a running server (real gunicorn, the production layout):
a ConfigMap update (the kubelet's symlink swap) and an edit in place take effect within the
reload interval, an invalid file keeps the old policy and is counted, and calls in flight
during the swaps are all answered, each under one policy. Run with ``-s`` for the measured
reload latency."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness import Server, running_server
from extender.policy_file import policy_version
from extender.server.app import create_app
from extender.settings import Settings
from tests.policy_volume import POLICY_A, POLICY_B, POLICY_C, POLICY_INVALID, KubeletVolume
from tests.test_golden import fresh, golden, post

RELOAD_S = 0.2
pytestmark = pytest.mark.timeout(120)


def _metrics(server: Server) -> str:
    with urllib.request.urlopen(f"{server.ops_url}/metrics", timeout=10) as r:
        return str(r.read().decode())


def _expected(policy_text: str, tmp_path: Path, body: bytes) -> Any:
    """What an in-process app built with that policy answers (the same fresh body, so the
    same load ages within a second)."""
    path = tmp_path / f"expected-{policy_version(policy_text.encode())}.yaml"
    path.write_text(policy_text)
    app = create_app(Settings(api_access=False, policy=path, decisions=0))
    return app.test_client().post("/prioritize", data=body).get_json()


def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> float:
    """Seconds until ``check()`` holds (fails the test after ``timeout_s``)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout_s, "the policy change never took effect"
        time.sleep(0.02)
    return time.monotonic() - start


def _applied(server: Server, body: bytes, answer: Any, change: str) -> str:
    """Wait for prioritize to answer ``answer``; print how long that took; /metrics after it."""
    took = _until(lambda: post(f"{server.url}/prioritize", body) == (200, answer))
    print(f"\n{change} applied after {took:.2f} s (EXTENDER_POLICY_RELOAD_S={RELOAD_S})")
    return _metrics(server)


def test_a_policy_change_takes_effect_without_a_restart(tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path / "policy")
    volume.publish(POLICY_A)
    body = fresh(golden("prioritize-nodes.request.json"))
    answers = {name: _expected(text, tmp_path, body) for name, text in (("A", POLICY_A), ("B", POLICY_B))}
    answers["C"] = _expected(POLICY_C, tmp_path, body)
    assert len({json.dumps(a) for a in answers.values()}) == 3, answers  # the policies disagree

    env = {"EXTENDER_POLICY_RELOAD_S": str(RELOAD_S)}
    args = ("--no-api", "--debug-endpoints", "--policy", str(volume.path))
    with running_server(*args, env=env) as server:
        assert post(f"{server.url}/prioritize", body) == (200, answers["A"])
        assert f'policy="{policy_version(POLICY_A.encode())}"' in _metrics(server)

        # a ConfigMap update: the kubelet swaps ..data to a new directory
        volume.publish(POLICY_B)
        metrics = _applied(server, body, answers["B"], "symlink swap")
        assert 'extender_policy_reload_total{outcome="reloaded"} 1.0' in metrics
        version_b = policy_version(POLICY_B.encode())
        assert f'extender_info{{mode="stateless",policy="{version_b}"}} 1.0' in metrics
        assert f'policy="{policy_version(POLICY_A.encode())}"' not in metrics  # the old series is gone

        # which policy decided: /explain and the decision log
        status, explained = post(f"{server.ops_url}/explain", body)
        assert (status, explained["policy"]) == (200, version_b)
        uid = json.loads(body)["Pod"]["metadata"]["uid"]
        with urllib.request.urlopen(f"{server.ops_url}/debug/decisions/{uid}", timeout=10) as r:
            decision = json.loads(r.read())
        assert decision["prioritize"]["policy"] == version_b

        # an invalid edit in place: the old policy stays, the field is logged, and counted
        volume.edit_in_place(POLICY_INVALID)
        _until(lambda: 'extender_policy_reload_total{outcome="invalid"} 1.0' in _metrics(server))
        assert post(f"{server.url}/prioritize", body) == (200, answers["B"])
        assert "usageThresholds.memroy" in server.log_tail()
        assert f'policy="{version_b}"' in _metrics(server)

        # the next valid edit applies
        volume.edit_in_place(POLICY_C)
        metrics = _applied(server, body, answers["C"], "in-place edit")
        assert 'extender_policy_reload_total{outcome="reloaded"} 2.0' in metrics
        assert f'policy="{policy_version(POLICY_C.encode())}"' in metrics


def test_calls_in_flight_during_swaps_are_answered_under_one_policy(tmp_path: Path) -> None:
    """Four clients call prioritize while the policy flips between A and B a dozen times:
    every call is answered 200, each with A's answer or B's, never a mix (B moves the CPU
    threshold, so a judgement under one policy scored under the other shows)."""
    volume = KubeletVolume(tmp_path / "policy")
    volume.publish(POLICY_A)
    body = fresh(golden("prioritize-nodes.request.json"))
    filter_body = fresh(golden("filter-nodes.request.json"))
    allowed = [_expected(text, tmp_path, body) for text in (POLICY_A, POLICY_B)]
    env = {"EXTENDER_POLICY_RELOAD_S": "0.05"}
    with running_server("--no-api", "--policy", str(volume.path), env=env) as server:
        stop = threading.Event()
        seen: list[tuple[int, Any]] = []
        errors: list[BaseException] = []

        def client() -> None:
            try:
                while not stop.is_set():
                    post(f"{server.url}/filter", filter_body)  # prioritize may reuse its judgement
                    seen.append(post(f"{server.url}/prioritize", body))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for text in (POLICY_B, POLICY_A) * 6:
            volume.publish(text)
            time.sleep(0.15)
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors
        assert len(seen) > 20
        assert all(status == 200 for status, _ in seen)
        assert [a for _, a in seen if a not in allowed] == []
        assert {json.dumps(a) for _, a in seen} == {json.dumps(a) for a in allowed}  # both served
        assert "extender_policy_reload_total" in _metrics(server)
