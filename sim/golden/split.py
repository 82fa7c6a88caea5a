"""The adaptive split: which PAL format of a given width suits a tensor or a layer best.

``docs/format.md`` section 12. A PAL word of ``width`` bits splits its log magnitude into
``int_bits`` (range) and ``frac_bits`` (precision). Adaptive scaling (per row/column, or per
block) already moves every slice to the top of the format, so the integer bits only have to
cover the spread *within* a slice; :func:`choose_split` measures, for each split, the
quantisation error of the operands after that scaling and picks the smallest. In the hardware
the split is a property of the product-term table only (:meth:`palhdl.format.MacConfig.retarget`),
so a bitstream with a loadable table runs whichever split is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from palhdl.format import MAX_TABLE_FRAC_BITS, PALFormat
from palhdl.sim.golden.bits import check_floats
from palhdl.sim.golden.convert import decode
from palhdl.sim.golden.scaling import quantize, quantize_blocks
from palhdl.validate import check_instance, check_int

__all__ = ["SplitChoice", "choose_split", "split_candidates"]


def split_candidates(width: int) -> tuple[PALFormat, ...]:
    """Every PAL format of ``width`` bits with tables (``int_bits >= 2``, ``frac_bits >= 1``).

    Ordered by ``int_bits``: for width 8, (2.5), (3.4), (4.3), (5.2), (6.1).
    """
    width = check_int("width", width, 4, 32)
    return tuple(
        PALFormat(int_bits=i, frac_bits=width - 1 - i)
        for i in range(2, width - 1)
        if width - 1 - i <= MAX_TABLE_FRAC_BITS
    )


@dataclass(frozen=True)
class SplitChoice:
    """The outcome of :func:`choose_split`.

    Attributes
    ----------
    fmt : PALFormat
        The chosen split.
    sqnr_db : dict of PALFormat to float
        Signal-to-quantisation-noise ratio of every candidate (dB, higher is better; ``inf``
        when the operands quantise exactly).
    block_size : int or None
        The block size the operands were scaled with (``None``: per row/column).
    """

    fmt: PALFormat
    sqnr_db: dict
    block_size: int | None

    def report(self) -> str:
        """Return one line per candidate, the chosen one marked."""
        scaling = "per row/column" if self.block_size is None else f"block {self.block_size}"
        lines = [f"split choice ({scaling} scaling), operand SQNR:"]
        for fmt, sqnr in self.sqnr_db.items():
            mark = "  <- chosen" if fmt == self.fmt else ""
            lines.append(f"  ({fmt.int_bits}.{fmt.frac_bits}) {sqnr:6.2f} dB{mark}")
        return "\n".join(lines)


def _operand_error(values: np.ndarray, fmt: PALFormat, per: str, block_size) -> float:
    """Relative squared quantisation error of one operand (finite entries only)."""
    if block_size is None:
        codes, scales = quantize(values, fmt, per=per)
        scales = scales[:, None] if per == "row" else scales[None, :]
    else:
        codes, scales = quantize_blocks(values, fmt, per=per, block_size=block_size)
        axis = 1 if per == "row" else 0
        scales = np.repeat(scales, block_size, axis=axis)[: values.shape[0], : values.shape[1]]
    approx = np.ldexp(decode(codes, fmt), -np.broadcast_to(scales, values.shape))
    finite = np.isfinite(values)
    signal = float(np.sum(values[finite] ** 2))
    noise = float(np.sum((values[finite] - approx[finite]) ** 2))
    return noise / signal if signal else 0.0


def choose_split(a, b=None, *, width: int = 8, block_size: int | None = 32, candidates=None):
    """Choose the PAL split of ``width`` bits that quantises a tensor or a layer best.

    Parameters
    ----------
    a : 2-D array_like of float
        A left operand ``A (M, K)`` (scaled per row, or per block along its rows), or any
        tensor on its own.
    b : 2-D array_like of float, optional
        A layer's right operand ``B (K, N)`` (scaled per column, or per block down them).
    width : int
        Word width of the candidates (default 8).
    block_size : int or None
        Block scaling as :func:`~palhdl.sim.golden.quantize_blocks` (default 32, the MX block);
        ``None`` scales per row (``a``) and per column (``b``).
    candidates : sequence of PALFormat, optional
        The splits to try (default :func:`split_candidates` of ``width``).

    Returns
    -------
    SplitChoice
        The split with the smallest sum of the operands' relative squared quantisation errors
        ``sum |x - q(x)|**2 / sum |x|**2`` (for a product ``A @ B`` the result's relative error
        is, to first order, the sum of its operands'), with every candidate's SQNR. Scales
        target each format's top (``fmt.log_max``). Ties go to the candidate listed first.
    """
    operands = [(check_floats("a", a), "row")]
    if b is not None:
        operands.append((check_floats("b", b), "col"))
    for (values, _), name in zip(operands, "ab", strict=False):
        if values.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array, not shape {values.shape}")
    if block_size is not None:
        block_size = check_int("block_size", block_size, 1, 1 << 30)
    if candidates is None:
        candidates = split_candidates(width)
    else:
        candidates = tuple(candidates)
        if not candidates:
            raise ValueError("candidates must name at least one PALFormat")
        for fmt in candidates:
            check_instance("candidates", fmt, PALFormat, "PALFormat(int_bits=3, frac_bits=4)")
    sqnr = {}
    for fmt in candidates:
        error = sum(_operand_error(values, fmt, per, block_size) for values, per in operands)
        sqnr[fmt] = -10.0 * float(np.log10(error)) if error > 0 else float("inf")
    best = max(candidates, key=lambda fmt: sqnr[fmt])
    return SplitChoice(fmt=best, sqnr_db=sqnr, block_size=block_size)
