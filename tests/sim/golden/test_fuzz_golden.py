"""Fuzzing the golden model's API (issue 14): ``encode``, ``decode``, ``quantize``, ``matmul`` and
``matmul_values``.

* Arguments of any type and range are either accepted or refused with a one-line
  ``TypeError``/``ValueError`` (never another exception: no ``OverflowError``, ``IndexError``,
  ``KeyError``, ...); bytes, strings and booleans where numbers belong are a ``TypeError``.
* Valid random data is checked against the independent exact references of ``tests/exact.py``:
  encode and decode against exact rounding of every float64 (NaN, infinities and subnormals
  included), quantize against the exact code of ``x * 2**s`` and the landing octave of each
  row's maximum, and matmul's accumulators against the exact integer sum of the product terms
  (``mac_terms``, checked exhaustively for pal8 against ``tests/exact.py`` in ``test_mac.py``)
  with the hardware's saturating/wrapping accumulation done in Python integers.

Hypothesis runs derandomised, without deadlines, with explicit example counts.
"""

from __future__ import annotations

import numpy as np
import pytest
from exact import (
    FLOAT64,
    code_of_dyadic,
    code_of_ieee,
    float64_bits,
    ieee_round,
    ieee_split,
    nearest_log,
    pal_ieee_bits,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from palhdl.format import MacConfig, PALFormat, pal8, pal16
from palhdl.sim import golden

FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

FORMATS = st.builds(PALFormat, int_bits=st.integers(2, 6), frac_bits=st.integers(1, 6))

# --- anything at all, for the argument fuzzing ---------------------------------------------------

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int64, np.uint64, np.bool_]
DTYPES += [np.complex128, np.dtype("U3"), np.dtype("S3"), np.dtype("datetime64[s]")]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.sampled_from([pal8, pal16, MacConfig(pal8), "pal8", "row", "col", "tensor", "loop", "auto"]),
)


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        elements = st.integers(max(info.min, -(2**40)), min(info.max, 2**40))
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


ANYTHING = st.one_of(SCALARS, arrays(), st.lists(SCALARS, max_size=3))


def _call(function, *args, **kwargs):
    """Call; return ``None`` or the ``TypeError``/``ValueError`` (anything else fails the test)."""
    try:
        function(*args, **kwargs)
    except (TypeError, ValueError) as error:
        message = str(error)
        assert message and "\n" not in message, repr(message)
        event(f"{type(error).__name__}")
        return error
    event("accepted")
    return None


def _is_text_or_bool(value) -> bool:
    kind = np.asarray(value).dtype.kind if not isinstance(value, list | tuple) else None
    return isinstance(value, bool | str | bytes) or kind in ("b", "U", "S")


@settings(FUZZ, max_examples=300)
@given(values=ANYTHING, fmt=st.one_of(FORMATS, SCALARS))
def test_fuzz_encode_decode_arguments(values, fmt):
    error = _call(golden.encode, values, fmt)
    if isinstance(fmt, PALFormat) and _is_text_or_bool(values):
        assert isinstance(error, TypeError) and "values must be" in str(error)
    _call(golden.decode, values, fmt)


@settings(FUZZ, max_examples=300)
@given(
    values=ANYTHING,
    fmt=st.one_of(FORMATS, SCALARS),
    per=st.one_of(st.sampled_from([None, "tensor", "row", "col"]), SCALARS),
    target=st.one_of(st.none(), st.integers(-(2**80), 2**80), SCALARS),
)
def test_fuzz_quantize_arguments(values, fmt, per, target):
    error = _call(golden.quantize, values, fmt, per=per, target=target)
    huge = isinstance(target, int) and not isinstance(target, bool) and abs(target) > 1 << 26
    if isinstance(fmt, PALFormat) and huge:  # beyond 2**20 octaves of any of these formats
        assert isinstance(error, TypeError | ValueError)


@st.composite
def matmul_arguments(draw):
    def maybe(strategy):
        return draw(st.one_of(strategy, ANYTHING)) if draw(st.booleans()) else draw(strategy)

    m, k, n = (draw(st.integers(0, 3)) for _ in range(3))
    a = maybe(hnp.arrays(np.int64, (m, k), elements=st.integers(-2, 257)))
    b = maybe(hnp.arrays(np.uint8, (k, n)))
    scales = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))
    kwargs = {
        "a_scales": maybe(scales),
        "b_scales": maybe(scales),
        "block_size": maybe(st.one_of(st.none(), st.integers(-1, 5))),
    }
    return a, b, kwargs


@settings(FUZZ, max_examples=300)
@given(
    arguments=matmul_arguments(),
    config=st.one_of(st.just(MacConfig(pal8)), SCALARS),
    method=st.one_of(st.sampled_from(["auto", "loop"]), SCALARS),
)
def test_fuzz_matmul_arguments(arguments, config, method):
    a, b, kwargs = arguments
    error = _call(golden.matmul, a, b, config, method=method, **kwargs)
    for name in ("a_scales", "b_scales"):
        scale = kwargs[name]
        if isinstance(scale, int) and not isinstance(scale, bool) and abs(scale) > golden.MAX_SCALE:
            assert isinstance(error, TypeError | ValueError)
    adaptive = kwargs["a_scales"]
    _call(golden.matmul_values, a, b, config, adaptive=adaptive, block_size=kwargs["block_size"])


# --- valid data against exact references ------------------------------------------------------

FINITE_AND_NOT = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)


@settings(FUZZ, max_examples=300)
@given(fmt=FORMATS, values=hnp.arrays(np.float64, st.integers(1, 8), elements=FINITE_AND_NOT))
def test_fuzz_encode_and_decode_are_exact(fmt, values):
    expected = [code_of_ieee(float64_bits(v), FLOAT64, fmt) for v in values.tolist()]
    codes = golden.encode(values, fmt)
    assert codes.astype(np.int64).tolist() == expected
    decoded = golden.decode(codes, fmt).view(np.uint64)
    np.testing.assert_array_equal(decoded, pal_ieee_bits(codes, fmt, FLOAT64))


