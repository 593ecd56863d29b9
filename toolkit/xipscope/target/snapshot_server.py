"""`xipscope serve DIR`: a snapshot served over the GDB remote protocol, so gdb-multiarch can inspect a crash later.

Read-only and halted for good: registers from the manifest (under the target description the snapshot was taken
with, else one built from gdb's RISC-V numbering), memory only where saved (other reads answer E14, as QEMU does for
unmapped memory), and continue/step answer at once with a stop reply because nothing runs. One client at a time,
127.0.0.1 only; `k` and `D` end the session, not the server, so the next gdb can connect. Nothing is served from
outside the snapshot directory: a region or description file that a symlink leads out of it is refused.
The listener, framing, acks and the common q-packets are server.py's, shared with the twin's server.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from ..errors import TargetError
from .description import target_xml
from .server import MAX_READ, Listener, RspConnection, hex_field
from .snapshot import SavedRegion, SnapshotTarget, load_manifest

G_REGISTERS = 33          # x0..x31 and pc: what a RISC-V `g` block holds
EFAULT = "E14"            # QEMU's answer to a read of unmapped memory; gdb shows "Cannot access memory"
STOP = "S05"              # SIGTRAP: a snapshot is where it stopped
MAX_DESCRIPTION = 16 << 20   # bytes of one target description file (QEMU's biggest is about 100 KB)


def check_files_inside(directory: Path | str, regions: list[SavedRegion], description_names: list[str]) -> None:
    """Refuse a snapshot whose region or description files lead out of its directory (a symlink, or a symlinked
    tdesc/) or are not regular files (a FIFO would hang the server): `serve` hands out what it reads, and a
    snapshot mailed in by someone else must not make it hand out the recipient's files."""
    root = Path(directory).resolve()
    files = [(f"region {r.name!r}", r.file) for r in regions]
    files += [("target description file", f"tdesc/{name}") for name in description_names]
    for what, relative in files:
        path = Path(directory) / relative
        real = path.resolve()
        if not real.is_relative_to(root):
            raise TargetError(f"{path}: the {what} of this snapshot leads to {real}, outside the snapshot "
                              f"directory {root}; xipscope serves nothing from outside it (copy the file in if it "
                              "belongs to the snapshot)")
        try:
            mode = os.stat(real).st_mode
        except OSError:
            continue      # missing: opening the snapshot says which file and why
        if not stat.S_ISREG(mode):
            raise TargetError(f"{path}: the {what} of this snapshot should be a regular file, found "
                              f"{_file_kind(mode)}; the snapshot is damaged or not one xipscope wrote")


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


class SnapshotServer:
    """Serve one SnapshotTarget on 127.0.0.1:port (0 picks a free port; see `.port`): the backend of
    target/server.py's RspConnection for every client (a snapshot keeps no per-client state)."""

    features = ()

    def __init__(self, snapshot: SnapshotTarget, port: int = 0):
        self.snapshot = snapshot
        check_files_inside(snapshot.directory, snapshot.regions, snapshot.manifest["target_description"])
        self._description = self._description_files()
        self._by_number = {r.number: r for r in snapshot.register_layout}
        self._listener = Listener(port, "--port")
        self.port = self._listener.port

    def _description_files(self) -> dict[str, bytes]:
        saved = {}
        for name in self.snapshot.manifest["target_description"]:
            path = self.snapshot.directory / "tdesc" / name
            if path.exists() and path.stat().st_size > MAX_DESCRIPTION:
                raise TargetError(f"{path} holds {path.stat().st_size} bytes; a target description is at most "
                                  f"{MAX_DESCRIPTION >> 20} MiB; the snapshot is damaged or not one xipscope wrote")
            saved[name] = self.snapshot.description_file(name)
        if "target.xml" in saved:
            return saved
        note = f"xipscope snapshot of {self.snapshot.manifest['target']} (registers as saved)".replace("--", "- -")
        return {"target.xml": target_xml(self.snapshot.register_layout, note).encode()}

    def close(self) -> None:
        self._listener.close()

    def serve_forever(self) -> None:
        self._listener.serve(lambda conn: RspConnection(conn, self).serve())

    # -- the replies (target/server.py answers the packets every server answers alike) -----------------------------

    def description_file(self, annex: str) -> bytes | None:
        return self._description.get(annex)

    def interrupt(self, arrived: float) -> None:
        """Nothing runs to interrupt."""

    def register_hex(self, number: int) -> str | None:
        """A register's value as gdb wants it (target byte order), 'xx..' if it was unavailable, None if unknown."""
        info = self._by_number.get(number)
        if info is None:
            return None
        value = self.snapshot.values_by_number.get(number)
        width = info.bits // 8
        return "xx" * width if value is None else value.to_bytes(width, "little").hex()

    def read_memory_hex(self, address: int, length: int) -> str:
        """The saved bytes, or as many as are saved from `address` on (the protocol allows a short reply)."""
        region = self.snapshot.region_at(address)
        if region is None or length < 0:
            return EFAULT
        length = min(length, region.end - address, MAX_READ)
        return self.snapshot.read_memory(address, length).hex()

    def reply(self, text: str) -> str | None:
        if text.startswith("qRcmd,"):
            return self._monitor_text().encode().hex()
        if text == "?":
            return STOP
        if text == "g":
            parts = [self.register_hex(n) for n in range(G_REGISTERS)]
            return "".join(p for p in parts if p is not None)
        if text[:1] == "p":
            value = self.register_hex(hex_field(text[1:]))
            return "E45" if value is None else value
        if text[:1] == "m":
            address, length = text[1:].split(",")
            return self.read_memory_hex(hex_field(address), hex_field(length))
        if text[:1] in ("G", "P", "M", "X"):
            return "E01"   # a snapshot is read-only
        if text[:1] in ("Z", "z") and text[1:2] in ("0", "1"):
            return "OK"    # accepted, never hit: gdb plants them to step, and nothing runs here
        if text[:1] in ("c", "s", "C", "S"):
            return STOP    # nothing runs: stopped again where it was
        if text[:1] == "D":
            return "OK"    # the session ends (target/server.py), the server goes on
        if text[:1] == "k":
            return None
        return ""          # not supported: the empty reply, as the protocol asks

    def _monitor_text(self) -> str:
        m = self.snapshot.manifest
        state = "complete" if self.snapshot.complete else f"PARTIAL ({m.get('error')})"
        regions = ", ".join(f"{r.name} {r.start:#x}..{r.end:#x}" for r in self.snapshot.regions) or "none"
        return (f"xipscope snapshot of {m['target']} taken {m.get('taken_at')} ({state})\n"
                f"saved memory: {regions}\n")


def serve_snapshot(directory: str, port: int = 0, announce=sys.stdout) -> None:
    """Open the snapshot and serve it until killed; prints the port it listens on."""
    manifest = load_manifest(Path(directory))
    check_files_inside(directory, manifest["_regions"], manifest["target_description"])   # before anything is opened
    snapshot = SnapshotTarget(directory)
    try:
        server = SnapshotServer(snapshot, port)
        state = "" if snapshot.complete else " (a PARTIAL snapshot: " + str(snapshot.manifest.get("error")) + ")"
        print(f"xipscope serve: snapshot {directory}{state} on 127.0.0.1:{server.port}", file=announce, flush=True)
        try:
            server.serve_forever()
        finally:
            server.close()
    finally:
        snapshot.close()
