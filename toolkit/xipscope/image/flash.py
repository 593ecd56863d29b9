"""Flash bytes by offset from the start of CS0 (offset 0 = XIP 0x10000000), from a file, a UF2 or a live target."""

from __future__ import annotations

import bisect

from ..chip import rp2350 as rp
from ..errors import TargetError
from .raw import read_image_chunks

FLASH_WINDOW = rp.XIP_CS_SIZE     # 16 MiB of CS0 behind each XIP alias


def flash_offset(address: int) -> int:
    """A CS0 XIP address in any alias (0x10.., 0x14.., 0x1c..) or a plain offset below 16 MiB, as a flash offset."""
    if address < FLASH_WINDOW:
        return address
    alias = rp.xip_alias(address)
    phys = rp.xip_physical(address)
    if alias in (None, "maintenance") or phys >= rp.XIP_CS1_OFFSET:
        raise TargetError(f"{address:#x} is not a flash (CS0) address: expected 0x10000000-0x10ffffff or one of "
                          "its aliases (0x14.., 0x1c..), or an offset below 16 MiB")
    return phys


class FileFlash:
    """Runs of bytes at flash offsets (a raw image or a UF2's blocks); gaps hold nothing."""

    def __init__(self, chunks: list[tuple[int, bytes]], description: str):
        self.description = description
        runs = sorted((flash_offset(a), bytes(d)) for a, d in chunks if d)
        for start, data in runs:
            if start + len(data) > FLASH_WINDOW:
                raise TargetError(f"{description}: {len(data)} bytes at flash offset {start:#x} run past the "
                                  f"{FLASH_WINDOW >> 20} MiB flash window (CS0, XIP 0x10000000-0x10ffffff); "
                                  "is the image's address right?")
        self._starts = [s for s, _ in runs]
        self._runs = runs

    @classmethod
    def from_spec(cls, spec: str) -> "FileFlash":
        """`FILE.uf2` or `FILE[@ADDR]` (ADDR an XIP address or flash offset; default 0x10000000)."""
        chunks, description = read_image_chunks(spec, rp.XIP_BASE)
        return cls(chunks, description)

    def read(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes from `offset`, gaps between runs read as erased flash (0xff); shorter where the image
        ends, empty if no run overlaps the range."""
        if size <= 0:
            return b""
        end = offset + size
        i = max(bisect.bisect_right(self._starts, offset) - 1, 0)
        out = bytearray()
        while i < len(self._runs) and self._runs[i][0] < end:
            start, data = self._runs[i]
            lo, hi = max(start, offset), min(start + len(data), end)
            if hi > lo:
                out += b"\xff" * (lo - offset - len(out)) + data[lo - start:hi - start]
            i += 1
        return bytes(out)

    @property
    def extent(self) -> tuple[int, int]:
        if not self._runs:
            return 0, 0
        return self._runs[0][0], self._runs[-1][0] + len(self._runs[-1][1])


class TargetFlash:
    """Flash read over a debugger through the uncached, no-allocate alias (0x14000000): no XIP cache lines disturbed."""

    def __init__(self, target):
        self.target = target
        self.description = f"{target.url} (flash read through the uncached alias {rp.XIP_ALIASES['nocache']:#x})"
        self._cache: dict[tuple[int, int], bytes] = {}

    def read(self, offset: int, size: int) -> bytes:
        size = min(size, FLASH_WINDOW - offset)
        if size <= 0 or offset < 0:
            return b""
        key = (offset, size)
        if key not in self._cache:
            self._cache[key] = self.target.read_memory(rp.XIP_ALIASES["nocache"] + offset, size)
        return self._cache[key]
