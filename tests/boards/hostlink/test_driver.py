"""The host driver against scripted ports (no simulation): decoding, encoding, errors."""

import numpy as np
import pytest

from palhdl.boards.hostlink.driver import (
    ChecksumError,
    DeviceError,
    HostLink,
    HostLinkError,
    LinkTimeout,
    ProtocolError,
    SerialTransport,
)
from palhdl.boards.hostlink.info import DeviceInfo
from palhdl.boards.hostlink.protocol import Command, ErrorCode
from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.sim import golden

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
        version=4, rows=2, cols=2, config=CONFIG_PAL16, output="pal", k_max=4
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
        (lambda w, i: b"", LinkTimeout, "no reply to IDENTIFY within the 2.0 s timeout"),
        (lambda w, i: w.packet(0x81, i)[:10], LinkTimeout, "stopped: got 10 bytes, then nothing"),
        # No SYNC: every byte is skipped while hunting for one.
        (lambda w, i: b"\x5a" + w.packet(0x81, i)[1:], LinkTimeout, "stopped: got 0 bytes"),
        (lambda w, i: w.packet(0x82, i), ProtocolError, "has code 0x82, expected 0x81"),
        (
            lambda w, i: w.packet(0x81, i[:20]),
            ProtocolError,
            "has 20 payload bytes, expected 21",
        ),
        (lambda w, i: w.packet(0x81, i + b"\x00"), ProtocolError, "has 22 payload bytes"),
        (lambda w, i: w.packet(0x81, i[:4]), ProtocolError, "has 4 payload bytes, expected 21"),
        (lambda w, i: w.packet(0x81, b"PALX" + i[4:]), ProtocolError, "magic"),
        # A version-1 device: 16 bytes, no term_bits nor flags; version 2: 18, no table.
        (lambda w, i: w.packet(0x81, b"PALH\x01" + i[5:16]), ProtocolError, "version 1, not 4"),
        (lambda w, i: w.packet(0x81, b"PALH\x02" + i[5:18]), ProtocolError, "version 2, not 4"),
        (
            lambda w, i: w.packet(0x81, i[:17] + b"\x09" + i[18:]),
            ProtocolError,
            r"unknown bits 0x08",
        ),
        (
            lambda w, i: w.packet(0x81, i[:17] + b"\x81" + i[18:]),
            ProtocolError,
            r"flags 0x81 have unknown",
        ),
        # The loadable flag without table fields.
        (
            lambda w, i: w.packet(0x81, i[:17] + b"\x03" + i[18:]),
            ProtocolError,
            "a loadable table has both numbers",
        ),
        # pal16's table has 65536 entries (no loadable pal16 device exists).
        (
            lambda w, i: w.packet(0x81, i[:17] + b"\x03\x00\x10\x16"),
            ProtocolError,
            r"impossible device: table_entries 4096 is not the size of a pal16 product-term",
        ),
        (
            lambda w, i: w.packet(0x81, i[:13] + b"\x03" + i[14:]),
            ProtocolError,
            "readout code 3",
        ),
        # term_bits 48 is not below acc_bits 48.
        (
            lambda w, i: w.packet(0x81, i[:16] + b"\x30\x01" + i[18:]),
            ProtocolError,
            r"impossible device: term_bits",
        ),
        (
            lambda w, i: w.packet(0x81, i[:5] + b"\x00" + i[6:]),
            ProtocolError,
            r"impossible device: rows",
        ),
        (lambda w, i: w.packet(0x81, i)[:-1] + b"\x00", ChecksumError, "wrong CRC-8"),
        (
            lambda w, i: w.packet(0x81, i)[:4] + b"\x00" + w.packet(0x81, i)[5:],
            ChecksumError,
            "wrong header CRC",
        ),
        # A version-3 device: no header CRC, the magic follows LEN.
        (
            lambda w, i: b"\xa5\x81\x15\x00" + b"PALH\x03" + i[5:] + b"\x00",
            ProtocolError,
            "older host-link protocol .* rebuild its bitstream",
        ),
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


