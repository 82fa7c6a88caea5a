"""Cross-check of the golden model against xlns 1.0.5, an independent LNS library.

xlns (``import xlns as xl``) stores a nonzero value as an unbounded integer ``x = round(log_B|v|)``
with the global base ``B = 2**(2**-F)`` set by ``xl.xlnssetF(F)``, which is exactly PAL's log
magnitude ``L`` in units of ``2**-F``. Its numpy class ``xlnsnp`` packs ``nd = 2*x + sign``, with
``nd = INT64_MIN (| sign)`` for zero. Multiplication and division add/subtract ``x``; addition is
``max + sbdb_ufunc(-d, opposite)`` where the default ``sbdb_ufunc_ideal`` rounds the float64 value
of ``log_B|1 +- B**(-d)|`` to nearest, i.e. PAL's ``sb``/``db`` when float64 rounds correctly.

Where the two libraries agree by design (compared here): products, quotients and sums of
nonzero in-range operands, ``x + 0``; results outside PAL's range are compared through PAL's
saturation (to +-max) and flush (to +0).

Where xlns differs or is wrong, so those cases are excluded from the value comparison (each one
is pinned by a test below, so a change in xlns is noticed):

* Exact cancellation ``x + (-x)``: ``xlnsnp`` evaluates ``db`` at ``d = 0`` as ``db`` at
  ``d = 1`` (its ``sbdb_ufunc_ideal`` clamps ``min(-s, z)``), returning a nonzero value; the
  scalar ``xlns`` class returns zero carrying the left operand's sign (a negative zero). PAL: +0.
* Division by zero: xlns has no NaN; ``xlnsnp`` subtracts the zero sentinel with int64
  wrap-around (``1 / 0`` gives 0, other ``x / 0`` an arbitrary finite value). PAL: NaN.
* Zero results carry a sign in xlns (``-x * 0`` is a negative zero); PAL has only +0.
* Range: xlns logs are unbounded (``xlnssetovf`` limits apply only on explicit ``ovf()``), so
  products/sums beyond PAL's range stay finite in xlns; PAL saturates to +-max or flushes to +0.
* NaN operands: xlns has none; excluded.
* Conversion from float: xlns rounds ``log(|v|) / log(B)`` in float64, which can misround values
  within about ``1e-13`` (relative, in the log domain) of a rounding midpoint; PAL decides
  exactly. Compared away from midpoints only.
"""

import math

import numpy as np
import pytest
import xlns as xl
from exact import gauss_cutoff, gauss_log, split

from palhdl.format import pal8, pal16
from palhdl.sim import golden

ZERO_ND = np.iinfo(np.int64).min
#: Random pal16 operand pairs (``random_vectors`` may lower it).
PAL16_PAIRS = 100_000
#: Generous bound on the float64 error of xlns' Gaussian-log evaluation (in units of 2**-F):
#: only exact values this close to a rounding tie could round differently in xlns.
XLNS_TIE_TOLERANCE = 1e-9


@pytest.fixture(params=[pal8, pal16], ids=str)
def fmt(request):
    """A PAL format with xlns set to the same precision (restored to xlns' default after)."""
    previous = xl.xlnsF
    xl.xlnssetF(request.param.frac_bits)
    yield request.param
    xl.xlnssetF(previous)


def _nonzero_codes(fmt):
    codes = np.arange(1 << fmt.width)
    return codes[(codes & fmt.mag_mask) != 0]


def _to_xlns(codes, fmt):
    """The xlnsnp array of the (non-NaN) PAL values, built through xlns' public float constructor
    from the decoded float64 values (2**(L/2**F) is far from every xlns rounding midpoint)."""
    return xl.xlnsnp(golden.decode(codes, fmt))


def _from_xlns(result, fmt):
    """``(negative, L, zero)`` of an xlnsnp array."""
    nd = result.nd
    zero = (nd | 1) == ZERO_ND + 1
    return (nd & 1) == 1, nd >> 1, zero


def _pal_of_xlns(result, fmt):
    """The PAL code an xlns result must give after PAL's saturation and flush to +0."""
    negative, log, zero = _from_xlns(result, fmt)
    biased = np.minimum(log + fmt.bias, fmt.mag_mask)
    codes = np.where(negative, fmt.sign_mask, 0) | np.maximum(biased, 0)
    return np.where(zero | (biased < 1), fmt.zero_code, codes)


