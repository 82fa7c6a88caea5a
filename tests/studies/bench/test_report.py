"""The report of ``palhdl bench``: headline rows, targets, the README section (no tools run)."""

from __future__ import annotations

import pytest

from palhdl.studies.bench.report import (
    BEGIN,
    END,
    headline_rows,
    readme_section,
    render_report,
    write_readme_section,
)
from palhdl.studies.bench.run import SECTIONS
from palhdl.studies.bench.targets import render_targets, targets

_SCALINGS = ["tensor", "channel", "block"]


def _area_row(key, lut4, transistors, fmax_ecp5, bram=0, dsp=0):
    return {
        "key": key,
        "ice40": {"LUT4": lut4, "carry": 1, "DFF": 2, "BRAM": bram, "DSP": dsp},
        "ecp5": {"LUT4": lut4, "CCU2C": 1, "DFF": 2, "EBR": bram, "DSP": dsp},
        "transistors": transistors,
        "fmax": {"ice40": {"median": 50.0}, "ecp5": {"median": fmax_ecp5}},
    }


def _build(variant, gmacs):
    return {"variant": variant, "ok": gmacs is not None, "gmacs": gmacs, "rows": 2, "cols": 3}


def _sqnr(label, values):
    return {"label": label, "bits": 8, "sqnr_db": values, "splits": [None] * 3}


def _report() -> dict:
    distributions = {
        name: [
            _sqnr("pal8 adaptive", [None, 34.0, 35.0 + shift]),
            _sqnr("MXFP8 E4M3", [28.0, 28.0, 27.0]),
            _sqnr("MXINT8", [30.0, 33.0, 35.5]),
            _sqnr("INT8", [31.0, 36.0, 39.0]),
            _sqnr("BF16", [52.0, 52.0, 52.0]),
        ]
        for name, shift in (("gaussian", 1.0), ("student_t3", 0.0), ("gauss_lognormal", 0.5))
    }
    return {
        "quick": False,
        "date": "2026-12-02T12:00:00+00:00",
        "machine": {"cpu": "Test CPU", "cores": 2, "memory_gib": 24.0, "os": "Linux"},
        "versions": {
            "yosys": "Yosys 0.70",
            "nextpnr": "nextpnr 0.11.1",
            "amaranth": "0.5.10",
            "palhdl": "0.1.0",
            "commit": "abc1234",
        },
        "sections": ["area", "arrays", "accuracy"],
        "seconds": {"area": 1.0, "arrays": 2.0, "accuracy": 3.0},
        "area": {
            "rows": [
                _area_row("pal8", 69, 6000, 150.0, bram=1),
                _area_row("int8", 220, 7200, 88.0),
                _area_row("int8-dsp", 66, 7200, 90.0, dsp=1),
                _area_row("fp8", 180, 5900, 53.0),
            ],
            "seeds": [1],
            "ratios": {"pal8": {"ice40_lut4_vs_int8": 0.314, "ice40_lut4_vs_fp8": 0.383}},
        },
        "arrays": {
            "boards": {
                "icebreaker": {
                    "builds": [
                        _build("pal8", 1.19),
                        _build("int8", 0.318),
                        _build("int8-lut", 0.358),
                        _build("fp8", 0.216),
                    ],
                    "best": {"pal8": {"vs_int8": 3.32, "vs_fp8": 5.51}},
                }
            },
            "confirmed_families": ["ice40"],
        },
        "accuracy": {
            "mkn": [8, 64, 8],
            "scalings": _SCALINGS,
            "distributions": distributions,
            "mlp": {
                "digits": 397,
                "float64_top1": 0.982,
                "rows": [
                    {
                        "label": "pal8 adaptive",
                        "bits": 8,
                        "top1": [None, 0.98, 0.979],
                        "agreement": [None, 0.99, 0.99],
                    },
                    {
                        "label": "INT8",
                        "bits": 8,
                        "top1": [0.98, 0.98, 0.982],
                        "agreement": [1, 1, 1],
                    },
                ],
            },
        },
    }


