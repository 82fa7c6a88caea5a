"""Constructors, errors, properties and interfaces of the MAC units (no simulation)."""

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring

from palhdl.format import MacConfig, pal8, pal16
from palhdl.hdl.layout import PALLayout
from palhdl.hdl.mac import (
    READOUTS,
    PALMac,
    PALProductTerm,
    accumulate,
    accumulator_layout,
    term_layout,
)

CONFIG = MacConfig(pal8)


@pytest.mark.parametrize("unit", [PALMac, PALProductTerm])
@pytest.mark.parametrize("config", [None, pal8, "pal8", 8])
def test_config_must_be_mac_config(unit, config):
    with pytest.raises(TypeError, match="config must be a MacConfig"):
        unit(config=config)


@pytest.mark.parametrize("unit", [PALMac, PALProductTerm])
@pytest.mark.parametrize("pipelined", [None, 1, 0, "yes"])
def test_pipelined_must_be_bool(unit, pipelined):
    with pytest.raises(TypeError, match="pipelined must be a bool"):
        unit(config=CONFIG, pipelined=pipelined)


@pytest.mark.parametrize("readout", [None, "float", "PAL", "bfloat16", 32])
def test_readout_must_be_known(readout):
    with pytest.raises(ValueError, match="readout must be one of 'raw', 'float32', 'pal'"):
        PALMac(config=CONFIG, readout=readout)


def test_keyword_only():
    with pytest.raises(TypeError):
        PALMac(CONFIG)
    with pytest.raises(TypeError):
        PALProductTerm(CONFIG)


@pytest.mark.parametrize("function", [accumulator_layout, term_layout])
@pytest.mark.parametrize("config", [pal8, MacConfig(pal8)], ids=["format", "mac-config"])
def test_layouts_need_an_accumulator_config(function, config):
    with pytest.raises(TypeError, match="config must be an AccumulatorConfig"):
        function(config)


def test_layouts():
    config = MacConfig(pal8, acc_bits=32).accumulator
    assert accumulator_layout(config) == data.StructLayout(
        {"acc": signed(32), "nan": unsigned(1), "overflow": unsigned(1)}
    )
    assert term_layout(config) == data.StructLayout(
        {"magnitude": unsigned(31), "negative": 1, "nan": 1, "overflow": 1}
    )


def test_accumulate_rejects_other_term_layouts(elaborate):
    m = Module()
    acc = Signal(accumulator_layout(CONFIG.accumulator))
    wrong = Signal(accumulator_layout(MacConfig(pal8, acc_bits=32).accumulator))
    with pytest.raises(TypeError, match="term must be a value of accumulator_layout"):
        accumulate(m, CONFIG.accumulator, acc, wrong)
    elaborate(m)


def test_readouts_constant():
    assert READOUTS == ("raw", "float32", "pal")


@pytest.mark.parametrize("pipelined", [False, True])
def test_product_term_interface(pipelined, elaborate):
    config = MacConfig(pal16, acc_bits=40, acc_frac_bits=20)
    unit = elaborate(PALProductTerm(config=config, pipelined=pipelined))
    assert unit.config is config
    assert unit.pipelined is pipelined
    assert unit.latency == (3 if pipelined else 0)
    members = dict(unit.signature.members)
    assert members["a"].flow == wiring.In and members["a"].shape == PALLayout(pal16)
    assert members["b"].shape == PALLayout(pal16)
    assert members["term"].flow == wiring.Out
    assert members["term"].shape == accumulator_layout(config.accumulator)
    assert members["term_sm"].shape == term_layout(config.accumulator)
    assert ("en" in members) is pipelined
    with pytest.raises(AttributeError):
        unit.pipelined = not pipelined


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # W = 6 (mantissas 64..117, 7 bits), octaves q in [-16, 15], shift = q - 6 + afb.
        # Default: afb = 22, 51 bits: shifts 0..31, all below 51 - 7 = 44 (never overflow).
        (MacConfig(pal8), (0, 31)),
        # afb = 24, 32 bits: shifts 2..33; from 32 - 7 = 25 on every term overflows.
        (MacConfig(pal8, acc_bits=32), (2, 24)),
        # afb = 6, 16 bits: shifts -16..15; at -8 and below every term rounds to 0 (a 7-bit
        # mantissa plus half is below 2**8); from 16 - 7 = 9 on every term overflows.
        (MacConfig(pal8, acc_bits=16, acc_frac_bits=6), (-8, 8)),
    ],
)
def test_product_term_shift_range(config, expected, elaborate):
    assert elaborate(PALProductTerm(config=config)).shift_range == expected


@pytest.mark.parametrize(
    ("pipelined", "readout", "value_shape"),
    [
        (False, "raw", None),
        (True, "raw", None),
        (False, "float32", 32),
        (True, "pal", PALLayout(pal8)),
    ],
)
def test_mac_interface(pipelined, readout, value_shape, elaborate):
    mac = elaborate(PALMac(config=CONFIG, pipelined=pipelined, readout=readout))
    assert mac.config is CONFIG
    assert mac.pipelined is pipelined
    assert mac.readout == readout
    inputs = mac.i.payload.shape()
    outputs = mac.o.payload.shape()
    expected_in = {"a": PALLayout(pal8), "b": PALLayout(pal8), "first": unsigned(1)}
    expected_in["last"] = unsigned(1)
    expected_out = dict(accumulator_layout(CONFIG.accumulator).members)
    if value_shape is not None:
        expected_in["scale"] = signed(PALMac.SCALE_BITS)
        expected_out["value"] = value_shape
    assert dict(inputs.members).keys() == expected_in.keys()
    for name, shape in expected_in.items():
        assert inputs.members[name] == shape
    assert dict(outputs.members).keys() == expected_out.keys()
    for name, shape in expected_out.items():
        if name == "value" and shape == 32:
            assert outputs.members[name].size == 32
        else:
            assert outputs.members[name] == shape
    for attribute in ("config", "pipelined", "readout"):
        with pytest.raises(AttributeError):
            setattr(mac, attribute, None)
