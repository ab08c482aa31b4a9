"""The GPU strategies (scoring/gpu.py): against the scalar reference (reference_gpu.py), the
invariants their definitions imply, worked examples, the typical-task walk and the policy.

Each property runs on ``generators.gpu_scenarios``: per-GPU shares, whole GPUs, whole GPUs derived
from ``nvidia.com/gpu``, or no GPU state; CPU-only, whole-GPU, shared-GPU and request-less pods;
typical tasks from the policy, from the pods seen, or none.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoring import PolicyError, evaluate, parse_policy
from scoring.explain import explain
from scoring.gpu import (
    GPU_MILLI,
    fgd_scores,
    fragmentation,
    gpu_best_fit,
    gpu_fragmentation,
    gpu_packing,
    gpu_state,
    pod_gpus,
    typical_tasks,
    workload,
)
from scoring.policy import GPUArgs, GPUFragmentationArgs
from scoring.types import GPURequest, NodeTable, PodDemand, TaskType
from tests.scoring import generators as gen
from tests.scoring import reference as ref
from tests.scoring import reference_gpu as rg
from tests.scoring.test_policy import ACCEPTED_NAMES, REFUSED_NAMES

PROPERTY = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
NAMES = gen.GPU_STRATEGY_NAMES
R3 = ("cpu", "memory", "pods")


def components(sc: gen.Scenario) -> dict:
    return evaluate(pod=sc.pod, nodes=sc.nodes, policy=sc.policy).components


def args_of(sc: gen.Scenario, name: str):
    return next(s.args for s in sc.policy.strategies if s.name == name)


def as_list(x):
    return None if x is None else x.tolist()


# --------------------------------------------------------------------------------------------
# vectorised == scalar reference


def two_node_example() -> gen.Scenario:
    """The worked example (test_worked_example_two_nodes)."""
    nodes = NodeTable.build(
        names=("node1", "node2"),
        resources=R3,
        allocatable=np.array([[32000.0, 2.0**36, 110]] * 2),
        gpu_free=[[1000, 1000], [1000, 500]],
    )
    req = np.array([2000.0, 2.0**20, 1])
    p = PodDemand(R3, req, req.copy(), np.zeros(3), gpu=GPURequest(1, 500))
    doc = {
        "filters": {"usageThresholds": {}},
        "strategies": [
            {
                "name": "GPUFragmentation",
                "args": {
                    "typicalTasks": [
                        {"cpu": "4", "gpus": 1, "weight": 3},
                        {"cpu": "2", "gpus": 1, "gpuMilli": 500, "weight": 1},
                    ]
                },
            },
            {"name": "GPUBestFit"},
            {"name": "GPUPacking"},
        ],
    }
    return gen.scenario(nodes, p, doc)


@PROPERTY
@given(sc=gen.gpu_scenarios())
@example(sc=two_node_example())
def test_each_gpu_strategy_matches_the_reference(sc):
    ev = evaluate(pod=sc.pod, nodes=sc.nodes, policy=sc.policy)
    feasible = [bool(v) for v in ev.verdict.feasible]
    for spec in sc.policy.strategies:
        got = ev.components[spec.name]
        if spec.name == "GPUFragmentation":
            want = rg.gpu_fragmentation(sc.pod, sc.nodes, spec.args)
        elif spec.name == "GPUBestFit":
            want = rg.gpu_best_fit(sc.pod, sc.nodes, spec.args, feasible)
        elif spec.name == "GPUPacking":
            want = rg.gpu_packing(sc.pod, sc.nodes, spec.args)
        else:
            continue
        assert as_list(got) == want, spec.name
        if got is not None:
            assert got.dtype == np.int64 and got.shape == (len(sc.nodes),)


@PROPERTY
@given(sc=gen.gpu_scenarios())
def test_evaluate_with_gpu_strategies_matches_the_reference(sc):
    ev = evaluate(pod=sc.pod, nodes=sc.nodes, policy=sc.policy)
    want = ref.evaluate(sc.pod, sc.nodes, sc.policy)
    assert ev.scores.tolist() == want.scores
    assert [float(c) for c in want.combined] == pytest.approx(ev.combined.tolist(), abs=1e-9)


@PROPERTY
@given(counts=st.lists(st.tuples(st.sampled_from([0, 1000, 4000]), st.integers(0, 2), st.integers(1, 9))))
def test_typical_tasks_match_the_reference_walk(counts):
    kinds = {}
    for cpu, gpus, n in counts:
        t = TaskType(cpu, gpus, GPU_MILLI if gpus else 0, n)
        kinds.setdefault(t.spec, t)
    tasks = tuple(kinds.values())
    plain = [(t.cpu, t.gpus, t.milli, t.weight) for t in tasks]
    for coverage in (1, 50, 60, 95, 100):
        got = typical_tasks(tasks, coverage)
        assert [(t.cpu, t.gpus, t.milli, t.weight) for t in got] == rg.typical_tasks(plain, coverage)


# --------------------------------------------------------------------------------------------
# invariants (from the definitions; no reference)


def _fits(sc: gen.Scenario, resource: str = gen.NVIDIA) -> np.ndarray:
    """(N,) the node can take the pod, recomputed from the state: CPU left and GPUs enough."""
    state = gpu_state(sc.nodes, resource)
    assert state is not None
    k, m = pod_gpus(sc.pod, resource)
    cpu_left = sc.nodes.allocatable[:, 0] - sc.nodes.requested[:, 0]
    ok = cpu_left >= sc.pod.nonzero_requests[0]
    if k:
        ok &= (state.free >= m).sum(axis=1) >= k
    return ok


@PROPERTY
@given(sc=gen.gpu_scenarios())
def test_scores_are_0_to_100_and_a_node_that_cannot_take_the_pod_scores_0(sc):
    comps = components(sc)
    for name in NAMES:
        if name not in comps or comps[name] is None:
            continue
        c = comps[name]
        assert ((c >= 0) & (c <= 100)).all(), name
        assert (c[~_fits(sc)] == 0).all(), name


@PROPERTY
@given(sc=gen.gpu_scenarios())
def test_what_takes_no_part(sc):
    """No GPU state: none applies; GPUPacking: not for a pod without GPUs; GPUFragmentation: not
    without typical tasks nor for a pod that sets no request."""
    comps = components(sc)
    has_state = sc.nodes.gpu_free is not None or gen.NVIDIA in sc.nodes.resources
    k, _ = pod_gpus(sc.pod, gen.NVIDIA)
    for spec in sc.policy.strategies:
        c = comps[spec.name]
        if spec.name == "GPUBestFit":
            assert (c is None) == (not has_state)
        elif spec.name == "GPUPacking":
            assert (c is None) == (not has_state or k == 0)
        elif spec.name == "GPUFragmentation":
            requests = sc.pod.gpu is not None or bool(np.delete(sc.pod.requests, 2).any())
            assert (c is None) == (not has_state or not workload(sc.nodes, spec.args) or not requests)


@PROPERTY
@given(sc=gen.gpu_scenarios(state="shares"), seed=gen.SEEDS)
def test_the_order_of_a_nodes_gpus_does_not_matter(sc, seed):
    """Every definition reads a node's GPUs as a multiset of free shares (Sub and the packing
    order pick by value; equal values score alike)."""
    rng = np.random.default_rng(seed)
    assert sc.nodes.gpu_free is not None and sc.nodes.gpu_present is not None
    order = np.argsort(rng.random(sc.nodes.gpu_free.shape), axis=1)
    shuffled = dataclasses.replace(
        sc.nodes,
        gpu_free=np.take_along_axis(sc.nodes.gpu_free, order, axis=1),
        gpu_present=np.take_along_axis(sc.nodes.gpu_present, order, axis=1),
    )
    a, b = components(sc), components(dataclasses.replace(sc, nodes=shuffled))
    assert {k: as_list(v) for k, v in a.items()} == {k: as_list(v) for k, v in b.items()}


@PROPERTY
@given(sc=gen.gpu_scenarios(state="derived"))
def test_whole_gpus_from_the_resource_equal_the_same_per_gpu_state(sc):
    """The derivation: ``allocatable`` GPUs, the first ``allocatable − requested`` free."""
    state = gpu_state(sc.nodes, gen.NVIDIA)
    assert state is not None and state.whole
    explicit = dataclasses.replace(sc.nodes, gpu_free=state.free.copy(), gpu_present=state.present.copy())
    a, b = components(sc), components(dataclasses.replace(sc, nodes=explicit))
    assert {k: as_list(v) for k, v in a.items()} == {k: as_list(v) for k, v in b.items()}


@PROPERTY
@given(sc=gen.gpu_scenarios(only=("GPUFragmentation",), workload="policy"))
def test_fgd_scores_50_exactly_where_the_pod_changes_no_fragment(sc):
    """A pod of no CPU and no GPU changes nothing: ΔF = 0, σ(0) = 1/2, 50 on every node it fits."""
    k, _ = pod_gpus(sc.pod, gen.NVIDIA)
    if k or sc.pod.nonzero_requests[0] or gpu_state(sc.nodes, gen.NVIDIA) is None:
        return
    c = components(sc)["GPUFragmentation"]
    if c is not None:
        assert (c[_fits(sc)] == 50).all()


@PROPERTY
@given(sc=gen.gpu_scenarios(only=("GPUFragmentation",), workload="policy"))
def test_fgd_with_cpu_only_tasks_sees_only_the_idle_share(sc):
    """With tasks without GPUs only, every idle share is a fragment: F = the node's idle share,
    so placing k GPUs of m lowers F by k·m and scores int(100·σ(k·m/1000)) wherever it fits."""
    args = args_of(sc, "GPUFragmentation")
    cpu_tasks = tuple(TaskType(t.cpu, 0, 0, t.weight) for t in args.typicalTasks if t.gpus == 0)
    if not cpu_tasks or gpu_state(sc.nodes, gen.NVIDIA) is None:
        return
    k, m = pod_gpus(sc.pod, gen.NVIDIA)
    got = gpu_fragmentation(
        sc.pod,
        sc.nodes,
        dataclasses.replace(args, typicalTasks=cpu_tasks),
        feasible=np.ones(len(sc.nodes), bool),
    )
    if got is None:
        return
    want = int(1.0 / (1.0 + math.exp(-k * m / GPU_MILLI)) * 100)
    ok = _fits(sc)
    assert (got[ok] == want).all() and (got[~ok] == 0).all()


@PROPERTY
@given(sc=gen.gpu_scenarios(only=("GPUFragmentation",), workload="policy"))
def test_fragmentation_is_between_0_and_the_idle_share(sc):
    """F = Σ p_t·frag_t with each frag_t between 0 and the idle share, Σ p_t = 1."""
    state = gpu_state(sc.nodes, gen.NVIDIA)
    if state is None:
        return
    f = fragmentation(sc.nodes, state, args_of(sc, "GPUFragmentation").typicalTasks)
    assert (f >= 0).all() and (f <= state.total + 1e-9).all()


@PROPERTY
@given(sc=gen.gpu_scenarios(only=("GPUFragmentation",), workload="policy"), factor=st.integers(2, 50))
def test_fgd_depends_on_the_frequencies_only(sc, factor):
    """Scaling every task's weight by the same factor leaves every p_t, hence every score."""
    args = args_of(sc, "GPUFragmentation")
    if any(t.weight > 10**6 for t in args.typicalTasks):
        return  # keep Σ w · ΔF exact in float64 on both sides
    scaled = tuple(dataclasses.replace(t, weight=t.weight * factor) for t in args.typicalTasks)
    feasible = np.ones(len(sc.nodes), bool)
    a = gpu_fragmentation(sc.pod, sc.nodes, args, feasible=feasible)
    b = gpu_fragmentation(sc.pod, sc.nodes, dataclasses.replace(args, typicalTasks=scaled), feasible=feasible)
    assert as_list(a) == as_list(b)


