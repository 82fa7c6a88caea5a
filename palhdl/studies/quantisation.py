"""Test data, error metrics and quantisers of the accuracy study (:mod:`palhdl.studies.accuracy`).

Every function here is pure: random data come from an explicit seed, and nothing is cached.

Conventions (``docs/format.md`` reports the study's numbers):

* Data are float64 arrays whose values are exactly representable in float32, so the ml_dtypes
  casts (which go through float32) round them correctly, and float64 is the reference.
* PAL operands are scaled by :func:`palhdl.sim.golden.quantize` (per tensor, row or column) or
  :func:`palhdl.sim.golden.quantize_blocks` (per block along ``K``), power-of-two scales applied
  exactly in the log domain, and PAL matmuls use the golden model's linear accumulation
  (:func:`palhdl.sim.golden.matmul`, default :class:`~palhdl.format.MacConfig`). An *adaptive*
  PAL scheme takes the split :func:`palhdl.sim.golden.choose_split` picks for its operands and
  multiplies with the same accumulator (:meth:`~palhdl.format.MacConfig.retarget`).
* MXINT8, MXFP8 E4M3 and E5M2 are the OCP MX formats of :mod:`palhdl.sim.golden.mx`: one E8M0
  scale per block (or, for comparison, per tensor or per row/column), multiplied block by block
  with :func:`~palhdl.sim.golden.mx.mx_matmul`.
* FP8 E4M3/E5M2 use power-of-two scaling: the largest ``2**s`` with ``max|x| * 2**s`` at most the
  format's largest finite value (448 / 57344). INT8 is symmetric: ``scale = max|x| / 127`` (per
  tensor, row/column or block), round half to even, clip to ``[-127, 127]``. BF16 is not scaled.
* Other baseline matmuls quantise both operands, then multiply in float64: their accumulation is
  exact up to float64 rounding (relative ~1e-16, far below any 8-bit error).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from palhdl.format import MacConfig, PALFormat
from palhdl.sim import golden
from palhdl.sim.golden.mx import (
    MX_BLOCK_SIZE,
    MX_FORMATS,
    MXFormat,
    mx_decode,
    mx_matmul_values,
    mx_quantize,
)
from palhdl.validate import check_bool, check_choice, check_int, check_positive_float

__all__ = [
    "DISTRIBUTIONS",
    "KINDS",
    "MX_KINDS",
    "SCALINGS",
    "ErrorStats",
    "Scheme",
    "error_stats",
    "fp_roundtrip",
    "int8_roundtrip",
    "mx_roundtrip",
    "pal_matmul",
    "pal_roundtrip",
    "pow2_scales",
    "relative_errors",
    "relative_frobenius_error",
    "sample",
    "sqnr_db",
]

#: Test distributions of :func:`sample`.
DISTRIBUTIONS = ("gaussian", "laplace", "student_t3", "gauss_lognormal")
#: Scaling granularities of a :class:`Scheme`: ``"channel"`` is per row of a left operand (and of
#: a quantised matrix), per column of a right operand; ``"block"`` per block of consecutive
#: elements along a row of a left operand, down a column of a right operand.
SCALINGS = ("none", "tensor", "channel", "block")
#: The OCP MX kinds of a :class:`Scheme` (:data:`palhdl.sim.golden.mx.MX_FORMATS`).
MX_KINDS = ("mxint8", "mxfp8_e4m3", "mxfp8_e5m2")
#: Number-format families of a :class:`Scheme`.
KINDS = ("pal", *MX_KINDS, "fp8_e4m3", "fp8_e5m2", "bf16", "int8")

_ML_DTYPES = {
    "fp8_e4m3": ml_dtypes.float8_e4m3fn,
    "fp8_e5m2": ml_dtypes.float8_e5m2,
    "bf16": ml_dtypes.bfloat16,
}
_PER_MODES = (None, "tensor", "row", "col")
_INT8_MAX = 127


# --- data -------------------------------------------------------------------------------------


def sample(distribution: str, shape, seed: int) -> np.ndarray:
    """Random test data: float64 values that are exactly representable in float32.

    Parameters
    ----------
    distribution : {"gaussian", "laplace", "student_t3", "gauss_lognormal"}
        Standard normal; Laplace with unit scale; Student's t with 3 degrees of freedom (heavy
        tails, infinite kurtosis); a standard normal times an independent standard log-normal
        ``exp(N(0, 1))`` (a Gaussian whose scale varies from element to element: heavy tails).
    shape : tuple of int
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    """
    check_choice("distribution", distribution, DISTRIBUTIONS)
    rng = np.random.default_rng(seed)
    if distribution == "gaussian":
        x = rng.standard_normal(shape)
    elif distribution == "laplace":
        x = rng.laplace(size=shape)
    elif distribution == "student_t3":
        x = rng.standard_t(3, size=shape)
    else:
        x = rng.standard_normal(shape) * np.exp(rng.standard_normal(shape))
    return x.astype(np.float32).astype(np.float64)


# --- error metrics ----------------------------------------------------------------------------


def _pair(reference, approx) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64)
    approx = np.asarray(approx, dtype=np.float64)
    if reference.shape != approx.shape:
        raise ValueError(
            f"reference and approx must have the same shape, not {reference.shape} and "
            f"{approx.shape}"
        )
    return reference, approx


def sqnr_db(reference, approx) -> float:
    """Signal-to-quantisation-noise ratio ``10 log10(sum(ref**2) / sum((approx - ref)**2))``.

    ``inf`` when ``approx`` equals ``reference``; NaN in ``approx`` gives NaN.
    """
    reference, approx = _pair(reference, approx)
    noise = np.sum((approx - reference) ** 2)
    signal = np.sum(reference**2)
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(signal / noise))


def relative_errors(reference, approx) -> tuple[float, float]:
    """Median and maximum of ``|approx - ref| / |ref|`` over the entries with ``ref != 0``.

    A value quantised to zero has relative error 1. Returns ``(0.0, 0.0)`` when every reference
    entry is zero.
    """
    reference, approx = _pair(reference, approx)
    nonzero = reference != 0
    if not nonzero.any():
        return 0.0, 0.0
    rel = np.abs(approx[nonzero] - reference[nonzero]) / np.abs(reference[nonzero])
    return float(np.median(rel)), float(rel.max())


def relative_frobenius_error(reference, approx) -> float:
    """``||approx - ref||_F / ||ref||_F`` (``inf`` if ``ref`` is all zero and ``approx`` not)."""
    reference, approx = _pair(reference, approx)
    noise = np.linalg.norm(approx - reference)
    if noise == 0:
        return 0.0
    signal = np.linalg.norm(reference)
    return float(noise / signal) if signal else float("inf")


@dataclass(frozen=True)
class ErrorStats:
    """Elementwise error of a quantised array against its float64 reference.

    Attributes
    ----------
    sqnr_db : float
        :func:`sqnr_db`.
    median_rel, max_rel : float
        :func:`relative_errors`.
    flushed : float
        Fraction of nonzero reference entries that quantised to zero.
    """

    sqnr_db: float
    median_rel: float
    max_rel: float
    flushed: float


def error_stats(reference, approx) -> ErrorStats:
    """:class:`ErrorStats` of ``approx`` against ``reference`` (same shape)."""
    reference, approx = _pair(reference, approx)
    nonzero = reference != 0
    flushed = float(np.mean(approx[nonzero] == 0)) if nonzero.any() else 0.0
    return ErrorStats(sqnr_db(reference, approx), *relative_errors(reference, approx), flushed)


# --- quantisers -------------------------------------------------------------------------------


def _matrix(name: str, x) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, not {array.ndim}-D with shape {array.shape}")
    return array


def _peak(x: np.ndarray, per: str, block_size: int | None = None) -> np.ndarray:
    """Return ``max|x|`` per tensor, row, column or block, shaped to broadcast against ``x``.

    With ``block_size``, blocks run along each row (``per="row"``) or down each column
    (``per="col"``).
    """
    check_choice("per", per, _PER_MODES[1:])
    if block_size is None:
        axis = {"tensor": None, "row": 1, "col": 0}[per]
        return np.max(np.abs(x), axis=axis, keepdims=True)
    if per == "tensor":
        raise ValueError("block_size needs per 'row' or 'col', not 'tensor'")
    rows = np.abs(x if per == "row" else x.T)
    m, k = rows.shape
    blocks = -(-k // block_size)
    padded = np.zeros((m, blocks * block_size))
    padded[:, :k] = rows
    peak = np.repeat(padded.reshape(m, blocks, block_size).max(axis=2), block_size, axis=1)
    return peak[:, :k] if per == "row" else peak[:, :k].T


def pow2_scales(x, per: str, limit: float, block_size: int | None = None) -> np.ndarray:
    """Largest integer ``s`` with ``max|x| * 2**s <= limit``, per tensor, row, column or block.

    Parameters
    ----------
    x : 2-D array_like of float
    per : {"tensor", "row", "col"}
    limit : float
        Positive largest magnitude of the target format.
    block_size : int, optional
        Per block of ``block_size`` along each row (``"row"``) or down each column (``"col"``).

    Returns
    -------
    ndarray of int64
        Shaped to broadcast against ``x``; 0 where the maximum is zero. Decided exactly from the
        binary exponents (``max = m * 2**e``, ``limit = M * 2**E``, ``m, M`` in ``[1/2, 1)``):
        ``s = E - e - (m > M)``.
    """
    x = _matrix("x", x)
    limit = check_positive_float("limit", limit)
    peak = _peak(x, per, _block_size(block_size))
    m, e = np.frexp(peak)
    big_m, big_e = np.frexp(limit)
    return np.where(peak > 0, big_e - e - (m > big_m), 0).astype(np.int64)


def _block_size(block_size) -> int | None:
    return None if block_size is None else check_int("block_size", block_size, 1, 1 << 30)


def pal_roundtrip(
    x,
    fmt: PALFormat,
    per: str | None = None,
    target: int | None = None,
    block_size: int | None = None,
) -> np.ndarray:
    """Quantise to PAL with the golden model and return the represented values.

    ``per`` and ``target`` are passed to :func:`~palhdl.sim.golden.quantize`, or with
    ``block_size`` (``per`` ``"row"`` or ``"col"``) to
    :func:`~palhdl.sim.golden.quantize_blocks`; the result is ``decode(codes) * 2**-s`` in
    float64 (the decoded value is correctly rounded, the scaling exact).
    """
    x = _matrix("x", x)
    block_size = _block_size(block_size)
    if block_size is None:
        codes, scales = golden.quantize(x, fmt, per=per, target=target)
        offset = scales[:, None] if per == "row" else scales
    else:
        codes, scales = golden.quantize_blocks(
            x, fmt, per=per, block_size=block_size, target=target
        )
        axis = 1 if per == "row" else 0
        offset = np.repeat(scales, block_size, axis=axis)[: x.shape[0], : x.shape[1]]
    return np.ldexp(golden.decode(codes, fmt), -offset)


def mx_roundtrip(x, fmt: MXFormat, per: str, block_size: int | None = None) -> np.ndarray:
    """Quantise to an MX format (:mod:`palhdl.sim.golden.mx`) and return the represented values.

    Parameters
    ----------
    x : 2-D array_like of float
    fmt : MXFormat
        One of :data:`palhdl.sim.golden.mx.MX_FORMATS`.
    per : {"tensor", "row", "col"}
        ``"row"``: blocks along each row; ``"col"``: down each column; ``"tensor"``: one E8M0
        scale for the whole tensor (the MX rule applied to one block holding every element).
    block_size : int, optional
        Elements per block for ``"row"``/``"col"``; default one block per row or column.
    """
    x = _matrix("x", x)
    check_choice("per", per, _PER_MODES[1:])
    block_size = _block_size(block_size)
    if per == "tensor":
        if block_size is not None:
            raise ValueError("block_size needs per 'row' or 'col', not 'tensor'")
        flat = x.reshape(1, -1)
        size = max(flat.size, 1)
        codes = mx_quantize(flat, fmt, per="row", block_size=size)
        return mx_decode(*codes, fmt, per="row", block_size=size).reshape(x.shape)
    if block_size is None:
        block_size = max(x.shape[1] if per == "row" else x.shape[0], 1)
    codes = mx_quantize(x, fmt, per=per, block_size=block_size)
    return mx_decode(*codes, fmt, per=per, block_size=block_size)


def fp_roundtrip(x, dtype, per: str | None = None, block_size: int | None = None) -> np.ndarray:
    """Round to a small float type (ml_dtypes), optionally with power-of-two scaling.

    Parameters
    ----------
    x : 2-D array_like of float
        Values exactly representable in float32 (the cast goes through float32, then rounds to
        nearest even, subnormals included; other inputs may round twice).
    dtype : ml_dtypes float type
        ``ml_dtypes.float8_e4m3fn``, ``ml_dtypes.float8_e5m2`` or ``ml_dtypes.bfloat16``.
    per : {None, "tensor", "row", "col"}
        ``None``: no scaling (values beyond the type's range become what ml_dtypes makes of
        them: NaN for E4M3, infinity for E5M2 and BF16); otherwise :func:`pow2_scales` with the
        type's largest finite value, so nothing overflows.
    block_size : int, optional
        Scale per block (see :func:`pow2_scales`). Unlike the MX rule
        (:func:`mx_roundtrip`), this scale never saturates the block's maximum.
    """
    x = _matrix("x", x)
    check_choice("dtype", dtype, _ML_DTYPES.values())
    check_choice("per", per, _PER_MODES)
    limit = float(ml_dtypes.finfo(dtype).max)
    shift = 0 if per is None else pow2_scales(x, per, limit, block_size)
    rounded = np.ldexp(x, shift).astype(np.float32).astype(dtype).astype(np.float64)
    return np.ldexp(rounded, -shift)


def int8_roundtrip(x, per: str, block_size: int | None = None) -> np.ndarray:
    """Symmetric INT8: ``q = clip(round_half_even(x / scale), -127, 127)``, value ``q * scale``.

    ``scale = max|x| / 127`` per ``"tensor"``, ``"row"`` or ``"col"``, or with ``block_size``
    per block along each row (``"row"``) or down each column (``"col"``); an all-zero slice stays
    zero.
    """
    x = _matrix("x", x)
    peak = _peak(x, per, _block_size(block_size))
    scale = np.where(peak > 0, peak / _INT8_MAX, 1.0)
    return np.clip(np.rint(x / scale), -_INT8_MAX, _INT8_MAX) * scale


def _operand_per(scaling: str, side: str) -> str | None:
    """Map a :class:`Scheme` scaling to a ``per`` mode for a left (row) or right (col) operand."""
    return {"none": None, "tensor": "tensor", "channel": side, "block": side}[scaling]


def pal_matmul(
    a, b, config: MacConfig, scaling: str = "channel", block_size: int = MX_BLOCK_SIZE
) -> golden.MacResult:
    """Quantise ``a`` and ``b`` to PAL and multiply them with the golden model's accumulation.

    Parameters
    ----------
    a, b : 2-D array_like of float, shapes ``(M, K)`` and ``(K, N)``
    config : MacConfig
    scaling : {"none", "tensor", "channel", "block"}
        Power-of-two scaling of the operands (``"channel"``: per row of ``a``, per column of
        ``b``, identical to :func:`palhdl.sim.golden.matmul_values` with ``adaptive=True``;
        ``"block"``: per block of ``block_size`` along ``K``, identical to ``matmul_values``
        with ``block_size``; ``"none"``: ``adaptive=False``). Scales move maxima to
        :meth:`MacConfig.scale_target` for this ``K``.
    block_size : int
        Block size of ``"block"`` scaling (default 32).
    """
    check_choice("scaling", scaling, SCALINGS)
    block_size = _block_size(block_size)
    a = _matrix("a", a)
    b = _matrix("b", b)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a and b must have shapes (M, K) and (K, N), not {a.shape} and {b.shape}")
    if scaling != "tensor":
        blocks = block_size if scaling == "block" else None
        a_codes, a_scales, b_codes, b_scales = golden.quantize_operands(
            a, b, config, adaptive=scaling != "none", block_size=blocks
        )
        return golden.matmul(
            a_codes, b_codes, config, a_scales=a_scales, b_scales=b_scales, block_size=blocks
        )
    target = config.scale_target(a.shape[1])
    a_codes, a_scales = golden.quantize(a, config.fmt, per="tensor", target=target)
    b_codes, b_scales = golden.quantize(b, config.fmt, per="tensor", target=target)
    return golden.matmul(a_codes, b_codes, config, a_scales=a_scales, b_scales=b_scales)


# --- schemes ----------------------------------------------------------------------------------

_LABELS = {
    "mxint8": "MXINT8",
    "mxfp8_e4m3": "MXFP8 E4M3",
    "mxfp8_e5m2": "MXFP8 E5M2",
    "fp8_e4m3": "FP8 E4M3",
    "fp8_e5m2": "FP8 E5M2",
    "bf16": "BF16",
    "int8": "INT8",
}


@dataclass(frozen=True)
class Scheme:
    """A number format together with how operands are scaled into it.

    Parameters
    ----------
    kind : {"pal", "mxint8", "mxfp8_e4m3", "mxfp8_e5m2", "fp8_e4m3", "fp8_e5m2", "bf16", "int8"}
    scaling : {"none", "tensor", "channel", "block"}
        ``"bf16"`` allows only ``"none"``; ``"int8"`` and the MX kinds need a scaling. ``"fp8_*"``
        scales are the largest powers of two that fit the maximum (per block too: unlike the MX
        kinds' rule, they never saturate it).
    fmt : PALFormat, optional
        Required for (and only for) ``kind="pal"``; its matmuls use ``MacConfig(fmt)``.
    adaptive : bool
        PAL only, with ``"channel"`` or ``"block"`` scaling: use the split of ``fmt.width`` bits
        that :func:`palhdl.sim.golden.choose_split` picks for the operands (see :meth:`split`),
        on ``MacConfig(fmt)``'s accumulator (:meth:`~palhdl.format.MacConfig.retarget`).
    block_size : int
        Elements per block of ``"block"`` scaling (default 32, the MX block).
    """

    kind: str
    scaling: str
    fmt: PALFormat | None = None
    adaptive: bool = False
    block_size: int = MX_BLOCK_SIZE

    def __post_init__(self):
        """Check that the parameters fit together."""
        check_choice("kind", self.kind, KINDS)
        check_choice("scaling", self.scaling, SCALINGS)
        check_bool("adaptive", self.adaptive)
        _block_size(self.block_size)
        if (self.kind == "pal") != isinstance(self.fmt, PALFormat):
            raise ValueError(
                f"fmt must be a PALFormat exactly when kind is 'pal', not {self.fmt!r}"
            )
        if self.kind == "bf16" and self.scaling != "none":
            raise ValueError(f"scaling must be 'none' for kind 'bf16', not {self.scaling!r}")
        if self.kind in ("int8", *MX_KINDS) and self.scaling == "none":
            raise ValueError(f"kind {self.kind!r} needs a scaling, not 'none'")
        if self.adaptive and (self.kind != "pal" or self.scaling not in ("channel", "block")):
            raise ValueError("adaptive needs kind 'pal' with scaling 'channel' or 'block'")

    @property
    def bits(self) -> int:
        """Bits per stored value (scales not counted)."""
        return self.fmt.width if self.kind == "pal" else 16 if self.kind == "bf16" else 8

    @property
    def label(self) -> str:
        """Table name of the format: ``"pal8 (4.3)"``, ``"pal8 adaptive"``, ``"MXINT8"`` ..."""
        if self.kind == "pal" and self.adaptive:
            return f"pal{self.fmt.width} adaptive"
        if self.kind == "pal":
            return f"pal{self.fmt.width} ({self.fmt.int_bits}.{self.fmt.frac_bits})"
        return _LABELS[self.kind]

    @property
    def scaling_label(self) -> str:
        """Table name of the scaling, e.g. ``"tensor 2^s"``, ``"block 32 E8M0"``."""
        if self.scaling == "none":
            return "none"
        unit = {"int8": "max/127", **dict.fromkeys(MX_KINDS, "E8M0")}.get(self.kind, "2^s")
        where = {"tensor": "tensor", "channel": "row/col", "block": f"block {self.block_size}"}
        return f"{where[self.scaling]} {unit}"

    def _block(self) -> int | None:
        return self.block_size if self.scaling == "block" else None

    def split(self, a, b=None) -> golden.SplitChoice:
        """Choose an adaptive scheme's split for ``a`` (a left operand) and ``b`` (a right one).

        :func:`palhdl.sim.golden.choose_split` of width ``fmt.width`` with this scheme's block
        size (``None`` for ``"channel"`` scaling).
        """
        if not self.adaptive:
            raise ValueError("split needs an adaptive scheme")
        return golden.choose_split(a, b, width=self.fmt.width, block_size=self._block())

    def roundtrip(self, x, side: str = "row") -> np.ndarray:
        """Values ``x`` quantises to as a left (``"row"``) or right (``"col"``) operand."""
        check_choice("side", side, ("row", "col"))
        per = _operand_per(self.scaling, side)
        if self.kind == "pal":
            fmt = self.fmt
            if self.adaptive:
                fmt = self.split(_matrix("x", x) if side == "row" else _matrix("x", x).T).fmt
            return pal_roundtrip(x, fmt, per, block_size=self._block())
        if self.kind in MX_KINDS:
            return mx_roundtrip(x, MX_FORMATS[self.kind], per, self._block())
        if self.kind == "int8":
            return int8_roundtrip(x, per, self._block())
        return fp_roundtrip(x, _ML_DTYPES[self.kind], per, self._block())

    def matmul(self, a, b) -> np.ndarray:
        """Multiply ``a @ b`` in this scheme; the result is float64.

        PAL goes through :func:`pal_matmul` (adaptive: on ``MacConfig(fmt).retarget`` of the
        chosen split); MX kinds with block or row/column scales through
        :func:`~palhdl.sim.golden.mx.mx_matmul_values` (a row/column is one block); other kinds
        quantise both operands and multiply in float64.
        """
        if self.kind == "pal":
            config = MacConfig(self.fmt)
            if self.adaptive:
                config = config.retarget(self.split(a, b).fmt)
            return pal_matmul(a, b, config, self.scaling, self.block_size).to_float64()
        if self.kind in MX_KINDS and self.scaling != "tensor":
            a = _matrix("a", a)
            block = self.block_size if self.scaling == "block" else max(a.shape[1], 1)
            return mx_matmul_values(a, b, MX_FORMATS[self.kind], block_size=block)
        return self.roundtrip(a, "row") @ self.roundtrip(b, "col")
