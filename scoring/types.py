"""The arrays the scoring core works on: one node table, one pod demand.

Everything the core needs arrives here as float64 numpy arrays, converted once by the extender
(quantities parsed, annotations read, clocks read). The core never sees JSON, Kubernetes
objects or time: it is a pure function of these arrays and a validated Policy.

Resource axis: column ``r`` of every (N, R) array is the resource ``resources[r]``. CPU is in
millicores, memory and other resources in base units (bytes, count), exactly the integers
kube-scheduler uses (``Quantity.MilliValue()`` for CPU, ``Value()`` otherwise). Quantities are
integers in 0..``MAX_QUANTITY`` (2**53, about 9 PB of memory): float64 holds every one of them
exactly, and the integer formulas (int64, as in Go) cannot overflow when multiplied by 100.
The extender refuses larger values at its boundary as absurd.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
EPHEMERAL_STORAGE = "ephemeral-storage"
BASE_RESOURCES: tuple[str, ...] = (CPU, MEMORY, PODS)
MAX_QUANTITY = 2**53  # the largest quantity the core accepts (exact in float64)
GPU_MILLI = 1000  # a whole GPU in thousandths: the unit of GPU shares (the openb trace's gpu_milli)
MAX_NODE_GPUS = 64  # GPU slots per node the GPU state may have (the openb trace has at most 8)
TASK_COLUMNS = ("cpu", "gpus", "milli", "count")  # NodeTable.task_counts


def _readonly(*arrays: npt.NDArray[np.generic]) -> None:
    for a in arrays:
        a.flags.writeable = False


ARRAY_FIELDS: tuple[str, ...] = (
    "allocatable",
    "capacity",
    "requested",
    "nonzero_requested",
    "limits",
    "usage",
    "usage_avg",
    "usage_std",
    "usage_p95",
    "pending",
    "threshold_override",
)


@dataclasses.dataclass(frozen=True)
class TaskType:
    """A kind of pod, for the GPU fragmentation measure: ``cpu`` millicores requested,
    ``gpus`` GPUs, ``milli`` thousandths of each of them (1..1000 when ``gpus`` > 0, 1000 for
    whole GPUs, 0 when ``gpus`` is 0; a shared GPU is one GPU with ``milli`` < 1000), and a
    ``weight``: how many pods of this kind were seen (or a relative frequency, an integer; the
    frequency of a kind is its weight over the sum of the weights, exactly)."""

    cpu: int
    gpus: int
    milli: int
    weight: int = 1

    def __post_init__(self) -> None:
        for f in ("cpu", "gpus", "milli", "weight"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"TaskType.{f}: must be an int, got {v!r}")
        if not 0 <= self.cpu <= MAX_QUANTITY:
            raise ValueError(f"TaskType.cpu: must be 0..{MAX_QUANTITY} millicores, got {self.cpu}")
        if not 0 <= self.gpus <= MAX_NODE_GPUS:
            raise ValueError(f"TaskType.gpus: must be 0..{MAX_NODE_GPUS}, got {self.gpus}")
        if self.gpus == 0 and self.milli != 0:
            raise ValueError(f"TaskType.milli: must be 0 for a task without GPUs, got {self.milli}")
        if self.gpus > 0 and not 1 <= self.milli <= GPU_MILLI:
            raise ValueError(f"TaskType.milli: must be 1..{GPU_MILLI} for a task with GPUs, got {self.milli}")
        if self.gpus > 1 and self.milli != GPU_MILLI:
            raise ValueError(
                f"TaskType: a share of a GPU ({self.milli}/{GPU_MILLI}) is for one GPU only, "
                f"got {self.gpus} GPUs"
            )
        if self.weight < 1:
            raise ValueError(f"TaskType.weight: must be >= 1, got {self.weight}")

    @property
    def spec(self) -> tuple[int, int, int]:
        """(cpu, gpus, milli): what identifies the kind, without its weight."""
        return (self.cpu, self.gpus, self.milli)


@dataclasses.dataclass(frozen=True)
class GPURequest:
    """The GPUs a pod asks for: ``count`` GPUs with ``milli`` thousandths of each (1000: whole
    GPUs; below 1000 a share of one GPU, so ``count`` is then 1, as the GPU-sharing schemes and
    the openb trace have it)."""

    count: int
    milli: int = GPU_MILLI

    def __post_init__(self) -> None:
        TaskType(0, self.count, self.milli if self.count else 0)  # the same rules


@dataclasses.dataclass(frozen=True)
class TableStats:
    """Per column of a NodeTable: every node has allocatable > 0; the largest allocatable;
    some node overrides the usage threshold."""

    alloc_all_positive: tuple[bool, ...]
    alloc_max: tuple[float, ...]
    has_threshold_override: tuple[bool, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class NodeTable:
    """N candidate nodes, aligned with ``names``.

    ``usage`` is the latest measured usage (NaN where no measurement exists); ``usage_avg``
    the window average (NaN where the source has none: the Trimaran strategies then read
    ``usage``); ``usage_std`` and ``usage_p95`` likewise. ``limits`` is the sum over the node's
    pods of ``max(pod limits, pod requests)`` per resource (Trimaran ``SetMaxLimits``: a pod
    without limits counts its requests). ``load_age_s`` is the age of the newest measurement in seconds
    (+inf where none). ``pending`` is usage of recently placed pods that the measurement does
    not show yet (zeros when unknown). ``threshold_override`` holds per-node usage thresholds
    in percent (NaN where the policy's value applies).
    """

    names: tuple[str, ...]
    resources: tuple[str, ...]
    allocatable: FloatArray  # (N, R)
    capacity: FloatArray  # (N, R)
    requested: FloatArray  # (N, R) sum of pod requests on the node (fit semantics)
    nonzero_requested: FloatArray  # (N, R) same with kube-scheduler's non-zero defaults
    limits: FloatArray  # (N, R) sum over pods of max(limits, requests)
    usage: FloatArray  # (N, R) NaN = unknown
    usage_avg: FloatArray  # (N, R) NaN = unknown
    usage_std: FloatArray  # (N, R) NaN = unknown
    usage_p95: FloatArray  # (N, R) NaN = unknown
    load_age_s: FloatArray  # (N,) +inf = unknown
    pending: FloatArray  # (N, R)
    threshold_override: FloatArray  # (N, R) NaN = none
    gpu_free: npt.NDArray[Any] | None = None  # (N, G) int64 thousandths of each GPU free, 0..1000
    gpu_present: npt.NDArray[Any] | None = None  # (N, G) bool, True where the node has that GPU
    task_counts: npt.NDArray[Any] | None = None  # (K, 4) int64 pods seen by kind (TASK_COLUMNS)

    def __post_init__(self) -> None:
        n, r = len(self.names), len(self.resources)
        for field in ARRAY_FIELDS:
            arr = getattr(self, field)
            if arr.shape != (n, r) or arr.dtype != np.float64:
                raise ValueError(
                    f"NodeTable.{field}: expected float64 ({n}, {r}), got {arr.dtype} {arr.shape}"
                )
            if not arr.flags.f_contiguous:
                # resource-major memory: every column the strategies read is contiguous
                object.__setattr__(self, field, np.asfortranarray(arr))
        if self.load_age_s.shape != (n,):
            raise ValueError(f"NodeTable.load_age_s: expected ({n},), got {self.load_age_s.shape}")
        _readonly(self.load_age_s, *(getattr(self, f) for f in ARRAY_FIELDS))
        self._check_gpu(n)

    def _check_gpu(self, n: int) -> None:
        free, present = self.gpu_free, self.gpu_present
        if free is None or present is None:
            if free is not None or present is not None:
                raise ValueError("NodeTable.gpu_free and gpu_present: give both or neither")
        else:
            if free.dtype != np.int64 or free.ndim != 2 or free.shape[0] != n:
                raise ValueError(
                    f"NodeTable.gpu_free: expected int64 ({n}, G), got {free.dtype} {free.shape}"
                )
            if present.dtype != np.bool_ or present.shape != free.shape:
                raise ValueError(
                    f"NodeTable.gpu_present: expected bool {free.shape}, got {present.dtype} {present.shape}"
                )
            if free.shape[1] > MAX_NODE_GPUS:
                raise ValueError(
                    f"NodeTable.gpu_free: at most {MAX_NODE_GPUS} GPU slots, got {free.shape[1]}"
                )
            if free.size and (free.min() < 0 or free.max() > GPU_MILLI):
                raise ValueError(f"NodeTable.gpu_free: thousandths of a GPU must be 0..{GPU_MILLI}")
            if (free[~present] != 0).any():
                raise ValueError("NodeTable.gpu_free: must be 0 where gpu_present is False")
            _readonly(free, present)
        counts = self.task_counts
        if counts is not None:
            if counts.dtype != np.int64 or counts.ndim != 2 or counts.shape[1] != len(TASK_COLUMNS):
                raise ValueError(
                    f"NodeTable.task_counts: expected int64 (K, {len(TASK_COLUMNS)}), "
                    f"got {counts.dtype} {counts.shape}"
                )
            _readonly(counts)
            kinds = self.observed_tasks  # validates each row
            if len({t.spec for t in kinds}) != len(kinds):
                raise ValueError("NodeTable.task_counts: each kind (cpu, gpus, milli) once")

    @functools.cached_property
    def observed_tasks(self) -> tuple[TaskType, ...]:
        """``task_counts`` as TaskType (weight = count); empty when unknown."""
        if self.task_counts is None:
            return ()
        return tuple(TaskType(*(int(v) for v in row)) for row in self.task_counts.tolist())

    @functools.cached_property
    def memo(self) -> dict[object, object]:
        """Facts derived from this table by the strategies, once per table (scoring/gpu.py keeps
        its GPU state here). Tables are immutable: nothing here goes stale."""
        return {}

    def __len__(self) -> int:
        return len(self.names)

    @functools.cached_property
    def stats(self) -> TableStats:
        """Facts about the table's columns, computed once per table (tables are immutable and
        are scored many times): they let the strategies skip masks that change nothing."""
        alloc = self.allocatable
        n = len(self.names)
        return TableStats(
            alloc_all_positive=tuple(bool((alloc[:, c] > 0).all()) for c in range(alloc.shape[1])),
            alloc_max=tuple(float(alloc[:, c].max()) if n else 0.0 for c in range(alloc.shape[1])),
            has_threshold_override=tuple(
                bool((~np.isnan(self.threshold_override[:, c])).any()) for c in range(alloc.shape[1])
            ),
        )

    def take(self, rows: npt.NDArray[np.int64]) -> NodeTable:
        """The table of ``rows`` only, in that order (copies: a few rows kept for later, e.g. the
        decision log's best nodes, without holding on to the whole table)."""
        return dataclasses.replace(
            self,
            names=tuple(self.names[i] for i in rows.tolist()),
            load_age_s=self.load_age_s[rows],
            gpu_free=None if self.gpu_free is None else self.gpu_free[rows],
            gpu_present=None if self.gpu_present is None else self.gpu_present[rows],
            task_counts=self.task_counts,
            **{f: getattr(self, f)[rows] for f in ARRAY_FIELDS},
        )

    def column(self, resource: str) -> int:
        """Index of ``resource`` on the resource axis, or -1 if the table does not carry it."""
        try:
            return self.resources.index(resource)
        except ValueError:
            return -1

    @classmethod
    def build(
        cls,
        *,
        names: tuple[str, ...],
        resources: tuple[str, ...],
        allocatable: FloatArray,
        capacity: FloatArray | None = None,
        requested: FloatArray | None = None,
        nonzero_requested: FloatArray | None = None,
        limits: FloatArray | None = None,
        usage: FloatArray | None = None,
        usage_avg: FloatArray | None = None,
        usage_std: FloatArray | None = None,
        usage_p95: FloatArray | None = None,
        load_age_s: FloatArray | None = None,
        pending: FloatArray | None = None,
        threshold_override: FloatArray | None = None,
        gpu_free: npt.ArrayLike | None = None,
        gpu_present: npt.ArrayLike | None = None,
        task_counts: Sequence[TaskType] | npt.ArrayLike | None = None,
    ) -> NodeTable:
        """Convenience constructor: absent arrays default to 'nothing known' (zeros or NaN).
        ``gpu_free`` and ``gpu_present`` are converted (int64, bool); ``gpu_present`` defaults
        to every slot when only ``gpu_free`` is given; ``task_counts`` may be TaskTypes (weight
        = count)."""
        shape = (len(names), len(resources))

        def zeros() -> FloatArray:
            return np.zeros(shape)

        def nans() -> FloatArray:
            return np.full(shape, np.nan)

        alloc = np.asarray(allocatable, dtype=np.float64)
        req = zeros() if requested is None else np.asarray(requested, dtype=np.float64)
        return cls(
            names=names,
            resources=resources,
            allocatable=alloc,
            capacity=alloc.copy() if capacity is None else np.asarray(capacity, dtype=np.float64),
            requested=req,
            nonzero_requested=req.copy()
            if nonzero_requested is None
            else np.asarray(nonzero_requested, dtype=np.float64),
            limits=req.copy() if limits is None else np.asarray(limits, dtype=np.float64),
            usage=nans() if usage is None else np.asarray(usage, dtype=np.float64),
            usage_avg=nans() if usage_avg is None else np.asarray(usage_avg, dtype=np.float64),
            usage_std=nans() if usage_std is None else np.asarray(usage_std, dtype=np.float64),
            usage_p95=nans() if usage_p95 is None else np.asarray(usage_p95, dtype=np.float64),
            load_age_s=np.full(len(names), np.inf)
            if load_age_s is None
            else np.asarray(load_age_s, dtype=np.float64),
            pending=zeros() if pending is None else np.asarray(pending, dtype=np.float64),
            threshold_override=nans()
            if threshold_override is None
            else np.asarray(threshold_override, dtype=np.float64),
            gpu_free=None if gpu_free is None else np.array(gpu_free, dtype=np.int64, ndmin=2),
            gpu_present=None
            if gpu_free is None
            else np.ones(np.shape(gpu_free), bool)
            if gpu_present is None
            else np.array(gpu_present, dtype=np.bool_, ndmin=2),
            task_counts=_task_array(task_counts),
        )


def _task_array(tasks: Sequence[TaskType] | npt.ArrayLike | None) -> npt.NDArray[np.int64] | None:
    if tasks is None:
        return None
    if isinstance(tasks, Sequence):
        kinds = [t for t in tasks if isinstance(t, TaskType)]
        if len(kinds) == len(tasks):
            rows = [(t.cpu, t.gpus, t.milli, t.weight) for t in kinds]
            return np.array(rows, dtype=np.int64).reshape(len(rows), len(TASK_COLUMNS))
    return np.array(tasks, dtype=np.int64, ndmin=2)


@dataclasses.dataclass(frozen=True, eq=False)
class PodDemand:
    """The incoming pod, on the same resource axis as the node table.

    ``requests`` follows kube-scheduler's fit semantics (max of the containers' sum and the
    largest init container, plus overhead; ``pods`` = 1). ``nonzero_requests`` is the same with
    the scheduler's defaults for containers without requests (100m CPU, 200 MiB). ``limits`` is
    0 where no limit is set. ``qos`` is the pod's QoS class.

    ``container_requests`` / ``container_limits`` (C, R) are the app containers' own values and
    ``overhead`` (R,) the pod overhead, for strategies that predict usage per container
    (Trimaran TargetLoadPacking). When omitted the pod counts as one container with the pod's
    requests and limits and no overhead.

    ``gpu``: the GPUs the pod asks for, for the GPU strategies, when it asks for a share of a
    GPU (a GPU-sharing scheme's request, converted by the caller). None: whole GPUs, as many
    as its request of the GPU resource the policy names (``nvidia.com/gpu`` by default).
    """

    resources: tuple[str, ...]
    requests: FloatArray  # (R,)
    nonzero_requests: FloatArray  # (R,)
    limits: FloatArray  # (R,)
    qos: str = "Burstable"
    container_requests: FloatArray | None = None  # (C, R)
    container_limits: FloatArray | None = None  # (C, R)
    overhead: FloatArray | None = None  # (R,)
    gpu: GPURequest | None = None

    def __post_init__(self) -> None:
        r = len(self.resources)
        if self.container_requests is None:
            c_req, c_lim = self.requests.reshape(1, r).copy(), self.limits.reshape(1, r).copy()
        else:
            c_req = self.container_requests
            c_lim = np.zeros_like(c_req) if self.container_limits is None else self.container_limits
        overhead = np.zeros(r) if self.overhead is None else self.overhead
        object.__setattr__(self, "container_requests", c_req)
        object.__setattr__(self, "container_limits", c_lim)
        object.__setattr__(self, "overhead", overhead)
        for field in ("requests", "nonzero_requests", "limits", "overhead"):
            arr = getattr(self, field)
            if arr.shape != (r,) or arr.dtype != np.float64:
                raise ValueError(f"PodDemand.{field}: expected float64 ({r},), got {arr.dtype} {arr.shape}")
        for field in ("container_requests", "container_limits"):
            arr = getattr(self, field)
            if arr.ndim != 2 or arr.shape[1] != r or arr.dtype != np.float64 or arr.shape != c_req.shape:
                raise ValueError(f"PodDemand.{field}: expected float64 (C, {r}), got {arr.dtype} {arr.shape}")
        _readonly(self.requests, self.nonzero_requests, self.limits, c_req, c_lim, overhead)

    @property
    def best_effort(self) -> bool:
        return self.qos == "BestEffort"
