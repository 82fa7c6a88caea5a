"""Gate-level netlists and a bit-parallel, cycle-based simulator that counts their toggles.

:func:`gate_netlist` synthesizes an Amaranth component with the generic CMOS flow of
:func:`palhdl.synth.yosys.synth_stats` (``synth -flatten; dffunmap; abc -g cmos2; opt_clean``)
and reads the flattened netlist Yosys writes (``write_json``): NAND, NOR and NOT gates and
positive-edge flip-flops (``$_DFF_P_``; enables and synchronous resets become gates under
``dffunmap``). Each cell is weighted by its transistor count in Yosys' own CMOS cost table
(:data:`CMOS_TRANSISTORS`, the table of ``stat -tech cmos``), so the weights of a netlist sum to
Yosys' ``estimated_num_transistors``.

:func:`simulate_toggles` evaluates such a netlist cycle by cycle with zero gate delay: every
net settles once per cycle, so it toggles at most once (no glitches). Many independent input
streams ("lanes") run at once, one bit each of ``uint64`` words, levelised gate by gate type
with numpy. It returns each output port's value per cycle and lane, and how often each cell's
output toggled; weighted by transistor count, the toggles are a switched-capacitance proxy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from amaranth.back import rtlil

from palhdl.synth.toolchain import YosysError, run_yosys
from palhdl.validate import check_int

__all__ = ["CMOS_TRANSISTORS", "GateNetlist", "ToggleResult", "gate_netlist", "simulate_toggles"]

#: Transistors per cell type: Yosys' CMOS cost table (``kernel/cost.h``,
#: ``CellCosts::cmos_gate_cost``), the numbers ``stat -tech cmos`` adds up.
CMOS_TRANSISTORS: dict[str, int] = {
    "$_BUF_": 1,
    "$_NOT_": 2,
    "$_AND_": 6,
    "$_NAND_": 4,
    "$_OR_": 6,
    "$_NOR_": 4,
    "$_ANDNOT_": 6,
    "$_ORNOT_": 6,
    "$_XOR_": 12,
    "$_XNOR_": 12,
    "$_AOI3_": 6,
    "$_OAI3_": 6,
    "$_AOI4_": 8,
    "$_OAI4_": 8,
    "$_MUX_": 12,
    "$_NMUX_": 10,
    "$_DFF_P_": 16,
}

_FLIP_FLOP = "$_DFF_P_"

#: Input pins of each combinational cell type, in the order :data:`_GATES` takes them.
_PINS: dict[str, tuple[str, ...]] = {
    "$_BUF_": ("A",),
    "$_NOT_": ("A",),
    "$_AOI3_": ("A", "B", "C"),
    "$_OAI3_": ("A", "B", "C"),
    "$_AOI4_": ("A", "B", "C", "D"),
    "$_OAI4_": ("A", "B", "C", "D"),
    "$_MUX_": ("A", "B", "S"),
    "$_NMUX_": ("A", "B", "S"),
}

#: The function of each combinational cell type on bit-parallel words.
_GATES = {
    "$_BUF_": lambda a: a,
    "$_NOT_": lambda a: ~a,
    "$_AND_": lambda a, b: a & b,
    "$_NAND_": lambda a, b: ~(a & b),
    "$_OR_": lambda a, b: a | b,
    "$_NOR_": lambda a, b: ~(a | b),
    "$_ANDNOT_": lambda a, b: a & ~b,
    "$_ORNOT_": lambda a, b: a | ~b,
    "$_XOR_": lambda a, b: a ^ b,
    "$_XNOR_": lambda a, b: ~(a ^ b),
    "$_AOI3_": lambda a, b, c: ~((a & b) | c),
    "$_OAI3_": lambda a, b, c: ~((a | b) & c),
    "$_AOI4_": lambda a, b, c, d: ~((a & b) | (c & d)),
    "$_OAI4_": lambda a, b, c, d: ~((a | b) & (c | d)),
    "$_MUX_": lambda a, b, s: (a & ~s) | (b & s),
    "$_NMUX_": lambda a, b, s: ~((a & ~s) | (b & s)),
}

_TOP = "top"
_CLOCK, _RESET = "clk", "rst"
_SCRIPT = (
    f"read_rtlil design.il; hierarchy -top {_TOP}; synth -flatten -top {_TOP}; dffunmap; "
    "abc -g cmos2; opt_clean; delete t:$scopeinfo; write_json netlist.json"
)
_LANE_BITS = 64


@dataclass(frozen=True)
class GateNetlist:
    """A flattened gate-level netlist: cells on numbered nets.

    Nets are numbered densely; net 0 is constant 0 (Yosys' ``0``, ``x`` and ``z``), net 1 is
    constant 1.

    Attributes
    ----------
    nets : int
        Number of nets.
    cell_types : tuple of str
        Each cell's Yosys type (a key of :data:`CMOS_TRANSISTORS`).
    cell_inputs : tuple of tuple of int
        Each cell's input nets (a flip-flop: its ``D``), in the pin order of the gate function.
    cell_outputs : tuple of int
        Each cell's output net (``Y``, or a flip-flop's ``Q``).
    inputs, outputs : dict of str to tuple of int
        Port name to its nets, least significant bit first (the clock port is left out).
    init : dict of int to int
        Initial value of each flip-flop output net with a defined ``init`` attribute.
    """

    nets: int
    cell_types: tuple[str, ...]
    cell_inputs: tuple[tuple[int, ...], ...]
    cell_outputs: tuple[int, ...]
    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...]]
    init: dict[int, int]

    @property
    def weights(self) -> np.ndarray:
        """Transistors of each cell (:data:`CMOS_TRANSISTORS`), int64."""
        return np.array([CMOS_TRANSISTORS[t] for t in self.cell_types], dtype=np.int64)

    @property
    def transistors(self) -> int:
        """Sum of :attr:`weights`: Yosys' ``estimated_num_transistors`` of the same netlist."""
        return int(self.weights.sum())

    @property
    def cell_counts(self) -> dict[str, int]:
        """``{cell type: count}``."""
        types, counts = np.unique(np.array(self.cell_types), return_counts=True)
        return {str(t): int(n) for t, n in zip(types, counts, strict=True)}


