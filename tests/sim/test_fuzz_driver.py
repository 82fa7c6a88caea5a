"""Fuzzing the tiling driver's input validation (issue 14), against the golden model.

Random shapes (zero-sized dimensions included), dtypes and values (NaN, infinities, codes out of
range): every input the driver refuses is refused with a ``TypeError``/``ValueError`` before an
array exists (an unused array would warn, and warnings are errors), exactly when an
independent verdict says the input is invalid; empty products come back empty without a
simulation; and small valid products run on the simulated array (Amaranth's simulator) bit for
bit as :func:`palhdl.sim.golden.matmul_values` / :func:`palhdl.sim.golden.matmul` give them.

Hypothesis runs derandomised, without deadlines, with explicit example counts.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from palhdl.format import MacConfig, pal8
from palhdl.sim import golden
from palhdl.sim.driver import matmul

FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: A cheap narrow window (wrapping, a 10-bit term), so that overflow is exercised too.
NARROW = MacConfig(
    pal8, mantissa_bits=5, acc_bits=16, acc_frac_bits=6, term_bits=10, saturate=False
)
CONFIGS = [MacConfig(pal8), NARROW]

FLOATS = [np.float16, np.float32, np.float64]
INTEGERS = [np.int8, np.uint8, np.int16, np.int64, np.uint64]
OTHERS = [np.bool_, np.complex64, np.dtype("U2"), np.dtype("S2")]


def _elements(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return st.floats(width=8 * dtype.itemsize, allow_nan=True, allow_infinity=True)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return st.integers(max(info.min, -300), min(info.max, 300))
    return None  # the default elements of hypothesis.extra.numpy


@st.composite
def operand(draw, shape, dtypes):
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    return draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))


def _verdict(a: np.ndarray, b: np.ndarray, block_size) -> bool:
    """Whether the driver must accept ``a @ b`` (pal8 codes or values), from its contract."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.shape[1] == 0:
        return False
    kinds = {a.dtype.kind, b.dtype.kind}
    if kinds <= {"f"}:
        return True
    if kinds <= {"i", "u"}:  # codes: in range, and no block scaling
        codes = [x.astype(object) for x in (a, b)]
        in_range = all(((c >= 0) & (c < 256)).all() for c in codes)
        return in_range and block_size is None
    return False


@st.composite
def any_inputs(draw):
    dims = st.integers(0, 3)
    shape_a = draw(st.one_of(st.tuples(dims, dims), hnp.array_shapes(min_dims=0, max_dims=3)))
    k = shape_a[1] if len(shape_a) == 2 and draw(st.booleans()) else draw(dims)
    shape_b = draw(st.one_of(st.tuples(st.just(k), dims), hnp.array_shapes(min_dims=0, max_dims=3)))
    dtypes = draw(st.sampled_from([FLOATS, INTEGERS, FLOATS + INTEGERS + OTHERS]))
    a = draw(operand(shape_a, dtypes))
    b = draw(operand(shape_b, dtypes))
    block_size = draw(st.one_of(st.none(), st.integers(1, 4)))
    return a, b, block_size


@settings(FUZZ, max_examples=400)
@given(inputs=any_inputs(), config=st.sampled_from(CONFIGS))
def test_fuzz_driver_validation(inputs, config):
    a, b, block_size = inputs
    valid = _verdict(a, b, block_size)
    empty = valid and a.shape[0] * b.shape[1] == 0
    event("valid, empty" if empty else "valid" if valid else "invalid")
    if valid and not empty:
        return  # simulated below, on sizes chosen for it
    if not valid:
        with pytest.raises((TypeError, ValueError)):
            matmul(a, b, config=config, block_size=block_size, backend="pysim")
        return
    for output in ("float32", "pal", "raw"):
        result, stats = matmul(a, b, config=config, output=output, block_size=block_size)
        fields = result.values() if output == "raw" else [result]
        assert all(f.shape == (a.shape[0], b.shape[1]) for f in fields)
        assert stats.cycles == 0


@st.composite
def small_products(draw):
    m, k, n = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    codes = draw(st.booleans())
    if codes:
        a = draw(hnp.arrays(np.int64, (m, k), elements=st.integers(0, 255)))
        b = draw(hnp.arrays(np.uint8, (k, n), elements=st.integers(0, 255)))
        block_size = None
    else:
        a = draw(operand((m, k), FLOATS))
        b = draw(operand((k, n), FLOATS))
        block_size = draw(st.one_of(st.none(), st.integers(1, 3)))
    return a, b, block_size


@settings(FUZZ, max_examples=60)
@given(
    product=small_products(),
    config=st.sampled_from(CONFIGS),
    geometry=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    output=st.sampled_from(["float32", "pal", "raw"]),
    raw_readout=st.booleans(),
)
def test_fuzz_driver_matches_golden(product, config, geometry, output, raw_readout):
    a, b, block_size = product
    rows, cols = geometry
    result, stats = matmul(
        a,
        b,
        config=config,
        rows=rows,
        cols=cols,
        output=output,
        readout="raw" if raw_readout else output,
        block_size=block_size,
        backend="pysim",
    )
    assert stats.tiles == -(-a.shape[0] // rows) * -(-b.shape[1] // cols) and stats.cycles > 0
    if a.dtype.kind == "f":
        expected = golden.matmul_values(a, b, config, block_size=block_size)
    else:
        expected = golden.matmul(a, b, config)
    if output == "float32":
        np.testing.assert_array_equal(result.view(np.uint32), expected.to_float32_bits())
    elif output == "pal":
        np.testing.assert_array_equal(result, expected.to_pal())
    else:
        np.testing.assert_array_equal(result["acc"], expected.acc)
        np.testing.assert_array_equal(result["nan"].astype(bool), expected.nan)
        np.testing.assert_array_equal(result["overflow"].astype(bool), expected.overflow)
        np.testing.assert_array_equal(result["scale"], expected.scale_exp)
