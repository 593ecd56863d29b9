"""Read the bytes an ELF puts at a run address (code and initialized data as flashed or loaded), without a target."""

from __future__ import annotations

from pathlib import Path

from ..errors import SymbolError

_SHF_ALLOC = 0x2


def read_elf_bytes(path: str | Path, address: int, size: int) -> bytes:
    """Up to `size` bytes at run address `address` from the ELF's loaded (SHF_ALLOC, PROGBITS) sections.

    Shorter than `size` where the section ends first; b"" where no loaded section holds `address`. A file that is
    not a readable ELF is a SymbolError: the caller decides whether a missing instruction is fatal.
    """
    import os

    from .elf_reader import open_elf, parse_elf

    with open_elf(path) as f:
        try:
            for section in parse_elf(f, os.fstat(f.fileno()).st_size).iter_sections():
                start = section["sh_addr"]
                if section["sh_type"] == "SHT_PROGBITS" and section["sh_flags"] & _SHF_ALLOC \
                        and start <= address < start + section["sh_size"]:
                    f.seek(section["sh_offset"] + address - start)   # seek, not .data(): vmlinux .text is megabytes
                    return f.read(min(size, start + section["sh_size"] - address))
        except Exception as e:   # pyelftools and construct raise many types on a damaged file; all mean the same
            raise SymbolError(f"{path}: cannot read code from it ({type(e).__name__}: {e}); "
                              "pass the ELF that ran") from None
    return b""
