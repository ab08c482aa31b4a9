"""Trimaran's three load-aware Score plugins as pure numpy kernels, vectorised over N nodes.

Upstream: kubernetes-sigs/scheduler-plugins, ``pkg/trimaran`` (TargetLoadPacking,
LoadVariationRiskBalancing, LowRiskOverCommitment) and the Cephes incomplete-beta code that
LowRiskOverCommitment calls through gonum (``gonum.org/v1/gonum/mathext.RegIncBeta`` ->
``mathext/internal/cephes/incbeta.go``), ported in scoring/special.py. Every kernel reproduces
the Go ``Score`` of one node in Go's float64 operation order, for all N nodes at once, and
returns int64 scores exactly as the plugin would (``int64(math.Round(...))``, i.e. half away
from zero, not numpy's half-to-even).

Units and shapes
----------------
* CPU in millicores, memory in bytes, both int64 for capacities/allocatables/requests/limits.
* Usage (``used_*``) is **absolute** float64 (millicores, bytes), not percent: the caller converts
  load-watcher's percentages (upstream: ``pct/100*capacity`` in TLP, ``pct*capacity/100`` in
  ``trimaran.CreateResourceStats``).
* Per-resource arrays are (N, k); the resource axis is whatever the caller chooses, upstream
  looks at exactly two resources, cpu and memory (k = 2). ``resource_is_memory`` (k,) marks
  memory, which Trimaran converts to MB (``trimaran.MegaFactor`` = 1/1024/1024). MegaFactor is
  2**-20, so that scaling is exact and cancels in every comparison and quotient the plugins
  make; the kernels skip it (the scalar references apply it literally and the property tests
  confirm the equality; only subnormal byte counts could differ).
* Scores are (N,) int64; ``lvrb_resource_scores``/``lroc_resource_risks`` return the per-resource
  floats resource-major, (k, N).

Nodes and metrics
-----------------
Upstream returns ``framework.MinNodeScore`` (0) for a node the load-watcher snapshot lacks
(``Collector.GetNodeMetrics`` returns nil). The kernels cannot see that: **the caller masks such
nodes to 0**. Within a node, a *resource* whose metric is missing is modelled here: a non-finite
``used_avg`` (NaN) or ``metric_present=False`` means "no metric of that type" (upstream
``GetResourceData`` isValid=false); an unknown std is 0 (upstream default when no ``Std``
operator is reported, e.g. with metrics-server). In TLP a non-finite ``used_cpu`` scores 0 (the
"Cpu metric not found" branch).

Deliberate deviations / limits of exactness
-------------------------------------------
* Exactness is to Go on amd64 (no fused multiply-add). ``math.Pow``/``Log``/``Exp``/``Lgamma``
  in Go and libm/numpy may differ by an ulp; only a value within ~1e-13 of a rounding boundary
  (x.5) could round differently (except in the swapped Beta CDF below). The Beta CDF uses
  CPython's Lanczos ``lgamma`` (ported to numpy: equal to ``math.lgamma`` except where numpy's
  and the C library's log round apart, ~1e-4 of arguments) where gonum uses Go's
  ``math.Lgamma``. For large
  shape parameters Cephes' x^a (1-x)^b / B(a, b) factor carries an ``ulp(lgamma(a+b))`` noise
  in gonum and here alike (~2e-10 absolute at a+b ~ 1e5, i.e. a smoothed std near 0.2 % of
  capacity; ~1e-7 at a+b ~ 1e8); below a+b ~ 5e3 the CDF is within ~2e-12 of scipy's.
* Where Cephes swaps (x above the Beta's mean) it returns ``1 - t``, so t's relative error
  (that of ``exp(-Lbeta(a, b))``, an ulp of lgamma, and of pow) becomes an absolute error of the
  CDF however small the CDF is. LROC meets it when the average usage is within ~1e-13 C of the
  allocatable C (mu -> 1 with sigma at its cap: Beta(~0.01, ~1e-15), lgamma ~ 35) and the node's
  limits lie between the two: the conditioning CDF(Lm / C) ~ 8e-14 is then off by ~5 % in
  gonum and here alike (exact 7.90e-14; this kernel 7.54e-14, the scalar reference 7.53e-14,
  one ulp of pow apart), which moves riskLoad by several hundredths. Mirrored, an average within
  ~1e-13 of 0 puts a CDF at 1 or at 1 + 2**-52 (-> 0). Neither can be reproduced exactly from
  another libm; the tests compare those cells within the reference's propagated error bound
  (tests/scoring/reference_trimaran.py, "Error bounds"). In riskLoad the error is about
  1e-14 / (1 - mu) and the difference between two ports about 1e-16 / (1 - mu), where
  1 - mu > 1 / C (integer limits between the average and C): beyond 1e-9 between ports from
  1 - mu < ~1e-7 (C > 1e7, e.g. a 64 GiB node averaging within 7 KB of its allocatable), a score
  point only from 1 - mu < ~1e-12, i.e. C > 1e12 units and an average within a unit or so of it.
* TLP: a container resource "0" is read as *not set* (upstream distinguishes an explicit limit of
  0, which predicts 0). The recent-bind compensation (which pods count as "missing") is the
  caller's: pass their predicted CPU summed in ``pending_cpu``.
* LROC: the per-pod ``max(limits, requests)`` (``trimaran.SetMaxLimits``) of the pods already on
  the node cannot be redone from sums: ``limits`` must be the sum over those pods of
  ``max(pod limit, pod request)`` (a pod's limit is the sum of its containers' limits, missing
  limits counting 0, max'ed with init containers, plus overhead: ``trimaran.GetResourceLimits``).
  For the incoming pod the kernel applies ``max(pod_limit, pod_request)`` itself.
* Upstream behaviour kept although surprising (see tests/scoring/test_trimaran.py): LROC is not
  monotone in the measured average (the moment-matched Beta's CDF at a fixed threshold can rise
  with the mean), and where the pods on a node have limits == requests < allocatable the
  conditioning ``p /= CDF(Lm / C)`` divides p by itself, so riskLoad is 0 whatever the load
  unless the CDF underflows to exactly 0, when it is 1. Because of that cliff the Beta CDF must
  follow Cephes' branch choice exactly (an equally accurate branch can underflow differently).
* Generalisation to k resources: LVRB takes the min over present resources (upstream: min of
  cpu and memory if both present, else the one present, else 0); LROC the max risk over all k.
* ``scoring.special.beta_cdf`` follows
  ``lowriskovercommitment.BetaDistribution.DistributionFunction``: a NaN or out-of-[0,1] result
  of the incomplete beta (invalid or non-finite shape parameters) is 0; for x <= 0 it is 0 and
  for x >= 1 it is 1 (gonum ``distuv.Beta.CDF`` edges; Trimaran never passes x > 1, for which
  its ``RegularizedIncomplete`` would give NaN -> 0).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from scoring.estimate import go_round
from scoring.special import _beta_cdf_flat, _lbeta
from scoring.types import FloatArray, IntArray

__all__ = [
    "MEGA_FACTOR",
    "load_variation_risk_balancing",
    "low_risk_over_commitment",
    "lroc_resource_risks",
    "lvrb_resource_scores",
    "target_load_packing",
    "tlp_predicted_cpu",
]

# apis/config/v1/defaults.go
DEFAULT_REQUESTS_MILLI_CORES = 1000.0
DEFAULT_REQUESTS_MULTIPLIER = 1.5
DEFAULT_TARGET_UTILIZATION_PERCENT = 40
DEFAULT_SAFE_VARIANCE_MARGIN = 1.0
DEFAULT_SAFE_VARIANCE_SENSITIVITY = 1.0
DEFAULT_SMOOTHING_WINDOW_SIZE = 5
DEFAULT_RISK_LIMIT_WEIGHT = 0.5

MEGA_FACTOR = 1.0 / 1024.0 / 1024.0  # pkg/trimaran/resourcestats.go MegaFactor (= 2**-20)
MAX_NODE_SCORE = 100.0  # framework.MaxNodeScore
MAX_VARIANCE_ALLOWANCE = 0.99  # lowriskovercommitment.MaxVarianceAllowance
SMALLEST_NONZERO_FLOAT64 = 5e-324  # math.SmallestNonzeroFloat64

_S = TypeVar("_S", bound=np.generic)


# --------------------------------------------------------------------------------------------
# TargetLoadPacking


def tlp_predicted_cpu(
    container_requests: npt.ArrayLike,
    container_limits: npt.ArrayLike,
    overhead: float,
    *,
    multiplier: float = DEFAULT_REQUESTS_MULTIPLIER,
    default_millis: float = DEFAULT_REQUESTS_MILLI_CORES,
) -> float:
    """Predicted CPU (millicores) of one pod, as TargetLoadPacking counts it.

    Source: ``pkg/trimaran/targetloadpacking/targetloadpacking.go``, ``PredictUtilisation`` (per
    container: the limit if set; else ``int64(math.Round(float64(request) * requestsMultiplier))``
    if a request is set; else ``requestsMilliCores``) summed in int64 over ``pod.Spec.Containers``
    (init containers are ignored), plus ``pod.Spec.Overhead.Cpu().MilliValue()`` (added in
    ``Score`` for the incoming pod and for each recently bound "missing" pod).

    ``container_requests``/``container_limits``: (C,) millicores, 0 = not set. Upstream tests key
    presence, so an explicitly set limit "0" predicts 0 there but falls through to the request
    here. ``multiplier`` is ``DefaultRequestsMultiplier`` (the string "1.5" upstream, parsed with
    ``strconv.ParseFloat``), ``default_millis`` is ``DefaultRequests.cpu`` (1000m).
    """
    req = np.asarray(container_requests, dtype=np.float64).reshape(-1)
    lim = np.asarray(container_limits, dtype=np.float64).reshape(-1)
    if req.shape != lim.shape:
        raise ValueError("container_requests and container_limits must have the same length")
    pred = np.where(
        lim > 0, lim, np.where(req > 0, go_round(req * float(multiplier)), float(int(default_millis)))
    )
    return float(int(pred.astype(np.int64).sum()) + int(overhead))


def target_load_packing(
    capacity_cpu: npt.ArrayLike,
    used_cpu: npt.ArrayLike,
    pending_cpu: npt.ArrayLike,
    pod_cpu: float,
    *,
    target: float,
) -> IntArray:
    """TargetLoadPacking ``Score`` for N nodes, (N,) int64.

    Source: ``pkg/trimaran/targetloadpacking/targetloadpacking.go``,
    ``(*TargetLoadPacking).Score``, with X = ``TargetUtilization``::

        U = 100 * (used + pod + missing) / capacity       (U = 0 when capacity == 0)
        U > X:  U > 100 -> 0;  else int64(math.Round(X * (100 - U) / (100 - X)))
        U <= X: int64(math.Round((100 - X) * U / X + X))

    ``capacity_cpu`` (N,) int64 millicores, the node's **capacity** (``Status.Capacity``, not
    allocatable); ``used_cpu`` (N,) float64 absolute millicores (upstream ``(pct / 100) * cap``
    from the CPU metric with operator AVG or Latest); ``pending_cpu`` (N,) float64 predicted
    millicores of the recently bound pods not yet in the measurement (upstream
    ``missingCPUUtilMillis``: pods bound after the metrics window end or less than 60 s before
    it, each predicted with ``tlp_predicted_cpu``); ``pod_cpu`` the incoming pod's predicted
    millicores; ``target`` percent, an integer in 1..100 (upstream defaults values <= 0 to 40).

    Upstream quirks kept: capacity 0 gives U = 0 and so the score X (not 0); negative usage gives
    scores below X, down to negative values. A non-finite U (NaN usage: no CPU metric) scores 0.
    """
    xi = int(target)
    if xi != target or not 1 <= xi <= 100:
        raise ValueError(f"target must be an integer percent in 1..100, got {target!r}")
    x = float(xi)
    cap = np.asarray(capacity_cpu).astype(np.float64)
    num = np.asarray(used_cpu, dtype=np.float64) + float(pod_cpu)
    num += np.asarray(pending_cpu, dtype=np.float64)
    with np.errstate(all="ignore"):
        num *= 100.0
        u = num / cap
        zero = cap == 0
        if zero.any():
            u[zero] = 0.0
        f = (100.0 - x) * u
        f /= x
        f += x
        hi = u > x
        if x < 100.0 and hi.any():
            pen = (x * (100.0 - u)) / (100.0 - x)
            f = np.where(hi, pen, f)
        score = go_round(f)
        bad = (u > 100.0) | np.isnan(u) | np.isnan(num)  # NaN usage: no CPU metric, even at capacity 0
        if bad.any():
            score[bad] = 0.0
        if np.isinf(score).any():
            score[np.isinf(score)] = 0.0
    return score.astype(np.int64)


# --------------------------------------------------------------------------------------------
# LoadVariationRiskBalancing


def _cols(a: npt.ArrayLike, dtype: type[_S]) -> npt.NDArray[_S]:
    """(N, k) input as an array whose columns are the resources (a 1-D input is one resource)."""
    a = np.asarray(a, dtype=dtype)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def lvrb_resource_scores(
    allocatable: npt.ArrayLike,
    used_avg: npt.ArrayLike,
    used_std: npt.ArrayLike,
    pod_request: npt.ArrayLike,
    *,
    margin: float = DEFAULT_SAFE_VARIANCE_MARGIN,
    sensitivity: float = DEFAULT_SAFE_VARIANCE_SENSITIVITY,
    resource_is_memory: npt.ArrayLike,
) -> FloatArray:
    """Per-resource float scores (k, N) (resource-major), upstream ``computeScore``.

    Source: ``pkg/trimaran/loadvariationriskbalancing/analysis.go``, ``computeScore`` (current
    form, using ``trimaran.GetMuSigma``; older releases rounded each resource with
    ``int64(objScaled + 0.5)`` and had no sensitivity) and ``pkg/trimaran/resourcestats.go``
    ``CreateResourceStats``/``GetMuSigma``::

        capacity <= 0 -> 0
        req = max(req, 0); avg = clamp(avg, 0, cap); std = clamp(std, 0, cap)
        mu = clamp((avg + req) / cap, 0, 1); sigma = clamp(std / cap, 0, 1)
        if sensitivity >= 0: sigma = sigma ** (1 / sensitivity)
        sigma = clamp(sigma * margin, 0, 1)
        score = (1 - (mu + sigma) / 2) * 100

    Memory is in MB upstream (``* MegaFactor``). MegaFactor is 2**-20, so scaling capacity,
    request, average and std by it changes no comparison and no quotient (exact power-of-two
    scaling, absent subnormal values): the kernel skips it and ``resource_is_memory`` only
    documents the unit. Not rounded; a NaN ``used_avg`` gives NaN in that cell, a NaN std counts
    as 0.
    """
    alloc = _cols(allocatable, np.int64)
    avg_all = _cols(used_avg, np.float64)
    std_all = _cols(used_std, np.float64)
    req = np.maximum(np.asarray(pod_request, dtype=np.float64).reshape(-1), 0.0)
    n, k = alloc.shape
    if np.asarray(resource_is_memory).reshape(-1).shape[0] != k:
        raise ValueError("resource_is_memory must have one entry per resource")
    margin = float(margin)
    sens = float(sensitivity)
    expo = None if sens < 0 else (math.inf if sens == 0 else 1.0 / sens)
    out = np.empty((k, n))
    with np.errstate(all="ignore"):
        for j in range(k):
            cap = alloc[:, j].astype(np.float64)
            mu = np.minimum(avg_all[:, j], cap)
            np.maximum(mu, 0.0, out=mu)
            mu += req[j]
            mu /= cap
            np.minimum(mu, 1.0, out=mu)  # >= 0 already where cap > 0
            sigma = np.fmax(std_all[:, j], 0.0)  # NaN std -> 0
            np.fmin(sigma, cap, out=sigma)
            sigma /= cap  # in [0, 1] where cap > 0
            if expo is not None and expo != 1.0:
                sigma = np.sqrt(sigma) if expo == 0.5 else np.power(sigma, expo)  # Go Pow(x, .5) = Sqrt
            if margin != 1.0:
                sigma *= margin
                np.minimum(sigma, 1.0, out=sigma)
                np.maximum(sigma, 0.0, out=sigma)
            mu += sigma
            mu /= 2.0
            s = np.subtract(1.0, mu, out=mu)
            s *= MAX_NODE_SCORE
            bad = cap <= 0
            if bad.any():
                s[bad] = 0.0
            out[j] = s
    return out


def load_variation_risk_balancing(
    allocatable: npt.ArrayLike,
    used_avg: npt.ArrayLike,
    used_std: npt.ArrayLike,
    pod_request: npt.ArrayLike,
    *,
    margin: float = DEFAULT_SAFE_VARIANCE_MARGIN,
    sensitivity: float = DEFAULT_SAFE_VARIANCE_SENSITIVITY,
    resource_is_memory: npt.ArrayLike,
    metric_present: npt.ArrayLike | None = None,
) -> IntArray:
    """LoadVariationRiskBalancing ``Score`` for N nodes, (N,) int64 in 0..100.

    Source: ``pkg/trimaran/loadvariationriskbalancing/loadvariationriskbalancing.go``,
    ``(*LoadVariationRiskBalancing).Score``: per-resource ``computeScore`` (see
    ``lvrb_resource_scores``); node score ``min`` over the resources whose metric is present
    (upstream: ``min(cpu, memory)`` if both are present, else ``max(cpu, memory)`` with the absent
    one 0, i.e. the present one, or 0 if none); then ``int64(math.Round(total))``.

    ``allocatable`` (N, k) int64 (cpu millicores / memory bytes; upstream uses
    ``Status.Allocatable``); ``used_avg``/``used_std`` (N, k) float64 absolute; ``pod_request``
    (k,) (``trimaran.GetResourceRequested``: containers summed, max'ed with each init container,
    plus overhead); ``resource_is_memory`` (k,) bool. A resource is present where ``used_avg`` is
    finite and ``metric_present`` (N, k) bool (default: all) is true; upstream counts a resource
    as present when any metric of its type is reported, even a Std one alone (then avg = 0).
    ``margin``/``sensitivity`` are used as given, as ``computeScore`` does (negative sensitivity:
    no root; upstream config defaulting replaces negative values by 1). No recent-bind
    compensation (upstream registers the handler but ``Score`` does not use it).
    """
    avg = _cols(used_avg, np.float64)
    s = lvrb_resource_scores(
        allocatable,
        avg,
        used_std,
        pod_request,
        margin=margin,
        sensitivity=sensitivity,
        resource_is_memory=resource_is_memory,
    )
    k = s.shape[0]
    mp = None if metric_present is None else _cols(metric_present, np.bool_)
    total: FloatArray | None = None
    all_present = True
    for j in range(k):
        pres = np.isfinite(avg[:, j])
        if mp is not None:
            pres &= mp[:, j]
        sj = s[j]
        if not pres.all():
            all_present = False
            sj = np.where(pres, sj, np.inf)
        total = sj if total is None else np.minimum(total, sj)
    if total is None:  # k == 0: no resource is present, upstream's 0
        return np.zeros(s.shape[1], dtype=np.int64)
    if not all_present:
        total = np.where(total == np.inf, 0.0, total)
    return go_round(total).astype(np.int64)


# --------------------------------------------------------------------------------------------
# LowRiskOverCommitment


def lroc_resource_risks(
    allocatable: npt.ArrayLike,
    requested: npt.ArrayLike,
    limits: npt.ArrayLike,
    pod_request: npt.ArrayLike,
    pod_limit: npt.ArrayLike,
    used_avg: npt.ArrayLike,
    used_std: npt.ArrayLike,
    *,
    smoothing_window_size: int = DEFAULT_SMOOTHING_WINDOW_SIZE,
    risk_limit_weights: npt.ArrayLike,
    resource_is_memory: npt.ArrayLike | None = None,
    metric_present: npt.ArrayLike | None = None,
) -> FloatArray:
    """Per-resource total risk (k, N) (resource-major) in [0, 1], upstream ``computeRisk``.

    Source: ``pkg/trimaran/lowriskovercommitment/lowriskovercommitment.go``
    ``(*LowRiskOverCommitment).computeRisk``, with ``trimaran.GetNodeRequestsAndLimits``,
    ``CreateResourceStats`` and ``GetMuSigma`` (``pkg/trimaran/resourcestats.go``) and
    ``ComputeProbability``/``MatchMoments``/``GetMaxVariance``/``DistributionFunction``
    (``lowriskovercommitment/beta.go``). In int64, with C the allocatable::

        R = min(requested + pod_request, C); L = limits + max(pod_limit, pod_request)
        Rm = min(requested, C); Lm = limits                       (the "minus pod" values)
        riskLimit = float(L - C) / float(L - R) if L > C else 0
        riskLoad (only if the resource's metric is present, else 0):
          mu = clamp(avg / C, 0, 1), sigma = clamp(std / C, 0, 1)    (0, 0 if C <= 0; in MB for memory)
          sigma = min(sigma * sqrt(W), sqrt(mu (1 - mu) * 0.99))
          p = ComputeProbability(mu, sigma, thr = clamp(Rm / C, 0, 1)):
              1 if mu == 0 or (sigma == 0 and mu <= thr); 0 if sigma == 0 and mu > thr;
              else match a Beta's first two moments (var = (sigma^2 + mu^2) - mu^2; 0 unless
              0 <= var < mu (1 - mu)): T = max(mu (1 - mu) / var - 1, 5e-324),
              alpha = mu T, beta = (1 - mu) T, p = I_thr(alpha, beta)
          if Lm < C and Rm <= Lm: p = 1 if Lm / C == 0; else, when a Beta was fitted and
              q = I_{Lm/C}(alpha, beta) > 0, p = clamp(p / q, 0, 1)
          riskLoad = 1 - p
        risk = clamp(w riskLimit + (1 - w) riskLoad, 0, 1)

    The MB conversion of the load statistics is a power-of-two scaling that leaves mu and sigma
    unchanged, so ``resource_is_memory`` has no numeric effect (kept for symmetry with LVRB).
    """
    # resource-major contiguous copies: every per-resource operation below runs on a contiguous row
    C_all = np.ascontiguousarray(_cols(allocatable, np.int64).T)
    Rq_all = np.ascontiguousarray(_cols(requested, np.int64).T)
    Lm_all = np.ascontiguousarray(_cols(limits, np.int64).T)
    avg_all = np.ascontiguousarray(_cols(used_avg, np.float64).T)
    std_all = np.ascontiguousarray(_cols(used_std, np.float64).T)
    k = C_all.shape[0]
    p_req = np.asarray(pod_request, dtype=np.int64).reshape(-1)
    p_lim = np.maximum(np.asarray(pod_limit, dtype=np.int64).reshape(-1), p_req)  # SetMaxLimits
    w = np.broadcast_to(np.asarray(risk_limit_weights, dtype=np.float64).reshape(-1), (k,))
    mp = None if metric_present is None else np.ascontiguousarray(_cols(metric_present, np.bool_).T)
    sqrt_w = math.sqrt(float(smoothing_window_size))  # math.Pow(W, 0.5) is math.Sqrt(W)

    pr = p_req[:, None]
    pl = p_lim[:, None]
    with np.errstate(all="ignore"):
        R = np.minimum(Rq_all + pr, C_all)
        L = Lm_all + pl
        Rm = np.minimum(Rq_all, C_all)
        Lm = Lm_all
        # (L - C) / (L - R) where L > C (then L - R >= L - C > 0), else 0: max(L - C, 0) / (L - R)
        # is that, up to 0 / 0 = NaN (L == R <= C) which fmax turns into 0
        num = L - C_all
        np.maximum(num, 0, out=num)
        risk_limit = num.astype(np.float64)
        risk_limit /= (L - R).astype(np.float64)
        risk_limit = np.fmax(risk_limit, 0.0, out=risk_limit)

        present = np.isfinite(avg_all)
        if mp is not None:
            present &= mp
        cap = C_all.astype(np.float64)
        cpos = cap > 0
        allpos = bool(cpos.all())
        mu = avg_all / cap  # GetMuSigma: (UsedAvg + Req(0)) / Capacity
        np.minimum(mu, 1.0, out=mu)
        np.maximum(mu, 0.0, out=mu)
        sigma = std_all / cap
        np.minimum(sigma, 1.0, out=sigma)
        sigma = np.fmax(sigma, 0.0)  # NaN std (no Std metric) -> 0
        if not allpos:  # GetMuSigma: capacity <= 0 -> (0, 0)
            mu[~cpos] = 0.0
            sigma[~cpos] = 0.0
        sigma *= sqrt_w
        # GetMaxVariance(mu) = mu (1 - mu) for 0 < mu < 1, else 0 (= mu (1 - mu) at 0 and 1 too)
        np.minimum(sigma, np.sqrt((mu * (1.0 - mu)) * MAX_VARIANCE_ALLOWANCE), out=sigma)
        capd = cap if allpos else np.where(cpos, cap, 1.0)
        thr = Rm.astype(np.float64) / capd
        np.minimum(np.maximum(thr, 0.0, out=thr), 1.0, out=thr)  # C <= 0: unused (mu == 0)

        one = (mu == 0) | ((sigma == 0) & (mu <= thr))  # ComputeProbability's early returns
        p = one.astype(np.float64)  # (sigma == 0 and mu > thr) -> 0
        cond = present & (Lm < C_all) & (Rm <= Lm)  # condition on the limits of the pods on the node
        cand = present & ~one & (sigma != 0)
        if cand.any():
            ci = np.flatnonzero(cand)  # flat (resource, node) positions
            m1 = mu.ravel()[ci]
            sg = sigma.ravel()[ci]
            m2 = sg * sg + m1 * m1
            var = m2 - m1 * m1
            mm = m1 * (1.0 - m1)
            ok = ~((m1 < 0) | (m1 > 1) | (var < 0) | (var >= mm))  # MatchMoments
            fi, m1, var, mm = ci[ok], m1[ok], var[ok], mm[ok]
            temp = mm / var - 1.0
            np.maximum(temp, SMALLEST_NONZERO_FLOAT64, out=temp)
            al = m1 * temp
            be = (1.0 - m1) * temp
            lb = _lbeta(al, be)  # shared by both thresholds
            pv = _beta_cdf_flat(thr.ravel()[fi], al, be, lb)
            lm_f = Lm.ravel()[fi]
            cnd = cond.ravel()[fi] & (lm_f != 0)
            same = Rm.ravel()[fi] == lm_f  # identical thresholds: q == p
            need = cnd & (pv > 0) & ~same
            qv = pv.copy()
            if need.any():
                lthr = lm_f[need].astype(np.float64) / capd.ravel()[fi[need]]
                qv[need] = _beta_cdf_flat(lthr, al[need], be[need], lb[need])
            div = cnd & (qv > 0) & (pv > 0)  # p == 0 stays 0 either way
            pv = np.where(div, np.minimum(np.maximum(pv / np.where(div, qv, 1.0), 0.0), 1.0), pv)
            p.ravel()[fi] = pv
        # float64(Lm) / C == 0 exactly when Lm == 0 (C > 0): allocProb = 1, fitted or not
        zero_l = cond & (Lm == 0)
        if zero_l.any():
            p[zero_l] = 1.0

        risk_load = np.subtract(1.0, p, out=p)
        if not present.all():
            risk_load *= present
        risk_limit *= w[:, None]
        risk_load *= (1.0 - w)[:, None]
        np.add(risk_limit, risk_load, out=risk_limit)
        total = risk_limit
        np.maximum(total, 0.0, out=total)
        np.minimum(total, 1.0, out=total)
        return total


def low_risk_over_commitment(
    allocatable: npt.ArrayLike,
    requested: npt.ArrayLike,
    limits: npt.ArrayLike,
    pod_request: npt.ArrayLike,
    pod_limit: npt.ArrayLike,
    used_avg: npt.ArrayLike,
    used_std: npt.ArrayLike,
    *,
    smoothing_window_size: int = DEFAULT_SMOOTHING_WINDOW_SIZE,
    risk_limit_weights: npt.ArrayLike,
    resource_is_memory: npt.ArrayLike | None = None,
    metric_present: npt.ArrayLike | None = None,
    best_effort: bool | None = None,
) -> IntArray:
    """LowRiskOverCommitment ``Score`` for N nodes, (N,) int64 in 0..100.

    Source: ``pkg/trimaran/lowriskovercommitment/lowriskovercommitment.go``, ``Score`` ->
    ``computeRank``: ``int64(math.Round((1 - max(risk_cpu, risk_memory)) * 100))`` with the
    per-resource risks of ``lroc_resource_risks``. A best-effort pod (cpu and memory requests and
    limits all 0) scores 0 on every node (``Score`` returns ``MinNodeScore`` before looking at
    the node); ``best_effort=None`` derives that from ``pod_request``/``pod_limit`` (all k zero).

    ``allocatable`` (N, k) int64; ``requested``/``limits`` (N, k) int64: sums over the pods
    already on the node of their requests and of ``max(limits, requests)`` (see the module
    docstring); ``pod_request``/``pod_limit`` (k,) int64 of the incoming pod
    (``GetResourceRequested``/``GetResourceLimits``: containers summed, max'ed with init
    containers, plus overhead); ``used_avg``/``used_std`` (N, k) float64 absolute (std *before*
    the smoothing-window correction, which the kernel applies); ``risk_limit_weights`` (k,) in
    [0, 1] (upstream config replaces values outside by 0.5); ``smoothing_window_size`` > 0
    (upstream replaces values <= 0 by 5); ``metric_present`` (N, k) bool (a NaN ``used_avg``
    also means absent: riskLoad 0, riskLimit still counts).
    """
    if best_effort is None:
        best_effort = not (np.any(np.asarray(pod_request) != 0) or np.any(np.asarray(pod_limit) != 0))
    if best_effort:
        return np.zeros(_cols(allocatable, np.int64).shape[0], dtype=np.int64)
    risks = lroc_resource_risks(
        allocatable,
        requested,
        limits,
        pod_request,
        pod_limit,
        used_avg,
        used_std,
        smoothing_window_size=smoothing_window_size,
        risk_limit_weights=risk_limit_weights,
        resource_is_memory=resource_is_memory,
        metric_present=metric_present,
    )
    rank = 1.0 - risks.max(axis=0)
    rank *= MAX_NODE_SCORE
    return go_round(rank).astype(np.int64)
