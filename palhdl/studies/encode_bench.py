"""``palhdl bench-encode``: time encoding float32 values to pal8 and pal16 with the golden model.

Prints the best and median wall time of ``--repeat`` runs per format, and the best CPU time of
the process (less sensitive to other jobs on the machine); the lookup tables are built before
timing. This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from palhdl.format import pal8, pal16
from palhdl.sim import golden
from palhdl.studies.arguments import integer

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``palhdl bench-encode`` to ``parser``."""
    parser.add_argument(
        "--count", type=integer("count", 1), default=10**6, help="values to encode (10**6)"
    )
    parser.add_argument(
        "--repeat", type=integer("repeat", 1), default=5, help="timed runs per format (5)"
    )
    parser.add_argument("--seed", type=integer("seed", 0), default=0, help="data seed (0)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark of ``palhdl bench-encode`` and print its times; exit status 0."""
    values = np.random.default_rng(args.seed).standard_normal(args.count).astype(np.float32)
    print(f"encode {args.count} float32 values (N(0, 1)), best / median of {args.repeat} runs")
    for fmt in (pal8, pal16):
        golden.encode(values[:16], fmt)  # build the tables outside the timed runs
        times, cpu_times = [], []
        for _ in range(args.repeat):
            start, cpu_start = time.perf_counter(), time.process_time()
            golden.encode(values, fmt)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        print(
            f"{fmt.name:>6}: wall best {min(times):.3f} s, "
            f"median {statistics.median(times):.3f} s; CPU best {min(cpu_times):.3f} s"
        )
    return 0
