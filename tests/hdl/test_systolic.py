"""The systolic array, end to end through the tiling driver, against the golden model."""

import numpy as np
import pytest

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.hdl.providers import FP8Arithmetic, IntArithmetic, PALArithmetic
from palhdl.hdl.systolic import SystolicArray
from palhdl.sim import golden
from palhdl.sim.driver import PysimTransport, assemble, decode_lanes, matmul, split_tiles
from palhdl.sim.golden.baselines import FLOAT_FORMATS, float_mac


def rtl_tile_matmul(
    arithmetic, a, b, a_scales, b_scales, *, rows, cols, output, backpressure, scale_bits=16
):
    """Run ``a @ b`` through a ``rows x cols`` array of ``arithmetic``; decoded lanes."""
    array = SystolicArray(
        arithmetic=arithmetic, rows=rows, cols=cols, output=output, scale_bits=scale_bits
    )
    tiles = split_tiles(a, b, a_scales, b_scales, rows=rows, cols=cols)
    raw_tiles, stats = PysimTransport(array, backpressure=backpressure).run(tiles)
    lane = array.lane_shape
    result = assemble(tiles, [decode_lanes(lane, t) for t in raw_tiles], (a.shape[0], b.shape[1]))
    return result, stats


def assert_same(result, expected):
    if isinstance(expected, dict):
        assert set(result) == set(expected)
        for name in expected:
            np.testing.assert_array_equal(result[name], expected[name], err_msg=name)
    else:
        np.testing.assert_array_equal(result, expected)


def random_codes(rng, shape, fmt, *, special_rate=0.0):
    codes = rng.integers(0, 1 << fmt.width, size=shape)
    if special_rate:
        mask = rng.random(shape) < special_rate
        codes[mask] = rng.choice([fmt.zero_code, fmt.nan_code, fmt.max_code], size=mask.sum())
    return codes


