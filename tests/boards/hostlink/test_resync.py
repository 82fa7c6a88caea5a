"""The host driver's timeouts, resynchronisation and READ flags, against a clocked fake port.

:class:`ClockedPort` has its own clock (seconds of the port's time, as a simulated port
counts them): bytes it is told to send arrive one character time apart at its baud rate, and a
read takes as long as pyserial's would (until ``size`` bytes or ``timeout``). Replies are built
with the independent wire format of ``conftest.py``; expected times come from the spec
(``docs/host-link.md``, "Host side"), not from the driver.
"""

import bisect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palhdl.boards.hostlink.driver import (
    ChecksumError,
    DeviceError,
    HostLink,
    LinkTimeout,
    ProtocolError,
    StaleResult,
)
from palhdl.boards.hostlink.protocol import Command
from palhdl.format import pal16

BAUD = 115200
CHARACTER = 10 / BAUD


class ClockedPort:
    """A serial port with its own clock; ``respond(port, packet)`` is called on each write."""

    def __init__(self, respond, *, baud=BAUD):
        self.now = 0.0
        self.timeout = None
        self.character = 10 / baud
        self.times: list[float] = []  # arrival time of each byte sent by the "device"
        self.data = bytearray()
        self.consumed = 0  # bytes read or dropped
        self.respond = respond
        self.written: list[tuple[float, bytes]] = []
        self.reads: list[tuple[int, float]] = []  # (size, timeout) of every read

    def send(self, data: bytes, *, at: float) -> None:
        """The device starts sending ``data`` at ``at`` (after what it is still sending)."""
        start = max(at, self.times[-1] if self.times else at)
        for i in range(len(data)):
            self.times.append(start + (i + 1) * self.character)
        self.data += data

    def write(self, data) -> int:
        self.written.append((self.now, bytes(data)))
        self.respond(self, bytes(data))
        return len(data)

    def read(self, size=1) -> bytes:
        assert self.timeout is not None and self.timeout > 0, self.timeout
        self.reads.append((size, self.timeout))
        last = self.consumed + size - 1
        if last < len(self.times) and self.times[last] <= self.now + self.timeout:
            self.now = max(self.now, self.times[last])
        else:
            self.now += self.timeout
        end = min(self.consumed + size, bisect.bisect_right(self.times, self.now))
        end = max(end, self.consumed)
        data = bytes(self.data[self.consumed : end])
        self.consumed = end
        return data

    def reset_input_buffer(self) -> None:
        self.consumed = max(self.consumed, bisect.bisect_right(self.times, self.now))


def replies(*frames, delay=1e-3):
    """A device answering the n-th packet with ``frames[n]``.

    A frame is the reply's bytes, sent ``delay`` seconds after the packet has arrived, or a
    pair (bytes, that delay).
    """

    def respond(port, packet):
        reply = frames[len(port.written) - 1]
        reply, wait = reply if isinstance(reply, tuple) else (reply, delay)
        port.send(reply, at=port.now + len(packet) * port.character + wait)

    return respond


def identify_payload(wire, rows=2):
    """The IDENTIFY payload of a ``rows`` x 2 pal16 board: pal readout, k_max 4."""
    return wire.identify(
        rows=rows,
        cols=2,
        fmt=pal16,
        mantissa_bits=10,
        acc_bits=48,
        acc_frac_bits=24,
        mode=2,
        k_max=4,
        term_bits=20,
        flags=1,
    )


def identify_rows(wire, rows):
    """The IDENTIFY reply of :func:`identify_payload`."""
    return wire.packet(0x81, identify_payload(wire, rows))


def test_a_late_reply_is_not_taken_for_the_next_one(wire):
    late = identify_rows(wire, 2)
    # The device starts answering the first IDENTIFY 0.02 s after the 0.5 s timeout.
    port = ClockedPort(replies((late, 0.52), identify_rows(wire, 3)))
    link = HostLink(port, timeout=0.5)
    with pytest.raises(LinkTimeout, match=r"no reply to IDENTIFY within the 0\.5 s timeout"):
        link.identify()
    assert port.now == pytest.approx(0.5)
    assert link.identify().rows == 3  # its own reply, not the late one (2 rows)
    # The second packet went out once the line had been quiet for the inter-byte timeout.
    late_end = port.times[len(late) - 1]
    assert port.written[1][0] >= late_end + 0.05


def test_a_reply_later_than_the_quiet_time_is_refused_by_its_code(wire):
    # A reply later than the resync's quiet time cannot be told from the next one by timing;
    # the reply code tells it from the reply of another command.
    status = wire.packet(0x82, bytes([0x08, 0, 1, 0, 1, 0, 3]))
    port = ClockedPort(replies((identify_rows(wire, 2), 0.8), status, status))
    link = HostLink(port, timeout=0.5)
    with pytest.raises(LinkTimeout):
        link.identify()
    with pytest.raises(ProtocolError, match="reply to STATUS has code 0x81, expected 0x82"):
        link.status()
    assert link.status().a_k == 1


