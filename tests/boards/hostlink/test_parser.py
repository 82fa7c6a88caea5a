"""The packet parser alone: received entries in, packet verdicts and LOAD writes out."""

import itertools

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from palhdl.boards.hostlink.loadwalk import LoadWalk
from palhdl.boards.hostlink.loadwrite import LoadWriteStage
from palhdl.boards.hostlink.parser import Parser

ROWS, COLS, K_MAX, TIMEOUT = 2, 3, 5, 50


def entry(byte, *, framing_error=False):
    """A receive-FIFO entry with the comparisons the receiver makes (k_max = K_MAX)."""
    return {
        "byte": byte,
        "framing_error": framing_error,
        "drop": False,
        "is_sync": byte == 0xA5 and not framing_error,
        "is_zero": byte == 0,
        "is_one": byte == 1,
        "above_k_low": byte > K_MAX % 256,
        "is_k_high": byte == K_MAX // 256,
        "above_k_high": byte > K_MAX // 256,
    }


#: The receiver's drop marker: input was lost here (every other field is 0).
MARKER = {**dict.fromkeys(entry(0), 0), "drop": True}


def run_parser(items, *, width=8, cycles=None, table_length=None):
    """Feed ``items`` (entries, or ``("gap", n)`` idle cycles) to a parser; resume it two cycles
    after each ``done``. Returns the packets (cmd, error, decoded flags, K), the LOAD writes,
    the LOAD_TABLE events (``("invalidate", None)``, ``("split", byte)``, ``("entry", byte)``),
    the cycles at which entries were taken and the commands whose header was accepted.
    """
    dut = Parser(
        rows=ROWS,
        cols=COLS,
        k_max=K_MAX,
        width=width,
        timeout_cycles=TIMEOUT,
        table_length=table_length,
    )
    flags = (
        "is_identify",
        "is_status",
        "is_load_a",
        "is_load_b",
        "is_load_table",
        "is_run",
        "is_read",
    )
    result = {
        "packets": [],
        "words": {},
        "scales": {},
        "invalidated": [],
        "table": [],
        "taken": [],
        "done": [],
        "accepted": [],
    }
    gaps = sum(item[1] for item in items if isinstance(item, tuple))

    async def bench(ctx):
        queue = list(items)
        resume_at = None
        for cycle in range(cycles or 40 * len(items) + gaps + 8 * TIMEOUT):
            gap = bool(queue) and isinstance(queue[0], tuple)
            ctx.set(dut.i.valid, bool(queue) and not gap)
            if queue and not gap:
                ctx.set(dut.i.payload, queue[0])
            ctx.set(dut.resume, cycle == resume_at)
            acted = not result["taken"] or cycle > result["taken"][-1] + 1  # on the last entry
            quiet = not queue and resume_at is not None and cycle > resume_at and acted
            if quiet and ctx.get(dut.idle):
                break
            load = dut.load
            if ctx.get(dut.accepted):
                result["accepted"].append(ctx.get(dut.cmd))
            if ctx.get(dut.done):
                packet = {"cmd": ctx.get(dut.cmd), "error": ctx.get(dut.error), "k": None}
                packet["flags"] = {name for name in flags if ctx.get(getattr(dut, name))}
                if packet["flags"] & {"is_load_a", "is_load_b"}:
                    packet["k"] = ctx.get(load.k)
                    assert ctx.get(load.target_a) == ("is_load_a" in packet["flags"])
                result["packets"].append(packet)
                result["done"].append(cycle)
                resume_at = cycle + 2
            for lanes, enables, side in ((ROWS, load.a_en, "a"), (COLS, load.b_en, "b")):
                for lane in range(lanes):
                    if ctx.get(enables) >> lane & 1:
                        key = (side, lane, ctx.get(load.address))
                        result["words"][key] = ctx.get(load.word)
            for lanes, enables, side in (
                (ROWS, load.scale_a_en, "a"),
                (COLS, load.scale_b_en, "b"),
            ):
                for index in range(2 * lanes):
                    if ctx.get(enables) >> index & 1:
                        result["scales"][(side, index)] = ctx.get(load.scale_byte)
            for side in ("a", "b"):
                if ctx.get(getattr(load, f"invalidate_{side}")):
                    result["invalidated"].append(side)
            if table_length is not None:
                table = dut.table
                events = [
                    ("invalidate", table.invalidate, None),
                    ("split", table.split_en, table.byte),
                    ("entry", table.entry_en, table.byte),
                ]
                for name, strobe, value in events:
                    if ctx.get(strobe):
                        result["table"].append((name, None if value is None else ctx.get(value)))
            taken = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            if taken:
                result["taken"].append(cycle)
            if gap:
                count = queue[0][1] - 1
                queue[0] = ("gap", count)
                if count == 0:
                    queue.pop(0)
            elif taken:
                queue.pop(0)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return result


