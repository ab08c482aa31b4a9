"""The latency benchmark's kube-scheduler driver (benchmarks/driver.py): its pure parts against
kube-scheduler's own arithmetic, the scheduler's timeout, the answer checks, and one small run
of both forms against the real server.

No timing assertions: only what the scheduler would do, and that every answer is checked.
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest

from benchmarks import driver, k8s_objects, sampling
from benchmarks.harness import BenchmarkError, CallTimeout, Client, Reply, decode_filter, decode_prioritize
from scoring import PodDemand
from scoring.types import BASE_RESOURCES
from tests.test_benchmarks_smoke import run_cli

# --- sampling: numFeasibleNodesToFind and nextStartNodeIndex ---------------------------------------


@pytest.mark.parametrize(
    ("nodes", "percentage", "expected"),
    [
        (50, 0, 50),  # under 100 nodes: all of them
        (99, 0, 99),
        (100, 0, 100),  # 50 % of 100 is 50, raised to the 100-node minimum
        (1523, 0, 578),  # 50 - 1523/125 = 38 %: 1523 * 38 / 100 = 578 (integer division)
        (3125, 0, 781),  # the most any cluster sends: 25 % of 3,125
        (5000, 0, 500),  # 50 - 40 = 10 %
        (10000, 0, 500),  # 50 - 80 < 5: the 5 % minimum
        (1000, 30, 300),  # a configured percentageOfNodesToScore
        (1000, 5, 100),  # ... still at least 100 nodes
        (50, 30, 50),  # ... and all nodes under 100
    ],
)
def test_num_feasible_nodes_to_find_is_kube_schedulers(nodes: int, percentage: int, expected: int) -> None:
    assert sampling.num_feasible_nodes_to_find(nodes, percentage) == expected


def test_search_starts_at_the_start_index_and_wraps() -> None:
    search = sampling.find_feasible(np.ones(10, bool), start=8, want=4)
    assert search.rows.tolist() == [8, 9, 0, 1] and search.processed == 4
    assert sampling.next_start_index(8, search.processed, 10) == 2


def test_search_counts_the_rejected_nodes_it_examined() -> None:
    fits = np.array([1, 0, 1, 0, 1, 1, 0, 1, 1, 1], bool)
    search = sampling.find_feasible(fits, start=3, want=3)
    # nodes 3 (no), 4, 5, 6 (no), 7: three fit; the search stops at node 8, the fourth
    assert search.rows.tolist() == [4, 5, 7] and search.processed == 5
    few = sampling.find_feasible(np.array([0, 1, 0, 0, 1], bool), start=2, want=3)
    assert few.rows.tolist() == [4, 1] and few.processed == 5  # fewer fit than wanted: all examined


class FakeExtender:
    """Passes ``passing(rows)`` (default: every node), scores ``scores(rows)``, records calls."""

    def __init__(
        self,
        passing: Callable[[np.ndarray], np.ndarray | None] | None = None,
        scores: Callable[[np.ndarray], np.ndarray | None] | None = None,
        bind_ok: bool = True,
    ) -> None:
        self.passing = passing or (lambda rows: rows)
        self.scores = scores or (lambda rows: np.zeros(len(rows), np.int64))
        self.bind_ok = bind_ok
        self.filtered: list[list[int]] = []
        self.prioritized: list[list[int]] = []
        self.bound: list[int] = []

    def filter(self, pod: driver.PendingPod, rows: np.ndarray) -> np.ndarray | None:
        self.filtered.append(rows.tolist())
        return self.passing(rows)

    def prioritize(self, pod: driver.PendingPod, rows: np.ndarray) -> np.ndarray | None:
        self.prioritized.append(rows.tolist())
        return self.scores(rows)

    def bind(self, pod: driver.PendingPod, row: int) -> bool:
        self.bound.append(row)
        return self.bind_ok


def _view(n: int, *, cpu: float = 32000.0, requested_cpu: float = 0.0) -> driver.NodeView:
    alloc = np.tile([cpu, 128e9, 110.0], (n, 1))
    requested = np.zeros((n, 3))
    requested[:, 0] = requested_cpu
    return driver.NodeView(tuple(f"node-{i:05d}" for i in range(n)), alloc, requested, requested.copy())


def _pod(cpu: float = 500.0, memory: float = 512 * 2**20) -> driver.PendingPod:
    req = np.array([cpu, memory, 1.0])
    demand = PodDemand(
        resources=BASE_RESOURCES, requests=req, nonzero_requests=req.copy(), limits=np.zeros(3)
    )
    return driver.PendingPod("web-0", "default", "uid-0", b"{}", demand)


def test_consecutive_cycles_rotate_over_the_whole_cluster() -> None:
    ext = FakeExtender()
    sched = driver.Scheduler(_view(300), ext, weight=3, rng=random.Random(1))
    want = sampling.num_feasible_nodes_to_find(300)  # 48 % of 300 = 144
    for _ in range(3):
        sched.schedule_one(_pod(cpu=1.0))
    assert want == 144
    assert ext.filtered[0] == list(range(144))
    assert ext.filtered[1] == list(range(144, 288))
    assert ext.filtered[2] == [*range(288, 300), *range(0, 132)]
    assert sched.next_start == 132


def test_nodes_that_do_not_fit_in_tree_are_never_sent() -> None:
    view = _view(4, cpu=1000.0)
    view.requested[1, 0] = 800.0  # 200m left: a 500m pod does not fit
    view.requested[3, 2] = 110.0  # no pod slot left
    ext = FakeExtender()
    driver.Scheduler(view, ext, weight=1, rng=random.Random(1)).schedule_one(_pod())
    assert ext.filtered == [[0, 2]]


# --- scores and the choice ----------------------------------------------------------------------------


def test_in_tree_scores_are_least_allocated_plus_balanced_allocation() -> None:
    view = _view(2, cpu=1000.0, requested_cpu=0.0)
    view.allocatable[:, 1] = 1000.0
    view.requested[1, 0] = view.nonzero_requested[1, 0] = 500.0
    scores = driver.in_tree_scores(view.table(np.array([0, 1])), _pod(cpu=500.0, memory=500.0).demand)
    # BalancedAllocation as kube-scheduler v1.36: 50 + (50 + balance with the pod - without) / 2
    # node 0: LeastAllocated (50 + 50) / 2 = 50; BalancedAllocation with 0.5, 0.5 -> 100, without
    # 0, 0 -> 100: 50 + 50 / 2 = 75
    # node 1: LeastAllocated (0 + 50) / 2 = 25; BalancedAllocation with 1, 0.5 -> (1 - 0.25) * 100 =
    # 75, without 0.5, 0 -> 75: 75
    assert scores.tolist() == [125, 100]


def test_extender_score_times_weight_times_ten_is_added_to_the_in_tree_score() -> None:
    in_tree = np.array([150, 100, 0], np.int64)
    combined = driver.combine_scores(in_tree, np.array([2, 7, 10], np.int64), weight=3)
    assert combined.tolist() == [150 + 60, 100 + 210, 0 + 300]
    assert driver.combine_scores(in_tree, None, weight=3).tolist() == [150, 100, 0]  # failed prioritize


def test_ties_are_broken_at_random_and_reproducibly_with_a_seed() -> None:
    totals = np.array([5, 9, 9, 1, 9], np.int64)
    picks = [driver.select_host(totals, random.Random(seed)) for seed in range(200)]
    assert {p for p, _ in picks} == {1, 2, 4} and {t for _, t in picks} == {3}
    rng_a, rng_b = random.Random(7), random.Random(7)
    assert [driver.select_host(totals, rng_a)[0] for _ in range(20)] == [
        driver.select_host(totals, rng_b)[0] for _ in range(20)
    ]
    assert driver.select_host(np.array([1, 4, 2], np.int64), random.Random(0)) == (1, 1)


def test_the_highest_total_wins_and_the_pod_is_assumed_there() -> None:
    view = _view(3)
    ext = FakeExtender(scores=lambda rows: np.array([0, 10, 3], np.int64)[rows])
    cycle = driver.Scheduler(view, ext, weight=3, rng=random.Random(1)).schedule_one(_pod())
    assert cycle.host == "node-00001" and cycle.outcome == "bound" and cycle.prioritized
    assert ext.bound == [1] and view.requested[1].tolist() == [500.0, 512 * 2**20, 1.0]
    assert view.requested[0].sum() == view.requested[2].sum() == 0


def test_one_node_left_after_the_extender_filter_is_taken_without_prioritize() -> None:
    ext = FakeExtender(passing=lambda rows: rows[2:3])
    cycle = driver.Scheduler(_view(5), ext, weight=3, rng=random.Random(1)).schedule_one(_pod())
    assert ext.prioritized == [] and not cycle.prioritized
    assert cycle.passed == 1 and cycle.host == "node-00002" and cycle.outcome == "bound"


def test_failures_as_the_scheduler_treats_them() -> None:
    view = _view(3)
    # filter failed: the attempt fails, nothing scored, nothing assumed
    ext = FakeExtender(passing=lambda rows: None)
    cycle = driver.Scheduler(view, ext, weight=3, rng=random.Random(1)).schedule_one(_pod())
    assert cycle.outcome == "filter_error" and ext.prioritized == [] and ext.bound == []
    # no node passes: unschedulable
    none_left = FakeExtender(passing=lambda rows: rows[:0])
    assert (
        driver.Scheduler(view, none_left, weight=3, rng=random.Random(1)).schedule_one(_pod()).outcome
        == "unschedulable"
    )
    # prioritize failed: the in-tree scores alone decide (node 2 is the emptiest: LeastAllocated
    # says so; kube-scheduler v1.36's BalancedAllocation gives all three 74, the pod moving each
    # balance by the same 1 point)
    view.requested[:2, 0] = view.nonzero_requested[:2, 0] = 16000.0
    failed = FakeExtender(scores=lambda rows: None)
    cycle = driver.Scheduler(view, failed, weight=3, rng=random.Random(1)).schedule_one(_pod())
    assert cycle.prioritize_error and cycle.host == "node-00002" and cycle.outcome == "bound"
    # bind failed: the assumed pod is forgotten
    before = view.requested.copy()
    cycle = driver.Scheduler(view, FakeExtender(bind_ok=False), weight=3, rng=random.Random(1)).schedule_one(
        _pod()
    )
    assert cycle.outcome == "bind_error" and np.array_equal(view.requested, before)


# --- the HTTP side ------------------------------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """Accepts connections and reads, never answers (a hung extender)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conns.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[:2]
    finally:
        stop.set()
        thread.join(5)
        for conn in conns:
            conn.close()
        listener.close()


