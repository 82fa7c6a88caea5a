"""TableROM: every port reads its own address, with and without the output register.

The inferred implementation is simulated with Amaranth; the ECP5 one (DP16KD instances) is
proved equal to it in Yosys, with a behavioural DP16KD that is itself checked against Yosys' own
ECP5 block-RAM mapping.
"""

import re

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Fragment, Module, Mux
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from palhdl.boards.devices import DEVICES
from palhdl.boards.platforms import get_board
from palhdl.hdl import rom
from palhdl.hdl.pe import PALTableProductTerm
from palhdl.hdl.rom import TableROM, dp16kd_initvals, dp16kd_tiling
from palhdl.synth.pnr import RegisteredHarness
from palhdl.synth.toolchain import run_nextpnr, run_yosys
from palhdl.synth.yosys import synth_command, synth_stats


def read_stream(rom, addresses, enables):
    """Each cycle set ``addr`` (a row of ``addresses``) and ``en``; sample ``data`` after it."""
    samples = []

    async def testbench(ctx):
        for row, enable in zip(addresses, enables, strict=True):
            ctx.set(rom.en, int(enable))
            for port, address in enumerate(row):
                ctx.set(rom.addr[port], int(address))
            await ctx.tick()
            samples.append([ctx.get(rom.data[port]) for port in range(rom.ports)])

    sim = Simulator(rom)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return np.array(samples)


@pytest.mark.parametrize("ports", [1, 2, 3])
@pytest.mark.parametrize("registered", [False, True])
def test_reads_every_address_on_every_port(ports, registered):
    rng = np.random.default_rng(ports)
    init = [int(x) for x in rng.integers(0, 1 << 13, size=300)]
    rom = TableROM(width=13, init=init, ports=ports, registered=registered)
    addresses = rng.integers(0, 300, size=(400, ports))
    samples = read_stream(rom, addresses, np.ones(400, dtype=bool))
    lag = rom.latency
    assert lag == (2 if registered else 1)
    np.testing.assert_array_equal(samples[lag - 1 :], np.array(init)[addresses[: 400 - lag + 1]])


@pytest.mark.parametrize("registered", [False, True])
def test_en_low_holds_the_pipeline(registered):
    init = list(range(100, 116))
    rom = TableROM(width=8, init=init, registered=registered)
    addresses = np.arange(16)[:, None]
    enables = np.array([i % 3 != 2 for i in range(16)])
    samples = read_stream(rom, addresses, enables)[:, 0]
    # Only enabled edges advance: the word after the k-th enabled edge is that of the
    # (k - latency + 1)-th enabled address, and a disabled edge changes nothing.
    taken = addresses[enables, 0]
    expected, count = [], 0
    for enable in enables:
        count += int(enable)
        index = count - rom.latency
        expected.append(init[taken[index]] if index >= 0 else None)
    for got, want in zip(samples, expected, strict=True):
        if want is not None:
            assert got == want


def test_parameters():
    with pytest.raises(ValueError, match=r"init\[1\] must be an integer in \[0, 2\*\*4\)"):
        TableROM(width=4, init=[1, 16])
    with pytest.raises(ValueError, match="ports"):
        TableROM(width=4, init=[1, 2], ports=5)
    with pytest.raises(ValueError, match="implementation"):
        TableROM(width=4, init=[1, 2], implementation="lutram")
    with pytest.raises(TypeError, match="init"):
        TableROM(width=4, init=7)


# --- The ECP5 implementation --------------------------------------------------------------------
#
# Amaranth cannot simulate an Instance, so the DP16KD implementation is checked in Yosys against
# a behavioural DP16KD written here from the documented layout (the model below), and the model
# itself is checked against the DP16KD blocks Yosys' own ECP5 memory mapping makes.

#: Words a DP16KD port holds at each data width (Lattice TN1264: 1024 x 18 ... 16384 x 1).
WORDS_AT_WIDTH = {18: 1024, 9: 2048, 4: 4096, 2: 8192, 1: 16384}

