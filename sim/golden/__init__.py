"""Bit-exact numpy golden model of the PAL format family.

Pure functions over integer code arrays; the format (and, for the MAC, a :class:`MacConfig`) is
always passed explicitly and nothing is cached but the shared tables. The specification these
functions implement is ``docs/format.md``; the RTL in ``palhdl.hdl`` matches them bit for bit.

Conventions
-----------
* A *code* array holds PAL words as unsigned integers (any integer dtype; results use
  ``fmt.code_dtype``). Codes outside ``[0, 2**fmt.width)`` raise ``ValueError``.
* Every operation rounds to nearest in the log domain; ties cannot occur (see the docs).
* Results beyond the largest magnitude saturate to ``+-max``; results whose rounded log falls
  below ``E = 1`` flush to ``+0``. NaN propagates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from palhdl.format import AccumulatorConfig, MacConfig, PALFormat
from palhdl.tables import (
    TABLE_PREC,
    db_table,
    exp2_table,
    log_threshold_table,
    mantissa_table,
    sb_table,
)
from palhdl.validate import check_instance

__all__ = [
    "UNORDERED",
    "MacResult",
    "abs_",
    "add",
    "check_codes",
    "choose_scales",
    "compare",
    "decode",
    "div",
    "dot",
    "encode",
    "from_bfloat16_bits",
    "from_fixed",
    "from_float32_bits",
    "mac_terms",
    "matmul",
    "mul",
    "neg",
    "quantize",
    "sub",
    "to_bfloat16_bits",
    "to_float32_bits",
]

#: Value :func:`compare` returns when either operand is NaN.
UNORDERED = 2

_FLOAT64 = (52, 11)
_FLOAT32 = (23, 8)
_BFLOAT16 = (7, 8)


# --- validation -------------------------------------------------------------------------------


def _check_fmt(fmt) -> PALFormat:
    if not isinstance(fmt, PALFormat):
        raise TypeError(f"fmt must be a PALFormat (for example palhdl.format.pal8), not {fmt!r}")
    return fmt


def _codes(name: str, codes, fmt: PALFormat) -> np.ndarray:
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


def check_codes(name: str, codes, fmt: PALFormat) -> np.ndarray:
    """Validate an integer array of ``fmt`` codes; returns it as int64.

    Raises ``TypeError`` for a non-integer dtype and ``ValueError`` for a code outside
    ``[0, 2**fmt.width)``, naming ``name``.
    """
    return _codes(name, codes, _check_fmt(fmt))


@np.errstate(invalid="ignore")  # signalling NaNs quietly become NaN, as specified
def _floats(name: str, values) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        # ml_dtypes floats (bfloat16, float8_*) report kind "V"; they cast to float64 exactly.
        try:
            return array.astype(np.float64) if array.dtype.itemsize <= 2 else _reject(name, array)
        except (TypeError, ValueError):
            _reject(name, array)
    return array.astype(np.float64)


def _reject(name: str, array: np.ndarray):
    raise TypeError(
        f"{name} must be a real floating-point or integer array, not dtype {array.dtype}"
    )


# --- fields -----------------------------------------------------------------------------------


def _fields(codes: np.ndarray, fmt: PALFormat):
    """Split codes into ``(negative, L, is_zero, is_nan)``; ``L`` is garbage where E == 0."""
    sign = (codes >> fmt.mag_bits) & 1 == 1
    mag = codes & fmt.mag_mask
    special = mag == 0
    return sign, mag - fmt.bias, special & ~sign, special & sign


def _pack(negative, log, fmt: PALFormat, zero=None, nan=None) -> np.ndarray:
    """Build codes from sign and exact log (units of 2**-F), saturating and flushing to zero."""
    biased = np.minimum(np.asarray(log, dtype=np.int64) + fmt.bias, fmt.mag_mask)
    underflow = biased < 1
    codes = np.where(negative, fmt.sign_mask, 0) | np.maximum(biased, 0)
    codes = np.where(underflow, fmt.zero_code, codes)
    if zero is not None:
        codes = np.where(zero, fmt.zero_code, codes)
    if nan is not None:
        codes = np.where(nan, fmt.nan_code, codes)
    return codes.astype(fmt.code_dtype)


# --- exact integer helpers --------------------------------------------------------------------


def _bit_length(values: np.ndarray) -> np.ndarray:
    """``int.bit_length`` of non-negative int64 values, vectorised and exact."""
    values = np.asarray(values, dtype=np.int64)
    _, exponent = np.frexp(values.astype(np.float64))
    exponent = exponent.astype(np.int64)
    # float64 rounding can carry 2**k - 1 up to 2**k: correct the estimate by one where it did.
    too_big = (exponent > 0) & ((values >> np.maximum(exponent - 1, 0)) == 0)
    return exponent - too_big


def _round_shift_right(values: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``round(values / 2**shift)`` for non-negative values, ties away from zero; shift >= 0."""
    shift = np.asarray(shift, dtype=np.int64)
    safe = np.minimum(shift, 62)
    half = np.where(shift > 0, np.left_shift(1, np.maximum(safe - 1, 0)), 0)
    rounded = (values + half) >> safe
    return np.where(shift > 62, 0, rounded)


