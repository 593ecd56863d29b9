"""`sim://FIRMWARE.elf` as an in-process Target: the twin (a model) behind the one Target protocol."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from xipscope.errors import TargetError
from xipscope.targets import MEMORY, REGISTERS, RUN_CONTROL, Target, open_target

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def test_open_sim_url_reads_memory_and_registers():
    t = open_target(f"sim://{FIRMWARE / 'xipbench.elf'}")
    try:
        assert isinstance(t, Target)
        assert {MEMORY, REGISTERS, RUN_CONTROL} <= t.capabilities
        assert t.state() == "halted"
        regs = t.read_registers()
        assert regs["pc"] == t.machine.elf.entry and regs["mcountinhibit"] == 5
        assert t.read_register("mtval") == 0 and t.read_register("zero") == 0
        assert t.read_memory(0x400C8000, 4) == bytes.fromhex("83000000")
        with pytest.raises(TargetError, match="nothing at 0x30000000"):
            t.read_memory(0x30000000, 4)
        with pytest.raises(TargetError, match="no register"):
            t.read_register("f0")
    finally:
        t.close()


def test_resume_halt_and_reads_while_running():
    t = open_target(f"sim://{FIRMWARE / 'xipbench.elf'}")
    try:
        t.resume()
        assert t.state() == "running"
        seen = set()
        for _ in range(20):
            seen.add(t.read_register("pc"))   # safe while running: served between slices
            t.read_memory(0x400C800C, 8)
            time.sleep(0.01)
        t.halt()
        assert t.state() == "halted"
        assert len(seen) > 1
        n = t.machine.instructions
        assert t.read_register("minstret") <= n
        time.sleep(0.05)
        assert t.machine.instructions == n        # halted means halted
        t.resume()
        deadline = time.time() + 30
        while "xipbench: done" not in t.uart_output and time.time() < deadline:
            time.sleep(0.05)
        t.halt()
        assert "xipbench: done" in t.uart_output
    finally:
        t.close()


def test_synchronous_run_is_reproducible():
    a = open_target(f"sim://{FIRMWARE / 'amofault.elf'}")
    b = open_target(f"sim://{FIRMWARE / 'amofault.elf'}")
    try:
        ra, rb = a.run(100_000), b.run(100_000)
        assert ra == rb and ra.reason == "idle"
        assert a.read_registers() == b.read_registers()
        assert a.read_register("mcause") == 7
    finally:
        a.close()
        b.close()


def test_missing_firmware_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match="expected a firmware ELF, which cannot be read .*xipscope sim --help"):
        open_target(f"sim://{tmp_path / 'nope.elf'}")
