"""Cluster-cache mode (``nodeCacheCapable: true``): informers, load pollers and the publisher
around one ``ClusterState``, the ``NodeSource`` that answers from its snapshots, and the binder
that records our binds in it at once.

Turned on when the extender has API access; ``/readyz`` fails until the first full list of
nodes and pods (and the first poll of each configured load source) has been applied.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from extender.binding import Binder, BindOutcome, BindResult, BindTarget
from extender.cluster import (
    CONFIRMED,
    COUNTED,
    ELSEWHERE,
    UNKNOWN_POD,
    Assumption,
    ClusterState,
    CompensationSpec,
    Snapshot,
)
from extender.gate import CallGate
from extender.informer import Informer
from extender.load import LoadWindow, MetricsServerSource, PrometheusSource, default_prom_queries
from extender.metrics import CacheMetrics
from extender.source import Candidates
from extender.wire import BadRequest, Pod, SchedulingRequest
from scoring import Policy

if TYPE_CHECKING:
    from extender.cache_process import CacheProcess


class CacheNotReady(BadRequest):
    """The cache has not finished its first sync; the message says what is missing."""


@dataclasses.dataclass(frozen=True)
class CacheConfig:
    load_sources: tuple[str, ...] = ("annotations",)
    annotation_prefix: str = "load.extender.scheduling/"
    metrics_interval_s: float = 15.0
    prometheus_url: str | None = None
    prometheus_node_label: str = "node"
    load_window_s: float = 300.0
    compensation: CompensationSpec = CompensationSpec()
    publish_interval_s: float = 0.2  # binds through the extender publish at once
    resync_s: float = 0.0


def cache_config(settings: object) -> CacheConfig:
    """The CacheConfig of the service's Settings."""
    from extender.load import parse_load_sources

    s = settings
    return CacheConfig(
        load_sources=parse_load_sources(s.load_sources), annotation_prefix=s.annotation_prefix,  # type: ignore[attr-defined]
        metrics_interval_s=s.metrics_interval_s, prometheus_url=s.prometheus_url,  # type: ignore[attr-defined]
        prometheus_node_label=s.prometheus_node_label, load_window_s=s.load_window_s,  # type: ignore[attr-defined]
        compensation=CompensationSpec(s.compensation_lag_s, s.compensation_max_s))  # type: ignore[attr-defined]