def _log_round(mag: np.ndarray, exp2: np.ndarray, fmt: PALFormat) -> np.ndarray:
    """Nearest log (units of 2**-F) of ``mag * 2**exp2``, for int64 ``mag >= 1`` (exact)."""
    mag = np.asarray(mag, dtype=np.int64)
    top = _bit_length(mag) - 1
    normalised = mag << (TABLE_PREC - top)
    steps = np.searchsorted(log_threshold_table(fmt.frac_bits), normalised, side="left")
    return (top + exp2) * fmt.units + steps


def _ieee_bits(negative, mag, exp2, sticky, ieee) -> np.ndarray:
    """Round ``mag * 2**exp2`` (plus a sticky fraction below its LSB) to IEEE bits, RNE.

    ``ieee`` is ``(mantissa_bits, exponent_bits)``. Handles subnormals, overflow to infinity
    and underflow to zero; ``mag`` must be int64 and ``>= 1`` (zero is patched by the caller).
    """
    man_bits, exp_bits = ieee
    ieee_bias = (1 << (exp_bits - 1)) - 1
    mag = np.asarray(mag, dtype=np.int64)
    exponent = _bit_length(mag) - 1 + exp2
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
    negative, log, zero, nan = _fields(codes, fmt)
    frac = log & (fmt.units - 1)
    mantissa = exp2_table(fmt.frac_bits)[frac]
    bits = _ieee_bits(negative, mantissa, (log >> fmt.frac_bits) - TABLE_PREC, frac != 0, ieee)
    man_bits, exp_bits = ieee
    quiet_nan = (((1 << exp_bits) - 1) << man_bits) | (1 << (man_bits - 1))
    bits = np.where(zero, np.uint64(0), bits)
    return np.where(nan, np.uint64(quiet_nan), bits)


def _float_log(x: np.ndarray, fmt: PALFormat, offset) -> np.ndarray:
    """Nearest log (units of 2**-F) of ``|x| * 2**offset`` for finite nonzero float64 ``x``."""
    mantissa, exponent = np.frexp(np.abs(x))
    mag = (mantissa * 2.0**53).astype(np.int64)
    return _log_round(mag, exponent.astype(np.int64) - 53 + offset, fmt)


def _encode_scaled(x: np.ndarray, fmt: PALFormat, offset) -> np.ndarray:
    """Encode float64 ``x * 2**offset`` (offset: integer octaves, applied exactly)."""
    finite = np.isfinite(x) & (x != 0)
    log = _float_log(np.where(finite, x, 1.0), fmt, offset)
    log = np.where(np.isinf(x), fmt.log_max, log)
    return _pack(np.signbit(x), log, fmt, zero=(x == 0), nan=np.isnan(x))


# --- conversions ------------------------------------------------------------------------------


