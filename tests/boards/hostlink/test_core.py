"""HostLinkCore: constructor, export, and the real host driver on its simulated UART pins.

Packets and replies are built and checked with the independent wire format of ``conftest.py``.
Each simulation test runs one :class:`SimulatedSerial` (2 x 2 pal8 array unless stated, 4 clock
cycles per UART bit).
"""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment

from palhdl.boards.hostlink.core import HostLinkCore
from palhdl.boards.hostlink.driver import DeviceError, HostLink
from palhdl.boards.hostlink.info import DeviceInfo
from palhdl.boards.hostlink.protocol import ErrorCode
from palhdl.boards.hostlink.simserial import SimulatedSerial
from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.hdl.providers import PALArithmetic
from palhdl.sim import golden
from palhdl.sim.driver import decode_lanes

CLK = 1_000_000
BAUD = 250_000  # 4 clock cycles per bit
REPLY_TIMEOUT = 0.03  # simulated seconds: 30,000 cycles
TIMEOUT_CYCLES = 600

# --- constructor ----------------------------------------------------------------------------


def core(**overrides):
    params = dict(
        rows=2,
        cols=2,
        config=MacConfig(pal8),
        output="pal",
        clk_freq=CLK,
        baud=BAUD,
        k_max=8,
        timeout_cycles=TIMEOUT_CYCLES,
    )
    params.update(overrides)
    return HostLinkCore(**params)


def elaborated(dut):
    """``dut``, elaborated (as a board build would), so that it is not an unused elaboratable."""
    Fragment.get(dut, None)
    return dut


def test_core_properties():
    dut = elaborated(HostLinkCore(rows=5, cols=3, config=MacConfig(pal16), clk_freq=12_000_000))
    assert (dut.rows, dut.cols, dut.config, dut.output) == (5, 3, MacConfig(pal16), "pal")
    assert (dut.baud, dut.divisor, dut.k_max, dut.pipelined) == (115200, 104, 64, False)
    assert dut.timeout_cycles == 120_000  # 10 ms
    assert (dut.word_bytes, dut.lane_bytes) == (2, 2)
    raw = elaborated(core(output="raw"))  # 51-bit accumulator, nan, overflow, 16-bit scale: 69 bits
    assert raw.lane_bytes == 9
    assert elaborated(core(output="float32")).lane_bytes == 4
    assert elaborated(core(config=MacConfig(PALFormat(int_bits=5, frac_bits=6)))).word_bytes == 2
    plain = elaborated(core())
    assert (plain.loadable, plain.block_scaled, plain.operand_width) == (False, False, 8)
    assert (plain.table_entries, plain.table_width) == (0, 0)
    # pal8 with the exact 51-bit window: 51-bit table entries (50 + overflow); offsets 8 bits.
    both = elaborated(core(loadable=True, block_scaled=True, term="signed_table"))
    assert (both.loadable, both.block_scaled, both.operand_width, both.word_bytes) == (
        True,
        True,
        16,
        2,
    )
    assert (both.table_entries, both.table_width) == (512, 52)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"rows": 0}, ValueError, r"rows must be an integer in \[1, 64\], not 0"),
        ({"cols": 65}, ValueError, r"cols must be an integer in \[1, 64\], not 65"),
        ({"rows": True}, ValueError, "rows must be an integer"),
        ({"config": pal8}, TypeError, "config must be a MacConfig"),
        (
            {"output": "int8"},
            ValueError,
            "output must be one of 'raw', 'float32', 'pal', not 'int8'",
        ),
        ({"clk_freq": 1e6}, TypeError, "clk_freq must be an integer"),
        ({"baud": 0}, ValueError, r"baud must be in \[1, "),
        ({"baud": 400_000}, ValueError, "at least 4 clock cycles"),
        ({"clk_freq": 48_000_000, "baud": 1}, ValueError, "too slow for clk_freq 48000000"),
        ({"baud": 230_400}, ValueError, "not reachable from clk_freq 1000000"),
        ({"k_max": 0}, ValueError, r"k_max must be in \[1, 4096\], not 0"),
        ({"timeout_cycles": 79}, ValueError, r"timeout_cycles must be in \[80, "),
        ({"pipelined": 1}, TypeError, "pipelined must be a bool"),
        ({"loadable": 1}, TypeError, "loadable must be a bool"),
        ({"block_scaled": 1}, TypeError, "block_scaled must be a bool"),
        (
            {"config": MacConfig(pal16), "loadable": True},
            ValueError,
            "loadable: the pal16 product term is computed in logic",
        ),
    ],
)
def test_core_rejects_bad_parameters(overrides, error, message):
    with pytest.raises(error, match=message):
        core(**overrides)


