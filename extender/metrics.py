"""Prometheus metrics of the service, on a registry owned by the app (no global registry).

One gunicorn worker serves the extender (see gunicorn_conf.py), so a plain registry is exact;
nothing here needs prometheus_client's multiprocess mode. A cluster cache run in a process of its
own keeps its metrics (``CacheMetrics``) in that process; the worker appends their exposition.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
NODE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class Metrics:
    """The metric objects; ``exposition()`` renders them in the text format."""

    def __init__(self, *, mode: str, cache: bool = True, policy: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "extender_requests_total", "Requests by verb and HTTP status code.", ["verb", "code"], registry=r
        )
        self.latency = Histogram(
            "extender_request_duration_seconds",
            "Server time per request, from body read to answer encoded.",
            ["verb"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.nodes = Histogram(
            "extender_request_nodes",
            "Candidate nodes per request.",
            ["verb"],
            buckets=NODE_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "extender_errors_total", "Failed requests by verb and kind.", ["verb", "kind"], registry=r
        )
        self.rejections = Counter(
            "extender_filter_rejections_total",
            "Nodes the filter rejected, by reason.",
            ["reason"],
            registry=r,
        )
        self.fallback = Counter(
            "extender_load_fallback_nodes_total",
            "Nodes scored by the stale-load fallback (requests-based).",
            registry=r,
        )
        self.binds = Counter("extender_bind_total", "Bind calls by outcome.", ["outcome"], registry=r)
        self.bind_visibility = Counter(
            "extender_bind_visibility_total",
            "Binds in cluster-cache mode by how the cache counted the pod before the Binding: counted, "
            "confirmed (the watch had it there), known (an earlier bind had), unknown_pod (no spec: not "
            "counted until the watch shows it), late (not shown within the budget), not_ready, elsewhere.",
            ["outcome"],
            registry=r,
        )
        self.connections_closed = Counter(
            "extender_connections_closed_total",
            "Connections the server closed before a request on them reached a thread, by reason: "
            "idle (nothing sent within the keep-alive), header_timeout and body_timeout (408), "
            "headers_too_large (431), body_too_large (413, chunked), over_budget (503: request "
            "bytes held beyond the budget), evicted_idle (closed to accept another at the "
            "connection limit), tls_handshake (failed or not finished in time).",
            ["reason"],
            registry=r,
        )
        self.policy_reloads = Counter(
            "extender_policy_reload_total",
            "Changes of the policy file, by outcome: reloaded (in force from the next call), "
            "unchanged (a new file with the same bytes), invalid (the policy in force kept; the "
            "log names the field), unreadable (gone or unreadable: the policy in force kept).",
            ["outcome"],
            registry=r,
        )
        self.tls_reloads = Counter(
            "extender_tls_reload_total",
            "Changes of the verbs listener's certificate files, by outcome: reloaded, or error "
            "(the previous certificate kept).",
            ["outcome"],
            registry=r,
        )
        # cluster-cache mode: here when the cache runs in this process, else in the cache
        # process's own registry (``extender.cache.process``), whose exposition is appended
        self.cache = CacheMetrics(r) if cache else None
        self._extra: list[Callable[[], bytes]] = []
        self.decisions = Counter(
            "extender_decisions_recorded_total", "Scheduling decisions kept for /debug/decisions.", registry=r
        )
        self._info = Gauge(
            "extender_info",
            "Constant 1, labelled with the node-data mode and the version of the policy in force "
            "(the first 12 hex digits of the SHA-256 of the policy file).",
            ["mode", "policy"],
            registry=r,
        )
        self._mode, self._policy = mode, policy
        self._info.labels(mode=mode, policy=policy).set(1)
        self.ready = Gauge(
            "extender_ready",
            "1 while /readyz answers ok (evaluated every second, whether or not anything probes), "
            "else 0: the cluster cache before its first sync, or not current; /readyz and the log "
            "say why.",
            registry=r,
        )
        # What the default registry would carry: process_* (CPU, resident memory, open fds:
        # a 5,000-node cache is hundreds of MB), python_gc_* (a full collection walks every
        # object the cache made since it froze its first sync) and python_info.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

    def policy_in_force(self, version: str) -> None:
        """``extender_info``'s ``policy`` label: ``version`` from now on (one series at a time)."""
        if version == self._policy:
            return
        self._info.labels(mode=self._mode, policy=version).set(1)
        self._info.remove(self._mode, self._policy)
        self._policy = version

    def add_exposition(self, render: Callable[[], bytes]) -> None:
        """Another registry's text exposition, appended to this one's (the cache process's)."""
        self._extra.append(render)

    def exposition(self) -> bytes:
        return b"".join([generate_latest(self.registry), *(render() for render in self._extra)])


