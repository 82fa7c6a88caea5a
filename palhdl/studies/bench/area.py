"""``palhdl bench`` section ``area``: what one MAC of each arithmetic costs, and how fast it runs.

Every MAC of :data:`~palhdl.studies.bench.macs.MACS` is synthesized by the YoWASP Yosys
(:func:`palhdl.synth.yosys.synth_stats`) for the iCE40UP5K and the ECP5-85F with logic only,
and for Yosys' generic CMOS gates (its transistor estimate); the MACs whose multiplier a DSP
block can take (:data:`DSP_ROWS`) get a second row with DSPs allowed. The Fmax of each row is
placed and routed by nextpnr (:func:`palhdl.synth.pnr.fmax`: registers around the unit) with
placement seeds :data:`SEEDS`, on the pipelined variant where the MAC has one, and reported as
the median and the spread over the seeds.
"""

from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor

from palhdl.studies.bench.macs import MACS, BenchMac
from palhdl.studies.bench.options import BenchOptions
from palhdl.synth.pnr import fmax
from palhdl.synth.yosys import synth_stats

__all__ = ["DEVICES", "DSP_ROWS", "QUICK_MACS", "SEEDS", "measure", "render", "row_key"]

#: MACs measured a second time with DSP blocks allowed: their multipliers fit one.
DSP_ROWS = ("int8", "mxint8", "bf16")
#: Placement seeds of the Fmax runs (a quick run uses the first).
SEEDS = (1, 2, 3, 4)
#: The MACs of a quick run.
QUICK_MACS = ("pal8", "int8", "fp8")
#: Device targets of the counts and the Fmax runs, with their titles.
DEVICES = {"ice40": "iCE40UP5K", "ecp5": "ECP5-85F"}

_COUNTS = {
    "ice40": ("LUT4", "carry", "DFF", "BRAM", "DSP"),
    "ecp5": ("LUT4", "CCU2C", "DFF", "EBR", "DSP"),
}


def row_key(mac: BenchMac, dsp: bool) -> str:
    """Return the key of a row: the MAC's key, ``-dsp`` appended for its DSP row."""
    return f"{mac.key}-dsp" if dsp else mac.key


def _rows(quick: bool) -> list[tuple[BenchMac, bool]]:
    macs = [mac for mac in MACS if not quick or mac.key in QUICK_MACS]
    rows = []
    for mac in macs:
        rows.append((mac, False))
        if mac.key in DSP_ROWS:
            rows.append((mac, True))
    return rows


def _counts(mac: BenchMac, dsp: bool) -> dict:
    result = {}
    for device in DEVICES:
        stats = synth_stats(mac.build(), target=device, dsp=dsp)
        result[device] = {name: stats[name] for name in _COUNTS[device]}
    if not dsp:
        result["transistors"] = synth_stats(mac.build(), target="cmos")["transistors"]
    return result


def _fmax_summary(runs: list[dict]) -> dict:
    values = [round(run["fmax_mhz"], 2) for run in runs]
    return {
        "seeds": values,
        "median": round(statistics.median(values), 2),
        "min": min(values),
        "max": max(values),
        "reused": sum("measured_at" in run for run in runs),
    }


def measure(options: BenchOptions) -> dict:
    """Synthesize, place and route the MACs; return the section's data (JSON-ready).

    Returns
    -------
    dict
        ``"rows"``: one dict per row (``key``, ``mac``, ``title``, ``unit``, ``flow``
        ``"logic"``/``"dsp"``, ``fmax_unit``, counts per device, ``transistors`` for the logic
        rows, ``fmax`` per device with ``seeds``, ``median``, ``min``, ``max`` and how many
        results were ``reused`` from the cache); ``"seeds"``; ``"ratios"``: per row, the
        iCE40 and ECP5 LUT4s, transistors and Fmax medians relative to the logic rows of
        INT8 and FP8.
    """
    rows = _rows(options.quick)
    seeds = SEEDS[:1] if options.quick else SEEDS
    devices = ("ice40",) if options.quick else tuple(DEVICES)
    options.progress(f"area: synthesizing {len(rows)} MAC rows for iCE40, ECP5 and CMOS")
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        counts = list(pool.map(lambda row: _counts(*row), rows))
        runs = [(row, device, seed) for row in rows for device in devices for seed in seeds]
        options.progress(f"area: {len(runs)} place-and-route runs for Fmax")

        def place(run):
            (mac, dsp), device, seed = run
            unit = (mac.build_pipelined or mac.build)()
            return fmax(unit, target=device, seed=seed, dsp=dsp, cache=options.cache)

        results = list(pool.map(place, runs))
    data_rows = []
    for (mac, dsp), count in zip(rows, counts, strict=True):
        per_device = {
            device: _fmax_summary(
                [r for run, r in zip(runs, results, strict=True) if run[:2] == ((mac, dsp), device)]
            )
            for device in devices
        }
        data_rows.append(
            {
                "key": row_key(mac, dsp),
                "mac": mac.key,
                "title": mac.title + (", DSP" if dsp else ""),
                "unit": mac.unit,
                "flow": "dsp" if dsp else "logic",
                "fmax_unit": "pipelined" if mac.build_pipelined is not None else "as counted",
                **count,
                "fmax": per_device,
            }
        )
    return {"rows": data_rows, "seeds": list(seeds), "ratios": _ratios(data_rows)}