def test_core_rejects_packets_too_long_for_the_length_field():
    with pytest.raises(ValueError, match="k_max 4096 is too large for a 64 x 64 array"):
        core(rows=64, cols=64, config=MacConfig(pal16), k_max=4096)
    # Block offsets double a pal8 word: 2 + 64 * 511 * 2 + 128 bytes is too long.
    shapes = dict(rows=64, cols=64, config=MacConfig(pal8), clk_freq=CLK, baud=BAUD, k_max=511)
    assert HostLinkCore.check_parameters(**shapes)["k_max"] == 511
    with pytest.raises(ValueError, match=r"k_max 511 is too large .* of 16-bit operands"):
        core(**shapes, block_scaled=True)


def test_core_exports_to_verilog():
    text = verilog.convert(core(rows=1, cols=1, k_max=4), name="hostlink")
    assert "module hostlink" in text
    for port in ("rx", "tx", "status"):
        assert f"{port}" in text


# --- simulation: the driver on the pins of the simulated core -------------------------------


@pytest.fixture
def sim_link():
    """``sim_link(**overrides)``: a simulated port on ``core(**overrides)`` and a HostLink on it;
    the ports are closed (their waveforms finished) after the test.
    """
    ports = []

    def make(**overrides):
        port = SimulatedSerial(core(**overrides), timeout=REPLY_TIMEOUT)
        ports.append(port)
        return port, HostLink(port)

    yield make
    for port in ports:
        port.close()


def random_codes(rng, shape, fmt, *, special_rate=0.1):
    codes = rng.integers(0, 1 << fmt.width, size=shape)
    mask = rng.random(shape) < special_rate
    codes[mask] = rng.choice([fmt.zero_code, fmt.nan_code, fmt.max_code], size=mask.sum())
    return codes


def golden_tile(config, a, b, sa, sb, mode):
    return PALArithmetic(config=config).golden_matmul(a, b, a_scales=sa, b_scales=sb, mode=mode)


def test_identify_and_status_replies(wire, sim_link):
    port, link = sim_link()
    port.write(wire.packet(0x01))
    expected = (
        b"PALH"  # magic, version 4, rows 2, cols 2, int_bits 4, frac_bits 3
        + bytes([4, 2, 2, 4, 3, 6, 51])  # mantissa_bits 6, acc_bits 51
        + (22).to_bytes(2, "little")  # acc_frac_bits 22
        + bytes([2])  # output "pal"
        + (8).to_bytes(2, "little")  # k_max 8
        + bytes([50, 0])  # term_bits 50 (acc_bits - 1), flags 0 (saturating)
        + bytes([0, 0, 0])  # no loadable table
    )
    assert wire.read_reply(port) == wire.packet(0x81, expected)
    assert link.identify() == DeviceInfo(
        version=4, rows=2, cols=2, config=MacConfig(pal8), output="pal", k_max=8
    )
    port.write(wire.packet(0x02))
    # Nothing loaded; the table (not loadable) is valid and is the bitstream's 4.3.
    assert wire.read_reply(port) == wire.packet(0x82, bytes([0x80, 0, 0, 0, 0, 0, 3]))
    status = link.status()
    assert not (status.a_valid or status.b_valid or status.result_valid)
    assert status.last_error is None and status.a_k == status.b_k == 0


# The cheap board configuration: W = 5, a 16-bit wrapping accumulator, a 10-bit term window.
CHEAP = MacConfig(pal8, mantissa_bits=5, acc_bits=16, acc_frac_bits=6, term_bits=10, saturate=False)


