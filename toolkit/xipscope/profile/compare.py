"""`compare_profiles(A, B, out)`: two profiles side by side (e.g. the kernel run from XIP flash, then from PSRAM):
per-region and per-function shares of samples, hit rates, and how they moved, with a plot and an HTML page.

A share's change comes with its standard error (sqrt(p(1-p)/n) of each side, combined), so a reader can tell a
real move from sampling noise: |delta| under about 2 standard errors is noise.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..files import output_dir
from . import analysis as an


def _delta(a, b, key: str):
    import numpy as np
    import pandas as pd

    table = pd.concat([a["samples"].rename("samples_a"), a["share"].rename("share_a"),
                       b["samples"].rename("samples_b"), b["share"].rename("share_b")], axis=1).fillna(0)
    table["samples_a"] = table["samples_a"].astype(np.int64)
    table["samples_b"] = table["samples_b"].astype(np.int64)
    table["share_delta"] = table["share_b"] - table["share_a"]
    na, nb = max(int(a["samples"].sum()), 1), max(int(b["samples"].sum()), 1)
    table["share_delta_se"] = np.sqrt(table["share_a"] * (1 - table["share_a"]) / na
                                      + table["share_b"] * (1 - table["share_b"]) / nb)
    table.index.name = key
    return table


def region_deltas(frame_a, frame_b):
    """Per category: samples, shares and hit rates of A and B and the change B - A."""
    ra, rb = an.share_by_region(frame_a), an.share_by_region(frame_b)
    table = _delta(ra, rb, "category")
    table["hit_rate_a"] = ra["hit_rate"]
    table["hit_rate_b"] = rb["hit_rate"]
    table["hit_rate_delta"] = rb["hit_rate"] - ra["hit_rate"]
    return table


def function_deltas(frame_a, frame_b):
    """Per function seen in either run: samples and shares of A and B, the change, biggest moves first."""
    table = _delta(an.share_by_function(frame_a), an.share_by_function(frame_b), "function")
    return table.reindex(table["share_delta"].abs().sort_values(ascending=False, kind="stable").index)


def compare_profiles(dir_a: str | Path, dir_b: str | Path, out: str | Path, symbols_a=None, symbols_b=None,
                     memory_map=None, top: int = 20) -> Path:
    """Write compare.html, regions.csv, functions.csv, summary.json and functions.png into `out`; returns the HTML."""
    from .plots import plot_compare

    a = an.load_profile(dir_a, symbols_a, memory_map)
    b = an.load_profile(dir_b, symbols_b, memory_map)
    out = output_dir(out)
    regions = region_deltas(a.samples, b.samples)
    functions = function_deltas(a.samples, b.samples)
    regions.to_csv(out / "regions.csv", float_format="%.6g")
    functions.to_csv(out / "functions.csv", float_format="%.6g")
    label_a, label_b = f"A: {Path(dir_a).name}", f"B: {Path(dir_b).name}"
    plot_compare(functions, out / "functions.png", label_a, label_b, top=top)
    rate_a, rate_b = an.hit_rate(a.samples), an.hit_rate(b.samples)
    summary = {"a": str(dir_a), "b": str(dir_b), "hit_rate_a": rate_a, "hit_rate_b": rate_b,
               "regions": json.loads(regions.reset_index().to_json(orient="records")),
               "functions": json.loads(functions.head(top).reset_index().to_json(orient="records"))}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

    from .report import CSS, _pct, _table_html
    e = html.escape
    pct = ("share_a", "share_b", "share_delta", "share_delta_se", "hit_rate_a", "hit_rate_b", "hit_rate_delta")
    page = [f"<!doctype html><html><head><meta charset='utf-8'><title>xipscope compare</title><style>{CSS}</style>"
            "</head><body><h1>xipscope compare</h1>",
            f"<p>A: <code>{e(str(dir_a))}</code> ({len(a.samples):,} samples, "
            f"{e(str(a.meta.get('target', '?')))}), XIP hit rate {_pct(rate_a['hit_rate'])}<br>"
            f"B: <code>{e(str(dir_b))}</code> ({len(b.samples):,} samples, "
            f"{e(str(b.meta.get('target', '?')))}), XIP hit rate {_pct(rate_b['hit_rate'])}</p>",
            "<p>Deltas are B - A; share_delta_se is the standard error of the change in share: a change under about "
            "twice it is sampling noise.</p>",
            "<h2>By memory region</h2>", _table_html(regions, percent=pct),
            "<h2>By function</h2><img src='functions.png' alt='function shares, A and B'>",
            _table_html(functions, percent=pct, rows=top), "</body></html>\n"]
    path = out / "compare.html"
    path.write_text("\n".join(page))
    return path
