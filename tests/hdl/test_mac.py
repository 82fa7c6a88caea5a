"""PALMac against the golden model: pal8 (every operand pair), narrow accumulators, readouts.

Every batch of dot products runs back to back through one simulation and is compared bit for
bit with :func:`palhdl.sim.golden.matmul`. pal16 and the odd format I = 5, F = 6 run over
100,000 products each at the end.
"""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.sim import Simulator

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.hdl.mac import PALMac, PALProductTerm, accumulate, accumulator_layout, term_layout
from palhdl.sim import golden
from palhdl.sim.pysim import pack_payloads, simulate_streams, unpack_payloads

NARROW = MacConfig(pal8, acc_bits=16, acc_frac_bits=6)
#: Wrapping accumulator and a term window narrower than the accumulator.
WRAP = MacConfig(pal8, acc_bits=16, acc_frac_bits=6, term_bits=11, saturate=False)
#: Saturating accumulator with a narrow term window.
WINDOW = MacConfig(pal8, acc_bits=20, acc_frac_bits=8, term_bits=12, mantissa_bits=5)


def rtl_dot_products(
    a_rows, b_rows, config, *, pipelined, backpressure=None, readout="raw", scales=None
):
    """Dot products ``a_rows[d] . b_rows[d]`` computed back to back by one simulated PALMac.

    Returns ``(acc, nan, overflow)`` int64 arrays, one entry per dot product, plus the readout
    values (``value`` field) when ``readout`` converts. ``scales`` (one per dot product) go with
    the last pair of each.
    """
    dut = PALMac(config=config, pipelined=pipelined, readout=readout)
    lengths = np.array([len(row) for row in a_rows])
    a = np.concatenate(a_rows)
    b = np.concatenate(b_rows)
    ends = np.cumsum(lengths)
    first = np.zeros(len(a), dtype=np.int64)
    last = np.zeros(len(a), dtype=np.int64)
    first[ends - lengths] = 1
    last[ends - 1] = 1
    fields = {"a": a, "b": b, "first": first, "last": last}
    if readout != "raw":
        fields["scale"] = np.zeros(len(a), dtype=np.int64)
        fields["scale"][ends - 1] = scales
    results, _ = simulate_streams(
        dut,
        {"i": pack_payloads(dut.i.payload.shape(), fields).tolist()},
        {"o": len(lengths)},
        backpressure=backpressure,
        name=f"mac_{config.fmt}_{readout}",
    )
    outputs = unpack_payloads(dut.o.payload.shape(), results["o"])
    return tuple(outputs.values())


def golden_dot_products(a_rows, b_rows, config):
    """The golden :class:`~palhdl.sim.golden.MacResult` fields of every dot product.

    Dot products of equal length go through one :func:`~palhdl.sim.golden.matmul` (the
    diagonal of ``A @ B``); returns ``(acc, nan, overflow)`` arrays in input order.
    """
    count = len(a_rows)
    acc = np.zeros(count, dtype=np.int64)
    nan = np.zeros(count, dtype=bool)
    overflow = np.zeros(count, dtype=bool)
    lengths = np.array([len(row) for row in a_rows])
    for length in np.unique(lengths):
        index = np.flatnonzero(lengths == length)
        a = np.stack([a_rows[d] for d in index])
        b = np.stack([b_rows[d] for d in index]).T
        result = golden.matmul(a, b, config)
        diagonal = np.arange(len(index))
        acc[index] = result.acc[diagonal, diagonal]
        nan[index] = result.nan[diagonal, diagonal]
        overflow[index] = result.overflow[diagonal, diagonal]
    return acc, nan, overflow


def split_rows(a, b, rng, max_k):
    """Cut operand streams into dot products of random lengths ``1 .. max_k``."""
    cuts = []
    position = 0
    while position < len(a):
        position = min(position + int(rng.integers(1, max_k + 1)), len(a))
        cuts.append(position)
    return np.split(a, cuts[:-1]), np.split(b, cuts[:-1])


