"""A restartable accumulator whose adder is split into carry-pipelined segments.

A PE or MAC accumulator on an FPGA is limited by its carry chain: 32 bits on an iCE40 are about
9 ns of carry logic alone. :class:`SegmentedAccumulator` cuts the adder into ``segments`` pieces
with a register on each carry between them (carry-save in time): segment ``k`` adds its bits of a
term ``k`` cycles after segment 0 did, together with the carry segment ``k - 1`` produced. Every
partial sum is still computed exactly, only skewed, so the sums and the flags are those of
:func:`palhdl.hdl.mac.accumulate` bit for bit (``docs/format.md`` §8); a finished dot product
appears ``segments`` cycles later, registered, with the overflow flag computed from registered
top bits. Saturation needs the whole sum before the next addition,
so more than one segment requires a wrapping accumulator.

:func:`place_term` places a product in the window: the rounding and term-overflow rule of the
float baselines' product terms.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, Signal
from amaranth.lib.wiring import In, Out

from palhdl.format import AccumulatorConfig
from palhdl.hdl.mac import accumulate, accumulator_layout, term_layout
from palhdl.hdl.unit import Unit
from palhdl.validate import check_bool, check_instance, check_int

__all__ = ["MAX_SEGMENTS", "SegmentedAccumulator", "place_term", "segment_bounds"]

#: Most segments an accumulator may be split into.
MAX_SEGMENTS = 4


def segment_bounds(acc_bits: int, segments: int) -> list[tuple[int, int]]:
    """Split ``acc_bits`` into ``segments`` ranges ``[lo, hi)``, low first, widest at the top."""
    base, extra = divmod(acc_bits, segments)
    widths = [base] * (segments - extra) + [base + 1] * extra
    bounds, lo = [], 0
    for width in widths:
        bounds.append((lo, lo + width))
        lo += width
    return bounds


class SegmentedAccumulator(Unit):
    """Accumulate product terms; ``restart`` ends a dot product and clears the accumulator.

    Each cycle with ``valid`` adds ``term``. A cycle with ``restart`` (which implies ``valid``:
    it marks the last term of a dot product) adds its term, hands the finished sum to ``sum``
    and clears the accumulator by a synchronous reset. ``sum`` and ``done`` appear
    :attr:`latency` cycles after that (``segments``, from registers; with one segment
    combinationally, in the ``restart`` cycle). ``sum`` equals :func:`palhdl.sim.golden.dot`
    over the terms since the previous restart: ``acc`` wraps (or saturates, one segment only),
    ``nan`` and ``overflow`` are sticky within the dot product.

    The accumulator registers have no reset; they start at zero from the configuration, and
    ``restart`` is expected high once after a reset (the systolic array's control registers
    reset to it) to clear a dot product a reset interrupted.

    Parameters
    ----------
    config : AccumulatorConfig
        The accumulator window.
    segments : int
        Adder segments, 1..:data:`MAX_SEGMENTS` and at most ``acc_bits // 2``; more than one
        requires ``config.saturate == False``.
    signed_term : bool
        ``term`` is ``accumulator_layout(config)`` (a signed term) rather than
        ``term_layout(config)`` (sign-magnitude, the default).

    Members
    -------
    term : In(term_layout(config) or accumulator_layout(config))
        The product term.
    valid, restart : In(1)
        Add ``term``; it is the last term of a dot product.
    en : In(1)
        Clock enable of every register (default high): low freezes the accumulator, its
        pipeline and ``done`` (a stream MAC stalls with it; the systolic array never does).
    sum : Out(accumulator_layout(config))
        The finished dot product, while ``done``.
    done : Out(1)
        ``sum`` holds a finished dot product (one cycle per ``valid`` ``restart``; a
        ``restart`` without ``valid`` only clears).
    """

    @classmethod
    def check_parameters(
        cls, *, config: AccumulatorConfig, segments: int = 1, signed_term: bool = False
    ):
        """Validate the parameters; return ``(config, segments, signed_term)``."""
        config = check_instance("config", config, AccumulatorConfig, "MacConfig(pal8).accumulator")
        segments = check_int("segments", segments, 1, min(MAX_SEGMENTS, config.acc_bits // 2))
        if segments > 1 and config.saturate:
            raise ValueError(
                f"segments {segments} needs a wrapping accumulator (saturate=False): saturation "
                "needs the whole sum before the next term is added"
            )
        return config, segments, check_bool("signed_term", signed_term)

    def __init__(self, *, config: AccumulatorConfig, segments: int = 1, signed_term: bool = False):
        self._config, self._segments, self._signed_term = self.check_parameters(
            config=config, segments=segments, signed_term=signed_term
        )
        term = accumulator_layout(config) if signed_term else term_layout(config)
        super().__init__(
            {
                "term": In(term),
                "valid": In(1),
                "restart": In(1),
                "en": In(1, init=1),
                "sum": Out(accumulator_layout(config)),
                "done": Out(1),
            }
        )

    @property
    def config(self) -> AccumulatorConfig:
        """The accumulator window."""
        return self._config

    @property
    def segments(self) -> int:
        """Adder segments."""
        return self._segments

    @property
    def signed_term(self) -> bool:
        """Whether ``term`` is a signed term (else sign-magnitude)."""
        return self._signed_term

    @property
    def latency(self) -> int:
        """Cycles from a ``restart`` to its ``done``: 0 for one segment, else ``segments``."""
        return 0 if self._segments == 1 else self._segments

    def elaborate(self, platform):
        """One segment: the whole adder. More: a skewed adder per segment, carries registered."""
        m = Module()
        if self._segments == 1:
            self._single(m)
        else:
            self._segmented(m)
        return EnableInserter(self.en)(m)

    def _single(self, m: Module) -> None:
        acc = Signal(accumulator_layout(self._config), name="acc", reset_less=True)
        total = accumulate(m, self._config, acc, self.term)
        m.d.comb += [self.sum.eq(total), self.done.eq(self.restart & self.valid)]
        with m.If(self.restart):
            m.d.sync += acc.eq(0)
        with m.Elif(self.valid):
            m.d.sync += acc.eq(total)

    def _segmented(self, m: Module) -> None:
        """Segment ``k`` works on the term of ``k`` cycles ago; see the module docstring."""
        n = self._config.acc_bits
        if self._signed_term:
            addend, carry = self.term.acc, 0
        else:
            negative = self.term.negative
            addend = Cat(self.term.magnitude ^ negative.replicate(n - 1), negative)
            carry = negative
        valid, restart = self.valid, self.restart
        parts = []
        bounds = segment_bounds(n, self._segments)
        for k, (lo, hi) in enumerate(bounds):
            top = k == len(bounds) - 1
            acc = Signal(hi - lo, name=f"acc{k}", reset_less=True)
            if top:
                partial = acc.as_signed() + addend[lo:hi].as_signed() + carry
            else:
                partial = acc + addend[lo:hi] + carry
            with m.If(restart):
                m.d.sync += acc.eq(0)
            with m.Elif(valid):
                m.d.sync += acc.eq(partial[: hi - lo])
            # Each segment's final bits wait until the top segment's are known, then all are
            # registered together.
            parts.append(self._delay(m, partial[: hi - lo], len(bounds) - k, f"part{k}"))
            if top:
                break
            carry_next = Signal(name=f"carry{k + 1}", reset_less=True)
            m.d.sync += carry_next.eq(valid & partial[hi - lo])
            addend = self._delay(m, addend, 1, f"addend{k + 1}")
            valid = self._delay(m, valid, 1, f"valid{k + 1}", init=0)
            restart = self._delay(m, restart, 1, f"restart{k + 1}", init=1)
            carry = carry_next
        # The sum left the window when the top two bits of the exact sum differ. Those bits
        # are registered first, and the flags are computed from the registers a cycle later,
        # so no logic follows the top segment's carry chain.
        top_bits = self._delay(m, partial[hi - lo - 1 : hi - lo + 1], 1, "top_bits")
        valid = self._delay(m, valid, 1, "valid_out", init=0)
        restart = self._delay(m, restart, 1, "restart_out", init=1)
        wrapped = valid & (top_bits[0] ^ top_bits[1])
        nan, term_overflow = self._term_flags(m)
        overflow = Signal(name="sum_overflow")
        with m.If(restart):
            m.d.sync += overflow.eq(0)
        with m.Else():
            m.d.sync += overflow.eq(overflow | wrapped)
        m.d.comb += [
            self.sum.acc.eq(Cat(*parts)),
            self.sum.nan.eq(nan),
            self.sum.overflow.eq(term_overflow | overflow | wrapped),
            self.done.eq(restart & valid),
        ]

    def _term_flags(self, m: Module) -> tuple:
        """Sticky ``nan`` and term ``overflow`` of the dot product, delayed to the top segment."""
        sticky = Signal(2, name="term_flags")
        now = Cat(self.term.nan, self.term.overflow) & self.valid.replicate(2)
        with m.If(self.restart):
            m.d.sync += sticky.eq(0)
        with m.Else():
            m.d.sync += sticky.eq(sticky | now)
        delayed = self._delay(m, sticky | now, self._segments, "flags")
        return delayed[0], delayed[1]

    @staticmethod
    def _delay(m: Module, value, cycles: int, name: str, *, init: int | None = None):
        """``value`` through ``cycles`` registers (no reset unless ``init`` is given)."""
        for index in range(cycles):
            if init is None:
                reg = Signal(len(value), name=f"{name}_d{index + 1}", reset_less=True)
            else:
                reg = Signal(len(value), name=f"{name}_d{index + 1}", init=init)
            m.d.sync += reg.eq(value)
            value = reg
        return value


def place_term(
    m: Module,
    config: AccumulatorConfig,
    product,
    shift,
    *,
    shift_min: int,
    shift_max: int,
    overflow_from: int,
):
    """Place ``product * 2**shift`` in the window; return ``(magnitude, overflow)`` (comb).

    The rule of :class:`~palhdl.hdl.baselines.FloatProductTerm`: bits below the LSB round half
    away from zero; a nonzero term above ``config.term_max`` sets ``overflow`` and is clamped
    to ``acc_max`` (``config.saturate``) or 0. The shifter spans only the shifts that can
    change a term: from the one below which every product rounds to 0 up to the one at and
    above which every nonzero product overflows.

    Parameters
    ----------
    m : Module
        Receives the logic.
    config : AccumulatorConfig
        The window.
    product : Value
        The unsigned product magnitude, in units of the window's LSB times ``2**-shift``.
    shift : Value (signed)
        Its place, in ``[shift_min, shift_max]``.
    shift_min, shift_max : int
        The range of ``shift``.
    overflow_from : int
        Every nonzero product whose shift exceeds ``overflow_from`` overflows, and does so
        still when placed at any shift from ``overflow_from`` up (the caller's argument).
    """
    width = len(product)
    # Shifts at or below -(width + 1) round every product to 0.
    low = max(shift_min, -(width + 1))
    high = max(low, min(shift_max, overflow_from))
    index = shift - low
    if shift_max > high:
        index = Mux(shift > high, high - low, index)
    if shift_min < low:
        index = Mux(shift < low, 0, index)
    amount = Signal(range(high - low + 1))
    m.d.comb += amount.eq(index)
    shifted = (product << amount)[: width + high - low]
    if low < 0:
        # Only right shifts (amount < -low) round, and they leave `shifted` below
        # 2**(width - low - 1): the rounding adder needs only the low width - low bits.
        span = width - low
        rounded = (shifted[:span] + (1 << (-low - 1)))[-low:span]
        magnitude = Cat(rounded, shifted[span:])
    else:
        magnitude = shifted << low
    top = magnitude[config.term_bits :]
    overflow = top.any() if len(top) else Const(0, 1)
    kept = magnitude[: config.term_bits]
    if config.saturate:
        kept = Mux(overflow, config.acc_max, kept)
    elif len(top):
        kept = Mux(overflow, 0, kept)
    return kept, overflow
