"""CacheSource: the node table a names-form request is answered from.

A request naming every node of the snapshot (in any order) is answered from the snapshot's own
arrays, without gathering them; any other request gathers its rows. Both must give every node
the answer it gets on its own; a table kept for a name list that comes again must follow new
snapshots and the clock (load ages)."""

from __future__ import annotations

import datetime
import json
import logging
import random
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extender.cache.node_source import AGE_RESOLUTION_S, CacheSource
from extender.cache.store import ClusterState
from extender.load.window import LoadWindow
from extender.policy_file import load_policy
from extender.verbs import verbs as verbs_module
from extender.verbs.verbs import Verbs

POLICY = load_policy(Path(__file__).resolve().parents[1] / "config" / "extender-policy.yaml")
PREFIX = "load.extender.scheduling/"
T0 = 1_800_000_000.0  # wall clock of the tests (2027-01-15)


class _Cache:
    """What CacheSource reads of the cache: synced, readiness and the state."""

    synced = True

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def readiness(self) -> tuple[bool, str]:
        return True, "synced"


def _node(name: str, cpu: int, used: int, age_s: float) -> bytes:
    updated = f"{datetime.datetime.fromtimestamp(T0 - age_s, datetime.UTC):%Y-%m-%dT%H:%M:%SZ}"
    return json.dumps(
        {
            "metadata": {
                "name": name,
                "annotations": {
                    f"{PREFIX}cpu": f"{used}m",
                    f"{PREFIX}memory": "1Gi",
                    f"{PREFIX}updated": updated,
                },
            },
            "status": {"allocatable": {"cpu": f"{cpu}m", "memory": "16Gi", "pods": "110"}},
        }
    ).encode()


def _pod(uid: str, node: str, cpu: int) -> bytes:
    return json.dumps(
        {
            "metadata": {"name": f"p{uid}", "namespace": "ns", "uid": uid},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "resources": {"requests": {"cpu": f"{cpu}m", "memory": "1Gi"}}}],
            },
            "status": {"phase": "Running"},
        }
    ).encode()


def _setup(
    nodes: list[tuple[int, int, float]], pods: list[tuple[int, int]], now: list[float]
) -> tuple[ClusterState, Verbs]:
    state = ClusterState(
        estimator_factors=POLICY.estimator.estimatedScalingFactors,
        annotation_prefix=PREFIX,
        load=LoadWindow(("cpu", "memory"), window_s=3600.0),
        clock=lambda: now[0],
    )
    state.nodes_handler.replace([_node(f"n{i}", cpu, used, age) for i, (cpu, used, age) in enumerate(nodes)])
    state.pods_handler.replace([_pod(str(k), f"n{i % len(nodes)}", cpu) for k, (i, cpu) in enumerate(pods)])
    state.publish(force=True)
    source = CacheSource(_Cache(state), clock=lambda: now[0])  # type: ignore[arg-type]
    verbs = Verbs(policy=POLICY, source=source, binder=None, logger=logging.getLogger("test"))  # type: ignore[arg-type]
    return state, verbs


def _args(names: list[str], cpu: int = 900) -> bytes:
    pod = {
        "metadata": {"name": "new", "namespace": "ns", "uid": "new-uid"},
        "spec": {
            "containers": [{"name": "c", "resources": {"requests": {"cpu": f"{cpu}m", "memory": "1Gi"}}}]
        },
    }
    return json.dumps({"Pod": pod, "Nodes": None, "NodeNames": names}).encode()


def _answers(verbs: Verbs, names: list[str]) -> tuple[dict[str, Any], dict[str, int]]:
    """Per node: its filter outcome (True or the failure reason) and its priority."""
    body = _args(names)
    f = json.loads(verbs.filter(body).body)
    outcome: dict[str, Any] = {n: True for n in f["NodeNames"]}
    outcome.update(f["FailedNodes"])
    outcome.update(f["FailedAndUnresolvableNodes"])
    p = json.loads(verbs.prioritize(body).body)
    assert [h["Host"] for h in p] == names and sorted(outcome) == sorted(names)
    return outcome, {h["Host"]: h["Score"] for h in p}


