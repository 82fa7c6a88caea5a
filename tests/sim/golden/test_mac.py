"""Linear accumulation (mac_terms, matmul, dot, readouts) against exact rational references.

The reference follows the accumulation rule of ``docs/format.md`` with ``fractions.Fraction``:
a product ``P = La + Lb`` contributes ``m * 2**(q - W)`` (``q = floor(P / 2**F)``,
``m = round(2**(r / 2**F) * 2**W)`` from ``tests/exact.py``), expressed in accumulator LSBs
and rounded half away from zero, clamped to ``acc_max`` (flagging overflow), and summed in
``k`` order with each partial sum clamped to ``[-acc_max, acc_max]``.
"""

import math
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
from exact import FLOAT32, FLOAT64, code_of_dyadic, ieee_round, mantissa_round, split

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.sim import golden

ODD = PALFormat(int_bits=5, frac_bits=6)

CONFIGS = {
    "pal8-exact": MacConfig(pal8),
    "pal8-narrow": MacConfig(pal8, acc_bits=16, acc_frac_bits=4),
    "pal8-w1": MacConfig(pal8, mantissa_bits=1),
    "pal16-default": MacConfig(pal16),
    "pal16-w60": MacConfig(pal16, mantissa_bits=60, acc_bits=62, acc_frac_bits=30),
    "odd-w9-negfrac": MacConfig(ODD, mantissa_bits=9, acc_bits=40, acc_frac_bits=-3),
    "pal8-window": MacConfig(pal8, acc_bits=20, acc_frac_bits=8, term_bits=12),
    "pal8-wrap": MacConfig(pal8, acc_bits=16, acc_frac_bits=6, term_bits=11, saturate=False),
    "odd-wrap": MacConfig(ODD, mantissa_bits=8, acc_bits=30, acc_frac_bits=10, saturate=False),
}


# --- reference ----------------------------------------------------------------------------------


@cache
def _term_magnitude(log: int, config: MacConfig) -> tuple[int, bool]:
    """``(|term|, overflow)`` of a product with log magnitude ``log`` (units of 2**-F)."""
    fmt = config.fmt
    octave, r = divmod(log, fmt.units)
    mantissa = mantissa_round(r, fmt.frac_bits, config.mantissa_bits)
    in_lsbs = mantissa * Fraction(2) ** (octave - config.mantissa_bits + config.acc_frac_bits)
    magnitude = math.floor(in_lsbs + Fraction(1, 2))
    if magnitude < 2**config.term_bits:
        return magnitude, False
    return (2 ** (config.acc_bits - 1) - 1 if config.saturate else 0), True


def ref_terms(a, b, config: MacConfig, offset=0):
    """Reference ``(term, nan, overflow)`` arrays for broadcast code arrays ``a``, ``b``.

    ``offset`` lowers each product's log; a product whose biased log sum ``Ea + Eb - offset``
    goes negative is flushed to zero (``docs/format.md`` section 11)."""
    a, b, offset = np.broadcast_arrays(np.asarray(a), np.asarray(b), np.asarray(offset))
    na, la, za, qa = split(a, config.fmt)
    nb, lb, zb, qb = split(b, config.fmt)
    live = ~(za | zb | qa | qb)
    term = np.zeros(a.shape, dtype=np.int64)
    overflow = np.zeros(a.shape, dtype=bool)
    for index in zip(*np.nonzero(live), strict=True):
        log = int(la[index]) + int(lb[index]) - int(offset[index])
        if log < -2 * config.fmt.bias:
            continue
        magnitude, over = _term_magnitude(log, config)
        term[index] = -magnitude if na[index] != nb[index] else magnitude
        overflow[index] = over
    return term, qa | qb, overflow


