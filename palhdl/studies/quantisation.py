"""Test data, error metrics and quantisers of the accuracy study (:mod:`palhdl.studies.accuracy`).

Every function here is pure: random data come from an explicit seed, and nothing is cached.

Conventions (``docs/format.md`` reports the study's numbers):

* Data are float64 arrays whose values are exactly representable in float32, so the ml_dtypes
  casts (which go through float32) round them correctly, and float64 is the reference.
* PAL operands are scaled by :func:`palhdl.sim.golden.quantize` (power-of-two scales applied
  exactly in the log domain) and PAL matmuls use the golden model's linear accumulation
  (:func:`palhdl.sim.golden.matmul`, default :class:`~palhdl.format.MacConfig`).
* FP8 E4M3/E5M2 use power-of-two scaling: the largest ``2**s`` with ``max|x| * 2**s`` at most the
  format's largest finite value (448 / 57344). INT8 is symmetric: ``scale = max|x| / 127``,
  round half to even, clip to ``[-127, 127]``. BF16 is not scaled.
* Baseline matmuls quantise both operands, then multiply in float64: their accumulation is exact
  up to float64 rounding (relative ~1e-16, far below any 8-bit error).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from palhdl.format import MacConfig, PALFormat
from palhdl.sim import golden
from palhdl.validate import check_choice, check_positive_float

__all__ = [
    "DISTRIBUTIONS",
    "KINDS",
    "SCALINGS",
    "ErrorStats",
    "Scheme",
    "error_stats",
    "fp_roundtrip",
    "int8_roundtrip",
    "pal_matmul",
    "pal_roundtrip",
    "pow2_scales",
    "relative_errors",
    "relative_frobenius_error",
    "sample",
    "sqnr_db",
]

#: Test distributions of :func:`sample`.
DISTRIBUTIONS = ("gaussian", "laplace", "student_t2", "log2normal")
#: Scaling granularities of a :class:`Scheme`: ``"channel"`` is per row of a left operand (and of
#: a quantised matrix), per column of a right operand.
SCALINGS = ("none", "tensor", "channel")
#: Number-format families of a :class:`Scheme`.
KINDS = ("pal", "fp8_e4m3", "fp8_e5m2", "bf16", "int8")

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
    distribution : {"gaussian", "laplace", "student_t2", "log2normal"}
        Standard normal; Laplace with unit scale; Student's t with 2 degrees of freedom (heavy
        tails, infinite variance); random sign times ``2**(2 * N(0, 1))`` (magnitudes spread
        log-normally, ``log2|x|`` has standard deviation 2).
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
    elif distribution == "student_t2":
        x = rng.standard_t(2, size=shape)
    else:
        x = rng.choice([-1.0, 1.0], size=shape) * np.exp2(2 * rng.standard_normal(shape))
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


def _peak(x: np.ndarray, per: str) -> np.ndarray:
    """``max|x|`` over the tensor, each row or each column, shaped to broadcast against ``x``."""
    check_choice("per", per, _PER_MODES[1:])
    axis = {"tensor": None, "row": 1, "col": 0}[per]
    return np.max(np.abs(x), axis=axis, keepdims=True)


def pow2_scales(x, per: str, limit: float) -> np.ndarray:
    """Largest integer ``s`` with ``max|x| * 2**s <= limit``, per tensor, row or column.

    Parameters
    ----------
    x : 2-D array_like of float
    per : {"tensor", "row", "col"}
    limit : float
        Positive largest magnitude of the target format.

    Returns
    -------
    ndarray of int64
        Shaped to broadcast against ``x``; 0 where the maximum is zero. Decided exactly from the
        binary exponents (``max = m * 2**e``, ``limit = M * 2**E``, ``m, M`` in ``[1/2, 1)``):
        ``s = E - e - (m > M)``.
    """
    x = _matrix("x", x)
    limit = check_positive_float("limit", limit)
    peak = _peak(x, per)
    m, e = np.frexp(peak)
    big_m, big_e = np.frexp(limit)
    return np.where(peak > 0, big_e - e - (m > big_m), 0).astype(np.int64)


def pal_roundtrip(x, fmt: PALFormat, per: str | None = None, target: int | None = None):
    """Quantise to PAL with :func:`palhdl.sim.golden.quantize` and return the represented values.

    ``per`` and ``target`` are passed to :func:`~palhdl.sim.golden.quantize`; the result is
    ``decode(codes) * 2**-s`` in float64 (the decoded value is correctly rounded, the scaling
    exact).
    """
    x = _matrix("x", x)
    codes, scales = golden.quantize(x, fmt, per=per, target=target)
    offset = scales[:, None] if per == "row" else scales
    return np.ldexp(golden.decode(codes, fmt), -offset)


def fp_roundtrip(x, dtype, per: str | None = None) -> np.ndarray:
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
    """
    x = _matrix("x", x)
    check_choice("dtype", dtype, _ML_DTYPES.values())
    check_choice("per", per, _PER_MODES)
    shift = 0 if per is None else pow2_scales(x, per, float(ml_dtypes.finfo(dtype).max))
    rounded = np.ldexp(x, shift).astype(np.float32).astype(dtype).astype(np.float64)
    return np.ldexp(rounded, -shift)


