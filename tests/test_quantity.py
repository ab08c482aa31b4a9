"""Tests for extender.kube.quantity: Kubernetes quantities parsed like ParseQuantity.

Expected values are hand-checked against k8s.io/apimachinery pkg/api/resource
(quantity.go ParseQuantity, Value, MilliValue; suffix.go; quantity_test.go
TestQuantityParse and TestNegativeValueRoundsAwayFromZero). The property tests compute
the exact value independently with ``fractions.Fraction``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.kube.quantity import QuantityError, base_units, cpu_millis, parse_quantity

INT64_MAX = 2**63 - 1

MULTIPLIERS: dict[str, Fraction] = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
EXPONENT_SUFFIXES: dict[str, Fraction] = {
    "e0": Fraction(1),
    "e3": Fraction(10**3),
    "E3": Fraction(10**3),
    "e+3": Fraction(10**3),
    "E-3": Fraction(1, 10**3),
    "e-9": Fraction(1, 10**9),
    "e18": Fraction(10**18),
    "E07": Fraction(10**7),
    "e19": Fraction(10**19),
}
ALL_SUFFIXES = {**MULTIPLIERS, **EXPONENT_SUFFIXES}

# The documented grammar of quantity.go, written independently of the module's pattern.
REFERENCE_GRAMMAR = re.compile(
    r"[+-]?(?:[0-9]+|[0-9]+\.[0-9]*|\.[0-9]+)"
    r"(?:Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?",
    re.ASCII,
)

PROPERTY = settings(max_examples=500, deadline=None, database=None)


def away_from_zero_ceil(x: Fraction) -> int:
    """ceil(|x|) with the sign of x: Go's Value() rounding (ceil for x >= 0)."""
    magnitude = math.ceil(abs(x))
    return -magnitude if x < 0 else magnitude


# --- hand-checked table ----------------------------------------------------------------

# (input, exact Decimal value, MilliValue, Value)
ACCEPTED = [
    ("100m", "0.1", 100, 1),
    ("1.5", "1.5", 1500, 2),
    ("2k", "2000", 2_000_000, 2000),
    ("250Gi", "268435456000", 268_435_456_000_000, 268_435_456_000),
    ("1e3", "1000", 1_000_000, 1000),
    ("12Mi", "12582912", 12_582_912_000, 12_582_912),
    ("0.5Ki", "512", 512_000, 512),
    ("1n", "1E-9", 1, 1),  # MilliValue rounds up
    ("1u", "0.000001", 1, 1),
    ("0", "0", 0, 0),
    ("+1", "1", 1000, 1),
    ("-1", "-1", -1000, -1),
    ("1E3", "1000", 1_000_000, 1000),  # exponent, not exa: "E" is exa only when alone
    (".5", "0.5", 500, 1),
    ("5.", "5", 5000, 5),
    ("+.5", "0.5", 500, 1),
    ("1.5Gi", "1610612736", 1_610_612_736_000, 1_610_612_736),
    ("129611256Ki", "132721926144", 132_721_926_144_000, 132_721_926_144),
    ("93478772582", "93478772582", 93_478_772_582_000, 93_478_772_582),
    ("32", "32", 32_000, 32),
    ("110", "110", 110_000, 110),
    ("1.G", "1000000000", 10**12, 10**9),  # quantity_test.go "things written by trolls"
    ("1e+3", "1000", 1_000_000, 1000),
    ("1E-3", "0.001", 1, 1),
    ("1e-7", "1E-7", 1, 1),
    ("0.9n", "1E-9", 1, 1),  # ParseQuantity rounds sub-nano digits up to 1n
    ("3.001n", "4E-9", 1, 1),
    ("0.000000000001Ki", "2E-9", 1, 1),
    ("100.035Ki", "102435.84", 102_435_840, 102_436),
    ("9.5000000001Gi", "10200547328.107374183", 10_200_547_328_108, 10_200_547_329),
    ("7Ei", str(7 * 2**60), None, 7 * 2**60),
    ("9223372036854775807", str(INT64_MAX), None, INT64_MAX),
    ("9223372036854775807m", "9223372036854775.807", INT64_MAX, 9_223_372_036_854_776),
    ("1E", "1000000000000000000", None, 10**18),  # exa; MilliValue would overflow
    ("0e2147483647", "0", 0, 0),
    ("1e-2147483647", "1E-9", 1, 1),
    ("000123", "123", 123_000, 123),
    ("0" * 255 + "1", "1", 1000, 1),  # exactly 256 characters
    # Negative values round away from zero (TestNegativeValueRoundsAwayFromZero).
    ("-1n", "-1E-9", -1, -1),
    ("-1500m", "-1.5", -1500, -2),
    ("-0.0005", "-0.0005", -1, -1),
    ("-.484785E-1", "-0.0484785", -49, -1),
    ("-.484785E-7466", "-1E-9", -1, -1),
    ("-9.5000000001Gi", "-10200547328.107374183", -10_200_547_328_108, -10_200_547_329),
    ("-0", "0", 0, 0),
    # int and float requests written by hand; a float means its shortest repr.
    (3, "3", 3000, 3),
    (0.1, "0.1", 100, 1),
    (2.007, "2.007", 2007, 3),  # float 2.007 * 1000 == 2007.0000000000002
    (1.5, "1.5", 1500, 2),
    (1e-10, "1E-9", 1, 1),
    (-0.0, "0", 0, 0),
    (1e16, "10000000000000000", None, 10**16),
]


