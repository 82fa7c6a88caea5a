"""Constructors, properties and stream layouts of the palhdl.hdl.convert and
palhdl.hdl.readout units (no simulation)."""

import functools
import re

import pytest
from amaranth.hdl import signed, unsigned

from palhdl.format import SCALE_BITS, MacConfig, PALFormat, pal8, pal16
from palhdl.hdl.convert import (
    BFloat16ToPAL,
    FixedToPAL,
    Float32ToPAL,
    PALToBFloat16,
    PALToFloat32,
)
from palhdl.hdl.layout import FloatLayout, PALLayout
from palhdl.hdl.readout import AccumulatorToFloat32, AccumulatorToPAL, readout_input_layout

#: A valid format whose tables palhdl does not generate (frac_bits > 12).
FINE = PALFormat(int_bits=2, frac_bits=13)

#: Units constructed from a format alone.
FMT_UNITS = [Float32ToPAL, BFloat16ToPAL, PALToFloat32, PALToBFloat16]


def _fixed(**kwargs):
    return FixedToPAL(**{"fmt": pal8, "width": 16, **kwargs})


def _acc_pal(**kwargs):
    return AccumulatorToPAL(**{"config": MacConfig(pal8), **kwargs})


def _acc_float(**kwargs):
    return AccumulatorToFloat32(**{"config": MacConfig(pal8), **kwargs})


def _with_fmt(cls):
    return functools.partial(cls, fmt=pal8)


ALL_UNITS = {
    **{cls.__name__: _with_fmt(cls) for cls in FMT_UNITS},
    "FixedToPAL": _fixed,
    "AccumulatorToPAL": _acc_pal,
    "AccumulatorToFloat32": _acc_float,
}


# --- common parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ALL_UNITS)
@pytest.mark.parametrize("pipelined", [False, True])
def test_pipelined_and_latency(unit, pipelined, elaborate):
    dut = elaborate(ALL_UNITS[unit](pipelined=pipelined))
    assert dut.pipelined is pipelined
    assert dut.latency == (2 if pipelined else 0)


@pytest.mark.parametrize("unit", ALL_UNITS)
@pytest.mark.parametrize("bad", [1, 0, "yes", None])
def test_pipelined_must_be_bool(unit, bad):
    with pytest.raises(
        TypeError, match=re.escape(f"pipelined must be a bool (True or False), not {bad!r}")
    ):
        ALL_UNITS[unit](pipelined=bad)


@pytest.mark.parametrize("cls", [*FMT_UNITS, FixedToPAL])
@pytest.mark.parametrize("bad", ["pal8", (4, 3), None])
def test_fmt_must_be_pal_format(cls, bad):
    extra = {"width": 16} if cls is FixedToPAL else {}
    with pytest.raises(
        TypeError, match=r"^fmt must be a PALFormat \(for example palhdl\.format\.pal8\), not "
    ):
        cls(fmt=bad, **extra)


@pytest.mark.parametrize("cls", [*FMT_UNITS, FixedToPAL])
def test_fmt_needs_tables(cls):
    extra = {"width": 16} if cls is FixedToPAL else {}
    message = (
        f"{cls.__name__} needs tables of 2**frac_bits entries; frac_bits must be <= 12, not 13"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(fmt=FINE, **extra)


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_keyword_only(unit, elaborate):
    cls = type(elaborate(ALL_UNITS[unit]()))
    first = MacConfig(pal8) if unit.startswith("Accumulator") else pal8
    with pytest.raises(TypeError, match="positional"):
        cls(first)


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_properties_are_read_only(unit, elaborate):
    dut = elaborate(ALL_UNITS[unit]())
    with pytest.raises(AttributeError):
        dut.pipelined = True
    with pytest.raises(AttributeError):
        dut.latency = 1


# --- stream layouts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "in_bits", "out_bits"),
    [
        (Float32ToPAL, 32, pal16.width),
        (BFloat16ToPAL, 16, pal16.width),
        (PALToFloat32, pal16.width, 32),
        (PALToBFloat16, pal16.width, 16),
    ],
)
def test_float_unit_layouts(cls, in_bits, out_bits, elaborate):
    dut = elaborate(cls(fmt=pal16))
    assert dut.fmt is pal16
    assert dut.i.payload.shape().size == in_bits
    assert dut.o.payload.shape().size == out_bits
    pal_side = dut.o if cls.__name__.endswith("ToPAL") else dut.i
    assert pal_side.payload.shape() == PALLayout(pal16)


@pytest.mark.parametrize(
    ("man_bits", "exp_bits", "bias", "quiet_nan", "infinity"),
    [
        (23, 8, 127, 0x7FC00000, 0x7F800000),
        (7, 8, 127, 0x7FC0, 0x7F80),
        (10, 5, 15, 0x7E00, 0x7C00),
    ],
)
def test_float_layout(man_bits, exp_bits, bias, quiet_nan, infinity):
    layout = FloatLayout(man_bits, exp_bits)
    assert [(name, field.shape) for name, field in layout] == [
        ("mantissa", unsigned(man_bits)),
        ("exponent", unsigned(exp_bits)),
        ("sign", unsigned(1)),
    ]
    assert layout.size == 1 + man_bits + exp_bits
    assert (layout.man_bits, layout.exp_bits, layout.bias) == (man_bits, exp_bits, bias)
    assert layout.quiet_nan == quiet_nan
    assert layout["exponent"].offset == man_bits and (layout.quiet_nan & infinity) == infinity


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("man_bits", 0, ValueError, "man_bits must be in [1, 52], not 0"),
        ("man_bits", 53, ValueError, "man_bits must be in [1, 52], not 53"),
        ("exp_bits", 1, ValueError, "exp_bits must be in [2, 11], not 1"),
        ("exp_bits", 12, ValueError, "exp_bits must be in [2, 11], not 12"),
        ("man_bits", 7.0, TypeError, "man_bits must be an integer, not 7.0"),
        ("exp_bits", True, TypeError, "exp_bits must be an integer, not True"),
    ],
)
def test_float_layout_errors(name, value, error, message):
    kwargs = {"man_bits": 23, "exp_bits": 8, name: value}
    with pytest.raises(error, match=re.escape(message)):
        FloatLayout(**kwargs)


