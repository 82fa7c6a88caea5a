"""Host driver for a board running :class:`palhdl.boards.hostlink.core.HostLinkCore`.

:class:`HostLink` speaks the packet protocol of ``docs/host-link.md``
(:mod:`palhdl.boards.hostlink.protocol`) over any object with pyserial's
``read``/``write``/``timeout`` API (a ``serial.Serial``, a pseudo-terminal, or
:class:`palhdl.boards.hostlink.simserial.SimulatedSerial`). :class:`SerialTransport` plugs it
into the tiling driver :func:`palhdl.sim.driver.matmul` the way
:class:`~palhdl.sim.driver.PysimTransport` plugs in the simulator.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import serial
from amaranth.hdl import Shape

from palhdl.boards.hostlink.protocol import (
    ERROR_LENGTH,
    ERROR_REPLY,
    MAX_K,
    REPLY_FLAG,
    RUN_LENGTH,
    STATUS_LENGTH,
    SYNC,
    Command,
    DeviceStatus,
    ErrorCode,
    crc8,
    decode_identify,
    decode_status,
    frame,
)
from palhdl.format import SCALE_BITS, MacConfig, PALFormat
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import MAX_DIM
from palhdl.sim.driver import MatmulStats, Tile, matmul
from palhdl.validate import check_int

__all__ = [
    "ChecksumError",
    "DeviceError",
    "DeviceInfo",
    "HostLink",
    "HostLinkError",
    "LinkTimeout",
    "ProtocolError",
    "SerialTransport",
]

DEFAULT_TIMEOUT = 1.0


class HostLinkError(Exception):
    """Base class of every host-link failure."""


class LinkTimeout(HostLinkError, TimeoutError):
    """The device did not send the expected bytes within the port's timeout."""


class ChecksumError(HostLinkError):
    """A reply arrived with a wrong CRC-8."""


class ProtocolError(HostLinkError):
    """A reply was malformed: wrong SYNC byte, unexpected code or length, bad IDENTIFY."""


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
            f"device rejected {_command_name(sent)}: {name} (received command byte 0x{command:02x})"
        )


def _command_name(command: int) -> str:
    try:
        return Command(command).name
    except ValueError:
        return f"command 0x{command:02x}"


@dataclass(frozen=True)
class DeviceInfo:
    """What IDENTIFY reports: protocol version, geometry, arithmetic, readout and ``k_max``."""

    version: int
    rows: int
    cols: int
    config: MacConfig
    output: str
    k_max: int

    @property
    def word_bytes(self) -> int:
        """Bytes per operand word on the wire."""
        return (self.config.fmt.width + 7) // 8

    @property
    def lane_shape(self):
        """Shape of one result lane (``PALArithmetic.output_shape(output)``)."""
        return PALArithmetic(config=self.config).output_shape(self.output, scale_bits=SCALE_BITS)

    @property
    def lane_bytes(self) -> int:
        """Bytes per result lane on the wire."""
        return (Shape.cast(self.lane_shape).width + 7) // 8


