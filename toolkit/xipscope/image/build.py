"""Our own image tooling: a block loop and partition table from a documented layout, around a bootloader ELF.

The seed's layout (rp2350-flash.md "The seed's layout", casaroli/pi-pico2-linux-xip partition_table.json): the
bootloader at flash 0 with IMAGE_DEF and the partition table embedded, then dtb, LINUX (xipImage) and rootfs
(cramfs). Without real contents the partitions get small placeholders in the formats Linux boots from (an FDT, a
RISC-V Image header, a cramfs superblock), each saying it is a placeholder, so `xipscope image` has something to
recognise.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ..chip import rp2350 as rp
from ..errors import XipscopeError
from .picobin import (PartitionSpec, encode_block_loop, entry_point_item, image_def_item, partition_table_item,
                      version_item)

KIB = 1024
SEED_PARTITIONS = (
    PartitionSpec("dtb", 64 * KIB, 1984 * KIB, id=0),
    PartitionSpec("LINUX", 2048 * KIB, 6144 * KIB, id=1),
    PartitionSpec("rootfs", 8192 * KIB, 4096 * KIB, id=2),
)
SEED_UNPARTITIONED_FAMILIES = ("absolute",)
SEED_TABLE_VERSION = (1, 0)     # partition_table.json "version": [1, 0]
BLOCK_ALIGN = 16


def seed_partition_table_item() -> list[int]:
    return partition_table_item(list(SEED_PARTITIONS), SEED_UNPARTITIONED_FAMILIES)


def placeholder_dtb(model: str = "xipscope placeholder dtb (seed layout)") -> bytes:
    """A minimal flattened device tree (devicetree spec v17): a root node with `model` and `compatible`."""
    strings = b"model\0compatible\0"

    def prop(value: bytes, nameoff: int) -> bytes:
        return struct.pack(">III", 3, len(value), nameoff) + value + bytes(-len(value) % 4)

    struct_block = (struct.pack(">I", 1) + bytes(4) + prop(model.encode() + b"\0", 0)
                    + prop(b"xipscope,placeholder\0", 6) + struct.pack(">II", 2, 9))
    off_rsv = 40
    off_struct = off_rsv + 16
    off_strings = off_struct + len(struct_block)
    total = off_strings + len(strings)
    header = struct.pack(">10I", 0xD00DFEED, total, off_struct, off_strings, off_rsv, 17, 16, 0, len(strings),
                         len(struct_block))
    return header + bytes(16) + struct_block + strings


def placeholder_kernel_header() -> bytes:
    """The 64-byte RISC-V Linux Image header (boot-image-header.rst) with code0 `j .`: a placeholder xipImage."""
    return struct.pack("<IIQQQIIQ8sII", 0x0000006F, 0, 0, 64, 0, 2, 0, 0, b"RISCV\0\0\0",
                       int.from_bytes(b"RSC\x05", "little"), 0)


def placeholder_cramfs() -> bytes:
    """A cramfs superblock (linux/cramfs_fs.h) naming itself a placeholder; no files."""
    sb = struct.pack("<IIII16sIIII16s", 0x28CD3D45, 76, 0, 0, b"Compressed ROMFS", 0, 0, 0, 0,
                     b"xipscope placeho")
    return sb + struct.pack("<III", 0o40755, 0, 0)


def bootloader_chunks(elf_path: str | Path) -> tuple[list[tuple[int, bytes]], int, int]:
    """The ELF's bytes that live in flash (by load address), its entry and its initial stack pointer."""
    from ..elf.program import ElfImage

    elf = ElfImage(elf_path)
    chunks = [(s.paddr, s.data) for s in elf.segments
              if s.data and rp.XIP_BASE <= s.paddr < rp.XIP_BASE + rp.XIP_CS1_OFFSET]
    sp = elf.symbols.get("__stack_top", rp.SRAM_END)
    return chunks, elf.entry, sp


def build_seed_image(bootloader_elf: str | Path, contents: dict[str, bytes] | None = None,
                     partitions=SEED_PARTITIONS) -> list[tuple[int, bytes]]:
    """(XIP address, bytes) runs: the bootloader, its IMAGE_DEF + PARTITION_TABLE loop, and partition contents.

    `contents` maps a partition name to its bytes; missing names get the placeholders above.
    """
    chunks, entry, sp = bootloader_chunks(bootloader_elf)
    end = max(a + len(d) for a, d in chunks) - rp.XIP_BASE
    first = -(-end // BLOCK_ALIGN) * BLOCK_ALIGN
    image_block = [image_def_item("exe", "riscv", "secure", "rp2350"), entry_point_item(entry, sp)]
    table_block = [partition_table_item(list(partitions), SEED_UNPARTITIONED_FAMILIES),
                   version_item(*SEED_TABLE_VERSION)]
    image_words = 1 + sum(len(i) for i in image_block) + 3
    second = first + 4 * image_words
    blocks = encode_block_loop([image_block, table_block], [first, second])
    if blocks[-1][0] + len(blocks[-1][1]) > 4096:
        raise XipscopeError(f"{bootloader_elf}: its flash bytes end at {end:#x}; the block loop must sit in the first "
                            "4 KiB of flash, where the boot ROM looks")
    if partitions and first + 4096 > partitions[0].start:
        raise XipscopeError(f"{bootloader_elf}: the bootloader overlaps the first partition at "
                            f"{partitions[0].start:#x}")
    defaults = {"dtb": placeholder_dtb(), "LINUX": placeholder_kernel_header(), "rootfs": placeholder_cramfs()}
    defaults.update(contents or {})
    out = list(chunks) + [(rp.XIP_BASE + off, data) for off, data in blocks]
    for p in partitions:
        data = defaults.get(p.name)
        if data:
            if len(data) > p.size:
                raise XipscopeError(f"partition {p.name!r}: {len(data)} bytes do not fit its {p.size} bytes")
            out.append((rp.XIP_BASE + p.start, data))
    return sorted(out)
