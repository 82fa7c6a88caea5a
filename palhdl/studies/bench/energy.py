"""``palhdl bench`` section ``energy``: a switched-capacitance proxy of the energy per MAC.

Open FPGA flows have no power analysis, so this section estimates dynamic energy from toggles.
Every MAC of :data:`~palhdl.studies.bench.macs.MACS` is synthesized to Yosys' generic CMOS
gates (:func:`palhdl.synth.toggles.gate_netlist`) and simulated at gate level with zero delay
(:func:`palhdl.synth.toggles.simulate_toggles`) on two operand streams, many independent
streams (lanes) at once: ``"mlp"``, the first layer of the digits MLP
(:func:`palhdl.demo.digits_mlp`: test images times the weight columns), and ``"gaussian"``,
standard normal data (:func:`palhdl.studies.quantisation.sample`). Each operand tensor is
quantised to the MAC's format as the accuracy study does: one power-of-two scale per tensor for
PAL (:func:`palhdl.sim.golden.quantize`) and FP8 (:func:`~palhdl.studies.quantisation.
pow2_scales`), a symmetric scale for INT8 (:func:`~palhdl.studies.quantisation.int8_roundtrip`),
none for BF16; block-scaled operands (a record with an ``offset``: pal8 block, MXINT8, MXFP8)
get one scale per 32 elements along each dot product (:func:`palhdl.sim.golden.quantize_blocks`
and :func:`~palhdl.sim.golden.block_offsets`; :func:`palhdl.sim.golden.mx.mx_quantize`), each
offset the octaves its block lies below the largest block of its row. Every simulated result is
compared with the golden model of its format. Each output toggle is weighted by its cell's
transistor count (Yosys' CMOS cost table); the sum per MAC is the proxy, reported also relative
to INT8 and FP8.
"""

from __future__ import annotations

import functools
import math

import ml_dtypes
import numpy as np
from amaranth.hdl import Fragment
from amaranth.lib import data

from palhdl.boards.platforms import get_board
from palhdl.demo import digits_mlp
from palhdl.hdl.layout import WordLayout
from palhdl.hdl.systolic import SystolicArray
from palhdl.sim import golden
from palhdl.sim.golden.baselines import FLOAT_FORMATS, float_mac, int_mac
from palhdl.sim.golden.mx import MX_BLOCK_SIZE, MX_FORMATS, mx_quantize
from palhdl.sim.golden.mxmac import mx_mac
from palhdl.sim.pysim import pack_payloads, unpack_payloads
from palhdl.studies.arrays import make_arithmetic
from palhdl.studies.bench.macs import MACS, BenchMac
from palhdl.studies.bench.options import BenchOptions
from palhdl.studies.quantisation import int8_roundtrip, pow2_scales, sample
from palhdl.synth.toggles import gate_netlist, simulate_toggles

__all__ = [
    "ARRAY_ARITHMETICS",
    "ARRAY_BOARD",
    "ARRAY_SHAPE",
    "ARRAY_SIZES",
    "BASELINES",
    "CITATIONS",
    "DOT_LENGTH",
    "METHOD",
    "QUICK_MACS",
    "SIZES",
    "STREAMS",
    "measure",
    "render",
]

#: The MACs of a quick run.
QUICK_MACS = ("pal8", "int8", "fp8")
#: The operand streams, with their titles.
STREAMS = {
    "mlp": "digits MLP, first layer (test images x weights)",
    "gaussian": "standard normal operands",
}
#: Pairs per dot product (the digits MLP's 64 inputs).
DOT_LENGTH = 64
#: ``(lanes, dot products per lane)`` of a quick and of a full run.
SIZES = {True: (64, 1), False: (256, 8)}
#: The providers of the gate-level arrays, with the accuracy-study format of each.
ARRAY_ARITHMETICS = {"pal8": "pal8", "int8": "int8", "fp8": "fp8_e4m3"}
#: ``(rows, cols)`` of the arrays; the board whose PAL provider (its PE's term) they use.
ARRAY_SHAPE = (2, 2)
ARRAY_BOARD = "icebreaker"
#: ``(lanes, tiles per lane)`` of the arrays in a quick and a full run.
ARRAY_SIZES = {True: (32, 1), False: (128, 4)}
#: The baselines every MAC is compared with.
BASELINES = ("int8", "fp8")

