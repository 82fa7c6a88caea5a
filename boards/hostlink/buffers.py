"""The host link's operand buffers: A and B tiles in one block RAM, their scales and K."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from palhdl.boards.hostlink.protocol import MAX_K
from palhdl.format import SCALE_BITS
from palhdl.hdl.systolic import MAX_DIM
from palhdl.hdl.unit import Unit
from palhdl.validate import check_int

__all__ = ["OperandBuffers", "load_signature", "operand_read_signature"]

#: A scale travels as two bytes; the buffers keep it as two byte registers.
SCALE_BYTES = (SCALE_BITS + 7) // 8


def load_signature(*, rows: int, cols: int, k_max: int, width: int) -> wiring.Signature:
    """Return the signature of LOAD writes into :class:`OperandBuffers` (as the parser drives it).

    ``word`` goes to K step ``address`` of the A tile in the lane set in ``a_en`` (B:
    ``b_en``); at most one bit of ``a_en`` and ``b_en`` together is set. ``scale_byte`` goes
    to the scale byte registers set in ``scale_a_en`` / ``scale_b_en`` (two per lane, low byte
    first). ``invalidate_a`` / ``invalidate_b`` clear a buffer's valid flag; ``target_a`` and
    ``k`` say which buffer a commit validates, with which K.
    """
    return wiring.Signature(
        {
            "word": Out(width),
            "address": Out(range(k_max)),
            "a_en": Out(rows),
            "b_en": Out(cols),
            "scale_byte": Out(8),
            "scale_a_en": Out(SCALE_BYTES * rows),
            "scale_b_en": Out(SCALE_BYTES * cols),
            "invalidate_a": Out(1),
            "invalidate_b": Out(1),
            "target_a": Out(1),
            "k": Out(range(k_max + 1)),
        }
    )


def operand_read_signature(*, rows: int, cols: int, k_max: int, width: int) -> wiring.Signature:
    """Return the signature of reading the operand memory (as :class:`OperandBuffers` does).

    The memory holds both tiles, a row of ``max(rows, cols)`` words per address: address
    ``2 * k`` is column ``k`` of the A tile (``rows`` words, lane ``i`` at bits ``i * width``),
    address ``2 * k + 1`` row ``k`` of the B tile (``cols`` words). ``data`` is the row at
    ``addr`` one cycle after ``addr``; ``a_scale``, ``b_scale`` are the scales and ``k`` the K
    of A.
    """
    return wiring.Signature(
        {
            "addr": In(range(2 * k_max)),
            "data": Out(max(rows, cols) * width),
            "a_scale": Out(data.ArrayLayout(signed(SCALE_BITS), rows)),
            "b_scale": Out(data.ArrayLayout(signed(SCALE_BITS), cols)),
            "k": Out(range(k_max + 1)),
        }
    )


class OperandBuffers(Unit):
    """The A and B operand tiles of the host link, written by LOAD packets.

    Both tiles share one memory of ``2 * k_max`` rows of ``max(rows, cols)`` words: row
    ``2 * k`` holds column ``k`` of the A tile (one beat of the array's ``a`` stream), row
    ``2 * k + 1`` row ``k`` of the B tile (its ``b`` beat). It is written a word at a time
    through per-word write enables and read a row per cycle, so a K step takes two reads (the
    run engine has two cycles per beat). Folding A and B into one narrow, deep memory instead
    of two wide, shallow ones fills the block RAMs: with ``k_max`` 64, a 5 x 5 pal8 array's
    operands take three iCE40 block RAMs (40 bits wide, 128 deep) instead of six. The scales
    are byte registers. A buffer is invalidated when a LOAD for it starts and becomes
    valid, with its K, only on ``commit``.

    Parameters
    ----------
    rows, cols : int
        Array geometry, 1..64 each.
    k_max : int
        Deepest K, 1..4096.
    width : int
        Bits of an operand word.

    Members
    -------
    load : In(load_signature(...))
        The LOAD writes, from the packet parser.
    commit : In(1)
        Make the buffer of the parsed LOAD (``load.target_a``) valid with ``load.k``.
    read : Out(operand_read_signature(...))
        Operand rows and scales for the run engine.
    a_valid, b_valid : Out(1)
        The tile is complete and unchanged since its LOAD.
    a_k, b_k : Out(range(k_max + 1))
        K of the last committed LOAD_A / LOAD_B.
    """

    @classmethod
    def check_parameters(cls, *, rows: int, cols: int, k_max: int, width: int) -> dict:
        """Validate the parameters; return them."""
        return dict(
            rows=check_int("rows", rows, 1, MAX_DIM),
            cols=check_int("cols", cols, 1, MAX_DIM),
            k_max=check_int("k_max", k_max, 1, MAX_K),
            width=check_int("width", width, 1, 64),
        )

    def __init__(self, *, rows: int, cols: int, k_max: int, width: int):
        shapes = self.check_parameters(rows=rows, cols=cols, k_max=k_max, width=width)
        self._rows, self._cols = shapes["rows"], shapes["cols"]
        self._k_max, self._width = shapes["k_max"], shapes["width"]
        super().__init__(
            {
                "load": In(load_signature(**shapes)),
                "commit": In(1),
                "read": Out(operand_read_signature(**shapes)),
                "a_valid": Out(1),
                "b_valid": Out(1),
                "a_k": Out(range(k_max + 1)),
                "b_k": Out(range(k_max + 1)),
            }
        )

    @property
    def rows(self) -> int:
        """Words per A row (array rows)."""
        return self._rows

    @property
    def cols(self) -> int:
        """Words per B row (array columns)."""
        return self._cols

    @property
    def k_max(self) -> int:
        """Deepest K of a tile (the memory has ``2 * k_max`` rows)."""
        return self._k_max

    @property
    def width(self) -> int:
        """Bits of an operand word."""
        return self._width

    @property
    def latency(self) -> int:
        """Cycles from ``read.addr`` to ``read.data``."""
        return 1

    def elaborate(self, platform):
        """Build the operand memory, the scale registers and the valid flags."""
        m = Module()
        rows, cols, width, load = self._rows, self._cols, self._width, self.load
        lanes = max(rows, cols)
        # The run engine never reads while a LOAD writes (a RUN starts after the LOAD's
        # commit, and no packet is parsed during a RUN), so what a read returns at the address
        # being written is of no concern. Yosys is told so (``no_rw_check``), else it would
        # emulate read-before-write across the block RAM's two ports with a write delayed by
        # a cycle, a bypass register and a multiplexer behind the RAM's output. The attribute
        # acts where Yosys merges a register into an asynchronous read port, hence that port
        # and the explicit register (which becomes the block RAM's synchronous read).
        memory = Memory(
            shape=lanes * width, depth=2 * self._k_max, init=[], attrs={"no_rw_check": 1}
        )
        m.submodules.memory = memory
        write = memory.write_port(granularity=width)
        read = memory.read_port(domain="comb")
        read_data = Signal(lanes * width, name="read_data", reset_less=True)
        m.d.sync += read_data.eq(read.data)
        m.d.comb += [
            write.addr.eq(Cat(load.b_en.any(), load.address)),
            write.data.eq(Cat([load.word] * lanes)),
            write.en.eq(load.a_en | load.b_en),
            read.addr.eq(self.read.addr),
            self.read.data.eq(read_data),
        ]
        for scale_lanes, enables, scales in (
            (rows, load.scale_a_en, self.read.a_scale),
            (cols, load.scale_b_en, self.read.b_scale),
        ):
            registers = [Signal(8, name=f"scale_byte{i}") for i in range(SCALE_BYTES * scale_lanes)]
            for index, register in enumerate(registers):
                with m.If(enables[index]):
                    m.d.sync += register.eq(load.scale_byte)
            m.d.comb += scales.as_value().eq(Cat(*registers))
        m.d.comb += self.read.k.eq(self.a_k)
        with m.If(self.commit):
            with m.If(load.target_a):
                m.d.sync += [self.a_valid.eq(1), self.a_k.eq(load.k)]
            with m.Else():
                m.d.sync += [self.b_valid.eq(1), self.b_k.eq(load.k)]
        with m.If(load.invalidate_a):
            m.d.sync += self.a_valid.eq(0)
        with m.If(load.invalidate_b):
            m.d.sync += self.b_valid.eq(0)
        return m