def encode(values, fmt: PALFormat) -> np.ndarray:
    """Encode real numbers as PAL codes, correctly rounded in the log domain.

    Parameters
    ----------
    values : array_like of float or int
        Any real dtype (float16/32/64, ml_dtypes bfloat16/float8, integers); converted to float64
        exactly (integers of more than 53 bits go through :func:`from_fixed`).
    fmt : PALFormat

    Returns
    -------
    ndarray of ``fmt.code_dtype``
        Nearest ``E`` to ``log2|x| * 2**F + bias`` (decided exactly, no ties exist); ``|x|``
        above the largest magnitude and ``+-inf`` saturate to ``+-max``; a rounded ``E < 1`` gives
        ``+0``; ``+-0`` gives ``+0``; NaN gives NaN.
    """
    _check_fmt(fmt).require_tables("encode")
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.integer):
        return from_fixed(array, fmt)
    return _encode_scaled(_floats("values", array), fmt, 0)


def from_fixed(values, fmt: PALFormat, frac_bits: int = 0) -> np.ndarray:
    """Encode integers ``v`` as the value ``v * 2**-frac_bits``, correctly rounded.

    ``values`` must be an integer array (|v| < 2**63); ``frac_bits`` any integer in
    [-1024, 1024].
    """
    _check_fmt(fmt).require_tables("from_fixed")
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, int) or abs(frac_bits) > 1024:
        raise ValueError(f"frac_bits must be an integer in [-1024, 1024], not {frac_bits!r}")
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"values must be an integer array, not dtype {array.dtype}")
    if array.dtype == np.uint64 and array.size and array.max() >= 1 << 63:
        raise ValueError("values must have magnitude below 2**63")
    ints = array.astype(np.int64)
    if ints.size and ints.min() == np.iinfo(np.int64).min:
        raise ValueError("values must have magnitude below 2**63")
    mag = np.abs(ints)
    log = _log_round(np.maximum(mag, 1), np.full(mag.shape, -frac_bits, dtype=np.int64), fmt)
    return _pack(ints < 0, log, fmt, zero=(mag == 0))


def decode(codes, fmt: PALFormat) -> np.ndarray:
    """Values of PAL codes as float64, correctly rounded (zero -> 0.0, NaN -> NaN)."""
    codes = _codes("codes", codes, _check_fmt(fmt))
    return _pal_to_ieee(codes, fmt, _FLOAT64).view(np.float64)


def to_float32_bits(codes, fmt: PALFormat) -> np.ndarray:
    """PAL codes to float32 bit patterns (uint32), correctly rounded, subnormals and overflow
    to infinity included; NaN gives the quiet NaN ``0x7fc00000``.
    """
    codes = _codes("codes", codes, _check_fmt(fmt))
    return _pal_to_ieee(codes, fmt, _FLOAT32).astype(np.uint32)


def to_bfloat16_bits(codes, fmt: PALFormat) -> np.ndarray:
    """PAL codes to bfloat16 bit patterns (uint16), rounded like :func:`to_float32_bits`."""
    codes = _codes("codes", codes, _check_fmt(fmt))
    return _pal_to_ieee(codes, fmt, _BFLOAT16).astype(np.uint16)


def _ieee_pattern(name: str, bits, width: int) -> np.ndarray:
    array = np.asarray(bits)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of bit patterns, not dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= 1 << width):
        raise ValueError(f"{name} must hold {width}-bit patterns in [0, {(1 << width) - 1}]")
    return array


def from_float32_bits(bits, fmt: PALFormat) -> np.ndarray:
    """Encode float32 bit patterns (any integer array of values < 2**32) as PAL codes."""
    bits = _ieee_pattern("bits", bits, 32)
    return encode(bits.astype(np.uint32).view(np.float32), fmt)


def from_bfloat16_bits(bits, fmt: PALFormat) -> np.ndarray:
    """Encode bfloat16 bit patterns (any integer array of values < 2**16) as PAL codes."""
    bits = _ieee_pattern("bits", bits, 16)
    return encode((bits.astype(np.uint32) << 16).view(np.float32), fmt)


