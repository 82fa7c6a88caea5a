"""Adaptive power-of-two scaling of float tensors into a PAL format's range.

``docs/format.md`` section 10. A scale moves a log by whole octaves, exactly; the guarantee that
a slice's scaled maximum lands just below the target holds for its finite values (``+-inf``
still saturates to ``+-max``).
"""

from __future__ import annotations

import numpy as np

from palhdl.format import PALFormat
from palhdl.sim.golden.bits import check_floats, check_fmt
from palhdl.sim.golden.convert import encode_scaled, float_log
from palhdl.validate import check_choice, check_int

__all__ = ["SCALE_MODES", "choose_scales", "quantize"]

#: Accepted values of ``per``: one scale for the tensor, per row, per column, or none.
SCALE_MODES = (None, "tensor", "row", "col")


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
        (see :meth:`~palhdl.format.MacConfig.scale_target` for accumulator-aware targets).

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
    x = check_floats("values", values)
    if x.ndim != 2:
        raise ValueError(f"values must be a 2-D array, not {x.ndim}-D with shape {x.shape}")
    check_choice("per", per, SCALE_MODES)
    target = check_int("target", fmt.log_max if target is None else target)
    shape = {None: (), "tensor": (), "row": (x.shape[0],), "col": (x.shape[1],)}[per]
    if per is None:
        return np.zeros(shape, dtype=np.int64)
    magnitude = np.where(np.isfinite(x), np.abs(x), 0.0)
    axis = {"tensor": None, "row": 1, "col": 0}[per]
    peak = magnitude.max(axis=axis) if magnitude.size else np.zeros(shape)
    peak_log = float_log(np.where(peak > 0, peak, 1.0), fmt, 0)
    scales = (target - peak_log) // fmt.units
    return np.where(peak > 0, scales, 0).astype(np.int64)


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
