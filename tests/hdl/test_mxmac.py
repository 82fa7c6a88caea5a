"""The block-scaled MX MACs (``palhdl.hdl.mxmac``) against their golden model, ``mx_mac``."""

import numpy as np
import pytest

from palhdl.hdl.mxmac import (
    MXFloatProductTerm,
    MXFP8RestartMac,
    MXIntProductTerm,
    MXIntRestartMac,
    mx_operand_layout,
)
from palhdl.sim.golden.baselines import FLOAT_FORMATS, float_geometry
from palhdl.sim.golden.mx import MX_FORMATS
from palhdl.sim.golden.mxmac import MX_OFFSET_MAX, mx_mac
from palhdl.sim.pysim import pack_payloads, simulate_streams, unpack_payloads

COST_WINDOW = {"acc_bits": 32, "acc_frac_bits": 12, "term_bits": 14, "saturate": False}
NARROW_WINDOW = {"acc_bits": 20, "acc_frac_bits": 8, "term_bits": 10, "saturate": True}
FLAGS = {"mxint8": ("acc", "nan", "overflow")}
FLOAT_FLAGS = ("acc", "nan", "pos_inf", "neg_inf", "overflow")


def build(name: str, window: dict, segments: int = 1):
    """The MAC for MX format ``name`` (a key of ``MX_FORMATS``)."""
    if name == "mxint8":
        return MXIntRestartMac(segments=segments, **window)
    return MXFP8RestartMac(variant=name.removeprefix("mxfp8_"), segments=segments, **window)


def run(dut, rows, backpressure, backend="pysim"):
    """Dot products back to back; ``rows`` holds ``(a, b, a_offsets, b_offsets)`` per dot
    product. Returns the output records."""
    a, b, a_offsets, b_offsets = (np.concatenate(column) for column in zip(*rows, strict=True))
    last = np.concatenate([np.arange(len(row[0])) == len(row[0]) - 1 for row in rows])
    fields = {
        "a": {"element": a, "offset": a_offsets},
        "b": {"element": b, "offset": b_offsets},
        "last": last.astype(np.int64),
    }
    results, _ = simulate_streams(
        dut,
        {"i": pack_payloads(dut.i.payload.shape(), fields).tolist()},
        {"o": len(rows)},
        backend=backend,
        backpressure=backpressure,
        name="mx_mac",
    )
    return unpack_payloads(dut.o.payload.shape(), results["o"])


def assert_matches_mx_mac(name, window, rows, out):
    """Each output record equals ``mx_mac`` of its dot product, field by field."""
    fields = FLAGS.get(name, FLOAT_FLAGS)
    for index, (a, b, a_offsets, b_offsets) in enumerate(rows):
        expected = mx_mac(
            a & 0xFF, b, MX_FORMATS[name], a_offsets=a_offsets, b_offsets=b_offsets, **window
        )
        for field in fields:
            assert out[field][index] == int(getattr(expected, field)), (index, field)


def single_pairs(a, b, a_offset, b_offset):
    """One dot product per pair: the MAC's result is the pair's term."""
    return [
        (a[i : i + 1], b[i : i + 1], np.array([a_offset]), np.array([b_offset]))
        for i in range(len(a))
    ]


def check_terms(name, window, a, b, a_offset, b_offset, backpressure=None, backend="pysim"):
    """Run single-pair dot products through the MAC; compare with ``mx_mac`` vectorised."""
    rows = single_pairs(a, b, a_offset, b_offset)
    out = run(build(name, window), rows, backpressure, backend)
    expected = mx_mac(
        (a & 0xFF)[:, None],
        b[:, None],
        MX_FORMATS[name],
        a_offsets=a_offset,
        b_offsets=b_offset,
        **window,
    )
    for field in FLAGS.get(name, FLOAT_FLAGS):
        np.testing.assert_array_equal(out[field], getattr(expected, field).astype(np.int64))
    return expected


def elements(name: str, codes):
    """Element values as the input layout takes them (MXINT8: signed)."""
    codes = np.asarray(codes, dtype=np.int64)
    return np.where(codes >= 128, codes - 256, codes) if name == "mxint8" else codes


