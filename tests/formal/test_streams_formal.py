"""Formal proofs of the stream handshakes of every pipelined unit and of the systolic array.

Each unit sits in :class:`StreamHarness`: free producers (any payload, any ``valid``, but a
``valid`` payload is held until it is taken) and a free consumer (any ``ready``). The harness
counts the transfers: every input transfer owes the output stream some transfers (one for a
converter or an operator, ``last`` for a MAC, ``rows`` for a ``last`` beat of the array). It
asserts, in every cycle:

- nothing is duplicated: an output is offered only while one is owed (``out < in``);
- nothing is lost and nothing piles up: ``in - out <= capacity``, and after ``drain`` cycles
  with ``ready`` high and no input transfer every owed output has left (``in == out``);
- the output follows the stream rules: an offered output stays valid with the same payload
  until it is taken.

The proofs are bounded (``mode bmc``; k-induction cannot close without naming the units'
internal registers); the depth covers several fills and drains of each pipeline. A cover run
shows the harness is not vacuous (outputs do flow), and broken variants (an output dropped,
one presented twice, a payload that changes while stalled) make the proofs fail.
"""

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import (
    Assert,
    Assume,
    Cover,
    Elaboratable,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
)

from palhdl.format import MacConfig, pal8
from palhdl.hdl.baselines import BF16Mac, FP8Mac, IntMac
from palhdl.hdl.convert import (
    BFloat16ToPAL,
    FixedToPAL,
    Float32ToPAL,
    PALToBFloat16,
    PALToFloat32,
)
from palhdl.hdl.mac import PALMac
from palhdl.hdl.ops import PALAdder, PALMultiplier
from palhdl.hdl.pe import PALTableMac
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.readout import AccumulatorToFloat32, AccumulatorToPAL
from palhdl.hdl.restart import FP8RestartMac, IntRestartMac
from palhdl.hdl.systolic import SystolicArray

COUNTER_BITS = 8
BREAKAGES = ("drop", "duplicate", "unstable")


class StreamHarness(Elaboratable):
    """Handshake properties of ``unit``: input streams ``inputs``, output stream ``output``.

    ``tokens(payloads)`` is the number of output transfers one input transfer owes (payloads:
    the input streams' payloads in order). ``breakage`` (one of :data:`BREAKAGES`) inserts a
    fault between the unit's output and the checked stream.
    """

    def __init__(self, unit, *, inputs, output, tokens, capacity, drain, breakage=None):
        self.unit = unit
        self.inputs = inputs
        self.output = output
        self.tokens = tokens
        self.capacity = capacity
        self.drain = drain
        self.breakage = breakage

    def producers(self, m):
        """Free producers on every input stream; return the transfer condition."""
        streams = [getattr(self.unit, name) for name in self.inputs]
        for s in streams:
            width = len(Value.cast(s.payload))
            payload = AnySeq(width)
            m.d.comb += [s.valid.eq(AnySeq(1)), Value.cast(s.payload).eq(payload)]
            held = Signal()
            held_payload = Signal(width)
            m.d.sync += [held.eq(s.valid & ~s.ready), held_payload.eq(payload)]
            with m.If(held):
                m.d.comb += Assume(s.valid & (payload == held_payload))
        fires = [s.valid & s.ready for s in streams]
        for fire in fires[1:]:
            m.d.comb += Assert(fire == fires[0])  # the streams transfer together
        return fires[0], [s.payload for s in streams]

    def consumer(self, m):
        """The output as the consumer sees it (through ``breakage``): ``valid, ready, payload``."""
        o = getattr(self.unit, self.output)
        width = len(Value.cast(o.payload))
        unit_payload = Value.cast(o.payload)
        valid, ready, payload = Signal(), Signal(), Signal(width)
        m.d.comb += ready.eq(AnySeq(1))
        if self.breakage is None:
            m.d.comb += [valid.eq(o.valid), o.ready.eq(ready), payload.eq(unit_payload)]
        elif self.breakage == "drop":  # the first output is taken and thrown away
            dropped = Signal()
            m.d.sync += dropped.eq(dropped | o.valid)
            m.d.comb += [
                valid.eq(o.valid & dropped),
                o.ready.eq(ready | ~dropped),
                payload.eq(unit_payload),
            ]
        elif self.breakage == "duplicate":  # the first output is offered a second time
            again, done = Signal(), Signal()
            saved = Signal(width)
            with m.If(~done & o.valid & ready):
                m.d.sync += [again.eq(1), done.eq(1), saved.eq(unit_payload)]
            with m.If(again & ready):
                m.d.sync += again.eq(0)
            m.d.comb += [
                valid.eq(again | o.valid),
                o.ready.eq(ready & ~again),
                payload.eq(Mux(again, saved, unit_payload)),
            ]
        else:  # "unstable": the payload changes while the output is stalled
            stalled = Signal()
            m.d.sync += stalled.eq(o.valid & ~ready)
            m.d.comb += [valid.eq(o.valid), o.ready.eq(ready), payload.eq(unit_payload ^ stalled)]
        return valid, ready, payload

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = self.unit
        m.d.comb += Assume(~ResetSignal())
        fire_in, payloads = self.producers(m)
        valid, ready, payload = self.consumer(m)
        fire_out = valid & ready

        owed, sent = Signal(COUNTER_BITS), Signal(COUNTER_BITS)
        with m.If(fire_in):
            m.d.sync += owed.eq(owed + self.tokens(payloads))
        with m.If(fire_out):
            m.d.sync += sent.eq(sent + 1)
        m.d.comb += [Assert(sent <= owed), Assert(owed - sent <= self.capacity)]
        with m.If(valid):
            m.d.comb += Assert(sent < owed)

        stalled, held_payload = Signal(), Signal(len(payload))
        m.d.sync += [stalled.eq(valid & ~ready), held_payload.eq(payload)]
        with m.If(stalled):
            m.d.comb += Assert(valid & (payload == held_payload))

        quiet = Signal(range(self.drain + 1))
        with m.If(~ready | fire_in):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != self.drain):
            m.d.sync += quiet.eq(quiet + 1)
        with m.If(quiet == self.drain):
            m.d.comb += Assert(owed == sent)
        m.d.comb += Cover(sent == 3)
        return m


