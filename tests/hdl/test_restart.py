"""The restarting INT8 and FP8 baseline MACs against their golden models."""

import numpy as np
import pytest

from palhdl.hdl.restart import FP8RestartMac, IntRestartMac
from palhdl.sim.golden.baselines import FLOAT_FORMATS, float_mac, int_mac
from palhdl.sim.pysim import pack_payloads, simulate_streams, unpack_payloads


def run(dut, a_rows, b_rows, backpressure):
    """Dot products ``a_rows[d] . b_rows[d]`` back to back; the output records."""
    last = np.concatenate([np.eye(1, len(row), len(row) - 1, dtype=np.int64)[0] for row in a_rows])
    fields = {"a": np.concatenate(a_rows), "b": np.concatenate(b_rows), "last": last}
    results, _ = simulate_streams(
        dut,
        {"i": pack_payloads(dut.i.payload.shape(), fields).tolist()},
        {"o": len(a_rows)},
        backpressure=backpressure,
        name="restart_mac",
    )
    return unpack_payloads(dut.o.payload.shape(), results["o"])


@pytest.mark.parametrize(("segments", "backpressure"), [(1, None), (2, 3), (4, 5)])
def test_int8_dot_products_wrap_like_int_mac(segments, backpressure):
    rng = np.random.default_rng(segments)
    acc_bits = 16  # narrow, so long dot products of large products wrap
    lengths = rng.integers(1, 30, size=40)
    a_rows = [rng.integers(-128, 128, size=n) for n in lengths]
    b_rows = [rng.integers(-128, 128, size=n) for n in lengths]
    a_rows[0][:] = -128
    b_rows[0][:] = -128
    dut = IntRestartMac(width=8, acc_bits=acc_bits, segments=segments)
    out = run(dut, a_rows, b_rows, backpressure)
    expected = [
        int(int_mac(a, b, width=8, acc_bits=acc_bits)) for a, b in zip(a_rows, b_rows, strict=True)
    ]
    np.testing.assert_array_equal(out["acc"], expected)
    # The flag: some partial sum left the 16-bit range (exact integers, in order).
    wrapped = [
        any(not -(1 << 15) <= s < 1 << 15 for s in np.cumsum(a * b))
        for a, b in zip(a_rows, b_rows, strict=True)
    ]
    np.testing.assert_array_equal(out["overflow"].astype(bool), wrapped)
    assert any(wrapped) and not all(wrapped)
    assert not out["nan"].any()


@pytest.mark.parametrize("variant", ["e4m3", "e5m2"])
@pytest.mark.parametrize(("segments", "saturate", "backpressure"), [(1, True, 7), (3, False, None)])
def test_fp8_dot_products_match_float_mac(variant, segments, saturate, backpressure):
    rng = np.random.default_rng(len(variant) + segments)
    window = {"acc_bits": 20, "acc_frac_bits": 8, "term_bits": 14, "saturate": saturate}
    lengths = rng.integers(1, 20, size=40)
    a_rows = [rng.integers(0, 256, size=n) for n in lengths]
    b_rows = [rng.integers(0, 256, size=n) for n in lengths]
    dut = FP8RestartMac(variant=variant, segments=segments, **window)
    out = run(dut, a_rows, b_rows, backpressure)
    fmt = FLOAT_FORMATS[variant]
    for index, (a, b) in enumerate(zip(a_rows, b_rows, strict=True)):
        expected = float_mac(a, b, fmt, **window)
        for name in ("acc", "nan", "pos_inf", "neg_inf", "overflow"):
            assert out[name][index] == int(getattr(expected, name)), (index, name)


def test_parameters(elaborate):
    with pytest.raises(ValueError, match="segments 2 needs a wrapping accumulator"):
        FP8RestartMac(acc_bits=20, acc_frac_bits=8, segments=2)
    with pytest.raises(ValueError, match="acc_bits"):
        IntRestartMac(acc_bits=12)
    with pytest.raises(ValueError, match="variant"):
        FP8RestartMac(variant="e3m4", acc_bits=20, acc_frac_bits=8)
    assert elaborate(IntRestartMac(segments=2)).latency == 0 + 2 + 1
