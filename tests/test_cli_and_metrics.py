"""The command line users run, the prefix option, and what /metrics and /readyz report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from extender.policy_file import policy_version
from tests.conftest import ROOT, running_extender

POD = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {"containers": []}}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extender", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_check_policy_accepts_the_shipped_policy() -> None:
    out = run_cli("check-policy")
    assert out.returncode == 0 and "LoadAware" in out.stdout
    version = policy_version((ROOT / "config" / "extender-policy.yaml").read_bytes())
    assert f": ok, version {version} (" in out.stdout  # as extender_info's policy label says


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("strategies: [{name: Nope}]", "strategies[0].name: unknown strategy 'Nope'"),
        (
            "strategies: [{name: LeastAllocated, weight: -1}]",
            "strategies[0].weight: must be an integer in 0..100",
        ),
        (
            "filters: {usageThresholds: {cpu: 150}}",
            "filters.usageThresholds.cpu: must be an integer in 0..100",
        ),
        ("load: {fallback: maybe}", "load.fallback: must be one of requests, zero, reject"),
        ("strategies: [{name: LoadAware, args: {bogus: 1}}]", "strategies[0].args.bogus: unknown field"),
        (
            "strategies: [{name: RequestedToCapacityRatio, args: {shape: [{utilization: 50, score: 1}, "
            "{utilization: 20, score: 5}]}}]",
            "strategies[0].args.shape[1].utilization: must be greater",
        ),
        (
            "strategies: [{name: TargetLoadPacking, args: {targetUtilization: 0}}]",
            "strategies[0].args.targetUtilization: must be an integer in 1..100",
        ),
        ("key: [unclosed", "not valid YAML"),
    ],
    ids=[
        "unknown-strategy",
        "negative-weight",
        "threshold-range",
        "fallback",
        "unknown-arg",
        "shape-not-increasing",
        "target-out-of-range",
        "yaml",
    ],
)
def test_bad_policy_is_refused_at_start_with_the_field(tmp_path: Path, text: str, needle: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    for args in (("check-policy", str(policy)), ("serve", "--no-api", "--policy", str(policy))):
        out = run_cli(*args)
        assert out.returncode == 2, out
        assert needle in out.stderr and str(policy) in out.stderr


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("filters: {usageThresholds: {cpu: 80, memroy: 90}}", "filters.usageThresholds.memroy"),
        (
            "strategies: [{name: LoadAware, args: {resourceWeights: {cpu: 1, memroy: 1}}}]",
            "strategies[0].args.resourceWeights.memroy",
        ),
        (
            "strategies: [{name: LeastAllocated, args: {resources: [{name: cpu}, {name: memroy}]}}]",
            "strategies[0].args.resources[1].name",
        ),
    ],
    ids=["usageThresholds", "resourceWeights", "resources"],
)
def test_check_policy_refuses_a_resource_no_node_has(tmp_path: Path, text: str, field: str) -> None:
    """A misspelt resource would silently disable what the policy says (no node has `memroy`):
    check-policy and serve exit 2 with one line naming the file, the field and the likely
    meaning."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    for args in (("check-policy", str(policy)), ("serve", "--no-api", "--policy", str(policy))):
        out = run_cli(*args)
        assert out.returncode == 2 and out.stdout == "", out
        (line,) = out.stderr.splitlines()
        assert line.startswith(f"error: {policy}: {field}: ") and "did you mean 'memory'?" in line, line


def test_serve_refuses_bad_settings() -> None:
    out = run_cli("serve", "--url-prefix", "scheduler/")
    assert out.returncode == 2 and "EXTENDER_URL_PREFIX" in out.stderr