def ref_matmul(a, b, config: MacConfig, a_offsets=None, b_offsets=None):
    """Reference ``(acc, nan, overflow)`` of ``a @ b`` with in-order saturating (or
    two's-complement wrapping) accumulation; products lowered by ``a_offsets[i, k] +
    b_offsets[k, j]`` log units (default none)."""
    half = 2 ** (config.acc_bits - 1)
    m, n = a.shape[0], b.shape[1]
    a_offsets = np.zeros(a.shape, int) if a_offsets is None else a_offsets
    b_offsets = np.zeros(b.shape, int) if b_offsets is None else b_offsets
    acc = np.zeros((m, n), dtype=np.int64)
    nan = np.zeros((m, n), dtype=bool)
    overflow = np.zeros((m, n), dtype=bool)
    for i in range(m):
        for j in range(n):
            offset = a_offsets[i] + b_offsets[:, j]
            terms, nans, overs = ref_terms(a[i], b[:, j], config, offset)
            total, flag = 0, False
            for t, over in zip(terms.tolist(), overs.tolist(), strict=True):
                total += t
                if config.saturate:
                    flag |= over or abs(total) > half - 1
                    total = max(1 - half, min(half - 1, total))
                else:
                    flag |= over or not -half <= total < half
                    total = (total + half) % (2 * half) - half
            acc[i, j], nan[i, j], overflow[i, j] = total, nans.any(), flag
    return acc, nan, overflow


def ref_readouts(acc, nan, scale_exp, config: MacConfig, out_fmt):
    """Reference float32 bits, float64 bits and ``out_fmt`` codes of accumulator values."""
    f32, f64, pal = [], [], []
    for value, is_nan, scale in zip(acc.ravel(), nan.ravel(), scale_exp.ravel(), strict=True):
        value, scale = int(value), int(scale)
        exp2 = -(config.acc_frac_bits + scale)
        if is_nan:
            f32.append(0x7FC00000)
            f64.append(0x7FF8000000000000)
            pal.append(out_fmt.nan_code)
        elif value == 0:
            f32.append(0)
            f64.append(0)
            pal.append(0)
        else:
            f32.append(ieee_round(abs(value), exp2, FLOAT32) | (value < 0) << 31)
            f64.append(ieee_round(abs(value), exp2, FLOAT64) | (value < 0) << 63)
            pal.append(code_of_dyadic(value < 0, abs(value), exp2, out_fmt))
    shape = acc.shape
    return (
        np.array(f32, dtype=np.uint32).reshape(shape),
        np.array(f64, dtype=np.uint64).reshape(shape),
        np.array(pal, dtype=np.int64).reshape(shape),
    )


# --- operands -----------------------------------------------------------------------------------


def _operands(config: MacConfig, shape, rng, spread_octaves=None):
    """Codes around 1.0 (``spread_octaves`` either way, default: the whole range), with zeros,
    NaNs and +-max mixed in."""
    fmt = config.fmt
    if spread_octaves is None:
        mags = rng.integers(1, fmt.mag_mask + 1, shape)
    else:
        half = spread_octaves * fmt.units
        mags = np.clip(fmt.bias + rng.integers(-half, half + 1, shape), 1, fmt.mag_mask)
    codes = mags | rng.integers(0, 2, shape) * fmt.sign_mask
    roll = rng.random(shape)
    codes = np.where(roll < 0.06, fmt.zero_code, codes)
    codes = np.where((roll >= 0.06) & (roll < 0.08), fmt.nan_code, codes)
    return np.where((roll >= 0.08) & (roll < 0.10), fmt.max_code, codes)


def _spread(config: MacConfig):
    """Octave spread that keeps the narrow windows busy (some rounding, some saturation)."""
    return None if config.fmt.int_bits <= 5 else 12


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["pal8-exact", "pal8-narrow", "pal8-w1", "pal8-window", "pal8-wrap"]
)
def test_mac_terms_all_pal8_pairs(name):
    config = CONFIGS[name]
    codes = np.arange(256)
    a, b = np.repeat(codes, 256), np.tile(codes, 256)
    term, nan, overflow = golden.mac_terms(a, b, config)
    ref_term, ref_nan, ref_overflow = ref_terms(a, b, config)
    np.testing.assert_array_equal(term, ref_term)
    np.testing.assert_array_equal(nan, ref_nan)
    np.testing.assert_array_equal(overflow, ref_overflow)
    if not config.is_lossless:
        assert ref_overflow.any()
        assert np.any((ref_term == 0) & ~nan & (a % 128 != 0) & (b % 128 != 0))


