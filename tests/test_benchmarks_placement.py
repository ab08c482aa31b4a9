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