PAL8 = MacConfig(pal8)


def one(payloads):
    return 1


def last(payloads):
    return payloads[0].last


#: The pipelined stream units at their smallest parameters: name -> (factory, tokens).
UNITS = {
    "PALMultiplier": (lambda: PALMultiplier(fmt=pal8, pipelined=True), one),
    "PALAdder": (lambda: PALAdder(fmt=pal8, pipelined=True), one),
    "FixedToPAL": (lambda: FixedToPAL(fmt=pal8, width=8, pipelined=True), one),
    "Float32ToPAL": (lambda: Float32ToPAL(fmt=pal8, pipelined=True), one),
    "BFloat16ToPAL": (lambda: BFloat16ToPAL(fmt=pal8, pipelined=True), one),
    "PALToFloat32": (lambda: PALToFloat32(fmt=pal8, pipelined=True), one),
    "PALToBFloat16": (lambda: PALToBFloat16(fmt=pal8, pipelined=True), one),
    "AccumulatorToPAL": (lambda: AccumulatorToPAL(config=PAL8, pipelined=True), one),
    "AccumulatorToFloat32": (lambda: AccumulatorToFloat32(config=PAL8, pipelined=True), one),
    "PALMac": (lambda: PALMac(config=PAL8), last),
    "PALMac-pipelined": (lambda: PALMac(config=PAL8, pipelined=True), last),
    "PALMac-pipelined-float32": (
        lambda: PALMac(config=PAL8, pipelined=True, readout="float32"),
        last,
    ),
    "IntMac": (lambda: IntMac(), last),
    "FP8Mac": (lambda: FP8Mac(acc_bits=16, acc_frac_bits=4), last),
    "BF16Mac": (lambda: BF16Mac(acc_bits=32, acc_frac_bits=8), last),
    "IntRestartMac-2segments": (lambda: IntRestartMac(segments=2), last),
    "FP8RestartMac": (lambda: FP8RestartMac(acc_bits=16, acc_frac_bits=4), last),
    "PALTableMac": (lambda: PALTableMac(config=PAL8), last),
    "PALTableMac-unregistered-loadable": (
        lambda: PALTableMac(config=PAL8, registered=False, loadable=True),
        last,
    ),
}

