"""Run-time loadable product-term tables: the RAM, the PE and the array's run-time split.

The acceptance test of the run-time split loads two different tables into one elaborated
array, one after the other in one simulation, and checks the matmuls after each load against
``golden.matmul`` of the configuration the table belongs to (``MacConfig.retarget``).
"""

import numpy as np
import pytest
from amaranth.hdl import Module, Shape, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.hdl.pe import (
    PALTableMac,
    PALTableProductTerm,
    table_load_layout,
    term_entry_layout,
    term_table_words,
)
from palhdl.hdl.providers import FP8Arithmetic, IntArithmetic, PALArithmetic
from palhdl.hdl.rom import TableROM
from palhdl.hdl.systolic import SystolicArray
from palhdl.sim import golden
from palhdl.sim.driver import assemble, decode_lanes, split_tiles
from palhdl.sim.pysim import pack_payloads, unpack_payloads
from palhdl.synth.yosys import synth_stats

#: The iCEBreaker's PE window (wrapping; narrow terms overflow and are dropped).
WRAPPING = MacConfig(
    pal8, mantissa_bits=5, acc_bits=18, acc_frac_bits=8, term_bits=11, saturate=False
)
SPLITS = (PALFormat(int_bits=3, frac_bits=4), PALFormat(int_bits=5, frac_bits=2))


# --- The RAM --------------------------------------------------------------------------------


def write_and_read(rom, cycles, rng):
    """Random writes, reads and ``en`` for ``cycles`` cycles; return what to compare.

    Returns ``(samples, expected, defined)``: the words on ``data`` after each edge, the words a
    read must return (the table as it was before the edge that sampled the address) and
    whether that read is defined (no write on its edge, ``en`` high, pipeline filled).
    """
    depth, ports, latency = rom.depth, rom.ports, rom.latency
    contents = list(rom.init)
    plan = []
    for _ in range(cycles):
        write = bool(rng.random() < 0.3)
        entry = (int(rng.integers(0, depth)), int(rng.integers(0, 1 << rom.width)))
        addresses = [int(x) for x in rng.integers(0, depth, size=ports)]
        plan.append((write, entry, addresses, bool(rng.random() < 0.85)))
    samples = []

    async def testbench(ctx):
        for write, (address, word), addresses, enable in plan:
            ctx.set(rom.w_en, write)
            ctx.set(rom.w_addr, address)
            ctx.set(rom.w_data, word)
            ctx.set(rom.en, enable)
            for port, read in enumerate(addresses):
                ctx.set(rom.addr[port], read)
            await ctx.tick()
            samples.append([ctx.get(rom.data[port]) for port in range(ports)])

    sim = Simulator(rom)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    # The reference: reads in order of the enabled edges, a word leaving after `latency` of them.
    expected, defined, in_flight = [], [], []
    for write, (address, word), addresses, enable in plan:
        if enable:
            in_flight.append(([contents[a] for a in addresses], not write))
        if write:
            contents[address] = word
        ready = len(in_flight) >= latency
        words, clean = in_flight[-latency] if ready else ([0] * ports, False)
        expected.append(words)
        defined.append(ready and clean)
    return np.array(samples), np.array(expected), np.array(defined)


@pytest.mark.parametrize("ports", [1, 2, 3])
@pytest.mark.parametrize("registered", [False, True])
def test_writes_are_read_on_every_port(ports, registered):
    rng = np.random.default_rng(ports * 10 + registered)
    init = [int(x) for x in rng.integers(0, 1 << 11, size=40)]
    rom = TableROM(width=11, init=init, ports=ports, registered=registered, loadable=True)
    samples, expected, defined = write_and_read(rom, 600, rng)
    assert defined.mean() > 0.4
    np.testing.assert_array_equal(samples[defined], expected[defined])
    # The words change: many defined reads return written, not initial, words.
    assert (expected[defined] != np.array(init)[0]).any()


