"""C helpers built on first use: the twin's hot hooks (sim/native/xip_hooks.c) and rsp://'s sampling loop
(rsp/sample_loop.c).

`native_library(source, ...)` builds a C source with the system C compiler (CC, else `cc`) on first use, into the
cache (cache_root()/native/<hash of the source and `key`>.so), and loads it with ctypes, once per process. None when
XIPSCOPE_NATIVE=0, or (with one line on stderr) when there is no compiler or the build fails: the Python code that does
the same work is then used.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
from pathlib import Path

_libraries: dict = {}   # source -> the loaded library or None, once per process


def native_library(source: Path, what: str, fallback: str, key: str = "", check=None):
    """The built `source` (a ctypes CDLL), or None. what / fallback name the library and what is used without it (the
    stderr line); key: what else the build depends on (hashed with the source); check(lib, path): declares the
    functions' types and raises ValueError where the library does not fit its Python side."""
    if os.environ.get("XIPSCOPE_NATIVE", "1") == "0":
        return None
    if source not in _libraries:
        try:
            path = _build(source, key)
            lib = ctypes.CDLL(str(path))
            if check is not None:
                check(lib, path)
            _libraries[source] = lib
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            print(f"xipscope: {what} are unavailable ({e}); using {fallback}", file=sys.stderr)
            _libraries[source] = None
    return _libraries[source]


def _build(source: Path, key: str) -> Path:
    from .disk_cache import cache_root

    text = source.read_bytes()
    digest = hashlib.blake2b(text + f"|{key}".encode(), digest_size=10).hexdigest()
    lib_path = cache_root() / "native" / f"{digest}.so"
    if not lib_path.exists():
        cc = os.environ.get("CC") or "cc"
        lib_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = lib_path.with_suffix(f".{os.getpid()}.tmp")
        try:
            r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(source)],
                               capture_output=True, text=True, timeout=300)
            if r.returncode:
                raise ValueError(f"{cc} failed on {source}: {r.stderr.strip()[-300:]}")
            os.replace(tmp, lib_path)   # atomic: concurrent first uses each build, one wins
        finally:
            tmp.unlink(missing_ok=True)
    return lib_path
