# amaranth: UnusedElaboratable=no
"""The host link: HostLinkCore driven bit by bit on its UART pins by the real host driver.

Packets and replies are built and checked here with this file's own CRC-8 (polynomial long
division) and framing, independent of :func:`palhdl.boards.hostlink.core.crc8` and ``frame``.
Sections: protocol helpers, constructor and driver tests without simulation, then one
simulation per test (2 x 2 pal8 array unless stated, 4 clock cycles per UART bit).
"""

import numpy as np
import pytest
from amaranth.back import verilog

from palhdl.boards.hostlink.core import (
    Command,
    ErrorCode,
    HostLinkCore,
    SimulatedSerial,
    crc8,
    frame,
)
from palhdl.boards.hostlink.driver import (
    ChecksumError,
    DeviceError,
    DeviceInfo,
    HostLink,
    LinkTimeout,
    ProtocolError,
    SerialTransport,
)
from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.hdl.providers import PALArithmetic
from palhdl.sim import golden
from palhdl.sim.driver import decode_lanes

CLK = 1_000_000
BAUD = 250_000  # 4 clock cycles per bit
REPLY_TIMEOUT = 0.03  # simulated seconds: 30,000 cycles
TIMEOUT_CYCLES = 600

# --- protocol helpers (independent of the code under test) ----------------------------------


def crc8_reference(data: bytes) -> int:
    """Remainder of ``data(x) * x**8`` divided by ``x**8 + x**2 + x + 1`` over GF(2)."""
    value = int.from_bytes(data, "big") << 8
    for bit in range(value.bit_length() - 1, 7, -1):
        if value >> bit & 1:
            value ^= 0x107 << (bit - 8)
    return value


def packet(code: int, payload: bytes = b"") -> bytes:
    body = bytes([code]) + len(payload).to_bytes(2, "little") + payload
    return b"\xa5" + body + bytes([crc8_reference(body)])


def error_reply(code: int, command: int) -> bytes:
    return packet(0xFF, bytes([code, command]))


def load_packet(command: int, codes, scales, word_bytes: int = 1, k=None) -> bytes:
    """LOAD_A/LOAD_B: K, words in C order (little endian), int16 scales."""
    codes = np.asarray(codes)
    if k is None:
        k = codes.shape[1] if command == 0x10 else codes.shape[0]
    payload = k.to_bytes(2, "little")
    for code in codes.ravel():
        payload += int(code).to_bytes(word_bytes, "little")
    for scale in scales:
        payload += int(scale).to_bytes(2, "little", signed=True)
    return packet(command, payload)


def read_reply(port) -> bytes:
    head = port.read(4)
    assert len(head) == 4 and head[0] == 0xA5, head
    rest = port.read(int.from_bytes(head[2:4], "little") + 1)
    reply = head + rest
    assert crc8_reference(reply[1:-1]) == reply[-1]
    return reply


def test_crc8_is_crc8_smbus():
    assert crc8(b"123456789") == 0xF4  # the published check value of CRC-8/SMBUS
    rng = np.random.default_rng(0)
    for size in (0, 1, 2, 5, 64, 300):
        data = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        assert crc8(data) == crc8_reference(data)
        assert frame(0x21, data) == packet(0x21, data)


def test_frame_rejects_bad_arguments():
    with pytest.raises(ValueError, match="code must be a byte"):
        frame(256)
    with pytest.raises(ValueError, match="payload must be at most 65535 bytes"):
        frame(1, bytes(65536))


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


def test_core_properties():
    dut = HostLinkCore(rows=5, cols=3, config=MacConfig(pal16), clk_freq=12_000_000)
    assert (dut.rows, dut.cols, dut.config, dut.output) == (5, 3, MacConfig(pal16), "pal")
    assert (dut.baud, dut.divisor, dut.k_max, dut.pipelined) == (115200, 104, 64, False)
    assert dut.timeout_cycles == 120_000  # 10 ms
    assert (dut.word_bytes, dut.lane_bytes) == (2, 2)
    raw = core(output="raw")  # 51-bit accumulator, nan, overflow, 16-bit scale: 69 bits
    assert raw.lane_bytes == 9
    assert core(output="float32").lane_bytes == 4
    assert core(config=MacConfig(PALFormat(int_bits=5, frac_bits=6))).word_bytes == 2


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"rows": 0}, ValueError, r"rows must be an integer in \[1, 64\], not 0"),
        ({"cols": 65}, ValueError, r"cols must be an integer in \[1, 64\], not 65"),
        ({"rows": True}, ValueError, "rows must be an integer"),
        ({"config": pal8}, TypeError, "config must be a MacConfig"),
        ({"output": "int8"}, ValueError, r"output must be one of \('raw', 'float32', 'pal'\)"),
        ({"clk_freq": 1e6}, TypeError, "clk_freq must be an integer"),
        ({"baud": 0}, ValueError, r"baud must be in \[1, "),
        ({"baud": 400_000}, ValueError, "at least 4 clock cycles"),
        ({"baud": 230_400}, ValueError, "not reachable from clk_freq 1000000"),
        ({"k_max": 0}, ValueError, r"k_max must be in \[1, 4096\], not 0"),
        ({"timeout_cycles": 79}, ValueError, r"timeout_cycles must be in \[80, "),
        ({"pipelined": 1}, TypeError, "pipelined must be a bool"),
    ],
)
def test_core_rejects_bad_parameters(overrides, error, message):
    with pytest.raises(error, match=message):
        core(**overrides)


