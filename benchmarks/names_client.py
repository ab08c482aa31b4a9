"""The client side of the ``names`` benchmark: the bodies it sends, the answers it checks, the
phases it times and the server metrics it samples between calls."""

from __future__ import annotations

import contextlib
import math
import statistics
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from benchmarks.harness import (
    Client,
    Reply,
    Server,
    check_prioritize,
    decode_filter,
    pct,
    proc_counters,
    runqueue_wait_s,
)
from benchmarks.names_fake import FakeAPIProcess
from benchmarks.names_objects import pending_pod
from benchmarks.sampling import num_feasible_nodes_to_find

# --- the client side ------------------------------------------------------------------------------

SAMPLE_EVERY_S = 0.5  # /metrics (and the fake's counters) between calls, at most this often


def check_names_filter(reply: Reply, names: frozenset[str]) -> dict[str, int]:
    """HTTP 200, ``Nodes`` null, no Error; NodeNames, FailedNodes and FailedAndUnresolvableNodes
    name every request node exactly once between them (``harness.decode_filter``)."""
    return decode_filter(reply, names, names_form=True).counts()


def metrics_snapshot(server: Server) -> dict[str, float]:
    """Every sample of /metrics, keyed by ``name{labels}`` as exposed."""
    with urllib.request.urlopen(f"{server.ops_url}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[key] = float(value)
    return out


POD_EVENTS = 'extender_informer_events_total{kind="pods",what="event"}'
SNAPSHOT_AGE = "extender_cache_snapshot_age_seconds"
FALLBACK = "extender_load_fallback_nodes_total"


def _informer(m: dict[str, float], what: str) -> float:
    return sum(
        m.get(f'extender_informer_events_total{{kind="{k}",what="{what}"}}', 0.0) for k in ("nodes", "pods")
    )


@dataclass
class Phase:
    """One measurement (steady or churn) at one size: per verb, client and server ms."""

    nodes: int
    phase: str
    client_ms: dict[str, list[float]] = field(default_factory=lambda: {"filter": [], "prioritize": []})
    server_ms: dict[str, list[float]] = field(default_factory=lambda: {"filter": [], "prioritize": []})
    # the answering thread's CPU (Server-Timing cpu): server ms well above it is time spent waiting
    server_cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {"filter": [], "prioritize": []})
    answer: dict[str, dict[str, int]] = field(default_factory=dict)
    unresolvable_max: int = 0
    seconds: float = 0.0
    samples: list[dict[str, Any]] = field(default_factory=list)  # periodic /metrics (+ fake) readings
    extender_cpu_s: float | None = None
    extender_wait_s: float | None = None  # the worker's threads runnable but without a CPU
    cache_process_cpu_s: float | None = None  # the worker's children (EXTENDER_CACHE_PROCESS)
    fallback_nodes: float | None = None
    events_base: float = 0.0  # the extender's pod event counter just before the churn started

    def verb_summary(self, verb: str) -> dict[str, Any]:
        c, s, cpu = self.client_ms[verb], self.server_ms[verb], self.server_cpu_ms[verb]
        return {
            "nodes": self.nodes,
            "phase": self.phase,
            "verb": verb,
            "calls": len(c),
            "client_ms": {"p50": statistics.median(c), "p99": pct(c, 99), "max": max(c)},
            "server_ms": ({"p50": statistics.median(s), "p99": pct(s, 99), "max": max(s)} if s else None),
            "server_cpu_ms": ({"p50": statistics.median(cpu), "p99": pct(cpu, 99)} if cpu else None),
            "answer": self.answer.get(verb, {}),
        }


Body = Callable[[int], tuple[bytes, frozenset[str]]]


