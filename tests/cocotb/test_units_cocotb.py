"""cocotb on Icarus and Verilator: the arithmetic units' generated Verilog against the golden model.

All units live in one top (``units``, see ``conftest.StreamGroup``), so each simulator builds
once; every test runs a job of cases on it (tb_streams.py) whose expected payloads come from
:mod:`palhdl.sim.golden`. Icarus gets a few hundred random vectors per unit with random
stalls; Verilator additionally runs the exhaustive pal8 suites (slow).
"""

import numpy as np
import pytest

from palhdl.format import pal8
from palhdl.hdl.ops import PALAdder, PALMultiplier
from palhdl.sim import golden
from palhdl.sim.pysim import pack_payloads

TOP = "units"


def make_units():
    """Instance name -> unit: the whole ``units`` top."""
    return {
        "mul": PALMultiplier(fmt=pal8, pipelined=False),
        "mulp": PALMultiplier(fmt=pal8, pipelined=True),
        "add": PALAdder(fmt=pal8, pipelined=False),
        "addp": PALAdder(fmt=pal8, pipelined=True),
    }


def binary_case(case, units, name, a, b, select, *, backpressure=None):
    """A PALMultiplier (select = op) or PALAdder (select = sub) case with golden results."""
    unit = units[name]
    is_mul = isinstance(unit, PALMultiplier)
    ops = (golden.mul, golden.div) if is_mul else (golden.add, golden.sub)
    expected = np.where(select == 1, ops[1](a, b, pal8), ops[0](a, b, pal8))
    fields = {"a": a, "b": b, "op" if is_mul else "sub": select}
    payloads = pack_payloads(unit.i.payload.shape(), fields)
    return case(name, {f"{name}__i": payloads}, {f"{name}__o": expected}, backpressure=backpressure)


def ops_random_cases(case, units, count, seed):
    rng = np.random.default_rng(seed)
    cases = []
    for index, name in enumerate(["mul", "mulp", "add", "addp"]):
        a, b, select = rng.integers(0, 256, (3, count))
        cases.append(binary_case(case, units, name, a, b, select & 1, backpressure=seed + index))
    return cases


def test_ops_random(run_streams, case, simulator):
    units = make_units()
    run_streams(simulator, TOP, units, ops_random_cases(case, units, 300, 1))


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
