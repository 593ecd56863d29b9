"""Where xipscope keeps what it derives from inputs (symbol indexes, struct layouts, kernel builds)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    """$XIPSCOPE_CACHE, else ~/.cache/xipscope."""
    return Path(os.environ.get("XIPSCOPE_CACHE") or Path.home() / ".cache" / "xipscope")


def content_hash(path) -> str:
    """blake2b-160 of the file's bytes, remembered beside its identity (device, inode, size, mtime) so that a warm
    run does not read a 34 MB vmlinux again just to find its cache entries. OSError when it can't be stat'ed, an
    XipscopeError when it is not a regular file."""
    path = Path(path)
    st = path.stat()
    identity = f"{path.resolve()}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"
    memo = cache_root() / "digests" / hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()
    try:
        digest = memo.read_text()
        if len(digest) == 40:
            return digest
    except OSError:
        pass
    from .files import open_regular   # a FIFO or /dev/zero would be hashed for ever

    h = hashlib.blake2b(digest_size=20)
    with open_regular(path, "the file to hash") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(digest)
    tmp.replace(memo)
    return digest