@PROPERTY
@given(sc=gen.gpu_scenarios(only=("GPUPacking",)))
def test_packing_prefers_shared_gpus_then_used_nodes_then_free_nodes(sc):
    """Where the pod fits (nodes of at most 16 GPUs): 50..100 when it goes on GPUs already
    shared, 33..49 when it has to open fully free GPUs of a node in use, at most 33 on a node
    whose GPUs are all free."""
    c = components(sc)["GPUPacking"]
    state = gpu_state(sc.nodes, gen.NVIDIA)
    if c is None or state is None:
        return
    ok = _fits(sc)
    all_free = state.full == state.count
    assert (c[ok & all_free] <= 33).all()
    used = ok & ~all_free
    k, m = pod_gpus(sc.pod, gen.NVIDIA)
    shared_enough = ((state.free >= m) & (state.free < GPU_MILLI)).sum(axis=1) >= k
    assert (c[used & shared_enough] >= 50).all()
    assert ((c[used & ~shared_enough] >= 33) & (c[used & ~shared_enough] <= 49)).all()


@PROPERTY
@given(sc=gen.gpu_scenarios(only=("GPUBestFit",)))
def test_best_fit_gives_the_tightest_fit_100_and_the_loosest_0(sc):
    """Min–max over the nodes that pass and fit: a node leaving the least (CPU/128 cores +
    GPU/8 GPUs) scores 100, the most 0, unless all leave the same; equal leftovers score alike."""
    ev = evaluate(pod=sc.pod, nodes=sc.nodes, policy=sc.policy)
    c = ev.components["GPUBestFit"]
    state = gpu_state(sc.nodes, gen.NVIDIA)
    if c is None or state is None:
        return
    counted = _fits(sc) & ev.verdict.feasible
    assert (c[~counted] == 0).all()
    if not counted.any():
        return
    cpu_left = sc.nodes.allocatable[:, 0] - sc.nodes.requested[:, 0]
    left = cpu_left / 128_000 + state.total / 8_000  # monotone in the raw score, up to truncation
    tight, loose = np.argmin(np.where(counted, left, np.inf)), np.argmax(np.where(counted, left, -np.inf))
    if c[counted].max() > 0:
        assert c[tight] == 100 and c[loose] == 0
    key = {}
    for i in np.flatnonzero(counted):
        key.setdefault((cpu_left[i], state.total[i]), set()).add(int(c[i]))
    assert all(len(v) == 1 for v in key.values())


