"""Fuzzing the host-link protocol against the simulated device (Verilator) with hypothesis.

The iCEBreaker's default core (4 x 5 pal8, raw readout, k_max 64;
``palhdl.boards.simulated.simulated_core``) runs behind
:class:`~palhdl.boards.hostlink.verilated.VerilatedSerial` (verilated once, cached). Each
example sends *chunks*: valid packets, packets with a bit flipped, cut short, with garbage
inserted or a byte dropped, and random bytes; each chunk is at most the receive FIFO's 64
bytes (so nothing is dropped however long a reply takes) and is followed by a pause until the
line is quiet. :func:`device_view` is an independent model of what the device makes of a
chunk (``docs/host-link.md``, protocol 4: hunting for SYNC, the header CRC, LEN, the CRC, and
what an incomplete packet or a bad header costs), so even a corruption that forms a valid
packet by chance is accounted for. Properties:

* every reply is a well-formed frame, and each packet (or framing error) the model sees gets
  exactly one reply, with the error code the model expects for a framing error;
* the device never returns wrong data: every OK READ equals ``golden.matmul`` of the operands
  of the OK LOADs before the last OK RUN, flagged STALE exactly when a LOAD header was
  accepted after that RUN; no RUN succeeds on a buffer the model knows to be invalid;
* it never gets stuck: after the last chunk, IDENTIFY answers with the board's description,
  and a clean LOAD_A, LOAD_B, RUN, READ gives the golden product.

The settings are fixed (``derandomize=True``, explicit ``max_examples``), so CI runs the same
examples every time: :data:`FAST_EXAMPLES` in the fast loop, :data:`SLOW_EXAMPLES` under
``-m slow``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palhdl.boards.hostlink.driver import HostLink
from palhdl.boards.hostlink.receiver import RX_FIFO_DEPTH
from palhdl.boards.hostlink.verilated import VerilatedSerial
from palhdl.boards.platforms import get_board
from palhdl.boards.simulated import simulated_core
from palhdl.sim import golden
from palhdl.sim.driver import decode_lanes

ICEBREAKER = get_board("icebreaker")
CONFIG = ICEBREAKER.default_config()
ROWS, COLS, K_MAX = ICEBREAKER.rows, ICEBREAKER.cols, 64
FAST_EXAMPLES = 25
SLOW_EXAMPLES = 500

SYNC, ERROR_CODE = 0xA5, 0xFF
IDENTIFY, STATUS, LOAD_A, LOAD_B, LOAD_TABLE, RUN, READ = 0x01, 0x02, 0x10, 0x11, 0x12, 0x20, 0x21
LOADS = (LOAD_A, LOAD_B, LOAD_TABLE)
# Error codes of docs/host-link.md.
CHECKSUM, TIMEOUT, UNKNOWN_COMMAND, HEADER = 1, 2, 3, 12
SEMANTIC_ERRORS = {3, 4, 5, 6, 7, 8, 10, 11}  # what a whole packet with good CRCs may get
UNKNOWN = object()  # model state the fuzzer cannot know (set before this example)


# --- the device as the spec describes it ------------------------------------------------------


@dataclass(frozen=True)
class Element:
    """One thing the device answers: a whole packet or a framing error."""

    kind: str  # "packet", "checksum", "timeout" or "header"
    code: int | None = None  # the command byte, once received
    header_good: bool = False  # a whole header with a matching header CRC
    payload: bytes = b""


def device_view(chunk: bytes, crc8) -> list[Element]:
    """What the device makes of ``chunk`` arriving from the idle state, then a quiet line."""
    elements, i = [], 0
    while (start := chunk.find(SYNC, i)) >= 0:
        header = chunk[start + 1 : start + 5]
        if len(header) < 4:  # cut short inside the header: TIMEOUT
            code = header[0] if header else None
            elements.append(Element("timeout", code))
            break
        code, length = header[0], int.from_bytes(header[1:3], "little")
        if crc8(header[:3]) != header[3]:  # nothing after it is parsed before the line is quiet
            elements.append(Element("header", code))
            break
        end = start + 5 + length + 1
        if end > len(chunk):
            elements.append(Element("timeout", code, True))
            break
        payload = chunk[start + 5 : end - 1]
        good = crc8(chunk[start + 1 : end - 1]) == chunk[end - 1]
        elements.append(Element("packet" if good else "checksum", code, True, payload))
        i = end
    return elements


@dataclass
class Model:
    """The device's buffers as far as this example knows them."""

    lane_shape: object  # the shape of a result lane (from IDENTIFY)
    a: object = UNKNOWN  # (codes, scales), None (invalid) or UNKNOWN
    b: object = UNKNOWN
    result: object = UNKNOWN  # golden MacResult of the last OK RUN, or UNKNOWN
    stale: object = UNKNOWN  # bool or UNKNOWN
    reads_checked: int = 0  # OK READs compared with the golden product
    stale_reads_checked: int = 0  # of which flagged STALE


