"""Board tops, PLL settings and bitstream builds (boards/platforms.py, synth/build.py).

The PLL and report-parsing tests are pure Python. The build tests run the real YoWASP tools: one
small host-link accelerator per board all the way to a bitstream, and two failing builds of
tiny stand-in cores (monkeypatched over ``HostLinkCore``) that exercise the "misses timing" and
"does not fit" paths in seconds.
"""

from __future__ import annotations

import functools
import json
import operator
import re
from fractions import Fraction

import pytest
from amaranth.hdl import Cat, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.boards.hostlink import core as hostlink
from palhdl.boards.platforms import (
    BOARDS,
    ECP5PLL,
    ICE40PLL,
    BoardTop,
    ecp5_pll,
    get_board,
    ice40_pll,
)
from palhdl.cli import main
from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.studies import accuracy
from palhdl.synth.build import (
    STAGES,
    BuildError,
    BuildReport,
    ClockTiming,
    build,
    describe_nextpnr_failure,
    parse_nextpnr_report,
    parse_utilisation,
)

MHZ = 1_000_000

# --- PLL settings --------------------------------------------------------------------------------


def _ice40_output(f_in: int, pll: ICE40PLL) -> Fraction:
    """iCE40 SIMPLE feedback: f_in * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ), exactly."""
    return Fraction(f_in * (pll.divf + 1), (pll.divr + 1) * 2**pll.divq)


def _check_ice40_limits(f_in: int, pll: ICE40PLL) -> None:
    # iCE40 sysCLOCK PLL limits: PFD 10..133 MHz, VCO 533..1066 MHz, output 16..275 MHz.
    pfd = Fraction(f_in, pll.divr + 1)
    vco = pfd * (pll.divf + 1)
    assert 10 * MHZ <= pfd <= 133 * MHZ
    assert 533 * MHZ <= vco <= 1066 * MHZ
    assert 16 * MHZ <= _ice40_output(f_in, pll) <= 275 * MHZ
    assert 0 <= pll.divr <= 15 and 0 <= pll.divf <= 127 and 1 <= pll.divq <= 6


def test_ice40_pll_48mhz_from_12mhz():
    pll = ice40_pll(12e6, 48e6)
    _check_ice40_limits(12 * MHZ, pll)
    assert _ice40_output(12 * MHZ, pll) == 48 * MHZ
    assert pll.f_out == 48e6
    # 12 MHz into the phase detector is the lowest loop filter band (10..17 MHz).
    assert pll.filter_range == 1


@pytest.mark.parametrize("mhz", [16, 20, 25, 33, 40, 45, 48, 50, 60, 75, 100, 133, 200, 270])
def test_ice40_pll_within_one_percent_and_limits(mhz):
    pll = ice40_pll(12e6, mhz * 1e6)
    _check_ice40_limits(12 * MHZ, pll)
    achieved = _ice40_output(12 * MHZ, pll)
    assert abs(achieved - mhz * MHZ) <= Fraction(mhz * MHZ, 100)
    assert pll.f_out == pytest.approx(float(achieved), rel=1e-12)


def test_ice40_pll_rejects_unreachable_frequency_naming_the_nearest():
    # From 12 MHz only DIVR = 0 keeps the PFD >= 10 MHz; near 49 MHz DIVQ must be 4, so the
    # outputs are 12 MHz * (DIVF + 1) / 16: 48.75 MHz and 49.5 MHz around 49 MHz.
    with pytest.raises(ValueError, match=r"clk_freq 49 MHz .* nearest achievable .* 48\.75 MHz"):
        ice40_pll(12e6, 49e6, tolerance=0.001)


@pytest.mark.parametrize("mhz", [5, 15.9, 276, 1000])
def test_ice40_pll_rejects_out_of_range(mhz):
    with pytest.raises(ValueError, match=r"clk_freq must be between 16 MHz and 275 MHz"):
        ice40_pll(12e6, mhz * 1e6)


def test_ecp5_pll_150mhz_from_25mhz():
    pll = ecp5_pll(25e6, 150e6)
    # EHXPLLL with CLKOP feedback: out = in * CLKFB_DIV / CLKI_DIV; VCO = out * CLKOP_DIV.
    out = Fraction(25 * MHZ * pll.clkfb_div, pll.clki_div)
    assert out == 150 * MHZ
    assert 400 * MHZ <= out * pll.clkop_div <= 800 * MHZ
    assert Fraction(25 * MHZ, pll.clki_div) >= Fraction(3125, 1000) * MHZ
    assert all(1 <= d <= 128 for d in (pll.clki_div, pll.clkfb_div, pll.clkop_div))


@pytest.mark.parametrize("mhz", [1, 401, 2000])
def test_ecp5_pll_rejects_out_of_range(mhz):
    with pytest.raises(ValueError, match=r"clk_freq must be between 3\.125 MHz and 400 MHz"):
        ecp5_pll(25e6, mhz * 1e6)


