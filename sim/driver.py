"""Tiled matrix multiplication on the systolic array.

Tiling (splitting ``A @ B`` into array-sized tiles, padding, reassembling) is independent of the
transport that moves tiles through an array: :class:`PysimTransport` runs the RTL in Amaranth's
simulator; :class:`palhdl.boards.hostlink.driver.SerialTransport` (a board behind its host
link) is another transport with the same ``run(tiles)`` method.
"""

from __future__ import annotations

import os
import time

import numpy as np

from palhdl.format import SCALE_BITS, MacConfig, PALFormat, pal8
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import MAX_DIM, SystolicArray
from palhdl.sim import golden
from palhdl.sim.icarus import IcarusTransport
from palhdl.sim.pysim import simulate_streams, unpack_payloads
from palhdl.sim.tiles import MatmulStats, Tile, assemble, split_rows, split_tiles, tile_beats
from palhdl.sim.verilator import VerilatorTransport
from palhdl.validate import check_choice, check_int

__all__ = [
    "BACKENDS",
    "IcarusTransport",
    "MatmulStats",
    "PysimTransport",
    "Tile",
    "VerilatorTransport",
    "assemble",
    "decode_lanes",
    "matmul",
    "split_tiles",
]


class PysimTransport:
    """Runs tiles through a :class:`~palhdl.hdl.systolic.SystolicArray` in Amaranth's simulator.

    Parameters
    ----------
    array : SystolicArray
        A freshly constructed array (it is elaborated once per :meth:`run`).
    backpressure : int, optional
        Seed for random stalls on all three streams (``None``: full rate).
    vcd_path : path, optional
        Write a waveform of the run there.
    progress : callable, optional
        Called as ``progress(done_rows, total_rows)`` as result rows arrive.
    """

    def __init__(self, array, *, backpressure: int | None = None, vcd_path=None, progress=None):
        self.array = array
        self.backpressure = backpressure
        self.vcd_path = vcd_path
        self.progress = progress

    def run(self, tiles: list[Tile]) -> tuple[list[np.ndarray], MatmulStats]:
        """Stream all tiles; return per-tile raw lane values ``(rows, cols)`` (object ints)."""
        array = self.array
        a_beats, b_beats = tile_beats(array, tiles)
        total_rows = len(tiles) * array.rows
        on_output = None
        if self.progress is not None:

            def on_output(_port, count):
                self.progress(count, total_rows)

        started = time.perf_counter()
        outputs, cycles = simulate_streams(
            array,
            {"a": a_beats, "b": b_beats},
            {"c": total_rows},
            backend="pysim",
            backpressure=self.backpressure,
            name="systolic",
            vcd_path=self.vcd_path,
            on_output=on_output,
        )
        seconds = time.perf_counter() - started
        per_tile = split_rows(array, outputs["c"], len(tiles))
        stats = MatmulStats(
            cycles=cycles,
            tiles=len(tiles),
            peak_macs_per_cycle=array.rows * array.cols,
            seconds=seconds,
        )
        return per_tile, stats


#: The transports :func:`matmul` builds, by ``backend`` name.
BACKENDS = {"pysim": PysimTransport, "verilator": VerilatorTransport, "icarus": IcarusTransport}


def decode_lanes(lane_shape, raw: np.ndarray):
    """Decode raw lane integers of shape ``lane_shape`` (:attr:`SystolicArray.lane_shape`).

    Returns a dict of sign-extended int64 fields for a record lane (accumulator fields and
    scale), else an int64 array of bit patterns (PAL codes, float32); see
    :func:`palhdl.sim.pysim.unpack_payloads`.
    """
    return unpack_payloads(lane_shape, np.asarray(raw, dtype=object))


