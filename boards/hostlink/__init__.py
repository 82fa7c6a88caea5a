"""The host link: a PAL systolic array served over a UART packet protocol.

:mod:`~palhdl.boards.hostlink.protocol` defines the protocol (pure Python);
:mod:`~palhdl.boards.hostlink.core` the gateware (:class:`HostLinkCore`, composed of
:mod:`~palhdl.boards.hostlink.receiver`, :mod:`~palhdl.boards.hostlink.parser`,
:mod:`~palhdl.boards.hostlink.buffers`, :mod:`~palhdl.boards.hostlink.run` and
:mod:`~palhdl.boards.hostlink.reply`); :mod:`~palhdl.boards.hostlink.driver` the pyserial host
driver and :mod:`~palhdl.boards.hostlink.simserial` a simulated serial port in front of the
core.
"""