@PROPERTY
@given(sc=gen.gpu_scenarios(min_nodes=2), seed=gen.SEEDS)
def test_permuting_the_nodes_permutes_the_gpu_scores(sc, seed):
    order = np.random.default_rng(seed).permutation(len(sc.nodes))
    a = components(sc)
    b = components(dataclasses.replace(sc, nodes=sc.nodes.take(order)))
    for name, c in a.items():
        assert as_list(b[name]) == (None if c is None else c[order].tolist()), name


@PROPERTY
@given(sc=gen.gpu_scenarios(min_nodes=2), seed=gen.SEEDS)
def test_fgd_and_packing_score_each_node_on_its_own(sc, seed):
    """Neither normalises across nodes: a node scores the same in any subset of the table."""
    rows = np.flatnonzero(np.random.default_rng(seed).random(len(sc.nodes)) < 0.5)
    a = components(sc)
    b = components(dataclasses.replace(sc, nodes=sc.nodes.take(rows)))
    for name in ("GPUFragmentation", "GPUPacking"):
        if name in a and a[name] is not None and b[name] is not None:
            assert b[name].tolist() == a[name][rows].tolist(), name


@PROPERTY
@given(
    counts=st.lists(
        st.tuples(st.sampled_from([0, 500, 4000]), st.integers(0, 2), st.integers(1, 50)), min_size=1
    ),
    lo=st.integers(1, 100),
    hi=st.integers(1, 100),
)
def test_typical_tasks_are_the_shortest_prefix_reaching_the_coverage(counts, lo, hi):
    kinds = {}
    for cpu, gpus, n in counts:
        t = TaskType(cpu, gpus, GPU_MILLI if gpus else 0, n)
        kinds.setdefault(t.spec, t)
    tasks = tuple(kinds.values())
    lo, hi = min(lo, hi), max(lo, hi)
    small, large = typical_tasks(tasks, lo), typical_tasks(tasks, hi)
    assert large[: len(small)] == small
    total = sum(t.weight for t in tasks)
    covered = sum(t.weight for t in small)
    assert 100 * covered >= lo * total
    assert 100 * (covered - small[-1].weight) < lo * total
    assert [t.weight for t in large] == sorted((t.weight for t in large), reverse=True)


