"""The systolic array on Verilator, driven by a compiled C++ harness: the fast regression path.

The array's Verilog (:func:`palhdl.sim.simulators.export_verilog`) is verilated together with
``harness/systolic_main.cpp``, which reads every ``a``/``b`` beat from a file, streams them at
full rate (or with seeded random stalls) honouring valid/ready, and writes every ``c`` result
row to a file: no Python runs per cycle. The executable is cached by
:func:`palhdl.sim.compiled.build_model` under ``$PALHDL_CACHE/verilator/<hash>`` (default
``~/.cache/palhdl``), keyed by the Verilog, the harness source, the Verilator version and its
options (waveforms included), so each array compiles once. Any other stream component runs
on the generic harness of :mod:`palhdl.sim.compiled`.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from palhdl.sim.compiled import build_model, cache_root, words
from palhdl.sim.simulators import export_verilog
from palhdl.sim.tiles import MatmulStats, Tile, split_rows, tile_beats

__all__ = ["HARNESS", "VerilatorTransport", "cache_root", "compile_harness", "words"]

#: The C++ harness, shipped with the package.
HARNESS = Path(__file__).parent / "harness" / "systolic_main.cpp"

_TOP = "systolic"


def compile_harness(verilog: str, *, trace: str | None = None) -> tuple[Path, float]:
    """Return the harness executable for ``verilog`` (module ``systolic``), building it once.

    :func:`palhdl.sim.compiled.build_model` with :data:`HARNESS`: ``trace`` (``None``,
    ``"vcd"``, ``"fst"``) builds with waveform support, a separate cache entry. Returns the
    executable and the seconds spent compiling (``0.0`` when it came from the cache).
    """
    return build_model(verilog, top=_TOP, main=HARNESS, trace=trace)


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
        trace = None
        if self.vcd_path is not None:
            trace = "fst" if str(self.vcd_path).endswith(".fst") else "vcd"
        with tempfile.TemporaryDirectory(prefix="palhdl-verilator-") as scratch:
            verilog = export_verilog(array, name=_TOP, path=Path(scratch) / f"{_TOP}.v")
            executable, compile_seconds = compile_harness(verilog.read_text(), trace=trace)
            a_beats, b_beats = tile_beats(array, tiles)
            stimulus = Path(scratch) / "stimulus.bin"
            response = Path(scratch) / "response.bin"
            stimulus.write_bytes(
                words(a_beats, array.a_layout.size) + words(b_beats, array.b_layout.size)
            )
            total_rows = len(tiles) * array.rows
            seed = -1 if self.backpressure is None else self.backpressure
            command = [str(executable), str(stimulus), str(response)]
            command += [str(len(a_beats)), str(total_rows), str(seed)]
            if self.vcd_path is not None:
                command.append(str(Path(self.vcd_path).resolve()))
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if result.returncode != 0:
                raise RuntimeError(f"verilator harness failed: {result.stderr.strip()}")
            raw = response.read_bytes()
        size = 4 * max(1, -(-array.c_layout.size // 32))
        rows = [int.from_bytes(raw[i : i + size], "little") for i in range(0, len(raw), size)]
        fields = dict(zip(result.stdout.split()[::2], result.stdout.split()[1::2], strict=True))
        if self.progress is not None:
            self.progress(total_rows, total_rows)
        stats = MatmulStats(
            cycles=int(fields["cycles"]),
            tiles=len(tiles),
            peak_macs_per_cycle=array.rows * array.cols,
            seconds=seconds,
            extra={
                "backend": "verilator",
                "compiled": compile_seconds > 0,
                "compile_seconds": compile_seconds,
                "loop_seconds": float(fields["seconds"]),
            },
        )
        return split_rows(array, rows, len(tiles)), stats
