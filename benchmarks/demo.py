"""``scripts/demo``: load-awareness in one command.

Starts the extender as ``scripts/run`` does (stateless mode, no API access, verbs and operations
on listeners of their own, ``--debug-endpoints``) on free loopback ports, and plays
kube-scheduler for one pod against six nodes whose load annotations were measured just now:

* ``normal-a``, ``normal-b``: 20 % and 35 % CPU used;
* ``hot``: 70 % CPU used, under the usage threshold, so it passes the filter and loses on score;
* ``overloaded``: 90 % CPU used, over the threshold: the filter rejects it;
* ``stale``: its load was measured longer ago than the policy's ``staleAfterSeconds``, so it
  is scored as the policy's fallback says (requests only, by default);
* ``full``: a 2-core node that the pod's request does not fit.

It sends ``filter`` with every node, ``prioritize`` with the nodes that passed (as
kube-scheduler does) and ``/explain`` with every node, then prints one row per node, best
first, and a sentence, built from the explanation, saying why ``hot`` lost. It exits 1 when
an answer is not what the shipped policy gives (``hot`` not scored below both normal nodes, a
node's verdict not the one its role calls for, the explanation disagreeing with the verbs) and
stops the server on every exit, Ctrl-C and SIGTERM included.

A client of the extender, not part of it: it lives with the benchmarks, which start the
server the way a user does (``benchmarks.launch``), and imports from ``extender`` only the
policy loader (for the staleness and threshold it states). Standard library and the runtime
dependencies only, so that it runs in the venv ``scripts/run`` makes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import signal
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import k8s_objects
from benchmarks.launch import ROOT, BenchmarkError, running_server
from extender.policy_file import load_policy
from extender.settings import DEFAULT_POLICY_PATH
from scoring import Policy, PolicyError

HOT, NORMAL = "hot", ("normal-a", "normal-b")
POD_NAME, POD_CPU_MILLIS, POD_MEMORY = "checkout-6f9c7d5b8-x2klm", 2000, "4Gi"
WIDTH = 110  # the prose lines' (the table's rows are as wide as their cells)
FRESH_AGE_S = 20  # a fresh measurement: 20 s old, as a node agent reporting every 30 s leaves it


@dataclass(frozen=True)
class Role:
    node: str
    cpu_used: float  # fraction of the node's allocatable CPU
    memory_used: float
    small: bool = False  # a 2-core node instead of a 32-core one
    stale: bool = False  # measured 5 x staleAfterSeconds ago, not FRESH_AGE_S


ROLES = (
    Role("normal-a", 0.20, 0.35),
    Role("normal-b", 0.35, 0.45),
    Role(HOT, 0.70, 0.40),  # under the default usage threshold (80 %, with the pod's estimate)
    Role("overloaded", 0.90, 0.40),  # over it
    Role("stale", 0.30, 0.40, stale=True),
    Role("full", 0.10, 0.30, small=True),  # the pod's 2-CPU request does not fit 1,930m allocatable
)


def _rfc3339(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_nodes(policy: Policy, now: float) -> list[dict[str, Any]]:
    """The six Node objects, each with load annotations stamped relative to ``now``."""
    stale_age = 5 * policy.load.staleAfterSeconds
    nodes = []
    for i, role in enumerate(ROLES):
        size = (
            {"cpu": "2", "cpu_alloc": "1930m", "memory": "8042324Ki", "memory_alloc": "7137300Ki"}
            if role.small
            else {"cpu": "32", "cpu_alloc": "31850m", "memory": "131811256Ki", "memory_alloc": "129611256Ki"}
        )
        cpu_alloc = float(size["cpu_alloc"].rstrip("m"))
        memory_kib = float(size["memory_alloc"].rstrip("Ki"))
        age = stale_age if role.stale else FRESH_AGE_S
        annotations = {
            k8s_objects.LOAD_PREFIX + "cpu": f"{round(role.cpu_used * cpu_alloc)}m",
            k8s_objects.LOAD_PREFIX + "memory": f"{round(role.memory_used * memory_kib)}Ki",
            k8s_objects.LOAD_PREFIX + "updated": _rfc3339(now - age),
        }
        node = k8s_objects.node(i, annotations=annotations, images=3, **size)
        node["metadata"]["name"] = node["metadata"]["labels"]["kubernetes.io/hostname"] = role.node
        nodes.append(node)
    return nodes


def build_pod() -> dict[str, Any]:
    pod = k8s_objects.pod(
        POD_NAME, cpu=f"{POD_CPU_MILLIS}m", memory=POD_MEMORY, uid="5c0ffee0-0000-4000-8000-d3m0"
    )
    pod["metadata"].update(namespace="shop", labels={"app": "checkout"})
    return pod


def extender_args(pod: dict[str, Any], nodes: Sequence[dict[str, Any]]) -> bytes:
    """ExtenderArgs in the Nodes form, as kube-scheduler sends them to a stateless extender."""
    return json.dumps(
        {"Pod": pod, "Nodes": {"metadata": {}, "items": list(nodes)}, "NodeNames": None}
    ).encode()


def post(url: str, body: bytes) -> Any:
    """POST a JSON body; the decoded answer, or BenchmarkError on anything but a 200 with JSON."""
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise BenchmarkError(f"POST {url}: HTTP {exc.code}: {exc.read()[:500]!r}") from None
    except (OSError, ValueError) as exc:
        raise BenchmarkError(f"POST {url}: {exc}") from None


@dataclass
class Outcome:
    """What the three calls answered."""

    passing: list[str]
    failed: dict[str, str]  # FailedNodes and FailedAndUnresolvableNodes together
    scores: dict[str, int]  # prioritize, for the passing nodes
    explained: list[dict[str, Any]]  # /explain's nodes, best first

    def row(self, node: str) -> dict[str, Any]:
        return next(r for r in self.explained if r["node"] == node)


def ask(verbs_url: str, ops_url: str, pod: dict[str, Any], nodes: Sequence[dict[str, Any]]) -> Outcome:
    filtered = post(f"{verbs_url}/filter", extender_args(pod, nodes))
    if filtered.get("Error"):
        raise BenchmarkError(f"filter answered Error: {filtered['Error']}")
    passing = [item["metadata"]["name"] for item in (filtered.get("Nodes") or {}).get("items") or []]
    failed = {**(filtered.get("FailedNodes") or {}), **(filtered.get("FailedAndUnresolvableNodes") or {})}
    kept = [n for n in nodes if n["metadata"]["name"] in passing]
    scores = {p["Host"]: p["Score"] for p in post(f"{verbs_url}/prioritize", extender_args(pod, kept))}
    explained = post(f"{ops_url}/explain", extender_args(pod, nodes))["nodes"]
    return Outcome(passing, failed, scores, explained)


def check(out: Outcome, policy: Policy) -> list[str]:
    """What differs from what the shipped policy gives these nodes (empty: as expected)."""
    problems = []
    names = [role.node for role in ROLES]
    if sorted(out.passing + list(out.failed)) != sorted(names):
        problems.append(
            f"filter did not name each node once: passing {out.passing}, failed {sorted(out.failed)}"
        )
    if sorted(r["node"] for r in out.explained) != sorted(names):
        problems.append("/explain did not explain each node once")
        return problems
    for row in out.explained:
        name, ok = row["node"], row["verdict"] == "ok"
        if ok != (name in out.passing):
            problems.append(
                f"{name}: /explain says {row['verdict']}, filter {'passed' if ok else 'rejected'} it"
            )
        if name in out.scores and out.scores[name] != row["score"]:
            problems.append(f"{name}: prioritize scored {out.scores[name]}, /explain {row['score']}")
    expect = {
        "normal-a": ("ok", True),
        "normal-b": ("ok", True),
        "overloaded": ("usage_threshold", True),
        "stale": ("ok", False),
        "full": ("insufficient_resources", True),
    }
    for name, (verdict, usable) in expect.items():
        row = out.row(name)
        if (row["verdict"], row["loadUsable"]) != (verdict, usable):
            problems.append(
                f"{name}: expected verdict {verdict} with load data {'usable' if usable else 'stale'}, got "
                f"{row['verdict']} ({row['reason'] or 'no reason'}), load data "
                f"{'usable' if row['loadUsable'] else 'stale'}"
            )
    hot = out.row(HOT)
    for name in NORMAL:
        normal = out.row(name)
        if normal["verdict"] == "ok" and hot["verdict"] == "ok" and hot["score"] >= normal["score"]:
            problems.append(
                f"the hot node is not scored below {name}: {hot['score']} against {normal['score']} "
                f"(policy: {', '.join(f'{s.name} x{s.weight}' for s in policy.strategies)})"
            )
    return problems


# --- the explanation ---------------------------------------------------------------------------

RESOURCE_WORDS = {"cpu": "CPU"}


def _used(row: dict[str, Any], resource: str) -> float | None:
    """Measured usage plus this pod's estimate, as a fraction of allocatable (None: no data)."""
    x = row["inputs"][resource]
    if x["usage"] is None or not x["allocatable"]:
        return None
    return float(x["usage"] + (x["pending"] or 0) + x["podEstimate"]) / x["allocatable"]


