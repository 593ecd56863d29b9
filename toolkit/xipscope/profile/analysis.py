"""The analyses of a profile: where the samples fell (region, function, line), what the XIP cache counters did between
them, which functions the misses belong to, and whether the core is stuck in an RP2350 LR/SC livelock.

Everything works on the sample table of profile/store.py, adding columns in memory (never rewriting the files):

    category   region kind as a person asks about it: flash (cached), flash (uncached), psram (cached),
               psram (uncached), sram, rom, other
    region     the memory map's region name ("unmapped" outside every region)
    function   the ELF function holding the pc ("(no symbol)" when none does)
    line       "file:line" from the line table ("(no line)" when unknown)
    d_acc, d_hit  the XIP_CTRL counter increase since the previous sample; NaN when the interval is unknown
               (first sample, a counter at its saturation value 0xffffffff, a counter going backwards because
               something wrote it, more hits than accesses, or no counters in this run)

The interval counters belong to the time between two samples, so they are attributed to both ends (half each).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FormatError, SymbolError
from .store import COUNTER_SATURATED, read_meta, read_samples

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..chip.memory_map import MemoryMap
    from ..elf.symbols import SymbolIndex

CATEGORIES = ("flash (cached)", "flash (uncached)", "psram (cached)", "psram (uncached)", "sram", "rom", "other")
NO_SYMBOL = "(no symbol)"
NO_LINE = "(no line)"


@dataclass
class Profile:
    """One profile directory read and annotated: the sample table plus what it was read with."""

    directory: Path
    samples: "pd.DataFrame"
    meta: dict
    memory_map: "MemoryMap"
    symbols: "SymbolIndex | None"
    elf_path: Path | None
    notes: list[str] = field(default_factory=list)   # what the reader should know (e.g. most pcs in no function)


def load_profile(directory: str | Path, symbols: "SymbolIndex | str | Path | None" = None,
                 memory_map: "MemoryMap | str | Path | None" = None) -> Profile:
    """Read DIR/samples and DIR/meta.json and annotate them; the ELF and map default to meta.json's `elf` and `map`."""
    from ..chip.memory_map import MemoryMap, get_memory_map
    from ..elf import load_symbols

    directory = Path(directory)
    if not directory.is_dir():
        raise FormatError(f"{directory}: no such profile directory (expected one written by xipscope profile)")
    meta = read_meta(directory)
    frame = read_samples(directory)
    notes: list[str] = []
    if symbols is None and meta.get("elf"):
        elf = Path(meta["elf"])
        if not elf.is_absolute() and (directory / elf).exists():
            elf = Path(os.path.normpath(directory / elf))   # relative to the profile directory first
        if not elf.exists():
            raise SymbolError(f"{directory}/meta.json names the ELF {meta['elf']!r}, which is not there; "
                              "pass --elf with the image that ran")
        symbols = elf
    if symbols is not None and not hasattr(symbols, "symbolize"):
        symbols = load_symbols(symbols)
    elf_path = symbols.elf_path if symbols is not None else None
    if symbols is not None and meta.get("elf_sha256") and elf_path is not None:
        import hashlib
        digest = hashlib.sha256(Path(elf_path).read_bytes()).hexdigest()
        if digest != meta["elf_sha256"]:
            raise SymbolError(f"{elf_path}: sha256 {digest[:16]}... is not the {meta['elf_sha256'][:16]}... recorded "
                              f"in {directory}/meta.json; the samples came from another build. Pass --elf with the "
                              "image that ran.")
    if not isinstance(memory_map, MemoryMap):
        memory_map = get_memory_map(memory_map or meta.get("map") or "rp2350")
    annotate(frame, symbols, memory_map)
    if weighted(frame):
        notes.append("shares are weighted by the target's cycles between samples (its cycle counter, read with each "
                     "sample): they are shares of the time the core ran, so samples parked in wfi count for little")
    if symbols is not None and len(frame):
        unknown = float((frame["function"] == NO_SYMBOL).mean())
        if unknown > 0.5:
            notes.append(f"{unknown:.0%} of the samples fall in no function of {symbols.path}: is it the image "
                         "that ran?")
    return Profile(directory, frame, meta, memory_map, symbols, elf_path, notes)