def test_identify_round_trip_of_a_wrapping_raw_device(wire, sim_link):
    port, link = sim_link(rows=2, cols=3, config=CHEAP, output="raw", k_max=5)
    port.write(wire.packet(0x01))
    expected = wire.identify(
        rows=2,
        cols=3,
        fmt=pal8,
        mantissa_bits=5,
        acc_bits=16,
        acc_frac_bits=6,
        mode=0,
        k_max=5,
        term_bits=10,
        flags=1,
    )
    assert wire.read_reply(port) == wire.packet(0x81, expected)
    info = link.identify()
    assert info == DeviceInfo(version=4, rows=2, cols=3, config=CHEAP, output="raw", k_max=5)
    assert info.config == port.core.config
    assert (info.config.term_bits, info.config.saturate) == (10, False)
    # acc 16 + nan + overflow + scale 16 = 34 bits
    assert info.lane_bytes == port.core.lane_bytes == 5


@pytest.mark.slow
def test_raw_device_gives_float32_and_pal_converted_on_the_host(sim_link):
    rng = np.random.default_rng(12)
    # Codes with specials: many products leave the 10-bit term window or wrap the sum.
    a = random_codes(rng, (3, 5), pal8)
    b = random_codes(rng, (5, 4), pal8)
    _, link = sim_link(config=CHEAP, output="raw", k_max=5)
    result, stats = link.matmul(a, b)  # default output of a raw device: float32
    expected = golden.matmul(a, b, CHEAP)
    assert expected.overflow.any() and expected.nan.any() and not expected.nan.all()
    assert result.dtype == np.float32 and stats.tiles == 4
    np.testing.assert_array_equal(result.view(np.uint32), expected.to_float32_bits())
    result, _ = link.matmul(a, b, output="pal")
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, expected.to_pal())
    raw, _ = link.matmul(a, b, output="raw")
    fields = {"acc": expected.acc, "nan": expected.nan, "overflow": expected.overflow, "scale": 0}
    for name, value in fields.items():
        np.testing.assert_array_equal(raw[name], value, err_msg=name)

    # Floats: adaptive scales (travelling in the raw lanes) for the narrow window.
    x = rng.standard_normal((3, 5)) * np.exp2(rng.integers(-6, 6, size=(3, 1)))
    y = rng.standard_normal((5, 4)) * np.exp2(rng.integers(-6, 6, size=(1, 4)))
    target = CHEAP.scale_target(5)
    a_codes, a_scales = golden.quantize(x, pal8, per="row", target=target)
    b_codes, b_scales = golden.quantize(y, pal8, per="col", target=target)
    expected = golden.matmul(a_codes, b_codes, CHEAP, a_scales=a_scales, b_scales=b_scales)
    assert not expected.overflow.any()
    result, _ = link.matmul(x, y)
    np.testing.assert_array_equal(result.view(np.uint32), expected.to_float32_bits())
    result, _ = link.matmul(x, y, output="pal")
    np.testing.assert_array_equal(result, expected.to_pal())


def test_readouts_that_cannot_give_the_output_are_refused(sim_link):
    _, link = sim_link()  # pal readout
    codes = np.ones((2, 2), np.int64)
    with pytest.raises(ValueError, match="readout 'pal' cannot give output 'float32'"):
        link.matmul(codes, codes, output="float32")
    with pytest.raises(ValueError, match="readout 'pal' cannot give output 'raw'"):
        link.matmul(codes, codes, output="raw")
    with pytest.raises(
        ValueError, match="output must be one of 'raw', 'float32', 'pal', not 'int8'"
    ):
        link.matmul(codes, codes, output="int8")


def test_matmul_float_inputs_through_the_tiling_driver(sim_link):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 6)) * np.exp2(rng.integers(-8, 8, size=(3, 1)))
    b = rng.standard_normal((6, 3)) * np.exp2(rng.integers(-8, 8, size=(1, 3)))
    a[1, 2] = 0.0
    _, link = sim_link()
    result, stats = link.matmul(a, b)
    expected = golden.matmul_values(a, b, MacConfig(pal8)).to_pal()
    np.testing.assert_array_equal(result, expected)
    assert result.dtype == np.uint8
    assert (stats.tiles, stats.macs, stats.peak_macs_per_cycle) == (4, 3 * 6 * 3, 4)
    assert stats.cycles >= 4 * 6  # at least one beat per K step per tile


