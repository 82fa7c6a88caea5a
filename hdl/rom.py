"""A table in block RAM with several read ports, an optional output register and write port.

:class:`TableROM` is the memory behind :class:`~palhdl.hdl.pe.PALTableProductTerm`: read-only,
or, when ``loadable``, initialised with its words and rewritten one word per cycle at run time.
Its
``implementation`` says how it is built: ``"inferred"`` is an Amaranth
:class:`~amaranth.lib.memory.Memory` that Yosys maps to whatever block RAM the device has (the
output register, if any, is then a fabric register); ``"ecp5"`` instantiates Lattice ECP5
``DP16KD`` blocks directly, so the output register is the block's own (``REGMODE = "OUTREG"``)
and no fabric flip-flop or routing sits between the RAM array and it; ``"auto"`` picks ``"ecp5"``
on an ECP5 platform and ``"inferred"`` otherwise.

The ``DP16KD`` contents (:func:`dp16kd_initvals`) follow the layout Yosys' ECP5 block-RAM mapping
(``techlibs/lattice/brams_map_16kd.v``) and nextpnr's bitstream writer use: the 18 Kibit array is
2048 nine-bit words; ``INITVAL_xx`` (``xx`` = 00 .. 3F) holds 16 rows of 18 bits, row ``r`` of
the block in bits ``20 * (r % 16)`` up of ``INITVAL_{r // 16}`` (nine-bit words ``2r`` and
``2r + 1``, two padding bits above). A port ``DATA_WIDTH`` bits wide addresses words of that
width: an 18-bit word is a whole row, a 9-bit word one nine-bit word, and 4-, 2- and 1-bit words
are packed from bit 0 of a nine-bit word (its ninth bit unused).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from palhdl.hdl.unit import Unit
from palhdl.validate import check_bool, check_choice, check_int

__all__ = [
    "DP16KD_DEPTHS",
    "DP16KD_INITVALS",
    "DP16KD_INITVAL_BITS",
    "IMPLEMENTATIONS",
    "DP16KDTiling",
    "TableROM",
    "check_implementation",
    "dp16kd_initvals",
    "dp16kd_tiling",
]

#: Accepted values of ``TableROM(implementation=...)``.
IMPLEMENTATIONS = ("auto", "inferred", "ecp5")

#: Yosys attributes that place a memory in block RAM rather than in logic.
BLOCK_RAM_ATTRS = {"ram_style": "block", "rom_style": "block"}

#: ``DP16KD`` port data widths (``DATA_WIDTH_A/B``), widest first, and the words each holds.
DP16KD_DEPTHS = {18: 1024, 9: 2048, 4: 4096, 2: 8192, 1: 16384}

#: ``INITVAL_00`` .. ``INITVAL_3F``: parameters of a ``DP16KD`` holding its contents.
DP16KD_INITVALS = 64

#: Bits of one ``INITVAL_xx``: 16 rows of 18 bits, each in a 20-bit slot.
DP16KD_INITVAL_BITS = 320

_ROWS_PER_INITVAL = 16
_ROW_SLOT = 20
_ADDRESS_PINS = 14


@dataclass(frozen=True)
class DP16KDTiling:
    """How a table is cut into ``DP16KD`` blocks, for each pair of read ports.

    Block ``(bank, column)`` holds bits ``column * data_width`` up (at most ``data_width`` of
    them) of words ``bank * bank_depth`` .. ``(bank + 1) * bank_depth - 1``.

    Attributes
    ----------
    data_width : int
        ``DATA_WIDTH_A/B`` of every block, a key of :data:`DP16KD_DEPTHS`.
    columns : int
        Blocks side by side across a word.
    banks : int
        Blocks stacked along the addresses.
    """

    data_width: int
    columns: int
    banks: int

    @property
    def bank_depth(self) -> int:
        """Words a block holds at :attr:`data_width`."""
        return DP16KD_DEPTHS[self.data_width]

    @property
    def address_bits(self) -> int:
        """Address bits within a bank; they drive the block's top address pins."""
        return (self.bank_depth - 1).bit_length()

    @property
    def blocks(self) -> int:
        """``DP16KD`` blocks per pair of read ports."""
        return self.columns * self.banks


