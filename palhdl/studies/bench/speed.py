"""``palhdl bench``, speed of the tools: the golden matmul and the array simulators.

Two measurements, both wall time with :func:`time.perf_counter` on whatever else the machine runs:

* **Golden model.** :func:`palhdl.sim.golden.matmul_values` (quantisation included) on a
  Gaussian ``128x384 @ 384x1536`` matmul (quick: ``16x64 @ 64x32``), pal8 with per-row/column
  scales and with blocks of 32, against numpy's float64 ``a @ b`` on the same operands: MAC/s
  of the best of :data:`REPEATS` runs, after one untimed run (tables built, caches warm).
* **Simulators.** A Gaussian matmul through :func:`palhdl.sim.driver.matmul` (pal8, float32
  readout) on each backend of :data:`palhdl.sim.driver.BACKENDS` and array size: simulated
  cycles, the transport's wall time, cycles/s, a compiled backend's one-time compile apart
  from it, and whether the result is bit-exact with the golden model. A backend whose tool is
  missing is recorded as unavailable.
"""

from __future__ import annotations

import time

import numpy as np

from palhdl.format import MacConfig, pal8
from palhdl.sim import golden
from palhdl.sim.compiled import cxx_optimisation
from palhdl.sim.driver import matmul
from palhdl.sim.simulators import SimulatorNotFound, iverilog, verilator_root
from palhdl.studies.accuracy import format_table
from palhdl.studies.bench.options import BenchOptions

__all__ = ["REPEATS", "golden_shape", "measure", "render", "sim_runs"]

#: Timed runs of each golden measurement; the best one counts.
REPEATS = 5
#: Block size of the block-scaled golden measurement (the MX block).
BLOCK_SIZE = 32
#: The tool lookup of each compiled backend: raises ``SimulatorNotFound`` before the array's
#: Verilog is exported (minutes at 16 x 16) when the simulator is missing.
_TOOLS = {"icarus": iverilog, "verilator": verilator_root}


def golden_shape(quick: bool) -> tuple[int, int, int]:
    """``(M, K, N)`` of the golden-model matmul."""
    return (16, 64, 32) if quick else (128, 384, 1536)


def sim_runs(quick: bool) -> list[dict]:
    """Return the simulator runs: ``backend``, ``rows`` (= cols), the matmul's ``m``, ``k``, ``n``.

    Amaranth's simulator runs tens to a few hundred cycles per second (its wall time includes
    building the simulation), so it gets the small arrays and short matmuls; Icarus gets 16
    tiles of ``K = 256`` on every array size; Verilator a ``256 x 256 @ 256 x 256`` matmul on
    every size (4,096 tiles of a 4 x 4 array, a million cycles), about a second of simulation
    each, so that the process start-up does not dominate its rate.
    """
    if quick:
        return [
            {"backend": "pysim", "rows": 2, "m": 4, "k": 16, "n": 4},
            {"backend": "verilator", "rows": 2, "m": 16, "k": 64, "n": 16},
        ]
    runs = [
        {"backend": "pysim", "rows": 4, "m": 32, "k": 64, "n": 16},
        {"backend": "pysim", "rows": 8, "m": 16, "k": 64, "n": 16},
    ]
    # Icarus runs about 70 to 1,200 cycles/s: 256 tiles of a 16 x 16 array would take 20 minutes.
    for size in (4, 8, 16):
        side = 4 * size
        runs.append({"backend": "icarus", "rows": size, "m": side, "k": 256, "n": side})
    for size in (4, 8, 16):
        runs.append({"backend": "verilator", "rows": size, "m": 256, "k": 256, "n": 256})
    return runs


