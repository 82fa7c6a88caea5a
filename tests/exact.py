"""Exact reference arithmetic for the golden-model tests, independent of ``palhdl.sim``.

Nothing here uses the golden model or its tables; only a format's two parameters
(``int_bits``, ``frac_bits``) are read. Every decision is exact:

* ``2**(r / k)`` is bracketed by integer ``k``-th roots (:func:`exp2_floor`), checked by the
  defining inequalities ``X**k <= 2**(r + p*k) < (X + 1)**k``.
* The nearest log of a dyadic rational ``M * 2**e`` is read off the bit length of
  ``M**(2**(F+1))`` (:func:`nearest_log`): the rounding thresholds ``2**((2L +- 1) / 2**(F+1))``
  are the odd powers of two of ``x**(2**(F+1))``, which is never exactly one of them.
* Gaussian logarithms are evaluated with ``mpmath`` at :data:`GAUSS_PREC` bits through
  ``log1p``/``exp`` (not the power-and-log2 form the tables use) and rounded only when the value
  is provably far from a half-integer.
* IEEE rounding (:func:`ieee_round`) is integer round-to-nearest-even on ``M * 2**e``, or on a
  value known to lie strictly inside ``(M, M + 1) * 2**e``.
"""

from __future__ import annotations

import math
from functools import cache

import mpmath
import numpy as np

#: Working precision of the Gaussian-logarithm reference, in bits.
GAUSS_PREC = 320
#: A reference value closer than this to a rounding tie makes the reference refuse to round.
TIE_MARGIN = mpmath.mpf(2) ** -128
#: Extra fraction bits of the ``2**(r/k)`` brackets used for IEEE rounding.
ROOT_PREC = 100

#: ``(mantissa_bits, exponent_bits)`` of the IEEE formats the golden model converts to/from.
FLOAT64 = (52, 11)
FLOAT32 = (23, 8)
BFLOAT16 = (7, 8)


# --- integer roots and powers of two ----------------------------------------------------------


def iroot(n: int, k: int) -> int:
    """``floor(n ** (1 / k))`` for integers ``n >= 0``, ``k >= 1``, verified exactly."""
    if n < 2 or k == 1:
        return n
    guess = int(2.0 ** (math.log2(n) / k) * (1 + 2.0**-40)) + 2
    while guess**k <= n:
        guess *= 2
    # Newton's iteration decreases monotonically from any over-estimate to the floor root.
    x = guess
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            break
        x = y
    assert x**k <= n < (x + 1) ** k
    return x


@cache
def exp2_floor(num: int, den: int, prec: int) -> int:
    """``floor(2**(num / den) * 2**prec)``, requiring ``num + prec * den >= 0``."""
    exponent = num + prec * den
    if exponent < 0:
        raise ValueError("exp2_floor needs num + prec * den >= 0")
    return iroot(1 << exponent, den)


def mantissa_round(r: int, frac_bits: int, mantissa_bits: int) -> int:
    """``round(2**(r / 2**F) * 2**W)`` (no ties: the value is irrational for ``0 < r < 2**F``).

    ``floor(y + 1/2) == floor((floor(2y) + 1) / 2)`` for every real ``y``.
    """
    return (exp2_floor(r, 1 << frac_bits, mantissa_bits + 1) + 1) // 2


