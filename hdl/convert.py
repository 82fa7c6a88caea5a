"""Conversion units: MAC accumulators, fixed-point integers and IEEE floats to and from PAL.

Every unit is bit-exact with :mod:`palhdl.sim.golden` and is a stream-to-stream
``wiring.Component``: input stream ``i``, output stream ``o``, one output per input, in order.
With ``pipelined=True`` two register stages (one shared stall, see
:class:`~palhdl.hdl.pipeline.StreamPipeline`) split the path; ``latency`` gives the cycles from
an input transfer to the matching output becoming valid (0 when combinational).

Two cores serve all units:

* **to PAL** (:class:`AccumulatorToPAL`, :class:`FixedToPAL`, :class:`Float32ToPAL`,
  :class:`BFloat16ToPAL`): a magnitude ``M * 2**e`` (integer ``M``) is normalised by a
  leading-one shifter to ``x = 1.f`` with ``p`` fraction bits; the correctly rounded log
  fraction is the number of rounding thresholds ``log_threshold_table(F) >> (62 - p)`` below
  ``x`` (exact, since ``x`` has ``p`` fraction bits and no threshold is dyadic), read from two
  ROMs indexed by the top ``F + 1`` fraction bits and one comparison of the rest; then
  ``E = (octave << F) + count + bias``, saturated or flushed.
* **to IEEE** (:class:`AccumulatorToFloat32`, :class:`PALToFloat32`, :class:`PALToBFloat16`):
  a normalised significand with its exponent is cut to the IEEE precision plus a round bit and
  a sticky bit, shifted right with sticky into the subnormal range, rounded to nearest-even and
  clamped to infinity.
"""

from __future__ import annotations

import bisect

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from palhdl.format import MacConfig, PALFormat
from palhdl.hdl.layout import PALLayout, pack_word
from palhdl.hdl.pipeline import StreamPipeline, check_pipelined
from palhdl.tables import TABLE_PREC, exp2_table, log_threshold_table

__all__ = [
    "AccumulatorToFloat32",
    "AccumulatorToPAL",
    "BFloat16ToPAL",
    "FixedToPAL",
    "Float32ToPAL",
    "FloatLayout",
    "PALToBFloat16",
    "PALToFloat32",
    "readout_input_layout",
]

#: ``(mantissa_bits, exponent_bits)`` of the IEEE formats.
_FLOAT32 = (23, 8)
_BFLOAT16 = (7, 8)

#: Register stages of every pipelined unit (cycles from input transfer to output valid).
_PIPELINED_LATENCY = 2


# --- validation -------------------------------------------------------------------------------


def _check_fmt(name: str, fmt, unit: str) -> PALFormat:
    if not isinstance(fmt, PALFormat):
        raise TypeError(f"{name} must be a PALFormat (for example palhdl.format.pal8), not {fmt!r}")
    fmt.require_tables(unit)
    return fmt


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {value}")
    return value


def _check_config(config) -> MacConfig:
    if not isinstance(config, MacConfig):
        raise TypeError(f"config must be a MacConfig, not {config!r}")
    return config


# --- layouts ----------------------------------------------------------------------------------


class FloatLayout(data.StructLayout):
    """``data.StructLayout`` of an IEEE 754 binary float: ``mantissa`` (low bits), ``exponent``,
    ``sign``; its raw bits are the usual bit pattern (``FloatLayout(23, 8)`` is float32).

    Parameters
    ----------
    man_bits : int
        Stored mantissa (fraction) bits, 1..52.
    exp_bits : int
        Exponent bits, 2..11; the bias is ``2**(exp_bits - 1) - 1``.
    """

    def __init__(self, man_bits: int, exp_bits: int):
        self._man_bits = _check_int("man_bits", man_bits, 1, 52)
        self._exp_bits = _check_int("exp_bits", exp_bits, 2, 11)
        super().__init__(
            {"mantissa": unsigned(man_bits), "exponent": unsigned(exp_bits), "sign": unsigned(1)}
        )

    @property
    def man_bits(self) -> int:
        return self._man_bits

    @property
    def exp_bits(self) -> int:
        return self._exp_bits

    @property
    def bias(self) -> int:
        return (1 << (self._exp_bits - 1)) - 1

    @property
    def quiet_nan(self) -> int:
        """Bits of the positive quiet NaN (exponent all ones, mantissa MSB set)."""
        return (((1 << self._exp_bits) - 1) << self._man_bits) | (1 << (self._man_bits - 1))


