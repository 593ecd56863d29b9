"""`xipscope serve DIR`: a snapshot served over the GDB remote protocol (snapshot/serve.py)."""

from __future__ import annotations

DESCRIPTION = ("Serve a snapshot directory to gdb: registers (the target description it was taken with), "
               "memory (reads outside the saved regions are errors, not zeros). Nothing runs: continue and "
               "step answer at once with a stop. Binds 127.0.0.1; prints the port.")
EPILOG = """example:
  xipscope serve crash-1 --port 3334
  gdb-multiarch firmware.elf -ex 'target remote :3334'"""


def add_arguments(p) -> None:
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0, the default: any free port)")


def run(args) -> int:
    from ..snapshot.serve import serve_snapshot

    serve_snapshot(args.directory, args.port)
    return 0
