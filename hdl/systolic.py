"""Output-stationary systolic matrix-multiply array, generic over its arithmetic.

See ``docs/systolic.md`` for the dataflow diagram and timing. The stream payloads are named
layouts (:func:`a_beat_layout`, :func:`b_beat_layout`, :func:`c_beat_layout`); hosts pack and
unpack beats from them (:mod:`palhdl.sim.driver`, :mod:`palhdl.boards.hostlink`).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from palhdl.format import SCALE_BITS
from palhdl.hdl.providers import Arithmetic, table_write_layout
from palhdl.hdl.readout import check_scale_bits
from palhdl.hdl.unit import Unit
from palhdl.validate import check_instance, check_int

__all__ = ["MAX_DIM", "SystolicArray", "a_beat_layout", "b_beat_layout", "c_beat_layout"]

#: Largest number of rows or columns.
MAX_DIM = 64

_ARITHMETIC_EXAMPLE = "PALArithmetic(config=MacConfig(pal8))"


def a_beat_layout(arithmetic: Arithmetic, rows: int, scale_bits: int = SCALE_BITS):
    """Return the payload of stream ``a``: one column of an A tile.

    Fields: ``data`` (``rows`` operands, row 0 first), ``scale`` (``rows`` signed scale
    octaves, sampled on the ``last`` beat) and ``last`` (the beat ends a K-run).
    """
    return data.StructLayout(
        {
            "data": data.ArrayLayout(arithmetic.a_shape, rows),
            "scale": data.ArrayLayout(signed(scale_bits), rows),
            "last": unsigned(1),
        }
    )


def b_beat_layout(arithmetic: Arithmetic, cols: int, scale_bits: int = SCALE_BITS):
    """Return the payload of stream ``b``: one row of a B tile, ``data`` and ``scale``."""
    return data.StructLayout(
        {
            "data": data.ArrayLayout(arithmetic.b_shape, cols),
            "scale": data.ArrayLayout(signed(scale_bits), cols),
        }
    )


def c_beat_layout(arithmetic: Arithmetic, cols: int, output: str, scale_bits: int = SCALE_BITS):
    """Return the payload of stream ``c``: one result row, ``data`` (``cols`` output lanes).

    A lane is ``arithmetic.output_shape(output, scale_bits=scale_bits)``.
    """
    lane = arithmetic.output_shape(output, scale_bits=scale_bits)
    return data.StructLayout({"data": data.ArrayLayout(lane, cols)})


#: The control beat that travels with the A operands: ``restart`` is ``valid & last``.
_CONTROL = data.StructLayout({"valid": 1, "restart": 1})


def _delay_chain(m: Module, value, cycles: int, name: str, *, control: bool = False) -> list:
    """Add registers ``r[0] .. r[cycles - 1]``: ``r[k]`` is ``value`` delayed ``k + 1`` cycles.

    Views keep their layout. Datapath registers have no reset; ``control`` registers (of
    :data:`_CONTROL`) reset to an invalid beat with ``restart`` set.
    """
    chain = []
    for index in range(cycles):
        if control:
            reg = Signal(_CONTROL, name=f"{name}_d{index + 1}", init={"restart": 1})
        else:
            reg = Signal(value.shape(), name=f"{name}_d{index + 1}", reset_less=True)
        m.d.sync += reg.eq(value)
        chain.append(reg)
        value = reg
    return chain


def _delay(m: Module, value, cycles: int, name: str, *, control: bool = False):
    """``value`` delayed by ``cycles`` registers, as :func:`_delay_chain`."""
    chain = _delay_chain(m, value, cycles, name, control=control)
    return chain[-1] if chain else value


class SystolicArray(Unit):
    """A ``rows x cols`` output-stationary systolic array of multiply-accumulate PEs.

    Each cycle the array accepts one *beat*: column ``k`` of an A tile (``rows`` operands) on
    stream ``a`` and row ``k`` of a B tile (``cols`` operands) on stream ``b``; both transfer
    together. ``a.payload.last`` marks the final beat of a K-run: PE ``(i, j)`` then holds
    ``sum_k A[i, k] * B[k, j]`` in the provider's accumulator record and the next beat starts a
    new run. Results go to a second (shadow) register per PE, so draining one tile overlaps
    computing the next: in steady state the array performs ``rows * cols`` MACs every cycle.

    Operands are skewed on entry (row ``i`` of A and column ``j`` of B by ``i`` and ``j``
    cycles), so PE ``(i, j)`` sees the beat injected at cycle ``t`` at cycle ``t + i + j``;
    before that the provider may transform them once per row and column
    (``arithmetic.enter``: a block-scaled PAL operand is lowered by its offset there).
    A finished tile drains row by row (row 0 first) through one readout converter per column
    onto stream ``c``: each shadow row moves up into the row below it once that one is empty,
    so the drain takes ``2 * rows - 1`` cycles at full ``c`` rate, and no enable depends on
    ``c.ready`` beyond row 0's valid bit (no array-wide enable net).

    Scales: ``a.payload.scale`` (one per row) and ``b.payload.scale`` (one per column) are
    sampled on the ``last`` beat; output lane ``(i, j)`` is read out with scale
    ``a_scale[i] + b_scale[j]`` (modulo ``2**scale_bits``), the way the golden model applies
    adaptive scaling.

    Flow control: a ``last`` beat is accepted only when the previous tile has left the shadow
    registers; other beats are accepted whenever both ``a`` and ``b`` are valid. Back-pressure
    on ``c`` therefore stalls the inputs only when a whole tile is waiting, and nothing is
    dropped or duplicated.

    Run-time loadable state (a provider whose ``table_layout`` is not ``None``, for example
    ``PALArithmetic(loadable=True)``): stream ``table`` is always ready and each transfer is
    written into every PE (every PE's product-term table), through one register stage and then
    a register per row, passed down from row to row like the skewed operands, so the write is
    no array-wide net. A beat accepted
    :attr:`table_latency` or more cycles after a table transfer sees that write; a write while
    a tile is in flight (its beats still in the array) makes that tile's results unspecified:
    a host writes only when the array is idle.

    Parameters
    ----------
    arithmetic : Arithmetic
        What a PE multiplies and accumulates (PAL, INT8, FP8).
    rows, cols : int
        Array geometry, 1..:data:`MAX_DIM` each.
    output : str
        Readout mode, one of ``arithmetic.output_modes`` (``"raw"`` gives accumulator records
        plus the combined scale).
    scale_bits : int
        Width of the signed scale fields, 2..32 (default :data:`palhdl.format.SCALE_BITS`);
        every readout is generic over it.

    Members
    -------
    a : In(stream.Signature(a_layout))
        A-operand beats, :func:`a_beat_layout`.
    b : In(stream.Signature(b_layout))
        B-operand beats, :func:`b_beat_layout`.
    c : Out(stream.Signature(c_layout))
        Result rows, :func:`c_beat_layout`: ``rows`` beats per tile, row 0 first.
    table : In(stream.Signature(arithmetic.table_layout))
        Present when the provider has run-time loadable state: writes into every PE, always
        ready (for a PAL provider ``{"addr", "data"}``, :func:`~palhdl.hdl.pe.table_load_layout`,
        one table entry per transfer).
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        arithmetic: Arithmetic,
        rows: int,
        cols: int,
        output: str = "raw",
        scale_bits: int = SCALE_BITS,
    ):
        """Validate the parameters; return them as a tuple in this order."""
        check_instance("arithmetic", arithmetic, Arithmetic, _ARITHMETIC_EXAMPLE)
        return (
            arithmetic,
            check_int("rows", rows, 1, MAX_DIM),
            check_int("cols", cols, 1, MAX_DIM),
            arithmetic.check_mode(output),
            check_scale_bits(scale_bits),
        )

    def __init__(
        self,
        *,
        arithmetic: Arithmetic,
        rows: int,
        cols: int,
        output: str = "raw",
        scale_bits: int = SCALE_BITS,
    ):
        parameters = self.check_parameters(
            arithmetic=arithmetic, rows=rows, cols=cols, output=output, scale_bits=scale_bits
        )
        self._arithmetic, self._rows, self._cols, self._output, self._scale_bits = parameters
        members = {
            "a": In(stream.Signature(self.a_layout)),
            "b": In(stream.Signature(self.b_layout)),
            "c": Out(stream.Signature(self.c_layout)),
        }
        if arithmetic.table_layout is not None:
            members["table"] = In(stream.Signature(arithmetic.table_layout))
        super().__init__(members)

    @property
    def arithmetic(self) -> Arithmetic:
        """What a PE multiplies and accumulates."""
        return self._arithmetic

    @property
    def rows(self) -> int:
        """Rows of PEs (of A and of the result tile)."""
        return self._rows

    @property
    def cols(self) -> int:
        """Columns of PEs (of B and of the result tile)."""
        return self._cols

    @property
    def output(self) -> str:
        """The readout mode."""
        return self._output

    @property
    def scale_bits(self) -> int:
        """Width of the signed scale fields."""
        return self._scale_bits

    @property
    def a_layout(self) -> data.StructLayout:
        """Payload of stream ``a``, :func:`a_beat_layout`."""
        return a_beat_layout(self._arithmetic, self._rows, self._scale_bits)

    @property
    def b_layout(self) -> data.StructLayout:
        """Payload of stream ``b``, :func:`b_beat_layout`."""
        return b_beat_layout(self._arithmetic, self._cols, self._scale_bits)

    @property
    def c_layout(self) -> data.StructLayout:
        """Payload of stream ``c``, :func:`c_beat_layout`."""
        return c_beat_layout(self._arithmetic, self._cols, self._output, self._scale_bits)

    @property
    def lane_shape(self):
        """Shape of one output lane (an element of ``c_layout["data"]``)."""
        return self._arithmetic.output_shape(self._output, scale_bits=self._scale_bits)

    @property
    def capture_delay(self) -> int:
        """Cycles from accepting a ``last`` beat until every PE has captured its result."""
        return (self._rows - 1) + (self._cols - 1) + self._arithmetic.product_latency + 1

    @property
    def latency(self) -> int:
        """Cycles from accepting a ``last`` beat until the tile's first result row is valid.

        Without back-pressure: :attr:`capture_delay`, plus the readout converter's latency.
        """
        return self.capture_delay + self._arithmetic.readout_latency(self._output)

    @property
    def table_latency(self) -> int:
        """Cycles from a ``table`` transfer to the first beat that sees its write, 2.

        The write reaches row 0 through two registers and lands on the clock edge after;
        a beat accepted two cycles after the transfer is looked up on the edge after that in
        PE (0, 0). Row ``i`` gets the write ``i`` cycles later, through a register per row,
        and the beat reaches it ``i`` cycles later too.
        """
        return 2

    def elaborate(self, platform):
        """Input acceptance, the skewed PE grid, the drain, the readout."""
        m = Module()
        accept, beat, pending = self._accept(m)
        shadows = self._grid(m, beat, self._table_rows(m))
        lanes, drain_valid, drain_ready = self._drain(m, shadows, accept, pending)
        self._readout(m, lanes, drain_valid, drain_ready)
        return m

    def _accept(self, m: Module):
        """Accept a beat when ``a`` and ``b`` are valid (a ``last`` beat only when not pending).

        Returns ``(accept, beat, pending)``: the transfer, its control beat and the register
        that is set while a finished tile is being captured or drained.
        """
        pending = Signal()
        allowed = ~self.a.payload.last | ~pending
        accept = Signal()
        beat = Signal(_CONTROL)
        m.d.comb += [
            self.a.ready.eq(self.b.valid & allowed),
            self.b.ready.eq(self.a.valid & allowed),
            accept.eq(self.a.valid & self.b.valid & allowed),
            beat.valid.eq(accept),
            beat.restart.eq(accept & self.a.payload.last),
        ]
        return accept, beat, pending

    def _table_rows(self, m: Module) -> list:
        """Register ``table``, then pass it down the rows; return each row's write (or ``None``).

        A write is a value of :func:`~palhdl.hdl.providers.table_write_layout`.
        """
        arith = self._arithmetic
        if arith.table_layout is None:
            return [None] * self._rows
        m.d.comb += self.table.ready.eq(1)
        layout = table_write_layout(arith)
        write = self._table_register(m, (self.table.valid, self.table.payload), "table_in")
        rows = []
        for i in range(self._rows):
            # A chain down the rows: every register has its own input, so synthesis keeps
            # them apart (identical registers would be merged into one array-wide net), and
            # row i's write is i cycles later, as row i's operands are.
            write = self._table_register(m, write, f"table_row{i}")
            rows.append(layout(Cat(write[0], write[1].as_value())))
        return rows

    def _table_register(self, m: Module, write, name: str):
        """Register a write ``(valid, payload)``: valid with a reset, the payload without."""
        valid = Signal(name=f"{name}_valid")
        payload = Signal(self._arithmetic.table_layout, name=name, reset_less=True)
        m.d.sync += [valid.eq(write[0]), payload.eq(write[1])]
        return valid, payload

    def _grid(self, m: Module, beat, tables) -> list[list]:
        """Build the skewed operands and the PEs; return the shadow register of every PE.

        ``tables[i]`` is row ``i``'s write into its PEs' loadable state, or ``None``.
        """
        arith = self._arithmetic
        rows, cols = self._rows, self._cols
        # Operands enter the array (arith.enter: once per row of A and column of B), then skew.
        a_entered = [arith.enter(m, self.a.payload.data[i]) for i in range(rows)]
        b_entered = [arith.enter(m, self.b.payload.data[j]) for j in range(cols)]
        a_left = [_delay(m, a_entered[i], i, f"a_skew{i}") for i in range(rows)]
        ctl_left = [_delay(m, beat, i, f"ctl_skew{i}", control=True) for i in range(rows)]
        b_top = [_delay(m, b_entered[j], j, f"b_skew{j}") for j in range(cols)]
        shadows = [[None] * cols for _ in range(rows)]
        latency = arith.product_latency
        group = arith.product_group
        for i in range(rows):
            # The control beat moves right one PE per cycle along with the A operand; PE
            # (i, j) needs it `latency` cycles after its operands, which is where the beat is
            # at column j + latency: one shared chain, extended past the last column.
            ctl_chain = _delay_chain(m, ctl_left[i], cols + latency, f"ctl{i}", control=True)
            a_in = a_left[i]
            operands = []
            for j in range(cols):
                a_reg = Signal(a_in.shape(), name=f"pe{i}_{j}_a", reset_less=True)
                b_reg = Signal(b_top[j].shape(), name=f"pe{i}_{j}_b", reset_less=True)
                m.d.sync += [a_reg.eq(a_in), b_reg.eq(b_top[j])]
                operands.append((a_reg, b_reg))
                a_in = a_reg
                b_top[j] = b_reg
            # Neighbouring PEs of a row may share product hardware (a dual-ported table).
            terms = []
            for start in range(0, cols, group):
                terms += arith.products(m, operands[start : start + group], table=tables[i])
            for j, term in enumerate(terms):
                shadows[i][j] = self._pe(m, i, j, term, ctl_chain[j + latency])
        return shadows

    def _pe(self, m: Module, i: int, j: int, term, control):
        """PE ``(i, j)``: accumulator of ``term`` and shadow register; returns the shadow.

        ``restart`` (a registered control bit) moves the sum to the shadow register and clears
        the accumulator (a synchronous reset of its flip-flops, no multiplexer). The control
        chain's registers come out of reset with ``restart`` set, so every accumulator is
        cleared once after a reset; the datapath registers themselves have no reset.
        """
        arith = self._arithmetic
        acc = Signal(arith.acc_layout, name=f"pe{i}_{j}_acc", reset_less=True)
        updated = Signal(arith.acc_layout, name=f"pe{i}_{j}_updated")
        m.d.comb += updated.eq(arith.accumulate(m, acc, term))
        shadow = Signal(arith.acc_layout, name=f"pe{i}_{j}_shadow", reset_less=True)
        with m.If(control.restart):
            m.d.sync += [acc.eq(0), shadow.eq(updated)]
        with m.Elif(control.valid):
            m.d.sync += acc.eq(updated)
        return shadow

    def _drain(self, m: Module, shadows, accept, pending):
        """Shadow rows move up one at a time, row 0 leaves first.

        Each shadow row has a valid bit; row i loads row i + 1 when it is empty and row i + 1
        is full. Every row's load enable is thus a function of two registers, not of the
        consumer's ready (which would fan out to every shadow register of the array), at the
        price of one row every other cycle. Returns the raw lanes of row 0 (record fields and
        combined scale), their valid and the ready that takes them.
        """
        arith = self._arithmetic
        rows, cols = self._rows, self._cols
        a_scales = [Signal(signed(self._scale_bits), name=f"a_scale{i}") for i in range(rows)]
        b_scales = [Signal(signed(self._scale_bits), name=f"b_scale{j}") for j in range(cols)]
        row_valid = [Signal(name=f"row_valid{i}") for i in range(rows)]
        countdown = Signal(range(self.capture_delay + 1))
        rows_left = Signal(range(rows + 1))
        drain_ready = Signal()
        take = row_valid[0] & drain_ready  # row 0 leaves the array
        with m.If(accept & self.a.payload.last):
            m.d.sync += [pending.eq(1), countdown.eq(self.capture_delay)]
            m.d.sync += [a_scales[i].eq(self.a.payload.scale[i]) for i in range(rows)]
            m.d.sync += [b_scales[j].eq(self.b.payload.scale[j]) for j in range(cols)]
        with m.Elif(countdown != 0):
            m.d.sync += countdown.eq(countdown - 1)
        with m.If(countdown == 1):  # every PE has captured its result
            m.d.sync += [valid.eq(1) for valid in row_valid]
            m.d.sync += rows_left.eq(rows)
        for i in range(rows - 1):
            with m.If(~row_valid[i] & row_valid[i + 1]):
                m.d.sync += [row_valid[i].eq(1), row_valid[i + 1].eq(0)]
                m.d.sync += [shadows[i][j].eq(shadows[i + 1][j]) for j in range(cols)]
                m.d.sync += a_scales[i].eq(a_scales[i + 1])
        with m.If(take):
            m.d.sync += [row_valid[0].eq(0), rows_left.eq(rows_left - 1)]
            with m.If(rows_left == 1):
                m.d.sync += pending.eq(0)

        lanes = []
        raw = arith.output_shape("raw", scale_bits=self._scale_bits)
        for j in range(cols):
            lane = Signal(raw, name=f"lane{j}")
            for name, _ in arith.acc_layout:
                m.d.comb += getattr(lane, name).eq(getattr(shadows[0][j], name))
            m.d.comb += lane.scale.eq(a_scales[0] + b_scales[j])
            lanes.append(lane)
        return lanes, row_valid[0], drain_ready

    def _readout(self, m: Module, lanes, drain_valid, drain_ready) -> None:
        """Drive ``c`` from the raw lanes, through one readout converter per column."""
        arith = self._arithmetic
        if self._output == "raw":
            m.d.comb += [self.c.valid.eq(drain_valid), drain_ready.eq(self.c.ready)]
            m.d.comb += [self.c.payload.data[j].eq(lane) for j, lane in enumerate(lanes)]
            return
        converters = []
        for j, lane in enumerate(lanes):
            converter = arith.readout(self._output, scale_bits=self._scale_bits)
            m.submodules[f"readout{j}"] = converter
            for name, _ in converter.i.payload.shape():
                m.d.comb += getattr(converter.i.payload, name).eq(getattr(lane, name))
            m.d.comb += [
                converter.i.valid.eq(drain_valid),
                converter.o.ready.eq(self.c.ready),
                self.c.payload.data[j].eq(converter.o.payload),
            ]
            converters.append(converter)
        m.d.comb += [
            drain_ready.eq(converters[0].i.ready),
            self.c.valid.eq(converters[0].o.valid),
        ]
