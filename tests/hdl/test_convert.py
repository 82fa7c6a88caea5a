"""Conversion units of palhdl.hdl.convert and palhdl.hdl.readout against the golden model.

Every batch runs through one simulation (``palhdl.sim.pysim.simulate_stream``) and is compared with
:mod:`palhdl.sim.golden` (whose own tests check it against exact arithmetic). pal8 is covered
exhaustively where the input space allows (all codes; all bfloat16 patterns). pal16 and the odd
format I=5, F=6 get every code (PAL inputs), every bfloat16 pattern, 100,000 float32 patterns,
and at least 100,000 random and directed fixed-point values and accumulators per unit and
format (pal16's fixed-point inputs split over two windows of 50,000 each). To amortise the
simulator's per-transfer cost, the ``rtl_*`` wrappers run ``LANES`` copies of a unit side by
side behind one stream (``_Lanes``): all copies see the same handshake, so they advance in
lockstep exactly like a single unit. Constructor checks are in ``test_convert_params.py``.
"""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.hdl.convert import (
    BFloat16ToPAL,
    FixedToPAL,
    Float32ToPAL,
    PALToBFloat16,
    PALToFloat32,
)
from palhdl.hdl.readout import AccumulatorToFloat32, AccumulatorToPAL
from palhdl.sim import golden
from palhdl.sim.pysim import pack_payloads, simulate_stream, unpack_payloads
from palhdl.tables import TABLE_PREC, log_threshold_table

ODD = PALFormat(int_bits=5, frac_bits=6)
#: Copies of a unit simulated side by side for large batches.
LANES = 16
#: Fewer vectors than this per lane use one lane (elaborating copies costs more than it saves).
MIN_PER_LANE = 1000

FLOAT32 = (23, 8)
BFLOAT16 = (7, 8)

#: (name, config): the default exact pal8 accumulator (51 bits), a narrow 24-bit window, the
#: default pal16 window (48 bits), the odd format's default.
CONFIGS = {
    "pal8": MacConfig(pal8),
    "pal8_narrow": MacConfig(pal8, acc_bits=24, acc_frac_bits=12),
    "pal16": MacConfig(pal16),
    "odd": MacConfig(ODD),
}


# --- simulation wrappers ----------------------------------------------------------------------


