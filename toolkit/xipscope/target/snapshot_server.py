"""`xipscope serve DIR`: a snapshot served over the GDB remote protocol, so gdb-multiarch can inspect a crash later.

Read-only and halted for good: registers from the manifest (under the target description the snapshot was taken
with, else one built from gdb's RISC-V numbering), memory only where saved (other reads answer E14, as QEMU does for
unmapped memory), and continue/step answer at once with a stop reply because nothing runs. One client at a time,
127.0.0.1 only; `k` and `D` end the session, not the server, so the next gdb can connect.
Framing comes from rsp_packets.py, shared with our client and the twin's server.
"""

from __future__ import annotations

import socket
import sys

from ..errors import TargetError
from .description import target_xml
from .rsp_packets import Packet, PacketParser, decode_payload, escape_binary, frame
from .snapshot import SnapshotTarget

G_REGISTERS = 33          # x0..x31 and pc: what a RISC-V `g` block holds
EFAULT = "E14"            # QEMU's answer to a read of unmapped memory; gdb shows "Cannot access memory"
STOP = "S05"              # SIGTRAP: a snapshot is where it stopped
PACKET_SIZE = 0x4000      # what qSupported announces
MAX_READ = PACKET_SIZE // 2     # bytes of an `m` reply whose hex fills one packet


class SnapshotServer:
    """Serve one SnapshotTarget on 127.0.0.1:port (0 picks a free port; see `.port`)."""

    def __init__(self, snapshot: SnapshotTarget, port: int = 0):
        self.snapshot = snapshot
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind(("127.0.0.1", port))
        except OSError as e:
            self._listener.close()
            raise TargetError(f"cannot listen on 127.0.0.1:{port}: {e.strerror}; pick another --port "
                              "(0 = any free port)") from None
        self._listener.listen(1)
        self.port = self._listener.getsockname()[1]
        self._description = self._description_files()
        self._by_number = {r.number: r for r in snapshot.register_layout}

    def _description_files(self) -> dict[str, bytes]:
        saved = {name: self.snapshot.description_file(name)
                 for name in self.snapshot.manifest["target_description"]}
        if "target.xml" in saved:
            return saved
        note = f"xipscope snapshot of {self.snapshot.manifest['target']} (registers as saved)".replace("--", "- -")
        return {"target.xml": target_xml(self.snapshot.register_layout, note).encode()}

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)   # wakes an accept() blocked in serve_forever on Linux
        except OSError:
            pass
        self._listener.close()

    def serve_forever(self) -> None:
        while True:
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return   # closed
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                _Session(self, conn).run()
            except OSError:
                pass     # the client went away mid-packet
            finally:
                conn.close()

    # -- the replies ---------------------------------------------------------------------------------------------

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

    def reply(self, text: str) -> str | bytes:
        if text.startswith("qSupported"):
            return f"PacketSize={PACKET_SIZE:x};qXfer:features:read+;QStartNoAckMode+;vContSupported-"
        if text.startswith("qXfer:features:read:"):
            annex, _, span = text[len("qXfer:features:read:"):].rpartition(":")
            data = self._description.get(annex)
            if data is None:
                return "E00"
            offset, length = (int(x, 16) for x in span.split(","))
            return (b"m" if offset + length < len(data) else b"l") + escape_binary(data[offset:offset + length])
        if text == "qAttached":
            return "1"
        if text == "qC":
            return "QC1"
        if text == "qfThreadInfo":
            return "m1"
        if text == "qsThreadInfo":
            return "l"
        if text.startswith("qRcmd,"):
            return self._monitor_text().encode().hex()
        if text[:1] in ("H", "T"):
            return "OK"
        if text == "?":
            return STOP
        if text == "g":
            parts = [self.register_hex(n) for n in range(G_REGISTERS)]
            return "".join(p for p in parts if p is not None)
        if text[:1] == "p":
            value = self.register_hex(int(text[1:], 16))
            return "E45" if value is None else value
        if text[:1] == "m":
            address, length = (int(x, 16) for x in text[1:].split(","))
            return self.read_memory_hex(address, length)
        if text[:1] in ("G", "P", "M", "X"):
            return "E01"   # a snapshot is read-only
        if text[:1] in ("Z", "z") and text[1:2] in ("0", "1"):
            return "OK"    # accepted, never hit: gdb plants them to step, and nothing runs here
        if text[:1] in ("c", "s", "C", "S"):
            return STOP    # nothing runs: stopped again where it was
        return ""          # not supported: the empty reply, as the protocol asks

    def _monitor_text(self) -> str:
        m = self.snapshot.manifest
        state = "complete" if self.snapshot.complete else f"PARTIAL ({m.get('error')})"
        regions = ", ".join(f"{r.name} {r.start:#x}..{r.end:#x}" for r in self.snapshot.regions) or "none"
        return (f"xipscope snapshot of {m['target']} taken {m.get('taken_at')} ({state})\n"
                f"saved memory: {regions}\n")


class _Session:
    def __init__(self, server: SnapshotServer, conn: socket.socket):
        self.server = server
        self.conn = conn
        self.parser = PacketParser()
        self.ack = True
        self.done = False

    def send(self, payload: str | bytes) -> None:
        self.conn.sendall(frame(payload.encode() if isinstance(payload, str) else payload))

    def run(self) -> None:
        while not self.done:
            data = self.conn.recv(65536)
            if not data:
                return
            for item in self.parser.feed(data):
                if isinstance(item, Packet):
                    self._packet(item)
                # '+', '-' and ^C need nothing: we never resend, and nothing runs to interrupt.

    def _packet(self, item: Packet) -> None:
        if not item.checksum_ok:
            if self.ack:
                self.conn.sendall(b"-")
            return
        if self.ack:
            self.conn.sendall(b"+")
        raw = decode_payload(item.payload)
        text = raw.decode("latin-1")
        if text == "QStartNoAckMode":
            self.send("OK")
            self.ack = False
            return
        if text[:1] in ("D", "k"):
            if text[:1] == "D":
                self.send("OK")
            self.done = True
            return
        try:
            reply = self.server.reply(text)
        except TargetError:
            reply = EFAULT
        except (ValueError, IndexError, OverflowError):
            reply = "E02"    # a malformed request
        self.send(reply)


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
