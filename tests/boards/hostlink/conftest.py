"""Host-link test helpers: the wire format built independently of the code under test.

Packets and replies are built and checked here with this file's own CRC-8 (polynomial long
division) and framing, independent of :func:`palhdl.boards.hostlink.protocol.crc8` and
``frame``; IDENTIFY payloads are laid out from the byte table of ``docs/host-link.md``.
"""

import numpy as np
import pytest


class Wire:
    """The protocol's byte formats, from ``docs/host-link.md``."""

    @staticmethod
    def crc8(data: bytes) -> int:
        """Remainder of ``data(x) * x**8`` divided by ``x**8 + x**2 + x + 1`` over GF(2)."""
        value = int.from_bytes(data, "big") << 8
        for bit in range(value.bit_length() - 1, 7, -1):
            if value >> bit & 1:
                value ^= 0x107 << (bit - 8)
        return value

    @classmethod
    def packet(cls, code: int, payload: bytes = b"") -> bytes:
        """SYNC, code, LEN, the header's CRC, payload, the CRC of all after SYNC (version 4)."""
        header = bytes([code]) + len(payload).to_bytes(2, "little")
        body = header + bytes([cls.crc8(header)]) + payload
        return b"\xa5" + body + bytes([cls.crc8(body)])

    @classmethod
    def error_reply(cls, code: int, command: int) -> bytes:
        return cls.packet(0xFF, bytes([code, command]))

    @classmethod
    def load_packet(cls, command: int, codes, scales, word_bytes: int = 1, k=None) -> bytes:
        """LOAD_A/LOAD_B: K, words in C order (little endian), int16 scales.

        A block-scaled device's words are ``code | offset << width``: pass them as ``codes``.
        """
        codes = np.asarray(codes)
        if k is None:
            k = codes.shape[1] if command == 0x10 else codes.shape[0]
        payload = k.to_bytes(2, "little")
        for code in codes.ravel():
            payload += int(code).to_bytes(word_bytes, "little")
        for scale in scales:
            payload += int(scale).to_bytes(2, "little", signed=True)
        return cls.packet(command, payload)

    @classmethod
    def read_reply(cls, port) -> bytes:
        head = port.read(5)
        assert len(head) == 5 and head[0] == 0xA5, head
        assert cls.crc8(head[1:4]) == head[4], head
        rest = port.read(int.from_bytes(head[2:4], "little") + 1)
        reply = head + rest
        assert cls.crc8(reply[1:-1]) == reply[-1]
        return reply

    @staticmethod
    def identify(
        *,
        version=4,
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
        table_entries=0,
        table_width=0,
    ):
        """An IDENTIFY payload laid out as the byte table of docs/host-link.md says."""
        return (
            b"PALH"
            + bytes([version, rows, cols, fmt.int_bits, fmt.frac_bits, mantissa_bits, acc_bits])
            + acc_frac_bits.to_bytes(2, "little", signed=True)
            + bytes([mode])
            + k_max.to_bytes(2, "little")
            + bytes([term_bits, flags])
            + table_entries.to_bytes(2, "little")
            + bytes([table_width])
        )

    @classmethod
    def table_packet(cls, frac_bits: int, words, entry_bytes: int) -> bytes:
        """LOAD_TABLE: the split byte, then the entries little endian."""
        payload = bytes([frac_bits])
        for word in words:
            payload += int(word).to_bytes(entry_bytes, "little")
        return cls.packet(0x12, payload)


@pytest.fixture(scope="session")
def wire():
    """The independent wire format (:class:`Wire`)."""
    return Wire