def test_headline_rows_read_each_figure_from_its_section():
    rows = {row["title"]: row for row in headline_rows(_report())}
    pal = rows["pal8, block-RAM PE"]
    assert (pal["lut4"], pal["ebr"], pal["transistors"], pal["fmax_ecp5"]) == (69, 1, 6000, 150.0)
    assert pal["sqnr_db"] == 34.0 and pal["scaling"] == "row/col"  # the plain PE's scaling
    assert pal["top1"] == 0.98
    block = rows["pal8, block-scaled PE"]
    assert block["sqnr_db"] == 35.5 and block["scaling"] == "block 32"  # mean of 36, 35, 35.5
    assert block["top1"] == 0.979 and block["gmacs"] == {"icebreaker": None, "ulx3s-85f": None}
    assert pal["gmacs"] == {"icebreaker": 1.19, "ulx3s-85f": None}
    assert rows["INT8, logic"]["gmacs"]["icebreaker"] == 0.358  # the logic-only array
    assert rows["INT8, DSP"]["gmacs"]["icebreaker"] == 0.318
    assert rows["INT8, DSP"]["dsp"] == 1
    assert rows["BF16"]["scaling"] == "none" and rows["BF16"]["sqnr_db"] == 52.0
    assert rows["INT8, logic"]["sqnr_db"] == 36.0 and rows["INT8, logic"]["top1"] == 0.98
    assert rows["MXINT8"]["lut4"] is None  # no area row: not measured
    assert rows["pal8, block-RAM PE"]["energy_vs_int8"] is None


def test_targets_hold_or_not_by_the_report_numbers():
    by_name = {t["target"]: t for t in targets(_report())}
    assert by_name["pal8 table MAC ≤ 0.45x the INT8 MAC (iCE40 LUT4)"]["holds"] is True
    margin = by_name[
        "pal8 adaptive, block 32: ≥ 5 dB above MXFP8 E4M3 on every distribution (least margin)"
    ]
    assert margin["value"] == 8.0 and margin["holds"] is True
    heavy = by_name[
        "pal8 adaptive, block 32: within 0.5 dB of MXINT8 on heavy tails (least margin)"
    ]
    assert heavy["value"] == -0.5 and heavy["holds"] is True
    mlp = by_name["digits MLP: pal8 adaptive, block 32, within 0.5 % top-1 of float64 (gap)"]
    assert mlp["value"] == pytest.approx(0.3) and mlp["holds"] is True
    assert by_name["pipelined pal8 MAC ≥ 220 MHz on the ECP5-85F"]["holds"] is False
    assert by_name["ULX3S: PAL array ≥ 2x the best FP8 array"]["holds"] is None
    lines = render_targets(targets(_report()))
    assert "| ULX3S: PAL array ≥ 2x the best FP8 array | not measured | – |" in lines


def test_the_readme_section_is_replaced_between_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n")
    write_readme_section(readme, _report(), tmp_path)
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n") and text.endswith("\nafter\n")
    assert "old" not in text
    assert readme_section(_report(), None) in text
    assert "2026-12-02, 2 cores (Test CPU, 24 GiB), Yosys 0.70 and nextpnr 0.11.1" in text
    assert "| pal8, block-RAM PE | 69 + 1 EBR | 6000 | 150 | – | 34.0 (row/col) | 98.0 % " in text
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="has no <!-- bench:begin -->"):
        write_readme_section(readme, _report(), tmp_path)


def test_render_report_has_headline_targets_and_each_section_that_ran():
    report = _report() | {"sections": ["accuracy"]}
    text = render_report(report, SECTIONS)
    assert text.startswith("# palhdl bench\n\nA full run of `palhdl bench` on 2026-12-02")
    for heading in ("## Headline", "## Targets", "## Accuracy"):
        assert heading in text
    assert "## MAC cost" not in text
