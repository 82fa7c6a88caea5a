"""The LOAD walk alone: a LOAD payload's bytes in (as the parser hands them on), writes out."""

import pytest
from amaranth.sim import Simulator

from palhdl.boards.hostlink.loadwalk import LoadWalk

ROWS, COLS, K_MAX = 2, 3, 5


def entry(byte, *, drop=False):
    """A receive-FIFO entry with the comparisons the receiver makes (k_max = K_MAX)."""
    return {
        "byte": 0 if drop else byte,
        "framing_error": False,
        "drop": drop,
        "is_sync": False,
        "is_zero": not drop and byte == 0,
        "is_one": not drop and byte == 1,
        "above_k_low": not drop and byte > K_MAX % 256,
        "is_k_high": not drop and byte == K_MAX // 256,
        "above_k_high": not drop and byte > K_MAX // 256,
    }


def walk(*payloads, is_a, width=8):
    """For each payload, start a walk, then hand on its bytes (``None``: a drop marker) as the
    parser does: an entry is taken (``payload`` set) and acted on (``got``) in the next cycle,
    every third cycle. Returns the writes, the invalidations, the last K, and the walk's flags
    as each byte is acted on and at the end.
    """
    dut = LoadWalk(rows=ROWS, cols=COLS, k_max=K_MAX, width=width)
    c, load = dut.control, dut.load
    out = {"words": {}, "scales": {}, "invalidated": [], "flags": []}

    async def bench(ctx):
        ctx.set(c.is_a, is_a)
        steps = []
        for payload in payloads:
            steps.append(("start", None))
            for byte in payload:
                steps += [("take", byte), ("act", byte), ("idle", None)]
        for kind, byte in [*steps, *[("idle", None)] * 4]:
            ctx.set(c.start, kind == "start")
            ctx.set(c.payload, kind == "take")
            ctx.set(c.got, kind == "act")
            if kind == "act":
                ctx.set(c.entry, entry(byte or 0, drop=byte is None))
                flags = (ctx.get(c.k_bad), ctx.get(c.last_scale), ctx.get(c.complete))
                out["flags"].append(flags)
            if ctx.get(load.invalidate_a) or ctx.get(load.invalidate_b):
                out["invalidated"].append((ctx.get(load.invalidate_a), ctx.get(load.invalidate_b)))
            for lanes, enables, side in ((ROWS, load.a_en, "a"), (COLS, load.b_en, "b")):
                for lane in range(lanes):
                    if ctx.get(enables) >> lane & 1:
                        out["words"][(side, lane, ctx.get(load.address))] = ctx.get(load.word)
            for lanes, enables, side in (
                (ROWS, load.scale_a_en, "a"),
                (COLS, load.scale_b_en, "b"),
            ):
                for index in range(2 * lanes):
                    if ctx.get(enables) >> index & 1:
                        out["scales"][(side, index)] = ctx.get(load.scale_byte)
            await ctx.tick()
        out["k"] = ctx.get(load.k)
        out["end"] = (ctx.get(c.k_bad), ctx.get(c.last_scale), ctx.get(c.complete))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def test_load_a_words_scales_and_flags():
    # K = 2; A (2 x 2) row by row; scales 0x0201, 0x0403.
    payload = [2, 0, 0x11, 0x22, 0x33, 0x44, 1, 2, 3, 4]
    out = walk(payload, is_a=True)
    assert out["invalidated"] == [(1, 0)]
    assert out["k"] == 2
    assert out["words"] == {
        ("a", 0, 0): 0x11,
        ("a", 0, 1): 0x22,
        ("a", 1, 0): 0x33,
        ("a", 1, 1): 0x44,
    }
    assert out["scales"] == {("a", i): i + 1 for i in range(4)}
    # last_scale while the last scale byte is next (acted on: before it), complete after it.
    assert [flags[1] for flags in out["flags"]] == [0] * 9 + [1]
    assert [flags[2] for flags in out["flags"]] == [0] * 10
    assert out["end"] == (0, 0, 1)


def test_load_b_with_two_byte_words():
    # K = 1, B (1 x 3) of 11-bit words, little endian.
    payload = [1, 0, 0x23, 0x01, 0x56, 0x04, 0x89, 0x07, *range(6)]
    out = walk(payload, is_a=False, width=11)
    assert out["invalidated"] == [(0, 1)]
    assert out["words"] == {("b", 0, 0): 0x123, ("b", 1, 0): 0x456, ("b", 2, 0): 0x789}
    assert out["scales"] == {("b", i): i for i in range(6)}
    assert out["end"] == (0, 0, 1)


@pytest.mark.parametrize("k", [0, K_MAX + 1, 0x100 + K_MAX])
def test_k_out_of_range_writes_nothing(k):
    payload = [k % 256, k // 256, *[7] * (2 * 2 + 4)]
    out = walk(payload, is_a=True)
    assert out["words"] == {} and out["scales"] == {}
    assert out["end"][0] == 1


def test_a_drop_marker_writes_nothing():
    # K = 1: words A[0,0], then a marker where A[1,0] would be, then scales.
    out = walk([1, 0, 0x11, None, 1, 2, 3, 4], is_a=True)
    assert out["words"] == {("a", 0, 0): 0x11}
    assert out["scales"] == {("a", i): i + 1 for i in range(4)}


def test_start_clears_k_range():
    # K = 0 (K_RANGE, nothing written), then a new LOAD_A with K = K_MAX: in range again.
    good = [K_MAX, 0, *range(2 * K_MAX), 9, 0, 8, 0]
    out = walk([0, 0], good, is_a=True)
    assert out["invalidated"] == [(1, 0), (1, 0)]
    assert out["end"] == (0, 0, 1) and out["k"] == K_MAX
    expected = {("a", i, k): i * K_MAX + k for i in range(2) for k in range(K_MAX)}
    assert out["words"] == expected
    assert out["scales"] == {("a", 0): 9, ("a", 1): 0, ("a", 2): 8, ("a", 3): 0}
