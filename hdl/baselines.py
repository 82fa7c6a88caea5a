"""Baseline multiply-accumulate units: INT8, FP8 (E4M3/E5M2) and bfloat16.

They are the comparison points of the cost study (``palhdl cost``), and their product terms
(:class:`IntProductTerm`, :class:`FloatProductTerm`) are the integer and FP8 arithmetic of the
systolic array (:mod:`palhdl.hdl.providers`). Their numpy references, which they match bit for
bit, are in :mod:`palhdl.sim.golden.baselines`.

Stream interface (all MAC units)
--------------------------------
Input stream ``i``, payload ``{"a", "b", "first", "last"}``: one product per transfer. ``first``
starts a new dot product (the accumulator and flags restart from zero), ``last`` ends one: the
accumulated result then appears on the output stream ``o`` one cycle later (``latency == 1``).
Transfers without ``last`` produce no output. The output payload is the accumulator register
itself; while a result waits on ``o`` the unit accepts no input (``i.ready = ~o.valid | o.ready``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from palhdl.format import AccumulatorConfig
from palhdl.hdl.accumulator import place_term
from palhdl.hdl.mac import accumulate, accumulator_layout, term_layout
from palhdl.hdl.unit import Unit
from palhdl.sim.golden.baselines import FLOAT_FORMATS, FloatFormat, check_int_mac, float_geometry
from palhdl.validate import check_choice, check_instance, check_int

__all__ = [
    "FP8_VARIANTS",
    "BF16Mac",
    "FP8Mac",
    "FloatProductTerm",
    "IntMac",
    "IntProductTerm",
    "accumulate_float",
    "float_accumulator_layout",
    "int_accumulator_layout",
]


#: The FP8 variants of :class:`FP8Mac` and the FP8 array provider.
FP8_VARIANTS = ("e4m3", "e5m2")


def _input_signature(operand) -> stream.Signature:
    return stream.Signature(
        data.StructLayout({"a": operand, "b": operand, "first": unsigned(1), "last": unsigned(1)})
    )


def _accumulate(m: Module, i_stream, o_stream, register, value) -> None:
    """On each input transfer load ``register`` with ``value``; present it on ``last``.

    ``register`` is ``o_stream.payload``; ``value`` must already restart from zero when
    ``i_stream.payload.first`` is set.
    """
    advance = ~o_stream.valid | o_stream.ready
    m.d.comb += i_stream.ready.eq(advance)
    with m.If(o_stream.ready):
        m.d.sync += o_stream.valid.eq(0)
    with m.If(i_stream.valid & advance):
        m.d.sync += [register.eq(value), o_stream.valid.eq(i_stream.payload.last)]


class IntProductTerm(Unit):
    """Signed integer product ``a * b`` (combinational, ``latency == 0``).

    Yosys maps a signed multiply through a full-width signed ``$macc`` (about 1.5x the LUTs of
    an unsigned one on iCE40); so the unit multiplies the unsigned patterns and corrects the
    top half: ``a*b = au*bu - 2**w * (a<0 ? bu : 0) - 2**w * (b<0 ? au : 0)`` (mod ``2**(2w)``).

    Parameters
    ----------
    width : int
        Operand width, 2..16 (the range of :class:`IntMac`).

    Members
    -------
    a, b : In(signed(width))
        The operands.
    product : Out(signed(2 * width))
        Their exact product.
    """

    @classmethod
    def check_parameters(cls, *, width: int = 8):
        """Validate ``width`` (the operand range of :class:`IntMac`); return it."""
        return check_int("width", width, 2, 16)

    def __init__(self, *, width: int = 8):
        self._width = w = self.check_parameters(width=width)
        super().__init__({"a": In(signed(w)), "b": In(signed(w)), "product": Out(signed(2 * w))})

    @property
    def width(self) -> int:
        """Operand width."""
        return self._width

    @property
    def latency(self) -> int:
        """Always 0: the unit is combinational."""
        return 0

    def elaborate(self, platform):
        """Build an unsigned multiplier and the sign correction of its top half."""
        m = Module()
        w = self._width
        au, bu = self.a.as_unsigned(), self.b.as_unsigned()
        low = au * bu
        high = low[w:] - Mux(self.a[-1], bu, 0) - Mux(self.b[-1], au, 0)
        m.d.comb += self.product.eq(Cat(low[:w], high[:w]))
        return m


class IntMac(Unit):
    """Signed integer MAC: ``acc += a * b`` in a wrapping two's-complement accumulator.

    The accumulator wraps modulo ``2**acc_bits`` (no saturation, no flag): with the default
    int8 operands and 32-bit accumulator a wrap needs more than ``2**17 - 1`` products, and a
    conventional int8 MAC is built this way. The product is an :class:`IntProductTerm`.
    Reference: :func:`palhdl.sim.golden.baselines.int_mac`.

    Parameters
    ----------
    width : int
        Operand width, 2..16 (default 8).
    acc_bits : int
        Accumulator width, ``2 * width`` .. 62 (default 32).

    Members
    -------
    i : In(stream.Signature({"a": signed(width), "b": signed(width), "first": 1, "last": 1}))
        One operand pair per transfer.
    o : Out(stream.Signature({"acc": signed(acc_bits)}))
        The dot product, after each ``last`` pair.
    """

    @classmethod
    def check_parameters(cls, *, width: int = 8, acc_bits: int = 32):
        """Validate the parameters; return ``(width, acc_bits)``."""
        return check_int_mac(width, acc_bits)

    def __init__(self, *, width: int = 8, acc_bits: int = 32):
        self._width, self._acc_bits = self.check_parameters(width=width, acc_bits=acc_bits)
        super().__init__(
            {
                "i": In(_input_signature(signed(self._width))),
                "o": Out(stream.Signature(int_accumulator_layout(self._acc_bits))),
            }
        )

    @property
    def width(self) -> int:
        """Operand width."""
        return self._width

    @property
    def acc_bits(self) -> int:
        """Accumulator width."""
        return self._acc_bits

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a ``last`` input to the result being valid."""
        return 1

    def elaborate(self, platform):
        """Product term, then the wrapping accumulator register."""
        m = Module()
        x = self.i.payload
        acc = self.o.payload.acc
        m.submodules.product = product = IntProductTerm(width=self._width)
        m.d.comb += [product.a.eq(x.a), product.b.eq(x.b)]
        total = Mux(x.first, 0, acc) + product.product
        _accumulate(m, self.i, self.o, acc, total[: self._acc_bits])
        return m


