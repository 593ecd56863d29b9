"""`xipscope dump`: the hexdump the seed's bootloader prints ("Rom dump", "Kernel dump", "Ram dump"), each line
labelled with its memory region and, given an ELF, the symbols it holds.

Lines are the seed's `hexdump()` format (psram-bootloader/src/bootloader.c: address, two groups of eight bytes,
`|ascii|`), started at the address asked for and cut where a region ends so that every line has one region.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import TargetError, XipscopeError

READ_BLOCK = 64 * 1024        # bytes per read_memory call: the transports pipeline large reads
LINE = 16

_KIND_LABELS = {"rom": "ROM", "xip-flash": "flash XIP", "xip-psram": "PSRAM XIP", "sram": "SRAM",
                "peripheral": "peripheral"}


def region_label(region) -> str:
    """`flash XIP cached`, `PSRAM XIP uncached`, `SRAM`, `ROM`, `peripheral`."""
    label = _KIND_LABELS[region.kind]
    if region.kind.startswith("xip-"):
        label += " cached" if region.cached else " uncached"
    return label


def _short_label(region) -> str:
    if region.kind.startswith("xip-"):
        return "XIP cached" if region.cached else "XIP uncached"
    return _KIND_LABELS[region.kind]


class DumpLine:
    """One line: up to 16 bytes at `address`, the memory_map.Region they are in, and the symbols they hold."""

    __slots__ = ("address", "data", "region", "symbol")   # a plain class: `xipscope --help` skips dataclasses

    def __init__(self, address: int, data: bytes, region, symbol: str | None = None):
        self.address = address
        self.data = data
        self.region = region
        self.symbol = symbol      # what the line's first byte belongs to, and symbols starting inside it

    def to_json(self) -> dict:
        return {"address": self.address, "hex": self.data.hex(), "region": self.region.name,
                "kind": region_label(self.region), "symbol": self.symbol}


def plan_ranges(memory_map, address: int, length: int) -> list[tuple[int, int, object]]:
    """[start, end, region] pieces covering the dump; a part outside every region is an error naming it."""
    if length <= 0:
        raise XipscopeError(f"dump length must be positive, got {length}")
    pieces = []
    a, end = address, address + length
    while a < end:
        region = memory_map.find(a)
        if region is None:
            before = max((r for r in memory_map if r.end <= a), key=lambda r: r.end, default=None)
            after = min((r for r in memory_map if r.start > a), key=lambda r: r.start, default=None)
            gap_end = min(end, after.start) if after else end
            near = "; ".join(f"{r.name} {r.start:#x}-{r.end:#x}" for r in (before, after) if r)
            raise XipscopeError(f"{a:#x}-{gap_end:#x} is in no region of the {memory_map.name} map (nearest: "
                                f"{near or 'none'}); dump inside a region, or pass --map for this board")
        stop = min(end, region.end)
        pieces.append((a, stop, region))
        a = stop
    return pieces


def read_blocks(target, pieces) -> Iterator[tuple[int, bytes, object]]:
    """(address, bytes, region) in blocks of up to READ_BLOCK; a failed read names its region."""
    for start, stop, region in pieces:
        for a in range(start, stop, READ_BLOCK):
            n = min(READ_BLOCK, stop - a)
            try:
                data = target.read_memory(a, n)
            except TargetError as e:
                raise TargetError(f"reading {n} bytes at {a:#x} in {region.name} ({region_label(region)}) "
                                  f"failed: {e}") from None
            if len(data) != n:
                raise TargetError(f"reading {n} bytes at {a:#x} in {region.name}: the target returned {len(data)}")
            yield a, data, region


def dump_lines(target, address: int, length: int, memory_map, symbols=None,
               raw=None, progress=None) -> Iterator[DumpLine]:
    """The dump's lines as the blocks arrive (so an error later keeps the lines before it); `raw` gets the bytes;
    progress(bytes read, length) after each block read."""
    pieces = plan_ranges(memory_map, address, length)
    done = 0
    for block_start, data, region in read_blocks(target, pieces):
        done += len(data)
        if progress is not None:
            progress(done, length)
        if raw is not None:
            raw.write(data)
        # Blocks start at a piece's start plus a multiple of READ_BLOCK (a multiple of 16), so lines step by 16 from
        # the address asked for, or from the start of the region a line crosses into.
        for a in range(block_start, block_start + len(data), LINE):
            chunk = data[a - block_start:a - block_start + LINE]
            yield DumpLine(a, chunk, region, _symbol_text(symbols, a, len(chunk)) if symbols else None)


def _symbol_text(symbols, address: int, size: int) -> str | None:
    parts = []
    holder = symbols.containing(address)
    if holder is not None:
        off = address - holder.address
        parts.append(holder.name if off == 0 else f"{holder.name}+{off:#x}")
    for s in symbols.symbols_in(address + 1 if holder is not None and holder.address == address else address,
                                address + size):
        if holder is not None and s.name == holder.name and s.address == holder.address:
            continue
        parts.append(f"{s.name}@{s.address:#x}")
    return ", ".join(dict.fromkeys(parts)) or None


_PRINTABLE = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))   # C isprint() in the C locale, else '.'


def format_line(line: DumpLine) -> str:
    """The seed's hexdump line (`%08x  `, a space before each group of 8, `%02x ` per byte, ` |ascii|`), then the
    region and symbols."""
    data = line.data
    if len(data) == LINE:
        hex_part = f" {data[:8].hex(' ')}  {data[8:].hex(' ')} "
    else:                         # a short line (the end, or where a region ends): keep the columns
        hex_part = "".join((" " if i % 8 == 0 else "") + (f"{data[i]:02x} " if i < len(data) else "   ")
                           for i in range(LINE))
    text = data.translate(_PRINTABLE).decode("ascii").ljust(LINE)
    out = f"{line.address:08x}  {hex_part} |{text}|  {line.region.name} [{_short_label(line.region)}]"
    return out + (f"  <{line.symbol}>" if line.symbol else "")
