"""Bitstream builds (synth/build.py) and the ``palhdl build`` command.

The build tests run the real YoWASP tools: one small host-link accelerator per board all the way
to a bitstream, and two failing builds of tiny stand-in cores (monkeypatched over
``HostLinkCore``) that exercise the "misses timing" and "does not fit" paths in seconds.
"""

from __future__ import annotations

import functools
import json
import operator
import re

import pytest
from amaranth.hdl import Cat, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.boards.platforms import get_board
from palhdl.cli import main
from palhdl.format import MacConfig, pal8
from palhdl.synth import build as build_module
from palhdl.synth.build import STAGES, BuildError, build
from palhdl.synth.report import BuildReport, ClockTiming
from palhdl.synth.toolchain import TOOLS

# --- build parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"board": "de10"}, ValueError, "board must be one of"),
        ({"rows": 0}, ValueError, r"rows must be in \[1, inf\], not 0"),
        ({"cols": 2.0}, TypeError, "cols must be an integer"),
        ({"fmt": "pal9"}, ValueError, "fmt must be one of 'pal8', 'pal16'"),
        ({"fmt": 8}, TypeError, "fmt must be a PALFormat"),
        ({"config": "exact"}, TypeError, "config must be a MacConfig"),
        ({"fmt": "pal16", "config": MacConfig(pal8)}, ValueError, "does not match config.fmt"),
        ({"clk_freq": 300e6}, ValueError, "clk_freq must be between 16 MHz and 275 MHz"),
        ({"allow_timing_fail": 1}, TypeError, "allow_timing_fail must be a bool"),
        ({"seed": "1"}, TypeError, "seed must be an integer"),
        ({"progress": "yes"}, TypeError, "progress must be a bool"),
        ({"loadable": 1}, TypeError, "loadable must be a bool"),
        ({"block_scaled": "no"}, TypeError, "block_scaled must be a bool"),
        ({"board": "ulx3s-85f", "k_max": 4096}, ValueError, "k_max 4096 is too large"),
        ({"baud": 10**9}, ValueError, "baud 1000000000 is too fast"),
        ({"rows": 6, "cols": 6}, ValueError, r"36 PEs need 36 block RAMs .* has 30 \(at most 30"),
        ({"fmt": "pal16", "rows": 16, "cols": 16}, ValueError, "6144 flip-flops, .* has 5280"),
        (
            {"board": "ulx3s-85f", "rows": 21, "cols": 20},
            ValueError,
            r"420 PEs need 210 block RAMs .* \(one per 2 PEs\), the device has 208",
        ),
    ],
)
def test_build_rejects_bad_parameters_before_running_tools(tmp_path, kwargs, error, message):
    arguments = {"board": "icebreaker", "out_dir": tmp_path / "out", **kwargs}
    with pytest.raises(error, match=message):
        build(arguments.pop("board"), **arguments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("out_dir", "error", "message"),
    [
        ("/proc/x", OSError, r"out_dir '/proc/x': cannot write there"),
        ("/dev/null/x", ValueError, r"'/dev/null' is a file, not a directory"),
    ],
)
def test_build_checks_out_dir_before_running_tools(out_dir, error, message):
    with pytest.raises(error, match=message):
        build("icebreaker", out_dir=out_dir, progress=False)


def test_the_default_arrays_pass_the_fit_check():
    for name in ("icebreaker", "ulx3s-85f"):
        board = get_board(name)
        for config in board.configs:
            pe = board.arithmetic(config)
            build_module.check_fit(
                board,
                rows=board.rows,
                cols=board.cols,
                term=pe.term,
                table_ports=pe.table_ports,
                config=config,
            )


