"""RP2350 image metadata ("picobin" block loops) decoded and encoded, as the boot ROM and picotool read them.

Layouts from rp2350-flash.md "Block loops" (pico-sdk `boot/picobin.h`, picotool `bintool/metadata.h`). Everything
here works on 32-bit little-endian words read through a `read(offset, size) -> bytes` callable (short where the
source ends), so a malformed loop becomes a list of findings, never an exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable

from .uf2 import FAMILY_IDS

MARKER_START = 0xFFFFDED3
MARKER_END = 0xAB123579
MAX_BLOCK_WORDS = 0x280          # PICOBIN_MAX_BLOCK_SIZE, in words (picotool asserts words <= it - 3)
SEARCH_WINDOW = 4096             # the ROM looks for the first block in the first 4 KiB of flash / of a partition
SECTOR = 4096
MAX_LOOP_BLOCKS = 64             # more than any real image links; stops a cycle that never closes

ITEM_NEXT_BLOCK_OFFSET = 0x41
ITEM_IMAGE_DEF = 0x42
ITEM_VECTOR_TABLE = 0x03
ITEM_ENTRY_POINT = 0x44
ITEM_ROLLING_WINDOW_DELTA = 0x05
ITEM_LOAD_MAP = 0x06
ITEM_HASH_DEF = 0x47
ITEM_VERSION = 0x48
ITEM_SIGNATURE = 0x09
ITEM_PARTITION_TABLE = 0x0A
ITEM_HASH_VALUE = 0x4B
ITEM_SALT = 0x0C
ITEM_IGNORED = 0xFE
ITEM_LAST = 0xFF
ITEM_NAMES = {
    ITEM_NEXT_BLOCK_OFFSET: "NEXT_BLOCK_OFFSET", ITEM_IMAGE_DEF: "IMAGE_DEF", ITEM_VECTOR_TABLE: "VECTOR_TABLE",
    ITEM_ENTRY_POINT: "ENTRY_POINT", ITEM_ROLLING_WINDOW_DELTA: "ROLLING_WINDOW_DELTA", ITEM_LOAD_MAP: "LOAD_MAP",
    ITEM_HASH_DEF: "HASH_DEF", ITEM_VERSION: "VERSION", ITEM_SIGNATURE: "SIGNATURE",
    ITEM_PARTITION_TABLE: "PARTITION_TABLE", ITEM_HASH_VALUE: "HASH_VALUE", ITEM_SALT: "SALT",
    ITEM_IGNORED: "IGNORED", ITEM_LAST: "LAST",
}

IMAGE_TYPES = {0: "invalid", 1: "exe", 2: "data"}
SECURITY = {0: "unspecified", 1: "non-secure", 2: "secure"}
CPUS = {0: "arm", 1: "riscv", 2: "varmulet"}
CHIPS = {0: "rp2040", 1: "rp2350"}
HASH_TYPES = {1: "sha256"}

# Partition words (picobin.h PICOBIN_PARTITION_*).
PERMISSION_BITS = ("s_r", "s_w", "ns_r", "ns_w", "nsboot_r", "nsboot_w")     # bits 26..31
FLAG_HAS_ID = 1 << 0
FLAG_IGNORED_ON_ARM = 1 << 9
FLAG_IGNORED_ON_RISCV = 1 << 10
FLAG_HAS_NAME = 1 << 12
FLAG_UF2_NO_REBOOT = 1 << 13
FAMILY_FLAG_LSB = 14             # bit 14 + (family id - rp2040's): rp2040, absolute, data, arm-s, riscv, arm-ns
FAMILY_FLAG_NAMES = ("rp2040", "absolute", "data", "rp2350-arm-s", "rp2350-riscv", "rp2350-arm-ns")
LINK_TYPES = {0: "none", 1: "a-partition", 2: "owner-partition"}


@dataclass(frozen=True)
class Finding:
    severity: str        # "error" (the ROM would not use it), "warning", "note"
    address: int | None  # flash offset the finding is about
    message: str

    def to_json(self) -> dict:
        return {"severity": self.severity, "offset": self.address, "message": self.message}


@dataclass
class Item:
    type: int
    offset: int          # flash offset of the item's header word
    words: list[int]     # the whole item, header included
    fields: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return ITEM_NAMES.get(self.type, f"unknown {self.type:#04x}")

    def to_json(self) -> dict:
        fields = {k: (v.to_json() if hasattr(v, "to_json") else v) for k, v in self.fields.items()}
        return {"type": self.name, "offset": self.offset, "size_words": len(self.words), **fields}


@dataclass
class Block:
    offset: int                      # flash offset of the START marker
    items: list[Item]
    link: int                        # signed byte offset to the next block (0 = itself)
    size_words: int                  # START through END

    @property
    def kind(self) -> str:
        """The first item decides the block's type (rp2350-flash.md)."""
        return self.items[0].name if self.items else "empty"

    @property
    def next_offset(self) -> int:
        return self.offset + self.link

    def item(self, item_type: int) -> Item | None:
        return next((i for i in self.items if i.type == item_type), None)

    def to_json(self) -> dict:
        return {"offset": self.offset, "kind": self.kind, "link": self.link, "next": self.next_offset,
                "size_words": self.size_words, "items": [i.to_json() for i in self.items]}


