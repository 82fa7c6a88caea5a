"""Benchmark: encode 10**6 float32 values to pal8 and pal16 with the golden model.

Usage: ``python scripts/bench_encode.py [--count N] [--repeat R] [--seed S]``. Prints the best
and median wall time of ``R`` runs per format, and the best CPU time of the process (less
sensitive to other jobs on the machine); the lookup tables are built before timing.
This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from palhdl.format import pal8, pal16
from palhdl.sim import golden


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10**6, help="values to encode (10**6)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per format (5)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (0)")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    main()
