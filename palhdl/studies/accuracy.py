"""Accuracy of PAL quantisation and PAL matmuls against float64, next to FP8, INT8 and BF16.

Every function here is pure: random data come from an explicit seed, and nothing is cached.

Conventions of the study (``docs/format.md`` reports its numbers):

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

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.sim import golden

__all__ = [
    "DISTRIBUTIONS",
    "KINDS",
    "SCALINGS",
    "ErrorStats",
    "MacRoundingCost",
    "Scheme",
    "SkewRow",
    "StudyRow",
    "demo_layer",
    "distribution_study",
    "error_stats",
    "format_table",
    "fp_roundtrip",
    "int8_roundtrip",
    "mac_rounding_cost",
    "pal_matmul",
    "pal_roundtrip",
    "pow2_scales",
    "relative_errors",
    "relative_frobenius_error",
    "run_demo",
    "sample",
    "skew_schemes",
    "skew_study",
    "skew_table",
    "sqnr_db",
    "study_schemes",
    "study_table",
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
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, not {distribution!r}")
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


def demo_layer(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic operands of one MLP layer shaped like MNIST: ``y = x @ w``.

    ``x`` is a batch of 64 activations of width 784, ``ReLU(N(0, 1))`` (half of them zero);
    ``w`` is a 784 x 128 weight matrix, Kaiming-normal (``N(0, 2 / 784)``). Both are float32
    values stored as float64.
    """
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal((64, 784)), 0.0)
    w = rng.standard_normal((784, 128)) * np.sqrt(2.0 / 784)
    return x.astype(np.float32).astype(np.float64), w.astype(np.float32).astype(np.float64)


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
    if per not in _PER_MODES[1:]:
        raise ValueError(f"per must be one of {_PER_MODES[1:]}, not {per!r}")
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
    if not np.isfinite(limit) or limit <= 0:
        raise ValueError(f"limit must be a positive finite number, not {limit!r}")
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
    if dtype not in _ML_DTYPES.values():
        names = [t.__name__ for t in _ML_DTYPES.values()]
        raise ValueError(f"dtype must be one of ml_dtypes {names}, not {dtype!r}")
    if per not in _PER_MODES:
        raise ValueError(f"per must be one of {_PER_MODES}, not {per!r}")
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
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, not {scaling!r}")
    a = _matrix("a", a)
    b = _matrix("b", b)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a and b must have shapes (M, K) and (K, N), not {a.shape} and {b.shape}")
    target = config.scale_target(a.shape[1])
    fmt = config.fmt
    a_codes, a_scales = golden.quantize(a, fmt, per=_operand_per(scaling, "row"), target=target)
    b_codes, b_scales = golden.quantize(b, fmt, per=_operand_per(scaling, "col"), target=target)
    return golden.matmul(a_codes, b_codes, config, a_scales=a_scales, b_scales=b_scales)


@dataclass(frozen=True)
class MacRoundingCost:
    """SQNRs of one Gaussian matmul (see :func:`mac_rounding_cost`)."""

    #: The PAL operands' products summed exactly: what the format itself loses.
    quantised_db: float
    #: The golden MAC's result (mantissa table width, accumulator window, overflow).
    mac_db: float

    @property
    def cost_db(self) -> float:
        """What the MAC's own rounding costs: ``quantised_db - mac_db``."""
        return self.quantised_db - self.mac_db


