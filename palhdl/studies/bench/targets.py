"""The project's targets, checked against one ``palhdl bench`` report.

Each target was set by an issue (``docs/units.md``, ``docs/boards.md``, ``docs/format.md``
record them); :func:`targets` reads the report's own numbers and says whether each holds,
``None`` where the report lacks the measurement.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["TARGETS", "render_targets", "targets"]

_HEAVY = ("student_t3", "gauss_lognormal")


def _area_ratio(report: dict, figure: str) -> float | None:
    return (report.get("area") or {}).get("ratios", {}).get("pal8", {}).get(figure)


def _pal_fmax(report: dict, device: str) -> float | None:
    rows = (report.get("area") or {}).get("rows", [])
    row = next((r for r in rows if r["key"] == "pal8"), None)
    return None if row is None else row["fmax"].get(device, {}).get("median")


def _board_ratio(board: str, other: str) -> Callable[[dict], float | None]:
    def ratio(report: dict) -> float | None:
        best = (report.get("arrays") or {}).get("boards", {}).get(board, {}).get("best", {})
        return best.get("pal8", {}).get(f"vs_{other}")

    return ratio


def _block_sqnr(report: dict, distribution: str, label: str) -> float | None:
    accuracy = report.get("accuracy") or {}
    if "distributions" not in accuracy or distribution not in accuracy["distributions"]:
        return None
    index = accuracy["scalings"].index("block")
    row = next((r for r in accuracy["distributions"][distribution] if r["label"] == label), None)
    return None if row is None else row["sqnr_db"][index]


def _margin(distributions, other: str) -> Callable[[dict], float | None]:
    def margin(report: dict) -> float | None:
        names = distributions or list((report.get("accuracy") or {}).get("distributions", {}))
        values = []
        for name in names:
            ours = _block_sqnr(report, name, "pal8 adaptive")
            theirs = _block_sqnr(report, name, other)
            if ours is None or theirs is None:
                return None
            values.append(ours - theirs)
        return min(values) if values else None

    return margin


def _mlp_gap(report: dict) -> float | None:
    accuracy = report.get("accuracy") or {}
    if "mlp" not in accuracy:
        return None
    index = accuracy["scalings"].index("block")
    row = next((r for r in accuracy["mlp"]["rows"] if r["label"] == "pal8 adaptive"), None)
    return None if row is None else accuracy["mlp"]["float64_top1"] - row["top1"][index]


def _golden_gmacs(report: dict) -> float | None:
    rows = (report.get("speed") or {}).get("golden", {}).get("rows", [])
    return rows[0]["macs_per_second"] / 1e9 if rows else None


def _verilator_mcycles(report: dict) -> float | None:
    runs = (report.get("speed") or {}).get("simulation", [])
    rates = [
        run["cycles_per_second"]
        for run in runs
        if run["backend"] == "verilator" and run["rows"] == 4 and "cycles_per_second" in run
    ]
    return max(rates) / 1e6 if rates else None


def _rtl_mismatches(report: dict) -> float | None:
    mlp = (report.get("rtl") or {}).get("mlp") or {}
    return mlp.get("mismatches")


#: ``(target, figure of the report, unit, holds(value))``.
TARGETS: tuple[tuple[str, Callable[[dict], float | None], str, Callable[[float], bool]], ...] = (
    (
        "pal8 table MAC ≤ 0.45x the INT8 MAC (iCE40 LUT4)",
        lambda r: _area_ratio(r, "ice40_lut4_vs_int8"),
        "x",
        lambda v: v <= 0.45,
    ),
    (
        "pal8 table MAC ≤ 0.5x the FP8 E4M3 MAC (iCE40 LUT4)",
        lambda r: _area_ratio(r, "ice40_lut4_vs_fp8"),
        "x",
        lambda v: v <= 0.5,
    ),
    (
        "pipelined pal8 MAC ≥ 60 MHz on the iCE40UP5K",
        lambda r: _pal_fmax(r, "ice40"),
        " MHz",
        lambda v: v >= 60,
    ),
    (
        "pipelined pal8 MAC ≥ 220 MHz on the ECP5-85F",
        lambda r: _pal_fmax(r, "ecp5"),
        " MHz",
        lambda v: v >= 220,
    ),
    (
        "iCEBreaker: PAL array ≥ 1.5x the best INT8 array (GMAC/s)",
        _board_ratio("icebreaker", "int8"),
        "x",
        lambda v: v >= 1.5,
    ),
    (
        "iCEBreaker: PAL array ≥ 2x the best FP8 array",
        _board_ratio("icebreaker", "fp8"),
        "x",
        lambda v: v >= 2,
    ),
    (
        "ULX3S: PAL array ≥ 1.5x the best INT8 array (GMAC/s)",
        _board_ratio("ulx3s-85f", "int8"),
        "x",
        lambda v: v >= 1.5,
    ),
    (
        "ULX3S: PAL array ≥ 2x the best FP8 array",
        _board_ratio("ulx3s-85f", "fp8"),
        "x",
        lambda v: v >= 2,
    ),
    (
        "pal8 adaptive, block 32: ≥ 5 dB above MXFP8 E4M3 on every distribution (least margin)",
        _margin(None, "MXFP8 E4M3"),
        " dB",
        lambda v: v >= 5,
    ),
    (
        "pal8 adaptive, block 32: within 0.5 dB of MXINT8 on heavy tails (least margin)",
        _margin(_HEAVY, "MXINT8"),
        " dB",
        lambda v: v >= -0.5,
    ),
    (
        "digits MLP: pal8 adaptive, block 32, within 0.5 % top-1 of float64 (gap)",
        lambda r: None if _mlp_gap(r) is None else 100 * _mlp_gap(r),
        " %",
        lambda v: v <= 0.5,
    ),
    (
        "the RTL array is bit-exact with the golden model (digits MLP sample; mismatches)",
        _rtl_mismatches,
        "",
        lambda v: v == 0,
    ),
    (
        "golden matmul_values pal8 ≥ 1 GMAC/s (128 × 384 @ 384 × 1536, row/column scaling)",
        _golden_gmacs,
        " GMAC/s",
        lambda v: v >= 1,
    ),
    (
        "compiled simulation (Verilator) ≥ 1M cycles/s on the 4 × 4 array",
        _verilator_mcycles,
        "M cycles/s",
        lambda v: v >= 1,
    ),
)


def targets(report: dict) -> list[dict]:
    """Return ``[{"target", "value", "unit", "holds"}]``; ``holds`` is ``None`` if unmeasured."""
    result = []
    for name, figure, unit, holds in TARGETS:
        value = figure(report)
        result.append(
            {
                "target": name,
                "value": None if value is None else round(value, 3),
                "unit": unit,
                "holds": None if value is None else bool(holds(value)),
            }
        )
    return result


def render_targets(items: list[dict]) -> list[str]:
    """Return the targets as a Markdown table."""
    lines = ["| Target | Measured | Holds |", "|---|---:|---|"]
    for item in items:
        value = "not measured" if item["value"] is None else f"{item['value']:g}{item['unit']}"
        holds = {None: "–", True: "**yes**", False: "no"}[item["holds"]]
        lines.append(f"| {item['target']} | {value} | {holds} |")
    return lines
