"""The host link's reply generator: ``SYNC | code | LEN | HCRC | payload | CRC`` onto the UART."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, stream
from amaranth.lib.wiring import In, Out

from palhdl.boards.hostlink.gates import crc8_next, one_hot
from palhdl.boards.hostlink.protocol import (
    ERROR_LENGTH,
    HEADER_LENGTH,
    IDENTIFY_LENGTH,
    READ_FLAGS_LENGTH,
    RUN_LENGTH,
    STATUS_LENGTH,
    SYNC,
)
from palhdl.hdl.unit import Unit
from palhdl.validate import check_instance, check_int

__all__ = ["Reply", "ReplyKind"]


class ReplyKind(enum.Enum, shape=3):
    """What :class:`Reply` sends: its payload."""

    EMPTY = 0  # no payload (a LOAD's reply)
    ERROR = 1  # error code, received command byte
    IDENTIFY = 2  # the constant IDENTIFY payload
    STATUS = 3  # the status bytes
    RUN = 4  # the run's cycle count
    READ = 5  # the read flags byte, then the result memory (read_length bytes)


class Reply(Unit):
    """Reply generator of the host link.

    ``start`` only snapshots the small payloads; the generator starts from registers a cycle
    later. The header is ``SYNC``, the code, ``LEN`` and its checksum ``HCRC`` (the CRC-8 of
    code and ``LEN``); the closing CRC covers everything after ``SYNC``. The next byte is
    selected into a register (offered only when the state, index and
    CRC did not change in the cycle before, so it is up to date) and handed to the UART
    transmitter through a one-byte buffer, so the byte multiplexer never waits on the
    transmitter; the CRC is updated from the buffered byte a cycle after it was sent. A
    character lasts at least 40 cycles, so this costs no throughput.

    Parameters
    ----------
    identify : bytes
        The IDENTIFY payload (:data:`~palhdl.boards.hostlink.protocol.IDENTIFY_LENGTH` bytes).
    read_length : int
        Bytes of the result memory, 1..65534; a READ payload is the flags byte and these.

    Members
    -------
    start : In(1)
        Send the reply described by ``kind`` and ``code`` (only while not ``busy``); the
        ERROR, STATUS and RUN payloads and the READ flags are sampled in this cycle.
    kind : In(ReplyKind)
        The payload; held from ``start`` to the cycle after it.
    code : In(8)
        The reply code; held like ``kind``.
    error, command : In(4), In(8)
        The payload of an ERROR reply.
    status : In(data.ArrayLayout(8, STATUS_LENGTH))
        The payload of a STATUS reply.
    run_cycles : In(16)
        The payload of a RUN reply.
    read_flags : In(8)
        The first payload byte of a READ reply (:class:`~palhdl.boards.hostlink.protocol.ReadFlag`).
    read_addr : Out(range(read_length))
        Address of the result memory (read port with one cycle of latency).
    read_data : In(8)
        The result memory's byte at ``read_addr`` one cycle earlier.
    o : Out(stream.Signature(8))
        The bytes of the reply, to the UART transmitter.
    busy : Out(1)
        A reply is being sent (until the transmitter has taken its CRC byte).
    """

    @classmethod
    def check_parameters(cls, *, identify: bytes, read_length: int) -> tuple[bytes, int]:
        """Validate the parameters; return ``(identify, read_length)``."""
        check_instance("identify", identify, bytes)
        if len(identify) != IDENTIFY_LENGTH:
            raise ValueError(
                f"identify must be {IDENTIFY_LENGTH} bytes long, not {len(identify)} bytes"
            )
        return identify, check_int("read_length", read_length, 1, 0xFFFF - READ_FLAGS_LENGTH)

    def __init__(self, *, identify: bytes, read_length: int):
        self._identify, self._read_length = self.check_parameters(
            identify=identify, read_length=read_length
        )
        super().__init__(
            {
                "start": In(1),
                "kind": In(ReplyKind),
                "code": In(8),
                "error": In(4),
                "command": In(8),
                "status": In(data.ArrayLayout(8, STATUS_LENGTH)),
                "run_cycles": In(16),
                "read_flags": In(8),
                "read_addr": Out(range(read_length)),
                "read_data": In(8),
                "o": Out(stream.Signature(8)),
                "busy": Out(1),
            }
        )

    @property
    def identify(self) -> bytes:
        """The IDENTIFY payload."""
        return self._identify

    @property
    def read_length(self) -> int:
        """Bytes of the result memory (a READ payload has :data:`READ_FLAGS_LENGTH` more)."""
        return self._read_length

    @property
    def latency(self) -> int:
        """Cycles from ``start`` to the first byte (SYNC) on ``o``."""
        return 5

    def lengths(self) -> dict[ReplyKind, int]:
        """Payload length of each reply kind."""
        return {
            ReplyKind.EMPTY: 0,
            ReplyKind.ERROR: ERROR_LENGTH,
            ReplyKind.IDENTIFY: IDENTIFY_LENGTH,
            ReplyKind.STATUS: STATUS_LENGTH,
            ReplyKind.RUN: RUN_LENGTH,
            ReplyKind.READ: READ_FLAGS_LENGTH + self._read_length,
        }

    def elaborate(self, platform):
        """Build the snapshot, the byte FSM, the output buffer and the CRC."""
        m = Module()
        lengths = self.lengths()
        s = SimpleNamespace(
            kind=Signal(ReplyKind, name="kind"),
            code=Signal(8, name="code"),
            captured=[Signal(8, name=f"reply_byte{i}") for i in range(STATUS_LENGTH)],
            index=Signal(range(max(IDENTIFY_LENGTH, self._read_length)), name="index"),
            # Payload bytes after the one being sent, minus one: negative (sign bit) at the last.
            left=Signal(range(-1, max(lengths.values()) - 1), name="left"),
            length=Signal(16, name="length"),
            crc=Signal(8, name="crc"),
            data=Signal(8, name="data"),
            # The FSM has a byte to send: `data`, registered in `data_r`.
            offer=Signal(name="offer"),
            sent=Signal(name="sent"),
            # `start` was pulsed last cycle (`kind` and `code` are still valid).
            started=Signal(name="started"),
            # A READ's flags byte (in `captured[0]`) is still to be sent.
            flags_next=Signal(name="flags_next"),
        )
        m.d.comb += self.read_addr.eq(s.index)
        s.read_byte = Signal(8, name="read_byte")
        m.d.sync += s.read_byte.eq(self.read_data)
        tx_byte = self._output_buffer(m, s)
        self._snapshot(m, s)
        self._indexed_bytes(m, s)
        with m.FSM(name="reply") as fsm:
            with m.State("IDLE"), m.If(s.started):
                m.d.sync += [
                    s.kind.eq(self.kind),
                    s.code.eq(self.code),
                    s.index.eq(0),
                    s.crc.eq(0),
                    s.flags_next.eq(1),
                ]
                with m.Switch(self.kind):
                    for reply_kind, reply_length in lengths.items():
                        with m.Case(reply_kind):
                            # (EMPTY goes from HEAD to TAIL and never uses `left`.)
                            m.d.sync += [
                                s.length.eq(reply_length),
                                s.left.eq(max(reply_length - 2, -1)),
                            ]
                m.next = "HEAD"
            self._head(m, s)
            self._body(m, s)
            # The result memory's read port has one cycle of latency, and its byte is
            # registered (`read_byte`) before the byte multiplexer: block RAM is slow to output.
            with m.State("FETCH"):
                m.next = "FETCH_REGISTERED"
            with m.State("FETCH_REGISTERED"):
                m.next = "BODY"
            with m.State("TAIL"):
                # The last byte's CRC update lands while that byte waits in the buffer.
                m.d.comb += [s.offer.eq(1), s.data.eq(s.crc)]
                with m.If(s.sent):
                    m.next = "IDLE"
        one_hot(fsm)
        self._crc_and_busy(m, s, fsm, tx_byte)
        return m

    def _output_buffer(self, m: Module, s: SimpleNamespace):
        """Register the offered byte and hand it to ``o`` through a one-byte buffer."""
        tx_byte, tx_full = Signal(8), Signal()
        m.d.comb += [self.o.payload.eq(tx_byte), self.o.valid.eq(tx_full)]
        with m.If(self.o.ready):
            m.d.sync += tx_full.eq(0)
        data_r = Signal(8)
        # data_r does not reflect the current state, index and CRC yet: they change in the
        # cycle after `stale` is set, the registered header and IDENTIFY bytes in the next,
        # data_r in the one after.
        s.stale = Signal()
        stale_2 = Signal()
        s.tx_full = tx_full
        m.d.sync += [data_r.eq(s.data), stale_2.eq(s.stale)]
        m.d.comb += s.sent.eq(s.offer & ~tx_full & ~s.stale & ~stale_2)
        with m.If(s.sent):
            m.d.sync += [tx_byte.eq(data_r), tx_full.eq(1)]
        return tx_byte

    def _snapshot(self, m: Module, s: SimpleNamespace) -> None:
        """Snapshot the small payloads at ``start``: their sources may change right after."""
        snapshots = {
            ReplyKind.ERROR: [self.error, self.command],
            ReplyKind.STATUS: [self.status[i] for i in range(STATUS_LENGTH)],
            ReplyKind.RUN: [self.run_cycles[:8], self.run_cycles[8:]],
            ReplyKind.READ: [self.read_flags],
        }
        with m.If(self.start), m.Switch(self.kind):
            for reply_kind, values in snapshots.items():
                with m.Case(reply_kind):
                    m.d.sync += [s.captured[i].eq(v) for i, v in enumerate(values)]
        m.d.sync += s.started.eq(self.start)

    def _indexed_bytes(self, m: Module, s: SimpleNamespace) -> None:
        """Register the header byte and the IDENTIFY byte at ``index``.

        ``head_byte`` (SYNC, code, ``LEN``, ``HCRC``) and ``identify_byte`` are registered
        before the byte multiplexer, so the index's decode stays out of the path into
        ``data_r``.
        """
        header = [SYNC, s.code, s.length[:8], s.length[8:], s.crc]
        s.head_byte = Signal(8, name="head_byte")
        s.identify_byte = Signal(8, name="identify_byte")
        with m.Switch(s.index):
            for position, value in enumerate(header):
                with m.Case(position):
                    m.d.sync += s.head_byte.eq(value)
        with m.Switch(s.index):
            for position, value in enumerate(self._identify):
                with m.Case(position):
                    m.d.sync += s.identify_byte.eq(value)

    def _head(self, m: Module, s: SimpleNamespace) -> None:
        """State HEAD: SYNC, code, the two length bytes and their checksum (the CRC so far)."""
        with m.State("HEAD"):
            m.d.comb += [s.offer.eq(1), s.data.eq(s.head_byte)]
            with m.If(s.sent):
                m.d.sync += s.index.eq(s.index + 1)
                with m.If(s.index == HEADER_LENGTH - 1):
                    m.d.sync += s.index.eq(0)
                    with m.If(s.kind == ReplyKind.EMPTY):
                        m.next = "TAIL"
                    with m.Else():
                        m.next = "BODY"

    def _body(self, m: Module, s: SimpleNamespace) -> None:
        """State BODY: the payload bytes."""
        with m.State("BODY"):
            m.d.comb += s.offer.eq(1)
            with m.Switch(s.kind):
                with m.Case(ReplyKind.IDENTIFY):
                    m.d.comb += s.data.eq(s.identify_byte)
                with m.Case(ReplyKind.READ):
                    m.d.comb += s.data.eq(Mux(s.flags_next, s.captured[0], s.read_byte))
                with m.Default():
                    m.d.comb += s.data.eq(s.captured[0])
            with m.If(s.sent):
                m.d.sync += [s.left.eq(s.left - 1), s.flags_next.eq(0)]
                # (The flags byte is not in the result memory.)
                with m.If((s.kind != ReplyKind.READ) | ~s.flags_next):
                    m.d.sync += s.index.eq(s.index + 1)
                # The snapshot is a shift register: the next byte moves to captured[0].
                m.d.sync += [a.eq(b) for a, b in itertools.pairwise(s.captured)]
                with m.If(s.left[-1]):
                    m.next = "TAIL"
                with m.Elif(s.kind == ReplyKind.READ):
                    m.next = "FETCH"

    def _crc_and_busy(self, m: Module, s: SimpleNamespace, fsm, tx_byte) -> None:
        """Update the CRC from the sent byte; drive the ``stale`` flag and ``busy``."""
        crc_pending = Signal()  # tx_byte was sent last cycle and is covered by the CRC
        m.d.sync += crc_pending.eq(
            s.sent & ~fsm.ongoing("TAIL") & (~fsm.ongoing("HEAD") | (s.index != 0))
        )
        with m.If(crc_pending):
            m.d.sync += s.crc.eq(crc8_next(s.crc, tx_byte))
        fetching = fsm.ongoing("FETCH") | fsm.ongoing("FETCH_REGISTERED")
        m.d.sync += s.stale.eq(s.started | s.sent | fetching | crc_pending)
        # Busy until the transmitter has taken the CRC byte, so a STATUS snapshot is as late
        # as it would be without the buffer; registered (free one cycle later).
        free = Signal()
        m.d.sync += free.eq(fsm.ongoing("IDLE") & ~s.tx_full & ~self.start & ~s.started)
        m.d.comb += self.busy.eq(~free)