def mac_rounding_cost(config: MacConfig, k: int, *, size: int = 64, seed: int = 0):
    """SQNR a MAC configuration loses to its own rounding on a Gaussian matmul.

    ``a`` (``size x k``) and ``b`` (``k x size``) are standard normal (:func:`sample`); both are
    quantised with per-row/per-column scaling to ``config.scale_target(k)`` (as
    :func:`palhdl.sim.golden.matmul_values`). The reference is the float64 product of the
    unquantised matrices. :attr:`MacRoundingCost.quantised_db` sums the quantised operands'
    products in float64 (the PAL values' own error); :attr:`MacRoundingCost.mac_db` is the golden
    MAC's result, which also rounds each product's mantissa to ``mantissa_bits``, products below
    the accumulator's LSB, and overflows.
    """
    a = sample("gaussian", (size, k), seed)
    b = sample("gaussian", (k, size), seed + 1)
    reference = a @ b
    fmt = config.fmt
    target = config.scale_target(k)
    a_codes, a_scales = golden.quantize(a, fmt, per="row", target=target)
    b_codes, b_scales = golden.quantize(b, fmt, per="col", target=target)
    a_values = golden.decode(a_codes, fmt) * np.exp2(-a_scales.astype(np.float64))[:, None]
    b_values = golden.decode(b_codes, fmt) * np.exp2(-b_scales.astype(np.float64))[None, :]
    result = golden.matmul(a_codes, b_codes, config, a_scales=a_scales, b_scales=b_scales)
    return MacRoundingCost(
        quantised_db=sqnr_db(reference, a_values @ b_values),
        mac_db=sqnr_db(reference, result.to_float64()),
    )


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
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, not {self.scaling!r}")
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
        if self.kind == "pal":
            return f"pal{self.fmt.width} ({self.fmt.int_bits}.{self.fmt.frac_bits})"
        return {"fp8_e4m3": "FP8 E4M3", "fp8_e5m2": "FP8 E5M2", "bf16": "BF16", "int8": "INT8"}[
            self.kind
        ]

    @property
    def scaling_label(self) -> str:
        if self.scaling == "none":
            return "none"
        unit = "max/127" if self.kind == "int8" else "2^s"
        where = "tensor" if self.scaling == "tensor" else "row/col"
        return f"{where} {unit}"

    def roundtrip(self, x, side: str = "row") -> np.ndarray:
        """Values ``x`` quantises to; ``side`` ``"row"`` or ``"col"`` sets channel scaling."""
        if side not in ("row", "col"):
            raise ValueError(f"side must be 'row' or 'col', not {side!r}")
        per = _operand_per(self.scaling, side)
        if self.kind == "pal":
            return pal_roundtrip(x, self.fmt, per)
        if self.kind == "int8":
            return int8_roundtrip(x, per)
        return fp_roundtrip(x, _ML_DTYPES[self.kind], per)

    def matmul(self, a, b) -> np.ndarray:
        """``a @ b`` as float64: PAL through :func:`pal_matmul`, other kinds by quantising both
        operands and multiplying in float64.
        """
        if self.kind == "pal":
            return pal_matmul(a, b, MacConfig(self.fmt), self.scaling).to_float64()
        return self.roundtrip(a, "row") @ self.roundtrip(b, "col")


def study_schemes() -> list[Scheme]:
    """The schemes of the per-distribution study, in table order."""
    return [
        Scheme("pal", "channel", pal8),
        Scheme("pal", "tensor", pal8),
        Scheme("pal", "channel", PALFormat(int_bits=5, frac_bits=2)),
        Scheme("pal", "channel", PALFormat(int_bits=3, frac_bits=4)),
        Scheme("pal", "channel", pal16),
        Scheme("fp8_e4m3", "tensor"),
        Scheme("fp8_e5m2", "tensor"),
        Scheme("int8", "tensor"),
        Scheme("int8", "channel"),
        Scheme("bf16", "none"),
    ]


# --- studies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyRow:
    """One scheme's results.

    Attributes
    ----------
    scheme : Scheme
    stats : ErrorStats
        Elementwise quantisation error.
    matmul_error : float
        Relative Frobenius error of ``a @ b`` (PAL: the golden model's accumulation).
    operand_matmul_error : float
        The same with dequantised operands multiplied in float64 (equal to ``matmul_error`` for
        non-PAL schemes; for PAL the difference is the MAC's product-mantissa rounding).
    """

    scheme: Scheme
    stats: ErrorStats
    matmul_error: float
    operand_matmul_error: float


def _study_row(scheme: Scheme, x: np.ndarray, a: np.ndarray, b: np.ndarray) -> StudyRow:
    reference = a @ b
    operands = scheme.roundtrip(a, "row") @ scheme.roundtrip(b, "col")
    return StudyRow(
        scheme,
        error_stats(x, scheme.roundtrip(x)),
        relative_frobenius_error(reference, scheme.matmul(a, b)),
        relative_frobenius_error(reference, operands),
    )


def distribution_study(
    distribution: str,
    seed: int = 0,
    shape=(256, 256),
    mkn=(64, 256, 64),
    schemes: list[Scheme] | None = None,
) -> list[StudyRow]:
    """Quantisation and matmul error of every scheme on one distribution.

    Parameters
    ----------
    distribution : str
        One of :data:`DISTRIBUTIONS`.
    seed : int
        Data seeds are ``seed`` (elementwise array), ``seed + 1`` (``a``), ``seed + 2`` (``b``).
    shape : tuple of int
        Shape of the elementwise array (per-row scaling for ``"channel"`` schemes).
    mkn : tuple of int
        Matmul ``(M, K, N)``.
    schemes : list of Scheme, optional
        Default :func:`study_schemes`.
    """
    m, k, n = mkn
    x = sample(distribution, shape, seed)
    a = sample(distribution, (m, k), seed + 1)
    b = sample(distribution, (k, n), seed + 2)
    return [_study_row(s, x, a, b) for s in schemes or study_schemes()]


