"""Fixtures of the formal proofs: ``formal`` runs SymbiYosys on a property harness."""

import pytest

from palhdl.sim.formal import prove


@pytest.fixture
def formal(tmp_path):
    """``formal(design, mode=..., depth=..., name=...)``: :func:`palhdl.sim.formal.prove`.

    Each call gets its own work directory under the test's ``tmp_path`` (SBY's log and any
    counterexample waveform stay there).
    """

    def run(design, *, mode, depth, name="proof", timeout=None):
        return prove(design, mode=mode, depth=depth, workdir=tmp_path / name, timeout=timeout)

    return run
