"""The run-time split and block scaling through the host link: driver on the simulated pins.

A loadable core's term tables are rewritten over the UART (LOAD_TABLE) and each matmul is
compared with ``golden.matmul`` of ``config.retarget(fmt)``; a block-scaled core's operands carry
their block offsets and each matmul is compared with ``golden.matmul(..., block_size=)``. Wire
packets come from the independent helpers of ``conftest.py``; expected results from the golden
model only.
"""

import numpy as np
import pytest

from palhdl.boards.hostlink.core import HostLinkCore
from palhdl.boards.hostlink.driver import DeviceError, HostLink, StaleResult
from palhdl.boards.hostlink.protocol import ErrorCode
from palhdl.boards.hostlink.simserial import SimulatedSerial
from palhdl.format import MacConfig, PALFormat, pal8
from palhdl.sim import golden
from palhdl.sim.driver import decode_lanes

CLK = 1_000_000
BAUD = 250_000  # 4 clock cycles per bit
REPLY_TIMEOUT = 0.1  # simulated seconds: a 1025-byte LOAD_TABLE takes 41,000 cycles
# The cheap board configuration: W = 5, a 16-bit wrapping accumulator, a 10-bit term window:
# 256 unsigned table entries of 10 + 1 bits (two bytes each).
CHEAP = MacConfig(pal8, mantissa_bits=5, acc_bits=16, acc_frac_bits=6, term_bits=10, saturate=False)
SPLITS = {"3.4": PALFormat(int_bits=3, frac_bits=4), "5.2": PALFormat(int_bits=5, frac_bits=2)}


@pytest.fixture
def sim_link():
    """``sim_link(**core_parameters)``: a HostLink on a simulated 2 x 2 core (closed after)."""
    ports = []

    def make(**overrides):
        params = dict(
            rows=2,
            cols=2,
            config=CHEAP,
            output="raw",
            clk_freq=CLK,
            baud=BAUD,
            k_max=8,
            timeout_cycles=600,
        )
        params.update(overrides)
        port = SimulatedSerial(HostLinkCore(**params), timeout=REPLY_TIMEOUT)
        ports.append(port)
        return port, HostLink(port)

    yield make
    for port in ports:
        port.close()


def random_codes(rng, shape, fmt=pal8):
    codes = rng.integers(0, 1 << fmt.width, size=shape)
    special = rng.random(shape) < 0.1
    codes[special] = rng.choice([fmt.zero_code, fmt.nan_code], size=special.sum())
    return codes


def raw_lanes(link, a, b):
    """One tile through LOAD_A, LOAD_B, RUN, READ; the raw lanes as fields."""
    link.load_a(a)
    link.load_b(b)
    link.run()
    return decode_lanes(link.info.lane_shape, link.read())


def assert_raw_equal(fields, expected: golden.MacResult):
    for name in ("acc", "nan", "overflow"):
        np.testing.assert_array_equal(fields[name], getattr(expected, name), err_msg=name)


@pytest.mark.slow
def test_two_tables_in_one_session(wire, sim_link):
    rng = np.random.default_rng(20)
    port, link = sim_link(loadable=True)
    info = link.identify()
    assert (info.loadable, info.table_entries, info.table_width) == (True, 256, 11)
    assert not info.block_scaled and port.core.table_entries == 256
    assert (link.split, link.config) == (pal8, CHEAP)  # STATUS: the bitstream's table
    a, b = random_codes(rng, (2, 6)), random_codes(rng, (6, 2))
    results = {}
    for name in ("3.4", "5.2"):
        config = link.load_split(SPLITS[name])
        assert config == CHEAP.retarget(SPLITS[name])
        status = link.status()
        assert (status.table_valid, status.table_frac_bits) == (True, SPLITS[name].frac_bits)
        results[name] = golden.matmul(a, b, config)
        assert_raw_equal(raw_lanes(link, a, b), results[name])
    # The tables differ where it matters: the same codes give other sums.
    assert not np.array_equal(results["3.4"].acc, results["5.2"].acc)
    # Floats are quantised in the loaded split (5.2) and decoded with its configuration.
    x = rng.standard_normal((3, 5)) * np.exp2(rng.integers(-6, 6, size=(3, 1)))
    y = rng.standard_normal((5, 2))
    result, stats = link.matmul(x, y)
    expected = golden.matmul_values(x, y, CHEAP.retarget(SPLITS["5.2"]))
    np.testing.assert_array_equal(result.view(np.uint32), expected.to_float32_bits())
    assert stats.tiles == 2
    # Back to the bitstream's own table (its W = 5, not 4.3's default mantissa width).
    assert link.load_split(pal8) == CHEAP
    assert_raw_equal(raw_lanes(link, a, b), golden.matmul(a, b, CHEAP))
    assert link.status().table_frac_bits == 3