@dataclass(frozen=True)
class SkewRow:
    """One scheme's results on row/column-skewed data (see :func:`skew_study`).

    Attributes
    ----------
    scheme : Scheme
    stats : ErrorStats
        Elementwise error of the left operand ``a``.
    worst_row_sqnr_db : float
        Smallest per-row SQNR of ``a`` (0 dB means a row was lost entirely).
    matmul_error : float
        Relative Frobenius error of ``a @ b``: dominated by the largest rows and columns.
    normalised_matmul_error : float
        Relative Frobenius error after dividing entry ``(i, j)`` of both the reference and the
        result by the known ``2**(u_i + v_j)``: every row and column weighs alike.
    """

    scheme: Scheme
    stats: ErrorStats
    worst_row_sqnr_db: float
    matmul_error: float
    normalised_matmul_error: float


def skew_schemes() -> list[Scheme]:
    """Schemes of :func:`skew_study`, in table order."""
    return [
        Scheme("pal", "none", pal8),
        Scheme("pal", "tensor", pal8),
        Scheme("pal", "channel", pal8),
        Scheme("pal", "none", pal16),
        Scheme("fp8_e4m3", "tensor"),
        Scheme("fp8_e4m3", "channel"),
        Scheme("int8", "tensor"),
        Scheme("int8", "channel"),
        Scheme("bf16", "none"),
    ]


def skew_study(seed: int = 0, mkn=(64, 256, 64), octaves: float = 8.0) -> list[SkewRow]:
    """What adaptive scaling buys when rows and columns have very different magnitudes.

    ``a = G_a * 2**u[:, None]`` and ``b = G_b * 2**v[None, :]`` with Gaussian ``G`` and row/column
    exponents ``u, v`` uniform in ``[-octaves, octaves]`` (seeds ``seed .. seed + 3``).
    """
    m, k, n = mkn
    u = np.random.default_rng(seed).uniform(-octaves, octaves, m)
    v = np.random.default_rng(seed + 1).uniform(-octaves, octaves, n)
    a = (sample("gaussian", (m, k), seed + 2) * np.exp2(u)[:, None]).astype(np.float32)
    b = (sample("gaussian", (k, n), seed + 3) * np.exp2(v)[None, :]).astype(np.float32)
    a, b = a.astype(np.float64), b.astype(np.float64)
    reference = a @ b
    weight = np.exp2(-(u[:, None] + v[None, :]))
    rows = []
    for scheme in skew_schemes():
        qa = scheme.roundtrip(a, "row")
        product = scheme.matmul(a, b)
        rows.append(
            SkewRow(
                scheme,
                error_stats(a, qa),
                min(sqnr_db(a[i], qa[i]) for i in range(m)),
                relative_frobenius_error(reference, product),
                relative_frobenius_error(reference * weight, product * weight),
            )
        )
    return rows


# --- presentation -----------------------------------------------------------------------------


