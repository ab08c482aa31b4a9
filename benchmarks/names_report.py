"""The ``names`` benchmark's report: per-size records and the Markdown tables of latency and
of the cache under churn."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.harness import (
    _ms,
)
from benchmarks.names_client import POD_EVENTS, SNAPSHOT_AGE, Phase
from benchmarks.names_profile import profile_lines

TARGET = {"nodes": 5000, "p50_ms": 3.0, "p99_ms": 6.0, "events_per_s": 5000.0, "p99_ratio": 2.0}


def _cache_row(r: dict[str, Any]) -> dict[str, Any]:
    churn: Phase = r["churn"]
    stats = r["churn_stats"]["churn"]
    first, last = churn.samples[0], churn.samples[-1]
    applied = (last["metrics"][POD_EVENTS] or 0) - (first["metrics"][POD_EVENTS] or 0)
    span = last["t"] - first["t"]
    emitted_in_span = last["fake"]["churn"]["emitted"] - first["fake"]["churn"]["emitted"]
    # events emitted by the fake and not yet applied by the extender, at each sample
    backlog = [
        int(s["fake"]["churn"]["emitted"] - ((s["metrics"][POD_EVENTS] or 0) - churn.events_base))
        for s in churn.samples
    ]
    ages = [s["metrics"][SNAPSHOT_AGE] for s in churn.samples if s["metrics"][SNAPSHOT_AGE] is not None]
    relists = last["metrics"]["informer_relist"] - first["metrics"]["informer_relist"]
    trouble = sum(
        last["metrics"][f"informer_{w}"] - first["metrics"][f"informer_{w}"]
        for w in ("restart", "error", "malformed")
    )
    p99 = {
        v: r["churn"].verb_summary(v)["client_ms"]["p99"] / r["steady"].verb_summary(v)["client_ms"]["p99"]
        for v in ("filter", "prioritize")
    }
    srv_p99 = {}
    for v in ("filter", "prioritize"):
        a, b = r["churn"].verb_summary(v)["server_ms"], r["steady"].verb_summary(v)["server_ms"]
        srv_p99[v] = a["p99"] / b["p99"] if a and b else None
    return {
        "nodes": r["nodes"],
        "pods": r["pods"],
        "pods_json_mb": r["fake"]["json_bytes"]["pods"] / 1e6,
        "ready_s": r["ready_s"],
        "target_per_s": stats["target_per_s"] if stats else None,
        "emitted_per_s": emitted_in_span / span if span > 0 else None,
        "applied_per_s": applied / span if span > 0 else None,
        "span_s": span,
        "emitted": emitted_in_span,
        "applied": applied,
        "backlog_max": max(backlog) if backlog else None,
        "backlog_end": backlog[-1] if backlog else None,
        # the age of the oldest event not yet applied when the churn ended (events leave the fake at a
        # steady rate): how far behind the API server the extender's picture was at that moment
        "lag_end_s": (backlog[-1] / stats["emitted_per_s"])
        if backlog and stats and stats["emitted_per_s"]
        else None,
        "drain_s": r["drain"]["seconds"],
        "drain_complete": r["drain"]["complete"],
        "drain_left": r["drain"].get("left", 0),
        "snapshot_age_s": {"p50": statistics.median(ages), "max": max(ages)} if ages else None,
        "relists": relists,
        "informer_trouble": trouble,
        "p99_ratio_client": p99,
        "p99_ratio_server": srv_p99,
        "extender_cpu_per_s": {
            ph: (
                r[ph].extender_cpu_s / r[ph].seconds
                if r[ph].extender_cpu_s is not None and r[ph].seconds > 0
                else None
            )
            for ph in ("steady", "churn")
        },
        "cache_process_cpu_per_s": {
            ph: (
                r[ph].cache_process_cpu_s / r[ph].seconds
                if r[ph].cache_process_cpu_s is not None and r[ph].seconds > 0
                else None
            )
            for ph in ("steady", "churn")
        },
        "fake_cpu_per_s": ((last["fake"]["cpu_s"] - first["fake"]["cpu_s"]) / span if span > 0 else None),
        # per filter or prioritize call: how long the worker's threads waited for a core
        "extender_wait_ms_per_call": {
            ph: (
                r[ph].extender_wait_s * 1e3 / (2 * len(r[ph].client_ms["filter"]))
                if r[ph].extender_wait_s is not None and r[ph].client_ms["filter"]
                else None
            )
            for ph in ("steady", "churn")
        },
        "fallback_nodes": {ph: r[ph].fallback_nodes for ph in ("steady", "churn")},
        "unresolvable_max": max(r["steady"].unresolvable_max, r["churn"].unresolvable_max),
    }


def _size_record(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in r.items() if k not in ("steady", "churn")}
    for ph in ("steady", "churn"):
        p: Phase = r[ph]
        out[ph] = {
            "seconds": p.seconds,
            "extender_cpu_s": p.extender_cpu_s,
            "extender_wait_s": p.extender_wait_s,
            "cache_process_cpu_s": p.cache_process_cpu_s,
            "fallback_nodes": p.fallback_nodes,
            "events_base": p.events_base,
            "unresolvable_max": p.unresolvable_max,
            "client_ms": p.client_ms,
            "server_ms": p.server_ms,
            "server_cpu_ms": p.server_cpu_ms,
            "samples": p.samples,
        }
    return out


LATENCY_HEADER = (
    "| nodes | phase | verb | calls | client p50 ms | client p99 ms | client max ms "
    "| server p50 ms | server p99 ms | server max ms | server CPU p50 / p99 ms "
    "| p99 churn/steady (client, server) |\n"
    "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def latency_table(rows: Sequence[dict[str, Any]], cache_rows: Sequence[dict[str, Any]]) -> str:
    ratios = {c["nodes"]: c for c in cache_rows}
    lines = [LATENCY_HEADER]
    for r in rows:
        srv, cpu = r["server_ms"] or {}, r["server_cpu_ms"] or {}
        ratio = ""
        if r["phase"] == "churn":
            c = ratios[r["nodes"]]
            s = c["p99_ratio_server"][r["verb"]]
            ratio = f"{c['p99_ratio_client'][r['verb']]:.2f}, {'n/a' if s is None else f'{s:.2f}'}"
        lines.append(
            f"| {r['nodes']:,} | {r['phase']} | {r['verb']} | {r['calls']} "
            f"| {_ms(r['client_ms']['p50'])} | {_ms(r['client_ms']['p99'])} "
            f"| {_ms(r['client_ms']['max'])} | {_ms(srv.get('p50'))} "
            f"| {_ms(srv.get('p99'))} | {_ms(srv.get('max'))} "
            f"| {_ms(cpu.get('p50'))} / {_ms(cpu.get('p99'))} | {ratio} |"
        )
    return "\n".join(lines)


CACHE_HEADER = (
    "| nodes | pods | pods JSON MB | ready s | events/s target | emitted/s | applied/s "
    "| backlog at end | lag at end s | drained after s | snapshot age p50 / max s | relists "
    "| extender CPU steady / churn | cache process CPU steady / churn | fake CPU churn "
    "| extender wait for a core per call ms steady / churn |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def cache_table(cache_rows: Sequence[dict[str, Any]]) -> str:
    lines = [CACHE_HEADER]
    for c in cache_rows:
        age = c["snapshot_age_s"]
        cpu, wait = c["extender_cpu_per_s"], c["extender_wait_ms_per_call"]
        helper = c["cache_process_cpu_per_s"]
        lines.append(
            f"| {c['nodes']:,} | {c['pods']:,} | {c['pods_json_mb']:,.0f} | {c['ready_s']:.1f} "
            f"| {c['target_per_s']:,.0f} | {_rate(c['emitted_per_s'])} | {_rate(c['applied_per_s'])} "
            f"| {c['backlog_end']:,} | {_num(c['lag_end_s'])} | {_drained(c)} "
            f"| {_age(age)} | {c['relists']:.0f} "
            f"| {_pct_cpu(cpu['steady'])} / {_pct_cpu(cpu['churn'])} "
            f"| {_pct_cpu(helper['steady'])} / {_pct_cpu(helper['churn'])} | {_pct_cpu(c['fake_cpu_per_s'])} "
            f"| {_ms(wait['steady'])} / {_ms(wait['churn'])} |"
        )
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def _drained(c: dict[str, Any]) -> str:
    if c["drain_complete"]:
        return f"{c['drain_s']:.1f}"
    return f"not in {c['drain_s']:.0f} ({c['drain_left']:,} left)"


def _age(age: dict[str, float] | None) -> str:
    return "n/a" if age is None else f"{age['p50']:.3f} / {age['max']:.3f}"


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _pct_cpu(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f} %"


def target_lines(rows: Sequence[dict[str, Any]], cache_rows: Sequence[dict[str, Any]]) -> list[str]:
    n = TARGET["nodes"]
    at = [r for r in rows if r["nodes"] == n and r["phase"] == "steady"]
    if not at:
        return [f"targets at {n:,} nodes: not measured"]
    out = []
    for r in at:
        parts = []
        for label, stats in (("client", r["client_ms"]), ("server", r["server_ms"])):
            if stats is None:
                parts.append(f"{label} n/a")
                continue
            ok = stats["p50"] <= TARGET["p50_ms"] and stats["p99"] <= TARGET["p99_ms"]
            parts.append(
                f"{label} p50 {_ms(stats['p50'])} / p99 {_ms(stats['p99'])} ms ({'met' if ok else 'MISSED'})"
            )
        out.append(
            f"target {r['verb']} at {n:,} nodes (p50 <= {TARGET['p50_ms']:g} ms, p99 <= "
            f"{TARGET['p99_ms']:g} ms): " + ", ".join(parts)
        )
    c = next((c for c in cache_rows if c["nodes"] == n), None)
    if c is not None:
        # 1 % tolerance: the fake paces its emission to within about that (4,999/s for 5,000)
        rate_ok = (c["applied_per_s"] or 0) >= 0.99 * TARGET["events_per_s"]
        ratio = max(c["p99_ratio_client"].values())
        out.append(
            f"target churn at {n:,} nodes: applied {_rate(c['applied_per_s'])} pod events/s "
            f"(>= {TARGET['events_per_s']:,.0f} within 1 %: {'met' if rate_ok else 'MISSED'}; "
            f"the fake emitted "
            f"{_rate(c['emitted_per_s'])}/s), client p99 churn/steady up to {ratio:.2f} "
            f"(<= {TARGET['p99_ratio']:g}: {'met' if ratio <= TARGET['p99_ratio'] else 'MISSED'})"
        )
    return out


def _notes(results: Sequence[dict[str, Any]], cache_rows: Sequence[dict[str, Any]]) -> list[str]:
    notes = []
    for r, c in zip(results, cache_rows, strict=True):
        if any(c["fallback_nodes"].values()):
            notes.append(
                f"warning: {r['nodes']:,} nodes: the stale-load fallback was used "
                f"({c['fallback_nodes']}); load stamps from {r['fake']['load_updated']}"
            )
        if c["unresolvable_max"]:
            notes.append(f"warning: {r['nodes']:,} nodes: up to {c['unresolvable_max']} nodes unresolvable")
        if c["relists"] or c["informer_trouble"]:
            notes.append(
                f"warning: {r['nodes']:,} nodes: {c['relists']:.0f} relists, "
                f"{c['informer_trouble']:.0f} watch restarts/errors during the churn"
            )
        if not c["drain_complete"]:
            notes.append(
                f"note: {r['nodes']:,} nodes: {c['drain_left']:,} events were still not applied "
                f"{c['drain_s']:.0f} s after the churn stopped"
            )
        if r["drain"].get("relists"):
            notes.append(f"warning: {r['nodes']:,} nodes: the extender relisted after the churn")
        if r["server_log_tail"]:
            notes.append(f"extender log ({r['nodes']:,} nodes) has warnings; see the JSON")
    for r in results:
        if r["profile"]:
            notes.extend(profile_lines(r["nodes"], r["profile"]))
    return notes
