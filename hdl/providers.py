"""Arithmetic providers: what a systolic-array processing element multiplies and accumulates.

The systolic array (:mod:`palhdl.hdl.systolic`) is generic over an :class:`Arithmetic`, in the
spirit of Gemmini's ``Arithmetic[T]``: the provider defines the operand shapes, the accumulator
record, the combinational product term, the accumulate step and the readout converters, and
pairs them with the numpy golden model that defines them. The same PE and array elaborate for
PAL (:class:`palhdl.hdl.providers.PALArithmetic`) and for integer baselines
(:class:`IntArithmetic`).
"""

from __future__ import annotations

import abc

import numpy as np
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data

from palhdl.format import MacConfig
from palhdl.hdl.convert import AccumulatorToFloat32, AccumulatorToPAL
from palhdl.hdl.layout import PALLayout
from palhdl.hdl.mac import PALProductTerm, accumulate, accumulator_layout
from palhdl.sim import golden

__all__ = ["Arithmetic", "IntArithmetic", "PALArithmetic"]


class Arithmetic(abc.ABC):
    """Interface of an arithmetic provider.

    Attributes (all read-only properties)
    -------------------------------------
    a_shape, b_shape : ShapeCastable
        Shapes of one A and one B operand.
    acc_layout : data.StructLayout
        The accumulator record; field ``acc`` (signed) is the value, other one-bit fields are
        sticky flags (for example ``nan``, ``overflow``).
    output_modes : tuple of str
        Readouts :meth:`readout` can build; ``"raw"`` is always first.
    """

    @property
    @abc.abstractmethod
    def a_shape(self): ...

    @property
    @abc.abstractmethod
    def b_shape(self): ...

    @property
    @abc.abstractmethod
    def acc_layout(self) -> data.StructLayout: ...

    @property
    def output_modes(self) -> tuple[str, ...]:
        return ("raw",)

    @property
    def product_latency(self) -> int:
        """Register stages :meth:`product` inserts (0: combinational)."""
        return 0

    @abc.abstractmethod
    def product(self, m: Module, a, b):
        """Add logic to ``m`` computing the accumulator term of the product ``a * b``.

        Returns a value in whatever form :meth:`accumulate` takes (for example the accumulator
        record itself, or a cheaper sign-magnitude term). With :attr:`product_latency` > 0 the
        result belongs to the operands of that many cycles earlier (registers in ``sync``).
        """

    @abc.abstractmethod
    def accumulate(self, m: Module, acc, term):
        """Add logic computing ``acc + term`` (``acc`` a value of :attr:`acc_layout`, ``term``
        from :meth:`product`), flags sticky. A PE starts a dot product by accumulating its
        first term onto an all-zero record.
        """

    def readout(self, mode: str, *, scale_bits: int):
        """A stream component converting ``{acc record fields, scale}`` to the ``mode`` output,
        or ``None`` for ``"raw"``. The converter's input payload has fields ``acc``, ``scale``
        and the provider's flags it needs.
        """
        if mode != "raw":
            raise ValueError(f"output mode must be one of {self.output_modes}, not {mode!r}")
        return None

    def output_shape(self, mode: str, *, scale_bits: int):
        """Shape of one output lane in ``mode``."""
        if mode != "raw":
            raise ValueError(f"output mode must be one of {self.output_modes}, not {mode!r}")
        fields = dict(self.acc_layout.members)
        fields["scale"] = signed(scale_bits)
        return data.StructLayout(fields)

    @abc.abstractmethod
    def golden_matmul(self, a, b, *, a_scales, b_scales, mode: str):
        """The golden model of ``a @ b`` (codes or integers, shapes (M, K) and (K, N)).

        Returns, for ``"raw"``, a dict of integer arrays of shape (M, N), one per field of
        :meth:`output_shape`; for other modes, an integer array of output bit patterns.
        """


