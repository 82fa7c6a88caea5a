"""The host link's run engine: operand buffers through the systolic array into the result memory."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Shape, Signal, Value
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.vendor import SiliconBluePlatform

from palhdl.boards.hostlink.buffers import operand_read_signature
from palhdl.boards.hostlink.gates import one_hot
from palhdl.boards.hostlink.protocol import MAX_K
from palhdl.hdl.systolic import SystolicArray
from palhdl.hdl.unit import Unit
from palhdl.validate import check_instance, check_int

__all__ = ["SPRAM_DEPTH", "ResultMemory", "RunEngine"]

#: Words of an iCE40 UltraPlus single-port RAM (SB_SPRAM256KA: 16384 x 16 bits).
SPRAM_DEPTH = 16384


class ResultMemory(Unit):
    """A byte-wide single-port memory (one address for reading and writing): the result buffer.

    Elaborated for an iCE40 UltraPlus (a :class:`~amaranth.vendor.SiliconBluePlatform` whose
    device starts with ``iCE40UP``) it is one ``SB_SPRAM256KA`` (bytes in the low half of its
    16-bit words) if ``depth`` is at most :data:`SPRAM_DEPTH`, so the result takes none of the
    block RAMs; anywhere else (another FPGA, simulation, ``platform=None``) it is an Amaranth
    ``Memory`` placed in block RAM. Yosys does
    not infer the SPRAM from a ``Memory``: its SPRAM rule refuses initialised memories, and
    Amaranth always initialises one.

    Parameters
    ----------
    depth : int
        Bytes, at least 1.

    Members
    -------
    addr : In(range(depth))
        The byte read, or written when ``write_en`` is set.
    write_data : In(8)
        The byte written.
    write_en : In(1)
        Write ``write_data`` at ``addr`` (at the end of the cycle).
    read_data : Out(8)
        The byte at ``addr`` one cycle earlier, when ``write_en`` was low then (undefined after
        a write cycle).
    """

    @classmethod
    def check_parameters(cls, *, depth: int) -> int:
        """Validate the depth; return it."""
        return check_int("depth", depth, 1, None)

    def __init__(self, *, depth: int):
        self._depth = self.check_parameters(depth=depth)
        super().__init__(
            {
                "addr": In(range(depth)),
                "write_data": In(8),
                "write_en": In(1),
                "read_data": Out(8),
            }
        )

    @property
    def depth(self) -> int:
        """Bytes of the memory."""
        return self._depth

    @staticmethod
    def uses_spram(platform, depth: int) -> bool:
        """Whether a memory of ``depth`` bytes elaborated for ``platform`` is an SPRAM."""
        ultraplus = isinstance(platform, SiliconBluePlatform) and platform.device.startswith(
            "iCE40UP"
        )
        return ultraplus and depth <= SPRAM_DEPTH

    def elaborate(self, platform):
        """Instantiate the SPRAM on an iCE40 UltraPlus, else a block RAM ``Memory``."""
        m = Module()
        if self.uses_spram(platform, self._depth):
            data_out = Signal(16)
            m.submodules.spram = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=Cat(self.addr, Const(0, 14 - len(self.addr))),
                i_DATAIN=Cat(self.write_data, Const(0, 8)),
                i_MASKWREN=Cat(self.write_en, self.write_en, Const(0, 2)),  # the low byte
                i_WREN=self.write_en,
                i_CHIPSELECT=Const(1),
                i_CLOCK=ClockSignal("sync"),
                i_STANDBY=Const(0),
                i_SLEEP=Const(0),
                i_POWEROFF=Const(1),  # active low
                o_DATAOUT=data_out,
            )
            m.d.comb += self.read_data.eq(data_out[:8])
            return m
        # Forced into block RAM even when small (else the synthesiser would build it from
        # flip-flops and a read multiplexer).
        memory = Memory(shape=8, depth=self._depth, init=[], attrs={"ram_style": "block"})
        m.submodules.memory = memory
        write, read = memory.write_port(), memory.read_port()
        m.d.comb += [
            write.addr.eq(self.addr),
            write.data.eq(self.write_data),
            write.en.eq(self.write_en),
            read.addr.eq(self.addr),
            self.read_data.eq(read.data),
        ]
        return m


class RunEngine(Unit):
    """Runs the loaded tiles through a :class:`~palhdl.hdl.systolic.SystolicArray`.

    On ``start`` the engine presents one beat every two cycles, reading the operand memory
    twice per beat (A column ``k`` at address ``2 * k``, then B row ``k`` at ``2 * k + 1``),
    the last one marked ``last``. Whatever the memory reads goes first into a plain register
    (``operand_data``, no logic in front), so no path starts at a block-RAM output but that
    one; the A column then moves into a second register and the beat takes the B row from
    ``operand_data``. The address counts up by one every cycle from ``start`` and holds on the
    last B row: the array takes any beat but a last one as soon as it is offered (its flow
    control), and a stalled last beat keeps its data. Then the engine takes the result rows
    from the array, each into a one-row shift register of whole-byte lanes, and writes them a
    byte per cycle into a byte-wide single-port :class:`ResultMemory` in READ order, so no
    multiplexer spans the result. ``done`` pulses when the last byte is in.

    Every decision is taken from registers: the last-beat flag is compared a step ahead, the
    cycle count's saturation is registered and the array's ``c.ready`` is a register.

    Parameters
    ----------
    array : SystolicArray
        The array the engine feeds (its geometry, readout and stream signatures).
    k_max : int
        Deepest K of a tile, 1..4096.

    Members
    -------
    start : In(1)
        Start a run (only while idle); invalidates the result.
    done : Out(1)
        The run has finished (one cycle); the result is valid from the next cycle.
    operands : In(operand_read_signature(...))
        The operand buffers (``k`` is sampled at ``start``).
    a, b : Out(the array's ``a`` / ``b`` stream signatures)
        Beats to the array.
    c : In(the array's ``c`` stream signature)
        Result rows from the array.
    result_valid : Out(1)
        The result memory holds the result of the last run.
    nan, saturated : Out(1)
        A lane of that result is NaN / at the range limit.
    cycles : Out(16)
        Cycles from the start of the last run to its last result byte, saturating.
    read_addr : In(range(rows * cols * lane_bytes))
        Result memory address (one cycle of read latency; not during a run).
    read_data : Out(8)
        Result memory byte.
    """

    @classmethod
    def check_parameters(cls, *, array: SystolicArray, k_max: int) -> tuple[SystolicArray, int]:
        """Validate the parameters; return ``(array, k_max)``."""
        return check_instance("array", array, SystolicArray), check_int("k_max", k_max, 1, MAX_K)

    def __init__(self, *, array: SystolicArray, k_max: int):
        array, self._k_max = self.check_parameters(array=array, k_max=k_max)
        self._rows, self._cols, self._output = array.rows, array.cols, array.output
        self._fmt = array.arithmetic.config.fmt
        streams = array.signature.members
        self._lane_shape = array.lane_shape
        self._lane_bytes = (Shape.cast(self._lane_shape).width + 7) // 8
        self._width = Shape.cast(array.arithmetic.a_shape).width
        read = operand_read_signature(
            rows=self._rows, cols=self._cols, k_max=k_max, width=self._width
        )
        super().__init__(
            {
                "start": In(1),
                "done": Out(1),
                "operands": In(read),
                "a": Out(streams["a"].signature.flip()),
                "b": Out(streams["b"].signature.flip()),
                "c": In(streams["c"].signature),
                "result_valid": Out(1),
                "nan": Out(1),
                "saturated": Out(1),
                "cycles": Out(16),
                "read_addr": In(range(self.read_length)),
                "read_data": Out(8),
            }
        )

    @property
    def k_max(self) -> int:
        """Deepest K of a tile."""
        return self._k_max

    @property
    def lane_bytes(self) -> int:
        """Bytes per result lane in the result memory."""
        return self._lane_bytes

    @property
    def read_length(self) -> int:
        """Bytes of the result memory: ``rows * cols`` lanes, row-major."""
        return self._rows * self._cols * self._lane_bytes

    @property
    def latency(self) -> int:
        """Cycles from ``read_addr`` to ``read_data``."""
        return 1

    def elaborate(self, platform):
        """Build the beat sequencer, the row collector, the cycle count and the result memory."""
        m = Module()
        operands, k_max = self.operands, self._k_max
        s = SimpleNamespace(
            # The operand memory address, 0 while idle; it holds on the last B row.
            addr=Signal(range(2 * k_max), name="operand_addr"),
            hold=Signal(name="operand_addr_hold"),  # addr is the last B row
            # The memory, registered: no reset, so the flip-flops take the block RAM's output
            # straight (a reset becomes a LUT in front of them on the ECP5).
            data=Signal(len(operands.data), name="operand_data", reset_less=True),
            k_last=Signal(range(k_max), name="k_last"),  # K - 1, registered at start
            last=Signal(name="beat_last"),  # the next beat offered is the last
            a_column=Signal(self._rows * self._width, name="a_column"),
            # Registered c.ready: collecting, no row being stored and rows left to take.
            collect=Signal(name="collect"),
        )
        store = self._store(m)
        m.d.sync += s.data.eq(operands.data)
        m.d.comb += [
            operands.addr.eq(s.addr),
            self.a.payload.data.as_value().eq(s.a_column),
            self.b.payload.data.as_value().eq(s.data),
            self.a.payload.last.eq(s.last),
            self.c.ready.eq(s.collect),
        ]
        m.d.comb += [self.a.payload.scale[i].eq(operands.a_scale[i]) for i in range(self._rows)]
        m.d.comb += [self.b.payload.scale[j].eq(operands.b_scale[j]) for j in range(self._cols)]
        with m.FSM(name="run") as fsm:
            with m.State("IDLE"):
                m.d.sync += s.k_last.eq(operands.k - 1)
                with m.If(self.start):
                    m.d.sync += [s.addr.eq(1), s.hold.eq(operands.k == 1)]
                    m.d.sync += s.last.eq(operands.k == 1)
                    m.next = "PRIME"
            with m.State("PRIME"):  # the memory shows A column 0; addr is A column 1
                self._advance(m, s)
                m.next = "FETCH"
            with m.State("FETCH"):  # operand_data is A column k; addr is A column k + 1
                m.d.sync += s.a_column.eq(s.data)
                self._advance(m, s)
                m.next = "BEAT"
            with m.State("BEAT"):  # operand_data is B row k; addr is B row k + 1 (or holds)
                m.d.comb += [self.a.valid.eq(1), self.b.valid.eq(1)]
                self._advance(m, s)
                with m.If(~s.last):  # taken at once
                    m.d.sync += s.last.eq(s.addr[1:] == s.k_last)
                    m.next = "FETCH"
                with m.Elif(self.a.ready):
                    m.d.sync += [s.addr.eq(0), s.hold.eq(0), s.last.eq(0), s.collect.eq(1)]
                    m.next = "COLLECT"
            with m.State("COLLECT"), m.If(self.done):
                m.next = "IDLE"
        one_hot(fsm)
        # The last byte of a row is going into the memory: take the next row, or finish.
        m.d.sync += self.done.eq(store.last_byte & store.all_taken)
        with m.If(store.last_byte & ~store.all_taken):
            m.d.sync += s.collect.eq(1)
        with m.If(self.done):
            m.d.sync += self.result_valid.eq(1)
        with m.If(self.start):  # (only while idle: no state decoding here)
            m.d.sync += [
                store.rows_taken.eq(0),
                store.all_taken.eq(0),
                store.addr.eq(0),
                self.result_valid.eq(0),
                self.nan.eq(0),
                self.saturated.eq(0),
            ]
        self._take_row(m, s, store)
        self._count_cycles(m, ~fsm.ongoing("IDLE"))
        return m

    @staticmethod
    def _advance(m: Module, s: SimpleNamespace) -> None:
        """Step the operand address, unless it holds on the last B row (compared a step ahead)."""
        with m.If(~s.hold):
            m.d.sync += [s.addr.eq(s.addr + 1), s.hold.eq((s.addr[1:] == s.k_last) & ~s.addr[0])]

    def _count_cycles(self, m: Module, running) -> None:
        """``cycles``: cleared by ``start``, then counts while ``running`` up to 0xFFFF.

        The saturation test is registered one count ahead, so the count's enable is a function
        of registers only.
        """
        full = Signal(name="cycles_full")  # cycles == 0xFFFF
        with m.If(self.start):
            m.d.sync += [self.cycles.eq(0), full.eq(0)]
        with m.Elif(running & ~full):
            m.d.sync += [self.cycles.eq(self.cycles + 1), full.eq(self.cycles == 0xFFFE)]

    def _store(self, m: Module) -> SimpleNamespace:
        """Build the result memory and the shift register that writes a row into it."""
        row_bytes = self._cols * self._lane_bytes
        m.submodules.result = result = ResultMemory(depth=self.read_length)
        store = SimpleNamespace(
            row_bytes=row_bytes,
            addr=Signal(range(self.read_length), name="store_addr"),
            rows_taken=Signal(range(self._rows), name="rows_taken"),
            all_taken=Signal(name="all_taken"),  # rows_taken has reached rows
            row_shift=Signal(8 * row_bytes, name="row_shift"),
            bytes_left=Signal(range(row_bytes + 1), name="bytes_left"),
            storing=Signal(name="storing"),  # bytes_left != 0
            last_byte=Signal(name="last_byte"),  # bytes_left == 1 (so storing too)
        )
        m.d.comb += [
            result.addr.eq(Mux(store.storing, store.addr, self.read_addr)),
            result.write_data.eq(store.row_shift[:8]),
            result.write_en.eq(store.storing),
            self.read_data.eq(result.read_data),
        ]
        # The shift register and the byte count move every cycle (they are read only while
        # storing), so they need no enable: taking a row is their only other input.
        m.d.sync += [
            store.row_shift.eq(store.row_shift >> 8),
            store.bytes_left.eq(store.bytes_left - 1),
        ]
        with m.If(store.storing):
            m.d.sync += [
                store.storing.eq(~store.last_byte),
                store.last_byte.eq(store.bytes_left == 2),
                store.addr.eq(store.addr + 1),
            ]
        return store

    def _take_row(self, m: Module, s: SimpleNamespace, store: SimpleNamespace) -> None:
        """Take a result row (``collect`` implies COLLECT, so no state decoding here)."""
        bits = 8 * self._lane_bytes
        lanes = [self.c.payload.data[j] for j in range(self._cols)]
        padded_row = Cat(Cat(Value.cast(lane), Const(0, bits))[:bits] for lane in lanes)
        flags = [self._lane_flags(lane) for lane in lanes]
        with m.If(self.c.valid & s.collect):
            m.d.sync += [
                s.collect.eq(0),
                store.row_shift.eq(padded_row),
                store.bytes_left.eq(store.row_bytes),
                store.storing.eq(1),
                store.last_byte.eq(store.row_bytes == 1),
                store.rows_taken.eq(store.rows_taken + 1),
                store.all_taken.eq(store.rows_taken == self._rows - 1),
                self.nan.eq(self.nan | Cat(nan for nan, _ in flags).any()),
                self.saturated.eq(self.saturated | Cat(sat for _, sat in flags).any()),
            ]

    def _lane_flags(self, lane):
        """Return ``(nan, saturated)`` of one result lane in the array's readout mode."""
        if self._output == "raw":
            return lane.nan, lane.overflow
        if self._output == "float32":
            exponent_max = lane[23:31] == 0xFF
            return exponent_max & (lane[:23] != 0), exponent_max & (lane[:23] == 0)
        return lane.is_nan(), lane.mag == self._fmt.mag_mask