def test_loadable_table_parameters(elaborate):
    with pytest.raises(ValueError, match=r"^loadable: the 'ecp5' implementation"):
        TableROM(width=4, init=[1, 2], loadable=True, implementation="ecp5")
    with pytest.raises(TypeError, match="loadable"):
        TableROM(width=4, init=[1, 2], loadable=1)
    with pytest.raises(ValueError, match=r"^loadable: the 'ecp5' implementation"):
        PALTableProductTerm(config=WRAPPING, loadable=True, implementation="ecp5")
    rom = elaborate(TableROM(width=4, init=[1, 2, 3], loadable=True))
    assert rom.loadable and rom.resolve(ULX3S_85F_Platform()) == "inferred"
    assert not hasattr(elaborate(TableROM(width=4, init=[1, 2])), "w_en")


class Around(wiring.Component):
    """A 512 x 15 two-port registered table addressed by ``a ^ b``, optionally loadable."""

    def __init__(self, loadable):
        self._loadable = loadable
        address = data.ArrayLayout(9, 2)
        super().__init__(
            {
                "a": In(address),
                "b": In(address),
                "w_en": In(1),
                "w_addr": In(9),
                "w_data": In(15),
                "data": Out(data.ArrayLayout(15, 2)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        init = [int(x) for x in np.random.default_rng(1).integers(0, 1 << 15, size=512)]
        m.submodules.rom = table = TableROM(
            width=15, init=init, ports=2, registered=True, loadable=self._loadable
        )
        m.d.comb += self.data.eq(table.data)
        if self._loadable:
            m.d.comb += [
                table.w_en.eq(self.w_en),
                table.w_addr.eq(self.w_addr),
                table.w_data.eq(self.w_data),
            ]
        for port in range(2):
            m.d.comb += table.addr[port].eq(self.a[port] ^ self.b[port])
        return m


def test_loadable_table_fills_one_true_dual_port_block():
    """Two read ports and the write share one DP16KD; no read-before-write emulation."""
    rom_only = synth_stats(Around(False), target="ecp5")
    loadable = synth_stats(Around(True), target="ecp5")
    assert loadable["EBR"] == rom_only["EBR"] == 1
    assert loadable["DFF"] == rom_only["DFF"] == 30
    assert loadable["LUT4"] <= rom_only["LUT4"] + 2  # port 1's address multiplexer


# --- Entry words and the PE -----------------------------------------------------------------


@pytest.mark.parametrize("config", [WRAPPING, MacConfig(pal8)], ids=["wrapping", "exact"])
@pytest.mark.parametrize("signed", [False, True])
def test_term_table_words_hold_the_golden_terms(config, signed, elaborate):
    words = term_table_words(config, signed=signed)
    layout = term_entry_layout(config, signed=signed)
    width = layout["value"].width
    term, overflow = golden.term_table(config, signed=signed)
    assert len(words) == len(term) and max(words) < 1 << layout.size
    values = np.array([word & ((1 << width) - 1) for word in words], dtype=object)
    if signed:
        values = np.where(values >= 1 << (width - 1), values - (1 << width), values)
    np.testing.assert_array_equal(values.astype(np.int64), term)
    np.testing.assert_array_equal([word >> width for word in words], overflow.astype(int))
    unit = elaborate(PALTableProductTerm(config=config, signed=signed))
    assert unit.table_words() == words
    assert table_load_layout(config, signed=signed)["data"].width == layout.size


def test_loaded_mac_computes_the_retargeted_configuration():
    """A PALTableMac built for (4, 3): dot products before and after loading (3, 4)'s table."""
    rng = np.random.default_rng(9)
    dut = PALTableMac(config=WRAPPING, loadable=True, registered=False)
    retarget = WRAPPING.retarget(SPLITS[0])
    rows = [rng.integers(0, 256, size=(2, int(rng.integers(1, 20)))) for _ in range(16)]
    words = term_table_words(retarget)
    payload = dut.i.payload.shape()
    results = []

    async def dot_products(ctx, pairs):
        ctx.set(dut.o.ready, 1)
        for pair in pairs:
            for index in range(pair.shape[1]):
                fields = {"a": pair[0, index], "b": pair[1, index]}
                fields["last"] = int(index == pair.shape[1] - 1)
                ctx.set(dut.i.payload.as_value(), int(pack_payloads(payload, fields)))
                ctx.set(dut.i.valid, 1)
                await ctx.tick()
                ctx.set(dut.i.valid, 0)
                while not ctx.get(dut.o.valid) and index == pair.shape[1] - 1:
                    await ctx.tick()
                if index == pair.shape[1] - 1:
                    results.append(ctx.get(dut.o.payload.as_value()))
                    await ctx.tick()

    async def testbench(ctx):
        await dot_products(ctx, rows[:8])
        for address, word in enumerate(words):
            ctx.set(dut.table.payload, {"addr": address, "data": word})
            ctx.set(dut.table.valid, 1)
            await ctx.tick()
        ctx.set(dut.table.valid, 0)
        await dot_products(ctx, rows[8:])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    out = unpack_payloads(dut.o.payload.shape(), results)
    for index, pair in enumerate(rows):
        expected = golden.dot(pair[0], pair[1], WRAPPING if index < 8 else retarget)
        assert out["acc"][index] == expected.acc, index
        assert out["overflow"][index] == expected.overflow, index
        assert out["nan"][index] == expected.nan, index


# --- The array: the run-time split ----------------------------------------------------------


def beats(array, tiles):
    """Raw ``a`` and ``b`` beats of ``tiles`` (``last`` on each tile's final beat)."""
    a_beats, b_beats = [], []
    for tile in tiles:
        k = tile.a.shape[1]
        last = np.zeros(k, dtype=np.int64)
        last[-1] = 1
        a_fields = {"data": tile.a.T, "scale": tile.a_scales, "last": last}
        a_beats += pack_payloads(array.a_layout, a_fields).tolist()
        b_fields = {"data": tile.b, "scale": tile.b_scales}
        b_beats += np.broadcast_to(pack_payloads(array.b_layout, b_fields), (k,)).tolist()
    return a_beats, b_beats


def run_phases(array, phases):
    """Run ``phases`` in one simulation of ``array``; return each phase's raw result rows.

    A phase is ``(writes, tiles)``: ``writes`` (``(address, word)`` pairs, or ``None``) go
    into the tables one per cycle; :attr:`SystolicArray.table_latency` cycles after the last
    one the tiles stream through at full rate, and the phase ends when their rows are out.
    """
    outputs = []

    async def testbench(ctx):
        ctx.set(array.c.ready, 1)
        for words, tiles in phases:
            if words is not None:
                for address, word in words:
                    ctx.set(array.table.payload, {"addr": address, "data": word})
                    ctx.set(array.table.valid, 1)
                    _, _, ready = await ctx.tick().sample(array.table.ready)
                    assert ready
                ctx.set(array.table.valid, 0)
                for _ in range(array.table_latency - 1):
                    await ctx.tick()
            a_beats, b_beats = beats(array, tiles)
            sent, rows = 0, []
            while len(rows) < len(tiles) * array.rows:
                if sent < len(a_beats):
                    ctx.set(array.a.payload.as_value(), a_beats[sent])
                    ctx.set(array.b.payload.as_value(), b_beats[sent])
                ctx.set(array.a.valid, sent < len(a_beats))
                ctx.set(array.b.valid, sent < len(a_beats))
                c_payload = array.c.payload.as_value()
                sample = await ctx.tick().sample(array.a.ready, array.c.valid, c_payload)
                _, _, a_ready, c_valid, c_raw = sample
                sent += int(a_ready and sent < len(a_beats))
                if c_valid:
                    rows.append(c_raw)
            outputs.append(rows)

    sim = Simulator(array)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return outputs


def decode(array, tiles, rows, shape):
    """Assemble the decoded raw lanes of ``tiles`` from the result rows."""
    lane_bits = unsigned(Shape.cast(array.lane_shape).width)
    lanes = unpack_payloads(data.ArrayLayout(lane_bits, array.cols), np.array(rows, dtype=object))
    height = array.rows
    decoded = [
        decode_lanes(array.lane_shape, lanes[t * height : (t + 1) * height].astype(object))
        for t in range(len(tiles))
    ]
    return assemble(tiles, decoded, shape)


@pytest.mark.parametrize(
    ("term", "pipelined", "table_ports"),
    [
        ("table", False, 1),
        ("table", True, 1),
        ("signed_table", False, 1),
        ("signed_table", True, 2),
        pytest.param("table", True, 2, marks=pytest.mark.slow),
    ],
)
def test_one_array_loads_two_splits(term, pipelined, table_ports):
    """The acceptance test: pal8 (4, 3), then (3, 4)'s table, then (5, 2)'s, in one array."""
    rng = np.random.default_rng(len(term) + 2 * pipelined + table_ports)
    config = MacConfig(pal8)
    arithmetic = PALArithmetic(
        config=config, pipelined=pipelined, term=term, table_ports=table_ports, loadable=True
    )
    array = SystolicArray(arithmetic=arithmetic, rows=4, cols=4, output="raw")
    m, k, n = 5, 11, 7
    signed = term == "signed_table"
    phases, checks = [], []
    for fmt in (None, *SPLITS):
        target = config if fmt is None else config.retarget(fmt)
        a = rng.integers(0, 256, size=(m, k))
        b = rng.integers(0, 256, size=(k, n))
        a[2, :2], b[:2, 3] = pal8.nan_code, pal8.zero_code
        a[1, :] = 0x7F  # the largest magnitudes: the table's top entries
        a_scales, b_scales = rng.integers(-5, 6, size=m), rng.integers(-5, 6, size=n)
        tiles = split_tiles(a, b, a_scales, b_scales, rows=4, cols=4)
        writes = None
        if fmt is not None:
            # The entry of the first product PE (0, 0) looks up is written last: the first
            # beat comes exactly table_latency cycles after it.
            first = (a[0, 0] & 0x7F) + (b[0, 0] & 0x7F)
            first += 256 * int(signed and (a[0, 0] ^ b[0, 0]) >> 7)
            words = term_table_words(target, signed=signed)
            order = [n for n in range(len(words)) if n != first] + [first]
            writes = [(n, words[n]) for n in order]
        phases.append((writes, tiles))
        checks.append((target, a, b, a_scales, b_scales, tiles))
    outputs = run_phases(array, phases)
    for (target, a, b, a_scales, b_scales, tiles), rows in zip(checks, outputs, strict=True):
        got = decode(array, tiles, rows, (m, n))
        expected = golden.matmul(a, b, target, a_scales=a_scales, b_scales=b_scales)
        np.testing.assert_array_equal(got["acc"], expected.acc, err_msg=str(target.fmt))
        np.testing.assert_array_equal(got["nan"].astype(bool), expected.nan)
        np.testing.assert_array_equal(got["overflow"].astype(bool), expected.overflow)
        np.testing.assert_array_equal(got["scale"], expected.scale_exp)
    # The loads took effect: the built configuration would give other sums for those codes.
    for target, a, b, *_ in checks[1:]:
        assert not np.array_equal(golden.matmul(a, b, config).acc, golden.matmul(a, b, target).acc)


def test_table_member_and_its_layout(elaborate):
    config = WRAPPING
    arithmetic = PALArithmetic(config=config, term="signed_table", loadable=True)
    array = elaborate(SystolicArray(arithmetic=arithmetic, rows=2, cols=2))
    layout = array.table.payload.shape()
    assert layout == table_load_layout(config, signed=True) == arithmetic.table_layout
    assert layout["addr"].width == 9 and layout["data"].width == 12 + 1
    assert array.table_latency == 2
    plain = elaborate(SystolicArray(arithmetic=PALArithmetic(config=config), rows=2, cols=2))
    assert not hasattr(plain, "table") and PALArithmetic(config=config).table_layout is None
    for other in (IntArithmetic(), FP8Arithmetic(acc_bits=32, acc_frac_bits=18)):
        assert other.table_layout is None
        assert not hasattr(elaborate(SystolicArray(arithmetic=other, rows=1, cols=1)), "table")
    with pytest.raises(ValueError, match=r"^loadable: the pal16 product term is computed in logic"):
        PALArithmetic(config=MacConfig(pal16), loadable=True)
    with pytest.raises(ValueError, match=r"^loadable"):
        PALArithmetic(config=config, term="logic", loadable=True)
    with pytest.raises(TypeError, match="loadable"):
        PALArithmetic(config=config, loadable="yes")
