"""gdb_scripts/xipscope.py in the real gdb-multiarch: the `xs` commands on the real kernel in QEMU and on the twin."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_sim_gdb import XIPBENCH

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "gdb_scripts" / "xipscope.py"
# gdb's Python (the system's) lacks xipscope's libraries: the script adds the venv these tests run in (a worktree has
# no .venv of its own).
GDB_ENV = dict(os.environ, XIPSCOPE_VENV=sys.prefix)


def gdb_batch(*commands: str, elf: Path | None = None, port: int | None = None, timeout: float = 120) -> str:
    """Run gdb-multiarch in batch mode with the script sourced; return what it printed (stdout + stderr)."""
    args = ["gdb-multiarch", "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off"]
    if elf:
        args += ["-ex", f"file {elf}"]
    args += ["-ex", f"source {SCRIPT}"]
    if port:
        args += ["-ex", f"target remote 127.0.0.1:{port}"]
    for command in commands:
        args += ["-ex", command]
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=GDB_ENV)
    return result.stdout + result.stderr


def between(text: str, begin: str, end: str) -> str:
    return text.split(begin + "\n", 1)[1].split(end + "\n", 1)[0]


@pytest.mark.kernel
def test_xs_dmesg_equals_xipscope_dmesg(dwarf_qemu):
    elf = dwarf_qemu.build.vmlinux
    cli = subprocess.run([sys.executable, "-m", "xipscope", "dmesg", "--elf", str(elf), "--target", dwarf_qemu.url],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    out = gdb_batch("echo ==begin==\\n", "xs dmesg", "echo ==end==\\n",
                    "echo ==begin-err==\\n", "xs dmesg --level 0-3", "echo ==end-err==\\n", "detach",
                    elf=elf, port=dwarf_qemu.port)
    assert between(out, "==begin==", "==end==") == cli.stdout
    errors = between(out, "==begin-err==", "==end-err==").splitlines()
    assert errors and all(line in cli.stdout.splitlines() for line in errors)
    assert len(errors) < len(cli.stdout.splitlines())


def test_xs_region_map_and_function_on_the_rp2350_map():
    out = gdb_batch("xs region 0x10000100", "xs region 0x11000040", "xs region 0x20001000", "xs region 0x30000000",
                    "print $xs_region(0x15000000)", "xs map qemu-virt", "print $xs_region(0x80000000)",
                    "xs map nosuch-map", "xs region", "help xs region", "xs dmesg --level nosuch")
    assert "0x10000100: flash +0x100 (xip-flash, through the XIP cache, no atomics" in out
    assert "0x11000040: psram +0x40 (xip-psram, through the XIP cache, no atomics" in out
    assert "0x20001000: sram +0x1000 (sram, atomics ok)" in out
    assert "0x30000000: unmapped in the rp2350 map" in out
    assert '= "psram-nocache"' in out and '= "dram"' in out
    assert "memory map qemu-virt:" in out and "0x80000000-0xffffffff  dram" in out
    assert "xs map: memory map 'nosuch-map': not a built-in map" in out
    assert "usage: xs region ADDR" in out
    assert "Which memory region an address is in" in out
    assert "xs dmesg: argument --level: unknown level 'nosuch'" in out
    assert "Traceback" not in out and "Python Exception" not in out, out


def test_xs_xip_shows_the_counters_moving_on_the_twin(sim_server):
    out = gdb_batch("break work_flash", "continue", "xs xip", "finish", "xs xip", "xs xip reset", "xs xip",
                    elf=XIPBENCH, port=sim_server)
    lines = [line for line in out.splitlines() if line.startswith(("CTR_HIT", "since the last", "XIP counters"))]
    assert len(lines) == 6, out
    moved = re.match(r"since the last xs xip: (\d+) hits of (\d+) accesses, hit rate ([\d.]+)%", lines[2])
    assert moved, out
    hits, accesses, rate = int(moved[1]), int(moved[2]), float(moved[3])
    # flash-fit: 64 passes over 512 words of a 4 KiB table that fits the cache, plus the loop's own fetches
    assert accesses >= 64 * 512 and hits <= accesses and rate > 95.0, out
    assert lines[3] == "XIP counters cleared"
    assert lines[4].startswith("CTR_HIT 0  CTR_ACC 0  hit rate n/a"), out


@pytest.mark.kernel
def test_xs_trap_equals_xipscope_trap_after_an_injected_fault(dwarf_kernel, tmp_path):
    """The real kernel in QEMU stopped at handle_exception after a store to unmapped memory (kernel/faults.py):
    `xs trap` reads the same stop through gdb and prints what `xipscope trap` prints over rsp://."""
    from faults import find_instruction, inject_fault
    from qemu import boot_kernel_halted
    from xipscope.elf import load_symbols

    vmlinux = dwarf_kernel.vmlinux
    symbols = load_symbols(vmlinux)
    insn = find_instruction(vmlinux, symbols, "store", "prepare_namespace")
    with boot_kernel_halted(dwarf_kernel, tmp_path) as kernel:
        assert inject_fault(kernel.port, symbols, insn) == 7

        def cli(*extra: str) -> str:
            result = subprocess.run([sys.executable, "-m", "xipscope", "trap", "--target", kernel.url,
                                     "--elf", str(vmlinux), *extra], capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            return result.stdout       # the CLI disconnects without `D`: QEMU stays at the trap vector

        cli_json, cli_auto_json, cli_text = cli("--map", "qemu-virt", "--json"), cli("--json"), cli()
        out = gdb_batch("echo ==json==\\n", "xs trap --json --map qemu-virt", "echo ==auto==\\n", "xs trap --json",
                        "echo ==text==\\n", "xs trap", "echo ==end==\\n", "xs trap --map nosuch",
                        elf=vmlinux, port=kernel.port)
    ours = json.loads(between(out, "==json==", "==auto=="))
    assert ours["mepc"] == insn.address and ours["cause_code"] == 7 and ours["instruction"] == insn.text
    assert ours["source"].startswith("gdb-inferior:")
    assert ours | {"source": kernel.url} == json.loads(cli_json)
    assert json.loads(between(out, "==auto==", "==text==")) | {"source": kernel.url} == json.loads(cli_auto_json)
    assert between(out, "==text==", "==end==") == cli_text
    assert "xs trap: memory map 'nosuch': not a built-in map" in out
    assert "Traceback" not in out and "Python Exception" not in out, out


def test_xs_profile_on_the_twin_samples_and_reconnects(sim_server, tmp_path):
    """`xs profile` detaches gdb, samples the twin (a model) over rsp://, and connects gdb again."""
    from xipscope.profile.store import read_meta, read_samples

    out_dir = tmp_path / "profile"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    out = gdb_batch("break work_sram", f"xs profile 300 --samples 20 --rate 50 --out {out_dir}", "echo ==after==\\n", "p/x $pc",
                    "info breakpoints", f"xs profile 1 --out {tmp_path / 'full'}", "stepi", "p/x $pc",
                    elf=XIPBENCH, port=sim_server)
    frame = read_samples(out_dir)
    meta = read_meta(out_dir)
    # a sample count, not a duration: a loaded host held the (unpaced) twin 345 ms a sample and took 3 in a second
    assert len(frame) == 20 and meta["samples"] == 20 and meta["stop_reason"] == "sample count", out
    assert meta["target"] == f"rsp://127.0.0.1:{sim_server}" and meta["map"] == "rp2350"
    table = out.split("==after==")[0]
    assert f"{len(frame)} samples, memory map rp2350" in table and "gdb is connected again" in table, table
    assert f"samples in {out_dir}; report: {out_dir / 'report' / 'report.html'}" in table
    top = re.findall(r"^\s+([\d.]+)%  (\w+)\s", table, re.M)
    from xipscope.elf import load_symbols
    functions = {s.name for s in load_symbols(XIPBENCH).symbols_in(0, 1 << 32) if s.kind == "function"}
    # xipbench's own functions (how many of its phases 20 samples span depends on the host's speed: one or two)
    assert len(top) >= 1 and {name for _, name in top} <= functions, table
    regions = re.search(r"^regions: (.*)$", table, re.M)
    assert regions and "flash (cached) " in regions[1] and "XIP hit rate" in table, table
    assert (out_dir / "report" / "report.html").is_file()
    # gdb is connected again: it reads registers, keeps its breakpoint and steps
    after = out.split("==after==")[1]
    pcs = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)", after, re.M)]
    assert len(pcs) == 2 and pcs[0] != 0 and pcs[1] != pcs[0], out
    assert re.search(r"^1\s+breakpoint\s+keep y\s+0x20000000 in work_sram", after, re.M), after
    assert "exists and is not an empty directory" in after
    assert "Traceback" not in out and "Python Exception" not in out, out


