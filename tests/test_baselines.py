# amaranth: UnusedElaboratable=no
"""Baseline MACs: numpy references against exact arithmetic, RTL against the references."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from amaranth.back import verilog

from palhdl.hdl.baselines import BF16Mac, FP8Mac, IntMac
from palhdl.sim.baselines import (
    FLOAT_FORMATS,
    float_fields,
    float_mac,
    float_mac_terms,
    int_mac,
)
from palhdl.sim.rtl import pack_fields, simulate_streams, unpack_fields
from palhdl.synth.toolchain import use_yowasp_env

E4M3, E5M2, BF16 = (FLOAT_FORMATS[name] for name in ("e4m3", "e5m2", "bf16"))


def _exact(bits, fmt) -> list:
    """Exact values of bit patterns via ml_dtypes -> float64 (not the code under test)."""
    floats = np.asarray(bits).astype(np.uint8 if fmt.width == 8 else np.uint16).view(fmt.dtype)
    with np.errstate(invalid="ignore"):  # casting NaN patterns
        return [float(x) for x in floats.astype(np.float64).ravel()]


def _expected_term(x: float, y: float, acc_bits: int, acc_frac_bits: int):
    """(term, nan, pos_inf, neg_inf, overflow) of one product from float64/integer math."""
    product = x * y  # exact in float64 for FP8 and bfloat16 operands (at most 16-bit significands)
    if np.isnan(product):
        return 0, True, False, False, False
    if np.isinf(product):
        return 0, False, product > 0, product < 0, False
    acc_max = (1 << (acc_bits - 1)) - 1
    num, den = abs(product).as_integer_ratio()
    if acc_frac_bits >= 0:
        num <<= acc_frac_bits
    else:
        den <<= -acc_frac_bits
    magnitude = (2 * num + den) // (2 * den)  # round half away from zero
    if magnitude > acc_max:
        return (acc_max if product > 0 else -acc_max), False, False, False, True
    return (magnitude if product > 0 else -magnitude), False, False, False, False


def _all_pairs(width: int) -> tuple[np.ndarray, np.ndarray]:
    codes = np.arange(1 << width)
    return np.repeat(codes, 1 << width), np.tile(codes, 1 << width)


# --- references against exact arithmetic ------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "acc_bits", "acc_frac_bits"),
    [(E4M3, 62, 18), (E4M3, 16, 4), (E5M2, 62, 32), (E5M2, 24, 6)],
    ids=["e4m3-exact", "e4m3-narrow", "e5m2-exact", "e5m2-narrow"],
)
def test_fp8_terms_exhaustive_against_fractions(fmt, acc_bits, acc_frac_bits):
    a, b = _all_pairs(8)
    got = float_mac_terms(a, b, fmt, acc_bits=acc_bits, acc_frac_bits=acc_frac_bits)
    xs, ys = _exact(a, fmt), _exact(b, fmt)
    expected = [_expected_term(x, y, acc_bits, acc_frac_bits) for x, y in zip(xs, ys, strict=True)]
    for index, column in enumerate(zip(*expected, strict=True)):
        np.testing.assert_array_equal(got[index], np.array(column), err_msg=f"output {index}")


@pytest.mark.parametrize(("acc_bits", "acc_frac_bits"), [(62, 40), (48, 24), (24, 130)])
def test_bf16_terms_against_fractions(acc_bits, acc_frac_bits):
    rng = np.random.default_rng(acc_bits * 1000 + acc_frac_bits)
    a = rng.integers(0, 1 << 16, 20_000)
    b = rng.integers(0, 1 << 16, 20_000)
    # Half of the pairs: exponents near each other so products land inside the window.
    near = rng.random(20_000) < 0.5
    b = np.where(near, (b & 0x807F) | ((0x7F00 - (a & 0x7F80)) & 0x7F80), b)
    got = float_mac_terms(a, b, BF16, acc_bits=acc_bits, acc_frac_bits=acc_frac_bits)
    xs, ys = _exact(a, BF16), _exact(b, BF16)
    expected = [_expected_term(x, y, acc_bits, acc_frac_bits) for x, y in zip(xs, ys, strict=True)]
    for index, column in enumerate(zip(*expected, strict=True)):
        np.testing.assert_array_equal(got[index], np.array(column), err_msg=f"output {index}")
    assert np.count_nonzero(got[0]) > 0 and got[4].any() and (~got[4]).any()


def test_float_fields_follow_ml_dtypes_specials():
    for fmt in (E4M3, E5M2, BF16):
        codes = np.arange(1 << fmt.width)
        _, _, _, nan, inf = float_fields(codes, fmt)
        values = np.array(_exact(codes, fmt))
        np.testing.assert_array_equal(nan, np.isnan(values))
        np.testing.assert_array_equal(inf, np.isinf(values))
    assert E4M3.to_bits([448.0, -1.0, np.nan])[:2].tolist() == [0x7E, 0xB8]


def test_float_mac_exact_window_equals_fraction_sum():
    rng = np.random.default_rng(1)
    finite = np.array([c for c in range(256) if not np.isnan(_exact([c], E4M3)[0])])
    a = rng.choice(finite, (300, 16))
    b = rng.choice(finite, (300, 16))
    result = float_mac(a, b, E4M3, acc_bits=62, acc_frac_bits=18)
    xs = np.array(_exact(a, E4M3)).reshape(a.shape)
    ys = np.array(_exact(b, E4M3)).reshape(b.shape)
    for row in range(a.shape[0]):
        total = sum(Fraction(x) * Fraction(y) for x, y in zip(xs[row], ys[row], strict=True))
        assert Fraction(int(result.acc[row]), 1 << 18) == total
    assert not (result.nan.any() or result.overflow.any() or result.pos_inf.any())


def _e4m3(values) -> list[int]:
    return E4M3.to_bits(values).tolist()


@pytest.mark.parametrize(
    ("a", "b", "acc", "overflow"),
    [
        ([16.0], [16.0], 127, True),  # one term above acc_max
        ([8.0, 8.0], [8.0, 8.0], 127, True),  # 64 + 64 saturates
        ([8.0, 8.0, -8.0], [8.0, 8.0, 8.0], 63, True),  # saturated 127, then - 64; flag sticky
        ([-8.0, -8.0, 8.0], [8.0, 8.0, 8.0], -63, True),
        ([0.5, -0.5, 0.25, 0.75], [1.0, 1.0, 1.0, 1.0], 1, False),  # 1 - 1 + 0 + 1
        ([1.5, -1.5, -1.5], [1.0, 1.0, 1.0], -2, False),  # 2 - 2 - 2
    ],
)
def test_float_mac_directed_rounding_and_saturation(a, b, acc, overflow):
    result = float_mac(_e4m3(a), _e4m3(b), E4M3, acc_bits=8, acc_frac_bits=0)
    assert (int(result.acc), bool(result.overflow)) == (acc, overflow)


def test_float_mac_infinity_flags():
    inf, ninf, one, zero = 0x7C, 0xFC, 0x3C, 0x00  # E5M2 patterns
    cases = [  # (a row, b row) -> (nan, pos_inf, neg_inf)
        (([inf, one], [one, one]), (False, True, False)),
        (([ninf, one], [one, one]), (False, False, True)),
        (([inf, ninf], [one, one]), (True, True, True)),
        (([inf, ninf], [one, 0xBC]), (False, True, False)),  # -inf * -1 = +inf
        (([inf], [zero]), (True, False, False)),
    ]
    for (a, b), flags in cases:
        result = float_mac(a, b, E5M2, acc_bits=16, acc_frac_bits=0)
        assert (bool(result.nan), bool(result.pos_inf), bool(result.neg_inf)) == flags
    assert int(float_mac([inf, one], [one, one], E5M2, acc_bits=16, acc_frac_bits=0).acc) == 1


def test_int_mac_against_python_integers():
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, (200, 40))
    b = rng.integers(-128, 128, (200, 40))
    b[0] = -128
    a[0] = -128  # 40 * 16384 wraps a 16-bit accumulator
    for acc_bits in (32, 16):
        got = int_mac(a, b, acc_bits=acc_bits)
        for row in range(a.shape[0]):
            total = sum(int(x) * int(y) for x, y in zip(a[row], b[row], strict=True))
            wrapped = (total + (1 << (acc_bits - 1))) % (1 << acc_bits) - (1 << (acc_bits - 1))
            assert got[row] == wrapped


# --- RTL against the references ---------------------------------------------------------------


def simulate_rows(dut, a, b, *, backpressure=None, name="baseline_mac") -> np.ndarray:
    """Stream rows of ``a``/``b`` (shape (rows, K), raw operands) through a baseline MAC as
    one dot product each (``first`` on k = 0, ``last`` on k = K-1); raw results, one per row."""
    rows, k = a.shape
    operand = len(dut.i.payload.a)
    position = np.broadcast_to(np.arange(k), a.shape)
    payloads = pack_fields([(a, operand), (b, operand), (position == 0, 1), (position == k - 1, 1)])
    results, _ = simulate_streams(
        dut, {"i": list(payloads.ravel())}, {"o": rows}, backpressure=backpressure, name=name
    )
    return np.array(results["o"], dtype=object)


def _float_rows(fmt, rng, rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Random rows: a half finite values, a third any pattern, the rest edge values."""
    finfo = ml_dtypes.finfo(fmt.dtype)
    tiny, top = float(finfo.smallest_subnormal), float(finfo.max)
    edges = fmt.to_bits([0.0, -0.0, tiny, -tiny, top, -top, np.inf, -np.inf, np.nan, 1.0])
    kind = rng.integers(0, 6, (2, rows, 1))
    values = rng.standard_normal((2, rows, k)) * np.exp2(rng.integers(-6, 7, (2, rows, 1)))
    anything = rng.integers(0, 1 << fmt.width, (2, rows, k))
    edge = rng.choice(edges, (2, rows, k))
    patterns = np.where(kind < 3, fmt.to_bits(values), np.where(kind < 5, anything, edge))
    return patterns[0], patterns[1]


