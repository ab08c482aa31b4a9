"""Plain-Python scalar references for the Trimaran kernels in scoring/trimaran.py.

One node and one resource at a time, ``math`` only (no numpy in the formulas), written from the
Go sources of kubernetes-sigs/scheduler-plugins (``pkg/trimaran/...``) and gonum
(``mathext/internal/cephes/incbeta.go``, ``mathext/internal/gonum/beta.go``) independently of the
kernels, in Go's float64 operation order (left to right, no fused multiply-add, as on amd64).

Python's ``math`` raises where Go returns Inf/NaN, so the few Go float semantics needed are
spelled out in the ``go_*`` helpers. ``math.lgamma`` stands in for Go's ``math.Lgamma`` (both are
accurate to about an ulp; they are different algorithms).

``betainc_lentz`` is an independent check of the Cephes port: the modified-Lentz continued
fraction of Numerical Recipes (``betacf``) with up to 100 000 iterations.
"""

from __future__ import annotations

import math

MEGA_FACTOR = 1.0 / 1024.0 / 1024.0
MACHEP = 1.0 / (1 << 53)
MAXLOG = 1024 * math.log(2.0)
MINLOG = -1075 * math.log(2.0)
MAXGAM = 171.624376956302725
BIG = 4.503599627370496e15
BIGINV = 2.22044604925031308085e-16
SMALLEST_NONZERO = 5e-324


# --------------------------------------------------------------------------------------------
# Go float64 semantics


def go_round(x: float) -> float:
    """Go math.Round: half away from zero."""
    if math.isnan(x) or math.isinf(x):
        return x
    t = float(math.trunc(x))
    if abs(x - t) >= 0.5:
        t += math.copysign(1.0, x)
    return t


def go_div(a: float, b: float) -> float:
    """Go float64 division (IEEE: x/0 = +-Inf, 0/0 = NaN)."""
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def go_log(x: float) -> float:
    if math.isnan(x) or x < 0:
        return math.nan
    if x == 0:
        return -math.inf
    if math.isinf(x):
        return math.inf
    return math.log(x)


def go_exp(x: float) -> float:
    if math.isnan(x):
        return x
    if x > 709.782712893384:
        return math.inf
    return math.exp(x)


def go_pow(x: float, y: float) -> float:
    if y == 0.5:
        return math.sqrt(x) if x >= 0 else math.nan  # Go: Pow(x, 0.5) = Sqrt(x)
    try:
        return math.pow(x, y)
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan


def go_min(a: float, b: float) -> float:
    """Go math.Min / builtin min for float64 (NaN wins)."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a < b else b


def go_max(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a > b else b


def go_lgamma(x: float) -> float:
    if math.isinf(x):
        return math.inf
    return math.lgamma(x)


# --------------------------------------------------------------------------------------------
# TargetLoadPacking (pkg/trimaran/targetloadpacking/targetloadpacking.go)


def predict_utilisation(request: int, limit: int, multiplier: float = 1.5, default_millis: int = 1000) -> int:
    """PredictUtilisation for one container (0 = not set)."""
    if limit > 0:
        return limit
    if request > 0:
        return int(go_round(float(request) * multiplier))
    return default_millis


def tlp_pod_cpu(requests: list[int], limits: list[int], overhead: int, multiplier: float = 1.5,
                default_millis: int = 1000) -> int:
    cur = 0
    for r, lim in zip(requests, limits, strict=True):
        cur += predict_utilisation(r, lim, multiplier, default_millis)
    return cur + overhead


def tlp_score(capacity: int, used: float, pending: float, pod: float, target: int) -> int:
    """(*TargetLoadPacking).Score after the metric lookup; used = nodeCPUUtilMillis."""
    if math.isnan(used):
        return 0  # "Cpu metric not found"
    cap = float(capacity)
    predicted = 0.0
    if cap != 0:
        predicted = go_div(100 * (used + pod + pending), cap)
    x = float(target)
    if predicted > x:
        if predicted > 100:
            return 0
        return int(go_round(x * (100 - predicted) / (100 - x)))
    v = go_round((100 - x) * predicted / x + x)
    if math.isnan(v) or math.isinf(v):
        return 0
    return int(v)


# --------------------------------------------------------------------------------------------
# LoadVariationRiskBalancing (analysis.go computeScore, resourcestats.go, plugin Score)


def lvrb_resource_score(allocatable: int, used_avg: float, used_std: float, request: float,
                        margin: float, sensitivity: float, is_memory: bool) -> float:
    """CreateResourceStats (with absolute usage) + computeScore for one resource."""
    capacity = float(allocatable)
    req = float(request)
    avg = used_avg
    std = 0.0 if math.isnan(used_std) else used_std
    if is_memory:
        capacity *= MEGA_FACTOR
        req = req * MEGA_FACTOR
        avg = avg * MEGA_FACTOR
        std = std * MEGA_FACTOR
    if capacity <= 0:
        return 0.0
    req = go_max(req, 0)
    avg = go_max(go_min(avg, capacity), 0)
    std = go_max(go_min(std, capacity), 0)
    # GetMuSigma
    mu = (avg + req) / capacity
    mu = go_max(go_min(mu, 1), 0)
    sigma = std / capacity
    sigma = go_max(go_min(sigma, 1), 0)
    if sensitivity >= 0:
        e = math.inf if sensitivity == 0 else 1 / sensitivity
        sigma = go_pow(sigma, e)
    sigma *= margin
    sigma = go_max(go_min(sigma, 1), 0)
    risk = (mu + sigma) / 2
    return (1.0 - risk) * 100.0


def lvrb_score(resources: list[tuple[bool, float]]) -> int:
    """Score's combination: [(present, score), ...]; min over the present ones, 0 if none."""
    vals = [s for ok, s in resources if ok]
    if not vals:
        return 0
    total = vals[0]
    for v in vals[1:]:
        total = min(total, v)
    return int(go_round(total))


