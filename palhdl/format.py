"""The PAL number-format family and the linear-accumulator (MAC) configuration.

Every constant the golden model and the RTL use derives from the frozen dataclasses here:
:class:`PALFormat` (the word), :class:`AccumulatorConfig` (a saturating or wrapping fixed-point
accumulator window) and :class:`MacConfig` (how PAL products are accumulated into one).
The encoding is specified in ``docs/format.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from palhdl.tables import MAX_TABLE_FRAC_BITS, mantissa_table
from palhdl.validate import check_bool, check_instance, check_int

__all__ = [
    "E8M0_MAX",
    "E8M0_MIN",
    "FORMATS",
    "MAX_TABLE_FRAC_BITS",
    "SCALE_BITS",
    "AccumulatorConfig",
    "MacConfig",
    "PALFormat",
    "pal8",
    "pal16",
    "parse_format",
]

#: Width of the signed power-of-two scale exponent that travels with each operand row (of ``A``)
#: and column (of ``B``) through the array, its readouts and the host link.
SCALE_BITS = 16

#: Range of a block scale exponent: the OCP Microscaling (MX v1.0) E8M0 scale ``2**e``, ``e``
#: from -127 to 127 (the code 255, NaN, is not a scale).
E8M0_MIN, E8M0_MAX = -127, 127


@dataclass(frozen=True)
class PALFormat:
    """A PAL (parallel adaptive logarithm) word format.

    A word is ``1 + int_bits + frac_bits`` bits wide: bit ``width - 1`` is the sign ``s``, the low
    ``int_bits + frac_bits`` bits are ``E``, a biased fixed-point log2 magnitude. A word with
    ``E >= 1`` has the value ``(-1)**s * 2**((E - bias) / 2**frac_bits)`` with
    ``bias = 2**(int_bits + frac_bits - 1)``. ``E == 0`` is reserved: ``s == 0`` is zero,
    ``s == 1`` is NaN. There are no infinities and no negative zero.

    Parameters
    ----------
    int_bits : int
        Integer bits of the log magnitude, ``>= 2``.
    frac_bits : int
        Fraction bits of the log magnitude, ``>= 1``. ``width = 1 + int_bits + frac_bits`` must
        be ``<= 32``.

    Raises
    ------
    TypeError, ValueError
        If a parameter is not an integer or is out of range; the message names it.
    """

    int_bits: int
    frac_bits: int

    def __post_init__(self):
        """Validate the fields and store them as plain ints."""
        # Store plain ints (numpy integers are accepted but would leak into table keys and math).
        object.__setattr__(self, "int_bits", check_int("int_bits", self.int_bits, 2))
        object.__setattr__(self, "frac_bits", check_int("frac_bits", self.frac_bits, 1))
        if 1 + self.int_bits + self.frac_bits > 32:
            raise ValueError(
                f"word width 1 + int_bits + frac_bits must be <= 32, not "
                f"{1 + self.int_bits + self.frac_bits} (int_bits={self.int_bits}, "
                f"frac_bits={self.frac_bits})"
            )

    @property
    def width(self) -> int:
        """Word width ``n = 1 + int_bits + frac_bits``."""
        return 1 + self.int_bits + self.frac_bits

    @property
    def mag_bits(self) -> int:
        """Width of the biased log magnitude ``E``."""
        return self.int_bits + self.frac_bits

    @property
    def bias(self) -> int:
        """Exponent bias, ``2**(mag_bits - 1)``."""
        return 1 << (self.mag_bits - 1)

    @property
    def units(self) -> int:
        """Log-domain units per octave, ``2**frac_bits``."""
        return 1 << self.frac_bits

    @property
    def mag_mask(self) -> int:
        """Mask of the ``E`` field, ``2**mag_bits - 1``."""
        return (1 << self.mag_bits) - 1

    @property
    def sign_mask(self) -> int:
        """The sign bit, ``2**mag_bits``."""
        return 1 << self.mag_bits

    @property
    def zero_code(self) -> int:
        """Code of zero (``+0``, the only zero)."""
        return 0

    @property
    def nan_code(self) -> int:
        """Code of NaN (the sign bit with ``E == 0``)."""
        return self.sign_mask

    @property
    def max_code(self) -> int:
        """Code of the largest positive value (``E`` all ones)."""
        return self.mag_mask

    @property
    def min_code(self) -> int:
        """Code of the smallest positive value (``E == 1``)."""
        return 1

    @property
    def log_min(self) -> int:
        """Smallest log magnitude ``L = E - bias`` of a nonzero word, in units of 2**-frac_bits."""
        return 1 - self.bias

    @property
    def log_max(self) -> int:
        """Largest log magnitude ``L``, in units of 2**-frac_bits."""
        return self.bias - 1

    @property
    def code_dtype(self) -> np.dtype:
        """Smallest unsigned numpy dtype that holds a word."""
        for dt in (np.uint8, np.uint16, np.uint32):
            if self.width <= np.iinfo(dt).bits:
                return np.dtype(dt)
        raise AssertionError("unreachable: width <= 32")

    @property
    def name(self) -> str:
        """The preset's name (``"pal8"``), else ``"pal{width}_i{int_bits}f{frac_bits}"``."""
        for preset_name, preset in FORMATS.items():
            if preset == self:
                return preset_name
        return f"pal{self.width}_i{self.int_bits}f{self.frac_bits}"

    def __str__(self) -> str:
        """Return :attr:`name`."""
        return self.name

    def require_tables(self, operation: str) -> None:
        """Raise ``ValueError`` if ``operation`` needs tables larger than palhdl generates."""
        if self.frac_bits > MAX_TABLE_FRAC_BITS:
            raise ValueError(
                f"{operation} needs tables of 2**frac_bits entries; frac_bits must be <= "
                f"{MAX_TABLE_FRAC_BITS}, not {self.frac_bits}"
            )