# --- the run-time split and block offsets (scripted) ------------------------------------------

# The iCEBreaker's pal8 window: W = 5, an 18-bit wrapping accumulator, an 11-bit term window;
# its unsigned table has 256 entries of 11 + 1 bits.
ICE = MacConfig(pal8, mantissa_bits=5, acc_bits=18, acc_frac_bits=8, term_bits=11, saturate=False)
SPLIT_34 = PALFormat(int_bits=3, frac_bits=4)


def identify_loadable(wire, *, mode=0, flags=0x01 | 0x02 | 0x04, entries=256, width=12) -> bytes:
    """A 2 x 2 ICE board, k_max 4: raw readout, loadable table, block-scaled operands."""
    return wire.identify(
        rows=2,
        cols=2,
        fmt=pal8,
        mantissa_bits=5,
        acc_bits=18,
        acc_frac_bits=8,
        mode=mode,
        k_max=4,
        term_bits=11,
        flags=flags,
        table_entries=entries,
        table_width=width,
    )


def table_bytes(config: MacConfig) -> bytes:
    """The entries of ``config``'s unsigned table as docs/host-link.md lays them out."""
    term, overflow = golden.term_table(config, signed=False)
    words = [int(t) | int(o) << config.term_bits for t, o in zip(term, overflow, strict=True)]
    return b"".join(word.to_bytes(2, "little") for word in words)


def test_load_split_sends_the_golden_table_and_retargets(wire):
    status = wire.packet(0x82, bytes([0x80 | 0x06, 0, 1, 0, 1, 0, 3]))  # table valid, 4.3
    port = ScriptedPort(
        wire.packet(0x81, identify_loadable(wire)), status, wire.packet(0x92), wire.packet(0x92)
    )
    link = HostLink(port)
    info = link.info
    assert (info.loadable, info.table_signed, info.block_scaled) == (True, False, True)
    assert (info.operand_width, info.word_bytes) == (16, 2)
    assert link.split == pal8 and link.config == ICE  # STATUS: the bitstream's table
    retargeted = ICE.retarget(SPLIT_34)
    assert link.load_split(SPLIT_34) == retargeted
    assert (link.split, link.config) == (SPLIT_34, retargeted)
    assert link.load_split(pal8) == ICE  # the bitstream's own table, with its W = 5
    assert port.written[2:] == [
        wire.packet(0x12, bytes([4]) + table_bytes(retargeted)),
        wire.packet(0x12, bytes([3]) + table_bytes(ICE)),
    ]
    assert len(port.written) == 4  # the split was asked once


def test_block_offsets_travel_above_the_code(wire):
    port = ScriptedPort(wire.packet(0x81, identify_loadable(wire)), wire.packet(0x90))
    link = HostLink(port)
    link.load_a(np.array([[0x12], [0xFE]]), [1, -1], offsets=np.array([[0], [255]]))
    words = bytes([0x12, 0x00, 0xFE, 0xFF])  # code | offset << 8, two bytes each
    assert port.written[1] == wire.packet(0x10, b"\x01\x00" + words + b"\x01\x00\xff\xff")
    with pytest.raises(ValueError, match=r"offsets must be integers in \[0, 255\] of the codes'"):
        link.load_b(np.zeros((1, 2), np.int64), offsets=[[0, 256]])
    with pytest.raises(ValueError, match=r"offsets must be integers in \[0, 255\] of the codes'"):
        link.load_b(np.zeros((1, 2), np.int64), offsets=np.zeros((2, 2), np.int64))