def test_a_call_past_the_http_timeout_is_a_timeout_not_a_hang(silent_server: tuple[str, int]) -> None:
    host, port = silent_server
    client = Client(host, port)
    try:
        with pytest.raises(CallTimeout) as info:
            client.post("/filter", b"{}", deadline_s=0.2)
        assert info.value.wall_ms < 5000
        ext = driver.HTTPExtender(client, ["node-00000"], form="names", timeout_s=0.2)
        ext.recording = True
        pod = driver.PendingPod.from_object(k8s_objects.pod())
        assert ext.filter(pod, np.array([0])) is None and ext.prioritize(pod, np.array([0])) is None
        assert [c.timed_out for c in ext.calls["filter"] + ext.calls["prioritize"]] == [True, True]
    finally:
        client.close()


def _reply(body: object) -> Reply:
    return Reply(200, orjson.dumps(body), 1.0, None)


def test_filter_answers_are_checked() -> None:
    names = frozenset({"a", "b", "c"})
    ok = {
        "Nodes": None,
        "NodeNames": ["c", "a"],
        "FailedNodes": {"b": "busy"},
        "FailedAndUnresolvableNodes": None,
        "Error": "",
    }
    assert decode_filter(_reply(ok), names, names_form=True).passing == ("c", "a")
    nodes_form = {
        **ok,
        "NodeNames": None,
        "Nodes": {"metadata": {}, "items": [{"metadata": {"name": "a"}}]},
        "FailedNodes": {"b": "busy", "c": "busy"},
    }
    assert decode_filter(_reply(nodes_form), names, names_form=False).passing == ("a",)
    for bad, form in [
        ({**ok, "FailedNodes": {}}, True),  # b named nowhere
        ({**ok, "FailedNodes": {"b": "x", "a": "x"}}, True),  # a twice
        ({**ok, "FailedNodes": {"b": "x", "d": "x"}}, True),  # a node not asked about
        (ok, False),  # the NodeNames form where the Nodes form was asked
        ({**ok, "Error": "boom"}, True),
    ]:
        with pytest.raises(BenchmarkError):
            decode_filter(_reply(bad), names, names_form=form)
    with pytest.raises(BenchmarkError):
        decode_filter(Reply(500, b"{}", 1.0, None), names, names_form=True)


