"""Build a bitstream of the host-link accelerator for a board, and report what it costs.

:func:`build` elaborates a :class:`~palhdl.boards.platforms.BoardTop` around a
:class:`~palhdl.boards.hostlink.core.HostLinkCore`, lets Amaranth's platform generate the RTLIL
netlist and the pin constraints (PCF/LPF), then runs each stage itself in the build directory,
with relative file names (the YoWASP tools see only their working directory). The flow itself
is :func:`build_top`, which builds any top for a board (the comparison arrays of
:mod:`palhdl.synth.arraybuild` use it, optionally with logic only):

=========  ===========================================  ===========================================
stage      iCE40 (iCEBreaker)                           ECP5 (ULX3S)
=========  ===========================================  ===========================================
synth      ``yosys``: ``synth_ice40 -dsp``              ``yosys``: ``synth_ecp5``
place      ``nextpnr-ice40``, ``ICE40_UP5K`` options    ``nextpnr-ecp5``, ``ECP5_85F`` options,
           (``--up5k --package sg48``)                  ``--router router2``
route      (same nextpnr run)                           (same nextpnr run)
pack       ``icepack`` -> ``top.bin``                   ``ecppack --compress`` -> ``top.bit``
=========  ===========================================  ===========================================

The tools run through :mod:`palhdl.synth.toolchain`: the pip-installed YoWASP ones unless the
environment names others (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``,
``ECPPACK``); nextpnr's device options come from the board's
:class:`~palhdl.boards.devices.Device`. The build directory ends up with ``report.md`` and
``report.json`` (:class:`~palhdl.synth.report.BuildReport`), every tool's log, nextpnr's own
``nextpnr-report.json`` and the bitstream.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from amaranth.hdl import Elaboratable

from palhdl.boards.hostlink.core import HostLinkCore
from palhdl.boards.platforms import ECP5PLL, ICE40PLL, Board, BoardTop, get_board
from palhdl.format import FORMATS, MacConfig, PALFormat
from palhdl.progress import StageProgress
from palhdl.synth.cache import ResultCache
from palhdl.synth.report import (
    BuildError,
    BuildReport,
    describe_nextpnr_failure,
    parse_nextpnr_report,
    parse_utilisation,
    resource_rows,
)
from palhdl.synth.toolchain import (
    NEXTPNR,
    ToolError,
    YosysError,
    log_tail,
    run_nextpnr,
    run_tool,
    run_yosys,
    tool_command,
)
from palhdl.synth.yosys import synth_command
from palhdl.validate import (
    check_bool,
    check_choice,
    check_instance,
    check_int,
    check_output_dir,
)

#: RTLIL source-location attributes: they name the checkout's path and line numbers, not the
#: design, so the cache key leaves them out (a clone elsewhere reuses the same results).
_SOURCE_LOCATION = re.compile(rb'^ *attribute \\src "[^"\n]*"\n', re.MULTILINE)

#: Part of every build's cache key (:mod:`palhdl.synth.cache`): raise it when a change to this
#: flow (its nextpnr options, what the report parses) changes the result of the same netlist.
CACHE_FLOW_VERSION = 1

__all__ = [
    "BLOCK_RAMS",
    "CACHE_FLOW_VERSION",
    "FLIP_FLOPS",
    "STAGES",
    "BuildError",
    "build",
    "build_top",
    "check_fit",
    "pll_dividers",
]

#: Stages of a build, in order; :attr:`BuildReport.stage_seconds` has one entry for each.
STAGES = ("elaborate", "synth", "place", "route", "pack")

_NAME = "top"


@dataclass(frozen=True)
class _FamilyFlow:
    """The files and the packer of one device family's build."""

    constraints: str  # suffix of the pin constraints Amaranth writes, and nextpnr's option
    placed_option: str  # nextpnr's option writing the placed and routed design
    placed: str
    packer: str  # tool variable
    pack_arguments: tuple[str, ...]
    bitstream: str