def int_accumulator_layout(acc_bits: int) -> data.StructLayout:
    """Return the integer accumulator record, ``{"acc": signed(acc_bits)}``."""
    return data.StructLayout({"acc": signed(acc_bits)})


def float_accumulator_layout(config: AccumulatorConfig) -> data.StructLayout:
    """Return the float MAC's accumulator record.

    Fields: ``acc`` (``signed(acc_bits)``) and the sticky flags ``nan``, ``pos_inf``,
    ``neg_inf``, ``overflow`` (see :class:`FP8Mac`).

    Parameters
    ----------
    config : AccumulatorConfig
        The accumulator window.
    """
    check_instance("config", config, AccumulatorConfig, "float_geometry(32, 18)")
    return data.StructLayout(
        {
            "acc": signed(config.acc_bits),
            "nan": unsigned(1),
            "pos_inf": unsigned(1),
            "neg_inf": unsigned(1),
            "overflow": unsigned(1),
        }
    )


def accumulate_float(m: Module, config: AccumulatorConfig, acc, term, infinite):
    """Add a float product term to a float accumulator record (combinational).

    The finite part goes through :func:`palhdl.hdl.mac.accumulate`; an infinite product sets
    ``pos_inf`` or ``neg_inf`` by its sign and adds nothing; infinities of both signs set
    ``nan``. All flags are sticky.

    Parameters
    ----------
    m : Module
        Receives the logic.
    config : AccumulatorConfig
        The accumulator window.
    acc : value of :func:`float_accumulator_layout`
        The running accumulator (all zero to start a dot product).
    term : value of :func:`palhdl.hdl.mac.term_layout`
        The product term (:attr:`FloatProductTerm.term_sm`).
    infinite : Value
        The product is infinite (:attr:`FloatProductTerm.infinite`).

    Returns
    -------
    Signal of float_accumulator_layout(config)
        The new accumulator.
    """
    base = Signal(accumulator_layout(config))
    m.d.comb += [base.acc.eq(acc.acc), base.nan.eq(acc.nan), base.overflow.eq(acc.overflow)]
    total = accumulate(m, config, base, term)
    result = Signal(float_accumulator_layout(config))
    pos_inf = acc.pos_inf | (infinite & ~term.negative)
    neg_inf = acc.neg_inf | (infinite & term.negative)
    m.d.comb += [
        result.acc.eq(total.acc),
        result.pos_inf.eq(pos_inf),
        result.neg_inf.eq(neg_inf),
        result.nan.eq(total.nan | (pos_inf & neg_inf)),
        result.overflow.eq(total.overflow),
    ]
    return result


