"""SegmentedAccumulator against plain integer arithmetic: wrapping sums, sticky flags, restarts."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from palhdl.format import AccumulatorConfig
from palhdl.hdl.accumulator import SegmentedAccumulator, segment_bounds


def reference(terms, nans, overflows, valids, restarts, acc_bits):
    """Finished dot products ``(acc, nan, overflow)``: wrapping sums of the valid terms."""
    low, high = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    acc, nan, overflow, results = 0, False, False, []
    for term, term_nan, term_overflow, valid, restart in zip(
        terms, nans, overflows, valids, restarts, strict=True
    ):
        if valid:
            total = acc + term
            overflow |= term_overflow or not low <= total <= high
            acc = (total - low) % (1 << acc_bits) + low
            nan |= term_nan
        if restart:
            if valid:
                results.append((acc, nan, overflow))
            acc, nan, overflow = 0, False, False
    return results


def simulate(unit, terms, nans, overflows, valids, restarts, enables):
    results = []

    async def testbench(ctx):
        for cycle in range(len(terms) + 3 * unit.latency + 4):
            inside = cycle < len(terms)
            enabled = bool(enables[cycle]) if inside else True
            ctx.set(unit.en, enabled)
            if unit.signed_term:
                ctx.set(unit.term.acc, int(terms[cycle]) if inside else 0)
            else:
                term = int(terms[cycle]) if inside else 0
                ctx.set(unit.term.magnitude, abs(term))
                ctx.set(unit.term.negative, term < 0)
            ctx.set(unit.term.nan, bool(nans[cycle]) if inside else 0)
            ctx.set(unit.term.overflow, bool(overflows[cycle]) if inside else 0)
            ctx.set(unit.valid, bool(valids[cycle]) if inside and enabled else 0)
            ctx.set(unit.restart, bool(restarts[cycle]) if inside and enabled else 0)
            await ctx.delay(1e-7)
            if ctx.get(unit.done) and enabled:
                total = ctx.get(unit.sum)
                results.append((total["acc"], bool(total["nan"]), bool(total["overflow"])))
            await ctx.tick()

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return results


@pytest.mark.parametrize("segments", [1, 2, 3, 4])
@pytest.mark.parametrize("signed_term", [False, True])
def test_matches_integer_sums(segments, signed_term):
    config = AccumulatorConfig(acc_bits=12, acc_frac_bits=0, term_bits=9, saturate=False)
    unit = SegmentedAccumulator(config=config, segments=segments, signed_term=signed_term)
    rng = np.random.default_rng(segments * 2 + signed_term)
    count = 3000
    terms = rng.integers(-config.term_max, config.term_max + 1, size=count)
    nans = rng.random(count) < 0.01
    overflows = rng.random(count) < 0.01
    enables = rng.random(count) < 0.8
    valids = (rng.random(count) < 0.85) & enables
    restarts = valids & (rng.random(count) < 0.1)
    got = simulate(unit, terms, nans, overflows, valids, restarts, enables)
    expected = reference(terms, nans, overflows, valids, restarts, config.acc_bits)
    assert len(expected) > 150
    assert any(e[2] for e in expected) and not all(e[2] for e in expected)
    assert got == expected


def test_segment_bounds_cover_the_accumulator():
    assert segment_bounds(32, 2) == [(0, 16), (16, 32)]
    assert segment_bounds(32, 3) == [(0, 10), (10, 21), (21, 32)]
    assert segment_bounds(18, 1) == [(0, 18)]


def test_parameters():
    saturating = AccumulatorConfig(acc_bits=16, acc_frac_bits=0)
    with pytest.raises(ValueError, match="segments 2 needs a wrapping accumulator"):
        SegmentedAccumulator(config=saturating, segments=2)
    wrapping = AccumulatorConfig(acc_bits=8, acc_frac_bits=0, saturate=False)
    with pytest.raises(ValueError, match=r"segments must be in \[1, 4\], not 5"):
        SegmentedAccumulator(config=wrapping, segments=5)
    with pytest.raises(TypeError, match="config"):
        SegmentedAccumulator(config=None)
