"""The host side of host-link framing: errors, timeouts, reading replies, resynchronising.

:class:`ReplyReader` sends a packet and reads its reply the way ``docs/host-link.md`` (protocol
version 4, "Host side") specifies: it hunts for ``SYNC``, checks the header CRC before it
trusts ``LEN``, then reads the payload and the CRC. Time is counted in the *port's* time: the
sum of the ``timeout`` of the read calls made, which for a simulated port
(:class:`~palhdl.boards.hostlink.simserial.SimulatedSerial`,
:class:`~palhdl.boards.hostlink.verilated.VerilatedSerial`) is simulated time. The errors are
re-exported by :mod:`palhdl.boards.hostlink.driver`.
"""

from __future__ import annotations

import math

from palhdl.boards.hostlink.protocol import (
    ERROR_LENGTH,
    ERROR_REPLY,
    FRAME_OVERHEAD,
    HEADER_LENGTH,
    MAGIC,
    REPLY_FLAG,
    SYNC,
    VERSION,
    Command,
    ErrorCode,
    crc8,
    frame,
)
from palhdl.validate import check_positive_float

__all__ = [
    "BITS_PER_CHARACTER",
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "MIN_INTER_BYTE_TIMEOUT",
    "ChecksumError",
    "DeviceError",
    "HostLinkError",
    "LinkTimeout",
    "ProtocolError",
    "ReplyReader",
    "StaleResult",
    "check_timeout",
    "command_name",
]

#: Default wait for the first byte of a reply, in seconds of the port's time.
DEFAULT_TIMEOUT = 2.0
#: Longest timeout, in seconds: a day (pyserial's waits overflow on far longer ones).
MAX_TIMEOUT = 86400.0
#: Shortest default inter-byte timeout, in seconds (else 20 character times).
MIN_INTER_BYTE_TIMEOUT = 0.05
#: A character on the line: start bit, 8 data bits, stop bit.
BITS_PER_CHARACTER = 10
#: Inter-byte timeouts of slack in a reply's total deadline (header, partial reads).
_SLACK_GAPS = 4
#: The longest frame: the largest payload and the frame around it.
_LONGEST_FRAME = 0xFFFF + FRAME_OVERHEAD


class HostLinkError(Exception):
    """Base class of every host-link failure."""


class LinkTimeout(HostLinkError, TimeoutError):
    """The device did not send the expected bytes in time (or the line never went quiet)."""


class ChecksumError(HostLinkError):
    """A reply arrived with a wrong header CRC or CRC-8."""


class ProtocolError(HostLinkError):
    """A reply was malformed: unexpected code or length, bad IDENTIFY or flags, old protocol."""


class DeviceError(HostLinkError):
    """The device answered with an ERROR reply.

    Attributes
    ----------
    code : ErrorCode or int
        The device's error code (an int if this driver does not know it).
    command : int
        The command byte the device received (0 if the packet ended before it).
    """

    def __init__(self, code: int, command: int, sent: int):
        try:
            self.code = ErrorCode(code)
            name = self.code.name
        except ValueError:
            self.code = code
            name = f"unknown error code {code}"
        self.command = command
        super().__init__(
            f"device rejected {command_name(sent)}: {name} (received command byte 0x{command:02x})"
        )


class StaleResult(HostLinkError):
    """READ returned a stale result: an operand or table was loaded after the RUN computing it.

    Attributes
    ----------
    lanes : ndarray
        The result anyway, ``(rows, cols)`` raw lane integers (the product of the buffers as
        they were at that RUN).
    """

    def __init__(self, lanes):
        self.lanes = lanes
        super().__init__(
            "READ: the result is stale: a LOAD_A, LOAD_B or LOAD_TABLE was accepted since the "
            "RUN that computed it (read(allow_stale=True) returns it; .lanes holds it)"
        )