#: BMC depth of the unit proofs: every unit's latency is at most 6, so a run covers at least
#: two complete fill-stall-drain sequences.
UNIT_DEPTH = 16


def unit_harness(name, breakage=None):
    make, tokens = UNITS[name]
    unit = make()
    latency = unit.latency
    assert latency > 0
    # A unit holds at most `latency` owed outputs, and with `ready` high drains in `latency`.
    return StreamHarness(
        unit,
        inputs=("i",),
        output="o",
        tokens=tokens,
        capacity=latency,
        drain=latency,
        breakage=breakage,
    )


@pytest.mark.parametrize("name", UNITS)
def test_unit_handshake(formal, name):
    result = formal(unit_harness(name), mode="bmc", depth=UNIT_DEPTH)
    assert result.status == "PASS", result.log


@pytest.mark.parametrize(
    ("name", "breakage"),
    [(name, BREAKAGES[index % len(BREAKAGES)]) for index, name in enumerate(UNITS)],
)
def test_unit_handshake_broken(formal, name, breakage):
    result = formal(unit_harness(name, breakage), mode="bmc", depth=UNIT_DEPTH)
    assert result.status == "FAIL"
    assert result.traces  # a counterexample waveform


def array_harness(rows, cols, breakage=None, *, output="raw", pipelined=False):
    arithmetic = PALArithmetic(config=PAL8, pipelined=pipelined)
    array = SystolicArray(arithmetic=arithmetic, rows=rows, cols=cols, output=output)
    # A `last` beat owes `rows` result rows. The next `last` beat waits until the previous
    # tile's last row has left the shadow registers, so at most one tile (`rows` rows) is
    # owed, plus the row a pipelined readout converter may still hold; with `c.ready` high
    # the first row is valid `latency` cycles after the `last` beat and one row leaves every
    # other cycle (2 * rows - 1 cycles).
    converting = arithmetic.readout_latency(output) > 0
    return StreamHarness(
        array,
        inputs=("a", "b"),
        output="c",
        tokens=lambda payloads: payloads[0].last * rows,
        capacity=rows + (1 if converting else 0),
        drain=array.latency + 2 * rows - 1,
        breakage=breakage,
    )


#: BMC depth of the array proofs: two tiles back to back (a 2x2 tile owes its last row
#: 7 cycles after its `last` beat).
ARRAY_DEPTH = 16


def test_array_handshake(formal):
    result = formal(array_harness(1, 2), mode="bmc", depth=ARRAY_DEPTH)
    assert result.status == "PASS", result.log


def test_array_handshake_2x2(formal):
    result = formal(array_harness(2, 2), mode="bmc", depth=ARRAY_DEPTH)
    assert result.status == "PASS", result.log


def test_array_handshake_pipelined_float32(formal):
    harness = array_harness(1, 2, output="float32", pipelined=True)
    result = formal(harness, mode="bmc", depth=ARRAY_DEPTH)
    assert result.status == "PASS", result.log


def test_array_handshake_covers_three_rows(formal):
    result = formal(array_harness(1, 2), mode="cover", depth=ARRAY_DEPTH)
    assert result.status == "PASS", result.log  # three rows do come out: the proof is not vacuous
    assert result.traces


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_array_handshake_broken(formal, breakage):
    result = formal(array_harness(1, 2, breakage), mode="bmc", depth=ARRAY_DEPTH)
    assert result.status == "FAIL"
    assert result.traces


@pytest.mark.parametrize("bound", ["capacity", "drain"])
@pytest.mark.parametrize("design", ["array", "array-float32", "PALAdder"])
def test_bounds_are_tight(formal, design, bound):
    if design == "array":
        harness = array_harness(1, 2)
    elif design == "array-float32":
        harness = array_harness(1, 2, output="float32", pipelined=True)
    else:
        harness = unit_harness(design)
    setattr(harness, bound, getattr(harness, bound) - 1)
    depth = UNIT_DEPTH if design == "PALAdder" else ARRAY_DEPTH
    result = formal(harness, mode="bmc", depth=depth)
    assert result.status == "FAIL"