@dataclass
class Partition:
    index: int
    location_word: int
    flags_word: int
    permissions: int                 # 6 bits, PERMISSION_BITS order
    first_sector: int
    last_sector: int
    flags: int                       # flags word without the permission bits
    id: int | None = None
    name: str | None = None
    extra_families: list[int] = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.first_sector * SECTOR

    @property
    def end(self) -> int:            # exclusive
        return (self.last_sector + 1) * SECTOR

    @property
    def families(self) -> list[str]:
        names = [n for i, n in enumerate(FAMILY_FLAG_NAMES) if self.flags >> (FAMILY_FLAG_LSB + i) & 1]
        return names + [f"{f:#010x}" for f in self.extra_families]

    @property
    def link_type(self) -> str:
        return LINK_TYPES.get(self.flags >> 1 & 3, f"reserved ({self.flags >> 1 & 3})")

    @property
    def link_value(self) -> int:
        return self.flags >> 3 & 0xF

    @property
    def label(self) -> str:
        return f"partition {self.index}" + (f" {self.name!r}" if self.name else "")

    def to_json(self) -> dict:
        return {"index": self.index, "name": self.name, "id": self.id, "start": self.start, "end": self.end,
                "first_sector": self.first_sector, "last_sector": self.last_sector,
                "xip_address": 0x10000000 + self.start, "permissions": permission_text(self.permissions),
                "families": self.families, "link_type": self.link_type, "link_value": self.link_value,
                "ignored_on_arm": bool(self.flags & FLAG_IGNORED_ON_ARM),
                "ignored_on_riscv": bool(self.flags & FLAG_IGNORED_ON_RISCV),
                "location_word": self.location_word, "flags_word": self.flags_word}


@dataclass
class PartitionTable:
    header_word: int
    singleton: bool
    count: int                       # as the header says
    unpartitioned_word: int
    partitions: list[Partition]

    @property
    def unpartitioned_families(self) -> list[str]:
        return [n for i, n in enumerate(FAMILY_FLAG_NAMES) if self.unpartitioned_word >> (FAMILY_FLAG_LSB + i) & 1]

    def to_json(self) -> dict:
        return {"header_word": self.header_word, "singleton": self.singleton, "count": self.count,
                "unpartitioned_word": self.unpartitioned_word,
                "unpartitioned_permissions": permission_text(self.unpartitioned_word >> 26),
                "unpartitioned_families": self.unpartitioned_families,
                "partitions": [p.to_json() for p in self.partitions]}


def permission_text(permissions: int) -> str:
    """`s:rw ns:rw nsboot:rw` style, `-` for a missing right."""
    parts = []
    for i, who in enumerate(("s", "ns", "nsboot")):
        r = "r" if permissions >> (2 * i) & 1 else "-"
        w = "w" if permissions >> (2 * i + 1) & 1 else "-"
        parts.append(f"{who}:{r}{w}")
    return " ".join(parts)


# --- decoding ------------------------------------------------------------------------------------------------------

Reader = Callable[[int, int], bytes]


def _words(data: bytes) -> list[int]:
    n = len(data) // 4
    return list(struct.unpack_from(f"<{n}I", data)) if n else []


def item_size(header: int) -> int:
    """Size in words, header included: bit 7 of the type byte says the size takes two bytes."""
    return (header >> 8) & (0xFFFF if header & 0x80 else 0xFF)


