"""The block-RAM processing element: a PAL product term read from a table, a restart-on-last MAC.

A PAL product's term depends on one number only, the sum ``S = Ea + Eb`` of the operands'
magnitude fields (plus the two signs), so the whole product term of
:class:`~palhdl.hdl.mac.PALProductTerm` (mantissa table, shifter, rounding, range checks) is one
lookup in a table of ``2**(mag_bits + 1)`` entries: 256 for pal8, one iCE40 ``SB_RAM40_4K``
(256 x 16) or half an ECP5 ``DP16KD``. :class:`PALTableProductTerm` is that lookup; its contents
are :func:`palhdl.sim.golden.term_table`. :class:`PALTableMac` is the stream MAC built on it, with
the accumulator restarted by a synchronous reset after each ``last`` pair instead of a ``first``
multiplexer; the systolic array's PEs (:class:`~palhdl.hdl.providers.PALArithmetic` with
``term="table"``) use the same two pieces.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from palhdl.format import MacConfig
from palhdl.hdl.accumulator import SegmentedAccumulator
from palhdl.hdl.layout import PALLayout
from palhdl.hdl.mac import accumulator_layout, term_layout
from palhdl.hdl.restart import RestartMac
from palhdl.hdl.rom import IMPLEMENTATIONS, TableROM
from palhdl.hdl.unit import Unit
from palhdl.sim.golden import check_mac_config, term_table
from palhdl.validate import check_bool, check_choice, check_int

__all__ = ["MAX_TABLE_ENTRIES", "PALTableMac", "PALTableProductTerm", "table_entries"]

#: Largest table :class:`PALTableProductTerm` builds (pal8's signed table has 512 entries).
MAX_TABLE_ENTRIES = 4096


def table_entries(config: MacConfig, *, signed: bool = False) -> int:
    """Return the number of entries of the product-term table of ``config``."""
    return 1 << (config.fmt.mag_bits + 1 + int(signed))


class PALTableProductTerm(Unit):
    """The accumulator term of the product of two PAL words, read from a block-RAM table.

    The read address is ``S = Ea + Eb`` (with the product's sign above it when ``signed``); an
    address whose operands include a zero or NaN word is forced to all ones, an entry that
    holds a zero term. The entries are :func:`palhdl.sim.golden.term_table`, so the term,
    ``nan`` and ``overflow`` equal :func:`palhdl.sim.golden.mac_terms` bit for bit, as
    :class:`~palhdl.hdl.mac.PALProductTerm` computes them in logic.

    Parameters
    ----------
    config : MacConfig
        Operand format and accumulator window; the table has ``2**(mag_bits + 1)`` entries
        (twice that when ``signed``), at most :data:`MAX_TABLE_ENTRIES`.
    signed : bool
        ``False`` (default): the table holds magnitudes and the output is ``term_sm``
        (sign-magnitude; an accumulator adds it with the sign as carry-in). ``True``: the table
        holds signed terms (twice the entries, no sign logic after it) and the output is
        ``term``.
    registered : bool
        ``True`` (default): the table's output is registered (``latency == 2``), so a fast
        accumulator sees no block-RAM access time. ``False``: ``latency == 1``.
    ports : int
        Independent lookups sharing one table, 1..4 (default 1). Two PEs share one dual-ported
        ECP5 ``DP16KD``; where the block RAM has a single read port (iCE40), synthesis
        duplicates the table per port.
    implementation : {"auto", "inferred", "ecp5"}
        How the table is built, passed to :class:`~palhdl.hdl.rom.TableROM` (default
        ``"auto"``: ``DP16KD`` blocks on an ECP5 platform, an inferred memory elsewhere).

    Members
    -------
    a, b : In(PALLayout(config.fmt))
        The operands, sampled when ``en`` is high. With ``ports > 1`` every member but ``en``
        is an ``ArrayLayout`` of ``ports`` of these, one per lookup.
    en : In(1)
        Advance: the table read and every register load only when it is high.
    term_sm : Out(term_layout(config.accumulator))
        Present unless ``signed``: magnitude, sign, ``nan``, ``overflow``.
    term : Out(accumulator_layout(config.accumulator))
        Present when ``signed``: the signed term, ``nan``, ``overflow``.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or the table would exceed :data:`MAX_TABLE_ENTRIES`.
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        config: MacConfig,
        signed: bool = False,
        registered: bool = True,
        ports: int = 1,
        implementation: str = "auto",
    ):
        """Validate; return ``(config, signed, registered, ports, implementation)``."""
        config = check_mac_config(config)
        signed = check_bool("signed", signed)
        entries = table_entries(config, signed=signed)
        if entries > MAX_TABLE_ENTRIES:
            raise ValueError(
                f"config: a {config.fmt} product-term table would have {entries} entries, more "
                f"than {MAX_TABLE_ENTRIES}; use the logic product term (term='logic')"
            )
        return (
            config,
            signed,
            check_bool("registered", registered),
            check_int("ports", ports, 1, 4),
            check_choice("implementation", implementation, IMPLEMENTATIONS),
        )

    def __init__(
        self,
        *,
        config: MacConfig,
        signed: bool = False,
        registered: bool = True,
        ports: int = 1,
        implementation: str = "auto",
    ):
        parameters = self.check_parameters(
            config=config,
            signed=signed,
            registered=registered,
            ports=ports,
            implementation=implementation,
        )
        self._config, self._signed, self._registered, self._ports = parameters[:4]
        self._implementation = parameters[4]
        word = PALLayout(config.fmt)
        term = accumulator_layout(config.accumulator) if signed else term_layout(config.accumulator)
        if ports > 1:
            word, term = data.ArrayLayout(word, ports), data.ArrayLayout(term, ports)
        members = {"a": In(word), "b": In(word), "en": In(1, init=1)}
        members["term" if signed else "term_sm"] = Out(term)
        super().__init__(members)

    @property
    def ports(self) -> int:
        """Independent lookups sharing the table."""
        return self._ports

    @property
    def config(self) -> MacConfig:
        """Operand format and accumulator window."""
        return self._config

    @property
    def signed(self) -> bool:
        """Whether the table holds signed terms."""
        return self._signed

    @property
    def registered(self) -> bool:
        """Whether the table's output is registered."""
        return self._registered

    @property
    def latency(self) -> int:
        """Enabled clock edges from the operands to their term: 2 registered, else 1."""
        return 2 if self._registered else 1

    @property
    def entries(self) -> int:
        """Entries of the table."""
        return table_entries(self._config, signed=self._signed)

    @property
    def value_shape(self):
        """Shape of a table entry's term: unsigned magnitude, or signed term when ``signed``."""
        config = self._config
        if config.saturate:
            # An overflowing term is clamped to +-acc_max.
            return signed(config.acc_bits) if self._signed else config.acc_bits - 1
        return signed(config.term_bits + 1) if self._signed else config.term_bits

    def table_words(self) -> list[int]:
        """Return the table's contents: ``term | overflow << len(term)`` per entry."""
        term, overflow = term_table(self._config, signed=self._signed)
        shape = data.StructLayout({"value": self.value_shape, "overflow": 1})
        return [
            shape.const({"value": int(t), "overflow": bool(o)}).as_value().value
            for t, o in zip(term, overflow, strict=True)
        ]

    def elaborate(self, platform):
        """One :class:`~palhdl.hdl.rom.TableROM`; per port an address adder and the flags."""
        m = Module()
        entry = data.StructLayout({"value": self.value_shape, "overflow": 1})
        m.submodules.table = table = TableROM(
            width=entry.size,
            init=self.table_words(),
            ports=self._ports,
            registered=self._registered,
            implementation=self._implementation,
        )
        m.d.comb += table.en.eq(self.en)
        output = self.term if self._signed else self.term_sm
        if self._ports == 1:
            self._lookup(m, table, 0, self.a, self.b, output)
        else:
            for port in range(self._ports):
                self._lookup(m, table, port, self.a[port], self.b[port], output[port])
        return m

    def _lookup(self, m: Module, table: TableROM, port: int, a, b, output) -> None:
        """Address port ``port`` of ``table`` with ``a * b``; drive ``output`` from its word.

        The flags travel beside the table in registers as deep as its latency.
        """
        bits = self._config.fmt.mag_bits + 1
        special = a.is_special() | b.is_special()
        address = (a.mag + b.mag)[:bits] | special.replicate(bits)
        negative = a.sign ^ b.sign
        if self._signed:
            address = Cat(address, negative)
        m.d.comb += table.addr[port].eq(address)
        flags = [a.is_nan() | b.is_nan(), negative & ~special]
        for stage in range(table.latency):
            registers = [Signal(name=f"{name}{port}_d{stage + 1}") for name in ("nan", "negative")]
            with m.If(self.en):
                m.d.sync += [r.eq(v) for r, v in zip(registers, flags, strict=True)]
            flags = registers
        nan, negative = flags
        word = data.StructLayout({"value": self.value_shape, "overflow": 1})(table.data[port])
        if self._signed:
            m.d.comb += [
                output.acc.eq(word.value),
                output.nan.eq(nan),
                output.overflow.eq(word.overflow),
            ]
        else:
            m.d.comb += [
                output.magnitude.eq(word.value),
                output.negative.eq(negative),
                output.nan.eq(nan),
                output.overflow.eq(word.overflow),
            ]