def test_raw_readout_with_specials_scales_and_status_flags(sim_link):
    rng = np.random.default_rng(3)
    config = MacConfig(pal8)
    a = random_codes(rng, (2, 7), pal8)
    b = random_codes(rng, (7, 2), pal8)
    a[0, 3] = pal8.nan_code
    sa, sb = rng.integers(-20, 20, size=2), rng.integers(-20, 20, size=2)
    _, link = sim_link(output="raw")
    link.load_a(a, sa)
    link.load_b(b, sb)
    cycles = link.run()
    # Two cycles per K step, then each of the 2 result rows (2 lanes of 9 bytes) goes into the
    # byte-wide result memory at a byte per cycle.
    assert 2 * 7 + 2 * 18 <= cycles <= 2 * 7 + 2 * 18 + 10
    raw = link.read()
    expected = golden_tile(config, a, b, sa, sb, "raw")
    fields = decode_lanes(link.info.lane_shape, raw)
    assert set(fields) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(fields[name], expected[name], err_msg=name)
    assert expected["nan"][0].all() and not expected["nan"][1].all()
    status = link.status()
    assert (status.a_valid, status.b_valid, status.result_valid) == (True, True, True)
    assert status.nan == bool(expected["nan"].any())
    assert status.saturated == bool(expected["overflow"].any())
    assert (status.a_k, status.b_k) == (7, 7)


def test_two_byte_words_and_float32_lanes_at_k_max(sim_link):
    config = MacConfig(PALFormat(int_bits=5, frac_bits=6))
    fmt = config.fmt
    rng = np.random.default_rng(4)
    k = 4

    # Magnitudes within a few octaves of 1 and both signs, so products neither flush nor clamp.
    def codes(shape):
        mag = fmt.bias + rng.integers(-3 * fmt.units, 3 * fmt.units, size=shape)
        return mag | (rng.integers(0, 2, size=shape) << fmt.mag_bits)

    a, b = codes((1, k)), codes((k, 2))
    sa, sb = np.array([3]), np.array([-1, 2])
    _, link = sim_link(rows=1, cols=2, config=config, output="float32", k_max=k)
    link.load_a(a, sa)
    link.load_b(b, sb)
    link.run()
    result = link.read().astype(np.int64)
    np.testing.assert_array_equal(result, golden_tile(config, a, b, sa, sb, "float32"))


def test_bad_checksum_leaves_the_buffer_invalid(wire, sim_link):
    rng = np.random.default_rng(5)
    config = MacConfig(pal8)
    a1, a2 = random_codes(rng, (2, 3), pal8), random_codes(rng, (2, 3), pal8)
    b = random_codes(rng, (3, 2), pal8)
    zeros = np.zeros(2, np.int64)
    port, link = sim_link()
    assert port.status == 0  # LEDs: busy 1, error 2, loaded 4, result 8
    link.load_a(a1)
    link.load_b(b)
    assert port.status == 4
    corrupted = bytearray(wire.load_packet(0x10, a2, zeros))
    corrupted[8] ^= 0x04  # a payload word: the memory gets partly written with bad data
    port.write(corrupted)
    assert wire.read_reply(port) == wire.error_reply(1, 0x10)  # CHECKSUM
    assert port.status == 2
    with pytest.raises(DeviceError, match="RUN: NOT_LOADED") as info:
        link.run()
    assert info.value.code == ErrorCode.NOT_LOADED
    status = link.status()
    assert (status.a_valid, status.b_valid, status.last_error) == (
        False,
        True,
        ErrorCode.NOT_LOADED,
    )
    link.load_a(a2)
    link.run()
    np.testing.assert_array_equal(link.read(), golden_tile(config, a2, b, zeros, zeros, "pal"))
    assert port.status == 4 | 8


