"""cocotb on Icarus and Verilator: the units without a stream interface, cycle by cycle.

The product terms (:class:`PALProductTerm` combinational and pipelined,
:class:`PALTableProductTerm` registered, signed and loadable, :class:`IntProductTerm`,
:class:`FloatProductTerm`), :class:`SegmentedAccumulator` (one and three segments),
:class:`TableROM` (read-only with two registered ports, and loadable) and the UART
(:class:`UARTTx`, :class:`UARTRx`) sit side by side in one top (``ports``, see
``conftest.StreamGroup``): one build per simulator. ``tb_ports.py`` drives a table of input
values per cycle (the ``port_job`` fixture) and compares the outputs in given cycles with
expectations computed here: :func:`palhdl.sim.golden.mac_terms` and ``float_mac_terms``,
exact integer products, :func:`palhdl.sim.golden.dot` over the terms an accumulator adds, the
table contents as written, and an 8N1 bit-level reference of the UART at the unit's divisor.
A unit of ``latency`` ``L`` with a clock enable shows in cycle ``c`` the result of the inputs
of the ``L``-th most recent cycle whose edge was enabled (:func:`sources`). Verilator also
runs every pal8 operand pair through :class:`PALProductTerm` and :class:`PALTableProductTerm`
(slow).
"""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from palhdl.format import MacConfig, PALFormat, pal8
from palhdl.hdl.accumulator import SegmentedAccumulator
from palhdl.hdl.baselines import FloatProductTerm, IntProductTerm
from palhdl.hdl.mac import PALProductTerm
from palhdl.hdl.pe import PALTableProductTerm, term_table_words
from palhdl.hdl.rom import TableROM
from palhdl.hdl.uart import UARTRx, UARTTx
from palhdl.sim import golden
from palhdl.sim.golden.baselines import FLOAT_FORMATS, float_geometry, float_mac_terms
from palhdl.sim.pysim import pack_payloads

TOP = "ports"
DEFAULT = MacConfig(pal8)
#: 16-bit saturating accumulator, LSB 2**-6: small terms round, large ones clamp.
NARROW = MacConfig(pal8, acc_bits=16, acc_frac_bits=6)
#: A wrapping window with a narrow term window (terms overflow and are dropped).
TABLE = MacConfig(
    pal8, mantissa_bits=5, acc_bits=32, acc_frac_bits=12, term_bits=14, saturate=False
)
#: The loadable table's window and the configuration loaded into it (same geometry).
WRAPPING = MacConfig(
    pal8, mantissa_bits=5, acc_bits=18, acc_frac_bits=8, term_bits=11, saturate=False
)
LOADED = WRAPPING.retarget(PALFormat(int_bits=5, frac_bits=2))
FP8 = FLOAT_FORMATS["e4m3"]
FP8_WINDOW = {"acc_bits": 20, "acc_frac_bits": 8, "term_bits": 14, "saturate": True}
TX_DIVISOR, RX_DIVISOR = 5, 6
#: Cycles of the random job.
CYCLES = 1600


