"""The placement benchmark's report: Markdown tables from its JSON document, and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

HOURS = 3600.0


def _mmm(agg: dict[str, Any], key: str, fmt: str = "{:.1f}", scale: float = 1.0) -> str:
    """'mean (min-max)' over seeds, or just the value with one seed."""
    v = agg[key]
    mean, lo, hi = (v["mean"] * scale, v["min"] * scale, v["max"] * scale)
    if agg["seeds"] == 1 or lo == hi:
        return fmt.format(mean)
    return f"{fmt.format(mean)} ({fmt.format(lo)}–{fmt.format(hi)})"


def _neg(x: float | None) -> float | None:
    """-x, None staying None (a reduction shown as a change)."""
    return None if x is None else -x


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.0f} %"


TABLE_HEADER = (
    "| policy | placed at once | placed after waiting | unschedulable | hotspot node-min "
    "| of which single-pod | unmet CPU core-min "
    "| CPU util p50 / p95 / max % | peak node util % | nodes in use mean / peak | decide ms p50 / p99 |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def level_table(per: dict[str, dict[str, Any]]) -> str:
    rows = [TABLE_HEADER]
    for name, a in per.items():
        util = " / ".join(
            _mmm(a, k, "{:.0f}", 100.0) for k in ("util_p50_mean", "util_p95_mean", "util_max_mean")
        )
        rows.append(
            f"| {name} | {_mmm(a, 'placed_first_try', '{:.0f}')} | {_mmm(a, 'placed_after_wait', '{:.0f}')} "
            f"| {_mmm(a, 'unschedulable', '{:.0f}')} | {_mmm(a, 'hotspot_node_minutes')} "
            f"| {_mmm(a, 'hotspot_node_minutes_single_pod')} "
            f"| {_mmm(a, 'unmet_cpu_core_minutes')} | {util} | {_mmm(a, 'util_max_peak', '{:.0f}', 100.0)} "
            f"| {_mmm(a, 'nodes_in_use_mean', '{:.0f}')} / {_mmm(a, 'nodes_in_use_peak', '{:.0f}')} "
            f"| {_mmm(a, 'decide_ms_p50', '{:.2f}')} / {_mmm(a, 'decide_ms_p99', '{:.2f}')} |"
        )
    return "\n".join(rows)


def _model_lines(doc: dict[str, Any]) -> list[str]:
    m, s, r = doc["load_model"], doc["sim"], doc["replay"]
    qos = "; ".join(
        f"{name}: base {q['base']}, cycle amplitude {q['amplitude']}, noise σ {q['sigma']}, "
        f"demand capped at {q['cap']}× request"
        for name, q in m["qos"].items()
    )
    return [
        f"- Replay: pods `{r.get('pods', 'benchmarks/data/openb/pods.csv')}`, nodes "
        f"`{r.get('nodes', 'benchmarks/data/openb/nodes.csv')}` (openb's format), "
        f"every {r['keep_every']}. node and pod, arrival times compressed by "
        f"{', '.join(f'{c:g}' for c in r['compressions'])} (one table each), own lifetimes kept, "
        f"{r['seeds']} seed(s) per level.",
        f"- Load model (CPU usage / request, per QoS class): {qos}; Beta concentration "
        f"{m['concentration']}, cycle {m['cycle_s']:g} s (phase jitter ±{m['phase_jitter_s']:g} s), "
        f"AR(1) ρ {m['rho']} per tick, floor {m['floor']}; memory {m['memory_base']} × request, steady; "
        "the pods carry requests, and limits (= requests) only when Guaranteed.",
        f"- Simulation: tick {s['tick_s']:g} s; load reported every {s['report_interval_s']:g} s as the mean "
        f"of the preceding interval (or the window a policy's line names); "
        f"recent binds compensated until a report {s['compensation_lag_s']:g} s "
        f"newer; hotspot = node CPU used > {s['hotspot_utilisation'] * 100:.0f} % of capacity; "
        "percentageOfNodesToScore "
        f"{s['percentage_of_nodes_to_score'] or 'adaptive (kube-scheduler default)'}; "
        f"{s['tail_s']:g} s simulated after the last arrival.",
    ]


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# Placement quality on the openb trace",
        "",
        f"Command: `{doc['command']}`  ",
        f"Machine: {doc['machine']['cpus']} CPUs, Python {doc['machine']['python']}, numpy "
        f"{doc['machine']['numpy']}, load average "
        f"{', '.join(f'{x:.1f}' for x in doc['machine']['loadavg'])}; "
        f"wall time {doc['wall_s']:.0f} s.",
        "",
        "Policies:",
    ]
    for c in doc["contenders"]:
        weight = f", extender weight {c['extender_weight']}" if c["mode"] == "extender" else ""
        lines.append(f"- `{c['name']}`: {c['title']} — `{c['policy_file']}`{weight}")
    lines += [
        "",
        "Parameters:",
        *_model_lines(doc),
        "",
        "Figures are the mean over seeds, with (min–max) where seeds differ. Utilisation columns "
        "are time means of the per-tick p50 / p95 / max over nodes running at least one pod. "
        "`decide ms` is the in-process scheduling cycle per arriving pod (the scoring core on "
        "every node; for the extender also kube-scheduler's own scores), not HTTP: see the "
        "`latency` benchmark for the extender's time over the wire.",
    ]
    for level, per in doc["aggregates"].items():
        t = doc["targets"][level]
        pods = next(iter(per.values()))["pods"]["mean"]
        nodes = next(r["nodes"] for r in doc["runs"] if f"{r['compression']:g}" == level)
        lines += [
            "",
            f"## Arrivals compressed ×{float(level):,.0f} ({nodes} nodes, {pods:.0f} pods)",
            "",
            level_table(per),
            "",
            "Extender vs kube-scheduler's defaults: hotspot node-minutes "
            f"{_pct(_neg(t['hotspot_reduction']))} "
            f"(target −50 %: {'met' if t['hotspot_target_met'] else 'not met'}), unschedulable pods "
            f"{_pct(t['unschedulable_excess'])} (target at most +5 %: "
            f"{'met' if t['unschedulable_target_met'] else 'not met'}; that is "
            f"{t['unschedulable_extra_pods']:+.0f} pods, "
            f"{t['unschedulable_extra_share_of_pods'] * 100:+.2f} % "
            f"of all pods). On nodes running two pods "
            f"or more (the hotspots a placement can avoid; a single pod that overruns its node "
            f"can only be refused): {_pct(_neg(t['multi_pod_hotspot_reduction']))}.",
        ]
    if doc["problems"]:
        lines += ["", "**Inconsistent results:**", *(f"- {p}" for p in doc["problems"])]
    return "\n".join(lines) + "\n"


# Each contender's own line style, so that lines lying on top of each other (contenders that
# place alike) stay visible: dashes over a solid line, the first drawn widest.
LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
COUNT_AXES = ("hotspot nodes (> 80 % CPU)", "nodes in use")  # whole numbers: integer ticks


def _legend_outside(fig: Any, ax: Any) -> None:
    """One legend for the figure, right of the axes, where it covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.97), fontsize=8, frameon=False)