@pytest.mark.parametrize(
    ("value", "exact", "millis", "units"), ACCEPTED, ids=[repr(a[0])[:24] for a in ACCEPTED]
)
def test_accepted(value: str | int | float, exact: str, millis: int | None, units: int) -> None:
    parsed = parse_quantity(value)
    assert isinstance(parsed, Decimal)
    assert parsed == Decimal(exact)
    assert str(parsed) == exact  # trailing zeros stripped, never "1E+3"
    assert base_units(value) == float(units)
    assert type(base_units(value)) is float
    if millis is None:
        with pytest.raises(QuantityError, match="out of range"):
            cpu_millis(value)
    else:
        assert cpu_millis(value) == float(millis)
        assert type(cpu_millis(value)) is float


# (input, fragment of the reason)
REJECTED = [
    ("", "empty string"),
    (" 1", "whitespace"),
    ("1 ", "whitespace"),
    ("\t1", "whitespace"),
    ("abc", "no digits"),
    ("1Qi", "unknown suffix 'Qi'"),
    ("12Qi", "unknown suffix 'Qi'"),
    ("1.2.3", "decimal point"),
    ("--1", "no digits"),
    ("+-1", "no digits"),
    ("1e", "no digits"),
    ("1e+", "no digits"),
    ("1ee3", "invalid exponent"),
    ("1e3.5", "invalid exponent"),
    ("1Ki5", "unknown suffix 'Ki5'"),
    ("1ki", "unknown suffix 'ki'"),
    ("1K", "unknown suffix 'K'"),
    ("1i", "unknown suffix 'i'"),
    ("1m3", "unknown suffix 'm3'"),
    # Go's scanner reads a number without digits as 0; the documented grammar, and this
    # module, require a digit.
    ("e3", "no digits"),
    (".", "no digits"),
    ("+", "no digits"),
    ("-", "no digits"),
    ("Ki", "no digits"),
    ("m", "no digits"),
    ("1Kib", "unknown suffix 'Kib'"),
    ("1e400", "out of range"),
    ("99999999999999999999Ei", "out of range"),
    ("8Ei", "out of range"),  # Go silently caps this at 2**63-1
    ("9223372036854775808", "out of range"),
    ("-9223372036854775808", "out of range"),
    ("1e2147483648", "exponent"),
    ("1e-2147483648", "exponent"),
    ("0e99999999999", "exponent"),
    ("NaN", "no digits"),
    ("inf", "no digits"),
    ("-Infinity", "no digits"),
    ("0x10", "unknown suffix 'x10'"),
    ("1_000", "unknown suffix '_000'"),
    ("１", "no digits"),  # fullwidth digit: ASCII only
    ("1,5", "unknown suffix ',5'"),
    (True, "bool"),
    (False, "bool"),
    (None, "expected str, int or float"),
    (b"1", "expected str, int or float"),
    (Decimal("1"), "expected str, int or float"),
    (float("nan"), "finite"),
    (float("inf"), "finite"),
    (float("-inf"), "finite"),
    (2**63, "out of range"),
    (-(2**63), "out of range"),
    (10**400, "out of range"),
    (1e19, "out of range"),
    (1e300, "out of range"),
]


