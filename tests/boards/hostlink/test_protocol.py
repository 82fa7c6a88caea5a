"""The protocol module: CRC-8, framing and the IDENTIFY / STATUS payloads."""

import numpy as np
import pytest

from palhdl.boards.hostlink.protocol import (
    FRAME_OVERHEAD,
    HEADER_LENGTH,
    READ_FLAGS_LENGTH,
    VERSION,
    ErrorCode,
    IdentifyFields,
    ReadFlag,
    crc8,
    decode_identify,
    decode_status,
    encode_identify,
    frame,
    load_length,
    table_length,
)
from palhdl.format import MacConfig, pal8, pal16


def test_crc8_is_crc8_smbus(wire):
    assert crc8(b"123456789") == 0xF4  # the published check value of CRC-8/SMBUS
    rng = np.random.default_rng(0)
    for size in (0, 1, 2, 5, 64, 300):
        data = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        assert crc8(data) == wire.crc8(data)
        assert frame(0x21, data) == wire.packet(0x21, data)


def test_frame_has_a_header_crc_version_4():
    # docs/host-link.md, protocol 4: SYNC, CODE, LEN (u16 LE), HCRC = crc8(CODE, LEN), payload,
    # CRC = crc8(bytes 1 .. 4 + LEN), which equals crc8(payload).
    payload = bytes(range(1, 8))
    packet = frame(0x10, payload)
    assert (HEADER_LENGTH, FRAME_OVERHEAD, len(packet)) == (5, 6, 6 + 7)
    assert packet[:4] == bytes([0xA5, 0x10, 7, 0])
    assert packet[4] == crc8(bytes([0x10, 7, 0]))
    assert packet[5:-1] == payload
    assert packet[-1] == crc8(packet[1:-1]) == crc8(payload)
    assert frame(0x01) == bytes([0xA5, 0x01, 0, 0, crc8(b"\x01\x00\x00"), 0])
    assert (VERSION, ErrorCode.HEADER, ReadFlag.STALE, READ_FLAGS_LENGTH) == (4, 12, 1, 1)


def test_frame_rejects_bad_arguments():
    with pytest.raises(ValueError, match="code must be a byte"):
        frame(256)
    with pytest.raises(ValueError, match="payload must be at most 65535 bytes"):
        frame(1, bytes(65536))


def test_load_length_counts_k_words_and_scales():
    # LEN = 2 + lanes * K * word_bytes + 2 * lanes (docs/host-link.md)
    assert load_length(5, 64, 1) == 2 + 5 * 64 + 10 == 332
    assert load_length(3, 4, 2) == 2 + 24 + 6


def test_table_length_counts_the_split_byte_and_whole_byte_entries():
    # LEN = 1 + table_entries * ceil(table_width / 8)
    assert table_length(256, 12) == 1 + 256 * 2 == 513
    assert table_length(512, 8) == 513
    assert table_length(4096, 64) == 1 + 4096 * 8


def test_identify_encoding_follows_the_byte_table(wire):
    config = MacConfig(
        pal16, mantissa_bits=10, acc_bits=48, acc_frac_bits=-3, term_bits=20, saturate=False
    )
    payload = encode_identify(rows=2, cols=5, config=config, output="float32", k_max=300)
    expected = wire.identify(
        rows=2,
        cols=5,
        fmt=pal16,
        mantissa_bits=10,
        acc_bits=48,
        acc_frac_bits=-3,
        mode=1,
        k_max=300,
        term_bits=20,
        flags=1,
    )
    assert payload == expected
    assert decode_identify(payload) == IdentifyFields(
        rows=2,
        cols=5,
        int_bits=pal16.int_bits,
        frac_bits=pal16.frac_bits,
        mantissa_bits=10,
        acc_bits=48,
        acc_frac_bits=-3,
        output="float32",
        k_max=300,
        term_bits=20,
        saturate=False,
        block_scaled=False,
        table_entries=0,
        table_width=0,
    )
    saturating = encode_identify(rows=1, cols=1, config=MacConfig(pal8), output="raw", k_max=1)
    assert decode_identify(saturating).saturate
    with pytest.raises(ValueError, match="has 20 payload bytes, expected 21"):
        decode_identify(payload[:20])
    with pytest.raises(ValueError, match="device speaks protocol version 3, not 4"):
        decode_identify(payload[:4] + b"\x03" + payload[5:])


def test_identify_of_a_loadable_block_scaled_device(wire):
    config = MacConfig(pal8, mantissa_bits=5, acc_bits=18, acc_frac_bits=8, term_bits=11)
    payload = encode_identify(
        rows=4,
        cols=5,
        config=config,
        output="raw",
        k_max=64,
        table_entries=512,
        table_width=44,  # (not checked here)
        block_scaled=True,
    )
    assert len(payload) == 21
    assert payload[17] == 0x02 | 0x04  # saturating, loadable, block-scaled
    assert payload[18:] == bytes([0x00, 0x02, 44])  # 512 (u16 LE), 44
    fields = decode_identify(payload)
    assert (fields.block_scaled, fields.table_entries, fields.table_width) == (True, 512, 44)
    # The loadable flag and the table fields must agree.
    for flags, table in ((0x02, bytes(3)), (0x00, b"\x00\x01\x0c"), (0x02, b"\x00\x01\x00")):
        with pytest.raises(ValueError, match="loadable table has both numbers"):
            decode_identify(payload[:17] + bytes([flags]) + table)
    with pytest.raises(ValueError, match=r"unknown bits 0x08"):
        decode_identify(payload[:17] + b"\x08" + bytes(3))


def test_status_decoding():
    status = decode_status(bytes([0x01 | 0x08 | 0x40, 7, 4, 1, 0, 0, 4]))
    assert (status.busy, status.a_valid, status.b_valid, status.result_valid) == (
        True,
        False,
        False,
        True,
    )
    assert (status.nan, status.saturated, status.line_error) == (False, False, True)
    assert (status.last_error, status.a_k, status.b_k) == (ErrorCode.K_MISMATCH, 260, 0)
    assert (status.table_valid, status.table_frac_bits) == (False, 4)
    table = decode_status(bytes([0x80, 11, 0, 0, 0, 0, 3]))
    assert (table.table_valid, table.table_frac_bits) == (True, 3)
    assert table.last_error == ErrorCode.TABLE_INVALID
    assert decode_status(bytes([0, 0x42, 0, 0, 0, 0, 0])).last_error == 0x42
    assert decode_status(bytes(7)).last_error is None
    with pytest.raises(ValueError, match="a STATUS payload has 7 bytes, not 6"):
        decode_status(bytes(6))
