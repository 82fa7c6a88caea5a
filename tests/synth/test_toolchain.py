"""The one tool runner (synth/toolchain.py): locating the YoWASP tools, running them, Yosys runs.

The first Yosys run on a machine compiles the WebAssembly module (about a minute, once).
"""

import os
import sys
from pathlib import Path

import pytest

from palhdl.boards.devices import ICE40_UP5K
from palhdl.synth.toolchain import (
    NEXTPNR,
    TOOLS,
    ToolError,
    YosysError,
    find_tool,
    log_tail,
    run_nextpnr,
    run_tool,
    run_yosys,
    tool_command,
    use_yowasp_env,
    yosys_version,
    yowasp_env,
)


def test_yowasp_env_points_at_executables():
    env = yowasp_env()
    for variable in ("YOSYS", "NEXTPNR_ICE40", "ICEPACK", "NEXTPNR_ECP5", "ECPPACK"):
        assert Path(env[variable]).name == TOOLS[variable]
        assert os.access(env[variable], os.X_OK)
    assert set(env) <= set(TOOLS)
    assert find_tool("palhdl-no-such-tool") is None


def test_use_yowasp_env_sets_and_restores(monkeypatch):
    monkeypatch.setenv("YOSYS", "sentinel")
    monkeypatch.delenv("ICEPACK", raising=False)
    with use_yowasp_env() as env:
        assert os.environ["YOSYS"] == env["YOSYS"] != "sentinel"
        assert os.environ["ICEPACK"] == env["ICEPACK"]
    assert os.environ["YOSYS"] == "sentinel"
    assert "ICEPACK" not in os.environ


def test_tool_command_prefers_the_environment_then_yowasp(monkeypatch):
    monkeypatch.setenv("ICEPACK", "/opt/icepack")
    assert tool_command("ICEPACK") == ["/opt/icepack"]
    monkeypatch.delenv("ICEPACK")
    assert tool_command("ICEPACK") == [find_tool("yowasp-icepack")]
    assert set(NEXTPNR.values()) <= set(TOOLS)


def test_tool_command_reports_a_missing_tool(monkeypatch):
    monkeypatch.delenv("NEXTPNR_ECP5", raising=False)
    monkeypatch.setitem(TOOLS, "NEXTPNR_ECP5", "palhdl-no-such-nextpnr")
    with pytest.raises(
        ToolError, match=r"palhdl-no-such-nextpnr not found \(needed for NEXTPNR_ECP5\)"
    ):
        tool_command("NEXTPNR_ECP5")


def test_run_tool_streams_lines_and_keeps_the_log(tmp_path):
    seen = []
    command = [sys.executable, "-c", "import sys; print('one'); print('two', file=sys.stderr)"]
    status, log = run_tool(command, cwd=tmp_path, log_name="tool.log", on_line=seen.append)
    assert status == 0
    assert sorted(seen) == ["one\n", "two\n"]
    assert (tmp_path / "tool.log").read_text() == log
    status, _ = run_tool([sys.executable, "-c", "raise SystemExit(3)"], cwd=tmp_path)
    assert status == 3


def test_log_tail_keeps_the_last_lines():
    log = "\n".join(f"line {n}" for n in range(100))
    assert log_tail(log).splitlines() == [f"line {n}" for n in range(70, 100)]


def test_yosys_failure_raises_with_log_tail():
    with pytest.raises(YosysError, match=r"(?s)exit status 1.*missing\.v"):
        run_yosys("read_verilog missing.v", {})
    with pytest.raises(YosysError, match=r"(?s)exit status 1.*syntax error"):
        run_yosys("read_verilog bad.v", {"bad.v": "module top(; endmodule\n"})


def test_missing_output_raises():
    with pytest.raises(YosysError, match=r"output files not written: absent\.txt"):
        run_yosys("", {}, outputs=["absent.txt"])


def test_run_yosys_returns_outputs_and_log():
    result = run_yosys(
        "read_verilog t.v; write_verilog -noattr out.v",
        {"t.v": "module top(input a, output y); assign y = ~a; endmodule\n"},
        outputs=["out.v"],
    )
    assert "module top" in result["out.v"]
    assert "Executing Verilog backend" in result["log"]


def test_run_yosys_in_a_directory_keeps_script_log_and_outputs(tmp_path):
    run_yosys(
        "read_verilog t.v\nwrite_json t.json\n",
        {"t.v": "module top(input a, output y); assign y = a; endmodule\n"},
        outputs=["t.json"],
        directory=tmp_path,
        script_name="synth.ys",
        log_name="synth.log",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth.log", "synth.ys", "t.json", "t.v"]
    with pytest.raises(YosysError, match=r"(?s)end of synth\.log:.*missing\.v"):
        run_yosys("read_verilog missing.v", {}, directory=tmp_path, log_name="synth.log")


def test_yosys_version():
    assert yosys_version().startswith("Yosys 0.")


def test_run_nextpnr_passes_the_device_options_first(monkeypatch, tmp_path):
    fake = tmp_path / "fake-nextpnr"
    fake.write_text(f"#!{sys.executable}\nimport sys\nprint(' '.join(sys.argv[1:]))\n")
    fake.chmod(0o755)
    monkeypatch.setenv("NEXTPNR_ICE40", str(fake))
    status, log = run_nextpnr(ICE40_UP5K, ["--json", "top.json"], cwd=tmp_path, log_name="pnr.log")
    assert status == 0
    assert log == "--up5k --package sg48 --json top.json\n"
    assert (tmp_path / "pnr.log").read_text() == log


def test_run_nextpnr_reports_failure_in_the_log(tmp_path):
    status, log = run_nextpnr(ICE40_UP5K, ["--json", "absent.json"], cwd=tmp_path)
    assert status != 0
    assert "absent.json" in log
