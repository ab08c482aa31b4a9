"""Where the node data for a scheduling request comes from.

The handlers ask a ``NodeSource`` for the candidates of a request and never care how they
were found. ``StatelessSource`` (scheduler ``nodeCacheCapable: false``) reads everything from
the request: allocatable and capacity from the Node objects, measured load from node
annotations. The watch-fed cluster cache (``nodeCacheCapable: true``) is another
implementation of the same protocol (``extender.cache.node_source.CacheSource``); the app
gives the verbs one or the other.

Annotations read by the stateless source, for prefix ``P`` (default
``load.extender.scheduling/``): ``P<resource>`` measured usage (a quantity), ``P<resource>-stddev``,
``P<resource>-p95``, ``P<resource>-avg`` (window average), and ``Pupdated``, the RFC 3339 time of the
measurement. A measurement
without ``Pupdated`` has an unknown age and is treated as stale.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from extender.kube.demand import nonnegative, to_units
from extender.kube.objects import BadRequest, Node
from extender.kube.timestamps import parse_rfc3339 as _parse_rfc3339
from extender.protocol.wire import SchedulingRequest
from scoring import NodeTable
from scoring.types import ARRAY_FIELDS

DEFAULT_ANNOTATION_PREFIX = "load.extender.scheduling/"


class CacheNotReady(BadRequest):
    """The node source cannot answer yet (the cluster cache has not finished its first sync);
    the message says what is missing. Defined with the protocol the verbs speak, so that the
    verbs catch it without importing the cache."""


class NamesFormUnsupported(BadRequest):
    """A NodeNames request reached an extender that has no cluster cache."""


@dataclasses.dataclass(frozen=True, eq=False)
class Candidates:
    """The request's nodes as a NodeTable. ``rows[i]`` is the index in the request's node list
    of table row ``i``; nodes that could not be resolved are in ``unresolved`` (name -> reason)
    and have no row."""

    table: NodeTable
    rows: npt.NDArray[np.intp]
    unresolved: Mapping[str, str]


class NodeSource(Protocol):
    mode: str

    def candidates(self, request: SchedulingRequest, resources: tuple[str, ...]) -> Candidates: ...

    def known_nodes(self, names: Sequence[str], resources: tuple[str, ...]) -> Candidates: ...

    def readiness(self) -> tuple[bool, str]: ...


@functools.lru_cache(maxsize=16384)
def parse_rfc3339(text: str) -> float:
    """RFC 3339 -> Unix seconds; ValueError on anything else (cached: every node of every
    stateless request carries one, mostly the same few)."""
    return _parse_rfc3339(text)


@dataclasses.dataclass(frozen=True)
class _Keys:
    usage: tuple[str, ...]
    stddev: tuple[str, ...]
    p95: tuple[str, ...]
    avg: tuple[str, ...]
    updated: str


class StatelessSource:
    """Builds the node table from the Node objects in each request (no API access)."""

    mode = "stateless"

    def __init__(
        self, *, annotation_prefix: str = DEFAULT_ANNOTATION_PREFIX, clock: Callable[[], float]
    ) -> None:
        self._prefix = annotation_prefix
        self._clock = clock
        self._last: tuple[tuple[str, ...], Candidates] | None = None  # for preempt re-checks

    def _keys(self, resources: tuple[str, ...]) -> _Keys:
        p = self._prefix
        return _Keys(
            tuple(p + r for r in resources),
            tuple(f"{p}{r}-stddev" for r in resources),
            tuple(f"{p}{r}-p95" for r in resources),
            tuple(f"{p}{r}-avg" for r in resources),
            p + "updated",
        )

    def candidates(self, request: SchedulingRequest, resources: tuple[str, ...]) -> Candidates:
        if request.objects is None:
            raise NamesFormUnsupported(
                "NodeNames request, but this extender runs in stateless mode with no cluster cache: "
                "set nodeCacheCapable: false in the scheduler's extender entry, or give the "
                "extender API access so that it keeps a cache"
            )
        result = self._build(request.objects.views, resources)
        self._last = (resources, result)
        return result

    def known_nodes(self, names: Sequence[str], resources: tuple[str, ...]) -> Candidates:
        """Nodes seen by the last filter or prioritize call (the only node data stateless mode
        has when a preempt call arrives), restricted to ``names``; others are unresolved."""
        last = self._last
        if last is None or last[0] != resources:
            return self._build((), resources, missing=names)
        prev = last[1]
        index = {name: i for i, name in enumerate(prev.table.names)}
        rows = [index[n] for n in names if n in index]
        t = prev.table
        table = NodeTable(
            names=tuple(t.names[i] for i in rows),
            resources=t.resources,
            **{f: getattr(t, f)[rows] for f in _ARRAY_FIELDS},
        )
        unresolved = {n: "not seen in a recent filter call" for n in names if n not in index}
        return Candidates(
            table, np.asarray([i for i, n in enumerate(names) if n in index], np.intp), unresolved
        )

    def readiness(self) -> tuple[bool, str]:
        return True, "stateless mode: node data comes with each request"

    def _build(
        self, views: Sequence[Node], resources: tuple[str, ...], missing: Sequence[str] = ()
    ) -> Candidates:
        n, r = len(views), len(resources)
        alloc, cap = np.zeros((n, r)), np.zeros((n, r))
        usage, std, p95, avg = (np.full((n, r), np.nan) for _ in range(4))
        age = np.full(n, np.inf)
        ok = np.ones(n, bool)
        unresolved: dict[str, str] = {name: "unknown node" for name in missing}
        keys = self._keys(resources)
        convert = [to_units(name) for name in resources]
        now = self._clock()
        names = []
        for i, node in enumerate(views):
            name = node.metadata.name if node.metadata else ""
            names.append(name)
            try:
                self._fill_status(node, resources, convert, alloc[i], cap[i])
                annotations = node.metadata.annotations if node.metadata else None
                if annotations:
                    age[i] = self._fill_load(
                        annotations, keys, convert, now, (usage[i], std[i], p95[i], avg[i])
                    )
            except _NodeDataError as exc:
                ok[i] = False
                unresolved[name] = f"node {name}: {exc}"
        rows = np.flatnonzero(ok)
        table = NodeTable.build(
            names=tuple(names[i] for i in rows),
            resources=resources,
            allocatable=alloc[rows],
            capacity=cap[rows],
            usage=usage[rows],
            usage_avg=avg[rows],
            usage_std=std[rows],
            usage_p95=p95[rows],
            load_age_s=age[rows],
        )
        return Candidates(table, rows, unresolved)

    @staticmethod
    def _fill_status(
        node: Node,
        resources: tuple[str, ...],
        convert: list[Callable[..., float]],
        alloc_row: np.ndarray,
        cap_row: np.ndarray,
    ) -> None:
        status = node.status
        allocatable = (status.allocatable if status else None) or {}
        capacity = (status.capacity if status else None) or allocatable
        for r, name in enumerate(resources):
            for field, values, row in (
                ("allocatable", allocatable, alloc_row),
                ("capacity", capacity, cap_row),
            ):
                v = values.get(name)
                if v is not None:
                    row[r] = nonnegative(convert[r], v, f"status.{field}.{name}", _NodeDataError)

    @staticmethod
    def _fill_load(
        annotations: Mapping[str, str],
        keys: _Keys,
        convert: list[Callable[..., float]],
        now: float,
        rows: tuple[np.ndarray, ...],
    ) -> float:
        """Fill one node's (usage, stddev, p95, avg) rows from its annotations; return the
        measurement's age (s)."""
        found = False
        for r in range(len(keys.usage)):
            for keyset, row in zip((keys.usage, keys.stddev, keys.p95, keys.avg), rows, strict=True):
                key = keyset[r]
                v = annotations.get(key)
                if v is not None:
                    row[r] = nonnegative(convert[r], v, f"annotation {key}", _NodeDataError)
                    found = True
        stamp = annotations.get(keys.updated)
        if not found or stamp is None:
            return np.inf
        try:
            measured = parse_rfc3339(stamp)
        except ValueError:
            raise _NodeDataError(f"annotation {keys.updated}: {stamp!r} is not an RFC 3339 time") from None
        return max(0.0, now - measured)  # a clock ahead of ours counts as fresh, never negative


class _NodeDataError(ValueError):
    """One node's data is unusable; that node fails, the request goes on."""


_ARRAY_FIELDS = (*ARRAY_FIELDS, "load_age_s")
