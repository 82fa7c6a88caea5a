"""Arithmetic providers: what a systolic-array processing element multiplies and accumulates.

The systolic array (:mod:`palhdl.hdl.systolic`) is generic over an :class:`Arithmetic`, in the
spirit of Gemmini's ``Arithmetic[T]``: the provider defines the operand shapes, the accumulator
record, the combinational product term, the accumulate step and the readout converters, and
pairs them with the numpy golden model that defines them. All providers live here:
:class:`PALArithmetic` (PAL operands, :mod:`palhdl.hdl.mac`), :class:`IntArithmetic` (the INT8
baseline, :class:`~palhdl.hdl.baselines.IntMac`'s product and ranges) and
:class:`FP8Arithmetic` (the FP8 baseline, :class:`~palhdl.hdl.baselines.FP8Mac`'s product and
accumulator).
"""

from __future__ import annotations

import abc

import numpy as np
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data

from palhdl.format import SCALE_BITS, MacConfig
from palhdl.hdl.baselines import (
    FP8_VARIANTS,
    FloatProductTerm,
    IntProductTerm,
    accumulate_float,
    float_accumulator_layout,
    int_accumulator_layout,
)
from palhdl.hdl.layout import PALLayout, block_operand_layout, lower_operand
from palhdl.hdl.mac import PALProductTerm, accumulate, accumulator_layout, term_layout
from palhdl.hdl.pe import MAX_TABLE_ENTRIES, PALTableProductTerm, table_entries, table_load_layout
from palhdl.hdl.readout import AccumulatorToFloat32, AccumulatorToPAL, check_scale_bits
from palhdl.hdl.rounding import PIPELINED_LATENCY
from palhdl.sim import golden
from palhdl.sim.golden import check_mac_config
from palhdl.sim.golden.baselines import (
    FLOAT_FORMATS,
    check_int_mac,
    float_geometry,
    float_mac,
    int_mac,
)
from palhdl.validate import check_bool, check_choice, check_int

__all__ = [
    "TERMS",
    "Arithmetic",
    "FP8Arithmetic",
    "IntArithmetic",
    "PALArithmetic",
    "table_write_layout",
]

#: Accepted values of ``PALArithmetic(term=...)``.
TERMS = ("auto", "table", "signed_table", "logic")


