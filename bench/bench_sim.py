"""Simulated instructions per second of the RP2350 twin (a model), cache model on, running firmware/xipbench.elf.

Goal (issue 3): at least 2 M instructions/s on one core of this machine. Prints every run and the median; machine
construction (ELF load, hook setup) is timed separately and not counted in the rate.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "toolkit"))

from xipscope.sim import MODEL_NOTE  # noqa: E402
from xipscope.sim.hazard3 import Machine  # noqa: E402

GOAL = 2_000_000
RUNS = 7


def one_run(firmware: Path) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    m = Machine(firmware)
    t1 = time.perf_counter()
    r = m.run(50_000_000)
    t2 = time.perf_counter()
    assert r.reason == "idle" and "xipbench: done" in m.uart.text(), r
    return t1 - t0, t2 - t1, r.instructions


def main() -> int:
    firmware = REPO / "firmware" / "xipbench.elf"
    rates, setups = [], []
    for i in range(RUNS):
        setup, elapsed, n = one_run(firmware)
        rates.append(n / elapsed)
        setups.append(setup)
        print(f"run {i + 1}: {n} instructions in {elapsed:.3f} s = {n / elapsed / 1e6:.2f} M instr/s "
              f"(setup {setup * 1000:.0f} ms)")
    median = statistics.median(rates)
    print(f"{MODEL_NOTE}, cache model on, xipbench: median {median / 1e6:.2f} M simulated instructions/s "
          f"over {RUNS} runs (min {min(rates) / 1e6:.2f}, max {max(rates) / 1e6:.2f}); "
          f"goal {GOAL / 1e6:.0f} M/s: {'met' if median >= GOAL else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