def matmul(
    a,
    b,
    *,
    fmt: PALFormat | None = None,
    config: MacConfig | None = None,
    rows: int = 4,
    cols: int = 4,
    output: str = "float32",
    readout: str | None = None,
    adaptive: bool = True,
    block_size: int | None = None,
    pipelined: bool = False,
    backpressure: int | None = None,
    vcd_path=None,
    progress=None,
    transport=None,
    backend: str | None = None,
):
    """Multiply ``a (M, K) @ b (K, N)`` on a simulated PAL systolic array.

    Parameters
    ----------
    a, b : ndarray
        Float arrays (quantised here, with per-row / per-column adaptive scales when
        ``adaptive``) or integer arrays of PAL codes (used as they are, scales 0).
    fmt : PALFormat, optional
        Operand format (default ``pal8``; taken from ``config`` when that is given).
    config : MacConfig, optional
        Accumulator configuration (default ``MacConfig(fmt)``).
    rows, cols : int
        Array geometry (1..64).
    output : {"float32", "pal", "raw"}
        The result: float32 values, PAL codes, or a dict of raw accumulator fields (``acc``,
        ``nan``, ``overflow``, ``scale``).
    readout : {"float32", "pal", "raw"}, optional
        The array's readout mode (default: ``output``). ``readout="raw"`` with ``output``
        ``"float32"`` or ``"pal"`` moves the accumulator records and converts them here, with
        :meth:`palhdl.sim.golden.MacResult.to_float32_bits` / ``to_pal``: bit-exact with an
        array that converts itself. No other combination of two different modes exists (a
        rounded readout cannot be turned into the other rounding).
    block_size : int, optional
        Block scaling (``docs/format.md`` section 11) of float operands: one scale per block of
        ``block_size`` elements along ``K`` (:func:`palhdl.sim.golden.quantize_blocks`), each
        element's offset below its row's (column's) reference carried to the PEs of a
        block-scaled array (``PALArithmetic(block_scaled=True)``); the result is bit-exact
        with ``golden.matmul(..., block_size=block_size)``. Default ``None``: per-row/column
        scales (``adaptive``).
    pipelined : bool
        Pipeline the PE product term (latency 3) and readouts.
    backpressure : int, optional
        Seed for random stalls on every stream of the simulated array.
    vcd_path : path, optional
        Write a waveform of the simulation there.
    progress : callable, optional
        ``progress(done_rows, total_rows)`` while result rows arrive.
    backend : {"pysim", "verilator", "icarus"}, optional
        The simulator of the default transport: Amaranth's (:class:`PysimTransport`), a
        compiled Verilator model (:class:`~palhdl.sim.verilator.VerilatorTransport`, compiled
        once per array and cached) or Icarus Verilog
        (:class:`~palhdl.sim.icarus.IcarusTransport`). Default: ``$PALHDL_BACKEND``, else
        ``"pysim"`` (so ``PALHDL_BACKEND=verilator`` moves the array suites to Verilator, as it
        moves the unit suites of :func:`palhdl.sim.pysim.simulate_streams`). Ignored when
        ``transport`` is given.
    transport : object with ``run(tiles)``, optional
        Where tiles run; default a ``backend`` transport of a new array. Another transport
        (for example :class:`palhdl.boards.hostlink.driver.SerialTransport`) must run arrays of this
        ``rows``, ``cols``, ``config`` and ``readout`` with :data:`~palhdl.format.SCALE_BITS`-bit
        scales.

    Returns
    -------
    (result, MatmulStats)
        ``result`` is bit-exact with :func:`palhdl.sim.golden.matmul` read out as ``output``.
        An ``a`` without rows or a ``b`` without columns gives the empty result of shape
        ``(M, N)`` without running anything (no array is built, zero cycles).

    Raises
    ------
    TypeError, ValueError
        If ``output`` or ``readout`` is not a known mode, or ``readout`` cannot give
        ``output`` (the message names both), or ``backend`` is unknown; for operands that are
        not 2-D matrices ``(M, K)`` and ``(K, N)`` with ``K >= 1``, of two float dtypes or two
        integer dtypes (codes; a float operand's NaN and infinities follow
        :func:`palhdl.sim.golden.encode`), and for ``rows``/``cols`` outside ``1..64``.
    palhdl.sim.simulators.SimulatorNotFound
        ``backend="verilator"`` (``"icarus"``) without Verilator (Icarus) installed.
    """
    if config is None:
        config = MacConfig(fmt if fmt is not None else pal8)
    elif fmt is not None and fmt != config.fmt:
        raise ValueError(f"fmt {fmt} does not match config.fmt {config.fmt}")
    if block_size is not None:
        block_size = check_int("block_size", block_size, 1, 1 << 30)
    if backend is None:
        backend = os.environ.get("PALHDL_BACKEND") or "pysim"
        check_choice("PALHDL_BACKEND", backend, BACKENDS)
    check_choice("backend", backend, BACKENDS)
    arithmetic = PALArithmetic(
        config=config, pipelined=pipelined, block_scaled=block_size is not None
    )
    readout = output if readout is None else readout
    check_choice("output", output, arithmetic.output_modes)
    check_choice("readout", readout, arithmetic.output_modes)
    if readout not in (output, "raw"):
        raise ValueError(
            f"readout {readout!r} cannot give output {output!r}: the host converts only the "
            f"'raw' readout (to 'float32' or 'pal'); use readout={output!r} or readout='raw'"
        )
    a_codes, a_scales, b_codes, b_scales = _operands(a, b, config, adaptive, block_size)
    a_offsets = b_offsets = None
    if block_size is not None:
        k = a_codes.shape[1]
        fmt = config.fmt
        a_offsets, a_scales = golden.block_offsets(
            a_scales, fmt, per="row", block_size=block_size, k=k
        )
        b_offsets, b_scales = golden.block_offsets(
            b_scales, fmt, per="col", block_size=block_size, k=k
        )
    m, k = a_codes.shape
    n = b_codes.shape[1]
    rows = check_int("rows", rows, 1, MAX_DIM)
    cols = check_int("cols", cols, 1, MAX_DIM)
    lane_shape = arithmetic.output_shape(readout, scale_bits=SCALE_BITS)
    if m == 0 or n == 0:  # nothing to multiply: the empty result, as golden.matmul's
        result = decode_lanes(lane_shape, np.zeros((m, n), dtype=object))
        stats = MatmulStats(peak_macs_per_cycle=rows * cols)
    else:
        if transport is None:
            array = SystolicArray(arithmetic=arithmetic, rows=rows, cols=cols, output=readout)
            transport = BACKENDS[backend](
                array, backpressure=backpressure, vcd_path=vcd_path, progress=progress
            )
        tiles = split_tiles(
            a_codes,
            b_codes,
            a_scales,
            b_scales,
            rows=rows,
            cols=cols,
            a_offsets=a_offsets,
            b_offsets=b_offsets,
        )
        raw_tiles, stats = transport.run(tiles)
        result = assemble(tiles, [decode_lanes(lane_shape, t) for t in raw_tiles], (m, n))
    if readout != output:
        record = golden.MacResult(
            acc=result["acc"],
            nan=result["nan"].astype(bool),
            overflow=result["overflow"].astype(bool),
            scale_exp=result["scale"],
            config=config,
        )
        result = record.to_float32_bits() if output == "float32" else record.to_pal()
    if output == "float32":
        result = result.astype(np.uint32).view(np.float32)
    elif output == "pal":
        result = result.astype(config.fmt.code_dtype)
    stats.macs = m * k * n
    return result, stats


