"""The Icarus Verilog path (:mod:`palhdl.sim.icarus`), bit for bit against the golden model."""

import numpy as np
import pytest
from amaranth.hdl import Fragment

from palhdl.cli import main
from palhdl.format import MacConfig, pal8
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import SystolicArray
from palhdl.sim import golden
from palhdl.sim.driver import PysimTransport, matmul, split_tiles
from palhdl.sim.icarus import IcarusTransport
from palhdl.sim.simulators import SimulatorNotFound

# W = 5, a 16-bit wrapping accumulator, a 10-bit term window: wraps on large sums.
CHEAP = MacConfig(pal8, mantissa_bits=5, acc_bits=16, acc_frac_bits=6, term_bits=10, saturate=False)


@pytest.mark.parametrize("backpressure", [None, 7])
def test_pal8_float32_readout_is_bit_exact(backpressure):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((5, 11)) * np.exp2(rng.integers(-10, 10, (5, 11)))
    b = rng.standard_normal((11, 4))
    a[4, 2] = np.nan
    config = MacConfig(pal8)
    expected = golden.matmul_values(a, b, config).to_float32_bits()
    result, stats = matmul(
        a, b, config=config, rows=2, cols=3, backend="icarus", backpressure=backpressure
    )
    np.testing.assert_array_equal(result.view(np.uint32), expected)
    assert stats.extra["backend"] == "icarus"


def test_wrapping_raw_readout_and_cycles_match_pysim():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 1 << pal8.width, size=(3, 33))
    b = rng.integers(0, 1 << pal8.width, size=(33, 4))
    expected = golden.matmul(a, b, CHEAP)
    assert (expected.acc < 0).any()  # the 16-bit accumulator wraps on these sums
    result, _ = matmul(a, b, config=CHEAP, rows=2, cols=2, output="raw", backend="icarus")
    np.testing.assert_array_equal(result["acc"], expected.acc)
    np.testing.assert_array_equal(result["scale"], expected.scale_exp)
    tiles = split_tiles(a, b, np.zeros(3, int), np.zeros(4, int), rows=2, cols=2)

    def cycles(transport_class):
        array = SystolicArray(arithmetic=PALArithmetic(config=CHEAP), rows=2, cols=2, output="raw")
        return transport_class(array).run(tiles)[1].cycles

    assert cycles(IcarusTransport) == cycles(PysimTransport)


def test_waveform_on_request(tmp_path):
    codes = np.arange(4).reshape(2, 2)
    path = tmp_path / "run.vcd"
    matmul(codes, codes, config=CHEAP, rows=2, cols=2, backend="icarus", vcd_path=path)
    assert "$enddefinitions" in path.read_text()


def test_missing_icarus_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    codes = np.ones((2, 2), np.int64)
    with pytest.raises(SimulatorNotFound, match="Icarus Verilog not found: apt-get install"):
        matmul(codes, codes, config=CHEAP, rows=1, cols=1, backend="icarus")
    assert main(["sim", "--backend", "icarus", "-m", "1", "-k", "1", "-n", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "palhdl sim: error: Icarus Verilog not found: apt-get install iverilog\n"


def test_cli_reports_bit_exactness_and_speed(capsys):
    argv = ["sim", "--backend", "icarus", "--rows", "2", "--cols", "2", "-m", "3"]
    assert main([*argv, "-k", "20", "-n", "3", "--output", "pal"]) == 0
    out = capsys.readouterr().out
    assert "PAL results bit-exact with golden.matmul: yes" in out
    assert "icarus model: compiled in" in out and "simulated cycles/s" in out


def test_loadable_arrays_are_refused():
    arithmetic = PALArithmetic(config=MacConfig(pal8), loadable=True)
    array = SystolicArray(arithmetic=arithmetic, rows=1, cols=1)
    Fragment.get(array, None)  # built (and no unused-elaboratable warning)
    with pytest.raises(ValueError, match="array: the Icarus testbench drives no table stream"):
        IcarusTransport(array)
