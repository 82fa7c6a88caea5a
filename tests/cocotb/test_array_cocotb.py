"""cocotb on Icarus and Verilator: the 4x4 pal8 systolic array against the golden model.

Two arrays sit side by side in one top (``array``, see ``conftest.StreamGroup``): raw
accumulator readout and float32 readout. Matrices are cut into tiles and packed into ``a``/``b``
beats by :mod:`palhdl.sim.tiles` (the tiling driver's stimulus); the expected ``c`` beats are
:func:`palhdl.sim.golden.matmul` of each tile with the combined scales ``a_scale[i] +
b_scale[j]``, packed in the array's output layout. All three streams stall at random.
Verilator also multiplies a 64x384 @ 384x64 product (256 tiles, slow).
"""

import numpy as np
import pytest

from palhdl.format import MacConfig, pal8
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import SystolicArray
from palhdl.sim import golden
from palhdl.sim.pysim import pack_payloads
from palhdl.sim.tiles import split_tiles, tile_beats

TOP = "array"
CONFIG = MacConfig(pal8)
SIZE = 4


def make_arrays():
    """Instance name -> array: the whole ``array`` top."""
    return {
        name: SystolicArray(
            arithmetic=PALArithmetic(config=CONFIG), rows=SIZE, cols=SIZE, output=output
        )
        for name, output in [("raw", "raw"), ("f32", "float32")]
    }


def golden_lanes(tile, output):
    """The golden ``(rows, cols)`` output lanes of one tile (a dict of fields for ``raw``)."""
    result = golden.matmul(tile.a, tile.b, CONFIG)
    scale = tile.a_scales[:, None] + tile.b_scales[None, :]
    result = golden.MacResult(result.acc, result.nan, result.overflow, scale, CONFIG)
    if output == "raw":
        return {"acc": result.acc, "nan": result.nan, "overflow": result.overflow, "scale": scale}
    return result.to_float32_bits()


def matmul_case(case, arrays, name, shape, rng, *, backpressure):
    """``A (M, K) @ B (K, N)`` of random pal8 codes (5% zero/NaN/max) and scales on ``name``."""
    array = arrays[name]
    m, k, n = shape
    a = rng.integers(0, 256, (m, k))
    b = rng.integers(0, 256, (k, n))
    for operand in (a, b):
        special = rng.random(operand.shape) < 0.05
        operand[special] = rng.choice([pal8.zero_code, pal8.nan_code, pal8.max_code], special.sum())
    a_scales = rng.integers(-20, 20, m)
    b_scales = rng.integers(-20, 20, n)
    tiles = split_tiles(a, b, a_scales, b_scales, rows=SIZE, cols=SIZE)
    a_beats, b_beats = tile_beats(array, tiles)
    output = "raw" if name == "raw" else "float32"
    expected = np.concatenate(
        [pack_payloads(array.c_layout, {"data": golden_lanes(tile, output)}) for tile in tiles]
    )
    return case(
        name,
        {f"{name}__a": a_beats, f"{name}__b": b_beats},
        {f"{name}__c": expected},
        backpressure=backpressure,
    )


def test_array_matmul(run_streams, case, simulator):
    """Raw and float32 readouts: 9x13 @ 13x7 (partial tiles) and 8x20 @ 20x8, stalled."""
    arrays = make_arrays()
    rng = np.random.default_rng(4)
    cases = [
        matmul_case(case, arrays, "raw", (9, 13, 7), rng, backpressure=1),
        matmul_case(case, arrays, "f32", (8, 20, 8), rng, backpressure=2),
    ]
    run_streams(simulator, TOP, arrays, cases)


@pytest.mark.slow
def test_array_large_matmul_verilator(run_streams, case):
    """64x384 @ 384x64 on both arrays (256 tiles each), the raw one stalled."""
    arrays = make_arrays()
    rng = np.random.default_rng(384)
    cases = [
        matmul_case(case, arrays, "raw", (64, 384, 64), rng, backpressure=3),
        matmul_case(case, arrays, "f32", (64, 384, 64), rng, backpressure=None),
    ]
    run_streams("verilator", TOP, arrays, cases)
