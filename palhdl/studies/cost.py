"""Cost (area) study: synthesize the PAL units and the baseline MACs, tabulate what they use.

Run ``palhdl cost`` (``--help`` for options). Every unit is synthesized, as a
combinational unit (``pipelined=False``) whose only registers are its own state, four ways with
the YoWASP Yosys (:func:`palhdl.synth.yosys.synth_stats`): iCE40 logic only, iCE40 with DSPs,
ECP5 with DSPs and generic CMOS gates. With ``--fmax`` the MACs (PAL and baseline) are also
placed and routed for their Fmax, and the PAL MACs once more pipelined (``pipelined=True``),
the configuration the Fmax targets are about. ``--write docs/units.md`` replaces the text
between the ``<!-- cost:begin -->`` and ``<!-- cost:end -->`` markers with the table and the
comparisons.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from palhdl.boards.devices import DEVICES, ECP5_85F, ICE40_UP5K
from palhdl.format import FORMATS
from palhdl.studies.accuracy import mac_rounding_cost
from palhdl.studies.cost_units import (
    COST_TARGETS,
    MAC_CONFIGS,
    PAL8_COST,
    PAL16_COST,
    Unit,
    baseline_units,
    mac_label,
    pal_mac_name,
    pal_units,
    window_label,
)
from palhdl.synth.pnr import fmax
from palhdl.synth.toolchain import yosys_version
from palhdl.synth.yosys import synth_stats
from palhdl.validate import check_choice, check_int

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "FMAX_TARGETS",
    "MAC_CONFIGS",
    "PAL8_COST",
    "PAL16_COST",
    "TARGETS",
    "Unit",
    "add_arguments",
    "baseline_units",
    "mac_label",
    "main",
    "measure",
    "pal_units",
    "render",
    "rounding_cost_lines",
    "run",
    "window_label",
    "write_section",
]

BEGIN_MARKER = "<!-- cost:begin -->"
END_MARKER = "<!-- cost:end -->"

#: Synthesis runs per unit: ``name -> (synth_stats target, dsp)``.
TARGETS: dict[str, tuple[str, bool]] = {
    "ice40": ("ice40", False),
    "ice40_dsp": ("ice40", True),
    "ecp5": ("ecp5", True),
    "cmos": ("cmos", False),
}

#: Depths of the Gaussian matmuls of :func:`rounding_cost_lines`.
ROUNDING_COST_K = (64, 1024, 4096)


def rounding_cost_lines(unit_names: Sequence[str]) -> list[str]:
    """Say what the own rounding of each PAL MAC configuration among ``unit_names`` costs.

    The costs come from :func:`palhdl.studies.accuracy.mac_rounding_cost` (numpy only, a few
    seconds).
    """
    lines = []
    for configs in MAC_CONFIGS.values():
        for config in configs:
            if pal_mac_name(config) not in unit_names:
                continue
            results = [mac_rounding_cost(config, k) for k in ROUNDING_COST_K]
            costs = ", ".join(
                f"K = {k}: {r.cost_db:.2f} dB ({r.mac_db:.2f} of {r.quantised_db:.2f})"
                for k, r in zip(ROUNDING_COST_K, results, strict=True)
            )
            lines.append(f"- {pal_mac_name(config)}: {costs}.")
    return lines


def measure(
    unit: Unit, targets: Sequence[str], *, with_fmax: bool = False, seeds: Sequence[int] = (1,)
) -> Unit:
    """Fill ``unit.stats`` (``{target name: synth_stats result}``) and ``unit.seconds``.

    With ``with_fmax``, for a MAC (:attr:`Unit.is_mac`), also ``stats["fmax_ice40"]`` and
    ``stats["fmax_ecp5"]``: ``{"fmax_mhz": ...}`` from :func:`palhdl.synth.pnr.fmax` (registers
    around the unit, placement seed 1), and ``stats["fmax_pipelined_ice40"]``/
    ``["fmax_pipelined_ecp5"]`` of its pipelined variant if it has one: the median over the
    placement ``seeds`` and, in ``"seeds"``, every seed's value.
    """
    start = time.perf_counter()
    for name in targets:
        target, dsp = TARGETS[name]
        unit.stats[name] = synth_stats(unit.build(), target=target, dsp=dsp)
    if with_fmax and unit.is_mac:
        variants = [("fmax", unit.build, (1,)), ("fmax_pipelined", unit.build_pipelined, seeds)]
        for prefix, build, runs in variants:
            if build is None:
                continue
            for target in DEVICES:
                values = [
                    round(fmax(build(), target=target, seed=seed)["fmax_mhz"], 1) for seed in runs
                ]
                entry = {"fmax_mhz": round(statistics.median(values), 1)}
                if len(values) > 1:
                    entry["seeds"] = "/".join(f"{v:g}" for v in values)
                unit.stats[f"{prefix}_{target}"] = entry
    unit.seconds = time.perf_counter() - start
    return unit


_COLUMNS = [
    ("iCE40 LUT4", "ice40", "LUT4"),
    ("iCE40 carry", "ice40", "carry"),
    ("iCE40 DFF", "ice40", "DFF"),
    ("iCE40 EBR", "ice40", "BRAM"),
    ("iCE40+DSP LUT4", "ice40_dsp", "LUT4"),
    ("iCE40+DSP SB_MAC16", "ice40_dsp", "DSP"),
    ("ECP5 LUT4", "ecp5", "LUT4"),
    ("ECP5 CCU2C", "ecp5", "CCU2C"),
    ("ECP5 DSP", "ecp5", "DSP"),
    ("ECP5 EBR", "ecp5", "EBR"),
    ("CMOS transistors", "cmos", "transistors"),
    *(
        (f"{device.title} Fmax MHz{suffix}", f"{prefix}_{device.name}", "fmax_mhz")
        for prefix, suffix in (("fmax", ""), ("fmax_pipelined", " pipelined"))
        for device in DEVICES.values()
    ),
]

#: Fmax targets of the pipelined PAL MACs: ``(stats key, device, MHz)``.
FMAX_TARGETS = [
    (f"fmax_pipelined_{ICE40_UP5K.name}", ICE40_UP5K.title, 60.0),
    (f"fmax_pipelined_{ECP5_85F.name}", ECP5_85F.title, 220.0),
]


def _ratio_lines(units: dict[str, Unit]) -> list[str]:
    lines = []
    for pal, base, limit in COST_TARGETS:
        if pal not in units or base not in units or "ice40" not in units[pal].stats:
            lines.append(f"- {pal} vs {base}: not measured in this run.")
            continue
        pal_stats, base_stats = units[pal].stats, units[base].stats
        ratio = pal_stats["ice40"]["LUT4"] / base_stats["ice40"]["LUT4"]
        verdict = "holds" if ratio <= limit else "does not hold"
        text = (
            f"- {pal} / {base}: iCE40 LUT4 {pal_stats['ice40']['LUT4']} / "
            f"{base_stats['ice40']['LUT4']} = **{ratio:.2f}x** (target <= {limit}x: {verdict})"
        )
        if "cmos" in pal_stats and "cmos" in base_stats:
            cmos = pal_stats["cmos"]["transistors"] / base_stats["cmos"]["transistors"]
            text += f"; CMOS transistors {cmos:.2f}x"
        lines.append(text + ".")
    return lines


def _fmax_lines(units: Sequence[Unit]) -> list[str]:
    lines = []
    for unit in units:
        measured = [
            (device, unit.stats[key]["fmax_mhz"], limit, unit.stats[key].get("seeds"))
            for key, device, limit in FMAX_TARGETS
            if key in unit.stats
        ]
        if not measured:
            continue
        # The targets are the PAL MACs'; the baselines are listed for comparison.
        pal = unit.name.startswith("PAL")
        parts = [
            f"{device} {mhz} MHz"
            + (
                f" (target >= {limit:g}: " + ("holds)" if mhz >= limit else "does not hold)")
                if pal
                else ""
            )
            + (f", seeds {seeds}" if seeds else "")
            for device, mhz, limit, seeds in measured
        ]
        lines.append(f"- {unit.name}, pipelined: " + "; ".join(parts) + ".")
    return lines


def render(units: Sequence[Unit], yosys_version: str, rounding: Sequence[str] = ()) -> str:
    """Render the markdown that goes between the markers.

    It is the table (a column for every count some unit has, ``-`` where a unit lacks it), the
    target comparisons, then the ``rounding`` lines (:func:`rounding_cost_lines`) if given.
    """
    columns = [c for c in _COLUMNS if any(c[1] in unit.stats for unit in units)]
    header = ["unit", *(c[0] for c in columns)]
    lines = [
        f"Measured with {yosys_version} (YoWASP), `palhdl cost`; combinational "
        "units (`pipelined=False`), so the MACs' only registers are the accumulator and its "
        "flags. iCE40: `synth_ice40` without and with `-dsp`; ECP5: `synth_ecp5` (DSPs "
        "allowed); CMOS: `synth; dffunmap; abc -g cmos2; stat -tech cmos`. Fmax (if "
        "measured, `--fmax`, MACs only): nextpnr with a shift register driving the inputs and a "
        "register on the outputs (`palhdl.synth.pnr`), iCE40 logic only, ECP5 with DSPs; the "
        "pipelined columns are the PAL MACs with `pipelined=True` and the restarting MACs "
        "(`PALTableMac`, `IntRestartMac`, `FP8RestartMac`) with a three-segment accumulator. "
        "The EBR columns count block RAMs; the generic CMOS flow has none, so a table MAC's "
        "transistor count includes its table built from gates.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] + ["---:"] * len(columns)) + " |",
    ]
    for unit in units:
        cells = [str(unit.stats.get(target, {}).get(key, "-")) for _, target, key in columns]
        lines.append("| " + " | ".join([unit.name, *cells]) + " |")
    lines += ["", "Cost targets (iCE40 LUT4, logic only):", ""]
    lines += _ratio_lines({unit.name: unit for unit in units})
    fmax_lines = _fmax_lines(units)
    if fmax_lines:
        lines += [
            "",
            "Fmax of the pipelined MACs (median over the placement seeds; the targets are the "
            "PAL MACs'):",
            "",
            *fmax_lines,
        ]
    if rounding:
        lines += [
            "",
            "What each PAL MAC configuration's own rounding (mantissa table width, accumulator "
            "window, overflow) costs: the SQNR of a 64 × K × 64 standard-normal matmul, per-row "
            "and per-column scaling, against float64 — the MAC's result against the same PAL "
            "operands' products summed exactly (`palhdl.studies.accuracy.mac_rounding_cost`):",
            "",
            *rounding,
        ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace the text between :data:`BEGIN_MARKER` and :data:`END_MARKER` in ``path``.

    A file without the markers gets a ``## Cost`` section with them appended (a missing file
    is created).
    """
    block = f"{BEGIN_MARKER}\n{text}\n{END_MARKER}"
    old = path.read_text() if path.exists() else "# Units\n"
    if BEGIN_MARKER in old and END_MARKER in old:
        head, rest = old.split(BEGIN_MARKER, 1)
        _, tail = rest.split(END_MARKER, 1)
        new = head + block + tail
    else:
        new = old.rstrip("\n") + "\n\n## Cost\n\n" + block + "\n"
    path.write_text(new)