def test_xs_profile_needs_a_tcp_connection():
    out = gdb_batch("xs profile 1", elf=XIPBENCH)
    assert "xs profile: gdb must be connected over TCP (`target remote HOST:PORT`)" in out, out
    assert "Traceback" not in out


def test_xs_snapshot_on_the_twin_equals_what_rsp_reads(sim_server, tmp_path):
    """Registers (CSRs included, numbered as the server numbers them) and memory saved through gdb equal what our
    rsp:// client reads from the same halted twin (a model) afterwards."""
    from xipscope.targets.rsp import RspTarget
    from xipscope.snapshot.read import SnapshotTarget

    snap_dir = tmp_path / "snap"
    out = gdb_batch("break work_sram", "continue", f"xs snapshot {snap_dir}", elf=XIPBENCH, port=sim_server)
    assert f"snapshot in {snap_dir}: 50 registers, 2 regions" in out, out
    snap = SnapshotTarget(snap_dir)
    live = RspTarget("127.0.0.1", sim_server)     # gdb detached at its exit; the twin stays where it stopped
    try:
        assert sorted((r.name, r.number) for r in snap.register_layout) == \
            sorted((r.name, r.number) for r in live.registers)
        saved = {r.name: snap.values_by_number[r.number] for r in snap.register_layout}
        changing = {"mcycle", "minstret", "mcycleh", "minstreth"}      # the twin counts while it is attached
        assert {n: v for n, v in saved.items() if n not in changing} == \
            {r.name: live.read_register(r.name) for r in live.registers if r.name not in changing}
        assert saved["pc"] == snap.read_register("pc") and saved["mstatus"] is not None
        sram = snap.read_memory(0x20000000, 0x82000)
        assert sram == live.read_memory(0x20000000, 0x82000)
        assert snap.read_memory(0x11000000, 4096) == live.read_memory(0x11000000, 4096)
    finally:
        snap.close()
        live.close()


