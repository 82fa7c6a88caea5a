"""The format family and the accumulator configurations: validation, derived constants, bounds.

The overflow bound ``MacConfig.max_exact_k`` is checked against an independent exact
computation: the term of every product log two codes can produce, from ``tests/exact.py``'s
mantissas and ``fractions.Fraction`` arithmetic, maximised over all code pairs.
"""

import dataclasses
import math
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
from exact import mantissa_round, split

from palhdl.format import (
    MAX_TABLE_FRAC_BITS,
    AccumulatorConfig,
    MacConfig,
    PALFormat,
    pal8,
    pal16,
    parse_format,
)
from palhdl.sim import golden

ODD = PALFormat(int_bits=5, frac_bits=6)
#: Valid as a word format, but beyond the table-driven operations (frac_bits > 12).
NO_TABLES = PALFormat(int_bits=2, frac_bits=13)

# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"int_bits": 1, "frac_bits": 3}, ValueError, r"int_bits must be in \[2, inf\], not 1"),
        ({"int_bits": -4, "frac_bits": 3}, ValueError, "int_bits"),
        ({"int_bits": 4, "frac_bits": 0}, ValueError, r"frac_bits must be in \[1, inf\], not 0"),
        ({"int_bits": 20, "frac_bits": 12}, ValueError, r"width .* <= 32, not 33"),
        ({"int_bits": 4.0, "frac_bits": 3}, TypeError, "int_bits must be an integer"),
        ({"int_bits": 4, "frac_bits": "3"}, TypeError, "frac_bits must be an integer"),
        ({"int_bits": True, "frac_bits": 3}, TypeError, "int_bits must be an integer"),
        ({"int_bits": 4, "frac_bits": False}, TypeError, "frac_bits must be an integer"),
        ({"int_bits": None, "frac_bits": 3}, TypeError, "int_bits must be an integer"),
    ],
)
def test_bad_format(kwargs, error, match):
    with pytest.raises(error, match=match):
        PALFormat(**kwargs)


def test_format_accepts_numpy_integers_and_widest_word():
    fmt = PALFormat(np.int64(4), np.int8(3))
    assert type(fmt.int_bits) is int and type(fmt.frac_bits) is int
    assert fmt == pal8
    assert golden.encode([2.0], fmt).tolist() == [pal8.bias + pal8.units]
    assert MacConfig(fmt, max_k=np.int32(100)).acc_bits == MacConfig(pal8, max_k=100).acc_bits
    assert PALFormat(int_bits=30, frac_bits=1).width == 32


@pytest.mark.parametrize(
    "text", ["pal9", "4", "4.x", "a.b", "4.3.1", "", "\u0664.\u0663", "4.\u00b3"]
)
def test_bad_format_name(text):
    with pytest.raises(ValueError, match="format must be one of"):
        parse_format(text)


def test_preset_constants():
    """The numbers of ``docs/format.md`` section 1, from the definitions."""
    assert (pal8.width, pal8.mag_bits, pal8.bias, pal8.units) == (8, 7, 64, 8)
    assert (pal8.log_min, pal8.log_max) == (-63, 63)
    assert (pal8.zero_code, pal8.nan_code, pal8.max_code, pal8.min_code) == (0, 0x80, 0x7F, 1)
    assert (pal8.mag_mask, pal8.sign_mask, pal8.code_dtype) == (0x7F, 0x80, np.uint8)
    assert (pal16.width, pal16.bias, pal16.units, pal16.log_max) == (16, 16384, 128, 16383)
    assert (pal16.nan_code, pal16.max_code, pal16.code_dtype) == (0x8000, 0x7FFF, np.uint16)
    assert PALFormat(int_bits=20, frac_bits=3).code_dtype == np.uint32
    assert (str(pal8), str(pal16), str(ODD)) == ("pal8", "pal16", "pal12_i5f6")
    assert parse_format("pal16") is pal16 and parse_format("5.6") == ODD


