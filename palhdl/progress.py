"""Progress reports on a text stream: a counting bar and a stage reporter.

Both write to ``stderr`` unless given another stream. On a terminal they redraw one line in
place (carriage return); on anything else (a log file, a pipe) they print whole lines, and only
a few, so logs stay short.

- :class:`ProgressBar` counts work done out of a total: ``bar(done, total)``.
- :class:`StageProgress` times named stages (``begin(stage)`` ... ``end()``): a line per stage,
  with a spinner and the elapsed time while a stage runs on a terminal.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from palhdl.validate import check_bool, check_instance, check_int

__all__ = ["ProgressBar", "StageProgress", "is_terminal"]

#: Seconds between two redraws of a line on a terminal.
REDRAW_SECONDS = 0.2

#: Frames of the spinner of :class:`StageProgress`.
SPINNER = "|/-\\"

_ERASE_LINE = "\r\033[K"


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (a stream without ``isatty`` is not)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


class _StreamReport:
    """The stream, whether it is a terminal, the clock and the start time of a report."""

    def __init__(self, label: str, stream: TextIO | None, clock: Callable[[], float]):
        self._label = check_instance("label", label, str)
        self._stream = stream if stream is not None else sys.stderr
        self._terminal = is_terminal(self._stream)
        self._clock = clock
        self._started = clock()

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


class ProgressBar(_StreamReport):
    """A one-line text progress bar: ``bar(done, total)`` after each piece of work.

    On a terminal the bar is redrawn in place at most every :data:`REDRAW_SECONDS`; elsewhere a
    line is printed each time another quarter of the work is done. The last call (``done >=
    total``) always ends the line.

    Parameters
    ----------
    label : str
        Text in front of the bar.
    stream : text stream, optional
        Where to write; default ``sys.stderr`` (at construction).
    width : int
        Characters of the bar itself.
    clock : callable
        Seconds for the elapsed time (default :func:`time.perf_counter`).
    """

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        width: int = 30,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__(label, stream, clock)
        self._width = check_int("width", width, 1)
        self._last_drawn = -1.0
        self._last_quarter = -1

    def __call__(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` rows."""
        now = self._clock()
        finished = done >= total
        if self._terminal and not finished and now - self._last_drawn < REDRAW_SECONDS:
            return
        quarter = 4 * done // max(total, 1)
        if not self._terminal and not finished and quarter == self._last_quarter:
            return
        self._last_drawn = now
        self._last_quarter = quarter
        filled = self._width * done // max(total, 1)
        bar = "#" * filled + "." * (self._width - filled)
        line = f"{self._label} [{bar}] {done}/{total} rows, {now - self._started:.1f} s"
        end = "\n" if finished or not self._terminal else ""
        self._write(("\r" if self._terminal else "") + line + end)


class StageProgress(_StreamReport):
    """Times the stages of a long job and reports them.

    ``begin(stage)`` starts a stage (ending the one before), ``end()`` ends the current one;
    :attr:`seconds` collects each stage's wall time. Each finished stage prints ``"<label>:
    <stage> done in <t> s"``. On a terminal a spinner with the elapsed time runs while a stage
    does; elsewhere ``"<label>: <stage> ..."`` is printed when it begins.

    Parameters
    ----------
    label : str
        Prefix of the lines, for example ``"palhdl build"``.
    stream : text stream, optional
        Where to write; default ``sys.stderr`` (at construction).
    enabled : bool
        ``False``: write nothing, only time the stages.
    clock : callable
        Seconds for the stage times (default :func:`time.perf_counter`).

    Attributes
    ----------
    seconds : dict
        ``{stage: seconds}`` of every finished stage, in order.
    """

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__(label, stream, clock)
        self._enabled = check_bool("enabled", enabled)
        self._stage: str | None = None
        self._start = 0.0
        self._stop = threading.Event()
        self._spinner: threading.Thread | None = None
        self.seconds: dict[str, float] = {}

    def begin(self, stage: str) -> None:
        """End the current stage, if any, and start ``stage``."""
        check_instance("stage", stage, str)
        self.end()
        self._stage, self._start = stage, self._clock()
        if not self._enabled:
            return
        if self._terminal:
            self._stop.clear()
            self._spinner = threading.Thread(target=self._spin, daemon=True)
            self._spinner.start()
        else:
            self._write(f"{self._label}: {stage} ...\n")

    def end(self) -> None:
        """End the current stage and record its time (nothing happens if none runs)."""
        if self._stage is None:
            return
        elapsed = self._clock() - self._start
        self.seconds[self._stage] = elapsed
        if self._spinner is not None:
            self._stop.set()
            self._spinner.join()
            self._spinner = None
            self._write(_ERASE_LINE)
        if self._enabled:
            self._write(f"{self._label}: {self._stage} done in {elapsed:.1f} s\n")
        self._stage = None

    def _spin(self) -> None:
        for frame in itertools.cycle(SPINNER):
            elapsed = self._clock() - self._start
            self._write(f"\r{frame} {self._stage} {elapsed:6.1f} s")
            if self._stop.wait(REDRAW_SECONDS):
                return