@settings(FUZZ, max_examples=200)
@given(
    fmt=FORMATS,
    values=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 4)),
        elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    ),
    per=st.sampled_from(["row", "col", "tensor", None]),
    target=st.one_of(st.none(), st.integers(-40, 40)),
)
def test_fuzz_quantize_is_exact(fmt, values, per, target):
    codes, scales = golden.quantize(values, fmt, per=per, target=target)
    goal = fmt.log_max if target is None else target
    offsets = np.broadcast_to(scales[:, None] if per == "row" else scales, values.shape)
    for index in np.ndindex(values.shape):
        kind, negative, mag, exp2 = ieee_split(float64_bits(values[index]), FLOAT64)
        if kind == "finite":
            expected = code_of_dyadic(negative, mag, exp2 + int(offsets[index]), fmt)
        else:
            expected = code_of_ieee(float64_bits(values[index]), FLOAT64, fmt)
        assert int(codes[index]) == expected, (index, values[index], offsets[index])
    if per is None:
        assert scales.shape == () and scales == 0
        return
    # Each slice's largest finite magnitude lands in the octave just below the target.
    axis = {"row": 1, "col": 0, "tensor": None}[per]
    finite = np.where(np.isfinite(values), np.abs(values), 0.0)
    peaks = finite.max(axis=axis)
    for peak, scale in zip(np.ravel(peaks), np.ravel(scales), strict=True):
        if peak == 0:
            assert scale == 0
            continue
        _, _, mag, exp2 = ieee_split(float64_bits(peak), FLOAT64)
        log = nearest_log(mag, exp2 + int(scale), fmt.frac_bits)
        assert goal - fmt.units < log <= goal


def _accumulate_exactly(a, b, config: MacConfig):
    """The accumulation of ``docs/format.md`` section 9 in Python integers, from the terms."""
    m, n = a.shape[0], b.shape[1]
    acc = np.zeros((m, n), dtype=object)
    nan = np.zeros((m, n), dtype=bool)
    overflow = np.zeros((m, n), dtype=bool)
    for i in range(m):
        for j in range(n):
            total, flagged, nans = 0, False, False
            terms, term_nan, term_overflow = golden.mac_terms(a[i], b[:, j], config)
            for term, is_nan, is_overflow in zip(
                terms.tolist(), term_nan, term_overflow, strict=True
            ):
                total += term
                flagged |= bool(is_overflow) or not config.acc_min <= total <= config.acc_max
                if config.saturate:
                    total = min(max(total, config.acc_min), config.acc_max)
                else:
                    total = (total - config.acc_min) % (1 << config.acc_bits) + config.acc_min
                nans |= bool(is_nan)
            acc[i, j], nan[i, j], overflow[i, j] = total, nans, flagged
    return acc, nan, overflow


NARROW = MacConfig(pal8, mantissa_bits=5, acc_bits=12, acc_frac_bits=4, term_bits=9, saturate=False)
SATURATING = MacConfig(pal8, mantissa_bits=5, acc_bits=12, acc_frac_bits=4, term_bits=9)


@settings(FUZZ, max_examples=200)
@given(
    config=st.sampled_from([MacConfig(pal8), NARROW, SATURATING, MacConfig(pal16)]),
    shape=st.tuples(st.integers(0, 4), st.integers(1, 12), st.integers(0, 4)),
    data=st.data(),
)
def test_fuzz_matmul_accumulates_exactly(config, shape, data):
    m, k, n = shape
    codes = st.integers(0, (1 << config.fmt.width) - 1)
    a = data.draw(hnp.arrays(np.int64, (m, k), elements=codes))
    b = data.draw(hnp.arrays(np.int64, (k, n), elements=codes))
    result = golden.matmul(a, b, config)
    acc, nan, overflow = _accumulate_exactly(a, b, config)
    event("overflow" if overflow.any() else "exact")
    assert result.acc.shape == (m, n)
    assert result.acc.tolist() == acc.tolist()
    np.testing.assert_array_equal(result.nan, nan)
    np.testing.assert_array_equal(result.overflow, overflow)


@settings(FUZZ, max_examples=100)
@given(
    a_scale=st.integers(-(2**33), 2**33),
    b_scale=st.integers(-(2**33), 2**33),
)
def test_fuzz_matmul_scales_are_bounded_and_exact(a_scale, b_scale):
    codes = np.full((1, 2), 70)
    within = max(abs(a_scale), abs(b_scale)) <= golden.MAX_SCALE
    event("within" if within else "beyond")
    if not within:
        with pytest.raises(ValueError, match=r"[ab]_scales must be in \[-2147483647, 2147483647\]"):
            golden.matmul(codes, codes.T, MacConfig(pal8), a_scales=a_scale, b_scales=b_scale)
        return
    result = golden.matmul(codes, codes.T, MacConfig(pal8), a_scales=a_scale, b_scales=b_scale)
    assert int(result.scale_exp[0, 0]) == a_scale + b_scale  # exact, no wrap-around
    # The value acc * 2**-(acc_frac_bits + scale) as float64, rounded exactly (acc > 0).
    acc = int(result.acc[0, 0])
    exponent = -(MacConfig(pal8).acc_frac_bits + a_scale + b_scale)
    if exponent < -1200:
        expected = 0
    elif exponent > 1200:
        expected = 0x7FF << 52  # infinity
    else:
        expected = ieee_round(acc, exponent, FLOAT64)
    assert int(result.to_float64().view(np.uint64)[0, 0]) == expected
