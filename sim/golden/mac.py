"""Multiply-accumulate: PAL products summed exactly into a linear fixed-point accumulator.

``docs/format.md`` sections 8 to 10. The gateware counterparts are in :mod:`palhdl.hdl.mac` and
:mod:`palhdl.hdl.systolic`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from palhdl.format import MacConfig, PALFormat
from palhdl.sim.golden import linear
from palhdl.sim.golden.bits import (
    binary_fields,
    bit_length,
    check_codes,
    check_floats,
    check_fmt,
    check_offsets,
    pack,
    round_shift_right,
)
from palhdl.sim.golden.convert import FLOAT32, FLOAT64, ieee_bits, log_round
from palhdl.sim.golden.scaling import block_count, block_offsets, quantize, quantize_blocks
from palhdl.tables import mantissa_table
from palhdl.validate import check_bool, check_choice, check_instance, check_int

__all__ = [
    "MAX_SCALE",
    "MacResult",
    "check_mac_config",
    "dot",
    "mac_terms",
    "matmul",
    "matmul_values",
    "quantize_operands",
    "term_table",
]


_METHODS = ("auto", "loop")

#: Largest magnitude of a scale :func:`matmul` takes (``a_scales``, ``b_scales``): ``2**31 - 1``
#: octaves, far beyond any scale :func:`~palhdl.sim.golden.quantize` chooses, and small enough
#: that a row's and a column's scale add and read out (:class:`MacResult`) without overflowing
#: int64.
MAX_SCALE = (1 << 31) - 1


def check_mac_config(config) -> MacConfig:
    """Validate a :class:`~palhdl.format.MacConfig` argument named ``config``."""
    return check_instance("config", config, MacConfig, "palhdl.format.MacConfig(pal8)")


def mac_terms(a, b, config: MacConfig, *, offset=0):
    """Compute the signed accumulator terms of the products ``a * b`` (elementwise, broadcast).

    Returns ``(term, nan, overflow)``: ``term`` is the int64 value the product adds to the
    accumulator, ``+-round(m * 2**shift)`` with ``m`` from the mantissa table, rounded half away
    from zero when ``shift < 0``; a term whose magnitude exceeds ``term_max`` flags ``overflow``
    and is clamped to ``+-acc_max`` (``config.saturate``) or dropped (0, wrapping);
    ``nan`` marks NaN operands; zero operands give 0.

    ``offset`` (integers ``>= 0``, in log units of ``2**-F``, broadcast with ``a`` and ``b``)
    lowers each product's log sum: a block-scaled product (``docs/format.md`` section 11) whose
    magnitude fields' sum ``Ea + Eb - offset`` is negative is flushed to a zero term (no
    overflow; ``nan`` still flagged); any other gets exactly the term of the lowered log sum.
    """
    config = check_mac_config(config)
    fmt = config.fmt
    (sa, la, za, na), (sb, lb, zb, nb) = binary_fields(a, b, fmt)
    offset = check_offsets("offset", offset)
    log = la + lb - offset
    flushed = log < -2 * fmt.bias
    log = np.maximum(log, -2 * fmt.bias)
    octave = log >> fmt.frac_bits
    mantissa = mantissa_table(fmt.frac_bits, config.mantissa_bits)[log & (fmt.units - 1)]
    shift = config.shift(octave)
    headroom = config.term_bits - bit_length(mantissa)
    too_big = shift > headroom
    left = mantissa << np.clip(shift, 0, 62)
    right = round_shift_right(mantissa, np.maximum(-shift, 0))
    magnitude = np.where(shift >= 0, left, right)
    overflow = too_big | (magnitude > config.term_max)
    magnitude = np.where(overflow, config.acc_max if config.saturate else 0, magnitude)
    nonzero = ~(za | zb | na | nb | flushed)
    term = np.where(nonzero, np.where(sa ^ sb, -magnitude, magnitude), 0)
    return term, na | nb, overflow & nonzero


def term_table(config: MacConfig, *, signed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Tabulate the product terms by the sum of the operands' log fields (``docs/format.md`` §8).

    A product's term depends only on ``S = Ea + Eb - offset`` (the magnitude fields of two
    nonzero, non-NaN operands, ``1 <= Ea, Eb <= mag_mask``, lowered by a block-scaling
    ``offset``, see :func:`mac_terms`) and, when ``signed``, on the product's sign. This is the
    contents of the block-RAM product term of :mod:`palhdl.hdl.pe`.

    Parameters
    ----------
    config : MacConfig
        Operand format and accumulator window.
    signed : bool
        ``False``: entry ``S`` is the term of a positive product. ``True``: the table has twice
        the entries; entry ``S + 2**(mag_bits + 1)`` is the term of a negative product.

    Returns
    -------
    term, overflow : ndarray of int64, ndarray of bool
        ``2**(mag_bits + 1)`` entries (twice that when ``signed``): the term and its overflow
        flag, exactly :func:`mac_terms` of two operands and an offset with
        ``Ea + Eb - offset = S``. The last entry, ``S = 2**(mag_bits + 1) - 1``, which no
        operand pair reaches and a zero or NaN operand reads, holds a zero term without
        overflow.
    """
    config = check_mac_config(config)
    fmt = config.fmt
    sums = np.arange(1 << (fmt.mag_bits + 1), dtype=np.int64)
    a = np.clip(sums - 1, 1, fmt.mag_mask)
    b = np.clip(sums - a, 1, fmt.mag_mask)
    offset = a + b - sums
    reachable = offset >= 0
    offset = np.maximum(offset, 0)
    signs = (0, fmt.sign_mask) if signed else (0,)
    terms, overflows = [], []
    for sign in signs:
        term, _, overflow = mac_terms(a | sign, b, config, offset=offset)
        terms.append(np.where(reachable, term, 0))
        overflows.append(reachable & overflow)
    return np.concatenate(terms), np.concatenate(overflows)


