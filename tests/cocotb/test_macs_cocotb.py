"""cocotb on Icarus and Verilator: the MACs and the baseline MACs against their golden models.

PALMac (raw, float32 and PAL readouts), PALTableMac, the restarting INT8/FP8 MACs and the
INT8/FP8/BF16 baseline MACs sit side by side in one top (``macs``, see
``conftest.StreamGroup``): one build per simulator. Dot products stream back to back (``first``
and/or ``last`` flags) with random stalls; the expected output records come from
:func:`palhdl.sim.golden.dot` / ``MacResult`` and :mod:`palhdl.sim.golden.baselines`, the
integer MACs' wrap flags from exact Python integers. Verilator also runs every pal8 operand
pair through the PAL MACs and every e4m3 pair through the FP8 MAC (slow).
"""

import numpy as np
import pytest

from palhdl.format import MacConfig, pal8
from palhdl.hdl.baselines import BF16Mac, FP8Mac, IntMac
from palhdl.hdl.mac import PALMac
from palhdl.hdl.pe import PALTableMac
from palhdl.hdl.restart import FP8RestartMac, IntRestartMac
from palhdl.sim import golden
from palhdl.sim.golden.baselines import FLOAT_FORMATS, float_mac, int_mac
from palhdl.sim.pysim import pack_payloads

TOP = "macs"
DEFAULT = MacConfig(pal8)
#: 16-bit accumulator, LSB 2**-6: small terms round, large ones clamp, sums saturate.
NARROW = MacConfig(pal8, acc_bits=16, acc_frac_bits=6)
#: The table MAC's wrapping configuration with a narrow term window.
TABLE = MacConfig(
    pal8, mantissa_bits=5, acc_bits=32, acc_frac_bits=12, term_bits=14, saturate=False
)
#: Float MAC windows.
FP8_WINDOW = {"acc_bits": 20, "acc_frac_bits": 8, "term_bits": 14, "saturate": True}
WRAPPING_FP8_WINDOW = {"acc_bits": 20, "acc_frac_bits": 8, "term_bits": 14, "saturate": False}
BF16_WINDOW = {"acc_bits": 32, "acc_frac_bits": 8, "term_bits": 24, "saturate": False}
#: The PAL MACs: instance name -> (config, readout).
PAL_MACS = {
    "mac": (DEFAULT, "raw"),
    "macn": (NARROW, "raw"),
    "macf": (NARROW, "float32"),
    "macp": (DEFAULT, "pal"),
    "tmac": (TABLE, "raw"),
}


def make_units():
    """Instance name -> unit: the whole ``macs`` top."""
    return {
        "mac": PALMac(config=DEFAULT, pipelined=False),
        "macn": PALMac(config=NARROW, pipelined=True),
        "macf": PALMac(config=NARROW, pipelined=True, readout="float32"),
        "macp": PALMac(config=DEFAULT, pipelined=False, readout="pal"),
        "tmac": PALTableMac(config=TABLE, segments=2),
        "imac": IntMac(width=8, acc_bits=16),
        "irmac": IntRestartMac(width=8, acc_bits=16, segments=2),
        "fmac": FP8Mac(variant="e4m3", **FP8_WINDOW),
        "frmac": FP8RestartMac(variant="e5m2", segments=3, **WRAPPING_FP8_WINDOW),
        "bmac": BF16Mac(**BF16_WINDOW),
    }


def split_rows(a, b, rng, max_k):
    """Cut operand streams into dot products of random lengths ``1 .. max_k``."""
    lengths = rng.integers(1, max_k + 1, len(a))
    cuts = np.cumsum(lengths)
    cuts = cuts[cuts < len(a)]
    return np.split(a, cuts), np.split(b, cuts)


def flags(rows):
    """``(first, last)`` flags of the concatenated rows."""
    lengths = np.array([len(row) for row in rows])
    ends = np.cumsum(lengths)
    first = np.zeros(ends[-1], dtype=np.int64)
    last = np.zeros(ends[-1], dtype=np.int64)
    first[ends - lengths] = 1
    last[ends - 1] = 1
    return first, last


def mac_case(case, units, name, a_rows, b_rows, expected, *, scale=None, backpressure=None):
    """Unit ``name`` on dot products ``a_rows[d] . b_rows[d]``; ``expected`` output fields."""
    unit = units[name]
    first, last = flags(a_rows)
    fields = {"a": np.concatenate(a_rows), "b": np.concatenate(b_rows), "last": last}
    if "first" in {field for field, _ in unit.i.payload.shape()}:
        fields["first"] = first
    if scale is not None:
        fields["scale"] = np.zeros(len(last), dtype=np.int64)
        fields["scale"][last == 1] = scale
    return case(
        name,
        {f"{name}__i": pack_payloads(unit.i.payload.shape(), fields)},
        {f"{name}__o": pack_payloads(unit.o.payload.shape(), expected)},
        backpressure=backpressure,
    )


