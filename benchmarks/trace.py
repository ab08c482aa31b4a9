"""The openb production trace (``benchmarks/data/openb/``) as numpy arrays, and how it is replayed.

The trace is Alibaba's GPU-cluster trace ``openb`` (clusterdata ``cluster-trace-gpu-v2023``):
1,523 nodes (``nodes.csv``: CPU millicores, memory MiB, GPU count and model) and 8,152 pods
(``pods.csv``: CPU millicores and memory MiB requested, GPUs and the share of each GPU in
thousandths, QoS class ``LS`` / ``BE`` / ``Burstable`` / ``Guaranteed``, final phase, and
creation / deletion times in seconds). It gives requests, never usage: the usage comes from
``benchmarks.loadmodel``.

Replaying it literally is no test of anything: its arrivals spread over 149 days and most pods
live minutes (median 540 s), so at most 56 pods (< 1 % of the cluster's CPU) ever run at once.
The replay therefore **compresses the arrival times** by ``compression`` (default 1,000: 149
days of arrivals in 3.6 hours), keeps each pod's **own lifetime** (deletion − creation, in real
seconds) and its arrival order, and lets the pods that were still running when the trace ended
(deletion = the trace's last instant) run to the end of the replay. Arrival bursts keep their
shape, scaled; the cluster fills up as the long-running pods accumulate.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import numpy.typing as npt

DATA = Path(__file__).resolve().parent / "data" / "openb"
MIB = 1024 * 1024
MAX_GPUS = 8  # the most GPUs on one openb node
QOS_CLASSES = ("LS", "BE", "Burstable", "Guaranteed")


@dataclasses.dataclass(frozen=True, eq=False)
class Nodes:
    """N nodes: ``cpu`` millicores, ``memory`` bytes, ``gpus`` count (all (N,))."""

    names: tuple[str, ...]
    cpu: npt.NDArray[np.float64]
    memory: npt.NDArray[np.float64]
    gpus: npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True, eq=False)
class Pods:
    """P pods in arrival order. ``cpu`` millicores, ``memory`` bytes, ``gpus`` count,
    ``gpu_milli`` thousandths of each GPU (1000 = the whole GPU), ``qos`` index into
    QOS_CLASSES, ``arrival`` / ``departure`` seconds of replay time (departure = +inf: runs to
    the end), ``phase`` the trace's final phase (for the report only)."""

    names: tuple[str, ...]
    cpu: npt.NDArray[np.float64]
    memory: npt.NDArray[np.float64]
    gpus: npt.NDArray[np.int64]
    gpu_milli: npt.NDArray[np.int64]
    qos: npt.NDArray[np.int64]
    arrival: npt.NDArray[np.float64]
    departure: npt.NDArray[np.float64]
    phase: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)


@dataclasses.dataclass(frozen=True)
class Replay:
    """How the trace is played: ``compression`` of arrival times; every ``keep_every``-th node
    and pod (1 = all; the quick mode takes a quarter of each, same shape of cluster)."""

    compression: float = 1000.0
    keep_every: int = 1


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_nodes(replay: Replay, data: Path = DATA) -> Nodes:
    rows = _rows(data / "nodes.csv")[:: replay.keep_every]
    return Nodes(
        names=tuple(r["sn"] for r in rows),
        cpu=np.array([float(r["cpu_milli"]) for r in rows]),
        memory=np.array([float(r["memory_mib"]) * MIB for r in rows]),
        gpus=np.array([int(r["gpu"]) for r in rows], dtype=np.int64),
    )


def load_pods(replay: Replay, data: Path = DATA) -> Pods:
    """The pods sorted by creation time (stable: the trace's order among equal times)."""
    rows = _rows(data / "pods.csv")[:: replay.keep_every]
    created = np.array([float(r["creation_time"]) for r in rows])
    deleted = np.array([float(r["deletion_time"]) for r in rows])
    trace_end = float(max(deleted.max(), created.max()))
    order = np.argsort(created, kind="stable")
    arrival = created / replay.compression
    departure = np.where(deleted >= trace_end, np.inf, arrival + (deleted - created))
    pick = lambda a: a[order]  # noqa: E731
    return Pods(
        names=tuple(rows[i]["name"] for i in order),
        cpu=pick(np.array([float(r["cpu_milli"]) for r in rows])),
        memory=pick(np.array([float(r["memory_mib"]) * MIB for r in rows])),
        gpus=pick(np.array([int(r["num_gpu"]) for r in rows], dtype=np.int64)),
        gpu_milli=pick(np.array([int(r["gpu_milli"]) for r in rows], dtype=np.int64)),
        qos=pick(np.array([QOS_CLASSES.index(r["qos"]) for r in rows], dtype=np.int64)),
        arrival=pick(arrival),
        departure=pick(departure),
        phase=tuple(rows[i]["pod_phase"] for i in order),
    )
