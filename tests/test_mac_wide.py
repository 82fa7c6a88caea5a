"""PALMac against the golden model for pal16 and the odd format I = 5, F = 6.

Over 100,000 products per format in one simulation each: directed edge cases (zero, NaN,
+-max, +-min, +-1) against each other and against random codes, codes whose products fall in
the accumulator's window (rounded, exact and clamped terms), and uniformly random codes.
"""

import numpy as np
import pytest
from test_mac import check_against_golden, split_rows

from palhdl.sim.format import MacConfig, PALFormat, pal16

PRODUCTS = 100_000


def edge_codes(fmt):
    """Zero, NaN, +-min, +-max and +-1 as codes."""
    sign = fmt.sign_mask
    return np.array(
        [
            fmt.zero_code,
            fmt.nan_code,
            fmt.min_code,
            sign | fmt.min_code,
            fmt.max_code,
            sign | fmt.max_code,
            fmt.bias,
            sign | fmt.bias,
        ]
    )


def window_codes(config, count, rng, *, top):
    """Random codes with logs in octaves ``[(-afb - W - 4) / 2, top / 2]``: their products
    range from below the accumulator's LSB (rounded to 0) to octave ``top``."""
    fmt = config.fmt
    low = (-config.acc_frac_bits - config.mantissa_bits - 4) * fmt.units // 2
    magnitude = np.clip(fmt.bias + rng.integers(low, top * fmt.units // 2, count), 1, fmt.mag_mask)
    return magnitude | (rng.integers(0, 2, count) * fmt.sign_mask)


def operand_rows(config, rng):
    """Dot products of ``PRODUCTS`` pairs in all: edge cases and uniformly random codes
    (mostly clamped terms), then codes in the accumulator's window (mostly clean sums)."""
    fmt = config.fmt
    clamp = config.acc_bits - config.acc_frac_bits  # products from this octave on clamp
    edges = edge_codes(fmt)
    edge_a, edge_b = (x.ravel() for x in np.meshgrid(edges, edges))
    others = window_codes(config, 600, rng, top=clamp + 2)
    uniform = 20_000
    a = np.concatenate(
        [
            edge_a,
            np.repeat(edges, 600),
            np.tile(others, len(edges)),
            rng.integers(0, 1 << fmt.width, uniform),
        ]
    )
    b = np.concatenate(
        [
            edge_b,
            np.tile(others, len(edges)),
            np.repeat(edges, 600),
            rng.integers(0, 1 << fmt.width, uniform),
        ]
    )
    order = rng.permutation(len(a))
    a_rows, b_rows = split_rows(a[order], b[order], rng, max_k=64)
    rest = PRODUCTS - len(a)
    window = [window_codes(config, rest, rng, top=clamp - 4) for _ in range(2)]
    more_a, more_b = split_rows(*window, rng, max_k=64)
    return a_rows + more_a, b_rows + more_b


@pytest.mark.parametrize(
    ("fmt", "pipelined"),
    [(pal16, True), (PALFormat(int_bits=5, frac_bits=6), False)],
    ids=["pal16", "i5f6"],
)
def test_wide_formats_random_and_edges(fmt, pipelined):
    config = MacConfig(fmt)
    rng = np.random.default_rng(fmt.width)
    a_rows, b_rows = operand_rows(config, rng)
    a, b = np.concatenate(a_rows), np.concatenate(b_rows)
    assert len(a) == PRODUCTS
    # The products cover rounded (below the LSB), exact and clamped terms.
    mag_a, mag_b = a & fmt.mag_mask, b & fmt.mag_mask
    live = (mag_a != 0) & (mag_b != 0)
    octave = (mag_a + mag_b - 2 * fmt.bias) >> fmt.frac_bits
    shift = octave - config.mantissa_bits + config.acc_frac_bits
    assert (live & (shift < 0) & (shift > -config.mantissa_bits)).sum() > 1000
    assert (live & (shift >= 0) & (shift < config.acc_bits - config.mantissa_bits - 2)).any()
    assert (live & (shift >= config.acc_bits - config.mantissa_bits - 1)).sum() > 1000
    acc, nan, overflow = check_against_golden(a_rows, b_rows, config, pipelined=pipelined)
    clean = ~nan & ~overflow
    assert (acc[clean] > 0).sum() > 500 and (acc[clean] < 0).sum() > 500
    assert (overflow & ~nan).any() and nan.any()
