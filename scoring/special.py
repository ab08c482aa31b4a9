"""Special functions of the Trimaran kernels, hand-written in numpy: log Gamma, log Beta and the
regularized incomplete beta function (the Beta CDF of LowRiskOverCommitment).

Why hand-written
----------------
* No scipy at run time: the extender's image depends on numpy only (requirements.txt), and
  ``scoring/`` imports numpy and the standard library only.
* Exactness to upstream, not just accuracy: LowRiskOverCommitment calls gonum
  ``mathext.RegIncBeta``, i.e. Cephes ``incbet`` (``mathext/internal/cephes/incbeta.go``), and its
  conditioning ``p /= CDF(Lm / C)`` has a cliff where the CDF underflows to exactly 0 (see the
  scoring/trimaran.py docstring). An equally accurate Beta CDF that picks other branches
  (``scipy.special.betainc`` is Boost's ``ibeta``) can underflow at other points and so give other
  scores. ``_incbet`` follows Cephes branch for branch (power series, the two continued fractions
  with their 301-iteration cap, direct or logarithmic prefactor), vectorised over 1-D arrays.
* numpy has no vectorised log Gamma. ``_lgamma`` is CPython's ``m_lgamma`` (Lanczos) ported to
  numpy, equal to ``math.lgamma`` for positive arguments (bitwise but where numpy's log and the C
  library's round apart, ~1e-4 of arguments, by an ulp), which the scalar test reference calls;
  Go's ``math.Lgamma`` (used by gonum) is a different algorithm within about an ulp.

What they are checked against
-----------------------------
* tests/scoring/reference_trimaran.py: a plain-Python scalar port of the gonum/Cephes Go code,
  written independently of this module (property tests in tests/scoring/test_trimaran.py,
  including the unconverged 301-iteration cap for huge a, b near the mean);
* an independent modified-Lentz continued fraction (``betainc_lentz``, up to 100 000 iterations);
* ``scipy.special.betainc`` where scipy is importable (test-only dependency, 1e-11 absolute);
* the upstream ``beta_test.go`` cases, closed forms (``I_x(1, b)``, ``I_x(a, 1)``) and the edges;
* ``math.lgamma``, within an ulp of its logarithms, for ``_lgamma`` (tests/scoring/test_special.py).

Accuracy limits are Cephes' (see ``beta_cdf`` and the scoring/trimaran.py docstring).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["beta_cdf"]

_F = npt.NDArray[np.float64]
_I = npt.NDArray[np.intp]

# gonum mathext/internal/cephes: cephes.go and incbeta.go
_MACHEP = 1.0 / (1 << 53)
_MAXLOG = 1024 * math.log(2.0)
_MINLOG = -1075 * math.log(2.0)
_MAXGAM = 171.624376956302725
_BIG = 4.503599627370496e15
_BIGINV = 2.22044604925031308085e-16
_CF_THRESH = 3.0 * _MACHEP
_CF_ITERATIONS = 301  # "for n = 0; n <= 300; n++"
_PSERIES_SAFETY_CAP = 5000  # Cephes' pseries loop is unbounded; x <= 0.95 converges in < ~900

# CPython Modules/mathmodule.c m_lgamma (Lanczos, g = 6.0246...), ported so that _lgamma equals
# math.lgamma (which the scalar test reference uses) for positive arguments, up to the rounding
# of np.log against the C library's log (they differ on ~1e-4 of arguments, by an ulp).
_LANCZOS_G = 6.024680040776729583740234375
_LANCZOS_NUM = (
    23531376880.410759688572007674451636754734846804940,
    42919803642.649098768957899047001988850926355848959,
    35711959237.355668049440185451547166705960488635843,
    17921034426.037209699919755754458931112671403265390,
    6039542586.3520280050642916443072979210699388420708,
    1439720407.3117216736632230727949123939715485786772,
    248874557.86205415651146038641322942321632125127801,
    31426415.585400194380614231628318205362874684987640,
    2876370.6289353724412254090516208496135991145378768,
    186056.26539522349504029498971604569928220784236328,
    8071.6720023658162106380029022722506138218516325024,
    210.82427775157934587250973392071336271166969580291,
    2.5066282746310002701649081771338373386264310793408,
)
_LANCZOS_DEN = (
    0.0,
    39916800.0,
    120543840.0,
    150917976.0,
    105258076.0,
    45995730.0,
    13339535.0,
    2637558.0,
    357423.0,
    32670.0,
    1925.0,
    66.0,
    1.0,
)


# --------------------------------------------------------------------------------------------
# log Gamma (CPython's Lanczos m_lgamma) and log Beta


def _lanczos_sum(x: _F, small: bool) -> _F:
    num = np.zeros_like(x)
    den = np.zeros_like(x)
    if small:  # x < 5: Horner in x
        for i in range(12, -1, -1):
            num *= x
            num += _LANCZOS_NUM[i]
            den *= x
            den += _LANCZOS_DEN[i]
    else:  # rational function in 1/x
        for i in range(13):
            num /= x
            num += _LANCZOS_NUM[i]
            den /= x
            den += _LANCZOS_DEN[i]
    return num / den


def _lgamma(x: npt.ArrayLike) -> _F:
    """log Gamma(x) for x > 0 (+inf -> +inf), CPython's ``m_lgamma`` vectorised: equal to
    ``math.lgamma`` (which the scalar test reference uses) for positive finite x, up to an ulp
    of its logarithms where np.log and the C library's log round apart."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = x < 5.0
    for mask, is_small in ((small, True), (~small, False)):
        if mask.any():
            xs = x[mask]
            r = np.log(_lanczos_sum(xs, is_small)) - _LANCZOS_G
            r += (xs - 0.5) * (np.log(xs + _LANCZOS_G - 0.5) - 1)
            out[mask] = r
    out[(x == np.floor(x)) & (x <= 2.0)] = 0.0  # lgamma(1) = lgamma(2) = 0
    tiny = x < 1e-20
    if tiny.any():
        out[tiny] = -np.log(x[tiny])
    out[np.isinf(x)] = np.inf
    return out