FLOAT_CASES = [
    ("e4m3", 32, 16, 6),
    ("e4m3", 12, 3, 5),  # narrow window: rounding and saturation everywhere
    ("e4m3", 48, 18, 4),  # exact products
    ("e4m3", 8, -40, 2),  # window far below every product: all terms round to 0
    ("e4m3", 8, 60, 2),  # window far above: every nonzero term overflows
    ("e5m2", 32, 16, 6),
    ("e5m2", 16, 8, 4),
    ("bf16", 48, 24, 6),
    ("bf16", 24, 6, 4),
]


@pytest.mark.parametrize(
    ("variant", "acc_bits", "acc_frac_bits", "k"),
    FLOAT_CASES,
    ids=[f"{v}-acc{a}-frac{f}" for v, a, f, _ in FLOAT_CASES],
)
def test_float_mac_rtl_matches_reference(variant, acc_bits, acc_frac_bits, k):
    fmt = FLOAT_FORMATS[variant]
    rng = np.random.default_rng(acc_bits * 100 + acc_frac_bits)
    a, b = _float_rows(fmt, rng, 2400 // k, k)
    if variant == "bf16":
        dut = BF16Mac(acc_bits=acc_bits, acc_frac_bits=acc_frac_bits)
    else:
        dut = FP8Mac(variant=variant, acc_bits=acc_bits, acc_frac_bits=acc_frac_bits)
    raw = simulate_rows(dut, a, b, backpressure=acc_bits if k == 4 else None, name=variant)
    acc, nan, pos_inf, neg_inf, overflow = unpack_fields(
        raw, [acc_bits, 1, 1, 1, 1], signed=[True, False, False, False, False]
    )
    expected = float_mac(a, b, fmt, acc_bits=acc_bits, acc_frac_bits=acc_frac_bits)
    np.testing.assert_array_equal(acc, expected.acc)
    np.testing.assert_array_equal(nan == 1, expected.nan)
    np.testing.assert_array_equal(pos_inf == 1, expected.pos_inf)
    np.testing.assert_array_equal(neg_inf == 1, expected.neg_inf)
    np.testing.assert_array_equal(overflow == 1, expected.overflow)


@pytest.mark.parametrize(
    ("width", "acc_bits", "backpressure"), [(8, 32, None), (8, 16, 5), (5, 11, None)]
)
def test_int_mac_rtl_matches_reference(width, acc_bits, backpressure):
    rng = np.random.default_rng(acc_bits)
    lo = -(1 << (width - 1))
    a = rng.integers(lo, -lo, (300, 8))
    b = rng.integers(lo, -lo, (300, 8))
    a[:20], b[:20] = lo, lo  # 8 * 2**(2w-2) wraps a (2w)-bit accumulator
    dut = IntMac(width=width, acc_bits=acc_bits)
    raw = simulate_rows(dut, a, b, backpressure=backpressure)
    (acc,) = unpack_fields(raw, [acc_bits], signed=[True])
    np.testing.assert_array_equal(acc, int_mac(a, b, width=width, acc_bits=acc_bits))


def test_single_product_rows_and_restart():
    a = np.array([[0x38], [0x40], [0xB8]])  # E4M3 1, 2, -1: K = 1, first and last together
    raw = simulate_rows(FP8Mac(acc_bits=16, acc_frac_bits=4), a, a)
    (acc, *_) = unpack_fields(raw, [16, 1, 1, 1, 1])
    assert acc.tolist() == [16, 64, 16]


def test_baselines_export_to_verilog():
    with use_yowasp_env():
        for dut in (
            IntMac(),
            FP8Mac(variant="e5m2", acc_bits=24, acc_frac_bits=8),
            BF16Mac(acc_bits=32, acc_frac_bits=8),
        ):
            assert "module top" in verilog.convert(dut, name="top")


# --- constructor parameters -------------------------------------------------------------------


def test_constructor_properties():
    mac = FP8Mac(variant="e5m2", acc_bits=30, acc_frac_bits=-3)
    assert (mac.variant, mac.acc_bits, mac.acc_frac_bits, mac.acc_max, mac.latency) == (
        "e5m2",
        30,
        -3,
        (1 << 29) - 1,
        1,
    )
    assert BF16Mac(acc_bits=48, acc_frac_bits=24).fmt is BF16
    assert (IntMac().width, IntMac().acc_bits, IntMac(width=4, acc_bits=8).latency) == (8, 32, 1)


@pytest.mark.parametrize(
    ("factory", "error", "message"),
    [
        (lambda: FP8Mac(variant="e3m4", acc_bits=32, acc_frac_bits=8), ValueError, "variant"),
        (lambda: FP8Mac(acc_bits=7, acc_frac_bits=8), ValueError, r"acc_bits must be in \[8"),
        (lambda: FP8Mac(acc_bits=63, acc_frac_bits=8), ValueError, "acc_bits"),
        (lambda: FP8Mac(acc_bits=32.0, acc_frac_bits=8), TypeError, "acc_bits"),
        (lambda: BF16Mac(acc_bits=32, acc_frac_bits=5000), ValueError, "acc_frac_bits"),
        (lambda: BF16Mac(acc_bits=32, acc_frac_bits=True), TypeError, "acc_frac_bits"),
        (lambda: IntMac(width=1), ValueError, r"width must be in \[2, 16\]"),
        (lambda: IntMac(width="8"), TypeError, "width"),
        (lambda: IntMac(width=8, acc_bits=15), ValueError, r"acc_bits must be in \[2 \* width"),
        (lambda: int_mac([[200]], [[1]]), ValueError, "signed 8-bit"),
        (lambda: int_mac([1, 2], [1]), ValueError, "same shape"),
        (lambda: float_fields([256], E4M3), ValueError, "8-bit patterns"),
        (lambda: float_fields([1.0], E4M3), TypeError, "integer array"),
    ],
)
def test_bad_parameters_are_rejected(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


def test_to_bits_known_patterns():
    values = [1.0, -3.0, 0.0]
    assert E4M3.to_bits(values).tolist() == [0x38, 0xC4, 0x00]
    assert E5M2.to_bits(values).tolist() == [0x3C, 0xC2, 0x00]
    assert BF16.to_bits(values).tolist() == [0x3F80, 0xC040, 0x0000]
