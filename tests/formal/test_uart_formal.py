"""Formal proofs of the 8N1 UART receiver (:class:`palhdl.hdl.uart.UARTRx`, divisor 4).

:class:`ReceiverHarness` drives ``rx`` with arbitrary noise for as long as the solver likes
(any reachable state of the receiver, framing errors and glitches included), then holds the
line high for ``gap`` cycles, then a transmitter model sends well-formed 8N1 characters of
arbitrary data, back to back or after any idle time, each bit exactly ``divisor`` cycles.
From then on it asserts that every character is received exactly once, with its byte and no
framing error, within ``bound`` cycles of its start bit, and that nothing else is received:
the receiver is never stuck, whatever came before the quiet gap.

``gap = 39`` and ``bound = 41`` cycles are the tightest values that hold (38 and 40 fail): a
character is 40 cycles, the synchroniser adds 2 and the stop bit is sampled in its middle.
The proofs are bounded (``mode bmc``): k-induction does not close because it may start the
receiver's state machine in one of its unused encodings, which no reachable state has.
At depth 130 the noise may last up to 50 cycles (longer than a character, so every state of
the receiver, the framing-error wait included, is reached) before the gap and a checked
character; the fast-loop proof at depth 100 allows 20 cycles of noise.
"""

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cat, Elaboratable, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring

from palhdl.hdl.uart import UARTRx

DIVISOR = 4
#: 8N1: a character is 10 bits.
CHARACTER = 10 * DIVISOR


class ReceiverHarness(Elaboratable):
    """Noise, a quiet ``gap``, then arbitrary characters into ``receiver``; see the module."""

    def __init__(self, receiver, *, gap, bound):
        self.receiver = receiver
        self.gap = gap
        self.bound = bound

    def transmitter(self, m, armed):
        """The transmitter model; returns ``(line, start, byte)``: ``start`` begins a character."""
        sending = Signal()
        index = Signal(range(10))
        timer = Signal(range(DIVISOR))
        frame = Signal(10)
        bit_end = timer == DIVISOR - 1
        free = ~sending | ((index == 9) & bit_end)
        start = Signal()
        byte = AnySeq(8)
        m.d.comb += start.eq(armed & free & AnySeq(1))
        with m.If(start):
            m.d.sync += [sending.eq(1), index.eq(0), timer.eq(0), frame.eq(Cat(0, byte, 1))]
        with m.Elif(sending):
            m.d.sync += timer.eq(Mux(bit_end, 0, timer + 1))
            with m.If(bit_end):
                m.d.sync += index.eq(index + 1)
                with m.If(index == 9):
                    m.d.sync += sending.eq(0)
        self.sending, self.elapsed = sending, index * DIVISOR + timer
        return Mux(sending, frame.bit_select(index, 1), 1), start, byte

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = rx = self.receiver
        m.d.comb += Assume(~ResetSignal())

        noise = Signal(init=1)  # the line is arbitrary until the solver ends the noise
        quiet = Signal(range(self.gap + 1))
        with m.If(~AnySeq(1)):
            m.d.sync += noise.eq(0)
        with m.If(~noise & (quiet != self.gap)):
            m.d.sync += quiet.eq(quiet + 1)
        armed = ~noise & (quiet == self.gap)
        line, start, byte = self.transmitter(m, armed)
        m.d.comb += rx.rx.eq(Mux(noise, AnySeq(1), Mux(armed, line, 1)))

        # The characters not yet received: the one being sent (cur) and the one before (prev).
        cur, prev = Signal(8), Signal(8)
        cur_owed, prev_owed = Signal(), Signal()
        cur_age, prev_age = Signal(range(self.bound + 2)), Signal(range(self.bound + 2))
        for owed, age in ((cur_owed, cur_age), (prev_owed, prev_age)):
            with m.If(owed & (age <= self.bound)):
                m.d.sync += age.eq(age + 1)
            m.d.comb += Assert(~owed | (age <= self.bound))  # received within `bound`
        # Invariants of the harness's own bookkeeping (they let k-induction close).
        m.d.comb += [
            Assert(armed | ~(self.sending | cur_owed | prev_owed)),
            Assert(~self.sending | ~cur_owed | (cur_age == self.elapsed)),
            Assert(~prev_owed | (self.sending & cur_owed & (self.elapsed <= 1))),
        ]
        got = rx.o.valid & armed
        take_prev = got & prev_owed
        take_cur = got & ~prev_owed
        with m.If(got):
            m.d.comb += Assert(~rx.o.payload.error)
            with m.If(prev_owed):
                m.d.comb += Assert(rx.o.payload.data == prev)
            with m.Else():
                m.d.comb += Assert(cur_owed & (rx.o.payload.data == cur))  # nothing spurious
        with m.If(start):
            m.d.comb += Assert(~prev_owed | take_prev)  # at most two characters outstanding
            m.d.sync += [
                prev.eq(cur),
                prev_owed.eq(cur_owed & ~take_cur),
                prev_age.eq(cur_age + 1),
                cur.eq(byte),
                cur_owed.eq(1),
                cur_age.eq(0),
            ]
        with m.Else():
            with m.If(take_prev):
                m.d.sync += prev_owed.eq(0)
            with m.If(take_cur):
                m.d.sync += cur_owed.eq(0)
        return m


GAP, BOUND = 39, 41


def harness(receiver=None, *, gap=GAP, bound=BOUND):
    return ReceiverHarness(receiver or UARTRx(divisor=DIVISOR), gap=gap, bound=bound)


def test_receiver_gets_every_character(formal):
    result = formal(harness(), mode="bmc", depth=100)
    assert result.status == "PASS", result.log


@pytest.mark.slow
def test_receiver_gets_every_character_after_any_noise(formal):
    result = formal(harness(), mode="bmc", depth=130)
    assert result.status == "PASS", result.log


class WrongByte(wiring.Component):
    """A broken receiver: a UARTRx whose byte 0x5A comes out as 0xA5."""

    def __init__(self):
        self.inner = UARTRx(divisor=DIVISOR)
        super().__init__(self.inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        data = inner.o.payload.data
        m.d.comb += [
            inner.rx.eq(self.rx),
            self.o.valid.eq(inner.o.valid),
            self.o.payload.error.eq(inner.o.payload.error),
            self.o.payload.data.eq(Mux(data == 0x5A, 0xA5, data)),
        ]
        return m


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda: harness(WrongByte()), id="wrong-byte"),
        pytest.param(lambda: harness(UARTRx(divisor=DIVISOR + 1)), id="wrong-bit-period"),
        pytest.param(lambda: harness(gap=GAP - 1), id="gap-too-short"),
        pytest.param(lambda: harness(bound=BOUND - 1), id="bound-too-short"),
    ],
)
def test_receiver_proof_fails_when_broken(formal, broken):
    result = formal(broken(), mode="bmc", depth=100)
    assert result.status == "FAIL"
    assert result.traces
