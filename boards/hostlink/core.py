"""The host link: a PAL systolic array behind a UART packet protocol.

:class:`HostLinkCore` is the gateware a board top level instantiates (UART pins in, UART pins
out, a few status LEDs). It composes the parts of this package: the
:class:`~palhdl.boards.hostlink.receiver.Receiver` (UART receiver and FIFO), the
:class:`~palhdl.boards.hostlink.parser.Parser`, the
:class:`~palhdl.boards.hostlink.buffers.OperandBuffers`, the
:class:`~palhdl.boards.hostlink.run.RunEngine` feeding the
:class:`~palhdl.hdl.systolic.SystolicArray`, the :class:`~palhdl.boards.hostlink.reply.Reply`
generator and the UART transmitter, and sequences them. The protocol is
:mod:`palhdl.boards.hostlink.protocol` (specified in ``docs/host-link.md``).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.boards.hostlink.buffers import OperandBuffers
from palhdl.boards.hostlink.gates import one_hot
from palhdl.boards.hostlink.parser import Parser
from palhdl.boards.hostlink.protocol import (
    ERROR_REPLY,
    MAX_K,
    OUTPUT_MODES,
    REPLY_FLAG,
    ErrorCode,
    LedBit,
    ReadFlag,
    StatusFlag,
    encode_identify,
    load_length,
    table_length,
)
from palhdl.boards.hostlink.receiver import Receiver
from palhdl.boards.hostlink.reply import Reply, ReplyKind
from palhdl.boards.hostlink.run import RunEngine
from palhdl.boards.hostlink.table import TableWriter
from palhdl.format import SCALE_BITS, MacConfig
from palhdl.hdl.pe import table_entries, term_entry_layout
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import MAX_DIM, SystolicArray
from palhdl.hdl.uart import MAX_DIVISOR, MIN_DIVISOR, UARTTx
from palhdl.hdl.unit import Unit
from palhdl.validate import check_choice, check_int

__all__ = ["HostLinkCore"]

MAX_TIMEOUT_CYCLES = 1 << 32
#: Largest relative difference between ``baud`` and the rate the integer divisor produces.
MAX_BAUD_ERROR = 0.02


class HostLinkCore(Unit):
    """A ``rows x cols`` PAL systolic array served over a UART (8N1) packet protocol.

    Everything runs in ``sync``. Inside: UART receiver and transmitter
    (:mod:`palhdl.hdl.uart`), a receive FIFO of
    :data:`~palhdl.boards.hostlink.receiver.RX_FIFO_DEPTH` bytes (a drop marker where input
    was lost), a byte-wide packet parser with a header and a packet CRC-8 and an inter-byte
    timeout (a bad header or lost input: one ERROR reply once the line is quiet), operand
    buffers in one block RAM (row ``2 k``: column ``k`` of A, ``rows`` operand lanes; row
    ``2 k + 1``: row ``k`` of B, ``cols`` lanes; scales in registers), the
    :class:`~palhdl.hdl.systolic.SystolicArray`
    (:class:`~palhdl.hdl.providers.PALArithmetic`, readout ``output``), a byte-wide result
    buffer (``rows x cols`` lanes of :attr:`lane_bytes` bytes, row-major; an SPRAM on an iCE40
    UltraPlus, else block RAM: :class:`~palhdl.boards.hostlink.run.ResultMemory`), a reply
    generator and, with ``loadable``, the
    :class:`~palhdl.boards.hostlink.table.TableWriter` that LOAD_TABLE writes the PEs' term
    tables through. The protocol is in ``docs/host-link.md``.

    Every decision of the link's control is taken from registers (decoded command flags,
    comparisons of counters with their limits made a step ahead, comparisons of received bytes
    made when they enter the FIFO, registered memory writes, array handshakes and the run
    engine's start), so the link adds at most a few LUT levels to any path. Its state machines
    carry Yosys' ``fsm_encoding = "one-hot"``: Yosys then ignores their initial values, so
    ``sync`` must be reset after configuration (the board tops of
    :mod:`palhdl.boards.platforms` hold it in reset until the PLL has locked).

    Parameters
    ----------
    rows, cols : int
        Array geometry, 1..64 each.
    config : MacConfig
        Operand format and accumulator.
    output : {"pal", "float32", "raw"}
        Readout of the results (READ returns these lanes).
    clk_freq : int
        Frequency of ``sync`` in Hz.
    baud : int
        UART rate; ``clk_freq / baud`` rounds to the bit period, which must be
        ``MIN_DIVISOR``..``MAX_DIVISOR`` cycles and within 2 % of the requested rate.
    k_max : int
        Deepest K a tile may have, 1..4096 (a LOAD packet must also stay below 65536 bytes).
    timeout_cycles : int, optional
        Inter-byte timeout inside a packet, and the quiet time after a bad header or lost
        input before the ERROR reply, in clock cycles; at least 20 bit periods (two
        characters). Default 10 ms worth of cycles.
    pipelined : bool
        Register the PE product terms and readout converters (``PALArithmetic(pipelined=)``).
    term : str
        The PEs' product term, ``PALArithmetic(term=)`` (default ``"auto"``).
    table_ports : int
        PEs sharing a product-term table, ``PALArithmetic(table_ports=)`` (default 1).
    loadable : bool
        The PEs' term tables are RAMs that LOAD_TABLE rewrites (``PALArithmetic(loadable=)``;
        a table term), default ``False``.
    block_scaled : bool
        The operands carry block offsets (``PALArithmetic(block_scaled=)``), default
        ``False``.

    Members
    -------
    rx : In(1)
        The serial line from the host, idle high.
    tx : Out(1)
        The serial line to the host, idle high.
    status : Out(4)
        For LEDs; bit positions in :class:`~palhdl.boards.hostlink.protocol.LedBit`: busy,
        last reply was an error, A and B loaded, result available.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        rows: int,
        cols: int,
        config: MacConfig,
        output: str = "pal",
        clk_freq: int,
        baud: int = 115200,
        k_max: int = 64,
        timeout_cycles: int | None = None,
        pipelined: bool = False,
        term: str = "auto",
        table_ports: int = 1,
        loadable: bool = False,
        block_scaled: bool = False,
    ) -> dict:
        """Validate the parameters; return them with the arithmetic, divisor and timeout.

        Raises
        ------
        TypeError, ValueError
            A parameter has the wrong type or is out of range; the message names it.
        """
        for name, value in (("rows", rows), ("cols", cols)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
                raise ValueError(f"{name} must be an integer in [1, {MAX_DIM}], not {value!r}")
        arithmetic = PALArithmetic(
            config=config,
            pipelined=pipelined,
            term=term,
            table_ports=table_ports,
            loadable=loadable,
            block_scaled=block_scaled,
        )
        check_choice("output", output, OUTPUT_MODES)
        check_int("clk_freq", clk_freq, 1, 10**12)
        check_int("baud", baud, 1, 10**9)
        divisor = round(clk_freq / baud)
        if divisor < MIN_DIVISOR:
            raise ValueError(
                f"baud {baud} is too fast for clk_freq {clk_freq}: a bit must last at least "
                f"{MIN_DIVISOR} clock cycles, not {clk_freq / baud:.3g}"
            )
        if divisor > MAX_DIVISOR:
            raise ValueError(
                f"baud {baud} is too slow for clk_freq {clk_freq}: a bit may last at most "
                f"{MAX_DIVISOR} clock cycles, not {clk_freq / baud:.3g}"
            )
        if abs(clk_freq / divisor - baud) > MAX_BAUD_ERROR * baud:
            raise ValueError(
                f"baud {baud} is not reachable from clk_freq {clk_freq}: the nearest divisor "
                f"{divisor} gives {clk_freq / divisor:.0f} baud (more than "
                f"{MAX_BAUD_ERROR:.0%} off)"
            )
        check_int("k_max", k_max, 1, MAX_K)
        width = Shape.cast(arithmetic.a_shape).width
        longest = load_length(max(rows, cols), k_max, (width + 7) // 8)
        if longest > 0xFFFF:
            raise ValueError(
                f"k_max {k_max} is too large for a {rows} x {cols} array of "
                f"{width}-bit operands: a LOAD packet would be {longest} bytes "
                f"(at most 65535)"
            )
        if timeout_cycles is None:
            timeout_cycles = max(clk_freq // 100, 20 * divisor)
        check_int("timeout_cycles", timeout_cycles, 20 * divisor, MAX_TIMEOUT_CYCLES)
        return dict(
            rows=rows,
            cols=cols,
            config=config,
            arithmetic=arithmetic,
            output=output,
            clk_freq=clk_freq,
            baud=baud,
            divisor=divisor,
            k_max=k_max,
            timeout_cycles=timeout_cycles,
            pipelined=pipelined,
        )

    def __init__(
        self,
        *,
        rows: int,
        cols: int,
        config: MacConfig,
        output: str = "pal",
        clk_freq: int,
        baud: int = 115200,
        k_max: int = 64,
        timeout_cycles: int | None = None,
        pipelined: bool = False,
        term: str = "auto",
        table_ports: int = 1,
        loadable: bool = False,
        block_scaled: bool = False,
    ):
        params = self.check_parameters(
            rows=rows,
            cols=cols,
            config=config,
            output=output,
            clk_freq=clk_freq,
            baud=baud,
            k_max=k_max,
            timeout_cycles=timeout_cycles,
            pipelined=pipelined,
            term=term,
            table_ports=table_ports,
            loadable=loadable,
            block_scaled=block_scaled,
        )
        self._rows, self._cols = params["rows"], params["cols"]
        self._config, self._arithmetic = params["config"], params["arithmetic"]
        self._output, self._pipelined = params["output"], params["pipelined"]
        self._clk_freq, self._baud, self._divisor = (
            params["clk_freq"],
            params["baud"],
            params["divisor"],
        )
        self._k_max, self._timeout_cycles = params["k_max"], params["timeout_cycles"]
        arithmetic = self._arithmetic
        self._operand_width = Shape.cast(arithmetic.a_shape).width
        self._word_bytes = (self._operand_width + 7) // 8
        self._table_entries = self._table_width = 0
        if loadable:
            signed = arithmetic.term == "signed_table"
            self._table_entries = table_entries(config, signed=signed)
            self._table_width = term_entry_layout(config, signed=signed).size
        self._lane_shape = self._arithmetic.output_shape(output, scale_bits=SCALE_BITS)
        self._lane_width = Shape.cast(self._lane_shape).width
        self._lane_bytes = (self._lane_width + 7) // 8
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "status": Out(len(LedBit))})

    @property
    def rows(self) -> int:
        """Array rows."""
        return self._rows

    @property
    def cols(self) -> int:
        """Array columns."""
        return self._cols

    @property
    def config(self) -> MacConfig:
        """Operand format and accumulator."""
        return self._config

    @property
    def output(self) -> str:
        """Readout of the results."""
        return self._output

    @property
    def clk_freq(self) -> int:
        """Frequency of ``sync`` in Hz."""
        return self._clk_freq

    @property
    def baud(self) -> int:
        """UART rate."""
        return self._baud

    @property
    def divisor(self) -> int:
        """UART bit period in clock cycles."""
        return self._divisor

    @property
    def k_max(self) -> int:
        """Deepest K of a tile."""
        return self._k_max

    @property
    def timeout_cycles(self) -> int:
        """Inter-byte timeout inside a packet, in clock cycles."""
        return self._timeout_cycles

    @property
    def pipelined(self) -> bool:
        """The PE product terms and readouts are registered."""
        return self._pipelined

    @property
    def loadable(self) -> bool:
        """The PEs' term tables are rewritten by LOAD_TABLE."""
        return self._arithmetic.loadable

    @property
    def block_scaled(self) -> bool:
        """The operands carry block offsets."""
        return self._arithmetic.block_scaled

    @property
    def operand_width(self) -> int:
        """Bits of an operand lane (the PAL word, and its block offset when block-scaled)."""
        return self._operand_width

    @property
    def word_bytes(self) -> int:
        """Bytes per operand lane on the wire."""
        return self._word_bytes

    @property
    def table_entries(self) -> int:
        """Entries of the loadable term table (0 if not loadable)."""
        return self._table_entries

    @property
    def table_width(self) -> int:
        """Bits of an entry of the loadable term table (0 if not loadable)."""
        return self._table_width

    @property
    def lane_shape(self):
        """Shape of one result lane (``PALArithmetic.output_shape(output)``)."""
        return self._lane_shape

    @property
    def lane_width(self) -> int:
        """Bits of one result lane."""
        return self._lane_width

    @property
    def lane_bytes(self) -> int:
        """Bytes per result lane on the wire."""
        return self._lane_bytes

    def identify_payload(self) -> bytes:
        """Return the payload of this core's IDENTIFY reply."""
        return encode_identify(
            rows=self._rows,
            cols=self._cols,
            config=self._config,
            output=self._output,
            k_max=self._k_max,
            table_entries=self._table_entries,
            table_width=self._table_width,
            block_scaled=self.block_scaled,
        )

    def elaborate(self, platform):
        """Build the parts, connect them and sequence packets through them."""
        m = Module()
        p = self._parts(m)
        m.d.comb += [p.receiver.rx.eq(self.rx), self.tx.eq(p.uart_tx.tx)]
        wiring.connect(m, p.receiver.o, p.parser.i)
        wiring.connect(m, p.parser.load, p.buffers.load)
        wiring.connect(m, p.buffers.read, p.engine.operands)
        wiring.connect(m, p.engine.a, p.array.a)
        wiring.connect(m, p.engine.b, p.array.b)
        wiring.connect(m, p.array.c, p.engine.c)
        wiring.connect(m, p.reply.o, p.uart_tx.i)
        if p.table is not None:
            wiring.connect(m, p.parser.table, p.table.load)
            wiring.connect(m, p.table.table, p.array.table)
        p.last_error, p.error_led = Signal(4), Signal()
        self._status(m, p)
        # A LOAD header was accepted since the last RUN started: READ's result is stale.
        p.stale = Signal()
        m.d.comb += [
            p.reply.command.eq(p.parser.cmd),
            p.reply.read_flags.eq(Mux(p.stale, ReadFlag.STALE, 0)),
            p.reply.run_cycles.eq(p.engine.cycles),
            p.reply.read_data.eq(p.engine.read_data),
            p.engine.read_addr.eq(p.reply.read_addr),
        ]
        idle = self._control(m, p)
        loads = p.parser.is_load_a | p.parser.is_load_b | p.parser.is_load_table
        with m.If(p.parser.accepted & loads):
            m.d.sync += p.stale.eq(1)
        with m.If(p.start_run):
            m.d.sync += p.stale.eq(0)
        busy = ~idle | ~p.parser.idle | p.reply.busy | p.receiver.o.valid
        m.d.sync += [
            self.status[LedBit.BUSY].eq(busy),
            self.status[LedBit.ERROR].eq(p.error_led),
            self.status[LedBit.LOADED].eq(p.buffers.a_valid & p.buffers.b_valid),
            self.status[LedBit.RESULT].eq(p.engine.result_valid),
        ]
        return m

    def _parts(self, m: Module) -> SimpleNamespace:
        """Add the parts as submodules; return them (``table``: ``None`` unless loadable).

        ``table_valid`` and ``table_frac_bits`` are the table's state (constants unless
        loadable).
        """
        p = SimpleNamespace()
        m.submodules.receiver = p.receiver = Receiver(divisor=self._divisor, k_max=self._k_max)
        m.submodules.uart_tx = p.uart_tx = UARTTx(divisor=self._divisor)
        shapes = dict(rows=self._rows, cols=self._cols, k_max=self._k_max)
        width = self._operand_width
        length = table_length(self._table_entries, self._table_width) if self.loadable else None
        m.submodules.parser = p.parser = Parser(
            **shapes, width=width, timeout_cycles=self._timeout_cycles, table_length=length
        )
        m.submodules.buffers = p.buffers = OperandBuffers(**shapes, width=width)
        m.submodules.array = p.array = SystolicArray(
            arithmetic=self._arithmetic, rows=self._rows, cols=self._cols, output=self._output
        )
        m.submodules.engine = p.engine = RunEngine(array=p.array, k_max=self._k_max)
        m.submodules.reply = p.reply = Reply(
            identify=self.identify_payload(), read_length=p.engine.read_length
        )
        p.table, p.table_valid = None, Const(1)
        p.table_frac_bits = Const(self._config.fmt.frac_bits, 8)
        if self.loadable:
            signed = self._arithmetic.term == "signed_table"
            m.submodules.table = p.table = TableWriter(config=self._config, signed=signed)
            p.table_valid, p.table_frac_bits = p.table.valid, p.table.frac_bits
        return p

    def _status(self, m: Module, p: SimpleNamespace) -> None:
        """Drive the STATUS payload of the reply generator from the parts' state."""
        flags = {
            StatusFlag.BUSY: p.receiver.o.valid,  # more input is already queued
            StatusFlag.A_VALID: p.buffers.a_valid,
            StatusFlag.B_VALID: p.buffers.b_valid,
            StatusFlag.RESULT_VALID: p.engine.result_valid,
            StatusFlag.NAN: p.engine.nan,
            StatusFlag.SATURATED: p.engine.saturated,
            StatusFlag.LINE_ERROR: p.receiver.line_error,
            StatusFlag.TABLE_VALID: p.table_valid,
        }
        status_bytes = [
            Cat(flags[StatusFlag(1 << bit)] for bit in range(len(flags))),
            p.last_error,
            p.buffers.a_k[:8],
            p.buffers.a_k >> 8,
            p.buffers.b_k[:8],
            p.buffers.b_k >> 8,
            p.table_frac_bits,
        ]
        m.d.comb += [p.reply.status[i].eq(value) for i, value in enumerate(status_bytes)]

    def _control(self, m: Module, p: SimpleNamespace):
        """Sequence a packet: verdict, reply, execution; return "the control is idle".

        VERIFY registers the verdict on the parsed packet, PREPARE the reply it calls for;
        DISPATCH starts that reply once the reply generator is free and executes the command
        (a RUN starts the engine from a register, in the next cycle). Everything these states
        decide on is registered. The parser stops reading when a packet ends; every return to
        IDLE resumes it.
        """
        parser, reply = p.parser, p.reply
        p.verdict = Signal(4)  # 0: execute; else the code of the ERROR reply
        reply_now = Signal()  # DISPATCH starts the reply (all but a good RUN)
        p.start_run = Signal()  # the run engine's start, one cycle after DISPATCH
        m.d.sync += p.start_run.eq(0)
        m.d.comb += p.engine.start.eq(p.start_run)
        p.k_match = Signal()  # a_k == b_k (they change only at a LOAD's DISPATCH)
        m.d.sync += p.k_match.eq(p.buffers.a_k == p.buffers.b_k)
        with m.FSM(name="control") as control:
            with m.State("IDLE"), m.If(parser.done):
                m.next = "VERIFY"
            with m.State("VERIFY"):
                self._verify(m, p)
                m.next = "PREPARE"
            with m.State("PREPARE"):
                m.d.sync += [
                    reply_now.eq((p.verdict != 0) | ~parser.is_run),
                    reply.error.eq(p.verdict),
                    reply.code.eq(parser.cmd | REPLY_FLAG),
                ]
                with m.If(p.verdict != 0):
                    m.d.sync += [reply.kind.eq(ReplyKind.ERROR), reply.code.eq(ERROR_REPLY)]
                loads = parser.is_load_a | parser.is_load_b | parser.is_load_table
                for flag, kind in (
                    (parser.is_identify, ReplyKind.IDENTIFY),
                    (parser.is_status, ReplyKind.STATUS),
                    (loads, ReplyKind.EMPTY),
                    (parser.is_run, ReplyKind.RUN),  # sent when the run has finished
                    (parser.is_read, ReplyKind.READ),
                ):
                    with m.Elif(flag):
                        m.d.sync += reply.kind.eq(kind)
                m.next = "DISPATCH"
            with m.State("DISPATCH"), m.If(~reply.busy):
                with m.If(p.verdict != 0):
                    m.d.sync += [p.last_error.eq(p.verdict), p.error_led.eq(1)]
                with m.Else():
                    m.d.sync += p.error_led.eq(0)
                with m.If(reply_now):
                    m.d.comb += [reply.start.eq(1), parser.resume.eq(1)]
                    m.next = "IDLE"
                with m.If(p.verdict == 0):
                    self._execute(m, p)
                    with m.If(parser.is_run):
                        m.next = "RUN"
            with m.State("RUN"), m.If(p.engine.done):
                m.d.comb += [reply.start.eq(1), parser.resume.eq(1)]
                m.next = "IDLE"
        one_hot(control)
        return control.ongoing("IDLE")

    @staticmethod
    def _verify(m: Module, p: SimpleNamespace) -> None:
        """State VERIFY: the parser's error, else the execution errors of RUN and READ."""
        parser, buffers = p.parser, p.buffers
        m.d.sync += p.verdict.eq(parser.error)
        with m.If(parser.error == 0):
            with m.If(parser.is_run):
                with m.If(~(buffers.a_valid & buffers.b_valid)):
                    m.d.sync += p.verdict.eq(ErrorCode.NOT_LOADED)
                with m.Elif(~p.k_match):
                    m.d.sync += p.verdict.eq(ErrorCode.K_MISMATCH)
                with m.Elif(~p.table_valid):
                    m.d.sync += p.verdict.eq(ErrorCode.TABLE_INVALID)
            with m.If(parser.is_read & ~p.engine.result_valid):
                m.d.sync += p.verdict.eq(ErrorCode.NO_RESULT)

    @staticmethod
    def _execute(m: Module, p: SimpleNamespace) -> None:
        """In DISPATCH, a good packet: clear STATUS's flags, commit a LOAD, start a RUN."""
        parser = p.parser
        with m.If(parser.is_status):
            m.d.sync += p.last_error.eq(0)
            m.d.comb += p.receiver.clear_line_error.eq(1)
        with m.If(parser.is_load_a | parser.is_load_b):
            m.d.comb += p.buffers.commit.eq(1)
        if p.table is not None:
            with m.If(parser.is_load_table):
                m.d.comb += p.table.commit.eq(1)
        with m.If(parser.is_run):
            m.d.sync += p.start_run.eq(1)
