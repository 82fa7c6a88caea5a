"""The host link's memories as Yosys builds them: block RAM and SPRAM counts, SPRAM wiring.

Counts come from Yosys' ``stat`` of the synthesized netlist and connections from its JSON
netlist, never from the code under test. The reference for wiring an iCE40 UltraPlus SPRAM is
Yosys' own memory mapping (its ``ice40`` SPRAM rules) of a plain single-port byte memory
written in Verilog here.
"""

import json

import pytest
from amaranth.back import rtlil

from palhdl.boards.hostlink.core import HostLinkCore
from palhdl.boards.hostlink.run import SPRAM_DEPTH, ResultMemory
from palhdl.boards.platforms import get_board
from palhdl.synth.toolchain import run_yosys
from palhdl.synth.yosys import synth_command

SPRAM = "SB_SPRAM256KA"
BLOCK_RAM = "SB_RAM40_4K"


def reference_memory(depth: int) -> str:
    """Verilog of a single-port byte memory with the ports of :class:`ResultMemory`."""
    abits = max(1, (depth - 1).bit_length())
    return f"""
module top(input clk, input rst, input [{abits - 1}:0] addr, input [7:0] write_data,
           input write_en, output reg [7:0] read_data);
  (* ram_style = "huge" *) reg [7:0] mem [0:{depth - 1}];
  always @(posedge clk)
    if (write_en) mem[addr] <= write_data;
    else read_data <= mem[addr];
endmodule
"""


def spram_wiring(read: str, files: dict) -> dict:
    """Synthesize for iCE40; return the one SPRAM's pins in terms of the top's ports.

    Each pin is a tuple of its bits: ``"port[i]"``, a constant ``"0"`` / ``"1"`` / ``"x"``, or
    ``"DATAOUT[i]"`` for a bit of the SPRAM's own output; ``"read_data"`` maps the top's output
    the same way.
    """
    script = f"{read}; {synth_command('ice40', dsp=False)}; write_json netlist.json"
    netlist = json.loads(run_yosys(script, files, outputs=["netlist.json"])["netlist.json"])
    module = netlist["modules"]["top"]
    (spram,) = (cell for cell in module["cells"].values() if cell["type"] == SPRAM)
    names = {}
    for name, port in module["ports"].items():
        names.update({bit: f"{name}[{i}]" for i, bit in enumerate(port["bits"])})
    names.update({bit: f"DATAOUT[{i}]" for i, bit in enumerate(spram["connections"]["DATAOUT"])})
    pins = {
        pin: tuple(names.get(bit, str(bit)) for bit in bits)
        for pin, bits in spram["connections"].items()
        if pin != "DATAOUT"
    }
    pins["read_data"] = tuple(names[bit] for bit in module["ports"]["read_data"]["bits"])
    return pins


@pytest.mark.parametrize("depth", [225, SPRAM_DEPTH])
def test_result_memory_drives_the_spram_as_yosys_maps_a_memory(depth):
    platform = get_board("icebreaker").platform()
    design = rtlil.convert(ResultMemory(depth=depth), name="top", platform=platform)
    ours = spram_wiring("read_rtlil design.il", {"design.il": design})
    reference = spram_wiring("read_verilog memory.v", {"memory.v": reference_memory(depth)})
    assert ours.keys() == reference.keys()
    for pin, bits in reference.items():
        # An undefined bit of the reference (an unused data bit) may be anything.
        assert len(ours[pin]) == len(bits), pin
        assert all(r in ("x", o) for o, r in zip(ours[pin], bits, strict=True)), pin
    assert reference["WREN"] == ("write_en[0]",)  # the reference is what it should be
    assert reference["read_data"] == tuple(f"DATAOUT[{i}]" for i in range(8))


def test_result_memory_uses_the_spram_on_ultraplus_only():
    icebreaker = get_board("icebreaker").platform()
    assert ResultMemory.uses_spram(icebreaker, SPRAM_DEPTH)
    assert not ResultMemory.uses_spram(icebreaker, SPRAM_DEPTH + 1)
    assert not ResultMemory.uses_spram(get_board("ulx3s-85f").platform(), 16)
    assert not ResultMemory.uses_spram(None, 16)


def icebreaker_counts(platform, *, rows=5, cols=5, **options) -> dict:
    """Yosys' cell counts of an iCEBreaker pal8 core: the link's share and the array's.

    The core is synthesized as the board build does (``synth_ice40 -dsp``); the array is the
    core's submodule ``array``, so after flattening its cells are named ``array.*``.
    ``options`` go to :class:`HostLinkCore` (default: a 5 x 5 array, pipelined).
    """
    board = get_board("icebreaker")
    core = HostLinkCore(
        rows=rows,
        cols=cols,
        config=board.default_config(),
        output="raw",
        clk_freq=48_000_000,
        k_max=64,
        **({"pipelined": True} | options),
    )
    design = rtlil.convert(core, name="top", platform=platform, emit_src=False)
    script = (
        f"read_rtlil design.il; {synth_command('ice40', dsp=True)}; "
        "tee -q -o link.json stat -json n:array.* %n; "
        "tee -q -o array.json stat -json n:array.*"
    )
    result = run_yosys(script, {"design.il": design}, outputs=["link.json", "array.json"])
    counts = {}
    for part in ("link", "array"):
        stat = json.loads(result[f"{part}.json"])
        summary = stat.get("design") or stat["modules"]["\\top"]
        counts[part] = summary["num_cells_by_type"]
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("board_platform", [True, False], ids=["icebreaker", "no-platform"])
def test_icebreaker_link_fits_five_block_rams(board_platform):
    # The UP5K has 30 block RAMs; a 5 x 5 array's PEs take 25 of them.
    platform = get_board("icebreaker").platform() if board_platform else None
    counts = icebreaker_counts(platform)
    link = counts["link"]
    if board_platform:
        # Operands 3 (40 bits x 128 rows), receive FIFO 1; the result in one SPRAM.
        assert link.get(BLOCK_RAM, 0) <= 4
        assert link.get(SPRAM, 0) == 1
    else:
        assert link.get(BLOCK_RAM, 0) <= 5
        assert SPRAM not in link
    assert SPRAM not in counts["array"]


@pytest.mark.slow
def test_icebreaker_loadable_block_scaled_core_keeps_one_block_ram_per_pe():
    # The default 4 x 5 board core with a loadable table and block offsets: each PE's table is
    # still one EBR (the write shares its block RAM's second port); the operands' offsets make
    # the operand memory 80 bits x 128 rows, five EBRs instead of three.
    counts = icebreaker_counts(
        get_board("icebreaker").platform(),
        rows=4,
        cols=5,
        pipelined=False,
        term="table",
        loadable=True,
        block_scaled=True,
    )
    assert counts["array"].get(BLOCK_RAM, 0) == 20
    assert counts["link"].get(BLOCK_RAM, 0) == 5 + 1  # operands, receive FIFO
    assert counts["link"].get(SPRAM, 0) == 1
