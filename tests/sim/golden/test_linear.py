"""The fast matmul (``palhdl.sim.golden.linear``) against the reference loop, bit for bit.

``golden.matmul(method="auto")`` (the fast path, with the loop only for the outputs it reports
as order-dependent) must equal ``method="loop"`` (the reference accumulation, itself checked
against exact rationals in ``test_mac.py``) in ``acc``, ``nan``, ``overflow`` and
``scale_exp`` for every configuration in use, every kind of operand and block offsets. Where the
fast path must be taken (realistic operands) the tests check the path it reports, so a silent
fallback to the loop cannot hide.
"""

import numpy as np
import pytest

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.sim import golden
from palhdl.sim.golden import linear

CONFIGS = {
    "pal8": MacConfig(pal8),
    "pal8-3.4": MacConfig(PALFormat(int_bits=3, frac_bits=4)),
    "pal8-5.2": MacConfig(PALFormat(int_bits=5, frac_bits=2)),
    "pal8-32-saturating": MacConfig(pal8, acc_bits=32, acc_frac_bits=12),
    "pal8-cost": MacConfig(
        pal8, mantissa_bits=5, acc_bits=32, acc_frac_bits=12, term_bits=14, saturate=False
    ),
    "pal8-icebreaker": MacConfig(
        pal8, mantissa_bits=5, acc_bits=18, acc_frac_bits=8, term_bits=11, saturate=False
    ),
    "pal8-ulx3s": MacConfig(
        pal8, mantissa_bits=5, acc_bits=20, acc_frac_bits=10, term_bits=13, saturate=False
    ),
    "pal8-narrow": MacConfig(pal8, acc_bits=12, acc_frac_bits=4),
    "pal8-narrow-wrap": MacConfig(pal8, acc_bits=12, acc_frac_bits=4, saturate=False),
    "pal8-62": MacConfig(pal8, mantissa_bits=20, acc_bits=62, acc_frac_bits=36),
    "pal16": MacConfig(pal16),
    "pal16-icebreaker": MacConfig(pal16, acc_bits=24, acc_frac_bits=16),
    "pal16-ulx3s": MacConfig(pal16, acc_bits=32, acc_frac_bits=20),
    "pal16-cost": MacConfig(
        pal16, mantissa_bits=9, acc_bits=48, acc_frac_bits=24, term_bits=24, saturate=False
    ),
    "wide-fraction": MacConfig(PALFormat(int_bits=3, frac_bits=9), acc_bits=40),
}

KINDS = ("uniform", "top", "bottom", "sparse", "values")


