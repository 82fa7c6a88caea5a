"""Numpy reference of the block-scaled MX MACs (:mod:`palhdl.hdl.mxmac`).

The MX baselines of the cost study multiply MX elements (MXINT8, MXFP8; :mod:`.mx`) in the
accumulator scheme of the FP8 baseline (:func:`~palhdl.sim.golden.baselines.float_mac`), with
block scaling done the way the PAL array does it (``docs/format.md``, block scaling): each
operand carries a small non-negative *offset*, how many octaves its block's E8M0 scale lies
below the largest block scale of its row (A) or column (B). The host applies the reference
scales ``2**(e_ref_a + e_ref_b)`` once at readout; the PE multiplies each product by
``2**-(offset_a + offset_b)`` before it enters the accumulator. That multiply is the
*block-scale adder*: the offsets add to the product's exponent, which moves the product's
place in the accumulator window.

Behaviour
---------
* Offsets are integers in ``[0, MX_OFFSET_MAX]`` (``MX_OFFSET_BITS`` = 8 bits, the width of
  pal8's block offsets and enough for any difference of two E8M0 scales, 0..254). The
  product's offset is ``offset = offset_a + offset_b`` in ``[0, 2 * MX_OFFSET_MAX]``.
* A product's exact value is ``x_a * x_b * 2**-offset``: MXINT8 elements are two's-complement
  bytes ``q`` with the value ``q / 64`` (so ``q_a * q_b * 2**-(12 + offset)``), MXFP8 elements
  are OCP FP8 values (E4M3 ``float8_e4m3fn``, E5M2 ``float8_e5m2``).
* Its term in the window (``acc_bits``, ``acc_frac_bits``, ``term_bits``, ``saturate``, as
  :func:`~palhdl.sim.golden.baselines.float_geometry`) follows the FP8 baseline's rule exactly
  (:func:`~palhdl.sim.golden.baselines.float_mac_terms`): the magnitude is rounded half away
  from zero onto the LSB grid ``2**-acc_frac_bits``; a nonzero product whose rounded magnitude
  exceeds ``2**term_bits - 1`` sets ``overflow`` and is dropped (0, wrapping window) or clamped
  to ``acc_max`` (saturating window). So an offset large enough pushes the product below half
  an LSB and the term becomes 0 (exactly half an LSB rounds away, to 1 LSB); nothing else
  happens, there is no flag for it. In the cost study's window (32 bits, 12 fraction bits,
  14-bit terms, wrapping) an MXINT8 product is ``q_a * q_b`` LSBs at offset 0, so
  ``(-2) * (-2) = 4`` (``2**14`` LSBs) is the one product that overflows its term.
* Specials are the FP8 baseline's: MXINT8 has none; a NaN MXFP8 element (or, for E5M2,
  infinity times zero) sets ``nan`` and adds 0; an E5M2 infinite product sets ``pos_inf`` or
  ``neg_inf`` and adds 0, and both signs in one dot product set ``nan``. Offsets do not change
  specials.
* A dot product (:func:`mx_mac`) adds its terms in order into the window, wrapping modulo
  ``2**acc_bits`` or saturating to ``[-acc_max, acc_max]`` (either sets ``overflow``); all
  flags are sticky, as :func:`~palhdl.sim.golden.baselines.float_mac`.

An MXINT8 element ``q / 64`` is exactly a bfloat16 value (``|q| <= 128`` has at most 8
significant bits), so its term is computed as that of the bfloat16 product: the FP8 baseline's
placement rule, not a second copy of it.
"""

from __future__ import annotations

import numpy as np

from palhdl.sim.golden.baselines import (
    FLOAT_FORMATS,
    FloatMacResult,
    accumulate_terms,
    float_geometry,
    float_mac_terms,
)
from palhdl.sim.golden.bits import check_offsets
from palhdl.sim.golden.mx import MXFormat, mx_element_values
from palhdl.validate import check_instance

__all__ = ["MX_OFFSET_BITS", "MX_OFFSET_MAX", "mx_mac", "mx_mac_terms"]

#: Width of an MX operand's block offset (pal8's block-offset width, ``mag_bits + 1``).
MX_OFFSET_BITS = 8
#: Largest block offset, in octaves.
MX_OFFSET_MAX = (1 << MX_OFFSET_BITS) - 1
#: Every MX product is below ``2**32`` (E5M2: ``57344**2``), so with an LSB of ``2**64`` or
#: coarser every term rounds to 0; a window shifted further is evaluated at this LSB instead
#: (the same terms, and within ``float_geometry``'s range).
_FLUSH_FRAC_BITS = -64


def _element_bits(elements, fmt: MXFormat):
    """Return the element format and the bit patterns :func:`float_mac_terms` takes."""
    if fmt.element is not None:
        return fmt.element, elements
    bf16 = FLOAT_FORMATS["bf16"]
    return bf16, bf16.to_bits(mx_element_values(elements, fmt))


