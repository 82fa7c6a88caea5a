"""Board tops: the host-link accelerator on the iCEBreaker and the ULX3S-85F.

A :class:`Board` describes one supported board (its Amaranth platform, its FPGA
(:class:`~palhdl.boards.devices.Device`), oscillator and default accelerator configuration);
:data:`BOARDS` lists them by the name ``palhdl build --board`` takes. :class:`BoardTop` wraps a
:class:`~palhdl.boards.hostlink.core.HostLinkCore` for a board: it derives the ``sync`` clock from
the board oscillator through a PLL (:func:`ice40_pll`, :func:`ecp5_pll`), holds ``sync`` in
reset until the PLL has locked (plus a power-on delay), and connects the FTDI UART and the
user LEDs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from palhdl.boards.devices import ECP5_85F, ICE40_UP5K, Device
from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.hdl.pe import MAX_TABLE_ENTRIES, table_entries
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.unit import Unit
from palhdl.validate import check_choice, check_instance, check_positive_float

__all__ = [
    "BOARDS",
    "ECP5PLL",
    "ICE40PLL",
    "Board",
    "BoardTop",
    "ecp5_pll",
    "get_board",
    "ice40_pll",
]

#: Largest relative difference between a requested clock and the one the PLL can make.
PLL_TOLERANCE = 0.01

#: ``sync`` stays in reset this long after the PLL locks (iCE40 BRAMs read as zero for ~3 us
#: after configuration).
POWER_ON_DELAY = 15e-6


def _mhz(hz: float) -> str:
    return f"{hz / 1e6:.6g} MHz"


@dataclass(frozen=True)
class ICE40PLL:
    """Configuration of an iCE40 ``SB_PLL40_*`` in ``SIMPLE`` feedback mode.

    ``f_out = f_in * (divf + 1) / ((divr + 1) * 2**divq)``; the VCO runs at ``2**divq * f_out``.
    """

    f_in: float
    divr: int
    divf: int
    divq: int

    #: Datasheet limits (iCE40 sysCLOCK PLL): reference, phase detector, VCO, output, in Hz.
    F_IN = (10e6, 133e6)
    F_PFD = (10e6, 133e6)
    F_VCO = (533e6, 1066e6)
    F_OUT = (16e6, 275e6)

    @property
    def f_pfd(self) -> float:
        """Phase detector frequency, in Hz."""
        return self.f_in / (self.divr + 1)

    @property
    def f_vco(self) -> float:
        """VCO frequency, in Hz."""
        return self.f_pfd * (self.divf + 1)

    @property
    def f_out(self) -> float:
        """Output frequency, in Hz."""
        return self.f_vco / (1 << self.divq)

    @property
    def filter_range(self) -> int:
        """Loop filter setting for the phase detector frequency (iCE40 PLL table)."""
        for setting, upper in enumerate((17e6, 26e6, 44e6, 66e6, 101e6), start=1):
            if self.f_pfd < upper:
                return setting
        return 6


@dataclass(frozen=True)
class ECP5PLL:
    """Configuration of an ECP5 ``EHXPLLL`` with ``CLKOP`` feedback.

    ``f_out = f_in * clkfb_div / clki_div``; the VCO runs at ``clkop_div * f_out``.
    """

    f_in: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    #: Datasheet limits (ECP5 sysCLOCK PLL): reference, phase detector, VCO, output, in Hz.
    F_IN = (8e6, 400e6)
    F_PFD = (3.125e6, 400e6)
    F_VCO = (400e6, 800e6)
    F_OUT = (3.125e6, 400e6)

    @property
    def f_pfd(self) -> float:
        """Phase detector frequency, in Hz."""
        return self.f_in / self.clki_div

    @property
    def f_out(self) -> float:
        """Output frequency, in Hz."""
        return self.f_pfd * self.clkfb_div

    @property
    def f_vco(self) -> float:
        """VCO frequency, in Hz."""
        return self.f_out * self.clkop_div


def _within(value: float, limits: tuple[float, float]) -> bool:
    return limits[0] <= value <= limits[1]


def _choose(kind: str, f_in: float, f_out: float, candidates, limits, tolerance: float):
    """Pick the candidate PLL closest to ``f_out`` (ties: highest phase detector frequency)."""
    if not _within(f_in, limits.F_IN):
        raise ValueError(
            f"the {kind} PLL needs a reference clock of {_mhz(limits.F_IN[0])} to "
            f"{_mhz(limits.F_IN[1])}, not {_mhz(f_in)}"
        )
    if not _within(f_out, limits.F_OUT):
        raise ValueError(
            f"clk_freq must be between {_mhz(limits.F_OUT[0])} and {_mhz(limits.F_OUT[1])} "
            f"for the {kind} PLL, not {_mhz(f_out)}"
        )
    best = min(candidates, key=lambda pll: (abs(pll.f_out - f_out), -pll.f_pfd))
    if abs(best.f_out - f_out) > tolerance * f_out:
        raise ValueError(
            f"clk_freq {_mhz(f_out)} cannot be made by the {kind} PLL from {_mhz(f_in)} within "
            f"{tolerance:.1%}; the nearest achievable frequency is {_mhz(best.f_out)}"
        )
    return best


def ice40_pll(f_in: float, f_out: float, *, tolerance: float = PLL_TOLERANCE) -> ICE40PLL:
    """Divider settings of an iCE40 PLL that turns ``f_in`` into (about) ``f_out``.

    Parameters
    ----------
    f_in, f_out : float
        Reference and wanted output frequency, in Hz.
    tolerance : float
        Largest accepted ``|achieved - f_out| / f_out``.

    Returns
    -------
    ICE40PLL
        The setting whose output is closest to ``f_out`` with every internal frequency within
        the datasheet limits; ``.f_out`` is the frequency actually produced.

    Raises
    ------
    ValueError
        If ``f_in`` or ``f_out`` is outside the PLL's range, or no setting is within
        ``tolerance`` of ``f_out`` (the message names the nearest achievable frequency).
    """
    f_in = check_positive_float("f_in", f_in)
    f_out = check_positive_float("clk_freq", f_out)
    valid = [
        ICE40PLL(f_in, divr, divf, divq)
        for divr in range(16)
        if _within(f_in / (divr + 1), ICE40PLL.F_PFD)
        for divf in range(128)
        if _within(f_in / (divr + 1) * (divf + 1), ICE40PLL.F_VCO)
        for divq in range(1, 7)
        if _within(f_in / (divr + 1) * (divf + 1) / (1 << divq), ICE40PLL.F_OUT)
    ]
    return _choose("iCE40", f_in, f_out, valid, ICE40PLL, tolerance)


def ecp5_pll(f_in: float, f_out: float, *, tolerance: float = PLL_TOLERANCE) -> ECP5PLL:
    """Divider settings of an ECP5 ``EHXPLLL`` that turns ``f_in`` into (about) ``f_out``.

    Parameters, return value and errors as :func:`ice40_pll` (with the ECP5 limits).
    """
    f_in = check_positive_float("f_in", f_in)
    f_out = check_positive_float("clk_freq", f_out)
    valid = []
    for clki_div in range(1, 129):
        if f_in / clki_div < ECP5PLL.F_PFD[0]:
            break
        for clkfb_div in range(1, 129):
            output = f_in / clki_div * clkfb_div
            clkop_div = max(1, math.ceil(ECP5PLL.F_VCO[0] / output))
            pll = ECP5PLL(f_in, clki_div, clkfb_div, clkop_div)
            if (
                clkop_div <= 128
                and _within(pll.f_pfd, ECP5PLL.F_PFD)
                and _within(pll.f_vco, ECP5PLL.F_VCO)
                and _within(pll.f_out, ECP5PLL.F_OUT)
            ):
                valid.append(pll)
    return _choose("ECP5", f_in, f_out, valid, ECP5PLL, tolerance)


@dataclass(frozen=True)
class Board:
    """A supported board.

    Attributes
    ----------
    name : str
        What ``palhdl build --board`` takes.
    title : str
        Human-readable board and FPGA.
    device : Device
        The FPGA; its family selects the tools and the PLL primitive.
    platform : type
        The ``amaranth_boards`` platform class.
    osc_freq : float
        Frequency of the board oscillator (the platform's default clock), in Hz.
    rows, cols : int
        Default array geometry.
    clk_freq : float
        Default ``sync`` frequency, in Hz.
    configs : tuple of MacConfig
        The default MAC configuration per operand format (:meth:`default_config`).
    output : str
        Default readout: ``"raw"`` sends accumulators to the host, which converts them (bit
        for bit as the golden model), so the FPGA needs no readout converters.
    leds : int
        Number of user LEDs (``led`` resources) the core's ``status`` bits drive.
    nextpnr_extra : tuple of str
        nextpnr options the board's builds need beyond the device's (the ULX3S routes with
        ``router2``: nextpnr's default router did not converge on a 16 x 16 array in two hours).
    term : str
        The PEs' product term, ``PALArithmetic(term=...)``: ``"table"`` (iCE40: one 256 x 16
        EBR per PE) or ``"signed_table"`` (ECP5: no sign logic).
    table_ports : int
        PEs per product-term table, ``PALArithmetic(table_ports=...)``: 2 on the ECP5, whose
        dual-ported ``DP16KD`` serves two PEs; 1 on the iCE40 (one read port per EBR).
    abc9 : bool
        Map the logic with Yosys' ABC9 (the default) or, ``False``, with ABC
        (:func:`palhdl.synth.yosys.synth_command`): the ULX3S's shared tables need ABC.
    pipelined : bool
        Register the PEs' product terms by default (``palhdl build``): on the ECP5 the table's
        own output register; on the UP5K an EBR feeds the accumulator directly, which saves a
        logic cell per table bit (the flip-flops would sit in cells of their own).
    loadable : bool
        The PEs' product-term tables are RAMs the host rewrites (LOAD_TABLE: the run-time split,
        ``PALArithmetic(loadable=)``), where the board's PEs use a table term; default
        ``False``.
    block_scaled : bool
        The operands carry block offsets (``PALArithmetic(block_scaled=)``: block scaling
        through the host link); default ``False``.
    """

    name: str
    title: str
    device: Device
    platform: type
    osc_freq: float
    rows: int
    cols: int
    clk_freq: float
    configs: tuple[MacConfig, ...]
    output: str
    leds: int
    nextpnr_extra: tuple[str, ...] = ()
    term: str = "auto"
    table_ports: int = 1
    abc9: bool = True
    pipelined: bool = True
    loadable: bool = False
    block_scaled: bool = False

    @property
    def family(self) -> str:
        """The FPGA family, :attr:`Device.family <palhdl.boards.devices.Device.family>`."""
        return self.device.family

    @property
    def nextpnr_options(self) -> tuple[str, ...]:
        """All of nextpnr's options for the board: the device's, then :attr:`nextpnr_extra`."""
        return self.device.nextpnr_options + self.nextpnr_extra

    def default_config(self, fmt: PALFormat = pal8) -> MacConfig:
        """Return the accumulator this board uses by default for operands of ``fmt``.

        Raises
        ------
        ValueError
            If the board has no default for ``fmt`` (pass a ``MacConfig`` instead).
        """
        check_instance("fmt", fmt, PALFormat)
        for config in self.configs:
            if config.fmt == fmt:
                return config
        names = ", ".join(repr(config.fmt.name) for config in self.configs)
        raise ValueError(
            f"board {self.name!r} has default accumulators for formats {names}, not {fmt.name!r}; "
            "pass a MacConfig"
        )

    def arithmetic(self, config: MacConfig, *, pipelined: bool | None = None) -> PALArithmetic:
        """Return the PE arithmetic of this board's PAL arrays for ``config``.

        The board's :attr:`term`, :attr:`table_ports` and :attr:`loadable` where ``config``'s
        product-term table fits in block RAM, else the logic product term (pal16; it has no
        table to load); :attr:`block_scaled` either way. ``pipelined`` defaults to
        :attr:`pipelined`.
        """
        check_instance("config", config, MacConfig)
        pipelined = self.pipelined if pipelined is None else pipelined
        if table_entries(config, signed=self.term == "signed_table") > MAX_TABLE_ENTRIES:
            return PALArithmetic(
                config=config, pipelined=pipelined, term="logic", block_scaled=self.block_scaled
            )
        return PALArithmetic(
            config=config,
            pipelined=pipelined,
            term=self.term,
            table_ports=self.table_ports,
            loadable=self.loadable,
            block_scaled=self.block_scaled,
        )

    def pll(self, clk_freq: float) -> ICE40PLL | ECP5PLL | None:
        """Return the PLL setting for ``clk_freq`` (``None``: it is the oscillator frequency).

        Raises
        ------
        ValueError
            If the board's PLL cannot make ``clk_freq`` (see :func:`ice40_pll`).
        """
        clk_freq = check_positive_float("clk_freq", clk_freq)
        if clk_freq == self.osc_freq:
            return None
        if self.family == "ice40":
            return ice40_pll(self.osc_freq, clk_freq)
        return ecp5_pll(self.osc_freq, clk_freq)


BOARDS: dict[str, Board] = {
    board.name: board
    for board in (
        Board(
            name="icebreaker",
            title="iCEBreaker (Lattice iCE40UP5K-SG48)",
            device=ICE40_UP5K,
            platform=ICEBreakerPlatform,
            osc_freq=12e6,
            rows=4,
            cols=5,
            clk_freq=40e6,
            configs=(
                MacConfig(
                    pal8,
                    mantissa_bits=5,
                    acc_bits=18,
                    acc_frac_bits=8,
                    term_bits=11,
                    saturate=False,
                ),
                MacConfig(pal16, acc_bits=24, acc_frac_bits=16),
            ),
            output="raw",
            leds=2,
            term="table",
            pipelined=False,
        ),
        Board(
            name="ulx3s-85f",
            title="ULX3S (Lattice ECP5 LFE5U-85F-6BG381C)",
            device=ECP5_85F,
            platform=ULX3S_85F_Platform,
            osc_freq=25e6,
            rows=16,
            cols=16,
            clk_freq=60e6,
            configs=(
                MacConfig(
                    pal8,
                    mantissa_bits=5,
                    acc_bits=20,
                    acc_frac_bits=10,
                    term_bits=13,
                    saturate=False,
                ),
                MacConfig(pal16, acc_bits=32, acc_frac_bits=20),
            ),
            output="raw",
            leds=8,
            nextpnr_extra=("--router", "router2"),
            term="signed_table",
            table_ports=2,
            abc9=False,
        ),
    )
}


def get_board(name: str) -> Board:
    """Return the :class:`Board` called ``name`` (a key of :data:`BOARDS`).

    Raises
    ------
    ValueError
        If there is no such board; the message lists the supported ones.
    """
    return BOARDS[check_choice("board", name, BOARDS)]


class BoardTop(Unit):
    """Top level for ``board``: clocking, reset, UART and LEDs around ``core``.

    A component without ports: its pins are the board's resources it requests.

    Parameters
    ----------
    board : Board
        The target board.
    core : wiring.Component
        The accelerator, in the ``sync`` domain, with ports ``rx`` (``In(1)``), ``tx``
        (``Out(1)``) and optionally ``status`` (``Out(n)``; bit ``i`` drives LED ``i``, extra
        bits are left unconnected).
    clk_freq : float
        Frequency of ``sync`` in Hz: the oscillator itself, or made by the board's PLL
        (:meth:`Board.pll`).

    Raises
    ------
    TypeError
        If ``board`` is not a :class:`Board` or ``core`` lacks the ``rx``/``tx`` ports.
    ValueError
        If the PLL cannot make ``clk_freq``.
    """

    @classmethod
    def check_parameters(cls, *, board: Board, core, clk_freq: float):
        """Validate the parameters; return ``(board, core, pll)``."""
        check_instance("board", board, Board)
        for port in ("rx", "tx"):
            if not hasattr(core, port):
                raise TypeError(f"core must have a {port!r} port, {core!r} has none")
        return board, core, board.pll(clk_freq)

    def __init__(self, *, board: Board, core, clk_freq: float):
        self._board, self._core, self._pll = self.check_parameters(
            board=board, core=core, clk_freq=clk_freq
        )
        super().__init__({})

    @property
    def board(self) -> Board:
        """The target board."""
        return self._board

    @property
    def core(self):
        """The accelerator."""
        return self._core

    @property
    def pll(self) -> ICE40PLL | ECP5PLL | None:
        """The PLL setting (``None``: ``sync`` runs from the oscillator)."""
        return self._pll

    @property
    def sync_freq(self) -> float:
        """The frequency ``sync`` actually runs at (``pll.f_out`` or the oscillator's), in Hz."""
        return self._board.osc_freq if self._pll is None else self._pll.f_out

    def _clock(self, m: Module, platform, clk: Signal, locked: Signal) -> None:
        """Drive ``clk`` (and ``locked``) from the board oscillator, through the PLL if any."""
        pll = self.pll
        if pll is None:
            osc = platform.request(platform.default_clk, dir="-")
            m.submodules.osc_buffer = buffer = io.Buffer("i", osc)
            m.d.comb += [clk.eq(buffer.i), locked.eq(1)]
        elif isinstance(pll, ICE40PLL):
            # The iCEBreaker oscillator drives pin 35 (IOT_46b_G0), the UP5K PLL's own pad.
            osc = platform.request(platform.default_clk, dir="-")
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=pll.divr,
                p_DIVF=pll.divf,
                p_DIVQ=pll.divq,
                p_FILTER_RANGE=pll.filter_range,
                i_PACKAGEPIN=osc.io,
                i_RESETB=Const(1),
                i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=clk,
                o_LOCK=locked,
            )
        else:
            osc = platform.request(platform.default_clk, dir="-")
            m.submodules.osc_buffer = buffer = io.Buffer("i", osc)
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_ICP_CURRENT="12",
                a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED",
                p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA",
                p_CLKOP_ENABLE="ENABLED",
                p_CLKI_DIV=pll.clki_div,
                p_CLKFB_DIV=pll.clkfb_div,
                p_CLKOP_DIV=pll.clkop_div,
                p_CLKOP_CPHASE=pll.clkop_div - 1,
                p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="CLKOP",
                i_CLKI=buffer.i,
                i_CLKFB=clk,
                i_RST=Const(0),
                i_STDBY=Const(0),
                i_PHASESEL0=Const(0),
                i_PHASESEL1=Const(0),
                i_PHASEDIR=Const(1),
                i_PHASESTEP=Const(1),
                i_PHASELOADREG=Const(1),
                i_PLLWAKESYNC=Const(0),
                i_ENCLKOP=Const(0),
                o_CLKOP=clk,
                o_LOCK=locked,
            )

    def elaborate(self, platform):
        """Clock, power-on reset, UART and LEDs around the core."""
        m = Module()
        clk = Signal()
        locked = Signal()
        # nextpnr derives the constraint of a PLL output from the oscillator pin's constraint.
        self._clock(m, platform, clk, locked)

        # Power-on delay, counted on the running clock once the PLL has locked.
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        delay = math.ceil(POWER_ON_DELAY * self.sync_freq)
        timer = Signal(range(delay + 1))
        ready = Signal()
        m.d.comb += ClockSignal("por").eq(clk)
        m.d.por += ready.eq(locked & (timer == delay))
        with m.If(~locked):
            m.d.por += timer.eq(0)
        with m.Elif(timer != delay):
            m.d.por += timer.eq(timer + 1)

        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.reset_sync = ResetSynchronizer(~ready, domain="sync")

        m.submodules.core = core = self.core
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        status = getattr(core, "status", None)
        if status is not None:
            for index in range(min(len(status), self.board.leds)):
                m.submodules[f"led{index}"] = led = io.Buffer(
                    "o", platform.request("led", index, dir="-")
                )
                m.d.comb += led.o.eq(status[index])
        return m
