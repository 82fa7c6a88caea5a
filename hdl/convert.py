"""Conversion units between PAL words, fixed-point integers and IEEE floats.

Every unit is bit-exact with :mod:`palhdl.sim.golden` (``from_fixed``, ``from_float32_bits``,
``from_bfloat16_bits``, ``to_float32_bits``, ``to_bfloat16_bits``) and is a
:class:`~palhdl.hdl.rounding.StreamConverter`: input stream ``i``, output stream ``o``, one
output per input, in order. With ``pipelined=True`` two register stages split the path;
``latency`` gives the cycles from an input transfer to the matching output becoming valid (0
when combinational). The rounding cores are in :mod:`palhdl.hdl.rounding`; the readouts of MAC
accumulators, built on the same cores, are in :mod:`palhdl.hdl.readout`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, signed
from amaranth.lib import data

from palhdl.format import PALFormat
from palhdl.hdl.layout import BFLOAT16, FLOAT32, FloatLayout, PALLayout
from palhdl.hdl.rounding import StreamConverter, encode_pal, logic_level, rom, round_ieee
from palhdl.tables import TABLE_PREC, exp2_table
from palhdl.validate import check_bool, check_instance, check_int

__all__ = [
    "BFloat16ToPAL",
    "FixedToPAL",
    "Float32ToPAL",
    "PALToBFloat16",
    "PALToFloat32",
    "check_table_format",
]


def check_table_format(name: str, fmt, unit: str) -> PALFormat:
    """Validate a PAL format argument whose tables ``unit`` needs; return it."""
    check_instance(name, fmt, PALFormat, "palhdl.format.pal8")
    fmt.require_tables(unit)
    return fmt


class FixedToPAL(StreamConverter):
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

    Members
    -------
    i : In(stream.Signature(StructLayout({"value": signed(width)})))
        One fixed-point value per transfer.
    o : Out(stream.Signature(PALLayout(fmt)))
        Its PAL word.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    @classmethod
    def check_parameters(
        cls, *, fmt: PALFormat, width: int, frac_bits: int = 0, pipelined: bool = False
    ):
        """Validate the parameters; return ``(fmt, width, frac_bits, pipelined)``."""
        return (
            check_table_format("fmt", fmt, "FixedToPAL"),
            check_int("width", width, 2, 63),
            check_int("frac_bits", frac_bits, -1024, 1024),
            check_bool("pipelined", pipelined),
        )

    def __init__(self, *, fmt: PALFormat, width: int, frac_bits: int = 0, pipelined: bool = False):
        self._fmt, self._width, self._frac_bits, pipelined = self.check_parameters(
            fmt=fmt, width=width, frac_bits=frac_bits, pipelined=pipelined
        )
        layout = data.StructLayout({"value": signed(self._width)})
        super().__init__(in_shape=layout, out_shape=PALLayout(fmt), pipelined=pipelined)

    @property
    def fmt(self) -> PALFormat:
        """The word format."""
        return self._fmt

    @property
    def width(self) -> int:
        """Input width in bits."""
        return self._width

    @property
    def frac_bits(self) -> int:
        """Fraction bits of the input."""
        return self._frac_bits

    def datapath(self, m, pipe, valid, payload, out):
        """Add the conversion datapath; return the output valid."""
        return encode_pal(
            m, pipe, valid, out, fmt=self._fmt,
            negative=payload.value[-1],
            magnitude=abs(payload.value),
            exponent=Const(-self._frac_bits, signed(12)),
            nan=Const(0),
            infinite=Const(0),
        )  # fmt: skip


class _FloatToPAL(StreamConverter):
    """IEEE float (given as ``FloatLayout(*ieee)``) to PAL; see :class:`Float32ToPAL`."""

    _IEEE: tuple[int, int]

    @classmethod
    def check_parameters(cls, *, fmt: PALFormat, pipelined: bool = False):
        """Validate the parameters; return ``(fmt, pipelined)``."""
        return check_table_format("fmt", fmt, cls.__name__), check_bool("pipelined", pipelined)

    def __init__(self, *, fmt: PALFormat, pipelined: bool = False):
        self._fmt, pipelined = self.check_parameters(fmt=fmt, pipelined=pipelined)
        super().__init__(
            in_shape=FloatLayout(*self._IEEE), out_shape=PALLayout(fmt), pipelined=pipelined
        )

    @property
    def fmt(self) -> PALFormat:
        return self._fmt

    def datapath(self, m, pipe, valid, payload, out):
        layout = payload.shape()
        man_bits = layout.man_bits
        field = payload.exponent
        special = field == (1 << layout.exp_bits) - 1
        mantissa_set = payload.mantissa != 0
        # Subnormals (field 0) have no hidden bit and the exponent of field 1.
        return encode_pal(
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

    Members
    -------
    i : In(stream.Signature(FloatLayout(23, 8)))
        One float32 bit pattern per transfer.
    o : Out(stream.Signature(PALLayout(fmt)))
        Its PAL word.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    _IEEE = FLOAT32


class BFloat16ToPAL(_FloatToPAL):
    """bfloat16 bit pattern to a correctly rounded PAL word.

    Input payload ``FloatLayout(7, 8)``; output ``PALLayout(fmt)``, equal to golden
    ``from_bfloat16_bits``. Rounding, specials, parameters and latency as
    :class:`Float32ToPAL`.
    """

    _IEEE = BFLOAT16


class _PALToFloat(StreamConverter):
    """PAL to IEEE float (``FloatLayout(*ieee)``); see :class:`PALToFloat32`."""

    _IEEE: tuple[int, int]

    @classmethod
    def check_parameters(cls, *, fmt: PALFormat, pipelined: bool = False):
        """Validate the parameters; return ``(fmt, pipelined)``."""
        return check_table_format("fmt", fmt, cls.__name__), check_bool("pipelined", pipelined)

    def __init__(self, *, fmt: PALFormat, pipelined: bool = False):
        self._fmt, pipelined = self.check_parameters(fmt=fmt, pipelined=pipelined)
        super().__init__(
            in_shape=PALLayout(fmt), out_shape=FloatLayout(*self._IEEE), pipelined=pipelined
        )

    @property
    def fmt(self) -> PALFormat:
        return self._fmt

    def datapath(self, m, pipe, valid, word, out):
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
        logic_level(m, "exp2").d.comb += [
            significand.eq(rom(entries, frac, man_bits + 3)),
            octave.eq(word.mag[fmt.frac_bits :] - (1 << (fmt.int_bits - 1))),
            sticky.eq(frac != 0),
        ]
        valid, significand, sticky, octave, negative, zero, nan = pipe.stage(
            valid, significand, sticky, octave, word.sign, word.is_zero(), word.is_nan()
        )
        return round_ieee(
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

    Members
    -------
    i : In(stream.Signature(PALLayout(fmt)))
        One PAL word per transfer.
    o : Out(stream.Signature(FloatLayout(23, 8)))
        Its float32 bit pattern.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    _IEEE = FLOAT32


class PALToBFloat16(_PALToFloat):
    """PAL word to a correctly rounded bfloat16 bit pattern.

    Output payload ``FloatLayout(7, 8)``, equal to golden ``to_bfloat16_bits`` (NaN gives
    ``0x7fc0``). Rounding, specials, parameters and latency as :class:`PALToFloat32`.
    """

    _IEEE = BFLOAT16
