"""cocotb on Icarus and Verilator: the pal8 systolic arrays against the golden model.

Three arrays sit side by side in one top (``array``, see ``conftest.StreamGroup``): 4x4 with
raw accumulator readout, 4x4 with float32 readout and a block-scaled 2x3 (raw). Matrices are
cut into tiles and packed into ``a``/``b`` beats by :mod:`palhdl.sim.tiles` (the tiling
driver's stimulus); the expected ``c`` beats are :func:`palhdl.sim.golden.matmul` of each tile
with the combined scales ``a_scale[i] + b_scale[j]`` (block-scaled: of the whole product, cut
into tiles), packed in the array's output layout. All three streams stall at random. Verilator
also multiplies 64x384 @ 384x64 products (256 tiles, slow).
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
#: The block-scaled 2x3 array's accumulator (saturating, narrow term window) and block size.
BLOCK_CONFIG = MacConfig(pal8, acc_bits=20, acc_frac_bits=8, term_bits=12, mantissa_bits=5)
BLOCK_SIZE = 4


def make_arrays():
    """Instance name -> array: the whole ``array`` top."""
    arrays = {
        name: SystolicArray(
            arithmetic=PALArithmetic(config=CONFIG), rows=SIZE, cols=SIZE, output=output
        )
        for name, output in [("raw", "raw"), ("f32", "float32")]
    }
    arithmetic = PALArithmetic(config=BLOCK_CONFIG, block_scaled=True)
    arrays["blk"] = SystolicArray(arithmetic=arithmetic, rows=2, cols=3, output="raw")
    return arrays


def golden_lanes(tile, output):
    """The golden ``(rows, cols)`` output lanes of one tile (a dict of fields for ``raw``)."""
    result = golden.matmul(tile.a, tile.b, CONFIG)
    scale = tile.a_scales[:, None] + tile.b_scales[None, :]
    result = golden.MacResult(result.acc, result.nan, result.overflow, scale, CONFIG)
    if output == "raw":
        return {"acc": result.acc, "nan": result.nan, "overflow": result.overflow, "scale": scale}
    return result.to_float32_bits()


def random_codes(rng, shape):
    """Random pal8 codes, 5 % of them zero, NaN or the largest magnitude."""
    codes = rng.integers(0, 256, shape)
    special = rng.random(shape) < 0.05
    codes[special] = rng.choice([pal8.zero_code, pal8.nan_code, pal8.max_code], special.sum())
    return codes


def stream_case(case, name, a_beats, b_beats, expected, backpressure):
    return case(
        name,
        {f"{name}__a": a_beats, f"{name}__b": b_beats},
        {f"{name}__c": expected},
        backpressure=backpressure,
    )


def matmul_case(case, arrays, name, shape, rng, *, backpressure):
    """``A (M, K) @ B (K, N)`` of random pal8 codes and scales on 4x4 array ``name``."""
    array = arrays[name]
    m, k, n = shape
    a, b = random_codes(rng, (m, k)), random_codes(rng, (k, n))
    a_scales = rng.integers(-20, 20, m)
    b_scales = rng.integers(-20, 20, n)
    tiles = split_tiles(a, b, a_scales, b_scales, rows=SIZE, cols=SIZE)
    a_beats, b_beats = tile_beats(array, tiles)
    output = "raw" if name == "raw" else "float32"
    expected = np.concatenate(
        [pack_payloads(array.c_layout, {"data": golden_lanes(tile, output)}) for tile in tiles]
    )
    return stream_case(case, name, a_beats, b_beats, expected, backpressure)


def block_case(case, arrays, shape, rng, *, backpressure):
    """``A @ B`` with random E8M0 block scales on the block-scaled 2x3 array (whole tiles).

    The beats carry the per-element offsets and per-row (column) references a host computes
    with ``golden.block_offsets``; expected: ``golden.matmul(..., block_size=)`` cut into
    tiles, its ``scale_exp`` as the lanes' scale.
    """
    array = arrays["blk"]
    m, k, n = shape
    assert m % array.rows == 0 and n % array.cols == 0
    a, b = random_codes(rng, (m, k)), random_codes(rng, (k, n))
    blocks = -(-k // BLOCK_SIZE)
    a_scales = rng.integers(-40, 41, (m, blocks))
    b_scales = rng.integers(-40, 41, (blocks, n))
    a_offsets, a_ref = golden.block_offsets(a_scales, pal8, per="row", block_size=BLOCK_SIZE, k=k)
    b_offsets, b_ref = golden.block_offsets(b_scales, pal8, per="col", block_size=BLOCK_SIZE, k=k)
    tiles = split_tiles(
        a, b, a_ref, b_ref, rows=array.rows, cols=array.cols, a_offsets=a_offsets,
        b_offsets=b_offsets,
    )  # fmt: skip
    a_beats, b_beats = tile_beats(array, tiles)
    result = golden.matmul(
        a, b, BLOCK_CONFIG, a_scales=a_scales, b_scales=b_scales, block_size=BLOCK_SIZE
    )
    fields = {"acc": result.acc, "nan": result.nan, "overflow": result.overflow}
    fields["scale"] = result.scale_exp
    expected = []
    for tile in tiles:
        rows = slice(tile.row0, tile.row0 + array.rows)
        cols = slice(tile.col0, tile.col0 + array.cols)
        lanes = {field: value[rows, cols] for field, value in fields.items()}
        expected.append(pack_payloads(array.c_layout, {"data": lanes}))
    return stream_case(case, "blk", a_beats, b_beats, np.concatenate(expected), backpressure)


def test_array_matmul(run_streams, case, simulator):
    """Raw and float32 readouts: 9x13 @ 13x7 (partial tiles) and 8x20 @ 20x8, stalled."""
    arrays = make_arrays()
    rng = np.random.default_rng(4)
    cases = [
        matmul_case(case, arrays, "raw", (9, 13, 7), rng, backpressure=1),
        matmul_case(case, arrays, "f32", (8, 20, 8), rng, backpressure=2),
        block_case(case, arrays, (4, 10, 6), rng, backpressure=3),
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
        block_case(case, arrays, (32, 384, 33), rng, backpressure=4),
    ]
    run_streams("verilator", TOP, arrays, cases)
