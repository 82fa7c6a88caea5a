"""Maximum clock frequency of a unit after place and route (YoWASP nextpnr).

A unit has more port bits than a small FPGA package has pins, so :func:`fmax` wraps it in a
harness with registers around it: a shift register fed from one pin drives every input, and
every output is registered and XOR-reduced (registered again) onto one pin. The critical path
reported is then the unit's own register-to-register path (input register, the unit's logic,
output register) unless the unit's internal registers make a shorter one.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.boards.devices import DEVICES
from palhdl.synth.toolchain import NextpnrError, log_tail, run_nextpnr, run_yosys
from palhdl.synth.yosys import synth_command
from palhdl.validate import check_choice, check_int

__all__ = ["RegisteredHarness", "fmax"]


class RegisteredHarness(wiring.Component):
    """``unit`` between a serial-in input register and an output register reduced to one bit.

    Parameters
    ----------
    unit : wiring.Component
        The unit under measurement.

    Members
    -------
    sin : In(1)
        Serial input: shifted into a register as wide as all of ``unit``'s inputs, which drives
        them.
    sout : Out(1)
        The XOR of ``unit``'s outputs, registered twice.
    """

    def __init__(self, unit: wiring.Component):
        self._unit = unit
        super().__init__({"sin": In(1), "sout": Out(1)})

    @property
    def unit(self) -> wiring.Component:
        """The unit under measurement."""
        return self._unit

    def elaborate(self, platform):
        """Shift register, unit, output register."""
        m = Module()
        m.submodules.unit = unit = self.unit
        inputs, outputs = [], []
        for _, member, value in unit.signature.flatten(unit):
            (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
        chain = Signal(sum(len(v) for v in inputs), name="input_chain")
        m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
        offset = 0
        for value in inputs:
            m.d.comb += value.eq(chain[offset : offset + len(value)])
            offset += len(value)
        captured = Signal(sum(len(v) for v in outputs), name="output_register")
        m.d.sync += [captured.eq(Cat(*outputs)), self.sout.eq(captured.xor())]
        return m


def fmax(unit: wiring.Component, *, target: str, seed: int = 1) -> dict:
    """Place and route ``unit`` inside a :class:`RegisteredHarness`; return its timing.

    Parameters
    ----------
    unit : wiring.Component
        The unit; it is elaborated here.
    target : {"ice40", "ecp5"}
        A key of :data:`palhdl.boards.devices.DEVICES`: iCE40 UP5K (SG48) or ECP5 LFE5U-85F
        (CABGA381, speed grade 6). The iCE40 is synthesized with logic only, the ECP5 with DSPs.
    seed : int
        nextpnr placement seed.

    Returns
    -------
    dict
        ``"fmax_mhz"``: the achieved frequency of the clock; ``"report"``: nextpnr's full
        ``--report`` JSON (utilisation and timing).

    Raises
    ------
    ValueError
        For an unknown ``target``.
    palhdl.synth.toolchain.YosysError
        If synthesis fails.
    palhdl.synth.toolchain.NextpnrError
        If place and route fails (with the end of its log).
    palhdl.synth.toolchain.ToolError
        If a tool is not installed.
    """
    device = DEVICES[check_choice("target", target, DEVICES)]
    seed = check_int("seed", seed)
    harness = RegisteredHarness(unit)
    design = rtlil.convert(harness, name="top", emit_src=False)
    with tempfile.TemporaryDirectory(prefix="palhdl-pnr-") as tmp:
        directory = Path(tmp)
        run_yosys(
            f"read_rtlil design.il; {synth_command(device.family, dsp=device.family == 'ecp5')} "
            "-json netlist.json",
            {"design.il": design},
            outputs=["netlist.json"],
            directory=directory,
        )
        status, log = run_nextpnr(
            device,
            [
                *("--json", "netlist.json", "--report", "report.json"),
                *("--freq", "1", "--seed", str(seed)),
            ],
            cwd=directory,
        )
        report_path = directory / "report.json"
        if status != 0 or not report_path.is_file():
            raise NextpnrError(f"nextpnr failed (exit status {status}):\n{log_tail(log)}")
        report = json.loads(report_path.read_text())
    achieved = [clock["achieved"] for clock in report["fmax"].values()]
    return {"fmax_mhz": min(achieved), "report": report}
