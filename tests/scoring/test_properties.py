"""Invariants of ``scoring.evaluate`` over the full generated input domain (500 examples each).

Unlike test_matches_reference.py these need no reference: they hold whatever the strategies
compute, so they run on every generated input, known upstream divergences included.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scoring import MAX_EXTENDER_PRIORITY, describe, evaluate
from scoring.filters import INSUFFICIENT, NO_ALLOCATABLE, NO_FRESH_LOAD, OK, USAGE_THRESHOLD, reason_groups
from scoring.policy import BALANCED_FORMULAS, LOAD_KIND, strategy_kind
from scoring.strategies import balanced_allocation
from scoring.types import ARRAY_FIELDS, MAX_QUANTITY
from tests.scoring import generators as gen

PROPERTY = settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
CODES = {OK, INSUFFICIENT, NO_ALLOCATABLE, USAGE_THRESHOLD, NO_FRESH_LOAD}


def run(sc: gen.Scenario):
    return evaluate(pod=sc.pod, nodes=sc.nodes, policy=sc.policy)


def replace_rows(nodes, order: np.ndarray, **changes):
    """The table with its nodes in ``order`` (all arrays and names), then ``changes`` applied."""
    fields = {f: getattr(nodes, f)[order].copy() for f in ARRAY_FIELDS}
    fields["load_age_s"] = nodes.load_age_s[order].copy()
    fields.update(changes)
    return dataclasses.replace(nodes, names=tuple(nodes.names[i] for i in order), **fields)


def _overshoot_scenario() -> gen.Scenario:
    # LeastAllocated w1 + MostAllocated w2 on memory (alloc 100): combined = (100 + r) / 3. With
    # r = 0 and 32 the feasible range is 100/3 .. 132/3; stretching float64 means gave the top
    # node 100.00000000000001.
    doc = {
        "filters": {"usageThresholds": {}},
        "score": {"spread": True},
        "strategies": [
            {"name": "LeastAllocated", "weight": 1, "args": {"resources": [{"name": "memory", "weight": 1}]}},
            {"name": "MostAllocated", "weight": 2, "args": {"resources": [{"name": "memory", "weight": 1}]}},
        ],
    }
    nodes = gen.table(("cpu", "memory", "pods"), [[1000, 100, 110]] * 2, requested=[[0, 0, 0], [0, 32, 0]])
    return gen.scenario(nodes, gen.pod(("cpu", "memory", "pods"), [0, 0, 1]), doc)


@PROPERTY
@given(sc=gen.scenarios())
@example(sc=_overshoot_scenario())
def test_scores_are_int64_levels_and_nothing_is_nan(sc):
    ev = run(sc)
    n = len(sc.nodes)
    assert ev.scores.dtype == np.int64 and ev.scores.shape == (n,)
    assert ((ev.scores >= 0) & (ev.scores <= MAX_EXTENDER_PRIORITY)).all()
    # combined is num / den: finite and within [0, 100] exactly, spread or not
    assert ev.combined.dtype == np.float64 and ev.combined.shape == (n,)
    assert ((ev.combined >= 0) & (ev.combined <= 100)).all(), ev.combined
    # the level is floor(combined / 10 + 1/2) of the exact value: within one rounding of the float's
    assert (np.abs(ev.scores - np.floor(ev.combined / 10 + 0.5)) <= 1).all()
    assert set(ev.components) == {s.name for s in sc.policy.strategies}
    for name, component in ev.components.items():
        if component is None:  # a strategy that does not apply to a pod without requests
            assert name in ("BalancedAllocation", "LowRiskOverCommitment"), name
            continue
        assert component.dtype == np.int64 and component.shape == (n,), name
        assert ((component >= 0) & (component <= 100)).all(), name
    for mask in (ev.load_ok, ev.fallback, ev.verdict.feasible):
        assert mask.dtype == np.bool_ and mask.shape == (n,)
    assert not (ev.fallback & ev.load_ok).any()
    if ev.implicit is not None:
        assert ev.implicit.dtype == np.int64 and ev.implicit.shape == (n,)
        assert ((ev.implicit >= 0) & (ev.implicit <= 100)).all()
        assert ev.fallback.any()
    assert ev.estimate.shape == (len(sc.pod.resources),)
    assert np.isfinite(ev.estimate).all() and (ev.estimate >= 0).all()
    assert not np.isnan(ev.verdict.value).any()  # +inf: the age of a node never measured


def assert_same(a, b) -> None:
    if a is None or b is None:
        assert a is None and b is None
    else:
        np.testing.assert_array_equal(a, b)


@PROPERTY
@given(sc=gen.scenarios(min_nodes=2), seed=gen.SEEDS)
def test_permuting_the_nodes_permutes_every_per_node_output(sc, seed):
    order = np.random.default_rng(seed).permutation(len(sc.nodes))
    a = run(sc)
    b = run(dataclasses.replace(sc, nodes=replace_rows(sc.nodes, order)))
    assert b.scores.tolist() == a.scores[order].tolist()
    assert b.combined.tolist() == a.combined[order].tolist()
    assert b.verdict.code.tolist() == a.verdict.code[order].tolist()
    assert b.verdict.resource.tolist() == a.verdict.resource[order].tolist()
    assert b.verdict.unresolvable.tolist() == a.verdict.unresolvable[order].tolist()
    np.testing.assert_array_equal(b.verdict.value, a.verdict.value[order])
    assert b.load_ok.tolist() == a.load_ok[order].tolist()
    assert b.fallback.tolist() == a.fallback[order].tolist()
    assert_same(b.implicit, None if a.implicit is None else a.implicit[order])
    assert b.estimate.tolist() == a.estimate.tolist()
    assert set(a.components) == set(b.components)
    for name, component in a.components.items():
        assert_same(b.components[name], None if component is None else component[order])


@PROPERTY
@given(
    sc=gen.scenarios(spread=False, only=("LoadAware", "LoadVariationRiskBalancing")),
    seed=gen.SEEDS,
    what=st.sampled_from(["usage", "pending", "both"]),
)
def test_more_load_never_raises_a_score_under_load_strategies(sc, seed, what):
    """More measured usage or pending usage on one node (all else fixed, spread off, a policy
    of load strategies): its load score, combined score and level do not rise, and every
    other node keeps all of its outputs."""
    check_more_load(sc, seed, what)


@PROPERTY
@given(
    sc=gen.scenarios(spread=False, spreading=True),
    seed=gen.SEEDS,
    what=st.sampled_from(["usage", "pending", "both"]),
)
def test_more_load_never_raises_a_score_under_any_policy(sc, seed, what):
    """The same under any policy of spreading strategies (every strategy but TargetLoadPacking,
    which packs by design, and LowRiskOverCommitment, not monotone upstream): requests-based
    strategies do not read usage, so the combination cannot rise either."""
    check_more_load(sc, seed, what)


def check_more_load(sc, seed: int, what: str) -> None:
    rng = np.random.default_rng(seed)
    n, r = len(sc.nodes), len(sc.nodes.resources)
    j = int(rng.integers(0, n))

    def more(x: np.ndarray) -> np.ndarray:
        delta = np.zeros((n, r))
        delta[j] = np.where(rng.uniform(size=r) < 0.6, gen.rand_quantities(rng, MAX_QUANTITY, r), 0)
        return np.minimum(x + delta, float(MAX_QUANTITY))  # NaN (unknown) stays NaN

    changes = {}
    if what in ("usage", "both"):
        changes["usage"] = more(sc.nodes.usage)
    if what in ("pending", "both"):
        changes["pending"] = more(sc.nodes.pending)
    busier = replace_rows(sc.nodes, np.arange(n), **changes)
    a, b = run(sc), run(dataclasses.replace(sc, nodes=busier))
    assert b.load_ok.tolist() == a.load_ok.tolist()
    assert b.fallback.tolist() == a.fallback.tolist()
    for name, component in a.components.items():
        if strategy_kind(name) == LOAD_KIND:
            assert b.components[name][j] <= component[j], name
    assert b.combined[j] <= a.combined[j]
    assert b.scores[j] <= a.scores[j]
    if a.verdict.code[j] != OK:
        assert b.verdict.code[j] != OK  # a failing node does not start passing
    others = np.arange(n) != j
    assert b.scores[others].tolist() == a.scores[others].tolist()
    assert b.combined[others].tolist() == a.combined[others].tolist()
    assert b.verdict.code[others].tolist() == a.verdict.code[others].tolist()


NON_TRIMARAN_LISTS = st.sampled_from([p for p in gen.ALL_LISTS if not set(p) & set(gen.TRIMARAN_NAMES)])


@st.composite
def non_trimaran_scenarios(draw):
    return draw(gen.scenarios(only=draw(NON_TRIMARAN_LISTS)))


@PROPERTY
@given(sc=non_trimaran_scenarios(), seed=gen.SEEDS)
def test_trimaran_only_inputs_do_not_change_other_strategies(sc, seed):
    """``limits``, ``usage_avg``, ``usage_std``, ``usage_p95`` of the table and the pod's
    per-container values and overhead feed only the Trimaran strategies: redrawing them changes
    nothing under the other strategies."""
    rng = np.random.default_rng(seed)
    n, r = len(sc.nodes), len(sc.nodes.resources)
    other = gen.rand_table(rng, sc.nodes.resources, n, kind_mix=(1, 1, 1, 1, 1), metric_mix=(1, 1, 1))
    nodes = replace_rows(
        sc.nodes,
        np.arange(n),
        **{f: getattr(other, f).copy() for f in ("limits", "usage_avg", "usage_std", "usage_p95")},
    )
    c = int(rng.integers(1, 4))
    p = dataclasses.replace(
        sc.pod,
        container_requests=np.floor(rng.random((c, r)) * 1000),
        container_limits=np.floor(rng.random((c, r)) * 2000),
        overhead=np.floor(rng.random(r) * 100),
    )
    a, b = run(sc), run(dataclasses.replace(sc, nodes=nodes, pod=p))
    assert b.scores.tolist() == a.scores.tolist() and b.combined.tolist() == a.combined.tolist()
    assert b.verdict.code.tolist() == a.verdict.code.tolist()
    assert b.load_ok.tolist() == a.load_ok.tolist() and b.fallback.tolist() == a.fallback.tolist()
    for name, component in a.components.items():
        assert_same(b.components[name], component)


# BalancedAllocation: what the formula of each kube-scheduler release guarantees, and how the two
# relate (no reference needed: test_matches_reference.py compares each with its own)

BALANCED_CASES = gen.requests_cases("BalancedAllocation", max_value=MAX_QUANTITY // 2)


@PROPERTY
@given(case=BALANCED_CASES, formula=st.sampled_from(BALANCED_FORMULAS))
def test_balanced_allocation_scores_lie_in_50_100_under_both_formulas(case, formula):
    """The std of fractions in [0, 1] is at most 1/2, so a balance is 50..100; v1.36 maps the
    change of two balances, -50..50, back onto 50..100."""
    nodes, p, args = case
    scores = balanced_allocation(p, nodes, dataclasses.replace(args, formula=formula))
    if scores is not None:
        assert scores.dtype == np.int64 and ((scores >= 50) & (scores <= 100)).all(), scores


@PROPERTY
@given(case=BALANCED_CASES)
def test_balanced_allocation_v136_is_75_plus_half_the_change_v135_sees(case):
    """Put the pod's requests on every node first (T -> T'): v1.35 on T scores T' without the
    pod, v1.35 on T' scores T' with it, and v1.36 on T' is 75 + floor(half their difference)
    (kubernetes/kubernetes#135573: 50 + (50 + with - without) / 2 in int64). The pod's own
    requests are the same in every call, so a best-effort pod is skipped by all three."""
    nodes, p, args = case
    placed = replace_rows(nodes, np.arange(len(nodes)), requested=nodes.requested + p.requests[None, :])
    v135 = dataclasses.replace(args, formula="v1.35")
    without, with_pod = balanced_allocation(p, nodes, v135), balanced_allocation(p, placed, v135)
    v136 = balanced_allocation(p, placed, dataclasses.replace(args, formula="v1.36"))
    if v136 is None:
        assert without is None and with_pod is None
        return
    assert v136.tolist() == (75 + (with_pod - without) // 2).tolist()


@PROPERTY
@given(sc=gen.scenarios(), seed=gen.SEEDS, which=st.sampled_from(["cpu", "memory", "both"]))
def test_a_node_without_allocatable_cpu_or_memory_fails_and_scores_zero(sc, seed, which):
    rng = np.random.default_rng(seed)
    n = len(sc.nodes)
    zero = rng.uniform(size=n) < 0.5
    alloc = sc.nodes.allocatable.copy()
    for name in ["cpu", "memory"] if which == "both" else [which]:
        alloc[zero, sc.nodes.resources.index(name)] = 0.0
    ev = run(dataclasses.replace(sc, nodes=replace_rows(sc.nodes, np.arange(n), allocatable=alloc)))
    cpu, mem = (alloc[:, sc.nodes.resources.index(x)] for x in ("cpu", "memory"))
    none = (cpu <= 0) | (mem <= 0)
    assert none[zero].all()
    assert (ev.verdict.code[none] == NO_ALLOCATABLE).all()
    assert (~ev.verdict.feasible[none]).all() and ev.verdict.unresolvable[none].all()
    assert (ev.scores[none] == 0).all() and (ev.combined[none] == 0).all()


@PROPERTY
@given(sc=gen.scenarios())
def test_verdict_codes_partition_the_nodes_and_infeasible_nodes_score_zero(sc):
    ev = run(sc)
    v, n = ev.verdict, len(sc.nodes)
    assert v.code.dtype == np.int8 and v.code.shape == (n,)
    assert set(v.code.tolist()) <= CODES
    groups = {c: set(np.flatnonzero(v.code == c).tolist()) for c in CODES}
    assert sum(len(g) for g in groups.values()) == n  # disjoint and covering
    assert set(np.flatnonzero(v.feasible).tolist()) == groups[OK]
    assert v.counts() == {c: len(g) for c, g in groups.items() if g}
    assert set(np.flatnonzero(ev.scores > 0).tolist()) <= groups[OK]
    assert (ev.combined[~v.feasible] == 0).all() and (ev.scores[~v.feasible] == 0).all()
    assert ((v.resource >= -1 - len(sc.pod.resources)) & (v.resource < len(sc.nodes.resources))).all()
    assert (v.resource[v.code == OK] == -1).all() and not v.unresolvable[v.code == OK].any()
    if not sc.policy.filters.resourceFit:
        assert not groups[INSUFFICIENT]
    if sc.policy.load.fallback != "reject":
        assert not groups[NO_FRESH_LOAD]
    else:
        assert (
            groups[NO_FRESH_LOAD]
            == set(np.flatnonzero(~ev.load_ok).tolist()) - groups[NO_ALLOCATABLE] - groups[INSUFFICIENT]
        )
    assert not ev.load_ok[list(groups[NO_FRESH_LOAD])].any()
    assert ev.load_ok[list(groups[USAGE_THRESHOLD])].all()
    for i in range(n):
        sentence = describe(v, i, sc.nodes, sc.pod, sc.policy)
        assert (sentence == "") == (v.code[i] == OK), (i, sentence)


@PROPERTY
@given(sc=gen.scenarios())
def test_reason_groups_cover_each_failing_node_once_with_its_own_reason(sc):
    """The filter answers one sentence per group of nodes: every failing node is in exactly one
    group; nodes fail for the same reason in a group (same code and resource, and for the usage
    threshold the same limit, which the sentence names); the sentences carry no per-node figure,
    so there are never more groups than distinct (code, resource, limit)."""
    ev = run(sc)
    v = ev.verdict
    groups = reason_groups(v, sc.nodes, sc.pod, sc.policy)
    rows = np.concatenate([r for _, r in groups]) if groups else np.zeros(0, np.int64)
    assert sorted(rows.tolist()) == np.flatnonzero(~v.feasible).tolist()
    assert len({s for s, _ in groups}) == len(groups)
    for sentence, r in groups:
        assert sentence and len(set(v.code[r].tolist())) == 1 and len(set(v.resource[r].tolist())) == 1
        code = int(v.code[r[0]])
        if code in (INSUFFICIENT, NO_ALLOCATABLE):
            assert sentence == describe(v, int(r[0]), sc.nodes, sc.pod, sc.policy)
        if code == USAGE_THRESHOLD:
            col = int(v.resource[r[0]])
            for i in r.tolist():
                own = sc.nodes.threshold_override[i, col]
                limit = sc.policy.filters.usageThresholds[sc.nodes.resources[col]] if np.isnan(own) else own
                assert f"threshold {limit:g}%" in sentence


@PROPERTY
@given(sc=gen.scenarios(spread=True))
@example(sc=_overshoot_scenario())
def test_spread_maps_the_feasible_range_onto_0_100(sc):
    """With spread, the feasible nodes' lowest combined score is 0 and the highest 100 exactly
    (when at least two differ), and the order of the feasible nodes is kept."""
    ev = run(sc)
    unspread = run(
        dataclasses.replace(
            sc,
            policy=dataclasses.replace(sc.policy, score=dataclasses.replace(sc.policy.score, spread=False)),
        )
    )
    feasible = ev.verdict.feasible
    before, after = unspread.combined[feasible], ev.combined[feasible]
    if len(before) >= 2 and before.max() > before.min():
        assert after.min() == 0.0 and after.max() == 100.0
        order = np.argsort(before, kind="stable")
        assert (np.diff(after[order]) >= 0).all()
    else:
        assert after.tolist() == before.tolist()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(sc=gen.scenarios(), seed=gen.SEEDS)
def test_explaining_taken_rows_equals_explaining_those_rows_of_the_whole(sc, seed):
    """The decision log keeps ``Evaluation.take`` / ``NodeTable.take`` of its best rows and
    explains them later: that must read exactly as explaining those rows of the whole."""
    from scoring.explain import explain

    ev = run(sc)
    n = len(sc.nodes)
    rows = np.random.default_rng(seed).permutation(n)[: max(1, n // 2)]
    whole = explain(ev, pod=sc.pod, nodes=sc.nodes, policy=sc.policy, rows=rows.tolist())
    part = explain(
        ev.take(rows), pod=sc.pod, nodes=sc.nodes.take(rows), policy=sc.policy, rows=range(len(rows))
    )
    assert part == whole