@pytest.mark.kernel
def test_xs_snapshot_of_the_kernel_gives_the_live_dmesg(dwarf_qemu, tmp_path):
    from xipscope.targets.rsp import RspTarget
    from xipscope.snapshot.read import SnapshotTarget

    elf = dwarf_qemu.build.vmlinux
    snap_dir = tmp_path / "snap"
    out = gdb_batch(f"xs snapshot {snap_dir} --map qemu-virt", elf=elf, port=dwarf_qemu.port, timeout=300)
    assert "xs snapshot: dram: 67108864 bytes from 0x80000000 (probed)" in out, out
    live = subprocess.run([sys.executable, "-m", "xipscope", "dmesg", "--elf", str(elf), "--target", dwarf_qemu.url],
                          capture_output=True, text=True, timeout=120)
    saved = subprocess.run([sys.executable, "-m", "xipscope", "dmesg", "--elf", str(elf), "--target",
                            f"snapshot://{snap_dir}"], capture_output=True, text=True, timeout=120)
    assert live.returncode == 0 and saved.returncode == 0, live.stderr + saved.stderr
    assert saved.stdout == live.stdout and "Kernel panic - not syncing" in saved.stdout
    manifest = json.loads((snap_dir / "manifest.json").read_text())
    assert manifest["complete"] and manifest["elf"]["path"] == str(elf.resolve())
    assert manifest["target_description"] == ["target.xml"]      # gdb's description, numbered as QEMU numbers it
    snap, rsp = SnapshotTarget(snap_dir), RspTarget("127.0.0.1", dwarf_qemu.port)
    try:
        assert sorted((r.name, r.number, r.bits) for r in snap.register_layout) == \
            sorted((r.name, r.number, r.bits) for r in rsp.registers)
        assert len(snap.register_layout) > 200 and snap.read_register("mcause") is not None
    finally:
        snap.close()
        rsp.close()
