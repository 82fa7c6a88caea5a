"""``palhdl bench`` section ``arrays``: the largest PAL, INT8 and FP8 arrays each board holds.

Each array is a bare :class:`~palhdl.boards.arraytop.ArrayTop` (LFSR operands, results folded
onto the pins), placed and routed by the flow of ``palhdl build``
(:func:`palhdl.studies.arrays.build_variant`). Searching for the largest array that fits and
meets timing takes many builds (``palhdl arrays`` does it); the benchmark rebuilds the largest
shape those searches found (:data:`LARGEST`, the searches of ``docs/boards.md``) at the clock
they chose, so its numbers are today's, and on the boards whose builds take a minute or two
(:data:`CONFIRMED_FAMILIES`) also the next larger shape, to show it no longer fits or meets
timing. A result ``"larger_fits": true`` means :data:`LARGEST` is out of date.
"""

from __future__ import annotations

from palhdl.boards.platforms import get_board
from palhdl.studies.arrays import VARIANTS, build_variant, resource_use, shapes
from palhdl.studies.bench.options import BenchOptions
from palhdl.synth.arraybuild import ArrayBuildReport

__all__ = ["ARITHMETICS", "CONFIRMED_FAMILIES", "LARGEST", "QUICK", "best_arrays", "measure"]

#: Per board and variant (:data:`palhdl.studies.arrays.VARIANTS`): ``(rows, cols, clock Hz)``
#: of the largest array the searches of ``docs/boards.md`` found to fit and meet timing.
LARGEST: dict[str, dict[str, tuple[int, int, float]]] = {
    "icebreaker": {
        "pal8": (5, 6, 39.75e6),
        "int8": (2, 4, 39.75e6),
        "int8-lut": (3, 6, 19.875e6),
        "fp8": (3, 6, 12e6),
    },
    "ulx3s-85f": {
        "pal8": (16, 26, 60e6),
        "int8": (12, 13, 35e6),
        "int8-lut": (14, 21, 40e6),
        "fp8": (15, 18, 30e6),
    },
}

#: The arrays of a quick run: 2 x 2 of each arithmetic on the iCEBreaker.
QUICK: dict[str, dict[str, tuple[int, int, float]]] = {
    "icebreaker": {"pal8": (2, 2, 39.75e6), "int8": (2, 2, 39.75e6), "fp8": (2, 2, 12e6)},
}

#: Families whose next larger array is built too (minutes per build, not tens of minutes).
CONFIRMED_FAMILIES = ("ice40",)

#: The arithmetics compared, and the variants that implement each.
ARITHMETICS = {"pal8": ("pal8",), "int8": ("int8", "int8-lut"), "fp8": ("fp8",)}


def _next_shape(rows: int, cols: int) -> tuple[int, int]:
    """Return the shape after ``rows x cols`` in the searches' order (more PEs)."""
    order = shapes()
    larger = [shape for shape in order if shape[0] * shape[1] > rows * cols]
    return larger[0]


def _summary(report: ArrayBuildReport, variant: str) -> dict:
    logic = resource_use(report, "logic")
    dsp = resource_use(report, "dsp")
    bram = resource_use(report, "bram")
    gmacs = report.pes * report.sync_mhz / 1e3
    ok = report.failure is None and report.fits and report.timing_met
    return {
        "variant": variant,
        "description": VARIANTS[variant][2],
        "rows": report.rows,
        "cols": report.cols,
        "pes": report.pes,
        "requested_mhz": report.requested_mhz,
        "sync_mhz": report.sync_mhz,
        "fmax_mhz": report.fmax_mhz,
        "fits": report.fits,
        "routed": report.routed,
        "timing_met": report.timing_met,
        "ok": ok,
        "logic": list(logic) if logic else None,
        "dsp": list(dsp) if dsp else None,
        "bram": list(bram) if bram else None,
        "gmacs": round(gmacs, 4) if ok else None,
        "gmacs_at_fmax": (
            round(report.pes * report.fmax_mhz / 1e3, 4) if ok and report.fmax_mhz else None
        ),
        "gmacs_per_klut": round(gmacs / (logic[0] / 1e3), 4) if ok and logic else None,
        "seconds": round(report.total_seconds, 1),
        "measured_at": report.measured_at,
        "failure": report.failure,
    }


def measure(options: BenchOptions) -> dict:
    """Build the arrays of :data:`LARGEST` (quick: :data:`QUICK`); return the section's data.

    Returns
    -------
    dict
        ``"boards"``: per board, ``"title"``, ``"builds"`` (one summary per build: shape,
        clocks, Fmax, resources as ``[used, available]``, GMAC/s at the clock and at Fmax,
        GMAC/s per 1000 logic cells or LUT4s, build seconds, ``measured_at`` if reused from
        the cache, ``failure``), ``"next"`` (the next larger shapes' summaries, for
        :data:`CONFIRMED_FAMILIES`) and ``"best"`` (:func:`best_arrays`).
    """
    table = QUICK if options.quick else LARGEST
    boards = {}
    for board_name in (b for b in options.boards if b in table):
        board = get_board(board_name)
        builds, larger = [], []
        for variant, (rows, cols, clock) in table[board_name].items():
            options.progress(f"arrays: {board_name} {variant} {rows}x{cols} at {clock / 1e6:g} MHz")
            report = build_variant(
                variant,
                board,
                (rows, cols),
                clock,
                out_dir=options.work_dir / "arrays",
                progress=False,
                cache=options.cache,
            )
            builds.append(_summary(report, variant))
            if options.quick or board.family not in CONFIRMED_FAMILIES:
                continue
            shape = _next_shape(rows, cols)
            options.progress(f"arrays: {board_name} {variant} {shape[0]}x{shape[1]} (larger)")
            report = build_variant(
                variant,
                board,
                shape,
                clock,
                out_dir=options.work_dir / "arrays",
                progress=False,
                cache=options.cache,
            )
            larger.append(
                {**_summary(report, variant), "larger_fits": _summary(report, variant)["ok"]}
            )
        boards[board_name] = {
            "title": board.title,
            "family": board.family,
            "builds": builds,
            "next": larger,
        }
        boards[board_name]["best"] = best_arrays(builds)
    return {"boards": boards, "confirmed_families": list(CONFIRMED_FAMILIES)}