def test_require_tables():
    PALFormat(int_bits=2, frac_bits=MAX_TABLE_FRAC_BITS).require_tables("encode")
    with pytest.raises(ValueError, match=r"^encode needs tables .* <= 12, not 13$"):
        NO_TABLES.require_tables("encode")


# --- accumulator window -------------------------------------------------------------------------


def test_accumulator_config_defaults_and_derived_values():
    window = AccumulatorConfig(acc_bits=np.int64(16), acc_frac_bits=-3)
    assert (window.acc_bits, window.acc_frac_bits, window.term_bits, window.saturate) == (
        16,
        -3,
        15,
        True,
    )
    assert type(window.acc_bits) is int
    assert (window.acc_max, window.acc_min, window.term_max) == (2**15 - 1, 1 - 2**15, 2**15 - 1)
    assert window.acc_top_exp == 15 + 3
    wrapping = AccumulatorConfig(acc_bits=30, acc_frac_bits=10, term_bits=11, saturate=False)
    assert (wrapping.acc_max, wrapping.acc_min, wrapping.term_max) == (
        2**29 - 1,
        -(2**29),
        2**11 - 1,
    )
    assert wrapping.acc_top_exp == 19


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"acc_bits": 7}, ValueError, r"acc_bits must be in \[8, 62\], not 7"),
        ({"acc_bits": 63}, ValueError, r"acc_bits must be in \[8, 62\], not 63"),
        ({"acc_bits": 32.0}, TypeError, "acc_bits must be an integer"),
        ({"acc_frac_bits": 4097}, ValueError, r"acc_frac_bits must be in \[-4096, 4096\]"),
        ({"acc_frac_bits": -4097}, ValueError, r"acc_frac_bits must be in \[-4096, 4096\]"),
        ({"acc_frac_bits": True}, TypeError, "acc_frac_bits must be an integer"),
        ({"term_bits": 1}, ValueError, r"term_bits must be in \[2, 31\], not 1"),
        ({"term_bits": 32}, ValueError, r"term_bits must be in \[2, 31\], not 32"),
        ({"term_bits": 8.0}, TypeError, "term_bits must be an integer"),
        ({"saturate": 1}, TypeError, r"saturate must be a bool \(True or False\), not 1"),
        ({"saturate": None}, TypeError, "saturate must be a bool"),
    ],
)
def test_bad_accumulator_config(kwargs, error, match):
    with pytest.raises(error, match=match):
        AccumulatorConfig(**{"acc_bits": 32, "acc_frac_bits": 8, **kwargs})


def test_accumulator_config_is_keyword_only():
    with pytest.raises(TypeError):
        AccumulatorConfig(32, 8)


@pytest.mark.parametrize(
    "config",
    [
        MacConfig(pal8),
        MacConfig(pal16),
        MacConfig(pal8, acc_bits=16, acc_frac_bits=6, term_bits=11, saturate=False),
        MacConfig(ODD, mantissa_bits=9, acc_bits=40, acc_frac_bits=-3),
    ],
    ids=["pal8", "pal16", "pal8-wrap", "odd-negfrac"],
)
def test_mac_config_accumulator_is_its_window(config):
    window = config.accumulator
    assert window == AccumulatorConfig(
        acc_bits=config.acc_bits,
        acc_frac_bits=config.acc_frac_bits,
        term_bits=config.term_bits,
        saturate=config.saturate,
    )
    half = 2 ** (config.acc_bits - 1)
    assert config.acc_max == window.acc_max == half - 1
    assert config.acc_min == window.acc_min == (1 - half if config.saturate else -half)
    assert config.term_max == window.term_max == 2**config.term_bits - 1
    assert config.acc_top_exp == window.acc_top_exp == config.acc_bits - 1 - config.acc_frac_bits
    assert dataclasses.replace(config).accumulator == window


