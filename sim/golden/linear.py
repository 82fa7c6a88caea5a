"""Exact matmul accumulation at BLAS speed: PAL product terms linearised into float64 matmuls.

:func:`palhdl.sim.golden.matmul` defines a matmul's accumulators by adding product terms one
``k`` at a time (its reference loop). :func:`linear_matmul` computes the same accumulators and
flags bit for bit wherever it can prove them from the data, and marks the outputs it cannot
prove (:data:`LOOP`) for the loop to compute.

The proof
---------
A product of two nonzero, non-NaN operands adds ``+-T[S]`` (``T`` and its overflow flags:
:func:`~palhdl.sim.golden.term_table`) with ``S = E + E'``, the magnitude fields lowered by the
block offsets (``E = Ea - oa`` belongs to ``a[i, k]``, ``E' = Eb - ob`` to ``b[k, j]``);
``S < 0`` adds 0, so an operand with ``E < -mag_mask`` adds nothing, like a zero.

Let ``L(x) = m[x mod 2**F] * 2**shift(x)``, the unrounded term of any log sum ``x``
(:meth:`~palhdl.format.MacConfig.shift` of the octave of ``x``), in float64. The *linear
interval* ``[low, high]`` of a configuration is the longest run of sums ``S`` with
``1 <= T[S] < 2**53``, no overflow and ``T[S] == L(S)`` (the float64 value itself), checked entry
by entry on the table. Writing ``E = q * 2**F + r`` (``0 <= r < 2**F``) and any integer ``c``,
``L(E + E') = 2**(q - c) * L(E' + r + c * 2**F)``, exactly while the floats are normal (the
exponent ranges are checked). So the terms of the pairs whose sums lie in the interval are
the entries of ``sum over r of A_r @ B_r`` with ``A_r[i, k] = +-2**(q - c)`` where ``a[i, k]``
has residue ``r`` (0 elsewhere) and ``B_r[k, j] = +-L(E' + r + c * 2**F)``: ``2**F`` float64
matmuls whose products are the integer terms themselves (or the same with ``a`` and ``b``
exchanged, whichever is cheaper).

The other pairs (rounded, overflowing and flushed terms) are kept out of the matmuls: at each
``k`` a threshold ``t`` splits the live elements so that ``E >= t`` and ``E' >= low - t`` for
every pair of ordinary ones (and likewise at the top of the interval); the *special* elements
below (above) it have their products with ``b[k, :]`` (with the ordinary ``a[:, k]``) looked up
in the table. ``t`` is chosen per ``k`` to minimise those lookups.

An output is :data:`BLAS` when an upper bound on the sum of its terms' magnitudes is at most
``min(acc_max, 2**53 - 1)``: every partial float64 sum is then an exact integer whatever order
BLAS adds in, and no partial sum of the loop can leave the accumulator's range, so the loop's
result is that exact sum and its overflow flag is set exactly when some term overflows. The
bound is ``pairs * largest term`` from the rows' and columns' largest fields, or else the
matmuls of the magnitudes, plus the looked-up magnitudes. The other outputs are summed in
order in int64 (:data:`ORDERED`): a wrapping accumulator's value is the sum modulo
``2**acc_bits`` and its flag is set when a term overflows or an exact prefix sum leaves the
range (before its first exit, the loop's accumulator is the exact prefix); a saturating
accumulator is exact when no prefix sum leaves the range, otherwise the clamps depend on the
order and the output is :data:`LOOP`. ``nan`` is set where row ``i`` of ``a`` or column ``j``
of ``b`` holds a NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from palhdl.format import MacConfig
from palhdl.sim.golden.bits import check_codes, check_offsets
from palhdl.tables import mantissa_table
from palhdl.validate import check_instance

__all__ = [
    "BLAS",
    "LOOP",
    "MAX_MAG_BITS",
    "MAX_PLANE_BITS",
    "ORDERED",
    "LinearMatmul",
    "Linearisation",
    "linear_matmul",
    "linearise",
]

#: :attr:`LinearMatmul.path` of an output the float64 matmuls (and exact lookups) proved.
BLAS = 1
#: :attr:`LinearMatmul.path` of an output proved by summing its terms in order in int64.
ORDERED = 2
#: :attr:`LinearMatmul.path` of an output whose saturating partial sums depend on the order:
#: the caller computes it with the reference loop (its ``acc``/``overflow`` here are 0).
LOOP = 0

#: Largest ``mag_bits`` whose term table (``2**(mag_bits + 1)`` entries) :func:`linearise` takes.
MAX_MAG_BITS = 16
#: Largest ``frac_bits`` for which the ``2**frac_bits`` matmuls are used; beyond it (more
#: matmuls than an in-order int64 sum costs) every output is :data:`ORDERED`.
MAX_PLANE_BITS = 8

_FLOAT_EXACT = (1 << 53) - 1  # every integer up to here is a float64; the next bound is 2**53
_EXPONENT_LIMIT = 900  # |log2| of anchors, factors and products: far from float64 over/underflow
_FAR = 1 << 20  # beyond any live field (|E| <= 2**MAX_MAG_BITS): dead operands, empty bounds
_CHUNK = 1 << 21  # elements per block of in-order (and special) term lookups
_SEARCH = 1 << 23  # apart from each other, the rows of fields searched at once
_STACK = 1 << 22  # float64 elements of a stacked matmul operand (a block of it)
_SCATTER_COST = 40  # a one-hot element, in gathered elements (measured: 8 to 128 planes)


@dataclass(frozen=True, eq=False)
class Linearisation:
    """A configuration's term table prepared for :func:`linear_matmul` (see :func:`linearise`).

    Attributes
    ----------
    config : MacConfig
        The configuration.
    low, high : int
        The linear interval of log sums (empty when ``low > high``).
    peak : ndarray of float64
        ``peak[1 + S - low]`` is the largest term over ``[low, S]``; ``peak[0] = 0``.
    base, span : int
        The keyed lookup tables' layout: a product of lowered fields ``E``, ``E'`` and signs
        ``s``, ``s'`` reads entry ``E + E' + base + (s + s') * span`` (a negative index, which
        only a dead operand makes, reads entry 0, a zero term).
    term, overflow, magnitude : ndarray
        Keyed tables: the signed term (int64), its overflow flag and ``|term|`` (float64).
        Each of the three segments (positive, negative, positive product) holds ``base`` zero
        terms (flushed sums ``-base < S < 0``) and then the term table.
    """

    config: MacConfig
    low: int
    high: int
    peak: np.ndarray
    base: int
    span: int
    term: np.ndarray
    overflow: np.ndarray
    magnitude: np.ndarray


def _shift(config: MacConfig, sums: np.ndarray) -> np.ndarray:
    """Return the accumulator shift of the octave of each log sum ``S`` (fields' sum)."""
    fmt = config.fmt
    return config.shift((sums >> fmt.frac_bits) - (1 << fmt.int_bits))


def _unrounded(config: MacConfig, sums: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``L(sums) = m[sums mod 2**F] * 2**shift`` in float64 (exact while normal)."""
    fmt = config.fmt
    mantissa = mantissa_table(fmt.frac_bits, config.mantissa_bits)[sums & (fmt.units - 1)]
    return np.ldexp(mantissa.astype(np.float64), shift)


def linearise(config: MacConfig, term, overflow) -> Linearisation:
    """Prepare ``term_table(config)`` (unsigned: ``term, overflow``) for :func:`linear_matmul`.

    Raises ``ValueError`` if ``config.fmt.mag_bits > MAX_MAG_BITS`` or the tables do not have
    ``2**(mag_bits + 1)`` entries.
    """
    config = check_instance("config", config, MacConfig, "palhdl.format.MacConfig(pal8)")
    fmt = config.fmt
    if fmt.mag_bits > MAX_MAG_BITS:
        raise ValueError(f"config.fmt.mag_bits must be <= {MAX_MAG_BITS}, not {fmt.mag_bits}")
    size = 1 << (fmt.mag_bits + 1)
    term = np.asarray(term)
    overflow = np.asarray(overflow)
    if term.shape != (size,) or overflow.shape != (size,):
        raise ValueError(
            f"term and overflow must be term_table(config) with {size} entries, not shapes "
            f"{term.shape} and {overflow.shape}"
        )
    term = term.astype(np.int64)
    overflow = overflow.astype(bool)
    sums = np.arange(size - 1, dtype=np.int64)  # the last entry is the zero operands' one
    exact = term[:-1] < (1 << 53)
    with np.errstate(over="ignore"):  # far-out L(S) become inf and simply do not match
        value = _unrounded(config, sums, _shift(config, sums))
    linear = (term[:-1] >= 1) & exact & ~overflow[:-1]
    linear &= value == np.where(exact, term[:-1], 0).astype(np.float64)
    low, high = _longest_run(linear)
    peak = np.maximum.accumulate(term[low : high + 1].astype(np.float64))
    base = 2 * fmt.mag_mask + 1  # live fields are in [-mag_mask, mag_mask]

    def keyed(positive, negative):
        flushed = np.zeros(base, dtype=positive.dtype)
        return np.concatenate((flushed, positive, flushed, negative, flushed, positive))

    return Linearisation(
        config,
        low,
        high,
        np.concatenate(([0.0], peak)),
        base,
        base + size,
        keyed(term, -term),
        keyed(overflow, overflow),
        keyed(np.abs(term).astype(np.float64), np.abs(term).astype(np.float64)),
    )


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if not starts.size:
        return 1, 0
    best = int(np.argmax(ends - starts))
    return int(starts[best]), int(ends[best]) - 1


@dataclass(frozen=True)
class LinearMatmul:
    """Accumulators of :func:`linear_matmul` and how each was proved.

    Attributes
    ----------
    acc, nan, overflow : ndarray
        As :class:`~palhdl.sim.golden.MacResult`; ``acc`` and ``overflow`` are 0 where
        ``path == LOOP``.
    path : ndarray of int8
        Per output: :data:`BLAS`, :data:`ORDERED` or :data:`LOOP`.
    """

    acc: np.ndarray
    nan: np.ndarray
    overflow: np.ndarray
    path: np.ndarray


def linear_matmul(a, b, lin: Linearisation, *, a_offsets=None, b_offsets=None) -> LinearMatmul:
    """Compute the reference loop's accumulators of ``a @ b`` where provable (module docstring).

    Parameters
    ----------
    a, b : 2-D array_like of int
        Codes of ``lin.config.fmt``, shapes ``(M, K)`` and ``(K, N)``, ``K >= 1``.
    lin : Linearisation
        From :func:`linearise` of the configuration's term table.
    a_offsets, b_offsets : 2-D array_like of int, optional
        Block-scaling log offsets (:func:`~palhdl.sim.golden.block_offsets`), the shapes of
        ``a`` and ``b``; default 0.

    Returns
    -------
    LinearMatmul
        Bit-exact with the loop of :func:`~palhdl.sim.golden.matmul` where ``path != LOOP``.
    """
    lin = check_instance("lin", lin, Linearisation, "linearise(config, *term_table(config))")
    fmt = lin.config.fmt
    a = check_codes("a", a, fmt)
    b = check_codes("b", b, fmt)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.shape[1] == 0:
        raise ValueError(
            "a and b must be 2-D with shapes (M, K) and (K, N), K >= 1; "
            f"got {a.shape} and {b.shape}"
        )
    ea, sa, nan_a = _fields("a_offsets", a, a_offsets, fmt)
    eb, sb, nan_b = _fields("b_offsets", b, b_offsets, fmt)
    nan = nan_a.any(axis=1)[:, None] | nan_b.any(axis=0)[None, :]
    shape = (a.shape[0], b.shape[1])
    acc = np.zeros(shape, dtype=np.int64)
    overflow = np.zeros(shape, dtype=bool)
    path = np.full(shape, BLAS, dtype=np.int8)
    if fmt.frac_bits <= MAX_PLANE_BITS:
        proved = _blas(lin, ea, sa, eb, sb, acc, overflow)
    else:
        proved = np.zeros(shape, dtype=bool)
    rows, cols = np.nonzero(~proved)
    if rows.size:
        exact, flags, loop = _ordered(
            lin, _key(lin, ea, sa, lin.base), _key(lin, eb, sb, 0), rows, cols
        )
        acc[rows, cols] = exact
        overflow[rows, cols] = flags
        path[rows, cols] = np.where(loop, LOOP, ORDERED)
    return LinearMatmul(acc, nan, overflow, path)


def _fields(name: str, codes: np.ndarray, offsets, fmt) -> tuple[np.ndarray, ...]:
    """Lowered magnitude fields ``E - offset`` (int32), signs and NaN marks.

    An operand all of whose products are flushed or zero (zero, NaN, or lowered below
    ``-mag_mask``: its partner's field is at most ``mag_mask``) is *dead*: its field is
    ``-_FAR`` and its sign clear, so every live field is in ``[-mag_mask, mag_mask]``.
    """
    codes = codes.astype(np.int32)  # width <= 1 + MAX_MAG_BITS
    magnitude = codes & fmt.mag_mask
    live = magnitude != 0
    nan = codes == fmt.nan_code
    if offsets is not None:
        offsets = check_offsets(name, offsets)
        if offsets.shape != codes.shape:
            raise ValueError(f"{name} must have shape {codes.shape}, not {offsets.shape}")
        lowered = magnitude - offsets
        live &= lowered >= -fmt.mag_mask
        magnitude = np.maximum(lowered, -_FAR).astype(np.int32)
    field = np.where(live, magnitude, np.int32(-_FAR))
    return field, (codes > fmt.mag_mask) & live, nan


def _key(lin: Linearisation, field, sign, base: int) -> np.ndarray:
    """Keyed fields: the table index of a product is the sum of its operands' keys."""
    return field + np.where(sign, lin.span + base, base).astype(np.int32)


def _blas(lin, ea, sa, eb, sb, acc, overflow) -> np.ndarray:
    """Fill ``acc``/``overflow`` where the matmuls prove them; return the mask of those outputs."""
    valid_a, valid_b = ea > -_FAR, eb > -_FAR
    special_a, special_b = _specials(lin, ea, valid_a, eb, valid_b)
    exact, magnitude = np.zeros(acc.shape), np.zeros(acc.shape)
    if special_a.any() or special_b.any():
        key_a, key_b = _key(lin, ea, sa, lin.base), _key(lin, eb, sb, 0)
        _exact_rows(lin, key_a, key_b, special_a, exact, overflow, magnitude)
        # b's special elements meet the other elements of a (the special ones are done).
        partner = np.where(special_a, -_FAR, key_a)
        _exact_rows(lin, key_b.T, partner.T, special_b.T, exact.T, overflow.T, magnitude.T)
    plane_a, plane_b = valid_a & ~special_a, valid_b & ~special_b
    total = _planes(lin, ea, sa, plane_a, eb, sb, plane_b, signed=True)
    if total is None:
        return np.zeros(acc.shape, dtype=bool)
    top = np.max(ea, axis=1, where=plane_a, initial=-_FAR)[:, None] + np.max(
        eb, axis=0, where=plane_b, initial=-_FAR
    )
    peak = lin.peak[np.clip(top, lin.low - 1, lin.high) - (lin.low - 1)]
    if ea.shape[1] * peak.max(initial=0.0) + magnitude.max(initial=0.0) <= _limit(lin.config):
        acc[...] = (total + exact).astype(np.int64)  # K terms of the largest magnitude fit
        return np.ones(acc.shape, dtype=bool)
    pairs = np.minimum(plane_a.sum(axis=1)[:, None], plane_b.sum(axis=0)[None, :])
    bound = pairs * peak + magnitude
    loose = bound > _limit(lin.config)
    if loose.any():
        rows, cols = loose.any(axis=1), loose.any(axis=0)
        sub = np.ix_(rows, cols)
        tight = _planes(
            lin,
            ea[rows],
            sa[rows],
            plane_a[rows],
            eb[:, cols],
            sb[:, cols],
            plane_b[:, cols],
            signed=False,
        )
        if tight is not None:  # None: these outputs' exponents differ too much; stay loose
            bound[sub] = np.where(loose[sub], tight + magnitude[sub], bound[sub])
    proved = bound <= _limit(lin.config)
    acc[...] = np.where(proved, total + exact, 0.0).astype(np.int64)
    return proved


def _limit(config: MacConfig) -> int:
    return min(config.acc_max, _FLOAT_EXACT)


def _specials(lin, ea, valid_a, eb, valid_b) -> tuple[np.ndarray, np.ndarray]:
    """Split the live elements so that non-special pairs have log sums in ``[low, high]``.

    For the bottom end, each ``k`` gets a threshold ``t``: ``a[i, k]`` is special below ``t``
    and ``b[k, j]`` below ``low - t``, so a pair of non-special elements sums to ``low`` or
    more; the top end alike. ``t`` minimises the lookups the special elements cost.
    """
    special_a = np.zeros(ea.shape, dtype=bool)
    special_b = np.zeros(eb.shape, dtype=bool)
    lowest = int(np.min(ea, where=valid_a, initial=_FAR)) + int(
        np.min(eb, where=valid_b, initial=_FAR)
    )
    if lowest >= lin.low and int(ea.max(initial=-_FAR)) + int(eb.max(initial=-_FAR)) <= lin.high:
        return special_a, special_b  # every pair of the whole matmul is inside
    for sign, bound in ((1, lin.low), (-1, -lin.high)):
        field_a = np.where(valid_a, sign * ea, _FAR)
        field_b = np.where(valid_b, sign * eb, _FAR)
        lowest_a = field_a.min(axis=0, initial=_FAR)
        if (lowest_a + field_b.min(axis=1, initial=_FAR) >= bound).all():
            continue  # no pair at any k can pass this end
        below_a, below_b = _split(bound, field_a, field_b)
        special_a |= below_a
        special_b |= below_b
    return special_a, special_b


def _split(bound: int, field_a, field_b) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds ``t`` per ``k`` for ``field_a + field_b >= bound`` (dead fields ``_FAR``).

    Candidates are a's fields (and ``_FAR``: all of a special): between two of them the count
    of special a is constant and that of b only falls, so the best ``t`` is one of them.
    """
    m, k = field_a.shape
    n = field_b.shape[1]
    candidates = np.concatenate((np.sort(field_a, axis=0).T, np.full((k, 1), _FAR)), axis=1)
    starts = np.ones(candidates.shape, dtype=bool)
    starts[:, 1:] = candidates[:, 1:] != candidates[:, :-1]
    below_a = np.maximum.accumulate(np.where(starts, np.arange(m + 1), 0), axis=1)
    # Count b's fields below bound - t in each sorted row at once: rows apart by _SEARCH.
    row = (np.arange(k, dtype=np.int64) * _SEARCH)[:, None]
    rows = (np.sort(field_b, axis=1) + row).ravel()
    below_b = np.searchsorted(rows, (bound - candidates + row).ravel()).reshape(k, m + 1)
    below_b -= (np.arange(k) * n)[:, None]
    best = np.argmin(below_a * n + below_b * m, axis=1)
    threshold = candidates[np.arange(k), best]
    return field_a < threshold[None, :], field_b < (bound - threshold)[:, None]


def _exact_rows(lin, key_a, key_b, mask, exact, overflow, magnitude) -> None:
    """Add the looked-up terms of each ``a[i, k]`` in ``mask`` times ``b[k, :]`` to row ``i``.

    The sums are float64: exact for every output that is proved (its magnitudes add up to less
    than ``2**53``); the others are recomputed in order.
    """
    rows, ks = np.nonzero(mask)
    n = key_b.shape[1]
    step = max(1, _CHUNK // n)
    for start in range(0, rows.size, step):
        row, k = rows[start : start + step], ks[start : start + step]
        index = key_a[row, k][:, None] + key_b[k]
        target = (row[:, None] * n + np.arange(n)).ravel()
        for table, out in ((lin.term, exact), (lin.magnitude, magnitude)):
            weights = np.take(table, index, mode="clip").ravel()
            out += np.bincount(target, weights, minlength=out.size).reshape(out.shape)
        overflow.flat[target[np.take(lin.overflow, index, mode="clip").ravel()]] = True


def _planes(lin, ea, sa, va, eb, sb, vb, *, signed: bool) -> np.ndarray | None:
    """``sum over r of A_r @ B_r`` (signed terms, or their magnitudes); ``None`` out of range.

    Only elements marked in ``va``/``vb`` take part. One operand is gathered from the anchors
    ``L``, ``2**F`` times its size; the other is scattered once into one-hot planes: the cheaper
    way round is taken.
    """
    units = lin.config.fmt.units
    if units * ea.size + _SCATTER_COST * eb.size < units * eb.size + _SCATTER_COST * ea.size:
        result = _planes(lin, eb.T, sb.T, vb.T, ea.T, sa.T, va.T, signed=signed)
        return None if result is None else result.T
    m, k = ea.shape
    n = eb.shape[1]
    out = np.zeros((m, n))
    if not (va.any() and vb.any()):
        return out
    # a: scattered, E = q * 2**F + r: 2**(q - centre) in plane r. b: gathered, L(E + r + ...).
    flat = np.flatnonzero(va)  # i * k + k'
    field = ea.ravel()[flat]
    residue = (field & (units - 1)).astype(np.uint8)
    octave = field >> lin.config.fmt.frac_bits
    lowest, highest = int(octave.min()), int(octave.max())
    centre = (lowest + highest) // 2
    first_sum = int(np.min(eb, where=vb, initial=_FAR)) + centre * units
    last_sum = int(np.max(eb, where=vb, initial=-_FAR)) + centre * units + units - 1
    sums = np.arange(first_sum, last_sum + 1, dtype=np.int64)
    shift = _shift(lin.config, sums)
    spread = max(centre - lowest, highest - centre)
    low = int(shift[0]) - spread
    high = int(shift[-1]) + lin.config.mantissa_bits + 1 + spread
    if low < -_EXPONENT_LIMIT or high > _EXPONENT_LIMIT:  # anchors, factors and products
        return None
    anchor = _unrounded(lin.config, sums, shift)
    # Zeros that idle operands (negative indices, clipped to 0) read in every plane, then the
    # anchors and the negated ones.
    table = np.concatenate((np.zeros(units), anchor, -anchor if signed else anchor))
    index = eb + np.int32(units + centre * units - first_sum)
    if signed:
        index += sb * np.int32(sums.size)
    if not vb.all():
        index = np.where(vb, index, np.int32(-1))
    powers = np.ldexp(1.0, np.arange(lowest - centre, highest - centre + 1))
    factor = np.concatenate((powers, -powers))[
        octave - lowest + (sa.ravel()[flat] * powers.size if signed else 0)
    ]
    order = np.argsort(residue, kind="stable")  # a radix sort
    residue, factor, flat = residue[order], factor[order], flat[order]
    bounds = np.searchsorted(residue, np.arange(units + 1))
    rows, ks = flat // k, flat % k
    group = max(1, min(units, _STACK // (k * m)))
    # Plane r of a group from ``first`` is row block k' * g + r - first of ``onehot`` (a, one
    # column per i) and of ``gathered`` (b, one row per j: g consecutive anchors per field),
    # gathered for a block of j at a time into one reused buffer.
    onehot = np.zeros((k * group, m))
    index = np.ascontiguousarray(index.T)
    block = max(1, _STACK // (k * group))
    buffer = np.empty(min(n, block) * k * group)
    for first in range(0, units, group):
        g = min(units, first + group) - first
        window = np.lib.stride_tricks.sliding_window_view(table[first:], g)
        span = slice(bounds[first], bounds[first + g])
        place = (ks[span] * g + residue[span] - first) * m + rows[span]
        onehot.flat[place] = factor[span]
        for start in range(0, n, block):
            j = slice(start, min(n, start + block))
            count = j.stop - j.start
            gathered = buffer[: count * k * g].reshape(count, k, g)
            np.take(window, index[j], axis=0, out=gathered, mode="clip")
            out[:, j] += onehot[: k * g].T @ gathered.reshape(count, k * g).T
        onehot.flat[place] = 0.0
    return out


def _ordered(lin, key_a, key_b, rows, cols) -> tuple[np.ndarray, ...]:
    """Sum the terms of outputs ``(rows, cols)`` in order: ``(acc, overflow, needs_loop)``."""
    config = lin.config
    low, high = config.acc_min, config.acc_max
    count = rows.size
    acc = np.zeros(count, dtype=np.int64)
    overflow = np.zeros(count, dtype=bool)
    loop = np.zeros(count, dtype=bool)
    step = max(1, _CHUNK // key_a.shape[1])
    for start in range(0, count, step):
        part = slice(start, start + step)
        index = key_a[rows[part]] + key_b[:, cols[part]].T
        term = np.take(lin.term, index, mode="clip")
        # Before the first prefix sum leaves the range the loop's accumulator is that exact
        # prefix (no term exceeds 2**61, so int64 holds it and the first exit exactly).
        prefix = np.cumsum(term, axis=1)
        exits = ((prefix < low) | (prefix > high)).any(axis=1)
        total = prefix[:, -1]
        overflow[part] = np.take(lin.overflow, index, mode="clip").any(axis=1) | exits
        if config.saturate:
            acc[part] = np.where(exits, 0, total)
            loop[part] = exits
        else:
            acc[part] = (total - low) % (1 << config.acc_bits) + low
    return acc, overflow, loop