#: Offset pairs: none, a sum at the MXINT8 rounding cut-off (15), the maximum (every term 0).
OFFSETS = [(0, 0), (5, 10), (MX_OFFSET_MAX, MX_OFFSET_MAX)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mxint8", "mxfp8_e4m3"])
@pytest.mark.parametrize(("a_offset", "b_offset"), OFFSETS)
def test_every_pair_matches_golden(name, a_offset, b_offset):
    # The compiled backend (the sampled tests below run on pysim): 65,536 dot products.
    codes_a, codes_b = (v.ravel() for v in np.meshgrid(np.arange(256), np.arange(256)))
    expected = check_terms(
        name,
        COST_WINDOW,
        elements(name, codes_a),
        codes_b,
        a_offset,
        b_offset,
        backend="verilator",
    )
    assert expected.acc.any() != (a_offset + b_offset == 2 * MX_OFFSET_MAX)


@pytest.mark.parametrize("name", ["mxint8", "mxfp8_e4m3", "mxfp8_e5m2"])
@pytest.mark.parametrize("window", [COST_WINDOW, NARROW_WINDOW])
def test_sampled_pairs_match_golden(name, window):
    rng = np.random.default_rng(len(name) + window["acc_bits"])
    a_offset, b_offset = (int(x) for x in rng.integers(0, 4, size=2))
    codes = rng.integers(0, 256, size=(2, 1200))
    codes[:, :2] = [[0x80, 0x40], [0x80, 0x40]]  # MXINT8: (-2)**2 overflows the 14-bit term
    expected = check_terms(
        name, window, elements(name, codes[0]), codes[1], a_offset, b_offset, backpressure=3
    )
    assert expected.acc.any()


@pytest.mark.parametrize("name", ["mxint8", "mxfp8_e4m3"])
@pytest.mark.parametrize(("segments", "backpressure"), [(1, None), (3, 5)])
def test_dot_products_with_restarts_and_backpressure(name, segments, backpressure):
    rng = np.random.default_rng(segments + len(name))
    window = dict(COST_WINDOW, acc_bits=16)  # narrow, so long sums wrap
    rows = []
    for length in rng.integers(1, 25, size=40):
        rows.append(
            (
                elements(name, rng.integers(0, 256, size=length)),
                rng.integers(0, 256, size=length),
                rng.integers(0, 4, size=length),
                rng.integers(0, 4, size=length),
            )
        )
    # Twenty products of 4 at offset 1 (8192 LSBs each) wrap the 16-bit accumulator.
    big = elements(name, np.full(20, 0x80 if name == "mxint8" else 0x40))
    rows[0] = (big, big & 0xFF, np.ones(20, dtype=np.int64), np.zeros(20, dtype=np.int64))
    dut = build(name, window, segments)
    out = run(dut, rows, backpressure)
    assert_matches_mx_mac(name, window, rows, out)
    assert out["overflow"].any() and not out["overflow"].all()


def test_layouts_and_parameters(elaborate):
    int8 = mx_operand_layout(MX_FORMATS["mxint8"])
    assert (int8.size, int8["element"].shape.signed, int8["offset"].shape.width) == (16, True, 8)
    fp8 = mx_operand_layout(MX_FORMATS["mxfp8_e4m3"])
    assert not fp8["element"].shape.signed
    mac = elaborate(MXIntRestartMac(segments=3, **COST_WINDOW))
    assert (mac.latency, mac.segments, mac.fmt) == (0 + 3 + 1, 3, MX_FORMATS["mxint8"])
    assert mac.accumulator == float_geometry(32, 12, term_bits=14, saturate=False)
    fp8_mac = elaborate(MXFP8RestartMac(**COST_WINDOW))
    assert (fp8_mac.latency, fp8_mac.fmt) == (1, MX_FORMATS["mxfp8_e4m3"])
    with pytest.raises(ValueError, match="segments 2 needs a wrapping accumulator"):
        MXIntRestartMac(acc_bits=20, acc_frac_bits=8, segments=2)
    with pytest.raises(ValueError, match="variant"):
        MXFP8RestartMac(variant="e3m4", **COST_WINDOW)
    with pytest.raises(ValueError, match="term_bits"):
        MXIntRestartMac(acc_bits=16, acc_frac_bits=8, term_bits=16)
    with pytest.raises(TypeError, match=r"^fmt must be a MXFormat"):
        mx_operand_layout("mxint8")
    with pytest.raises(TypeError, match=r"^config must be an AccumulatorConfig"):
        MXIntProductTerm(config=None)
    with pytest.raises(ValueError, match=r"^fmt.width must be in \[8, 8\], not 16$"):
        MXFloatProductTerm(fmt=FLOAT_FORMATS["bf16"], config=float_geometry(32, 12))