class PALTableMac(RestartMac):
    """Stream multiply-accumulate unit on the block-RAM product term, restarted by ``last``.

    Each input transfer carries one operand pair; ``last`` marks the final pair of a dot
    product. The accumulator (:class:`~palhdl.hdl.accumulator.SegmentedAccumulator`) adds every
    pair's term; on a ``last`` pair the sum goes to the result register (one output transfer
    per ``last``, in order) and the accumulator is cleared by a synchronous reset, so the next
    pair starts a new dot product. After reset the accumulator is clear. The result equals
    :func:`palhdl.sim.golden.dot` over the pairs of each dot product (``acc``, ``nan``,
    ``overflow`` bit for bit), exactly as :class:`~palhdl.hdl.mac.PALMac` (which starts dot
    products with ``first`` instead).

    Flow control: the whole pipeline advances when the result register is empty or taken;
    back-pressure stalls the input, nothing is lost or duplicated.

    Parameters
    ----------
    config : MacConfig
        Operand format and accumulator window (table size as :class:`PALTableProductTerm`).
    signed : bool
        Signed table entries (no sign logic; twice the table), default ``False``.
    registered : bool
        Register the table's output, default ``True``.
    implementation : {"auto", "inferred", "ecp5"}
        How the table is built, as :class:`PALTableProductTerm` (default ``"auto"``).
    segments : int
        Carry-pipelined accumulator segments (default 1; more need a wrapping accumulator).

    Members
    -------
    i : In(stream.Signature(StructLayout({"a", "b", "last"})))
        ``a``, ``b``: ``PALLayout(config.fmt)``; ``last``: 1 bit.
    o : Out(stream.Signature(accumulator_layout(config.accumulator)))
        The dot product's accumulator record.

    Raises
    ------
    TypeError, ValueError
        As :class:`PALTableProductTerm` and :class:`~palhdl.hdl.accumulator.SegmentedAccumulator`.
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        config: MacConfig,
        signed: bool = False,
        registered: bool = True,
        segments: int = 1,
        implementation: str = "auto",
    ):
        """Validate; return ``(config, signed, registered, segments, implementation)``."""
        config, signed, registered, _, implementation = PALTableProductTerm.check_parameters(
            config=config, signed=signed, registered=registered, implementation=implementation
        )
        _, segments, _ = SegmentedAccumulator.check_parameters(
            config=config.accumulator, segments=segments
        )
        return config, signed, registered, segments, implementation

    def __init__(
        self,
        *,
        config: MacConfig,
        signed: bool = False,
        registered: bool = True,
        segments: int = 1,
        implementation: str = "auto",
    ):
        parameters = self.check_parameters(
            config=config,
            signed=signed,
            registered=registered,
            segments=segments,
            implementation=implementation,
        )
        self._config, self._signed, self._registered, self._segments = parameters[:4]
        self._implementation = parameters[4]
        self._window = config.accumulator
        super().__init__(PALLayout(config.fmt), accumulator_layout(config.accumulator))

    @property
    def config(self) -> MacConfig:
        """Operand format and accumulator window."""
        return self._config

    @property
    def term_latency(self) -> int:
        """Latency of the table term: 2 registered, else 1."""
        return 2 if self._registered else 1

    def product_term(self, m: Module):
        """Add a :class:`PALTableProductTerm`; return it and its term."""
        m.submodules.term = unit = PALTableProductTerm(
            config=self._config,
            signed=self._signed,
            registered=self._registered,
            implementation=self._implementation,
        )
        return unit, unit.term if self._signed else unit.term_sm