def readout_input_layout(config: MacConfig, scale_bits: int = 16) -> data.StructLayout:
    """Input payload of the accumulator readouts: ``acc`` (signed ``config.acc_bits``, low
    bits), ``scale`` (signed ``scale_bits``, the output scale octave ``MacResult.scale_exp``) and
    ``nan`` (1 bit). The value is ``acc * 2**-(config.acc_frac_bits + scale)``.
    ``scale_bits`` must be in 2..32.
    """
    acc_bits = _check_config(config).acc_bits
    scale_bits = _check_int("scale_bits", scale_bits, 2, 32)
    return data.StructLayout(
        {"acc": signed(acc_bits), "scale": signed(scale_bits), "nan": unsigned(1)}
    )


# --- combinational helpers --------------------------------------------------------------------


def _level(m: Module, name: str) -> Module:
    """A submodule holding one level of combinational logic.

    Levels are named in the netlist, and Amaranth's simulator re-evaluates only the levels whose
    inputs changed (a single flat module would be re-run once per level of signals).
    """
    level = Module()
    m.submodules[name] = level
    return level


def _normalise(m: Module, magnitude):
    """Shift the leading one of unsigned ``magnitude`` to its top bit (a logarithmic shifter).

    Returns ``(normalised, zeros)``: ``normalised`` has the width of ``magnitude``; ``zeros`` is
    the count of leading zeros (meaningless for a zero magnitude).
    """
    width = len(magnitude)
    value = magnitude
    zero_bits = []
    for level in reversed(range((width - 1).bit_length())):
        step = 1 << level
        top_clear = Signal(name=f"clear{step}")
        shifted = Signal(width, name=f"shifted{step}")
        _level(m, f"normalise{step}").d.comb += [
            top_clear.eq(value[width - step :] == 0),
            shifted.eq(Mux(value[width - step :] == 0, value << step, value)),
        ]
        zero_bits.insert(0, top_clear)
        value = shifted
    return value, Cat(*zero_bits)


def _rom(entries: list[int], index, width: int):
    """``entries[index]``: a constant ROM (``Array`` of constants; Yosys maps it to LUTs)."""
    if len(entries) == 1:
        return Const(entries[0], width)
    return Array(Const(v, width) for v in entries)[index]


def _count_thresholds(m: Module, mantissa, frac_bits: int):
    """``round(log2(x) * 2**frac_bits)`` for a normalised mantissa ``x`` in ``[1, 2)``.

    ``mantissa`` is ``x`` with ``p = len(mantissa) - 1 <= 62`` fraction bits (top bit set). The
    result (``frac_bits + 1`` bits, ``0 .. 2**frac_bits``) is the number of thresholds
    ``T = log_threshold_table(frac_bits) >> (62 - p)`` below ``mantissa``.

    The top ``k = min(p, frac_bits + 1)`` fraction bits select one of ``2**k`` equal intervals
    of ``[1, 2)``. Consecutive thresholds are more than an interval apart (their ratio is
    ``2**(2**-frac_bits)``), so an interval holds at most one (checked here). Two ROMs indexed by
    the interval give the number of thresholds below it and the low ``p - k`` bits of the one
    inside it (all ones if none, which no mantissa exceeds); one comparison of the low bits
    completes the count.
    """
    p = len(mantissa) - 1
    assert 0 <= p <= TABLE_PREC
    thresholds = [int(t) >> (TABLE_PREC - p) for t in log_threshold_table(frac_bits)]
    k = min(p, frac_bits + 1)
    low_bits = p - k
    below, inside = [], []
    for interval in range(1 << k):
        start = ((1 << k) | interval) << low_bits
        first = bisect.bisect_left(thresholds, start)
        below.append(first)
        end = start + (1 << low_bits)
        hits = thresholds[first : bisect.bisect_left(thresholds, end)]
        assert low_bits == 0 or len(hits) <= 1, "thresholds closer than an interval"
        inside.append(hits[0] - start if hits else (1 << low_bits) - 1)
    interval = mantissa[low_bits:p]
    count = Signal(frac_bits + 1, name="log_count")
    value = _rom(below, interval, frac_bits + 1)
    if low_bits:
        value = value + (mantissa[:low_bits] > _rom(inside, interval, low_bits))
    _level(m, "log_count").d.comb += count.eq(value)
    return count


