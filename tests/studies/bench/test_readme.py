"""The README's headline table is the committed ``bench/report.json``, rendered again.

``palhdl bench --readme README.md`` writes the section; this test fails if a figure in the README
differs from the report, or the report is not a full run whose headline sections all finished.
"""

from __future__ import annotations

import json
from pathlib import Path

from palhdl.studies.bench.report import BEGIN, END, readme_section
from palhdl.studies.bench.run import SECTIONS

ROOT = Path(__file__).resolve().parents[3]


#: The sections the headline table reads (``palhdl.studies.bench.report.headline_rows``).
HEADLINE_SECTIONS = ("accuracy", "energy", "area", "arrays")


def test_the_committed_report_is_a_full_run_with_the_headline_sections_complete():
    report = json.loads((ROOT / "bench" / "report.json").read_text())
    assert report["quick"] is False
    assert report["sections"] == list(SECTIONS)
    for name in HEADLINE_SECTIONS:
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
