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

from palhdl.boards.host import HostLink
from palhdl.boards.hostlink import HostLinkCore, SimulatedSerial
from palhdl.sim import golden
from palhdl.sim.cli import main
from palhdl.sim.format import MacConfig, pal8

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")

CLK = 1_000_000
BAUD = 250_000  # 4 clock cycles per bit
REAL_TIMEOUT = 60.0  # wall-clock seconds: the simulator runs a few thousand cycles a second


@pytest.fixture
def board_tty():
    """Device path of a pty served by a simulated 2 x 2 pal8 board (pal readout, k_max 4)."""
    core = HostLinkCore(
        rows=2,
        cols=2,
        config=MacConfig(pal8),
        output="pal",
        clk_freq=CLK,
        baud=BAUD,
        k_max=4,
        timeout_cycles=100_000,  # the bridge keeps simulating while the host thinks
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
    with HostLink(board_tty, baud=BAUD, timeout=REAL_TIMEOUT) as link:
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


def test_palhdl_run_matmul(board_tty, tmp_path, capsys):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((4, 2))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "c.npy"
    argv = ["run", "--port", board_tty, "--baud", str(BAUD), "--timeout", str(REAL_TIMEOUT)]
    argv += [str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--out", str(out)]
    assert main(argv) == 0
    expected = golden.matmul_values(a, b, MacConfig(pal8)).to_pal()
    np.testing.assert_array_equal(np.load(out), expected)
    messages = capsys.readouterr().err
    assert "2 x 2 pal8 array, pal readout, k_max 4" in messages
    assert "2 tiles, 24 MACs" in messages
