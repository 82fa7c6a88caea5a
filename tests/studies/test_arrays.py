"""The comparison-array search (palhdl/studies/arrays.py).

The search runs against stand-in builds (monkeypatched over ``build_array``) whose cost and
timing follow a made-up law, so its choices can be checked against hand-worked expectations in
milliseconds; the Yosys estimate runs for real on one small variant.
"""

from __future__ import annotations

import pytest

from palhdl.boards.platforms import get_board
from palhdl.hdl.providers import FP8Arithmetic, IntArithmetic, PALArithmetic
from palhdl.studies import arrays
from palhdl.studies.arrays import (
    INT8_ACC_BITS,
    VARIANTS,
    Estimate,
    SearchResult,
    estimate_variant,
    make_arithmetic,
    outcome,
    resource_use,
    search,
    shapes,
)
from palhdl.synth.arraybuild import ArrayBuildReport
from palhdl.synth.build import BuildError
from palhdl.synth.report import ClockTiming

ICEBREAKER = get_board("icebreaker")
LOGIC = "Logic cells (LUT4+FF+carry)"


def test_shapes_are_square_ish_and_sorted_by_size():
    assert shapes(16) == [
        (1, 1),
        (1, 2),
        (2, 2),
        (2, 3),
        (2, 4),
        (3, 3),
        (3, 4),
        (3, 5),
        (4, 4),
    ]
    everything = shapes()
    assert all(r <= c <= 2 * r and c <= 64 for r, c in everything)
    sizes = [r * c for r, c in everything]
    assert sizes == sorted(sizes) and everything[-1] == (64, 64)
    assert (12, 13) in everything and (3, 7) not in everything


def test_make_arithmetic():
    int8 = make_arithmetic("int8", ICEBREAKER)
    assert isinstance(int8, IntArithmetic) and (int8.width, int8.acc_bits) == (8, INT8_ACC_BITS)
    assert INT8_ACC_BITS == 22  # exact for K <= 127: 127 * 2**14 < 2**21
    fp8 = make_arithmetic("fp8", ICEBREAKER)
    assert isinstance(fp8, FP8Arithmetic) and fp8.variant == "e4m3"
    window = fp8.accumulator
    assert (window.acc_bits, window.acc_frac_bits, window.term_bits) == (32, 12, 14)
    assert not window.saturate
    pal = make_arithmetic("pal8", get_board("ulx3s-85f"))
    assert isinstance(pal, PALArithmetic)
    assert pal.config == get_board("ulx3s-85f").default_config()
    with pytest.raises(ValueError, match="arithmetic must be one of 'pal8', 'int8', 'fp8'"):
        make_arithmetic("int4", ICEBREAKER)
    assert {VARIANTS[name][:2] for name in VARIANTS} == {
        ("pal8", True),
        ("int8", True),
        ("int8", False),
        ("fp8", False),
        ("fp8", True),
    }


def _estimate(per_pe: float, fixed: float = 300.0) -> Estimate:
    return Estimate(
        "ice40",
        fixed={"logic": fixed, "dsp": 0.0, "bram": 0.0},
        per_pe={"logic": per_pe, "dsp": 0.0, "bram": 0.0},
    )


def _report(rows: int, cols: int, *, logic: int, fmax: float | None, mhz: float = 20.0):
    return ArrayBuildReport(
        board="icebreaker",
        board_title=ICEBREAKER.title,
        arithmetic="int8, 22-bit wrapping accumulator",
        rows=rows,
        cols=cols,
        dsp=False,
        k=64,
        requested_mhz=mhz,
        sync_mhz=mhz,
        pll=None,
        resources={
            LOGIC: {"used": logic, "available": 5280},
            "DSP (SB_MAC16)": {"used": 0, "available": 8},
            "BRAM (4 kbit)": {"used": 0, "available": 30},
        },
        clocks=[] if fmax is None else [ClockTiming("board.clk", fmax, mhz)],
    )


def test_estimate_predicts_calibrates_and_keeps_hard_blocks_within_the_device():
    estimate = _estimate(200.0)
    assert estimate.predict(10) == {"logic": 2300.0, "dsp": 0.0, "bram": 0.0}
    assert estimate.plausible(23, 0.95)  # 4900 <= 0.95 * 5280 = 5016
    assert not estimate.plausible(24, 0.95)  # 5100
    estimate.calibrate(_report(4, 5, logic=4900 * 2, fmax=30.0))
    assert estimate.scale["logic"] == pytest.approx(9800 / 4300)
    assert estimate.predict(20)["logic"] == pytest.approx(9800)
    assert "dsp" not in estimate.scale  # nothing used: nothing to scale by
    dsp = Estimate("ice40", {"logic": 0.0, "dsp": 0.0}, {"logic": 10.0, "dsp": 1.0})
    assert dsp.capacity == {"logic": 5280, "dsp": 8, "bram": 30}
    assert dsp.plausible(8, 0.5) and not dsp.plausible(9, 1.0)  # DSPs may all be used


def _fake_builds(monkeypatch, law):
    """Replace build_array by ``law(rows, cols) -> (logic, fmax)``; record the shapes built."""
    built = []

    def fake(board, *, rows, cols, clk_freq, out_dir, allow_timing_fail, pack, **_):
        assert allow_timing_fail and not pack
        assert out_dir.name == f"icebreaker-int8-lut-{rows}x{cols}"
        built.append((rows, cols))
        logic, fmax = law(rows, cols)
        fits = logic <= 5280
        report = _report(rows, cols, logic=logic, fmax=fmax if fits else None, mhz=clk_freq / 1e6)
        if not fits:
            raise BuildError("the design does not fit", report)
        return report

    monkeypatch.setattr(arrays, "build_array", fake)
    return built