def entries(data: bytes):
    return [entry(byte) for byte in data]


def test_load_a_writes_words_and_scales(wire):
    # A (rows 2, K 2): A[0,0], A[0,1], A[1,0], A[1,1]; scales -2, 300.
    codes = [[0x11, 0x22], [0x33, 0x44]]
    result = run_parser(entries(wire.load_packet(0x10, codes, [-2, 300])))
    assert result["packets"] == [
        {"cmd": 0x10, "error": 0, "k": 2, "flags": {"is_load_a"}},
    ]
    # Row k of the A memory holds column k of the tile: lane i = row i of A.
    assert result["words"] == {
        ("a", 0, 0): 0x11,
        ("a", 0, 1): 0x22,
        ("a", 1, 0): 0x33,
        ("a", 1, 1): 0x44,
    }
    assert result["scales"] == {("a", 0): 0xFE, ("a", 1): 0xFF, ("a", 2): 0x2C, ("a", 3): 0x01}
    assert result["invalidated"] == ["a"]


def test_load_b_with_two_byte_words(wire):
    codes = [[0x123, 0x456, 0x789]]  # K = 1, cols 3, 11-bit words in two bytes each
    result = run_parser(entries(wire.load_packet(0x11, codes, [1, 2, 3], word_bytes=2)), width=11)
    assert result["packets"] == [{"cmd": 0x11, "error": 0, "k": 1, "flags": {"is_load_b"}}]
    assert result["words"] == {("b", 0, 0): 0x123, ("b", 1, 0): 0x456, ("b", 2, 0): 0x789}
    assert result["scales"] == {("b", i): value for i, value in enumerate([1, 0, 2, 0, 3, 0])}
    assert result["invalidated"] == ["b"]


@pytest.mark.parametrize(
    ("make", "cmd", "error", "flags"),
    [
        (lambda w: w.packet(0x01), 0x01, 0, {"is_identify"}),
        (lambda w: w.packet(0x21), 0x21, 0, {"is_read"}),
        # CHECKSUM (the CRC of an empty packet is 0: that of its header and HCRC)
        (lambda w: w.packet(0x20)[:-1] + b"\x01", 0x20, 1, {"is_run"}),
        (lambda w: w.packet(0x55, b"xyz"), 0x55, 3, set()),  # UNKNOWN_COMMAND
        (lambda w: w.packet(0x02, b"\x00"), 0x02, 4, {"is_status"}),  # LENGTH
        (lambda w: w.packet(0x11, b"\x01\x00"), 0x11, 4, {"is_load_b"}),  # ends after K
        (lambda w: w.load_packet(0x10, [[1] * 6] * 2, [0, 0]), 0x10, 5, {"is_load_a"}),  # K 6
        (lambda w: w.load_packet(0x10, [[]] * 2, [0, 0], k=0), 0x10, 5, {"is_load_a"}),  # K 0
    ],
)
def test_packet_verdicts(wire, make, cmd, error, flags):
    result = run_parser(entries(b"\x00\x13" + make(wire)))  # bytes before SYNC are ignored
    assert len(result["packets"]) == 1
    packet = result["packets"][0]
    assert (packet["cmd"], packet["error"], packet["flags"]) == (cmd, error, flags)
    assert result["words"] == {}  # no good LOAD among them


