r"""Log-domain arithmetic units: multiplier/divider and adder/subtractor.

Both units are bit-exact with :mod:`palhdl.sim.golden` (``mul``, ``div``, ``add``, ``sub``) for
every :class:`~palhdl.format.PALFormat` they accept. They are stream-to-stream
``wiring.Component``\\ s: the input stream ``i`` carries both operands and an operation select
bit, the output stream ``o`` carries one :class:`~palhdl.hdl.layout.PALLayout` word per input, in
order. With ``pipelined=True`` register stages (one shared stall, see
:class:`~palhdl.hdl.pipeline.StreamPipeline`) shorten the critical path; ``latency`` gives the
cycles from an input transfer to the matching output becoming valid.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from palhdl.format import PALFormat
from palhdl.hdl.layout import PALLayout, pack_word
from palhdl.hdl.pipeline import StreamPipeline
from palhdl.hdl.unit import Unit
from palhdl.tables import db_table, sb_table
from palhdl.validate import check_bool, check_instance

__all__ = ["PALAdder", "PALMultiplier"]


class PALMultiplier(Unit):
    """Multiplier/divider of two PAL words: one unit, the operation chosen per transfer.

    The input payload is ``StructLayout({"a": PALLayout(fmt), "b": PALLayout(fmt), "op": 1})``
    (``a`` in the low bits); ``op == OP_MUL`` (0) computes ``a * b``, ``op == OP_DIV`` (1)
    computes ``a / b``. The output payload is ``PALLayout(fmt)``. A single adder forms the
    biased log ``Ea + Eb - bias`` (multiply) or ``Ea - Eb + bias`` (divide).

    Rounding: none is needed; the log sum/difference is exact. Results above ``+-max`` saturate
    to ``+-max`` (sign kept); results below the smallest magnitude flush to ``+0``.

    Specials (as :func:`palhdl.sim.golden.mul` / :func:`~palhdl.sim.golden.div`): the sign is
    ``sa XOR sb``; NaN in either operand gives NaN; ``0 * x = x * 0 = +0`` (``x`` not NaN);
    ``x / 0 = NaN`` (also ``0 / 0``); ``0 / x = +0``.

    No lookup tables.

    Parameters
    ----------
    fmt : PALFormat
        Word format of operands and result.
    pipelined : bool, optional
        ``False`` (default): combinational, ``latency == 0``. ``True``: one register stage
        after the log adder, ``latency == 1``.

    Members
    -------
    i : In(stream.Signature(StructLayout({"a", "b", "op"})))
    o : Out(stream.Signature(PALLayout(fmt)))

    Raises
    ------
    TypeError
        If ``fmt`` is not a ``PALFormat`` or ``pipelined`` is not a bool.
    """

    OP_MUL = 0
    OP_DIV = 1

    @classmethod
    def check_parameters(cls, *, fmt: PALFormat, pipelined: bool = False):
        """Validate the parameters; return ``(fmt, pipelined)``."""
        check_instance("fmt", fmt, PALFormat, "palhdl.format.pal8")
        return fmt, check_bool("pipelined", pipelined)

    def __init__(self, *, fmt: PALFormat, pipelined: bool = False):
        self._fmt, self._pipelined = self.check_parameters(fmt=fmt, pipelined=pipelined)
        word = PALLayout(fmt)
        operands = data.StructLayout({"a": word, "b": word, "op": unsigned(1)})
        super().__init__({"i": In(stream.Signature(operands)), "o": Out(stream.Signature(word))})

    @property
    def fmt(self) -> PALFormat:
        """The word format."""
        return self._fmt

    @property
    def pipelined(self) -> bool:
        """Whether the unit is registered."""
        return self._pipelined

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output being valid (0 = combinational)."""
        return 1 if self._pipelined else 0

    def elaborate(self, platform):
        """Build the unit."""
        fmt = self._fmt
        m = Module()
        pipe = StreamPipeline(m, enabled=self._pipelined)
        a, b, op = self.i.payload.a, self.i.payload.b, self.i.payload.op

        # mul: Ea + Eb - bias.  div: Ea - Eb + bias = Ea + ~Eb + 1 - bias, with
        # ~Eb = mag_mask - Eb and mag_mask = 2 * bias - 1; so one adder serves both.
        b_term = b.mag ^ op.replicate(fmt.mag_bits)
        log = Signal(signed(fmt.mag_bits + 2))
        m.d.comb += log.eq(a.mag + b_term + op - fmt.bias)
        negative = a.sign ^ b.sign
        nan = a.is_nan() | b.is_nan() | (op & b.is_zero())
        zero = a.is_zero() | b.is_zero()  # x / 0 is NaN, which takes precedence

        valid, log, negative, nan, zero = pipe.stage(self.i.valid, log, negative, nan, zero)
        pack_word(m, self.o.payload, log=log, negative=negative, nan=nan, zero=zero, fmt=fmt)
        pipe.connect(self.i, self.o, valid)
        return m


