"""What a bitstream build produced and what it costs: :class:`BuildReport` and its parsers.

:func:`parse_utilisation` reads nextpnr's ``Device utilisation`` table from its log,
:func:`parse_nextpnr_report` the clocks and the critical path from its ``--report`` JSON,
:func:`resource_rows` turns both, with Yosys' cell counts, into the report's utilisation rows,
and :func:`describe_nextpnr_failure` says why place and route failed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from palhdl.synth.toolchain import log_tail

__all__ = [
    "BuildError",
    "BuildReport",
    "ClockTiming",
    "describe_nextpnr_failure",
    "parse_nextpnr_report",
    "parse_utilisation",
    "resource_rows",
]

_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$")

# Report rows: (label, nextpnr BEL type or None, Yosys cell types counted, BEL type whose
# capacity is the denominator, capacity multiplier).
_RESOURCES = {
    "ice40": (
        ("Logic cells (LUT4+FF+carry)", "ICESTORM_LC", (), "ICESTORM_LC", 1),
        ("LUT4 (synthesis)", None, ("SB_LUT4",), "ICESTORM_LC", 1),
        ("FF (synthesis)", None, ("SB_DFF",), "ICESTORM_LC", 1),
        ("Carry (synthesis)", None, ("SB_CARRY",), "ICESTORM_LC", 1),
        ("DSP (SB_MAC16)", "ICESTORM_DSP", (), "ICESTORM_DSP", 1),
        ("BRAM (4 kbit)", "ICESTORM_RAM", (), "ICESTORM_RAM", 1),
        ("SPRAM (256 kbit)", "ICESTORM_SPRAM", (), "ICESTORM_SPRAM", 1),
        ("PLL", "ICESTORM_PLL", (), "ICESTORM_PLL", 1),
        ("IO", "SB_IO", (), "SB_IO", 1),
    ),
    "ecp5": (
        ("LUT4 (incl. carry halves)", "TRELLIS_COMB", (), "TRELLIS_COMB", 1),
        ("FF", "TRELLIS_FF", (), "TRELLIS_FF", 1),
        ("Carry (CCU2C, synthesis)", None, ("CCU2C",), "TRELLIS_COMB", 0.5),
        ("Distributed RAM (synthesis)", None, ("TRELLIS_DPR16X4",), "TRELLIS_RAMW", 1),
        ("DSP (MULT18X18D)", "MULT18X18D", (), "MULT18X18D", 1),
        ("BRAM (DP16KD, 18 kbit)", "DP16KD", (), "DP16KD", 1),
        ("PLL", "EHXPLLL", (), "EHXPLLL", 1),
        ("IO", "TRELLIS_IO", (), "TRELLIS_IO", 1),
    ),
}


class BuildError(RuntimeError):
    """A build failed: a tool error, the design does not fit, or it misses timing.

    The message states which, with the numbers (utilisation, Fmax against the constraint, the
    end of the failing tool's log). ``report`` is the :class:`BuildReport` as far as the build
    got (also written to ``report.json`` / ``report.md``), or ``None`` if no tool ran.
    """

    def __init__(self, message: str, report: BuildReport | None = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class ClockTiming:
    """Timing of one clock: nextpnr's achieved Fmax against the constraint, in MHz."""

    net: str
    fmax_mhz: float
    constraint_mhz: float

    @property
    def met(self) -> bool:
        """The achieved Fmax reaches the constraint."""
        return self.fmax_mhz >= self.constraint_mhz


@dataclass
class BuildReport:
    """What a build produced and what it costs.

    Attributes
    ----------
    board, board_title : str
        :attr:`Board.name` and :attr:`Board.title`.
    rows, cols : int
        Array geometry.
    format : str
        Operand format name.
    mantissa_bits, acc_bits, acc_frac_bits, term_bits : int
        The :class:`~palhdl.format.MacConfig`.
    saturate : bool
        Saturating (``True``) or wrapping accumulator.
    output : str
        Readout mode of the results.
    pipelined : bool
        Whether PE product terms and readout converters are registered.
    k_max, baud : int
        Host-link parameters.
    requested_mhz, sync_mhz : float
        Requested and actually produced ``sync`` frequency.
    pll : dict or None
        The PLL dividers (``None``: ``sync`` is the oscillator).
    resources : dict
        ``{label: {"used": n, "available": n}}``, in report order.
    clocks : list of ClockTiming
        One per clock nextpnr analysed (empty if place and route did not finish).
    critical_path : dict or None
        The worst path of the slowest clock: ``delay_ns``, ``logic_ns``, ``routing_ns``,
        ``logic_levels``, ``start``, ``end`` (cell names).
    stage_seconds : dict
        Wall time of each of :data:`STAGES` that ran.
    bitstream : str or None
        File name of the bitstream in ``out_dir`` (``None`` if none was packed).
    failure : str or None
        Why the build failed (``None``: it succeeded).
    loadable, block_scaled : bool
        The PEs' term tables are loadable at run time (a run-time split); the operands carry
        block offsets (block scaling).
    """

    board: str
    board_title: str
    rows: int
    cols: int
    format: str
    mantissa_bits: int
    acc_bits: int
    acc_frac_bits: int
    term_bits: int
    saturate: bool
    output: str
    pipelined: bool
    k_max: int
    baud: int
    requested_mhz: float
    sync_mhz: float
    pll: dict | None
    resources: dict = field(default_factory=dict)
    clocks: list[ClockTiming] = field(default_factory=list)
    critical_path: dict | None = None
    stage_seconds: dict = field(default_factory=dict)
    bitstream: str | None = None
    failure: str | None = None
    loadable: bool = False
    block_scaled: bool = False

    @property
    def fits(self) -> bool:
        """Every resource's use is within the device's capacity."""
        return all(row["used"] <= row["available"] for row in self.resources.values())

    @property
    def timing_met(self) -> bool:
        """Nextpnr analysed the clocks and every one reaches its constraint."""
        return bool(self.clocks) and all(clock.met for clock in self.clocks)

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
            timing_met=self.timing_met,
            pes=self.pes,
            peak_macs_per_second=self.peak_macs_per_second,
            total_seconds=self.total_seconds,
        )
        return result

    def to_markdown(self) -> str:
        """Return a human-readable report (the contents of ``report.md``)."""
        if self.failure is not None:
            status = f"FAILED: {self.failure}"
        elif not self.timing_met:
            status = "finished, but timing was NOT met (packed with allow_timing_fail)"
        else:
            status = "succeeded"
        if self.pll is None:
            clock = f"{self.sync_mhz:g} MHz straight from the board oscillator"
        else:
            dividers = ", ".join(f"{k}={v}" for k, v in self.pll.items())
            clock = (
                f"requested {self.requested_mhz:g} MHz, PLL ({dividers}) makes "
                f"{self.sync_mhz:g} MHz"
            )
        lines = [
            f"# palhdl build: {self.board_title}",
            "",
            f"Build {status}",
            "",
            f"- Array: {self.rows} x {self.cols} = {self.pes} PEs, {self.format} operands",
            f"- Accumulator: {self.acc_bits} bits, {self.acc_frac_bits} fraction bits, "
            f"{'saturating' if self.saturate else 'wrapping'}, terms below 2**{self.term_bits} "
            f"(linear mantissa {self.mantissa_bits} bits)",
            f"- PEs: product term {'pipelined' if self.pipelined else 'combinational'}, "
            f"{self.output!r} readout"
            + (", loadable term table (run-time split)" if self.loadable else "")
            + (", block-scaled operands" if self.block_scaled else ""),
            f"- Host link: K up to {self.k_max}, UART {self.baud} baud",
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


def parse_utilisation(log: str) -> dict[str, tuple[int, int]]:
    """Read the ``Device utilisation`` table of a nextpnr log: ``{BEL: (used, available)}``.

    nextpnr prints the table after packing, before placement, so a log of a design that does not
    fit has it too. Returns an empty dict if the log has no table.
    """
    table: dict[str, tuple[int, int]] = {}
    inside = False
    for line in log.splitlines():
        if line.startswith("Info: Device utilisation:"):
            inside, table = True, {}
            continue
        match = _UTILISATION_LINE.match(line) if inside else None
        if match:
            table[match[1]] = (int(match[2]), int(match[3]))
        elif inside and table:
            inside = False
    return table


def parse_nextpnr_report(report: dict) -> tuple[list[ClockTiming], dict | None]:
    """Clocks and the critical path from nextpnr's ``--report`` JSON.

    Parameters
    ----------
    report : dict
        The parsed JSON: ``fmax`` maps each clock net to ``{"achieved", "constraint"}`` (MHz);
        ``critical_paths`` lists paths of ``{"type", "delay", "from": {"cell"}, "to": {"cell"}}``
        segments.

    Returns
    -------
    clocks : list of ClockTiming
        Sorted by net name.
    critical_path : dict or None
        Summary of the slowest register-to-register path of the clock with the smallest
        slack (see :attr:`BuildReport.critical_path`); ``None`` if the report has none.

    Raises
    ------
    BuildError
        If ``fmax`` is missing or malformed.
    """
    try:
        clocks = sorted(
            (
                ClockTiming(str(net), float(entry["achieved"]), float(entry["constraint"]))
                for net, entry in report["fmax"].items()
            ),
            key=lambda clock: clock.net,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BuildError(f"nextpnr's report has no usable 'fmax' section ({error!r})") from None
    paths = [
        p
        for p in report.get("critical_paths", [])
        if str(p.get("from", "")).startswith("posedge")
        and str(p.get("to", "")).startswith("posedge")
    ]
    if not paths:
        return clocks, None
    worst = max(paths, key=lambda p: sum(segment["delay"] for segment in p["path"]))
    segments = worst["path"]

    def total(*kinds):
        return sum(s["delay"] for s in segments if s["type"] in kinds)

    summary = {
        "delay_ns": total("clk-to-q", "source", "logic", "routing", "setup"),
        "logic_ns": total("clk-to-q", "source", "logic", "setup"),
        "routing_ns": total("routing"),
        "logic_levels": sum(1 for s in segments if s["type"] == "logic"),
        "start": segments[0]["from"]["cell"],
        "end": segments[-1]["to"]["cell"],
    }
    return clocks, summary


def describe_nextpnr_failure(device: str, status: int, log: str) -> str:
    """Why nextpnr failed, from its exit ``status`` and ``log``, for :class:`BuildError`.

    If a resource of the ``Device utilisation`` table is over capacity: ``"the design does not
    fit the <device>: <BEL> used/available (percent), ..."``. Otherwise the last ``ERROR:`` line,
    the two fullest resources (a placer can fail below 100 %) and the end of the log.
    """
    utilisation = parse_utilisation(log)
    over = [
        f"{bel} {used}/{available} ({used / available:.0%})"
        for bel, (used, available) in utilisation.items()
        if used > available
    ]
    if over:
        return f"the design does not fit the {device}: {', '.join(over)}"
    errors = [line for line in log.splitlines() if line.startswith("ERROR:")]
    ranked = sorted(utilisation.items(), key=lambda item: -item[1][0] / max(item[1][1], 1))
    fullest = ", ".join(
        f"{bel} {used}/{available} ({used / available:.0%})"
        for bel, (used, available) in ranked[:2]
    )
    return (
        f"nextpnr failed (exit status {status}): {errors[-1] if errors else 'no ERROR line'}; "
        f"fullest resources: {fullest or 'unknown'}; end of pnr.log:\n{log_tail(log)}"
    )


def resource_rows(family: str, utilisation: dict, cells: dict) -> dict:
    """Return the utilisation rows of :attr:`BuildReport.resources` for a device ``family``.

    Parameters
    ----------
    family : {"ice40", "ecp5"}
        The device family: it selects the rows.
    utilisation : dict
        nextpnr's table, ``{BEL type: (used, available)}`` (:func:`parse_utilisation`).
    cells : dict
        Yosys' ``{cell type: count}`` of the synthesized netlist.

    Returns
    -------
    dict
        ``{label: {"used": n, "available": n}}``, in report order; rows whose capacity nextpnr
        did not report are left out.
    """
    rows = {}
    for label, bel, cell_types, capacity, factor in _RESOURCES[family]:
        if capacity not in utilisation:
            continue
        if bel is not None:
            used = utilisation[bel][0]
        else:
            used = sum(n for cell, n in cells.items() if cell.startswith(cell_types))
        rows[label] = {"used": used, "available": int(utilisation[capacity][1] * factor)}
    return rows
