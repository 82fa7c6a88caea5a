"""The FPGA devices palhdl builds for, described once.

A :class:`Device` names an FPGA part in a package and carries what the tools need to target it:
the family (which selects Yosys' ``synth_<family>``, ``nextpnr-<family>`` and the bitstream
packer) and nextpnr's device options. Each :class:`~palhdl.boards.platforms.Board` refers to
one; the cost study places and routes on the same ones by their :data:`DEVICES` key.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEVICES", "ECP5_85F", "FAMILIES", "ICE40_UP5K", "Device"]

#: FPGA families the toolchain knows.
FAMILIES = ("ice40", "ecp5")


@dataclass(frozen=True)
class Device:
    """An FPGA part in a package.

    Attributes
    ----------
    name : str
        Short name, the key in :data:`DEVICES` (``"ice40"``, ``"ecp5"``).
    title : str
        Human-readable part, for reports (``"iCE40 UP5K"``).
    family : str
        One of :data:`FAMILIES`.
    part, package : str
        Vendor part number and package.
    nextpnr_options : tuple of str
        nextpnr's options selecting the part, its package and speed grade.
    """

    name: str
    title: str
    family: str
    part: str
    package: str
    nextpnr_options: tuple[str, ...]


#: Lattice iCE40 UltraPlus 5K in the 48-pin QFN (the iCEBreaker's).
ICE40_UP5K = Device(
    name="ice40",
    title="iCE40 UP5K",
    family="ice40",
    part="iCE40UP5K",
    package="SG48",
    nextpnr_options=("--up5k", "--package", "sg48"),
)

#: Lattice ECP5 85k LUTs, speed grade 6, in the 381-ball caBGA (the ULX3S-85F's).
ECP5_85F = Device(
    name="ecp5",
    title="ECP5-85",
    family="ecp5",
    part="LFE5U-85F-6BG381C",
    package="CABGA381",
    nextpnr_options=("--85k", "--package", "CABGA381", "--speed", "6"),
)

#: The devices by :attr:`Device.name`.
DEVICES: dict[str, Device] = {device.name: device for device in (ICE40_UP5K, ECP5_85F)}
