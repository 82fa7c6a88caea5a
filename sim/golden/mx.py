"""OCP Microscaling (MX v1.0) baselines: MXINT8, MXFP8 E4M3 and MXFP8 E5M2.

An MX block is ``block_size`` consecutive elements along the reduction dimension ``K`` (32 in
the specification; here any size from 1, the last block of a row or column may be short) that
share one E8M0 scale ``X = 2**e``: the scale code is ``e + 127`` for ``e`` in ``[-127, 127]``,
and 255 is NaN. The conversion is the specification's (section 6.3):

* ``e = floor(log2(max |V_i|)) - emax_elem``, ``emax_elem`` the exponent of the element format's
  largest normal value (8 for E4M3, 15 for E5M2, 0 for INT8), so the block maximum lands in the
  element format's top binade;
* each element is ``V_i / X`` rounded to nearest, ties to even, to the element format; finite
  values beyond the format's largest magnitude saturate to it (E4M3 448, E5M2 57344, INT8
  ``127 / 64`` and ``-2``).

The specification leaves open what happens outside E8M0's range; this model does what its
authors' reference emulation (``microxcaling``) does: ``e > 127`` makes the scale NaN,
``e < -127`` is raised to -127 (the elements then round toward zero). A block holding NaN or
an infinity has ``max |V_i|`` non-finite, hence a NaN scale: the whole block reads as NaN (its
element codes are 0; the specification ignores them). A block without a nonzero value gets the
smallest scale, code 0. Inputs are float64 and are not flushed (the specification's flush of
float32 subnormal inputs does not apply).

MXINT8 elements are two's-complement 8-bit integers with an implicit scale of ``2**-6`` (1.6
fixed point, ``[-2, 127/64]``); the full range is used, so rounding to nearest then saturating
is asymmetric: ``+127.5 / 64`` rounds (to even) to 128 and saturates to 127, ``-127.5 / 64``
rounds to -128, which is representable. MXFP8 elements are the OCP FP8 formats
(:data:`~palhdl.sim.golden.baselines.FLOAT_FORMATS` ``e4m3``, ``e5m2``) with subnormals; a value
that rounds to zero keeps its sign (``-0`` is code ``0x80``).

The specification leaves the dot product's internal precision implementation-defined.
:func:`mx_matmul` computes, for each block, the dot product of the element values in float64,
multiplies it by ``2**(e_a + e_b)`` exactly, and adds the blocks in order ``kb = 0, 1, ...`` in
float64. For MXINT8 and MXFP8 E4M3 a block's dot product is exact in any summation order for
blocks of up to ``2**17`` elements: its products are multiples of ``2**-12`` resp. ``2**-18``
below ``2**2`` resp. ``2**18``, so their sums fit float64's 53 bits. E5M2 products are
multiples of ``2**-32`` up to ``2**32``, so a block mixing extreme magnitudes can round. The sum
over blocks rounds like any float64 sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from palhdl.format import E8M0_MAX, E8M0_MIN
from palhdl.sim.golden.baselines import FLOAT_FORMATS, FloatFormat, float_fields
from palhdl.sim.golden.bits import check_bit_patterns, check_floats
from palhdl.sim.golden.scaling import BLOCK_SIDES, block_count
from palhdl.validate import check_choice, check_instance, check_int

__all__ = [
    "E8M0_BIAS",
    "E8M0_NAN",
    "MX_BLOCK_SIZE",
    "MX_FORMATS",
    "MXFormat",
    "mx_decode",
    "mx_element_values",
    "mx_matmul",
    "mx_matmul_values",
    "mx_quantize",
    "mx_scale_codes",
]

#: The specification's block size.
MX_BLOCK_SIZE = 32
#: E8M0 scale code of ``2**0``: code ``c`` in 0..254 is ``2**(c - 127)``.
E8M0_BIAS = 127
#: E8M0 code of a NaN scale.
E8M0_NAN = 255
#: Largest accepted block size (as :func:`palhdl.sim.golden.quantize_blocks`).
_MAX_BLOCK_SIZE = 1 << 30
#: MXINT8 elements: two's-complement integers times 2**-6.
_INT8_FRAC_BITS = 6


@dataclass(frozen=True)
class MXFormat:
    """An MX format: an element format with one E8M0 scale per block.

    Attributes
    ----------
    name : str
        ``"MXINT8"``, ``"MXFP8 E4M3"`` or ``"MXFP8 E5M2"``.
    element : FloatFormat or None
        The FP8 element format, or ``None`` for MXINT8's 8-bit two's complement with an
        implicit scale of ``2**-6``.
    """

    name: str
    element: FloatFormat | None

    @property
    def emax(self) -> int:
        """``emax_elem``: the exponent of the largest normal element (INT8 0, E4M3 8, E5M2 15)."""
        if self.element is None:
            return 0
        top = (1 << self.element.exp_bits) - (2 if self.element.ieee_specials else 1)
        return top - self.element.bias

    @property
    def max_value(self) -> float:
        """Largest finite element magnitude: ``127 / 64``, 448 or 57344."""
        if self.element is None:
            return 127 / (1 << _INT8_FRAC_BITS)
        man_bits = self.element.man_bits
        # E4M3 "fn": the all-ones mantissa of the top exponent is NaN.
        top_mantissa = (2 << man_bits) - (1 if self.element.ieee_specials else 2)
        return float(np.ldexp(top_mantissa, self.emax - man_bits))


#: The MX formats, by name.
MX_FORMATS: dict[str, MXFormat] = {
    "mxint8": MXFormat("MXINT8", None),
    "mxfp8_e4m3": MXFormat("MXFP8 E4M3", FLOAT_FORMATS["e4m3"]),
    "mxfp8_e5m2": MXFormat("MXFP8 E5M2", FLOAT_FORMATS["e5m2"]),
}


def _check_mx(fmt) -> MXFormat:
    return check_instance("fmt", fmt, MXFormat, "MX_FORMATS['mxfp8_e4m3']")


def _check_block_size(block_size) -> int:
    return check_int("block_size", block_size, 1, _MAX_BLOCK_SIZE)


def _check_matrix(name: str, values) -> np.ndarray:
    x = check_floats(name, values)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, not {x.ndim}-D with shape {x.shape}")
    return x


def _blocks(rows: np.ndarray, block_size: int, fill) -> np.ndarray:
    """``rows`` (M, K) padded with ``fill`` to whole blocks, shaped (M, nb, block_size)."""
    m, k = rows.shape
    blocks = block_count(max(k, 1), block_size)
    padded = np.full((m, blocks * block_size), fill, dtype=rows.dtype)
    padded[:, :k] = rows
    return padded.reshape(m, blocks, block_size)


def _along_rows(array: np.ndarray, per: str) -> np.ndarray:
    """Put ``K`` on the last axis: A as is, B transposed."""
    return array if per == "row" else array.T


def mx_scale_codes(values, fmt: MXFormat, *, per: str, block_size: int = MX_BLOCK_SIZE):
    """Choose the E8M0 scale of every block (see the module description).

    Parameters
    ----------
    values : 2-D array_like of float
        A left operand ``A (M, K)`` (``per="row"``) or a right operand ``B (K, N)``
        (``per="col"``).
    fmt : MXFormat
        One of :data:`MX_FORMATS`.
    per : {"row", "col"}
        Blocks run along A's rows or down B's columns.
    block_size : int
        1 to ``2**30`` elements per block (default 32); block ``kb`` covers ``k`` in
        ``[kb * block_size, min(K, (kb + 1) * block_size))``.

    Returns
    -------
    ndarray of uint8
        E8M0 codes, shape ``(M, nb)`` for ``per="row"``, ``(nb, N)`` for ``per="col"``,
        ``nb = ceil(K / block_size)``: ``e + 127`` with
        ``e = floor(log2(max |V|)) - fmt.emax`` raised to -127 (0 for a block without a nonzero
        value), or 255 (NaN) if ``e > 127`` or the block holds NaN or an infinity.

    Raises
    ------
    TypeError, ValueError
        For a bad argument; the message names it.
    """
    fmt = _check_mx(fmt)
    x = _check_matrix("values", values)
    check_choice("per", per, BLOCK_SIDES)
    block_size = _check_block_size(block_size)
    with np.errstate(invalid="ignore"):
        peak = np.abs(_blocks(_along_rows(x, per), block_size, 0.0)).max(axis=2)
    _, exponent = np.frexp(np.where(np.isfinite(peak), peak, 1.0))
    shared = np.where(peak > 0, exponent.astype(np.int64) - 1 - fmt.emax, E8M0_MIN)
    nan = ~np.isfinite(peak) | (shared > E8M0_MAX)
    codes = np.where(nan, E8M0_NAN, np.maximum(shared, E8M0_MIN) + E8M0_BIAS).astype(np.uint8)
    return codes if per == "row" else codes.T


def _round_int8(y: np.ndarray) -> np.ndarray:
    """Two's-complement codes of ``y`` in units of 2**-6: round half to even, saturate."""
    steps = np.clip(np.rint(np.ldexp(y, _INT8_FRAC_BITS)), -128, 127).astype(np.int64)
    return (steps & 0xFF).astype(np.uint8)


