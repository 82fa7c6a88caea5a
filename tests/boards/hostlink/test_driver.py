"""The host driver against scripted ports (no simulation): decoding, encoding, errors."""

import numpy as np
import pytest

from palhdl.boards.hostlink.driver import (
    ChecksumError,
    DeviceError,
    DeviceInfo,
    HostLink,
    LinkTimeout,
    ProtocolError,
    SerialTransport,
)
from palhdl.boards.hostlink.protocol import Command, ErrorCode
from palhdl.format import MacConfig, pal16

# pal16, W = 10, a 48-bit wrapping accumulator with 24 fraction bits and a 20-bit term window.
CONFIG_PAL16 = MacConfig(
    pal16, mantissa_bits=10, acc_bits=48, acc_frac_bits=24, term_bits=20, saturate=False
)


def identify_pal16(wire) -> bytes:
    """The IDENTIFY payload of a 2 x 2 board with CONFIG_PAL16, the pal readout and k_max 4."""
    return wire.identify(
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


def test_driver_decodes_identify_and_encodes_loads(wire):
    packet = wire.packet
    port = ScriptedPort(packet(0x81, identify_pal16(wire)), packet(0x90), packet(0x91))
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


# Each reply is built from the wire helpers `w` and the good IDENTIFY payload `i`.
@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (lambda w, i: b"", LinkTimeout, "no complete reply to IDENTIFY: got 0 of 4 bytes"),
        (lambda w, i: w.packet(0x81, i)[:10], LinkTimeout, "got 6 of 19 bytes"),
        (lambda w, i: b"\x5a" + w.packet(0x81, i)[1:], ProtocolError, "not SYNC 0xa5"),
        (lambda w, i: w.packet(0x82, i), ProtocolError, "has code 0x82, expected 0x81"),
        (
            lambda w, i: w.packet(0x81, i[:17]),
            ProtocolError,
            "has 17 payload bytes, expected 18",
        ),
        (lambda w, i: w.packet(0x81, i + b"\x00"), ProtocolError, "has 19 payload bytes"),
        (lambda w, i: w.packet(0x81, i[:4]), ProtocolError, "has 4 payload bytes, expected 18"),
        (lambda w, i: w.packet(0x81, b"PALX" + i[4:]), ProtocolError, "magic"),
        # A version-1 device: 16 bytes, no term_bits nor flags.
        (lambda w, i: w.packet(0x81, b"PALH\x01" + i[5:16]), ProtocolError, "version 1, not 2"),
        (lambda w, i: w.packet(0x81, i[:17] + b"\x03"), ProtocolError, r"unknown bits 0x02"),
        (
            lambda w, i: w.packet(0x81, i[:17] + b"\x80"),
            ProtocolError,
            r"flags 0x80 have unknown",
        ),
        (
            lambda w, i: w.packet(0x81, i[:13] + b"\x03" + i[14:]),
            ProtocolError,
            "readout code 3",
        ),
        # term_bits 48 is not below acc_bits 48.
        (
            lambda w, i: w.packet(0x81, i[:16] + b"\x30\x01"),
            ProtocolError,
            r"impossible device: term_bits",
        ),
        (
            lambda w, i: w.packet(0x81, i[:5] + b"\x00" + i[6:]),
            ProtocolError,
            r"impossible device: rows",
        ),
        (lambda w, i: w.packet(0x81, i)[:-1] + b"\x00", ChecksumError, "wrong CRC-8"),
        (lambda w, i: w.error_reply(3, 0x01), DeviceError, "IDENTIFY: UNKNOWN_COMMAND"),
        (lambda w, i: w.error_reply(0x42, 0x01), DeviceError, "unknown error code 66"),
    ],
)
def test_driver_reports_bad_replies(wire, reply, error, message):
    link = HostLink(ScriptedPort(reply(wire, identify_pal16(wire))))
    with pytest.raises(error, match=message):
        link.identify()


def test_device_error_carries_code_and_command(wire):
    link = HostLink(ScriptedPort(wire.error_reply(5, 0x10)))
    with pytest.raises(DeviceError) as info:
        link.transact(Command.LOAD_A, b"")
    assert (info.value.code, info.value.command) == (ErrorCode.K_RANGE, 0x10)


def test_driver_rejects_bad_ports_and_operands(wire):
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
    link = HostLink(ScriptedPort(wire.packet(0x81, identify_pal16(wire))))
    with pytest.raises(ValueError, match=r"K must be in \[1, 4\] \(the device's k_max\), not 5"):
        link.load_a(np.zeros((2, 5), np.int64))
    with pytest.raises(ValueError, match=r"codes must be a 2-D integer array of shape \(K, cols"):
        link.load_b(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"codes must be 16-bit PAL codes in \[0, 65535\]"):
        link.load_a(np.full((2, 1), 1 << 16))
    with pytest.raises(ValueError, match=r"scales must be 2 integers in \[-32768, 32767\]"):
        link.load_a(np.zeros((2, 1), np.int64), [0, 40000])
