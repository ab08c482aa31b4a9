"""Kubernetes resource quantities ("100m", "131811256Ki", "1.5Gi") as exact numbers.

Why this module exists: the extender must read pod requests and node capacities exactly as
kube-scheduler does, or its scores describe a different cluster. ``float("100m")`` fails; a
split-the-suffix-then-float parser rounds ``2.007 * 1000 == 2007.0000000000002`` up to 2008
millicores where Go says 2007, and turns "1e400" into inf. So each quantity is parsed once,
with exact integer arithmetic, into the int64 that kube-scheduler itself computes
(``Quantity.MilliValue()`` for CPU, ``Quantity.Value()`` for memory, pods and extended
resources), and only that integer is turned into a float64 for the scoring arrays.

Reference (read, not copied): k8s.io/apimachinery ``pkg/api/resource``:

- ``quantity.go``, ``ParseQuantity`` / ``parseQuantityString``: the grammar below; a
  non-zero value finer than 1n is rounded away from zero to a multiple of 1n ("0.9n" is 1n);
  ``Value()`` / ``MilliValue()`` round to an integer away from zero.
- ``suffix.go``, ``suffixHandler.interpret``: the suffix table; "E" alone is exa (10**18),
  "E3" / "e3" / "e+3" / "E-3" are decimal exponents, a bare "e" is invalid; an exponent
  beyond +/-(2**31-1) is rejected (``TestInterpretExponentInt32Bounds``).
- ``scale_int.go``, ``scaledValue`` and ``amount.go``, ``int64Amount.AsScaledInt64``: the
  rounding of ``Value()`` / ``MilliValue()``, i.e. ``ceil`` for positive values and away
  from zero for negative ones (kubernetes PR #138510, ``TestNegativeValueRoundsAwayFromZero``;
  releases before it return a larger number for some negative values held as inf.Dec,
  e.g. +1 for ``ParseQuantity("-.484785E-7466").Value()``; valid pod specs have none).

Grammar accepted (the documented one in quantity.go)::

    <quantity>        ::= <signedNumber><suffix>
    <signedNumber>    ::= <number> | +<number> | -<number>
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= e <signedNumber> | E <signedNumber>   (an integer exponent)

ASCII digits only, no whitespace anywhere (only JSON unmarshalling trims it, not
``ParseQuantity``), no underscores, hex, "NaN" or "inf"; at most 256 characters (a limit
of this module, so that bad input costs little; Go has none).

Deliberate differences from ``ParseQuantity``, all on input kube-apiserver never emits
(it re-serialises every quantity in canonical form):

- A number without any digit (".", "+", "-", "e3", "Ki", "m") is rejected.
  ``parseQuantityString`` reads it as 0, which upstream itself records as leniency beyond
  the documented grammar (``quantity_exact_policy_test.go``, ``parserLeniencyRef``).
- A value whose magnitude exceeds 2**63-1 in the requested unit is rejected
  (``QuantityError`` "out of range") instead of being silently capped (Go caps "8Ei" at
  2**63-1) or overflowing (Go's ``Value()`` / ``MilliValue()`` wrap silently).
"""

from __future__ import annotations

import functools
import math
import re
import types
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

__all__ = ["QuantityError", "base_units", "cpu_millis", "parse_quantity"]

_INT64_MAX: Final = 2**63 - 1
_NANO: Final = 10**9
_MILLI_PER_NANO: Final = 10**6  # nanos per milli-unit
_MAX_NANOS: Final = _INT64_MAX * _NANO  # largest |value| in nanos that Value() can hold
_MAX_TEXT_LEN: Final = 256
_MAX_EXPONENT: Final = 2**31 - 1  # suffix.go: exponents past +/-MaxInt32 are rejected
_CACHE_SIZE: Final = 8192  # distinct strings per converter; a few hundred KB at most

# suffix -> (power of ten, power of two); suffix.go newSuffixer / fastLookup.
_SUFFIXES: Final[Mapping[str, tuple[int, int]]] = types.MappingProxyType(
    {
        "": (0, 0),
        "n": (-9, 0),
        "u": (-6, 0),
        "m": (-3, 0),
        "k": (3, 0),
        "M": (6, 0),
        "G": (9, 0),
        "T": (12, 0),
        "P": (15, 0),
        "E": (18, 0),
        "Ki": (0, 10),
        "Mi": (0, 20),
        "Gi": (0, 30),
        "Ti": (0, 40),
        "Pi": (0, 50),
        "Ei": (0, 60),
    }
)

