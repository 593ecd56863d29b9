"""`xipscope image`: block loops and partition tables decoded from files, UF2s and the twin's flash over a debugger."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.servers import twin_gdb_server
from xipscope.image.build import SEED_PARTITIONS, build_seed_image
from xipscope.image.flash import FileFlash
from xipscope.image.inspect import inspect_flash
from xipscope.image.picobin import (MARKER_END, MARKER_START, PartitionSpec, encode_block, encode_block_loop,
                                    entry_point_item, hash_def_item, image_def_item, load_map_item,
                                    partition_table_item, vector_table_item, version_item)
from xipscope.elf.program import ElfImage
from xipscope.image.uf2 import build_uf2, parse_uf2

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
XIPPROBE = FIRMWARE / "xipprobe.elf"
EXAMPLE = FIRMWARE / "seedlayout.uf2"

# rp2350-flash.md, "The seed's layout": names, ids, flash ranges, XIP addresses and the derived table words.
SEED = [("dtb", 0, 0x010000, 0x200000, 0x10010000), ("LINUX", 1, 0x200000, 0x800000, 0x10200000),
        ("rootfs", 2, 0x800000, 0xC00000, 0x10800000)]
SEED_HEADER_WORD = 0x0300130A
SEED_LOCATION_WORDS = [0xFC3FE010, 0xFCFFE200, 0xFD7FE800]
SEED_UNPARTITIONED_WORD = 0xFC008000
SEED_FLAGS_WORD = 0xFC041001


def xipscope(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "xipscope", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def decode(chunks):
    return inspect_flash(FileFlash(chunks, "test"))


def assert_seed_table(report):
    t = report.table
    assert t is not None and not t.singleton and t.count == 3
    assert t.header_word == SEED_HEADER_WORD
    assert t.unpartitioned_word == SEED_UNPARTITIONED_WORD and t.unpartitioned_families == ["absolute"]
    got = [(p.name, p.id, p.start, p.end, 0x10000000 + p.start) for p in t.partitions]
    assert got == SEED
    assert [p.location_word for p in t.partitions] == SEED_LOCATION_WORDS
    assert [p.flags_word for p in t.partitions] == [SEED_FLAGS_WORD] * 3
    assert all(p.families == ["rp2350-riscv"] and p.permissions == 0x3F and p.link_type == "none"
               for p in t.partitions)


def test_seed_layout_decodes_to_the_documented_ranges_names_and_words():
    report = decode(build_seed_image(XIPPROBE))
    loop = report.loop
    assert loop.closed and [b.kind for b in loop.blocks] == ["IMAGE_DEF", "PARTITION_TABLE"]
    assert loop.blocks[0].next_offset == loop.blocks[1].offset and loop.blocks[1].next_offset == loop.blocks[0].offset
    image_def = loop.image_def.fields
    assert (image_def["image_type"], image_def["cpu"], image_def["chip"], image_def["security"],
            image_def["tbyb"]) == ("exe", "riscv", "rp2350", "secure", False)
    entry = loop.blocks[0].item(0x44).fields
    assert entry == {"pc": ElfImage(XIPPROBE).entry, "sp": 0x20082000}
    assert loop.blocks[1].item(0x48).fields == {"major": 1, "minor": 0}
    assert_seed_table(report)
    roles = {r.role: (r.partition.name, r.xip_address) for r in report.linux}
    assert roles == {"dtb": ("dtb", 0x10010000), "kernel": ("LINUX", 0x10200000), "rootfs": ("rootfs", 0x10800000)}
    assert report.all_findings() == []


def test_committed_example_is_what_mkimage_builds(tmp_path):
    out = tmp_path / "seedlayout.uf2"
    subprocess.run([sys.executable, str(FIRMWARE / "mkimage.py"), str(out)], check=True, capture_output=True)
    assert out.read_bytes() == EXAMPLE.read_bytes(), "run `python firmware/mkimage.py` and commit seedlayout.uf2"


def test_uf2_round_trip_and_raw_bin_decode_alike(tmp_path):
    chunks = build_seed_image(XIPPROBE)
    uf2 = parse_uf2(build_uf2(chunks, "rp2350-riscv"))
    assert uf2.family_names() == ["rp2350-riscv"] and uf2.blocks == 9
    flat = {a + i: b for a, d in uf2.chunks for i, b in enumerate(d)}
    for address, data in chunks:   # every byte written comes back at its address; page padding is zeros
        assert bytes(flat[address + i] for i in range(len(data))) == data
    raw = tmp_path / "seed.bin"
    subprocess.run([sys.executable, str(FIRMWARE / "mkimage.py"), str(raw)], check=True, capture_output=True)
    from_bin = inspect_flash(FileFlash.from_spec(f"{raw}@0x10000000")).to_json()
    from_uf2 = inspect_flash(FileFlash.from_spec(str(EXAMPLE))).to_json()
    from_bin.pop("source"), from_uf2.pop("source")
    assert from_bin["partition_table"] == from_uf2["partition_table"]
    assert from_bin["block_loop"] == from_uf2["block_loop"]
    assert [r["role"] for r in from_bin["linux"]] == ["dtb", "kernel", "rootfs"]


def test_every_item_kind_decodes():
    items = [image_def_item("exe", "arm", "non-secure", "rp2350", tbyb=True), vector_table_item(0x10000100),
             entry_point_item(0x10000200, 0x20082000, 0x20080000), load_map_item([(0x10000400, 0x20000000, 0x100),
                                                                                  (0, 0x20000100, 0x40)]),
             version_item(2, 7), hash_def_item(12)]
    table = [partition_table_item([PartitionSpec("A", 0x10000, 0x10000, id=0x1122334455667788),
                                   PartitionSpec("B", 0x20000, 0x10000, link_type=1, link_value=0,
                                                 families=("rp2350-arm-s", "data"), permissions=0x05)],
                                  singleton=True)]
    chunks = [(0x10000000 + off, data) for off, data in encode_block_loop([items, table], [0x100, 0x300])]
    report = decode(chunks)
    assert report.all_findings() == []
    f = [i.fields for i in report.loop.blocks[0].items]
    assert f[0]["cpu"] == "arm" and f[0]["security"] == "non-secure" and f[0]["tbyb"]
    assert f[1] == {"address": 0x10000100}
    assert f[2] == {"pc": 0x10000200, "sp": 0x20082000, "sp_limit": 0x20080000}
    assert f[3]["absolute"] and f[3]["entries"] == [{"storage": 0x10000400, "runtime": 0x20000000, "size": 0x100},
                                                    {"storage": None, "runtime": 0x20000100, "size": 0x40}]
    assert f[4] == {"major": 2, "minor": 7} and f[5] == {"hash_type": "sha256", "block_words_hashed": 12}
    t = report.table
    assert t.singleton and [p.name for p in t.partitions] == ["A", "B"]
    assert t.partitions[0].id == 0x1122334455667788
    b = t.partitions[1]
    assert (b.link_type, b.link_value, b.families) == ("a-partition", 0, ["data", "rp2350-arm-s"])
    assert b.permissions == 0x05


# --- malformed loops are findings --------------------------------------------------------------------------------

def one_block(items, link=0, offset=0x100):
    return [(0x10000000 + offset, encode_block(items, link))]


def errors(chunks):
    return [f.message for f in decode(chunks).all_findings() if f.severity == "error"]


def test_bad_end_marker_last_count_and_open_links_are_findings():
    good = encode_block([image_def_item()], 0)
    bad_end = good[:-4] + struct.pack("<I", 0x12345678)
    assert any("END marker" in m and "0x12345678" in m for m in errors([(0x10000000, bad_end)]))
    words = list(struct.unpack(f"<{len(good) // 4}I", good))
    words[2] = 0xFF | 5 << 8           # LAST claims 5 words of items; there is 1
    assert any("LAST item says the block's items take 5 words; they take 1" in m
               for m in errors([(0x10000000, struct.pack(f"<{len(words)}I", *words))]))
    # Three blocks where the last links back to the second: a loop that never closes on the first.
    blocks = encode_block_loop([[image_def_item()], [version_item(1, 0)], [version_item(2, 0)]], [0, 0x40, 0x80])
    blocks[2] = (0x80, encode_block([version_item(2, 0)], 0x40 - 0x80))
    msgs = errors([(0x10000000 + o, d) for o, d in blocks])
    assert any("does not close" in m for m in msgs)
    # A link into erased flash.
    msgs = errors([(0x10000000, encode_block([image_def_item()], 0x200))])
    assert any("links (+0x200) to 0x200, which is not a valid block" in m for m in msgs)


def test_partition_table_mismatches_are_findings():
    item = partition_table_item(list(SEED_PARTITIONS))
    item[0] = (item[0] & 0x00FFFFFF) | 4 << 24        # header claims 4 partitions
    item[3] ^= 1 << 27                                # flags word loses S_W: permissions disagree
    msgs = errors(one_block([item]))
    assert any("header says 4 partitions; its words hold 3" in m for m in msgs)
    assert any("permissions differ" in m for m in msgs)


WORD = st.integers(0, 0xFFFFFFFF)
SPECIAL = st.sampled_from([MARKER_START, MARKER_END, 0xFF | 3 << 8, 0x0A | 19 << 8 | 3 << 24, 0x42 | 1 << 8,
                           0x06 | 7 << 8 | 0x82 << 24, 0x48 | 3 << 8 | 2 << 24, 0, 0xFFFFFFFF, 0x44 | 4 << 8])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(st.tuples(st.integers(0, 40), st.one_of(WORD, SPECIAL)), max_size=6),
       cut=st.integers(0, 200))
def test_fuzzed_loops_end_in_findings_not_tracebacks(mutations, cut):
    blocks = encode_block_loop([[image_def_item(), entry_point_item(0x10000000, 0x20082000)],
                                [partition_table_item(list(SEED_PARTITIONS)), version_item(1, 0)]], [0, 0x40])
    data = bytearray(0x100)
    for off, b in blocks:
        data[off:off + len(b)] = b
    for index, value in mutations:
        struct.pack_into("<I", data, 4 * index, value)
    data = bytes(data[:len(data) - cut])
    report = inspect_flash(FileFlash([(0x10000000, data)], "fuzz"))
    json.dumps(report.to_json())                     # every decoded value is plain data
    from xipscope.image.inspect import format_report
    format_report(report)
    if not report.loop.closed:
        assert report.all_findings(), "a loop that is not closed must say why"


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.one_of(WORD, SPECIAL), min_size=1, max_size=80))
def test_random_words_after_a_start_marker_end_in_findings(words):
    data = struct.pack(f"<{len(words) + 1}I", MARKER_START, *words)
    report = inspect_flash(FileFlash([(0x10000000, data)], "fuzz"))
    assert report.loop.blocks or report.all_findings()


# --- from the command line, and over the debugger ------------------------------------------------------------------

def test_cli_decodes_the_example_and_prints_json():
    out = xipscope("image", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    assert "0x0300130a" in out.stdout and "0xfd7fe800" in out.stdout
    assert re.search(r"kernel \(xipImage\)\s+partition 1 'LINUX'\s+at 0x10200000", out.stdout), out.stdout
    data = json.loads(xipscope("image", str(EXAMPLE), "--json").stdout)
    assert [(p["name"], p["xip_address"]) for p in data["partition_table"]["partitions"]] == \
        [(n, x) for n, _i, _s, _e, x in SEED]


def test_elf_entry_names_the_kernel_partition(tmp_path):
    gcc = shutil.which("riscv64-unknown-elf-gcc")
    assert gcc, "riscv64-unknown-elf-gcc is needed: apt-get install gcc-riscv64-unknown-elf"
    src = tmp_path / "xip.S"
    src.write_text(".globl _start\n_start: j _start\n")
    elf = tmp_path / "vmlinux"
    subprocess.run([gcc, "-march=rv32imac", "-mabi=ilp32", "-nostdlib", "-Wl,-Ttext=0x10200000", "-o", str(elf),
                    str(src)], check=True, capture_output=True)
    report = inspect_flash(FileFlash.from_spec(str(EXAMPLE)), elf)
    kernel = next(r for r in report.linux if r.role == "kernel")
    assert kernel.partition.name == "LINUX" and kernel.evidence == "holds the ELF entry 0x10200000"
    # The twin's firmware enters at flash 0, in no partition: said as a finding.
    report = inspect_flash(FileFlash.from_spec(str(EXAMPLE)), XIPPROBE)
    assert any("entry 0x10000000 is in no partition" in f.message for f in report.all_findings())


def test_image_over_the_in_process_twin():
    out = xipscope("image", "--target", f"sim://{XIPPROBE}?flash={EXAMPLE}", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert "uncached alias 0x14000000" in data["source"]
    assert [p["location_word"] for p in data["partition_table"]["partitions"]] == SEED_LOCATION_WORDS
    bad = xipscope("image", "--target", f"sim://{XIPPROBE}?flsh={EXAMPLE}")
    assert bad.returncode == 1 and "unknown option(s) flsh" in bad.stderr and "Traceback" not in bad.stderr


@pytest.fixture()
def twin_with_image():
    """The twin's GDB server with the example image in its flash (a separate process on a free port)."""
    with twin_gdb_server(XIPPROBE, "--flash", EXAMPLE) as port:
        yield port