def _best_seconds(function, repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``function`` after one untimed call."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def measure_golden(options: BenchOptions) -> dict:
    """Golden-model and numpy float64 MAC/s on one Gaussian matmul (see the module docstring)."""
    m, k, n = golden_shape(options.quick)
    rng = np.random.default_rng(options.seed)
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    macs = m * k * n
    config = MacConfig(pal8)
    options.progress(f"speed: golden matmul_values {m}x{k} @ {k}x{n}, best of {REPEATS}")
    numpy_seconds = _best_seconds(lambda: a @ b, REPEATS)
    rows = []
    for scaling, block_size in (("row/column", None), (f"blocks of {BLOCK_SIZE}", BLOCK_SIZE)):
        seconds = _best_seconds(
            lambda block_size=block_size: golden.matmul_values(a, b, config, block_size=block_size),
            REPEATS,
        )
        rows.append(
            {
                "format": config.fmt.name,
                "scaling": scaling,
                "block_size": block_size,
                "seconds": seconds,
                "macs_per_second": macs / seconds,
                "numpy_ratio": numpy_seconds / seconds,
            }
        )
    return {
        "m": m,
        "k": k,
        "n": n,
        "macs": macs,
        "repeats": REPEATS,
        "numpy_float64": {"seconds": numpy_seconds, "macs_per_second": macs / numpy_seconds},
        "rows": rows,
    }


def measure_simulation(run: dict, seed: int) -> dict:
    """One matmul of ``run`` (see :func:`sim_runs`) on its backend; its speed and exactness."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((run["m"], run["k"]))
    b = rng.standard_normal((run["k"], run["n"]))
    config = MacConfig(pal8)
    entry = dict(run, cols=run["rows"])
    try:
        if run["backend"] in _TOOLS:
            _TOOLS[run["backend"]]()
        result, stats = matmul(
            a,
            b,
            config=config,
            rows=run["rows"],
            cols=run["rows"],
            output="float32",
            backend=run["backend"],
        )
    except SimulatorNotFound as error:
        entry["unavailable"] = str(error)
        return entry
    expected = golden.matmul_values(a, b, config).to_float32()
    compile_seconds = stats.extra.get("compile_seconds")
    entry.update(
        tiles=stats.tiles,
        cycles=stats.cycles,
        seconds=stats.seconds,
        cycles_per_second=stats.cycles_per_second,
        loop_seconds=stats.extra.get("loop_seconds"),
        compile_seconds=compile_seconds,
        compiled_now=stats.extra.get("compiled", compile_seconds is not None),
        bit_exact=bool(np.array_equal(result.view(np.uint32), expected.view(np.uint32))),
    )
    return entry


def measure(options: BenchOptions) -> dict:
    """Measure the golden model and every simulator run of :func:`sim_runs`.

    Returns
    -------
    dict
        ``golden``: the matmul's shape, ``numpy_float64`` (``seconds``, ``macs_per_second``)
        and ``rows`` (per scaling: ``seconds``, ``macs_per_second``, ``numpy_ratio`` = numpy's
        time over the golden model's); ``simulation``: one dict per run with ``backend``,
        ``rows``, ``cols``, ``m``, ``k``, ``n`` and either ``unavailable`` (the reason) or
        ``tiles``, ``cycles``, ``seconds`` (the transport, compile excluded),
        ``cycles_per_second``, ``loop_seconds`` (Verilator's simulation loop, else ``None``),
        ``compile_seconds`` (``None`` for pysim; 0 for a cached
        Verilator model), ``compiled_now`` and ``bit_exact``; ``verilator_opt``: the C++
        optimisation level of the Verilator models (``$PALHDL_VERILATOR_OPT``, default ``-O2``).
    """
    data = {
        "quick": options.quick,
        "verilator_opt": cxx_optimisation(),
        "golden": measure_golden(options),
        "simulation": [],
    }
    for run in sim_runs(options.quick):
        options.progress(
            f"speed: {run['backend']} {run['rows']}x{run['rows']} array, "
            f"{run['m']}x{run['k']} @ {run['k']}x{run['n']}"
        )
        data["simulation"].append(measure_simulation(run, options.seed))
    return data


def _rate(value: float) -> str:
    """Format a rate with an SI prefix: ``1.23 G``, ``45.6 k``."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g}"


def _compile_cell(run: dict) -> str:
    seconds = run["compile_seconds"]
    if seconds is None:
        return "none"
    if not run["compiled_now"]:
        return "cached"
    return f"{seconds:.1f} s"


def _sim_row(run: dict) -> list[str]:
    """Return the cells of one simulator run."""
    shape = f"{run['m']}x{run['k']}x{run['n']}"
    cells = [run["backend"], f"{run['rows']}x{run['cols']}", shape]
    if "unavailable" in run:
        return [*cells, "unavailable: " + run["unavailable"], "", "", "", "", ""]
    loop = run["loop_seconds"]
    return [
        *cells,
        f"{run['cycles']:,}",
        f"{run['seconds']:.3g}",
        _rate(run["cycles_per_second"]),
        _rate(run["cycles"] / loop) if loop else "",
        _compile_cell(run),
        "yes" if run["bit_exact"] else "**NO**",
    ]


def render(data: dict) -> list[str]:
    """Return the section's Markdown lines: golden and simulator tables, how they were measured."""
    gold = data["golden"]
    m, k, n = gold["m"], gold["k"], gold["n"]
    numpy_rate = gold["numpy_float64"]["macs_per_second"]
    golden_rows = [
        [
            f"golden `matmul_values`, {row['format']}, {row['scaling']}",
            f"{row['seconds'] * 1e3:.3g}",
            _rate(row["macs_per_second"]) + "MAC/s",
            f"{row['numpy_ratio']:.3g}",
        ]
        for row in gold["rows"]
    ]
    golden_rows.append(
        [
            "numpy float64 `a @ b`",
            f"{gold['numpy_float64']['seconds'] * 1e3:.3g}",
            _rate(numpy_rate) + "MAC/s",
            "1",
        ]
    )
    lines = [
        f"Golden model against numpy, {m}x{k} @ {k}x{n} Gaussian matmul "
        f"({gold['macs']:,} MACs; best of {gold['repeats']}):",
        "",
        *format_table(
            ["computation", "ms", "rate", "speed / numpy"], golden_rows, markdown=True
        ).splitlines(),
        "",
    ]
    sim_rows = [_sim_row(run) for run in data["simulation"]]
    header = [
        "backend", "array", "MxKxN", "cycles", "wall s", "cycles/s", "loop cycles/s", "compile",
        "bit-exact",
    ]  # fmt: skip
    lines += [
        "Simulated pal8 array (float32 readout):",
        "",
        *format_table(header, sim_rows, markdown=True).splitlines(),
        "",
        "The golden rows time `palhdl.sim.golden.matmul_values` (quantisation with adaptive "
        "scales included) and the numpy row `a @ b` in float64 on the same operands, with "
        "`time.perf_counter`, the best of the timed runs after one untimed run. Each simulator "
        "row is one Gaussian matmul through `palhdl.sim.driver.matmul` at full rate: cycles "
        "are the simulated clock cycles from the first operand beat to the last result row, "
        "wall seconds the transport's run (pysim: building and running the simulator; "
        "Icarus and Verilator: the simulator process, its start-up and file I/O included; "
        "loop cycles/s: Verilator's own simulation loop only). Verilog export and model "
        "compile are excluded; the compile column is the one-time build, `cached` when the "
        f"model came from the cache; Verilator models are compiled with C++ "
        f"`{data.get('verilator_opt', '-O2')}`. "
        "Bit-exact compares the float32 result bit for bit with "
        "`golden.matmul_values(...).to_float32()`. Wall times depend on the machine and its load.",
    ]
    return lines
