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

XIPBENCH = Path(__file__).resolve().parent.parent / "firmware" / "xipbench.elf"


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


def test_a_halt_lands_at_the_first_block_boundary_at_or_after_its_cycle():
    m = Machine(XIPBENCH)
    clock = SimClock(1e6)
    overshoots = []
    for target in range(5_000, 3_000_000, 99_991):
        assert run_to_cycle(m, target, clock) == "budget"
        overshoots.append(m.cycles - target)
    assert min(overshoots) >= 0
    assert max(overshoots) < 300          # a block of a copy loop with miss stalls, at most


def test_landing_rule_is_unbiased_with_known_request_times():
    m = Machine(XIPBENCH)
    symbols = load_symbols(XIPBENCH)
    clock = SimClock(1e6)
    rng = random.Random(7)
    t, pcs = 0.0, []
    while True:
        clock.start(m.cycles, now=t)
        t += rng.uniform(50e-6, 1500e-6)           # running intervals of a jittery sampler
        if run_to_cycle(m, clock.stop_at(m.cycles, t), clock) == "idle":
            break
        pcs.append(m.pc)
    sampled = pd.Series(symbols.symbolize(pcs).function).value_counts(normalize=True)
    truth = pd.Series({r.name: r.cycles for r in m.function_stats() if r.name != "_park"})
    truth /= truth.sum()
    both = pd.concat([sampled.rename("sampled"), truth.rename("truth")], axis=1).fillna(0)
    tv = 0.5 * (both["sampled"] - both["truth"]).abs().sum()
    assert len(pcs) > 5000 and tv < 0.015, both
