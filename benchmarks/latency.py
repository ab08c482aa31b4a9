"""The extender over HTTP as kube-scheduler calls it: ``python -m benchmarks latency``.

It drives the real server, started exactly as a user starts it (``python -m extender serve``:
gunicorn, one gthread worker), over loopback, the way kube-scheduler calls an extender
(``benchmarks.harness``): one call at a time on a keep-alive connection. It runs kube-scheduler's scheduling
cycle (``benchmarks.driver``)
in both ``nodeCacheCapable`` forms: full Node objects from ``benchmarks.k8s_objects``
(stateless), or node names against the cluster-cache extender on the fake API server of
``benchmarks.names_fake``.

Nothing is pinned: client and server share whatever cores the machine has, and the figures
say so. See benchmarks/README.md for how to read them.
"""

import argparse
import contextlib
import dataclasses
import gc
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks import k8s_objects, names, names_fake, names_objects
from benchmarks.driver import (
    FALLBACK,
    Call,
    Cycle,
    Form,
    HTTPExtender,
    NodeBodies,
    PendingPod,
    Scheduler,
    _cpu_ms,
    view_from_api,
    view_from_objects,
)
from benchmarks.harness import (
    DEFAULT_OUT,
    WARMUP_CALLS,
    BenchmarkError,
    Client,
    Server,
    _command,
    _non_negative,
    _percentage,
    _positive,
    _rfc3339,
    _seconds,
    _sizes,
    _write,
    facts_lines,
    machine_facts,
    metric_value,
    pct,
    proc_counters,
    running_server,
)
from benchmarks.latency_report import (
    TARGET_NODES,
    TARGET_RATIO,
    calls_table,
    cycles_table,
    floor_table,
    latency_notes,
    run_line,
    target_line,
)
from benchmarks.sampling import num_feasible_nodes_to_find

# --- latency: kube-scheduler's cycle against the real extender (benchmarks/driver.py) --------------

FORMS = ("stateless", "names")  # nodeCacheCapable false / true
DEFAULT_SIZES = (100, 1000, 5000, 10000)
QUICK_PLAN = (("stateless", 100), ("stateless", 1000), ("names", 200))
DEFAULT_PODS, QUICK_PODS = 100, 10
DEFAULT_PODS_PER_NODE, QUICK_PODS_PER_NODE = 10, 5
DEFAULT_WEIGHT = 3  # the extender's weight in config/scheduler/secondary-scheduler.yaml
DEFAULT_HTTP_TIMEOUT_S = 5.0  # k/k pkg/scheduler/extender.go DefaultExtenderTimeout


def add_latency_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"stateless 100 and 1,000 nodes, names 200 nodes; {QUICK_PODS} pods, "
        f"{QUICK_PODS_PER_NODE} running pods per node",
    )
    p.add_argument(
        "--sizes",
        type=_sizes,
        help=f"node counts, each in every form (default {','.join(map(str, DEFAULT_SIZES))})",
    )
    p.add_argument(
        "--forms",
        type=_forms,
        default=FORMS,
        help="stateless (nodeCacheCapable: false, "
        "Node objects), names (true, NodeNames, cluster-cache mode); default both",
    )
    p.add_argument(
        "--pods",
        type=_positive,
        help=f"pods scheduled and measured per size and form (default "
        f"{DEFAULT_PODS}; {QUICK_PODS} with --quick)",
    )
    p.add_argument(
        "--warmup",
        type=_non_negative,
        default=WARMUP_CALLS,
        help=f"pods scheduled first, not measured (default {WARMUP_CALLS})",
    )
    p.add_argument(
        "--pods-per-node",
        type=_positive,
        help="names form: running pods per node in the fake "
        f"API server (default {DEFAULT_PODS_PER_NODE}; {QUICK_PODS_PER_NODE} with --quick)",
    )
    p.add_argument(
        "--weight",
        type=_positive,
        default=DEFAULT_WEIGHT,
        help=f"the extender's weight (default "
        f"{DEFAULT_WEIGHT}, as in config/scheduler/secondary-scheduler.yaml)",
    )
    p.add_argument(
        "--http-timeout",
        type=_seconds,
        default=DEFAULT_HTTP_TIMEOUT_S,
        help=f"the scheduler's httpTimeout per call, seconds (default {DEFAULT_HTTP_TIMEOUT_S:g}, "
        "kube-scheduler's default)",
    )
    p.add_argument(
        "--percentage",
        type=_percentage,
        default=0,
        help="percentageOfNodesToScore (default 0: adaptive, 50 - nodes/125, at least 5)",
    )
    p.add_argument("--seed", type=int, default=1, help="cluster, running pods and tie-breaks (default 1)")
    p.add_argument(
        "--ready-timeout",
        type=_seconds,
        default=600.0,
        help="names form: seconds to wait for "
        "the fake API server to build and the extender's first sync (default 600)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for the JSON and Markdown results (default benchmarks/results/, gitignored)",
    )


