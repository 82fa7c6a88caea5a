"""Tests of the command-line argument types (``palhdl.studies.arguments``)."""

import argparse

import pytest

from palhdl.format import PALFormat, pal8
from palhdl.studies.arguments import integer, pal_format, positive_float


def test_integer_accepts_its_inclusive_range():
    rows = integer("rows", 1, 64)
    assert [rows("1"), rows("64"), rows(" 7 ")] == [1, 64, 7]
    assert integer("seed")("-5") == -5
    assert integer("count", 1)("1000000") == 10**6


@pytest.mark.parametrize(
    ("text", "message"),
    [("0", "rows must be in [1, 64], not 0"), ("65", "rows must be in [1, 64], not 65")],
)
def test_integer_out_of_range_names_the_parameter(text, message):
    with pytest.raises(argparse.ArgumentTypeError) as error:
        integer("rows", 1, 64)(text)
    assert str(error.value) == message


@pytest.mark.parametrize("text", ["x", "1.5", "", "1e3"])
def test_integer_rejects_text_that_is_no_integer_as_argparse_expects(text):
    parse = integer("rows", 1, 64)
    assert parse.__name__ == "int"  # argparse: "invalid int value: 'x'"
    with pytest.raises(ValueError):
        parse(text)


def test_positive_float():
    freq = positive_float("freq")
    assert freq("36") == 36.0 and freq("0.5") == 0.5
    assert freq.__name__ == "float"
    for text in ("0", "-1", "nan", "inf"):
        with pytest.raises(argparse.ArgumentTypeError, match="freq must be a positive finite"):
            freq(text)
    with pytest.raises(ValueError):
        freq("fast")


def test_pal_format():
    assert pal_format("pal8") is pal8
    assert pal_format("5.2") == PALFormat(int_bits=5, frac_bits=2)
    with pytest.raises(argparse.ArgumentTypeError, match="format must be one of"):
        pal_format("pal9")
    with pytest.raises(argparse.ArgumentTypeError, match="int_bits must be in"):
        pal_format("1.3")
