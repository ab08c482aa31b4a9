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

Error bounds (``incbet_with_error``, ``distribution_function_bounds``, ``lroc_risk_bounds``)
----------------------------------------------------------------------------------------------
The kernel runs the float64 operations of this reference (and of Go) in the same order; only
the elementary functions differ: numpy's exp, log and pow (SIMD code) against the C library's,
Go's own against both, Go's Lgamma against CPython's (the kernel's numpy port of CPython's
lgamma differs from ``math.lgamma`` where np.log does). Each is within an ulp of the exact value,
so two ports differ by at most 2 ulps there, i.e. by 4 MACHEP relative, and then in what is
computed from it. The power series and the continued fractions of Incbet are plain arithmetic,
bitwise the same in every port; the elementary functions all sit in the factor
x^a (1-x)^b / (a B(a, b)) that multiplies them, B(a, b) = exp(Lbeta(a, b)) = exp(lgamma(a) +
lgamma(b) - lgamma(a + b)). An ulp of a logarithm is an absolute error of the exponent, i.e. a
relative error of the result, so two ports' results differ by at most ``eps * |result|``::

    eps = PORT_ULPS * MACHEP * (|lgamma(a)| + |lgamma(b)| + |lgamma(a + b)| + PORT_SLACK
                                [+ |a log x| + |b log(1-x)| + |log(series)|   where Cephes
                                 goes through logarithms instead of pow and Beta])

with PORT_ULPS = 4 (2 ulps) and PORT_SLACK = 32 for the rest, in the same units: the Lanczos
lgamma's intermediates exceed |lgamma| by about g + 1.5 < 8 each (3 x 8), exp, pow, the quotient
and the products 8. Where the factor underflows past Cephes' MINLOG cut a port may return 0 and
another exp(MINLOG): that is in the bound too. Where Cephes swapped (a, b, x) (x above the
mean) it returns 1 - t, so the error becomes absolute, eps * t + 2 MACHEP, however small 1 - t
is; a value that may leave [0, 1] may also be 0 in another port (DistributionFunction).

LowRiskOverCommitment meets that on a node whose average usage is within ~1e-13 C of its
allocatable C (mu -> 1, sigma at its cap: a shape parameter ~1e-15, |lgamma| ~ 35) and whose
limits lie between the two: the CDF at Lm / C, ~8e-14, has a bound of ~3e-14 and it divides
the probability. Gonum, the kernel and this reference all miss its exact value by ~5 % (7.54e-14,
7.53e-14 against an exact 7.90e-14 in the example pinned in test_trimaran.py; riskLoad off by
0.04, and 1e-3 apart), so ports can only be compared within the bounds there.
Likewise, mirrored, for an average within ~1e-13 of 0 with a std metric, where a series that
should give 1 gives 1 + 2**-52 in one port (DistributionFunction: 0) and 1 in another. Elsewhere
the bounds are ~1e-13 wide. They bound ports against each other, not against the exact value:
Cephes' own truncation (the 301-term cap of its continued fractions, e.g. a factor 2 at
x = 1 - 1e-9 with a shape parameter ~1e-9) is the same in every port and not in them.
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

# How far two ports of the Cephes code (the numpy kernel, this reference, gonum) can drift apart:
# see "Error bounds" in the module docstring.
PORT_ULPS = 4.0
PORT_SLACK = 32.0
MIN_NORMAL = 2.0**-1022
SUBNORMAL_SLACK = 4 * 5e-324  # a few subnormal ulps: where relative errors stop meaning anything


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


def tlp_pod_cpu(
    requests: list[int], limits: list[int], overhead: int, multiplier: float = 1.5, default_millis: int = 1000
) -> int:
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


def lvrb_resource_score(
    allocatable: int,
    used_avg: float,
    used_std: float,
    request: float,
    margin: float,
    sensitivity: float,
    is_memory: bool,
) -> float:
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


def _port_spread(magnitude: float) -> float:
    """Relative (or, for an exponent, absolute) disagreement between two ports of a factor built
    from lgamma, log, exp and pow whose logarithms add up to ``magnitude`` (see the module
    docstring)."""
    return PORT_ULPS * MACHEP * (magnitude + PORT_SLACK)


def _lgamma_magnitude(a: float, b: float) -> float:
    """|lgamma(a)| + |lgamma(b)| + |lgamma(a + b)|: the terms of Lbeta(a, b)."""
    return abs(go_lgamma(a)) + abs(go_lgamma(b)) + abs(go_lgamma(a + b))


def _abs_log(v: float) -> float:
    return abs(go_log(v)) if v > 0 and math.isfinite(v) else 0.0


def _direct_error(v: float, magnitude: float) -> float:
    err = abs(v) * _port_spread(magnitude)
    return err + SUBNORMAL_SLACK if abs(v) < MIN_NORMAL else err


