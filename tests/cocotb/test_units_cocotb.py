"""cocotb on Icarus and Verilator: operators, converters and readouts against the golden model.

The units live side by side in one top (``units``, see ``conftest.StreamGroup``), so each
simulator builds once; every test runs a job of cases on it (``tb_streams.py``) whose expected
payloads come from :mod:`palhdl.sim.golden`. Both simulators get a few hundred random vectors
per unit with random stalls; Verilator also runs the exhaustive suites (slow): every pal8 pair
of mul/div/add/sub, every pal16 code to float32/bfloat16, every bfloat16 pattern to pal8.
"""

import numpy as np
import pytest

from palhdl.format import MacConfig, pal8, pal16
from palhdl.hdl.convert import (
    BFloat16ToPAL,
    FixedToPAL,
    Float32ToPAL,
    PALToBFloat16,
    PALToFloat32,
)
from palhdl.hdl.ops import PALAdder, PALMultiplier
from palhdl.hdl.readout import AccumulatorToFloat32, AccumulatorToPAL
from palhdl.sim import golden
from palhdl.sim.pysim import pack_payloads

TOP = "units"
NARROW = MacConfig(pal8, acc_bits=24, acc_frac_bits=12)
WIDE = MacConfig(pal16)
#: FixedToPAL's input: 24-bit values with 10 fraction bits.
FIXED = (24, 10)


def make_units():
    """Instance name -> unit: the whole ``units`` top."""
    return {
        "mul": PALMultiplier(fmt=pal8, pipelined=False),
        "mulp": PALMultiplier(fmt=pal8, pipelined=True),
        "add": PALAdder(fmt=pal8, pipelined=False),
        "addp": PALAdder(fmt=pal8, pipelined=True),
        "p2f": PALToFloat32(fmt=pal16, pipelined=False),
        "p2b": PALToBFloat16(fmt=pal16, pipelined=True),
        "f2p": Float32ToPAL(fmt=pal16, pipelined=True),
        "b2p": BFloat16ToPAL(fmt=pal8, pipelined=False),
        "fx2p": FixedToPAL(fmt=pal8, width=FIXED[0], frac_bits=FIXED[1], pipelined=True),
        "a2p": AccumulatorToPAL(config=NARROW, pipelined=True),
        "a2pw": AccumulatorToPAL(config=WIDE, pipelined=False),
        "a2f": AccumulatorToFloat32(config=NARROW, pipelined=False),
    }


def stream_case(case, units, name, fields, expected, *, backpressure=None):
    """Unit ``name``: input payload ``fields`` (packed from its layout), golden ``expected``."""
    payloads = pack_payloads(units[name].i.payload.shape(), fields)
    expected = pack_payloads(units[name].o.payload.shape(), expected)
    return case(name, {f"{name}__i": payloads}, {f"{name}__o": expected}, backpressure=backpressure)


def binary_case(case, units, name, a, b, select, *, backpressure=None):
    """A PALMultiplier (select = op) or PALAdder (select = sub) case with golden results."""
    is_mul = isinstance(units[name], PALMultiplier)
    ops = (golden.mul, golden.div) if is_mul else (golden.add, golden.sub)
    expected = np.where(select == 1, ops[1](a, b, pal8), ops[0](a, b, pal8))
    fields = {"a": a, "b": b, "op" if is_mul else "sub": select}
    return stream_case(case, units, name, fields, expected, backpressure=backpressure)


