"""gdb:// drives the real gdb-multiarch over GDB/MI against the real kernel in QEMU and answers like rsp:// does."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from xipscope.errors import TargetError
from xipscope.target import open_target

pytestmark = pytest.mark.kernel


def xipscope(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xipscope", *args], capture_output=True, text=True, timeout=120)


def gdb_url(qemu) -> str:
    return qemu.url.replace("rsp://", "gdb://")


def test_dmesg_through_gdb_equals_rsp(dwarf_qemu):
    elf = str(dwarf_qemu.build.vmlinux)
    via_rsp = xipscope("dmesg", "--elf", elf, "--target", dwarf_qemu.url)
    via_gdb = xipscope("dmesg", "--elf", elf, "--target", gdb_url(dwarf_qemu))
    assert via_gdb.returncode == 0, via_gdb.stderr
    assert via_gdb.stdout == via_rsp.stdout
    assert "Kernel panic - not syncing" in via_gdb.stdout


def test_registers_memory_and_run_control_match_rsp(dwarf_qemu):
    rsp = open_target(dwarf_qemu.url)
    try:
        regs = rsp.read_registers()
        csrs = {name: rsp.read_register(name) for name in ("mstatus", "mepc", "mcause")}
        text = rsp.read_memory(regs["pc"] & ~3, 64)
    finally:
        rsp.close()      # detach: QEMU runs on, and one client at a time may attach

    gdb = open_target(gdb_url(dwarf_qemu))
    try:
        ours = gdb.read_registers()
        assert set(ours) >= {"ra", "sp", "fp", "a0", "t6", "pc"}
        # The panicked kernel spins in its delay loop: sp and the code around pc are stable across attaches.
        assert ours["sp"] == regs["sp"]
        assert gdb.read_memory(regs["pc"] & ~3, 64) == text
        assert gdb.read_register("mstatus") == csrs["mstatus"]
        assert gdb.read_register("s0") == ours["fp"]
        gdb.resume()
        assert gdb.state() == "running"
        with pytest.raises(TargetError, match="halt it first"):
            gdb.read_memory(regs["pc"], 4)
        time.sleep(0.05)
        gdb.halt()
        assert gdb.state() == "halted"
        assert gdb.read_register("pc") == gdb.read_registers()["pc"]
        with pytest.raises(TargetError, match="cannot read memory at 0x4"):
            gdb.read_memory(0x4, 16)
        with pytest.raises(TargetError, match="no register named 'nosuch'"):
            gdb.read_register("nosuch")
    finally:
        gdb.close()


def test_unreachable_server_is_a_clear_error():
    from qemu import free_port
    with pytest.raises(TargetError, match="gdb refused '-target-select remote"):
        open_target(f"gdb://127.0.0.1:{free_port()}")
