"""kube-scheduler's scheduling cycle with one HTTP extender: the ``latency`` benchmark's client.

Per pod, what an unmodified kube-scheduler does with an extender that has ``filterVerb`` and
``prioritizeVerb`` (and, in the names form, ``bindVerb``); "k/k" is kubernetes/kubernetes:

1. In-tree Filter (here NodeResourcesFit's fit check, the only in-tree filter these pods and
   nodes can fail) over the nodes in order from ``nextStartNodeIndex``, stopping once
   ``numFeasibleNodesToFind`` nodes fit; the start index then moves on by the nodes examined
   (k/k ``pkg/scheduler/schedule_one.go`` ``findNodesThatPassFilters``,
   ``numFeasibleNodesToFind``, ``findNodesThatFitPod``).
2. The extender's filter with those nodes: full Node objects (``nodeCacheCapable: false``,
   "stateless") or names only (``true``, "names"); a failed call fails the pod's attempt
   (``findNodesThatPassExtenders``; k/k ``pkg/scheduler/extender.go`` ``Filter``).
3. No node left: unschedulable. One node: it is taken, nothing is scored ("When only one node
   after predicate, just use it", ``schedulePod``).
4. ``prioritizeNodes``: the in-tree Score plugins emulated here, NodeResourcesFit
   (LeastAllocated) and NodeResourcesBalancedAllocation, weight 1 each (the default profile),
   plus the extender's score x weight x (MaxNodeScore / MaxExtenderPriority) = x weight x 10;
   a failed prioritize call just gives no extender scores (``extender.go`` ``Prioritize``).
5. The highest total wins, ties broken at random (``nodeScoreHeap``'s ``Randomizer``; before
   it, ``selectHost``'s reservoir sampling: the same uniform choice).
6. The pod is assumed on the node in the scheduler's view, then bound: by the extender in the
   names form (``extendersBinding``, ``extender.go`` ``Bind``); a failed bind forgets it.

Every HTTP call has the scheduler's deadline (``httpTimeout``, default 5 s, Go's
``http.Client.Timeout``): past it the call counts as a timeout, never a hang. Every answer is
checked (``harness.decode_filter`` / ``decode_prioritize`` / ``check_bind``); a wrong one is a
``BenchmarkError``. kube-scheduler binds asynchronously, overlapping the next pods' calls; here
the bind follows the cycle, so that each call's server CPU time is its own (the ``workers``
benchmark measures the overlap).
"""

from __future__ import annotations

import dataclasses
import gc
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import orjson

from benchmarks import k8s_objects
from benchmarks.harness import (
    CallTimeout,
    Client,
    ProcCounters,
    Reply,
    _rfc3339,
    check_bind,
    decode_filter,
    decode_prioritize,
    proc_counters,
    time_calls,
)
from benchmarks.sampling import find_feasible, next_start_index, num_feasible_nodes_to_find
from extender.kube.demand import pod_demand, to_units
from extender.kube.objects import decode_node, decode_object_list, decode_pod
from scoring import MAX_EXTENDER_PRIORITY, NodeTable, PodDemand
from scoring.policy import BalancedAllocationArgs, ResourcesArgs
from scoring.strategies import MAX_NODE_SCORE, balanced_allocation, least_allocated
from scoring.types import BASE_RESOURCES, BoolArray, FloatArray

IntArray = npt.NDArray[np.intp]
Form = Literal["stateless", "names"]
VERBS = ("filter", "prioritize", "bind")

IN_TREE_WEIGHT = 1  # NodeResourcesFit and NodeResourcesBalancedAllocation in the default profile
FINISHED_PHASES = ("Succeeded", "Failed")  # the scheduler's pod informer leaves these out
FALLBACK = "extender_load_fallback_nodes_total"


# --- the scheduler's arithmetic (pure) ----------------------------------------------------------