_FLOWS = {
    "ice40": _FamilyFlow(
        constraints="pcf",
        placed_option="--asc",
        placed=f"{_NAME}.asc",
        packer="ICEPACK",
        pack_arguments=(f"{_NAME}.asc", f"{_NAME}.bin"),
        bitstream=f"{_NAME}.bin",
    ),
    "ecp5": _FamilyFlow(
        constraints="lpf",
        placed_option="--textcfg",
        placed=f"{_NAME}.config",
        packer="ECPPACK",
        pack_arguments=("--compress", "--input", f"{_NAME}.config", "--bit", f"{_NAME}.bit"),
        bitstream=f"{_NAME}.bit",
    ),
}


#: Block RAMs of each device (by :attr:`Device.name <palhdl.boards.devices.Device.name>`):
#: the UP5K's 30 4-kbit EBRs, the ECP5-85F's 208 18-kbit ``DP16KD``; each holds one PE
#: product-term table (pal8: 256 x 16, or the ECP5's signed 512 x 13).
BLOCK_RAMS = {"ice40": 30, "ecp5": 208}

#: Flip-flops of each device (one per logic cell / LUT4): 5280 on the UP5K, 83640 on the
#: ECP5-85F. Every PE keeps its ``acc_bits``-wide accumulator in flip-flops.
FLIP_FLOPS = {"ice40": 5280, "ecp5": 83640}


