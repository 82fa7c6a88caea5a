"""The golden model's shared helpers against Python's integers and the spec's code layout."""

import numpy as np
import pytest

from palhdl.format import PALFormat, pal8, pal16
from palhdl.sim.golden.bits import (
    binary_fields,
    bit_length,
    check_bit_patterns,
    check_codes,
    check_floats,
    check_fmt,
    fields,
    pack,
    round_shift_right,
)


def test_bit_length_matches_int_bit_length():
    rng = np.random.default_rng(1)
    edges = [0, 1, 2, 3]
    edges += [v for k in range(2, 64) for v in ((1 << k) - 1, 1 << k) if v < 1 << 63]
    values = np.array(edges + rng.integers(0, 1 << 62, 2000).tolist(), dtype=np.int64)
    np.testing.assert_array_equal(bit_length(values), [int(v).bit_length() for v in values])


def test_round_shift_right_rounds_half_away_from_zero():
    values = np.array([0, 1, 2, 3, 5, 6, 7, 8, 1023, (1 << 61) + 7, (1 << 62) - 1], dtype=np.int64)
    for shift in (0, 1, 2, 3, 10, 61, 62, 63, 80):
        got = round_shift_right(values, np.full(values.shape, shift))
        # floor(v / 2**s + 1/2) in exact integer arithmetic.
        expected = [(2 * int(v) + (1 << shift)) >> (shift + 1) for v in values]
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("fmt", [pal8, pal16], ids=str)
def test_fields_and_pack_round_trip(fmt):
    codes = np.arange(1 << fmt.width)
    negative, log, zero, nan = fields(codes, fmt)
    assert zero.tolist().count(True) == 1 and zero[fmt.zero_code]
    assert nan.tolist().count(True) == 1 and nan[fmt.nan_code]
    np.testing.assert_array_equal(negative, codes >= fmt.sign_mask)
    np.testing.assert_array_equal(pack(negative, log, fmt, zero=zero, nan=nan), codes)
    # Saturation above E = 2**(I+F) - 1, flush to +0 (sign dropped) below E = 1.
    np.testing.assert_array_equal(
        pack(np.array([False, True, True]), np.array([fmt.bias, -fmt.bias, 0]), fmt),
        [fmt.max_code, fmt.zero_code, fmt.sign_mask | fmt.bias],
    )


def test_binary_fields_broadcast():
    (sa, la, _, _), (sb, lb, _, _) = binary_fields(np.arange(3)[:, None], np.arange(4), pal8)
    assert sa.shape == la.shape == sb.shape == lb.shape == (3, 4)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: check_fmt("pal8"), TypeError, r"fmt must be a PALFormat \(for example"),
        (lambda: check_codes("x", [256], pal8), ValueError, "x holds 256, outside the pal8"),
        (lambda: check_codes("x", [1.0], pal8), TypeError, "x must be an integer array"),
        (lambda: check_codes("x", [1], None), TypeError, "fmt must be a PALFormat"),
        (lambda: check_floats("v", ["1"]), TypeError, "v must be a real floating-point"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_checks_return_normalised_arrays():
    assert check_fmt(pal8) is pal8
    codes = check_codes("x", np.array([1, 2], dtype=np.uint8), PALFormat(int_bits=2, frac_bits=1))
    assert codes.dtype == np.int64 and codes.tolist() == [1, 2]
    assert check_floats("v", np.array([1, 2], dtype=np.int8)).dtype == np.float64


def test_check_bit_patterns():
    patterns = check_bit_patterns("bits", np.array([0, 255], dtype=np.uint8), 8)
    assert patterns.dtype == np.int64 and patterns.tolist() == [0, 255]
    with pytest.raises(ValueError, match=r"bits must hold 8-bit patterns in \[0, 255\]"):
        check_bit_patterns("bits", [256], 8)
    with pytest.raises(TypeError, match="bits must be an integer array of 8-bit patterns"):
        check_bit_patterns("bits", [1.0], 8)