def parse_block(read: Reader, offset: int) -> tuple[Block | None, list[Finding]]:
    """The block whose START marker is at `offset`, or None with findings saying why it is not a block."""
    findings: list[Finding] = []
    words = _words(read(offset, (MAX_BLOCK_WORDS + 3) * 4))
    if not words or words[0] != MARKER_START:
        found = f"{words[0]:#010x}" if words else "no bytes"
        return None, [Finding("error", offset, f"expected a block START marker {MARKER_START:#010x}, found {found}")]
    items: list[Item] = []
    i = 1
    while True:
        if i >= len(words):
            return None, [Finding("error", offset, f"block at {offset:#x} has no LAST item before the data ends "
                                                   f"({len(words)} words read)")]
        header = words[i]
        item_type = header & 0xFF
        size = item_size(header)
        at = offset + 4 * i
        if item_type == ITEM_LAST:
            if size != i - 1:
                return None, [Finding("error", at, f"LAST item says the block's items take {size} words; they take "
                                                   f"{i - 1}")]
            if i + 2 >= len(words):
                return None, [Finding("error", at, "block ends after its LAST item: no link and END marker")]
            link = struct.unpack("<i", struct.pack("<I", words[i + 1]))[0]
            if words[i + 2] != MARKER_END:
                return None, [Finding("error", at + 8, f"expected the block END marker {MARKER_END:#010x} after the "
                                                       f"link, found {words[i + 2]:#010x}")]
            block = Block(offset, items, link, i + 3)
            if not items:
                findings.append(Finding("warning", offset, "block has no items"))
            if link % 4:
                findings.append(Finding("error", at + 4, f"link {link:+#x} is not a multiple of 4"))
            return block, findings
        if size == 0:
            return None, [Finding("error", at, f"item {ITEM_NAMES.get(item_type, hex(item_type))} has size 0")]
        if i + size + 3 > MAX_BLOCK_WORDS:
            return None, [Finding("error", at, f"item of {size} words runs the block past the "
                                               f"{MAX_BLOCK_WORDS}-word limit")]
        if i + size > len(words):
            return None, [Finding("error", at, f"item of {size} words runs past the data read")]
        item = Item(item_type, at, words[i:i + size])
        findings += _decode_item(item)
        items.append(item)
        i += size


def _decode_item(item: Item) -> list[Finding]:
    """Fill item.fields; findings for sizes and values the formats do not allow."""
    h, w, f = item.words[0], item.words, item.fields
    size = len(w)

    def wrong_size(allowed: str) -> list[Finding]:
        return [Finding("error", item.offset, f"{item.name} item has {size} words; the format has {allowed}")]

    if item.type == ITEM_IMAGE_DEF:
        if size != 1:
            return wrong_size("1")
        flags = h >> 16
        f["flags"] = flags
        f["image_type"] = IMAGE_TYPES.get(flags & 0xF, f"reserved ({flags & 0xF})")
        if flags & 0xF == 1:
            f["security"] = SECURITY.get(flags >> 4 & 3, "reserved")
            f["cpu"] = CPUS.get(flags >> 8 & 7, f"reserved ({flags >> 8 & 7})")
            f["chip"] = CHIPS.get(flags >> 12 & 7, f"reserved ({flags >> 12 & 7})")
            f["tbyb"] = bool(flags & 0x8000)
            f["extra_security"] = bool(flags & 0x0800)
        return [] if flags & 0xF in IMAGE_TYPES else [
            Finding("warning", item.offset, f"IMAGE_DEF image type {flags & 0xF} is reserved")]
    if item.type == ITEM_VECTOR_TABLE:
        if size != 2:
            return wrong_size("2")
        f["address"] = w[1]
    elif item.type == ITEM_ENTRY_POINT:
        if size not in (3, 4):
            return wrong_size("3 or 4")
        f["pc"], f["sp"] = w[1], w[2]
        if size == 4:
            f["sp_limit"] = w[3]
    elif item.type == ITEM_ROLLING_WINDOW_DELTA:
        if size != 2:
            return wrong_size("2")
        f["delta"] = struct.unpack("<i", struct.pack("<I", w[1]))[0]
    elif item.type == ITEM_LOAD_MAP:
        count, absolute = h >> 24 & 0x7F, bool(h >> 31)
        if size != 1 + 3 * count:
            return wrong_size(f"1 + 3 x {count} entries = {1 + 3 * count}")
        entries = []
        for n in range(count):
            storage, runtime, third = w[1 + 3 * n:4 + 3 * n]
            if storage == 0:          # zero-fill: no storage, `third` is the size
                entries.append({"storage": None, "runtime": runtime, "size": third})
            elif absolute:
                entries.append({"storage": storage, "runtime": runtime, "size": (third - runtime) & 0xFFFFFFFF})
            else:                     # relative to the LOAD_MAP item's own address
                entries.append({"storage_rel": storage, "runtime": runtime, "size": third})
        f["absolute"] = absolute
        f["entries"] = entries
    elif item.type == ITEM_HASH_DEF:
        if size != 2:
            return wrong_size("2")
        f["hash_type"] = HASH_TYPES.get(h >> 24, f"unknown ({h >> 24})")
        f["block_words_hashed"] = w[1] & 0xFFFF
    elif item.type == ITEM_VERSION:
        rows = h >> 24
        expected = 2 + (1 + rows + 1) // 2 if rows else 2
        if size != expected:
            return wrong_size(f"{expected} for {rows} OTP rows")
        f["major"], f["minor"] = w[1] >> 16, w[1] & 0xFFFF
        if rows:
            f["rollback"] = w[2] & 0xFFFF
            halves = [w[2] >> 16] + [x for word in w[3:] for x in (word & 0xFFFF, word >> 16)]
            f["otp_rows"] = halves[:rows]
    elif item.type == ITEM_PARTITION_TABLE:
        table, findings = _decode_partition_table(item)
        f["table"] = table
        return findings
    elif item.type in (ITEM_HASH_VALUE, ITEM_SIGNATURE, ITEM_SALT):
        f["hex"] = b"".join(x.to_bytes(4, "little") for x in w[1:]).hex()
    elif item.type == ITEM_NEXT_BLOCK_OFFSET:
        pass
    elif item.type != ITEM_IGNORED:
        return [Finding("note", item.offset, f"unknown item type {item.type:#04x} ({size} words) skipped, "
                                             "as the ROM skips it")]
    return []


