"""The README's headline table is the committed ``bench/report.json``, rendered again.

``palhdl bench --readme README.md`` writes the section; this test fails if a figure in the README
differs from the report, or the report is not a full run in which every section finished.
"""

from __future__ import annotations

import json
from pathlib import Path

from palhdl.studies.bench.report import BEGIN, END, readme_section
from palhdl.studies.bench.run import SECTIONS

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_report_is_a_full_run_of_every_section_without_errors():
    report = json.loads((ROOT / "bench" / "report.json").read_text())
    assert report["quick"] is False
    assert report["sections"] == list(SECTIONS)
    for name in SECTIONS:
        assert "error" not in report[name], (name, report[name])
    assert set(report["arrays"]["boards"]) == {"icebreaker", "ulx3s-85f"}
    for name in report["plots"]:
        assert (ROOT / "bench" / name).is_file()
    assert (ROOT / "bench" / "report.md").is_file()


def test_the_readme_headline_table_matches_the_committed_report():
    report = json.loads((ROOT / "bench" / "report.json").read_text())
    readme = (ROOT / "README.md").read_text()
    section = BEGIN + readme.split(BEGIN, 1)[1].split(END, 1)[0] + END
    plot = "area_vs_sqnr.png" if "area_vs_sqnr.png" in report["plots"] else None
    assert section == readme_section(report, plot)
