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


FIRMWARE_HINT = "Name an RP2350 firmware ELF (`xipscope sim --help` lists the example firmware shipped with xipscope)."
ARCHITECTURES = {"EM_RISCV": "RISC-V (rv32)", "EM_ARM": "Arm (Cortex-M33)"}


def elf_machine(path: str | Path) -> str:
    """The ELF's e_machine (EM_RISCV, EM_ARM, ...): which of the RP2350's cores a firmware is for."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    from .elf_reader import open_elf

    try:
        with open_elf(path, "a firmware ELF", FIRMWARE_HINT) as f:
            return ELFFile(f)["e_machine"]
    except (OSError, ELFError) as e:
        raise SymbolError(f"cannot read firmware ELF {path}: {e}") from None


class ElfImage:
    """A parsed 32-bit firmware ELF for one of the RP2350's architectures (pyelftools, read once)."""

    def __init__(self, path: str | Path, machine: str = "EM_RISCV"):
        import os

        from elftools.common.exceptions import ELFError

        from .elf_reader import ElfLayoutError, open_elf, parse_elf

        self.path = Path(path)
        try:
            with open_elf(self.path, "a firmware ELF", FIRMWARE_HINT) as f:
                elf = parse_elf(f, os.fstat(f.fileno()).st_size)    # sections it inflates are bounded
                if elf["e_machine"] != machine or elf.elfclass != 32:
                    hint = (f"the twin runs Arm firmware on its Arm core, behind its DAP face: pyocd://twin:{self.path}"
                            if elf["e_machine"] == "EM_ARM" else "build the firmware for it (firmware/)")
                    raise SymbolError(f"{self.path}: expected a 32-bit {ARCHITECTURES[machine]} ELF, found "
                                      f"{elf['e_machine']} ELF{elf.elfclass}; {hint}")
                self.entry = elf["e_entry"]
                self.segments = [Segment(s["p_paddr"], s["p_vaddr"], s.data(), s["p_memsz"], s["p_flags"])
                                 for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
                # Executable sections at their run addresses (VMA): code the firmware copies to SRAM/PSRAM at runtime.
                self.exec_sections = [(s.name, s["sh_addr"], s.data()) for s in elf.iter_sections()
                                      if s["sh_flags"] & 0x4 and s["sh_type"] == "SHT_PROGBITS"]
                self.symbols: dict[str, int] = {}
                symtab = elf.get_section_by_name(".symtab")
                for sym in symtab.iter_symbols() if symtab else ():
                    if sym.name and sym["st_shndx"] != "SHN_UNDEF":
                        self.symbols.setdefault(sym.name, sym["st_value"])
        except (OSError, ELFError, ElfLayoutError) as e:
            if isinstance(e, ELFError) and _is_system_map(self.path):
                raise SymbolError(f"{self.path}: a System.map (a list of symbols), where the twin needs an ELF: its "
                                  "code and entry point too. Pass the kernel's vmlinux (with --kernel Image), or the "
                                  "firmware's ELF") from None
            raise SymbolError(f"cannot read firmware ELF {self.path}: {e}") from None
        # The functions the ground truth counts per are the symbol index's pieces of code, so the twin and the
        # profiler name an address alike (assembly routines without a type or a size included: a kernel's
        # handle_exception and ret_from_exception would otherwise fall under `?`).
        from .symbols import load_symbols

        self.functions = [Function(name, start, end) for name, start, end in load_symbols(self.path).code_extents()]
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


def _is_system_map(path: Path) -> bool:
    from ..elf.system_map import looks_like_system_map

    try:
        with open(path, "rb") as f:
            return looks_like_system_map(f.read(4096))
    except OSError:
        return False
