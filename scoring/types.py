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
    ) -> NodeTable:
        """Convenience constructor: absent arrays default to 'nothing known' (zeros or NaN)."""
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
        )


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
    """

    resources: tuple[str, ...]
    requests: FloatArray  # (R,)
    nonzero_requests: FloatArray  # (R,)
    limits: FloatArray  # (R,)
    qos: str = "Burstable"
    container_requests: FloatArray | None = None  # (C, R)
    container_limits: FloatArray | None = None  # (C, R)
    overhead: FloatArray | None = None  # (R,)

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
