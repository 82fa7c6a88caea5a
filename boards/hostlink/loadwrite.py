"""The packet parser's LOAD write stage: a payload byte in, operand-buffer strobes out."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib.wiring import In, Out

from palhdl.boards.hostlink.buffers import SCALE_BYTES, OperandBuffers
from palhdl.hdl.unit import Unit

__all__ = ["LoadWriteStage"]


class LoadWriteStage(Unit):
    """Registers a LOAD payload byte's write in two steps: what it writes, then the strobes.

    The first register stage takes the word (the byte completing it above the earlier bytes),
    its address and lane, the scale byte and index, and whether the byte completes a word or is
    a scale byte; the second decodes the lane into the per-lane write enables of the operand
    buffers (:func:`~palhdl.boards.hostlink.buffers.load_signature`). A payload is K, the words
    (A: lane-major, K step inner; B: K-step-major, lane inner), then the scale bytes; the
    parser's ``inner`` / ``outer`` counters walk the words.

    Parameters
    ----------
    rows, cols : int
        Array geometry, 1..64 each (lanes of the A and B tiles).
    k_max : int
        Deepest K of a LOAD, 1..4096.
    width : int
        Bits of an operand word, 1..64.

    Members
    -------
    byte : In(8)
        The payload byte acted on.
    word_low : In(8 * (word_bytes - 1))
        The earlier bytes of the word ``byte`` completes (little endian).
    inner, outer : In(range(max(k_max, rows, cols)))
        The word's position: K step and lane of an A word, lane and K step of a B word.
    scale_index : In(range(2 * max(rows, cols)))
        The scale byte's index (two per lane, low byte first).
    is_a : In(1)
        The LOAD is a LOAD_A.
    write_word, write_scale : In(1)
        ``byte`` completes a word / is a scale byte (at most one of them).
    word, address, a_en, b_en, scale_byte, scale_a_en, scale_b_en : Out
        The write, two cycles later, as the fields of the same names of
        :func:`~palhdl.boards.hostlink.buffers.load_signature`.
    """

    @classmethod
    def check_parameters(cls, *, rows: int, cols: int, k_max: int, width: int) -> dict:
        """Validate the parameters (those of the buffers it writes); return them."""
        return OperandBuffers.check_parameters(rows=rows, cols=cols, k_max=k_max, width=width)

    def __init__(self, *, rows: int, cols: int, k_max: int, width: int):
        params = self.check_parameters(rows=rows, cols=cols, k_max=k_max, width=width)
        self._rows, self._cols, self._k_max = params["rows"], params["cols"], params["k_max"]
        self._width = params["width"]
        lanes = max(rows, cols)
        steps = range(max(k_max, lanes))
        super().__init__(
            {
                "byte": In(8),
                "word_low": In(8 * ((width + 7) // 8 - 1)),
                "inner": In(steps),
                "outer": In(steps),
                "scale_index": In(range(2 * lanes)),
                "is_a": In(1),
                "write_word": In(1),
                "write_scale": In(1),
                "word": Out(width),
                "address": Out(range(k_max)),
                "a_en": Out(rows),
                "b_en": Out(cols),
                "scale_byte": Out(8),
                "scale_a_en": Out(SCALE_BYTES * rows),
                "scale_b_en": Out(SCALE_BYTES * cols),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from a byte on the inputs to its write on the outputs."""
        return 2

    def elaborate(self, platform):
        """Build the two register stages."""
        m = Module()
        rows, cols, is_a = self._rows, self._cols, self.is_a
        lanes = max(rows, cols)
        word = Signal(self._width)
        address, lane = Signal(range(self._k_max)), Signal(range(lanes))
        scale_byte, scale_index = Signal(8), Signal(range(2 * lanes))
        step_is_a, write_word, write_scale = Signal(), Signal(), Signal()
        m.d.sync += [
            word.eq(Cat(self.word_low, self.byte)[: self._width]),
            address.eq(Mux(is_a, self.inner, self.outer)),
            lane.eq(Mux(is_a, self.outer, self.inner)),
            scale_byte.eq(self.byte),
            scale_index.eq(self.scale_index),
            step_is_a.eq(is_a),
            write_word.eq(self.write_word),
            write_scale.eq(self.write_scale),
        ]
        words_a, words_b = write_word & step_is_a, write_word & ~step_is_a
        scales_a, scales_b = write_scale & step_is_a, write_scale & ~step_is_a
        m.d.sync += [
            self.word.eq(word),
            self.address.eq(address),
            self.a_en.eq(Mux(words_a, Cat(lane == i for i in range(rows)), 0)),
            self.b_en.eq(Mux(words_b, Cat(lane == j for j in range(cols)), 0)),
            self.scale_byte.eq(scale_byte),
            self.scale_a_en.eq(Mux(scales_a, Cat(scale_index == i for i in range(2 * rows)), 0)),
            self.scale_b_en.eq(Mux(scales_b, Cat(scale_index == j for j in range(2 * cols)), 0)),
        ]
        return m