class HostLink:
    """Talk to a HostLinkCore over a serial port.

    Parameters
    ----------
    port : str, os.PathLike or serial-like object
        A device path (opened with ``serial.Serial(port, baudrate=baud)``) or an open object
        with pyserial's ``read(size)``, ``write(data)`` and ``timeout`` attribute (optionally
        ``reset_input_buffer()``, called before each packet to drop stale bytes).
    baud : int
        Baud rate when opening a path (ignored for objects).
    timeout : float, optional
        Read timeout in seconds, set on the port; default 1 s for a path, else the object's
        own, which must not be ``None`` (a lost reply must not hang the host).

    Raises
    ------
    TypeError, ValueError
        If ``port`` lacks the API or has no timeout; the message names the parameter.
    """

    def __init__(self, port, *, baud: int = 115200, timeout: float | None = None):
        if isinstance(port, str | os.PathLike):
            port = serial.Serial(
                os.fspath(port),
                baudrate=baud,
                timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            )
        elif not all(callable(getattr(port, name, None)) for name in ("read", "write")):
            raise TypeError(
                f"port must be a device path or an object with read() and write(), not {port!r}"
            )
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
                raise ValueError(f"timeout must be a number of seconds >= 0, not {timeout!r}")
            port.timeout = timeout
        if getattr(port, "timeout", None) is None:
            raise ValueError("port must have a read timeout (port.timeout is None); pass timeout=")
        self._port = port
        self._info: DeviceInfo | None = None

    @property
    def port(self):
        """The serial port (or serial-like object)."""
        return self._port

    @property
    def info(self) -> DeviceInfo:
        """The device description (IDENTIFY is sent once, on first use)."""
        if self._info is None:
            self.identify()
        return self._info

    def close(self) -> None:
        """Close the port."""
        self._port.close()

    def __enter__(self):
        """Return the link itself."""
        return self

    def __exit__(self, *exc):
        """Close the port."""
        self.close()

    # --- packets --------------------------------------------------------------------------

    def transact(
        self, command: int, payload: bytes = b"", *, reply_length: int | None = 0
    ) -> bytes:
        """Send one packet and return the payload of its successful reply.

        ``reply_length`` is the payload length a successful reply must announce (``None``:
        any; the caller checks it).

        Raises
        ------
        DeviceError
            The device sent an ERROR reply.
        LinkTimeout, ChecksumError, ProtocolError
            No complete reply, a corrupted one, or an unexpected one.
        """
        port = self._port
        if hasattr(port, "reset_input_buffer"):
            port.reset_input_buffer()
        port.write(frame(command, payload))
        head = self._read_exactly(4, command)
        if head[0] != SYNC:
            raise ProtocolError(
                f"reply to {_command_name(command)} starts with 0x{head[0]:02x}, not SYNC "
                f"0x{SYNC:02x}"
            )
        code, length = head[1], int.from_bytes(head[2:4], "little")
        if code == ERROR_REPLY:
            expected = ERROR_LENGTH
        elif code == command | REPLY_FLAG:
            expected = reply_length
        else:
            raise ProtocolError(
                f"reply to {_command_name(command)} has code 0x{code:02x}, expected "
                f"0x{command | REPLY_FLAG:02x} or ERROR 0x{ERROR_REPLY:02x}"
            )
        if expected is not None and length != expected:
            raise ProtocolError(
                f"reply to {_command_name(command)} announces {length} payload bytes, "
                f"expected {expected}"
            )
        rest = self._read_exactly(length + 1, command)
        if crc8(head[1:] + rest[:-1]) != rest[-1]:
            raise ChecksumError(f"reply to {_command_name(command)} has a wrong CRC-8")
        if code == ERROR_REPLY:
            raise DeviceError(rest[0], rest[1], command)
        return rest[:-1]

    def _read_exactly(self, size: int, command: int) -> bytes:
        data = self._port.read(size)
        if len(data) < size:
            raise LinkTimeout(
                f"no complete reply to {_command_name(command)}: got {len(data)} of {size} "
                f"bytes within the {self._port.timeout} s timeout"
            )
        return bytes(data)

    # --- commands -------------------------------------------------------------------------

    def identify(self) -> DeviceInfo:
        """Send IDENTIFY; return (and remember) the device description.

        Raises
        ------
        ProtocolError
            If the reply is not a version-:data:`~palhdl.boards.hostlink.protocol.VERSION` IDENTIFY
            payload of :data:`~palhdl.boards.hostlink.protocol.IDENTIFY_LENGTH` bytes describing a
            valid device: wrong magic, version or length, an unknown readout code or flag
            bit, or parameters ``HostLinkCore`` would not accept.
        """
        reply = self.transact(Command.IDENTIFY, reply_length=None)
        try:
            fields = decode_identify(reply)
        except ValueError as error:
            raise ProtocolError(str(error)) from None
        try:
            check_int("rows", fields.rows, 1, MAX_DIM)
            check_int("cols", fields.cols, 1, MAX_DIM)
            check_int("k_max", fields.k_max, 1, MAX_K)
            config = MacConfig(
                PALFormat(int_bits=fields.int_bits, frac_bits=fields.frac_bits),
                mantissa_bits=fields.mantissa_bits,
                acc_bits=fields.acc_bits,
                acc_frac_bits=fields.acc_frac_bits,
                term_bits=fields.term_bits,
                saturate=fields.saturate,
            )
        except (TypeError, ValueError) as error:
            raise ProtocolError(f"IDENTIFY describes an impossible device: {error}") from None
        self._info = DeviceInfo(
            version=reply[4],
            rows=fields.rows,
            cols=fields.cols,
            config=config,
            output=fields.output,
            k_max=fields.k_max,
        )
        return self._info

    def status(self) -> DeviceStatus:
        """Send STATUS (this also clears the device's last error and line-error flag)."""
        return decode_status(self.transact(Command.STATUS, reply_length=STATUS_LENGTH))

    def load_a(self, codes, scales=None) -> None:
        """Load the A tile: PAL codes of shape ``(rows, K)`` and ``rows`` scales (default 0)."""
        info = self.info
        self._load(Command.LOAD_A, "codes", codes, scales, lanes=info.rows, lane_axis=0)

    def load_b(self, codes, scales=None) -> None:
        """Load the B tile: PAL codes of shape ``(K, cols)`` and ``cols`` scales (default 0)."""
        info = self.info
        self._load(Command.LOAD_B, "codes", codes, scales, lanes=info.cols, lane_axis=1)

    def _load(self, command, name, codes, scales, *, lanes: int, lane_axis: int) -> None:
        info = self.info
        codes = np.asarray(codes)
        if (
            codes.ndim != 2
            or codes.shape[lane_axis] != lanes
            or not np.issubdtype(codes.dtype, np.integer)
        ):
            shape = ("rows", "K") if lane_axis == 0 else ("K", "cols")
            raise ValueError(
                f"{name} must be a 2-D integer array of shape ({shape[0]}, {shape[1]}) with "
                f"{lanes} {'rows' if lane_axis == 0 else 'columns'}, not {codes.dtype} "
                f"{codes.shape}"
            )
        k = codes.shape[1 - lane_axis]
        if not 1 <= k <= info.k_max:
            raise ValueError(f"K must be in [1, {info.k_max}] (the device's k_max), not {k}")
        width = info.config.fmt.width
        if codes.min() < 0 or codes.max() >= 1 << width:
            raise ValueError(f"{name} must be {width}-bit PAL codes in [0, {(1 << width) - 1}]")
        scales = np.zeros(lanes, np.int64) if scales is None else np.asarray(scales)
        limit = 1 << (SCALE_BITS - 1)
        if (
            scales.shape != (lanes,)
            or not np.issubdtype(scales.dtype, np.integer)
            or scales.min() < -limit
            or scales.max() >= limit
        ):
            raise ValueError(
                f"scales must be {lanes} integers in [{-limit}, {limit - 1}], not {scales!r}"
            )
        # C order is the wire order: A lane-major (K inner), B K-major (lanes inner).
        words = _little_endian(codes.astype(np.int64).ravel(), info.word_bytes)
        scale_bytes = _little_endian(scales.astype(np.int64) & 0xFFFF, 2)
        payload = k.to_bytes(2, "little") + words + scale_bytes
        self.transact(command, payload)

    def run(self) -> int:
        """Run the loaded tiles through the array; return the device's cycle count.

        The count runs from RUN to the last result byte stored, saturating at 65535.
        """
        reply = self.transact(Command.RUN, reply_length=RUN_LENGTH)
        return int.from_bytes(reply, "little")

    def read(self) -> np.ndarray:
        """Return the last result tile: ``(rows, cols)`` raw lane integers (object array)."""
        info = self.info
        lane_bytes = info.lane_bytes
        reply = self.transact(Command.READ, reply_length=info.rows * info.cols * lane_bytes)
        lanes = [
            int.from_bytes(reply[i : i + lane_bytes], "little")
            for i in range(0, len(reply), lane_bytes)
        ]
        return np.array(lanes, dtype=object).reshape(info.rows, info.cols)

    def matmul(self, a, b, *, output: str | None = None, adaptive: bool = True):
        """Compute ``a @ b`` on the board through :func:`palhdl.sim.driver.matmul`.

        Parameters
        ----------
        a, b : ndarray
            Float arrays (quantised with adaptive scales when ``adaptive``) or PAL codes.
        output : {"float32", "pal", "raw"}, optional
            The result. Default: float32 values from a device with the ``"raw"`` or
            ``"float32"`` readout, PAL codes from one with the ``"pal"`` readout. A ``"raw"``
            device gives all three (float32 and PAL converted here, bit-exact with a device
            that converts itself); a ``"float32"`` or ``"pal"`` device only its own.
        adaptive : bool
            Per-row / per-column scales for float operands.

        Returns
        -------
        (result, MatmulStats)

        Raises
        ------
        ValueError
            If the device's readout cannot give ``output`` (the message names both).
        """
        info = self.info
        if output is None:
            output = "pal" if info.output == "pal" else "float32"
        return matmul(
            a,
            b,
            config=info.config,
            rows=info.rows,
            cols=info.cols,
            output=output,
            readout=info.output,
            adaptive=adaptive,
            transport=SerialTransport(self),
        )


