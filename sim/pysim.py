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

__all__ = [
    "pack_fields",
    "simulate_stream",
    "simulate_streams",
    "unpack_fields",
    "vcd_context",
]


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


def vcd_context(sim: Simulator, name: str, path: str | os.PathLike | None = None):
    """Write a VCD to ``path`` if given, else to ``$PALHDL_VCD/<name>.vcd`` when that
    environment variable is set; otherwise write nothing.
    """
    if path is None:
        directory = os.environ.get("PALHDL_VCD")
        if not directory:
            return contextlib.nullcontext()
        Path(directory).mkdir(parents=True, exist_ok=True)
        path = Path(directory) / f"{name}.vcd"
    return sim.write_vcd(str(path))


def simulate_streams(
    dut,
    inputs: dict[str, list[int]],
    outputs: dict[str, int],
    *,
    backpressure: int | None = None,
    name: str = "stream",
    max_cycles: int | None = None,
    vcd_path: str | os.PathLike | None = None,
    on_output=None,
) -> tuple[dict[str, list[int]], int]:
    """Drive several input streams and collect several output streams in one simulation.

    Parameters
    ----------
    dut : Elaboratable
        Has stream ports named by the keys of ``inputs`` and ``outputs``.
    inputs : dict of port name -> sequence of int
        Raw payloads to send on each input stream, in order.
    outputs : dict of port name -> int
        How many payloads to collect from each output stream.
    backpressure : int, optional
        Seed for random stalls: each producer idles and each consumer drops ``ready`` on about a
        third of the cycles. ``None`` streams at full rate.
    name : str
        VCD file name stem (VCDs are written only if ``PALHDL_VCD`` is set).
    max_cycles : int, optional
        Raise ``TimeoutError`` instead of hanging if the outputs have not all arrived by then
        (default ``4 * (inputs + outputs) + 1000``).
    vcd_path : path, optional
        Write a VCD there (overrides ``PALHDL_VCD``).
    on_output : callable, optional
        Called as ``on_output(port_name, count)`` after each collected output payload
        (for progress displays).

    Returns
    -------
    (dict of port name -> list of int, int)
        The collected raw payloads and the number of clock cycles until the last one arrived.
    """
    total = sum(len(v) for v in inputs.values()) + sum(outputs.values())
    limit = max_cycles if max_cycles is not None else 4 * total + 1000
    rng = np.random.default_rng(backpressure) if backpressure is not None else None
    results: dict[str, list[int]] = {port: [] for port in outputs}
    cycles = 0

    def producer(port_name, payloads):
        port = getattr(dut, port_name)

        async def process(ctx):
            for payload in payloads:
                while rng is not None and rng.random() < 1 / 3:
                    ctx.set(port.valid, 0)
                    await ctx.tick()
                ctx.set(port.payload.as_value(), int(payload))
                ctx.set(port.valid, 1)
                await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)

        return process

    def consumer(port_name, count):
        port = getattr(dut, port_name)

        async def process(ctx):
            nonlocal cycles
            payload_value = port.payload.as_value()
            collected = results[port_name]
            waited = 0
            while len(collected) < count:
                ready = rng is None or rng.random() >= 1 / 3
                ctx.set(port.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(port.valid, payload_value)
                waited += 1
                if ready and valid:
                    collected.append(payload)
                    if on_output is not None:
                        on_output(port_name, len(collected))
                if waited > limit:
                    raise TimeoutError(
                        f"{name}: {port_name} produced {len(collected)} of {count} payloads "
                        f"in {waited} cycles"
                    )
            ctx.set(port.ready, 0)
            cycles = max(cycles, waited)

        return process

    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    for port_name, payloads in inputs.items():
        sim.add_testbench(producer(port_name, payloads))
    for port_name, count in outputs.items():
        sim.add_testbench(consumer(port_name, count))
    with vcd_context(sim, name, vcd_path):
        sim.run()
    return results, cycles


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

    ``dut.<input_port>`` and ``dut.<output_port>`` are streams with exactly one output per
    input, in order; see :func:`simulate_streams` for the other parameters.

    Returns
    -------
    ndarray of object
        Raw output payloads (Python ints), one per input.
    """
    payloads = [int(p) for p in np.asarray(payloads, dtype=object).ravel()]
    results, _ = simulate_streams(
        dut,
        {input_port: payloads},
        {output_port: len(payloads)},
        backpressure=backpressure,
        name=name,
        max_cycles=max_cycles,
    )
    return np.array(results[output_port], dtype=object)
