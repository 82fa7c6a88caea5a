"""Synthesize Amaranth designs with Yosys and count the resources they use.

:func:`synth_stats` exports a design with :mod:`amaranth.back.rtlil`, synthesizes it for an FPGA
family or generic CMOS gates (:func:`palhdl.synth.toolchain.run_yosys`) and counts its cells;
:func:`synth_command` is the synthesis command of a family, shared with the bitstream build.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from amaranth.back import rtlil

from palhdl.synth.toolchain import YosysError, run_yosys
from palhdl.validate import check_bool, check_choice

__all__ = ["TARGETS", "synth_command", "synth_stats"]

#: Targets of :func:`synth_stats`.
TARGETS = ("ice40", "ecp5", "cmos")

_TOP = "top"


def synth_command(family: str, *, dsp: bool, top: str = _TOP, abc9: bool = True) -> str:
    """Return Yosys' synthesis command for an FPGA ``family`` (``"ice40"`` or ``"ecp5"``).

    ``dsp`` allows hard multipliers: ``synth_ice40 -dsp`` (SB_MAC16), or ``synth_ecp5`` without
    ``-nodsp`` (MULT18X18D/ALU54B). ``abc9=False`` (ECP5 only) runs ``synth_ecp5`` in two parts
    around its ``map_luts`` step and maps the logic to LUTs with ABC (``abc -lut 4``) instead of
    ABC9: the YoWASP Yosys' ABC9 fails (exit status 1, no message) on designs whose ``DP16KD``
    block RAMs serve two registered read ports, the ULX3S arrays whose two PEs share a table.

    Raises
    ------
    ValueError
        For ``abc9=False`` with ``family="ice40"``.
    """
    if family == "ice40":
        if not abc9:
            raise ValueError("abc9=False is implemented for the ecp5 family only")
        return f"synth_ice40 -top {top}{' -dsp' if dsp else ''}"
    synth = f"synth_ecp5 -top {top}{'' if dsp else ' -nodsp'}"
    if abc9:
        return synth
    return (
        f"{synth} -run :map_luts; techmap -map +/lattice/latches_map.v; abc -lut 4 -dress; "
        f"clean; {synth} -run map_cells:"
    )


def _script(target: str, dsp: bool) -> str:
    read = f"read_rtlil design.il; hierarchy -top {_TOP}"
    # Amaranth's $scopeinfo cells only name the flattened hierarchy.
    stat = "delete t:$scopeinfo; tee -q -o stat.json stat -json"
    if target == "cmos":
        return (
            f"{read}; synth -flatten -top {_TOP}; dffunmap; abc -g cmos2; opt_clean; "
            f"{stat} -tech cmos"
        )
    return f"{read}; {synth_command(target, dsp=dsp)}; {stat}"


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
    check_choice("target", target, TARGETS)
    check_bool("dsp", dsp)
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