def test_accumulator_layout():
    config = MacConfig(pal16)
    layout = readout_input_layout(config)
    assert [(name, field.shape) for name, field in layout] == [
        ("acc", signed(config.acc_bits)),
        ("scale", signed(16)),
        ("nan", unsigned(1)),
    ]
    assert readout_input_layout(config, 24)["scale"].shape == signed(24)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"config": pal8},
            TypeError,
            "config must be a MacConfig (for example palhdl.format.MacConfig(pal8)), not ",
        ),
        ({"scale_bits": 1}, ValueError, "scale_bits must be in [2, 32], not 1"),
        ({"scale_bits": 33}, ValueError, "scale_bits must be in [2, 32], not 33"),
        ({"scale_bits": "16"}, TypeError, "scale_bits must be an integer, not '16'"),
    ],
)
def test_accumulator_layout_errors(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        readout_input_layout(**{"config": MacConfig(pal8), **kwargs})


# --- accumulator readouts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [_acc_pal, _acc_float], ids=["AccumulatorToPAL", "AccumulatorToFloat32"]
)
def test_accumulator_units(make, elaborate):
    config = MacConfig(pal8, acc_bits=24, acc_frac_bits=12)
    dut = elaborate(make(config=config, scale_bits=20))
    assert dut.config is config
    assert dut.scale_bits == 20
    assert dut.i.payload.shape() == readout_input_layout(config, 20)
    assert elaborate(make(config=config)).scale_bits == SCALE_BITS == 16


def test_accumulator_to_pal_out_fmt(elaborate):
    config = MacConfig(pal8)
    assert elaborate(_acc_pal(config=config)).out_fmt is pal8
    dut = elaborate(_acc_pal(config=config, out_fmt=pal16))
    assert dut.out_fmt is pal16
    assert dut.o.payload.shape() == PALLayout(pal16)


def test_accumulator_float32_output(elaborate):
    assert elaborate(_acc_float()).o.payload.shape() == FloatLayout(23, 8)


@pytest.mark.parametrize(
    "make", [_acc_pal, _acc_float], ids=["AccumulatorToPAL", "AccumulatorToFloat32"]
)
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"config": pal8},
            TypeError,
            "config must be a MacConfig (for example palhdl.format.MacConfig(pal8)), not ",
        ),
        (
            {"config": None},
            TypeError,
            "config must be a MacConfig (for example palhdl.format.MacConfig(pal8)), not None",
        ),
        ({"scale_bits": 1}, ValueError, "scale_bits must be in [2, 32], not 1"),
        ({"scale_bits": 33}, ValueError, "scale_bits must be in [2, 32], not 33"),
        ({"scale_bits": 16.0}, TypeError, "scale_bits must be an integer, not 16.0"),
    ],
)
def test_accumulator_errors(make, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make(**kwargs)


@pytest.mark.parametrize(
    ("out_fmt", "error", "message"),
    [
        (
            "pal16",
            TypeError,
            "out_fmt must be a PALFormat (for example palhdl.format.pal8), not",
        ),
        (
            FINE,
            ValueError,
            "AccumulatorToPAL needs tables of 2**frac_bits entries; frac_bits must be <= 12, "
            "not 13",
        ),
    ],
)
def test_accumulator_to_pal_out_fmt_errors(out_fmt, error, message):
    with pytest.raises(error, match=re.escape(message)):
        _acc_pal(out_fmt=out_fmt)


# --- fixed point ------------------------------------------------------------------------------


def test_fixed_to_pal_properties(elaborate):
    dut = elaborate(FixedToPAL(fmt=pal16, width=63, frac_bits=-1024))
    assert (dut.fmt, dut.width, dut.frac_bits) == (pal16, 63, -1024)
    assert dut.i.payload.shape()["value"].shape == signed(63)
    assert dut.o.payload.shape() == PALLayout(pal16)
    assert elaborate(FixedToPAL(fmt=pal8, width=2)).frac_bits == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"width": 1}, ValueError, "width must be in [2, 63], not 1"),
        ({"width": 64}, ValueError, "width must be in [2, 63], not 64"),
        ({"width": 16.0}, TypeError, "width must be an integer, not 16.0"),
        ({"width": True}, TypeError, "width must be an integer, not True"),
        ({"frac_bits": 1025}, ValueError, "frac_bits must be in [-1024, 1024], not 1025"),
        ({"frac_bits": -1025}, ValueError, "frac_bits must be in [-1024, 1024], not -1025"),
        ({"frac_bits": "3"}, TypeError, "frac_bits must be an integer, not '3'"),
    ],
)
def test_fixed_to_pal_errors(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        _fixed(**kwargs)
