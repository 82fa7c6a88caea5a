"""What a host-link device is: :class:`DeviceInfo`, decoded and checked from its IDENTIFY reply."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape

from palhdl.boards.hostlink.protocol import MAX_K, decode_identify
from palhdl.format import SCALE_BITS, MacConfig, PALFormat
from palhdl.hdl.pe import table_entries, term_entry_layout, term_table_words
from palhdl.hdl.providers import PALArithmetic
from palhdl.hdl.systolic import MAX_DIM
from palhdl.validate import check_instance, check_int

__all__ = ["DeviceInfo", "decode_device_info", "split_name"]


def split_name(fmt: PALFormat) -> str:
    """Return ``"I.F"`` of a format, the way ``palhdl run --split`` takes it."""
    return f"{fmt.int_bits}.{fmt.frac_bits}"


@dataclass(frozen=True)
class DeviceInfo:
    """What IDENTIFY reports: protocol version, geometry, arithmetic, readout and ``k_max``.

    ``config`` is the configuration the bitstream was built for; ``block_scaled``: the
    operands carry block offsets; ``table_entries`` and ``table_width`` describe a loadable
    product-term table (both 0 if it is not loadable).
    """

    version: int
    rows: int
    cols: int
    config: MacConfig
    output: str
    k_max: int
    block_scaled: bool = False
    table_entries: int = 0
    table_width: int = 0

    @property
    def loadable(self) -> bool:
        """Whether LOAD_TABLE can rewrite the product-term table (the run-time split)."""
        return self.table_entries != 0

    @property
    def table_signed(self) -> bool:
        """Whether the loadable table holds signed terms (twice the entries of an unsigned one)."""
        return self.table_entries == table_entries(self.config, signed=True)

    @property
    def operand_width(self) -> int:
        """Bits of an operand lane: the PAL word, and its block offset when block-scaled."""
        fmt = self.config.fmt
        return fmt.width + (fmt.mag_bits + 1 if self.block_scaled else 0)

    @property
    def word_bytes(self) -> int:
        """Bytes per operand lane on the wire."""
        return (self.operand_width + 7) // 8

    @property
    def lane_shape(self):
        """Shape of one result lane (``PALArithmetic.output_shape(output)``)."""
        return PALArithmetic(config=self.config).output_shape(self.output, scale_bits=SCALE_BITS)

    @property
    def lane_bytes(self) -> int:
        """Bytes per result lane on the wire."""
        return (Shape.cast(self.lane_shape).width + 7) // 8

    def split_of(self, frac_bits: int) -> PALFormat:
        """Return the split of the device's word width with ``frac_bits`` fraction bits.

        Raises
        ------
        ValueError
            No PAL format of that width has ``frac_bits`` (``1 <= F <= width - 3``).
        """
        width = self.config.fmt.width
        check_int("frac_bits", frac_bits, 1, width - 3)
        return PALFormat(int_bits=width - 1 - frac_bits, frac_bits=frac_bits)

    def config_for(self, fmt: PALFormat) -> MacConfig:
        """Return the configuration the device computes with the table of the split ``fmt``.

        ``config.retarget(fmt)``, or ``config`` itself for its own format (the bitstream's
        table, whose ``mantissa_bits`` may differ from the format's default).

        Raises
        ------
        TypeError, ValueError
            ``fmt`` is not a PALFormat of the device's word width.
        """
        check_instance("fmt", fmt, PALFormat, "PALFormat(int_bits=3, frac_bits=4)")
        own = self.config.fmt
        if fmt.width != own.width:
            raise ValueError(
                f"split {split_name(fmt)} is {fmt.width} bits wide; the device's words are "
                f"{own.width} bits ({split_name(own)})"
            )
        return self.config if fmt == own else self.config.retarget(fmt)

    def table_words(self, fmt: PALFormat) -> np.ndarray:
        """Return the loadable table of the split ``fmt``, as the golden model defines it.

        ``term_table_words(config_for(fmt), signed=table_signed)``.
        """
        return np.array(term_table_words(self.config_for(fmt), signed=self.table_signed))


def decode_device_info(payload: bytes) -> DeviceInfo:
    """Decode and check an IDENTIFY payload (protocol version 4, ``protocol.VERSION``).

    Raises
    ------
    ValueError
        The payload is malformed (:func:`~palhdl.boards.hostlink.protocol.decode_identify`) or
        describes a device ``HostLinkCore`` cannot be: parameters out of range, or a table of a
        size or width that is not the configuration's.
    """
    fields = decode_identify(payload)
    try:
        check_int("rows", fields.rows, 1, MAX_DIM)
        check_int("cols", fields.cols, 1, MAX_DIM)
        check_int("k_max", fields.k_max, 1, MAX_K)
        config = MacConfig(
            PALFormat(int_bits=fields.int_bits, frac_bits=fields.frac_bits),
            mantissa_bits=fields.mantissa_bits,
            acc_bits=fields.acc_bits,
            acc_frac_bits=fields.acc_frac_bits,
            term_bits=fields.term_bits,
            saturate=fields.saturate,
        )
        if fields.table_entries:
            _check_table(config, fields.table_entries, fields.table_width)
    except (TypeError, ValueError) as error:
        raise ValueError(f"IDENTIFY describes an impossible device: {error}") from None
    return DeviceInfo(
        version=payload[4],
        rows=fields.rows,
        cols=fields.cols,
        config=config,
        output=fields.output,
        k_max=fields.k_max,
        block_scaled=fields.block_scaled,
        table_entries=fields.table_entries,
        table_width=fields.table_width,
    )


def _check_table(config: MacConfig, entries: int, width: int) -> None:
    """Check that a loadable table of ``entries`` words of ``width`` bits can be ``config``'s."""
    sizes = {table_entries(config, signed=signed): signed for signed in (False, True)}
    if entries not in sizes:
        raise ValueError(
            f"table_entries {entries} is not the size of a {config.fmt} product-term table "
            f"({' or '.join(map(str, sizes))})"
        )
    expected = term_entry_layout(config, signed=sizes[entries]).size
    if width != expected:
        raise ValueError(
            f"table_width {width} is not the width of the product-term table's entries "
            f"({expected} bits)"
        )
