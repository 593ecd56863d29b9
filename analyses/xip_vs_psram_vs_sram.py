"""XIP flash vs PSRAM vs SRAM execution, from a saved profile of the twin's xipbench: per phase, where the pc was,
how long the phase took and the XIP cache hit rate the counters saw, against the exact figures xipbench printed.

A phase is a run of samples in one of xipbench's three worker functions (the same C body placed in flash, SRAM and
PSRAM), cut where a counter went backwards: xipbench clears CTR_HIT/CTR_ACC as each of its six phases starts.

    python analyses/xip_vs_psram_vs_sram.py PROFILE_DIR [--png OUT.png]          # from saved samples
    python analyses/xip_vs_psram_vs_sram.py PROFILE_DIR --collect [--every 1500]  # profile the twin first
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "toolkit"))
sys.path.insert(0, str(HERE))

WORKERS = ("work_flash", "work_sram", "work_psram")
CLOCK_HZ = 150_000_000     # the collector's modelled clock (twin_profile.CLOCK_HZ)
PHASE_LINE = re.compile(r"phase (\S+) cycles=(\d+) instret=(\d+) xip_acc=(\d+) xip_hit=(\d+)")


def phases(profile_dir: str | Path, workers: tuple[str, ...] = WORKERS):
    """One row per xipbench phase: a run of consecutive samples in one of the `workers` functions, cut where the
    counters were cleared. Its region, duration, samples, and the hit rate of the intervals wholly inside it."""
    import numpy as np
    import pandas as pd

    from xipscope.profile.analysis import load_profile

    frame = load_profile(profile_dir).samples
    fn = frame["function"].astype(str).to_numpy()
    acc = frame["xip_acc"].to_numpy(dtype=float)
    new = np.ones(len(frame), bool)
    new[1:] = (fn[1:] != fn[:-1]) | (acc[1:] < acc[:-1])
    run = np.cumsum(new) - 1
    d_acc, d_hit = frame["d_acc"].to_numpy(), frame["d_hit"].to_numpy()
    inside = np.zeros(len(frame), bool)
    inside[1:] = ~new[1:] & ~np.isnan(d_acc[1:])
    t = frame["t_ns"].to_numpy()
    rows = []
    for r in np.unique(run[np.isin(fn, workers)]):
        idx = np.nonzero(run == r)[0]
        if len(idx) < 3:
            continue                       # a sample or two on the way in or out of a worker is not a phase
        accesses, hits = d_acc[idx][inside[idx]].sum(), d_hit[idx][inside[idx]].sum()
        rows.append({"function": fn[idx[0]], "category": str(frame["category"].iloc[idx[0]]), "samples": len(idx),
                     "duration_ms": float(t[idx[-1]] - t[idx[0]]) / 1e6, "accesses": int(accesses),
                     "hits": int(hits), "hit_rate": hits / accesses if accesses else float("nan")})
    table = pd.DataFrame(rows)
    table.index.name = "phase"
    truth = Path(profile_dir) / "truth.json"
    if truth.exists():
        # The twin's exact per-phase counters and cycles, as xipbench printed them.
        exact = PHASE_LINE.findall(json.loads(truth.read_text())["uart"])
        if len(exact) == len(table):
            table["name"] = [e[0] for e in exact]
            table["exact_hit_rate"] = [int(e[4]) / int(e[3]) if int(e[3]) else float("nan") for e in exact]
            table["exact_ms"] = [int(e[1]) / CLOCK_HZ * 1e3 for e in exact]
    return table


def plot(table, png: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xipscope.profile.plots import COLORS

    labels = table["name"] if "name" in table else table["function"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    colors = [COLORS.get(c, "#7f7f7f") for c in table["category"]]
    left.barh(labels[::-1], table["duration_ms"][::-1], color=colors[::-1])
    left.set_xlabel("duration (ms of modelled time)")
    left.set_title("Time per phase, coloured by where the code ran")
    right.barh(labels[::-1], 100 * table["hit_rate"][::-1], color=colors[::-1], label="sampled counters")
    if "exact_hit_rate" in table:
        exact = table["exact_hit_rate"].where(table["hit_rate"].notna())   # SRAM phases: only the wrapper's few
        right.plot(100 * exact[::-1], labels[::-1], "k|", markersize=14, label="exact (xipbench)")
    for y, (label, rate) in enumerate(zip(labels[::-1], table["hit_rate"][::-1])):
        if rate != rate:
            right.text(2, y, "no XIP accesses", va="center", fontsize="small")
    right.set_xlim(0, 100)
    right.set_xlabel("XIP cache hit rate (%)")
    right.set_title("XIP hit rate per phase")
    right.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return Path(png)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("profile", help="profile directory of firmware/xipbench.elf")
    p.add_argument("--collect", action="store_true", help="profile xipbench on the twin into PROFILE first")
    p.add_argument("--every", type=int, default=1500, help="with --collect: mean modelled cycles between samples")
    p.add_argument("--png", help="figure to write (default PROFILE/xip_vs_psram_vs_sram.png)")
    args = p.parse_args(argv)
    if args.collect:
        from twin_profile import profile_twin
        profile_twin(HERE.parent / "firmware" / "xipbench.elf", args.profile, every=args.every)
    table = phases(args.profile)
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print(plot(table, args.png or Path(args.profile) / "xip_vs_psram_vs_sram.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
