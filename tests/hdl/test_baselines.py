"""Baseline MACs: numpy references against exact arithmetic, RTL against the references."""

import functools
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from palhdl.format import MacConfig, pal8
from palhdl.hdl.baselines import BF16Mac, FloatProductTerm, FP8Mac, IntMac, IntProductTerm
from palhdl.sim.golden.baselines import (
    FLOAT_FORMATS,
    float_fields,
    float_geometry,
    float_mac,
    float_mac_terms,
    int_mac,
)
from palhdl.sim.pysim import pack_payloads, simulate_streams, unpack_payloads
from palhdl.synth.toolchain import use_yowasp_env

E4M3, E5M2, BF16 = (FLOAT_FORMATS[name] for name in ("e4m3", "e5m2", "bf16"))


def _exact(bits, fmt) -> list:
    """Exact values of bit patterns via ml_dtypes -> float64 (not the code under test)."""
    floats = np.asarray(bits).astype(np.uint8 if fmt.width == 8 else np.uint16).view(fmt.dtype)
    with np.errstate(invalid="ignore"):  # casting NaN patterns
        return [float(x) for x in floats.astype(np.float64).ravel()]


def _expected_term(
    x: float, y: float, acc_bits: int, acc_frac_bits: int, term_bits=None, saturate=True
):
    """(term, nan, pos_inf, neg_inf, overflow) of one product from float64 (or Fraction) and
    integer math."""
    product = x * y  # exact in float64 for FP8 and bfloat16 operands (at most 16-bit significands)
    if math.isnan(product):
        return 0, True, False, False, False
    if math.isinf(product):
        return 0, False, product > 0, product < 0, False
    acc_max = (1 << (acc_bits - 1)) - 1
    term_max = (1 << (acc_bits - 1 if term_bits is None else term_bits)) - 1
    num, den = abs(product).as_integer_ratio()
    if acc_frac_bits >= 0:
        num <<= acc_frac_bits
    else:
        den <<= -acc_frac_bits
    magnitude = (2 * num + den) // (2 * den)  # round half away from zero
    overflow = magnitude > term_max
    if overflow:
        magnitude = acc_max if saturate else 0
    return (magnitude if product > 0 else -magnitude), False, False, False, overflow


def _expected_row(xs, ys, acc_bits: int, acc_frac_bits: int, term_bits=None, saturate=True):
    """(acc, nan, pos_inf, neg_inf, overflow) of one dot product in Python integers."""
    acc_max = (1 << (acc_bits - 1)) - 1
    acc, nan, pos_inf, neg_inf, overflow = 0, False, False, False, False
    for x, y in zip(xs, ys, strict=True):
        term, *flags = _expected_term(x, y, acc_bits, acc_frac_bits, term_bits, saturate)
        total = acc + term
        if saturate:
            acc = max(-acc_max, min(acc_max, total))
        else:
            acc = (total + acc_max + 1) % (2 * acc_max + 2) - acc_max - 1
        nan, pos_inf, neg_inf, overflow = (
            old or new for old, new in zip((nan, pos_inf, neg_inf, overflow), flags, strict=True)
        )
        overflow |= acc != total
    return acc, nan or (pos_inf and neg_inf), pos_inf, neg_inf, overflow


def _all_pairs(width: int) -> tuple[np.ndarray, np.ndarray]:
    codes = np.arange(1 << width)
    return np.repeat(codes, 1 << width), np.tile(codes, 1 << width)


# --- references against exact arithmetic ------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "acc_bits", "acc_frac_bits", "term_bits", "saturate"),
    [
        (E4M3, 62, 18, None, True),
        (E4M3, 16, 4, None, True),
        (E4M3, 16, 4, 9, True),
        (E4M3, 16, 4, 9, False),
        (E4M3, 62, 18, 20, False),
        (E5M2, 62, 32, None, True),
        (E5M2, 24, 6, None, True),
        (E5M2, 24, 6, 2, True),
        (E5M2, 24, 6, 12, False),
    ],
    ids=[
        "e4m3-exact",
        "e4m3-narrow",
        "e4m3-term9",
        "e4m3-term9-wrap",
        "e4m3-exact-term20-wrap",
        "e5m2-exact",
        "e5m2-narrow",
        "e5m2-term2",
        "e5m2-term12-wrap",
    ],
)
def test_fp8_terms_exhaustive_against_fractions(fmt, acc_bits, acc_frac_bits, term_bits, saturate):
    a, b = _all_pairs(8)
    window = {"term_bits": term_bits, "saturate": saturate}
    got = float_mac_terms(a, b, fmt, acc_bits=acc_bits, acc_frac_bits=acc_frac_bits, **window)
    xs, ys = _exact(a, fmt), _exact(b, fmt)
    expected = [
        _expected_term(x, y, acc_bits, acc_frac_bits, term_bits, saturate)
        for x, y in zip(xs, ys, strict=True)
    ]
    for index, column in enumerate(zip(*expected, strict=True)):
        np.testing.assert_array_equal(got[index], np.array(column), err_msg=f"output {index}")
    assert (got[0] != 0).any() and (term_bits is None or got[4].any())


