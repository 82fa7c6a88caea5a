"""Block-scaled PAL products in the gateware against the golden model.

Unit level: the table and logic product terms, fed operands lowered by their offsets
(:func:`palhdl.hdl.layout.lower_operand`), on every pal8 operand pair with random and extreme
offsets, against ``golden.mac_terms(offset=)``. Array level: block-scaled matmuls of random
shapes through a :class:`~palhdl.hdl.systolic.SystolicArray`, the lanes packed from the
layouts and the per-element offsets computed with ``golden.block_offsets`` as a host does,
against ``golden.matmul(block_size=)``.
"""

import numpy as np
import pytest
from amaranth.hdl import Module, Shape, Signal, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.hdl.layout import block_operand_layout, lower_operand, lowered_operand_layout
from palhdl.hdl.mac import PALProductTerm
from palhdl.hdl.pe import PALTableMac, PALTableProductTerm
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import SystolicArray
from palhdl.sim import golden
from palhdl.sim.driver import assemble, decode_lanes, split_tiles
from palhdl.sim.pysim import pack_payloads, simulate_streams, unpack_payloads

#: The iCEBreaker's PE window: wrapping, a narrow term window (terms overflow and drop).
WRAPPING = MacConfig(
    pal8, mantissa_bits=5, acc_bits=18, acc_frac_bits=8, term_bits=11, saturate=False
)
#: A saturating window whose largest terms overflow and are clamped.
SATURATING = MacConfig(pal8, acc_bits=20, acc_frac_bits=8, term_bits=12, mantissa_bits=5)


def pair_offsets(rng, a, b, fmt):
    """Per-pair offsets ``(offset_a, offset_b)``: random, extreme, and around ``S = Ea + Eb``.

    A fifth each: uniform in ``0 .. 2**(mag_bits + 1) - 1``; both 0; both the largest; one
    largest and one 0; a total within 2 of ``S`` (the flush boundary), split at random.
    """
    limit = (1 << (fmt.mag_bits + 1)) - 1
    count = len(a)
    kind = rng.integers(0, 5, size=count)
    total = (a & fmt.mag_mask) + (b & fmt.mag_mask) + rng.integers(-2, 3, size=count)
    total = np.clip(total, 0, 2 * limit)
    split = np.clip(rng.integers(0, limit + 1, size=count), total - limit, np.minimum(total, limit))
    offset_a = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3],
        [rng.integers(0, limit + 1, size=count), 0, limit, rng.choice([0, limit], size=count)],
        split,
    )
    offset_b = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3],
        [rng.integers(0, limit + 1, size=count), 0, limit, limit - offset_a],
        total - split,
    )
    return offset_a, offset_b


def lowered_terms(unit, a, b, offset_a, offset_b, output):
    """Simulate ``unit`` on lowered operands (word, offset) pair by pair; ``(term, nan, ovf)``.

    ``output`` names the unit's term member: ``"term"`` (signed) or ``"term_sm"``.
    """
    fmt = unit.config.fmt
    m = Module()
    m.submodules.unit = unit
    operands = [Signal(block_operand_layout(fmt), name=name) for name in ("a", "b")]
    m.d.comb += [unit.a.eq(lower_operand(m, operands[0])), unit.b.eq(lower_operand(m, operands[1]))]
    latency = unit.latency
    layout = block_operand_layout(fmt)
    raw_a = pack_payloads(layout, {"word": a, "offset": offset_a})
    raw_b = pack_payloads(layout, {"word": b, "offset": offset_b})
    results = []

    async def testbench(ctx):
        for cycle in range(len(a) + latency):
            if cycle < len(a):
                ctx.set(operands[0].as_value(), int(raw_a[cycle]))
                ctx.set(operands[1].as_value(), int(raw_b[cycle]))
            if latency:
                await ctx.tick()
                if cycle + 1 < latency:
                    continue
            term = ctx.get(getattr(unit, output))
            if output == "term":
                results.append((term["acc"], term["nan"], term["overflow"]))
            else:
                sign = -1 if term["negative"] else 1
                results.append((sign * term["magnitude"], term["nan"], term["overflow"]))

    if latency:
        m.d.comb += unit.en.eq(1)
    sim = Simulator(m)
    if latency:
        sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    got = np.array(results[: len(a)], dtype=np.int64)
    return got[:, 0], got[:, 1].astype(bool), got[:, 2].astype(bool)


