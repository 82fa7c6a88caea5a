"""Readouts of MAC accumulators: the accumulator record to a PAL word or a float32 pattern.

The readouts pair with :mod:`palhdl.hdl.mac` the way ``MacResult.to_pal`` and
``MacResult.to_float32_bits`` pair with the golden MAC: the value of an accumulator ``acc``
read out with the scale octave ``scale`` is ``acc * 2**-(acc_frac_bits + scale)``. Both units
are stream converters (:class:`~palhdl.hdl.rounding.StreamConverter`) built on the rounding cores of
:mod:`palhdl.hdl.rounding`, and both are generic over the width of the ``scale`` field
(default :data:`palhdl.format.SCALE_BITS`).
"""

from __future__ import annotations

from amaranth.hdl import Const, Signal, signed, unsigned
from amaranth.lib import data

from palhdl.format import SCALE_BITS, MacConfig, PALFormat
from palhdl.hdl.convert import check_table_format
from palhdl.hdl.layout import FLOAT32, FloatLayout, PALLayout
from palhdl.hdl.rounding import StreamConverter, encode_pal, logic_level, normalise, round_ieee
from palhdl.sim.golden import check_mac_config
from palhdl.validate import check_bool, check_int

__all__ = [
    "MAX_SCALE_BITS",
    "MIN_SCALE_BITS",
    "AccumulatorToFloat32",
    "AccumulatorToPAL",
    "check_scale_bits",
    "readout_input_layout",
]

#: Range of the ``scale_bits`` parameters (the width of a signed scale octave).
MIN_SCALE_BITS = 2
MAX_SCALE_BITS = 32


def check_scale_bits(scale_bits) -> int:
    """Validate a ``scale_bits`` argument (``MIN_SCALE_BITS``..``MAX_SCALE_BITS``)."""
    return check_int("scale_bits", scale_bits, MIN_SCALE_BITS, MAX_SCALE_BITS)


def readout_input_layout(config: MacConfig, scale_bits: int = SCALE_BITS) -> data.StructLayout:
    """Input payload of the accumulator readouts.

    Fields: ``acc`` (signed ``config.acc_bits``, low bits), ``scale`` (signed ``scale_bits``,
    the output scale octave ``MacResult.scale_exp``) and ``nan`` (1 bit). The value is
    ``acc * 2**-(config.acc_frac_bits + scale)``.

    Parameters
    ----------
    config : MacConfig
        The accumulator geometry.
    scale_bits : int, optional
        Width of ``scale``, 2..32 (default :data:`palhdl.format.SCALE_BITS`).
    """
    acc_bits = check_mac_config(config).acc_bits
    scale_bits = check_scale_bits(scale_bits)
    return data.StructLayout(
        {"acc": signed(acc_bits), "scale": signed(scale_bits), "nan": unsigned(1)}
    )


class AccumulatorToPAL(StreamConverter):
    """Readout of a MAC accumulator as a correctly rounded PAL word.

    Input payload :func:`readout_input_layout` ``(config, scale_bits)``: ``acc`` (signed
    ``config.acc_bits``), ``scale`` (signed ``scale_bits``: the output scale octave
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
        Width of the ``scale`` field, 2..32 (default :data:`~palhdl.format.SCALE_BITS`).

    Members
    -------
    i : In(stream.Signature(readout_input_layout(config, scale_bits)))
        One accumulator, its scale and its NaN flag per transfer.
    o : Out(stream.Signature(PALLayout(out_fmt)))
        Its PAL word.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        config: MacConfig,
        out_fmt: PALFormat | None = None,
        pipelined: bool = False,
        scale_bits: int = SCALE_BITS,
    ):
        """Validate the parameters; return ``(config, out_fmt, pipelined, scale_bits)``."""
        check_mac_config(config)
        if out_fmt is None:
            out_fmt = config.fmt
        else:
            check_table_format("out_fmt", out_fmt, "AccumulatorToPAL")
        return config, out_fmt, check_bool("pipelined", pipelined), check_scale_bits(scale_bits)

    def __init__(
        self,
        *,
        config: MacConfig,
        out_fmt: PALFormat | None = None,
        pipelined: bool = False,
        scale_bits: int = SCALE_BITS,
    ):
        self._config, self._out_fmt, pipelined, self._scale_bits = self.check_parameters(
            config=config, out_fmt=out_fmt, pipelined=pipelined, scale_bits=scale_bits
        )
        super().__init__(
            in_shape=readout_input_layout(config, scale_bits),
            out_shape=PALLayout(self._out_fmt),
            pipelined=pipelined,
        )

    @property
    def config(self) -> MacConfig:
        """Accumulator geometry (and default output format)."""
        return self._config

    @property
    def out_fmt(self) -> PALFormat:
        """The output format."""
        return self._out_fmt

    @property
    def scale_bits(self) -> int:
        """Width of the ``scale`` field."""
        return self._scale_bits

    def datapath(self, m, pipe, valid, payload, out):
        """Add the conversion datapath; return the output valid."""
        return encode_pal(
            m, pipe, valid, out, fmt=self._out_fmt,
            negative=payload.acc[-1],
            magnitude=abs(payload.acc),
            exponent=-self._config.acc_frac_bits - payload.scale,
            nan=payload.nan,
            infinite=Const(0),
        )  # fmt: skip


class AccumulatorToFloat32(StreamConverter):
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
        Width of the ``scale`` field, 2..32 (default :data:`~palhdl.format.SCALE_BITS`).

    Members
    -------
    i : In(stream.Signature(readout_input_layout(config, scale_bits)))
        One accumulator, its scale and its NaN flag per transfer.
    o : Out(stream.Signature(FloatLayout(23, 8)))
        Its float32 bit pattern.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    @classmethod
    def check_parameters(
        cls, *, config: MacConfig, pipelined: bool = False, scale_bits: int = SCALE_BITS
    ):
        """Validate the parameters; return ``(config, pipelined, scale_bits)``."""
        return (
            check_mac_config(config),
            check_bool("pipelined", pipelined),
            check_scale_bits(scale_bits),
        )

    def __init__(self, *, config: MacConfig, pipelined: bool = False, scale_bits: int = SCALE_BITS):
        self._config, pipelined, self._scale_bits = self.check_parameters(
            config=config, pipelined=pipelined, scale_bits=scale_bits
        )
        super().__init__(
            in_shape=readout_input_layout(config, scale_bits),
            out_shape=FloatLayout(*FLOAT32),
            pipelined=pipelined,
        )

    @property
    def config(self) -> MacConfig:
        """Accumulator geometry (and default output format)."""
        return self._config

    @property
    def scale_bits(self) -> int:
        """Width of the ``scale`` field."""
        return self._scale_bits

    def datapath(self, m, pipe, valid, payload, out):
        """Add the conversion datapath; return the output valid."""
        acc = payload.acc
        magnitude = abs(acc)
        normalised, zeros = normalise(m, magnitude)
        exponent = Signal(signed(self._scale_bits + 16), name="exponent")
        zero = Signal(name="zero")
        top = len(magnitude) - 1
        logic_level(m, "exponent").d.comb += [
            exponent.eq(top - zeros - self._config.acc_frac_bits - payload.scale),
            zero.eq(magnitude == 0),
        ]
        valid, normalised, exponent, negative, zero, nan = pipe.stage(
            valid, normalised, exponent, acc[-1], zero, payload.nan
        )
        return round_ieee(
            m, pipe, valid, out, negative=negative, significand=normalised, sticky=Const(0),
            exponent=exponent, zero=zero, nan=nan,
        )  # fmt: skip