#: Where ``--write`` without a file name writes, relative to the current directory.
DEFAULT_DOC = Path("docs/units.md")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of the cost study (``palhdl cost``) to ``parser``."""
    parser.add_argument(
        "--units",
        nargs="+",
        metavar="TEXT",
        help="only units whose name contains one of these strings (default: all)",
    )
    parser.add_argument(
        "--formats",
        default="pal8,pal16",
        help="comma-separated PAL formats of the PAL units (default pal8,pal16)",
    )
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated synthesis runs, of {', '.join(TARGETS)} (default all)",
    )
    parser.add_argument(
        "--fmax",
        action="store_true",
        help=f"also place and route the MACs ({', '.join(d.title for d in DEVICES.values())}) "
        "for their Fmax, the PAL MACs also pipelined (slow)",
    )
    parser.add_argument(
        "--seeds",
        default="1",
        help="comma-separated nextpnr placement seeds of the pipelined Fmax runs; the table "
        "shows their median (default 1)",
    )
    parser.add_argument("--no-baselines", action="store_true", help="skip the baseline MACs")
    parser.add_argument("--jobs", type=int, default=2, help="units synthesized in parallel")
    parser.add_argument(
        "--write",
        type=Path,
        nargs="?",
        const=DEFAULT_DOC,
        metavar="MD",
        help=f"update the cost section of MD (MD left out: {DEFAULT_DOC}, relative to the "
        "current directory)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw counts")
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="render the counts previous --json runs wrote instead of synthesizing (later "
        "files add to and override earlier ones, unit by unit and count by count)",
    )


def _split_choices(option: str, text: str, choices) -> list[str]:
    names = text.split(",")
    for name in names:
        check_choice(option, name, choices)
    return names


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(seed) for seed in text.split(",")]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, not {text!r}") from None
    return [check_int("--seeds", seed, 1, 1 << 30) for seed in seeds]


def _check_writable(option: str, path: Path | None) -> None:
    if path is not None and not path.parent.is_dir():
        raise ValueError(f"{option}: the directory of {str(path)!r} does not exist")


def _select_units(args: argparse.Namespace, formats: Sequence[str]) -> list[Unit]:
    units = [unit for name in formats for unit in pal_units(name)]
    if not args.no_baselines:
        units += baseline_units()
    if args.units:
        units = [u for u in units if any(text in u.name for text in args.units)]
        if not units:
            raise ValueError(f"--units: no unit name contains any of {', '.join(args.units)}")
    return units


def _load_json(paths: Sequence[Path]) -> tuple[list[Unit], str]:
    """Load the units and the Yosys version that ``--json`` runs saved, merged in order."""
    saved: dict = {}
    for path in paths:
        try:
            contents = json.loads(path.read_text())
        except OSError as error:
            raise ValueError(f"--from-json: cannot read {str(path)!r}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"--from-json: {str(path)!r} is not JSON ({error})") from None
        if not isinstance(contents, dict):
            raise ValueError(f"--from-json: {str(path)!r} is not a --json file of palhdl cost")
        for name, entry in contents.items():
            if isinstance(entry, dict):
                saved.setdefault(name, {}).update(entry)
            else:
                saved[name] = entry
    try:
        units = [
            Unit(name, entry.pop("group"), lambda: None, seconds=entry.pop("seconds"))
            for name, entry in saved.items()
            if name != "yosys"
        ]
        version = saved["yosys"]
    except (KeyError, AttributeError) as error:
        raise ValueError(
            f"--from-json: the files are not --json files of palhdl cost (no {error})"
        ) from None
    for unit in units:
        unit.stats = saved[unit.name]
    return units, version


def _synthesize(
    units: list[Unit], targets: Sequence[str], *, jobs: int, with_fmax: bool, seeds: Sequence[int]
) -> str:
    """Measure ``units`` (:func:`measure`), ``jobs`` at a time; returns the Yosys version."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        work = pool.map(lambda u: measure(u, targets, with_fmax=with_fmax, seeds=seeds), units)
        for unit in work:
            counts = ", ".join(
                f"{name} {next(iter(v for k, v in stats.items() if k != 'cells'))}"
                for name, stats in unit.stats.items()
            )
            print(f"{unit.name}: {counts} ({unit.seconds:.1f} s)", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    print(f"synthesized {len(units)} units in {elapsed:.0f} s", file=sys.stderr)
    return yosys_version()


def run(args: argparse.Namespace) -> int:
    """Run the study with the options of :func:`add_arguments`; print the section.

    Returns
    -------
    int
        0 on success; 2 after a one-line ``palhdl cost: error: ...`` on ``stderr`` naming the
        option at fault.
    """
    try:
        formats = _split_choices("--formats", args.formats, FORMATS)
        targets = _split_choices("--targets", args.targets, TARGETS)
        jobs = check_int("--jobs", args.jobs, 1)
        _check_writable("--write", args.write)
        _check_writable("--json", args.json)
        if args.from_json:
            units, version = _load_json(args.from_json)
        else:
            units = _select_units(args, formats)
            version = _synthesize(
                units, targets, jobs=jobs, with_fmax=args.fmax, seeds=_seeds(args.seeds)
            )
    except (TypeError, ValueError) as error:
        print(f"palhdl cost: error: {error}", file=sys.stderr)
        return 2
    text = render(units, version, rounding_cost_lines([unit.name for unit in units]))
    print(text)
    if args.write:
        write_section(args.write, text)
    if args.json:
        raw = {u.name: {"group": u.group, "seconds": u.seconds, **u.stats} for u in units}
        raw["yosys"] = version
        args.json.write_text(json.dumps(raw, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``palhdl cost`` on its own: parse ``argv`` (default ``sys.argv[1:]``) and :func:`run`."""
    parser = argparse.ArgumentParser(
        prog="palhdl cost",
        description="Synthesize the PAL units and baseline MACs and tabulate their cost.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