def in_tree_scores(nodes: NodeTable, pod: PodDemand) -> npt.NDArray[np.int64]:
    """(N,) the in-tree Score plugins emulated, each 0..100 x its weight (1): NodeResourcesFit
    LeastAllocated and NodeResourcesBalancedAllocation with their default resources (cpu 1,
    memory 1), by the scoring core's exact ports, BalancedAllocation in the formula of the
    kube-scheduler release config/deploy deploys (the default ``formula``, v1.36);
    BalancedAllocation skips a pod requesting neither (its PreScore returns Skip)."""
    total = least_allocated(pod, nodes, ResourcesArgs()) * IN_TREE_WEIGHT
    balanced = balanced_allocation(pod, nodes, BalancedAllocationArgs())
    if balanced is not None:
        total = total + balanced * IN_TREE_WEIGHT
    return total


def combine_scores(
    in_tree: npt.NDArray[np.int64], extender: npt.NDArray[np.int64] | None, weight: int
) -> npt.NDArray[np.int64]:
    """Totals (k/k schedule_one.go ``prioritizeNodes``): in-tree plus the extender's score x
    weight x (MaxNodeScore / MaxExtenderPriority); scores are neither clamped nor checked there.
    ``extender`` None: the call failed, which only costs its scores."""
    if extender is None:
        return in_tree
    return in_tree + extender * weight * (MAX_NODE_SCORE // MAX_EXTENDER_PRIORITY)


def select_host(totals: npt.NDArray[np.int64], rng: random.Random) -> tuple[int, int]:
    """(index of the chosen node, how many shared the highest total): the highest total, ties
    broken uniformly at random (k/k schedule_one.go ``nodeScoreHeap``, a random key per node;
    ``selectHost``'s reservoir sampling before it)."""
    best = np.flatnonzero(totals == totals.max())
    return int(best[rng.randrange(len(best))]), len(best)


# --- the scheduler's view of the nodes ----------------------------------------------------------


@dataclasses.dataclass
class NodeView:
    """The scheduler's NodeInfo of every node, in its node order, as (N, 3) float64 arrays on
    ``BASE_RESOURCES`` (CPU millicores, memory bytes, pods): allocatable, the requests of the
    pods on the node, and the same with the non-zero defaults its scoring uses."""

    names: tuple[str, ...]
    allocatable: FloatArray
    requested: FloatArray
    nonzero_requested: FloatArray

    def __len__(self) -> int:
        return len(self.names)

    def fits(self, pod: PodDemand) -> BoolArray:
        """(N,) NodeResourcesFit's Filter (k/k noderesources/fit.go ``fitsRequest``): the pod
        slot and every resource the pod requests fit allocatable minus requested."""
        want = pod.requests
        short = np.asarray(((want > 0) & (want > self.allocatable - self.requested)).any(axis=1), dtype=bool)
        return ~short

    def table(self, rows: IntArray) -> NodeTable:
        """The rows as the scoring core's NodeTable (requests only: no load, no limits)."""
        return NodeTable.build(
            names=tuple(self.names[i] for i in rows),
            resources=BASE_RESOURCES,
            allocatable=self.allocatable[rows],
            requested=self.requested[rows],
            nonzero_requested=self.nonzero_requested[rows],
        )

    def assume(self, row: int, pod: PodDemand, sign: float = 1.0) -> None:
        """Count the pod on the node (the scheduler cache's AssumePod); ``sign`` -1 forgets it."""
        self.requested[row] += sign * pod.requests
        self.nonzero_requested[row] += sign * pod.nonzero_requests


def _allocatable(status: dict[str, Any] | None) -> list[float]:
    values = status or {}
    return [to_units(r)(values[r]) if r in values else 0.0 for r in BASE_RESOURCES]


def view_from_objects(nodes: Sequence[dict[str, Any]], rng: random.Random) -> NodeView:
    """The view of a stateless-form cluster: allocatable from the Node objects; the pods
    already running, which Node objects do not carry, drawn at random per node (CPU and memory
    requests 5-70 % of allocatable each, 5-40 pods, all with requests)."""
    alloc = np.array([_allocatable(n["status"]["allocatable"]) for n in nodes], dtype=np.float64)
    alloc = alloc.reshape(-1, 3)
    requested = np.zeros_like(alloc)
    for i in range(len(nodes)):
        requested[i] = (
            np.floor(alloc[i, 0] * rng.uniform(0.05, 0.70)),
            np.floor(alloc[i, 1] * rng.uniform(0.05, 0.70)),
            rng.randint(5, 40),
        )
    return NodeView(tuple(n["metadata"]["name"] for n in nodes), alloc, requested, requested.copy())


def _list(url: str, kind: str, page: int = 500) -> Iterator[bytes]:
    """Every object of ``kind`` from the API server, ``page`` at a time (the scheduler's
    informers list the same way)."""
    token = ""
    while True:
        query = urllib.parse.urlencode({"limit": page, **({"continue": token} if token else {})})
        with urllib.request.urlopen(f"{url}/api/v1/{kind}?{query}", timeout=120) as r:
            lst = decode_object_list(r.read())
        yield from lst.items
        token = lst.continue_token
        if not token:
            return


def view_from_api(url: str) -> NodeView:
    """The view of a names-form cluster, read from its API server as the scheduler's informers
    read it: the Nodes' allocatable, and the requests of every pod bound to a node and not
    finished (the scheduler's pod informer selects ``status.phase`` neither Succeeded nor
    Failed), added up as kube-scheduler does (``extender.kube.demand``)."""
    node_names, alloc = [], []
    for raw in _list(url, "nodes"):
        node = decode_node(raw)
        node_names.append(node.metadata.name if node.metadata else "")
        alloc.append(_allocatable(node.status.allocatable if node.status else None))
    row = {name: i for i, name in enumerate(node_names)}
    requested, nonzero = np.zeros((len(row), 3)), np.zeros((len(row), 3))
    for raw in _list(url, "pods"):
        pod = decode_pod(raw)
        where = row.get(pod.spec.nodeName if pod.spec else "")
        if where is None or (pod.status is not None and pod.status.phase in FINISHED_PHASES):
            continue
        demand = pod_demand(pod, BASE_RESOURCES, containers=False, assigned=True)
        requested[where] += demand.requests
        nonzero[where] += demand.nonzero_requests
    return NodeView(tuple(node_names), np.array(alloc, dtype=np.float64).reshape(-1, 3), requested, nonzero)


# --- one scheduling cycle ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PendingPod:
    """A pod to schedule: its identity, its JSON as the scheduler's informer holds it (the
    ``Pod`` of every ExtenderArgs) and what it requests."""

    name: str
    namespace: str
    uid: str
    body: bytes
    demand: PodDemand

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> PendingPod:
        raw = orjson.dumps(obj)
        pod = decode_pod(raw)
        meta = pod.metadata
        if meta is None:
            raise ValueError("a pending pod needs metadata")
        demand = pod_demand(pod, BASE_RESOURCES, containers=False)
        return cls(meta.name, meta.namespace, meta.uid, raw, demand)


class Extender(Protocol):
    """The extender as the cycle uses it; rows index the scheduler's NodeView."""

    def filter(self, pod: PendingPod, rows: IntArray) -> IntArray | None:
        """The rows that pass, in the answer's order; None: the call failed."""
        ...

    def prioritize(self, pod: PendingPod, rows: IntArray) -> npt.NDArray[np.int64] | None:
        """Scores aligned with ``rows``; None: the call failed."""
        ...

    def bind(self, pod: PendingPod, row: int) -> bool:
        """False: the bind failed."""
        ...


@dataclasses.dataclass
class Cycle:
    """What one scheduling cycle did. ``outcome``: bound, unschedulable, filter_error or
    bind_error."""

    pod: str
    sampled: int  # feasible in-tree, sent to the extender's filter
    processed: int  # nodes the in-tree search examined
    passed: int | None = None  # nodes the extender's filter passed (None: not reached or failed)
    prioritized: bool = False  # False: skipped (one node left) or not reached
    prioritize_error: bool = False
    ties: int = 0  # nodes sharing the highest total
    host: str | None = None
    outcome: str = ""


@dataclasses.dataclass
class Scheduler:
    """kube-scheduler's scheduling cycle against one extender (module docstring, steps 1-6)."""

    view: NodeView
    extender: Extender
    weight: int
    rng: random.Random
    percentage: int = 0  # percentageOfNodesToScore; 0 = adaptive
    next_start: int = 0  # nextStartNodeIndex

    def schedule_one(self, pod: PendingPod) -> Cycle:
        n = len(self.view)
        search = find_feasible(
            self.view.fits(pod.demand), self.next_start, num_feasible_nodes_to_find(n, self.percentage)
        )
        self.next_start = next_start_index(self.next_start, search.processed, n)
        cycle = Cycle(pod.name, len(search.rows), search.processed)
        if not len(search.rows):  # extenders are not called when no node fits in-tree
            cycle.outcome = "unschedulable"
            return cycle
        passing = self.extender.filter(pod, search.rows)
        if passing is None:
            cycle.outcome = "filter_error"
            return cycle
        cycle.passed = len(passing)
        if not len(passing):
            cycle.outcome = "unschedulable"
            return cycle
        row = self._choose(pod, passing, cycle)
        cycle.host = self.view.names[row]
        self.view.assume(row, pod.demand)
        if self.extender.bind(pod, row):
            cycle.outcome = "bound"
        else:
            self.view.assume(row, pod.demand, -1.0)
            cycle.outcome = "bind_error"
        return cycle

    def _choose(self, pod: PendingPod, passing: IntArray, cycle: Cycle) -> int:
        if len(passing) == 1:  # schedulePod: "When only one node after predicate, just use it."
            return int(passing[0])
        cycle.prioritized = True
        in_tree = in_tree_scores(self.view.table(passing), pod.demand)
        ext = self.extender.prioritize(pod, passing)
        cycle.prioritize_error = ext is None
        pick, cycle.ties = select_host(combine_scores(in_tree, ext, self.weight), self.rng)
        return int(passing[pick])


# --- the extender over HTTP ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Call:
    """One HTTP call. ``cpu_ms``: the server worker's user + system CPU time (all threads)
    from just before to just after the call, in 10 ms clock ticks (meaningful summed over
    many calls). ``floor_ms`` / ``floor_nogc_ms``: ``orjson.loads`` of the same request body
    in this process, GC as is / with the cyclic GC off (stateless form only)."""

    verb: str
    nodes: int
    request_bytes: int
    response_bytes: int
    wall_ms: float
    server_ms: float | None
    cpu_ms: float | None
    timed_out: bool
    floor_ms: float | None = None
    floor_nogc_ms: float | None = None


class NodeBodies:
    """Stateless form: every Node object encoded once (Go order, ~12 KB each), joined per
    request; their load annotations carry the build time, renewed to the current second in
    each request (stale load would send every node down the requests-only fallback)."""

    def __init__(self, encoded: Sequence[bytes], stamp: str) -> None:
        self.encoded = encoded
        self._stamp = self._key(stamp)

    @staticmethod
    def _key(stamp: str) -> bytes:
        return orjson.dumps({k8s_objects.LOAD_PREFIX + "updated": stamp})[1:-1]

    def items(self, rows: IntArray) -> bytes:
        joined = b",".join(self.encoded[i] for i in rows)
        return joined.replace(self._stamp, self._key(_rfc3339(time.time())))


def loads_floor(body: bytes) -> tuple[float, float]:
    """``orjson.loads(body)`` in ms: with the garbage collector as is (as the server runs),
    then with the cyclic collector off (the stricter floor)."""
    with_gc = time_calls(lambda: orjson.loads(body), 1)[0]
    gc.disable()
    try:
        without = time_calls(lambda: orjson.loads(body), 1)[0]
    finally:
        gc.enable()
    return with_gc, without


class HTTPExtender:
    """The extender over HTTP as kube-scheduler's client calls it (k/k pkg/scheduler/extender.go
    ``HTTPExtender``): ``POST <prefix>/<verb>``, ExtenderArgs with ``Nodes`` (stateless form)
    or ``NodeNames`` (names form), one call at a time on a keep-alive connection, each within
    ``timeout_s``. Records every call made while ``recording``."""

    def __init__(
        self,
        client: Client,
        node_names: Sequence[str],
        *,
        form: Form,
        timeout_s: float,
        bodies: NodeBodies | None = None,
        worker: int | None = None,
        floor: bool = False,
        binder: bool = False,
        prefix: str = "",
    ) -> None:
        if (form == "stateless") != (bodies is not None):
            raise ValueError("the stateless form, and only it, sends Node objects")
        self.client, self.names, self.form, self.timeout_s = client, node_names, form, timeout_s
        self.row = {name: i for i, name in enumerate(node_names)}
        self.bodies, self.worker, self.floor, self.binder, self.prefix = bodies, worker, floor, binder, prefix
        self.recording = False
        self.calls: dict[str, list[Call]] = {verb: [] for verb in VERBS}
        self.answers: dict[str, dict[str, int]] = {}  # the last answer of each verb, counted

    def args(self, pod: PendingPod, rows: IntArray) -> bytes:
        """ExtenderArgs in Go's field order (Pod, Nodes, NodeNames), the unused key null."""
        if self.bodies is None:
            return b'{"Pod":%s,"Nodes":null,"NodeNames":%s}' % (
                pod.body,
                orjson.dumps([self.names[i] for i in rows]),
            )
        return b'{"Pod":%s,"Nodes":{"metadata":{},"items":[%s]},"NodeNames":null}' % (
            pod.body,
            self.bodies.items(rows),
        )

    def filter(self, pod: PendingPod, rows: IntArray) -> IntArray | None:
        reply = self._call("filter", self.args(pod, rows), len(rows))
        if reply is None:
            return None
        sent = frozenset(self.names[i] for i in rows)
        outcome = decode_filter(reply, sent, names_form=self.form == "names")
        self.answers["filter"] = outcome.counts()
        return np.array([self.row[name] for name in outcome.passing], dtype=np.intp)

    def prioritize(self, pod: PendingPod, rows: IntArray) -> npt.NDArray[np.int64] | None:
        reply = self._call("prioritize", self.args(pod, rows), len(rows))
        if reply is None:
            return None
        scores = decode_prioritize(reply, frozenset(self.names[i] for i in rows))
        self.answers["prioritize"] = {"scored": len(scores)}
        return np.array([scores.get(self.names[i], 0) for i in rows], dtype=np.int64)

    def bind(self, pod: PendingPod, row: int) -> bool:
        """The extender binds in the names form; in the stateless form (``--no-api``) there is
        no binder extender, and kube-scheduler's DefaultBinder would call the API instead."""
        if not self.binder:
            return True
        body = orjson.dumps(
            {"PodName": pod.name, "PodNamespace": pod.namespace, "PodUID": pod.uid, "Node": self.names[row]}
        )
        reply = self._call("bind", body, 1)
        if reply is None:
            return False
        check_bind(reply, f"{pod.namespace}/{pod.name} to {self.names[row]}")
        self.answers["bind"] = {"bound": 1}
        return True

    def _call(self, verb: str, body: bytes, nodes: int) -> Reply | None:
        """One timed call; None when it timed out (``httpTimeout``)."""
        cpu0 = proc_counters(self.worker)
        reply: Reply | None
        try:
            reply = self.client.post(f"{self.prefix}/{verb}", body, deadline_s=self.timeout_s)
            wall_ms, server_ms = reply.wall_ms, reply.server_ms
        except CallTimeout as exc:
            reply, wall_ms, server_ms = None, exc.wall_ms, None
        cpu1 = proc_counters(self.worker)
        if self.recording:
            floor = loads_floor(body) if self.floor else (None, None)
            self.calls[verb].append(
                Call(
                    verb,
                    nodes,
                    len(body),
                    len(reply.body) if reply else 0,
                    wall_ms,
                    server_ms,
                    _cpu_ms(cpu0, cpu1),
                    reply is None,
                    *floor,
                )
            )
        return reply


def _cpu_ms(before: ProcCounters | None, after: ProcCounters | None) -> float | None:
    """User + system CPU ms between two readings of one process (None where /proc failed)."""
    if before is None or after is None:
        return None
    return (after.user_s + after.system_s - before.user_s - before.system_s) * 1e3