#: Time steps of a bounded proof beyond the pipeline's latency. Every register of both designs
#: loads only when ``en`` is high and from the inputs or the register before it, at most
#: ``latency`` deep, so every reachable state is reached within ``latency`` steps from the
#: all-zero state; ``latency + 2`` steps check the outputs of every reachable state, with one
#: step of margin.
PROOF_MARGIN = 2


def dp16kd_model() -> str:
    """Verilog of a read-only behavioural ``DP16KD``, written from the documented layout.

    The array is 2048 nine-bit words, as nextpnr writes it to the bitstream: ``INITVAL_xx``
    holds 16 slots of 20 bits, slot ``s`` holding nine-bit words ``2(16 xx + s)`` (bits 0..8)
    and ``2(16 xx + s) + 1`` (bits 9..17). An 18-bit port reads the pair ``AD[13:4]``, a
    9-bit port the word ``AD[13:3]``, narrower ports a field from bit 0 of the word ``AD[13:3]``
    selected by ``AD[2:0]``. ``CE`` loads the read register, ``OCE`` the output register
    (``REGMODE = "OUTREG"``; ``"NOREG"`` outputs the read register). A write, a reset or a
    chip select other than ``CSDECODE = "0b000"`` is outside the model: the read register then
    loads all ones, which no table here holds in every bit, so a proof fails.
    """
    ports, parameters, body = [], [], []
    for side in "AB":
        ports += [f"input DI{side}{bit}" for bit in range(18)]
        ports += [f"input AD{side}{bit}" for bit in range(14)]
        ports += [f"input {pin}{side}" for pin in ("CE", "OCE", "CLK", "WE", "RST")]
        ports += [f"input CS{side}{bit}" for bit in range(3)]
        ports += [f"output DO{side}{bit}" for bit in range(18)]
        parameters += [
            f"parameter DATA_WIDTH_{side} = 18;",
            f'parameter REGMODE_{side} = "NOREG";',
            f'parameter CSDECODE_{side} = "0b000";',
            f'parameter WRITEMODE_{side} = "NORMAL";',
            f'parameter CLK{side}MUX = "CLK{side}";',
        ]
        address = ", ".join(f"AD{side}{bit}" for bit in reversed(range(14)))
        chip = ", ".join(f"CS{side}{bit}" for bit in reversed(range(3)))
        output = ", ".join(f"DO{side}{bit}" for bit in reversed(range(18)))
        body.append(f"""
    wire [13:0] ad_{side} = {{{address}}};
    wire [8:0] nine_{side} = nine[ad_{side}[13:3]];
    wire [8:0] low_{side} = nine[{{ad_{side}[13:4], 1'b0}}];
    wire [8:0] high_{side} = nine[{{ad_{side}[13:4], 1'b1}}];
    reg [17:0] word_{side};
    always @* begin
        case (DATA_WIDTH_{side})
            18: word_{side} = {{high_{side}, low_{side}}};
            9: word_{side} = {{9'b0, nine_{side}}};
            4: word_{side} = (nine_{side} >> (4 * ad_{side}[2])) & 18'hf;
            2: word_{side} = (nine_{side} >> (2 * ad_{side}[2:1])) & 18'h3;
            default: word_{side} = {{17'b0, nine_{side}[ad_{side}[2:0]]}};
        endcase
    end
    wire misuse_{side} = WE{side} | RST{side} | ({{{chip}}} != 3'b000)
        | (CSDECODE_{side} != "0b000") | (CLK{side}MUX != "CLK{side}");
    reg [17:0] read_{side} = 18'b0, out_{side} = 18'b0;
    always @(posedge CLK{side}) begin
        if (CE{side}) read_{side} <= misuse_{side} ? 18'h3ffff : word_{side};
        if (OCE{side}) out_{side} <= read_{side};
    end
    assign {{{output}}} = REGMODE_{side} == "OUTREG" ? out_{side} : read_{side};
""")
    parameters += [
        'parameter RESETMODE = "SYNC";',
        'parameter ASYNC_RESET_RELEASE = "SYNC";',
        'parameter GSR = "ENABLED";',
        *(f"parameter [319:0] INITVAL_{index:02X} = 320'h0;" for index in range(64)),
    ]
    initvals = ", ".join(f"INITVAL_{index:02X}" for index in reversed(range(64)))
    return (
        "module DP16KD(\n    "
        + ",\n    ".join(ports)
        + "\n);\n    "
        + "\n    ".join(parameters)
        + f"\n    localparam [20479:0] INIT = {{{initvals}}};"
        + "\n    reg [8:0] nine [0:2047];\n    integer i;"
        + "\n    initial for (i = 0; i < 2048; i = i + 1)"
        + "\n        nine[i] = INIT[20 * (i / 2) + 9 * (i % 2) +: 9];\n"
        + "".join(body)
        + "endmodule\n"
    )


