"""Fuzzing the ``palhdl`` command line (issue 14): generated option values for ``sim``, ``run``,
``build`` and ``demo`` either get past every check or end in exactly one error line naming an
option, with a non-zero status and no traceback.

No example does real work: each command's work starts at one function (the tiling driver for
``sim``, the host link for ``run``, the tool flow for ``build``, the accuracy demo for
``demo``), which is replaced by one raising :class:`Reached`, so an accepted vector stops there.
``palhdl sim``'s element limit is lowered for the same reason (its check is unchanged).
Whether each value is acceptable is decided here, independently of the CLI, from the documented
ranges; a vector with a value outside them must not reach the work and must be refused naming
an option (the first invalid one argparse meets, or another invalid one).

Hypothesis runs derandomised, without deadlines, with explicit example counts (CI is
reproducible).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from palhdl.cli import main

FUZZ = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


class Reached(Exception):
    """The command got past its checks to the work."""


def _reached(*_args, **_kwargs):
    raise Reached


# --- values: text with an independent verdict ---------------------------------------------------

GARBAGE = ["", "x", "nan", "inf", "-inf", "1e3", "2.5", "0x10", "--", "-", "١٢", "1_0", " 7"]


def _int_text(lo: int, hi: int):
    """Text for an integer option in ``[lo, hi]``: in range, near the bounds, huge, garbage."""
    near = [lo - 1, lo, hi, hi + 1] if hi is not None else [lo - 1, lo]
    return st.one_of(
        st.integers(lo, hi if hi is not None else lo + 1000).map(str),
        st.sampled_from(near).map(str),
        st.integers(-(10**30), 10**30).map(str),
        st.sampled_from(GARBAGE),
        st.text(max_size=6),
    )


def _int_ok(lo: int, hi: int | None):
    def ok(text: str) -> bool:
        try:
            value = int(text)  # the documented syntax: Python's integer literals
        except ValueError:
            return False
        return value >= lo and (hi is None or value <= hi)

    return ok


def _float_text():
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.floats(min_value=1e-3, max_value=1e3).map(repr),
        st.sampled_from(GARBAGE),
        st.text(max_size=6),
    )


def _positive_float_ok(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value > 0


def _choice_text(choices):
    return st.one_of(st.sampled_from(choices), st.sampled_from(GARBAGE), st.text(max_size=6))


class Option:
    """One option: its flag, the names an error may give it, a value strategy and a verdict."""

    def __init__(self, flag, names, values, ok):
        self.flag, self.names, self.values, self.ok = flag, names, values, ok


def _integer_option(flag, name, lo, hi=None):
    return Option(flag, (flag, name), _int_text(lo, hi), _int_ok(lo, hi))


@pytest.fixture
def paths(tmp_path):
    """Output paths of every kind, by name; ``ok`` paths can be written."""
    (tmp_path / "file").write_text("")
    (tmp_path / "dir").mkdir()
    return {
        "missing-dir": str(tmp_path / "missing" / "x"),
        "dir": str(tmp_path / "dir"),
        "under-file": str(tmp_path / "file" / "x"),
        "file": str(tmp_path / "file"),
        "proc": "/proc/x",
        "dev-null": "/dev/null/x",
        "ok": str(tmp_path / "new"),
    }


PATH_KINDS = ["missing-dir", "dir", "under-file", "file", "proc", "dev-null", "ok"]


def _out_value(kind: str, paths, suffix: str) -> str:
    return paths[kind] + (suffix if kind in ("ok", "missing-dir", "proc", "dev-null") else "")


def _run_main(argv):
    err, out = io.StringIO(), io.StringIO()
    reached = False
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            status = main(argv)
        except SystemExit as done:
            status = done.code
        except Reached:
            reached, status = True, None
    return reached, status, err.getvalue()


def _check(argv, given_options, invalid, reached, status, err):
    """The property: accepted only if every value is valid; else one line naming an option."""
    assert "Traceback" not in err, err
    event("reached the work" if reached else f"refused, status {status}")
    if reached:
        assert not invalid, f"{argv}: invalid {[o.flag for o in invalid]} reached the work"
        return
    assert status not in (0, None), (argv, status, err)
    lines = [line for line in err.splitlines() if not line.startswith((" ", "usage:"))]
    assert len(lines) == 1, (argv, err)
    assert lines[0].startswith(f"palhdl {argv[0]}: "), (argv, err)
    blamed = invalid or given_options
    named = [
        o
        for o in blamed
        if any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w])", lines[0]) for n in o.names)
    ]
    assert named, f"{argv}: {lines[0]!r} names none of {[o.flag for o in blamed]}"


def _vector(draw, command, options, fixed=()):
    chosen = draw(st.lists(st.sampled_from(options), unique_by=lambda o: o.flag, max_size=4))
    argv, invalid = [command, *fixed], []
    for option in chosen:
        value = draw(option.values)
        argv += [f"{option.flag}={value}"]  # "=": a value starting with "-" stays a value
        if not option.ok(value):
            invalid.append(option)
    return argv, chosen, invalid


# --- palhdl sim ---------------------------------------------------------------------------------

SIM_LIMIT = 1 << 12  # palhdl.demo.MAX_ELEMENTS, lowered so accepted vectors allocate little


def _format_ok(text: str) -> bool:
    if text in ("pal8", "pal16"):
        return True
    match = re.fullmatch(r"([0-9]+)\.([0-9]+)", text)
    if not match:
        return False
    # I.F: I >= 2, 1 <= F <= 12 (the MAC's tables of 2**F entries), a word of <= 32 bits.
    int_bits, frac_bits = int(match[1]), int(match[2])
    return int_bits >= 2 and 1 <= frac_bits <= 12 and 1 + int_bits + frac_bits <= 32


SIM_OPTIONS = [
    _integer_option("--rows", "rows", 1, 64),
    _integer_option("--cols", "cols", 1, 64),
    _integer_option("-m", "m", 1, 1 << 24),
    _integer_option("-k", "k", 1, 1 << 24),
    _integer_option("-n", "n", 1, 1 << 24),
    _integer_option("--seed", "seed", 0),
    _integer_option("--block-size", "block_size", 1, 1 << 30),
    Option(
        "--format",
        ("--format", "format", "int_bits", "frac_bits"),
        st.one_of(
            st.sampled_from(["pal8", "pal16", "4.3", "3.4", "2.13", "1.3", "2.12", "40.30"]),
            st.text(max_size=5),
        ),
        _format_ok,
    ),
    Option(
        "--output",
        ("--output", "output"),
        _choice_text(["float32", "pal", "raw"]),
        lambda t: t in ("float32", "pal", "raw"),
    ),
]


@st.composite
def sim_vectors(draw, paths):
    argv, chosen, invalid = _vector(draw, "sim", SIM_OPTIONS)
    if draw(st.booleans()):
        kind = draw(st.sampled_from(PATH_KINDS))
        suffix = draw(st.sampled_from([".vcd", ".fst", ".txt"]))
        vcd = Option("--vcd", ("--vcd",), None, None)
        argv += ["--vcd", _out_value(kind, paths, suffix)]
        chosen = [*chosen, vcd]
        if kind != "ok" or suffix != ".vcd":
            invalid.append(vcd)
    return argv, chosen, invalid


def _sim_products_ok(argv) -> bool:
    values = dict(item.split("=", 1) for item in argv[1:] if "=" in item)
    m, k, n = (
        int(values.get(flag, default)) for flag, default in (("-m", 8), ("-k", 32), ("-n", 8))
    )
    return max(m * k, k * n, m * n) <= SIM_LIMIT


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_fuzz_sim_options(data, paths, monkeypatch):
    monkeypatch.setattr("palhdl.demo.matmul", _reached)
    monkeypatch.setattr("palhdl.demo.MAX_ELEMENTS", SIM_LIMIT)
    argv, chosen, invalid = data.draw(sim_vectors(paths))
    reached, status, err = _run_main(argv)
    if reached and not invalid:
        assert _sim_products_ok(argv), f"{argv}: sizes above the limit reached the work"
    _check(argv, chosen, invalid, reached, status, err)


# --- palhdl run -------------------------------------------------------------------------------


def _split_ok(text: str) -> bool:
    return text == "auto" or _format_ok(text) or text in ("pal8", "pal16")


RUN_OPTIONS = [
    Option(
        "--timeout",
        ("--timeout", "timeout"),
        _float_text(),
        lambda t: _positive_float_ok(t) and float(t) <= 86400,
    ),
    _integer_option("--baud", "baud", 300, 12_000_000),
    _integer_option("--block-size", "block_size", 1, 1 << 30),
    Option(
        "--output",
        ("--output", "output"),
        _choice_text(["float32", "pal", "raw"]),
        lambda t: t in ("float32", "pal", "raw"),
    ),
    Option(
        "--split",
        ("--split", "split", "format", "int_bits", "frac_bits"),
        st.one_of(st.sampled_from(["auto", "3.4", "5.2", "2.13", "pal9"]), st.text(max_size=4)),
        _split_ok,
    ),
]

#: Operand files: name -> (array or raw bytes, valid as values, valid as codes).
OPERANDS = {
    "floats": (np.ones((2, 2)), True, False),
    "ints": (np.arange(4).reshape(2, 2), True, True),
    "empty": (b"", False, False),
    "text": (b"1 2\n3 4\n", False, False),
    "objects": (np.array([[1, "x"]], dtype=object), False, False),
    "missing": (None, False, False),
}


@pytest.fixture
def operands(tmp_path):
    files = {}
    for name, (content, _, _) in OPERANDS.items():
        path = tmp_path / f"{name}.npy"
        if isinstance(content, np.ndarray):
            np.save(path, content, allow_pickle=content.dtype == object)
        elif content is not None:
            path.write_bytes(content)
        files[name] = str(path)
    return files


@st.composite
def run_vectors(draw, paths, operands):
    a_name, b_name = (
        draw(st.sampled_from(sorted(OPERANDS))),
        draw(st.sampled_from(sorted(OPERANDS))),
    )
    codes = draw(st.booleans())
    argv, chosen, invalid = _vector(
        draw, "run", RUN_OPTIONS, fixed=["--port", paths["dir"] + "/tty"]
    )
    argv += [operands[a_name], operands[b_name]] + (["--codes"] if codes else [])
    for name, path in ((a_name, operands[a_name]), (b_name, operands[b_name])):
        _, as_values, as_codes = OPERANDS[name]
        if not (as_codes if codes else as_values):
            option = Option(path, (path, "--codes"), None, None)
            chosen, invalid = [*chosen, option], [*invalid, option]
    if draw(st.booleans()):
        kind = draw(st.sampled_from(PATH_KINDS))
        suffix = draw(st.sampled_from([".npy", ".npz", ".txt"]))
        out = Option("--out", ("--out",), None, None)
        argv += ["--out", _out_value(kind, paths, suffix)]
        chosen = [*chosen, out]
        raw = "--output=raw" in argv
        if kind != "ok" or suffix != (".npz" if raw else ".npy"):
            invalid.append(out)
    return argv, chosen, invalid


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_fuzz_run_options(data, paths, operands, monkeypatch):
    monkeypatch.setattr("palhdl.runner.HostLink", _reached)
    monkeypatch.setattr("palhdl.runner.open_simulated_board", _reached)
    argv, chosen, invalid = data.draw(run_vectors(paths, operands))
    _check(argv, chosen, invalid, *_run_main(argv))


# --- palhdl build -------------------------------------------------------------------------------

BUILD_OPTIONS = [
    _integer_option("--rows", "rows", 1, 64),
    _integer_option("--cols", "cols", 1, 64),
    Option("--freq", ("--freq", "freq", "clk_freq"), _float_text(), _positive_float_ok),
    _integer_option("--k-max", "k_max", 1),
    _integer_option("--baud", "baud", 300, 12_000_000),
    _integer_option("--seed", "seed", 0, (1 << 31) - 1),
    Option("--acc-bits", ("--acc-bits", "acc_bits"), _int_text(8, 62), _int_ok(-(10**40), None)),
    Option("--term-bits", ("--term-bits", "term_bits"), _int_text(2, 40), _int_ok(-(10**40), None)),
    Option(
        "--format",
        ("--format", "format"),
        _choice_text(["pal8", "pal16"]),
        lambda t: t in ("pal8", "pal16"),
    ),
    Option(
        "--output",
        ("--output", "output"),
        _choice_text(["pal", "float32", "raw"]),
        lambda t: t in ("pal", "float32", "raw"),
    ),
]


@st.composite
def build_vectors(draw, paths):
    board = draw(st.sampled_from(["icebreaker", "ulx3s-85f"]))
    argv, chosen, invalid = _vector(draw, "build", BUILD_OPTIONS, fixed=["--board", board])
    kind = draw(st.sampled_from(PATH_KINDS))
    out = Option("--out", ("--out",), None, None)
    argv += ["--out", _out_value(kind, paths, "")]
    chosen = [*chosen, out]
    if kind not in ("ok", "dir", "missing-dir"):
        invalid.append(out)
    return argv, chosen, invalid


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_fuzz_build_options(data, paths, monkeypatch):
    # The accumulator options' ranges depend on each other (MacConfig): any integer is fine
    # here, and an error naming one of the given options is the property.
    monkeypatch.setattr("palhdl.synth.build.build_top", _reached)
    argv, chosen, invalid = data.draw(build_vectors(paths))
    _check(argv, chosen, invalid, *_run_main(argv))
    assert not os.path.exists(paths["ok"])  # checks leave no directory behind


# --- palhdl demo --------------------------------------------------------------------------------

DEMO_OPTIONS = [
    _integer_option("--seed", "seed", 0),
    _integer_option("--rows", "rows", 1, 64),
    _integer_option("--cols", "cols", 1, 64),
    _integer_option("--batch", "batch", 1, 397),
]


@st.composite
def demo_vectors(draw, paths):
    argv, chosen, invalid = _vector(draw, "demo", DEMO_OPTIONS)
    if draw(st.booleans()):
        argv.append("--no-build")
    elif draw(st.booleans()):
        kind = draw(st.sampled_from(PATH_KINDS))
        out = Option("--out", ("--out",), None, None)
        argv += ["--out", _out_value(kind, paths, "")]
        chosen = [*chosen, out]
        if kind not in ("ok", "dir", "missing-dir"):
            invalid.append(out)
    return argv, chosen, invalid


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_fuzz_demo_options(data, paths, monkeypatch):
    monkeypatch.setattr("palhdl.studies.accuracy.run_demo", _reached)
    monkeypatch.chdir(paths["dir"])  # the default --out, build-icebreaker, is created nowhere
    argv, chosen, invalid = data.draw(demo_vectors(paths))
    _check(argv, chosen, invalid, *_run_main(argv))