def test_core_rejects_packets_too_long_for_the_length_field():
    with pytest.raises(ValueError, match="k_max 4096 is too large for a 64 x 64 array"):
        core(rows=64, cols=64, config=MacConfig(pal16), k_max=4096)


def test_core_exports_to_verilog():
    text = verilog.convert(core(rows=1, cols=1, k_max=4), name="hostlink")
    assert "module hostlink" in text
    for port in ("rx", "tx", "status"):
        assert f"{port}" in text


# --- host driver against scripted ports (no simulation) -------------------------------------


def identify_bytes(
    *,
    version=2,
    rows,
    cols,
    fmt,
    mantissa_bits,
    acc_bits,
    acc_frac_bits,
    mode,
    k_max,
    term_bits,
    flags,
):
    """An IDENTIFY payload laid out as the byte table of docs/host-link.md says."""
    return (
        b"PALH"
        + bytes([version, rows, cols, fmt.int_bits, fmt.frac_bits, mantissa_bits, acc_bits])
        + acc_frac_bits.to_bytes(2, "little", signed=True)
        + bytes([mode])
        + k_max.to_bytes(2, "little")
        + bytes([term_bits, flags])
    )


# pal16, W = 10, a 48-bit wrapping accumulator with 24 fraction bits and a 20-bit term window.
IDENTIFY_PAL16 = identify_bytes(
    rows=2,
    cols=2,
    fmt=pal16,
    mantissa_bits=10,
    acc_bits=48,
    acc_frac_bits=24,
    mode=2,
    k_max=4,
    term_bits=20,
    flags=1,
)
CONFIG_PAL16 = MacConfig(
    pal16, mantissa_bits=10, acc_bits=48, acc_frac_bits=24, term_bits=20, saturate=False
)


class ScriptedPort:
    """Returns canned reply bytes; records what the driver writes."""

    def __init__(self, *replies: bytes):
        self.timeout = 0.5
        self.pending = b"".join(replies)
        self.written = []

    def write(self, data):
        self.written.append(bytes(data))
        return len(data)

    def read(self, size=1):
        data, self.pending = self.pending[:size], self.pending[size:]
        return data


