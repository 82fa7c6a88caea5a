"""Run RTL as pure functions over numpy arrays.

A whole batch of vectors goes through one simulation, so tests compare ``f(inputs)`` against the
golden model directly. Payloads are packed and unpacked from the units' stream layouts
(:func:`pack_payloads`, :func:`unpack_payloads`). The default backend is Amaranth's Python
simulator, the reference every other backend is compared with; ``backend="verilator"`` runs the
same streams through a compiled Verilator harness (:func:`palhdl.sim.compiled.run_streams`),
and the environment variable ``PALHDL_BACKEND=verilator`` makes that the default of
:func:`simulate_streams` and :func:`simulate_stream`. The array also runs compiled on Verilator
(:mod:`palhdl.sim.verilator`) or on Icarus (:mod:`palhdl.sim.icarus`) as transports of the
tiling driver (``driver.matmul(backend=)``), and the units and the array under cocotb on both
(``tests/cocotb``, ``docs/verification.md``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from amaranth.hdl import ClockDomain, Module, Shape
from amaranth.lib import data
from amaranth.sim import Simulator

from palhdl.hdl.layout import WordLayout
from palhdl.sim.compiled import run_streams
from palhdl.validate import check_choice

__all__ = [
    "STREAM_BACKENDS",
    "pack_payloads",
    "simulate_stream",
    "simulate_streams",
    "unpack_payloads",
    "vcd_context",
]


#: The backends of :func:`simulate_streams`.
STREAM_BACKENDS = ("pysim", "verilator")


def pack_payloads(shape, values) -> np.ndarray:
    """Pack values into raw payloads of ``shape`` (vectorised; object dtype).

    Parameters
    ----------
    shape : ShapeCastable
        The payload shape. A ``data.StructLayout`` takes a mapping of field name to value
        (a missing field is 0); a ``data.ArrayLayout`` takes an array whose last axis runs
        over the elements (or, for record elements, a mapping of such arrays); a plain shape
        or a :class:`~palhdl.hdl.layout.WordLayout` (a PAL word, an IEEE float) takes
        integers (bit patterns), wrapped modulo ``2**width``.
    values : mapping or array-like
        As ``shape`` says; arrays broadcast against each other.

    Returns
    -------
    ndarray of object
        Python ints, one per payload.
    """
    if isinstance(shape, data.StructLayout) and not isinstance(shape, WordLayout):
        unknown = set(values) - {name for name, _ in shape}
        if unknown:
            raise ValueError(f"fields {sorted(unknown)} are not in {shape!r}")
        parts = [
            pack_payloads(field.shape, values[name]) << field.offset
            for name, field in shape
            if name in values
        ]
        return sum(parts, np.zeros((), dtype=object)) if parts else np.zeros((), dtype=object)
    if isinstance(shape, data.ArrayLayout):
        width = Shape.cast(shape.elem_shape).width
        parts = [
            pack_payloads(shape.elem_shape, _element(values, index, shape.length))
            << (index * width)
            for index in range(shape.length)
        ]
        return sum(parts, np.zeros((), dtype=object))
    mask = (1 << Shape.cast(shape).width) - 1
    return np.asarray(values).astype(object) & mask


def unpack_payloads(shape, raw):
    """Split raw payloads of ``shape`` into values: the inverse of :func:`pack_payloads`.

    Returns a dict of field name to values for a ``data.StructLayout``, an array with a last
    axis over the elements for a ``data.ArrayLayout`` (a dict of such arrays if the elements
    are records), and int64 arrays (sign-extended for signed shapes, bit patterns for a
    :class:`~palhdl.hdl.layout.WordLayout`) for the leaves; a leaf wider than 63 bits stays an
    array of Python ints.
    """
    raw = np.asarray(raw, dtype=object)
    if isinstance(shape, data.StructLayout) and not isinstance(shape, WordLayout):
        return {
            name: unpack_payloads(field.shape, _bits(raw, field.offset, field.width))
            for name, field in shape
        }
    if isinstance(shape, data.ArrayLayout):
        width = Shape.cast(shape.elem_shape).width
        elements = [
            unpack_payloads(shape.elem_shape, _bits(raw, index * width, width))
            for index in range(shape.length)
        ]
        if isinstance(elements[0], dict):
            return {name: np.stack([e[name] for e in elements], axis=-1) for name in elements[0]}
        return np.stack(elements, axis=-1)
    cast = Shape.cast(shape)
    value = raw & ((1 << cast.width) - 1)
    if cast.signed:
        value = np.where(value >= 1 << (cast.width - 1), value - (1 << cast.width), value)
    return value.astype(np.int64) if cast.width <= 63 else value


def _element(values, index: int, length: int):
    """Element ``index`` of array values (last axis), or of every field of record values."""
    if isinstance(values, Mapping):
        return {name: _element(value, index, length) for name, value in values.items()}
    array = np.asarray(values)
    if array.shape[-1:] != (length,):
        raise ValueError(f"the last axis of {array.shape} must have {length} elements")
    return array[..., index]


def _bits(raw: np.ndarray, offset: int, width: int) -> np.ndarray:
    return (raw >> offset) & ((1 << width) - 1)


def vcd_context(sim: Simulator, name: str, path: str | os.PathLike | None = None):
    """Return a context that writes a VCD of ``sim``, or a context that writes nothing.

    The VCD goes to ``path`` if given, else to ``$PALHDL_VCD/<name>.vcd`` when that environment
    variable is set.
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
    backend: str | None = None,
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
    backend : {"pysim", "verilator"}, optional
        Amaranth's Python simulator (the reference) or the component's Verilog on a compiled
        Verilator harness (``dut`` must be a ``wiring.Component``; one build per distinct
        Verilog, cached under ``$PALHDL_CACHE``). Both return the same payloads in the same
        order and, at full rate, the same cycle count. Default: ``$PALHDL_BACKEND``, else
        ``"pysim"``.
    backpressure : int, optional
        Seed for random stalls: each producer idles and each consumer drops ``ready`` on about a
        third of the cycles. ``None`` streams at full rate. The backends draw different stall
        sequences from a seed.
    name : str
        VCD file name stem (VCDs are written only if ``PALHDL_VCD`` is set).
    max_cycles : int, optional
        Raise ``TimeoutError`` instead of hanging if the outputs have not all arrived by then
        (default ``4 * (inputs + outputs) + 1000``).
    vcd_path : path, optional
        Write a VCD there (overrides ``PALHDL_VCD``).
    on_output : callable, optional
        Called as ``on_output(port_name, count)`` after each collected output payload
        (for progress displays; on Verilator all calls come after the run, port by port).

    Returns
    -------
    (dict of port name -> list of int, int)
        The collected raw payloads and the number of clock cycles until the last one arrived.

    Raises
    ------
    ValueError
        An unknown ``backend`` (or ``PALHDL_BACKEND``).
    TypeError
        ``backend="verilator"`` with a ``dut`` that is not a ``wiring.Component``.
    TimeoutError
        The outputs have not all arrived after ``max_cycles``.
    """
    total = sum(len(v) for v in inputs.values()) + sum(outputs.values())
    limit = max_cycles if max_cycles is not None else 4 * total + 1000
    if _backend(backend) == "verilator":
        if vcd_path is None and os.environ.get("PALHDL_VCD"):
            vcd_path = Path(os.environ["PALHDL_VCD"]) / f"{name}.vcd"
            vcd_path.parent.mkdir(parents=True, exist_ok=True)
        results, cycles, _ = run_streams(
            dut,
            inputs,
            outputs,
            backpressure=backpressure,
            name=name,
            max_cycles=limit,
            vcd_path=vcd_path,
        )
        if on_output is not None:
            for port_name, collected in results.items():
                for count in range(1, len(collected) + 1):
                    on_output(port_name, count)
        return results, cycles
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


def _backend(backend: str | None) -> str:
    """Return the chosen backend, ``$PALHDL_BACKEND`` or ``"pysim"`` when ``None``."""
    if backend is None:
        backend = os.environ.get("PALHDL_BACKEND") or "pysim"
        check_choice("PALHDL_BACKEND", backend, STREAM_BACKENDS)
    check_choice("backend", backend, STREAM_BACKENDS)
    return backend


def simulate_stream(
    dut,
    payloads,
    *,
    input_port: str = "i",
    output_port: str = "o",
    backend: str | None = None,
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
        backend=backend,
        backpressure=backpressure,
        name=name,
        max_cycles=max_cycles,
    )
    return np.array(results[output_port], dtype=object)