pal8 = PALFormat(int_bits=4, frac_bits=3)
pal16 = PALFormat(int_bits=8, frac_bits=7)

FORMATS: dict[str, PALFormat] = {"pal8": pal8, "pal16": pal16}


def parse_format(text: str) -> PALFormat:
    """Parse ``"pal8"``, ``"pal16"`` or ``"I.F"`` (for example ``"5.2"``) into a format."""
    if text in FORMATS:
        return FORMATS[text]
    parts = text.split(".")
    if len(parts) == 2 and all(p.isascii() and p.isdigit() for p in parts):
        return PALFormat(int_bits=int(parts[0]), frac_bits=int(parts[1]))
    raise ValueError(
        f"format must be one of {sorted(FORMATS)} or 'I.F' (int_bits.frac_bits), not {text!r}"
    )


@dataclass(frozen=True, kw_only=True)
class AccumulatorConfig:
    """A two's-complement fixed-point accumulator window that sums signed integer terms.

    The accumulator holds ``acc_bits`` bits; its least significant bit weighs
    ``2**-acc_frac_bits``. The PAL MAC (:class:`MacConfig`) and the float baselines
    (:func:`palhdl.sim.golden.baselines.float_geometry`) accumulate into one.

    Parameters
    ----------
    acc_bits : int
        Accumulator width, 8..62.
    acc_frac_bits : int
        Accumulator fraction bits (weight of the LSB is ``2**-acc_frac_bits``), in
        ``[-4096, 4096]``.
    term_bits : int, optional
        Width of a term's magnitude, 2..``acc_bits - 1``: a term of ``2**term_bits`` or more
        overflows. Default ``acc_bits - 1`` (a term may fill the accumulator). A smaller value
        bounds the shift window of a MAC: its shifter spans only the low ``term_bits`` bits and
        the rest of the accumulator is headroom for the sum's growth.
    saturate : bool
        ``True`` (default): an overflowing term is clamped to ``acc_max`` and every sum
        saturates to ``[-acc_max, acc_max]``. ``False``: an overflowing term is dropped (adds
        0) and the sum wraps modulo ``2**acc_bits`` (range ``[-2**(acc_bits - 1), acc_max]``),
        like an integer MAC; cheaper in hardware. Either way the sticky ``overflow`` flag is
        set, and the accumulator value is meaningful only while it is clear.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    acc_bits: int
    acc_frac_bits: int
    term_bits: int | None = None
    saturate: bool = True

    def __post_init__(self):
        """Validate the fields; store the default ``term_bits``."""
        acc_bits = check_int("acc_bits", self.acc_bits, 8, 62)
        term_bits = acc_bits - 1 if self.term_bits is None else self.term_bits
        object.__setattr__(self, "acc_bits", acc_bits)
        object.__setattr__(
            self, "acc_frac_bits", check_int("acc_frac_bits", self.acc_frac_bits, -4096, 4096)
        )
        object.__setattr__(self, "term_bits", check_int("term_bits", term_bits, 2, acc_bits - 1))
        object.__setattr__(self, "saturate", check_bool("saturate", self.saturate))

    @property
    def acc_max(self) -> int:
        """Largest accumulator value, ``2**(acc_bits - 1) - 1``.

        Saturating, the range is symmetric, ``[-acc_max, acc_max]``; wrapping, it is
        ``[-acc_max - 1, acc_max]``.
        """
        return (1 << (self.acc_bits - 1)) - 1

    @property
    def acc_min(self) -> int:
        """Smallest accumulator value: ``-acc_max`` saturating, ``-acc_max - 1`` wrapping."""
        return -self.acc_max - (0 if self.saturate else 1)

    @property
    def term_max(self) -> int:
        """Largest magnitude of a term that does not overflow, ``2**term_bits - 1``."""
        return (1 << self.term_bits) - 1

    @property
    def acc_top_exp(self) -> int:
        """``acc_max < 2**acc_top_exp`` in real value: the exponent of the accumulator's top."""
        return self.acc_bits - 1 - self.acc_frac_bits