class FloatProductTerm(Unit):
    """The accumulator term of the exact product of two small floats (combinational).

    The product (significand multiply, exponent add, subnormals included) is placed in the
    accumulator window ``config``: bits below its LSB are rounded half away from zero; a
    nonzero term whose magnitude exceeds ``config.term_max`` sets ``overflow`` and is clamped
    to ``acc_max`` (``config.saturate``) or dropped. The shifter spans only the shifts that can
    change a term: from the one below which every product rounds to 0 up to
    ``term_bits - man_bits`` (or the smallest shift, if that is larger), beyond which every
    nonzero product overflows; the rounding adder covers only the bits a rounding carry can
    reach. Reference: :func:`palhdl.sim.golden.baselines.float_mac_terms`.

    Parameters
    ----------
    fmt : FloatFormat
        The operand format (:data:`palhdl.sim.golden.baselines.FLOAT_FORMATS`).
    config : AccumulatorConfig
        The accumulator window (:func:`palhdl.sim.golden.baselines.float_geometry`).

    Members
    -------
    a, b : In(unsigned(fmt.width))
        Operand bit patterns.
    term_sm : Out(term_layout(config))
        The finite term, sign-magnitude; ``nan``: a NaN operand or infinity times zero;
        ``overflow``: the term overflowed. An infinite or NaN product has magnitude 0.
    infinite : Out(1)
        The product is infinite (and not NaN); its sign is ``term_sm.negative``.
    """

    @classmethod
    def check_parameters(cls, *, fmt: FloatFormat, config: AccumulatorConfig):
        """Validate the parameters; return ``(fmt, config)``."""
        return (
            check_instance("fmt", fmt, FloatFormat, "FLOAT_FORMATS['e4m3']"),
            check_instance("config", config, AccumulatorConfig, "float_geometry(32, 18)"),
        )

    def __init__(self, *, fmt: FloatFormat, config: AccumulatorConfig):
        self._fmt, self._config = self.check_parameters(fmt=fmt, config=config)
        super().__init__(
            {
                "a": In(unsigned(fmt.width)),
                "b": In(unsigned(fmt.width)),
                "term_sm": Out(term_layout(config)),
                "infinite": Out(1),
            }
        )

    @property
    def fmt(self) -> FloatFormat:
        """The operand format."""
        return self._fmt

    @property
    def config(self) -> AccumulatorConfig:
        """The accumulator window."""
        return self._config

    @property
    def latency(self) -> int:
        """Always 0: the unit is combinational."""
        return 0

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

    def _magnitude(self, m: Module, product, exponents):
        """Return the clamped, rounded magnitude of the placed product, and its overflow."""
        fmt = self._fmt
        geometry = self._config
        # The product is product * 2**(exp_a + exp_b + offset) in accumulator LSBs.
        offset = geometry.acc_frac_bits - 2 * fmt.bias - 2 * fmt.man_bits
        shift_min, shift_max = 2 + offset, 2 * ((1 << fmt.exp_bits) - 1) + offset
        shift = Signal(signed(max(abs(shift_min), abs(shift_max)).bit_length() + 1))
        m.d.comb += shift.eq(exponents + offset)
        # A shift above term_bits - man_bits exceeds shift_min, so an operand is normal and the
        # product is at least 2**man_bits: it overflows at that shift and any above.
        return place_term(
            m,
            geometry,
            product,
            shift,
            shift_min=shift_min,
            shift_max=shift_max,
            overflow_from=geometry.term_bits - fmt.man_bits,
        )

    def elaborate(self, platform):
        """Decode both operands, multiply the significands, place the product in the window."""
        m = Module()
        sign_a, sig_a, exp_a, nan_a, inf_a, zero_a = self._decode(self.a)
        sign_b, sig_b, exp_b, nan_b, inf_b, zero_b = self._decode(self.b)
        magnitude, overflow = self._magnitude(m, sig_a * sig_b, exp_a + exp_b)
        nan = nan_a | nan_b | (inf_a & zero_b) | (inf_b & zero_a)
        m.d.comb += [
            self.term_sm.magnitude.eq(magnitude),
            self.term_sm.negative.eq(sign_a ^ sign_b),
            self.term_sm.nan.eq(nan),
            self.term_sm.overflow.eq(overflow),
            self.infinite.eq((inf_a | inf_b) & ~nan),
        ]
        return m