def every_pair_with_offsets(fmt, seed):
    codes = np.arange(1 << fmt.width)
    a, b = (x.ravel() for x in np.meshgrid(codes, codes, indexing="ij"))
    offset_a, offset_b = pair_offsets(np.random.default_rng(seed), a, b, fmt)
    return a, b, offset_a, offset_b


def check_terms(got, a, b, offset_a, offset_b, config):
    expected = golden.mac_terms(a, b, config, offset=offset_a + offset_b)
    for name, g, e in zip(("term", "nan", "overflow"), got, expected, strict=True):
        np.testing.assert_array_equal(g, e, err_msg=name)


@pytest.mark.parametrize(
    ("config", "signed", "registered"),
    [
        (WRAPPING, False, False),
        pytest.param(SATURATING, True, True, marks=pytest.mark.slow),
        pytest.param(MacConfig(pal8), False, True, marks=pytest.mark.slow),
    ],
    ids=["wrapping-table", "saturating-signed-registered", "exact-registered"],
)
def test_table_term_every_pal8_pair_with_offsets(config, signed, registered):
    a, b, offset_a, offset_b = every_pair_with_offsets(pal8, 11)
    # The mixture reaches every kind of case: flushed, S' = 0 and 1, overflowing terms.
    lowered = (a & 127) + (b & 127) - offset_a - offset_b
    special = ((a & 127) == 0) | ((b & 127) == 0)
    assert (lowered[~special] < 0).any()
    assert {0, 1} <= set(lowered[~special].tolist())
    unit = PALTableProductTerm(
        config=config, signed=signed, registered=registered, block_scaled=True
    )
    got = lowered_terms(unit, a, b, offset_a, offset_b, "term" if signed else "term_sm")
    check_terms(got, a, b, offset_a, offset_b, config)
    # Narrow windows overflow on the top products (reached); the exact one never does.
    assert got[2].any() == golden.term_table(config)[1].any()


@pytest.mark.parametrize(
    ("config", "pipelined"),
    [
        (WRAPPING, True),
        pytest.param(MacConfig(pal8), False, marks=pytest.mark.slow),
        # F = 1: S' = 0 lies an octave below every unscaled product (the shifter's range grows).
        pytest.param(MacConfig(PALFormat(int_bits=6, frac_bits=1)), True, marks=pytest.mark.slow),
    ],
    ids=["wrapping-pipelined", "exact", "i6f1"],
)
def test_logic_term_every_pal8_pair_with_offsets(config, pipelined):
    a, b, offset_a, offset_b = every_pair_with_offsets(config.fmt, 12)
    unit = PALProductTerm(config=config, pipelined=pipelined, block_scaled=True)
    got = lowered_terms(unit, a, b, offset_a, offset_b, "term_sm")
    check_terms(got, a, b, offset_a, offset_b, config)


def test_logic_term_pal16_random_offsets():
    """pal16's logic term (its table would be too big) lowers its log sum alike."""
    rng = np.random.default_rng(16)
    config = MacConfig(pal16)
    fmt = config.fmt
    a = rng.integers(0, 1 << 16, size=3000)
    b = rng.integers(0, 1 << 16, size=3000)
    a[:40], b[40:80] = fmt.zero_code, fmt.nan_code
    offset_a, offset_b = pair_offsets(rng, a, b, fmt)
    unit = PALProductTerm(config=config, pipelined=True, block_scaled=True)
    got = lowered_terms(unit, a, b, offset_a, offset_b, "term_sm")
    check_terms(got, a, b, offset_a, offset_b, config)


def test_lowered_operand_fields():
    """``log = E - offset`` for live words; zero and NaN words lie below every live sum."""
    fmt = pal8
    layout = lowered_operand_layout(fmt)
    assert layout.size == fmt.mag_bits + 2 + 2
    m = Module()
    operand = Signal(block_operand_layout(fmt))
    lowered = lower_operand(m, operand)
    cases = [(0x01, 0), (0x7F, 0), (0xFF, 3), (0x01, 255), (0x40, 64), (0x00, 0), (0x80, 9)]
    got = []

    async def testbench(ctx):
        for word, offset in cases:
            ctx.set(operand, {"word": word, "offset": offset})
            got.append(ctx.get(lowered))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    for (word, offset), value in zip(cases, got, strict=True):
        special = word & fmt.mag_mask == 0
        log = -(1 << (fmt.mag_bits + 1)) if special else (word & fmt.mag_mask) - offset
        assert (value["log"], value["sign"], value["nan"]) == (
            log,
            word >> fmt.mag_bits,
            int(word == fmt.nan_code),
        )
    # The most negative live sum of a zero word and the largest live log stays negative.
    assert -(1 << (fmt.mag_bits + 1)) + fmt.mag_mask < 0