def _encode(
    m: Module,
    pipe: StreamPipeline,
    valid,
    out,
    *,
    fmt,
    negative,
    magnitude,
    exponent,
    nan,
    infinite,
):
    """Drive PAL word ``out`` with the correctly rounded ``(-1)**negative * magnitude *
    2**exponent`` (unsigned ``magnitude``, signed ``exponent``), like golden ``_log_round`` +
    ``_pack``: zero magnitude gives +0, ``infinite`` saturates, NaN wins. One pipeline stage
    after the normaliser, one on the output; returns the output ``valid``.
    """
    normalised, zeros = _normalise(m, magnitude)
    octave = Signal(signed(max(len(exponent), len(zeros) + 1) + 2), name="octave")
    zero = Signal(name="zero")
    _level(m, "octave").d.comb += [
        octave.eq(exponent + (len(magnitude) - 1) - zeros),
        zero.eq(magnitude == 0),
    ]
    valid, normalised, octave, negative, zero, nan, infinite = pipe.stage(
        valid, normalised, octave, negative, zero, nan, infinite
    )
    count = _count_thresholds(m, normalised, fmt.frac_bits)
    log = Mux(infinite, fmt.mag_mask, (octave << fmt.frac_bits) + count + fmt.bias)
    word = Signal(PALLayout(fmt))
    pack_word(_level(m, "pack"), word, log=log, negative=negative, nan=nan, zero=zero, fmt=fmt)
    valid, word = pipe.stage(valid, word)
    m.d.comb += out.eq(word)
    return valid


