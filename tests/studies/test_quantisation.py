"""Tests of the accuracy study's data, metrics and quantisers (``palhdl.studies.quantisation``).

Metrics are checked against closed forms; the quantisers against exact references from
``tests/exact.py`` (integer nearest-log and IEEE rounding), hand-computed values, and exact
``fractions`` inequalities.
"""

import math
from fractions import Fraction

import ml_dtypes
import mpmath
import numpy as np
import pytest
from exact import FLOAT64, code_of_dyadic, ieee_round, nearest_log, pal_ieee_bits

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.sim import golden
from palhdl.sim.golden.mx import MX_FORMATS, mx_matmul_values
from palhdl.studies import quantisation

E4M3 = (3, 4)
E5M2 = (2, 5)
BF16 = (7, 8)


def _dyadic(value: float) -> tuple[bool, int, int]:
    """``(negative, mag, exp2)`` with ``|value| = mag * 2**exp2`` exactly."""
    num, den = abs(value).as_integer_ratio()
    return value < 0, num, -(den.bit_length() - 1)


def _ieee_value(bits: int, ieee) -> Fraction:
    """Value of a positive finite IEEE bit pattern."""
    man_bits, exp_bits = ieee
    bias = (1 << (exp_bits - 1)) - 1
    biased, fraction = bits >> man_bits, bits & ((1 << man_bits) - 1)
    if biased == 0:
        return Fraction(fraction) * Fraction(2) ** (1 - bias - man_bits)
    return Fraction((1 << man_bits) | fraction) * Fraction(2) ** (biased - bias - man_bits)


# --- constructor and argument errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kind": "fp4", "scaling": "none"}, ValueError, "kind must be one of"),
        ({"kind": "int8", "scaling": "diagonal"}, ValueError, "scaling must be one of"),
        ({"kind": "pal", "scaling": "tensor"}, ValueError, "fmt must be a PALFormat"),
        ({"kind": "int8", "scaling": "tensor", "fmt": pal8}, ValueError, "fmt must be a PALFormat"),
        (
            {"kind": "bf16", "scaling": "tensor"},
            ValueError,
            "scaling must be 'none' for kind 'bf16'",
        ),
        (
            {"kind": "int8", "scaling": "none"},
            ValueError,
            "kind 'int8' needs a scaling, not 'none'",
        ),
        ({"kind": "mxint8", "scaling": "none"}, ValueError, "kind 'mxint8' needs a scaling"),
        (
            {"kind": "int8", "scaling": "block", "adaptive": True},
            ValueError,
            "adaptive needs kind 'pal' with scaling 'channel' or 'block'",
        ),
        (
            {"kind": "pal", "scaling": "tensor", "fmt": pal8, "adaptive": True},
            ValueError,
            "adaptive needs kind 'pal'",
        ),
        ({"kind": "pal", "scaling": "block", "fmt": pal8, "adaptive": 1}, TypeError, "adaptive"),
        ({"kind": "mxint8", "scaling": "block", "block_size": 0}, ValueError, "block_size must"),
    ],
)
def test_scheme_rejects_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        quantisation.Scheme(**kwargs)


def test_argument_errors_name_the_parameter():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="distribution must be one of"):
        quantisation.sample("cauchy", (2, 2), 0)
    with pytest.raises(ValueError, match="reference and approx must have the same shape"):
        quantisation.sqnr_db(x, np.ones((3, 2)))
    with pytest.raises(ValueError, match="x must be a 2-D array"):
        quantisation.int8_roundtrip(np.ones(3), "tensor")
    with pytest.raises(ValueError, match="per must be one of"):
        quantisation.int8_roundtrip(x, None)
    with pytest.raises(ValueError, match="per must be one of"):
        quantisation.fp_roundtrip(x, ml_dtypes.float8_e4m3fn, "block")
    with pytest.raises(ValueError, match="dtype must be one of"):
        quantisation.fp_roundtrip(x, np.float16)
    with pytest.raises(ValueError, match="limit must be a positive finite number"):
        quantisation.pow2_scales(x, "tensor", 0.0)
    with pytest.raises(ValueError, match="scaling must be one of"):
        quantisation.pal_matmul(x, x.T, MacConfig(pal8), "row")
    with pytest.raises(ValueError, match=r"a and b must have shapes \(M, K\) and \(K, N\)"):
        quantisation.pal_matmul(x, x, MacConfig(pal8))
    with pytest.raises(ValueError, match="side must be one of 'row', 'col'"):
        quantisation.Scheme("int8", "tensor").roundtrip(x, "diagonal")
    with pytest.raises(ValueError, match="block_size needs per 'row' or 'col', not 'tensor'"):
        quantisation.int8_roundtrip(x, "tensor", 2)
    with pytest.raises(ValueError, match="block_size needs per 'row' or 'col', not 'tensor'"):
        quantisation.mx_roundtrip(x, MX_FORMATS["mxint8"], "tensor", 2)
    with pytest.raises(ValueError, match="per must be one of 'tensor', 'row', 'col'"):
        quantisation.mx_roundtrip(x, MX_FORMATS["mxint8"], None)
    with pytest.raises(ValueError, match="split needs an adaptive scheme"):
        quantisation.Scheme("pal", "block", pal8).split(x)