def test_prioritize_answers_are_checked() -> None:
    names = frozenset({"a", "b"})
    assert decode_prioritize(_reply([{"Host": "a", "Score": 3}, {"Host": "b", "Score": 10}]), names) == {
        "a": 3,
        "b": 10,
    }
    for bad in (
        [{"Host": "a", "Score": 3}],
        [{"Host": "a", "Score": 11}, {"Host": "b", "Score": 0}],
        [{"Host": "a", "Score": 1.5}, {"Host": "b", "Score": 0}],
        {"Host": "a", "Score": 1},
    ):
        with pytest.raises(BenchmarkError):
            decode_prioritize(_reply(bad), names)


def test_stateless_requests_carry_the_sampled_nodes_with_fresh_load_stamps() -> None:
    items = k8s_objects.cluster(3)
    old = "2020-01-01T00:00:00Z"
    for item in items:
        item["metadata"]["annotations"][k8s_objects.LOAD_PREFIX + "updated"] = old
    bodies = driver.NodeBodies([orjson.dumps(item) for item in items], old)
    node_names = [i["metadata"]["name"] for i in items]
    ext = driver.HTTPExtender(
        Client("127.0.0.1", 9), node_names, form="stateless", timeout_s=5.0, bodies=bodies
    )
    args = orjson.loads(ext.args(driver.PendingPod.from_object(k8s_objects.pod()), np.array([2, 0])))
    assert list(args) == ["Pod", "Nodes", "NodeNames"] and args["NodeNames"] is None
    assert [n["metadata"]["name"] for n in args["Nodes"]["items"]] == ["node-00002", "node-00000"]
    assert all(
        n["metadata"]["annotations"][k8s_objects.LOAD_PREFIX + "updated"] != old
        for n in args["Nodes"]["items"]
    )
    ext.client.close()