def _log_branch(y: float, magnitude: float) -> tuple[float, float]:
    """Cephes' ``if y < MINLOG { 0 } else { exp(y) }`` and its error when y is uncertain by
    ``_port_spread(magnitude)``: a port may underflow where the other does not."""
    dy = _port_spread(magnitude)
    if y < MINLOG:
        return 0.0, (go_exp(y + dy) if y + dy >= MINLOG else 0.0)
    v = go_exp(y)
    err = v * math.expm1(dy) if math.isfinite(v) else 0.0
    return v, err + SUBNORMAL_SLACK if v < MIN_NORMAL else err


def _pseries(a: float, b: float, x: float) -> tuple[float, float]:
    """Cephes pseries -> (value, error bound between ports)."""
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
    magnitude = _lgamma_magnitude(a, b)
    if (a + b) < MAXGAM and abs(u) < MAXLOG:
        t = go_div(1.0, beta_fn(a, b))
        s = s * t * go_pow(x, a)
        return s, _direct_error(s, magnitude)
    return _log_branch(-lbeta(a, b) + u + go_log(s), magnitude + abs(u) + _abs_log(s))


def incbet(aa: float, bb: float, xx: float) -> float:
    """Cephes Incbet for aa, bb > 0 and 0 < xx < 1 (callers check the domain, as Trimaran's
    RegularizedIncomplete does before calling gonum)."""
    return incbet_with_error(aa, bb, xx)[0]


def incbet_with_error(aa: float, bb: float, xx: float) -> tuple[float, float]:
    """Cephes Incbet -> (value, bound on how far another port's value can be from it)."""
    flag = 0
    if bb * xx <= 1 and xx <= 0.95:
        return _pseries(aa, bb, xx)
    w = 1 - xx
    if xx > go_div(aa, aa + bb):
        flag = 1
        a, b, xc, x = bb, aa, xx, w
    else:
        a, b, xc, x = aa, bb, w, xx
    if flag == 1 and (b * x) <= 1.0 and x <= 0.95:
        t, err = _pseries(a, b, x)
        return _transform(t, flag), err + 2 * MACHEP
    y = x * (a + b - 2.0) - (a - 1.0)
    if y < 0.0:
        w = _incbcf(a, b, x)
    else:
        w = go_div(_incbd(a, b, x), xc)
    y = a * go_log(x)
    t = b * go_log(xc)
    magnitude = _lgamma_magnitude(a, b)
    if (a + b) < MAXGAM and abs(y) < MAXLOG and abs(t) < MAXLOG:
        t = go_pow(xc, b)
        t *= go_pow(x, a)
        t = go_div(t, a)
        t *= w
        t *= go_div(1.0, beta_fn(a, b))
        err = _direct_error(t, magnitude)
    else:
        magnitude += abs(y) + abs(t) + _abs_log(go_div(w, a))
        y += t - lbeta(a, b)
        y += go_log(go_div(w, a))
        t, err = _log_branch(y, magnitude)
    # swapped: Cephes returns 1 - t, whose error is t's, absolute, however small 1 - t is
    return _transform(t, flag), (err + 2 * MACHEP if flag else err)


def regularized_incomplete(x: float, a: float, b: float) -> float:
    """lowriskovercommitment.RegularizedIncomplete."""
    return regularized_incomplete_with_error(x, a, b)[0]


def regularized_incomplete_with_error(x: float, a: float, b: float) -> tuple[float, float]:
    """RegularizedIncomplete -> (value, error bound between ports; 0 on the exact edges)."""
    if a <= 0 or b <= 0 or x < 0 or x > 1 or math.isnan(a) or math.isnan(b):
        return math.nan, 0.0
    if x == 0:
        return 0.0, 0.0
    if x == 1:
        return 1.0, 0.0
    if math.isnan(x):
        return math.nan, 0.0
    if math.isinf(a) or math.isinf(b):
        return math.nan, 0.0  # Cephes reaches Lbeta(Inf, .) = NaN on every path
    return incbet_with_error(a, b, x)


def distribution_function(x: float, a: float, b: float) -> float:
    """(*BetaDistribution).DistributionFunction: NaN or outside [0, 1] -> 0."""
    return distribution_function_bounds(x, a, b)[0]


def distribution_function_bounds(x: float, a: float, b: float) -> tuple[float, float, float]:
    """DistributionFunction -> (p, lo, hi): every value another port can return lies in [lo, hi]
    (a raw value that may leave [0, 1] there may also become 0)."""
    v, err = regularized_incomplete_with_error(x, a, b)
    if math.isnan(v):
        return 0.0, 0.0, 0.0
    p = 0.0 if v < 0 or v > 1 else v
    lo, hi = v - err, v + err
    if _swapped(x, a, b):  # 1 - t, and 1 - MACHEP where t <= MACHEP: never above 1 - MACHEP
        hi = min(hi, 1.0 - MACHEP)
    if hi < 0 or lo > 1:  # out of [0, 1] in every port (e.g. an unconverged continued fraction)
        return p, 0.0, 0.0
    return p, (0.0 if lo < 0 or hi > 1 else lo), min(hi, 1.0)


