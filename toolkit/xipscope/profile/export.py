"""Machine formats of a profile: CSV of the tables, speedscope JSON and collapsed stacks (flamegraph.pl / inferno).

Stacks: the `stack` column holds return addresses, innermost first, without the sampled pc; the pc is prepended here.
A return address points after its call, so it is symbolized at ra - 1 (as addr2line and perf do) to name the call's
own line. Samples taken without --stacks have no stack and give a one-frame stack (the pc's function).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from ..elf.symbols import SymbolIndex

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def write_csv(tables: dict[str, "pd.DataFrame"], directory: Path) -> list[Path]:
    """One CSV per table (`by_region.csv`, ...), index as the first column."""
    paths = []
    for name, table in tables.items():
        path = Path(directory) / f"{name}.csv"
        table.to_csv(path, float_format="%.6g")
        paths.append(path)
    return paths


def has_stacks(frame: "pd.DataFrame") -> bool:
    return bool(frame["stack"].notna().any())


def _stack_frames(frame: "pd.DataFrame", symbols: "SymbolIndex | None"):
    """(frame names, per sample a list of frame ids innermost first) with one symbolize call for every address."""
    import numpy as np

    pcs = frame["pc"].to_numpy(dtype=np.int64)
    stacks = frame["stack"].tolist()
    lengths = np.array([len(s) if s is not None else 0 for s in stacks], dtype=np.int64)
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in stacks if s is not None and len(s)]) \
        if lengths.any() else np.zeros(0, np.int64)
    addresses = np.concatenate([pcs, flat])           # what an unsymbolized frame shows
    if symbols is not None:
        s = symbols.symbolize(np.concatenate([pcs, flat - 1]).astype(np.uint64))
        names = np.where(s.function_id >= 0, s.function, None)
        names = [n if n is not None else f"{int(a) & 0xFFFFFFFF:#x}" for n, a in zip(names.tolist(), addresses)]
    else:
        names = [f"{int(a) & 0xFFFFFFFF:#x}" for a in addresses]
    ids: dict[str, int] = {}
    codes = [ids.setdefault(n, len(ids)) for n in names]
    out, pos = [], len(pcs)
    for i, n in enumerate(lengths.tolist()):
        out.append([codes[i]] + codes[pos:pos + n])
        pos += n
    return list(ids), out


def collapsed_stacks(frame: "pd.DataFrame", symbols: "SymbolIndex | None") -> str:
    """`root;caller;leaf COUNT` lines, most frequent first, as flamegraph.pl and inferno-flamegraph read them."""
    from collections import Counter

    names, stacks = _stack_frames(frame, symbols)
    # flamegraph.pl splits frames on ';' and the count on the last space: keep both out of names.
    clean = [n.replace(";", ":").replace(" ", "_") for n in names]
    counts = Counter(";".join(clean[f] for f in reversed(s)) for s in stacks)
    return "".join(f"{stack} {count}\n" for stack, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def speedscope(frame: "pd.DataFrame", symbols: "SymbolIndex | None", name: str) -> dict:
    """A speedscope 'sampled' profile: one sample per row, weighted by the time to the next sample (ns)."""
    import numpy as np

    names, stacks = _stack_frames(frame, symbols)
    t = frame["t_ns"].to_numpy(dtype=np.int64)
    weights = np.diff(t, append=t[-1] + (int(np.median(np.diff(t))) if len(t) > 1 else 1)) if len(t) else t
    weights = np.maximum(weights, 0)
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "exporter": "xipscope report",
        "name": name,
        "activeProfileIndex": 0,
        "shared": {"frames": [{"name": n} for n in names]},
        "profiles": [{
            "type": "sampled", "name": name, "unit": "nanoseconds",
            "startValue": 0, "endValue": int(weights.sum()),
            "samples": [list(reversed(s)) for s in stacks],     # speedscope wants the root first
            "weights": [int(w) for w in weights],
        }],
    }


def write_stacks(frame: "pd.DataFrame", symbols: "SymbolIndex | None", directory: Path, name: str) -> list[Path]:
    """profile.speedscope.json and stacks.collapsed (written only when the run sampled stacks)."""
    directory = Path(directory)
    ss = directory / "profile.speedscope.json"
    ss.write_text(json.dumps(speedscope(frame, symbols, name)))
    col = directory / "stacks.collapsed"
    col.write_text(collapsed_stacks(frame, symbols))
    return [ss, col]