def test_signed_table_with_the_float32_readout(sim_link):
    # The float32 readout uses only the accumulator window, which retarget keeps.
    rng = np.random.default_rng(21)
    _, link = sim_link(loadable=True, term="signed_table", output="float32")
    assert (link.info.table_entries, link.info.table_signed) == (512, True)
    a, b = random_codes(rng, (2, 5)), random_codes(rng, (5, 2))
    config = link.load_split(SPLITS["3.4"])
    result, _ = link.matmul(a, b)
    expected = golden.matmul(a, b, config).to_float32_bits()
    np.testing.assert_array_equal(result.view(np.uint32), expected)
    # A LOAD_TABLE makes the result stale: READ still returns it, flagged (StaleResult).
    link.load_split(SPLITS["5.2"])
    with pytest.raises(StaleResult) as stale:
        link.read()
    np.testing.assert_array_equal(np.asarray(stale.value.lanes, np.uint32), expected)
    np.testing.assert_array_equal(np.asarray(link.read(allow_stale=True), np.uint32), expected)


@pytest.mark.slow
def test_table_errors_and_recovery(wire, sim_link):
    rng = np.random.default_rng(22)
    port, link = sim_link(loadable=True)
    a, b = random_codes(rng, (2, 3)), random_codes(rng, (3, 2))
    link.load_split(SPLITS["3.4"])
    words = golden.term_table(CHEAP, signed=False)
    table = [int(t) | int(o) << 10 for t, o in zip(*words, strict=True)]
    # One entry short: LENGTH, and the loaded 3.4 table is untouched.
    port.write(wire.table_packet(3, table[:-1], 2))
    assert wire.read_reply(port) == wire.error_reply(4, 0x12)  # LENGTH
    status = link.status()
    assert (status.table_valid, status.table_frac_bits) == (True, 4)
    assert_raw_equal(raw_lanes(link, a, b), golden.matmul(a, b, CHEAP.retarget(SPLITS["3.4"])))
    # A corrupted table: CHECKSUM, the table is invalid and RUN refused until one loads.
    corrupted = bytearray(wire.table_packet(3, table, 2))
    corrupted[100] ^= 0x01
    port.write(bytes(corrupted))
    assert wire.read_reply(port) == wire.error_reply(1, 0x12)  # CHECKSUM
    assert not link.status().table_valid
    with pytest.raises(DeviceError, match="RUN: TABLE_INVALID") as error:
        link.run()
    assert error.value.code == ErrorCode.TABLE_INVALID
    assert port.status & 4  # the operands are still loaded
    # The whole table by hand (the bitstream's 4.3), then a matmul with it.
    port.write(wire.table_packet(3, table, 2))
    assert wire.read_reply(port) == wire.packet(0x92)
    link.run()
    assert_raw_equal(decode_lanes(link.info.lane_shape, link.read()), golden.matmul(a, b, CHEAP))