def _forms(text: str) -> tuple[str, ...]:
    forms = tuple(x.strip() for x in text.split(",") if x.strip())
    if not forms or set(forms) - set(FORMS):
        raise argparse.ArgumentTypeError(f"forms are {', '.join(FORMS)}, got {text!r}")
    return tuple(f for f in FORMS if f in forms)


def latency_plan(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(form, nodes) in the order measured: every stateless size (one server), then every names
    size (a fake API server and an extender each)."""
    if args.sizes:
        return [(form, n) for form in args.forms for n in args.sizes]
    if args.quick:
        return [(form, n) for form, n in QUICK_PLAN if form in args.forms]
    return [(form, n) for form in args.forms for n in DEFAULT_SIZES]


def run_latency(args: argparse.Namespace) -> int:
    """kube-scheduler's scheduling cycle against the real extender (benchmarks/driver.py): per
    pod the in-tree search for numFeasibleNodesToFind nodes from a rotating start, the extender's
    filter, prioritize (skipped for one node left; its score x weight x 10 added to the in-tree
    LeastAllocated + BalancedAllocation) and, in the names form, bind; every call within the
    scheduler's httpTimeout and checked. Per verb and form: latency percentiles, calls/s, body
    sizes, the server's CPU per call; in the stateless form also the server time against
    orjson.loads of the same body."""
    plan = latency_plan(args)
    quick = args.quick and not args.sizes
    settings = Settings(
        pods=args.pods or (QUICK_PODS if args.quick else DEFAULT_PODS),
        warmup=args.warmup,
        weight=args.weight,
        timeout_s=args.http_timeout,
        percentage=args.percentage,
        seed=args.seed,
        pods_per_node=args.pods_per_node or (QUICK_PODS_PER_NODE if args.quick else DEFAULT_PODS_PER_NODE),
        ready_timeout_s=args.ready_timeout,
    )
    command = _command(args)
    facts: dict[str, Any] = {}

    def remember(server: Server) -> None:
        if not facts:
            facts.update(machine_facts(server))
            print("\n".join(facts_lines(command, facts)), flush=True)

    runs = []
    try:
        with sigterm_unwinds():
            stateless = [n for form, n in plan if form == "stateless"]
            if stateless:
                with running_server("--no-api") as server:
                    remember(server)
                    for n in stateless:
                        print(f"{n:,} nodes, stateless form: {settings.pods} pods ...", flush=True)
                        runs.append(run_stateless(server, n, settings))
                        print(run_line(runs[-1]), flush=True)
            for n in (n for form, n in plan if form == "names"):
                print(
                    f"{n:,} nodes x {settings.pods_per_node} pods, names form: {settings.pods} pods ...",
                    flush=True,
                )
                runs.append(run_names(n, settings, remember))
                print(run_line(runs[-1]), flush=True)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    facts["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    rows = [
        summary
        for run in runs
        for verb in ("filter", "prioritize", "bind")
        if (summary := run.verb_summary(verb)) is not None
    ]
    cycles = [run.summary() for run in runs]
    text = "\n".join(
        [
            "",
            calls_table(rows),
            "",
            floor_table(rows),
            "",
            cycles_table(cycles),
            "",
            target_line(rows),
            *latency_notes(rows, cycles, facts),
            "",
        ]
    )
    print(text)
    record = {
        "benchmark": "latency",
        "command": command,
        "machine": facts,
        "config": {
            "plan": plan,
            "quick": quick,
            **dataclasses.asdict(settings),
            "target": {"nodes": TARGET_NODES, "ratio": TARGET_RATIO},
        },
        "rows": rows,
        "runs": [run.record() for run in runs],
    }
    markdown = "\n".join(["```", *facts_lines(command, facts), "```", text])
    json_path, md_path = _write(args.out, "latency", record, markdown)
    print(f"written: {json_path} and {md_path}")
    return 0


# --- one size in one form --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every size and form share (the ``latency`` arguments)."""

    pods: int  # scheduled and measured per size and form
    warmup: int  # scheduled first, not measured
    weight: int  # the extender's weight
    timeout_s: float  # httpTimeout
    percentage: int  # percentageOfNodesToScore, 0 = adaptive
    seed: int
    pods_per_node: int  # names form: running pods per node in the fake API server
    ready_timeout_s: float


@dataclasses.dataclass
class FormRun:
    """The measured pods of one size in one form."""

    form: Form
    nodes: int
    sample: int  # numFeasibleNodesToFind
    calls: dict[str, list[Call]]
    cycles: list[Cycle]
    seconds: float  # wall time of the measured cycles, the driver's own work included
    server_cpu_ms: float | None  # the worker's CPU over the measured cycles, between calls included
    answers: dict[str, dict[str, int]]
    fallback_nodes: float | None  # nodes the extender scored with the requests-only fallback
    setup: dict[str, Any] = dataclasses.field(default_factory=dict)

    def verb_summary(self, verb: str) -> dict[str, Any] | None:
        """Per-call figures of one verb (None if it was never called)."""
        calls = self.calls[verb]
        if not calls:
            return None
        wall = [c.wall_ms for c in calls]
        server = [c.server_ms for c in calls if c.server_ms is not None]
        cpu = [c.cpu_ms for c in calls if c.cpu_ms is not None]
        out: dict[str, Any] = {
            "nodes": self.nodes,
            "form": self.form,
            "verb": verb,
            "calls": len(calls),
            "timeouts": sum(c.timed_out for c in calls),
            "nodes_per_call": _spread([c.nodes for c in calls]),
            "request_bytes": _spread([c.request_bytes for c in calls]),
            "response_bytes": _spread([c.response_bytes for c in calls]),
            "client_ms": _percentiles(wall),
            "calls_per_s": len(wall) / (sum(wall) / 1e3),
            "server_ms": _percentiles(server) if server else None,
            "server_cpu_ms_per_call": sum(cpu) / len(cpu) if cpu else None,
            "answer": self.answers.get(verb, {}),
        }
        floors = [c for c in calls if c.floor_ms is not None and c.server_ms is not None]
        if floors:
            floor = statistics.median(c.floor_ms for c in floors if c.floor_ms is not None)
            nogc = statistics.median(c.floor_nogc_ms for c in floors if c.floor_nogc_ms is not None)
            srv = statistics.median(c.server_ms for c in floors if c.server_ms is not None)
            out.update(
                {
                    "orjson_loads_ms": {"p50": floor},
                    "orjson_loads_gc_disabled_ms": {"p50": nogc},
                    "ratio_server_orjson_p50": srv / floor,
                    "ratio_server_orjson_gc_disabled_p50": srv / nogc,
                }
            )
        return out

    def summary(self) -> dict[str, Any]:
        """Per size and form: what the cycles did and what the extender cost per pod."""
        outcomes = [c.outcome for c in self.cycles]
        passed = [c.passed for c in self.cycles if c.passed is not None]
        extender_s = sum(c.wall_ms for calls in self.calls.values() for c in calls) / 1e3
        pods = len(self.cycles)
        return {
            "nodes": self.nodes,
            "form": self.form,
            "pods": pods,
            "sample": self.sample,
            "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))},
            "sampled": _spread([c.sampled for c in self.cycles]),
            "passed_extender_filter": _spread(passed) if passed else None,
            "prioritized": sum(c.prioritized for c in self.cycles),
            "prioritize_skipped_one_node": sum(c.passed == 1 for c in self.cycles),
            "prioritize_errors": sum(c.prioritize_error for c in self.cycles),
            "ties": sum(c.ties > 1 for c in self.cycles),
            "distinct_hosts": len({c.host for c in self.cycles if c.host}),
            "extender_ms_per_pod": extender_s * 1e3 / pods if pods else None,
            "pods_per_s_extender": pods / extender_s if extender_s else None,
            "pods_per_s_loop": pods / self.seconds if self.seconds else None,
            "server_cpu_ms_per_pod": (
                self.server_cpu_ms / pods if self.server_cpu_ms is not None and pods else None
            ),
            "fallback_nodes": self.fallback_nodes,
            "setup": self.setup,
        }

    def record(self) -> dict[str, Any]:
        """Everything, each call and each cycle included (the JSON)."""
        return {
            **self.summary(),
            "calls": {v: [dataclasses.asdict(c) for c in cs] for v, cs in self.calls.items()},
            "cycles": [dataclasses.asdict(c) for c in self.cycles],
        }


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(values),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": max(values),
    }


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"p50": statistics.median(values), "max": max(values)}


