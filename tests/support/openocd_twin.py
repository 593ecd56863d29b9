"""Processes for the OpenOCD tests and benchmark: the twin's JTAG face (`xipscope sim --jtag-port 0`) and the real
`openocd` binary connected to it, each on free 127.0.0.1 ports, each stopped when the `with` block ends."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "kernel"))

from qemu import free_port  # noqa: E402
from support.servers import xipscope_server  # noqa: E402

from xipscope.sim.jtag import openocd_args  # noqa: E402


@dataclass
class OpenOcdSession:
    jtag_port: int
    gdb_port: int
    tcl_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"openocd://127.0.0.1:{self.tcl_port}"

    @property
    def gdb_url(self) -> str:
        return f"rsp://127.0.0.1:{self.gdb_port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a process this test started, then kill it if it does not go within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def twin_jtag(firmware: Path, *extra: str):
    """`xipscope sim FIRMWARE --jtag-port 0`; yields the remote_bitbang port."""
    return xipscope_server("sim", firmware, "--jtag-port", "0", *extra)


@contextlib.contextmanager
def openocd(jtag_port: int, workdir: Path, timeout: float = 30.0, target: str | None = None, gdb: bool = True):
    """The real openocd on the twin's TAP, gdb and Tcl on free ports; yields an OpenOcdSession once both listen
    (gdb=False: once Tcl listens, for a target OpenOCD serves no gdb port for; Tcl answers once OpenOCD's init is done).
    target: a `target create ...` command in place of the RISC-V one (e.g. a non-RISC-V target type)."""
    exe = shutil.which("openocd")
    if exe is None:
        raise RuntimeError("openocd is needed: apt-get install openocd (the Makefile's deps target does it)")
    session = OpenOcdSession(jtag_port, free_port(), free_port(), workdir / f"openocd-{jtag_port}.log")
    args = openocd_args(jtag_port, session.gdb_port, session.tcl_port)
    if target is not None:
        args = [target if a.startswith("target create") else a for a in args]
    with open(session.log, "w") as log:
        proc = subprocess.Popen([exe] + args[1:], stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        deadline = time.monotonic() + timeout
        # Tcl listens before the target is examined; the gdb server starts only after it.
        ready = (f"Listening on port {session.tcl_port} for tcl connections",
                 f"Listening on port {session.gdb_port} for gdb connections")[:2 if gdb else 1]
        while not all(line in session.log_text() for line in ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"openocd did not come up (exit {proc.poll()}):\n{session.log_text()[-2000:]}")
            time.sleep(0.05)
        yield session
    finally:
        stop_process(proc)
