"""The host-link packet protocol: constants, codes, CRC-8, framing and reply payloads.

The single definition shared by the gateware (:mod:`palhdl.boards.hostlink.core` and its
parts) and the host driver (:mod:`palhdl.boards.hostlink.driver`); pure Python. The protocol
is specified in ``docs/host-link.md``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from palhdl.format import MacConfig

__all__ = [
    "ERROR_LENGTH",
    "ERROR_REPLY",
    "FRAME_OVERHEAD",
    "HEADER_LENGTH",
    "IDENTIFY_BLOCK_SCALED",
    "IDENTIFY_LENGTH",
    "IDENTIFY_LOADABLE",
    "IDENTIFY_WRAPPING",
    "MAGIC",
    "MAX_K",
    "OUTPUT_MODES",
    "READ_FLAGS_LENGTH",
    "REPLY_FLAG",
    "RUN_LENGTH",
    "STATUS_LENGTH",
    "SYNC",
    "VERSION",
    "Command",
    "DeviceStatus",
    "ErrorCode",
    "IdentifyFields",
    "LedBit",
    "ReadFlag",
    "StatusFlag",
    "crc8",
    "decode_identify",
    "decode_status",
    "encode_identify",
    "frame",
    "load_length",
    "table_length",
]

SYNC = 0xA5
#: Protocol version in the IDENTIFY reply; 2 added ``term_bits`` and the flags byte, 3 the
#: loadable term table (LOAD_TABLE, its IDENTIFY and STATUS fields) and block-scaled operands,
#: 4 the header checksum, the HEADER error, one reply per overrun and READ's flags byte.
VERSION = 4
MAGIC = b"PALH"
#: A successful reply carries the command code with this bit set.
REPLY_FLAG = 0x80
#: Reply code of an error reply (payload: error code, received command byte).
ERROR_REPLY = 0xFF
#: Readout modes in the order of their IDENTIFY code (0, 1, 2).
OUTPUT_MODES = ("raw", "float32", "pal")
IDENTIFY_LENGTH = 21
#: Bits of the IDENTIFY flags byte: the accumulator wraps (``MacConfig.saturate`` is False);
#: the product-term table is loadable (LOAD_TABLE); the operands carry block offsets. The
#: other bits are 0.
IDENTIFY_WRAPPING = 0x01
IDENTIFY_LOADABLE = 0x02
IDENTIFY_BLOCK_SCALED = 0x04
_IDENTIFY_FLAGS = IDENTIFY_WRAPPING | IDENTIFY_LOADABLE | IDENTIFY_BLOCK_SCALED
STATUS_LENGTH = 7
#: Bytes of a frame before its payload: ``SYNC``, code, ``LEN`` (2), header CRC.
HEADER_LENGTH = 5
#: Bytes of a frame around its payload: the header and the closing CRC.
FRAME_OVERHEAD = HEADER_LENGTH + 1
#: Bytes of the READ reply before its lanes (the :class:`ReadFlag` byte).
READ_FLAGS_LENGTH = 1
RUN_LENGTH = 2
ERROR_LENGTH = 2
#: Deepest K a device may announce (a LOAD's K is a 16-bit field; the core allows 1..MAX_K).
MAX_K = 4096

_CRC8_POLY = 0x07


class Command(enum.IntEnum):
    """Command codes (byte 1 of a packet)."""

    IDENTIFY = 0x01
    STATUS = 0x02
    LOAD_A = 0x10
    LOAD_B = 0x11
    LOAD_TABLE = 0x12
    RUN = 0x20
    READ = 0x21


class ErrorCode(enum.IntEnum):
    """First payload byte of an ERROR reply; see ``docs/host-link.md`` for when each is sent."""

    CHECKSUM = 1
    TIMEOUT = 2
    UNKNOWN_COMMAND = 3
    LENGTH = 4
    K_RANGE = 5
    NOT_LOADED = 6
    K_MISMATCH = 7
    NO_RESULT = 8
    LINE = 9
    NOT_LOADABLE = 10
    TABLE_INVALID = 11
    HEADER = 12


class StatusFlag(enum.IntFlag):
    """Bits of the first byte of a STATUS reply."""

    BUSY = 0x01
    A_VALID = 0x02
    B_VALID = 0x04
    RESULT_VALID = 0x08
    NAN = 0x10
    SATURATED = 0x20
    LINE_ERROR = 0x40
    TABLE_VALID = 0x80


class ReadFlag(enum.IntFlag):
    """Bits of the first byte of a READ reply."""

    #: A LOAD_A, LOAD_B or LOAD_TABLE header was accepted since the RUN that computed the
    #: result: it is not the product of what the buffers hold now.
    STALE = 0x01


class LedBit(enum.IntEnum):
    """Bit positions of ``HostLinkCore.status`` (for LEDs)."""

    BUSY = 0
    ERROR = 1
    LOADED = 2
    RESULT = 3


def crc8(data: bytes | bytearray) -> int:
    """CRC-8/SMBUS of ``data``: polynomial 0x07, initial value 0, no reflection, no final XOR.

    The check value of ``b"123456789"`` is 0xF4.
    """
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC8_POLY if crc & 0x80 else crc << 1) & 0xFF
    return crc


def frame(code: int, payload: bytes = b"") -> bytes:
    """Frame a packet or reply: ``SYNC | code | LEN (2 bytes LE) | HCRC | payload | CRC``.

    ``HCRC`` is the CRC-8 of ``code`` and ``LEN``; ``CRC`` the CRC-8 of everything after
    ``SYNC`` before it (``code``, ``LEN``, ``HCRC``, ``payload``), which equals the CRC-8 of
    ``payload`` alone, since a message followed by its own CRC-8 leaves the CRC register at 0.

    Raises
    ------
    ValueError
        If ``code`` is not a byte or ``payload`` is longer than 65535 bytes.
    """
    if not 0 <= code <= 0xFF:
        raise ValueError(f"code must be a byte (0..255), not {code}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload must be at most 65535 bytes, not {len(payload)}")
    header = bytes([code]) + len(payload).to_bytes(2, "little")
    body = header + bytes([crc8(header)]) + bytes(payload)
    return bytes([SYNC]) + body + bytes([crc8(body)])


def load_length(lanes: int, k: int, word_bytes: int) -> int:
    """Payload length of a LOAD_A (``lanes = rows``) or LOAD_B (``lanes = cols``) packet."""
    return 2 + lanes * k * word_bytes + 2 * lanes


def table_length(entries: int, width: int) -> int:
    """Payload length of a LOAD_TABLE packet.

    The split byte, then ``entries`` entries of ``ceil(width / 8)`` bytes.
    """
    return 1 + entries * ((width + 7) // 8)


def encode_identify(
    *,
    rows: int,
    cols: int,
    config: MacConfig,
    output: str,
    k_max: int,
    table_entries: int = 0,
    table_width: int = 0,
    block_scaled: bool = False,
) -> bytes:
    """Encode the IDENTIFY reply payload of a device (protocol :data:`VERSION`).

    ``table_entries`` and ``table_width`` describe a loadable product-term table (both 0: the
    table is not loadable); ``block_scaled``: the operands carry block offsets.
    """
    flags = 0 if config.saturate else IDENTIFY_WRAPPING
    if table_entries:
        flags |= IDENTIFY_LOADABLE
    if block_scaled:
        flags |= IDENTIFY_BLOCK_SCALED
    return (
        MAGIC
        + bytes(
            [
                VERSION,
                rows,
                cols,
                config.fmt.int_bits,
                config.fmt.frac_bits,
                config.mantissa_bits,
                config.acc_bits,
            ]
        )
        + config.acc_frac_bits.to_bytes(2, "little", signed=True)
        + bytes([OUTPUT_MODES.index(output)])
        + k_max.to_bytes(2, "little")
        + bytes([config.term_bits, flags])
        + table_entries.to_bytes(2, "little")
        + bytes([table_width])
    )


class IdentifyFields(NamedTuple):
    """The fields of a version-:data:`VERSION` IDENTIFY payload, not yet checked for sense."""

    rows: int
    cols: int
    int_bits: int
    frac_bits: int
    mantissa_bits: int
    acc_bits: int
    acc_frac_bits: int
    output: str
    k_max: int
    term_bits: int
    saturate: bool
    block_scaled: bool
    table_entries: int  # 0 unless the table is loadable
    table_width: int  # bits of a table entry, 0 unless the table is loadable


def decode_identify(payload: bytes) -> IdentifyFields:
    """Split an IDENTIFY payload into its fields (inverse of :func:`encode_identify`).

    Raises
    ------
    ValueError
        Wrong magic, version or length, an unknown readout code or flag bit, or a loadable
        flag that disagrees with the table fields. Whether the fields describe a device that
        can exist is left to the caller.
    """
    # Magic and version before the length: another version has another length.
    length_error = ValueError(
        f"IDENTIFY reply has {len(payload)} payload bytes, expected {IDENTIFY_LENGTH} for "
        f"protocol version {VERSION}"
    )
    if len(payload) <= len(MAGIC):
        raise length_error
    if payload[:4] != MAGIC:
        raise ValueError(f"IDENTIFY magic is {payload[:4]!r}, not {MAGIC!r}")
    if payload[4] != VERSION:
        raise ValueError(f"device speaks protocol version {payload[4]}, not {VERSION}")
    if len(payload) != IDENTIFY_LENGTH:
        raise length_error
    rows, cols, int_bits, frac_bits, mantissa_bits, acc_bits = payload[5:11]
    acc_frac_bits = int.from_bytes(payload[11:13], "little", signed=True)
    mode, k_max = payload[13], int.from_bytes(payload[14:16], "little")
    term_bits, flags = payload[16], payload[17]
    if mode >= len(OUTPUT_MODES):
        raise ValueError(
            f"IDENTIFY readout code {mode} is unknown (0..{len(OUTPUT_MODES) - 1}: "
            f"{', '.join(OUTPUT_MODES)})"
        )
    if flags & ~_IDENTIFY_FLAGS:
        raise ValueError(
            f"IDENTIFY flags 0x{flags:02x} have unknown bits 0x{flags & ~_IDENTIFY_FLAGS:02x}"
            f" (bit 0 wrapping accumulator, bit 1 loadable table, bit 2 block-scaled operands)"
        )
    table_entries, table_width = int.from_bytes(payload[18:20], "little"), payload[20]
    loadable = bool(flags & IDENTIFY_LOADABLE)
    if (table_entries != 0) != loadable or (table_width != 0) != loadable:
        raise ValueError(
            f"IDENTIFY describes a table of {table_entries} entries of {table_width} bits with "
            f"the loadable flag {'set' if loadable else 'clear'} (a loadable table has both "
            f"numbers, any other neither)"
        )
    return IdentifyFields(
        rows=rows,
        cols=cols,
        int_bits=int_bits,
        frac_bits=frac_bits,
        mantissa_bits=mantissa_bits,
        acc_bits=acc_bits,
        acc_frac_bits=acc_frac_bits,
        output=OUTPUT_MODES[mode],
        k_max=k_max,
        term_bits=term_bits,
        saturate=not (flags & IDENTIFY_WRAPPING),
        block_scaled=bool(flags & IDENTIFY_BLOCK_SCALED),
        table_entries=table_entries,
        table_width=table_width,
    )


@dataclass(frozen=True)
class DeviceStatus:
    """What STATUS reports (see ``docs/host-link.md``)."""

    busy: bool
    a_valid: bool
    b_valid: bool
    result_valid: bool
    nan: bool
    saturated: bool
    line_error: bool
    last_error: ErrorCode | int | None
    a_k: int
    b_k: int
    table_valid: bool
    table_frac_bits: int  # the split byte of the last successful LOAD_TABLE


def decode_status(payload: bytes) -> DeviceStatus:
    """Decode a STATUS reply payload of :data:`STATUS_LENGTH` bytes.

    Raises
    ------
    ValueError
        If ``payload`` does not have :data:`STATUS_LENGTH` bytes.
    """
    if len(payload) != STATUS_LENGTH:
        raise ValueError(f"a STATUS payload has {STATUS_LENGTH} bytes, not {len(payload)}")
    flags = StatusFlag(payload[0])
    last_error: ErrorCode | int | None = None
    if payload[1]:
        try:
            last_error = ErrorCode(payload[1])
        except ValueError:
            last_error = payload[1]
    return DeviceStatus(
        busy=StatusFlag.BUSY in flags,
        a_valid=StatusFlag.A_VALID in flags,
        b_valid=StatusFlag.B_VALID in flags,
        result_valid=StatusFlag.RESULT_VALID in flags,
        nan=StatusFlag.NAN in flags,
        saturated=StatusFlag.SATURATED in flags,
        line_error=StatusFlag.LINE_ERROR in flags,
        last_error=last_error,
        a_k=int.from_bytes(payload[2:4], "little"),
        b_k=int.from_bytes(payload[4:6], "little"),
        table_valid=StatusFlag.TABLE_VALID in flags,
        table_frac_bits=payload[6],
    )
