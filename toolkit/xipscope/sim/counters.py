"""The twin's own mcycle/minstret (unicorn's read host-derived values) and the timing model behind mcycle.

Hazard3 facts (rp2350.md): mcountinhibit.cy (bit 0) and .ir (bit 2) reset to 1, so the counters do not count until
firmware clears them. Timing is a model, not a fact: every instruction costs one cycle (a cache hit is served in
XIP_CACHE_HIT_CYCLES = 1, like SRAM, so it adds nothing), and each XIP access that the cache does not serve stalls
for the region's miss penalty. The penalties are configurable; the defaults are assumptions, not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..chip import rp2350 as rp

MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Timing:
    """Miss penalties in cycles per XIP access not served by the cache (ASSUMED defaults; flash and PSRAM differ)."""

    flash_miss_cycles: int = 24
    psram_miss_cycles: int = 40


class PerfCounters:
    """mcycle / minstret as firmware sees them, derived from the twin's ground-truth totals.

    `now` arguments are the twin's running totals (cycles or instructions). A counter's CSR value is its value when
    it last changed (write, inhibit or un-inhibit) plus what ran since, while not inhibited.
    """

    CY, IR = 0, 2   # mcountinhibit bit positions

    def __init__(self) -> None:
        self.inhibit = rp.HAZARD3_MCOUNTINHIBIT_RESET
        self._value = {self.CY: 0, self.IR: 0}
        self._since = {self.CY: 0, self.IR: 0}

    def read(self, which: int, now: int) -> int:
        v = self._value[which]
        if not self.inhibit >> which & 1:
            v += now - self._since[which]
        return v & MASK64

    def write(self, which: int, value: int, now: int) -> None:
        self._value[which] = value & MASK64
        self._since[which] = now

    def set_inhibit(self, value: int, now_cycles: int, now_instret: int) -> None:
        nows = {self.CY: now_cycles, self.IR: now_instret}
        for which, now in nows.items():
            current = self.read(which, now)
            self._value[which] = current
            self._since[which] = now
        self.inhibit = value & 0b101
