"""Fmax after place and route, with registers around the unit (synth/pnr.py)."""

import pytest
from amaranth.hdl import Fragment, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.synth.pnr import RegisteredHarness, fmax


class RegisteredAdder(wiring.Component):
    """``y <= a + b`` with 4-bit operands."""

    a: In(4)
    b: In(4)
    y: Out(5)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.a + self.b)
        return m


def test_registered_harness_has_one_pin_each_way():
    harness = RegisteredHarness(RegisteredAdder())
    assert list(harness.signature.members) == ["sin", "sout"]
    assert isinstance(harness.unit, RegisteredAdder)
    Fragment.get(harness, None)


def test_fmax_of_registered_unit():
    result = fmax(RegisteredAdder(), target="ice40")
    assert 20 < result["fmax_mhz"] < 1000
    assert result["report"]["utilization"]["SB_IO"]["used"] >= 2  # sin, sout (+ clock, reset)


def test_fmax_rejects_unknown_target():
    unit = RegisteredAdder()
    with pytest.raises(ValueError, match="target must be one of 'ice40', 'ecp5'"):
        fmax(unit, target="cmos")
    Fragment.get(unit, None)  # rejected before synthesis: elaborate it here