def _little_endian(values: np.ndarray, size: int) -> bytes:
    shifts = 8 * np.arange(size, dtype=np.int64)
    return ((values[:, None] >> shifts) & 0xFF).astype(np.uint8).tobytes()


class SerialTransport:
    """Runs tiles on a board: LOAD_A, LOAD_B, RUN, READ per tile.

    Same interface as :class:`palhdl.sim.driver.PysimTransport`; ``MatmulStats.cycles`` sums
    the device's RUN cycle counts (array time, not link time), ``seconds`` is wall time.

    Parameters
    ----------
    link : HostLink
        An open link; its IDENTIFY fixes the geometry the tiles must have.
    """

    def __init__(self, link: HostLink):
        if not isinstance(link, HostLink):
            raise TypeError(f"link must be a HostLink, not {link!r}")
        self.link = link

    def run(self, tiles: list[Tile]) -> tuple[list[np.ndarray], MatmulStats]:
        """Run every tile; return per-tile raw lanes ``(rows, cols)`` and statistics."""
        info = self.link.info
        started = time.perf_counter()
        results, cycles = [], 0
        for tile in tiles:
            k = tile.a.shape[1]
            if k > info.k_max:
                raise ValueError(
                    f"K = {k} exceeds the device's k_max {info.k_max}; build the board with a "
                    f"larger k_max"
                )
            self.link.load_a(tile.a, tile.a_scales)
            self.link.load_b(tile.b, tile.b_scales)
            cycles += self.link.run()
            results.append(self.link.read())
        stats = MatmulStats(
            cycles=cycles,
            tiles=len(tiles),
            peak_macs_per_cycle=info.rows * info.cols,
            seconds=time.perf_counter() - started,
        )
        return results, stats