@pytest.mark.parametrize("name", CONFIGS)
def test_matmul_against_rational_reference(name):
    config = CONFIGS[name]
    rng = np.random.default_rng(sorted(CONFIGS).index(name))
    overflowed = False
    for k in (1, 2, 7, 33):
        a = _operands(config, (3, k), rng, _spread(config))
        b = _operands(config, (k, 4), rng, _spread(config))
        a_scales = rng.integers(-60, 61, 3)
        b_scales = rng.integers(-60, 61, 4)
        result = golden.matmul(a, b, config, a_scales=a_scales, b_scales=b_scales)
        acc, nan, overflow = ref_matmul(a, b, config)
        np.testing.assert_array_equal(result.acc, acc)
        np.testing.assert_array_equal(result.nan, nan)
        np.testing.assert_array_equal(result.overflow, overflow)
        scale_exp = a_scales[:, None] + b_scales[None, :]
        np.testing.assert_array_equal(result.scale_exp, scale_exp)
        f32, f64, pal = ref_readouts(acc, nan, scale_exp, config, config.fmt)
        np.testing.assert_array_equal(result.to_float32_bits(), f32)
        np.testing.assert_array_equal(result.to_float32().view(np.uint32), f32)
        np.testing.assert_array_equal(result.to_float64().view(np.uint64), f64)
        np.testing.assert_array_equal(result.to_pal(), pal)
        overflowed |= overflow.any()
    assert overflowed == (config.max_exact_k < 33)


@pytest.mark.parametrize("out_fmt", [pal8, pal16, ODD], ids=str)
def test_to_pal_and_float32_readouts_over_wide_scales(out_fmt):
    """Readouts of raw accumulators with scales that push float32 into subnormals, overflow and
    underflow, rounded to another PAL format."""
    config = CONFIGS["pal16-default"]
    rng = np.random.default_rng(out_fmt.width)
    lengths = rng.integers(1, config.acc_bits, 400)
    acc = (rng.integers(0, 1 << 46, 400) >> (47 - lengths)) * rng.choice([-1, 1], 400)
    acc = np.r_[acc, 0, 1, -1, config.acc_max, -config.acc_max]
    scale_exp = rng.integers(-180, 181, acc.size)
    nan = rng.random(acc.size) < 0.02
    result = golden.MacResult(acc, nan, np.zeros(acc.size, bool), scale_exp, config)
    f32, f64, pal = ref_readouts(acc, nan, scale_exp, config, out_fmt)
    np.testing.assert_array_equal(result.to_float32_bits(), f32)
    np.testing.assert_array_equal(result.to_float64().view(np.uint64), f64)
    np.testing.assert_array_equal(result.to_pal(out_fmt), pal)
    assert np.any((f32 & 0x7F800000) == 0x7F800000) and np.any((f32 != 0) & (f32 < 0x800000))


def test_sticky_overflow_survives_cancellation():
    config = CONFIGS["pal8-narrow"]
    big = pal8.bias + 6 * pal8.units  # 2**6: its square, 2**16 LSBs, overflows the window
    one = pal8.bias
    a = np.array([[big, one, one, one]])
    b = np.array([[big], [pal8.sign_mask | big], [0], [pal8.nan_code]])
    result = golden.matmul(a, b, config)
    acc, nan, overflow = ref_matmul(a, b, config)
    assert overflow[0, 0] and nan[0, 0] and abs(acc[0, 0]) < config.acc_max
    np.testing.assert_array_equal(result.acc, acc)
    np.testing.assert_array_equal(result.overflow, overflow)
    np.testing.assert_array_equal(result.nan, nan)


def test_wrapping_accumulator_wraps_and_drops_overflowing_terms():
    config = CONFIGS["pal8-wrap"]  # 16 bits, 6 fraction bits, terms below 2**11
    assert (config.acc_min, config.acc_max, config.term_max) == (-(2**15), 2**15 - 1, 2**11 - 1)
    four = pal8.bias + 2 * pal8.units  # 4 * 4 = 2**4 -> 2**10 LSBs, a term that fits
    eight = pal8.bias + 3 * pal8.units  # 8 * 8 = 2**6 -> 2**12 LSBs, a term that overflows
    a = np.array([[four] * 32 + [eight]])
    b = np.full((33, 1), four)
    b[32] = eight
    # 32 terms of 2**10 reach 2**15: one past acc_max, so the sum wraps to -2**15; the last
    # term is dropped.
    result = golden.matmul(a, b, config)
    assert result.acc[0, 0] == -(2**15) and result.overflow[0, 0]
    single = golden.matmul(a[:, 32:], b[32:], config)
    assert single.acc[0, 0] == 0 and single.overflow[0, 0]
    fits = golden.matmul(a[:, :31], b[:31], config)
    assert fits.acc[0, 0] == 31 * 2**10 and not fits.overflow[0, 0]