def _round_float(y: np.ndarray, element: FloatFormat, max_value: float) -> np.ndarray:
    """Bit patterns of finite ``y`` rounded to nearest even in ``element``, saturating."""
    man_bits, bias = element.man_bits, element.bias
    emin = 1 - bias
    _, exponent = np.frexp(y)
    quantum = np.maximum(exponent.astype(np.int64) - 1, emin) - man_bits
    rounded = np.minimum(np.ldexp(np.rint(np.ldexp(np.abs(y), -quantum)), quantum), max_value)
    # Split the (exactly representable) magnitude into exponent and mantissa fields.
    _, top = np.frexp(rounded)
    biased = np.where(rounded >= np.ldexp(1.0, emin), top.astype(np.int64) - 1 + bias, 0)
    scale = np.maximum(biased, 1) - bias - man_bits
    significand = np.ldexp(rounded, -scale).astype(np.int64)
    fields = (biased << man_bits) | (significand & ((1 << man_bits) - 1))
    sign = np.signbit(y).astype(np.int64) << (element.width - 1)
    return (sign | fields).astype(np.uint8)


def mx_quantize(values, fmt: MXFormat, *, per: str, block_size: int = MX_BLOCK_SIZE):
    """Convert a 2-D float array to MX: element codes and block scales.

    Parameters
    ----------
    values, fmt, per, block_size
        As :func:`mx_scale_codes`.

    Returns
    -------
    elements : ndarray of uint8
        Element bit patterns, the shape of ``values``: ``V / X`` rounded to nearest even and
        saturated (MXINT8: the two's-complement byte of ``round(64 * V / X)``); 0 in a block
        whose scale is NaN.
    scales : ndarray of uint8
        :func:`mx_scale_codes`.
    """
    scales = mx_scale_codes(values, fmt, per=per, block_size=block_size)
    x = _along_rows(check_floats("values", values), per)
    k = x.shape[1]
    row_scales = _along_rows(scales, per)
    nan = np.repeat(row_scales == E8M0_NAN, block_size, axis=1)[:, :k]
    shift = np.repeat(row_scales.astype(np.int64) - E8M0_BIAS, block_size, axis=1)[:, :k]
    y = np.ldexp(np.where(nan, 0.0, x), -shift)
    if fmt.element is None:
        elements = _round_int8(y)
    else:
        elements = _round_float(y, fmt.element, fmt.max_value)
    return _along_rows(np.where(nan, 0, elements).astype(np.uint8), per), scales


