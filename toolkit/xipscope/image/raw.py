"""Raw images and where they stand: `FILE@ADDR` (a RAM dump, e.g. gdb's `dump binary memory`) and a flash image given
as `FILE.uf2` or `FILE[@ADDR]`, read within the bounds of what they stand for."""

from __future__ import annotations

import os
from pathlib import Path

from ..chip.memory_map import ADDRESS_BITS, ADDRESS_SPACE
from ..chip.rp2350 import XIP_CS_SIZE
from ..errors import TargetError
from ..files import check_size, open_regular, read_bounded


def parse_dump_spec(spec: str) -> tuple[Path, int]:
    """Split `FILE@ADDR` (ADDR in C syntax: 0x80000000, or decimal)."""
    path, sep, address = spec.rpartition("@")
    if not sep or not path:
        raise TargetError(f"--dump wants FILE@ADDR (e.g. ram.bin@0x80000000), got {spec!r}")
    try:
        base = int(address, 0)
    except ValueError:
        raise TargetError(f"--dump {spec!r}: {address!r} is not an address; write it like 0x80000000") from None
    if not 0 <= base < ADDRESS_SPACE:
        raise TargetError(f"--dump {spec!r}: {address} is outside the chip's {ADDRESS_BITS}-bit address space "
                          f"(0..{ADDRESS_SPACE - 1:#x}); give the address of the image's first byte")
    return Path(path), base


def read_image_chunks(spec: str, default_base: int) -> tuple[list[tuple[int, bytes]], str]:
    """The bytes of flash image `FILE.uf2` or `FILE[@ADDR]` (a raw image; ADDR defaults to `default_base`) as
    (address, bytes) runs, plus a one-line description of what was read.

    Bounded by the flash they stand for, before a byte is read: a raw image by one chip select's 16 MiB XIP window,
    a UF2 by the blocks that fill it (256 bytes each, as picotool writes them)."""
    from .uf2 import BLOCK_SIZE, PAGE_SIZE, UF2_MAGIC, parse_uf2

    path, sep, address = spec.rpartition("@")
    if not sep or not path or not _looks_like_address(address):
        path, base = spec, None
    else:
        path, base = parse_dump_spec(spec)
    path = Path(path)
    with open_regular(path, "a flash image", error=TargetError) as f:
        head = f.read(len(UF2_MAGIC))
        is_uf2 = path.suffix.lower() == ".uf2" or head == UF2_MAGIC
        limit = XIP_CS_SIZE // PAGE_SIZE * BLOCK_SIZE if is_uf2 else XIP_CS_SIZE
        why = (f"a UF2 filling a {XIP_CS_SIZE >> 20} MiB flash chip select takes ({PAGE_SIZE} bytes a block)" if is_uf2
               else f"one flash chip select's XIP window holds ({XIP_CS_SIZE >> 20} MiB)")
        check_size(path, "a flash image", os.fstat(f.fileno()).st_size, limit, why, TargetError)
        data = head + read_bounded(f, path, "a flash image", limit - len(head), why, TargetError)
    if is_uf2:
        if base is not None:
            raise TargetError(f"{spec}: a UF2 file carries its own addresses; drop the @ADDR")
        uf2 = parse_uf2(data, str(path))
        families = ", ".join(uf2.family_names()) or "no family id"
        return uf2.chunks, f"{path} (UF2, {uf2.blocks} blocks, family {families})"
    base = default_base if base is None else base
    return [(base, data)], f"{path} (raw, {len(data)} bytes at {base:#x})"


def _looks_like_address(text: str) -> bool:
    try:
        int(text, 0)
        return True
    except ValueError:
        return False
