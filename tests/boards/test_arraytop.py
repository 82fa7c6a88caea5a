"""Comparison tops (boards/arraytop.py): LFSR, ArrayCore, ArrayTop.

Pure Python, elaboration and pysim: no FPGA tool runs here (the builds are in
tests/synth/test_arraybuild.py). The LFSR taps are checked against the definition of a
primitive polynomial over GF(2); the core's results against the provider's golden model for
the operands it fed, and its output pins against the column parities of those results.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from amaranth.hdl import Fragment, Value, signed
from amaranth.sim import Simulator

from palhdl.boards.arraytop import LFSR, LFSR_TAPS, MAX_RUN, ArrayCore, ArrayTop
from palhdl.boards.platforms import get_board
from palhdl.format import pal8
from palhdl.hdl.providers import FP8Arithmetic, IntArithmetic, PALArithmetic

# --- LFSR ------------------------------------------------------------------------------------


def _mulmod(a: int, b: int, poly: int, degree: int) -> int:
    """``a * b`` modulo ``poly`` in GF(2)[x] (polynomials as bit masks)."""
    result = 0
    while b:
        if b & 1:
            result ^= a
        b >>= 1
        a <<= 1
        if a >> degree & 1:
            a ^= poly
    return result


def _powmod(base: int, exponent: int, poly: int, degree: int) -> int:
    result = 1
    while exponent:
        if exponent & 1:
            result = _mulmod(result, base, poly, degree)
        base = _mulmod(base, base, poly, degree)
        exponent >>= 1
    return result


def _prime_factors(n: int) -> set[int]:
    factors, p = set(), 2
    while p * p <= n:
        while n % p == 0:
            factors.add(p)
            n //= p
        p += 1
    return factors | ({n} if n > 1 else set())


@pytest.mark.parametrize("width", sorted(LFSR_TAPS))
def test_lfsr_taps_are_primitive_polynomials(width):
    # Taps (n, t2, ...) give 1 + x^t2 + ... + x^n; it is primitive iff x has order 2^n - 1
    # modulo it: x^(2^n - 1) = 1 and x^((2^n - 1) / q) != 1 for every prime q dividing 2^n - 1.
    taps = LFSR_TAPS[width]
    assert taps[0] == width and len(set(taps)) == len(taps)
    poly = 1 | functools.reduce(lambda acc, t: acc | 1 << t, taps, 0)
    order = (1 << width) - 1
    assert _powmod(0b10, order, poly, width) == 1
    for q in _prime_factors(order):
        assert _powmod(0b10, order // q, poly, width) != 1


def _run_lfsr(lfsr: LFSR, cycles: int) -> list[int]:
    values = []

    async def bench(ctx):
        for _ in range(cycles):
            values.append(ctx.get(lfsr.value))
            await ctx.tick()

    sim = Simulator(lfsr)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return values


@pytest.mark.parametrize(("width", "seed"), [(4, 1), (5, 17), (8, 200)])
def test_lfsr_visits_every_nonzero_state(width, seed):
    period = (1 << width) - 1
    values = _run_lfsr(LFSR(width=width, seed=seed), period + 3)
    assert values[0] == seed
    assert sorted(values[:period]) == list(range(1, period + 1))
    assert values[period : period + 3] == values[:3]
    # A shift register: each state is the previous one shifted up, a new bit at the bottom.
    assert all(new >> 1 == old & (period >> 1) for old, new in itertools.pairwise(values))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"width": 1}, ValueError, r"width must be in \[2, 32\], not 1"),
        ({"width": 33}, ValueError, r"width must be in \[2, 32\], not 33"),
        ({"width": 8.0}, TypeError, "width must be an integer"),
        ({"width": 4, "seed": 0}, ValueError, r"seed must be in \[1, 15\], not 0"),
        ({"width": 4, "seed": 16}, ValueError, r"seed must be in \[1, 15\], not 16"),
    ],
)
def test_lfsr_rejects_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        LFSR(**kwargs)


# --- ArrayCore: parameters ---------------------------------------------------------------------


class _WideOperands(IntArithmetic):
    """An integer provider whose A operand is wider than any LFSR."""

    @property
    def a_shape(self):
        return signed(40)


INT8 = IntArithmetic(width=8, acc_bits=22)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"arithmetic": "int8"}, TypeError, "arithmetic must be an Arithmetic"),
        ({"rows": 0}, ValueError, r"rows must be in \[1, 64\], not 0"),
        ({"cols": 65}, ValueError, r"cols must be in \[1, 64\], not 65"),
        ({"k": 0}, ValueError, rf"k must be in \[1, {MAX_RUN}\], not 0"),
        ({"outputs": 0}, ValueError, r"outputs must be in \[1, 64\], not 0"),
        (
            {"arithmetic": _WideOperands()},
            ValueError,
            "arithmetic.a_shape must be 2 to 32 bits wide for the operand LFSRs, not 40",
        ),
    ],
)
def test_array_core_rejects_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        ArrayCore(**{"arithmetic": INT8, "rows": 2, "cols": 2, **kwargs})


def test_array_core_needs_keywords():
    with pytest.raises(TypeError, match="keyword arguments only"):
        ArrayCore(INT8, 2, 2)


def test_array_core_ports_and_properties():
    core = ArrayCore(arithmetic=INT8, rows=3, cols=5, k=7, outputs=4)
    assert (core.rows, core.cols, core.k, core.outputs) == (3, 5, 7, 4)
    assert core.arithmetic is INT8 and core.array.arithmetic is INT8
    assert (core.array.rows, core.array.cols, core.array.output) == (3, 5, "raw")
    assert {name for name, _ in core.signature.members.items()} == {"rx", "tx", "status"}
    assert len(core.status) == 4 and len(core.tx) == 1 and len(core.rx) == 1
    Fragment.get(core, None)  # elaborates, with its array


# --- ArrayCore: simulation -----------------------------------------------------------------------


def _simulate(core: ArrayCore, cycles: int):
    """Per cycle (sampled at the clock edge): accepted beats, result rows, status, tx."""
    array = core.array
    a_data = [Value.cast(array.a.payload.data[i]) for i in range(core.rows)]
    b_data = [Value.cast(array.b.payload.data[j]) for j in range(core.cols)]
    names = list(array.lane_shape.members)
    lanes = [array.c.payload.data[j] for j in range(core.cols)]
    fields = [Value.cast(getattr(lane, name)) for lane in lanes for name in names]
    raw = [Value.cast(lane) for lane in lanes]
    trace = []

    async def bench(ctx):
        samples = ctx.tick().sample(
            array.a.ready, array.a.payload.last, array.c.valid, core.status, core.tx,
            *a_data, *b_data, *fields, *raw,
        )  # fmt: skip
        async for _, _, ready, last, c_valid, status, tx, *values in samples:
            a = values[: core.rows]
            b = values[core.rows : core.rows + core.cols]
            rest = values[core.rows + core.cols :]
            field_values, raw_values = rest[: len(fields)], rest[len(fields) :]
            row = {
                name: [field_values[j * len(names) + n] for j in range(core.cols)]
                for n, name in enumerate(names)
            }
            trace.append((ready, last, a, b, c_valid, row, raw_values, status, tx))
            if len(trace) == cycles:
                return

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return trace


PROVIDERS = {
    "int8": INT8,
    "fp8": FP8Arithmetic(variant="e4m3", acc_bits=32, acc_frac_bits=12, term_bits=14),
    "pal8": PALArithmetic(config=get_board("icebreaker").default_config(pal8)),
}


@pytest.mark.parametrize("name", PROVIDERS)
def test_core_feeds_lfsr_operands_and_its_results_match_the_golden_model(name):
    arithmetic, rows, cols, k = PROVIDERS[name], 2, 2, 4
    core = ArrayCore(arithmetic=arithmetic, rows=rows, cols=cols, k=k, outputs=2)
    trace = _simulate(core, 80)
    beats = [(a, b, last) for ready, last, a, b, *_ in trace if ready]
    results = [row for *_, c_valid, row, _, _, _ in trace if c_valid]
    assert len(beats) >= 3 * k and len(results) >= 2 * rows
    # Operands toggle: every lane takes many values, and A differs from B.
    for lane in range(rows):
        assert len({a[lane] for a, _, _ in beats}) > 10
    for lane in range(cols):
        assert len({b[lane] for _, b, _ in beats}) > 10
    assert [a for a, _, _ in beats] != [b for _, b, _ in beats]
    # Every k-th accepted beat is a last beat.
    assert [last for _, _, last in beats[: 3 * k]] == ([0] * (k - 1) + [1]) * 3
    # The first two tiles: results row by row against the golden model of the fed operands.
    zeros_a, zeros_b = np.zeros(rows, np.int64), np.zeros(cols, np.int64)
    for tile in range(2):
        run = beats[tile * k : (tile + 1) * k]
        a = np.array([a for a, _, _ in run]).T  # rows x k
        b = np.array([b for _, b, _ in run])  # k x cols
        golden = arithmetic.golden_matmul(a, b, a_scales=zeros_a, b_scales=zeros_b, mode="raw")
        for i in range(rows):
            row = results[tile * rows + i]
            for field, values in row.items():
                assert values == list(golden[field][i]), (tile, i, field)


def test_core_folds_the_column_parities_onto_status_and_tx():
    core = ArrayCore(arithmetic=INT8, rows=2, cols=3, k=3, outputs=2)
    trace = _simulate(core, 90)
    # Independent model: parity[j] <= XOR of lane j's bits on c.valid; status[o] <= XOR of
    # parity[j] for j % 2 == o; tx <= XOR of all parity bits (each one register later).
    parity = [0, 0, 0]
    expected = []
    for *_, c_valid, _, raw, _, _ in trace:
        status = (parity[0] ^ parity[2]) | parity[1] << 1
        expected.append((status, parity[0] ^ parity[1] ^ parity[2]))
        if c_valid:
            parity = [bin(value).count("1") & 1 for value in raw]
    observed = [(status, tx) for *_, status, tx in trace]
    assert observed[1:] == expected[:-1]
    assert {status for status, _ in observed} == {0, 1, 2, 3}
    assert {tx for _, tx in observed} == {0, 1}


# --- ArrayTop ----------------------------------------------------------------------------------


def test_array_top_wraps_the_core_in_the_board_top():
    board = get_board("ulx3s-85f")
    top = ArrayTop(board=board, arithmetic=INT8, rows=2, cols=3, clk_freq=50e6, k=8)
    assert top.board is board and top.pll is not None
    assert top.sync_freq == pytest.approx(50e6)
    assert (top.core.rows, top.core.cols, top.core.k) == (2, 3, 8)
    assert top.core.outputs == board.leds
    plan = board.platform().prepare(top, name="top")
    netlist = plan.files["top.il"]
    assert "EHXPLLL" in netlist and "board.core.array" in netlist
    assert set(plan.files) >= {"top.il", "top.lpf"}


def test_array_top_runs_from_the_oscillator_without_pll():
    board = get_board("icebreaker")
    top = ArrayTop(board=board, arithmetic=INT8, rows=1, cols=1, clk_freq=12e6)
    assert top.pll is None and top.sync_freq == 12e6
    assert "SB_PLL40_PAD" not in board.platform().prepare(top, name="top").files["top.il"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"board": "icebreaker"}, TypeError, "board must be a Board"),
        ({"clk_freq": 300e6}, ValueError, "clk_freq must be between 16 MHz and 275 MHz"),
        ({"rows": 0}, ValueError, r"rows must be in \[1, 64\], not 0"),
        ({"k": MAX_RUN + 1}, ValueError, "k must be in"),
    ],
)
def test_array_top_rejects_bad_parameters(kwargs, error, message):
    arguments = {
        "board": get_board("icebreaker"),
        "arithmetic": INT8,
        "rows": 2,
        "cols": 2,
        "clk_freq": 24e6,
        **kwargs,
    }
    with pytest.raises(error, match=message):
        ArrayTop(**arguments)