def _lbeta(a: _F, b: _F) -> _F:
    """gonum ``mathext/internal/gonum.Lbeta`` for finite a, b > 0: ``la + lb - lab`` (symmetric
    in a and b bitwise, so it can be shared between (a, b) and the swapped (b, a))."""
    return (_lgamma(a) + _lgamma(b)) - _lgamma(a + b)


# --------------------------------------------------------------------------------------------
# Regularized incomplete beta: gonum mathext.RegIncBeta = Cephes incbet, vectorised


def _pseries(a: _F, b: _F, x: _F, lb: _F) -> _F:
    """Cephes ``pseries`` (power series, used where b*x <= 1 and x <= 0.95), vectorised.

    Terms are generated a block at a time as a 2-D array; ``np.cumprod``/``np.cumsum`` along the
    block accumulate strictly left to right, so every element gets Go's sequence of roundings
    (``t *= u``; ``s += v``) and stops at the same term (the first with |v| <= z is the last
    added). ``lb`` is ``Lbeta(a, b)``.
    """
    m = a.shape[0]
    ai = 1.0 / a
    u = (1.0 - b) * x
    v = u / (a + 1.0)
    t1 = v
    z = _MACHEP * ai
    s = np.zeros(m)
    loop = np.flatnonzero(np.abs(v) > z)  # elements that enter the loop
    if loop.size:
        # terms needed ~ log(z) / log(x): start each element with a block of about that size
        est = np.log(_MACHEP * np.minimum(ai[loop], 1.0)) / np.log(x[loop])
        first = np.clip(2 ** np.ceil(np.log2(np.maximum(est, 8.0))), 8, 512)
        for block0 in np.unique(first):
            _pseries_sum(loop[first == block0], int(block0), a, b, x, u, z, s)
    s += t1
    s += ai
    ul = a * np.log(x)
    direct = ((a + b) < _MAXGAM) & (np.abs(ul) < _MAXLOG)
    res_direct = (s * (1.0 / np.exp(lb))) * np.power(x, a)
    tlog = (-lb + ul) + np.log(s)
    res_log = np.where(tlog < _MINLOG, 0.0, np.exp(tlog))
    return np.where(direct, res_direct, res_log)