def timeline_figure(doc: dict[str, Any], level: str) -> Any:
    """Hotspot nodes, p95 node utilisation and nodes in use over time at one load level (seed 0);
    the count axes have integer ticks, the legend sits outside the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    runs = [r for r in doc["runs"] if f"{r['compression']:g}" == level and r["series"]]
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True, layout="constrained")
    keys = (("hotspot_nodes", 1.0), ("util_p95", 100.0), ("nodes_in_use", 1.0))
    for i, r in enumerate(runs):
        t = np.array(r["series"]["t_s"]) / HOURS
        style = {
            "label": r["contender"],
            "ls": LINE_STYLES[i % len(LINE_STYLES)],
            "lw": 2.0 - 0.25 * min(i, 4),
        }
        for ax, (key, scale) in zip(axes, keys, strict=True):
            # counts change in steps: drawn as steps, not as slopes between ticks
            step = "steps-post" if scale == 1.0 else "default"
            ax.plot(t, np.array(r["series"][key]) * scale, drawstyle=step, **style)
    for ax, label in zip(
        axes, (COUNT_AXES[0], "p95 node CPU util %\n(busy nodes)", COUNT_AXES[1]), strict=True
    ):
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if label in COUNT_AXES:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(bottom=0)
    axes[-1].set_xlabel("simulated hours")
    axes[0].set_title(f"openb replay, arrivals compressed x{float(level):,.0f}, seed 0")
    _legend_outside(fig, axes[0])
    return fig


def hotspots_figure(doc: dict[str, Any]) -> Any:
    """Hotspot node-minutes per contender and load level (bars: mean; whiskers: min-max over
    seeds), the legend outside the axes."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4), layout="constrained")
    levels = list(doc["aggregates"])
    names = list(doc["aggregates"][levels[0]])
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        figures = [doc["aggregates"][lv][n]["hotspot_node_minutes"] for lv in levels]
        means = [f["mean"] for f in figures]
        errors = [[f["mean"] - f["min"] for f in figures], [f["max"] - f["mean"] for f in figures]]
        ax.bar(np.arange(len(levels)) + i * width, means, width, yerr=errors, label=n, capsize=3)
    ax.set_xticks(
        np.arange(len(levels)) + width * (len(names) - 1) / 2, [f"x{float(lv):,.0f}" for lv in levels]
    )
    ax.set_ylabel("hotspot node-minutes")
    ax.set_xlabel("arrival-time compression")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)  # the grid behind the bars
    _legend_outside(fig, ax)
    return fig


def plots(doc: dict[str, Any], folder: Path) -> str:
    """One PNG per load level (``timeline_figure``) and one bar chart of hotspot node-minutes
    (``hotspots_figure``); returns the Markdown that links them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    links = ["", "## Plots", ""]
    for level in doc["aggregates"]:
        fig = timeline_figure(doc, level)
        name = f"timeline-x{float(level):.0f}.png"
        fig.savefig(folder / name, dpi=90, bbox_inches="tight")
        plt.close(fig)
        links.append(f"![timeline x{float(level):,.0f}]({name})")
    fig = hotspots_figure(doc)
    fig.savefig(folder / "hotspots.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    links.append("![hotspot node-minutes](hotspots.png)")
    return "\n".join(links) + "\n"
