"""Register stages with one shared stall, for stream-to-stream arithmetic units."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import data

__all__ = ["StreamPipeline"]


class StreamPipeline:
    """Builds a valid/ready pipeline whose stages all advance together.

    A unit computes combinationally and calls :meth:`stage` wherever it wants a register; with
    ``enabled=False`` every stage is a wire, so the same code elaborates to a combinational unit.
    :meth:`connect` finally ties the input and output streams: the pipeline advances when its
    output is empty or accepted (``advance = ~o.valid | o.ready``) and ``i.ready = advance``.
    A combinational unit simply forwards ``valid`` and ``ready``.

    Parameters
    ----------
    m : Module
        The module the registers go into (``sync`` domain).
    enabled : bool
        Whether :meth:`stage` inserts registers.
    """

    def __init__(self, m: Module, *, enabled: bool):
        self._m = m
        self._enabled = bool(enabled)
        self.advance = Signal()
        self.latency = 0

    def stage(self, valid, *values):
        """Register ``valid`` and ``values`` (Values or Views) when enabled.

        Returns the registered ``(valid, *values)`` (Views keep their layout), or the inputs
        unchanged when the pipeline is disabled.
        """
        if not self._enabled:
            return (valid, *values)
        self.latency += 1
        valid_reg = Signal(name=f"stage{self.latency}_valid")
        registered = []
        with self._m.If(self.advance):
            self._m.d.sync += valid_reg.eq(valid)
            for index, value in enumerate(values):
                shape = value.shape() if isinstance(value, data.View) else Value.cast(value).shape()
                reg = Signal(shape, name=f"stage{self.latency}_v{index}")
                self._m.d.sync += reg.eq(value)
                registered.append(reg)
        return (valid_reg, *registered)

    def connect(self, i_stream, o_stream, valid) -> None:
        """Drive ``i_stream.ready`` and ``o_stream.valid`` (``valid`` is the last stage's)."""
        m = self._m
        if self.latency == 0:
            m.d.comb += [o_stream.valid.eq(valid), i_stream.ready.eq(o_stream.ready)]
        else:
            m.d.comb += [
                self.advance.eq(~o_stream.valid | o_stream.ready),
                i_stream.ready.eq(self.advance),
                o_stream.valid.eq(valid),
            ]
