"""Tests of the accuracy study (``palhdl.studies.accuracy``): its studies, tables and demo."""

import math

import numpy as np
import pytest

from palhdl.format import MacConfig, pal8
from palhdl.studies import accuracy

NAMES = ("pal8", "pal16", "FP8 E4M3", "FP8 E5M2", "INT8", "BF16")


def test_format_table_rejects_a_short_row():
    with pytest.raises(ValueError, match="every row must have 2 cells"):
        accuracy.format_table(["a", "b"], [["1"]])


# --- studies and presentation -----------------------------------------------------------------


def test_distribution_study_rows():
    rows = accuracy.distribution_study("gaussian", shape=(16, 32), mkn=(4, 40, 3))
    assert [r.scheme for r in rows] == accuracy.study_schemes()
    for row in rows:
        if row.scheme.kind.startswith("mx"):  # block by block: float64 sums in another order
            assert row.matmul_error == pytest.approx(row.operand_matmul_error, rel=1e-9)
        elif row.scheme.kind != "pal":
            assert row.matmul_error == row.operand_matmul_error
        assert 0 < row.matmul_error < 0.2
    by_label = {(r.scheme.label, r.scheme.scaling): r for r in rows}
    # The largest relative error of a value that neither flushes nor saturates is
    # 2**(1 / 2**(F + 1)) - 1; Gaussian data at this size never flush.
    assert by_label["pal8 (5.2)", "channel"].stats.max_rel <= 2 ** (1 / 8) - 1 + 1e-12
    assert by_label["pal16 (8.7)", "channel"].stats.max_rel <= 2 ** (1 / 256) - 1 + 1e-12


def test_skew_study_shows_what_channel_scaling_buys():
    rows = {(r.scheme.label, r.scheme.scaling): r for r in accuracy.skew_study(mkn=(32, 64, 32))}
    channel = rows["pal8 (4.3)", "channel"]
    assert channel.stats.flushed == 0
    assert channel.worst_row_sqnr_db > 25
    for scaling in ("none", "tensor"):
        assert rows["pal8 (4.3)", scaling].normalised_matmul_error > 3 * (
            channel.normalised_matmul_error
        )


def test_format_table_aligns_text_and_markdown():
    header = ["name", "value"]
    rows = [["a", "1"], ["bbb", "22.5"]]
    assert accuracy.format_table(header, rows) == (
        "name  value\n----  -----\na         1\nbbb    22.5"
    )
    assert accuracy.format_table(header, rows, markdown=True) == (
        "| name | value |\n| ---- | ----: |\n| a    |     1 |\n| bbb  |  22.5 |"
    )


def test_demo_layer_shapes():
    x, w = accuracy.demo_layer(0)
    assert x.shape == (64, 784) and w.shape == (784, 128)
    assert x.min() == 0 and 0.45 < np.mean(x == 0) < 0.55
    assert np.std(w) == pytest.approx(math.sqrt(2 / 784), rel=0.02)


def test_run_demo_prints_every_format(capsys):
    accuracy.run_demo(seed=2)
    out = capsys.readouterr().out
    for name in NAMES:
        assert name in out
    assert "synthetic" in out
    assert "pal8 accumulation is exact" in out
    assert "overflow flags set: 0" in out and "K = 784" in out
    # pal8's largest product term is max * max = 2**15.75, its mantissa 2**0.75 rounded to
    # 108 / 64 (W = 6): 108 * 2**31 LSBs of 2**-22; (2**50 - 1) // that = 4854.
    assert "51-bit accumulator (22 fraction bits)" in out and "K <= 4854" in out
    table = [line for line in out.splitlines() if line.startswith("pal8 (4.3)")]
    assert len(table) == 2
    error = float(table[0].split()[-1])
    assert 0 < error < 0.05


def test_mac_rounding_cost_tracks_the_mantissa_width():
    # A 1-bit mantissa table rounds every product to a power of two times 1, 1.5 or 2: several
    # dB; a 20-bit table in an exact accumulator loses nothing visible. Same data either way.
    coarse = accuracy.mac_rounding_cost(MacConfig(pal8, mantissa_bits=1), 64)
    fine = accuracy.mac_rounding_cost(MacConfig(pal8, mantissa_bits=20), 64)
    assert coarse.quantised_db == fine.quantised_db
    assert 25 < fine.quantised_db < 35  # pal8's own error on a matmul
    assert coarse.cost_db > 3
    assert abs(fine.cost_db) < 0.01
    # A term window too narrow for the data (terms of 2 bits) loses nearly everything.
    narrow = MacConfig(pal8, acc_bits=32, acc_frac_bits=12, term_bits=2, saturate=False)
    assert accuracy.mac_rounding_cost(narrow, 64).mac_db < 10
