"""Stream MACs that restart on ``last``: the PE accumulator scheme for every arithmetic.

:class:`RestartMac` is the stream wrapper: a product term, a
:class:`~palhdl.hdl.accumulator.SegmentedAccumulator` that hands over the finished sum and clears
itself after each ``last`` pair (no ``first`` multiplexer), and a result register. The PAL MAC on
the block-RAM term (:class:`~palhdl.hdl.pe.PALTableMac`) and the INT8 and FP8 baselines
(:class:`IntRestartMac`, :class:`FP8RestartMac`) are its subclasses, so the cost study compares
the arithmetic, not the accumulator.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from palhdl.format import AccumulatorConfig
from palhdl.hdl.accumulator import SegmentedAccumulator
from palhdl.hdl.baselines import (
    FP8_VARIANTS,
    FloatProductTerm,
    IntProductTerm,
    float_accumulator_layout,
)
from palhdl.hdl.mac import accumulator_layout
from palhdl.hdl.unit import Unit
from palhdl.sim.golden.baselines import FLOAT_FORMATS, check_int_mac, float_geometry
from palhdl.validate import check_choice

__all__ = ["FP8RestartMac", "IntRestartMac", "RestartMac"]


class RestartMac(Unit):
    """Stream MAC base: product term, restarting segmented accumulator, result register.

    Each input transfer carries ``a``, ``b`` and ``last``; every ``last`` pair ends a dot
    product, whose record leaves on ``o`` (one transfer per ``last``, in order); the next pair
    starts the next dot product. After reset the accumulator is clear. The pipeline advances
    when the result register is empty or taken; back-pressure stalls the input.

    A subclass sets ``self._window`` (an :class:`~palhdl.format.AccumulatorConfig`) and
    ``self._segments`` before calling :meth:`__init__` of this class with the operand shape,
    the output record and any members beyond ``i`` and ``o`` (``extra``, a dict), and
    implements :meth:`product_term` (:attr:`term_latency` if not 0; :meth:`extra_flags`
    if its record has more flags).
    """

    def __init__(self, operand_shape, output_layout: data.StructLayout, extra=None):
        inputs = data.StructLayout({"a": operand_shape, "b": operand_shape, "last": 1})
        members = {"i": In(stream.Signature(inputs)), "o": Out(stream.Signature(output_layout))}
        super().__init__(members | (extra or {}))

    @property
    def accumulator(self) -> AccumulatorConfig:
        """The accumulator window."""
        return self._window

    @property
    def segments(self) -> int:
        """Carry-pipelined accumulator segments."""
        return self._segments

    @property
    def term_latency(self) -> int:
        """Register stages of the product term (0: combinational)."""
        return 0

    def product_term(self, m: Module):
        """Add the product-term unit to ``m``; return ``(unit, term)``.

        ``unit`` has operand inputs ``a``, ``b`` (and ``en`` when :attr:`term_latency` > 0);
        ``term`` is a value of ``accumulator_layout`` (signed) or ``term_layout``
        (sign-magnitude) of :attr:`accumulator`.
        """
        raise NotImplementedError

    @property
    def latency(self) -> int:
        """Cycles from the input transfer of a ``last`` pair to its result being valid."""
        accumulator = 0 if self._segments == 1 else self._segments
        return self.term_latency + accumulator + 1

    def operands(self, m: Module):
        """Return the operands the product term takes: the input payload's ``a`` and ``b``."""
        return self.i.payload.a, self.i.payload.b

    def extra_flags(self, m: Module, unit, valid, restart, delay: int) -> dict:
        """Add logic for flags beyond ``nan`` and ``overflow``; return ``{field: value}``.

        The values belong to the dot product whose sum ``delay`` cycles after ``restart``.
        """
        return {}

    def elaborate(self, platform):
        """Product term, accumulator, result register; everything advances together."""
        m = Module()
        unit, term = self.product_term(m)
        latency = self.term_latency
        m.submodules.acc = acc = SegmentedAccumulator(
            config=self._window,
            segments=self._segments,
            signed_term=term.shape() == accumulator_layout(self._window),
        )
        advance = Signal()
        a, b = self.operands(m)
        m.d.comb += [
            unit.a.eq(a),
            unit.b.eq(b),
            acc.en.eq(advance),
            acc.term.eq(term),
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]
        if latency:
            m.d.comb += unit.en.eq(advance)
        valid, last = self.i.valid, self.i.payload.last
        for index in range(latency):
            valid_d, last_d = Signal(name=f"valid_d{index + 1}"), Signal(name=f"last_d{index + 1}")
            with m.If(advance):
                m.d.sync += [valid_d.eq(valid), last_d.eq(last)]
            valid, last = valid_d, last_d
        m.d.comb += [acc.valid.eq(valid), acc.restart.eq(valid & last)]
        extra = self.extra_flags(m, unit, valid, valid & last, acc.latency)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(acc.done)
            with m.If(acc.done):
                m.d.sync += [
                    self.o.payload.acc.eq(acc.sum.acc),
                    self.o.payload.overflow.eq(acc.sum.overflow),
                ]
                if "nan" in self.o.payload.shape().members:
                    m.d.sync += self.o.payload.nan.eq(acc.sum.nan | extra.pop("nan", 0))
                m.d.sync += [getattr(self.o.payload, n).eq(v) for n, v in extra.items()]
        return m