def _decode_partition_table(item: Item) -> tuple[PartitionTable | None, list[Finding]]:
    w = item.words
    if len(w) < 2:
        return None, [Finding("error", item.offset, "PARTITION_TABLE item has no word for unpartitioned space")]
    h = w[0]
    table = PartitionTable(h, bool(h >> 31), h >> 24 & 0xF, w[1], [])
    findings: list[Finding] = []
    i = 2
    while i < len(w):
        at = item.offset + 4 * i
        index = len(table.partitions)
        if i + 2 > len(w):
            findings.append(Finding("error", at, f"partition {index}: its flags word is missing"))
            break
        loc, fl = w[i], w[i + 1]
        p = Partition(index, loc, fl, loc >> 26, loc & 0x1FFF, loc >> 13 & 0x1FFF, fl & 0x03FFFFFF)
        i += 2
        if fl >> 26 != p.permissions:
            findings.append(Finding("error", at, f"{p.label}: permissions differ between its location word "
                                                 f"({permission_text(p.permissions)}) and flags word "
                                                 f"({permission_text(fl >> 26)})"))
        if p.last_sector < p.first_sector:
            findings.append(Finding("error", at, f"{p.label}: last sector {p.last_sector} is below the first "
                                                 f"{p.first_sector}"))
        if p.flags & FLAG_HAS_ID:
            if i + 2 > len(w):
                findings.append(Finding("error", at, f"{p.label}: HAS_ID is set but the item ends"))
                table.partitions.append(p)
                break
            p.id = w[i] | w[i + 1] << 32
            i += 2
        extra = p.flags >> 7 & 3
        if extra:
            if i + extra > len(w):
                findings.append(Finding("error", at, f"{p.label}: {extra} extra families promised, the item ends"))
                table.partitions.append(p)
                break
            p.extra_families = w[i:i + extra]
            i += extra
        if p.flags & FLAG_HAS_NAME:
            if i >= len(w):
                findings.append(Finding("error", at, f"{p.label}: HAS_NAME is set but the item ends"))
                table.partitions.append(p)
                break
            raw = b"".join(x.to_bytes(4, "little") for x in w[i:])
            length = raw[0] & 0x7F
            name_words = (1 + length + 3) // 4
            if name_words > len(w) - i:
                findings.append(Finding("error", at, f"{p.label}: name of {length} bytes runs past the item"))
                table.partitions.append(p)
                break
            p.name = raw[1:1 + length].decode("latin-1")
            i += name_words
        table.partitions.append(p)
    if len(table.partitions) != table.count:
        findings.append(Finding("error", item.offset, f"PARTITION_TABLE header says {table.count} partitions; "
                                                      f"its words hold {len(table.partitions)}"))
    spans = sorted((p for p in table.partitions if p.last_sector >= p.first_sector), key=lambda p: (p.start, p.index))
    for p1, p2 in zip(spans, spans[1:]):
        if p2.start < p1.end:
            findings.append(Finding("error", item.offset, f"{p1.label} ({p1.start:#x}-{p1.end:#x}) and {p2.label} "
                                                          "overlap"))
    for p in table.partitions:
        if p.link_type != "none" and p.link_value >= len(table.partitions):
            findings.append(Finding("error", item.offset, f"{p.label}: {p.link_type} link to partition "
                                                          f"{p.link_value}, which does not exist"))
        if p.end > 0x1000000:
            findings.append(Finding("warning", item.offset, f"{p.label} ends at {p.end:#x}, past the 16 MiB XIP "
                                                            "window of CS0: its end is not XIP-addressable"))
    return table, findings


