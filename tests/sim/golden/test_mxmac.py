"""The block-scaled MX MAC reference (``palhdl.sim.golden.mxmac``) against exact arithmetic.

Element values come from ``ml_dtypes`` (``float8_e4m3fn``, ``float8_e5m2``) and Python's
two's complement for MXINT8; products are ``Fraction`` s scaled by ``2**-offset`` and placed in
the window with integer arithmetic (round half away from zero, the term-overflow rule, wrap or
saturate), independently of the code under test.
"""

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from palhdl.sim.golden.mx import MX_FORMATS
from palhdl.sim.golden.mxmac import MX_OFFSET_MAX, mx_mac, mx_mac_terms

DTYPES = {"mxfp8_e4m3": ml_dtypes.float8_e4m3fn, "mxfp8_e5m2": ml_dtypes.float8_e5m2}
COST_WINDOW = {"acc_bits": 32, "acc_frac_bits": 12, "term_bits": 14, "saturate": False}
NARROW_WINDOW = {"acc_bits": 20, "acc_frac_bits": 8, "term_bits": 10, "saturate": True}


def element_value(name: str, code: int) -> float | Fraction:
    """The element's value: a ``Fraction``, or a float NaN/infinity."""
    if name == "mxint8":
        return Fraction(code - 256 if code >= 128 else code, 64)
    value = float(np.array(code, dtype=np.uint8).view(DTYPES[name]))
    return value if not math.isfinite(value) else Fraction(value)


def expected_term(x, y, offset: int, window: dict) -> tuple[int, bool, bool, bool]:
    """``(term, nan, infinite, overflow)`` of one product, from exact arithmetic."""
    finite = isinstance(x, Fraction) and isinstance(y, Fraction)
    if not finite:
        nan = (
            (isinstance(x, float) and math.isnan(x))
            or (isinstance(y, float) and math.isnan(y))
            or x == 0
            or y == 0
        )
        return 0, nan, not nan, False
    exact = abs(x * y) * Fraction(2) ** (window["acc_frac_bits"] - offset)
    magnitude = (2 * exact.numerator + exact.denominator) // (2 * exact.denominator)
    acc_max = (1 << (window["acc_bits"] - 1)) - 1
    if x * y != 0 and magnitude > (1 << window["term_bits"]) - 1:
        return (acc_max if window["saturate"] else 0) * (1 if x * y > 0 else -1), False, False, True
    return magnitude if x * y > 0 else -magnitude, False, False, False


def check_terms(name: str, window: dict, offset: int, a, b) -> np.ndarray:
    """Compare :func:`mx_mac_terms` of the pairs with exact arithmetic; return the terms."""
    values = [element_value(name, code) for code in range(256)]
    term, nan, pos_inf, neg_inf, overflow = mx_mac_terms(
        a, b, MX_FORMATS[name], offset=offset, **window
    )
    expected = [
        expected_term(values[x], values[y], offset, window) for x, y in zip(a, b, strict=True)
    ]
    e_term, e_nan, e_inf, e_overflow = (np.array(column) for column in zip(*expected, strict=True))
    np.testing.assert_array_equal(term, e_term)
    np.testing.assert_array_equal(nan, e_nan)
    np.testing.assert_array_equal(pos_inf | neg_inf, e_inf)
    np.testing.assert_array_equal(overflow, e_overflow)
    return term