def _bodies(names: Sequence[str], percentage: int = 100) -> Body:
    """(ExtenderArgs in the NodeNames form, Go field order Pod, Nodes, NodeNames; the names it
    carries) for cycle k. ``percentage`` 100: every node in every call (kube-scheduler with
    ``percentageOfNodesToScore: 100``), the same list each time; otherwise kube-scheduler's
    sample (``benchmarks.sampling``; 0 = its adaptive default): ``numFeasibleNodesToFind`` names
    from a start that moves on by as many each cycle (every node fits the benchmark's pod, so
    the search examines exactly that many), a different list every call."""
    n = len(names)
    want = n if percentage == 100 else num_feasible_nodes_to_find(n, percentage)
    if want >= n:
        tail, every = orjson.dumps(list(names)), frozenset(names)

        def body(k: int) -> tuple[bytes, frozenset[str]]:
            return b'{"Pod":' + orjson.dumps(
                pending_pod(k)
            ) + b',"Nodes":null,"NodeNames":' + tail + b"}", every

        return body

    def sampled(k: int) -> tuple[bytes, frozenset[str]]:
        start = k * want % n
        window = [names[(start + i) % n] for i in range(want)]
        return (
            b'{"Pod":'
            + orjson.dumps(pending_pod(k))
            + b',"Nodes":null,"NodeNames":'
            + orjson.dumps(window)
            + b"}",
            frozenset(window),
        )

    return sampled


def _run_phase(
    server: Server,
    client: Client,
    fake: FakeAPIProcess | None,
    phase: Phase,
    names: Sequence[str],
    body: Body,
    first_cycle: int,
    calls: int,
    min_seconds: float,
    max_seconds: float = math.inf,
) -> int:
    """``calls`` filter + prioritize pairs (and more until ``min_seconds`` passed; fewer if
    ``max_seconds`` passed first), checking each answer; /metrics (and the fake's counters)
    sampled between calls. Returns the next cycle."""
    worker = server.worker_pid()
    cpu0, wait0 = proc_counters(worker), runqueue_wait_s(worker)
    helpers = server.cache_pids()
    helpers_cpu0 = _cpu_s(helpers)
    k = first_cycle
    start = last_sample = time.monotonic()
    _sample(server, fake, phase, 0.0)
    done = 0
    while done == 0 or (
        (done < calls or time.monotonic() - start < min_seconds) and time.monotonic() - start < max_seconds
    ):
        data, name_set = body(k)
        k += 1
        for verb in ("filter", "prioritize"):
            reply = client.post(f"/{verb}", data)
            if verb == "filter":
                answer = check_names_filter(reply, name_set)
                phase.unresolvable_max = max(phase.unresolvable_max, answer["unresolvable"])
            else:
                answer = check_prioritize(reply, name_set)
            phase.answer[verb] = answer
            phase.client_ms[verb].append(reply.wall_ms)
            if reply.server_ms is not None:
                phase.server_ms[verb].append(reply.server_ms)
            if reply.server_cpu_ms is not None:
                phase.server_cpu_ms[verb].append(reply.server_cpu_ms)
        done += 1
        now = time.monotonic()
        if now - last_sample >= SAMPLE_EVERY_S:
            _sample(server, fake, phase, now - start)
            last_sample = now
    phase.seconds = time.monotonic() - start
    _sample(server, fake, phase, phase.seconds)
    cpu1, wait1 = proc_counters(worker), runqueue_wait_s(worker)
    if cpu0 is not None and cpu1 is not None:
        phase.extender_cpu_s = (cpu1.user_s + cpu1.system_s) - (cpu0.user_s + cpu0.system_s)
    if wait0 is not None and wait1 is not None:
        phase.extender_wait_s = wait1 - wait0
    if helpers:
        phase.cache_process_cpu_s = _cpu_s(helpers) - helpers_cpu0
    first, last = phase.samples[0]["metrics"], phase.samples[-1]["metrics"]
    if FALLBACK in first and FALLBACK in last:
        phase.fallback_nodes = last[FALLBACK] - first[FALLBACK]
    return k


def _cpu_s(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) of ``pids``, summed; a process that is gone counts 0."""
    counters = [proc_counters(pid) for pid in pids]
    return sum(c.user_s + c.system_s for c in counters if c is not None)


def _sample(server: Server, fake: FakeAPIProcess | None, phase: Phase, t: float) -> None:
    m = metrics_snapshot(server)
    entry: dict[str, Any] = {
        "t": t,
        "metrics": {key: m.get(key) for key in (POD_EVENTS, SNAPSHOT_AGE, FALLBACK)},
    }
    entry["metrics"].update(
        {f"informer_{w}": _informer(m, w) for w in ("relist", "restart", "error", "malformed")}
    )
    if fake is not None:
        entry["fake"] = fake.call("stats")
    phase.samples.append(entry)
