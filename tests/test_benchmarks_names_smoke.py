"""The names benchmark (cluster-cache mode, fake API server in its own process, pod churn) runs
end to end on a small cluster and writes sane figures.

No timing assertions: this machine's numbers mean nothing in CI; what must hold are the
benchmark's own answer checks (every node named once by filter, every host scored 0..10 by
prioritize) and that the cache saw the churn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(150)
def test_names_small_run_writes_consistent_json(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "names",
            "--sizes",
            "200",
            "--pods-per-node",
            "5",
            "--calls",
            "10",
            "--events-per-s",
            "500",
            "--churn-seconds",
            "2",
            # its own timeouts well inside ours, so that it stops the extender and the fake itself
            "--ready-timeout",
            "45",
            "--drain-timeout",
            "15",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| nodes | phase | verb |" in proc.stdout and "| nodes | pods |" in proc.stdout

    (result,) = tmp_path.glob("names-*.json")
    assert len(list(tmp_path.glob("names-*.md"))) == 1
    record = json.loads(result.read_text())
    assert record["benchmark"] == "names" and record["machine"]["cpu_count"] >= 1
    rows = {(r["phase"], r["verb"]): r for r in record["rows"]}
    assert set(rows) == {(p, v) for p in ("steady", "churn") for v in ("filter", "prioritize")}
    for (phase, verb), row in rows.items():
        assert row["nodes"] == 200
        assert row["calls"] == 10 if phase == "steady" else row["calls"] >= 10
        for stats in (row["client_ms"], row["server_ms"]):
            assert 0 < stats["p50"] <= stats["p99"] <= stats["max"]
        cpu = row["server_cpu_ms"]  # the answering thread's CPU, within its wall time
        assert 0 < cpu["p50"] <= cpu["p99"] <= row["server_ms"]["max"] + 0.01
        if verb == "filter":
            assert set(row["answer"]) == {"passing", "failed", "unresolvable"}
            assert sum(row["answer"].values()) == 200 and row["answer"]["unresolvable"] == 0
        else:
            assert row["answer"] == {"scored": 200}

    (cache,) = record["cache"]
    assert cache["nodes"] == 200 and cache["pods"] == 1000 and cache["ready_s"] > 0
    assert cache["target_per_s"] == 500 and cache["emitted"] > 0 and cache["applied"] > 0
    assert cache["relists"] == 0 and cache["unresolvable_max"] == 0
    (size,) = record["sizes"]
    samples = size["churn"]["samples"]
    assert len(samples) >= 2 and samples[-1]["fake"]["churn"]["emitted"] >= cache["emitted"]
    applied = samples[-1]["metrics"]['extender_informer_events_total{kind="pods",what="event"}']
    # the extender cannot have applied events the fake never sent (its counter is read first)
    assert 0 < applied - size["churn"]["events_base"] <= samples[-1]["fake"]["churn"]["emitted"]
    assert len(size["steady"]["client_ms"]["filter"]) == 10


def test_sampled_bodies_rotate_through_every_node() -> None:
    """--percentage 0: kube-scheduler's adaptive sample (500 of 5,000), a new window each cycle
    that together cover every node; 100: every node in every call."""
    import json

    from benchmarks.names_client import _bodies

    names = [f"node-{i:05d}" for i in range(5000)]
    body = _bodies(names, 0)
    seen: set[str] = set()
    for k in range(10):
        data, sent = body(k)
        listed = json.loads(data)["NodeNames"]
        assert len(listed) == 500 and set(listed) == sent and not sent & seen
        seen |= sent
    assert seen == set(names)
    data, sent = _bodies(names, 100)(3)
    assert json.loads(data)["NodeNames"] == names and sent == frozenset(names)


def test_churn_restamps_what_a_fresh_render_would_send() -> None:
    """The churn's cheap paths (``restarted``, ``put_raw``) give the bytes that rendering the
    pod again would: an update is the next restartCount, every event carries its own
    resourceVersion, and the store key is the object's namespace and name."""
    import copy
    import random

    import orjson

    from benchmarks.names_fake import _Churn, make_bench_api
    from benchmarks.names_objects import new_pod, pod_key, pod_object, restarted

    rng = random.Random(7)
    for i in range(300):  # every shape and flavour (sidecars, init containers, BestEffort)
        p = new_pod(rng, i, rng.randrange(5000))
        p.gen = rng.randrange(12)
        obj = pod_object(p)
        assert pod_key(p) == (obj["metadata"]["namespace"], obj["metadata"]["name"])
        later = copy.copy(p)
        later.gen += 1
        assert restarted(orjson.dumps(obj), p) == orjson.dumps(pod_object(later))

    api = make_bench_api(history_limit=10_000)
    live = [new_pod(rng, i, i % 3) for i in range(30)]
    for p in live:
        api.put("pods", pod_object(p), record=False)
    before = {pod_key(p) for p in live}
    churn = _Churn(api, live, 3, rate=1000.0, seed=1, seconds=0.1)
    ahead = len(churn.ahead)
    for _ in range(400):
        churn._one()
    lines = api.log["pods"].lines
    assert len(lines) == 400 and churn.rendered_live == max(0, churn.counts["ADDED"] - ahead)
    keys = {pod_key(p) for p in live}  # the end state, replayed backwards to the start
    for rv, line in reversed(list(zip(api.log["pods"].rvs, lines, strict=True))):
        event = orjson.loads(line)
        meta = event["object"]["metadata"]
        assert meta["resourceVersion"] == str(rv)
        key = (meta["namespace"], meta["name"])
        if event["type"] == "ADDED":  # undone: it did not exist before
            assert key in keys
            keys.discard(key)
        elif event["type"] == "DELETED":  # undone: it existed before
            assert key not in keys
            keys.add(key)
        else:
            assert key in keys
    assert keys == before and set(api.store["pods"]) == {pod_key(p) for p in live}
    for p in live:  # the store holds each live pod as a fresh render would (but its rv)
        stored = orjson.loads(api.store["pods"][pod_key(p)])
        fresh = pod_object(p)
        stored["metadata"]["resourceVersion"] = fresh["metadata"]["resourceVersion"]
        assert stored == fresh