class Arithmetic(abc.ABC):
    """Interface of an arithmetic provider.

    Attributes
    ----------
    a_shape, b_shape : ShapeCastable
        Shapes of one A and one B operand (read-only properties).
    acc_layout : data.StructLayout
        The accumulator record; field ``acc`` (signed) is the value, other one-bit fields are
        sticky flags (for example ``nan``, ``overflow``).
    output_modes : tuple of str
        Readouts :meth:`readout` can build; ``"raw"`` is always first.
    product_latency : int
        Register stages :meth:`product` inserts (0: combinational).
    table_layout : data.StructLayout or None
        Payload of one write into state every PE holds and a host may load at run time (the
        array's ``table`` stream), or ``None`` (default) when the provider has none.
    """

    @property
    @abc.abstractmethod
    def a_shape(self):
        """Shape of one A operand."""

    @property
    @abc.abstractmethod
    def b_shape(self):
        """Shape of one B operand."""

    @property
    @abc.abstractmethod
    def acc_layout(self) -> data.StructLayout:
        """The accumulator record."""

    @property
    def output_modes(self) -> tuple[str, ...]:
        """Readouts :meth:`readout` can build."""
        return ("raw",)

    @property
    def product_latency(self) -> int:
        """Register stages :meth:`product` inserts (0: combinational)."""
        return 0

    def enter(self, m: Module, operand):
        """Return an operand (of ``a_shape`` or ``b_shape``) as the PEs take it; default as is.

        The array calls it once per row of A and column of B where the operands enter, so
        work done here (for example applying a block-scaling offset) is not repeated per PE.
        """
        return operand

    @abc.abstractmethod
    def product(self, m: Module, a, b):
        """Add logic to ``m`` computing the accumulator term of the product ``a * b``.

        Returns a value in whatever form :meth:`accumulate` takes (for example the accumulator
        record itself, or a cheaper sign-magnitude term). With :attr:`product_latency` > 0 the
        result belongs to the operands of that many cycles earlier (registers in ``sync``).
        """

    @property
    def product_group(self) -> int:
        """PEs whose products :meth:`products` may build together (sharing hardware); 1 here."""
        return 1

    @property
    def table_layout(self) -> data.StructLayout | None:
        """Payload of a write into the PEs' run-time loadable state; ``None``: no such state."""
        return None

    def products(self, m: Module, operands, *, table=None):
        """Add logic computing the terms of several products, ``[(a, b), ...]``; return them.

        At most :attr:`product_group` pairs; a provider may share hardware among them (a
        dual-ported table). When :attr:`table_layout` is not ``None``, ``table`` is a value of
        :func:`table_write_layout` (``valid``, ``payload``): the write the products' state
        takes on this clock edge. The default builds one :meth:`product` per pair.
        """
        return [self.product(m, a, b) for a, b in operands]

    @abc.abstractmethod
    def accumulate(self, m: Module, acc, term):
        """Add logic computing ``acc + term``, flags sticky.

        ``acc`` is a value of :attr:`acc_layout`, ``term`` comes from :meth:`product`. A PE
        starts a dot product by accumulating its first term onto an all-zero record.
        """

    def check_mode(self, mode: str) -> str:
        """Validate an output mode (one of :attr:`output_modes`); return it."""
        return check_choice("output", mode, self.output_modes)

    def readout(self, mode: str, *, scale_bits: int = SCALE_BITS):
        """Return a stream component converting a lane (:meth:`output_shape` ``"raw"``) to ``mode``.

        ``None`` for ``"raw"``. The converter's input payload has fields ``acc``, ``scale``
        and the provider's flags it needs.
        """
        self.check_mode(mode)
        return None

    def readout_latency(self, mode: str) -> int:
        """``latency`` of the :meth:`readout` converter of ``mode`` (0 for ``"raw"``)."""
        self.check_mode(mode)
        return 0

    def output_shape(self, mode: str, *, scale_bits: int = SCALE_BITS):
        """Shape of one output lane in ``mode``: for ``"raw"`` the record plus ``scale``."""
        self.check_mode(mode)
        fields = dict(self.acc_layout.members)
        fields["scale"] = signed(check_scale_bits(scale_bits))
        return data.StructLayout(fields)

    @abc.abstractmethod
    def golden_matmul(self, a, b, *, a_scales, b_scales, mode: str):
        """Return the golden model of ``a @ b`` (codes or integers, shapes (M, K) and (K, N)).

        For ``"raw"``, a dict of integer arrays of shape (M, N), one per field of
        :meth:`output_shape`; for other modes, an integer array of output bit patterns.
        """


def table_write_layout(arithmetic: Arithmetic) -> data.StructLayout:
    """Return ``{"valid": 1, "payload": arithmetic.table_layout}`` (ValueError if ``None``)."""
    if arithmetic.table_layout is None:
        raise ValueError(f"arithmetic: {arithmetic!r} has no run-time loadable state")
    return data.StructLayout({"valid": 1, "payload": arithmetic.table_layout})


def _raw_result(fields: dict, a_scales, b_scales) -> dict:
    """Golden raw lanes: the record ``fields`` (int64) plus the combined ``scale``."""
    result = {name: np.asarray(value).astype(np.int64) for name, value in fields.items()}
    shape = next(iter(result.values())).shape
    scale = np.asarray(a_scales)[:, None] + np.asarray(b_scales)[None, :]
    result["scale"] = np.broadcast_to(scale, shape).astype(np.int64)
    return result


