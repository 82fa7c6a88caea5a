"""``palhdl arrays``: build one comparison array, or search for the largest and tabulate it.

The command line of the comparison-array study (:mod:`palhdl.studies.arrays`): with ``--rows``
and ``--cols`` it builds that one :class:`~palhdl.boards.arraytop.ArrayTop` to a bitstream
(:func:`palhdl.synth.arraybuild.build_array`) and prints its report; otherwise it runs
:func:`~palhdl.studies.arrays.search` for one board and variant and prints :func:`render`'s
Markdown. ``--json PATH`` adds the search to ``PATH``, and ``--from-json`` renders the searches
saved there again, all boards and variants in one table, with :func:`mixed_estimate`'s
estimate of a mixed INT8 array where both INT8 searches of a board are present. A search whose
board, variant and clock ``PATH`` already holds resumes from those builds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from palhdl.boards.platforms import BOARDS, Board, get_board
from palhdl.hdl.systolic import MAX_DIM
from palhdl.studies.arguments import integer, positive_float
from palhdl.studies.arrays import (
    VARIANTS,
    SearchResult,
    make_arithmetic,
    outcome,
    resource_use,
    search,
)
from palhdl.synth.arraybuild import ArrayBuildReport, build_array
from palhdl.synth.build import BuildError
from palhdl.validate import check_choice

__all__ = ["add_arguments", "mixed_estimate", "render", "run"]

#: Unit of the logic resource per family, for the tables.
_LOGIC_UNIT = {"ice40": "LC", "ecp5": "LUT4"}


def mixed_estimate(dsp: SearchResult, lut: SearchResult) -> dict | None:
    """Estimate an INT8 array with DSP PEs plus LUT PEs in the remaining fabric.

    Derived from the two measured builds alone: the best DSP array (``P_d`` PEs, ``L_d`` of
    the logic) and the best logic-only array (``P_l`` PEs, ``L_l``). A logic-only PE costs at
    most ``L_l / P_l`` (the array's overhead included); the fabric the DSP array leaves up to
    the logic-only array's fill, ``L_l - L_d``, holds ``floor((L_l - L_d) / (L_l / P_l))``
    more PEs. Both would run at the lower of the two clocks.

    Returns
    -------
    dict or None
        ``pes``, ``dsp_pes``, ``lut_pes``, ``clk_mhz`` and ``gmacs``; ``None`` unless both
        searches found an array.
    """
    dsp_best, lut_best = dsp.best_report, lut.best_report
    if dsp_best is None or lut_best is None:
        return None
    dsp_logic, lut_logic = resource_use(dsp_best, "logic")[0], resource_use(lut_best, "logic")[0]
    extra = max(0, math.floor((lut_logic - dsp_logic) * lut_best.pes / lut_logic))
    clk_mhz = min(dsp_best.sync_mhz, lut_best.sync_mhz)
    pes = dsp_best.pes + extra
    return {
        "pes": pes,
        "dsp_pes": dsp_best.pes,
        "lut_pes": extra,
        "clk_mhz": clk_mhz,
        "gmacs": pes * clk_mhz / 1e3,
    }


def _share(used: tuple[int, int] | None, unit: str = "") -> str:
    if used is None:
        return "-"
    text = f"{used[0]} / {used[1]}{' ' + unit if unit else ''}"
    return f"{text} ({used[0] / used[1]:.0%})" if unit else text


def _describe_failure(report: ArrayBuildReport, outcome: str) -> str:
    if outcome == "ok":
        return "fits, timing met"
    if outcome == "timing":
        return f"timing not met at {report.sync_mhz:g} MHz"
    over = [
        f"{label} {row['used']}/{row['available']}"
        for label, row in report.resources.items()
        if row["used"] > row["available"]
    ]
    return "does not fit: " + ", ".join(over) if over else "could not be placed and routed"


def render(results: Sequence[SearchResult]) -> str:
    """Render the searches as Markdown: the best arrays, the mixed INT8 estimates, every build.

    Peak GMAC/s is PEs × the clock the build met; GMAC/s per 1000 LUT divides it by the
    logic used (logic cells on the iCE40, LUT4 sites on the ECP5); GMAC/s at Fmax is PEs ×
    nextpnr's Fmax of the same placed and routed design, for arithmetics built at different
    clocks. The searches are listed by board, then variant, in the order of
    :data:`~palhdl.boards.platforms.BOARDS` and :data:`~palhdl.studies.arrays.VARIANTS`.
    """
    results = sorted(
        results, key=lambda r: (list(BOARDS).index(r.board), list(VARIANTS).index(r.variant))
    )
    lines = [
        "| Board | Arithmetic | Array | PEs | Logic | DSP | BRAM | Fmax (MHz) | Clock (MHz) "
        "| Peak GMAC/s | GMAC/s per 1000 LUT | GMAC/s at Fmax |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        best = result.best_report
        title = f"{BOARDS[result.board].title.split(' (')[0]} | {result.variant}"
        if best is None:
            lines.append(f"| {title} | none met {result.clk_mhz:g} MHz |" + " - |" * 9)
            continue
        logic = resource_use(best, "logic")
        gmacs = best.peak_macs_per_second / 1e9
        unit = _LOGIC_UNIT[BOARDS[best.board].family]
        lines.append(
            f"| {title} | {best.rows} × {best.cols} | {best.pes} | {_share(logic, unit)} "
            f"| {_share(resource_use(best, 'dsp'))} | {_share(resource_use(best, 'bram'))} "
            f"| {best.fmax_mhz:.2f} | {best.sync_mhz:g} | {gmacs:.3g} "
            f"| {gmacs / (logic[0] / 1000):.3g} | {best.pes * best.fmax_mhz / 1e3:.3g} |"
        )
    by_key = {(result.board, result.variant): result for result in results}
    mixed_lines = []
    for board in dict.fromkeys(result.board for result in results):
        if (board, "int8") in by_key and (board, "int8-lut") in by_key:
            mixed = mixed_estimate(by_key[board, "int8"], by_key[board, "int8-lut"])
            if mixed is not None:
                mixed_lines.append(
                    f"- {BOARDS[board].title}: **estimate**, not built: {mixed['dsp_pes']} DSP "
                    f"PEs + {mixed['lut_pes']} LUT PEs = {mixed['pes']} PEs at "
                    f"{mixed['clk_mhz']:g} MHz = {mixed['gmacs']:.3g} GMAC/s."
                )
    if mixed_lines:
        lines += [
            "",
            "Mixed INT8 arrays (DSP PEs plus logic-only PEs in the fabric the DSP array leaves, "
            "up to the logic-only array's fill; `palhdl.studies.arrays_report.mixed_estimate`):",
            "",
            *mixed_lines,
        ]
    lines += [
        "",
        "Every place-and-route run of the searches:",
        "",
        "| Board | Arithmetic | Array | Result | Logic | Fmax (MHz) | Build time (s) |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for result in results:
        for report in result.builds:
            unit = _LOGIC_UNIT[BOARDS[report.board].family]
            fmax = "-" if report.fmax_mhz is None else f"{report.fmax_mhz:.2f}"
            lines.append(
                f"| {BOARDS[report.board].title.split(' (')[0]} | {result.variant} "
                f"| {report.rows} × {report.cols} "
                f"| {_describe_failure(report, outcome(report))} "
                f"| {_share(resource_use(report, 'logic'), unit)} | {fmax} "
                f"| {report.total_seconds:.0f} |"
            )
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``palhdl arrays`` to ``parser``."""
    parser.add_argument("--board", help=f"{' or '.join(BOARDS)}")
    parser.add_argument(
        "--arithmetic",
        help="; ".join(f"{name}: {description}" for name, (_, _, description) in VARIANTS.items()),
    )
    parser.add_argument(
        "--rows", type=integer("rows", 1, MAX_DIM), help="build this one array (with --cols)"
    )
    parser.add_argument(
        "--cols", type=integer("cols", 1, MAX_DIM), help="build this one array (with --rows)"
    )
    parser.add_argument(
        "--freq", type=positive_float("freq"), metavar="MHZ", help="clock (default: the board's)"
    )
    parser.add_argument(
        "--out", metavar="DIR", default="build-arrays", help="build directory (build-arrays)"
    )
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    parser.add_argument(
        "--allow-timing-fail",
        action="store_true",
        help="one array: pack a bitstream even if timing fails",
    )
    parser.add_argument(
        "--max-utilisation",
        type=positive_float("max_utilisation"),
        default=0.95,
        help="search: largest estimated share of the LUTs/logic cells and flip-flops (0.95)",
    )
    parser.add_argument(
        "--max-builds",
        type=integer("max_builds", 1),
        default=4,
        help="search: place-and-route runs at most (4)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="search: add the result to PATH, replacing an earlier one of the board and variant; "
        "one at the same clock is resumed (its builds count as made)",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="print the table of the searches saved in these files instead of building",
    )


def _load(paths: Sequence[Path]) -> list[SearchResult]:
    """Load the searches ``--json`` saved in ``paths``; a later one replaces an earlier one."""
    merged: dict[tuple[str, str], SearchResult] = {}
    for path in paths:
        try:
            saved = json.loads(path.read_text())
            results = [SearchResult.from_dict(entry) for entry in saved["searches"]]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            message = f"{str(path)!r} is not a --json file of palhdl arrays ({error!r})"
            raise ValueError(message) from None
        merged.update({(result.board, result.variant): result for result in results})
    return list(merged.values())


def _previous(path: Path | None, board: str, variant: str, clk_mhz: float) -> SearchResult | None:
    """Return the search of ``board``, ``variant`` and ``clk_mhz`` in ``path`` to resume, if any."""
    if path is None or not path.exists():
        return None
    for result in _load([path]):
        if (result.board, result.variant, result.clk_mhz) == (board, variant, clk_mhz):
            return result
    return None


def _save(path: Path, result: SearchResult) -> None:
    """Add ``result`` to the ``--json`` file ``path`` (created if missing)."""
    results = _load([path]) if path.exists() else []
    results = [r for r in results if (r.board, r.variant) != (result.board, result.variant)]
    searches = [r.to_dict() for r in [*results, result]]
    path.write_text(json.dumps({"searches": searches}, indent=1) + "\n")


def _one_array(args: argparse.Namespace, board: Board, clk_freq: float) -> int:
    name, dsp, _ = VARIANTS[args.arithmetic]
    try:
        report = build_array(
            board,
            arithmetic=make_arithmetic(name, board),
            rows=args.rows,
            cols=args.cols,
            clk_freq=clk_freq,
            dsp=dsp,
            out_dir=args.out,
            seed=args.seed,
            allow_timing_fail=args.allow_timing_fail,
        )
    except BuildError as error:
        print(f"palhdl arrays: {error}", file=sys.stderr)
        return 1
    print(report.to_markdown())
    return 0


def _check_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` naming the option for a combination the command cannot run."""
    if args.from_json:
        return
    for option in ("board", "arithmetic"):
        if getattr(args, option) is None:
            raise ValueError(f"--{option} is required (unless --from-json)")
    check_choice("--arithmetic", args.arithmetic, VARIANTS)
    if (args.rows is None) != (args.cols is None):
        raise ValueError("--rows and --cols go together")
    if args.json is not None and not args.json.parent.is_dir():
        raise ValueError(f"--json: the directory of {str(args.json)!r} does not exist")


def run(args: argparse.Namespace) -> int:
    """Run ``palhdl arrays`` with the options of :func:`add_arguments`.

    Returns
    -------
    int
        0 on success; 1 if the one array's build failed, no searched array met timing or a
        file could not be read or written; 2 after a one-line ``palhdl arrays: error: ...``
        naming the option at fault.
    """
    try:
        _check_arguments(args)
        if args.from_json:
            print(render(_load(args.from_json)), end="")
            return 0
        board = get_board(args.board)
        clk_freq = board.clk_freq if args.freq is None else args.freq * 1e6
        if args.rows is not None:
            return _one_array(args, board, clk_freq)
        result = search(
            args.arithmetic,
            board,
            clk_freq=clk_freq,
            out_dir=args.out,
            max_utilisation=args.max_utilisation,
            max_builds=args.max_builds,
            seed=args.seed,
            previous=_previous(args.json, board.name, args.arithmetic, clk_freq / 1e6),
        )
    except (TypeError, ValueError) as error:
        print(f"palhdl arrays: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"palhdl arrays: error: {error}", file=sys.stderr)
        return 1
    print(render([result]), end="")
    if args.json is not None:
        _save(args.json, result)
    return 0 if result.best is not None else 1
