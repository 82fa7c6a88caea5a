"""Conversions between PAL codes and IEEE / fixed-point numbers against exact references.

Encoding is checked against the exact nearest-log rule (integer comparisons of ``x**(2**(F+1))``
with odd powers of two, ``tests/exact.py``); decoding against integer round-to-nearest-even of
the exactly bracketed value ``2**(L / 2**F)``.
"""

import ml_dtypes
import numpy as np
import pytest
from exact import (
    BFLOAT16,
    FLOAT32,
    FLOAT64,
    code_of_dyadic,
    code_of_ieee,
    exp2_floor,
    ieee_round,
    pal_ieee_bits,
)

from palhdl.format import PALFormat, pal8, pal16
from palhdl.sim import golden

ODD = PALFormat(int_bits=5, frac_bits=6)
#: Range 2**+-512: overflows and underflows float32/bfloat16 (subnormals, rounding up to the
#: smallest subnormal, overflow to infinity).
WIDE = PALFormat(int_bits=10, frac_bits=3)
#: Range 2**+-4096: beyond float64 at both ends.
HUGE = PALFormat(int_bits=14, frac_bits=3)
#: Valid as a word format, but beyond the table-driven operations (frac_bits > 12).
NO_TABLES = PALFormat(int_bits=2, frac_bits=13)
IEEE = {"float64": FLOAT64, "float32": FLOAT32, "bfloat16": BFLOAT16}
TO_BITS = {
    "float64": lambda c, f: golden.decode(c, f).view(np.uint64),
    "float32": golden.to_float32_bits,
    "bfloat16": golden.to_bfloat16_bits,
}
RESULT_DTYPE = {"float64": np.uint64, "float32": np.uint32, "bfloat16": np.uint16}


def _codes_under_test(fmt):
    """Every code, or for HUGE a sample including both ends of the range."""
    if fmt.width <= 16:
        return np.arange(1 << fmt.width)
    rng = np.random.default_rng(7)
    edges = np.r_[0:600, fmt.mag_mask - 600 : fmt.mag_mask + 1, fmt.bias - 300 : fmt.bias + 300]
    sample = np.r_[edges, rng.integers(0, fmt.mag_mask + 1, 3000)]
    return np.r_[sample, sample | fmt.sign_mask]


@pytest.mark.parametrize("fmt", [pal8, pal16, ODD, WIDE, HUGE], ids=str)
@pytest.mark.parametrize("target", IEEE)
def test_pal_to_ieee(fmt, target):
    codes = _codes_under_test(fmt)
    got = TO_BITS[target](codes, fmt)
    assert got.dtype == RESULT_DTYPE[target]
    expected = pal_ieee_bits(codes, fmt, IEEE[target])
    bad = np.flatnonzero(got.astype(np.uint64) != expected)
    assert bad.size == 0, (
        f"{bad.size} mismatches, first code {codes[bad[0]]}: "
        f"got {int(got[bad[0]]):#x}, expected {int(expected[bad[0]]):#x}"
    )


def test_bfloat16_bits_agree_with_ml_dtypes():
    """Extra check: ml_dtypes' own float64 -> bfloat16 rounding of the decoded values."""
    for fmt in (pal8, pal16, WIDE):
        codes = np.arange(1 << fmt.width)
        with np.errstate(over="ignore"):  # WIDE overflows bfloat16 to infinity
            via_ml = golden.decode(codes, fmt).astype(ml_dtypes.bfloat16).view(np.uint16)
        np.testing.assert_array_equal(golden.to_bfloat16_bits(codes, fmt), via_ml)


# --- encoding -----------------------------------------------------------------------------------


def _midpoints(fmt, ieee, logs):
    """IEEE values nearest to the rounding thresholds ``2**((L + 1/2) / 2**F)`` of each ``L`` in
    ``logs``, their neighbours 1 and 2 ulps away, and their negatives (unsigned bit patterns
    of finite normal values only)."""
    big_k = 2 * fmt.units
    patterns = []
    for log in logs:
        octave, r = divmod(2 * int(log) + 1, big_k)
        mag = exp2_floor(r, big_k, 100)
        patterns.append(ieee_round(mag, octave - 100, ieee, inexact=True))
    man_bits, exp_bits = ieee
    centre = np.array(patterns, dtype=np.int64)
    around = (centre[:, None] + np.arange(-2, 3)).ravel()
    normal = (around >> man_bits > 0) & (around >> man_bits < (1 << exp_bits) - 1)
    around = around[normal].astype(np.uint64)
    return np.r_[around, around | np.uint64(1 << (man_bits + exp_bits))]


def _special_patterns(ieee):
    man_bits, exp_bits = ieee
    sign = 1 << (man_bits + exp_bits)
    inf = ((1 << exp_bits) - 1) << man_bits
    top = inf - 1
    patterns = [0, 1, 2, (1 << man_bits) - 1, 1 << man_bits, top, inf, inf + 1, inf | 1 << 3]
    patterns += [((1 << (exp_bits - 1)) - 1) << man_bits]  # 1.0
    return np.array(patterns + [p | sign for p in patterns], dtype=np.uint64)