def _round_ieee(
    m: Module,
    pipe: StreamPipeline,
    valid,
    out,
    *,
    negative,
    significand,
    sticky,
    exponent,
    zero,
    nan,
):
    """Drive IEEE word ``out`` (a :class:`FloatLayout` view) with the value
    ``significand * 2**(exponent - len(significand) + 1)`` (plus a positive fraction below its
    LSB when ``sticky``), rounded to nearest-even like golden ``_ieee_bits``: normalised
    ``significand`` (top bit set), subnormals, overflow to infinity, tiny values to signed zero.
    ``zero`` gives +0 and ``nan`` the quiet NaN. Ends with one pipeline stage; returns the output
    ``valid``.
    """
    layout = out.shape()
    man_bits, exp_bits = layout.man_bits, layout.exp_bits
    # The significand, a round bit and a sticky bit (OR of everything below): man_bits + 3 bits.
    keep = man_bits + 3
    width = len(significand)
    if width >= keep:
        below = significand[: width - keep] != 0 if width > keep else Const(0)
        reduced_value = significand[width - keep :] | below | sticky
    else:
        reduced_value = (significand << (keep - width)) | sticky
    reduced = Signal(keep, name="ieee_reduced")
    biased = Signal(signed(max(len(exponent), exp_bits) + 2), name="ieee_biased_exponent")
    # Subnormal results shift right by 1 - biased; from ``keep`` on everything is sticky.
    shift = Signal(range(keep + 1), name="ieee_shift")
    biased_value = exponent + layout.bias
    _level(m, "ieee_align").d.comb += [
        reduced.eq(reduced_value),
        biased.eq(biased_value),
        shift.eq(Mux(biased_value < 1, Mux(biased_value < 1 - keep, keep, 1 - biased_value), 0)),
    ]
    shifted = reduced >> shift
    kept = shifted[2:]
    sticky_out = ((shifted << shift)[:keep] != reduced) | shifted[0]
    round_up = shifted[1] & (sticky_out | kept[0])
    # Field exponent (biased - 1, or 0 for subnormals) plus the significand with its hidden bit:
    # a carry out of the significand moves to the next binade or to infinity.
    field = Signal(exp_bits + man_bits + 1, name="ieee_field")
    _level(m, "ieee_round").d.comb += field.eq(
        (Mux(biased < 1, 0, biased - 1) << man_bits) + kept + round_up
    )
    infinity = ((1 << exp_bits) - 1) << man_bits
    result = Signal(layout)
    pack = _level(m, "ieee_pack")
    pack.d.comb += [
        result.as_value()[: man_bits + exp_bits].eq(
            Mux(biased >= (1 << exp_bits) - 1, infinity, field)
        ),
        result.sign.eq(negative),
    ]
    with pack.If(zero):
        pack.d.comb += result.eq(0)
    with pack.If(nan):
        pack.d.comb += result.eq(layout.quiet_nan)
    valid, result = pipe.stage(valid, result)
    m.d.comb += out.eq(result)
    return valid


# --- units ------------------------------------------------------------------------------------


class _Converter(wiring.Component):
    """Shared plumbing: streams ``i``/``o``, the ``pipelined`` flag and ``latency``."""

    def __init__(self, in_shape, out_shape, pipelined):
        self._pipelined = check_pipelined(pipelined)
        super().__init__(
            {"i": In(stream.Signature(in_shape)), "o": Out(stream.Signature(out_shape))}
        )

    @property
    def pipelined(self) -> bool:
        return self._pipelined

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output being valid (0 = combinational)."""
        return _PIPELINED_LATENCY if self._pipelined else 0

    def elaborate(self, platform):
        m = Module()
        pipe = StreamPipeline(m, enabled=self._pipelined)
        valid = self._convert(m, pipe, self.i.valid, self.i.payload, self.o.payload)
        assert pipe.latency == self.latency
        pipe.connect(self.i, self.o, valid)
        return m


class AccumulatorToPAL(_Converter):
    """Readout of a MAC accumulator as a correctly rounded PAL word.

    Input payload :func:`readout_input_layout` ``(config, scale_bits)``: ``acc`` (signed
    ``config.acc_bits``), ``scale`` (signed ``scale_bits``, default 16: the output scale octave
    ``MacResult.scale_exp``, i.e. ``a_scale + b_scale``) and ``nan``. Output payload
    ``PALLayout(out_fmt)``, equal to ``MacResult(acc, nan, ..., scale, config).to_pal(out_fmt)``.

    Rounding: the nearest PAL word to ``acc * 2**-(config.acc_frac_bits + scale)`` in the log
    domain (exact; ties cannot occur). Values above the largest magnitude saturate to ``+-max``;
    a rounded ``E < 1`` flushes to ``+0``. Specials: ``acc == 0`` gives ``+0``; the ``nan`` flag
    gives NaN. Any ``acc`` the field holds converts exactly (also ``-2**(acc_bits - 1)``).

    Parameters
    ----------
    config : MacConfig
        Accumulator geometry (``acc_bits``, ``acc_frac_bits``) and default output format.
    out_fmt : PALFormat, optional
        Output format, default ``config.fmt``; ``frac_bits`` at most
        :data:`palhdl.format.MAX_TABLE_FRAC_BITS`.
    pipelined : bool, optional
        ``False`` (default): combinational, ``latency == 0``. ``True``: a register stage after
        the leading-one normaliser and one on the output, ``latency == 2``.
    scale_bits : int, optional
        Width of the ``scale`` field, 2..32 (default 16).

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    def __init__(
        self,
        *,
        config: MacConfig,
        out_fmt: PALFormat | None = None,
        pipelined: bool = False,
        scale_bits: int = 16,
    ):
        self._config = _check_config(config)
        self._out_fmt = (
            config.fmt if out_fmt is None else _check_fmt("out_fmt", out_fmt, "AccumulatorToPAL")
        )
        self._scale_bits = _check_int("scale_bits", scale_bits, 2, 32)
        super().__init__(
            readout_input_layout(config, scale_bits), PALLayout(self._out_fmt), pipelined
        )

    @property
    def config(self) -> MacConfig:
        return self._config

    @property
    def out_fmt(self) -> PALFormat:
        return self._out_fmt

    @property
    def scale_bits(self) -> int:
        return self._scale_bits

    def _convert(self, m, pipe, valid, payload, out):
        return _encode(
            m, pipe, valid, out, fmt=self._out_fmt,
            negative=payload.acc[-1],
            magnitude=abs(payload.acc),
            exponent=-self._config.acc_frac_bits - payload.scale,
            nan=payload.nan,
            infinite=Const(0),
        )  # fmt: skip


