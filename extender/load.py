"""Live load data for the cluster cache: rolling per-node, per-resource windows of usage samples.

Three feeds write into one ``LoadWindow`` through the same ``record`` call, each under its own
source name:

* ``annotations``: node annotations, recorded by the cluster cache itself as it sees nodes;
* ``metrics-server``: ``MetricsServerSource`` polls ``metrics.k8s.io/v1beta1`` NodeMetrics;
* ``prometheus``: ``PrometheusSource`` polls the Prometheus instant-query API.

The window turns the samples into the four load columns of ``scoring.types.NodeTable``
(``usage`` latest, ``usage_avg``, ``usage_std``, ``usage_p95``) plus the time of each node's
newest sample, from which the cache derives ``load_age_s``. Units are the scheduler's: CPU in
millicores, memory and everything else in base units (bytes).

Why it looks like this:

* ``view`` runs on the request path for up to 10,000 nodes. Recomputing the statistics of
  10,000 x 2 x 64 samples costs ~20-40 ms (the per-row sort alone is ~5 ms), so the window keeps
  per (node, resource) the statistics of the samples currently in the window together with the
  cutoff range over which they stay exact (``hi < now - window_s <= lo``: no excluded sample
  re-enters, no included one leaves). A view gathers cached rows, checks that range
  vectorised, and recomputes only the pairs that changed. Pollers write with
  ``record_many(..., now=...)``, which recomputes each batch's pairs before releasing the lock,
  and call ``refresh(now)`` after each poll; both also precompute each pair's *next* state
  (the statistics once its oldest sample(s) leave the window), so neither a poll nor the
  expiry that follows it costs the request path more than a copy.
  Samples live in preallocated numpy ring buffers (nodes x resources x max_samples, with their
  times), grown by doubling; a dict maps node -> row.
* One lock guards everything. Writers take it per batch of a few hundred samples and
  ``refresh`` per chunk of ~1,000 pairs, so a view never waits long; views return fresh arrays.
* Deduplication: a poller that sees the same metrics-server scrape twice (metrics-server
  refreshes every 15-60 s, and its timestamps have second resolution) must not count it twice.
  A sample is ignored unless it is newer than the newest one the same source gave for the same
  node and resource.
* "Latest" is the sample with the greatest time in the window, not the one written last:
  sources interleave and a slow poll can deliver an older sample after a newer one.
* The pollers are daemon threads with full-jitter exponential backoff on errors
  (``uniform(0, min(cap, base * 2**(failures-1)))``, AWS Architecture Blog "Exponential Backoff
  And Jitter"). metrics-server goes through the official client with urllib3 retries off (one
  attempt per poll, bounded by ``timeout_s``), with ``_preload_content=False`` and msgspec
  decoding of the few fields needed (the client's model deserialisation is slow and
  CustomObjectsApi returns plain dicts anyway). Prometheus goes through a urllib3
  ``PoolManager`` (the client's own dependency), also without retries.

Prometheus answers are handled as the HTTP API documents them
(https://prometheus.io/docs/prometheus/latest/querying/api/): ``status`` "success" or "error"
with ``errorType``/``error`` (HTTP 400 bad parameters, 422 unexecutable expression, 503 timeout
or abort; other codes may come from proxies in front, with any body); ``warnings`` (partial
answers, e.g. from Thanos/Mimir store failures) are logged; ``data.resultType`` must be
``vector``, each ``result[]`` has ``metric`` (labels) and ``value = [unix_time, "value"]``
(a string, which may be "NaN" or "+Inf"); native-histogram series (``histogram`` instead of
``value``) are skipped.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import ipaddress
import itertools
import logging
import math
import random
import re
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import urllib3
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from extender.binding import no_retry_client
from extender.quantity import QuantityError, base_units, cpu_millis

__all__ = [
    "DEFAULT_PROM_QUERIES",
    "LOAD_SOURCES",
    "LoadView",
    "LoadWindow",
    "MetricsServerSource",
    "PollError",
    "PromQuery",
    "PrometheusSource",
    "SourceStatus",
    "default_prom_queries",
    "parse_load_sources",
    "parse_rfc3339",
]

_LOG = logging.getLogger(__name__)

ANNOTATIONS: Final = "annotations"
METRICS_SERVER: Final = "metrics-server"
PROMETHEUS: Final = "prometheus"
LOAD_SOURCES: Final[tuple[str, ...]] = (ANNOTATIONS, METRICS_SERVER, PROMETHEUS)

FloatArray = npt.NDArray[np.float64]

_P95: Final = 0.95
_INITIAL_ROWS: Final = 64
_WRITE_BATCH: Final = 256  # samples written per lock acquisition in record_many
_REFRESH_CHUNK: Final = 1024  # (node, resource) pairs recomputed per lock acquisition in refresh
_WARN_EVERY_S: Final = 60.0  # rate limit of the "rejected value" warning, per source
_MAX_MESSAGE: Final = 300  # cap on error texts kept in SourceStatus and logs

# Layout of the cached statistics of one (node, resource) pair: the four load columns, the
# newest in-window sample time, and the validity range of the whole record, (HI, LO]:
# LO = the oldest in-window sample time (+inf if none), HI = the newest retained sample time
# outside the window (-inf if none). The record is exact for every cutoff c with HI < c <= LO.
_LATEST, _AVG, _STD, _P95_F, _NEWEST, _LO, _HI = range(7)
_NFIELDS: Final = 7
_EMPTY_STATS: Final = (np.nan, np.nan, np.nan, np.nan, -np.inf, np.inf, -np.inf)


def parse_load_sources(spec: str) -> tuple[str, ...]:
    """Validate a comma-separated list of load sources, e.g. ``"annotations,metrics-server"``.

    Entries are trimmed and case-insensitive; the result is in canonical spelling and in the
    order given. A blank spec means no live load source (``()``). Raises ``ValueError`` naming
    the bad entry for an unknown, empty or repeated one.
    """
    if not spec.strip():
        return ()
    out: list[str] = []
    for position, raw in enumerate(spec.split(","), start=1):
        entry = raw.strip().lower()
        if not entry:
            raise ValueError(f"load sources {spec!r}: entry {position} is empty")
        if entry not in LOAD_SOURCES:
            raise ValueError(
                f"load sources {spec!r}: unknown source {raw.strip()!r} "
                f"(expected one of: {', '.join(LOAD_SOURCES)})"
            )
        if entry in out:
            raise ValueError(f"load sources {spec!r}: {entry!r} is listed twice")
        out.append(entry)
    return tuple(out)


# ---- the window ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LoadView:
    """Load statistics aligned with the names asked for and the resources asked for.

    Fresh arrays owned by the caller (Fortran order, like NodeTable's columns). NaN where
    unknown: no sample in the window, a resource the window does not track, an unknown node;
    ``usage_std`` is also NaN with fewer than 2 samples. ``newest`` is the time of the newest
    in-window sample of the node over all tracked resources (-inf = none).
    """

    usage: FloatArray  # (N, R) latest sample
    usage_avg: FloatArray  # (N, R) mean of the samples in the window
    usage_std: FloatArray  # (N, R) population std
    usage_p95: FloatArray  # (N, R) 95th percentile, linear interpolation (numpy's default)
    newest: FloatArray  # (N,) wall-clock seconds, -inf = none


@dataclasses.dataclass(frozen=True)
class SourceStatus:
    """What one source has done.

    ``last_success``: wall time of the last successful poll (pollers) or of the last
    ``note_poll(ok=True)`` (pushed sources such as annotations may call it; None = never).
    ``last_error``: the most recent failure's message, kept after a recovery so that it can
    still be read ("" = never failed); ``consecutive_failures`` is 0 while healthy.
    ``nodes``: nodes holding a sample from this source (forget() clears a node).
    ``samples_total``: samples accepted; ``rejected_total``: values ignored as negative, NaN,
    infinite or not numbers, and samples with a non-finite time; ``duplicates_total``: samples
    not newer than the source's newest for that node and resource.
    """

    last_success: float | None
    last_error: str
    nodes: int
    samples_total: int
    rejected_total: int = 0
    duplicates_total: int = 0
    last_error_at: float | None = None
    consecutive_failures: int = 0


class _SourceState:
    """Mutable per-source bookkeeping (guarded by the window's lock)."""

    __slots__ = ("duplicates", "failures", "last_error", "last_error_at", "last_success",
                 "last_t", "last_warn", "rejected", "samples", "unwarned")

    def __init__(self, rows: int, resources: int) -> None:
        self.last_t = np.full((rows, resources), -np.inf)  # newest accepted sample time
        self.samples = 0
        self.rejected = 0
        self.duplicates = 0
        self.last_success: float | None = None
        self.last_error = ""
        self.last_error_at: float | None = None
        self.failures = 0
        self.last_warn = -math.inf
        self.unwarned = 0


def _stats(t: FloatArray, v: FloatArray, cut: FloatArray) -> FloatArray:
    """Statistics of K sample rows (K, S) over the samples with time >= ``cut`` (K,): (K, 7).

    Vectorised over rows. The percentile reproduces ``np.percentile(x, 95)`` (method "linear")
    operation for operation: virtual index (n-1)*0.95, floor, and numpy's ``_lerp``.
    """
    k = t.shape[0]
    out = np.empty((k, _NFIELDS))
    if k == 0:
        return out
    rows = np.arange(k)
    inside = t >= cut[:, None]
    count = np.count_nonzero(inside, axis=1)
    n = count.astype(np.float64)
    has = count > 0
    j = t.argmax(axis=1)  # the newest retained sample is in the window if any sample is
    out[:, _NEWEST] = np.where(has, t[rows, j], -np.inf)
    out[:, _LATEST] = np.where(has, v[rows, j], np.nan)
    out[:, _LO] = np.where(inside, t, np.inf).min(axis=1)
    out[:, _HI] = np.where(inside, -np.inf, t).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.where(inside, v, 0.0)
        mean = dev.sum(axis=1) / n
        dev -= mean[:, None]
        dev *= inside
        var = np.einsum("ij,ij->i", dev, dev) / n
        out[:, _AVG] = mean
        out[:, _STD] = np.where(count >= 2, np.sqrt(var), np.nan)
        ordered = np.where(inside, v, np.inf)
        ordered.sort(axis=1)  # the in-window values first, ascending
        vi = (n - 1.0) * _P95
        below = np.floor(vi)
        gamma = vi - below
        last = np.maximum(count - 1, 0)
        lo_i = np.minimum(np.maximum(below, 0.0).astype(np.intp), last)
        hi_i = np.minimum(lo_i + 1, last)
        a = ordered[rows, lo_i]
        b = ordered[rows, hi_i]
        diff = b - a
        p = a + diff * gamma
        p = np.where(gamma >= 0.5, b - diff * (1.0 - gamma), p)
    out[:, _P95_F] = np.where(has, p, np.nan)
    return out


class LoadWindow:
    """Rolling windows of usage samples per node and resource.

    Thread-safe: one lock; writers hold it per batch, readers get consistent fresh copies.
    ``resources`` are the tracked resources (values for others are ignored); ``window_s`` the
    window length; ``max_samples`` the ring size per node and resource (the oldest sample is
    overwritten; size it to cover the window at the fastest source's rate). Sample times
    later than ``now`` (clock skew between sources and this process) count as in the window.
    """

    def __init__(self, resources: Sequence[str] = ("cpu", "memory"), *, window_s: float = 300.0,
                 max_samples: int = 64, initial_nodes: int = _INITIAL_ROWS,
                 logger: logging.Logger | None = None) -> None:
        res = tuple(resources)
        if not res or len(set(res)) != len(res) or not all(isinstance(r, str) and r for r in res):
            raise ValueError(f"LoadWindow resources must be distinct non-empty names, got {res!r}")
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"LoadWindow window_s must be a positive number, got {window_s!r}")
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ValueError(f"LoadWindow max_samples must be an integer >= 1, got {max_samples!r}")
        self.resources: tuple[str, ...] = res
        self.window_s = float(window_s)
        self.max_samples = max_samples
        self._log = logger or _LOG
        self._col = {r: i for i, r in enumerate(res)}
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}
        self._rows_gen = 0  # bumped whenever the node -> row map changes
        # bumped whenever a sample is accepted or a node forgotten: readers that copy the
        # window's statistics (the cluster snapshot) know when their copy is out of date
        self._version = 0
        # the last names sequence looked up, and its rows: a caller that passes the same
        # (immutable) sequence object again skips 10,000 dict lookups
        self._memo: tuple[object, int, npt.NDArray[np.intp]] | None = None
        self._names: list[str | None] = []  # row -> node name (None = free)
        self._free: list[int] = []
        self._used = 0  # rows ever handed out; rows >= _used are untouched
        self._sources: dict[str, _SourceState] = {}
        self._cap = 0
        nr = len(res)
        self._t = np.empty((0, nr, max_samples))
        self._v = np.empty((0, nr, max_samples))
        self._cur = np.empty((0, nr, _NFIELDS))
        self._nxt = np.empty((0, nr, _NFIELDS))
        self._stale = np.empty((0, nr), dtype=bool)
        self._nxt_ok = np.empty((0, nr), dtype=bool)
        self._newest = np.empty(0)  # newest retained sample time per row, -inf = none
        self._grow(max(1, int(initial_nodes)))

    # ---- storage ---------------------------------------------------------------------------
    def _grow(self, cap: int) -> None:
        old, nr, s = self._cap, len(self.resources), self.max_samples

        def grown(a: np.ndarray, shape: tuple[int, ...], fill: Any) -> np.ndarray:
            new = np.empty(shape, dtype=a.dtype)
            new[:old] = a
            new[old:] = fill
            return new

        self._t = grown(self._t, (cap, nr, s), -np.inf)
        self._v = grown(self._v, (cap, nr, s), np.nan)
        self._cur = grown(self._cur, (cap, nr, _NFIELDS), _EMPTY_STATS)
        self._nxt = grown(self._nxt, (cap, nr, _NFIELDS), _EMPTY_STATS)
        self._stale = grown(self._stale, (cap, nr), False)
        self._nxt_ok = grown(self._nxt_ok, (cap, nr), False)
        self._newest = grown(self._newest, (cap,), -np.inf)
        for st in self._sources.values():
            st.last_t = grown(st.last_t, (cap, nr), -np.inf)
        self._names.extend([None] * (cap - old))
        self._cap = cap

    def _row_for(self, node: str) -> int:
        row = self._rows.get(node)
        if row is not None:
            return row
        if self._free:
            row = self._free.pop()
        else:
            if self._used == self._cap:
                self._grow(self._cap * 2)
            row = self._used
            self._used += 1
        self._rows[node] = row
        self._names[row] = node
        self._rows_gen += 1
        return row

    def _clear_row(self, row: int) -> None:
        self._t[row] = -np.inf
        self._v[row] = np.nan
        self._cur[row] = _EMPTY_STATS
        self._nxt[row] = _EMPTY_STATS
        self._stale[row] = False
        self._nxt_ok[row] = False
        self._newest[row] = -np.inf
        for st in self._sources.values():
            st.last_t[row] = -np.inf

    def _source(self, name: str) -> _SourceState:
        st = self._sources.get(name)
        if st is None:
            st = self._sources[name] = _SourceState(self._cap, len(self.resources))
        return st

    # ---- writing ---------------------------------------------------------------------------
    def record(self, node: str, t: float, values: Mapping[str, float], *, source: str) -> None:
        """Add one sample time ``t`` (wall-clock s) with values per resource, in scheduler units.

        Negative, NaN, infinite or non-numeric values are ignored and counted (with a
        rate-limited warning); so is the whole sample if ``t`` is not finite. A value not newer
        than the newest one ``source`` gave for this node and resource is ignored (repeated
        polls). Values of untracked resources are ignored. A node gets a row only once it has
        an accepted value.
        """
        with self._lock:
            st = self._source(source)
            self._record_locked(st, source, node, t, values)

    def record_many(self, source: str, samples: Iterable[tuple[str, float, Mapping[str, float]]], *,
                    now: float | None = None) -> int:
        """``record`` for many ``(node, t, values)`` samples of one source; returns the number
        of values accepted. Takes the lock per batch of a few hundred samples.

        With ``now``, each batch's statistics are brought up to date for ``now`` (see
        ``refresh``) before the lock is released, so that views never find the poll's rows
        stale and never pay for their recomputation (pollers pass it)."""
        accepted = 0
        it = iter(samples)
        cut = None if now is None else float(now) - self.window_s
        touched: list[int] | None = None if cut is None else []
        while batch := list(itertools.islice(it, _WRITE_BATCH)):
            with self._lock:
                st = self._source(source)
                for node, t, values in batch:
                    accepted += self._record_locked(st, source, node, t, values, touched)
                if touched:
                    assert cut is not None
                    self._bring_up_to_date(np.unique(np.fromiter(touched, dtype=np.intp)), cut)
                    touched.clear()
        return accepted

    def _record_locked(self, st: _SourceState, source: str, node: str, t: float,
                       values: Mapping[str, float], touched: list[int] | None = None) -> int:
        try:
            t = float(t)
        except (TypeError, ValueError):
            t = math.nan
        if not math.isfinite(t):
            self._reject(st, source, node, "time", t)
            return 0
        row = self._rows.get(node)
        accepted = 0
        for res, raw in values.items():
            col = self._col.get(res)
            if col is None:
                continue
            try:
                x = float(raw)
            except (TypeError, ValueError):
                self._reject(st, source, node, res, raw)
                continue
            if not 0.0 <= x < math.inf:  # also false for NaN
                self._reject(st, source, node, res, raw)
                continue
            if row is None:
                row = self._row_for(node)
            if t <= st.last_t[row, col]:
                st.duplicates += 1
                continue
            times = self._t[row, col]
            slot = int(times.argmin())  # an empty slot (-inf) or the oldest sample
            if times[slot] > t:  # ring full of newer samples: this one would go first anyway
                continue
            times[slot] = t
            self._v[row, col, slot] = x
            st.last_t[row, col] = t
            self._stale[row, col] = True
            if t > self._newest[row]:
                self._newest[row] = t
            if touched is not None:
                touched.append(row * len(self.resources) + col)
            accepted += 1
        st.samples += accepted
        self._version += accepted > 0
        return accepted

    def _reject(self, st: _SourceState, source: str, node: str, what: str, value: object) -> None:
        st.rejected += 1
        st.unwarned += 1
        now = time.monotonic()
        if now - st.last_warn >= _WARN_EVERY_S:
            self._log.warning(
                "load source %s: ignored %d invalid value(s) (negative, NaN, infinite or not a "
                "number) since the last warning, e.g. node %s %s=%r",
                source, st.unwarned, node, what, value,
            )
            st.last_warn = now
            st.unwarned = 0

    def forget(self, node: str) -> None:
        """Drop every sample of ``node`` (e.g. the node was deleted); its row is reused."""
        with self._lock:
            row = self._rows.pop(node, None)
            if row is None:
                return
            self._clear_row(row)
            self._names[row] = None
            self._free.append(row)
            self._rows_gen += 1
            self._version += 1

    @property
    def version(self) -> int:
        """Changes whenever a sample is accepted or a node forgotten (never goes back)."""
        return self._version

    def note_poll(self, source: str, ok: bool, *, error: str = "", when: float | None = None) -> None:
        """Record the outcome of one poll of ``source`` for ``sources()``."""
        stamp = time.time() if when is None else when
        with self._lock:
            st = self._source(source)
            if ok:
                st.last_success = stamp
                st.failures = 0
            else:
                st.last_error = (error or "unknown error")[:_MAX_MESSAGE]
                st.last_error_at = stamp
                st.failures += 1

    # ---- reading ---------------------------------------------------------------------------
    def _current(self, rows: npt.NDArray[np.intp], cut: float) -> FloatArray:
        """Exact statistics at cutoff ``cut`` of ``rows``: (k, R, 7), a fresh array. Repairs
        the cache for the pairs whose cached range does not cover ``cut`` (lock held)."""
        cur = self._cur[rows]
        bad = self._stale[rows] | (cur[..., _HI] >= cut) | (cur[..., _LO] < cut)
        if bad.any():
            bi, bj = np.nonzero(bad)
            br = rows[bi]
            self._repair(np.unique(br * len(self.resources) + bj), cut)
            cur[bi, bj] = self._cur[br, bj]
        return cur

    def _repair(self, flat: npt.NDArray[np.intp], cut: float) -> None:
        """Make the cached statistics of the flat pairs exact at ``cut``: promote the
        precomputed next state where it covers ``cut``, recompute the rest."""
        cur2 = self._cur.reshape(-1, _NFIELDS)
        nxt2 = self._nxt.reshape(-1, _NFIELDS)
        stale2 = self._stale.reshape(-1)
        nok2 = self._nxt_ok.reshape(-1)
        cand = ~stale2[flat] & nok2[flat]
        if cand.any():
            f = flat[cand]
            nx = nxt2[f]
            ok = (nx[:, _HI] < cut) & (cut <= nx[:, _LO])
            if ok.any():
                promoted = f[ok]
                cur2[promoted] = nxt2[promoted]
                nok2[promoted] = False
                flat = flat[~np.isin(flat, promoted)]
        t2 = self._t.reshape(-1, self.max_samples)
        v2 = self._v.reshape(-1, self.max_samples)
        for start in range(0, flat.size, _REFRESH_CHUNK):  # chunks stay in the CPU caches
            f = flat[start:start + _REFRESH_CHUNK]
            cur2[f] = _stats(t2[f], v2[f], np.full(f.size, cut))
            stale2[f] = False
            nok2[f] = False

    def refresh(self, now: float) -> None:
        """Bring the cache up to date for ``now`` and precompute each pair's next state.

        Pollers call this after each poll so that the request path finds the statistics ready;
        calling it is never needed for correctness. Works in chunks, releasing the lock between.
        """
        cut = float(now) - self.window_s
        nr = len(self.resources)
        pos = 0
        while True:
            with self._lock:
                end = min(pos + _REFRESH_CHUNK, self._used * nr)
                if pos >= end:
                    return
                cur2 = self._cur.reshape(-1, _NFIELDS)
                stale2 = self._stale.reshape(-1)
                nok2 = self._nxt_ok.reshape(-1)
                c = cur2[pos:end]
                need = (stale2[pos:end] | (c[:, _HI] >= cut) | (c[:, _LO] < cut)
                        | (~nok2[pos:end] & np.isfinite(c[:, _LO])))
                if need.any():
                    self._bring_up_to_date(pos + np.flatnonzero(need), cut)
                pos = end

    def _bring_up_to_date(self, flat: npt.NDArray[np.intp], cut: float) -> None:
        """Make the current state of the flat pairs exact at ``cut`` and precompute the next
        state of those with samples in the window (lock held)."""
        cur2 = self._cur.reshape(-1, _NFIELDS)
        c = cur2[flat]
        bad = self._stale.reshape(-1)[flat] | (c[:, _HI] >= cut) | (c[:, _LO] < cut)
        if bad.any():
            self._repair(flat[bad], cut)
        nok2 = self._nxt_ok.reshape(-1)
        need = flat[~nok2[flat] & np.isfinite(cur2[flat, _LO])]
        t2 = self._t.reshape(-1, self.max_samples)
        v2 = self._v.reshape(-1, self.max_samples)
        nxt2 = self._nxt.reshape(-1, _NFIELDS)
        for start in range(0, need.size, _REFRESH_CHUNK):
            f = need[start:start + _REFRESH_CHUNK]
            after = np.nextafter(cur2[f, _LO], np.inf)  # once the oldest sample(s) left
            nxt2[f] = _stats(t2[f], v2[f], after)
            nok2[f] = True

    def _assemble(self, n: int, found: npt.NDArray[np.intp] | slice, cur: FloatArray,
                  resources: Sequence[str]) -> LoadView:
        nq = len(resources)
        arrays = [np.full((n, nq), np.nan, order="F") for _ in range(4)]
        newest = np.full(n, -np.inf)
        if cur.shape[0]:
            newest[found] = cur[..., _NEWEST].max(axis=1)
            for j, res in enumerate(resources):
                col = self._col.get(res)
                if col is None:
                    continue
                for arr, field in zip(arrays, (_LATEST, _AVG, _STD, _P95_F), strict=True):
                    arr[found, j] = cur[:, col, field]
        return LoadView(usage=arrays[0], usage_avg=arrays[1], usage_std=arrays[2],
                        usage_p95=arrays[3], newest=newest)

    def view(self, names: Sequence[str], resources: Sequence[str], now: float) -> LoadView:
        """Statistics at time ``now`` for ``names`` x ``resources``; samples older than
        ``now - window_s`` are ignored. Unknown nodes and untracked resources give NaN
        (``newest`` -inf)."""
        cut = float(now) - self.window_s
        n = len(names)
        with self._lock:
            memo = self._memo
            if memo is not None and memo[0] is names and memo[1] == self._rows_gen:
                rows = memo[2]
            else:
                rows = np.fromiter(map(self._rows.get, names, itertools.repeat(-1)), dtype=np.intp, count=n)
                if isinstance(names, tuple):
                    self._memo = (names, self._rows_gen, rows)
            known = rows >= 0
            if known.all():
                found: npt.NDArray[np.intp] | slice = slice(None)
                cur = self._current(rows, cut)
            else:
                found = np.flatnonzero(known)
                cur = self._current(rows[found], cut)
        return self._assemble(n, found, cur, resources)

    def view_all(self, now: float) -> tuple[tuple[str, ...], LoadView]:
        """``view`` of every node the window knows (in row order) for all tracked resources."""
        cut = float(now) - self.window_s
        with self._lock:
            pairs = [(name, row) for row, name in enumerate(self._names[: self._used]) if name is not None]
            names = tuple(name for name, _ in pairs)
            rows = np.fromiter((row for _, row in pairs), dtype=np.intp, count=len(pairs))
            cur = self._current(rows, cut)
        return names, self._assemble(len(names), slice(None), cur, self.resources)

    def newest_sample_time(self, node: str) -> float | None:
        """Time of the newest retained sample of ``node`` (in the window or not); None if the
        window has none."""
        with self._lock:
            row = self._rows.get(node)
            if row is None:
                return None
            t = float(self._newest[row])
        return t if t > -math.inf else None

    def nodes(self) -> tuple[str, ...]:
        """The nodes the window holds samples for."""
        with self._lock:
            return tuple(self._rows)

    def sources(self) -> dict[str, SourceStatus]:
        """Per source that recorded a sample or reported a poll: its ``SourceStatus``."""
        with self._lock:
            used = self._used
            return {
                name: SourceStatus(
                    last_success=st.last_success,
                    last_error=st.last_error,
                    nodes=int(np.count_nonzero((st.last_t[:used] > -np.inf).any(axis=1))),
                    samples_total=st.samples,
                    rejected_total=st.rejected,
                    duplicates_total=st.duplicates,
                    last_error_at=st.last_error_at,
                    consecutive_failures=st.failures,
                )
                for name, st in self._sources.items()
            }


