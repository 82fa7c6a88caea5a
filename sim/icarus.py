"""The systolic array on Icarus Verilog, driven by a Verilog testbench from stimulus files.

The array's Verilog (:func:`palhdl.sim.simulators.export_verilog`) is compiled with
``harness/systolic_tb.v`` (the same stimulus/response harness as the Verilator path, in
Verilog): the beats go in through ``$readmemh`` files and the result rows come back in one, so
no Python runs per cycle. Icarus compiles in a second; it simulates slower than Verilator.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from palhdl.sim.simulators import export_verilog, iverilog
from palhdl.sim.tiles import MatmulStats, Tile, split_rows, tile_beats

__all__ = ["TESTBENCH", "IcarusTransport"]

#: The Verilog testbench, shipped with the package.
TESTBENCH = Path(__file__).parent / "harness" / "systolic_tb.v"


def _hex_lines(payloads) -> str:
    return "".join(f"{int(value):x}\n" for value in payloads)


class IcarusTransport:
    """Runs tiles through a :class:`~palhdl.hdl.systolic.SystolicArray` on Icarus Verilog.

    The same ``run(tiles)`` contract and parameters as
    :class:`palhdl.sim.verilator.VerilatorTransport` (``vcd_path`` writes a VCD). After
    :meth:`run`, ``stats.extra`` holds ``backend`` (``"icarus"``) and ``compile_seconds``
    (``iverilog``, every run); ``stats.seconds`` is the ``vvp`` run. Arrays with a ``table``
    stream (run-time loadable providers) are refused: the testbench leaves no port floating.
    """

    def __init__(self, array, *, backpressure: int | None = None, vcd_path=None, progress=None):
        if "table" in array.signature.members:
            raise ValueError(
                "array: the Icarus testbench drives no table stream; use a provider without "
                "run-time loadable tables, or backend 'verilator'"
            )
        self.array = array
        self.backpressure = backpressure
        self.vcd_path = vcd_path
        self.progress = progress

    def run(self, tiles: list[Tile]) -> tuple[list, MatmulStats]:
        """Stream all tiles; return per-tile raw lane values ``(rows, cols)`` (object ints)."""
        array = self.array
        a_beats, b_beats = tile_beats(array, tiles)
        total_rows = len(tiles) * array.rows
        with tempfile.TemporaryDirectory(prefix="palhdl-icarus-") as scratch:
            work = Path(scratch)
            verilog = export_verilog(array, name="systolic", path=work / "systolic.v")
            compiler = iverilog()  # after the export: the array is elaborated either way
            (work / "a.hex").write_text(_hex_lines(a_beats))
            (work / "b.hex").write_text(_hex_lines(b_beats))
            parameters = {
                "AW": array.a_layout.size,
                "BW": array.b_layout.size,
                "CW": array.c_layout.size,
                "BEATS": len(a_beats),
                "RESULTS": total_rows,
            }
            command = [compiler, "-g2012", "-s", "systolic_tb", "-o", str(work / "tb.vvp")]
            command += [f"-Psystolic_tb.{name}={value}" for name, value in parameters.items()]
            started = time.perf_counter()
            _check(subprocess.run([*command, str(verilog), str(TESTBENCH)], **_CAPTURE), "iverilog")
            compile_seconds = time.perf_counter() - started
            plusargs = [f"+a={work / 'a.hex'}", f"+b={work / 'b.hex'}", f"+out={work / 'c.hex'}"]
            if self.backpressure is not None:
                plusargs.append(f"+seed={self.backpressure}")
            if self.vcd_path is not None:
                plusargs.append(f"+vcd={Path(self.vcd_path).resolve()}")
            started = time.perf_counter()
            result = subprocess.run(["vvp", "-n", str(work / "tb.vvp"), *plusargs], **_CAPTURE)
            seconds = time.perf_counter() - started
            _check(result, "vvp")
            rows = [int(line, 16) for line in (work / "c.hex").read_text().split()]
        cycles = [line for line in result.stdout.splitlines() if line.startswith("cycles ")]
        if self.progress is not None:
            self.progress(total_rows, total_rows)
        stats = MatmulStats(
            cycles=int(cycles[-1].split()[1]),
            tiles=len(tiles),
            peak_macs_per_cycle=array.rows * array.cols,
            seconds=seconds,
            extra={"backend": "icarus", "compile_seconds": compile_seconds},
        )
        return split_rows(array, rows, len(tiles)), stats


_CAPTURE = {"capture_output": True, "text": True}


def _check(result: subprocess.CompletedProcess, tool: str) -> None:
    """Raise ``RuntimeError`` with the tool's first error lines if it failed."""
    lines = (result.stdout + result.stderr).strip().splitlines()
    failed = result.returncode != 0 or any("FATAL" in line for line in lines)
    if failed:
        errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
        tail = " | ".join((errors or lines)[:3])
        raise RuntimeError(f"{tool} failed (exit {result.returncode}): {tail}")