def test_mac_config_defaults():
    """``docs/format.md`` section 8's table."""
    exact = MacConfig(pal8)
    assert (exact.mantissa_bits, exact.mantissa_max, exact.q_min, exact.q_max) == (6, 117, -16, 15)
    assert (exact.acc_bits, exact.acc_frac_bits, exact.term_bits, exact.saturate) == (
        51,
        22,
        50,
        True,
    )
    assert exact.is_lossless and exact.exact_acc_bits(4096) == 51 and exact.acc_top_exp == 28
    window = MacConfig(pal16)
    assert (window.mantissa_bits, window.mantissa_max, window.q_min, window.q_max) == (
        10,
        2037,
        -256,
        255,
    )
    assert (window.acc_bits, window.acc_frac_bits, window.acc_top_exp) == (48, 24, 23)
    assert window.exact_acc_bits(4096) == 535 and not window.is_lossless


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fmt": "pal8"}, TypeError, "fmt must be a PALFormat"),
        (
            {"fmt": PALFormat(int_bits=2, frac_bits=13)},
            ValueError,
            "frac_bits must be <= 12, not 13",
        ),
        ({"mantissa_bits": 0}, ValueError, r"mantissa_bits must be in \[1, 60\], not 0"),
        ({"mantissa_bits": 61}, ValueError, r"mantissa_bits must be in \[1, 60\]"),
        ({"mantissa_bits": 6.0}, TypeError, "mantissa_bits must be an integer"),
        ({"mantissa_bits": True}, TypeError, "mantissa_bits must be an integer"),
        ({"acc_bits": 7}, ValueError, r"acc_bits must be in \[8, 62\], not 7"),
        ({"acc_bits": 63}, ValueError, r"acc_bits must be in \[8, 62\]"),
        ({"acc_bits": "48"}, TypeError, "acc_bits must be an integer"),
        ({"acc_frac_bits": 4097}, ValueError, r"acc_frac_bits must be in \[-4096, 4096\]"),
        ({"acc_frac_bits": -4097}, ValueError, "acc_frac_bits"),
        ({"acc_frac_bits": 2.5}, TypeError, "acc_frac_bits must be an integer"),
        ({"max_k": 0}, ValueError, r"max_k must be in \[1, 1073741824\], not 0"),
        ({"max_k": False}, TypeError, "max_k must be an integer"),
        ({"acc_bits": 20, "term_bits": 20}, ValueError, r"term_bits must be in \[2, 19\], not 20"),
        ({"term_bits": 1}, ValueError, r"term_bits must be in \[2, "),
        ({"term_bits": 8.0}, TypeError, "term_bits must be an integer"),
        ({"saturate": 1}, TypeError, r"saturate must be a bool \(True or False\), not 1"),
    ],
)
def test_bad_mac_config(kwargs, error, match):
    with pytest.raises(error, match=match):
        MacConfig(**{"fmt": pal8, **kwargs})


@pytest.mark.parametrize(("k", "error"), [(0, ValueError), (-3, ValueError), (2.0, TypeError)])
def test_bad_scale_target_k(k, error):
    with pytest.raises(error, match="k must be"):
        MacConfig(pal8).scale_target(k)


def test_scale_target_respects_term_bits():
    # The product of two scaled maxima must stay below 2**term_bits LSBs.
    wide = MacConfig(pal8, acc_bits=32, acc_frac_bits=12)
    narrow = MacConfig(pal8, acc_bits=32, acc_frac_bits=12, term_bits=20)
    assert wide.scale_target(64) == ((32 - 1 - 12 - 1 - 6) * pal8.units) // 2
    assert narrow.scale_target(64) == ((20 - 12 - 1) * pal8.units) // 2
    assert narrow.scale_target(1 << 20) == wide.scale_target(1 << 20)


# --- the overflow bound -------------------------------------------------------------------------


