"""The host-link core on Verilator behind the real driver: VerilatedSerial and ``sim:`` boards.

The boards' default cores (``palhdl.boards.simulated.simulated_core``) are verilated with the
UART harness (compiled once, cached) and driven by the unmodified ``HostLink`` /
``SerialTransport``; every result is compared bit for bit with the golden model.
"""

import math

import numpy as np
import pytest

from palhdl.boards.hostlink.driver import DeviceError, HostLink, StaleResult
from palhdl.boards.hostlink.protocol import Command, ErrorCode, LedBit
from palhdl.boards.hostlink.verilated import HarnessError, VerilatedSerial
from palhdl.boards.platforms import get_board
from palhdl.boards.simulated import open_simulated_board, simulated_core
from palhdl.cli import main
from palhdl.format import pal8
from palhdl.sim import golden
from palhdl.sim.compiled import cache_root
from palhdl.sim.driver import decode_lanes

ICEBREAKER = get_board("icebreaker")
ULX3S = get_board("ulx3s-85f")


@pytest.fixture(scope="module")
def icebreaker_link():
    """HostLink to the iCEBreaker's default core (4 x 5 pal8, raw readout) on Verilator."""
    port = VerilatedSerial(simulated_core(ICEBREAKER), timeout=1.0)
    with HostLink(port) as link:
        yield link


def random_codes(rng, shape, *, special_rate=0.1):
    codes = rng.integers(0, 1 << pal8.width, size=shape)
    mask = rng.random(shape) < special_rate
    codes[mask] = rng.choice([pal8.zero_code, pal8.nan_code, pal8.max_code], size=mask.sum())
    return codes


def assert_float32_exact(result, a, b, config):
    expected = golden.matmul_values(a, b, config).to_float32_bits()
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result.view(np.uint32), expected)


def test_identify_is_the_boards_default_core(icebreaker_link):
    info = icebreaker_link.identify()
    assert (info.rows, info.cols) == (4, 5)
    assert (info.config, info.output, info.k_max) == (ICEBREAKER.default_config(), "raw", 64)
    assert not (info.loadable or info.block_scaled)


def test_float_matmul_is_bit_exact_with_golden(icebreaker_link):
    rng = np.random.default_rng(1)
    # 3 x 3 tiles, the last row and column of tiles partial.
    a = rng.standard_normal((9, 40)) * np.exp2(rng.integers(-6, 6, size=(9, 1)))
    b = rng.standard_normal((40, 11)) * np.exp2(rng.integers(-6, 6, size=(1, 11)))
    a[2, 5] = 0.0
    result, stats = icebreaker_link.matmul(a, b)
    assert_float32_exact(result, a, b, ICEBREAKER.default_config())
    assert (stats.tiles, stats.macs) == (9, 9 * 40 * 11)
    assert stats.cycles >= 9 * 40  # at least one beat per K step per tile


def test_code_matmul_with_specials_in_every_output(icebreaker_link):
    rng = np.random.default_rng(2)
    config = ICEBREAKER.default_config()
    a = random_codes(rng, (6, 64), special_rate=0.005)
    b = random_codes(rng, (64, 7), special_rate=0.005)
    expected = golden.matmul(a, b, config)
    assert expected.nan.any() and expected.overflow.any() and not expected.nan.all()
    raw, _ = icebreaker_link.matmul(a, b, output="raw")
    fields = {"acc": expected.acc, "nan": expected.nan, "overflow": expected.overflow, "scale": 0}
    for name, value in fields.items():
        np.testing.assert_array_equal(raw[name], value, err_msg=name)
    codes, _ = icebreaker_link.matmul(a, b, output="pal")
    np.testing.assert_array_equal(codes, expected.to_pal())
    values, _ = icebreaker_link.matmul(a, b)
    np.testing.assert_array_equal(values.view(np.uint32), expected.to_float32_bits())


def test_error_replies_and_status_leds(icebreaker_link, wire):
    port = icebreaker_link.port
    port.write(bytes([0xA5, Command.READ]))  # a packet cut short: a TIMEOUT error reply
    port.timeout = 1.0
    reply = wire.read_reply(port)  # (checks SYNC, the header CRC and the CRC)
    assert reply[1] == 0xFF and reply[5] == ErrorCode.TIMEOUT
    assert port.status & 1 << LedBit.ERROR
    codes = np.ones((4, 3), np.int64)
    icebreaker_link.load_a(codes)
    icebreaker_link.load_b(np.ones((2, 5), np.int64))
    with pytest.raises(DeviceError) as caught:
        icebreaker_link.run()
    assert caught.value.code == ErrorCode.K_MISMATCH
    assert port.status & 1 << LedBit.LOADED


