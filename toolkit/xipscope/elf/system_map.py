"""Parse a kernel System.map (`nm -n` output: ADDRESS TYPE NAME) into the same raw arrays an ELF gives."""

from __future__ import annotations

import io
import re
from pathlib import Path

from ..errors import SymbolError
from .elf_reader import BIND_GLOBAL, BIND_LOCAL, BIND_WEAK, KIND_FUNC, KIND_OBJECT, RawSymbols

_LINE = re.compile(rb"^([0-9a-fA-F]+) ([A-Za-z?]) (\S+)")
_TEXT, _DATA = frozenset("tTwW"), frozenset("dDbBrRgGsSvV")
MAX_ADDRESS_DIGITS = 16      # the index holds 64-bit addresses (nm prints 8 digits for rv32, 16 for 64-bit kernels)
# The largest System.map read: an RP2350 kernel's is under 1 MB, a 64-bit defconfig's ~5 MB. Each line costs ~60 bytes
# of Python objects while parsing (16 MiB of 6-byte lines peak near 200 MB), so this bounds memory too.
MAX_SYSTEM_MAP_BYTES = 16 << 20


def looks_like_system_map(data: bytes) -> bool:
    """True when the first line is `HEX LETTER NAME`; later lines are checked (and reported by number) when parsing."""
    first = data[:4096].lstrip().split(b"\n", 1)[0]
    return bool(_LINE.match(first))


def read_system_map(path: Path, data: bytes) -> RawSymbols:
    """Text symbols become functions sized up to the next symbol, data symbols objects; the rest (a, N, U) is skipped."""
    import numpy as np

    addrs: list[int] = []
    letters: list[str] = []
    names: list[str] = []
    all_addrs: list[int] = []
    width = 0
    for lineno, raw in enumerate(io.BytesIO(data), 1):     # line by line: no list of every line at once
        if not raw.strip():
            continue
        m = _LINE.match(raw)
        if m is None:
            raise SymbolError(f"{path}:{lineno}: expected a System.map line 'ADDRESS TYPE NAME'; found "
                              f"{raw[:80]!r}. Pass the System.map written by the same kernel build as the vmlinux.")
        hex_addr, letter = m.group(1), m.group(2).decode()
        if len(hex_addr.lstrip(b"0")) > MAX_ADDRESS_DIGITS:
            raise SymbolError(f"{path}:{lineno}: address {hex_addr[:24].decode()}{'...' if len(hex_addr) > 24 else ''}"
                              f" is wider than 64 bits ({len(hex_addr)} hex digits); expected at most "
                              f"{MAX_ADDRESS_DIGITS}. Pass the System.map written by the kernel build.")
        width = max(width, len(hex_addr))
        address = int(hex_addr, 16)
        if letter in "aAuUN":
            continue
        all_addrs.append(address)
        if letter in _TEXT or letter in _DATA:
            addrs.append(address)
            letters.append(letter)
            names.append(m.group(3).decode("utf-8", "replace"))
    if not addrs:
        raise SymbolError(f"{path}: expected text or data symbols in this System.map; found none. "
                          "Pass the System.map written by the kernel build.")

    address = np.asarray(addrs, dtype=np.uint64)
    kind = np.array([KIND_FUNC if c in _TEXT else KIND_OBJECT for c in letters], dtype=np.uint8)
    bind = np.array([BIND_WEAK if c in "wWvV" else BIND_GLOBAL if c.isupper() else BIND_LOCAL for c in letters],
                    dtype=np.uint8)
    # A symbol's extent is unknown here; the index sizes it up to the next symbol of any kind.
    return RawSymbols(address=address, size=np.zeros(len(addrs), dtype=np.uint64), kind=kind, bind=bind,
                      typed=np.zeros(len(addrs), dtype=bool), limit=np.full(len(addrs), 2**64 - 1, dtype=np.uint64),
                      names=names, arch="", word_size=8 if width > 8 else 4, little_endian=True)
