"""The shared validators: accepted values come back normalised, rejected ones raise one message
naming the parameter."""

import math

import numpy as np
import pytest

from palhdl.format import PALFormat, pal8
from palhdl.validate import (
    check_bool,
    check_choice,
    check_instance,
    check_int,
    check_output_dir,
    check_output_file,
    check_positive_float,
)


def test_check_int_accepts_and_normalises():
    assert check_int("k", 5, 1, 8) == 5
    value = check_int("k", np.int16(-3))
    assert value == -3 and type(value) is int
    assert check_int("k", 1, 1, 1) == 1


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (True, TypeError, "k must be an integer, not True"),
        (2.0, TypeError, "k must be an integer, not 2.0"),
        ("3", TypeError, "k must be an integer, not '3'"),
        (0, ValueError, r"k must be in \[1, 8\], not 0"),
        (9, ValueError, r"k must be in \[1, 8\], not 9"),
    ],
)
def test_check_int_rejects(value, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        check_int("k", value, 1, 8)


def test_check_int_open_bounds_in_message():
    with pytest.raises(ValueError, match=r"^k must be in \[1, inf\], not 0$"):
        check_int("k", 0, 1)
    with pytest.raises(ValueError, match=r"^k must be in \[-inf, 0\], not 1$"):
        check_int("k", 1, None, 0)


def test_check_bool():
    assert check_bool("wrap", False) is False
    for value in (0, 1, np.bool_(True), "yes"):
        with pytest.raises(TypeError, match=r"^wrap must be a bool \(True or False\), not "):
            check_bool("wrap", value)


def test_check_choice():
    assert check_choice("mode", "raw", ("raw", "pal")) == "raw"
    with pytest.raises(ValueError, match=r"^mode must be one of 'raw', 'pal', not 'int8'$"):
        check_choice("mode", "int8", ("raw", "pal"))
    with pytest.raises(ValueError, match=r"^mode must be one of 'raw', not \[\]$"):
        check_choice("mode", [], ("raw",))  # unhashable


def test_check_instance():
    assert check_instance("fmt", pal8, PALFormat) is pal8
    with pytest.raises(
        TypeError, match=r"^fmt must be a PALFormat \(for example palhdl\.format\.pal8\), not 8$"
    ):
        check_instance("fmt", 8, PALFormat, "palhdl.format.pal8")

    class Arithmetic:
        pass

    with pytest.raises(TypeError, match=r"^x must be an Arithmetic, not None$"):
        check_instance("x", None, Arithmetic)


def test_check_positive_float():
    assert check_positive_float("freq", 12) == 12.0
    assert type(check_positive_float("freq", np.float32(0.5))) is float
    with pytest.raises(TypeError, match=r"^freq must be a number, not '12'$"):
        check_positive_float("freq", "12")
    with pytest.raises(TypeError, match=r"^freq must be a number, not True$"):
        check_positive_float("freq", True)
    for bad in (0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match=r"^freq must be a positive finite number, not "):
            check_positive_float("freq", bad)


# --- output paths -----------------------------------------------------------------------------


def test_check_output_file_accepts_a_writable_place_and_leaves_nothing(tmp_path):
    path = tmp_path / "c.npy"
    assert check_output_file("--out", str(path), (".npy",)) == path
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"old")  # an existing file may be replaced
    assert check_output_file("--out", path) == path and path.read_bytes() == b"old"


@pytest.mark.parametrize(
    ("path", "suffixes", "error", "message"),
    [
        ("DIR", (), ValueError, "is a directory; give a file name"),
        ("c.txt", (".npy", ".npz"), ValueError, r"must end in \.npy or \.npz, not '\.txt'"),
        ("missing/c.npy", (), OSError, "is not an existing directory"),
        ("/proc/c.npy", (), OSError, r"cannot write there \(No such file or directory\)"),
        ("/dev/null/c.npy", (), OSError, "'/dev/null' is not an existing directory"),
        (3, (), TypeError, "--out must be a non-empty path, not 3"),
        ("", (), TypeError, "--out must be a non-empty path, not ''"),
    ],
)
def test_check_output_file_refuses(path, suffixes, error, message, tmp_path):
    if path == "DIR":
        path = tmp_path
    elif isinstance(path, str) and path and not path.startswith("/"):
        path = tmp_path / path
    with pytest.raises(error, match=message):
        check_output_file("--out", path, suffixes)


def test_check_output_dir_accepts_existing_and_new_directories_and_leaves_nothing(tmp_path):
    assert check_output_dir("--out", tmp_path) == tmp_path
    assert check_output_dir("--out", tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("FILE", ValueError, "is a file, not a directory"),
        ("FILE/below", ValueError, "is a file, not a directory"),
        ("/dev/null/x", ValueError, "'/dev/null' is a file, not a directory"),
        ("/proc/x", OSError, r"--out '/proc/x': cannot write there"),
    ],
)
def test_check_output_dir_refuses(path, error, message, tmp_path):
    (tmp_path / "FILE").write_text("")
    if path.startswith("FILE"):
        path = tmp_path / path
    with pytest.raises(error, match=message):
        check_output_dir("--out", path)
