"""kube-scheduler's node search, as arithmetic (k/k ``pkg/scheduler/schedule_one.go``): how many
feasible nodes end the search, where it starts and how far it went. Shared by the driver
(``latency``), the placement simulation and the names benchmark's sampled requests."""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

MIN_FEASIBLE_NODES_TO_FIND = 100  # k/k schedule_one.go minFeasibleNodesToFind
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5  # k/k schedule_one.go minFeasibleNodesPercentageToFind


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes end the in-tree search (k/k schedule_one.go
    ``numFeasibleNodesToFind``, int32 arithmetic): every node below 100 nodes; else
    ``percentageOfNodesToScore`` percent (0 = adaptive: 50 - nodes/125, at least 5), at least
    100 nodes."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage == 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


@dataclasses.dataclass(frozen=True)
class Search:
    """The in-tree search of one cycle: ``rows`` the feasible nodes found, in search order;
    ``processed`` the nodes that count as examined (found feasible or given a status)."""

    rows: IntArray
    processed: int


def find_feasible(fits: BoolArray, start: int, want: int) -> Search:
    """Nodes from ``start`` on (wrapping) until ``want`` fit (k/k schedule_one.go
    ``findNodesThatPassFilters``). Read sequentially: the search is cancelled at the
    ``want + 1``-th fitting node, which is neither kept nor given a status, so ``processed``
    is the number of nodes before it (``len(feasibleNodes) + NodeToStatus.Len()`` in
    ``findNodesThatFitPod``); all nodes if fewer fit. kube-scheduler checks 16 nodes at a time,
    so it may examine a few more before the cancel lands: this is the least it does."""
    n = len(fits)
    order = (start + np.arange(n)) % n if n else np.zeros(0, np.intp)
    hits = np.flatnonzero(fits[order])
    if len(hits) > want:
        return Search(order[hits[:want]], int(hits[want]))
    return Search(order[hits], n)


def next_start_index(start: int, processed: int, num_all_nodes: int) -> int:
    """``nextStartNodeIndex`` after a cycle (k/k schedule_one.go ``findNodesThatFitPod``): every
    node gets the same chance of being examined across pods."""
    return (start + processed) % num_all_nodes if num_all_nodes else 0
