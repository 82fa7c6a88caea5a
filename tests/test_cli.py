"""Tests of the ``palhdl`` command line surface (``palhdl.cli``).

Every command's ``--help``, the one-line errors of bad arguments (never a traceback), and the
study commands on small inputs. The RTL commands run in ``tests/test_demo.py``, ``build`` in
``tests/synth/test_build.py`` and ``run`` in ``tests/boards/hostlink/test_pty.py``.
"""

import re

import numpy as np
import pytest

from palhdl.cli import main
from palhdl.studies import accuracy_report
from palhdl.studies.accuracy_report import BEGIN, END

COMMANDS = {
    "demo": "compare PAL accuracy with FP8/INT8/BF16",
    "sim": "simulate a random matmul on the RTL systolic array",
    "build": "build a bitstream of the host-link accelerator",
    "run": "multiply two .npy matrices on a board",
    "cost": "synthesize the PAL units and baseline MACs",
    "accuracy": "print the accuracy tables of docs/format.md",
    "arrays": "build PAL, INT8 and FP8 arrays without the host link",
    "bench-encode": "time the golden model's float32 to pal8/pal16 encoding",
}


def _exit_status(argv) -> int:
    """``main(argv)``'s status, whether returned or raised by argparse as ``SystemExit``."""
    try:
        return main(argv)
    except SystemExit as done:
        return done.code