# (rows, cols, M, K, N): multiples and non-multiples of the array, K = 1, M = 1, N = 1.
GEOMETRIES = [
    (1, 1, 2, 5, 3),
    (2, 3, 5, 7, 4),
    (2, 3, 4, 1, 6),
    (4, 4, 8, 12, 8),
    (4, 4, 1, 9, 5),
    (3, 2, 7, 6, 1),
    pytest.param(8, 8, 9, 10, 8, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("rows", "cols", "m", "k", "n"), GEOMETRIES)
def test_pal8_raw_bit_exact(rows, cols, m, k, n):
    rng = np.random.default_rng(rows * 1000 + cols * 100 + k)
    config = MacConfig(pal8)
    a = random_codes(rng, (m, k), pal8, special_rate=0.05)
    b = random_codes(rng, (k, n), pal8, special_rate=0.05)
    a_scales = rng.integers(-20, 20, size=m)
    b_scales = rng.integers(-20, 20, size=n)
    arithmetic = PALArithmetic(config=config)
    result, _ = rtl_tile_matmul(
        arithmetic, a, b, a_scales, b_scales, rows=rows, cols=cols, output="raw", backpressure=None
    )
    expected = arithmetic.golden_matmul(a, b, a_scales=a_scales, b_scales=b_scales, mode="raw")
    assert_same(result, expected)


@pytest.mark.parametrize(
    ("term", "table_ports", "pipelined"),
    [
        ("logic", 1, False),
        ("logic", 2, True),
        ("table", 2, True),
        ("signed_table", 1, False),
        ("signed_table", 2, True),
    ],
)
def test_every_product_term_variant_bit_exact(term, table_ports, pipelined):
    """Odd column counts leave a PE alone on a shared table; board windows wrap and overflow."""
    rng = np.random.default_rng(len(term) + table_ports)
    config = MacConfig(
        pal8, mantissa_bits=5, acc_bits=18, acc_frac_bits=8, term_bits=11, saturate=False
    )
    a = random_codes(rng, (5, 40), pal8, special_rate=0.05)
    b = random_codes(rng, (40, 7), pal8, special_rate=0.05)
    a[0, :] = pal8.max_code  # row 0 times the largest column of B overflows the window
    b[:, 6] = pal8.max_code
    a_scales = rng.integers(-3, 3, size=5)
    b_scales = rng.integers(-3, 3, size=7)
    arithmetic = PALArithmetic(
        config=config, pipelined=pipelined, term=term, table_ports=table_ports
    )
    assert arithmetic.product_group == (1 if term == "logic" else table_ports)
    result, _ = rtl_tile_matmul(
        arithmetic, a, b, a_scales, b_scales, rows=2, cols=3, output="raw", backpressure=7
    )
    expected = arithmetic.golden_matmul(a, b, a_scales=a_scales, b_scales=b_scales, mode="raw")
    assert expected["overflow"][0, 6]
    assert_same(result, expected)


@pytest.mark.parametrize("output", ["float32", "pal"])
@pytest.mark.parametrize("pipelined", [False, True])
def test_readouts_with_backpressure(output, pipelined):
    rng = np.random.default_rng(7)
    config = MacConfig(pal8)
    a = random_codes(rng, (5, 9), pal8, special_rate=0.05)
    b = random_codes(rng, (9, 4), pal8, special_rate=0.05)
    a_scales = rng.integers(-12, 12, size=5)
    b_scales = rng.integers(-12, 12, size=4)
    arithmetic = PALArithmetic(config=config, pipelined=pipelined)
    result, _ = rtl_tile_matmul(
        arithmetic, a, b, a_scales, b_scales, rows=2, cols=3, output=output, backpressure=11
    )
    expected = arithmetic.golden_matmul(a, b, a_scales=a_scales, b_scales=b_scales, mode=output)
    assert_same(result, expected)


@pytest.mark.parametrize(
    "config",
    [
        MacConfig(pal16),
        MacConfig(pal8, acc_bits=16, acc_frac_bits=4),
        MacConfig(PALFormat(int_bits=5, frac_bits=6)),
        MacConfig(pal8, mantissa_bits=5, acc_bits=14, acc_frac_bits=4, term_bits=9, saturate=False),
    ],
    ids=["pal16", "pal8-narrow", "i5f6", "pal8-wrap-window"],
)
def test_other_configs_raw_with_backpressure(config):
    rng = np.random.default_rng(3)
    fmt = config.fmt
    a = random_codes(rng, (4, 11), fmt, special_rate=0.1)
    b = random_codes(rng, (11, 3), fmt, special_rate=0.1)
    a_scales = rng.integers(-3, 3, size=4)
    b_scales = rng.integers(-3, 3, size=3)
    arithmetic = PALArithmetic(config=config, pipelined=True)
    result, _ = rtl_tile_matmul(
        arithmetic, a, b, a_scales, b_scales, rows=2, cols=2, output="raw", backpressure=5
    )
    expected = arithmetic.golden_matmul(a, b, a_scales=a_scales, b_scales=b_scales, mode="raw")
    assert_same(result, expected)


@pytest.mark.parametrize("saturate", [True, False], ids=["saturate", "wrap"])
def test_narrow_accumulator_overflows_like_golden(saturate):
    config = MacConfig(pal8, acc_bits=16, acc_frac_bits=4, saturate=saturate)
    big = golden.encode(np.full((3, 6), 200.0), pal8)
    arithmetic = PALArithmetic(config=config)
    zeros3 = np.zeros(3, dtype=np.int64)
    result, _ = rtl_tile_matmul(
        arithmetic, big, big.T, zeros3, zeros3, rows=2, cols=2, output="raw", backpressure=None
    )
    expected = arithmetic.golden_matmul(big, big.T, a_scales=zeros3, b_scales=zeros3, mode="raw")
    assert expected["overflow"].all()
    assert_same(result, expected)


def test_int8_provider_uses_the_same_array():
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, size=(5, 13))
    b = rng.integers(-128, 128, size=(13, 7))
    arithmetic = IntArithmetic(width=8, acc_bits=20)
    zeros_a, zeros_b = np.zeros(5, np.int64), np.zeros(7, np.int64)
    result, _ = rtl_tile_matmul(
        arithmetic, a, b, zeros_a, zeros_b, rows=3, cols=4, output="raw", backpressure=2
    )
    expected = arithmetic.golden_matmul(a, b, a_scales=zeros_a, b_scales=zeros_b, mode="raw")
    assert_same(result, expected)
    # acc_bits=20 wraps: make sure the case is not trivially the unwrapped product.
    assert not np.array_equal(expected["acc"], a @ b) or np.abs(a @ b).max() < 1 << 19


def test_driver_float_inputs_skewed_scales():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((6, 16)) * np.exp2(rng.integers(-20, 20, size=(6, 1)))
    b = rng.standard_normal((16, 5)) * np.exp2(rng.integers(-20, 20, size=(1, 5)))
    a[2] = 0.0
    a[4, 3] = np.nan
    b[0, 1] = np.inf
    config = MacConfig(pal8)
    result, stats = matmul(a, b, config=config, rows=4, cols=4, output="float32")
    expected = golden.matmul_values(a, b, config).to_float32()
    np.testing.assert_array_equal(result.view(np.uint32), expected.view(np.uint32))
    assert stats.macs == 6 * 16 * 5
    with np.errstate(invalid="ignore"):  # NaN and inf operands make NaN references
        reference = a @ b
    finite = np.isfinite(reference) & (reference != 0)
    error = np.abs(result[finite] - reference[finite]) / np.abs(reference[finite])
    assert np.median(error) < 0.1