def _pairs(fmt, count, rng_seed=0):
    """All nonzero finite pairs for pal8; ``count`` random and close-magnitude pairs for
    pal16."""
    codes = _nonzero_codes(fmt)
    if fmt.width <= 8:
        return np.repeat(codes, codes.size), np.tile(codes, codes.size)
    rng = np.random.default_rng(rng_seed)
    a = rng.choice(codes, count)
    b = rng.choice(codes, count)
    close = np.clip((a & fmt.mag_mask) + rng.integers(-600, 601, a.size), 1, fmt.mag_mask)
    b[: a.size // 2] = (close | (b & fmt.sign_mask))[: a.size // 2]
    return a, b


def _xlns_operands(a, b, fmt):
    """xlnsnp arrays for the nonzero finite code arrays ``a`` and ``b``."""
    codes = _nonzero_codes(fmt)
    table = _to_xlns(codes, fmt)
    position = np.zeros(1 << fmt.width, dtype=np.int64)
    position[codes] = np.arange(codes.size)
    return table[position[a]], table[position[b]]


def test_xlns_representation_matches_pal_logs(fmt):
    codes = _nonzero_codes(fmt)
    negative, log, zero = _from_xlns(_to_xlns(codes, fmt), fmt)
    ref_negative, ref_log, _, _ = split(codes, fmt)
    np.testing.assert_array_equal(log, ref_log)
    np.testing.assert_array_equal(negative, ref_negative)
    assert not zero.any()
    assert (xl.xlnsnp(0.0).nd == ZERO_ND).all()


@pytest.mark.parametrize("op", ["mul", "div"])
def test_mul_div_agree(fmt, op, random_vectors):
    a, b = _pairs(fmt, random_vectors(PAL16_PAIRS))
    xa, xb = _xlns_operands(a, b, fmt)
    result = xa * xb if op == "mul" else xa / xb
    got = getattr(golden, op)(a, b, fmt).astype(np.int64)
    np.testing.assert_array_equal(got, _pal_of_xlns(result, fmt))
    _, log, _ = _from_xlns(result, fmt)
    # The comparison reaches both of PAL's range limits.
    assert (log > fmt.log_max).any() and (log < fmt.log_min).any()


def test_gaussian_logs_are_far_from_ties(fmt):
    """No exact Gaussian log of this precision is within XLNS_TIE_TOLERANCE of a rounding tie,
    so xlns' float64 ``sbdb_ufunc_ideal`` must round every one of them like PAL's tables."""
    for same_sign in (False, True):
        for d in range(0 if same_sign else 1, gauss_cutoff(fmt.frac_bits) + 1):
            value = float(gauss_log(d, fmt.frac_bits, same_sign))
            assert abs(abs(value - math.floor(value)) - 0.5) > XLNS_TIE_TOLERANCE


@pytest.mark.parametrize("op", ["add", "sub"])
def test_add_sub_agree_except_cancellation(fmt, op, random_vectors):
    assert xl.sbdb_ufunc is xl.sbdb_ufunc_ideal
    a, b = _pairs(fmt, random_vectors(PAL16_PAIRS), rng_seed=1)
    xa, xb = _xlns_operands(a, b, fmt)
    result = xa + xb if op == "add" else xa - xb
    got = getattr(golden, op)(a, b, fmt).astype(np.int64)
    b_effective = b ^ fmt.sign_mask if op == "sub" else b
    cancel = (a & fmt.mag_mask) == (b & fmt.mag_mask)
    cancel &= (a >> fmt.mag_bits) != (b_effective >> fmt.mag_bits)
    expected = _pal_of_xlns(result, fmt)
    np.testing.assert_array_equal(got[~cancel], expected[~cancel])
    assert cancel.any() and (got[cancel] == fmt.zero_code).all()


def test_add_with_zero_agrees(fmt):
    codes = _nonzero_codes(fmt)
    xs = _to_xlns(codes, fmt)
    zeros = xl.xlnsnp(np.zeros(codes.size))
    expected = _pal_of_xlns(xs + zeros, fmt)
    np.testing.assert_array_equal(golden.add(codes, np.zeros_like(codes), fmt), expected)
    np.testing.assert_array_equal(expected, codes)


# --- pinned xlns differences (reasons for the exclusions above) ---------------------------------


def test_xlnsnp_cancellation_is_not_zero(fmt):
    codes = _nonzero_codes(fmt)
    xs = _to_xlns(codes, fmt)
    _, _, zero = _from_xlns(xs - xs, fmt)
    assert not zero.any()
    assert (golden.sub(codes, codes, fmt) == fmt.zero_code).all()


def test_scalar_xlns_cancellation_gives_signed_zero(fmt):
    minus_three = xl.xlns(-3.0)
    difference = minus_three + xl.xlns(3.0)
    assert float(difference) == 0.0 and math.copysign(1.0, float(difference)) == -1.0
    three = golden.encode([-3.0], fmt)
    assert golden.add(three, golden.neg(three, fmt), fmt)[0] == fmt.zero_code


def test_xlnsnp_division_by_zero_wraps_around(fmt):
    """``xlnsnp`` computes ``x / 0`` as ``nd(x) - INT64_MIN`` with int64 wrap-around: ``1 / 0``
    gives zero, other quotients an arbitrary finite value (xlns has no NaN)."""
    xs = _to_xlns(np.array([fmt.bias, fmt.bias + 5]), fmt)
    quotient = xs / xl.xlnsnp(np.zeros(2))
    _, _, zero = _from_xlns(quotient, fmt)
    assert zero.tolist() == [True, False]
    assert (golden.div(np.array([fmt.bias]), np.array([0]), fmt) == fmt.nan_code).all()


def test_xlnsnp_zero_products_carry_a_sign(fmt):
    product = _to_xlns(np.array([fmt.sign_mask | fmt.bias]), fmt) * xl.xlnsnp(np.zeros(1))
    negative, _, zero = _from_xlns(product, fmt)
    assert zero.all() and negative.all()
    assert golden.mul(np.array([fmt.sign_mask | fmt.bias]), 0, fmt)[0] == fmt.zero_code


def test_xlns_float_conversion_away_from_midpoints(fmt):
    """xlns' float-log rounding agrees with PAL's exact encoding except within float64 error of
    the midpoints ``2**((L + 1/2) / 2**F)``."""
    rng = np.random.default_rng(3)
    values = np.exp2(rng.uniform(fmt.log_min, fmt.log_max, 3000) / fmt.units)
    values *= rng.choice([-1.0, 1.0], values.size)
    position = np.log2(np.abs(values)) * fmt.units
    away = np.abs(np.abs(position - np.floor(position)) - 0.5) > 1e-6
    negative, log, _ = _from_xlns(xl.xlnsnp(values[away]), fmt)
    expected = np.where(negative, fmt.sign_mask, 0) | (log + fmt.bias)
    np.testing.assert_array_equal(golden.encode(values[away], fmt), expected)