def decode_load(code: int, payload: bytes):
    """Codes and scales of a LOAD_A / LOAD_B payload the device accepted (checked for length)."""
    lanes = ROWS if code == LOAD_A else COLS
    k = int.from_bytes(payload[:2], "little")
    assert 1 <= k <= K_MAX, f"device accepted a LOAD with K = {k}"
    assert len(payload) == 2 + lanes * k + 2 * lanes, "device accepted a LOAD of a wrong length"
    words = np.frombuffer(payload[2 : 2 + lanes * k], np.uint8).astype(np.int64)
    codes = words.reshape(lanes, k) if code == LOAD_A else words.reshape(k, lanes)
    scales = np.frombuffer(payload[2 + lanes * k :], "<i2").astype(np.int64)
    return codes, scales


def check_reply(model: Model, element: Element, reply: tuple[int, bytes], identify: bytes):
    """Check one reply against the element it answers; update the model."""
    code, payload = reply
    if element.code in LOADS and element.header_good:
        model.stale = True if element.code != LOAD_TABLE else UNKNOWN
        if element.code in (LOAD_A, LOAD_B):
            setattr(model, "a" if element.code == LOAD_A else "b", None)  # until its OK
    if element.kind != "packet":
        expected = {"header": HEADER, "timeout": TIMEOUT, "checksum": CHECKSUM}[element.kind]
        assert (code, payload[0]) == (ERROR_CODE, expected), (element, reply)
        if element.kind == "header":
            assert payload[1] == element.code, (element, reply)
        return
    if code == ERROR_CODE:
        assert payload[0] in SEMANTIC_ERRORS, (element, reply)
        if element.code not in (IDENTIFY, STATUS, *LOADS, RUN, READ):
            assert payload[0] == UNKNOWN_COMMAND, (element, reply)
        if element.code == RUN:
            model.stale = UNKNOWN  # a refused RUN: whether it "started" is not specified
        return
    assert code == element.code | 0x80, (element, reply)
    if element.code == IDENTIFY:
        assert payload == identify
    elif element.code == STATUS:
        assert len(payload) == 7
    elif element.code in (LOAD_A, LOAD_B):
        assert payload == b""
        setattr(
            model,
            "a" if element.code == LOAD_A else "b",
            decode_load(element.code, element.payload),
        )
    elif element.code == RUN:
        assert len(payload) == 2
        assert model.a is not None and model.b is not None, "RUN succeeded on an invalid buffer"
        if model.a is UNKNOWN or model.b is UNKNOWN:
            model.result = UNKNOWN
        else:
            (a, a_scales), (b, b_scales) = model.a, model.b
            assert a.shape[1] == b.shape[0], "RUN succeeded with different K"
            model.result = golden.matmul(a, b, CONFIG, a_scales=a_scales, b_scales=b_scales)
        model.stale = False
    elif element.code == READ:
        check_read(model, payload)


def check_read(model: Model, payload: bytes):
    """An OK READ: the flags byte, then the golden product of the last OK RUN."""
    lane_bytes = (len(payload) - 1) // (ROWS * COLS)
    assert len(payload) == 1 + ROWS * COLS * lane_bytes
    assert payload[0] in (0, 1), f"READ flags 0x{payload[0]:02x}"
    if model.stale is not UNKNOWN:
        assert payload[0] == int(model.stale), "READ's STALE flag"
    if model.result is UNKNOWN:
        return
    data = payload[1:]
    lanes = [
        int.from_bytes(data[i : i + lane_bytes], "little") for i in range(0, len(data), lane_bytes)
    ]
    fields = decode_lanes(model.lane_shape, np.array(lanes, dtype=object).reshape(ROWS, COLS))
    expected = model.result
    for name, value in (
        ("acc", expected.acc),
        ("nan", expected.nan),
        ("overflow", expected.overflow),
        ("scale", expected.scale_exp),
    ):
        np.testing.assert_array_equal(fields[name], value, err_msg=name)
    model.reads_checked += 1
    model.stale_reads_checked += payload[0]


