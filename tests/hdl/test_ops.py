"""PALMultiplier and PALAdder against the golden model: pal8 exhaustively, stalls, latency, Verilog.

Every batch of operand pairs runs back to back through one simulation and is compared bit for
bit with :mod:`palhdl.sim.golden` (whose own tests check it against exact arithmetic). pal16
and the odd format I = 5, F = 6 run through :func:`check_wide_format` (edge cases plus 100,000
random pairs per operation); constructor checks are in ``test_ops_params.py``.
"""

import numpy as np
import pytest
from amaranth.back import verilog

from palhdl.format import PALFormat, pal8, pal16
from palhdl.hdl.ops import PALAdder, PALMultiplier
from palhdl.sim import golden
from palhdl.sim.pysim import pack_payloads, simulate_stream, simulate_streams
from palhdl.synth.toolchain import use_yowasp_env
from palhdl.tables import db_table, sb_table

#: Golden reference of each (unit, select bit) pair.
GOLDEN = {
    (PALMultiplier, PALMultiplier.OP_MUL): golden.mul,
    (PALMultiplier, PALMultiplier.OP_DIV): golden.div,
    (PALAdder, 0): golden.add,
    (PALAdder, 1): golden.sub,
}


def rtl_binary(unit, a, b, select, fmt, *, pipelined=False, backpressure=None):
    """``unit(fmt, pipelined)`` applied to code arrays ``a``, ``b`` with select bits ``select``.

    ``select`` is the payload's ``op`` (:class:`PALMultiplier`) or ``sub`` (:class:`PALAdder`)
    bit; the three arrays broadcast together. One simulation for the whole batch; returns the
    result codes (``fmt.code_dtype``) in the broadcast shape.
    """
    a = golden.check_codes("a", a, fmt)
    b = golden.check_codes("b", b, fmt)
    a, b, select = np.broadcast_arrays(a, b, np.asarray(select, dtype=np.int64))
    dut = unit(fmt=fmt, pipelined=pipelined)
    select_name = "op" if unit is PALMultiplier else "sub"
    fields = {"a": a.ravel(), "b": b.ravel(), select_name: select.ravel()}
    raw = simulate_stream(
        dut,
        pack_payloads(dut.i.payload.shape(), fields),
        backpressure=backpressure,
        name=f"{unit.__name__}_{fmt}",
    )
    return raw.astype(fmt.code_dtype).reshape(a.shape)


def rtl_mul(a, b, fmt, *, pipelined=False, backpressure=None):
    """``a * b`` by a simulated :class:`PALMultiplier`."""
    return rtl_binary(
        PALMultiplier,
        a,
        b,
        PALMultiplier.OP_MUL,
        fmt,
        pipelined=pipelined,
        backpressure=backpressure,
    )


def rtl_div(a, b, fmt, *, pipelined=False, backpressure=None):
    """``a / b`` by a simulated :class:`PALMultiplier`."""
    return rtl_binary(
        PALMultiplier,
        a,
        b,
        PALMultiplier.OP_DIV,
        fmt,
        pipelined=pipelined,
        backpressure=backpressure,
    )


def rtl_add(a, b, fmt, *, pipelined=False, backpressure=None):
    """``a + b`` by a simulated :class:`PALAdder`."""
    return rtl_binary(PALAdder, a, b, 0, fmt, pipelined=pipelined, backpressure=backpressure)


def rtl_sub(a, b, fmt, *, pipelined=False, backpressure=None):
    """``a - b`` by a simulated :class:`PALAdder`."""
    return rtl_binary(PALAdder, a, b, 1, fmt, pipelined=pipelined, backpressure=backpressure)


def assert_codes_equal(actual, expected, a, b, label):
    """Bit-exact comparison that reports the first mismatching operand pairs."""
    actual = np.asarray(actual, dtype=np.int64)
    expected = np.asarray(expected, dtype=np.int64)
    assert actual.shape == expected.shape
    bad = np.flatnonzero(actual != expected)
    shown = [
        f"({a.flat[i]:#x}, {b.flat[i]:#x}) -> {actual.flat[i]:#x}, want {expected.flat[i]:#x}"
        for i in bad[:8]
    ]
    assert not bad.size, f"{label}: {bad.size} of {actual.size} differ: " + "; ".join(shown)


