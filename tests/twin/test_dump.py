"""`xipscope dump`: the seed bootloader's hexdump with regions and symbols, byte for byte what gdb's `x` reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.dump_vs_gdb import gdb_bytes, our_bytes, xipscope
from support.servers import twin_gdb_server
from xipscope.chip.memory_map import get_memory_map
from xipscope.dump import dump_lines, format_line, plan_ranges
from xipscope.errors import TargetError, XipscopeError
from xipscope.sim.target import SimTarget

REPO = Path(__file__).resolve().parents[2]
XIPPROBE = REPO / "firmware" / "xipprobe.elf"
EXAMPLE = REPO / "firmware" / "seedlayout.uf2"
RP2350 = get_memory_map("rp2350")

# (address, length, the region of each line) on the rp2350 map; the twin holds the example image in its flash.
RANGES = [
    (0x00000000, 0x20, ["rom", "rom"]),
    (0x10000000, 0x20, ["flash", "flash"]),                 # the firmware's _start
    (0x10010000, 0x20, ["flash", "flash"]),                 # the seed's "Rom dump": the dtb
    (0x14200000, 0x40, ["flash-nocache"] * 4),              # the seed's "Kernel dump", through the uncached alias
    (0x1C800000, 0x10, ["flash-untranslated"]),             # the cramfs superblock, uncached and untranslated
    (0x10FFFFF0, 0x20, ["flash", "psram"]),                 # a dump across the CS0/CS1 boundary
    (0x11000000, 0x20, ["psram", "psram"]),                 # the seed's "Ram dump"
    (0x20000000, 0x20, ["sram", "sram"]),
    (0x400C8000, 0x14, ["xip_ctrl", "xip_ctrl"]),
]


@pytest.fixture(scope="module")
def twin():
    t = SimTarget(f"{XIPPROBE}?flash={EXAMPLE}")
    yield t
    t.close()


def test_each_line_carries_its_region(twin):
    for address, length, regions in RANGES:
        lines = list(dump_lines(twin, address, length, RP2350))
        assert [ln.region.name for ln in lines] == regions, hex(address)
        assert b"".join(ln.data for ln in lines) == twin.read_memory(address, length)
        assert lines[0].address == address and sum(len(ln.data) for ln in lines) == length


def test_lines_are_the_seed_format_with_region_and_symbols(twin):
    from xipscope.elf.symbols import load_symbols

    dtb = next(dump_lines(twin, 0x10010000, 16, RP2350))
    assert format_line(dtb) == ("10010000   d0 0d fe ed 00 00 00 b1  00 00 00 38 00 00 00 a0  "
                                "|...........8....|  flash [XIP cached]")
    kernel = list(dump_lines(twin, 0x14200030, 16, RP2350))[0]
    assert format_line(kernel).endswith("|RISCV...RSC.....|  flash-nocache [XIP uncached]")
    symbols = load_symbols(XIPPROBE)
    start = symbols.address_of("_start")
    first, second = dump_lines(twin, start, 32, RP2350, symbols)
    assert first.symbol == "_start" and second.symbol == "_start+0x10"
    ctr = list(dump_lines(twin, 0x400C8000, 4, RP2350))[0]
    assert format_line(ctr).startswith("400c8000   83 00 00 00 ") and ctr.region.kind == "peripheral"


def test_unmapped_range_and_unmodelled_region_are_clear_errors(twin):
    with pytest.raises(XipscopeError, match=r"0x20082000-0x20082010 is in no region of the rp2350 map "
                                            r"\(nearest: sram 0x20000000-0x20082000"):
        plan_ranges(RP2350, 0x20081FF0, 0x20)
    with pytest.raises(TargetError, match=r"at 0x40078000 in uart1 \(peripheral\) failed"):   # not modelled
        list(dump_lines(twin, 0x40078000, 0x20, RP2350))
    out = xipscope("dump", "--target", f"sim://{XIPPROBE}", "0x30000000", "16")
    assert out.returncode == 1 and "in no region" in out.stderr and "Traceback" not in out.stderr


def test_reads_in_large_blocks(twin):
    calls = []

    class Counting:
        """The twin, counting read_memory calls (a pass-through, not a fake)."""

        def read_memory(self, address, size):
            calls.append(size)
            return twin.read_memory(address, size)

    lines = list(dump_lines(Counting(), 0x10000000, 0x30000, RP2350))
    assert calls == [0x10000] * 3 and len(lines) == 0x3000


def test_dump_file_source_and_raw_output(tmp_path):
    image = tmp_path / "ram.bin"
    image.write_bytes(bytes(range(256)) * 2)
    raw = tmp_path / "out.bin"
    out = xipscope("dump", "--dump", f"{image}@0x20000000", "0x20000010", "0x20", "--raw", str(raw))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == ("20000010   10 11 12 13 14 15 16 17  18 19 1a 1b 1c 1d 1e 1f  "
                                          "|................|  sram [SRAM]")
    assert out.stdout.splitlines()[-1] == "20000030"
    assert raw.read_bytes() == bytes(range(0x10, 0x30))


# --- byte for byte against gdb-multiarch ---------------------------------------------------------------------------


@pytest.fixture()
def twin_server():
    with twin_gdb_server(XIPPROBE, "--flash", EXAMPLE) as port:
        yield port


def test_dump_agrees_with_gdb_on_the_twin(twin_server):
    for address, length, regions in RANGES:
        ours, lines = our_bytes(f"rsp://127.0.0.1:{twin_server}", address, length, "--elf", str(XIPPROBE))
        assert ours == gdb_bytes(twin_server, address, length), hex(address)
        assert [re.search(r"\|  (\S+) \[", ln).group(1) for ln in lines] == regions
    assert any(b != 0 for b in ours)