def test_block_scaled_mac_dot_products():
    """PALTableMac lowers its block-scaled operands itself: dot products with offsets."""
    rng = np.random.default_rng(5)
    config = WRAPPING
    layout = block_operand_layout(pal8)
    lengths = rng.integers(1, 30, size=12)
    a = rng.integers(0, 256, size=lengths.sum())
    b = rng.integers(0, 256, size=lengths.sum())
    offset_a, offset_b = pair_offsets(rng, a, b, pal8)
    last = np.zeros(len(a), dtype=np.int64)
    last[np.cumsum(lengths) - 1] = 1
    dut = PALTableMac(config=config, block_scaled=True)
    fields = {
        "a": {"word": a, "offset": offset_a},
        "b": {"word": b, "offset": offset_b},
        "last": last,
    }
    assert dut.i.payload.shape()["a"].shape == layout
    results, _ = simulate_streams(
        dut,
        {"i": pack_payloads(dut.i.payload.shape(), fields).tolist()},
        {"o": len(lengths)},
        backpressure=4,
        name="block_mac",
    )
    out = unpack_payloads(dut.o.payload.shape(), results["o"])
    term, nan, overflow = golden.mac_terms(a, b, config, offset=offset_a + offset_b)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # Reference: the wrapping sum of the golden terms of each dot product, flags sticky.
    low, span = config.acc_min, 1 << config.acc_bits
    for index, (start, length) in enumerate(zip(starts, lengths, strict=True)):
        acc, wrapped = 0, False
        for t in term[start : start + length]:
            total = acc + int(t)
            wrapped |= not config.acc_min <= total <= config.acc_max
            acc = (total - low) % span + low
        assert out["acc"][index] == acc
        assert out["nan"][index] == nan[start : start + length].any()
        assert out["overflow"][index] == (overflow[start : start + length].any() or wrapped)


# --- The array ------------------------------------------------------------------------------


def block_matmul_on_array(arithmetic, a, b, a_scales, b_scales, *, block_size, rows, cols):
    """``a @ b`` with block scales through a block-scaled array, as a host drives it.

    The host computes the per-element offsets and the references with
    ``golden.block_offsets``, packs each lane as ``{"word", "offset"}`` and sends the
    references as the beats' scales; returns the decoded raw lanes, shape ``(M, N)``.
    """
    fmt = arithmetic.config.fmt
    k = a.shape[1]
    a_offsets, a_ref = golden.block_offsets(a_scales, fmt, per="row", block_size=block_size, k=k)
    b_offsets, b_ref = golden.block_offsets(b_scales, fmt, per="col", block_size=block_size, k=k)
    array = SystolicArray(arithmetic=arithmetic, rows=rows, cols=cols, output="raw")
    words = split_tiles(a, b, a_ref, b_ref, rows=rows, cols=cols)
    offsets = split_tiles(a_offsets, b_offsets, a_ref, b_ref, rows=rows, cols=cols)
    a_beats, b_beats = [], []
    for tile, offset in zip(words, offsets, strict=True):
        last = np.zeros(k, dtype=np.int64)
        last[-1] = 1
        a_data = {"word": tile.a.T, "offset": offset.a.T}
        a_fields = {"data": a_data, "scale": tile.a_scales, "last": last}
        a_beats += pack_payloads(array.a_layout, a_fields).tolist()
        b_fields = {"data": {"word": tile.b, "offset": offset.b}, "scale": tile.b_scales}
        b_beats += np.broadcast_to(pack_payloads(array.b_layout, b_fields), (k,)).tolist()
    results, _ = simulate_streams(
        array,
        {"a": a_beats, "b": b_beats},
        {"c": len(words) * rows},
        backpressure=3,
        name="block_array",
    )
    lane_bits = unsigned(Shape.cast(array.lane_shape).width)
    lanes = unpack_payloads(data.ArrayLayout(lane_bits, cols), np.array(results["c"], dtype=object))
    per_tile = [lanes[t * rows : (t + 1) * rows].astype(object) for t in range(len(words))]
    decoded = [decode_lanes(array.lane_shape, tile) for tile in per_tile]
    return assemble(words, decoded, (a.shape[0], b.shape[1]))


