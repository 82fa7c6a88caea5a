"""The MX baselines (``palhdl.sim.golden.mx``) against an independent reference.

Element formats come from ``ml_dtypes`` (``float8_e4m3fn``, ``float8_e5m2``) and numpy's
``int8``; the shared scale is re-derived here from the OCP MX v1.0 conversion rule
(``floor(log2(max |V|)) - emax_elem``) with exact ``Fraction`` arithmetic, and the elements are
rounded from the exact quotient ``V / X``.
"""

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from palhdl.sim.golden.mx import (
    E8M0_NAN,
    MX_FORMATS,
    mx_decode,
    mx_element_values,
    mx_matmul,
    mx_matmul_values,
    mx_quantize,
    mx_scale_codes,
)

#: ml_dtypes element type of each MX format (None: int8 with 6 fraction bits).
DTYPES = {
    "mxint8": None,
    "mxfp8_e4m3": ml_dtypes.float8_e4m3fn,
    "mxfp8_e5m2": ml_dtypes.float8_e5m2,
}
#: emax_elem of the specification's table of concrete MX formats.
EMAX = {"mxint8": 0, "mxfp8_e4m3": 8, "mxfp8_e5m2": 15}
NAMES = sorted(MX_FORMATS)


# --- the independent reference ----------------------------------------------------------------


def _floor_log2(value: Fraction) -> int:
    """``floor(log2(value))`` of a positive Fraction, exactly."""
    e = value.numerator.bit_length() - value.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > value else e


def _ref_scale(block: list[float], name: str) -> int:
    """E8M0 code of one block, from the specification's rule."""
    if not all(math.isfinite(v) for v in block):
        return 255
    peak = max(Fraction(abs(v)) for v in block)
    if peak == 0:
        return 0
    e = _floor_log2(peak) - EMAX[name]
    return 255 if e > 127 else max(e, -127) + 127


def _ref_element(value: float, code: int, name: str) -> int:
    """Element bit pattern of ``value`` in a block with E8M0 ``code`` (not NaN)."""
    y = Fraction(value) / Fraction(2) ** (code - 127)
    dtype = DTYPES[name]
    if dtype is None:
        return min(max(round(y * 64), -128), 127) & 0xFF  # Fraction rounds half to even
    limit = Fraction(float(ml_dtypes.finfo(dtype).max))
    y = min(max(y, -limit), limit)
    # y is float32-exact unless it is far below the element's smallest subnormal; the sign of a
    # zero is the input's.
    single = np.array([math.copysign(float(y), value)], dtype=np.float32)
    return int(single.astype(dtype).view(np.uint8)[0])


def _ref_value(bits: int, name: str) -> float:
    """Value of an element bit pattern, from ml_dtypes (or int8 / 64)."""
    dtype = DTYPES[name]
    if dtype is None:
        return float(np.array([bits], dtype=np.uint8).view(np.int8)[0]) / 64
    return float(np.array([bits], dtype=np.uint8).view(dtype).astype(np.float64)[0])


