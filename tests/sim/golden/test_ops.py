"""Elementwise golden-model arithmetic against exact references.

pal8 is checked exhaustively (all 65,536 operand pairs); pal16 and an odd format on random and
directed operands. The references work on the decoded values ``(-1)**s * 2**(L / 2**F)``:
products and quotients are exact in the log domain, sums are rounded from ``mpmath`` values
(see ``tests/exact.py``), then saturated to +-max or flushed to +0 per the spec.
"""

from functools import cache

import mpmath
import numpy as np
import pytest
from exact import (
    all_codes_float64,
    gauss_round_array,
    join,
    round_far_from_tie,
    split,
)

from palhdl.format import PALFormat, pal8, pal16
from palhdl.sim import golden

ODD = PALFormat(int_bits=5, frac_bits=6)
#: Random operand pairs per pal16 / odd-format test (``random_vectors`` may lower it).
SAMPLES = 200_000


def _all_pairs(fmt):
    codes = np.arange(1 << fmt.width)
    return np.repeat(codes, codes.size), np.tile(codes, codes.size)


# --- references ---------------------------------------------------------------------------------


def ref_mul(a, b, fmt):
    na, la, za, qa = split(a, fmt)
    nb, lb, zb, qb = split(b, fmt)
    return join(na ^ nb, la + lb, fmt, zero=za | zb, nan=qa | qb)


def ref_div(a, b, fmt):
    na, la, za, qa = split(a, fmt)
    nb, lb, zb, qb = split(b, fmt)
    return join(na ^ nb, la - lb, fmt, zero=za, nan=qa | qb | zb)


@cache
def _direct_sums(fmt):
    """For every pair of logs and both sign relations, the correctly rounded log of
    ``2**(La/k) +- 2**(Lb/k)`` and whether that sum is negative, computed literally."""
    units = fmt.units
    logs = np.arange(fmt.log_min, fmt.log_max + 1)
    out_log = np.zeros((2, logs.size, logs.size), dtype=np.int64)
    out_neg = np.zeros((2, logs.size, logs.size), dtype=bool)
    with mpmath.workprec(256):
        powers = [mpmath.power(2, mpmath.mpf(int(x)) / units) for x in logs]
        for opposite in (0, 1):
            for i, pa in enumerate(powers):
                for j, pb in enumerate(powers):
                    if opposite and i == j:
                        continue  # exact cancellation, handled by the caller
                    total = pa - pb if opposite else pa + pb
                    out_log[opposite, i, j] = round_far_from_tie(units * mpmath.log(abs(total), 2))
                    out_neg[opposite, i, j] = total < 0
    return out_log, out_neg


def _sum_direct(la, lb, opposite, fmt):
    logs, negs = _direct_sums(fmt)
    index = (opposite.astype(int), la - fmt.log_min, lb - fmt.log_min)
    return logs[index], negs[index]


def _sum_gaussian(la, lb, opposite, fmt):
    big = np.maximum(la, lb)
    offset = gauss_round_array(np.abs(la - lb), fmt.frac_bits, ~opposite)
    return big + offset, opposite & (lb > la)


def ref_add(a, b, fmt, *, subtract=False, direct=False):
    """Reference ``a + b`` (or ``a - b``); ``direct`` evaluates each sum literally with mpmath
    (small formats only), otherwise via the exact Gaussian-log decomposition
    ``k log2|2**(La/k) +- 2**(Lb/k)| = max(La, Lb) + k log2(1 +- 2**(-|La - Lb|/k))``."""
    na, la, za, qa = split(a, fmt)
    nb, lb, zb, qb = split(b, fmt)
    nb = nb ^ (subtract & ~zb & ~qb)
    special = za | zb | qa | qb
    # Keep the garbage logs of specials inside the log range; those results are replaced below.
    la = np.where(za | qa, 0, la)
    lb = np.where(zb | qb, 0, lb)
    opposite = na != nb
    log, flips = (_sum_direct if direct else _sum_gaussian)(la, lb, opposite, fmt)
    negative = na ^ flips
    # x + 0 is x and 0 + y is y exactly.
    log = np.where(za, lb, np.where(zb, la, log))
    negative = np.where(za, nb, np.where(zb, na, negative))
    cancel = opposite & (la == lb) & ~special
    return join(negative, log, fmt, zero=(za & zb) | cancel, nan=qa | qb)


def ref_sub(a, b, fmt, **kwargs):
    return ref_add(a, b, fmt, subtract=True, **kwargs)


OPS = {
    "mul": (golden.mul, ref_mul),
    "div": (golden.div, ref_div),
    "add": (golden.add, ref_add),
    "sub": (golden.sub, ref_sub),
}


def _assert_codes_equal(got, expected, a, b):
    got = np.asarray(got, dtype=np.int64)
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, (
        f"{bad.size} mismatches, first: a={a[bad[0]]} b={b[bad[0]]} "
        f"got={got[bad[0]]} expected={expected[bad[0]]}"
    )


