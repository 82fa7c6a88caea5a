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

Two options serve block scaling and a run-time split (``docs/systolic.md``): ``block_scaled``
operands carry a log offset each (:func:`~palhdl.hdl.layout.block_operand_layout`) that lowers
the table address, and a ``loadable`` table is a RAM initialised with the configuration's words
(:func:`term_table_words`) and rewritable one entry per clock: loaded with the words of
``config.retarget(fmt)``, the same hardware computes that configuration.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Shape, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from palhdl.format import MacConfig
from palhdl.hdl.accumulator import SegmentedAccumulator
from palhdl.hdl.layout import PALLayout, block_operand_layout, lower_operand, lowered_operand_layout
from palhdl.hdl.mac import accumulator_layout, term_layout
from palhdl.hdl.restart import RestartMac
from palhdl.hdl.rom import TableROM, check_implementation
from palhdl.hdl.unit import Unit
from palhdl.sim.golden import check_mac_config, term_table
from palhdl.validate import check_bool, check_int

__all__ = [
    "MAX_TABLE_ENTRIES",
    "PALTableMac",
    "PALTableProductTerm",
    "table_entries",
    "table_load_layout",
    "term_entry_layout",
    "term_table_words",
]

#: Largest table :class:`PALTableProductTerm` builds (pal8's signed table has 512 entries).
MAX_TABLE_ENTRIES = 4096


def table_entries(config: MacConfig, *, signed: bool = False) -> int:
    """Return the number of entries of the product-term table of ``config``."""
    return 1 << (config.fmt.mag_bits + 1 + int(signed))


def term_entry_layout(config: MacConfig, *, signed: bool = False) -> data.StructLayout:
    """Return the layout of one product-term table entry: ``value`` (low bits), ``overflow``.

    ``value`` is the term's magnitude (``unsigned``), or the signed term when ``signed``. It is
    as wide as a term can be: ``term_bits`` bits of magnitude, or ``acc_bits - 1`` when a
    saturating window clamps an overflowing term to ``acc_max``.
    """
    config = check_mac_config(config)
    signed = check_bool("signed", signed)
    bits = config.acc_bits - 1 if config.saturate else config.term_bits
    value = Shape(bits + int(signed), signed=signed)
    return data.StructLayout({"value": value, "overflow": 1})


def term_table_words(config: MacConfig, *, signed: bool = False) -> list[int]:
    """Return the product-term table of ``config`` as entry words (:func:`term_entry_layout`).

    Entry ``S`` (plus ``2**(mag_bits + 1)`` for a negative product when ``signed``) is
    ``value | overflow << len(value)``, ``value`` in two's complement, from
    :func:`palhdl.sim.golden.term_table`. This is what a :class:`PALTableProductTerm` of
    ``config`` holds, and what a host writes into a loadable table to make it compute
    ``config`` (for a table built for another configuration of the same geometry, typically
    ``built.retarget(config.fmt)``).
    """
    layout = term_entry_layout(config, signed=signed)
    width = layout["value"].width
    term, overflow = term_table(config, signed=signed)
    mask = (1 << width) - 1
    return [(int(t) & mask) | int(o) << width for t, o in zip(term, overflow, strict=True)]


def table_load_layout(config: MacConfig, *, signed: bool = False) -> data.StructLayout:
    """Return the payload of one write into a loadable table: ``addr``, ``data``.

    ``addr``: ``unsigned(log2(table_entries(config, signed=signed)))``, the entry;
    ``data``: ``unsigned(term_entry_layout(config, signed=signed).size)``, its word
    (:func:`term_table_words`).
    """
    entry = term_entry_layout(config, signed=signed)
    bits = (table_entries(config, signed=signed) - 1).bit_length()
    return data.StructLayout({"addr": unsigned(bits), "data": unsigned(entry.size)})