METHOD = (
    "Each MAC is synthesized to Yosys' generic CMOS gates (`synth -flatten; dffunmap; "
    "abc -g cmos2`: NAND, NOR, NOT and flip-flops) and simulated cycle by cycle at gate level "
    "on {lanes} independent streams of {dots} back-to-back {length}-term dot product(s), one "
    "operand pair per cycle, after one reset cycle; operands are scaled per tensor (PAL, FP8: "
    "powers of two; INT8: symmetric), BF16 unscaled, block-scaled MACs per 32-element block. "
    "Every transition of a cell's output is "
    "weighted by the cell's transistor count in Yosys' CMOS cost table (`stat -tech cmos`: "
    "NOT 2, NAND/NOR 4, flip-flop 16) as a stand-in for its switched capacitance; the sum over "
    "all cycles (the pipeline drained) divided by the MACs is the figure per MAC, and the "
    "ratios are per stream. It is a proxy, not a power analysis: no wire or fan-out load, no "
    "clock-tree or flip-flop clock-pin power, no leakage, and no glitches (zero gate delay, "
    "each net toggles at most once per cycle). The block-RAM product-term table of the pal8 "
    "table MAC becomes gates in this flow (a ROM of logic), not a RAM macro; so do the tables "
    "of the {array} pal8 array's PEs (the {board} board's PE). The arrays run {array_lanes} "
    "streams of {tiles} {length}-deep tile(s) each."
)

CITATIONS = (
    "Johnson, J. (2018). Rethinking floating point for deep learning. Systems for ML "
    "Workshop, NeurIPS 2018 (arXiv:1811.01721): the 8/38-bit ELMA log multiply-add, "
    "synthesized and power-profiled at 28 nm, takes 0.96x the power (1.12x the area) of an "
    "8/32-bit integer multiply-add; in 16 bits 0.59x the power of an IEEE float16 FMA.",
    "Zhao, J., Dai, S., Venkatesan, R., Zimmer, B., Ali, M., Liu, M.-Y., Khailany, B., "
    "Dally, W. J., Anandkumar, A. (2022). LNS-Madam: Low-precision training in logarithmic "
    "number system using multiplicative weight update. IEEE Transactions on Computers "
    "(arXiv:2106.13914): their LNS training hardware uses about 55% less energy than FP8 "
    "(over 90% less than FP32).",
)

_FIELDS = {"a", "b", "last"}
_OPTIONAL_FIELDS = {"first"}
_PORTS = {"i__payload", "i__valid", "o__ready", "rst"}


def _pal_codes(x: np.ndarray, unit) -> np.ndarray:
    codes, _ = golden.quantize(x, unit.config.fmt, per="tensor")
    return codes


def _int8_codes(x: np.ndarray, unit) -> np.ndarray:
    peak = np.max(np.abs(x))
    if peak == 0:
        return np.zeros(x.shape, dtype=np.int64)
    return np.rint(int8_roundtrip(x, "tensor") * (127 / peak)).astype(np.int64)


def _fp8_codes(x: np.ndarray, unit) -> np.ndarray:
    dtype = ml_dtypes.float8_e4m3fn
    shift = pow2_scales(x, "tensor", float(ml_dtypes.finfo(dtype).max))
    return np.ldexp(x, shift).astype(np.float32).astype(dtype).view(np.uint8).astype(np.int64)


def _bf16_codes(x: np.ndarray, unit) -> np.ndarray:
    return x.astype(np.float32).astype(ml_dtypes.bfloat16).view(np.uint16).astype(np.int64)


