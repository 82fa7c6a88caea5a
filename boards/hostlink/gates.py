"""Amaranth helpers shared by the host link's components."""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Cat, Const

from palhdl.boards.hostlink.protocol import crc8

__all__ = ["crc8_next", "one_hot"]


def one_hot(fsm) -> None:
    """Ask the synthesiser to encode ``fsm``'s state one-hot (Yosys ``fsm_encoding``).

    A state test is then one flip-flop, not a comparison. Yosys ignores the initial value of
    such a state register, so the domain must be reset after configuration.
    """
    fsm.state.attrs["fsm_encoding"] = "one-hot"


def crc8_next(crc, byte):
    """Amaranth expression of the CRC-8 register after ``byte`` (see :func:`crc8`).

    The update is linear over GF(2) in ``crc ^ byte``, so each output bit XORs the inputs whose
    unit vector sets it.
    """
    x = crc ^ byte
    bits = []
    for out in range(8):
        terms = [x[j] for j in range(8) if (crc8(bytes([1 << j])) >> out) & 1]
        bits.append(functools.reduce(operator.xor, terms, Const(0, 1)))
    return Cat(*bits)
