"""The ``palhdl`` command line."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from palhdl.sim.accuracy import run_demo

    run_demo(seed=args.seed)
    return 0


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
        help="run a real-looking matmul through the golden model and compare accuracy",
        description=(
            "Quantise a small MLP layer to pal8/pal16 (adaptive scaling), multiply with the exact "
            "hardware accumulation, and print the error against float64 next to FP8 E4M3/E5M2, "
            "INT8 and BF16."
        ),
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed for the data (default 0)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
