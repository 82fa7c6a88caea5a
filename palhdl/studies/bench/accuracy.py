"""``palhdl bench`` section ``accuracy``: matmul SQNR per format, scaling and distribution; the MLP.

The formats, quantisers and scalings are those of the accuracy study
(:func:`palhdl.studies.accuracy_scaling.scaling_study`, :func:`~.accuracy_scaling.mlp_study`,
``docs/format.md`` section 14): every format multiplies the same operands with per-tensor,
per-row/column and block-32 scaling, PAL through the golden model, and the result is compared
with float64. The MLP classifies scikit-learn's digits with every matmul in each format.
"""

from __future__ import annotations

from palhdl.studies.accuracy_scaling import SCALING_COLUMNS, mlp_study, scaling_study
from palhdl.studies.bench.options import BenchOptions
from palhdl.studies.quantisation import DISTRIBUTIONS

__all__ = ["FULL_MKN", "QUICK_MKN", "TITLES", "headline_sqnr", "measure", "render"]

#: Matmul shapes ``(M, K, N)`` of a full and a quick run.
FULL_MKN = (128, 512, 128)
QUICK_MKN = (16, 64, 16)

#: Titles of the distributions.
TITLES = {
    "gaussian": "Gaussian",
    "laplace": "Laplace",
    "student_t3": "Student's t (3)",
    "gauss_lognormal": "Gaussian × log-normal",
}

_SCALING_TITLES = {"tensor": "tensor", "channel": "row/col", "block": "block 32"}


def _split(fmt) -> str | None:
    return None if fmt is None else f"({fmt.int_bits}.{fmt.frac_bits})"


def measure(options: BenchOptions) -> dict:
    """Run the scaling study on every distribution and the digits MLP; return the data.

    Returns
    -------
    dict
        ``"mkn"``, ``"scalings"`` (:data:`~palhdl.studies.accuracy_scaling.SCALING_COLUMNS`),
        ``"distributions"``: ``{name: [{"label", "bits", "sqnr_db": [per scaling, None where
        a format has no such scaling], "splits": [the adaptive split per scaling or None]}]}``;
        ``"mlp"``: ``{"digits", "float64_top1", "rows": [{"label", "bits", "top1": [...],
        "agreement": [...]}]}``.
    """
    mkn = QUICK_MKN if options.quick else FULL_MKN
    distributions = {}
    for distribution in DISTRIBUTIONS:
        options.progress(f"accuracy: {distribution} {mkn[0]}x{mkn[1]} @ {mkn[1]}x{mkn[2]}")
        distributions[distribution] = [
            {
                "label": row.label,
                "bits": row.bits,
                "sqnr_db": [None if v is None else round(float(v), 3) for v in row.sqnr_db],
                "splits": [_split(fmt) for fmt in row.splits],
            }
            for row in scaling_study(distribution, options.seed, mkn)
        ]
    options.progress("accuracy: digits MLP in every format")
    study = mlp_study(options.seed)
    mlp = {
        "digits": study.digits,
        "float64_top1": study.float64_top1,
        "rows": [
            {"label": r.label, "bits": r.bits, "top1": list(r.top1), "agreement": list(r.agreement)}
            for r in study.rows
        ],
    }
    return {
        "mkn": list(mkn),
        "scalings": list(SCALING_COLUMNS),
        "distributions": distributions,
        "mlp": mlp,
    }


def headline_sqnr(
    data: dict, label: str, scaling: str | None = None
) -> tuple[float | None, str | None]:
    """Return a format's SQNR averaged over the distributions, and the scaling's title.

    ``scaling`` is one of :data:`~palhdl.studies.accuracy_scaling.SCALING_COLUMNS`; default
    the best-supported one: block 32 where the format has it, else row/column, else per tensor
    (BF16: none). Returns ``(None, None)`` for an unknown ``label`` or a scaling it lacks.
    """
    scalings = data["scalings"]
    values: dict[str, list[float]] = {}
    for rows in data["distributions"].values():
        for row in rows:
            if row["label"] == label:
                for name, value in zip(scalings, row["sqnr_db"], strict=True):
                    if value is not None:
                        values.setdefault(name, []).append(value)
    for name in (scaling,) if scaling else ("block", "channel", "tensor"):
        if name in values:
            title = "none" if label == "BF16" else _SCALING_TITLES[name]
            return sum(values[name]) / len(values[name]), title
    return None, None


def _db(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def render(data: dict) -> list[str]:
    """Return the section's Markdown: SQNR per distribution and scaling, then the MLP."""
    scalings = [_SCALING_TITLES[s] for s in data["scalings"]]
    names = list(data["distributions"])
    m, k, n = data["mkn"]
    lines = [
        f"Matmul SQNR (dB) against float64, {m} × {k} @ {k} × {n}, per scaling and "
        "distribution (an adaptive PAL format's chosen split in brackets):",
    ]
    labels = [row["label"] for row in data["distributions"][names[0]]]
    for column, scaling in enumerate(scalings):
        lines += [
            "",
            f"| {scaling} | " + " | ".join(TITLES.get(name, name) for name in names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for index, label in enumerate(labels):
            cells = [label]
            for name in names:
                row = data["distributions"][name][index]
                split = row["splits"][column]
                cells.append(_db(row["sqnr_db"][column]) + (f" {split}" if split else ""))
            lines.append("| " + " | ".join(cells) + " |")
    mlp = data["mlp"]
    lines += [
        "",
        f"Digits MLP (64-32-10, {mlp['digits']} test digits), every matmul in the format; "
        f"float64: {_percent(mlp['float64_top1'])} top-1. Top-1 / agreement with float64:",
        "",
        "| Format | " + " | ".join(scalings) + " |",
        "|---|" + "---:|" * len(scalings),
    ]
    for row in mlp["rows"]:
        cells = [
            "-" if t is None else f"{_percent(t)} / {_percent(a)}"
            for t, a in zip(row["top1"], row["agreement"], strict=True)
        ]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Scalings: power-of-two scales per tensor, per row of A / column of B, or per block of "
        "32 along K (MX formats: the OCP E8M0 rule; INT8: symmetric max/127). PAL matmuls run "
        "through the golden model's linear accumulator; the others quantise both operands and "
        "multiply in float64 (docs/format.md, section 14).",
    ]
    return lines
