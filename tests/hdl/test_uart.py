"""The 8N1 UART: exact transmit waveform, receive from generated line waveforms (rate error,
glitches, framing errors, breaks) and a transmitter-to-receiver round trip."""

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from palhdl.hdl.uart import UARTRx, UARTTx
from palhdl.sim.pysim import vcd_context

# --- constructor ----------------------------------------------------------------------------


@pytest.mark.parametrize("unit", [UARTTx, UARTRx])
def test_divisor_is_validated(unit, elaborate):
    assert elaborate(unit(divisor=4)).divisor == 4
    with pytest.raises(ValueError, match=r"divisor must be in \[4, 16777216\], not 3"):
        unit(divisor=3)
    with pytest.raises(TypeError, match="divisor must be an integer"):
        unit(divisor=8.0)
    with pytest.raises(TypeError, match="divisor must be an integer"):
        unit(divisor=True)


# --- simulation helpers ---------------------------------------------------------------------


def _simulate(dut, testbenches, name):
    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-6)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    with vcd_context(sim, name):
        sim.run()


def character(value: int, bit_cycles: float, *, stop: int = 1) -> list[int]:
    """Line levels, one per clock cycle, of one 8N1 character with a (fractional) bit time."""
    bits = [0] + [(value >> i) & 1 for i in range(8)] + [stop]
    return [bits[int(c / bit_cycles)] for c in range(round(10 * bit_cycles))]


def rx_decode(divisor: int, levels: list[int], tail: int = 40) -> list[tuple[int, int, int]]:
    """Drive ``levels`` (one per cycle) into a receiver; return ``(cycle, data, error)`` for
    every character it reports."""
    dut = UARTRx(divisor=divisor)
    seen = []

    async def drive(ctx):
        for level in [*levels, *([1] * tail)]:
            ctx.set(dut.rx, level)
            await ctx.tick()

    async def watch(ctx):
        for cycle in range(len(levels) + tail):
            _, _, valid, data, error = await ctx.tick().sample(
                dut.o.valid, dut.o.payload.data, dut.o.payload.error
            )
            if valid:
                seen.append((cycle, data, error))

    _simulate(dut, [drive, watch], "uart_rx")
    return seen


# --- transmitter ----------------------------------------------------------------------------


@pytest.mark.parametrize("divisor", [4, 7])
def test_tx_waveform_is_exact(divisor):
    values = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80, 0x3C]
    dut = UARTTx(divisor=divisor)
    trace = []

    async def send(ctx):
        for value in values:
            ctx.set(dut.i.payload, value)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def record(ctx):
        for _ in range(12 * divisor * len(values)):
            _, _, level = await ctx.tick().sample(dut.tx)
            trace.append(level)

    _simulate(dut, [send, record], "uart_tx")
    assert trace[0] == 1  # idle high before the first start bit
    start = trace.index(0)
    expected = []
    for value in values:  # back to back: every character follows the previous stop bit
        for bit in [0] + [(value >> i) & 1 for i in range(8)] + [1]:
            expected += [bit] * divisor
    assert trace[start : start + len(expected)] == expected
    assert set(trace[start + len(expected) :]) == {1}


# --- receiver -------------------------------------------------------------------------------


def test_rx_back_to_back_and_rate_error():
    divisor = 8
    values = [0x00, 0xFF, 0xA5, 0x5A, 0x81, 0x7E]
    levels = [1] * 5
    for rate in (1.0, 1.03, 0.97):  # +-3 % bit-rate error, no idle time between characters
        for value in values:
            levels += character(value, divisor * rate)
    seen = rx_decode(divisor, levels)
    assert [(data, error) for _, data, error in seen] == [(v, 0) for v in values] * 3


def test_rx_reports_each_character_within_its_stop_bit():
    divisor = 6
    levels = [1] * 3 + character(0x96, divisor) + [1] * 30
    ((cycle, data, error),) = rx_decode(divisor, levels)
    assert (data, error) == (0x96, 0)
    # Start edge at cycle 3; the stop bit spans cycles 3 + 9 * divisor .. 3 + 10 * divisor.
    assert 3 + 9 * divisor <= cycle < 3 + 10 * divisor + 3  # + the synchroniser's delay


def test_rx_ignores_glitches_and_flags_framing_errors_once():
    divisor = 8
    levels = [1] * 4
    levels += [0] * 3 + [1] * 20  # glitch shorter than half a bit: not a start bit
    levels += character(0x3C, divisor, stop=0)  # stop bit low: framing error
    levels += [1] * 10
    levels += [0] * (40 * divisor) + [1] * (2 * divisor)  # a break: one error, not four
    levels += character(0xC3, divisor)  # the receiver recovers
    seen = rx_decode(divisor, levels)
    assert [(data, error) for _, data, error in seen] == [(0x3C, 1), (0x00, 1), (0xC3, 0)]


# --- round trip -----------------------------------------------------------------------------


@pytest.mark.slow
def test_round_trip_all_byte_values():
    divisor = 5
    rng = np.random.default_rng(0)
    values = [int(v) for v in rng.permutation(256)]
    top = Module()
    top.submodules.tx = tx = UARTTx(divisor=divisor)
    top.submodules.rx = rx = UARTRx(divisor=divisor)
    top.d.comb += rx.rx.eq(tx.tx)
    received = []

    async def send(ctx):
        for value in values:
            ctx.set(tx.i.payload, value)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def receive(ctx):
        while len(received) < len(values):
            _, _, valid, data, error = await ctx.tick().sample(
                rx.o.valid, rx.o.payload.data, rx.o.payload.error
            )
            if valid:
                assert not error
                received.append(data)

    _simulate(top, [send, receive], "uart_round_trip")
    assert received == values
