"""The block-RAM product term and the restart-on-last MAC against the golden model.

The table contents (:func:`palhdl.sim.golden.term_table`) are checked against exact integer
math; the RTL term against :func:`palhdl.sim.golden.mac_terms` for every pal8 operand pair; the
MAC against :func:`palhdl.sim.golden.matmul` on random, adversarial, wrapping and saturating dot
products, with and without back-pressure.
"""

from fractions import Fraction

import numpy as np
import pytest
from amaranth.sim import Simulator
from exact import mantissa_round

from palhdl.boards.platforms import BOARDS
from palhdl.format import MacConfig, pal8, pal16
from palhdl.hdl.pe import MAX_TABLE_ENTRIES, PALTableMac, PALTableProductTerm
from palhdl.sim import golden
from palhdl.sim.pysim import pack_payloads, simulate_streams, unpack_payloads
from palhdl.synth.yosys import synth_stats

#: The cost study's cost-optimised pal8 MAC (a 14-bit term window in a 32-bit wrapping sum).
COST = MacConfig(pal8, mantissa_bits=5, acc_bits=32, acc_frac_bits=12, term_bits=14, saturate=False)
#: A saturating window whose largest terms overflow and are clamped.
SATURATING = MacConfig(pal8, acc_bits=20, acc_frac_bits=8, term_bits=12, mantissa_bits=5)
#: A wrapping window narrow enough for sums to wrap.
WRAPPING = MacConfig(pal8, acc_bits=16, acc_frac_bits=6, term_bits=11, saturate=False)
BOARD_CONFIGS = [board.default_config(pal8) for board in BOARDS.values()]
CONFIGS = [MacConfig(pal8), COST, SATURATING, WRAPPING, *BOARD_CONFIGS]


def exact_term(total: int, negative: bool, config: MacConfig) -> tuple[int, bool]:
    """The term and overflow flag of a product whose magnitude fields add up to ``total``."""
    fmt = config.fmt
    log = total - 2 * fmt.bias
    octave, r = log >> fmt.frac_bits, log & (fmt.units - 1)
    value = Fraction(mantissa_round(r, fmt.frac_bits, config.mantissa_bits))
    value *= Fraction(2) ** (octave - config.mantissa_bits + config.acc_frac_bits)
    magnitude = int(value + Fraction(1, 2))  # half away from zero (value >= 0)
    overflow = magnitude >= 1 << config.term_bits
    if overflow:
        magnitude = config.acc_max if config.saturate else 0
    return (-magnitude if negative else magnitude), overflow


@pytest.mark.parametrize("config", CONFIGS, ids=str)
@pytest.mark.parametrize("signed", [False, True])
def test_term_table_is_exact(config, signed):
    term, overflow = golden.term_table(config, signed=signed)
    fmt = config.fmt
    half = 1 << (fmt.mag_bits + 1)
    assert len(term) == (2 * half if signed else half)
    for index in range(len(term)):
        total, negative = index % half, index >= half
        # Every sum up to 2 * mag_mask (S = 0, 1 once an offset lowers it); all ones: zero.
        live = total <= 2 * fmt.mag_mask
        expected = exact_term(total, negative, config) if live else (0, False)
        assert (int(term[index]), bool(overflow[index])) == expected, index


