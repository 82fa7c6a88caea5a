"""The host link: a PAL systolic array behind a UART packet protocol.

:class:`HostLinkCore` is the gateware a board top level instantiates (UART pins in, UART pins
out, a few status LEDs); :mod:`palhdl.boards.hostlink.driver` is the matching host driver.
The protocol (framing, CRC, commands, replies, error codes) is specified in
``docs/host-link.md``; the
constants and :func:`crc8` here are its single definition, shared by gateware and driver.
:class:`SimulatedSerial` runs the core in Amaranth's simulator behind a pyserial-like object,
so the real driver can be tested bit by bit on the UART pins.
"""

from __future__ import annotations

import collections
import enum
import functools
import itertools
import math
import operator
from dataclasses import dataclass

from amaranth.hdl import Cat, ClockDomain, Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from palhdl.format import MacConfig
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import MAX_DIM, SystolicArray
from palhdl.hdl.uart import MIN_DIVISOR, UARTRx, UARTTx
from palhdl.validate import check_int

__all__ = [
    "ERROR_LENGTH",
    "ERROR_REPLY",
    "IDENTIFY_LENGTH",
    "IDENTIFY_WRAPPING",
    "MAGIC",
    "OUTPUT_MODES",
    "REPLY_FLAG",
    "RUN_LENGTH",
    "RX_FIFO_DEPTH",
    "SCALE_BITS",
    "STATUS_LENGTH",
    "SYNC",
    "VERSION",
    "Command",
    "ErrorCode",
    "HostLinkCore",
    "LedBit",
    "SimulatedSerial",
    "StatusFlag",
    "crc8",
    "frame",
    "load_length",
]

SYNC = 0xA5
#: Protocol version in the IDENTIFY reply; 2 added ``term_bits`` and the flags byte.
VERSION = 2
MAGIC = b"PALH"
#: A successful reply carries the command code with this bit set.
REPLY_FLAG = 0x80
#: Reply code of an error reply (payload: error code, received command byte).
ERROR_REPLY = 0xFF
#: Readout modes in the order of their IDENTIFY code (0, 1, 2).
OUTPUT_MODES = ("raw", "float32", "pal")
#: Width of the signed per-row / per-column scales (two bytes on the wire).
SCALE_BITS = 16
#: Bytes the receiver buffers while the device executes or answers the previous packet.
RX_FIFO_DEPTH = 64
IDENTIFY_LENGTH = 18
#: Bit of the IDENTIFY flags byte: the accumulator wraps (``MacConfig.saturate`` is False).
#: The other bits are 0.
IDENTIFY_WRAPPING = 0x01
STATUS_LENGTH = 6
RUN_LENGTH = 2
ERROR_LENGTH = 2
MAX_K = 4096
MAX_TIMEOUT_CYCLES = 1 << 32
#: Largest relative difference between ``baud`` and the rate the integer divisor produces.
MAX_BAUD_ERROR = 0.02


class Command(enum.IntEnum):
    """Command codes (byte 1 of a packet)."""

    IDENTIFY = 0x01
    STATUS = 0x02
    LOAD_A = 0x10
    LOAD_B = 0x11
    RUN = 0x20
    READ = 0x21


class ErrorCode(enum.IntEnum):
    """First payload byte of an ERROR reply; see ``docs/host-link.md`` for when each is sent."""

    CHECKSUM = 1
    TIMEOUT = 2
    UNKNOWN_COMMAND = 3
    LENGTH = 4
    K_RANGE = 5
    NOT_LOADED = 6
    K_MISMATCH = 7
    NO_RESULT = 8
    LINE = 9


class StatusFlag(enum.IntFlag):
    """Bits of the first byte of a STATUS reply."""

    BUSY = 0x01
    A_VALID = 0x02
    B_VALID = 0x04
    RESULT_VALID = 0x08
    NAN = 0x10
    SATURATED = 0x20
    LINE_ERROR = 0x40


class LedBit(enum.IntEnum):
    """Bit positions of :attr:`HostLinkCore.status` (for LEDs)."""

    BUSY = 0
    ERROR = 1
    LOADED = 2
    RESULT = 3


_CRC8_POLY = 0x07


def crc8(data: bytes | bytearray) -> int:
    """CRC-8/SMBUS of ``data``: polynomial 0x07, initial value 0, no reflection, no final XOR.
    The check value of ``b"123456789"`` is 0xF4.
    """
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC8_POLY if crc & 0x80 else crc << 1) & 0xFF
    return crc