# ---- pollers -------------------------------------------------------------------------------


class PollError(Exception):
    """A poll that failed in a way the poller describes itself (message safe to log)."""


def _describe(exc: BaseException, timeout_s: float) -> str:
    """A one-line, secret-free description of a poll failure."""
    if isinstance(exc, ApiException):
        message = ""
        try:
            doc = msgspec.json.decode(exc.body or b"")
            if isinstance(doc, dict):
                message = str(doc.get("message", ""))
        except (msgspec.DecodeError, TypeError):
            pass
        text = f"HTTP {exc.status} {exc.reason or ''}".rstrip()
        return f"{text}: {message}" if message else text
    if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return f"timed out after {timeout_s:g}s ({type(exc).__name__})"
    if isinstance(exc, PollError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class _Poller:
    """A daemon thread calling ``poll_once`` every ``interval_s``, with full-jitter
    exponential backoff while polls fail. Subclasses implement ``_fetch`` (fetch and record,
    return the number of values accepted, raise on failure) and set ``source``."""

    source: str = ""

    def __init__(self, window: LoadWindow, *, interval_s: float, timeout_s: float,
                 on_poll: Callable[[str, bool], None] | None, logger: logging.Logger | None,
                 backoff_base_s: float, backoff_max_s: float,
                 clock: Callable[[], float], rng: random.Random | None) -> None:
        for label, value in (("interval_s", interval_s), ("timeout_s", timeout_s),
                             ("backoff_base_s", backoff_base_s), ("backoff_max_s", backoff_max_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{type(self).__name__}: {label} must be a positive number, got {value!r}")
        self.window = window
        self.interval_s = float(interval_s)
        self.timeout_s = float(timeout_s)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.on_poll = on_poll
        self._log = logger or _LOG
        self._clock = clock
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0  # consecutive failed polls
        self.polls_total = 0
        self.errors_total = 0
        self.last_error = ""

    @property
    def synced(self) -> bool:
        """True once a poll has succeeded."""
        return self._synced.is_set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until the first successful poll or ``timeout``; returns ``synced``."""
        return self._synced.wait(timeout)

    def start(self) -> None:
        """Start polling in a daemon thread (the first poll right away). Idempotent."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"load-{self.source}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (an in-flight request ends within ``timeout_s``) and close the
        HTTP connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def close(self) -> None:
        """Release HTTP connections (subclasses)."""

    def next_delay(self) -> float:
        """Seconds to wait before the next poll: ``interval_s`` while healthy, else full
        jitter ``uniform(0, min(backoff_max_s, backoff_base_s * 2**(failures-1)))``."""
        if self.failures == 0:
            return self.interval_s
        cap = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** min(self.failures - 1, 60))
        return self._rng.uniform(0.0, cap)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - a bug must not end polling for good
                self._log.exception("load source %s: poll crashed", self.source)
                self.failures += 1
            delay = self.next_delay()
            if self.failures == 0:  # fixed rate while healthy: start to start
                delay = max(0.0, delay - (time.monotonic() - started))
            self._stop.wait(delay)

    def _fetch(self) -> int:
        raise NotImplementedError

    def poll_once(self) -> bool:
        """One poll: fetch, record, report to ``window.note_poll`` and ``on_poll``, refresh
        the window's cache. Returns success; never raises for source failures. Tests and
        one-shot tools call it directly; it must not run concurrently with the thread."""
        self.polls_total += 1
        try:
            accepted = self._fetch()
        except Exception as exc:  # noqa: BLE001 - any failure of the source is a failed poll
            self.errors_total += 1
            self.failures += 1
            message = _describe(exc, self.timeout_s)[:_MAX_MESSAGE]
            self.window.note_poll(self.source, False, error=message, when=self._clock())
            level = logging.WARNING if self.failures == 1 or message != self.last_error else logging.DEBUG
            self._log.log(level, "load source %s: poll failed (%d in a row): %s",
                          self.source, self.failures, message)
            self.last_error = message
            ok = False
        else:
            if self.failures:
                self._log.info("load source %s: recovered after %d failed poll(s)",
                               self.source, self.failures)
            self.failures = 0
            self.window.note_poll(self.source, True, when=self._clock())
            if not self._synced.is_set():
                self._log.info("load source %s: first poll ok, %d value(s) recorded", self.source, accepted)
                self._synced.set()
            ok = True
        self.window.refresh(self._clock())
        if self.on_poll is not None:
            try:
                self.on_poll(self.source, ok)
            except Exception:  # noqa: BLE001 - a metrics callback must not stop polling
                self._log.exception("load source %s: on_poll callback failed", self.source)
        return ok


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


@functools.lru_cache(maxsize=4096)
def parse_rfc3339(text: str) -> float:
    """RFC 3339 date-time -> Unix seconds (fractions beyond microseconds are truncated);
    ValueError for anything else, including a time without offset."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text[:64]!r}")
    date, clock, frac, zone = m.groups()
    iso = f"{date}T{clock}{'.' + frac[:6].ljust(6, '0') if frac else ''}"
    iso += "+00:00" if zone in ("Z", "z") else zone
    return datetime.datetime.fromisoformat(iso).timestamp()


class _Meta(msgspec.Struct):
    name: str = ""


class _NodeMetrics(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    timestamp: str = ""
    window: str = ""
    usage: dict[str, str | int | float] = {}


class _NodeMetricsList(msgspec.Struct):
    items: list[msgspec.Raw] = []


_NODE_METRICS_LIST = msgspec.json.Decoder(_NodeMetricsList)
_NODE_METRICS = msgspec.json.Decoder(_NodeMetrics)


def _to_units(resource: str, quantity: str | int | float) -> float:
    return cpu_millis(quantity) if resource == "cpu" else base_units(quantity)


class MetricsServerSource(_Poller):
    """Polls ``metrics.k8s.io/v1beta1`` NodeMetrics (metrics-server) into the window.

    Each item's ``timestamp`` is the sample time (the end of the ``window`` over which
    metrics-server measured), not the poll time, so repeated polls of one scrape deduplicate.
    Usage quantities are parsed exactly (``cpu_millis`` for cpu, ``base_units`` otherwise).
    Malformed items (no name, bad timestamp, bad quantity, wrong JSON types) are skipped and
    counted in ``skipped_total``; a body that is not a NodeMetricsList fails the poll.
    The caller's ApiClient is not modified: the source builds its own from a copy of its
    configuration with urllib3 retries off.
    """

    source = METRICS_SERVER

    def __init__(self, api_client: k8s_client.ApiClient, window: LoadWindow, *,
                 interval_s: float = 15.0, timeout_s: float = 5.0,
                 on_poll: Callable[[str, bool], None] | None = None,
                 logger: logging.Logger | None = None, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        super().__init__(window, interval_s=interval_s, timeout_s=timeout_s, on_poll=on_poll,
                         logger=logger, backoff_base_s=backoff_base_s, backoff_max_s=backoff_max_s,
                         clock=clock, rng=rng)
        # one attempt per poll, bounded by timeout_s; the poller retries
        self._api = k8s_client.CustomObjectsApi(no_retry_client(api_client))
        self.skipped_total = 0  # malformed items over all polls
        self.last_skipped = 0  # malformed items in the last successful poll

    def close(self) -> None:
        self._api.api_client.close()

    def _fetch(self) -> int:
        resp: Any = self._api.list_cluster_custom_object(
            "metrics.k8s.io", "v1beta1", "nodes",
            _preload_content=False, _request_timeout=self.timeout_s,
        )
        try:
            body = resp.data
        finally:
            resp.release_conn()
        try:
            listing = _NODE_METRICS_LIST.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise PollError(f"metrics.k8s.io answer is not a NodeMetricsList: {exc}") from None
        samples: list[tuple[str, float, dict[str, float]]] = []
        skipped, first_reason = 0, ""
        tracked = self.window.resources
        for raw in listing.items:
            try:
                item = _NODE_METRICS.decode(raw)
                if not item.metadata.name:
                    raise ValueError("no metadata.name")
                t = parse_rfc3339(item.timestamp)
                values = {res: _to_units(res, q) for res, q in item.usage.items() if res in tracked}
                if not values:
                    raise ValueError(f"no usage of {', '.join(tracked)}")
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError, QuantityError) as exc:
                skipped += 1
                first_reason = first_reason or f"{exc}"
                continue
            samples.append((item.metadata.name, t, values))
        accepted = self.window.record_many(self.source, samples, now=self._clock())
        self.skipped_total += skipped
        self.last_skipped = skipped
        if skipped:
            self._log.warning("load source %s: skipped %d malformed NodeMetrics item(s) of %d, e.g.: %s",
                              self.source, skipped, len(listing.items), first_reason[:_MAX_MESSAGE])
        return accepted


# ---- Prometheus ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PromQuery:
    """An instant query giving one series per node, and the factor from its unit to the
    scheduler's (e.g. 1000 for CPU cores -> millicores)."""

    promql: str
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.promql.strip():
            raise ValueError("PromQuery.promql is empty")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"PromQuery.scale must be a positive number, got {self.scale!r}")