@pytest.mark.parametrize(
    ("corrupt", "error", "message"),
    [
        # The header CRC: LEN is not trusted, the rest of the reply is still coming.
        (lambda r: r[:4] + bytes([r[4] ^ 0x01]) + r[5:], ChecksumError, "wrong header CRC"),
        # A LEN bit flipped: the header CRC catches it.
        (lambda r: r[:3] + bytes([r[3] ^ 0x80]) + r[4:], ChecksumError, "wrong header CRC"),
        (lambda r: r[:-1] + bytes([r[-1] ^ 0xFF]), ChecksumError, "wrong CRC-8"),
        # A reply to another command (header good): unexpected.
        (lambda r: None, ProtocolError, "has code 0x82, expected 0x81"),
    ],
)
def test_a_corrupted_reply_raises_and_the_next_transaction_works(wire, corrupt, error, message):
    good = identify_rows(wire, 2)
    bad = corrupt(good)
    if bad is None:
        bad = wire.packet(0x82, bytes(300))  # a long STATUS-coded reply
    status = wire.packet(0x82, bytes([0x08, 0, 1, 0, 1, 0, 3]))
    port = ClockedPort(replies(bad, status))
    link = HostLink(port)
    with pytest.raises(error, match=message):
        link.transact(Command.IDENTIFY, reply_length=None)
    status = link.status()
    assert (status.result_valid, status.a_k, status.b_k, status.table_frac_bits) == (1, 1, 1, 3)
    assert port.consumed == len(port.data)  # every byte of the bad reply was drained


def test_bytes_before_sync_are_skipped(wire):
    port = ClockedPort(replies(b"\x00\x5a\x17" + identify_rows(wire, 2)))
    assert HostLink(port).identify().rows == 2


def test_a_large_reply_at_the_line_rate_completes_with_the_default_timeout(wire):
    # A 64 x 64 raw READ of 9-byte lanes: the flags byte and 36,864 lane bytes.
    payload = bytes(np.random.default_rng(1).integers(0, 256, 1 + 64 * 64 * 9, np.uint8))
    reply = wire.packet(0xA1, payload)
    port = ClockedPort(replies(reply))
    link = HostLink(port)  # the defaults: 2 s for the first byte, 0.05 s between bytes
    assert (link.timeout, link.inter_byte_timeout) == (2.0, 0.05)
    assert link.transact(Command.READ, reply_length=len(payload)) == payload
    # It took the line 3.2 s (more than the 2 s a whole-reply timeout would allow).
    assert port.now == pytest.approx(port.times[-1]) and port.now > 3.2


def test_a_stalled_reply_times_out_after_the_inter_byte_timeout(wire):
    payload = bytes(1 + 64 * 64 * 9)
    port = ClockedPort(replies(wire.packet(0xA1, payload)[:10_000]))
    link = HostLink(port)
    with pytest.raises(
        LinkTimeout, match=r"stopped: got 10000 bytes, then nothing for the 0\.05 s"
    ):
        link.transact(Command.READ, reply_length=len(payload))
    stalled = port.times[-1]
    # At most one partial read and one empty read of the inter-byte timeout after the stall.
    assert stalled < port.now <= stalled + 2 * 0.05 + 1e-9


def test_a_dribbling_reply_meets_the_total_deadline(wire):
    # One byte every 0.04 s never trips the 0.05 s inter-byte timeout; the total deadline,
    # timeout + 2 character times per frame byte + 4 inter-byte timeouts, ends it.
    reply = wire.packet(0xA1, bytes(1000))
    port = ClockedPort(replies(reply), baud=250)  # 0.04 s per character
    link = HostLink(port, timeout=0.5, inter_byte_timeout=0.05, baud=BAUD)  # told 115200
    with pytest.raises(LinkTimeout, match="within its total deadline"):
        link.transact(Command.READ, reply_length=1000)
    deadline = 0.5 + 2 * len(reply) * CHARACTER + 4 * 0.05
    assert port.now <= deadline + 1e-9
    assert port.consumed < len(reply)


def test_resync_gives_up_on_a_line_that_is_never_quiet(wire):
    def babble(port, packet):
        if len(port.written) == 1:
            port.send(b"\x00" * 200_000, at=port.now)  # 17 s of zeros

    port = ClockedPort(babble)  # the device answers nothing else
    link = HostLink(port, timeout=0.1)
    with pytest.raises(LinkTimeout):  # hunting for a SYNC among zeros
        link.identify()
    with pytest.raises(LinkTimeout, match=r"never quiet for 0\.05 s"):
        link.identify()
    assert len(port.written) == 1  # nothing was sent into the noise


def test_device_errors_keep_the_link_in_step(wire):
    port = ClockedPort(replies(wire.error_reply(3, 0x01), identify_rows(wire, 2)))
    link = HostLink(port)
    with pytest.raises(DeviceError):
        link.identify()
    assert link.identify().rows == 2
    assert port.written[1][0] == pytest.approx(port.times[-len(identify_rows(wire, 2)) - 1])


