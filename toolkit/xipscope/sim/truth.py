"""Ground truth both twin cores (the Hazard3 core, hazard3/, and the Arm core, arm_core.py) record as the model runs:
one row per function, and the memory region each function lives in. These are a model's numbers, not a chip's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FunctionStats:
    """Ground truth for one function (or `?` for code outside every ELF function), exactly as the model ran it."""

    name: str
    start: int
    region: str
    instructions: int = 0
    cycles: int = 0
    fetch_accesses: int = 0
    fetch_hits: int = 0
    data_accesses: int = 0
    data_hits: int = 0

    @property
    def xip_accesses(self) -> int:
        return self.fetch_accesses + self.data_accesses

    @property
    def xip_hits(self) -> int:
        return self.fetch_hits + self.data_hits

    @property
    def xip_misses(self) -> int:
        return self.xip_accesses - self.xip_hits

    @property
    def hit_rate(self) -> float | None:
        return self.xip_hits / self.xip_accesses if self.xip_accesses else None


def region_of(address: int) -> str:
    """The RP2350 memory map's name for the region holding `address` (the map is loaded on first use)."""
    from ..chip.memory_map import get_memory_map
    global _RP_MAP
    if _RP_MAP is None:
        _RP_MAP = get_memory_map("rp2350")
    return _RP_MAP.region_name(address)


_RP_MAP = None
