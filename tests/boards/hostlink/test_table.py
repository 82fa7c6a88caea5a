"""The table writer alone: LOAD_TABLE bytes in, table writes, validity and split label out."""

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from palhdl.boards.hostlink.table import TableWriter
from palhdl.format import MacConfig, PALFormat, pal8, pal16

# Wrapping pal8 windows: 11-bit terms (12-bit entries, two bytes; the iCEBreaker's) and 7-bit
# terms (8-bit entries, one byte).
WIDE = MacConfig(pal8, mantissa_bits=5, acc_bits=18, acc_frac_bits=8, term_bits=11, saturate=False)
NARROW = MacConfig(pal8, mantissa_bits=5, acc_bits=8, acc_frac_bits=2, term_bits=7, saturate=False)


def run_writer(events, *, config, signed=False):
    """Drive ``events`` (``("invalidate",)``, ``("split", b)``, ``("entry", b)``, ``("commit",)``,
    ``("gap",)``), one per two cycles as the parser does; return the writes and, after each
    event, ``(valid, frac_bits)``.
    """
    dut = TableWriter(config=config, signed=signed)
    result = {"writes": [], "state": []}

    async def bench(ctx):
        ctx.set(dut.table.ready, 1)
        for event in events:
            for cycle in range(2):
                name = event[0] if cycle == 0 else "gap"
                ctx.set(dut.load.invalidate, name == "invalidate")
                ctx.set(dut.load.split_en, name == "split")
                ctx.set(dut.load.entry_en, name == "entry")
                ctx.set(dut.load.byte, event[1] if len(event) > 1 else 0)
                ctx.set(dut.commit, name == "commit")
                await ctx.tick()
                if ctx.get(dut.table.valid):
                    payload = ctx.get(dut.table.payload)
                    result["writes"].append((payload.addr, payload.data))
            result["state"].append((ctx.get(dut.valid), ctx.get(dut.frac_bits)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return result


def test_entries_are_assembled_little_endian_and_written_in_order():
    events = [
        ("invalidate",),
        ("split", 5),
        *(("entry", byte) for byte in [0x34, 0x12, 0xFF, 0xFF, 0x01, 0x80]),
        ("commit",),
    ]
    result = run_writer(events, config=WIDE)
    # 12-bit entries in two bytes each, the unused high bits dropped.
    assert result["writes"] == [(0, 0x234), (1, 0xFFF), (2, 0x001)]
    valid_after = [valid for valid, _ in result["state"]]
    assert valid_after == [0] * 8 + [1]
    assert result["state"][0] == (0, 3)  # the bitstream's label (pal8 = 4.3) until the commit
    assert result["state"][-1] == (1, 5)


def test_one_byte_entries_and_a_restarted_load():
    events = [
        ("invalidate",),
        ("split", 2),
        ("entry", 7),
        ("entry", 9),
        ("invalidate",),  # the first load was cut short; the next one starts again at 0
        ("split", 1),
        ("entry", 0xAB),
        ("entry", 0xCD),
        ("commit",),
    ]
    result = run_writer(events, config=NARROW)
    assert result["writes"] == [(0, 7), (1, 9), (0, 0xAB), (1, 0xCD)]
    assert result["state"][4] == (0, 3) and result["state"][-1] == (1, 1)


def test_writer_starts_valid_with_the_bitstream_label_and_rejects_bad_parameters():
    result = run_writer([("gap",)], config=MacConfig(PALFormat(int_bits=2, frac_bits=5)))
    assert result["state"] == [(1, 5)] and result["writes"] == []
    with pytest.raises(TypeError, match="config must be a MacConfig"):
        TableWriter(config=pal8)
    with pytest.raises(ValueError, match="would have 65536 entries, more than 4096"):
        TableWriter(config=MacConfig(pal16))
    with pytest.raises(TypeError, match="signed must be a bool"):
        TableWriter(config=WIDE, signed=1)
    dut = TableWriter(config=WIDE, signed=True)
    Fragment.get(dut, None)
    assert (dut.entries, dut.width, dut.entry_bytes) == (512, 13, 2)
    assert (dut.config, dut.signed) == (WIDE, True)
