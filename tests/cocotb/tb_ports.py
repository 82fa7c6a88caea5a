"""cocotb testbench: drive plain input ports cycle by cycle and check output ports.

Run by ``cocotb_tools.runner`` (see ``conftest.py``), never collected by pytest. The job file
(``$PALHDL_COCOTB_JOB``, JSON) holds ``cycles``, ``inputs`` (flattened port name, such as
``pt__a``, to its value in every cycle; a value is held until it changes) and ``checks``: a
list of ``{"case", "port", "cycles", "values"[, "mask"]}``, each expecting ``values[i]`` on
``port`` in cycle ``cycles[i]`` (the bits of ``mask`` only, if given). Cycle 0 is the first
cycle after reset. Inputs change after the falling clock edge that starts a cycle; outputs are
sampled in the read-only phase before the rising edge that ends it, so a unit of latency ``L``
shows the result of the inputs of cycle ``t`` in cycle ``t + L``.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly


def schedule(job):
    """``(drives, samples)``: per cycle, the input writes and the ``(check, index)`` samples."""
    drives = defaultdict(list)
    for port, values in job["inputs"].items():
        if len(values) != job["cycles"]:
            raise ValueError(f"input {port}: {len(values)} values for {job['cycles']} cycles")
        last = None
        for cycle, value in enumerate(values):
            if value != last:
                drives[cycle].append((port, int(value)))
                last = value
    samples = defaultdict(list)
    for check in job["checks"]:
        for index, cycle in enumerate(check["cycles"]):
            if not 0 <= cycle < job["cycles"]:
                raise ValueError(f"{check['case']}/{check['port']}: cycle {cycle} out of range")
            samples[cycle].append((check, index))
    return drives, samples


@cocotb.test()
async def ports(dut):
    """Every check of the job: the port holds the expected value in its cycle."""
    job = json.loads(Path(os.environ["PALHDL_COCOTB_JOB"]).read_text())
    drives, samples = schedule(job)
    handles = {port: getattr(dut, port) for port in job["inputs"]}
    outputs = {check["port"]: getattr(dut, check["port"]) for check in job["checks"]}
    errors = defaultdict(list)
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    for cycle in range(job["cycles"]):
        if cycle:
            await FallingEdge(dut.clk)
        for port, value in drives.get(cycle, ()):
            handles[port].value = value
        await ReadOnly()
        for check, index in samples.get(cycle, ()):
            value = outputs[check["port"]].value
            want = int(check["values"][index])
            mask = check.get("mask", -1)
            if not value.is_resolvable:
                errors[(check["case"], check["port"])].append(f"@{cycle}: {value} want {want:#x}")
            elif int(value) & mask != want & mask:
                got = int(value) & mask
                errors[(check["case"], check["port"])].append(f"@{cycle}: {got:#x} want {want:#x}")
    checked = sum(len(check["cycles"]) for check in job["checks"])
    dut._log.info("%d cycles, %d checks", job["cycles"], checked)
    report = [
        f"{case}/{port}: {len(bad)} differ: {', '.join(bad[:6])}"
        for (case, port), bad in errors.items()
    ]
    assert not report, "; ".join(report)
