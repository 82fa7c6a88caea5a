"""Comparison tops: a bare systolic array of any arithmetic on a board, without the host link.

To compare arithmetics on the same FPGA with the same tools, :class:`ArrayTop` puts a
:class:`~palhdl.hdl.systolic.SystolicArray` of any provider (:mod:`palhdl.hdl.providers`: PAL,
INT8, FP8) on a board and nothing else that would cost area: :class:`ArrayCore` feeds it from
on-chip pseudo-random sources (one :class:`LFSR` per row of A and per column of B, so no pins
are needed) and folds every result onto a few output pins (each result lane XOR-reduced into
a register per column, those registers XOR-folded onto the LEDs and the UART ``tx`` pin), so
Yosys can remove none of the array. :class:`ArrayTop` wraps the core in
:class:`~palhdl.boards.platforms.BoardTop`, which makes the ``sync`` clock (through the board's
PLL) and the reset, exactly as for the host-link build.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, Value
from amaranth.lib.wiring import In, Out

from palhdl.boards.platforms import Board, BoardTop
from palhdl.hdl.providers import Arithmetic
from palhdl.hdl.systolic import SystolicArray
from palhdl.hdl.unit import Unit
from palhdl.validate import check_instance, check_int

__all__ = ["LFSR", "LFSR_TAPS", "MAX_RUN", "ArrayCore", "ArrayTop"]

#: Feedback taps of maximal-length Fibonacci LFSRs by width (Xilinx XAPP052, positions 1..n):
#: the register steps through all ``2**n - 1`` nonzero states.
LFSR_TAPS: dict[int, tuple[int, ...]] = {
    2: (2, 1),
    3: (3, 2),
    4: (4, 3),
    5: (5, 3),
    6: (6, 5),
    7: (7, 6),
    8: (8, 6, 5, 4),
    9: (9, 5),
    10: (10, 7),
    11: (11, 9),
    12: (12, 6, 4, 1),
    13: (13, 4, 3, 1),
    14: (14, 5, 3, 1),
    15: (15, 14),
    16: (16, 15, 13, 4),
    17: (17, 14),
    18: (18, 11),
    19: (19, 6, 2, 1),
    20: (20, 17),
    21: (21, 19),
    22: (22, 21),
    23: (23, 18),
    24: (24, 23, 22, 17),
    25: (25, 22),
    26: (26, 6, 2, 1),
    27: (27, 5, 2, 1),
    28: (28, 25),
    29: (29, 27),
    30: (30, 6, 4, 1),
    31: (31, 28),
    32: (32, 22, 2, 1),
}

#: Largest K-run of :class:`ArrayCore` (beats between two ``last`` beats).
MAX_RUN = 1 << 16


class LFSR(Unit):
    """A free-running maximal-length Fibonacci LFSR in ``sync``.

    Each cycle the register shifts up by one bit and takes the XOR of its :data:`LFSR_TAPS`
    bits in at bit 0; from any nonzero state it visits all ``2**width - 1`` nonzero states.

    Parameters
    ----------
    width : int
        Register width, a key of :data:`LFSR_TAPS` (2..32).
    seed : int
        State after reset, 1 .. ``2**width - 1``.

    Members
    -------
    value : Out(width)
        The state.
    """

    @classmethod
    def check_parameters(cls, *, width: int, seed: int = 1):
        """Validate the parameters; return ``(width, seed)``."""
        width = check_int("width", width, min(LFSR_TAPS), max(LFSR_TAPS))
        return width, check_int("seed", seed, 1, (1 << width) - 1)

    def __init__(self, *, width: int, seed: int = 1):
        self._width, self._seed = self.check_parameters(width=width, seed=seed)
        super().__init__({"value": Out(self._width, init=self._seed)})

    @property
    def width(self) -> int:
        """Register width."""
        return self._width

    @property
    def seed(self) -> int:
        """State after reset."""
        return self._seed

    def elaborate(self, platform):
        """Build the shift register and its feedback."""
        m = Module()
        feedback = Value.cast(0)
        for tap in LFSR_TAPS[self._width]:
            feedback = feedback ^ self.value[tap - 1]
        m.d.sync += self.value.eq(Cat(feedback, self.value[:-1]))
        return m


def _seed(width: int, lane: int) -> int:
    """Return a nonzero seed, distinct for each of the first ``2**width - 1`` lanes."""
    period = (1 << width) - 1
    return 1 + (lane * 37) % period


class ArrayCore(Unit):
    """A :class:`~palhdl.hdl.systolic.SystolicArray` fed by LFSRs, its results folded to pins.

    The array runs flat out: ``a`` and ``b`` are always valid, every ``k``-th accepted beat is
    a ``last`` beat, and ``c`` is always ready. Row ``i`` of A and column ``j`` of B come from
    their own :class:`LFSR` (as wide as an operand, distinct seeds); the scales are zero (the
    scale path is the same for every arithmetic and Yosys removes it). Each result row that
    leaves the array is XOR-reduced lane by lane into a register per column; ``status`` bit
    ``o`` is the registered XOR of the column registers ``j`` with ``j % outputs == o``, and
    ``tx`` the registered XOR of all of them. Every PE thus reaches an output pin.

    The ports are :class:`~palhdl.boards.platforms.BoardTop`'s core interface.

    Parameters
    ----------
    arithmetic : Arithmetic
        The PEs' arithmetic (:mod:`palhdl.hdl.providers`).
    rows, cols : int
        Array geometry, as :class:`~palhdl.hdl.systolic.SystolicArray`.
    k : int
        Beats per K-run, 1..:data:`MAX_RUN` (default 64, the host link's default ``k_max``).
    outputs : int
        Width of ``status``, 1..64 (the board's LEDs).

    Members
    -------
    rx : In(1)
        Unused (the board's UART receive pin).
    tx : Out(1)
        XOR of every column's result parity.
    status : Out(outputs)
        The column parities folded to ``outputs`` bits.
    """

    @classmethod
    def check_parameters(
        cls, *, arithmetic: Arithmetic, rows: int, cols: int, k: int = 64, outputs: int = 1
    ):
        """Validate the parameters; return ``(arithmetic, rows, cols, k, outputs)``."""
        arithmetic, rows, cols, *_ = SystolicArray.check_parameters(
            arithmetic=arithmetic, rows=rows, cols=cols
        )
        for name, shape in (("a_shape", arithmetic.a_shape), ("b_shape", arithmetic.b_shape)):
            width = Shape.cast(shape).width
            if width not in LFSR_TAPS:
                raise ValueError(
                    f"arithmetic.{name} must be {min(LFSR_TAPS)} to {max(LFSR_TAPS)} bits wide "
                    f"for the operand LFSRs, not {width}"
                )
        return (
            arithmetic,
            rows,
            cols,
            check_int("k", k, 1, MAX_RUN),
            check_int("outputs", outputs, 1, 64),
        )

    def __init__(
        self, *, arithmetic: Arithmetic, rows: int, cols: int, k: int = 64, outputs: int = 1
    ):
        parameters = self.check_parameters(
            arithmetic=arithmetic, rows=rows, cols=cols, k=k, outputs=outputs
        )
        self._arithmetic, self._rows, self._cols, self._k, self._outputs = parameters
        self._array = SystolicArray(arithmetic=arithmetic, rows=rows, cols=cols)
        super().__init__({"rx": In(1), "tx": Out(1), "status": Out(self._outputs)})

    @property
    def array(self) -> SystolicArray:
        """The array (``raw`` readout, default scale width)."""
        return self._array

    @property
    def arithmetic(self) -> Arithmetic:
        """The PEs' arithmetic."""
        return self._arithmetic

    @property
    def rows(self) -> int:
        """Rows of PEs."""
        return self._rows

    @property
    def cols(self) -> int:
        """Columns of PEs."""
        return self._cols

    @property
    def k(self) -> int:
        """Beats per K-run."""
        return self._k

    @property
    def outputs(self) -> int:
        """Width of ``status``."""
        return self._outputs

    def elaborate(self, platform):
        """Build the array, its operand LFSRs, the K-run counter and the output fold."""
        m = Module()
        m.submodules.array = array = self._array
        self._operands(m, array)
        count = Signal(range(self._k), name="run_count")
        last = Signal(name="run_last")
        m.d.comb += [
            array.a.valid.eq(1),
            array.b.valid.eq(1),
            last.eq(count == self._k - 1),
            array.a.payload.last.eq(last),
            array.c.ready.eq(1),
        ]
        with m.If(array.a.ready):  # a.valid is always set: a.ready is a transfer
            m.d.sync += count.eq(Mux(last, 0, count + 1))
        self._fold(m, array)
        return m

    def _operands(self, m: Module, array: SystolicArray) -> None:
        """One LFSR per row of A and per column of B, with distinct seeds."""
        lanes = [("a", i, array.a.payload.data[i]) for i in range(self._rows)]
        lanes += [("b", j, array.b.payload.data[j]) for j in range(self._cols)]
        for index, (stream, position, operand) in enumerate(lanes):
            width = len(Value.cast(operand))
            lfsr = LFSR(width=width, seed=_seed(width, index))
            m.submodules[f"lfsr_{stream}{position}"] = lfsr
            m.d.comb += Value.cast(operand).eq(lfsr.value)

    def _fold(self, m: Module, array: SystolicArray) -> None:
        """Column parities of each result row, folded onto ``status`` and ``tx``."""
        parity = Signal(self._cols, name="column_parity")
        with m.If(array.c.valid):
            m.d.sync += [
                parity[j].eq(Value.cast(array.c.payload.data[j]).xor()) for j in range(self._cols)
            ]
        for bit in range(self._outputs):
            m.d.sync += self.status[bit].eq(Cat(parity[bit :: self._outputs]).xor())
        m.d.sync += self.tx.eq(parity.xor())


class ArrayTop(Unit):
    """Top level for ``board``: a :class:`BoardTop` around an :class:`ArrayCore`.

    A component without ports (its pins are the board resources :class:`BoardTop` requests:
    the oscillator, the UART and the LEDs). The core's ``status`` is as wide as the board has
    LEDs.

    Parameters
    ----------
    board : Board
        The target board.
    arithmetic : Arithmetic
        The PEs' arithmetic.
    rows, cols : int
        Array geometry.
    clk_freq : float
        Frequency of ``sync`` in Hz, made as :class:`BoardTop` does (:meth:`Board.pll`).
    k : int
        Beats per K-run (:class:`ArrayCore`).

    Raises
    ------
    TypeError, ValueError
        For a bad parameter (including a frequency the PLL cannot make), before any
        elaboratable exists.
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        board: Board,
        arithmetic: Arithmetic,
        rows: int,
        cols: int,
        clk_freq: float,
        k: int = 64,
    ):
        """Validate the parameters; return ``(board, core parameters, pll)``."""
        check_instance("board", board, Board)
        core = ArrayCore.check_parameters(
            arithmetic=arithmetic, rows=rows, cols=cols, k=k, outputs=board.leds
        )
        return board, core, board.pll(clk_freq)

    def __init__(
        self,
        *,
        board: Board,
        arithmetic: Arithmetic,
        rows: int,
        cols: int,
        clk_freq: float,
        k: int = 64,
    ):
        board, (arithmetic, rows, cols, k, outputs), _ = self.check_parameters(
            board=board, arithmetic=arithmetic, rows=rows, cols=cols, clk_freq=clk_freq, k=k
        )
        core = ArrayCore(arithmetic=arithmetic, rows=rows, cols=cols, k=k, outputs=outputs)
        self._top = BoardTop(board=board, core=core, clk_freq=clk_freq)
        super().__init__({})

    @property
    def board(self) -> Board:
        """The target board."""
        return self._top.board

    @property
    def core(self) -> ArrayCore:
        """The array and its operand sources."""
        return self._top.core

    @property
    def pll(self):
        """The PLL setting (``None``: ``sync`` runs from the oscillator)."""
        return self._top.pll

    @property
    def sync_freq(self) -> float:
        """The frequency ``sync`` actually runs at, in Hz."""
        return self._top.sync_freq

    def elaborate(self, platform):
        """Put the board top around the core."""
        m = Module()
        m.submodules.board = self._top
        return m
