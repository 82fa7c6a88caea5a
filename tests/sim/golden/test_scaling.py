"""Adaptive power-of-two scaling (per tensor/row/column and per block) against exact references.

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


#: pal8's target range: 2**20 octaves of 2**3 log units either way.
_TARGET_RANGE = r"target must be in \[-8388608, 8388608\]"


def test_the_extreme_targets_scale_exactly():
    x = np.array([[1.0, -0.5]])
    for target, code in (((1 << 23), 0x7F), (-(1 << 23), pal8.zero_code)):
        codes, scales = golden.quantize(x, pal8, per="row", target=target)
        assert scales.tolist() == [target // pal8.units]  # log2(1.0) = 0: target octaves
        assert codes[0, 0] == code  # saturated to max, or flushed to zero


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
        (np.array([[b"1"]]), {"per": "row"}, TypeError, "values must be a real floating-point"),
        (np.ones((2, 2)), {"per": "row", "target": 2**62}, ValueError, _TARGET_RANGE),
        (np.ones((2, 2)), {"per": "row", "target": -(2**70)}, ValueError, _TARGET_RANGE),
        (np.ones((2, 2)), {"per": "row", "target": (1 << 23) + 1}, ValueError, _TARGET_RANGE),
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


# --- block scaling (docs/format.md section 11) ---------------------------------------------------


def _block_matrix(rng):
    """A (9, 70) operand: rows of wildly different magnitude, empty and NaN blocks."""
    x = rng.standard_t(3, (9, 70)) * np.exp2(rng.integers(-30, 30, (9, 1)))
    x[:, 32:64] *= 2.0**-9  # a quiet middle block in every row
    x[1] = 0.0
    x[2, :32] = 0.0
    x[3, 5] = np.nan
    x[4, 64:] = np.inf
    x[5, 0] = 2.0**-200  # below the E8M0 range once scaled
    x[5, 1:32] = 0.0
    x[6] *= 2.0**300  # above it
    return x


@pytest.mark.parametrize("fmt", [pal8, PALFormat(int_bits=3, frac_bits=4), ODD], ids=str)
@pytest.mark.parametrize("block_size", [1, 5, 32, 100])
@pytest.mark.parametrize("per", ["row", "col"])
def test_block_scales_land_in_top_octave(fmt, block_size, per):
    x = _block_matrix(np.random.default_rng(block_size))
    x = x if per == "row" else x.T
    scales = golden.choose_block_scales(x, fmt, per=per, block_size=block_size)
    rows = x if per == "row" else x.T
    by_row = scales if per == "row" else scales.T
    assert by_row.shape == (9, -(-70 // block_size)) and scales.dtype == np.int64
    for row, row_scales in zip(rows, by_row, strict=True):
        live = []
        for kb, scale in enumerate(row_scales):
            block = row[kb * block_size : (kb + 1) * block_size]
            finite = block[np.isfinite(block) & (block != 0)]
            if finite.size == 0:
                live.append(None)
                continue
            ideal = (fmt.log_max - max(_float_log(v, fmt) for v in finite)) // fmt.units
            assert scale == min(127, max(-127, ideal))  # E8M0 range
            live.append(int(scale))
        known = [s for s in live if s is not None]
        for kb, scale in enumerate(live):
            if scale is None:  # an empty block never sets the reference
                assert row_scales[kb] == (min(known) if known else 0)


def test_block_scales_clip_to_e8m0():
    x = _block_matrix(np.random.default_rng(0))
    scales = golden.choose_block_scales(x, pal8, per="row", block_size=32)
    assert scales[5, 0] == 127
    assert scales[6].tolist() == [-127, -127, -127]


@pytest.mark.parametrize("per", ["row", "col"])
def test_quantize_blocks_is_exact_scaled_encoding(per):
    x = _block_matrix(np.random.default_rng(8))
    x = x if per == "row" else x.T
    codes, scales = golden.quantize_blocks(x, pal8, per=per, block_size=32)
    np.testing.assert_array_equal(
        scales, golden.choose_block_scales(x, pal8, per=per, block_size=32)
    )
    for index, value in np.ndenumerate(x):
        kk = index[1] if per == "row" else index[0]
        scale = int(scales[index[0], kk // 32] if per == "row" else scales[kk // 32, index[1]])
        if np.isnan(value):
            expected = pal8.nan_code
        elif np.isinf(value):
            expected = pal8.max_code | (pal8.sign_mask if value < 0 else 0)
        elif value == 0:
            expected = 0
        else:
            numerator, denominator = abs(value).as_integer_ratio()
            exp2 = 1 - denominator.bit_length() + scale
            expected = code_of_dyadic(value < 0, numerator, exp2, pal8)
        assert codes[index] == expected


def test_block_offsets_by_hand():
    fmt = PALFormat(int_bits=3, frac_bits=4)  # 16 units per octave, offsets clamp at 255
    scales = np.array([[3, 1, 2], [-127, 127, 0]])
    offsets, reference = golden.block_offsets(scales, fmt, per="row", block_size=2, k=5)
    assert reference.tolist() == [1, -127]
    assert offsets.tolist() == [[32, 32, 0, 0, 16], [0, 0, 255, 255, 255]]
    offsets, reference = golden.block_offsets(scales.T, fmt, per="col", block_size=2, k=6)
    assert reference.tolist() == [1, -127]
    assert offsets.T.tolist() == [[32, 32, 0, 0, 16, 16], [0, 0, 255, 255, 255, 255]]


@pytest.mark.parametrize(
    ("function", "kwargs", "error", "match"),
    [
        (golden.choose_block_scales, {"per": "tensor", "block_size": 2}, ValueError, "per must"),
        (golden.choose_block_scales, {"per": "row", "block_size": 0}, ValueError, "block_size"),
        (golden.quantize_blocks, {"per": "col", "block_size": 1.5}, TypeError, "block_size"),
        (golden.quantize_blocks, {"per": "col"}, TypeError, "block_size"),
    ],
)
def test_bad_block_scaling(function, kwargs, error, match):
    with pytest.raises(error, match=match):
        function(np.ones((2, 2)), pal8, **kwargs)


@pytest.mark.parametrize(
    ("scales", "kwargs", "match"),
    [
        (np.zeros((2, 3), int), {"per": "row", "block_size": 2, "k": 4}, "2 blocks along K"),
        (np.zeros((2, 2)), {"per": "row", "block_size": 2, "k": 4}, "integer array"),
        (np.full((2, 2), 128), {"per": "col", "block_size": 2, "k": 4}, "E8M0 range"),
    ],
)
def test_bad_block_offsets(scales, kwargs, match):
    with pytest.raises(ValueError, match=match):
        golden.block_offsets(scales, pal8, **kwargs)
