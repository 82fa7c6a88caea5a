"""Lookup tables shared by the golden model and the RTL.

Every table is computed once per process from high-precision ``mpmath`` arithmetic and returned
as a read-only numpy array. Each generator asserts that its rounding decisions are far from a
tie, so the result is the exact correctly rounded (or floored) value; the test suite re-derives
every entry independently (integer arithmetic where feasible).

Fixed-point tables hold ``TABLE_PREC = 62`` fraction bits: an irrational value ``v`` is stored as
``floor(v * 2**62)``. Because ``v`` is never on the 2**-62 grid, rounding the stored value plus a
sticky bit to any precision of at most 61 bits is exactly the rounding of ``v`` itself.
"""

from __future__ import annotations

from functools import lru_cache

import mpmath
import numpy as np

from palhdl.validate import check_int

__all__ = [
    "MAX_TABLE_FRAC_BITS",
    "TABLE_PREC",
    "db_table",
    "exp2_table",
    "log_threshold_table",
    "mantissa_table",
    "sb_table",
]

#: Largest ``frac_bits`` for which the table-driven operations (encode, add, MAC) are supported.
#: Table sizes grow as ``2**frac_bits``; see ``docs/format.md``.
MAX_TABLE_FRAC_BITS = 12
#: Fraction bits of the fixed-point tables (see the module docstring).
TABLE_PREC = 62
_GUARD_BITS = 96
#: A decision closer than this to a tie would make the table generation refuse to continue.
_MIN_TIE_DISTANCE = mpmath.mpf(2) ** -48
#: Typed, so that a cached ``exp2_table(3)`` does not answer ``exp2_table(3.0)`` or ``(True)``
#: without validating the argument.
cache = lru_cache(maxsize=None, typed=True)


def _check_frac_bits(frac_bits) -> int:
    return check_int("frac_bits", frac_bits, 1, MAX_TABLE_FRAC_BITS)


def _readonly(values, dtype=np.int64) -> np.ndarray:
    array = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


def _floor_irrational(value: mpmath.mpf) -> int:
    """``floor(value)`` for a value known to be irrational (never an integer)."""
    floor = int(mpmath.floor(value))
    if min(value - floor, floor + 1 - value) < _MIN_TIE_DISTANCE:
        raise ArithmeticError(f"table entry {value} is too close to an integer to floor safely")
    return floor


def _round_irrational(value: mpmath.mpf) -> int:
    """Nearest integer to a value known never to be a half-integer."""
    nearest = int(mpmath.nint(value))
    if abs(abs(value - nearest) - mpmath.mpf(0.5)) < _MIN_TIE_DISTANCE:
        raise ArithmeticError(f"table entry {value} is too close to a tie to round safely")
    return nearest


@cache
def exp2_table(frac_bits: int) -> np.ndarray:
    """``floor(2**(r / 2**frac_bits) * 2**TABLE_PREC)`` for ``r = 0 .. 2**frac_bits - 1``.

    Entry 0 is exactly ``2**TABLE_PREC``; every other entry is the floor of an irrational number.
    """
    frac_bits = _check_frac_bits(frac_bits)
    units = 1 << frac_bits
    entries = [1 << TABLE_PREC]
    with mpmath.workprec(TABLE_PREC + _GUARD_BITS):
        for r in range(1, units):
            entries.append(
                _floor_irrational(mpmath.ldexp(mpmath.power(2, mpmath.mpf(r) / units), TABLE_PREC))
            )
    return _readonly(entries)


@cache
def log_threshold_table(frac_bits: int) -> np.ndarray:
    """Return the rounding thresholds of the log2 conversion, as ``floor(t_j * 2**TABLE_PREC)``.

    ``t_j = 2**((j - 1/2) / 2**frac_bits)`` for ``j = 1 .. 2**frac_bits``. A mantissa ``x`` in
    ``[1, 2)`` given exactly as the integer ``X = x * 2**TABLE_PREC`` has
    ``round(log2(x) * 2**frac_bits) = count(X > table)``: no ``t_j`` is a dyadic rational, so
    there are no ties. For a mantissa with ``p <= TABLE_PREC`` fraction bits, the thresholds
    ``table >> (TABLE_PREC - p)`` (floors again) decide the same way.
    """
    frac_bits = _check_frac_bits(frac_bits)
    units = 1 << frac_bits
    entries = []
    with mpmath.workprec(TABLE_PREC + _GUARD_BITS):
        for j in range(1, units + 1):
            exponent = mpmath.mpf(2 * j - 1) / (2 * units)
            entries.append(_floor_irrational(mpmath.ldexp(mpmath.power(2, exponent), TABLE_PREC)))
    return _readonly(entries)


@cache
def mantissa_table(frac_bits: int, mantissa_bits: int) -> np.ndarray:
    """Return the MAC's linear mantissas ``round(2**(r / 2**frac_bits) * 2**mantissa_bits)``.

    Derived exactly from :func:`exp2_table` (nearest; ties cannot occur for ``r > 0``).
    """
    mantissa_bits = check_int("mantissa_bits", mantissa_bits, 1, TABLE_PREC - 2)
    drop = TABLE_PREC - mantissa_bits
    # floor(t / 2**drop + 1/2) == floor((floor(t / 2**(drop - 1)) + 1) / 2), without int64 overflow.
    return _readonly(((exp2_table(frac_bits) >> (drop - 1)) + 1) >> 1)


def _gaussian_log_table(frac_bits: int, sign: int) -> np.ndarray:
    units = 1 << frac_bits
    entries = []
    with mpmath.workprec(64 + _GUARD_BITS):
        d = 1 if sign < 0 else 0
        while True:
            if d == 0:
                entry = units  # log2(1 + 1) is exactly one octave
            else:
                ratio = mpmath.power(2, -mpmath.mpf(d) / units)
                entry = _round_irrational(units * mpmath.log(1 + sign * ratio, 2))
            if entry == 0:
                break
            entries.append(entry)
            d += 1
    if sign < 0:
        entries.insert(0, 0)  # d = 0 is exact cancellation, handled without the table
    return _readonly(entries)


@cache
def sb_table(frac_bits: int) -> np.ndarray:
    """Addition table ``sb[d] = round(2**F * log2(1 + 2**(-d / 2**F)))``, ``F = frac_bits``.

    Covers ``d = 0 .. len - 1``; every ``d >= len`` has ``sb[d] == 0``.
    """
    return _gaussian_log_table(_check_frac_bits(frac_bits), +1)


@cache
def db_table(frac_bits: int) -> np.ndarray:
    """Subtraction table ``db[d] = round(2**F * log2(1 - 2**(-d / 2**F)))`` (values <= 0).

    Covers ``d = 1 .. len - 1``; entry 0 is unused (``d = 0`` is exact cancellation, result +0);
    every ``d >= len`` has ``db[d] == 0``.
    """
    return _gaussian_log_table(_check_frac_bits(frac_bits), -1)