# --------------------------------------------------------------------------------------------
# worked examples


def test_worked_example_two_nodes():
    """Two nodes with 32 cores free and two GPUs each: node1's both free (1000, 1000), node2's
    second half used (1000, 500). Typical tasks: A, 4 cores and one whole GPU, weight 3
    (p = 3/4); B, 2 cores and half a GPU, weight 1 (p = 1/4). The pod: 2 cores, half a GPU.

    Fragmentation before (F = Σ p_t·frag_t, thousandths): node1 fits A and B, no GPU is below
    either share: F = 0. Node2 fits A (GPU 1) and B; for A the 500 free on GPU 2 is a fragment:
    F = 3/4 · 500 = 375.

    GPUFragmentation: node1, the pod on either GPU (equal) leaves (500, 1000): A fits, 500 below
    its share, B fits, nothing below: F' = 375, ΔF = −375, int(100·σ(−0.375)) = int(40.73) = 40.
    Node2, on GPU 2 it leaves (1000, 0): A and B fit, nothing below: F' = 0, ΔF = +375,
    int(100·σ(0.375)) = int(59.27) = 59; on GPU 1 it leaves (500, 500): A fits nowhere, its
    fragment the whole 1000: F' = 750, 40. Best GPU: 59. FGD puts the half GPU beside the other
    half and keeps node1's whole GPUs whole.

    GPUBestFit: raw = int((1 − (0.5·30000/128000 + 0.5·left/8000))·100), left = 1500 on node1
    (78.9 → 78), 1000 on node2 (82.0 → 82); min–max: node1 0, node2 100.

    GPUPacking: node1 has all its GPUs free: max(33 − 2, 2) = 31. Node2: the least sufficient
    GPU is the half-used one, not fully free: 100 − int(500·100/1000)/10 = 95.
    """
    sc = two_node_example()
    comps = components(sc)
    assert comps["GPUFragmentation"].tolist() == [40, 59]
    assert comps["GPUBestFit"].tolist() == [0, 100]
    assert comps["GPUPacking"].tolist() == [31, 95]
    state = gpu_state(sc.nodes, gen.NVIDIA)
    assert state is not None
    assert fragmentation(sc.nodes, state, args_of(sc, "GPUFragmentation").typicalTasks).tolist() == [
        0.0,
        375.0,
    ]
    assert rg.gpu_fragmentation(sc.pod, sc.nodes, args_of(sc, "GPUFragmentation")) == [40, 59]


