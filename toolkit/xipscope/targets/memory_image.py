"""A raw RAM image at a base address (`--dump FILE@ADDR`), e.g. written by gdb's `dump binary memory`."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from ..chip.memory_map import ADDRESS_BITS, ADDRESS_SPACE
from ..errors import CapabilityError, TargetError
from ..files import open_regular
from ..image.raw import parse_dump_spec
from .base import MEMORY


class MemoryImageTarget:
    """Memory only: reads outside the image are errors naming the range the image covers."""

    capabilities = frozenset({MEMORY})

    def __init__(self, path: Path | str, base: int):
        self.path = Path(path)
        self.base = base
        self.url = f"dump://{self.path}@{base:#x}"
        # mapped, not read: a 2 GiB dram image costs address space, not memory
        with open_regular(self.path, "a RAM image", max_size=ADDRESS_SPACE - base, error=TargetError,
                          why=f"fits between {base:#x} and the end of the chip's {ADDRESS_BITS}-bit address space") as f:
            size = os.fstat(f.fileno()).st_size
            try:
                self._data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            except OSError as e:
                raise TargetError(f"cannot map RAM image {self.path}: {e.strerror}") from None

    @classmethod
    def from_spec(cls, spec: str) -> "MemoryImageTarget":
        return cls(*parse_dump_spec(spec))

    @property
    def end(self) -> int:
        return self.base + len(self._data)

    def read_memory(self, address: int, size: int) -> bytes:
        if size < 0 or address < self.base or address + size > self.end:
            raise TargetError(
                f"{self.url}: read of {size} bytes at {address:#x} falls outside the image "
                f"({self.base:#x}..{self.end:#x}); dump a range that covers it")
        start = address - self.base
        return bytes(self._data[start:start + size])

    def _no(self, what: str):
        raise CapabilityError(f"{self.url} is a RAM image: it has no {what}; use a live target (rsp://...) for that")

    def read_registers(self) -> dict[str, int]:
        self._no("registers")

    def read_register(self, name: str) -> int:
        self._no("registers")

    def halt(self) -> None:
        self._no("run control")

    def resume(self) -> None:
        self._no("run control")

    def state(self) -> str:
        return "halted"

    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            self._data.close()