# --------------------------------------------------------------------------------------------
# Cephes incbet as in gonum (mathext/internal/cephes/incbeta.go)


def lbeta(a: float, b: float) -> float:
    """gonum internal Lbeta."""
    if math.isinf(a) or math.isinf(b):
        return math.nan
    if a == 0 and b == 0:
        return math.nan
    if a < 0 or b < 0 or math.isnan(a) or math.isnan(b):
        return math.nan
    if a == 0 or b == 0:
        return math.inf
    return go_lgamma(a) + go_lgamma(b) - go_lgamma(a + b)


def beta_fn(a: float, b: float) -> float:
    return go_exp(lbeta(a, b))


def _transform(t: float, flag: int) -> float:
    if flag == 1:
        if t <= MACHEP:
            t = 1.0 - MACHEP
        else:
            t = 1.0 - t
    return t


def _incbcf(a: float, b: float, x: float) -> float:
    k1 = a
    k2 = a + b
    k3 = a
    k4 = a + 1.0
    k5 = 1.0
    k6 = b - 1.0
    k7 = k4
    k8 = a + 2.0
    pkm2, qkm2, pkm1, qkm1 = 0.0, 1.0, 1.0, 1.0
    ans = 1.0
    r = 1.0
    thresh = 3.0 * MACHEP
    for _ in range(301):
        xk = go_div(-(x * k1 * k2), k3 * k4)
        pk = pkm1 + pkm2 * xk
        qk = qkm1 + qkm2 * xk
        pkm2, pkm1, qkm2, qkm1 = pkm1, pk, qkm1, qk
        xk = go_div(x * k5 * k6, k7 * k8)
        pk = pkm1 + pkm2 * xk
        qk = qkm1 + qkm2 * xk
        pkm2, pkm1, qkm2, qkm1 = pkm1, pk, qkm1, qk
        if qk != 0:
            r = pk / qk
        if r != 0:
            t = abs(go_div(ans - r, r))
            ans = r
        else:
            t = 1.0
        if t < thresh:
            return ans
        k1 += 1.0
        k2 += 1.0
        k3 += 2.0
        k4 += 2.0
        k5 += 1.0
        k6 -= 1.0
        k7 += 2.0
        k8 += 2.0
        if abs(qk) + abs(pk) > BIG:
            pkm2 *= BIGINV
            pkm1 *= BIGINV
            qkm2 *= BIGINV
            qkm1 *= BIGINV
        if abs(qk) < BIGINV or abs(pk) < BIGINV:
            pkm2 *= BIG
            pkm1 *= BIG
            qkm2 *= BIG
            qkm1 *= BIG
    return ans


