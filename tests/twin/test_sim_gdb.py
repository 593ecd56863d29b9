"""`xipscope sim --gdb-port` serves the twin to real gdb-multiarch and to our rsp:// client."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from xipscope.elf.program import ElfImage

REPO = Path(__file__).resolve().parents[2]
XIPBENCH = REPO / "firmware" / "xipbench.elf"


def gdb(port: int, *commands: str, timeout: float = 60) -> str:
    exe = shutil.which("gdb-multiarch")
    assert exe, "gdb-multiarch is needed: apt-get install gdb-multiarch"
    args = [exe, "-nx", "-batch", "-ex", "set confirm off", "-ex", "set pagination off",
            "-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        args += ["-ex", c]
    args.append(str(XIPBENCH))
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return out.stdout + out.stderr


def test_gdb_reads_registers_csrs_and_stops_at_a_breakpoint(sim_server):
    image = ElfImage(XIPBENCH)
    out = gdb(sim_server,
              "p/x $pc", "p/x $mcountinhibit", "p/x $mvendorid", "p/x $sp",
              "break work_sram", "continue",
              "p/x $pc", "p/x $a1", "info symbol $pc", "x/wx 0x400c8000",
              "monitor help", "delete", "detach")
    values = re.findall(r"^\$\d+ = (0x[0-9a-f]+)", out, re.M)
    assert values[:4] == [hex(image.entry), "0x5", "0x493", "0x0"], out
    assert "Breakpoint 1, " in out and "work_sram" in out, out
    assert int(values[4], 16) == image.symbol("work_sram"), out
    assert int(values[5], 16) == 1024, out            # words argument of the sram-fit phase
    assert "0x400c8000:\t0x00000083" in out, out       # XIP_CTRL CTRL at its reset value
    assert "RP2350 twin (a model)" in out, out


def test_gdb_single_steps(sim_server):
    out = gdb(sim_server, "stepi", "p/x $pc", "stepi", "p/x $pc")
    pcs = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)", out, re.M)]
    assert len(pcs) == 2 and pcs[0] != pcs[1] and all(0x10000000 <= p < 0x10001000 for p in pcs), out


def test_rsp_client_reads_a_running_twin(sim_server):
    from xipscope.targets import open_target

    t = open_target(f"rsp://127.0.0.1:{sim_server}")
    try:
        regs = t.read_registers()
        assert regs["pc"] == ElfImage(XIPBENCH).entry
        assert t.read_register("mcountinhibit") == 5
        assert t.read_memory(0x400C8000, 4) == bytes.fromhex("83000000")
        t.resume()
        time.sleep(0.3)
        t.halt()
        assert t.read_register("mcountinhibit") == 0   # firmware enabled the counters
        assert t.read_memory(0x10000000, 4) == XIPBENCH.read_bytes()[0x1000:0x1004]
    finally:
        t.close()


def test_rsp_client_pipelines_large_reads_once_acks_are_off(sim_server):
    from xipscope.errors import TargetError
    from xipscope.targets.rsp import RspTarget

    flash = next(seg for seg in ElfImage(XIPBENCH).segments if seg.paddr == 0x10000000)
    t = RspTarget("127.0.0.1", sim_server)
    try:
        assert not t.conn.ack_mode                       # the twin's server offers QStartNoAckMode
        assert len(flash.data) > 3 * t.max_read          # so the read below is several `m` packets in flight
        assert t.read_memory(flash.paddr, len(flash.data)) == flash.data
        with pytest.raises(TargetError, match="cannot read memory|memory ends"):
            t.read_memory(0x30000000, 2 * t.max_read)    # unmapped: the replies still in flight are drained
        assert t.read_memory(flash.paddr, 16) == flash.data[:16]
    finally:
        t.close()


def test_gdb_continues_and_steps_after_the_twin_stops_by_itself(sim_server):
    """A trap loop (the handler faults at its own first instruction) stops the twin with SIGSEGV; gdb then resumes
    with `C0b` (continue, passing the signal) or `S0b`. The server drops the signal, as a bare core has none to
    deliver, and resumes: the loop stops it again at once, and gdb stays in step with it."""
    out = gdb(sim_server, "set $mtvec = 0x30000000", "set $pc = 0x30000000", "continue", "p/x $mcause",
              "continue", "p/x $pc", "stepi", "p/x $pc", "set $pc = _start", "set $mtvec = 0x20000000", "stepi",
              "p/x $pc")
    assert out.count("Program received signal SIGSEGV") == 2, out
    assert "Can't send signals" not in out and "while the target is running" not in out, out
    values = re.findall(r"^\$\d+ = (0x[0-9a-f]+)", out, re.M)
    assert values[:3] == ["0x1", "0x30000000", "0x30000000"], out       # mcause 1: instruction access fault
    assert int(values[3], 16) == ElfImage(XIPBENCH).entry + 4, out       # stepped on from a sane pc


def test_rsp_resume_with_signal_packets(sim_server):
    from xipscope.targets.rsp import RspTarget

    entry = ElfImage(XIPBENCH).entry
    t = RspTarget("127.0.0.1", sim_server)
    try:
        t.write_register("mtvec", 0x30000000)
        assert t.conn.request(b"S0b;%x" % 0x30000000, "a stop reply") == b"T05thread:1;"
        assert t.read_register("pc") == 0x30000000 and t.read_register("mcause") == 1
        t.conn.send(b"C0b;%x" % 0x30000000)
        assert t.conn.receive("a stop reply", timeout=10) == b"T0bthread:1;"    # SIGSEGV: the trap loop again
        t.write_register("mtvec", 0x20000000)
        t.conn.send(b"C0b;%x" % entry)        # resumes at the address given
        time.sleep(0.2)
        t.conn.interrupt()
        assert t.conn.receive("a stop reply", timeout=10) == b"T02thread:1;"
        assert t.read_register("pc") != 0x30000000
    finally:
        t.close()


def test_a_profile_through_the_gdb_server_holds_the_models_truth(sim_server, tmp_path):
    """The twin's GDB server gives its exact counts (qXfer:xipscope-truth:read, every function, read halted in
    parts): rsp:// sees a model, the profiler paces it and writes truth.json as in-process, and the samples'
    shares are within the issue's 0.03 of that truth (xipbench to its end, about 4,200 samples)."""
    import json

    from xipscope.chip.memory_map import get_memory_map
    from xipscope.profile.analysis import load_profile, versus_truth
    from xipscope.profile.sampler import sample_profile
    from xipscope.sim.hazard3 import Machine
    from xipscope.sim.truth_tables import stats_json
    from xipscope.targets.rsp import RspTarget

    out = tmp_path / "run"
    target = RspTarget("127.0.0.1", sim_server)
    try:
        assert {"model", "pacing"} <= target.capabilities
        at_reset = target.ground_truth()
        run = sample_profile(target, out, memory_map=get_memory_map("rp2350"), elf=XIPBENCH, rate_hz=1000,
                             until="idle", samples=100_000, seed=1)
    finally:
        target.close()
    assert at_reset == json.loads(json.dumps(stats_json(Machine(XIPBENCH))))    # the twin at reset, exactly
    assert run.meta["model"] is True and run.meta["sim_clock"]["clock_hz"] == 1e6
    truth = json.loads((out / "truth.json").read_text())
    assert truth["before"]["cycles"] == 0 and truth["after"]["cycles"] > 4_000_000
    assert "xipbench: done" in truth["after"]["uart"]
    profile = load_profile(out, XIPBENCH)
    versus = versus_truth(profile.samples, truth, profile.memory_map)
    assert versus["tv_functions"] < 0.03 and versus["tv_regions"] < 0.03, versus