class CacheMetrics:
    """The cluster cache's metrics (informers, load sources, snapshots), registered on
    ``registry``: the service's own, or the cache process's."""

    def __init__(self, registry: CollectorRegistry, *, snapshot_age: bool = True) -> None:
        r = registry
        self.informer_events = Counter(
            "extender_informer_events_total",
            "Informer activity by kind (nodes, pods) and what happened: event, "
            "bookmark, relist, restart, error, malformed.",
            ["kind", "what"],
            registry=r,
        )
        self.thread_restarts = Counter(
            "extender_thread_restarts_total",
            "Times a cache thread's loop (informer-nodes, informer-pods, load-<source>) crashed "
            "and was started over after a backoff.",
            ["thread"],
            registry=r,
        )
        # in the cache process the serving process reports the age of the snapshot it serves
        self.snapshot_age = snapshot_age_gauge(r) if snapshot_age else None
        self.cache_objects = Gauge(
            "extender_cache_objects", "Nodes known and pods counted on them.", ["kind"], registry=r
        )
        self.load_source_age = Gauge(
            "extender_load_source_age_seconds",
            "Time since the last successful poll of each load source.",
            ["source"],
            registry=r,
        )
        self.load_polls = Counter(
            "extender_load_polls_total", "Load source polls by outcome.", ["source", "outcome"], registry=r
        )
        self.stale_nodes = Gauge(
            "extender_load_stale_nodes",
            "Known nodes whose newest load sample is older than load.staleAfterSeconds.",
            registry=r,
        )
        self.compensated_pods = Gauge(
            "extender_compensated_pods",
            "Recently bound pods whose estimated usage is added to their node until the load shows them.",
            registry=r,
        )
        self.cache_yields = Counter(
            "extender_cache_yields_total",
            "Times a cache feeder (informer nodes / pods, publisher) stepped aside "
            "for a scheduling call in flight.",
            ["feeder"],
            registry=r,
        )


def snapshot_age_gauge(registry: CollectorRegistry) -> Gauge:
    return Gauge(
        "extender_cache_snapshot_age_seconds",
        "Age of the snapshot the verbs answer from (kept while nothing it copies changes: "
        "up to 10 s in a quiet cluster).",
        registry=registry,
    )


CHILD_RESTART_REASONS = ("exited", "unresponsive", "start_failed")


def cache_child_restarts_counter(registry: CollectorRegistry) -> Counter:
    """``extender_cache_child_restarts_total{reason}``, on the serving process's registry (a
    counter in the child would start again at 0 with each new child); every reason exported
    from the start, at 0, so that a rate or an alert sees the first restart."""
    counter = Counter(
        "extender_cache_child_restarts_total",
        "Cache processes (EXTENDER_CACHE_PROCESS) replaced by a new one, by how the last one ended: "
        "exited (it crashed or someone killed it), unresponsive (it answered no heartbeat for "
        "EXTENDER_CACHE_PROCESS_TIMEOUT_S, so the serving process killed it), start_failed (it "
        "could not be started, or following it failed).",
        ["reason"],
        registry=registry,
    )
    for reason in CHILD_RESTART_REASONS:
        counter.labels(reason)
    return counter