def all_pairs(fmt):
    codes = np.arange(1 << fmt.width)
    a, b = np.meshgrid(codes, codes, indexing="ij")
    return a.ravel(), b.ravel()


# --- pal8: every operand pair, one simulation per operation ----------------------------------
# Each operation runs exhaustively on one variant; the other variant gets the random stalled
# batches below (the combinational logic is the same, only the registers differ).


@pytest.mark.parametrize(
    ("rtl", "reference", "pipelined"),
    [
        (rtl_mul, golden.mul, False),
        (rtl_div, golden.div, True),
        (rtl_add, golden.add, False),
        (rtl_sub, golden.sub, True),
    ],
    ids=["mul", "div-pipelined", "add", "sub-pipelined"],
)
@pytest.mark.slow
def test_pal8_exhaustive(rtl, reference, pipelined):
    a, b = all_pairs(pal8)
    assert a.size == 65536
    actual = rtl(a, b, pal8, pipelined=pipelined)
    assert_codes_equal(actual, reference(a, b, pal8), a, b, rtl.__name__)


# --- tiny and extreme formats ------------------------------------------------------------------


@pytest.mark.parametrize("unit", [PALMultiplier, PALAdder])
@pytest.mark.parametrize(
    "fmt",
    # I = 2, F = 3: tables (36, 37 entries) longer than the largest distance (31).
    [PALFormat(int_bits=2, frac_bits=3), PALFormat(int_bits=2, frac_bits=1)],
    ids=str,
)
def test_tiny_formats_exhaustive(unit, fmt):
    a, b = all_pairs(fmt)
    select = np.repeat([0, 1], a.size)
    a, b = np.tile(a, 2), np.tile(b, 2)
    actual = rtl_binary(unit, a, b, select, fmt, pipelined=True)
    expected = np.where(select == 1, GOLDEN[unit, 1](a, b, fmt), GOLDEN[unit, 0](a, b, fmt))
    assert_codes_equal(actual, expected, a, b, f"{unit.__name__} {fmt}")


def test_multiplier_widest_format():
    """32-bit words (31-bit log magnitudes), beyond the adder's table limit."""
    fmt = PALFormat(int_bits=18, frac_bits=13)
    rng = np.random.default_rng(32)
    a_edge, b_edge = edge_pairs(fmt, PALMultiplier)
    a = np.concatenate([a_edge, rng.integers(0, 1 << 32, 3000)])
    b = np.concatenate([b_edge, rng.integers(0, 1 << 32, 3000)])
    select = np.arange(a.size) % 2
    actual = rtl_binary(PALMultiplier, a, b, select, fmt, pipelined=True, backpressure=32)
    expected = np.where(select == 1, golden.div(a, b, fmt), golden.mul(a, b, fmt))
    assert_codes_equal(actual, expected, a, b, f"mul/div {fmt}")


# --- random stalls, operation switching every transfer ----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("pipelined", [False, True], ids=["comb", "pipelined"])
@pytest.mark.parametrize("unit", [PALMultiplier, PALAdder])
def test_pal8_mixed_operations_with_backpressure(unit, pipelined):
    rng = np.random.default_rng(8 + pipelined)
    count = 6000
    a = rng.integers(0, 1 << pal8.width, count)
    b = rng.integers(0, 1 << pal8.width, count)
    select = rng.integers(0, 2, count)
    actual = rtl_binary(unit, a, b, select, pal8, pipelined=pipelined, backpressure=17 + pipelined)
    expected = np.where(select == 1, GOLDEN[unit, 1](a, b, pal8), GOLDEN[unit, 0](a, b, pal8))
    assert set(np.unique(select)) == {0, 1}
    assert_codes_equal(actual, expected, a, b, f"{unit.__name__} mixed")


def test_wrappers_broadcast_and_validate():
    a = np.array([[0x08], [0x48]])  # 2x1 against 1x3
    b = np.array([[0x40, 0x38, 0x80]])
    for rtl, reference in [(rtl_mul, golden.mul), (rtl_add, golden.add)]:
        actual = rtl(a, b, pal8)
        assert actual.shape == (2, 3) and actual.dtype == np.uint8
        assert_codes_equal(actual, reference(a, b, pal8), *np.broadcast_arrays(a, b), "broadcast")
    with pytest.raises(ValueError, match="b holds 256"):
        rtl_div([1], [256], pal8)


