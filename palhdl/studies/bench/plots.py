"""The PNG plots of ``palhdl bench`` (matplotlib, no display needed).

Each plot reads the report alone and is skipped when the sections it needs did not run:

- ``area_vs_sqnr.png``: MAC area (iCE40 LUT4s; CMOS transistors) against matmul SQNR;
- ``energy_vs_sqnr.png``: the energy proxy relative to INT8 against SQNR;
- ``gmacs_per_board.png``: GMAC/s of each board's arrays per arithmetic;
- ``sqnr_by_distribution.png``: SQNR per distribution and scaling for the main formats.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from palhdl.studies.bench.accuracy import TITLES
from palhdl.studies.bench.report import headline_rows

__all__ = ["SQNR_FORMATS", "write_plots"]

#: Formats of the per-distribution plot.
SQNR_FORMATS = (
    "pal8 adaptive",
    "pal8 (4.3)",
    "MXINT8",
    "MXFP8 E4M3",
    "FP8 E4M3",
    "INT8",
)

_SCALINGS = {"tensor": "per tensor", "channel": "per row/column", "block": "block 32"}


def _scatter(axis, points, xlabel: str, log: bool = False) -> None:
    for x, y, label in points:
        axis.scatter(x, y, s=40)
        axis.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("matmul SQNR against float64 (dB)")
    if log:
        axis.set_xscale("log")
    axis.grid(alpha=0.3)


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _area_vs_sqnr(report: dict, path: Path) -> bool:
    rows = [r for r in headline_rows(report) if r["sqnr_db"] is not None]
    lut = [(r["lut4"], r["sqnr_db"], r["title"]) for r in rows if r["lut4"] is not None]
    cmos = [(r["transistors"], r["sqnr_db"], r["title"]) for r in rows if r["transistors"]]
    if not lut:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(12, 5))
    _scatter(axes[0], lut, "MAC area: iCE40 LUT4 (a block-RAM PE adds its EBR)")
    _scatter(axes[1], cmos, "MAC area: CMOS transistors (Yosys estimate)")
    figure.suptitle("Area against accuracy per format (up and to the left is better)")
    _save(figure, path)
    return True


def _energy_vs_sqnr(report: dict, path: Path) -> bool:
    rows = headline_rows(report)
    points = [
        (r["energy_vs_int8"], r["sqnr_db"], r["title"])
        for r in rows
        if r["energy_vs_int8"] is not None and r["sqnr_db"] is not None
    ]
    if not points:
        return False
    figure, axis = plt.subplots(figsize=(7, 5))
    _scatter(axis, points, "energy proxy per MAC relative to INT8 (switched transistors)")
    axis.set_title("Energy proxy against accuracy")
    _save(figure, path)
    return True


def _gmacs_per_board(report: dict, path: Path) -> bool:
    boards = (report.get("arrays") or {}).get("boards", {})
    groups = [(b["title"].split(" (")[0], b["builds"]) for b in boards.values() if b["builds"]]
    if not groups:
        return False
    figure, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.5), squeeze=False)
    for axis, (title, builds) in zip(axes[0], groups, strict=True):
        names = [f"{b['variant']}\n{b['rows']}×{b['cols']}" for b in builds]
        values = [b["gmacs"] or 0.0 for b in builds]
        bars = axis.bar(names, values, color="tab:blue")
        for bar, build in zip(bars, builds, strict=True):
            text = f"{build['gmacs']:.3g}" if build["gmacs"] else "failed"
            axis.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        axis.set_title(title)
        axis.set_ylabel("peak GMAC/s at the clock met")
    figure.suptitle("Largest arrays per board and arithmetic")
    _save(figure, path)
    return True


def _sqnr_by_distribution(report: dict, path: Path) -> bool:
    accuracy = report.get("accuracy") or {}
    if "distributions" not in accuracy:
        return False
    names = list(accuracy["distributions"])
    scalings = accuracy["scalings"]
    figure, axes = plt.subplots(1, len(scalings), figsize=(6 * len(scalings), 4.5), sharey=True)
    width = 0.8 / len(SQNR_FORMATS)
    for axis, scaling in zip(axes, scalings, strict=True):
        column = scalings.index(scaling)
        for offset, label in enumerate(SQNR_FORMATS):
            values = []
            for name in names:
                row = next(r for r in accuracy["distributions"][name] if r["label"] == label)
                values.append(row["sqnr_db"][column] or 0.0)
            positions = [
                i + (offset - len(SQNR_FORMATS) / 2 + 0.5) * width for i in range(len(names))
            ]
            axis.bar(positions, values, width, label=label)
        axis.set_xticks(range(len(names)), [TITLES.get(n, n) for n in names], fontsize=8)
        axis.set_title(_SCALINGS.get(scaling, scaling))
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("matmul SQNR against float64 (dB)")
    axes[-1].legend(fontsize=8)
    figure.suptitle("SQNR per distribution and scaling (0: the format has no such scaling)")
    _save(figure, path)
    return True


_PLOTS = {
    "area_vs_sqnr.png": _area_vs_sqnr,
    "energy_vs_sqnr.png": _energy_vs_sqnr,
    "gmacs_per_board.png": _gmacs_per_board,
    "sqnr_by_distribution.png": _sqnr_by_distribution,
}


def write_plots(report: dict, out: Path) -> list[str]:
    """Write every plot the report has data for into ``out``; return their file names."""
    return [name for name, plot in _PLOTS.items() if plot(report, out / name)]
