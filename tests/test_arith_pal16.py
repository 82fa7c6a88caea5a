"""PALMultiplier and PALAdder at pal16: directed edge cases plus 100,000 random pairs per
operation, one simulation each, bit for bit against the golden model (helpers in
``test_arith.py``; the odd format I = 5, F = 6 is in ``test_arith_odd.py``).
"""

import pytest
from test_arith import check_wide_format

from palhdl.hdl.arith import PALAdder, PALMultiplier
from palhdl.sim.format import pal16


@pytest.mark.parametrize(
    ("unit", "select", "pipelined"),
    [
        (PALMultiplier, PALMultiplier.OP_MUL, False),
        (PALMultiplier, PALMultiplier.OP_DIV, True),
        (PALAdder, 0, True),
        (PALAdder, 1, False),
    ],
    ids=["mul", "div-pipelined", "add-pipelined", "sub"],
)
def test_pal16(unit, select, pipelined):
    check_wide_format(pal16, unit, select, pipelined=pipelined, seed=16 + 2 * select + pipelined)
