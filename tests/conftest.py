"""Shared test helpers: the size of the random-vector suites.

``PALHDL_RANDOM_VECTORS`` sets how many random vectors the 100,000-vector RTL suites (pal16 and
the odd format I = 5, F = 6 through the operators, converters and MAC) run; unset, they run the
full count, as CI does. A smaller count (for example 2000) makes a quick local check of those
suites; it never raises the count above the full one.
"""

import os

import pytest

RANDOM_VECTORS_ENV = "PALHDL_RANDOM_VECTORS"


def _random_vector_limit() -> int | None:
    text = os.environ.get(RANDOM_VECTORS_ENV)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise pytest.UsageError(
            f"{RANDOM_VECTORS_ENV} must be a positive integer, not {text!r}"
        ) from None
    if value < 1:
        raise pytest.UsageError(f"{RANDOM_VECTORS_ENV} must be a positive integer, not {text!r}")
    return value


@pytest.fixture(scope="session")
def random_vectors():
    """``random_vectors(full)``: ``full``, or ``$PALHDL_RANDOM_VECTORS`` if that is smaller."""
    limit = _random_vector_limit()

    def count(full: int) -> int:
        return full if limit is None else min(full, limit)

    return count
