"""The compiled Verilator path (:mod:`palhdl.sim.verilator`), bit for bit against the golden model.

Each distinct array compiles once (about 10 s for a small one) into the compile cache and is
shared by the tests that use the same array; the layer-sized 16 x 16 run is slow.
"""

import numpy as np
import pytest

from palhdl.cli import main
from palhdl.format import MacConfig, PALFormat, pal8
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import SystolicArray
from palhdl.sim import golden
from palhdl.sim.compiled import OPT_ENV, cxx_optimisation
from palhdl.sim.driver import PysimTransport, matmul, split_tiles
from palhdl.sim.simulators import SimulatorNotFound
from palhdl.sim.verilator import VerilatorTransport, words

# W = 5, a 16-bit wrapping accumulator, a 10-bit term window: wraps on large sums.
CHEAP = MacConfig(pal8, mantissa_bits=5, acc_bits=16, acc_frac_bits=6, term_bits=10, saturate=False)


def assert_raw_equal(result, expected):
    np.testing.assert_array_equal(result["acc"], expected.acc)
    np.testing.assert_array_equal(result["nan"].astype(bool), expected.nan)
    np.testing.assert_array_equal(result["overflow"].astype(bool), expected.overflow)
    np.testing.assert_array_equal(result["scale"], expected.scale_exp)


def spread(rng, shape):
    """Gaussian values over a wide dynamic range (2**-10 .. 2**10)."""
    return rng.standard_normal(shape) * np.exp2(rng.integers(-10, 10, shape))


@pytest.mark.parametrize(
    ("shape", "backpressure"),
    [((5, 7, 4), None), ((1, 1, 1), None), ((2, 40, 7), None), ((6, 9, 5), 11)],
)
def test_pal8_float32_readout_is_bit_exact(shape, backpressure):
    m, k, n = shape
    rng = np.random.default_rng(k)
    a, b = spread(rng, (m, k)), spread(rng, (k, n))
    if m > 1:
        a[-1, 0] = np.nan  # a NaN row of results
    config = MacConfig(pal8)
    expected = golden.matmul_values(a, b, config).to_float32_bits()
    result, stats = matmul(
        a, b, config=config, rows=2, cols=3, backend="verilator", backpressure=backpressure
    )
    np.testing.assert_array_equal(result.view(np.uint32), expected)
    assert stats.macs == m * k * n and stats.extra["backend"] == "verilator"
    assert stats.cycles >= k * len(range(0, m, 2)) * len(range(0, n, 3))


def test_wrapping_accumulator_raw_and_host_conversions():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 1 << pal8.width, size=(5, 33))
    b = rng.integers(0, 1 << pal8.width, size=(33, 3))
    expected = golden.matmul(a, b, CHEAP)
    assert (expected.acc < 0).any()  # the 16-bit accumulator wraps on these sums
    options = {"config": CHEAP, "rows": 2, "cols": 2, "readout": "raw", "backend": "verilator"}
    result, _ = matmul(a, b, output="raw", **options)
    assert_raw_equal(result, expected)
    result, _ = matmul(a, b, output="float32", **options)
    np.testing.assert_array_equal(result.view(np.uint32), expected.to_float32_bits())
    result, _ = matmul(a, b, output="pal", backpressure=2, **options)
    np.testing.assert_array_equal(result, expected.to_pal())


def test_pal_readout_of_another_split():
    config = MacConfig(PALFormat(int_bits=3, frac_bits=4))
    rng = np.random.default_rng(8)
    a, b = spread(rng, (3, 12)), spread(rng, (12, 4))
    expected = golden.matmul_values(a, b, config).to_pal()
    result, _ = matmul(a, b, config=config, rows=2, cols=2, output="pal", backend="verilator")
    np.testing.assert_array_equal(result, expected)


def test_block_scaled_operands():
    rng = np.random.default_rng(4)
    a = rng.standard_t(3, (5, 10)) * np.exp2(rng.integers(-12, 12, (5, 10)))
    b = rng.laplace(size=(10, 3)) * np.exp2(rng.integers(-12, 12, (10, 1)))
    expected = golden.matmul_values(a, b, CHEAP, block_size=4)
    result, _ = matmul(
        a, b, config=CHEAP, rows=2, cols=2, output="raw", block_size=4, backend="verilator"
    )
    assert_raw_equal(result, expected)


