"""What the twin needs from a firmware ELF: loadable segments, executable sections, entry point and function symbols."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from ..errors import SymbolError


@dataclass(frozen=True)
class Segment:
    paddr: int       # where the image's bytes sit (the load address, LMA), like qemu -kernel
    vaddr: int
    data: bytes      # p_filesz bytes
    memsz: int
    flags: int


@dataclass(frozen=True)
class Function:
    name: str
    start: int
    end: int


class ElfImage:
    """A parsed RV32 firmware ELF (pyelftools, read once)."""

    def __init__(self, path: str | Path):
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                elf = ELFFile(f)
                if elf["e_machine"] != "EM_RISCV" or elf.elfclass != 32:
                    raise SymbolError(f"{self.path}: expected a 32-bit RISC-V ELF, found {elf['e_machine']} "
                                      f"ELF{elf.elfclass}; build the firmware for rv32 (firmware/Makefile)")
                self.entry = elf["e_entry"]
                self.segments = [Segment(s["p_paddr"], s["p_vaddr"], s.data(), s["p_memsz"], s["p_flags"])
                                 for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
                # Executable sections at their run addresses (VMA): code the firmware copies to SRAM/PSRAM at runtime.
                self.exec_sections = [(s.name, s["sh_addr"], s.data()) for s in elf.iter_sections()
                                      if s["sh_flags"] & 0x4 and s["sh_type"] == "SHT_PROGBITS"]
                funcs: dict[int, Function] = {}
                self.symbols: dict[str, int] = {}
                symtab = elf.get_section_by_name(".symtab")
                for sym in symtab.iter_symbols() if symtab else ():
                    if sym.name and sym["st_shndx"] != "SHN_UNDEF":
                        self.symbols.setdefault(sym.name, sym["st_value"])
                    if sym["st_info"]["type"] == "STT_FUNC" and sym["st_size"] > 0 and sym.name:
                        start = sym["st_value"] & ~1
                        if start not in funcs or sym["st_info"]["bind"] == "STB_GLOBAL":
                            funcs[start] = Function(sym.name, start, start + sym["st_size"])
        except (OSError, ELFError) as e:
            raise SymbolError(f"cannot read firmware ELF {self.path}: {e}") from None
        self.functions = sorted(funcs.values(), key=lambda fn: fn.start)
        self._starts = [fn.start for fn in self.functions]

    def function_index(self, address: int) -> int:
        """Index into `functions` of the function holding `address`, or -1."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self.functions[i].end:
            return i
        return -1

    def symbol(self, name: str) -> int:
        try:
            return self.symbols[name]
        except KeyError:
            raise SymbolError(f"{self.path}: no symbol {name!r}") from None