def _exact_term(log: int, config: MacConfig) -> int:
    """Magnitude in accumulator LSBs of a product with log ``log``: ``m * 2**(q - W)`` rounded
    half away from zero, ``m`` from ``tests/exact.py``, before any overflow check."""
    fmt = config.fmt
    octave, r = divmod(log, fmt.units)
    mantissa = mantissa_round(r, fmt.frac_bits, config.mantissa_bits)
    in_lsbs = mantissa * Fraction(2) ** (octave - config.mantissa_bits + config.acc_frac_bits)
    return math.floor(in_lsbs + Fraction(1, 2))


@cache
def _largest_exact_term(config: MacConfig) -> int:
    """The largest term over every pair of codes (zero and NaN operands add nothing, and a
    term's magnitude does not depend on the signs)."""
    codes = np.arange(1 << config.fmt.width)
    _, log, zero, nan = split(codes, config.fmt)
    logs = np.unique(log[~zero & ~nan])
    sums = np.add.outer(logs, logs).ravel()
    reached = np.zeros(sums.max() - sums.min() + 1, dtype=bool)
    reached[sums - sums.min()] = True
    products = np.flatnonzero(reached) + sums.min()
    return max(_exact_term(int(p), config) for p in products)


BOUND_CONFIGS = {
    "pal8-exact": MacConfig(pal8),
    "pal8-w1": MacConfig(pal8, mantissa_bits=1),
    "pal8-w10": MacConfig(pal8, mantissa_bits=10, acc_bits=62, acc_frac_bits=30),
    "pal8-rounding": MacConfig(pal8, acc_bits=24, acc_frac_bits=-4),
    "pal8-narrow": MacConfig(pal8, acc_bits=16, acc_frac_bits=4),
    "pal8-4.3-w5": MacConfig(pal8, mantissa_bits=5, acc_bits=40, acc_frac_bits=-12),
    "pal8-5.2": MacConfig(PALFormat(int_bits=5, frac_bits=2)),
    "pal8-3.4": MacConfig(PALFormat(int_bits=3, frac_bits=4)),
    "odd-negfrac": MacConfig(ODD, mantissa_bits=9, acc_bits=40, acc_frac_bits=-3),
}


@pytest.mark.parametrize("name", BOUND_CONFIGS)
def test_largest_term_is_the_largest_over_all_code_pairs(name):
    config = BOUND_CONFIGS[name]
    assert config.largest_term == _largest_exact_term(config)


@pytest.mark.parametrize("name", BOUND_CONFIGS)
def test_max_exact_k_is_the_tight_bound(name):
    """``K`` terms of the largest product fit at ``max_exact_k`` and overflow one later."""
    config = BOUND_CONFIGS[name]
    largest = _largest_exact_term(config)
    k = config.max_exact_k
    if largest >= 2**config.term_bits:
        assert k == 0  # one term overflows on its own
    else:
        assert k >= 1
        assert k * largest <= config.acc_max < (k + 1) * largest


def test_pal8_bound_uses_the_reachable_top_product():
    """``max * max`` has ``P = 126``, ``q = 15``, ``r = 6``: the term ``108 * 2**31``, not the
    table's largest entry ``117 * 2**31`` (``r = 7`` is unreachable in the top octave)."""
    config = MacConfig(pal8)
    assert config.largest_term == 108 << 31 == _exact_term(2 * pal8.log_max, config)
    assert config.mantissa_max == 117
    assert config.max_exact_k == 4854 == (2**50 - 1) // (108 << 31)
    assert (2**50 - 1) // (117 << 31) == 4481  # the former, loose bound
    assert config.max_exact_k >= config.max_k  # the default exact width is sized for 4096


def test_max_exact_k_without_reachable_terms():
    """A window whose LSB is above every product rounds every term to 0: no overflow ever."""
    config = MacConfig(pal8, acc_bits=8, acc_frac_bits=-40)
    assert config.largest_term == 0 == _largest_exact_term(config)
    assert config.max_exact_k == 1 << 30