@dataclass
class BlockLoop:
    window: int                      # flash offset where the search started
    blocks: list[Block]
    closed: bool
    findings: list[Finding]

    @property
    def image_def(self) -> Item | None:
        return next((b.items[0] for b in self.blocks if b.kind == "IMAGE_DEF"), None)

    @property
    def partition_table(self) -> PartitionTable | None:
        for b in self.blocks:
            if b.kind == "PARTITION_TABLE":
                return b.items[0].fields.get("table")
        return None

    def to_json(self) -> dict:
        return {"window": self.window, "closed": self.closed, "blocks": [b.to_json() for b in self.blocks],
                "findings": [f.to_json() for f in self.findings]}


def find_block_loop(read: Reader, window: int, window_size: int = SEARCH_WINDOW) -> BlockLoop:
    """Find the first valid block in `window_size` bytes from `window` and follow its links until they close."""
    findings: list[Finding] = []
    data = read(window, window_size)
    first = None
    for k in range(0, len(data) - 3, 4):
        if struct.unpack_from("<I", data, k)[0] != MARKER_START:
            continue
        block, why = parse_block(read, window + k)
        findings += why
        if block is not None:
            first = block
            break
    if first is None:
        if not any(f.severity == "error" for f in findings):
            findings.append(Finding("note", window, f"no block START marker in the {len(data)} bytes from "
                                                    f"{window:#x}"))
        return BlockLoop(window, [], False, findings)
    blocks = [first]
    seen = {first.offset}
    current = first
    closed = False
    while True:
        target = current.next_offset
        if target == first.offset:
            closed = True
            break
        if target in seen:
            findings.append(Finding("error", current.offset, f"the loop does not close: block {current.offset:#x} "
                                                             f"links back to {target:#x}, not to the first block "
                                                             f"{first.offset:#x}"))
            break
        if len(blocks) >= MAX_LOOP_BLOCKS:
            findings.append(Finding("error", current.offset, f"more than {MAX_LOOP_BLOCKS} blocks without closing"))
            break
        if target < 0:
            findings.append(Finding("error", current.offset, f"block {current.offset:#x} links to {target:#x}, "
                                                             "before the start of flash"))
            break
        block, why = parse_block(read, target)
        if block is None:
            findings += [Finding("error", current.offset, f"block {current.offset:#x} links ({current.link:+#x}) to "
                                                          f"{target:#x}, which is not a valid block")] + why
            break
        findings += why
        blocks.append(block)
        seen.add(block.offset)
        current = block
    return BlockLoop(window, blocks, closed, findings)


# --- encoding (our own tooling: tests and the example image) -------------------------------------------------------

def item_header(item_type: int, size: int, extra_byte: int = 0) -> int:
    return item_type | size << 8 | extra_byte << 24


def image_def_item(image_type: str = "exe", cpu: str = "riscv", security: str = "secure", chip: str = "rp2350",
                   tbyb: bool = False) -> list[int]:
    inverse = {v: k for k, v in IMAGE_TYPES.items()}
    flags = inverse[image_type]
    if image_type == "exe":
        flags |= {v: k for k, v in SECURITY.items()}[security] << 4
        flags |= {v: k for k, v in CPUS.items()}[cpu] << 8
        flags |= {v: k for k, v in CHIPS.items()}[chip] << 12
        flags |= 0x8000 if tbyb else 0
    return [ITEM_IMAGE_DEF | 1 << 8 | flags << 16]


