"""gdb:// drives the real gdb-multiarch over GDB/MI against the real kernel in QEMU and answers like rsp:// does."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from xipscope.errors import TargetError
from xipscope.targets import open_target

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


def test_profile_through_gdb_agrees_with_rsp(icount_qemu, tmp_path):
    """The panicked kernel spins in panic()'s mdelay loop: 300 samples at 100/s through each transport both put
    the same function on top and symbolize every sample.

    On a footing that holds on a loaded host: a sample count, not a duration (a gdb:// sample holds the core for
    several MI round trips, 2.5-3.1 ms idle and over 10 ms loaded, so a loaded host takes fewer samples a second),
    and guest time tied to guest instructions (-icount, see icount_qemu), so the share of time the guest spends in
    its timer tick does not grow with the host's load or with how long each transport halts it.
    Tolerance on the top function's share: 0.15 (sampling noise alone is about 0.03: binomial, p ~ 0.9, 300 samples
    each, the difference of two; measured under load: __delay 0.99-1.0 through both). Which transport halts longer
    per sample no longer matters, and is not asserted: on an idle host gdb:// does (2.5-3.1 ms against 0.4-0.5 ms),
    on a loaded one scheduling dominates both (seen: rsp:// 28 ms, gdb:// 24 ms)."""
    import pandas as pd

    from xipscope.chip.memory_map import get_memory_map
    from xipscope.elf import load_symbols
    from xipscope.profile.sampler import sample_profile
    from xipscope.profile.store import read_samples

    symbols = load_symbols(icount_qemu.build.vmlinux)
    results = {}
    for url in (icount_qemu.url, gdb_url(icount_qemu)):
        target = open_target(url)
        out = tmp_path / url.split(":")[0]
        try:
            run = sample_profile(target, out, memory_map=get_memory_map("qemu-virt"), samples=300, rate_hz=100,
                                 symbols=symbols, elf=icount_qemu.build.vmlinux)
        finally:
            target.close()
        names = pd.Series(symbols.symbolize(read_samples(out)["pc"].to_numpy()).function)
        shares = names.value_counts(normalize=True)
        results[url.split(":")[0]] = (len(names), names.notna().mean(), shares.index[0], shares.iloc[0],
                                      run.meta["halted_ns"]["median"])
        print(url.split(":")[0], results[url.split(":")[0]], shares.head(3).to_dict())
    (rsp_n, rsp_known, rsp_top, rsp_share, _), (gdb_n, gdb_known, gdb_top, gdb_share, _) = results["rsp"], results["gdb"]
    assert rsp_n == gdb_n == 300
    assert rsp_known == gdb_known == 1.0          # every pc is in a kernel function
    assert rsp_top == gdb_top == "__delay"
    assert rsp_share > 0.6 and gdb_share > 0.6 and abs(rsp_share - gdb_share) < 0.15
