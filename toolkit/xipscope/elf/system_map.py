"""Parse a kernel System.map (`nm -n` output: ADDRESS TYPE NAME) into the same raw arrays an ELF gives."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import SymbolError
from .elf_reader import BIND_GLOBAL, BIND_LOCAL, BIND_WEAK, KIND_FUNC, KIND_OBJECT, RawSymbols

_LINE = re.compile(rb"^([0-9a-fA-F]+) ([A-Za-z?]) (\S+)")
_TEXT, _DATA = frozenset("tTwW"), frozenset("dDbBrRgGsSvV")


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
    for lineno, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        m = _LINE.match(raw)
        if m is None:
            raise SymbolError(f"{path}:{lineno}: expected a System.map line 'ADDRESS TYPE NAME'; found "
                              f"{raw[:80]!r}. Pass the System.map written by the same kernel build as the vmlinux.")
        hex_addr, letter = m.group(1), m.group(2).decode()
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