def test_timeout_line_error_and_resume(wire):
    status = wire.packet(0x02)
    items = [
        *entries(status[:2]),
        ("gap", TIMEOUT + 10),  # TIMEOUT inside STATUS
        *entries(status[:2]),
        entry(status[2], framing_error=True),
        *entries(status[3:]),  # LINE
        *entries(status),
        *entries(b"\xa5"),  # TIMEOUT before the command byte
    ]
    result = run_parser(items)
    verdicts = [(packet["cmd"], packet["error"]) for packet in result["packets"]]
    assert verdicts == [(0x02, 2), (0x02, 9), (0x02, 0), (0x00, 2)]
    taken, done = result["taken"], result["done"]
    # A packet ends two cycles after its CRC byte is taken (latency 2: taken, acted on, done)
    # or TIMEOUT cycles after its last byte was taken; then nothing is taken until `resume`
    # (pulsed two cycles after `done`) has acted.
    crc_taken = [taken[i] for i in (7, 13)]  # the CRC bytes of the two complete packets
    assert [cycle + 2 for cycle in crc_taken] == done[1:3]
    assert done[0] - taken[1] == TIMEOUT + 1
    # At most one entry every two cycles.
    assert min(b - a for a, b in itertools.pairwise(taken)) == 2
    for cycle in done:
        assert not [t for t in taken if cycle <= t < cycle + 3]
    # With input waiting, reading resumes right then.
    assert next(t for t in taken if t > done[1]) == done[1] + 3
    assert next(t for t in taken if t > done[2]) == done[2] + 3


@pytest.mark.parametrize(("gap", "error"), [(TIMEOUT - 1, 0), (TIMEOUT, 2)])
def test_timeout_boundary(wire, gap, error):
    # Gap cycles after the one that takes the command byte: a byte offered as the time runs
    # out still belongs to the packet, one cycle later the packet has timed out and the rest
    # of it is ignored (between packets only SYNC counts).
    status = wire.packet(0x02)
    result = run_parser([*entries(status[:2]), ("gap", gap), *entries(status[2:])])
    assert [(p["cmd"], p["error"]) for p in result["packets"]] == [(0x02, error)]


def test_parser_rejects_bad_parameters():
    with pytest.raises(ValueError, match=r"timeout_cycles must be in \[2, inf\], not 1"):
        Parser(rows=1, cols=1, k_max=1, width=8, timeout_cycles=1)
    with pytest.raises(ValueError, match=r"table_length must be in \[2, 65535\], not 1"):
        Parser(rows=1, cols=1, k_max=1, width=8, timeout_cycles=2, table_length=1)
    dut = Parser(rows=1, cols=1, k_max=1, width=8, timeout_cycles=2)
    Fragment.get(dut, None)
    assert (dut.word_bytes, dut.latency, dut.timeout_cycles) == (1, 2, 2)
    assert dut.table_length is None and "table" not in dut.signature.members
    # Its parts check their parameters too.
    with pytest.raises(ValueError, match=r"width must be in \[1, 64\], not 0"):
        LoadWalk(rows=1, cols=1, k_max=1, width=0)
    with pytest.raises(ValueError, match=r"k_max must be in \[1, 4096\], not 4097"):
        LoadWriteStage(rows=1, cols=1, k_max=4097, width=8)
    walk = LoadWalk(rows=1, cols=1, k_max=1, width=9)
    Fragment.get(walk, None)
    assert walk.word_bytes == 2
    stage = LoadWriteStage(rows=1, cols=1, k_max=1, width=8)
    Fragment.get(stage, None)
    assert stage.latency == 2


# A table of 3 two-byte entries: LEN = 1 + 3 * 2.
TABLE_LENGTH = 7


