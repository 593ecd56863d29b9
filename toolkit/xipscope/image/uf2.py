"""UF2 files, the RP2350 boot ROM's drag-and-drop format: 512-byte blocks each carrying up to 476 bytes for one address.

Layout and family ids from pico-sdk `src/common/boot_uf2_headers/include/boot/uf2.h` (picotool writes the same):
magic0 0x0a324655, magic1 0x9e5d5157, flags, target address, payload size, block number, block count,
family id (flag 0x2000) or file size, 476 data bytes, magic end 0x0ab16f30.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..chip.memory_map import ADDRESS_SPACE
from ..errors import TargetError

MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FAMILY_ID_PRESENT = 0x00002000
BLOCK_SIZE = 512
DATA_SIZE = 476
PAGE_SIZE = 256          # what picotool and elf2uf2 put in each block (one flash page)
UF2_MAGIC = struct.pack("<II", MAGIC_START0, MAGIC_START1)     # a UF2 file's first 8 bytes

FAMILY_IDS = {
    "rp2040": 0xE48BFF56,
    "absolute": 0xE48BFF57,
    "data": 0xE48BFF58,
    "rp2350-arm-s": 0xE48BFF59,
    "rp2350-riscv": 0xE48BFF5A,
    "rp2350-arm-ns": 0xE48BFF5B,
}
FAMILY_NAMES = {v: k for k, v in FAMILY_IDS.items()}

_HEADER = struct.Struct("<8I")


@dataclass
class Uf2Image:
    """The blocks of a UF2 file merged into contiguous runs of bytes by address."""

    chunks: list[tuple[int, bytes]]          # (address, bytes), sorted, non-overlapping, adjacent runs merged
    families: set[int] = field(default_factory=set)
    blocks: int = 0
    skipped: int = 0                         # blocks flagged NOT_MAIN_FLASH

    def family_names(self) -> list[str]:
        return [FAMILY_NAMES.get(f, f"{f:#010x}") for f in sorted(self.families)]


def parse_uf2(data: bytes, name: str = "UF2 data") -> Uf2Image:
    """Decode a UF2 file; a block with a bad magic, size or overlap is an error naming the block."""
    if len(data) % BLOCK_SIZE or not data:
        raise TargetError(f"{name}: a UF2 file is a whole number of 512-byte blocks; found {len(data)} bytes")
    pieces: dict[int, bytes] = {}
    image = Uf2Image([])
    for n in range(len(data) // BLOCK_SIZE):
        block = data[n * BLOCK_SIZE:(n + 1) * BLOCK_SIZE]
        m0, m1, flags, address, size, number, count, family = _HEADER.unpack_from(block)
        end_magic = struct.unpack_from("<I", block, BLOCK_SIZE - 4)[0]
        if (m0, m1, end_magic) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise TargetError(f"{name}: block {n} (file offset {n * BLOCK_SIZE:#x}) lacks the UF2 magic numbers "
                              f"(found {m0:#010x} {m1:#010x} ... {end_magic:#010x}); is this a UF2 file?")
        if size > DATA_SIZE:
            raise TargetError(f"{name}: block {n} claims {size} payload bytes; a UF2 block holds at most {DATA_SIZE}")
        if number >= count:
            raise TargetError(f"{name}: block {n} (file offset {n * BLOCK_SIZE:#x}) is numbered {number} of {count} "
                              "blocks; a UF2 block's number is below its file's block count. Is the file damaged?")
        if address + size > ADDRESS_SPACE:
            raise TargetError(f"{name}: block {n} puts {size} bytes at {address:#x}, past the 32-bit address space")
        image.blocks += 1
        if flags & FLAG_NOT_MAIN_FLASH:
            image.skipped += 1
            continue
        if flags & FLAG_FAMILY_ID_PRESENT:
            image.families.add(family)
        if address in pieces and pieces[address] != block[32:32 + size]:
            raise TargetError(f"{name}: block {n} writes {address:#x} again with different bytes")
        pieces[address] = block[32:32 + size]
    merged: list[list] = []
    for address in sorted(pieces):
        payload = pieces[address]
        if merged and address < merged[-1][0] + len(merged[-1][1]):
            raise TargetError(f"{name}: blocks overlap at {address:#x}")
        if merged and address == merged[-1][0] + len(merged[-1][1]):
            merged[-1][1] += payload
        else:
            merged.append([address, bytearray(payload)])
    image.chunks = [(a, bytes(b)) for a, b in merged]
    return image


def build_uf2(chunks: list[tuple[int, bytes]], family: str | int = "absolute") -> bytes:
    """UF2 blocks of 256 bytes each for `chunks` (address, bytes), as picotool writes them; pages are padded with 0."""
    family_id = FAMILY_IDS[family] if isinstance(family, str) else family
    pages: dict[int, bytearray] = {}
    for address, data in chunks:
        for i, byte in enumerate(data):
            a = address + i
            page = pages.setdefault(a & ~(PAGE_SIZE - 1), bytearray(PAGE_SIZE))
            page[a & (PAGE_SIZE - 1)] = byte
    out = bytearray()
    count = len(pages)
    for n, address in enumerate(sorted(pages)):
        header = _HEADER.pack(MAGIC_START0, MAGIC_START1, FLAG_FAMILY_ID_PRESENT, address, PAGE_SIZE, n, count,
                              family_id)
        out += header + bytes(pages[address]) + bytes(DATA_SIZE - PAGE_SIZE) + struct.pack("<I", MAGIC_END)
    return bytes(out)
