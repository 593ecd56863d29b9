"""`xipscope gdb-script`: the path of the file that loads the xs commands into gdb-multiarch."""

from __future__ import annotations

DESCRIPTION = ("Print the path of the file to `source` in gdb-multiarch for the xs commands (xipscope/gdb/script.py): "
               "it puts this xipscope, and the venv it is installed in, on gdb's own Python path. Where gdb's Python "
               "imports xipscope already (e.g. `pip install --user` with the Python gdb embeds), "
               "`python import xipscope.gdb` in gdb does the same.")
EPILOG = """example:
  xipscope gdb-script
  gdb-multiarch firmware.elf -ex "source $(xipscope gdb-script)" -ex 'target remote :3333'
  (gdb) help xs"""


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    from pathlib import Path

    print(Path(__file__).resolve().parent.parent / "gdb" / "script.py")
    return 0
