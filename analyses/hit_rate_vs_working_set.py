"""XIP cache hit rate against working-set size, from saved profiles of the twin (a model) running xipbench's
work_flash over a flash table of growing size: the 16 KiB cache holds the set, then stops holding it.

Each size is one profile directory (ws-NNNNN, the size in bytes) of a call work_flash(flash_table, words, passes),
one word per 8-byte cache line; the hit rate comes from the counter deltas between samples inside work_flash, and is
set beside the twin's exact counters for the whole call (truth.json).

    python analyses/hit_rate_vs_working_set.py DIR [--png OUT.png]            # from saved samples
    python analyses/hit_rate_vs_working_set.py DIR --collect [--sizes 2,4,8,16,32,64]  # profile the twin first (KiB)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "toolkit"))
sys.path.insert(0, str(HERE))

XIPBENCH = HERE.parent / "firmware" / "xipbench.elf"
CACHE_BYTES = 16 * 1024
LINE_BYTES = 8


def collect(directory: str | Path, sizes_kib=(2, 4, 8, 12, 16, 20, 24, 32, 64), accesses: int = 32768,
            every: int = 1000) -> list[Path]:
    """One profile per working-set size: work_flash reading `accesses` words, one per cache line, in passes."""
    from twin_profile import profile_twin
    from xipscope.elf import load_symbols

    table = load_symbols(XIPBENCH).address_of("flash_table")
    out = []
    for kib in sizes_kib:
        size = kib * 1024
        words = size // 4
        passes = max(2, accesses // (size // LINE_BYTES))
        d = Path(directory) / f"ws-{size:05d}"
        profile_twin(XIPBENCH, d, every=every, call=("work_flash", (table, words, passes)),
                     extra_meta={"working_set_bytes": size, "passes": passes})
        out.append(d)
    return out


def hit_rates(directory: str | Path):
    """Per working-set size: sampled hit rate (intervals inside work_flash), samples, and the exact hit rate."""
    import numpy as np
    import pandas as pd

    from xipscope.profile.analysis import load_profile

    rows = []
    for d in sorted(Path(directory).glob("ws-*")):
        profile = load_profile(d)
        frame = profile.samples
        fn = frame["function"].astype(str).to_numpy()
        inside = np.zeros(len(frame), bool)
        inside[1:] = (fn[1:] == "work_flash") & (fn[:-1] == "work_flash")
        d_acc, d_hit = frame["d_acc"].to_numpy()[inside], frame["d_hit"].to_numpy()[inside]
        known = ~np.isnan(d_acc)
        row = {"working_set_kib": profile.meta["working_set_bytes"] / 1024, "samples": len(frame),
               "accesses": int(d_acc[known].sum()), "hit_rate": d_hit[known].sum() / d_acc[known].sum()}
        truth = d / "truth.json"
        if truth.exists():
            counters = json.loads(truth.read_text())["xip_counters"]
            row["exact_hit_rate"] = counters["hit"] / counters["acc"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("working_set_kib")


def plot(table, png: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(table.index, 100 * table["hit_rate"], "o-", label="sampled counters (inside work_flash)")
    if "exact_hit_rate" in table:
        ax.plot(table.index, 100 * table["exact_hit_rate"], "kx", label="exact (twin, whole call)")
    ax.axvline(CACHE_BYTES / 1024, color="#7f7f7f", linestyle="--", linewidth=1, label="cache size (16 KiB)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(table.index, [f"{v:g}" for v in table.index])
    ax.set_xlabel("working set (KiB, one word per 8-byte line)")
    ax.set_ylabel("XIP hit rate (%)")
    ax.set_title("XIP cache hit rate against working set (RP2350 twin, a model)")
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return Path(png)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("directory", help="directory of ws-NNNNN profile directories")
    p.add_argument("--collect", action="store_true", help="profile the twin into DIRECTORY first")
    p.add_argument("--sizes", default="2,4,8,12,16,20,24,32,64", help="with --collect: working sets in KiB")
    p.add_argument("--accesses", type=int, default=32768, help="with --collect: table reads per size")
    p.add_argument("--png", help="figure to write (default DIRECTORY/hit_rate_vs_working_set.png)")
    args = p.parse_args(argv)
    if args.collect:
        collect(args.directory, [int(v) for v in args.sizes.split(",")], args.accesses)
    table = hit_rates(args.directory)
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print(plot(table, args.png or Path(args.directory) / "hit_rate_vs_working_set.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