# --- pal8, exhaustive ---------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS)
def test_pal8_exhaustive(op):
    a, b = _all_pairs(pal8)
    model, reference = OPS[op]
    kwargs = {"direct": True} if op in ("add", "sub") else {}
    got = model(a, b, pal8)
    assert got.dtype == np.uint8
    _assert_codes_equal(got, reference(a, b, pal8, **kwargs), a, b)


def test_gaussian_decomposition_matches_direct_sums():
    """The decomposition the sampled tests use agrees with the literal sums on every pal8 pair."""
    a, b = _all_pairs(pal8)
    for subtract in (False, True):
        direct = ref_add(a, b, pal8, subtract=subtract, direct=True)
        np.testing.assert_array_equal(ref_add(a, b, pal8, subtract=subtract), direct)


@pytest.mark.parametrize("fmt", [pal8, pal16], ids=str)
def test_neg_and_abs_all_codes(fmt):
    codes = np.arange(1 << fmt.width)
    values = all_codes_float64(fmt)
    negated = golden.neg(codes, fmt).astype(np.int64)
    absolute = golden.abs_(codes, fmt).astype(np.int64)
    nan = np.isnan(values)
    np.testing.assert_array_equal(values[negated][~nan], -values[~nan])
    np.testing.assert_array_equal(values[absolute][~nan], np.abs(values[~nan]))
    # Specials keep their unique codes: +0 stays +0 (no negative zero), NaN stays NaN.
    assert negated[fmt.zero_code] == absolute[fmt.zero_code] == fmt.zero_code
    assert negated[fmt.nan_code] == absolute[fmt.nan_code] == fmt.nan_code


def _ref_compare(a, b, fmt):
    values = all_codes_float64(fmt)
    va, vb = values[a], values[b]
    # Distinct codes decode to distinct float64 values, so float comparison is exact here.
    assert np.unique(values[~np.isnan(values)]).size == (1 << fmt.width) - 1
    return np.where(np.isnan(va) | np.isnan(vb), golden.UNORDERED, np.sign(va - vb))


def test_pal8_compare_exhaustive():
    a, b = _all_pairs(pal8)
    got = golden.compare(a, b, pal8)
    assert got.dtype == np.int8
    _assert_codes_equal(got, _ref_compare(a, b, pal8), a, b)


# --- pal16 and an odd format: random and directed operands ---------------------------------------


