"""Targets by URL: `open_target("rsp://127.0.0.1:1234")` and friends (see DESIGN.md, Targets are named by URL)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import TargetError
from .base import MEMORY, REGISTERS, RUN_CONTROL, Target

__all__ = ["open_target", "Target", "MEMORY", "REGISTERS", "RUN_CONTROL", "SCHEMES"]

SCHEMES = {
    "rsp": "any GDB remote protocol server: rsp://HOST:PORT (QEMU -gdb, OpenOCD :3333, pyOCD gdbserver, xipscope sim)",
    "gdb": "the same servers through gdb-multiarch driven over GDB/MI (pygdbmi): gdb://HOST:PORT",
    "sim": "the RP2350 twin (a model), in-process: sim://FIRMWARE.elf[?flash=IMAGE.uf2 or IMAGE.bin[@ADDR]]",
    "snapshot": "a snapshot directory written by `xipscope snapshot`: snapshot://DIR",
    "openocd": "OpenOCD's Tcl RPC server: openocd://HOST:6666[?hart=1] (a Pico 2 through a debug probe, or the twin's "
               "JTAG face)",
    "pyocd": "a debug probe through pyOCD: pyocd://[UID][?hart=1] (RISC-V Debug Module at AP 0xa000), pyocd://[UID]?core=arm "
             "(Arm core 0 through pyOCD's rp2350 target); pyocd://twin:FIRMWARE.elf: the twin's DAP face",
}


def url_hart(query: str, url: str) -> int:
    """The `hart=N` option of an openocd:// or pyocd:// URL's query (RP2350: 0, the default, or 1)."""
    from urllib.parse import parse_qs
    value = parse_qs(query).get("hart", ["0"])[-1]
    if value not in ("0", "1"):
        raise TargetError(f"{url}: hart={value}; RP2350 has RISC-V harts 0 and 1")
    return int(value)


def open_target(url: str, timeout: float = 5.0) -> Target:
    """Open the target a URL names; the caller closes it."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme == "rsp":
        from .rsp import RspTarget
        if not parts.hostname or not parts.port:
            raise TargetError(f"{url!r}: an rsp URL names a host and port, e.g. rsp://127.0.0.1:1234")
        return RspTarget(parts.hostname, parts.port, timeout=timeout)
    if scheme == "gdb":
        from .gdbmi import GdbMiTarget
        if not parts.hostname or not parts.port:
            raise TargetError(f"{url!r}: a gdb URL names the GDB server's host and port, e.g. gdb://127.0.0.1:1234")
        return GdbMiTarget(parts.hostname, parts.port, timeout=timeout)
    if scheme == "openocd":
        from .openocd import DEFAULT_PORT, OpenOcdTarget
        if not parts.hostname:
            raise TargetError(f"{url!r}: an openocd URL names a host and optionally the Tcl port, e.g. openocd://127.0.0.1:6666")
        return OpenOcdTarget(parts.hostname, parts.port or DEFAULT_PORT, timeout=timeout,
                             hart=url_hart(parts.query, url))
    if scheme == "pyocd":
        from .pyocd import open_pyocd
        return open_pyocd(url[len("pyocd://"):], url)
    if scheme == "sim":
        from ..sim.target import SimTarget
        return SimTarget(url[len("sim://"):])
    if scheme == "snapshot":
        from ..snapshot.read import SnapshotTarget
        if not url[len("snapshot://"):]:
            raise TargetError("snapshot:// needs a directory, e.g. snapshot://crash-1")
        return SnapshotTarget(url[len("snapshot://"):])
    known = "; ".join(f"{k}:// ({v})" for k, v in SCHEMES.items())
    raise TargetError(f"unknown target URL {url!r}; known schemes: {known}")
