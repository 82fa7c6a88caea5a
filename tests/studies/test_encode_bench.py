"""Tests of the encode benchmark (``palhdl.studies.encode_bench``, ``palhdl bench-encode``)."""

import argparse
import re

from palhdl.studies import encode_bench


def _parse(argv):
    parser = argparse.ArgumentParser()
    encode_bench.add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults():
    args = _parse([])
    assert (args.count, args.repeat, args.seed) == (10**6, 5, 0)


def test_run_prints_a_line_per_format(capsys):
    assert encode_bench.run(_parse(["--count", "200", "--repeat", "2", "--seed", "3"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "encode 200 float32 values (N(0, 1)), best / median of 2 runs"
    timing = r"wall best \d+\.\d{3} s, median \d+\.\d{3} s; CPU best \d+\.\d{3} s"
    assert re.fullmatch(rf"  pal8: {timing}", lines[1])
    assert re.fullmatch(rf" pal16: {timing}", lines[2])
    assert len(lines) == 3
