"""The stream wrappers on both backends: ``simulate_stream(..., backend="verilator")``.

Each unit's Verilog compiles once into the compile cache (``$PALHDL_CACHE``, a few seconds
each); its outputs are checked against the golden model and must equal the Python
simulator's, payload for payload, with and without back-pressure.
"""

import numpy as np
import pytest
from amaranth.hdl import Fragment

from palhdl.format import MacConfig, pal8
from palhdl.hdl.convert import PALToFloat32
from palhdl.hdl.mac import PALMac
from palhdl.hdl.ops import PALAdder, PALMultiplier
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import SystolicArray
from palhdl.sim import golden
from palhdl.sim.pysim import pack_payloads, simulate_stream, simulate_streams, unpack_payloads
from palhdl.sim.tiles import split_rows, split_tiles, tile_beats

COUNT = 400


def binary(unit, select_name, golden_of):
    """A case: ``unit`` on random pal8 operands, checked with ``golden_of[select]``."""

    def case(rng):
        a, b = rng.integers(0, 256, COUNT), rng.integers(0, 256, COUNT)
        select = rng.integers(0, 2, COUNT)
        dut = unit(fmt=pal8, pipelined=unit is PALMultiplier)
        payloads = pack_payloads(dut.i.payload.shape(), {"a": a, "b": b, select_name: select})
        expected = np.where(select, golden_of[1](a, b, pal8), golden_of[0](a, b, pal8))
        return dut, payloads, COUNT, np.int64, expected

    return case


def to_float32(rng):
    codes = rng.permutation(np.tile(np.arange(256), 2))
    dut = PALToFloat32(fmt=pal8, pipelined=True)
    expected = golden.to_float32_bits(codes, pal8).astype(np.int64)
    return dut, pack_payloads(dut.i.payload.shape(), codes), len(codes), np.int64, expected


def mac(rng):
    """Dot products of four pal8 pairs back to back (``first`` and ``last`` mark them)."""
    config = MacConfig(pal8)
    dots, length = 60, 4
    a, b = rng.integers(0, 256, (dots, length)), rng.integers(0, 256, (dots, length))
    first = np.tile([1, 0, 0, 0], dots)
    last = np.tile([0, 0, 0, 1], dots)
    dut = PALMac(config=config, pipelined=True)
    fields = {"a": a.ravel(), "b": b.ravel(), "first": first, "last": last}
    result = golden.matmul(a, b.T, config)
    diagonal = np.arange(dots)
    expected = np.stack(
        [result.acc[diagonal, diagonal], result.nan[diagonal, diagonal],
         result.overflow[diagonal, diagonal]]
    ).astype(np.int64)  # fmt: skip

    def decode(raw):
        outputs = unpack_payloads(dut.o.payload.shape(), np.array(raw, dtype=object))
        return np.stack([outputs["acc"], outputs["nan"], outputs["overflow"]]).astype(np.int64)

    return dut, pack_payloads(dut.i.payload.shape(), fields), dots, decode, expected


CASES = {
    "PALMultiplier": binary(PALMultiplier, "op", (golden.mul, golden.div)),
    "PALAdder": binary(PALAdder, "sub", (golden.add, golden.sub)),
    "PALToFloat32": to_float32,
    "PALMac": mac,
}


def run(case, backend, backpressure):
    """``(decoded outputs, raw outputs, cycles, expected)`` of a case on ``backend``."""
    dut, payloads, count, decode, expected = CASES[case](np.random.default_rng(len(case)))
    results, cycles = simulate_streams(
        dut,
        {"i": payloads.tolist()},
        {"o": count},
        backend=backend,
        backpressure=backpressure,
        name=case,
    )
    return np.asarray(decode(results["o"])), results["o"], cycles, expected


@pytest.mark.parametrize("backpressure", [None, 9])
@pytest.mark.parametrize("case", CASES)
def test_unit_on_verilator_matches_golden_and_pysim(case, backpressure):
    decoded, raw, cycles, expected = run(case, "verilator", backpressure)
    np.testing.assert_array_equal(decoded, expected)
    _, reference, reference_cycles, _ = run(case, "pysim", backpressure)
    assert raw == reference
    if backpressure is None:
        assert cycles == reference_cycles
    else:
        assert cycles > reference_cycles // 2  # stalls slow both down, by another pattern


def test_simulate_stream_takes_the_backend():
    dut, payloads, _, _, expected = CASES["PALMultiplier"](np.random.default_rng(7))
    raw = simulate_stream(dut, payloads, backend="verilator", backpressure=3)
    np.testing.assert_array_equal(raw.astype(np.int64), expected)


def test_array_streams_equal_pysim():
    """Two input streams and one output: the systolic array's own transport path."""
    config = MacConfig(pal8)
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 256, (3, 9)), rng.integers(0, 256, (9, 3))
    tiles = split_tiles(a, b, np.zeros(3, np.int64), np.zeros(3, np.int64), rows=2, cols=2)
    runs = {}
    for backend in ("verilator", "pysim"):
        dut = SystolicArray(arithmetic=PALArithmetic(config=config), rows=2, cols=2)
        a_beats, b_beats = tile_beats(dut, tiles)
        runs[backend] = simulate_streams(
            dut, {"a": a_beats, "b": b_beats}, {"c": 2 * len(tiles)}, backend=backend
        )
    assert runs["verilator"] == runs["pysim"]  # payloads and cycles
    lanes = split_rows(dut, runs["verilator"][0]["c"], len(tiles))
    acc = unpack_payloads(dut.lane_shape, np.array(lanes[0].tolist(), dtype=object))["acc"]
    np.testing.assert_array_equal(acc, golden.matmul(a[:2], b[:, :2], config).acc)


def test_environment_picks_the_default_backend(monkeypatch):
    dut, payloads, _, _, _ = CASES["PALMultiplier"](np.random.default_rng(7))
    monkeypatch.setenv("PALHDL_BACKEND", "verilator")
    with pytest.raises(TimeoutError, match="PALMultiplier: streams not done after 10 cycles"):
        simulate_stream(dut, payloads, max_cycles=10, name="PALMultiplier")
    with pytest.raises(TypeError, match=r"^dut: backend 'verilator' needs a wiring\.Component"):
        simulate_stream(object(), payloads)
    monkeypatch.setenv("PALHDL_BACKEND", "icarus")
    with pytest.raises(ValueError, match=r"^PALHDL_BACKEND must be one of 'pysim', 'verilator'"):
        simulate_stream(dut, payloads)


def test_unknown_backend_and_port_are_refused():
    dut, payloads, _, _, _ = CASES["PALMultiplier"](np.random.default_rng(7))
    with pytest.raises(ValueError, match=r"^backend must be one of 'pysim', 'verilator', not 'x'"):
        simulate_stream(dut, payloads, backend="x")
    with pytest.raises(ValueError, match=r"^dut: 'q' is not a stream port"):
        simulate_stream(dut, payloads, backend="verilator", output_port="q")
    Fragment.get(dut, None)  # refused before its elaboration: no UnusedElaboratable warning
