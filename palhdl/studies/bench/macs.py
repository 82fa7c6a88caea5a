"""The MACs ``palhdl bench`` compares: one row per arithmetic, each in its best implementation.

Every 8-bit MAC accumulates in the same scheme, the cost study's 32-bit wrapping window
(:data:`~palhdl.studies.cost_units.PAL8_COST`: 12 fraction bits where the format has
fractions, product terms in 14 bits), in the restarting stream MAC of the processing elements
(:class:`~palhdl.hdl.restart.RestartMac`); the 16-bit ones in bfloat16's 48-bit window. Each row
names the unit whose area is counted and, where one exists, its pipelined variant (a
three-segment accumulator, or ``pipelined=True``), whose Fmax is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from palhdl.hdl.baselines import BF16Mac
from palhdl.hdl.mac import PALMac
from palhdl.hdl.mxmac import MXFP8RestartMac, MXIntRestartMac
from palhdl.hdl.pe import PALTableMac
from palhdl.hdl.restart import FP8RestartMac, IntRestartMac
from palhdl.studies.cost_units import PAL8_COST, PAL16_COST, PIPELINED_SEGMENTS

__all__ = ["MACS", "BenchMac", "mac_keys"]

_FP8_WINDOW = {
    "acc_bits": PAL8_COST.acc_bits,
    "acc_frac_bits": PAL8_COST.acc_frac_bits,
    "term_bits": PAL8_COST.term_bits,
    "saturate": False,
}
_BF16_WINDOW = {
    "acc_bits": PAL16_COST.acc_bits,
    "acc_frac_bits": PAL16_COST.acc_frac_bits,
    "term_bits": PAL16_COST.term_bits,
    "saturate": False,
}


@dataclass(frozen=True)
class BenchMac:
    """One MAC of the benchmark.

    Attributes
    ----------
    key : str
        Short name (``"pal8"``, ``"int8"``, ...), the key of every section's results.
    title : str
        What the row is, for the report.
    unit : str
        The unit's name (class and parameters).
    build : callable
        Returns a fresh instance of the unit (area, energy).
    build_pipelined : callable or None
        Returns its pipelined variant (Fmax); ``None``: the unit itself is measured.
    accuracy : str
        The format the MAC computes, named as the accuracy study's
        :class:`~palhdl.studies.quantisation.Scheme` names it: its ``kind`` (``"int8"``,
        ``"fp8_e4m3"``, ``"mxint8"``, ...), or the PAL format's name (``"pal8"``); the energy
        section encodes each MAC's operands by it.
    """

    key: str
    title: str
    unit: str
    build: Callable[[], object]
    build_pipelined: Callable[[], object] | None
    accuracy: str


MACS: tuple[BenchMac, ...] = (
    BenchMac(
        "pal8",
        "pal8, block-RAM product-term table (W5)",
        "PALTableMac pal8 acc32/12 t14 wrap W5",
        lambda: PALTableMac(config=PAL8_COST),
        lambda: PALTableMac(config=PAL8_COST, segments=PIPELINED_SEGMENTS),
        "pal8",
    ),
    BenchMac(
        "pal8-block",
        "pal8, block-RAM product-term table (W5), block-scaled operands",
        "PALTableMac pal8 acc32/12 t14 wrap W5 block_scaled",
        lambda: PALTableMac(config=PAL8_COST, block_scaled=True),
        lambda: PALTableMac(config=PAL8_COST, block_scaled=True, segments=PIPELINED_SEGMENTS),
        "pal8",
    ),
    BenchMac(
        "pal8-logic",
        "pal8, product term in logic (W5)",
        "PALMac pal8 acc32/12 t14 wrap W5",
        lambda: PALMac(config=PAL8_COST),
        lambda: PALMac(config=PAL8_COST, pipelined=True),
        "pal8",
    ),
    BenchMac(
        "pal16",
        "pal16, product term in logic (W9)",
        "PALMac pal16 acc48/24 t24 wrap W9",
        lambda: PALMac(config=PAL16_COST),
        lambda: PALMac(config=PAL16_COST, pipelined=True),
        "pal16",
    ),
    BenchMac(
        "int8",
        "INT8",
        "IntRestartMac int8 acc32",
        IntRestartMac,
        lambda: IntRestartMac(segments=PIPELINED_SEGMENTS),
        "int8",
    ),
    BenchMac(
        "fp8",
        "FP8 E4M3",
        "FP8RestartMac e4m3 acc32/12 t14 wrap",
        lambda: FP8RestartMac(variant="e4m3", **_FP8_WINDOW),
        lambda: FP8RestartMac(variant="e4m3", segments=PIPELINED_SEGMENTS, **_FP8_WINDOW),
        "fp8_e4m3",
    ),
    BenchMac(
        "mxint8",
        "MXINT8, block-scale adder (operand offsets)",
        "MXIntRestartMac acc32/12 t14 wrap",
        lambda: MXIntRestartMac(**_FP8_WINDOW),
        lambda: MXIntRestartMac(segments=PIPELINED_SEGMENTS, **_FP8_WINDOW),
        "mxint8",
    ),
    BenchMac(
        "mxfp8",
        "MXFP8 E4M3, block-scale adder (operand offsets)",
        "MXFP8RestartMac e4m3 acc32/12 t14 wrap",
        lambda: MXFP8RestartMac(variant="e4m3", **_FP8_WINDOW),
        lambda: MXFP8RestartMac(variant="e4m3", segments=PIPELINED_SEGMENTS, **_FP8_WINDOW),
        "mxfp8_e4m3",
    ),
    BenchMac(
        "bf16",
        "BF16",
        "BF16Mac acc48/24 t24 wrap",
        lambda: BF16Mac(**_BF16_WINDOW),
        None,
        "bf16",
    ),
)


def mac_keys() -> tuple[str, ...]:
    """Return the keys of :data:`MACS`, in order."""
    return tuple(mac.key for mac in MACS)
