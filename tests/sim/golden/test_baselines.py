"""The golden baseline references' parameters and integer arithmetic.

Their products and accumulation against exact arithmetic, and the RTL against them, are in
``tests/hdl/test_baselines.py``.
"""

import numpy as np
import pytest

from palhdl.format import AccumulatorConfig
from palhdl.sim.golden.baselines import (
    FLOAT_FORMATS,
    check_acc,
    check_int_mac,
    float_fields,
    float_geometry,
    int_mac,
)


def test_float_geometry_is_an_accumulator_window():
    geometry = float_geometry(np.int64(32), 8, term_bits=20, saturate=False)
    assert geometry == AccumulatorConfig(acc_bits=32, acc_frac_bits=8, term_bits=20, saturate=False)
    assert (geometry.acc_max, geometry.acc_min, geometry.term_max) == (
        2**31 - 1,
        -(2**31),
        2**20 - 1,
    )
    assert float_geometry(48, 24).term_bits == 47
    assert check_acc(np.int32(16), -3) == (16, -3)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: check_acc(7, 0), ValueError, r"acc_bits must be in \[8, 62\], not 7"),
        (lambda: check_acc(32, 4097), ValueError, r"acc_frac_bits must be in \[-4096, 4096\]"),
        (lambda: check_acc(32.0, 0), TypeError, "acc_bits must be an integer"),
        (lambda: float_geometry(32, 0, term_bits=32), ValueError, r"term_bits must be in \[2, 31"),
        (lambda: float_geometry(32, 0, saturate=0), TypeError, "saturate must be a bool"),
        (lambda: check_int_mac(1, 32), ValueError, r"width must be in \[2, 16\], not 1"),
        (lambda: check_int_mac(8.0, 32), TypeError, "width must be an integer"),
        (lambda: check_int_mac(8, 15), ValueError, r"acc_bits must be in \[2 \* width, 62\]"),
        (lambda: check_int_mac(8, 63), ValueError, r"= \[16, 62\], not 63"),
        (lambda: check_int_mac(8, True), TypeError, "acc_bits must be an integer"),
    ],
)
def test_bad_parameters(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_int_mac_wraps_like_python_integers():
    rng = np.random.default_rng(3)
    a = rng.integers(-8, 8, (5, 40))
    b = rng.integers(-8, 8, (5, 40))
    got = int_mac(a, b, width=4, acc_bits=8)
    for row, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        total = sum(p * q for p, q in zip(x, y, strict=True))
        assert got[row] == (total + 128) % 256 - 128


@pytest.mark.parametrize("name", sorted(FLOAT_FORMATS))
def test_float_fields_are_the_values(name):
    fmt = FLOAT_FORMATS[name]
    patterns = np.arange(1 << fmt.width)
    negative, significand, exponent, nan, inf = float_fields(patterns, fmt)
    bits_dtype = np.uint8 if fmt.width == 8 else np.uint16
    with np.errstate(invalid="ignore"):
        values = patterns.astype(bits_dtype).view(fmt.dtype).astype(np.float64)
    np.testing.assert_array_equal(nan, np.isnan(values))
    np.testing.assert_array_equal(inf, np.isinf(values))
    finite = ~nan & ~inf
    exact = np.where(negative, -1.0, 1.0) * np.ldexp(significand.astype(np.float64), exponent)
    np.testing.assert_array_equal(exact[finite], values[finite])
