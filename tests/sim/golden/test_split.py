"""The adaptive split (choose_split): candidates, its error measure and what it prefers."""

import numpy as np
import pytest

from palhdl.format import PALFormat, pal8
from palhdl.sim import golden

I3F4 = PALFormat(int_bits=3, frac_bits=4)


def test_candidates_of_a_width():
    assert [(f.int_bits, f.frac_bits) for f in golden.split_candidates(8)] == [
        (2, 5),
        (3, 4),
        (4, 3),
        (5, 2),
        (6, 1),
    ]
    assert pal8 in golden.split_candidates(8)
    assert all(f.width == 16 for f in golden.split_candidates(16))


def _sqnr(values, fmt, per, block_size):
    """Operand SQNR from the golden quantisers and decode, element by element."""
    if block_size is None:
        codes, scales = golden.quantize(values, fmt, per=per)
    else:
        codes, scales = golden.quantize_blocks(values, fmt, per=per, block_size=block_size)
    signal = noise = 0.0
    for (i, k), value in np.ndenumerate(values):
        if block_size is None:
            scale = scales[i] if per == "row" else scales[k]
        else:
            scale = scales[i, k // block_size] if per == "row" else scales[i // block_size, k]
        approx = float(golden.decode(codes[i, k], fmt)) * 2.0 ** -int(scale)
        signal += value**2
        noise += (value - approx) ** 2
    return noise / signal


@pytest.mark.parametrize("block_size", [None, 1, 5, 32])
def test_sqnr_of_a_layer_is_the_sum_of_operand_errors(block_size):
    rng = np.random.default_rng(3)
    a = rng.standard_t(3, (4, 37))
    b = rng.laplace(size=(37, 3)) * np.exp2(rng.integers(-12, 12, (37, 1)))
    choice = golden.choose_split(a, b, block_size=block_size)
    assert set(choice.sqnr_db) == set(golden.split_candidates(8))
    for fmt, sqnr in choice.sqnr_db.items():
        error = _sqnr(a, fmt, "row", block_size) + _sqnr(b, fmt, "col", block_size)
        assert sqnr == pytest.approx(-10 * np.log10(error), abs=1e-9)
    assert choice.sqnr_db[choice.fmt] == max(choice.sqnr_db.values())
    assert choice.block_size == block_size
    assert f"({choice.fmt.int_bits}.{choice.fmt.frac_bits})" in choice.report()


def test_exactly_representable_tensor_chooses_its_split():
    rng = np.random.default_rng(4)
    codes = rng.integers(I3F4.bias - 40, I3F4.mag_mask + 1, (6, 20))
    codes[:, 0] = I3F4.max_code  # every row's maximum already at the top: scale 0
    values = golden.decode(codes, I3F4)
    choice = golden.choose_split(values, block_size=None)
    assert choice.fmt == I3F4 and choice.sqnr_db[I3F4] == float("inf")


def test_range_within_a_slice_decides():
    """Spread inside each row needs integer bits; one-element blocks need none."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 64)) * np.exp2(rng.uniform(-20, 0, (8, 64)))
    assert golden.choose_split(x, block_size=None).fmt.int_bits >= 3
    assert golden.choose_split(x, block_size=1).fmt == PALFormat(int_bits=2, frac_bits=5)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.ones(3),), {}, ValueError, "a must be a 2-D array"),
        ((np.ones((2, 2)), np.ones(2)), {}, ValueError, "b must be a 2-D array"),
        ((np.ones((2, 2)),), {"width": 3}, ValueError, "width must be"),
        ((np.ones((2, 2)),), {"block_size": 0}, ValueError, "block_size must be"),
        ((np.ones((2, 2)),), {"candidates": []}, ValueError, "candidates must name"),
        ((np.ones((2, 2)),), {"candidates": ["pal8"]}, TypeError, "candidates must be a PALFormat"),
    ],
)
def test_bad_choose_split(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        golden.choose_split(*args, **kwargs)
