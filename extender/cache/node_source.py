"""The ``NodeSource`` of cluster-cache mode, answering from the cache's snapshots, and the binder
that records our binds in the cache at once.

Both read the cache through small protocols (``SnapshotOwner``, ``BindState``) that the
in-process ``extender.cache.feed.Cache`` and the worker's handle on the child,
``extender.cache.process.CacheProcess``, both satisfy; so neither is imported here.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from extender.cache.snapshot import Snapshot
from extender.cache.store import (
    CONFIRMED,
    COUNTED,
    ELSEWHERE,
    UNKNOWN_POD,
    Assumption,
)
from extender.kube.bind import BindOutcome, BindResult, BindTarget, DeadlineBinder
from extender.kube.objects import Pod
from extender.protocol.wire import SchedulingRequest
from extender.verbs.source import CacheNotReady, Candidates


class SnapshotOwner(Protocol):
    """What ``CacheSource`` reads: ``extender.cache.feed.Cache`` or
    ``extender.cache.process.CacheProcess``."""

    state: Any  # .snapshot (the current Snapshot) and .pod_vectors(uid, resources)

    @property
    def synced(self) -> bool: ...

    def readiness(self) -> tuple[bool, str]: ...


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

    def __init__(self, cache: SnapshotOwner, *, clock: Callable[[], float] = time.time) -> None:
        self._cache = cache
        self._clock = clock
        self._last: _Built | None = None
        self._rows_memo: tuple[object, tuple[str, ...], _Rows] | None = None

    def _snapshot(self) -> Snapshot:
        if not self._cache.synced:
            raise CacheNotReady(self._cache.readiness()[1])
        snapshot: Snapshot = self._cache.state.snapshot
        return snapshot

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
        if (
            r.inverse is not None
        ):  # every known node, in some order: the snapshot's own arrays, nothing gathered
            table_rows, result = None, Candidates(snap.table(None, now), r.inverse, {})
        else:  # the table's names are the request's, in order, when every name resolved
            table_rows = r.snapshot_rows
            result = Candidates(
                snap.table(table_rows, now, names if not r.unresolved else None), r.positions, r.unresolved
            )
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
            known = [pos for pos, row in enumerate(found) if row is not None]
            unresolved = {
                names[pos]: (
                    f"node {names[pos]} is not in the extender's cluster cache (the cache "
                    "is behind the scheduler, or the node was deleted)"
                )
                for pos, row in enumerate(found)
                if row is None
            }
            out = _Rows(
                np.array([found[p] for p in known], dtype=np.intp),
                np.array(known, dtype=np.intp),
                unresolved,
            )
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
        vectors: tuple[np.ndarray, ...] | None = self._cache.state.pod_vectors(uid, resources)
        return vectors


# Of a bind's EXTENDER_BIND_TIMEOUT_S, what a pod counted before its Binding keeps to be
# uncounted if the API refuses it (the cache process's call to the child and its install).
FORGET_RESERVE_S = 0.25


class BindState(Protocol):
    """What the binder needs of the cache: ``ClusterState``, or the cache process's ``RemoteState``."""

    def assume(
        self, *, uid: str, node: str, pod: Pod | None = None, timeout_s: float | None = None
    ) -> Assumption: ...

    def forget(self, uid: str, *, timeout_s: float | None = None) -> bool: ...


BOUND_KEPT = 1024  # binds of ours remembered for the scheduler's retries (CachedBinder._bound)