# --- latency and throughput ------------------------------------------------------------------


@pytest.mark.parametrize("pipelined", [False, True], ids=["comb", "pipelined"])
@pytest.mark.parametrize(
    ("unit", "expected_latency"), [(PALMultiplier, (0, 1)), (PALAdder, (0, 2))]
)
def test_latency_property_matches_simulation(unit, expected_latency, pipelined):
    dut = unit(fmt=pal8, pipelined=pipelined)
    assert dut.latency == expected_latency[pipelined]
    count = 50
    fields = {"a": np.arange(count) + 0x30, "b": np.full(count, 0x41)}
    payloads = pack_payloads(dut.i.payload.shape(), fields)
    results, cycles = simulate_streams(dut, {"i": payloads.tolist()}, {"o": count})
    # One transfer per cycle at full rate: the last output arrives `latency` cycles after the
    # last input.
    assert cycles == count + dut.latency
    a, b = np.arange(count) + 0x30, np.full(count, 0x41)
    assert_codes_equal(np.array(results["o"]), GOLDEN[unit, 0](a, b, pal8), a, b, "latency run")


# --- Verilog ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pipelined", [False, True], ids=["comb", "pipelined"])
@pytest.mark.parametrize(
    ("unit", "fmt"),
    [(PALMultiplier, pal16), (PALAdder, pal16), (PALAdder, PALFormat(int_bits=5, frac_bits=6))],
)
def test_verilog_export(unit, fmt, pipelined):
    dut = unit(fmt=fmt, pipelined=pipelined)
    with use_yowasp_env():
        text = verilog.convert(dut, name="arith_top")
    assert "module arith_top" in text
    width = 2 * fmt.width + 1
    assert f"input [{width - 1}:0] i__payload" in text
    assert f"output [{fmt.width - 1}:0] o__payload" in text
    assert ("posedge clk" in text) == pipelined


# --- wide formats: directed edge cases plus random pairs ---