def _pseries_sum(idx: _I, block: int, a: _F, b: _F, x: _F, u: _F, z: _F, s: _F) -> None:
    """The ``for |v| > z`` loop of ``pseries`` for the elements ``idx``, a block of terms at a
    time; writes the sums into ``s``."""
    t_prev = u[idx]
    s_prev = np.zeros(idx.size)
    n0 = 2.0
    while idx.size and n0 < _PSERIES_SAFETY_CAP:
        ns = n0 + np.arange(block, dtype=np.float64)
        A, B, X, Z = a[idx], b[idx], x[idx], z[idx]
        U = ((ns - B[:, None]) * X[:, None]) / ns
        TT = np.cumprod(np.concatenate([t_prev[:, None], U], axis=1), axis=1)[:, 1:]
        V = TT / (A[:, None] + ns)
        S = np.cumsum(np.concatenate([s_prev[:, None], V], axis=1), axis=1)[:, 1:]
        small = ~(np.abs(V) > Z[:, None])
        stop = small.any(axis=1)
        if stop.any():
            rows = np.flatnonzero(stop)
            s[idx[rows]] = S[rows, small[rows].argmax(axis=1)]
            go = ~stop
            idx, t_prev, s_prev = idx[go], TT[go, -1], S[go, -1]
        else:
            t_prev, s_prev = TT[:, -1], S[:, -1]
        n0 += block
        block = min(block * 2, 512)
    if idx.size:
        s[idx] = s_prev


def _cont_frac(a: _F, b: _F, x: _F, bd: bool) -> _F:
    """Cephes ``incbcf`` (bd=False) / ``incbd`` (bd=True), vectorised.

    The same forward recurrences, rescaling by the exact powers of two ``big``/``biginv`` (which
    leave every convergent p/q unchanged) and convergence test as Go; an element's result is
    taken at the iteration where Go returns, the others run to Go's cap of 301 iterations.
    """
    m = a.shape[0]
    out = np.empty(m)
    idx = np.arange(m)
    xx = x / (1.0 - x) if bd else x  # incbd works in z = x / (1 - x)
    k1 = a.copy()  # +1 each iteration
    k2 = (b - 1.0) if bd else (a + b)  # incbd: -1, incbcf: +1
    k3 = a.copy()  # +2
    k4 = a + 1.0  # +2; Go's k7 starts equal to k4 and moves with it
    k6 = (a + b) if bd else (b - 1.0)  # incbd: +1, incbcf: -1
    k8 = a + 2.0  # +2
    k5 = 1.0  # +1, the same for every element
    d2 = -1.0 if bd else 1.0
    d6 = 1.0 if bd else -1.0
    pkm2 = np.zeros(m)
    qkm2 = np.ones(m)
    pkm1 = np.ones(m)
    qkm1 = np.ones(m)
    ans = np.ones(m)
    r = np.ones(m)
    done = np.zeros(m, dtype=bool)
    ndone = 0
    for _ in range(_CF_ITERATIONS):
        xk = xx * k1
        xk *= k2
        xk /= k3 * k4  # -xk of Go's first step
        p1 = pkm1 - pkm2 * xk
        q1 = qkm1 - qkm2 * xk
        xk = xx * k5
        xk *= k6
        xk /= k4 * k8
        pk = pkm1 * xk
        pk += p1
        qk = qkm1 * xk
        qk += q1
        pkm2, pkm1, qkm2, qkm1 = p1, pk, q1, qk
        rn = pk / qk
        qz = qk == 0
        if qz.any():
            rn[qz] = r[qz]  # Go keeps the previous r when qk == 0
        r = rn
        rz = r == 0
        if rz.any():  # Go: t = 1 and ans unchanged when r == 0
            t = np.abs((ans - r) / np.where(rz, 1.0, r))
            t[rz] = 1.0
            ans = np.where(rz, ans, r)
        else:
            t = np.abs((ans - r) / r)
            ans = r
        new = t < _CF_THRESH
        new &= ~done
        if new.any():
            out[idx[new]] = ans[new]
            done |= new
            ndone += int(np.count_nonzero(new))
            if ndone == idx.size:
                return out
        k1 += 1.0
        k2 += d2
        k3 += 2.0
        k4 += 2.0
        k5 += 1.0
        k6 += d6
        k8 += 2.0
        apk = np.abs(pk)
        aqk = np.abs(qk)
        grow = (aqk + apk) > _BIG
        shrink = np.minimum(aqk, apk) < _BIGINV
        if grow.any() or shrink.any():
            f = np.where(grow, _BIGINV, 1.0) * np.where(shrink, _BIG, 1.0)
            pkm2 = pkm2 * f
            pkm1 = pkm1 * f
            qkm2 = qkm2 * f
            qkm1 = qkm1 * f
        if ndone * 4 > idx.size:  # drop the converged from the working set
            keep = ~done
            (idx, xx, k1, k2, k3, k4, k6, k8, pkm2, pkm1, qkm2, qkm1, ans, r) = (
                idx[keep],
                xx[keep],
                k1[keep],
                k2[keep],
                k3[keep],
                k4[keep],
                k6[keep],
                k8[keep],
                pkm2[keep],
                pkm1[keep],
                qkm2[keep],
                qkm1[keep],
                ans[keep],
                r[keep],
            )
            done = np.zeros(idx.size, dtype=bool)
            ndone = 0
    keep = ~done
    out[idx[keep]] = ans[keep]
    return out


