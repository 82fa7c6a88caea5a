"""A pyserial-like port whose far end is a :class:`HostLinkCore` in Amaranth's simulator.

:class:`SimulatedSerial` lets the unmodified host driver (:mod:`palhdl.boards.hostlink.driver`)
talk to the RTL bit by bit on the UART pins.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from palhdl.boards.hostlink.core import HostLinkCore
from palhdl.boards.hostlink.simport import SimulatedPort
from palhdl.sim.pysim import vcd_context

__all__ = ["SimulatedSerial"]


@dataclass(frozen=True)
class _Break:
    cycles: int


class SimulatedSerial(SimulatedPort):
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
        early after that long (as soon as ``size`` bytes have come, otherwise); ``None``
        waits for ever, ``0`` does not advance time. An attribute: a driver may set it before
        each read (:class:`~palhdl.boards.hostlink.driver.HostLink` does).
    vcd_path : path, optional
        Write a waveform there (else only when ``PALHDL_VCD`` is set); call :meth:`close`.

    Raises
    ------
    TypeError, ValueError
        ``core`` is not a HostLinkCore, or ``timeout`` is not ``None`` or a finite number
        ``>= 0`` (also when set later).
    """

    def __init__(self, core: HostLinkCore, *, timeout: float | None = 1.0, vcd_path=None):
        super().__init__(core, timeout=timeout)
        self._to_device: collections.deque[int | _Break] = collections.deque()
        top = Module()
        top.domains.sync = ClockDomain()
        top.submodules.core = core
        self._sim = Simulator(top)
        self._sim.add_clock(1 / core.clk_freq)
        self._sim.add_testbench(self._drive_rx, background=True)
        self._sim.add_testbench(self._watch_tx, background=True)
        self._sim.add_testbench(self._watch_status, background=True)
        self._vcd = vcd_context(self._sim, "hostlink", vcd_path)
        self._vcd.__enter__()

    @property
    def out_waiting(self) -> int:
        """Bytes (and breaks) written and not yet fully driven onto ``rx``."""
        return len(self._to_device)

    def write(self, data) -> int:
        """Queue ``data`` for the core's ``rx`` pin; return its length."""
        data = bytes(data)
        self._to_device.extend(data)
        return len(data)

    def send_break(self, duration: float = 0.25) -> None:
        """Queue a break: ``rx`` low for ``duration`` simulated seconds, then high for a bit.

        The break lasts at least one character time.
        """
        cycles = max(math.ceil(duration * self._core.clk_freq), 10 * self._core.divisor)
        self._to_device.append(_Break(cycles))

    def flush(self) -> None:
        """Nothing to do: written bytes are queued for the simulated line."""

    def read(self, size: int = 1) -> bytes:
        """Return up to ``size`` bytes from the core, simulating until they or the timeout come."""
        bit_time = self._core.divisor
        limit = None
        if self.timeout is not None:
            limit = self._cycles + math.ceil(self.timeout * self._core.clk_freq)
        while len(self._from_device) < size and (limit is None or self._cycles < limit):
            step = 10 * bit_time if limit is None else min(10 * bit_time, limit - self._cycles)
            self.advance(step)
        return self._take(size)

    def advance(self, cycles: int) -> None:
        """Run the simulation for ``cycles`` clock cycles."""
        self._cycles += cycles
        self._sim.run_until(self._cycles / self._core.clk_freq)

    def close(self) -> None:
        """Finish the waveform file, if one is being written."""
        if self.is_open:
            super().close()
            self._vcd.__exit__(None, None, None)

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
