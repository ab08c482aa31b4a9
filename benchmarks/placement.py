"""``python -m benchmarks placement``: placement quality under load, on the openb trace.

Four ways of scheduling the same pods on the same cluster, with the same usage draws
(``benchmarks.loadmodel``), side by side, over several seeds and load levels:

* ``kube-scheduler``: its default scoring (requests only),
  ``benchmarks/policies/kube-scheduler-default.yaml``;
* ``trimaran-tlp``: Trimaran TargetLoadPacking as its README deploys it,
  ``.../trimaran-targetloadpacking.yaml``;
* ``koordinator``: Koordinator LoadAwareScheduling with its defaults, ``.../koordinator-loadaware.yaml``;
* ``extender``: our default policy (``config/extender-policy.yaml``, the file the extender
  loads) as an extender with the weight of ``config/scheduler/secondary-scheduler.yaml``,
  behind kube-scheduler's default scoring.

Every policy is a policy file of the scoring core, evaluated by ``scoring.evaluate``: the
comparison runs the product's code, not a copy of it. How the scheduler is emulated is in
``benchmarks/simulate.py``; how the trace is replayed in ``benchmarks/trace.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks import loadmodel, simulate, trace
from benchmarks.harness import _command
from extender.policy_file import load_policy
from extender.settings import DEFAULT_POLICY_PATH
from scoring import PolicyError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results"
POLICIES = ROOT / "benchmarks" / "policies"
SCHEDULER_CONFIG = ROOT / "config" / "scheduler" / "secondary-scheduler.yaml"
DEFAULT_LEVELS = (1000.0, 10000.0, 100000.0)
QUICK_LEVELS = (10000.0,)
DEFAULT_SEEDS = 3
BASELINE, OURS = "kube-scheduler", "extender"
TARGET_HOTSPOT_REDUCTION, TARGET_UNSCHEDULABLE_EXCESS = 0.50, 0.05
# koordlet reports NodeMetric every 60 s with the node's usage averaged over the last 300 s
# (koordinator-sh/koordinator pkg/koordlet/statesinformer/impl/states_nodemetric.go:
# defaultReportIntervalSeconds 60, defaultAggregateDurationSeconds 300, NodeUsage = AVG over
# [now - 300 s, now]); LoadAwareScheduling reads that NodeUsage unless `aggregated` is set,
# which its defaults and the shipped scheduler config leave unset (pkg/scheduler/apis/config/
# v1beta3/defaults.go SetDefaults_LoadAwareSchedulingArgs; config/manager/scheduler-config.yaml).
KOORDLET_WINDOW_S = 300.0


def extender_weight(config: Path = SCHEDULER_CONFIG) -> int:
    """The ``weight`` of the extender in the shipped KubeSchedulerConfiguration."""
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    return int(doc["extenders"][0]["weight"])


def contenders(extra: tuple[tuple[str, str], ...] = ()) -> tuple[simulate.Contender, ...]:
    """The four policies compared, then ``extra`` ((name, policy file) pairs given with
    ``--policy``), each run as the extender is, behind kube-scheduler's defaults."""
    kube = load_policy(POLICIES / "kube-scheduler-default.yaml")
    added = tuple(
        simulate.Contender(
            name, f"extender with {path}", load_policy(Path(path)), "extender", extender_weight(), kube
        )
        for name, path in extra
    )
    return (
        simulate.Contender(
            BASELINE,
            "kube-scheduler defaults (LeastAllocated + BalancedAllocation, requests only)",
            kube,
            "plugins",
        ),
        simulate.Contender(
            "trimaran-tlp",
            "Trimaran TargetLoadPacking (target 40 %; recent binds predicted by its PredictUtilisation)",
            load_policy(POLICIES / "trimaran-targetloadpacking.yaml"),
            "plugins",
            recent_binds="tlp",
        ),
        simulate.Contender(
            "koordinator",
            "Koordinator LoadAwareScheduling (thresholds cpu 65 / memory 95; koordlet's 300 s average load)",
            load_policy(POLICIES / "koordinator-loadaware.yaml"),
            "plugins",
            load_window_s=KOORDLET_WINDOW_S,
        ),
        simulate.Contender(
            OURS,
            "this extender, default policy, behind kube-scheduler's defaults",
            load_policy(DEFAULT_POLICY_PATH),
            "extender",
            extender_weight(),
            kube,
        ),
    ) + added