def annotate(frame: "pd.DataFrame", symbols: "SymbolIndex | None", memory_map: "MemoryMap") -> "pd.DataFrame":
    """Add category, region, function, line, d_acc and d_hit to a sample table (in place; also returned).

    A profile holds far fewer distinct pcs than samples (hot loops), so the lookups run once per distinct pc and
    the answers are spread back with one fancy index: a million samples cost a hash pass, not a million lookups.
    """
    import numpy as np
    import pandas as pd

    which, distinct = pd.factorize(frame["pc"].to_numpy(dtype=np.int64))
    distinct = distinct.astype(np.int64).astype(np.uint64)
    region, region_labels, category = region_codes(distinct, memory_map)
    frame["region"] = _categorical(region[which], region_labels, "unmapped")
    frame["category"] = pd.Categorical.from_codes(category[which], categories=list(CATEGORIES))
    if symbols is not None:
        function, function_labels, line, line_labels = symbol_codes(distinct, symbols)
    else:
        function = line = np.full(len(distinct), -1)
        function_labels, line_labels = [], []
    frame["function"] = _categorical(function[which], function_labels, NO_SYMBOL)
    frame["line"] = _categorical(line[which], line_labels, NO_LINE)
    frame["d_acc"], frame["d_hit"] = counter_deltas(frame["xip_acc"], frame["xip_hit"])
    frame["weight"] = sample_weights(frame)
    return frame


def sample_weights(frame: "pd.DataFrame") -> "np.ndarray":
    """What each sample's share counts for: the target's cycles since the previous sample when every sample read
    mcycle (`xipscope profile --cycles`), else 1. Weighting makes the shares independent of how evenly the host managed
    to space its samples (it matters on a loaded host, and on the twin); a board sampled at a steady rate gives
    nearly equal weights either way. The first sample, and any taken while mcycle was held, weigh 0; so does time a
    core spends parked in wfi where its clock stops (the twin models that), so the shares are of the time it ran."""
    import numpy as np

    if "mcycle" not in frame or len(frame) < 2 or frame["mcycle"].isna().any():
        return np.ones(len(frame))
    cycles = frame["mcycle"].to_numpy(dtype=np.int64)
    weights = np.zeros(len(frame))
    weights[1:] = np.diff(cycles) % 2**32
    return weights if weights.sum() > 0 else np.ones(len(frame))


def weighted(frame: "pd.DataFrame") -> bool:
    """Were the shares weighted by cycles (see sample_weights)?"""
    return "weight" in frame and not (frame["weight"] == 1).all()


def _categorical(codes: "np.ndarray", labels: list[str], missing: str):
    """A pandas Categorical from integer codes where -1 means `missing` (added as the last category)."""
    import numpy as np
    import pandas as pd

    codes = np.where(codes < 0, len(labels), codes)
    return pd.Categorical.from_codes(codes, categories=list(labels) + [missing])


def region_codes(pcs: "np.ndarray", memory_map: "MemoryMap"):
    """(region index or -1, region names, category index) for an array of addresses: one searchsorted over the map."""
    import numpy as np

    regions = list(memory_map)
    starts = np.array([r.start for r in regions], dtype=np.uint64)
    ends = np.array([r.end for r in regions], dtype=np.uint64)
    i = np.searchsorted(starts, pcs, side="right") - 1
    ic = np.maximum(i, 0)
    inside = (i >= 0) & (pcs < ends[ic]) if len(regions) else np.zeros(len(pcs), bool)
    region = np.where(inside, ic, -1)
    category_of_region = np.array([CATEGORIES.index(region_category(r.kind, r.cached)) for r in regions]
                                  + [CATEGORIES.index("other")])
    return region, [r.name for r in regions], category_of_region[region]      # -1 picks the trailing "other"


def region_category(kind: str, cached: bool) -> str:
    if kind == "xip-flash":
        return "flash (cached)" if cached else "flash (uncached)"
    if kind == "xip-psram":
        return "psram (cached)" if cached else "psram (uncached)"
    if kind in ("sram", "rom"):
        return kind
    return "other"