def every_pair_terms(config, *, signed, registered):
    """Simulate the table term on all 65,536 pal8 pairs; return ``(term, nan, overflow)``."""
    dut = PALTableProductTerm(config=config, signed=signed, registered=registered)
    codes = np.arange(1 << config.fmt.width)
    a, b = (x.ravel() for x in np.meshgrid(codes, codes, indexing="ij"))
    results = []

    async def testbench(ctx):
        for cycle in range(len(a) + dut.latency):
            if cycle < len(a):
                ctx.set(dut.a.as_value(), int(a[cycle]))
                ctx.set(dut.b.as_value(), int(b[cycle]))
            await ctx.tick()
            if cycle + 1 < dut.latency:
                continue
            if signed:
                term = ctx.get(dut.term)
                results.append((term["acc"], term["nan"], term["overflow"]))
            else:
                term = ctx.get(dut.term_sm)
                sign = -1 if term["negative"] else 1
                results.append((sign * term["magnitude"], term["nan"], term["overflow"]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    got = np.array(results[: len(a)], dtype=np.int64)
    return (a, b), (got[:, 0], got[:, 1].astype(bool), got[:, 2].astype(bool))


@pytest.mark.parametrize(
    "config, signed, registered",
    [
        (COST, False, True),
        pytest.param(COST, True, False, marks=pytest.mark.slow),
        pytest.param(MacConfig(pal8), False, False, marks=pytest.mark.slow),
        (SATURATING, True, True),
        pytest.param(BOARD_CONFIGS[0], False, True, marks=pytest.mark.slow),
    ],
    ids=str,
)
def test_every_pal8_pair_matches_mac_terms(config, signed, registered):
    (a, b), (term, nan, overflow) = every_pair_terms(config, signed=signed, registered=registered)
    expected = golden.mac_terms(a, b, config)
    np.testing.assert_array_equal(term, expected[0])
    np.testing.assert_array_equal(nan, expected[1])
    np.testing.assert_array_equal(overflow, expected[2])


def rtl_dot_products(
    a_rows, b_rows, config, *, signed=False, registered=True, segments=1, backpressure=None
):
    """Dot products ``a_rows[d] . b_rows[d]``, back to back through one simulated PALTableMac."""
    dut = PALTableMac(config=config, signed=signed, registered=registered, segments=segments)
    last = np.concatenate([np.eye(1, len(row), len(row) - 1, dtype=np.int64)[0] for row in a_rows])
    fields = {"a": np.concatenate(a_rows), "b": np.concatenate(b_rows), "last": last}
    results, _ = simulate_streams(
        dut,
        {"i": pack_payloads(dut.i.payload.shape(), fields).tolist()},
        {"o": len(a_rows)},
        backpressure=backpressure,
        name="table_mac",
    )
    out = unpack_payloads(dut.o.payload.shape(), results["o"])
    return out["acc"], out["nan"].astype(bool), out["overflow"].astype(bool)


def golden_dot_products(a_rows, b_rows, config):
    results = [golden.dot(a, b, config) for a, b in zip(a_rows, b_rows, strict=True)]
    return tuple(np.array([getattr(r, f) for r in results]) for f in ("acc", "nan", "overflow"))


def random_rows(rng, config, count, *, top=False, special_rate=0.0):
    """``count`` operand-row pairs of random lengths 1..40; ``top`` picks the largest codes."""
    fmt = config.fmt
    a_rows, b_rows = [], []
    for _ in range(count):
        length = int(rng.integers(1, 41))
        low = fmt.mag_mask - 6 if top else 0
        rows = []
        for _ in range(2):
            mag = rng.integers(low, fmt.mag_mask + 1, size=length)
            codes = mag | (rng.integers(0, 2, size=length) * fmt.sign_mask)
            special = rng.random(length) < special_rate
            rows.append(np.where(special, rng.choice([fmt.zero_code, fmt.nan_code]), codes))
        a_rows.append(rows[0])
        b_rows.append(rows[1])
    return a_rows, b_rows


@pytest.mark.parametrize(
    "config, signed, registered, segments, backpressure",
    [
        (COST, False, True, 1, None),
        (COST, True, False, 1, 3),
        (SATURATING, False, True, 1, 5),
        (WRAPPING, True, True, 1, 7),
        (BOARD_CONFIGS[0], False, True, 1, 11),
        (BOARD_CONFIGS[1], True, True, 1, None),
        (COST, False, True, 2, None),
        (COST, True, True, 2, 13),
        (WRAPPING, False, False, 3, 17),
        (WRAPPING, True, True, 4, None),
        (BOARD_CONFIGS[0], False, True, 2, 19),
    ],
    ids=str,
)
def test_mac_dot_products_match_golden(config, signed, registered, segments, backpressure):
    rng = np.random.default_rng(17)
    a_rows, b_rows = random_rows(rng, config, 30, special_rate=0.05)
    # Largest products: they overflow narrow windows (wrap or saturate) and flag it.
    top_a, top_b = random_rows(rng, config, 10, top=True)
    a_rows, b_rows = a_rows + top_a, b_rows + top_b
    got = rtl_dot_products(
        a_rows,
        b_rows,
        config,
        signed=signed,
        registered=registered,
        segments=segments,
        backpressure=backpressure,
    )
    expected = golden_dot_products(a_rows, b_rows, config)
    for name, g, e in zip(("acc", "nan", "overflow"), got, expected, strict=True):
        np.testing.assert_array_equal(g, e, err_msg=name)
    if not config.saturate or config.term_bits < config.acc_bits - 1:
        assert expected[2].any(), "the top products must reach the overflow cases"


@pytest.mark.parametrize("segments", [1, 3])
def test_first_dot_product_after_reset_and_one_term_products(segments):
    rng = np.random.default_rng(3)
    a_rows = [rng.integers(0, 256, size=1) for _ in range(9)]
    b_rows = [rng.integers(0, 256, size=1) for _ in range(9)]
    got = rtl_dot_products(a_rows, b_rows, COST, segments=segments)
    for g, e in zip(got, golden_dot_products(a_rows, b_rows, COST), strict=True):
        np.testing.assert_array_equal(g, e)


def test_parameters():
    with pytest.raises(ValueError, match=r"config: a pal16 .* 65536 entries, more than 4096"):
        PALTableProductTerm(config=MacConfig(pal16))
    with pytest.raises(TypeError, match="signed"):
        PALTableMac(config=COST, signed=1)
    with pytest.raises(TypeError, match="registered"):
        PALTableProductTerm(config=COST, registered="yes")
    with pytest.raises(TypeError, match="config"):
        PALTableMac(config=pal8)
    assert MAX_TABLE_ENTRIES >= 512
    with pytest.raises(ValueError, match="segments 2 needs a wrapping accumulator"):
        PALTableMac(config=SATURATING, segments=2)
    with pytest.raises(ValueError, match="segments must be"):
        PALTableMac(config=COST, segments=5)


@pytest.mark.slow
def test_table_maps_to_one_block_ram():
    ice40 = synth_stats(PALTableMac(config=COST), target="ice40")
    assert ice40["cells"].get("SB_RAM40_4K") == 1
    ecp5 = synth_stats(PALTableMac(config=COST, signed=True), target="ecp5")
    assert ecp5["cells"].get("DP16KD") == 1
