"""Block-scaled MX baseline MACs: MXINT8 and MXFP8 with the PEs' restarting accumulator.

Each operand is an MX element with its block offset (:func:`mx_operand_layout`), the way the
PAL array's block-scaled operands carry theirs (:func:`~palhdl.hdl.layout.block_operand_layout`):
the offset says how many octaves the element's block scale lies below the reference scale of
its row (A) or column (B), which the host applies at readout. The product term is the
baseline's element datapath (:class:`~palhdl.hdl.baselines.IntProductTerm`, or
:class:`~palhdl.hdl.baselines.FloatProductTerm`'s decoder and significand multiplier) followed
by the *block-scale adder*: the two offsets are added and lower the product's place in the
accumulator window (:func:`place_term`), with the FP8 baseline's rounding and term-overflow
rule. So the cost of :class:`MXIntRestartMac` and :class:`MXFP8RestartMac` over
:class:`~palhdl.hdl.restart.IntRestartMac` and :class:`~palhdl.hdl.restart.FP8RestartMac` is
the block-scale hardware (and, for MXINT8, the FP8 baseline's sign-magnitude term instead of
the INT8 baseline's signed one: rounding half away from zero works on magnitudes). Golden
model: :mod:`palhdl.sim.golden.mxmac`, which the units match bit for bit.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from palhdl.format import AccumulatorConfig
from palhdl.hdl.accumulator import SegmentedAccumulator, place_term
from palhdl.hdl.baselines import (
    FloatProductTerm,
    IntProductTerm,
)
from palhdl.hdl.mac import accumulator_layout, term_layout
from palhdl.hdl.restart import FP8RestartMac, RestartMac
from palhdl.hdl.unit import Unit
from palhdl.sim.golden.baselines import float_geometry
from palhdl.sim.golden.mx import MX_FORMATS, MXFormat
from palhdl.sim.golden.mxmac import MX_OFFSET_BITS, MX_OFFSET_MAX
from palhdl.validate import check_instance, check_int

__all__ = [
    "MXFP8RestartMac",
    "MXFloatProductTerm",
    "MXIntProductTerm",
    "MXIntRestartMac",
    "mx_operand_layout",
]

#: MXINT8 elements: two's-complement bytes with 6 fraction bits, so products have 12.
_INT8_PRODUCT_FRAC_BITS = 12


def mx_operand_layout(fmt: MXFormat) -> data.StructLayout:
    """Return the layout of a block-scaled MX operand: ``element`` and its block ``offset``.

    Fields: ``element`` (``signed(8)`` for MXINT8, the FP8 bit pattern ``unsigned(8)`` for
    MXFP8; low bits) and ``offset`` (``unsigned(MX_OFFSET_BITS)``, 0..255): how many octaves
    the element's block scale lies below its row's (A) or column's (B) reference scale. A
    product is multiplied by ``2**-(offset_a + offset_b)``
    (:func:`palhdl.sim.golden.mxmac.mx_mac_terms`).

    Parameters
    ----------
    fmt : MXFormat
        One of :data:`palhdl.sim.golden.mx.MX_FORMATS`.
    """
    fmt = check_instance("fmt", fmt, MXFormat, "MX_FORMATS['mxint8']")
    element = signed(8) if fmt.element is None else unsigned(8)
    return data.StructLayout({"element": element, "offset": unsigned(MX_OFFSET_BITS)})


def _check_window(config) -> AccumulatorConfig:
    return check_instance("config", config, AccumulatorConfig, "float_geometry(32, 12)")


class MXIntProductTerm(Unit):
    """The accumulator term of two MXINT8 elements with block offsets (combinational).

    The elements' exact product (an :class:`~palhdl.hdl.baselines.IntProductTerm`, ``q_a *
    q_b * 2**-12``) is multiplied by ``2**-(offset_a + offset_b)`` and placed in the window
    by :func:`place_term`. Reference: :func:`palhdl.sim.golden.mxmac.mx_mac_terms` with
    ``MX_FORMATS["mxint8"]``.

    Parameters
    ----------
    config : AccumulatorConfig
        The accumulator window (:func:`~palhdl.sim.golden.baselines.float_geometry`).

    Members
    -------
    a, b : In(mx_operand_layout(MX_FORMATS["mxint8"]))
        The operands.
    term_sm : Out(term_layout(config))
        The term, sign-magnitude; ``nan`` is always 0; ``overflow``: the term overflowed.
    """

    @classmethod
    def check_parameters(cls, *, config: AccumulatorConfig):
        """Validate ``config``; return it."""
        return _check_window(config)

    def __init__(self, *, config: AccumulatorConfig):
        self._config = self.check_parameters(config=config)
        operand = mx_operand_layout(MX_FORMATS["mxint8"])
        super().__init__({"a": In(operand), "b": In(operand), "term_sm": Out(term_layout(config))})

    @property
    def config(self) -> AccumulatorConfig:
        """The accumulator window."""
        return self._config

    @property
    def latency(self) -> int:
        """Always 0: the unit is combinational."""
        return 0

    def elaborate(self, platform):
        """Multiply the elements, take the magnitude, add the offsets, place the product."""
        m = Module()
        m.submodules.product = unit = IntProductTerm(width=8)
        m.d.comb += [unit.a.eq(self.a.element), unit.b.eq(self.b.element)]
        negative = unit.product[-1]
        magnitude = Signal(15)  # |product| <= 2**14
        m.d.comb += magnitude.eq(Mux(negative, -unit.product, unit.product))
        base = self._config.acc_frac_bits - _INT8_PRODUCT_FRAC_BITS
        shift_min = base - 2 * MX_OFFSET_MAX
        shift = Signal(signed(max(abs(shift_min), abs(base)).bit_length() + 1))
        m.d.comb += shift.eq(base - (self.a.offset + self.b.offset))  # the block-scale adder
        # A nonzero product is at least 1: at shift term_bits it overflows.
        kept, overflow = place_term(
            m,
            self._config,
            magnitude,
            shift,
            shift_min=shift_min,
            shift_max=base,
            overflow_from=self._config.term_bits,
        )
        m.d.comb += [
            self.term_sm.magnitude.eq(kept),
            self.term_sm.negative.eq(negative),
            self.term_sm.overflow.eq(overflow),
        ]
        return m


class MXFloatProductTerm(FloatProductTerm):
    """The accumulator term of two MXFP8 elements with block offsets (combinational).

    :class:`~palhdl.hdl.baselines.FloatProductTerm`'s decoder and significand multiplier;
    the offsets are subtracted from the exponent sum before :func:`place_term` places the
    product. Specials as :class:`~palhdl.hdl.baselines.FloatProductTerm`. Reference:
    :func:`palhdl.sim.golden.mxmac.mx_mac_terms` with ``MX_FORMATS["mxfp8_e4m3"]`` (or E5M2).

    Parameters
    ----------
    fmt : FloatFormat
        The element format (``FLOAT_FORMATS["e4m3"]`` or ``["e5m2"]``).
    config : AccumulatorConfig
        The accumulator window.

    Members
    -------
    a, b : In(mx_operand_layout(MX_FORMATS["mxfp8_e4m3"]))
        The operands (the same layout for E5M2).
    term_sm, infinite
        As :class:`~palhdl.hdl.baselines.FloatProductTerm`.
    """

    @classmethod
    def check_parameters(cls, *, fmt, config: AccumulatorConfig):
        """Validate the parameters; return ``(fmt, config)``; ``fmt`` is 8 bits wide."""
        fmt, config = super().check_parameters(fmt=fmt, config=config)
        check_int("fmt.width", fmt.width, 8, 8)
        return fmt, config

    def __init__(self, *, fmt, config: AccumulatorConfig):
        self._fmt, self._config = self.check_parameters(fmt=fmt, config=config)
        operand = mx_operand_layout(MX_FORMATS["mxfp8_e4m3"])
        super(FloatProductTerm, self).__init__(
            {
                "a": In(operand),
                "b": In(operand),
                "term_sm": Out(term_layout(config)),
                "infinite": Out(1),
            },
        )

    def elaborate(self, platform):
        """Decode, multiply the significands, lower the exponent sum by the offsets, place."""
        m = Module()
        fmt, config = self._fmt, self._config
        sign_a, sig_a, exp_a, nan_a, inf_a, zero_a = self._decode(self.a.element)
        sign_b, sig_b, exp_b, nan_b, inf_b, zero_b = self._decode(self.b.element)
        # The product is sig_a * sig_b * 2**(exp_a + exp_b + base) in accumulator LSBs.
        base = config.acc_frac_bits - 2 * fmt.bias - 2 * fmt.man_bits
        lowest, shift_max = 2 + base, 2 * ((1 << fmt.exp_bits) - 1) + base
        shift_min = lowest - 2 * MX_OFFSET_MAX
        shift = Signal(signed(max(abs(shift_min), abs(shift_max)).bit_length() + 1))
        m.d.comb += shift.eq(exp_a + exp_b + base - (self.a.offset + self.b.offset))
        # A shift above `lowest` needs a normal operand, so a product of at least
        # 2**man_bits, which overflows at term_bits - man_bits.
        magnitude, overflow = place_term(
            m,
            config,
            sig_a * sig_b,
            shift,
            shift_min=shift_min,
            shift_max=shift_max,
            overflow_from=max(lowest, config.term_bits - fmt.man_bits),
        )
        nan = nan_a | nan_b | (inf_a & zero_b) | (inf_b & zero_a)
        m.d.comb += [
            self.term_sm.magnitude.eq(magnitude),
            self.term_sm.negative.eq(sign_a ^ sign_b),
            self.term_sm.nan.eq(nan),
            self.term_sm.overflow.eq(overflow),
            self.infinite.eq((inf_a | inf_b) & ~nan),
        ]
        return m


class MXIntRestartMac(RestartMac):
    """Block-scaled MXINT8 MAC with the PEs' restarting accumulator.

    Each pair's term is :class:`MXIntProductTerm`'s (the element product times
    ``2**-(offset_a + offset_b)``, rounded into the window); terms accumulate as in
    :class:`~palhdl.hdl.restart.FP8RestartMac`. The record is
    :func:`~palhdl.hdl.mac.accumulator_layout` (``acc``, ``nan`` always 0, sticky
    ``overflow``). Golden model: :func:`palhdl.sim.golden.mxmac.mx_mac` with
    ``MX_FORMATS["mxint8"]`` (``acc`` and ``overflow``). Wrapping windows only when
    ``segments > 1``.

    Parameters
    ----------
    acc_bits, acc_frac_bits, term_bits, saturate
        The accumulator window (:func:`~palhdl.sim.golden.baselines.float_geometry`); the cost
        study's is 32, 12, 14, ``False``.
    segments : int
        Carry-pipelined accumulator segments (default 1).

    Members
    -------
    i : In(stream.Signature(StructLayout({"a", "b", "last"})))
        ``a``, ``b``: :func:`mx_operand_layout` of MXINT8; ``last``: 1 bit.
    o : Out(stream.Signature(accumulator_layout(accumulator)))
        The dot product's record.
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        acc_bits: int,
        acc_frac_bits: int,
        term_bits: int | None = None,
        saturate: bool = True,
        segments: int = 1,
    ):
        """Validate the parameters; return ``(config, segments)``."""
        config = float_geometry(acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate)
        _, segments, _ = SegmentedAccumulator.check_parameters(config=config, segments=segments)
        return config, segments

    def __init__(
        self,
        *,
        acc_bits: int,
        acc_frac_bits: int,
        term_bits: int | None = None,
        saturate: bool = True,
        segments: int = 1,
    ):
        self._window, self._segments = self.check_parameters(
            acc_bits=acc_bits,
            acc_frac_bits=acc_frac_bits,
            term_bits=term_bits,
            saturate=saturate,
            segments=segments,
        )
        super().__init__(mx_operand_layout(MX_FORMATS["mxint8"]), accumulator_layout(self._window))

    @property
    def fmt(self) -> MXFormat:
        """The operand format, ``MX_FORMATS["mxint8"]``."""
        return MX_FORMATS["mxint8"]

    def product_term(self, m: Module):
        """Add an :class:`MXIntProductTerm`; return it and its ``term_sm``."""
        m.submodules.term = unit = MXIntProductTerm(config=self._window)
        return unit, unit.term_sm