def _pal_golden(a, b, unit) -> np.ndarray:
    return np.array([golden.dot(x, y, unit.config).acc for x, y in zip(a, b, strict=True)])


def _int8_golden(a, b, unit) -> np.ndarray:
    return int_mac(a, b, width=8, acc_bits=unit.accumulator.acc_bits)


def _float_golden(variant: str):
    def run(a, b, unit) -> np.ndarray:
        window = unit.accumulator
        return float_mac(
            a,
            b,
            FLOAT_FORMATS[variant],
            acc_bits=window.acc_bits,
            acc_frac_bits=window.acc_frac_bits,
            term_bits=window.term_bits,
            saturate=window.saturate,
        ).acc

    return run


def _pal_block_codes(x: np.ndarray, unit) -> dict:
    fmt = unit.config.fmt
    codes, scales = golden.quantize_blocks(x, fmt, per="row", block_size=MX_BLOCK_SIZE)
    offsets, _ = golden.block_offsets(
        scales, fmt, per="row", block_size=MX_BLOCK_SIZE, k=x.shape[1]
    )
    return {"word": codes, "offset": offsets, "scales": scales}


def _pal_block_golden(a: dict, b: dict, unit) -> np.ndarray:
    return np.array(
        [
            golden.matmul(
                a["word"][i][None, :],
                b["word"][i][:, None],
                unit.config,
                a_scales=a["scales"][i][None, :],
                b_scales=b["scales"][i][:, None],
                block_size=MX_BLOCK_SIZE,
            ).acc[0, 0]
            for i in range(len(a["word"]))
        ]
    )


def _mx_codes(kind: str):
    def run(x: np.ndarray, unit) -> dict:
        elements, scales = mx_quantize(x, MX_FORMATS[kind], per="row", block_size=MX_BLOCK_SIZE)
        octaves = scales.astype(np.int64)
        below = octaves.max(axis=1, keepdims=True) - octaves  # under the row's largest block
        offsets = np.repeat(below, MX_BLOCK_SIZE, axis=1)[:, : x.shape[1]]
        return {"element": elements.astype(np.int64), "offset": offsets}

    return run


def _mx_golden(kind: str):
    def run(a: dict, b: dict, unit) -> np.ndarray:
        window = unit.accumulator
        return mx_mac(
            a["element"],
            b["element"],
            MX_FORMATS[kind],
            a_offsets=a["offset"],
            b_offsets=b["offset"],
            acc_bits=window.acc_bits,
            acc_frac_bits=window.acc_frac_bits,
            term_bits=window.term_bits,
            saturate=window.saturate,
        ).acc

    return run


#: Block-scaled formats: ``(accuracy format, operand record fields)`` to the operand fields
#: (plus any golden-model extras) of a float tensor's rows, and the golden accumulators.
_BLOCK_FORMATS = {
    ("pal8", ("offset", "word")): (_pal_block_codes, _pal_block_golden),
    ("mxint8", ("element", "offset")): (_mx_codes("mxint8"), _mx_golden("mxint8")),
    ("mxfp8_e4m3", ("element", "offset")): (_mx_codes("mxfp8_e4m3"), _mx_golden("mxfp8_e4m3")),
}


#: Per accuracy-study format (:attr:`BenchMac.accuracy`): the operand bit patterns of a float
#: tensor, and the golden model's accumulator of each dot product (rows of bit patterns).
_FORMATS = {
    "pal8": (_pal_codes, _pal_golden),
    "pal16": (_pal_codes, _pal_golden),
    "int8": (_int8_codes, _int8_golden),
    "fp8_e4m3": (_fp8_codes, _float_golden("e4m3")),
    "bf16": (_bf16_codes, _float_golden("bf16")),
}