def all_pairs(fmt, rng):
    """Every ``(a, b)`` code pair of ``fmt`` once, in random order."""
    codes = np.arange(1 << fmt.width)
    a, b = np.meshgrid(codes, codes, indexing="ij")
    order = rng.permutation(a.size)
    return a.ravel()[order], b.ravel()[order]


def check_against_golden(a_rows, b_rows, config, **kwargs):
    acc, nan, overflow = rtl_dot_products(a_rows, b_rows, config, **kwargs)
    g_acc, g_nan, g_overflow = golden_dot_products(a_rows, b_rows, config)
    np.testing.assert_array_equal(acc, g_acc)
    np.testing.assert_array_equal(nan, g_nan)
    np.testing.assert_array_equal(overflow, g_overflow)
    return g_acc, g_nan, g_overflow


@pytest.mark.slow
def test_pal8_every_pair_default_config():
    rng = np.random.default_rng(8)
    a_rows, b_rows = split_rows(*all_pairs(pal8, rng), rng, max_k=64)
    acc, nan, overflow = check_against_golden(a_rows, b_rows, MacConfig(pal8), pipelined=False)
    # The data has what the test needs: both signs, clean and NaN results, varied K.
    clean = ~nan
    assert (acc[clean] > 0).any() and (acc[clean] < 0).any() and clean.sum() > 100
    assert {1, 64} <= {len(row) for row in a_rows}
    assert not overflow.any()  # the default pal8 accumulator is exact


@pytest.mark.slow
def test_pal8_every_pair_narrow_accumulator_pipelined():
    # 16-bit accumulator, LSB 2**-6: small terms are rounded, large ones clamp, sums saturate.
    rng = np.random.default_rng(16)
    a_rows, b_rows = split_rows(*all_pairs(pal8, rng), rng, max_k=12)
    _, nan, overflow = check_against_golden(a_rows, b_rows, NARROW, pipelined=True)
    assert (overflow & ~nan).any() and (~overflow & ~nan).any()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "pipelined"), [(WRAP, True), (WINDOW, False)], ids=["wrap", "window"]
)
def test_pal8_every_pair_term_window(config, pipelined):
    # Terms beyond the window overflow (dropped when wrapping, clamped when saturating).
    rng = np.random.default_rng(config.acc_bits)
    a_rows, b_rows = split_rows(*all_pairs(pal8, rng), rng, max_k=12)
    acc, nan, overflow = check_against_golden(a_rows, b_rows, config, pipelined=pipelined)
    assert (overflow & ~nan).any() and (~overflow & ~nan).sum() > 100
    assert (acc[~overflow & ~nan] != 0).any()


def golden_running_sums(a, b, config):
    """Golden accumulators after each pair of one run: row ``p`` of ``A @ b`` where ``A`` holds
    ``a[: p + 1]`` followed by zero codes (a zero term changes neither sum nor flags)."""
    k = len(a)
    prefixes = np.where(np.tri(k, dtype=bool), a[None, :], 0)
    result = golden.matmul(prefixes, b[:, None], config)
    return result.acc[:, 0], result.nan[:, 0], result.overflow[:, 0]