NODES = st.lists(
    st.tuples(
        st.sampled_from([2000, 4000, 8000]), st.integers(0, 8000), st.sampled_from([5.0, 100.0, 1000.0])
    ),
    min_size=2,
    max_size=12,
)
PODS = st.lists(st.tuples(st.integers(0, 11), st.sampled_from([100, 500, 1500])), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=NODES, pods=PODS, seed=st.integers(0, 2**16))
def test_every_node_in_any_order_answers_as_each_node_alone(
    nodes: list[tuple[int, int, float]], pods: list[tuple[int, int]], seed: int
) -> None:
    _, verbs = _setup(nodes, pods, [T0])
    names = [f"n{i}" for i in range(len(nodes))]
    random.Random(seed).shuffle(names)
    whole = _answers(verbs, names)  # every node: the snapshot's own arrays
    part = _answers(verbs, names[1:] + ["not-a-node"])  # gathered rows, one name unresolvable
    for name in names:
        alone = _answers(verbs, [name])
        assert whole[0][name] == alone[0][name] and whole[1][name] == alone[1][name]
        if name in part[0]:
            assert part[0][name] == alone[0][name] and part[1][name] == alone[1][name]
    assert "cluster cache" in part[0]["not-a-node"] and part[1]["not-a-node"] == 0


def test_a_kept_table_follows_new_snapshots_and_the_clock() -> None:
    now = [T0]
    # n0 busy with fresh load, n1 idle but its load is 170 s old (stale after 180 s)
    state, verbs = _setup([(4000, 3900, 5.0), (4000, 0, 170.0)], [], now)
    names = ["n1", "n0"]
    outcome, _ = _answers(verbs, names)
    assert outcome["n1"] is True and "usage exceed threshold" in outcome["n0"]
    # the same list again within the age resolution: the same table (no new build)
    table = verbs._source._last.cands.table
    now[0] += AGE_RESOLUTION_S / 2
    _answers(verbs, names)
    assert verbs._source._last.cands.table is table
    # 15 s later n1's load is stale: the policy's fallback ("requests") scores it, no new snapshot
    now[0] = T0 + 15.0
    first = state.snapshot
    body = _args(names)
    ev = verbs._evaluate(body)[1]
    assert verbs._source._last.generation == first.generation
    assert ev.fallback.tolist() == [False, True]  # snapshot order: n0, n1
    # a new snapshot (n0's load drops): the next call sees it
    state.nodes_handler.upsert(_node("n0", 4000, 100, -15.0))
    state.publish()
    outcome, _ = _answers(verbs, names)
    assert outcome["n0"] is True


def test_whole_table_is_views_of_the_snapshot() -> None:
    state, verbs = _setup([(4000, 100, 5.0), (8000, 100, 5.0), (2000, 100, 5.0)], [(0, 500)], [T0])
    _answers(verbs, ["n2", "n0", "n1"])
    table = verbs._source._last.cands.table
    snap = state.snapshot
    assert table.names == snap.names and np.shares_memory(table.requested, snap.arrays["requested"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=NODES,
    pods=PODS,
    cpus=st.lists(st.sampled_from([100, 900, 3000]), min_size=1, max_size=4),
    later=st.booleans(),
    publish=st.booleans(),
)
def test_prioritize_after_filter_answers_as_prioritize_alone(
    nodes: list[tuple[int, int, float]],
    pods: list[tuple[int, int]],
    cpus: list[int],
    later: bool,
    publish: bool,
) -> None:
    """kube-scheduler sends prioritize right after filter, for the same pod: the judgement of the
    filter is reused, and only when the pod and the node table are the same (no new snapshot,
    no renewal of the load ages); the answer is that of a prioritize call on its own."""
    now = [T0]
    state, verbs = _setup(nodes, pods, now)
    names = [f"n{i}" for i in range(len(nodes))]
    with mock.patch.object(verbs_module, "feasibility", side_effect=verbs_module.feasibility) as judged:
        for k, cpu in enumerate(cpus):
            body = _args(names, cpu)
            verbs.filter(body)
            before = judged.call_count
            if publish:  # a pod lands somewhere meanwhile: a new snapshot
                state.pods_handler.upsert(_pod(f"extra-{k}", "n0", 100))
                state.publish()
            if later:  # the kept table's load ages are renewed
                now[0] += 2 * AGE_RESOLUTION_S
            got = verbs.prioritize(body).body
            assert (judged.call_count == before) == (not publish and not later)
            source = CacheSource(_Cache(state), clock=lambda: now[0])  # type: ignore[arg-type]
            alone = Verbs(policy=POLICY, source=source, binder=None, logger=logging.getLogger("test"))  # type: ignore[arg-type]
            assert got == alone.prioritize(body).body
