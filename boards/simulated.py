"""Simulated boards: a board's default host-link core on Verilator behind a serial-like port.

``palhdl run --port sim:icebreaker`` opens :func:`open_simulated_board`'s port instead of a
serial device: the core ``palhdl build --board icebreaker`` would build (the board's geometry,
default configuration, readout, product term and options, ``k_max`` 64), clocked at
``MIN_DIVISOR`` cycles per UART bit so the link costs as few simulated cycles as the core
allows, verilated once and cached (:class:`~palhdl.boards.hostlink.verilated.VerilatedSerial`).
"""

from __future__ import annotations

from palhdl.boards.hostlink.core import HostLinkCore
from palhdl.boards.hostlink.verilated import VerilatedSerial
from palhdl.boards.platforms import Board, get_board
from palhdl.hdl.uart import MIN_DIVISOR
from palhdl.validate import check_instance, check_int

__all__ = ["SIM_PREFIX", "is_simulated", "open_simulated_board", "simulated_core"]

#: A port name starting with this names a simulated board: ``sim:<board>``.
SIM_PREFIX = "sim:"


def simulated_core(board: Board, *, baud: int = 115200, k_max: int = 64) -> HostLinkCore:
    """Return the host-link core of ``board``'s default build, clocked at ``4 * baud``.

    The board's geometry, :meth:`~palhdl.boards.platforms.Board.default_config` (pal8),
    readout, pipelining and PE arithmetic (:meth:`~palhdl.boards.platforms.Board.arithmetic`),
    with a UART bit of ``MIN_DIVISOR`` clock cycles.

    Raises
    ------
    TypeError, ValueError
        ``board`` is not a Board, or ``baud`` or ``k_max`` is out of range (the message names
        it).
    """
    check_instance("board", board, Board)
    check_int("baud", baud, 1, 10**9)
    config = board.default_config()
    pe = board.arithmetic(config)
    return HostLinkCore(
        rows=board.rows,
        cols=board.cols,
        config=config,
        output=board.output,
        clk_freq=MIN_DIVISOR * baud,
        baud=baud,
        k_max=k_max,
        pipelined=pe.pipelined,
        term=pe.term,
        table_ports=pe.table_ports,
        loadable=pe.loadable,
        block_scaled=pe.block_scaled,
    )


def is_simulated(port) -> bool:
    """Whether ``port`` names a simulated board (a string starting with :data:`SIM_PREFIX`)."""
    return isinstance(port, str) and port.startswith(SIM_PREFIX)


def open_simulated_board(
    port: str, *, baud: int = 115200, timeout: float | None = 2.0, k_max: int = 64
) -> VerilatedSerial:
    """Open the simulated board ``port`` (``"sim:<board>"``, a key of ``BOARDS`` after the colon).

    ``timeout`` is in simulated seconds of the core's clock (``4 * baud`` Hz). The first open
    of a board verilates its core (a few seconds to minutes; cached).

    Raises
    ------
    ValueError
        ``port`` does not start with ``sim:`` or names no board; the message lists the boards.
    palhdl.sim.simulators.SimulatorNotFound
        Verilator is not installed.
    """
    if not is_simulated(port):
        raise ValueError(f"port must be {SIM_PREFIX}<board>, not {port!r}")
    name = port[len(SIM_PREFIX) :]
    try:
        board = get_board(name)
    except ValueError as error:
        raise ValueError(f"port {port!r}: {error}") from None
    return VerilatedSerial(simulated_core(board, baud=baud, k_max=k_max), timeout=timeout)