def mx_mac_terms(
    a,
    b,
    fmt: MXFormat,
    *,
    offset=0,
    acc_bits: int,
    acc_frac_bits: int,
    term_bits: int | None = None,
    saturate: bool = True,
):
    """Accumulator terms of MX element products lowered by block offsets (elementwise).

    Parameters
    ----------
    a, b : array_like of int
        Element bit patterns (0..255; MXINT8 as the two's-complement byte), broadcast together.
    fmt : MXFormat
        ``MX_FORMATS["mxint8"]``, ``["mxfp8_e4m3"]`` or ``["mxfp8_e5m2"]``.
    offset : int or array_like of int
        ``offset_a + offset_b`` in ``[0, 2 * MX_OFFSET_MAX]``, broadcast with ``a`` and ``b``:
        the product is multiplied by ``2**-offset``.
    acc_bits, acc_frac_bits, term_bits, saturate
        The accumulator window, as :func:`~palhdl.sim.golden.baselines.float_geometry`.

    Returns
    -------
    term, nan, pos_inf, neg_inf, overflow : ndarray
        As :func:`~palhdl.sim.golden.baselines.float_mac_terms` (the module description):
        ``term`` is the int64 ``+-round(|a * b| * 2**(acc_frac_bits - offset))``, half away
        from zero, dropped or clamped on overflow.

    Raises
    ------
    TypeError, ValueError
        For a bad argument; the message names it.
    """
    fmt = check_instance("fmt", fmt, MXFormat, "MX_FORMATS['mxfp8_e4m3']")
    geometry = float_geometry(acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate)
    offset = check_offsets("offset", offset, limit=2 * MX_OFFSET_MAX)
    element, a_bits = _element_bits(a, fmt)
    _, b_bits = _element_bits(b, fmt)
    a_bits, b_bits, offset = np.broadcast_arrays(a_bits, b_bits, offset)
    shape = offset.shape
    results = [np.zeros(shape, dtype=np.int64), *(np.zeros(shape, dtype=bool) for _ in range(4))]
    for shift in np.unique(offset):
        chosen = offset == shift
        frac_bits = geometry.acc_frac_bits - int(shift)
        frac_bits = max(frac_bits, min(geometry.acc_frac_bits, _FLUSH_FRAC_BITS))
        parts = float_mac_terms(
            a_bits[chosen],
            b_bits[chosen],
            element,
            acc_bits=geometry.acc_bits,
            acc_frac_bits=frac_bits,
            term_bits=geometry.term_bits,
            saturate=geometry.saturate,
        )
        for array, part in zip(results, parts, strict=True):
            array[chosen] = part
    return tuple(results)


def mx_mac(
    a,
    b,
    fmt: MXFormat,
    *,
    a_offsets=0,
    b_offsets=0,
    acc_bits: int,
    acc_frac_bits: int,
    term_bits: int | None = None,
    saturate: bool = True,
) -> FloatMacResult:
    """Dot products over the last axis of MX element arrays with per-element block offsets.

    Parameters
    ----------
    a, b : array_like of int, shape ``(..., K)``, ``K >= 1``
        Element bit patterns, the same shape.
    fmt : MXFormat
        As :func:`mx_mac_terms`.
    a_offsets, b_offsets : int or array_like of int
        Block offsets of the elements, each in ``[0, MX_OFFSET_MAX]``, broadcast with ``a``.
    acc_bits, acc_frac_bits, term_bits, saturate
        The accumulator window, as :func:`~palhdl.sim.golden.baselines.float_geometry`.

    Returns
    -------
    FloatMacResult
        The terms of :func:`mx_mac_terms` added for ``k = 0 .. K-1`` in order, wrapping
        modulo ``2**acc_bits`` or saturating (either sets ``overflow``); flags sticky, ``nan``
        includes infinities of both signs. ``acc * 2**-acc_frac_bits`` times the reference
        scales is the dot product's value.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim < 1 or a.shape[-1] == 0:
        raise ValueError(
            f"a and b must have the same shape (..., K) with K >= 1, not {a.shape} and {b.shape}"
        )
    a_offsets = check_offsets("a_offsets", a_offsets, limit=MX_OFFSET_MAX)
    b_offsets = check_offsets("b_offsets", b_offsets, limit=MX_OFFSET_MAX)
    geometry = float_geometry(acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate)
    term, nan, pos_inf, neg_inf, overflow = mx_mac_terms(
        a,
        b,
        fmt,
        offset=np.broadcast_to(a_offsets + b_offsets, a.shape),
        acc_bits=acc_bits,
        acc_frac_bits=acc_frac_bits,
        term_bits=term_bits,
        saturate=saturate,
    )
    return accumulate_terms(geometry, term, nan, pos_inf, neg_inf, overflow)
