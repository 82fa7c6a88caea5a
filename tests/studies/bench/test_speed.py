"""``palhdl bench``'s speed section: the quick measurement's schema, and its rendering."""

import json

from palhdl.studies.bench import speed


def check_quick_speed(data: dict, messages: list[str]) -> None:
    """The speed section of a quick run (``test_run.py`` runs one): complete and exact."""
    assert json.loads(json.dumps(data)) == data  # plain JSON
    assert len(messages) >= 3
    gold = data["golden"]
    assert (gold["m"], gold["k"], gold["n"]) == speed.golden_shape(True)
    assert gold["macs"] == gold["m"] * gold["k"] * gold["n"]
    assert gold["numpy_float64"]["macs_per_second"] > 0
    assert [row["block_size"] for row in gold["rows"]] == [None, speed.BLOCK_SIZE]
    for row in gold["rows"]:
        assert row["seconds"] > 0 and row["macs_per_second"] > 0 and row["numpy_ratio"] > 0
    runs = data["simulation"]
    assert [run["backend"] for run in runs] == ["pysim", "verilator"]
    for run in runs:
        assert "unavailable" not in run, run
        tiles = -(-run["m"] // run["rows"]) * -(-run["n"] // run["cols"])
        assert run["tiles"] == tiles
        # Every tile streams K beats: at least that many cycles.
        assert run["cycles"] >= tiles * run["k"]
        assert run["seconds"] > 0 and run["cycles_per_second"] > 0
        assert run["bit_exact"] is True
    assert runs[0]["compile_seconds"] is None
    assert runs[1]["compile_seconds"] >= 0 and runs[1]["loop_seconds"] > 0


def test_a_missing_simulator_is_recorded(monkeypatch):
    def missing(*_args, **_kwargs):
        raise speed.SimulatorNotFound("Icarus Verilog not found: apt-get install iverilog")

    monkeypatch.setattr(speed, "matmul", missing)
    run = {"backend": "icarus", "rows": 2, "m": 2, "k": 4, "n": 2}
    entry = speed.measure_simulation(run, seed=0)
    assert entry["unavailable"] == "Icarus Verilog not found: apt-get install iverilog"
    assert "cycles" not in entry


def _sample() -> dict:
    run = {"rows": 4, "cols": 4, "m": 8, "k": 16, "n": 8, "tiles": 4, "cycles": 200}
    return {
        "quick": True,
        "golden": {
            "m": 2,
            "k": 3,
            "n": 4,
            "macs": 24,
            "repeats": 5,
            "numpy_float64": {"seconds": 1e-6, "macs_per_second": 2.4e7},
            "rows": [
                {
                    "format": "pal8",
                    "scaling": "row/column",
                    "block_size": None,
                    "seconds": 1e-3,
                    "macs_per_second": 2.4e4,
                    "numpy_ratio": 1e-3,
                }
            ],
        },
        "simulation": [
            {**run, "backend": "pysim", "seconds": 0.5, "cycles_per_second": 400.0,
             "loop_seconds": None, "compile_seconds": None, "compiled_now": False,
             "bit_exact": True},
            {**run, "backend": "verilator", "seconds": 0.01, "cycles_per_second": 2e4,
             "loop_seconds": 1e-4, "compile_seconds": 30.5, "compiled_now": True,
             "bit_exact": False},
            {"backend": "icarus", "rows": 4, "cols": 4, "m": 8, "k": 16, "n": 8,
             "unavailable": "Icarus Verilog not found"},
        ],
    }  # fmt: skip


def test_render_tables_and_explanation():
    lines = speed.render(_sample())
    assert all(isinstance(line, str) for line in lines)
    assert not any(line.startswith("# ") for line in lines)
    text = "\n".join(lines)
    assert "| golden `matmul_values`, pal8, row/column" in text
    assert "24 kMAC/s" in text and "24 MMAC/s" in text
    pysim = next(line for line in lines if line.startswith("| pysim"))
    assert "400" in pysim and "none" in pysim and "yes" in pysim
    verilator = next(line for line in lines if line.startswith("| verilator"))
    # 200 cycles in the 1e-4 s loop: 2 M cycles/s; a failed comparison is shown, not hidden.
    assert "2 M" in verilator and "30.5 s" in verilator and "**NO**" in verilator
    assert "unavailable: Icarus Verilog not found" in text
    assert "perf_counter" in text
