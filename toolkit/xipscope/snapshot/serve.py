"""`xipscope serve DIR`: a snapshot served over the GDB remote protocol, so gdb-multiarch can inspect a crash later.

Read-only and halted for good: registers from the manifest (under the target description the snapshot was taken
with, else one built from gdb's RISC-V numbering), memory only where saved (other reads answer E14, as QEMU does for
unmapped memory), and continue/step answer at once with a stop reply because nothing runs. One client at a time,
127.0.0.1 only; `k` and `D` end the session, not the server, so the next gdb can connect. Nothing is served from
outside the snapshot directory: snapshot.py's reader refuses a region or description file that leads out of it.
The listener, framing, acks and the common q-packets are server.py's, shared with the twin's server.
"""

from __future__ import annotations

import sys

from ..errors import TargetError
from ..rsp.description import target_xml
from ..rsp.server import MAX_READ, Listener, RspConnection, hex_field
from .read import SnapshotTarget

G_REGISTERS = 33          # x0..x31 and pc: what a RISC-V `g` block holds
EFAULT = "E14"            # QEMU's answer to a read of unmapped memory; gdb shows "Cannot access memory"
STOP = "S05"              # SIGTRAP: a snapshot is where it stopped


class SnapshotServer:
    """Serve one SnapshotTarget on 127.0.0.1:port (0 picks a free port; see `.port`): the backend of
    rsp/server.py's RspConnection for every client (a snapshot keeps no per-client state)."""

    features = ()

    def __init__(self, snapshot: SnapshotTarget, port: int = 0):
        self.snapshot = snapshot
        self._description = self._description_files()
        self._by_number = {r.number: r for r in snapshot.register_layout}
        self._listener = Listener(port, "--port")
        self.port = self._listener.port

    def _description_files(self) -> dict[str, bytes]:
        saved = {}
        for name in self.snapshot.manifest["target_description"]:
            saved[name] = self.snapshot.description_file(name)
        if "target.xml" in saved:
            return saved
        note = f"xipscope snapshot of {self.snapshot.manifest['target']} (registers as saved)".replace("--", "- -")
        return {"target.xml": target_xml(self.snapshot.register_layout, note).encode()}

    def close(self) -> None:
        self._listener.close()

    def serve_forever(self) -> None:
        self._listener.serve(lambda conn: RspConnection(conn, self).serve())

    # -- the replies (rsp/server.py answers the packets every server answers alike) -----------------------------

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
            return "OK"    # the session ends (rsp/server.py), the server goes on
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
