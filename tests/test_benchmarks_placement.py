"""The placement benchmark: its scheduler emulation, trace replay and load model, and a smoke
run of ``python -m benchmarks placement --quick`` (report produced and consistent; no timings)."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import harness, latency, loadmodel, placement, placement_report, simulate, trace
from benchmarks.__main__ import main

# --- the cluster: GPUs, compensation, accounting ----------------------------------------------


def _tiny(gpus: list[int], pod_gpus: list[tuple[int, int]]) -> simulate.Cluster:
    n, p = len(gpus), len(pod_gpus)
    nodes = trace.Nodes(
        names=tuple(f"n{i}" for i in range(n)),
        cpu=np.full(n, 8000.0),
        memory=np.full(n, 32.0 * 2**30),
        gpus=np.array(gpus),
    )
    pods = trace.Pods(
        names=tuple(f"p{i}" for i in range(p)),
        cpu=np.full(p, 1000.0),
        memory=np.full(p, 2.0**30),
        gpus=np.array([g for g, _ in pod_gpus]),
        gpu_milli=np.array([m for _, m in pod_gpus]),
        qos=np.zeros(p, np.int64),
        arrival=np.zeros(p),
        departure=np.full(p, np.inf),
        phase=("Running",) * p,
    )
    usage = loadmodel.Usage(cpu_fraction=np.full((4, p), 0.5, np.float32), memory_fraction=np.full(p, 0.5))
    return simulate.Cluster(nodes, pods, usage, simulate.SimParams())


def test_gpu_shares_are_packed_best_fit_and_returned() -> None:
    cl = _tiny([2, 1], [(1, 600), (1, 300), (1, 500), (2, 1000)])
    est = np.array([850.0, 1.0, 0.0])
    cl.bind(0, 0, 0.0, est)  # GPU 0 of node 0: 400 left
    cl.bind(1, 0, 0.0, est)  # best fit: the 400 left on GPU 0, not the whole GPU 1
    assert cl.gpu_free[0, :2].tolist() == [100, 1000]
    assert not cl.gpu_fit(3)[0]  # two whole GPUs no longer free on node 0
    assert cl.gpu_fit(2).tolist() == [True, True]
    cl.release(0)
    assert cl.gpu_free[0, :2].tolist() == [700, 1000]
    assert cl.gpu_fit(3).tolist() == [False, False]
    cl.release(1)
    assert cl.gpu_fit(3).tolist() == [True, False]
    assert cl.requested.sum() == 0.0 and cl.pending.sum() == 0.0


def test_compensation_lasts_until_a_report_covers_the_bind() -> None:
    cl = _tiny([0], [(0, 0)])
    cl.bind(0, 0, 30.0, np.array([850.0, 100.0, 0.0]))
    assert cl.pending[0, 0] == 850.0
    cl.publish(60.0)  # the report of [0, 60] does not cover a bind at 30 fully
    assert cl.pending[0, 0] == 850.0
    cl.measure(0)
    cl.publish(90.0)  # 30 + 60 <= 90: covered
    assert cl.pending[0, 0] == 0.0
    assert cl.reported[0, 0] == pytest.approx(500.0)  # one tick of 0.5 x 1000m


# --- trace and load model ----------------------------------------------------------------------


def test_trace_replay_compresses_arrivals_and_keeps_lifetimes() -> None:
    pods = trace.load_pods(trace.Replay(compression=1000.0))
    nodes = trace.load_nodes(trace.Replay())
    assert len(pods) == 8152 and len(nodes.names) == 1523
    assert np.all(np.diff(pods.arrival) >= 0)
    finite = np.isfinite(pods.departure)
    assert finite.sum() < len(pods)  # pods still running at the trace's end run to the end
    assert np.all(pods.departure[finite] >= pods.arrival[finite])
    assert pods.arrival.max() == pytest.approx(12901761 / 1000.0)


def test_usage_depends_on_seed_and_pod_only() -> None:
    pods = trace.load_pods(trace.Replay(keep_every=16))
    model = loadmodel.LoadModel()
    a = loadmodel.generate(model, pods, ticks=20, tick_s=15.0, seed=3)
    b = loadmodel.generate(model, pods, ticks=20, tick_s=15.0, seed=3)
    c = loadmodel.generate(model, pods, ticks=20, tick_s=15.0, seed=4)
    assert np.array_equal(a.cpu_fraction, b.cpu_fraction)
    assert not np.array_equal(a.cpu_fraction, c.cpu_fraction)
    caps = np.array([q.cap for q in model.by_class()])[pods.qos]
    assert np.all(a.cpu_fraction <= caps[None, :] + 1e-6)
    assert np.all(a.cpu_fraction >= model.floor - 1e-6)
    # Guaranteed pods, the only ones with a limit (= request), stay within it
    guaranteed = pods.qos == trace.QOS_CLASSES.index("Guaranteed")
    assert guaranteed.any() and np.all(a.cpu_fraction[:, guaranteed] <= 1.0)


# --- the report -----------------------------------------------------------------------------------


def test_consistency_check_catches_missing_runs_and_bad_counts() -> None:
    good = {
        "contender": "a",
        "compression": 10.0,
        "seed": 0,
        "pods": 5,
        "placed_first_try": 3,
        "placed_after_wait": 1,
        "unschedulable": 1,
    }
    assert placement.check_consistent([good], ["a"], [10.0], 1) == []
    bad = dict(good, unschedulable=0)
    assert "4 != 5" in placement.check_consistent([bad], ["a"], [10.0], 1)[0]
    assert placement.check_consistent([good], ["a", "b"], [10.0], 1) == ["b at x10: 0 runs, expected 1"]


def test_extender_weight_comes_from_the_shipped_scheduler_config() -> None:
    assert placement.extender_weight() >= 1
    ours = next(c for c in placement.contenders() if c.name == placement.OURS)
    assert ours.mode == "extender" and ours.extender_weight == placement.extender_weight()


def test_quick_placement_writes_a_consistent_report(tmp_path: Path) -> None:
    assert main(["placement", "--quick", "--out", str(tmp_path)]) == 0
    (folder,) = tmp_path.glob("placement-*")
    doc = json.loads((folder / "results.json").read_text())
    names = {c.name for c in placement.contenders()}
    assert doc["problems"] == []
    assert {r["contender"] for r in doc["runs"]} == names
    for r in doc["runs"]:
        assert r["placed_first_try"] + r["placed_after_wait"] + r["unschedulable"] == r["pods"] > 0
        assert len(r["series"]["t_s"]) > 10
    report = (folder / "report.md").read_text()
    for name in names:
        assert f"| {name} |" in report
    # the command recorded is the one that ran (main's arguments, not pytest's command line), with
    # the interpreter that ran it
    interpreter, *rest = shlex.split(doc["command"])
    assert rest == ["-m", "benchmarks", "placement", "--quick", "--out", str(tmp_path)]
    assert Path(shutil.which(interpreter) or interpreter).resolve() == Path(sys.executable).resolve()
    assert f"Command: `{doc['command']}`" in report
    for png in ("hotspots.png", "timeline-x10000.png"):
        assert (folder / png).stat().st_size > 1000


def test_extra_policies_run_as_the_extender_and_names_are_checked(tmp_path: Path) -> None:
    import argparse

    extra = (("mine", "config/extender-policy.yaml"),)
    added = placement.contenders(extra)[-1]
    assert added.name == "mine" and added.mode == "extender" and added.in_tree is not None
    assert placement._named_policy("mine=config/extender-policy.yaml") == extra[0]
    for bad in (
        "no-equals-sign",
        "kube-scheduler=config/extender-policy.yaml",
        f"x={tmp_path / 'missing.yaml'}",
    ):
        with pytest.raises(argparse.ArgumentTypeError):
            placement._named_policy(bad)


def test_every_shipped_benchmark_policy_is_valid() -> None:
    from extender.policy_file import load_policy

    files = sorted((Path(__file__).resolve().parent.parent / "benchmarks" / "policies").glob("*.yaml"))
    assert len(files) >= 4
    for f in files:
        assert load_policy(f).strategies, f


def test_each_benchmark_of_all_records_its_own_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m benchmarks all`` runs latency and then placement: each report records the
    command that reruns it alone, with the arguments ``all`` gave it."""
    recorded: list[list[str]] = []

    def fake(args: argparse.Namespace) -> int:
        recorded.append(shlex.split(harness._command(args))[1:])
        return 0

    monkeypatch.setattr(latency, "run_latency", fake)
    monkeypatch.setattr(placement, "run", fake)
    assert main(["all", "--quick", "--out", "somewhere"]) == 0
    assert recorded == [
        ["-m", "benchmarks", name, "--out", "somewhere", "--quick"] for name in ("latency", "placement")
    ]
    # without parsed arguments (a benchmark run some other way): the process's own command line
    assert shlex.split(harness._command())[1:] == sys.orig_argv[1:]


