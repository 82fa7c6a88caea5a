"""Accuracy study, scaling part: per-tensor, per-row/column and block scaling side by side.

Every format of :func:`scaling_rows` multiplies the same operands with each scaling; the result
is compared with float64 (:func:`scaling_study`). :func:`target_checks` holds the block-scaling
targets against those numbers, and :func:`mlp_study` runs scikit-learn's digits through a small
MLP in every format. The schemes and quantisers are in :mod:`palhdl.studies.quantisation`. Every
function is pure: random data come from an explicit seed, and nothing is cached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from palhdl.demo import digits_mlp
from palhdl.format import PALFormat, pal8, pal16
from palhdl.studies.accuracy import PAL8_34, PAL8_52, format_db, format_table
from palhdl.studies.quantisation import DISTRIBUTIONS, MX_KINDS, Scheme, sample, sqnr_db
from palhdl.validate import check_choice

__all__ = [
    "HEAVY_TAILED",
    "MLP_TARGET",
    "SCALING_COLUMNS",
    "TARGET_FP8_DB",
    "TARGET_INT8_DB",
    "MlpRow",
    "MlpStudy",
    "ScalingRow",
    "TargetCheck",
    "mlp_study",
    "mlp_table",
    "scaling_rows",
    "scaling_study",
    "scaling_table",
    "target_checks",
    "target_table",
]

#: The scalings of the side-by-side tables, in column order (:data:`~.quantisation.SCALINGS`).
SCALING_COLUMNS = ("tensor", "channel", "block")
#: Distributions whose operands count as heavy-tailed for the targets.
HEAVY_TAILED = ("student_t3", "gauss_lognormal")
#: Targets: pal8 adaptive with block scaling at least this far above MXFP8 E4M3 (dB) ...
TARGET_FP8_DB = 5.0
#: ... and on heavy-tailed operands at most this far below MXINT8 (dB) ...
TARGET_INT8_DB = -0.5
#: ... and on the digits MLP within this fraction of float64's top-1 accuracy.
MLP_TARGET = 0.005


def scaling_rows() -> list[tuple[Scheme | None, ...]]:
    """Return the side-by-side table's schemes: one tuple per format, one entry per column.

    ``None`` marks a scaling a format does not have (the adaptive split is chosen with row/col or
    block scales only); BF16 is unscaled in every column.
    """

    def pal(fmt: PALFormat, adaptive: bool = False) -> tuple[Scheme | None, ...]:
        return tuple(
            None if adaptive and scaling == "tensor" else Scheme("pal", scaling, fmt, adaptive)
            for scaling in SCALING_COLUMNS
        )

    rows = [pal(pal8), pal(PAL8_34), pal(PAL8_52), pal(pal16), pal(pal8, adaptive=True)]
    kinds = (*MX_KINDS, "fp8_e4m3", "fp8_e5m2", "int8")
    rows += [tuple(Scheme(kind, s) for s in SCALING_COLUMNS) for kind in kinds]
    rows.append((Scheme("bf16", "none"),) * len(SCALING_COLUMNS))
    return rows


def _name(schemes: tuple[Scheme | None, ...]) -> Scheme:
    return next(s for s in schemes if s is not None)


@dataclass(frozen=True)
class ScalingRow:
    """One format of :func:`scaling_study`.

    Attributes
    ----------
    label : str
        The format (:attr:`Scheme.label`).
    bits : int
    sqnr_db : tuple of float or None
        Matmul SQNR against float64 per :data:`SCALING_COLUMNS` (``None``: not applicable).
    splits : tuple of PALFormat or None
        The split an adaptive scheme chose per column (``None`` for the other formats).
    """

    label: str
    bits: int
    sqnr_db: tuple
    splits: tuple


def _operands(distribution: str, seed: int, mkn) -> tuple[np.ndarray, np.ndarray]:
    check_choice("distribution", distribution, DISTRIBUTIONS)
    m, k, n = mkn
    return sample(distribution, (m, k), seed + 1), sample(distribution, (k, n), seed + 2)


def scaling_study(distribution: str, seed: int = 0, mkn=(128, 512, 128)) -> list[ScalingRow]:
    """Matmul SQNR of every format of :func:`scaling_rows` with each scaling.

    Parameters
    ----------
    distribution : str
        One of :data:`~palhdl.studies.quantisation.DISTRIBUTIONS`.
    seed : int
        ``a`` is drawn with seed ``seed + 1``, ``b`` with ``seed + 2`` (as
        :func:`~palhdl.studies.accuracy.distribution_study`).
    mkn : tuple of int
        ``(M, K, N)``: ``a`` is ``M x K``, ``b`` is ``K x N``.
    """
    a, b = _operands(distribution, seed, mkn)
    reference = a @ b
    done: dict[Scheme, float] = {}
    rows = []
    for schemes in scaling_rows():
        for scheme in schemes:
            if scheme is not None and scheme not in done:
                done[scheme] = sqnr_db(reference, scheme.matmul(a, b))
        first = _name(schemes)
        rows.append(
            ScalingRow(
                label=first.label,
                bits=first.bits,
                sqnr_db=tuple(None if s is None else done[s] for s in schemes),
                splits=tuple(s.split(a, b).fmt if s and s.adaptive else None for s in schemes),
            )
        )
    return rows


def _cell(value, split: PALFormat | None) -> str:
    if value is None:
        return "—"
    text = format_db(value)
    return text if split is None else f"{text} ({split.int_bits}.{split.frac_bits})"


def scaling_table(rows: list[ScalingRow], markdown: bool = False, block_size: int = 32) -> str:
    """:func:`~palhdl.studies.accuracy.format_table` of :func:`scaling_study` results."""
    header = ["format", "bits", "tensor", "row/col", f"block {block_size}"]
    cells = [
        [r.label, str(r.bits), *(_cell(v, s) for v, s in zip(r.sqnr_db, r.splits, strict=True))]
        for r in rows
    ]
    return format_table(header, cells, markdown)


@dataclass(frozen=True)
class TargetCheck:
    """The block-scaling targets on one distribution (block column of :func:`scaling_study`).

    Attributes
    ----------
    distribution : str
    adaptive_db, mxfp8_e4m3_db, mxint8_db : float
        Matmul SQNR of pal8 adaptive, MXFP8 E4M3 and MXINT8, all block scaled.
    split : PALFormat
        The split pal8 adaptive chose.
    """

    distribution: str
    adaptive_db: float
    mxfp8_e4m3_db: float
    mxint8_db: float
    split: PALFormat

    @property
    def heavy(self) -> bool:
        """Whether the distribution is one of :data:`HEAVY_TAILED`."""
        return self.distribution in HEAVY_TAILED

    @property
    def met(self) -> bool:
        """Whether the targets hold.

        At least :data:`TARGET_FP8_DB` above MXFP8 E4M3 and, if heavy-tailed, at least
        :data:`TARGET_INT8_DB` relative to MXINT8.
        """
        above = self.adaptive_db - self.mxfp8_e4m3_db >= TARGET_FP8_DB
        return above and (not self.heavy or self.adaptive_db - self.mxint8_db >= TARGET_INT8_DB)


def target_checks(studies: dict[str, list[ScalingRow]]) -> list[TargetCheck]:
    """:class:`TargetCheck` per distribution from :func:`scaling_study` results by distribution."""
    checks = []
    for distribution, rows in studies.items():
        by_label = {r.label: r for r in rows}
        block = SCALING_COLUMNS.index("block")
        adaptive = by_label["pal8 adaptive"]
        checks.append(
            TargetCheck(
                distribution,
                adaptive.sqnr_db[block],
                by_label["MXFP8 E4M3"].sqnr_db[block],
                by_label["MXINT8"].sqnr_db[block],
                adaptive.splits[block],
            )
        )
    return checks


def target_table(checks: list[TargetCheck], titles: dict[str, str], markdown: bool = False):
    """:func:`~palhdl.studies.accuracy.format_table` of :func:`target_checks`.

    ``titles`` names the distributions.
    """
    header = [
        "operands",
        "pal8 adaptive (split)",
        "MXFP8 E4M3",
        "difference",
        "MXINT8",
        "difference",
        "targets met",
    ]
    cells = []
    for c in checks:
        int8_target = f" (≥ {TARGET_INT8_DB:+.1f})" if c.heavy else ""
        cells.append(
            [
                titles[c.distribution],
                _cell(c.adaptive_db, c.split),
                format_db(c.mxfp8_e4m3_db),
                f"{c.adaptive_db - c.mxfp8_e4m3_db:+.1f} (≥ +{TARGET_FP8_DB:.0f})",
                format_db(c.mxint8_db),
                f"{c.adaptive_db - c.mxint8_db:+.1f}{int8_target}",
                "yes" if c.met else "no",
            ]
        )
    return format_table(header, cells, markdown)


# --- the digits MLP ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MlpRow:
    """One format of :func:`mlp_study`: per :data:`SCALING_COLUMNS`, ``None`` if not applicable.

    Attributes
    ----------
    label : str
    bits : int
    top1 : tuple of float or None
        Fraction of test digits classified correctly.
    agreement : tuple of float or None
        Fraction of test digits classified as float64 classifies them.
    """

    label: str
    bits: int
    top1: tuple
    agreement: tuple


@dataclass(frozen=True)
class MlpStudy:
    """The result of :func:`mlp_study`.

    Attributes
    ----------
    digits : int
        Test digits.
    float64_top1 : float
        float64's top-1 accuracy.
    rows : list of MlpRow
    """

    digits: int
    float64_top1: float
    rows: list


def mlp_study(seed: int = 0) -> MlpStudy:
    """Classify scikit-learn's digits with a 64-32-10 MLP in every format of :func:`scaling_rows`.

    The MLP is :func:`palhdl.demo.digits_mlp` (trained in float64 with ``seed``). Both layers'
    matmuls run in the scheme (:meth:`Scheme.matmul`: activations are the left operand, scaled
    per row or per block along ``K``; weights the right one); biases and ReLU are float64.
    Adaptive schemes choose a split per layer.
    """
    x, y, (w1, b1, w2, b2) = digits_mlp(seed)

    def predict(matmul) -> np.ndarray:
        hidden = np.maximum(matmul(x, w1) + b1, 0.0)
        return np.argmax(matmul(hidden, w2) + b2, axis=1)

    exact = predict(lambda a, b: a @ b)
    done: dict[Scheme, np.ndarray] = {}
    rows = []
    for schemes in scaling_rows():
        for scheme in schemes:
            if scheme is not None and scheme not in done:
                done[scheme] = predict(scheme.matmul)
        first = _name(schemes)
        rows.append(
            MlpRow(
                first.label,
                first.bits,
                tuple(None if s is None else float(np.mean(done[s] == y)) for s in schemes),
                tuple(None if s is None else float(np.mean(done[s] == exact)) for s in schemes),
            )
        )
    return MlpStudy(len(y), float(np.mean(exact == y)), rows)


def _percent(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def mlp_table(study: MlpStudy, markdown: bool = False, block_size: int = 32) -> str:
    """:func:`~palhdl.studies.accuracy.format_table` of :func:`mlp_study`."""
    scalings = ["tensor", "row/col", f"block {block_size}"]
    header = [
        "format",
        "bits",
        *(f"top-1 {s}" for s in scalings),
        *(f"agreement {s}" for s in scalings),
    ]
    cells = [
        [r.label, str(r.bits), *map(_percent, r.top1), *map(_percent, r.agreement)]
        for r in study.rows
    ]
    return format_table(header, cells, markdown)
