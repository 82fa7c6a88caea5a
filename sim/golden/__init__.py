"""Bit-exact numpy golden model of the PAL format family.

Pure functions over integer code arrays; the format (and, for the MAC, a
:class:`~palhdl.format.MacConfig`) is always passed explicitly and nothing is cached but the
shared tables. The specification these functions implement is ``docs/format.md``; the RTL in
``palhdl.hdl`` matches them bit for bit. The modules pair with the gateware's:

* :mod:`~palhdl.sim.golden.convert`: encode, decode, fixed-point and IEEE bit conversions.
* :mod:`~palhdl.sim.golden.ops`: mul, div, add, sub, neg, abs_, compare.
* :mod:`~palhdl.sim.golden.scaling`: power-of-two scales (per tensor, row, column or block)
  and quantisation.
* :mod:`~palhdl.sim.golden.mac`: MAC terms, matmul, dot and their :class:`MacResult` readouts.
* :mod:`~palhdl.sim.golden.split`: the adaptive split, :func:`choose_split`.
* :mod:`~palhdl.sim.golden.baselines`: the INT8/FP8/BF16 baseline MACs.
* :mod:`~palhdl.sim.golden.mx`: the OCP MX baselines (MXINT8, MXFP8 E4M3/E5M2).
* :mod:`~palhdl.sim.golden.bits`: argument checks and integer helpers they share.

Everything public in the first five and :func:`check_codes` is re-exported here, so
``from palhdl.sim import golden; golden.encode(...)`` reaches it.

Conventions
-----------
* A *code* array holds PAL words as unsigned integers (any integer dtype; results use
  ``fmt.code_dtype``). Codes outside ``[0, 2**fmt.width)`` raise ``ValueError``.
* Every operation rounds to nearest in the log domain; ties cannot occur (see the docs).
* Results beyond the largest magnitude saturate to ``+-max``; results whose rounded log falls
  below ``E = 1`` flush to ``+0``. NaN propagates.
"""

from __future__ import annotations

from palhdl.sim.golden.bits import check_codes
from palhdl.sim.golden.convert import (
    decode,
    encode,
    from_bfloat16_bits,
    from_fixed,
    from_float32_bits,
    to_bfloat16_bits,
    to_float32_bits,
)
from palhdl.sim.golden.mac import (
    MAX_SCALE,
    MacResult,
    check_mac_config,
    dot,
    mac_terms,
    matmul,
    matmul_values,
    quantize_operands,
    term_table,
)
from palhdl.sim.golden.ops import UNORDERED, abs_, add, compare, div, mul, neg, sub
from palhdl.sim.golden.scaling import (
    block_offsets,
    choose_block_scales,
    choose_scales,
    quantize,
    quantize_blocks,
)
from palhdl.sim.golden.split import SplitChoice, choose_split, split_candidates

__all__ = [
    "MAX_SCALE",
    "UNORDERED",
    "MacResult",
    "SplitChoice",
    "abs_",
    "add",
    "block_offsets",
    "check_codes",
    "check_mac_config",
    "choose_block_scales",
    "choose_scales",
    "choose_split",
    "compare",
    "decode",
    "div",
    "dot",
    "encode",
    "from_bfloat16_bits",
    "from_fixed",
    "from_float32_bits",
    "mac_terms",
    "matmul",
    "matmul_values",
    "mul",
    "neg",
    "quantize",
    "quantize_blocks",
    "quantize_operands",
    "split_candidates",
    "sub",
    "term_table",
    "to_bfloat16_bits",
    "to_float32_bits",
]
