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

The pollers that feed it are ``extender.load.poller`` (the thread, its backoff and error
texts), ``extender.load.metrics_server`` and ``extender.load.prometheus``; this module holds
no I/O and imports no Kubernetes client; the names of the sources are ``extender.load.sources``.
Over 600 lines on purpose: ``LoadWindow``'s ring buffers, its cached statistics with their
exactness ranges and the precomputed next states are kept consistent under one lock by every
method of the one class; split, the invariants they share would no longer be read in one place.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "LoadView",
    "LoadWindow",
    "SourceStatus",
]

_LOG = logging.getLogger("extender.load")  # its name in log lines: unchanged by the move

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

    __slots__ = (
        "duplicates",
        "failures",
        "last_error",
        "last_error_at",
        "last_success",
        "last_t",
        "last_warn",
        "rejected",
        "samples",
        "unwarned",
    )

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

    def __init__(
        self,
        resources: Sequence[str] = ("cpu", "memory"),
        *,
        window_s: float = 300.0,
        max_samples: int = 64,
        initial_nodes: int = _INITIAL_ROWS,
        logger: logging.Logger | None = None,
    ) -> None:
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

    def record_many(
        self,
        source: str,
        samples: Iterable[tuple[str, float, Mapping[str, float]]],
        *,
        now: float | None = None,
    ) -> int:
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

    def _record_locked(
        self,
        st: _SourceState,
        source: str,
        node: str,
        t: float,
        values: Mapping[str, float],
        touched: list[int] | None = None,
    ) -> int:
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
                source,
                st.unwarned,
                node,
                what,
                value,
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
            f = flat[start : start + _REFRESH_CHUNK]
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
                need = (
                    stale2[pos:end]
                    | (c[:, _HI] >= cut)
                    | (c[:, _LO] < cut)
                    | (~nok2[pos:end] & np.isfinite(c[:, _LO]))
                )
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
            f = need[start : start + _REFRESH_CHUNK]
            after = np.nextafter(cur2[f, _LO], np.inf)  # once the oldest sample(s) left
            nxt2[f] = _stats(t2[f], v2[f], after)
            nok2[f] = True

    def _assemble(
        self, n: int, found: npt.NDArray[np.intp] | slice, cur: FloatArray, resources: Sequence[str]
    ) -> LoadView:
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
        return LoadView(
            usage=arrays[0], usage_avg=arrays[1], usage_std=arrays[2], usage_p95=arrays[3], newest=newest
        )

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
