"""Build a comparison array (any arithmetic, no host link) for a board, and report what it costs.

:func:`build_array` runs :func:`palhdl.synth.build.build_top`, the flow of ``palhdl build``
(same Yosys and nextpnr commands and options, same report parsing), on an
:class:`~palhdl.boards.arraytop.ArrayTop`: a bare systolic array of a PAL, INT8 or FP8
provider, fed by LFSRs, its results folded onto the LEDs. The build directory ends up with the
same files as ``palhdl build``'s; ``report.json`` and ``report.md`` hold an
:class:`ArrayBuildReport`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from palhdl.boards.arraytop import ArrayTop
from palhdl.boards.platforms import Board, get_board
from palhdl.hdl.providers import Arithmetic, FP8Arithmetic, IntArithmetic, PALArithmetic
from palhdl.synth.build import build_top, pll_dividers
from palhdl.synth.cache import ResultCache
from palhdl.synth.report import ClockTiming

__all__ = ["ArrayBuildReport", "build_array", "describe_arithmetic"]


def describe_arithmetic(arithmetic: Arithmetic) -> str:
    """Return a one-line description of a provider: operands and accumulator.

    For example ``"int8, 22-bit wrapping accumulator"``, ``"fp8 e4m3, accumulator 32 bits
    (12 fraction), terms below 2**14, wrapping"`` or ``"pal8 (signed table term shared by 2 PEs,
    registered, W = 5), accumulator ..."``; a provider this function does not know is
    described by its class name.
    """
    if isinstance(arithmetic, IntArithmetic):
        return f"int{arithmetic.width}, {arithmetic.acc_bits}-bit wrapping accumulator"
    if isinstance(arithmetic, FP8Arithmetic):
        window = arithmetic.accumulator
        prefix = f"fp8 {arithmetic.variant}"
    elif isinstance(arithmetic, PALArithmetic):
        window = arithmetic.config
        term = arithmetic.term.replace("_", " ") + " term"
        if arithmetic.product_group > 1:
            term += f" shared by {arithmetic.product_group} PEs"
        stages = "registered" if arithmetic.pipelined else "unregistered"
        prefix = f"{window.fmt.name} ({term}, {stages}, W = {window.mantissa_bits})"
    else:
        return type(arithmetic).__name__
    return (
        f"{prefix}, accumulator {window.acc_bits} bits ({window.acc_frac_bits} fraction), "
        f"terms below 2**{window.term_bits}, {'saturating' if window.saturate else 'wrapping'}"
    )


@dataclass
class ArrayBuildReport:
    """What a comparison-array build produced and what it costs.

    The measured attributes (``resources`` to ``failure``) are those of
    :class:`~palhdl.synth.report.BuildReport`, filled by the same flow.

    Attributes
    ----------
    board, board_title : str
        :attr:`Board.name` and :attr:`Board.title`.
    arithmetic : str
        :func:`describe_arithmetic` of the provider.
    rows, cols : int
        Array geometry.
    dsp : bool
        Whether Yosys could map multipliers to DSP blocks.
    k : int
        Beats per K-run of the operand sources.
    requested_mhz, sync_mhz : float
        Requested and actually produced ``sync`` frequency.
    pll : dict or None
        The PLL dividers (``None``: ``sync`` is the oscillator).
    resources : dict
        ``{label: {"used": n, "available": n}}``, as :attr:`BuildReport.resources`.
    clocks : list of ClockTiming
        One per clock nextpnr analysed.
    critical_path : dict or None
        As :attr:`BuildReport.critical_path`.
    stage_seconds : dict
        Wall time of each stage that ran.
    bitstream : str or None
        File name of the bitstream (``None``: none packed).
    failure : str or None
        Why the build failed (``None``: it succeeded).
    measured_at : str or None
        When a report reused from a :class:`~palhdl.synth.cache.ResultCache` was measured
        (``None``: measured by this build).
    """

    board: str
    board_title: str
    arithmetic: str
    rows: int
    cols: int
    dsp: bool
    k: int
    requested_mhz: float
    sync_mhz: float
    pll: dict | None
    resources: dict = field(default_factory=dict)
    clocks: list[ClockTiming] = field(default_factory=list)
    critical_path: dict | None = None
    stage_seconds: dict = field(default_factory=dict)
    bitstream: str | None = None
    failure: str | None = None
    measured_at: str | None = None

    @property
    def fits(self) -> bool:
        """Every resource's use is within the device's capacity (as :attr:`BuildReport.fits`).

        nextpnr can still fail to place or route a design that fits: :attr:`routed` says
        whether it finished.
        """
        return all(row["used"] <= row["available"] for row in self.resources.values())

    @property
    def routed(self) -> bool:
        """Place and route finished (nextpnr analysed the clocks)."""
        return bool(self.clocks)

    @property
    def timing_met(self) -> bool:
        """Nextpnr analysed the clocks and every one reaches its constraint."""
        return bool(self.clocks) and all(clock.met for clock in self.clocks)

    @property
    def fmax_mhz(self) -> float | None:
        """The lowest achieved Fmax over the clocks (``None`` if none was analysed)."""
        return min((clock.fmax_mhz for clock in self.clocks), default=None)

    @property
    def pes(self) -> int:
        """Processing elements of the array."""
        return self.rows * self.cols

    @property
    def peak_macs_per_second(self) -> float:
        """One MAC per PE per cycle at the ``sync`` frequency."""
        return self.pes * self.sync_mhz * 1e6

    @property
    def total_seconds(self) -> float:
        """Wall time of all stages that ran."""
        return sum(self.stage_seconds.values())

    def to_dict(self) -> dict:
        """JSON-ready contents, with the derived figures (``fits``, ``timing_met``, ...)."""
        result = asdict(self)
        result["clocks"] = [{**asdict(clock), "met": clock.met} for clock in self.clocks]
        result.update(
            fits=self.fits,
            routed=self.routed,
            timing_met=self.timing_met,
            fmax_mhz=self.fmax_mhz,
            pes=self.pes,
            peak_macs_per_second=self.peak_macs_per_second,
            total_seconds=self.total_seconds,
        )
        return result

    @classmethod
    def from_dict(cls, saved: dict) -> ArrayBuildReport:
        """Rebuild a report from :meth:`to_dict`'s output (the derived figures are ignored).

        Raises
        ------
        KeyError, TypeError
            If ``saved`` lacks a field or a clock entry is malformed.
        """
        skip = ("clocks", "measured_at")
        fields = {name: saved[name] for name in cls.__dataclass_fields__ if name not in skip}
        clocks = [
            ClockTiming(c["net"], c["fmax_mhz"], c["constraint_mhz"]) for c in saved["clocks"]
        ]
        return cls(**fields, clocks=clocks, measured_at=saved.get("measured_at"))

    def to_markdown(self) -> str:
        """Return a human-readable report (the contents of ``report.md``)."""
        if self.failure is not None:
            status = f"FAILED: {self.failure}"
        elif not self.timing_met:
            status = "finished, but timing was NOT met (allow_timing_fail)"
        else:
            status = "succeeded"
        clock = f"{self.sync_mhz:g} MHz"
        if self.pll is not None:
            dividers = ", ".join(f"{k}={v}" for k, v in self.pll.items())
            clock = f"requested {self.requested_mhz:g} MHz, PLL ({dividers}) makes {clock}"
        lines = [
            f"# palhdl arrays: {self.board_title}",
            "",
            f"Build {status}",
            "",
            f"- Array: {self.rows} x {self.cols} = {self.pes} PEs of {self.arithmetic}",
            f"- Operands from LFSRs, K-runs of {self.k} beats, results XOR-folded onto the "
            "LEDs and UART tx",
            f"- Synthesis: {'DSP blocks allowed' if self.dsp else 'logic only (no DSP blocks)'}",
            f"- Clock: {clock}",
            f"- Peak throughput: {self.pes} MAC/cycle x {self.sync_mhz:g} MHz = "
            f"{self.peak_macs_per_second / 1e9:.3g} GMAC/s",
            "",
            "## Utilisation",
            "",
            "| Resource | Used | Available | Use |",
            "|---|---:|---:|---:|",
        ]
        for label, row in self.resources.items():
            share = row["used"] / row["available"] if row["available"] else 0.0
            lines.append(f"| {label} | {row['used']} | {row['available']} | {share:.0%} |")
        lines += ["", "## Timing", ""]
        if self.clocks:
            lines += ["| Clock net | Fmax (MHz) | Constraint (MHz) | Met |", "|---|---:|---:|---|"]
            for c in self.clocks:
                met = "yes" if c.met else "NO"
                lines.append(f"| `{c.net}` | {c.fmax_mhz:.2f} | {c.constraint_mhz:.2f} | {met} |")
        else:
            lines.append("Place and route did not finish: no timing.")
        if self.critical_path is not None:
            p = self.critical_path
            lines += [
                "",
                f"Critical path: {p['delay_ns']:.2f} ns ({p['logic_ns']:.2f} ns logic, "
                f"{p['routing_ns']:.2f} ns routing, {p['logic_levels']} logic levels), "
                f"from `{p['start']}` to `{p['end']}`.",
            ]
        lines += ["", "## Build time", "", "| Stage | Seconds |", "|---|---:|"]
        lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in self.stage_seconds.items()]
        lines.append(f"| total | {self.total_seconds:.1f} |")
        if self.bitstream is not None:
            lines += ["", f"Bitstream: `{self.bitstream}`"]
        return "\n".join(lines) + "\n"


def build_array(
    board: str | Board,
    *,
    arithmetic: Arithmetic,
    rows: int,
    cols: int,
    clk_freq: float | None = None,
    k: int = 64,
    dsp: bool = True,
    out_dir: str | os.PathLike,
    seed: int = 1,
    allow_timing_fail: bool = False,
    pack: bool = True,
    progress: bool = True,
    cache: ResultCache | None = None,
) -> ArrayBuildReport:
    """Build an :class:`~palhdl.boards.arraytop.ArrayTop` for ``board`` and report its cost.

    Parameters
    ----------
    board : str or Board
        A key of :data:`palhdl.boards.platforms.BOARDS`, or a :class:`Board`.
    arithmetic : Arithmetic
        The PEs' arithmetic, for example ``IntArithmetic(width=8, acc_bits=22)``.
    rows, cols : int
        Array geometry, 1..64 each.
    clk_freq : float, optional
        ``sync`` frequency in Hz; default :attr:`Board.clk_freq`.
    k : int
        Beats per K-run of the operand sources.
    dsp : bool
        Let Yosys map multipliers to DSP blocks (default ``True``, as ``palhdl build``);
        ``False`` builds with logic only (``synth_ice40`` without ``-dsp``, ``synth_ecp5
        -nodsp``).
    out_dir : path
        Build directory (created).
    seed : int
        nextpnr placement seed.
    allow_timing_fail : bool
        Return (and pack) even if the clock misses its constraint.
    pack : bool
        Pack a bitstream (``False``: stop after place and route).
    progress : bool
        Print the stage and elapsed time on stderr.
    cache : ResultCache, optional
        Reuse the report of an identical earlier build, and keep this one's
        (:func:`palhdl.synth.build.build_top`); needs ``pack=False``.

    Returns
    -------
    ArrayBuildReport
        Also written to ``out_dir/report.json`` and ``out_dir/report.md``.

    Raises
    ------
    TypeError, ValueError
        For bad parameters (including a frequency the PLL cannot make), before any tool runs.
    BuildError
        As :func:`palhdl.synth.build.build`, with the :class:`ArrayBuildReport` attached.
    """
    board = board if isinstance(board, Board) else get_board(board)
    clk_freq = board.clk_freq if clk_freq is None else clk_freq
    parameters = {"arithmetic": arithmetic, "rows": rows, "cols": cols, "k": k}
    _, (arithmetic, rows, cols, k, _), pll = ArrayTop.check_parameters(
        board=board, clk_freq=clk_freq, **parameters
    )
    report = ArrayBuildReport(
        board=board.name,
        board_title=board.title,
        arithmetic=describe_arithmetic(arithmetic),
        rows=rows,
        cols=cols,
        dsp=dsp,
        k=k,
        requested_mhz=float(clk_freq) / 1e6,
        sync_mhz=(board.osc_freq if pll is None else pll.f_out) / 1e6,
        pll=None if pll is None else pll_dividers(pll),
    )
    return build_top(
        lambda: ArrayTop(board=board, clk_freq=clk_freq, **parameters),
        board,
        report,
        out_dir=out_dir,
        dsp=dsp,
        seed=seed,
        allow_timing_fail=allow_timing_fail,
        pack=pack,
        progress=progress,
        title="palhdl arrays",
        cache=cache,
    )