def pal_mac_case(case, units, name, a_rows, b_rows, rng, *, backpressure=None):
    """A PAL MAC case; the golden dot products (and readouts at random scales)."""
    config, readout = PAL_MACS[name]
    results = [golden.dot(a, b, config) for a, b in zip(a_rows, b_rows, strict=True)]
    expected = {f: np.array([getattr(r, f) for r in results]) for f in ("acc", "nan", "overflow")}
    scale = None
    if readout != "raw":
        scale = rng.integers(-12, 13, len(a_rows))
        result = golden.MacResult(
            expected["acc"], expected["nan"], expected["overflow"], scale, config
        )
        expected["value"] = result.to_float32_bits() if readout == "float32" else result.to_pal()
    return mac_case(
        case, units, name, a_rows, b_rows, expected, scale=scale, backpressure=backpressure
    )


def int_cases(case, units, rng, rows):
    """IntMac (fixed-length rows) and IntRestartMac (random lengths), 16-bit accumulators."""
    a = rng.integers(-128, 128, (rows, 8))
    b = rng.integers(-128, 128, (rows, 8))
    a[:10], b[:10] = -128, -128  # 8 * 2**14 wraps 16 bits
    imac = mac_case(case, units, "imac", list(a), list(b), {"acc": int_mac(a, b, acc_bits=16)})
    a_rows, b_rows = split_rows(a.ravel(), b.ravel(), rng, 30)
    sums = [np.cumsum(x.astype(object) * y) for x, y in zip(a_rows, b_rows, strict=True)]
    expected = {
        "acc": [int(int_mac(x, y, acc_bits=16)) for x, y in zip(a_rows, b_rows, strict=True)],
        "nan": np.zeros(len(a_rows), dtype=np.int64),
        "overflow": [any(not -(1 << 15) <= s < 1 << 15 for s in row) for row in sums],
    }
    irmac = mac_case(case, units, "irmac", a_rows, b_rows, expected, backpressure=3)
    return [imac, irmac]


def float_case(case, units, name, a_rows, b_rows, fmt, window, *, backpressure=None):
    """A float MAC case: ``float_mac`` of each row."""
    results = [float_mac(a, b, fmt, **window) for a, b in zip(a_rows, b_rows, strict=True)]
    fields = ("acc", "nan", "pos_inf", "neg_inf", "overflow")
    expected = {f: np.array([int(getattr(r, f)) for r in results]) for f in fields}
    return mac_case(case, units, name, a_rows, b_rows, expected, backpressure=backpressure)


def random_cases(case, units, pairs, seed):
    """Every MAC of the top on about ``pairs`` random operand pairs."""
    rng = np.random.default_rng(seed)
    cases = []
    for index, name in enumerate(PAL_MACS):
        a, b = rng.integers(0, 256, (2, pairs))
        a_rows, b_rows = split_rows(a, b, rng, 24)
        cases.append(pal_mac_case(case, units, name, a_rows, b_rows, rng, backpressure=index))
    cases += int_cases(case, units, rng, pairs // 8)
    for name, variant, window in [
        ("fmac", "e4m3", FP8_WINDOW),
        ("frmac", "e5m2", WRAPPING_FP8_WINDOW),
        ("bmac", "bf16", BF16_WINDOW),
    ]:
        width = 16 if variant == "bf16" else 8
        a, b = rng.integers(0, 1 << width, (2, pairs))
        a_rows, b_rows = split_rows(a, b, rng, 20)
        fmt = FLOAT_FORMATS[variant]
        cases.append(float_case(case, units, name, a_rows, b_rows, fmt, window, backpressure=9))
    return cases


def test_macs_random(run_streams, case, simulator):
    """Every MAC, a few hundred random pairs in stalled dot products of 1 to 24 terms."""
    units = make_units()
    run_streams(simulator, TOP, units, random_cases(case, units, 400, 2))


@pytest.mark.slow
def test_macs_every_pal8_pair_verilator(run_streams, case):
    """All 65,536 pal8 pairs (random order, random row lengths) through the raw PAL MACs and
    every e4m3 pair through the FP8 MAC."""
    units = make_units()
    rng = np.random.default_rng(8)
    codes = np.arange(256)
    a, b = (x.ravel() for x in np.meshgrid(codes, codes, indexing="ij"))
    cases = []
    for name, max_k in [("mac", 64), ("macn", 12), ("tmac", 32)]:
        order = rng.permutation(a.size)
        a_rows, b_rows = split_rows(a[order], b[order], rng, max_k)
        cases.append(pal_mac_case(case, units, name, a_rows, b_rows, rng))
    a_rows, b_rows = split_rows(a, b, rng, 16)
    fmt = FLOAT_FORMATS["e4m3"]
    cases.append(float_case(case, units, "fmac", a_rows, b_rows, fmt, FP8_WINDOW))
    run_streams("verilator", TOP, units, cases)