class _Lanes(wiring.Component):
    """``count`` copies of a stream unit behind one stream pair; lane ``k`` in field ``k``."""

    def __init__(self, make, count):
        self._units = [make() for _ in range(count)]
        unit = self._units[0]
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(unit.i.payload.shape(), count))),
                "o": Out(stream.Signature(data.ArrayLayout(unit.o.payload.shape(), count))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        for index, unit in enumerate(self._units):
            m.submodules[f"lane{index}"] = unit
            m.d.comb += [
                unit.i.payload.eq(self.i.payload[index]),
                unit.i.valid.eq(self.i.valid),
                unit.o.ready.eq(self.o.ready),
                self.o.payload[index].eq(unit.o.payload),
            ]
        lead = self._units[0]
        m.d.comb += [self.i.ready.eq(lead.i.ready), self.o.valid.eq(lead.o.valid)]
        return m


def _run(make, values, *, backpressure, name):
    """Outputs (int64 bit patterns) of unit ``make()`` for input ``values``, in one simulation.

    ``values``: the unit's input payload values as :func:`pack_payloads` takes them (codes or
    bit patterns, or a dict of field arrays), 1-D.
    """
    first = next(iter(values.values())) if isinstance(values, dict) else values
    count = len(first)
    lanes = max(1, min(LANES, count // MIN_PER_LANE))
    rows = -(-count // lanes)

    def split(value):
        return np.resize(np.asarray(value), rows * lanes).reshape(rows, lanes)

    if isinstance(values, dict):
        padded = {name: split(value) for name, value in values.items()}
    else:
        padded = split(values)
    dut = _Lanes(make, lanes)
    packed = pack_payloads(dut.i.payload.shape(), padded)
    raw = simulate_stream(dut, packed, backpressure=backpressure, name=name)
    outputs = unpack_payloads(dut.o.payload.shape(), raw)
    return outputs.ravel()[:count]


def rtl_pal_to_float32(codes, fmt, *, pipelined=False, backpressure=None):
    """float32 bit patterns (uint32) of PAL ``codes`` by a simulated :class:`PALToFloat32`."""
    codes = golden.check_codes("codes", codes, fmt)
    raw = _run(
        lambda: PALToFloat32(fmt=fmt, pipelined=pipelined), codes.ravel(),
        backpressure=backpressure, name=f"PALToFloat32_{fmt}",
    )  # fmt: skip
    return raw.astype(np.uint32).reshape(codes.shape)


def rtl_pal_to_bfloat16(codes, fmt, *, pipelined=False, backpressure=None):
    """bfloat16 bit patterns (uint16) of PAL ``codes`` by a simulated :class:`PALToBFloat16`."""
    codes = golden.check_codes("codes", codes, fmt)
    raw = _run(
        lambda: PALToBFloat16(fmt=fmt, pipelined=pipelined), codes.ravel(),
        backpressure=backpressure, name=f"PALToBFloat16_{fmt}",
    )  # fmt: skip
    return raw.astype(np.uint16).reshape(codes.shape)


def rtl_float32_to_pal(bits, fmt, *, pipelined=False, backpressure=None):
    """PAL codes of float32 bit patterns ``bits`` by a simulated :class:`Float32ToPAL`."""
    bits = np.asarray(bits, dtype=np.int64)
    raw = _run(
        lambda: Float32ToPAL(fmt=fmt, pipelined=pipelined), bits.ravel(),
        backpressure=backpressure, name=f"Float32ToPAL_{fmt}",
    )  # fmt: skip
    return raw.astype(fmt.code_dtype).reshape(bits.shape)


def rtl_bfloat16_to_pal(bits, fmt, *, pipelined=False, backpressure=None):
    """PAL codes of bfloat16 bit patterns ``bits`` by a simulated :class:`BFloat16ToPAL`."""
    bits = np.asarray(bits, dtype=np.int64)
    raw = _run(
        lambda: BFloat16ToPAL(fmt=fmt, pipelined=pipelined), bits.ravel(),
        backpressure=backpressure, name=f"BFloat16ToPAL_{fmt}",
    )  # fmt: skip
    return raw.astype(fmt.code_dtype).reshape(bits.shape)


def rtl_fixed_to_pal(values, fmt, width, frac_bits, *, pipelined=False, backpressure=None):
    """PAL codes of ``values * 2**-frac_bits`` by a simulated :class:`FixedToPAL`."""
    values = np.asarray(values, dtype=np.int64)
    raw = _run(
        lambda: FixedToPAL(fmt=fmt, width=width, frac_bits=frac_bits, pipelined=pipelined),
        {"value": values.ravel()},
        backpressure=backpressure, name=f"FixedToPAL_{fmt}",
    )  # fmt: skip
    return raw.astype(fmt.code_dtype).reshape(values.shape)


def _accumulator_fields(acc, scale, nan):
    return {"acc": acc, "scale": scale, "nan": np.asarray(nan, dtype=np.int64)}


def rtl_accumulator_to_pal(
    acc, scale, nan, config, out_fmt=None, *, pipelined=False, backpressure=None
):
    """PAL codes of accumulators ``(acc, scale, nan)`` by a simulated :class:`AccumulatorToPAL`."""
    fmt = config.fmt if out_fmt is None else out_fmt
    raw = _run(
        lambda: AccumulatorToPAL(config=config, out_fmt=out_fmt, pipelined=pipelined),
        _accumulator_fields(acc, scale, nan),
        backpressure=backpressure, name="AccumulatorToPAL",
    )  # fmt: skip
    return raw.astype(fmt.code_dtype)


def rtl_accumulator_to_float32(acc, scale, nan, config, *, pipelined=False, backpressure=None):
    """float32 bits of accumulators ``(acc, scale, nan)`` by :class:`AccumulatorToFloat32`."""
    raw = _run(
        lambda: AccumulatorToFloat32(config=config, pipelined=pipelined),
        _accumulator_fields(acc, scale, nan),
        backpressure=backpressure, name="AccumulatorToFloat32",
    )  # fmt: skip
    return raw.astype(np.uint32)


def _assert_equal(actual, expected, inputs):
    expected = np.asarray(expected)
    bad = np.flatnonzero(actual.ravel() != expected.ravel())
    assert bad.size == 0, (
        f"{bad.size} of {expected.size} differ; first (input, rtl, golden): "
        + ", ".join(
            f"({np.ravel(inputs)[i]:#x}, {actual.ravel()[i]:#x}, {expected.ravel()[i]:#x})"
            for i in bad[:5]
        )
    )


# --- input generators -------------------------------------------------------------------------


def _ieee_patterns(rng, count, ieee, fmt):
    """``count`` IEEE bit patterns: every exponent field value with random mantissas and signs,
    subnormals, specials, patterns just below/above the PAL rounding thresholds of ``fmt``
    (at exponents around its range), and uniformly random patterns."""
    man_bits, exp_bits = ieee
    sign = 1 << (man_bits + exp_bits)
    exp_top = (1 << exp_bits) - 1
    ieee_bias = exp_top >> 1
    specials = [
        0, sign, exp_top << man_bits, sign | exp_top << man_bits,  # +-0, +-inf
        (exp_top << man_bits) | 1, (exp_top << man_bits) | (1 << (man_bits - 1)),  # NaNs
        sign | (exp_top << man_bits) | ((1 << man_bits) - 1),
        1, sign | 1, (1 << man_bits) - 1, 1 << man_bits,  # smallest subnormal/normal
        (exp_top << man_bits) - 1, sign | ((exp_top << man_bits) - 1),  # +-largest finite
    ]  # fmt: skip
    fields = np.repeat(np.arange(exp_top + 1), 8)
    every_exponent = (
        (rng.integers(0, 2, fields.size) * sign)
        | (fields << man_bits)
        | rng.integers(0, 1 << man_bits, fields.size)
    )
    subnormals = rng.integers(0, 1 << man_bits, count // 16) >> rng.integers(
        0, man_bits, count // 16
    )
    subnormals |= rng.integers(0, 2, subnormals.size) * sign
    # Mantissas on either side of t_j = 2**((j - 1/2) / 2**F) at exponents within (and just
    # beyond) the PAL range, clipped to normal floats.
    near = count // 4
    thresholds = log_threshold_table(fmt.frac_bits)[rng.integers(0, fmt.units, near)]
    mantissas = (thresholds >> (TABLE_PREC - man_bits)) + rng.integers(0, 2, near)
    octaves = rng.integers(-(1 << (fmt.int_bits - 1)) - 2, (1 << (fmt.int_bits - 1)) + 2, near)
    biased = np.clip(octaves + ieee_bias, 1, exp_top - 1)
    threshold_patterns = (
        (rng.integers(0, 2, near) * sign) | (biased << man_bits) | (mantissas - (1 << man_bits))
    )
    directed = np.concatenate([specials, every_exponent, subnormals, threshold_patterns])
    uniform = rng.integers(0, 1 << (man_bits + exp_bits + 1), max(count - directed.size, 0))
    return np.concatenate([directed, uniform]).astype(np.int64)


def _magnitudes(rng, count, bits, frac_bits):
    """Non-negative integers below ``2**bits``: log-uniform random ones, powers of two and
    their neighbours, and values just below/above the rounding thresholds at random
    positions (for a format with ``frac_bits`` fraction bits)."""
    powers = np.array([1 << k for k in range(bits)], dtype=np.int64)
    directed = np.concatenate([[0, 1, 2, 3, (1 << bits) - 1], powers, powers - 1, powers + 1])
    random_tops = rng.integers(0, bits, count)
    random = (rng.integers(0, 1 << 62, count) >> (62 - random_tops)) | (1 << random_tops)
    near = count // 4
    tops = rng.integers(1, bits, near)
    thresholds = log_threshold_table(frac_bits)[rng.integers(0, 1 << frac_bits, near)]
    threshold_values = (thresholds >> (TABLE_PREC - tops)) + rng.integers(0, 2, near)
    values = np.concatenate([directed, random[: count - near], threshold_values])
    return np.minimum(values, (1 << bits) - 1)


def _ties(rng, count, bits, man_bits):
    """Integers below ``2**bits`` that are, or are next to, a tie when rounded to
    ``man_bits + 1`` significant bits (random parity of the kept part)."""
    shift = rng.integers(1, bits - man_bits - 1, count)
    kept = rng.integers(1 << man_bits, 1 << (man_bits + 1), count)
    return (kept << shift) + (1 << (shift - 1)) + rng.integers(-1, 2, count)


def _accumulators(rng, magnitude, config, span):
    """``(acc, scale, nan)`` from magnitudes: random signs, scales that put most results within
    ``span`` octaves of 1 (around the output range, including saturation and flushing) and
    some at the extremes of the 16-bit scale field, a few NaN flags."""
    magnitude = np.minimum(magnitude, config.acc_max)
    negative = rng.integers(0, 2, magnitude.size).astype(bool)
    acc = np.where(negative, -magnitude, magnitude)
    top = np.array([max(int(v).bit_length() - 1, 0) for v in magnitude], dtype=np.int64)
    scale = top - config.acc_frac_bits - rng.integers(-span, span + 1, acc.size)
    extreme = rng.random(acc.size) < 0.05
    scale[extreme] = rng.choice([-(1 << 15), (1 << 15) - 1, -1000, 1000], extreme.sum())
    nan = rng.random(acc.size) < 0.03
    return acc, scale, nan


# --- PAL to IEEE ------------------------------------------------------------------------------


IEEE_FROM_PAL = {
    "float32": (rtl_pal_to_float32, golden.to_float32_bits),
    "bfloat16": (rtl_pal_to_bfloat16, golden.to_bfloat16_bits),
}


@pytest.mark.parametrize("target", IEEE_FROM_PAL)
@pytest.mark.parametrize("pipelined", [False, True])
def test_pal_to_ieee_pal8_exhaustive(target, pipelined):
    rtl, reference = IEEE_FROM_PAL[target]
    codes = np.arange(1 << pal8.width)
    backpressure = 5 if pipelined else None
    actual = rtl(codes, pal8, pipelined=pipelined, backpressure=backpressure)
    _assert_equal(actual, reference(codes, pal8), codes)


@pytest.mark.slow
@pytest.mark.parametrize("target", IEEE_FROM_PAL)
@pytest.mark.parametrize("fmt", [ODD, pal16], ids=str)
def test_pal_to_ieee_every_code(target, fmt):
    """All codes of the odd format and pal16 (65,536 > the 100k-random bar in coverage)."""
    rtl, reference = IEEE_FROM_PAL[target]
    codes = np.arange(1 << fmt.width)
    actual = rtl(codes, fmt, pipelined=fmt is ODD)
    _assert_equal(actual, reference(codes, fmt), codes)


def test_pal_to_float32_subnormal_and_overflow():
    """A wide format reaches float32 subnormals, the half-ulp-of-zero boundary and overflow."""
    wide = PALFormat(int_bits=10, frac_bits=3)
    octaves = np.concatenate([np.arange(-152, -124), np.arange(124, 131)])
    logs = (octaves[:, None] * wide.units + np.arange(wide.units)).ravel()
    codes = np.concatenate([logs + wide.bias, (logs + wide.bias) | wide.sign_mask])
    codes = np.concatenate([codes, [1, wide.max_code, wide.nan_code, 0]])
    _assert_equal(rtl_pal_to_float32(codes, wide), golden.to_float32_bits(codes, wide), codes)
    actual = rtl_pal_to_bfloat16(codes, wide, pipelined=True, backpressure=11)
    _assert_equal(actual, golden.to_bfloat16_bits(codes, wide), codes)


# --- IEEE to PAL ------------------------------------------------------------------------------


@pytest.mark.slow
def test_bfloat16_to_pal_pal8_exhaustive():
    bits = np.arange(1 << 16)
    _assert_equal(rtl_bfloat16_to_pal(bits, pal8), golden.from_bfloat16_bits(bits, pal8), bits)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [ODD, pal16], ids=str)
def test_bfloat16_to_pal_every_pattern(fmt):
    bits = np.arange(1 << 16)
    actual = rtl_bfloat16_to_pal(bits, fmt, pipelined=True)
    _assert_equal(actual, golden.from_bfloat16_bits(bits, fmt), bits)


def test_bfloat16_to_pal_backpressure():
    bits = _ieee_patterns(np.random.default_rng(16), 3_000, BFLOAT16, pal16)
    actual = rtl_bfloat16_to_pal(bits, pal16, pipelined=True, backpressure=16)
    _assert_equal(actual, golden.from_bfloat16_bits(bits, pal16), bits)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "count", "pipelined"),
    [(pal8, 100_000, False), (ODD, 100_000, True), (pal16, 100_000, False)],
    ids=["pal8", "odd", "pal16"],
)
def test_float32_to_pal(fmt, count, pipelined, random_vectors):
    count = random_vectors(count)
    bits = _ieee_patterns(np.random.default_rng(100 + fmt.width), count, FLOAT32, fmt)
    actual = rtl_float32_to_pal(bits, fmt, pipelined=pipelined)
    _assert_equal(actual, golden.from_float32_bits(bits, fmt), bits)


def test_float32_to_pal_backpressure():
    bits = _ieee_patterns(np.random.default_rng(7), 3_000, FLOAT32, pal16)
    actual = rtl_float32_to_pal(bits, pal16, pipelined=True, backpressure=3)
    _assert_equal(actual, golden.from_float32_bits(bits, pal16), bits)


# --- fixed point to PAL -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "width", "frac_bits", "count", "pipelined"),
    [
        (pal8, 24, 10, 10_000, True),  # 2**-10 .. 2**13: flushes, in range and saturates
        # the widest input; 2**-30 .. 2**32
        pytest.param(ODD, 63, 30, 100_000, False, marks=pytest.mark.slow),
        # 2**100 .. 2**139: saturates above 2**128
        pytest.param(pal16, 40, -100, 50_000, True, marks=pytest.mark.slow),
        # 2**-150 .. 2**-103: flushes below 2**-128
        pytest.param(pal16, 48, 150, 50_000, False, marks=pytest.mark.slow),
    ],
    ids=["pal8", "odd63", "pal16_big", "pal16_tiny"],
)
def test_fixed_to_pal(fmt, width, frac_bits, count, pipelined, random_vectors):
    count = random_vectors(count)
    rng = np.random.default_rng(width)
    magnitude = _magnitudes(rng, count, width - 1, fmt.frac_bits)
    values = np.where(rng.integers(0, 2, magnitude.size) == 1, -magnitude, magnitude)
    values = np.concatenate([values, [-(1 << (width - 1)), (1 << (width - 1)) - 1, 0, -1]])
    backpressure = width if pipelined else None
    actual = rtl_fixed_to_pal(
        values, fmt, width, frac_bits, pipelined=pipelined, backpressure=backpressure
    )
    _assert_equal(actual, golden.from_fixed(values, fmt, frac_bits), values)


