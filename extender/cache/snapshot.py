"""The immutable snapshot of the cluster cache: what a scheduling call reads, without a lock.

The store (``extender.cache.store.ClusterState``) builds one from its rows when something
changed, or derives one for a bind; the worker reads it directly, or mapped from the cache
process (``extender.cache.shipping``); ``extender.cache.cache.CacheSource`` turns rows of it
into the ``NodeTable`` that scoring reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from scoring import NodeTable

BASE_AXIS = ("cpu", "memory", "pods", "ephemeral-storage")
# Node fields on the resource axis (N, R) that the store keeps per node row.
NODE_FIELDS = ("allocatable", "capacity", "requested", "nonzero_requested", "limits", "pending")


@dataclasses.dataclass(frozen=True, eq=False)
class Snapshot:
    """Known nodes at one instant. Arrays are resource-major: (R, N) C-ordered, so that
    ``arr.T`` is an (N, R) Fortran-ordered NodeTable column block without a copy. ``by_node``
    holds the same values node-major, (N, F, R) C-ordered for ``fields``: a subset of nodes is
    gathered from it as whole rows (a few cache lines per node) rather than element by element
    from each (R, N) array, which on a cold cache costs ~10x more."""

    generation: int
    built_at: float  # wall clock
    names: tuple[str, ...]
    index: Mapping[str, int]
    resources: tuple[str, ...]
    arrays: Mapping[
        str, npt.NDArray[np.float64]
    ]  # NODE_FIELDS + usage, usage_avg, usage_std, usage_p95, pending, threshold_override: (R, N)
    newest_sample: npt.NDArray[np.float64]  # (N,) wall time of the newest load sample, -inf = none
    pods: int  # pods counted on known nodes
    compensated_pods: int
    by_node: npt.NDArray[np.float64]  # (N, len(fields), R)
    # Nodes whose ``by_node`` record is out of date, position -> their (len(fields), R) record:
    # a bind's snapshot (``ClusterState.assume``) changes one node and shares the rest,
    # by_node included, with the snapshot it came from. Empty after a full build.
    patched: Mapping[int, npt.NDArray[np.float64]] = dataclasses.field(default_factory=dict)

    @property
    def fields(self) -> tuple[str, ...]:
        """The field order of ``by_node``: that of ``arrays``, from which it is stacked."""
        return tuple(self.arrays)

    def table(
        self, rows: npt.NDArray[np.intp] | None, now: float, names: tuple[str, ...] | None = None
    ) -> NodeTable:
        """The NodeTable of the given snapshot rows, or of every node in snapshot order when
        ``rows`` is None (views of the snapshot's arrays: nothing is copied). Load ages are
        computed at ``now``. ``names``: the rows' node names when the caller has them already
        (the request's own tuple)."""
        if rows is None:
            fields = {f: a.T for f, a in self.arrays.items()}  # (R, N) C-ordered: (N, R) Fortran views
            return NodeTable(
                names=self.names, resources=self.resources, load_age_s=self.ages(None, now), **fields
            )
        if names is None:
            names = tuple(map(self.names.__getitem__, rows.tolist()))
        # whole node records, then one transposing copy: (F, R, n) C-ordered, (n, R) Fortran views
        records = self.by_node.take(rows, axis=0)
        if self.patched:
            for pos in np.flatnonzero(np.isin(rows, np.fromiter(self.patched, np.intp))).tolist():
                records[pos] = self.patched[int(rows[pos])]
        block = np.ascontiguousarray(records.transpose(1, 2, 0))
        fields = {f: block[k].T for k, f in enumerate(self.fields)}
        return NodeTable(names=names, resources=self.resources, load_age_s=self.ages(rows, now), **fields)

    def ages(self, rows: npt.NDArray[np.intp] | None, now: float) -> npt.NDArray[np.float64]:
        """(n,) seconds since the newest load sample of ``rows`` (every node if None), +inf
        where there is none."""
        newest = self.newest_sample if rows is None else self.newest_sample[rows]
        return np.maximum(now - newest, 0.0)


# A bind's snapshot shares the previous one's node records and carries its own node's apart;
# past this many such nodes the next bind builds the whole snapshot (each table of a sample
# patches its gathered records from them, one by one).
MAX_PATCHED = 32

EMPTY_FIELDS = ("usage", "usage_avg", "usage_std", "usage_p95", "threshold_override")
LOAD_FIELDS = ("usage", "usage_avg", "usage_std", "usage_p95")  # copied from the load window