@pytest.mark.parametrize("config", [NARROW, WRAP], ids=["saturate", "wrap"])
@pytest.mark.slow
def test_narrow_backpressure_running_sums(config):
    # `last` on every pair of long runs: the outputs are the running sums, through saturation
    # or wrap (sticky overflow) and sign changes; `first` only at the start of a run; random
    # stalls.
    rng = np.random.default_rng(3)
    fmt = pal8
    count = 3000
    magnitude = rng.integers(fmt.bias - 6 * fmt.units, fmt.bias + 12 * fmt.units, count)
    a = magnitude | (rng.integers(0, 2, count) << fmt.mag_bits)
    b = rng.integers(fmt.bias, fmt.bias + 4 * fmt.units, count)
    a_rows, b_rows = split_rows(a, b, rng, max_k=400)
    expected = [
        np.concatenate(field)
        for field in zip(
            *map(golden_running_sums, a_rows, b_rows, [config] * len(a_rows)), strict=True
        )
    ]
    g_acc, _, g_overflow = expected
    assert g_overflow.any() and (~g_overflow).any() and (np.diff(np.sign(g_acc)) != 0).any()
    if not config.saturate:
        # Some sums wrapped past the top or bottom: consecutive running sums jump by more
        # than any term can move them.
        assert (np.abs(np.diff(g_acc)) > config.term_max).any()
    starts = np.zeros(count, dtype=np.int64)
    starts[np.cumsum([0] + [len(row) for row in a_rows[:-1]])] = 1
    fields = {"a": a, "b": b, "first": starts, "last": np.ones(count, np.int64)}
    for pipelined in (False, True):
        dut = PALMac(config=config, pipelined=pipelined)
        payloads = pack_payloads(dut.i.payload.shape(), fields)
        results, _ = simulate_streams(dut, {"i": payloads.tolist()}, {"o": count}, backpressure=7)
        outputs = unpack_payloads(dut.o.payload.shape(), results["o"]).values()
        for got, want in zip(outputs, expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_first_dot_product_after_reset_needs_no_first():
    config = MacConfig(pal8)
    one, two = pal8.bias, pal8.bias + pal8.units
    dut = PALMac(config=config)
    fields = {"a": [one, two, two], "b": [one, one, two], "first": [0, 0, 1], "last": [0, 1, 1]}
    payloads = pack_payloads(dut.i.payload.shape(), fields)
    results, _ = simulate_streams(dut, {"i": payloads.tolist()}, {"o": 2})
    outputs = unpack_payloads(dut.o.payload.shape(), results["o"])
    acc, nan, overflow = outputs["acc"], outputs["nan"], outputs["overflow"]
    unit = 1 << config.acc_frac_bits
    assert acc.tolist() == [3 * unit, 4 * unit]  # 1*1 + 2*1, then a new dot product 2*2
    assert not nan.any() and not overflow.any()


@pytest.mark.parametrize(
    ("pipelined", "readout", "latency"),
    [(False, "raw", 1), (True, "raw", 4), (False, "pal", 1), (True, "float32", 6)],
)
def test_latency_is_cycles_from_last_pair_to_result(pipelined, readout, latency):
    # Measured, not read from the unit: one pair with first and last, output always ready.
    dut = PALMac(config=NARROW, pipelined=pipelined, readout=readout)
    assert dut.latency == latency
    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    measured = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.payload.a.as_value(), pal8.bias)
        ctx.set(dut.i.payload.b.as_value(), pal8.bias)
        ctx.set(dut.i.payload.first, 1)
        ctx.set(dut.i.payload.last, 1)
        ctx.set(dut.i.valid, 1)
        await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        cycles = 0
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            cycles += 1
        measured.append((cycles, ctx.get(dut.o.payload.acc)))

    sim.add_testbench(testbench)
    sim.run_until(1e-6)
    # Counted from the clock edge that takes the input: latency 1 is valid right after it.
    assert measured == [(latency - 1, 1 << NARROW.acc_frac_bits)]


# --- readouts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("readout", "pipelined", "backpressure"),
    [("float32", False, None), ("float32", True, 11), ("pal", False, 12), ("pal", True, None)],
)
@pytest.mark.parametrize(
    "config",
    [pytest.param(MacConfig(pal8), marks=pytest.mark.slow), NARROW],
    ids=["exact", "narrow"],
)
def test_readouts(readout, pipelined, backpressure, config):
    rng = np.random.default_rng(len(readout) + pipelined)
    a = rng.integers(0, 256, 3000)
    b = rng.integers(0, 256, 3000)
    a_rows, b_rows = split_rows(a, b, rng, max_k=8)
    scales = rng.integers(-40, 41, len(a_rows))
    acc, nan, overflow, value = rtl_dot_products(
        a_rows,
        b_rows,
        config,
        pipelined=pipelined,
        backpressure=backpressure,
        readout=readout,
        scales=scales,
    )
    g_acc, g_nan, g_overflow = golden_dot_products(a_rows, b_rows, config)
    np.testing.assert_array_equal(acc, g_acc)
    np.testing.assert_array_equal(nan, g_nan)
    np.testing.assert_array_equal(overflow, g_overflow)
    result = golden.MacResult(g_acc, g_nan, g_overflow, scales, config)
    expected = result.to_float32_bits() if readout == "float32" else result.to_pal()
    np.testing.assert_array_equal(value, expected.astype(np.int64))


