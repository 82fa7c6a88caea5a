"""The receiver alone: characters on the rx pin in, annotated FIFO entries out."""

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from palhdl.boards.hostlink.receiver import RX_FIFO_DEPTH, Receiver

DIVISOR = 4
K_MAX = 0x123  # bytes 0x23 (low) and 0x01 (high)


def line(characters):
    """Per-cycle levels of the rx pin: ``(byte, stop_bit)`` characters, back to back."""
    levels = [1] * 8
    for byte, stop in characters:
        for bit in (0, *((byte >> i) & 1 for i in range(8)), stop):
            levels += [bit] * DIVISOR
        levels += [1] * DIVISOR * (1 - stop)  # let the line return high after a framing error
    return [*levels, *[1] * 20 * DIVISOR]


def receive(levels, *, ready_from=0, clear_at=None):
    """Drive ``levels`` on rx; take entries from cycle ``ready_from`` on. Returns the entries
    (with the cycle each was taken), ``line_error`` per cycle and the receiver's latency.
    """
    dut = Receiver(divisor=DIVISOR, k_max=K_MAX)
    taken, line_error = [], []

    async def bench(ctx):
        for cycle, level in enumerate(levels):
            ctx.set(dut.rx, level)
            ctx.set(dut.o.ready, cycle >= ready_from)
            ctx.set(dut.clear_line_error, cycle == clear_at)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                fields = ctx.get(dut.o.payload)
                entry = {name: int(getattr(fields, name)) for name in ENTRY_FIELDS}
                taken.append((cycle, entry))
            line_error.append(ctx.get(dut.line_error))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return taken, line_error, dut.latency


ENTRY_FIELDS = (
    "byte",
    "framing_error",
    "drop",
    "is_sync",
    "is_zero",
    "is_one",
    "above_k_low",
    "is_k_high",
    "above_k_high",
)


def expected(byte, *, framing_error=0):
    return {
        "byte": byte,
        "framing_error": framing_error,
        "drop": 0,
        "is_sync": int(byte == 0xA5 and not framing_error),
        "is_zero": int(byte == 0),
        "is_one": int(byte == 1),
        "above_k_low": int(byte > 0x23),
        "is_k_high": int(byte == 0x01),
        "above_k_high": int(byte > 0x01),
    }


#: The drop marker: input was lost here; every other field is 0.
MARKER = {**dict.fromkeys(ENTRY_FIELDS, 0), "drop": 1}


def test_entries_carry_the_comparisons():
    data = [0xA5, 0x00, 0x01, 0x23, 0x24, 0x02, 0xFF]
    taken, line_error, latency = receive(line([(byte, 1) for byte in data] + [(0xA5, 0)]))
    assert [entry for _, entry in taken] == [
        *(expected(byte) for byte in data),
        expected(0xA5, framing_error=1),  # a low stop bit: not SYNC
    ]
    # The entry of the first character is offered `latency` cycles after its stop bit's middle.
    stop_middle = 8 + 9 * DIVISOR + DIVISOR // 2
    assert taken[0][0] - stop_middle == latency
    assert line_error[-1] and not line_error[taken[-2][0]]


@pytest.mark.parametrize("after", [[], [0x77]])
def test_overflow_stores_one_drop_marker_and_clear_line_error(after):
    # Three characters find the FIFO full. The marker is stored as soon as the FIFO has room,
    # after the entries stored before the overrun, even when no character follows the burst.
    count = RX_FIFO_DEPTH + 3
    full = line([(byte, 1) for byte in range(count)])
    levels = full + line([(byte, 1) for byte in after])
    start = len(full)  # all characters are in (or dropped) before the FIFO is read
    taken, line_error, _ = receive(levels, ready_from=start, clear_at=start + 4)
    assert [entry for _, entry in taken] == [
        *(expected(byte) for byte in range(RX_FIFO_DEPTH)),
        MARKER,
        *(expected(byte) for byte in after),
    ]
    assert line_error[start] and not line_error[start + 5]


def test_the_marker_comes_before_the_characters_after_the_overrun():
    # The FIFO is full while two characters arrive and is read from the middle of the third:
    # the two are dropped, the marker is stored at once, then the rest of the burst in order.
    count = RX_FIFO_DEPTH + 20
    levels = line([(byte % 256, 1) for byte in range(count)])
    fill = 8 + (RX_FIFO_DEPTH + 2) * 10 * DIVISOR + 5 * DIVISOR
    taken, _, _ = receive(levels, ready_from=fill)
    entries = [entry for _, entry in taken]
    marker = entries.index(MARKER)
    assert entries[:marker] == [expected(byte) for byte in range(marker)]
    assert marker == RX_FIFO_DEPTH
    # After the marker: only characters that arrived once it was stored, in order.
    rest = [entry["byte"] for entry in entries[marker + 1 :]]
    assert rest == list(range(RX_FIFO_DEPTH + 2, count))
    assert MARKER not in entries[marker + 1 :]


def test_receiver_rejects_bad_parameters():
    with pytest.raises(ValueError, match=r"k_max must be in \[1, 4096\], not 0"):
        Receiver(divisor=DIVISOR, k_max=0)
    with pytest.raises(ValueError, match=r"divisor must be in \[4, "):
        Receiver(divisor=3, k_max=1)
    dut = Receiver(divisor=DIVISOR, k_max=1)
    Fragment.get(dut, None)
    assert (dut.divisor, dut.k_max) == (DIVISOR, 1)