def _incbet(aa: _F, bb: _F, xx: _F, lb: _F) -> _F:
    """Cephes ``Incbet`` (gonum ``mathext/internal/cephes/incbeta.go``) for finite aa, bb > 0
    and 0 < xx < 1, vectorised over 1-D arrays; ``lb`` = Lbeta(aa, bb). May return NaN or a
    value outside [0, 1] exactly where Cephes does."""
    out = np.empty(aa.shape[0])
    ps = (bb * xx <= 1.0) & (xx <= 0.95)
    if ps.any():
        out[ps] = _pseries(aa[ps], bb[ps], xx[ps], lb[ps])
        rest = ~ps
        if not rest.any():
            return out
        ri = np.flatnonzero(rest)
        a0, b0, x0, lb0 = aa[ri], bb[ri], xx[ri], lb[ri]
    else:
        ri = None
        a0, b0, x0, lb0 = aa, bb, xx, lb
    w = 1.0 - x0
    flag = x0 > a0 / (a0 + b0)  # reverse a and b if x is greater than the mean
    a = np.where(flag, b0, a0)
    b = np.where(flag, a0, b0)
    xc = np.where(flag, x0, w)
    x = np.where(flag, w, x0)
    t = np.empty(a.shape[0])
    ps2 = flag & (b * x <= 1.0) & (x <= 0.95)
    if ps2.any():
        t[ps2] = _pseries(a[ps2], b[ps2], x[ps2], lb0[ps2])
        cf = ~ps2
    else:
        cf = None
    if cf is None or cf.any():
        if cf is None:
            a1, b1, x1, xc1, lb1 = a, b, x, xc, lb0
        else:
            a1, b1, x1, xc1, lb1 = a[cf], b[cf], x[cf], xc[cf], lb0[cf]
        y = x1 * (a1 + b1 - 2.0) - (a1 - 1.0)
        wcf = np.empty(a1.shape[0])
        lt = y < 0.0
        if lt.any():
            wcf[lt] = _cont_frac(a1[lt], b1[lt], x1[lt], bd=False)
        ge = ~lt
        if ge.any():
            wcf[ge] = _cont_frac(a1[ge], b1[ge], x1[ge], bd=True) / xc1[ge]
        ya = a1 * np.log(x1)
        tb = b1 * np.log(xc1)
        direct = ((a1 + b1) < _MAXGAM) & (np.abs(ya) < _MAXLOG) & (np.abs(tb) < _MAXLOG)
        td = np.power(xc1, b1)
        td *= np.power(x1, a1)
        td /= a1
        td *= wcf
        td *= 1.0 / np.exp(lb1)
        if not direct.all():  # resort to logarithms
            yl = ya + (tb - lb1)
            yl += np.log(wcf / a1)
            tl = np.where(yl < _MINLOG, 0.0, np.exp(yl))
            td = np.where(direct, td, tl)
        if cf is None:
            t = td
        else:
            t[cf] = td
    # transformT
    t = np.where(flag, np.where(t <= _MACHEP, 1.0 - _MACHEP, 1.0 - t), t)
    if ri is None:
        return t
    out[ri] = t
    return out