# --- the line ---------------------------------------------------------------------------------


def split_replies(data: bytes, crc8) -> list[tuple[int, bytes]]:
    """Split the device's output into frames; every byte must belong to a well-formed one."""
    replies, i = [], 0
    while i < len(data):
        assert data[i] == SYNC, f"reply byte {i} is 0x{data[i]:02x}, not SYNC: {data.hex()}"
        header = data[i + 1 : i + 5]
        assert len(header) == 4 and crc8(header[:3]) == header[3], f"bad reply header {data.hex()}"
        end = i + 5 + int.from_bytes(header[1:3], "little") + 1
        assert end <= len(data) and crc8(data[i + 1 : end - 1]) == data[end - 1], data.hex()
        replies.append((header[0], bytes(data[i + 5 : end - 1])))
        i = end
    return replies


def exchange(port, chunk: bytes, quiet: float) -> bytes:
    """Send ``chunk``; return everything the device sends until it has been quiet ``quiet`` s."""
    port.write(chunk)
    port.timeout = quiet
    received = b""
    while data := port.read(1 << 16):
        received += data
    return received


@dataclass
class Device:
    port: VerilatedSerial
    identify: bytes  # the IDENTIFY reply payload
    lane_shape: object  # of a result lane, from IDENTIFY
    quiet: float  # a pause longer than any gap in the device's answer to a chunk
    crc8: object
    packet: object  # the independent framing of conftest.Wire
    #: What the examples covered: element kinds and reply codes (error codes for ERROR).
    seen: collections.Counter = field(default_factory=collections.Counter)


@pytest.fixture(scope="module")
def device(wire):
    """The iCEBreaker's default core on Verilator, identified once."""
    port = VerilatedSerial(simulated_core(ICEBREAKER, k_max=K_MAX), timeout=1.0)
    link = HostLink(port)
    core = port.core
    # The device answers after the chunk (64 characters), its quiet timeout and a RUN.
    quiet = (core.timeout_cycles + 100 * 10 * core.divisor) / core.clk_freq
    replies = split_replies(exchange(port, wire.packet(IDENTIFY), quiet), wire.crc8)
    assert [code for code, _ in replies] == [0x81]
    yield Device(port, replies[0][1], link.info.lane_shape, quiet, wire.crc8, wire.packet)
    port.close()


# --- the fuzzer -------------------------------------------------------------------------------


def load(code: int, k: int):
    """A valid LOAD_A / LOAD_B payload of K ``k``: random codes and scales."""
    lanes = ROWS if code == LOAD_A else COLS
    return st.tuples(
        st.binary(min_size=lanes * k, max_size=lanes * k),
        st.lists(st.integers(-40, 40), min_size=lanes, max_size=lanes),
    ).map(
        lambda ws: (
            k.to_bytes(2, "little")
            + ws[0]
            + b"".join(x.to_bytes(2, "little", signed=True) for x in ws[1])
        )
    )


@st.composite
def packets(draw):
    """A valid packet: IDENTIFY, STATUS, RUN, READ, or a LOAD of K 1..4 random codes."""
    code = draw(st.sampled_from([IDENTIFY, STATUS, RUN, READ, READ, LOAD_A, LOAD_B]))
    payload = b""
    if code in (LOAD_A, LOAD_B):
        payload = draw(load(code, draw(st.sampled_from([2, 2, 1, 3, 4]))))
    return code, payload


@st.composite
def chunks(draw, packet):
    """Chunks: a valid packet, maybe corrupted, maybe followed by garbage; garbage alone; or a
    whole tile (LOAD_A, LOAD_B, RUN, READ, one chunk each), maybe followed by a LOAD (whole or
    with a bit flipped) and a READ."""
    garbage = st.binary(max_size=12).map(lambda b: b.replace(b"\x00", b"\xa5"))
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return [draw(st.binary(min_size=1, max_size=32))]
    if choice == 1:
        k = draw(st.integers(1, 4))
        tile = [
            packet(LOAD_A, draw(load(LOAD_A, k))),
            packet(LOAD_B, draw(load(LOAD_B, k))),
            packet(RUN),
            packet(READ),
        ]
        if draw(st.booleans()):  # then a LOAD, whole or with a byte flipped, and a READ
            code = draw(st.sampled_from([LOAD_A, LOAD_B]))
            again = bytearray(packet(code, draw(load(code, k))))
            at = draw(st.integers(-1, len(again) - 1))  # -1: none
            if at >= 0:
                again[at] ^= 1 << draw(st.integers(0, 7))
            tile += [bytes(again), packet(READ)]
        return tile
    data = bytearray(packet(*draw(packets())))
    mutation = draw(st.sampled_from(["none", "none", "none", "flip", "cut", "insert", "drop"]))
    at = draw(st.integers(0, len(data) - 1))
    if mutation == "flip":
        data[at] ^= 1 << draw(st.integers(0, 7))
    elif mutation == "cut":
        del data[at:]
    elif mutation == "insert":
        data[at:at] = draw(garbage)
    elif mutation == "drop":
        del data[at]
    if draw(st.booleans()):
        data += draw(garbage)
    return [bytes(data[:RX_FIFO_DEPTH])]


