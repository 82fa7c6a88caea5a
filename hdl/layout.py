"""Word layouts: the PAL word and IEEE binary floats as Amaranth data layouts."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data

from palhdl.format import PALFormat
from palhdl.validate import check_instance, check_int

__all__ = [
    "BFLOAT16",
    "FLOAT32",
    "FloatLayout",
    "PALLayout",
    "PALView",
    "WordLayout",
    "block_operand_layout",
    "lower_operand",
    "lowered_operand_layout",
    "pack_word",
]


class WordLayout(data.StructLayout):
    """A struct layout of one machine word (a number format), not a record of values.

    Its constants may also be given as the word's raw bit pattern, and hosts exchange its
    values as bit patterns (:func:`palhdl.sim.pysim.unpack_payloads`).
    """

    def const(self, init):
        """Return a constant from a mapping of fields or from the raw bit pattern (an ``int``)."""
        if isinstance(init, int):
            return data.Const(self, init & ((1 << self.size) - 1))
        return super().const(init)


class PALLayout(WordLayout):
    """``data.StructLayout`` of a PAL word: ``mag`` (the biased log ``E``, low bits), ``sign``.

    Views over it are :class:`PALView`. Two layouts are equal only if their formats are.
    :meth:`const` also takes an integer code.

    Parameters
    ----------
    fmt : PALFormat
        The word format.
    """

    def __init__(self, fmt: PALFormat):
        self._fmt = check_instance("fmt", fmt, PALFormat, "palhdl.format.pal8")
        super().__init__({"mag": unsigned(fmt.mag_bits), "sign": unsigned(1)})

    @property
    def fmt(self) -> PALFormat:
        """The word format."""
        return self._fmt

    def __eq__(self, other):
        """Layouts of the same format are equal."""
        return isinstance(other, PALLayout) and other.fmt == self.fmt

    def __hash__(self):
        """Hash of the format."""
        return hash((PALLayout, self.fmt))

    def __repr__(self):
        """``PALLayout(fmt)``."""
        return f"PALLayout({self.fmt!r})"

    def __call__(self, target):
        """Return a :class:`PALView` of ``target``."""
        return PALView(self, target)

    def code(self, code: int) -> Const:
        """Return a constant word from an integer code."""
        return Const(code, self.size)


class PALView(data.View):
    """View of a PAL word with the format's predicates."""

    def is_zero(self):
        """Test for the zero word (``E == 0``, sign clear)."""
        return (self.mag == 0) & ~self.sign

    def is_nan(self):
        """Test for the NaN word (``E == 0``, sign set)."""
        return (self.mag == 0) & self.sign

    def is_special(self):
        """Test for zero or NaN (``E == 0``)."""
        return self.mag == 0

    def log(self):
        """Return the signed log magnitude ``L = E - bias`` in units of ``2**-frac_bits``."""
        fmt = self.shape().fmt
        return self.mag - fmt.bias


class FloatLayout(WordLayout):
    """``data.StructLayout`` of an IEEE 754 binary float.

    Fields ``mantissa`` (low bits), ``exponent``, ``sign``; its raw bits are the usual bit
    pattern (``FloatLayout(23, 8)`` is float32). :meth:`const` also takes the bit pattern as an
    integer.

    Parameters
    ----------
    man_bits : int
        Stored mantissa (fraction) bits, 1..52.
    exp_bits : int
        Exponent bits, 2..11; the bias is ``2**(exp_bits - 1) - 1``.
    """

    def __init__(self, man_bits: int, exp_bits: int):
        self._man_bits = check_int("man_bits", man_bits, 1, 52)
        self._exp_bits = check_int("exp_bits", exp_bits, 2, 11)
        super().__init__(
            {"mantissa": unsigned(man_bits), "exponent": unsigned(exp_bits), "sign": unsigned(1)}
        )

    @property
    def man_bits(self) -> int:
        """Stored mantissa bits."""
        return self._man_bits

    @property
    def exp_bits(self) -> int:
        """Exponent bits."""
        return self._exp_bits

    @property
    def bias(self) -> int:
        """Exponent bias, ``2**(exp_bits - 1) - 1``."""
        return (1 << (self._exp_bits - 1)) - 1

    @property
    def quiet_nan(self) -> int:
        """Bits of the positive quiet NaN (exponent all ones, mantissa MSB set)."""
        return (((1 << self._exp_bits) - 1) << self._man_bits) | (1 << (self._man_bits - 1))