def why_hot_lost(out: Outcome, resources: Sequence[str] = ("cpu", "memory")) -> str:
    """One sentence from the explanation: why ``hot`` scored below the best node with fresh load
    data that outranked it (the strategy whose weighted scores differ most, and the resource
    whose load differs most), or why the filter rejected it."""
    hot = out.row(HOT)
    if hot["verdict"] != "ok":
        return f"{HOT} lost at the filter: {hot['reason']}."
    above = out.explained[: out.explained.index(hot)]
    rival = next((r for r in above if r["verdict"] == "ok" and r["loadUsable"]), None)
    if rival is None:
        return f"{HOT} was outranked by no node with fresh load data."
    mine = {s["name"]: s for s in hot["strategies"] if s["counted"]}
    theirs = {s["name"]: s for s in rival["strategies"] if s["counted"]}
    shared = [name for name in mine if name in theirs]
    gaps = {name: mine[name]["weight"] * (theirs[name]["score"] - mine[name]["score"]) for name in shared}
    decisive = max(gaps, key=lambda name: gaps[name])
    if hot["score"] >= rival["score"] or gaps[decisive] <= 0:
        return (
            f"{HOT} did not lose on load: it scored {hot['score']} of 10 as {rival['node']} did "
            f"({rival['score']}), the counted strategies ({', '.join(shared)}) not telling them apart."
        )
    same = [f"{name} {mine[name]['score']}" for name in shared if gaps[name] == 0]
    loads = {r: (_used(hot, r), _used(rival, r)) for r in resources}
    known = {r: (h, o) for r, (h, o) in loads.items() if h is not None and o is not None}
    because = ""
    if known:
        r = max(known, key=lambda r: abs(known[r][0] - known[r][1]))
        because = (
            f", because its measured {RESOURCE_WORDS.get(r, r)} plus this pod's estimate comes to "
            f"{known[r][0]:.0%} of allocatable against {known[r][1]:.0%} on {rival['node']}"
        )
    tie = f"; the other strategies scored both nodes the same ({', '.join(same)})" if same else ""
    return (
        f"{HOT} lost to {rival['node']} ({hot['score']} against {rival['score']} of 10) on "
        f"{decisive} (weight {mine[decisive]['weight']}), which gave it {mine[decisive]['score']} "
        f"out of 100 against {theirs[decisive]['score']}{because}{tie}."
    )