@dataclass(frozen=True)
class MacConfig:
    """How the MAC turns log-domain products into a linear two's-complement sum.

    A product of log magnitudes ``P = La + Lb`` (units of ``2**-F``) splits into
    ``q = P >> F`` and ``r = P & (2**F - 1)``; its linear mantissa is
    ``m = round(2**(r / 2**F) * 2**mantissa_bits)`` and it adds ``+-m * 2**(q - mantissa_bits)``
    to the accumulator window :attr:`accumulator` (``acc_bits`` bits, least significant bit
    weighing ``2**-acc_frac_bits``; ``acc_frac_bits`` may be negative). See ``docs/format.md``.

    Parameters
    ----------
    fmt : PALFormat
        The operand format.
    mantissa_bits : int, optional
        ``W``, fraction bits of the linear mantissa, 1..60. Default ``fmt.frac_bits + 3``.
    acc_bits : int, optional
        Accumulator width, 8..62. Default: the exact (Kulisch) width for ``max_k`` terms if
        that is at most 62 bits, else 48.
    acc_frac_bits : int, optional
        Accumulator fraction bits, in ``[-4096, 4096]``. Default: exact (no product loses a
        bit) when ``acc_bits`` is, else 24.
    max_k : int
        Number of products the default exact width is sized for, 1..2**30, default 4096.
    term_bits : int, optional
        As :class:`AccumulatorConfig`; default ``acc_bits - 1``.
    saturate : bool
        As :class:`AccumulatorConfig`; default ``True``.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    fmt: PALFormat
    mantissa_bits: int | None = None
    acc_bits: int | None = None
    acc_frac_bits: int | None = None
    max_k: int = 4096
    term_bits: int | None = None
    saturate: bool = True

    def __post_init__(self):
        """Validate the fields; store the defaults and the accumulator window's fields."""
        check_instance("fmt", self.fmt, PALFormat, "palhdl.format.pal8")
        self.fmt.require_tables("MacConfig")
        object.__setattr__(self, "max_k", check_int("max_k", self.max_k, 1, 1 << 30))
        w = self.fmt.frac_bits + 3 if self.mantissa_bits is None else self.mantissa_bits
        object.__setattr__(self, "mantissa_bits", check_int("mantissa_bits", w, 1, 60))
        exact_frac = self.mantissa_bits - self.q_min
        exact_bits = self.exact_acc_bits(self.max_k)
        if self.acc_bits is None and self.acc_frac_bits is None and exact_bits <= 62:
            acc_bits, acc_frac = exact_bits, exact_frac
        else:
            acc_bits = 48 if self.acc_bits is None else check_int("acc_bits", self.acc_bits, 8, 62)
            if self.acc_frac_bits is not None:
                acc_frac = self.acc_frac_bits
            elif self.acc_bits is not None and acc_bits >= exact_bits:
                acc_frac = exact_frac
            else:
                acc_frac = 24
        accumulator = AccumulatorConfig(
            acc_bits=acc_bits,
            acc_frac_bits=acc_frac,
            term_bits=self.term_bits,
            saturate=self.saturate,
        )
        for name in ("acc_bits", "acc_frac_bits", "term_bits", "saturate"):
            object.__setattr__(self, name, getattr(accumulator, name))

    @cached_property
    def accumulator(self) -> AccumulatorConfig:
        """The accumulator window (``acc_bits``, ``acc_frac_bits``, ``term_bits``, ``saturate``)."""
        return AccumulatorConfig(
            acc_bits=self.acc_bits,
            acc_frac_bits=self.acc_frac_bits,
            term_bits=self.term_bits,
            saturate=self.saturate,
        )

    @property
    def q_min(self) -> int:
        """Smallest product octave ``q = floor((La + Lb) / 2**F)``."""
        return (2 * self.fmt.log_min) >> self.fmt.frac_bits

    @property
    def q_max(self) -> int:
        """Largest product octave."""
        return (2 * self.fmt.log_max) >> self.fmt.frac_bits

    @property
    def mantissa_max(self) -> int:
        """Largest entry of the linear mantissa table."""
        return int(mantissa_table(self.fmt.frac_bits, self.mantissa_bits).max())

    @property
    def acc_max(self) -> int:
        """:attr:`AccumulatorConfig.acc_max` of :attr:`accumulator`."""
        return self.accumulator.acc_max

    @property
    def acc_min(self) -> int:
        """:attr:`AccumulatorConfig.acc_min` of :attr:`accumulator`."""
        return self.accumulator.acc_min

    @property
    def term_max(self) -> int:
        """:attr:`AccumulatorConfig.term_max` of :attr:`accumulator`."""
        return self.accumulator.term_max

    @property
    def acc_top_exp(self) -> int:
        """:attr:`AccumulatorConfig.acc_top_exp` of :attr:`accumulator`."""
        return self.accumulator.acc_top_exp

    def shift(self, q):
        """Left shift that places a product of octave ``q`` in the accumulator (negative: right)."""
        return q - self.mantissa_bits + self.acc_frac_bits

    def exact_acc_bits(self, k: int) -> int:
        """Accumulator width that holds any sum of ``k`` products with no rounding or overflow.

        Sized, as the defaults are, from ``mantissa_max`` in the top octave ``q_max`` (a bound:
        :attr:`largest_term` is the largest term the operands reach).
        """
        top = self.mantissa_max << (self.q_max - self.q_min)
        return 1 + (k * top).bit_length()

    @property
    def is_lossless(self) -> bool:
        """True if no product term is ever rounded (the smallest product lands on the LSB grid)."""
        return self.shift(self.q_min) >= 0

    @property
    def largest_term(self) -> int:
        """Largest magnitude, in accumulator LSBs, of a product term two codes can produce.

        Before the ``term_bits`` overflow check. A product's log ``P = La + Lb`` takes every
        value from ``2 * log_min`` to ``2 * log_max``; for each mantissa-table index ``r`` the
        largest term is that of the largest such ``P`` with ``P & (2**F - 1) == r``. (For
        pal8, ``max * max`` has ``r = 6``: the table's largest entry, at ``r = 7``, is never
        reached in the top octave.)
        """
        fmt = self.fmt
        table = mantissa_table(fmt.frac_bits, self.mantissa_bits)
        top, bottom = 2 * fmt.log_max, 2 * fmt.log_min
        largest = 0
        for r in range(fmt.units):
            log = top - (top - r) % fmt.units
            if log < bottom:
                continue
            shift = self.shift(log >> fmt.frac_bits)
            mantissa = int(table[r])
            # A right shift rounds half away from zero, as the MAC does.
            half = 1 << (-shift - 1) if shift < 0 else 0
            largest = max(largest, mantissa << shift if shift >= 0 else (mantissa + half) >> -shift)
        return largest

    @property
    def max_exact_k(self) -> int:
        """Largest K for which a dot product provably cannot overflow (0 if one term can).

        ``acc_max // largest_term``: ``K`` products of that term (for example ``+max * +max``)
        overflow at ``max_exact_k + 1``. At most ``2**30`` (no term reaches the grid).
        """
        largest = self.largest_term
        if largest > self.term_max:
            return 0
        return self.acc_max // largest if largest else 1 << 30

    def retarget(self, fmt: PALFormat) -> MacConfig:
        """Return the same accumulator window for another split of the same word width.

        Returns a configuration with ``fmt``, that format's default ``mantissa_bits`` and this
        one's ``acc_bits``, ``acc_frac_bits``, ``term_bits``, ``saturate`` and ``max_k``. A PE
        built for this configuration computes the returned one exactly once its product-term
        table holds :func:`palhdl.sim.golden.term_table` of it: the table is the only part of
        the PE that depends on the split (``docs/format.md`` section 8).

        Raises
        ------
        TypeError, ValueError
            If ``fmt`` is not a :class:`PALFormat` of this configuration's width.
        """
        check_instance("fmt", fmt, PALFormat, "PALFormat(int_bits=3, frac_bits=4)")
        if fmt.width != self.fmt.width:
            raise ValueError(
                f"fmt must be {self.fmt.width} bits wide like {self.fmt}, not {fmt.width} ({fmt})"
            )
        return MacConfig(
            fmt,
            acc_bits=self.acc_bits,
            acc_frac_bits=self.acc_frac_bits,
            max_k=self.max_k,
            term_bits=self.term_bits,
            saturate=self.saturate,
        )

    def scale_target(self, k: int) -> int:
        """Log magnitude (units of 2**-F) that adaptive scaling moves row/column maxima to.

        The format's top, unless the accumulator window is narrower: then the largest value
        such that ``k`` products of two maxima stay below the accumulator's top and a product
        of two maxima below ``2**term_bits``. The guarantee is for finite operands: an infinity
        encodes as ``+-max`` whatever the scale and can still overflow a narrow window (pal16's
        default).
        """
        check_int("k", k, 1)
        fmt = self.fmt
        term_top_exp = self.term_bits - self.acc_frac_bits
        budget = min(self.acc_top_exp - 1 - math.ceil(math.log2(k)), term_top_exp - 1)
        return min(fmt.log_max, (budget * fmt.units) // 2)