class PALAdder(Unit):
    """Adder/subtractor of two PAL words by Gaussian logarithms.

    The input payload is ``StructLayout({"a": PALLayout(fmt), "b": PALLayout(fmt), "sub": 1})``
    (``a`` in the low bits); ``sub == 0`` computes ``a + b``, ``sub == 1`` computes ``a - b``
    (``b``'s sign flipped unless ``b`` is zero or NaN). The output payload is ``PALLayout(fmt)``.

    With ``d = |La - Lb|`` the result log is ``max(La, Lb) + sb[d]`` for equal signs and
    ``max(La, Lb) + db[d]`` for opposite signs, with the sign of the larger magnitude (``a``'s on
    a tie). ``sb`` and ``db`` are :func:`palhdl.tables.sb_table` and
    :func:`~palhdl.tables.db_table`, held as constant ROMs (read-only ``Memory`` with an
    asynchronous read port), zero-padded to a power of two; nonzero high bits of ``d`` select 0,
    so every ``d >= len(table)`` contributes 0.

    Rounding: correctly rounded (round to nearest in the log domain) for every format, because
    the table entries are the correctly rounded offsets and the rest is exact integer
    arithmetic. Results above ``+-max`` saturate to ``+-max``; results below the smallest
    magnitude flush to ``+0``.

    Specials (as :func:`palhdl.sim.golden.add` / :func:`~palhdl.sim.golden.sub`): NaN in either
    operand gives NaN; ``x + 0 = 0 + x = x``; exact cancellation (``d == 0``, opposite signs)
    gives ``+0``.

    Table sizes: ``len(sb_table(F))`` and ``len(db_table(F))`` entries, about
    ``(F + 1.53) * 2**F`` each (beyond that the offset rounds to 0). ``sb`` entries lie in
    ``[1, 2**F]``; ``db`` entries are ``<= 0``, most negative at ``d = 1``, about
    ``-(F + 0.53) * 2**F``. For example pal8 (F = 3): 36 and 37 entries, ``db[1] = -29``; the
    odd format I = 5, F = 6: 482 and 483, ``db[1] = -418``; pal16 (F = 7): 1092 each,
    ``db[1] = -964``. Each ROM is as wide as its entries need (signed) and has
    ``2**ceil(log2(len))`` words (pal8: 64; I = 5, F = 6: 512; pal16: 2048).

    Parameters
    ----------
    fmt : PALFormat
        Word format of operands and result; ``frac_bits`` must be at most
        :data:`palhdl.format.MAX_TABLE_FRAC_BITS`.
    pipelined : bool, optional
        ``False`` (default): combinational, ``latency == 0``. ``True``: a register stage after
        the compare/difference and one after the table lookup, ``latency == 2``.

    Members
    -------
    i : In(stream.Signature(StructLayout({"a", "b", "sub"})))
    o : Out(stream.Signature(PALLayout(fmt)))

    Raises
    ------
    TypeError
        If ``fmt`` is not a ``PALFormat`` or ``pipelined`` is not a bool.
    ValueError
        If ``fmt.frac_bits`` is too large for the tables.
    """

    @classmethod
    def check_parameters(cls, *, fmt: PALFormat, pipelined: bool = False):
        """Validate the parameters; return ``(fmt, pipelined)``."""
        check_instance("fmt", fmt, PALFormat, "palhdl.format.pal8")
        fmt.require_tables("PALAdder")
        return fmt, check_bool("pipelined", pipelined)

    def __init__(self, *, fmt: PALFormat, pipelined: bool = False):
        self._fmt, self._pipelined = self.check_parameters(fmt=fmt, pipelined=pipelined)
        word = PALLayout(fmt)
        operands = data.StructLayout({"a": word, "b": word, "sub": unsigned(1)})
        super().__init__({"i": In(stream.Signature(operands)), "o": Out(stream.Signature(word))})

    @property
    def fmt(self) -> PALFormat:
        """The word format."""
        return self._fmt

    @property
    def pipelined(self) -> bool:
        """Whether the unit is registered."""
        return self._pipelined

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output being valid (0 = combinational)."""
        return 2 if self._pipelined else 0

    @staticmethod
    def _rom(m: Module, table, distance, name: str):
        """``table[distance]`` for ``distance < len(table)``, else 0.

        The table, padded with zeros to ``2**k >= len(table)`` entries, is a read-only
        ``Memory`` with an asynchronous read port (a constant ROM; Yosys maps it to LUTs, smaller
        than the equivalent ``Switch``), addressed by the low ``k`` bits of ``distance``; the
        high bits being nonzero selects 0.
        """
        entries = [int(v) for v in table]
        index_bits = (len(entries) - 1).bit_length()
        shape = signed(max(v.bit_length() for v in entries) + 1)
        rom = m.submodules[f"{name}_rom"] = Memory(shape=shape, depth=1 << index_bits, init=entries)
        port = rom.read_port(domain="comb")
        m.d.comb += port.addr.eq(distance)
        result = Signal(shape, name=name)
        m.d.comb += result.eq(Mux(distance < (1 << index_bits), port.data, 0))
        return result

    def elaborate(self, platform):
        """Build the unit."""
        fmt = self._fmt
        m = Module()
        pipe = StreamPipeline(m, enabled=self._pipelined)
        a, b, sub = self.i.payload.a, self.i.payload.b, self.i.payload.sub

        # Stage 1: compare magnitudes, distance, sign of the result.
        # Flipping a zero or NaN b is harmless: its sign never reaches the result.
        b_negative = b.sign ^ sub
        difference = Signal(signed(fmt.mag_bits + 1))
        m.d.comb += difference.eq(a.mag - b.mag)
        a_bigger = difference >= 0
        distance = Signal(unsigned(fmt.mag_bits))
        m.d.comb += distance.eq(Mux(a_bigger, difference, -difference))
        big = Mux(a_bigger, a.mag, b.mag)
        negative = Mux(a_bigger, a.sign, b_negative)
        same_sign = a.sign == b_negative
        nan = a.is_nan() | b.is_nan()
        # A zero operand passes the other through: no table offset.
        passthrough = a.is_special() | b.is_special()
        valid, distance, big, negative, same_sign, nan, passthrough = pipe.stage(
            self.i.valid, distance, big, negative, same_sign, nan, passthrough
        )

        # Stage 2: table lookup.
        sb = self._rom(m, sb_table(fmt.frac_bits), distance, "sb")
        db = self._rom(m, db_table(fmt.frac_bits), distance, "db")
        offset = Mux(passthrough, 0, Mux(same_sign, sb, db))
        cancel = ~same_sign & (distance == 0)
        valid, big, offset, negative, nan, cancel = pipe.stage(
            valid, big, offset, negative, nan, cancel
        )

        # Output: add the offset, saturate or flush.
        log = Signal(signed(max(fmt.mag_bits + 1, len(offset)) + 1))
        m.d.comb += log.eq(big + offset)
        pack_word(m, self.o.payload, log=log, negative=negative, nan=nan, zero=cancel, fmt=fmt)
        pipe.connect(self.i, self.o, valid)
        return m