def test_image_over_the_gdb_remote_protocol(twin_with_image):
    out = xipscope("image", "--target", f"rsp://127.0.0.1:{twin_with_image}")
    assert out.returncode == 0, out.stderr
    for name, _id, start, end, xip in SEED:
        assert re.search(rf"{name}\s+\d+\s+{start:#08x}-{end:#08x}\s+{xip:#010x}", out.stdout), out.stdout
    assert "block loop from 0x0: 2 block(s), closed" in out.stdout


def test_a_partition_with_its_own_block_loop_and_an_ab_pair():
    a = PartitionSpec("A", 0x10000, 0x10000, id=1)
    b = PartitionSpec("B", 0x20000, 0x10000, id=2, link_type=1, link_value=0)
    loop0 = encode_block_loop([[partition_table_item([a, b])]], [0x100])
    # Partition A holds an exe whose block sits 0x200 into the partition, with a relative LOAD_MAP.
    exe = encode_block_loop([[image_def_item(), load_map_item([(0x40, 0x20000000, 0x80)], absolute=False)]],
                            [0x10200])
    report = decode([(0x10000000 + o, d) for o, d in loop0 + exe])
    assert report.all_findings() == []
    part_a, part_b = report.partitions
    assert part_a.loop.blocks[0].offset == 0x10200 and part_a.loop.closed
    entry = part_a.loop.blocks[0].item(0x06).fields["entries"][0]
    assert entry == {"storage_rel": 0x40, "runtime": 0x20000000, "size": 0x80}
    assert part_b.loop is None                     # nothing written there: not in this source
    from xipscope.image.inspect import format_report
    text = format_report(report)
    assert re.search(r"1 B\s+2\s+0x020000-0x030000\s+0x10020000 .* B of 0", text), text
    assert "partition 1 B: not in this source" in text


