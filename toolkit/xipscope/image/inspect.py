"""`inspect_flash(flash)`: the block loops at flash 0 and in each partition, the partition table, the Linux layout."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..chip import rp2350 as rp
from ..errors import SymbolError, TargetError
from .picobin import (SEARCH_WINDOW, BlockLoop, Finding, Item, Partition, PartitionTable, find_block_loop,
                      permission_text)

FDT_MAGIC = 0xD00DFEED                        # big-endian, devicetree spec 5.2
RISCV_IMAGE_MAGIC = b"RISCV\0\0\0"            # Linux Documentation/riscv/boot-image-header.rst, offset 0x30
RISCV_IMAGE_MAGIC2 = b"RSC\x05"               # offset 0x38
CRAMFS_MAGIC = 0x28CD3D45                     # include/uapi/linux/cramfs_fs.h, little-endian at offset 0
CRAMFS_SIGNATURE = b"Compressed ROMFS"        # at offset 16

ROLE_NAMES = {"dtb": "device tree (dtb)", "kernel": "kernel (xipImage)", "rootfs": "root filesystem (cramfs)"}
_NAME_HINTS = {"dtb": ("dtb", "fdt", "devicetree", "dt"), "kernel": ("linux", "kernel", "xipimage", "image"),
               "rootfs": ("rootfs", "root", "cramfs")}


@dataclass
class PartitionReport:
    partition: Partition
    loop: BlockLoop | None          # None when the source has no bytes at the partition's start
    content: str | None             # what its first bytes are, when recognised
    content_kind: str | None        # "dtb" | "kernel" | "rootfs" | None

    def to_json(self) -> dict:
        return {**self.partition.to_json(), "in_source": self.loop is not None, "content": self.content,
                "content_kind": self.content_kind, "block_loop": self.loop.to_json() if self.loop else None}


@dataclass
class LinuxRole:
    role: str                       # dtb | kernel | rootfs
    partition: Partition
    evidence: str

    @property
    def xip_address(self) -> int:
        return rp.XIP_BASE + self.partition.start

    def to_json(self) -> dict:
        return {"role": self.role, "partition": self.partition.index, "name": self.partition.name,
                "xip_address": self.xip_address, "evidence": self.evidence}


@dataclass
class FlashReport:
    source: str
    loop: BlockLoop
    table: PartitionTable | None
    partitions: list[PartitionReport]
    linux: list[LinuxRole]
    findings: list[Finding] = field(default_factory=list)   # beyond the loops' own

    def all_findings(self) -> list[Finding]:
        out = list(self.loop.findings)
        for p in self.partitions:
            if p.loop is not None:
                out += p.loop.findings
        return out + self.findings

    def to_json(self) -> dict:
        return {"source": self.source, "block_loop": self.loop.to_json(),
                "partition_table": self.table.to_json() if self.table else None,
                "partitions": [p.to_json() for p in self.partitions],
                "linux": [r.to_json() for r in self.linux],
                "findings": [f.to_json() for f in self.all_findings()]}


def identify_content(head: bytes) -> tuple[str | None, str | None]:
    """(kind, description) for the first bytes of a partition: a dtb, a RISC-V Linux image, a cramfs."""
    if len(head) >= 8 and struct.unpack_from(">I", head)[0] == FDT_MAGIC:
        return "dtb", f"flattened device tree, totalsize {struct.unpack_from('>I', head, 4)[0]} bytes"
    if len(head) >= 0x3C and head[0x30:0x38] == RISCV_IMAGE_MAGIC and head[0x38:0x3C] == RISCV_IMAGE_MAGIC2:
        size = struct.unpack_from("<Q", head, 0x10)[0]
        return "kernel", f"RISC-V Linux image header, image size {size} bytes"
    if len(head) >= 32 and struct.unpack_from("<I", head)[0] == CRAMFS_MAGIC and head[16:32] == CRAMFS_SIGNATURE:
        return "rootfs", f"cramfs, {struct.unpack_from('<I', head, 4)[0]} bytes"
    return None, None


def elf_entry(path: str | Path) -> int:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    from ..elf.elf_reader import open_elf

    try:
        with open_elf(path, "the kernel ELF") as f:
            return ELFFile(f)["e_entry"]
    except (OSError, ELFError) as e:
        raise SymbolError(f"cannot read {path} as an ELF: {e}; --elf takes the kernel's vmlinux") from None


def inspect_flash(flash, elf: str | Path | None = None, progress=None) -> FlashReport:
    """Decode what the boot ROM would find in `flash` (a FileFlash or TargetFlash).

    progress(bytes searched, bytes to search) after each search window (the first 4 KiB of flash, then of each
    partition): the total grows once the partition table says how many partitions there are."""
    show = progress or (lambda done, total: None)
    show(0, SEARCH_WINDOW)
    loop = find_block_loop(flash.read, 0)
    if not loop.blocks and not flash.read(0, 4):
        loop.findings[:] = [Finding("note", 0, "the source holds no bytes at flash offset 0")]
    elif not loop.blocks:
        loop.findings.append(Finding("warning", 0, "no valid block loop in the first 4 KiB of flash: the boot ROM "
                                                   "finds no IMAGE_DEF or PARTITION_TABLE there"))
    table = loop.partition_table
    findings: list[Finding] = []
    tables = [b for b in loop.blocks if b.kind == "PARTITION_TABLE"]
    if len(tables) > 1:
        findings.append(Finding("warning", tables[1].offset, f"{len(tables)} PARTITION_TABLE blocks in one loop; "
                                                             "decoded the first"))
    reports = []
    windows = [max(0, min(SEARCH_WINDOW, p.end - p.start)) for p in (table.partitions if table else [])]
    searched, to_search = SEARCH_WINDOW, SEARCH_WINDOW + sum(windows)
    show(searched, to_search)
    for p, window in zip(table.partitions if table else [], windows):
        try:
            head = flash.read(p.start, window) if window > 0 else b""
            part_loop = find_block_loop(flash.read, p.start, window) if head else None
        except TargetError as e:   # keep what was read so far: the loop at 0 and the partitions before this one
            findings.append(Finding("error", p.start, f"{p.label}: reading its first {window} bytes failed: {e}"))
            head, part_loop = b"", None
        kind, content = identify_content(head[:64])
        if part_loop is not None and not part_loop.blocks:
            # A data partition (a dtb, a filesystem) has no block loop; that is worth a line, not a finding.
            part_loop.findings = [f for f in part_loop.findings if f.severity != "note"]
        reports.append(PartitionReport(p, part_loop, content, kind))
        searched += window
        show(searched, to_search)
    linux, linux_findings = _linux_layout(reports, elf)
    return FlashReport(flash.description, loop, table, reports, linux, findings + linux_findings)


def _linux_layout(reports: list[PartitionReport], elf) -> tuple[list[LinuxRole], list[Finding]]:
    roles: list[LinuxRole] = []
    findings: list[Finding] = []
    entry = elf_entry(elf) if elf else None
    for role in ("dtb", "kernel", "rootfs"):
        found = None
        if role == "kernel" and entry is not None:
            in_flash = rp.xip_alias(entry) in ("cached", "nocache", "untranslated")
            if in_flash and rp.xip_physical(entry) < rp.XIP_CS1_OFFSET:
                offset = rp.xip_physical(entry)
                found = next((LinuxRole(role, r.partition, f"holds the ELF entry {entry:#x}") for r in reports
                              if r.partition.start <= offset < r.partition.end), None)
            if found is None:
                findings.append(Finding("warning", None, f"the ELF's entry {entry:#x} is in no partition of the "
                                                         "table: is this the kernel flashed here (an XIP kernel "
                                                         "enters in flash)?"))
        if found is None:
            found = next((LinuxRole(role, r.partition, r.content) for r in reports if r.content_kind == role), None)
        if found is None:
            found = next((LinuxRole(role, r.partition, "by its name only; its first bytes are not recognised")
                          for r in reports if r.partition.name and r.partition.name.lower() in _NAME_HINTS[role]),
                         None)
        if found is not None:
            roles.append(found)
    return roles, findings


# --- text -----------------------------------------------------------------------------------------------------------

def _item_text(item: Item) -> str:
    f = item.fields
    if item.name == "IMAGE_DEF" and "image_type" in f:
        if f["image_type"] != "exe":
            return f"IMAGE_DEF {f['image_type']}"
        tbyb = ", try-before-you-buy" if f["tbyb"] else ""
        return f"IMAGE_DEF exe, {f['cpu']}, {f['chip']}, security {f['security']}{tbyb}"
    if item.name == "ENTRY_POINT" and "pc" in f:
        limit = f" sp limit {f['sp_limit']:#010x}" if "sp_limit" in f else ""
        return f"ENTRY_POINT pc {f['pc']:#010x} sp {f['sp']:#010x}{limit}"
    if item.name == "VECTOR_TABLE" and "address" in f:
        return f"VECTOR_TABLE at {f['address']:#010x}"
    if item.name == "VERSION" and "major" in f:
        return f"VERSION {f['major']}.{f['minor']}" + (f" rollback {f['rollback']}" if "rollback" in f else "")
    if item.name == "HASH_DEF" and "hash_type" in f:
        return f"HASH_DEF {f['hash_type']} over {f['block_words_hashed']} block words"
    if item.name == "LOAD_MAP" and "entries" in f:
        parts = []
        for e in f["entries"]:
            src = "zero-fill" if e.get("storage") is None and "storage_rel" not in e else (
                f"{e['storage']:#x}" if "storage" in e else f"item{e['storage_rel']:+#x}")
            parts.append(f"{src} -> {e['runtime']:#x} ({e['size']} bytes)")
        return f"LOAD_MAP ({'absolute' if f['absolute'] else 'relative'}): " + "; ".join(parts)
    if item.name == "PARTITION_TABLE" and f.get("table") is not None:
        t = f["table"]
        return f"PARTITION_TABLE {t.count} partitions{' (singleton)' if t.singleton else ''}"
    return f"{item.name} ({len(item.words)} words)"


def _loop_lines(loop: BlockLoop, indent: str) -> list[str]:
    if not loop.blocks:
        return [f"{indent}no block loop"]
    state = "closed" if loop.closed else "NOT closed"
    lines = [f"{indent}block loop from {loop.window:#x}: {len(loop.blocks)} block(s), {state}"]
    for b in loop.blocks:
        lines.append(f"{indent}  block at {b.offset:#x} (XIP {rp.XIP_BASE + b.offset:#010x}), {b.size_words} words, "
                     f"link {b.link:+#x} -> {b.next_offset:#x}")
        lines += [f"{indent}    {_item_text(i)}" for i in b.items]
    return lines


def format_report(report: FlashReport) -> str:
    lines = [f"flash image: {report.source}", "flash offset 0 (XIP 0x10000000):"]
    lines += _loop_lines(report.loop, "  ")
    t = report.table
    if t is not None:
        lines.append(f"partition table: {len(t.partitions)} partition(s){', singleton' if t.singleton else ''}; "
                     f"unpartitioned space: {permission_text(t.unpartitioned_word >> 26)}, families "
                     f"{','.join(t.unpartitioned_families) or '-'}")
        lines.append(f"  {'#':>2} {'name':<10} {'id':>4}  {'flash range':<19} {'XIP address':<11} {'size':>7}  "
                     f"{'permissions':<20} {'families':<14} link")
        for r in report.partitions:
            p = r.partition
            link = "-" if p.link_type == "none" else (
                f"B of {p.link_value}" if p.link_type == "a-partition" else f"owner {p.link_value}")
            size_k = (p.end - p.start) // 1024
            lines.append(f"  {p.index:>2} {p.name or '-':<10} {'-' if p.id is None else p.id:>4}  "
                         f"{p.start:#08x}-{p.end:#08x}   {rp.XIP_BASE + p.start:#010x}  {size_k:>6}K  "
                         f"{permission_text(p.permissions):<20} {','.join(p.families) or '-':<14} {link}")
        words = [f"header {t.header_word:#010x}", f"unpartitioned {t.unpartitioned_word:#010x}"]
        words += [f"#{r.partition.index} {r.partition.location_word:#010x} {r.partition.flags_word:#010x}"
                  for r in report.partitions]
        lines.append("  words: " + "; ".join(words))
        for r in report.partitions:
            where = f"partition {r.partition.index} {r.partition.name or ''}".rstrip()
            if r.loop is None:
                lines.append(f"{where}: not in this source")
                continue
            lines.append(f"{where}: {r.content or 'contents not recognised'}"
                         + ("" if r.loop.blocks else "; no block loop in its first 4 KiB"))
            if r.loop.blocks:
                lines += _loop_lines(r.loop, "  ")
    elif report.loop.blocks:
        lines.append("partition table: none in the loop at flash 0")
    if report.linux:
        lines.append("Linux layout:")
        for role in report.linux:
            lines.append(f"  {ROLE_NAMES[role.role]:<25} {role.partition.label:<22} at {role.xip_address:#010x}  "
                         f"({role.evidence})")
    findings = report.all_findings()
    lines.append("findings:" if findings else "findings: none")
    for f in findings:
        at = f" at {f.address:#x}" if f.address is not None else ""
        lines.append(f"  {f.severity}{at}: {f.message}")
    return "\n".join(lines) + "\n"
