"""The cost study (palhdl/studies/cost.py, ``palhdl cost``): units, rendering, the command.

The measuring test synthesizes one small baseline MAC with the YoWASP Yosys (a few seconds).
"""

import argparse
from pathlib import Path

from amaranth.hdl import Fragment

from palhdl.boards.devices import DEVICES
from palhdl.format import MacConfig, pal8
from palhdl.studies import cost


def test_write_section_replaces_between_markers(tmp_path):
    doc = tmp_path / "units.md"
    doc.write_text(f"# Units\n\nintro\n{cost.BEGIN_MARKER}\nold\n{cost.END_MARKER}\nafter\n")
    cost.write_section(doc, "new table")
    assert doc.read_text() == (
        f"# Units\n\nintro\n{cost.BEGIN_MARKER}\nnew table\n{cost.END_MARKER}\nafter\n"
    )
    fresh = tmp_path / "fresh.md"
    cost.write_section(fresh, "t")
    assert fresh.read_text() == f"# Units\n\n## Cost\n\n{cost.BEGIN_MARKER}\nt\n{cost.END_MARKER}\n"


def test_render_states_which_targets_hold():
    def unit(name, luts):
        result = cost.Unit(name, "MAC", lambda: None)
        result.stats = {"ice40": {"LUT4": luts, "carry": 1, "DFF": 2}}
        return result

    table, restart, table_limit = cost.COST_TARGETS[0]
    assert (table, restart, table_limit) == (
        "PALTableMac pal8 acc32/12 t14 wrap W5",
        "IntRestartMac int8 acc32",
        0.45,
    )
    assert cost.COST_TARGETS[1][1:] == ("FP8RestartMac e4m3 acc32/12 t14 wrap", 0.5)
    pal, int8, limit = cost.COST_TARGETS[2]
    assert (pal, int8, limit) == ("PALMac pal8 acc32/12 t14 wrap W5", "IntMac int8 acc32", 0.7)
    text = cost.render([unit(pal, 120), unit(int8, 200)], "Yosys 0.70", ["- rounding line"])
    assert f"| {pal} | 120 | 1 | 2 |" in text
    with_cmos = unit(int8, 200)
    with_cmos.stats["cmos"] = {"transistors": 900}
    assert f"| {pal} | 120 | 1 | 2 | - |" in cost.render([unit(pal, 120), with_cmos], "Yosys 0.70")
    assert "120 / 200 = **0.60x** (target <= 0.7x: holds)" in text
    assert f"{pal} vs FP8Mac e4m3 acc32/12 t14 wrap: not measured" in text
    assert text.endswith("- rounding line")
    too_big = cost.render([unit(pal, 150), unit(int8, 200)], "Yosys 0.70")
    assert "150 / 200 = **0.75x** (target <= 0.7x: does not hold)" in too_big


def test_render_states_which_fmax_targets_hold():
    mac = cost.Unit("PALMac pal8 acc32/12 t14 wrap W5", "MAC", lambda: None)
    mac.stats = {
        "ice40": {"LUT4": 100, "carry": 1, "DFF": 2},
        "fmax_pipelined_ice40": {"fmax_mhz": 61.5, "seeds": "60/61/62/63"},
        "fmax_pipelined_ecp5": {"fmax_mhz": 180.0},
    }
    baseline = cost.Unit("IntRestartMac int8 acc32", "baseline", lambda: None)
    baseline.stats = {"fmax_pipelined_ice40": {"fmax_mhz": 29.1, "seeds": "28/30"}}
    text = cost.render([mac, baseline], "Yosys 0.70")
    assert "- IntRestartMac int8 acc32, pipelined: iCE40 UP5K 29.1 MHz, seeds 28/30." in text
    assert "| 61.5 | 180.0 |" in text
    assert (
        "- PALMac pal8 acc32/12 t14 wrap W5, pipelined: iCE40 UP5K 61.5 MHz (target >= 60: "
        "holds), seeds 60/61/62/63; ECP5-85 180.0 MHz (target >= 220: does not hold)."
    ) in text