def block_operand_layout(fmt: PALFormat) -> data.StructLayout:
    """Return the layout of a block-scaled PAL operand: ``word`` and its log ``offset``.

    Fields: ``word`` (``PALLayout(fmt)``, low bits) and ``offset`` (``unsigned(mag_bits + 1)``),
    the amount, in units of ``2**-frac_bits``, by which the operand's block scale lies above the
    reference scale of its row (A) or column (B): :func:`palhdl.sim.golden.block_offsets`
    (``docs/format.md``). A product's log sum is lowered by both operands' offsets.

    Parameters
    ----------
    fmt : PALFormat
        The word format.
    """
    fmt = check_instance("fmt", fmt, PALFormat, "palhdl.format.pal8")
    return data.StructLayout({"word": PALLayout(fmt), "offset": unsigned(fmt.mag_bits + 1)})


def lowered_operand_layout(fmt: PALFormat) -> data.StructLayout:
    """Return the layout of a block-scaled operand with its offset applied (:func:`lower_operand`).

    Fields: ``log`` (``signed(mag_bits + 2)``): ``E - offset`` for a nonzero, non-NaN word,
    ``-2**(mag_bits + 1)`` for a zero or NaN word, so that the sum of two ``log`` s, the
    lowered log sum ``S' = Ea + Eb - offset_a - offset_b``, is negative whenever a product has
    no term; ``sign`` (the word's sign bit); ``nan`` (the word is NaN).

    Parameters
    ----------
    fmt : PALFormat
        The word format.
    """
    fmt = check_instance("fmt", fmt, PALFormat, "palhdl.format.pal8")
    return data.StructLayout(
        {"log": signed(fmt.mag_bits + 2), "sign": unsigned(1), "nan": unsigned(1)}
    )


def lower_operand(m: Module, operand):
    """Return ``operand`` (a :func:`block_operand_layout` value) lowered by its offset.

    Adds the subtractor to ``m`` (``comb``); the result is a value of
    :func:`lowered_operand_layout`. A product term adds two lowered operands instead of two
    words and two offsets, so a systolic array lowers each row's and column's operands once,
    where they enter it.
    """
    word = operand.word
    fmt = word.shape().fmt
    lowered = Signal(lowered_operand_layout(fmt))
    special = word.is_special()
    m.d.comb += [
        lowered.log.eq(Mux(special, -(1 << (fmt.mag_bits + 1)), word.mag - operand.offset)),
        lowered.sign.eq(word.sign),
        lowered.nan.eq(word.is_nan()),
    ]
    return lowered


#: float32 and bfloat16 as :class:`FloatLayout` arguments ``(man_bits, exp_bits)``.
FLOAT32 = (23, 8)
BFLOAT16 = (7, 8)


def pack_word(m: Module, out, *, log, negative, nan, zero, fmt: PALFormat) -> None:
    """Drive PAL word ``out`` from a signed biased log ``log`` (any width).

    NaN wins, then zero, then a saturated (``> max`` to ``max``) or flushed (``< 1`` to ``+0``)
    value, like the golden model's word packing.
    """
    flush = zero | (log < 1)
    saturate = log > fmt.mag_mask
    m.d.comb += [
        out.mag.eq(Mux(nan | flush, 0, Mux(saturate, fmt.mag_mask, log[: fmt.mag_bits]))),
        out.sign.eq(nan | (~flush & negative)),
    ]
