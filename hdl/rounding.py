"""The rounding cores shared by the conversion units and the accumulator readouts.

* **to PAL** (:func:`encode_pal`): a magnitude ``M * 2**e`` (integer ``M``) is normalised by a
  leading-one shifter to ``x = 1.f`` with ``p`` fraction bits; the correctly rounded log
  fraction is the number of rounding thresholds ``log_threshold_table(F) >> (62 - p)`` below
  ``x`` (exact, since ``x`` has ``p`` fraction bits and no threshold is dyadic), read from two
  ROMs indexed by the top ``F + 1`` fraction bits and one comparison of the rest; then
  ``E = (octave << F) + count + bias``, saturated or flushed.
* **to IEEE** (:func:`round_ieee`): a normalised significand with its exponent is cut to the
  IEEE precision plus a round bit and a sticky bit, shifted right with sticky into the
  subnormal range, rounded to nearest-even and clamped to infinity.

:class:`StreamConverter` is the stream plumbing of every converter: input stream ``i``, output
stream ``o``, one output per input, in order; with ``pipelined=True`` two register stages (one
shared stall, see :class:`~palhdl.hdl.pipeline.StreamPipeline`) split the path.
"""

from __future__ import annotations

import bisect

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from palhdl.hdl.layout import PALLayout, pack_word
from palhdl.hdl.pipeline import StreamPipeline
from palhdl.hdl.unit import Unit
from palhdl.tables import TABLE_PREC, log_threshold_table
from palhdl.validate import check_bool

__all__ = [
    "PIPELINED_LATENCY",
    "StreamConverter",
    "count_thresholds",
    "encode_pal",
    "logic_level",
    "normalise",
    "rom",
    "round_ieee",
]

#: Register stages of every pipelined converter (cycles from input transfer to output valid).
PIPELINED_LATENCY = 2


def logic_level(m: Module, name: str) -> Module:
    """Add and return a submodule holding one level of combinational logic.

    Levels are named in the netlist, and Amaranth's simulator re-evaluates only the levels whose
    inputs changed (a single flat module would be re-run once per level of signals).
    """
    submodule = Module()
    m.submodules[name] = submodule
    return submodule


def normalise(m: Module, magnitude):
    """Shift the leading one of unsigned ``magnitude`` to its top bit (a logarithmic shifter).

    Returns ``(normalised, zeros)``: ``normalised`` has the width of ``magnitude``; ``zeros`` is
    the count of leading zeros (meaningless for a zero magnitude).
    """
    width = len(magnitude)
    value = magnitude
    zero_bits = []
    for level in reversed(range((width - 1).bit_length())):
        step = 1 << level
        top_clear = Signal(name=f"clear{step}")
        shifted = Signal(width, name=f"shifted{step}")
        logic_level(m, f"normalise{step}").d.comb += [
            top_clear.eq(value[width - step :] == 0),
            shifted.eq(Mux(value[width - step :] == 0, value << step, value)),
        ]
        zero_bits.insert(0, top_clear)
        value = shifted
    return value, Cat(*zero_bits)


def rom(entries: list[int], index, width: int):
    """``entries[index]``: a constant ROM (``Array`` of constants; Yosys maps it to LUTs)."""
    if len(entries) == 1:
        return Const(entries[0], width)
    return Array(Const(v, width) for v in entries)[index]