def best_arrays(builds: list[dict]) -> dict:
    """Return, per arithmetic of :data:`ARITHMETICS`, the build with the most GMAC/s.

    Only builds that fit and meet timing count; an arithmetic without one is absent. Each
    entry is the build's summary; ``"pal8"`` also has ``"vs_int8"`` and ``"vs_fp8"``, its
    GMAC/s over theirs.
    """
    best = {}
    for arithmetic, variants in ARITHMETICS.items():
        candidates = [b for b in builds if b["variant"] in variants and b["ok"]]
        if candidates:
            best[arithmetic] = max(candidates, key=lambda b: b["gmacs"])
    if "pal8" in best:
        best["pal8"] = dict(best["pal8"])
        for other in ("int8", "fp8"):
            if other in best:
                best["pal8"][f"vs_{other}"] = round(best["pal8"]["gmacs"] / best[other]["gmacs"], 3)
    return best


def _share(used: list | None) -> str:
    return "-" if not used else f"{used[0]} / {used[1]}"


def _number(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _row(board: dict, build: dict) -> str:
    if build["ok"]:
        result = "met"
    elif build["failure"] and not build["routed"]:
        result = "does not fit" if not build["fits"] else "not routed"
    else:
        result = "missed"
    reused = " (reused)" if build["measured_at"] else ""
    cells = [
        board["title"].split(" (")[0],
        build["variant"],
        f"{build['rows']} × {build['cols']}",
        str(build["pes"]),
        f"{build['sync_mhz']:g}",
        _number(build["fmax_mhz"], 4),
        result,
        _share(build["logic"]),
        _share(build["dsp"]),
        _share(build["bram"]),
        _number(build["gmacs"]),
        _number(build["gmacs_at_fmax"]),
        _number(build["gmacs_per_klut"]),
        f"{build['seconds']:.0f}{reused}",
    ]
    return "| " + " | ".join(cells) + " |"


def render(data: dict) -> list[str]:
    """Return the section's Markdown: every build, the larger shapes, PAL's ratios per board."""
    lines = [
        "| Board | Arithmetic | Array | PEs | Clock MHz | Fmax MHz | Timing | Logic | DSP "
        "| BRAM | GMAC/s | GMAC/s at Fmax | GMAC/s per 1000 LUT | Build s |",
        "|---|---|---|---:|---:|---:|---|---|---|---|---:|---:|---:|---:|",
    ]
    for board in data["boards"].values():
        lines += [_row(board, build) for build in board["builds"]]
    larger = [(board, b) for board in data["boards"].values() for b in board["next"]]
    if larger:
        lines += ["", "The next larger shape of each (the searches' order):", ""]
        for board, build in larger:
            verdict = (
                "**fits and meets timing: the largest array is out of date**"
                if build["larger_fits"]
                else "does not fit or meet timing"
            )
            lines.append(
                f"- {board['title'].split(' (')[0]} {build['variant']} "
                f"{build['rows']} × {build['cols']}: {verdict}"
                + (f" (Fmax {build['fmax_mhz']:.2f} MHz)" if build["fmax_mhz"] else "")
            )
    lines += ["", "Per board, the best array of each arithmetic (GMAC/s at the clock met):", ""]
    for board in data["boards"].values():
        best = board["best"]
        parts = [
            f"{name} {entry['rows']} × {entry['cols']} {entry['gmacs']:.3g} GMAC/s"
            for name, entry in best.items()
        ]
        ratios = [
            f"PAL {best['pal8'][f'vs_{other}']:.2f}x {other.upper()}"
            for other in ("int8", "fp8")
            if "pal8" in best and f"vs_{other}" in best["pal8"]
        ]
        lines.append(
            f"- {board['title']}: "
            + "; ".join(parts)
            + (f" — {', '.join(ratios)}" if ratios else "")
        )
    lines += [
        "",
        "Bare arrays (`ArrayTop`: LFSR operands, results folded onto the pins), placed and "
        "routed by the flow of `palhdl build`, seed 1, no bitstream packed. The shapes are the "
        "largest the searches of `palhdl arrays` found (docs/boards.md); on "
        + " and ".join(f"{family}" for family in data["confirmed_families"])
        + " boards the next larger shape is built too. LUT: logic cells on the iCE40, LUT4 "
        'sites on the ECP5. "(reused)": the same netlist, tools and seed were placed and '
        "routed earlier (`palhdl.synth.cache`).",
    ]
    return lines
