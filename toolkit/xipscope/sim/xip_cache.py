"""The twin's XIP cache (a model): geometry, random eviction, maintenance operations and the CTR_HIT/CTR_ACC counters.

Facts (chip/rp2350.py, from rp2350.md "XIP cache and its counters"): 16 KiB, 2 ways, 8-byte lines, random eviction;
CTR_HIT counts accesses served from the cache, CTR_ACC every XIP access through any alias; both 32-bit, saturating,
cleared by any write. INFERRED choices the model makes explicit:
  - the cache is indexed and tagged by the physical XIP address (chip select + offset), so aliases share lines;
  - a miss fills an invalid way first, else a way drawn from a seeded PRNG (`rng.getrandbits(1)`);
  - a write through a cached alias looks up and allocates like a read (PSRAM is writable through the cache);
  - with CTRL.EN_SECURE clear, cached-alias accesses are counted but neither hit nor allocate;
  - set/way maintenance addresses: bits 12:3 pick the set, bit 13 the way (two 8 KiB banks);
  - pinned lines are never chosen for eviction; a pin is undone by invalidation.
"""

from __future__ import annotations

import random

from ..chip import rp2350 as rp

SETS = rp.XIP_CACHE_SETS
WAYS = rp.XIP_CACHE_WAYS
LINE = rp.XIP_CACHE_LINE
SET_SHIFT = LINE.bit_length() - 1            # 3
SET_MASK = SETS - 1                          # 1023
TAG_SHIFT = SET_SHIFT + SETS.bit_length() - 1  # 13
INVALID = -1


def set_and_tag(phys: int) -> tuple[int, int]:
    """Where a physical XIP address lives in the cache: (set index, tag). Hot hooks inline the same two shifts."""
    return (phys >> SET_SHIFT) & SET_MASK, phys >> TAG_SHIFT


class XipCache:
    """State of the XIP cache and its two counters. `ctr` is [accesses, hits] since the last clear, unsaturated."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.tags = [[INVALID] * SETS for _ in range(WAYS)]
        self.pinned = [[False] * SETS for _ in range(WAYS)]
        self.rng = random.Random(seed)
        self.on = [True]   # a list cell: the twin's hooks hold it
        self.ctr = [0, 0]
        # Bumped whenever a line is filled or invalidated: while it stands still, lines found present stay present.
        self.epoch = [0]

    # --- lookups ----------------------------------------------------------------------------------------------------
    def lookup(self, phys: int) -> bool:
        """One access through a cached alias: True on a hit; a miss allocates. Counts both counters."""
        ctr = self.ctr
        ctr[0] += 1
        if not self.on[0]:
            return False
        s = (phys >> SET_SHIFT) & SET_MASK
        t = phys >> TAG_SHIFT
        t0, t1 = self.tags
        if t0[s] == t or t1[s] == t:
            ctr[1] += 1
            return True
        self._fill(s, t)
        return False

    def count_uncached(self) -> bool:
        """One access through an uncached alias: counted, never a hit."""
        self.ctr[0] += 1
        return False

    def _fill(self, s: int, t: int) -> bool:
        """Allocate a line for tag t in set s; False if both ways are pinned (served without allocating)."""
        t0, t1 = self.tags
        if t0[s] == INVALID:
            way = 0
        elif t1[s] == INVALID:
            way = 1
        else:
            p0, p1 = self.pinned[0][s], self.pinned[1][s]
            if p0 and p1:
                return False
            way = 1 if p0 else 0 if p1 else self.rng.getrandbits(1)
        self.tags[way][s] = t
        self.epoch[0] += 1
        return True

    def contains(self, phys: int) -> bool:
        s, t = set_and_tag(phys)
        return self.tags[0][s] == t or self.tags[1][s] == t

    @property
    def enabled(self) -> bool:
        return self.on[0]

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self.on[0] = bool(value)

    # --- counters ---------------------------------------------------------------------------------------------------
    def read_counter(self, which: int) -> int:
        """CTR_ACC (0) or CTR_HIT (1) as the register reads: saturated at 0xffffffff."""
        return min(self.ctr[which], rp.XIP_COUNTER_MAX)

    def clear_counter(self, which: int) -> None:
        self.ctr[which] = 0

    # --- maintenance (writes to the 0x18000000 alias) -----------------------------------------------------------------
    def maintain(self, offset: int) -> str:
        """Apply the operation a write at `offset` into the maintenance alias selects; returns its name."""
        self.epoch[0] += 1
        op = rp.XIP_MAINT_OPS.get(offset & 7, "none")
        line_addr = offset & ~7
        if op in ("invalidate-set-way", "clean-set-way"):
            # Clean has no data effect in the model (memory is written through); E11: clean-set-way invalidates too.
            if op == "invalidate-set-way" or rp.ERRATUM_E11_CLEAN_SET_WAY_INVALIDATES:
                s = (line_addr >> SET_SHIFT) & SET_MASK
                way = (line_addr >> TAG_SHIFT) & (WAYS - 1)
                self.tags[way][s] = INVALID
                self.pinned[way][s] = False
        elif op == "invalidate-by-address":
            s, t = set_and_tag(rp.xip_physical(line_addr))
            for way in range(WAYS):
                if self.tags[way][s] == t:
                    self.tags[way][s] = INVALID
                    self.pinned[way][s] = False
        elif op == "pin":
            s, t = set_and_tag(rp.xip_physical(line_addr))
            tags, pinned = self.tags, self.pinned
            present = [w for w in range(WAYS) if tags[w][s] == t]
            invalid = [w for w in range(WAYS) if tags[w][s] == INVALID]
            unpinned = [w for w in range(WAYS) if not pinned[w][s]]
            way = (present or invalid or unpinned or [0])[0]
            self.tags[way][s] = t
            self.pinned[way][s] = True
        return op

    def invalidate_all(self) -> None:
        self.epoch[0] += 1
        for way in range(WAYS):   # in place: the twin's hooks hold references to these lists
            self.tags[way][:] = [INVALID] * SETS
            self.pinned[way][:] = [False] * SETS
