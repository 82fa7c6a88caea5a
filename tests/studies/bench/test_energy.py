"""The bench's energy section: its data schema and its Markdown (palhdl/studies/bench/energy.py)."""

import json

from palhdl.format import MacConfig, pal8
from palhdl.hdl.mac import PALMac
from palhdl.studies.bench import energy
from palhdl.studies.bench.energy import QUICK_MACS, STREAMS, measure, render
from palhdl.studies.bench.macs import BenchMac
from palhdl.studies.bench.options import BenchOptions


def entry(title, transistors, weighted, vs_int8, vs_fp8):
    figures = {
        "macs": 4096,
        "golden_mismatches": 0,
        "toggles_per_mac": weighted / 4,
        "weighted_toggles_per_mac": weighted,
        "vs_int8": vs_int8,
        "vs_fp8": vs_fp8,
    }
    return {
        "title": title,
        "unit": f"{title}Mac",
        "transistors": transistors,
        "cells": transistors // 4,
        "streams": {"mlp": figures, "gaussian": figures},
    }


def test_render_hand_written_data():
    data = {
        "method": "Toggles weighted by transistors.",
        "lanes": 64,
        "dots_per_lane": 1,
        "macs": {
            "pal8": entry("PAL8", 6058, 600.0, 0.5, 0.75),
            "int8": entry("INT8", 7186, 1200.0, 1.0, 1.5),
        },
        "relative": {"pal8": {"int8": 0.5, "fp8": 0.75}, "int8": {"int8": 1.0, "fp8": 1.5}},
        "arrays": {"int8": entry("2x2 int8 array", 29620, 1100.0, 1.0, None)},
        "arrays_relative": {"int8": {"int8": 1.0}},
        "citations": ["Someone (2020). A title."],
        "skipped": {"mxint8": "input fields ['a', 'b', 'last', 'offset'] are not a, b, last"},
    }
    lines = render(data)
    assert (
        lines.count("| MAC | transistors | toggles/MAC | weighted toggles/MAC | ×INT8 | ×FP8 |")
        == 2
    )
    assert "| PAL8 | 6,058 | 150.0 | 600.0 | 0.50x | 0.75x |" in lines
    assert "| INT8 | 7,186 | 300.0 | 1,200.0 | 1.00x | 1.50x |" in lines
    assert "Method: Toggles weighted by transistors." in lines
    assert any(line.startswith("Not measured: mxint8: input fields") for line in lines)
    assert "equals the golden model's." in "\n".join(lines)
    assert lines[-1] == "- Someone (2020). A title."
    data["macs"]["int8"]["streams"]["gaussian"] = dict(
        data["macs"]["int8"]["streams"]["gaussian"], golden_mismatches=3
    )
    assert "differs from the golden model: ['int8 MAC on gaussian: 3']" in "\n".join(render(data))


def check_quick_energy(data: dict, messages: list[str]) -> None:
    """The energy section of a quick run (``test_run.py`` runs one): schema and rendering."""
    assert json.loads(json.dumps(data)) == data
    assert set(data["macs"]) == set(QUICK_MACS) and data["skipped"] == {}
    for key, mac in data["macs"].items():
        assert mac["transistors"] > mac["cells"] > 0
        assert set(mac["streams"]) == set(STREAMS)
        for figures in mac["streams"].values():
            assert figures["macs"] >= 4096
            assert figures["golden_mismatches"] == 0
            assert figures["weighted_toggles_per_mac"] > figures["toggles_per_mac"] > 0
        assert data["relative"][key]["int8"] > 0 and data["relative"][key]["fp8"] > 0
    assert data["relative"]["int8"]["int8"] == 1.0 and data["relative"]["fp8"]["fp8"] == 1.0
    assert "Johnson" in data["citations"][0] and "LNS-Madam" in data["citations"][1]
    assert set(data["arrays"]) == {"pal8", "int8", "fp8"}
    for array in data["arrays"].values():
        for figures in array["streams"].values():
            assert figures["golden_mismatches"] == 0
            assert figures["weighted_toggles_per_mac"] > figures["toggles_per_mac"] > 0
    assert data["arrays_relative"]["fp8"]["fp8"] == 1.0
    lines = render(data)
    for mac in [*data["macs"].values(), *data["arrays"].values()]:
        assert sum(line.startswith(f"| {mac['title']} |") for line in lines) == len(STREAMS)
    assert any("energy: int8" in message for message in messages)


def test_unsupported_operand_layout_is_skipped_not_measured(monkeypatch):
    scaled = BenchMac(
        "pal8-f32",
        "pal8 with a float32 readout",
        "PALMac pal8 float32",
        lambda: PALMac(config=MacConfig(pal8), readout="float32"),
        None,
        "pal8",
    )
    unknown = BenchMac(
        "int4", "INT4", "IntRestartMac int4", lambda: PALMac(config=MacConfig(pal8)), None, "int4"
    )
    monkeypatch.setattr(energy, "MACS", (scaled, unknown))
    monkeypatch.setattr(energy, "ARRAY_ARITHMETICS", {})
    data = measure(BenchOptions(quick=False, progress=lambda message: None))
    assert data["macs"] == {} and data["arrays"] == {}
    assert data["skipped"] == {
        "pal8-f32": "input fields ['a', 'b', 'first', 'last', 'scale'] are not a, b, last "
        "(and first)",
        "int4": "no operand encoding for format 'int4'",
    }
    assert any(line.startswith("Not measured: pal8-f32: input fields") for line in render(data))
