"""xipscope inside gdb-multiarch: `python import xipscope.gdb` registers the `xs` commands, then `help xs`.

That works wherever gdb's embedded Python can import xipscope and its dependencies (a `pip install --user xipscope`
made with the Python gdb embeds, or PYTHONPATH). A venv is not seen by Debian's gdb, which embeds the system python3:
source the file `xipscope gdb-script` prints (xipscope/gdb/script.py), which puts the venv on gdb's sys.path first.

Importing this package checks, before anything else, that the libraries the commands import are there, so that a
missing one is named now rather than as a traceback in the middle of `xs dmesg`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ..errors import XipscopeError

# The third-party modules the xs commands import (ELF reading, instruction decoding, the profile's tables and plots).
NEEDED = ("elftools", "numpy", "capstone", "pandas", "pyarrow", "matplotlib")


class MissingDependencies(XipscopeError, ImportError):
    """gdb's Python finds xipscope but not the libraries it needs (an ImportError too: the loader, script.py, then
    tries a venv)."""


def _check_dependencies() -> None:
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        package = Path(__file__).resolve().parent.parent
        raise MissingDependencies(
            f"xipscope.gdb: gdb's Python {version} imports xipscope from {package} but not {', '.join(missing)} "
            f"(xipscope's dependencies). Install xipscope for that Python (`python{version} -m pip install --user "
            f"--break-system-packages XIPSCOPE-DIR` on Debian), or source the file `xipscope gdb-script` prints "
            f"from a venv made with Python {version}.",
            name=missing[0])


_check_dependencies()

from . import commands  # noqa: E402,F401  (registers the commands)
