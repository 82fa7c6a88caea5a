"""Conversions between real numbers, fixed-point integers, IEEE bit patterns and PAL codes.

Every conversion is correctly rounded: to PAL in the log domain (``docs/format.md`` section 3),
to IEEE formats to nearest even (section 4). The gateware counterparts are in
:mod:`palhdl.hdl.convert`.
"""

from __future__ import annotations

import functools

import numpy as np

from palhdl.format import PALFormat
from palhdl.sim.golden.bits import (
    bit_length,
    check_bit_patterns,
    check_codes,
    check_floats,
    check_fmt,
    fields,
    pack,
)
from palhdl.tables import TABLE_PREC, exp2_table, log_threshold_table
from palhdl.validate import check_int

__all__ = [
    "BFLOAT16",
    "FLOAT32",
    "FLOAT64",
    "decode",
    "encode",
    "encode_scaled",
    "float_log",
    "from_bfloat16_bits",
    "from_fixed",
    "from_float32_bits",
    "ieee_bits",
    "log_round",
    "to_bfloat16_bits",
    "to_float32_bits",
]

#: ``(mantissa_bits, exponent_bits)`` of the IEEE formats :func:`ieee_bits` rounds to.
FLOAT64 = (52, 11)
#: See :data:`FLOAT64`.
FLOAT32 = (23, 8)
#: See :data:`FLOAT64`.
BFLOAT16 = (7, 8)


def log_round(mag, exp2, fmt: PALFormat) -> np.ndarray:
    """Nearest log (units of 2**-F) of ``mag * 2**exp2``, for int64 ``mag >= 1`` (exact)."""
    mag = np.asarray(mag, dtype=np.int64)
    top = bit_length(mag) - 1
    return (top + exp2) * fmt.units + _log_steps(mag << (TABLE_PREC - top), fmt)


def _log_steps(normalised: np.ndarray, fmt: PALFormat) -> np.ndarray:
    """Count the ``2**-F`` steps above the octave of ``normalised`` (top bit at ``TABLE_PREC``)."""
    return _count_above(normalised, log_threshold_table(fmt.frac_bits))


@functools.cache
def _significand_thresholds(frac_bits: int) -> np.ndarray:
    """Return the log thresholds on ``np.frexp`` significands in ``[1/2, 1)`` (exact floats).

    A significand ``m`` has 53 bits: ``2 * m`` has 52 fraction bits, so the thresholds floored
    to 52 fraction bits decide as the full ones do (:func:`~palhdl.tables.log_threshold_table`);
    halved, they are multiples of ``2**-53`` below 1.
    """
    table = log_threshold_table(frac_bits) >> (TABLE_PREC - 52)
    halved = np.ldexp(table.astype(np.float64), -53)
    halved.flags.writeable = False
    return halved


