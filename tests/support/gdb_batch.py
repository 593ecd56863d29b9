"""gdb-multiarch in batch mode with gdb_scripts/xipscope.py sourced, for the `xs` command tests (twin/ and kernel/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "gdb_scripts" / "xipscope.py"
# gdb's Python (the system's) lacks xipscope's libraries: the script adds the venv these tests run in (a worktree has
# no .venv of its own).
GDB_ENV = dict(os.environ, XIPSCOPE_VENV=sys.prefix)


def gdb_batch(*commands: str, elf: Path | None = None, port: int | None = None, timeout: float = 120) -> str:
    """Run gdb-multiarch in batch mode with the script sourced; return what it printed (stdout + stderr)."""
    args = ["gdb-multiarch", "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off"]
    if elf:
        args += ["-ex", f"file {elf}"]
    args += ["-ex", f"source {SCRIPT}"]
    if port:
        args += ["-ex", f"target remote 127.0.0.1:{port}"]
    for command in commands:
        args += ["-ex", command]
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=GDB_ENV)
    return result.stdout + result.stderr


def between(text: str, begin: str, end: str) -> str:
    return text.split(begin + "\n", 1)[1].split(end + "\n", 1)[0]