# --- elementwise arithmetic -------------------------------------------------------------------


def _binary(a, b, fmt: PALFormat):
    _check_fmt(fmt)
    a = _codes("a", a, fmt)
    b = _codes("b", b, fmt)
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(
            f"a and b must broadcast together, not shapes {a.shape} and {b.shape}"
        ) from None
    return _fields(a, fmt), _fields(b, fmt)


def mul(a, b, fmt: PALFormat) -> np.ndarray:
    """``a * b``: exact log sum, sign XOR, saturate/flush; ``0 * finite = +0``; NaN propagates."""
    (sa, la, za, na), (sb, lb, zb, nb) = _binary(a, b, fmt)
    return _pack(sa ^ sb, la + lb, fmt, zero=za | zb, nan=na | nb)


def div(a, b, fmt: PALFormat) -> np.ndarray:
    """``a / b``: exact log difference; ``x / 0 = NaN`` (also ``0 / 0``), ``0 / x = +0``."""
    (sa, la, za, na), (sb, lb, zb, nb) = _binary(a, b, fmt)
    return _pack(sa ^ sb, la - lb, fmt, zero=za, nan=na | nb | zb)


def _table_lookup(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` for ``index < len(table)``, else 0 (the tables end where entries do)."""
    inside = index < len(table)
    return np.where(inside, table[np.where(inside, index, 0)], 0)


def add(a, b, fmt: PALFormat) -> np.ndarray:
    """``a + b`` by Gaussian logarithms, correctly rounded; ``x + (-x) = +0``; NaN propagates.

    With ``d = |La - Lb|`` the result log is ``max(La, Lb) + sb[d]`` (same signs) or
    ``max(La, Lb) + db[d]`` (opposite signs, sign of the larger magnitude), then saturated or
    flushed to zero. ``x + 0 = x``.
    """
    _check_fmt(fmt).require_tables("add")
    (sa, la, za, na), (sb, lb, zb, nb) = _binary(a, b, fmt)
    a_bigger = la >= lb
    big = np.where(a_bigger, la, lb)
    distance = np.abs(la - lb)
    same_sign = sa == sb
    offset = np.where(
        same_sign,
        _table_lookup(sb_table(fmt.frac_bits), distance),
        _table_lookup(db_table(fmt.frac_bits), distance),
    )
    negative = np.where(a_bigger, sa, sb)
    log = big + offset
    # A zero operand passes the other one through unchanged.
    negative = np.where(za, sb, np.where(zb, sa, negative))
    log = np.where(za, lb, np.where(zb, la, log))
    cancel = ~same_sign & (distance == 0)
    return _pack(negative, log, fmt, zero=(za & zb) | (cancel & ~za & ~zb), nan=na | nb)


def neg(a, fmt: PALFormat) -> np.ndarray:
    """``-a``; zero and NaN are unchanged."""
    a = _codes("a", a, _check_fmt(fmt))
    special = (a & fmt.mag_mask) == 0
    return np.where(special, a, a ^ fmt.sign_mask).astype(fmt.code_dtype)


def sub(a, b, fmt: PALFormat) -> np.ndarray:
    """``a - b = a + (-b)``, correctly rounded; ``x - x = +0``."""
    return add(a, neg(_codes("b", b, _check_fmt(fmt)), fmt), fmt)


def abs_(a, fmt: PALFormat) -> np.ndarray:
    """``|a|``; NaN is unchanged."""
    a = _codes("a", a, _check_fmt(fmt))
    nan = a == fmt.nan_code
    return np.where(nan, a, a & fmt.mag_mask).astype(fmt.code_dtype)


def compare(a, b, fmt: PALFormat) -> np.ndarray:
    """Three-way comparison as int8: -1 (a < b), 0 (equal), 1 (a > b), :data:`UNORDERED` if NaN."""
    (sa, la, za, na), (sb, lb, zb, nb) = _binary(a, b, fmt)

    def key(negative, log, zero):
        return np.where(zero, 0, np.where(negative, -(log + fmt.bias), log + fmt.bias))

    ka, kb = key(sa, la, za), key(sb, lb, zb)
    result = np.sign(ka - kb)
    return np.where(na | nb, UNORDERED, result).astype(np.int8)


# --- adaptive scaling -------------------------------------------------------------------------


_SCALE_MODES = (None, "tensor", "row", "col")


def choose_scales(values, fmt: PALFormat, *, per: str | None, target: int | None = None):
    """Power-of-two scales that move each row/column maximum to the top of the format.

    Parameters
    ----------
    values : 2-D array_like of float
    fmt : PALFormat
    per : {None, "tensor", "row", "col"}
        One scale for the whole tensor, per row (for a left operand A) or per column (for a
        right operand B); ``None`` means no scaling (all scales 0).
    target : int, optional
        Log magnitude, in units of ``2**-F``, the maximum is moved to; default ``fmt.log_max``
        (see :meth:`MacConfig.scale_target` for accumulator-aware targets).

    Returns
    -------
    ndarray of int64
        Octave offsets ``s``, shape ``(rows,)``, ``(cols,)`` or ``()``: the scaled operand is
        ``x * 2**s``. ``s = floor((target - Lmax) / 2**F)`` where ``Lmax`` is the correctly rounded
        log of the largest finite ``|x|`` (so the scaled maximum lands in the top octave below
        ``target``); rows with no finite nonzero value get ``s = 0``.
    """
    _check_fmt(fmt).require_tables("choose_scales")
    x = _floats("values", values)
    if x.ndim != 2:
        raise ValueError(f"values must be a 2-D array, not {x.ndim}-D with shape {x.shape}")
    if per not in _SCALE_MODES:
        raise ValueError(f"per must be one of {_SCALE_MODES}, not {per!r}")
    target = fmt.log_max if target is None else target
    if isinstance(target, bool) or not isinstance(target, int | np.integer):
        raise TypeError(f"target must be an integer log magnitude, not {target!r}")
    shape = {None: (), "tensor": (), "row": (x.shape[0],), "col": (x.shape[1],)}[per]
    if per is None:
        return np.zeros(shape, dtype=np.int64)
    magnitude = np.where(np.isfinite(x), np.abs(x), 0.0)
    axis = {"tensor": None, "row": 1, "col": 0}[per]
    peak = magnitude.max(axis=axis) if magnitude.size else np.zeros(shape)
    peak_log = _float_log(np.where(peak > 0, peak, 1.0), fmt, 0)
    scales = (int(target) - peak_log) // fmt.units
    return np.where(peak > 0, scales, 0).astype(np.int64)


def quantize(values, fmt: PALFormat, *, per: str | None = None, target: int | None = None):
    """Scale (see :func:`choose_scales`) and encode a 2-D float array exactly.

    Returns ``(codes, scales)``: ``codes`` encode ``x * 2**s`` with the scale applied exactly in
    the log domain (no intermediate float rounding, overflow or underflow).
    """
    scales = choose_scales(values, fmt, per=per, target=target)
    offset = scales[:, None] if per == "row" else scales  # (N,) column scales broadcast as is
    return _encode_scaled(_floats("values", values), fmt, offset), scales


# --- multiply-accumulate ----------------------------------------------------------------------


def check_mac_config(config) -> MacConfig:
    """Validate a :class:`~palhdl.format.MacConfig` argument named ``config``."""
    return check_instance("config", config, MacConfig, "palhdl.format.MacConfig(pal8)")


def _check_config(config) -> MacConfig | AccumulatorConfig:
    # Transitional, for palhdl.hdl.mac until it takes an AccumulatorConfig: its layouts and
    # accumulate() need only the accumulator window, which the float baselines pass alone.
    if not isinstance(config, MacConfig | AccumulatorConfig):
        raise TypeError(f"config must be a MacConfig or an AccumulatorConfig, not {config!r}")
    return config


def mac_terms(a, b, config: MacConfig):
    """Signed accumulator terms of the products ``a * b`` (elementwise, broadcast).

    Returns ``(term, nan, overflow)``: ``term`` is the int64 value the product adds to the
    accumulator, ``+-round(m * 2**shift)`` with ``m`` from the mantissa table, rounded half away
    from zero when ``shift < 0``; a term whose magnitude exceeds ``term_max`` flags ``overflow``
    and is clamped to ``+-acc_max`` (``config.saturate``) or dropped (0, wrapping);
    ``nan`` marks NaN operands; zero operands give 0.
    """
    config = check_mac_config(config)
    fmt = config.fmt
    (sa, la, za, na), (sb, lb, zb, nb) = _binary(a, b, fmt)
    log = la + lb
    octave = log >> fmt.frac_bits
    mantissa = mantissa_table(fmt.frac_bits, config.mantissa_bits)[log & (fmt.units - 1)]
    shift = config.shift(octave)
    headroom = config.term_bits - _bit_length(mantissa)
    too_big = shift > headroom
    left = mantissa << np.clip(shift, 0, 62)
    right = _round_shift_right(mantissa, np.maximum(-shift, 0))
    magnitude = np.where(shift >= 0, left, right)
    overflow = too_big | (magnitude > config.term_max)
    magnitude = np.where(overflow, config.acc_max if config.saturate else 0, magnitude)
    nonzero = ~(za | zb | na | nb)
    term = np.where(nonzero, np.where(sa ^ sb, -magnitude, magnitude), 0)
    return term, na | nb, overflow & nonzero


@dataclass(frozen=True)
class MacResult:
    """Accumulators of a matmul/dot, with flags and output scales.

    The real value of an entry is ``acc * 2**-(config.acc_frac_bits + scale_exp)``.

    Attributes
    ----------
    acc : ndarray of int64
        Raw two's-complement accumulator values, in ``[config.acc_min, config.acc_max]``.
    nan : ndarray of bool
        A NaN operand reached this accumulator (sticky).
    overflow : ndarray of bool
        The accumulator (or a single term) overflowed: saturated, or wrapped (sticky).
    scale_exp : ndarray of int64
        Output scale octaves (``a_scale[i] + b_scale[j]``), broadcast to ``acc.shape``.
    config : MacConfig
    """

    acc: np.ndarray
    nan: np.ndarray
    overflow: np.ndarray
    scale_exp: np.ndarray
    config: MacConfig

    def _exp2(self) -> np.ndarray:
        return -(self.config.acc_frac_bits + self.scale_exp)

    def to_float32_bits(self) -> np.ndarray:
        """Correctly rounded float32 bit patterns (RNE; NaN flag gives ``0x7fc00000``)."""
        return self._to_ieee(_FLOAT32).astype(np.uint32)

    def to_float32(self) -> np.ndarray:
        return self.to_float32_bits().view(np.float32)

    def to_float64(self) -> np.ndarray:
        """Correctly rounded float64 values (convenience for error measurement)."""
        return self._to_ieee(_FLOAT64).view(np.float64)

    def _to_ieee(self, ieee) -> np.ndarray:
        magnitude = np.maximum(np.abs(self.acc), 1)
        bits = _ieee_bits(self.acc < 0, magnitude, self._exp2(), False, ieee)
        man_bits, exp_bits = ieee
        quiet_nan = np.uint64((((1 << exp_bits) - 1) << man_bits) | (1 << (man_bits - 1)))
        bits = np.where(self.acc == 0, np.uint64(0), bits)
        return np.where(self.nan, quiet_nan, bits)

    def to_pal(self, fmt: PALFormat | None = None) -> np.ndarray:
        """Correctly rounded PAL codes (default: the operand format), saturating/flushing."""
        fmt = self.config.fmt if fmt is None else _check_fmt(fmt)
        fmt.require_tables("to_pal")
        magnitude = np.maximum(np.abs(self.acc), 1)
        log = _log_round(magnitude, self._exp2(), fmt)
        return _pack(self.acc < 0, log, fmt, zero=self.acc == 0, nan=self.nan)


def _scales(name: str, scales, length: int) -> np.ndarray:
    if scales is None:
        return np.zeros(length, dtype=np.int64)
    array = np.asarray(scales)
    if not np.issubdtype(array.dtype, np.integer) or array.shape not in ((), (length,)):
        raise ValueError(
            f"{name} must be an integer scalar or array of shape ({length},), not "
            f"{array.dtype} {array.shape}"
        )
    return np.broadcast_to(array.astype(np.int64), (length,))


def _check_matmul_shapes(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.shape[1] == 0:
        raise ValueError(
            "a and b must be 2-D with shapes (M, K) and (K, N), K >= 1; "
            f"got {a.shape} and {b.shape}"
        )


def matmul(a, b, config: MacConfig, *, a_scales=None, b_scales=None) -> MacResult:
    """``a @ b`` over PAL codes with exactly the hardware's linear accumulation.

    Parameters
    ----------
    a, b : 2-D integer arrays of codes, shapes ``(M, K)`` and ``(K, N)``, ``K >= 1``.
    config : MacConfig
        Operand format, mantissa table width and accumulator geometry.
    a_scales, b_scales : integer arrays of shape ``(M,)`` / ``(N,)``, optional
        Octave offsets already applied to the operands (from :func:`quantize`); they only set
        :attr:`MacResult.scale_exp`.

    Returns
    -------
    MacResult
        Terms (:func:`mac_terms`) are added for ``k = 0 .. K-1`` in order, each addition
        saturating to ``[-acc_max, acc_max]`` (or wrapping modulo ``2**acc_bits`` when not
        ``config.saturate``). While nothing overflows the sum is exact, so the result does not
        depend on the order; with the default exact configuration nothing can overflow for
        ``K <= config.max_exact_k``.
    """
    config = check_mac_config(config)
    fmt = config.fmt
    a = _codes("a", a, fmt)
    b = _codes("b", b, fmt)
    _check_matmul_shapes(a, b)
    m, k = a.shape
    n = b.shape[1]
    sa = _scales("a_scales", a_scales, m)
    sb = _scales("b_scales", b_scales, n)
    acc = np.zeros((m, n), dtype=np.int64)
    nan = np.zeros((m, n), dtype=bool)
    overflow = np.zeros((m, n), dtype=bool)
    low, high = config.acc_min, config.acc_max
    for index in range(k):
        term, term_nan, term_overflow = mac_terms(a[:, index, None], b[None, index, :], config)
        total = acc + term
        overflow |= term_overflow | (total < low) | (total > high)
        if config.saturate:
            acc = np.clip(total, low, high)
        else:
            acc = (total - low) % (1 << config.acc_bits) + low
        nan |= term_nan
    return MacResult(acc, nan, overflow, sa[:, None] + sb[None, :], config)


def dot(a, b, config: MacConfig) -> MacResult:
    """Dot product of two 1-D code vectors; a :class:`MacResult` of shape ``()``."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a and b must be 1-D of equal length, not shapes {a.shape} and {b.shape}")
    result = matmul(a[None, :], b[:, None], config)
    return MacResult(
        *(x[0, 0] for x in (result.acc, result.nan, result.overflow, result.scale_exp)), config
    )


def matmul_values(a, b, config: MacConfig, *, adaptive: bool = True) -> MacResult:
    """Quantise float matrices (per-row scales for ``a``, per-column for ``b`` when
    ``adaptive``) and multiply them with :func:`matmul`. Targets come from
    :meth:`MacConfig.scale_target` for this ``K``.
    """
    config = check_mac_config(config)
    a = _floats("a", a)
    b = _floats("b", b)
    _check_matmul_shapes(a, b)
    target = config.scale_target(a.shape[1])
    a_codes, a_scales = quantize(a, config.fmt, per="row" if adaptive else None, target=target)
    b_codes, b_scales = quantize(b, config.fmt, per="col" if adaptive else None, target=target)
    return matmul(a_codes, b_codes, config, a_scales=a_scales, b_scales=b_scales)