def _incbd(a: float, b: float, x: float) -> float:
    k1 = a
    k2 = b - 1.0
    k3 = a
    k4 = a + 1.0
    k5 = 1.0
    k6 = a + b
    k7 = a + 1.0
    k8 = a + 2.0
    pkm2, qkm2, pkm1, qkm1 = 0.0, 1.0, 1.0, 1.0
    z = x / (1.0 - x)
    ans = 1.0
    r = 1.0
    thresh = 3.0 * MACHEP
    for _ in range(301):
        xk = go_div(-(z * k1 * k2), k3 * k4)
        pk = pkm1 + pkm2 * xk
        qk = qkm1 + qkm2 * xk
        pkm2, pkm1, qkm2, qkm1 = pkm1, pk, qkm1, qk
        xk = go_div(z * k5 * k6, k7 * k8)
        pk = pkm1 + pkm2 * xk
        qk = qkm1 + qkm2 * xk
        pkm2, pkm1, qkm2, qkm1 = pkm1, pk, qkm1, qk
        if qk != 0:
            r = pk / qk
        if r != 0:
            t = abs(go_div(ans - r, r))
            ans = r
        else:
            t = 1.0
        if t < thresh:
            return ans
        k1 += 1.0
        k2 -= 1.0
        k3 += 2.0
        k4 += 2.0
        k5 += 1.0
        k6 += 1.0
        k7 += 2.0
        k8 += 2.0
        if abs(qk) + abs(pk) > BIG:
            pkm2 *= BIGINV
            pkm1 *= BIGINV
            qkm2 *= BIGINV
            qkm1 *= BIGINV
        if abs(qk) < BIGINV or abs(pk) < BIGINV:
            pkm2 *= BIG
            pkm1 *= BIG
            qkm2 *= BIG
            qkm1 *= BIG
    return ans


def _pseries(a: float, b: float, x: float) -> float:
    ai = 1.0 / a
    u = (1.0 - b) * x
    v = u / (a + 1.0)
    t1 = v
    t = u
    n = 2.0
    s = 0.0
    z = MACHEP * ai
    while abs(v) > z:
        u = (n - b) * x / n
        t *= u
        v = t / (a + n)
        s += v
        n += 1.0
    s += t1
    s += ai
    u = a * go_log(x)
    if (a + b) < MAXGAM and abs(u) < MAXLOG:
        t = go_div(1.0, beta_fn(a, b))
        s = s * t * go_pow(x, a)
    else:
        t = -lbeta(a, b) + u + go_log(s)
        if t < MINLOG:
            s = 0.0
        else:
            s = go_exp(t)
    return s


def incbet(aa: float, bb: float, xx: float) -> float:
    """Cephes Incbet for aa, bb > 0 and 0 < xx < 1 (callers check the domain, as Trimaran's
    RegularizedIncomplete does before calling gonum)."""
    flag = 0
    if bb * xx <= 1 and xx <= 0.95:
        return _transform(_pseries(aa, bb, xx), flag)
    w = 1 - xx
    if xx > go_div(aa, aa + bb):
        flag = 1
        a, b, xc, x = bb, aa, xx, w
    else:
        a, b, xc, x = aa, bb, w, xx
    if flag == 1 and (b * x) <= 1.0 and x <= 0.95:
        return _transform(_pseries(a, b, x), flag)
    y = x * (a + b - 2.0) - (a - 1.0)
    if y < 0.0:
        w = _incbcf(a, b, x)
    else:
        w = go_div(_incbd(a, b, x), xc)
    y = a * go_log(x)
    t = b * go_log(xc)
    if (a + b) < MAXGAM and abs(y) < MAXLOG and abs(t) < MAXLOG:
        t = go_pow(xc, b)
        t *= go_pow(x, a)
        t = go_div(t, a)
        t *= w
        t *= go_div(1.0, beta_fn(a, b))
        return _transform(t, flag)
    y += t - lbeta(a, b)
    y += go_log(go_div(w, a))
    if y < MINLOG:
        t = 0.0
    else:
        t = go_exp(y)
    return _transform(t, flag)


def regularized_incomplete(x: float, a: float, b: float) -> float:
    """lowriskovercommitment.RegularizedIncomplete."""
    if a <= 0 or b <= 0 or x < 0 or x > 1 or math.isnan(a) or math.isnan(b):
        return math.nan
    if x == 0:
        return 0.0
    if x == 1:
        return 1.0
    if math.isnan(x):
        return math.nan
    if math.isinf(a) or math.isinf(b):
        return math.nan  # Cephes reaches Lbeta(Inf, .) = NaN on every path
    return incbet(a, b, x)


def distribution_function(x: float, a: float, b: float) -> float:
    """(*BetaDistribution).DistributionFunction: NaN or outside [0, 1] -> 0."""
    p = regularized_incomplete(x, a, b)
    if math.isnan(p) or p < 0 or p > 1:
        p = 0.0
    return p


def beta_cdf(x: float, a: float, b: float) -> float:
    """The kernel's contract: distuv edges (x <= 0 -> 0, x >= 1 -> 1), else DistributionFunction."""
    if math.isnan(x) or x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    return distribution_function(x, a, b)


