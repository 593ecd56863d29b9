"""xipscope profile against the real rv32 Linux kernel in QEMU: symbolized samples, stacks as gdb sees them, a target
that dies mid-run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qemu import boot_kernel
from xipscope.chip.memory_map import get_memory_map
from xipscope.elf.symbols import load_symbols
from xipscope.profile.sampler import code_predicate, sample_profile, unwind_stack
from xipscope.profile.store import read_meta, read_samples
from xipscope.targets.rsp import RspTarget

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def symbols(dwarf_kernel):
    return load_symbols(dwarf_kernel.vmlinux)


def test_samples_symbolize_to_kernel_functions(dwarf_qemu, symbols, tmp_path):
    target = RspTarget("127.0.0.1", dwarf_qemu.port)
    try:
        # At 1,000/s the kernel runs between samples; as fast as rsp:// goes, its pending timer ticks can win.
        run = sample_profile(target, tmp_path / "p", memory_map=get_memory_map("qemu-virt"), samples=3000,
                             rate_hz=1000, symbols=symbols, elf=dwarf_qemu.build.vmlinux)
    finally:
        target.close()
    df = read_samples(tmp_path / "p")
    assert len(df) == 3000 == run.meta["samples"]
    assert df["xip_hit"].isna().all() and df["xip_acc"].isna().all()    # qemu-virt has no XIP_CTRL
    assert (np.diff(df["t_ns"]) > 0).all() and (df["halted_ns"] > 0).all()
    names = symbols.symbolize(df["pc"].to_numpy()).function
    assert np.mean([n is not None for n in names]) > 0.99
    shares = {n: np.mean(names == n) for n in set(names)}
    # After the panic, panic() spins in mdelay(): its delay loop is where the time goes.
    top = max(shares, key=shares.get)
    assert top == "__delay" and shares[top] > 0.5, sorted(shares.items(), key=lambda kv: -kv[1])[:5]
    meta = read_meta(tmp_path / "p")
    assert meta["transport"].startswith("rsp pipelined")     # QEMU answers a g pipelined after the interrupt
    assert meta["ended_early"] is None and meta["error"] is None
    assert meta["elf_sha256"] and meta["counters"] is None and meta["halted_ns"]["median"] > 0
    # Blocking on replies and polling for them were both measured on the first samples, and one was kept.
    assert meta["reply_wait"]["replies"] in ("polled", "blocked on")
    assert meta["reply_wait"]["us_per_sample"].keys() == {"block", "poll"}


def test_back_to_back_samples_leave_the_connection_in_step(dwarf_qemu, symbols, tmp_path):
    """With no rate, each sample's burst goes out as the last one's replies arrive, before they are decoded (rsp://
    back to back); the run ends by taking the replies of the burst sent ahead, so the connection answers in step
    after it: a halt gets a stop reply, and a memory read gets the bytes the ELF holds there."""
    from xipscope.elf.code import read_elf_bytes
    target = RspTarget("127.0.0.1", dwarf_qemu.port)
    try:
        run = sample_profile(target, tmp_path / "p", memory_map=get_memory_map("qemu-virt"), samples=2000,
                             symbols=symbols, elf=dwarf_qemu.build.vmlinux)
        assert "back to back" in run.meta["transport"] and "back to back" in run.meta["halted_ns_meaning"]
        assert target.state() == "running"
        stop = target.halt()
        assert stop.signal in (2, 5), stop      # SIGINT (QEMU's answer to an interrupt) or SIGTRAP
        delay = symbols.address_of("__delay")
        assert target.read_memory(delay, 16) == read_elf_bytes(dwarf_qemu.build.vmlinux, delay, 16)
        assert symbols.symbolize([target.read_register("pc")]).function[0] is not None
    finally:
        target.close()
    df = read_samples(tmp_path / "p")
    assert len(df) == 2000 and (np.diff(df["t_ns"]) > 0).all() and (df["halted_ns"] > 0).all()


def _after_prologue(vmlinux: Path, symbols, function: str) -> int:
    """The address after `function` sets its frame pointer (`addi s0,sp,N`): its frame record is complete there."""
    start = symbols.address_of(function)
    size = max(s.size for s in symbols.symbols_named(function))
    out = subprocess.run(["riscv64-linux-gnu-objdump", "-d", "-M", "no-aliases,numeric", f"--start-address={start:#x}",
                          f"--stop-address={start + size:#x}", str(vmlinux)], capture_output=True, text=True).stdout
    lines = re.findall(r"^\s*([0-9a-f]+):\s+[0-9a-f]+\s+(\S+)\s+(\S*)", out, re.M)
    for (_address, mnemonic, operands), (next_address, _, _) in zip(lines, lines[1:]):
        if mnemonic in ("addi", "c.addi4spn") and operands.startswith("x8,x2,"):
            return int(next_address, 16)
    raise AssertionError(f"no frame pointer set-up in {function}:\n{out}")


def test_sampled_stack_matches_gdb_backtrace(dwarf_kernel, symbols, tmp_path):
    assert shutil.which("gdb-multiarch"), "gdb-multiarch is needed: apt-get install gdb-multiarch"
    site = _after_prologue(dwarf_kernel.vmlinux, symbols, "__delay")
    with boot_kernel(dwarf_kernel, tmp_path) as qemu:
        # Ours: stop at the site, then walk the stack exactly as a --stacks sample does.
        target = RspTarget("127.0.0.1", qemu.port)
        try:
            target.set_breakpoint(site, hardware=False, length=2)
            target.continue_until_stop(timeout=10)
            regs = target.read_registers()
            assert regs["pc"] == site
            stack = unwind_stack(target, regs["pc"], regs["sp"], regs["fp"], regs["ra"],
                                 code_predicate(symbols, get_memory_map("qemu-virt")))
            target.remove_breakpoint(site, hardware=False, length=2)
        finally:
            target.close()
        # gdb's: the same breakpoint, its own (DWARF CFI) unwinder.
        out = subprocess.run(["gdb-multiarch", "-nx", "-batch", "-ex", "set pagination off",
                              "-ex", f"target remote 127.0.0.1:{qemu.port}", "-ex", f"break *{site:#x}",
                              "-ex", "continue", "-ex", "bt", "-ex", "delete", "-ex", "detach",
                              str(dwarf_kernel.vmlinux)], capture_output=True, text=True, timeout=120).stdout
    frames = [(int(a, 16), name) for a, name in re.findall(r"^#\d+\s+(0x[0-9a-f]+) in (\S+) \(", out, re.M)]
    assert frames and frames[0] == (site, "__delay"), out
    ours = [regs["pc"]] + stack
    assert len(ours) >= 8, ours      # __delay, udelay, panic, mount_block_root, ..., kernel_init, the thread entry
    # The same return addresses, frame by frame, as gdb's DWARF unwinder finds them.
    assert ours == [address for address, _ in frames], (ours, frames)
    names = symbols.symbolize([ours[0]] + [ra - 1 for ra in ours[1:]]).function   # a caller is named by its call
    assert list(names[:4]) == ["__delay", "udelay", "panic", "mount_block_root"]


def test_target_killed_mid_run_keeps_every_sample(dwarf_kernel, symbols, tmp_path):
    out_dir = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit"))
    with boot_kernel(dwarf_kernel, tmp_path) as qemu:
        started = time.monotonic()
        cli = subprocess.Popen([sys.executable, "-m", "xipscope", "profile", "--target", qemu.url,
                                "--elf", str(dwarf_kernel.vmlinux), "--map", "qemu-virt", "--duration", "60",
                                "--out", str(out_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        try:
            deadline = time.monotonic() + 60
            while not list((out_dir / "samples").glob("part-*.parquet")):   # the first part: sampling is on
                assert cli.poll() is None and time.monotonic() < deadline, cli.stderr.read() if cli.poll() else ""
                time.sleep(0.05)
            time.sleep(0.5)
            qemu.process.kill()      # the target vanishes mid-run, as a board unplugged would
            killed_after = time.monotonic() - started
            _stdout, stderr = cli.communicate(timeout=60)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
    assert cli.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert re.search(r"xipscope profile: error: rsp://127\.0\.0\.1:\d+: .*(closed the connection|connection failed)",
                     stderr), stderr
    assert str(out_dir) in stderr and "samples taken before that" in stderr
    meta = read_meta(out_dir)
    df = read_samples(out_dir)
    assert meta["ended_early"] == "target error"
    assert "closed the connection" in meta["error"] or "connection failed" in meta["error"]
    assert len(df) == meta["samples"] > 100            # every sample taken is on disk, none lost in a buffer
    assert (np.diff(df["t_ns"]) > 0).all()
    # Complete up to the kill: the kill came half a second after the first part was flushed, and the samples taken
    # between them were flushed when the error ended the run (in a later part, later than all of the first's).
    parts = sorted((out_dir / "samples").glob("part-*.parquet"))
    assert len(parts) >= 2
    first_part_end = pd.read_parquet(parts[0])["t_ns"].max()
    assert df["t_ns"].iloc[-1] > first_part_end
    assert meta["duration_s"] < killed_after
