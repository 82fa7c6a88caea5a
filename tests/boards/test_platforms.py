"""Boards, devices, PLL settings and the board top (boards/platforms.py, boards/devices.py).

Pure Python and elaboration: no FPGA tool runs here (the bitstream builds are in
tests/synth/test_build.py).
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest
from amaranth.hdl import Fragment, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.boards.devices import DEVICES, ECP5_85F, FAMILIES, ICE40_UP5K
from palhdl.boards.platforms import (
    BOARDS,
    ECP5PLL,
    ICE40PLL,
    BoardTop,
    ecp5_pll,
    get_board,
    ice40_pll,
)
from palhdl.format import PALFormat, pal8, pal16
from palhdl.studies import accuracy

MHZ = 1_000_000


class _StandInCore(wiring.Component):
    """rx/tx/status ports like HostLinkCore, and nothing behind them."""

    def __init__(self):
        super().__init__({"rx": In(1), "tx": Out(1), "status": Out(2)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.tx.eq(self.rx)
        m.d.comb += self.status.eq(3)
        return m


# --- devices ---------------------------------------------------------------------------------


def test_devices_are_described_once_and_boards_refer_to_them():
    assert DEVICES == {"ice40": ICE40_UP5K, "ecp5": ECP5_85F}
    assert all(device.family in FAMILIES for device in DEVICES.values())
    assert ICE40_UP5K.nextpnr_options == ("--up5k", "--package", "sg48")
    assert ECP5_85F.nextpnr_options == ("--85k", "--package", "CABGA381", "--speed", "6")
    icebreaker, ulx3s = BOARDS["icebreaker"], BOARDS["ulx3s-85f"]
    assert icebreaker.device is ICE40_UP5K and ulx3s.device is ECP5_85F
    assert (icebreaker.family, ulx3s.family) == ("ice40", "ecp5")
    assert icebreaker.nextpnr_options == ("--up5k", "--package", "sg48")
    assert ulx3s.nextpnr_options == (
        *("--85k", "--package", "CABGA381", "--speed", "6"),
        *("--router", "router2"),
    )


# --- PLL settings ----------------------------------------------------------------------------


def _ice40_output(f_in: int, pll: ICE40PLL) -> Fraction:
    """iCE40 SIMPLE feedback: f_in * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ), exactly."""
    return Fraction(f_in * (pll.divf + 1), (pll.divr + 1) * 2**pll.divq)


def _check_ice40_limits(f_in: int, pll: ICE40PLL) -> None:
    # iCE40 sysCLOCK PLL limits: PFD 10..133 MHz, VCO 533..1066 MHz, output 16..275 MHz.
    pfd = Fraction(f_in, pll.divr + 1)
    vco = pfd * (pll.divf + 1)
    assert 10 * MHZ <= pfd <= 133 * MHZ
    assert 533 * MHZ <= vco <= 1066 * MHZ
    assert 16 * MHZ <= _ice40_output(f_in, pll) <= 275 * MHZ
    assert 0 <= pll.divr <= 15 and 0 <= pll.divf <= 127 and 1 <= pll.divq <= 6


def test_ice40_pll_48mhz_from_12mhz():
    pll = ice40_pll(12e6, 48e6)
    _check_ice40_limits(12 * MHZ, pll)
    assert _ice40_output(12 * MHZ, pll) == 48 * MHZ
    assert pll.f_out == 48e6
    # 12 MHz into the phase detector is the lowest loop filter band (10..17 MHz).
    assert pll.filter_range == 1


@pytest.mark.parametrize("mhz", [16, 20, 25, 33, 40, 45, 48, 50, 60, 75, 100, 133, 200, 270])
def test_ice40_pll_within_one_percent_and_limits(mhz):
    pll = ice40_pll(12e6, mhz * 1e6)
    _check_ice40_limits(12 * MHZ, pll)
    achieved = _ice40_output(12 * MHZ, pll)
    assert abs(achieved - mhz * MHZ) <= Fraction(mhz * MHZ, 100)
    assert pll.f_out == pytest.approx(float(achieved), rel=1e-12)


def test_ice40_pll_rejects_unreachable_frequency_naming_the_nearest():
    # From 12 MHz only DIVR = 0 keeps the PFD >= 10 MHz; near 49 MHz DIVQ must be 4, so the
    # outputs are 12 MHz * (DIVF + 1) / 16: 48.75 MHz and 49.5 MHz around 49 MHz.
    with pytest.raises(ValueError, match=r"clk_freq 49 MHz .* nearest achievable .* 48\.75 MHz"):
        ice40_pll(12e6, 49e6, tolerance=0.001)


@pytest.mark.parametrize("mhz", [5, 15.9, 276, 1000])
def test_ice40_pll_rejects_out_of_range(mhz):
    with pytest.raises(ValueError, match=r"clk_freq must be between 16 MHz and 275 MHz"):
        ice40_pll(12e6, mhz * 1e6)


def test_ecp5_pll_150mhz_from_25mhz():
    pll = ecp5_pll(25e6, 150e6)
    # EHXPLLL with CLKOP feedback: out = in * CLKFB_DIV / CLKI_DIV; VCO = out * CLKOP_DIV.
    out = Fraction(25 * MHZ * pll.clkfb_div, pll.clki_div)
    assert out == 150 * MHZ
    assert 400 * MHZ <= out * pll.clkop_div <= 800 * MHZ
    assert Fraction(25 * MHZ, pll.clki_div) >= Fraction(3125, 1000) * MHZ
    assert all(1 <= d <= 128 for d in (pll.clki_div, pll.clkfb_div, pll.clkop_div))


@pytest.mark.parametrize("mhz", [1, 401, 2000])
def test_ecp5_pll_rejects_out_of_range(mhz):
    with pytest.raises(ValueError, match=r"clk_freq must be between 3\.125 MHz and 400 MHz"):
        ecp5_pll(25e6, mhz * 1e6)


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (0, ValueError, "must be a positive finite number"),
        (-5e6, ValueError, "must be a positive finite number"),
        ("48e6", TypeError, "must be a number"),
        (True, TypeError, "must be a number"),
        (None, TypeError, "must be a number"),
    ],
)
def test_pll_rejects_non_frequencies(bad, error, message):
    with pytest.raises(error, match=f"clk_freq {message}"):
        ice40_pll(12e6, bad)
    with pytest.raises(error, match=f"f_in {message}"):
        ecp5_pll(bad, 100e6)
    with pytest.raises(error, match=f"clk_freq {message}"):
        BOARDS["icebreaker"].pll(bad)


def test_board_pll_is_none_at_the_oscillator_frequency():
    icebreaker, ulx3s = get_board("icebreaker"), get_board("ulx3s-85f")
    assert icebreaker.pll(12e6) is None
    assert ulx3s.pll(25e6) is None
    assert isinstance(icebreaker.pll(30e6), ICE40PLL)
    assert isinstance(ulx3s.pll(100e6), ECP5PLL)


def test_get_board_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"board must be one of 'icebreaker', 'ulx3s-85f'"):
        get_board("arty")


def test_board_default_config_needs_a_known_format():
    with pytest.raises(ValueError, match=r"default accumulators for formats 'pal8', 'pal16'"):
        BOARDS["icebreaker"].default_config(PALFormat(int_bits=5, frac_bits=6))
    with pytest.raises(TypeError, match="fmt must be a PALFormat"):
        BOARDS["icebreaker"].default_config("pal8")


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_board_default_configs_cost_little_accuracy(board):
    # The boards' narrow, wrapping accumulators must not cost a Gaussian matmul more than
    # 0.5 dB SQNR over exact accumulation of the same PAL operands, at the host link's K.
    for fmt in (pal8, pal16):
        config = BOARDS[board].default_config(fmt)
        assert accuracy.mac_rounding_cost(config, 64).cost_db < 0.5, (board, fmt)


def test_board_top_rejects_bad_arguments():
    core = _StandInCore()
    with pytest.raises(TypeError, match="board must be a Board"):
        BoardTop(board="icebreaker", core=core, clk_freq=12e6)
    with pytest.raises(TypeError, match="core must have a 'rx' port"):
        BoardTop(board=BOARDS["icebreaker"], core=object(), clk_freq=12e6)
    with pytest.raises(ValueError, match="clk_freq must be between"):
        BoardTop(board=BOARDS["icebreaker"], core=core, clk_freq=500e6)
    Fragment.get(core, None)  # never wrapped: elaborate it here


@pytest.mark.parametrize(
    ("board", "mhz", "pll"),
    [("icebreaker", 12, None), ("icebreaker", 36, ICE40PLL), ("ulx3s-85f", 60, ECP5PLL)],
)
def test_board_top_elaborates_on_the_board_platform(board, mhz, pll):
    top = BoardTop(board=BOARDS[board], core=_StandInCore(), clk_freq=mhz * 1e6)
    assert top.pll is None if pll is None else isinstance(top.pll, pll)
    assert top.sync_freq == pytest.approx(mhz * 1e6, rel=1e-9)
    plan = BOARDS[board].platform().prepare(top, name="top")
    rtlil = plan.files["top.il"]
    assert ("SB_PLL40_PAD" in rtlil) == (pll is ICE40PLL)
    assert ("EHXPLLL" in rtlil) == (pll is ECP5PLL)


def test_board_arithmetic_is_its_best_pal_pe():
    ice40 = get_board("icebreaker").arithmetic(get_board("icebreaker").default_config())
    # The UP5K's EBRs feed the accumulators directly (no table output registers).
    assert (ice40.term, ice40.table_ports, ice40.pipelined) == ("table", 1, False)
    ulx3s = get_board("ulx3s-85f")
    ecp5 = ulx3s.arithmetic(ulx3s.default_config(), pipelined=False)
    assert (ecp5.term, ecp5.product_group, ecp5.pipelined) == ("signed_table", 2, False)
    # pal16's table would have 65,536 entries: the logic product term.
    assert ulx3s.arithmetic(ulx3s.default_config(pal16)).term == "logic"


def test_board_options_for_the_run_time_split_and_block_scaling():
    board = get_board("icebreaker")
    pe = board.arithmetic(board.default_config())
    # Today's defaults: a read-only table, PAL words as operands.
    assert (board.loadable, board.block_scaled, pe.loadable, pe.block_scaled) == (
        False,
        False,
        False,
        False,
    )
    both = dataclasses.replace(board, loadable=True, block_scaled=True)
    pe = both.arithmetic(both.default_config())
    assert (pe.term, pe.loadable, pe.block_scaled) == ("table", True, True)
    # pal16's logic product term has no table to load; it still takes block offsets.
    logic = both.arithmetic(both.default_config(pal16))
    assert (logic.term, logic.loadable, logic.block_scaled) == ("logic", False, True)