def random_block_operands(rng, m, k, n, block_size, fmt):
    """Random codes with zeros and NaNs, random E8M0 block scales (some offsets saturate)."""
    a = rng.integers(0, 1 << fmt.width, size=(m, k))
    b = rng.integers(0, 1 << fmt.width, size=(k, n))
    for codes in (a, b):
        mask = rng.random(codes.shape) < 0.06
        codes[mask] = rng.choice([fmt.zero_code, fmt.nan_code], size=mask.sum())
    a[0, 0], b[-1, -1] = fmt.nan_code, fmt.zero_code
    blocks = -(-k // block_size)
    a_scales = rng.integers(-40, 41, size=(m, blocks))
    b_scales = rng.integers(-40, 41, size=(blocks, n))
    return a, b, a_scales, b_scales


@pytest.mark.parametrize(
    ("block_size", "m", "k", "n", "term", "pipelined"),
    [
        (1, 3, 5, 4, "table", False),
        (4, 5, 10, 3, "signed_table", True),
        (32, 4, 70, 5, "table", True),
        (4, 2, 9, 6, "logic", False),
        pytest.param(32, 6, 33, 7, "logic", True, marks=pytest.mark.slow),
    ],
)
def test_array_block_scaled_random_matmuls(block_size, m, k, n, term, pipelined):
    """Random shapes, K not a multiple of the block, zero and NaN codes, saturated offsets."""
    rng = np.random.default_rng(block_size * 100 + k)
    config = WRAPPING if term != "logic" else SATURATING
    a, b, a_scales, b_scales = random_block_operands(rng, m, k, n, block_size, pal8)
    arithmetic = PALArithmetic(config=config, pipelined=pipelined, term=term, block_scaled=True)
    got = block_matmul_on_array(
        arithmetic, a, b, a_scales, b_scales, block_size=block_size, rows=2, cols=3
    )
    expected = arithmetic.golden_matmul(
        a, b, a_scales=a_scales, b_scales=b_scales, mode="raw", block_size=block_size
    )
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert (expected["acc"] != 0).any() and expected["nan"].any()


def test_array_block_scaled_quantized_heavy_tails():
    """Float operands quantised per block (golden.quantize_blocks), as the driver would."""
    rng = np.random.default_rng(3)
    fmt = PALFormat(int_bits=3, frac_bits=4)
    config = MacConfig(fmt, acc_bits=32, acc_frac_bits=14)
    x = rng.standard_t(3, size=(5, 40)) * np.exp2(rng.integers(-6, 7, size=(5, 40)) // 4)
    y = rng.standard_t(3, size=(40, 4))
    x[1, :] = 0.0
    a, a_scales = golden.quantize_blocks(x, fmt, per="row", block_size=8)
    b, b_scales = golden.quantize_blocks(y, fmt, per="col", block_size=8)
    arithmetic = PALArithmetic(config=config, block_scaled=True, table_ports=2)
    got = block_matmul_on_array(arithmetic, a, b, a_scales, b_scales, block_size=8, rows=3, cols=3)
    expected = golden.matmul(a, b, config, a_scales=a_scales, b_scales=b_scales, block_size=8)
    np.testing.assert_array_equal(got["acc"], expected.acc)
    np.testing.assert_array_equal(got["scale"], expected.scale_exp)
    np.testing.assert_array_equal(got["overflow"].astype(bool), expected.overflow)


def test_block_scaled_parameters():
    arithmetic = PALArithmetic(config=WRAPPING, block_scaled=True)
    assert arithmetic.a_shape == block_operand_layout(pal8) == arithmetic.b_shape
    with pytest.raises(TypeError, match="block_scaled"):
        PALArithmetic(config=WRAPPING, block_scaled=1)
    with pytest.raises(TypeError, match="block_scaled"):
        PALTableProductTerm(config=WRAPPING, block_scaled="yes")
    with pytest.raises(TypeError, match="block_scaled"):
        PALProductTerm(config=WRAPPING, block_scaled=None)
    codes = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="block_size"):
        arithmetic.golden_matmul(codes, codes.T, a_scales=None, b_scales=None, mode="raw")
    with pytest.raises(ValueError, match="block_size"):
        PALArithmetic(config=WRAPPING).golden_matmul(
            codes, codes.T, a_scales=None, b_scales=None, mode="raw", block_size=4
        )