# --- metrics ----------------------------------------------------------------------------------


def test_identity_has_infinite_sqnr_and_no_error():
    x = quantisation.sample("gaussian", (8, 8), 0)
    assert quantisation.sqnr_db(x, x) == math.inf
    assert quantisation.relative_errors(x, x) == (0.0, 0.0)
    assert quantisation.relative_frobenius_error(x, x) == 0.0


def test_sqnr_of_uniform_midrise_quantiser_matches_closed_form():
    # x_k = (k + 1/2) / n for k in [-N, N) quantised to floor(x) + 1/2 (step 1, n points per
    # step): mean x**2 = (4N**2 - 1) / (12 n**2), mean error**2 = (n**2 - 1) / (12 n**2).
    n, steps = 16, 128
    big_n = steps * n
    x = (np.arange(-big_n, big_n) + 0.5) / n
    quantised = np.floor(x) + 0.5
    expected = 10 * math.log10((4 * big_n**2 - 1) / (n**2 - 1))
    assert quantisation.sqnr_db(x, quantised) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(48.18, abs=0.01)  # the textbook 6.02 dB per bit, 8 bits


def test_sqnr_and_frobenius_of_a_uniform_relative_error():
    reference = np.array([[3.0, 4.0]])
    assert quantisation.sqnr_db(reference, reference * 1.01) == pytest.approx(40.0, abs=1e-9)
    approx = np.array([[3.0, 4.5]])
    assert quantisation.relative_frobenius_error(reference, approx) == pytest.approx(0.1, rel=1e-12)


def test_relative_errors_skip_zero_references_and_count_flushes():
    reference = np.array([1.0, 2.0, 0.0, -4.0, 8.0])
    approx = np.array([1.125, 2.0, 7.0, -2.0, 0.0])
    assert quantisation.relative_errors(reference, approx) == (0.3125, 1.0)
    stats = quantisation.error_stats(reference, approx)
    assert stats.flushed == 0.25
    assert (stats.median_rel, stats.max_rel) == (0.3125, 1.0)
    assert quantisation.relative_errors(np.zeros(3), np.ones(3)) == (0.0, 0.0)


# --- quantisers -------------------------------------------------------------------------------


