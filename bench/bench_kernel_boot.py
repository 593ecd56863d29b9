"""How fast the twin (a model) boots the pico2 kernel to its panic (issue 15: at most 20 s on an unloaded 2-core host).

The pico2 fixture (kernel/build.py) from reset, Image in PSRAM and the DTB in flash as the board's bootloader leaves
them, the XIP cache model on, run in slices of 1 M instructions until the console holds the panic's end line. Prints
each run's wall and CPU seconds and simulated instructions per second, and the median of 3 runs. The host's load is
printed beside it: on a shared machine the wall time is the CPU time stretched by the load.

    PYTHONPATH=toolkit python bench/bench_kernel_boot.py [RUNS] [--profile]

--profile runs one boot under cProfile and prints where the host time goes (the hooks' share, unicorn's own).

Measured (host loaded 4-5 on 2 cores): median 51.4 s wall, 34.9 s CPU, 659k simulated instructions/s of CPU; the
boot is 23.0 M instructions, 103 M cycles. Before the landing rule and the mret hooks: 33.0 s CPU (the same, within
the noise). Under cProfile (3.5x slower, the shares hold): the XIP data hook 34% (7.9 M calls: every kernel load and
store goes to PSRAM), the block hook 38% (3.7 M blocks), unicorn's own execution and the ctypes transitions into the
hooks 21%, the cache fills 6%. So 20 s is out of reach while each block and each XIP data access costs a Python call
(about 1 us of transition each before any work): it needs the cache model and the accounting in native code.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "toolkit"))
sys.path.insert(0, str(REPO / "kernel"))

SLICE = 1_000_000
BUDGET = 40_000_000      # instructions: the boot reaches its panic within 23 M


def boot_once():
    from qemu import PANIC_LINE, built_kernel
    from xipscope.sim.hazard3 import Machine

    build = built_kernel("pico2")
    m = Machine(build.vmlinux, kernel_image=build.image, dtb=build.dtb)
    t0, c0 = time.perf_counter(), time.process_time()
    while m.instructions < BUDGET and "end " + PANIC_LINE not in m.uart.text():
        m.run(SLICE)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if "end " + PANIC_LINE not in m.uart.text():
        raise SystemExit(f"the boot did not reach its panic within {BUDGET:,} instructions")
    return wall, cpu, m.instructions, m.cycles


def main(argv: list[str]) -> None:
    from xipscope.sim import MODEL_NOTE

    if "--profile" in argv:
        import cProfile
        import pstats
        profiler = cProfile.Profile()
        profiler.runcall(boot_once)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        return
    runs = int(argv[0]) if argv else 3
    results = []
    for i in range(runs):
        wall, cpu, instructions, cycles = boot_once()
        results.append((wall, cpu))
        print(f"run {i + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU, {instructions:,} instructions ({instructions / wall:,.0f}"
              f"/s wall, {instructions / cpu:,.0f}/s CPU), {cycles:,} cycles; load average {os.getloadavg()[0]:.1f}")
    wall = statistics.median(w for w, _c in results)
    cpu = statistics.median(c for _w, c in results)
    print(f"{MODEL_NOTE}: pico2 boot to its panic, median of {runs}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
          f"{instructions / wall:,.0f} simulated instructions/s wall ({instructions / cpu:,.0f}/s CPU); goal 20 s "
          "on an unloaded 2-core host")


if __name__ == "__main__":
    main(sys.argv[1:])