def default_prom_queries(label: str = "node") -> Mapping[str, PromQuery]:
    """The default queries for node-exporter metrics, aggregated by ``label``.

    * cpu: ``sum by (<label>) (rate(node_cpu_seconds_total{mode!~"idle|iowait|steal"}[2m]))``,
      busy cores, scale 1000 (cores -> millicores). iowait and steal are idle time as far as
      the node's own work goes (metrics-server's cgroup CPU usage excludes them too). The 2 m
      range holds 4 scrapes at the common 30 s scrape interval, so one missed scrape does
      not drop the node.
    * memory: ``max by (<label>) (node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)``,
      bytes in use, scale 1 (close to metrics-server's working set). ``max`` rather than ``sum``
      so that a node scraped by two jobs is not counted twice.

    ``label`` must hold the node's name (mode "node"), or its address for modes "instance" /
    "internal-ip" (then pass ``"instance"``).
    """
    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label):
        raise ValueError(f"not a Prometheus label name: {label!r}")
    return types.MappingProxyType({
        "cpu": PromQuery(f'sum by ({label}) (rate(node_cpu_seconds_total{{mode!~"idle|iowait|steal"}}[2m]))',
                         1000.0),
        "memory": PromQuery(f"max by ({label}) (node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes)",
                            1.0),
    })


