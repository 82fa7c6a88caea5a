"""Fault injection on the pins of the simulated core: raw bytes in, replies checked byte for byte.

One test per device weakness that protocol version 4 fixes (issue 14): a corrupted LEN must not
let a frame hidden in the payload execute; a receive overrun at the end of a burst must be
answered; a READ after new loads must say that its result is stale. Packets and expected
replies are built with the independent wire format of ``conftest.py``, expected results with
the golden model.
"""

import numpy as np
import pytest

from palhdl.boards.hostlink.core import HostLinkCore
from palhdl.boards.hostlink.simserial import SimulatedSerial
from palhdl.format import MacConfig, pal8
from palhdl.sim import golden

CLK = 1_000_000
BAUD = 250_000  # 4 clock cycles per bit: a character takes 40 cycles
TIMEOUT_CYCLES = 600
REPLY_TIMEOUT = 0.03  # simulated seconds: 30,000 cycles
# ErrorCode values and flag bits, from docs/host-link.md.
CHECKSUM, LINE, HEADER = 1, 9, 12
A_VALID, B_VALID, RESULT_VALID, LINE_ERROR, TABLE_VALID = 0x02, 0x04, 0x08, 0x40, 0x80
STALE = 0x01


@pytest.fixture
def port():
    """``port(**overrides)``: a simulated port on a 2 x 2 pal8 ``pal`` core; closed afterwards."""
    ports = []

    def make(**overrides):
        params = dict(
            rows=2,
            cols=2,
            config=MacConfig(pal8),
            output="pal",
            clk_freq=CLK,
            baud=BAUD,
            k_max=8,
            timeout_cycles=TIMEOUT_CYCLES,
        )
        params.update(overrides)
        ports.append(SimulatedSerial(HostLinkCore(**params), timeout=REPLY_TIMEOUT))
        return ports[-1]

    yield make
    for made in ports:
        made.close()


def silent(port, cycles=4 * TIMEOUT_CYCLES) -> bool:
    """Whether the device sends nothing for ``cycles`` cycles."""
    timeout, port.timeout = port.timeout, cycles / CLK
    try:
        return port.read(1) == b""
    finally:
        port.timeout = timeout


def status_payload(flags, last_error, a_k=0, b_k=0):
    """A STATUS payload (the table of the bitstream's split 4.3, which is not loadable)."""
    return bytes([flags | TABLE_VALID, last_error, a_k, 0, b_k, 0, 3])


def test_a_corrupted_len_never_executes_a_frame_hidden_in_the_payload(wire, port):
    # Issue 14, weakness 1: a LOAD_A whose LEN says 2 bytes while its six words are a complete
    # STATUS packet. Version 3 took the words for packets and answered a phantom OK STATUS.
    dev = port()
    status = wire.packet(0x02)
    assert len(status) == 6
    load = wire.load_packet(0x10, [list(status[:3]), list(status[3:])], [0, 0])
    dev.write(load)
    assert wire.read_reply(dev) == wire.packet(0x90)  # A is valid, K = 3
    corrupted = bytearray(load)
    corrupted[2] = 2  # LEN low byte 14 -> 2: the STATUS packet follows "the CRC byte"
    assert wire.crc8(bytes(corrupted[1:4])) != corrupted[4]
    dev.write(corrupted)
    # Exactly one reply: HEADER with the CODE byte as received, sent once the line is quiet.
    assert wire.read_reply(dev) == wire.error_reply(HEADER, 0x10)
    assert silent(dev)
    # The next valid packet is served; A was not invalidated by the rejected header.
    dev.write(status)
    assert wire.read_reply(dev) == wire.packet(0x82, status_payload(A_VALID, HEADER, a_k=3))
    assert silent(dev)