@pytest.mark.parametrize("bad", [0, -5e6, "48e6", True, None])
def test_pll_rejects_non_frequencies(bad):
    with pytest.raises(ValueError, match="clk_freq must be a positive frequency in Hz"):
        ice40_pll(12e6, bad)
    with pytest.raises(ValueError, match="f_in must be a positive frequency in Hz"):
        ecp5_pll(bad, 100e6)


def test_board_pll_is_none_at_the_oscillator_frequency():
    icebreaker, ulx3s = get_board("icebreaker"), get_board("ulx3s-85f")
    assert icebreaker.pll(12e6) is None
    assert ulx3s.pll(25e6) is None
    assert isinstance(icebreaker.pll(30e6), ICE40PLL)
    assert isinstance(ulx3s.pll(100e6), ECP5PLL)


def test_get_board_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"board must be one of 'icebreaker', 'ulx3s-85f'"):
        get_board("arty")


def test_board_default_config_needs_a_known_format():
    with pytest.raises(ValueError, match=r"default accumulators for formats 'pal8', 'pal16'"):
        BOARDS["icebreaker"].default_config(PALFormat(int_bits=5, frac_bits=6))
    with pytest.raises(TypeError, match="fmt must be a PALFormat"):
        BOARDS["icebreaker"].default_config("pal8")


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_board_default_configs_cost_little_accuracy(board):
    # The boards' narrow, wrapping accumulators must not cost a Gaussian matmul more than
    # 0.5 dB SQNR over exact accumulation of the same PAL operands, at the host link's K.
    for fmt in (pal8, pal16):
        config = BOARDS[board].default_config(fmt)
        assert accuracy.mac_rounding_cost(config, 64).cost_db < 0.5, (board, fmt)


def test_board_top_rejects_bad_arguments():
    core = _TimingStandIn()
    with pytest.raises(TypeError, match="board must be a Board"):
        BoardTop("icebreaker", core, clk_freq=12e6)
    with pytest.raises(TypeError, match="core must have a 'rx' port"):
        BoardTop(BOARDS["icebreaker"], object(), clk_freq=12e6)
    with pytest.raises(ValueError, match="clk_freq must be between"):
        BoardTop(BOARDS["icebreaker"], core, clk_freq=500e6)


# --- report parsing ------------------------------------------------------------------------------

_PNR_LOG = """\
Info: Packing constants..
Info: Device utilisation:
Info: \t         ICESTORM_LC:    6012/   5280   113%
Info: \t        ICESTORM_RAM:       3/     30    10%
Info: \t               SB_IO:       5/     39    12%

Info: Placed 9 cells based on constraints.
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'
"""


def test_parse_utilisation_reads_the_device_table():
    assert parse_utilisation(_PNR_LOG) == {
        "ICESTORM_LC": (6012, 5280),
        "ICESTORM_RAM": (3, 30),
        "SB_IO": (5, 39),
    }
    assert parse_utilisation("Info: Program finished normally.\n") == {}


def test_describe_nextpnr_failure_names_the_overfull_resource():
    assert describe_nextpnr_failure("iCE40UP5K", 1, _PNR_LOG) == (
        "the design does not fit the iCE40UP5K: ICESTORM_LC 6012/5280 (114%)"
    )


def test_describe_nextpnr_failure_below_capacity_gives_error_and_fullest_resources():
    log = _PNR_LOG.replace("6012/   5280   113%", "5100/   5280    96%").replace(
        "no BELs remaining", "no legal placement"
    )
    message = describe_nextpnr_failure("iCE40UP5K", 125, log)
    assert message.startswith(
        "nextpnr failed (exit status 125): ERROR: Unable to place cell 'x', no legal placement "
        "to implement cell type 'ICESTORM_LC'; fullest resources: ICESTORM_LC 5100/5280 (97%), "
        "SB_IO 5/39 (13%); end of pnr.log:\n"
    )
    assert message.endswith(log.rstrip("\n").splitlines()[-1])
    assert "no ERROR line; fullest resources: unknown" in describe_nextpnr_failure("x", 1, "")


def _segment(kind, delay, start, end):
    return {"type": kind, "delay": delay, "from": {"cell": start}, "to": {"cell": end}}


