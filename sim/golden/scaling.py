"""Adaptive power-of-two scaling of float tensors into a PAL format's range.

``docs/format.md`` sections 10 (per tensor, row or column) and 11 (per block along ``K``). A
scale moves a log by whole octaves, exactly; the guarantee that a slice's scaled maximum lands
just below the target holds for its finite values (``+-inf`` still saturates to ``+-max``).
"""

from __future__ import annotations

import numpy as np

from palhdl.format import E8M0_MAX, E8M0_MIN, PALFormat
from palhdl.sim.golden.bits import check_floats, check_fmt
from palhdl.sim.golden.convert import encode_scaled, float_log
from palhdl.validate import check_choice, check_int

__all__ = [
    "BLOCK_SIDES",
    "MAX_TARGET_OCTAVES",
    "SCALE_MODES",
    "block_count",
    "block_offsets",
    "choose_block_scales",
    "choose_scales",
    "quantize",
    "quantize_blocks",
]

#: Accepted values of ``per``: one scale for the tensor, per row, per column, or none.
SCALE_MODES = (None, "tensor", "row", "col")

#: Accepted values of ``per`` for block scaling: a left operand A (blocks along its rows, shape
#: ``(M, K)``) or a right operand B (blocks down its columns, shape ``(K, N)``).
BLOCK_SIDES = ("row", "col")


#: Largest ``|target|`` of :func:`choose_scales` and :func:`choose_block_scales`, in octaves:
#: ``2**20``, far beyond any format's range (every maximum saturates or flushes long before), and
#: small enough that scales and scaled logs stay exact in int64.
MAX_TARGET_OCTAVES = 1 << 20


def _check_target(target, fmt: PALFormat) -> int:
    """Validate a scaling ``target`` (default ``fmt.log_max``) in ``+-2**20`` octaves of ``fmt``."""
    if target is None:
        return fmt.log_max
    limit = MAX_TARGET_OCTAVES * fmt.units
    return check_int("target", target, -limit, limit)


