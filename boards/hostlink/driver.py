"""Host driver for a board running :class:`palhdl.boards.hostlink.core.HostLinkCore`.

:class:`HostLink` speaks the packet protocol of ``docs/host-link.md``
(:mod:`palhdl.boards.hostlink.protocol`) over any object with pyserial's
``read``/``write``/``timeout`` API (a ``serial.Serial``, a pseudo-terminal, or
:class:`palhdl.boards.hostlink.simserial.SimulatedSerial`). :class:`SerialTransport` plugs it
into the tiling driver :func:`palhdl.sim.driver.matmul` the way
:class:`~palhdl.sim.driver.PysimTransport` plugs in the simulator. Replies are read by
:class:`palhdl.boards.hostlink.framing.ReplyReader` (header CRC, timeouts in the port's time,
resynchronisation after a failed reply), whose errors this module exports.
"""

from __future__ import annotations

import os
import time

import numpy as np
import serial

from palhdl.boards.hostlink.framing import (
    BITS_PER_CHARACTER,
    DEFAULT_TIMEOUT,
    MIN_INTER_BYTE_TIMEOUT,
    ChecksumError,
    DeviceError,
    HostLinkError,
    LinkTimeout,
    ProtocolError,
    ReplyReader,
    StaleResult,
    check_timeout,
)
from palhdl.boards.hostlink.info import DeviceInfo, decode_device_info, split_name
from palhdl.boards.hostlink.protocol import (
    READ_FLAGS_LENGTH,
    RUN_LENGTH,
    STATUS_LENGTH,
    Command,
    DeviceStatus,
    ReadFlag,
    decode_status,
)
from palhdl.format import SCALE_BITS, MacConfig, PALFormat
from palhdl.sim.driver import MatmulStats, Tile, matmul
from palhdl.validate import check_int, check_positive_float

__all__ = [
    "ChecksumError",
    "DeviceError",
    "HostLink",
    "HostLinkError",
    "LinkTimeout",
    "ProtocolError",
    "SerialTransport",
    "StaleResult",
]


