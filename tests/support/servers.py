"""Server processes the tests start: `python -m xipscope ...` commands that print 127.0.0.1:PORT on their first line
(`xipscope sim --gdb-port 0`, `xipscope sim --jtag-port 0`, `xipscope serve DIR --port 0`). Each is stopped when its
`with` block ends."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    port: int
    process: subprocess.Popen
    stderr_path: Path

    def stderr_text(self) -> str:
        """What the server wrote to stderr so far (a file, not a pipe: a pipe nobody reads blocks a chatty server)."""
        return self.stderr_path.read_text(errors="replace")


@contextlib.contextmanager
def xipscope_server_process(*args: str, **popen):
    """Start `xipscope ARGS` on a free loopback port; yield a ServerProcess once it announced its port; always stop it."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory(prefix="xipscope-server-") as scratch:
        stderr_path = Path(scratch) / "stderr"
        with open(stderr_path, "w") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "xipscope", *map(str, args)], stdout=subprocess.PIPE,
                                    stderr=stderr, text=True, env=env, **popen)
        try:
            line = proc.stdout.readline()
            match = re.search(r"127\.0\.0\.1:(\d+)", line)
            if not match:
                if not line:
                    proc.wait(timeout=10)     # it exited: let its error reach the file
                raise RuntimeError(f"`xipscope {' '.join(map(str, args))}` announced no port: {line!r} "
                                   f"{stderr_path.read_text(errors='replace')}")
            yield ServerProcess(int(match.group(1)), proc, stderr_path)
        finally:
            proc.kill()
            proc.wait(timeout=10)
            proc.stdout.close()


@contextlib.contextmanager
def xipscope_server(*args: str, **popen):
    """Start `xipscope ARGS` on a free loopback port; yield the port it announced; always stop it."""
    with xipscope_server_process(*args, **popen) as server:
        yield server.port


def twin_gdb_server(firmware, *extra: str):
    """The twin's GDB server on FIRMWARE (`xipscope sim FIRMWARE --gdb-port 0 EXTRA...`)."""
    return xipscope_server("sim", firmware, "--gdb-port", "0", *extra)