class FixedToPAL(_Converter):
    """Signed two's-complement fixed-point number to a correctly rounded PAL word.

    Input payload ``StructLayout({"value": signed(width)})``, read as
    ``value * 2**-frac_bits``. Output payload ``PALLayout(fmt)``, equal to golden
    ``from_fixed(value, fmt, frac_bits)``. Same core as :class:`AccumulatorToPAL`.

    Rounding: nearest in the log domain (exact; no ties). Above ``+-max`` saturates, a rounded
    ``E < 1`` flushes to ``+0``; ``value == 0`` gives ``+0``.

    Parameters
    ----------
    fmt : PALFormat
        Output format (``frac_bits`` at most :data:`palhdl.format.MAX_TABLE_FRAC_BITS`).
    width : int
        Input width in bits, 2..63.
    frac_bits : int, optional
        Fraction bits of the input, -1024..1024 (default 0: an integer).
    pipelined : bool, optional
        ``False`` (default): ``latency == 0``. ``True``: ``latency == 2`` (as
        :class:`AccumulatorToPAL`).

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    def __init__(self, *, fmt: PALFormat, width: int, frac_bits: int = 0, pipelined: bool = False):
        self._fmt = _check_fmt("fmt", fmt, "FixedToPAL")
        self._width = _check_int("width", width, 2, 63)
        self._frac_bits = _check_int("frac_bits", frac_bits, -1024, 1024)
        layout = data.StructLayout({"value": signed(width)})
        super().__init__(layout, PALLayout(fmt), pipelined)

    @property
    def fmt(self) -> PALFormat:
        return self._fmt

    @property
    def width(self) -> int:
        return self._width

    @property
    def frac_bits(self) -> int:
        return self._frac_bits

    def _convert(self, m, pipe, valid, payload, out):
        return _encode(
            m, pipe, valid, out, fmt=self._fmt,
            negative=payload.value[-1],
            magnitude=abs(payload.value),
            exponent=Const(-self._frac_bits, signed(12)),
            nan=Const(0),
            infinite=Const(0),
        )  # fmt: skip


class _FloatToPAL(_Converter):
    """IEEE float (given as ``FloatLayout(*ieee)``) to PAL; see :class:`Float32ToPAL`."""

    _IEEE: tuple[int, int]

    def __init__(self, *, fmt: PALFormat, pipelined: bool = False):
        self._fmt = _check_fmt("fmt", fmt, type(self).__name__)
        super().__init__(FloatLayout(*self._IEEE), PALLayout(fmt), pipelined)

    @property
    def fmt(self) -> PALFormat:
        return self._fmt

    def _convert(self, m, pipe, valid, payload, out):
        layout = payload.shape()
        man_bits = layout.man_bits
        field = payload.exponent
        special = field == (1 << layout.exp_bits) - 1
        mantissa_set = payload.mantissa != 0
        # Subnormals (field 0) have no hidden bit and the exponent of field 1.
        return _encode(
            m, pipe, valid, out, fmt=self._fmt,
            negative=payload.sign,
            magnitude=Cat(payload.mantissa, field != 0),
            exponent=Mux(field == 0, 1, field) - (layout.bias + man_bits),
            nan=special & mantissa_set,
            infinite=special & ~mantissa_set,
        )  # fmt: skip


class Float32ToPAL(_FloatToPAL):
    """float32 bit pattern to a correctly rounded PAL word.

    Input payload ``FloatLayout(23, 8)`` (raw bits = the float32 bit pattern). Output payload
    ``PALLayout(fmt)``, equal to golden ``from_float32_bits``.

    Rounding: nearest in the log domain (exact, no ties), subnormal inputs included. Above
    ``+-max`` and ``+-inf`` saturate to ``+-max``; a rounded ``E < 1`` flushes to ``+0``;
    ``+-0`` gives ``+0``; every NaN gives the PAL NaN.

    Parameters
    ----------
    fmt : PALFormat
        Output format (``frac_bits`` at most :data:`palhdl.format.MAX_TABLE_FRAC_BITS`).
    pipelined : bool, optional
        ``False`` (default): ``latency == 0``. ``True``: a register stage after the leading-one
        normaliser and one on the output, ``latency == 2``.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    _IEEE = _FLOAT32