def _operands(a, b, config: MacConfig, adaptive: bool, block_size: int | None):
    """Codes and scales of both operands: per row/column, or per block (``block_size``)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.shape[1] == 0:
        raise ValueError(
            "a and b must be 2-D with shapes (M, K) and (K, N), K >= 1; "
            f"got {a.shape} and {b.shape}"
        )
    if np.issubdtype(a.dtype, np.integer) != np.issubdtype(b.dtype, np.integer):
        raise TypeError(
            f"a and b must both be float arrays or both PAL-code integer arrays, not "
            f"{a.dtype} and {b.dtype}"
        )
    if np.issubdtype(a.dtype, np.integer):
        if block_size is not None:
            raise ValueError("block_size needs float operands (codes carry no block scales)")
        zeros_a, zeros_b = np.zeros(a.shape[0], np.int64), np.zeros(b.shape[1], np.int64)
        a_codes = golden.check_codes("a", a, config.fmt)
        b_codes = golden.check_codes("b", b, config.fmt)
        return a_codes, zeros_a, b_codes, zeros_b
    a_codes, a_scales, b_codes, b_scales = golden.quantize_operands(
        a, b, config, adaptive=adaptive, block_size=block_size
    )
    if not adaptive:  # one (zero) scale per tile row and column
        a_scales = np.zeros(a.shape[0], np.int64)
        b_scales = np.zeros(b.shape[1], np.int64)
    return a_codes.astype(np.int64), a_scales, b_codes.astype(np.int64), b_scales