def _fake_placement_doc() -> dict[str, object]:
    """Two contenders at one level, a few ticks: hotspot counts 0..2 (where a default locator
    puts ticks at 0.25), nodes in use 3..7."""
    t = [0.0, 600.0, 1200.0, 1800.0, 2400.0]
    runs = [
        {
            "contender": name,
            "compression": 10000.0,
            "series": {
                "t_s": t,
                "hotspot_nodes": [0, 1, 2, 1, 0][:: 1 if name == "a" else -1],
                "util_p95": [0.1, 0.5, 0.8, 0.6, 0.3],
                "nodes_in_use": [3, 5, 7, 6, 4],
            },
        }
        for name in ("a", "b")
    ]
    minutes = {"a": {"mean": 2.5, "min": 2.0, "max": 3.0}, "b": {"mean": 1.5, "min": 1.0, "max": 2.0}}
    return {
        "runs": runs,
        "aggregates": {"10000": {name: {"hotspot_node_minutes": m} for name, m in minutes.items()}},
    }


def test_placement_plots_have_integer_count_axes_and_the_legend_off_the_data(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    doc = _fake_placement_doc()
    for fig in (placement_report.timeline_figure(doc, "10000"), placement_report.hotspots_figure(doc)):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_ylabel()
            assert ax.get_legend() is None
            if ax.get_ylabel() in placement_report.COUNT_AXES:
                locator = ax.yaxis.get_major_locator()
                assert isinstance(locator, MaxNLocator) and locator._integer, ax.get_ylabel()
                ticks = [y for y in ax.get_yticks() if ax.get_ylim()[0] <= y <= ax.get_ylim()[1]]
                assert len(ticks) >= 2 and all(float(y).is_integer() for y in ticks), (ax.get_ylabel(), ticks)
        plt.close(fig)
    counted = [ax.get_ylabel() for ax in placement_report.timeline_figure(doc, "10000").axes]
    plt.close("all")
    assert [label for label in counted if label in placement_report.COUNT_AXES] == list(
        placement_report.COUNT_AXES
    )
    links = placement_report.plots(doc, tmp_path)
    assert "timeline-x10000.png" in links and (tmp_path / "hotspots.png").stat().st_size > 1000


# --- fidelity: what each contender is told --------------------------------------------------------


def _contender(name: str) -> simulate.Contender:
    return next(c for c in placement.contenders() if c.name == name)


def test_trimaran_predicts_recent_binds_as_target_load_packing_does() -> None:
    """Trimaran counts a recently bound pod with TargetLoadPacking's PredictUtilisation (the
    limit, else 1.5 x the request), not with Koordinator's estimator (85 % of the request)."""
    cl = _tiny([0], [(0, 0)])  # one LS pod requesting 1000m, on one node
    assert simulate.Scheduler(_contender("trimaran-tlp"), cl, 0).schedule(0, 0.0)
    assert cl.pending[0, 0] == 1500.0


def test_pods_carry_what_the_trace_gives_limits_only_when_guaranteed() -> None:
    """The trace has requests only: the pods have no limits but Guaranteed ones (= requests).
    Trimaran predicts a recently bound pod without a limit at 1.5 x its request, a Guaranteed
    one at its limit; Koordinator estimates 85 % of max(request, limit)."""
    cl = _tiny([0] * 4, [(0, 0)] * 4)
    cl.pods.qos[:] = np.arange(4)  # LS, BE, Burstable, Guaranteed
    cl = simulate.Cluster(cl.nodes, cl.pods, cl.usage, cl.params)
    assert cl.pod_lim[:, 0].tolist() == [0.0, 0.0, 0.0, 1000.0]
    assert cl.pod_lim[:, 1].tolist() == [0.0, 0.0, 0.0, 2.0**30]
    guaranteed = simulate._demand(cl.pods, cl, 3)
    assert guaranteed.qos == "Guaranteed" and guaranteed.limits[:2].tolist() == [1000.0, 2.0**30]
    assert simulate._demand(cl.pods, cl, 1).qos == "Burstable"
    tlp = simulate.Scheduler(_contender("trimaran-tlp"), cl, 0)
    for pod in range(4):
        assert tlp.schedule(pod, 0.0)
    assert [cl.comp[pod][1][0] for pod in range(4)] == [1500.0, 1500.0, 1500.0, 1000.0]
    # the table's limits: per node, the sum of max(limits, requests) (Trimaran SetMaxLimits)
    assert cl.table(0.0).limits[:, :2].sum(axis=0).tolist() == [4000.0, 4 * 2.0**30]
    cl = _tiny([0], [(0, 0)])
    assert simulate.Scheduler(_contender("koordinator"), cl, 0).schedule(0, 0.0)
    assert cl.pending[0, 0] == 850.0


def test_koordinator_sees_koordlets_300_s_average_the_others_the_last_interval() -> None:
    """koordlet's NodeMetric holds the node's usage averaged over the last 300 s, reported every
    60 s; metrics-server's window is the last interval."""
    assert _contender("koordinator").load_window_s == 300.0
    assert {c.load_window_s for c in placement.contenders() if c.name != "koordinator"} == {60.0}
    for window, expected in ((300.0, 145.0), (60.0, 225.0), (None, 225.0)):
        cl = _tiny([0], [(0, 0)])
        ramp = (np.arange(30, dtype=np.float32)[:, None] + 1) / 100  # tick k: (k + 1) % of 1000m
        usage = loadmodel.Usage(ramp, cl.usage.memory_fraction)
        cl = simulate.Cluster(cl.nodes, cl.pods, usage, cl.params, load_window_s=window)
        cl.bind(0, 0, 0.0, np.zeros(3))
        for k in range(24):
            cl.measure(k)
        cl.publish(360.0)  # 300 s: ticks 4..23, 10 x mean(5..24); 60 s: ticks 20..23
        assert cl.reported[0, 0] == pytest.approx(expected)
    cl = _tiny([0], [(0, 0)])
    cl.bind(0, 0, 0.0, np.zeros(3))
    cl.measure(0)
    cl.publish(60.0)  # fewer ticks than the window at the start: the mean of those measured
    assert cl.reported[0, 0] == pytest.approx(500.0)


# --- inputs: any pod and node list in the trace's format -------------------------------------------

POD_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time"
)


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _nodes_csv(tmp_path: Path, header: str = "sn,cpu_milli,memory_mib,gpu,model") -> Path:
    # n0: the larger T4 node, first in the list; n1: a smaller V100M32 node; n2: no GPU
    rows = ["n0,64000,262144,2,T4", "n1,32000,262144,2,V100M32", "n2,32000,131072,0,"]
    if "model" not in header:
        rows = [r.rsplit(",", 1)[0] for r in rows]
    return _write(tmp_path / "nodes.csv", header, rows)


