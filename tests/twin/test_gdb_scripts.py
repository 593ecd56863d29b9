"""gdb_scripts/xipscope.py in the real gdb-multiarch: the `xs` commands on the twin (on the real kernel in QEMU:
kernel/test_gdb_scripts_qemu.py)."""

from __future__ import annotations

import re

from support.gdb_batch import gdb_batch
from test_sim_gdb import XIPBENCH


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
