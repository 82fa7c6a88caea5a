"""Build reports and their parsers (synth/report.py): pure Python, no tool runs."""

from __future__ import annotations

import json

import pytest

from palhdl.synth.report import (
    BuildError,
    BuildReport,
    ClockTiming,
    describe_nextpnr_failure,
    parse_nextpnr_report,
    parse_utilisation,
    resource_rows,
)

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


def test_resource_rows_combine_nextpnr_and_yosys_counts():
    utilisation = {"ICESTORM_LC": (100, 5280), "ICESTORM_DSP": (2, 8), "SB_IO": (5, 39)}
    cells = {"SB_LUT4": 60, "SB_DFFER": 30, "SB_DFF": 5, "SB_CARRY": 7}
    assert resource_rows("ice40", utilisation, cells) == {
        "Logic cells (LUT4+FF+carry)": {"used": 100, "available": 5280},
        "LUT4 (synthesis)": {"used": 60, "available": 5280},
        "FF (synthesis)": {"used": 35, "available": 5280},
        "Carry (synthesis)": {"used": 7, "available": 5280},
        "DSP (SB_MAC16)": {"used": 2, "available": 8},
        "IO": {"used": 5, "available": 39},
    }
    ecp5 = resource_rows("ecp5", {"TRELLIS_COMB": (10, 83640)}, {"CCU2C": 3})
    assert ecp5 == {
        "LUT4 (incl. carry halves)": {"used": 10, "available": 83640},
        "Carry (CCU2C, synthesis)": {"used": 3, "available": 41820},
    }
