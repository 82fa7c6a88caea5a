"""Argument validators shared by every layer of palhdl.

Each validator names the parameter in a one-line message and raises ``TypeError`` for a value of
the wrong kind, ``ValueError`` for one out of range; it returns the value normalised (a numpy
integer becomes an ``int``). The CLI turns these messages into its one-line errors. The two
output-path validators also raise ``OSError`` (with such a message) when the file system
refuses: they try what the output will need, before any work is done.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_instance",
    "check_int",
    "check_output_dir",
    "check_output_file",
    "check_positive_float",
]

#: Longest rendering of a rejected value in a message (:func:`_shown`).
_SHOWN_LENGTH = 60


def _shown(value) -> str:
    """``repr(value)`` on one line, cut to :data:`_SHOWN_LENGTH` characters: for messages.

    A rejected array's repr spans lines; an error message stays one line.
    """
    text = " ".join(repr(value).split())
    return text if len(text) <= _SHOWN_LENGTH else text[: _SHOWN_LENGTH - 3] + "..."


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
        raise TypeError(f"{name} must be an integer, not {_shown(value)}")
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
        raise TypeError(f"{name} must be a bool (True or False), not {_shown(value)}")
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
        raise ValueError(f"{name} must be one of {listed}, not {_shown(value)}")
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
        raise TypeError(f"{name} must be {article} {cls.__name__}{hint}, not {_shown(value)}")
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
        raise TypeError(f"{name} must be a number, not {_shown(value)}")
    value = float(value)
    if not (value > 0 and np.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, not {_shown(value)}")
    return value


def _path(name: str, path) -> Path:
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise TypeError(f"{name} must be a non-empty path, not {_shown(path)}")
    return Path(path)


def _refused(name: str, path: Path, error: OSError) -> OSError:
    reason = error.strerror or str(error)
    return OSError(f"{name} {str(path)!r}: cannot write there ({reason})")


def check_output_file(name: str, path, suffixes: Iterable[str] = ()) -> Path:
    """Validate the path of an output file before the work that produces it.

    The file need not exist; its directory must, and a scratch file is created in that
    directory and removed again, so the final write (best done there: a temporary file, then
    ``os.replace``) cannot fail for want of permission, a missing directory or a read-only file
    system.

    Parameters
    ----------
    name : str
        Parameter name, used in the message (``"--out"``).
    path : str or os.PathLike
        The output file.
    suffixes : iterable of str, optional
        Accepted endings, for example ``(".npy",)``; empty: any.

    Returns
    -------
    Path

    Raises
    ------
    TypeError
        ``path`` is not a path.
    ValueError
        It is an existing directory or has another suffix than ``suffixes``.
    OSError
        Its directory does not exist or cannot be written.
    """
    path = _path(name, path)
    suffixes = tuple(suffixes)
    if path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a directory; give a file name")
    if suffixes and path.suffix not in suffixes:
        raise ValueError(
            f"{name} {str(path)!r} must end in {' or '.join(suffixes)}, not {path.suffix!r}"
        )
    parent = path.parent
    if not parent.is_dir():
        raise OSError(f"{name} {str(path)!r}: {str(parent)!r} is not an existing directory")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as error:
        raise _refused(name, path, error) from None
    return path


def check_output_dir(name: str, path) -> Path:
    """Validate an output directory (existing, or to be created) before the work that fills it.

    An existing directory must take a scratch file; otherwise the nearest existing ancestor
    must be a directory in which a scratch directory can be created (both are removed again).
    Nothing is left behind, so a command that then rejects another argument leaves no trace.

    Returns
    -------
    Path

    Raises
    ------
    TypeError
        ``path`` is not a path.
    ValueError
        ``path`` (or an ancestor) is an existing file.
    OSError
        The directory cannot be created or written.
    """
    path = _path(name, path)
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{name} {str(path)!r}: {str(ancestor)!r} is a file, not a directory")
    try:
        if ancestor == path:
            with tempfile.NamedTemporaryFile(dir=path, prefix=".palhdl.", suffix=".probe"):
                pass
        else:
            os.rmdir(tempfile.mkdtemp(dir=ancestor, prefix=".palhdl.", suffix=".probe"))
    except OSError as error:
        raise _refused(name, path, error) from None
    return path
