"""The host link's packet parser: framing, header and packet CRC-8, length and K checks."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from palhdl.boards.hostlink.buffers import load_signature
from palhdl.boards.hostlink.gates import crc8_next, one_hot
from palhdl.boards.hostlink.loadwalk import LoadWalk, walk_signature
from palhdl.boards.hostlink.protocol import MAX_K, Command, ErrorCode
from palhdl.boards.hostlink.receiver import RX_ENTRY
from palhdl.boards.hostlink.table import table_load_signature
from palhdl.hdl.systolic import MAX_DIM
from palhdl.hdl.unit import Unit
from palhdl.validate import check_int

__all__ = ["Parser"]

#: The command flags of :class:`Parser`, by command.
DECODED = {
    Command.IDENTIFY: "is_identify",
    Command.STATUS: "is_status",
    Command.LOAD_A: "is_load_a",
    Command.LOAD_B: "is_load_b",
    Command.LOAD_TABLE: "is_load_table",
    Command.RUN: "is_run",
    Command.READ: "is_read",
}


class Parser(Unit):
    """Byte-wide packet parser of the host link.

    Reads received entries while enabled: a register the parser clears when a packet ends
    and ``resume`` sets again. An entry is taken into a register and acted on in the next
    cycle, during which no entry is taken (at most one entry every two cycles; a UART
    character lasts at least 40), so every decision starts from registers. ``done`` pulses
    for one cycle when a packet has ended (CRC byte, timeout or discard) with ``cmd``, its
    decoded flags (registered with ``cmd``) and ``error`` (0 = good).

    Nothing in a packet is acted upon before its header checksum (HCRC, after ``LEN``) has
    matched: in the cycle after the HCRC byte is acted on (state ACCEPT, in which no entry is
    taken) ``accepted`` pulses, the LOAD's target buffer is invalidated, LEN and the command
    are checked. A LOAD's payload bytes go to a
    :class:`~palhdl.boards.hostlink.loadwalk.LoadWalk` (connected with ``wiring.connect``),
    which checks K and writes the words and scales through two register stages on ``load``
    (forwarded from it). A LOAD_TABLE's
    length is checked against ``table_length`` in the next cycle, before any payload byte is
    acted on (a wrong one writes nothing); then the table is invalidated and the payload bytes
    leave on ``table`` through one register stage.

    A header whose HCRC does not match (its LEN cannot be trusted), or a drop marker of the
    receiver (input was lost) anywhere, sends the parser to DISCARD: it takes and ignores
    every entry until none has come for ``timeout_cycles`` (the line is quiet), then ends the
    packet with HEADER (``cmd``: the CODE byte as received) or LINE (``cmd``: the packet in
    progress, 0 between packets). So a payload is never parsed as packets, and an overrun
    gets exactly one reply.

    Every decision on a byte uses registers only: comparisons of counters with their limits
    are registered one step ahead, and the error is kept as separate flags merged by priority
    in ``error`` (HEADER, TIMEOUT, LINE, CHECKSUM, then the first command error found).

    Parameters
    ----------
    rows, cols : int
        Array geometry, 1..64 each (lanes of LOAD_A / LOAD_B).
    k_max : int
        Deepest K of a LOAD, 1..4096.
    width : int
        Bits of an operand word (``word_bytes = ceil(width / 8)`` on the wire).
    timeout_cycles : int
        Inter-byte timeout inside a packet, and the quiet time that ends a discard, in clock
        cycles, at least 2.
    table_length : int or None
        Payload length of a LOAD_TABLE (:func:`~palhdl.boards.hostlink.protocol.table_length`),
        2..65535; ``None`` (default): the table is not loadable and a LOAD_TABLE is answered
        with ``NOT_LOADABLE``.

    Members
    -------
    i : In(stream.Signature(RX_ENTRY))
        Received entries (:class:`~palhdl.boards.hostlink.receiver.Receiver`).
    resume : In(1)
        Read the next packet (after ``done``).
    done : Out(1)
        The packet has ended (one cycle).
    accepted : Out(1)
        The packet's header checksum has matched (one cycle, with ``cmd`` and its flags).
    cmd : Out(8)
        The command byte of the packet (0 if it ended before it).
    is_identify, is_status, is_load_a, is_load_b, is_load_table, is_run, is_read : Out(1)
        ``cmd`` decoded.
    error : Out(4)
        :class:`~palhdl.boards.hostlink.protocol.ErrorCode` of the packet, 0 if none.
    idle : Out(1)
        Between packets (hunting for SYNC).
    load : Out(load_signature(...))
        LOAD writes into the operand buffers.
    table : Out(table_load_signature())
        Present with ``table_length``: the bytes of a LOAD_TABLE, to the table writer.
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        rows: int,
        cols: int,
        k_max: int,
        width: int,
        timeout_cycles: int,
        table_length: int | None = None,
    ) -> dict:
        """Validate the parameters; return them."""
        return dict(
            rows=check_int("rows", rows, 1, MAX_DIM),
            cols=check_int("cols", cols, 1, MAX_DIM),
            k_max=check_int("k_max", k_max, 1, MAX_K),
            width=check_int("width", width, 1, 64),
            timeout_cycles=check_int("timeout_cycles", timeout_cycles, 2, None),
            table_length=None
            if table_length is None
            else check_int("table_length", table_length, 2, 0xFFFF),
        )

    def __init__(
        self,
        *,
        rows: int,
        cols: int,
        k_max: int,
        width: int,
        timeout_cycles: int,
        table_length: int | None = None,
    ):
        params = self.check_parameters(
            rows=rows,
            cols=cols,
            k_max=k_max,
            width=width,
            timeout_cycles=timeout_cycles,
            table_length=table_length,
        )
        self._rows, self._cols, self._k_max = params["rows"], params["cols"], params["k_max"]
        self._width, self._timeout_cycles = params["width"], params["timeout_cycles"]
        self._table_length = params["table_length"]
        members = {
            "i": In(stream.Signature(RX_ENTRY)),
            "resume": In(1),
            "done": Out(1),
            "accepted": Out(1),
            "cmd": Out(8),
            "error": Out(4),
            "idle": Out(1),
            **{name: Out(1) for name in DECODED.values()},
            "load": Out(load_signature(rows=rows, cols=cols, k_max=k_max, width=width)),
        }
        if self._table_length is not None:
            members["table"] = Out(table_load_signature())
        super().__init__(members)

    @property
    def rows(self) -> int:
        """Lanes of a LOAD_A."""
        return self._rows

    @property
    def cols(self) -> int:
        """Lanes of a LOAD_B."""
        return self._cols

    @property
    def k_max(self) -> int:
        """Deepest K of a LOAD."""
        return self._k_max

    @property
    def width(self) -> int:
        """Bits of an operand word."""
        return self._width

    @property
    def word_bytes(self) -> int:
        """Bytes of an operand word on the wire."""
        return (self._width + 7) // 8

    @property
    def timeout_cycles(self) -> int:
        """Inter-byte timeout inside a packet; the quiet time that ends a discard."""
        return self._timeout_cycles

    @property
    def table_length(self) -> int | None:
        """Payload length of a LOAD_TABLE, ``None`` if the table is not loadable."""
        return self._table_length

    @property
    def latency(self) -> int:
        """Cycles from taking a packet's CRC byte to ``done``."""
        return 2

    def elaborate(self, platform):
        """Build the parser: LOAD walk, error merge, packet FSM, table bytes, timer and CRC."""
        m = Module()
        s = self._signals()
        self._load_walk(m, s)
        self._merge_errors(m, s)
        # Outside PAYLOAD / CHECK / ACCEPT:
        m.d.sync += [
            s.length_due_load.eq(0),
            s.table_check.eq(0),
            s.table_step.eq(0),
        ]
        with m.FSM(name="parser") as fsm:
            self._header(m, s)
            self._accept(m, s)
            self._payload(m, s)
            with m.State("CHECK"):
                m.d.sync += s.length_due_load.eq(s.is_load & ~s.k_range & ~s.walk.complete)
                with m.If(s.got & ~s.entry.drop):
                    m.d.sync += [s.crc_bad.eq(s.entry.byte != s.crc), s.enable.eq(0)]
                    m.next = "DONE"
                self._end_on_drop_or_timeout(m, s)
            # Take and ignore everything until the line has been quiet for timeout_cycles.
            with m.State("DISCARD"), m.If(s.timed_out):
                m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        one_hot(fsm)
        with m.If(s.got & s.length_due_load):
            m.d.sync += s.length_bad.eq(1)
        if self._table_length is not None:
            self._table(m, s)
        self._timer_and_crc(m, s, fsm)
        with m.If(self.resume):
            m.d.sync += s.enable.eq(1)
        return m

    def _signals(self) -> SimpleNamespace:
        """Create the parser's internal state, one named signal each."""
        shapes = {
            "got": 1,  # an entry was taken in the previous cycle: act on it now
            "length_low_zero": 1,
            "length_low_one": 1,
            "length_high_zero": 1,
            "remaining": 16,
            "final": 1,  # remaining == 1: the next byte is the last of the payload
            "crc": 8,
            # Cycles without a byte inside a packet; expired = (timer == timeout - 1),
            # registered.
            "timer": range(self._timeout_cycles),
            "expired": 1,
            "timed_out": 1,
            "timeout_hit": 1,
            "header_bad": 1,  # the HCRC byte did not match
            "line_bad": 1,
            "crc_bad": 1,
            "unknown_command": 1,
            "length_bad": 1,
            "is_load": 1,  # LOAD_A or LOAD_B
            "is_plain": 1,  # a command without payload
            # Acting on the entry finds LENGTH (a LOAD's payload ends too early or too late).
            "length_due_load": 1,
            "not_loadable": 1,  # a LOAD_TABLE without a loadable table
            # LOAD_TABLE: LEN's bytes equal those of table_length (registered as they arrive),
            # check them now (the cycle after ACCEPT), the split byte is next, and what the
            # entry taken will be (split byte, entry byte; registered like walk).
            "table_low_ok": 1,
            "table_high_ok": 1,
            "table_check": 1,
            "table_first": 1,
            "table_step": 2,
        }
        s = SimpleNamespace(**{name: Signal(shape, name=name) for name, shape in shapes.items()})
        s.entry = Signal(RX_ENTRY, name="entry")  # the entry taken in the previous cycle
        s.enable = Signal(init=1, name="enable")
        s.k_range = Signal(name="k_range")  # the LOAD walk found K_RANGE
        return s

    def _merge_errors(self, m: Module, s: SimpleNamespace) -> None:
        """``error``: one flag per error, merged by priority.

        HEADER, TIMEOUT, LINE, CHECKSUM, then the first of UNKNOWN_COMMAND / NOT_LOADABLE /
        K_RANGE / LENGTH found (at most one of these is set: finding one stops the checks). In
        a LOAD the command is known and LENGTH is only found at the end of the payload, so
        while the payload is walked K_RANGE alone stops the checks and the writes.
        """
        s.by_priority = [
            (s.header_bad, ErrorCode.HEADER),
            (s.timeout_hit, ErrorCode.TIMEOUT),
            (s.line_bad, ErrorCode.LINE),
            (s.crc_bad, ErrorCode.CHECKSUM),
            (s.unknown_command, ErrorCode.UNKNOWN_COMMAND),
            (s.not_loadable, ErrorCode.NOT_LOADABLE),
            (s.k_range, ErrorCode.K_RANGE),
            (s.length_bad, ErrorCode.LENGTH),
        ]
        merged = Const(0, 4)
        for flag, code in reversed(s.by_priority):
            merged = Mux(flag, code, merged)
        m.d.comb += self.error.eq(merged)
        m.d.sync += [s.got.eq(self.i.valid & self.i.ready), s.entry.eq(self.i.payload)]

    def _load_walk(self, m: Module, s: SimpleNamespace) -> None:
        """Add the :class:`~palhdl.boards.hostlink.loadwalk.LoadWalk` of LOAD payloads."""
        m.submodules.load_walk = walk = LoadWalk(
            rows=self._rows, cols=self._cols, k_max=self._k_max, width=self._width
        )
        s.walk = walk_signature().create(path=("walk",))
        wiring.connect(m, s.walk, walk.control)
        wiring.connect(m, wiring.flipped(self.load), walk.load)
        m.d.comb += [
            s.walk.entry.eq(s.entry),
            s.walk.got.eq(s.got),
            s.walk.is_a.eq(self.is_load_a),
            s.k_range.eq(s.is_load & s.walk.k_bad),  # (cleared when a LOAD is accepted)
        ]

    def _header(self, m: Module, s: SimpleNamespace) -> None:
        """States IDLE (hunting for SYNC), CMD, LEN_LO, LEN_HI and HCRC: register the header.

        Nothing is decided here but the next state: the command is decoded into flags and LEN
        registered with its comparisons, to be acted on in ACCEPT once HCRC has matched.
        """
        byte, decoded = s.entry.byte, {code: getattr(self, name) for code, name in DECODED.items()}
        # Bytes lost before a SYNC belonged to an earlier packet: start this one anyway. A drop
        # marker between packets is discarded (and answered) like one inside a packet.
        with m.State("IDLE"), m.If(s.got & (s.entry.is_sync | s.entry.drop)):
            m.d.sync += [s.crc.eq(0), self.cmd.eq(0)]
            m.d.sync += [flag.eq(0) for flag in (*decoded.values(), s.is_load, s.is_plain)]
            m.d.sync += [flag.eq(0) for flag, _ in s.by_priority if flag is not s.k_range]
            m.d.sync += s.line_bad.eq(s.entry.drop)
            m.next = "CMD"
            with m.If(s.entry.drop):
                m.next = "DISCARD"
        with m.State("CMD"):
            with m.If(s.got & ~s.entry.drop):
                m.d.sync += self.cmd.eq(byte)
                m.d.sync += [flag.eq(byte == code) for code, flag in decoded.items()]
                loads = (Command.LOAD_A, Command.LOAD_B)
                plain = (Command.IDENTIFY, Command.STATUS, Command.RUN, Command.READ)
                m.d.sync += [
                    s.is_load.eq(Cat(byte == code for code in loads).any()),
                    s.is_plain.eq(Cat(byte == code for code in plain).any()),
                ]
                m.next = "LEN_LO"
            self._end_on_drop_or_timeout(m, s)
        with m.State("LEN_LO"):
            with m.If(s.got):
                m.d.sync += [
                    s.remaining[:8].eq(byte),
                    s.length_low_zero.eq(s.entry.is_zero),
                    s.length_low_one.eq(s.entry.is_one),
                ]
                if self._table_length is not None:
                    m.d.sync += s.table_low_ok.eq(byte == self._table_length % 256)
                m.next = "LEN_HI"
            self._end_on_drop_or_timeout(m, s)
        with m.State("LEN_HI"):
            with m.If(s.got):
                m.d.sync += [s.remaining[8:].eq(byte), s.length_high_zero.eq(s.entry.is_zero)]
                if self._table_length is not None:
                    m.d.sync += s.table_high_ok.eq(byte == self._table_length // 256)
                m.next = "HCRC"
            self._end_on_drop_or_timeout(m, s)
        with m.State("HCRC"):
            # `crc` is the CRC-8 of CODE and LEN here (it takes this byte in this cycle).
            with m.If(s.got & ~s.entry.drop):
                m.d.sync += s.header_bad.eq(byte != s.crc)
                m.next = "ACCEPT"
            self._end_on_drop_or_timeout(m, s)

    def _accept(self, m: Module, s: SimpleNamespace) -> None:
        """State ACCEPT: act on a header whose HCRC matched, else discard.

        No entry is taken in this state, so the first payload byte is taken in PAYLOAD, with
        the LOAD walk started here.
        """
        with m.State("ACCEPT"):
            with m.If(s.header_bad):
                m.next = "DISCARD"
            with m.Else():
                m.d.comb += self.accepted.eq(1)
                empty = s.length_low_zero & s.length_high_zero
                m.d.sync += s.final.eq(s.length_low_one & s.length_high_zero)
                with m.If(s.is_load):
                    # Invalidates the target buffer and starts the walk at K.
                    m.d.comb += s.walk.start.eq(1)
                with m.Elif(self.is_load_table):
                    if self._table_length is None:
                        m.d.sync += s.not_loadable.eq(1)
                    else:
                        m.d.sync += [s.table_check.eq(1), s.table_first.eq(1)]
                with m.Elif(~s.is_plain):
                    m.d.sync += s.unknown_command.eq(1)
                with m.If(s.is_plain & ~empty):
                    m.d.sync += s.length_bad.eq(1)
                m.next = "PAYLOAD"
                with m.If(empty):
                    m.next = "CHECK"

    @staticmethod
    def _end_on_drop_or_timeout(m: Module, s: SimpleNamespace) -> None:
        """Inside a packet's state: a drop marker starts the discard, a timeout ends it."""
        with m.If(s.got & s.entry.drop):
            m.next = "DISCARD"
        with m.If(s.timed_out):
            m.next = "DONE"

    def _payload(self, m: Module, s: SimpleNamespace) -> None:
        """State PAYLOAD: count the payload down; a LOAD's bytes go to the walk."""
        with m.State("PAYLOAD"):
            with m.If(s.got):
                m.d.sync += [s.remaining.eq(s.remaining - 1), s.final.eq(s.remaining == 2)]
                with m.If(s.final):
                    m.next = "CHECK"
            self._end_on_drop_or_timeout(m, s)
            m.d.comb += s.walk.payload.eq(s.is_load)
            last = s.walk.last_scale & ~s.final
            m.d.sync += s.length_due_load.eq(s.is_load & last & ~s.k_range)
            if self._table_length is not None:
                step = Cat(s.table_first, ~s.table_first)
                m.d.sync += s.table_step.eq(Mux(self.is_load_table, step, 0))

    def _table(self, m: Module, s: SimpleNamespace) -> None:
        """LOAD_TABLE: check LEN, then invalidate the table and hand on the payload bytes.

        The cycle after ACCEPT checks LEN; no entry is acted on in it (none was taken in
        ACCEPT), so LENGTH is found before the first payload byte; a packet of the wrong
        length writes nothing. ``table_step`` is registered in the cycle that takes the
        entry (as ``walk``): it implies PAYLOAD and a LOAD_TABLE.
        """
        table = self.table
        with m.If(s.table_check):
            with m.If(s.table_low_ok & s.table_high_ok):
                m.d.comb += table.invalidate.eq(1)
            with m.Else():
                m.d.sync += s.length_bad.eq(1)
        with m.If(s.got & s.table_step[0]):
            m.d.sync += s.table_first.eq(0)
        m.d.sync += [
            table.byte.eq(s.entry.byte),
            table.split_en.eq(s.got & s.table_step[0] & ~s.length_bad & ~s.entry.drop),
            table.entry_en.eq(s.got & s.table_step[1] & ~s.length_bad & ~s.entry.drop),
        ]

    def _timer_and_crc(self, m: Module, s: SimpleNamespace, fsm) -> None:
        """Inside a packet: CRC over everything but SYNC and the CRC byte, inter-byte timeout.

        The timer restarts when an entry is taken (a cycle before it is acted on), and an entry
        taken as the time runs out wins, so the timeout counts between the takes; in DISCARD
        it ends the discard (the line is quiet) instead of finding TIMEOUT. In DONE, after the
        CRC byte or a timeout, the parser is disabled (no entry arrives and no timeout is
        found) until IDLE clears the timer. No entry is taken in ACCEPT.
        """
        inside = ~fsm.ongoing("IDLE")
        m.d.comb += self.i.ready.eq(s.enable & ~s.got & ~fsm.ongoing("ACCEPT"))
        with m.If(~inside | (self.i.valid & self.i.ready)):
            m.d.sync += [s.timer.eq(0), s.expired.eq(0)]
        with m.Else():
            m.d.sync += [
                s.timer.eq(s.timer + 1),
                s.expired.eq(s.timer == self._timeout_cycles - 2),
            ]
        with m.If(inside):
            with m.If(s.got):
                m.d.sync += s.line_bad.eq(s.line_bad | s.entry.framing_error | s.entry.drop)
                with m.If(~fsm.ongoing("CHECK")):
                    m.d.sync += s.crc.eq(crc8_next(s.crc, s.entry.byte))
            with m.Elif(s.timed_out):
                m.d.sync += s.enable.eq(0)
                with m.If(~fsm.ongoing("DISCARD")):
                    m.d.sync += s.timeout_hit.eq(1)
        m.d.comb += [
            # (expired implies that no entry is being acted on: got restarted the timer)
            s.timed_out.eq(inside & s.enable & s.expired & ~self.i.valid),
            self.idle.eq(fsm.ongoing("IDLE")),
        ]
