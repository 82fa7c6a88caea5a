"""Formal proofs of the host-link packet parser (protocol 4, ``hostlink.parser.Parser``).

:class:`ParserHarness` feeds the parser arbitrary receive entries (any byte, any flag,
drop markers and framing errors included; an offered entry is held until it is taken) and
``resume`` at any time between packets (the parser's contract: after ``done``). It counts
packet starts (an entry with ``is_sync`` or ``drop`` taken while the parser is idle) and
``done`` pulses, and asserts:

- never stuck: after ``quiet_bound`` cycles without an entry offered, the parser is idle
  (hunting for SYNC), whatever it was doing;
- every packet answered: ``done`` pulses only for a started packet (``done <= starts``),
  and whenever the parser is idle, every started packet has had its ``done``: exactly one
  ``done`` per packet start;
- a corrupted header never executes: when the fifth byte of a packet (HCRC) differs from
  the CRC-8/SMBUS of the three before it (CODE, LEN), computed here from the protocol's
  definition (polynomial 0x07, initial value 0), that packet never pulses ``accepted``,
  never writes or invalidates an operand buffer or the term table, and ends with an error
  (never an OK reply).

Parameters: the smallest parser (1x1 array, ``k_max`` 1, 8-bit words, loadable table of
2 bytes, timeout 4 cycles). The proofs are bounded (``mode bmc``); the depth allows a whole
header, a payload, the timeout and the discard.
"""

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import (
    Assert,
    Assume,
    Cover,
    Elaboratable,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
)
from amaranth.lib import wiring

from palhdl.boards.hostlink.parser import Parser

TIMEOUT = 4
HEADER_BYTES = 4  # CODE, LEN_LO, LEN_HI, HCRC after SYNC
CRC_POLY = 0x07


def crc8_step(crc, byte, poly=CRC_POLY):
    """CRC-8/SMBUS register after ``byte``: shift out MSB first, XOR ``poly`` on a carry."""
    value = crc ^ byte
    for _ in range(8):
        value = Mux(value[7], (value << 1) ^ poly, value << 1)[:8]
    return value


def make_parser(**overrides):
    parameters = dict(rows=1, cols=1, k_max=1, width=8, timeout_cycles=TIMEOUT, table_length=2)
    return Parser(**(parameters | overrides))


class ParserHarness(Elaboratable):
    """The parser's properties; see the module. ``quiet_bound``: cycles of a quiet input."""

    def __init__(self, parser, *, quiet_bound, crc_poly=CRC_POLY):
        self.parser = parser
        self.quiet_bound = quiet_bound
        self.crc_poly = crc_poly

    def elaborate(self, platform):
        m = Module()
        m.submodules.parser = p = self.parser
        m.d.comb += Assume(~ResetSignal())

        # The receive FIFO: any entry, held until taken.
        width = len(Value.cast(p.i.payload))
        entry = AnySeq(width)
        m.d.comb += [
            p.i.valid.eq(AnySeq(1)),
            Value.cast(p.i.payload).eq(entry),
            p.resume.eq(AnySeq(1)),
        ]
        held, held_entry = Signal(), Signal(width)
        m.d.sync += [held.eq(p.i.valid & ~p.i.ready), held_entry.eq(entry)]
        with m.If(held):
            m.d.comb += Assume(p.i.valid & (entry == held_entry))
        # The core resumes the parser after it has answered a packet, never during one.
        m.d.comb += Assume(~p.resume | p.idle)
        take = p.i.valid & p.i.ready
        took = Signal()
        m.d.sync += took.eq(take)

        # Never stuck.
        quiet = Signal(range(self.quiet_bound + 1))
        with m.If(p.i.valid):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != self.quiet_bound):
            m.d.sync += quiet.eq(quiet + 1)
        with m.If(quiet == self.quiet_bound):
            m.d.comb += Assert(p.idle)

        # One done per packet start.
        start = take & p.idle & (p.i.payload.is_sync | p.i.payload.drop)
        starts, dones = Signal(8), Signal(8)
        with m.If(start):
            m.d.sync += starts.eq(starts + 1)
        with m.If(p.done):
            m.d.sync += dones.eq(dones + 1)
            m.d.comb += Assert(starts == dones + 1)
        m.d.comb += Assert(dones <= starts)
        with m.If(p.idle & ~took):
            m.d.comb += Assert(starts == dones)

        # A corrupted header never executes.
        index = Signal(range(HEADER_BYTES + 2))  # header bytes taken in this packet, +1
        crc = Signal(8)
        corrupt = Signal()
        with m.If(start):
            m.d.sync += [index.eq(1), crc.eq(0), corrupt.eq(0)]
        with m.Elif(take & (index != 0) & (index <= HEADER_BYTES)):
            m.d.sync += [
                index.eq(index + 1),
                crc.eq(crc8_step(crc, p.i.payload.byte, self.crc_poly)),
            ]
            with m.If(index == HEADER_BYTES):
                m.d.sync += corrupt.eq(p.i.payload.byte != crc)
        load, table = p.load, p.table
        writes = [
            load.a_en.any(),
            load.b_en.any(),
            load.scale_a_en.any(),
            load.scale_b_en.any(),
            load.invalidate_a,
            load.invalidate_b,
            table.split_en,
            table.entry_en,
            table.invalidate,
        ]
        with m.If(corrupt & ~p.idle):
            m.d.comb += [Assert(~p.accepted), *[Assert(~w) for w in writes]]
            with m.If(p.done):
                m.d.comb += Assert(p.error != 0)
        m.d.comb += [Cover(p.accepted), Cover(corrupt & p.done)]
        return m


