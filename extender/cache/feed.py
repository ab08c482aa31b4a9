"""The cluster cache in the process that holds it: informers, load pollers and the publisher
around one ``ClusterState``.

Turned on when the extender has API access; ``/readyz`` fails until the first full list of
nodes and pods (and the first poll of each configured load source) has been applied. It runs
in the worker (``EXTENDER_CACHE_PROCESS=false``) or in the child of ``extender.cache.process``;
either way the worker reads it through ``extender.cache.node_source``.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from kubernetes.client import ApiClient

from extender.cache.config import CacheConfig, CachePolicy
from extender.cache.gate import CallGate
from extender.cache.informer import Informer, InformerHandler
from extender.cache.snapshot import Snapshot
from extender.cache.store import (
    ClusterState,
)
from extender.load.metrics_server import MetricsServerSource
from extender.load.prometheus import PrometheusSource, default_prom_queries
from extender.load.window import LoadWindow
from extender.metrics import CacheMetrics
from scoring import Policy


def _handlers(state: ClusterState) -> tuple[tuple[Literal["nodes", "pods"], InformerHandler], ...]:
    """The informers' kinds and the store's handler for each."""
    return (("nodes", state.nodes_handler), ("pods", state.pods_handler))


class Cache:
    """Owns the store and every thread that feeds it."""

    def __init__(
        self,
        api_client: ApiClient,
        policy: Policy | CachePolicy,
        config: CacheConfig,
        *,
        metrics: CacheMetrics | None = None,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
        gate: CallGate | None = None,
        on_publish: Callable[[Snapshot], object] | None = None,
    ) -> None:
        self._log = logger or logging.getLogger("extender.cache")
        self._metrics = metrics
        self._config = config
        self._clock = clock
        policy = policy if isinstance(policy, CachePolicy) else CachePolicy.of(policy)
        self._policy = policy  # in use; the publisher applies ``_wanted`` (``use_policy``)
        self._wanted = policy
        self._synced = False  # set once, after the first sync has been published
        self._gate = gate  # scheduling calls in flight: event application and publishing wait
        self._on_publish = on_publish  # after each publisher round (the cache process ships it)
        self.window = LoadWindow(("cpu", "memory"), window_s=config.load_window_s)
        self.state = ClusterState(
            estimator_factors=dict(policy.estimator_factors),
            annotation_prefix=config.annotation_prefix if "annotations" in config.load_sources else None,
            load=self.window,
            compensation=config.compensation,
            clock=clock,
            logger=self._log,
        )
        self._event_counters: dict[tuple[str, str], Any] = {}
        on_event = self._count_event if metrics is not None else None
        on_restart = self._count_restart if metrics is not None else None
        self.informers = {
            kind: Informer(
                kind,
                api_client,
                handler,
                on_event=on_event,
                on_thread_restart=on_restart,
                before_line=gate.feeder(self._yield_counter(kind)) if gate is not None else None,
                resync_s=config.resync_s,
                watch_timeout_s=config.watch_timeout_s,
                logger=self._log,
            )
            for kind, handler in _handlers(self.state)
        }
        self.pollers: list[MetricsServerSource | PrometheusSource] = []
        on_poll = self._count_poll if metrics is not None else None
        if "metrics-server" in config.load_sources:
            self.pollers.append(
                MetricsServerSource(
                    api_client,
                    self.window,
                    interval_s=config.metrics_interval_s,
                    on_poll=on_poll,
                    logger=self._log,
                )
            )
        if "prometheus" in config.load_sources:
            if not config.prometheus_url:
                raise ValueError("load source prometheus needs EXTENDER_PROMETHEUS_URL")
            label = "node" if config.prometheus_node_label == "node" else "instance"
            self.pollers.append(
                PrometheusSource(
                    config.prometheus_url,
                    self.window,
                    queries=default_prom_queries(label),
                    node_label=config.prometheus_node_label,
                    node_by_ip=self.state.node_by_ip,
                    interval_s=config.metrics_interval_s,
                    on_poll=on_poll,
                    logger=self._log,
                )
            )
        for poller in self.pollers:
            poller.on_thread_restart = on_restart
        if metrics is not None:  # every thread exported from the start, at 0: a rate sees the first restart
            for thread in (
                *(f"informer-{kind}" for kind in self.informers),
                *(f"load-{p.source}" for p in self.pollers),
            ):
                metrics.thread_restarts.labels(thread)
        if metrics is not None and metrics.snapshot_age is not None:  # when scraped: the age served
            metrics.snapshot_age.set_function(lambda: max(0.0, self._clock() - self.state.snapshot.built_at))
        self._stop = threading.Event()
        self._publisher = threading.Thread(target=self._publish_loop, name="cache-publisher", daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for t in (*self.informers.values(), *self.pollers):
            t.start()
        self._publisher.start()
        self._log.info(
            "cluster cache started: informers nodes, pods; load sources %s",
            ",".join(self._config.load_sources) or "none",
        )

    def stop(self) -> None:
        self._stop.set()
        for t in (*self.informers.values(), *self.pollers):
            t.stop()

    def use_policy(self, policy: Policy | CachePolicy, version: str = "") -> None:
        """A new policy: the publisher applies what the cache takes from it before its next
        round (``apply_policy``), so that its snapshot shows the pods estimated with it."""
        self._wanted = policy if isinstance(policy, CachePolicy) else CachePolicy.of(policy, version)

    def apply_policy(self) -> None:
        """Owner: the publisher thread. The estimator's factors re-estimate every counted pod
        (``ClusterState.set_estimator_factors``); ``staleAfterSeconds`` counts stale nodes."""
        wanted = self._wanted
        if wanted == self._policy:
            return
        changed = self.state.set_estimator_factors(dict(wanted.estimator_factors))
        self._policy = wanted
        self._log.info(
            "cluster cache: policy version %s in use (estimator factors %s, %s; staleAfterSeconds %g)",
            wanted.version,
            ", ".join(f"{k} {v:g}" for k, v in wanted.estimator_factors) or "none",
            "pods estimated again" if changed else "unchanged",
            wanted.stale_after_s,
        )

    def _publish_loop(self) -> None:
        publisher_turn = (
            self._gate.feeder(self._yield_counter("publisher")) if self._gate is not None else None
        )
        while not self._stop.wait(self._config.publish_interval_s):
            if publisher_turn is not None:
                publisher_turn()
            try:
                self.apply_policy()
                snap = self.state.publish()
            except Exception:  # noqa: BLE001 - never let the publisher die: the next round retries
                self._log.exception("snapshot publish failed")
                continue
            if self._metrics is not None:
                self._observe(snap)
            if self._on_publish is not None:
                try:
                    self._on_publish(snap)
                except Exception:  # noqa: BLE001 - a failed hand-off must not stop publishing
                    self._log.exception("snapshot hand-off failed")

    def _observe(self, snap: Snapshot) -> None:
        m = self._metrics
        assert m is not None
        now = self._clock()
        m.cache_objects.labels("nodes").set(len(snap.names))
        m.cache_objects.labels("pods").set(snap.pods)
        m.compensated_pods.set(snap.compensated_pods)
        if len(snap.names):
            stale_after = self._policy.stale_after_s
            m.stale_nodes.set(int(np.count_nonzero(now - snap.newest_sample >= stale_after)))
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

    def _count_restart(self, thread: str) -> None:
        assert self._metrics is not None
        self._metrics.thread_restarts.labels(thread).inc()

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
        limit = self._config.unhealthy_after_s
        problems = [why for i in self.informers.values() if (why := i.health(limit)) is not None]
        if problems:
            return False, "cluster cache: not current: " + "; ".join(problems)
        nodes, pods = self.state.counts()
        return True, f"cluster cache synced: {nodes} nodes, {pods} pods"