def format_table(header: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    """Align a table of strings: plain text columns, or a markdown table if ``markdown``.

    The first column is left-aligned, the others right-aligned.
    """
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row must have {len(header)} cells, like header")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return f"| {' | '.join(padded)} |" if markdown else "  ".join(padded).rstrip()

    if markdown:
        rule = (
            "| "
            + " | ".join("-" * (w - 1) + ("-" if i == 0 else ":") for i, w in enumerate(widths))
            + " |"
        )
    else:
        rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _db(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:.1f}"


def _g(value: float) -> str:
    return f"{value:.3g}"


def _percent(value: float) -> str:
    return f"{100 * value:.2g}%" if value else "0"


def study_table(rows: list[StudyRow], markdown: bool = False) -> str:
    """:func:`format_table` of :func:`distribution_study` results."""
    header = [
        "format",
        "bits",
        "scaling",
        "SQNR dB",
        "rel. err median",
        "rel. err max",
        "flushed to 0",
        "matmul rel. Frobenius err",
        "… operands only",
    ]
    cells = [
        [
            r.scheme.label,
            str(r.scheme.bits),
            r.scheme.scaling_label,
            _db(r.stats.sqnr_db),
            _g(r.stats.median_rel),
            _g(r.stats.max_rel),
            _percent(r.stats.flushed),
            _g(r.matmul_error),
            _g(r.operand_matmul_error),
        ]
        for r in rows
    ]
    return format_table(header, cells, markdown)


def skew_table(rows: list[SkewRow], markdown: bool = False) -> str:
    """:func:`format_table` of :func:`skew_study` results."""
    header = [
        "format",
        "scaling",
        "SQNR dB (a)",
        "worst row SQNR dB",
        "flushed to 0",
        "matmul rel. Frobenius err",
        "… scale-normalised",
    ]
    cells = [
        [
            r.scheme.label,
            r.scheme.scaling_label,
            _db(r.stats.sqnr_db),
            _db(r.worst_row_sqnr_db),
            _percent(r.stats.flushed),
            _g(r.matmul_error),
            _g(r.normalised_matmul_error),
        ]
        for r in rows
    ]
    return format_table(header, cells, markdown)


def run_demo(seed: int = 0) -> None:
    """``palhdl demo``: one synthetic MLP layer through the golden model, errors vs float64.

    Prints a table (format, bits, scaling, SQNR of ``x`` and ``w``, median/max relative error of
    the nonzero operand entries, relative Frobenius error of ``y = x @ w``) for pal8 and pal16
    (golden-model matmul) next to FP8 E4M3/E5M2, INT8 and BF16 (quantised operands, float64
    matmul), and the pal8 accumulator's exactness.
    """
    x, w = demo_layer(seed)
    reference = x @ w
    config = MacConfig(pal8)
    pal8_scheme = Scheme("pal", "channel", pal8)
    pal8_result = pal_matmul(x, w, config, pal8_scheme.scaling)
    schemes = [
        pal8_scheme,
        Scheme("pal", "tensor", pal8),
        Scheme("pal", "channel", pal16),
        Scheme("fp8_e4m3", "tensor"),
        Scheme("fp8_e5m2", "tensor"),
        Scheme("int8", "tensor"),
        Scheme("int8", "channel"),
        Scheme("bf16", "none"),
    ]
    header = [
        "format",
        "bits",
        "scaling",
        "SQNR x dB",
        "SQNR w dB",
        "rel.err median",
        "rel.err max",
        "y rel.Frobenius err",
    ]
    operands = np.concatenate([x.ravel(), w.ravel()])
    rows = []
    for scheme in schemes:
        qx, qw = scheme.roundtrip(x, "row"), scheme.roundtrip(w, "col")
        median, worst = relative_errors(operands, np.concatenate([qx.ravel(), qw.ravel()]))
        product = pal8_result.to_float64() if scheme == pal8_scheme else scheme.matmul(x, w)
        error = relative_frobenius_error(reference, product)
        rows.append(
            [
                scheme.label,
                str(scheme.bits),
                scheme.scaling_label,
                _db(sqnr_db(x, qx)),
                _db(sqnr_db(w, qw)),
                _g(median),
                _g(worst),
                _g(error),
            ]
        )
    k = x.shape[1]
    print(
        f"palhdl demo: one MLP layer y = x @ w, x {x.shape[0]}x{k} = ReLU(N(0,1)) activations, "
        f"w {k}x{w.shape[1]} Kaiming-normal weights\n"
        f"(synthetic MNIST-shaped data, seed {seed}); errors against float64.\n"
    )
    print(format_table(header, rows))
    overflow, nan = int(pal8_result.overflow.sum()), int(pal8_result.nan.sum())
    print(
        f"\npal8 accumulation is exact: every product enters as its {config.mantissa_bits}-bit "
        f"linear mantissa, and the\n{config.acc_bits}-bit accumulator "
        f"({config.acc_frac_bits} fraction bits) adds them without rounding and cannot overflow\n"
        f"for K <= {config.max_exact_k} (here K = {k}; overflow flags set: {overflow}, "
        f"NaN flags set: {nan}).\n"
        "PAL rows: golden model (exact power-of-two scaling, hardware matmul). Other rows: "
        "operands\nquantised, then multiplied in float64 (exact accumulation up to ~1e-16 "
        "relative).\nFP8 scaling: largest 2^s with max|x| * 2^s <= 448 (E4M3) / 57344 (E5M2); "
        "INT8: max|x| / 127.\nrel.err: over the nonzero entries of x and w; a value flushed to "
        "zero has rel.err 1."
    )