def _random_patterns(fmt, ieee, count, rng):
    """Uniform bit patterns (every exponent, NaNs), subnormals and values near the format's
    range, both signs."""
    man_bits, exp_bits = ieee
    width = 1 + man_bits + exp_bits
    uniform = rng.integers(0, 1 << width, count // 3, dtype=np.uint64)
    subnormal = rng.integers(1, 1 << man_bits, count // 20, dtype=np.uint64)
    subnormal |= rng.integers(0, 2, subnormal.size, dtype=np.uint64) << np.uint64(width - 1)
    bias = (1 << (exp_bits - 1)) - 1
    reach = fmt.bias // fmt.units + 4
    field = np.clip(bias + rng.integers(-reach, reach + 1, count - count // 3), 0, 2 * bias)
    near = (field << man_bits) | rng.integers(0, 1 << man_bits, field.size, dtype=np.int64)
    sign = rng.integers(0, 2, field.size, dtype=np.uint64) << np.uint64(width - 1)
    return np.r_[uniform, subnormal, near.astype(np.uint64) | sign]


def _encode_inputs(fmt, ieee, count, seed):
    rng = np.random.default_rng(seed)
    logs = rng.integers(fmt.log_min - fmt.units, fmt.log_max + fmt.units, 300)
    logs = np.r_[logs, fmt.log_min - 1, fmt.log_min, fmt.log_max, fmt.log_max + 1]
    return np.r_[
        _special_patterns(ieee),
        _midpoints(fmt, ieee, logs),
        _random_patterns(fmt, ieee, count, rng),
    ]


def _expected(patterns, ieee, fmt):
    return np.array([code_of_ieee(int(p), ieee, fmt) for p in patterns], dtype=np.int64)


def _check(got, expected, inputs):
    got = np.asarray(got, dtype=np.int64)
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, (
        f"{bad.size} mismatches, first input {inputs[bad[0]]!r}: got {got[bad[0]]}, "
        f"expected {expected[bad[0]]}"
    )


@pytest.mark.parametrize("fmt", [pal8, pal16, ODD, WIDE], ids=str)
def test_encode_float64(fmt):
    patterns = _encode_inputs(fmt, FLOAT64, 8000, seed=fmt.width)
    values = patterns.view(np.float64)
    got = golden.encode(values, fmt)
    assert got.dtype == fmt.code_dtype
    _check(got, _expected(patterns, FLOAT64, fmt), values)


@pytest.mark.parametrize("fmt", [pal8, pal16, ODD, WIDE], ids=str)
def test_encode_float32_and_from_float32_bits(fmt):
    patterns = _encode_inputs(fmt, FLOAT32, 8000, seed=100 + fmt.width)
    expected = _expected(patterns, FLOAT32, fmt)
    _check(golden.from_float32_bits(patterns, fmt), expected, patterns)
    values = patterns.astype(np.uint32).view(np.float32)
    _check(golden.encode(values, fmt), expected, values)


@pytest.mark.parametrize("fmt", [pal8, pal16, ODD], ids=str)
def test_from_bfloat16_bits_all_patterns(fmt):
    patterns = np.arange(1 << 16)
    expected = _expected(patterns, BFLOAT16, fmt)
    _check(golden.from_bfloat16_bits(patterns.astype(np.uint16), fmt), expected, patterns)
    values = patterns.astype(np.uint16).view(ml_dtypes.bfloat16)
    _check(golden.encode(values, fmt), expected, values)


@pytest.mark.parametrize("fmt", [pal8, pal16], ids=str)
def test_encode_float16_all_patterns(fmt):
    patterns = np.arange(1 << 16)
    values = patterns.astype(np.uint16).view(np.float16)
    _check(golden.encode(values, fmt), _expected(patterns, (10, 5), fmt), values)


FIXED_FRAC_BITS = [-1024, -700, -64, -3, 0, 1, 7, 40, 62, 63, 100, 1024]


@pytest.mark.parametrize("fmt", [pal8, pal16, ODD, WIDE], ids=str)
@pytest.mark.parametrize("frac_bits", FIXED_FRAC_BITS)
def test_from_fixed(fmt, frac_bits):
    rng = np.random.default_rng(frac_bits % 1000 + fmt.width)
    lengths = rng.integers(1, 64, 400)
    ints = rng.integers(0, 1 << 62, 400) >> (63 - lengths)
    ints = ints * rng.choice([-1, 1], 400)
    top = np.iinfo(np.int64).max
    ints = np.r_[ints, 0, 1, -1, 2, 3, -3, top, -top, top - 1, 1 << 62, -(1 << 62)]
    expected = np.array(
        [code_of_dyadic(v < 0, abs(v), -frac_bits, fmt) for v in ints.tolist()], dtype=np.int64
    )
    _check(golden.from_fixed(ints, fmt, frac_bits), expected, ints)
    if frac_bits == 0:
        _check(golden.encode(ints, fmt), expected, ints)


def test_from_fixed_accepts_narrow_and_unsigned_ints():
    small = np.arange(-128, 128, dtype=np.int8)
    expected = [code_of_dyadic(v < 0, abs(v), -4, pal8) for v in small.tolist()]
    _check(golden.from_fixed(small, pal8, 4), np.array(expected), small)
    unsigned = np.array([0, 1, 255, (1 << 63) - 1], dtype=np.uint64)
    expected = [code_of_dyadic(False, v, 0, pal16) for v in unsigned.tolist()]
    _check(golden.from_fixed(unsigned, pal16), np.array(expected), unsigned)


@pytest.mark.parametrize("fmt", [pal8, pal16, ODD], ids=str)
def test_round_trip_all_codes(fmt):
    codes = np.arange(1 << fmt.width)
    back = golden.encode(golden.decode(codes, fmt), fmt).astype(np.int64)
    expected = np.where(codes == fmt.nan_code, fmt.nan_code, codes)
    np.testing.assert_array_equal(back, expected)


# --- argument checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "convert", [golden.decode, golden.to_float32_bits, golden.to_bfloat16_bits]
)
def test_bad_codes_to_convert(convert):
    with pytest.raises(ValueError, match="codes holds 300"):
        convert(np.array([0, 300]), pal8)
    with pytest.raises(TypeError, match="codes must be an integer array"):
        convert(np.array([0.0]), pal8)
    with pytest.raises(TypeError, match="fmt must be a PALFormat"):
        convert(np.array([1, 2, 3]), 8)


@pytest.mark.parametrize(
    "call",
    [
        lambda: golden.encode([1.0], NO_TABLES),
        lambda: golden.from_fixed(np.array([1]), NO_TABLES),
        lambda: golden.from_float32_bits(np.array([0]), NO_TABLES),
    ],
)
def test_table_driven_conversions_need_small_frac_bits(call):
    with pytest.raises(ValueError, match="frac_bits must be <= 12, not 13"):
        call()


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        (np.array(["1.0"]), TypeError, "values must be a real floating-point or integer array"),
        (np.array([1.0], dtype=object), TypeError, "values must be a real floating-point"),
        (np.array([1 + 2j]), TypeError, "values must be a real floating-point"),
        (np.array([1 << 63], dtype=np.uint64), ValueError, r"magnitude below 2\*\*63"),
        (b"3", TypeError, r"values must be a real .* not dtype \|S1"),
        ("3", TypeError, r"values must be a real .* not dtype <U1"),
        (True, TypeError, "values must be a real floating-point or integer array, not dtype bool"),
        (np.array([True, False]), TypeError, "not dtype bool"),
        (np.array([1], dtype="datetime64[s]"), TypeError, "values must be a real"),
    ],
)
def test_bad_encode_values(values, error, match):
    with pytest.raises(error, match=match):
        golden.encode(values, pal8)


@pytest.mark.parametrize(
    ("values", "frac_bits", "error", "match"),
    [
        (np.array([1]), 1025, ValueError, r"frac_bits must be in \[-1024, 1024\], not 1025"),
        (np.array([1]), -1025, ValueError, r"frac_bits must be in \[-1024, 1024\]"),
        (np.array([1]), 2.0, TypeError, "frac_bits must be an integer"),
        (np.array([1]), True, TypeError, "frac_bits must be an integer"),
        (np.array([1.0]), 0, TypeError, "values must be an integer array"),
        (np.array([np.iinfo(np.int64).min]), 0, ValueError, r"magnitude below 2\*\*63"),
        (np.array([1 << 63], dtype=np.uint64), 0, ValueError, r"magnitude below 2\*\*63"),
    ],
)
def test_bad_from_fixed(values, frac_bits, error, match):
    with pytest.raises(error, match=match):
        golden.from_fixed(values, pal8, frac_bits)


@pytest.mark.parametrize(
    ("convert", "bits", "error", "match"),
    [
        (golden.from_float32_bits, np.array([1 << 32]), ValueError, r"bits must hold 32-bit"),
        (golden.from_float32_bits, np.array([-1]), ValueError, r"bits must hold 32-bit"),
        (golden.from_float32_bits, np.array([1.0]), TypeError, "bits must be an integer array"),
        (golden.from_bfloat16_bits, np.array([1 << 16]), ValueError, r"bits must hold 16-bit"),
        (golden.from_bfloat16_bits, np.array([-1]), ValueError, r"bits must hold 16-bit"),
        (golden.from_bfloat16_bits, np.array([0.5]), TypeError, "bits must be an integer array"),
    ],
)
def test_bad_ieee_bit_patterns(convert, bits, error, match):
    with pytest.raises(error, match=match):
        convert(bits, pal8)
