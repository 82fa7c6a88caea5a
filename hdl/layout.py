"""The PAL word as an Amaranth data layout."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, unsigned
from amaranth.lib import data

from palhdl.format import PALFormat

__all__ = ["PALLayout", "PALView", "pack_word"]


class PALLayout(data.StructLayout):
    """``data.StructLayout`` of a PAL word: ``mag`` (the biased log ``E``, low bits), ``sign``.

    Views over it are :class:`PALView`. Two layouts are equal only if their formats are.

    Parameters
    ----------
    fmt : PALFormat
    """

    def __init__(self, fmt: PALFormat):
        if not isinstance(fmt, PALFormat):
            raise TypeError(f"fmt must be a PALFormat, not {fmt!r}")
        self._fmt = fmt
        super().__init__({"mag": unsigned(fmt.mag_bits), "sign": unsigned(1)})

    @property
    def fmt(self) -> PALFormat:
        return self._fmt

    def __eq__(self, other):
        return isinstance(other, PALLayout) and other.fmt == self.fmt

    def __hash__(self):
        return hash((PALLayout, self.fmt))

    def __repr__(self):
        return f"PALLayout({self.fmt!r})"

    def __call__(self, target):
        return PALView(self, target)

    def code(self, code: int) -> Const:
        """A constant word from an integer code."""
        return Const(code, self.size)


class PALView(data.View):
    """View of a PAL word with the format's predicates."""

    def is_zero(self):
        """True for the zero word (``E == 0``, sign clear)."""
        return (self.mag == 0) & ~self.sign

    def is_nan(self):
        """True for the NaN word (``E == 0``, sign set)."""
        return (self.mag == 0) & self.sign

    def is_special(self):
        """True for zero or NaN (``E == 0``)."""
        return self.mag == 0

    def log(self):
        """The signed log magnitude ``L = E - bias`` in units of ``2**-frac_bits``."""
        fmt = self.shape().fmt
        return self.mag - fmt.bias


def pack_word(m: Module, out, *, log, negative, nan, zero, fmt: PALFormat) -> None:
    """Drive ``out`` from a signed biased log ``log`` (any width): NaN, then zero, then a
    saturated (``> max`` to ``max``) or flushed (``< 1`` to ``+0``) value, like golden ``_pack``.
    """
    flush = zero | (log < 1)
    saturate = log > fmt.mag_mask
    m.d.comb += [
        out.mag.eq(Mux(nan | flush, 0, Mux(saturate, fmt.mag_mask, log[: fmt.mag_bits]))),
        out.sign.eq(nan | (~flush & negative)),
    ]