# --- Verilog ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "pipelined", "readout"),
    [
        (MacConfig(pal8), False, "raw"),
        (MacConfig(pal8, acc_bits=32), True, "raw"),
        (NARROW, True, "float32"),
        (MacConfig(pal16), False, "pal"),
        (MacConfig(PALFormat(int_bits=5, frac_bits=6)), True, "raw"),
        (WRAP, True, "pal"),
    ],
    ids=[
        "pal8",
        "pal8-acc32-pipelined",
        "narrow-float32",
        "pal16-pal",
        "i5f6-pipelined",
        "wrap-pal",
    ],
)
def test_verilog_export(config, pipelined, readout):
    dut = PALMac(config=config, pipelined=pipelined, readout=readout)
    text = verilog.convert(dut, name="pal_mac")
    assert "module pal_mac" in text
    assert "i__payload" in text and "o__payload" in text


# --- the PE building blocks on their own ----------------------------------------------------


def run_combinational(m, inputs, outputs, rows):
    """Drive ``inputs`` (Values) with each row of integers, return ``outputs`` (Values) read
    back, as a list of tuples, all in one simulation."""
    sim = Simulator(m)
    results = []

    async def testbench(ctx):
        for row in rows:
            for port, value in zip(inputs, row, strict=True):
                ctx.set(port, int(value))
            results.append(tuple(ctx.get(port) for port in outputs))

    sim.add_testbench(testbench)
    sim.run()
    return results


@pytest.mark.parametrize(
    ("config", "pairs"),
    [pytest.param(NARROW, None, marks=pytest.mark.slow), (MacConfig(pal8, acc_bits=32), 8000)],
    ids=["narrow-every-pair", "32-random"],
)
def test_product_term_both_forms(config, pairs):
    term = PALProductTerm(config=config)
    codes = np.arange(256)
    a, b = (x.ravel() for x in np.meshgrid(codes, codes))
    if pairs is not None:
        pick = np.random.default_rng(pairs).choice(len(a), pairs, replace=False)
        a, b = a[pick], b[pick]
    outputs = [term.term.acc, term.term.nan, term.term.overflow]
    outputs += [term.term_sm.magnitude, term.term_sm.negative, term.term_sm.nan]
    outputs += [term.term_sm.overflow]
    rows = run_combinational(
        term, [term.a.as_value(), term.b.as_value()], outputs, zip(a, b, strict=True)
    )
    acc, nan, overflow, magnitude, negative, sm_nan, sm_overflow = np.array(rows).T
    g_term, g_nan, g_overflow = golden.mac_terms(a, b, config)
    np.testing.assert_array_equal(acc, g_term)
    np.testing.assert_array_equal(nan, g_nan)
    np.testing.assert_array_equal(overflow, g_overflow)
    np.testing.assert_array_equal(np.where(negative == 1, -magnitude, magnitude), g_term)
    np.testing.assert_array_equal(negative[magnitude != 0], g_term[magnitude != 0] < 0)
    live = (a & pal8.mag_mask != 0) & (b & pal8.mag_mask != 0)
    assert not negative[~live].any()
    np.testing.assert_array_equal(sm_nan, g_nan)
    np.testing.assert_array_equal(sm_overflow, g_overflow)