def test_truncated_packet_times_out_and_invalidates(wire, sim_link):
    rng = np.random.default_rng(6)
    a = random_codes(rng, (2, 2), pal8)
    b = random_codes(rng, (2, 2), pal8)
    port, link = sim_link()
    link.load_a(a)
    link.load_b(b)
    whole = wire.load_packet(0x11, b, [0, 0])
    port.write(whole[:6])
    start = port.cycles
    assert wire.read_reply(port) == wire.error_reply(2, 0x11)  # TIMEOUT, while receiving LOAD_B
    elapsed = port.cycles - start
    character = 10 * 4
    reply_time = 8 * character
    assert 6 * character + TIMEOUT_CYCLES + reply_time <= elapsed
    assert elapsed <= 8 * character + TIMEOUT_CYCLES + reply_time
    port.write(b"\xa5")  # SYNC alone: the command byte never comes
    assert wire.read_reply(port) == wire.error_reply(2, 0x00)
    with pytest.raises(DeviceError, match="NOT_LOADED"):
        link.run()
    assert link.identify().rows == 2


def test_bad_crc_unknown_commands_and_bad_lengths_back_to_back(wire, sim_link):
    port, link = sim_link()
    k_too_long = wire.load_packet(0x10, np.zeros((2, 2), np.int64), [0, 0])
    k_too_long = wire.packet(0x10, b"\x03\x00" + k_too_long[6:-1])  # says K = 3, carries K = 2
    bad_crc = bytearray(wire.packet(0x20))
    bad_crc[-1] ^= 0x80
    port.write(
        bytes(bad_crc)
        + wire.packet(0x55, b"xyz")
        + wire.packet(0x02, b"\x00")  # STATUS takes no payload
        + wire.packet(0x11, b"\x01\x00")  # K but no words nor scales
        + k_too_long
    )
    assert wire.read_reply(port) == wire.error_reply(1, 0x20)  # CHECKSUM
    assert wire.read_reply(port) == wire.error_reply(3, 0x55)  # UNKNOWN_COMMAND
    assert wire.read_reply(port) == wire.error_reply(4, 0x02)  # LENGTH
    assert wire.read_reply(port) == wire.error_reply(4, 0x11)
    assert wire.read_reply(port) == wire.error_reply(4, 0x10)
    assert link.identify().k_max == 8


def test_oversized_and_empty_tiles_are_rejected(wire, sim_link):
    rng = np.random.default_rng(7)
    config = MacConfig(pal8)
    port, link = sim_link()
    port.write(wire.load_packet(0x10, np.ones((2, 9), np.int64), [0, 0]))  # K = 9 > k_max = 8
    assert wire.read_reply(port) == wire.error_reply(5, 0x10)  # K_RANGE
    port.write(wire.load_packet(0x11, np.ones((1, 2), np.int64), [0, 0], k=0))  # K = 0
    assert wire.read_reply(port) == wire.error_reply(5, 0x11)
    with pytest.raises(ValueError, match="exceeds the device's k_max 8"):
        link.matmul(np.ones((2, 9), np.int64), np.ones((9, 2), np.int64))
    a = random_codes(rng, (2, 8), pal8)
    b = random_codes(rng, (8, 2), pal8)
    result, _ = link.matmul(a, b)
    zeros = np.zeros(2, np.int64)
    np.testing.assert_array_equal(result, golden_tile(config, a, b, zeros, zeros, "pal"))


