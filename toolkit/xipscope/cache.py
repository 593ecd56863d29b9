"""Where xipscope keeps what it derives from inputs (symbol indexes, struct layouts, kernel builds)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$XIPSCOPE_CACHE, else ~/.cache/xipscope."""
    return Path(os.environ.get("XIPSCOPE_CACHE") or Path.home() / ".cache" / "xipscope")