@pytest.mark.parametrize(
    ("acc_bits", "acc_frac_bits", "term_bits", "saturate"),
    [(62, 40, None, True), (48, 24, None, True), (24, 130, None, True), (48, 24, 30, False)],
)
def test_bf16_terms_against_fractions(acc_bits, acc_frac_bits, term_bits, saturate):
    rng = np.random.default_rng(acc_bits * 1000 + acc_frac_bits)
    a = rng.integers(0, 1 << 16, 20_000)
    b = rng.integers(0, 1 << 16, 20_000)
    # Half of the pairs: exponents near each other so products land inside the window.
    near = rng.random(20_000) < 0.5
    b = np.where(near, (b & 0x807F) | ((0x7F00 - (a & 0x7F80)) & 0x7F80), b)
    window = {"term_bits": term_bits, "saturate": saturate}
    got = float_mac_terms(a, b, BF16, acc_bits=acc_bits, acc_frac_bits=acc_frac_bits, **window)
    xs, ys = _exact(a, BF16), _exact(b, BF16)
    expected = [
        _expected_term(x, y, acc_bits, acc_frac_bits, term_bits, saturate)
        for x, y in zip(xs, ys, strict=True)
    ]
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


@pytest.mark.parametrize(
    ("a", "b", "term_bits", "saturate", "acc", "overflow"),
    [
        ([16.0], [2.0], 5, True, 127, True),  # term 32 > 31 = term_max: clamped to acc_max
        ([-16.0, 1.0], [2.0, 1.0], 5, True, -126, True),  # -127 + 1
        ([5.0, 6.0], [6.0, 5.0], 5, True, 60, False),  # 30 + 30: each term fits 5 bits
        ([0.0, 448.0], [448.0, -0.0], 5, True, 0, False),  # zero products never overflow
        ([16.0, 3.0], [2.0, 1.0], 5, False, 3, True),  # term 32 dropped, then + 3
        ([2.5, 3.0], [2.75, 2.5], 3, False, 7, True),  # 6.875 -> 7 fits; 7.5 -> 8 dropped
        ([5.0] * 5, [6.0] * 5, 5, False, -106, True),  # 5 * 30 = 150 wraps to 150 - 256
        ([5.0] * 5 + [-5.0], [6.0] * 6, 5, False, 120, True),  # -106 - 30 wraps back; sticky
        ([8.0, 8.0], [8.0, 8.0], None, False, -128, True),  # 128 wraps to acc_min
        ([-8.0, -8.0], [8.0, 8.0], None, False, -128, False),  # -128 fits when wrapping...
        ([-8.0, -8.0], [8.0, 8.0], None, True, -127, True),  # ... but saturates to -acc_max
    ],
)
def test_float_mac_directed_term_window_and_wrap(a, b, term_bits, saturate, acc, overflow):
    window = {"acc_bits": 8, "acc_frac_bits": 0, "term_bits": term_bits, "saturate": saturate}
    result = float_mac(_e4m3(a), _e4m3(b), E4M3, **window)
    assert (int(result.acc), bool(result.overflow), bool(result.nan)) == (acc, overflow, False)
    # The hand-checked value is also the exact sum (Fraction) run through the window.
    exact = _expected_row([Fraction(x) for x in a], [Fraction(y) for y in b], **window)
    assert exact == (acc, False, False, False, overflow)


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
    one dot product each (``first`` on k = 0, ``last`` on k = K-1); the output fields (a dict
    of arrays, one entry per row)."""
    rows, k = a.shape
    position = np.broadcast_to(np.arange(k), a.shape)
    fields = {"a": a, "b": b, "first": position == 0, "last": position == k - 1}
    payloads = pack_payloads(dut.i.payload.shape(), fields)
    results, _ = simulate_streams(
        dut, {"i": list(payloads.ravel())}, {"o": rows}, backpressure=backpressure, name=name
    )
    return unpack_payloads(dut.o.payload.shape(), results["o"])


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


def _window_rows(fmt, rng, rows: int, k: int, acc_frac_bits: int, term_bits: int):
    """Random rows for a term window: three quarters of products up to near its top, mostly of
    one sign per row so that sums overflow and turn back; the other rows from
    :func:`_float_rows` (specials, any pattern)."""
    # Row levels: sums stay inside the window, sums of fitting terms overflow, terms overflow.
    top = rng.choice([0.5, 0.93, 1.06], (rows, 1))
    root = 2.0 ** ((term_bits - acc_frac_bits) / 2)
    magnitudes = rng.uniform(0.6, 1.0, (2, rows, k)) * top * root
    signs = rng.choice([-1.0, 1.0], (rows, 1)) * np.where(rng.random((rows, k)) < 0.1, -1, 1)
    window = fmt.to_bits(magnitudes * np.stack([signs, np.ones((rows, k))]))
    other_a, other_b = _float_rows(fmt, rng, rows, k)
    other = rng.random((rows, 1)) < 0.25
    return np.where(other, other_a, window[0]), np.where(other, other_b, window[1])


def _assert_window_exercised(fmt, a, b, **geometry):
    """The rows overflow terms, overflow sums of fitting terms, change sign, meet NaNs, and
    some stay clean."""
    term, _, _, _, term_overflow = float_mac_terms(a, b, fmt, **geometry)
    result = float_mac(a, b, fmt, **geometry)
    term_overflow = term_overflow.any(axis=-1)
    assert term_overflow.any() and (result.overflow & ~term_overflow).any()
    assert (~result.overflow).any() and result.nan.any()
    assert ((term > 0).any(axis=-1) & (term < 0).any(axis=-1)).any()


def _float_dut(variant: str, **geometry):
    if variant == "bf16":
        return BF16Mac(**geometry)
    return FP8Mac(variant=variant, **geometry)


def _assert_rtl_matches_reference(variant, a, b, *, backpressure=None, **geometry):
    fmt = FLOAT_FORMATS[variant]
    dut = _float_dut(variant, **geometry)
    result = simulate_rows(dut, a, b, backpressure=backpressure, name=variant)
    acc, nan, pos_inf, neg_inf = (result[n] for n in ("acc", "nan", "pos_inf", "neg_inf"))
    overflow = result["overflow"]
    expected = float_mac(a, b, fmt, **geometry)
    np.testing.assert_array_equal(acc, expected.acc)
    np.testing.assert_array_equal(nan == 1, expected.nan)
    np.testing.assert_array_equal(pos_inf == 1, expected.pos_inf)
    np.testing.assert_array_equal(neg_inf == 1, expected.neg_inf)
    np.testing.assert_array_equal(overflow == 1, expected.overflow)


FLOAT_CASES = [
    ("e4m3", 32, 16, 6, None, True),
    ("e4m3", 12, 3, 5, None, True),  # narrow window: rounding and saturation everywhere
    ("e4m3", 48, 18, 4, None, True),  # exact products
    ("e4m3", 8, -40, 2, None, True),  # window far below every product: all terms round to 0
    ("e4m3", 8, 60, 2, None, True),  # window far above: every nonzero term overflows
    ("e4m3", 8, 60, 2, 3, False),  # ... and is dropped
    ("e4m3", 32, 12, 6, 20, False),  # the cost study's narrow wrapping window
    ("e5m2", 32, 16, 6, None, True),
    ("e5m2", 16, 8, 4, None, True),
    ("e5m2", 16, 8, 4, 6, False),
    ("bf16", 48, 24, 6, None, True),
    ("bf16", 24, 6, 4, None, True),
    ("bf16", 48, 24, 6, 30, False),
]


#: The FLOAT_CASES the fast loop (``-m "not slow"``) runs: one narrow saturating, one wrapping
#: term window, one bfloat16.
FAST_FLOAT_CASES = [FLOAT_CASES[1], FLOAT_CASES[6], FLOAT_CASES[11]]


@pytest.mark.parametrize(
    ("variant", "acc_bits", "acc_frac_bits", "k", "term_bits", "saturate"),
    [
        pytest.param(*case, marks=() if case in FAST_FLOAT_CASES else pytest.mark.slow)
        for case in FLOAT_CASES
    ],
    ids=[
        f"{v}-acc{a}-frac{f}" + ("" if t is None else f"-term{t}") + ("" if s else "-wrap")
        for v, a, f, _, t, s in FLOAT_CASES
    ],
)
def test_float_mac_rtl_matches_reference(variant, acc_bits, acc_frac_bits, k, term_bits, saturate):
    rng = np.random.default_rng(acc_bits * 100 + acc_frac_bits)
    a, b = _float_rows(FLOAT_FORMATS[variant], rng, 2400 // k, k)
    _assert_rtl_matches_reference(
        variant,
        a,
        b,
        backpressure=acc_bits if k == 4 else None,
        acc_bits=acc_bits,
        acc_frac_bits=acc_frac_bits,
        term_bits=term_bits,
        saturate=saturate,
    )


@pytest.mark.parametrize(
    ("variant", "acc_bits", "acc_frac_bits", "term_bits"),
    [
        ("e4m3", 16, 4, 9),
        ("e4m3", 10, -2, 4),
        ("e4m3", 32, 18, 12),
        ("e5m2", 24, 6, 12),
        ("bf16", 24, 130, 16),  # subnormal times normal products reach the term window
    ],
)
@pytest.mark.slow
def test_rtl_exponent_pairs_in_a_wrapping_window(variant, acc_bits, acc_frac_bits, term_bits):
    """Pairs of exponent fields (all of them for FP8; for bfloat16 the smallest and largest
    of ``a`` with all of ``b``) with mantissas 0, 1 and all ones -- the smallest and largest
    products of each shift, subnormals and specials included -- random signs, eight products
    per row: a wrong term or a wrong drop changes the wrapped sum."""
    fmt = FLOAT_FORMATS[variant]
    exp_top = (1 << fmt.exp_bits) - 1
    mantissas = (0, 1, (1 << fmt.man_bits) - 1)
    a_exponents = (0, 1, 2, 3, exp_top - 1, exp_top) if variant == "bf16" else range(exp_top + 1)
    a_values, b_values = (
        np.array([(e << fmt.man_bits) | m for e in exponents for m in mantissas])
        for exponents in (a_exponents, range(exp_top + 1))
    )
    a, b = np.repeat(a_values, len(b_values)), np.tile(b_values, len(a_values))
    rng = np.random.default_rng(acc_bits + term_bits)
    a, b = (x | (rng.integers(0, 2, x.shape) << (fmt.width - 1)) for x in (a, b))
    _assert_rtl_matches_reference(
        variant,
        a.reshape(-1, 8),
        b.reshape(-1, 8),
        acc_bits=acc_bits,
        acc_frac_bits=acc_frac_bits,
        term_bits=term_bits,
        saturate=False,
    )


#: Narrow term windows (4 bits of headroom for the sum), saturating and wrapping.
WINDOW_CASES = [
    (
        variant,
        {"acc_bits": acc, "acc_frac_bits": frac, "term_bits": acc - 5, "saturate": saturate},
    )
    for variant, acc, frac in (("e4m3", 16, 6), ("e5m2", 20, 6), ("bf16", 32, 12))
    for saturate in (True, False)
]
WINDOW_IDS = [
    f"{v}-acc{g['acc_bits']}-term{g['term_bits']}-{'sat' if g['saturate'] else 'wrap'}"
    for v, g in WINDOW_CASES
]
WINDOW_K = 48


def _window_case(variant: str, geometry: dict, seed: int):
    fmt = FLOAT_FORMATS[variant]
    rng = np.random.default_rng(seed)
    rows = 2400 // WINDOW_K
    frac, term_bits = geometry["acc_frac_bits"], geometry["term_bits"]
    a, b = _window_rows(fmt, rng, rows, WINDOW_K, frac, term_bits)
    _assert_window_exercised(fmt, a, b, **geometry)
    return fmt, a, b


@pytest.mark.parametrize(("variant", "geometry"), WINDOW_CASES, ids=WINDOW_IDS)
def test_float_mac_term_window_against_python_integers(variant, geometry):
    fmt, a, b = _window_case(variant, geometry, seed=1)
    result = float_mac(a, b, fmt, **geometry)
    xs = np.array(_exact(a, fmt)).reshape(a.shape)
    ys = np.array(_exact(b, fmt)).reshape(b.shape)
    for row in range(a.shape[0]):
        got = (
            int(result.acc[row]),
            bool(result.nan[row]),
            bool(result.pos_inf[row]),
            bool(result.neg_inf[row]),
            bool(result.overflow[row]),
        )
        assert got == _expected_row(xs[row], ys[row], **geometry), f"row {row}"


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "geometry"), WINDOW_CASES, ids=WINDOW_IDS)
def test_float_mac_rtl_term_window_matches_reference(variant, geometry):
    _, a, b = _window_case(variant, geometry, seed=2)
    backpressure = geometry["acc_bits"] if geometry["saturate"] else None
    _assert_rtl_matches_reference(variant, a, b, backpressure=backpressure, **geometry)


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
    acc = simulate_rows(dut, a, b, backpressure=backpressure)["acc"]
    np.testing.assert_array_equal(acc, int_mac(a, b, width=width, acc_bits=acc_bits))


def test_single_product_rows_and_restart():
    a = np.array([[0x38], [0x40], [0xB8]])  # E4M3 1, 2, -1: K = 1, first and last together
    acc = simulate_rows(FP8Mac(acc_bits=16, acc_frac_bits=4), a, a)["acc"]
    assert acc.tolist() == [16, 64, 16]


@pytest.mark.slow
def test_baselines_export_to_verilog():
    with use_yowasp_env():
        for dut in (
            IntMac(),
            FP8Mac(variant="e5m2", acc_bits=24, acc_frac_bits=8),
            BF16Mac(acc_bits=32, acc_frac_bits=8),
        ):
            assert "module top" in verilog.convert(dut, name="top")


# --- constructor parameters -------------------------------------------------------------------


def test_constructor_properties(elaborate):
    mac = elaborate(FP8Mac(variant="e5m2", acc_bits=30, acc_frac_bits=-3))
    window = mac.accumulator
    assert (mac.variant, window.acc_bits, window.acc_frac_bits, window.acc_max, mac.latency) == (
        "e5m2",
        30,
        -3,
        (1 << 29) - 1,
        1,
    )
    assert (window.term_bits, window.saturate) == (29, True)  # defaults: acc_bits - 1, saturating
    narrow = elaborate(BF16Mac(acc_bits=48, acc_frac_bits=24, term_bits=20, saturate=False))
    window = narrow.accumulator
    assert (narrow.fmt, window.term_bits, window.saturate, window.acc_max) == (
        BF16,
        20,
        False,
        (1 << 47) - 1,
    )
    default = elaborate(IntMac())
    assert (default.width, default.acc_bits) == (8, 32)
    assert elaborate(IntMac(width=4, acc_bits=8)).latency == 1


_TERM_RANGE = r"term_bits must be in \[2, 31\], not "
_SATURATE = "saturate must be a bool"


@pytest.mark.parametrize(
    ("factory", "error", "message"),
    [
        (lambda: FP8Mac(variant="e3m4", acc_bits=32, acc_frac_bits=8), ValueError, "variant"),
        (lambda: FP8Mac(acc_bits=7, acc_frac_bits=8), ValueError, r"acc_bits must be in \[8"),
        (lambda: FP8Mac(acc_bits=63, acc_frac_bits=8), ValueError, "acc_bits"),
        (lambda: FP8Mac(acc_bits=32.0, acc_frac_bits=8), TypeError, "acc_bits"),
        (lambda: BF16Mac(acc_bits=32, acc_frac_bits=5000), ValueError, "acc_frac_bits"),
        (lambda: BF16Mac(acc_bits=32, acc_frac_bits=True), TypeError, "acc_frac_bits"),
        (lambda: FP8Mac(acc_bits=32, acc_frac_bits=8, term_bits=1), ValueError, _TERM_RANGE),
        (lambda: FP8Mac(acc_bits=32, acc_frac_bits=8, term_bits=32), ValueError, _TERM_RANGE),
        (lambda: BF16Mac(acc_bits=16, acc_frac_bits=8, term_bits=8.0), TypeError, "term_bits"),
        (lambda: FP8Mac(acc_bits=32, acc_frac_bits=8, saturate=1), TypeError, _SATURATE),
        (lambda: BF16Mac(acc_bits=32, acc_frac_bits=8, saturate="no"), TypeError, _SATURATE),
        (
            lambda: float_mac([1], [1], E4M3, acc_bits=32, acc_frac_bits=0, term_bits=40),
            ValueError,
            _TERM_RANGE,
        ),
        (
            lambda: float_mac_terms([1], [1], E4M3, acc_bits=32, acc_frac_bits=0, saturate=None),
            TypeError,
            _SATURATE,
        ),
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


# --- the product terms on their own (the array's INT8 and FP8 PEs use them) ------------------


def run_product_term(unit, a, b, outputs):
    """Drive operand pairs into a combinational product-term unit; read ``outputs`` (names of
    ports or ``port.field``) back for every pair, in one simulation."""
    sim = Simulator(unit)
    ports = [functools.reduce(getattr, name.split("."), unit) for name in outputs]
    results = []

    async def testbench(ctx):
        for x, y in zip(a, b, strict=True):
            ctx.set(unit.a, int(x))
            ctx.set(unit.b, int(y))
            results.append([ctx.get(port) for port in ports])

    sim.add_testbench(testbench)
    sim.run()
    return np.array(results, dtype=np.int64).T


@pytest.mark.parametrize("width", [2, 5])
def test_int_product_term_every_pair(width):
    lo = -(1 << (width - 1))
    a, b = (v.ravel() for v in np.meshgrid(np.arange(lo, -lo), np.arange(lo, -lo)))
    unit = IntProductTerm(width=width)
    assert unit.latency == 0
    (product,) = run_product_term(unit, a, b, ["product"])
    np.testing.assert_array_equal(product, a * b)  # Python integers: an independent reference


@pytest.mark.parametrize(
    ("variant", "acc_bits", "acc_frac_bits", "term_bits", "saturate"),
    [("e4m3", 16, 4, None, True), ("e4m3", 24, 18, 12, False), ("e5m2", 16, 8, 6, False)],
)
def test_float_product_term_sampled_pairs(variant, acc_bits, acc_frac_bits, term_bits, saturate):
    fmt = FLOAT_FORMATS[variant]
    geometry = float_geometry(acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate)
    unit = FloatProductTerm(fmt=fmt, config=geometry)
    assert (unit.fmt, unit.config, unit.latency) == (fmt, geometry, 0)
    rng = np.random.default_rng(acc_bits)
    a, b = (v.ravel() for v in np.meshgrid(np.arange(256), np.arange(256)))
    pick = rng.choice(a.size, 6000, replace=False)
    a, b = a[pick], b[pick]
    names = ["term_sm.magnitude", "term_sm.negative", "term_sm.nan", "term_sm.overflow"]
    magnitude, negative, nan, overflow, infinite = run_product_term(
        unit, a, b, [*names, "infinite"]
    )
    term, g_nan, pos_inf, neg_inf, g_overflow = float_mac_terms(
        a, b, fmt, acc_bits=acc_bits, acc_frac_bits=acc_frac_bits, term_bits=term_bits,
        saturate=saturate,
    )  # fmt: skip
    np.testing.assert_array_equal(np.where(negative == 1, -magnitude, magnitude), term)
    np.testing.assert_array_equal(nan == 1, g_nan)
    np.testing.assert_array_equal(overflow == 1, g_overflow)
    np.testing.assert_array_equal(infinite == 1, pos_inf | neg_inf)
    np.testing.assert_array_equal(negative[infinite == 1] == 1, neg_inf[infinite == 1])
    assert g_overflow.any() and (term != 0).any()


def test_product_terms_validate_parameters():
    with pytest.raises(ValueError, match=r"^width must be in \[2, 16\], not 17$"):
        IntProductTerm(width=17)
    with pytest.raises(TypeError, match=r"^fmt must be a FloatFormat"):
        FloatProductTerm(fmt="e4m3", config=float_geometry(16, 4))
    with pytest.raises(TypeError, match=r"^config must be an AccumulatorConfig"):
        FloatProductTerm(fmt=E4M3, config=MacConfig(pal8))