def mx_element_values(elements, fmt: MXFormat) -> np.ndarray:
    """Values of element bit patterns without their scale (float64; NaN and infinities kept).

    MXINT8: the two's-complement byte divided by 64; MXFP8: the OCP FP8 value.
    """
    fmt = _check_mx(fmt)
    bits = check_bit_patterns("elements", elements, 8)
    if fmt.element is None:
        return np.ldexp(np.where(bits >= 128, bits - 256, bits).astype(np.float64), -6)
    negative, significand, exponent, nan, inf = float_fields(bits, fmt.element)
    magnitude = np.where(inf, np.inf, np.ldexp(significand.astype(np.float64), exponent))
    return np.where(nan, np.nan, np.where(negative, -magnitude, magnitude))


def _check_scales(name: str, scales, shape: tuple[int, int]) -> np.ndarray:
    array = np.asarray(scales)
    if not np.issubdtype(array.dtype, np.integer) or array.shape != shape:
        raise ValueError(
            f"{name} must be an integer array of shape {shape}, not {array.dtype} {array.shape}"
        )
    return check_bit_patterns(name, array, 8)


def _scale_exponents(scales: np.ndarray) -> np.ndarray:
    """Float64 exponents of E8M0 codes; NaN for code 255."""
    return np.where(scales == E8M0_NAN, np.nan, scales - E8M0_BIAS)