def gate_netlist(component, *, ports=None) -> GateNetlist:
    """Synthesize ``component`` to CMOS gates with Yosys and return its netlist.

    Parameters
    ----------
    component : Elaboratable
        A ``wiring.Component`` (or any elaboratable, with ``ports``), exported with
        :func:`amaranth.back.rtlil.convert` as module ``top``.
    ports : list of Signal, optional
        Top-level ports of a design that is not a component.

    Raises
    ------
    YosysError
        If Yosys fails, or the netlist has a cell type outside :data:`CMOS_TRANSISTORS` or a
        flip-flop not clocked by the ``clk`` port.
    """
    design = rtlil.convert(component, name=_TOP, ports=ports, emit_src=False)
    result = run_yosys(_SCRIPT, {"design.il": design}, outputs=["netlist.json"])
    return _parse(json.loads(result["netlist.json"])["modules"][_TOP])


def _parse(module: dict) -> GateNetlist:
    numbers: dict[object, int] = {"0": 0, "1": 1, "x": 0, "z": 0}

    def net(bit) -> int:
        return numbers.setdefault(bit, len(numbers) - 2)

    clock = module["ports"].get(_CLOCK, {"bits": []})["bits"]
    inputs, outputs = {}, {}
    for name, port in module["ports"].items():
        if name != _CLOCK:
            side = inputs if port["direction"] == "input" else outputs
            side[name] = tuple(net(bit) for bit in port["bits"])
    types, cell_inputs, cell_outputs = [], [], []
    for name, cell in module["cells"].items():
        kind, pins = cell["type"], cell["connections"]
        if kind not in CMOS_TRANSISTORS:
            raise YosysError(f"cell {name!r} has type {kind}, which the simulator does not model")
        if kind == _FLIP_FLOP:
            if pins["C"] != clock:
                raise YosysError(f"flip-flop {name!r} is not clocked by the {_CLOCK!r} port")
            ins, out = (net(pins["D"][0]),), net(pins["Q"][0])
        else:
            ins = tuple(net(pins[pin][0]) for pin in _PINS.get(kind, ("A", "B")))
            out = net(pins["Y"][0])
        types.append(kind)
        cell_inputs.append(ins)
        cell_outputs.append(out)
    flops = {out for kind, out in zip(types, cell_outputs, strict=True) if kind == _FLIP_FLOP}
    init = {}
    for wire in module["netnames"].values():
        value = wire["attributes"].get("init")
        if isinstance(value, str) and len(value) == len(wire["bits"]):
            for bit, char in zip(wire["bits"], reversed(value), strict=True):
                if char in "01" and numbers.get(bit) in flops:
                    init[numbers[bit]] = int(char)
    return GateNetlist(
        len(numbers) - 2,
        tuple(types),
        tuple(cell_inputs),
        tuple(cell_outputs),
        inputs,
        outputs,
        init,
    )


