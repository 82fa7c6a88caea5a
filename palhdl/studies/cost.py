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
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from palhdl.boards.devices import DEVICES, ECP5_85F, ICE40_UP5K
from palhdl.format import FORMATS, MacConfig, pal8, pal16
from palhdl.hdl.baselines import BF16Mac, FP8Mac, IntMac
from palhdl.hdl.convert import (
    BFloat16ToPAL,
    FixedToPAL,
    Float32ToPAL,
    PALToBFloat16,
    PALToFloat32,
)
from palhdl.hdl.mac import PALMac, PALProductTerm
from palhdl.hdl.ops import PALAdder, PALMultiplier
from palhdl.hdl.readout import AccumulatorToFloat32, AccumulatorToPAL
from palhdl.studies.accuracy import mac_rounding_cost
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

#: Windows of the saturating 32-bit comparison: 12 of the 32 bits are fraction bits.
#: Adaptive scaling (``MacConfig.scale_target``) then puts operand maxima at 2**3 for K = 4096
#: and the smallest resolved term is 2**-12, 18 octaves below the largest product.
SATURATING_ACC = (32, 12)

#: The cost-optimised pal8 MAC: a 32-bit wrapping accumulator like the int8 MAC's, product
#: terms in its low 14 bits (a 14-bit term window, as an int8 product's magnitude fills 14 bits
#: with headroom for K up to 2**17), a 5-bit mantissa table. Its rounding costs about 0.1 dB
#: SQNR on a Gaussian matmul (:func:`palhdl.studies.accuracy.mac_rounding_cost`).
PAL8_COST = MacConfig(
    pal8, mantissa_bits=5, acc_bits=32, acc_frac_bits=12, term_bits=14, saturate=False
)

#: The cost-optimised pal16 MAC: bfloat16's 48-bit window with 24-bit terms, wrapping, W = 9.
PAL16_COST = MacConfig(
    pal16, mantissa_bits=9, acc_bits=48, acc_frac_bits=24, term_bits=24, saturate=False
)

#: PAL MAC configurations of the study per format: the default (exact for pal8) accumulator,
#: the saturating 32-bit (pal8) window, and the cost-optimised one.
MAC_CONFIGS = {
    "pal8": [MacConfig(pal8), MacConfig(pal8, acc_bits=32, acc_frac_bits=12), PAL8_COST],
    "pal16": [MacConfig(pal16), PAL16_COST],
}


def window_label(acc_bits: int, acc_frac_bits: int, term_bits: int, saturate: bool) -> str:
    """``" acc32/12"``, plus ``" t14"`` for a term window and ``" wrap"`` when wrapping."""
    label = f" acc{acc_bits}/{acc_frac_bits}"
    if term_bits != acc_bits - 1:
        label += f" t{term_bits}"
    return label if saturate else label + " wrap"


def mac_label(config: MacConfig) -> str:
    """Return the row label of a PAL MAC configuration, e.g. ``" acc32/12 t14 wrap W5"``."""
    window = window_label(config.acc_bits, config.acc_frac_bits, config.term_bits, config.saturate)
    return f"{window} W{config.mantissa_bits}"


def _pal_mac(config: MacConfig) -> str:
    return f"PALMac {config.fmt.name}{mac_label(config)}"


_FP8_COST = window_label(PAL8_COST.acc_bits, PAL8_COST.acc_frac_bits, 14, False)
_BF16_COST = window_label(PAL16_COST.acc_bits, PAL16_COST.acc_frac_bits, 24, False)

#: Issue targets: ``(PAL row, baseline row, largest iCE40 LUT4 ratio)``. The first three compare
#: the cost-optimised MACs with baselines of the same accumulator scheme; the last two the
#: saturating windows.
COST_TARGETS = [
    (_pal_mac(PAL8_COST), "IntMac int8 acc32", 0.7),
    (_pal_mac(PAL8_COST), f"FP8Mac e4m3{_FP8_COST}", 0.6),
    (_pal_mac(PAL16_COST), f"BF16Mac{_BF16_COST}", 0.5),
    (_pal_mac(MAC_CONFIGS["pal8"][1]), "FP8Mac e4m3 acc32/12", 0.6),
    (_pal_mac(MAC_CONFIGS["pal16"][0]), "BF16Mac acc48/24", 0.5),
]

