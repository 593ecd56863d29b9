"""The twin's pacing (sim/pacing.py): its clock, where a halt lands, and that the landing rule is unbiased when the
request times are known exactly (no wall clock involved: these tests drive the clock with made-up times)."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from xipscope.elf.symbols import load_symbols
from xipscope.sim.hazard3 import Machine
from xipscope.sim.pacing import SimClock
from xipscope.sim.runner import run_to_cycle

XIPBENCH = Path(__file__).resolve().parents[2] / "firmware" / "xipbench.elf"


def test_clock_maps_running_time_and_anchors_at_the_requested_cycle():
    clock = SimClock(1e6)
    clock.start(1000, now=10.0)
    assert clock.due(10.5) == 1000 + 500_000
    assert clock.stop_at(1000, 10.001) == 2000
    clock.start(2040, now=20.0)          # the core stopped 40 cycles past the request: the anchor is the request
    assert clock.due(20.001) == 3000
    assert clock.stop_at(2040, 19.9) == 2000 + 0   # stamped before the resume: no running time before it
    clock = SimClock(1e6)
    clock.start(5000, now=30.0)
    assert clock.behind(5000, 31.0) == clock.max_lag and clock.slips == 1    # a second behind: the clock slips
    assert clock.slipped_cycles == 1_000_000 - clock.max_lag


def test_a_halt_lands_at_the_start_of_the_block_holding_its_cycle():
    # With the XIP cache off, every XIP fetch word and data access misses, so a block costs the same each time it
    # runs (once its data accesses have been seen): the landing is exact. The pc at the landing is the start of the
    # block during which the target cycle passes, as on a real core halted at that cycle.
    m = Machine(XIPBENCH)
    m.cache.enabled = False
    landings = []
    for target in range(5_000, 30_000_000, 99_991):
        assert run_to_cycle(m, target) == "budget"
        landed = m.cycles
        m.run_slice(1)                  # that block, and no more
        landings.append((landed, target, m.cycles))
    assert len(landings) == 300
    assert all(landed <= target < after for landed, target, after in landings)


def test_data_accesses_bound_an_instructions_memory_traffic():
    from xipscope.chip.riscv import data_accesses
    assert data_accesses(0x0005A783) == 1        # lw a5,0(a1)
    assert data_accesses(0xFEF52E23) == 1        # sw a5,-4(a0)
    assert data_accesses(0x40F6A02F) == 2        # amoor.w zero,a5,(a3): its read and its write
    assert data_accesses(0x00C58733) == 0        # add a4,a1,a2
    assert data_accesses(0x419C) == 1            # c.lw a5,0(a1)
    assert data_accesses(0xC310) == 1            # c.sw a2,0(a4)
    assert data_accesses(0x4782) == 1            # c.lwsp a5,0(sp)
    assert data_accesses(0x0141) == 0            # c.addi sp,16
    assert data_accesses(0x8082) == 0            # c.jr ra (ret)


def test_with_the_cache_a_halt_lands_within_a_block_of_its_cycle():
    # With the cache, a block's data stalls are known only as they happen: the landing takes its mean so far, so a
    # halt may land a block early or late (a loop whose accesses begin to miss), by less than a block's cycles.
    m = Machine(XIPBENCH)
    off = []
    for target in range(5_000, 4_000_000, 9_991):
        assert run_to_cycle(m, target) == "budget"
        off.append(m.cycles - target)
    assert len(off) == 400
    assert -50 < min(off) and max(off) < 100, (min(off), max(off))


def test_landing_rule_is_unbiased_with_known_request_times():
    m = Machine(XIPBENCH)
    symbols = load_symbols(XIPBENCH)
    clock = SimClock(1e6)
    rng = random.Random(7)
    t, pcs = 0.0, []
    while True:
        clock.start(m.cycles, now=t)
        t += rng.uniform(50e-6, 1500e-6)           # running intervals of a jittery sampler
        if run_to_cycle(m, clock.stop_at(m.cycles, t)) == "idle":
            break
        pcs.append(m.pc)
    sampled = pd.Series(symbols.symbolize(pcs).function).value_counts(normalize=True)
    truth = pd.Series({r.name: r.cycles for r in m.function_stats() if r.name != "_park"})
    truth /= truth.sum()
    both = pd.concat([sampled.rename("sampled"), truth.rename("truth")], axis=1).fillna(0)
    tv = 0.5 * (both["sampled"] - both["truth"]).abs().sum()
    print(f"TV {tv:.4f} over {len(pcs)} landings")
    assert len(pcs) > 5000 and tv < 0.015, both
