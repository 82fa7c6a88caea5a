"""palhdl.progress: the counting bar and the stage reporter, on fake streams and a fake clock."""

from __future__ import annotations

import io
import sys

import pytest

from palhdl.progress import REDRAW_SECONDS, ProgressBar, StageProgress, is_terminal


class FakeStream(io.StringIO):
    """A text stream that says whether it is a terminal."""

    def __init__(self, terminal: bool):
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_is_terminal():
    assert is_terminal(FakeStream(terminal=True))
    assert not is_terminal(FakeStream(terminal=False))
    assert not is_terminal(object())


def test_progress_bar_off_a_terminal_prints_a_line_per_quarter():
    stream, clock = FakeStream(terminal=False), FakeClock()
    bar = ProgressBar("  simulating", stream=stream, width=8, clock=clock)
    for done in range(9):
        clock.now += 0.5
        bar(done, 8)
    assert stream.getvalue().splitlines() == [
        "  simulating [........] 0/8 rows, 0.5 s",
        "  simulating [##......] 2/8 rows, 1.5 s",
        "  simulating [####....] 4/8 rows, 2.5 s",
        "  simulating [######..] 6/8 rows, 3.5 s",
        "  simulating [########] 8/8 rows, 4.5 s",
    ]
    assert "\r" not in stream.getvalue()


def test_progress_bar_on_a_terminal_redraws_in_place_at_most_every_redraw_interval():
    stream, clock = FakeStream(terminal=True), FakeClock()
    bar = ProgressBar("run", stream=stream, width=4, clock=clock)
    bar(1, 4)
    clock.now += REDRAW_SECONDS / 2
    bar(2, 4)  # too soon: not drawn
    clock.now += REDRAW_SECONDS
    bar(3, 4)
    bar(4, 4)  # the last call is always drawn, and ends the line
    assert stream.getvalue() == (
        "\rrun [#...] 1/4 rows, 0.0 s\rrun [###.] 3/4 rows, 0.3 s\rrun [####] 4/4 rows, 0.3 s\n"
    )


def test_progress_bar_defaults_to_stderr(capsys):
    bar = ProgressBar("x", width=2)
    bar(1, 1)
    assert capsys.readouterr().err.startswith("x [##] 1/1 rows, ")


def test_progress_bar_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"width must be in \[1, inf\], not 0"):
        ProgressBar("x", stream=sys.stderr, width=0)
    with pytest.raises(TypeError, match="label must be a str"):
        ProgressBar(3)


def test_stage_progress_off_a_terminal_prints_begin_and_done_lines():
    stream, clock = FakeStream(terminal=False), FakeClock()
    stages = StageProgress("palhdl build", stream=stream, clock=clock)
    stages.begin("synth")
    clock.now += 2.5
    stages.begin("place")  # ends synth
    clock.now += 1.0
    stages.end()
    stages.end()  # nothing running: no effect
    assert stream.getvalue() == (
        "palhdl build: synth ...\n"
        "palhdl build: synth done in 2.5 s\n"
        "palhdl build: place ...\n"
        "palhdl build: place done in 1.0 s\n"
    )
    assert stages.seconds == {"synth": pytest.approx(2.5), "place": pytest.approx(1.0)}


def test_stage_progress_on_a_terminal_spins_then_erases_the_spinner():
    stream, clock = FakeStream(terminal=True), FakeClock()
    stages = StageProgress("palhdl build", stream=stream, clock=clock)
    stages.begin("route")
    clock.now += 3.0
    stages.end()
    text = stream.getvalue()
    # The spinner draws its first frame at once, then every REDRAW_SECONDS until the stage ends.
    assert text.startswith("\r| route    ")
    assert text.endswith("\r\033[Kpalhdl build: route done in 3.0 s\n")
    assert "..." not in text
    assert list(stages.seconds) == ["route"]


def test_stage_progress_disabled_only_times_the_stages():
    stream, clock = FakeStream(terminal=True), FakeClock()
    stages = StageProgress("palhdl build", stream=stream, enabled=False, clock=clock)
    stages.begin("synth")
    clock.now += 4.0
    stages.end()
    assert stream.getvalue() == ""
    assert stages.seconds == {"synth": 4.0}


def test_stage_progress_rejects_bad_arguments():
    with pytest.raises(TypeError, match=r"enabled must be a bool \(True or False\), not 1"):
        StageProgress("x", stream=sys.stderr, enabled=1)
    with pytest.raises(TypeError, match="stage must be a str"):
        StageProgress("x", stream=sys.stderr, enabled=False).begin(None)
