"""``palhdl bench``'s simulated-array section: utilisation against docs/systolic.md, the MLP."""

import json

import pytest

from palhdl.studies.bench import tiles


def documented_cycles(rows: int, cols: int, k: int, product_latency: int) -> int:
    """docs/systolic.md: the last beat enters after K cycles, the drain starts capture_delay
    cycles later and takes 2 * rows - 1 cycles (raw readout: no converter latency)."""
    capture_delay = (rows - 1) + (cols - 1) + product_latency + 1
    return k + capture_delay + 2 * rows - 1


def check_quick_tiles(data: dict, messages: list[str]) -> None:
    """The rtl section of a quick run (``test_run.py`` runs one)."""
    assert json.loads(json.dumps(data)) == data  # plain JSON
    assert len(messages) >= 4
    entries = data["utilisation"]
    assert [entry["arithmetic"] for entry in entries] == ["pal8", "int8", "fp8"]
    # docs/systolic.md: the iCEBreaker's PE is a block-RAM table, not pipelined (latency 1).
    assert entries[0]["product_latency"] == 1
    for entry in entries:
        assert "unavailable" not in entry, entry
        rows, cols, k = entry["rows"], entry["cols"], entry["k"]
        assert (rows, cols, k, entry["backend"]) == (2, 2, 64, "pysim")
        assert entry["bit_exact"] is True
        assert entry["macs"] == rows * k * cols
        cycles = documented_cycles(rows, cols, k, entry["product_latency"])
        assert entry["cycles"] == cycles
        assert entry["utilisation"] == pytest.approx(k / cycles)
        assert 0 < entry["utilisation"] < entry["stream_utilisation"] <= 1
        # K >= capture_delay + 2 * rows - 1: the documented steady state never waits.
        assert entry["steady_utilisation"] == 1.0
        assert entry["stream_cycles"] == cycles + (tiles.STREAM_TILES - 1) * k
    mlp = data["mlp"]
    assert "unavailable" not in mlp
    assert [(m["m"], m["k"], m["n"]) for m in mlp["matmuls"]] == [(4, 64, 32), (4, 32, 10)]
    assert mlp["elements"] == 4 * 32 + 4 * 10
    assert mlp["mismatches"] == 0
    assert all(m["cycles"] > 0 for m in mlp["matmuls"])


def _sample(mismatches: int) -> dict:
    entry = {
        "arithmetic": "pal8", "rows": 4, "cols": 4, "k": 64, "backend": "verilator",
        "product_latency": 1, "cycles": 80, "macs": 1024, "utilisation": 0.8,
        "stream_tiles": 4, "stream_cycles": 272, "stream_utilisation": 0.941,
        "steady_utilisation": 1.0, "bit_exact": True,
    }  # fmt: skip
    missing = {
        "arithmetic": "int8", "rows": 4, "cols": 4, "k": 64, "backend": "verilator",
        "product_latency": 0, "unavailable": "Verilator not found",
    }  # fmt: skip
    matmul = {"m": 8, "k": 64, "n": 32, "elements": 256, "cycles": 1000, "seconds": 0.1}
    return {
        "quick": False,
        "board": "icebreaker",
        "utilisation": [entry, missing],
        "mlp": {
            "backend": "verilator", "rows": 4, "cols": 4, "batch": 8,
            "matmuls": [{**matmul, "layer": "layer 1", "mismatches": mismatches}],
            "elements": 256, "mismatches": mismatches,
        },
    }  # fmt: skip


def test_render():
    lines = tiles.render(_sample(0))
    assert all(isinstance(line, str) for line in lines)
    assert not any(line.startswith("# ") for line in lines)
    text = "\n".join(lines)
    pal8 = next(line for line in lines if line.startswith("| pal8"))
    assert "80.0%" in pal8 and "94.1%" in pal8 and "100.0%" in pal8 and "yes" in pal8
    assert "unavailable: Verilator not found" in text
    assert "1 matmuls, 256 elements compared, every element bit-exact" in text
    assert "capture_delay" in text


def test_render_shows_mismatches():
    lines = tiles.render(_sample(3))
    assert "**3 of 256 elements differ**" in "\n".join(lines)
    layer = next(line for line in lines if line.startswith("| layer 1"))
    assert [cell.strip() for cell in layer.split("|")][4] == "**3**"
