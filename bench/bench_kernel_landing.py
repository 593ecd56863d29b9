"""Where the twin's (a model's) halts land on the pico2 kernel's boot, against its exact per-function cycles.

Measures issue 15's profile criterion without a sampler or a wall clock: halts at cycles on a jittered schedule (mean
5,000 cycles, uniform 0.5-1.5x, seed 1: about 20.6k halts from reset to the panic's delay loop), the pc at each,
and the total variation distance of the 20 hottest functions (the rest one bucket) from the truth, beside the TV a
perfect sampler would show at that n (multinomial draws from the truth, fixed seed).

The landing rule is runner.run_to_cycle's, as the faces use it: the core stops at the start of the translated block
that holds the cycle (hazard3/hooks.py `_stops_before`). Measured on a host loaded 6-8 on 2 cores: TV 0.126 when it
stopped at the first block boundary at or after the cycle (callees and the trap entry got their predecessors'
cycles: handle_exception 5.6% against 1.6%) in 47 s CPU; in the block holding the cycle: TV 0.0101 against a perfect
sampler's 0.0097 (handle_exception 1.8%), 39 s CPU for the 20.6k halts and the whole boot.

    PYTHONPATH=toolkit python bench/bench_kernel_landing.py
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


def main() -> None:
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
    pcs, target, t0, cpu0 = [], 0, time.perf_counter(), time.process_time()
    while True:
        target += round(MEAN_INTERVAL * rng.uniform(0.5, 1.5))
        run_to_cycle(m, target)
        pcs.append(m.pc)
        if delay <= m.pc < delay + 0x44:
            break
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rows = sorted(m.function_stats(), key=lambda r: -r.cycles)[:TOP]
    top = pd.Series({r.name: r.cycles for r in rows})
    truth = pd.concat([top, pd.Series({"(rest)": m.cycles - top.sum()})]) / m.cycles
    fn = pd.Series(load_symbols(build.vmlinux).symbolize(np.array(pcs)).function)
    sampled = fn.where(fn.isin(top.index), "(rest)").value_counts(normalize=True).reindex(truth.index, fill_value=0)
    tv = 0.5 * (sampled - truth).abs().sum()
    draws = np.random.default_rng(0).multinomial(len(pcs), truth.to_numpy(), size=2000) / len(pcs)
    noise = 0.5 * np.abs(draws - truth.to_numpy()).sum(axis=1)
    print(pd.DataFrame({"sampled": sampled, "truth": truth}).round(4).to_string())
    print(f"{MODEL_NOTE}: {len(pcs)} halts over {m.cycles:,} cycles in {wall:.0f} s ({cpu:.0f} s CPU); TV of the "
          f"{TOP} hottest + rest {tv:.4f}; a perfect sampler at that n: mean {noise.mean():.4f}, "
          f"95th percentile {np.percentile(noise, 95):.4f}")


if __name__ == "__main__":
    main()