def test_pipelined_session_in_one_write(wire, sim_link):
    rng = np.random.default_rng(8)
    config = MacConfig(pal8)
    a = random_codes(rng, (2, 4), pal8)
    b = random_codes(rng, (4, 2), pal8)
    sa, sb = np.array([1, -2]), np.array([0, 3])
    port, _ = sim_link()
    port.write(
        wire.packet(0x21)  # READ before any RUN
        + wire.packet(0x20)  # RUN before any LOAD
        + wire.load_packet(0x10, a, sa)
        + wire.load_packet(0x11, b[:3], sb)  # K = 3 while A has K = 4
        + wire.packet(0x20)
        + wire.load_packet(0x11, b, sb)
        + wire.packet(0x20)
        + wire.packet(0x02)  # STATUS while the READ below is already arriving
        + wire.packet(0x21)
        + wire.packet(0x02)
    )
    assert wire.read_reply(port) == wire.error_reply(8, 0x21)  # NO_RESULT
    assert wire.read_reply(port) == wire.error_reply(6, 0x20)  # NOT_LOADED
    assert wire.read_reply(port) == wire.packet(0x90)
    assert wire.read_reply(port) == wire.packet(0x91)
    assert wire.read_reply(port) == wire.error_reply(7, 0x20)  # K_MISMATCH
    assert wire.read_reply(port) == wire.packet(0x91)
    run = wire.read_reply(port)
    assert run[:4] == b"\xa5\xa0\x02\x00"
    expected = golden_tile(config, a, b, sa, sb, "pal")
    nan = int((expected == pal8.nan_code).any()) << 4
    saturated = int(((expected & pal8.mag_mask) == pal8.max_code).any()) << 5
    valid = 0x02 | 0x04 | 0x08
    k_bytes = bytes([4, 0, 4, 0, 3])  # the K of A and B, the table's split 4.3
    valid |= 0x80  # the table too
    status = bytes([0x01 | valid | nan | saturated, 7])  # BUSY: the READ is already queued
    assert wire.read_reply(port) == wire.packet(0x82, status + k_bytes)
    # READ: the flags byte (not stale: no LOAD since the RUN), then the lanes.
    read = b"\x00" + expected.astype(np.uint8).tobytes()
    assert wire.read_reply(port) == wire.packet(0xA1, read)
    assert wire.read_reply(port) == wire.packet(0x82, bytes([valid | nan | saturated, 0]) + k_bytes)


def test_break_inside_a_packet_is_a_line_error(wire, sim_link):
    port, link = sim_link()
    # A break is received as one character 0x00 with a framing error. As the payload byte
    # of a one-byte STATUS (LENGTH otherwise) it is counted and the packet is answered LINE,
    # which comes before LENGTH.
    status = wire.packet(0x02, b"\x00")
    port.write(status[:5])
    port.send_break(0)  # one character time
    port.write(status[6:])
    assert wire.read_reply(port) == wire.error_reply(9, 0x02)  # LINE
    first, second = link.status(), link.status()
    assert (first.line_error, first.last_error) == (True, ErrorCode.LINE)
    assert (second.line_error, second.last_error) == (False, None)
    # Inside the header it shifts the bytes after it: the header checksum fails (HEADER comes
    # before LINE) and the rest is discarded until the line is quiet.
    status = wire.packet(0x02)
    port.write(status[:2])
    port.send_break(0)
    port.write(status[2:])
    assert wire.read_reply(port) == wire.error_reply(12, 0x02)  # HEADER
    assert link.status().last_error == ErrorCode.HEADER


def test_receive_overrun_is_survived(wire, sim_link):
    # Each IDENTIFY reply is 21 bytes longer than its request: the receive FIFO (64 bytes)
    # overflows while the device is still answering. The packets stored whole are answered,
    # then everything up to the quiet line after the overrun gets one LINE reply (the packet
    # in progress at the drop marker, or 0 between packets), and the device keeps going.
    port, link = sim_link()
    requests = 22
    port.write(wire.packet(0x01) * requests)
    identify = wire.read_reply(port)
    port.timeout = 0.003  # a few timeouts' worth: then the device has gone quiet
    replies = [identify]
    while True:
        head = port.read(1)
        if not head:
            break
        rest = port.read(4)
        reply = head + rest + port.read(int.from_bytes(rest[1:3], "little") + 1)
        assert wire.crc8(reply[1:4]) == reply[4] and wire.crc8(reply[1:-1]) == reply[-1]
        replies.append(reply)
    assert replies[-1] in (wire.error_reply(9, 0x01), wire.error_reply(9, 0x00))  # LINE
    assert replies[:-1] == [identify] * (len(replies) - 1)
    assert 1 < len(replies) - 1 < requests
    port.timeout = REPLY_TIMEOUT
    assert link.status().line_error
    assert link.identify().cols == 2