@dataclass(frozen=True)
class ToggleResult:
    """What :func:`simulate_toggles` measured.

    Attributes
    ----------
    outputs : dict of str to ndarray
        Each output port's settled value, shape ``(cycles, lanes)``: ``uint64`` for ports up to
        64 bits wide, Python ints (object) beyond.
    cell_toggles : ndarray of int64
        Output transitions of each cell, summed over lanes and the simulated cycles.
    weights : ndarray of int64
        Transistors of each cell (:attr:`GateNetlist.weights`).
    cycles, lanes : int
        The simulated cycles (reset excluded) and independent streams.
    """

    outputs: dict[str, np.ndarray]
    cell_toggles: np.ndarray
    weights: np.ndarray
    cycles: int
    lanes: int

    @property
    def toggles(self) -> int:
        """All cells' output transitions."""
        return int(self.cell_toggles.sum())

    @property
    def weighted_toggles(self) -> int:
        """Transitions weighted by the toggling cell's transistor count."""
        return int((self.cell_toggles * self.weights).sum())


def _schedule(netlist: GateNetlist):
    """Return the combinational cells by level (reading lower levels only) and type."""
    level = np.zeros(netlist.nets, dtype=np.int64)
    driver = {}
    for index, kind in enumerate(netlist.cell_types):
        if kind != _FLIP_FLOP:
            driver[netlist.cell_outputs[index]] = index
    readers: dict[int, list[int]] = {}
    waiting = {}
    for index in driver.values():
        pending = {n for n in netlist.cell_inputs[index] if n in driver}
        waiting[index] = len(pending)
        for n in pending:
            readers.setdefault(n, []).append(index)
    ready = [i for i, count in waiting.items() if count == 0]
    order = []
    while ready:
        index = ready.pop()
        order.append(index)
        out = netlist.cell_outputs[index]
        level[out] = 1 + max(level[n] for n in netlist.cell_inputs[index])
        for reader in readers.get(out, ()):
            waiting[reader] -= 1
            if waiting[reader] == 0:
                ready.append(reader)
    if len(order) != len(waiting):
        raise YosysError("the netlist has a combinational loop")
    groups: dict[tuple[int, str], list[int]] = {}
    for index in order:
        key = (int(level[netlist.cell_outputs[index]]), netlist.cell_types[index])
        groups.setdefault(key, []).append(index)
    steps = []
    for (_, kind), cells in sorted(groups.items()):
        ins = np.array([netlist.cell_inputs[i] for i in cells], dtype=np.int64).T
        outs = np.array([netlist.cell_outputs[i] for i in cells], dtype=np.int64)
        steps.append((_GATES[kind], outs, tuple(ins)))
    return steps