def count_thresholds(m: Module, mantissa, frac_bits: int):
    """``round(log2(x) * 2**frac_bits)`` for a normalised mantissa ``x`` in ``[1, 2)``.

    ``mantissa`` is ``x`` with ``p = len(mantissa) - 1 <= 62`` fraction bits (top bit set). The
    result (``frac_bits + 1`` bits, ``0 .. 2**frac_bits``) is the number of thresholds
    ``T = log_threshold_table(frac_bits) >> (62 - p)`` below ``mantissa``.

    The top ``k = min(p, frac_bits + 1)`` fraction bits select one of ``2**k`` equal intervals
    of ``[1, 2)``. Consecutive thresholds are more than an interval apart (their ratio is
    ``2**(2**-frac_bits)``), so an interval holds at most one (checked here). Two ROMs indexed by
    the interval give the number of thresholds below it and the low ``p - k`` bits of the one
    inside it (all ones if none, which no mantissa exceeds); one comparison of the low bits
    completes the count.
    """
    p = len(mantissa) - 1
    assert 0 <= p <= TABLE_PREC
    thresholds = [int(t) >> (TABLE_PREC - p) for t in log_threshold_table(frac_bits)]
    k = min(p, frac_bits + 1)
    low_bits = p - k
    below, inside = [], []
    for interval in range(1 << k):
        start = ((1 << k) | interval) << low_bits
        first = bisect.bisect_left(thresholds, start)
        below.append(first)
        end = start + (1 << low_bits)
        hits = thresholds[first : bisect.bisect_left(thresholds, end)]
        assert low_bits == 0 or len(hits) <= 1, "thresholds closer than an interval"
        inside.append(hits[0] - start if hits else (1 << low_bits) - 1)
    interval = mantissa[low_bits:p]
    count = Signal(frac_bits + 1, name="log_count")
    value = rom(below, interval, frac_bits + 1)
    if low_bits:
        value = value + (mantissa[:low_bits] > rom(inside, interval, low_bits))
    logic_level(m, "log_count").d.comb += count.eq(value)
    return count


def encode_pal(
    m: Module,
    pipe: StreamPipeline,
    valid,
    out,
    *,
    fmt,
    negative,
    magnitude,
    exponent,
    nan,
    infinite,
):
    """Drive PAL word ``out`` with ``(-1)**negative * magnitude * 2**exponent``, rounded.

    ``magnitude`` is unsigned, ``exponent`` signed; rounding is to nearest in the log domain as
    the golden model's ``log_round`` and word packing: a zero magnitude gives +0, ``infinite``
    saturates, NaN wins. One pipeline stage after the normaliser, one on the output.

    Returns
    -------
    Value
        The output ``valid``.
    """
    normalised, zeros = normalise(m, magnitude)
    octave = Signal(signed(max(len(exponent), len(zeros) + 1) + 2), name="octave")
    zero = Signal(name="zero")
    logic_level(m, "octave").d.comb += [
        octave.eq(exponent + (len(magnitude) - 1) - zeros),
        zero.eq(magnitude == 0),
    ]
    valid, normalised, octave, negative, zero, nan, infinite = pipe.stage(
        valid, normalised, octave, negative, zero, nan, infinite
    )
    count = count_thresholds(m, normalised, fmt.frac_bits)
    log = Mux(infinite, fmt.mag_mask, (octave << fmt.frac_bits) + count + fmt.bias)
    word = Signal(PALLayout(fmt))
    pack_word(logic_level(m, "pack"), word, log=log, negative=negative, nan=nan, zero=zero, fmt=fmt)
    valid, word = pipe.stage(valid, word)
    m.d.comb += out.eq(word)
    return valid