def entry_point_item(pc: int, sp: int, sp_limit: int | None = None) -> list[int]:
    words = [pc, sp] + ([] if sp_limit is None else [sp_limit])
    return [item_header(ITEM_ENTRY_POINT, 1 + len(words))] + words


def vector_table_item(address: int) -> list[int]:
    return [item_header(ITEM_VECTOR_TABLE, 2), address]


def version_item(major: int, minor: int) -> list[int]:
    return [item_header(ITEM_VERSION, 2), major << 16 | minor]


def hash_def_item(block_words_hashed: int, hash_type: int = 1) -> list[int]:
    return [item_header(ITEM_HASH_DEF, 2, hash_type), block_words_hashed]


def load_map_item(entries: list[tuple[int, int, int]], absolute: bool = True) -> list[int]:
    """Absolute entries (storage, runtime, size); storage 0 is a zero-fill of `size` bytes."""
    words = [item_header(ITEM_LOAD_MAP, 1 + 3 * len(entries), len(entries) | (0x80 if absolute else 0))]
    for storage, runtime, size in entries:
        words += [storage, runtime, runtime + size if storage and absolute else size]
    return words


@dataclass
class PartitionSpec:
    """One partition as a layout file (picotool's partition JSON) describes it; sizes in bytes."""

    name: str | None
    start: int
    size: int
    id: int | None = None
    families: tuple[str, ...] = ("rp2350-riscv",)
    permissions: int = 0x3F          # s:rw ns:rw nsboot:rw
    link_type: int = 0
    link_value: int = 0
    flags: int = 0                   # any further flag bits (ignore on Arm/RISC-V boot, no reboot...)

    def words(self) -> list[int]:
        if self.start % SECTOR or self.size % SECTOR or self.size <= 0:
            raise ValueError(f"partition {self.name!r}: start and size must be whole 4 KiB sectors")
        first, last = self.start // SECTOR, (self.start + self.size) // SECTOR - 1
        flags = self.flags | self.link_type << 1 | self.link_value << 3
        flags |= family_flags(self.families)
        flags |= FLAG_HAS_ID if self.id is not None else 0
        flags |= FLAG_HAS_NAME if self.name else 0
        perms = self.permissions << 26
        words = [perms | last << 13 | first, perms | flags]
        if self.id is not None:
            words += [self.id & 0xFFFFFFFF, self.id >> 32]
        if self.name:
            raw = bytes([len(self.name)]) + self.name.encode("latin-1")
            raw += bytes(-len(raw) % 4)
            words += list(struct.unpack(f"<{len(raw) // 4}I", raw))
        return words


def family_flags(families) -> int:
    bits = 0
    for name in families:
        bits |= 1 << (FAMILY_FLAG_LSB + FAMILY_FLAG_NAMES.index(name))
    return bits


def partition_table_item(partitions: list[PartitionSpec], unpartitioned_families=("absolute",),
                         unpartitioned_permissions: int = 0x3F, singleton: bool = False) -> list[int]:
    body = [w for p in partitions for w in p.words()]
    header = item_header(ITEM_PARTITION_TABLE, 2 + len(body), len(partitions) | (0x80 if singleton else 0))
    return [header, unpartitioned_permissions << 26 | family_flags(unpartitioned_families)] + body


def encode_block(items: list[list[int]], link: int = 0) -> bytes:
    """START, the items, LAST with their word count, the link, END."""
    words = [MARKER_START] + [w for item in items for w in item]
    words += [ITEM_LAST | (len(words) - 1) << 8, link & 0xFFFFFFFF, MARKER_END]
    return struct.pack(f"<{len(words)}I", *words)


def encode_block_loop(blocks: list[list[list[int]]], offsets: list[int]) -> list[tuple[int, bytes]]:
    """Blocks at the given flash offsets, each linking to the next and the last back to the first."""
    out = []
    for n, (items, offset) in enumerate(zip(blocks, offsets)):
        nxt = offsets[(n + 1) % len(offsets)]
        out.append((offset, encode_block(items, nxt - offset)))
    return out


__all__ = ["FAMILY_IDS", "Block", "BlockLoop", "Finding", "Item", "Partition", "PartitionSpec", "PartitionTable",
           "encode_block", "encode_block_loop", "find_block_loop", "parse_block"]