def test_worked_example_whole_gpus_from_the_resource():
    """Whole GPUs from ``nvidia.com/gpu``: node1 8 GPUs, none used; node2 8 GPUs, 6 used (2
    free). Typical tasks: one GPU (p = 1/2) and eight GPUs (p = 1/2), 1 core each. The pod: one
    GPU, 1 core.

    Before: node1 fits both, no GPU below 1000: F = 0. Node2 fits the one-GPU task (frag 0) but
    not the eight-GPU one (frag = its idle 2000): F = 1000.
    After: node1 has 7 free: the eight-GPU task no longer fits, frag 7000: F' = 3500, ΔF = −3500,
    int(100·σ(−3.5)) = int(2.93) = 2. Node2 has 1 free: F' = 1/2 · 1000 = 500, ΔF = +500,
    int(100·σ(0.5)) = int(62.25) = 62. FGD keeps the empty 8-GPU node for the 8-GPU jobs.
    GPUPacking: node1 all free, max(33 − 8, 8) = 25; node2 in use, a fully free GPU: 50 − 1 = 49.
    GPUBestFit: left after node1 (7000 GPU, 31 cores) raw int((1 − (0.5·31000/128000 +
    0.5·7000/8000))·100) = int(44.14) = 44, node2 (1000) int(81.64) = 81: 0 and 100.
    """
    res = ("cpu", "memory", "pods", "nvidia.com/gpu")
    nodes = NodeTable.build(
        names=("node1", "node2"),
        resources=res,
        allocatable=np.array([[32000.0, 2.0**36, 110, 8]] * 2),
        requested=np.array([[0.0, 0, 0, 0], [0, 0, 0, 6]]),
    )
    req = np.array([1000.0, 2.0**20, 1, 1])
    p = PodDemand(res, req, req.copy(), np.zeros(4))
    doc = {
        "filters": {"usageThresholds": {}},
        "strategies": [
            {
                "name": "GPUFragmentation",
                "args": {"typicalTasks": [{"cpu": "1", "gpus": 1}, {"cpu": "1", "gpus": 8}]},
            },
            {"name": "GPUPacking"},
            {"name": "GPUBestFit"},
        ],
    }
    ev = evaluate(pod=p, nodes=nodes, policy=parse_policy(doc))
    assert ev.components["GPUFragmentation"].tolist() == [2, 62]
    assert ev.components["GPUPacking"].tolist() == [25, 49]
    assert ev.components["GPUBestFit"].tolist() == [0, 100]
    # the weighted mean (2 + 25 + 0) / 3 = 9 and (62 + 49 + 100) / 3 = 70.33, to 0..10
    assert ev.scores.tolist() == [1, 7]


def test_fgd_for_a_cpu_pod_keeps_cpu_for_the_gpu_tasks():
    """A CPU-only pod of 8 cores on a GPU node with 10 cores left and one free GPU: the one-GPU
    task of 4 cores fits before (frag 0) and not after (2 cores left: frag = the idle 1000):
    ΔF = −1000, int(100·σ(−1)) = 26. On a node without GPUs nothing changes: 50."""
    nodes = NodeTable.build(
        names=("gpu", "cpu"),
        resources=R3,
        allocatable=np.array([[10000.0, 2.0**36, 110], [10000, 2.0**36, 110]]),
        gpu_free=[[1000], [0]],
        gpu_present=[[True], [False]],
    )
    req = np.array([8000.0, 0, 1])
    p = PodDemand(R3, req, req.copy(), np.zeros(3))
    args = GPUFragmentationArgs(typicalTasks=(TaskType(4000, 1, 1000),))
    got = gpu_fragmentation(p, nodes, args, feasible=np.ones(2, bool))
    assert got is not None and got.tolist() == [26, 50]