def test_driver_decodes_identify_and_encodes_loads():
    port = ScriptedPort(packet(0x81, IDENTIFY_PAL16), packet(0x90), packet(0x91))
    link = HostLink(port)
    assert link.info == DeviceInfo(
        version=2, rows=2, cols=2, config=CONFIG_PAL16, output="pal", k_max=4
    )
    link.load_a(np.array([[0x1234], [0xABCD]]), [-2, 300])
    link.load_b(np.array([[0x0001, 0xFFFF]]), [0, -32768])
    assert port.written == [
        packet(0x01),
        packet(0x10, bytes([1, 0, 0x34, 0x12, 0xCD, 0xAB, 0xFE, 0xFF, 0x2C, 0x01])),
        packet(0x11, bytes([1, 0, 0x01, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x80])),
    ]


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (b"", LinkTimeout, "no complete reply to IDENTIFY: got 0 of 4 bytes"),
        (packet(0x81, IDENTIFY_PAL16)[:10], LinkTimeout, "got 6 of 19 bytes"),
        (b"\x5a" + packet(0x81, IDENTIFY_PAL16)[1:], ProtocolError, "not SYNC 0xa5"),
        (packet(0x82, IDENTIFY_PAL16), ProtocolError, "has code 0x82, expected 0x81"),
        (packet(0x81, IDENTIFY_PAL16[:17]), ProtocolError, "has 17 payload bytes, expected 18"),
        (packet(0x81, IDENTIFY_PAL16 + b"\x00"), ProtocolError, "has 19 payload bytes"),
        (packet(0x81, IDENTIFY_PAL16[:4]), ProtocolError, "has 4 payload bytes, expected 18"),
        (packet(0x81, b"PALX" + IDENTIFY_PAL16[4:]), ProtocolError, "magic"),
        # A version-1 device: 16 bytes, no term_bits nor flags.
        (packet(0x81, b"PALH\x01" + IDENTIFY_PAL16[5:16]), ProtocolError, "version 1, not 2"),
        (packet(0x81, IDENTIFY_PAL16[:17] + b"\x03"), ProtocolError, r"unknown bits 0x02"),
        (packet(0x81, IDENTIFY_PAL16[:17] + b"\x80"), ProtocolError, r"flags 0x80 have unknown"),
        (
            packet(0x81, IDENTIFY_PAL16[:13] + b"\x03" + IDENTIFY_PAL16[14:]),
            ProtocolError,
            "readout code 3",
        ),
        # term_bits 48 is not below acc_bits 48.
        (
            packet(0x81, IDENTIFY_PAL16[:16] + b"\x30\x01"),
            ProtocolError,
            r"impossible device: term_bits",
        ),
        (
            packet(0x81, IDENTIFY_PAL16[:5] + b"\x00" + IDENTIFY_PAL16[6:]),
            ProtocolError,
            r"impossible device: rows",
        ),
        (packet(0x81, IDENTIFY_PAL16)[:-1] + b"\x00", ChecksumError, "wrong CRC-8"),
        (error_reply(3, 0x01), DeviceError, "IDENTIFY: UNKNOWN_COMMAND"),
        (error_reply(0x42, 0x01), DeviceError, "unknown error code 66"),
    ],
)
def test_driver_reports_bad_replies(reply, error, message):
    link = HostLink(ScriptedPort(reply))
    with pytest.raises(error, match=message):
        link.identify()


def test_device_error_carries_code_and_command():
    link = HostLink(ScriptedPort(error_reply(5, 0x10)))
    with pytest.raises(DeviceError) as info:
        link.transact(Command.LOAD_A, b"")
    assert (info.value.code, info.value.command) == (ErrorCode.K_RANGE, 0x10)


def test_driver_rejects_bad_ports_and_operands():
    with pytest.raises(TypeError, match="port must be a device path or an object with read"):
        HostLink(object())
    port = ScriptedPort()
    port.timeout = None
    with pytest.raises(ValueError, match="port must have a read timeout"):
        HostLink(port)
    with pytest.raises(ValueError, match="timeout must be a number of seconds"):
        HostLink(ScriptedPort(), timeout=-1)
    with pytest.raises(TypeError, match="link must be a HostLink"):
        SerialTransport(port)
    link = HostLink(ScriptedPort(packet(0x81, IDENTIFY_PAL16)))
    with pytest.raises(ValueError, match=r"K must be in \[1, 4\] \(the device's k_max\), not 5"):
        link.load_a(np.zeros((2, 5), np.int64))
    with pytest.raises(ValueError, match=r"codes must be a 2-D integer array of shape \(K, cols"):
        link.load_b(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"codes must be 16-bit PAL codes in \[0, 65535\]"):
        link.load_a(np.full((2, 1), 1 << 16))
    with pytest.raises(ValueError, match=r"scales must be 2 integers in \[-32768, 32767\]"):
        link.load_a(np.zeros((2, 1), np.int64), [0, 40000])


# --- simulation: the driver on the pins of the simulated core -------------------------------


def sim_link(**overrides):
    port = SimulatedSerial(core(**overrides), timeout=REPLY_TIMEOUT)
    return port, HostLink(port)


def random_codes(rng, shape, fmt, *, special_rate=0.1):
    codes = rng.integers(0, 1 << fmt.width, size=shape)
    mask = rng.random(shape) < special_rate
    codes[mask] = rng.choice([fmt.zero_code, fmt.nan_code, fmt.max_code], size=mask.sum())
    return codes


def golden_tile(config, a, b, sa, sb, mode):
    return PALArithmetic(config=config).golden_matmul(a, b, a_scales=sa, b_scales=sb, mode=mode)


def test_identify_and_status_replies():
    port, link = sim_link()
    port.write(packet(0x01))
    expected = (
        b"PALH"  # magic, version 2, rows 2, cols 2, int_bits 4, frac_bits 3
        + bytes([2, 2, 2, 4, 3, 6, 51])  # mantissa_bits 6, acc_bits 51
        + (22).to_bytes(2, "little")  # acc_frac_bits 22
        + bytes([2])  # output "pal"
        + (8).to_bytes(2, "little")  # k_max 8
        + bytes([50, 0])  # term_bits 50 (acc_bits - 1), flags 0 (saturating)
    )
    assert read_reply(port) == packet(0x81, expected)
    assert link.identify() == DeviceInfo(
        version=2, rows=2, cols=2, config=MacConfig(pal8), output="pal", k_max=8
    )
    port.write(packet(0x02))
    assert read_reply(port) == packet(0x82, bytes(6))
    status = link.status()
    assert not (status.a_valid or status.b_valid or status.result_valid)
    assert status.last_error is None and status.a_k == status.b_k == 0