@pytest.mark.parametrize("saturate", [True, False], ids=["saturate", "wrap"])
@pytest.mark.parametrize("form", ["signed", "sign-magnitude"])
def test_accumulate_saturates_or_wraps_exactly(form, saturate):
    # Expected values are plain integer clipping or wrapping, independent of the golden model.
    config = MacConfig(pal8, acc_bits=12, acc_frac_bits=0, saturate=saturate)
    top = config.acc_max  # 2047
    m = Module()
    acc = Signal(accumulator_layout(config.accumulator))
    layout = accumulator_layout(config.accumulator)
    if form == "sign-magnitude":
        layout = term_layout(config.accumulator)
    term = Signal(layout)
    total = accumulate(m, config.accumulator, acc, term)
    rng = np.random.default_rng(12)
    special = [0, 1, -1, top, -top, top - 1, -top + 1, top // 2, -(top // 2) - 1]
    # A wrapping accumulator also holds -2**11; a term never exceeds acc_max in magnitude.
    bottom = -top if saturate else -top - 1
    accs = rng.integers(bottom, top + 1, 1500)
    terms = rng.integers(-top, top + 1, 1500)
    pairs = [(x, y) for x in [*special, bottom] for y in special]
    pairs += list(zip(accs, terms, strict=True))
    rows = []
    for x, y in pairs:
        flags = rng.integers(0, 2, 4)
        if form == "signed":
            encoded = [y, flags[2], flags[3]]
        else:
            encoded = [abs(y), int(y < 0), flags[2], flags[3]]
        rows.append([x, flags[0], flags[1], *encoded])
    inputs = [acc.acc, acc.nan, acc.overflow] + [getattr(term, name) for name, _ in layout]
    results = run_combinational(m, inputs, [total.acc, total.nan, total.overflow], rows)
    for row, (got_acc, got_nan, got_overflow) in zip(rows, results, strict=True):
        x, acc_nan, acc_overflow = row[:3]
        y = row[3] if form == "signed" else (-row[3] if row[4] else row[3])
        term_nan, term_overflow = row[-2:]
        exact = x + y
        if saturate:
            assert got_acc == min(max(exact, -top), top)
        else:
            assert got_acc == (exact + top + 1) % (2 * top + 2) - top - 1
        assert got_nan == (acc_nan | term_nan)
        assert got_overflow == (acc_overflow | term_overflow | (not bottom <= exact <= top))


@pytest.mark.parametrize(
    "config",
    [
        MacConfig(pal8, acc_bits=8, acc_frac_bits=-4096),  # every term rounds to 0
        MacConfig(pal8, acc_bits=8, acc_frac_bits=4096),  # every term overflows
        MacConfig(pal8, mantissa_bits=20, acc_bits=8, acc_frac_bits=0),  # mantissa > acc
        MacConfig(pal8, mantissa_bits=1, acc_bits=8, acc_frac_bits=3),  # mantissa 4 = 2**(W+1)
        MacConfig(PALFormat(int_bits=2, frac_bits=1), mantissa_bits=1, acc_bits=8),
        MacConfig(pal8, mantissa_bits=60, acc_bits=62, acc_frac_bits=40),
        MacConfig(pal8, mantissa_bits=1, acc_bits=8, acc_frac_bits=3, term_bits=4),
        MacConfig(pal8, mantissa_bits=1, acc_bits=12, acc_frac_bits=5, term_bits=3, saturate=False),
        MacConfig(
            pal8, mantissa_bits=7, acc_bits=40, acc_frac_bits=-2, term_bits=2, saturate=False
        ),
    ],
    ids=[
        "all-zero",
        "all-overflow",
        "wide-mantissa",
        "tiny-mantissa",
        "pal4",
        "widest",
        "tiny-window",
        "tiny-window-wrap",
        "narrowest-window-wrap",
    ],
)
def test_product_term_extreme_configs(config):
    term = PALProductTerm(config=config)
    rng = np.random.default_rng(config.acc_frac_bits & 0xFFFF)
    a, b = rng.integers(0, 1 << config.fmt.width, (2, 2000))
    outputs = [term.term.acc, term.term.nan, term.term.overflow]
    rows = run_combinational(
        term, [term.a.as_value(), term.b.as_value()], outputs, zip(a, b, strict=True)
    )
    for got, want in zip(
        np.array(rows, dtype=object).T, golden.mac_terms(a, b, config), strict=True
    ):
        np.testing.assert_array_equal(got.astype(np.int64), want)


# --- pal16 and the odd format I = 5, F = 6: 100,000 products each ---


def edge_codes(fmt):
    """Zero, NaN, +-min, +-max and +-1 as codes."""
    sign = fmt.sign_mask
    return np.array(
        [
            fmt.zero_code,
            fmt.nan_code,
            fmt.min_code,
            sign | fmt.min_code,
            fmt.max_code,
            sign | fmt.max_code,
            fmt.bias,
            sign | fmt.bias,
        ]
    )


def window_codes(config, count, rng, *, top):
    """Random codes with logs in octaves ``[(-afb - W - 4) / 2, top / 2]``: their products
    range from below the accumulator's LSB (rounded to 0) to octave ``top``."""
    fmt = config.fmt
    low = (-config.acc_frac_bits - config.mantissa_bits - 4) * fmt.units // 2
    magnitude = np.clip(fmt.bias + rng.integers(low, top * fmt.units // 2, count), 1, fmt.mag_mask)
    return magnitude | (rng.integers(0, 2, count) * fmt.sign_mask)


def operand_rows(config, rng, products):
    """Dot products of ``products`` pairs in all: edge cases and uniformly random codes
    (mostly clamped terms), then codes in the accumulator's window (mostly clean sums)."""
    fmt = config.fmt
    clamp = config.acc_bits - config.acc_frac_bits  # products from this octave on clamp
    edges = edge_codes(fmt)
    edge_a, edge_b = (x.ravel() for x in np.meshgrid(edges, edges))
    per_edge = products * 6 // 1000  # 600 partners per edge code in 100,000 products
    others = window_codes(config, per_edge, rng, top=clamp + 2)
    uniform = products // 5
    a = np.concatenate(
        [
            edge_a,
            np.repeat(edges, per_edge),
            np.tile(others, len(edges)),
            rng.integers(0, 1 << fmt.width, uniform),
        ]
    )
    b = np.concatenate(
        [
            edge_b,
            np.tile(others, len(edges)),
            np.repeat(edges, per_edge),
            rng.integers(0, 1 << fmt.width, uniform),
        ]
    )
    order = rng.permutation(len(a))
    a_rows, b_rows = split_rows(a[order], b[order], rng, max_k=64)
    rest = products - len(a)
    window = [window_codes(config, rest, rng, top=clamp - 4) for _ in range(2)]
    more_a, more_b = split_rows(*window, rng, max_k=64)
    return a_rows + more_a, b_rows + more_b


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "pipelined"),
    [(pal16, True), (PALFormat(int_bits=5, frac_bits=6), False)],
    ids=["pal16", "i5f6"],
)
def test_wide_formats_random_and_edges(fmt, pipelined, random_vectors):
    config = MacConfig(fmt)
    rng = np.random.default_rng(fmt.width)
    products = random_vectors(100_000)
    a_rows, b_rows = operand_rows(config, rng, products)
    a, b = np.concatenate(a_rows), np.concatenate(b_rows)
    assert len(a) == products
    # The products cover rounded (below the LSB), exact and clamped terms.
    mag_a, mag_b = a & fmt.mag_mask, b & fmt.mag_mask
    live = (mag_a != 0) & (mag_b != 0)
    octave = (mag_a + mag_b - 2 * fmt.bias) >> fmt.frac_bits
    shift = octave - config.mantissa_bits + config.acc_frac_bits
    assert (live & (shift < 0) & (shift > -config.mantissa_bits)).sum() > products // 100
    assert (live & (shift >= 0) & (shift < config.acc_bits - config.mantissa_bits - 2)).any()
    assert (live & (shift >= config.acc_bits - config.mantissa_bits - 1)).sum() > products // 100
    acc, nan, overflow = check_against_golden(a_rows, b_rows, config, pipelined=pipelined)
    clean = ~nan & ~overflow
    assert (acc[clean] > 0).sum() > products // 200 and (acc[clean] < 0).sum() > products // 200
    assert (overflow & ~nan).any() and nan.any()
