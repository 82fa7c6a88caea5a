"""Run cocotb testbenches on the Verilog of palhdl units, on Icarus and Verilator.

A *group* is a dict of instance name to unit: :class:`StreamGroup` wraps them in one top (one
simulator build per group, not per unit) whose ports are the units' ports prefixed with the
instance name (``mul__i__payload``, ``mul__o__ready``, ...). The ``run_streams`` fixture
exports that top with :func:`palhdl.sim.simulators.export_verilog`, builds it with
``cocotb_tools.runner`` in a cache directory (rebuilt only when the Verilog changes), runs the
generic stream testbench ``tb_streams.py`` with a job file of cases (stimulus and the golden
model's expected payloads, computed here), and asserts that the results file reports it passed.
``PALHDL_WAVES=1`` records waveforms. Units without streams use ``run_ports`` with a
:class:`PortJob` (``port_job`` fixture): the same build path, the generic per-cycle port
testbench ``tb_ports.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from palhdl.sim.simulators import export_verilog, iverilog, verilator_env

HERE = Path(__file__).parent
#: Amaranth's Verilog trips Verilator's lint and style warnings, which are not errors here.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]


class StreamGroup(wiring.Component):
    """Several units side by side in one top; member ``name`` carries unit ``name``'s ports."""

    def __init__(self, units: dict):
        self._units = dict(units)
        super().__init__({name: Out(unit.signature) for name, unit in self._units.items()})

    def elaborate(self, platform):
        m = Module()
        for name, unit in self._units.items():
            m.submodules[name] = unit
            wiring.connect(m, wiring.flipped(getattr(self, name)), unit)
        return m


def _case(name, inputs, outputs, *, backpressure=None):
    """One job case: ``inputs``/``outputs`` map a port prefix to raw payloads (ints)."""
    return {
        "name": name,
        "inputs": {port: [int(p) for p in payloads] for port, payloads in inputs.items()},
        "outputs": {port: [int(p) for p in payloads] for port, payloads in outputs.items()},
        "backpressure": None if backpressure is None else int(backpressure),
    }