# The cheap board configuration: W = 5, a 16-bit wrapping accumulator, a 10-bit term window.
CHEAP = MacConfig(pal8, mantissa_bits=5, acc_bits=16, acc_frac_bits=6, term_bits=10, saturate=False)


def test_identify_round_trip_of_a_wrapping_raw_device():
    port, link = sim_link(rows=2, cols=3, config=CHEAP, output="raw", k_max=5)
    port.write(packet(0x01))
    expected = identify_bytes(
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
    assert read_reply(port) == packet(0x81, expected)
    info = link.identify()
    assert info == DeviceInfo(version=2, rows=2, cols=3, config=CHEAP, output="raw", k_max=5)
    assert info.config == port.core.config
    assert (info.config.term_bits, info.config.saturate) == (10, False)
    # acc 16 + nan + overflow + scale 16 = 34 bits
    assert info.lane_bytes == port.core.lane_bytes == 5


def test_raw_device_gives_float32_and_pal_converted_on_the_host():
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


def test_readouts_that_cannot_give_the_output_are_refused():
    _, link = sim_link()  # pal readout
    codes = np.ones((2, 2), np.int64)
    with pytest.raises(ValueError, match="readout 'pal' cannot give output 'float32'"):
        link.matmul(codes, codes, output="float32")
    with pytest.raises(ValueError, match="readout 'pal' cannot give output 'raw'"):
        link.matmul(codes, codes, output="raw")
    with pytest.raises(ValueError, match=r"output must be one of \('raw', 'float32', 'pal'\)"):
        link.matmul(codes, codes, output="int8")


def test_matmul_float_inputs_through_the_tiling_driver():
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


def test_raw_readout_with_specials_scales_and_status_flags():
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


def test_two_byte_words_and_float32_lanes_at_k_max():
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


def test_bad_checksum_leaves_the_buffer_invalid():
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
    corrupted = bytearray(load_packet(0x10, a2, zeros))
    corrupted[8] ^= 0x04  # a payload word: the memory gets partly written with bad data
    port.write(corrupted)
    assert read_reply(port) == error_reply(1, 0x10)  # CHECKSUM
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


def test_truncated_packet_times_out_and_invalidates():
    rng = np.random.default_rng(6)
    a = random_codes(rng, (2, 2), pal8)
    b = random_codes(rng, (2, 2), pal8)
    port, link = sim_link()
    link.load_a(a)
    link.load_b(b)
    whole = load_packet(0x11, b, [0, 0])
    port.write(whole[:6])
    start = port.cycles
    assert read_reply(port) == error_reply(2, 0x11)  # TIMEOUT, while receiving LOAD_B
    elapsed = port.cycles - start
    character = 10 * 4
    reply_time = 7 * character
    assert 6 * character + TIMEOUT_CYCLES + reply_time <= elapsed
    assert elapsed <= 8 * character + TIMEOUT_CYCLES + reply_time
    port.write(b"\xa5")  # SYNC alone: the command byte never comes
    assert read_reply(port) == error_reply(2, 0x00)
    with pytest.raises(DeviceError, match="NOT_LOADED"):
        link.run()
    assert link.identify().rows == 2


def test_bad_crc_unknown_commands_and_bad_lengths_back_to_back():
    port, link = sim_link()
    k_too_long = load_packet(0x10, np.zeros((2, 2), np.int64), [0, 0])
    k_too_long = packet(0x10, b"\x03\x00" + k_too_long[6:-1])  # says K = 3, carries K = 2
    bad_crc = bytearray(packet(0x20))
    bad_crc[-1] ^= 0x80
    port.write(
        bytes(bad_crc)
        + packet(0x55, b"xyz")
        + packet(0x02, b"\x00")  # STATUS takes no payload
        + packet(0x11, b"\x01\x00")  # K but no words nor scales
        + k_too_long
    )
    assert read_reply(port) == error_reply(1, 0x20)  # CHECKSUM
    assert read_reply(port) == error_reply(3, 0x55)  # UNKNOWN_COMMAND
    assert read_reply(port) == error_reply(4, 0x02)  # LENGTH
    assert read_reply(port) == error_reply(4, 0x11)
    assert read_reply(port) == error_reply(4, 0x10)
    assert link.identify().k_max == 8


def test_oversized_and_empty_tiles_are_rejected():
    rng = np.random.default_rng(7)
    config = MacConfig(pal8)
    port, link = sim_link()
    port.write(load_packet(0x10, np.ones((2, 9), np.int64), [0, 0]))  # K = 9 > k_max = 8
    assert read_reply(port) == error_reply(5, 0x10)  # K_RANGE
    port.write(load_packet(0x11, np.ones((1, 2), np.int64), [0, 0], k=0))  # K = 0
    assert read_reply(port) == error_reply(5, 0x11)
    with pytest.raises(ValueError, match="exceeds the device's k_max 8"):
        link.matmul(np.ones((2, 9), np.int64), np.ones((9, 2), np.int64))
    a = random_codes(rng, (2, 8), pal8)
    b = random_codes(rng, (8, 2), pal8)
    result, _ = link.matmul(a, b)
    zeros = np.zeros(2, np.int64)
    np.testing.assert_array_equal(result, golden_tile(config, a, b, zeros, zeros, "pal"))


def test_pipelined_session_in_one_write():
    rng = np.random.default_rng(8)
    config = MacConfig(pal8)
    a = random_codes(rng, (2, 4), pal8)
    b = random_codes(rng, (4, 2), pal8)
    sa, sb = np.array([1, -2]), np.array([0, 3])
    port, _ = sim_link()
    port.write(
        packet(0x21)  # READ before any RUN
        + packet(0x20)  # RUN before any LOAD
        + load_packet(0x10, a, sa)
        + load_packet(0x11, b[:3], sb)  # K = 3 while A has K = 4
        + packet(0x20)
        + load_packet(0x11, b, sb)
        + packet(0x20)
        + packet(0x02)  # STATUS while the READ below is already arriving
        + packet(0x21)
        + packet(0x02)
    )
    assert read_reply(port) == error_reply(8, 0x21)  # NO_RESULT
    assert read_reply(port) == error_reply(6, 0x20)  # NOT_LOADED
    assert read_reply(port) == packet(0x90)
    assert read_reply(port) == packet(0x91)
    assert read_reply(port) == error_reply(7, 0x20)  # K_MISMATCH
    assert read_reply(port) == packet(0x91)
    run = read_reply(port)
    assert run[:4] == b"\xa5\xa0\x02\x00"
    expected = golden_tile(config, a, b, sa, sb, "pal")
    nan = int((expected == pal8.nan_code).any()) << 4
    saturated = int(((expected & pal8.mag_mask) == pal8.max_code).any()) << 5
    valid = 0x02 | 0x04 | 0x08
    k_bytes = bytes([4, 0, 4, 0])
    assert read_reply(port) == packet(0x82, bytes([0x01 | valid | nan | saturated, 7]) + k_bytes)
    assert read_reply(port) == packet(0xA1, expected.astype(np.uint8).tobytes())
    assert read_reply(port) == packet(0x82, bytes([valid | nan | saturated, 0]) + k_bytes)


def test_break_inside_a_packet_is_a_line_error():
    port, link = sim_link()
    status = packet(0x02)
    assert status[-1] != 0xA5  # the left-over CRC byte must not look like SYNC
    port.write(status[:2])
    port.send_break(0)  # one character time, received as a character with a framing error
    port.write(status[2:])
    assert read_reply(port) == error_reply(9, 0x02)  # LINE
    first, second = link.status(), link.status()
    assert (first.line_error, first.last_error) == (True, ErrorCode.LINE)
    assert (second.line_error, second.last_error) == (False, None)


def test_receive_overrun_is_survived():
    # Each IDENTIFY reply is 16 bytes longer than its request: the receive FIFO (64 bytes)
    # overflows while the device is still answering; bytes are lost, the device keeps going.
    port, link = sim_link()
    requests = 22
    port.write(packet(0x01) * requests)
    identify = read_reply(port)
    port.timeout = 0.003  # a few timeouts' worth: then the device has gone quiet
    good = [identify]
    while True:
        head = port.read(1)
        if not head:
            break
        rest = port.read(3)
        reply = head + rest + port.read(int.from_bytes(rest[1:3], "little") + 1)
        assert crc8_reference(reply[1:-1]) == reply[-1]
        assert reply == identify or reply[:4] == b"\xa5\xff\x02\x00", reply
        good.append(reply)
    assert 1 < sum(reply == identify for reply in good) < requests
    port.timeout = REPLY_TIMEOUT
    assert link.status().line_error
    assert link.identify().cols == 2