def _rows_and_columns(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Return ``a (M, K)`` and ``b (K, N)`` as two ``(M, N, K)`` arrays of dot-product operands."""
    a, b = np.asarray(a), np.asarray(b)
    shape = (a.shape[0], b.shape[1], a.shape[1])
    return np.broadcast_to(a[:, None, :], shape), np.broadcast_to(b.T[None, :, :], shape)


class IntArithmetic(Arithmetic):
    """Signed integer multiply-accumulate (the INT8 baseline): ``acc += a * b``, wrapping.

    The product is :class:`~palhdl.hdl.baselines.IntProductTerm` and the ranges are those of
    :class:`~palhdl.hdl.baselines.IntMac`, so the array's INT8 is the cost study's.
    Golden model: :func:`palhdl.sim.golden.baselines.int_mac`.

    Parameters
    ----------
    width : int
        Operand width, 2..16 (8 for INT8).
    acc_bits : int
        Accumulator width, ``2 * width`` .. 62; the sum wraps modulo ``2**acc_bits``.
    """

    def __init__(self, *, width: int = 8, acc_bits: int = 32):
        self._width, self._acc_bits = check_int_mac(width, acc_bits)

    @property
    def width(self) -> int:
        """Operand width."""
        return self._width

    @property
    def acc_bits(self) -> int:
        """Accumulator width."""
        return self._acc_bits

    @property
    def a_shape(self):
        """``signed(width)``."""
        return signed(self._width)

    @property
    def b_shape(self):
        """``signed(width)``."""
        return signed(self._width)

    @property
    def acc_layout(self):
        """``{"acc": signed(acc_bits)}``."""
        return int_accumulator_layout(self._acc_bits)

    def product(self, m, a, b):
        """Add an :class:`~palhdl.hdl.baselines.IntProductTerm`; return its accumulator record."""
        unit = IntProductTerm(width=self._width)
        m.submodules += unit
        term = Signal(self.acc_layout)
        m.d.comb += [unit.a.eq(a), unit.b.eq(b), term.acc.eq(unit.product)]
        return term

    def accumulate(self, m, acc, term):
        """``acc + term`` truncated to ``acc_bits`` (wrapping)."""
        total = Signal(self.acc_layout)
        m.d.comb += total.acc.eq(acc.acc + term.acc)
        return total

    def golden_matmul(self, a, b, *, a_scales, b_scales, mode):
        """:func:`~palhdl.sim.golden.baselines.int_mac` of every row and column."""
        self.check_mode(mode)
        rows, columns = _rows_and_columns(a, b)
        acc = int_mac(rows, columns, width=self._width, acc_bits=self._acc_bits)
        return _raw_result({"acc": acc}, a_scales, b_scales)


class FP8Arithmetic(Arithmetic):
    """OCP FP8 multiply-accumulate (the FP8 baseline): exact products in a fixed-point window.

    Each PE is :class:`~palhdl.hdl.baselines.FP8Mac`'s datapath: a
    :class:`~palhdl.hdl.baselines.FloatProductTerm` and
    :func:`~palhdl.hdl.baselines.accumulate_float` (saturating or wrapping, sticky ``nan``,
    ``pos_inf``, ``neg_inf``, ``overflow``). Golden model:
    :func:`palhdl.sim.golden.baselines.float_mac`. Readout: ``"raw"`` only (the accumulator
    record and the combined scale; the value is ``acc * 2**-(acc_frac_bits + scale)``).

    Parameters
    ----------
    variant : {"e4m3", "e5m2"}
        The FP8 format (default E4M3).
    acc_bits, acc_frac_bits, term_bits, saturate
        The accumulator window, as :class:`~palhdl.hdl.baselines.FP8Mac` (E4M3 products are
        exact with ``acc_frac_bits = 18``).
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
        self._fmt = FLOAT_FORMATS[check_choice("variant", variant, FP8_VARIANTS)]
        self._config = float_geometry(
            acc_bits, acc_frac_bits, term_bits=term_bits, saturate=saturate
        )

    @property
    def variant(self) -> str:
        """``"e4m3"`` or ``"e5m2"``."""
        return self._fmt.name

    @property
    def accumulator(self):
        """The accumulator window (an :class:`~palhdl.format.AccumulatorConfig`)."""
        return self._config

    @property
    def a_shape(self):
        """FP8 bit patterns."""
        return self._fmt.width

    @property
    def b_shape(self):
        """FP8 bit patterns."""
        return self._fmt.width

    @property
    def acc_layout(self):
        """:func:`~palhdl.hdl.baselines.float_accumulator_layout` of the window."""
        return float_accumulator_layout(self._config)

    def product(self, m, a, b):
        """Add a :class:`~palhdl.hdl.baselines.FloatProductTerm`; return its term, ``infinite``."""
        unit = FloatProductTerm(fmt=self._fmt, config=self._config)
        m.submodules += unit
        term = Signal(data.StructLayout({"term": term_layout(self._config), "infinite": 1}))
        m.d.comb += [
            unit.a.eq(a),
            unit.b.eq(b),
            term.term.eq(unit.term_sm),
            term.infinite.eq(unit.infinite),
        ]
        return term

    def accumulate(self, m, acc, term):
        """:func:`~palhdl.hdl.baselines.accumulate_float`."""
        return accumulate_float(m, self._config, acc, term.term, term.infinite)

    def golden_matmul(self, a, b, *, a_scales, b_scales, mode):
        """:func:`~palhdl.sim.golden.baselines.float_mac` of every row and column."""
        self.check_mode(mode)
        rows, columns = _rows_and_columns(a, b)
        config = self._config
        result = float_mac(
            rows,
            columns,
            self._fmt,
            acc_bits=config.acc_bits,
            acc_frac_bits=config.acc_frac_bits,
            term_bits=config.term_bits,
            saturate=config.saturate,
        )
        fields = {name: getattr(result, name) for name in self.acc_layout.members}
        return _raw_result(fields, a_scales, b_scales)


class PALArithmetic(Arithmetic):
    """PAL operands, linear accumulation as :func:`palhdl.sim.golden.matmul` defines it.

    Each PE instantiates a product term (a :class:`~palhdl.hdl.pe.PALTableProductTerm` or a
    :class:`~palhdl.hdl.mac.PALProductTerm`, its sign-magnitude ``term_sm``) and the
    :func:`~palhdl.hdl.mac.accumulate` step (saturating or wrapping, as ``config.saturate``
    says). Readouts: ``"raw"`` (accumulator, ``nan``, ``overflow``, scale), ``"float32"`` and
    ``"pal"`` (correctly rounded, through :class:`~palhdl.hdl.readout.AccumulatorToFloat32` /
    ``AccumulatorToPAL``, for any scale width).

    Parameters
    ----------
    config : MacConfig
        Operand format and accumulator geometry.
    pipelined : bool
        Register the product term and the readout converters.
    term : {"auto", "table", "signed_table", "logic"}
        The product term: ``"table"``, a :class:`~palhdl.hdl.pe.PALTableProductTerm` in block
        RAM (``product_latency`` 2 when ``pipelined``, else 1); ``"signed_table"``, the same
        with signed entries (twice the table, no sign logic; suits the dual-ported ECP5
        ``DP16KD``); ``"logic"``, a :class:`~palhdl.hdl.mac.PALProductTerm`
        (``product_latency`` 3 when ``pipelined``, else 0). ``"auto"`` (default): ``"table"``
        when the table has at most :data:`~palhdl.hdl.pe.MAX_TABLE_ENTRIES` entries (pal8),
        else ``"logic"`` (pal16).
    table_ports : int
        PEs sharing one table (:attr:`product_group`), 1 or 2 (default 1); 2 puts two PEs on
        one dual-ported ECP5 ``DP16KD``.
    block_scaled : bool
        Block scaling (default ``False``): the operands are
        :func:`~palhdl.hdl.layout.block_operand_layout` records, a PAL word and its log offset
        below the row's (A) or column's (B) reference scale, and each product's log sum is
        lowered by both offsets (:func:`palhdl.sim.golden.matmul` with ``block_size``). The
        beats' scales carry the references.
    loadable : bool
        A run-time loadable table (default ``False``; needs a table term): every PE's table is
        a RAM, initialised with ``config``'s words and written through the array's ``table``
        stream (:attr:`table_layout`, :func:`~palhdl.hdl.pe.table_load_layout`). Loaded with
        :func:`~palhdl.hdl.pe.term_table_words` of ``config.retarget(fmt)``, the array computes
        that configuration: the split of the word changes at run time.

    Raises
    ------
    TypeError, ValueError
        A parameter has the wrong type or is out of range, or a logic term is ``loadable``.
    """

    def __init__(
        self,
        *,
        config: MacConfig,
        pipelined: bool = False,
        term: str = "auto",
        table_ports: int = 1,
        block_scaled: bool = False,
        loadable: bool = False,
    ):
        self._config = check_mac_config(config)
        self._pipelined = check_bool("pipelined", pipelined)
        term = check_choice("term", term, TERMS)
        if term == "auto":
            fits = table_entries(self._config) <= MAX_TABLE_ENTRIES
            term = "table" if fits else "logic"
        self._table_ports = check_int("table_ports", table_ports, 1, 2)
        self._block_scaled = check_bool("block_scaled", block_scaled)
        self._loadable = check_bool("loadable", loadable)
        if term != "logic":
            PALTableProductTerm.check_parameters(config=config, signed=term == "signed_table")
        elif self._loadable:
            raise ValueError(
                f"loadable: the {config.fmt} product term is computed in logic (term='logic'), "
                "it has no table to load; use term='table' or 'signed_table' (pal8 and narrower)"
            )
        self._term = term

    @property
    def config(self) -> MacConfig:
        """Operand format and accumulator geometry."""
        return self._config

    @property
    def pipelined(self) -> bool:
        """Whether the product term and the readouts are registered."""
        return self._pipelined

    @property
    def term(self) -> str:
        """The product term: ``"table"``, ``"signed_table"`` or ``"logic"`` (never ``"auto"``)."""
        return self._term

    @property
    def block_scaled(self) -> bool:
        """Whether the operands carry block-scaling log offsets."""
        return self._block_scaled

    @property
    def loadable(self) -> bool:
        """Whether the PEs' tables are loadable at run time."""
        return self._loadable

    @property
    def a_shape(self):
        """``PALLayout(config.fmt)``, or ``block_operand_layout(config.fmt)`` if block-scaled."""
        fmt = self._config.fmt
        return block_operand_layout(fmt) if self._block_scaled else PALLayout(fmt)

    def enter(self, m: Module, operand):
        """Block-scaled: :func:`~palhdl.hdl.layout.lower_operand`; else the word as is."""
        return lower_operand(m, operand) if self._block_scaled else operand

    @property
    def b_shape(self):
        """As :attr:`a_shape`."""
        return self.a_shape

    @property
    def acc_layout(self):
        """:func:`~palhdl.hdl.mac.accumulator_layout` of ``config.accumulator``."""
        return accumulator_layout(self._config.accumulator)

    @property
    def output_modes(self) -> tuple[str, ...]:
        """``("raw", "float32", "pal")``."""
        return ("raw", "float32", "pal")

    @property
    def product_latency(self) -> int:
        """Table terms: 2 when pipelined, else 1. Logic terms: 3 when pipelined, else 0."""
        if self._term == "logic":
            return PALProductTerm.PIPELINED_LATENCY if self._pipelined else 0
        return 2 if self._pipelined else 1

    @property
    def table_ports(self) -> int:
        """PEs sharing one product-term table."""
        return self._table_ports

    @property
    def product_group(self) -> int:
        """:attr:`table_ports` for a table term, else 1."""
        return 1 if self._term == "logic" else self._table_ports

    @property
    def table_layout(self) -> data.StructLayout | None:
        """:func:`~palhdl.hdl.pe.table_load_layout` when ``loadable``, else ``None``."""
        if not self._loadable:
            return None
        return table_load_layout(self._config, signed=self._term == "signed_table")

    def product(self, m: Module, a, b, *, table=None):
        """Add the product term unit; return its ``term_sm`` (``term`` for a signed table)."""
        return self.products(m, [(a, b)], table=table)[0]

    def products(self, m: Module, operands, *, table=None):
        """Add a product term unit (written by ``table``) for the pairs; return their terms."""
        operands = list(operands)
        if self._term == "logic":
            return [self._logic_product(m, a, b) for a, b in operands]
        unit = PALTableProductTerm(
            config=self._config,
            signed=self._term == "signed_table",
            registered=self._pipelined,
            ports=len(operands),
            block_scaled=self._block_scaled,
            loadable=self._loadable,
        )
        m.submodules += unit
        if self._loadable:
            m.d.comb += [
                unit.w_en.eq(table.valid),
                unit.w_addr.eq(table.payload.addr),
                unit.w_data.eq(table.payload.data),
            ]
        output = unit.term if unit.signed else unit.term_sm
        if len(operands) == 1:
            ports = [(unit.a, unit.b, output)]
        else:
            ports = [(unit.a[p], unit.b[p], output[p]) for p in range(len(operands))]
        for (a, b), (a_in, b_in, _) in zip(operands, ports, strict=True):
            m.d.comb += [a_in.eq(a), b_in.eq(b)]
        return [term for _, _, term in ports]

    def _logic_product(self, m: Module, a, b):
        """Add a :class:`~palhdl.hdl.mac.PALProductTerm`; return its ``term_sm``."""
        unit = PALProductTerm(
            config=self._config, pipelined=self._pipelined, block_scaled=self._block_scaled
        )
        m.submodules += unit
        m.d.comb += [unit.a.eq(a), unit.b.eq(b)]
        if self._pipelined:
            m.d.comb += unit.en.eq(1)
        return unit.term_sm

    def accumulate(self, m: Module, acc, term):
        """:func:`~palhdl.hdl.mac.accumulate` on ``config.accumulator``."""
        return accumulate(m, self._config.accumulator, acc, term)

    def readout(self, mode: str, *, scale_bits: int = SCALE_BITS):
        """``None``, an ``AccumulatorToFloat32`` or an ``AccumulatorToPAL``."""
        self.output_shape(mode, scale_bits=scale_bits)
        if mode == "raw":
            return None
        kind = AccumulatorToFloat32 if mode == "float32" else AccumulatorToPAL
        return kind(config=self._config, pipelined=self._pipelined, scale_bits=scale_bits)

    def readout_latency(self, mode: str) -> int:
        """2 for a converting readout of a pipelined provider, else 0."""
        self.check_mode(mode)
        return PIPELINED_LATENCY if self._pipelined and mode != "raw" else 0

    def output_shape(self, mode: str, *, scale_bits: int = SCALE_BITS):
        """Return the raw record and scale, the float32 bit pattern or ``PALLayout(config.fmt)``."""
        raw = super().output_shape(mode, scale_bits=scale_bits)
        if mode == "float32":
            return unsigned(32)
        if mode == "pal":
            return PALLayout(self._config.fmt)
        return raw

    def golden_matmul(self, a, b, *, a_scales, b_scales, mode: str, block_size=None):
        """:func:`palhdl.sim.golden.matmul` of codes, as ``mode``; block scales need ``block_size``.

        The raw ``scale`` is the golden ``scale_exp`` (block-scaled: the references' sum).
        """
        self.check_mode(mode)
        if (block_size is None) == self._block_scaled:
            need = "needs" if self._block_scaled else "takes no"
            raise ValueError(f"block_size: a block_scaled={self._block_scaled} provider {need} it")
        result = golden.matmul(
            a, b, self._config, a_scales=a_scales, b_scales=b_scales, block_size=block_size
        )
        if mode == "float32":
            return result.to_float32_bits().astype(np.int64)
        if mode == "pal":
            return result.to_pal().astype(np.int64)
        fields = [("acc", result.acc), ("nan", result.nan), ("overflow", result.overflow)]
        fields.append(("scale", result.scale_exp))
        return {name: np.asarray(value).astype(np.int64) for name, value in fields}