def _signed_variants(a_mag, b_mag, fmt):
    """All four sign combinations of magnitude pairs (1-D arrays of ``E``)."""
    a_mag, b_mag = np.asarray(a_mag), np.asarray(b_mag)
    pairs = [
        (a_mag | (sa * fmt.sign_mask), b_mag | (sb * fmt.sign_mask))
        for sa in (0, 1)
        for sb in (0, 1)
    ]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def edge_pairs(fmt, unit):
    """Directed operand pairs for ``unit``.

    Specials (zero, NaN) and extremes (min, 1, max, ...) crossed with each other; for the
    multiplier, results around the flush and saturation boundaries; for the adder, distances
    around 0, both table ends and the next power of two, with the larger operand at small
    (flushing after cancellation), middle and near-max (saturating) magnitudes. Every magnitude
    pair comes in all four sign combinations and, for the adder, both operand orders.
    """
    mask, bias = fmt.mag_mask, fmt.bias
    extremes = [1, 2, 3, bias - 1, bias, bias + 1, mask - 1, mask]
    special = [fmt.zero_code, fmt.nan_code, *extremes, *(e | fmt.sign_mask for e in extremes)]
    a_special, b_special = (v.ravel() for v in np.meshgrid(special, special))
    if unit is PALMultiplier:
        # Result E = Ea + Eb - bias (mul) or Ea - Eb + bias (div) around 0 and mask.
        targets = [-1, 0, 1, 2, mask - 1, mask, mask + 1, mask + 2]
        x, t = (v.ravel() for v in np.meshgrid([*extremes, bias // 2, bias + bias // 2], targets))
        x, y = np.concatenate([x, x]), np.concatenate([t + bias - x, x + bias - t])
    else:
        lengths = {len(sb_table(fmt.frac_bits)), len(db_table(fmt.frac_bits))}
        # Table ends, and the power of two past them where a ROM address would wrap around.
        table_ends = lengths | {1 << (n - 1).bit_length() for n in lengths}
        distances = {0, 1, 2, 3, mask - 1, mask} | {
            n + k for n in table_ends for k in (-2, -1, 0, 1)
        }
        # Opposite signs at d = 1 flush to zero below a larger magnitude of -db[1].
        flush = -int(db_table(fmt.frac_bits)[1])
        bigs = {*extremes, flush - 1, flush, flush + 1, flush + 2, mask - fmt.units, mask - 2}
        big, d = (v.ravel() for v in np.meshgrid(sorted(bigs), sorted(distances)))
        x, y = np.concatenate([big, big - d]), np.concatenate([big - d, big])
    keep = (x >= 1) & (x <= mask) & (y >= 1) & (y <= mask)
    a_edge, b_edge = _signed_variants(x[keep], y[keep], fmt)
    return np.concatenate([a_special, a_edge]), np.concatenate([b_special, b_edge])


def random_pairs(fmt, unit, count, rng):
    """``count`` random operand pairs. For the adder half of them are drawn at distances
    ``|Ea - Eb| < len(table) + 8`` so that the tables (a few percent of all distances at pal16)
    are exercised thoroughly; the rest, and all multiplier pairs, are uniform codes.
    """
    a = rng.integers(0, 1 << fmt.width, count)
    b = rng.integers(0, 1 << fmt.width, count)
    if unit is PALAdder:
        near = rng.random(count) < 0.5
        reach = len(sb_table(fmt.frac_bits)) + 8
        b_mag = (a & fmt.mag_mask) + rng.integers(-reach, reach + 1, count)
        b_mag = np.clip(b_mag, 1, fmt.mag_mask)
        b = np.where(near, (b & fmt.sign_mask) | b_mag, b)
    return a, b


def check_wide_format(fmt, unit, select, *, pipelined, seed, count):
    """Directed edge cases plus ``count`` random pairs through one simulation, bit for bit."""
    rng = np.random.default_rng(seed)
    a_edge, b_edge = edge_pairs(fmt, unit)
    a_rand, b_rand = random_pairs(fmt, unit, count, rng)
    a, b = np.concatenate([a_edge, a_rand]), np.concatenate([b_edge, b_rand])
    reference = GOLDEN[unit, select]
    expected = reference(a, b, fmt)
    actual = rtl_binary(unit, a, b, select, fmt, pipelined=pipelined)
    assert_codes_equal(actual, expected, a, b, f"{reference.__name__} {fmt}")
    # The batch must reach every kind of result, directed cases included.
    for code in (fmt.zero_code, fmt.nan_code, fmt.max_code, fmt.max_code | fmt.sign_mask):
        assert (expected[: a_edge.size] == code).any(), f"no directed case gives {code:#x}"
    if unit is PALAdder:
        distance = np.abs((a & fmt.mag_mask) - (b & fmt.mag_mask))
        assert (distance[a_edge.size :] < len(sb_table(fmt.frac_bits))).mean() > 0.4


ODD = PALFormat(int_bits=5, frac_bits=6)


@pytest.mark.parametrize(
    ("unit", "select", "pipelined"),
    [
        (PALMultiplier, PALMultiplier.OP_MUL, True),
        (PALMultiplier, PALMultiplier.OP_DIV, False),
        (PALAdder, 0, False),
        (PALAdder, 1, True),
    ],
    ids=["mul-pipelined", "div", "add", "sub-pipelined"],
)
@pytest.mark.slow
def test_odd_format(unit, select, pipelined, random_vectors):
    seed = 56 + 2 * select + pipelined
    count = random_vectors(100_000)
    check_wide_format(ODD, unit, select, pipelined=pipelined, seed=seed, count=count)


@pytest.mark.parametrize(
    ("unit", "select", "pipelined"),
    [
        (PALMultiplier, PALMultiplier.OP_MUL, False),
        (PALMultiplier, PALMultiplier.OP_DIV, True),
        (PALAdder, 0, True),
        (PALAdder, 1, False),
    ],
    ids=["mul", "div-pipelined", "add-pipelined", "sub"],
)
@pytest.mark.slow
def test_pal16(unit, select, pipelined, random_vectors):
    seed = 16 + 2 * select + pipelined
    count = random_vectors(100_000)
    check_wide_format(pal16, unit, select, pipelined=pipelined, seed=seed, count=count)
