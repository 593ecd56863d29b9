"""Server processes the tests start: `python -m xipscope ...` commands that print 127.0.0.1:PORT on their first line
(`xipscope sim --gdb-port 0`, `xipscope serve DIR --port 0`). Each is stopped when its `with` block ends."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def xipscope_server(*args: str, **popen):
    """Start `xipscope ARGS` on a free loopback port; yield the port it announced; always stop it."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "xipscope", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **popen)
    try:
        line = proc.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            raise RuntimeError(f"`xipscope {' '.join(map(str, args))}` announced no port: {line!r} "
                               f"{proc.stderr.read() if proc.poll() is not None else ''}")
        yield int(match.group(1))
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def twin_gdb_server(firmware, *extra: str):
    """The twin's GDB server on FIRMWARE (`xipscope sim FIRMWARE --gdb-port 0 EXTRA...`)."""
    return xipscope_server("sim", firmware, "--gdb-port", "0", *extra)