def sat_result(log: str) -> bool:
    """Return whether Yosys' ``sat`` proved its property (``-seq`` or ``-tempinduct``).

    ``False`` means the proof failed (a counterexample, or no induction within the steps).
    """
    proved = ("SAT proof finished - no model found: SUCCESS!", "Induction step proven: SUCCESS!")
    failed = ("model found: FAIL!", "model found for base case: FAIL!", "proof failed.")
    if any(message in log for message in proved):
        return True
    assert any(message in log for message in failed), log[-3000:]
    return False


class Pair(wiring.Component):
    """The inferred and the ECP5 TableROM on the same inputs; ``same`` compares their words.

    An address of ``depth`` or more (possible when the depth is not a power of two) is replaced
    by 0 for both: such reads are unspecified.
    """

    def __init__(self, **parameters):
        self._parameters = parameters
        depth, ports = len(parameters["init"]), parameters.get("ports", 1)
        address = data.ArrayLayout((depth - 1).bit_length(), ports)
        super().__init__({"addr": In(address), "en": In(1), "same": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.gold = gold = TableROM(**self._parameters, implementation="inferred")
        m.submodules.gate = gate = TableROM(**self._parameters, implementation="ecp5")
        for table in (gold, gate):
            m.d.comb += table.en.eq(self.en)
            for port in range(table.ports):
                address = self.addr[port]
                m.d.comb += table.addr[port].eq(Mux(address < table.depth, address, 0))
        m.d.comb += self.same.eq(gold.data.as_value() == gate.data.as_value())
        return m


def prove_same(**parameters) -> tuple[bool, str]:
    """Prove the two implementations' words equal for every input sequence; return (proved, log).

    A bounded proof of ``latency +`` :data:`PROOF_MARGIN` steps from the all-zero state (both
    pipelines start at zero), complete as that constant explains; the ROMs are flattened to
    logic with their contents.
    """
    steps = (2 if parameters.get("registered", False) else 1) + PROOF_MARGIN
    design = rtlil.convert(Pair(**parameters), name="top", emit_src=False)
    script = (
        "read_verilog dp16kd.v; read_rtlil design.il; hierarchy -top top; proc; flatten; "
        "memory; opt -full; "
        f"sat -seq {steps} -prove same 1 -set-init-zero -show-inputs -show-outputs top"
    )
    log = run_yosys(script, {"dp16kd.v": dp16kd_model(), "design.il": design})["log"]
    return sat_result(log), log


def random_words(width: int, depth: int, seed: int) -> list[int]:
    return [int(x) for x in np.random.default_rng(seed).integers(0, 1 << width, size=depth)]


@pytest.mark.slow
# The width the PE tables use (18) and a narrow packing (2); each proof takes about a minute.
@pytest.mark.parametrize("data_width", [2, 18])
def test_model_reads_what_yosys_maps(data_width):
    """The model reads, word for word, the DP16KD that Yosys' own ECP5 mapping fills.

    An inferred two-port ROM that fills one block at ``data_width`` is mapped by
    ``memory_libmap``/``techmap`` with Yosys' ECP5 block-RAM library (its ``INITVAL`` layout is
    Yosys', not palhdl's), then proved equal to the unmapped ROM with the model, by induction:
    both read registers load only from the addresses, so equal outputs stay equal.
    """
    depth = WORDS_AT_WIDTH[data_width]
    rom = TableROM(
        width=data_width,
        init=random_words(data_width, depth, data_width),
        ports=2,
        implementation="inferred",
    )
    design = rtlil.convert(rom, name="top", emit_src=False)
    script = f"""read_rtlil design.il; hierarchy -top top; proc; flatten; opt_clean
rename top gold; copy gold gate
memory -nomap gate; memory_libmap -lib +/lattice/brams_16kd.txt gate
techmap -map +/lattice/brams_map_16kd.v gate
select -assert-count 1 gate/t:DP16KD
select -assert-count 1 gate/t:DP16KD gate/r:DATA_WIDTH_A={data_width} %i
read_verilog dp16kd.v
miter -equiv -make_outputs -ignore_gold_x gold gate miter; hierarchy -top miter
proc; flatten; memory; opt -full
sat -tempinduct -maxsteps 4 -prove trigger 0 -set-init-zero miter"""
    log = run_yosys(script, {"dp16kd.v": dp16kd_model(), "design.il": design})["log"]
    assert sat_result(log)


def test_dp16kd_tiling():
    # (width, depth): (DATA_WIDTH, columns, banks), the fewest blocks, then the fewest banks.
    expected = {
        (15, 512): (18, 1, 1),
        (18, 1024): (18, 1, 1),
        (9, 2048): (9, 1, 1),
        (7, 4096): (4, 2, 1),
        (2, 8192): (2, 1, 1),
        (1, 16384): (1, 1, 1),
        (9, 3000): (9, 1, 2),
        (40, 300): (18, 3, 1),
        (72, 1024): (18, 4, 1),
        (18, 16384): (9, 2, 8),
        (9, 16384): (9, 1, 8),
        (16, 16384): (1, 16, 1),
    }
    for (width, depth), (data_width, columns, banks) in expected.items():
        tiling = dp16kd_tiling(width, depth)
        assert (tiling.data_width, tiling.columns, tiling.banks) == (data_width, columns, banks)
        assert tiling.blocks == columns * banks
        assert tiling.bank_depth == WORDS_AT_WIDTH[data_width]


def test_dp16kd_initvals_layout():
    """Words land where nextpnr's bitstream writer reads them: nine-bit word ``j`` is bits
    ``20 * (j // 2 % 16) + 9 * (j % 2)`` up of ``INITVAL_{j // 32}``."""

    def one(data_width, index, word):
        words = [0] * (index + 1)
        words[index] = word
        initvals = dp16kd_initvals(words, data_width)
        assert len(initvals) == 64
        return {i: v for i, v in enumerate(initvals) if v}

    assert one(18, 0, 0x3FFFF) == {0: 0x3FFFF}
    assert one(18, 1, 0x20001) == {0: 0x20001 << 20}
    assert one(18, 17, 1) == {1: 1 << 20}
    assert one(18, 1023, 0x3FFFF) == {63: 0x3FFFF << 300}
    assert one(9, 1, 0x1FF) == {0: 0x1FF << 9}
    assert one(9, 33, 1) == {1: 1 << 9}
    assert one(4, 3, 0xF) == {0: 0xF << 13}  # nine-bit word 1, upper nibble
    assert one(4, 4, 0x5) == {0: 0x5 << 20}  # nine-bit word 2: the second slot
    assert one(2, 5, 3) == {0: 3 << 11}  # nine-bit word 1, field 1
    assert one(1, 8, 1) == {0: 1 << 9}
    assert one(1, 17, 1) == {0: 1 << 21}
    assert one(1, 16383, 1) == {63: 1 << (300 + 9 + 7)}
    assert dp16kd_initvals([], 9) == (0,) * 64
    with pytest.raises(ValueError, match="holds 1024 words"):
        dp16kd_initvals([0] * 1025, 18)
    with pytest.raises(ValueError, match=r"words\[1\] must be an integer in \[0, 2\*\*4\)"):
        dp16kd_initvals([0, 16], 4)
    with pytest.raises(ValueError, match="data_width"):
        dp16kd_initvals([0], 36)


def test_auto_picks_dp16kd_blocks_on_ecp5_only():
    def make(implementation):
        return TableROM(width=4, init=[1, 2, 3], implementation=implementation)

    ulx3s, icebreaker = ULX3S_85F_Platform(), ICEBreakerPlatform()
    cases = [
        ("auto", None, "inferred"),
        ("auto", ulx3s, "ecp5"),
        ("auto", icebreaker, "inferred"),
        ("inferred", ulx3s, "inferred"),
        ("ecp5", None, "ecp5"),
    ]
    for implementation, platform, built in cases:
        unit = make(implementation)
        assert unit.implementation == implementation
        assert unit.resolve(platform) == built
        text = rtlil.convert(unit, platform=platform, emit_src=False)
        assert ("cell \\DP16KD " in text) == (built == "ecp5")
        assert ("cell $memrd_v2 " in text) == (built == "inferred")


def pal8_table_words() -> list[int]:
    """The ULX3S PE's signed product-term table (512 words of 15 bits)."""
    config = get_board("ulx3s-85f").default_config()
    unit = PALTableProductTerm(config=config, signed=True, ports=2)
    Fragment.get(unit, None)
    return unit.table_words()


def test_pal8_table_is_equal_on_dp16kd_blocks():
    """The real pal8 table: proved equal, as the ULX3S's PEs read it (two ports, registered)."""
    words = pal8_table_words()
    assert len(words) == 512 and max(words).bit_length() == 15
    proved, log = prove_same(width=15, init=words, ports=2, registered=True)
    assert proved, log[-3000:]


@pytest.mark.parametrize("registered", [pytest.param(True, marks=pytest.mark.slow), False])
def test_512x15_two_ports_is_equal_on_dp16kd_blocks(registered):
    init = random_words(15, 512, 1)
    proved, log = prove_same(width=15, init=init, ports=2, registered=registered)
    assert proved, log[-3000:]


# (width, depth, ports): a 9-bit block with an idle side, a 4-bit block two columns wide (an
# idle side, the depth not a power of two), two 9-bit banks, three 18-bit columns read by two
# pairs of ports.
SHAPES = [(9, 2048, 3), (6, 2100, 1), (9, 3000, 2), (40, 300, 4)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("width", "depth", "ports", "registered"),
    [(9, 2048, 3, False), *((*shape, True) for shape in SHAPES)],
)
def test_every_tiling_is_equal_on_dp16kd_blocks(width, depth, ports, registered):
    init = random_words(width, depth, width + depth + ports)
    proved, log = prove_same(width=width, init=init, ports=ports, registered=registered)
    assert proved, log[-3000:]


def test_a_corrupt_initval_bit_fails_the_proof(monkeypatch):
    """The proof can fail: one INITVAL bit flipped (word 115, bit 5) is found."""
    init = random_words(15, 512, 1)
    original = rom.dp16kd_initvals

    def corrupt(words, data_width):
        initvals = list(original(words, data_width))
        initvals[115 // 16] ^= 1 << (20 * (115 % 16) + 5)
        return tuple(initvals)

    monkeypatch.setattr(rom, "dp16kd_initvals", corrupt)
    proved, log = prove_same(width=15, init=init, ports=2, registered=True)
    assert not proved
    # The counterexample reads word 115 on one of the ports at an enabled step.
    steps = {}
    for step, name, value in re.findall(r"^ +(\d+) \\(addr|en) +(\d+) ", log, re.MULTILINE):
        steps.setdefault(int(step), {})[name] = int(value)
    reads = [
        {values["addr"] & 0x1FF, values["addr"] >> 9} for values in steps.values() if values["en"]
    ]
    assert any(115 in addresses for addresses in reads), log[-3000:]


class Around(wiring.Component):
    """Two ports of a 512 x 15 TableROM addressed by ``a ^ b``, words straight to the outputs.

    The XOR gives the synthesis some logic to map (on a netlist of a DP16KD alone, YoWASP Yosys
    0.70's ABC9 step exits with an error), and adds no flip-flop.
    """

    def __init__(self, implementation):
        self._implementation = implementation
        address = data.ArrayLayout(9, 2)
        super().__init__(
            {
                "a": In(address),
                "b": In(address),
                "en": In(1),
                "data": Out(data.ArrayLayout(15, 2)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = table = TableROM(
            width=15,
            init=random_words(15, 512, 1),
            ports=2,
            registered=True,
            implementation=self._implementation,
        )
        m.d.comb += [table.en.eq(self.en), self.data.eq(table.data)]
        for port in range(2):
            m.d.comb += table.addr[port].eq(self.a[port] ^ self.b[port])
        return m


def test_ecp5_synthesis_uses_the_block_output_register():
    """One DP16KD for a 512 x 15 two-port registered table, and no fabric flip-flop."""
    ecp5 = synth_stats(Around("ecp5"), target="ecp5")
    assert ecp5["EBR"] == 1 and ecp5["cells"]["DP16KD"] == 1
    assert ecp5["DFF"] == 0
    # The inferred table also fits one block, but its output register is 2 x 15 fabric FFs.
    inferred = synth_stats(Around("inferred"), target="ecp5")
    assert inferred["EBR"] == 1 and inferred["DFF"] == 30


@pytest.mark.slow
@pytest.mark.parametrize("data_width", [4, 18])
def test_nextpnr_writes_the_words_where_the_bitstream_holds_them(data_width, tmp_path):
    """One full block through synthesis and nextpnr: its ``.bram_init`` (the array as 2048
    nine-bit words, as the bitstream holds it) carries the table, packed as documented."""
    depth = WORDS_AT_WIDTH[data_width]
    init = random_words(data_width, depth, 100 + data_width)
    unit = TableROM(width=data_width, init=init, ports=2, registered=True, implementation="ecp5")
    design = rtlil.convert(RegisteredHarness(unit), name="top", emit_src=False)
    run_yosys(
        f"read_rtlil design.il; {synth_command('ecp5', dsp=True, abc9=False)}; "
        "write_json netlist.json",
        {"design.il": design},
        outputs=["netlist.json"],
        directory=tmp_path,
    )
    arguments = ["--json", "netlist.json", "--textcfg", "top.config", "--seed", "1"]
    status, log = run_nextpnr(DEVICES["ecp5"], arguments, cwd=tmp_path)
    assert status == 0, log[-3000:]
    config = (tmp_path / "top.config").read_text()
    blocks = re.findall(r"^\.bram_init \d+\n((?:[0-9a-f]{3}(?: |\n))+)", config, re.MULTILINE)
    assert len(blocks) == 1
    nine = [int(word, 16) for word in blocks[0].split()]
    assert len(nine) == 2048
    if data_width == 18:
        expected = [word >> 9 * half & 0x1FF for word in init for half in (0, 1)]
    else:
        per_nine = 8 // data_width if data_width < 9 else 1
        expected = [
            sum(word << data_width * i for i, word in enumerate(init[j * per_nine :][:per_nine]))
            for j in range(2048)
        ]
    assert nine == expected