class _FloatMac(Unit):
    """Exact small-float products in a saturating or wrapping fixed-point window.

    See :class:`FP8Mac`.
    """

    def __init__(self, *, fmt: FloatFormat, accumulator: AccumulatorConfig):
        self._fmt = fmt
        self._geometry = accumulator
        super().__init__(
            {
                "i": In(_input_signature(unsigned(fmt.width))),
                "o": Out(stream.Signature(float_accumulator_layout(self._geometry))),
            }
        )

    @property
    def fmt(self) -> FloatFormat:
        """The operand format."""
        return self._fmt

    @property
    def accumulator(self) -> AccumulatorConfig:
        """The accumulator window: ``acc_bits``, ``acc_frac_bits``, ``term_bits``, ``acc_max``."""
        return self._geometry

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a ``last`` input to the result being valid."""
        return 1

    def elaborate(self, platform):
        """Product term, then the accumulator register."""
        m = Module()
        x = self.i.payload
        out = self.o.payload
        m.submodules.term = term = FloatProductTerm(fmt=self._fmt, config=self._geometry)
        m.d.comb += [term.a.eq(x.a), term.b.eq(x.b)]
        layout = float_accumulator_layout(self._geometry)
        base = layout(Mux(x.first, 0, out.as_value()))
        total = accumulate_float(m, self._geometry, base, term.term_sm, term.infinite)
        _accumulate(m, self.i, self.o, out, total)
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

    Members
    -------
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

    @classmethod
    def check_parameters(
        cls,
        *,
        variant: str = "e4m3",
        acc_bits: int,
        acc_frac_bits: int,
        term_bits: int | None = None,
        saturate: bool = True,
    ):
        """Validate the parameters; return the format and the accumulator window."""
        fmt = FLOAT_FORMATS[check_choice("variant", variant, FP8_VARIANTS)]
        return fmt, float_geometry(acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate)

    def __init__(
        self,
        *,
        variant: str = "e4m3",
        acc_bits: int,
        acc_frac_bits: int,
        term_bits: int | None = None,
        saturate: bool = True,
    ):
        fmt, accumulator = self.check_parameters(
            variant=variant,
            acc_bits=acc_bits,
            acc_frac_bits=acc_frac_bits,
            term_bits=term_bits,
            saturate=saturate,
        )
        super().__init__(fmt=fmt, accumulator=accumulator)

    @property
    def variant(self) -> str:
        """``"e4m3"`` or ``"e5m2"``."""
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

    Members
    -------
    i : In(stream.Signature({"a": 16, "b": 16, "first": 1, "last": 1}))
        ``a`` and ``b`` are bfloat16 bit patterns.
    o : Out(stream.Signature(float_accumulator_layout(accumulator)))
        As :class:`FP8Mac`.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        acc_bits: int,
        acc_frac_bits: int,
        term_bits: int | None = None,
        saturate: bool = True,
    ):
        """Validate the parameters; return the accumulator window."""
        return float_geometry(acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate)

    def __init__(
        self,
        *,
        acc_bits: int,
        acc_frac_bits: int,
        term_bits: int | None = None,
        saturate: bool = True,
    ):
        accumulator = self.check_parameters(
            acc_bits=acc_bits, acc_frac_bits=acc_frac_bits, term_bits=term_bits, saturate=saturate
        )
        super().__init__(fmt=FLOAT_FORMATS["bf16"], accumulator=accumulator)
