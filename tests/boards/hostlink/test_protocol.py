"""The protocol module: CRC-8, framing and the IDENTIFY / STATUS payloads."""

import numpy as np
import pytest

from palhdl.boards.hostlink.protocol import (
    ErrorCode,
    IdentifyFields,
    crc8,
    decode_identify,
    decode_status,
    encode_identify,
    frame,
    load_length,
)
from palhdl.format import MacConfig, pal8, pal16


def test_crc8_is_crc8_smbus(wire):
    assert crc8(b"123456789") == 0xF4  # the published check value of CRC-8/SMBUS
    rng = np.random.default_rng(0)
    for size in (0, 1, 2, 5, 64, 300):
        data = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        assert crc8(data) == wire.crc8(data)
        assert frame(0x21, data) == wire.packet(0x21, data)


def test_frame_rejects_bad_arguments():
    with pytest.raises(ValueError, match="code must be a byte"):
        frame(256)
    with pytest.raises(ValueError, match="payload must be at most 65535 bytes"):
        frame(1, bytes(65536))


def test_load_length_counts_k_words_and_scales():
    # LEN = 2 + lanes * K * word_bytes + 2 * lanes (docs/host-link.md)
    assert load_length(5, 64, 1) == 2 + 5 * 64 + 10 == 332
    assert load_length(3, 4, 2) == 2 + 24 + 6


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
    )
    saturating = encode_identify(rows=1, cols=1, config=MacConfig(pal8), output="raw", k_max=1)
    assert decode_identify(saturating).saturate
    with pytest.raises(ValueError, match="has 17 payload bytes, expected 18"):
        decode_identify(payload[:17])


def test_status_decoding():
    status = decode_status(bytes([0x01 | 0x08 | 0x40, 7, 4, 1, 0, 0]))
    assert (status.busy, status.a_valid, status.b_valid, status.result_valid) == (
        True,
        False,
        False,
        True,
    )
    assert (status.nan, status.saturated, status.line_error) == (False, False, True)
    assert (status.last_error, status.a_k, status.b_k) == (ErrorCode.K_MISMATCH, 260, 0)
    assert decode_status(bytes([0, 0x42, 0, 0, 0, 0])).last_error == 0x42
    assert decode_status(bytes(6)).last_error is None
    with pytest.raises(ValueError, match="a STATUS payload has 6 bytes, not 5"):
        decode_status(bytes(5))
