"""Parameter validation of the format, MAC configuration, tables and golden model: bad input
raises ``TypeError``/``ValueError`` with a message naming the offending parameter."""

import numpy as np
import pytest

from palhdl.format import MacConfig, PALFormat, pal8, pal16, parse_format
from palhdl.sim import golden
from palhdl.tables import db_table, exp2_table, log_threshold_table, mantissa_table, sb_table

#: Valid as a word format, but beyond the table-driven operations (frac_bits > 12).
NO_TABLES = PALFormat(int_bits=2, frac_bits=13)
CONFIG = MacConfig(pal8)
CODES = np.array([1, 2, 3])


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


@pytest.mark.parametrize("text", ["pal9", "4", "4.x", "a.b", "4.3.1", ""])
def test_bad_format_name(text):
    with pytest.raises(ValueError, match="format must be one of"):
        parse_format(text)


# --- MAC configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fmt": "pal8"}, TypeError, "fmt must be a PALFormat"),
        ({"fmt": NO_TABLES}, ValueError, "frac_bits must be <= 12, not 13"),
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
        CONFIG.scale_target(k)


# --- tables -------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", [exp2_table, log_threshold_table, sb_table, db_table])
@pytest.mark.parametrize(
    ("frac_bits", "error", "match"),
    [
        (0, ValueError, r"frac_bits must be in \[1, 12\], not 0"),
        (13, ValueError, r"frac_bits must be in \[1, 12\], not 13"),
        (3.0, TypeError, "frac_bits must be an integer"),
        (True, TypeError, "frac_bits must be an integer"),
    ],
)
def test_bad_table_frac_bits(table, frac_bits, error, match):
    with pytest.raises(error, match=match):
        table(frac_bits)


@pytest.mark.parametrize("table", [exp2_table, log_threshold_table, sb_table, db_table])
def test_cached_tables_still_validate(table):
    """A table cached for ``frac_bits=1`` must not be returned for the equal keys 1.0 / True."""
    table(1)
    for bad in (1.0, True):
        with pytest.raises(TypeError, match="frac_bits must be an integer"):
            table(bad)
    mantissa_table(1, 6)
    with pytest.raises(TypeError, match="mantissa_bits must be an integer"):
        mantissa_table(1, 6.0)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((3, 0), ValueError, r"mantissa_bits must be in \[1, 60\], not 0"),
        ((3, 61), ValueError, r"mantissa_bits must be in \[1, 60\]"),
        ((3, True), TypeError, "mantissa_bits must be an integer"),
        ((3, 6.0), TypeError, "mantissa_bits must be an integer"),
        ((0, 6), ValueError, "frac_bits must be in"),
        ((13, 6), ValueError, "frac_bits must be in"),
    ],
)
def test_bad_mantissa_table(args, error, match):
    with pytest.raises(error, match=match):
        mantissa_table(*args)


# --- codes and formats in the golden model --------------------------------------------------


BINARY = [golden.mul, golden.div, golden.add, golden.sub, golden.compare]
UNARY = [golden.neg, golden.abs_]


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize(
    ("a", "b", "error", "match"),
    [
        (
            np.array([256]),
            CODES,
            ValueError,
            r"a holds 256, outside the pal8 code range \[0, 255\]",
        ),
        (CODES, np.array([-1, 0]), ValueError, "b holds -1, outside the pal8 code range"),
        (np.array([1.0, 2.0]), CODES, TypeError, "a must be an integer array of pal8 codes"),
        (CODES, np.array([True]), TypeError, "b must be an integer array"),
        (CODES, np.array(["1"]), TypeError, "b must be an integer array"),
        (CODES, np.array([1, 2], dtype=object), TypeError, "b must be an integer array"),
        (CODES, np.arange(4), ValueError, r"a and b must broadcast together, not shapes \(3,\)"),
    ],
)
def test_bad_binary_operands(op, a, b, error, match):
    with pytest.raises(error, match=match):
        op(a, b, pal8)


@pytest.mark.parametrize("op", BINARY)
def test_binary_needs_a_format(op):
    with pytest.raises(TypeError, match="fmt must be a PALFormat"):
        op(CODES, CODES, "pal8")