def test_build_reports_a_missing_tool_before_starting(monkeypatch, tmp_path):
    monkeypatch.delenv("ICEPACK", raising=False)
    monkeypatch.setitem(TOOLS, "ICEPACK", "palhdl-no-such-icepack")
    with pytest.raises(
        BuildError, match=r"palhdl-no-such-icepack not found \(needed for ICEPACK\)"
    ):
        build("icebreaker", out_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_build_reports_bad_parameters(capsys, tmp_path):
    assert main(["build", "--board", "nope", "--out", str(tmp_path)]) == 2
    assert "board must be one of 'icebreaker', 'ulx3s-85f'" in capsys.readouterr().err
    assert main(["build", "--board", "ulx3s-85f", "--freq", "500", "--out", str(tmp_path)]) == 2
    assert "clk_freq must be between 3.125 MHz and 400 MHz" in capsys.readouterr().err
    too_wide = ["--acc-bits", "20", "--term-bits", "25"]
    assert main(["build", "--board", "icebreaker", *too_wide, "--out", str(tmp_path)]) == 2
    assert "term_bits must be in [2, 19], not 25" in capsys.readouterr().err


def test_cli_build_passes_the_accumulator_options(monkeypatch, tmp_path):
    calls = []

    def fake_build(board, **kwargs):
        calls.append((board, kwargs))
        raise BuildError("stop here", None)

    monkeypatch.setattr("palhdl.synth.build.build", fake_build)
    out = str(tmp_path)
    assert main(["build", "--board", "icebreaker", "--out", out]) == 1
    assert calls[-1][1]["config"] is None and calls[-1][1]["output"] is None  # board defaults
    window = ["--acc-bits", "20", "--term-bits", "11", "--mantissa-bits", "5", "--wrap"]
    assert main(["build", "--board", "icebreaker", *window, "--out", out]) == 1
    assert calls[-1][1]["config"] == MacConfig(
        pal8, mantissa_bits=5, acc_bits=20, term_bits=11, saturate=False
    )
    assert main(["build", "--board", "icebreaker", "--acc-bits", "24", "--out", out]) == 1
    assert calls[-1][1]["config"] == MacConfig(pal8, acc_bits=24)
    assert calls[-1][1]["loadable"] is None and calls[-1][1]["block_scaled"] is None
    assert (
        main(["build", "--board", "icebreaker", "--loadable", "--block-scaled", "--out", out]) == 1
    )
    assert calls[-1][1]["loadable"] is True and calls[-1][1]["block_scaled"] is True


@pytest.mark.parametrize("options", [{}, {"loadable": True}, {"block_scaled": True}])
def test_build_passes_the_table_options_to_the_core(monkeypatch, tmp_path, options):
    """The top ``build`` elaborates carries the options (default: the board's, off)."""
    seen = {}

    def fake_build_top(make_top, board, report, **_):
        top = make_top()
        board.platform().prepare(top, name="top")  # elaborates it, as the build would
        seen.update(core=top.core, report=report)
        return report

    monkeypatch.setattr(build_module, "build_top", fake_build_top)
    build("icebreaker", rows=1, cols=2, out_dir=tmp_path / "out", progress=False, **options)
    for name in ("loadable", "block_scaled"):
        assert getattr(seen["core"], name) == options.get(name, False)
        assert getattr(seen["report"], name) == options.get(name, False)
    text = seen["report"].to_markdown()
    assert ("loadable term table" in text) == ("loadable" in options)
    assert ("block-scaled operands" in text) == ("block_scaled" in options)


# --- failing builds with real tools (stand-in cores) -------------------------------------------


class _TimingStandIn(wiring.Component):
    """rx/tx/status ports like HostLinkCore; a 32-bit counter that cannot run at 275 MHz."""

    @classmethod
    def check_parameters(cls, **_):
        """Accept the core's parameters (``build`` checks them first); ignored."""

    def __init__(self, **_):
        super().__init__({"rx": In(1), "tx": Out(1), "status": Out(2)})

    def elaborate(self, platform):
        m = Module()
        count = Signal(32)
        m.d.sync += [count.eq(count + 1), self.tx.eq(self.rx ^ count[-1])]
        m.d.comb += self.status.eq(count[-2:])
        return m


class _DSPStandIn(wiring.Component):
    """Nine SB_MAC16 multipliers: the iCE40UP5K has eight."""

    @classmethod
    def check_parameters(cls, **_):
        """Accept the core's parameters (``build`` checks them first); ignored."""

    def __init__(self, **_):
        super().__init__({"rx": In(1), "tx": Out(1)})

    def elaborate(self, platform):
        m = Module()
        outputs = []
        for index in range(9):
            product = Signal(32)
            operand = Cat(self.rx, Signal(15))
            m.submodules[f"mac{index}"] = Instance(
                "SB_MAC16", i_CLK=0, i_A=operand, i_B=operand, o_O=product
            )
            outputs.append(product[0])
        m.d.sync += self.tx.eq(functools.reduce(operator.xor, outputs))
        return m


@pytest.mark.slow
def test_build_that_misses_timing_fails_with_the_numbers(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(build_module, "HostLinkCore", _TimingStandIn)
    out = tmp_path / "timing"
    code = main(["build", "--board", "icebreaker", "--freq", "276", "--out", str(out)])
    assert code == 2  # 276 MHz is above the iCE40 PLL's range: rejected before any tool runs
    assert main(["build", "--board", "icebreaker", "--freq", "270", "--out", str(out)]) == 1
    error = capsys.readouterr().err
    # nextpnr derives the constraint from the PLL dividers: 270 MHz up to its rounding.
    assert re.search(
        r"timing not met \(\S+: Fmax [\d.]+ MHz < 270\.\d\d MHz\); critical path ", error
    )
    data = json.loads((out / "report.json").read_text())
    assert data["timing_met"] is False and data["fits"] is True
    assert data["failure"].startswith("timing not met")
    assert data["bitstream"] is None and not (out / "top.bin").exists()
    assert data["clocks"][0]["fmax_mhz"] < 270 and data["clocks"][0]["met"] is False
    assert "Build FAILED: timing not met" in (out / "report.md").read_text()


@pytest.mark.slow
def test_build_that_does_not_fit_fails_with_the_numbers(monkeypatch, tmp_path):
    monkeypatch.setattr(build_module, "HostLinkCore", _DSPStandIn)
    with pytest.raises(BuildError) as caught:
        build("icebreaker", clk_freq=12e6, out_dir=tmp_path, progress=False)
    message = str(caught.value)
    assert message == (
        "the design does not fit the iCEBreaker (Lattice iCE40UP5K-SG48): ICESTORM_DSP 9/8 (112%)"
    )
    report = caught.value.report
    assert report.resources["DSP (SB_MAC16)"] == {"used": 9, "available": 8}
    assert not report.fits and report.clocks == []
    assert json.loads((tmp_path / "report.json").read_text())["fits"] is False


# --- real bitstreams ------------------------------------------------------------------------------

# Bitstream sync words: iCE40 configuration starts after 0x7EAA997E, ECP5 after 0xFFFFBDB3.
_SYNC_WORDS = {"top.bin": bytes.fromhex("7eaa997e"), "top.bit": bytes.fromhex("ffffbdb3")}


def _check_bitstream_build(out, report: BuildReport, *, mhz: float, bitstream: str) -> None:
    assert report.failure is None
    assert report.fits and report.timing_met
    assert report.bitstream == bitstream
    data = (out / bitstream).read_bytes()
    assert len(data) > 10_000
    assert _SYNC_WORDS[bitstream] in data[:256]
    assert list(report.stage_seconds) == list(STAGES)
    assert report.sync_mhz == pytest.approx(mhz, rel=1e-9)
    assert all(c.constraint_mhz == pytest.approx(mhz, rel=1e-3) for c in report.clocks)
    assert all(c.fmax_mhz >= c.constraint_mhz for c in report.clocks)
    saved = json.loads((out / "report.json").read_text())
    assert saved["fits"] is True and saved["timing_met"] is True
    assert saved["bitstream"] == bitstream
    assert all(
        0 < row["used"] <= row["available"] for row in saved["resources"].values() if row["used"]
    )
    assert "Build succeeded" in (out / "report.md").read_text()


@pytest.mark.slow
def test_icebreaker_bitstream_through_the_cli(tmp_path, capsys):
    out = tmp_path / "icebreaker"
    arguments = ["--rows", "1", "--cols", "1", "--k-max", "4", "--freq", "12", "--out", str(out)]
    assert main(["build", "--board", "icebreaker", *arguments]) == 0
    assert "Build succeeded" in capsys.readouterr().out
    report = BuildReport(
        **{
            key: value
            for key, value in json.loads((out / "report.json").read_text()).items()
            if key in BuildReport.__dataclass_fields__ and key != "clocks"
        }
    )
    report.clocks = [
        ClockTiming(c["net"], c["fmax_mhz"], c["constraint_mhz"])
        for c in json.loads((out / "report.json").read_text())["clocks"]
    ]
    assert report.pll is None  # 12 MHz is the oscillator itself
    assert report.resources["BRAM (4 kbit)"]["used"] >= 1
    _check_bitstream_build(out, report, mhz=12.0, bitstream="top.bin")


@pytest.mark.slow
def test_ulx3s_bitstream_with_pll(tmp_path):
    report = build(
        "ulx3s-85f",
        rows=1,
        cols=1,
        fmt=pal8,
        k_max=4,
        out_dir=tmp_path,
        progress=False,
    )
    assert report.pll is not None and report.format == "pal8"
    board_mhz = get_board("ulx3s-85f").clk_freq / 1e6  # timing met at the board's own clock
    _check_bitstream_build(tmp_path, report, mhz=board_mhz, bitstream="top.bit")


@pytest.mark.slow
def test_palhdl_demo_ends_by_building_the_default_icebreaker_bitstream(tmp_path, capsys):
    out = tmp_path / "icebreaker"
    assert main(["demo", "--batch", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Building the default iCEBreaker bitstream into {out}" in printed
    saved = json.loads((out / "report.json").read_text())
    board = get_board("icebreaker")
    assert (saved["rows"], saved["cols"], saved["output"]) == (board.rows, board.cols, "raw")
    assert saved["requested_mhz"] == pytest.approx(board.clk_freq / 1e6, rel=1e-9)
    # The iCE40 PLL's nearest to 40 MHz from 12 MHz: 12 * (DIVF + 1) / 2**DIVQ = 12 * 53 / 16.
    assert (board.clk_freq, saved["sync_mhz"]) == (40e6, pytest.approx(12 * 53 / 16, rel=1e-9))
    assert saved["fits"] and saved["timing_met"] and saved["bitstream"] == "top.bin"
    assert _SYNC_WORDS["top.bin"] in (out / "top.bin").read_bytes()[:256]
    assert (out / "report.md").read_text() in printed