# For node-exporter series that carry a ``node`` label with the Kubernetes node name, e.g. from
# a scrape config relabelling ``__meta_kubernetes_pod_node_name`` (or
# ``__meta_kubernetes_endpoint_node_name``) to ``node``.
DEFAULT_PROM_QUERIES: Final[Mapping[str, PromQuery]] = default_prom_queries("node")

_NODE_LABEL_MODES: Final = ("node", "instance", "internal-ip")


class _PromData(msgspec.Struct):
    resultType: str = ""  # noqa: N815 - the API's key
    result: msgspec.Raw = msgspec.Raw(b"null")


class _PromAnswer(msgspec.Struct):
    status: str = ""
    data: _PromData | None = None
    errorType: str = ""  # noqa: N815
    error: str = ""
    warnings: list[str] = []


class _PromSeries(msgspec.Struct):
    metric: dict[str, str] = {}
    value: tuple[float, str] | None = None


_PROM_ANSWER = msgspec.json.Decoder(_PromAnswer)
_PROM_RESULT = msgspec.json.Decoder(list[msgspec.Raw])
_PROM_SERIES = msgspec.json.Decoder(_PromSeries)


def _strip_port(address: str) -> str:
    """``10.0.0.5:9100`` -> ``10.0.0.5``, ``[fd00::5]:9100`` -> ``fd00::5``, ``node-a:9100`` ->
    ``node-a``; a bare IPv6 address or a value without a port is returned unchanged."""
    if address.startswith("["):
        end = address.find("]")
        return address[1:end] if end > 0 else address
    host, sep, port = address.rpartition(":")
    if sep and host and ":" not in host and port.isdigit():
        return host
    return address


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class PrometheusSource(_Poller):
    """Polls the Prometheus instant-query API (``GET {base_url}/api/v1/query``) into the window.

    ``queries`` maps each resource to a ``PromQuery`` (every key must be tracked by the window).
    ``node_label`` says how a series names its node:

    * ``"node"`` (or any other label name): the label's value is the node name;
    * ``"instance"``: the ``instance`` label with a trailing ``:port`` removed; a node name, or
      an IP address mapped through ``node_by_ip`` (an IP it cannot map is skipped);
    * ``"internal-ip"``: the ``ip_label`` label (default ``instance``), port removed, mapped
      through ``node_by_ip`` (required).

    The sample time is the value's timestamp (Prometheus' evaluation time). Series without the
    label, with an unmapped address, a non-numeric / NaN / infinite value, or a duplicate node
    within one answer are skipped and counted (``series_skipped``). A poll fails if any query
    fails, but the samples of the queries that succeeded are kept.

    TLS: ``ca_file`` verifies the server with that bundle; ``insecure_skip_verify`` turns
    verification off (urllib3 then warns on each request). ``bearer_token`` or
    ``bearer_token_file`` (re-read every poll, as projected service-account tokens rotate)
    sends ``Authorization: Bearer``; ``headers`` adds any others (e.g. ``X-Scope-OrgID``).
    """

    source = PROMETHEUS

    def __init__(self, base_url: str, window: LoadWindow, *,
                 queries: Mapping[str, PromQuery] = DEFAULT_PROM_QUERIES, node_label: str = "node",
                 node_by_ip: Callable[[str], str | None] | None = None, ip_label: str = "instance",
                 interval_s: float = 30.0, timeout_s: float = 5.0, bearer_token: str | None = None,
                 bearer_token_file: str | None = None, ca_file: str | None = None,
                 insecure_skip_verify: bool = False, headers: Mapping[str, str] | None = None,
                 on_poll: Callable[[str, bool], None] | None = None,
                 logger: logging.Logger | None = None, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 120.0, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        super().__init__(window, interval_s=interval_s, timeout_s=timeout_s, on_poll=on_poll,
                         logger=logger, backoff_base_s=backoff_base_s, backoff_max_s=backoff_max_s,
                         clock=clock, rng=rng)
        url = urllib3.util.parse_url(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"Prometheus URL must be http(s)://host[:port][/prefix], got {base_url!r}")
        if url.query or url.fragment:
            raise ValueError(f"Prometheus URL must not carry a query or fragment: {base_url!r}")
        if not queries:
            raise ValueError("PrometheusSource needs at least one query")
        untracked = [r for r in queries if r not in window.resources]
        if untracked:
            raise ValueError(f"PrometheusSource queries for resources the window does not track: {untracked}")
        if node_label == "internal-ip" and node_by_ip is None:
            raise ValueError('node_label="internal-ip" needs node_by_ip (address -> node name)')
        if not node_label:
            raise ValueError("node_label is empty")
        if bearer_token is not None and bearer_token_file is not None:
            raise ValueError("give bearer_token or bearer_token_file, not both")
        self.url = base_url.rstrip("/") + "/api/v1/query"
        self.queries = dict(queries)
        self.node_label = node_label
        self.ip_label = ip_label
        self.node_by_ip = node_by_ip
        self._token = bearer_token
        self._token_file = bearer_token_file
        self._headers = {"Accept": "application/json", **dict(headers or {})}
        self._pool = urllib3.PoolManager(
            num_pools=2, maxsize=2, retries=False,
            timeout=urllib3.Timeout(total=self.timeout_s),
            cert_reqs="CERT_NONE" if insecure_skip_verify else "CERT_REQUIRED",
            ca_certs=ca_file,
        )
        self.series_skipped: dict[str, int] = {
            "no_label": 0, "unmapped": 0, "not_a_number": 0, "duplicate": 0, "malformed": 0,
        }

    def close(self) -> None:
        self._pool.clear()

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        token = self._token
        if self._token_file is not None:
            try:
                with open(self._token_file, encoding="utf-8") as fh:
                    token = fh.read().strip()
            except OSError as exc:
                raise PollError(f"cannot read bearer token file: {type(exc).__name__}") from None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _query(self, promql: str, headers: dict[str, str]) -> list[msgspec.Raw]:
        """The instant vector of ``promql`` as raw series; PollError for any failure."""
        try:
            resp = self._pool.request(
                "GET", self.url, fields={"query": promql, "timeout": f"{self.timeout_s:g}"},
                headers=headers, retries=False, timeout=urllib3.Timeout(total=self.timeout_s),
            )
        except urllib3.exceptions.TimeoutError as exc:
            raise PollError(f"timed out after {self.timeout_s:g}s ({type(exc).__name__})") from None
        except urllib3.exceptions.HTTPError as exc:
            raise PollError(f"{type(exc).__name__}: {exc}") from None
        body = resp.data
        try:
            answer = _PROM_ANSWER.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if not 200 <= resp.status < 300:
                snippet = body[:120].decode("utf-8", "replace").strip()
                raise PollError(f"HTTP {resp.status}: {snippet}") from None
            raise PollError(f"answer is not a Prometheus API response: {exc}") from None
        for warning in answer.warnings:
            self._log.warning("load source %s: Prometheus warns (partial answer?): %s",
                              self.source, warning[:_MAX_MESSAGE])
        if answer.status != "success" or not 200 <= resp.status < 300:
            if answer.status == "error":
                raise PollError(f"HTTP {resp.status} {answer.errorType or 'error'}: {answer.error}")
            raise PollError(f"HTTP {resp.status}, status {answer.status!r}")
        if answer.data is None or answer.data.resultType != "vector":
            got = answer.data.resultType if answer.data is not None else "no data"
            raise PollError(f"expected an instant vector, got {got!r}")
        try:
            return _PROM_RESULT.decode(answer.data.result)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise PollError(f"data.result is not a list: {exc}") from None

    def _node_of(self, labels: Mapping[str, str]) -> str | None:
        """The node a series belongs to; None (and a counted reason) when it has none."""
        mode = self.node_label
        label = self.ip_label if mode == "internal-ip" else mode
        value = labels.get(label, "")
        if not value:
            self.series_skipped["no_label"] += 1
            return None
        if mode not in ("instance", "internal-ip"):
            return value
        address = _strip_port(value)
        if mode == "internal-ip" or _is_ip(address):
            node = self.node_by_ip(address) if self.node_by_ip is not None else None
            if not node:
                self.series_skipped["unmapped"] += 1
                return None
            return node
        return address

    def _fetch(self) -> int:
        headers = self._request_headers()
        accepted = 0
        errors: list[str] = []
        for resource, query in self.queries.items():
            try:
                series = self._query(query.promql, headers)
            except PollError as exc:
                errors.append(f"query for {resource}: {exc}")
                continue
            batch: list[tuple[str, float, dict[str, float]]] = []
            seen: set[str] = set()
            for raw in series:
                try:
                    item = _PROM_SERIES.decode(raw)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    self.series_skipped["malformed"] += 1
                    continue
                node = self._node_of(item.metric)
                if node is None:
                    continue
                if item.value is None:  # a native histogram
                    self.series_skipped["not_a_number"] += 1
                    continue
                t, text = item.value
                try:
                    x = float(text)
                except ValueError:
                    x = math.nan
                if not (math.isfinite(x) and math.isfinite(t)):
                    self.series_skipped["not_a_number"] += 1
                    continue
                if node in seen:
                    self.series_skipped["duplicate"] += 1
                    continue
                seen.add(node)
                batch.append((node, t, {resource: x * query.scale}))
            accepted += self.window.record_many(self.source, batch, now=self._clock())
        if errors:
            raise PollError("; ".join(errors))
        return accepted
