"""The accuracy study: PAL quantisation and PAL matmuls against float64, next to FP8, INT8, BF16.

The schemes, test data, metrics and quantisers are in :mod:`palhdl.studies.quantisation`; this
module runs them: the per-distribution study, the skewed-data study, the cost of a MAC's own
rounding, their tables, and the golden-model part of ``palhdl demo``. Every function is pure:
random data come from an explicit seed, and nothing is cached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.sim import golden
from palhdl.studies.quantisation import (
    ErrorStats,
    Scheme,
    error_stats,
    pal_matmul,
    relative_errors,
    relative_frobenius_error,
    sample,
    sqnr_db,
)

__all__ = [
    "PAL8_34",
    "PAL8_52",
    "MacRoundingCost",
    "SkewRow",
    "StudyRow",
    "demo_layer",
    "distribution_study",
    "format_db",
    "format_table",
    "mac_rounding_cost",
    "run_demo",
    "skew_schemes",
    "skew_study",
    "skew_table",
    "study_schemes",
    "study_table",
]


# --- data -------------------------------------------------------------------------------------


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


# --- the MAC's own rounding ------------------------------------------------------------------


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

    ``a`` (``size x k``) and ``b`` (``k x size``) are standard normal
    (:func:`~palhdl.studies.quantisation.sample`); both are quantised with per-row/per-column
    scaling to ``config.scale_target(k)`` (as :func:`palhdl.sim.golden.matmul_values`). The
    reference is the float64 product of the unquantised matrices.
    :attr:`MacRoundingCost.quantised_db` sums the quantised operands' products in float64 (the
    PAL values' own error); :attr:`MacRoundingCost.mac_db` is the golden MAC's result, which
    also rounds each product's mantissa to ``mantissa_bits``, products below the accumulator's
    LSB, and overflows.
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


# --- studies ----------------------------------------------------------------------------------


#: pal8 (3.4) and (5.2): the other splits of the 8-bit word the studies show.
PAL8_34 = PALFormat(int_bits=3, frac_bits=4)
PAL8_52 = PALFormat(int_bits=5, frac_bits=2)


def study_schemes() -> list[Scheme]:
    """Return the schemes of the per-distribution study, in table order."""
    return [
        Scheme("pal", "channel", pal8),
        Scheme("pal", "tensor", pal8),
        Scheme("pal", "channel", PAL8_52),
        Scheme("pal", "channel", PAL8_34),
        Scheme("pal", "block", PAL8_34),
        Scheme("pal", "block", pal8, adaptive=True),
        Scheme("pal", "channel", pal16),
        Scheme("mxint8", "block"),
        Scheme("mxfp8_e4m3", "block"),
        Scheme("mxfp8_e5m2", "block"),
        Scheme("fp8_e4m3", "tensor"),
        Scheme("fp8_e5m2", "tensor"),
        Scheme("int8", "tensor"),
        Scheme("int8", "channel"),
        Scheme("bf16", "none"),
    ]


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
    """Measure what adaptive scaling buys when rows and columns differ widely in magnitude.

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


def format_db(value: float) -> str:
    """Format a value in dB for a table: one decimal, or ``inf``."""
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
            format_db(r.stats.sqnr_db),
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
            format_db(r.stats.sqnr_db),
            format_db(r.worst_row_sqnr_db),
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
        Scheme("pal", "block", pal8, adaptive=True),
        Scheme("pal", "channel", pal16),
        Scheme("mxint8", "block"),
        Scheme("mxfp8_e4m3", "block"),
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
                format_db(sqnr_db(x, qx)),
                format_db(sqnr_db(w, qw)),
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
    split = Scheme("pal", "block", pal8, adaptive=True).split(x, w).fmt
    print(
        f"\npal8 accumulation is exact: every product enters as its {config.mantissa_bits}-bit "
        f"linear mantissa, and the\n{config.acc_bits}-bit accumulator "
        f"({config.acc_frac_bits} fraction bits) adds them without rounding and cannot overflow\n"
        f"for K <= {config.max_exact_k} (here K = {k}; overflow flags set: {overflow}, "
        f"NaN flags set: {nan}).\n"
        f"pal8 adaptive: block scaling (one E8M0 scale per 32 elements along K) and the split "
        f"golden.choose_split\npicks for this layer, ({split.int_bits}.{split.frac_bits}), on "
        "pal8's accumulator (what a loadable, block-scaled bitstream runs).\n"
        "PAL rows: golden model (exact power-of-two scaling, hardware matmul). Other rows: "
        "operands\nquantised, then multiplied in float64 (exact accumulation up to ~1e-16 "
        "relative).\nFP8 scaling: largest 2^s with max|x| * 2^s <= 448 (E4M3) / 57344 (E5M2); "
        "INT8: max|x| / 127;\nMX: OCP MX v1.0 (E8M0 block scales, elements rounded to nearest even "
        "and saturated).\nrel.err: over the nonzero entries of x and w; a value flushed to "
        "zero has rel.err 1."
    )
