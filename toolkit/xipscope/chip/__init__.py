"""Chip knowledge as data: memory maps (`memory_map`), RP2350 register facts (`rp2350`), RISC-V names (`riscv`)."""

from .memory_map import BUILTIN_MAPS, KINDS, MemoryMap, Region, get_memory_map

__all__ = ["BUILTIN_MAPS", "KINDS", "MemoryMap", "Region", "get_memory_map"]
