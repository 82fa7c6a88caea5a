"""What the two simulated serial ports share: a pyserial-like port whose far end is a core.

:class:`~palhdl.boards.hostlink.simserial.SimulatedSerial` (Amaranth's simulator) and
:class:`~palhdl.boards.hostlink.verilated.VerilatedSerial` (Verilator) subclass
:class:`SimulatedPort`, which holds their common state and pyserial-like properties.
"""

from __future__ import annotations

import math

from palhdl.boards.hostlink.core import HostLinkCore

__all__ = ["SimulatedPort", "check_port_timeout"]


def check_port_timeout(value) -> float | None:
    """Validate a simulated port's read timeout: ``None`` or finite simulated seconds ``>= 0``.

    Raises
    ------
    TypeError
        ``value`` is not a number (a bool is not).
    ValueError
        ``value`` is negative, infinite or NaN; the message names ``timeout``.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, not {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"timeout must be a finite number of seconds >= 0 or None, not {value!r}")
    return float(value)


class SimulatedPort:
    """Base of the pyserial-like ports whose far end is a simulated :class:`HostLinkCore`.

    Holds the core, the read ``timeout`` (simulated seconds, settable before each read), the
    bytes received and not read yet, the simulated cycle count and the core's ``status``. A
    subclass simulates (``read``, ``write``, ``advance``, ``close``) and updates
    ``_from_device``, ``_cycles`` and ``_status``.

    Raises
    ------
    TypeError, ValueError
        ``core`` is not a HostLinkCore, or ``timeout`` is not ``None`` or a finite number
        ``>= 0`` (also when set later).
    """

    def __init__(self, core: HostLinkCore, *, timeout: float | None):
        if not isinstance(core, HostLinkCore):
            raise TypeError(f"core must be a HostLinkCore, not {core!r}")
        self._core = core
        self.timeout = timeout
        self._from_device = bytearray()
        self._cycles = self._status = 0
        self.is_open = True

    @property
    def core(self) -> HostLinkCore:
        """The simulated core."""
        return self._core

    @property
    def timeout(self) -> float | None:
        """The read timeout in simulated seconds (``None``: wait for ever, ``0``: do not wait).

        Settable before each read (:func:`check_port_timeout`).
        """
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._timeout = check_port_timeout(value)

    @property
    def baudrate(self) -> float:
        """The line's rate in simulated bits per second: the core's clock over its divisor.

        :class:`~palhdl.boards.hostlink.driver.HostLink` times replies with it.
        """
        return self._core.clk_freq / self._core.divisor

    @property
    def cycles(self) -> int:
        """Clock cycles simulated so far."""
        return self._cycles

    @property
    def status(self) -> int:
        """The core's ``status`` (LED) port; bits in :class:`~.protocol.LedBit`."""
        return self._status

    @property
    def in_waiting(self) -> int:
        """Bytes received from the core and not read yet."""
        return len(self._from_device)

    def reset_input_buffer(self) -> None:
        """Drop the bytes received and not read yet."""
        self._from_device.clear()

    def __enter__(self):
        """Return the port itself."""
        return self

    def __exit__(self, *exc):
        """Close the port."""
        self.close()

    def close(self) -> None:
        """Release what the simulation holds (a subclass extends this)."""
        self.is_open = False

    def _take(self, size: int) -> bytes:
        """Remove and return up to ``size`` received bytes."""
        data = bytes(self._from_device[:size])
        del self._from_device[:size]
        return data
