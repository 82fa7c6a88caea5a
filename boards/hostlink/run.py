"""The host link's run engine: operand buffers through the systolic array into the result memory."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Shape, Signal, Value
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from palhdl.boards.hostlink.buffers import operand_read_signature
from palhdl.boards.hostlink.gates import one_hot
from palhdl.boards.hostlink.protocol import MAX_K
from palhdl.hdl.systolic import SystolicArray
from palhdl.hdl.unit import Unit
from palhdl.validate import check_instance, check_int

__all__ = ["RunEngine"]


class RunEngine(Unit):
    """Runs the loaded tiles through a :class:`~palhdl.hdl.systolic.SystolicArray`.

    On ``start`` the engine presents one beat every two cycles (one to read row ``k`` of both
    operand memories), the last one marked ``last``; then it takes the result rows from the
    array, each into a one-row shift register of whole-byte lanes, and writes them a byte per
    cycle into a byte-wide result memory (block RAM) in READ order, so no multiplexer spans the
    result. ``done`` pulses when the last byte is in.

    Parameters
    ----------
    array : SystolicArray
        The array the engine feeds (its geometry, readout and stream signatures).
    k_max : int
        Deepest K of a tile, 1..4096.

    Members
    -------
    start : In(1)
        Start a run (while idle); invalidates the result.
    done : Out(1)
        The run has finished (one cycle); the result is valid from the next cycle.
    operands : In(operand_read_signature(...))
        The operand buffers.
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
        Result memory address (one cycle of read latency).
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
        width = Shape.cast(array.arithmetic.a_shape).width
        read = operand_read_signature(rows=self._rows, cols=self._cols, k_max=k_max, width=width)
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
        """Build the beat sequencer, the row collector and the result memory."""
        m = Module()
        s = SimpleNamespace(
            k_run=Signal(range(self._k_max), name="k_run"),
            # k_run is the last K step (registered in FETCH).
            beat_last=Signal(name="beat_last"),
            # Registered c.ready: collecting, no row being stored and rows left to take.
            collect=Signal(name="collect"),
        )
        store = self._store(m)
        m.d.comb += [
            self.operands.addr.eq(s.k_run),
            self.a.payload.data.as_value().eq(self.operands.a),
            self.b.payload.data.as_value().eq(self.operands.b),
            self.a.payload.last.eq(s.beat_last),
            self.c.ready.eq(s.collect),
        ]
        m.d.comb += [
            self.a.payload.scale[i].eq(self.operands.a_scale[i]) for i in range(self._rows)
        ]
        m.d.comb += [
            self.b.payload.scale[j].eq(self.operands.b_scale[j]) for j in range(self._cols)
        ]
        with m.FSM(name="run") as fsm:
            with m.State("IDLE"), m.If(self.start):
                m.d.sync += [
                    s.k_run.eq(0),
                    store.rows_taken.eq(0),
                    store.all_taken.eq(0),
                    store.addr.eq(0),
                    self.result_valid.eq(0),
                    self.nan.eq(0),
                    self.saturated.eq(0),
                    self.cycles.eq(0),
                ]
                m.next = "FETCH"
            with m.State("FETCH"):  # the operand memories read row k_run
                m.d.sync += s.beat_last.eq(s.k_run == self.operands.k - 1)
                m.next = "BEAT"
            with m.State("BEAT"):
                m.d.comb += [self.a.valid.eq(1), self.b.valid.eq(1)]
                with m.If(self.a.ready):
                    with m.If(self.a.payload.last):
                        m.d.sync += s.collect.eq(1)
                        m.next = "COLLECT"
                    with m.Else():
                        m.d.sync += s.k_run.eq(s.k_run + 1)
                        m.next = "FETCH"
            with m.State("COLLECT"):
                with m.If(store.storing):  # the previous row is still going into the memory
                    m.d.sync += s.collect.eq((store.bytes_left == 1) & ~store.all_taken)
                with m.Elif(store.all_taken):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += self.result_valid.eq(1)
                    m.next = "IDLE"
        one_hot(fsm)
        self._take_row(m, s, store)
        with m.If(~fsm.ongoing("IDLE") & (self.cycles != 0xFFFF)):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m

    def _store(self, m: Module) -> SimpleNamespace:
        """Build the result memory and the shift register that writes a row into it."""
        row_bytes = self._cols * self._lane_bytes
        # Byte-wide, so any readout fits one or two block RAMs; forced into block RAM even
        # when small (else the synthesiser would build it from flip-flops and a read mux).
        memory = Memory(shape=8, depth=self.read_length, init=[], attrs={"ram_style": "block"})
        m.submodules.result = memory
        write, read = memory.write_port(), memory.read_port()
        store = SimpleNamespace(
            row_bytes=row_bytes,
            addr=write.addr,
            rows_taken=Signal(range(self._rows), name="rows_taken"),
            all_taken=Signal(name="all_taken"),  # rows_taken has reached rows
            row_shift=Signal(8 * row_bytes, name="row_shift"),
            bytes_left=Signal(range(row_bytes + 1), name="bytes_left"),
            storing=Signal(name="storing"),  # bytes_left != 0
        )
        m.d.comb += [
            write.data.eq(store.row_shift[:8]),
            write.en.eq(store.storing),
            read.addr.eq(self.read_addr),
            self.read_data.eq(read.data),
        ]
        with m.If(store.storing):
            m.d.sync += [
                store.row_shift.eq(store.row_shift >> 8),
                store.bytes_left.eq(store.bytes_left - 1),
                store.storing.eq(store.bytes_left != 1),
                write.addr.eq(write.addr + 1),
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
