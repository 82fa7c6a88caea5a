"""The host link's table writer: LOAD_TABLE entries into the array's product-term tables."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from palhdl.format import MacConfig
from palhdl.hdl.pe import PALTableProductTerm, table_entries, table_load_layout
from palhdl.hdl.unit import Unit
from palhdl.validate import check_bool

__all__ = ["TableWriter", "table_load_signature"]


def table_load_signature() -> wiring.Signature:
    """Return the signature of LOAD_TABLE bytes into :class:`TableWriter` (as the parser drives it).

    ``invalidate``: a LOAD_TABLE of the right length has started. ``split_en``: ``byte`` is
    its split byte. ``entry_en``: ``byte`` is the next byte of the entries (each entry little
    endian, entries in address order). At most one of the three is set in a cycle.
    """
    return wiring.Signature(
        {"byte": Out(8), "split_en": Out(1), "entry_en": Out(1), "invalidate": Out(1)}
    )


class TableWriter(Unit):
    """Writes the entries of a LOAD_TABLE into the array's product-term tables.

    Entry bytes arrive one at a time (at least two cycles apart); each completed entry is
    written, in a transfer of ``table``, to the next address, counting from 0 at
    ``load.invalidate``. The table is valid after configuration (the bitstream's table,
    labelled with its split ``config.fmt.frac_bits``), invalid from ``load.invalidate`` and
    valid again on ``commit``, which also takes the split byte of that LOAD_TABLE as the
    label. The host link writes only while the array is idle (packets are parsed only between
    runs).

    Parameters
    ----------
    config : MacConfig
        The configuration the PEs' tables are built for: the table's size and entry width
        (:func:`~palhdl.hdl.pe.table_load_layout`, ``ceil(width / 8)`` bytes per entry on the
        wire) and the label after configuration.
    signed : bool
        The tables hold signed terms (twice the entries), default ``False``.

    Members
    -------
    load : In(table_load_signature())
        Bytes of a LOAD_TABLE, from the packet parser.
    commit : In(1)
        The LOAD_TABLE has arrived whole and correct: the table is valid.
    table : Out(stream.Signature(table_load_layout(config, signed=signed)))
        The writes, to the array's ``table`` member.
    valid : Out(1)
        The table holds the entries of the last committed LOAD_TABLE (or the bitstream's).
    frac_bits : Out(8)
        The split byte of the last committed LOAD_TABLE (``config.fmt.frac_bits`` before any).

    Raises
    ------
    TypeError, ValueError
        As :class:`~palhdl.hdl.pe.PALTableProductTerm` (the table must fit in block RAM).
    """

    @classmethod
    def check_parameters(cls, *, config: MacConfig, signed: bool = False) -> tuple:
        """Validate the parameters; return ``(config, signed)``."""
        PALTableProductTerm.check_parameters(config=config, signed=signed)
        return config, check_bool("signed", signed)

    def __init__(self, *, config: MacConfig, signed: bool = False):
        self._config, self._signed = self.check_parameters(config=config, signed=signed)
        layout = table_load_layout(config, signed=signed)
        self._entries = table_entries(config, signed=signed)
        self._width = layout["data"].shape.width
        super().__init__(
            {
                "load": In(table_load_signature()),
                "commit": In(1),
                "table": Out(stream.Signature(layout)),
                "valid": Out(1, init=1),
                "frac_bits": Out(8, init=config.fmt.frac_bits),
            }
        )

    @property
    def config(self) -> MacConfig:
        """The configuration the tables are built for."""
        return self._config

    @property
    def signed(self) -> bool:
        """Whether the tables hold signed terms."""
        return self._signed

    @property
    def entries(self) -> int:
        """Words of the table."""
        return self._entries

    @property
    def width(self) -> int:
        """Bits of a word."""
        return self._width

    @property
    def entry_bytes(self) -> int:
        """Bytes of a word on the wire."""
        return (self._width + 7) // 8

    def elaborate(self, platform):
        """Assemble the entries, count the addresses, register the writes and the label."""
        m = Module()
        load, table, entry_bytes = self.load, self.table, self.entry_bytes
        low = Signal(8 * (entry_bytes - 1), name="entry_low")  # the entry's earlier bytes
        index = Signal(range(entry_bytes), name="byte_in_entry")
        addr = Signal(range(self._entries), name="next_addr")
        split = Signal(8, name="split")  # the split byte of the LOAD_TABLE being received
        with m.If(table.ready):
            m.d.sync += table.valid.eq(0)
        with m.If(load.invalidate):
            m.d.sync += [self.valid.eq(0), index.eq(0), addr.eq(0)]
        with m.If(load.split_en):
            m.d.sync += split.eq(load.byte)
        with m.If(load.entry_en):
            if entry_bytes > 1:
                m.d.sync += [low.eq(Cat(low[8:], load.byte)), index.eq(index + 1)]
            with m.If(index == entry_bytes - 1):
                m.d.sync += [
                    index.eq(0),
                    addr.eq(addr + 1),
                    table.valid.eq(1),
                    table.payload.addr.eq(addr),
                    table.payload.data.eq(Cat(low, load.byte)[: self._width]),
                ]
        with m.If(self.commit):
            m.d.sync += [self.valid.eq(1), self.frac_bits.eq(split)]
        return m