def test_pipelined_variants_of_the_pal_macs_only():
    units = {unit.name: unit for unit in cost.pal_units("pal8")}
    mac = units["PALMac pal8 acc32/12 t14 wrap W5"]
    pipelined, combinational = mac.build_pipelined(), mac.build()
    assert mac.is_mac and pipelined.pipelined and not combinational.pipelined
    assert pipelined.latency == 4 and combinational.latency == 1
    for unit in (pipelined, combinational):
        Fragment.get(unit, None)  # elaborates (and marks the unit used)
    term = units["PALProductTerm pal8 acc32/12 t14 wrap W5"]
    assert not term.is_mac and term.build_pipelined is None
    assert all(unit.is_mac for unit in cost.baseline_units())
    table = units["PALTableMac pal8 acc32/12 t14 wrap W5"]
    table_pipelined = table.build_pipelined()
    assert table.is_mac and table_pipelined.segments == 3
    Fragment.get(table_pipelined, None)


def test_mac_labels_name_the_window():
    assert cost.mac_label(cost.PAL8_COST) == " acc32/12 t14 wrap W5"
    assert cost.mac_label(MacConfig(pal8)) == " acc51/22 W6"
    assert cost.window_label(32, 12, 31, True) == " acc32/12"


def test_cost_main_measures_writes_and_rerenders(tmp_path, capsys):
    doc, raw = tmp_path / "units.md", tmp_path / "cost.json"
    argv = ["--units", "IntMac", "--formats", "pal8", "--targets", "ice40"]
    assert cost.main([*argv, "--write", str(doc), "--json", str(raw)]) == 0
    row = next(line for line in doc.read_text().splitlines() if line.startswith("| IntMac"))
    luts = int(row.split("|")[2])
    assert 150 < luts < 400
    assert row in capsys.readouterr().out
    again = tmp_path / "again.md"
    assert cost.main(["--from-json", str(raw), "--write", str(again)]) == 0
    assert again.read_text() == doc.read_text()
    extra = tmp_path / "extra.json"
    extra.write_text('{"IntMac int8 acc32": {"cmos": {"transistors": 7}}, "yosys": "Yosys 0.70"}')
    assert cost.main(["--from-json", str(raw), str(extra), "--write", str(again)]) == 0
    assert f"{row} 7 |" in again.read_text()


def test_cost_main_rejects_bad_options(capsys, tmp_path):
    assert cost.main(["--formats", "pal9"]) == 2
    assert capsys.readouterr().err == (
        "palhdl cost: error: --formats must be one of 'pal8', 'pal16', not 'pal9'\n"
    )
    assert cost.main(["--targets", "gowin"]) == 2
    assert "error: --targets must be one of 'ice40', " in capsys.readouterr().err
    assert cost.main(["--jobs", "0"]) == 2
    assert "error: --jobs must be in [1, inf], not 0" in capsys.readouterr().err
    assert cost.main(["--seeds", "1,x", "--units", "IntMac"]) == 2
    assert "error: --seeds must be comma-separated integers, not '1,x'" in capsys.readouterr().err
    assert cost.main(["--seeds", "0", "--units", "IntMac"]) == 2
    assert "error: --seeds must be in [1, 1073741824], not 0" in capsys.readouterr().err
    assert cost.main(["--units", "NoSuchUnit", "--targets", "ice40"]) == 2
    assert "error: --units: no unit name contains any of NoSuchUnit" in capsys.readouterr().err
    assert cost.main(["--write", str(tmp_path / "missing" / "units.md")]) == 2
    assert "error: --write: the directory of " in capsys.readouterr().err
    assert cost.main(["--from-json", str(tmp_path / "absent.json")]) == 2
    assert "error: --from-json: cannot read " in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{")
    assert cost.main(["--from-json", str(tmp_path / "bad.json")]) == 2
    assert "error: --from-json: " in capsys.readouterr().err


def test_cost_write_defaults_to_docs_units_md_in_the_current_directory(monkeypatch, tmp_path):
    parser = argparse.ArgumentParser()
    cost.add_arguments(parser)
    assert parser.parse_args(["--write"]).write == Path("docs/units.md")
    assert parser.parse_args([]).write is None
    assert "relative to the current directory" in " ".join(parser.format_help().split())


def test_fmax_columns_and_targets_name_the_devices():
    keys = [key for key, _, _ in cost.FMAX_TARGETS]
    assert keys == ["fmax_pipelined_ice40", "fmax_pipelined_ecp5"]
    titles = [device for _, device, _ in cost.FMAX_TARGETS]
    assert titles == [DEVICES["ice40"].title, DEVICES["ecp5"].title] == ["iCE40 UP5K", "ECP5-85"]