def round_ieee(
    m: Module,
    pipe: StreamPipeline,
    valid,
    out,
    *,
    negative,
    significand,
    sticky,
    exponent,
    zero,
    nan,
):
    """Drive IEEE word ``out`` (a :class:`~palhdl.hdl.layout.FloatLayout` view), rounded.

    The value is ``significand * 2**(exponent - len(significand) + 1)`` (plus a positive
    fraction below its LSB when ``sticky``), rounded to nearest-even like the golden model's
    IEEE rounding: normalised ``significand`` (top bit set), subnormals, overflow to infinity,
    tiny values to signed zero. ``zero`` gives +0 and ``nan`` the quiet NaN. Ends with one
    pipeline stage.

    Returns
    -------
    Value
        The output ``valid``.
    """
    layout = out.shape()
    man_bits, exp_bits = layout.man_bits, layout.exp_bits
    # The significand, a round bit and a sticky bit (OR of everything below): man_bits + 3 bits.
    keep = man_bits + 3
    width = len(significand)
    if width >= keep:
        below = significand[: width - keep] != 0 if width > keep else Const(0)
        reduced_value = significand[width - keep :] | below | sticky
    else:
        reduced_value = (significand << (keep - width)) | sticky
    reduced = Signal(keep, name="ieee_reduced")
    biased = Signal(signed(max(len(exponent), exp_bits) + 2), name="ieee_biased_exponent")
    # Subnormal results shift right by 1 - biased; from ``keep`` on everything is sticky.
    shift = Signal(range(keep + 1), name="ieee_shift")
    biased_value = exponent + layout.bias
    logic_level(m, "ieee_align").d.comb += [
        reduced.eq(reduced_value),
        biased.eq(biased_value),
        shift.eq(Mux(biased_value < 1, Mux(biased_value < 1 - keep, keep, 1 - biased_value), 0)),
    ]
    shifted = reduced >> shift
    kept = shifted[2:]
    sticky_out = ((shifted << shift)[:keep] != reduced) | shifted[0]
    round_up = shifted[1] & (sticky_out | kept[0])
    # Field exponent (biased - 1, or 0 for subnormals) plus the significand with its hidden bit:
    # a carry out of the significand moves to the next binade or to infinity.
    field = Signal(exp_bits + man_bits + 1, name="ieee_field")
    logic_level(m, "ieee_round").d.comb += field.eq(
        (Mux(biased < 1, 0, biased - 1) << man_bits) + kept + round_up
    )
    infinity = ((1 << exp_bits) - 1) << man_bits
    result = Signal(layout)
    pack = logic_level(m, "ieee_pack")
    pack.d.comb += [
        result.as_value()[: man_bits + exp_bits].eq(
            Mux(biased >= (1 << exp_bits) - 1, infinity, field)
        ),
        result.sign.eq(negative),
    ]
    with pack.If(zero):
        pack.d.comb += result.eq(0)
    with pack.If(nan):
        pack.d.comb += result.eq(layout.quiet_nan)
    valid, result = pipe.stage(valid, result)
    m.d.comb += out.eq(result)
    return valid


class StreamConverter(Unit):
    """Base of the conversion units: streams ``i``/``o``, ``pipelined`` and ``latency``.

    A subclass implements :meth:`~palhdl.hdl.unit.Unit.check_parameters` and
    :meth:`datapath`, and passes its payload shapes to this constructor.

    Parameters
    ----------
    in_shape, out_shape : ShapeCastable
        Payloads of the input and output streams.
    pipelined : bool
        Whether :meth:`datapath`'s pipeline stages are registers (``latency == 2``) or wires
        (``latency == 0``).

    Members
    -------
    i : In(stream.Signature(in_shape))
        One value to convert per transfer.
    o : Out(stream.Signature(out_shape))
        The converted values, one per input transfer, in order.
    """

    def __init__(self, *, in_shape, out_shape, pipelined: bool):
        self._pipelined = check_bool("pipelined", pipelined)
        super().__init__(
            {"i": In(stream.Signature(in_shape)), "o": Out(stream.Signature(out_shape))}
        )

    @property
    def pipelined(self) -> bool:
        """Whether the unit is registered."""
        return self._pipelined

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output being valid (0 = combinational)."""
        return PIPELINED_LATENCY if self._pipelined else 0

    def datapath(self, m: Module, pipe: StreamPipeline, valid, payload, out):
        """Add the conversion of ``payload`` into ``out`` to ``m``; return the output valid.

        Subclasses implement it with two :meth:`StreamPipeline.stage` calls.
        """
        raise NotImplementedError

    def elaborate(self, platform):
        """Build the datapath and tie the streams to its pipeline."""
        m = Module()
        pipe = StreamPipeline(m, enabled=self._pipelined)
        valid = self.datapath(m, pipe, self.i.valid, self.i.payload, self.o.payload)
        assert pipe.latency == self.latency
        pipe.connect(self.i, self.o, valid)
        return m