def codes(rng, fmt: PALFormat, shape: tuple[int, int], kind: str) -> np.ndarray:
    """Random codes of one kind: the whole range, near the top or bottom, mostly zero/NaN, data."""
    if kind == "values":
        values = rng.standard_normal(shape) * np.exp(rng.standard_normal(shape))
        return golden.quantize(values, fmt, target=fmt.log_max // 2)[0].astype(np.int64)
    sign = rng.integers(0, 2, shape) * fmt.sign_mask
    if kind == "uniform":
        return rng.integers(0, 1 << fmt.width, shape)
    if kind == "top":
        return sign | (fmt.mag_mask - rng.integers(0, 3 * fmt.units, shape))
    if kind == "bottom":
        return sign | (1 + rng.integers(0, 3 * fmt.units, shape))
    special = rng.choice([fmt.zero_code, fmt.nan_code, 1, fmt.max_code], shape)
    return np.where(rng.random(shape) < 0.8, special, rng.integers(0, 1 << fmt.width, shape))


def assert_same(a, b, config: MacConfig, **kwargs) -> golden.MacResult:
    """``matmul`` through the fast path equals the loop in every field; return it."""
    fast = golden.matmul(a, b, config, **kwargs)
    loop = golden.matmul(a, b, config, method="loop", **kwargs)
    for field in ("acc", "nan", "overflow", "scale_exp"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(loop, field), err_msg=field)
    return fast


def paths(a, b, config: MacConfig, **kwargs) -> np.ndarray:
    """Per-output path counts ``[LOOP, BLAS, ORDERED]`` of ``linear_matmul``."""
    lin = linear.linearise(config, *golden.term_table(config))
    result = linear.linear_matmul(a, b, lin, **kwargs)
    return np.bincount(result.path.ravel(), minlength=3)


def block_scaled(rng, config, a, b, block_size: int, spread: int):
    """Random E8M0 block scales for ``a`` and ``b`` (``spread`` octaves) and their offsets."""
    k = a.shape[1]
    blocks = -(-k // block_size)
    a_scales = rng.integers(-spread, spread + 1, (a.shape[0], blocks))
    b_scales = rng.integers(-spread, spread + 1, (blocks, b.shape[1]))
    fmt = config.fmt
    a_offsets, _ = golden.block_offsets(a_scales, fmt, per="row", block_size=block_size, k=k)
    b_offsets, _ = golden.block_offsets(b_scales, fmt, per="col", block_size=block_size, k=k)
    return a_scales, b_scales, a_offsets, b_offsets


# --- bit equality with the loop -----------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("seed", range(4))
def test_matches_loop(name, seed):
    config = CONFIGS[name]
    rng = np.random.default_rng([seed, len(name)])
    for kind_a in KINDS:
        kind_b = KINDS[(KINDS.index(kind_a) + seed) % len(KINDS)]
        m, n = rng.integers(1, 9, 2)
        k = int(rng.choice([1, 2, 7, 31, 97]))
        a = codes(rng, config.fmt, (m, k), kind_a)
        b = codes(rng, config.fmt, (k, n), kind_b)
        assert_same(a, b, config, a_scales=rng.integers(-3, 4, m), b_scales=3)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("block_size", [1, 4, 32])
def test_block_scaled_matches_loop(name, block_size):
    config = CONFIGS[name]
    rng = np.random.default_rng([block_size, len(name)])
    for spread, kind in [(2, "values"), (12, "values"), (40, "uniform"), (3, "bottom")]:
        m, n = rng.integers(1, 7, 2)
        k = int(rng.choice([block_size, 3 * block_size + 1, 70]))
        a = codes(rng, config.fmt, (m, k), kind)
        b = codes(rng, config.fmt, (k, n), "values")
        a_scales, b_scales, *_ = block_scaled(rng, config, a, b, block_size, spread)
        assert_same(a, b, config, a_scales=a_scales, b_scales=b_scales, block_size=block_size)


@pytest.mark.parametrize("name", ["pal8", "pal8-5.2", "pal8-narrow", "pal8-cost", "pal16"])
def test_long_reductions(name):
    config = CONFIGS[name]
    rng = np.random.default_rng(len(name))
    for kind in ("values", "top", "uniform"):
        k = 3001
        a = codes(rng, config.fmt, (2, k), kind)
        b = codes(rng, config.fmt, (k, 3), "values")
        assert_same(a, b, config)


@pytest.mark.parametrize(
    "name", ["pal8", "pal8-3.4", "pal8-5.2", "pal8-32-saturating", "pal8-cost", "pal16-icebreaker"]
)
@pytest.mark.parametrize("block_size", [None, 32])
def test_heavy_tailed_values(name, block_size):
    """``matmul_values`` of heavy-tailed data (rounded and flushed terms among the others)."""
    config = CONFIGS[name]
    rng = np.random.default_rng(7)
    a = rng.standard_t(3, (48, 200))
    b = rng.standard_normal((200, 64)) * np.exp(2 * rng.standard_normal((200, 64)))
    fast = golden.matmul_values(a, b, config, block_size=block_size)
    target = config.scale_target(200)
    if block_size is None:
        a_codes, a_scales = golden.quantize(a, config.fmt, per="row", target=target)
        b_codes, b_scales = golden.quantize(b, config.fmt, per="col", target=target)
    else:
        quantize = golden.quantize_blocks
        a_codes, a_scales = quantize(a, config.fmt, per="row", block_size=32, target=target)
        b_codes, b_scales = quantize(b, config.fmt, per="col", block_size=32, target=target)
    loop = golden.matmul(
        a_codes,
        b_codes,
        config,
        a_scales=a_scales,
        b_scales=b_scales,
        block_size=block_size,
        method="loop",
    )
    for field in ("acc", "nan", "overflow", "scale_exp"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(loop, field), err_msg=field)


@pytest.mark.parametrize("shapes", [((0, 3), (3, 4)), ((2, 3), (3, 0)), ((0, 1), (1, 0))])
def test_empty_outputs(shapes):
    config = CONFIGS["pal8-cost"]
    a = np.full(shapes[0], config.fmt.max_code)
    b = np.full(shapes[1], config.fmt.max_code)
    assert assert_same(a, b, config).acc.shape == (shapes[0][0], shapes[1][1])


def test_dot_matches_loop():
    config = CONFIGS["pal8-narrow"]
    rng = np.random.default_rng(3)
    a = codes(rng, config.fmt, (1, 50), "top")[0]
    b = codes(rng, config.fmt, (50, 1), "top")[:, 0]
    fast = golden.dot(a, b, config)
    loop = golden.matmul(a[None, :], b[:, None], config, method="loop")
    assert (fast.acc, fast.overflow, fast.nan) == (loop.acc[0, 0], loop.overflow[0, 0], False)


# --- the paths taken ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["pal8", "pal8-3.4", "pal8-5.2", "pal8-cost", "pal16", "pal16-icebreaker"]
)
@pytest.mark.parametrize("block_size", [None, 32])
def test_data_take_the_matmuls(name, block_size):
    """``matmul_values``-like operands are proved entirely by the float64 matmuls."""
    config = CONFIGS[name]
    rng = np.random.default_rng(11)
    a = rng.standard_normal((24, 96))
    b = rng.standard_normal((96, 40)) * np.exp(rng.standard_normal((96, 40)))
    target = config.scale_target(96)
    kwargs = {}
    if block_size is None:
        a_codes, _ = golden.quantize(a, config.fmt, per="row", target=target)
        b_codes, _ = golden.quantize(b, config.fmt, per="col", target=target)
    else:
        quantize = golden.quantize_blocks
        a_codes, a_scales = quantize(a, config.fmt, per="row", block_size=32, target=target)
        b_codes, b_scales = quantize(b, config.fmt, per="col", block_size=32, target=target)
        kwargs["a_offsets"], _ = golden.block_offsets(
            a_scales, config.fmt, per="row", block_size=32, k=96
        )
        kwargs["b_offsets"], _ = golden.block_offsets(
            b_scales, config.fmt, per="col", block_size=32, k=96
        )
    counts = paths(a_codes, b_codes, config, **kwargs)
    assert counts[linear.BLAS] == 24 * 40, counts


def test_rounded_and_flushed_terms_stay_on_the_matmuls():
    """Tiny operands on either side (rounded terms, flushed block products) are looked up."""
    config = CONFIGS["pal8-5.2"]
    fmt = config.fmt
    rng = np.random.default_rng(5)
    for tiny_in_a in (True, False):
        a = fmt.bias + rng.integers(-8, 9, (9, 40))
        b = fmt.bias + rng.integers(-8, 9, (40, 13))
        tiny = rng.random((9, 40) if tiny_in_a else (40, 13)) < 0.1
        if tiny_in_a:
            a = np.where(tiny, 1 + rng.integers(0, 8, a.shape), a)
        else:
            b = np.where(tiny, 1 + rng.integers(0, 8, b.shape), b)
        assert_same(a, b, config)
        assert paths(a, b, config)[linear.BLAS] == 9 * 13
        a_scales, b_scales, a_offsets, b_offsets = block_scaled(rng, config, a, b, 4, 6)
        assert_same(a, b, config, a_scales=a_scales, b_scales=b_scales, block_size=4)
        counts = paths(a, b, config, a_offsets=a_offsets, b_offsets=b_offsets)
        assert counts[linear.BLAS] == 9 * 13


def test_tight_bound():
    """Rows of one large and many small products: ``K * largest`` exceeds ``acc_max``, yet the
    magnitudes' matmul proves every output."""
    config = CONFIGS["pal8-32-saturating"]
    fmt = config.fmt
    k = 64
    target = config.scale_target(1)  # a product of two such maxima nearly fills the window
    a = np.full((5, k), fmt.bias - 3 * fmt.units)
    a[:, 0] = fmt.bias + target
    b = np.full((k, 6), fmt.bias + target)
    largest = golden.mac_terms(a[0, 0], b[0, 0], config)[0]
    assert k * int(largest) > config.acc_max
    assert_same(a, b, config)
    assert paths(a, b, config)[linear.BLAS] == 30


@pytest.mark.parametrize("name", ["pal8-narrow-wrap", "pal8-icebreaker"])
def test_wrapping_overflow_is_ordered(name):
    """Terms of half the term window: the sums wrap (the flag from the exact prefix sums)."""
    config = CONFIGS[name]
    fmt = config.fmt
    rng = np.random.default_rng(2)
    log = fmt.units * (config.term_bits - 1 - config.acc_frac_bits) // 2
    a = fmt.bias + log - rng.integers(0, 4, (6, 300))
    b = fmt.bias + log - rng.integers(0, 4, (300, 5))
    result = assert_same(a, b, config)
    assert result.overflow.all()
    assert paths(a, b, config)[linear.ORDERED] == 30


def test_saturating_overflow_uses_the_loop():
    config = CONFIGS["pal8-narrow"]
    fmt = config.fmt
    a = np.full((3, 20), fmt.bias + 24)
    b = np.full((20, 4), fmt.bias + 24)
    b[:10, 1] |= fmt.sign_mask  # clamped at -acc_max first, then climbs back: order matters
    result = assert_same(a, b, config)
    assert result.overflow.all()
    assert result.acc[0, 1] == config.acc_max
    assert paths(a, b, config)[linear.LOOP] == 12


def test_sums_beyond_float64_are_ordered():
    """A 62-bit lossless window: sums of 2**53 and more need int64 (float64 would round)."""
    config = CONFIGS["pal8-62"]
    fmt = config.fmt
    a = np.array([[fmt.max_code] * 4 + [1, 2, 3]])
    b = np.array([[fmt.max_code] * 4 + [1, 5, 9], [fmt.max_code] * 4 + [4, 1, 2]]).T
    result = assert_same(a, b, config)
    for acc in result.acc.ravel():
        assert int(acc) >= 1 << 53 and int(float(acc)) != int(acc)
    assert paths(a, b, config)[linear.ORDERED] == 2


def test_many_residues_are_ordered():
    config = CONFIGS["wide-fraction"]
    assert config.fmt.frac_bits > linear.MAX_PLANE_BITS
    rng = np.random.default_rng(4)
    a = codes(rng, config.fmt, (4, 33), "values")
    b = codes(rng, config.fmt, (33, 5), "values")
    assert_same(a, b, config)
    assert paths(a, b, config)[linear.ORDERED] == 20


def test_wider_formats_use_the_loop():
    config = MacConfig(PALFormat(int_bits=9, frac_bits=8), acc_bits=48, acc_frac_bits=24)
    assert config.fmt.mag_bits > linear.MAX_MAG_BITS
    rng = np.random.default_rng(8)
    a = codes(rng, config.fmt, (3, 5), "uniform")
    b = codes(rng, config.fmt, (5, 2), "uniform")
    assert_same(a, b, config)


def test_any_offsets():
    """Offsets far beyond block scaling's (up to 2**61) flush exactly: the sums of the terms."""
    config = CONFIGS["pal16"]
    rng = np.random.default_rng(9)
    a = codes(rng, config.fmt, (4, 6), "values")
    b = codes(rng, config.fmt, (6, 5), "values")
    a_offsets = rng.choice([0, 3, 1 << 20, 1 << 61], a.shape)
    b_offsets = rng.choice([0, 200, 1 << 61], b.shape)
    a_offsets[:, 0] = 1 << 61  # every product at k = 0 flushed, b's single one looked up
    b[0, 1:] = 0
    lin = linear.linearise(config, *golden.term_table(config))
    result = linear.linear_matmul(a, b, lin, a_offsets=a_offsets, b_offsets=b_offsets)
    offset = a_offsets[:, :, None] + b_offsets[None, :, :]
    term, nan, overflow = golden.mac_terms(a[:, :, None], b[None, :, :], config, offset=offset)
    np.testing.assert_array_equal(result.acc, term.sum(axis=1))
    np.testing.assert_array_equal(result.nan, nan.any(axis=1))
    np.testing.assert_array_equal(result.overflow, overflow.any(axis=1))
    assert (result.path == linear.BLAS).all()


# --- argument errors ----------------------------------------------------------------------------


def test_errors():
    config = MacConfig(pal8)
    lin = linear.linearise(config, *golden.term_table(config))
    with pytest.raises(ValueError, match="method must be one of 'auto', 'loop'"):
        golden.matmul([[1]], [[1]], config, method="blas")
    with pytest.raises(ValueError, match="must be 2-D"):
        linear.linear_matmul([[1, 2]], [[1, 2]], lin)
    with pytest.raises(ValueError, match="a_offsets must have shape"):
        linear.linear_matmul([[1, 2]], [[1], [2]], lin, a_offsets=[[0]])
    with pytest.raises(ValueError, match="b_offsets must be in"):
        linear.linear_matmul([[1, 2]], [[1], [2]], lin, b_offsets=[[-1], [0]])
    with pytest.raises(TypeError, match="lin must be a Linearisation"):
        linear.linear_matmul([[1]], [[1]], config)
    with pytest.raises(ValueError, match="256 entries"):
        linear.linearise(config, np.zeros(10), np.zeros(10))
    wide = MacConfig(PALFormat(int_bits=9, frac_bits=8), acc_bits=48)
    with pytest.raises(ValueError, match="mag_bits must be <= 16"):
        linear.linearise(wide, np.zeros(4), np.zeros(4))