@dataclass(frozen=True)
class MacResult:
    """Accumulators of a matmul/dot, with flags and output scales.

    The real value of an entry is ``acc * 2**-(config.acc_frac_bits + scale_exp)``.

    Attributes
    ----------
    acc : ndarray of int64
        Raw two's-complement accumulator values, in ``[config.acc_min, config.acc_max]``.
    nan : ndarray of bool
        A NaN operand reached this accumulator (sticky).
    overflow : ndarray of bool
        The accumulator (or a single term) overflowed: saturated, or wrapped (sticky).
    scale_exp : ndarray of int64
        Output scale octaves (``a_scale[i] + b_scale[j]``), broadcast to ``acc.shape``.
    config : MacConfig
        The configuration the accumulators were computed with.
    """

    acc: np.ndarray
    nan: np.ndarray
    overflow: np.ndarray
    scale_exp: np.ndarray
    config: MacConfig

    def _exp2(self) -> np.ndarray:
        return -(self.config.acc_frac_bits + self.scale_exp)

    def to_float32_bits(self) -> np.ndarray:
        """Read out correctly rounded float32 bit patterns (RNE; NaN flag gives ``0x7fc00000``)."""
        return self._to_ieee(FLOAT32).astype(np.uint32)

    def to_float32(self) -> np.ndarray:
        """Read out float32 values (:meth:`to_float32_bits` viewed as float32)."""
        return self.to_float32_bits().view(np.float32)

    def to_float64(self) -> np.ndarray:
        """Read out correctly rounded float64 values (convenience for error measurement)."""
        return self._to_ieee(FLOAT64).view(np.float64)

    def _to_ieee(self, ieee) -> np.ndarray:
        magnitude = np.maximum(np.abs(self.acc), 1)
        bits = ieee_bits(self.acc < 0, magnitude, self._exp2(), False, ieee)
        man_bits, exp_bits = ieee
        quiet_nan = np.uint64((((1 << exp_bits) - 1) << man_bits) | (1 << (man_bits - 1)))
        bits = np.where(self.acc == 0, np.uint64(0), bits)
        return np.where(self.nan, quiet_nan, bits)

    def to_pal(self, fmt: PALFormat | None = None) -> np.ndarray:
        """Read out correctly rounded PAL codes (default: the operand format), saturating."""
        fmt = self.config.fmt if fmt is None else check_fmt(fmt)
        fmt.require_tables("to_pal")
        magnitude = np.maximum(np.abs(self.acc), 1)
        log = log_round(magnitude, self._exp2(), fmt)
        return pack(self.acc < 0, log, fmt, zero=self.acc == 0, nan=self.nan)


def _scales(name: str, scales, shape: tuple[int, ...]) -> np.ndarray:
    if scales is None:
        return np.zeros(shape, dtype=np.int64)
    array = np.asarray(scales)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be integers, not dtype {array.dtype}")
    if array.shape not in ((), shape):
        raise ValueError(f"{name} must be a scalar or an array of shape {shape}, not {array.shape}")
    if array.size and (array.min() < -MAX_SCALE or array.max() > MAX_SCALE):
        raise ValueError(
            f"{name} must be in [-{MAX_SCALE}, {MAX_SCALE}] (so that sums and readouts stay "
            f"exact in int64), not [{array.min()}, {array.max()}]"
        )
    return np.broadcast_to(array.astype(np.int64), shape)