@pytest.mark.parametrize(
    ("flags", "mode", "call", "message"),
    [
        # Not loadable: only the bitstream's own split.
        (0x01, 0, lambda link: link.load_split(SPLIT_34), "table is not loadable"),
        (0x01, 0, lambda link: link.load_table(np.zeros(256, np.int64), frac_bits=4), "loadable"),
        # A pal readout rounds to the bitstream's format.
        (0x03, 2, lambda link: link.load_split(SPLIT_34), "pal readout rounds results to"),
        (0x03, 0, lambda link: link.load_split(PALFormat(4, 4)), "split 4.4 is 9 bits wide"),
        (0x03, 0, lambda link: link.load_split(pal16), r"split 8.7 is 16 bits wide; .* \(4.3"),
        (
            0x03,
            0,
            lambda link: link.load_table(np.zeros(255, np.int64), frac_bits=4),
            r"words must be 256 integers in \[0, 2\*\*12\)",
        ),
        (
            0x03,
            0,
            lambda link: link.load_table(np.full(256, 1 << 12), frac_bits=4),
            r"words must be 256 integers",
        ),
        (
            0x03,
            0,
            lambda link: link.load_table(np.zeros(256, np.int64), frac_bits=6),
            r"frac_bits must be in \[1, 5\], not 6",
        ),
        # No block offsets on a device without them.
        (0x03, 0, lambda link: link.load_a(np.zeros((2, 1), int), offsets=[[0], [0]]), "no block"),
        (
            0x03,
            0,
            lambda link: link.matmul(np.ones((2, 2)), np.ones((2, 2)), block_size=4),
            "block_size 4: the device's operands carry no block offsets",
        ),
    ],
)
def test_split_and_offsets_are_refused_where_the_device_cannot_use_them(
    wire, flags, mode, call, message
):
    loadable = flags & 0x02
    identify = identify_loadable(
        wire, flags=flags, mode=mode, entries=256 if loadable else 0, width=12 if loadable else 0
    )
    port = ScriptedPort(wire.packet(0x81, identify))
    link = HostLink(port)
    with pytest.raises(ValueError, match=message):
        call(link)
    assert port.written == [wire.packet(0x01)]  # refused before anything is sent


def test_an_invalid_or_impossible_table_label_is_reported(wire):
    identify = wire.packet(0x81, identify_loadable(wire))
    invalid = wire.packet(0x82, bytes([0, 0, 0, 0, 0, 0, 4]))
    with pytest.raises(HostLinkError, match="product-term table is invalid"):
        _ = HostLink(ScriptedPort(identify, invalid)).split
    impossible = wire.packet(0x82, bytes([0x80, 0, 0, 0, 0, 0, 6]))
    with pytest.raises(ProtocolError, match=r"impossible split: frac_bits must be in \[1, 5\]"):
        _ = HostLink(ScriptedPort(identify, impossible)).split
    # A rejected LOAD_TABLE leaves the split unknown: the next use asks STATUS again.
    rejected = wire.error_reply(4, 0x12)
    port = ScriptedPort(identify, rejected, invalid)
    link = HostLink(port)
    with pytest.raises(DeviceError, match="LOAD_TABLE: LENGTH"):
        link.load_split(SPLIT_34)
    with pytest.raises(HostLinkError, match="invalid"):
        _ = link.config
    assert port.written[-1] == wire.packet(0x02)


def test_identify_checks_the_table_against_the_configuration(wire):
    for entries, width, message in (
        (128, 12, "table_entries 128 is not the size of a pal8 product-term table"),
        (256, 13, r"table_width 13 is not the width of the product-term table's entries \(12"),
        (512, 12, r"table_width 12 is not .* \(13 bits\)"),  # a signed table: 12 + sign
    ):
        identify = identify_loadable(wire, entries=entries, width=width)
        with pytest.raises(ProtocolError, match=message):
            HostLink(ScriptedPort(wire.packet(0x81, identify))).identify()
    signed = identify_loadable(wire, entries=512, width=13)
    assert HostLink(ScriptedPort(wire.packet(0x81, signed))).info.table_signed
