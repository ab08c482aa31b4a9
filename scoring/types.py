"""The arrays the scoring core works on: one node table, one pod demand.

Everything the core needs arrives here as float64 numpy arrays, converted once by the extender
(quantities parsed, annotations read, clocks read). The core never sees JSON, Kubernetes
objects or time: it is a pure function of these arrays and a validated Policy.

Resource axis: column ``r`` of every (N, R) array is the resource ``resources[r]``. CPU is in
millicores, memory and other resources in base units (bytes, count), exactly the integers
kube-scheduler uses (``Quantity.MilliValue()`` for CPU, ``Value()`` otherwise).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
BASE_RESOURCES: tuple[str, ...] = (CPU, MEMORY, PODS)


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


@dataclasses.dataclass(frozen=True, eq=False)
class NodeTable:
    """N candidate nodes, aligned with ``names``.

    ``usage`` is measured usage (NaN where no measurement exists); ``usage_std`` and
    ``usage_p95`` likewise. ``load_age_s`` is the age of the newest measurement in seconds
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
    usage: FloatArray  # (N, R) NaN = unknown
    usage_std: FloatArray  # (N, R) NaN = unknown
    usage_p95: FloatArray  # (N, R) NaN = unknown
    load_age_s: FloatArray  # (N,) +inf = unknown
    pending: FloatArray  # (N, R)
    threshold_override: FloatArray  # (N, R) NaN = none

    def __post_init__(self) -> None:
        n, r = len(self.names), len(self.resources)
        for field in ("allocatable", "capacity", "requested", "nonzero_requested", "usage",
                      "usage_std", "usage_p95", "pending", "threshold_override"):
            arr = getattr(self, field)
            if arr.shape != (n, r) or arr.dtype != np.float64:
                raise ValueError(f"NodeTable.{field}: expected float64 ({n}, {r}), got {arr.dtype} {arr.shape}")
        if self.load_age_s.shape != (n,):
            raise ValueError(f"NodeTable.load_age_s: expected ({n},), got {self.load_age_s.shape}")
        _readonly(self.allocatable, self.capacity, self.requested, self.nonzero_requested,
                  self.usage, self.usage_std, self.usage_p95, self.load_age_s, self.pending,
                  self.threshold_override)

    def __len__(self) -> int:
        return len(self.names)

    def column(self, resource: str) -> int:
        """Index of ``resource`` on the resource axis, or -1 if the table does not carry it."""
        try:
            return self.resources.index(resource)
        except ValueError:
            return -1

    @classmethod
    def build(cls, *, names: tuple[str, ...], resources: tuple[str, ...], allocatable: FloatArray,
              capacity: FloatArray | None = None, requested: FloatArray | None = None,
              nonzero_requested: FloatArray | None = None, usage: FloatArray | None = None,
              usage_std: FloatArray | None = None, usage_p95: FloatArray | None = None,
              load_age_s: FloatArray | None = None, pending: FloatArray | None = None,
              threshold_override: FloatArray | None = None) -> NodeTable:
        """Convenience constructor: absent arrays default to 'nothing known' (zeros or NaN)."""
        shape = (len(names), len(resources))
        zeros = lambda: np.zeros(shape)  # noqa: E731
        nans = lambda: np.full(shape, np.nan)  # noqa: E731
        alloc = np.asarray(allocatable, dtype=np.float64)
        req = zeros() if requested is None else np.asarray(requested, dtype=np.float64)
        return cls(
            names=names, resources=resources, allocatable=alloc,
            capacity=alloc.copy() if capacity is None else np.asarray(capacity, dtype=np.float64),
            requested=req,
            nonzero_requested=req.copy() if nonzero_requested is None
            else np.asarray(nonzero_requested, dtype=np.float64),
            usage=nans() if usage is None else np.asarray(usage, dtype=np.float64),
            usage_std=nans() if usage_std is None else np.asarray(usage_std, dtype=np.float64),
            usage_p95=nans() if usage_p95 is None else np.asarray(usage_p95, dtype=np.float64),
            load_age_s=np.full(len(names), np.inf) if load_age_s is None
            else np.asarray(load_age_s, dtype=np.float64),
            pending=zeros() if pending is None else np.asarray(pending, dtype=np.float64),
            threshold_override=nans() if threshold_override is None
            else np.asarray(threshold_override, dtype=np.float64),
        )


@dataclasses.dataclass(frozen=True, eq=False)
class PodDemand:
    """The incoming pod, on the same resource axis as the node table.

    ``requests`` follows kube-scheduler's fit semantics (max of the containers' sum and the
    largest init container, plus overhead; ``pods`` = 1). ``nonzero_requests`` is the same with
    the scheduler's defaults for containers without requests (100m CPU, 200 MiB). ``limits`` is
    0 where no limit is set. ``qos`` is the pod's QoS class.
    """

    resources: tuple[str, ...]
    requests: FloatArray  # (R,)
    nonzero_requests: FloatArray  # (R,)
    limits: FloatArray  # (R,)
    qos: str = "Burstable"

    def __post_init__(self) -> None:
        r = len(self.resources)
        for field in ("requests", "nonzero_requests", "limits"):
            arr = getattr(self, field)
            if arr.shape != (r,) or arr.dtype != np.float64:
                raise ValueError(f"PodDemand.{field}: expected float64 ({r},), got {arr.dtype} {arr.shape}")
        _readonly(self.requests, self.nonzero_requests, self.limits)