def dp16kd_tiling(width: int, depth: int) -> DP16KDTiling:
    """Return the tiling of a ``width`` x ``depth`` table with the fewest ``DP16KD`` blocks.

    Among tilings with equally few blocks, the one with the fewest banks (no output multiplexer
    if possible), then the widest ``data_width``, is chosen.

    Raises
    ------
    TypeError, ValueError
        If ``width`` is not in 1..72 or ``depth`` not in 1..16384.
    """
    width = check_int("width", width, 1, 72)
    depth = check_int("depth", depth, 1, 16384)
    tilings = [
        DP16KDTiling(data_width, -(-width // data_width), -(-depth // bank_depth))
        for data_width, bank_depth in DP16KD_DEPTHS.items()
    ]
    return min(tilings, key=lambda tiling: (tiling.blocks, tiling.banks))


def dp16kd_initvals(words, data_width: int) -> tuple[int, ...]:
    """Return ``INITVAL_00`` .. ``INITVAL_3F`` of a ``DP16KD`` read at ``data_width`` bits.

    Word ``n`` (read at address pins ``ADx[13:s] = n``, ``s`` = 4, 3, 2, 1, 0 for a width of
    18, 9, 4, 2, 1) is placed where the block returns it: in row ``r = n // k`` of ``k`` words
    per 18-bit row, in the nine-bit half ``h`` and at position ``p`` within it (``h = q // (k //
    2)``, ``p = q % (k // 2)`` for ``q = n % k`` and ``k > 1``), that is at bit
    ``20 * (r % 16) + 9 * h + data_width * p`` of ``INITVAL_{r // 16}``.

    Parameters
    ----------
    words : sequence of int
        The block's words, ``0 <= word < 2**data_width``, at most
        ``DP16KD_DEPTHS[data_width]`` of them (the rest of the block reads zero).
    data_width : int
        A key of :data:`DP16KD_DEPTHS`.

    Returns
    -------
    tuple of int
        :data:`DP16KD_INITVALS` values, each below ``2**DP16KD_INITVAL_BITS``.

    Raises
    ------
    ValueError
        For an unknown ``data_width``, too many words or a word out of range.
    """
    data_width = check_choice("data_width", data_width, DP16KD_DEPTHS)
    if len(words) > DP16KD_DEPTHS[data_width]:
        raise ValueError(
            f"a DP16KD holds {DP16KD_DEPTHS[data_width]} words of {data_width} bits, "
            f"not {len(words)}"
        )
    per_row = DP16KD_DEPTHS[data_width] // DP16KD_DEPTHS[18]
    per_half = max(per_row // 2, 1)
    initvals = [0] * DP16KD_INITVALS
    for index, word in enumerate(words):
        if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word < 1 << data_width:
            raise ValueError(
                f"words[{index}] must be an integer in [0, 2**{data_width}), not {word!r}"
            )
        row, within = divmod(index, per_row)
        half, position = divmod(within, per_half)
        offset = _ROW_SLOT * (row % _ROWS_PER_INITVAL) + 9 * half + data_width * position
        initvals[row // _ROWS_PER_INITVAL] |= word << offset
    return tuple(initvals)


def check_implementation(implementation: str, *, loadable: bool) -> str:
    """Validate a table's ``implementation`` (one of :data:`IMPLEMENTATIONS`); return it.

    Raises
    ------
    ValueError
        If it is unknown, or ``"ecp5"`` for a ``loadable`` table (the ``DP16KD`` instances are
        read-only).
    """
    implementation = check_choice("implementation", implementation, IMPLEMENTATIONS)
    if loadable and implementation == "ecp5":
        raise ValueError(
            "loadable: the 'ecp5' implementation (DP16KD instances) is read-only; a loadable "
            "table needs implementation 'inferred' or 'auto' (Yosys maps it to DP16KD blocks "
            "with a write port)"
        )
    return implementation


class TableROM(Unit):
    """``ports`` synchronous lookups in one table, read-only or loadable at run time.

    Port ``p`` reads word ``addr[p]``: the word appears on ``data[p]`` one enabled clock edge
    after the address (``latency == 1``), or two when ``registered`` (the second register
    is the block RAM's own output register where the implementation has one). An address of
    ``depth`` or more reads an unspecified word. Every implementation behaves the same, edge
    for edge once the first enabled edges have filled the pipeline (before that ``data`` is
    unspecified: zero in Amaranth's simulator, unknown in the exported Verilog), and a clock
    edge with ``en`` low changes no register.

    The words start as ``init``. When ``loadable``, a clock edge with ``w_en`` high (whatever
    ``en`` is) stores ``w_data`` at ``w_addr``: every read sampled on a later edge sees it, a
    read sampled on the same edge as a write returns an unspecified word (port 1, if any, reads
    at ``w_addr`` while ``w_en`` is high: it shares a block-RAM port with the write, so two
    read ports and the write fit the two ports of one true dual-port block RAM).

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
    loadable : bool
        Add the write port ``w_en``, ``w_addr``, ``w_data`` (default ``False``: read-only).
    implementation : {"auto", "inferred", "ecp5"}
        ``"inferred"``: an Amaranth ``Memory`` with block-RAM attributes, registers in the
        fabric. ``"ecp5"``: ``DP16KD`` blocks instantiated directly (:func:`dp16kd_tiling`; two
        read ports per block, blocks repeated for a third and fourth port), the output register
        being the blocks' own (``REGMODE = "OUTREG"``, else ``"NOREG"``); it synthesizes for the
        ECP5 only, cannot be simulated by Amaranth, and is read-only (``loadable`` needs
        ``"inferred"``, which Yosys also maps to ``DP16KD`` blocks). ``"auto"`` (default):
        ``"ecp5"`` when the table is read-only and the platform given to ``elaborate`` is an
        ECP5 one (``platform.family == "ecp5"``, as Amaranth's ``LatticePlatform`` sets it),
        else ``"inferred"``.

    Members
    -------
    addr : In(ArrayLayout(unsigned(ceil(log2(depth))), ports))
        The read addresses, sampled when ``en`` is high.
    en : In(1)
        Advance: reads and the output register load only when it is high (default high).
    data : Out(ArrayLayout(unsigned(width), ports))
        The words read.
    w_en : In(1)
        Present when ``loadable``: write ``w_data`` at ``w_addr`` on this clock edge.
    w_addr : In(unsigned(ceil(log2(depth))))
        Present when ``loadable``: the word written (``depth`` or more: unspecified).
    w_data : In(unsigned(width))
        Present when ``loadable``: the word's new value.

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
        loadable: bool = False,
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
        loadable = check_bool("loadable", loadable)
        implementation = check_implementation(implementation, loadable=loadable)
        return (
            width,
            words,
            check_int("ports", ports, 1, 4),
            check_bool("registered", registered),
            loadable,
            implementation,
        )

    def __init__(
        self,
        *,
        width: int,
        init,
        ports: int = 1,
        registered: bool = False,
        loadable: bool = False,
        implementation: str = "auto",
    ):
        parameters = self.check_parameters(
            width=width,
            init=init,
            ports=ports,
            registered=registered,
            loadable=loadable,
            implementation=implementation,
        )
        self._width, self._init, self._ports, self._registered = parameters[:4]
        self._loadable, self._implementation = parameters[4:]
        address = unsigned((len(self._init) - 1).bit_length())
        members = {
            "addr": In(data.ArrayLayout(address, ports)),
            "en": In(1, init=1),
            "data": Out(data.ArrayLayout(unsigned(width), ports)),
        }
        if self._loadable:
            members |= {"w_en": In(1), "w_addr": In(address), "w_data": In(unsigned(width))}
        super().__init__(members)

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
        """The initial words."""
        return self._init

    @property
    def loadable(self) -> bool:
        """Whether the table has a write port."""
        return self._loadable

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

    @property
    def implementation(self) -> str:
        """The ``implementation`` asked for (``"auto"`` is resolved by :meth:`resolve`)."""
        return self._implementation

    def resolve(self, platform) -> str:
        """Return the implementation built on ``platform``: ``"inferred"`` or ``"ecp5"``."""
        if self._implementation != "auto":
            return self._implementation
        ecp5 = getattr(platform, "family", None) == "ecp5" and not self._loadable
        return "ecp5" if ecp5 else "inferred"

    def elaborate(self, platform):
        """Build the implementation :meth:`resolve` names for ``platform``."""
        if self.resolve(platform) == "ecp5":
            return self._elaborate_ecp5()
        return self._elaborate_inferred()

    def _elaborate_inferred(self) -> Module:
        """Build an inferred memory: a read port per lookup, then the output registers.

        A loadable memory has a write port; read port 1 (if any) shares its address, which is
        ``w_addr`` during a write, so Yosys maps the two to one port of a block RAM.
        """
        m = Module()
        attrs = BLOCK_RAM_ATTRS | ({"no_rw_check": 1} if self._loadable else {})
        m.submodules.memory = memory = Memory(
            shape=self._width, depth=self.depth, init=self._init, attrs=attrs
        )
        addresses = [self.addr[port] for port in range(self._ports)]
        if self._loadable:
            write = memory.write_port(domain="sync")
            shared = self.w_addr
            if self._ports > 1:
                shared = Signal.like(self.w_addr, name="shared_addr")
                m.d.comb += shared.eq(Mux(self.w_en, self.w_addr, self.addr[1]))
                addresses[1] = shared
            m.d.comb += [write.en.eq(self.w_en), write.addr.eq(shared), write.data.eq(self.w_data)]
        for port, address in enumerate(addresses):
            if self._loadable:
                # A read on the edge of a write returns an unspecified word: Yosys is told so
                # (``no_rw_check``), else it would emulate read-before-write with a delayed
                # write, a bypass register and a multiplexer behind the block RAM. The
                # attribute acts where Yosys merges a register into an asynchronous read port,
                # hence that port and the explicit first register (the RAM's synchronous read).
                read = memory.read_port(domain="comb")
                m.d.comb += read.addr.eq(address)
                first = 0
            else:
                read = memory.read_port(domain="sync")
                m.d.comb += [read.addr.eq(address), read.en.eq(self.en)]
                first = 1
            word = read.data
            for stage in range(first, self.latency):
                register = Signal(self._width, name=f"data{port}_d{stage + 1}", reset_less=True)
                with m.If(self.en):
                    m.d.sync += register.eq(word)
                word = register
            m.d.comb += self.data[port].eq(word)
        return m

    def _elaborate_ecp5(self) -> Module:
        """Build ``DP16KD`` blocks: per pair of ports one per bank and column; bank multiplexers.

        Port ``2k`` is side A and port ``2k + 1`` side B of copy ``k`` of the blocks. With
        several banks the bank number of each address travels beside the blocks in registers as
        deep as the latency and selects the bank's word.
        """
        m = Module()
        tiling = dp16kd_tiling(self._width, self.depth)
        rows, width = tiling.bank_depth, tiling.data_width
        mask = (1 << width) - 1
        contents = {
            (bank, column): dp16kd_initvals(
                [(word >> column * width) & mask for word in self._init[bank * rows :][:rows]],
                width,
            )
            for bank in range(tiling.banks)
            for column in range(tiling.columns)
        }
        words = [
            [Signal(self._width, name=f"data{port}_bank{bank}") for bank in range(tiling.banks)]
            for port in range(self._ports)
        ]
        for (bank, column), initvals in contents.items():
            for copy in range(-(-self._ports // 2)):
                sides = {}
                for side, port in zip("AB", (2 * copy, 2 * copy + 1), strict=True):
                    if port < self._ports:
                        address = self.addr[port][: tiling.address_bits]
                        word = words[port][bank][column * width :][:width]
                        sides[side] = (address, word)
                m.submodules[f"dp16kd_{copy}_{bank}_{column}"] = self._dp16kd(
                    tiling, initvals, sides
                )
        for port in range(self._ports):
            if tiling.banks == 1:
                m.d.comb += self.data[port].eq(words[port][0])
                continue
            select = self.addr[port][tiling.address_bits :]
            for stage in range(self.latency):
                delayed = Signal(len(select), name=f"bank{port}_d{stage + 1}", reset_less=True)
                with m.If(self.en):
                    m.d.sync += delayed.eq(select)
                select = delayed
            with m.Switch(select):
                for bank, word in enumerate(words[port]):
                    with m.Case(bank):
                        m.d.comb += self.data[port].eq(word)
        return m

    def _dp16kd(self, tiling: DP16KDTiling, initvals, sides) -> Instance:
        """One ``DP16KD`` holding ``initvals``; ``sides`` maps "A"/"B" to (address, word).

        A side missing from ``sides`` is left idle: clock enables low, address zero.
        """
        registered = self._registered
        parameters = {
            "DATA_WIDTH_A": tiling.data_width,
            "DATA_WIDTH_B": tiling.data_width,
            "REGMODE_A": "OUTREG" if registered else "NOREG",
            "REGMODE_B": "OUTREG" if registered else "NOREG",
            "CSDECODE_A": "0b000",
            "CSDECODE_B": "0b000",
            "WRITEMODE_A": "NORMAL",
            "WRITEMODE_B": "NORMAL",
            "RESETMODE": "SYNC",
            "ASYNC_RESET_RELEASE": "SYNC",
            "GSR": "DISABLED",
        }
        for index, value in enumerate(initvals):
            parameters[f"INITVAL_{index:02X}"] = Const(value, DP16KD_INITVAL_BITS)
        arguments = {f"p_{name}": value for name, value in parameters.items()}
        shift = _ADDRESS_PINS - tiling.address_bits
        for side in "AB":
            address, word = sides.get(side, (Const(0, 1), None))
            enable = self.en if side in sides else Const(0)
            pins = Cat(Const(0, shift), address, Const(0, _ADDRESS_PINS))
            arguments |= {
                f"i_CLK{side}": ClockSignal("sync"),
                f"i_CE{side}": enable,
                f"i_OCE{side}": enable,
                f"i_WE{side}": Const(0),
                f"i_RST{side}": Const(0),
            }
            arguments |= {f"i_CS{side}{bit}": Const(0) for bit in range(3)}
            arguments |= {f"i_AD{side}{bit}": pins[bit] for bit in range(_ADDRESS_PINS)}
            arguments |= {f"i_DI{side}{bit}": Const(0) for bit in range(18)}
            if word is not None:
                arguments |= {f"o_DO{side}{bit}": word[bit] for bit in range(len(word))}
        return Instance("DP16KD", **arguments)