class BFloat16ToPAL(_FloatToPAL):
    """bfloat16 bit pattern to a correctly rounded PAL word.

    Input payload ``FloatLayout(7, 8)``; output ``PALLayout(fmt)``, equal to golden
    ``from_bfloat16_bits``. Rounding, specials, parameters and latency as
    :class:`Float32ToPAL`.
    """

    _IEEE = _BFLOAT16


class _PALToFloat(_Converter):
    """PAL to IEEE float (``FloatLayout(*ieee)``); see :class:`PALToFloat32`."""

    _IEEE: tuple[int, int]

    def __init__(self, *, fmt: PALFormat, pipelined: bool = False):
        self._fmt = _check_fmt("fmt", fmt, type(self).__name__)
        super().__init__(PALLayout(fmt), FloatLayout(*self._IEEE), pipelined)

    @property
    def fmt(self) -> PALFormat:
        return self._fmt

    def _convert(self, m, pipe, valid, word, out):
        fmt = self._fmt
        man_bits = self._IEEE[0]
        # L = E - bias splits into octave = (E >> F) - 2**(I - 1) and fraction r = E mod 2**F.
        # The IEEE rounder needs man_bits + 2 fraction bits of 2**(r / 2**F); the rest of the
        # irrational value is sticky exactly when r != 0.
        frac = word.mag[: fmt.frac_bits]
        drop = TABLE_PREC - (man_bits + 2)
        entries = [int(v) >> drop for v in exp2_table(fmt.frac_bits)]
        significand = Signal(man_bits + 3, name="exp2")
        octave = Signal(signed(fmt.int_bits + 1), name="octave")
        sticky = Signal(name="sticky")
        _level(m, "exp2").d.comb += [
            significand.eq(_rom(entries, frac, man_bits + 3)),
            octave.eq(word.mag[fmt.frac_bits :] - (1 << (fmt.int_bits - 1))),
            sticky.eq(frac != 0),
        ]
        valid, significand, sticky, octave, negative, zero, nan = pipe.stage(
            valid, significand, sticky, octave, word.sign, word.is_zero(), word.is_nan()
        )
        return _round_ieee(
            m, pipe, valid, out, negative=negative, significand=significand, sticky=sticky,
            exponent=octave, zero=zero, nan=nan,
        )  # fmt: skip