def block_count(k: int, block_size: int) -> int:
    """Return the number of blocks of ``block_size`` along ``k`` (the last may be short)."""
    return -(-k // block_size)


def _check_matrix(values) -> np.ndarray:
    x = check_floats("values", values)
    if x.ndim != 2:
        raise ValueError(f"values must be a 2-D array, not {x.ndim}-D with shape {x.shape}")
    return x


def _peak_scales(peak: np.ndarray, fmt: PALFormat, target: int) -> np.ndarray:
    """Scales moving finite maxima ``peak`` (``> 0``) into the octave below ``target``."""
    peak_log = float_log(np.where(peak > 0, peak, 1.0), fmt, 0)
    return (target - peak_log) // fmt.units


def choose_scales(values, fmt: PALFormat, *, per: str | None, target: int | None = None):
    """Choose power-of-two scales that move each row/column maximum to the top of the format.

    Parameters
    ----------
    values : 2-D array_like of float
        The tensor to scale.
    fmt : PALFormat
        The format it will be encoded to.
    per : {None, "tensor", "row", "col"}
        One scale for the whole tensor, per row (for a left operand A) or per column (for a
        right operand B); ``None`` means no scaling (all scales 0).
    target : int, optional
        Log magnitude, in units of ``2**-F``, the maximum is moved to; default ``fmt.log_max``
        (see :meth:`~palhdl.format.MacConfig.scale_target` for accumulator-aware targets);
        at most :data:`MAX_TARGET_OCTAVES` octaves (``2**20 * fmt.units``) either way.

    Returns
    -------
    ndarray of int64
        Octave offsets ``s``, shape ``(rows,)``, ``(cols,)`` or ``()``: the scaled operand is
        ``x * 2**s``. ``s = floor((target - Lmax) / 2**F)`` where ``Lmax`` is the correctly rounded
        log of the largest finite ``|x|`` (so the scaled maximum lands in the top octave below
        ``target``); rows with no finite nonzero value get ``s = 0``. Infinities play no part:
        the guarantee is for finite values, ``+-inf`` still encodes as ``+-max``.
    """
    check_fmt(fmt).require_tables("choose_scales")
    x = _check_matrix(values)
    check_choice("per", per, SCALE_MODES)
    target = _check_target(target, fmt)
    shape = {None: (), "tensor": (), "row": (x.shape[0],), "col": (x.shape[1],)}[per]
    if per is None:
        return np.zeros(shape, dtype=np.int64)
    magnitude = np.where(np.isfinite(x), np.abs(x), 0.0)
    axis = {"tensor": None, "row": 1, "col": 0}[per]
    peak = magnitude.max(axis=axis) if magnitude.size else np.zeros(shape)
    return np.where(peak > 0, _peak_scales(peak, fmt, target), 0).astype(np.int64)


def quantize(values, fmt: PALFormat, *, per: str | None = None, target: int | None = None):
    """Scale (see :func:`choose_scales`) and encode a 2-D float array exactly.

    Returns ``(codes, scales)``: ``codes`` encode ``x * 2**s`` with the scale applied exactly in
    the log domain (no intermediate float rounding, overflow or underflow). The scaled finite
    values land at or below ``target``; ``+-inf`` saturates to ``+-max`` as in
    :func:`~palhdl.sim.golden.encode`.
    """
    scales = choose_scales(values, fmt, per=per, target=target)
    offset = scales[:, None] if per == "row" else scales  # (N,) column scales broadcast as is
    return encode_scaled(check_floats("values", values), fmt, offset), scales


def choose_block_scales(values, fmt: PALFormat, *, per: str, block_size: int, target=None):
    """Choose one E8M0 power-of-two scale per block of ``block_size`` elements along ``K``.

    Parameters
    ----------
    values : 2-D array_like of float
        A left operand ``A (M, K)`` (``per="row"``) or a right operand ``B (K, N)``
        (``per="col"``).
    fmt : PALFormat
        The format it will be encoded to.
    per : {"row", "col"}
        Which operand: blocks run along A's rows or down B's columns.
    block_size : int
        Elements per block, ``>= 1``; block ``kb`` covers ``k`` in
        ``[kb * block_size, min(K, (kb + 1) * block_size))`` (the last block may be short).
    target : int, optional
        As :func:`choose_scales` (default ``fmt.log_max``).

    Returns
    -------
    ndarray of int64
        Shape ``(M, nb)`` for ``per="row"``, ``(nb, N)`` for ``per="col"``,
        ``nb = ceil(K / block_size)``. Each block's scale is chosen from its largest finite
        magnitude exactly as :func:`choose_scales` chooses a row's, then clipped to the E8M0
        range ``[-127, 127]``. A block with no finite nonzero value takes the smallest scale of
        its row (column), or 0 if the row (column) has none, so it never sets the reference of
        :func:`block_offsets`.
    """
    check_fmt(fmt).require_tables("choose_block_scales")
    x = _check_matrix(values)
    check_choice("per", per, BLOCK_SIDES)
    block_size = check_int("block_size", block_size, 1, 1 << 30)
    target = _check_target(target, fmt)
    rows = x if per == "row" else x.T
    m, k = rows.shape
    blocks = block_count(max(k, 1), block_size)
    magnitude = np.zeros((m, blocks * block_size))
    magnitude[:, :k] = np.where(np.isfinite(rows), np.abs(rows), 0.0)
    peak = magnitude.reshape(m, blocks, block_size).max(axis=2)
    scales = np.clip(_peak_scales(peak, fmt, target), E8M0_MIN, E8M0_MAX)
    live = peak > 0
    smallest = np.where(live, scales, E8M0_MAX).min(axis=1, initial=E8M0_MAX)
    smallest = np.where(live.any(axis=1), smallest, 0)
    scales = np.where(live, scales, smallest[:, None]).astype(np.int64)
    return scales if per == "row" else scales.T


def _element_scales(scales: np.ndarray, per: str, block_size: int, k: int) -> np.ndarray:
    """Each element's block scale: block scales repeated along ``K`` and cut to ``k``."""
    if per == "row":
        return np.repeat(scales, block_size, axis=1)[:, :k]
    return np.repeat(scales, block_size, axis=0)[:k, :]


def quantize_blocks(values, fmt: PALFormat, *, per: str, block_size: int, target=None):
    """Scale per block (see :func:`choose_block_scales`) and encode a 2-D float array exactly.

    Returns ``(codes, scales)``: ``codes`` encode ``x * 2**s`` with ``s`` the scale of the
    element's block, applied exactly in the log domain; ``+-inf`` saturates to ``+-max``.
    """
    scales = choose_block_scales(values, fmt, per=per, block_size=block_size, target=target)
    x = check_floats("values", values)
    k = x.shape[1] if per == "row" else x.shape[0]
    offset = _element_scales(scales, per, block_size, k)
    return encode_scaled(x, fmt, offset), scales


def block_offsets(scales, fmt: PALFormat, *, per: str, block_size: int, k: int):
    """Turn block scales into per-element log offsets below a per-row (per-column) reference.

    Parameters
    ----------
    scales : 2-D array_like of int
        Block scales in the E8M0 range ``[-127, 127]``: ``(M, nb)`` for ``per="row"``,
        ``(nb, N)`` for ``per="col"``, with ``nb = ceil(k / block_size)``.
    fmt : PALFormat
        The operands' format.
    per : {"row", "col"}
        Which operand the scales belong to (as :func:`choose_block_scales`).
    block_size, k : int
        Block size and reduction length.

    Returns
    -------
    offsets, reference : ndarray of int64
        ``reference`` is the smallest block scale of each row (column), shape ``(M,)``
        (``(N,)``): the scale of the row's largest block. ``offsets`` has the operand's shape
        ``(M, k)`` (``(k, N)``): for each element, ``(s - reference) * 2**F`` for its block's
        scale ``s``, in log units, clamped to ``2**(mag_bits + 1) - 1`` (an offset that large
        flushes every product, so the clamp changes nothing and keeps it
        ``mag_bits + 1`` bits wide, the field the PE receives).
    """
    check_fmt(fmt)
    check_choice("per", per, BLOCK_SIDES)
    block_size = check_int("block_size", block_size, 1, 1 << 30)
    k = check_int("k", k, 1)
    blocks = block_count(k, block_size)
    array = np.asarray(scales)
    shape = (array.shape[0], blocks) if per == "row" else (blocks, array.shape[-1])
    if not np.issubdtype(array.dtype, np.integer) or array.ndim != 2 or array.shape != shape:
        raise ValueError(
            f"scales must be a 2-D integer array with {blocks} blocks along K (block_size "
            f"{block_size}, K {k}), not {array.dtype} {array.shape}"
        )
    if array.size and (array.min() < E8M0_MIN or array.max() > E8M0_MAX):
        raise ValueError(
            f"block scales must be in the E8M0 range [{E8M0_MIN}, {E8M0_MAX}], not "
            f"[{array.min()}, {array.max()}]"
        )
    array = array.astype(np.int64)
    reference = array.min(axis=1 if per == "row" else 0)
    above = array - (reference[:, None] if per == "row" else reference[None, :])
    limit = (1 << (fmt.mag_bits + 1)) - 1
    offsets = np.minimum(above * fmt.units, limit)
    return _element_scales(offsets, per, block_size, k), reference
