"""``palhdl run`` (``palhdl.runner``): operands read as values or codes, the warning about
unrepresentable inputs, the atomic write of ``--out`` and the fallback save when it fails.

The end-to-end runs use ``--port sim:icebreaker`` (the board's default core on Verilator, built
once and cached) and compare with the golden model.
"""

import os
import stat

import numpy as np
import pytest

from palhdl.boards.platforms import get_board
from palhdl.cli import main
from palhdl.format import pal8
from palhdl.runner import input_warning, load_operands, save_fallback, save_result
from palhdl.sim import golden

ICEBREAKER = get_board("icebreaker").default_config()


def _save(tmp_path, a, b):
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    return str(tmp_path / "a.npy"), str(tmp_path / "b.npy")


def test_integer_arrays_are_values_unless_codes(tmp_path):
    a_path, b_path = _save(tmp_path, np.array([[1, -2], [3, 70]]), np.array([[5], [6]], np.uint8))
    a, b = load_operands(a_path, b_path, codes=False)
    assert a.dtype == b.dtype == np.float64
    assert a.tolist() == [[1.0, -2.0], [3.0, 70.0]] and b.tolist() == [[5.0], [6.0]]
    a, b = load_operands(a_path, b_path, codes=True)
    assert a.dtype == np.int64 and b.dtype == np.uint8 and a.tolist() == [[1, -2], [3, 70]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty, not a .npy array"),
        (b"not numpy at all", "is not a .npy array"),
        ("NPZ", "is an .npz archive, not a .npy array"),
    ],
)
def test_a_file_that_is_not_an_array_is_one_message(tmp_path, content, message):
    path = tmp_path / "a.npy"
    if content == "NPZ":
        with open(path, "wb") as file:
            np.savez(file, x=np.ones(2))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=f"a: '.*a.npy' {message}"):
        load_operands(path, path, codes=False)


def test_codes_with_float_arrays_is_rejected(tmp_path):
    a_path, b_path = _save(tmp_path, np.ones((1, 1), np.int16), np.ones((1, 1), np.float32))
    with pytest.raises(ValueError, match=r"--codes reads integer arrays .* b .* float32 values"):
        load_operands(a_path, b_path, codes=True)


def test_input_warning_counts_what_the_format_cannot_represent():
    largest = float(golden.decode(pal8.max_code, pal8))  # independent of the counts below
    a = np.array([[1.0, np.inf], [-np.inf, np.nan]])
    b = np.array([[2 * largest], [-3.0]])
    assert input_warning(np.ones((2, 2)), np.ones((2, 1)), pal8, adaptive=True) is None
    assert input_warning(a, b, pal8, adaptive=True) == (
        "warning: of 6 input values, 2 saturate to +-max (2 infinite) and 1 NaN (NaN results)"
    )
    assert input_warning(a, b, pal8, adaptive=False) == (
        f"warning: of 6 input values, 3 saturate to +-max (2 infinite, 1 beyond +-{largest:g} "
        "(no adaptive scaling)) and 1 NaN (NaN results)"
    )
    assert input_warning(np.full((1, 1), np.nan), np.ones((1, 1)), pal8, adaptive=True) == (
        "warning: of 2 input values, 1 NaN (NaN results)"
    )


def test_save_result_is_atomic_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "c.npy"
    path.write_bytes(b"old")
    result = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert save_result(path, result) == path
    np.testing.assert_array_equal(np.load(path), result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npy"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    raw = {"acc": np.arange(3), "nan": np.zeros(3, bool)}
    save_result(tmp_path / "r.npz", raw)
    with np.load(tmp_path / "r.npz") as archive:
        assert sorted(archive) == ["acc", "nan"]
        np.testing.assert_array_equal(archive["acc"], raw["acc"])


def test_save_result_that_fails_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "c.npy"
    path.write_bytes(b"old")

    def refuse(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        save_result(path, np.ones(2))
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npy"]


def test_save_fallback_goes_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kept = save_fallback("/nowhere/result.npy", np.full(3, 7.0))
    assert kept.parent == tmp_path and kept.name.startswith("result.") and kept.suffix == ".npy"
    np.testing.assert_array_equal(np.load(kept), np.full(3, 7.0))


# --- end to end, on the simulated iCEBreaker ---------------------------------------------------


def _run(tmp_path, a, b, *options):
    a_path, b_path = _save(tmp_path, a, b)
    return main(["run", "--port", "sim:icebreaker", a_path, b_path, *options])


def test_run_reads_integer_arrays_as_values_and_codes_with_codes(tmp_path, capsys):
    rng = np.random.default_rng(14)
    a = rng.integers(-100, 100, (3, 7))
    b = rng.integers(-100, 100, (7, 2))
    out = tmp_path / "c.npy"
    assert _run(tmp_path, a, b, "--out", str(out)) == 0
    expected = golden.matmul_values(a.astype(float), b.astype(float), ICEBREAKER)
    np.testing.assert_array_equal(np.load(out).view(np.uint32), expected.to_float32_bits())
    codes_a = rng.integers(0, 256, (3, 7))
    codes_b = rng.integers(0, 256, (7, 2))
    assert _run(tmp_path, codes_a, codes_b, "--codes", "--output", "pal", "--out", str(out)) == 0
    expected = golden.matmul(codes_a, codes_b, ICEBREAKER).to_pal()
    np.testing.assert_array_equal(np.load(out), expected)
    err = capsys.readouterr().err
    assert "warning" not in err


def test_run_warns_once_about_infinite_and_nan_inputs(tmp_path, capsys):
    a = np.array([[1.0, np.inf, 2.0], [3.0, np.nan, -np.inf]])
    b = np.ones((3, 2))
    out = tmp_path / "c.npy"
    assert _run(tmp_path, a, b, "--out", str(out)) == 0
    expected = golden.matmul_values(a, b, ICEBREAKER).to_float32_bits()
    np.testing.assert_array_equal(np.load(out).view(np.uint32), expected)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        "palhdl run: warning: of 12 input values, 2 saturate to +-max (2 infinite) and "
        "1 NaN (NaN results)"
    ]


def test_run_with_an_empty_operand_saves_the_empty_result(tmp_path):
    out = tmp_path / "c.npy"
    assert _run(tmp_path, np.zeros((0, 3)), np.ones((3, 2)), "--out", str(out)) == 0
    result = np.load(out)
    assert result.shape == (0, 2) and result.dtype == np.float32


def test_run_saves_the_result_elsewhere_when_the_final_write_fails(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 5)), rng.standard_normal((5, 3))
    target = tmp_path / "out"
    target.mkdir()
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)

    def refuse(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    assert _run(tmp_path, a, b, "--out", str(target / "c.npy")) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    (kept,) = here.iterdir()
    assert err == (
        f"palhdl run: error: --out '{target / 'c.npy'}': cannot write the result "
        f"(No space left on device); saved in '{kept}' instead"
    )
    assert list(target.iterdir()) == []  # no temporary left behind
    expected = golden.matmul_values(a, b, ICEBREAKER).to_float32_bits()
    np.testing.assert_array_equal(np.load(kept).view(np.uint32), expected)