class RxPorts(wiring.Component):
    """A :class:`UARTRx` whose ``always_ready`` stream ``o`` is plain ports (a top-level port
    cannot be the constant ``ready``): ``rx``, ``valid``, ``payload``."""

    def __init__(self, *, divisor):
        self.rx_unit = UARTRx(divisor=divisor)
        payload = self.rx_unit.o.payload.shape()
        super().__init__({"rx": In(1, init=1), "valid": Out(1), "payload": Out(payload)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = unit = self.rx_unit
        m.d.comb += [
            unit.rx.eq(self.rx),
            self.valid.eq(unit.o.valid),
            self.payload.eq(unit.o.payload),
        ]
        return m


def make_units():
    """Instance name -> unit: the whole ``ports`` top."""
    rng = np.random.default_rng(1)
    return {
        "pt": PALProductTerm(config=DEFAULT),
        "ptp": PALProductTerm(config=NARROW, pipelined=True),
        "tpt": PALTableProductTerm(config=TABLE),
        "tps": PALTableProductTerm(config=NARROW, signed=True, registered=False),
        "tpl": PALTableProductTerm(config=WRAPPING, loadable=True),
        "ipt": IntProductTerm(width=8),
        "fpt": FloatProductTerm(fmt=FP8, config=float_geometry(**FP8_WINDOW)),
        "acc": SegmentedAccumulator(config=NARROW.accumulator),
        "accs": SegmentedAccumulator(config=TABLE.accumulator, segments=3, signed_term=True),
        "rom": TableROM(
            width=12,
            init=[int(x) for x in rng.integers(0, 1 << 12, 100)],
            ports=2,
            registered=True,
        ),
        "roml": TableROM(width=9, init=[int(x) for x in rng.integers(0, 512, 64)], loadable=True),
        "utx": UARTTx(divisor=TX_DIVISOR),
        "urx": RxPorts(divisor=RX_DIVISOR),
    }


def sources(enables, latency):
    """For each cycle, the cycle whose inputs the output shows (-1: the pipeline is not full).

    A register loads on the rising edge that ends a cycle with the enable high, so with
    ``latency`` registers in a row the output in cycle ``c`` comes from the ``latency``-th
    most recent such cycle before ``c`` (from ``c`` itself when ``latency`` is 0).
    """
    enables = np.asarray(enables, dtype=bool)
    if latency == 0:
        return np.arange(len(enables))
    enabled = np.flatnonzero(enables)
    edges = np.cumsum(enables) - enables  # enabled edges before each cycle
    return np.where(edges >= latency, enabled[np.maximum(edges - latency, 0)], -1)


def random_codes(rng, count):
    """Random pal8 codes, 10 % of them zero, NaN or the largest magnitude."""
    codes = rng.integers(0, 256, count)
    special = rng.random(count) < 0.1
    codes[special] = rng.choice([pal8.zero_code, pal8.nan_code, pal8.max_code], special.sum())
    return codes


def expect_terms(job, case, port, layout, cycles, term, nan, overflow, *, negative=None):
    """Expect terms on ``port``: ``term_layout`` (sign-magnitude) or ``accumulator_layout``.

    A zero magnitude's sign is not part of the contract (masked) unless ``negative`` is given
    for such cycles too.
    """
    term, cycles = np.asarray(term, dtype=object), np.asarray(cycles)
    if "acc" in {name for name, _ in layout}:
        values = pack_payloads(layout, {"acc": term, "nan": nan, "overflow": overflow})
        job.expect(case, port, cycles, values)
        return
    negative = term < 0 if negative is None else np.asarray(negative)
    fields = {"magnitude": abs(term), "negative": negative, "nan": nan, "overflow": overflow}
    values = pack_payloads(layout, fields)
    signed = (term != 0) | (negative != 0)
    full = (1 << layout.size) - 1
    job.expect(case, port, cycles[signed], values[signed])
    unsigned_mask = full & ~(1 << layout["negative"].offset)
    job.expect(case, port, cycles[~signed], values[~signed], mask=unsigned_mask)


def product_term(job, units, name, a, b, *, enables=None, start=0, config=None):
    """Drive ``a``, ``b`` (and ``en``) of a PAL product term from ``start``; expect its terms."""
    unit = units[name]
    port = "term" if "term" in unit.signature.members and name != "pt" else "term_sm"
    enables = np.ones(len(a), dtype=bool) if enables is None else enables
    job.drive(f"{name}__a", a, start=start)
    job.drive(f"{name}__b", b, start=start)
    if "en" in unit.signature.members:
        job.drive(f"{name}__en", enables, start=start, fill=1)
    source = sources(enables, unit.latency)
    cycles = np.flatnonzero(source >= 0)
    term, nan, overflow = golden.mac_terms(
        a[source[cycles]], b[source[cycles]], config or unit.config
    )
    layout = getattr(unit, port).shape()
    expect_terms(job, name, f"{name}__{port}", layout, cycles + start, term, nan, overflow)
    if name == "pt":  # both forms of the combinational term
        layout = unit.term.shape()
        expect_terms(job, name, "pt__term", layout, cycles + start, term, nan, overflow)


def product_term_cases(job, units, rng, count):
    for name in ("pt", "ptp", "tpt", "tps"):
        enables = rng.random(count) < 0.75
        product_term(job, units, name, random_codes(rng, count), random_codes(rng, count),
                     enables=enables)  # fmt: skip


def loadable_case(job, units, rng, count):
    """``tpl``: lookups of its own table, a load of ``LOADED``'s words, lookups of those."""
    unit = units["tpl"]
    words = term_table_words(LOADED)
    load = len(words)
    a, b = random_codes(rng, 2 * count + load), random_codes(rng, 2 * count + load)
    enables = rng.random(len(a)) < 0.8
    w_en = np.zeros(len(a), dtype=bool)
    w_en[count : count + load] = True
    w_addr = np.zeros(len(a), dtype=np.int64)
    w_addr[count : count + load] = np.arange(load)
    w_data = np.zeros(len(a), dtype=object)
    w_data[count : count + load] = words
    for port, values in [("a", a), ("b", b), ("w_en", w_en), ("w_addr", w_addr)]:
        job.drive(f"tpl__{port}", values)
    job.drive("tpl__w_data", w_data)
    job.drive("tpl__en", enables, fill=1)
    source = sources(enables, unit.latency)
    layout = unit.term_sm.shape()
    for config, lo, hi in [(WRAPPING, 0, count), (LOADED, count + load, len(a))]:
        # Lookups sampled on an edge of the load are unspecified: only those outside it.
        cycles = np.flatnonzero((source >= lo) & (source < hi))
        term, nan, overflow = golden.mac_terms(a[source[cycles]], b[source[cycles]], config)
        expect_terms(job, f"tpl/{config.fmt}", "tpl__term_sm", layout, cycles, term, nan, overflow)


def baseline_term_cases(job, units, rng, count):
    """IntProductTerm against exact products; FloatProductTerm against ``float_mac_terms``."""
    a, b = rng.integers(-128, 128, (2, count))
    a[:4], b[:4] = [-128, -128, 127, 0], [-128, 127, -128, -1]
    job.drive("ipt__a", a & 0xFF)
    job.drive("ipt__b", b & 0xFF)
    job.expect("ipt", "ipt__product", range(count), (a * b) & 0xFFFF)
    a, b = rng.integers(0, 256, (2, count))
    job.drive("fpt__a", a)
    job.drive("fpt__b", b)
    term, nan, pos_inf, neg_inf, overflow = float_mac_terms(a, b, FP8, **FP8_WINDOW)
    layout = units["fpt"].term_sm.shape()
    negative = np.where(pos_inf | neg_inf, neg_inf, term < 0)
    expect_terms(job, "fpt", "fpt__term_sm", layout, np.arange(count), term, nan, overflow,
                 negative=negative)  # fmt: skip
    job.expect("fpt", "fpt__infinite", range(count), pos_inf | neg_inf)


def accumulator_case(job, units, name, config, rng, count):
    """Dot products of random pal8 codes' terms: each sum is ``golden.dot`` of its operands."""
    unit = units[name]
    a, b = random_codes(rng, count), random_codes(rng, count)
    term, nan, overflow = golden.mac_terms(a, b, config)
    enables = rng.random(count) < 0.8
    valid = enables & (rng.random(count) < 0.85)
    restart = valid & (rng.random(count) < 0.12)
    valid[0], restart[0], enables[0] = False, True, True  # a restart alone clears
    fields = {"nan": nan, "overflow": overflow}
    if unit.signed_term:
        fields["acc"] = term
    else:
        fields |= {"magnitude": abs(term), "negative": term < 0}
    job.drive(f"{name}__term", pack_payloads(unit.term.shape(), fields))
    job.drive(f"{name}__valid", valid)
    job.drive(f"{name}__restart", restart)
    job.drive(f"{name}__en", enables, fill=1)
    ends = np.flatnonzero(valid & restart)
    results, begin = {}, 0
    for end in ends:
        rows = np.flatnonzero(valid[begin : end + 1]) + begin
        results[end] = golden.dot(a[rows], b[rows], config)
        begin = end + 1
    assert len(results) > 20 and any(r.overflow for r in results.values())
    source = sources(enables, unit.latency)
    cycles = np.flatnonzero(source >= 0)
    done = np.isin(source[cycles], ends)
    job.expect(name, f"{name}__done", cycles, done)
    shown = [results[s] for s in source[cycles[done]]]
    values = pack_payloads(
        unit.sum.shape(),
        {field: [int(getattr(r, field)) for r in shown] for field in ("acc", "nan", "overflow")},
    )
    job.expect(name, f"{name}__sum", cycles[done], values)


def rom_cases(job, units, rng, count):
    """``rom``: random reads on two ports; ``roml``: random reads and writes."""
    rom = units["rom"]
    addresses = rng.integers(0, rom.depth, (count, rom.ports))
    enables = rng.random(count) < 0.75
    job.drive("rom__addr", pack_payloads(rom.addr.shape(), addresses))
    job.drive("rom__en", enables, fill=1)
    source = sources(enables, rom.latency)
    # Until the pipeline fills, the exported Verilog's memory read register has no initial
    # value (X on Icarus), unlike Amaranth's simulator (zero): only filled cycles are compared.
    cycles = np.flatnonzero(source >= 0)
    shown = np.array(rom.init, dtype=object)[addresses[source[cycles]]]
    job.expect("rom", "rom__data", cycles, pack_payloads(rom.data.shape(), shown))
    rom = units["roml"]
    addresses = rng.integers(0, rom.depth, count)
    enables = rng.random(count) < 0.8
    writes = rng.random(count) < 0.3
    w_addr, w_data = rng.integers(0, rom.depth, count), rng.integers(0, 512, count)
    for port, values in [("addr", addresses), ("w_en", writes), ("w_addr", w_addr)]:
        job.drive(f"roml__{port}", values)
    job.drive("roml__w_data", w_data)
    job.drive("roml__en", enables, fill=1)
    contents, before = list(rom.init), []
    for cycle in range(count):  # the table as a read sampled on this cycle's edge sees it
        before.append(contents[addresses[cycle]])
        if writes[cycle]:
            contents[w_addr[cycle]] = int(w_data[cycle])
    source = sources(enables, rom.latency)
    cycles = np.flatnonzero(source >= 0)
    cycles = cycles[~writes[source[cycles]]]  # a read on the edge of a write: unspecified
    job.expect("roml", "roml__data", cycles, [before[s] for s in source[cycles]])


def character(value, divisor, *, stop=1):
    """The 8N1 line levels of one character: start bit, data LSB first, stop bit."""
    bits = [0] + [(value >> k) & 1 for k in range(8)] + [stop]
    return [bit for bit in bits for _ in range(divisor)]


def uart_tx_case(job, rng, count):
    """Bytes offered after random gaps (some back to back): the line and ``ready`` per cycle.

    Reference: a byte is taken in the first offered cycle in which the line is idle or in the
    last cycle of a stop bit; its start bit begins the next cycle, ``divisor`` cycles a bit.
    """
    d = TX_DIVISOR
    valid, payload = np.zeros(count, dtype=bool), np.zeros(count, dtype=np.int64)
    tx, ready = np.ones(count, dtype=np.int64), np.ones(count, dtype=bool)
    offer, accepted = 0, -(10 * d)
    while True:
        offer += int(rng.choice([0, 0, 3, 17]))
        accept = max(offer, accepted + 10 * d)
        if accept + 10 * d >= count:
            break
        value = int(rng.integers(0, 256))
        valid[offer : accept + 1], payload[offer : accept + 1] = True, value
        tx[accept + 1 : accept + 1 + 10 * d] = character(value, d)
        ready[accept + 1 : accept + 10 * d] = False
        offer, accepted = accept + 1, accept
    job.drive("utx__i__valid", valid)
    job.drive("utx__i__payload", payload)
    job.expect("utx", "utx__tx", range(count), tx)
    job.expect("utx", "utx__i__ready", range(count), ready)


def uart_rx_case(job, units, rng, count):
    """Characters with random gaps, a one-cycle glitch and a framing error, on ``rx``.

    Reference: ``rx`` passes two synchroniser registers; a low line starts a character, checked
    again ``divisor // 2`` cycles later; the character appears for one cycle the cycle after
    its stop bit's sample point, ``3 + divisor // 2 + 9 * divisor`` cycles after the start
    bit began; a low stop bit sets ``error`` (then ``data`` is not compared).
    """
    d = RX_DIVISOR
    levels, cycles, values, errors = [1] * 5, [], [], []
    while len(levels) + 12 * d < count:
        kind = rng.random()
        if kind < 0.1:
            levels += [0] + [1] * int(rng.integers(d, 2 * d))  # a glitch: ignored
            continue
        stop = int(kind >= 0.2)  # 10 %: framing error
        value = int(rng.integers(0, 256))
        cycles.append(len(levels) + 3 + d // 2 + 9 * d)
        values.append(value)
        errors.append(1 - stop)
        # After a framing error the line must return high before the next start bit.
        gap = int(rng.choice([0, 0, 1, 7])) + (0 if stop else d)
        levels += character(value, d, stop=stop) + [1] * gap
    assert 0 < sum(errors) < len(errors)
    job.drive("urx__rx", levels, fill=1)
    pulses = np.zeros(count, dtype=bool)
    pulses[cycles] = True
    job.expect("urx", "urx__valid", range(count), pulses)
    errors = np.array(errors)
    payload = pack_payloads(units["urx"].payload.shape(), {"data": values, "error": errors})
    good = errors == 0
    job.expect("urx", "urx__payload", np.array(cycles)[good], payload[good])
    job.expect("urx", "urx__payload", np.array(cycles)[~good], payload[~good], mask=0x100)


def random_job(port_job, units, seed):
    """Every unit of the top on random inputs for :data:`CYCLES` cycles."""
    rng = np.random.default_rng(seed)
    job = port_job(CYCLES)
    product_term_cases(job, units, rng, CYCLES)
    loadable_case(job, units, rng, 500)
    baseline_term_cases(job, units, rng, CYCLES)
    accumulator_case(job, units, "acc", NARROW, rng, CYCLES)
    accumulator_case(job, units, "accs", TABLE, rng, CYCLES)
    rom_cases(job, units, rng, CYCLES)
    uart_tx_case(job, rng, CYCLES)
    uart_rx_case(job, units, rng, CYCLES)
    return job.job()


def test_ports_random(run_ports, port_job, simulator):
    """Every unit without a stream interface on about 1,600 cycles of random inputs."""
    units = make_units()
    run_ports(simulator, TOP, units, random_job(port_job, units, 3))


@pytest.mark.slow
def test_ports_every_pal8_pair_verilator(run_ports, port_job):
    """All 65,536 pal8 pairs through PALProductTerm (combinational and pipelined) and
    PALTableProductTerm (registered sign-magnitude and unregistered signed tables)."""
    units = make_units()
    rng = np.random.default_rng(4)
    codes = np.arange(256)
    a, b = (x.ravel() for x in np.meshgrid(codes, codes, indexing="ij"))
    order = rng.permutation(a.size)
    # Four more cycles of zero operands let the pipelines show the last pairs.
    a, b = (np.concatenate([x[order], np.zeros(4, dtype=x.dtype)]) for x in (a, b))
    job = port_job(a.size)
    for name in ("pt", "ptp", "tpt", "tps"):
        product_term(job, units, name, a, b)
    run_ports("verilator", TOP, units, job.job())
