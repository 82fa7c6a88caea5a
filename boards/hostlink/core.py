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

from amaranth.hdl import Cat, Module, Shape, Signal
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
    StatusFlag,
    encode_identify,
    load_length,
)
from palhdl.boards.hostlink.receiver import Receiver
from palhdl.boards.hostlink.reply import Reply, ReplyKind
from palhdl.boards.hostlink.run import RunEngine
from palhdl.format import SCALE_BITS, MacConfig
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import MAX_DIM, SystolicArray
from palhdl.hdl.uart import MIN_DIVISOR, UARTTx
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
    :data:`~palhdl.boards.hostlink.receiver.RX_FIFO_DEPTH` bytes, a byte-wide packet parser
    with CRC-8 and an inter-byte timeout, operand buffers in one block RAM (row ``2 k``: column
    ``k`` of A, ``rows`` PAL words; row ``2 k + 1``: row ``k`` of B, ``cols`` words; scales in
    registers), the :class:`~palhdl.hdl.systolic.SystolicArray`
    (:class:`~palhdl.hdl.providers.PALArithmetic`, readout ``output``), a byte-wide result
    buffer (``rows x cols`` lanes of :attr:`lane_bytes` bytes, row-major; an SPRAM on an iCE40
    UltraPlus, else block RAM: :class:`~palhdl.boards.hostlink.run.ResultMemory`) and a reply
    generator. The protocol is in ``docs/host-link.md``.

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
        UART rate; ``clk_freq / baud`` rounds to the bit period, which must be at least
        ``MIN_DIVISOR`` cycles and within 2 % of the requested rate.
    k_max : int
        Deepest K a tile may have, 1..4096 (a LOAD packet must also stay below 65536 bytes).
    timeout_cycles : int, optional
        Inter-byte timeout inside a packet, in clock cycles; at least 20 bit periods (two
        characters). Default 10 ms worth of cycles.
    pipelined : bool
        Register the PE product terms and readout converters (``PALArithmetic(pipelined=)``).
    term : str
        The PEs' product term, ``PALArithmetic(term=)`` (default ``"auto"``).
    table_ports : int
        PEs sharing a product-term table, ``PALArithmetic(table_ports=)`` (default 1).

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
            config=config, pipelined=pipelined, term=term, table_ports=table_ports
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
        if abs(clk_freq / divisor - baud) > MAX_BAUD_ERROR * baud:
            raise ValueError(
                f"baud {baud} is not reachable from clk_freq {clk_freq}: the nearest divisor "
                f"{divisor} gives {clk_freq / divisor:.0f} baud (more than "
                f"{MAX_BAUD_ERROR:.0%} off)"
            )
        check_int("k_max", k_max, 1, MAX_K)
        longest = load_length(max(rows, cols), k_max, (config.fmt.width + 7) // 8)
        if longest > 0xFFFF:
            raise ValueError(
                f"k_max {k_max} is too large for a {rows} x {cols} array of "
                f"{config.fmt.width}-bit words: a LOAD packet would be {longest} bytes "
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
        self._word_bytes = (config.fmt.width + 7) // 8
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
    def word_bytes(self) -> int:
        """Bytes per PAL operand word on the wire."""
        return self._word_bytes

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
        )

    def elaborate(self, platform):
        """Build the parts, connect them and sequence packets through them."""
        m = Module()
        m.submodules.receiver = receiver = Receiver(divisor=self._divisor, k_max=self._k_max)
        m.submodules.uart_tx = uart_tx = UARTTx(divisor=self._divisor)
        shapes = dict(rows=self._rows, cols=self._cols, k_max=self._k_max)
        width = self._config.fmt.width
        m.submodules.parser = parser = Parser(
            **shapes, width=width, timeout_cycles=self._timeout_cycles
        )
        m.submodules.buffers = buffers = OperandBuffers(**shapes, width=width)
        m.submodules.array = array = SystolicArray(
            arithmetic=self._arithmetic,
            rows=self._rows,
            cols=self._cols,
            output=self._output,
        )
        m.submodules.engine = engine = RunEngine(array=array, k_max=self._k_max)
        m.submodules.reply = reply = Reply(
            identify=self.identify_payload(), read_length=engine.read_length
        )
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, receiver.o, parser.i)
        wiring.connect(m, parser.load, buffers.load)
        wiring.connect(m, buffers.read, engine.operands)
        wiring.connect(m, engine.a, array.a)
        wiring.connect(m, engine.b, array.b)
        wiring.connect(m, array.c, engine.c)
        wiring.connect(m, reply.o, uart_tx.i)
        flags = {
            StatusFlag.BUSY: receiver.o.valid,  # more input is already queued
            StatusFlag.A_VALID: buffers.a_valid,
            StatusFlag.B_VALID: buffers.b_valid,
            StatusFlag.RESULT_VALID: engine.result_valid,
            StatusFlag.NAN: engine.nan,
            StatusFlag.SATURATED: engine.saturated,
            StatusFlag.LINE_ERROR: receiver.line_error,
        }
        last_error = Signal(4)
        status_bytes = [
            Cat(flags[StatusFlag(1 << bit)] for bit in range(len(flags))),
            last_error,
            buffers.a_k[:8],
            buffers.a_k >> 8,
            buffers.b_k[:8],
            buffers.b_k >> 8,
        ]
        m.d.comb += [reply.status[i].eq(value) for i, value in enumerate(status_bytes)]
        m.d.comb += [
            reply.command.eq(parser.cmd),
            reply.run_cycles.eq(engine.cycles),
            reply.read_data.eq(engine.read_data),
            engine.read_addr.eq(reply.read_addr),
        ]
        error_led = Signal()
        idle = self._control(m, receiver, parser, buffers, engine, reply, last_error, error_led)
        m.d.sync += [
            self.status[LedBit.BUSY].eq(~idle | ~parser.idle | reply.busy | receiver.o.valid),
            self.status[LedBit.ERROR].eq(error_led),
            self.status[LedBit.LOADED].eq(buffers.a_valid & buffers.b_valid),
            self.status[LedBit.RESULT].eq(engine.result_valid),
        ]
        return m

    def _control(self, m, receiver, parser, buffers, engine, reply, last_error, error_led):
        """Sequence a packet: verdict, reply, execution; return "the control is idle".

        VERIFY registers the verdict on the parsed packet, PREPARE the reply it calls for;
        DISPATCH starts that reply once the reply generator is free and executes the command
        (a RUN starts the engine from a register, in the next cycle). Everything these states
        decide on is registered. The parser stops reading when a packet ends; every return to
        IDLE resumes it.
        """
        verdict = Signal(4)  # 0: execute; else the code of the ERROR reply
        reply_now = Signal()  # DISPATCH starts the reply (all but a good RUN)
        start_run = Signal()  # the run engine's start, one cycle after DISPATCH
        m.d.sync += start_run.eq(0)
        m.d.comb += engine.start.eq(start_run)
        k_match = Signal()  # a_k == b_k (they change only at a LOAD's DISPATCH)
        m.d.sync += k_match.eq(buffers.a_k == buffers.b_k)
        with m.FSM(name="control") as control:
            with m.State("IDLE"), m.If(parser.done):
                m.next = "VERIFY"
            with m.State("VERIFY"):
                m.d.sync += verdict.eq(parser.error)
                with m.If(parser.error == 0):
                    with m.If(parser.is_run):
                        with m.If(~(buffers.a_valid & buffers.b_valid)):
                            m.d.sync += verdict.eq(ErrorCode.NOT_LOADED)
                        with m.Elif(~k_match):
                            m.d.sync += verdict.eq(ErrorCode.K_MISMATCH)
                    with m.If(parser.is_read & ~engine.result_valid):
                        m.d.sync += verdict.eq(ErrorCode.NO_RESULT)
                m.next = "PREPARE"
            with m.State("PREPARE"):
                m.d.sync += [
                    reply_now.eq((verdict != 0) | ~parser.is_run),
                    reply.error.eq(verdict),
                    reply.code.eq(parser.cmd | REPLY_FLAG),
                ]
                with m.If(verdict != 0):
                    m.d.sync += [reply.kind.eq(ReplyKind.ERROR), reply.code.eq(ERROR_REPLY)]
                for flag, kind in (
                    (parser.is_identify, ReplyKind.IDENTIFY),
                    (parser.is_status, ReplyKind.STATUS),
                    (parser.is_load_a | parser.is_load_b, ReplyKind.EMPTY),
                    (parser.is_run, ReplyKind.RUN),  # sent when the run has finished
                    (parser.is_read, ReplyKind.READ),
                ):
                    with m.Elif(flag):
                        m.d.sync += reply.kind.eq(kind)
                m.next = "DISPATCH"
            with m.State("DISPATCH"), m.If(~reply.busy):
                with m.If(verdict != 0):
                    m.d.sync += [last_error.eq(verdict), error_led.eq(1)]
                with m.Else():
                    m.d.sync += error_led.eq(0)
                with m.If(reply_now):
                    m.d.comb += [reply.start.eq(1), parser.resume.eq(1)]
                    m.next = "IDLE"
                with m.If(verdict == 0):
                    with m.If(parser.is_status):
                        m.d.sync += last_error.eq(0)
                        m.d.comb += receiver.clear_line_error.eq(1)
                    with m.If(parser.is_load_a | parser.is_load_b):
                        m.d.comb += buffers.commit.eq(1)
                    with m.If(parser.is_run):
                        m.d.sync += start_run.eq(1)
                        m.next = "RUN"
            with m.State("RUN"), m.If(engine.done):
                m.d.comb += [reply.start.eq(1), parser.resume.eq(1)]
                m.next = "IDLE"
        one_hot(control)
        return control.ongoing("IDLE")
