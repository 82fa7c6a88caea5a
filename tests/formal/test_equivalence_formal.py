"""SAT proofs: pal8 units equal references written from the format's definition.

The multiplier/divider: the reference (:func:`reference`) is written here from
``docs/format.md`` (sections 1, 2 and 5), not from the unit or the golden model: ``E = 0`` is
zero (sign clear) or NaN (sign set);
a product's log is ``La + Lb`` (a quotient's ``La - Lb``) with ``L = E - bias``, exact;
``|L| > bias - 1`` saturates to ``E = 2**(I+F) - 1`` above and flushes to ``+0`` below; the
sign is ``sa XOR sb``; NaN propagates, ``0 * x = +0``, ``x / 0 = NaN``, ``0 / x = +0``.

The combinational :class:`~palhdl.hdl.ops.PALMultiplier` has no state, so one step proves the
equality for every input: all ``2**16`` operand pairs of both operations at once, by the SAT
solver (``mode prove``, depth 1), not by enumeration. A reference with one entry changed and
a unit with one result changed both fail with a counterexample naming that entry.

The block-RAM product term (:class:`~palhdl.hdl.pe.PALTableProductTerm`, unregistered) against
terms computed here from exact integers (``docs/format.md`` section 8, with
``exact.mantissa_round``), for every operand pair: the default lossless pal8 configuration
and a 16-bit window with a 10-bit term limit (right shifts that round, terms that overflow
and saturate). A reference with one entry changed fails.
"""

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cat, Elaboratable, Module, Mux, ResetSignal, Signal, signed
from exact import mantissa_round

from palhdl.format import MacConfig, pal8
from palhdl.hdl.ops import PALMultiplier
from palhdl.hdl.pe import PALTableProductTerm

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


def exact_term(s, config):
    """``(magnitude, overflow)`` of a positive product with ``Ea + Eb = s``, docs/format.md s. 8.

    From exact integers only (:func:`exact.mantissa_round`), not from the table code.
    """
    fmt = config.fmt
    units = 1 << fmt.frac_bits
    bias = 1 << (fmt.int_bits + fmt.frac_bits - 1)
    if s < 2 or s > 2 * ((1 << (fmt.int_bits + fmt.frac_bits)) - 1):
        return 0, 0  # no pair of nonzero operands reaches it
    log = s - 2 * bias
    q, r = log >> fmt.frac_bits, log & (units - 1)
    m = mantissa_round(r, fmt.frac_bits, config.mantissa_bits)
    shift = q - config.mantissa_bits + config.acc_frac_bits
    # (a right shift by more than 62 rounds to 0 either way: m < 2**(W + 2))
    magnitude = m << shift if shift >= 0 else (m + (1 << (-shift - 1))) >> -shift
    if magnitude >= 1 << config.term_bits:
        return (config.acc_max if config.saturate else 0), 1
    return magnitude, 0


class TableTermHarness(Elaboratable):
    """Any operands every cycle into an unregistered PALTableProductTerm (latency 1).

    Two cycles of BMC cover every operand pair symbolically: the check in the second cycle
    sees any operands of the first, and the table is read-only (its contents are those of the
    initial state in every cycle; k-induction would let the solver start from other contents,
    so it does not close). Asserts the term of the previous cycle's operands: magnitude and
    overflow from :func:`exact_term` (a constant table indexed by ``Ea + Eb``, zero for a zero
    or NaN operand), ``nan`` for a NaN operand, the sign ``sa XOR sb`` of a nonzero term.
    ``corrupt``: a sum ``Ea + Eb`` whose reference magnitude is one too large.
    """

    def __init__(self, unit, corrupt=None):
        self.unit = unit
        self.corrupt = corrupt

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self.unit
        config = unit.config
        mag_bits = config.fmt.int_bits + config.fmt.frac_bits
        a, b = AnySeq(mag_bits + 1), AnySeq(mag_bits + 1)
        m.d.comb += [unit.a.eq(a), unit.b.eq(b), unit.en.eq(1), Assume(~ResetSignal())]
        a_prev, b_prev, primed = Signal(mag_bits + 1), Signal(mag_bits + 1), Signal()
        m.d.sync += [a_prev.eq(a), b_prev.eq(b), primed.eq(1)]

        table = [exact_term(s, config) for s in range(1 << (mag_bits + 1))]
        if self.corrupt is not None:
            magnitude, overflow = table[self.corrupt]
            table[self.corrupt] = (magnitude + 1, overflow)
        ea, eb = a_prev[:mag_bits], b_prev[:mag_bits]
        sa, sb = a_prev[mag_bits], b_prev[mag_bits]
        special = (ea == 0) | (eb == 0)
        s = Signal(mag_bits + 1)
        m.d.comb += s.eq(ea + eb)
        magnitude = Signal(config.acc_bits - 1)
        overflow = Signal()
        with m.Switch(s):
            for index, (entry, flag) in enumerate(table):
                with m.Case(index):
                    m.d.comb += [magnitude.eq(entry), overflow.eq(flag)]
        term = unit.term_sm
        with m.If(primed):
            m.d.comb += [
                Assert(term.magnitude == Mux(special, 0, magnitude)),
                Assert(term.overflow == (~special & overflow)),
                Assert(term.nan == (((ea == 0) & sa) | ((eb == 0) & sb))),
                Assert((term.magnitude == 0) | (term.negative == (sa ^ sb))),
            ]
        return m


TERM_CONFIGS = {
    "pal8-default": MacConfig(pal8),  # lossless: every term exact
    "pal8-16bit-window-10": MacConfig(pal8, acc_bits=16, acc_frac_bits=4, term_bits=10),
}


@pytest.mark.parametrize("config", TERM_CONFIGS.values(), ids=TERM_CONFIGS.keys())
def test_table_term_equals_exact_terms(formal, config):
    unit = PALTableProductTerm(config=config, registered=False)
    result = formal(TableTermHarness(unit), mode="bmc", depth=2)
    assert result.status == "PASS", result.log


def test_table_term_equivalence_catches_a_wrong_entry(formal):
    unit = PALTableProductTerm(config=MacConfig(pal8), registered=False)
    result = formal(TableTermHarness(unit, corrupt=131), mode="bmc", depth=2)
    assert result.status == "FAIL"
    assert result.traces