class IntArithmetic(Arithmetic):
    """Signed integer multiply-accumulate (the INT8 baseline): ``acc += a * b``, wrapping.

    Parameters
    ----------
    width : int
        Operand width, 2..32 (8 for INT8).
    acc_bits : int
        Accumulator width, ``2 * width`` .. 64; the sum wraps modulo ``2**acc_bits``.
    """

    def __init__(self, *, width: int = 8, acc_bits: int = 32):
        if isinstance(width, bool) or not isinstance(width, int) or not 2 <= width <= 32:
            raise ValueError(f"width must be an integer in [2, 32], not {width!r}")
        if (
            isinstance(acc_bits, bool)
            or not isinstance(acc_bits, int)
            or not 2 * width <= acc_bits <= 64
        ):
            raise ValueError(f"acc_bits must be an integer in [{2 * width}, 64], not {acc_bits!r}")
        self._width = width
        self._acc_bits = acc_bits

    @property
    def width(self) -> int:
        return self._width

    @property
    def acc_bits(self) -> int:
        return self._acc_bits

    @property
    def a_shape(self):
        return signed(self._width)

    @property
    def b_shape(self):
        return signed(self._width)

    @property
    def acc_layout(self):
        return data.StructLayout({"acc": signed(self._acc_bits)})

    def product(self, m, a, b):
        term = Signal(self.acc_layout)
        m.d.comb += term.acc.eq(a * b)
        return term

    def accumulate(self, m, acc, term):
        total = Signal(self.acc_layout)
        m.d.comb += total.acc.eq(acc.acc + term.acc)  # truncation to acc_bits wraps
        return total

    def golden_matmul(self, a, b, *, a_scales, b_scales, mode):
        self.output_shape(mode, scale_bits=1)
        product = np.asarray(a, dtype=np.int64) @ np.asarray(b, dtype=np.int64)
        half = 1 << (self._acc_bits - 1)
        wrapped = (product + half) % (2 * half) - half
        scale = np.asarray(a_scales)[:, None] + np.asarray(b_scales)[None, :]
        return {"acc": wrapped, "scale": np.broadcast_to(scale, wrapped.shape)}


class PALArithmetic(Arithmetic):
    """PAL operands, linear accumulation as :func:`palhdl.sim.golden.matmul` defines it.

    Each PE instantiates a :class:`~palhdl.hdl.mac.PALProductTerm` (its sign-magnitude
    ``term_sm``) and the :func:`~palhdl.hdl.mac.accumulate` step (saturating or wrapping, as
    ``config.saturate`` says). Readouts: ``"raw"`` (accumulator, ``nan``,
    ``overflow``, scale), ``"float32"`` and ``"pal"`` (correctly rounded, through
    :class:`~palhdl.hdl.convert.AccumulatorToFloat32` / ``AccumulatorToPAL``).

    Parameters
    ----------
    config : MacConfig
        Operand format and accumulator geometry.
    pipelined : bool
        Register the product term (``product_latency == 3``) and the readout converters.
    """

    def __init__(self, *, config: MacConfig, pipelined: bool = False):
        if not isinstance(config, MacConfig):
            raise TypeError(f"config must be a MacConfig, not {config!r}")
        if not isinstance(pipelined, bool):
            raise TypeError(f"pipelined must be a bool (True or False), not {pipelined!r}")
        self._config = config
        self._pipelined = pipelined

    @property
    def config(self) -> MacConfig:
        return self._config

    @property
    def pipelined(self) -> bool:
        return self._pipelined

    @property
    def a_shape(self):
        return PALLayout(self._config.fmt)

    @property
    def b_shape(self):
        return PALLayout(self._config.fmt)

    @property
    def acc_layout(self):
        return accumulator_layout(self._config)

    @property
    def output_modes(self) -> tuple[str, ...]:
        return ("raw", "float32", "pal")

    @property
    def product_latency(self) -> int:
        return PALProductTerm.PIPELINED_LATENCY if self._pipelined else 0

    def product(self, m: Module, a, b):
        unit = PALProductTerm(config=self._config, pipelined=self._pipelined)
        m.submodules += unit
        m.d.comb += [unit.a.eq(a), unit.b.eq(b)]
        if self._pipelined:
            m.d.comb += unit.en.eq(1)
        return unit.term_sm

    def accumulate(self, m: Module, acc, term):
        return accumulate(m, self._config, acc, term)

    def readout(self, mode: str, *, scale_bits: int):
        self.output_shape(mode, scale_bits=scale_bits)
        if mode == "raw":
            return None
        if scale_bits != 16:
            raise ValueError(f"scale_bits must be 16 for the {mode!r} readout, not {scale_bits}")
        if mode == "float32":
            return AccumulatorToFloat32(config=self._config, pipelined=self._pipelined)
        return AccumulatorToPAL(config=self._config, pipelined=self._pipelined)

    def output_shape(self, mode: str, *, scale_bits: int):
        if mode == "float32":
            return 32
        if mode == "pal":
            return PALLayout(self._config.fmt)
        return super().output_shape(mode, scale_bits=scale_bits)

    def golden_matmul(self, a, b, *, a_scales, b_scales, mode: str):
        self.output_shape(mode, scale_bits=16)
        result = golden.matmul(a, b, self._config, a_scales=a_scales, b_scales=b_scales)
        if mode == "float32":
            return result.to_float32_bits().astype(np.int64)
        if mode == "pal":
            return result.to_pal().astype(np.int64)
        return {
            "acc": result.acc,
            "nan": result.nan.astype(np.int64),
            "overflow": result.overflow.astype(np.int64),
            "scale": result.scale_exp,
        }