def check_fit(board: Board, *, rows: int, cols: int, term: str, table_ports: int, config) -> None:
    """Reject at once an array that cannot fit ``board``'s device, whatever the tools do.

    Two lower bounds of what ``rows x cols`` PEs need: a product-term table (``term`` other
    than ``"logic"``) takes a block RAM per ``table_ports`` PEs (:data:`BLOCK_RAMS`), and every
    PE's accumulator takes ``config.acc_bits`` flip-flops (:data:`FLIP_FLOPS`). An array that
    passes may still not fit (the host link, the adders); place and route decides that.

    Raises
    ------
    ValueError
        Naming ``rows``/``cols``, the need and the device's count.
    """
    device = board.device
    pes = rows * cols
    tables = -(-pes // table_ports) if term != "logic" else 0
    if tables > BLOCK_RAMS[device.name]:
        largest = BLOCK_RAMS[device.name] * table_ports
        raise ValueError(
            f"rows x cols = {rows} x {cols} cannot fit the {device.title}: {pes} PEs need "
            f"{tables} block RAMs for their product-term tables "
            f"({'one per PE' if table_ports == 1 else f'one per {table_ports} PEs'}), the device "
            f"has {BLOCK_RAMS[device.name]} "
            f"(at most {largest} PEs)"
        )
    flops = pes * config.acc_bits
    if flops > FLIP_FLOPS[device.name]:
        largest = FLIP_FLOPS[device.name] // config.acc_bits
        raise ValueError(
            f"rows x cols = {rows} x {cols} cannot fit the {device.title}: {pes} accumulators of "
            f"{config.acc_bits} bits need {flops} flip-flops, the device has "
            f"{FLIP_FLOPS[device.name]} (at most {largest} PEs)"
        )


def _resolve_config(board: Board, fmt, config) -> MacConfig:
    if isinstance(fmt, str):
        fmt = FORMATS[check_choice("fmt", fmt, FORMATS)]
    if fmt is not None:
        check_instance("fmt", fmt, PALFormat, example="'pal8' or palhdl.format.pal8")
    if config is None:
        return board.default_config(fmt if fmt is not None else FORMATS["pal8"])
    check_instance("config", config, MacConfig)
    if fmt is not None and config.fmt != fmt:
        raise ValueError(f"fmt {fmt} does not match config.fmt {config.fmt}")
    return config


def _check_tools(family: str) -> None:
    """Raise :class:`BuildError` unless every tool the family's build runs is installed."""
    for variable in ("YOSYS", NEXTPNR[family], _FLOWS[family].packer):
        try:
            tool_command(variable)
        except ToolError as error:
            raise BuildError(str(error)) from None


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
    pipelined: bool | None = None,
    loadable: bool | None = None,
    block_scaled: bool | None = None,
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
    pipelined : bool, optional
        Register the PE product terms and the readout converters; default the board's
        (:attr:`Board.pipelined`).
    loadable, block_scaled : bool, optional
        A term table loadable at run time (``LOAD_TABLE``, ``palhdl run --split``) and
        block-scaled operands (``palhdl run --block-size``); default the board's
        (:attr:`Board.loadable`, :attr:`Board.block_scaled`).
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
        For bad parameters (including a frequency the PLL cannot make, and an array that
        cannot fit the device, :func:`check_fit`), before the build directory is created.
    OSError
        ``out_dir`` cannot be created or written (:func:`palhdl.validate.check_output_dir`).
    BuildError
        If a tool fails, the design does not fit the device, or (unless ``allow_timing_fail``)
        a clock misses its constraint; the message has the numbers, and ``report.json`` /
        ``report.md`` are still written.
    """
    board = board if isinstance(board, Board) else get_board(board)
    rows = board.rows if rows is None else check_int("rows", rows, 1)
    cols = board.cols if cols is None else check_int("cols", cols, 1)
    config = _resolve_config(board, fmt, config)
    output = board.output if output is None else output
    clk_freq = board.clk_freq if clk_freq is None else clk_freq
    pipelined = board.pipelined if pipelined is None else check_bool("pipelined", pipelined)
    options = {
        name: getattr(board, name) if value is None else check_bool(name, value)
        for name, value in (("loadable", loadable), ("block_scaled", block_scaled))
    }
    board = replace(board, **options)
    check_bool("allow_timing_fail", allow_timing_fail)
    check_int("seed", seed)
    check_bool("progress", progress)
    pll = board.pll(clk_freq)

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
        pll=None if pll is None else pll_dividers(pll),
        **options,
    )

    pe = board.arithmetic(config, pipelined=pipelined)
    core_parameters = dict(
        rows=rows,
        cols=cols,
        config=config,
        output=output,
        clk_freq=round(report.sync_mhz * 1e6),
        baud=baud,
        k_max=k_max,
        pipelined=pipelined,
        term=pe.term,
        table_ports=pe.table_ports,
        loadable=pe.loadable,
        block_scaled=pe.block_scaled,
    )
    HostLinkCore.check_parameters(**core_parameters)  # before the build directory exists
    check_fit(board, rows=rows, cols=cols, term=pe.term, table_ports=pe.table_ports, config=config)

    def make_top() -> BoardTop:
        return BoardTop(board=board, core=HostLinkCore(**core_parameters), clk_freq=clk_freq)

    return build_top(
        make_top,
        board,
        report,
        out_dir=out_dir,
        seed=seed,
        allow_timing_fail=allow_timing_fail,
        progress=progress,
    )


def build_top(
    make_top: Callable[[], Elaboratable],
    board: Board,
    report,
    *,
    out_dir: str | os.PathLike,
    dsp: bool = True,
    seed: int = 1,
    allow_timing_fail: bool = False,
    pack: bool = True,
    progress: bool = True,
    title: str = "palhdl build",
    cache: ResultCache | None = None,
):
    """Build the top ``make_top()`` returns for ``board``: the flow of :func:`build`, any top.

    The stages are :data:`STAGES` (``pack`` only if ``pack``); ``make_top`` runs in the
    ``elaborate`` stage, and its top (a component without ports, like
    :class:`~palhdl.boards.platforms.BoardTop`) is prepared by the board's platform.

    Parameters
    ----------
    make_top : callable
        Returns the top-level elaboratable.
    board : Board
        The target board: its platform, device, tools and nextpnr options.
    report
        The report to fill: a :class:`~palhdl.synth.report.BuildReport` or a report with the
        same measured attributes (``sync_mhz``, the nextpnr clock constraint, read; and
        ``resources``, ``clocks``, ``critical_path``, ``stage_seconds``, ``bitstream``,
        ``failure`` written), its ``timing_met`` property and ``to_dict``/``to_markdown``.
    out_dir : path
        Build directory (created).
    dsp : bool
        Let Yosys map multipliers to DSP blocks (``synth_ice40 -dsp``, or ``synth_ecp5``
        without ``-nodsp``); :func:`build` always does.
    seed : int
        nextpnr placement seed.
    allow_timing_fail : bool
        Pack and return even if a clock misses its constraint.
    pack : bool
        Pack a bitstream (``False``: stop after place and route, for measurements).
    progress : bool
        Print the stage and elapsed time on stderr.
    title : str
        Name of the build in the progress display.
    cache : ResultCache, optional
        Reuse the report of an identical earlier build (the same netlist, constraints, Yosys
        and nextpnr commands, seed and tool versions; :mod:`palhdl.synth.cache`) instead of
        synthesizing, placing and routing again, and keep this build's report for the next.
        Only for measurements (``pack=False``), and only for a report class with
        ``from_dict`` and a ``measured_at`` attribute, which a reused report has set to when it
        was measured.

    Returns
    -------
    report
        Filled, and written to ``out_dir/report.json`` and ``out_dir/report.md``.

    Raises
    ------
    TypeError, ValueError
        For bad parameters, before any tool runs.
    BuildError
        As :func:`build`; the report, as far as the build got, is attached and written.
    """
    check_bool("dsp", dsp)
    check_int("seed", seed)
    check_bool("allow_timing_fail", allow_timing_fail)
    check_bool("pack", pack)
    check_bool("progress", progress)
    if cache is not None:
        if pack:
            raise ValueError("cache needs pack=False: a bitstream is not cached")
        if not hasattr(type(report), "from_dict") or not hasattr(report, "measured_at"):
            raise TypeError(f"cache needs a report with from_dict and measured_at, not {report!r}")
    out = check_output_dir("out_dir", out_dir)
    _check_tools(board.family)
    out.mkdir(parents=True, exist_ok=True)
    stages = StageProgress(title, stream=sys.stderr, enabled=progress)
    failure = None
    try:
        stages.begin("elaborate")
        _elaborate(out, board, make_top())
        if cache is not None:
            key = _cache_key(out, board, report, dsp=dsp, seed=seed)
            entry = cache.load(key)
            if entry is not None:
                stages.end()
                return _cached_report(out, type(report), entry)
        stages.begin("synth")
        cells = _synthesize(out, board.family, dsp=dsp, abc9=board.abc9)
        stages.begin("place")
        _place_and_route(out, board, report, cells, seed=seed, stages=stages)
        if not report.timing_met and not allow_timing_fail:
            raise BuildError(_timing_failure(report))
        if pack:
            stages.begin("pack")
            report.bitstream = _pack(out, board.family)
    except BuildError as error:
        failure = str(error)
    finally:
        stages.end()
    report.stage_seconds = dict(stages.seconds)
    report.failure = failure
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (out / "report.md").write_text(report.to_markdown())
    if cache is not None:
        cache.store(key, report.to_dict())
    if failure is not None:
        raise BuildError(failure, report)
    return report


def _cache_key(out: Path, board: Board, report, *, dsp: bool, seed: int) -> str:
    """Return the :class:`ResultCache` key of a build of the files :func:`_elaborate` wrote."""
    flow = _FLOWS[board.family]
    netlist = _SOURCE_LOCATION.sub(b"", (out / f"{_NAME}.il").read_bytes())
    files = [netlist, (out / f"{_NAME}.{flow.constraints}").read_bytes()]
    options = {
        "flow": CACHE_FLOW_VERSION,
        "synth": synth_command(board.family, dsp=dsp, top=_NAME, abc9=board.abc9),
        "device": repr(board.device),
        "nextpnr_extra": list(board.nextpnr_extra),
        "seed": seed,
        "sync_mhz": report.sync_mhz,
    }
    return ResultCache.key("build", json.dumps(options, sort_keys=True), *files)


def _cached_report(out: Path, report_class, entry: dict):
    """Return the report of a cache ``entry`` (written to ``out`` too); raise its failure."""
    report = report_class.from_dict(entry["result"])
    report.measured_at = entry["measured_at"]
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (out / "report.md").write_text(report.to_markdown())
    if report.failure is not None:
        raise BuildError(report.failure, report)
    return report


def _elaborate(out: Path, board: Board, top: Elaboratable) -> None:
    """Write the RTLIL netlist of ``top`` and the pin constraints."""
    plan = board.platform().prepare(top, name=_NAME)
    for name in (f"{_NAME}.il", f"{_NAME}.{_FLOWS[board.family].constraints}"):
        (out / name).write_text(plan.files[name])


def _synthesize(out: Path, family: str, *, dsp: bool, abc9: bool) -> dict[str, int]:
    """Synthesize ``top.il`` into ``top.json``; return Yosys' ``{cell type: count}``."""
    script = (
        f"read_rtlil {_NAME}.il\n"
        f"{synth_command(family, dsp=dsp, top=_NAME, abc9=abc9)}\n"
        "tee -q -o synth-stat.json stat -json\n"
        f"write_json {_NAME}.json\n"
    )
    try:
        result = run_yosys(
            script,
            {},
            outputs=["synth-stat.json"],
            directory=out,
            script_name="synth.ys",
            log_name="synth.log",
        )
    except YosysError as error:
        raise BuildError(str(error)) from None
    stat = json.loads(result["synth-stat.json"])
    summary = stat.get("design") or stat["modules"][f"\\{_NAME}"]
    return {str(k): int(v) for k, v in summary["num_cells_by_type"].items()}


def _place_and_route(
    out: Path, board: Board, report: BuildReport, cells: dict, *, seed: int, stages: StageProgress
) -> None:
    """Run nextpnr; fill the report's resources, clocks and critical path.

    The ``"route"`` stage begins when nextpnr starts routing.
    """
    flow = _FLOWS[board.family]

    def watch(line: str) -> None:
        if line.startswith("Info: Routing") and "place" not in stages.seconds:
            stages.begin("route")

    status, log = run_nextpnr(
        board.device,
        [
            *board.nextpnr_extra,
            *("--json", f"{_NAME}.json"),
            *(f"--{flow.constraints}", f"{_NAME}.{flow.constraints}"),
            *(flow.placed_option, flow.placed),
            *("--report", "nextpnr-report.json"),
            *("--freq", f"{report.sync_mhz:.6g}"),
            *("--seed", str(seed)),
            "--timing-allow-fail",
        ],
        cwd=out,
        log_name="pnr.log",
        on_line=watch,
    )
    stages.end()
    report.resources = resource_rows(board.family, parse_utilisation(log), cells)
    if status != 0:
        raise BuildError(describe_nextpnr_failure(board.title, status, log))
    report.clocks, report.critical_path = parse_nextpnr_report(
        json.loads((out / "nextpnr-report.json").read_text())
    )


def _timing_failure(report: BuildReport) -> str:
    misses = ", ".join(
        f"{c.net}: Fmax {c.fmax_mhz:.2f} MHz < {c.constraint_mhz:.2f} MHz"
        for c in report.clocks
        if not c.met
    )
    path = report.critical_path
    if path is None:
        return f"timing not met ({misses})"
    return (
        f"timing not met ({misses}); critical path {path['delay_ns']:.2f} ns from "
        f"{path['start']} to {path['end']}"
    )


def _pack(out: Path, family: str) -> str:
    """Pack the placed design into the bitstream; return its file name."""
    flow = _FLOWS[family]
    command = [*tool_command(flow.packer), *flow.pack_arguments]
    status, log = run_tool(command, cwd=out, log_name="pack.log")
    if status != 0 or not (out / flow.bitstream).is_file():
        raise BuildError(
            f"bitstream packing failed (exit status {status}); end of pack.log:\n{log_tail(log)}"
        )
    return flow.bitstream


def pll_dividers(pll: ICE40PLL | ECP5PLL) -> dict[str, int]:
    """Return the divider settings of ``pll`` by their primitive's parameter names."""
    if isinstance(pll, ICE40PLL):
        return {
            "DIVR": pll.divr,
            "DIVF": pll.divf,
            "DIVQ": pll.divq,
            "FILTER_RANGE": pll.filter_range,
        }
    return {"CLKI_DIV": pll.clki_div, "CLKFB_DIV": pll.clkfb_div, "CLKOP_DIV": pll.clkop_div}