@pytest.mark.parametrize(("value", "reason"), REJECTED, ids=[repr(r[0]) for r in REJECTED])
@pytest.mark.parametrize("convert", [parse_quantity, cpu_millis, base_units])
def test_rejected(convert: Callable[[Any], object], value: object, reason: str) -> None:
    with pytest.raises(QuantityError) as excinfo:
        convert(value)
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)
    assert repr(value) in message
    assert reason in message


def test_error_message_format() -> None:
    with pytest.raises(QuantityError, match=r"^invalid quantity '12Qi': unknown suffix 'Qi'$"):
        parse_quantity("12Qi")


def test_too_long_input_is_rejected_with_a_short_message() -> None:
    text = "0" * 256 + "1"
    for convert in (parse_quantity, cpu_millis, base_units):
        with pytest.raises(QuantityError, match="longer than 256 characters") as excinfo:
            convert(text)
        assert repr(text[:40]) in str(excinfo.value)
        assert len(str(excinfo.value)) < 200


def test_millis_range_is_checked_after_scaling() -> None:
    assert base_units("10000000000000000") == 1e16
    with pytest.raises(QuantityError, match="out of range in millis"):
        cpu_millis("10000000000000000")
    assert cpu_millis("9223372036854775.807") == float(INT64_MAX)
    with pytest.raises(QuantityError, match="out of range"):
        cpu_millis("9223372036854775.808")


def test_cache_is_keyed_on_type() -> None:
    assert base_units(1) == 1.0
    assert base_units(1.0) == 1.0
    with pytest.raises(QuantityError, match="bool"):
        base_units(True)  # True == 1 and hash(True) == hash(1): must not hit 1's entry
    with pytest.raises(QuantityError, match="bool"):
        cpu_millis(True)


def test_errors_are_not_cached() -> None:
    before = cpu_millis.cache_info()
    for _ in range(3):
        with pytest.raises(QuantityError):
            cpu_millis("1Qi")
    after = cpu_millis.cache_info()
    assert after.currsize == before.currsize
    assert after.hits == before.hits
    assert after.misses == before.misses + 3


def test_repeated_string_hits_the_cache() -> None:
    first = base_units("131811256Ki")
    before = base_units.cache_info()
    assert base_units("131811256Ki") is first
    assert base_units.cache_info().hits == before.hits + 1
    assert base_units.cache_info().maxsize is not None  # bounded


# --- properties --------------------------------------------------------------------------

integers = st.one_of(
    st.integers(min_value=-1100, max_value=1100),
    st.integers(min_value=-(2**70), max_value=2**70),
)


@PROPERTY
@given(n=integers)
def test_integer_with_each_suffix_is_exact(n: int) -> None:
    for suffix, multiplier in ALL_SUFFIXES.items():
        text = f"{n}{suffix}"
        expected = n * multiplier
        if abs(expected) > INT64_MAX:
            with pytest.raises(QuantityError, match="out of range"):
                parse_quantity(text)
        else:
            assert Fraction(parse_quantity(text)) == expected, text