#: Depths of the Gaussian matmuls of :func:`rounding_cost_lines`.
ROUNDING_COST_K = (64, 1024, 4096)


@dataclass
class Unit:
    """One row of the study: a name, a group, and a function building a fresh elaboratable."""

    name: str
    group: str
    build: Callable[[], object]
    stats: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    #: Builds the pipelined variant, for units that have one and whose Fmax is studied.
    build_pipelined: Callable[[], object] | None = None

    @property
    def is_mac(self) -> bool:
        """A multiply-accumulate row (PAL or baseline): the rows ``--fmax`` places and routes."""
        return self.name.startswith(("PALMac", "IntMac", "FP8Mac", "BF16Mac"))


def pal_units(fmt_name: str) -> list[Unit]:
    """Return the PAL units of format ``fmt_name`` (``"pal8"``/``"pal16"``)."""
    fmt = FORMATS[fmt_name]
    specs = [
        (PALMultiplier, "arith", {"fmt": fmt}, ""),
        (PALAdder, "arith", {"fmt": fmt}, ""),
        (Float32ToPAL, "convert", {"fmt": fmt}, ""),
        (BFloat16ToPAL, "convert", {"fmt": fmt}, ""),
        (PALToFloat32, "convert", {"fmt": fmt}, ""),
        (PALToBFloat16, "convert", {"fmt": fmt}, ""),
        (FixedToPAL, "convert", {"fmt": fmt, "width": 16}, " int16"),
    ]
    readout_configs = [MacConfig(fmt), MacConfig(fmt, acc_bits=32, acc_frac_bits=12)]
    for config in readout_configs:
        label = f" acc{config.acc_bits}/{config.acc_frac_bits}"
        specs += [
            (AccumulatorToPAL, "convert", {"config": config}, label),
            (AccumulatorToFloat32, "convert", {"config": config}, label),
        ]
    for config in MAC_CONFIGS[fmt_name]:
        specs += [
            (PALProductTerm, "MAC", {"config": config}, mac_label(config)),
            (PALMac, "MAC", {"config": config}, mac_label(config)),
        ]
    return [
        Unit(
            f"{cls.__name__} {fmt_name}{label}",
            group,
            lambda cls=cls, kw=kwargs: cls(**kw),
            build_pipelined=(lambda kw=kwargs: PALMac(**kw, pipelined=True))
            if cls is PALMac
            else None,
        )
        for cls, group, kwargs, label in specs
    ]


def baseline_units() -> list[Unit]:
    """Return the baseline MACs, with the accumulators of the PAL MACs they are compared to."""
    acc, frac = SATURATING_ACC
    fp8 = {"acc_bits": PAL8_COST.acc_bits, "acc_frac_bits": PAL8_COST.acc_frac_bits}
    fp8 |= {"term_bits": PAL8_COST.term_bits, "saturate": False}
    bf16 = {"acc_bits": PAL16_COST.acc_bits, "acc_frac_bits": PAL16_COST.acc_frac_bits}
    bf16 |= {"term_bits": PAL16_COST.term_bits, "saturate": False}
    return [
        Unit("IntMac int8 acc32", "baseline", lambda: IntMac(width=8, acc_bits=32)),
        Unit(
            f"FP8Mac e4m3 acc{acc}/{frac}",
            "baseline",
            lambda: FP8Mac(variant="e4m3", acc_bits=acc, acc_frac_bits=frac),
        ),
        Unit(f"FP8Mac e4m3{_FP8_COST}", "baseline", lambda: FP8Mac(variant="e4m3", **fp8)),
        Unit(f"FP8Mac e5m2{_FP8_COST}", "baseline", lambda: FP8Mac(variant="e5m2", **fp8)),
        Unit("BF16Mac acc48/24", "baseline", lambda: BF16Mac(acc_bits=48, acc_frac_bits=24)),
        Unit(f"BF16Mac{_BF16_COST}", "baseline", lambda: BF16Mac(**bf16)),
    ]