def test_a_stale_result_is_flagged_and_kept(icebreaker_link):
    rng = np.random.default_rng(6)
    config = ICEBREAKER.default_config()
    a, b = random_codes(rng, (4, 3)), random_codes(rng, (3, 5))
    a_scales, b_scales = rng.integers(-20, 20, 4), rng.integers(-20, 20, 5)
    link = icebreaker_link
    link.load_a(a, a_scales)
    link.load_b(b, b_scales)
    link.run()
    fresh = link.read()
    link.load_a(random_codes(rng, (4, 3)))  # the result is no longer the buffers' product
    with pytest.raises(StaleResult, match="result is stale") as caught:
        link.read()
    stale = link.read(allow_stale=True)
    assert (caught.value.lanes == fresh).all() and (stale == fresh).all()
    expected = golden.matmul(a, b, config, a_scales=a_scales, b_scales=b_scales)
    fields = decode_lanes(link.info.lane_shape, stale)
    for name, value in (
        ("acc", expected.acc),
        ("nan", expected.nan),
        ("scale", expected.scale_exp),
    ):
        np.testing.assert_array_equal(fields[name], value, err_msg=name)
    link.run()  # a RUN clears the flag
    assert link.read().shape == (4, 5)


def test_timeout_is_in_simulated_seconds(icebreaker_link, wire):
    port = icebreaker_link.port
    before, timeout = port.cycles, port.timeout
    port.timeout = 1e-3
    try:
        assert port.read(1) == b""  # nothing asked: the core sends nothing
    finally:
        port.timeout = timeout
    assert port.cycles - before == math.ceil(1e-3 * port.core.clk_freq)
    port.timeout = 0
    try:
        assert port.read(1) == b""
    finally:
        port.timeout = timeout
    assert port.cycles - before == math.ceil(1e-3 * port.core.clk_freq)
    port.timeout = 1e300  # longer than the harness counts: for ever, and the bytes come
    try:
        port.write(wire.packet(Command.IDENTIFY))
        assert len(port.read(6 + 21)) == 27
    finally:
        port.timeout = timeout


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (math.inf, ValueError, "timeout must be a finite number of seconds >= 0 or None, not inf"),
        (math.nan, ValueError, "not nan"),
        (-1, ValueError, "not -1"),
        (True, TypeError, "timeout must be a number of seconds or None, not True"),
        ("1", TypeError, "not '1'"),
    ],
)
def test_port_timeout_is_validated(icebreaker_link, value, error, message):
    port = icebreaker_link.port
    before = port.timeout
    with pytest.raises(error, match=message):
        port.timeout = value
    assert port.timeout == before


def test_closed_port_and_cache_location():
    port = VerilatedSerial(simulated_core(ICEBREAKER), timeout=1.0)  # from the cache
    assert port.executable.parent.parent == cache_root()
    port.close()
    port.close()
    with pytest.raises(HarnessError, match="the port is closed"):
        port.write(b"\xa5")


def test_core_must_be_a_hostlink_core():
    with pytest.raises(TypeError, match="core must be a HostLinkCore"):
        VerilatedSerial("icebreaker")


def test_unknown_simulated_board_is_refused():
    with pytest.raises(ValueError, match="port 'sim:de0': board must be one of 'icebreaker'"):
        open_simulated_board("sim:de0")
    with pytest.raises(ValueError, match="port must be sim:<board>, not '/dev/ttyUSB1'"):
        open_simulated_board("/dev/ttyUSB1")


def run_cli(tmp_path, port, a, b, *options):
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "c.npy"
    argv = ["run", "--port", port, str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]
    status = main([*argv, "--out", str(out), *options])
    return status, (np.load(out) if status == 0 else None)


def test_palhdl_run_on_a_simulated_icebreaker(tmp_path, capsys):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((5, 70)), rng.standard_normal((70, 6))
    status, _ = run_cli(tmp_path, "sim:icebreaker", a, b)
    assert status == 2  # K = 70 > k_max 64, as on the board
    assert "exceeds the device's k_max 64" in capsys.readouterr().err
    a = a[:, :33]
    status, result = run_cli(tmp_path, "sim:icebreaker", a, b[:33])
    assert status == 0
    assert_float32_exact(result, a, b[:33], ICEBREAKER.default_config())
    err = capsys.readouterr().err
    assert "sim:icebreaker: 4 x 5 pal8 array, raw readout, k_max 64" in err
    assert "4 tiles" in err


def test_palhdl_run_on_an_unknown_simulated_board_is_one_line(tmp_path, capsys):
    ones = np.ones((2, 2))
    status, _ = run_cli(tmp_path, "sim:ulx3s", ones, ones)
    assert status == 2
    err = capsys.readouterr().err
    assert err == (
        "palhdl run: error: port 'sim:ulx3s': board must be one of 'icebreaker', "
        "'ulx3s-85f', not 'ulx3s'\n"
    )


@pytest.mark.slow
def test_palhdl_run_on_a_simulated_ulx3s(tmp_path, capsys):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((20, 64)), rng.standard_normal((64, 17))
    status, result = run_cli(tmp_path, "sim:ulx3s-85f", a, b)
    assert status == 0
    assert_float32_exact(result, a, b, ULX3S.default_config())
    assert "16 x 16 pal8 array, raw readout" in capsys.readouterr().err


@pytest.mark.slow
def test_layer_sized_matmul_on_the_ulx3s_core():
    """128 x 384 @ 384 x 112 (56 tiles of K = 384) on the 16 x 16 core, about 100 s."""
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((128, 384)), rng.standard_normal((384, 112))
    port = VerilatedSerial(simulated_core(ULX3S, k_max=384), timeout=1.0)
    with HostLink(port) as link:
        result, stats = link.matmul(a, b)
    assert_float32_exact(result, a, b, ULX3S.default_config())
    assert (stats.tiles, stats.macs) == (56, 128 * 384 * 112)