@pytest.mark.parametrize("op", UNARY)
@pytest.mark.parametrize(
    ("a", "fmt", "error", "match"),
    [
        (np.array([256]), pal8, ValueError, "a holds 256"),
        (np.array([1 << 16]), pal16, ValueError, r"a holds 65536, outside the pal16 code range"),
        (np.array([0.5]), pal8, TypeError, "a must be an integer array"),
        (CODES, None, TypeError, "fmt must be a PALFormat"),
    ],
)
def test_bad_unary_operands(op, a, fmt, error, match):
    with pytest.raises(error, match=match):
        op(a, fmt)


@pytest.mark.parametrize(
    "convert", [golden.decode, golden.to_float32_bits, golden.to_bfloat16_bits]
)
def test_bad_codes_to_convert(convert):
    with pytest.raises(ValueError, match="codes holds 300"):
        convert(np.array([0, 300]), pal8)
    with pytest.raises(TypeError, match="codes must be an integer array"):
        convert(np.array([0.0]), pal8)
    with pytest.raises(TypeError, match="fmt must be a PALFormat"):
        convert(CODES, 8)


@pytest.mark.parametrize(
    "call",
    [
        lambda: golden.encode([1.0], NO_TABLES),
        lambda: golden.from_fixed(np.array([1]), NO_TABLES),
        lambda: golden.add(CODES, CODES, NO_TABLES),
        lambda: golden.choose_scales(np.ones((2, 2)), NO_TABLES, per="row"),
        lambda: golden.from_float32_bits(np.array([0]), NO_TABLES),
    ],
)
def test_table_driven_operations_need_small_frac_bits(call):
    with pytest.raises(ValueError, match="frac_bits must be <= 12, not 13"):
        call()


def test_operations_without_tables_work_on_wide_fraction():
    codes = np.array([1, NO_TABLES.bias, NO_TABLES.max_code])
    assert golden.mul(codes, codes, NO_TABLES).dtype == np.uint16
    assert golden.neg(codes, NO_TABLES).tolist() == (codes | NO_TABLES.sign_mask).tolist()


# --- conversions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        (np.array(["1.0"]), TypeError, "values must be a real floating-point or integer array"),
        (np.array([1.0], dtype=object), TypeError, "values must be a real floating-point"),
        (np.array([1 + 2j]), TypeError, "values must be a real floating-point"),
        (np.array([1 << 63], dtype=np.uint64), ValueError, r"magnitude below 2\*\*63"),
    ],
)
def test_bad_encode_values(values, error, match):
    with pytest.raises(error, match=match):
        golden.encode(values, pal8)


@pytest.mark.parametrize(
    ("values", "frac_bits", "error", "match"),
    [
        (np.array([1]), 1025, ValueError, r"frac_bits must be an integer in \[-1024, 1024\]"),
        (np.array([1]), -1025, ValueError, "frac_bits must be an integer in"),
        (np.array([1]), 2.0, ValueError, "frac_bits must be an integer in"),
        (np.array([1]), True, ValueError, "frac_bits must be an integer in"),
        (np.array([1.0]), 0, TypeError, "values must be an integer array"),
        (np.array([np.iinfo(np.int64).min]), 0, ValueError, r"magnitude below 2\*\*63"),
        (np.array([1 << 63], dtype=np.uint64), 0, ValueError, r"magnitude below 2\*\*63"),
    ],
)
def test_bad_from_fixed(values, frac_bits, error, match):
    with pytest.raises(error, match=match):
        golden.from_fixed(values, pal8, frac_bits)


@pytest.mark.parametrize(
    ("convert", "bits", "error", "match"),
    [
        (golden.from_float32_bits, np.array([1 << 32]), ValueError, r"bits must hold 32-bit"),
        (golden.from_float32_bits, np.array([-1]), ValueError, r"bits must hold 32-bit"),
        (golden.from_float32_bits, np.array([1.0]), TypeError, "bits must be an integer array"),
        (golden.from_bfloat16_bits, np.array([1 << 16]), ValueError, r"bits must hold 16-bit"),
        (golden.from_bfloat16_bits, np.array([-1]), ValueError, r"bits must hold 16-bit"),
        (golden.from_bfloat16_bits, np.array([0.5]), TypeError, "bits must be an integer array"),
    ],
)
def test_bad_ieee_bit_patterns(convert, bits, error, match):
    with pytest.raises(error, match=match):
        convert(bits, pal8)


