"""A minimal 8N1 UART: one start bit, eight data bits (least significant first), one stop bit.

Both directions run in the ``sync`` domain with a fixed bit period of ``divisor`` clock cycles
(``divisor = clk_freq / baud``, rounded). The lines idle high.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from palhdl.hdl.unit import Unit
from palhdl.validate import check_int

__all__ = ["MIN_DIVISOR", "UARTRx", "UARTTx", "check_divisor"]

#: Smallest supported bit period in clock cycles (the receiver samples mid-bit).
MIN_DIVISOR = 4
MAX_DIVISOR = 1 << 24


def check_divisor(divisor) -> int:
    """Validate a UART bit period in clock cycles; return it as an int."""
    return check_int("divisor", divisor, MIN_DIVISOR, MAX_DIVISOR)


class UARTTx(Unit):
    """8N1 transmitter.

    A byte accepted on stream ``i`` is shifted out on ``tx``: the start bit begins the cycle
    after the transfer and each bit lasts ``divisor`` cycles. ``i`` is ready while the line is
    idle and in the last cycle of a stop bit, so a stream of bytes leaves back to back at
    ``10 * divisor`` cycles per character.

    Parameters
    ----------
    divisor : int
        Bit period in clock cycles, ``MIN_DIVISOR``..``2**24``.

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send.
    tx : Out(1, init=1)
        The serial line.
    """

    @classmethod
    def check_parameters(cls, *, divisor: int):
        """Validate ``divisor``; return it."""
        return check_divisor(divisor)

    def __init__(self, *, divisor: int):
        self._divisor = self.check_parameters(divisor=divisor)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    @property
    def divisor(self) -> int:
        """Bit period in clock cycles."""
        return self._divisor

    def elaborate(self, platform):
        """Build the unit."""
        m = Module()
        shreg = Signal(10, init=0x3FF)  # bit 0 is on the line; idle all ones
        bits_left = Signal(range(11))
        timer = Signal(range(self._divisor))
        bit_end = Signal()  # timer == 0, registered with the timer (divisor - 1 >= 3 is never 0)
        # Ready while idle and in the last cycle of a stop bit: characters go back to back.
        m.d.comb += [
            self.tx.eq(shreg[0]),
            self.i.ready.eq((bits_left == 0) | ((bits_left == 1) & bit_end)),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                shreg.eq(Cat(0, self.i.payload, 1)),
                bits_left.eq(10),
                timer.eq(self._divisor - 1),
                bit_end.eq(0),
            ]
        with m.Elif(bits_left != 0):
            with m.If(bit_end):
                m.d.sync += [
                    shreg.eq(Cat(shreg[1:], 1)),
                    bits_left.eq(bits_left - 1),
                    timer.eq(self._divisor - 1),
                    bit_end.eq(0),
                ]
            with m.Else():
                m.d.sync += [timer.eq(timer - 1), bit_end.eq(timer == 1)]
        return m


class UARTRx(Unit):
    """8N1 receiver with an input synchroniser and mid-bit sampling.

    ``rx`` passes a two-register synchroniser. A low level starts a character; the start bit is
    re-checked half a bit period later (a shorter glitch is ignored), then every bit is sampled
    once, in the middle of its period. At the middle of the stop bit the character is presented
    for one cycle on stream ``o`` (``always_ready``: the consumer must take it then) with
    ``error`` set if the stop bit was low (a framing error; ``data`` is then unreliable). After a
    framing error the receiver waits for the line to return high before looking for the next
    start bit, so a held-low line (a break) reports one error, not a stream of them.

    Parameters
    ----------
    divisor : int
        Bit period in clock cycles, ``MIN_DIVISOR``..``2**24``.

    Members
    -------
    rx : In(1, init=1)
        The serial line.
    o : Out(stream.Signature(StructLayout({"data": 8, "error": 1}), always_ready=True))
        Received characters; ``error``: framing error.
    """

    @classmethod
    def check_parameters(cls, *, divisor: int):
        """Validate ``divisor``; return it."""
        return check_divisor(divisor)

    def __init__(self, *, divisor: int):
        self._divisor = self.check_parameters(divisor=divisor)
        payload = data.StructLayout({"data": 8, "error": 1})
        super().__init__(
            {"rx": In(1, init=1), "o": Out(stream.Signature(payload, always_ready=True))}
        )

    @property
    def divisor(self) -> int:
        """Bit period in clock cycles."""
        return self._divisor

    def elaborate(self, platform):
        """Build the unit."""
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self._divisor))
        # timer == 0, registered with the timer (no comparator in front of the state logic).
        expired = Signal(init=1)
        shreg = Signal(8)
        bit = Signal(range(8))
        m.d.comb += self.o.payload.data.eq(shreg)
        m.d.sync += self.o.valid.eq(0)

        def load(value: int):
            return [timer.eq(value), expired.eq(value == 0)]

        count_down = [timer.eq(timer - 1), expired.eq(timer == 1)]
        with m.FSM():
            with m.State("IDLE"), m.If(~line):
                m.d.sync += load(self._divisor // 2 - 1)
                m.next = "START"
            with m.State("START"):
                with m.If(~expired):
                    m.d.sync += count_down
                with m.Elif(line):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [*load(self._divisor - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(~expired):
                    m.d.sync += count_down
                with m.Else():
                    m.d.sync += [
                        shreg.eq(Cat(shreg[1:], line)),
                        bit.eq(bit + 1),
                        *load(self._divisor - 1),
                    ]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(~expired):
                    m.d.sync += count_down
                with m.Else():
                    m.d.sync += [self.o.valid.eq(1), self.o.payload.error.eq(~line)]
                    m.next = "IDLE"
                    with m.If(~line):
                        m.next = "BREAK"
            with m.State("BREAK"), m.If(line):
                m.next = "IDLE"
        return m
