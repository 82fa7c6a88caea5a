"""PALMultiplier and PALAdder at the odd format I = 5, F = 6 (12 bits): directed edge cases
plus 100,000 random pairs per operation, one simulation each, bit for bit against the golden
model (helpers in ``test_arith.py``). Split from ``test_arith_pal16.py`` for pytest-xdist.
"""

import pytest
from test_arith import check_wide_format

from palhdl.hdl.arith import PALAdder, PALMultiplier
from palhdl.sim.format import PALFormat

ODD = PALFormat(int_bits=5, frac_bits=6)


@pytest.mark.parametrize(
    ("unit", "select", "pipelined"),
    [
        (PALMultiplier, PALMultiplier.OP_MUL, True),
        (PALMultiplier, PALMultiplier.OP_DIV, False),
        (PALAdder, 0, False),
        (PALAdder, 1, True),
    ],
    ids=["mul-pipelined", "div", "add", "sub-pipelined"],
)
def test_odd_format(unit, select, pipelined):
    check_wide_format(ODD, unit, select, pipelined=pipelined, seed=56 + 2 * select + pipelined)