def _count_above(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``count(values > thresholds)`` per element, for sorted ``thresholds``."""
    if len(thresholds) > 16:
        return np.searchsorted(thresholds, values, side="left")
    # A few thresholds: counting them is faster than a binary search per element.
    steps = np.zeros(values.shape, dtype=np.int64)
    for threshold in thresholds:
        steps += values > threshold
    return steps


def ieee_bits(negative, mag, exp2, sticky, ieee) -> np.ndarray:
    """Round ``mag * 2**exp2`` (plus a sticky fraction below its LSB) to IEEE bits, RNE.

    Parameters
    ----------
    negative : array_like of bool
        The sign, copied to the result.
    mag : array_like of int64
        The magnitude's integer significand, ``>= 1`` (a zero is patched by the caller).
    exp2 : array_like of int
        Its power-of-two exponent.
    sticky : array_like of bool
        A nonzero fraction lies below ``mag``'s LSB (the value is not exactly ``mag * 2**exp2``).
    ieee : tuple of int
        ``(mantissa_bits, exponent_bits)``, for example :data:`FLOAT32`.

    Returns
    -------
    ndarray of uint64
        The bit patterns, subnormals, overflow to infinity and underflow to zero included.
    """
    man_bits, exp_bits = ieee
    ieee_bias = (1 << (exp_bits - 1)) - 1
    mag = np.asarray(mag, dtype=np.int64)
    exponent = bit_length(mag) - 1 + exp2
    quantum = np.maximum(exponent, 1 - ieee_bias) - man_bits
    shift = quantum - exp2
    drop = np.clip(shift, 0, 62)
    kept = np.where(shift >= 0, mag >> drop, mag << np.clip(-shift, 0, 62))
    remainder = mag & ((np.left_shift(1, drop)) - 1)
    half = np.where(drop > 0, np.left_shift(1, np.maximum(drop - 1, 0)), 0)
    round_up = (drop > 0) & (
        (remainder > half) | ((remainder == half) & (sticky | ((kept & 1) == 1)))
    )
    # A 63-bit mag can sit in the octave just below the quantum (shift == 63): it rounds up to
    # one quantum iff it exceeds half of it (an exact half is a tie, rounded to the even 0).
    above_half = (shift == 63) & ((mag > 1 << 62) | ((mag == 1 << 62) & sticky))
    kept = np.where(shift > 62, above_half, kept + round_up)
    # Exponent field minus the hidden bit carried by `kept`; clamped (anything this large is
    # infinity) and composed in uint64 so that huge formats cannot overflow int64.
    field = np.minimum(quantum + man_bits + ieee_bias - 1, (1 << exp_bits) - 1)
    bits = (field.astype(np.uint64) << np.uint64(man_bits)) + kept.astype(np.uint64)
    bits = np.where(kept == 0, np.uint64(0), bits)
    infinity = np.uint64(((1 << exp_bits) - 1) << man_bits)
    bits = np.minimum(bits, infinity)
    sign_bit = np.uint64(1 << (man_bits + exp_bits))
    return np.where(negative, bits.astype(np.uint64) | sign_bit, bits.astype(np.uint64))


def _pal_to_ieee(codes, fmt: PALFormat, ieee) -> np.ndarray:
    negative, log, zero, nan = fields(codes, fmt)
    frac = log & (fmt.units - 1)
    mantissa = exp2_table(fmt.frac_bits)[frac]
    bits = ieee_bits(negative, mantissa, (log >> fmt.frac_bits) - TABLE_PREC, frac != 0, ieee)
    man_bits, exp_bits = ieee
    quiet_nan = (((1 << exp_bits) - 1) << man_bits) | (1 << (man_bits - 1))
    bits = np.where(zero, np.uint64(0), bits)
    return np.where(nan, np.uint64(quiet_nan), bits)


def float_log(x, fmt: PALFormat, offset) -> np.ndarray:
    """Nearest log (units of 2**-F) of ``|x| * 2**offset`` for finite nonzero float64 ``x``."""
    significand, exponent = np.frexp(np.abs(x))
    steps = _count_above(significand, _significand_thresholds(fmt.frac_bits))
    return (exponent.astype(np.int64) - 1 + offset) * fmt.units + steps


def encode_scaled(x, fmt: PALFormat, offset) -> np.ndarray:
    """Encode float64 ``x * 2**offset`` (``offset``: integer octaves, applied exactly).

    As :func:`encode`; ``+-inf`` saturates to ``+-max`` whatever the offset.
    """
    finite = np.isfinite(x) & (x != 0)
    log = float_log(np.where(finite, x, 1.0), fmt, offset)
    log = np.where(np.isinf(x), fmt.log_max, log)
    return pack(np.signbit(x), log, fmt, zero=(x == 0), nan=np.isnan(x))


def encode(values, fmt: PALFormat) -> np.ndarray:
    """Encode real numbers as PAL codes, correctly rounded in the log domain.

    Parameters
    ----------
    values : array_like of float or int
        Any real dtype (float16/32/64, ml_dtypes bfloat16/float8, integers); converted to float64
        exactly (integers of more than 53 bits go through :func:`from_fixed`).
    fmt : PALFormat
        The format to encode to.

    Returns
    -------
    ndarray of ``fmt.code_dtype``
        Nearest ``E`` to ``log2|x| * 2**F + bias`` (decided exactly, no ties exist); ``|x|``
        above the largest magnitude and ``+-inf`` saturate to ``+-max``; a rounded ``E < 1`` gives
        ``+0``; ``+-0`` gives ``+0``; NaN gives NaN.
    """
    check_fmt(fmt).require_tables("encode")
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.integer):
        return from_fixed(array, fmt)
    return encode_scaled(check_floats("values", array), fmt, 0)


def from_fixed(values, fmt: PALFormat, frac_bits: int = 0) -> np.ndarray:
    """Encode integers ``v`` as the value ``v * 2**-frac_bits``, correctly rounded.

    ``values`` must be an integer array (|v| < 2**63); ``frac_bits`` any integer in
    [-1024, 1024].
    """
    check_fmt(fmt).require_tables("from_fixed")
    frac_bits = check_int("frac_bits", frac_bits, -1024, 1024)
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"values must be an integer array, not dtype {array.dtype}")
    if array.dtype == np.uint64 and array.size and array.max() >= 1 << 63:
        raise ValueError("values must have magnitude below 2**63")
    ints = array.astype(np.int64)
    if ints.size and ints.min() == np.iinfo(np.int64).min:
        raise ValueError("values must have magnitude below 2**63")
    mag = np.abs(ints)
    log = log_round(np.maximum(mag, 1), np.full(mag.shape, -frac_bits, dtype=np.int64), fmt)
    return pack(ints < 0, log, fmt, zero=(mag == 0))


def decode(codes, fmt: PALFormat) -> np.ndarray:
    """Convert PAL codes to float64 values, correctly rounded (zero -> 0.0, NaN -> NaN)."""
    codes = check_codes("codes", codes, fmt)
    return _pal_to_ieee(codes, fmt, FLOAT64).view(np.float64)


def to_float32_bits(codes, fmt: PALFormat) -> np.ndarray:
    """Convert PAL codes to float32 bit patterns (uint32), correctly rounded.

    Subnormals and overflow to infinity included; NaN gives the quiet NaN ``0x7fc00000``.
    """
    codes = check_codes("codes", codes, fmt)
    return _pal_to_ieee(codes, fmt, FLOAT32).astype(np.uint32)


def to_bfloat16_bits(codes, fmt: PALFormat) -> np.ndarray:
    """Convert PAL codes to bfloat16 bit patterns (uint16), rounded as :func:`to_float32_bits`."""
    codes = check_codes("codes", codes, fmt)
    return _pal_to_ieee(codes, fmt, BFLOAT16).astype(np.uint16)


def from_float32_bits(bits, fmt: PALFormat) -> np.ndarray:
    """Encode float32 bit patterns (any integer array of values < 2**32) as PAL codes."""
    bits = check_bit_patterns("bits", bits, 32)
    return encode(bits.astype(np.uint32).view(np.float32), fmt)


def from_bfloat16_bits(bits, fmt: PALFormat) -> np.ndarray:
    """Encode bfloat16 bit patterns (any integer array of values < 2**16) as PAL codes."""
    bits = check_bit_patterns("bits", bits, 16)
    return encode((bits.astype(np.uint32) << 16).view(np.float32), fmt)
