"""Comparison arrays: the largest PAL, INT8 and FP8 systolic arrays a board holds, and their speed.

Each *variant* is an arithmetic provider and a DSP policy (:data:`VARIANTS`); its array is a
bare :class:`~palhdl.boards.arraytop.ArrayTop` (LFSR operands, results folded onto the LEDs),
built by :func:`palhdl.synth.arraybuild.build_array` through the flow of ``palhdl build``.
:func:`search` looks, frugally, for the largest square-ish array (``rows <= cols <= 2 * rows``,
:func:`shapes`) that places, routes and meets timing at a requested clock:

1. :func:`estimate_variant` synthesizes the core at 2 x 2 and 4 x 4 with Yosys only and fits
   ``fixed + per_pe * PEs`` to each resource (:class:`Estimate`);
2. the search places and routes the largest shape whose estimate keeps the fabric (LUTs,
   flip-flops) within ``max_utilisation`` and the DSP and block RAMs within the device, then
   rescales the estimate by what nextpnr counted and builds the largest plausible shape
   between the largest success and the smallest failure so far: at most ``max_builds``
   place-and-route runs, one at a time. A search can resume from the builds of an earlier one
   (``previous``), which count as made.

The command line and the tables are in :mod:`palhdl.studies.arrays_report` (``palhdl arrays``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from palhdl.boards.arraytop import ArrayCore
from palhdl.boards.platforms import BOARDS, Board, get_board
from palhdl.hdl.providers import Arithmetic, FP8Arithmetic, IntArithmetic
from palhdl.hdl.systolic import MAX_DIM
from palhdl.studies.cost import PAL8_COST
from palhdl.synth.arraybuild import ArrayBuildReport, build_array
from palhdl.synth.build import BuildError
from palhdl.synth.yosys import synth_stats
from palhdl.validate import check_choice, check_int

__all__ = [
    "CAPACITY",
    "FABRIC",
    "INT8_ACC_BITS",
    "RESOURCE_LABELS",
    "VARIANTS",
    "Estimate",
    "SearchResult",
    "build_variant",
    "estimate_variant",
    "make_arithmetic",
    "outcome",
    "resource_use",
    "search",
    "shapes",
]

#: Accumulator of the INT8 arrays: exact for K <= 127 (|a * b| <= 2**14), sized like the PAL
#: boards' accumulators for the host link's K <= k_max = 64.
INT8_ACC_BITS = 22

#: The variants: name -> (arithmetic, DSP blocks allowed, description). FP8 builds with logic
#: only by default: on the ECP5 Yosys would spend a whole MULT18X18D on each PE's 4 x 4-bit
#: mantissa product (capping the array at 156 PEs); on the iCE40 it leaves a product that
#: narrow in logic either way.
VARIANTS: dict[str, tuple[str, bool, str]] = {
    "pal8": ("pal8", True, "PAL pal8, the board's PE and default accumulator"),
    "int8": ("int8", True, "INT8, multipliers in DSP blocks"),
    "int8-lut": ("int8", False, "INT8, logic only"),
    "fp8": ("fp8", False, "FP8 E4M3, logic only"),
    "fp8-dsp": ("fp8", True, "FP8 E4M3, mantissa products in DSP blocks"),
}

#: Resources of the search per device family: key -> the label of
#: :attr:`~palhdl.synth.report.BuildReport.resources`.
RESOURCE_LABELS: dict[str, dict[str, str]] = {
    "ice40": {
        "logic": "Logic cells (LUT4+FF+carry)",
        "dsp": "DSP (SB_MAC16)",
        "bram": "BRAM (4 kbit)",
    },
    "ecp5": {
        "logic": "LUT4 (incl. carry halves)",
        "ff": "FF",
        "dsp": "DSP (MULT18X18D)",
        "bram": "BRAM (DP16KD, 18 kbit)",
    },
}

#: Capacities per family (the boards' FPGAs, docs/boards.md), for the first estimate; the
#: search uses nextpnr's numbers once it has them.
CAPACITY: dict[str, dict[str, int]] = {
    "ice40": {"logic": 5280, "dsp": 8, "bram": 30},
    "ecp5": {"logic": 83640, "ff": 83640, "dsp": 156, "bram": 208},
}

#: Resources ``max_utilisation`` applies to (routing gets hard as they fill); the hard blocks
#: may be used to the last one.
FABRIC = ("logic", "ff")

#: Yosys' counts (:func:`~palhdl.synth.yosys.synth_stats`) that estimate each resource. iCE40
#: logic cells: a LUT4 and the flip-flop it drives share a cell; about 0.6 of the flip-flops
#: take a cell of their own (rough; the search rescales by nextpnr's count).
_YOSYS_COUNTS: dict[str, dict[str, Callable[[dict], float]]] = {
    "ice40": {
        "logic": lambda s: s["LUT4"] + 0.6 * s["DFF"],
        "dsp": lambda s: s["DSP"],
        "bram": lambda s: s["BRAM"],
    },
    "ecp5": {
        "logic": lambda s: s["LUT4"] + 2 * s["CCU2C"],
        "ff": lambda s: s["DFF"],
        "dsp": lambda s: s["DSP"],
        "bram": lambda s: s["EBR"],
    },
}

#: Array sizes the estimate synthesizes.
_ESTIMATE_SIZES = (2, 4)


def make_arithmetic(name: str, board: Board) -> Arithmetic:
    """Return the provider of arithmetic ``name`` (``"pal8"``, ``"int8"``, ``"fp8"``).

    pal8: ``board.arithmetic(board.default_config())`` (the board's block-RAM PE); int8:
    ``IntArithmetic(width=8, acc_bits=INT8_ACC_BITS)``; fp8: E4M3 in the cost study's window
    (:data:`palhdl.studies.cost.PAL8_COST`'s 32-bit wrapping accumulator, 12 fraction bits,
    terms below ``2**14``).
    """
    name = check_choice("arithmetic", name, ("pal8", "int8", "fp8"))
    if name == "pal8":
        return board.arithmetic(board.default_config())
    if name == "int8":
        return IntArithmetic(width=8, acc_bits=INT8_ACC_BITS)
    return FP8Arithmetic(
        variant="e4m3",
        acc_bits=PAL8_COST.acc_bits,
        acc_frac_bits=PAL8_COST.acc_frac_bits,
        term_bits=PAL8_COST.term_bits,
        saturate=False,
    )


def shapes(max_pes: int = MAX_DIM * MAX_DIM) -> list[tuple[int, int]]:
    """Return the square-ish shapes ``(rows, cols)``, ``rows <= cols <= 2 * rows``, by size.

    Sorted by PEs, then squarest first; at most ``max_pes`` PEs and :data:`MAX_DIM` columns.
    """
    found = [
        (rows, cols)
        for rows in range(1, MAX_DIM + 1)
        for cols in range(rows, min(2 * rows, MAX_DIM) + 1)
        if rows * cols <= max_pes
    ]
    return sorted(found, key=lambda shape: (shape[0] * shape[1], shape[1] - shape[0]))


@dataclass
class Estimate:
    """Resources of an array as ``(fixed + per_pe * PEs) * scale``, per resource key.

    ``scale`` starts at 1 (Yosys' counts) and :meth:`calibrate` sets it from nextpnr's.
    """

    family: str
    fixed: dict[str, float]
    per_pe: dict[str, float]
    scale: dict[str, float] = field(default_factory=dict)
    capacity: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        """Fill the capacities ``capacity`` does not give from :data:`CAPACITY`."""
        self.capacity = {**CAPACITY[self.family], **self.capacity}

    def predict(self, pes: int) -> dict[str, float]:
        """Estimated use of each resource by an array of ``pes`` PEs."""
        return {
            key: (self.fixed[key] + self.per_pe[key] * pes) * self.scale.get(key, 1.0)
            for key in self.fixed
        }

    def plausible(self, pes: int, max_utilisation: float) -> bool:
        """Say whether :data:`FABRIC` stays within ``max_utilisation``, the rest within 100 %."""
        for key, used in self.predict(pes).items():
            limit = max_utilisation if key in FABRIC else 1.0
            if used > limit * self.capacity[key] + 1e-9:
                return False
        return True

    def calibrate(self, report: ArrayBuildReport) -> None:
        """Rescale by nextpnr's counts of ``report`` and take its capacities."""
        raw = Estimate(self.family, self.fixed, self.per_pe).predict(report.pes)
        for key, label in RESOURCE_LABELS[self.family].items():
            row = report.resources.get(label)
            if row is None:
                continue
            self.capacity[key] = row["available"]
            if raw[key] > 0 and row["used"] > 0:
                self.scale[key] = row["used"] / raw[key]


def estimate_variant(variant: str, board: Board) -> Estimate:
    """Estimate the resources of ``variant``'s arrays on ``board`` with Yosys alone.

    The :class:`~palhdl.boards.arraytop.ArrayCore` is synthesized at 2 x 2 and 4 x 4; each
    resource's estimate is the line through its two counts.
    """
    name, dsp, _ = VARIANTS[check_choice("variant", variant, VARIANTS)]
    counts = _YOSYS_COUNTS[board.family]
    points = []
    for n in _ESTIMATE_SIZES:
        core = ArrayCore(
            arithmetic=make_arithmetic(name, board), rows=n, cols=n, outputs=board.leds
        )
        stats = synth_stats(core, target=board.family, dsp=dsp)
        points.append((n * n, {key: count(stats) for key, count in counts.items()}))
    (p0, c0), (p1, c1) = points
    per_pe = {key: (c1[key] - c0[key]) / (p1 - p0) for key in counts}
    fixed = {key: c0[key] - per_pe[key] * p0 for key in counts}
    return Estimate(board.family, fixed, per_pe)


@dataclass
class SearchResult:
    """The builds a search of one variant on one board made, in order.

    ``best`` indexes the largest build that routed and met timing (``None``: none did).
    """

    board: str
    variant: str
    clk_mhz: float
    max_utilisation: float
    builds: list[ArrayBuildReport] = field(default_factory=list)
    best: int | None = None

    @property
    def best_report(self) -> ArrayBuildReport | None:
        """The largest build that routed and met timing."""
        return None if self.best is None else self.builds[self.best]

    def to_dict(self) -> dict:
        """JSON-ready contents."""
        return {
            "board": self.board,
            "variant": self.variant,
            "clk_mhz": self.clk_mhz,
            "max_utilisation": self.max_utilisation,
            "builds": [report.to_dict() for report in self.builds],
            "best": self.best,
        }

    @classmethod
    def from_dict(cls, saved: dict) -> SearchResult:
        """Rebuild a result from :meth:`to_dict`'s output."""
        builds = [ArrayBuildReport.from_dict(report) for report in saved["builds"]]
        fields = ("board", "variant", "clk_mhz", "max_utilisation", "best")
        return cls(**{name: saved[name] for name in fields}, builds=builds)


def outcome(report: ArrayBuildReport) -> str:
    """Say how a build ended: ``"ok"``, ``"timing"`` or ``"no fit"``."""
    if report.timing_met:
        return "ok"
    return "timing" if report.routed else "no fit"


def _next_shape(
    tried: set[tuple[int, int]],
    estimate: Estimate,
    *,
    max_utilisation: float,
    above: float,
    below: float,
) -> tuple[int, int] | None:
    """Return the shape to build next, or ``None`` to stop.

    The largest untried shape of :func:`shapes` with ``above < PEs < below`` (the largest
    success and the smallest failure so far) that the estimate finds plausible.
    """
    candidates = [s for s in shapes() if above < _pes(s) < below and s not in tried]
    plausible = [s for s in candidates if estimate.plausible(_pes(s), max_utilisation)]
    return plausible[-1] if plausible else None


def _pes(shape: tuple[int, int]) -> int:
    return shape[0] * shape[1]


def search(
    variant: str,
    board: str | Board,
    *,
    clk_freq: float,
    out_dir: str | Path,
    max_utilisation: float = 0.95,
    max_builds: int = 4,
    seed: int = 1,
    estimate: Estimate | None = None,
    previous: SearchResult | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> SearchResult:
    """Find the largest square-ish array of ``variant`` that routes and meets ``clk_freq``.

    Parameters
    ----------
    variant : str
        A key of :data:`VARIANTS`.
    board : str or Board
        The board.
    clk_freq : float
        The clock to meet, in Hz (one the board's PLL makes, see :meth:`Board.pll`).
    out_dir : path
        Each build goes to ``out_dir/<board>-<variant>-<rows>x<cols>``.
    max_utilisation : float
        Largest estimated share of the LUTs/logic cells and flip-flops a build may use, in
        (0, 1]; DSP and block RAM may be used up.
    max_builds : int
        Place-and-route runs at most.
    seed : int
        nextpnr placement seed.
    estimate : Estimate, optional
        Start from this estimate instead of :func:`estimate_variant` (which runs Yosys).
    previous : SearchResult, optional
        An earlier search of the same board, variant and clock to resume: its builds are
        taken as made (they calibrate the estimate and bound the search, and stay in the
        result); ``max_builds`` counts the new ones.
    progress : bool
        Show each build's stages on stderr.
    log : callable
        Called with one line per build (default: print to stderr).

    Returns
    -------
    SearchResult
        Every build; ``best`` the largest that met timing.

    Raises
    ------
    TypeError, ValueError
        For bad parameters (``previous`` of another board, variant or clock), before any tool
        runs.
    """
    board = board if isinstance(board, Board) else get_board(board)
    variant = check_choice("variant", variant, VARIANTS)
    board.pll(clk_freq)
    if not 0 < max_utilisation <= 1:
        raise ValueError(f"max_utilisation must be in (0, 1], not {max_utilisation}")
    max_builds = check_int("max_builds", max_builds, 1)
    result = SearchResult(board.name, variant, clk_freq / 1e6, max_utilisation)
    if previous is not None:
        key = (previous.board, previous.variant, previous.clk_mhz)
        if key != (result.board, result.variant, result.clk_mhz):
            raise ValueError(
                f"previous is a search of {key}, not of {(board.name, variant, result.clk_mhz)}"
            )
    estimate = estimate_variant(variant, board) if estimate is None else estimate
    tried: set[tuple[int, int]] = set()
    bounds = {"above": 0, "below": math.inf}
    for report in [] if previous is None else previous.builds:
        _record(result, report, estimate, tried, bounds)
    new_builds = 0
    while new_builds < max_builds:
        shape = _next_shape(tried, estimate, max_utilisation=max_utilisation, **bounds)
        if shape is None:
            break
        report = build_variant(
            variant, board, shape, clk_freq, out_dir=Path(out_dir), seed=seed, progress=progress
        )
        new_builds += 1
        log(_build_line(report, variant, _record(result, report, estimate, tried, bounds)))
    return result


def _record(
    result: SearchResult,
    report: ArrayBuildReport,
    estimate: Estimate,
    tried: set[tuple[int, int]],
    bounds: dict[str, float],
) -> str:
    """Add a build to the search: result, estimate and bounds; return its :func:`outcome`."""
    result.builds.append(report)
    tried.add((report.rows, report.cols))
    estimate.calibrate(report)
    ended = outcome(report)
    if ended == "ok" and report.pes > bounds["above"]:
        result.best = len(result.builds) - 1
        bounds["above"] = report.pes
    elif ended != "ok":
        bounds["below"] = min(bounds["below"], report.pes)
    return ended


def build_variant(
    variant: str, board: Board, shape: tuple[int, int], clk_freq: float, *, out_dir: Path, **kw
) -> ArrayBuildReport:
    """Place and route one array of ``variant`` (no bitstream); a failed build's report too.

    ``kw`` goes to :func:`~palhdl.synth.arraybuild.build_array` (``seed``, ``progress``,
    ``cache``).
    """
    name, dsp, _ = VARIANTS[variant]
    rows, cols = shape
    try:
        return build_array(
            board,
            arithmetic=make_arithmetic(name, board),
            rows=rows,
            cols=cols,
            clk_freq=clk_freq,
            dsp=dsp,
            out_dir=out_dir / f"{board.name}-{variant}-{rows}x{cols}",
            allow_timing_fail=True,
            pack=False,
            **kw,
        )
    except BuildError as error:
        if error.report is None:
            raise
        return error.report


def resource_use(report: ArrayBuildReport, key: str) -> tuple[int, int] | None:
    """Return ``(used, available)`` of resource ``key`` in ``report`` (``None``: not counted)."""
    label = RESOURCE_LABELS[BOARDS[report.board].family].get(key)
    row = report.resources.get(label)
    return None if row is None else (row["used"], row["available"])


def _build_line(report: ArrayBuildReport, variant: str, ended: str) -> str:
    """One line on a finished build of a search, for the log."""
    logic = resource_use(report, "logic")
    share = "" if logic is None else f", logic {logic[0]}/{logic[1]}"
    fmax = "" if report.fmax_mhz is None else f", Fmax {report.fmax_mhz:.2f} MHz"
    return (
        f"{report.board} {variant} {report.rows}x{report.cols}: {ended}{share}{fmax} "
        f"({report.total_seconds:.0f} s)"
    )
