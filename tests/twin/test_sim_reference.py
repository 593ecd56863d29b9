"""The twin's XIP counters agree with an independent reference model of the cache replaying the recorded accesses."""

from __future__ import annotations

import random
from pathlib import Path

from xipscope.chip import rp2350 as rp
from xipscope.sim.hazard3 import Machine

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


class ReferenceCache:
    """Written from the datasheet facts alone, without the twin's code: per set, a list of (tag, pinned) for the
    ways in fill order; same documented policy (an invalid way first, else rng.getrandbits(1), pinned ways kept)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.sets: dict[int, list] = {}
        self.accesses = 0
        self.hits = 0

    def access(self, phys: int, cacheable: bool) -> None:
        self.accesses += 1
        if not cacheable:
            return
        line = phys // rp.XIP_CACHE_LINE
        index, tag = line % rp.XIP_CACHE_SETS, line // rp.XIP_CACHE_SETS
        ways = self.sets.setdefault(index, [None] * rp.XIP_CACHE_WAYS)
        if any(w is not None and w[0] == tag for w in ways):
            self.hits += 1
            return
        if None in ways:
            victim = ways.index(None)
        else:
            unpinned = [i for i, w in enumerate(ways) if not w[1]]
            if not unpinned:
                return
            victim = unpinned[0] if len(unpinned) == 1 else self.rng.getrandbits(1)
        ways[victim] = (tag, False)


def replay(trace, seed: int) -> ReferenceCache:
    ref = ReferenceCache(seed)
    for kind, addr, cacheable in trace:
        if kind == "maint":
            raise AssertionError("this firmware does no cache maintenance")
        ref.access(addr, cacheable)
    return ref


def ground_truth_totals(m: Machine) -> tuple[int, int]:
    rows = m.function_stats()
    return sum(r.xip_accesses for r in rows), sum(r.xip_hits for r in rows)


def test_counters_agree_with_reference_on_xipbench_trace():
    m = Machine(FIRMWARE / "xipbench.elf", trace=True, seed=7)
    m.cache.ctr[:] = [0, 0]
    # Firmware clears the counters at each phase: keep our own uncleared tally from the trace instead.
    r = m.run(600_000)   # boot, both flash phases and the copy to SRAM
    assert r.reason == "budget"
    ref = replay(m.trace, seed=7)
    acc, hit = ground_truth_totals(m)
    assert (ref.accesses, ref.hits) == (acc, hit)
    regions = m.region_stats()
    assert regions["flash"]["accesses"] + regions["psram"]["accesses"] == acc
    assert regions["flash"]["hits"] + regions["psram"]["hits"] == hit
    assert hit < acc   # the thrashing phase really missed


def test_counters_agree_with_reference_from_reset_on_probe_patterns():
    m = Machine(FIRMWARE / "xipprobe.elf", trace=True, seed=3)
    m.run(1_000_000)
    addrs = [0x10400000 + 8 * ((i * 2654435761) % 8192) for i in range(3000)]   # 64 KiB of lines, scattered
    addrs += [rp.XIP_ALIASES["nocache"] + (a - rp.XIP_BASE) for a in addrs[:200]]
    addrs += [0x11000000 + (a & 0xFFFF) for a in addrs[:500]]
    m.write_memory(0x20040000, b"".join(a.to_bytes(4, "little") for a in addrs))
    m.call("probe_read_list", 0x20040000, len(addrs))
    ref = replay(m.trace, seed=3)
    # Nothing cleared the counters: CTR_ACC / CTR_HIT as firmware would read them equal the reference's totals.
    ctr_acc = int.from_bytes(m.read_memory(rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_ACC, 4), "little")
    ctr_hit = int.from_bytes(m.read_memory(rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT, 4), "little")
    assert (ctr_acc, ctr_hit) == (ref.accesses, ref.hits)
    assert (ctr_acc, ctr_hit) == ground_truth_totals(m)
    assert 0 < ref.hits < ref.accesses


def test_trace_mode_and_fast_mode_agree():
    """The fast path (block-level shortcuts) and the per-access path must count the same."""
    fast = Machine(FIRMWARE / "xipbench.elf", seed=11)
    slow = Machine(FIRMWARE / "xipbench.elf", seed=11, trace=True)
    fast.run(400_000)
    slow.run(400_000)
    assert fast.instructions == slow.instructions
    assert fast.cycles == slow.cycles
    assert fast.cache.ctr == slow.cache.ctr
    assert [vars(r) for r in fast.function_stats()] == [vars(r) for r in slow.function_stats()]