@st.composite
def quantity_texts(draw: st.DrawFn) -> tuple[str, Fraction]:
    """A string of the documented grammar and its exact value."""
    sign = draw(st.sampled_from(["", "+", "-"]))
    int_digits = draw(st.text(alphabet="0123456789", max_size=22))
    frac = draw(st.none() | st.text(alphabet="0123456789", max_size=22))
    if not int_digits and not frac:
        int_digits = draw(st.text(alphabet="0123456789", min_size=1, max_size=3))
    number = int_digits if frac is None else f"{int_digits}.{frac}"
    value = Fraction(int(int_digits or "0"))
    if frac:
        value += Fraction(int(frac), 10 ** len(frac))
    if draw(st.booleans()):
        suffix = draw(st.sampled_from(sorted(MULTIPLIERS)))
        multiplier = MULTIPLIERS[suffix]
    else:
        exponent = draw(st.integers(min_value=-40, max_value=40))
        marker = draw(st.sampled_from(["e", "E"]))
        zeros = draw(st.sampled_from(["", "0", "00"]))
        exp_sign = "-" if exponent < 0 else draw(st.sampled_from(["", "+"]))
        suffix = f"{marker}{exp_sign}{zeros}{abs(exponent)}"
        multiplier = Fraction(10) ** exponent
    value *= multiplier
    return f"{sign}{number}{suffix}", (-value if sign == "-" else value)


@PROPERTY
@given(case=quantity_texts())
def test_converters_match_exact_ceiling(case: tuple[str, Fraction]) -> None:
    text, exact = case
    if abs(exact) > INT64_MAX:
        for convert in (parse_quantity, cpu_millis, base_units):
            with pytest.raises(QuantityError, match="out of range"):
                convert(text)
        return
    # For exact >= 0 this is math.ceil(exact * 1000): Quantity.MilliValue().
    millis = away_from_zero_ceil(exact * 1000)
    assert base_units(text) == float(away_from_zero_ceil(exact))
    if abs(millis) > INT64_MAX:
        with pytest.raises(QuantityError, match="out of range"):
            cpu_millis(text)
    else:
        assert cpu_millis(text) == float(millis)
    # parse_quantity is exact down to 1n and rounds finer digits away from zero.
    assert Fraction(parse_quantity(text)) == Fraction(away_from_zero_ceil(exact * 10**9), 10**9)
    if (exact * 10**9).denominator == 1:
        assert Fraction(parse_quantity(text)) == exact


@PROPERTY
@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_floats_mean_their_shortest_repr(x: float) -> None:
    exact = Fraction(repr(x))
    if abs(exact) > INT64_MAX:
        with pytest.raises(QuantityError, match="out of range"):
            base_units(x)
        return
    assert base_units(x) == float(away_from_zero_ceil(exact))
    millis = away_from_zero_ceil(exact * 1000)
    if abs(millis) <= INT64_MAX:
        assert cpu_millis(x) == float(millis)


GRAMMAR_ALPHABET = "0123456789.+-eEinumkKMGTPQx _\t"
texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=GRAMMAR_ALPHABET, max_size=30),
    quantity_texts().map(lambda case: case[0]),
)


@PROPERTY
@given(text=texts)
def test_random_text_raises_only_quantity_error(text: str) -> None:
    in_grammar = len(text) <= 256 and REFERENCE_GRAMMAR.fullmatch(text) is not None
    for convert in (parse_quantity, cpu_millis, base_units):
        try:
            result = convert(text)
        except QuantityError as err:
            assert not in_grammar or "out of range" in str(err), (text, str(err))
        else:
            assert in_grammar, text
            assert isinstance(result, Decimal if convert is parse_quantity else float)


hashable_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.binary(max_size=10),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False),
    st.tuples(st.integers()),
    st.fractions(),
)


@PROPERTY
@given(value=hashable_junk)
def test_other_inputs_raise_only_quantity_error(value: object) -> None:
    for convert in (parse_quantity, cpu_millis, base_units):
        try:
            convert(value)  # type: ignore[arg-type]
        except QuantityError:
            pass


@PROPERTY
@given(value=st.one_of(texts, st.integers(min_value=-(2**64), max_value=2**64), st.floats()))
def test_cache_matches_uncached_path(value: str | int | float) -> None:
    for cached in (cpu_millis, base_units):
        uncached = cached.__wrapped__
        try:
            expected = uncached(value)
        except QuantityError as err:
            size = cached.cache_info().currsize
            with pytest.raises(QuantityError) as excinfo:
                cached(value)
            assert str(excinfo.value) == str(err)
            assert cached.cache_info().currsize == size  # not cached as a success
        else:
            assert cached(value) == expected
            assert cached(value) == expected  # second call: a cache hit
            assert type(cached(value)) is float
