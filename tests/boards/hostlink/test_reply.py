"""The reply generator alone: a reply request in, framed bytes out on its stream."""

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from palhdl.boards.hostlink.reply import Reply, ReplyKind

IDENTIFY = bytes(range(100, 121))
RESULT = bytes([0xA5, 0x00, 0xFF, 0x12, 0x34])  # the result memory (5 bytes)
STATUS = bytes([0x8E, 0x07, 0x04, 0x01, 0x02, 0x00, 0x04])


def send(requests, *, gap=5, change_after_start=False):
    """Send each ``(kind, code, fields)`` request when the generator is free; the sink takes a
    byte, then is not ready for ``gap`` cycles. Returns the bytes of each reply, the cycle of
    each ``start`` and of each reply's first byte, and the cycles ``busy`` was low.
    """
    dut = Reply(identify=IDENTIFY, read_length=len(RESULT))
    out = {"replies": [], "starts": [], "firsts": [], "free": []}

    async def bench(ctx):
        queue = list(requests)
        wait, read_data, current = 0, 0, None
        for cycle in range(400 * (len(requests) + 1)):
            ctx.set(dut.read_data, read_data)
            ctx.set(dut.o.ready, wait == 0)
            ctx.set(dut.start, 0)
            if not ctx.get(dut.busy):
                out["free"].append(cycle)
                if not queue and current is None and out["starts"]:
                    break
                if queue and current is None:
                    kind, code, fields = queue.pop(0)
                    for name, value in dict(kind=kind, code=code, **fields).items():
                        ctx.set(getattr(dut, name), value)
                    ctx.set(dut.start, 1)
                    out["starts"].append(cycle)
                    out["replies"].append(bytearray())
                    current = kind
            elif change_after_start and out["starts"] and cycle == out["starts"][-1] + 1:
                ctx.set(dut.status, [0] * len(STATUS))  # the snapshot must not see this
                ctx.set(dut.run_cycles, 0)
                ctx.set(dut.error, 0)
                ctx.set(dut.command, 0)
                ctx.set(dut.read_flags, 0)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                if not out["replies"][-1]:
                    out["firsts"].append(cycle)
                out["replies"][-1].append(ctx.get(dut.o.payload))
                wait = gap
                reply = out["replies"][-1]
                if len(reply) >= 4 and len(reply) == 6 + int.from_bytes(reply[2:4], "little"):
                    current = None
            elif wait:
                wait -= 1
            read_data = RESULT[ctx.get(dut.read_addr)] if ctx.get(dut.read_addr) < 5 else 0
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    out["latency"] = dut.latency
    return out


REQUESTS = [
    (ReplyKind.EMPTY, 0x90, {}),
    (ReplyKind.ERROR, 0xFF, {"error": 5, "command": 0x10}),
    (ReplyKind.IDENTIFY, 0x81, {}),
    (ReplyKind.STATUS, 0x82, {"status": list(STATUS)}),
    (ReplyKind.RUN, 0xA0, {"run_cycles": 0x1234}),
    (ReplyKind.READ, 0xA1, {"read_flags": 0x01}),
    (ReplyKind.READ, 0xA1, {"read_flags": 0x00}),
]


def expected_replies(wire):
    # A READ reply: the flags byte (bit 0 STALE), then the result memory.
    payloads = [
        b"",
        bytes([5, 0x10]),
        IDENTIFY,
        STATUS,
        bytes([0x34, 0x12]),
        b"\x01" + RESULT,
        b"\x00" + RESULT,
    ]
    return [
        wire.packet(code, payload) for (_, code, _), payload in zip(REQUESTS, payloads, strict=True)
    ]


@pytest.mark.parametrize("gap", [0, 5])
def test_every_kind_of_reply(wire, gap):
    out = send(REQUESTS, gap=gap, change_after_start=True)
    assert [bytes(reply) for reply in out["replies"]] == expected_replies(wire)
    # The first byte is offered `latency` cycles after `start` (the sink is ready then).
    assert [first - start for start, first in zip(out["starts"], out["firsts"], strict=True)] == [
        out["latency"]
    ] * len(REQUESTS)


def test_busy_until_the_crc_byte_is_taken(wire):
    out = send([(ReplyKind.RUN, 0xA0, {"run_cycles": 7})], gap=5)
    assert bytes(out["replies"][0]) == wire.packet(0xA0, bytes([7, 0]))
    start = out["starts"][0]
    free_again = min(cycle for cycle in out["free"] if cycle > start)
    # 8 bytes, each taken 6 cycles apart; busy ends two cycles after the last is taken.
    last_taken = out["firsts"][0] + 7 * 6
    assert free_again == last_taken + 2


def test_reply_rejects_bad_parameters():
    with pytest.raises(ValueError, match="identify must be 21 bytes long, not 4 bytes"):
        Reply(identify=b"PALH", read_length=1)
    with pytest.raises(ValueError, match=r"read_length must be in \[1, 65534\], not 0"):
        Reply(identify=IDENTIFY, read_length=0)
    with pytest.raises(ValueError, match=r"read_length must be in \[1, 65534\], not 65535"):
        Reply(identify=IDENTIFY, read_length=65535)  # the flags byte makes LEN 65536
    dut = Reply(identify=IDENTIFY, read_length=1)
    Fragment.get(dut, None)
    assert dut.read_length == 1 and dut.lengths()[ReplyKind.READ] == 2