def frame(code: int, payload: bytes = b"") -> bytes:
    """A packet or reply: ``SYNC | code | LEN (2 bytes LE) | payload | CRC-8`` where the CRC
    covers ``code``, ``LEN`` and ``payload``.
    """
    if not 0 <= code <= 0xFF:
        raise ValueError(f"code must be a byte (0..255), not {code}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload must be at most 65535 bytes, not {len(payload)}")
    body = bytes([code]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([SYNC]) + body + bytes([crc8(body)])


def load_length(lanes: int, k: int, word_bytes: int) -> int:
    """Payload length of a LOAD_A (``lanes = rows``) or LOAD_B (``lanes = cols``) packet."""
    return 2 + lanes * k * word_bytes + 2 * lanes


#: A receive FIFO entry: the byte, its line flags (a framing error; input dropped because the
#: FIFO was full before it) and comparisons made when it is written (16 bits: one block RAM).
_RX_ENTRY = data.StructLayout(
    {
        "byte": 8,
        "framing_error": 1,
        "dropped_before": 1,
        "is_sync": 1,  # SYNC without a framing error
        "is_zero": 1,
        "is_one": 1,
        # Against the bytes of k_max, for the K range check of a LOAD:
        "above_k_low": 1,  # byte > k_max % 256
        "is_k_high": 1,  # byte == k_max // 256
        "above_k_high": 1,  # byte > k_max // 256
    }
)


def _one_hot(fsm) -> None:
    """Ask the synthesiser to re-encode ``fsm``'s state one-hot: a state test is then one
    flip-flop, not a comparison (Yosys ``fsm_encoding``).
    """
    fsm.state.attrs["fsm_encoding"] = "one-hot"


def _crc8_step(crc, byte):
    """Amaranth expression of the CRC register after ``byte``: the update is linear over GF(2)
    in ``crc ^ byte``, so each output bit XORs the inputs whose unit vector sets it.
    """
    x = crc ^ byte
    bits = []
    for out in range(8):
        terms = [x[j] for j in range(8) if (crc8(bytes([1 << j])) >> out) & 1]
        bits.append(functools.reduce(operator.xor, terms, Const(0, 1)))
    return Cat(*bits)


class HostLinkCore(wiring.Component):
    """A ``rows x cols`` PAL systolic array served over a UART (8N1) packet protocol.

    Ports: ``rx`` (``In(1)``, from the host, idle high), ``tx`` (``Out(1)``, to the host, idle
    high) and ``status`` (``Out(4)``, for LEDs; bit positions in :class:`LedBit`: busy, last
    reply was an error, A and B loaded, result available). Everything runs in ``sync``.

    Inside: UART receiver and transmitter (:mod:`palhdl.hdl.uart`), a receive FIFO of
    :data:`RX_FIFO_DEPTH` bytes, a byte-wide packet parser with CRC-8 and an inter-byte timeout,
    operand buffers in block RAM (A: ``k_max`` rows of ``rows`` PAL words, B: ``k_max`` rows of
    ``cols`` words; scales in registers), the :class:`~palhdl.hdl.systolic.SystolicArray`
    (:class:`~palhdl.hdl.providers.PALArithmetic`, readout ``output``), a byte-wide result
    buffer in block RAM (``rows x cols`` lanes of :attr:`lane_bytes` bytes, row-major) and a
    reply generator. The protocol is in
    ``docs/host-link.md``.

    Every decision of the link's control is taken from registers (decoded command flags,
    comparisons of counters with their limits made a step ahead, comparisons of received bytes
    made when they enter the FIFO, registered memory writes and array handshakes), so the link
    adds at most a few LUT levels to any path. Its state machines carry Yosys'
    ``fsm_encoding = "one-hot"``: Yosys then ignores their initial values, so ``sync`` must be
    reset after configuration (the board tops of :mod:`palhdl.boards.platforms` hold it in
    reset until the PLL has locked).

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

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

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
    ):
        for name, value in (("rows", rows), ("cols", cols)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
                raise ValueError(f"{name} must be an integer in [1, {MAX_DIM}], not {value!r}")
        arithmetic = PALArithmetic(config=config, pipelined=pipelined)
        if output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {OUTPUT_MODES}, not {output!r}")
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
        self._word_bytes = (config.fmt.width + 7) // 8
        longest = load_length(max(rows, cols), k_max, self._word_bytes)
        if longest > 0xFFFF:
            raise ValueError(
                f"k_max {k_max} is too large for a {rows} x {cols} array of "
                f"{config.fmt.width}-bit words: a LOAD packet would be {longest} bytes "
                f"(at most 65535)"
            )
        lane_shape = arithmetic.output_shape(output, scale_bits=SCALE_BITS)
        self._lane_width = Shape.cast(lane_shape).width
        self._lane_bytes = (self._lane_width + 7) // 8
        if timeout_cycles is None:
            timeout_cycles = max(clk_freq // 100, 20 * divisor)
        check_int("timeout_cycles", timeout_cycles, 20 * divisor, MAX_TIMEOUT_CYCLES)
        self._rows = rows
        self._cols = cols
        self._config = config
        self._arithmetic = arithmetic
        self._output = output
        self._lane_shape = lane_shape
        self._clk_freq = clk_freq
        self._baud = baud
        self._divisor = divisor
        self._k_max = k_max
        self._timeout_cycles = timeout_cycles
        self._pipelined = pipelined
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "status": Out(len(LedBit))})

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def config(self) -> MacConfig:
        return self._config

    @property
    def output(self) -> str:
        return self._output

    @property
    def clk_freq(self) -> int:
        return self._clk_freq

    @property
    def baud(self) -> int:
        return self._baud

    @property
    def divisor(self) -> int:
        """UART bit period in clock cycles."""
        return self._divisor

    @property
    def k_max(self) -> int:
        return self._k_max

    @property
    def timeout_cycles(self) -> int:
        return self._timeout_cycles

    @property
    def pipelined(self) -> bool:
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
        """The payload of this core's IDENTIFY reply."""
        config = self._config
        return (
            MAGIC
            + bytes(
                [
                    VERSION,
                    self._rows,
                    self._cols,
                    config.fmt.int_bits,
                    config.fmt.frac_bits,
                    config.mantissa_bits,
                    config.acc_bits,
                ]
            )
            + config.acc_frac_bits.to_bytes(2, "little", signed=True)
            + bytes([OUTPUT_MODES.index(self._output)])
            + self._k_max.to_bytes(2, "little")
            + bytes([config.term_bits, 0 if config.saturate else IDENTIFY_WRAPPING])
        )

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._rows, self._cols

        m.submodules.uart_rx = uart_rx = UARTRx(divisor=self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(divisor=self._divisor)
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]

        # Receive FIFO entries (_RX_ENTRY) carry the byte, its line flags and comparisons the
        # parser needs, made here where there is time.
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=_RX_ENTRY.size, depth=RX_FIFO_DEPTH)
        dropped = Signal()
        line_error = Signal()  # sticky until a STATUS reply reports it
        received = uart_rx.o.payload
        entry = Signal(_RX_ENTRY)
        m.d.comb += [
            entry.byte.eq(received.data),
            entry.framing_error.eq(received.error),
            entry.dropped_before.eq(dropped),
            entry.is_sync.eq((received.data == SYNC) & ~received.error),
            entry.is_zero.eq(received.data == 0),
            entry.is_one.eq(received.data == 1),
            entry.above_k_low.eq(received.data > self._k_max % 256),
            entry.is_k_high.eq(received.data == self._k_max // 256),
            entry.above_k_high.eq(received.data > self._k_max // 256),
            fifo.w_data.eq(entry),
            fifo.w_en.eq(uart_rx.o.valid),
        ]
        with m.If(uart_rx.o.valid):
            m.d.sync += dropped.eq(~fifo.w_rdy)
            with m.If(uart_rx.o.payload.error | ~fifo.w_rdy):
                m.d.sync += line_error.eq(1)

        m.submodules.array = array = SystolicArray(
            arithmetic=self._arithmetic,
            rows=rows,
            cols=cols,
            output=self._output,
            scale_bits=SCALE_BITS,
        )
        buffers = _Buffers(m, self)
        parser = _Parser(m, self, fifo, buffers)
        result_nan, result_sat = Signal(), Signal()
        run_cycles = Signal(16)
        error_led = Signal()
        last_error = Signal(4)
        reply = _Reply(m)

        # --- run engine: beat k reads row k of both operand memories ------------------------
        k_run = Signal(range(self._k_max))
        beat_last = Signal()  # k_run is the last K step (registered in RUN_FETCH)
        m.d.comb += [
            buffers.read_a.addr.eq(k_run),
            buffers.read_b.addr.eq(k_run),
            array.a.payload.data.as_value().eq(buffers.read_a.data),
            array.b.payload.data.as_value().eq(buffers.read_b.data),
            array.a.payload.last.eq(beat_last),
        ]
        # A result row is taken from the array into a shift register of whole-byte lanes and
        # written to the byte-wide result memory one byte per cycle (the array waits).
        row_bytes = cols * self._lane_bytes
        rows_taken = Signal(range(rows))
        all_taken = Signal()  # rows_taken has reached rows
        row_shift = Signal(8 * row_bytes)
        bytes_left = Signal(range(row_bytes + 1))
        storing = Signal()  # bytes_left != 0
        # array.c.ready, registered: in RUN_COLLECT with no row being stored and rows to take.
        collect = Signal()
        m.d.comb += array.c.ready.eq(collect)
        m.d.comb += [
            buffers.write_c.data.eq(row_shift[:8]),
            buffers.write_c.en.eq(storing),
        ]
        with m.If(storing):
            m.d.sync += [
                row_shift.eq(row_shift >> 8),
                bytes_left.eq(bytes_left - 1),
                storing.eq(bytes_left != 1),
                buffers.write_c.addr.eq(buffers.write_c.addr + 1),
            ]
        padded_row = Cat(
            Cat(Value.cast(array.c.payload.data[j]), Const(0, 8 * self._lane_bytes))[
                : 8 * self._lane_bytes
            ]
            for j in range(cols)
        )
        m.d.comb += [array.a.payload.scale[i].eq(buffers.a_scale(i)) for i in range(rows)]
        m.d.comb += [array.b.payload.scale[j].eq(buffers.b_scale(j)) for j in range(cols)]
        flags = [self._lane_flags(array.c.payload.data[j]) for j in range(cols)]
        lane_nan = Cat(nan for nan, _ in flags).any()
        lane_sat = Cat(sat for _, sat in flags).any()

        # VERIFY registers the verdict on the parsed packet, PREPARE the reply it calls for;
        # DISPATCH starts that reply once the reply generator is free, and executes the
        # command. Everything these states decide on is registered.
        verdict = Signal(4)  # 0: execute; else the code of the ERROR reply
        reply_now = Signal()  # DISPATCH starts the reply (all but a good RUN)
        k_match = Signal()  # a_k == b_k (they change only at a LOAD's DISPATCH)
        m.d.sync += k_match.eq(buffers.a_k == buffers.b_k)
        with m.FSM(name="control") as control:
            # The parser stops reading when a packet ends (parser.enable is cleared); every
            # return to IDLE sets parser.enable again.
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
                    with m.If(parser.is_read & ~buffers.c_valid):
                        m.d.sync += verdict.eq(ErrorCode.NO_RESULT)
                m.next = "PREPARE"
            with m.State("PREPARE"):
                m.d.sync += [
                    reply_now.eq((verdict != 0) | ~parser.is_run),
                    reply.error.eq(verdict),
                    reply.code.eq(parser.cmd | REPLY_FLAG),
                ]
                with m.If(verdict != 0):
                    m.d.sync += [reply.kind.eq(_Reply.ERROR), reply.code.eq(ERROR_REPLY)]
                for flag, kind in (
                    (parser.is_identify, _Reply.IDENTIFY),
                    (parser.is_status, _Reply.STATUS),
                    (parser.is_load_a | parser.is_load_b, _Reply.EMPTY),
                    (parser.is_run, _Reply.RUN),  # sent when the run has finished
                    (parser.is_read, _Reply.READ),
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
                    m.d.comb += reply.start.eq(1)
                    m.d.sync += parser.enable.eq(1)
                    m.next = "IDLE"
                with m.If(verdict == 0):
                    with m.If(parser.is_status):
                        m.d.sync += [last_error.eq(0), line_error.eq(0)]
                    with m.If(parser.is_load_a | parser.is_load_b):
                        m.d.comb += buffers.commit.eq(1)
                    with m.If(parser.is_run):
                        m.d.sync += [
                            k_run.eq(0),
                            rows_taken.eq(0),
                            all_taken.eq(0),
                            buffers.write_c.addr.eq(0),
                            buffers.c_valid.eq(0),
                            result_nan.eq(0),
                            result_sat.eq(0),
                            run_cycles.eq(0),
                        ]
                        m.next = "RUN_FETCH"
            with m.State("RUN_FETCH"):  # the operand memories read row k_run
                m.d.sync += beat_last.eq(k_run == buffers.a_k - 1)
                m.next = "RUN_BEAT"
            with m.State("RUN_BEAT"):
                m.d.comb += [array.a.valid.eq(1), array.b.valid.eq(1)]
                with m.If(array.a.ready):
                    with m.If(array.a.payload.last):
                        m.d.sync += collect.eq(1)
                        m.next = "RUN_COLLECT"
                    with m.Else():
                        m.d.sync += k_run.eq(k_run + 1)
                        m.next = "RUN_FETCH"
            with m.State("RUN_COLLECT"):
                with m.If(storing):  # the previous row is still going into the result memory
                    m.d.sync += collect.eq((bytes_left == 1) & ~all_taken)
                with m.Elif(all_taken):
                    m.d.sync += buffers.c_valid.eq(1)
                    m.d.comb += reply.start.eq(1)
                    m.d.sync += parser.enable.eq(1)
                    m.next = "IDLE"

        # Taking a row: `collect` implies RUN_COLLECT, so no state decoding here.
        with m.If(array.c.valid & collect):
            m.d.sync += [
                collect.eq(0),
                row_shift.eq(padded_row),
                bytes_left.eq(row_bytes),
                storing.eq(1),
                rows_taken.eq(rows_taken + 1),
                all_taken.eq(rows_taken == rows - 1),
                result_nan.eq(result_nan | lane_nan),
                result_sat.eq(result_sat | lane_sat),
            ]
        _one_hot(control)
        waiting = ("IDLE", "VERIFY", "PREPARE", "DISPATCH")
        running = ~Cat(control.ongoing(state) for state in waiting).any()
        with m.If(running & (run_cycles != 0xFFFF)):
            m.d.sync += run_cycles.eq(run_cycles + 1)

        status_bytes = [
            Cat(
                fifo.r_rdy,
                buffers.a_valid,
                buffers.b_valid,
                buffers.c_valid,
                result_nan,
                result_sat,
                line_error,
            ),
            last_error,
            buffers.a_k[:8],
            buffers.a_k >> 8,
            buffers.b_k[:8],
            buffers.b_k >> 8,
        ]
        reply.elaborate(
            self,
            uart_tx=uart_tx,
            error_cmd=parser.cmd,
            status_bytes=status_bytes,
            run_bytes=[run_cycles[:8], run_cycles[8:]],
            read_c=buffers.read_c,
        )

        m.d.sync += [
            self.status[LedBit.BUSY].eq(
                ~control.ongoing("IDLE") | ~parser.idle | reply.busy | fifo.r_rdy
            ),
            self.status[LedBit.ERROR].eq(error_led),
            self.status[LedBit.LOADED].eq(buffers.a_valid & buffers.b_valid),
            self.status[LedBit.RESULT].eq(buffers.c_valid),
        ]
        return m

    def _lane_flags(self, lane):
        """``(nan, saturated)`` of one result lane in this core's readout mode."""
        if self._output == "raw":
            return lane.nan, lane.overflow
        if self._output == "float32":
            exponent_max = lane[23:31] == 0xFF
            return exponent_max & (lane[:23] != 0), exponent_max & (lane[:23] == 0)
        return lane.is_nan(), lane.mag == self._config.fmt.mag_mask


class _Buffers:
    """Operand memories A (row k: column k of the A tile) and B (row k: row k of the B tile),
    their scale registers and valid flags, and the byte-wide result memory (READ order).
    """

    def __init__(self, m: Module, core: HostLinkCore):
        rows, cols, k_max = core.rows, core.cols, core.k_max
        width = core.config.fmt.width
        mem_a = Memory(shape=rows * width, depth=k_max, init=[])
        mem_b = Memory(shape=cols * width, depth=k_max, init=[])
        # Byte-wide, so any readout fits one or two block RAMs; forced into block RAM even
        # when small (else the synthesiser would build it from flip-flops and a read mux).
        mem_c = Memory(
            shape=8, depth=rows * cols * core.lane_bytes, init=[], attrs={"ram_style": "block"}
        )
        m.submodules.mem_a, m.submodules.mem_b, m.submodules.mem_c = mem_a, mem_b, mem_c
        self.write_a = mem_a.write_port(granularity=width)
        self.write_b = mem_b.write_port(granularity=width)
        self.write_c = mem_c.write_port()
        self.read_a = mem_a.read_port()
        self.read_b = mem_b.read_port()
        self.read_c = mem_c.read_port()
        self.a_scale_bytes = [Signal(8, name=f"a_scale_byte{i}") for i in range(2 * rows)]
        self.b_scale_bytes = [Signal(8, name=f"b_scale_byte{i}") for i in range(2 * cols)]
        self.a_valid, self.b_valid, self.c_valid = Signal(), Signal(), Signal()
        self.a_k = Signal(range(k_max + 1))
        self.b_k = Signal(range(k_max + 1))
        self.commit = Signal()  # mark the buffer of the parsed LOAD valid

    def a_scale(self, i: int):
        return Cat(self.a_scale_bytes[2 * i], self.a_scale_bytes[2 * i + 1])

    def b_scale(self, j: int):
        return Cat(self.b_scale_bytes[2 * j], self.b_scale_bytes[2 * j + 1])


class _Parser:
    """Byte-wide packet parser: reads the receive FIFO while ``enable`` (a register: the parser
    clears it when a packet ends, the control sets it when it is ready for the next one);
    ``done`` pulses for one cycle when a packet has ended (CRC byte or timeout) with ``cmd``,
    its decoded flags (``is_identify`` .. ``is_read``, registered with ``cmd``), ``error``
    (0 = good) and, for a LOAD, its K. LOAD words and scales go into the operand memories and
    scale registers through one register stage; the target buffer is invalidated when the LOAD
    header arrives and made valid only by ``commit``.

    Every decision on a byte uses that byte and registers only: comparisons of counters with
    their limits are registered one step ahead (``final``, ``inner_last``, ``outer_last``,
    ``scale_last``, ``expired``), and the error is kept as separate flags merged by priority in
    ``error``.
    """

    def __init__(self, m: Module, core: HostLinkCore, fifo, buffers: _Buffers):
        rows, cols, k_max = core.rows, core.cols, core.k_max
        width, word_bytes = core.config.fmt.width, core.word_bytes
        self.enable = Signal(init=1)
        self.done = Signal()
        self.cmd = Signal(8)
        self.error = Signal(4)
        self.idle = Signal()
        self.is_identify = Signal()
        self.is_status = Signal()
        self.is_load_a = Signal()
        self.is_load_b = Signal()
        self.is_run = Signal()
        self.is_read = Signal()
        decoded = {
            Command.IDENTIFY: self.is_identify,
            Command.STATUS: self.is_status,
            Command.LOAD_A: self.is_load_a,
            Command.LOAD_B: self.is_load_b,
            Command.RUN: self.is_run,
            Command.READ: self.is_read,
        }

        entry = _RX_ENTRY(fifo.r_data)
        byte, byte_zero, byte_one = entry.byte, entry.is_zero, entry.is_one
        bad = entry.framing_error | entry.dropped_before
        got = Signal()
        m.d.comb += [fifo.r_en.eq(self.enable), got.eq(fifo.r_rdy & self.enable)]
        cmd = self.cmd
        length_low_zero, length_low_one = Signal(), Signal()
        length_low = Signal(8)
        remaining = Signal(16)
        final = Signal()  # remaining == 1: the next byte is the last of the payload
        crc = Signal(8)
        timeout = core.timeout_cycles
        # Cycles without a byte inside a packet; expired = (timer == timeout - 1), registered.
        timer = Signal(range(timeout))
        expired = Signal()
        timed_out = Signal()

        # One flag per error, merged by priority: TIMEOUT, LINE, CHECKSUM, then the first of
        # UNKNOWN_COMMAND / K_RANGE / LENGTH found (at most one of these is set: finding one
        # stops the checks).
        timeout_hit, line_bad, crc_bad = Signal(), Signal(), Signal()
        unknown_command, k_bad, length_bad = Signal(), Signal(), Signal()
        by_priority = [
            (timeout_hit, ErrorCode.TIMEOUT),
            (line_bad, ErrorCode.LINE),
            (crc_bad, ErrorCode.CHECKSUM),
            (unknown_command, ErrorCode.UNKNOWN_COMMAND),
            (k_bad, ErrorCode.K_RANGE),
            (length_bad, ErrorCode.LENGTH),
        ]
        fault = unknown_command | k_bad | length_bad
        merged = Const(0, 4)
        for flag, code in reversed(by_priority):
            merged = Mux(flag, code, merged)
        m.d.comb += self.error.eq(merged)

        is_a = self.is_load_a
        is_load = Signal()  # LOAD_A or LOAD_B
        is_plain = Signal()  # a command without payload

        # LOAD payload: K (2 bytes LE), the words (A: lane-major, k inner; B: k-major, lane
        # inner), then one 2-byte scale per lane. inner/outer walk the words. The length is
        # checked by where the payload ends: exactly after the last scale.
        k_low_zero, k_low_one, k_low_above = Signal(), Signal(), Signal()
        k_low = Signal(8)
        k = Signal(range(k_max + 1))
        k_last = Signal(range(k_max))  # k - 1
        k_one = Signal()  # k == 1
        # K low byte, K high byte, words, scales, complete
        phase = Signal(range(5), attrs={"fsm_encoding": "one-hot"})
        inner = Signal(range(max(k_max, rows, cols)))
        outer = Signal(range(max(k_max, rows, cols)))
        inner_last, outer_last = Signal(), Signal()  # inner / outer is at its limit
        inner_limit = Mux(is_a, k_last, cols - 1)
        outer_limit = Mux(is_a, rows - 1, k_last)
        byte_in_word = Signal(range(word_bytes))
        word_low = Signal(8 * (word_bytes - 1))
        scale_index = Signal(range(2 * max(rows, cols)))
        lane = Mux(is_a, outer, inner)
        scale_last = Signal()  # scale_index is at its limit
        scale_limit = Mux(is_a, 2 * rows - 1, 2 * cols - 1)
        # A LOAD payload byte: `walking` steps through the payload; once an error is found the
        # bytes are no longer written (`loading`) and no further error is looked for.
        walking = Signal()
        loading = Signal()
        m.d.comb += loading.eq(walking & ~fault)
        write_word = loading & (phase == 2) & (byte_in_word == word_bytes - 1)
        write_scale = loading & (phase == 3)

        # The write stage: registered address, word, per-lane enables and scale strobes.
        word = Signal(width)
        address = Signal(range(k_max))
        write_a_en, write_b_en = Signal(rows), Signal(cols)
        scale_byte = Signal(8)
        scale_a_en, scale_b_en = Signal(2 * rows), Signal(2 * cols)
        m.d.sync += [
            word.eq(Cat(word_low, byte)[:width]),
            address.eq(Mux(is_a, inner, outer)),
            write_a_en.eq(Mux(write_word & is_a, Cat(lane == i for i in range(rows)), 0)),
            write_b_en.eq(Mux(write_word & ~is_a, Cat(lane == j for j in range(cols)), 0)),
            scale_byte.eq(byte),
            scale_a_en.eq(
                Mux(write_scale & is_a, Cat(scale_index == i for i in range(2 * rows)), 0)
            ),
            scale_b_en.eq(
                Mux(write_scale & ~is_a, Cat(scale_index == j for j in range(2 * cols)), 0)
            ),
        ]
        m.d.comb += [
            buffers.write_a.addr.eq(address),
            buffers.write_b.addr.eq(address),
            buffers.write_a.data.eq(Cat([word] * rows)),
            buffers.write_b.data.eq(Cat([word] * cols)),
            buffers.write_a.en.eq(write_a_en),
            buffers.write_b.en.eq(write_b_en),
        ]
        for registers, enables in (
            (buffers.a_scale_bytes, scale_a_en),
            (buffers.b_scale_bytes, scale_b_en),
        ):
            for index, register in enumerate(registers):
                with m.If(enables[index]):
                    m.d.sync += register.eq(scale_byte)
        with m.If(buffers.commit):
            with m.If(is_a):
                m.d.sync += [buffers.a_valid.eq(1), buffers.a_k.eq(k)]
            with m.Else():
                m.d.sync += [buffers.b_valid.eq(1), buffers.b_k.eq(k)]

        with m.FSM(name="parser") as fsm:
            # Bytes lost before a SYNC belonged to an earlier packet: start this one anyway.
            with m.State("IDLE"), m.If(got & entry.is_sync):
                m.d.sync += [crc.eq(0), cmd.eq(0)]
                m.d.sync += [flag.eq(0) for flag in (*decoded.values(), is_load, is_plain)]
                m.d.sync += [flag.eq(0) for flag, _ in by_priority]
                m.next = "CMD"
            with m.State("CMD"):
                with m.If(got):
                    m.d.sync += cmd.eq(byte)
                    m.d.sync += [flag.eq(byte == code) for code, flag in decoded.items()]
                    loads = (Command.LOAD_A, Command.LOAD_B)
                    plain = (Command.IDENTIFY, Command.STATUS, Command.RUN, Command.READ)
                    m.d.sync += [
                        is_load.eq(Cat(byte == code for code in loads).any()),
                        is_plain.eq(Cat(byte == code for code in plain).any()),
                    ]
                    m.next = "LEN_LO"
                with m.If(timed_out):
                    m.next = "DONE"
            with m.State("LEN_LO"):
                with m.If(got):
                    m.d.sync += [
                        length_low.eq(byte),
                        length_low_zero.eq(byte_zero),
                        length_low_one.eq(byte_one),
                    ]
                    m.next = "LEN_HI"
                with m.If(timed_out):
                    m.next = "DONE"
            with m.State("LEN_HI"):
                empty = length_low_zero & byte_zero
                with m.If(got):
                    m.d.sync += [
                        remaining.eq(Cat(length_low, byte)),
                        final.eq(length_low_one & byte_zero),
                        phase.eq(0),
                        inner.eq(0),
                        outer.eq(0),
                        byte_in_word.eq(0),
                        scale_index.eq(0),
                        scale_last.eq(0),  # the limit is at least 1
                    ]
                    with m.If(is_load):
                        with m.If(is_a):
                            m.d.sync += buffers.a_valid.eq(0)
                        with m.Else():
                            m.d.sync += buffers.b_valid.eq(0)
                    with m.Elif(is_plain), m.If(~empty):
                        m.d.sync += length_bad.eq(1)
                    with m.Else():
                        m.d.sync += unknown_command.eq(1)
                    m.next = "PAYLOAD"
                    with m.If(empty):
                        m.next = "CHECK"
                with m.If(timed_out):
                    m.next = "DONE"
            with m.State("PAYLOAD"):
                with m.If(got):
                    m.d.sync += [remaining.eq(remaining - 1), final.eq(remaining == 2)]
                    with m.If(final):
                        m.next = "CHECK"
                with m.If(timed_out):
                    m.next = "DONE"
                m.d.comb += walking.eq(got & is_load)
                with m.If(walking), m.Switch(phase):
                    with m.Case(0):
                        m.d.sync += [
                            k_low.eq(byte),
                            k_low_zero.eq(byte_zero),
                            k_low_one.eq(byte_one),
                            k_low_above.eq(entry.above_k_low),
                            phase.eq(1),
                        ]
                    with m.Case(1):
                        full_k = Cat(k_low, byte)
                        one = k_low_one & byte_zero
                        m.d.sync += [
                            k.eq(full_k),
                            k_last.eq(full_k - 1),
                            k_one.eq(one),
                            inner_last.eq(Mux(is_a, one, cols == 1)),
                            outer_last.eq(Mux(is_a, rows == 1, one)),
                            phase.eq(2),
                        ]
                        too_large = entry.above_k_high | (entry.is_k_high & k_low_above)
                        # (No error can have been found before K.)
                        with m.If((k_low_zero & byte_zero) | too_large):
                            m.d.sync += k_bad.eq(1)
                    with m.Case(2):
                        with m.If(byte_in_word != word_bytes - 1):
                            m.d.sync += byte_in_word.eq(byte_in_word + 1)
                            if word_bytes > 1:
                                m.d.sync += word_low.eq(Cat(word_low[8:], byte))
                        with m.Else():
                            m.d.sync += byte_in_word.eq(0)
                            with m.If(inner_last):
                                m.d.sync += [
                                    inner.eq(0),
                                    inner_last.eq(Mux(is_a, k_one, cols == 1)),
                                    outer.eq(outer + 1),
                                    outer_last.eq(outer + 1 == outer_limit),
                                ]
                                with m.If(outer_last):
                                    m.d.sync += phase.eq(3)
                            with m.Else():
                                m.d.sync += [
                                    inner.eq(inner + 1),
                                    inner_last.eq(inner + 1 == inner_limit),
                                ]
                    with m.Case(3):
                        m.d.sync += [
                            scale_index.eq(scale_index + 1),
                            scale_last.eq(scale_index + 1 == scale_limit),
                        ]
                        with m.If(scale_last):
                            m.d.sync += phase.eq(4)
                            with m.If(~fault & ~final):
                                m.d.sync += length_bad.eq(1)
            with m.State("CHECK"):
                with m.If(got):
                    m.d.sync += [crc_bad.eq(byte != crc), self.enable.eq(0)]
                    with m.If(is_load & ~fault & (phase != 4)):
                        m.d.sync += length_bad.eq(1)
                    m.next = "DONE"
                with m.If(timed_out):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        _one_hot(fsm)
        # Inside a packet: CRC over everything but SYNC and the CRC byte, inter-byte timeout.
        # (In DONE, after the CRC byte or a timeout, `enable` is clear: no byte arrives and the
        # timer stands still until IDLE clears it.)
        inside = ~fsm.ongoing("IDLE")
        with m.If(~inside | got):
            m.d.sync += [timer.eq(0), expired.eq(0)]
        with m.Elif(self.enable):
            m.d.sync += [timer.eq(timer + 1), expired.eq(timer == timeout - 2)]
        with m.If(inside):
            with m.If(got):
                m.d.sync += line_bad.eq(line_bad | bad)
                with m.If(~fsm.ongoing("CHECK")):
                    m.d.sync += crc.eq(_crc8_step(crc, byte))
            with m.Elif(timed_out):
                m.d.sync += [timeout_hit.eq(1), self.enable.eq(0)]
        m.d.comb += [
            timed_out.eq(inside & self.enable & ~got & expired),
            self.idle.eq(fsm.ongoing("IDLE")),
        ]


class _Reply:
    """Reply generator: ``SYNC | code | LEN | payload | CRC-8`` onto the UART transmitter.

    ``start`` only snapshots the small payloads; the generator starts from registers a cycle
    later. The next byte is selected into a register (``data_r``; offered only when the state,
    index and CRC did not change in the cycle before, so it is up to date) and handed to the
    transmitter through a one-byte buffer, so the byte multiplexer never waits on the
    transmitter; the CRC is updated from the buffered byte a cycle after it was sent. A
    character lasts at least 40 cycles, so this costs no throughput.
    """

    EMPTY, ERROR, IDENTIFY, STATUS, RUN, READ = range(6)

    def __init__(self, m: Module):
        self._m = m
        self.busy = Signal()
        #: The reply to send: registers the control sets before it pulses ``start``.
        self.kind = Signal(range(6))
        self.code = Signal(8)
        self.error = Signal(4)  # error code of an ERROR reply
        #: Pulse (only while not ``busy``) to send the reply; the small payloads (ERROR with
        #: the parser's ``cmd``, STATUS, RUN) are sampled at that cycle.
        self.start = Signal()

    def elaborate(self, core: HostLinkCore, *, uart_tx, error_cmd, status_bytes, run_bytes, read_c):
        m = self._m
        read_length = core.rows * core.cols * core.lane_bytes
        lengths = {
            self.EMPTY: 0,
            self.ERROR: ERROR_LENGTH,
            self.IDENTIFY: IDENTIFY_LENGTH,
            self.STATUS: STATUS_LENGTH,
            self.RUN: RUN_LENGTH,
            self.READ: read_length,
        }
        kind = Signal(range(6))
        code = Signal(8)
        captured = [Signal(8, name=f"reply_byte{i}") for i in range(STATUS_LENGTH)]
        index = Signal(range(max(IDENTIFY_LENGTH, read_length)))
        # Payload bytes after the one being sent, minus one: negative (sign bit) at the last.
        left = Signal(range(-1, max(lengths.values()) - 1))
        length = Signal(16)
        crc = Signal(8)
        data = Signal(8)
        m.d.comb += read_c.addr.eq(index)

        tx_byte, tx_full = Signal(8), Signal()
        m.d.comb += [uart_tx.i.payload.eq(tx_byte), uart_tx.i.valid.eq(tx_full)]
        with m.If(uart_tx.i.ready):
            m.d.sync += tx_full.eq(0)
        offer = Signal()  # the FSM has a byte to send: `data`, registered in `data_r`
        data_r = Signal(8)
        stale = Signal()  # data_r does not reflect the current state, index and CRC yet
        sent = Signal()
        m.d.sync += data_r.eq(data)
        m.d.comb += sent.eq(offer & ~tx_full & ~stale)
        with m.If(sent):
            m.d.sync += [tx_byte.eq(data_r), tx_full.eq(1)]

        # Snapshot the small payloads at `start`: the parser may already change them.
        snapshots = {
            self.ERROR: [self.error, error_cmd],
            self.STATUS: status_bytes,
            self.RUN: run_bytes,
        }
        with m.If(self.start), m.Switch(self.kind):
            for reply_kind, values in snapshots.items():
                with m.Case(reply_kind):
                    m.d.sync += [captured[i].eq(v) for i, v in enumerate(values)]
        started = Signal()  # `start` was pulsed last cycle (`kind` and `code` are still valid)
        m.d.sync += started.eq(self.start)

        identify = core.identify_payload()
        with m.FSM(name="reply") as fsm:
            with m.State("IDLE"), m.If(started):
                m.d.sync += [
                    kind.eq(self.kind),
                    code.eq(self.code),
                    index.eq(0),
                    crc.eq(0),
                ]
                with m.Switch(self.kind):
                    for reply_kind, reply_length in lengths.items():
                        with m.Case(reply_kind):
                            # (EMPTY goes from HEAD to TAIL and never uses `left`.)
                            m.d.sync += [
                                length.eq(reply_length),
                                left.eq(max(reply_length - 2, -1)),
                            ]
                m.next = "HEAD"
            with m.State("HEAD"):
                m.d.comb += offer.eq(1)
                with m.Switch(index):
                    for position, value in enumerate([SYNC, code, length[:8], length[8:]]):
                        with m.Case(position):
                            m.d.comb += data.eq(value)
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == 3):
                        m.d.sync += index.eq(0)
                        with m.If(kind == self.EMPTY):
                            m.next = "TAIL"
                        with m.Elif(kind == self.READ):
                            m.next = "FETCH"
                        with m.Else():
                            m.next = "BODY"
            with m.State("BODY"):
                m.d.comb += offer.eq(1)
                with m.Switch(kind):
                    with m.Case(self.IDENTIFY), m.Switch(index):
                        for position, value in enumerate(identify):
                            with m.Case(position):
                                m.d.comb += data.eq(value)
                    with m.Case(self.READ):
                        m.d.comb += data.eq(read_c.data)
                    with m.Default():
                        m.d.comb += data.eq(captured[0])
                with m.If(sent):
                    m.d.sync += [index.eq(index + 1), left.eq(left - 1)]
                    # The snapshot is a shift register: the next byte moves to captured[0].
                    m.d.sync += [a.eq(b) for a, b in itertools.pairwise(captured)]
                    with m.If(left[-1]):
                        m.next = "TAIL"
                    with m.Elif(kind == self.READ):
                        m.next = "FETCH"
            with m.State("FETCH"):  # the result memory's read port has one cycle of latency
                m.next = "BODY"
            with m.State("TAIL"):
                # The last byte's CRC update lands while that byte waits in the buffer.
                m.d.comb += [offer.eq(1), data.eq(crc)]
                with m.If(sent):
                    m.next = "IDLE"
        _one_hot(fsm)
        crc_pending = Signal()  # tx_byte was sent last cycle and is covered by the CRC
        m.d.sync += crc_pending.eq(
            sent & ~fsm.ongoing("TAIL") & (~fsm.ongoing("HEAD") | (index != 0))
        )
        with m.If(crc_pending):
            m.d.sync += crc.eq(_crc8_step(crc, tx_byte))
        m.d.sync += stale.eq(started | sent | fsm.ongoing("FETCH") | crc_pending)
        # Busy until the transmitter has taken the CRC byte, so a STATUS snapshot is as late
        # as it would be without the buffer; registered (free one cycle later).
        free = Signal()
        m.d.sync += free.eq(fsm.ongoing("IDLE") & ~tx_full & ~self.start & ~started)
        m.d.comb += self.busy.eq(~free)


@dataclass(frozen=True)
class _Break:
    cycles: int


class SimulatedSerial:
    """A pyserial-like port whose far end is a :class:`HostLinkCore` in Amaranth's simulator.

    Bytes written are driven onto the core's ``rx`` pin bit by bit (8N1, the core's bit
    period); the core's ``tx`` pin is decoded the same way (mid-bit sampling, stop bit
    checked) into the bytes :meth:`read` returns. Simulated time advances only inside
    :meth:`read` and :meth:`advance`, so host-side computation between packets is never seen
    as an inter-byte gap by the core.

    Parameters
    ----------
    core : HostLinkCore
        A freshly constructed core (elaborated here).
    timeout : float or None
        pyserial semantics, in *simulated* seconds of the core's clock: :meth:`read` returns
        early after that long; ``None`` waits for ever, ``0`` does not advance time.
    vcd_path : path, optional
        Write a waveform there (else only when ``PALHDL_VCD`` is set); call :meth:`close`.
    """

    def __init__(self, core: HostLinkCore, *, timeout: float | None = 1.0, vcd_path=None):
        from amaranth.sim import Simulator

        from palhdl.sim.pysim import vcd_context

        if not isinstance(core, HostLinkCore):
            raise TypeError(f"core must be a HostLinkCore, not {core!r}")
        self._core = core
        self.timeout = timeout
        self._to_device: collections.deque[int | _Break] = collections.deque()
        self._from_device = bytearray()
        self._cycles = 0
        top = Module()
        top.domains.sync = ClockDomain()
        top.submodules.core = core
        self._sim = Simulator(top)
        self._sim.add_clock(1 / core.clk_freq)
        self._sim.add_testbench(self._drive_rx, background=True)
        self._sim.add_testbench(self._watch_tx, background=True)
        self._sim.add_testbench(self._watch_status, background=True)
        self._status = 0
        self._vcd = vcd_context(self._sim, "hostlink", vcd_path)
        self._vcd.__enter__()
        self.is_open = True

    @property
    def core(self) -> HostLinkCore:
        return self._core

    @property
    def cycles(self) -> int:
        """Clock cycles simulated so far."""
        return self._cycles

    @property
    def status(self) -> int:
        """The core's ``status`` (LED) port now; bits in :class:`LedBit`."""
        return self._status

    @property
    def in_waiting(self) -> int:
        """Bytes received from the core and not read yet."""
        return len(self._from_device)

    @property
    def out_waiting(self) -> int:
        """Bytes (and breaks) written and not yet fully driven onto ``rx``."""
        return len(self._to_device)

    def write(self, data) -> int:
        data = bytes(data)
        self._to_device.extend(data)
        return len(data)

    def send_break(self, duration: float = 0.25) -> None:
        """Queue a break: ``rx`` held low for ``duration`` simulated seconds (at least one
        character time), then high for one bit period.
        """
        cycles = max(math.ceil(duration * self._core.clk_freq), 10 * self._core.divisor)
        self._to_device.append(_Break(cycles))

    def flush(self) -> None:
        """Nothing to do: written bytes are queued for the simulated line."""

    def reset_input_buffer(self) -> None:
        self._from_device.clear()

    def read(self, size: int = 1) -> bytes:
        bit_time = self._core.divisor
        limit = None
        if self.timeout is not None:
            limit = self._cycles + math.ceil(self.timeout * self._core.clk_freq)
        while len(self._from_device) < size and (limit is None or self._cycles < limit):
            step = 10 * bit_time if limit is None else min(10 * bit_time, limit - self._cycles)
            self.advance(step)
        data = bytes(self._from_device[:size])
        del self._from_device[:size]
        return data

    def advance(self, cycles: int) -> None:
        """Run the simulation for ``cycles`` clock cycles."""
        self._cycles += cycles
        self._sim.run_until(self._cycles / self._core.clk_freq)

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            self._vcd.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    async def _drive_rx(self, ctx):
        # Waits are whole clock periods from time 0, so this testbench always acts half a
        # period away from the active clock edge.
        rx, bit_time = self._core.rx, self._core.divisor / self._core.clk_freq
        while True:
            if not self._to_device:
                await ctx.delay(bit_time)
                continue
            item = self._to_device[0]
            if isinstance(item, _Break):
                ctx.set(rx, 0)
                await ctx.delay(item.cycles / self._core.clk_freq)
                bits = (1,)
            else:
                bits = (0, *((item >> i) & 1 for i in range(8)), 1)
            for bit in bits:
                ctx.set(rx, bit)
                await ctx.delay(bit_time)
            self._to_device.popleft()

    async def _watch_tx(self, ctx):
        tx, bit_time = self._core.tx, self._core.divisor / self._core.clk_freq
        while True:
            await ctx.negedge(tx)
            await ctx.delay(bit_time / 2)
            if ctx.get(tx):
                raise AssertionError("HostLinkCore tx: start bit shorter than half a bit")
            value = 0
            for i in range(8):
                await ctx.delay(bit_time)
                value |= ctx.get(tx) << i
            await ctx.delay(bit_time)
            if not ctx.get(tx):
                raise AssertionError("HostLinkCore tx: framing error (stop bit low)")
            self._from_device.append(value)

    async def _watch_status(self, ctx):
        while True:
            await ctx.changed(self._core.status)
            self._status = ctx.get(self._core.status)
