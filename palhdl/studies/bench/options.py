"""What every section of ``palhdl bench`` is given: the run's options and its progress line."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from palhdl.synth.cache import ResultCache

__all__ = ["BenchOptions", "stderr_progress"]


def stderr_progress(message: str) -> None:
    """Print ``palhdl bench: <message>`` with the wall-clock time on stderr."""
    print(f"palhdl bench [{time.strftime('%H:%M:%S')}]: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BenchOptions:
    """The options of one ``palhdl bench`` run, as the sections see them.

    Attributes
    ----------
    quick : bool
        A smoke run: every section at toy sizes (seconds to a few minutes in all).
    seed : int
        Seed of every random operand.
    work_dir : Path
        Scratch directory of the run's builds (inside the output directory).
    cache : ResultCache or None
        Where place-and-route results are reused from and kept (``None``: measure all).
    boards : tuple of str
        The boards of the array and build-time sections (keys of ``BOARDS``).
    jobs : int
        Tool runs at a time.
    progress : callable
        Called with a one-line message at each long step.
    """

    quick: bool = False
    seed: int = 0
    work_dir: Path = Path("bench") / "work"
    cache: ResultCache | None = None
    boards: tuple[str, ...] = ("icebreaker", "ulx3s-85f")
    jobs: int = 2
    progress: Callable[[str], None] = field(default=stderr_progress)
