# amaranth: UnusedElaboratable=no
"""Synthesis tooling: YoWASP Yosys runs, resource counts, the toolchain environment, the study.

The first Yosys run on a machine compiles the WebAssembly module (about a minute, once).
"""

import argparse
import os
from pathlib import Path

import pytest
from amaranth.hdl import Fragment, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.format import MacConfig, pal8
from palhdl.studies import cost
from palhdl.synth.pnr import fmax
from palhdl.synth.toolchain import TOOLS, find_tool, use_yowasp_env, yowasp_env
from palhdl.synth.yosys import YosysError, run_yosys, synth_stats, yosys_version


class RegisteredAdder(wiring.Component):
    """``y <= a + b`` with 4-bit operands: 5 flip-flops and a few LUTs."""

    a: In(4)
    b: In(4)
    y: Out(5)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.a + self.b)
        return m


class RegisteredMultiplier(wiring.Component):
    """``y <= a * b`` with 8-bit operands."""

    a: In(8)
    b: In(8)
    y: Out(16)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.a * self.b)
        return m


def test_ice40_counts():
    stats = synth_stats(RegisteredAdder(), target="ice40")
    assert stats["DFF"] == 5
    assert 4 <= stats["LUT4"] <= 20
    assert stats["DSP"] == 0 and stats["BRAM"] == 0
    assert stats["cells"]["SB_LUT4"] == stats["LUT4"]


def test_ecp5_counts():
    stats = synth_stats(RegisteredAdder(), target="ecp5")
    assert stats["DFF"] == 5
    assert stats["LUT4"] + stats["CCU2C"] > 0
    assert stats["DSP"] == 0 and stats["EBR"] == 0


def test_cmos_counts():
    stats = synth_stats(RegisteredAdder(), target="cmos")
    assert stats["cells"]["$_DFF_P_"] == 5
    cells = sum(stats["cells"].values())
    # From 2 transistors per inverter to 16 per flip-flop.
    assert 2 * cells <= stats["transistors"] <= 16 * cells


def test_dsp_option_uses_hard_multipliers():
    logic = synth_stats(RegisteredMultiplier(), target="ice40")
    hard = synth_stats(RegisteredMultiplier(), target="ice40", dsp=True)
    assert logic["DSP"] == 0 and logic["LUT4"] > 50
    assert hard["DSP"] == 1 and hard["LUT4"] < logic["LUT4"]
    assert synth_stats(RegisteredMultiplier(), target="ecp5", dsp=True)["DSP"] == 1


def test_plain_elaboratable_with_ports():
    m = Module()
    a, y = Signal(3), Signal(3)
    m.d.sync += y.eq(~a)
    assert synth_stats(m, target="ice40", ports=[a, y])["DFF"] == 3


def test_yosys_failure_raises_with_log_tail():
    with pytest.raises(YosysError, match=r"(?s)exit status 1.*missing\.v"):
        run_yosys("read_verilog missing.v", {})
    with pytest.raises(YosysError, match=r"(?s)exit status 1.*syntax error"):
        run_yosys("read_verilog bad.v", {"bad.v": "module top(; endmodule\n"})


def test_missing_output_raises():
    with pytest.raises(YosysError, match=r"output files not written: absent\.txt"):
        run_yosys("", {}, outputs=["absent.txt"])


def test_run_yosys_returns_outputs_and_log():
    result = run_yosys(
        "read_verilog t.v; write_verilog -noattr out.v",
        {"t.v": "module top(input a, output y); assign y = ~a; endmodule\n"},
        outputs=["out.v"],
    )
    assert "module top" in result["out.v"]
    assert "Executing Verilog backend" in result["log"]


def test_yosys_version():
    assert yosys_version().startswith("Yosys 0.")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"target": "xilinx"}, ValueError, "target must be one of 'ice40', 'ecp5', 'cmos'"),
        ({"target": "ice40", "dsp": 1}, TypeError, "dsp must be a bool"),
        ({"target": "cmos", "dsp": True}, ValueError, "dsp must be False for target 'cmos'"),
    ],
)
def test_bad_parameters(kwargs, error, message):
    with pytest.raises(error, match=message):
        synth_stats(RegisteredAdder(), **kwargs)


# --- toolchain environment --------------------------------------------------------------------


def test_yowasp_env_points_at_executables():
    env = yowasp_env()
    for variable in ("YOSYS", "NEXTPNR_ICE40", "ICEPACK", "NEXTPNR_ECP5", "ECPPACK"):
        assert Path(env[variable]).name == TOOLS[variable]
        assert os.access(env[variable], os.X_OK)
    assert set(env) <= set(TOOLS)
    assert find_tool("palhdl-no-such-tool") is None


def test_use_yowasp_env_sets_and_restores(monkeypatch):
    monkeypatch.setenv("YOSYS", "sentinel")
    monkeypatch.delenv("ICEPACK", raising=False)
    with use_yowasp_env() as env:
        assert os.environ["YOSYS"] == env["YOSYS"] != "sentinel"
        assert os.environ["ICEPACK"] == env["ICEPACK"]
    assert os.environ["YOSYS"] == "sentinel"
    assert "ICEPACK" not in os.environ


# --- cost study -------------------------------------------------------------------------------


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

    pal, int8, limit = cost.COST_TARGETS[0]
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
        "fmax_pipelined_ice40": {"fmax_mhz": 61.5},
        "fmax_pipelined_ecp5": {"fmax_mhz": 180.0},
    }
    text = cost.render([mac], "Yosys 0.70")
    assert "| 61.5 | 180.0 |" in text
    assert (
        "- PALMac pal8 acc32/12 t14 wrap W5, pipelined: iCE40 UP5K 61.5 MHz (target >= 60: "
        "holds); ECP5-85 180.0 MHz (target >= 220: does not hold)."
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


# --- place and route --------------------------------------------------------------------------


def test_fmax_of_registered_unit():
    result = fmax(RegisteredAdder(), target="ice40")
    assert 20 < result["fmax_mhz"] < 1000
    assert result["report"]["utilization"]["SB_IO"]["used"] >= 2  # sin, sout (+ clock, reset)


def test_fmax_rejects_unknown_target():
    with pytest.raises(ValueError, match="target must be one of 'ice40', 'ecp5'"):
        fmax(RegisteredAdder(), target="cmos")