class PALToFloat32(_PALToFloat):
    """PAL word to a correctly rounded float32 bit pattern.

    Input payload ``PALLayout(fmt)``; output payload ``FloatLayout(23, 8)`` (raw bits = the
    float32 bit pattern), equal to golden ``to_float32_bits``.

    Rounding: the value ``2**(L / 2**F)`` rounded to nearest-even (exact: the fraction beyond
    the ``exp2_table`` bits used is sticky), subnormal results, overflow to ``+-inf``, values
    below half the smallest subnormal to ``+-0``. Specials: PAL zero gives ``+0``, PAL NaN the
    quiet NaN ``0x7fc00000``.

    Parameters
    ----------
    fmt : PALFormat
        Input format (``frac_bits`` at most :data:`palhdl.format.MAX_TABLE_FRAC_BITS`).
    pipelined : bool, optional
        ``False`` (default): ``latency == 0``. ``True``: a register stage after the
        ``exp2`` table lookup and one on the output, ``latency == 2``.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    _IEEE = _FLOAT32


class PALToBFloat16(_PALToFloat):
    """PAL word to a correctly rounded bfloat16 bit pattern.

    Output payload ``FloatLayout(7, 8)``, equal to golden ``to_bfloat16_bits`` (NaN gives
    ``0x7fc0``). Rounding, specials, parameters and latency as :class:`PALToFloat32`.
    """

    _IEEE = _BFLOAT16


class AccumulatorToFloat32(_Converter):
    """Readout of a MAC accumulator as a correctly rounded float32 bit pattern.

    Input payload :func:`readout_input_layout` ``(config, scale_bits)`` (as
    :class:`AccumulatorToPAL`); output payload ``FloatLayout(23, 8)``, equal to
    ``MacResult(acc, nan, ..., scale, config).to_float32_bits()``.

    Rounding: ``acc * 2**-(config.acc_frac_bits + scale)`` to nearest-even, subnormal results,
    overflow to ``+-inf``, values at most half the smallest subnormal to ``+-0``. Specials:
    ``acc == 0`` gives ``+0``; the ``nan`` flag gives ``0x7fc00000``.

    Parameters
    ----------
    config : MacConfig
        Accumulator geometry (``acc_bits``, ``acc_frac_bits``).
    pipelined : bool, optional
        ``False`` (default): ``latency == 0``. ``True``: a register stage after the leading-one
        normaliser and one on the output, ``latency == 2``.
    scale_bits : int, optional
        Width of the ``scale`` field, 2..32 (default 16).

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    def __init__(self, *, config: MacConfig, pipelined: bool = False, scale_bits: int = 16):
        self._config = _check_config(config)
        self._scale_bits = _check_int("scale_bits", scale_bits, 2, 32)
        super().__init__(
            readout_input_layout(config, scale_bits), FloatLayout(*_FLOAT32), pipelined
        )

    @property
    def config(self) -> MacConfig:
        return self._config

    @property
    def scale_bits(self) -> int:
        return self._scale_bits

    def _convert(self, m, pipe, valid, payload, out):
        acc = payload.acc
        magnitude = abs(acc)
        normalised, zeros = _normalise(m, magnitude)
        exponent = Signal(signed(self._scale_bits + 16), name="exponent")
        zero = Signal(name="zero")
        top = len(magnitude) - 1
        _level(m, "exponent").d.comb += [
            exponent.eq(top - zeros - self._config.acc_frac_bits - payload.scale),
            zero.eq(magnitude == 0),
        ]
        valid, normalised, exponent, negative, zero, nan = pipe.stage(
            valid, normalised, exponent, acc[-1], zero, payload.nan
        )
        return _round_ieee(
            m, pipe, valid, out, negative=negative, significand=normalised, sticky=Const(0),
            exponent=exponent, zero=zero, nan=nan,
        )  # fmt: skip
