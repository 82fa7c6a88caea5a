"""Tests of the scaling part of the accuracy study (``palhdl.studies.accuracy_scaling``)."""

import pytest

from palhdl.format import MacConfig, PALFormat, pal8
from palhdl.sim import golden
from palhdl.sim.golden.mx import MX_FORMATS, mx_matmul_values
from palhdl.studies import accuracy_scaling
from palhdl.studies.accuracy_scaling import ScalingRow, TargetCheck
from palhdl.studies.quantisation import sample, sqnr_db

LABELS = [
    "pal8 (4.3)",
    "pal8 (3.4)",
    "pal8 (5.2)",
    "pal16 (8.7)",
    "pal8 adaptive",
    "MXINT8",
    "MXFP8 E4M3",
    "MXFP8 E5M2",
    "FP8 E4M3",
    "FP8 E5M2",
    "INT8",
    "BF16",
]
PAL34 = PALFormat(int_bits=3, frac_bits=4)


def test_scaling_rows_cover_every_format_and_scaling():
    rows = accuracy_scaling.scaling_rows()
    assert [next(s for s in row if s).label for row in rows] == LABELS
    for row in rows:
        schemes = [s for s in row if s is not None]
        assert len({(s.label, s.bits) for s in schemes}) == 1
        if row[-1].kind == "bf16":
            assert all(s.scaling == "none" for s in row)
        elif row[-1].adaptive:
            assert row[0] is None and [s.scaling for s in row[1:]] == ["channel", "block"]
        else:
            assert [s.scaling for s in row] == list(accuracy_scaling.SCALING_COLUMNS)
            assert row[-1].block_size == 32


def test_scaling_study_is_the_golden_models_sqnr():
    mkn = (6, 70, 5)
    rows = {r.label: r for r in accuracy_scaling.scaling_study("student_t3", 2, mkn)}
    assert list(rows) == LABELS
    a = sample("student_t3", (6, 70), 3)
    b = sample("student_t3", (70, 5), 4)
    reference = a @ b
    pal34 = golden.matmul_values(a, b, MacConfig(PAL34), block_size=32).to_float64()
    assert rows["pal8 (3.4)"].sqnr_db[2] == sqnr_db(reference, pal34)
    mxint8 = mx_matmul_values(a, b, MX_FORMATS["mxint8"], block_size=32)
    assert rows["MXINT8"].sqnr_db[2] == sqnr_db(reference, mxint8)
    channel = mx_matmul_values(a, b, MX_FORMATS["mxfp8_e4m3"], block_size=70)
    assert rows["MXFP8 E4M3"].sqnr_db[1] == sqnr_db(reference, channel)
    adaptive = rows["pal8 adaptive"]
    assert adaptive.sqnr_db[0] is None and adaptive.splits[0] is None
    choice = golden.choose_split(a, b, block_size=32)
    assert adaptive.splits[2] == choice.fmt
    config = MacConfig(pal8).retarget(choice.fmt)
    expected = golden.matmul_values(a, b, config, block_size=32).to_float64()
    assert adaptive.sqnr_db[2] == sqnr_db(reference, expected)
    assert len(set(rows["BF16"].sqnr_db)) == 1
    assert all(
        r.splits == (None, None, None) for label, r in rows.items() if "adaptive" not in label
    )


def test_block_scaling_rescues_narrow_formats_on_heavy_tails():
    rows = {r.label: r for r in accuracy_scaling.scaling_study("student_t3", 0, (64, 256, 64))}
    tensor, block = 0, 2
    # pal8 (3.4) and MXINT8 run out of range with one scale per tensor; per block they do not.
    for label in ("pal8 (3.4)", "MXINT8", "INT8"):
        assert rows[label].sqnr_db[block] > rows[label].sqnr_db[tensor] + 5
    # A power-of-two scale never changes pal8 (4.3)'s relative precision on these data.
    assert max(rows["pal8 (4.3)"].sqnr_db) - min(rows["pal8 (4.3)"].sqnr_db) < 0.1


def _row(label: str, block: float, split=None) -> ScalingRow:
    return ScalingRow(label, 8, (None, None, block), (None, None, split))


@pytest.mark.parametrize(
    ("distribution", "adaptive", "fp8", "int8", "met"),
    [
        ("gaussian", 30.0, 25.0, 40.0, True),  # exactly 5 dB above; MXINT8 does not count
        ("gaussian", 30.0, 25.01, 20.0, False),
        ("student_t3", 30.0, 25.0, 30.5, True),  # exactly 0.5 dB below MXINT8
        ("gauss_lognormal", 30.0, 25.0, 30.51, False),
        ("gauss_lognormal", 30.0, 26.0, 20.0, False),
    ],
)
def test_target_checks(distribution, adaptive, fp8, int8, met):
    rows = [
        _row("pal8 adaptive", adaptive, PAL34),
        _row("MXFP8 E4M3", fp8),
        _row("MXINT8", int8),
    ]
    (check,) = accuracy_scaling.target_checks({distribution: rows})
    assert check == TargetCheck(distribution, adaptive, fp8, int8, PAL34)
    assert check.heavy == (distribution in ("student_t3", "gauss_lognormal"))
    assert check.met == met
    table = accuracy_scaling.target_table([check], {distribution: "data"}).splitlines()
    assert table[0].split() == [
        "operands",
        "pal8",
        "adaptive",
        "(split)",
        "MXFP8",
        "E4M3",
        "difference",
        "MXINT8",
        "difference",
        "targets",
        "met",
    ]
    assert table[2].startswith("data ") and table[2].endswith("yes" if met else "no")
    assert "30.0 (3.4)" in table[2] and "(≥ +5)" in table[2]
    assert ("(≥ -0.5)" in table[2]) == check.heavy


def test_scaling_table_marks_splits_and_missing_cells():
    rows = [ScalingRow("pal8 adaptive", 8, (None, 31.04, 34.96), (None, PAL34, PAL34))]
    assert accuracy_scaling.scaling_table(rows, markdown=True).splitlines()[2] == (
        "| pal8 adaptive |    8 |      — | 31.0 (3.4) | 35.0 (3.4) |"
    )


def test_mlp_study():
    study = accuracy_scaling.mlp_study(0)
    assert study.digits == 397 and 0.9 < study.float64_top1 <= 1
    rows = {r.label: r for r in study.rows}
    assert list(rows) == LABELS
    assert rows["pal8 adaptive"].top1[0] is None and rows["pal8 adaptive"].agreement[0] is None
    for label, row in rows.items():
        for top1, agreement in zip(row.top1, row.agreement, strict=True):
            if top1 is not None:
                assert 0.9 < top1 <= 1 and 0.95 < agreement <= 1, label
    # 16-bit formats classify almost every digit as float64 does.
    assert min(rows["BF16"].agreement + rows["pal16 (8.7)"].agreement) >= 0.99
    table = accuracy_scaling.mlp_table(study).splitlines()
    assert table[0].split()[:4] == ["format", "bits", "top-1", "tensor"]
    assert len(table) == 2 + len(LABELS)
    assert "—" in table[2 + LABELS.index("pal8 adaptive")]