# --- matmul, dot, scaling -----------------------------------------------------------------------


SQUARE = np.full((2, 2), pal8.bias)


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "error", "match"),
    [
        (SQUARE, np.full((3, 2), 64), {}, ValueError, r"shapes \(M, K\) and \(K, N\).*\(2, 2\)"),
        (np.full(2, 64), SQUARE, {}, ValueError, "a and b must be 2-D"),
        (np.zeros((2, 0), int), np.zeros((0, 2), int), {}, ValueError, "K >= 1"),
        (SQUARE, SQUARE, {"a_scales": [1, 2, 3]}, ValueError, r"a_scales must be .* \(2,\)"),
        (SQUARE, SQUARE, {"b_scales": [0.5, 1.0]}, ValueError, "b_scales must be an integer"),
        (SQUARE, SQUARE, {"b_scales": np.zeros((2, 1), int)}, ValueError, "b_scales must be"),
        (SQUARE * 4, SQUARE, {}, ValueError, "a holds 256"),
        (SQUARE.astype(float), SQUARE, {}, TypeError, "a must be an integer array"),
    ],
)
def test_bad_matmul(a, b, kwargs, error, match):
    with pytest.raises(error, match=match):
        golden.matmul(a, b, CONFIG, **kwargs)


def test_matmul_needs_a_config():
    with pytest.raises(TypeError, match="config must be a MacConfig"):
        golden.matmul(SQUARE, SQUARE, pal8)
    with pytest.raises(TypeError, match="config must be a MacConfig"):
        golden.mac_terms(CODES, CODES, None)
    with pytest.raises(TypeError, match="config must be a MacConfig"):
        golden.matmul_values(np.ones((2, 2)), np.ones((2, 2)), pal8)


@pytest.mark.parametrize(
    ("a", "b"),
    [(CODES, CODES[:2]), (SQUARE, SQUARE), (CODES, CODES[:, None]), (np.array(64), np.array(64))],
)
def test_bad_dot(a, b):
    with pytest.raises(ValueError, match="a and b must be 1-D of equal length"):
        golden.dot(a, b, CONFIG)


def test_bad_matmul_values_shapes():
    with pytest.raises(ValueError, match="a and b must be 2-D"):
        golden.matmul_values(np.ones((2, 3)), np.ones((2, 3)), CONFIG)
    with pytest.raises(TypeError, match="a must be a real floating-point"):
        golden.matmul_values(np.array([["x"]]), np.ones((1, 1)), CONFIG)


def test_bad_readout_format():
    result = golden.matmul(SQUARE, SQUARE, CONFIG)
    with pytest.raises(TypeError, match="fmt must be a PALFormat"):
        result.to_pal("pal16")
    with pytest.raises(ValueError, match="frac_bits must be <= 12"):
        result.to_pal(NO_TABLES)


@pytest.mark.parametrize("scaler", [golden.choose_scales, golden.quantize])
@pytest.mark.parametrize(
    ("values", "kwargs", "error", "match"),
    [
        (np.ones((2, 2)), {"per": "rows"}, ValueError, r"per must be one of \(None, 'tensor'"),
        (np.ones((2, 2)), {"per": 0}, ValueError, "per must be one of"),
        (np.ones(4), {"per": "row"}, ValueError, r"values must be a 2-D array, not 1-D"),
        (np.ones((2, 2, 2)), {"per": "col"}, ValueError, "values must be a 2-D array"),
        (np.ones((2, 2)), {"per": "row", "target": 3.0}, TypeError, "target must be an integer"),
        (np.ones((2, 2)), {"per": "row", "target": True}, TypeError, "target must be an integer"),
        (np.array([["a"]]), {"per": "row"}, TypeError, "values must be a real floating-point"),
    ],
)
def test_bad_scaling(scaler, values, kwargs, error, match):
    with pytest.raises(error, match=match):
        scaler(values, pal8, **kwargs)


def test_choose_scales_requires_per_keyword():
    with pytest.raises(TypeError, match="per"):
        golden.choose_scales(np.ones((2, 2)), pal8)
