"""``palhdl bench``, the simulated array: utilisation of a resident tile, and an RTL sample.

* **Utilisation.** One resident tile (``rows x cols`` outputs, ``K`` deep: A is ``rows x K``,
  B is ``K x cols``) of each arithmetic of :func:`palhdl.studies.arrays.make_arithmetic`
  (the iCEBreaker's pal8 PE, INT8, FP8 E4M3) streams through a simulated
  :class:`~palhdl.hdl.systolic.SystolicArray` at full rate; utilisation is the useful MACs
  over ``PEs x cycles`` (:attr:`palhdl.sim.driver.MatmulStats.utilisation`), the cycles
  counted by the simulation itself. Then :data:`STREAM_TILES` tiles stream back to back; the
  steady-state utilisation is ``(STREAM_TILES - 1) * K`` over the cycles they add to one
  tile's. Each run's raw result is compared with the provider's golden model.
* **RTL sample.** Both layers of :func:`palhdl.demo.digits_mlp` (the network of
  :func:`palhdl.demo.run_array_demo`) as pal8 matmuls through :func:`palhdl.sim.driver.matmul`,
  the float32 result compared bit for bit with :func:`palhdl.sim.golden.matmul_values`.
"""

from __future__ import annotations

import numpy as np

from palhdl.boards.platforms import get_board
from palhdl.demo import TEST_DIGITS, digits_mlp
from palhdl.format import MacConfig, pal8
from palhdl.hdl.providers import FP8Arithmetic, IntArithmetic, PALArithmetic
from palhdl.hdl.systolic import SystolicArray
from palhdl.sim import golden
from palhdl.sim.driver import BACKENDS, assemble, decode_lanes, matmul, split_tiles
from palhdl.sim.golden.baselines import FLOAT_FORMATS
from palhdl.sim.simulators import SimulatorNotFound
from palhdl.studies.accuracy import format_table
from palhdl.studies.arrays import make_arithmetic
from palhdl.studies.bench.options import BenchOptions

__all__ = [
    "ARITHMETICS",
    "BOARD",
    "STREAM_TILES",
    "measure",
    "measure_mlp",
    "measure_utilisation",
    "plan",
    "render",
]

#: The arithmetics whose utilisation is measured (names of ``make_arithmetic``).
ARITHMETICS = ("pal8", "int8", "fp8")
#: The board whose pal8 PE is simulated.
BOARD = "icebreaker"
#: Tiles streamed back to back for the steady-state figure.
STREAM_TILES = 4


def plan(quick: bool) -> dict:
    """Return the run's geometry: ``backend``, array ``sizes`` (square), ``ks``, MLP ``batch``.

    The full run simulates on Verilator (compiled once per array, cached); the quick one on
    Amaranth's simulator, which needs no compile and counts the same cycles at full rate.
    """
    if quick:
        return {"backend": "pysim", "sizes": [2], "ks": [64], "mlp_size": 2, "batch": 4}
    return {
        "backend": "verilator",
        "sizes": [4, 8],
        "ks": [16, 64, 256],
        "mlp_size": 4,
        "batch": TEST_DIGITS,
    }


def _operands(arithmetic, shape: tuple[int, int], rng) -> np.ndarray:
    """Gaussian operands as ``arithmetic`` takes them: PAL codes, int8 values, FP8 patterns."""
    if isinstance(arithmetic, PALArithmetic):
        return golden.encode(rng.standard_normal(shape), arithmetic.config.fmt).astype(np.int64)
    if isinstance(arithmetic, IntArithmetic):
        return rng.integers(-128, 128, size=shape)
    if isinstance(arithmetic, FP8Arithmetic):
        return (
            FLOAT_FORMATS[arithmetic.variant].to_bits(rng.standard_normal(shape)).astype(np.int64)
        )
    raise TypeError(f"arithmetic: no operands for {type(arithmetic).__name__}")


def _run_tiles(arithmetic, *, size: int, k: int, count: int, backend: str, rng):
    """Stream ``count`` tiles of depth ``k`` through a ``size x size`` array (raw readout).

    Returns the transport's :class:`~palhdl.sim.driver.MatmulStats` (``macs`` set) and whether
    the result equals the provider's golden model in every field.
    """
    a = _operands(arithmetic, (size * count, k), rng)
    b = _operands(arithmetic, (k, size), rng)
    a_scales, b_scales = np.zeros(size * count, np.int64), np.zeros(size, np.int64)
    array = SystolicArray(arithmetic=arithmetic, rows=size, cols=size, output="raw")
    tiles = split_tiles(a, b, a_scales, b_scales, rows=size, cols=size)
    raw, stats = BACKENDS[backend](array).run(tiles)
    result = assemble(tiles, [decode_lanes(array.lane_shape, t) for t in raw], (size * count, size))
    expected = arithmetic.golden_matmul(a, b, a_scales=a_scales, b_scales=b_scales, mode="raw")
    exact = set(result) == set(expected) and all(
        np.array_equal(result[name], expected[name]) for name in expected
    )
    stats.macs = size * count * k * size
    return stats, exact