POLICY_FILES = {
    BASELINE: "benchmarks/policies/kube-scheduler-default.yaml",
    "trimaran-tlp": "benchmarks/policies/trimaran-targetloadpacking.yaml",
    "koordinator": "benchmarks/policies/koordinator-loadaware.yaml",
    OURS: "config/extender-policy.yaml (+ benchmarks/policies/kube-scheduler-default.yaml in-tree)",
}


@dataclasses.dataclass(frozen=True)
class Job:
    compression: float
    keep_every: int
    seed: int
    params: simulate.SimParams
    model: loadmodel.LoadModel
    extra: tuple[tuple[str, str], ...] = ()
    pods_file: Path = trace.PODS_CSV
    nodes_file: Path = trace.NODES_CSV


def run_job(job: Job) -> list[dict[str, Any]]:
    """Every contender at one load level and seed, in a worker process: the trace and the usage
    draws are loaded once and shared by the contenders (common random numbers)."""
    replay = trace.Replay(compression=job.compression, keep_every=job.keep_every)
    nodes, pods = trace.load_nodes(replay, job.nodes_file), trace.load_pods(replay, job.pods_file)
    usage = loadmodel.generate(
        job.model, pods, ticks=simulate.ticks_for(pods, job.params), tick_s=job.params.tick_s, seed=job.seed
    )
    out = []
    for contender in contenders(job.extra):
        result = simulate.run(contender, nodes, pods, usage, job.params, job.seed)
        row = result.summary()
        row["compression"] = job.compression
        row["nodes"] = len(nodes.names)
        row["series"] = result.series if job.seed == 0 else None
        out.append(row)
    return out


def check_consistent(
    results: Sequence[dict[str, Any]], names: Sequence[str], levels: Sequence[float], seeds: int
) -> list[str]:
    """What is wrong with a set of results (empty when they add up): every contender at every
    level and seed, and placed + unschedulable = pods in each run."""
    problems = []
    for level in levels:
        for name in names:
            runs = [r for r in results if r["compression"] == level and r["contender"] == name]
            if len(runs) != seeds:
                problems.append(f"{name} at x{level:g}: {len(runs)} runs, expected {seeds}")
    for r in results:
        total = r["placed_first_try"] + r["placed_after_wait"] + r["unschedulable"]
        if total != r["pods"]:
            problems.append(
                f"{r['contender']} x{r['compression']:g} seed {r['seed']}: "
                f"placed + unschedulable = {total} != {r['pods']} pods"
            )
    return problems


def aggregate(results: Sequence[dict[str, Any]], level: float, name: str) -> dict[str, Any]:
    """Mean, min and max over seeds of every numeric figure of one contender at one level."""
    runs = [r for r in results if r["compression"] == level and r["contender"] == name]
    out: dict[str, Any] = {"contender": name, "compression": level, "seeds": len(runs)}
    for key, value in runs[0].items():
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and key not in ("seed", "compression")
        ):
            xs = np.array([r[key] for r in runs], dtype=np.float64)
            out[key] = {"mean": float(xs.mean()), "min": float(xs.min()), "max": float(xs.max())}
    return out


