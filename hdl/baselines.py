"""Baseline multiply-accumulate units: INT8, FP8 (E4M3/E5M2) and bfloat16.

They are the comparison points of the cost study (``python -m palhdl.studies.cost``) and the
integer/float arithmetic of the systolic array. Their numpy references, which they match bit for
bit, are in :mod:`palhdl.sim.golden.baselines`.

Stream interface (all units)
----------------------------
Input stream ``i``, payload ``{"a", "b", "first", "last"}``: one product per transfer. ``first``
starts a new dot product (the accumulator and flags restart from zero), ``last`` ends one: the
accumulated result then appears on the output stream ``o`` one cycle later (``latency == 1``).
Transfers without ``last`` produce no output. The output payload is the accumulator register
itself; while a result waits on ``o`` the unit accepts no input (``i.ready = ~o.valid | o.ready``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from palhdl.hdl.mac import accumulate, accumulator_layout, term_layout
from palhdl.sim.golden.baselines import FLOAT_FORMATS, FloatFormat, check_int_mac, float_geometry

__all__ = ["BF16Mac", "FP8Mac", "IntMac"]


def _input_signature(operand) -> stream.Signature:
    return stream.Signature(
        data.StructLayout({"a": operand, "b": operand, "first": unsigned(1), "last": unsigned(1)})
    )


def _accumulate(m: Module, i_stream, o_stream, updates) -> None:
    """On each input transfer load ``updates`` (``(register, next value)``); present on ``last``.

    The registers are fields of ``o_stream.payload``; ``next`` values must already restart from
    zero when ``i_stream.payload.first`` is set.
    """
    advance = ~o_stream.valid | o_stream.ready
    m.d.comb += i_stream.ready.eq(advance)
    with m.If(o_stream.ready):
        m.d.sync += o_stream.valid.eq(0)
    with m.If(i_stream.valid & advance):
        m.d.sync += [register.eq(value) for register, value in updates]
        m.d.sync += o_stream.valid.eq(i_stream.payload.last)


class IntMac(wiring.Component):
    """Signed integer MAC: ``acc += a * b`` in a wrapping two's-complement accumulator.

    The accumulator wraps modulo ``2**acc_bits`` (no saturation, no flag): with the default
    int8 operands and 32-bit accumulator a wrap needs more than ``2**17 - 1`` products, and a
    conventional int8 MAC is built this way. Reference: :func:`palhdl.sim.golden.baselines.int_mac`.

    Parameters
    ----------
    width : int
        Operand width, 2..16 (default 8).
    acc_bits : int
        Accumulator width, ``2 * width`` .. 62 (default 32).

    Attributes
    ----------
    i : In(stream.Signature({"a": signed(width), "b": signed(width), "first": 1, "last": 1}))
    o : Out(stream.Signature({"acc": signed(acc_bits)}))
    """

    def __init__(self, *, width: int = 8, acc_bits: int = 32):
        self._width, self._acc_bits = check_int_mac(width, acc_bits)
        super().__init__(
            {
                "i": In(_input_signature(signed(self._width))),
                "o": Out(stream.Signature(data.StructLayout({"acc": signed(self._acc_bits)}))),
            }
        )

    @property
    def width(self) -> int:
        return self._width

    @property
    def acc_bits(self) -> int:
        return self._acc_bits

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a ``last`` input to the result being valid."""
        return 1

    def elaborate(self, platform):
        m = Module()
        x = self.i.payload
        acc = self.o.payload.acc
        # Yosys maps a signed multiply through a full-width signed $macc (about 1.5x the LUTs
        # of an unsigned one on iCE40); so multiply the unsigned patterns and correct the top
        # half: a*b = au*bu - 2**w * (a<0 ? bu : 0) - 2**w * (b<0 ? au : 0)  (mod 2**(2w)).
        w = self._width
        au, bu = x.a.as_unsigned(), x.b.as_unsigned()
        low = au * bu
        high = low[w:] - Mux(x.a[-1], bu, 0) - Mux(x.b[-1], au, 0)
        product = Cat(low[:w], high[:w]).as_signed()
        total = Mux(x.first, 0, acc) + product
        _accumulate(m, self.i, self.o, [(acc, total[: self._acc_bits])])
        return m