def test_an_overrun_at_the_end_of_a_burst_is_answered(wire, port):
    # Issue 14, weakness 2: packets sent back to back without waiting for the replies. Each
    # IDENTIFY reply (27 bytes) takes far longer than its packet (6 bytes), so the device
    # falls behind and the long LOAD_A at the end overflows the 64-byte receive FIFO. Version 3
    # dropped its tail silently; version 4 answers each packet stored whole, then one LINE.
    dev = port(k_max=64)
    identify = wire.packet(0x01)
    load = wire.load_packet(0x10, np.ones((2, 64), np.int64), [0, 0])  # 140 bytes
    count = 5
    dev.write(identify * count + load)
    replies = [wire.read_reply(dev) for _ in range(count + 1)]
    identify_reply = wire.packet(
        0x81,
        wire.identify(
            rows=2,
            cols=2,
            fmt=pal8,
            mantissa_bits=6,
            acc_bits=51,
            acc_frac_bits=22,
            mode=2,
            k_max=64,
            term_bits=50,
            flags=0,
        ),
    )
    assert replies == [identify_reply] * count + [wire.error_reply(LINE, 0x10)]
    assert silent(dev)
    # The device is in step again: A was invalidated by the lost LOAD, the overrun is noted.
    dev.write(wire.packet(0x02))
    assert wire.read_reply(dev) == wire.packet(0x82, status_payload(LINE_ERROR, LINE))
    dev.write(load)
    assert wire.read_reply(dev) == wire.packet(0x90)


def test_a_read_after_new_loads_is_stale(wire, port):
    # Issue 14, weakness 3: LOAD_A, LOAD_B, RUN, a new LOAD_A, READ. The READ returns the
    # computed result (never lost) and says it is stale; after the next RUN it is not. A LOAD
    # whose header is rejected changes nothing, so it does not make the result stale.
    rng = np.random.default_rng(14)
    config = MacConfig(pal8)
    codes = [rng.integers(0, 256, size=(2, 3)) for _ in range(2)]
    b = rng.integers(0, 256, size=(3, 2))
    zeros = np.zeros(2, np.int64)
    results = [
        golden.matmul(a, b, config, a_scales=zeros, b_scales=zeros).to_pal().astype(np.uint8)
        for a in codes
    ]
    dev = port()

    def read(flags, result):
        dev.write(wire.packet(0x21))
        assert wire.read_reply(dev) == wire.packet(0xA1, bytes([flags]) + result.tobytes())

    def transact(packet, reply):
        dev.write(packet)
        assert wire.read_reply(dev) == reply

    run_reply = bytes([0xA5, 0xA0, 2, 0])
    transact(wire.load_packet(0x10, codes[0], zeros), wire.packet(0x90))
    transact(wire.load_packet(0x11, b, zeros), wire.packet(0x91))
    dev.write(wire.packet(0x20))
    assert wire.read_reply(dev)[:4] == run_reply
    read(0, results[0])
    transact(wire.load_packet(0x10, codes[1], zeros), wire.packet(0x90))
    read(STALE, results[0])
    read(STALE, results[0])  # READ does not clear it
    dev.write(wire.packet(0x20))
    assert wire.read_reply(dev)[:4] == run_reply
    read(0, results[1])
    # A LOAD_B whose HCRC is corrupted: HEADER, B still valid, the result not stale.
    rejected = bytearray(wire.load_packet(0x11, b, zeros))
    rejected[4] ^= 0x10
    transact(bytes(rejected), wire.error_reply(HEADER, 0x11))
    read(0, results[1])
    # A LOAD_B that is accepted and then fails its CRC makes it stale (B is invalid now).
    corrupted = bytearray(wire.load_packet(0x11, b, zeros))
    corrupted[-1] ^= 0x01
    transact(bytes(corrupted), wire.error_reply(CHECKSUM, 0x11))
    read(STALE, results[1])
    dev.write(wire.packet(0x02))
    nan = 0x10 if (results[1] == pal8.nan_code).any() else 0
    saturated = 0x20 if ((results[1] & pal8.mag_mask) == pal8.max_code).any() else 0
    flags = A_VALID | RESULT_VALID | nan | saturated
    assert wire.read_reply(dev) == wire.packet(0x82, status_payload(flags, CHECKSUM, 3, 3))
