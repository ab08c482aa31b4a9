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

Any pod or node list in the trace's CSV format replays the same way (``load_pods(path=...)``,
``python -m benchmarks placement --pods FILE --nodes FILE``): the trace repository's other
lists of the same cluster (``openb_pod_list_cpu050.csv`` with more CPU-only pods,
``..._gpuspec33.csv`` with GPU-model constraints, ``..._gpushare100.csv`` with shared GPUs,
``openb_node_list_gpu_node.csv``). ``gpu_spec`` (``|``-separated GPU models) restricts a GPU
pod to nodes whose ``model`` is one of them. A list without a column the replay needs is
refused with a ``TraceError`` naming it.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

DATA = Path(__file__).resolve().parent / "data" / "openb"
NODES_CSV, PODS_CSV = DATA / "nodes.csv", DATA / "pods.csv"
MIB = 1024 * 1024
QOS_CLASSES = ("LS", "BE", "Burstable", "Guaranteed")
# what a replay needs of each list; the others (gpu_spec, model, pod_phase, scheduled_time) are
# optional: no GPU-model constraint, no model, no final phase
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu")
POD_COLUMNS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "qos",
    "creation_time",
    "deletion_time",
)


class TraceError(ValueError):
    """A pod or node list that cannot be replayed; the message names the file and the column
    (and the line, for a bad value)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Nodes:
    """N nodes: ``cpu`` millicores, ``memory`` bytes, ``gpus`` count (all (N,)); ``model`` the
    GPU model of each ('' for none; empty when the list has no ``model`` column)."""

    names: tuple[str, ...]
    cpu: npt.NDArray[np.float64]
    memory: npt.NDArray[np.float64]
    gpus: npt.NDArray[np.int64]
    model: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, eq=False)
class Pods:
    """P pods in arrival order. ``cpu`` millicores, ``memory`` bytes, ``gpus`` count,
    ``gpu_milli`` thousandths of each GPU (1000 = the whole GPU), ``qos`` index into
    QOS_CLASSES, ``arrival`` / ``departure`` seconds of replay time (departure = +inf: runs to
    the end), ``phase`` the trace's final phase (for the report only), ``gpu_spec`` the GPU
    models a GPU pod accepts, ``|``-separated ('' = any; empty tuple: no constraints)."""

    names: tuple[str, ...]
    cpu: npt.NDArray[np.float64]
    memory: npt.NDArray[np.float64]
    gpus: npt.NDArray[np.int64]
    gpu_milli: npt.NDArray[np.int64]
    qos: npt.NDArray[np.int64]
    arrival: npt.NDArray[np.float64]
    departure: npt.NDArray[np.float64]
    phase: tuple[str, ...]
    gpu_spec: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.names)


@dataclasses.dataclass(frozen=True)
class Replay:
    """How the trace is played: ``compression`` of arrival times; every ``keep_every``-th node
    and pod (1 = all; the quick mode takes a quarter of each, same shape of cluster)."""

    compression: float = 1000.0
    keep_every: int = 1


def _rows(path: Path, required: tuple[str, ...], what: str) -> list[dict[str, str]]:
    """The rows of a CSV list, refused with a TraceError when it lacks a required column."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or ()]
            rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TraceError(f"{path}: cannot read the {what} list: {exc}") from None
    missing = [c for c in required if c not in header]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise TraceError(
            f"{path}: no column {names}: a {what} list to replay needs {', '.join(required)} "
            f"(the columns of benchmarks/data/openb/{'pods' if what == 'pod' else 'nodes'}.csv); "
            f"it has {', '.join(header) or 'no header'}"
        )
    if not rows:
        raise TraceError(f"{path}: no {what}s")
    return rows


def _numbers(
    path: Path, rows: list[dict[str, str]], column: str, *, integer: bool = False
) -> npt.NDArray[Any]:
    """One column as numbers (int64 when ``integer``); a TraceError names the first bad value."""
    try:
        values = np.array([float(r[column]) for r in rows])
    except ValueError:
        line, bad = next((i + 2, r[column]) for i, r in enumerate(rows) if not _is_number(r[column]))
        raise TraceError(f"{path} line {line}: {column} {bad!r} is not a number") from None
    return values.astype(np.int64) if integer else values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_nodes(replay: Replay, path: Path = NODES_CSV) -> Nodes:
    rows = _rows(path, NODE_COLUMNS, "node")
    cpu, memory = _numbers(path, rows, "cpu_milli"), _numbers(path, rows, "memory_mib")
    gpus = _numbers(path, rows, "gpu", integer=True)
    keep = slice(None, None, replay.keep_every)
    has_model = "model" in rows[0]
    return Nodes(
        names=tuple(r["sn"] for r in rows[keep]),
        cpu=cpu[keep],
        memory=memory[keep] * MIB,
        gpus=gpus[keep],
        model=tuple(r["model"] for r in rows[keep]) if has_model else (),
    )


def load_pods(replay: Replay, path: Path = PODS_CSV) -> Pods:
    """The pods sorted by creation time (stable: the list's order among equal times)."""
    all_rows = _rows(path, POD_COLUMNS, "pod")
    for i, r in enumerate(all_rows):
        if r["qos"] not in QOS_CLASSES:
            raise TraceError(f"{path} line {i + 2}: qos {r['qos']!r} is not one of {', '.join(QOS_CLASSES)}")
    rows = all_rows[:: replay.keep_every]
    created, deleted = _numbers(path, rows, "creation_time"), _numbers(path, rows, "deletion_time")
    trace_end = float(max(deleted.max(), created.max()))
    order = np.argsort(created, kind="stable")
    arrival = created / replay.compression
    departure = np.where(deleted >= trace_end, np.inf, arrival + (deleted - created))
    pick = lambda a: a[order]  # noqa: E731
    # a share above one GPU is one GPU, as the trace's own converter writes it (pod_csv_to_yaml.py)
    gpu_milli = np.clip(_numbers(path, rows, "gpu_milli", integer=True), 0, 1000)
    return Pods(
        names=tuple(rows[i]["name"] for i in order),
        cpu=pick(_numbers(path, rows, "cpu_milli")),
        memory=pick(_numbers(path, rows, "memory_mib") * MIB),
        gpus=pick(_numbers(path, rows, "num_gpu", integer=True)),
        gpu_milli=pick(gpu_milli),
        qos=pick(np.array([QOS_CLASSES.index(r["qos"]) for r in rows], dtype=np.int64)),
        arrival=pick(arrival),
        departure=pick(departure),
        phase=tuple(rows[i].get("pod_phase", "") for i in order),
        gpu_spec=tuple(rows[i].get("gpu_spec", "") for i in order),
    )


def check_replayable(nodes: Nodes, pods: Pods, nodes_path: Path) -> None:
    """Refuse a node list that cannot honour the pods' GPU-model constraints."""
    constrained = any(spec.strip("|") for spec, g in zip(pods.gpu_spec, pods.gpus, strict=True) if g > 0)
    if constrained and not nodes.model:
        raise TraceError(
            f"{nodes_path}: no column 'model': the pods name GPU models (gpu_spec) and the node "
            "list must say each node's model"
        )
