"""The latency benchmark's report: the progress line of each run, its tables (calls, the
floor of the server's own time, the scheduling cycles), the target line and the notes that say
how to read them. Formatting only: ``benchmarks.latency`` measures and calls these.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from benchmarks.harness import _ms


def run_line(run: Any) -> str:
    """One progress line per size and form."""
    parts = []
    for verb in ("filter", "prioritize", "bind"):
        s = run.verb_summary(verb)
        if s is not None:
            srv = s["server_ms"] or {}
            parts.append(
                f"{verb} p50 {_ms(s['client_ms']['p50'])} / p99 {_ms(s['client_ms']['p99'])} ms "
                f"(server {_ms(srv.get('p50'))})"
            )
    return f"  {len(run.cycles)} pods in {run.seconds:.1f} s; " + "; ".join(parts)


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, text: Sequence[str] = ()) -> str:
    """A Markdown table: ``columns`` titles, one row of cells each; the ``text`` columns
    left-aligned, the others (numbers) right-aligned."""
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if c in text else "---:" for c in columns) + "|",
    ]
    lines.extend("| " + " | ".join(cells) + " |" for cells in rows)
    return "\n".join(lines)


CALLS_COLUMNS = (
    "nodes",
    "form",
    "verb",
    "calls",
    "nodes per call",
    "request KB",
    "response KB",
    "client p50 ms",
    "client p90 ms",
    "client p99 ms",
    "client max ms",
    "calls/s",
    "server p50 ms",
    "server p99 ms",
    "server CPU ms/call",
    "timeouts",
)


def calls_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per size, form and verb: sizes, latency, throughput, server time and CPU."""

    def cells(r: dict[str, Any]) -> list[str]:
        c, srv = r["client_ms"], r["server_ms"] or {}
        return [
            f"{r['nodes']:,}",
            r["form"],
            r["verb"],
            str(r["calls"]),
            f"{r['nodes_per_call']['p50']:,.0f}",
            _kb(r["request_bytes"]["p50"]),
            _kb(r["response_bytes"]["p50"]),
            *(_ms(c[q]) for q in ("p50", "p90", "p99", "max")),
            f"{r['calls_per_s']:,.1f}",
            _ms(srv.get("p50")),
            _ms(srv.get("p99")),
            _ms(r["server_cpu_ms_per_call"]),
            str(r["timeouts"]),
        ]

    return markdown_table(CALLS_COLUMNS, map(cells, rows), text=("form", "verb"))


FLOOR_COLUMNS = (
    "nodes",
    "verb",
    "nodes per call",
    "request KB",
    "server p50 ms",
    "orjson.loads p50 ms",
    "ratio server/orjson p50",
    "orjson.loads GC off p50 ms",
    "ratio GC off",
)


def floor_table(rows: Sequence[dict[str, Any]]) -> str:
    """Stateless form: the server against orjson.loads of the same bodies."""
    return markdown_table(
        FLOOR_COLUMNS,
        (
            [
                f"{r['nodes']:,}",
                r["verb"],
                f"{r['nodes_per_call']['p50']:,.0f}",
                _kb(r["request_bytes"]["p50"]),
                _ms(r["server_ms"]["p50"]),
                _ms(r["orjson_loads_ms"]["p50"]),
                f"{r['ratio_server_orjson_p50']:.2f}",
                _ms(r["orjson_loads_gc_disabled_ms"]["p50"]),
                f"{r['ratio_server_orjson_gc_disabled_p50']:.2f}",
            ]
            for r in rows
            if "orjson_loads_ms" in r
        ),
        text=("verb",),
    )


CYCLES_COLUMNS = (
    "nodes",
    "form",
    "pods",
    "numFeasibleNodesToFind",
    "passed extender filter p50",
    "bound",
    "unschedulable",
    "filter errors",
    "prioritized / skipped (1 node) / failed",
    "bind errors",
    "ties",
    "nodes chosen",
    "extender ms/pod",
    "pods/s on extender calls",
    "pods/s whole cycle",
    "server CPU ms/pod",
)


def cycles_table(cycles: Sequence[dict[str, Any]]) -> str:
    """Per size and form: what the scheduling cycles did, and the extender's cost per pod."""

    def cells(c: dict[str, Any]) -> list[str]:
        o, passed = c["outcomes"], c["passed_extender_filter"]
        return [
            f"{c['nodes']:,}",
            c["form"],
            str(c["pods"]),
            f"{c['sample']:,}",
            "n/a" if passed is None else f"{passed['p50']:,.0f}",
            str(o.get("bound", 0)),
            str(o.get("unschedulable", 0)),
            str(o.get("filter_error", 0)),
            f"{c['prioritized']} / {c['prioritize_skipped_one_node']} / {c['prioritize_errors']}",
            str(o.get("bind_error", 0)),
            str(c["ties"]),
            str(c["distinct_hosts"]),
            _ms(c["extender_ms_per_pod"]),
            _rate(c["pods_per_s_extender"]),
            _rate(c["pods_per_s_loop"]),
            _ms(c["server_cpu_ms_per_pod"]),
        ]

    return markdown_table(CYCLES_COLUMNS, map(cells, cycles), text=("form",))


def _kb(x: float) -> str:
    return f"{x / 1e3:,.1f}"


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f}"


TARGET_NODES, TARGET_RATIO = 1000, 1.3


def target_line(rows: Sequence[dict[str, Any]]) -> str:
    """Stateless form at 1,000 cluster nodes: server p50 within 1.3x of orjson.loads."""
    at = [r for r in rows if r["nodes"] == TARGET_NODES and "ratio_server_orjson_p50" in r]
    head = f"target (stateless, {TARGET_NODES:,} nodes: server p50 within {TARGET_RATIO}x of orjson.loads)"
    if not at:
        return f"{head}: not measured"
    return f"{head}: " + ", ".join(
        f"{r['verb']} {r['ratio_server_orjson_p50']:.2f} "
        f"({'met' if r['ratio_server_orjson_p50'] <= TARGET_RATIO else 'MISSED'})"
        for r in at
    )


def latency_notes(
    rows: Sequence[dict[str, Any]], cycles: Sequence[dict[str, Any]], facts: dict[str, Any]
) -> list[str]:
    notes = [f"load average at end {facts.get('loadavg_at_end')}"]
    for c in cycles:
        setup = ", ".join(
            f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v:,}" for k, v in c["setup"].items()
        )
        notes.append(f"{c['nodes']:,} {c['form']}: {setup}")
        if c["fallback_nodes"]:
            notes.append(
                f"warning: {c['nodes']:,} {c['form']}: {c['fallback_nodes']:,.0f} node scorings "
                "used the stale-load fallback"
            )
    timeouts = [r for r in rows if r["timeouts"]]
    if timeouts:
        notes.append(
            "timeouts (httpTimeout): "
            + ", ".join(f"{r['nodes']:,} {r['form']} {r['verb']} {r['timeouts']}" for r in timeouts)
        )
    if any(r["server_ms"] is None for r in rows):
        notes.append("note: some answers had no 'Server-Timing: app;dur=' header; server time unknown there")
    return notes