def test_load_table_hands_on_split_and_entry_bytes(wire):
    payload = bytes([4, 0x34, 0x12, 0xFF, 0x0F, 0x00, 0x80])
    result = run_parser(entries(wire.packet(0x12, payload)), table_length=TABLE_LENGTH)
    assert result["packets"] == [{"cmd": 0x12, "error": 0, "k": None, "flags": {"is_load_table"}}]
    assert result["table"] == [
        ("invalidate", None),
        ("split", 4),
        *(("entry", byte) for byte in payload[1:]),
    ]
    assert result["words"] == {} and result["invalidated"] == []


# TABLE_LENGTH + 256: LEN's low byte is right, its high byte is not.
@pytest.mark.parametrize("length", [0, 1, TABLE_LENGTH - 1, TABLE_LENGTH + 1, TABLE_LENGTH + 256])
def test_load_table_of_the_wrong_length_writes_nothing(wire, length):
    packet = wire.packet(0x12, bytes(i % 256 for i in range(length)))
    result = run_parser(entries(packet), table_length=TABLE_LENGTH)
    assert [(p["cmd"], p["error"]) for p in result["packets"]] == [(0x12, 4)]  # LENGTH
    assert result["table"] == []


def test_load_table_without_a_loadable_table(wire):
    table = wire.packet(0x12, bytes(TABLE_LENGTH))
    bad_crc = table[:-1] + bytes([table[-1] ^ 1])
    result = run_parser(entries(table + bad_crc + wire.packet(0x01)))
    verdicts = [(p["cmd"], p["error"]) for p in result["packets"]]
    # NOT_LOADABLE, CHECKSUM before it, and the parser is in step for the next packet.
    assert verdicts == [(0x12, 10), (0x12, 1), (0x01, 0)]
    assert result["packets"][0]["flags"] == {"is_load_table"}


# --- protocol 4: the header checksum and the drop marker ----------------------------------

HEADER, LINE = 12, 9  # ErrorCode values, from docs/host-link.md


def hidden_status_load(wire):
    """A LOAD_A (rows 2, K 3) whose six words are a complete, valid STATUS packet."""
    status = wire.packet(0x02)
    assert len(status) == 6
    return wire.load_packet(0x10, [list(status[:3]), list(status[3:])], [7, -7])


@pytest.mark.parametrize("position", [1, 2, 3, 4])  # CODE, LEN low, LEN high, HCRC
@pytest.mark.parametrize("kind", ["load", "table"])
def test_every_single_bit_header_corruption_is_a_header_error(wire, position, kind):
    table_length = TABLE_LENGTH if kind == "table" else None
    if kind == "load":
        packet = hidden_status_load(wire)
    else:
        packet = wire.packet(0x12, bytes([3, *range(TABLE_LENGTH - 1)]))
    identify = wire.packet(0x01)
    for bit in range(8):
        bad = bytearray(packet)
        bad[position] ^= 1 << bit
        # A CRC-8 detects every single-bit error: the header no longer matches its HCRC.
        assert wire.crc8(bytes(bad[1:4])) != bad[4]
        items = [*entries(bad), ("gap", TIMEOUT + 5), *entries(identify)]
        result = run_parser(items, table_length=table_length)
        verdicts = [(p["cmd"], p["error"]) for p in result["packets"]]
        # One HEADER reply with the CODE byte as received (never the hidden STATUS), then the
        # next packet is served; nothing of the corrupted packet was acted upon.
        assert verdicts == [(bad[1], HEADER), (0x01, 0)], (position, bit)
        assert result["accepted"] == [0x01]
        assert result["invalidated"] == [] and result["words"] == {} and result["scales"] == {}
        assert result["table"] == []