class PALTableProductTerm(Unit):
    """The accumulator term of the product of two PAL words, read from a block-RAM table.

    The read address is ``S = Ea + Eb`` (with the product's sign above it when ``signed``); an
    address whose operands include a zero or NaN word is forced to all ones, an entry that
    holds a zero term. The entries are :func:`term_table_words`, so the term, ``nan`` and
    ``overflow`` equal :func:`palhdl.sim.golden.mac_terms` bit for bit, as
    :class:`~palhdl.hdl.mac.PALProductTerm` computes them in logic.

    Block-scaled operands (``block_scaled``) come with their offsets applied
    (:func:`~palhdl.hdl.layout.lower_operand`, ``log = E - offset``): the address is the sum
    of the two ``log`` s, ``S' = Ea + Eb - offset_a - offset_b``, forced to all ones (a zero
    term, no overflow; a NaN operand still sets ``nan``) when it is negative, as it is for any
    zero or NaN operand. That is ``golden.mac_terms(a, b, config, offset=offset_a +
    offset_b)``. The address adder is two bits wider; nothing else changes.

    A ``loadable`` table is a RAM that starts with the words of ``config`` and takes one
    write per clock edge on ``w_en``, ``w_addr``, ``w_data``: loaded with
    ``term_table_words(other)`` for a configuration ``other`` of the same geometry
    (``config.retarget(fmt)``), the unit computes ``mac_terms(a, b, other)``. A lookup whose
    operands are sampled on the clock edge of a write returns an unspecified term (with
    ``ports > 1``, whatever entry it looks up); every later lookup sees the write.

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
    block_scaled : bool
        Operands are :func:`~palhdl.hdl.layout.lowered_operand_layout` records (default
        ``False``: PAL words).
    loadable : bool
        The table is a RAM with a write port (default ``False``: a ROM).
    implementation : {"auto", "inferred", "ecp5"}
        How the table is built, passed to :class:`~palhdl.hdl.rom.TableROM` (default
        ``"auto"``: ``DP16KD`` blocks on an ECP5 platform, an inferred memory elsewhere or when
        ``loadable``).

    Members
    -------
    a, b : In(PALLayout(config.fmt)) or In(lowered_operand_layout(config.fmt))
        The operands, sampled when ``en`` is high. With ``ports > 1`` ``a``, ``b`` and the
        output are ``ArrayLayout`` s of ``ports`` of these, one per lookup.
    en : In(1)
        Advance: the table read and every register load only when it is high.
    term_sm : Out(term_layout(config.accumulator))
        Present unless ``signed``: magnitude, sign, ``nan``, ``overflow``.
    term : Out(accumulator_layout(config.accumulator))
        Present when ``signed``: the signed term, ``nan``, ``overflow``.
    w_en, w_addr, w_data : In(1), In(unsigned), In(unsigned)
        Present when ``loadable``: write entry word ``w_data`` (:func:`term_entry_layout`) at
        entry ``w_addr`` (:func:`table_load_layout`) on this clock edge, whatever ``en`` is.

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
        block_scaled: bool = False,
        loadable: bool = False,
        implementation: str = "auto",
    ):
        """Validate; return the parameters as a tuple in this order."""
        config = check_mac_config(config)
        signed = check_bool("signed", signed)
        entries = table_entries(config, signed=signed)
        if entries > MAX_TABLE_ENTRIES:
            raise ValueError(
                f"config: a {config.fmt} product-term table would have {entries} entries, more "
                f"than {MAX_TABLE_ENTRIES}; use the logic product term (term='logic')"
            )
        loadable = check_bool("loadable", loadable)
        return (
            config,
            signed,
            check_bool("registered", registered),
            check_int("ports", ports, 1, 4),
            check_bool("block_scaled", block_scaled),
            loadable,
            check_implementation(implementation, loadable=loadable),
        )

    def __init__(
        self,
        *,
        config: MacConfig,
        signed: bool = False,
        registered: bool = True,
        ports: int = 1,
        block_scaled: bool = False,
        loadable: bool = False,
        implementation: str = "auto",
    ):
        parameters = self.check_parameters(
            config=config,
            signed=signed,
            registered=registered,
            ports=ports,
            block_scaled=block_scaled,
            loadable=loadable,
            implementation=implementation,
        )
        self._config, self._signed, self._registered, self._ports = parameters[:4]
        self._block_scaled, self._loadable, self._implementation = parameters[4:]
        word = lowered_operand_layout(config.fmt) if block_scaled else PALLayout(config.fmt)
        term = accumulator_layout(config.accumulator) if signed else term_layout(config.accumulator)
        if ports > 1:
            word, term = data.ArrayLayout(word, ports), data.ArrayLayout(term, ports)
        members = {"a": In(word), "b": In(word), "en": In(1, init=1)}
        members["term" if signed else "term_sm"] = Out(term)
        if loadable:
            load = table_load_layout(config, signed=signed)
            members |= {
                "w_en": In(1),
                "w_addr": In(load["addr"].shape),
                "w_data": In(load["data"].shape),
            }
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
    def block_scaled(self) -> bool:
        """Whether the operands carry log offsets."""
        return self._block_scaled

    @property
    def loadable(self) -> bool:
        """Whether the table has a write port."""
        return self._loadable

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
        return term_entry_layout(self._config, signed=self._signed)["value"].shape

    def table_words(self) -> list[int]:
        """Return the table's initial contents, :func:`term_table_words` of ``config``."""
        return term_table_words(self._config, signed=self._signed)

    def elaborate(self, platform):
        """One :class:`~palhdl.hdl.rom.TableROM`; per port an address adder and the flags."""
        m = Module()
        entry = term_entry_layout(self._config, signed=self._signed)
        m.submodules.table = table = TableROM(
            width=entry.size,
            init=self.table_words(),
            ports=self._ports,
            registered=self._registered,
            loadable=self._loadable,
            implementation=self._implementation,
        )
        m.d.comb += table.en.eq(self.en)
        if self._loadable:
            m.d.comb += [
                table.w_en.eq(self.w_en),
                table.w_addr.eq(self.w_addr),
                table.w_data.eq(self.w_data),
            ]
        output = self.term if self._signed else self.term_sm
        if self._ports == 1:
            self._lookup(m, table, 0, self.a, self.b, output)
        else:
            for port in range(self._ports):
                self._lookup(m, table, port, self.a[port], self.b[port], output[port])
        return m

    def _address(self, a, b):
        """Return ``(address, negative, nan)``: the table address without the sign, the flags.

        The address is all ones for a zero or NaN operand and, block-scaled, for a negative
        lowered log sum; ``negative`` (the product's sign) is then clear.
        """
        bits = self._config.fmt.mag_bits + 1
        if self._block_scaled:
            lowered = a.log + b.log
            zero_term, nan, log_sum = lowered[-1], a.nan | b.nan, lowered[:bits]
        else:
            zero_term, nan = a.is_special() | b.is_special(), a.is_nan() | b.is_nan()
            log_sum = (a.mag + b.mag)[:bits]
        negative = (a.sign ^ b.sign) & ~zero_term
        return log_sum | zero_term.replicate(bits), negative, nan

    def _lookup(self, m: Module, table: TableROM, port: int, a, b, output) -> None:
        """Address port ``port`` of ``table`` with ``a * b``; drive ``output`` from its word.

        The flags travel beside the table in registers as deep as its latency.
        """
        address, negative, nan = self._address(a, b)
        if self._signed:
            address = Cat(address, a.sign ^ b.sign)
        m.d.comb += table.addr[port].eq(address)
        flags = [nan, negative]
        for stage in range(table.latency):
            registers = [Signal(name=f"{name}{port}_d{stage + 1}") for name in ("nan", "negative")]
            with m.If(self.en):
                m.d.sync += [r.eq(v) for r, v in zip(registers, flags, strict=True)]
            flags = registers
        nan, negative = flags
        word = term_entry_layout(self._config, signed=self._signed)(table.data[port])
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
    block_scaled : bool
        Operands are :func:`~palhdl.hdl.layout.block_operand_layout` records, lowered by their
        offsets (:func:`~palhdl.hdl.layout.lower_operand`) in front of the table, as
        :class:`PALTableProductTerm` describes (default ``False``).
    loadable : bool
        The table is a RAM written through ``table``, as :class:`PALTableProductTerm`
        (default ``False``).

    Members
    -------
    i : In(stream.Signature(StructLayout({"a", "b", "last"})))
        ``a``, ``b``: ``PALLayout(config.fmt)`` (``block_operand_layout(config.fmt)`` when
        ``block_scaled``); ``last``: 1 bit.
    o : Out(stream.Signature(accumulator_layout(config.accumulator)))
        The dot product's accumulator record.
    table : In(stream.Signature(table_load_layout(config, signed=signed)))
        Present when ``loadable``: always ready; each transfer writes entry ``data`` at
        ``addr`` on its clock edge. A pair accepted on that edge gets an unspecified term;
        later pairs see the write.

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
        block_scaled: bool = False,
        loadable: bool = False,
    ):
        """Validate; return the parameters as a tuple in this order."""
        term = PALTableProductTerm.check_parameters(
            config=config,
            signed=signed,
            registered=registered,
            implementation=implementation,
            block_scaled=block_scaled,
            loadable=loadable,
        )
        config, signed, registered, _, block_scaled, loadable, implementation = term
        _, segments, _ = SegmentedAccumulator.check_parameters(
            config=config.accumulator, segments=segments
        )
        return config, signed, registered, segments, implementation, block_scaled, loadable

    def __init__(
        self,
        *,
        config: MacConfig,
        signed: bool = False,
        registered: bool = True,
        segments: int = 1,
        implementation: str = "auto",
        block_scaled: bool = False,
        loadable: bool = False,
    ):
        parameters = self.check_parameters(
            config=config,
            signed=signed,
            registered=registered,
            segments=segments,
            implementation=implementation,
            block_scaled=block_scaled,
            loadable=loadable,
        )
        self._config, self._signed, self._registered, self._segments = parameters[:4]
        self._implementation, self._block_scaled, self._loadable = parameters[4:]
        self._window = config.accumulator
        operand = block_operand_layout(config.fmt) if block_scaled else PALLayout(config.fmt)
        extra = {}
        if loadable:
            extra["table"] = In(stream.Signature(table_load_layout(config, signed=signed)))
        super().__init__(operand, accumulator_layout(config.accumulator), extra)

    @property
    def config(self) -> MacConfig:
        """Operand format and accumulator window."""
        return self._config

    @property
    def term_latency(self) -> int:
        """Latency of the table term: 2 registered, else 1."""
        return 2 if self._registered else 1

    def operands(self, m: Module):
        """Return the input pair's operands, block-scaled ones lowered by their offsets."""
        a, b = super().operands(m)
        if self._block_scaled:
            return lower_operand(m, a), lower_operand(m, b)
        return a, b

    def product_term(self, m: Module):
        """Add a :class:`PALTableProductTerm`, written by ``table``; return it and its term."""
        m.submodules.term = unit = PALTableProductTerm(
            config=self._config,
            signed=self._signed,
            registered=self._registered,
            block_scaled=self._block_scaled,
            loadable=self._loadable,
            implementation=self._implementation,
        )
        if self._loadable:
            m.d.comb += [
                self.table.ready.eq(1),
                unit.w_en.eq(self.table.valid),
                unit.w_addr.eq(self.table.payload.addr),
                unit.w_data.eq(self.table.payload.data),
            ]
        return unit, unit.term if self._signed else unit.term_sm