def _ratios(rows: list[dict]) -> dict:
    by_key = {row["key"]: row for row in rows}
    figures = {
        "ice40_lut4": lambda r: r["ice40"]["LUT4"],
        "ecp5_lut4": lambda r: r["ecp5"]["LUT4"],
        "transistors": lambda r: r.get("transistors"),
        "fmax_ice40": lambda r: r["fmax"].get("ice40", {}).get("median"),
        "fmax_ecp5": lambda r: r["fmax"].get("ecp5", {}).get("median"),
    }
    ratios = {}
    for row in rows:
        entry = {}
        for base in ("int8", "fp8"):
            if base not in by_key:
                continue
            for name, figure in figures.items():
                ours, theirs = figure(row), figure(by_key[base])
                if ours is not None and theirs:
                    entry[f"{name}_vs_{base}"] = round(ours / theirs, 3)
        ratios[row["key"]] = entry
    return ratios


def _fmax_cell(entry: dict | None) -> str:
    if not entry:
        return "-"
    if entry["min"] == entry["max"]:
        return f"{entry['median']:.1f}"
    return f"{entry['median']:.1f} ({entry['min']:.1f}–{entry['max']:.1f})"


def _ratio_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render(data: dict) -> list[str]:
    """Return the section's Markdown: the counts and Fmax table, then the ratio table."""
    seeds = "/".join(str(s) for s in data["seeds"])
    lines = [
        "| MAC | flow | iCE40 LUT4 | carry | DFF | EBR | DSP | ECP5 LUT4 | CCU2C | DFF | EBR "
        f"| DSP | CMOS transistors | iCE40 Fmax MHz, seeds {seeds} "
        f"| ECP5 Fmax MHz, seeds {seeds} |",
        "|---|---|" + "---:|" * 13,
    ]
    for row in data["rows"]:
        ice40, ecp5 = row["ice40"], row["ecp5"]
        cells = [
            row["title"],
            row["flow"],
            *(str(ice40[name]) for name in _COUNTS["ice40"]),
            *(str(ecp5[name]) for name in _COUNTS["ecp5"]),
            str(row.get("transistors", "-")),
            _fmax_cell(row["fmax"].get("ice40")),
            _fmax_cell(row["fmax"].get("ecp5")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios (a row's figure over the INT8 and the FP8 E4M3 logic-only rows'; Fmax as medians):",
        "",
        "| MAC | flow | iCE40 LUT4 ×INT8 | ×FP8 | ECP5 LUT4 ×INT8 | ×FP8 | transistors ×INT8 "
        "| ×FP8 | iCE40 Fmax ×INT8 | ×FP8 | ECP5 Fmax ×INT8 | ×FP8 |",
        "|---|---|" + "---:|" * 10,
    ]
    for row in data["rows"]:
        ratio = data["ratios"][row["key"]]
        cells = [row["title"], row["flow"]]
        for figure in ("ice40_lut4", "ecp5_lut4", "transistors", "fmax_ice40", "fmax_ecp5"):
            cells += [_ratio_cell(ratio.get(f"{figure}_vs_{b}")) for b in ("int8", "fp8")]
        lines.append("| " + " | ".join(cells) + " |")
    units = "; ".join(
        f"{row['title']}: `{row['unit']}`" for row in data["rows"] if row["flow"] == "logic"
    )
    lines += [
        "",
        "Counts: Yosys (`synth_ice40`, `synth_ecp5`, with `-dsp` / without `-nodsp` on the DSP "
        "rows; CMOS: `synth -flatten; abc -g cmos2`, Yosys' transistor estimate, in which a "
        "block-RAM table is built from gates) of the combinational unit. Fmax: nextpnr with a "
        "shift register driving the inputs and the outputs registered, on the pipelined variant "
        "of the MAC where it has one (a three-segment accumulator, or a registered product "
        f"term). Units: {units}.",
    ]
    return lines
