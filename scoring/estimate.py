"""Estimated usage of a pod, per resource: Koordinator's default estimator.

Source: koordinator-sh/koordinator ``pkg/scheduler/plugins/loadaware/estimator/default_estimator.go``
(``estimatedUsedByResource``): ``q = limit if limit > request else request``;
``est = round(q * factor / 100)``, capped at the limit when one is set; a pod with neither
request nor limit is estimated at 250m CPU or 200 MiB memory (0 for other resources).
Resources without a scaling factor are estimated at 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from scoring.types import CPU, MEMORY, FloatArray, PodDemand

DEFAULT_CPU_ESTIMATE_MILLIS = 250.0  # Koordinator DefaultMilliCPURequest
DEFAULT_MEMORY_ESTIMATE_BYTES = 200.0 * 1024 * 1024  # Koordinator DefaultMemoryRequest


def go_round(x: FloatArray) -> FloatArray:
    """Go's ``math.Round``: half away from zero (numpy's ``round`` is half to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def estimate_usage(requests: FloatArray, limits: FloatArray, resources: tuple[str, ...],
                   factors: Mapping[str, float]) -> FloatArray:
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
        default = {CPU: DEFAULT_CPU_ESTIMATE_MILLIS, MEMORY: DEFAULT_MEMORY_ESTIMATE_BYTES}.get(name, 0.0)
        out[..., r] = np.where(q == 0, default, est)
    return out


def estimate_pod(pod: PodDemand, factors: Mapping[str, float]) -> FloatArray:
    """(R,) estimated usage of the incoming pod."""
    return estimate_usage(pod.requests, pod.limits, pod.resources, factors)
