"""The ``palhdl`` command line: ``palhdl COMMAND [options]``, ``palhdl COMMAND --help``.

The RTL, board and study code is imported only when its command runs, so that ``palhdl --help``
and argument errors answer quickly (Amaranth, ml_dtypes and scikit-learn take seconds to
import). The study commands (``cost``, ``accuracy``, ``arrays``, ``bench-encode``) are modules
with ``add_arguments(parser)`` and ``run(args) -> int``, loaded when their command is parsed.

A user mistake ends in one line naming the parameter and a non-zero exit status: argparse's
usage and error line (status 2) for a malformed or out-of-range option, ``palhdl COMMAND:
error: ...`` for a value the command itself rejects (status 2) and for a failure of the
environment, such as a missing file or serial port (status 1). Everything a command can check
is checked before its work starts, output paths included (:mod:`palhdl.validate`): a long
simulation, demo or build never ends in an error it could have given at once. ``palhdl run``
lives in :mod:`palhdl.runner`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from palhdl.boards.hostlink.framing import MAX_TIMEOUT, check_timeout
from palhdl.format import FORMATS, MacConfig
from palhdl.studies.arguments import integer, pal_format, positive_float
from palhdl.validate import check_output_dir, check_output_file

__all__ = ["STUDIES", "build_parser", "main"]

#: Study commands: name -> (module with ``add_arguments`` and ``run``, one-line help,
#: description).
STUDIES: dict[str, tuple[str, str, str]] = {
    "cost": (
        "palhdl.studies.cost",
        "synthesize the PAL units and baseline MACs and tabulate their cost",
        "Synthesize every PAL unit and the baseline MACs with the YoWASP Yosys (iCE40, ECP5, "
        "generic gates), optionally place and route the MACs for their Fmax, and print the cost "
        "table of docs/units.md (--write updates it).",
    ),
    "accuracy": (
        "palhdl.studies.accuracy_report",
        "print the accuracy tables of docs/format.md (PAL against MX, FP8, INT8, BF16)",
        "Run the accuracy study (Gaussian, Laplace, Student-t 3, Gaussian x log-normal; "
        "per-tensor, per-row/column and block-32 scaling side by side for PAL, pal8 with the "
        "adaptive split, MXINT8, MXFP8 E4M3/E5M2, FP8, INT8 and BF16; the block-scaling "
        "targets; a digits MLP; skewed data) and print it as Markdown. "
        "--write replaces the text between the accuracy markers of a Markdown file, by default "
        "docs/format.md relative to the current directory (run it from the repository root).",
    ),
    "arrays": (
        "palhdl.studies.arrays_report",
        "build PAL, INT8 and FP8 arrays without the host link and find the largest per board",
        "Compare arithmetics on the same board with the same tools: build a bare systolic array "
        "(operands from on-chip LFSRs, results folded onto the LEDs) of one variant (pal8; int8 "
        "with DSP blocks; int8-lut, logic only; fp8, E4M3 logic only; fp8-dsp) through the flow "
        "of palhdl build. With --rows and --cols build that array to a bitstream and print its "
        "report; otherwise search for the largest square-ish array that fits and meets timing "
        "at --freq (a Yosys estimate, then a few place-and-route runs, one at a time) and print "
        "the table; --json keeps the result, --from-json prints saved results together.",
    ),
    "bench": (
        "palhdl.studies.bench.run",
        "measure PAL against INT8, FP8, MX and BF16 in one run and write a report with plots",
        "Run every measurement of the benchmark in one process: MAC cost (area, CMOS "
        "transistors, Fmax over placement seeds), the largest arrays per board, accuracy "
        "(SQNR per format, scaling and distribution; a digits MLP), RTL bit-exactness and "
        "array utilisation, an energy proxy (gate-level toggles) and the speed of the tools. "
        "Writes report.json, report.md and PNG plots into --out. A full run takes an hour or "
        "more on 2 cores (board builds dominate; results of identical place-and-route runs "
        "are reused from the cache); --quick is a smoke run of every section at toy sizes.",
    ),
    "bench-encode": (
        "palhdl.studies.encode_bench",
        "time the golden model's float32 to pal8/pal16 encoding",
        "Encode N(0, 1) float32 values to pal8 and pal16 with the golden model and print the "
        "best and median wall time and the best CPU time of the runs. A benchmark: it asserts "
        "nothing.",
    ),
}

_ARRAY_DIM = (1, 64)
#: Bounds of ``--baud``: the slowest standard rate, and beyond any USB-serial bridge.
_BAUD = (300, 12_000_000)
#: Bound of ``palhdl sim``'s ``-m``, ``-k``, ``-n`` (and of their products, checked by
#: :func:`palhdl.demo.run_random_matmul`): ``2**24``.
_SIM_DIM = (1, 1 << 24)
_positive_timeout = positive_float("timeout")


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser; a study command's options are added when it is parsed."""

    def __init__(self, *args, study: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._study = study

    def parse_known_args(self, args=None, namespace=None):
        """Load the study module, if any, then parse as usual.

        An option given ``--`` as its value (``--format=--``) is refused: argparse drops the
        ``--`` and stores an empty list, unchecked, where one value belongs.
        """
        if self._study is not None:
            module = importlib.import_module(self._study)  # late import, for start-up time
            module.add_arguments(self)
            self.set_defaults(handler=module.run)
            self._study = None
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            value = getattr(namespace, action.dest, None)
            if action.nargs is None and action.option_strings and isinstance(value, list):
                self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return namespace, extras


def _error(command: str, error: Exception, status: int) -> int:
    print(f"palhdl {command}: error: {error}", file=sys.stderr)
    return status


def _demo(args: argparse.Namespace) -> int:
    from palhdl.demo import TEST_DIGITS, run_array_demo  # late import: start-up time (sklearn)
    from palhdl.studies.accuracy import run_demo  # late import, for start-up time (ml_dtypes)

    if args.batch > TEST_DIGITS:
        return _error(
            "demo",
            f"--batch must be in [1, {TEST_DIGITS}] (the digits test set), not {args.batch}",
            2,
        )
    if not args.no_build:
        try:  # before the demo runs: the build comes last
            check_output_dir("--out", args.out)
        except ValueError as error:
            return _error("demo", error, 2)
        except OSError as error:
            return _error("demo", error, 1)
    run_demo(seed=args.seed)
    exact = run_array_demo(rows=args.rows, cols=args.cols, batch=args.batch, seed=args.seed)
    if args.no_build:
        return 0 if exact else 1
    print(
        f"\nBuilding the default iCEBreaker bitstream into {args.out} "
        "(palhdl build --board icebreaker; a few minutes, the first YoWASP run longer):",
        flush=True,
    )
    built = _build(build_parser().parse_args(["build", "--board", "icebreaker", "--out", args.out]))
    return 0 if exact and built == 0 else 1


def _sim(args: argparse.Namespace) -> int:
    from palhdl.demo import run_random_matmul  # late import, for start-up time (Amaranth)

    try:
        if args.vcd is not None:
            suffixes = (".vcd", ".fst") if args.backend == "verilator" else (".vcd",)
            check_output_file("--vcd", args.vcd, suffixes)
        exact = run_random_matmul(
            fmt=args.format,
            rows=args.rows,
            cols=args.cols,
            m=args.m,
            k=args.k,
            n=args.n,
            output=args.output,
            pipelined=args.pipelined,
            seed=args.seed,
            block_size=args.block_size,
            vcd_path=args.vcd,
            backend=args.backend,
        )
    except (TypeError, ValueError) as error:
        return _error("sim", error, 2)
    except (OSError, RuntimeError) as error:  # RuntimeError: simulator missing or build failed
        return _error("sim", error, 1)
    return 0 if exact else 1


def _build(args: argparse.Namespace) -> int:
    from palhdl.synth.build import BuildError, build  # late import, for start-up time

    accumulator = {
        "mantissa_bits": args.mantissa_bits,
        "acc_bits": args.acc_bits,
        "acc_frac_bits": args.acc_frac_bits,
        "term_bits": args.term_bits,
    }
    accumulator = {name: value for name, value in accumulator.items() if value is not None}
    try:
        out = check_output_dir("--out", args.out or f"build-{args.board}")
        config = None
        if accumulator or args.wrap:
            config = MacConfig(FORMATS[args.format], **accumulator, saturate=not args.wrap)
        report = build(
            args.board,
            rows=args.rows,
            cols=args.cols,
            fmt=args.format,
            config=config,
            clk_freq=None if args.freq is None else args.freq * 1e6,
            out_dir=out,
            output=args.output,
            loadable=args.loadable or None,
            block_scaled=args.block_scaled or None,
            k_max=args.k_max,
            baud=args.baud,
            seed=args.seed,
            allow_timing_fail=args.allow_timing_fail,
        )
    except (TypeError, ValueError) as error:
        return _error("build", error, 2)
    except BuildError as error:
        print(f"palhdl build: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        return _error("build", error, 1)
    print(report.to_markdown())
    return 0


def _run(args: argparse.Namespace) -> int:
    from palhdl.runner import run  # late import, for start-up time (Amaranth, pyserial)

    return run(args)


def _timeout(text: str) -> float:
    """``run --timeout``: finite seconds above zero, at most a day (pyserial overflows beyond)."""
    try:
        return check_timeout("timeout", _positive_timeout(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _mac_format(text: str):
    """``sim --format``: a format, as :func:`pal_format` parses it, that a MAC can compute in."""
    fmt = pal_format(text)
    try:
        MacConfig(fmt)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return fmt


def _split_argument(text: str):
    """``--split``: ``auto`` or a format a MAC can compute in (:func:`_mac_format`)."""
    return "auto" if text == "auto" else _mac_format(text)


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="compare PAL accuracy with FP8/INT8/BF16 and run an MLP layer on the RTL array",
        description=(
            "Quantise a small MLP layer to pal8/pal16 (adaptive scaling), multiply with the exact "
            "hardware accumulation, and print the error against float64 next to FP8 E4M3/E5M2, "
            "INT8 and BF16. Then run layer 1 of an MLP trained on scikit-learn's bundled digits "
            "through the simulated RTL systolic array, check it bit for bit against the golden "
            "model and report its error. Finally build the default iCEBreaker bitstream "
            "(palhdl build --board icebreaker) and print its report. Exits 1 if RTL and golden "
            "model differ or the build fails."
        ),
    )
    demo.add_argument(
        "--seed", type=integer("seed", 0), default=0, help="random seed for the data (default 0)"
    )
    demo.add_argument(
        "--rows", type=integer("rows", *_ARRAY_DIM), default=4, help="array rows (default 4)"
    )
    demo.add_argument(
        "--cols", type=integer("cols", *_ARRAY_DIM), default=4, help="array columns (default 4)"
    )
    demo.add_argument(
        "--batch",
        type=integer("batch", 1),
        default=8,
        help="test digits pushed through the RTL, at most the 397 of the test set (default 8)",
    )
    demo.add_argument(
        "--out",
        metavar="DIR",
        default="build-icebreaker",
        help="build directory of the iCEBreaker bitstream (default build-icebreaker)",
    )
    demo.add_argument(
        "--no-build", action="store_true", help="skip building the iCEBreaker bitstream"
    )
    demo.set_defaults(handler=_demo)


def _add_sim(commands) -> None:
    sim = commands.add_parser(
        "sim",
        help="simulate a random matmul on the RTL systolic array",
        description=(
            "Run an M x K @ K x N Gaussian matmul through the simulated PAL systolic array, "
            "check it bit for bit against the golden model and report error and cycles. "
            "Exits 1 if the RTL and the golden model differ."
        ),
    )
    sim.add_argument(
        "--rows", type=integer("rows", *_ARRAY_DIM), default=4, help="array rows, 1..64 (default 4)"
    )
    sim.add_argument(
        "--cols",
        type=integer("cols", *_ARRAY_DIM),
        default=4,
        help="array columns, 1..64 (default 4)",
    )
    sim.add_argument(
        "--format",
        type=_mac_format,
        default="pal8",
        help="pal8, pal16 or I.F with F <= 12 (default pal8)",
    )
    sim.add_argument("-m", type=integer("m", *_SIM_DIM), default=8, help="rows of A (default 8)")
    sim.add_argument(
        "-k", type=integer("k", *_SIM_DIM), default=32, help="columns of A / rows of B (default 32)"
    )
    sim.add_argument("-n", type=integer("n", *_SIM_DIM), default=8, help="columns of B (default 8)")
    sim.add_argument(
        "--output", choices=("float32", "pal", "raw"), default="float32", help="readout mode"
    )
    sim.add_argument("--pipelined", action="store_true", help="pipeline the PE product terms")
    sim.add_argument(
        "--block-size",
        type=integer("block_size", 1, 1 << 30),
        metavar="N",
        help="block scaling: one E8M0 scale per N elements along K (MX uses 32; default: "
        "per-row/column scales)",
    )
    sim.add_argument("--seed", type=integer("seed", 0), default=0, help="random seed (default 0)")
    sim.add_argument(
        "--backend",
        choices=("pysim", "verilator", "icarus"),
        default="pysim",
        help="simulator: Amaranth's Python simulator (default), a compiled Verilator model "
        "(compiled once per array, cached in $PALHDL_CACHE or ~/.cache/palhdl) or Icarus Verilog",
    )
    sim.add_argument(
        "--vcd",
        metavar="FILE",
        help="write a waveform of the simulation (VCD; FST if FILE ends in .fst on verilator)",
    )
    sim.set_defaults(handler=_sim)


def _add_build(commands) -> None:
    build = commands.add_parser(
        "build",
        help="build a bitstream of the host-link accelerator for a board",
        description=(
            "Synthesize, place, route and pack the PAL systolic array with its UART host link "
            "for an FPGA board, using the pip-installed YoWASP Yosys and nextpnr. Writes the "
            "bitstream, report.md and report.json to the output directory. Exits 1 if the "
            "design does not fit or misses timing (the report says by how much)."
        ),
    )
    build.add_argument("--board", required=True, help="icebreaker or ulx3s-85f")
    build.add_argument(
        "--rows", type=integer("rows", *_ARRAY_DIM), help="array rows (default: the board's)"
    )
    build.add_argument(
        "--cols", type=integer("cols", *_ARRAY_DIM), help="array columns (default: the board's)"
    )
    build.add_argument(
        "--format", choices=("pal8", "pal16"), default="pal8", help="operand format (pal8)"
    )
    build.add_argument(
        "--freq", type=positive_float("freq"), metavar="MHZ", help="clock (default: the board's)"
    )
    build.add_argument("--out", metavar="DIR", help="build directory (default build-BOARD)")
    build.add_argument(
        "--output",
        choices=("pal", "float32", "raw"),
        help="readout (default: the board's, raw: converted on the host)",
    )
    build.add_argument(
        "--loadable",
        action="store_true",
        help="PE term tables loadable at run time: palhdl run --split I.F changes the split",
    )
    build.add_argument(
        "--block-scaled",
        action="store_true",
        help="operands carry block offsets: palhdl run --block-size N (block scaling)",
    )
    accumulator = build.add_argument_group(
        "accumulator",
        "The board's default MAC configuration is used unless one of these is given; then the "
        "others take palhdl.format.MacConfig's defaults (a saturating accumulator).",
    )
    accumulator.add_argument("--mantissa-bits", type=int, help="mantissa table width W")
    accumulator.add_argument("--acc-bits", type=int, help="accumulator width")
    accumulator.add_argument("--acc-frac-bits", type=int, help="accumulator fraction bits")
    accumulator.add_argument(
        "--term-bits", type=int, help="product term window (a term >= 2**TERM_BITS overflows)"
    )
    accumulator.add_argument(
        "--wrap", action="store_true", help="wrapping accumulator; overflowing terms dropped"
    )
    build.add_argument("--k-max", type=integer("k_max", 1), default=64, help="deepest K (64)")
    build.add_argument(
        "--baud", type=integer("baud", *_BAUD), default=115200, help="UART rate (115200)"
    )
    build.add_argument(
        "--seed",
        type=integer("seed", 0, (1 << 31) - 1),
        default=1,
        help="nextpnr placement seed (default 1)",
    )
    build.add_argument(
        "--allow-timing-fail", action="store_true", help="pack a bitstream even if timing fails"
    )
    build.set_defaults(handler=_build)


def _add_run(commands) -> None:
    run = commands.add_parser(
        "run",
        help="multiply two .npy matrices on a board over its UART host link",
        description=(
            "Load A (M x K) and B (K x N) from .npy files (values, integer arrays included, "
            "quantised with per-row / per-column adaptive scales; with --codes integer arrays "
            "of PAL codes; a warning counts infinite and NaN inputs), run A @ B tile by "
            "tile on a board built with `palhdl build`, and print or save the result: float32 "
            "by default, whatever the board's readout (a raw readout is converted on the host, "
            "bit-exact; a PAL readout's codes are decoded), or --output pal / raw. On a board "
            "with a loadable product-term table --split I.F loads the table of that split "
            "(default: the bitstream's own), so operands and results are in that format; on a "
            "block-scaled board --block-size N quantises floats with one scale per N elements "
            "along K. --port sim:BOARD runs the core `palhdl build --board BOARD` would build "
            "on Verilator instead (compiled once and cached), behind the same driver."
        ),
    )
    run.add_argument(
        "--port",
        required=True,
        help="serial device, for example /dev/ttyUSB1, or sim:BOARD (sim:icebreaker, "
        "sim:ulx3s-85f): the board's default core on Verilator (--timeout in simulated seconds)",
    )
    run.add_argument("a", help="A as a .npy file")
    run.add_argument("b", help="B as a .npy file")
    run.add_argument(
        "--out",
        metavar="FILE",
        help="save the result there, .npy (.npz for --output raw), checked before the run and "
        "written atomically; if the final write fails the result is saved in the current (or "
        "the temporary) directory, and the command says where and exits 1 (default: print)",
    )
    run.add_argument(
        "--codes",
        action="store_true",
        help="A and B are integer arrays of PAL codes, used as they are (default: every array "
        "holds values, integers included, quantised as floats)",
    )
    run.add_argument(
        "--output",
        choices=("float32", "pal", "raw"),
        default="float32",
        help=(
            "result: float32 (default), pal (PAL codes; boards with the pal or raw readout) or "
            "raw (accumulator records, saved as .npz; boards with the raw readout)"
        ),
    )
    run.add_argument(
        "--baud", type=integer("baud", *_BAUD), default=115200, help="UART rate (115200)"
    )
    run.add_argument(
        "--timeout",
        type=_timeout,
        default=2.0,
        help=f"seconds to wait for a reply to start, at most {MAX_TIMEOUT:g} (default 2); the "
        "rest of a reply gets a per-byte timeout and a limit scaled with its length at --baud",
    )
    run.add_argument(
        "--no-adaptive", action="store_true", help="quantise floats without adaptive scales"
    )
    run.add_argument(
        "--split",
        type=_split_argument,
        metavar="I.F",
        help="operand format of the same width, for example 3.4, or auto: the split "
        "golden.choose_split picks for A and B (a board with a loadable product-term table; "
        "default: the bitstream's format)",
    )
    run.add_argument(
        "--block-size",
        type=integer("block_size", 1, 1 << 30),
        metavar="N",
        help="block scaling of float operands: one E8M0 scale per N elements along K (a "
        "block-scaled board; MX uses 32; default: per-row/column scales)",
    )
    run.set_defaults(handler=_run)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``palhdl`` command line; ``handler`` of its result runs it."""
    parser = argparse.ArgumentParser(
        prog="palhdl",
        description=(
            "palhdl: open PAL logarithmic number formats, Amaranth arithmetic units and a systolic "
            "matmul accelerator, bit-exact against a numpy golden model."
        ),
        epilog="palhdl COMMAND --help describes a command and its options.",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_CommandParser
    )
    _add_demo(commands)
    _add_sim(commands)
    _add_build(commands)
    _add_run(commands)
    for name, (module, summary, description) in STUDIES.items():
        commands.add_parser(name, study=module, help=summary, description=description)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``palhdl`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)
