"""xipscope's gdb commands from a checkout: `source gdb_scripts/xipscope.py` in gdb-multiarch, then `help xs`.

The commands live in the package (toolkit/xipscope/gdb/); this file only runs the package's loader,
toolkit/xipscope/gdb/script.py (the file `xipscope gdb-script` prints), which puts the checkout's toolkit/ first on
gdb's sys.path and, if gdb's Python lacks xipscope's libraries, the checkout's .venv (`make venv`; or $XIPSCOPE_VENV,
or the active $VIRTUAL_ENV).
Installed with pip instead? `python import xipscope.gdb`, or `source` the path `xipscope gdb-script` prints.
"""

import runpy
from pathlib import Path

# runpy, not gdb's `source`: a file sourced from a sourced Python file gets the outer file's __file__ (gdb 13), and
# the loader finds the package by its own path.
runpy.run_path(str(Path(__file__).resolve().parent.parent / "toolkit" / "xipscope" / "gdb" / "script.py"))
