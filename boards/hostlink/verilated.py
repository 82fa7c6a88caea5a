"""A pyserial-like port whose far end is a :class:`HostLinkCore` on Verilator.

The core's Verilog (:func:`palhdl.sim.simulators.export_verilog`) is verilated together with
``harness/uart_harness.cpp``, a C++ main that clocks the core and moves bytes bit-serially
(8N1, the core's divisor) between its UART pins and requests on the process's stdin/stdout.
:class:`VerilatedSerial` runs that process behind the interface of
:class:`~palhdl.boards.hostlink.simserial.SimulatedSerial`, so the unmodified host driver
talks to the RTL at Verilator's speed. The executable is cached under
``$PALHDL_CACHE/verilator/<hash>`` (default ``~/.cache/palhdl``) by
:func:`palhdl.sim.compiled.build_model`, keyed by the Verilog, the harness source, the
Verilator version and its options.
"""

from __future__ import annotations

import math
import struct
import subprocess
import tempfile
from pathlib import Path

from palhdl.boards.hostlink.core import HostLinkCore
from palhdl.boards.hostlink.simport import SimulatedPort
from palhdl.sim.compiled import build_model
from palhdl.sim.simulators import export_verilog

__all__ = ["HARNESS", "TOP", "HarnessError", "VerilatedSerial"]

#: The C++ main of the verilated core, shipped with the package.
HARNESS = Path(__file__).parent / "harness" / "uart_harness.cpp"

#: The module name the harness expects (``Vhostlink_core``).
TOP = "hostlink_core"

#: A read without a timeout: clock until the bytes come.
_FOREVER = (1 << 64) - 1
_REPLY_HEAD = struct.Struct("<QBI")  # cycles so far, status, bytes that follow


class HarnessError(OSError):
    """The verilated core's process failed (its message quotes the process's error output)."""


class VerilatedSerial(SimulatedPort):
    """A pyserial-like port whose far end is a :class:`HostLinkCore` on Verilator.

    Bytes written are driven onto the core's ``rx`` pin bit by bit (8N1, the core's bit
    period) by the harness process; its ``tx`` pin is decoded the same way (start bit checked
    half a bit in, mid-bit sampling, stop bit checked) into the bytes :meth:`read` returns. As
    in :class:`~palhdl.boards.hostlink.simserial.SimulatedSerial`, simulated time advances
    only inside :meth:`read` and :meth:`advance` (the process sleeps otherwise), so host-side
    computation between packets is never seen as an inter-byte gap by the core.

    Parameters
    ----------
    core : HostLinkCore
        A freshly constructed core (its Verilog is exported here).
    timeout : float or None
        pyserial semantics, in *simulated* seconds of the core's clock: :meth:`read` returns
        early after that long (as soon as ``size`` bytes have come, otherwise); ``None``
        waits for ever, ``0`` does not advance time. An attribute: a driver may set it before
        each read (:class:`~palhdl.boards.hostlink.driver.HostLink` does).

    Raises
    ------
    TypeError, ValueError
        ``core`` is not a HostLinkCore, or ``timeout`` is not ``None`` or a finite number
        ``>= 0`` (also when set later).
    palhdl.sim.simulators.SimulatorNotFound
        Verilator is not installed.
    RuntimeError
        The model does not build (the message quotes the build's first errors).
    HarnessError
        Its process fails (for example a framing error on ``tx``); raised by :meth:`read` and
        :meth:`write`.
    """

    def __init__(self, core: HostLinkCore, *, timeout: float | None = 1.0):
        super().__init__(core, timeout=timeout)
        with tempfile.TemporaryDirectory(prefix="palhdl-hostlink-") as scratch:
            verilog = export_verilog(core, name=TOP, path=Path(scratch) / f"{TOP}.v")
            self._executable, _ = build_model(verilog.read_text(), top=TOP, main=HARNESS)
        self._process = subprocess.Popen(
            [str(self._executable), str(core.divisor)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    @property
    def executable(self) -> Path:
        """The verilated model's executable (in the cache)."""
        return self._executable

    def write(self, data) -> int:
        """Queue ``data`` for the core's ``rx`` pin; return its length."""
        data = bytes(data)
        self._send(b"W" + struct.pack("<I", len(data)) + data)
        return len(data)

    def flush(self) -> None:
        """Nothing to do: written bytes are queued in the harness."""

    def read(self, size: int = 1) -> bytes:
        """Return up to ``size`` bytes from the core, simulating until they or the timeout come."""
        if len(self._from_device) < size and self.timeout != 0:
            limit = _FOREVER
            if self.timeout is not None:
                limit = min(math.ceil(self.timeout * self._core.clk_freq), _FOREVER)
            self._request(size - len(self._from_device), limit)
        return self._take(size)

    def advance(self, cycles: int) -> None:
        """Run the simulation for ``cycles`` clock cycles (collecting what the core sends)."""
        self._request(0xFFFFFFFF, cycles)

    def close(self) -> None:
        """End the harness process."""
        if self.is_open:
            super().close()
            try:
                self._process.stdin.write(b"Q")
                self._process.stdin.close()
            except OSError:
                pass  # the process has already gone; its status is collected below
            self._process.wait()
            self._process.stdout.close()
            self._process.stderr.close()

    def _request(self, size: int, cycles: int) -> None:
        """Clock until ``size`` more bytes have come or ``cycles`` have passed."""
        self._send(b"R" + struct.pack("<IQ", size, cycles))
        head = self._receive(_REPLY_HEAD.size)
        self._cycles, self._status, length = _REPLY_HEAD.unpack(head)
        self._from_device += self._receive(length)

    def _send(self, message: bytes) -> None:
        if not self.is_open:
            raise HarnessError("the port is closed")
        try:
            self._process.stdin.write(message)
            self._process.stdin.flush()
        except BrokenPipeError:
            self._fail()

    def _receive(self, size: int) -> bytes:
        data = self._process.stdout.read(size)
        if len(data) < size:
            self._fail()
        return data

    def _fail(self):
        self.is_open = False
        status = self._process.wait()
        message = self._process.stderr.read().decode(errors="replace").strip()
        raise HarnessError(f"the verilated HostLinkCore stopped (exit {status}): {message}")