def test_fgd_share_pod_takes_the_best_gpu():
    """Shares free (300, 700, 1000); typical tasks half a GPU (p = 1/2) and a whole GPU (1/2),
    no CPU; the pod asks 300. Before: half fits, 300 below 500; whole fits, 300 + 700 below
    1000: F = 150 + 500 = 650. On the 300 GPU: (0, 700, 1000), F' = 0 + 350 = 350, ΔF = 300,
    int(100·σ(0.3)) = int(57.44) = 57. On 700: (300, 400, 1000), F' = 350 + 350 = 700,
    ΔF = −50, int(48.75) = 48. On 1000: (300, 700, 700), the whole GPU fits nowhere, its fragment
    the idle 1700: F' = 150 + 850 = 1000, ΔF = −350, int(41.34) = 41. Best: 57, the tightest GPU
    (as the simulator's best-fit GPU choice would also pick here)."""
    nodes = NodeTable.build(
        names=("n",),
        resources=R3,
        allocatable=np.array([[32000.0, 2.0**36, 110]]),
        gpu_free=[[300, 700, 1000]],
    )
    state = gpu_state(nodes, gen.NVIDIA)
    assert state is not None
    tasks = (TaskType(0, 1, 500), TaskType(0, 1, 1000))
    assert fgd_scores(state, tasks, np.array([32000], np.int64), 0, 1, 300).tolist() == [57]
    plain = [(0, 1, 500, 1), (0, 1, 1000, 1)]
    assert rg.frag(rg.Node(32000, [300, 700, 1000]), plain) == 650
    after = ([0, 700, 1000], [300, 400, 1000], [300, 700, 700])
    assert [rg.sigmoid_score(650 - rg.frag(rg.Node(32000, f), plain)) for f in after] == [57, 48, 41]


def test_observed_workload_and_coverage():
    """Seen: 6 pods of one GPU, 3 of half a GPU, 1 CPU-only. Coverage 60: the one-GPU kind alone
    (6/10); 90: the first two (9/10); 95 and 100: all three."""
    seen = (TaskType(4000, 1, 1000, 6), TaskType(2000, 1, 500, 3), TaskType(1000, 0, 0, 1))
    nodes = NodeTable.build(names=("n",), resources=R3, allocatable=np.ones((1, 3)), task_counts=seen)
    for coverage, n in ((60, 1), (61, 2), (90, 2), (95, 3), (100, 3)):
        assert workload(nodes, GPUFragmentationArgs(coverage=coverage)) == seen[:n]
    assert typical_tasks((), 95) == ()
    # ties: the larger CPU first (the simulator's reversed TargetPodList order)
    tie = (TaskType(1000, 1, 1000, 5), TaskType(2000, 1, 1000, 5))
    assert typical_tasks(tie, 50) == (tie[1],)


def test_explanation_says_why_a_gpu_strategy_takes_no_part():
    nodes = NodeTable.build(names=("n",), resources=R3, allocatable=np.array([[1000.0, 1e9, 110]]))
    req = np.array([100.0, 0, 1])
    p = PodDemand(R3, req, req.copy(), np.zeros(3))
    policy = parse_policy({"strategies": [{"name": "GPUFragmentation"}, {"name": "LeastAllocated"}]})
    ev = evaluate(pod=p, nodes=nodes, policy=policy)
    assert ev.components["GPUFragmentation"] is None
    (row,) = explain(ev, pod=p, nodes=nodes, policy=policy)
    note = row["strategies"][0]["note"]
    assert "no GPU state" in note and "nvidia.com/gpu" in note
    with_gpu = dataclasses.replace(
        nodes, gpu_free=np.array([[1000, 0]]), gpu_present=np.array([[True, True]])
    )
    ev = evaluate(pod=p, nodes=with_gpu, policy=policy)
    (row,) = explain(ev, pod=p, nodes=with_gpu, policy=policy)
    assert "no typical tasks" in row["strategies"][0]["note"]
    assert row["inputs"]["gpuState"] == {"gpus": 2, "fullyFree": 1, "freeMilli": [1000, 0]}


# --------------------------------------------------------------------------------------------
# the state and the policy