class IntRestartMac(RestartMac):
    """Signed integer MAC (the INT8 baseline) with the PEs' restarting accumulator.

    ``acc += a * b`` wrapping modulo ``2**acc_bits``, with the sticky ``overflow`` flag the PAL
    MAC has (set when a partial sum wraps); the record also has a ``nan`` field, always 0.
    Golden model: :func:`palhdl.sim.golden.baselines.int_mac` (the value).

    Parameters
    ----------
    width : int
        Operand width, 2..16 (default 8).
    acc_bits : int
        Accumulator width, ``2 * width`` .. 62 (default 32).
    segments : int
        Carry-pipelined accumulator segments (default 1).
    """

    @classmethod
    def check_parameters(cls, *, width: int = 8, acc_bits: int = 32, segments: int = 1):
        """Validate the parameters; return ``(width, acc_bits, segments)``."""
        width, acc_bits = check_int_mac(width, acc_bits)
        config = cls.window(width, acc_bits)
        _, segments, _ = SegmentedAccumulator.check_parameters(config=config, segments=segments)
        return width, acc_bits, segments

    @staticmethod
    def window(width: int, acc_bits: int) -> AccumulatorConfig:
        """Return the accumulator window: integer LSB, terms of ``2 * width - 1`` magnitude bits."""
        return AccumulatorConfig(
            acc_bits=acc_bits, acc_frac_bits=0, term_bits=2 * width - 1, saturate=False
        )

    def __init__(self, *, width: int = 8, acc_bits: int = 32, segments: int = 1):
        self._width, acc_bits, self._segments = self.check_parameters(
            width=width, acc_bits=acc_bits, segments=segments
        )
        self._window = self.window(self._width, acc_bits)
        super().__init__(signed(self._width), accumulator_layout(self._window))

    def product_term(self, m: Module):
        """Add an :class:`~palhdl.hdl.baselines.IntProductTerm`; its product is a signed term."""
        m.submodules.term = unit = IntProductTerm(width=self._width)
        term = Signal(accumulator_layout(self._window))
        m.d.comb += term.acc.eq(unit.product)
        return unit, term


class FP8RestartMac(RestartMac):
    """OCP FP8 MAC (the FP8 baseline) with the PEs' restarting accumulator.

    Products are exact in the fixed-point window (:class:`~palhdl.hdl.baselines.FP8Mac`'s
    datapath); the record (:func:`~palhdl.hdl.baselines.float_accumulator_layout`) has sticky
    ``pos_inf``, ``neg_inf``, ``nan`` (also set by infinities of both signs) and ``overflow``,
    as :func:`palhdl.sim.golden.baselines.float_mac` defines them. Wrapping windows only when
    ``segments > 1``.

    Parameters
    ----------
    variant : {"e4m3", "e5m2"}
        The FP8 format.
    acc_bits, acc_frac_bits, term_bits, saturate
        The accumulator window (:func:`~palhdl.sim.golden.baselines.float_geometry`).
    segments : int
        Carry-pipelined accumulator segments (default 1).
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        variant: str = "e4m3",
        acc_bits: int,
        acc_frac_bits: int,
        term_bits: int | None = None,
        saturate: bool = True,
        segments: int = 1,
    ):
        """Validate the parameters; return ``(format, config, segments)``."""
        fmt = FLOAT_FORMATS[check_choice("variant", variant, FP8_VARIANTS)]
        config = float_geometry(acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate)
        _, segments, _ = SegmentedAccumulator.check_parameters(config=config, segments=segments)
        return fmt, config, segments

    def __init__(
        self,
        *,
        variant: str = "e4m3",
        acc_bits: int,
        acc_frac_bits: int,
        term_bits: int | None = None,
        saturate: bool = True,
        segments: int = 1,
    ):
        self._fmt, self._window, self._segments = self.check_parameters(
            variant=variant,
            acc_bits=acc_bits,
            acc_frac_bits=acc_frac_bits,
            term_bits=term_bits,
            saturate=saturate,
            segments=segments,
        )
        super().__init__(self.operand_shape(), float_accumulator_layout(self._window))

    def operand_shape(self):
        """Return the shape of each operand: the FP8 pattern."""
        return unsigned(self._fmt.width)

    def product_term(self, m: Module):
        """Add a :class:`~palhdl.hdl.baselines.FloatProductTerm`; return its ``term_sm``."""
        m.submodules.term = unit = FloatProductTerm(fmt=self._fmt, config=self._window)
        return unit, unit.term_sm

    def operands(self, m: Module):
        """Return the operands the product term takes: the input payload's ``a`` and ``b``."""
        return self.i.payload.a, self.i.payload.b

    def extra_flags(self, m: Module, unit, valid, restart, delay: int) -> dict:
        """Sticky ``pos_inf``/``neg_inf`` of infinite products, delayed like the sum."""
        flags = Signal(2, name="inf")
        infinite = unit.infinite & valid
        now = Signal(2)
        m.d.comb += [
            now[0].eq(infinite & ~unit.term_sm.negative),
            now[1].eq(infinite & unit.term_sm.negative),
        ]
        with m.If(self.o.ready | ~self.o.valid):
            with m.If(restart):
                m.d.sync += flags.eq(0)
            with m.Else():
                m.d.sync += flags.eq(flags | now)
        value = flags | now
        for index in range(delay):
            reg = Signal(2, name=f"inf_d{index + 1}")
            with m.If(self.o.ready | ~self.o.valid):
                m.d.sync += reg.eq(value)
            value = reg
        return {"pos_inf": value[0], "neg_inf": value[1], "nan": value[0] & value[1]}