# --- accumulators -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "out_fmt", "count", "pipelined"),
    [
        pytest.param("pal8", None, 20_000, False, marks=pytest.mark.slow),
        ("pal8_narrow", None, 10_000, True),
        pytest.param("pal16", None, 100_000, True, marks=pytest.mark.slow),
        pytest.param("odd", None, 100_000, False, marks=pytest.mark.slow),
        ("pal8", pal16, 5_000, True),  # a wider output format than the operands'
    ],
    ids=["pal8", "pal8_narrow", "pal16", "odd", "pal8_to_pal16"],
)
def test_accumulator_to_pal(name, out_fmt, count, pipelined, random_vectors):
    count = random_vectors(count)
    config = CONFIGS[name]
    fmt = config.fmt if out_fmt is None else out_fmt
    rng = np.random.default_rng(count)
    magnitude = _magnitudes(rng, count, config.acc_bits - 1, fmt.frac_bits)
    acc, scale, nan = _accumulators(rng, magnitude, config, (1 << fmt.int_bits) // 2 + 4)
    backpressure = 17 if name == "pal8_narrow" else None
    actual = rtl_accumulator_to_pal(
        acc, scale, nan, config, out_fmt, pipelined=pipelined, backpressure=backpressure
    )
    result = golden.MacResult(acc, nan, np.zeros_like(nan), scale, config)
    _assert_equal(actual, result.to_pal(out_fmt), acc)


@pytest.mark.parametrize(
    ("name", "count", "pipelined"),
    [
        pytest.param("pal8", 20_000, True, marks=pytest.mark.slow),
        ("pal8_narrow", 10_000, False),
        pytest.param("pal16", 100_000, False, marks=pytest.mark.slow),
        pytest.param("odd", 100_000, True, marks=pytest.mark.slow),
    ],
)
def test_accumulator_to_float32(name, count, pipelined, random_vectors):
    """Scales spread the results over float32's range: subnormals, overflow and underflow."""
    count = random_vectors(count)
    config = CONFIGS[name]
    rng = np.random.default_rng(count + 1)
    # Accumulators narrower than a float32 significand round only into subnormals.
    ties = count // 4 if config.acc_bits > 27 else 0
    magnitude = np.concatenate(
        [
            _magnitudes(rng, count - ties, config.acc_bits - 1, 1),
            _ties(rng, ties, config.acc_bits - 1, 23),
        ]
    )
    acc, scale, nan = _accumulators(rng, magnitude, config, 155)
    backpressure = 23 if pipelined else None
    actual = rtl_accumulator_to_float32(
        acc, scale, nan, config, pipelined=pipelined, backpressure=backpressure
    )
    result = golden.MacResult(acc, nan, np.zeros_like(nan), scale, config)
    _assert_equal(actual, result.to_float32_bits(), acc)


# --- latency and Verilog ----------------------------------------------------------------------


UNITS = {
    "AccumulatorToPAL": lambda p: AccumulatorToPAL(config=CONFIGS["pal16"], pipelined=p),
    "AccumulatorToFloat32": lambda p: AccumulatorToFloat32(config=CONFIGS["pal8"], pipelined=p),
    "FixedToPAL": lambda p: FixedToPAL(fmt=ODD, width=32, frac_bits=8, pipelined=p),
    "Float32ToPAL": lambda p: Float32ToPAL(fmt=pal16, pipelined=p),
    "BFloat16ToPAL": lambda p: BFloat16ToPAL(fmt=pal8, pipelined=p),
    "PALToFloat32": lambda p: PALToFloat32(fmt=pal16, pipelined=p),
    "PALToBFloat16": lambda p: PALToBFloat16(fmt=ODD, pipelined=p),
}


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("pipelined", [False, True])
def test_latency(unit, pipelined):
    """``latency`` is the number of clock edges from an input transfer to its output valid."""
    dut = UNITS[unit](pipelined)
    observed = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        if ctx.get(dut.o.valid):  # combinational: valid in the cycle of the transfer
            observed.append(0)
            return
        await ctx.tick().until(dut.i.ready)  # the transfer's clock edge
        ctx.set(dut.i.valid, 0)
        edges = 1
        while not ctx.get(dut.o.valid):
            await ctx.tick()
            edges += 1
        observed.append(edges)

    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run_until(1e-6)
    assert observed == [dut.latency]


@pytest.mark.parametrize("unit", UNITS)
def test_verilog_export(unit):
    text = verilog.convert(UNITS[unit](True), name=unit)
    assert f"module {unit}" in text
