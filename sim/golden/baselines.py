"""Numpy reference models of the baseline MAC units in :mod:`palhdl.hdl.baselines`.

The baselines are the comparison points of the cost study and the INT8/FP8/BF16 arithmetic of
the systolic array. Each reference is a pure function over integer arrays that reduces the last
axis (``K``) in order, exactly as the RTL accumulates one row of a dot product:

* :func:`int_mac`: signed integer products summed into a wrapping two's-complement accumulator.
* :func:`float_mac`: exact products of small floats (OCP FP8 E4M3/E5M2 as ``ml_dtypes``'
  ``float8_e4m3fn``/``float8_e5m2`` define them, or bfloat16) placed in a fixed-point window
  like the PAL MAC's (:func:`palhdl.sim.golden.mac.mac_terms`): ``acc_bits`` bits, LSB weight
  ``2**-acc_frac_bits``, products rounded half away from zero onto the LSB grid, a term of
  ``2**term_bits`` or more overflowing, and -- as :class:`palhdl.format.AccumulatorConfig`'s
  ``saturate`` selects -- overflowing terms clamped and sums saturating to
  ``[-acc_max, acc_max]`` with ``acc_max = 2**(acc_bits - 1) - 1``, or overflowing terms dropped
  and sums wrapping modulo ``2**acc_bits``.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from palhdl.format import AccumulatorConfig
from palhdl.sim.golden.bits import bit_length, check_bit_patterns, round_shift_right
from palhdl.validate import check_int

__all__ = [
    "FLOAT_FORMATS",
    "FloatFormat",
    "FloatMacResult",
    "accumulate_terms",
    "check_acc",
    "check_int_mac",
    "float_fields",
    "float_geometry",
    "float_mac",
    "float_mac_terms",
    "int_mac",
]


@dataclass(frozen=True)
class FloatFormat:
    """A small binary floating-point format with subnormals.

    Attributes
    ----------
    name : str
    exp_bits, man_bits : int
        Exponent and stored-mantissa field widths; ``width = 1 + exp_bits + man_bits``.
    ieee_specials : bool
        ``True``: an all-ones exponent encodes infinity (mantissa 0) or NaN (IEEE style, E5M2
        and bfloat16). ``False`` (E4M3 "fn"): no infinities, only ``S.1111.111`` is NaN and the
        all-ones exponent otherwise holds normal numbers.
    dtype : type
        The matching ``ml_dtypes`` scalar type.
    """

    name: str
    exp_bits: int
    man_bits: int
    ieee_specials: bool
    dtype: type

    @property
    def width(self) -> int:
        """Word width, ``1 + exp_bits + man_bits``."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        """Exponent bias, ``2**(exp_bits - 1) - 1``."""
        return (1 << (self.exp_bits - 1)) - 1

    def to_bits(self, values) -> np.ndarray:
        """Round float values to this format (``ml_dtypes``, RNE) and return the bit patterns."""
        bits_dtype = np.uint8 if self.width == 8 else np.uint16
        return np.asarray(values, dtype=np.float64).astype(self.dtype).view(bits_dtype)


#: The formats of the baseline MACs, by name.
FLOAT_FORMATS: dict[str, FloatFormat] = {
    "e4m3": FloatFormat("e4m3", 4, 3, False, ml_dtypes.float8_e4m3fn),
    "e5m2": FloatFormat("e5m2", 5, 2, True, ml_dtypes.float8_e5m2),
    "bf16": FloatFormat("bf16", 8, 7, True, ml_dtypes.bfloat16),
}


def check_acc(acc_bits, acc_frac_bits) -> tuple[int, int]:
    """Validate an accumulator geometry; return ``(acc_bits, acc_frac_bits)`` as ints.

    ``acc_bits`` in 8..62, ``acc_frac_bits`` in ``[-4096, 4096]`` (the ranges of
    :class:`palhdl.format.AccumulatorConfig`).
    """
    geometry = AccumulatorConfig(acc_bits=acc_bits, acc_frac_bits=acc_frac_bits)
    return geometry.acc_bits, geometry.acc_frac_bits


def float_geometry(acc_bits, acc_frac_bits, *, term_bits=None, saturate=True) -> AccumulatorConfig:
    """Return the accumulator window of a float MAC, validated.

    The RTL accumulates into it with :func:`palhdl.hdl.mac.accumulate`, exactly as the PAL MAC
    does.

    Parameters
    ----------
    acc_bits, acc_frac_bits : int
        As :func:`check_acc`.
    term_bits : int, optional
        2..``acc_bits - 1``: a product term of ``2**term_bits`` or more overflows. Default
        ``acc_bits - 1``.
    saturate : bool
        ``True`` (default): overflowing terms clamp to ``acc_max``, sums saturate. ``False``:
        overflowing terms are dropped, sums wrap modulo ``2**acc_bits``.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """
    return AccumulatorConfig(
        acc_bits=acc_bits, acc_frac_bits=acc_frac_bits, term_bits=term_bits, saturate=saturate
    )


def check_int_mac(width, acc_bits) -> tuple[int, int]:
    """Validate an integer MAC: ``width`` in 2..16, ``acc_bits`` in ``[2 * width, 62]``."""
    width = check_int("width", width, 2, 16)
    acc_bits = check_int("acc_bits", acc_bits)
    if not 2 * width <= acc_bits <= 62:
        raise ValueError(f"acc_bits must be in [2 * width, 62] = [{2 * width}, 62], not {acc_bits}")
    return width, acc_bits


def float_fields(bits, fmt: FloatFormat):
    """Split bit patterns into ``(negative, significand, exponent, nan, inf)``.

    A finite pattern has the value ``(-1)**negative * significand * 2**exponent`` (integers;
    subnormals and zeros have no hidden bit); ``significand`` is 0 where ``nan`` or ``inf``.
    """
    bits = check_bit_patterns("bits", bits, fmt.width)
    man_mask = (1 << fmt.man_bits) - 1
    exp_max = (1 << fmt.exp_bits) - 1
    negative = (bits >> (fmt.width - 1)) == 1
    exp_field = (bits >> fmt.man_bits) & exp_max
    man_field = bits & man_mask
    if fmt.ieee_specials:
        nan = (exp_field == exp_max) & (man_field != 0)
        inf = (exp_field == exp_max) & (man_field == 0)
    else:
        nan = (exp_field == exp_max) & (man_field == man_mask)
        inf = np.zeros_like(nan)
    subnormal = exp_field == 0
    significand = np.where(subnormal, man_field, man_field | (1 << fmt.man_bits))
    significand = np.where(nan | inf, 0, significand)
    exponent = np.maximum(exp_field, 1) - fmt.bias - fmt.man_bits
    return negative, significand, exponent, nan, inf


def float_mac_terms(
    a,
    b,
    fmt: FloatFormat,
    *,
    acc_bits: int,
    acc_frac_bits: int,
    term_bits: int | None = None,
    saturate: bool = True,
):
    """Accumulator terms of the exact products ``a * b`` (bit patterns, elementwise).

    Returns ``(term, nan, pos_inf, neg_inf, overflow)``: ``term`` is the int64
    ``+-round(|a * b| * 2**acc_frac_bits)`` (half away from zero); a nonzero product whose
    rounded magnitude exceeds ``term_max = 2**term_bits - 1`` sets ``overflow`` and is clamped
    to ``+-acc_max`` (``saturate``) or dropped (0, not ``saturate``). ``nan`` marks a NaN
    operand or infinity times zero; ``pos_inf``/``neg_inf`` mark an infinite product of that
    sign. Special products add 0. The keywords are those of :func:`float_geometry`.
    """
    geometry = float_geometry(acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate)
    na, sa, ea, nan_a, inf_a = float_fields(a, fmt)
    nb, sb, eb, nan_b, inf_b = float_fields(b, fmt)
    zero_a = (sa == 0) & ~nan_a & ~inf_a
    zero_b = (sb == 0) & ~nan_b & ~inf_b
    nan = nan_a | nan_b | (inf_a & zero_b) | (inf_b & zero_a)
    inf = (inf_a | inf_b) & ~nan
    negative = na ^ nb
    product = sa * sb
    shift = ea + eb + geometry.acc_frac_bits
    too_big = shift > geometry.term_bits - bit_length(product)
    left = product << np.clip(shift, 0, 62)
    right = round_shift_right(product, np.maximum(-shift, 0))
    magnitude = np.where(shift >= 0, left, right)
    overflow = (product != 0) & (too_big | (magnitude > geometry.term_max))
    magnitude = np.where(overflow, geometry.acc_max if geometry.saturate else 0, magnitude)
    term = np.where(negative, -magnitude, magnitude)
    return term, nan, inf & ~negative, inf & negative, overflow


@dataclass(frozen=True)
class FloatMacResult:
    """Accumulators of :func:`float_mac` (shape of the inputs without the last axis).

    The result of a row is NaN if ``nan``, else ``+inf`` if ``pos_inf``, ``-inf`` if
    ``neg_inf``, else ``acc * 2**-acc_frac_bits``, meaningful only while ``overflow`` is clear.

    Attributes
    ----------
    acc : ndarray of int64
        In ``[-acc_max, acc_max]`` (saturating) or ``[-acc_max - 1, acc_max]`` (wrapping).
    nan, pos_inf, neg_inf, overflow : ndarray of bool
        Sticky over the row; ``nan`` includes infinities of both signs; ``overflow``: a term
        overflowed or a sum saturated (wrapped).
    """

    acc: np.ndarray
    nan: np.ndarray
    pos_inf: np.ndarray
    neg_inf: np.ndarray
    overflow: np.ndarray


def _rows(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim < 1 or a.shape[-1] == 0:
        raise ValueError(
            f"a and b must have the same shape (..., K) with K >= 1, not {a.shape} and {b.shape}"
        )
    return a, b


def float_mac(
    a,
    b,
    fmt: FloatFormat,
    *,
    acc_bits: int,
    acc_frac_bits: int,
    term_bits: int | None = None,
    saturate: bool = True,
) -> FloatMacResult:
    """Dot products over the last axis of bit-pattern arrays ``a`` and ``b`` (same shape).

    Terms (:func:`float_mac_terms`) are added for ``k = 0 .. K-1`` in order, each sum
    saturating to ``[-acc_max, acc_max]`` (``saturate``) or wrapping modulo ``2**acc_bits``
    into ``[-acc_max - 1, acc_max]`` (not ``saturate``); either sets ``overflow``. The keywords
    are those of :func:`float_geometry`.
    """
    a, b = _rows(a, b)
    geometry = float_geometry(acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate)
    term, nan, pos_inf, neg_inf, overflow = float_mac_terms(
        a,
        b,
        fmt,
        acc_bits=acc_bits,
        acc_frac_bits=acc_frac_bits,
        term_bits=term_bits,
        saturate=saturate,
    )
    return accumulate_terms(geometry, term, nan, pos_inf, neg_inf, overflow)


def accumulate_terms(geometry, term, nan, pos_inf, neg_inf, overflow) -> FloatMacResult:
    """Add per-product window terms over the last axis, in order, as the float MACs do.

    ``geometry`` is a :func:`float_geometry`; ``term`` (int64) and the flags (bool) have the
    shape ``(..., K)`` of :func:`float_mac_terms`. Each sum saturates to ``[acc_min, acc_max]``
    (``geometry.saturate``) or wraps modulo ``2**acc_bits`` into it; either, or a term's own
    ``overflow``, sets ``overflow``. The flags are sticky; ``nan`` includes infinities of both
    signs.
    """
    low, high = geometry.acc_min, geometry.acc_max
    acc = np.zeros(term.shape[:-1], dtype=np.int64)
    overflowed = overflow.any(axis=-1)
    for k in range(term.shape[-1]):
        total = acc + term[..., k]
        overflowed |= (total < low) | (total > high)
        if geometry.saturate:
            acc = np.clip(total, low, high)
        else:
            acc = (total - low) % (1 << geometry.acc_bits) + low
    pos_inf = pos_inf.any(axis=-1)
    neg_inf = neg_inf.any(axis=-1)
    nan = nan.any(axis=-1) | (pos_inf & neg_inf)
    return FloatMacResult(acc, nan, pos_inf, neg_inf, overflowed)


def int_mac(a, b, *, width: int = 8, acc_bits: int = 32) -> np.ndarray:
    """Dot products over the last axis of signed ``width``-bit integers, wrapping to ``acc_bits``.

    Returns int64 two's-complement values in ``[-2**(acc_bits-1), 2**(acc_bits-1))``. With
    ``width = 8`` and ``acc_bits = 32`` no wrap occurs for ``K <= 2**17 - 1``.
    """
    a, b = _rows(a, b)
    width, acc_bits = check_int_mac(width, acc_bits)
    lo, hi = -(1 << (width - 1)), 1 << (width - 1)
    for name, array in (("a", a), ("b", b)):
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"{name} must be an integer array, not {array.dtype}")
        if array.size and (array.min() < lo or array.max() >= hi):
            raise ValueError(f"{name} must hold signed {width}-bit integers in [{lo}, {hi - 1}]")
    products = a.astype(np.int64) * b.astype(np.int64)
    mask = (1 << acc_bits) - 1
    total = products.sum(axis=-1) & mask
    return np.where(total >= 1 << (acc_bits - 1), total - (1 << acc_bits), total)
