"""gdb_scripts/xipscope.py in the real gdb-multiarch: the `xs` commands on the real kernel in QEMU and on the twin."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_sim_gdb import XIPBENCH, sim_server  # noqa: F401  (the twin's gdbserver fixture)

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "gdb_scripts" / "xipscope.py"


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
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
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


def test_xs_xip_shows_the_counters_moving_on_the_twin(sim_server):  # noqa: F811
    out = gdb_batch("break work_flash", "continue", "xs xip", "finish", "xs xip", "xs xip reset", "xs xip",
                    elf=XIPBENCH, port=sim_server)
    lines = [line for line in out.splitlines() if line.startswith(("CTR_HIT", "since the last", "XIP counters"))]
    assert len(lines) == 6, out
    moved = re.match(r"since the last xs xip: (\d+) hits of (\d+) accesses, hit rate ([\d.]+)%", lines[2])
    assert moved, out
    hits, accesses, rate = int(moved[1]), int(moved[2]), float(moved[3])
    # flash-fit: 64 passes over 512 words of a 4 KiB table that fits the cache, plus the loop's own fetches
    assert accesses >= 64 * 512 and rate > 95.0, out
    assert lines[3] == "XIP counters cleared"
    assert lines[4].startswith("CTR_HIT 0  CTR_ACC 0  hit rate n/a"), out
