"""The on-disk symbol index cache: one .npz of arrays plus a small .json per file content hash."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..disk_cache import cache_root

# Bump when the arrays or their meaning change, so an older xipscope's entries are rebuilt rather than misread.
FORMAT = 6


def cache_dir(override: Path | str | None = None) -> Path:
    if override is not None:
        return Path(override)
    return cache_root() / "symbols"


def _paths(directory: Path, key: str) -> tuple[Path, Path]:
    return directory / f"{key}.npz", directory / f"{key}.json"


def load(directory: Path, key: str) -> tuple[dict, dict] | None:
    """The arrays and metadata stored for `key`, or None when absent, from another format, or damaged in any way."""
    import numpy as np

    npz_path, json_path = _paths(directory, key)
    try:
        meta = json.loads(json_path.read_text())
        if meta.get("format") != FORMAT or meta.get("key") != key:
            return None
        if npz_path.stat().st_size != meta.get("npz_bytes"):
            return None
        # Zip members carry CRC32s that numpy's reader checks, so flipped bytes fail here instead of loading silently.
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        return arrays, meta
    except Exception:  # any damage at all means "not cached": the caller rebuilds and overwrites
        return None


def store(directory: Path, key: str, arrays: dict, meta: dict) -> None:
    """Write atomically (temp file + rename) so a concurrent reader or a crash never sees half an entry."""
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    npz_path, json_path = _paths(directory, key)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        size = os.path.getsize(tmp)
        os.replace(tmp, npz_path)
        meta = dict(meta, format=FORMAT, key=key, npz_bytes=size)
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".json.tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, json_path)
    except OSError:
        # A read-only or full cache directory costs speed next time, never correctness now.
        try:
            os.unlink(tmp)
        except OSError:
            pass
