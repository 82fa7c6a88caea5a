"""SAT proof: the pal8 multiplier/divider equals a reference written from the format's definition.

The reference (:func:`reference`) is written here from ``docs/format.md`` (sections 1, 2 and
5), not from the unit or the golden model: ``E = 0`` is zero (sign clear) or NaN (sign set);
a product's log is ``La + Lb`` (a quotient's ``La - Lb``) with ``L = E - bias``, exact;
``|L| > bias - 1`` saturates to ``E = 2**(I+F) - 1`` above and flushes to ``+0`` below; the
sign is ``sa XOR sb``; NaN propagates, ``0 * x = +0``, ``x / 0 = NaN``, ``0 / x = +0``.

The combinational :class:`~palhdl.hdl.ops.PALMultiplier` has no state, so one step proves the
equality for every input: all ``2**16`` operand pairs of both operations at once, by the SAT
solver (``mode prove``, depth 1), not by enumeration. A reference with one entry changed and
a unit with one result changed both fail with a counterexample naming that entry.
"""

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Cat, Elaboratable, Module, Mux, Signal, signed

from palhdl.format import pal8
from palhdl.hdl.ops import PALMultiplier

INT_BITS, FRAC_BITS = 4, 3  # pal8 = PALFormat(4, 3), docs/format.md section 1
MAG_BITS = INT_BITS + FRAC_BITS
BIAS = 1 << (MAG_BITS - 1)  # 64: the format is symmetric about E = bias (L = 0)
E_MAX = (1 << MAG_BITS) - 1
NAN = 1 << MAG_BITS  # sign set, E = 0
ZERO = 0


def reference(m, a, b, divide):
    """The pal8 code of ``a * b`` (``divide`` low) or ``a / b`` (high), as a Signal."""
    sa, ea = a[MAG_BITS], a[:MAG_BITS]
    sb, eb = b[MAG_BITS], b[:MAG_BITS]
    a_zero, a_nan = (ea == 0) & ~sa, (ea == 0) & sa
    b_zero, b_nan = (eb == 0) & ~sb, (eb == 0) & sb
    log = Signal(signed(MAG_BITS + 3))
    m.d.comb += log.eq(Mux(divide, (ea - BIAS) - (eb - BIAS), (ea - BIAS) + (eb - BIAS)))
    finite = Mux(
        log > BIAS - 1,
        Cat(Signal(MAG_BITS, init=E_MAX), sa ^ sb),
        Mux(log < 1 - BIAS, ZERO, Cat((log + BIAS)[:MAG_BITS], sa ^ sb)),
    )
    result = Signal(MAG_BITS + 1)
    with m.If(a_nan | b_nan | (divide & b_zero)):
        m.d.comb += result.eq(NAN)
    with m.Elif(a_zero | b_zero):
        m.d.comb += result.eq(ZERO)
    with m.Else():
        m.d.comb += result.eq(finite)
    return result


class EquivalenceHarness(Elaboratable):
    """Any input into a combinational ``unit``; assert its output equals :func:`reference`.

    ``corrupt``: ``(a, b, op)`` whose reference result gets its lowest bit flipped.
    """

    def __init__(self, unit, corrupt=None):
        self.unit = unit
        self.corrupt = corrupt

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self.unit
        a, b, op = AnySeq(MAG_BITS + 1), AnySeq(MAG_BITS + 1), AnySeq(1)
        m.d.comb += [
            unit.i.valid.eq(AnySeq(1)),
            unit.o.ready.eq(AnySeq(1)),
            unit.i.payload.a.eq(a),
            unit.i.payload.b.eq(b),
            unit.i.payload.op.eq(op),
        ]
        expected = reference(m, a, b, op == PALMultiplier.OP_DIV)
        if self.corrupt is not None:
            ca, cb, cop = self.corrupt
            expected = expected ^ ((a == ca) & (b == cb) & (op == cop))
        m.d.comb += [
            Assert(unit.o.payload.as_value() == expected),
            Assert(unit.o.valid == unit.i.valid),
            Assert(unit.i.ready == unit.o.ready),
        ]
        return m


class OneWrongProduct(PALMultiplier):
    """A broken multiplier: ``0x41 * 0x42`` comes out one code too high."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        payload = self.i.payload
        with m.If((payload.a.as_value() == 0x41) & (payload.b.as_value() == 0x42) & ~payload.op):
            m.d.comb += self.o.payload.eq(0x44)  # 2**(1/8) * 2**(2/8) = 2**(3/8): code 0x43
        return m


def test_multiplier_equals_reference(formal):
    result = formal(EquivalenceHarness(PALMultiplier(fmt=pal8)), mode="prove", depth=1)
    assert result.status == "PASS", result.log


def test_multiplier_equivalence_catches_a_wrong_reference_entry(formal):
    harness = EquivalenceHarness(PALMultiplier(fmt=pal8), corrupt=(0x9A, 0x33, 1))
    result = formal(harness, mode="prove", depth=1)
    assert result.status == "FAIL"
    assert result.traces


def test_multiplier_equivalence_catches_a_wrong_product(formal):
    result = formal(EquivalenceHarness(OneWrongProduct(fmt=pal8)), mode="prove", depth=1)
    assert result.status == "FAIL"
    assert result.traces