def test_the_discard_ends_when_the_line_has_been_quiet(wire):
    # After a bad HCRC every entry is discarded (even a valid packet) until none has come for
    # TIMEOUT cycles: a gap of TIMEOUT - 1 does not end it, a gap of TIMEOUT does.
    bad = bytearray(wire.packet(0x21))
    bad[4] ^= 0x80
    identify = entries(wire.packet(0x01))
    items = [*entries(bad), ("gap", TIMEOUT - 1), *identify, ("gap", TIMEOUT), *identify]
    result = run_parser(items)
    assert [(p["cmd"], p["error"]) for p in result["packets"]] == [(0x21, HEADER), (0x01, 0)]
    taken, done = result["taken"], result["done"]
    last_discarded = taken[len(bad) + len(identify) - 1]
    assert done[0] - last_discarded == TIMEOUT + 1
    assert result["accepted"] == [0x01]


def test_a_drop_marker_between_packets_is_one_line_error(wire):
    status = wire.packet(0x02)
    items = [*entries(status), MARKER, ("gap", TIMEOUT + 5), *entries(status)]
    result = run_parser(items)
    verdicts = [(p["cmd"], p["error"]) for p in result["packets"]]
    assert verdicts == [(0x02, 0), (0x00, LINE), (0x02, 0)]
    assert result["packets"][1]["flags"] == set()


# Bytes before the marker: SYNC, CODE, LEN, HCRC, K and a word, the words and two scale
# bytes, all but the CRC byte.
@pytest.mark.parametrize("cut", [1, 2, 4, 5, 8, 15, 17])
def test_a_drop_marker_inside_a_packet_discards_the_rest(wire, cut):
    # The marker, then at once (the line is not quiet) a valid packet and another marker: all
    # of it is discarded, one LINE reply names the packet in progress, the marker writes
    # nothing and the next packet after a quiet line is served.
    load = wire.load_packet(0x10, [[1, 2, 3], [4, 5, 6]], [1, 2])  # words at bytes 7..12
    identify = entries(wire.packet(0x01))
    items = [*entries(load[:cut]), MARKER, *identify, MARKER, ("gap", TIMEOUT + 5), *identify]
    result = run_parser(items)
    cmd = 0 if cut == 1 else 0x10
    assert [(p["cmd"], p["error"]) for p in result["packets"]] == [(cmd, LINE), (0x01, 0)]
    accepted = cut >= 5
    assert result["accepted"] == ([0x10, 0x01] if accepted else [0x01])
    assert result["invalidated"] == (["a"] if accepted else [])
    # The words before the marker were written (into the invalidated buffer), none after it.
    words = [(("a", i, k), 3 * i + k + 1) for i in range(2) for k in range(3)]
    assert result["words"] == dict(words[: max(0, min(cut, 13) - 7)])
    assert len(result["scales"]) == max(0, cut - 13)


def test_a_drop_marker_during_a_header_discard_changes_nothing(wire):
    bad = bytearray(wire.packet(0x02))
    bad[2] ^= 0x01
    items = [*entries(bad), MARKER, *entries(b"\x00"), ("gap", TIMEOUT + 5), MARKER]
    result = run_parser([*items, ("gap", TIMEOUT + 5)])
    verdicts = [(p["cmd"], p["error"]) for p in result["packets"]]
    assert verdicts == [(0x02, HEADER), (0x00, LINE)]


def test_a_framing_error_between_packets_is_ignored(wire):
    items = [entry(0xA5, framing_error=True), entry(0x13, framing_error=True)]
    result = run_parser([*items, *entries(wire.packet(0x01))])
    assert [(p["cmd"], p["error"]) for p in result["packets"]] == [(0x01, 0)]


@pytest.mark.parametrize("cut", [2, 3, 4])  # the header ends after CODE, LEN low, LEN high
def test_a_header_cut_short_is_a_timeout_that_invalidates_nothing(wire, cut):
    load = wire.load_packet(0x10, [[1], [2]], [0, 0])
    items = [*entries(load[:cut]), ("gap", TIMEOUT + 5), *entries(wire.packet(0x01))]
    result = run_parser(items)
    assert [(p["cmd"], p["error"]) for p in result["packets"]] == [(0x10, 2), (0x01, 0)]
    assert result["invalidated"] == [] and result["accepted"] == [0x01]