def ieee_patterns(rng, count, man_bits, exp_bits, fmt):
    """IEEE bit patterns: specials, subnormals, exponents around ``fmt``'s range, uniform."""
    sign = 1 << (man_bits + exp_bits)
    top = (1 << exp_bits) - 1
    specials = [0, sign, top << man_bits, (top << man_bits) | 1, 1, sign | 1]
    reach = (1 << (fmt.int_bits - 1)) + 3
    exponent = np.clip(rng.integers(-reach, reach, count) + (top >> 1), 0, top)
    in_range = (rng.integers(0, 2, count) * sign) | (exponent << man_bits)
    in_range |= rng.integers(0, 1 << man_bits, count)
    uniform = rng.integers(0, 2 * sign, count // 4)
    return np.concatenate([specials, in_range, uniform]).astype(np.int64)


def log_uniform(rng, count, bits):
    """Non-negative integers below ``2**bits`` with a uniformly random bit length."""
    tops = rng.integers(0, bits, count)
    return (rng.integers(0, 1 << 62, count) >> (62 - tops)) | (1 << tops)


def accumulators(rng, count, config, span):
    """``(acc, scale, nan)`` readout inputs: results within ``span`` octaves of 1 mostly."""
    magnitude = np.minimum(log_uniform(rng, count, config.acc_bits - 1), config.acc_max)
    magnitude[: count // 20] = 0
    acc = np.where(rng.integers(0, 2, count) == 1, -magnitude, magnitude)
    top = np.array([int(v).bit_length() for v in magnitude], dtype=np.int64)
    scale = top - config.acc_frac_bits - rng.integers(-span, span + 1, count)
    nan = (rng.random(count) < 0.03).astype(np.int64)
    return acc, scale, nan


def readout_case(case, units, name, rng, count, *, backpressure=None):
    """Readout ``name`` on ``count`` random accumulators; golden ``MacResult`` conversions."""
    config = WIDE if name == "a2pw" else NARROW
    acc, scale, nan = accumulators(rng, count, config, (1 << config.fmt.int_bits) // 2 + 4)
    result = golden.MacResult(acc, nan.astype(bool), np.zeros(count, bool), scale, config)
    expected = result.to_float32_bits() if name == "a2f" else result.to_pal()
    fields = {"acc": acc, "scale": scale, "nan": nan}
    return stream_case(case, units, name, fields, expected, backpressure=backpressure)


def random_cases(case, units, count, seed):
    """Every unit of the top on ``count``-ish random vectors, each with its own stalls."""
    rng = np.random.default_rng(seed)
    cases = []
    for name in ["mul", "mulp", "add", "addp"]:
        a, b, select = rng.integers(0, 256, (3, count))
        cases.append(binary_case(case, units, name, a, b, select & 1, backpressure=len(cases)))
    codes = rng.integers(0, 1 << 16, count)
    cases.append(stream_case(case, units, "p2f", codes, golden.to_float32_bits(codes, pal16)))
    cases.append(
        stream_case(
            case, units, "p2b", codes, golden.to_bfloat16_bits(codes, pal16), backpressure=5
        )
    )
    bits = ieee_patterns(rng, count, 23, 8, pal16)
    cases.append(
        stream_case(case, units, "f2p", bits, golden.from_float32_bits(bits, pal16), backpressure=6)
    )
    bits = ieee_patterns(rng, count, 7, 8, pal8)
    cases.append(stream_case(case, units, "b2p", bits, golden.from_bfloat16_bits(bits, pal8)))
    width, frac_bits = FIXED
    values = log_uniform(rng, count, width - 1) * rng.choice([-1, 1], count)
    values = np.concatenate([values, [-(1 << (width - 1)), (1 << (width - 1)) - 1, 0, -1]])
    expected = golden.from_fixed(values, pal8, frac_bits)
    cases.append(stream_case(case, units, "fx2p", {"value": values}, expected, backpressure=7))
    for index, name in enumerate(["a2p", "a2pw", "a2f"]):
        backpressure = 8 + index if name != "a2pw" else None
        cases.append(readout_case(case, units, name, rng, count, backpressure=backpressure))
    return cases


def test_units_random(run_streams, case, simulator):
    """Every unit of the top, a few hundred stalled random vectors each."""
    units = make_units()
    run_streams(simulator, TOP, units, random_cases(case, units, 300, 1))


@pytest.mark.slow
def test_ops_pal8_exhaustive_verilator(run_streams, case):
    """All 65,536 pal8 pairs of mul (comb), div (pipelined), add (comb), sub (pipelined)."""
    units = make_units()
    a, b = (x.ravel() for x in np.meshgrid(np.arange(256), np.arange(256), indexing="ij"))
    ones = np.ones_like(a)
    cases = [
        binary_case(case, units, "mul", a, b, 0 * ones),
        binary_case(case, units, "mulp", a, b, ones),
        binary_case(case, units, "add", a, b, 0 * ones),
        binary_case(case, units, "addp", a, b, ones),
    ]
    run_streams("verilator", TOP, units, cases)


@pytest.mark.slow
def test_converters_exhaustive_verilator(run_streams, case):
    """Every pal16 code to float32 and bfloat16, every bfloat16 pattern to pal8, 20,000 random
    float32 patterns to pal16 and accumulators to PAL and float32."""
    units = make_units()
    rng = np.random.default_rng(16)
    codes = np.arange(1 << 16)
    cases = [
        stream_case(case, units, "p2f", codes, golden.to_float32_bits(codes, pal16)),
        stream_case(case, units, "p2b", codes, golden.to_bfloat16_bits(codes, pal16)),
        stream_case(case, units, "b2p", codes, golden.from_bfloat16_bits(codes, pal8)),
    ]
    bits = ieee_patterns(rng, 20_000, 23, 8, pal16)
    cases.append(stream_case(case, units, "f2p", bits, golden.from_float32_bits(bits, pal16)))
    for name in ["a2p", "a2pw", "a2f"]:
        cases.append(readout_case(case, units, name, rng, 20_000))
    run_streams("verilator", TOP, units, cases)