def test_load_table_on_a_core_without_a_loadable_table(wire, sim_link):
    port, link = sim_link()
    assert not link.info.loadable and link.split == pal8
    port.write(wire.table_packet(4, range(256), 2))
    assert wire.read_reply(port) == wire.error_reply(10, 0x12)  # NOT_LOADABLE
    status = link.status()
    assert (status.last_error, status.table_valid, status.table_frac_bits) == (
        ErrorCode.NOT_LOADABLE,
        True,
        3,
    )


def block_operands(rng, m, k, n, block_size):
    """Floats whose blocks along K lie 0 to 3 octaves apart, with zeros; a NaN in A."""
    blocks = -(-k // block_size)
    octaves_a = np.repeat(rng.integers(0, 4, size=(m, blocks)), block_size, axis=1)[:, :k]
    octaves_b = np.repeat(rng.integers(0, 4, size=(blocks, n)), block_size, axis=0)[:k]
    x = rng.standard_normal((m, k)) * np.exp2(-octaves_a)
    y = rng.standard_normal((k, n)) * np.exp2(-octaves_b)
    x[0, 1] = y[2, 0] = 0.0
    x[-1, -1] = np.nan
    return x, y


def assert_blocks_exact(link, x, y, config, block_size):
    """The board's block-scaled matmul equals the golden one, which needs both operands' offsets."""
    k, fmt = x.shape[1], config.fmt
    quantised = {
        side: golden.quantize_blocks(
            values, fmt, per=side, block_size=block_size, target=config.scale_target(k)
        )
        for side, values in (("row", x), ("col", y))
    }
    (a, sa), (b, sb) = quantised["row"], quantised["col"]

    def product(a_scales, b_scales):
        return golden.matmul(
            a, b, config, a_scales=a_scales, b_scales=b_scales, block_size=block_size
        )

    expected = product(sa, sb)
    # Had either operand's offsets been lost (every block at its row's or column's reference),
    # the result would differ: the test sees both.
    flat_a = np.broadcast_to(sa.min(axis=1, keepdims=True), sa.shape)
    flat_b = np.broadcast_to(sb.min(axis=0, keepdims=True), sb.shape)
    assert not np.array_equal(product(flat_a, sb).acc, expected.acc)
    assert not np.array_equal(product(sa, flat_b).acc, expected.acc)
    raw, _ = link.matmul(x, y, output="raw", block_size=block_size)
    assert_raw_equal(raw, expected)
    np.testing.assert_array_equal(raw["scale"], expected.scale_exp)
    assert expected.nan.any() and not expected.nan.all()


def test_block_scaled_operands_k_not_a_multiple_of_the_block(sim_link):
    rng = np.random.default_rng(23)
    port, link = sim_link(block_scaled=True)
    info = link.info
    assert (info.block_scaled, info.operand_width, info.word_bytes) == (True, 16, 2)
    assert port.core.word_bytes == 2
    x, y = block_operands(rng, 2, 6, 2, 4)
    assert_blocks_exact(link, x, y, CHEAP, 4)
    # Without block_size the offsets are 0: per-row/column scaling, as on any core.
    result, _ = link.matmul(x, y, output="raw")
    assert_raw_equal(result, golden.matmul_values(x, y, CHEAP))


@pytest.mark.parametrize(("block_size", "k"), [(1, 5), (4, 8), (32, 40)])
def test_block_scaled_operands(sim_link, block_size, k):
    rng = np.random.default_rng(24 + block_size)
    _, link = sim_link(block_scaled=True, k_max=40)
    x, y = block_operands(rng, 3, k, 2, block_size)
    assert_blocks_exact(link, x, y, CHEAP, block_size)


def test_block_scaling_in_a_loaded_split(sim_link):
    # pal8 (3.4) with block scaling: the combination, on one loadable core.
    rng = np.random.default_rng(25)
    _, link = sim_link(block_scaled=True, loadable=True, k_max=12)
    x, y = block_operands(rng, 2, 11, 2, 4)
    config = link.load_split(SPLITS["3.4"])
    assert_blocks_exact(link, x, y, config, 4)