@pytest.fixture(params=["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def simulator(request):
    """Each simulator in turn: ``"icarus"``, ``"verilator"``.

    The Verilator runs are marked slow: their first build takes about a minute per top (cached
    afterwards), too long for the fast loop; Icarus builds in seconds.
    """
    return request.param


@pytest.fixture
def case():
    """``case(name, inputs, outputs, backpressure=None)``: one job case for ``run_streams``.

    ``inputs`` and ``outputs`` map a stream's port prefix (``mul__i``) to its raw payloads
    (the outputs' being the golden model's); ``backpressure`` seeds random stalls.
    """
    return _case


def _simulator_env(simulator, monkeypatch):
    if simulator == "verilator":
        env = verilator_env()
        for key in ("PATH", "VERILATOR_ROOT", "MAKEFLAGS"):
            monkeypatch.setenv(key, env[key])
    else:
        iverilog()  # a clear error if Icarus is missing


@pytest.fixture
def run_streams(request, monkeypatch, tmp_path, tmp_path_factory):
    """``run_streams(simulator, top, units, cases)``: build and run, assert all cases pass.

    ``test_module`` and ``job`` (a dict written as the job file instead of ``{"cases": cases}``)
    run another testbench on the same cached build path (see ``run_ports``). Returns the
    seconds the build and the test took (printed with ``-s``).
    """
    from cocotb_tools.runner import get_results, get_runner

    def run(simulator, top, units, cases, *, test_module="tb_streams", job=None):
        _simulator_env(simulator, monkeypatch)
        monkeypatch.syspath_prepend(str(HERE))  # the runner passes sys.path to the simulator
        waves = os.environ.get("PALHDL_WAVES") == "1"
        # A waveform build differs (Icarus: a dump module; Verilator: --trace): its own cache.
        flavour = f"{simulator}-waves" if waves else simulator
        name = f"cocotb-{top}-{flavour}"
        if getattr(request.config, "cache", None) is None:  # -p no:cacheprovider: this run's tmp
            cache = tmp_path_factory.getbasetemp() / name
            cache.mkdir(exist_ok=True)
        else:
            cache = Path(request.config.cache.mkdir(name))
        build_dir = cache / "build"
        source = cache / f"{top}.v"
        fresh = tmp_path / f"{top}.v"
        export_verilog(StreamGroup(units), name=top, path=fresh)
        runner = get_runner(simulator)
        start = time.perf_counter()
        with open(cache / "lock", "w") as lock:  # xdist workers share the build
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not source.exists() or source.read_text() != fresh.read_text():
                # New Verilog: a clean build (Verilator's precompiled headers break on top of
                # an old one). Unchanged Verilog is not rebuilt.
                shutil.rmtree(build_dir, ignore_errors=True)
                source.write_text(fresh.read_text())
            runner.build(
                sources=[source],
                hdl_toplevel=top,
                build_dir=build_dir,
                build_args=VERILATOR_ARGS if simulator == "verilator" else [],
                waves=waves,
                timescale=("1ns", "1ps"),
                log_file=tmp_path / "build.log",
            )
        built = time.perf_counter()
        job_file = tmp_path / "job.json"
        job_file.write_text(json.dumps({"cases": cases} if job is None else job))
        results = tmp_path / "results.xml"
        # The runner exits when a cocotb test fails; the results file says why.
        with contextlib.suppress(SystemExit):
            runner.test(
                test_module=test_module,
                hdl_toplevel=top,
                build_dir=build_dir,
                test_dir=tmp_path,
                extra_env={"PALHDL_COCOTB_JOB": str(job_file)},
                waves=waves,
                results_xml=str(results),
                log_file=tmp_path / "test.log",
            )
        done = time.perf_counter()
        assert results.exists(), f"{top} on {simulator}: no results, see {tmp_path / 'test.log'}"
        failures = [
            failure.get("message", "") for failure in ElementTree.parse(results).iter("failure")
        ]
        assert get_results(results) == (1, 0), f"{top} on {simulator}: " + "; ".join(failures)
        print(f"{top} on {simulator}: build {built - start:.1f} s, test {done - built:.1f} s")
        if waves:
            wave = build_dir / f"{top}.fst" if simulator == "icarus" else tmp_path / "dump.vcd"
            print(f"waveform of {top} on {simulator}: {wave}")
        return built - start, done - built

    return run


@pytest.fixture
def port_job():
    """``port_job(cycles)``: a new :class:`PortJob` for ``run_ports``."""
    return PortJob


@pytest.fixture
def run_ports(run_streams):
    """``run_ports(simulator, top, units, job)``: run ``tb_ports.py`` on ``units``' top.

    ``job`` is a :class:`PortJob`'s :meth:`~PortJob.job`: per-cycle input values and the
    expected output values at given cycles. Returns the build and test seconds.
    """

    def run(simulator, top, units, job):
        return run_streams(simulator, top, units, None, test_module="tb_ports", job=job)

    return run


class PortJob:
    """Build a ``tb_ports.py`` job: a table of input values per cycle and output checks.

    Parameters
    ----------
    cycles : int
        Cycles the job runs (cycle 0 is the first after reset).
    """

    def __init__(self, cycles: int):
        self.cycles = int(cycles)
        self.inputs = {}
        self.checks = []

    def drive(self, port, values, *, start=0, fill=0):
        """Drive input ``port`` with ``values`` from cycle ``start`` on, ``fill`` elsewhere."""
        values = [int(v) for v in values]
        if port in self.inputs or start < 0 or start + len(values) > self.cycles:
            raise ValueError(
                f"{port}: driven twice or {len(values)} values from cycle {start} "
                f"exceed {self.cycles} cycles"
            )
        row = [int(fill)] * self.cycles
        row[start : start + len(values)] = values
        self.inputs[port] = row

    def expect(self, case, port, cycles, values, *, mask=None):
        """Expect ``values[i]`` on output ``port`` in cycle ``cycles[i]`` (bits of ``mask``)."""
        cycles, values = [int(c) for c in cycles], [int(v) for v in values]
        if len(cycles) != len(values):
            raise ValueError(f"{case}/{port}: {len(cycles)} cycles for {len(values)} values")
        check = {"case": case, "port": port, "cycles": cycles, "values": values}
        if mask is not None:
            check["mask"] = int(mask)
        self.checks.append(check)

    def job(self):
        """The job file's contents."""
        return {"cycles": self.cycles, "inputs": self.inputs, "checks": self.checks}
