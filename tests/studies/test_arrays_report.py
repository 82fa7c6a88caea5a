"""``palhdl arrays`` (palhdl/studies/arrays_report.py): tables, the mixed estimate, the command.

No FPGA tool runs here: builds and searches are stand-ins (monkeypatched); the real builds are
in tests/synth/test_arraybuild.py.
"""

from __future__ import annotations

import json

import pytest

from palhdl.boards.platforms import get_board
from palhdl.cli import main
from palhdl.studies import arrays_report
from palhdl.studies.arrays import SearchResult
from palhdl.studies.arrays_report import mixed_estimate, render
from palhdl.synth.arraybuild import ArrayBuildReport
from palhdl.synth.build import BuildError
from palhdl.synth.report import ClockTiming

_LOGIC = {"icebreaker": "Logic cells (LUT4+FF+carry)", "ulx3s-85f": "LUT4 (incl. carry halves)"}
_DSP = {"icebreaker": ("DSP (SB_MAC16)", 8), "ulx3s-85f": ("DSP (MULT18X18D)", 156)}
_CAPACITY = {"icebreaker": 5280, "ulx3s-85f": 83640}


def _report(board, rows, cols, *, logic, dsp=0, fmax=None, mhz=50.0) -> ArrayBuildReport:
    dsp_label, dsp_available = _DSP[board]
    return ArrayBuildReport(
        board=board,
        board_title=get_board(board).title,
        arithmetic="int8, 22-bit wrapping accumulator",
        rows=rows,
        cols=cols,
        dsp=dsp > 0,
        k=64,
        requested_mhz=mhz,
        sync_mhz=mhz,
        pll=None,
        resources={
            _LOGIC[board]: {"used": logic, "available": _CAPACITY[board]},
            dsp_label: {"used": dsp, "available": dsp_available},
        },
        clocks=[] if fmax is None else [ClockTiming("board.clk", fmax, mhz)],
        stage_seconds={"synth": 100.0, "place": 500.0},
    )


def _result(board, variant, *builds, best=None, mhz=50.0) -> SearchResult:
    return SearchResult(board, variant, mhz, 0.95, list(builds), best)


ULX3S_DSP = _result(
    "ulx3s-85f",
    "int8",
    _report("ulx3s-85f", 12, 13, logic=20000, dsp=156, fmax=70.0, mhz=60.0),
    best=0,
    mhz=60.0,
)
ULX3S_LUT = _result(
    "ulx3s-85f",
    "int8-lut",
    _report("ulx3s-85f", 21, 21, logic=80000, fmax=None),
    _report("ulx3s-85f", 20, 20, logic=70000, fmax=55.0),
    best=1,
)


def test_mixed_estimate_from_the_two_int8_builds():
    # A logic-only PE costs 70000 / 400 = 175 LUT4; the DSP array leaves 70000 - 20000 up to
    # the logic-only array's fill: floor(50000 / 175) = 285 more PEs, at the lower clock.
    assert mixed_estimate(ULX3S_DSP, ULX3S_LUT) == {
        "pes": 156 + 285,
        "dsp_pes": 156,
        "lut_pes": 285,
        "clk_mhz": 50.0,
        "gmacs": pytest.approx(441 * 50 / 1000),
    }
    failed = _result("ulx3s-85f", "int8-lut", _report("ulx3s-85f", 21, 21, logic=80000))
    assert mixed_estimate(ULX3S_DSP, failed) is None


def test_render_tables():
    slow = _report("icebreaker", 4, 4, logic=4520, fmax=18.0, mhz=20.0)
    too_big = _report("icebreaker", 4, 5, logic=6000, mhz=20.0)
    none_met = _result("icebreaker", "fp8", too_big, slow, mhz=20.0)
    text = render([ULX3S_DSP, ULX3S_LUT, none_met])
    lines = text.splitlines()
    # 156 PEs x 60 MHz = 9.36 GMAC/s; per 1000 LUT4: 9.36 / 20 = 0.468; at Fmax 156 x 70.
    assert (
        "| ULX3S | int8 | 12 × 13 | 156 | 20000 / 83640 LUT4 (24%) | 156 / 156 | - | 70.00 "
        "| 60 | 9.36 | 0.468 | 10.9 |"
    ) in lines
    # 400 x 50 MHz = 20 GMAC/s; per 1000 LUT4: 20 / 70 = 0.286; at Fmax 400 x 55 = 22.
    assert "| ULX3S | int8-lut | 20 × 20 | 400 | 70000 / 83640 LUT4 (84%) |" in text
    assert "| 0 / 156 | - | 55.00 | 50 | 20 | 0.286 | 22 |" in text
    assert "| iCEBreaker | fp8 | none met 20 MHz |" + " - |" * 9 in lines
    assert (
        "- ULX3S (Lattice ECP5 LFE5U-85F-6BG381C): **estimate**, not built: 156 DSP PEs + 285 "
        "LUT PEs = 441 PEs at 50 MHz = 22.1 GMAC/s."
    ) in lines
    rows = [line.split(" | ")[:2] for line in lines if line.startswith(("| ULX3S", "| iCE"))]
    assert rows[:3] == [["| iCEBreaker", "fp8"], ["| ULX3S", "int8"], ["| ULX3S", "int8-lut"]]
    builds = lines[lines.index("Every place-and-route run of the searches:") :]
    assert len([line for line in builds if line.startswith("| ULX3S")]) == 3
    assert "| 21 × 21 | could not be placed and routed | 80000 / 83640 LUT4 (96%) | - | 600 |" in (
        text
    )
    assert "| 4 × 5 | does not fit: Logic cells (LUT4+FF+carry) 6000/5280 | 6000 / 5280 LC" in text
    assert "| 4 × 4 | timing not met at 20 MHz | 4520 / 5280 LC (86%) | 18.00 | 600 |" in text