NAMES = ["mxint8", "mxfp8_e4m3", "mxfp8_e5m2"]
OFFSETS = [0, 1, 13, 127, 2 * MX_OFFSET_MAX]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("window", [COST_WINDOW, NARROW_WINDOW])
@pytest.mark.parametrize("offset", OFFSETS)
def test_terms_every_pair_against_fractions(name, window, offset):
    a, b = (v.ravel() for v in np.meshgrid(np.arange(256), np.arange(256)))
    term = check_terms(name, window, offset, a, b)
    if offset in (0, 2 * MX_OFFSET_MAX):
        assert term.any() == (offset == 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("window", [COST_WINDOW, NARROW_WINDOW])
def test_terms_sampled_pairs_and_offsets_against_fractions(name, window):
    rng = np.random.default_rng(len(name) + window["acc_bits"])
    for offset in [*OFFSETS, *rng.integers(0, 2 * MX_OFFSET_MAX, size=4)]:
        a, b = rng.integers(0, 256, size=(2, 1500))
        check_terms(name, window, int(offset), a, b)


def test_offsets_shift_the_rounding_point():
    fmt = MX_FORMATS["mxint8"]
    # 1/64 * 1/64 = 2**-12 = one LSB at offset 0; half an LSB rounds away; a quarter to 0.
    term, *_ = mx_mac_terms(1, 1, fmt, offset=np.array([0, 1, 2]), **COST_WINDOW)
    np.testing.assert_array_equal(term, [1, 1, 0])
    # -3/64 * 1/64 at offset 1 is -1.5 LSB: -2 (half away from zero).
    term, *_ = mx_mac_terms(0xFD, 1, fmt, offset=1, **COST_WINDOW)
    assert term == -2
    # (-2) * (-2) = 2**14 LSBs: the one MXINT8 product that overflows a 14-bit term.
    term, *_, overflow = mx_mac_terms(0x80, 0x80, fmt, offset=[0, 1], **COST_WINDOW)
    np.testing.assert_array_equal(term, [0, 8192])
    np.testing.assert_array_equal(overflow, [True, False])


@pytest.mark.parametrize("name", ["mxint8", "mxfp8_e4m3", "mxfp8_e5m2"])
@pytest.mark.parametrize("window", [COST_WINDOW, NARROW_WINDOW])
def test_dot_products_against_exact_sums(name, window):
    rng = np.random.default_rng(len(name) + window["acc_bits"])
    rows, k = 60, 24
    a = rng.integers(0, 256, size=(rows, k))
    b = rng.integers(0, 256, size=(rows, k))
    a_offsets = rng.integers(0, 6, size=(rows, k))
    b_offsets = rng.integers(0, 6, size=(rows, k))
    a_offsets[0] = MX_OFFSET_MAX
    result = mx_mac(a, b, MX_FORMATS[name], a_offsets=a_offsets, b_offsets=b_offsets, **window)
    values = [element_value(name, code) for code in range(256)]
    bits = window["acc_bits"]
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    for row in range(rows):
        acc, nan, overflow, infinities = 0, False, False, set()
        for x, y, oa, ob in zip(a[row], b[row], a_offsets[row], b_offsets[row], strict=True):
            term, t_nan, t_inf, t_overflow = expected_term(
                values[x], values[y], int(oa + ob), window
            )
            if t_inf:
                infinities.add(math.copysign(1, values[x] * values[y]))
            total = acc + term
            overflow |= t_overflow or not low <= total <= high
            if window["saturate"]:
                acc = min(max(total, -high), high)
            else:
                acc = (total - low) % (1 << bits) + low
            nan |= t_nan
        assert result.acc[row] == acc, row
        assert result.overflow[row] == overflow, row
        assert result.pos_inf[row] == (1 in infinities), row
        assert result.neg_inf[row] == (-1 in infinities), row
        assert result.nan[row] == (nan or len(infinities) == 2), row
    assert (result.acc != 0).any()


def test_bad_arguments():
    fmt = MX_FORMATS["mxfp8_e4m3"]
    with pytest.raises(ValueError, match=r"^offset must be in \[0, 510\], not \[511, 511\]$"):
        mx_mac_terms(1, 1, fmt, offset=511, **COST_WINDOW)
    with pytest.raises(ValueError, match=r"^a_offsets must be in \[0, 255\]"):
        mx_mac([1], [1], fmt, a_offsets=256, **COST_WINDOW)
    with pytest.raises(TypeError, match=r"^fmt must be a MXFormat"):
        mx_mac_terms(1, 1, "mxint8", **COST_WINDOW)
    with pytest.raises(ValueError, match="same shape"):
        mx_mac([1, 2], [1], fmt, **COST_WINDOW)
    with pytest.raises(ValueError, match="term_bits"):
        mx_mac([1], [1], fmt, acc_bits=16, acc_frac_bits=4, term_bits=16)
