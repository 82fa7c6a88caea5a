"""The ``palhdl`` command line."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from palhdl.sim.accuracy import run_demo
    from palhdl.sim.demo import run_array_demo

    run_demo(seed=args.seed)
    exact = run_array_demo(rows=args.rows, cols=args.cols, batch=args.batch, seed=args.seed)
    return 0 if exact else 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _array_dim(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, 64], not {text}")
    return value


def _format(text: str):
    from palhdl.sim.format import parse_format

    try:
        return parse_format(text)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _sim(args: argparse.Namespace) -> int:
    from palhdl.sim.demo import run_random_matmul

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
        vcd_path=args.vcd,
    )
    return 0 if exact else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="palhdl",
        description=(
            "palhdl: open PAL logarithmic number formats, Amaranth arithmetic units and a systolic "
            "matmul accelerator, bit-exact against a numpy golden model."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser(
        "demo",
        help="compare PAL accuracy with FP8/INT8/BF16 and run an MLP layer on the RTL array",
        description=(
            "Quantise a small MLP layer to pal8/pal16 (adaptive scaling), multiply with the exact "
            "hardware accumulation, and print the error against float64 next to FP8 E4M3/E5M2, "
            "INT8 and BF16. Then run layer 1 of an MLP trained on scikit-learn's bundled digits "
            "through the simulated RTL systolic array, check it bit for bit against the golden "
            "model and report its error. Exits 1 if RTL and golden model differ."
        ),
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed for the data (default 0)")
    demo.add_argument("--rows", type=_array_dim, default=4, help="array rows (default 4)")
    demo.add_argument("--cols", type=_array_dim, default=4, help="array columns (default 4)")
    demo.add_argument(
        "--batch", type=_positive, default=8, help="digits pushed through the RTL (default 8)"
    )
    demo.set_defaults(handler=_demo)

    sim = commands.add_parser(
        "sim",
        help="simulate a random matmul on the RTL systolic array",
        description=(
            "Run an M x K @ K x N Gaussian matmul through the simulated PAL systolic array, "
            "check it bit for bit against the golden model and report error and cycles. "
            "Exits 1 if the RTL and the golden model differ."
        ),
    )
    sim.add_argument("--rows", type=_array_dim, default=4, help="array rows, 1..64 (default 4)")
    sim.add_argument("--cols", type=_array_dim, default=4, help="array columns, 1..64 (default 4)")
    sim.add_argument(
        "--format", type=_format, default="pal8", help="pal8, pal16 or I.F (default pal8)"
    )
    sim.add_argument("-m", type=_positive, default=8, help="rows of A (default 8)")
    sim.add_argument("-k", type=_positive, default=32, help="columns of A / rows of B (default 32)")
    sim.add_argument("-n", type=_positive, default=8, help="columns of B (default 8)")
    sim.add_argument(
        "--output", choices=("float32", "pal", "raw"), default="float32", help="readout mode"
    )
    sim.add_argument("--pipelined", action="store_true", help="pipeline the PE product terms")
    sim.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sim.add_argument("--vcd", metavar="FILE", help="write a VCD waveform of the simulation")
    sim.set_defaults(handler=_sim)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