def test_parse_nextpnr_report_clocks_and_critical_path():
    report = {
        "fmax": {
            "sys_clk": {"achieved": 41.5, "constraint": 48.0},
            "aux": {"achieved": 300.0, "constraint": 12.0},
        },
        "critical_paths": [
            {
                "from": "posedge sys_clk",
                "to": "posedge sys_clk",
                "path": [
                    _segment("clk-to-q", 1.25, "ff_a", "ff_a"),
                    _segment("routing", 2.5, "ff_a", "lut_1"),
                    _segment("logic", 0.75, "lut_1", "lut_1"),
                    _segment("routing", 1.5, "lut_1", "lut_2"),
                    _segment("logic", 0.5, "lut_2", "lut_2"),
                    _segment("routing", 3.0, "lut_2", "ff_b"),
                    _segment("setup", 1.0, "ff_b", "ff_b"),
                ],
            },
            {  # an I/O path: not a register-to-register path, ignored
                "from": "<async>",
                "to": "posedge sys_clk",
                "path": [_segment("routing", 99.0, "pin", "ff_c")],
            },
        ],
    }
    clocks, path = parse_nextpnr_report(report)
    assert clocks == [ClockTiming("aux", 300.0, 12.0), ClockTiming("sys_clk", 41.5, 48.0)]
    assert [clock.met for clock in clocks] == [True, False]
    assert path == {
        "delay_ns": 10.5,
        "logic_ns": 3.5,
        "routing_ns": 7.0,
        "logic_levels": 2,
        "start": "ff_a",
        "end": "ff_b",
    }
    assert parse_nextpnr_report({"fmax": {}})[1] is None


@pytest.mark.parametrize("bad", [{}, {"fmax": {"clk": {"achieved": 1.0}}}, {"fmax": 3}])
def test_parse_nextpnr_report_rejects_malformed_reports(bad):
    with pytest.raises(BuildError, match="no usable 'fmax' section"):
        parse_nextpnr_report(bad)


def _report(**overrides) -> BuildReport:
    fields = dict(
        board="icebreaker",
        board_title="iCEBreaker",
        rows=5,
        cols=5,
        format="pal8",
        mantissa_bits=6,
        acc_bits=20,
        acc_frac_bits=12,
        term_bits=19,
        saturate=True,
        output="pal",
        pipelined=True,
        k_max=64,
        baud=115200,
        requested_mhz=48.0,
        sync_mhz=48.0,
        pll=None,
    )
    fields.update(overrides)
    return BuildReport(**fields)


def test_build_report_fits_timing_and_throughput():
    report = _report(
        resources={"LUT": {"used": 5281, "available": 5280}, "IO": {"used": 5, "available": 39}},
        clocks=[ClockTiming("clk", 47.9, 48.0)],
        stage_seconds={"synth": 2.0, "place": 3.5},
    )
    assert not report.fits
    assert not report.timing_met
    assert report.pes == 25
    assert report.peak_macs_per_second == 25 * 48e6
    assert report.total_seconds == 5.5
    text = report.to_markdown()
    assert "Build finished, but timing was NOT met" in text
    assert "| LUT | 5281 | 5280 | 100% |" in text
    assert "| `clk` | 47.90 | 48.00 | NO |" in text
    data = report.to_dict()
    assert json.loads(json.dumps(data))["fits"] is False
    assert data["clocks"] == [
        {"net": "clk", "fmax_mhz": 47.9, "constraint_mhz": 48.0, "met": False}
    ]
    met = _report(
        resources={"LUT": {"used": 5280, "available": 5280}},
        clocks=[ClockTiming("clk", 48.0, 48.0)],
    )
    assert met.fits and met.timing_met
    assert not _report().timing_met  # no clocks analysed: not met


# --- build parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"board": "de10"}, ValueError, "board must be one of"),
        ({"rows": 0}, ValueError, "rows must be a positive integer"),
        ({"cols": 2.0}, ValueError, "cols must be a positive integer"),
        ({"fmt": "pal9"}, ValueError, "fmt must be one of 'pal8', 'pal16'"),
        ({"fmt": 8}, TypeError, "fmt must be a PALFormat"),
        ({"config": "exact"}, TypeError, "config must be a MacConfig"),
        ({"fmt": "pal16", "config": MacConfig(pal8)}, ValueError, "does not match config.fmt"),
        ({"clk_freq": 300e6}, ValueError, "clk_freq must be between 16 MHz and 275 MHz"),
        ({"allow_timing_fail": 1}, TypeError, "allow_timing_fail must be a bool"),
        ({"seed": "1"}, TypeError, "seed must be an integer"),
    ],
)
def test_build_rejects_bad_parameters_before_running_tools(tmp_path, kwargs, error, message):
    arguments = {"board": "icebreaker", "out_dir": tmp_path / "out", **kwargs}
    with pytest.raises(error, match=message):
        build(arguments.pop("board"), **arguments)
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


# --- failing builds with real tools (stand-in cores) -------------------------------------------


class _TimingStandIn(wiring.Component):
    """rx/tx/status ports like HostLinkCore; a 32-bit counter that cannot run at 275 MHz."""

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
    monkeypatch.setattr(hostlink, "HostLinkCore", _TimingStandIn)
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
    monkeypatch.setattr(hostlink, "HostLinkCore", _DSPStandIn)
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
    assert saved["sync_mhz"] == pytest.approx(board.clk_freq / 1e6, rel=1e-9)
    assert saved["fits"] and saved["timing_met"] and saved["bitstream"] == "top.bin"
    assert _SYNC_WORDS["top.bin"] in (out / "top.bin").read_bytes()[:256]
    assert (out / "report.md").read_text() in printed
