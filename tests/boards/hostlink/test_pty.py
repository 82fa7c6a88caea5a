"""pyserial on a pseudo-terminal whose other end is the simulated board.

A bridge thread moves bytes between the pty master and a :class:`SimulatedSerial` (which
drives the HostLinkCore's UART pins bit by bit) while advancing the simulation; the host side
is the unmodified driver and ``palhdl run`` opening the pty's device path with pyserial.
"""

import os
import select
import threading

import numpy as np
import pytest

from palhdl.boards.hostlink.core import HostLinkCore
from palhdl.boards.hostlink.driver import HostLink
from palhdl.boards.hostlink.simserial import SimulatedSerial
from palhdl.cli import main
from palhdl.format import MacConfig, PALFormat, pal8
from palhdl.sim import golden

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")

CLK = 1_000_000
BAUD = 250_000  # 4 clock cycles per bit
REAL_TIMEOUT = 60.0  # wall-clock seconds: the simulator runs a few thousand cycles a second
# The line rate the host assumes for its inter-byte and total timeouts (a pty has no rate of
# its own): the bridge moves about a hundred characters per wall second, not the core's
# 25,000, so the host is told 300 baud, the least palhdl run takes (20 characters: 0.67 s;
# 67 ms per reply byte).
HOST_BAUD = 300
# The cheap board configuration: W = 5, a 16-bit wrapping accumulator, a 10-bit term window.
CHEAP = MacConfig(pal8, mantissa_bits=5, acc_bits=16, acc_frac_bits=6, term_bits=10, saturate=False)
# name: (config, readout, loadable table and block-scaled operands)
BOARDS = {
    "pal": (MacConfig(pal8), "pal", False),
    "raw": (CHEAP, "raw", False),
    "split": (CHEAP, "raw", True),
}


@pytest.fixture(params=["pal"])
def board_tty(request):
    """Device path of a pty served by a simulated 2 x 2 pal8 board (k_max 4): the parameter
    picks a key of BOARDS (default the exact accumulator with the pal readout)."""
    config, output, adaptable = BOARDS[request.param]
    core = HostLinkCore(
        rows=2,
        cols=2,
        config=config,
        output=output,
        clk_freq=CLK,
        baud=BAUD,
        k_max=4,
        timeout_cycles=100_000,  # the bridge keeps simulating while the host thinks
        loadable=adaptable,
        block_scaled=adaptable,
    )
    board = SimulatedSerial(core, timeout=0)
    master, slave = os.openpty()
    stop = threading.Event()
    failures = []

    def bridge():
        try:
            while not stop.is_set():
                readable, _, _ = select.select([master], [], [], 0)
                if readable:
                    board.write(os.read(master, 4096))
                board.advance(10 * core.divisor)
                if board.in_waiting:
                    os.write(master, board.read(board.in_waiting))
        except Exception as error:  # reported by the fixture, not lost in the thread
            failures.append(error)

    thread = threading.Thread(target=bridge, daemon=True)
    thread.start()
    yield os.ttyname(slave)
    stop.set()
    thread.join()
    os.close(master)
    os.close(slave)
    board.close()
    assert not failures, failures


def test_identify_over_pyserial(board_tty):
    with HostLink(board_tty, baud=HOST_BAUD, timeout=REAL_TIMEOUT) as link:
        info = link.identify()
        assert (info.rows, info.cols, info.config, info.output, info.k_max) == (
            2,
            2,
            MacConfig(pal8),
            "pal",
            4,
        )
        status = link.status()
        assert not (status.a_valid or status.b_valid or status.result_valid)