def test_placement_replays_any_pod_and_node_list_of_the_trace_format(tmp_path: Path) -> None:
    pods = _write(
        tmp_path / "pods.csv",
        POD_HEADER,
        [
            f"p{i},{1000 + 500 * i},2048,{i % 2},{500 * (i % 2)},,{q},Running,{60 * i},{60 * i + 900},"
            for i, q in enumerate(["LS", "BE", "Burstable", "Guaranteed"] * 3)
        ],
    )
    out = tmp_path / "out"
    argv = ["placement", "--pods", str(pods), "--nodes", str(_nodes_csv(tmp_path)), "--compression", "1"]
    assert main([*argv, "--seeds", "1", "--jobs", "1", "--no-plots", "--out", str(out)]) == 0
    (folder,) = out.glob("placement-*")
    doc = json.loads((folder / "results.json").read_text())
    assert doc["problems"] == [] and {r["pods"] for r in doc["runs"]} == {12}
    assert {r["nodes"] for r in doc["runs"]} == {3}
    assert doc["replay"]["pods"] == str(pods)


def test_gpu_spec_limits_a_gpu_pod_to_the_models_it_names(tmp_path: Path) -> None:
    nodes = trace.load_nodes(trace.Replay(), _nodes_csv(tmp_path))
    assert nodes.model == ("T4", "V100M32", "")
    kube = _contender(placement.BASELINE)
    placed = {}
    for spec in ("", "V100M16|V100M32", "A10|"):
        f = _write(tmp_path / "p.csv", POD_HEADER, [f"p0,8000,16384,1,1000,{spec},LS,Running,0,600,0"])
        pods = trace.load_pods(trace.Replay(compression=1.0), f)
        usage = loadmodel.generate(loadmodel.LoadModel(), pods, ticks=4, tick_s=15.0, seed=0)
        cl = simulate.Cluster(nodes, pods, usage, simulate.SimParams())
        ok = simulate.Scheduler(kube, cl, 0).schedule(0, 0.0)
        placed[spec] = int(cl.pod_node[0]) if ok else None
    # no constraint: the emptier (larger) T4 node wins; V100M32 allowed: only n1; A10: none
    assert placed == {"": 0, "V100M16|V100M32": 1, "A10|": None}


