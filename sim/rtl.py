"""Run RTL as pure functions over numpy arrays.

A whole batch of vectors goes through one simulation, so tests compare ``f(inputs)`` against the
golden model directly. The backend is Amaranth's Python simulator; the functions here are the
single place where a faster backend (cocotb on Verilator) plugs in later.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

__all__ = ["pack_fields", "simulate_stream", "unpack_fields", "vcd_context"]


def pack_fields(fields: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Pack ``(values, width)`` pairs, low field first, into raw integers (object dtype).

    Values are taken modulo ``2**width`` (two's complement for negative values).
    """
    arrays = [np.asarray(values) for values, _ in fields]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    packed = np.zeros(shape, dtype=object)
    offset = 0
    for array, (_, width) in zip(arrays, fields, strict=True):
        mask = (1 << width) - 1
        packed = packed + ((np.broadcast_to(array, shape).astype(object) & mask) << offset)
        offset += width
    return packed


def unpack_fields(raw: np.ndarray, widths: list[int], *, signed: list[bool] | None = None):
    """Split raw integers into fields (low first); returns a list of int64 arrays."""
    raw = np.asarray(raw, dtype=object)
    signed = signed or [False] * len(widths)
    fields = []
    offset = 0
    for width, is_signed in zip(widths, signed, strict=True):
        value = (raw >> offset) & ((1 << width) - 1)
        if is_signed:
            value = np.where(value >= 1 << (width - 1), value - (1 << width), value)
        fields.append(value.astype(np.int64))
        offset += width
    return fields


def vcd_context(sim: Simulator, name: str):
    """Write a VCD to ``$PALHDL_VCD/<name>.vcd`` when the environment variable is set."""
    directory = os.environ.get("PALHDL_VCD")
    if not directory:
        return contextlib.nullcontext()
    Path(directory).mkdir(parents=True, exist_ok=True)
    return sim.write_vcd(str(Path(directory) / f"{name}.vcd"))


def simulate_stream(
    dut,
    payloads,
    *,
    input_port: str = "i",
    output_port: str = "o",
    backpressure: int | None = None,
    name: str = "stream",
    max_cycles: int | None = None,
) -> np.ndarray:
    """Push raw input payloads through a stream-to-stream component, return raw outputs.

    Parameters
    ----------
    dut : wiring.Component
        Has an input stream ``dut.<input_port>`` and an output stream ``dut.<output_port>``
        producing exactly one output per input, in order.
    payloads : 1-D array_like of int
        Raw input payload values (see :func:`pack_fields`).
    backpressure : int, optional
        Seed for random stalls: the producer idles and the consumer drops ``ready`` on about a
        third of the cycles each. ``None`` streams at full rate.
    name : str
        VCD file name stem (VCDs are written only if ``PALHDL_VCD`` is set).
    max_cycles : int, optional
        Fail instead of hanging if the outputs have not all arrived by then
        (default ``4 * len(payloads) + 1000``).

    Returns
    -------
    ndarray of object
        Raw output payloads (Python ints), one per input.
    """
    payloads = [int(p) for p in np.asarray(payloads, dtype=object).ravel()]
    i_port = getattr(dut, input_port)
    o_port = getattr(dut, output_port)
    limit = max_cycles if max_cycles is not None else 4 * len(payloads) + 1000
    rng = np.random.default_rng(backpressure) if backpressure is not None else None
    results: list[int] = []

    async def producer(ctx):
        for payload in payloads:
            while rng is not None and rng.random() < 1 / 3:
                ctx.set(i_port.valid, 0)
                await ctx.tick()
            ctx.set(i_port.payload.as_value(), payload)
            ctx.set(i_port.valid, 1)
            await ctx.tick().until(i_port.ready)
        ctx.set(i_port.valid, 0)

    async def consumer(ctx):
        cycles = 0
        payload_value = o_port.payload.as_value()
        while len(results) < len(payloads):
            ready = rng is None or rng.random() >= 1 / 3
            ctx.set(o_port.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(o_port.valid, payload_value)
            if ready and valid:
                results.append(payload)
            cycles += 1
            if cycles > limit:
                raise TimeoutError(
                    f"{name}: only {len(results)} of {len(payloads)} outputs after {cycles} cycles"
                )

    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    with vcd_context(sim, name):
        sim.run()
    return np.array(results, dtype=object)