def test_cycles_match_the_python_simulator():
    """Both backends run the same RTL with the same full-rate handshakes: same cycle count."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(3, 6))
    b = rng.integers(0, 256, size=(6, 4))
    tiles = split_tiles(a, b, np.zeros(3, int), np.zeros(4, int), rows=2, cols=2)

    def run(transport_class):
        array = SystolicArray(arithmetic=PALArithmetic(config=CHEAP), rows=2, cols=2, output="raw")
        return transport_class(array).run(tiles)

    fast, fast_stats = run(VerilatorTransport)
    slow, slow_stats = run(PysimTransport)
    assert fast_stats.cycles == slow_stats.cycles
    for fast_tile, slow_tile in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(fast_tile, slow_tile)


def test_compile_cache_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("PALHDL_CACHE", str(tmp_path))
    codes = np.arange(6).reshape(2, 3) % 256
    expected = golden.matmul(codes, codes.T, CHEAP)
    first, first_stats = matmul(
        codes, codes.T, config=CHEAP, rows=1, cols=1, output="raw", backend="verilator"
    )
    (executable,) = tmp_path.glob("verilator/*/Vstream")
    built = executable.stat().st_mtime_ns
    second, second_stats = matmul(
        codes, codes.T, config=CHEAP, rows=1, cols=1, output="raw", backend="verilator"
    )
    assert first_stats.extra["compiled"] and first_stats.extra["compile_seconds"] > 0
    assert not second_stats.extra["compiled"] and second_stats.extra["compile_seconds"] == 0
    assert executable.stat().st_mtime_ns == built
    assert len(list(tmp_path.glob("verilator/*"))) == 1  # no build directory left behind
    assert_raw_equal(first, expected)
    assert_raw_equal(second, expected)


def test_the_cxx_optimisation_level_is_chosen_checked_and_keyed(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(OPT_ENV, raising=False)
    assert cxx_optimisation() == "-O2"
    monkeypatch.setenv("PALHDL_CACHE", str(tmp_path))
    codes = np.arange(4).reshape(2, 2)
    for level in ("-O2", "-O1"):
        monkeypatch.setenv(OPT_ENV, level)
        result, stats = matmul(codes, codes, config=CHEAP, rows=1, cols=1, output="raw",
                               backend="verilator")  # fmt: skip
        assert stats.extra["compiled"]  # a new level is a new cache entry
        assert_raw_equal(result, golden.matmul(codes, codes, CHEAP))
    assert len(list(tmp_path.glob("verilator/*/Vstream"))) == 2
    monkeypatch.setenv(OPT_ENV, "-O3")
    with pytest.raises(ValueError, match="PALHDL_VERILATOR_OPT must be one of '-O0', '-O1', '-O2'"):
        matmul(codes, codes, config=CHEAP, rows=1, cols=1, backend="verilator")
    assert main(["sim", "--backend", "verilator", "-m", "1", "-k", "1", "-n", "1"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("palhdl sim: error: PALHDL_VERILATOR_OPT must be one of")
    assert err.count("\n") == 1


def test_waveform_on_request(tmp_path):
    codes = np.arange(4).reshape(2, 2)
    path = tmp_path / "run.vcd"
    result, _ = matmul(
        codes, codes, config=CHEAP, rows=2, cols=2, output="raw", backend="verilator",
        vcd_path=path,
    )  # fmt: skip
    assert_raw_equal(result, golden.matmul(codes, codes, CHEAP))
    text = path.read_text()
    assert "$enddefinitions" in text and " c__valid " in text


def test_words_are_little_endian_32_bit():
    assert words([1, 2**32 + 3], 33) == bytes([1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0])
    assert words([255], 8) == bytes([255, 0, 0, 0])


def test_missing_verilator_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VERILATOR_ROOT", str(tmp_path / "nowhere"))
    codes = np.ones((2, 2), np.int64)
    with pytest.raises(SimulatorNotFound, match="Verilator not found under VERILATOR_ROOT="):
        matmul(codes, codes, config=CHEAP, rows=1, cols=1, backend="verilator")
    assert main(["sim", "--backend", "verilator", "-m", "1", "-k", "1", "-n", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("palhdl sim: error: Verilator not found")
    assert captured.err.count("\n") == 1


def test_unknown_backend_is_refused():
    codes = np.ones((2, 2), np.int64)
    message = "backend must be one of 'pysim', 'verilator', 'icarus', not 'x'"
    with pytest.raises(ValueError, match=message):
        matmul(codes, codes, config=CHEAP, backend="x")


def test_cli_reports_bit_exactness_and_speed(capsys):
    argv = ["sim", "--backend", "verilator", "--rows", "2", "--cols", "3", "-m", "4"]
    assert main([*argv, "-k", "50", "-n", "6"]) == 0
    out = capsys.readouterr().out
    assert "bit-exact with golden.matmul:  yes" in out
    assert "verilator model:" in out and "simulated cycles/s" in out


@pytest.mark.slow
def test_layer_sized_matmul_on_16x16():
    """One real layer, 128x384 @ 384x384 (18.9M MACs), on the whole 16 x 16 array."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((128, 384)), rng.standard_normal((384, 384))
    config = MacConfig(pal8)
    result, stats = matmul(a, b, config=config, rows=16, cols=16, backend="verilator")
    expected = golden.matmul_values(a, b, config).to_float32_bits()
    np.testing.assert_array_equal(result.view(np.uint32), expected)
    assert stats.utilisation > 0.99
