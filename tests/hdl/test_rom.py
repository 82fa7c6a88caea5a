"""TableROM: every port reads its own address, with and without the output register."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from palhdl.hdl.rom import TableROM


def read_stream(rom, addresses, enables):
    """Each cycle set ``addr`` (a row of ``addresses``) and ``en``; sample ``data`` after it."""
    samples = []

    async def testbench(ctx):
        for row, enable in zip(addresses, enables, strict=True):
            ctx.set(rom.en, int(enable))
            for port, address in enumerate(row):
                ctx.set(rom.addr[port], int(address))
            await ctx.tick()
            samples.append([ctx.get(rom.data[port]) for port in range(rom.ports)])

    sim = Simulator(rom)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return np.array(samples)


@pytest.mark.parametrize("ports", [1, 2, 3])
@pytest.mark.parametrize("registered", [False, True])
def test_reads_every_address_on_every_port(ports, registered):
    rng = np.random.default_rng(ports)
    init = [int(x) for x in rng.integers(0, 1 << 13, size=300)]
    rom = TableROM(width=13, init=init, ports=ports, registered=registered)
    addresses = rng.integers(0, 300, size=(400, ports))
    samples = read_stream(rom, addresses, np.ones(400, dtype=bool))
    lag = rom.latency
    assert lag == (2 if registered else 1)
    np.testing.assert_array_equal(samples[lag - 1 :], np.array(init)[addresses[: 400 - lag + 1]])


@pytest.mark.parametrize("registered", [False, True])
def test_en_low_holds_the_pipeline(registered):
    init = list(range(100, 116))
    rom = TableROM(width=8, init=init, registered=registered)
    addresses = np.arange(16)[:, None]
    enables = np.array([i % 3 != 2 for i in range(16)])
    samples = read_stream(rom, addresses, enables)[:, 0]
    # Only enabled edges advance: the word after the k-th enabled edge is that of the
    # (k - latency + 1)-th enabled address, and a disabled edge changes nothing.
    taken = addresses[enables, 0]
    expected, count = [], 0
    for enable in enables:
        count += int(enable)
        index = count - rom.latency
        expected.append(init[taken[index]] if index >= 0 else None)
    for got, want in zip(samples, expected, strict=True):
        if want is not None:
            assert got == want


def test_parameters():
    with pytest.raises(ValueError, match=r"init\[1\] must be an integer in \[0, 2\*\*4\)"):
        TableROM(width=4, init=[1, 16])
    with pytest.raises(ValueError, match="ports"):
        TableROM(width=4, init=[1, 2], ports=5)
    with pytest.raises(ValueError, match="implementation"):
        TableROM(width=4, init=[1, 2], implementation="lutram")
    with pytest.raises(TypeError, match="init"):
        TableROM(width=4, init=7)
