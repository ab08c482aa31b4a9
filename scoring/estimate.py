"""Estimated usage of a pod, per resource: Koordinator's default estimator.

Source: koordinator-sh/koordinator ``pkg/scheduler/plugins/loadaware/estimator/default_estimator.go``
(``estimatedUsedByResource``): ``q = limit if limit > request else request``;
``est = round(q * factor / 100)``, capped at the limit when one is set; a pod with neither
request nor limit is estimated at 250m CPU or 200 MiB memory (0 for other resources).
Resources without a scaling factor are estimated at 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from scoring.types import CPU, MEMORY, FloatArray, PodDemand

DEFAULT_CPU_ESTIMATE_MILLIS = 250.0  # Koordinator DefaultMilliCPURequest
DEFAULT_MEMORY_ESTIMATE_BYTES = 200.0 * 1024 * 1024  # Koordinator DefaultMemoryRequest
DEFAULTS: Mapping[str, float] = MappingProxyType(
    {CPU: DEFAULT_CPU_ESTIMATE_MILLIS, MEMORY: DEFAULT_MEMORY_ESTIMATE_BYTES}
)


def go_round(x: FloatArray) -> FloatArray:
    """Go's ``math.Round`` (half away from zero; numpy's ``round`` is half to even), exact for
    every float64: the fractional part ``x - trunc(x)`` is computed without rounding, where
    ``floor(|x| + 0.5)`` would round the addition (0.49999999999999994 -> 1, odd integers
    above 2**52 -> the next even one). NaN and infinities pass through."""
    x = np.asarray(x, dtype=np.float64)
    t = np.trunc(x)
    with np.errstate(invalid="ignore"):
        up = np.abs(x - t) >= 0.5
    return t + np.copysign(up.astype(np.float64), x)


def estimate_usage(
    requests: FloatArray, limits: FloatArray, resources: tuple[str, ...], factors: Mapping[str, float]
) -> FloatArray:
    """Estimated usage for a batch of pods.

    requests, limits: (..., R) float64 in scheduler units; returns the same shape.
    """
    requests = np.asarray(requests, dtype=np.float64)
    limits = np.asarray(limits, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(requests.shape, limits.shape))
    for r, name in enumerate(resources):
        factor = factors.get(name)
        if factor is None:
            continue
        req, lim = requests[..., r], limits[..., r]
        q = np.where(lim > req, lim, req)
        est = go_round(q * factor / 100.0)
        est = np.where((lim > 0) & (est > lim), lim, est)
        out[..., r] = np.where(q == 0, DEFAULTS.get(name, 0.0), est)
    return out


def go_round_scalar(x: float) -> float:
    """``go_round`` for one Python float (same exact method)."""
    if not math.isfinite(x):
        return x
    t = math.copysign(float(math.trunc(x)), x)  # keeps the sign of -0.3 -> -0.0, as Go
    return t + math.copysign(1.0, x) if abs(x - t) >= 0.5 else t


def estimate_pod(pod: PodDemand, factors: Mapping[str, float]) -> FloatArray:
    """(R,) estimated usage of the incoming pod: ``estimate_usage`` for one pod, in plain
    floats (a handful of resources: numpy's per-call overhead would dominate)."""
    out = []
    for r, name in enumerate(pod.resources):
        factor = factors.get(name)
        if factor is None:
            out.append(0.0)
            continue
        req, lim = float(pod.requests[r]), float(pod.limits[r])
        q = lim if lim > req else req
        if q == 0:
            out.append(DEFAULTS.get(name, 0.0))
            continue
        est = go_round_scalar(q * factor / 100.0)
        out.append(lim if lim > 0 and est > lim else est)
    return np.array(out, dtype=np.float64)