def measure_utilisation(name: str, *, size: int, k: int, backend: str, seed: int) -> dict:
    """Utilisation of one resident tile and of :data:`STREAM_TILES` tiles of arithmetic ``name``.

    Returns a dict with ``arithmetic``, ``rows``, ``cols``, ``k``, ``backend``,
    ``product_latency``, and either ``unavailable`` (the simulator is missing) or ``cycles``,
    ``macs``, ``utilisation`` (the resident tile), ``stream_cycles``, ``stream_utilisation``,
    ``steady_utilisation`` and ``bit_exact`` (both runs equal the golden model).
    """
    arithmetic = make_arithmetic(name, get_board(BOARD))
    entry = {
        "arithmetic": name,
        "rows": size,
        "cols": size,
        "k": k,
        "backend": backend,
        "product_latency": arithmetic.product_latency,
    }
    rng = np.random.default_rng(seed)
    try:
        one, one_exact = _run_tiles(arithmetic, size=size, k=k, count=1, backend=backend, rng=rng)
        stream, stream_exact = _run_tiles(
            arithmetic, size=size, k=k, count=STREAM_TILES, backend=backend, rng=rng
        )
    except SimulatorNotFound as error:
        entry["unavailable"] = str(error)
        return entry
    added = stream.cycles - one.cycles
    entry.update(
        cycles=one.cycles,
        macs=one.macs,
        utilisation=one.utilisation,
        stream_tiles=STREAM_TILES,
        stream_cycles=stream.cycles,
        stream_utilisation=stream.utilisation,
        steady_utilisation=(STREAM_TILES - 1) * k / added,
        bit_exact=one_exact and stream_exact,
    )
    return entry


def _compare(label: str, x, w, config: MacConfig, *, size: int, backend: str) -> dict:
    """One pal8 matmul ``x @ w`` on the array against the golden model, bit for bit."""
    result, stats = matmul(
        x, w, config=config, rows=size, cols=size, output="float32", backend=backend
    )
    expected = golden.matmul_values(x, w, config).to_float32()
    return {
        "layer": label,
        "m": x.shape[0],
        "k": x.shape[1],
        "n": w.shape[1],
        "elements": int(expected.size),
        "mismatches": int(np.count_nonzero(result.view(np.uint32) != expected.view(np.uint32))),
        "cycles": stats.cycles,
        "seconds": stats.seconds,
    }


def measure_mlp(options: BenchOptions) -> dict:
    """Both layers of the digits MLP on the simulated array against the golden model.

    Layer 2's input is the golden model's layer-1 output (bias, ReLU), as the demo's
    network computes it. Returns ``backend``, ``rows``, ``cols``, ``batch``, ``matmuls`` (one
    dict per matmul: ``layer``, ``m``, ``k``, ``n``, ``elements``, ``mismatches``, ``cycles``,
    ``seconds``) and the totals ``elements`` and ``mismatches``; or ``unavailable``.
    """
    geometry = plan(options.quick)
    size, batch, backend = geometry["mlp_size"], geometry["batch"], geometry["backend"]
    data = {"backend": backend, "rows": size, "cols": size, "batch": batch}
    options.progress("tiles: training the digits MLP")
    x_test, _, (w1, b1, w2, _) = digits_mlp(options.seed)
    x = x_test[:batch]
    config = MacConfig(pal8)
    hidden = np.maximum(golden.matmul_values(x, w1, config).to_float64() + b1, 0.0)
    matmuls = []
    try:
        for label, left, right in (("layer 1", x, w1), ("layer 2", hidden, w2)):
            options.progress(
                f"tiles: MLP {label}, {left.shape[0]}x{left.shape[1]} @ "
                f"{right.shape[0]}x{right.shape[1]} on {backend} {size}x{size}"
            )
            matmuls.append(_compare(label, left, right, config, size=size, backend=backend))
    except SimulatorNotFound as error:
        data["unavailable"] = str(error)
        return data
    data["matmuls"] = matmuls
    data["elements"] = sum(item["elements"] for item in matmuls)
    data["mismatches"] = sum(item["mismatches"] for item in matmuls)
    return data


