"""The gate-level netlist and its toggle-counting simulator (synth/toggles.py).

The transistor weights are checked against Yosys' own ``estimated_num_transistors``
(:func:`palhdl.synth.yosys.synth_stats`); the simulated netlists of the INT8 and the block-RAM
pal8 MAC against numpy integer dot products and :func:`palhdl.sim.golden.dot`; the toggle counts
of a counter against the count derived by hand.
"""

import itertools

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.hdl.pe import PALTableMac
from palhdl.hdl.restart import IntRestartMac
from palhdl.sim import golden
from palhdl.sim.pysim import pack_payloads, unpack_payloads
from palhdl.studies.cost_units import PAL8_COST
from palhdl.synth.toggles import CMOS_TRANSISTORS, gate_netlist, simulate_toggles
from palhdl.synth.yosys import synth_stats


class Counter(wiring.Component):
    """A 4-bit counter that counts while ``en`` is high."""

    en: In(1)
    count: Out(4)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
        return m


def test_counter_toggles_match_hand_count():
    cycles = 40
    stop = np.array([0, 1, 7, 8, 16, 39, 100])  # lane l counts during its first stop[l] cycles
    en = (np.arange(cycles)[:, None] < stop[None, :]).astype(np.int64)
    netlist = gate_netlist(Counter())
    result = simulate_toggles(netlist, {"en": en})
    # Reset clears the counter; cycle t shows the count of the enabled cycles before it.
    shown = np.minimum(np.arange(cycles)[:, None], stop[None, :]) % 16
    np.testing.assert_array_equal(result.outputs["count"], shown)
    # From the reset value 0 the count steps up to min(cycles - 1, stop) increments; bit i
    # flips once every 2**i of them (wrapping included).
    steps = np.minimum(cycles - 1, stop)
    flops = {
        out: index
        for index, (kind, out) in enumerate(
            zip(netlist.cell_types, netlist.cell_outputs, strict=True)
        )
        if kind == "$_DFF_P_"
    }
    assert len(flops) == 4
    for bit, net in enumerate(netlist.outputs["count"]):
        assert result.cell_toggles[flops[net]] == int((steps // (1 << bit)).sum()), bit
    assert result.cycles == cycles and result.lanes == len(stop)
    assert result.weighted_toggles == int((result.cell_toggles * netlist.weights).sum())
    assert result.weighted_toggles > 16 * result.cell_toggles[list(flops.values())].sum()


class Preset(wiring.Component):
    """A 4-bit counter without reset that starts at 5: its flip-flops' ``init`` values."""

    en: In(1)
    count: Out(4)

    def elaborate(self, platform):
        m = Module()
        value = Signal(4, init=5, reset_less=True)
        with m.If(self.en):
            m.d.sync += value.eq(value + 1)
        m.d.comb += self.count.eq(value)
        return m


@pytest.mark.parametrize("reset_cycles", [0, 2])
def test_flip_flops_start_at_their_init_values(reset_cycles):
    en = np.ones((20, 2), dtype=np.int64)
    en[:, 1] = 0
    result = simulate_toggles(gate_netlist(Preset()), {"en": en}, reset_cycles=reset_cycles)
    np.testing.assert_array_equal(result.outputs["count"][:, 0], (5 + np.arange(20)) % 16)
    np.testing.assert_array_equal(result.outputs["count"][:, 1], 5)


def test_counter_weights_sum_to_yosys_transistors():
    netlist = gate_netlist(Counter())
    assert set(netlist.cell_types) <= set(CMOS_TRANSISTORS)
    assert netlist.transistors == synth_stats(Counter(), target="cmos")["transistors"]
    assert sum(netlist.cell_counts.values()) == len(netlist.cell_types)


def test_parameters():
    netlist = gate_netlist(Counter())
    with pytest.raises(ValueError, match=r"unknown ports \['x'\], missing ports \['en'\]"):
        simulate_toggles(netlist, {"x": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="one shape"):
        simulate_toggles(netlist, {"en": np.zeros(3)})
    with pytest.raises(ValueError, match="reset_cycles"):
        simulate_toggles(netlist, {"en": np.zeros((2, 2))}, reset_cycles=-1)


def stream_inputs(dut, a, b, lengths):
    """Input ports of a restarting stream MAC: ``a``, ``b`` ``(pairs, lanes)``, every pair valid,
    dot products of ``lengths[d]`` pairs in each lane, then idle cycles to drain the pipeline."""
    ends = np.cumsum(lengths) - 1
    last = np.zeros(a.shape, dtype=np.int64)
    last[ends] = 1
    drain = dut.latency + 2
    fields = {"a": a, "b": b, "last": last}
    payload = pack_payloads(dut.i.payload.shape(), fields)
    payload = np.concatenate([payload, np.zeros((drain, a.shape[1]), dtype=object)])
    valid = np.concatenate([np.ones(a.shape, np.int64), np.zeros((drain, a.shape[1]), np.int64)])
    return {"i__payload": payload, "i__valid": valid, "o__ready": np.ones_like(valid)}


def gate_level_dot_products(dut, a, b, lengths):
    """Each lane's output records, in order, from the simulated gate netlist of ``dut``."""
    result = simulate_toggles(gate_netlist(dut), stream_inputs(dut, a, b, lengths))
    valid = result.outputs["o__valid"].astype(bool)
    assert (valid.sum(axis=0) == len(lengths)).all()
    raw = result.outputs["o__payload"]
    shape = dut.o.payload.shape()
    return [unpack_payloads(shape, raw[valid[:, lane], lane]) for lane in range(a.shape[1])]


@pytest.mark.slow
def test_int8_gate_netlist_matches_integer_dot_products():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 24, size=12)
    pairs, lanes = int(lengths.sum()), 70
    a = rng.integers(-128, 128, size=(pairs, lanes))
    b = rng.integers(-128, 128, size=(pairs, lanes))
    a[: lengths[0], 0] = b[: lengths[0], 0] = -128
    dut = IntRestartMac()
    records = gate_level_dot_products(dut, a, b, lengths)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    for lane, record in enumerate(records):
        exact = [int(a[s:e, lane] @ b[s:e, lane]) for s, e in itertools.pairwise(bounds)]
        wrapped = [(x + (1 << 31)) % (1 << 32) - (1 << 31) for x in exact]
        np.testing.assert_array_equal(record["acc"], wrapped, err_msg=f"lane {lane}")
    assert netlist_transistors_match(dut)


def netlist_transistors_match(dut) -> bool:
    return gate_netlist(dut).transistors == synth_stats(dut, target="cmos")["transistors"]


@pytest.mark.slow
def test_pal8_table_gate_netlist_matches_golden_dot():
    rng = np.random.default_rng(2)
    fmt = PAL8_COST.fmt
    lengths = rng.integers(1, 20, size=10)
    pairs, lanes = int(lengths.sum()), 65
    a, b = (rng.integers(0, 1 << fmt.width, size=(pairs, lanes)) for _ in range(2))
    special = rng.random((pairs, lanes)) < 0.03
    a = np.where(special, rng.choice([fmt.zero_code, fmt.nan_code], size=a.shape), a)
    dut = PALTableMac(config=PAL8_COST)
    records = gate_level_dot_products(dut, a, b, lengths)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    for lane in range(0, lanes, 4):
        for index, (s, e) in enumerate(itertools.pairwise(bounds)):
            expected = golden.dot(a[s:e, lane], b[s:e, lane], PAL8_COST)
            for name in ("acc", "nan", "overflow"):
                got = records[lane][name][index]
                assert got == int(getattr(expected, name)), (lane, index, name)
    assert netlist_transistors_match(dut)
