"""``palhdl.sim.driver.matmul(output=, readout=)``: a raw-readout array with float32 / PAL
results converted on the host, checked bit for bit against the golden model."""

import numpy as np
import pytest

from palhdl.format import MacConfig, PALFormat, pal8
from palhdl.sim import golden
from palhdl.sim.driver import matmul

# W = 5, a 16-bit wrapping accumulator, a 10-bit term window (a cheap board configuration).
CHEAP = MacConfig(pal8, mantissa_bits=5, acc_bits=16, acc_frac_bits=6, term_bits=10, saturate=False)


@pytest.mark.parametrize(
    ("output", "readout", "message"),
    [
        ("float32", "pal", "readout 'pal' cannot give output 'float32'"),
        ("pal", "float32", "readout 'float32' cannot give output 'pal'"),
        ("raw", "float32", "readout 'float32' cannot give output 'raw'"),
        ("int8", None, r"output must be one of 'raw', 'float32', 'pal', not 'int8'"),
        ("pal", "fp8", r"readout must be one of 'raw', 'float32', 'pal', not 'fp8'"),
    ],
)
def test_impossible_readouts_are_refused(output, readout, message):
    codes = np.ones((2, 2), np.int64)
    with pytest.raises(ValueError, match=message):
        matmul(codes, codes, config=CHEAP, output=output, readout=readout)


def test_raw_readout_converted_on_the_host():
    rng = np.random.default_rng(21)
    a = rng.standard_normal((3, 4)) * np.exp2(rng.integers(-5, 5, size=(3, 1)))
    b = rng.standard_normal((4, 3))
    expected = golden.matmul_values(a, b, CHEAP)
    result, _ = matmul(a, b, config=CHEAP, rows=2, cols=2, output="float32", readout="raw")
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result.view(np.uint32), expected.to_float32_bits())
    codes = rng.integers(0, 1 << pal8.width, size=(3, 4))
    expected = golden.matmul(codes, codes.T, CHEAP)
    result, _ = matmul(codes, codes.T, config=CHEAP, rows=2, cols=2, output="pal", readout="raw")
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, expected.to_pal())


@pytest.mark.parametrize(
    ("config", "block_size", "shape"),
    [
        (MacConfig(pal8), 1, (3, 5, 2)),
        (CHEAP, 4, (5, 10, 3)),
        (MacConfig(pal8).retarget(PALFormat(int_bits=3, frac_bits=4)), 32, (3, 70, 5)),
    ],
)
def test_block_scaled_matmul_through_tiles(config, block_size, shape):
    """Tiles (with padding) of block-scaled operands carry each element's offset to the PEs."""
    m, k, n = shape
    rng = np.random.default_rng(block_size)
    a = rng.standard_t(3, (m, k)) * np.exp2(rng.integers(-12, 12, (m, k)))
    b = rng.laplace(size=(k, n)) * np.exp2(rng.integers(-12, 12, (k, 1)))
    a[0, 1] = np.nan
    b[2, :] = 0.0
    expected = golden.matmul_values(a, b, config, block_size=block_size)
    result, stats = matmul(
        a, b, config=config, rows=2, cols=2, output="raw", block_size=block_size, backpressure=3
    )
    np.testing.assert_array_equal(result["acc"], expected.acc)
    np.testing.assert_array_equal(result["nan"].astype(bool), expected.nan)
    np.testing.assert_array_equal(result["overflow"].astype(bool), expected.overflow)
    np.testing.assert_array_equal(result["scale"], expected.scale_exp)
    assert stats.macs == m * k * n
    assert expected.nan[0].all() and not expected.nan[1:].any()


def test_block_scaling_needs_float_operands():
    codes = np.ones((2, 2), np.int64)
    with pytest.raises(ValueError, match="block_size needs float operands"):
        matmul(codes, codes, config=CHEAP, block_size=2)
    with pytest.raises(ValueError, match="block_size needs adaptive=True"):
        matmul(np.ones((2, 2)), np.ones((2, 2)), config=CHEAP, block_size=2, adaptive=False)
    with pytest.raises(ValueError, match="block_size must be"):
        matmul(np.ones((2, 2)), np.ones((2, 2)), config=CHEAP, block_size=0)


def test_backend_default_comes_from_the_environment(monkeypatch):
    """``PALHDL_BACKEND`` picks the default transport (checked before anything runs)."""
    codes = np.ones((2, 2), np.int64)
    monkeypatch.setenv("PALHDL_BACKEND", "spice")
    with pytest.raises(ValueError, match="PALHDL_BACKEND must be one of"):
        matmul(codes, codes, config=CHEAP)
    result, _ = matmul(codes, codes, config=CHEAP, backend="pysim", output="raw")
    np.testing.assert_array_equal(result["acc"], golden.matmul(codes, codes, CHEAP).acc)


@pytest.mark.parametrize("output", ["float32", "pal", "raw"])
@pytest.mark.parametrize(("m", "n"), [(0, 3), (2, 0), (0, 0)])
def test_an_operand_without_rows_or_columns_gives_the_empty_result(m, n, output):
    a, b = np.ones((m, 4)), np.ones((4, n))
    expected = golden.matmul_values(a, b, CHEAP)  # golden handles the empty shapes
    assert expected.acc.shape == (m, n)
    result, stats = matmul(a, b, config=CHEAP, output=output)
    if output == "raw":
        assert sorted(result) == ["acc", "nan", "overflow", "scale"]
        assert all(v.shape == (m, n) and v.dtype == np.int64 for v in result.values())
    else:
        dtype = np.float32 if output == "float32" else pal8.code_dtype
        assert result.shape == (m, n) and result.dtype == dtype
    assert (stats.tiles, stats.cycles, stats.macs) == (0, 0, 0)
    codes, _ = matmul(np.ones((m, 4), np.int64), np.ones((4, n), np.int64), config=CHEAP)
    assert codes.shape == (m, n) and codes.dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rows": 0}, ValueError, r"rows must be in \[1, 64\], not 0"),
        ({"cols": 65}, ValueError, r"cols must be in \[1, 64\], not 65"),
        ({"rows": 2.0}, TypeError, "rows must be an integer"),
    ],
)
def test_bad_geometry_is_refused_even_for_an_empty_product(kwargs, error, message):
    with pytest.raises(error, match=message):
        matmul(np.ones((0, 2)), np.ones((2, 2)), config=CHEAP, **kwargs)
