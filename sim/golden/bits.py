"""Argument checks and exact integer helpers shared by the golden-model modules.

A *code* array holds PAL words as unsigned integers (any integer dtype); the helpers here turn it
into sign/log fields and back (:func:`fields`, :func:`pack`) and provide the vectorised integer
operations (:func:`bit_length`, :func:`round_shift_right`) the conversions and the MAC share.
"""

from __future__ import annotations

import numpy as np

from palhdl.format import PALFormat
from palhdl.validate import check_instance

__all__ = [
    "binary_fields",
    "bit_length",
    "check_bit_patterns",
    "check_codes",
    "check_floats",
    "check_fmt",
    "check_offsets",
    "fields",
    "pack",
    "round_shift_right",
]


def check_fmt(fmt) -> PALFormat:
    """Validate a :class:`~palhdl.format.PALFormat` argument named ``fmt``."""
    return check_instance("fmt", fmt, PALFormat, "palhdl.format.pal8")


def check_offsets(name: str, offsets, *, limit: int = 1 << 62) -> np.ndarray:
    """Validate integer log offsets in ``[0, limit]`` (a scalar or an array); return int64."""
    array = np.asarray(offsets)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be integers, not {array.dtype}")
    if array.size and (array.min() < 0 or array.max() > limit):
        raise ValueError(f"{name} must be in [0, {limit}], not [{array.min()}, {array.max()}]")
    return array.astype(np.int64)


def check_codes(name: str, codes, fmt: PALFormat) -> np.ndarray:
    """Validate an integer array of ``fmt`` codes.

    Parameters
    ----------
    name : str
        Argument name, used in the message.
    codes : array_like of int
        The codes.
    fmt : PALFormat
        Their format.

    Returns
    -------
    ndarray of int64
        The codes.

    Raises
    ------
    TypeError
        For a non-integer dtype (or a ``fmt`` that is not a :class:`~palhdl.format.PALFormat`).
    ValueError
        For a code outside ``[0, 2**fmt.width)``, naming ``name``.
    """
    fmt = check_fmt(fmt)
    array = np.asarray(codes)
    if array.dtype == object or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of {fmt} codes, not dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= 1 << fmt.width):
        bad = array[(array < 0) | (array >= 1 << fmt.width)].flat[0]
        raise ValueError(
            f"{name} holds {bad}, outside the {fmt} code range [0, {(1 << fmt.width) - 1}]"
        )
    return array


def check_bit_patterns(name: str, bits, width: int) -> np.ndarray:
    """Validate an integer array of ``width``-bit patterns (IEEE or small-float words).

    Returns it as int64; raises ``TypeError`` for a non-integer dtype and ``ValueError`` for a
    value outside ``[0, 2**width)``, naming ``name``.
    """
    array = np.asarray(bits)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"{name} must be an integer array of {width}-bit patterns, not dtype {array.dtype}"
        )
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= 1 << width):
        raise ValueError(f"{name} must hold {width}-bit patterns in [0, {(1 << width) - 1}]")
    return array


@np.errstate(invalid="ignore")  # signalling NaNs quietly become NaN, as specified
def check_floats(name: str, values) -> np.ndarray:
    """Validate an array of real numbers and convert it to float64 exactly.

    Floating-point dtypes (``ml_dtypes`` bfloat16 and float8 included) and integer dtypes are
    accepted; anything else (booleans, bytes and strings, which numpy would read as numbers,
    complex numbers, objects) raises ``TypeError`` naming ``name``.
    """
    array = np.asarray(values)
    kind = array.dtype.kind
    if kind in "fiu":
        return array.astype(np.float64)
    # ml_dtypes floats (bfloat16, float8_*) report kind "V"; they cast to float64 exactly.
    if kind == "V" and array.dtype.itemsize <= 2:
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError):
            pass
    return _reject(name, array)


def _reject(name: str, array: np.ndarray):
    raise TypeError(
        f"{name} must be a real floating-point or integer array, not dtype {array.dtype}"
    )


def fields(codes: np.ndarray, fmt: PALFormat):
    """Split int64 codes into ``(negative, L, is_zero, is_nan)``; ``L`` is garbage where E == 0."""
    sign = (codes >> fmt.mag_bits) & 1 == 1
    mag = codes & fmt.mag_mask
    special = mag == 0
    return sign, mag - fmt.bias, special & ~sign, special & sign


def binary_fields(a, b, fmt: PALFormat):
    """Validate and broadcast two code arrays named ``a`` and ``b``; return their :func:`fields`."""
    check_fmt(fmt)
    a = check_codes("a", a, fmt)
    b = check_codes("b", b, fmt)
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(
            f"a and b must broadcast together, not shapes {a.shape} and {b.shape}"
        ) from None
    return fields(a, fmt), fields(b, fmt)


def pack(negative, log, fmt: PALFormat, zero=None, nan=None) -> np.ndarray:
    """Build codes from sign and exact log (units of 2**-F), saturating and flushing to zero.

    ``zero`` and ``nan`` (boolean arrays, optional) force the zero and NaN codes.
    """
    biased = np.minimum(np.asarray(log, dtype=np.int64) + fmt.bias, fmt.mag_mask)
    underflow = biased < 1
    codes = np.where(negative, fmt.sign_mask, 0) | np.maximum(biased, 0)
    codes = np.where(underflow, fmt.zero_code, codes)
    if zero is not None:
        codes = np.where(zero, fmt.zero_code, codes)
    if nan is not None:
        codes = np.where(nan, fmt.nan_code, codes)
    return codes.astype(fmt.code_dtype)


def bit_length(values) -> np.ndarray:
    """``int.bit_length`` of non-negative int64 values, vectorised and exact."""
    values = np.asarray(values, dtype=np.int64)
    _, exponent = np.frexp(values.astype(np.float64))
    exponent = exponent.astype(np.int64)
    # float64 rounding can carry 2**k - 1 up to 2**k: correct the estimate by one where it did.
    too_big = (exponent > 0) & ((values >> np.maximum(exponent - 1, 0)) == 0)
    return exponent - too_big


def round_shift_right(values, shift) -> np.ndarray:
    """``round(values / 2**shift)`` for non-negative values, ties away from zero; shift >= 0."""
    shift = np.asarray(shift, dtype=np.int64)
    safe = np.minimum(shift, 62)
    half = np.where(shift > 0, np.left_shift(1, np.maximum(safe - 1, 0)), 0)
    rounded = (values + half) >> safe
    return np.where(shift > 62, 0, rounded)