def run_example(device: Device, sequence: list[bytes], clean_tile) -> None:
    """Send the chunks (from a known start), check every reply; then IDENTIFY and a clean tile."""
    model = Model(device.lane_shape)
    packet = device.packet
    # A known start: both buffers invalid (a LOAD cut after its header), the result unknown.
    start = [packet(LOAD_A, b"\x01\x00")[:-1], packet(LOAD_B, b"\x01\x00")[:-1]]
    a, b, a_scales, b_scales = clean_tile
    clean = [
        packet(LOAD_A, _load_payload(a, a_scales, LOAD_A)),
        packet(LOAD_B, _load_payload(b, b_scales, LOAD_B)),
        packet(RUN),
        packet(READ),
    ]
    for chunk in [*start, *sequence, packet(IDENTIFY), *clean]:
        elements = device_view(chunk, device.crc8)
        replies = split_replies(exchange(device.port, chunk, device.quiet), device.crc8)
        assert len(replies) == len(elements), (chunk.hex(), elements, replies)
        for element, reply in zip(elements, replies, strict=True):
            check_reply(model, element, reply, device.identify)
            code, payload = reply
            device.seen[element.kind] += 1
            device.seen[f"error {payload[0]}" if code == ERROR_CODE else f"ok 0x{code:02x}"] += 1
    device.seen["chunks"] += len(sequence)
    device.seen["reads checked"] += model.reads_checked
    device.seen["stale reads checked"] += model.stale_reads_checked
    # The clean tile's READ was checked against the golden product (never unknown by then).
    assert model.result is not UNKNOWN and model.stale is False


def _load_payload(codes: np.ndarray, scales: np.ndarray, code: int) -> bytes:
    k = codes.shape[1] if code == LOAD_A else codes.shape[0]
    words = codes.astype(np.uint8).tobytes()  # C order: A lane-major, B K-major
    return k.to_bytes(2, "little") + words + scales.astype("<i2").tobytes()


def clean_tiles():
    k = st.integers(1, 8)
    return k.flatmap(
        lambda k: st.tuples(
            st.lists(st.integers(0, 255), min_size=ROWS * k, max_size=ROWS * k).map(
                lambda v: np.array(v, np.int64).reshape(ROWS, k)
            ),
            st.lists(st.integers(0, 255), min_size=k * COLS, max_size=k * COLS).map(
                lambda v: np.array(v, np.int64).reshape(k, COLS)
            ),
            st.lists(st.integers(-40, 40), min_size=ROWS, max_size=ROWS).map(np.array),
            st.lists(st.integers(-40, 40), min_size=COLS, max_size=COLS).map(np.array),
        )
    )


def fuzz(device: Device, examples: int) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data(), clean_tiles())
    def check(data, clean_tile):
        groups = data.draw(st.lists(chunks(device.packet), min_size=1, max_size=10))
        run_example(device, [chunk for group in groups for chunk in group], clean_tile)

    check()


def check_coverage(seen: collections.Counter, examples: int) -> None:
    """The examples met every framing error and checked stale and fresh READs."""
    for kind in ("packet", "checksum", "timeout", "header"):
        assert seen[kind] > 0, (kind, seen)
    assert seen["reads checked"] > examples  # the clean tiles' and more
    assert seen["stale reads checked"] > 0, seen


def test_fuzz_the_device_fast(device):
    fuzz(device, FAST_EXAMPLES)
    check_coverage(device.seen, FAST_EXAMPLES)


@pytest.mark.slow
def test_fuzz_the_device(device):
    fuzz(device, SLOW_EXAMPLES)
    check_coverage(device.seen, SLOW_EXAMPLES)