def int8_roundtrip(x, per: str) -> np.ndarray:
    """Symmetric INT8: ``q = clip(round_half_even(x / scale), -127, 127)``, value ``q * scale``.

    ``scale = max|x| / 127`` per ``"tensor"``, ``"row"`` or ``"col"``; an all-zero slice stays
    zero.
    """
    x = _matrix("x", x)
    peak = _peak(x, per)
    scale = np.where(peak > 0, peak / _INT8_MAX, 1.0)
    return np.clip(np.rint(x / scale), -_INT8_MAX, _INT8_MAX) * scale


def _operand_per(scaling: str, side: str) -> str | None:
    """Map a :class:`Scheme` scaling to a ``per`` mode for a left (row) or right (col) operand."""
    return {"none": None, "tensor": "tensor", "channel": side}[scaling]


def pal_matmul(a, b, config: MacConfig, scaling: str = "channel") -> golden.MacResult:
    """Quantise ``a`` and ``b`` to PAL and multiply them with the golden model's accumulation.

    Parameters
    ----------
    a, b : 2-D array_like of float, shapes ``(M, K)`` and ``(K, N)``
    config : MacConfig
    scaling : {"none", "tensor", "channel"}
        Power-of-two scaling of the operands (``"channel"``: per row of ``a``, per column of
        ``b``; identical to :func:`palhdl.sim.golden.matmul_values` with ``adaptive=True``, and
        ``"none"`` to ``adaptive=False``). Scales move maxima to
        :meth:`MacConfig.scale_target` for this ``K``.
    """
    check_choice("scaling", scaling, SCALINGS)
    a = _matrix("a", a)
    b = _matrix("b", b)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a and b must have shapes (M, K) and (K, N), not {a.shape} and {b.shape}")
    target = config.scale_target(a.shape[1])
    fmt = config.fmt
    a_codes, a_scales = golden.quantize(a, fmt, per=_operand_per(scaling, "row"), target=target)
    b_codes, b_scales = golden.quantize(b, fmt, per=_operand_per(scaling, "col"), target=target)
    return golden.matmul(a_codes, b_codes, config, a_scales=a_scales, b_scales=b_scales)


# --- schemes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheme:
    """A number format together with how operands are scaled into it.

    Parameters
    ----------
    kind : {"pal", "fp8_e4m3", "fp8_e5m2", "bf16", "int8"}
    scaling : {"none", "tensor", "channel"}
        ``"bf16"`` allows only ``"none"``; ``"int8"`` needs ``"tensor"`` or ``"channel"``.
    fmt : PALFormat, optional
        Required for (and only for) ``kind="pal"``; its matmuls use ``MacConfig(fmt)``.
    """

    kind: str
    scaling: str
    fmt: PALFormat | None = None

    def __post_init__(self):
        """Check that ``kind``, ``scaling`` and ``fmt`` fit together."""
        check_choice("kind", self.kind, KINDS)
        check_choice("scaling", self.scaling, SCALINGS)
        if (self.kind == "pal") != isinstance(self.fmt, PALFormat):
            raise ValueError(
                f"fmt must be a PALFormat exactly when kind is 'pal', not {self.fmt!r}"
            )
        if self.kind == "bf16" and self.scaling != "none":
            raise ValueError(f"scaling must be 'none' for kind 'bf16', not {self.scaling!r}")
        if self.kind == "int8" and self.scaling == "none":
            raise ValueError("scaling must be 'tensor' or 'channel' for kind 'int8', not 'none'")

    @property
    def bits(self) -> int:
        """Bits per stored value (scales not counted)."""
        return self.fmt.width if self.kind == "pal" else 16 if self.kind == "bf16" else 8

    @property
    def label(self) -> str:
        """Table name of the format: ``"pal8 (4.3)"``, ``"FP8 E4M3"``, ``"INT8"`` ..."""
        if self.kind == "pal":
            return f"pal{self.fmt.width} ({self.fmt.int_bits}.{self.fmt.frac_bits})"
        return {"fp8_e4m3": "FP8 E4M3", "fp8_e5m2": "FP8 E5M2", "bf16": "BF16", "int8": "INT8"}[
            self.kind
        ]

    @property
    def scaling_label(self) -> str:
        """Table name of the scaling: ``"none"``, ``"tensor 2^s"``, ``"row/col max/127"`` ..."""
        if self.scaling == "none":
            return "none"
        unit = "max/127" if self.kind == "int8" else "2^s"
        where = "tensor" if self.scaling == "tensor" else "row/col"
        return f"{where} {unit}"

    def roundtrip(self, x, side: str = "row") -> np.ndarray:
        """Values ``x`` quantises to; ``side`` ``"row"`` or ``"col"`` sets channel scaling."""
        check_choice("side", side, ("row", "col"))
        per = _operand_per(self.scaling, side)
        if self.kind == "pal":
            return pal_roundtrip(x, self.fmt, per)
        if self.kind == "int8":
            return int8_roundtrip(x, per)
        return fp_roundtrip(x, _ML_DTYPES[self.kind], per)

    def matmul(self, a, b) -> np.ndarray:
        """Multiply ``a @ b`` in this scheme; the result is float64.

        PAL goes through :func:`pal_matmul`; other kinds quantise both operands and multiply in
        float64.
        """
        if self.kind == "pal":
            return pal_matmul(a, b, MacConfig(self.fmt), self.scaling).to_float64()
        return self.roundtrip(a, "row") @ self.roundtrip(b, "col")
