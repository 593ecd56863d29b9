"""Where the twin's (a model's) halts land on the pico2 kernel's boot, against its exact per-function cycles.

Measures issue 15's profile criterion without a sampler or a wall clock: halts at cycles on a jittered schedule (mean
5,000 cycles, uniform 0.5-1.5x, seed 1: about 20.6k halts from reset to the panic's delay loop), the pc at each,
and the total variation distance of the 20 hottest functions (the rest one bucket) from the truth, beside the TV a
perfect sampler would show at that n (multinomial draws from the truth, fixed seed).

Two landing rules:
  block  runner.run_to_cycle as the faces use it: the first translated-block boundary at or after the cycle. The pc
         is the start of the block *after* the one the cycle fell in, so callees and the trap entry get their
         predecessors' cycles (measured: TV 0.126; handle_exception 5.6% against 1.6%).
  ahead  stop at the start of the block the cycle falls in, from the block's mean cycles so far (the model's own
         counts: a prototype, it reads Machine's block records; a cycle budget in the block hook would do the same
         without the extra slices). Measured: TV 0.018, 3x the host time of `block` (single-block slices).

    PYTHONPATH=toolkit python bench/bench_kernel_landing.py [block|ahead]
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "toolkit"))
sys.path.insert(0, str(REPO / "kernel"))

MEAN_INTERVAL = 5000     # cycles
TOP = 20
AHEAD_ZONE = 3000        # cycles before the halt's cycle from which `ahead` runs one block a slice
CPI_HIGH = 12            # cycles an instruction assumed before that zone, so a big slice rarely crosses the cycle


def expected_cycles(m, pc: int) -> float | None:
    """The mean cycles of the translated block at pc so far (instructions + fetch and data stalls), or None."""
    from xipscope.sim import machine as mm

    b = m._blocks.get(pc)
    if b is None or not b[mm.B_COUNT]:
        return None
    return b[mm.B_N] + (b[mm.B_MISS] * b[mm.B_PEN] + b[mm.B_DSTALL]) / b[mm.B_COUNT]


def land_ahead(m, target: int) -> None:
    while True:
        left = target - m.cycles
        if left <= 0:
            return
        block = expected_cycles(m, m.pc)
        if block is not None and left < block:
            return
        m.run_slice(max(1, min(512, int((left - AHEAD_ZONE) / CPI_HIGH))) if left > AHEAD_ZONE else 1)


def main(rule: str = "ahead") -> None:
    import numpy as np
    import pandas as pd

    from qemu import built_kernel
    from xipscope.elf import load_symbols
    from xipscope.sim import MODEL_NOTE
    from xipscope.sim.hazard3 import Machine
    from xipscope.sim.runner import run_to_cycle

    build = built_kernel("pico2")
    m = Machine(build.vmlinux, kernel_image=build.image, dtb=build.dtb)
    delay = m.elf.symbol("__delay")     # panic()'s mdelay loop: nothing before the panic runs it
    rng = random.Random(1)
    pcs, target, t0 = [], 0, time.perf_counter()
    while True:
        target += round(MEAN_INTERVAL * rng.uniform(0.5, 1.5))
        land_ahead(m, target) if rule == "ahead" else run_to_cycle(m, target)
        pcs.append(m.pc)
        if delay <= m.pc < delay + 0x44:
            break
    wall = time.perf_counter() - t0
    rows = sorted(m.function_stats(), key=lambda r: -r.cycles)[:TOP]
    top = pd.Series({r.name: r.cycles for r in rows})
    truth = pd.concat([top, pd.Series({"(rest)": m.cycles - top.sum()})]) / m.cycles
    fn = pd.Series(load_symbols(build.vmlinux).symbolize(np.array(pcs)).function)
    sampled = fn.where(fn.isin(top.index), "(rest)").value_counts(normalize=True).reindex(truth.index, fill_value=0)
    tv = 0.5 * (sampled - truth).abs().sum()
    draws = np.random.default_rng(0).multinomial(len(pcs), truth.to_numpy(), size=2000) / len(pcs)
    noise = 0.5 * np.abs(draws - truth.to_numpy()).sum(axis=1)
    print(pd.DataFrame({"sampled": sampled, "truth": truth}).round(4).to_string())
    print(f"{MODEL_NOTE}, landing rule {rule}: {len(pcs)} halts over {m.cycles:,} cycles in {wall:.0f} s; TV of the "
          f"{TOP} hottest + rest {tv:.4f}; a perfect sampler at that n: mean {noise.mean():.4f}, "
          f"95th percentile {np.percentile(noise, 95):.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
