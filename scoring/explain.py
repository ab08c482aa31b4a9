"""Why a node won: one evaluation, node by node, as plain data.

``explain`` turns an ``Evaluation`` (the same one the verbs answer from, so the explanation
cannot drift from the answer) into one dict per node: the filter verdict and its reason, each
strategy's raw 0..100 score and whether it counted in the combination (and why not), the
combined 0..100, the extender's 0..10, and the inputs the strategies read for that node.
Plain ``dict``/``list``/``float``/``int``/``str``/``None`` only, so any JSON encoder can write it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from scoring import gpu
from scoring.evaluate import Evaluation
from scoring.filters import OK, describe
from scoring.policy import LOAD_KIND, GPUArgs, Policy, strategy_kind
from scoring.types import NodeTable, PodDemand

VERDICT_NAMES = {
    0: "ok",
    1: "insufficient_resources",
    2: "no_allocatable",
    3: "usage_threshold",
    4: "no_fresh_load",
}


def _num(x: float) -> float | int | None:
    """JSON-safe number: None for NaN/inf, int for integral values."""
    if not math.isfinite(x):
        return None
    return int(x) if x == int(x) and abs(x) < 2**53 else x


def _strategy_rows(
    ev: Evaluation, i: int, policy: Policy, pod: PodDemand, nodes: NodeTable
) -> list[dict[str, Any]]:
    feasible = bool(ev.verdict.code[i] == OK)
    rows = []
    for spec in policy.strategies:
        comp = ev.components[spec.name]
        load = strategy_kind(spec.name) == LOAD_KIND
        score = None if comp is None else int(comp[i])
        if comp is None and isinstance(spec.args, GPUArgs):
            counted, note = False, gpu.not_applicable(spec.name, pod, nodes, spec.args)
        elif comp is None:
            counted, note = False, "does not apply to this pod (best-effort: no requests)"
        elif spec.weight == 0:
            counted, note = False, "weight 0"
        elif not feasible:
            counted, note = False, "node filtered out"
        elif load and not ev.load_ok[i]:
            score = None if policy.load.fallback != "zero" else 0
            counted = policy.load.fallback == "zero"
            note = {
                "requests": "no usable load data: requests-based fallback",
                "zero": "no usable load data: scored 0",
                "reject": "no usable load data",
            }[policy.load.fallback]
        else:
            counted, note = True, ""
        rows.append(
            {"name": spec.name, "weight": spec.weight, "score": score, "counted": counted, "note": note}
        )
    if ev.implicit is not None and ev.fallback[i] and feasible:
        rows.append(
            {
                "name": "LeastAllocated (implicit fallback)",
                "weight": 1,
                "score": int(ev.implicit[i]),
                "counted": True,
                "note": "no usable load data and no requests-based strategy in the policy",
            }
        )
    return rows


def _inputs(ev: Evaluation, i: int, nodes: NodeTable, pod: PodDemand, policy: Policy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c, name in enumerate(nodes.resources):
        p = pod.resources.index(name) if name in pod.resources else -1
        out[name] = {
            "allocatable": _num(float(nodes.allocatable[i, c])),
            "requested": _num(float(nodes.requested[i, c])),
            "podRequest": _num(float(pod.requests[p])) if p >= 0 else 0,
            "usage": _num(float(nodes.usage[i, c])),
            "usageAvg": _num(float(nodes.usage_avg[i, c])),
            "usageStddev": _num(float(nodes.usage_std[i, c])),
            "pending": _num(float(nodes.pending[i, c])),
            "podEstimate": _num(float(ev.estimate[p])) if p >= 0 else 0,
        }
    for spec in policy.strategies:  # the GPU state the GPU strategies read, once
        if isinstance(spec.args, GPUArgs):
            facts = gpu.node_gpu_facts(nodes, spec.args.resource, i)
            if facts is not None:
                out["gpuState"] = facts
            break
    return out


def explain(
    ev: Evaluation,
    *,
    pod: PodDemand,
    nodes: NodeTable,
    policy: Policy,
    only: Sequence[str] | None = None,
    rows: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """One dict per node of ``nodes``, in table order; or only the nodes named in ``only``; or
    only the table rows ``rows``, in that order."""
    if rows is None:
        wanted = None if only is None else set(only)
        rows = [i for i, name in enumerate(nodes.names) if wanted is None or name in wanted]
    out = []
    for i in rows:
        i = int(i)
        name = nodes.names[i]
        code = int(ev.verdict.code[i])
        out.append(
            {
                "node": name,
                "score": int(ev.scores[i]),
                "combined": round(float(ev.combined[i]), 6),
                "verdict": VERDICT_NAMES.get(code, str(code)),
                "reason": describe(ev.verdict, i, nodes, pod, policy),
                "unresolvable": bool(ev.verdict.unresolvable[i]) if code != OK else False,
                "loadUsable": bool(ev.load_ok[i]),
                "loadAgeSeconds": _num(float(nodes.load_age_s[i])),
                "fallback": bool(ev.fallback[i]),
                "strategies": _strategy_rows(ev, i, policy, pod, nodes),
                "inputs": _inputs(ev, i, nodes, pod, policy),
            }
        )
    return out


def ranking(ev: Evaluation, top: int | None = None) -> np.ndarray:
    """Row indices from best to worst: score, then the combined value, then table order; only
    the best ``top`` when given (without sorting the rest)."""
    n = len(ev.scores)
    candidates = np.arange(n)
    if top is not None and top < n:
        key = ev.scores * 1000.0 + ev.combined  # scores 0..10, combined 0..100: one sortable key
        candidates = np.argpartition(-key, top - 1)[:top]
    order = np.lexsort((candidates, -ev.combined[candidates], -ev.scores[candidates]))
    return candidates[order]
