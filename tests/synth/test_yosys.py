"""Resource counts with Yosys (synth/yosys.py)."""

import json

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Fragment, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.boards.platforms import get_board
from palhdl.hdl.systolic import SystolicArray
from palhdl.synth.toolchain import run_yosys
from palhdl.synth.yosys import synth_command, synth_stats


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


def test_synth_command_per_family():
    assert synth_command("ice40", dsp=False) == "synth_ice40 -top top"
    assert synth_command("ice40", dsp=True) == "synth_ice40 -top top -dsp"
    assert synth_command("ecp5", dsp=True, top="t") == "synth_ecp5 -top t"
    assert synth_command("ecp5", dsp=False, abc9=False) == (
        "synth_ecp5 -top top -nodsp -run :map_luts; techmap -map +/lattice/latches_map.v; "
        "abc -lut 4 -dress; clean; synth_ecp5 -top top -nodsp -run map_cells:"
    )
    with pytest.raises(ValueError, match="abc9=False is implemented for the ecp5 family only"):
        synth_command("ice40", dsp=False, abc9=False)
    assert synth_command("ecp5", dsp=False) == "synth_ecp5 -top top -nodsp"


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


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"target": "xilinx"}, ValueError, "target must be one of 'ice40', 'ecp5', 'cmos'"),
        ({"target": "ice40", "dsp": 1}, TypeError, "dsp must be a bool"),
        ({"target": "cmos", "dsp": True}, ValueError, "dsp must be False for target 'cmos'"),
    ],
)
def test_bad_parameters(kwargs, error, message):
    unit = RegisteredAdder()
    with pytest.raises(error, match=message):
        synth_stats(unit, **kwargs)
    Fragment.get(unit, None)  # rejected before synthesis: elaborate it here


@pytest.mark.slow
def test_ecp5_without_abc9_maps_shared_tables():
    board = get_board("ulx3s-85f")
    array = SystolicArray(arithmetic=board.arithmetic(board.default_config()), rows=2, cols=2)
    design = rtlil.convert(array, name="top")
    script = (
        f"read_rtlil design.il; {synth_command('ecp5', dsp=True, abc9=False)}; "
        "tee -q -o stat.json stat -json"
    )
    stat = json.loads(run_yosys(script, {"design.il": design}, outputs=["stat.json"])["stat.json"])
    cells = stat["modules"]["\\top"]["num_cells_by_type"]
    # Two PEs per table: 2 x 2 PEs read 2 DP16KDs; the logic is in LUT4s, none left unmapped.
    assert cells["DP16KD"] == 2
    assert cells["LUT4"] > 0
    assert not [name for name in cells if name.startswith("$_")]
