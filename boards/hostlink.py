"""The host link: a PAL systolic array behind a UART packet protocol.

:class:`HostLinkCore` is the gateware a board top level instantiates (UART pins in, UART pins
out, a few status LEDs); :mod:`palhdl.boards.host` is the matching host driver. The protocol
(framing, CRC, commands, replies, error codes) is specified in ``docs/host-link.md``; the
constants and :func:`crc8` here are its single definition, shared by gateware and driver.
:class:`SimulatedSerial` runs the core in Amaranth's simulator behind a pyserial-like object,
so the real driver can be tested bit by bit on the UART pins.
"""

from __future__ import annotations

import collections
import enum
import functools
import math
import operator
from dataclasses import dataclass

from amaranth.hdl import Cat, ClockDomain, Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from palhdl.hdl.pal_arithmetic import PALArithmetic
from palhdl.hdl.systolic import MAX_DIM, SystolicArray
from palhdl.hdl.uart import MIN_DIVISOR, UARTRx, UARTTx
from palhdl.sim.format import MacConfig, _check_int

__all__ = [
    "ERROR_LENGTH",
    "ERROR_REPLY",
    "IDENTIFY_LENGTH",
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
VERSION = 1
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
IDENTIFY_LENGTH = 16
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
    The check value of ``b"123456789"`` is 0xF4."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC8_POLY if crc & 0x80 else crc << 1) & 0xFF
    return crc


def frame(code: int, payload: bytes = b"") -> bytes:
    """A packet or reply: ``SYNC | code | LEN (2 bytes LE) | payload | CRC-8`` where the CRC
    covers ``code``, ``LEN`` and ``payload``."""
    if not 0 <= code <= 0xFF:
        raise ValueError(f"code must be a byte (0..255), not {code}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload must be at most 65535 bytes, not {len(payload)}")
    body = bytes([code]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([SYNC]) + body + bytes([crc8(body)])


def load_length(lanes: int, k: int, word_bytes: int) -> int:
    """Payload length of a LOAD_A (``lanes = rows``) or LOAD_B (``lanes = cols``) packet."""
    return 2 + lanes * k * word_bytes + 2 * lanes


def _crc8_step(crc, byte):
    """Amaranth expression of the CRC register after ``byte``: the update is linear over GF(2)
    in ``crc ^ byte``, so each output bit XORs the inputs whose unit vector sets it."""
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
    (:class:`~palhdl.hdl.pal_arithmetic.PALArithmetic`, readout ``output``), a byte-wide result
    buffer in block RAM (``rows x cols`` lanes of :attr:`lane_bytes` bytes, row-major) and a
    reply generator. The protocol is in
    ``docs/host-link.md``.

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
        _check_int("clk_freq", clk_freq, 1, 10**12)
        _check_int("baud", baud, 1, 10**9)
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
        _check_int("k_max", k_max, 1, MAX_K)
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
        _check_int("timeout_cycles", timeout_cycles, 20 * divisor, MAX_TIMEOUT_CYCLES)
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
        )

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._rows, self._cols

        m.submodules.uart_rx = uart_rx = UARTRx(divisor=self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(divisor=self._divisor)
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]

        # Receive FIFO entries are {byte, framing error, input dropped (FIFO full) before it}.
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=10, depth=RX_FIFO_DEPTH)
        dropped = Signal()
        line_error = Signal()  # sticky until a STATUS reply reports it
        m.d.comb += [
            fifo.w_data.eq(Cat(uart_rx.o.payload.data, uart_rx.o.payload.error, dropped)),
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
        m.d.comb += [
            buffers.read_a.addr.eq(k_run),
            buffers.read_b.addr.eq(k_run),
            array.a.payload.data.as_value().eq(buffers.read_a.data),
            array.b.payload.data.as_value().eq(buffers.read_b.data),
            array.a.payload.last.eq(k_run == buffers.a_k - 1),
        ]
        # A result row is taken from the array into a shift register of whole-byte lanes and
        # written to the byte-wide result memory one byte per cycle (the array waits).
        row_bytes = cols * self._lane_bytes
        rows_taken = Signal(range(rows + 1))
        row_shift = Signal(8 * row_bytes)
        bytes_left = Signal(range(row_bytes + 1))
        m.d.comb += [
            buffers.write_c.data.eq(row_shift[:8]),
            buffers.write_c.en.eq(bytes_left != 0),
        ]
        with m.If(bytes_left != 0):
            m.d.sync += [
                row_shift.eq(row_shift >> 8),
                bytes_left.eq(bytes_left - 1),
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

        with m.FSM(name="control") as control:
            with m.State("IDLE"):
                m.d.comb += parser.enable.eq(1)
                with m.If(parser.done):
                    m.next = "DISPATCH"
            with m.State("DISPATCH"):
                verdict = Signal(4)
                m.d.comb += verdict.eq(parser.error)
                with m.If(parser.error == 0):
                    with m.If(parser.cmd == Command.RUN):
                        with m.If(~(buffers.a_valid & buffers.b_valid)):
                            m.d.comb += verdict.eq(ErrorCode.NOT_LOADED)
                        with m.Elif(buffers.a_k != buffers.b_k):
                            m.d.comb += verdict.eq(ErrorCode.K_MISMATCH)
                    with m.If((parser.cmd == Command.READ) & ~buffers.c_valid):
                        m.d.comb += verdict.eq(ErrorCode.NO_RESULT)
                with m.If(~reply.busy):
                    m.next = "IDLE"
                    with m.If(verdict != 0):
                        reply.start(_Reply.ERROR, ERROR_REPLY, error=verdict)
                        m.d.sync += [last_error.eq(verdict), error_led.eq(1)]
                    with m.Else():
                        m.d.sync += error_led.eq(0)
                        code = parser.cmd | REPLY_FLAG
                        with m.Switch(parser.cmd):
                            with m.Case(Command.IDENTIFY):
                                reply.start(_Reply.IDENTIFY, code)
                            with m.Case(Command.STATUS):
                                reply.start(_Reply.STATUS, code)
                                m.d.sync += [last_error.eq(0), line_error.eq(0)]
                            with m.Case(Command.LOAD_A, Command.LOAD_B):
                                reply.start(_Reply.EMPTY, code)
                                m.d.comb += buffers.commit.eq(1)
                            with m.Case(Command.READ):
                                reply.start(_Reply.READ, code)
                            with m.Case(Command.RUN):
                                m.d.sync += [
                                    k_run.eq(0),
                                    rows_taken.eq(0),
                                    buffers.write_c.addr.eq(0),
                                    buffers.c_valid.eq(0),
                                    result_nan.eq(0),
                                    result_sat.eq(0),
                                    run_cycles.eq(0),
                                ]
                                m.next = "RUN_FETCH"
            with m.State("RUN_FETCH"):
                m.next = "RUN_BEAT"
            with m.State("RUN_BEAT"):
                m.d.comb += [array.a.valid.eq(1), array.b.valid.eq(1)]
                with m.If(array.a.ready):
                    with m.If(array.a.payload.last):
                        m.next = "RUN_COLLECT"
                    with m.Else():
                        m.d.sync += k_run.eq(k_run + 1)
                        m.next = "RUN_FETCH"
            with m.State("RUN_COLLECT"):
                with m.If(bytes_left != 0):
                    pass  # the previous row is still going into the result memory
                with m.Elif(rows_taken == rows):
                    m.d.sync += buffers.c_valid.eq(1)
                    reply.start(_Reply.RUN, Command.RUN | REPLY_FLAG)
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += array.c.ready.eq(1)
                    with m.If(array.c.valid):
                        m.d.sync += [
                            row_shift.eq(padded_row),
                            bytes_left.eq(row_bytes),
                            rows_taken.eq(rows_taken + 1),
                            result_nan.eq(result_nan | lane_nan),
                            result_sat.eq(result_sat | lane_sat),
                        ]
        running = ~control.ongoing("IDLE") & ~control.ongoing("DISPATCH")
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

        m.d.comb += [
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
    their scale registers and valid flags, and the byte-wide result memory (READ order)."""

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
    """Byte-wide packet parser: reads the receive FIFO while ``enable``; ``done`` pulses for
    one cycle when a packet has ended (CRC byte or timeout) with ``cmd``, ``error`` (0 = good)
    and, for a LOAD, its K. LOAD words go straight into the operand memories; the target
    buffer is invalidated when the LOAD header arrives and made valid only by ``commit``."""

    def __init__(self, m: Module, core: HostLinkCore, fifo, buffers: _Buffers):
        rows, cols, k_max = core.rows, core.cols, core.k_max
        width, word_bytes = core.config.fmt.width, core.word_bytes
        self.enable = Signal()
        self.done = Signal()
        self.cmd = Signal(8)
        self.error = Signal(4)
        self.idle = Signal()

        byte, framing_error, dropped_before = fifo.r_data[:8], fifo.r_data[8], fifo.r_data[9]
        bad = framing_error | dropped_before
        got = Signal()
        reading = Signal()  # enabled and not in DONE
        m.d.comb += [fifo.r_en.eq(reading), got.eq(fifo.r_rdy & reading)]
        cmd, err = self.cmd, self.error
        length_low = Signal(8)
        remaining = Signal(16)
        crc = Signal(8)
        line_bad = Signal()
        timeout = core.timeout_cycles
        timer = Signal(range(timeout))
        timed_out = Signal()

        is_a = Signal()
        is_load = Signal()
        is_plain = Signal()
        m.d.comb += [
            is_a.eq(cmd == Command.LOAD_A),
            is_load.eq(is_a | (cmd == Command.LOAD_B)),
            is_plain.eq(
                (cmd == Command.IDENTIFY)
                | (cmd == Command.STATUS)
                | (cmd == Command.RUN)
                | (cmd == Command.READ)
            ),
        ]

        # LOAD payload: K (2 bytes LE), the words (A: lane-major, k inner; B: k-major, lane
        # inner), then one 2-byte scale per lane. inner/outer walk the words. The length is
        # checked by where the payload ends: exactly after the last scale.
        k_low = Signal(8)
        k = Signal(range(k_max + 1))
        phase = Signal(range(5))  # K low byte, K high byte, words, scales, complete
        inner = Signal(range(max(k_max, rows, cols)))
        outer = Signal(range(max(k_max, rows, cols)))
        byte_in_word = Signal(range(word_bytes))
        word_low = Signal(8 * (word_bytes - 1))
        scale_index = Signal(range(2 * max(rows, cols)))
        word = Cat(word_low, byte)[:width]
        lane = Mux(is_a, outer, inner)
        address = Mux(is_a, inner, outer)
        inner_last = Mux(is_a, inner == k - 1, inner == cols - 1)
        outer_last = Mux(is_a, outer == rows - 1, outer == k - 1)
        scale_last = Mux(is_a, scale_index == 2 * rows - 1, scale_index == 2 * cols - 1)
        loading = Signal()
        m.d.comb += loading.eq(got & is_load & (err == 0))
        write_word = loading & (phase == 2) & (byte_in_word == word_bytes - 1)
        m.d.comb += [
            buffers.write_a.addr.eq(address),
            buffers.write_b.addr.eq(address),
            buffers.write_a.data.eq(Cat([word] * rows)),
            buffers.write_b.data.eq(Cat([word] * cols)),
        ]
        with m.If(write_word):
            with m.If(is_a):
                m.d.comb += buffers.write_a.en.eq(Cat(lane == i for i in range(rows)))
            with m.Else():
                m.d.comb += buffers.write_b.en.eq(Cat(lane == j for j in range(cols)))
        with m.If(buffers.commit):
            with m.If(is_a):
                m.d.sync += [buffers.a_valid.eq(1), buffers.a_k.eq(k)]
            with m.Else():
                m.d.sync += [buffers.b_valid.eq(1), buffers.b_k.eq(k)]

        with m.FSM(name="parser") as fsm:
            # Bytes lost before a SYNC belonged to an earlier packet: start this one anyway.
            with m.State("IDLE"), m.If(got & (byte == SYNC) & ~framing_error):
                m.d.sync += [crc.eq(0), err.eq(0), line_bad.eq(0), cmd.eq(0), timer.eq(0)]
                m.next = "CMD"
            with m.State("CMD"):
                with m.If(got):
                    m.d.sync += cmd.eq(byte)
                    m.next = "LEN_LO"
                with m.If(timed_out):
                    m.next = "DONE"
            with m.State("LEN_LO"):
                with m.If(got):
                    m.d.sync += length_low.eq(byte)
                    m.next = "LEN_HI"
                with m.If(timed_out):
                    m.next = "DONE"
            with m.State("LEN_HI"):
                full = Cat(length_low, byte)
                with m.If(got):
                    m.d.sync += [
                        remaining.eq(full),
                        phase.eq(0),
                        inner.eq(0),
                        outer.eq(0),
                        byte_in_word.eq(0),
                        scale_index.eq(0),
                    ]
                    with m.If(is_load):
                        with m.If(is_a):
                            m.d.sync += buffers.a_valid.eq(0)
                        with m.Else():
                            m.d.sync += buffers.b_valid.eq(0)
                    with m.Elif(is_plain), m.If(full != 0):
                        m.d.sync += err.eq(ErrorCode.LENGTH)
                    with m.Else():
                        m.d.sync += err.eq(ErrorCode.UNKNOWN_COMMAND)
                    m.next = "PAYLOAD"
                    with m.If(full == 0):
                        m.next = "CHECK"
                with m.If(timed_out):
                    m.next = "DONE"
            with m.State("PAYLOAD"):
                with m.If(got):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.next = "CHECK"
                with m.If(timed_out):
                    m.next = "DONE"
                with m.If(loading), m.Switch(phase):
                    with m.Case(0):
                        m.d.sync += [k_low.eq(byte), phase.eq(1)]
                    with m.Case(1):
                        full_k = Cat(k_low, byte)
                        m.d.sync += [k.eq(full_k), phase.eq(2)]
                        with m.If((full_k == 0) | (full_k > k_max)):
                            m.d.sync += err.eq(ErrorCode.K_RANGE)
                    with m.Case(2):
                        with m.If(byte_in_word != word_bytes - 1):
                            m.d.sync += byte_in_word.eq(byte_in_word + 1)
                            if word_bytes > 1:
                                m.d.sync += word_low.eq(Cat(word_low[8:], byte))
                        with m.Else():
                            m.d.sync += byte_in_word.eq(0)
                            with m.If(inner_last):
                                m.d.sync += [inner.eq(0), outer.eq(outer + 1)]
                                with m.If(outer_last):
                                    m.d.sync += phase.eq(3)
                            with m.Else():
                                m.d.sync += inner.eq(inner + 1)
                    with m.Case(3):
                        m.d.sync += scale_index.eq(scale_index + 1)
                        with m.If(scale_last):
                            m.d.sync += phase.eq(4)
                            with m.If(remaining != 1):
                                m.d.sync += err.eq(ErrorCode.LENGTH)
                        for registers, selected in (
                            (buffers.a_scale_bytes, is_a),
                            (buffers.b_scale_bytes, ~is_a),
                        ):
                            for index, register in enumerate(registers):
                                with m.If(selected & (scale_index == index)):
                                    m.d.sync += register.eq(byte)
            with m.State("CHECK"):
                with m.If(got):
                    with m.If(line_bad | bad):
                        m.d.sync += err.eq(ErrorCode.LINE)
                    with m.Elif(byte != crc):
                        m.d.sync += err.eq(ErrorCode.CHECKSUM)
                    with m.Elif(is_load & (err == 0) & (phase != 4)):
                        m.d.sync += err.eq(ErrorCode.LENGTH)
                    m.next = "DONE"
                with m.If(timed_out):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        # Inside a packet: CRC over everything but SYNC and the CRC byte, inter-byte timeout.
        inside = ~fsm.ongoing("IDLE") & ~fsm.ongoing("DONE")
        with m.If(inside):
            with m.If(got):
                m.d.sync += [timer.eq(0), line_bad.eq(line_bad | bad)]
                with m.If(~fsm.ongoing("CHECK")):
                    m.d.sync += crc.eq(_crc8_step(crc, byte))
            with m.Elif(timed_out):
                m.d.sync += [timer.eq(0), err.eq(ErrorCode.TIMEOUT)]
            with m.Elif(self.enable):
                m.d.sync += timer.eq(timer + 1)
        m.d.comb += [
            reading.eq(self.enable & ~fsm.ongoing("DONE")),
            timed_out.eq(inside & self.enable & ~got & (timer == timeout - 1)),
            self.idle.eq(fsm.ongoing("IDLE")),
        ]


class _Reply:
    """Reply generator: ``SYNC | code | LEN | payload | CRC-8`` onto the UART transmitter."""

    EMPTY, ERROR, IDENTIFY, STATUS, RUN, READ = range(6)

    def __init__(self, m: Module):
        self._m = m
        self.busy = Signal()
        self._start = Signal()
        self._kind = Signal(range(6))
        self._code = Signal(8)
        self._error = Signal(4)

    def start(self, kind: int, code, *, error=0):
        """Request a reply (only when not ``busy``); the caller's ``cmd`` is sampled now."""
        self._m.d.comb += [
            self._start.eq(1),
            self._kind.eq(kind),
            self._code.eq(code),
            self._error.eq(error),
        ]

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
        crc = Signal(8)
        length = Signal(16)
        data = Signal(8)
        m.d.comb += [uart_tx.i.payload.eq(data), read_c.addr.eq(index)]
        sent = uart_tx.i.valid & uart_tx.i.ready
        with m.Switch(kind):
            for reply_kind, reply_length in lengths.items():
                with m.Case(reply_kind):
                    m.d.comb += length.eq(reply_length)

        identify = core.identify_payload()
        with m.FSM(name="reply") as fsm:
            with m.State("IDLE"), m.If(self._start):
                m.d.sync += [
                    kind.eq(self._kind),
                    code.eq(self._code),
                    index.eq(0),
                    crc.eq(0),
                ]
                # Snapshot the small payloads: the parser may already change them.
                snapshots = {
                    self.ERROR: [self._error, error_cmd],
                    self.STATUS: status_bytes,
                    self.RUN: run_bytes,
                }
                with m.Switch(self._kind):
                    for reply_kind, values in snapshots.items():
                        with m.Case(reply_kind):
                            m.d.sync += [captured[i].eq(v) for i, v in enumerate(values)]
                m.next = "HEAD"
            with m.State("HEAD"):
                m.d.comb += uart_tx.i.valid.eq(1)
                with m.Switch(index):
                    for position, value in enumerate([SYNC, code, length[:8], length[8:]]):
                        with m.Case(position):
                            m.d.comb += data.eq(value)
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == 3):
                        m.d.sync += index.eq(0)
                        with m.If(length == 0):
                            m.next = "TAIL"
                        with m.Elif(kind == self.READ):
                            m.next = "FETCH"
                        with m.Else():
                            m.next = "BODY"
            with m.State("BODY"):
                m.d.comb += uart_tx.i.valid.eq(1)
                with m.Switch(kind):
                    with m.Case(self.IDENTIFY), m.Switch(index):
                        for position, value in enumerate(identify):
                            with m.Case(position):
                                m.d.comb += data.eq(value)
                    with m.Case(self.READ):
                        m.d.comb += data.eq(read_c.data)
                    with m.Default(), m.Switch(index):
                        for position, register in enumerate(captured):
                            with m.Case(position):
                                m.d.comb += data.eq(register)
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == length - 1):
                        m.next = "TAIL"
                    with m.Elif(kind == self.READ):
                        m.next = "FETCH"
            with m.State("FETCH"):  # the result memory's read port has one cycle of latency
                m.next = "BODY"
            with m.State("TAIL"):
                m.d.comb += [uart_tx.i.valid.eq(1), data.eq(crc)]
                with m.If(sent):
                    m.next = "IDLE"
        with m.If(sent & ~fsm.ongoing("TAIL") & (~fsm.ongoing("HEAD") | (index != 0))):
            m.d.sync += crc.eq(_crc8_step(crc, data))
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))


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

        from palhdl.sim.rtl import vcd_context

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
        character time), then high for one bit period."""
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
