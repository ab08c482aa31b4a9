"""The cluster as kube-scheduler's cache sees it: nodes, the pods bound to them, live load and
the pods placed too recently for the load to show, published as immutable snapshots.

Writers (the informers' threads, the binder, the load pollers) change a mutable store under one
lock; each event costs what it changes (a pod event adds and subtracts one row of R numbers; a
node event writes one row). A publisher copies the store into a new ``Snapshot`` (numpy arrays,
read-only) when something changed, at most every ``publish_interval_s``, and swaps it in with
one attribute assignment. A bind through the extender shows at once: its snapshot is derived
from the current one with the bound node's columns replaced (``ClusterState._derive``). The
request path only reads ``ClusterState.snapshot`` (no lock) and takes the rows it needs.

Pod accounting is kube-scheduler's (``extender.kube.demand``: ``PodRequests`` with restartable init
containers and overhead; non-zero requests for scoring): a pod counts on ``spec.nodeName``
from the moment it is bound (or assumed by our bind) until it is deleted or finishes
(``status.phase`` Succeeded or Failed). Pods whose node is not known yet are kept and counted
as soon as the node appears.

Recent-bind compensation (Koordinator ``pod_assign_cache.go``, simplified: no per-pod usage is
reported to us): a pod bound at ``t`` adds its estimated usage (Koordinator's estimator) to its
node's ``pending`` while the node's newest load sample is older than ``t + report_lag_s`` (the
measurement cannot show it yet), and never longer than ``max_s``.

The snapshot type is ``extender.cache.snapshot``; the informers that call the store's node and
pod handlers are ``extender.cache.informer``. Over 600 lines on purpose: ``ClusterState`` is
one class whose every writer holds its one lock and keeps the node rows, the pod records, the
compensation and the published snapshot consistent with each other; cut across files, which
methods hold the lock and which invariants they share would no longer be seen in one place.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from extender.cache.snapshot import BASE_AXIS, EMPTY_FIELDS, LOAD_FIELDS, MAX_PATCHED, NODE_FIELDS, Snapshot
from extender.kube.demand import accounting_key, nonnegative, pod_demand, requested_resources, to_units
from extender.kube.objects import (
    MalformedObject,
    Node,
    ObjectMeta,
    Pod,
    decode_meta,
    decode_node,
    decode_pod,
    decode_pod_watch_line,
)
from extender.load.window import LoadView
from extender.verbs.source import parse_rfc3339
from scoring.estimate import estimate_pod, estimate_usage
from scoring.types import MAX_QUANTITY

FINISHED_PHASES = ("Succeeded", "Failed")


@dataclasses.dataclass(frozen=True)
class CompensationSpec:
    report_lag_s: float = 60.0  # a sample must be this much newer than the bind to include the pod
    max_s: float = 300.0  # never compensate longer than this


@dataclasses.dataclass(frozen=True, eq=False)
class _Accounting:
    """What one pod adds to its node, on the resource axis at the time it was computed (shared,
    read-only, by every pod of the same resources: see ``ClusterState._accounting``)."""

    requests: npt.NDArray[np.float64]  # (R_at_record,)
    nonzero: npt.NDArray[np.float64]
    limits: npt.NDArray[np.float64]  # max(limits, requests) per resource (Trimaran SetMaxLimits)
    estimate: npt.NDArray[np.float64]  # with the estimator's factors of the policy in force
    pod_limits: npt.NDArray[np.float64]  # the limits as set (0: none): the estimate's other input
    # (field, ((resource index, amount), ...)) for the non-zero amounts: applied with scalar
    # updates, cheaper than numpy column arithmetic for a handful of resources
    deltas: tuple[tuple[str, tuple[tuple[int, float], ...]], ...]


# What ``ClusterState.assume`` found (``Assumption.outcome``).
COUNTED = "counted"  # this call counted the pod on the node: a failed bind must ``forget`` it
CONFIRMED = "confirmed"  # the watch shows the pod bound to that node already (a retried bind)
KNOWN = "known"  # an earlier bind of ours counts it on that node; the watch has not confirmed it
ELSEWHERE = "elsewhere"  # counted on another node: ``Assumption.node``
UNKNOWN_POD = "unknown_pod"  # no spec (neither the watch nor the request had it): not counted


@dataclasses.dataclass(frozen=True)
class Assumption:
    """The outcome of ``ClusterState.assume`` (one of the constants above) and the node the
    pod is counted on. True when the pod is counted on the node asked for, and the snapshot
    shows it. ``late``: the cache process could not show it within the bind's budget."""

    outcome: str
    node: str | None
    late: bool = False

    def __bool__(self) -> bool:
        return self.outcome in (COUNTED, CONFIRMED, KNOWN) and not self.late