@pytest.mark.parametrize("name", ["pal8-exact", "pal16-default", "odd-w9-negfrac"])
def test_order_independence_without_saturation(name):
    config = CONFIGS[name]
    rng = np.random.default_rng(5)
    spread = 4 if config.fmt.int_bits > 5 else None
    a = _operands(config, (4, 64), rng, spread)
    b = _operands(config, (64, 5), rng, spread)
    a = np.where(a == config.fmt.max_code, config.fmt.bias, a)
    b = np.where(b == config.fmt.max_code, config.fmt.bias, b)
    first = golden.matmul(a, b, config)
    assert not first.overflow.any()
    for _ in range(3):
        order = rng.permutation(64)
        again = golden.matmul(a[:, order], b[order], config)
        np.testing.assert_array_equal(again.acc, first.acc)
        np.testing.assert_array_equal(again.nan, first.nan)


@pytest.mark.parametrize("name", ["pal8-exact", "pal8-narrow", "pal16-default"])
def test_dot_matches_reference_and_matmul(name):
    config = CONFIGS[name]
    rng = np.random.default_rng(11)
    for k in (1, 5, 40):
        a = _operands(config, (k,), rng, _spread(config))
        b = _operands(config, (k,), rng, _spread(config))
        result = golden.dot(a, b, config)
        acc, nan, overflow = ref_matmul(a[None, :], b[:, None], config)
        assert result.acc.shape == ()
        assert (result.acc, result.nan, result.overflow) == (acc[0, 0], nan[0, 0], overflow[0, 0])
        f32, _, pal = ref_readouts(acc, nan, np.zeros((1, 1), np.int64), config, config.fmt)
        assert result.to_float32_bits() == f32[0, 0]
        assert result.to_pal() == pal[0, 0]


@pytest.mark.parametrize(("fmt", "bound"), [(pal8, 0.08), (pal16, 0.008)], ids=str)
def test_matmul_values_accuracy_against_float64(fmt, bound):
    """Loose sanity bound; the measured error is printed (run with ``-s``)."""
    rng = np.random.default_rng(2024)
    a = rng.standard_normal((24, 96)) * 1e3
    b = rng.standard_normal((96, 16)) * 1e-5
    exact = a @ b
    got = golden.matmul_values(a, b, MacConfig(fmt)).to_float64()
    relative = np.linalg.norm(got - exact) / np.linalg.norm(exact)
    print(f"{fmt}: relative Frobenius error vs float64 matmul = {relative:.3e}")
    assert relative < bound


def test_matmul_values_is_quantize_then_matmul():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((5, 12)) * 1e-30
    b = rng.standard_normal((12, 3)) * 1e12
    config = CONFIGS["pal8-narrow"]
    target = config.scale_target(12)
    a_codes, a_scales = golden.quantize(a, pal8, per="row", target=target)
    b_codes, b_scales = golden.quantize(b, pal8, per="col", target=target)
    expected = golden.matmul(a_codes, b_codes, config, a_scales=a_scales, b_scales=b_scales)
    got = golden.matmul_values(a, b, config)
    np.testing.assert_array_equal(got.acc, expected.acc)
    np.testing.assert_array_equal(got.scale_exp, expected.scale_exp)
    assert not got.overflow.any()
    plain = golden.matmul_values(a, b, config, adaptive=False)
    assert np.all(plain.scale_exp == 0)
    assert np.all(plain.acc == 0)  # unscaled, every product is far below the window's LSB


def test_products_of_max_overflow_just_after_max_exact_k():
    """``max_exact_k`` products of ``+max * +max`` fit exactly, one more saturates (pal8's
    default: 4854 terms of ``108 * 2**31``)."""
    config = CONFIGS["pal8-exact"]
    k = config.max_exact_k
    term, overflow = _term_magnitude(2 * pal8.log_max, config)
    assert not overflow
    assert k * term <= config.acc_max < (k + 1) * term  # independent integer sums
    a = np.full((2, k + 1), pal8.max_code)
    a[0, k] = pal8.zero_code  # row 0: k products, row 1: k + 1 products
    result = golden.matmul(a, np.full((k + 1, 1), pal8.max_code), config)
    assert result.acc[:, 0].tolist() == [k * term, config.acc_max]
    assert result.overflow[:, 0].tolist() == [False, True]