# The whole grammar in one pattern. The lookahead demands a digit in the number; "E" alone
# is tried as exa first and only becomes an exponent marker when digits follow it.
_QUANTITY_RE: Final = re.compile(
    r"(?P<sign>[+-]?)(?=\.?[0-9])(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?"
    r"(?:(?P<si>[KMGTPE]i|[numkMGTPE])|[eE](?P<exp>[+-]?[0-9]+))?"
)

_DIGITS: Final = frozenset("0123456789")


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity, or one too large for an int64.

    The message names the offending input and what is wrong with it, e.g.
    ``invalid quantity '12Qi': unknown suffix 'Qi'``.
    """


def _shown(value: object) -> str:
    """The input as it appears in error messages (long strings are truncated)."""
    if isinstance(value, str) and len(value) > 40:
        return repr(value[:40]) + f"... ({len(value)} characters)"
    return repr(value)


def _error(value: object, reason: str) -> QuantityError:
    return QuantityError(f"invalid quantity {_shown(value)}: {reason}")


def _diagnose(text: str) -> str:
    """Why ``text`` does not match the grammar (slow path, only runs for invalid input)."""
    if not text:
        return "empty string"
    if text.strip() != text:
        return "leading or trailing whitespace is not allowed"
    i, n = 0, len(text)
    if text[0] in "+-":
        i = 1
    start = i
    while i < n and text[i] in _DIGITS:
        i += 1
    if i < n and text[i] == ".":
        i += 1
        while i < n and text[i] in _DIGITS:
            i += 1
    if not any(c in _DIGITS for c in text[start:i]):
        return "the number has no digits (ASCII 0-9)"
    suffix = text[i:]
    if suffix.startswith("."):
        return f"more than one decimal point before {suffix!r}"
    if suffix[:1] in ("e", "E"):
        if suffix[1:] in ("", "+", "-"):
            return f"exponent {suffix!r} has no digits"
        return f"invalid exponent {suffix!r}"
    return f"unknown suffix {suffix!r}"


def _nanos_from_text(text: str, source: object) -> int:
    """``text`` in units of 1e-9, rounded away from zero like ParseQuantity does.

    ``source`` is the caller's original input, named in error messages.
    """
    if len(text) > _MAX_TEXT_LEN:
        raise _error(source, f"longer than {_MAX_TEXT_LEN} characters")
    m = _QUANTITY_RE.fullmatch(text)
    if m is None:
        raise _error(source, _diagnose(text))
    sign, int_digits, frac, si, exp = m.group("sign", "int", "frac", "si", "exp")
    frac = frac or ""
    if exp is not None:
        power10 = int(exp)
        if not -_MAX_EXPONENT <= power10 <= _MAX_EXPONENT:
            raise _error(source, f"exponent {exp} out of range (beyond +/-{_MAX_EXPONENT})")
        power2 = 0
    else:
        power10, power2 = _SUFFIXES[si or ""]
    coefficient = int(int_digits + frac)  # the lookahead guarantees at least one digit
    if coefficient == 0:
        return 0
    power10 -= len(frac)
    # |value| = coefficient * 2**power2 * 10**power10 with coefficient >= 1.
    if power10 >= 19:  # >= 10**19 > 2**63-1; checked before building a huge integer
        raise _error(source, "out of range (magnitude above 2**63-1)")
    scaled = coefficient << power2
    shift = power10 + 9
    if shift >= 0:
        nanos: int = scaled * 10**shift  # shift >= 0: an int (typeshed says Any for int ** int)
    elif shift < -300:  # scaled < 10**275, so 0 < |value| < 1e-25: rounds up to 1n
        nanos = 1
    else:
        nanos = -(-scaled // 10**-shift)  # ceil: Go rounds sub-nano digits away from zero
    if nanos > _MAX_NANOS:
        raise _error(source, "out of range (magnitude above 2**63-1)")
    return -nanos if sign == "-" else nanos


def _nanos(value: object) -> int:
    """Signed value in nanounits (1e-9 of a core, byte or count) of any accepted input."""
    if isinstance(value, str):
        return _nanos_from_text(value, value)
    if isinstance(value, bool):
        raise _error(value, "a bool is not a quantity")
    if isinstance(value, int):
        if abs(value) > _INT64_MAX:
            raise _error(value, "out of range (magnitude above 2**63-1)")
        return int(value) * _NANO
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _error(value, "not a finite number")
        # repr() is the shortest text that round-trips, i.e. what a JSON/YAML number was
        # written as; Go's UnmarshalJSON parses a JSON number from its text the same way.
        # (Converting the binary float exactly would make 0.1 cores 101 millicores.)
        return _nanos_from_text(float.__repr__(value), value)
    raise _error(value, f"expected str, int or float, got {type(value).__name__}")


def _ceil_away_from_zero(nanos: int, per_unit: int) -> int:
    """``nanos / per_unit`` rounded away from zero, as Value()/MilliValue() do."""
    q = -(-abs(nanos) // per_unit)
    return -q if nanos < 0 else q


def parse_quantity(value: str | int | float) -> Decimal:
    """Exact value of a quantity in base units: cores, bytes or a count.

    The result is what Go's ``Quantity`` holds: exact, except that a non-zero value with
    digits finer than 1e-9 is rounded away from zero to the next multiple of 1e-9
    ("0.9n" -> 1E-9), as ``ParseQuantity`` does. Trailing zeros are stripped
    ("100m" -> Decimal("0.1"), "2k" -> Decimal("2000")).

    ``int`` and ``float`` are accepted for hand-written requests; a float is read from its
    shortest repr, so 0.1 means exactly 0.1. Not cached.

    Raises ``QuantityError`` for anything else, including bool, NaN, inf and magnitudes
    above 2**63-1.
    """
    nanos = _nanos(value)
    if nanos == 0:
        return Decimal(0)
    exponent = -9
    while exponent < 0 and nanos % 10 == 0:
        nanos //= 10
        exponent += 1
    return Decimal(f"{nanos}E{exponent}")


# Both converters are bounded LRU caches keyed on the exact input and its type ("1", 1 and
# 1.0 are separate entries, and True never hits the entry for 1). lru_cache never stores a
# call that raised, so an invalid input is re-parsed and re-raised every time. The uncached
# function is ``cpu_millis.__wrapped__`` / ``base_units.__wrapped__``; ``cache_info()`` and
# ``cache_clear()`` are available. An unhashable argument (list, dict) raises the cache's
# own TypeError before any parsing; every hashable non-quantity raises QuantityError.


@functools.lru_cache(maxsize=_CACHE_SIZE, typed=True)
def cpu_millis(value: str | int | float) -> float:
    """``Quantity.MilliValue()`` as float64: ceil(value * 1000), in millicores for CPU.

    Rounds up for positive values ("1n" -> 1.0, "100m" -> 100.0, "1.5" -> 1500.0) and away
    from zero for negative ones ("-1n" -> -1.0). Cached per exact input and type.

    Raises ``QuantityError`` for invalid input or when value * 1000 exceeds 2**63-1 in
    magnitude (e.g. "1E", which is 10**18 cores).
    """
    millis = _ceil_away_from_zero(_nanos(value), _MILLI_PER_NANO)
    if abs(millis) > _INT64_MAX:
        raise _error(value, "out of range in millis (1000 x value above 2**63-1)")
    return float(millis)


@functools.lru_cache(maxsize=_CACHE_SIZE, typed=True)
def base_units(value: str | int | float) -> float:
    """``Quantity.Value()`` as float64: ceil(value), in bytes, pods or extended-resource units.

    Rounds up for positive values ("100m" -> 1.0, "0.5Ki" -> 512.0) and away from zero for
    negative ones. Used for memory, ephemeral storage, pods and extended resources. Cached
    per exact input and type.

    Raises ``QuantityError`` for invalid input or a magnitude above 2**63-1.
    """
    # |nanos| <= (2**63-1) * 10**9, so the rounded value always fits an int64.
    return float(_ceil_away_from_zero(_nanos(value), _NANO))