ACCOUNTING_MEMO_SIZE = 4096  # distinct pod resource shapes remembered (a cluster has few)


@dataclasses.dataclass
class _PodRecord:
    node: str
    acct: _Accounting
    bound_at: float | None  # wall time we first saw it bound (None: it was bound before we started)
    # The spec of a pod counted by our own bind (``ClusterState.assume``) that the watch has not
    # shown bound yet; None once it has. While set, a watch event showing the pod unbound is
    # older than the bind and does not uncount it, and a failed bind (``forget``) gives it back.
    assumed: Pod | None = None

    @property
    def requests(self) -> npt.NDArray[np.float64]:
        return self.acct.requests

    @property
    def limits(self) -> npt.NDArray[np.float64]:
        return self.acct.limits

    @property
    def estimate(self) -> npt.NDArray[np.float64]:
        return self.acct.estimate


class LoadProvider(Protocol):
    """What the store needs of the load window (extender.load.window.LoadWindow implements it)."""

    def view(self, names: Sequence[str], resources: Sequence[str], now: float) -> LoadView: ...
    def record(self, node: str, t: float, values: Mapping[str, float], *, source: str) -> None: ...
    def forget(self, node: str) -> None: ...
    @property
    def version(self) -> int: ...  # changes whenever a view would differ for new samples


@dataclasses.dataclass(frozen=True, eq=False)
class _LoadCopy:
    """What a build read from the load window: for which window version, node names (the
    store's tuple, compared by identity), resource axis and time; the (R, n) load fields and
    the (n,) newest sample per node, read-only and shared by the snapshots built from it."""

    version: int
    names: tuple[str, ...]
    axis: tuple[str, ...]
    at: float
    fields: dict[str, npt.NDArray[np.float64]]
    newest: npt.NDArray[np.float64]


# A snapshot copies the load window's statistics (average, deviation, p95 over the window),
# which change as samples age out even when none arrive: rebuilt at least this often while a
# load source is configured, so a quiet cluster does not serve statistics older than this.
LOAD_REFRESH_S = 10.0


