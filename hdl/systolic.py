"""Output-stationary systolic matrix-multiply array, generic over its arithmetic.

See ``docs/systolic.md`` for the dataflow diagram and timing.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from palhdl.hdl.providers import Arithmetic

__all__ = ["SystolicArray"]

MAX_DIM = 64


def _delay_chain(m: Module, value, cycles: int, name: str) -> list:
    """Registers ``r[0] .. r[cycles - 1]``: ``r[k]`` is ``value`` delayed by ``k + 1`` cycles
    (Views keep their layout).
    """
    chain = []
    for index in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_d{index + 1}")
        m.d.sync += reg.eq(value)
        chain.append(reg)
        value = reg
    return chain


def _delay(m: Module, value, cycles: int, name: str):
    """``value`` delayed by ``cycles`` registers (Views keep their layout)."""
    chain = _delay_chain(m, value, cycles, name)
    return chain[-1] if chain else value


class SystolicArray(wiring.Component):
    """A ``rows x cols`` output-stationary systolic array of multiply-accumulate PEs.

    Each cycle the array accepts one *beat*: column ``k`` of an A tile (``rows`` operands) on
    stream ``a`` and row ``k`` of a B tile (``cols`` operands) on stream ``b``; both transfer
    together. ``a.payload.last`` marks the final beat of a K-run: PE ``(i, j)`` then holds
    ``sum_k A[i, k] * B[k, j]`` in the provider's accumulator record and the next beat starts a
    new run. Results go to a second (shadow) register per PE, so draining one tile overlaps
    computing the next: in steady state the array performs ``rows * cols`` MACs every cycle.

    Operands are skewed on entry (row ``i`` of A and column ``j`` of B by ``i`` and ``j``
    cycles), so PE ``(i, j)`` sees the beat injected at cycle ``t`` at cycle ``t + i + j``.
    A finished tile drains row by row (row 0 first) through one readout converter per column
    onto stream ``c``: each shadow row moves up into the row below it once that one is empty,
    so the drain takes ``2 * rows - 1`` cycles at full ``c`` rate, and no enable depends on
    ``c.ready`` beyond row 0's valid bit (no array-wide enable net).

    Scales: ``a.payload.scale`` (one per row) and ``b.payload.scale`` (one per column) are
    sampled on the ``last`` beat; output lane ``(i, j)`` is read out with scale
    ``a_scale[i] + b_scale[j]``, the way the golden model applies adaptive scaling.

    Flow control: a ``last`` beat is accepted only when the previous tile has left the shadow
    registers; other beats are accepted whenever both ``a`` and ``b`` are valid. Back-pressure
    on ``c`` therefore stalls the inputs only when a whole tile is waiting, and nothing is
    dropped or duplicated.

    Parameters
    ----------
    arithmetic : Arithmetic
        What a PE multiplies and accumulates (PAL, INT8, ...).
    rows, cols : int
        Array geometry, 1..64 each.
    output : str
        Readout mode, one of ``arithmetic.output_modes`` (``"raw"`` gives accumulator records
        plus the combined scale).
    scale_bits : int
        Width of the signed scale fields, 2..32 (default 16).
    """

    def __init__(
        self,
        *,
        arithmetic: Arithmetic,
        rows: int,
        cols: int,
        output: str = "raw",
        scale_bits: int = 16,
    ):
        if not isinstance(arithmetic, Arithmetic):
            raise TypeError(f"arithmetic must be an Arithmetic provider, not {arithmetic!r}")
        for name, value in (("rows", rows), ("cols", cols)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
                raise ValueError(f"{name} must be an integer in [1, {MAX_DIM}], not {value!r}")
        if (
            isinstance(scale_bits, bool)
            or not isinstance(scale_bits, int)
            or not (2 <= scale_bits <= 32)
        ):
            raise ValueError(f"scale_bits must be an integer in [2, 32], not {scale_bits!r}")
        if output not in arithmetic.output_modes:
            raise ValueError(
                f"output must be one of {arithmetic.output_modes} for this arithmetic, "
                f"not {output!r}"
            )
        self._arithmetic = arithmetic
        self._rows = rows
        self._cols = cols
        self._output = output
        self._scale_bits = scale_bits
        a_layout = data.StructLayout(
            {
                "data": data.ArrayLayout(arithmetic.a_shape, rows),
                "scale": data.ArrayLayout(signed(scale_bits), rows),
                "last": unsigned(1),
            }
        )
        b_layout = data.StructLayout(
            {
                "data": data.ArrayLayout(arithmetic.b_shape, cols),
                "scale": data.ArrayLayout(signed(scale_bits), cols),
            }
        )
        lane = arithmetic.output_shape(output, scale_bits=scale_bits)
        c_layout = data.StructLayout({"data": data.ArrayLayout(lane, cols)})
        super().__init__(
            {
                "a": In(stream.Signature(a_layout)),
                "b": In(stream.Signature(b_layout)),
                "c": Out(stream.Signature(c_layout)),
            }
        )

    @property
    def arithmetic(self) -> Arithmetic:
        return self._arithmetic

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def cols(self) -> int:
        return self._cols

    @property
    def output(self) -> str:
        return self._output

    @property
    def scale_bits(self) -> int:
        return self._scale_bits

    @property
    def capture_delay(self) -> int:
        """Cycles from accepting a ``last`` beat until every PE has captured its result."""
        return (self._rows - 1) + (self._cols - 1) + self._arithmetic.product_latency + 1

    def elaborate(self, platform):
        m = Module()
        arith = self._arithmetic
        rows, cols = self._rows, self._cols
        control = data.StructLayout({"valid": 1, "first": 1, "last": 1})

        # --- input acceptance ---------------------------------------------------------------
        pending = Signal()  # a finished tile is being captured or drained
        first_next = Signal(init=1)
        allowed = ~self.a.payload.last | ~pending
        m.d.comb += [
            self.a.ready.eq(self.b.valid & allowed),
            self.b.ready.eq(self.a.valid & allowed),
        ]
        accept = Signal()
        m.d.comb += accept.eq(self.a.valid & self.b.valid & allowed)
        beat = Signal(control)
        m.d.comb += [
            beat.valid.eq(accept),
            beat.first.eq(first_next),
            beat.last.eq(self.a.payload.last),
        ]
        with m.If(accept):
            m.d.sync += first_next.eq(self.a.payload.last)

        # --- skew and the PE grid -------------------------------------------------------------
        a_left = [_delay(m, self.a.payload.data[i], i, f"a_skew{i}") for i in range(rows)]
        ctl_left = [_delay(m, beat, i, f"ctl_skew{i}") for i in range(rows)]
        b_top = [_delay(m, self.b.payload.data[j], j, f"b_skew{j}") for j in range(cols)]

        shadows = [[None] * cols for _ in range(rows)]
        latency = arith.product_latency
        for i in range(rows):
            # The control beat moves right one PE per cycle along with the A operand; PE
            # (i, j) needs it `latency` cycles after its operands, which is where the beat is
            # at column j + latency: one shared chain, extended past the last column.
            ctl_chain = _delay_chain(m, ctl_left[i], cols + latency, f"ctl{i}")
            a_in = a_left[i]
            for j in range(cols):
                a_reg = Signal(arith.a_shape, name=f"pe{i}_{j}_a")
                b_reg = Signal(arith.b_shape, name=f"pe{i}_{j}_b")
                m.d.sync += [a_reg.eq(a_in), b_reg.eq(b_top[j])]
                term = arith.product(m, a_reg, b_reg)
                ctl_term = ctl_chain[j + latency]
                acc = Signal(arith.acc_layout, name=f"pe{i}_{j}_acc")
                base = Signal(arith.acc_layout, name=f"pe{i}_{j}_base")
                m.d.comb += base.eq(Mux(ctl_term.first, 0, acc))
                updated = Signal(arith.acc_layout, name=f"pe{i}_{j}_updated")
                m.d.comb += updated.eq(arith.accumulate(m, base, term))
                shadow = Signal(arith.acc_layout, name=f"pe{i}_{j}_shadow")
                with m.If(ctl_term.valid):
                    m.d.sync += acc.eq(updated)
                with m.If(ctl_term.valid & ctl_term.last):
                    m.d.sync += shadow.eq(updated)
                shadows[i][j] = shadow
                a_in = a_reg
                b_top[j] = b_reg

        # --- drain: shadow rows move up one at a time, row 0 leaves first ---------------------
        # Each shadow row has a valid bit; row i loads row i + 1 when it is empty and row i + 1
        # is full. Every row's load enable is thus a function of two registers, not of the
        # consumer's ready (which would fan out to every shadow register of the array), at
        # the price of one row every other cycle.
        a_scales = [Signal(signed(self._scale_bits), name=f"a_scale{i}") for i in range(rows)]
        b_scales = [Signal(signed(self._scale_bits), name=f"b_scale{j}") for j in range(cols)]
        row_valid = [Signal(name=f"row_valid{i}") for i in range(rows)]
        countdown = Signal(range(self.capture_delay + 1))
        rows_left = Signal(range(rows + 1))
        take = Signal()  # row 0 leaves the array
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

        drain_valid = row_valid[0]
        drain_ready = Signal()
        m.d.comb += take.eq(drain_valid & drain_ready)

        # --- readout --------------------------------------------------------------------------
        lanes = []
        for j in range(cols):
            lane = Signal(arith.output_shape("raw", scale_bits=self._scale_bits), name=f"lane{j}")
            for name, _ in arith.acc_layout:
                m.d.comb += getattr(lane, name).eq(getattr(shadows[0][j], name))
            m.d.comb += lane.scale.eq(a_scales[0] + b_scales[j])
            lanes.append(lane)

        if self._output == "raw":
            m.d.comb += [self.c.valid.eq(drain_valid), drain_ready.eq(self.c.ready)]
            m.d.comb += [self.c.payload.data[j].eq(lanes[j]) for j in range(cols)]
        else:
            converters = []
            for j in range(cols):
                converter = arith.readout(self._output, scale_bits=self._scale_bits)
                m.submodules[f"readout{j}"] = converter
                for name, _ in converter.i.payload.shape():
                    m.d.comb += getattr(converter.i.payload, name).eq(getattr(lanes[j], name))
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
        return m