# --- the command -------------------------------------------------------------------------------


def _fail(argv, capsys, status=2) -> str:
    assert main(["arrays", *argv]) == status
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--board is required (unless --from-json)"),
        (["--board", "icebreaker"], "--arithmetic is required"),
        (["--board", "de10", "--arithmetic", "int8"], "board must be one of"),
        (["--board", "icebreaker", "--arithmetic", "int4"], "--arithmetic must be one of"),
        (
            ["--board", "icebreaker", "--arithmetic", "int8", "--rows", "2"],
            "--rows and --cols go together",
        ),
        (["--board", "icebreaker", "--arithmetic", "int8", "--freq", "300"], "clk_freq must be"),
        (
            ["--board", "icebreaker", "--arithmetic", "int8", "--max-utilisation", "1.5"],
            "max_utilisation must be in (0, 1], not 1.5",
        ),
        (
            ["--board", "icebreaker", "--arithmetic", "int8", "--json", "/no/such/dir/r.json"],
            "--json: the directory of '/no/such/dir/r.json' does not exist",
        ),
    ],
)
def test_command_rejects_bad_arguments_in_one_line(argv, message, capsys):
    assert _fail(argv, capsys).startswith(f"palhdl arrays: error: {message}")


def test_one_array_passes_its_options_and_reports_a_failed_build(monkeypatch, tmp_path, capsys):
    calls = []

    def fake(board, **kwargs):
        calls.append((board.name, kwargs))
        report = _report("icebreaker", 2, 4, logic=1119, dsp=8, fmax=41.2, mhz=39.75)
        if kwargs["dsp"]:
            return report
        raise BuildError("timing not met (board.clk: Fmax 18.00 MHz < 20.00 MHz)", report)

    monkeypatch.setattr(arrays_report, "build_array", fake)
    out = str(tmp_path / "one")
    argv = ["--board", "icebreaker", "--rows", "2", "--cols", "4", "--out", out, "--freq", "40"]
    assert main(["arrays", *argv, "--arithmetic", "int8"]) == 0
    assert "# palhdl arrays: iCEBreaker" in capsys.readouterr().out
    board, kwargs = calls[-1]
    assert board == "icebreaker" and (kwargs["rows"], kwargs["cols"]) == (2, 4)
    assert kwargs["clk_freq"] == 40e6 and kwargs["dsp"] and kwargs["out_dir"] == out
    assert kwargs["arithmetic"].acc_bits == 22 and not kwargs["allow_timing_fail"]
    err = _fail([*argv, "--arithmetic", "int8-lut"], capsys, status=1)
    assert err.startswith("palhdl arrays: timing not met")
    assert calls[-1][1]["dsp"] is False


def test_search_results_are_saved_merged_and_rendered_again(monkeypatch, tmp_path, capsys):
    searches = []

    def fake_search(variant, board, **kwargs):
        searches.append((variant, board.name, kwargs))
        return ULX3S_DSP if variant == "int8" else ULX3S_LUT

    monkeypatch.setattr(arrays_report, "search", fake_search)
    saved = tmp_path / "arrays.json"
    base = ["--board", "ulx3s-85f", "--json", str(saved), "--max-builds", "2"]
    assert main(["arrays", *base, "--arithmetic", "int8", "--freq", "60"]) == 0
    assert "| ULX3S | int8 | 12 × 13 |" in capsys.readouterr().out
    variant, board, kwargs = searches[-1]
    assert (variant, board, kwargs["clk_freq"], kwargs["max_builds"]) == (
        "int8",
        "ulx3s-85f",
        60e6,
        2,
    )
    assert kwargs["max_utilisation"] == 0.95 and kwargs["out_dir"] == "build-arrays"
    assert kwargs["previous"] is None
    assert main(["arrays", *base, "--arithmetic", "int8-lut"]) == 0
    assert searches[-1][2]["previous"] is None  # the file has int8-lut at 50 MHz, not 60
    assert main(["arrays", *base, "--arithmetic", "int8"]) == 0  # replaces the first entry
    assert searches[-1][2]["previous"] == ULX3S_DSP  # same board, variant and clock: resumed
    capsys.readouterr()
    contents = json.loads(saved.read_text())
    assert [entry["variant"] for entry in contents["searches"]] == ["int8-lut", "int8"]
    assert main(["arrays", "--from-json", str(saved)]) == 0
    assert capsys.readouterr().out == render([ULX3S_LUT, ULX3S_DSP])


def test_from_json_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": []}')
    err = _fail(["--from-json", str(bad)], capsys)
    assert "is not a --json file of palhdl arrays" in err
    err = _fail(["--from-json", str(tmp_path / "missing.json")], capsys, status=1)
    assert err.startswith("palhdl arrays: error: ") and "missing.json" in err


def test_a_search_without_any_array_exits_1(monkeypatch, capsys):
    failed = _result("icebreaker", "fp8", _report("icebreaker", 4, 4, logic=6000))
    monkeypatch.setattr(arrays_report, "search", lambda *args, **kwargs: failed)
    assert main(["arrays", "--board", "icebreaker", "--arithmetic", "fp8"]) == 1
    assert "none met 50 MHz" in capsys.readouterr().out
