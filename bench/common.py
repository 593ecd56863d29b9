"""Shared by the benchmarks: medians of repeated timings, the kernel fixture, a table printer."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "kernel"))

from qemu import KernelBuild, boot_kernel  # noqa: E402,F401


def kernel(variant: str = "dwarf") -> KernelBuild:
    out = subprocess.run([sys.executable, str(REPO / "kernel" / "build.py"), variant], check=True,
                         capture_output=True, text=True).stdout.split()
    return KernelBuild(variant, Path(out[0]))


def median_seconds(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def report(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