def check_timeout(name: str, value) -> float:
    """Validate a timeout: seconds, finite, above 0 and at most :data:`MAX_TIMEOUT`.

    Raises
    ------
    TypeError
        ``value`` is not a number (a bool is not).
    ValueError
        ``value`` is NaN, infinite, 0, negative or above a day; the message names ``name``.
    """
    value = check_positive_float(name, value)
    if value > MAX_TIMEOUT:
        raise ValueError(f"{name} must be at most {MAX_TIMEOUT:g} seconds (a day), not {value!r}")
    return value


def command_name(command: int) -> str:
    """Return the name of a command code (``"LOAD_A"``), or ``"command 0x.."`` if unknown."""
    try:
        return Command(command).name
    except ValueError:
        return f"command 0x{command:02x}"


class _Clock:
    """Port time spent on one reply (the sum of the read calls' timeouts) and its deadline."""

    def __init__(self, deadline: float):
        self.spent = 0.0
        self.deadline = deadline


class ReplyReader:
    """Send packets and read their replies on a pyserial-like port (protocol version 4).

    Parameters
    ----------
    port : serial-like object
        ``read(size)``, ``write(data)`` and a settable ``timeout`` (pyserial semantics: a
        read returns after ``size`` bytes or ``timeout`` seconds); optionally
        ``reset_input_buffer()``. The reader sets ``port.timeout`` before each read.
    timeout : float
        Seconds to wait for the first byte of a reply.
    inter_byte_timeout : float
        Longest silence inside a reply, and the quiet time that ends a resynchronisation.
        A reply's total deadline is ``timeout + frame bytes * 2 character times + 4 *
        inter_byte_timeout``.
    baud : float
        The line's rate, for the character time (10 bits).

    Raises
    ------
    TypeError, ValueError
        A parameter is not a positive finite number, or a timeout is longer than a day
        (:func:`check_timeout`); the message names it.
    """

    def __init__(self, port, *, timeout: float, inter_byte_timeout: float, baud: float):
        self._port = port
        self._timeout = check_timeout("timeout", timeout)
        self._gap = check_timeout("inter_byte_timeout", inter_byte_timeout)
        self._character = BITS_PER_CHARACTER / check_positive_float("baud", baud)
        # Bytes asked for in one read: what the line carries in an inter-byte timeout, so a
        # read that returns nothing means the line was silent that long.
        self._chunk = max(1, math.floor(self._gap / self._character))
        self._in_step = True

    @property
    def timeout(self) -> float:
        """Seconds to wait for the first byte of a reply."""
        return self._timeout

    @property
    def inter_byte_timeout(self) -> float:
        """Longest silence inside a reply; the quiet time that ends a resynchronisation."""
        return self._gap

    def deadline(self, frame_length: int) -> float:
        """Total port seconds allowed for a reply frame of ``frame_length`` bytes."""
        return self._timeout + 2 * frame_length * self._character + _SLACK_GAPS * self._gap

    def transact(self, command: int, payload: bytes, reply_length: int | None) -> bytes:
        """Send one packet and return the payload of its successful reply.

        Resynchronises first if the previous reply failed to read. ``reply_length``: the
        payload length a successful reply must announce (``None``: any).

        Raises
        ------
        DeviceError
            The device sent an ERROR reply.
        LinkTimeout, ChecksumError, ProtocolError
            No complete reply, a corrupted one, or an unexpected one (then the next packet
            resynchronises first).
        """
        if not self._in_step:
            self.resync()
        port = self._port
        if hasattr(port, "reset_input_buffer"):
            port.reset_input_buffer()
        self._in_step = False  # until the whole reply has been read
        port.write(frame(command, payload))
        code, reply = self._receive(command, reply_length)
        self._in_step = True
        if code == ERROR_REPLY:
            raise DeviceError(reply[0], reply[1], command)
        return reply

    def resync(self) -> None:
        """Drain the input until the line has been quiet for :attr:`inter_byte_timeout`.

        Raises
        ------
        LinkTimeout
            The line did not go quiet within the deadline of the longest frame.
        """
        port = self._port
        if hasattr(port, "reset_input_buffer"):
            port.reset_input_buffer()
        limit, spent, drained = self.deadline(_LONGEST_FRAME), 0.0, 0
        while spent < limit:
            data = self._read(self._chunk, self._gap)
            spent += self._gap
            if not data:
                self._in_step = True
                return
            drained += len(data)
        raise LinkTimeout(
            f"resynchronising: the device kept sending ({drained} bytes in {spent:.3g} s) and "
            f"the line was never quiet for {self._gap} s"
        )

    def _read(self, size: int, timeout: float) -> bytes:
        port = self._port
        if getattr(port, "timeout", None) != timeout:
            port.timeout = timeout
        return bytes(port.read(size))

    def _receive(self, command: int, reply_length: int | None) -> tuple[int, bytes]:
        """Read a reply frame; return its code and payload."""
        name = command_name(command)
        buffer = bytearray(self._read(HEADER_LENGTH, self._timeout))
        if not buffer:
            raise LinkTimeout(f"no reply to {name} within the {self._timeout} s timeout")
        clock = _Clock(self.deadline(HEADER_LENGTH))
        clock.spent = self._timeout
        while True:  # hunt for SYNC: the bytes before it are skipped
            start = buffer.find(SYNC)
            del buffer[: len(buffer) if start < 0 else start]
            if len(buffer) >= HEADER_LENGTH:
                break
            # The rest of the header after a SYNC, else whatever comes (garbage, then SYNC).
            self._read_more(
                buffer, HEADER_LENGTH - len(buffer) if buffer else self._chunk, clock, name
            )
        header = bytes(buffer[:HEADER_LENGTH])
        code, length = header[1], int.from_bytes(header[2:4], "little")
        if crc8(header[1:4]) != header[4]:
            # Versions 1 to 3 have no header CRC: their IDENTIFY payload's magic follows LEN.
            identify = command == Command.IDENTIFY and code == command | REPLY_FLAG
            if identify and header[4] == MAGIC[0]:
                raise ProtocolError(
                    "the device speaks an older host-link protocol (its IDENTIFY reply has no "
                    f"header CRC; this driver speaks version {VERSION}): rebuild its bitstream"
                )
            raise ChecksumError(f"reply to {name} has a wrong header CRC (its length unknown)")
        if code == ERROR_REPLY:
            expected = ERROR_LENGTH
        elif code == command | REPLY_FLAG:
            expected = reply_length
        else:
            raise ProtocolError(
                f"reply to {name} has code 0x{code:02x}, expected 0x{command | REPLY_FLAG:02x} "
                f"or ERROR 0x{ERROR_REPLY:02x}"
            )
        if expected is not None and length != expected:
            raise ProtocolError(
                f"reply to {name} announces {length} payload bytes, expected {expected}"
            )
        total = length + FRAME_OVERHEAD
        clock.deadline = self.deadline(total)
        self._fill(buffer, total, clock, name)
        if crc8(buffer[1 : total - 1]) != buffer[total - 1]:
            raise ChecksumError(f"reply to {name} has a wrong CRC-8")
        return code, bytes(buffer[HEADER_LENGTH : total - 1])

    def _fill(self, buffer: bytearray, size: int, clock: _Clock, name: str) -> None:
        """Read until ``buffer`` holds ``size`` bytes."""
        while len(buffer) < size:
            self._read_more(buffer, min(size - len(buffer), self._chunk), clock, name)

    def _read_more(self, buffer: bytearray, size: int, clock: _Clock, name: str) -> None:
        """Read up to ``size`` more bytes into ``buffer``, at least one, within the limits."""
        if clock.spent + self._gap > clock.deadline:
            raise LinkTimeout(
                f"reply to {name} incomplete after {clock.spent:.3g} s: got {len(buffer)} "
                f"bytes within its total deadline of {clock.deadline:.3g} s"
            )
        data = self._read(size, self._gap)
        clock.spent += self._gap
        if not data:
            raise LinkTimeout(
                f"reply to {name} stopped: got {len(buffer)} bytes, then nothing for the "
                f"{self._gap} s inter-byte timeout"
            )
        buffer += data