def symbol_codes(pcs: "np.ndarray", symbols: "SymbolIndex"):
    """(function code, function names, line code, "file:line" labels) for distinct addresses; -1 = unknown."""
    import numpy as np

    s = symbols.symbolize(pcs)
    used, function = np.unique(s.function_id, return_inverse=True)
    function_labels = [symbols.names[int(f)] for f in used if f >= 0]
    if len(used) and used[0] < 0:
        function = function - 1                   # id -1 sorts first: it becomes code -1, "no symbol"
    key = (s.file_id.astype(np.int64) << 32) | s.line.astype(np.int64)
    keys, line = np.unique(key, return_inverse=True)
    line_labels, code_of_key = [], np.full(len(keys), -1)
    for k, kv in enumerate(keys.tolist()):
        fid = kv >> 32
        if 0 <= fid < len(symbols.files):
            code_of_key[k] = len(line_labels)
            line_labels.append(f"{symbols.files[fid]}:{kv & 0xFFFFFFFF}")
    return function, function_labels, code_of_key[line], line_labels


def counter_deltas(acc, hit):
    """Per-sample increase of CTR_ACC and CTR_HIT since the previous sample, NaN where the interval is unknown."""
    import numpy as np

    a = acc.to_numpy(dtype=float, na_value=np.nan)
    h = hit.to_numpy(dtype=float, na_value=np.nan)
    d_acc = np.full(len(a), np.nan)
    d_hit = np.full(len(a), np.nan)
    if len(a) < 2:
        return d_acc, d_hit
    da, dh = np.diff(a), np.diff(h)
    saturated = (a == COUNTER_SATURATED) | (h == COUNTER_SATURATED)
    with np.errstate(invalid="ignore"):
        ok = (da >= 0) & (dh >= 0) & (dh <= da) & ~saturated[1:] & ~saturated[:-1]
    d_acc[1:] = np.where(ok, da, np.nan)
    d_hit[1:] = np.where(ok, dh, np.nan)
    return d_acc, d_hit


# --- tables ------------------------------------------------------------------------------------------------------