def _check_matmul_shapes(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.shape[1] == 0:
        raise ValueError(
            "a and b must be 2-D with shapes (M, K) and (K, N), K >= 1; "
            f"got {a.shape} and {b.shape}"
        )


def matmul(
    a,
    b,
    config: MacConfig,
    *,
    a_scales=None,
    b_scales=None,
    block_size: int | None = None,
    method: str = "auto",
) -> MacResult:
    """Multiply code matrices, ``a @ b``, with exactly the hardware's linear accumulation.

    Parameters
    ----------
    a, b : 2-D array_like of int
        Codes, shapes ``(M, K)`` and ``(K, N)``, ``K >= 1``.
    config : MacConfig
        Operand format, mantissa table width and accumulator geometry.
    a_scales, b_scales : array_like of int, optional
        Octave offsets already applied to the operands (from
        :func:`~palhdl.sim.golden.quantize` or :func:`~palhdl.sim.golden.quantize_blocks`),
        each within ``+-``:data:`MAX_SCALE`.
        Without ``block_size``: shapes ``(M,)`` / ``(N,)``; they only set
        :attr:`MacResult.scale_exp`. With ``block_size``: shapes ``(M, nb)`` / ``(nb, N)``,
        ``nb = ceil(K / block_size)``, one E8M0 scale (``-127 .. 127``) per block.
    block_size : int, optional
        Block scaling (``docs/format.md`` section 11): ``a[i, k]`` and ``b[k, j]`` belong to
        blocks ``k // block_size``. Each product's log sum is lowered by the offsets of
        :func:`~palhdl.sim.golden.block_offsets` (its blocks' scales above the row's and the
        column's smallest, the references), so every term lands in one accumulator whose
        ``scale_exp`` is the sum of the references; see :func:`mac_terms` for the flush.
        ``None`` (default): no blocks.
    method : {"auto", "loop"}
        How the accumulators are computed; the results are identical. ``"loop"``: the
        reference loop below. ``"auto"`` (default): :func:`~palhdl.sim.golden.linear.linear_matmul`
        (exact float64 matmuls of the linearised terms; for pal8 about 100 times faster than
        the loop on a 128 x 384 x 1536 matmul) for formats with ``mag_bits <= 16``, and the
        loop for the outputs it cannot prove (saturating accumulators whose partial sums leave
        the range) and for wider formats.

    Returns
    -------
    MacResult
        Terms (:func:`mac_terms`) are added for ``k = 0 .. K-1`` in order, each addition
        saturating to ``[-acc_max, acc_max]`` (or wrapping modulo ``2**acc_bits`` when not
        ``config.saturate``). While nothing overflows the sum is exact, so the result does not
        depend on the order; nothing can overflow for ``K <= config.max_exact_k``.
    """
    config = check_mac_config(config)
    method = check_choice("method", method, _METHODS)
    fmt = config.fmt
    a = check_codes("a", a, fmt)
    b = check_codes("b", b, fmt)
    _check_matmul_shapes(a, b)
    m, k = a.shape
    n = b.shape[1]
    if block_size is None:
        sa = _scales("a_scales", a_scales, (m,))
        sb = _scales("b_scales", b_scales, (n,))
        a_offsets = np.zeros((m, k), dtype=np.int64)
        b_offsets = np.zeros((k, n), dtype=np.int64)
    else:
        block_size = check_int("block_size", block_size, 1, 1 << 30)
        blocks = block_count(k, block_size)
        a_scales = _scales("a_scales", a_scales, (m, blocks))
        b_scales = _scales("b_scales", b_scales, (blocks, n))
        a_offsets, sa = block_offsets(a_scales, fmt, per="row", block_size=block_size, k=k)
        b_offsets, sb = block_offsets(b_scales, fmt, per="col", block_size=block_size, k=k)
    if method == "loop" or fmt.mag_bits > linear.MAX_MAG_BITS:
        acc, nan, overflow = _accumulate(
            a[:, None, :], b.T[None, :, :], a_offsets[:, None, :], b_offsets.T[None, :, :], config
        )
    else:
        blocks = {} if block_size is None else {"a_offsets": a_offsets, "b_offsets": b_offsets}
        fast = linear.linear_matmul(a, b, _linearisation(config), **blocks)
        acc, nan, overflow = fast.acc, fast.nan, fast.overflow
        rows, cols = np.nonzero(fast.path == linear.LOOP)
        if rows.size:
            acc[rows, cols], _, overflow[rows, cols] = _accumulate(
                a[rows], b[:, cols].T, a_offsets[rows], b_offsets[:, cols].T, config
            )
    return MacResult(acc, nan, overflow, sa[:, None] + sb[None, :], config)


def _accumulate(a, b, a_offsets, b_offsets, config: MacConfig):
    """Run the reference loop: add the terms of ``a[..., k] * b[..., k]``, ``k = 0 .. K-1``.

    The operands (and their offsets) broadcast over all but their last axis, ``K``; each
    addition saturates or wraps as :func:`matmul` describes. Returns ``(acc, nan, overflow)``.
    """
    shape = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    acc = np.zeros(shape, dtype=np.int64)
    nan = np.zeros(shape, dtype=bool)
    overflow = np.zeros(shape, dtype=bool)
    low, high = config.acc_min, config.acc_max
    for index in range(a.shape[-1]):
        term, term_nan, term_overflow = mac_terms(
            a[..., index],
            b[..., index],
            config,
            offset=a_offsets[..., index] + b_offsets[..., index],
        )
        total = acc + term
        overflow |= term_overflow | (total < low) | (total > high)
        if config.saturate:
            acc = np.clip(total, low, high)
        else:
            acc = (total - low) % (1 << config.acc_bits) + low
        nan |= term_nan
    return acc, nan, overflow


@lru_cache(maxsize=16)
def _linearisation(config: MacConfig) -> linear.Linearisation:
    """Prepare ``config``'s term table for the fast path (cached, like the other tables)."""
    return linear.linearise(config, *term_table(config))


def dot(a, b, config: MacConfig) -> MacResult:
    """Compute the dot product of two 1-D code vectors; a :class:`MacResult` of shape ``()``."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"a and b must be 1-D of equal length, not shapes {a.shape} and {b.shape}")
    result = matmul(a[None, :], b[:, None], config)
    return MacResult(
        *(x[0, 0] for x in (result.acc, result.nan, result.overflow, result.scale_exp)), config
    )


def quantize_operands(a, b, config: MacConfig, *, adaptive: bool = True, block_size=None):
    """Quantise float matrices ``a (M, K)`` and ``b (K, N)`` for :func:`matmul`.

    With ``block_size`` (block scaling, ``docs/format.md`` section 11), ``a`` and ``b`` get one
    scale per block of ``block_size`` elements along ``K`` (:func:`quantize_blocks`); otherwise
    ``a`` gets per-row scales and ``b`` per-column scales when ``adaptive`` (none when not).
    Targets come from :meth:`~palhdl.format.MacConfig.scale_target` for this ``K``.

    Returns ``(a_codes, a_scales, b_codes, b_scales)``, the arguments :func:`matmul` takes
    (with the same ``block_size``).
    """
    config = check_mac_config(config)
    adaptive = check_bool("adaptive", adaptive)
    a = check_floats("a", a)
    b = check_floats("b", b)
    _check_matmul_shapes(a, b)
    target = config.scale_target(a.shape[1])
    if block_size is not None:
        block_size = check_int("block_size", block_size, 1, 1 << 30)
        if not adaptive:
            raise ValueError("block_size needs adaptive=True: block scales are adaptive scales")
        a_codes, a_scales = quantize_blocks(
            a, config.fmt, per="row", block_size=block_size, target=target
        )
        b_codes, b_scales = quantize_blocks(
            b, config.fmt, per="col", block_size=block_size, target=target
        )
    else:
        a_codes, a_scales = quantize(a, config.fmt, per="row" if adaptive else None, target=target)
        b_codes, b_scales = quantize(b, config.fmt, per="col" if adaptive else None, target=target)
    return a_codes, a_scales, b_codes, b_scales


def matmul_values(
    a, b, config: MacConfig, *, adaptive: bool = True, block_size: int | None = None
) -> MacResult:
    """Quantise float matrices with :func:`quantize_operands` and multiply them with :func:`matmul`.

    Infinite entries encode as ``+-max`` whatever the scale, so they can still overflow a narrow
    accumulator window (pal16's default).
    """
    a_codes, a_scales, b_codes, b_scales = quantize_operands(
        a, b, config, adaptive=adaptive, block_size=block_size
    )
    return matmul(
        a_codes, b_codes, config, a_scales=a_scales, b_scales=b_scales, block_size=block_size
    )