class CachedBinder:
    """Binds through the API with the pod counted on its node from the moment the bind
    arrives (``ClusterState.assume``), so that a filter or prioritize call that comes while
    the Binding is in flight, or right after, sees it; a failed bind uncounts it
    (``ClusterState.forget``). A retried bind of a pod that a bind of ours placed on that node,
    or that the watch shows there, succeeds without a second Binding; one counted on another
    node is refused. ``on_visibility``
    receives each bind's ``Assumption.outcome`` ("late" when it could not be shown in time,
    "not_ready" when the cache could not answer): the ``extender_bind_visibility_total``
    metric."""

    def __init__(
        self,
        binder: DeadlineBinder,
        state: BindState,
        *,
        logger: logging.Logger | None = None,
        on_visibility: Callable[[str], None] | None = None,
    ) -> None:
        self._binder = binder
        self._state = state
        self._log = logger or logging.getLogger("extender.cache")
        self._on_visibility = on_visibility
        # Binds of ours the API accepted: pod UID -> node, the oldest dropped beyond BOUND_KEPT.
        # The scheduler retries a bind whose answer it lost; until the watch shows the pod
        # bound, the cache counts it as ``KNOWN`` only (counted by a bind, not yet confirmed),
        # which cannot tell a bind in flight from one the API accepted.
        self._bound: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._bound_lock = threading.Lock()

    def bind(self, target: BindTarget) -> BindResult:
        """The cache's count and checks, then the API's Binding within what is left of the
        bind's budget. A cache that cannot answer (its process restarting) does not block the
        bind: the API's UID precondition still refuses a pod bound elsewhere, and the watch
        shows the pod once the cache is back."""
        deadline = time.monotonic() + self._binder.timeout_s  # every step below, inside it
        owned = False
        with self._bound_lock:
            placed = self._bound.get(target.pod_uid) if target.pod_uid else None
        if placed == target.node:
            return BindResult(BindOutcome.ALREADY_BOUND, "")
        if placed is not None:
            return BindResult(
                BindOutcome.CONFLICT,
                f"pod {target.namespace}/{target.pod_name} is already bound to node {placed}, "
                f"not {target.node}",
            )
        if target.pod_uid:
            seen = self._assume(target, deadline)
            if seen is not None and seen.outcome == CONFIRMED:
                return BindResult(BindOutcome.ALREADY_BOUND, "")
            if seen is not None and seen.outcome == ELSEWHERE:
                return BindResult(
                    BindOutcome.CONFLICT,
                    f"pod {target.namespace}/{target.pod_name} is "
                    f"already bound to node {seen.node}, not {target.node}",
                )
            owned = seen is not None and seen.outcome == COUNTED
        # a counted pod keeps FORGET_RESERVE_S of the budget to be uncounted if the API refuses
        reserve = FORGET_RESERVE_S if owned else 0.0
        result = self._binder.bind(target, timeout_s=deadline - reserve - time.monotonic())
        if result.ok and target.pod_uid:
            with self._bound_lock:
                self._bound[target.pod_uid] = target.node
                while len(self._bound) > BOUND_KEPT:
                    self._bound.popitem(last=False)
        if owned and not result.ok:
            try:
                self._state.forget(target.pod_uid, timeout_s=deadline - time.monotonic())
            except CacheNotReady as exc:
                self._log.warning(
                    "bind of %s/%s failed; the cache uncounts it when it can: %s",
                    target.namespace,
                    target.pod_name,
                    exc,
                )
        return result

    def _assume(self, target: BindTarget, deadline: float) -> Assumption | None:
        try:
            seen = self._state.assume(
                uid=target.pod_uid, node=target.node, pod=target.pod, timeout_s=deadline - time.monotonic()
            )
        except CacheNotReady as exc:
            self._log.warning(
                "bind of %s/%s to %s without the cache's count and checks: %s",
                target.namespace,
                target.pod_name,
                target.node,
                exc,
            )
            self._count("not_ready")
            return None
        self._count("late" if seen.late else seen.outcome)
        if seen.outcome == UNKNOWN_POD:
            self._log.warning(
                "bind of %s/%s (uid %s) to %s: the pod is in neither the cache nor a recent "
                "scheduling request; counted only once the watch shows it",
                target.namespace,
                target.pod_name,
                target.pod_uid,
                target.node,
            )
        return seen

    def _count(self, outcome: str) -> None:
        if self._on_visibility is not None:
            self._on_visibility(outcome)