def test_gpu_state_validation():
    base = {"names": ("a",), "resources": R3, "allocatable": np.ones((1, 3))}
    NodeTable.build(**base, gpu_free=[[1000, 0]], gpu_present=[[True, False]])
    with pytest.raises(ValueError, match=r"0\.\.1000"):
        NodeTable.build(**base, gpu_free=[[1001]])
    with pytest.raises(ValueError, match="0 where gpu_present is False"):
        NodeTable.build(**base, gpu_free=[[500, 500]], gpu_present=[[True, False]])
    with pytest.raises(ValueError, match="both or neither"):
        dataclasses.replace(NodeTable.build(**base), gpu_free=np.zeros((1, 1), np.int64))
    with pytest.raises(ValueError, match="each kind"):
        NodeTable.build(**base, task_counts=(TaskType(1, 1, 1000, 2), TaskType(1, 1, 1000, 3)))
    with pytest.raises(ValueError, match="one GPU only"):
        GPURequest(2, 500)
    with pytest.raises(ValueError, match="must be 0"):
        TaskType(0, 0, 500)


def test_pod_gpus():
    res = ("cpu", "memory", "pods", "nvidia.com/gpu")
    req = np.array([0.0, 0, 1, 4])
    assert pod_gpus(PodDemand(res, req, req.copy(), np.zeros(4)), "nvidia.com/gpu") == (4, 1000)
    assert pod_gpus(
        PodDemand(res, req, req.copy(), np.zeros(4), gpu=GPURequest(1, 250)), "nvidia.com/gpu"
    ) == (1, 250)
    assert pod_gpus(PodDemand(res, req, req.copy(), np.zeros(4)), "amd.com/gpu") == (0, 0)


def test_policy_names_and_configures_the_gpu_strategies():
    p = parse_policy(
        {
            "strategies": [
                {"name": "GPUFragmentation", "weight": 3},
                {"name": "GPUBestFit", "args": {"resource": "amd.com/gpu"}},
                {
                    "name": "GPUPacking",
                    "weight": 0,
                },
            ]
        }
    )
    fgd, bf, pk = (s.args for s in p.strategies)
    assert fgd == GPUFragmentationArgs("nvidia.com/gpu", (), 95)
    assert bf == GPUArgs("amd.com/gpu") and pk == GPUArgs()
    tasks = (
        parse_policy(
            {
                "strategies": [
                    {
                        "name": "GPUFragmentation",
                        "args": {
                            "typicalTasks": [
                                {"cpu": "11300m", "gpus": 1, "weight": 874},
                                {"cpu": 3.152, "gpus": 1, "gpuMilli": 810, "weight": 1047},
                                {"cpu": "32", "gpus": 0},
                                {"cpu": "8", "gpus": 8},
                            ]
                        },
                    }
                ]
            }
        )
        .strategies[0]
        .args
    )
    assert tasks.typicalTasks == (
        TaskType(11300, 1, 1000, 874),
        TaskType(3152, 1, 810, 1047),
        TaskType(32000, 0, 0, 1),
        TaskType(8000, 8, 1000, 1),
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"resource": "gpu"}, "args.resource"),
        ({"resource": "nvidia.com/gpu/x"}, "args.resource"),
        ({"coverage": 0}, "args.coverage"),
        ({"coverage": 101}, "args.coverage"),
        ({"typicalTasks": []}, "args.typicalTasks"),
        ({"typicalTasks": {"cpu": 1}}, "args.typicalTasks"),
        ({"typicalTasks": [{"cpu": "1", "gpus": 1}], "coverage": 90}, "args.coverage"),
        ({"typicalTasks": [{"gpus": 1}]}, "args.typicalTasks[0].cpu"),
        ({"typicalTasks": [{"cpu": "1"}]}, "args.typicalTasks[0].gpus"),
        ({"typicalTasks": [{"cpu": "1", "gpus": 1, "gpuMilli": 0}]}, "args.typicalTasks[0].gpuMilli"),
        ({"typicalTasks": [{"cpu": "1", "gpus": 1, "gpuMilli": 1001}]}, "args.typicalTasks[0].gpuMilli"),
        ({"typicalTasks": [{"cpu": "1", "gpus": 0, "gpuMilli": 500}]}, "args.typicalTasks[0].gpuMilli"),
        ({"typicalTasks": [{"cpu": "1", "gpus": 2, "gpuMilli": 500}]}, "args.typicalTasks[0].gpuMilli"),
        ({"typicalTasks": [{"cpu": "1", "gpus": 65}]}, "args.typicalTasks[0].gpus"),
        ({"typicalTasks": [{"cpu": "0.0001", "gpus": 1}]}, "args.typicalTasks[0].cpu"),
        ({"typicalTasks": [{"cpu": "lots", "gpus": 1}]}, "args.typicalTasks[0].cpu"),
        ({"typicalTasks": [{"cpu": "1", "gpus": 1, "weight": 0}]}, "args.typicalTasks[0].weight"),
        ({"typicalTasks": [{"cpu": "1", "gpus": 1, "weight": 1.5}]}, "args.typicalTasks[0].weight"),
        ({"typicalTasks": [{"cpu": "1", "gpus": 1, "memory": 1}]}, "args.typicalTasks[0].memory"),
        ({"typicalTasks": [{"cpu": "1", "gpus": 1}, {"cpu": "1000m", "gpus": 1}]}, "args.typicalTasks[1]"),
        ({"typicalTask": []}, "args.typicalTask"),
    ],
)
def test_invalid_gpu_fragmentation_args_name_the_field(args, field):
    with pytest.raises(PolicyError) as e:
        parse_policy({"strategies": [{"name": "GPUFragmentation", "args": args}]})
    assert str(e.value).startswith(f"strategies[0].{field}"), str(e.value)