def nearest_log(mag: int, exp2: int, frac_bits: int) -> int:
    """Nearest ``L`` to ``2**F * log2(mag * 2**exp2)`` for an integer ``mag >= 1``.

    With ``K = 2**(F+1)`` and ``T = floor(log2(x**K))`` (exact: a bit length), ``L`` is correct
    iff ``2L - 1 < log2(x**K) < 2L + 1``; ``log2(x**K)`` is never an odd integer, so
    ``L = ceil(T / 2)``.
    """
    if mag < 1:
        raise ValueError("nearest_log needs mag >= 1")
    big_k = 2 << frac_bits
    while mag & 1 == 0:
        mag >>= 1
        exp2 += 1
    floor_log = (mag**big_k).bit_length() - 1 + big_k * exp2
    return -((-floor_log) // 2)


def round_far_from_tie(value: mpmath.mpf) -> int:
    """Nearest integer to ``value``; raises if ``value`` is within :data:`TIE_MARGIN` of a tie."""
    nearest = int(mpmath.nint(value))
    if abs(abs(value - nearest) - mpmath.mpf(0.5)) < TIE_MARGIN:
        raise ArithmeticError(f"reference value {value} is too close to a rounding tie")
    return nearest


# --- Gaussian logarithms ------------------------------------------------------------------------


def gauss_log(d: int, frac_bits: int, same_sign: bool) -> mpmath.mpf:
    """``2**F * log2(1 +- 2**(-d / 2**F))`` at :data:`GAUSS_PREC` bits, via ``log1p``."""
    if d < 0 or (d == 0 and not same_sign):
        raise ValueError("gauss_log needs d >= 0 (d >= 1 for opposite signs)")
    units = 1 << frac_bits
    with mpmath.workprec(GAUSS_PREC):
        ratio = mpmath.exp(-d * mpmath.ln2 / units)
        return units * mpmath.log1p(ratio if same_sign else -ratio) / mpmath.ln2


def gauss_cutoff(frac_bits: int) -> int:
    """A distance beyond which ``|gauss_log|`` is provably below 1/2 (so it rounds to 0).

    For ``y = 2**(-d/k) <= 1/2``: ``|k * log2(1 +- y)| <= k * y / ((1 - y) ln 2) <= 2 k y / ln 2``,
    which is below 1/2 once ``y < ln 2 / (4 k)``, i.e. ``d > k * log2(4 k / ln 2)``.
    """
    units = 1 << frac_bits
    return math.ceil(units * math.log2(4 * units / math.log(2))) + 1


@cache
def gauss_round(d: int, frac_bits: int, same_sign: bool) -> int:
    """Correctly rounded :func:`gauss_log` (0 beyond :func:`gauss_cutoff`)."""
    if d > gauss_cutoff(frac_bits):
        return 0
    return round_far_from_tie(gauss_log(d, frac_bits, same_sign))


def gauss_round_array(d, frac_bits: int, same_sign) -> np.ndarray:
    """:func:`gauss_round` elementwise; opposite-sign ``d == 0`` entries give 0 (callers mask)."""
    d = np.asarray(d, dtype=np.int64)
    keys, inverse = np.unique(2 * d + np.asarray(same_sign, dtype=np.int64), return_inverse=True)
    values = []
    for key in keys.tolist():
        dist, same = key >> 1, bool(key & 1)
        values.append(0 if dist == 0 and not same else gauss_round(dist, frac_bits, same))
    return np.asarray(values, dtype=np.int64)[inverse].reshape(d.shape)


# --- PAL words, from first principles ------------------------------------------------------------


def split(codes, fmt) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(negative, L, zero, nan)`` of PAL codes; ``L = E - 2**(I+F-1)`` (garbage where E == 0)."""
    mag_bits = fmt.int_bits + fmt.frac_bits
    codes = np.asarray(codes, dtype=np.int64)
    negative = (codes >> mag_bits) == 1
    biased = codes & ((1 << mag_bits) - 1)
    return (
        negative,
        biased - (1 << (mag_bits - 1)),
        (biased == 0) & ~negative,
        (biased == 0) & negative,
    )


def join(negative, log, fmt, *, zero=None, nan=None) -> np.ndarray:
    """Codes for exact nearest logs ``log``: saturate above ``E = 2**(I+F) - 1``, flush ``E < 1``
    to +0, then force ``zero`` to +0 and ``nan`` to NaN. Returns int64."""
    mag_bits = fmt.int_bits + fmt.frac_bits
    e_max = (1 << mag_bits) - 1
    biased = np.asarray(log, dtype=np.int64) + (1 << (mag_bits - 1))
    biased = np.where(biased > e_max, e_max, biased)
    codes = np.where(np.asarray(negative, dtype=bool), 1 << mag_bits, 0) + biased
    codes = np.where(biased < 1, 0, codes)
    if zero is not None:
        codes = np.where(zero, 0, codes)
    if nan is not None:
        codes = np.where(nan, 1 << mag_bits, codes)
    return codes.astype(np.int64)


def code_of_dyadic(negative: bool, mag: int, exp2: int, fmt) -> int:
    """Correctly rounded code of the real ``(-1)**negative * mag * 2**exp2`` (``mag >= 0``)."""
    if mag == 0:
        return 0
    return int(join(negative, nearest_log(mag, exp2, fmt.frac_bits), fmt))


# --- IEEE binary formats -------------------------------------------------------------------------


def ieee_round(mag: int, exp2: int, ieee: tuple[int, int], *, inexact: bool = False) -> int:
    """Unsigned IEEE bits of ``mag * 2**exp2`` rounded to nearest, ties to even.

    With ``inexact`` the value is some real strictly inside ``(mag, mag + 1) * 2**exp2``; the
    rounding grid must then be coarser than ``2**exp2`` (asserted), which makes the result exact.
    Subnormals, underflow to 0 and overflow to infinity included; ``mag >= 1``.
    """
    man_bits, exp_bits = ieee
    bias = (1 << (exp_bits - 1)) - 1
    exponent = mag.bit_length() - 1 + exp2
    quantum = max(exponent, 1 - bias) - man_bits
    drop = quantum - exp2
    if drop <= 0:
        assert not inexact, "rounding grid finer than the bracket"
        kept = mag << -drop
    else:
        kept = mag >> drop
        rest = mag - (kept << drop)
        half = 1 << (drop - 1)
        if rest > half or (rest == half and (inexact or kept & 1)):
            kept += 1
    if kept == 0:
        return 0
    if kept >> (man_bits + 1):
        kept >>= 1
        quantum += 1
    if kept >> man_bits == 0:
        return kept
    biased = quantum + man_bits + bias
    if biased >= (1 << exp_bits) - 1:
        return ((1 << exp_bits) - 1) << man_bits
    return (biased << man_bits) | (kept - (1 << man_bits))


def pal_ieee_bits(codes, fmt, ieee: tuple[int, int]) -> np.ndarray:
    """Correctly rounded IEEE bit patterns (uint64) of PAL codes; NaN gives the quiet NaN."""
    man_bits, exp_bits = ieee
    units = 1 << fmt.frac_bits
    negative, log, zero, nan = split(codes, fmt)
    out = np.zeros(np.shape(codes), dtype=np.uint64)
    for index in np.ndindex(out.shape):
        if nan[index]:
            bits = (((1 << exp_bits) - 1) << man_bits) | (1 << (man_bits - 1))
        elif zero[index]:
            bits = 0
        else:
            octave, r = divmod(int(log[index]), units)
            mag = exp2_floor(r, units, ROOT_PREC)
            bits = ieee_round(mag, octave - ROOT_PREC, ieee, inexact=r != 0)
            bits |= int(negative[index]) << (man_bits + exp_bits)
        out[index] = bits
    return out


def ieee_split(bits: int, ieee: tuple[int, int]) -> tuple[str, bool, int, int]:
    """Decode an IEEE bit pattern to ``(kind, negative, mag, exp2)``; kind is "nan", "inf" or
    "finite" (``mag == 0`` for zeros)."""
    man_bits, exp_bits = ieee
    bias = (1 << (exp_bits - 1)) - 1
    negative = bool(bits >> (man_bits + exp_bits))
    field = (bits >> man_bits) & ((1 << exp_bits) - 1)
    fraction = bits & ((1 << man_bits) - 1)
    if field == (1 << exp_bits) - 1:
        return ("nan" if fraction else "inf"), negative, 0, 0
    if field == 0:
        return "finite", negative, fraction, 1 - bias - man_bits
    return "finite", negative, fraction | (1 << man_bits), field - bias - man_bits


def code_of_ieee(bits: int, ieee: tuple[int, int], fmt) -> int:
    """The PAL code the encoding rule gives an IEEE value: nearest log, +-inf saturate to +-max,
    NaN to NaN, +-0 to +0."""
    kind, negative, mag, exp2 = ieee_split(bits, ieee)
    mag_bits = fmt.int_bits + fmt.frac_bits
    if kind == "nan":
        return 1 << mag_bits
    if kind == "inf":
        return (int(negative) << mag_bits) | ((1 << mag_bits) - 1)
    return code_of_dyadic(negative, mag, exp2, fmt)


def float64_bits(value: float) -> int:
    """Bit pattern of a Python float."""
    return int(np.float64(value).view(np.uint64))


@cache
def all_codes_float64(fmt) -> np.ndarray:
    """Correctly rounded float64 values of every code ``0 .. 2**width - 1`` (read-only)."""
    values = pal_ieee_bits(np.arange(1 << (1 + fmt.int_bits + fmt.frac_bits)), fmt, FLOAT64)
    values = values.view(np.float64)
    values.flags.writeable = False
    return values
