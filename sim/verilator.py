"""The systolic array on Verilator, driven by a compiled C++ harness: the fast regression path.

The array's Verilog (:func:`palhdl.sim.simulators.export_verilog`) runs on the generic stream
harness of :func:`palhdl.sim.compiled.run_streams` (``harness/stream_main.cpp``), which reads
every ``a``/``b`` beat from a file, streams them at full rate (or with seeded random stalls)
honouring valid/ready, and writes every ``c`` result row to a file: no Python runs per cycle.
The executable is cached by :func:`palhdl.sim.compiled.build_model` under
``$PALHDL_CACHE/verilator/<hash>`` (default ``~/.cache/palhdl``), keyed by the Verilog, the
harness source, the Verilator version and its options (waveforms included), so each array
compiles once.
"""

from __future__ import annotations

from palhdl.sim.compiled import cache_root, run_streams, words
from palhdl.sim.tiles import MatmulStats, Tile, split_rows, tile_beats

__all__ = ["VerilatorTransport", "cache_root", "words"]


class VerilatorTransport:
    """Runs tiles through a :class:`~palhdl.hdl.systolic.SystolicArray` on Verilator.

    The same ``run(tiles)`` contract as :class:`palhdl.sim.driver.PysimTransport`. The
    array's ``table`` stream (a loadable provider), if any, is held idle.

    Parameters
    ----------
    array : SystolicArray
        A freshly constructed array (its Verilog is exported once per :meth:`run`).
    backpressure : int, optional
        Seed for random stalls on all three streams (``None``: full rate).
    vcd_path : path, optional
        Write a waveform there: FST if the name ends in ``.fst`` (Verilator's FST writer
        needs the lz4 headers, Debian's ``liblz4-dev``), else VCD (a model built with
        tracing, cached separately).
    progress : callable, optional
        Called once as ``progress(total_rows, total_rows)`` when the results are in.

    After :meth:`run`, ``stats.extra`` holds ``backend`` (``"verilator"``), ``compiled``
    (whether this run built the model), ``compile_seconds`` and ``loop_seconds`` (the
    harness's own simulation time); ``stats.seconds`` is the harness run, compile excluded.
    """

    def __init__(self, array, *, backpressure: int | None = None, vcd_path=None, progress=None):
        self.array = array
        self.backpressure = backpressure
        self.vcd_path = vcd_path
        self.progress = progress

    def run(self, tiles: list[Tile]) -> tuple[list, MatmulStats]:
        """Stream all tiles; return per-tile raw lane values ``(rows, cols)`` (object ints)."""
        array = self.array
        a_beats, b_beats = tile_beats(array, tiles)
        total_rows = len(tiles) * array.rows
        results, cycles, details = run_streams(
            array,
            {"a": a_beats, "b": b_beats},
            {"c": total_rows},
            backpressure=self.backpressure,
            name="systolic",
            max_cycles=4 * (2 * len(a_beats) + total_rows) + 1000,
            vcd_path=self.vcd_path,
        )
        if self.progress is not None:
            self.progress(total_rows, total_rows)
        stats = MatmulStats(
            cycles=cycles,
            tiles=len(tiles),
            peak_macs_per_cycle=array.rows * array.cols,
            seconds=details["seconds"],
            extra={
                "backend": "verilator",
                "compiled": details["compile_seconds"] > 0,
                "compile_seconds": details["compile_seconds"],
                "loop_seconds": details["loop_seconds"],
            },
        )
        return split_rows(array, results["c"], len(tiles)), stats
