"""A read-only table in block RAM with several read ports and an optional output register.

:class:`TableROM` is the memory behind :class:`~palhdl.hdl.pe.PALTableProductTerm`. Its
``implementation`` says how it is built: ``"inferred"`` is an Amaranth
:class:`~amaranth.lib.memory.Memory` that Yosys maps to whatever block RAM the device has (the
output register, if any, is then a fabric register); ``"auto"`` lets the platform choose.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from palhdl.hdl.unit import Unit
from palhdl.validate import check_bool, check_choice, check_int

__all__ = ["IMPLEMENTATIONS", "TableROM"]

#: Accepted values of ``TableROM(implementation=...)``.
IMPLEMENTATIONS = ("auto", "inferred")

#: Yosys attributes that place a memory in block RAM rather than in logic.
BLOCK_RAM_ATTRS = {"ram_style": "block", "rom_style": "block"}


class TableROM(Unit):
    """``ports`` synchronous lookups in one read-only table.

    Port ``p`` reads ``init[addr[p]]``: the word appears on ``data[p]`` one enabled clock edge
    after the address (``latency == 1``), or two when ``registered`` (the second register
    is the block RAM's own output register where the implementation has one).

    Parameters
    ----------
    width : int
        Bits of a word, 1..72.
    init : sequence of int
        The words, ``0 <= word < 2**width``; the depth is ``len(init)``, 2..16384.
    ports : int
        Read ports, 1..4.
    registered : bool
        Register the output (``latency == 2``).
    implementation : {"auto", "inferred"}
        ``"inferred"``: an Amaranth ``Memory`` with block-RAM attributes, registers in the
        fabric. ``"auto"`` (default): the same.

    Members
    -------
    addr : In(ArrayLayout(unsigned(ceil(log2(depth))), ports))
        The read addresses, sampled when ``en`` is high.
    en : In(1)
        Advance: reads and the output register load only when it is high (default high).
    data : Out(ArrayLayout(unsigned(width), ports))
        The words read.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range; the message names it.
    """

    @classmethod
    def check_parameters(
        cls,
        *,
        width: int,
        init,
        ports: int = 1,
        registered: bool = False,
        implementation: str = "auto",
    ):
        """Validate the parameters; return them as a tuple in this order (``init`` a tuple)."""
        width = check_int("width", width, 1, 72)
        if not isinstance(init, (list, tuple)):
            raise TypeError(f"init must be a list or tuple of integers, not {init!r}")
        words = tuple(init)
        check_int("len(init)", len(words), 2, 16384)
        for index, word in enumerate(words):
            if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word < 1 << width:
                raise ValueError(
                    f"init[{index}] must be an integer in [0, 2**{width}), not {word!r}"
                )
        return (
            width,
            words,
            check_int("ports", ports, 1, 4),
            check_bool("registered", registered),
            check_choice("implementation", implementation, IMPLEMENTATIONS),
        )

    def __init__(
        self,
        *,
        width: int,
        init,
        ports: int = 1,
        registered: bool = False,
        implementation: str = "auto",
    ):
        parameters = self.check_parameters(
            width=width,
            init=init,
            ports=ports,
            registered=registered,
            implementation=implementation,
        )
        self._width, self._init, self._ports, self._registered, self._implementation = parameters
        address = unsigned((len(self._init) - 1).bit_length())
        super().__init__(
            {
                "addr": In(data.ArrayLayout(address, ports)),
                "en": In(1, init=1),
                "data": Out(data.ArrayLayout(unsigned(width), ports)),
            }
        )

    @property
    def width(self) -> int:
        """Bits of a word."""
        return self._width

    @property
    def depth(self) -> int:
        """Words in the table."""
        return len(self._init)

    @property
    def init(self) -> tuple[int, ...]:
        """The words."""
        return self._init

    @property
    def ports(self) -> int:
        """Read ports."""
        return self._ports

    @property
    def registered(self) -> bool:
        """Whether the output is registered."""
        return self._registered

    @property
    def latency(self) -> int:
        """Enabled clock edges from an address to its word: 2 registered, else 1."""
        return 2 if self._registered else 1

    def elaborate(self, platform):
        """Build an inferred memory: one read port per lookup, then the output registers."""
        m = Module()
        m.submodules.memory = memory = Memory(
            shape=self._width, depth=self.depth, init=self._init, attrs=BLOCK_RAM_ATTRS
        )
        for port in range(self._ports):
            read = memory.read_port(domain="sync")
            m.d.comb += [read.addr.eq(self.addr[port]), read.en.eq(self.en)]
            word = read.data
            if self._registered:
                register = Signal(self._width, name=f"data{port}_d2", reset_less=True)
                with m.If(self.en):
                    m.d.sync += register.eq(word)
                word = register
            m.d.comb += self.data[port].eq(word)
        return m
