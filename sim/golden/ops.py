"""Elementwise arithmetic on PAL codes: multiply, divide, add, subtract, negate, abs, compare.

Every result is correctly rounded in the log domain, then saturated to ``+-max`` or flushed to
``+0`` (``docs/format.md`` sections 5 to 7). The gateware counterparts are in
:mod:`palhdl.hdl.ops`.
"""

from __future__ import annotations

import numpy as np

from palhdl.format import PALFormat
from palhdl.sim.golden.bits import binary_fields, check_codes, check_fmt, pack
from palhdl.tables import db_table, sb_table

__all__ = ["UNORDERED", "abs_", "add", "compare", "div", "mul", "neg", "sub"]

#: Value :func:`compare` returns when either operand is NaN.
UNORDERED = 2


def mul(a, b, fmt: PALFormat) -> np.ndarray:
    """Multiply: exact log sum, sign XOR, saturate/flush; ``0 * finite = +0``; NaN propagates."""
    (sa, la, za, na), (sb, lb, zb, nb) = binary_fields(a, b, fmt)
    return pack(sa ^ sb, la + lb, fmt, zero=za | zb, nan=na | nb)


def div(a, b, fmt: PALFormat) -> np.ndarray:
    """Divide: exact log difference; ``x / 0 = NaN`` (also ``0 / 0``), ``0 / x = +0``."""
    (sa, la, za, na), (sb, lb, zb, nb) = binary_fields(a, b, fmt)
    return pack(sa ^ sb, la - lb, fmt, zero=za, nan=na | nb | zb)


def _table_lookup(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` for ``index < len(table)``, else 0 (the tables end where entries do)."""
    inside = index < len(table)
    return np.where(inside, table[np.where(inside, index, 0)], 0)


def add(a, b, fmt: PALFormat) -> np.ndarray:
    """Add by Gaussian logarithms, correctly rounded; ``x + (-x) = +0``; NaN propagates.

    With ``d = |La - Lb|`` the result log is ``max(La, Lb) + sb[d]`` (same signs) or
    ``max(La, Lb) + db[d]`` (opposite signs, sign of the larger magnitude), then saturated or
    flushed to zero. ``x + 0 = x``.
    """
    check_fmt(fmt).require_tables("add")
    (sa, la, za, na), (sb, lb, zb, nb) = binary_fields(a, b, fmt)
    a_bigger = la >= lb
    big = np.where(a_bigger, la, lb)
    distance = np.abs(la - lb)
    same_sign = sa == sb
    offset = np.where(
        same_sign,
        _table_lookup(sb_table(fmt.frac_bits), distance),
        _table_lookup(db_table(fmt.frac_bits), distance),
    )
    negative = np.where(a_bigger, sa, sb)
    log = big + offset
    # A zero operand passes the other one through unchanged.
    negative = np.where(za, sb, np.where(zb, sa, negative))
    log = np.where(za, lb, np.where(zb, la, log))
    cancel = ~same_sign & (distance == 0)
    return pack(negative, log, fmt, zero=(za & zb) | (cancel & ~za & ~zb), nan=na | nb)


def neg(a, fmt: PALFormat) -> np.ndarray:
    """Negate; zero and NaN are unchanged."""
    a = check_codes("a", a, fmt)
    special = (a & fmt.mag_mask) == 0
    return np.where(special, a, a ^ fmt.sign_mask).astype(fmt.code_dtype)


def sub(a, b, fmt: PALFormat) -> np.ndarray:
    """Subtract, ``a - b = a + (-b)``, correctly rounded; ``x - x = +0``."""
    return add(a, neg(check_codes("b", b, fmt), fmt), fmt)


def abs_(a, fmt: PALFormat) -> np.ndarray:
    """Take the absolute value ``|a|``; NaN is unchanged."""
    a = check_codes("a", a, fmt)
    nan = a == fmt.nan_code
    return np.where(nan, a, a & fmt.mag_mask).astype(fmt.code_dtype)


def compare(a, b, fmt: PALFormat) -> np.ndarray:
    """Compare three-way, as int8: -1 (a < b), 0 (equal), 1 (a > b), :data:`UNORDERED` if NaN."""
    (sa, la, za, na), (sb, lb, zb, nb) = binary_fields(a, b, fmt)

    def key(negative, log, zero):
        return np.where(zero, 0, np.where(negative, -(log + fmt.bias), log + fmt.bias))

    ka, kb = key(sa, la, za), key(sb, lb, zb)
    result = np.sign(ka - kb)
    return np.where(na | nb, UNORDERED, result).astype(np.int8)