def test_infinite_operand_overflows_a_scaled_pal16_window():
    """Adaptive scaling keeps finite operands inside pal16's 48-bit window; an infinity still
    encodes as +-max and its products overflow."""
    config = CONFIGS["pal16-default"]
    a = np.full((2, 8), 3.0)
    a[1, 3] = np.inf
    b = np.full((8, 2), 0.5)
    result = golden.matmul_values(a, b, config)
    assert result.overflow.tolist() == [[False, False], [True, True]]


# --- argument checks ----------------------------------------------------------------------------


# --- block scaling (docs/format.md section 11) ---------------------------------------------------


def _ref_offsets(scales, per: str, block_size: int, fmt):
    """Per-element offsets (unclamped) and references, straight from the definition."""
    rows = scales if per == "row" else scales.T
    reference = rows.min(axis=1)
    k = rows.shape[1] * block_size
    offsets = np.array(
        [
            [(row[kk // block_size] - ref) * fmt.units for kk in range(k)]
            for row, ref in zip(rows, reference, strict=True)
        ]
    )
    return (offsets if per == "row" else offsets.T), reference


@pytest.mark.parametrize("name", ["pal8-exact", "pal8-narrow", "pal8-window", "pal8-wrap"])
def test_mac_terms_with_offsets_all_pal8_pairs(name):
    config = CONFIGS[name]
    codes = np.arange(256)
    a, b = np.repeat(codes, 256), np.tile(codes, 256)
    rng = np.random.default_rng(5)
    s = (a & 127) + (b & 127)
    offset = np.clip(s + rng.integers(-3, 4, s.size), 0, None)  # around the flush edge
    offset = np.where(rng.random(s.size) < 0.5, rng.integers(0, 300, s.size), offset)
    term, nan, overflow = golden.mac_terms(a, b, config, offset=offset)
    ref_term, ref_nan, ref_overflow = ref_terms(a, b, config, offset)
    np.testing.assert_array_equal(term, ref_term)
    np.testing.assert_array_equal(nan, ref_nan)
    np.testing.assert_array_equal(overflow, ref_overflow)
    live = (a % 128 != 0) & (b % 128 != 0)
    if config.is_lossless:
        assert np.any(live & (offset == s) & (term != 0))  # S' = 0 still has a term
    assert np.any(live & (offset == s + 1) & (term == 0))  # S' = -1 is flushed


@pytest.mark.parametrize("name", ["pal8-exact", "pal8-narrow", "pal8-wrap", "odd-wrap"])
@pytest.mark.parametrize("block_size", [1, 4, 5, 32])
def test_block_matmul_against_reference(name, block_size):
    config = CONFIGS[name]
    fmt = config.fmt
    rng = np.random.default_rng(block_size)
    for k in (1, 7, 33):
        blocks = -(-k // block_size)
        a = _operands(config, (3, k), rng, _spread(config))
        b = _operands(config, (k, 4), rng, _spread(config))
        # Scales near each other (many live terms) and far apart (flushes, clamped offsets).
        spread = int(rng.choice([2, 127]))
        a_scales = rng.integers(-spread, spread + 1, (3, blocks))
        b_scales = rng.integers(-spread, spread + 1, (blocks, 4))
        result = golden.matmul(
            a, b, config, a_scales=a_scales, b_scales=b_scales, block_size=block_size
        )
        a_off, a_ref = _ref_offsets(a_scales, "row", block_size, fmt)
        b_off, b_ref = _ref_offsets(b_scales, "col", block_size, fmt)
        acc, nan, overflow = ref_matmul(a, b, config, a_off[:, :k], b_off[:k])
        np.testing.assert_array_equal(result.acc, acc)
        np.testing.assert_array_equal(result.nan, nan)
        np.testing.assert_array_equal(result.overflow, overflow)
        np.testing.assert_array_equal(result.scale_exp, a_ref[:, None] + b_ref[None, :])


def test_block_scaled_value_is_the_sum_of_scaled_products():
    """Without flushes or rounding (pal8's exact window, operands near 1.0, close scales) the
    result's value is exactly the sum of each product divided by its blocks' scales."""
    config = CONFIGS["pal8-exact"]
    fmt = config.fmt
    rng = np.random.default_rng(11)
    m, k, n, block_size = 3, 21, 4, 4
    blocks = -(-k // block_size)
    a = _operands(config, (m, k), rng, 3)
    b = _operands(config, (k, n), rng, 3)
    # Offsets stay below 2 * 4 octaves: no log sum near the operands' (3 octaves from 1.0)
    # falls below zero.
    a_scales = rng.integers(-2, 3, (m, blocks))
    b_scales = rng.integers(-2, 3, (blocks, n))
    result = golden.matmul(
        a, b, config, a_scales=a_scales, b_scales=b_scales, block_size=block_size
    )
    na, la, za, qa = split(a, fmt)
    nb, lb, zb, qb = split(b, fmt)
    for i in range(m):
        for j in range(n):
            total = Fraction(0)
            for kk in range(k):
                if za[i, kk] or zb[kk, j] or qa[i, kk] or qb[kk, j]:
                    continue
                octave, r = divmod(int(la[i, kk] + lb[kk, j]), fmt.units)
                mantissa = mantissa_round(r, fmt.frac_bits, config.mantissa_bits)
                scale = int(a_scales[i, kk // block_size] + b_scales[kk // block_size, j])
                value = mantissa * Fraction(2) ** (octave - config.mantissa_bits - scale)
                total += -value if na[i, kk] != nb[kk, j] else value
            exp2 = -(config.acc_frac_bits + int(result.scale_exp[i, j]))
            assert Fraction(int(result.acc[i, j])) * Fraction(2) ** exp2 == total
            assert result.nan[i, j] == (qa[i].any() or qb[:, j].any())


def test_one_block_is_row_and_column_scaling():
    config = CONFIGS["pal8-narrow"]
    rng = np.random.default_rng(12)
    a = _operands(config, (4, 9), rng)
    b = _operands(config, (9, 3), rng)
    a_scales, b_scales = rng.integers(-9, 9, 4), rng.integers(-9, 9, 3)
    rows = golden.matmul(a, b, config, a_scales=a_scales, b_scales=b_scales)
    for block_size in (9, 10, 1000):
        blocks = golden.matmul(
            a,
            b,
            config,
            a_scales=a_scales[:, None],
            b_scales=b_scales[None, :],
            block_size=block_size,
        )
        for field in ("acc", "nan", "overflow", "scale_exp"):
            np.testing.assert_array_equal(getattr(blocks, field), getattr(rows, field))


def test_matmul_values_with_blocks_is_quantize_blocks_then_matmul():
    config = MacConfig(PALFormat(int_bits=3, frac_bits=4))
    rng = np.random.default_rng(13)
    a = rng.standard_t(3, (5, 70))
    b = rng.standard_t(3, (70, 6)) * np.exp2(rng.integers(-20, 20, (70, 1)))
    target = config.scale_target(70)
    a_codes, a_scales = golden.quantize_blocks(
        a, config.fmt, per="row", block_size=32, target=target
    )
    b_codes, b_scales = golden.quantize_blocks(
        b, config.fmt, per="col", block_size=32, target=target
    )
    expected = golden.matmul(
        a_codes, b_codes, config, a_scales=a_scales, b_scales=b_scales, block_size=32
    )
    result = golden.matmul_values(a, b, config, block_size=32)
    np.testing.assert_array_equal(result.acc, expected.acc)
    np.testing.assert_array_equal(result.scale_exp, expected.scale_exp)
    exact = a @ b
    error = np.linalg.norm(result.to_float64() - exact) / np.linalg.norm(exact)
    rows = golden.matmul_values(a, b, config)
    assert error < np.linalg.norm(rows.to_float64() - exact) / np.linalg.norm(exact)


BLOCKS = np.zeros((2, 1), int)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"block_size": 0}, ValueError, "block_size must be"),
        ({"block_size": 2.0}, TypeError, "block_size must be an integer"),
        ({"block_size": 1, "a_scales": BLOCKS}, ValueError, r"a_scales must be .* \(2, 2\)"),
        (
            {"block_size": 2, "b_scales": np.zeros(2, int)},
            ValueError,
            r"b_scales must be .* \(1, 2\)",
        ),
        ({"block_size": 2, "a_scales": BLOCKS + 128}, ValueError, "E8M0 range"),
        ({"block_size": 2, "b_scales": BLOCKS.T - 128}, ValueError, "E8M0 range"),
    ],
)
def test_bad_block_matmul(kwargs, error, match):
    with pytest.raises(error, match=match):
        golden.matmul(SQUARE, SQUARE, CONFIGS["pal8-exact"], **kwargs)


def test_bad_offsets_and_block_values():
    config = CONFIGS["pal8-exact"]
    with pytest.raises(ValueError, match=r"offset must be in \[0, "):
        golden.mac_terms(CODES, CODES, config, offset=-1)
    with pytest.raises(TypeError, match="offset must be integers"):
        golden.mac_terms(CODES, CODES, config, offset=0.5)
    with pytest.raises(ValueError, match="block_size needs adaptive=True"):
        golden.matmul_values(np.ones((2, 2)), np.ones((2, 2)), config, adaptive=False, block_size=2)


SQUARE = np.full((2, 2), pal8.bias)
CODES = np.array([1, 2, 3])
#: Valid as a word format, but beyond the table-driven operations (frac_bits > 12).
NO_TABLES = PALFormat(int_bits=2, frac_bits=13)


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "error", "match"),
    [
        (SQUARE, np.full((3, 2), 64), {}, ValueError, r"shapes \(M, K\) and \(K, N\).*\(2, 2\)"),
        (np.full(2, 64), SQUARE, {}, ValueError, "a and b must be 2-D"),
        (np.zeros((2, 0), int), np.zeros((0, 2), int), {}, ValueError, "K >= 1"),
        (SQUARE, SQUARE, {"a_scales": [1, 2, 3]}, ValueError, r"a_scales must be .* \(2,\)"),
        (SQUARE, SQUARE, {"b_scales": [0.5, 1.0]}, TypeError, "b_scales must be integers"),
        (SQUARE, SQUARE, {"b_scales": np.zeros((2, 1), int)}, ValueError, "b_scales must be"),
        (SQUARE * 4, SQUARE, {}, ValueError, "a holds 256"),
        (SQUARE.astype(float), SQUARE, {}, TypeError, "a must be an integer array"),
    ],
)
def test_bad_matmul(a, b, kwargs, error, match):
    with pytest.raises(error, match=match):
        golden.matmul(a, b, CONFIGS["pal8-exact"], **kwargs)


def test_matmul_needs_a_config():
    with pytest.raises(TypeError, match="config must be a MacConfig"):
        golden.matmul(SQUARE, SQUARE, pal8)
    with pytest.raises(TypeError, match="config must be a MacConfig"):
        golden.mac_terms(CODES, CODES, None)
    with pytest.raises(TypeError, match="config must be a MacConfig"):
        golden.matmul_values(np.ones((2, 2)), np.ones((2, 2)), pal8)


@pytest.mark.parametrize(
    ("a", "b"),
    [(CODES, CODES[:2]), (SQUARE, SQUARE), (CODES, CODES[:, None]), (np.array(64), np.array(64))],
)
def test_bad_dot(a, b):
    with pytest.raises(ValueError, match="a and b must be 1-D of equal length"):
        golden.dot(a, b, CONFIGS["pal8-exact"])


def test_bad_matmul_values_shapes():
    config = CONFIGS["pal8-exact"]
    with pytest.raises(ValueError, match="a and b must be 2-D"):
        golden.matmul_values(np.ones((2, 3)), np.ones((2, 3)), config)
    with pytest.raises(TypeError, match="a must be a real floating-point"):
        golden.matmul_values(np.array([["x"]]), np.ones((1, 1)), config)


def test_bad_readout_format():
    result = golden.matmul(SQUARE, SQUARE, CONFIGS["pal8-exact"])
    with pytest.raises(TypeError, match="fmt must be a PALFormat"):
        result.to_pal("pal16")
    with pytest.raises(ValueError, match="frac_bits must be <= 12"):
        result.to_pal(NO_TABLES)


def test_scales_whose_sums_would_overflow_are_refused():
    codes = np.full((1, 1), 64)
    config = MacConfig(pal8)
    for name in ("a_scales", "b_scales"):
        with pytest.raises(ValueError, match=rf"{name} must be in \[-2147483647, 2147483647\]"):
            golden.matmul(codes, codes, config, **{name: [2**62]})
    # The largest accepted scales add exactly, and read out as the value they mean (underflow).
    big = golden.MAX_SCALE
    result = golden.matmul(codes, codes, config, a_scales=[big], b_scales=[big])
    assert int(result.scale_exp[0, 0]) == 2 * big
    assert result.to_float32_bits()[0, 0] == 0 and result.to_pal()[0, 0] == pal8.zero_code
    result = golden.matmul(codes, codes, config, a_scales=[-big], b_scales=[-big])
    assert result.to_float32()[0, 0] == np.inf and result.to_pal()[0, 0] == pal8.max_code
