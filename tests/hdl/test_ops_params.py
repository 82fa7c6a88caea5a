"""PALMultiplier and PALAdder construction: parameter validation, properties, stream layouts."""

import pytest
from amaranth.hdl import unsigned
from amaranth.lib import data

from palhdl.format import MAX_TABLE_FRAC_BITS, PALFormat, pal8, pal16
from palhdl.hdl.layout import PALLayout
from palhdl.hdl.ops import PALAdder, PALMultiplier

UNITS = [PALMultiplier, PALAdder]


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("fmt", [None, "pal8", 8, (4, 3)])
def test_fmt_must_be_a_format(unit, fmt):
    with pytest.raises(
        TypeError, match=r"^fmt must be a PALFormat \(for example palhdl\.format\.pal8\), not "
    ):
        unit(fmt=fmt)


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("pipelined", [None, 0, 1, "yes"])
def test_pipelined_must_be_a_bool(unit, pipelined):
    with pytest.raises(
        TypeError, match=r"^pipelined must be a bool \(True or False\), not " + repr(pipelined)
    ):
        unit(fmt=pal8, pipelined=pipelined)


@pytest.mark.parametrize("unit", UNITS)
def test_parameters_are_keyword_only(unit):
    with pytest.raises(TypeError, match="positional"):
        unit(pal8)


def test_adder_needs_tables(elaborate):
    fmt = PALFormat(int_bits=2, frac_bits=MAX_TABLE_FRAC_BITS + 1)
    with pytest.raises(
        ValueError,
        match=rf"^PALAdder needs tables .* frac_bits must be <= {MAX_TABLE_FRAC_BITS}, not "
        rf"{MAX_TABLE_FRAC_BITS + 1}$",
    ):
        PALAdder(fmt=fmt)
    assert elaborate(PALMultiplier(fmt=fmt)).fmt == fmt  # the multiplier has no tables


@pytest.mark.parametrize(("unit", "latency"), [(PALMultiplier, 1), (PALAdder, 2)])
@pytest.mark.parametrize("fmt", [pal8, pal16])
def test_properties(unit, latency, fmt, elaborate):
    combinational = elaborate(unit(fmt=fmt))
    assert combinational.fmt == fmt
    assert combinational.pipelined is False
    assert combinational.latency == 0
    pipelined = elaborate(unit(fmt=fmt, pipelined=True))
    assert pipelined.pipelined is True
    assert pipelined.latency == latency
    for name in ("fmt", "pipelined", "latency"):
        with pytest.raises(AttributeError):
            setattr(pipelined, name, getattr(pipelined, name))


@pytest.mark.parametrize(("unit", "select"), [(PALMultiplier, "op"), (PALAdder, "sub")])
def test_stream_layouts(unit, select, elaborate):
    fmt = PALFormat(int_bits=5, frac_bits=6)
    dut = elaborate(unit(fmt=fmt))
    word = PALLayout(fmt)
    assert dut.i.payload.shape() == data.StructLayout({"a": word, "b": word, select: unsigned(1)})
    assert dut.o.payload.shape() == word
    # The select bit sits above both operands.
    assert dut.i.payload.shape().size == 2 * fmt.width + 1
    assert dut.i.payload.shape()[select].offset == 2 * fmt.width


def test_multiplier_operation_codes():
    assert (PALMultiplier.OP_MUL, PALMultiplier.OP_DIV) == (0, 1)
