"""Comparison-array builds (synth/arraybuild.py): parameters, the report, one real iCE40 build."""

from __future__ import annotations

import json

import pytest

from palhdl.boards.platforms import get_board
from palhdl.format import MacConfig, pal8
from palhdl.hdl.providers import FP8Arithmetic, IntArithmetic, PALArithmetic
from palhdl.synth.arraybuild import ArrayBuildReport, build_array, describe_arithmetic
from palhdl.synth.build import STAGES
from palhdl.synth.report import ClockTiming

INT8 = IntArithmetic(width=8, acc_bits=22)


def test_describe_arithmetic():
    assert describe_arithmetic(INT8) == "int8, 22-bit wrapping accumulator"
    fp8 = FP8Arithmetic(variant="e4m3", acc_bits=32, acc_frac_bits=12, term_bits=14, saturate=False)
    assert describe_arithmetic(fp8) == (
        "fp8 e4m3, accumulator 32 bits (12 fraction), terms below 2**14, wrapping"
    )
    config = MacConfig(pal8, mantissa_bits=5, acc_bits=18, acc_frac_bits=8, term_bits=11)
    assert describe_arithmetic(PALArithmetic(config=config, pipelined=True, term="logic")) == (
        "pal8 (logic term, registered, W = 5), accumulator 18 bits (8 fraction), "
        "terms below 2**11, saturating"
    )
    shared = PALArithmetic(config=config, term="signed_table", table_ports=2)
    assert describe_arithmetic(shared).startswith(
        "pal8 (signed table term shared by 2 PEs, unregistered, W = 5), accumulator 18 bits"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"board": "de10"}, ValueError, "board must be one of"),
        ({"arithmetic": "int8"}, TypeError, "arithmetic must be an Arithmetic"),
        ({"rows": 0}, ValueError, r"rows must be in \[1, 64\], not 0"),
        ({"cols": 2.5}, TypeError, "cols must be an integer"),
        ({"k": 0}, ValueError, r"k must be in \[1, 65536\], not 0"),
        ({"clk_freq": 300e6}, ValueError, "clk_freq must be between 16 MHz and 275 MHz"),
        ({"dsp": "no"}, TypeError, "dsp must be a bool"),
        ({"pack": 0}, TypeError, "pack must be a bool"),
        ({"seed": 1.0}, TypeError, "seed must be an integer"),
        ({"allow_timing_fail": None}, TypeError, "allow_timing_fail must be a bool"),
        ({"progress": "yes"}, TypeError, "progress must be a bool"),
    ],
)
def test_build_array_rejects_bad_parameters_before_running_tools(tmp_path, kwargs, error, message):
    arguments = {"board": "icebreaker", "arithmetic": INT8, "rows": 2, "cols": 2, **kwargs}
    with pytest.raises(error, match=message):
        build_array(arguments.pop("board"), out_dir=tmp_path / "out", **arguments)
    assert not (tmp_path / "out").exists()


def _report(**changes) -> ArrayBuildReport:
    fields = {
        "board": "icebreaker",
        "board_title": "iCEBreaker (Lattice iCE40UP5K-SG48)",
        "arithmetic": "int8, 22-bit wrapping accumulator",
        "rows": 2,
        "cols": 4,
        "dsp": True,
        "k": 64,
        "requested_mhz": 40.0,
        "sync_mhz": 39.75,
        "pll": {"DIVR": 0, "DIVF": 52, "DIVQ": 4, "FILTER_RANGE": 1},
        "resources": {
            "Logic cells (LUT4+FF+carry)": {"used": 1119, "available": 5280},
            "DSP (SB_MAC16)": {"used": 8, "available": 8},
        },
        "clocks": [ClockTiming("board.clk", 41.2, 39.75)],
        "stage_seconds": {"elaborate": 0.5, "synth": 3.5, "place": 5.0, "route": 2.0},
    }
    return ArrayBuildReport(**{**fields, **changes})


def test_report_figures_round_trip_and_markdown():
    report = _report()
    assert report.fits and report.routed and report.timing_met
    assert report.fmax_mhz == 41.2 and report.pes == 8
    assert report.peak_macs_per_second == pytest.approx(8 * 39.75e6)
    assert report.total_seconds == pytest.approx(11.0)
    saved = json.loads(json.dumps(report.to_dict()))
    assert saved["fits"] and saved["routed"] and saved["timing_met"] and saved["pes"] == 8
    assert saved["clocks"] == [
        {"net": "board.clk", "fmax_mhz": 41.2, "constraint_mhz": 39.75, "met": True}
    ]
    assert ArrayBuildReport.from_dict(saved) == report
    text = report.to_markdown()
    assert text.startswith(
        "# palhdl arrays: iCEBreaker (Lattice iCE40UP5K-SG48)\n\nBuild succeeded"
    )
    assert "- Array: 2 x 4 = 8 PEs of int8, 22-bit wrapping accumulator" in text
    assert "- Synthesis: DSP blocks allowed" in text
    assert "PLL (DIVR=0, DIVF=52, DIVQ=4, FILTER_RANGE=1) makes 39.75 MHz" in text
    assert "8 MAC/cycle x 39.75 MHz = 0.318 GMAC/s" in text
    assert "| DSP (SB_MAC16) | 8 | 8 | 100% |" in text
    assert "| `board.clk` | 41.20 | 39.75 | yes |" in text
    assert "| total | 11.0 |" in text


def test_report_of_failed_builds():
    unplaced = _report(
        resources={"Logic cells (LUT4+FF+carry)": {"used": 5300, "available": 5280}},
        clocks=[],
        failure="the design does not fit",
        dsp=False,
    )
    assert not unplaced.fits and not unplaced.routed and not unplaced.timing_met
    assert unplaced.fmax_mhz is None
    text = unplaced.to_markdown()
    assert "Build FAILED: the design does not fit" in text
    assert "logic only (no DSP blocks)" in text and "no timing" in text
    slow = _report(clocks=[ClockTiming("board.clk", 30.0, 39.75)])
    assert slow.routed and not slow.timing_met
    assert "timing was NOT met" in slow.to_markdown()


@pytest.mark.slow
def test_small_icebreaker_array_builds_to_a_bitstream(tmp_path):
    board = get_board("icebreaker")
    report = build_array(
        board, arithmetic=INT8, rows=2, cols=2, clk_freq=12e6, out_dir=tmp_path, progress=False
    )
    assert report.failure is None and report.timing_met and report.pll is None
    assert report.resources["DSP (SB_MAC16)"] == {"used": 4, "available": 8}
    assert report.bitstream == "top.bin"
    assert bytes.fromhex("7eaa997e") in (tmp_path / "top.bin").read_bytes()[:256]
    assert list(report.stage_seconds) == list(STAGES)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert ArrayBuildReport.from_dict(saved) == report
    logic_only = build_array(
        board,
        arithmetic=INT8,
        rows=1,
        cols=2,
        clk_freq=12e6,
        dsp=False,
        pack=False,
        out_dir=tmp_path / "lut",
        progress=False,
    )
    assert logic_only.resources["DSP (SB_MAC16)"]["used"] == 0
    assert logic_only.bitstream is None and "pack" not in logic_only.stage_seconds
    assert not (tmp_path / "lut" / "top.bin").exists()
    luts = "LUT4 (synthesis)"
    assert logic_only.resources[luts]["used"] > report.resources[luts]["used"] / 2
