"""Constructor and argument errors of the systolic array, its providers and the driver."""

import numpy as np
import pytest
from amaranth.back import verilog

from palhdl.format import MacConfig, pal8, pal16
from palhdl.hdl.providers import IntArithmetic, PALArithmetic
from palhdl.hdl.systolic import SystolicArray
from palhdl.sim.driver import matmul


@pytest.fixture
def pal():
    return PALArithmetic(config=MacConfig(pal8))


@pytest.mark.parametrize("name", ["rows", "cols"])
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, r"must be in \[1, 64\], not 0"),
        (65, ValueError, r"must be in \[1, 64\], not 65"),
        (2.0, TypeError, r"must be an integer, not 2\.0"),
        (True, TypeError, r"must be an integer, not True"),
    ],
)
def test_geometry_is_validated(pal, name, value, error, message):
    kwargs = {"rows": 2, "cols": 2, name: value}
    with pytest.raises(error, match=rf"^{name} {message}$"):
        SystolicArray(arithmetic=pal, **kwargs)


def test_output_mode_must_suit_the_arithmetic(pal):
    with pytest.raises(ValueError, match=r"output must be one of 'raw', 'float32', 'pal', not"):
        SystolicArray(arithmetic=pal, rows=2, cols=2, output="bf16")
    with pytest.raises(ValueError, match=r"output must be one of 'raw', not 'pal'"):
        SystolicArray(arithmetic=IntArithmetic(), rows=2, cols=2, output="pal")


def test_arithmetic_and_scale_bits_are_validated(pal):
    with pytest.raises(TypeError, match="arithmetic must be an Arithmetic"):
        SystolicArray(arithmetic=MacConfig(pal8), rows=2, cols=2)
    with pytest.raises(ValueError, match=r"scale_bits must be in \[2, 32\]"):
        SystolicArray(arithmetic=pal, rows=2, cols=2, scale_bits=1)


def test_providers_validate_parameters():
    with pytest.raises(TypeError, match="config must be a MacConfig"):
        PALArithmetic(config=pal8)
    with pytest.raises(TypeError, match="pipelined must be a bool"):
        PALArithmetic(config=MacConfig(pal8), pipelined=1)
    # The ranges of IntMac (one INT8): width 2..16, acc_bits 2 * width..62.
    with pytest.raises(ValueError, match=r"width must be in \[2, 16\]"):
        IntArithmetic(width=1)
    with pytest.raises(ValueError, match=r"acc_bits must be in \[2 \* width, 62\] = \[16, 62\]"):
        IntArithmetic(width=8, acc_bits=12)


def test_properties_are_read_only(pal, elaborate):
    array = elaborate(SystolicArray(arithmetic=pal, rows=3, cols=2, output="pal"))
    assert (array.rows, array.cols, array.output, array.scale_bits) == (3, 2, "pal", 16)
    # Skew, the unpipelined table term's read (1 cycle), the accumulator.
    assert array.capture_delay == (3 - 1) + (2 - 1) + 1 + 1
    logic = elaborate(
        SystolicArray(
            arithmetic=PALArithmetic(config=MacConfig(pal8), term="logic"), rows=3, cols=2
        )
    )
    assert logic.capture_delay == (3 - 1) + (2 - 1) + 0 + 1
    with pytest.raises(AttributeError):
        array.rows = 4


@pytest.mark.parametrize("output", ["raw", pytest.param("float32", marks=pytest.mark.slow), "pal"])
def test_exports_to_verilog(output):
    array = SystolicArray(
        arithmetic=PALArithmetic(config=MacConfig(pal16), pipelined=True),
        rows=2,
        cols=2,
        output=output,
    )
    text = verilog.convert(array, name="systolic")
    assert "module systolic" in text


def test_int_array_exports_to_verilog():
    text = verilog.convert(SystolicArray(arithmetic=IntArithmetic(), rows=2, cols=3), name="s")
    assert "module s" in text


def test_driver_rejects_bad_operands():
    with pytest.raises(ValueError, match=r"shapes \(M, K\) and \(K, N\)"):
        matmul(np.ones((2, 3)), np.ones((4, 2)), fmt=pal8, rows=2, cols=2)
    with pytest.raises(TypeError, match="both be float arrays or both PAL-code integer arrays"):
        matmul(np.ones((2, 3)), np.ones((3, 2), dtype=np.int64), fmt=pal8, rows=2, cols=2)
    with pytest.raises(ValueError, match="outside the pal8 code range"):
        matmul(np.full((2, 3), 300), np.ones((3, 2), dtype=np.int64), fmt=pal8, rows=2, cols=2)
    with pytest.raises(ValueError, match=r"does not match config\.fmt"):
        matmul(np.ones((2, 3)), np.ones((3, 2)), fmt=pal16, config=MacConfig(pal8))


def test_pal_product_term_choices():
    assert PALArithmetic(config=MacConfig(pal8)).term == "table"
    assert PALArithmetic(config=MacConfig(pal16)).term == "logic"
    assert (
        PALArithmetic(config=MacConfig(pal8), term="signed_table", table_ports=2).product_group == 2
    )
    assert PALArithmetic(config=MacConfig(pal8), term="logic", table_ports=2).product_group == 1
    latencies = {
        (term, pipelined): PALArithmetic(
            config=MacConfig(pal8), term=term, pipelined=pipelined
        ).product_latency
        for term in ("table", "logic")
        for pipelined in (False, True)
    }
    assert latencies == {
        ("table", False): 1,
        ("table", True): 2,
        ("logic", False): 0,
        ("logic", True): 3,
    }
    with pytest.raises(ValueError, match="term must be one of"):
        PALArithmetic(config=MacConfig(pal8), term="rom")
    with pytest.raises(ValueError, match=r"table_ports must be"):
        PALArithmetic(config=MacConfig(pal8), table_ports=3)
    with pytest.raises(ValueError, match="config: a pal16 product-term table"):
        PALArithmetic(config=MacConfig(pal16), term="table")