def betainc_lentz(a: float, b: float, x: float, max_iter: int = 100_000) -> float:
    """Independent I_x(a, b): NR ``betai``/``betacf`` (modified Lentz), for checking accuracy."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    ln_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln_front) * _betacf(a, b, x, max_iter) / a
    return 1.0 - math.exp(ln_front) * _betacf(b, a, 1.0 - x, max_iter) / b


def _betacf(a: float, b: float, x: float, max_iter: int) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = tiny if abs(d) < tiny else d
    d = 1.0 / d
    h = d
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-16:
            break
    return h


# --------------------------------------------------------------------------------------------
# LowRiskOverCommitment (lowriskovercommitment.go computeRisk, beta.go, resourcestats.go)


def get_max_variance(m1: float) -> float:
    if 0 < m1 < 1:
        return m1 * (1 - m1)
    return 0.0


def compute_probability(mu: float, sigma: float, threshold: float):
    """ComputeProbability -> (probability, (alpha, beta) or None)."""
    if mu == 0 or (sigma == 0 and mu <= threshold):
        return 1.0, None
    if sigma == 0 and mu > threshold:
        return 0.0, None
    m1 = mu
    m2 = (sigma * sigma) + (mu * mu)
    # MatchMoments
    variance = m2 - m1 * m1
    if m1 < 0 or m1 > 1 or variance < 0 or variance >= m1 * (1 - m1):
        return 0.0, None
    temp = go_div(m1 * (1 - m1), variance) - 1
    temp = go_max(temp, SMALLEST_NONZERO)
    alpha = m1 * temp
    beta = (1 - m1) * temp
    below = distribution_function(threshold, alpha, beta)
    if math.isnan(below):
        return 1.0, (alpha, beta)
    return below, (alpha, beta)


def lroc_risk(allocatable: int, requested_on_node: int, limits_on_node: int, pod_request: int,
              pod_limit: int, used_avg: float, used_std: float, *, window: int, weight: float,
              is_memory: bool, present: bool = True) -> float:
    """GetNodeRequestsAndLimits (one resource) + computeRisk."""
    capacity = allocatable
    pod_limit = max(pod_limit, pod_request)  # SetMaxLimits of the pending pod
    request = requested_on_node + pod_request
    limit = limits_on_node + pod_limit
    request_minus_pod = requested_on_node
    limit_minus_pod = limits_on_node
    request = min(request, capacity)  # setMin
    request_minus_pod = min(request_minus_pod, capacity)

    risk_limit = 0.0
    if limit > capacity:
        risk_limit = float(limit - capacity) / float(limit - request)

    risk_load = 0.0
    if present and math.isfinite(used_avg):  # a non-finite average: no metric of that type
        # CreateResourceStats with zeroRequest
        cap = float(allocatable)
        req = 0.0
        avg = used_avg
        std = 0.0 if math.isnan(used_std) else used_std
        if is_memory:
            cap *= MEGA_FACTOR
            req = 0.0 * MEGA_FACTOR
            avg = avg * MEGA_FACTOR
            std = std * MEGA_FACTOR
        # GetMuSigma
        if cap <= 0:
            mu, sigma = 0.0, 0.0
        else:
            mu = (avg + req) / cap
            mu = go_max(go_min(mu, 1), 0)
            sigma = std / cap
            sigma = go_max(go_min(sigma, 1), 0)
        sigma *= go_pow(float(window), 0.5)
        sigma = go_min(sigma, math.sqrt(get_max_variance(mu) * 0.99))
        alloc_threshold = go_div(float(request_minus_pod), float(capacity))
        alloc_threshold = go_min(go_max(alloc_threshold, 0), 1)
        alloc_prob, dist = compute_probability(mu, sigma, alloc_threshold)
        if limit_minus_pod < capacity and request_minus_pod <= limit_minus_pod:
            limit_threshold = go_div(float(limit_minus_pod), float(capacity))
            if limit_threshold == 0:
                alloc_prob = 1.0
            elif dist is not None:
                limit_prob = distribution_function(limit_threshold, dist[0], dist[1])
                if limit_prob > 0:
                    alloc_prob /= limit_prob
                    alloc_prob = go_min(go_max(alloc_prob, 0), 1)
        risk_load = 1 - alloc_prob

    total = weight * risk_limit + (1 - weight) * risk_load
    return go_min(go_max(total, 0), 1)


def lroc_score(risks: list[float], best_effort: bool = False) -> int:
    """Score/computeRank: round((1 - max risk) * 100); best-effort pods 0."""
    if best_effort:
        return 0
    worst = risks[0]
    for r in risks[1:]:
        worst = max(worst, r)
    rank = 1 - worst
    return int(go_round(rank * 100.0))
