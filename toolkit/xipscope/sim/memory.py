"""The RP2350's memories as the twin holds them (a model), shared by its RISC-V and Arm cores: ROM, flash and PSRAM
(the same bytes at every XIP alias: the aliases differ only in how the cache treats them) and SRAM."""

from __future__ import annotations

import ctypes

from ..chip import rp2350 as rp
from ..errors import TargetError


class TwinMemory:
    def __init__(self):
        self.rom = ctypes.create_string_buffer(rp.ROM_SIZE)
        self.flash = ctypes.create_string_buffer(rp.FLASH_SIZE_PICO_PLUS_2)
        self.psram = ctypes.create_string_buffer(rp.PSRAM_SIZE_PICO_PLUS_2)
        self.sram = ctypes.create_string_buffer(rp.SRAM_END - rp.SRAM_BASE)

    def map_into(self, uc) -> None:
        """Map every memory into a unicorn instance, at each of its addresses. Flash is read-only (CTRL.WRITABLE_M0 is
        clear at reset); PSRAM is writable (WRITABLE_M1, as Linux sets it)."""
        from unicorn import UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_READ

        def map_ptr(buf, address: int, perms: int) -> None:
            uc.mem_map_ptr(address, len(buf), perms, ctypes.addressof(buf))

        rx = UC_PROT_READ | UC_PROT_EXEC
        map_ptr(self.rom, rp.ROM_BASE, rx)
        for alias in ("cached", "nocache", "untranslated"):
            base = rp.XIP_ALIASES[alias]
            map_ptr(self.flash, base + rp.XIP_CS0_OFFSET, rx)
            map_ptr(self.psram, base + rp.XIP_CS1_OFFSET, UC_PROT_ALL)
        map_ptr(self.sram, rp.SRAM_BASE, UC_PROT_ALL)

    def backing(self, address: int):
        """(buffer, offset) holding `address`, or None for MMIO and unmapped addresses."""
        if rp.SRAM_BASE <= address < rp.SRAM_END:
            return self.sram, address - rp.SRAM_BASE
        if rp.ROM_BASE <= address < rp.ROM_BASE + rp.ROM_SIZE:
            return self.rom, address - rp.ROM_BASE
        alias = rp.xip_alias(address)
        if alias is not None and alias != "maintenance":
            phys = rp.xip_physical(address)
            if phys < rp.XIP_CS1_OFFSET:
                return (self.flash, phys) if phys < len(self.flash) else None
            off = phys - rp.XIP_CS1_OFFSET
            return (self.psram, off) if off < len(self.psram) else None
        return None

    def load_segments(self, elf) -> None:
        """Put an ElfImage's loadable bytes at their load addresses (LMA), like `qemu -kernel`."""
        for seg in elf.segments:
            if not seg.data:
                continue
            where = self.backing(seg.paddr)
            end = self.backing(seg.paddr + len(seg.data) - 1)
            if where is None or end is None or end[0] is not where[0]:
                raise TargetError(f"{elf.path}: segment at {seg.paddr:#x} (+{len(seg.data):#x}) is not inside "
                                  "ROM, flash, PSRAM or SRAM of the RP2350 twin; link it there")
            ctypes.memmove(ctypes.addressof(where[0]) + where[1], seg.data, len(seg.data))
