"""The run engine alone (with its array): operand rows in, the result memory out."""

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from palhdl.boards.hostlink.run import RunEngine
from palhdl.format import MacConfig, pal8
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import SystolicArray

ROWS, COLS = 2, 2


@pytest.mark.parametrize("K", [1, 2, 3])
def test_run_fills_the_result_memory(K):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(ROWS, K))
    b = rng.integers(0, 256, size=(K, COLS))
    a_scales, b_scales = np.array([1, -2]), np.array([0, 3])
    arithmetic = PALArithmetic(config=MacConfig(pal8))
    top = Module()
    top.submodules.array = array = SystolicArray(
        arithmetic=arithmetic, rows=ROWS, cols=COLS, output="pal"
    )
    top.submodules.engine = engine = RunEngine(array=array, k_max=4)
    wiring.connect(top, engine.a, array.a)
    wiring.connect(top, engine.b, array.b)
    wiring.connect(top, array.c, engine.c)
    # The operand memory: row 2k is column k of the A tile, row 2k + 1 row k of the B tile.
    memory = {}
    for k in range(K):
        memory[2 * k] = sum(int(a[i, k]) << (8 * i) for i in range(ROWS))
        memory[2 * k + 1] = sum(int(b[k, j]) << (8 * j) for j in range(COLS))
    seen = {"stalled_beats": 0, "beats": []}

    async def bench(ctx):
        operands = engine.operands
        ctx.set(operands.k, K)
        for i, scale in enumerate(a_scales):
            ctx.set(operands.a_scale[i], int(scale))
        for j, scale in enumerate(b_scales):
            ctx.set(operands.b_scale[j], int(scale))
        ctx.set(engine.start, 1)
        await ctx.tick()
        ctx.set(engine.start, 0)
        cycle = 1  # cycles since start
        while not ctx.get(engine.done):
            offered = ctx.get(engine.a.valid) and not ctx.get(engine.a.payload.last)
            seen["stalled_beats"] += offered and not ctx.get(engine.a.ready)
            if ctx.get(engine.a.valid) and ctx.get(engine.a.ready):  # a beat the array takes
                assert ctx.get(engine.b.valid) and ctx.get(engine.b.ready)
                seen["beats"].append(
                    (
                        [ctx.get(engine.a.payload.data[i].as_value()) for i in range(ROWS)],
                        [ctx.get(engine.b.payload.data[j].as_value()) for j in range(COLS)],
                        ctx.get(engine.a.payload.last),
                        [ctx.get(engine.a.payload.scale[i]) for i in range(ROWS)],
                        [ctx.get(engine.b.payload.scale[j]) for j in range(COLS)],
                    )
                )
            await ctx.tick()
            cycle += 1
            assert cycle < 500
        seen["run"] = (cycle, ctx.get(engine.result_valid))
        await ctx.tick()
        seen["after"] = (ctx.get(engine.cycles), ctx.get(engine.result_valid))
        data = []
        for address in range(engine.read_length):
            ctx.set(engine.read_addr, address)
            await ctx.tick()
            data.append(ctx.get(engine.read_data))
        seen["data"] = data
        seen["flags"] = (ctx.get(engine.nan), ctx.get(engine.saturated))

    async def operand_memory(ctx):  # a synchronous read port: one cycle of read latency
        async for _, _, address in ctx.tick().sample(engine.operands.addr):
            ctx.set(engine.operands.data, memory.get(address, 0))

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_process(operand_memory)
    sim.add_testbench(bench)
    sim.run()
    expected = arithmetic.golden_matmul(a, b, a_scales=a_scales, b_scales=b_scales, mode="pal")
    assert seen["data"] == expected.ravel().tolist()
    # Beat k is column k of A and row k of B, in order, the last one marked, with the scales.
    assert seen["beats"] == [
        (
            a[:, k].tolist(),
            b[k, :].tolist(),
            int(k == K - 1),
            a_scales.tolist(),
            b_scales.tolist(),
        )
        for k in range(K)
    ]
    assert seen["stalled_beats"] == 0  # the engine relies on it
    run_cycles, valid_at_done = seen["run"]
    assert valid_at_done == 0
    assert seen["after"] == (run_cycles, 1)  # counted from start to the last byte stored
    # Two cycles per K step, then a byte per cycle for each row (lane_bytes 1).
    assert 2 * K + ROWS * COLS <= run_cycles <= 2 * K + ROWS * COLS + array.capture_delay + 10
    nan = bool((expected == pal8.nan_code).any())
    saturated = bool(((expected & pal8.mag_mask) == pal8.max_code).any())
    assert seen["flags"] == (nan, saturated)


def test_run_engine_rejects_bad_parameters():
    with pytest.raises(TypeError, match="array must be a SystolicArray"):
        RunEngine(array=None, k_max=4)
    array = SystolicArray(arithmetic=PALArithmetic(config=MacConfig(pal8)), rows=1, cols=1)
    with pytest.raises(ValueError, match=r"k_max must be in \[1, 4096\], not 0"):
        RunEngine(array=array, k_max=0)
    engine = RunEngine(array=array, k_max=2)
    top = Module()
    top.submodules.array, top.submodules.engine = array, engine
    Fragment.get(top, None)
    assert (engine.k_max, engine.lane_bytes, engine.read_length, engine.latency) == (2, 9, 9, 1)