def fallback_notes(out: Outcome, policy: Policy) -> list[str]:
    """A line per node scored without its load data: its age and what the strategies did."""
    lines = []
    for row in out.explained:
        if row["verdict"] == "ok" and not row["loadUsable"]:
            notes = sorted({f"{s['name']}: {s['note']}" for s in row["strategies"] if s["note"]})
            age = f"{_age(row['loadAgeSeconds'])} old (stale after {policy.load.staleAfterSeconds:g} s)"
            lines.append(f"{row['node']}: load data {age}; {'; '.join(notes)}.")
    return lines


# --- the table -----------------------------------------------------------------------------------


def _pct(row: dict[str, Any], resource: str) -> str:
    x = row["inputs"][resource]
    if x["usage"] is None or not x["allocatable"]:
        return "-"
    return f"{x['usage'] / x['allocatable']:.0%}"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _strategy_cell(s: dict[str, Any]) -> str:
    if s["counted"]:
        return str(s["score"])
    return "fallback" if "fallback" in s["note"] else "-"


def table(out: Outcome, policy: Policy) -> list[str]:
    """One row per node, best first: measured load and its age, prioritize's score, each
    strategy's 0..100, the filter's verdict with /explain's reason."""
    strategies = [s for s in policy.strategies if s.weight > 0]
    head = ["#", "node", "CPU used", "memory used", "load age", "score"]
    head += [f"{s.name} x{s.weight}" for s in strategies] + ["filter"]
    rows = []
    for rank, row in enumerate(out.explained, 1):
        by_name = {s["name"]: s for s in row["strategies"]}
        filtered = row["verdict"] != "ok"
        rows.append(
            [
                str(rank),
                row["node"],
                _pct(row, "cpu"),
                _pct(row, "memory"),
                _age(row["loadAgeSeconds"]) + ("" if row["loadUsable"] else " (stale)"),
                "-" if filtered else str(out.scores.get(row["node"], "?")),
                *("-" if filtered else _strategy_cell(by_name[s.name]) for s in strategies),
                f"fail: {row['reason']}" if filtered else "pass",
            ]
        )
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    left = {1, len(head) - 1}

    def line(cells: list[str]) -> str:
        padded = (
            cell.ljust(w) if c in left else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    rule = ["-" * w for w in widths[:-1]] + ["-" * len(head[-1])]
    return [line(head), line(rule), *(line(r) for r in rows)]


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def report(out: Outcome, policy: Policy, policy_path: Path, urls: tuple[str, str]) -> list[str]:
    thresholds = ", ".join(f"{r} {v} %" for r, v in policy.filters.usageThresholds.items() if v)
    failed = ", ".join(out.failed)
    return [
        f"policy {_shown(policy_path)}: usage threshold {thresholds or 'off'}; load data stale after "
        f"{policy.load.staleAfterSeconds:g} s (then: {policy.load.fallback})",
        f"pod shop/{POD_NAME}: requests {POD_CPU_MILLIS / 1000:g} CPU, {POD_MEMORY} memory",
        "",
        f"POST {urls[0]}/filter      {len(ROLES)} nodes: {len(out.passing)} pass"
        + (f", {len(out.failed)} fail ({failed})" if out.failed else ""),
        f"POST {urls[0]}/prioritize  the {len(out.passing)} that passed: "
        + ", ".join(f"{h} {s}" for h, s in sorted(out.scores.items(), key=lambda hs: -hs[1])),
        f"POST {urls[1]}/explain     {len(ROLES)} nodes, best first:",
        "",
        *table(out, policy),
        "",
        "CPU/memory used: the node's load annotations (measured usage / allocatable); score: prioritize's",
        "0..10, the weighted mean of the strategies' 0..100 mapped to 0..10; fallback: not counted.",
        "",
        *(textwrap.fill(note, WIDTH, subsequent_indent="  ") for note in fallback_notes(out, policy)),
        textwrap.fill("Why: " + why_hot_lost(out), WIDTH, subsequent_indent="  "),
    ]


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: the server is stopped on the way out


def run(args: argparse.Namespace, write: Callable[[str], None] = print) -> int:
    started = time.monotonic()
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        write(f"demo: {exc}")
        return 2
    extra = ["--policy", str(args.policy)]
    write("demo: starting the extender (stateless, no API access, on free loopback ports) ...")
    try:
        with running_server("--no-api", "--debug-endpoints", *extra, timeout_s=45.0) as server:
            out = ask(server.url, server.ops_url, build_pod(), build_nodes(policy, time.time()))
            write("")
            for text in report(out, policy, args.policy, (server.url, server.ops_url)):
                write(text)
            problems = check(out, policy)
            if args.keep_running:
                write("")
                write(f"verbs on {server.url}, operations on {server.ops_url}; Ctrl-C stops the server")
                signal.pause()
    except BenchmarkError as exc:
        write(f"demo: {exc}")
        return 1
    write("")
    if problems:
        write("UNEXPECTED ANSWERS (the extender did not decide as the shipped policy should):")
        for p in problems:
            write(f"  - {p}")
        return 1
    write(f"demo: done in {time.monotonic() - started:.1f} s; the server is stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "--policy",
        type=Path,
        default=DEFAULT_POLICY_PATH,
        help="policy file (default config/extender-policy.yaml)",
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="keep the server up after the table, until Ctrl-C"
    )
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
