"""The file to `source` in gdb-multiarch (its path: `xipscope gdb-script`): puts this copy of xipscope on gdb's
sys.path, then `import xipscope.gdb` registers the `xs` commands.

gdb embeds its own Python (Debian's: the system python3), which sees neither a venv nor this package unless told.
This file puts the directory holding the package first (a venv's site-packages, with its .pth files as Python's
start-up would read them, or a checkout's toolkit/). If the libraries xipscope needs are still missing there (a
checkout, or an editable install), it adds a venv's site-packages: $XIPSCOPE_VENV, else the active $VIRTUAL_ENV, else
a checkout's .venv. Either venv must be made with the Python minor version gdb embeds (`python3 -m venv` on Debian).
Not imported by anything: gdb runs it.
"""

import os
import site
import sys
from pathlib import Path

import gdb


def _load_xipscope_commands() -> None:
    home = Path(__file__).resolve().parents[2]     # .../site-packages or a checkout's toolkit/
    if str(home) in sys.path:
        sys.path.remove(str(home))
    sys.path.insert(0, str(home))                  # this copy first, before any other xipscope gdb can see
    site.addsitedir(str(home))                     # its .pth files (dependencies or an editable install)
    try:
        import xipscope.gdb  # noqa: F401
        return
    except ImportError as e:
        missing = e
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    checkout_venv = home.parent / ".venv" if home.name == "toolkit" else None
    venvs = [Path(v) for v in (os.environ.get("XIPSCOPE_VENV"), os.environ.get("VIRTUAL_ENV"), checkout_venv) if v]
    for venv in venvs:
        site_packages = venv / "lib" / version / "site-packages"
        if site_packages.is_dir():
            site.addsitedir(str(site_packages))
            try:
                import xipscope.gdb  # noqa: F401,F811
                return
            except ImportError as e:
                missing = e
    tried = ", ".join(str(v / "lib" / version / "site-packages") for v in venvs) or "none"
    # A message, not an exception: gdb would print a Python traceback for an exception raised by a sourced file.
    gdb.write(f"xipscope: the xs commands are not loaded: {missing}\n(venv site-packages tried for gdb's {version}: "
              f"{tried}. Set XIPSCOPE_VENV to a venv made with {version} that has xipscope's dependencies, then source "
              f"this file again.)\n", gdb.STDERR)


_load_xipscope_commands()
del _load_xipscope_commands