def test_help_lists_every_command_with_its_summary(capsys):
    assert _exit_status(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for name, summary in COMMANDS.items():
        assert re.search(rf"\b{re.escape(name)} {re.escape(summary)}", out), name


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command, capsys):
    assert _exit_status([command, "--help"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"usage: palhdl {command} ")
    assert captured.err == ""


BAD_ARGUMENTS = [
    (["sim", "--rows", "x"], "argument --rows: invalid int value: 'x'"),
    (["sim", "--rows", "0"], "argument --rows: rows must be in [1, 64], not 0"),
    (["sim", "--cols", "65"], "argument --cols: cols must be in [1, 64], not 65"),
    (["sim", "-m", "0"], "argument -m: m must be in [1, 16777216], not 0"),
    (["sim", "-k", "2.5"], "argument -k: invalid int value: '2.5'"),
    (["sim", "-n", "-1"], "argument -n: n must be in [1, 16777216], not -1"),
    (["sim", "--seed", "-1"], "argument --seed: seed must be in [0, inf], not -1"),
    (["sim", "--format", "pal9"], "argument --format: format must be one of"),
    (["sim", "--format", "1.3"], "argument --format: int_bits must be in [2, inf], not 1"),
    (["sim", "--output", "hex"], "argument --output: invalid choice: 'hex'"),
    (["sim", "--block-size", "0"], "argument --block-size: block_size must be in [1, 1073741824]"),
    (["demo", "--batch", "0"], "argument --batch: batch must be in [1, inf], not 0"),
    (["demo", "--rows", "many"], "argument --rows: invalid int value: 'many'"),
    (["build", "--board", "icebreaker", "--freq", "fast"], "argument --freq: invalid float"),
    (["build", "--board", "icebreaker", "--freq", "0"], "argument --freq: freq must be a positive"),
    (["build", "--board", "icebreaker", "--freq", "nan"], "argument --freq: freq must be a"),
    (["build", "--board", "icebreaker", "--format", "pal9"], "argument --format: invalid choice"),
    (["build", "--board", "icebreaker", "--k-max", "0"], "argument --k-max: k_max must be in"),
    (["build", "--board", "icebreaker", "--acc-bits", "wide"], "argument --acc-bits: invalid int"),
    (["build", "--rows", "4"], "the following arguments are required: --board"),
    (["run", "--port", "p", "a", "b", "--timeout", "0"], "argument --timeout: timeout must be"),
    (["run", "--port", "p", "a", "b", "--baud", "9k"], "argument --baud: invalid int value"),
    (["accuracy", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
    (["bench-encode", "--count", "0"], "argument --count: count must be in [1, inf], not 0"),
    (["bench-encode", "--repeat", "twice"], "argument --repeat: invalid int value: 'twice'"),
    (["cost", "--jobs", "0"], "--jobs"),
    (["arrays", "--rows", "0"], "argument --rows: rows must be in [1, 64], not 0"),
    (["arrays", "--cols", "x"], "argument --cols: invalid int value: 'x'"),
    (["arrays", "--freq", "0"], "argument --freq: freq must be a positive"),
    (["arrays", "--max-builds", "0"], "argument --max-builds: max_builds must be in [1, inf]"),
    (["arrays", "--board", "icebreaker"], "--arithmetic is required (unless --from-json)"),
    (["cost", "--formats", "pal9"], "--formats"),
    (["simulate"], "argument COMMAND: invalid choice: 'simulate'"),
    ([], "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS)
def test_bad_argument_is_one_line_naming_it(argv, message, capsys):
    assert _exit_status(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    command = f"palhdl {argv[0]}" if argv and argv[0] in COMMANDS else "palhdl"
    errors = [line for line in captured.err.splitlines() if not line.startswith((" ", "usage:"))]
    assert len(errors) == 1, captured.err
    assert errors[0].startswith(f"{command}: error: ")
    assert message in errors[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--board", "nope"], "board must be one of 'icebreaker', 'ulx3s-85f'"),
        (["--board", "icebreaker", "--acc-bits", "4"], "acc_bits must be in [8, 62], not 4"),
    ],
)
def test_value_build_rejects_is_one_line(argv, message, capsys, tmp_path):
    assert main(["build", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"palhdl build: error: {message}") and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_build_into_an_impossible_directory_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["build", "--board", "icebreaker", "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("palhdl build: error: --out ") and "is a file, not a directory" in err
    assert len(err.splitlines()) == 1


def test_run_with_missing_input_files_is_one_line(tmp_path, capsys):
    missing = tmp_path / "a.npy"
    argv = ["run", "--port", str(tmp_path / "tty"), str(missing), str(missing)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("palhdl run: error: a: ") and "a.npy" in err
    assert len(err.splitlines()) == 1


def test_run_with_a_missing_serial_port_is_one_line(tmp_path, capsys):
    a = tmp_path / "a.npy"
    np.save(a, np.ones((2, 2)))
    assert main(["run", "--port", str(tmp_path / "tty"), str(a), str(a)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("palhdl run: error: ") and "tty" in err and len(err.splitlines()) == 1


def test_accuracy_prints_the_report_and_writes_it_between_the_markers(
    tmp_path, monkeypatch, capsys
):
    # The full-size study takes seconds: the plumbing is checked with a stand-in report here,
    # the real one in test_accuracy_full_report and tests/studies/test_accuracy_report.py.
    monkeypatch.setattr(accuracy_report, "report", lambda seed: f"| table of seed {seed} |\n")
    doc = tmp_path / "format.md"
    doc.write_text(f"# Format\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n")
    assert main(["accuracy", "--seed", "3", "--write", str(doc)]) == 0
    assert capsys.readouterr().out == "| table of seed 3 |\n"
    assert doc.read_text() == f"# Format\n\nbefore\n{BEGIN}\n| table of seed 3 |\n{END}\nafter\n"
    assert main(["accuracy"]) == 0
    assert capsys.readouterr().out == "| table of seed 0 |\n"


@pytest.mark.slow
def test_accuracy_full_report(tmp_path, capsys):
    doc = tmp_path / "format.md"
    doc.write_text(f"# Format\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n")
    assert main(["accuracy", "--write", str(doc)]) == 0
    out = capsys.readouterr().out
    assert doc.read_text() == f"# Format\n\nbefore\n{BEGIN}\n{out}{END}\nafter\n"
    assert out.startswith("Generated by `palhdl accuracy --write` (seed 0;")
    assert "256 × 256 array" in out and "`a` (64 × 256) and `b` (256 × 64)" in out
    for title in ("Gaussian N(0, 1)", "Laplace", "Student's t", "log-normal", "skewed data"):
        assert title in out
    pal8_rows = re.findall(r"^\| pal8 \(4\.3\) +\| +8 \| +row/col 2\^s \|", out, re.MULTILINE)
    assert len(pal8_rows) == 4  # one per distribution


def test_accuracy_write_default_is_relative_to_the_current_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["accuracy", "--write"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("palhdl accuracy: error: ") and "docs/format.md" in err


def test_bench_encode_runs_on_a_few_values(capsys):
    assert main(["bench-encode", "--count", "100", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("encode 100 float32 values")
    assert "  pal8: wall best" in out and " pal16: wall best" in out


def test_sim_runs_a_tiny_matmul(capsys):
    argv = ["sim", "--rows", "1", "--cols", "2", "-m", "1", "-k", "2", "-n", "2", "--seed", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("1x2 @ 2x2 Gaussian matmul on a simulated 1x2 pal8 array")
    assert "bit-exact with golden.matmul:  yes" in out


def test_sim_runs_a_block_scaled_matmul(capsys):
    argv = ["sim", "--rows", "2", "--cols", "2", "-m", "2", "-k", "9", "-n", "3"]
    assert main([*argv, "--block-size", "4", "--format", "3.4", "--output", "raw"]) == 0
    out = capsys.readouterr().out
    assert "pal8_i3f4 array" in out and "blocks of 4)" in out
    assert "raw accumulators bit-exact with golden.matmul: yes" in out


# --- issue 14: every user mistake is one line and a non-zero exit, before any work -------------

ISSUE_14_BAD_ARGUMENTS = [
    (["sim", "--format", "2.13"], "argument --format: MacConfig needs tables", 2),
    (["sim", "-m", "1000000000"], "argument -m: m must be in [1, 16777216], not 1000000000", 2),
    (["sim", "--seed", "-1"], "argument --seed: seed must be in [0, inf], not -1", 2),
    (["demo", "--seed", "-1"], "argument --seed: seed must be in [0, inf], not -1", 2),
    (["run", "--port", "p", "a", "b", "--timeout", "inf"], "argument --timeout: timeout must", 2),
    (["run", "--port", "p", "a", "b", "--timeout", "nan"], "argument --timeout: timeout must", 2),
    (["run", "--port", "p", "a", "b", "--timeout", "1e10"], "timeout must be at most 86400", 2),
    (["run", "--port", "p", "a", "b", "--split", "2.13"], "argument --split: MacConfig needs", 2),
    (["build", "--board", "icebreaker", "--baud", "1"], "argument --baud: baud must be in", 2),
    (["build", "--board", "icebreaker", "--seed", "-1"], "argument --seed: seed must be in", 2),
]


@pytest.mark.parametrize(("argv", "message", "status"), ISSUE_14_BAD_ARGUMENTS)
def test_issue_14_argument_is_one_line(argv, message, status, capsys):
    assert _exit_status(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if not line.startswith((" ", "usage:"))]
    assert errors == [errors[0]] and errors[0].startswith(f"palhdl {argv[0]}: error: ")
    assert message in errors[0]


def _one_error_line(capsys, prefix: str, *parts: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(prefix), err
    for part in parts:
        assert part in err, err
    return err


def test_sim_sizes_whose_product_is_too_large_are_one_line(capsys):
    assert main(["sim", "-m", "100000", "-k", "100000"]) == 2
    _one_error_line(capsys, "palhdl sim: error: m x k = 10000000000 elements", "2**24")


def test_sim_vcd_into_a_missing_directory_is_one_line(tmp_path, capsys):
    vcd = tmp_path / "missing" / "wave.vcd"
    assert main(["sim", "-m", "1", "-k", "1", "-n", "1", "--vcd", str(vcd)]) == 1
    _one_error_line(capsys, "palhdl sim: error: --vcd ", "is not an existing directory")
    assert main(["sim", "--vcd", str(tmp_path)]) == 2
    _one_error_line(capsys, "palhdl sim: error: --vcd ", "is a directory")


@pytest.mark.parametrize(
    ("out", "status", "message"),
    [
        ("/proc/x", 1, "cannot write there"),
        ("/dev/null/x", 2, "'/dev/null' is a file, not a directory"),
        ("FILE", 2, "is a file, not a directory"),
    ],
)
def test_build_out_that_cannot_be_a_directory_is_one_line(out, status, message, tmp_path, capsys):
    if out == "FILE":
        out = tmp_path / "file"
        out.write_text("")
    assert main(["build", "--board", "icebreaker", "--out", str(out)]) == status
    _one_error_line(capsys, f"palhdl build: error: --out '{out}'", message)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rows", "64", "--cols", "64"], "rows x cols = 64 x 64 cannot fit the iCE40 UP5K"),
        (["--format", "pal16", "--rows", "64", "--cols", "64"], "need 98304 flip-flops"),
    ],
)
def test_build_that_cannot_fit_fails_at_once(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["build", "--board", "icebreaker", *argv, "--out", str(out)]) == 2
    _one_error_line(capsys, "palhdl build: error: ", message)
    assert not out.exists()


def test_build_rejecting_a_core_parameter_leaves_no_directory(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["build", "--board", "ulx3s-85f", "--k-max", "4096", "--out", str(out)]) == 2
    _one_error_line(capsys, "palhdl build: error: k_max 4096 is too large")
    assert not out.exists()


def _no_demo(**_):
    raise AssertionError("the demo ran before its arguments were checked")


def test_demo_batch_above_the_test_set_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr("palhdl.studies.accuracy.run_demo", _no_demo)
    assert main(["demo", "--batch", "1000000000", "--no-build"]) == 2
    _one_error_line(capsys, "palhdl demo: error: --batch must be in [1, 397]", "1000000000")


def test_demo_out_is_checked_before_the_demo_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("palhdl.studies.accuracy.run_demo", _no_demo)
    assert main(["demo", "--out", "/proc/x"]) == 1
    _one_error_line(capsys, "palhdl demo: error: --out '/proc/x': cannot write there")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["demo", "--out", str(blocker)]) == 2
    _one_error_line(capsys, "palhdl demo: error: --out ", "is a file, not a directory")


@pytest.mark.parametrize(
    ("out", "options", "status", "message"),
    [
        ("DIR", [], 2, "is a directory; give a file name"),
        ("c.txt", [], 2, "must end in .npy, not '.txt'"),
        ("c.npy", ["--output", "raw"], 2, "must end in .npz, not '.npy'"),
        ("/proc/c.npy", [], 1, "cannot write there"),
        ("missing/c.npy", [], 1, "is not an existing directory"),
    ],
)
def test_run_out_is_checked_before_the_board_is_touched(
    out, options, status, message, tmp_path, capsys
):
    # The port does not exist: had the output check come second, the error would name it.
    out = tmp_path if out == "DIR" else out if out.startswith("/") else tmp_path / out
    argv = ["run", "--port", str(tmp_path / "tty"), "a.npy", "b.npy", "--out", str(out)]
    assert main([*argv, *options]) == status
    _one_error_line(capsys, "palhdl run: error: ", f"--out '{out}'", message)


def test_run_codes_with_a_float_array_is_one_line(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.ones((2, 3)))
    np.save(tmp_path / "b.npy", np.ones((3, 2), np.int64))
    argv = ["run", "--port", str(tmp_path / "tty"), str(tmp_path / "a.npy")]
    assert main([*argv, str(tmp_path / "b.npy"), "--codes"]) == 2
    _one_error_line(capsys, "palhdl run: error: --codes reads integer arrays", "float64 values")