def _swapped(x: float, a: float, b: float) -> bool:
    """Incbet's ``flag``: no first power series and x above the mean a / (a + b)."""
    return 0 < x < 1 and not (b * x <= 1 and x <= 0.95) and x > go_div(a, a + b)


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
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
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
    """ComputeProbability -> ((probability, lo, hi), (alpha, beta) or None); [lo, hi] bounds
    what another port of the Beta CDF can return (see ``distribution_function_bounds``)."""
    if mu == 0 or (sigma == 0 and mu <= threshold):
        return (1.0, 1.0, 1.0), None
    if sigma == 0 and mu > threshold:
        return (0.0, 0.0, 0.0), None
    m1 = mu
    m2 = (sigma * sigma) + (mu * mu)
    # MatchMoments
    variance = m2 - m1 * m1
    if m1 < 0 or m1 > 1 or variance < 0 or variance >= m1 * (1 - m1):
        return (0.0, 0.0, 0.0), None
    temp = go_div(m1 * (1 - m1), variance) - 1
    temp = go_max(temp, SMALLEST_NONZERO)
    alpha = m1 * temp
    beta = (1 - m1) * temp
    # DistributionFunction never returns NaN, so ComputeProbability's "NaN -> 1" cannot happen
    return distribution_function_bounds(threshold, alpha, beta), (alpha, beta)


def _condition(p: float, q: float) -> float:
    """``if limitProb > 0 { allocProb /= limitProb; allocProb = min(max(allocProb, 0), 1) }``."""
    return go_min(go_max(p / q, 0), 1) if q > 0 else p


def _condition_bounds(
    p: tuple[float, float, float], q: tuple[float, float, float], same: bool
) -> tuple[float, float]:
    """[lo, hi] of ``_condition`` over every p in [p lo, p hi] and q in [q lo, q hi] (all in
    [0, 1]); ``same``: the two thresholds are equal, so q is p itself (p / p = 1 unless p = 0)."""
    _, p_lo, p_hi = p
    _, q_lo, q_hi = q
    if same:
        return (1.0 if p_lo > 0 else 0.0), (1.0 if p_hi > 0 else 0.0)
    lo, hi = math.inf, -math.inf
    if q_lo <= 0:  # limitProb may be 0: allocProb stays
        lo, hi = p_lo, p_hi
    if q_hi > 0:  # p / q falls with q, rises with p; q near 0 sends it to the clamp at 1
        lo = min(lo, _condition(p_lo, q_hi))
        hi = max(hi, _condition(p_hi, q_lo) if q_lo > 0 else (1.0 if p_hi > 0 else 0.0))
    return lo, hi


def lroc_risk(
    allocatable: int,
    requested_on_node: int,
    limits_on_node: int,
    pod_request: int,
    pod_limit: int,
    used_avg: float,
    used_std: float,
    *,
    window: int,
    weight: float,
    is_memory: bool,
    present: bool = True,
) -> float:
    """GetNodeRequestsAndLimits (one resource) + computeRisk."""
    return lroc_risk_bounds(
        allocatable,
        requested_on_node,
        limits_on_node,
        pod_request,
        pod_limit,
        used_avg,
        used_std,
        window=window,
        weight=weight,
        is_memory=is_memory,
        present=present,
    )[0]


def lroc_risk_bounds(
    allocatable: int,
    requested_on_node: int,
    limits_on_node: int,
    pod_request: int,
    pod_limit: int,
    used_avg: float,
    used_std: float,
    *,
    window: int,
    weight: float,
    is_memory: bool,
    present: bool = True,
) -> tuple[float, float, float]:
    """``lroc_risk`` -> (risk, lo, hi): the risk and the interval in which any port of the same
    Go code lands, its Beta CDF values differing from these by at most their error bounds
    (``distribution_function_bounds``). Everything else is exact in both, so lo = risk = hi
    where no Beta is fitted, and hi - lo ~ 1e-13 where the CDFs are well conditioned."""
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

    def total(risk_load: float) -> float:
        t = weight * risk_limit + (1 - weight) * risk_load
        return go_min(go_max(t, 0), 1)

    if not (present and math.isfinite(used_avg)):  # a non-finite average: no metric of that type
        return total(0.0), total(0.0), total(0.0)
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
    below, dist = compute_probability(mu, sigma, alloc_threshold)
    alloc_prob, lo, hi = below
    if limit_minus_pod < capacity and request_minus_pod <= limit_minus_pod:
        limit_threshold = go_div(float(limit_minus_pod), float(capacity))
        if limit_threshold == 0:
            alloc_prob = lo = hi = 1.0
        elif dist is not None:
            limit_cdf = distribution_function_bounds(limit_threshold, dist[0], dist[1])
            alloc_prob = _condition(alloc_prob, limit_cdf[0])
            lo, hi = _condition_bounds(below, limit_cdf, limit_threshold == alloc_threshold)
    # riskLoad = 1 - allocProb: the highest risk comes with the lowest probability
    return total(1 - alloc_prob), total(1 - hi), total(1 - lo)


def lroc_score(risks: list[float], best_effort: bool = False) -> int:
    """Score/computeRank: round((1 - max risk) * 100); best-effort pods 0."""
    if best_effort:
        return 0
    worst = risks[0]
    for r in risks[1:]:
        worst = max(worst, r)
    rank = 1 - worst
    return int(go_round(rank * 100.0))