def pending_pods(count: int) -> list[PendingPod]:
    """The pods to schedule: ``names_objects.pending_pod(k)`` (500m / 512 Mi, a UID each), which the
    names form's fake API server holds unbound."""
    return [PendingPod.from_object(names_objects.pending_pod(k)) for k in range(count)]


def schedule(
    sched: Scheduler, ext: HTTPExtender, pods: Sequence[PendingPod], warmup: int, worker: int | None
) -> tuple[list[Cycle], float, float | None]:
    """Cycles for ``pods``, the first ``warmup`` unrecorded; (measured cycles, their wall
    seconds, the worker's CPU ms over them)."""
    for pod in pods[:warmup]:
        sched.schedule_one(pod)
    ext.recording = True
    cpu0, t0 = proc_counters(worker), time.perf_counter()
    cycles = [sched.schedule_one(pod) for pod in pods[warmup:]]
    seconds, cpu1 = time.perf_counter() - t0, proc_counters(worker)
    return cycles, seconds, _cpu_ms(cpu0, cpu1)


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C meanwhile, so that the extender and the fake API server
    (child processes) are stopped."""
    previous = signal.signal(signal.SIGTERM, names._terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fallback(server: Server, before: float | None) -> float | None:
    after = metric_value(server, FALLBACK)
    return None if before is None or after is None else after - before


def run_stateless(server: Server, n: int, s: Settings) -> FormRun:
    """``n`` realistic Nodes (``k8s_objects.cluster``, fresh load) against a ``--no-api``
    extender: the Nodes form, no bind."""
    t0 = time.perf_counter()
    items = k8s_objects.cluster(n, seed=s.seed)
    stamp = _rfc3339(time.time())
    for item in items:
        item["metadata"]["annotations"][k8s_objects.LOAD_PREFIX + "updated"] = stamp
    bodies = NodeBodies([orjson.dumps(item) for item in items], stamp)
    view = view_from_objects(items, random.Random(s.seed * 7919 + n))
    del items
    gc.collect()  # no large object graph left for the floor's garbage collections
    worker = server.worker_pid()
    client = Client(server.host, server.port, timeout_s=s.timeout_s)
    ext = HTTPExtender(
        client, view.names, form="stateless", timeout_s=s.timeout_s, bodies=bodies, worker=worker, floor=True
    )
    sched = Scheduler(view, ext, s.weight, random.Random(s.seed), s.percentage)
    build_s = time.perf_counter() - t0
    try:
        before = metric_value(server, FALLBACK)
        cycles, seconds, cpu = schedule(sched, ext, pending_pods(s.warmup + s.pods), s.warmup, worker)
        fallback = _fallback(server, before)
    finally:
        client.close()
    setup = {"build_s": build_s, "node_json_bytes": sum(map(len, bodies.encoded))}
    return FormRun(
        "stateless",
        n,
        num_feasible_nodes_to_find(n, s.percentage),
        ext.calls,
        cycles,
        seconds,
        cpu,
        ext.answers,
        fallback,
        setup,
    )


def run_names(n: int, s: Settings, on_server: Callable[[Server], None]) -> FormRun:
    """``n`` Nodes with ``pods_per_node`` running pods each in the fake API server (its own
    process, ``names_fake.fake_api``), the extender in cluster-cache mode on it, the pods to
    schedule pending there: the NodeNames form, bound through the extender."""
    total = s.warmup + s.pods
    with (
        names_fake.fake_api(n, s.pods_per_node, timeout_s=s.ready_timeout_s, pending=total) as fake,
        tempfile.TemporaryDirectory(prefix="extender-bench-") as tmp,
    ):
        info = fake.info
        kubeconfig = names_fake._kubeconfig(Path(tmp) / "kubeconfig", fake.url)
        started = time.monotonic()
        with running_server(
            "--kubeconfig", str(kubeconfig), "--log-level", "warning", timeout_s=s.ready_timeout_s
        ) as server:
            ready_s, ready_text = names._wait_ready(server, started, s.ready_timeout_s)
            on_server(server)
            expected = f"{n} nodes, {info['pods'] - total} pods"  # pending pods are not counted on a node
            if expected not in ready_text:
                raise BenchmarkError(f"the extender's cache holds {ready_text!r}, expected {expected}")
            names._restamp_if_old(server, fake, info, n, s.ready_timeout_s)
            t0 = time.perf_counter()
            view = view_from_api(fake.url)
            view_s = time.perf_counter() - t0
            worker = server.worker_pid()
            client = Client(server.host, server.port, timeout_s=s.timeout_s)
            ext = HTTPExtender(
                client, view.names, form="names", timeout_s=s.timeout_s, worker=worker, binder=True
            )
            sched = Scheduler(view, ext, s.weight, random.Random(s.seed), s.percentage)
            try:
                before = metric_value(server, FALLBACK)
                cycles, seconds, cpu = schedule(sched, ext, pending_pods(total), s.warmup, worker)
                fallback = _fallback(server, before)
            finally:
                client.close()
    setup = {
        "fake_build_s": info["build_s"],
        "pods_running": info["pods"] - total,
        "extender_ready_s": ready_s,
        "driver_view_s": view_s,
    }
    return FormRun(
        "names",
        n,
        num_feasible_nodes_to_find(n, s.percentage),
        ext.calls,
        cycles,
        seconds,
        cpu,
        ext.answers,
        fallback,
        setup,
    )
