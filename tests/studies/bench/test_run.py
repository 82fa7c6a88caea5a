"""``palhdl bench`` (palhdl/studies/bench/run.py): options, failures, and a whole quick run."""

from __future__ import annotations

import json

import pytest

from palhdl.cli import main
from palhdl.studies.bench import accuracy, boards
from palhdl.studies.bench.run import SECTIONS
from tests.studies.bench.test_energy import check_quick_energy
from tests.studies.bench.test_speed import check_quick_speed
from tests.studies.bench.test_tiles import check_quick_tiles


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--only", "area,nope"], "--only must be a comma-separated list of accuracy, energy,"),
        (["--only", ","], "--only must be a comma-separated list"),
        (["--boards", "icebreaker,de10"], "--boards must be a comma-separated list of icebreaker"),
        (["--readme", "README.md", "--quick"], "--readme needs a full run of every section"),
        (["--readme", "no-such-readme.md"], "--readme must be an existing Markdown file"),
    ],
)
def test_a_bad_option_gets_one_line_naming_it_and_status_2(arguments, message, capsys, tmp_path):
    readme = [a if a != "README.md" else str(tmp_path / "README.md") for a in arguments]
    (tmp_path / "README.md").write_text("# x\n")
    status = main(["bench", "--out", str(tmp_path / "out"), *readme])
    assert status == 2
    line = _error_line(capsys)
    assert line.startswith("palhdl bench: error: ") and message in line
    assert not (tmp_path / "out").exists()


def test_an_output_path_that_is_a_file_is_refused(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    assert main(["bench", "--out", str(tmp_path / "file")]) == 2
    assert "--out" in _error_line(capsys)


def test_jobs_out_of_range_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--jobs", "0"])
    assert exit_info.value.code == 2
    assert "jobs must be in [1, 64], not 0" in capsys.readouterr().err


def test_a_failing_section_keeps_the_others_and_exits_1(monkeypatch, capsys, tmp_path):
    data = {"boards": {}, "confirmed_families": ["ice40"]}

    def broken(options):
        raise RuntimeError("the tool broke")

    monkeypatch.setattr(accuracy, "measure", broken)
    monkeypatch.setattr(boards, "measure", lambda options: data)
    status = main(["bench", "--quick", "--only", "accuracy,arrays", "--out", str(tmp_path)])
    assert status == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "palhdl bench: error: sections failed: accuracy"
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["accuracy"] == {"error": "RuntimeError: the tool broke"}
    assert report["arrays"] == data
    assert report["sections"] == ["accuracy", "arrays"]
    assert report["quick"] is True
    text = (tmp_path / "report.md").read_text()
    assert "**Failed:** RuntimeError: the tool broke" in text
    assert "## Arrays on the boards" in text


@pytest.mark.slow
def test_a_quick_run_measures_every_section_and_writes_the_report(tmp_path, capsys):
    assert main(["bench", "--quick", "--out", str(tmp_path), "--jobs", "2"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["sections"] == list(SECTIONS)
    for name in SECTIONS:
        assert "error" not in report[name], report[name]
    assert report["quick"] is True
    assert report["versions"]["yosys"].startswith("Yosys ")
    assert report["machine"]["cores"] >= 1
    assert set(report["plots"]) == {
        "area_vs_sqnr.png",
        "energy_vs_sqnr.png",
        "gmacs_per_board.png",
        "sqnr_by_distribution.png",
    }
    for name in report["plots"]:
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    text = (tmp_path / "report.md").read_text()
    for _, title in SECTIONS.values():
        assert f"## {title}" in text
    # Every array of the quick run is a 2 x 2 that fits and meets timing on the iCEBreaker.
    builds = report["arrays"]["boards"]["icebreaker"]["builds"]
    assert {b["variant"] for b in builds} == {"pal8", "int8", "fp8"}
    assert all(b["ok"] and b["pes"] == 4 for b in builds)
    messages = capsys.readouterr().err.splitlines()
    assert "wrote" in messages[-1]
    for name, check in (
        ("energy", check_quick_energy),
        ("rtl", check_quick_tiles),
        ("speed", check_quick_speed),
    ):
        check(report[name], [m.split("]: ", 1)[-1] for m in messages])
