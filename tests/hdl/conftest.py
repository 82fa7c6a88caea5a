"""Fixtures shared by the gateware tests."""

import pytest
from amaranth.hdl import Fragment


@pytest.fixture
def elaborate():
    """``elaborate(unit)``: elaborate a unit that a test only inspects, and return it.

    Amaranth warns about a unit that is created and never elaborated (``UnusedElaboratable``);
    elaborating it also checks that it builds.
    """

    def run(unit):
        Fragment.get(unit, None)
        return unit

    return run
