"""The transport-independent half of a tiled matmul: tiles, their beats, and the cost.

Every transport (:class:`palhdl.sim.driver.PysimTransport`,
:class:`palhdl.sim.verilator.VerilatorTransport`, a board's
:class:`palhdl.boards.hostlink.driver.SerialTransport`) takes the :class:`Tile` list of
:func:`split_tiles` and returns per-tile raw lanes and :class:`MatmulStats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Shape, unsigned
from amaranth.lib import data

from palhdl.hdl.providers import PALArithmetic
from palhdl.sim.pysim import pack_payloads, unpack_payloads

__all__ = ["MatmulStats", "Tile", "assemble", "split_rows", "split_tiles", "tile_beats"]


@dataclass(frozen=True)
class Tile:
    """One array-sized block of ``A @ B``: ``a`` is ``(rows, K)``, ``b`` is ``(K, cols)``.

    ``row0``/``col0`` place it in the result; padding rows/columns hold zero operands.
    ``a_scales``/``b_scales`` are the per-row/column output scales. For block-scaled operands
    (``docs/format.md`` section 11) ``a_offsets``/``b_offsets`` hold each element's log offset
    (shapes of ``a``/``b``, from :func:`palhdl.sim.golden.block_offsets`); ``None`` otherwise.
    """

    row0: int
    col0: int
    a: np.ndarray
    b: np.ndarray
    a_scales: np.ndarray
    b_scales: np.ndarray
    a_offsets: np.ndarray | None = None
    b_offsets: np.ndarray | None = None


@dataclass
class MatmulStats:
    """What a tiled matmul cost.

    Attributes
    ----------
    cycles : int
        Clock cycles the transport took (first beat to last result).
    macs : int
        Useful multiply-accumulates, ``M * K * N``.
    tiles : int
        Tiles streamed.
    peak_macs_per_cycle : int
        ``rows * cols``.
    seconds : float
        Wall time of the transport.
    """

    cycles: int = 0
    macs: int = 0
    tiles: int = 0
    peak_macs_per_cycle: int = 1
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def utilisation(self) -> float:
        """Useful MACs per cycle as a fraction of ``rows * cols``."""
        return self.macs / (self.cycles * self.peak_macs_per_cycle) if self.cycles else 0.0

    @property
    def cycles_per_second(self) -> float:
        """Simulated (or board) clock cycles per second of wall time."""
        return self.cycles / self.seconds if self.seconds else 0.0


def split_tiles(
    a, b, a_scales, b_scales, *, rows: int, cols: int, a_offsets=None, b_offsets=None
) -> list[Tile]:
    """Cut ``a (M, K)`` and ``b (K, N)`` into tiles of ``rows x cols`` outputs, zero-padded.

    ``a_offsets``/``b_offsets`` (per-element log offsets of block-scaled operands, shapes of
    ``a``/``b``) are cut with them; padding gets offset 0.
    """
    m, k = a.shape
    n = b.shape[1]
    blocks = a_offsets is not None
    tiles = []
    for row0 in range(0, m, rows):
        for col0 in range(0, n, cols):
            rows_in = slice(row0, row0 + rows)
            cols_in = slice(col0, col0 + cols)
            height = len(a[rows_in])
            width = b[:, cols_in].shape[1]
            a_tile, sa = np.zeros((rows, k), dtype=a.dtype), np.zeros(rows, dtype=np.int64)
            b_tile, sb = np.zeros((k, cols), dtype=b.dtype), np.zeros(cols, dtype=np.int64)
            a_tile[:height], sa[:height] = a[rows_in], a_scales[rows_in]
            b_tile[:, :width], sb[:width] = b[:, cols_in], b_scales[cols_in]
            oa = ob = None
            if blocks:
                oa, ob = np.zeros((rows, k), np.int64), np.zeros((k, cols), np.int64)
                oa[:height], ob[:, :width] = a_offsets[rows_in], b_offsets[:, cols_in]
            tiles.append(Tile(row0, col0, a_tile, b_tile, sa, sb, oa, ob))
    return tiles


def assemble(tiles: list[Tile], results: list, shape: tuple[int, int]):
    """Place per-tile ``(rows, cols)`` results (arrays, or dicts of arrays) into ``shape``."""
    m, n = shape
    first = results[0]
    if isinstance(first, dict):
        return {name: assemble(tiles, [r[name] for r in results], shape) for name in first}
    out = np.zeros((m, n), dtype=first.dtype)
    for tile, result in zip(tiles, results, strict=True):
        height = min(result.shape[0], m - tile.row0)
        width = min(result.shape[1], n - tile.col0)
        out[tile.row0 : tile.row0 + height, tile.col0 : tile.col0 + width] = result[:height, :width]
    return out


def tile_beats(array, tiles: list[Tile]) -> tuple[list[int], list[int]]:
    """Raw ``a`` and ``b`` payloads (Python ints) of every tile, packed from ``array``'s layouts.

    ``array`` is a :class:`~palhdl.hdl.systolic.SystolicArray`; each tile gives ``K`` beats on
    both streams, the last ``a`` beat with ``last`` set. Block-scaled PAL arrays get each
    operand's offset (zero when the tile has none).
    """
    arithmetic = array.arithmetic
    block_scaled = isinstance(arithmetic, PALArithmetic) and arithmetic.block_scaled
    a_beats, b_beats = [], []
    for tile in tiles:
        k = tile.a.shape[1]
        last = np.zeros(k, dtype=np.int64)
        last[-1] = 1
        a_data, b_data = tile.a.T, tile.b
        if block_scaled:
            a_data = {"word": a_data, "offset": _offsets(tile.a_offsets, tile.a).T}
            b_data = {"word": b_data, "offset": _offsets(tile.b_offsets, tile.b)}
        a_fields = {"data": a_data, "scale": tile.a_scales, "last": last}
        a_beats += pack_payloads(array.a_layout, a_fields).tolist()
        b_fields = {"data": b_data, "scale": tile.b_scales}
        b_beats += np.broadcast_to(pack_payloads(array.b_layout, b_fields), (k,)).tolist()
    return a_beats, b_beats


def _offsets(offsets, operand: np.ndarray) -> np.ndarray:
    """Return a tile's per-element offsets, or zeros when it has none."""
    return np.zeros(operand.shape, np.int64) if offsets is None else offsets


def split_rows(array, payloads, count: int) -> list[np.ndarray]:
    """Per-tile raw lanes of ``count`` tiles from ``array``'s ``c`` payloads (Python ints).

    Every transport returns its results this way: one ``(rows, cols)`` object array of lane
    bit patterns per tile, decoded later with :func:`palhdl.sim.driver.decode_lanes`.
    """
    lane_bits = unsigned(Shape.cast(array.lane_shape).width)
    rows_out = unpack_payloads(
        data.ArrayLayout(lane_bits, array.cols), np.array(payloads, dtype=object)
    ).astype(object)
    return [rows_out[t * array.rows : (t + 1) * array.rows] for t in range(count)]