@functools.cache
def _mlp_layer(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the digits MLP's test images ``(N, 64)`` and first weights ``(64, 32)``."""
    images, _, (weights, *_) = digits_mlp(seed)
    return images, weights


def _operand_codes(stream: str, encode, unit, count: int, seed: int):
    """Return ``count`` encoded operand rows ``(a, b)`` of :data:`DOT_LENGTH` for ``stream``.

    ``"mlp"``: rows of the test images and columns of the first weight matrix, the dot
    products chosen at random (without repetition while there are enough); the images and the
    weights are each one tensor for the scale. ``"gaussian"``: two standard normal tensors.
    """
    if stream == "gaussian":
        return tuple(
            encode(sample("gaussian", (count, DOT_LENGTH), seed + side), unit) for side in (0, 1)
        )
    images, weights = _mlp_layer(seed)
    pairs = images.shape[0] * weights.shape[1]
    chosen = np.random.default_rng(seed).choice(pairs, size=count, replace=count > pairs)
    rows, columns = np.divmod(chosen, weights.shape[1])
    return _take(encode(images, unit), rows), _take(encode(weights.T, unit), columns)


def _take(operands, rows):
    """Select rows of encoded operands: an array, or a dict of arrays (block-scaled)."""
    if isinstance(operands, dict):
        return {name: value[rows] for name, value in operands.items()}
    return operands[rows]


def _record_fields(unit) -> tuple[str, ...]:
    """Return the sorted fields of the MAC's operand record, ``()`` for a plain operand."""
    shape = unit.i.payload.shape().members["a"]
    if isinstance(shape, data.StructLayout) and not isinstance(shape, WordLayout):
        return tuple(sorted(shape.members))
    return ()


def _format(mac: BenchMac, unit):
    """Return ``(encode, golden)`` for ``mac``, or a string: why the driver cannot feed it."""
    if not hasattr(unit, "i") or not hasattr(unit, "o"):
        return "not a stream MAC with ports i and o"
    layout = unit.i.payload.shape()
    fields = set(layout.members) if isinstance(layout, data.StructLayout) else set()
    if _FIELDS - fields or fields - _FIELDS - _OPTIONAL_FIELDS:
        return f"input fields {sorted(fields)} are not a, b, last (and first)"
    record = _record_fields(unit)
    if record:
        found = _BLOCK_FORMATS.get((mac.accuracy, record))
        return found or f"no encoding for {mac.accuracy!r} operands with fields {list(record)}"
    return _FORMATS.get(mac.accuracy) or f"no operand encoding for format {mac.accuracy!r}"


def _stimulus(unit, a_codes, b_codes, lanes: int, dots: int) -> dict:
    """Input ports: each lane runs ``dots`` dot products, then drains the pipeline."""
    pairs = dots * DOT_LENGTH

    def per_lane(operands):  # rows (lanes * dots, DOT_LENGTH) -> (pairs, lanes)
        if isinstance(operands, dict):  # a record: its fields (not the golden model's extras)
            return {name: per_lane(operands[name]) for name in _record_fields(unit)}
        return operands.reshape(lanes, pairs).T

    position = np.arange(pairs)[:, None] % DOT_LENGTH
    fields = {"a": per_lane(a_codes), "b": per_lane(b_codes)}
    fields["last"] = np.broadcast_to(position == DOT_LENGTH - 1, (pairs, lanes)).astype(int)
    if "first" in unit.i.payload.shape().members:
        fields["first"] = np.broadcast_to(position == 0, (pairs, lanes)).astype(int)
    drain = getattr(unit, "latency", 4) + 2
    idle = np.zeros((drain, lanes), dtype=object)
    payload = np.concatenate([pack_payloads(unit.i.payload.shape(), fields), idle])
    valid = np.concatenate([np.ones((pairs, lanes), int), np.zeros((drain, lanes), int)])
    return {"i__payload": payload, "i__valid": valid, "o__ready": np.ones_like(valid)}


def _measure_mac(mac: BenchMac, unit, netlist, coding, lanes: int, dots: int, seed, progress):
    entry = {
        "title": mac.title,
        "unit": mac.unit,
        "transistors": netlist.transistors,
        "cells": len(netlist.cell_types),
        "streams": {},
    }
    for stream in STREAMS:
        progress(f"energy: {mac.key} on the {stream} stream ({lanes} lanes x {dots} dots)")
        encode, reference = coding
        a, b = _operand_codes(stream, encode, unit, lanes * dots, seed)
        result = simulate_toggles(netlist, _stimulus(unit, a, b, lanes, dots))
        got = _accumulators(unit, result.outputs, lanes, dots)
        macs = lanes * dots * DOT_LENGTH
        entry["streams"][stream] = {
            "macs": macs,
            "golden_mismatches": int(np.count_nonzero(got != reference(a, b, unit))),
            "toggles_per_mac": round(result.toggles / macs, 2),
            "weighted_toggles_per_mac": round(result.weighted_toggles / macs, 2),
        }
    return entry


def _accumulators(unit, outputs: dict, lanes: int, dots: int) -> np.ndarray:
    """Return each dot product's ``acc`` from the simulated outputs, in operand-row order."""
    valid = outputs["o__valid"].astype(bool)
    if not (valid == valid[:, :1]).all() or valid[:, 0].sum() != dots:
        raise RuntimeError(f"the lanes do not each give {dots} results in step")
    raw = outputs["o__payload"][valid[:, 0]].T.reshape(lanes * dots)
    return unpack_payloads(unit.o.payload.shape(), raw.astype(object))["acc"]


def _array_stimulus(array, a_rows, b_cols, lanes: int, tiles: int) -> dict:
    """Input ports: each lane streams ``tiles`` tiles of K = :data:`DOT_LENGTH` beats."""
    rows, cols = array.rows, array.cols
    beats = tiles * DOT_LENGTH

    def per_beat(codes, count):  # (lanes * tiles * count, K) -> (beats, lanes, count)
        return (
            codes.reshape(lanes, tiles, count, DOT_LENGTH)
            .transpose(1, 3, 0, 2)
            .reshape(beats, lanes, count)
        )

    last = (np.arange(beats) % DOT_LENGTH == DOT_LENGTH - 1)[:, None].astype(int)
    a = pack_payloads(array.a.payload.shape(), {"data": per_beat(a_rows, rows), "last": last})
    b = pack_payloads(array.b.payload.shape(), {"data": per_beat(b_cols, cols)})
    drain = array.latency + 2 * rows + 2
    idle = np.zeros((drain, lanes), dtype=object)
    valid = np.concatenate([np.ones((beats, lanes), int), np.zeros((drain, lanes), int)])
    return {
        "a__payload": np.concatenate([a, idle]),
        "a__valid": valid,
        "b__payload": np.concatenate([b, idle]),
        "b__valid": valid,
        "c__ready": np.ones_like(valid),
    }


def _array_mismatches(array, outputs, a_rows, b_cols, lanes: int, tiles: int) -> int:
    """Count the result lanes that differ from the provider's golden matmul."""
    rows, cols = array.rows, array.cols
    valid = outputs["c__valid"].astype(bool)
    beats = tiles * DOT_LENGTH
    if not outputs["a__ready"][:beats].all() or (valid.sum(axis=0) != tiles * rows).any():
        raise RuntimeError("the array stalled its input or lost results")
    raw = outputs["c__payload"][valid[:, 0]].T.reshape(lanes, tiles, rows)
    got = unpack_payloads(array.c.payload.shape(), raw.astype(object))["data"]["acc"]
    a = a_rows.reshape(lanes, tiles, rows, DOT_LENGTH)
    b = b_cols.reshape(lanes, tiles, cols, DOT_LENGTH)
    zeros_a, zeros_b = np.zeros(rows, dtype=int), np.zeros(cols, dtype=int)
    wrong = 0
    for lane, tile in np.ndindex(lanes, tiles):
        expected = array.arithmetic.golden_matmul(
            a[lane, tile], b[lane, tile].T, a_scales=zeros_a, b_scales=zeros_b, mode="raw"
        )["acc"]
        wrong += int(np.count_nonzero(got[lane, tile] != expected))
    return wrong


def _measure_array(name: str, lanes: int, tiles: int, seed: int, progress) -> dict:
    rows, cols = ARRAY_SHAPE
    arithmetic = make_arithmetic(name, get_board(ARRAY_BOARD))
    array = SystolicArray(arithmetic=arithmetic, rows=rows, cols=cols)
    progress(f"energy: synthesizing the {rows}x{cols} {name} array to CMOS gates")
    netlist = gate_netlist(array)
    entry = {
        "title": f"{rows}x{cols} {name} systolic array"
        + (f" ({ARRAY_BOARD} PE)" if name == "pal8" else ""),
        "transistors": netlist.transistors,
        "cells": len(netlist.cell_types),
        "streams": {},
    }
    encode, _ = _FORMATS[ARRAY_ARITHMETICS[name]]
    for stream in STREAMS:
        progress(f"energy: {name} array on the {stream} stream ({lanes} lanes x {tiles} tiles)")
        a, b = _operand_codes(stream, encode, arithmetic, lanes * tiles * max(rows, cols), seed)
        a, b = a[: lanes * tiles * rows], b[: lanes * tiles * cols]
        result = simulate_toggles(netlist, _array_stimulus(array, a, b, lanes, tiles))
        macs = lanes * tiles * rows * cols * DOT_LENGTH
        entry["streams"][stream] = {
            "macs": macs,
            "golden_mismatches": _array_mismatches(array, result.outputs, a, b, lanes, tiles),
            "toggles_per_mac": round(result.toggles / macs, 2),
            "weighted_toggles_per_mac": round(result.weighted_toggles / macs, 2),
        }
    return entry


def _ratios(macs: dict) -> dict:
    """Per stream, and their geometric mean, of each MAC's figure over the baselines'."""
    relative = {}
    for key, entry in macs.items():
        means = {}
        for base in BASELINES:
            if base not in macs:
                continue
            ratios = []
            for stream, figures in entry["streams"].items():
                theirs = macs[base]["streams"][stream]["weighted_toggles_per_mac"]
                ratio = figures["weighted_toggles_per_mac"] / theirs
                figures[f"vs_{base}"] = round(ratio, 3)
                ratios.append(ratio)
            means[base] = round(math.prod(ratios) ** (1 / len(ratios)), 3)
        relative[key] = means
    return relative


def measure(options: BenchOptions) -> dict:
    """Simulate every MAC's gate netlist on both streams; return the section's data.

    A quick run measures :data:`QUICK_MACS` on 64 lanes of one dot product each (4,096 MACs per
    stream); a full run every MAC on 256 lanes of 8 (131,072 MACs per stream). The arrays
    (:data:`ARRAY_SIZES`) run 32 lanes of one tile (quick) or 128 of 4 (full).

    Returns
    -------
    dict
        JSON-ready: ``"method"`` (text); ``"lanes"``, ``"dots_per_lane"``, ``"dot_length"``;
        ``"macs"``: ``{key: {"title", "unit", "transistors", "cells", "streams": {stream:
        {"macs", "golden_mismatches", "toggles_per_mac", "weighted_toggles_per_mac", "vs_int8",
        "vs_fp8"}}}}``, where ``golden_mismatches`` counts the dot products whose gate-level
        accumulator differs from the golden model's (0 when the netlist computes correctly);
        ``"relative"``: ``{key: {"int8": x, "fp8": x}}``, the geometric mean over the streams
        of the weighted toggles per MAC over the baseline's; ``"citations"``: published
        figures (text); ``"skipped"``: ``{key: reason}`` for MACs the driver cannot feed;
        ``"arrays"``: ``{provider: {...}}`` as ``"macs"`` for the :data:`ARRAY_SHAPE` systolic
        arrays of :data:`ARRAY_ARITHMETICS` (``macs`` counts every PE's MACs), and
        ``"arrays_relative"`` as ``"relative"``.
    """
    lanes, dots = SIZES[options.quick]
    chosen = [mac for mac in MACS if not options.quick or mac.key in QUICK_MACS]
    macs, skipped = {}, {}
    for mac in chosen:
        unit = mac.build()
        coding = _format(mac, unit)
        if isinstance(coding, str):
            reason = coding
            Fragment.get(unit, None)  # elaborated, so Amaranth does not warn it went unused
            skipped[mac.key] = reason
            options.progress(f"energy: {mac.key} not measured: {reason}")
            continue
        options.progress(f"energy: synthesizing {mac.key} to CMOS gates")
        netlist = gate_netlist(unit)
        if set(netlist.inputs) != _PORTS:
            skipped[mac.key] = f"input ports {sorted(netlist.inputs)} are not {sorted(_PORTS)}"
            continue
        macs[mac.key] = _measure_mac(
            mac, unit, netlist, coding, lanes, dots, options.seed, options.progress
        )
    lanes_a, tiles = ARRAY_SIZES[options.quick]
    arrays = {
        name: _measure_array(name, lanes_a, tiles, options.seed, options.progress)
        for name in ARRAY_ARITHMETICS
    }
    return {
        "method": METHOD.format(
            lanes=lanes,
            dots=dots,
            length=DOT_LENGTH,
            array="x".join(map(str, ARRAY_SHAPE)),
            board=ARRAY_BOARD,
            array_lanes=lanes_a,
            tiles=tiles,
        ),
        "lanes": lanes,
        "dots_per_lane": dots,
        "dot_length": DOT_LENGTH,
        "macs": macs,
        "relative": _ratios(macs),
        "arrays": arrays,
        "arrays_relative": _ratios(arrays),
        "citations": list(CITATIONS),
        "skipped": skipped,
    }


def _cell(value, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def _check_line(data: dict) -> str:
    groups = {"MAC": data["macs"], "array": data.get("arrays", {})}
    wrong = [
        f"{key} {noun} on {stream}: {figures['golden_mismatches']}"
        for noun, entries in groups.items()
        for key, entry in entries.items()
        for stream, figures in entry["streams"].items()
        if figures.get("golden_mismatches")
    ]
    if wrong:
        return f"Results whose gate-level value differs from the golden model: {wrong}."
    return (
        "Every gate-level accumulator (each MAC's dot products, each array's tiles) equals the "
        "golden model's."
    )


def _tables(entries: dict, noun: str) -> list[str]:
    lines = []
    for stream, title in STREAMS.items():
        rows = [entry for entry in entries.values() if stream in entry["streams"]]
        if not rows:
            continue
        count = rows[0]["streams"][stream]["macs"]
        lines += [
            f"Stream `{stream}`: {title}, {count:,} MACs per unit.",
            "",
            f"| {noun} | transistors | toggles/MAC | weighted toggles/MAC | ×INT8 | ×FP8 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for entry in rows:
            figures = entry["streams"][stream]
            cells = [
                entry["title"],
                f"{entry['transistors']:,}",
                _cell(figures["toggles_per_mac"]),
                _cell(figures["weighted_toggles_per_mac"]),
                _cell(figures.get("vs_int8"), 2, "x"),
                _cell(figures.get("vs_fp8"), 2, "x"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def render(data: dict) -> list[str]:
    """Return the section's Markdown: tables per stream, the method, the published figures."""
    lines = _tables(data["macs"], "MAC")
    if data.get("arrays"):
        lines += [
            "Small arrays (output-stationary systolic, operands entering skewed, results "
            "drained through the shadow registers; ratios against the INT8 and FP8 arrays):",
            "",
            *_tables(data["arrays"], "array"),
        ]
    lines += [f"Method: {data['method']}", "", _check_line(data), ""]
    if data["skipped"]:
        skipped = "; ".join(f"{key}: {reason}" for key, reason in data["skipped"].items())
        lines += [f"Not measured: {skipped}.", ""]
    lines += ["Published figures (measured by their authors, not here):", ""]
    lines += [f"- {citation}" for citation in data["citations"]]
    return lines