def _ref_quantize(x: np.ndarray, name: str, per: str, block_size: int):
    rows = x if per == "row" else x.T
    m, k = rows.shape
    blocks = -(-k // block_size)
    elements = np.zeros((m, k), dtype=np.int64)
    scales = np.zeros((m, blocks), dtype=np.int64)
    for i in range(m):
        for kb in range(blocks):
            cols = range(kb * block_size, min(k, (kb + 1) * block_size))
            code = _ref_scale([float(rows[i, c]) for c in cols], name)
            scales[i, kb] = code
            for c in cols:
                elements[i, c] = 0 if code == 255 else _ref_element(float(rows[i, c]), code, name)
    return (elements, scales) if per == "row" else (elements.T, scales.T)


def _data(shape, seed: int) -> np.ndarray:
    """float32-exact test data: spread magnitudes, short dyadic values (ties), zeros."""
    rng = np.random.default_rng(seed)
    spread = rng.standard_normal(shape) * np.exp2(rng.integers(-12, 12, shape))
    dyadic = rng.integers(-64, 65, shape) * np.exp2(rng.integers(-8, 8, shape))
    x = np.where(rng.random(shape) < 0.5, spread, dyadic)
    x[rng.random(shape) < 0.05] = 0.0
    return x.astype(np.float32).astype(np.float64)


# --- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_format_constants_match_the_specification(name):
    fmt = MX_FORMATS[name]
    assert fmt.emax == EMAX[name]
    dtype = DTYPES[name]
    largest = 127 / 64 if dtype is None else float(ml_dtypes.finfo(dtype).max)
    assert fmt.max_value == largest
    if dtype is not None:  # emax_elem: the exponent of the largest normal value
        assert math.frexp(float(ml_dtypes.finfo(dtype).max))[1] - 1 == fmt.emax


@pytest.mark.parametrize("name", NAMES)
def test_element_values_of_every_code(name):
    codes = np.arange(256)
    got = mx_element_values(codes, MX_FORMATS[name])
    expected = np.array([_ref_value(c, name) for c in codes])
    np.testing.assert_array_equal(got, expected)  # NaNs in the same places
    numbers = ~np.isnan(expected)
    assert np.array_equal(np.signbit(got[numbers]), np.signbit(expected[numbers]))  # -0


# --- quantisation -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("per", "block_size"), [("row", 32), ("col", 32), ("row", 5), ("col", 1)])
def test_quantize_matches_the_reference(name, per, block_size):
    x = _data((7, 75), seed=block_size) if per == "row" else _data((75, 6), seed=block_size + 1)
    if per == "row":  # whole zero rows (columns of B): zero blocks
        x[2:4] = 0.0
    else:
        x[:, 2:4] = 0.0
    elements, scales = mx_quantize(x, MX_FORMATS[name], per=per, block_size=block_size)
    ref_elements, ref_scales = _ref_quantize(x, name, per, block_size)
    assert elements.dtype == np.uint8 and scales.dtype == np.uint8
    np.testing.assert_array_equal(scales, ref_scales)
    np.testing.assert_array_equal(elements, ref_elements)
    np.testing.assert_array_equal(
        mx_scale_codes(x, MX_FORMATS[name], per=per, block_size=block_size), ref_scales
    )


@pytest.mark.parametrize("name", NAMES)
def test_decode_is_element_times_scale(name):
    fmt = MX_FORMATS[name]
    x = _data((5, 40), seed=3)
    x[1, 33] = np.nan  # the short last block of row 1 becomes NaN
    elements, scales = mx_quantize(x, fmt, per="row", block_size=16)
    assert scales[1, 2] == E8M0_NAN and (elements[1, 32:] == 0).all()
    got = mx_decode(elements, scales, fmt, per="row", block_size=16)
    for (i, j), value in np.ndenumerate(got):
        code = int(scales[i, j // 16])
        if code == E8M0_NAN:
            assert math.isnan(value)
        else:
            expected = Fraction(_ref_value(int(elements[i, j]), name)) * Fraction(2) ** (code - 127)
            assert Fraction(float(value)) == expected
    # Transposed operands decode the same way.
    t_elements, t_scales = mx_quantize(x.T, fmt, per="col", block_size=16)
    np.testing.assert_array_equal(
        mx_decode(t_elements, t_scales, fmt, per="col", block_size=16), got.T
    )


def test_edge_cases_by_hand():
    e4m3, e5m2, int8 = MX_FORMATS["mxfp8_e4m3"], MX_FORMATS["mxfp8_e5m2"], MX_FORMATS["mxint8"]

    def one_block(values, fmt):
        elements, scales = mx_quantize(np.array([values]), fmt, per="row", block_size=len(values))
        return [int(e) for e in elements[0]], int(scales[0, 0])

    # Block max 1.75 = 1.75 * 2**0: e = 0 - 8, so 1.75 -> 448 (0x7E, the largest finite), exact.
    # 1.8125 -> 464, the tie between 448 and 480 (not finite in E4M3fn): saturates to 448.
    # 1.0 + 1/16 -> 272 = tie between 256 and 288 -> 256 (even); 1.1875 -> 304 -> 320 (even).
    assert one_block([1.75, 1.0 + 1 / 16, 1.1875], e4m3) == ([0x7E, 0x78, 0x7A], 119)
    assert one_block([1.8125, -1.99], e4m3) == ([0x7E, 0xFE], 119)
    # E5M2: block max 1.99 -> 2**15 * 1.99 rounds to 65536 (inf range): saturates to 57344.
    assert one_block([1.99, 0.0], e5m2) == ([0x7B, 0x00], 112)
    # INT8: 1.9921875 * 64 = 127.5 rounds to even 128, saturates to 127; -127.5 rounds to -128
    # (two's complement -2, representable); 0.5 * 64 + 0.5 ties to 32.
    assert one_block([1.9921875, -1.9921875, 0.5078125], int8) == ([0x7F, 0x80, 32], 127)
    # Zero blocks get the smallest scale; negative zero keeps its sign in FP8, not in INT8.
    assert one_block([0.0, -0.0], e4m3) == ([0x00, 0x80], 0)
    assert one_block([0.0, -0.0], int8) == ([0, 0], 0)
    # A tiny negative value rounds to -0 in FP8.
    assert one_block([1.0, -(2.0**-20)], e4m3) == ([0x78, 0x80], 119)
    # E8M0 range: 2**135 fits (e = 127), 2**136 does not (NaN); 2**-140 is raised to -127.
    assert one_block([2.0**135], e4m3)[1] == 254
    assert one_block([2.0**136], e4m3) == ([0], E8M0_NAN)
    assert one_block([2.0**-140, 2.0**-136], e4m3) == ([0x00, 0x01], 0)  # 2**-9: subnormal
    # NaN or an infinity makes the block's scale NaN and its elements 0.
    for bad in (np.nan, np.inf, -np.inf):
        assert one_block([1.0, bad], e5m2) == ([0, 0], E8M0_NAN)


def test_nan_blocks_stay_in_their_block():
    fmt = MX_FORMATS["mxint8"]
    x = np.ones((2, 10))
    x[0, 9] = np.inf
    elements, scales = mx_quantize(x, fmt, per="row", block_size=4)
    assert scales.tolist() == [[127, 127, E8M0_NAN], [127, 127, 127]]
    decoded = mx_decode(elements, scales, fmt, per="row", block_size=4)
    assert np.isnan(decoded[0, 8:]).all()
    assert (decoded[0, :8] == 1).all() and (decoded[1] == 1).all()


# --- matmul -----------------------------------------------------------------------------------


def _ref_matmul(a_el, a_sc, b_el, b_sc, name, block_size):
    """Exact block dot products, scaled, added in block order in float64."""
    m, k = a_el.shape
    n = b_el.shape[1]
    result = np.zeros((m, n))
    for i in range(m):
        for j in range(n):
            total = 0.0
            for kb in range(a_sc.shape[1]):
                if E8M0_NAN in (a_sc[i, kb], b_sc[kb, j]):
                    total = math.nan
                    continue
                dot = sum(
                    Fraction(_ref_value(int(a_el[i, c]), name))
                    * Fraction(_ref_value(int(b_el[c, j]), name))
                    for c in range(kb * block_size, min(k, (kb + 1) * block_size))
                )
                total += float(dot * Fraction(2) ** (int(a_sc[i, kb]) + int(b_sc[kb, j]) - 254))
            result[i, j] = total
    return result


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("block_size", [32, 7, 1])
def test_matmul_matches_exact_block_dots(name, block_size):
    fmt = MX_FORMATS[name]
    a = _data((4, 45), seed=10 + block_size)
    b = _data((45, 3), seed=20 + block_size)
    a[3, 40] = np.nan  # row 3's last block is NaN
    a_el, a_sc = mx_quantize(a, fmt, per="row", block_size=block_size)
    b_el, b_sc = mx_quantize(b, fmt, per="col", block_size=block_size)
    got = mx_matmul(a_el, a_sc, b_el, b_sc, fmt, block_size=block_size)
    expected = _ref_matmul(a_el, a_sc, b_el, b_sc, name, block_size)
    assert np.isnan(got[3]).all() and not np.isnan(got[:3]).any()
    if name == "mxfp8_e5m2":
        # E5M2 block dots may round in float64: within K ulps of the sum of |products|.
        decoded_a = mx_decode(a_el, a_sc, fmt, per="row", block_size=block_size)
        decoded_b = mx_decode(b_el, b_sc, fmt, per="col", block_size=block_size)
        bound = (np.abs(decoded_a[:3]) @ np.abs(decoded_b)) * 45 * 2.0**-52
        assert np.all(np.abs(got[:3] - expected[:3]) <= bound)
    else:
        np.testing.assert_array_equal(got, expected)


def test_matmul_values_multiplies_the_decoded_operands():
    fmt = MX_FORMATS["mxfp8_e4m3"]
    rng = np.random.default_rng(4)
    a = rng.standard_normal((6, 70))
    b = rng.laplace(size=(70, 5))
    qa = mx_decode(*mx_quantize(a, fmt, per="row"), fmt, per="row")
    qb = mx_decode(*mx_quantize(b, fmt, per="col"), fmt, per="col")
    got = mx_matmul_values(a, b, fmt)
    bound = np.abs(qa) @ np.abs(qb) * 70 * 2.0**-52
    assert np.all(np.abs(got - qa @ qb) <= bound)
    # And MX E4M3 is an 8-bit format: about 30 dB on Gaussian operands.
    reference = a @ b
    sqnr = 10 * np.log10(np.sum(reference**2) / np.sum((got - reference) ** 2))
    assert 25 < sqnr < 40


# --- arguments --------------------------------------------------------------------------------


INT8 = MX_FORMATS["mxint8"]


def _zeros(*shape):
    return np.zeros(shape, dtype=np.uint8)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: mx_quantize(np.ones((2, 2)), "mxint8", per="row"), TypeError, "fmt must be a"),
        (lambda: mx_quantize(np.ones(3), INT8, per="row"), ValueError, "values must be a 2-D"),
        (
            lambda: mx_quantize(np.ones((2, 2)), INT8, per="tensor"),
            ValueError,
            "per must be one of 'row', 'col'",
        ),
        (
            lambda: mx_quantize(np.ones((2, 2)), INT8, per="row", block_size=0),
            ValueError,
            r"block_size must be in \[1, 1073741824\], not 0",
        ),
        (
            lambda: mx_quantize(np.ones((2, 2)), INT8, per="row", block_size=2.0),
            TypeError,
            "block_size must be an integer",
        ),
        (lambda: mx_quantize(np.array([["a"]]), INT8, per="row"), TypeError, "values must be a"),
        (lambda: mx_element_values([256], INT8), ValueError, "elements must hold 8-bit patterns"),
        (lambda: mx_element_values([1.0], INT8), TypeError, "elements must be an integer array"),
        (
            lambda: mx_decode(_zeros(2, 40), _zeros(2, 1), INT8, per="row"),
            ValueError,
            r"scales must be an integer array of shape \(2, 2\)",
        ),
        (
            lambda: mx_matmul(_zeros(2, 3), _zeros(2, 1), _zeros(4, 2), _zeros(1, 2), INT8),
            ValueError,
            r"a and b must have shapes \(M, K\) and \(K, N\)",
        ),
        (
            lambda: mx_matmul(_zeros(2, 3), _zeros(2, 1), _zeros(3, 2), _zeros(2, 2), INT8),
            ValueError,
            r"b_scales must be an integer array of shape \(1, 2\)",
        ),
        (
            lambda: mx_matmul(_zeros(2, 3), np.full((2, 1), 256), _zeros(3, 2), _zeros(1, 2), INT8),
            ValueError,
            "a_scales must hold 8-bit patterns",
        ),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
