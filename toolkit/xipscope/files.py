"""Opening the files strangers hand us (snapshots, profiles, flash and RAM images, ELFs, maps, logs): regular files
only, inside the directory they belong to, no bigger than what they stand for.

A FIFO, a device, a directory, a symlink out of a snapshot or a sparse file claiming a terabyte is then one clear
error naming the file, instead of a hang, an endless read, a file nobody named, or memory eaten whole. One copy of
these checks, used by every reader of outside files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import XipscopeError

_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")


def is_inside(path: str | Path, base: str | Path) -> bool:
    """Does `path`, every symlink on the way followed, stay within `base` (also resolved)?"""
    real, root = os.path.realpath(path), os.path.realpath(base)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def check_size(path, what: str, size: int, max_size: int | None, why: str, error=XipscopeError) -> None:
    """`error` when `size` bytes is more than `max_size`, the most `why` explains."""
    if max_size is not None and size > max_size:
        raise error(f"{path}: {what} of {size:,} bytes is larger than {max_size:,} bytes, the most {why}; "
                    "is this the right file?")


def open_regular(path: str | Path, what: str, *, base: str | Path | None = None, max_size: int | None = None,
                 why: str = "", error=XipscopeError, hint: str = "") -> BinaryIO:
    """`path` (relative to `base` when given) open for binary reading, or `error` naming it when it is not there, not
    a regular file once its symlinks are followed (a FIFO would block the reader for ever, a device never ends), leads
    out of `base`, or is larger than `max_size` (`why` says whose limit that is).

    The file is checked before it is opened (a device is never opened) and again after (the same inode), and opened
    non-blocking, so a FIFO put there in between cannot hang the caller either.
    """
    path = Path(base) / path if base is not None else Path(path)
    hint = f" {hint}" if hint else ""
    if base is not None and not is_inside(path, base):
        raise error(f"{path}: expected {what} inside {base}; found a path leading out of it (to "
                    f"{os.path.realpath(path)}). Files of {base} are read only inside it.{hint}")
    try:
        before = os.stat(path)
    except (OSError, ValueError) as e:      # ValueError: a NUL in the name
        raise error(f"{path}: expected {what}, which cannot be read ({getattr(e, 'strerror', None) or e}).{hint}") \
            from None
    if not stat.S_ISREG(before.st_mode):
        raise error(f"{path}: expected {what}, a regular file; found {_kind(before.st_mode)}."
                    f"{hint or ' Copy the data into a file and pass that.'}")
    check_size(path, what, before.st_size, max_size, why, error)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise error(f"{path}: expected {what}, which cannot be read ({e.strerror or e}).{hint}") from None
    after = os.fstat(fd)
    if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise error(f"{path}: {what} was replaced while it was being opened; pass a file nobody is changing.")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_bounded(f: BinaryIO, path, what: str, max_size: int, why: str, error=XipscopeError) -> bytes:
    """The rest of open file `f`, but never more than `max_size` bytes in memory (a file that grew is an error)."""
    data = f.read(max_size + 1)
    check_size(path, what, len(data), max_size, why, error)
    return data


def read_regular(path: str | Path, what: str, *, max_size: int, why: str, base: str | Path | None = None,
                 error=XipscopeError, hint: str = "") -> bytes:
    """The bytes of a regular file of at most `max_size` bytes (see open_regular)."""
    with open_regular(path, what, base=base, max_size=max_size, why=why, error=error, hint=hint) as f:
        return read_bounded(f, Path(base) / path if base is not None else path, what, max_size, why, error)


def read_regular_text(path: str | Path, what: str, *, max_size: int, why: str, base: str | Path | None = None,
                      error=XipscopeError, hint: str = "") -> str:
    """read_regular, decoded as UTF-8; bytes that are not UTF-8 are `error` naming the file and the offset."""
    data = read_regular(path, what, max_size=max_size, why=why, base=base, error=error, hint=hint)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        shown = Path(base) / path if base is not None else path
        raise error(f"{shown}: {what} should be UTF-8 text; found byte {data[e.start]:#04x} at offset {e.start}. "
                    f"{hint or 'Is it the right file?'}") from None


def output_dir(path: str | Path, base: str | Path | None = None, error=XipscopeError) -> Path:
    """Directory `path`, created if needed, to write files into: refused when it leads out of `base` (a symlink
    `DIR/report` pointing elsewhere) or already holds a symlink leading out of itself, which a write would follow."""
    path = Path(path)
    if base is not None and os.path.lexists(path) and not is_inside(path, base):
        raise error(f"{path} leads out of {base} (to {os.path.realpath(path)}); xipscope writes there only inside "
                    f"{base}. Remove {path} or pass --out with the directory you mean.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        entries = list(os.scandir(path))
    except OSError as e:
        raise error(f"{path}: cannot write there ({e.strerror or e}); pass --out with a directory you can "
                    "write") from None
    for entry in entries:
        if entry.is_symlink() and not is_inside(entry.path, path):
            raise error(f"{entry.path} is a symlink leading out of {path} (to {os.path.realpath(entry.path)}); "
                        "xipscope would write through it. Remove it or pass --out with a new directory.")
    return path