class _FloatMac(wiring.Component):
    """Exact small-float products in a saturating or wrapping fixed-point window (see
    :class:`FP8Mac`).
    """

    def __init__(self, fmt: FloatFormat, acc_bits, acc_frac_bits, term_bits, saturate):
        self._fmt = fmt
        self._geometry = float_geometry(
            acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate
        )
        output = data.StructLayout(
            {
                "acc": signed(self._geometry.acc_bits),
                "nan": unsigned(1),
                "pos_inf": unsigned(1),
                "neg_inf": unsigned(1),
                "overflow": unsigned(1),
            }
        )
        super().__init__(
            {
                "i": In(_input_signature(unsigned(fmt.width))),
                "o": Out(stream.Signature(output)),
            }
        )

    @property
    def fmt(self) -> FloatFormat:
        return self._fmt

    @property
    def acc_bits(self) -> int:
        return self._geometry.acc_bits

    @property
    def acc_frac_bits(self) -> int:
        return self._geometry.acc_frac_bits

    @property
    def term_bits(self) -> int:
        """A product term of ``2**term_bits`` or more overflows."""
        return self._geometry.term_bits

    @property
    def saturate(self) -> bool:
        """Overflowing terms clamp and sums saturate (``True``) or are dropped and wrap."""
        return self._geometry.saturate

    @property
    def acc_max(self) -> int:
        return self._geometry.acc_max

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a ``last`` input to the result being valid."""
        return 1

    def _decode(self, bits):
        """``(negative, significand, exponent field >= 1, nan, inf, zero)`` of a pattern."""
        fmt = self._fmt
        man = bits[: fmt.man_bits]
        exp = bits[fmt.man_bits : fmt.man_bits + fmt.exp_bits]
        exp_ones = exp == (1 << fmt.exp_bits) - 1
        if fmt.ieee_specials:
            nan = exp_ones & (man != 0)
            inf = exp_ones & (man == 0)
        else:
            nan = exp_ones & (man == (1 << fmt.man_bits) - 1)
            inf = Const(0, 1)
        subnormal = exp == 0
        significand = Mux(nan | inf, 0, Cat(man, ~subnormal))
        return bits[-1], significand, exp | subnormal, nan, inf, subnormal & (man == 0)

    def _term(self, m: Module, a, b):
        """The product ``a * b`` as a :func:`~palhdl.hdl.mac.term_layout` record (sign,
        magnitude clamped or dropped on overflow, ``nan``, ``overflow``) and whether it is
        infinite.
        """
        fmt = self._fmt
        geometry = self._geometry
        sign_a, sig_a, exp_a, nan_a, inf_a, zero_a = self._decode(a)
        sign_b, sig_b, exp_b, nan_b, inf_b, zero_b = self._decode(b)
        product_bits = 2 * fmt.man_bits + 2
        product = sig_a * sig_b
        # The product is product * 2**(exp_a + exp_b + offset) in accumulator LSBs.
        offset = geometry.acc_frac_bits - 2 * fmt.bias - 2 * fmt.man_bits
        shift_min, shift_max = 2 + offset, 2 * ((1 << fmt.exp_bits) - 1) + offset
        # Shifts below `low` round every product to 0. A shift above `high` exceeds shift_min,
        # so an operand is normal and the product is at least 2**man_bits, and then `high` is
        # at least term_bits - man_bits: the product overflows at either shift. So clamping
        # the shift to [low, high] keeps every term and overflow exact; only clamps that some
        # shift needs are built.
        low = max(shift_min, -(product_bits + 1))
        high = max(low, min(shift_max, geometry.term_bits - fmt.man_bits))
        shift = Signal(signed(max(abs(shift_min), abs(shift_max)).bit_length() + 1))
        m.d.comb += shift.eq(exp_a + exp_b + offset)
        index = shift - low
        if shift_max > high:
            index = Mux(shift > high, high - low, index)
        if shift_min < low:
            index = Mux(shift < low, 0, index)
        amount = Signal(range(high - low + 1))
        m.d.comb += amount.eq(index)
        shifted = (product << amount)[: product_bits + high - low]
        if low < 0:
            # Round half away from zero where the window's LSB is above the product's. Only
            # right shifts (amount < -low) round, and they leave `shifted` below
            # 2**(product_bits - low - 1); left shifts leave its low -low bits zero. So the
            # rounding adder needs only the low product_bits - low bits: no carry leaves them.
            width = product_bits - low
            rounded = (shifted[:width] + (1 << (-low - 1)))[-low:width]
            magnitude = Cat(rounded, shifted[width:])
        else:
            magnitude = shifted << low
        top = magnitude[geometry.term_bits :]
        overflow = top.any() if len(top) else Const(0, 1)
        kept = magnitude[: geometry.term_bits]
        if geometry.saturate:
            kept = Mux(overflow, geometry.acc_max, kept)
        elif len(top):
            kept = Mux(overflow, 0, kept)
        nan = nan_a | nan_b | (inf_a & zero_b) | (inf_b & zero_a)
        term = Signal(term_layout(geometry))
        m.d.comb += [
            term.magnitude.eq(kept),
            term.negative.eq(sign_a ^ sign_b),
            term.nan.eq(nan),
            term.overflow.eq(overflow),
        ]
        return term, (inf_a | inf_b) & ~nan

    def elaborate(self, platform):
        m = Module()
        x = self.i.payload
        out = self.o.payload
        term, term_inf = self._term(m, x.a, x.b)
        restart = x.first
        base = Signal(accumulator_layout(self._geometry))
        m.d.comb += [
            base.acc.eq(Mux(restart, 0, out.acc)),
            base.nan.eq(Mux(restart, 0, out.nan)),
            base.overflow.eq(Mux(restart, 0, out.overflow)),
        ]
        total = accumulate(m, self._geometry, base, term)
        pos_inf = Mux(restart, 0, out.pos_inf) | (term_inf & ~term.negative)
        neg_inf = Mux(restart, 0, out.neg_inf) | (term_inf & term.negative)
        _accumulate(
            m,
            self.i,
            self.o,
            [
                (out.acc, total.acc),
                (out.pos_inf, pos_inf),
                (out.neg_inf, neg_inf),
                (out.nan, total.nan | (pos_inf & neg_inf)),
                (out.overflow, total.overflow),
            ],
        )
        return m


class FP8Mac(_FloatMac):
    """OCP FP8 MAC: exact products accumulated in a fixed-point window, as the PAL MAC does.

    Each product ``a * b`` is exact (significand multiply, exponent add, subnormals included)
    and lands in an ``acc_bits``-bit two's-complement accumulator whose LSB weighs
    ``2**-acc_frac_bits``: bits below the LSB are rounded half away from zero. A nonzero term
    whose magnitude exceeds ``2**term_bits - 1`` sets ``overflow`` and, with ``saturate``, is
    clamped to ``acc_max = 2**(acc_bits - 1) - 1`` while every sum saturates to
    ``[-acc_max, acc_max]``; without ``saturate`` it is dropped (adds 0) and every sum wraps
    modulo ``2**acc_bits`` (two's-complement overflow sets ``overflow``). This is the scheme of
    :class:`palhdl.format.MacConfig`, whose ``term_bits`` and ``saturate`` these
    parameters are; the accumulate step is :func:`palhdl.hdl.mac.accumulate`. ``acc`` is
    meaningful only while ``overflow`` is clear. Specials follow ``ml_dtypes``: E4M3
    (``float8_e4m3fn``) has no infinities and one NaN per sign (``S.1111.111``); E5M2
    (``float8_e5m2``) has IEEE infinities and NaNs. A NaN operand or infinity times zero sets
    ``nan``, infinite products set ``pos_inf``/``neg_inf`` and add nothing, and infinities of
    both signs set ``nan``. All flags are sticky over a dot product.
    Reference: :func:`palhdl.sim.golden.baselines.float_mac`.

    The term shifter spans only the shifts that can change a term: from the one below which
    every product rounds to 0 up to ``term_bits - man_bits`` (or the smallest shift, if that
    is larger), beyond which every nonzero product overflows; so a narrow ``term_bits`` gives a
    narrow shifter. The rounding adder covers only the bits a rounding carry can reach.

    Parameters
    ----------
    variant : {"e4m3", "e5m2"}
    acc_bits : int
        Accumulator width, 8..62.
    acc_frac_bits : int
        Fraction bits of the accumulator, -4096..4096 (E4M3 products are exact with 18,
        E5M2 products with 32).
    term_bits : int, optional
        Width of a term's magnitude, 2..``acc_bits - 1``: a term of ``2**term_bits`` or more
        overflows. Default ``acc_bits - 1`` (a term may fill the accumulator).
    saturate : bool
        ``True`` (default): overflowing terms clamp and sums saturate. ``False``: overflowing
        terms are dropped and sums wrap; cheaper.

    Attributes
    ----------
    i : In(stream.Signature({"a": 8, "b": 8, "first": 1, "last": 1}))
        ``a`` and ``b`` are FP8 bit patterns.
    o : Out(stream.Signature({"acc": signed(acc_bits), "nan": 1, "pos_inf": 1, "neg_inf": 1,
        "overflow": 1}))
        ``acc`` is in ``[-acc_max, acc_max]`` (saturating) or ``[-acc_max - 1, acc_max]``.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it (for
        example ``term_bits must be in [2, 31], not 40`` or ``saturate must be a bool``).
    """

    def __init__(
        self,
        *,
        variant: str = "e4m3",
        acc_bits: int,
        acc_frac_bits: int,
        term_bits: int | None = None,
        saturate: bool = True,
    ):
        if variant not in ("e4m3", "e5m2"):
            raise ValueError(f"variant must be 'e4m3' or 'e5m2', not {variant!r}")
        super().__init__(FLOAT_FORMATS[variant], acc_bits, acc_frac_bits, term_bits, saturate)

    @property
    def variant(self) -> str:
        return self.fmt.name


class BF16Mac(_FloatMac):
    """bfloat16 MAC: exact products in a fixed-point window, exactly as :class:`FP8Mac`.

    bfloat16 has IEEE infinities, NaNs and subnormals (products are exact with
    ``acc_frac_bits = 266``; a window of 48 bits or so is the practical choice).

    Parameters
    ----------
    acc_bits : int
        Accumulator width, 8..62.
    acc_frac_bits : int
        Fraction bits of the accumulator, -4096..4096.
    term_bits : int, optional
        A term of ``2**term_bits`` or more overflows; 2..``acc_bits - 1``, default
        ``acc_bits - 1``.
    saturate : bool
        Clamp overflowing terms and saturate sums (``True``, default) or drop them and wrap.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    def __init__(
        self,
        *,
        acc_bits: int,
        acc_frac_bits: int,
        term_bits: int | None = None,
        saturate: bool = True,
    ):
        super().__init__(FLOAT_FORMATS["bf16"], acc_bits, acc_frac_bits, term_bits, saturate)