class MXFP8RestartMac(FP8RestartMac):
    """Block-scaled MXFP8 MAC with the PEs' restarting accumulator.

    :class:`~palhdl.hdl.restart.FP8RestartMac` with :class:`MXFloatProductTerm` as its product
    term: the same parameters, record and flags; operands carry block offsets. Golden model:
    :func:`palhdl.sim.golden.mxmac.mx_mac` with ``MX_FORMATS["mxfp8_e4m3"]`` (or E5M2).

    Parameters
    ----------
    variant : {"e4m3", "e5m2"}
        The element format.
    acc_bits, acc_frac_bits, term_bits, saturate
        The accumulator window (:func:`~palhdl.sim.golden.baselines.float_geometry`).
    segments : int
        Carry-pipelined accumulator segments (default 1).

    Members
    -------
    i : In(stream.Signature(StructLayout({"a", "b", "last"})))
        ``a``, ``b``: :func:`mx_operand_layout` of MXFP8; ``last``: 1 bit.
    o : Out(stream.Signature(float_accumulator_layout(accumulator)))
        As :class:`~palhdl.hdl.restart.FP8RestartMac`.
    """

    def operand_shape(self):
        """Return the shape of each operand: :func:`mx_operand_layout` of the MXFP8 format."""
        return mx_operand_layout(self.fmt)

    @property
    def fmt(self) -> MXFormat:
        """The operand format, ``MX_FORMATS["mxfp8_e4m3"]`` or ``["mxfp8_e5m2"]``."""
        return MX_FORMATS[f"mxfp8_{self._fmt.name}"]

    def product_term(self, m: Module):
        """Add an :class:`MXFloatProductTerm`; return it and its ``term_sm``."""
        m.submodules.term = unit = MXFloatProductTerm(fmt=self._fmt, config=self._window)
        return unit, unit.term_sm