def test_the_twin_takes_a_raw_bin_and_refuses_an_image_outside_flash(tmp_path):
    raw = tmp_path / "seed.bin"
    subprocess.run([sys.executable, str(FIRMWARE / "mkimage.py"), str(raw)], check=True, capture_output=True)
    out = xipscope("image", "--target", f"sim://{XIPPROBE}?flash={raw}", "--json")
    assert out.returncode == 0, out.stderr
    assert [p["name"] for p in json.loads(out.stdout)["partition_table"]["partitions"]] == ["dtb", "LINUX", "rootfs"]
    ram = tmp_path / "ram.uf2"
    ram.write_bytes(build_uf2([(0x20000000, b"\x01" * 16)], "rp2350-riscv"))
    bad = xipscope("image", "--target", f"sim://{XIPPROBE}?flash={ram}")
    assert bad.returncode == 1 and "do not fit the twin's flash" in bad.stderr and "Traceback" not in bad.stderr


def test_a_read_that_fails_midway_keeps_what_was_decoded():
    """A target whose reads beyond 1 MiB fail (a fault injected on purpose: a real probe losing the board midway)."""
    from xipscope.errors import TargetError
    from xipscope.image.flash import TargetFlash
    from xipscope.sim.target import SimTarget

    twin = SimTarget(f"{XIPPROBE}?flash={EXAMPLE}")
    real_read = twin.read_memory

    def failing_read(address, size):
        if address + size > 0x14100000:
            raise TargetError("the probe lost the target (injected)")
        return real_read(address, size)

    twin.read_memory = failing_read
    try:
        report = inspect_flash(TargetFlash(twin))
    finally:
        twin.close()
    assert report.loop.closed and [p.name for p in report.table.partitions] == ["dtb", "LINUX", "rootfs"]
    assert report.partitions[0].content_kind == "dtb" and report.partitions[1].loop is None
    failures = [f.message for f in report.all_findings() if f.severity == "error"]
    assert len(failures) == 2 and all("lost the target (injected)" in m for m in failures)
