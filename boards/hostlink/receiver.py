"""The host link's receive side: UART receiver and a FIFO of annotated bytes."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from palhdl.boards.hostlink.protocol import MAX_K, SYNC
from palhdl.hdl.uart import UARTRx, check_divisor
from palhdl.hdl.unit import Unit
from palhdl.validate import check_int

__all__ = ["RX_ENTRY", "RX_FIFO_DEPTH", "Receiver"]

#: Bytes the receiver buffers while the device executes or answers the previous packet.
RX_FIFO_DEPTH = 64

#: A receive FIFO entry: the byte, its framing error flag and comparisons made when it is
#: written (16 bits: one block RAM); or a drop marker (``drop``: input was lost at this point
#: because the FIFO was full; every other field is 0).
RX_ENTRY = data.StructLayout(
    {
        "byte": 8,
        "framing_error": 1,
        "drop": 1,
        "is_sync": 1,  # SYNC without a framing error
        "is_zero": 1,
        "is_one": 1,
        # Against the bytes of k_max, for the K range check of a LOAD:
        "above_k_low": 1,  # byte > k_max % 256
        "is_k_high": 1,  # byte == k_max // 256
        "above_k_high": 1,  # byte > k_max // 256
    }
)


class Receiver(Unit):
    """UART receiver followed by a :data:`RX_FIFO_DEPTH`-entry FIFO of :data:`RX_ENTRY`.

    Each received character is stored with its framing error flag and the comparisons the
    packet parser needs (SYNC, 0, 1, against the bytes of ``k_max``), made here where there is
    time. A character that finds the FIFO full is dropped (an overrun); from then on a drop
    marker is pending and is stored as soon as the FIFO has room, after the entries stored
    before the overrun, so a drop at the very end of a burst is still seen. Characters that
    arrive while the marker is pending are dropped too (they follow the lost input; the
    parser discards everything after a marker until the line is quiet), and keep it pending.

    Parameters
    ----------
    divisor : int
        UART bit period in clock cycles.
    k_max : int
        Deepest K of a LOAD, 1..:data:`~palhdl.boards.hostlink.protocol.MAX_K`.

    Members
    -------
    rx : In(1)
        The serial line from the host, idle high.
    o : Out(stream.Signature(RX_ENTRY))
        The received entries, oldest first.
    line_error : Out(1)
        Sticky: a framing error or dropped input since it was last cleared.
    clear_line_error : In(1)
        Clear ``line_error`` (takes precedence over a new line error in the same cycle).
    """

    @classmethod
    def check_parameters(cls, *, divisor: int, k_max: int) -> tuple[int, int]:
        """Validate the parameters; return ``(divisor, k_max)``."""
        return check_divisor(divisor), check_int("k_max", k_max, 1, MAX_K)

    def __init__(self, *, divisor: int, k_max: int):
        self._divisor, self._k_max = self.check_parameters(divisor=divisor, k_max=k_max)
        super().__init__(
            {
                "rx": In(1, init=1),
                "o": Out(stream.Signature(RX_ENTRY)),
                "line_error": Out(1),
                "clear_line_error": In(1),
            }
        )

    @property
    def divisor(self) -> int:
        """UART bit period in clock cycles."""
        return self._divisor

    @property
    def k_max(self) -> int:
        """Deepest K of a LOAD."""
        return self._k_max

    @property
    def latency(self) -> int:
        """Cycles from the middle of a character's stop bit on ``rx`` to its entry on ``o``.

        With the FIFO empty and no drop marker pending: two synchroniser stages, the receiver
        and the FIFO.
        """
        return 5

    def elaborate(self, platform):
        """Build the UART receiver, the entry annotation and the FIFO."""
        m = Module()
        m.submodules.uart = uart = UARTRx(divisor=self._divisor)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=RX_ENTRY.size, depth=RX_FIFO_DEPTH)
        m.d.comb += uart.rx.eq(self.rx)
        received = uart.o.payload
        entry, marker = Signal(RX_ENTRY), Signal(RX_ENTRY)
        pending = Signal()  # input was dropped; its marker is not stored yet
        store_char = uart.o.valid & fifo.w_rdy & ~pending
        dropped = uart.o.valid & ~store_char
        m.d.comb += [
            entry.byte.eq(received.data),
            entry.framing_error.eq(received.error),
            entry.is_sync.eq((received.data == SYNC) & ~received.error),
            entry.is_zero.eq(received.data == 0),
            entry.is_one.eq(received.data == 1),
            entry.above_k_low.eq(received.data > self._k_max % 256),
            entry.is_k_high.eq(received.data == self._k_max // 256),
            entry.above_k_high.eq(received.data > self._k_max // 256),
            marker.drop.eq(1),
            fifo.w_data.eq(Mux(pending, marker, entry)),
            fifo.w_en.eq(store_char | (pending & fifo.w_rdy)),
            self.o.payload.eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
        ]
        with m.If(pending & fifo.w_rdy):
            m.d.sync += pending.eq(0)
        with m.If(dropped):
            m.d.sync += pending.eq(1)
        with m.If((uart.o.valid & received.error) | dropped):
            m.d.sync += self.line_error.eq(1)
        with m.If(self.clear_line_error):
            m.d.sync += self.line_error.eq(0)
        return m
