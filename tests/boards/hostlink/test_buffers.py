"""The operand buffers alone: LOAD writes in, operand rows, scales and valid flags out."""

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from palhdl.boards.hostlink.buffers import OperandBuffers

ROWS, COLS, K_MAX, WIDTH = 2, 3, 4, 11


def test_writes_commit_and_read_back():
    dut = OperandBuffers(rows=ROWS, cols=COLS, k_max=K_MAX, width=WIDTH)
    a = {(0, 0): 0x7FF, (1, 0): 0x001, (0, 2): 0x155, (1, 2): 0x2AA}  # (lane, k): word
    b = {(2, 1): 0x123}
    seen = {}

    async def bench(ctx):
        load = dut.load
        ctx.set(load.invalidate_a, 1)
        await ctx.tick()
        ctx.set(load.invalidate_a, 0)
        for words, enables in ((a, load.a_en), (b, load.b_en)):
            for (lane, k), word in words.items():
                ctx.set(load.word, word)
                ctx.set(load.address, k)
                ctx.set(enables, 1 << lane)
                await ctx.tick()
            ctx.set(enables, 0)
        for index, byte in enumerate([0xFE, 0xFF, 0x2C, 0x01]):  # scales -2, 300
            ctx.set(load.scale_byte, byte)
            ctx.set(load.scale_a_en, 1 << index)
            await ctx.tick()
        ctx.set(load.scale_a_en, 0)
        seen["before"] = (ctx.get(dut.a_valid), ctx.get(dut.b_valid))
        ctx.set(load.target_a, 1)
        ctx.set(load.k, 3)
        ctx.set(dut.commit, 1)
        await ctx.tick()
        ctx.set(dut.commit, 0)
        seen["after"] = (ctx.get(dut.a_valid), ctx.get(dut.a_k), ctx.get(dut.read.k))
        seen["scales"] = [ctx.get(dut.read.a_scale[i]) for i in range(ROWS)]
        for k in range(3):
            for half in range(2):  # A column k at address 2k, B row k at 2k + 1
                ctx.set(dut.read.addr, 2 * k + half)
                await ctx.tick()  # one cycle of read latency
                seen[k, half] = ctx.get(dut.read.data)
        ctx.set(load.invalidate_a, 1)
        await ctx.tick()
        seen["invalidated"] = ctx.get(dut.a_valid)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert dut.latency == 1
    assert seen["before"] == (0, 0)
    assert seen["after"] == (1, 3, 3)
    assert seen["scales"] == [-2, 300]
    for k in range(3):
        row_a = sum(a.get((lane, k), 0) << (WIDTH * lane) for lane in range(ROWS))
        row_b = sum(b.get((lane, k), 0) << (WIDTH * lane) for lane in range(COLS))
        assert (seen[k, 0], seen[k, 1]) == (row_a, row_b), k
    assert seen["invalidated"] == 0


def test_buffers_reject_bad_parameters():
    with pytest.raises(ValueError, match=r"cols must be in \[1, 64\], not 0"):
        OperandBuffers(rows=1, cols=0, k_max=1, width=8)
    dut = OperandBuffers(rows=1, cols=1, k_max=1, width=8)
    Fragment.get(dut, None)
    assert (dut.rows, dut.cols, dut.k_max, dut.width) == (1, 1, 1, 8)