def mx_decode(
    elements, scales, fmt: MXFormat, *, per: str, block_size: int = MX_BLOCK_SIZE
) -> np.ndarray:
    """Values of an MX operand: each element's value times its block's scale, exactly.

    ``elements`` and ``scales`` are as :func:`mx_quantize` returns them; elements of a block
    whose scale is NaN read as NaN.
    """
    fmt = _check_mx(fmt)
    check_choice("per", per, BLOCK_SIDES)
    block_size = _check_block_size(block_size)
    values = _along_rows(mx_element_values(elements, fmt), per)
    if values.ndim != 2:
        raise ValueError(f"elements must be a 2-D array, not shape {values.shape}")
    m, k = values.shape
    blocks = block_count(max(k, 1), block_size)
    row_scales = _along_rows(np.asarray(scales), per)
    exponents = _scale_exponents(_check_scales("scales", row_scales, (m, blocks)))
    shift = np.repeat(exponents, block_size, axis=1)[:, :k]
    decoded = np.where(np.isnan(shift), np.nan, np.ldexp(values, np.nan_to_num(shift).astype(int)))
    return _along_rows(decoded, per)


def mx_matmul(
    a, a_scales, b, b_scales, fmt: MXFormat, *, block_size: int = MX_BLOCK_SIZE
) -> np.ndarray:
    """Multiply two MX operands: per block, the element dot product times ``2**(e_a + e_b)``.

    Parameters
    ----------
    a : 2-D array_like of int, shape ``(M, K)``
        Element codes of the left operand; ``a_scales`` its E8M0 codes, shape ``(M, nb)``.
    b : 2-D array_like of int, shape ``(K, N)``
        Element codes of the right operand; ``b_scales`` its E8M0 codes, shape ``(nb, N)``.
    fmt : MXFormat
        The format of both operands.
    block_size : int
        As :func:`mx_scale_codes`; ``nb = ceil(K / block_size)``.

    Returns
    -------
    ndarray of float64, shape ``(M, N)``
        ``sum over kb of 2**(e_a[i, kb] + e_b[kb, j]) * dot(block kb of row i, of column j)``,
        accumulated as the module description states; NaN where a NaN scale or a NaN element
        enters.
    """
    fmt = _check_mx(fmt)
    block_size = _check_block_size(block_size)
    va = mx_element_values(a, fmt)
    vb = mx_element_values(b, fmt)
    if va.ndim != 2 or vb.ndim != 2 or va.shape[1] != vb.shape[0] or va.shape[1] == 0:
        raise ValueError(
            f"a and b must have shapes (M, K) and (K, N) with K >= 1, not {va.shape} and {vb.shape}"
        )
    (m, k), n = va.shape, vb.shape[1]
    blocks = block_count(k, block_size)
    ea = _scale_exponents(_check_scales("a_scales", a_scales, (m, blocks)))
    eb = _scale_exponents(_check_scales("b_scales", b_scales, (blocks, n)))
    block_a = _blocks(va, block_size, 0.0).transpose(1, 0, 2)  # (nb, M, block_size)
    block_b = _blocks(vb.T, block_size, 0.0).transpose(1, 2, 0)  # (nb, block_size, N)
    with np.errstate(invalid="ignore"):
        dots = block_a @ block_b  # (nb, M, N)
    exponent = ea.T[:, :, None] + eb[:, None, :]
    nan = np.isnan(exponent)
    scaled = np.where(nan, np.nan, np.ldexp(dots, np.nan_to_num(exponent).astype(int)))
    result = np.zeros((m, n))
    with np.errstate(invalid="ignore"):
        for block in scaled:
            result += block
    return result


def mx_matmul_values(a, b, fmt: MXFormat, *, block_size: int = MX_BLOCK_SIZE) -> np.ndarray:
    """Quantise float ``a`` per row and ``b`` per column to ``fmt`` and multiply them.

    :func:`mx_quantize` then :func:`mx_matmul`; returns float64 ``(M, N)``.
    """
    a_codes, a_scales = mx_quantize(a, fmt, per="row", block_size=block_size)
    b_codes, b_scales = mx_quantize(b, fmt, per="col", block_size=block_size)
    return mx_matmul(a_codes, a_scales, b_codes, b_scales, fmt, block_size=block_size)
