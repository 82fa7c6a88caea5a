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
from palhdl.synth.cache import ResultCache
from palhdl.synth.toolchain import NextpnrError, log_tail, run_nextpnr, run_yosys
from palhdl.synth.yosys import synth_command
from palhdl.validate import check_bool, check_choice, check_int

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


def fmax(
    unit: wiring.Component,
    *,
    target: str,
    seed: int = 1,
    dsp: bool | None = None,
    cache: ResultCache | None = None,
) -> dict:
    """Place and route ``unit`` inside a :class:`RegisteredHarness`; return its timing.

    Parameters
    ----------
    unit : wiring.Component
        The unit; it is elaborated here.
    target : {"ice40", "ecp5"}
        A key of :data:`palhdl.boards.devices.DEVICES`: iCE40 UP5K (SG48) or ECP5 LFE5U-85F
        (CABGA381, speed grade 6).
    seed : int
        nextpnr placement seed.
    dsp : bool, optional
        Let Yosys map multipliers to DSP blocks. Default: the iCE40 with logic only, the ECP5
        with DSPs.
    cache : ResultCache, optional
        Reuse the result of the same harness netlist, target, options, seed and tools
        (:mod:`palhdl.synth.cache`), and keep this one's; a reused result has
        ``"measured_at"``.

    Returns
    -------
    dict
        ``"fmax_mhz"``: the achieved frequency of the clock; ``"report"``: nextpnr's full
        ``--report`` JSON (utilisation and timing); ``"measured_at"`` (UTC, ISO 8601) only if
        the result came from ``cache``.

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
    dsp = device.family == "ecp5" if dsp is None else check_bool("dsp", dsp)
    harness = RegisteredHarness(unit)
    design = rtlil.convert(harness, name="top", emit_src=False)
    synth = synth_command(device.family, dsp=dsp)
    if cache is not None:
        key = ResultCache.key("fmax", json.dumps([repr(device), synth, seed]), design)
        entry = cache.load(key)
        if entry is not None:
            return {**entry["result"], "measured_at": entry["measured_at"]}
    with tempfile.TemporaryDirectory(prefix="palhdl-pnr-") as tmp:
        directory = Path(tmp)
        run_yosys(
            f"read_rtlil design.il; {synth} -json netlist.json",
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
    result = {"fmax_mhz": min(achieved), "report": report}
    if cache is not None:
        cache.store(key, result)
    return result
