"""Argument validators shared by every layer of palhdl.

Each validator names the parameter in a one-line message and raises ``TypeError`` for a value of
the wrong kind, ``ValueError`` for one out of range; it returns the value normalised (a numpy
integer becomes an ``int``). The CLI turns these messages into its one-line errors.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["check_bool", "check_choice", "check_instance", "check_int", "check_positive_float"]


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """Validate an integer in ``[lo, hi]`` (either bound may be ``None``: unbounded).

    Parameters
    ----------
    name : str
        Parameter name, used in the message.
    value : object
        The value; ``bool`` is rejected, numpy integers are accepted.
    lo, hi : int, optional
        Inclusive bounds.

    Returns
    -------
    int
        ``value`` as a Python ``int``.

    Raises
    ------
    TypeError
        ``value`` is not an integer.
    ValueError
        ``value`` is out of range: ``"{name} must be in [lo, hi], not value"``.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "inf" if hi is None else str(hi)
        raise ValueError(f"{name} must be in [{lo_s}, {hi_s}], not {value}")
    return value


def check_bool(name: str, value) -> bool:
    """Validate a ``bool`` (``0``/``1`` and numpy booleans are rejected).

    Raises
    ------
    TypeError
        ``"{name} must be a bool (True or False), not value"``.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool (True or False), not {value!r}")
    return value


def check_choice(name: str, value, choices: Iterable):
    """Validate that ``value`` is one of ``choices``.

    Raises
    ------
    ValueError
        ``"{name} must be one of 'a', 'b', not value"``.
    """
    choices = tuple(choices)
    try:
        found = value in choices
    except TypeError:  # unhashable or incomparable value
        found = False
    if not found:
        listed = ", ".join(map(repr, choices))
        raise ValueError(f"{name} must be one of {listed}, not {value!r}")
    return value


def check_instance(name: str, value, cls: type, example: str | None = None):
    """Validate that ``value`` is an instance of ``cls``.

    Parameters
    ----------
    example : str, optional
        A valid value to suggest, as in ``"fmt must be a PALFormat (for example
        palhdl.format.pal8), not 'pal8'"``.

    Raises
    ------
    TypeError
        ``value`` is not a ``cls``.
    """
    if not isinstance(value, cls):
        article = "an" if cls.__name__[0] in "AEIOU" else "a"
        hint = f" (for example {example})" if example else ""
        raise TypeError(f"{name} must be {article} {cls.__name__}{hint}, not {value!r}")
    return value


def check_positive_float(name: str, value) -> float:
    """Validate a finite real number greater than zero; return it as a ``float``.

    Raises
    ------
    TypeError
        ``value`` is not a real number.
    ValueError
        ``value`` is not finite or not positive.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, not {value!r}")
    value = float(value)
    if not (value > 0 and np.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, not {value!r}")
    return value