class ClusterState:
    """The store and its snapshots (see the module docstring)."""

    def __init__(
        self,
        *,
        estimator_factors: Mapping[str, float],
        annotation_prefix: str | None = None,
        load: LoadProvider | None = None,
        compensation: CompensationSpec = CompensationSpec(),
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        self._factors = dict(estimator_factors)
        self._prefix = annotation_prefix
        self._load = load
        self._comp = compensation
        self._clock = clock
        self._log = logger or logging.getLogger("extender.cluster")
        self._lock = threading.Lock()
        self._resources: list[str] = list(BASE_AXIS)
        self._rows: dict[str, int] = {}  # node name -> store row (known or not)
        self._known = np.zeros(0, bool)  # (capacity,) the Node object exists
        self._used = 0  # rows handed out so far (free rows are reused first)
        self._node_pods: dict[str, int] = {}  # node name -> pods counted on it
        # Recent-bind compensation, kept incrementally: uid -> record of the pods whose estimate
        # is in the "pending" rows now; a global queue in bind order (expiry after max_s) and
        # one per node (cleared as the node's load samples catch up). Queues are lazy: an entry
        # whose uid left _recent is skipped.
        self._recent: dict[str, _PodRecord] = {}
        self._recent_q: collections.deque[tuple[float, str]] = collections.deque()
        self._recent_by_node: dict[str, collections.deque[tuple[float, str]]] = {}
        # what _expire saw last: (node names, newest sample per node), and the nodes compensated since
        self._expire_seen: tuple[tuple[str, ...], npt.NDArray[np.float64]] | None = None
        self._compensated_since: set[str] = set()
        self._node_gen = 0  # bumped whenever the set of known nodes changes
        self._names_cache: tuple[int, npt.NDArray[np.intp], tuple[str, ...], dict[str, int]] | None = None
        self._ips: dict[str, str] = {}  # InternalIP -> node name (Prometheus instance labels)
        # (namespace, name) -> resourceVersion of every object the informers delivered
        self._rvs: dict[str, dict[tuple[str, str], str]] = {"nodes": {}, "pods": {}}
        self._arrays = {f: np.zeros((len(self._resources), 0)) for f in NODE_FIELDS}
        self._free: list[int] = []
        self._pods: dict[str, _PodRecord] = {}
        self._accounting_memo: dict[tuple[object, ...], _Accounting] = {}
        self._pod_keys: dict[tuple[str, str], str] = {}  # (namespace, name) -> uid
        self._unbound: dict[str, Pod] = {}  # uid -> pending pod spec (for assume at bind)
        self._pods_listed = False  # a pod list has been applied (the next is not the first)
        self._dirty = True
        self._load_seen = -1  # the load window's version the snapshot copied
        self._load_copied: _LoadCopy | None = None  # the last copy of the window
        self._nans: npt.NDArray[np.float64] | None = None
        self._generation = 0
        self.events_applied = 0
        self.snapshot = self._build()
        self.nodes_handler = _Handler(self._replace_nodes, self._upsert_node, self._delete_node)
        self.pods_handler = _Handler(
            self._replace_pods,
            self._upsert_pod,
            self._delete_pod,
            decoded=(decode_pod, self._upsert_decoded_pod, self._delete_decoded_pod),
            decode_line=decode_pod_watch_line,
        )

    # --- rows and columns ------------------------------------------------------------------

    def _row(self, name: str) -> int:
        row = self._rows.get(name)
        if row is not None:
            return row
        if self._free:
            row = self._free.pop()
        else:
            row = self._used
            self._used += 1
            if row >= self._known.shape[0]:
                self._grow(max(16, 2 * row))
        self._rows[name] = row
        self._node_gen += 1
        return row

    def _grow(self, capacity: int) -> None:
        for f, a in self._arrays.items():
            b = np.zeros((a.shape[0], capacity))
            b[:, : a.shape[1]] = a
            self._arrays[f] = b
        known = np.zeros(capacity, bool)
        known[: self._known.shape[0]] = self._known
        self._known = known

    def _ensure_columns(self, names: Sequence[str]) -> None:
        new = [n for n in dict.fromkeys(names) if n not in self._resources]
        if not new:
            return
        self._resources.extend(new)
        for f, a in self._arrays.items():
            self._arrays[f] = np.vstack([a, np.zeros((len(new), a.shape[1]))])

    def _vec(self, v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """A stored per-pod vector padded to the current resource axis."""
        r = len(self._resources)
        return v if v.shape[0] == r else np.concatenate([v, np.zeros(r - v.shape[0])])

    # --- nodes -----------------------------------------------------------------------------

    def _node_row_values(self, node: Node) -> tuple[str, dict[str, float], dict[str, float]]:
        name = node.metadata.name if node.metadata else ""
        if not name:
            raise MalformedObject("Node without metadata.name")
        status = node.status
        for addr in (status.addresses if status else None) or ():
            if addr.type == "InternalIP" and addr.address:
                self._ips[addr.address] = name
        alloc_raw = (status.allocatable if status else None) or {}
        cap_raw = (status.capacity if status else None) or alloc_raw
        self._ensure_columns(list(alloc_raw) + list(cap_raw))
        alloc: dict[str, float] = {}
        cap: dict[str, float] = {}
        for target, raw, field in ((alloc, alloc_raw, "allocatable"), (cap, cap_raw, "capacity")):
            for res, q in raw.items():
                try:
                    target[res] = nonnegative(
                        to_units(res), q, f"node {name}: status.{field}.{res}", ValueError
                    )
                except ValueError as exc:
                    # a node with an unreadable quantity gets 0 there: it fails fit, and says why in the log
                    self._log.warning("%s", exc)
                    target[res] = 0.0
        return name, alloc, cap

    def _set_node(self, node: Node) -> str:
        """Write one node's row (allocatable, capacity, known) and its load annotations."""
        name, alloc, cap = self._node_row_values(node)
        row = self._row(name)
        for field, values in (("allocatable", alloc), ("capacity", cap)):
            col = self._arrays[field][:, row]
            col[:] = 0.0
            for res, v in values.items():
                col[self._resources.index(res)] = v
        if not self._known[row]:
            self._known[row] = True
            self._node_gen += 1
        self._record_annotations(name, node)
        return name

    def _upsert_node(self, raw: bytes) -> None:
        node = decode_node(raw)
        with self._lock:
            self._remember("nodes", node.metadata)
            self._set_node(node)
            self._touch()

    def _record_annotations(self, name: str, node: Node) -> None:
        """Stateless mode's load annotations as one more load source."""
        if self._load is None or self._prefix is None or node.metadata is None:
            return
        ann = node.metadata.annotations or {}
        stamp = ann.get(self._prefix + "updated")
        if stamp is None:
            return
        try:
            t = parse_rfc3339(stamp)  # the same rules as stateless mode
        except ValueError:
            self._log.warning(
                "node %s: annotation %supdated %r is not an RFC 3339 time", name, self._prefix, stamp
            )
            return
        values = {}
        for res in ("cpu", "memory"):
            v = ann.get(self._prefix + res)
            if v is not None:
                try:
                    values[res] = nonnegative(
                        to_units(res), v, f"node {name}: annotation {self._prefix}{res}", ValueError
                    )
                except ValueError as exc:
                    self._log.warning("%s", exc)
        if values:
            self._load.record(name, t, values, source="annotations")

    def _delete_node(self, raw: bytes) -> None:
        meta = decode_meta(raw)
        name = meta.name
        with self._lock:
            self._rvs["nodes"].pop((meta.namespace, name), None)
            self._forget_node(name)
            self._touch()

    def _forget_node(self, name: str) -> None:
        row = self._rows.get(name)
        if row is None:
            return
        self._known[row] = False
        self._node_gen += 1
        for field in ("allocatable", "capacity"):
            self._arrays[field][:, row] = 0.0
        if self._load is not None:
            self._load.forget(name)
        if not self._node_pods.get(name):
            self._release_row(name, row)

    def _release_row(self, name: str, row: int) -> None:
        self._node_gen += 1
        self._recent_by_node.pop(name, None)
        for a in self._arrays.values():
            a[:, row] = 0.0
        del self._rows[name]
        self._free.append(row)

    def _replace_nodes(self, items: Sequence[bytes]) -> None:
        nodes = [decode_node(raw) for raw in items]
        with self._lock:
            self._rvs["nodes"] = {}
            for node in nodes:
                self._remember("nodes", node.metadata)
            seen = {self._set_node(node) for node in nodes}
            for name in [n for n, r in self._rows.items() if self._known[r] and n not in seen]:
                self._forget_node(name)
            self._touch()

    def _remember(self, kind: str, meta: object) -> None:
        if meta is not None:
            self._rvs[kind][(meta.namespace, meta.name)] = meta.resourceVersion  # type: ignore[attr-defined]

    def objects(self, kind: str) -> dict[tuple[str, str], str]:
        """(namespace, name) -> resourceVersion of every node or pod the informers delivered."""
        with self._lock:
            return dict(self._rvs[kind])

    # --- pods ------------------------------------------------------------------------------

    def _accounting(self, pod: Pod) -> _Accounting:
        """The pod's requests, non-zero requests, limits and estimate, computed once per
        distinct accounting shape (``demand.accounting_key``: container and pod-level
        resources, and the statuses an in-place resize fills) and resource axis: pods of one
        template in the same state, the common case under churn, cost a dict lookup."""
        key = (accounting_key(pod), len(self._resources))
        acct = self._accounting_memo.get(key)
        if acct is not None:
            return acct
        self._ensure_columns(requested_resources(pod, ()))
        axis = tuple(self._resources)
        d = pod_demand(pod, axis, containers=False, assigned=True)
        vectors = {
            "requested": np.array(d.requests),
            "nonzero_requested": np.array(d.nonzero_requests),
            "limits": np.maximum(d.limits, d.requests),
        }
        deltas = tuple(
            (f, tuple((r, float(x)) for r, x in enumerate(v.tolist()) if x)) for f, v in vectors.items()
        )
        acct = _Accounting(
            vectors["requested"],
            vectors["nonzero_requested"],
            vectors["limits"],
            estimate_pod(d, self._factors),
            np.array(d.limits),
            deltas,
        )
        for a in (acct.requests, acct.nonzero, acct.limits, acct.estimate, acct.pod_limits):
            a.flags.writeable = False
        if len(self._accounting_memo) >= ACCOUNTING_MEMO_SIZE:
            self._accounting_memo.clear()
        if len(axis) == key[1]:  # the axis did not grow while computing: the key is right
            self._accounting_memo[key] = acct
        return acct

    def set_estimator_factors(self, factors: Mapping[str, float]) -> bool:
        """Estimate every pod's usage with ``factors`` from now on (a new policy's
        ``estimatedScalingFactors``): the pods counted already are estimated again and the
        compensation of recent binds rebuilt from them, as if the store had had ``factors``
        from the start; the next publish shows it. False when ``factors`` are the ones in use."""
        with self._lock:
            if dict(factors) == self._factors:
                return False
            self._factors = dict(factors)
            self._accounting_memo.clear()  # the factors are one of its inputs
            redone: dict[int, tuple[_Accounting, _Accounting]] = {}  # id(old) -> (old, new)
            for rec in self._pods.values():
                pair = redone.get(id(rec.acct))
                if pair is None:  # pods of one shape share their accounting: once per shape
                    old = rec.acct
                    axis = tuple(self._resources[: len(old.requests)])
                    estimate = estimate_usage(old.requests, old.pod_limits, axis, self._factors)
                    estimate.flags.writeable = False
                    pair = redone[id(old)] = (old, dataclasses.replace(old, estimate=estimate))
                rec.acct = pair[1]
            pending = self._arrays["pending"]
            pending[...] = 0.0
            for rec in self._recent.values():  # the same records as in _pods
                row = self._rows.get(rec.node)
                if row is not None:
                    pending[:, row] += self._vec(rec.estimate)
            self._touch()
        return True

    def _record_for(self, pod: Pod, node: str, bound_at: float | None) -> _PodRecord:
        return _PodRecord(node, self._accounting(pod), bound_at)

    def _apply(self, rec: _PodRecord, sign: float) -> None:
        row = self._row(rec.node)
        self._node_pods[rec.node] = self._node_pods.get(rec.node, 0) + int(sign)
        arrays = self._arrays
        for field, amounts in rec.acct.deltas:
            a = arrays[field]
            for r, x in amounts:
                a[r, row] += sign * x

    def _drop_pod(self, uid: str) -> None:
        old = self._pods.pop(uid, None)
        self._uncompensate(uid)
        if old is not None:
            self._apply(old, -1.0)
            row = self._rows.get(old.node)
            if row is not None and not self._known[row] and not self._node_pods.get(old.node):
                del self._node_pods[old.node]
                self._release_row(old.node, row)

    def _set_pod(self, pod: Pod, *, now: float, initial: bool) -> bool:
        """Count, move or drop one pod; True if what the snapshot copies changed (a status
        update of a running pod, the most common pod event, changes nothing counted)."""
        meta, spec, status = pod.metadata, pod.spec, pod.status
        if meta is None or not meta.uid:
            raise MalformedObject("Pod without metadata.uid")
        uid = meta.uid
        self._pod_keys[(meta.namespace, meta.name)] = uid
        node = spec.nodeName if spec else ""
        finished = status is not None and status.phase in FINISHED_PHASES
        old = self._pods.get(uid)
        if not node and not finished and old is not None and old.assumed is not None:
            old.assumed = pod  # older than our bind: still counted; a failed bind restores this spec
            return False
        if old is not None and old.node == node:
            old.assumed = None  # the watch shows our bind
        if not node or finished:
            self._drop_pod(uid)
            if not node and not finished:
                self._unbound[uid] = pod
            else:
                self._unbound.pop(uid, None)
            return old is not None
        self._unbound.pop(uid, None)
        bound_at = old.bound_at if old is not None and old.node == node else (None if initial else now)
        rec = self._record_for(pod, node, bound_at)
        if old is not None and old.node == node and old.acct is rec.acct:
            return False  # same node, same resources: nothing counted changes
        if old is not None:
            self._apply(old, -1.0)
        was_recent = self._uncompensate(uid)
        self._pods[uid] = rec
        self._apply(rec, +1.0)
        if bound_at is not None and (was_recent or old is None or old.node != node):
            self._compensate(uid, rec)
        return True

    def _upsert_pod(self, raw: bytes) -> None:
        self._upsert_decoded_pod(decode_pod(raw))

    def _upsert_decoded_pod(self, pod: Pod) -> None:
        with self._lock:
            self._remember("pods", pod.metadata)
            if self._set_pod(pod, now=self._clock(), initial=False):
                self._touch()
            self.events_applied += 1

    def _delete_pod(self, raw: bytes) -> None:
        self._delete_by_meta(decode_meta(raw))  # a deleted object needs only its metadata

    def _delete_decoded_pod(self, pod: Pod) -> None:
        self._delete_by_meta(pod.metadata or ObjectMeta())

    def _delete_by_meta(self, meta: ObjectMeta) -> None:
        with self._lock:
            self._rvs["pods"].pop((meta.namespace, meta.name), None)
            uid = meta.uid or self._pod_keys.get((meta.namespace, meta.name), "")
            self._drop_pod(uid)
            self._unbound.pop(uid, None)
            self._pod_keys.pop((meta.namespace, meta.name), None)
            self.events_applied += 1
            self._touch()

    def _replace_pods(self, items: Sequence[bytes]) -> None:
        pods = [decode_pod(raw) for raw in items]
        with self._lock:
            self._rvs["pods"] = {}
            for pod in pods:
                self._remember("pods", pod.metadata)
            first, self._pods_listed = not self._pods_listed, True  # the first list: bound before we started
            now = self._clock()
            seen = set()
            for pod in pods:
                self._set_pod(pod, now=now, initial=first)
                seen.add(pod.metadata.uid if pod.metadata else "")
            for uid in [u for u in self._pods if u not in seen]:
                self._drop_pod(uid)
            for uid in [u for u in self._unbound if u not in seen]:
                del self._unbound[uid]
            self._pod_keys = {k: u for k, u in self._pod_keys.items() if u in seen}
            self._touch()

    # --- the extender's own binds ----------------------------------------------------------

    def pod_vectors(self, uid: str, resources: Sequence[str]) -> tuple[npt.NDArray[np.float64], ...] | None:
        """(requests, max(limits, requests), estimated usage) of a counted pod on ``resources``
        (the preempt verb's victims given by UID only)."""
        with self._lock:
            rec = self._pods.get(uid)
            if rec is None:
                return None
            axis = self._resources
            pick = [axis.index(r) if r in axis else -1 for r in resources]
            return tuple(
                np.array([self._vec(v)[j] if j >= 0 else 0.0 for j in pick])
                for v in (rec.requests, rec.limits, rec.estimate)
            )

    def node_by_ip(self, ip: str) -> str | None:
        """The node whose InternalIP is ``ip`` (for Prometheus series labelled by address)."""
        return self._ips.get(ip)

    def assume(
        self, *, uid: str, node: str, pod: Pod | None = None, timeout_s: float | None = None
    ) -> Assumption:
        """Count a pod on ``node`` from the moment its bind arrives, before the API answers,
        and make the snapshot show it before returning: the next call sees it, whichever of
        the bind and its watch event comes first. The spec is the watch's (the pending pod)
        or, when the watch has not shown the pod yet, ``pod`` (the one the scheduling request
        carried). ``forget`` undoes it if the bind fails. See ``Assumption`` for the outcomes.
        ``timeout_s`` is the cache process's (``RemoteState``); here, under the lock, unused."""
        with self._lock:
            rec = self._pods.get(uid)
            if rec is not None and rec.node != node:
                return Assumption(ELSEWHERE, rec.node)
            if rec is not None:  # the watch (CONFIRMED), or an earlier bind of ours, counts it here
                outcome = CONFIRMED if rec.assumed is None else KNOWN
            else:
                spec = self._unbound.pop(uid, None) or pod
                if spec is None:
                    return Assumption(UNKNOWN_POD, None)
                if spec.metadata is not None:
                    self._pod_keys[(spec.metadata.namespace, spec.metadata.name)] = uid
                rec = _PodRecord(node, self._accounting(spec), self._clock(), assumed=spec)
                self._pods[uid] = rec
                self._apply(rec, +1.0)
                self._compensate(uid, rec)
                outcome = COUNTED
            if self._show(node):
                return Assumption(outcome, node)
        self.publish()
        return Assumption(outcome, node)

    def forget(self, uid: str, *, timeout_s: float | None = None) -> bool:
        """Undo ``assume`` after a failed bind: the pod is pending again. Nothing happens when
        the watch has meanwhile shown the pod bound (wherever: the API knows better than our
        failed call) or gone. True when something was undone."""
        with self._lock:
            rec = self._pods.get(uid)
            if rec is None or rec.assumed is None:
                return False
            self._drop_pod(uid)
            self._unbound[uid] = rec.assumed
            if self._show(rec.node):
                return True
        self.publish()
        return True

    def _show(self, node: str) -> bool:
        """Make the snapshot show ``node`` as the store has it now (lock held): the current
        snapshot when it does already, else one derived from it. False when a full build is
        needed (the caller publishes, after releasing the lock)."""
        pending = self._dirty
        derived = self._derive(node)
        if derived is None:
            self._touch()
            return False
        self.snapshot, self._dirty = derived, pending  # other changes keep their turn
        return True

    def _derive(self, node: str) -> Snapshot | None:
        """The current snapshot with ``node``'s counted fields as the store has them now, the
        rest shared; None when a full build is needed (the node is not in the snapshot, the
        resource axis grew, or ``MAX_PATCHED`` nodes are patched already).

        A bind changes one node, and the bind verb pays for its snapshot before answering. A
        full build copies every array and restacks ``by_node``; copying only the few (R, N)
        arrays the bind touched took the bind's server p50 at 10,000 nodes from ~6.8 to
        ~3.9 ms (``benchmarks latency --forms names``, benchmarks/README.md). What else
        the store applied meanwhile waits for the next full build; ``built_at`` stays the
        base's, so the snapshot age does not hide that."""
        snap = self.snapshot
        i, row = snap.index.get(node), self._rows.get(node)
        if i is None or row is None or len(self._resources) != len(snap.resources):
            return None
        arrays = dict(snap.arrays)
        for f in NODE_FIELDS:
            col = np.minimum(self._arrays[f][:, row], MAX_QUANTITY)
            if not np.array_equal(col, snap.arrays[f][:, i]):
                a = snap.arrays[f].copy()
                a[:, i] = col
                a.flags.writeable = False
                arrays[f] = a
        if all(arrays[f] is snap.arrays[f] for f in NODE_FIELDS):
            return snap  # it shows the node as the store has it already
        if len(snap.patched) >= MAX_PATCHED:
            return None
        record = np.stack([a[:, i] for a in arrays.values()])
        record.flags.writeable = False
        self._generation += 1
        return dataclasses.replace(
            snap,
            generation=self._generation,
            arrays=arrays,
            pods=self._counted(arrays),
            compensated_pods=len(self._recent),
            patched={**snap.patched, i: record},
        )

    # --- snapshots -------------------------------------------------------------------------

    def _counted(self, arrays: Mapping[str, npt.NDArray[np.float64]]) -> int:
        """Pods counted on the snapshot's nodes: the sum of its requested ``pods`` row."""
        return int(arrays["requested"][self._resources.index("pods")].sum())

    def _touch(self) -> None:
        self._dirty = True

    def publish(self, *, force: bool = False) -> Snapshot:
        """Build and swap in a new snapshot if what it copies changed (or ``force``): the store
        (an event, a bind), the load window (a sample or node accepted or forgotten),
        compensation past ``max_s``, or window statistics older than ``LOAD_REFRESH_S``. An
        unchanged snapshot is kept, so the verbs keep the node tables they built from it."""
        with self._lock:
            if force or self._dirty or self._copy_outdated():
                self.snapshot = self._build()
                self._dirty = False
            return self.snapshot

    def _copy_outdated(self) -> bool:
        if self._load is None:
            return False
        now = self._clock()
        q = self._recent_q  # bind order: its head is the first to run out
        return (
            self._load.version != self._load_seen
            or (bool(q) and now - q[0][0] > self._comp.max_s)
            or now - self.snapshot.built_at >= LOAD_REFRESH_S
        )

    def _compensate(self, uid: str, rec: _PodRecord) -> None:
        """Add a just-bound pod's estimate to its node's pending row."""
        if self._load is None or rec.bound_at is None:
            return
        self._recent[uid] = rec
        self._arrays["pending"][:, self._row(rec.node)] += self._vec(rec.estimate)
        entry = (rec.bound_at, uid)
        self._recent_q.append(entry)
        self._recent_by_node.setdefault(rec.node, collections.deque()).append(entry)
        self._compensated_since.add(rec.node)

    def _uncompensate(self, uid: str) -> bool:
        rec = self._recent.pop(uid, None)
        if rec is None:
            return False
        row = self._rows.get(rec.node)
        if row is not None:
            pending = self._arrays["pending"][:, row]
            pending -= self._vec(rec.estimate)
            np.maximum(pending, 0.0, out=pending)  # float dust from += / -= never goes negative
        return True

    def _expire(self, names: tuple[str, ...], newest: npt.NDArray[np.float64], now: float) -> None:
        """Drop compensation that is too old, or that the node's load samples now include.
        Only the nodes whose newest sample moved, or that were compensated, since the last
        check are looked at: on the others nothing new can have caught up."""
        q, max_s, lag = self._recent_q, self._comp.max_s, self._comp.report_lag_s
        while q and (now - q[0][0] > max_s or q[0][1] not in self._recent):
            self._uncompensate(q.popleft()[1])
        last, self._expire_seen = self._expire_seen, (names, newest)
        check, self._compensated_since = self._compensated_since, set()
        if not self._recent_by_node:
            return
        if last is not None and last[0] is names:  # same node set: compare newest samples
            check.update(names[i] for i in np.flatnonzero(newest != last[1]).tolist())
            nodes = [n for n in check if n in self._recent_by_node]
        else:
            nodes = list(self._recent_by_node)
        index = self._names_cache[3] if self._names_cache is not None else {}
        for node in nodes:
            dq = self._recent_by_node[node]
            i = index.get(node)
            seen = newest[i] if i is not None else -np.inf
            while dq and (dq[0][1] not in self._recent or dq[0][0] + lag <= seen):
                self._uncompensate(dq.popleft()[1])
            if not dq:
                del self._recent_by_node[node]

    def _node_set(self) -> tuple[npt.NDArray[np.intp], tuple[str, ...], dict[str, int]]:
        """Known rows, their names and name -> position, recomputed only when nodes change."""
        cached = self._names_cache
        if cached is not None and cached[0] == self._node_gen:
            return cached[1], cached[2], cached[3]
        known_rows = np.flatnonzero(self._known) if self._known.size else np.zeros(0, np.intp)
        inv = {r: n for n, r in self._rows.items()}
        names = tuple(inv[r] for r in known_rows.tolist())
        index = {name: i for i, name in enumerate(names)}
        self._names_cache = (self._node_gen, known_rows, names, index)
        return known_rows, names, index

    def _load_copy(
        self, names: tuple[str, ...], now: float
    ) -> tuple[dict[str, npt.NDArray[np.float64]], npt.NDArray[np.float64]] | None:
        """The load fields, (R, n) each, and the newest sample per node, (n,), for ``names``:
        read from the window, or the last build's (read-only, shared) while the window's
        version, the node names and the resource axis are the same and the copy is younger
        than ``LOAD_REFRESH_S``. Pod events, the common reason for a new snapshot, do not move
        the load. None without a load source or nodes."""
        if self._load is None:
            return None
        version = self._load_seen = (
            self._load.version
        )  # read first: a sample arriving meanwhile rebuilds again
        if not names:
            return None
        axis = tuple(self._resources)
        last = self._load_copied
        if (
            last is not None
            and last.version == version
            and last.names is names
            and last.axis == axis
            and now - last.at < LOAD_REFRESH_S
        ):
            return last.fields, last.newest
        view = self._load.view(names, self._resources, now)
        fields = {f: np.minimum(np.ascontiguousarray(getattr(view, f).T), MAX_QUANTITY) for f in LOAD_FIELDS}
        newest = np.asarray(view.newest, dtype=np.float64)
        for a in (*fields.values(), newest):
            a.flags.writeable = False
        self._load_copied = _LoadCopy(version, names, axis, now, fields, newest)
        return fields, newest

    def _nan_block(self, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
        """A read-only (R, n) block of NaN ("unknown"), shared by snapshots of that shape."""
        if self._nans is None or self._nans.shape != shape:
            self._nans = np.full(shape, np.nan)
            self._nans.flags.writeable = False
        return self._nans

    def _build(self) -> Snapshot:
        now = self._clock()
        known_rows, names, index = self._node_set()
        r, n = len(self._resources), len(names)
        loaded = self._load_copy(names, now)
        if loaded is not None:
            load_fields, newest = loaded
            self._expire(names, newest, now)
        else:
            load_fields, newest = {}, np.full(n, -np.inf)
            newest.flags.writeable = False
        if n and known_rows[-1] == n - 1:  # rows 0..n-1 (sorted, distinct): a slice, not a gather
            arrays = {f: a[:, :n].copy() for f, a in self._arrays.items()}
        else:
            arrays = {f: np.ascontiguousarray(a[:, known_rows]) for f, a in self._arrays.items()}
        for a in arrays.values():
            np.minimum(a, MAX_QUANTITY, out=a)
            a.flags.writeable = False
        for f in EMPTY_FIELDS:
            arrays[f] = load_fields.get(f, self._nan_block((r, n)))
        self._generation += 1
        counted = self._counted(arrays) if n else 0
        by_node = np.ascontiguousarray(np.stack(list(arrays.values())).transpose(2, 0, 1))
        by_node.flags.writeable = False
        return Snapshot(
            self._generation,
            now,
            names,
            index,
            tuple(self._resources),
            arrays,
            newest,
            counted,
            len(self._recent),
            by_node,
        )

    # --- queries ---------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(known nodes, counted pods) of the current store."""
        with self._lock:
            return int(self._known.sum()), len(self._pods)

    def view(self) -> dict[str, dict[str, float]]:
        """Per known node, the requested sums by resource (tests and /debug)."""
        snap = self.publish(force=True)
        req = snap.arrays["requested"]
        return {
            name: {res: float(req[j, i]) for j, res in enumerate(snap.resources)}
            for i, name in enumerate(snap.names)
        }


class _Handler:
    """InformerHandler adapter: replace / upsert / delete to the store's methods; ``decoded``
    (decode, upsert, delete) lets the informer decode each watch object once (pods)."""

    def __init__(
        self,
        replace: Callable[[Sequence[bytes]], None],
        upsert: Callable[[bytes], None],
        delete: Callable[[bytes], None],
        decoded: tuple[Callable[[bytes], Any], Callable[[Any], None], Callable[[Any], None]] | None = None,
        decode_line: Callable[[bytes], tuple[str, Any] | None] | None = None,
    ) -> None:
        self.replace, self.upsert, self.delete = replace, upsert, delete
        if decoded is not None:
            self.decode, self.upsert_decoded, self.delete_decoded = decoded
        if decode_line is not None:
            self.decode_line = decode_line