def measure(options: BenchOptions) -> dict:
    """Measure the utilisation of every arithmetic, size and ``K`` of :func:`plan`, and the MLP.

    Returns ``{"quick", "board", "utilisation": [...], "mlp": {...}}`` with the entries of
    :func:`measure_utilisation` and :func:`measure_mlp`.
    """
    geometry = plan(options.quick)
    data = {"quick": options.quick, "board": BOARD, "utilisation": [], "mlp": None}
    for size in geometry["sizes"]:
        for k in geometry["ks"]:
            for name in ARITHMETICS:
                options.progress(f"tiles: {name} {size}x{size}, K = {k} on {geometry['backend']}")
                data["utilisation"].append(
                    measure_utilisation(
                        name, size=size, k=k, backend=geometry["backend"], seed=options.seed
                    )
                )
    data["mlp"] = measure_mlp(options)
    return data


def _utilisation_row(entry: dict) -> list[str]:
    """Return the cells of one utilisation entry."""
    cells = [
        entry["arithmetic"],
        f"{entry['rows']}x{entry['cols']}",
        str(entry["k"]),
        entry["backend"],
    ]
    if "unavailable" in entry:
        return [*cells, "unavailable: " + entry["unavailable"], "", "", "", ""]
    return [
        *cells,
        str(entry["cycles"]),
        f"{entry['utilisation']:.1%}",
        f"{entry['stream_utilisation']:.1%}",
        f"{entry['steady_utilisation']:.1%}",
        "yes" if entry["bit_exact"] else "**NO**",
    ]


def _mlp_lines(mlp: dict) -> list[str]:
    """Return the RTL sample's table, or the reason it was not run."""
    where = f"{mlp['backend']} {mlp['rows']}x{mlp['cols']} pal8 array, batch {mlp['batch']}"
    if "unavailable" in mlp:
        return [f"Digits MLP on the {where}: not run ({mlp['unavailable']})."]
    rows = [
        [
            item["layer"],
            f"{item['m']}x{item['k']} @ {item['k']}x{item['n']}",
            f"{item['elements']:,}",
            str(item["mismatches"]) if not item["mismatches"] else f"**{item['mismatches']}**",
            f"{item['cycles']:,}",
        ]
        for item in mlp["matmuls"]
    ]
    verdict = (
        "every element bit-exact"
        if not mlp["mismatches"]
        else f"**{mlp['mismatches']} of {mlp['elements']:,} elements differ**"
    )
    header = ["matmul", "shape", "elements", "mismatches", "cycles"]
    return [
        f"Digits MLP on the {where}: {len(mlp['matmuls'])} matmuls, "
        f"{mlp['elements']:,} elements compared, {verdict}.",
        "",
        *format_table(header, rows, markdown=True).splitlines(),
    ]


def render(data: dict) -> list[str]:
    """Return the section's Markdown lines: the utilisation table, the RTL sample, the method."""
    header = [
        "arithmetic", "array", "K", "simulator", "cycles", "resident tile",
        f"{STREAM_TILES} tiles", "steady state", "bit-exact",
    ]  # fmt: skip
    rows = [_utilisation_row(entry) for entry in data["utilisation"]]
    lines = [
        f"Utilisation of the simulated array ({data['board']} pal8 PE, INT8, FP8 E4M3; raw "
        "readout, full rate):",
        "",
        *format_table(header, rows, markdown=True).splitlines(),
        "",
        "A resident tile is one `rows x cols` block of outputs, K deep (A `rows x K`, B "
        "`K x cols`). *Cycles* are counted by the simulation itself: the clock cycles from "
        "the one in which the first A/B operand beat is accepted to the one in which the last "
        "result row leaves on stream `c`, both included, with every stream at full rate. "
        "Utilisation is the useful MACs (`rows x K x cols` per tile) over `PEs x cycles`, so "
        "a resident tile gets `K / cycles`; by `docs/systolic.md` its cycles are "
        "`K + capture_delay + 2 * rows - 1` (raw readout), `capture_delay = (rows - 1) + "
        f"(cols - 1) + product_latency + 1`. The {STREAM_TILES}-tiles column streams that many "
        "tiles back to back, and the steady state is the extra tiles' MACs over the cycles "
        "they add, which reaches 100 % once `K >= capture_delay + 2 * rows - 1`. Every run's "
        "raw accumulators are compared with the provider's golden model. The simulated "
        "array takes any K (`k_max`, 64 by default, bounds only a board's host-link operand "
        "buffers).",
        "",
        *_mlp_lines(data["mlp"]),
        "",
        "The RTL sample runs both layers of the demo's 64-32-10 digits MLP "
        "(`palhdl.demo.digits_mlp`) as pal8 matmuls with per-row/column scales through "
        "`palhdl.sim.driver.matmul` (float32 readout); layer 2 takes the golden model's "
        "layer-1 output. Every float32 result is compared bit for bit with "
        "`golden.matmul_values(...).to_float32()`; a mismatch is reported, never dropped.",
    ]
    return lines
