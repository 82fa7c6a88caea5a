"""cocotb testbench: drive the stream ports of a generated Verilog top from a job file.

Run by ``cocotb_tools.runner`` (see ``conftest.py``), never collected by pytest. The job file
(``$PALHDL_COCOTB_JOB``, JSON) lists cases; each case names input streams (flattened port
prefixes such as ``mul__i``) with the raw payloads to send, and output streams with the raw
payloads the golden model expects, in order. All cases run concurrently, one valid/ready
transfer per port per cycle at most, with random stalls when a case has a ``backpressure``
seed. Inputs change after the falling clock edge; handshakes are sampled in the read-only phase
before the next rising edge, i.e. exactly the values the rising edge registers.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

#: Probability that a stalling producer idles / a stalling consumer drops ready in a cycle.
STALL = 1 / 3


class Producer:
    """Sends payloads on ``<port>__payload`` / ``__valid``, advancing on ``__ready``."""

    def __init__(self, dut, port, payloads, rng):
        self.valid = getattr(dut, f"{port}__valid")
        self.payload = getattr(dut, f"{port}__payload")
        self.ready = getattr(dut, f"{port}__ready")
        self.payloads = [int(p) for p in payloads]
        self.rng = rng
        self.index = 0
        self.driving = False
        self.valid.value = 0

    def drive(self):
        offer = self.index < len(self.payloads) and (self.rng is None or self.rng.random() >= STALL)
        if offer:
            self.payload.value = self.payloads[self.index]
        if offer != self.driving:
            self.valid.value = int(offer)
            self.driving = offer

    def sample(self):
        if self.driving and int(self.ready.value):
            self.index += 1


class Consumer:
    """Collects payloads from ``<port>__payload`` / ``__valid``, driving ``__ready``."""

    def __init__(self, dut, port, expected, rng):
        self.port = port
        self.valid = getattr(dut, f"{port}__valid")
        self.payload = getattr(dut, f"{port}__payload")
        self.ready = getattr(dut, f"{port}__ready")
        self.expected = [int(p) for p in expected]
        self.collected = []
        self.rng = rng
        self.accepting = False
        self.ready.value = 0

    @property
    def done(self):
        return len(self.collected) >= len(self.expected)

    def drive(self):
        accept = not self.done and (self.rng is None or self.rng.random() >= STALL)
        if accept != self.accepting:
            self.ready.value = int(accept)
            self.accepting = accept

    def sample(self):
        if self.accepting and int(self.valid.value):
            self.collected.append(int(self.payload.value))

    def mismatches(self, case):
        bad = [
            i
            for i, (got, want) in enumerate(zip(self.collected, self.expected, strict=True))
            if got != want
        ]
        shown = ", ".join(
            f"#{i}: {self.collected[i]:#x} want {self.expected[i]:#x}" for i in bad[:8]
        )
        return (
            f"{case}/{self.port}: {len(bad)} of {len(self.expected)} differ: {shown}" if bad else ""
        )


@cocotb.test()
async def streams(dut):
    """Every case of the job: all outputs arrive and equal the golden payloads."""
    job = json.loads(Path(os.environ["PALHDL_COCOTB_JOB"]).read_text())
    producers, consumers, owners = [], [], []
    for case in job["cases"]:
        seed = case.get("backpressure")
        stalls = random.Random(seed) if seed is not None else None
        for port, payloads in case["inputs"].items():
            producers.append(Producer(dut, port, payloads, stalls))
        for port, expected in case["outputs"].items():
            consumers.append(Consumer(dut, port, expected, stalls))
            owners.append(case["name"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    transfers = sum(len(p.payloads) for p in producers) + sum(len(c.expected) for c in consumers)
    limit = job.get("max_cycles") or 4 * transfers + 1000
    cycles = 0
    while not all(c.done for c in consumers):
        await FallingEdge(dut.clk)
        for endpoint in producers + consumers:
            endpoint.drive()
        await ReadOnly()
        for endpoint in producers + consumers:
            endpoint.sample()
        cycles += 1
        if cycles > limit:
            got = ", ".join(f"{c.port} {len(c.collected)}/{len(c.expected)}" for c in consumers)
            raise AssertionError(f"timeout after {cycles} cycles: {got}")
    dut._log.info("%d cycles for %d transfers", cycles, transfers)
    errors = [c.mismatches(owner) for c, owner in zip(consumers, owners, strict=True)]
    errors = [e for e in errors if e]
    assert not errors, "; ".join(errors)