def _lane_words(values: np.ndarray, width: int) -> list[np.ndarray]:
    """Split non-negative values of ``width`` bits into 64-bit ``uint64`` chunks, low first."""
    if values.dtype != object and width <= _LANE_BITS:
        return [values.astype(np.uint64)]
    values = values.astype(object) & ((1 << width) - 1)
    chunks = -(-width // _LANE_BITS)
    low = (1 << _LANE_BITS) - 1
    return [((values >> (_LANE_BITS * c)) & low).astype(np.uint64) for c in range(chunks)]


def _pack_lanes(bits: np.ndarray, words: int) -> np.ndarray:
    """Pack bits ``(..., lanes)`` into words ``(..., words)``; lane ``l``: bit ``l % 64``."""
    padded = np.zeros((*bits.shape[:-1], words * _LANE_BITS), dtype=np.uint8)
    padded[..., : bits.shape[-1]] = bits
    return np.packbits(padded, axis=-1, bitorder="little").view("<u8").astype(np.uint64)


def _input_words(netlist: GateNetlist, inputs: Mapping, shape, words: int):
    """Return the input nets and their words for every cycle, ``(cycles, nets, words)``."""
    nets, columns = [], []
    for name, port in netlist.inputs.items():
        if name not in inputs:
            continue
        values = np.broadcast_to(np.asarray(inputs[name]), shape)
        chunks = _lane_words(values, len(port))
        for bit, net in enumerate(port):
            chunk = chunks[bit // _LANE_BITS]
            columns.append((chunk >> np.uint64(bit % _LANE_BITS)) & np.uint64(1))
            nets.append(net)
    bits = np.stack(columns, axis=1) if columns else np.zeros((shape[0], 0, shape[1]))
    return np.array(nets, dtype=np.int64), _pack_lanes(bits.astype(bool), words)


def _output_values(record: np.ndarray, netlist: GateNetlist, lanes: int) -> dict:
    bits = np.unpackbits(record.view(np.uint8), axis=-1, bitorder="little")[..., :lanes]
    outputs, start = {}, 0
    for name, port in netlist.outputs.items():
        width = len(port)
        part = bits[:, start : start + width, :]
        start += width
        if width <= _LANE_BITS:
            weights = np.left_shift(np.uint64(1), np.arange(width, dtype=np.uint64))
            outputs[name] = np.einsum("cwl,w->cl", part.astype(np.uint64), weights)
        else:
            value = np.zeros(part[:, 0, :].shape, dtype=object)
            for bit in range(width):
                value += part[:, bit, :].astype(object) << bit
            outputs[name] = value
    return outputs


def simulate_toggles(
    netlist: GateNetlist, inputs: Mapping[str, object], *, reset_cycles: int = 1
) -> ToggleResult:
    """Simulate ``netlist`` cycle by cycle on independent lanes and count its toggles.

    Every flip-flop starts at its ``init`` value (0 where it has none). Then ``reset_cycles``
    cycles run with the ``rst`` port high (if the netlist has one) and every other input 0;
    they are neither recorded nor counted. Each of the ``cycles`` that follow sets the inputs,
    settles the logic with zero delay (each net changes at most once per cycle), records the
    outputs, counts every net that differs from the previous cycle's settled value, and clocks
    the flip-flops. The first counted cycle is compared with the last reset cycle.

    Parameters
    ----------
    netlist : GateNetlist
        From :func:`gate_netlist`.
    inputs : mapping of str to array_like of int
        Input port name to its raw values (non-negative bit patterns), shape
        ``(cycles, lanes)``; each lane is an independent stream. Every input port but ``rst``
        (held 0) must be given; ``rst`` may be given to reset mid-stream.
    reset_cycles : int
        Reset cycles before the stimulus (default 1).

    Returns
    -------
    ToggleResult

    Raises
    ------
    ValueError
        For an unknown or missing port, arrays of different or non-2-D shapes, or a negative
        ``reset_cycles``.
    """
    reset_cycles = check_int("reset_cycles", reset_cycles, 0, 1 << 20)
    unknown = sorted(set(inputs) - set(netlist.inputs))
    missing = sorted(set(netlist.inputs) - set(inputs) - {_RESET})
    if unknown or missing:
        raise ValueError(f"inputs: unknown ports {unknown}, missing ports {missing}")
    shapes = {np.shape(v) for v in inputs.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"inputs must all have one shape (cycles, lanes), not {sorted(shapes)}")
    cycles, lanes = next(iter(shapes))
    words = -(-lanes // _LANE_BITS)
    in_nets, stimulus = _input_words(netlist, inputs, (cycles, lanes), words)
    steps = _schedule(netlist)
    flops = [i for i, kind in enumerate(netlist.cell_types) if kind == _FLIP_FLOP]
    q = np.array([netlist.cell_outputs[i] for i in flops], dtype=np.int64)
    d = np.array([netlist.cell_inputs[i][0] for i in flops], dtype=np.int64)
    ones = np.uint64((1 << _LANE_BITS) - 1)
    values = np.zeros((netlist.nets, words), dtype=np.uint64)
    values[1] = ones
    for net, bit in netlist.init.items():
        values[net] = ones * np.uint64(bit)

    def settle():
        for gate, outs, ins in steps:
            values[outs] = gate(*(values[i] for i in ins))

    reset = np.array(netlist.inputs.get(_RESET, ()), dtype=np.int64)
    for _ in range(reset_cycles):
        values[in_nets] = 0
        values[reset] = ones
        settle()
        values[q] = values[d]
    values[reset] = 0
    mask = _pack_lanes(np.ones((1, lanes), dtype=bool), words)[0]
    out_nets = np.array([n for port in netlist.outputs.values() for n in port], dtype=np.int64)
    record = np.zeros((cycles, len(out_nets), words), dtype=np.uint64)
    toggles = np.zeros(netlist.nets, dtype=np.int64)
    previous = values.copy()
    for cycle in range(cycles):
        values[in_nets] = stimulus[cycle]
        settle()
        record[cycle] = values[out_nets]
        toggles += np.bitwise_count((values ^ previous) & mask).sum(axis=1, dtype=np.int64)
        previous[:] = values
        values[q] = values[d]
    return ToggleResult(
        _output_values(record, netlist, lanes),
        toggles[np.array(netlist.cell_outputs, dtype=np.int64)],
        netlist.weights,
        cycles,
        lanes,
    )