class HostLink:
    """Talk to a HostLinkCore over a serial port.

    Parameters
    ----------
    port : str, os.PathLike or serial-like object
        A device path (opened with ``serial.Serial(port, baudrate=baud)``) or an open object
        with pyserial's ``read(size)``, ``write(data)`` and a settable ``timeout``
        (optionally ``reset_input_buffer()``, called before each packet to drop stale bytes,
        and ``baudrate``). The link sets ``port.timeout`` before each read; a simulated port
        counts it in simulated seconds.
    baud : int
        Baud rate when opening a path, and the line's rate for the timeouts of an object
        without a ``baudrate``.
    timeout : float, optional
        Seconds to wait for the first byte of a reply (default 2).
    inter_byte_timeout : float, optional
        Longest silence inside a reply (default the larger of 0.05 s and 20 character
        times). A reply must also arrive whole within ``timeout + 2 * its length in
        character times + 4 * inter_byte_timeout``. After a reply fails to read
        (:class:`LinkTimeout`, :class:`ChecksumError`, :class:`ProtocolError`) the next
        packet is sent once the line has been quiet that long, so a late reply is not taken
        for the next one.

    Raises
    ------
    TypeError, ValueError
        If ``port`` lacks the API, or ``baud``, ``timeout`` or ``inter_byte_timeout`` is not
        a positive finite number (timeouts at most a day); the message names the parameter.
    """

    def __init__(
        self,
        port,
        *,
        baud: int = 115200,
        timeout: float | None = None,
        inter_byte_timeout: float | None = None,
    ):
        check_int("baud", baud, 1)
        timeout = check_timeout("timeout", DEFAULT_TIMEOUT if timeout is None else timeout)
        if inter_byte_timeout is not None:
            check_timeout("inter_byte_timeout", inter_byte_timeout)
        if isinstance(port, str | os.PathLike):
            port = serial.Serial(os.fspath(port), baudrate=baud, timeout=timeout)
        elif not all(callable(getattr(port, name, None)) for name in ("read", "write")):
            raise TypeError(
                f"port must be a device path or an object with read() and write(), not {port!r}"
            )
        rate = check_positive_float("port.baudrate", getattr(port, "baudrate", baud))
        if inter_byte_timeout is None:
            inter_byte_timeout = max(MIN_INTER_BYTE_TIMEOUT, 20 * BITS_PER_CHARACTER / rate)
        self._port = port
        self._reader = ReplyReader(
            port, timeout=timeout, inter_byte_timeout=inter_byte_timeout, baud=rate
        )
        self._info: DeviceInfo | None = None
        self._split: PALFormat | None = None  # the table's split, once known

    @property
    def timeout(self) -> float:
        """Seconds (of the port's time) to wait for the first byte of a reply."""
        return self._reader.timeout

    @property
    def inter_byte_timeout(self) -> float:
        """Longest silence inside a reply; the quiet time of a resynchronisation."""
        return self._reader.inter_byte_timeout

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
        any; the caller checks it). If the previous reply failed to read, the line is first
        drained until quiet (:attr:`inter_byte_timeout`).

        Raises
        ------
        DeviceError
            The device sent an ERROR reply.
        LinkTimeout, ChecksumError, ProtocolError
            No complete reply in time, a corrupted one (header CRC or CRC), or an unexpected
            one; a device of an older protocol version (IDENTIFY) is a ProtocolError.
        """
        return self._reader.transact(command, payload, reply_length)

    # --- commands -------------------------------------------------------------------------

    def identify(self) -> DeviceInfo:
        """Send IDENTIFY; return (and remember) the device description.

        Raises
        ------
        ProtocolError
            If the reply is not a version-:data:`~palhdl.boards.hostlink.protocol.VERSION` IDENTIFY
            payload of :data:`~palhdl.boards.hostlink.protocol.IDENTIFY_LENGTH` bytes describing a
            valid device: wrong magic, version or length, an unknown readout code or flag
            bit, or parameters ``HostLinkCore`` would not accept
            (:func:`~palhdl.boards.hostlink.info.decode_device_info`).
        """
        reply = self.transact(Command.IDENTIFY, reply_length=None)
        try:
            self._info = decode_device_info(reply)
        except ValueError as error:
            raise ProtocolError(str(error)) from None
        self._split = None
        return self._info

    def status(self) -> DeviceStatus:
        """Send STATUS (this also clears the device's last error and line-error flag)."""
        return decode_status(self.transact(Command.STATUS, reply_length=STATUS_LENGTH))

    def load_a(self, codes, scales=None, offsets=None) -> None:
        """Load the A tile: PAL codes of shape ``(rows, K)`` and ``rows`` scales (default 0).

        ``offsets``: the codes' block offsets, same shape (default 0), on a block-scaled
        device only.
        """
        info = self.info
        self._load(Command.LOAD_A, codes, scales, offsets, lanes=info.rows, lane_axis=0)

    def load_b(self, codes, scales=None, offsets=None) -> None:
        """Load the B tile: PAL codes of shape ``(K, cols)`` and ``cols`` scales (default 0).

        ``offsets`` as :meth:`load_a`.
        """
        info = self.info
        self._load(Command.LOAD_B, codes, scales, offsets, lanes=info.cols, lane_axis=1)

    def _load(self, command, codes, scales, offsets, *, lanes: int, lane_axis: int) -> None:
        info = self.info
        codes = np.asarray(codes)
        if (
            codes.ndim != 2
            or codes.shape[lane_axis] != lanes
            or not np.issubdtype(codes.dtype, np.integer)
        ):
            shape = ("rows", "K") if lane_axis == 0 else ("K", "cols")
            raise ValueError(
                f"codes must be a 2-D integer array of shape ({shape[0]}, {shape[1]}) with "
                f"{lanes} {'rows' if lane_axis == 0 else 'columns'}, not {codes.dtype} "
                f"{codes.shape}"
            )
        k = codes.shape[1 - lane_axis]
        if not 1 <= k <= info.k_max:
            raise ValueError(f"K must be in [1, {info.k_max}] (the device's k_max), not {k}")
        width = info.config.fmt.width
        if codes.min() < 0 or codes.max() >= 1 << width:
            raise ValueError(f"codes must be {width}-bit PAL codes in [0, {(1 << width) - 1}]")
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
        operands = codes.astype(np.int64) | _offsets(info, offsets, codes.shape) << width
        # C order is the wire order: A lane-major (K inner), B K-major (lanes inner).
        words = _little_endian(operands.ravel(), info.word_bytes)
        scale_bytes = _little_endian(scales.astype(np.int64) & 0xFFFF, 2)
        payload = k.to_bytes(2, "little") + words + scale_bytes
        self.transact(command, payload)

    @property
    def split(self) -> PALFormat:
        """The split (format) the device's product-term table is for.

        The bitstream's format if the table is not loadable; else the split of this link's
        last :meth:`load_split` / :meth:`load_table`, or before one the table's label, asked
        once with STATUS (which also clears the device's last error and line-error flag).

        Raises
        ------
        HostLinkError
            The table is invalid (a LOAD_TABLE did not complete): load one.
        ProtocolError
            STATUS labels the table with no split of the device's word width.
        """
        info = self.info
        if not info.loadable:
            return info.config.fmt
        if self._split is None:
            status = self.status()
            if not status.table_valid:
                raise HostLinkError(
                    "the device's product-term table is invalid (a LOAD_TABLE did not "
                    "complete); load one with load_split()"
                )
            try:
                self._split = info.split_of(status.table_frac_bits)
            except ValueError as error:
                message = f"STATUS labels the table with an impossible split: {error}"
                raise ProtocolError(message) from None
        return self._split

    @property
    def config(self) -> MacConfig:
        """The configuration the device computes now: ``info.config_for(split)``."""
        return self.info.config_for(self.split)

    def load_table(self, words, *, frac_bits: int) -> None:
        """Send LOAD_TABLE: ``words``, the whole product-term table, labelled with ``frac_bits``.

        The low-level command: the device computes with whatever ``words`` hold (the label
        only says which split they are for, and becomes :attr:`split`). :meth:`load_split`
        computes the words of a split.

        Parameters
        ----------
        words : 1-D array_like of int
            ``info.table_entries`` entries of ``info.table_width`` bits.
        frac_bits : int
            The split ``F`` of the table, 1..``width - 3`` (``I = width - 1 - F >= 2``).

        Raises
        ------
        ValueError
            The table is not loadable, or ``words`` or ``frac_bits`` do not fit it.
        DeviceError
            The device refused the table (then the table is invalid until a LOAD_TABLE
            succeeds).
        """
        info = self.info
        self._check_loadable()
        split = info.split_of(frac_bits)
        words = np.asarray(words)
        entries, bits = info.table_entries, info.table_width
        if (
            words.shape != (entries,)
            or not np.issubdtype(words.dtype, np.integer)
            or words.min() < 0
            or int(words.max()) >> bits
        ):
            raise ValueError(
                f"words must be {entries} integers in [0, 2**{bits}) (the device's table), not "
                f"{words.dtype} {words.shape}"
            )
        payload = bytes([frac_bits]) + _little_endian(words.astype(np.int64), (bits + 7) // 8)
        self._split = None  # unknown if the device rejects it
        self.transact(Command.LOAD_TABLE, payload)
        self._split = split

    def load_split(self, fmt: PALFormat) -> MacConfig:
        """Load the product-term table of the split ``fmt``; return the configuration it gives.

        The golden model chooses the table: ``term_table_words(config.retarget(fmt), signed=)``
        for the bitstream's ``config`` (its own table for its own format). Matmuls then
        quantise operands in ``fmt`` and decode results with that configuration (:attr:`config`).

        Raises
        ------
        TypeError, ValueError
            ``fmt`` is not a PALFormat of the device's word width, the table is not loadable
            (a device that is not loadable accepts only its own format, and loads nothing), or
            the device has the ``pal`` readout and ``fmt`` is not its own format (its results
            would be rounded to the bitstream's format).
        DeviceError
            As :meth:`load_table`.
        """
        info = self.info
        config = info.config_for(fmt)
        if fmt == info.config.fmt and not info.loadable:
            return config
        self._check_loadable()
        self._check_readout(fmt)
        self.load_table(info.table_words(fmt), frac_bits=fmt.frac_bits)
        return config

    def _check_loadable(self) -> None:
        """Refuse to load a table into a device whose table is not loadable."""
        info = self.info
        if not info.loadable:
            raise ValueError(
                f"the device's product-term table is not loadable (IDENTIFY); it computes in "
                f"its own split {split_name(info.config.fmt)} only"
            )

    def _check_readout(self, fmt: PALFormat) -> None:
        """Refuse a split other than the bitstream's on a device with the ``pal`` readout."""
        own = self.info.config.fmt
        if self.info.output == "pal" and fmt != own:
            raise ValueError(
                f"split {split_name(fmt)}: the device's pal readout rounds results to the "
                f"bitstream's format {split_name(own)}; use a board with the raw or float32 "
                f"readout"
            )

    def run(self) -> int:
        """Run the loaded tiles through the array; return the device's cycle count.

        The count runs from RUN to the last result byte stored, saturating at 65535.
        """
        reply = self.transact(Command.RUN, reply_length=RUN_LENGTH)
        return int.from_bytes(reply, "little")

    def read(self, *, allow_stale: bool = False) -> np.ndarray:
        """Return the last result tile: ``(rows, cols)`` raw lane integers (object array).

        Raises
        ------
        StaleResult
            The device flags the result stale (a LOAD_A, LOAD_B or LOAD_TABLE was accepted
            since the RUN that computed it), unless ``allow_stale``; its ``lanes`` hold the
            result.
        ProtocolError
            The READ flags byte has bits this driver does not know.
        """
        info = self.info
        lane_bytes = info.lane_bytes
        length = READ_FLAGS_LENGTH + info.rows * info.cols * lane_bytes
        reply = self.transact(Command.READ, reply_length=length)
        flags, data = reply[0], reply[READ_FLAGS_LENGTH:]
        unknown = flags & ~int(ReadFlag.STALE) & 0xFF
        if unknown:
            raise ProtocolError(
                f"READ flags 0x{flags:02x} have unknown bits 0x{unknown:02x} (bit 0 stale)"
            )
        lanes = [
            int.from_bytes(data[i : i + lane_bytes], "little")
            for i in range(0, len(data), lane_bytes)
        ]
        result = np.array(lanes, dtype=object).reshape(info.rows, info.cols)
        if flags & ReadFlag.STALE and not allow_stale:
            raise StaleResult(result)
        return result

    def matmul(
        self,
        a,
        b,
        *,
        output: str | None = None,
        adaptive: bool = True,
        block_size: int | None = None,
    ):
        """Compute ``a @ b`` on the board through :func:`palhdl.sim.driver.matmul`.

        Operands are quantised in, and results decoded with, :attr:`config`: the bitstream's
        configuration for the split the table holds.

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
        block_size : int, optional
            Block scaling of float operands (a block-scaled device only): one scale per
            ``block_size`` elements along K, bit-exact with
            ``golden.matmul(..., block_size=block_size)``.

        Returns
        -------
        (result, MatmulStats)

        Raises
        ------
        ValueError
            If the device's readout cannot give ``output`` (the message names both), a
            ``pal`` readout meets a loaded split other than the bitstream's (its codes are
            rounded to the bitstream's format), or ``block_size`` is given to a device that is
            not block-scaled.
        """
        info = self.info
        if output is None:
            output = "pal" if info.output == "pal" else "float32"
        if block_size is not None and not info.block_scaled:
            raise ValueError(
                f"block_size {block_size}: the device's operands carry no block offsets "
                f"(IDENTIFY: not block-scaled)"
            )
        config = self.config
        self._check_readout(config.fmt)
        return matmul(
            a,
            b,
            config=config,
            rows=info.rows,
            cols=info.cols,
            output=output,
            readout=info.output,
            adaptive=adaptive,
            block_size=block_size,
            transport=SerialTransport(self),
        )


def _offsets(info: DeviceInfo, offsets, shape) -> np.ndarray:
    """Block offsets of a LOAD's codes (zeros if ``None``), checked against the device."""
    if offsets is None:
        return np.zeros(shape, np.int64)
    if not info.block_scaled:
        raise ValueError("offsets: the device's operands carry no block offsets (IDENTIFY)")
    offsets = np.asarray(offsets)
    limit = (1 << (info.config.fmt.mag_bits + 1)) - 1
    if (
        offsets.shape != shape
        or not np.issubdtype(offsets.dtype, np.integer)
        or offsets.min() < 0
        or offsets.max() > limit
    ):
        raise ValueError(
            f"offsets must be integers in [0, {limit}] of the codes' shape {shape}, not "
            f"{offsets.dtype} {offsets.shape}"
        )
    return offsets.astype(np.int64)


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
            self.link.load_a(tile.a, tile.a_scales, tile.a_offsets)
            self.link.load_b(tile.b, tile.b_scales, tile.b_offsets)
            cycles += self.link.run()
            results.append(self.link.read())
        stats = MatmulStats(
            cycles=cycles,
            tiles=len(tiles),
            peak_macs_per_cycle=info.rows * info.cols,
            seconds=time.perf_counter() - started,
        )
        return results, stats