def share_by_region(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Samples per category and their share, with the XIP hit rate of the intervals spent wholly in that category
    (both samples there): accesses, hits, hit_rate (NaN when no such interval has counters)."""
    import numpy as np
    import pandas as pd

    cat = frame["category"].cat.codes.to_numpy()
    n = len(CATEGORIES)
    out = pd.DataFrame({"samples": np.bincount(cat, minlength=n)}, index=pd.Index(CATEGORIES, name="category"))
    w = frame["weight"].to_numpy()
    out["share"] = np.bincount(cat, weights=w, minlength=n) / max(w.sum(), 1e-300)
    out["accesses"], out["hits"] = interval_counts(frame, cat, n)
    out["hit_rate"] = out["hits"] / out["accesses"].where(out["accesses"] > 0)
    return out


def interval_counts(frame: "pd.DataFrame", codes: "np.ndarray", n: int):
    """XIP (accesses, hits) per code (0..n-1) over the known intervals whose two samples have the same code."""
    import numpy as np

    d_acc, d_hit = frame["d_acc"].to_numpy(), frame["d_hit"].to_numpy()
    pure = np.zeros(len(frame), bool)
    pure[1:] = codes[1:] == codes[:-1]
    known = pure & ~np.isnan(d_acc)
    return (np.bincount(codes[known], d_acc[known], minlength=n).astype(np.int64),
            np.bincount(codes[known], d_hit[known], minlength=n).astype(np.int64))


def share_by_map_region(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Samples per region of the memory map by its own name (e.g. qemu-virt's `dram`), with the category it counts
    under; regions no sample fell in are left out."""
    import numpy as np
    import pandas as pd

    codes = frame["region"].cat.codes.to_numpy()
    labels = list(frame["region"].cat.categories)
    counts = np.bincount(codes, minlength=len(labels))
    category = frame["category"].to_numpy()
    first = {int(c): str(category[i]) for c, i in zip(*np.unique(codes, return_index=True))}
    rows = [(labels[c], first[c], int(counts[c])) for c in np.argsort(-counts, kind="stable") if counts[c]]
    out = pd.DataFrame(rows, columns=["region", "category", "samples"]).set_index("region")
    w = frame["weight"].to_numpy()
    shares = np.bincount(codes, weights=w, minlength=len(labels)) / max(w.sum(), 1e-300)
    out["share"] = [shares[labels.index(r)] for r in out.index]
    return out


def share_by_function(frame: "pd.DataFrame", top: int | None = None) -> "pd.DataFrame":
    """Samples per function (most first), its share, and how its samples split over the categories."""
    import numpy as np
    import pandas as pd

    f = frame["function"].cat.codes.to_numpy().astype(np.int64)
    labels = np.asarray(frame["function"].cat.categories, dtype=object)
    n = len(CATEGORIES)
    counts = np.bincount(f * n + frame["category"].cat.codes.to_numpy(), minlength=len(labels) * n)
    counts = counts.reshape(len(labels), n)
    total = counts.sum(axis=1)
    w = frame["weight"].to_numpy()
    share = np.bincount(f, weights=w, minlength=len(labels)) / max(w.sum(), 1e-300)
    order = np.lexsort((-total, -share))
    order = order[total[order] > 0]
    used = counts.any(axis=0)
    table = pd.DataFrame(counts[np.ix_(order, used)], columns=[c for c, u in zip(CATEGORIES, used) if u],
                         index=pd.Index(labels[order].astype(str), name="function"))
    table.insert(0, "share", share[order])
    table.insert(0, "samples", total[order])
    return table.head(top) if top else table


def misses_by_sample(frame: "pd.DataFrame") -> "np.ndarray":
    """XIP misses attributed to each sample: half of the interval before it and half of the one after (module
    docstring); unknown intervals give nothing. All NaN when the run has no known interval (no counters)."""
    import numpy as np

    miss = frame["d_acc"].to_numpy() - frame["d_hit"].to_numpy()     # the interval ending at each sample
    if len(miss) == 0 or np.isnan(miss).all():
        return np.full(len(miss), np.nan)
    half = np.nan_to_num(miss) / 2
    out = half.copy()
    out[:-1] += half[1:]
    return out


def share_by_line(frame: "pd.DataFrame", top: int | None = None) -> "pd.DataFrame":
    """Samples per source line (most first) with the function they fell in, and the XIP misses attributed to them
    (misses_by_sample: NaN without counters)."""
    import numpy as np
    import pandas as pd

    f = frame["function"].cat.codes.to_numpy().astype(np.int64)
    line = frame["line"].cat.codes.to_numpy().astype(np.int64)
    which, pairs = pd.factorize(line * len(frame["function"].cat.categories) + f)
    counts = np.bincount(which, minlength=len(pairs))
    w = frame["weight"].to_numpy()
    share = np.bincount(which, weights=w, minlength=len(pairs)) / max(w.sum(), 1e-300)
    misses = misses_by_sample(frame)
    order = np.lexsort((-counts, -share))
    nf = len(frame["function"].cat.categories)
    out = pd.DataFrame({
        "function": np.asarray(frame["function"].cat.categories, dtype=object)[pairs[order] % nf].astype(str),
        "samples": counts[order], "share": share[order],
        "misses": np.bincount(which, weights=np.nan_to_num(misses), minlength=len(pairs))[order]
        if not np.isnan(misses).all() else np.full(len(pairs), np.nan)},
        index=pd.Index(np.asarray(frame["line"].cat.categories, dtype=object)[pairs[order] // nf].astype(str),
                       name="line"))
    return out.head(top) if top else out


def hit_rate(frame: "pd.DataFrame") -> dict:
    """XIP accesses, hits and hit rate over every known interval, and how many intervals were unknown."""
    import numpy as np

    d_acc = frame["d_acc"].to_numpy()
    known = ~np.isnan(d_acc)
    accesses = int(np.nansum(d_acc))
    hits = int(np.nansum(frame["d_hit"].to_numpy()))
    has_counters = bool(frame["xip_acc"].notna().any())
    return {"has_counters": has_counters, "accesses": accesses, "hits": hits, "misses": accesses - hits,
            "hit_rate": hits / accesses if accesses else None,
            "intervals": max(len(frame) - 1, 0), "unknown_intervals": int(max(len(frame) - 1, 0) - known.sum())}


def hit_rate_over_time(frame: "pd.DataFrame", buckets: int = 50) -> "pd.DataFrame":
    """Per time bucket (by the sample's t_ns): samples, XIP accesses, hits, hit_rate, and samples per category."""
    import numpy as np
    import pandas as pd

    t = frame["t_ns"].to_numpy()
    if len(t) == 0:
        return pd.DataFrame(columns=["t_start_s", "samples", "accesses", "hits", "hit_rate"])
    t0, t1 = int(t.min()), int(t.max())
    width = max((t1 - t0) / max(buckets, 1), 1.0)
    bucket = np.minimum(((t - t0) / width).astype(np.int64), buckets - 1)
    out = pd.DataFrame({"t_start_s": (t0 + np.arange(buckets) * width) / 1e9})
    out["samples"] = np.bincount(bucket, minlength=buckets)
    d_acc, d_hit = frame["d_acc"].to_numpy(), frame["d_hit"].to_numpy()
    known = ~np.isnan(d_acc)
    out["accesses"] = np.bincount(bucket[known], weights=d_acc[known], minlength=buckets).astype(np.int64)
    out["hits"] = np.bincount(bucket[known], weights=d_hit[known], minlength=buckets).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["hit_rate"] = np.where(out["accesses"] > 0, out["hits"] / out["accesses"], np.nan)
    codes = frame["category"].cat.codes.to_numpy()
    per = np.bincount(bucket * len(CATEGORIES) + codes, minlength=buckets * len(CATEGORIES))
    per = per.reshape(buckets, len(CATEGORIES))
    for k, name in enumerate(CATEGORIES):
        out[name] = per[:, k]
    return out


def intrusiveness(frame: "pd.DataFrame") -> dict:
    """How much the sampling disturbed the target: halted time per sample and the share of the run spent halted."""
    import numpy as np

    h = frame["halted_ns"].to_numpy(dtype=float)
    t = frame["t_ns"].to_numpy(dtype=float)
    span = float(t.max() - t.min() + (h[-1] if len(h) else 0)) if len(t) else 0.0
    return {"samples": int(len(frame)),
            "duration_s": span / 1e9,
            "rate_hz": float((len(t) - 1) / ((t.max() - t.min()) / 1e9)) if len(t) > 1 and t.max() > t.min() else None,
            "halted_ns_median": float(np.median(h)) if len(h) else None,
            "halted_ns_p95": float(np.percentile(h, 95)) if len(h) else None,
            "halted_share": float(h.sum() / span) if span > 0 else None}


# --- a model's truth beside the samples ---------------------------------------------------------------------------

TRUTH_COUNTS = ("instructions", "cycles", "fetch_accesses", "fetch_hits", "data_accesses", "data_hits")


def total_variation(p, q) -> float:
    """Total variation distance between two distributions given as {outcome: share} (pandas Series or dicts):
    half the summed absolute differences over every outcome of either; 0 = the same, 1 = disjoint."""
    keys = set(p.keys()) | set(q.keys())
    return 0.5 * sum(abs(float(p.get(k, 0.0)) - float(q.get(k, 0.0))) for k in keys)


def truth_delta(truth: dict) -> "pd.DataFrame":
    """Per function, the model's counts over the sampled run (truth.json's `after` less its `before`), with its
    start address; functions that did not run in between are left out."""
    import pandas as pd

    def table(stats):
        rows = {f["name"]: [f.get("start", 0)] + [f.get(k, 0) for k in TRUTH_COUNTS] for f in stats["functions"]}
        return pd.DataFrame.from_dict(rows, orient="index", columns=["start", *TRUTH_COUNTS])

    counts = list(TRUTH_COUNTS)
    after = table(truth["after"])
    before = table(truth.get("before") or {"functions": []}).reindex(after.index, fill_value=0)
    out = after.copy()
    out[counts] = after[counts] - before[counts]
    out.index.name = "function"
    return out[out["instructions"] > 0]


def versus_truth(frame: "pd.DataFrame", truth: dict, memory_map: "MemoryMap") -> dict:
    """The samples beside a model's exact counts: per function and per region (category), the sampled share
    (cycle-weighted when the run read mcycle) and the true share of cycles, the sampled hit rate (intervals wholly
    in it) and the true one, and the total variation distance of each distribution from the truth."""
    import numpy as np
    import pandas as pd

    exact = truth_delta(truth)
    cycles = exact["cycles"].astype(float)
    acc = exact["fetch_accesses"] + exact["data_accesses"]
    hits = exact["fetch_hits"] + exact["data_hits"]
    _, _, category = region_codes(exact["start"].to_numpy(dtype=np.uint64), memory_map)
    exact["category"] = [CATEGORIES[c] for c in category]

    f_codes = frame["function"].cat.codes.to_numpy().astype(np.int64)
    names = [str(c) for c in frame["function"].cat.categories]
    w = frame["weight"].to_numpy()
    f_share = pd.Series(np.bincount(f_codes, weights=w, minlength=len(names)) / max(w.sum(), 1e-300), index=names)
    f_acc, f_hit = interval_counts(frame, f_codes, len(names))
    f_rate = pd.Series(np.where(f_acc > 0, f_hit / np.maximum(f_acc, 1), np.nan), index=names)
    true_share = cycles / max(cycles.sum(), 1e-300)
    index = true_share.index.union(f_share[f_share > 0].index)
    functions = pd.DataFrame({
        "sampled_share": f_share.reindex(index, fill_value=0.0), "true_share": true_share.reindex(index, fill_value=0.0),
        "sampled_hit_rate": f_rate.reindex(index), "true_hit_rate": (hits / acc.where(acc > 0)).reindex(index),
        "true_cycles": cycles.reindex(index, fill_value=0).astype(np.int64)}, index=pd.Index(index, name="function"))
    functions = functions.sort_values("true_share", ascending=False)

    by_region = share_by_region(frame)
    grouped = exact.groupby("category")
    r_cycles = grouped["cycles"].sum()
    r_acc = (grouped["fetch_accesses"].sum() + grouped["data_accesses"].sum())
    r_hits = (grouped["fetch_hits"].sum() + grouped["data_hits"].sum())
    regions = pd.DataFrame({
        "sampled_share": by_region["share"], "true_share": (r_cycles / max(r_cycles.sum(), 1)).reindex(CATEGORIES),
        "sampled_hit_rate": by_region["hit_rate"], "true_hit_rate": (r_hits / r_acc.where(r_acc > 0)).reindex(
            CATEGORIES)}, index=pd.Index(CATEGORIES, name="category")).fillna({"true_share": 0.0})
    regions = regions[(regions["sampled_share"] > 0) | (regions["true_share"] > 0)]
    sampled_rate = hit_rate(frame)
    return {"model": truth.get("model"), "weighted": weighted(frame), "cycles": int(cycles.sum()),
            "tv_functions": total_variation(functions["sampled_share"], functions["true_share"]),
            "tv_regions": total_variation(regions["sampled_share"], regions["true_share"]),
            "hit_rate": {"sampled": sampled_rate["hit_rate"],
                         "true": float(hits.sum() / acc.sum()) if acc.sum() else None},
            "functions": functions, "regions": regions}


# --- attribution of misses ---------------------------------------------------------------------------------------

def nnls(gram: "np.ndarray", rhs: "np.ndarray", tol: float = 1e-10) -> "np.ndarray":
    """Non-negative least squares from the normal equations (Lawson-Hanson active set): argmin |Xb - y|, b >= 0,
    given gram = X'X and rhs = X'y. Small problems only (one column per function)."""
    import numpy as np

    n = len(rhs)
    x = np.zeros(n)
    passive = np.zeros(n, bool)
    scale = max(float(np.abs(rhs).max()), 1.0)
    for _ in range(3 * n + 10):
        w = rhs - gram @ x
        candidates = np.where(~passive, w, -np.inf)
        j = int(np.argmax(candidates))
        if passive.all() or candidates[j] <= tol * scale:
            break
        passive[j] = True
        while True:
            z = np.zeros(n)
            idx = np.nonzero(passive)[0]
            z[idx] = np.linalg.lstsq(gram[np.ix_(idx, idx)], rhs[idx], rcond=None)[0]
            if (z[idx] > 0).all():
                x = z
                break
            bad = passive & (z <= 0)
            alpha = np.min(x[bad] / (x[bad] - z[bad]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
    return x


def attribute_misses(frame: "pd.DataFrame", top: int = 12, bootstrap: int = 200, blocks: int = 50,
                     seed: int = 0, level: float = 0.90) -> "pd.DataFrame":
    """Which functions the XIP misses (and accesses) belong to, with bootstrap intervals.

    Model: an interval's misses = sum over functions of (its share of the interval) x (its misses per interval),
    each function's share being half for each end sample that fell in it. Non-negative least squares over every
    known interval gives misses and accesses per interval for the `top` functions by samples (the rest pooled as
    "(other)"); a block bootstrap over `blocks` contiguous stretches of the run (which keeps phases together)
    gives the `level` interval. Columns: samples, misses_per_interval (+ _low/_high), accesses_per_interval,
    misses (attributed total, + _low/_high), miss_share, hit_rate (1 - misses/accesses for that function).
    Empty when the run has no known counter intervals.
    """
    import numpy as np
    import pandas as pd

    d_acc, d_hit = frame["d_acc"].to_numpy(), frame["d_hit"].to_numpy()
    known = np.nonzero(~np.isnan(d_acc))[0]
    if len(known) < 2:
        return pd.DataFrame()
    f = frame["function"].cat.codes.to_numpy()
    labels = np.asarray(frame["function"].cat.categories, dtype=object)
    per_function = np.bincount(f, minlength=len(labels))
    order = np.argsort(-per_function, kind="stable")
    order = order[per_function[order] > 0]
    chosen = order[:top]
    names = [str(labels[i]) for i in chosen]
    k = len(names) + 1                                    # the last column is "(other)"
    column_of = np.full(len(labels), k - 1)
    column_of[chosen] = np.arange(len(chosen))
    fcodes = column_of[f]
    a, b = fcodes[known - 1], fcodes[known]
    miss = d_acc[known] - d_hit[known]
    acc = d_acc[known]
    nblocks = int(min(blocks, len(known)))
    blk = (np.arange(len(known)) * nblocks) // len(known)

    # Per block: gram = sum x x' with x = (e_a + e_b)/2, rhs = sum x y. Built with bincount, no Python loop.
    gram = np.zeros(nblocks * k * k)
    for i, j in ((a, a), (b, b), (a, b), (b, a)):
        gram += np.bincount(blk * k * k + i * k + j, weights=np.full(len(i), 0.25), minlength=nblocks * k * k)
    gram = gram.reshape(nblocks, k, k)
    rhs_m = (np.bincount(blk * k + a, 0.5 * miss, nblocks * k) + np.bincount(blk * k + b, 0.5 * miss, nblocks * k))
    rhs_a = (np.bincount(blk * k + a, 0.5 * acc, nblocks * k) + np.bincount(blk * k + b, 0.5 * acc, nblocks * k))
    rhs_m, rhs_a = rhs_m.reshape(nblocks, k), rhs_a.reshape(nblocks, k)
    weight = gram.sum(axis=(0, 2))                       # each function's share of the known intervals

    est_m = nnls(gram.sum(0), rhs_m.sum(0))
    est_a = nnls(gram.sum(0), rhs_a.sum(0))
    rng = np.random.default_rng(seed)
    boot = np.empty((bootstrap, k))
    for r in range(bootstrap):
        w = np.bincount(rng.integers(0, nblocks, nblocks), minlength=nblocks).astype(float)
        boot[r] = nnls(np.tensordot(w, gram, 1), w @ rhs_m)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    low, high = np.quantile(boot, lo_q, axis=0), np.quantile(boot, hi_q, axis=0)
    out = pd.DataFrame({"samples": [int(per_function[i]) for i in chosen] + [int(per_function[order[top:]].sum())],
                        "misses_per_interval": est_m, "misses_per_interval_low": low,
                        "misses_per_interval_high": high, "accesses_per_interval": est_a},
                       index=pd.Index(names + ["(other)"], name="function"))
    out["misses"] = est_m * weight
    out["misses_low"] = low * weight
    out["misses_high"] = high * weight
    total = out["misses"].sum()
    out["miss_share"] = out["misses"] / total if total > 0 else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        out["hit_rate"] = np.where(est_a > 0, 1 - est_m / np.where(est_a > 0, est_a, 1), np.nan)
    if out.loc["(other)", "samples"] == 0:
        out = out.drop(index="(other)")
    out.attrs["level"] = level
    out.attrs["intervals"] = int(len(known))
    out.attrs["blocks"] = nblocks
    return out


# --- the RP2350 LR/SC livelock -----------------------------------------------------------------------------------

@dataclass
class Livelock:
    """A core stuck in an lr.w/sc.w retry loop, and what is known about the lock it spins on."""

    function: str | None
    lr_pc: int
    sc_pc: int
    loop_pcs: list[int]          # the distinct sampled pcs of the loop
    tail_samples: int            # samples in the trailing window examined
    share: float                 # of those, the share inside the loop
    duration_s: float            # time the trailing window covers
    lock_register: str           # rs1 of the lr.w: holds the lock address at the lr.w
    lock_address: int | None     # known only with registers
    lock_region: str | None
    verdict: str                 # one of livelock.VERDICTS: "rp2350-livelock" (lock outside SRAM, certain),
    #                              "likely-rp2350-livelock" (no registers), or "contention" (lock in SRAM: a real wait)
    explanation: str
    lock_variable: str | None = None   # the variable at the lock address, when the symbols know one

    def to_json(self) -> dict:
        return {"function": self.function, "lr_pc": self.lr_pc, "sc_pc": self.sc_pc, "loop_pcs": self.loop_pcs,
                "tail_samples": self.tail_samples, "share": self.share, "duration_s": self.duration_s,
                "lock_register": self.lock_register, "lock_address": self.lock_address,
                "lock_region": self.lock_region, "lock_variable": self.lock_variable, "verdict": self.verdict,
                "explanation": self.explanation}


def detect_lrsc_livelock(frame: "pd.DataFrame", elf_path: str | Path | None, symbols: "SymbolIndex | None" = None,
                         memory_map: "MemoryMap | None" = None, registers: dict | None = None,
                         min_samples: int = 20, min_share: float = 0.9) -> Livelock | None:
    """A trailing stretch of samples (the last quarter, at least `min_samples`) held at >= `min_share` in a few
    pcs that span an lr.w and an sc.w: the RP2350 livelock of rp2350.md "Atomics outside SRAM" (lr.w outside SRAM
    sets no reservation, so sc.w always fails). The pcs come from the samples, the instructions from the ELF, the
    loop and the judgement of its lock from livelock.py.
    The lock address needs the lr.w's rs1 register: pass `registers` (read at a halt inside the loop) to know;
    without them the verdict says it is inferred."""
    import numpy as np

    from .. import livelock
    from ..chip.memory_map import get_memory_map
    from ..elf.code import read_elf_bytes

    if elf_path is None or len(frame) < min_samples:
        return None
    n_tail = max(min_samples, len(frame) // 4)
    tail = frame.iloc[-n_tail:]
    pcs = tail["pc"].to_numpy(dtype=np.int64)
    center = int(np.median(pcs))
    near = pcs[np.abs(pcs - center) <= 64]
    share = len(near) / len(pcs)
    if share < min_share:
        return None
    lo, hi = int(near.min()), int(near.max())
    loop = livelock.find_lrsc_loop(lambda address, size: read_elf_bytes(elf_path, address, size), lo, hi, symbols)
    if loop is None:
        return None
    memory_map = memory_map if memory_map is not None else get_memory_map("rp2350")
    lock = livelock.judge_lock(loop, registers, memory_map, symbols)
    t = tail["t_ns"].to_numpy()
    duration = float(t[-1] - t[0]) / 1e9
    loop_pcs = sorted(int(p) for p in np.unique(near))
    lr_pc, sc_pc = loop.lr.address, loop.sc.address
    where = ""
    if loop.function is not None:
        _name, offset, _file, _line = symbols.symbolize([lr_pc])[0]
        where = f", {loop.function}+{offset:#x}"
    head = (f"{share:.0%} of the last {n_tail} samples ({duration:.3g} s) sit in an lr.w/sc.w retry loop "
            f"(lr.w at {lr_pc:#x}{where}; sc.w at {sc_pc:#x}).")
    sentence = livelock.explain(loop, lock, memory_map)
    return Livelock(loop.function, lr_pc, sc_pc, loop_pcs, n_tail, share, duration, loop.lock_register,
                    lock.address if lock else None, lock.region_name if lock else None, livelock.verdict(lock),
                    f"{head} {sentence[0].upper()}{sentence[1:]}", lock.variable if lock else None)