@pytest.mark.timeout(60)
def test_prefix_routes_and_metrics() -> None:
    with running_extender("--no-api", "--url-prefix", "/scheduler") as url:
        body = json.dumps(
            {
                "Pod": POD,
                "Nodes": {
                    "metadata": {},
                    "items": [
                        {
                            "metadata": {"name": "a"},
                            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}},
                        },
                        {
                            "metadata": {"name": "b"},
                            "status": {"allocatable": {"cpu": "0", "memory": "4Gi", "pods": "10"}},
                        },
                    ],
                },
                "NodeNames": None,
            }
        ).encode()
        req = urllib.request.Request(f"{url}/scheduler/filter", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
            timing = server_timing(r.headers["Server-Timing"])
            assert set(timing) == {"app", "cpu"} and 0 <= timing["cpu"] <= timing["app"] + 0.01
            answer = json.loads(r.read())
        assert [n["metadata"]["name"] for n in answer["Nodes"]["items"]] == ["a"]
        assert answer["FailedAndUnresolvableNodes"] == {"b": "node reports no allocatable cpu"}
        with pytest.raises(urllib.error.HTTPError) as err:  # the unprefixed path is not served
            urllib.request.urlopen(
                urllib.request.Request(f"{url}/filter", data=body, method="POST"), timeout=10
            )
        assert err.value.code == 404
        err.value.close()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(
                urllib.request.Request(f"{url}/scheduler/filter", data=b"{", method="POST"), timeout=10
            )
        err.value.close()
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as r:
            assert r.status == 200 and b"stateless" in r.read()
        text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    assert 'extender_requests_total{code="200",verb="filter"} 1.0' in text
    assert 'extender_requests_total{code="400",verb="filter"} 1.0' in text
    assert 'extender_errors_total{kind="bad_request",verb="filter"} 1.0' in text
    assert 'extender_filter_rejections_total{reason="no_allocatable"} 1.0' in text
    assert 'extender_request_duration_seconds_count{verb="filter"} 2.0' in text
    assert 'extender_request_nodes_sum{verb="filter"} 2.0' in text
    version = policy_version((ROOT / "config" / "extender-policy.yaml").read_bytes())
    assert f'extender_info{{mode="stateless",policy="{version}"}} 1.0' in text
    # the process and runtime metrics a default registry would have: memory, CPU, GC
    rss = re.search(r"^process_resident_memory_bytes (\S+)$", text, re.M)
    assert rss and float(rss.group(1)) > 10e6
    assert re.search(r'^python_gc_collections_total\{generation="2"\} \S+$', text, re.M)
    assert re.search(r"^python_info\{", text, re.M)


def server_timing(header: str) -> dict[str, float]:
    """``app;dur=1.2, cpu;dur=0.9`` -> {"app": 1.2, "cpu": 0.9} (W3C Server-Timing)."""
    out = {}
    for metric in header.split(","):
        name, _, dur = metric.strip().partition(";dur=")
        out[name] = float(dur)
    return out


def test_server_timing_tells_waiting_from_computing() -> None:
    """A call whose thread waits (here: a source that sleeps 50 ms, as a call held up by
    another thread would) shows it: ``app`` counts the wait, ``cpu`` only the work."""
    import time

    from extender.server.app import create_app
    from extender.settings import Settings
    from extender.verbs.source import StatelessSource

    class Slow(StatelessSource):
        def candidates(self, request, resources):
            time.sleep(0.05)
            return super().candidates(request, resources)

    app = create_app(Settings(api_access=False), source=Slow(clock=time.time))
    body = (Path(__file__).parent / "golden" / "filter-nodes.request.json").read_bytes()
    with app.test_client().post("/filter", data=body) as r:
        assert r.status_code == 200
        timing = server_timing(r.headers["Server-Timing"])
    assert timing["app"] >= 50 and timing["cpu"] < timing["app"] - 40


def test_livez_fails_once_the_service_has_not_been_ready_for_the_limit() -> None:
    """A cache that never syncs (or never recovers) fails liveness after
    EXTENDER_LIVENESS_UNREADY_S; a shorter spell of unreadiness leaves it live."""
    import time

    from extender.server.app import create_app
    from extender.settings import Settings
    from extender.verbs.source import StatelessSource

    now = [1000.0]
    state = {"ready": False}

    class Flaky(StatelessSource):
        def readiness(self) -> tuple[bool, str]:
            return state["ready"], "ready" if state["ready"] else "waiting for the first sync"

    settings = Settings(api_access=False, liveness_unready_s=600.0)
    client = create_app(settings, source=Flaky(clock=time.time), monotonic=lambda: now[0]).test_client()
    assert client.get("/livez").status_code == 200 and client.get("/readyz").status_code == 503
    now[0] += 600.0
    assert client.get("/livez").status_code == 200  # within the limit: the first sync may be slow
    now[0] += 1.0
    r = client.get("/livez")
    assert r.status_code == 503 and "not ready for 601 s (limit 600 s): waiting for the first sync" in r.text
    state["ready"] = True
    assert client.get("/livez").status_code == 200
    state["ready"] = False
    now[0] += 599.0
    assert client.get("/livez").status_code == 200  # counted from the last time it was ready
    now[0] += 2.0
    assert client.get("/livez").status_code == 503
    off = Settings(api_access=False, liveness_unready_s=0.0)
    client = create_app(off, source=Flaky(clock=time.time), monotonic=lambda: now[0]).test_client()
    now[0] += 10_000.0
    assert client.get("/livez").status_code == 200  # 0: never