class Wrapped(wiring.Component):
    """A parser behind a broken front end (``fault``), with the parser's own ports.

    ``"repair_header"``: the HCRC byte of every packet is replaced by the right CRC, so a
    corrupted header is executed. ``"lose_done"``: the first ``done`` pulse is swallowed.
    """

    def __init__(self, parser, fault):
        self.inner = parser
        self.fault = fault
        super().__init__(parser.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        for name, member in self.signature.members.items():
            if name in ("i", "done"):
                continue
            if member.is_signature:
                wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(inner, name))
            elif member.flow == wiring.In:
                m.d.comb += getattr(inner, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(inner, name))
        m.d.comb += [
            inner.i.valid.eq(self.i.valid),
            self.i.ready.eq(inner.i.ready),
            inner.i.payload.eq(self.i.payload),
            self.done.eq(inner.done),
        ]
        if self.fault == "repair_header":
            index, crc = Signal(range(HEADER_BYTES + 2)), Signal(8)
            take = self.i.valid & self.i.ready
            with m.If(take & self.idle & (self.i.payload.is_sync | self.i.payload.drop)):
                m.d.sync += [index.eq(1), crc.eq(0)]
            with m.Elif(take & (index != 0) & (index <= HEADER_BYTES)):
                m.d.sync += [index.eq(index + 1), crc.eq(crc8_step(crc, self.i.payload.byte))]
            with m.If(index == HEADER_BYTES):
                m.d.comb += inner.i.payload.byte.eq(crc)
        else:  # "lose_done"
            lost = Signal()
            m.d.sync += lost.eq(lost | inner.done)
            m.d.comb += self.done.eq(inner.done & lost)
        return m


#: The quiet input that returns the parser to idle: the timeout, then DONE and IDLE.
QUIET_BOUND = TIMEOUT + 2
#: BMC depth: a SYNC, a header, ACCEPT, a CRC byte and DONE take 14 cycles (an entry
#: every other cycle), so a whole packet and the next one's start fit in 20.
DEPTH = 20


def test_parser(formal):
    result = formal(ParserHarness(make_parser(), quiet_bound=QUIET_BOUND), mode="bmc", depth=DEPTH)
    assert result.status == "PASS", result.log


@pytest.mark.slow
def test_parser_deeper(formal):
    result = formal(ParserHarness(make_parser(), quiet_bound=QUIET_BOUND), mode="bmc", depth=30)
    assert result.status == "PASS", result.log


def test_parser_covers_accepted_and_corrupted_packets(formal):
    harness = ParserHarness(make_parser(), quiet_bound=QUIET_BOUND)
    result = formal(harness, mode="cover", depth=DEPTH)
    assert result.status == "PASS", result.log  # both covers reached: the proof is not vacuous
    assert len(result.traces) == 2


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(
            lambda: ParserHarness(Wrapped(make_parser(), "repair_header"), quiet_bound=QUIET_BOUND),
            id="corrupted-header-executed",
        ),
        pytest.param(
            lambda: ParserHarness(Wrapped(make_parser(), "lose_done"), quiet_bound=QUIET_BOUND),
            id="done-lost",
        ),
        pytest.param(
            lambda: ParserHarness(make_parser(timeout_cycles=TIMEOUT + 1), quiet_bound=QUIET_BOUND),
            id="slower-timeout",
        ),
        pytest.param(
            lambda: ParserHarness(make_parser(), quiet_bound=QUIET_BOUND, crc_poly=0x31),
            id="wrong-reference-crc",
        ),
    ],
)
def test_parser_proof_fails_when_broken(formal, broken):
    result = formal(broken(), mode="bmc", depth=DEPTH)
    assert result.status == "FAIL"
    assert result.traces