def _random_pairs(fmt, seed, count):
    """``count`` uniform codes, plus pairs with close magnitudes (where sums round
    non-trivially) and a sprinkling of specials."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << fmt.width, count)
    b = rng.integers(0, 1 << fmt.width, count)
    close = rng.random(count) < 0.6
    distance = rng.integers(-4 * fmt.units, 4 * fmt.units + 1, count)
    partner = np.clip((a & fmt.mag_mask) + distance, 1, fmt.mag_mask)
    partner |= rng.integers(0, 2, count) * fmt.sign_mask
    b = np.where(close, partner, b)
    specials = np.array([fmt.zero_code, fmt.nan_code, fmt.max_code, fmt.max_code | fmt.sign_mask])
    for x in (a, b):
        pick = rng.random(count) < 0.01
        x[pick] = rng.choice(specials, pick.sum())
    return a, b


def _directed_codes(fmt):
    """Zero, NaN, +-max, +-min, their neighbours, +-1 and a few mid-range magnitudes."""
    one = fmt.bias
    mags = [1, 2, 3, fmt.units, one - 1, one, one + 1, fmt.mag_mask - 1, fmt.mag_mask]
    mags += [one - fmt.units * 3, one + fmt.units * 5 + 1]
    codes = [fmt.zero_code, fmt.nan_code]
    codes += [m | s for m in mags for s in (0, fmt.sign_mask)]
    return np.array(sorted(set(codes)))


@pytest.mark.parametrize("fmt", [pal16, ODD], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_random_pairs(fmt, op, random_vectors):
    model, reference = OPS[op]
    seed = sorted(OPS).index(op) + 10 * fmt.width
    a, b = _random_pairs(fmt, seed, random_vectors(SAMPLES))
    got = model(a, b, fmt)
    assert got.dtype == fmt.code_dtype
    _assert_codes_equal(got, reference(a, b, fmt), a, b)


@pytest.mark.parametrize("fmt", [pal16, ODD], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_directed_pairs(fmt, op):
    codes = _directed_codes(fmt)
    a = np.repeat(codes, codes.size)
    b = np.tile(codes, codes.size)
    model, reference = OPS[op]
    expected = reference(a, b, fmt)
    _assert_codes_equal(model(a, b, fmt), expected, a, b)
    # The directed set reaches saturation and flush-to-zero from finite nonzero operands.
    finite = ((a & fmt.mag_mask) != 0) & ((b & fmt.mag_mask) != 0)
    assert np.any(finite & ((expected & fmt.mag_mask) == fmt.mag_mask))
    assert np.any(finite & (expected == fmt.zero_code))


@pytest.mark.parametrize("fmt", [pal8, pal16, ODD], ids=str)
def test_exact_cancellation_and_identities(fmt):
    """``x - x = x + (-x) = +0``, ``x + 0 = x``, ``x * 0 = +0``, ``0 / x = +0``, ``x / 0 = NaN``."""
    codes = np.arange(1 << fmt.width)
    finite = codes[(codes & fmt.mag_mask) != 0]
    zero = np.zeros_like(finite)
    assert np.all(golden.sub(finite, finite, fmt) == fmt.zero_code)
    assert np.all(golden.add(finite, golden.neg(finite, fmt), fmt) == fmt.zero_code)
    np.testing.assert_array_equal(golden.add(finite, zero, fmt), finite)
    np.testing.assert_array_equal(golden.sub(zero, finite, fmt), golden.neg(finite, fmt))
    assert np.all(golden.mul(finite, zero, fmt) == fmt.zero_code)
    assert np.all(golden.div(zero, finite, fmt) == fmt.zero_code)
    assert np.all(golden.div(finite, zero, fmt) == fmt.nan_code)


def test_pal16_compare_random(random_vectors):
    a, b = _random_pairs(pal16, 99, random_vectors(SAMPLES))
    _assert_codes_equal(golden.compare(a, b, pal16), _ref_compare(a, b, pal16), a, b)


def test_broadcasting_and_scalars():
    row = np.arange(256).reshape(1, 256)
    col = np.arange(256).reshape(256, 1)
    a, b = _all_pairs(pal8)
    np.testing.assert_array_equal(golden.add(col, row, pal8).ravel(), golden.add(a, b, pal8))
    assert golden.mul(pal8.bias + 8, pal8.bias + 8, pal8) == pal8.bias + 16  # 2 * 2 = 4
    assert golden.mul(pal8.bias + 8, pal8.bias + 8, pal8).shape == ()


# --- argument checks ----------------------------------------------------------------------------


BINARY = [golden.mul, golden.div, golden.add, golden.sub, golden.compare]
UNARY = [golden.neg, golden.abs_]
CODES = np.array([1, 2, 3])
#: Valid as a word format, but beyond the table-driven operations (frac_bits > 12).
NO_TABLES = PALFormat(int_bits=2, frac_bits=13)


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize(
    ("a", "b", "error", "match"),
    [
        (
            np.array([256]),
            CODES,
            ValueError,
            r"a holds 256, outside the pal8 code range \[0, 255\]",
        ),
        (CODES, np.array([-1, 0]), ValueError, "b holds -1, outside the pal8 code range"),
        (np.array([1.0, 2.0]), CODES, TypeError, "a must be an integer array of pal8 codes"),
        (CODES, np.array([True]), TypeError, "b must be an integer array"),
        (CODES, np.array(["1"]), TypeError, "b must be an integer array"),
        (CODES, np.array([1, 2], dtype=object), TypeError, "b must be an integer array"),
        (CODES, np.arange(4), ValueError, r"a and b must broadcast together, not shapes \(3,\)"),
    ],
)
def test_bad_binary_operands(op, a, b, error, match):
    with pytest.raises(error, match=match):
        op(a, b, pal8)


@pytest.mark.parametrize("op", BINARY)
def test_binary_needs_a_format(op):
    with pytest.raises(TypeError, match="fmt must be a PALFormat"):
        op(CODES, CODES, "pal8")


@pytest.mark.parametrize("op", UNARY)
@pytest.mark.parametrize(
    ("a", "fmt", "error", "match"),
    [
        (np.array([256]), pal8, ValueError, "a holds 256"),
        (np.array([1 << 16]), pal16, ValueError, r"a holds 65536, outside the pal16 code range"),
        (np.array([0.5]), pal8, TypeError, "a must be an integer array"),
        (CODES, None, TypeError, "fmt must be a PALFormat"),
    ],
)
def test_bad_unary_operands(op, a, fmt, error, match):
    with pytest.raises(error, match=match):
        op(a, fmt)


def test_add_needs_small_frac_bits():
    with pytest.raises(ValueError, match="frac_bits must be <= 12, not 13"):
        golden.add(CODES, CODES, NO_TABLES)


def test_operations_without_tables_work_on_wide_fraction():
    codes = np.array([1, NO_TABLES.bias, NO_TABLES.max_code])
    assert golden.mul(codes, codes, NO_TABLES).dtype == np.uint16
    assert golden.neg(codes, NO_TABLES).tolist() == (codes | NO_TABLES.sign_mask).tolist()