def test_pow2_scales_are_the_largest_that_fit():
    x = quantisation.sample("gauss_lognormal", (40, 7), 3)
    x[5] = 0.0
    slices = {
        ("tensor", None): lambda i, j: x,
        ("row", None): lambda i, j: x[i],
        ("col", None): lambda i, j: x[:, j],
        ("row", 3): lambda i, j: x[i, j // 3 * 3 : j // 3 * 3 + 3],
        ("col", 16): lambda i, j: x[i // 16 * 16 : i // 16 * 16 + 16, j],
    }
    for (per, size), block in slices.items():
        scales = np.broadcast_to(quantisation.pow2_scales(x, per, 448.0, size), x.shape)
        for (i, j), s in np.ndenumerate(scales):
            peak = Fraction(float(np.abs(block(i, j)).max()))
            if peak == 0:
                assert s == 0
            else:
                assert peak * Fraction(2) ** int(s) <= 448 < peak * Fraction(2) ** int(s + 1)


def test_pow2_scales_boundary_is_inclusive():
    x = np.array([[1.75, -1.0], [1.75 + 2**-20, 0.5], [1.0, 0.0]])
    assert quantisation.pow2_scales(x, "row", 448.0).ravel().tolist() == [8, 7, 8]


@pytest.mark.parametrize(
    ("dtype", "ieee"),
    [(ml_dtypes.float8_e4m3fn, E4M3), (ml_dtypes.float8_e5m2, E5M2), (ml_dtypes.bfloat16, BF16)],
)
def test_fp_roundtrip_rounds_to_nearest_even(dtype, ieee):
    # Exact midpoints and their float32 neighbours, normal and subnormal, below the top binade
    # (where E4M3fn departs from IEEE layout).
    man_bits, exp_bits = ieee
    emin = 2 - (1 << (exp_bits - 1))
    values = []
    for exponent in range(emin - man_bits - 1, emin + 4):
        for mantissa in (1, 3, 5, 9, 17, 33):
            mid = np.float32(math.ldexp(mantissa, exponent - man_bits - 1))
            values += [mid, np.nextafter(mid, np.float32(0)), np.nextafter(mid, np.float32(1))]
    x = np.array(values, dtype=np.float32).astype(np.float64)[None, :]
    got = quantisation.fp_roundtrip(x, dtype)
    for value, result in zip(x.ravel(), got.ravel(), strict=True):
        _, mag, exp2 = _dyadic(float(value))
        assert Fraction(float(result)) == _ieee_value(ieee_round(mag, exp2, ieee), ieee)


def test_fp8_tensor_scaling_by_hand():
    # max 1000: 2**-2 is the largest scale with 1000 * 2**s <= 448; 250 rounds to 256 in E4M3
    # (quantum 16 in [128, 256)), back to 1024; 1 -> 0.25 -> exact -> 1.
    x = np.array([[1000.0, 1.0]])
    assert quantisation.fp_roundtrip(x, ml_dtypes.float8_e4m3fn, "tensor").tolist() == [
        [1024.0, 1.0]
    ]


def test_int8_by_hand():
    x = np.array([[-1.0, 0.5, 1.0, 0.25], [0.0, 0.0, 0.0, 0.0]])
    # scale 1/127: 63.5 rounds to the even 64, 31.75 to 32.
    expected = np.array([[-127, 64, 127, 32], [0, 0, 0, 0]]) / 127
    np.testing.assert_allclose(quantisation.int8_roundtrip(x, "tensor"), expected, rtol=1e-15)
    np.testing.assert_allclose(quantisation.int8_roundtrip(x, "row"), expected, rtol=1e-15)
    # Per column: column 1 has max 0.5, so 0.5 -> 127 exactly.
    assert quantisation.int8_roundtrip(x, "col")[0, 1] == pytest.approx(0.5, rel=1e-15)
    # Blocks of 2 along the rows: [-1, 0.5] has scale 1/127, [1, 0.25] too; 3 columns per
    # block down the columns: the second block is the short one, [0.0].
    by_row = quantisation.int8_roundtrip(x, "row", 2)
    np.testing.assert_allclose(by_row, expected, rtol=1e-15)
    x[1] = [0.0, 2.0, 1.5, 1.0]
    by_col = quantisation.int8_roundtrip(x.T, "col", 3)  # blocks [0, 2, 1.5] and [1] per column
    # 1.5 / (2 / 127) = 95.25 -> 95; the short block [1.0] has its own scale 1 / 127.
    assert by_col[:, 1].tolist() == pytest.approx([0.0, 2.0, 95 * 2 / 127, 1.0], rel=1e-15)


def _block_scale(block: np.ndarray, log_max: int, frac_bits: int) -> int | None:
    """``floor((log_max - nearest_log(peak)) / 2**F)`` of a slice; None if it is all zero."""
    peak = float(np.abs(block).max())
    if peak == 0:
        return None
    _, mag, exp2 = _dyadic(peak)
    return (log_max - nearest_log(mag, exp2, frac_bits)) >> frac_bits


@pytest.mark.parametrize(
    ("per", "block_size"),
    [(None, None), ("tensor", None), ("row", None), ("col", None), ("row", 4), ("col", 2)],
)
def test_pal_roundtrip_matches_exact_reference(per, block_size):
    fmt = PALFormat(int_bits=4, frac_bits=3)
    x = quantisation.sample("gauss_lognormal", (6, 9), 11)
    x[2, 3] = 0.0
    x[1, 4:8] = 0.0  # an all-zero block of 4 along row 1
    x *= np.exp2(np.arange(6) * 56.0 - 140)[:, None]  # rows 2**-140 .. 2**140: E8M0 clipping
    got = quantisation.pal_roundtrip(x, fmt, per, block_size=block_size)
    # Independent scales: s = floor((log_max - nearest_log(peak)) / 2**F) per slice; per block
    # clipped to the E8M0 range [-127, 127], an all-zero block taking its row's smallest.
    log_max = (1 << (fmt.int_bits + fmt.frac_bits - 1)) - 1
    for (i, j), value in np.ndenumerate(x):
        if per is None:
            s = 0
        elif block_size is None:
            s = _block_scale({"tensor": x, "row": x[i], "col": x[:, j]}[per], log_max, 3) or 0
        else:
            line = x[i] if per == "row" else x[:, j]
            scales = [
                _block_scale(line[start : start + block_size], log_max, 3)
                for start in range(0, len(line), block_size)
            ]
            live = [min(max(v, -127), 127) for v in scales if v is not None]
            s = scales[(j if per == "row" else i) // block_size]
            s = min(live, default=0) if s is None else min(max(s, -127), 127)
        negative, mag, exp2 = _dyadic(float(value))
        code = code_of_dyadic(negative, mag, exp2 + s, fmt)
        bits = pal_ieee_bits(np.array([code]), fmt, FLOAT64)
        assert got[i, j] == math.ldexp(float(bits.view(np.float64)[0]), -s)


def test_pal_roundtrip_relative_error_bound():
    x = quantisation.sample("gaussian", (64, 64), 5)
    got = quantisation.pal_roundtrip(x, pal16, "row")
    bound = float(mpmath.power(2, mpmath.mpf(1) / 256) - 1)
    assert np.max(np.abs(got - x) / np.abs(x)) <= bound * (1 + 1e-12)


def test_sample_is_float32_exact_and_seeded():
    for distribution in quantisation.DISTRIBUTIONS:
        x = quantisation.sample(distribution, (30, 40), 7)
        assert x.shape == (30, 40) and x.dtype == np.float64
        assert np.array_equal(x.astype(np.float32).astype(np.float64), x)
        assert np.array_equal(x, quantisation.sample(distribution, (30, 40), 7))
        assert not np.array_equal(x, quantisation.sample(distribution, (30, 40), 8))


def test_sample_distributions_have_their_quantiles():
    # Medians of |x|: N(0, 1) 0.6745; Laplace ln 2; Student's t (3 dof) 0.7649 (its 75 %
    # quantile); N(0, 1) * e^N(0, 1): log|x| = log|N| + N', so mean log|x| = E log|N| = -0.6352
    # (-(gamma + ln 2) / 2) and its variance is pi**2 / 8 + 1.
    n = 200_000
    medians = {"gaussian": 0.6745, "laplace": math.log(2), "student_t3": 0.7649}
    for distribution, median in medians.items():
        x = quantisation.sample(distribution, (n, 1), 1)
        assert np.median(np.abs(x)) == pytest.approx(median, abs=0.01)
    logs = np.log(np.abs(quantisation.sample("gauss_lognormal", (n, 1), 1)))
    assert logs.mean() == pytest.approx(-0.6352, abs=0.02)
    assert logs.var() == pytest.approx(math.pi**2 / 8 + 1, abs=0.05)


# --- matmul -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scaling", "kwargs"),
    [("channel", {}), ("none", {"adaptive": False}), ("block", {"block_size": 32})],
)
def test_pal_matmul_agrees_with_matmul_values(scaling, kwargs):
    a = quantisation.sample("laplace", (5, 70), 1)
    b = quantisation.sample("laplace", (70, 4), 2)
    config = MacConfig(pal8)
    ours = quantisation.pal_matmul(a, b, config, scaling, block_size=32)
    theirs = golden.matmul_values(a, b, config, **kwargs)
    assert np.array_equal(ours.acc, theirs.acc)
    assert np.array_equal(ours.scale_exp, theirs.scale_exp)


def test_adaptive_scheme_uses_the_chosen_split_on_the_same_accumulator():
    a = quantisation.sample("student_t3", (6, 70), 1)
    b = quantisation.sample("student_t3", (70, 5), 2)
    for scaling, block_size in (("block", 32), ("channel", None)):
        scheme = quantisation.Scheme("pal", scaling, pal8, adaptive=True)
        assert (scheme.label, scheme.bits) == ("pal8 adaptive", 8)
        choice = golden.choose_split(a, b, block_size=block_size)
        assert scheme.split(a, b) == choice
        config = MacConfig(pal8).retarget(choice.fmt)
        expected = golden.matmul_values(a, b, config, block_size=block_size)
        assert np.array_equal(scheme.matmul(a, b), expected.to_float64())
        # One operand on its own: the split chosen for it alone (column operands transposed).
        fixed = quantisation.Scheme(
            "pal", scaling, golden.choose_split(b.T, block_size=block_size).fmt
        )
        assert np.array_equal(scheme.roundtrip(b, "col"), fixed.roundtrip(b, "col"))


@pytest.mark.parametrize("scaling", ["none", "tensor", "channel", "block"])
def test_exact_pal8_matmul_only_rounds_product_mantissas(scaling):
    # The default pal8 accumulator is exact: the only difference from multiplying the decoded
    # operands is each product's linear mantissa, rounded to W = 6 fraction bits (relative
    # error <= 2**-7 of a mantissa >= 1).
    a = quantisation.sample("gaussian", (6, 50), 3)
    b = quantisation.sample("gaussian", (50, 5), 4)
    scheme = quantisation.Scheme("pal", scaling, pal8)
    qa, qb = scheme.roundtrip(a, "row"), scheme.roundtrip(b, "col")
    got = scheme.matmul(a, b)
    bound = np.abs(qa) @ np.abs(qb) * 2.0**-7
    assert np.all(np.abs(got - qa @ qb) <= bound * (1 + 1e-9))
    assert np.any(got != qa @ qb)


@pytest.mark.parametrize("kind", quantisation.MX_KINDS)
@pytest.mark.parametrize("scaling", ["tensor", "channel", "block"])
def test_mx_schemes_scale_per_tensor_row_or_block(kind, scaling):
    # MXINT8 as the exact reference: a power-of-two scale 2**(floor(log2 max) - 0) per slice,
    # elements round(64 x / X) (half to even) saturated to [-128, 127].
    a = quantisation.sample("student_t3", (5, 70), 3)
    b = quantisation.sample("student_t3", (70, 4), 4)
    scheme = quantisation.Scheme(kind, scaling, block_size=16)
    qa, qb = scheme.roundtrip(a, "row"), scheme.roundtrip(b, "col")
    if kind == "mxint8":
        for (i, j), value in np.ndenumerate(a):
            block = {"tensor": a, "channel": a[i], "block": a[i, j // 16 * 16 : j // 16 * 16 + 16]}
            peak = Fraction(float(np.abs(block[scaling]).max()))
            e = peak.numerator.bit_length() - peak.denominator.bit_length()
            e -= Fraction(2) ** e > peak
            q = min(max(round(Fraction(float(value)) / Fraction(2) ** e * 64), -128), 127)
            assert Fraction(float(qa[i, j])) == q * Fraction(2) ** e / 64
    # The matmul is the product of the quantised operands, block by block in float64.
    got = scheme.matmul(a, b)
    assert np.all(np.abs(got - qa @ qb) <= np.abs(qa) @ np.abs(qb) * 2.0**-45)
    if scaling == "block":
        fmt = MX_FORMATS[kind]
        assert np.array_equal(got, mx_matmul_values(a, b, fmt, block_size=16))
    assert (
        scheme.scaling_label
        == {
            "tensor": "tensor E8M0",
            "channel": "row/col E8M0",
            "block": "block 16 E8M0",
        }[scaling]
    )


def test_fp8_block_scales_fit_the_block_maximum():
    x = quantisation.sample("gauss_lognormal", (3, 40), 5)
    scheme = quantisation.Scheme("fp8_e4m3", "block", block_size=8)
    got = scheme.roundtrip(x, "row")
    shift = quantisation.pow2_scales(x, "row", 448.0, 8)
    expected = np.ldexp(x, shift).astype(np.float32).astype(ml_dtypes.float8_e4m3fn)
    assert np.array_equal(got, np.ldexp(expected.astype(np.float64), -shift))
    assert scheme.label == "FP8 E4M3" and scheme.scaling_label == "block 8 2^s"


def test_baseline_matmul_is_float64_product_of_quantised_operands():
    a = quantisation.sample("gaussian", (4, 20), 5)
    b = quantisation.sample("gaussian", (20, 3), 6)
    scheme = quantisation.Scheme("int8", "channel")
    expected = quantisation.int8_roundtrip(a, "row") @ quantisation.int8_roundtrip(b, "col")
    assert np.array_equal(scheme.matmul(a, b), expected)
