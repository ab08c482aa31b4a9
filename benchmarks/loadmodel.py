"""The load model of the placement benchmark: what each pod really uses, tick by tick.

The openb trace gives requests only. Each pod's CPU usage is modelled as a fraction of its
request that varies over time, by QoS class; memory as a steady fraction. These are
**assumptions**, stated here and printed with every result, not measurements, and the model is
the same for every policy compared (common random numbers: a pod's usage depends on the seed and
the pod, never on where it runs or which policy placed it).

CPU, per pod ``i`` of class ``q`` at tick ``k`` (time ``t = k * tick_s``)::

    f_i(t) = clip(b_i * (1 + A_q * sin(2*pi*(t - phi_i) / cycle_s)) * exp(e_i(t) - s_q**2 / 2),
                  floor, cap_q)
    usage_i(t) = f_i(t) * request_cpu_i

* ``b_i`` ~ Beta with mean ``base_q`` and concentration ``concentration`` (pods differ: some
  use little of what they ask, some most of it);
* a shared cycle of period ``cycle_s`` and amplitude ``A_q`` (online services peak together;
  batch has none), each pod's phase ``phi_i`` jittered by up to ``phase_jitter_s``;
* ``e_i`` an AR(1) process per pod (correlation ``rho`` per tick, stationary deviation
  ``s_q``): bursts that last minutes;
* ``cap_q``: the most a pod's CPU demand reaches, over its request. This bounds the model's
  bursts; it is **not a limit**. The trace gives requests only, and the pods the schedulers
  see carry exactly that: requests, and a limit only for Guaranteed pods (limit = request,
  where ``cap_q`` is 1, so the model keeps them within it). A pod without a limit is stopped
  by nothing but its node (the kernel shares the node's CPU by requests), so what it uses above
  its request is its demand, which no scheduler is told: each guesses it from the request
  (Koordinator's estimator 85 % of it, TargetLoadPacking 1.5 x, kube-scheduler not at all).
  Giving the pods limits of ``cap_q x request`` instead was tried and rejected: 23 of openb's
  8,152 pods (8-GPU jobs of 88-120 cores) would get limits above the largest node's 128 cores,
  a spec nobody writes, and every limit-reading estimator would refuse them everywhere.

Memory: ``m_i * request_memory_i`` with ``m_i`` ~ Beta(mean ``memory_base``), constant.

The node's CPU usage is the sum over its pods, capped at its capacity (the kernel throttles the
rest, reported as unmet demand).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.trace import QOS_CLASSES, Pods


@dataclasses.dataclass(frozen=True)
class QosLoad:
    """CPU usage of one QoS class, as fractions of the request."""

    base: float  # mean of b_i
    amplitude: float  # A_q, relative
    sigma: float  # s_q, stationary std of the log-noise
    cap: float  # f_i never exceeds this (the limit over the request)


@dataclasses.dataclass(frozen=True)
class LoadModel:
    """Every parameter of the load model (printed with each result)."""

    qos: tuple[tuple[str, QosLoad], ...] = (
        ("LS", QosLoad(base=0.40, amplitude=0.30, sigma=0.25, cap=1.5)),
        ("BE", QosLoad(base=0.70, amplitude=0.00, sigma=0.35, cap=2.0)),
        ("Burstable", QosLoad(base=0.50, amplitude=0.30, sigma=0.25, cap=2.0)),
        ("Guaranteed", QosLoad(base=0.50, amplitude=0.30, sigma=0.20, cap=1.0)),
    )
    concentration: float = 8.0  # Beta(a, b) with a + b = concentration
    cycle_s: float = 7200.0
    phase_jitter_s: float = 900.0
    rho: float = 0.9  # AR(1) correlation per tick
    floor: float = 0.02
    memory_base: float = 0.6

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["qos"] = {name: dataclasses.asdict(q) for name, q in self.qos}
        return d

    def by_class(self) -> list[QosLoad]:
        """Parameters indexed like ``trace.QOS_CLASSES``."""
        table = dict(self.qos)
        return [table[name] for name in QOS_CLASSES]


def _beta(
    rng: np.random.Generator,
    mean: npt.NDArray[np.float64],
    concentration: float,
) -> npt.NDArray[np.float64]:
    return rng.beta(mean * concentration, (1.0 - mean) * concentration)


@dataclasses.dataclass(frozen=True, eq=False)
class Usage:
    """One seed's usage: ``cpu_fraction`` (ticks, P) float32, ``memory_fraction`` (P,)."""

    cpu_fraction: npt.NDArray[np.float32]
    memory_fraction: npt.NDArray[np.float64]


def generate(model: LoadModel, pods: Pods, *, ticks: int, tick_s: float, seed: int) -> Usage:
    """Draw every pod's usage fractions for ``ticks`` ticks (whether it runs then or not, so that
    the draws do not depend on the policy)."""
    rng = np.random.default_rng(seed)
    params = model.by_class()
    q = pods.qos
    base = np.array([p.base for p in params])[q]
    amp = np.array([p.amplitude for p in params])[q]
    sigma = np.array([p.sigma for p in params])[q]
    cap = np.array([p.cap for p in params])[q]
    b = _beta(rng, base, model.concentration)
    phase = rng.uniform(-model.phase_jitter_s, model.phase_jitter_s, len(pods))
    memory = _beta(rng, np.full(len(pods), model.memory_base), model.concentration)
    out = np.empty((ticks, len(pods)), dtype=np.float32)
    e = rng.standard_normal(len(pods)) * sigma
    innovation = math.sqrt(1.0 - model.rho**2)
    shift = sigma**2 / 2.0
    for k in range(ticks):
        t = k * tick_s
        cycle = 1.0 + amp * np.sin(2.0 * math.pi * (t - phase) / model.cycle_s)
        out[k] = np.clip(b * cycle * np.exp(e - shift), model.floor, cap)
        e = model.rho * e + innovation * sigma * rng.standard_normal(len(pods))
    return Usage(cpu_fraction=out, memory_fraction=memory)