class Cache:
    """Owns the store and every thread that feeds it."""

    def __init__(self, api_client: object, policy: Policy, config: CacheConfig, *,
                 metrics: CacheMetrics | None = None, logger: logging.Logger | None = None,
                 clock: Callable[[], float] = time.time, gate: CallGate | None = None,
                 on_publish: Callable[[Snapshot], object] | None = None) -> None:
        self._log = logger or logging.getLogger("extender.cache")
        self._metrics = metrics
        self._config = config
        self._clock = clock
        self._stale_after = policy.load.staleAfterSeconds
        self._synced = False  # set once, after the first sync has been published
        self._gate = gate  # scheduling calls in flight: event application and publishing wait
        self._on_publish = on_publish  # after each publisher round (the cache process ships it)
        self.window = LoadWindow(("cpu", "memory"), window_s=config.load_window_s)
        self.state = ClusterState(
            estimator_factors=policy.estimator.estimatedScalingFactors,
            annotation_prefix=config.annotation_prefix if "annotations" in config.load_sources else None,
            load=self.window, compensation=config.compensation, clock=clock, logger=self._log)
        self._event_counters: dict[tuple[str, str], Any] = {}
        on_event = self._count_event if metrics is not None else None
        self.informers = {
            kind: Informer(kind, api_client, handler, on_event=on_event,
                           before_line=gate.feeder(self._yield_counter(kind)) if gate is not None else None,
                           resync_s=config.resync_s, logger=self._log)
            for kind, handler in (("nodes", self.state.nodes_handler), ("pods", self.state.pods_handler))}
        self.pollers: list = []
        on_poll = self._count_poll if metrics is not None else None
        if "metrics-server" in config.load_sources:
            self.pollers.append(MetricsServerSource(api_client, self.window,
                                                    interval_s=config.metrics_interval_s,
                                                    on_poll=on_poll, logger=self._log))
        if "prometheus" in config.load_sources:
            if not config.prometheus_url:
                raise ValueError("load source prometheus needs EXTENDER_PROMETHEUS_URL")
            label = "node" if config.prometheus_node_label == "node" else "instance"
            self.pollers.append(PrometheusSource(
                config.prometheus_url, self.window, queries=default_prom_queries(label),
                node_label=config.prometheus_node_label, node_by_ip=self.state.node_by_ip,
                interval_s=config.metrics_interval_s, on_poll=on_poll, logger=self._log))
        if metrics is not None and metrics.snapshot_age is not None:  # when scraped: the age served
            metrics.snapshot_age.set_function(lambda: max(0.0, self._clock() - self.state.snapshot.built_at))
        self._stop = threading.Event()
        self._publisher = threading.Thread(target=self._publish_loop, name="cache-publisher", daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for t in (*self.informers.values(), *self.pollers):
            t.start()
        self._publisher.start()
        self._log.info("cluster cache started: informers nodes, pods; load sources %s",
                       ",".join(self._config.load_sources) or "none")

    def stop(self) -> None:
        self._stop.set()
        for t in (*self.informers.values(), *self.pollers):
            t.stop()

    def _publish_loop(self) -> None:
        publisher_turn = self._gate.feeder(self._yield_counter("publisher")) if self._gate is not None else None
        while not self._stop.wait(self._config.publish_interval_s):
            if publisher_turn is not None:
                publisher_turn()
            try:
                snap = self.state.publish()
            except Exception:  # never let the publisher die: the next round retries
                self._log.exception("snapshot publish failed")
                continue
            if self._metrics is not None:
                self._observe(snap)
            if self._on_publish is not None:
                try:
                    self._on_publish(snap)
                except Exception:
                    self._log.exception("snapshot hand-off failed")

    def _observe(self, snap: Snapshot) -> None:
        m = self._metrics
        assert m is not None
        now = self._clock()
        m.cache_objects.labels("nodes").set(len(snap.names))
        m.cache_objects.labels("pods").set(snap.pods)
        m.compensated_pods.set(snap.compensated_pods)
        if len(snap.names):
            m.stale_nodes.set(int(np.count_nonzero(now - snap.newest_sample >= self._stale_after)))
        for name, status in self.window.sources().items():
            if status.last_success is not None:
                m.load_source_age.labels(name).set(max(0.0, now - status.last_success))

    def _yield_counter(self, feeder: str) -> Callable[[], None] | None:
        return self._metrics.cache_yields.labels(feeder).inc if self._metrics is not None else None

    def _count_event(self, kind: str, what: str) -> None:
        child = self._event_counters.get((kind, what))
        if child is None:  # labels() costs ~10 us: once per (kind, what), not per event
            assert self._metrics is not None
            child = self._event_counters[(kind, what)] = self._metrics.informer_events.labels(kind, what)
        child.inc()

    def _count_poll(self, source: str, ok: bool) -> None:
        assert self._metrics is not None
        self._metrics.load_polls.labels(source, "ok" if ok else "error").inc()

    # --- readiness ---------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True once every informer and load source has synced and that state is published:
        a flag read on every request, so the checks below run only until it is set."""
        if not self._synced and not self._waiting():
            self.state.publish(force=True)  # the first answer after the sync sees all of it
            # The first lists made hundreds of thousands of long-lived objects (a record per
            # pod); a full cyclic collection would walk them all, a pause of tens of ms in
            # whichever call triggers it. Collect the garbage of the sync once (before ready), then
            # freeze the rest out of its reach; refcounting still frees what goes away.
            gc.collect()
            gc.freeze()
            self._synced = True
        return self._synced

    def _waiting(self) -> list[str]:
        waiting = [f"{kind} informer" for kind, i in self.informers.items() if not i.synced]
        return waiting + [f"load source {type(p).__name__}" for p in self.pollers if not p.synced]

    def readiness(self) -> tuple[bool, str]:
        if not self.synced:
            return False, "cluster cache: waiting for the first sync of " + ", ".join(self._waiting())
        nodes, pods = self.state.counts()
        return True, f"cluster cache synced: {nodes} nodes, {pods} pods"


AGE_RESOLUTION_S = 1.0  # a reused node table's load ages are at most this far behind the clock


def _same(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return a is b or a == b


@dataclasses.dataclass(frozen=True, eq=False)
class _Rows:
    """A request's names in one snapshot's index: ``snapshot_rows[k]`` is the row of request
    position ``positions[k]``. ``inverse``, when the names are every node of the snapshot: the
    request position of each snapshot row (None otherwise)."""

    snapshot_rows: np.ndarray
    positions: np.ndarray
    unresolved: dict[str, str]
    inverse: np.ndarray | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class _Built:
    """The last Candidates built: for which snapshot, name list and time; ``table_rows`` the
    snapshot rows of its table (None: every node, in snapshot order)."""

    generation: int
    names: tuple[str, ...]
    now: float
    table_rows: np.ndarray | None
    cands: Candidates


class CacheSource:
    """NodeSource over the cache's snapshots (names form, and Nodes form by name)."""

    mode = "cache"

    def __init__(self, cache: Cache | CacheProcess, *, clock: Callable[[], float] = time.time) -> None:
        self._cache = cache
        self._clock = clock
        self._last: _Built | None = None
        self._rows_memo: tuple[object, tuple[str, ...], _Rows] | None = None

    def _snapshot(self) -> Snapshot:
        if not self._cache.synced:
            raise CacheNotReady(self._cache.readiness()[1])
        return self._cache.state.snapshot

    def _candidates(self, names: Sequence[str]) -> Candidates:
        """The request's Candidates, built once per snapshot and name list: a scheduler that
        sends the same list again (``NameListMemo`` hands back the same tuple) gets the same
        table until a new snapshot is published; only the load ages are renewed, every
        ``AGE_RESOLUTION_S``."""
        snap = self._snapshot()
        names = names if isinstance(names, tuple) else tuple(names)
        now = self._clock()
        last = self._last
        if last is not None and last.generation == snap.generation and _same(last.names, names):
            if now - last.now < AGE_RESOLUTION_S:
                return last.cands
            table = dataclasses.replace(last.cands.table, load_age_s=snap.ages(last.table_rows, now))
            result = dataclasses.replace(last.cands, table=table)
            self._last = dataclasses.replace(last, now=now, cands=result)
            return result
        r = self._rows(snap, names)
        if r.inverse is not None:  # every known node, in some order: the snapshot's own arrays, nothing gathered
            table_rows, result = None, Candidates(snap.table(None, now), r.inverse, {})
        else:  # the table's names are the request's, in order, when every name resolved
            table_rows = r.snapshot_rows
            result = Candidates(snap.table(table_rows, now, names if not r.unresolved else None),
                                r.positions, r.unresolved)
        self._last = _Built(snap.generation, names, now, table_rows, result)
        return result

    def _rows(self, snap: Snapshot, names: tuple[str, ...]) -> _Rows:
        """Where the request's names are in the snapshot; reused while the node set is the
        same (snapshots share their index until a node changes), so pod churn does not redo
        the per-name work of every call."""
        memo = self._rows_memo
        if memo is not None and memo[0] is snap.index and _same(memo[1], names):
            return memo[2]
        index = snap.index
        found = list(map(index.get, names))  # one dict lookup per name, at C speed
        if None not in found:
            rows, positions = np.array(found, dtype=np.intp), np.arange(len(names), dtype=np.intp)
            inverse = None
            if len(names) == len(snap.names):  # distinct names (the decoder checks), all known
                inverse = np.empty_like(rows)
                inverse[rows] = positions
            out = _Rows(rows, positions, {}, inverse)
        else:
            positions = [pos for pos, row in enumerate(found) if row is not None]
            unresolved = {names[pos]: (f"node {names[pos]} is not in the extender's cluster cache (the cache "
                                       "is behind the scheduler, or the node was deleted)")
                          for pos, row in enumerate(found) if row is None}
            out = _Rows(np.array([found[p] for p in positions], dtype=np.intp), np.array(positions, dtype=np.intp),
                        unresolved)
        self._rows_memo = (index, names, out)
        return out

    def candidates(self, request: SchedulingRequest, resources: tuple[str, ...]) -> Candidates:
        return self._candidates(request.names)

    def known_nodes(self, names: Sequence[str], resources: tuple[str, ...]) -> Candidates:
        return self._candidates(names)

    def readiness(self) -> tuple[bool, str]:
        return self._cache.readiness()

    def victim(self, uid: str, resources: tuple[str, ...]) -> tuple[np.ndarray, ...] | None:
        """(requests, limits, estimated usage) of a pod the cache counts, by UID."""
        return self._cache.state.pod_vectors(uid, resources)


class BindState(Protocol):
    """What the binder needs of the cache: ``ClusterState``, or the cache process's ``RemoteState``."""

    def assume(self, *, uid: str, node: str, pod: Pod | None = None) -> Assumption: ...

    def forget(self, uid: str) -> bool: ...


class CachedBinder:
    """Binds through the API with the pod counted on its node from the moment the bind
    arrives (``ClusterState.assume``), so that a filter or prioritize call that comes while
    the Binding is in flight, or right after, sees it; a failed bind uncounts it
    (``ClusterState.forget``). A retried bind of a pod the watch shows on that node succeeds
    without a second Binding; one counted on another node is refused. ``on_visibility``
    receives each bind's ``Assumption.outcome`` ("late" when it could not be shown in time,
    "not_ready" when the cache could not answer): the ``extender_bind_visibility_total``
    metric."""

    def __init__(self, binder: Binder, state: BindState, *, logger: logging.Logger | None = None,
                 on_visibility: Callable[[str], None] | None = None) -> None:
        self._binder = binder
        self._state = state
        self._log = logger or logging.getLogger("extender.cache")
        self._on_visibility = on_visibility

    def bind(self, target: BindTarget) -> BindResult:
        """The cache's count and checks, then the API's Binding within what is left of the
        bind's budget. A cache that cannot answer (its process restarting) does not block the
        bind: the API's UID precondition still refuses a pod bound elsewhere, and the watch
        shows the pod once the cache is back."""
        start = time.monotonic()
        owned = False
        if target.pod_uid:
            seen = self._assume(target)
            if seen is not None and seen.outcome == CONFIRMED:
                return BindResult(BindOutcome.ALREADY_BOUND, "")
            if seen is not None and seen.outcome == ELSEWHERE:
                return BindResult(BindOutcome.CONFLICT, f"pod {target.namespace}/{target.pod_name} is "
                                                        f"already bound to node {seen.node}, not {target.node}")
            owned = seen is not None and seen.outcome == COUNTED
        result = self._binder.bind(target, timeout_s=self._binder.timeout_s - (time.monotonic() - start))
        if owned and not result.ok:
            try:
                self._state.forget(target.pod_uid)
            except CacheNotReady as exc:
                self._log.warning("bind of %s/%s failed; the cache uncounts it when it can: %s",
                                  target.namespace, target.pod_name, exc)
        return result

    def _assume(self, target: BindTarget) -> Assumption | None:
        try:
            seen = self._state.assume(uid=target.pod_uid, node=target.node, pod=target.pod)
        except CacheNotReady as exc:
            self._log.warning("bind of %s/%s to %s without the cache's count and checks: %s", target.namespace,
                              target.pod_name, target.node, exc)
            self._count("not_ready")
            return None
        self._count("late" if seen.late else seen.outcome)
        if seen.outcome == UNKNOWN_POD:
            self._log.warning("bind of %s/%s (uid %s) to %s: the pod is in neither the cache nor a recent "
                              "scheduling request; counted only once the watch shows it", target.namespace,
                              target.pod_name, target.pod_uid, target.node)
        return seen

    def _count(self, outcome: str) -> None:
        if self._on_visibility is not None:
            self._on_visibility(outcome)