def read_reply(wire, flags: int, lanes) -> bytes:
    """A READ reply of the 2 x 2 pal16 board: the flags byte, 2-byte lanes little endian."""
    return wire.packet(0xA1, bytes([flags]) + b"".join(x.to_bytes(2, "little") for x in lanes))


@pytest.mark.parametrize("allow_stale", [False, True])
def test_a_stale_result_raises_with_its_lanes_unless_allowed(wire, allow_stale):
    lanes = [0x1234, 0xABCD, 0x0001, 0xFFFF]
    port = ClockedPort(
        replies(wire.packet(0x81, identify_payload(wire)), read_reply(wire, 0x01, lanes))
    )
    link = HostLink(port)
    expected = np.array(lanes, dtype=object).reshape(2, 2)
    if allow_stale:
        assert (link.read(allow_stale=True) == expected).all()
    else:
        with pytest.raises(StaleResult, match="result is stale") as info:
            link.read()
        assert (info.value.lanes == expected).all()
    assert port.written[1][1] == wire.packet(0x21)


def test_read_flags(wire):
    lanes = [1, 2, 3, 4]
    port = ClockedPort(
        replies(
            wire.packet(0x81, identify_payload(wire)),
            read_reply(wire, 0x00, lanes),
            read_reply(wire, 0x02, lanes),
            wire.packet(0xA1, bytes(8)),  # no flags byte: one byte short
        )
    )
    link = HostLink(port)
    assert (link.read() == np.array(lanes, dtype=object).reshape(2, 2)).all()
    with pytest.raises(ProtocolError, match="READ flags 0x02 have unknown bits 0x02"):
        link.read()
    with pytest.raises(ProtocolError, match="announces 8 payload bytes, expected 9"):
        link.read()


@pytest.mark.parametrize("name", ["timeout", "inter_byte_timeout"])
@pytest.mark.parametrize(
    ("value", "error"),
    [
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-math.inf, ValueError),
        (0, ValueError),
        (-1.0, ValueError),
        (86400.5, ValueError),
        (True, TypeError),
        ("2", TypeError),
    ],
)
def test_timeouts_are_validated(name, value, error):
    with pytest.raises(error, match=f"^{name} must be .*, not {value!r}"):
        HostLink(ClockedPort(replies()), **{name: value})


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-9600, ValueError),
        (math.nan, TypeError),
        (True, TypeError),
        ("9600", TypeError),
    ],
)
def test_baud_is_validated(value, error):
    with pytest.raises(error, match=r"^baud must be"):
        HostLink(ClockedPort(replies()), baud=value)


def test_the_default_inter_byte_timeout_is_20_characters_on_a_slow_line():
    # 300 baud: 20 characters last 0.667 s, more than 0.05 s.
    link = HostLink(ClockedPort(replies()), baud=300)
    assert link.inter_byte_timeout == pytest.approx(20 * 10 / 300)


@st.composite
def corrupted_replies(draw, reply: bytes):
    """``reply`` with at most one corruption CRC-8 always detects, and a delay (seconds)."""
    data = bytearray(reply)
    mutation = draw(st.sampled_from(["none", "flip", "cut", "drop", "garbage"]))
    at = draw(st.integers(0, len(data) - 1))
    if mutation == "flip":
        data[at] ^= 1 << draw(st.integers(0, 7))
    elif mutation == "cut":
        del data[at:]
    elif mutation == "drop":
        del data[at]
    elif mutation == "garbage":  # before the frame, without SYNC: skipped
        data[:0] = draw(st.binary(min_size=1, max_size=20).map(lambda b: b.replace(b"\xa5", b"")))
    # Up to half an inter-byte timeout after the 0.5 s timeout: within the resync's quiet time.
    delay = draw(st.sampled_from([1e-3, 0.2, 0.49, 0.51, 0.52]))
    return (
        bytes(data),
        delay,
        mutation == "none" or (mutation == "garbage" and len(data) > len(reply)),
    )


STATUS_PAYLOADS = (bytes([0x08, 0, 1, 0, 1, 0, 3]), bytes([0x06, 0, 2, 0, 2, 0, 3]))


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(data=st.data())
def test_the_driver_never_returns_a_corrupted_or_late_reply(wire, data):
    first, second = (wire.packet(0x82, payload) for payload in STATUS_PAYLOADS)
    corrupted, delay, intact = data.draw(corrupted_replies(first))
    port = ClockedPort(replies((corrupted, delay), second))
    link = HostLink(port, timeout=0.5)
    try:
        reply = link.transact(Command.STATUS, reply_length=7)
    except (LinkTimeout, ChecksumError, ProtocolError):
        assert not intact or delay > 0.5
    else:
        assert intact and delay < 0.5 and reply == STATUS_PAYLOADS[0]
    assert link.transact(Command.STATUS, reply_length=7) == STATUS_PAYLOADS[1]


def test_a_day_is_the_longest_timeout():
    link = HostLink(ClockedPort(replies()), timeout=86400, inter_byte_timeout=86400)
    assert (link.timeout, link.inter_byte_timeout) == (86400.0, 86400.0)
