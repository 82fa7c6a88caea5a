"""The units of the cost study (``palhdl cost``): PAL units, PAL MACs and the baseline MACs.

Each :class:`Unit` is a name, a group and a function building a fresh elaboratable;
:mod:`palhdl.studies.cost` synthesizes them. The MAC configurations compared and the issue's
cost targets live here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from palhdl.format import FORMATS, MacConfig, pal8, pal16
from palhdl.hdl.baselines import BF16Mac, FP8Mac, IntMac
from palhdl.hdl.convert import (
    BFloat16ToPAL,
    FixedToPAL,
    Float32ToPAL,
    PALToBFloat16,
    PALToFloat32,
)
from palhdl.hdl.mac import PALMac, PALProductTerm
from palhdl.hdl.ops import PALAdder, PALMultiplier
from palhdl.hdl.pe import PALTableMac
from palhdl.hdl.readout import AccumulatorToFloat32, AccumulatorToPAL
from palhdl.hdl.restart import FP8RestartMac, IntRestartMac

__all__ = [
    "COST_TARGETS",
    "MAC_CLASSES",
    "MAC_CONFIGS",
    "PAL8_COST",
    "PAL16_COST",
    "PIPELINED_SEGMENTS",
    "SATURATING_ACC",
    "Unit",
    "baseline_units",
    "mac_label",
    "pal_mac_name",
    "pal_units",
    "window_label",
]

#: Windows of the saturating 32-bit comparison: 12 of the 32 bits are fraction bits.
#: Adaptive scaling (``MacConfig.scale_target``) then puts operand maxima at 2**3 for K = 4096
#: and the smallest resolved term is 2**-12, 18 octaves below the largest product.
SATURATING_ACC = (32, 12)

#: The cost-optimised pal8 MAC: a 32-bit wrapping accumulator like the int8 MAC's, product
#: terms in its low 14 bits (a 14-bit term window, as an int8 product's magnitude fills 14 bits
#: with headroom for K up to 2**17), a 5-bit mantissa table. Its rounding costs about 0.1 dB
#: SQNR on a Gaussian matmul (:func:`palhdl.studies.accuracy.mac_rounding_cost`).
PAL8_COST = MacConfig(
    pal8, mantissa_bits=5, acc_bits=32, acc_frac_bits=12, term_bits=14, saturate=False
)

#: The cost-optimised pal16 MAC: bfloat16's 48-bit window with 24-bit terms, wrapping, W = 9.
PAL16_COST = MacConfig(
    pal16, mantissa_bits=9, acc_bits=48, acc_frac_bits=24, term_bits=24, saturate=False
)

#: PAL MAC configurations of the study per format: the default (exact for pal8) accumulator,
#: the saturating 32-bit (pal8) window, and the cost-optimised one.
MAC_CONFIGS = {
    "pal8": [MacConfig(pal8), MacConfig(pal8, acc_bits=32, acc_frac_bits=12), PAL8_COST],
    "pal16": [MacConfig(pal16), PAL16_COST],
}


def window_label(acc_bits: int, acc_frac_bits: int, term_bits: int, saturate: bool) -> str:
    """``" acc32/12"``, plus ``" t14"`` for a term window and ``" wrap"`` when wrapping."""
    label = f" acc{acc_bits}/{acc_frac_bits}"
    if term_bits != acc_bits - 1:
        label += f" t{term_bits}"
    return label if saturate else label + " wrap"


def mac_label(config: MacConfig) -> str:
    """Return the row label of a PAL MAC configuration, e.g. ``" acc32/12 t14 wrap W5"``."""
    window = window_label(config.acc_bits, config.acc_frac_bits, config.term_bits, config.saturate)
    return f"{window} W{config.mantissa_bits}"


def pal_mac_name(config: MacConfig) -> str:
    """Return the row name of the PALMac of ``config`` (``"PALMac pal8 acc32/12 t14 wrap W5"``)."""
    return f"PALMac {config.fmt.name}{mac_label(config)}"


_FP8_COST = window_label(PAL8_COST.acc_bits, PAL8_COST.acc_frac_bits, 14, False)
_BF16_COST = window_label(PAL16_COST.acc_bits, PAL16_COST.acc_frac_bits, 24, False)

#: Issue targets: ``(PAL row, baseline row, largest iCE40 LUT4 ratio)``. The first three compare
#: the cost-optimised MACs with baselines of the same accumulator scheme; the last two the
#: saturating windows.
COST_TARGETS = [
    (f"PALTableMac pal8{mac_label(PAL8_COST)}", "IntRestartMac int8 acc32", 0.45),
    (f"PALTableMac pal8{mac_label(PAL8_COST)}", f"FP8RestartMac e4m3{_FP8_COST}", 0.5),
    (pal_mac_name(PAL8_COST), "IntMac int8 acc32", 0.7),
    (pal_mac_name(PAL8_COST), f"FP8Mac e4m3{_FP8_COST}", 0.6),
    (pal_mac_name(PAL16_COST), f"BF16Mac{_BF16_COST}", 0.5),
    (pal_mac_name(MAC_CONFIGS["pal8"][1]), "FP8Mac e4m3 acc32/12", 0.6),
    (pal_mac_name(MAC_CONFIGS["pal16"][0]), "BF16Mac acc48/24", 0.5),
]


#: Class names of the MAC rows (PAL and baseline): the rows ``--fmax`` places and routes.
MAC_CLASSES = (
    "PALMac",
    "PALTableMac",
    "IntMac",
    "IntRestartMac",
    "FP8Mac",
    "FP8RestartMac",
    "BF16Mac",
)

#: Accumulator segments of the pipelined restart MACs (a 32-bit window: three 10-11 bit carries).
PIPELINED_SEGMENTS = 3


@dataclass
class Unit:
    """One row of the study: a name, a group, and a function building a fresh elaboratable."""

    name: str
    group: str
    build: Callable[[], object]
    stats: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    #: Builds the pipelined variant, for units that have one and whose Fmax is studied.
    build_pipelined: Callable[[], object] | None = None

    @property
    def is_mac(self) -> bool:
        """A multiply-accumulate row (PAL or baseline): the rows ``--fmax`` places and routes."""
        return self.name.split()[0] in MAC_CLASSES


def pal_units(fmt_name: str) -> list[Unit]:
    """Return the PAL units of format ``fmt_name`` (``"pal8"``/``"pal16"``)."""
    fmt = FORMATS[fmt_name]
    specs = [
        (PALMultiplier, "arith", {"fmt": fmt}, ""),
        (PALAdder, "arith", {"fmt": fmt}, ""),
        (Float32ToPAL, "convert", {"fmt": fmt}, ""),
        (BFloat16ToPAL, "convert", {"fmt": fmt}, ""),
        (PALToFloat32, "convert", {"fmt": fmt}, ""),
        (PALToBFloat16, "convert", {"fmt": fmt}, ""),
        (FixedToPAL, "convert", {"fmt": fmt, "width": 16}, " int16"),
    ]
    readout_configs = [MacConfig(fmt), MacConfig(fmt, acc_bits=32, acc_frac_bits=12)]
    for config in readout_configs:
        label = f" acc{config.acc_bits}/{config.acc_frac_bits}"
        specs += [
            (AccumulatorToPAL, "convert", {"config": config}, label),
            (AccumulatorToFloat32, "convert", {"config": config}, label),
        ]
    for config in MAC_CONFIGS[fmt_name]:
        specs += [
            (PALProductTerm, "MAC", {"config": config}, mac_label(config)),
            (PALMac, "MAC", {"config": config}, mac_label(config)),
        ]
    units = [
        Unit(
            f"{cls.__name__} {fmt_name}{label}",
            group,
            lambda cls=cls, kw=kwargs: cls(**kw),
            build_pipelined=(lambda kw=kwargs: PALMac(**kw, pipelined=True))
            if cls is PALMac
            else None,
        )
        for cls, group, kwargs, label in specs
    ]
    if fmt_name == "pal8":
        # The block-RAM MAC: sign-magnitude table (one iCE40 EBR), signed table (ECP5).
        for signed, suffix in ((False, ""), (True, " signed")):
            kwargs = {"config": PAL8_COST, "signed": signed}
            units.append(
                Unit(
                    f"PALTableMac pal8{mac_label(PAL8_COST)}{suffix}",
                    "MAC",
                    lambda kw=kwargs: PALTableMac(**kw),
                    build_pipelined=lambda kw=kwargs: PALTableMac(
                        **kw, segments=PIPELINED_SEGMENTS
                    ),
                )
            )
    return units


def baseline_units() -> list[Unit]:
    """Return the baseline MACs, with the accumulators of the PAL MACs they are compared to."""
    acc, frac = SATURATING_ACC
    fp8 = {"acc_bits": PAL8_COST.acc_bits, "acc_frac_bits": PAL8_COST.acc_frac_bits}
    fp8 |= {"term_bits": PAL8_COST.term_bits, "saturate": False}
    bf16 = {"acc_bits": PAL16_COST.acc_bits, "acc_frac_bits": PAL16_COST.acc_frac_bits}
    bf16 |= {"term_bits": PAL16_COST.term_bits, "saturate": False}
    return [
        Unit("IntMac int8 acc32", "baseline", lambda: IntMac(width=8, acc_bits=32)),
        Unit(
            f"FP8Mac e4m3 acc{acc}/{frac}",
            "baseline",
            lambda: FP8Mac(variant="e4m3", acc_bits=acc, acc_frac_bits=frac),
        ),
        Unit(f"FP8Mac e4m3{_FP8_COST}", "baseline", lambda: FP8Mac(variant="e4m3", **fp8)),
        Unit(
            "IntRestartMac int8 acc32",
            "baseline",
            IntRestartMac,
            build_pipelined=lambda: IntRestartMac(segments=PIPELINED_SEGMENTS),
        ),
        Unit(
            f"FP8RestartMac e4m3{_FP8_COST}",
            "baseline",
            lambda: FP8RestartMac(variant="e4m3", **fp8),
            build_pipelined=lambda: FP8RestartMac(
                variant="e4m3", segments=PIPELINED_SEGMENTS, **fp8
            ),
        ),
        Unit(f"FP8Mac e5m2{_FP8_COST}", "baseline", lambda: FP8Mac(variant="e5m2", **fp8)),
        Unit("BF16Mac acc48/24", "baseline", lambda: BF16Mac(acc_bits=48, acc_frac_bits=24)),
        Unit(f"BF16Mac{_BF16_COST}", "baseline", lambda: BF16Mac(**bf16)),
    ]