def target_check(agg: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ours against kube-scheduler's defaults at one level: hotspot node-minutes reduction and
    unschedulable pods (means over seeds)."""
    base, ours = agg[BASELINE], agg[OURS]
    b_hot, o_hot = base["hotspot_node_minutes"]["mean"], ours["hotspot_node_minutes"]["mean"]
    b_un, o_un = base["unschedulable"]["mean"], ours["unschedulable"]["mean"]
    reduction = (b_hot - o_hot) / b_hot if b_hot > 0 else None
    excess = (o_un - b_un) / max(b_un, 1.0)
    multi = [
        a["hotspot_node_minutes"]["mean"] - a["hotspot_node_minutes_single_pod"]["mean"] for a in (base, ours)
    ]
    pods = base["pods"]["mean"]
    return {
        "hotspot_reduction": reduction,
        "unschedulable_extra_pods": o_un - b_un,
        "unschedulable_extra_share_of_pods": (o_un - b_un) / pods if pods else 0.0,
        "multi_pod_hotspot_reduction": (multi[0] - multi[1]) / multi[0] if multi[0] > 0 else None,
        "unschedulable_excess": excess,
        "hotspot_target_met": reduction is not None and reduction >= TARGET_HOTSPOT_REDUCTION,
        "unschedulable_target_met": excess <= TARGET_UNSCHEDULABLE_EXCESS,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quick",
        action="store_true",
        help="a quarter of the nodes and pods, one seed, one load level (x10,000): < 1 min",
    )
    p.add_argument("--seeds", type=int, help=f"seeds per level (default {DEFAULT_SEEDS}; --quick 1)")
    p.add_argument(
        "--compression",
        type=lambda s: tuple(float(x) for x in s.split(",")),
        help="arrival-time compressions, comma-separated (default 1000,10000,100000)",
    )
    p.add_argument("--keep-every", type=int, help="replay every k-th node and pod (default 1; --quick 4)")
    p.add_argument(
        "--pods",
        type=Path,
        default=trace.PODS_CSV,
        metavar="FILE",
        help="pod list in the trace's CSV format, e.g. the trace's openb_pod_list_gpuspec33.csv "
        "(default benchmarks/data/openb/pods.csv)",
    )
    p.add_argument(
        "--nodes",
        type=Path,
        default=trace.NODES_CSV,
        metavar="FILE",
        help="node list in the trace's CSV format (default benchmarks/data/openb/nodes.csv)",
    )
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME=FILE",
        type=_named_policy,
        help="also run this policy file as the extender (repeatable), e.g. --policy strict=my-policy.yaml",
    )
    p.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default 2)"
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results folder (default benchmarks/results)"
    )


def _named_policy(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    if name in POLICY_FILES:
        raise argparse.ArgumentTypeError(f"{name!r} is taken by a built-in contender")
    try:
        load_policy(Path(path))
    except PolicyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, path


def _shown(path: Path) -> str:
    """A path as the report shows it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _settings(args: argparse.Namespace) -> tuple[tuple[float, ...], int, int]:
    levels = args.compression or (QUICK_LEVELS if args.quick else DEFAULT_LEVELS)
    seeds = args.seeds or (1 if args.quick else DEFAULT_SEEDS)
    keep = args.keep_every or (4 if args.quick else 1)
    return levels, seeds, keep


def run(args: argparse.Namespace) -> int:
    """Replay the openb trace under kube-scheduler's defaults, Trimaran TargetLoadPacking,
    Koordinator LoadAware and this extender's default policy; write a Markdown report, PNG
    plots and JSON into a results folder (see benchmarks/README.md)."""
    from benchmarks import placement_report  # matplotlib is imported only when reporting

    levels, seeds, keep = _settings(args)
    params, model = simulate.SimParams(), loadmodel.LoadModel()
    extra = tuple(args.policy)
    if len({n for n, _ in extra}) != len(extra):
        print("--policy: each NAME once", file=sys.stderr)
        return 2
    try:  # a list that cannot be replayed is refused before any work, naming what it lacks
        replay = trace.Replay(keep_every=keep)
        nodes = trace.load_nodes(replay, args.nodes)
        trace.check_replayable(nodes, trace.load_pods(replay, args.pods), args.nodes)
    except trace.TraceError as exc:
        print(f"placement: {exc}", file=sys.stderr)
        return 2
    built = contenders(extra)
    names = [c.name for c in built]
    jobs = [
        Job(level, keep, seed, params, model, extra, args.pods, args.nodes)
        for level in levels
        for seed in range(seeds)
    ]
    started = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(max(1, args.jobs)) as pool:
        results = [row for rows in pool.map(run_job, jobs, chunksize=1) for row in rows]
    wall = time.perf_counter() - started
    problems = check_consistent(results, names, levels, seeds)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = args.out / f"placement-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    aggregates = {level: {n: aggregate(results, level, n) for n in names} for level in levels}
    doc = {
        "command": _command(args),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "loadavg": os.getloadavg(),
        },
        "wall_s": wall,
        "replay": {
            "compressions": list(levels),
            "keep_every": keep,
            "seeds": seeds,
            "pods": _shown(args.pods),
            "nodes": _shown(args.nodes),
        },
        "sim": params.as_dict(),
        "load_model": model.as_dict(),
        "contenders": [
            {
                "name": c.name,
                "title": c.title,
                "mode": c.mode,
                "extender_weight": c.extender_weight,
                "recent_binds": c.recent_binds,
                "load_window_s": c.load_window_s,
                "policy_file": POLICY_FILES.get(c.name, dict(extra).get(c.name)),
            }
            for c in built
        ],
        "aggregates": {f"{level:g}": {n: a for n, a in per.items()} for level, per in aggregates.items()},
        "targets": {f"{level:g}": target_check(per) for level, per in aggregates.items()},
        "runs": results,
        "problems": problems,
    }
    (folder / "results.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    report = placement_report.markdown(doc)
    if not args.no_plots:
        report += placement_report.plots(doc, folder)
    (folder / "report.md").write_text(report, encoding="utf-8")
    print(report)
    print(f"\nwritten: {folder}/report.md, results.json" + ("" if args.no_plots else ", *.png"))
    if problems:
        print("INCONSISTENT RESULTS:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0