# --- end to end ---------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_both_forms_end_to_end_write_every_verb(tmp_path: Path) -> None:
    stdout, record = run_cli(
        tmp_path,
        "latency",
        "--sizes",
        "100",
        "--pods",
        "3",
        "--warmup",
        "1",
        "--pods-per-node",
        "3",
        "--ready-timeout",
        "60",
    )
    assert "| nodes | form | verb |" in stdout and "| nodes | form | pods |" in stdout
    assert record["benchmark"] == "latency" and record["machine"]["cpu_count"] >= 1
    rows = {(r["form"], r["verb"]): r for r in record["rows"]}
    assert set(rows) == {
        ("stateless", "filter"),
        ("stateless", "prioritize"),
        ("names", "filter"),
        ("names", "prioritize"),
        ("names", "bind"),
    }
    for (form, verb), row in rows.items():
        assert row["nodes"] == 100 and row["calls"] == 3 and row["timeouts"] == 0
        assert 0 < row["client_ms"]["p50"] <= row["client_ms"]["max"] and row["calls_per_s"] > 0
        if verb == "filter":  # the last answer, checked: every node sent is accounted for
            assert sum(row["answer"].values()) == row["nodes_per_call"]["max"] == 100
        if form == "stateless":
            assert row["request_bytes"]["p50"] > 50 * 10_000  # full Node objects, ~12 KB each
            assert row["ratio_server_orjson_p50"] > 0 and row["ratio_server_orjson_gc_disabled_p50"] > 0
        else:
            assert row["request_bytes"]["p50"] < 10_000 and "orjson_loads_ms" not in row
    assert rows[("names", "bind")]["answer"] == {"bound": 1}
    runs = {r["form"]: r for r in record["runs"]}
    for run in runs.values():
        assert run["sample"] == 100 and run["outcomes"] == {"bound": 3}
        assert len(run["cycles"]) == 3 and all(c["host"] for c in run["cycles"])
    assert len(runs["names"]["calls"]["bind"]) == 3 and runs["stateless"]["calls"]["bind"] == []