@pytest.mark.parametrize("name", ["GPUBestFit", "GPUPacking"])
def test_invalid_gpu_baseline_args_name_the_field(name):
    with pytest.raises(PolicyError, match=r"^strategies\[0\]\.args\.resource: must be the extended resource"):
        parse_policy({"strategies": [{"name": name, "args": {"resource": "cpu"}}]})
    with pytest.raises(PolicyError, match=r"^strategies\[0\]\.args\.coverage: unknown field"):
        parse_policy({"strategies": [{"name": name, "args": {"coverage": 95}}]})


def test_best_fit_and_packing_without_gpu_state_or_gpu_pod():
    nodes = NodeTable.build(names=("n",), resources=R3, allocatable=np.array([[1000.0, 1e9, 110]]))
    req = np.array([100.0, 0, 1])
    p = PodDemand(R3, req, req.copy(), np.zeros(3))
    ones = np.ones(1, bool)
    assert gpu_best_fit(p, nodes, GPUArgs(), feasible=ones) is None
    assert gpu_packing(p, nodes, GPUArgs(), feasible=ones) is None
    with_gpu = dataclasses.replace(nodes, gpu_free=np.array([[1000]]), gpu_present=np.array([[True]]))
    assert gpu_packing(p, with_gpu, GPUArgs(), feasible=ones) is None  # the pod asks no GPU
    assert gpu_best_fit(p, with_gpu, GPUArgs(), feasible=ones) is not None


@pytest.mark.parametrize("name", [n for n in ACCEPTED_NAMES if "/" in n])
@pytest.mark.parametrize("strategy", NAMES)
def test_the_gpu_resource_accepts_the_extended_resources_a_node_can_have(strategy, name):
    args = parse_policy({"strategies": [{"name": strategy, "args": {"resource": name}}]}).strategies[0].args
    assert isinstance(args, GPUArgs) and args.resource == name


@pytest.mark.parametrize(
    ("name", "says"), [*REFUSED_NAMES, ("cpu", "extended resource"), ("pods", "extended resource")]
)
@pytest.mark.parametrize("strategy", NAMES)
def test_the_gpu_resource_refuses_what_no_node_has_and_unprefixed_names(strategy, name, says):
    with pytest.raises(PolicyError) as err:
        parse_policy({"strategies": [{"name": strategy, "args": {"resource": name}}]})
    message = str(err.value)
    assert message.startswith("strategies[0].args.resource: "), message
    assert repr(name) in message and says in message, message


@PROPERTY
@given(sc=gen.gpu_scenarios(), seed=gen.SEEDS)
def test_facts_kept_with_a_table_do_not_leak_between_pods(sc, seed):
    """The per-table facts (GPU state, per-share counts, fragmentation and prefix sums of the
    nodes as they are) serve every pod scored on the table: a pod scores the same on a table
    already used for other pods as on a fresh copy."""
    rng = np.random.default_rng(seed)
    pods = [sc.pod]
    for _ in range(3):  # more pods of the same shape with other CPU and GPU asks
        req = sc.pod.requests.copy()
        req[0] = float(rng.choice(gen.CPU_STEPS))
        asks = [None, GPURequest(1, int(rng.choice(gen.SHARES))), GPURequest(int(rng.choice([1, 2, 8])))]
        gpu = asks[int(rng.integers(0, 3))]
        pods.append(dataclasses.replace(sc.pod, requests=req, nonzero_requests=req.copy(), gpu=gpu))
    for p in pods:
        used = evaluate(pod=p, nodes=sc.nodes, policy=sc.policy).components
        fresh = evaluate(pod=p, nodes=dataclasses.replace(sc.nodes), policy=sc.policy).components
        assert {k: as_list(v) for k, v in used.items()} == {k: as_list(v) for k, v in fresh.items()}