def test_gpu_spec_is_ignored_for_cpu_only_pods(tmp_path: Path) -> None:
    f = _write(tmp_path / "p.csv", POD_HEADER, ["p0,1000,1024,0,0,A10,LS,Running,0,600,0"])
    pods = trace.load_pods(trace.Replay(), f)
    assert pods.gpu_spec == ("A10",)
    nodes = trace.load_nodes(trace.Replay(), _nodes_csv(tmp_path))
    usage = loadmodel.generate(loadmodel.LoadModel(), pods, ticks=4, tick_s=15.0, seed=0)
    cl = simulate.Cluster(nodes, pods, usage, simulate.SimParams())
    assert cl.gpu_fit(0).all()


def test_lists_that_cannot_be_replayed_are_refused_naming_the_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nodes = _nodes_csv(tmp_path)
    no_times = _write(
        tmp_path / "no-times.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli,qos", ["p0,1000,1024,0,0,LS"]
    )
    with pytest.raises(trace.TraceError, match=r"creation_time.*deletion_time"):
        trace.load_pods(trace.Replay(), no_times)
    out = str(tmp_path / "out")
    assert main(["placement", "--pods", str(no_times), "--nodes", str(nodes), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "creation_time" in err and str(no_times) in err and "Traceback" not in err
    # a node list without GPU models cannot place pods that name one
    specs = _write(tmp_path / "specs.csv", POD_HEADER, ["p0,1000,1024,1,1000,T4,LS,Running,0,60,0"])
    bare = _nodes_csv(tmp_path, "sn,cpu_milli,memory_mib,gpu")
    assert main(["placement", "--pods", str(specs), "--nodes", str(bare), "--out", out]) == 2
    assert "'model'" in capsys.readouterr().err
    for header, row, message in (
        ("sn,cpu_milli,gpu", "n0,1000,0", "memory_mib"),
        (POD_HEADER, "p0,1000,1024,0,0,,XX,Running,0,60,0", "qos 'XX'"),
        (POD_HEADER, "p0,1000,1024,0,0,,LS,Running,0,,0", "deletion_time ''"),
        (POD_HEADER, "", "no pods"),
    ):
        f = _write(tmp_path / "bad.csv", header, [row] if row else [])
        with pytest.raises(trace.TraceError, match=message):
            if header.startswith("sn"):
                trace.load_nodes(trace.Replay(), f)
            else:
                trace.load_pods(trace.Replay(), f)
