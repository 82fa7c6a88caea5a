"""Argument types of the ``palhdl`` command line, shared by :mod:`palhdl.cli` and the studies.

Each factory returns an ``argparse`` ``type`` that parses the text and validates it with
:mod:`palhdl.validate`. Text that is not a number makes argparse report ``invalid int value`` or
``invalid float value``; a number out of range reports the validator's message. Either way
argparse prints the usage and one line naming the option, and exits with status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from palhdl.format import PALFormat, parse_format
from palhdl.validate import check_int, check_positive_float

__all__ = ["integer", "pal_format", "positive_float"]


def integer(name: str, lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """Make an ``argparse`` type: an integer in ``[lo, hi]`` (a bound ``None``: unbounded).

    Parameters
    ----------
    name : str
        Parameter name of the range message (``"rows must be in [1, 64], not 65"``).
    lo, hi : int, optional
        Inclusive bounds.
    """

    def parse(text: str) -> int:
        value = int(text)  # a ValueError: argparse reports "invalid int value"
        try:
            return check_int(name, value, lo, hi)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = "int"
    return parse


def positive_float(name: str) -> Callable[[str], float]:
    """Make an ``argparse`` type: a finite number above zero, named ``name`` in the message."""

    def parse(text: str) -> float:
        value = float(text)  # a ValueError: argparse reports "invalid float value"
        try:
            return check_positive_float(name, value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = "float"
    return parse


def pal_format(text: str) -> PALFormat:
    """Parse a format argument, ``pal8``, ``pal16`` or ``I.F``, with :func:`.parse_format`."""
    try:
        return parse_format(text)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
