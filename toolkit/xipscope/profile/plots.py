"""The report's PNG figures, drawn with matplotlib's Agg backend (no display needed) from the analysis tables."""

from __future__ import annotations

from pathlib import Path

from .analysis import CATEGORIES

COLORS = {"flash (cached)": "#1f77b4", "flash (uncached)": "#aec7e8", "psram (cached)": "#d62728",
          "psram (uncached)": "#ff9896", "sram": "#2ca02c", "rom": "#9467bd", "other": "#7f7f7f"}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def plot_top_functions(by_function, path: Path, top: int = 15, title: str = "Top functions by share of time") -> Path:
    """Horizontal bars, one per function (largest share on top; shares may be cycle-weighted), each split by the
    regions its samples fell in."""
    plt = _pyplot()
    table = by_function.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.35 * max(len(table), 3) + 1.2))
    left = None
    for cat in CATEGORIES:
        if cat not in table.columns or not table[cat].any():
            continue
        values = 100 * table["share"].to_numpy() * table[cat].to_numpy() / table["samples"].to_numpy()
        ax.barh(table.index.astype(str), values, left=left, color=COLORS[cat], label=cat)
        left = values if left is None else left + values
    ax.set_xlabel("share of time (%)")
    ax.set_title(title)
    if left is not None:
        ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def plot_hit_rate_over_time(over_time, path: Path, overall: float | None = None) -> Path:
    """XIP cache hit rate per time bucket (buckets without counted accesses left out)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    known = over_time["accesses"] > 0
    ax.plot(over_time.loc[known, "t_start_s"], 100 * over_time.loc[known, "hit_rate"], marker=".", color="#1f77b4")
    if overall is not None:
        ax.axhline(100 * overall, color="#7f7f7f", linestyle="--", linewidth=1, label=f"overall {overall:.1%}")
        ax.legend(loc="lower right", fontsize="small")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("XIP hit rate (%)")
    ax.set_ylim(bottom=min(90.0, float(100 * over_time.loc[known, "hit_rate"].min())) - 2 if known.any() else 0,
                top=100.5)
    ax.set_title("XIP cache hit rate over time")
    return _save(fig, path)


def plot_regions_over_time(over_time, path: Path) -> Path:
    """Samples per time bucket, stacked by region category."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.2))
    cats = [c for c in CATEGORIES if c in over_time.columns and over_time[c].any()]
    if cats:
        ax.stackplot(over_time["t_start_s"], *[over_time[c] for c in cats], labels=cats,
                     colors=[COLORS[c] for c in cats], step="post")
        ax.legend(loc="upper right", fontsize="small")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("samples per bucket")
    ax.set_title("Where the pc was, over time")
    return _save(fig, path)


def plot_compare(delta, path: Path, label_a: str, label_b: str, top: int = 15) -> Path:
    """Share of samples per function in A and B side by side (the functions whose share changed most)."""
    import numpy as np

    plt = _pyplot()
    table = delta.reindex(delta["share_delta"].abs().sort_values(ascending=False).index).head(top).iloc[::-1]
    y = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(9, 0.4 * max(len(table), 3) + 1.2))
    ax.barh(y + 0.2, 100 * table["share_a"], height=0.4, label=label_a, color="#1f77b4")
    ax.barh(y - 0.2, 100 * table["share_b"], height=0.4, label=label_b, color="#d62728")
    ax.set_yticks(y, table.index.astype(str))
    ax.set_xlabel("share of samples (%)")
    ax.set_title("Functions whose share changed most")
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)