def test_steady_state_utilisation():
    rows = cols = 4
    k = 8 * rows
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4 * rows, k))
    b = rng.standard_normal((k, 2 * cols))
    _, stats = matmul(a, b, fmt=pal8, rows=rows, cols=cols, output="raw")
    print(f"utilisation {stats.utilisation:.3f} over {stats.tiles} tiles, {stats.cycles} cycles")
    assert stats.utilisation >= 0.9


@pytest.mark.parametrize(
    ("variant", "geometry", "backpressure"),
    [
        ("e4m3", {"acc_bits": 32, "acc_frac_bits": 18}, None),  # exact products
        ("e4m3", {"acc_bits": 16, "acc_frac_bits": 4, "term_bits": 10, "saturate": False}, 4),
        ("e5m2", {"acc_bits": 20, "acc_frac_bits": 8}, 6),
    ],
    ids=["e4m3-exact", "e4m3-wrap-window", "e5m2-saturate"],
)
def test_fp8_provider_bit_exact(variant, geometry, backpressure):
    rng = np.random.default_rng(len(variant) + geometry["acc_bits"])
    fmt = FLOAT_FORMATS[variant]
    # Gaussian values of varied size, plus any pattern (NaN, infinities, subnormals) now and then.
    a = fmt.to_bits(rng.standard_normal((5, 9)) * np.exp2(rng.integers(-4, 5, (5, 1))))
    b = fmt.to_bits(rng.standard_normal((9, 4)) * np.exp2(rng.integers(-4, 5, (1, 4))))
    a = np.where(rng.random(a.shape) < 0.05, rng.integers(0, 256, a.shape), a).astype(np.int64)
    b = np.where(rng.random(b.shape) < 0.05, rng.integers(0, 256, b.shape), b).astype(np.int64)
    a_scales = rng.integers(-3, 4, size=5)
    b_scales = rng.integers(-3, 4, size=4)
    arithmetic = FP8Arithmetic(variant=variant, **geometry)
    result, _ = rtl_tile_matmul(
        arithmetic, a, b, a_scales, b_scales, rows=2, cols=3, output="raw",
        backpressure=backpressure,
    )  # fmt: skip
    expected = arithmetic.golden_matmul(a, b, a_scales=a_scales, b_scales=b_scales, mode="raw")
    assert set(expected) == {"acc", "nan", "pos_inf", "neg_inf", "overflow", "scale"}
    assert_same(result, expected)
    clean = ~(expected["nan"] | expected["overflow"]).astype(bool)
    assert clean.any() and (expected["acc"][clean] != 0).any()


def test_fp8_provider_matches_the_fp8_mac_reference():
    """The provider's golden model is the FP8 baseline's reference, row by column."""
    rng = np.random.default_rng(8)
    a = rng.integers(0, 256, (3, 6))
    b = rng.integers(0, 256, (6, 2))
    arithmetic = FP8Arithmetic(acc_bits=24, acc_frac_bits=12)
    zeros_a, zeros_b = np.zeros(3, np.int64), np.zeros(2, np.int64)
    expected = arithmetic.golden_matmul(a, b, a_scales=zeros_a, b_scales=zeros_b, mode="raw")
    for i in range(3):
        for j in range(2):
            row = float_mac(a[i], b[:, j], FLOAT_FORMATS["e4m3"], acc_bits=24, acc_frac_bits=12)
            assert expected["acc"][i, j] == row.acc
            assert expected["overflow"][i, j] == row.overflow


@pytest.mark.parametrize("output", ["raw", "pal"])
def test_scale_bits_other_than_the_default(output):
    """Every readout is generic over the scale width: 24-bit scales beyond the 16-bit range."""
    rng = np.random.default_rng(24)
    config = MacConfig(pal8, acc_bits=24, acc_frac_bits=12)
    a = random_codes(rng, (3, 5), pal8, special_rate=0.05)
    b = random_codes(rng, (5, 2), pal8, special_rate=0.05)
    a_scales = np.array([40_000, -40_010, 5])
    b_scales = np.array([-40_003, 40_002])
    arithmetic = PALArithmetic(config=config)
    result, _ = rtl_tile_matmul(
        arithmetic, a, b, a_scales, b_scales, rows=2, cols=2, output=output, backpressure=None,
        scale_bits=24,
    )  # fmt: skip
    expected = arithmetic.golden_matmul(a, b, a_scales=a_scales, b_scales=b_scales, mode=output)
    assert_same(result, expected)