def rounding_cost_lines(unit_names: Sequence[str]) -> list[str]:
    """Say what the own rounding of each PAL MAC configuration among ``unit_names`` costs.

    The costs come from :func:`palhdl.studies.accuracy.mac_rounding_cost` (numpy only, a few
    seconds).
    """
    lines = []
    for configs in MAC_CONFIGS.values():
        for config in configs:
            if _pal_mac(config) not in unit_names:
                continue
            results = [mac_rounding_cost(config, k) for k in ROUNDING_COST_K]
            costs = ", ".join(
                f"K = {k}: {r.cost_db:.2f} dB ({r.mac_db:.2f} of {r.quantised_db:.2f})"
                for k, r in zip(ROUNDING_COST_K, results, strict=True)
            )
            lines.append(f"- {_pal_mac(config)}: {costs}.")
    return lines


def measure(unit: Unit, targets: Sequence[str], *, with_fmax: bool = False) -> Unit:
    """Fill ``unit.stats`` (``{target name: synth_stats result}``) and ``unit.seconds``.

    With ``with_fmax``, for a MAC (:attr:`Unit.is_mac`), also ``stats["fmax_ice40"]`` and
    ``stats["fmax_ecp5"]``: ``{"fmax_mhz": ...}`` from :func:`palhdl.synth.pnr.fmax` (registers
    around the unit), and ``stats["fmax_pipelined_ice40"]``/``["fmax_pipelined_ecp5"]`` of its
    pipelined variant if it has one.
    """
    start = time.perf_counter()
    for name in targets:
        target, dsp = TARGETS[name]
        unit.stats[name] = synth_stats(unit.build(), target=target, dsp=dsp)
    if with_fmax and unit.is_mac:
        variants = [("fmax", unit.build), ("fmax_pipelined", unit.build_pipelined)]
        for prefix, build in variants:
            if build is None:
                continue
            for target in DEVICES:
                result = fmax(build(), target=target)
                unit.stats[f"{prefix}_{target}"] = {"fmax_mhz": round(result["fmax_mhz"], 1)}
    unit.seconds = time.perf_counter() - start
    return unit


_COLUMNS = [
    ("iCE40 LUT4", "ice40", "LUT4"),
    ("iCE40 carry", "ice40", "carry"),
    ("iCE40 DFF", "ice40", "DFF"),
    ("iCE40+DSP LUT4", "ice40_dsp", "LUT4"),
    ("iCE40+DSP SB_MAC16", "ice40_dsp", "DSP"),
    ("ECP5 LUT4", "ecp5", "LUT4"),
    ("ECP5 CCU2C", "ecp5", "CCU2C"),
    ("ECP5 DSP", "ecp5", "DSP"),
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
            (device, unit.stats[key]["fmax_mhz"], limit)
            for key, device, limit in FMAX_TARGETS
            if key in unit.stats
        ]
        if not measured:
            continue
        parts = [
            f"{device} {mhz} MHz (target >= {limit:g}: "
            + ("holds)" if mhz >= limit else "does not hold)")
            for device, mhz, limit in measured
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
        "pipelined columns are the PAL MACs with `pipelined=True`.",
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
        lines += ["", "Fmax targets (pipelined PAL MACs):", "", *fmax_lines]
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


def _synthesize(units: list[Unit], targets: Sequence[str], *, jobs: int, with_fmax: bool) -> str:
    """Measure ``units`` (:func:`measure`), ``jobs`` at a time; returns the Yosys version."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for unit in pool.map(lambda u: measure(u, targets, with_fmax=with_fmax), units):
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
            version = _synthesize(units, targets, jobs=jobs, with_fmax=args.fmax)
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