def run_cli(tty, tmp_path, a, b, *options, status=0):
    """``palhdl run`` on the board behind ``tty``; returns the saved result."""
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / ("c.npz" if "raw" in options else "c.npy")
    argv = ["run", "--port", tty, "--baud", str(HOST_BAUD), "--timeout", str(REAL_TIMEOUT)]
    argv += [str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--out", str(out), *options]
    assert main(argv) == status
    if status != 0:
        return None
    if out.suffix == ".npz":
        with np.load(out) as archive:  # an archive keeps its file open until closed
            return dict(archive)
    return np.load(out)


def test_palhdl_run_matmul(board_tty, tmp_path, capsys):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((4, 2))
    result = run_cli(board_tty, tmp_path, a, b)
    # Default float32 output; a pal readout gives the values of its PAL codes.
    codes = golden.matmul_values(a, b, MacConfig(pal8)).to_pal()
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result.view(np.uint32), golden.to_float32_bits(codes, pal8))
    np.testing.assert_array_equal(run_cli(board_tty, tmp_path, a, b, "--output", "pal"), codes)
    messages = capsys.readouterr().err
    assert "2 x 2 pal8 array, pal readout, k_max 4; float32 output" in messages
    assert "2 tiles, 24 MACs" in messages
    run_cli(board_tty, tmp_path, a, b, "--output", "raw", status=2)
    assert "error: readout 'pal' cannot give output 'raw'" in capsys.readouterr().err
    run_cli(board_tty, tmp_path, a, b, "--split", "3.4", status=2)
    message = "palhdl run: error: the device's product-term table is not loadable (IDENTIFY)"
    assert message in capsys.readouterr().err
    run_cli(board_tty, tmp_path, a, b, "--block-size", "2", status=2)
    assert "error: block_size 2: the device's operands carry no block" in capsys.readouterr().err


@pytest.mark.parametrize("board_tty", ["raw"], indirect=True)
def test_palhdl_run_on_a_raw_readout_board(board_tty, tmp_path, capsys):
    rng = np.random.default_rng(12)
    a = rng.standard_normal((3, 4)) * np.exp2(rng.integers(-6, 6, size=(3, 1)))
    b = rng.standard_normal((4, 2))
    expected = golden.matmul_values(a, b, CHEAP)
    result = run_cli(board_tty, tmp_path, a, b)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result.view(np.uint32), expected.to_float32_bits())
    np.testing.assert_array_equal(
        run_cli(board_tty, tmp_path, a, b, "--output", "pal"), expected.to_pal()
    )
    raw = run_cli(board_tty, tmp_path, a, b, "--output", "raw")
    np.testing.assert_array_equal(raw["acc"], expected.acc)
    np.testing.assert_array_equal(raw["scale"], expected.scale_exp)
    assert "2 x 2 pal8 array, raw readout, k_max 4; float32 output" in capsys.readouterr().err


@pytest.mark.parametrize("board_tty", ["split"], indirect=True)
def test_palhdl_run_with_a_split_and_block_scaling(board_tty, tmp_path, capsys):
    rng = np.random.default_rng(13)
    a = rng.standard_normal((2, 4)) * np.exp2(rng.integers(-4, 4, size=(2, 4)))
    b = rng.standard_normal((4, 2))
    config = CHEAP.retarget(PALFormat(int_bits=3, frac_bits=4))
    expected = golden.matmul_values(a, b, config, block_size=2)
    result = run_cli(board_tty, tmp_path, a, b, "--split", "3.4", "--block-size", "2")
    np.testing.assert_array_equal(result.view(np.uint32), expected.to_float32_bits())
    assert "float32 output, split 3.4, blocks of 2" in capsys.readouterr().err
    # The next run without --split computes in the bitstream's own split again.
    result = run_cli(board_tty, tmp_path, a, b)
    expected = golden.matmul_values(a, b, CHEAP).to_float32_bits()
    np.testing.assert_array_equal(result.view(np.uint32), expected)
    run_cli(board_tty, tmp_path, a, b, "--split", "5.4", status=2)
    assert "error: split 5.4 is 10 bits wide; the device's words" in capsys.readouterr().err
    # --split auto: the split golden.choose_split picks for these operands, reported.
    choice = golden.choose_split(a, b, block_size=2)
    config = CHEAP.retarget(choice.fmt)
    result = run_cli(board_tty, tmp_path, a, b, "--split", "auto", "--block-size", "2")
    expected = golden.matmul_values(a, b, config, block_size=2).to_float32_bits()
    np.testing.assert_array_equal(result.view(np.uint32), expected)
    err = capsys.readouterr().err
    assert "split choice (block 2 scaling)" in err
    assert f"split {choice.fmt.int_bits}.{choice.fmt.frac_bits}, blocks of 2" in err
    codes = (np.ones((2, 4), np.int64), np.ones((4, 2), np.int64))
    run_cli(board_tty, tmp_path, *codes, "--split", "auto", "--codes", status=2)
    assert "--split auto needs values, not --codes" in capsys.readouterr().err
