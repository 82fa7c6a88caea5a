"""Multiply-accumulate of PAL words into a linear fixed-point accumulator.

:class:`PALProductTerm` turns two PAL words into the signed accumulator term of their product
(the logic of :func:`palhdl.sim.golden.mac_terms`); :func:`accumulate` adds a term to an
accumulator record with saturation or wrapping and sticky flags, for any
:class:`~palhdl.format.AccumulatorConfig` (the float baselines use it too). :class:`PALMac`
wraps both into a stream unit that computes dot products back to back, bit-exact with
:func:`palhdl.sim.golden.dot` / ``matmul``, optionally followed by a readout of
:mod:`palhdl.hdl.readout`. The systolic array instantiates :class:`PALProductTerm` and
:func:`accumulate` once per PE.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from palhdl.format import SCALE_BITS, AccumulatorConfig, MacConfig
from palhdl.hdl.layout import FLOAT32, FloatLayout, PALLayout, lowered_operand_layout
from palhdl.hdl.pipeline import StreamPipeline
from palhdl.hdl.readout import AccumulatorToFloat32, AccumulatorToPAL
from palhdl.hdl.rounding import PIPELINED_LATENCY
from palhdl.hdl.unit import Unit
from palhdl.sim.golden import check_mac_config
from palhdl.tables import mantissa_table
from palhdl.validate import check_bool, check_choice, check_instance

__all__ = [
    "READOUTS",
    "PALMac",
    "PALProductTerm",
    "accumulate",
    "accumulator_layout",
    "term_layout",
]

#: Accepted values of ``PALMac(readout=...)``.
READOUTS = ("raw", "float32", "pal")

#: The example the message of a wrong accumulator ``config`` argument suggests.
_ACCUMULATOR_EXAMPLE = "palhdl.format.MacConfig(pal8).accumulator"


def accumulator_layout(config: AccumulatorConfig) -> data.StructLayout:
    """Return the accumulator record: ``acc`` (``signed(acc_bits)``), sticky ``nan``, ``overflow``.

    :attr:`PALProductTerm.term` is a record of the same layout: a term is exactly the
    accumulator of a one-element dot product.

    Parameters
    ----------
    config : AccumulatorConfig
        The accumulator window (a PAL MAC passes ``MacConfig.accumulator``).
    """
    config = check_instance("config", config, AccumulatorConfig, _ACCUMULATOR_EXAMPLE)
    return data.StructLayout({"acc": signed(config.acc_bits), "nan": 1, "overflow": 1})


def term_layout(config: AccumulatorConfig) -> data.StructLayout:
    """Return the layout of a product term in sign-magnitude form.

    Fields: ``magnitude`` (``unsigned(acc_bits - 1)``, at most ``acc_max``), ``negative``
    (the product's sign, clear for a zero or NaN operand; with ``magnitude == 0`` the term is
    0 either way), ``nan``, ``overflow``. :func:`accumulate` adds it with a single adder (the
    sign is the adder's carry-in), cheaper than a signed term. :attr:`PALProductTerm.term_sm`
    has this layout.

    Parameters
    ----------
    config : AccumulatorConfig
        The accumulator window.
    """
    config = check_instance("config", config, AccumulatorConfig, _ACCUMULATOR_EXAMPLE)
    return data.StructLayout(
        {
            "magnitude": unsigned(config.acc_bits - 1),
            "negative": 1,
            "nan": 1,
            "overflow": 1,
        }
    )


def accumulate(m: Module, config: AccumulatorConfig, acc, term):
    """Add the combinational accumulate step ``acc + term`` to ``m``.

    The sum saturates to ``[-acc_max, acc_max]``, or wraps modulo ``2**acc_bits`` when not
    ``config.saturate``.

    Parameters
    ----------
    m : Module
        Receives the logic (``comb`` domain).
    config : AccumulatorConfig
        Accumulator window.
    acc : value of :func:`accumulator_layout`
        The running accumulator, in ``[config.acc_min, config.acc_max]``.
    term : value of :func:`accumulator_layout` or of :func:`term_layout`
        A product term, signed or sign-magnitude (the cheaper one: ``acc + ~magnitude + 1``
        needs no separate negation).

    Returns
    -------
    Signal of accumulator_layout(config)
        The saturated (wrapped) sum; ``nan`` is ``acc.nan | term.nan``, ``overflow`` is
        ``acc.overflow | term.overflow`` or set when the sum saturated (wrapped), as
        :func:`palhdl.sim.golden.matmul`.

    Raises
    ------
    TypeError
        If ``config`` is not an ``AccumulatorConfig`` or ``term`` has neither layout.
    """
    record = accumulator_layout(config)
    n = config.acc_bits
    acc_max = config.acc_max
    total = Signal(signed(n + 1))
    if term.shape() == term_layout(config):
        negative = term.negative
        ones = Cat(term.magnitude ^ negative.replicate(n - 1), negative).as_signed()
        m.d.comb += total.eq(acc.acc + ones + negative)
    elif term.shape() == record:
        m.d.comb += total.eq(acc.acc + term.acc)
    else:
        raise TypeError(
            f"term must be a value of accumulator_layout(config) or term_layout(config), "
            f"not of {term.shape()!r}"
        )
    result = Signal(record)
    m.d.comb += result.nan.eq(acc.nan | term.nan)
    if not config.saturate:
        # Two's-complement overflow: the n + 1-bit sum's top two bits differ.
        m.d.comb += [
            result.acc.eq(total[:n]),
            result.overflow.eq(acc.overflow | term.overflow | (total[n] ^ total[n - 1])),
        ]
        return result
    # The sum lies in [-2 * acc_max, 2 * acc_max]: above acc_max is a positive signed overflow
    # of n bits; below -acc_max is a negative one or exactly -2**(n - 1).
    high = ~total[n] & total[n - 1]
    low = total[n] & (~total[n - 1] | (total[: n - 1] == 0))
    m.d.comb += [
        result.acc.eq(Mux(high, acc_max, Mux(low, -acc_max, total[:n]))),
        result.overflow.eq(acc.overflow | term.overflow | high | low),
    ]
    return result


class PALProductTerm(Unit):
    """The accumulator term of the product of two PAL words (no handshake).

    Computes, exactly as :func:`palhdl.sim.golden.mac_terms`: ``S = Ea + Eb`` (so
    ``P = La + Lb = S - 2**(I+F)``), octave ``q = P >> F``, ``r = P mod 2**F``, mantissa
    ``m = mantissa_table(F, W)[r]``, ``shift = q - W + acc_frac_bits``; the magnitude is
    ``m << shift`` or, for ``shift < 0``, ``m >> -shift`` rounded half away from zero. A
    magnitude above ``config.term_max`` sets ``overflow`` and is clamped to ``acc_max``
    (``config.saturate``) or dropped (the term is 0). The sign is ``sa XOR sb``; a zero or NaN
    operand gives a zero term and no overflow; a NaN operand sets ``nan``.

    The shifter covers only the shifts that can change the result: ``shift`` is clamped to
    ``[lo, hi]`` (:attr:`shift_range`) with ``lo = max(shift(q_min), -(bits(m_max) + 1))``
    (every smaller shift rounds to 0) and ``hi = min(shift(q_max), term_bits - bits(m_min))``
    (every larger shift overflows, detected by a comparator on ``q``), so a narrow term window
    (``config.term_bits``) gets a narrow shifter. Right shifts need one rounding adder as wide
    as the mantissa plus ``-lo`` bits; a lossless configuration (``config.is_lossless``) has
    none.

    The term comes in two forms; logic only one of them needs is removed by synthesis.
    A PE that feeds :func:`accumulate` should use ``term_sm``.

    Block-scaled operands (``block_scaled``) come with their offsets applied
    (:func:`~palhdl.hdl.layout.lower_operand`): the log sum is the sum of their ``log`` s,
    ``S' = Ea + Eb - offset_a - offset_b``, negative for a zero or NaN operand; a negative
    ``S'`` gives a zero term without overflow (``nan`` is still flagged), any other the term of
    log sum ``S'``, as :func:`palhdl.sim.golden.mac_terms` with
    ``offset = offset_a + offset_b``. The shifter then also covers the octave of ``S' = 0``.

    Parameters
    ----------
    config : MacConfig
        Operand format, mantissa width ``W`` and accumulator geometry.
    pipelined : bool, optional
        ``False`` (default): combinational, ``latency == 0``. ``True``: registers after the
        exponent adder, after the mantissa lookup / shift decode, and after the shifter
        (``latency == PIPELINED_LATENCY == 3``); they load when ``en`` is high.
    block_scaled : bool, optional
        Operands are :func:`~palhdl.hdl.layout.lowered_operand_layout` records (default
        ``False``: PAL words).

    Members
    -------
    a, b : In(PALLayout(config.fmt)) or In(lowered_operand_layout(config.fmt))
        The operands.
    en : In(1)
        Register enable; present only when ``pipelined``.
    term : Out(accumulator_layout(config.accumulator))
        ``term.acc``: the signed term in ``[-acc_max, acc_max]``; ``term.nan``: an operand is
        NaN; ``term.overflow``: the term's magnitude exceeded ``config.term_max``, so it was
        clamped (saturating) or dropped (wrapping); never set with a zero or NaN operand.
    term_sm : Out(term_layout(config.accumulator))
        The same term in sign-magnitude form.

    Raises
    ------
    TypeError
        If ``config`` is not a ``MacConfig`` or ``pipelined`` is not a bool.
    """

    #: ``latency`` of a pipelined product term.
    PIPELINED_LATENCY = 3

    @classmethod
    def check_parameters(
        cls, *, config: MacConfig, pipelined: bool = False, block_scaled: bool = False
    ):
        """Validate the parameters; return ``(config, pipelined, block_scaled)``."""
        return (
            check_mac_config(config),
            check_bool("pipelined", pipelined),
            check_bool("block_scaled", block_scaled),
        )

    def __init__(self, *, config: MacConfig, pipelined: bool = False, block_scaled: bool = False):
        self._config, self._pipelined, self._block_scaled = self.check_parameters(
            config=config, pipelined=pipelined, block_scaled=block_scaled
        )
        word = lowered_operand_layout(config.fmt) if block_scaled else PALLayout(config.fmt)
        members = {
            "a": In(word),
            "b": In(word),
            "term": Out(accumulator_layout(config.accumulator)),
            "term_sm": Out(term_layout(config.accumulator)),
        }
        if pipelined:
            members["en"] = In(1)
        super().__init__(members)

    @property
    def config(self) -> MacConfig:
        """Operand format and accumulator geometry."""
        return self._config

    @property
    def pipelined(self) -> bool:
        """Whether the term is registered (three stages)."""
        return self._pipelined

    @property
    def block_scaled(self) -> bool:
        """Whether the operands carry log offsets."""
        return self._block_scaled

    @property
    def latency(self) -> int:
        """Cycles (enabled clock edges) from operands to their term (0 = combinational)."""
        return self.PIPELINED_LATENCY if self._pipelined else 0

    @property
    def shift_range(self) -> tuple[int, int]:
        """``(lo, hi)``: the clamped range of shifts the shifter implements (see above)."""
        lo, hi, _ = self._shift_bounds()
        return lo, hi

    def _shift_bounds(self) -> tuple[int, int, int]:
        """``(lo, hi, always_overflow)``; every shift ``>= always_overflow`` overflows."""
        config = self._config
        table = mantissa_table(config.fmt.frac_bits, config.mantissa_bits)
        always_zero = -(int(table.max()).bit_length() + 1)
        always_overflow = config.term_bits + 1 - int(table.min()).bit_length()
        # A lowered log sum reaches S' = 0, octave -2**I.
        q_min = -(1 << config.fmt.int_bits) if self._block_scaled else config.q_min
        lo = min(max(config.shift(q_min), always_zero), always_overflow - 1)
        hi = max(min(config.shift(config.q_max), always_overflow - 1), always_zero)
        return lo, hi, always_overflow

    def _decode(self, m: Module, log_sum, nonzero):
        """Stage 2: mantissa lookup and clamped shift index; returns them and ``too_big``.

        ``shift = octave - offset`` where ``octave = S >> F`` (so ``q = octave - 2**I``),
        clamped to ``[lo, hi]`` as ``index = shift - lo``.
        """
        config = self._config
        fmt = config.fmt
        table = [int(v) for v in mantissa_table(fmt.frac_bits, config.mantissa_bits)]
        lo, hi, always_overflow = self._shift_bounds()
        octave = log_sum[fmt.frac_bits :]
        offset = (1 << fmt.int_bits) + config.mantissa_bits - config.acc_frac_bits
        octave_max = (1 << (fmt.int_bits + 1)) - 1
        if octave_max - offset >= always_overflow:
            too_big = octave >= offset + always_overflow
        else:
            too_big = Const(0)
        # A zero or NaN operand looks up mantissa 0, so its term is 0 whatever the shift; so
        # does a term that overflows when overflowing terms are dropped.
        mantissa = Signal(max(table).bit_length())
        live = nonzero if config.saturate else nonzero & ~too_big
        with m.If(live), m.Switch(log_sum[: fmt.frac_bits]):
            for index, value in enumerate(table):
                with m.Case(index):
                    m.d.comb += mantissa.eq(value)
        index = Signal(range(hi - lo + 1))
        relative = octave - (offset + lo)
        if offset + lo > 0:
            relative = Mux(octave < offset + lo, 0, relative)
        if octave_max - offset > hi:
            relative = Mux(octave > offset + hi, hi - lo, relative)
        m.d.comb += index.eq(relative)
        return mantissa, index, too_big

    def _shift(self, m: Module, mantissa, index, too_big, nonzero):
        """Stage 3: shift, round half away from zero, clamp; returns the magnitude, overflow."""
        config = self._config
        lo, hi, _ = self._shift_bounds()
        shifted = (mantissa << index)[: len(mantissa) + hi - lo]
        if lo < 0:
            # Only right shifts (index < -lo) round, and they leave shifted below
            # 2**(len(mantissa) - lo - 1); left shifts leave the low -lo bits zero. So the
            # rounding adder needs only the low len(mantissa) - lo bits: no carry leaves them.
            low = len(mantissa) - lo
            rounded = (shifted[:low] + (1 << (-lo - 1)))[-lo:low]
            magnitude = Cat(rounded, shifted[low:])
        else:
            magnitude = shifted << lo
        top = magnitude[config.term_bits :]
        overflow = too_big | (top.any() if len(top) else Const(0))
        clamped = Signal(config.acc_bits - 1)
        if config.saturate:
            kept = magnitude[: config.term_bits]
            m.d.comb += clamped.eq(Mux(nonzero & overflow, config.acc_max, kept))
        elif len(top):
            m.d.comb += clamped.eq(Mux(overflow, 0, magnitude[: config.term_bits]))
        else:
            m.d.comb += clamped.eq(magnitude)
        return clamped, overflow

    def _log_sum(self, m: Module):
        """Return ``(log_sum, negative, nonzero, nan)`` of the operands (stage 1's logic)."""
        a, b = self.a, self.b
        bits = self._config.fmt.mag_bits + 1
        log_sum = Signal(bits)
        if self._block_scaled:
            lowered = a.log + b.log
            m.d.comb += log_sum.eq(lowered[:bits])
            return log_sum, a.sign ^ b.sign, ~lowered[-1], a.nan | b.nan
        m.d.comb += log_sum.eq(a.mag + b.mag)
        nonzero = ~(a.is_special() | b.is_special())
        return log_sum, a.sign ^ b.sign, nonzero, a.is_nan() | b.is_nan()

    def elaborate(self, platform):
        """Exponent adder, mantissa lookup and shift decode, shifter: three (register) stages."""
        m = Module()
        pipe = StreamPipeline(m, enabled=self._pipelined)
        if self._pipelined:
            m.d.comb += pipe.advance.eq(self.en)

        def stage(*values):
            return pipe.stage(Const(1), *values)[1:]

        log_sum, negative, nonzero, nan = self._log_sum(m)
        log_sum, negative, nonzero, nan = stage(log_sum, negative, nonzero, nan)

        mantissa, index, too_big = self._decode(m, log_sum, nonzero)
        mantissa, index, too_big, negative, nan, nonzero = stage(
            mantissa, index, too_big, negative & nonzero, nan, nonzero
        )

        clamped, overflow = self._shift(m, mantissa, index, too_big, nonzero)
        clamped, negative, nan, overflow = stage(clamped, negative, nan, overflow & nonzero)

        m.d.comb += [
            self.term_sm.magnitude.eq(clamped),
            self.term_sm.negative.eq(negative),
            self.term_sm.nan.eq(nan),
            self.term_sm.overflow.eq(overflow),
            self.term.acc.eq(Mux(negative, -clamped, clamped)),
            self.term.nan.eq(nan),
            self.term.overflow.eq(overflow),
        ]
        return m


class PALMac(Unit):
    """Stream multiply-accumulate unit: dot products of PAL vectors, back to back.

    Each input transfer carries one operand pair. ``first`` clears the accumulator (and its
    flags) before the pair's term is added: it marks the first pair of a dot product. ``last``
    emits the accumulator after the pair's term is added: exactly one output transfer follows
    every ``last`` input, in order. A pair with both bits set is a one-term dot product. After
    reset the accumulator is clear, so the very first dot product needs no ``first``.

    The datapath is :class:`PALProductTerm` then :func:`accumulate`; the result equals
    :func:`palhdl.sim.golden.dot` over the pairs from ``first`` to ``last`` (``acc``, ``nan``,
    ``overflow`` bit for bit).

    Readouts: ``readout="raw"`` outputs the accumulator record only. ``"float32"`` and ``"pal"``
    also pass it through :class:`palhdl.hdl.readout.AccumulatorToFloat32` /
    :class:`~palhdl.hdl.readout.AccumulatorToPAL` (the operand format) and add a field
    ``value`` with the correctly rounded float32 bits / PAL word of
    ``acc * 2**-(acc_frac_bits + scale)``, as :meth:`palhdl.sim.golden.MacResult.to_float32_bits`
    / :meth:`~palhdl.sim.golden.MacResult.to_pal` with ``scale_exp = scale``. The input then
    has a field ``scale`` (``signed(SCALE_BITS)``), sampled on the ``last`` pair. While the
    converter works on a result the record waits in a small FIFO, so the unit keeps full
    throughput.

    Flow control: the accumulator register is also the output register of the raw record; the
    whole pipeline advances when the output is empty or accepted. Back-pressure stalls the
    input; no result is lost or duplicated.

    Parameters
    ----------
    config : MacConfig
        Operand format, mantissa width and accumulator geometry.
    pipelined : bool, optional
        ``False`` (default): combinational product term and accumulator register,
        ``latency == 1``. ``True``: the product term is registered after the exponent adder,
        the mantissa lookup and the shifter (``latency == 4``). A converting readout is
        pipelined alike and adds its own latency (0 or 2).
    readout : str, optional
        One of :data:`READOUTS`: ``"raw"`` (default), ``"float32"`` or ``"pal"``.

    Members
    -------
    i : In(stream.Signature(StructLayout({"a", "b", "first", "last"[, "scale"]})))
        ``a``, ``b``: ``PALLayout(config.fmt)``; ``first``, ``last``: 1 bit each; ``scale``
        (``signed(SCALE_BITS)``) only with a converting readout.
    o : Out(stream.Signature(StructLayout({"acc", "nan", "overflow"[, "value"]})))
        The fields of :func:`accumulator_layout`; ``value`` only with a converting readout:
        ``FloatLayout(23, 8)`` (raw bits = the float32 bit pattern) or
        ``PALLayout(config.fmt)``.

    Raises
    ------
    TypeError
        If ``config`` is not a ``MacConfig`` or ``pipelined`` is not a bool.
    ValueError
        If ``readout`` is not one of :data:`READOUTS`.
    """

    #: Width of the ``scale`` input field, :data:`palhdl.format.SCALE_BITS`.
    SCALE_BITS = SCALE_BITS

    @classmethod
    def check_parameters(cls, *, config: MacConfig, pipelined: bool = False, readout: str = "raw"):
        """Validate the parameters; return ``(config, pipelined, readout)``."""
        return (
            check_mac_config(config),
            check_bool("pipelined", pipelined),
            check_choice("readout", readout, READOUTS),
        )

    def __init__(self, *, config: MacConfig, pipelined: bool = False, readout: str = "raw"):
        self._config, self._pipelined, self._readout = self.check_parameters(
            config=config, pipelined=pipelined, readout=readout
        )
        word = PALLayout(config.fmt)
        inputs = {"a": word, "b": word, "first": unsigned(1), "last": unsigned(1)}
        outputs = dict(accumulator_layout(config.accumulator).members)
        if readout != "raw":
            inputs["scale"] = signed(SCALE_BITS)
            outputs["value"] = FloatLayout(*FLOAT32) if readout == "float32" else word
        super().__init__(
            {
                "i": In(stream.Signature(data.StructLayout(inputs))),
                "o": Out(stream.Signature(data.StructLayout(outputs))),
            }
        )

    @property
    def config(self) -> MacConfig:
        """Operand format and accumulator geometry."""
        return self._config

    @property
    def pipelined(self) -> bool:
        """Whether the product term and the readout are registered."""
        return self._pipelined

    @property
    def readout(self) -> str:
        """One of :data:`READOUTS`."""
        return self._readout

    @property
    def latency(self) -> int:
        """Cycles from the input transfer of a ``last`` pair to its result being valid."""
        term = PALProductTerm.PIPELINED_LATENCY if self._pipelined else 0
        convert = PIPELINED_LATENCY if self._pipelined and self._readout != "raw" else 0
        return term + 1 + convert

    def elaborate(self, platform):
        """Product term, accumulator register, then the readout (if any)."""
        config = self._config
        m = Module()
        pipe = StreamPipeline(m, enabled=self._pipelined)
        payload = self.i.payload
        converting = self._readout != "raw"

        m.submodules.term = term = PALProductTerm(config=config, pipelined=self._pipelined)
        m.d.comb += [term.a.eq(payload.a), term.b.eq(payload.b)]
        if self._pipelined:
            m.d.comb += term.en.eq(pipe.advance)
        control = [payload.first, payload.last] + ([payload.scale] if converting else [])
        valid = self.i.valid
        for _ in range(term.latency):
            valid, *control = pipe.stage(valid, *control)
        first, last, *scale = control

        # The accumulator stage: always a register; it holds the result until it is taken.
        record = accumulator_layout(config.accumulator)
        acc = Signal(record)
        acc_scale = Signal(signed(SCALE_BITS))
        result_valid = Signal()
        result_ready = Signal()
        m.d.comb += [pipe.advance.eq(~result_valid | result_ready), self.i.ready.eq(pipe.advance)]
        total = accumulate(
            m, config.accumulator, record(Mux(first, 0, acc.as_value())), term.term_sm
        )
        with m.If(pipe.advance):
            m.d.sync += result_valid.eq(valid & last)
            with m.If(valid):
                m.d.sync += acc.eq(total)
                if converting:
                    m.d.sync += acc_scale.eq(scale[0])

        if converting:
            self._readout_stage(m, acc, acc_scale, result_valid, result_ready)
        else:
            m.d.comb += [
                self.o.valid.eq(result_valid),
                result_ready.eq(self.o.ready),
                self.o.payload.acc.eq(acc.acc),
                self.o.payload.nan.eq(acc.nan),
                self.o.payload.overflow.eq(acc.overflow),
            ]
        return m

    def _readout_stage(self, m: Module, acc, acc_scale, result_valid, result_ready) -> None:
        """Convert the accumulator ``acc`` (valid on ``result_valid``) onto ``o``.

        The record travels beside the converter in a FIFO as deep as the converter's latency.
        """
        config = self._config
        kind = AccumulatorToFloat32 if self._readout == "float32" else AccumulatorToPAL
        m.submodules.convert = convert = kind(config=config, pipelined=self._pipelined)
        m.d.comb += [
            convert.i.payload.acc.eq(acc.acc),
            convert.i.payload.scale.eq(acc_scale),
            convert.i.payload.nan.eq(acc.nan),
            self.o.payload.value.eq(convert.o.payload),
        ]
        if convert.latency == 0:
            record = acc
            m.d.comb += [
                convert.i.valid.eq(result_valid),
                result_ready.eq(convert.i.ready),
                self.o.valid.eq(convert.o.valid),
                convert.o.ready.eq(self.o.ready),
            ]
        else:
            layout = accumulator_layout(config.accumulator)
            m.submodules.records = fifo = SyncFIFO(width=layout.size, depth=convert.latency + 1)
            record = layout(fifo.r_data)
            m.d.comb += [
                convert.i.valid.eq(result_valid & fifo.w_rdy),
                result_ready.eq(convert.i.ready & fifo.w_rdy),
                fifo.w_data.eq(acc),
                fifo.w_en.eq(result_valid & convert.i.ready),
                self.o.valid.eq(convert.o.valid & fifo.r_rdy),
                convert.o.ready.eq(self.o.ready & fifo.r_rdy),
                fifo.r_en.eq(convert.o.valid & self.o.ready),
            ]
        m.d.comb += [
            self.o.payload.acc.eq(record.acc),
            self.o.payload.nan.eq(record.nan),
            self.o.payload.overflow.eq(record.overflow),
        ]
