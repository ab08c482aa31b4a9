"""scoring/special.py beyond the Beta CDF (whose tests are in test_trimaran.py, beside the
LowRiskOverCommitment kernel that uses it): the log Gamma and log Beta it is built on."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.special import _lbeta, _lgamma

POSITIVE = st.floats(min_value=5e-324, max_value=1e300, allow_nan=False, allow_infinity=False)


def _lgamma_tolerance(x: np.ndarray) -> np.ndarray:
    """What an ulp of each logarithm in m_lgamma can move it by: numpy's log and the C
    library's round apart on ~1e-4 of arguments (an ulp), each term carrying its own."""
    with np.errstate(all="ignore"):
        shifted = np.log(x + 5.524680040776729583740234375)  # x + g - 1/2 of m_lgamma
        terms = 1.0 + np.abs(np.log(x)) + np.abs((x - 0.5) * (shifted - 1.0))
    return 4.0 * np.finfo(np.float64).eps * terms


@settings(max_examples=500, deadline=None)
@given(st.lists(POSITIVE, min_size=1, max_size=32))
def test_lgamma_is_math_lgamma_up_to_an_ulp_of_its_logs(xs):
    """The docstring's claim: CPython's m_lgamma ported, equal for positive x up to an ulp of
    the logarithms (bitwise on all but ~1e-4 of arguments: not asserted bitwise, which made
    this property fail at random)."""
    x = np.array(xs)
    with np.errstate(all="ignore"):  # as the callers (beta_cdf, the LROC kernel) call it
        got = _lgamma(x)
    want = np.array([math.lgamma(v) for v in xs])
    assert np.all(np.abs(got - want) <= _lgamma_tolerance(x)), got - want


def test_lgamma_edges():
    x = np.array([1.0, 2.0, 1e-300, 0.5, 5.0, 4.999999999999999, math.inf, 171.6, 1e300])
    with np.errstate(all="ignore"):
        assert _lgamma(x).tolist() == [math.lgamma(v) if math.isfinite(v) else math.inf for v in x]
        assert _lgamma(np.array([1.0, 2.0])).tolist() == [0.0, 0.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(POSITIVE, POSITIVE), min_size=1, max_size=16))
def test_lbeta_is_symmetric_and_matches_lgamma(pairs):
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    with np.errstate(all="ignore"):
        got = _lbeta(a, b)
        assert got.tolist() == _lbeta(b, a).tolist()
    want = np.array([(math.lgamma(x) + math.lgamma(y)) - math.lgamma(x + y) for x, y in pairs])
    tolerance = _lgamma_tolerance(a) + _lgamma_tolerance(b) + _lgamma_tolerance(a + b)
    assert np.all(np.abs(got - want) <= tolerance), got - want
