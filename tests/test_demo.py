"""Tests of ``palhdl.demo``: the RTL part of ``palhdl demo`` and the ``palhdl sim`` command."""

import io
import math

import numpy as np
import pytest

from palhdl.cli import main
from palhdl.demo import (
    MAX_ELEMENTS,
    TEST_DIGITS,
    digits_mlp,
    report_matmul,
    run_array_demo,
    run_random_matmul,
)
from palhdl.format import PALFormat, pal8
from palhdl.sim.driver import MatmulStats

NAMES = ("pal8", "pal16", "FP8 E4M3", "FP8 E5M2", "INT8", "BF16")


@pytest.mark.slow
def test_palhdl_demo_command(capsys):
    # --batch 1 keeps the RTL part of the demo short; tests/synth/test_build.py builds.
    assert main(["demo", "--seed", "1", "--batch", "1", "--no-build"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert name in out
    assert "y rel.Frobenius err" in out
    assert "bit-exact with golden.matmul:  yes" in out
    assert "layer 1 of a 64-32-10 MLP on scikit-learn's digits, batch 1" in out


def test_run_array_demo_is_bit_exact():
    out = io.StringIO()
    assert run_array_demo(rows=4, cols=4, batch=1, seed=2, out=out)
    text = out.getvalue()
    assert "batch 1 (1x64 @ 64x32), on a simulated 4x4 pal8 systolic array" in text
    assert "  bit-exact with golden.matmul:  yes" in text.splitlines()
    assert "whole network on 397 test digits" in text


def test_digits_mlp_shapes():
    x_test, y_test, (w1, b1, w2, b2) = digits_mlp(3)
    assert x_test.shape == (397, 64) and y_test.shape == (397,) and TEST_DIGITS == 397
    assert (w1.shape, b1.shape, w2.shape, b2.shape) == ((64, 32), (32,), (32, 10), (10,))
    assert x_test.min() >= 0 and x_test.max() <= 1


def test_report_matmul_compares_bits_and_reports_the_error():
    stats = MatmulStats(cycles=200, macs=100, tiles=3, peak_macs_per_cycle=4, seconds=2.0)
    reference = np.array([[1.0, 2.0]])
    result = np.array([[1.0, 2.5]], dtype=np.float32)
    out = io.StringIO()
    assert report_matmul("  label", result, result.copy(), reference, stats, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "  label"
    assert lines[1] == "  bit-exact with golden.matmul:  yes"
    assert lines[2] == f"  relative error vs float64:     {0.5 / math.sqrt(5):.4f} (Frobenius)"
    assert lines[3] == "  3 tiles, 200 cycles, 100 MACs, utilisation 12.5%, 100 simulated cycles/s"
    out = io.StringIO()
    other = np.array([[1.0, -0.0]], dtype=np.float32)  # 0.0 and -0.0 differ in their bits
    assert not report_matmul(
        "x", np.array([[1.0, 0.0]], dtype=np.float32), other, reference, stats, out
    )
    assert "bit-exact with golden.matmul:  NO" in out.getvalue()


@pytest.mark.parametrize(
    ("output", "line"),
    [
        ("float32", "  bit-exact with golden.matmul:  yes"),
        ("pal", "  PAL results bit-exact with golden.matmul: yes"),
        ("raw", "  raw accumulators bit-exact with golden.matmul: yes"),
    ],
)
def test_run_random_matmul_is_bit_exact_in_every_readout(output, line, tmp_path):
    out = io.StringIO()
    vcd = tmp_path / "wave.vcd"
    fmt = PALFormat(int_bits=5, frac_bits=2)
    exact = run_random_matmul(
        fmt=fmt,
        rows=2,
        cols=1,
        m=3,
        k=2,
        n=1,
        output=output,
        pipelined=output == "pal",
        seed=4,
        vcd_path=str(vcd),
        out=out,
    )
    text = out.getvalue()
    assert exact, text
    assert line in text.splitlines()
    assert text.startswith(
        f"3x2 @ 2x1 Gaussian matmul on a simulated 2x1 {fmt} array (output {output}"
    )
    assert f"waveform written to {vcd}" in text and vcd.stat().st_size > 0


def test_run_random_matmul_names_the_pe_kind():
    out = io.StringIO()
    assert run_random_matmul(
        fmt=pal8, rows=1, cols=1, m=1, k=1, n=1, output="float32", pipelined=False, seed=0, out=out
    )
    assert "combinational PEs" in out.getvalue()


def test_run_array_demo_rejects_a_batch_beyond_the_test_set():
    with pytest.raises(ValueError, match=r"batch must be in \[1, 397\], not 398"):
        run_array_demo(batch=398, out=io.StringIO())


@pytest.mark.parametrize(
    ("m", "k", "n", "message"),
    [
        ((1 << 24) + 1, 1, 1, r"m x k = 16777217"),
        (1, 1 << 23, 4, r"k x n = 33554432"),
        (1 << 13, 1, 1 << 12, r"m x n = 33554432"),
    ],
)
def test_run_random_matmul_bounds_its_sizes_before_any_work(m, k, n, message):
    with pytest.raises(ValueError, match=rf"{message} elements, above the limit of {MAX_ELEMENTS}"):
        run_random_matmul(
            fmt=pal8, rows=1, cols=1, m=m, k=k, n=n, output="float32", pipelined=False, seed=0
        )