def _search(estimate, **kwargs) -> SearchResult:
    lines = []
    result = search(
        "int8-lut",
        "icebreaker",
        clk_freq=20e6,
        out_dir="unused",
        estimate=estimate,
        progress=False,
        log=lines.append,
        **kwargs,
    )
    previous = kwargs.get("previous")
    assert len(lines) == len(result.builds) - (0 if previous is None else len(previous.builds))
    return result


def test_search_with_a_good_estimate_builds_once(monkeypatch):
    # True cost 300 + 230 per PE: 4 x 5 = 20 PEs (4900) fits, 4 x 6 = 24 (5820) does not.
    built = _fake_builds(monkeypatch, lambda r, c: (300 + 230 * r * c, 25.0))
    result = _search(_estimate(200.0))
    # Estimated 300 + 200 P <= 5016: P <= 23, so 4 x 5; rescaled by 4900 / 4300, 24 PEs are
    # estimated at 5811 > 5016 and not tried.
    assert built == [(4, 5)]
    assert result.best == 0 and result.best_report.pes == 20


def test_search_jumps_up_from_a_pessimistic_estimate(monkeypatch):
    built = _fake_builds(monkeypatch, lambda r, c: (300 + 230 * r * c, 25.0))
    result = _search(_estimate(300.0), max_builds=6)
    # 300 + 300 P <= 5016: P <= 15 (3 x 5, 3750); rescaled by 3750 / 4800, P <= 20 (4 x 5,
    # 4900); rescaled by 4900 / 6300, nothing larger stays within 95 %.
    assert built == [(3, 5), (4, 5)]
    assert result.best_report.pes == 20 and [outcome(r) for r in result.builds] == ["ok"] * 2


def test_search_resumes_from_earlier_builds(monkeypatch):
    law = lambda r, c: (300 + 230 * r * c, 25.0)  # noqa: E731
    built = _fake_builds(monkeypatch, law)
    first = _search(_estimate(300.0), max_builds=1)
    assert built == [(3, 5)] and first.best == 0
    resumed = _search(_estimate(300.0), max_builds=1, previous=first)
    assert built == [(3, 5), (4, 5)]  # the earlier build is not made again
    assert [(r.rows, r.cols) for r in resumed.builds] == [(3, 5), (4, 5)]
    assert resumed.best == 1
    with pytest.raises(ValueError, match="previous is a search of"):
        search(
            "int8",
            "icebreaker",
            clk_freq=20e6,
            out_dir="unused",
            estimate=_estimate(300.0),
            previous=first,
        )


def test_search_steps_down_after_a_build_that_does_not_fit(monkeypatch):
    built = _fake_builds(monkeypatch, lambda r, c: (300 + 230 * r * c, 25.0))
    result = _search(_estimate(150.0))
    # 300 + 150 P <= 5016: P <= 31, so 5 x 6 (7200: no fit); rescaled by 7200 / 4800 = 1.5,
    # P <= 20 (4 x 5, fits); 24 PEs are then estimated above 95 %.
    assert built == [(5, 6), (4, 5)]
    assert [outcome(r) for r in result.builds] == ["no fit", "ok"]
    assert result.best == 1


def test_search_records_timing_failures_and_stops_after_max_builds(monkeypatch):
    built = _fake_builds(monkeypatch, lambda r, c: (100 * r * c, 50.0 - r * c))
    result = _search(_estimate(100.0, fixed=0.0), max_builds=3)
    assert built == [(5, 10), (7, 7), (6, 8)]  # 50, 49, 48 PEs: Fmax 0..2 MHz < 20
    assert [outcome(r) for r in result.builds] == ["timing"] * 3
    assert result.best is None and result.best_report is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"variant": "int4"}, ValueError, "variant must be one of"),
        ({"clk_freq": 5e6}, ValueError, "clk_freq must be between 16 MHz and 275 MHz"),
        ({"max_utilisation": 1.5}, ValueError, r"max_utilisation must be in \(0, 1\]"),
        ({"max_builds": 0}, ValueError, r"max_builds must be in \[1, inf\], not 0"),
    ],
)
def test_search_rejects_bad_parameters(kwargs, error, message):
    arguments = {"variant": "int8", "clk_freq": 20e6, "estimate": _estimate(100.0), **kwargs}
    with pytest.raises(error, match=message):
        search(arguments.pop("variant"), "icebreaker", out_dir="unused", **arguments)


def test_search_result_round_trips_through_json():
    result = SearchResult("icebreaker", "int8-lut", 20.0, 0.95)
    result.builds = [_report(4, 5, logic=4900, fmax=25.0), _report(5, 6, logic=7200, fmax=None)]
    result.best = 0
    assert SearchResult.from_dict(result.to_dict()) == result
    assert resource_use(result.builds[1], "logic") == (7200, 5280)
    assert resource_use(result.builds[1], "ff") is None  # iCE40 flip-flops sit in logic cells


def test_estimate_variant_with_yosys():
    estimate = estimate_variant("int8", ICEBREAKER)
    # One SB_MAC16 per PE, no block RAM, a few dozen logic cells per PE around it.
    assert estimate.per_pe["dsp"] == pytest.approx(1.0)
    assert estimate.fixed["dsp"] == pytest.approx(0.0)
    assert estimate.per_pe["bram"] == 0
    assert 20 < estimate.per_pe["logic"] < 200
    assert estimate.plausible(8, 0.95) and not estimate.plausible(9, 0.95)
