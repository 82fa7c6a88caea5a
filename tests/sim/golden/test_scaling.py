"""Adaptive power-of-two scaling (choose_scales, quantize) against exact references.

The scaled maximum of every slice must land in the top octave below the target, judged with the
exact nearest log of ``tests/exact.py``; quantised codes must be the exactly rounded codes of
``x * 2**s``.
"""

import numpy as np
import pytest
from exact import code_of_dyadic, nearest_log

from palhdl.format import PALFormat, pal8, pal16
from palhdl.sim import golden

ODD = PALFormat(int_bits=5, frac_bits=6)
#: Valid as a word format, but beyond the table-driven operations (frac_bits > 12).
NO_TABLES = PALFormat(int_bits=2, frac_bits=13)


def _float_log(x: float, fmt) -> int:
    """Exact nearest log (units of 2**-F) of a finite nonzero float."""
    numerator, denominator = abs(x).as_integer_ratio()
    return nearest_log(numerator, 1 - denominator.bit_length(), fmt.frac_bits)


def _scaling_matrix(rng):
    x = rng.standard_normal((9, 7)) * np.exp2(rng.integers(-300, 300, (9, 1)))
    x *= np.exp2(rng.integers(-40, 40, (1, 7)))
    x[2] = 0.0
    x[3] = np.nan
    x[4, 1] = np.inf
    x[5, :3] = 5e-324
    x[6, 0] = -np.inf
    x[6, 1:] = 0.0
    return x


@pytest.mark.parametrize("fmt", [pal8, pal16, ODD], ids=str)
@pytest.mark.parametrize("per", ["row", "col", "tensor"])
@pytest.mark.parametrize("target", [None, 5, -37])
def test_choose_scales_lands_in_top_octave(fmt, per, target):
    x = _scaling_matrix(np.random.default_rng(3))
    scales = golden.choose_scales(x, fmt, per=per, target=target)
    goal = fmt.log_max if target is None else target
    groups = {"row": list(x), "col": list(x.T), "tensor": [x.ravel()]}[per]
    assert scales.shape == {"row": (9,), "col": (7,), "tensor": ()}[per]
    assert scales.dtype == np.int64
    for group, scale in zip(groups, np.atleast_1d(scales), strict=True):
        finite = group[np.isfinite(group) & (group != 0)]
        if finite.size == 0:
            assert scale == 0
            continue
        top = max(_float_log(v, fmt) for v in finite) + int(scale) * fmt.units
        assert goal - fmt.units < top <= goal


def test_choose_scales_without_scaling_and_all_zero_rows():
    x = _scaling_matrix(np.random.default_rng(4))
    assert golden.choose_scales(x, pal8, per=None).shape == ()
    assert golden.choose_scales(x, pal8, per=None) == 0
    scales = golden.choose_scales(x, pal8, per="row")
    assert scales[2] == 0 and scales[3] == 0
    assert golden.choose_scales(np.zeros((2, 3)), pal16, per="tensor") == 0


@pytest.mark.parametrize("fmt", [pal8, pal16, ODD], ids=str)
@pytest.mark.parametrize("per", [None, "row", "col", "tensor"])
def test_quantize_is_exact_scaled_encoding(fmt, per):
    x = _scaling_matrix(np.random.default_rng(6))
    codes, scales = golden.quantize(x, fmt, per=per)
    np.testing.assert_array_equal(scales, golden.choose_scales(x, fmt, per=per))
    offset = np.broadcast_to(scales[:, None] if per == "row" else scales, x.shape)
    expected = np.zeros(x.shape, dtype=np.int64)
    for index, value in np.ndenumerate(x):
        if np.isnan(value):
            expected[index] = fmt.nan_code
        elif np.isinf(value):
            expected[index] = fmt.max_code | (fmt.sign_mask if value < 0 else 0)
        elif value != 0:
            numerator, denominator = abs(value).as_integer_ratio()
            exp2 = 1 - denominator.bit_length() + int(offset[index])
            expected[index] = code_of_dyadic(value < 0, numerator, exp2, fmt)
    np.testing.assert_array_equal(codes, expected)
    with np.errstate(over="ignore"):
        product = x * np.exp2(offset.astype(float))
    exact = np.isfinite(product) & (np.abs(product) >= np.finfo(np.float64).tiny)
    exact &= product / np.exp2(offset.astype(float)) == x
    assert exact.sum() > x.size // 2
    np.testing.assert_array_equal(codes[exact], golden.encode(product[exact], fmt))


def test_infinities_saturate_whatever_the_scale():
    """The guarantee is for finite values: an infinity encodes as +-max, above any target."""
    x = np.array([[1.0, -np.inf], [np.inf, 0.25]])
    codes, scales = golden.quantize(x, pal16, per="row", target=-640)
    assert scales.tolist() == [-5, -3]  # set by the finite maxima 1.0 and 0.25
    assert codes[0, 1] == pal16.sign_mask | pal16.max_code
    assert codes[1, 0] == pal16.max_code


@pytest.mark.parametrize("scaler", [golden.choose_scales, golden.quantize])
@pytest.mark.parametrize(
    ("values", "kwargs", "error", "match"),
    [
        (np.ones((2, 2)), {"per": "rows"}, ValueError, r"per must be one of None, 'tensor'"),
        (np.ones((2, 2)), {"per": 0}, ValueError, "per must be one of"),
        (np.ones(4), {"per": "row"}, ValueError, r"values must be a 2-D array, not 1-D"),
        (np.ones((2, 2, 2)), {"per": "col"}, ValueError, "values must be a 2-D array"),
        (np.ones((2, 2)), {"per": "row", "target": 3.0}, TypeError, "target must be an integer"),
        (np.ones((2, 2)), {"per": "row", "target": True}, TypeError, "target must be an integer"),
        (np.array([["a"]]), {"per": "row"}, TypeError, "values must be a real floating-point"),
    ],
)
def test_bad_scaling(scaler, values, kwargs, error, match):
    with pytest.raises(error, match=match):
        scaler(values, pal8, **kwargs)


def test_choose_scales_requires_per_keyword():
    with pytest.raises(TypeError, match="per"):
        golden.choose_scales(np.ones((2, 2)), pal8)


def test_scaling_needs_small_frac_bits():
    with pytest.raises(ValueError, match="frac_bits must be <= 12, not 13"):
        golden.choose_scales(np.ones((2, 2)), NO_TABLES, per="row")
