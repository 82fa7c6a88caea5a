"""The packet parser's LOAD walk: K, the words and the scales of a LOAD_A / LOAD_B payload."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.boards.hostlink.buffers import load_signature
from palhdl.boards.hostlink.loadwrite import LoadWriteStage
from palhdl.boards.hostlink.receiver import RX_ENTRY
from palhdl.hdl.unit import Unit

__all__ = ["LoadWalk", "walk_signature"]


def walk_signature() -> wiring.Signature:
    """Return the signature of the parser's side of a :class:`LoadWalk` (as the parser drives it).

    ``entry`` is the entry the parser acts on while ``got`` is set (it takes entries at least
    two cycles apart and acts on each in the cycle after taking it). ``payload``: the parser is
    in a LOAD's payload, so an entry taken in this cycle is a payload byte. ``start``: a LOAD's
    header was accepted (``is_a``: a LOAD_A, held through the packet). ``k_bad``: K was 0 or
    above ``k_max`` (K_RANGE; the rest is not written); ``last_scale``: the next payload byte
    is the last scale byte; ``complete``: the last scale byte has been acted on.
    """
    return wiring.Signature(
        {
            "entry": Out(RX_ENTRY),
            "got": Out(1),
            "payload": Out(1),
            "start": Out(1),
            "is_a": Out(1),
            "k_bad": In(1),
            "last_scale": In(1),
            "complete": In(1),
        }
    )


class LoadWalk(Unit):
    """Walks a LOAD_A / LOAD_B payload and writes it into the operand buffers.

    The payload is K (2 bytes LE), the words (A: lane-major, K step inner; B: K-step-major,
    lane inner), then one 2-byte scale per lane. ``start`` invalidates the target buffer and
    sets the walk to K's low byte. What an entry will do (which phase of the payload it is
    in, whether it ends a word) is registered in the cycle that takes it, from registers that
    cannot change in that cycle (the walk's state changes only when an entry is acted on, never
    in a cycle that takes one), so acting on it needs no state decoding. Counters are compared
    with their limits one step ahead, against stops registered when K arrives. The writes leave
    through the two register stages of a
    :class:`~palhdl.boards.hostlink.loadwrite.LoadWriteStage`; a drop marker writes nothing.

    Parameters
    ----------
    rows, cols : int
        Array geometry, 1..64 each (lanes of LOAD_A / LOAD_B).
    k_max : int
        Deepest K of a LOAD, 1..4096.
    width : int
        Bits of an operand word, 1..64.

    Members
    -------
    control : In(walk_signature())
        From the parser.
    load : Out(load_signature(...))
        LOAD writes into the operand buffers.
    """

    @classmethod
    def check_parameters(cls, *, rows: int, cols: int, k_max: int, width: int) -> dict:
        """Validate the parameters; return them."""
        return LoadWriteStage.check_parameters(rows=rows, cols=cols, k_max=k_max, width=width)

    def __init__(self, *, rows: int, cols: int, k_max: int, width: int):
        params = self.check_parameters(rows=rows, cols=cols, k_max=k_max, width=width)
        self._rows, self._cols, self._k_max = params["rows"], params["cols"], params["k_max"]
        self._width = params["width"]
        super().__init__(
            {
                "control": In(walk_signature()),
                "load": Out(load_signature(rows=rows, cols=cols, k_max=k_max, width=width)),
            }
        )

    @property
    def word_bytes(self) -> int:
        """Bytes of an operand word on the wire."""
        return (self._width + 7) // 8

    def elaborate(self, platform):
        """Build the walk and its write stage."""
        m = Module()
        s = self._signals()
        c, load = self.control, self.load
        m.d.comb += [
            load.target_a.eq(c.is_a),
            load.invalidate_a.eq(c.start & c.is_a),
            load.invalidate_b.eq(c.start & ~c.is_a),
            c.k_bad.eq(s.k_bad),
            c.last_scale.eq(s.phase[3] & s.scale_last),
            c.complete.eq(s.phase[4]),
        ]
        word_end = s.phase[2] & (s.byte_in_word == self.word_bytes - 1)
        m.d.sync += [
            s.walk.eq(Mux(c.payload, s.phase[:4], 0)),
            s.word_end.eq(c.payload & word_end),
        ]
        with m.If(c.start):
            m.d.sync += [
                s.phase.eq(1),  # K low
                s.k_bad.eq(0),
                s.inner.eq(0),
                s.outer.eq(0),
                s.byte_in_word.eq(0),
                s.scale_index.eq(0),
                s.scale_last.eq(0),  # the limit is at least 1
            ]
        self._walk(m, s)
        self._write_stage(m, s)
        return m

    def _signals(self) -> SimpleNamespace:
        """Create the walk's state, one named signal each."""
        rows, cols = self._rows, self._cols
        lanes = range(max(self._k_max, rows, cols))
        shapes = {
            "k_bad": 1,
            "k_low": 8,
            "k_low_zero": 1,
            "k_low_one": 1,
            "k_low_above": 1,
            # The inner / outer index after which the next step is the last one.
            "inner_stop": lanes,
            "outer_stop": lanes,
            "k_one": 1,  # k == 1
            "inner": lanes,
            "outer": lanes,
            "inner_last": 1,  # inner is at its limit
            "outer_last": 1,  # outer is at its limit
            "byte_in_word": range(self.word_bytes),
            "word_low": 8 * (self.word_bytes - 1),
            "scale_index": range(2 * max(rows, cols)),
            "scale_last": 1,  # scale_index is at its limit
            # Registered in the cycle that takes the entry they act on: walk[p], the entry is
            # a payload byte of phase p (K low, K high, word, scale); the entry ends a word.
            "walk": 4,
            "word_end": 1,
        }
        s = SimpleNamespace(**{name: Signal(shape, name=name) for name, shape in shapes.items()})
        # One-hot: K low byte, K high byte, words, scales, complete. It only ever steps to the
        # next phase, from a single enable, so no priority chain of writers builds its input.
        s.phase = Signal(5, name="phase")
        return s

    def _k_high(self, m: Module, s: SimpleNamespace) -> None:
        """Take the high byte of K: K, the walk's first limits, the K range check."""
        is_a, entry = self.control.is_a, self.control.entry
        full_k = Cat(s.k_low, entry.byte)
        one = s.k_low_one & entry.is_zero
        # K - 2 (and rows - 2, cols - 2): the stops are only compared when K (rows, cols) >= 2.
        k_stop = (full_k - 2)[: len(s.inner_stop)]
        m.d.sync += [
            self.load.k.eq(full_k),
            s.inner_stop.eq(Mux(is_a, k_stop, max(self._cols - 2, 0))),
            s.outer_stop.eq(Mux(is_a, max(self._rows - 2, 0), k_stop)),
            s.k_one.eq(one),
            s.inner_last.eq(Mux(is_a, one, self._cols == 1)),
            s.outer_last.eq(Mux(is_a, self._rows == 1, one)),
        ]
        too_large = entry.above_k_high | (entry.is_k_high & s.k_low_above)
        with m.If((s.k_low_zero & entry.is_zero) | too_large):
            m.d.sync += s.k_bad.eq(1)

    def _walk(self, m: Module, s: SimpleNamespace) -> None:
        """Act on a payload byte: K, words (stepping ``inner`` / ``outer``) and scales."""
        is_a, got, entry = self.control.is_a, self.control.got, self.control.entry
        # The entry ends its phase: K low, K high, the last word, the last scale byte.
        phase_end = s.walk[0] | s.walk[1] | (s.word_end & s.inner_last & s.outer_last)
        with m.If(got & (phase_end | (s.walk[3] & s.scale_last))):
            m.d.sync += s.phase.eq(s.phase << 1)
        with m.If(got & s.walk[0]):
            m.d.sync += [
                s.k_low.eq(entry.byte),
                s.k_low_zero.eq(entry.is_zero),
                s.k_low_one.eq(entry.is_one),
                s.k_low_above.eq(entry.above_k_low),
            ]
        with m.If(got & s.walk[1]):
            self._k_high(m, s)
        with m.If(got & s.walk[2] & ~s.word_end):
            m.d.sync += s.byte_in_word.eq(s.byte_in_word + 1)
            if self.word_bytes > 1:
                m.d.sync += s.word_low.eq(Cat(s.word_low[8:], entry.byte))
        with m.If(got & s.word_end):
            m.d.sync += s.byte_in_word.eq(0)
            with m.If(s.inner_last):
                m.d.sync += [
                    s.inner.eq(0),
                    s.inner_last.eq(Mux(is_a, s.k_one, self._cols == 1)),
                    s.outer.eq(s.outer + 1),
                    s.outer_last.eq(s.outer == s.outer_stop),
                ]
            with m.Else():
                m.d.sync += [s.inner.eq(s.inner + 1), s.inner_last.eq(s.inner == s.inner_stop)]
        with m.If(got & s.walk[3]):
            scale_limit = Mux(is_a, 2 * self._rows - 1, 2 * self._cols - 1)
            m.d.sync += [
                s.scale_index.eq(s.scale_index + 1),
                s.scale_last.eq(s.scale_index + 1 == scale_limit),
            ]

    def _write_stage(self, m: Module, s: SimpleNamespace) -> None:
        """Hand what a byte writes to the write stage (K_RANGE or a drop marker: nothing)."""
        c = self.control
        m.submodules.write_stage = stage = LoadWriteStage(
            rows=self._rows, cols=self._cols, k_max=self._k_max, width=self._width
        )
        writes = c.got & ~s.k_bad & ~c.entry.drop
        m.d.comb += [
            stage.byte.eq(c.entry.byte),
            stage.word_low.eq(s.word_low),
            stage.inner.eq(s.inner),
            stage.outer.eq(s.outer),
            stage.scale_index.eq(s.scale_index),
            stage.is_a.eq(c.is_a),
            stage.write_word.eq(writes & s.word_end),
            stage.write_scale.eq(writes & s.walk[3]),
        ]
        for name in ("word", "address", "a_en", "b_en", "scale_byte", "scale_a_en", "scale_b_en"):
            m.d.comb += getattr(self.load, name).eq(getattr(stage, name))