def _beta_cdf_flat(x: _F, a: _F, b: _F, lb: _F | None = None) -> _F:
    """``beta_cdf`` on 1-D float64 arrays of equal length (call inside np.errstate)."""
    out = np.where(x >= 1.0, 1.0, 0.0)
    inner = (x > 0.0) & (x < 1.0) & (a > 0.0) & (b > 0.0) & np.isfinite(a) & np.isfinite(b)
    if inner.all():
        ii = None
        ai, bi, xi = a, b, x
    elif inner.any():
        ii = np.flatnonzero(inner)
        ai, bi, xi = a[ii], b[ii], x[ii]
    else:
        return out
    lbi = _lbeta(ai, bi) if lb is None else (lb if ii is None else lb[ii])
    p = _incbet(ai, bi, xi, lbi)
    p = np.where((p >= 0.0) & (p <= 1.0), p, 0.0)  # DistributionFunction: NaN, < 0, > 1 -> 0
    if ii is None:
        return p
    out[ii] = p
    return out


def beta_cdf(x: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike) -> _F:
    """Regularized incomplete beta I_x(a, b), vectorised (arrays broadcast), never NaN.

    Source: ``pkg/trimaran/lowriskovercommitment/beta.go``, ``(*BetaDistribution)
    .DistributionFunction`` -> ``RegularizedIncomplete`` -> gonum ``mathext.RegIncBeta`` -> Cephes
    ``Incbet`` (``mathext/internal/cephes/incbeta.go``: power series ``pseries`` when b*x <= 1 and
    x <= 0.95; else, after swapping (a, b, x) -> (b, a, 1 - x) when x is above the mean, the power
    series again or the continued fraction ``incbcf``/``incbd`` (at most 301 iterations), times
    x^a (1-x)^b / (a B(a, b)), directly or through logarithms). The same algorithm branch for
    branch, vectorised, so it agrees with gonum to rounding, including where the 301-iteration cap
    leaves the continued fraction unconverged (huge a and b with x within a few standard
    deviations of the mean). Elsewhere accurate to ~1e-14 (tested against an independent Lentz
    continued fraction, and against scipy when importable); the absolute error grows like
    ``ulp(lgamma(a + b))`` for a + b above ~1e4, as in Cephes.

    Edges: x <= 0 -> 0, x >= 1 -> 1, NaN x -> 0; a or b <= 0, NaN or infinite -> 0 (upstream:
    ``RegularizedIncomplete`` returns NaN, or Cephes returns NaN through ``Lbeta``, and
    ``DistributionFunction`` maps NaN and values outside [0, 1] to 0).
    """
    xb, ab, bb = np.broadcast_arrays(
        np.asarray(x, dtype=np.float64), np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    )
    with np.errstate(all="ignore"):
        out = _beta_cdf_flat(xb.reshape(-1), ab.reshape(-1), bb.reshape(-1))
    return out.reshape(xb.shape)
