"""The RTL part of ``palhdl demo`` and the ``palhdl sim`` command.

Both run a real matrix multiplication through the simulated systolic array, check it bit for bit
against the golden model and report its error against float64.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from palhdl.format import MacConfig, PALFormat
from palhdl.progress import ProgressBar
from palhdl.sim import golden
from palhdl.sim.driver import MatmulStats, matmul
from palhdl.validate import check_int

__all__ = [
    "MAX_ELEMENTS",
    "TEST_DIGITS",
    "digits_mlp",
    "report_matmul",
    "run_array_demo",
    "run_random_matmul",
]

#: Digits :func:`digits_mlp` trains on; the rest of scikit-learn's 1797 are the test set.
TRAIN_DIGITS = 1400
#: Size of the test set, the largest ``batch`` of :func:`run_array_demo`.
TEST_DIGITS = 1797 - TRAIN_DIGITS
#: Largest operand or result of :func:`run_random_matmul`, in elements (``2**24``: 128 MiB of
#: float64, hours of simulation).
MAX_ELEMENTS = 1 << 24


def digits_mlp(seed: int = 0):
    """Train a 64-32-10 MLP on scikit-learn's bundled 8x8 digits (no download).

    Returns ``(x_test, y_test, (w1, b1, w2, b2))`` with pixels scaled to [0, 1].
    """
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    order = np.random.default_rng(seed).permutation(len(x))
    train, test = order[:TRAIN_DIGITS], order[TRAIN_DIGITS:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=seed)
        model.fit(x[train], y[train])
    w1, w2 = model.coefs_
    b1, b2 = model.intercepts_
    return x[test], y[test], (w1, b1, w2, b2)


def report_matmul(label: str, result, expected, reference, stats: MatmulStats, out) -> bool:
    """Print bit-exactness, error against float64 and simulation statistics; True if exact."""
    exact = np.array_equal(np.asarray(result).view(np.uint32), np.asarray(expected).view(np.uint32))
    error = np.linalg.norm(result - reference) / np.linalg.norm(reference)
    print(f"{label}", file=out)
    print(f"  bit-exact with golden.matmul:  {'yes' if exact else 'NO'}", file=out)
    print(f"  relative error vs float64:     {error:.4f} (Frobenius)", file=out)
    print(
        f"  {stats.tiles} tiles, {stats.cycles} cycles, {stats.macs} MACs, utilisation "
        f"{stats.utilisation:.1%}, {stats.cycles_per_second:.0f} simulated cycles/s",
        file=out,
    )
    return exact


def run_array_demo(*, rows: int = 4, cols: int = 4, batch: int = 8, seed: int = 0, out=None):
    """Run the first layer of a digits MLP through the simulated pal8 array; True if exact.

    ``batch`` is at most :data:`TEST_DIGITS`, the test set's size (a ``ValueError`` otherwise).
    """
    batch = check_int("batch", batch, 1, TEST_DIGITS)
    out = out if out is not None else sys.stdout
    fmt = PALFormat(int_bits=4, frac_bits=3)
    config = MacConfig(fmt)
    x_test, y_test, (w1, b1, w2, b2) = digits_mlp(seed)
    x = x_test[:batch]
    print(
        f"\nRTL: layer 1 of a 64-32-10 MLP on scikit-learn's digits, batch {batch} "
        f"({batch}x64 @ 64x32), on a simulated {rows}x{cols} pal8 systolic array "
        f"(W={config.mantissa_bits}, {config.acc_bits}-bit exact accumulator)",
        file=out,
    )
    result, stats = matmul(
        x,
        w1,
        config=config,
        rows=rows,
        cols=cols,
        output="float32",
        progress=ProgressBar("  simulating"),
    )
    expected = golden.matmul_values(x, w1, config).to_float32()
    exact = report_matmul("  layer 1 output", result, expected, x @ w1, stats, out)

    def forward(layer):
        hidden = np.maximum(layer(x_test, w1) + b1, 0.0)
        return np.argmax(layer(hidden, w2) + b2, axis=1)

    float_pred = forward(lambda a, b: a @ b)
    pal_pred = forward(lambda a, b: golden.matmul_values(a, b, config).to_float64())
    print(
        f"  whole network on {len(y_test)} test digits (golden model, both layers pal8): "
        f"accuracy {np.mean(pal_pred == y_test):.1%} vs float64 {np.mean(float_pred == y_test):.1%}"
        f", {np.mean(pal_pred == float_pred):.1%} identical predictions",
        file=out,
    )
    return exact


def run_random_matmul(
    *,
    fmt: PALFormat,
    rows: int,
    cols: int,
    m: int,
    k: int,
    n: int,
    output: str,
    pipelined: bool,
    seed: int,
    block_size: int | None = None,
    vcd_path=None,
    backend: str = "pysim",
    out=None,
) -> bool:
    """``palhdl sim``: a Gaussian matmul through the simulated array; True if bit-exact.

    ``block_size`` selects block scaling (a block-scaled array, ``docs/format.md`` section 11)
    instead of per-row/column scales. ``backend`` is the simulator
    (:data:`palhdl.sim.driver.BACKENDS`); the report gives its simulated cycles/s and, for a
    compiled backend, the one-time compile separately. ``m * k``, ``k * n`` and ``m * n`` are at
    most :data:`MAX_ELEMENTS` (a ``ValueError`` naming them otherwise, before any work).
    """
    out = out if out is not None else sys.stdout
    for names, size in (("m x k", m * k), ("k x n", k * n), ("m x n", m * n)):
        if size > MAX_ELEMENTS:
            raise ValueError(
                f"{names} = {size} elements, above the limit of {MAX_ELEMENTS} (2**24); "
                "choose smaller -m, -k, -n"
            )
    config = MacConfig(fmt)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    print(
        f"{m}x{k} @ {k}x{n} Gaussian matmul on a simulated {rows}x{cols} {fmt} array "
        f"(output {output}, {'pipelined' if pipelined else 'combinational'} PEs, "
        f"W={config.mantissa_bits}, accumulator {config.acc_bits} bits / "
        f"{config.acc_frac_bits} fraction bits, "
        f"{'per-row/column scales' if block_size is None else f'blocks of {block_size}'})",
        file=out,
    )
    result, stats = matmul(
        a,
        b,
        config=config,
        rows=rows,
        cols=cols,
        output=output,
        pipelined=pipelined,
        block_size=block_size,
        vcd_path=vcd_path,
        progress=ProgressBar("  simulating"),
        backend=backend,
    )
    _report_backend(backend, stats, out)
    expected = golden.matmul_values(a, b, config, block_size=block_size)
    if output == "raw":
        exact = np.array_equal(result["acc"], expected.acc)
        print(
            f"  raw accumulators bit-exact with golden.matmul: {'yes' if exact else 'NO'}", file=out
        )
        print(f"  {stats.cycles} cycles, utilisation {stats.utilisation:.1%}", file=out)
    elif output == "pal":
        exact = np.array_equal(result, expected.to_pal())
        error = np.linalg.norm(golden.decode(result, fmt) - a @ b) / np.linalg.norm(a @ b)
        print(f"  PAL results bit-exact with golden.matmul: {'yes' if exact else 'NO'}", file=out)
        print(
            f"  relative error vs float64: {error:.4f}; {stats.cycles} cycles, "
            f"utilisation {stats.utilisation:.1%}",
            file=out,
        )
    else:
        exact = report_matmul("  result", result, expected.to_float32(), a @ b, stats, out)
    if vcd_path is not None:
        print(f"  waveform written to {vcd_path}", file=out)
    return exact


def _report_backend(backend: str, stats: MatmulStats, out) -> None:
    """Print the simulator's speed, and its one-time compile (cached) apart from it."""
    if "compile_seconds" in stats.extra:
        seconds = stats.extra["compile_seconds"]
        note = f"compiled in {seconds:.1f} s"
        if "compiled" in stats.extra:  # a cached model
            note = f"{note}, cached for later runs" if stats.extra["compiled"] else "cached"
        print(f"  {backend} model: {note} (not counted below)", file=out)
    print(
        f"  {backend}: {stats.cycles} cycles in {stats.seconds:.3f} s, "
        f"{stats.cycles_per_second:,.0f} simulated cycles/s",
        file=out,
    )
