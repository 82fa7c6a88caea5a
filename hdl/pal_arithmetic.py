"""The PAL arithmetic provider for the systolic array."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module

from palhdl.hdl.arithmetic import Arithmetic
from palhdl.hdl.layout import PALLayout
from palhdl.hdl.mac import PALProductTerm, accumulate, accumulator_layout
from palhdl.sim import golden
from palhdl.sim.format import MacConfig

__all__ = ["PALArithmetic"]


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
        from palhdl.hdl.convert import AccumulatorToFloat32, AccumulatorToPAL

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
