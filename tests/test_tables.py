"""Every lookup table entry against an independent exact derivation (see ``tests/exact.py``)."""

import itertools

import mpmath
import numpy as np
import pytest
from exact import TIE_MARGIN, exp2_floor, gauss_log, gauss_round, mantissa_round

from palhdl.format import pal16
from palhdl.tables import (
    TABLE_PREC,
    db_table,
    exp2_table,
    log_threshold_table,
    mantissa_table,
    sb_table,
)

FRAC_BITS = sorted({1, 2, 3, 4, 5, 6, 7, pal16.frac_bits})


@pytest.mark.parametrize("frac_bits", FRAC_BITS)
def test_exp2_table_is_floor_of_power(frac_bits):
    units = 1 << frac_bits
    table = exp2_table(frac_bits)
    assert table.shape == (units,)
    expected = [exp2_floor(r, units, TABLE_PREC) for r in range(units)]
    assert table.tolist() == expected
    assert table[0] == 1 << TABLE_PREC
    assert np.all(np.diff(table) > 0)


@pytest.mark.parametrize("frac_bits", FRAC_BITS)
def test_log_threshold_table_is_floor_of_midpoint_power(frac_bits):
    units = 1 << frac_bits
    table = log_threshold_table(frac_bits)
    assert table.shape == (units,)
    # t_j = 2**((2j - 1) / 2**(F+1)): floor(t_j * 2**62) is the integer 2**(F+1)-th root.
    expected = [exp2_floor(2 * j - 1, 2 * units, TABLE_PREC) for j in range(1, units + 1)]
    assert table.tolist() == expected
    assert table[0] > 1 << TABLE_PREC
    assert table[-1] < 1 << (TABLE_PREC + 1)


@pytest.mark.parametrize("frac_bits", FRAC_BITS)
@pytest.mark.parametrize("mantissa_bits", [1, 2, 5, 8, 10, 24, 53, 60])
def test_mantissa_table_is_rounded_power(frac_bits, mantissa_bits):
    units = 1 << frac_bits
    table = mantissa_table(frac_bits, mantissa_bits)
    expected = [mantissa_round(r, frac_bits, mantissa_bits) for r in range(units)]
    assert table.tolist() == expected
    assert table[0] == 1 << mantissa_bits


def test_mantissa_table_default_width_rounds_up_and_down():
    """The default W = F + 3 table for pal16 contains both rounding directions (a floor-only
    or ceil-only generator would fail the exact comparison above on some entry)."""
    units = 1 << pal16.frac_bits
    w = pal16.frac_bits + 3
    floors = [exp2_floor(r, units, w) for r in range(1, units)]
    rounded = mantissa_table(pal16.frac_bits, w)[1:].tolist()
    ups = sum(m > f for m, f in zip(rounded, floors, strict=True))
    assert 0 < ups < units - 1


def _gauss_table_check(table, frac_bits, same_sign):
    first = 0 if same_sign else 1
    length = len(table)
    values = [gauss_log(d, frac_bits, same_sign) for d in range(first, length + 1)]
    reference = [gauss_round(d, frac_bits, same_sign) for d in range(first, length)]
    assert table[first:].tolist() == reference
    assert all(entry != 0 for entry in reference)
    # The table ends exactly where the rounded function first reaches 0: the exact value at
    # d = len is below 1/2 in magnitude, and |value| decreases with d (checked on the covered
    # range here; for all d because 2**(-d/k) decreases), so every later d also rounds to 0.
    assert abs(values[-1]) < mpmath.mpf(0.5) - TIE_MARGIN
    magnitudes = [abs(v) for v in values]
    assert all(b < a for a, b in itertools.pairwise(magnitudes))


@pytest.mark.parametrize("frac_bits", FRAC_BITS)
def test_sb_table_against_log1p(frac_bits):
    table = sb_table(frac_bits)
    assert table[0] == 1 << frac_bits
    _gauss_table_check(table, frac_bits, same_sign=True)


@pytest.mark.parametrize("frac_bits", FRAC_BITS)
def test_db_table_against_log1p(frac_bits):
    table = db_table(frac_bits)
    assert table[0] == 0
    assert np.all(table[1:] < 0)
    _gauss_table_check(table, frac_bits, same_sign=False)


@pytest.mark.parametrize(
    "make", [exp2_table, log_threshold_table, sb_table, db_table, lambda f: mantissa_table(f, 6)]
)
def test_tables_are_read_only(make):
    table = make(3)
    with pytest.raises(ValueError, match="read-only"):
        table[0] = 1


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("table", [exp2_table, log_threshold_table, sb_table, db_table])
@pytest.mark.parametrize(
    ("frac_bits", "error", "match"),
    [
        (0, ValueError, r"frac_bits must be in \[1, 12\], not 0"),
        (13, ValueError, r"frac_bits must be in \[1, 12\], not 13"),
        (3.0, TypeError, "frac_bits must be an integer"),
        (True, TypeError, "frac_bits must be an integer"),
    ],
)
def test_bad_table_frac_bits(table, frac_bits, error, match):
    with pytest.raises(error, match=match):
        table(frac_bits)


@pytest.mark.parametrize("table", [exp2_table, log_threshold_table, sb_table, db_table])
def test_cached_tables_still_validate(table):
    """A table cached for ``frac_bits=1`` must not be returned for the equal keys 1.0 / True."""
    table(1)
    for bad in (1.0, True):
        with pytest.raises(TypeError, match="frac_bits must be an integer"):
            table(bad)
    mantissa_table(1, 6)
    with pytest.raises(TypeError, match="mantissa_bits must be an integer"):
        mantissa_table(1, 6.0)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((3, 0), ValueError, r"mantissa_bits must be in \[1, 60\], not 0"),
        ((3, 61), ValueError, r"mantissa_bits must be in \[1, 60\]"),
        ((3, True), TypeError, "mantissa_bits must be an integer"),
        ((3, 6.0), TypeError, "mantissa_bits must be an integer"),
        ((0, 6), ValueError, "frac_bits must be in"),
        ((13, 6), ValueError, "frac_bits must be in"),
    ],
)
def test_bad_mantissa_table(args, error, match):
    with pytest.raises(error, match=match):
        mantissa_table(*args)
