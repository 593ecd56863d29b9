"""The core of xipscope's own servers: a loopback listener serving one client at a time, and the GDB remote protocol's
server side (framing, acks, the q-packets every server answers alike) that `xipscope serve` and the twin's GDB face share.

The listener is also the twin's JTAG face's (sim/jtag.py). A backend answers the packets that differ between servers;
see RspConnection. Whatever bytes a client sends, it gets an error reply or is dropped, never the server: a malformed
packet answers E02, a packet longer than PacketSize drops its client, a client that reads no replies is dropped after
SEND_TIMEOUT_S, and the next client is served. Framing is packets.py's, shared with our client.
"""

from __future__ import annotations

import select
import socket
import string
import struct
import sys
import time

from ..errors import TargetError
from .packets import INTERRUPT, Packet, PacketParser, decode_payload, escape_binary, frame

PACKET_SIZE = 0x4000          # what qSupported announces: the longest packet a client may send us
MAX_PENDING = PACKET_SIZE + 4  # '$', the body, '#xx': a client holding more back than that is dropped
MAX_READ = (PACKET_SIZE - 1) // 2   # bytes of data that fill one reply (2 hex digits, or at worst one escape, a byte)
SEND_TIMEOUT_S = 30.0         # a client that reads none of our replies for this long is dropped
MALFORMED = "E02"             # the reply to a request whose fields do not parse
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux's value; Python does not export it
_HEX = frozenset(string.hexdigits)


def hex_field(text: str, bits: int = 64) -> int:
    """A hex number of a request, checked: hex digits only (no sign, no 0x) and at most `bits` wide; else ValueError
    (int(text, 16) alone takes '-1' and ' 0x1_0')."""
    if not text or not _HEX.issuperset(text):
        raise ValueError(f"not a hex number: {text[:20]!r}")
    value = int(text, 16)
    if value >> bits:
        raise ValueError(f"{text[:20]!r} is wider than {bits} bits")
    return value


class Listener:
    """A TCP socket on 127.0.0.1:port (0 picks a free port; see `.port`) that serves its clients one after another."""

    def __init__(self, port: int, port_option: str, prefix: str = ""):
        """`port_option` is the command-line option that picks the port, named in the error when it is taken."""
        self.prefix = prefix
        self.closed = False
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind(("127.0.0.1", port))
        except OSError as e:
            self._socket.close()
            raise TargetError(f"{prefix}cannot listen on 127.0.0.1:{port}: {e.strerror}; pick another {port_option} "
                              "(0 = any free port)") from None
        self._socket.listen(1)
        self.port = self._socket.getsockname()[1]

    def close(self) -> None:
        self.closed = True
        try:
            self._socket.shutdown(socket.SHUT_RDWR)   # wakes a serve() waiting in another thread (Linux)
        except OSError:
            pass
        self._socket.close()

    def serve(self, handle_client, idle=None, idle_wait=lambda: None) -> None:
        """Call handle_client(conn) for each client until close(). While no client is connected, wait idle_wait()
        seconds (None: until one comes) for one, and call idle() when none came (a twin runs on between clients).

        A client's socket error, or any error its requests raise that its handler did not answer, ends that client
        only; the latter is reported on stderr in one line."""
        while not self.closed:
            try:
                ready, _, _ = select.select([self._socket], [], [], idle_wait())
                if not ready:
                    if idle is not None:
                        idle()
                    continue
                conn, _addr = self._socket.accept()
            except (OSError, ValueError):
                if self.closed:
                    return
                continue      # the connection was reset before we accepted it
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.settimeout(SEND_TIMEOUT_S)    # we select() before every read, so this bounds sends only
                try:
                    handle_client(conn)
                except OSError:
                    pass      # gone mid-packet, reset, or not reading its replies
                except Exception as e:   # noqa: BLE001 - one client's request must not end the server
                    print(f"{self.prefix}dropped a client whose request failed ({type(e).__name__}: "
                          f"{str(e)[:200]}); serving the next one", file=sys.stderr, flush=True)


class RspConnection:
    """One client of a GDB remote protocol server. It frames, acks, turns acks off (QStartNoAckMode), answers
    qSupported, qXfer:features:read, qAttached, thread queries, H and T, and ends the session after D or k.

    The backend answers the rest:
      `features`               extra qSupported features (e.g. ("swbreak+",))
      `description_file(annex)` -> bytes of a target description file, or None if there is no such file
      `read_object(object, annex, offset)` (optional) -> the bytes of another qXfer object the backend announces in
                               `features` (`qXfer:OBJECT:read+`), or None; offset 0 starts a read (a backend whose
                               object changes takes its bytes then, so the parts of one read agree)
      `reply(text)`             -> the reply to any other packet (latin-1 text), or None for none now (e.g. `c`)
      `interrupt(arrived)`      ^C arrived at perf_counter time `arrived`
    A backend's ValueError, IndexError or OverflowError answers E02 (malformed), its TargetError E01.
    """

    def __init__(self, conn: socket.socket, backend, stamp_arrivals: bool = False, log=None):
        self.conn = conn
        self.backend = backend
        self.log = log
        self.parser = PacketParser()
        self.ack = True
        self.done = False
        self.stamped = False
        if stamp_arrivals:
            try:
                conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.stamped = True
            except OSError:
                pass   # not Linux: the arrival time is when we read the bytes

    def send(self, payload: bytes | str) -> None:
        self.conn.sendall(frame(payload.encode() if isinstance(payload, str) else payload))

    def readable(self, timeout: float | None) -> bool:
        """Whether the client sent something within `timeout` seconds (None: wait until it does)."""
        ready, _, _ = select.select([self.conn], [], [], timeout)
        return bool(ready)

    def serve(self) -> None:
        """Answer the client until it goes (for a backend where nothing runs between requests)."""
        while not self.done:
            if self.readable(None):
                self.receive()

    def receive(self) -> None:
        """Read what the client sent and act on it; `done` is set when it has gone or was dropped."""
        data, arrived = self._recv_stamped()
        if not data:
            self.done = True
            return
        for item in self.parser.feed(data):
            if self.done:
                return
            if item == bytes((INTERRUPT,)):
                self.backend.interrupt(arrived)
            elif isinstance(item, Packet):
                self._packet(item)
            # '+' / '-' acks from the client need no action: we never resend.
        if self.parser.pending > MAX_PENDING:
            self.done = True     # longer than the PacketSize we announced: not a client we can serve

    def _recv_stamped(self) -> tuple[bytes, float]:
        """Bytes from the client and when they arrived (perf_counter time). The kernel stamps each packet as it
        arrives (SO_TIMESTAMPNS), so an interrupt that waited while a slice ran still stops the paced twin at the
        cycle of its arrival: the moment we got round to reading it depends on the code being simulated."""
        if not self.stamped:
            data = self.conn.recv(65536)
            return data, time.perf_counter()
        data, ancillary, _flags, _addr = self.conn.recvmsg(65536, socket.CMSG_SPACE(16))
        now_perf, now_wall = time.perf_counter(), time.time()
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
                sec, nsec = struct.unpack("qq", payload[:16])
                return data, now_perf - max(0.0, now_wall - (sec + nsec * 1e-9))
        return data, now_perf

    def _packet(self, item: Packet) -> None:
        if not item.checksum_ok:
            if self.ack:
                self.conn.sendall(b"-")
            return
        if self.ack:
            self.conn.sendall(b"+")
        try:
            text = decode_payload(item.payload).decode("latin-1")
        except ValueError:
            self.send(MALFORMED)     # e.g. `$}#7d`: an escape with nothing after it
            return
        if self.log is not None:
            print(f"<- {text[:80]}", file=self.log, flush=True)
        reply = self._reply(text)
        if reply is not None:
            self.send(reply)
        if text == "QStartNoAckMode":
            self.ack = False
        elif text[:1] in ("D", "k"):
            self.done = True

    def _reply(self, text: str) -> str | bytes | None:
        backend = self.backend
        try:
            if text.startswith("qSupported"):
                return ";".join([f"PacketSize={PACKET_SIZE:x}", "qXfer:features:read+", *backend.features,
                                 "QStartNoAckMode+", "vContSupported-"])
            if text == "QStartNoAckMode":
                return "OK"
            if text.startswith("qXfer:"):
                obj, operation, rest = text[len("qXfer:"):].split(":", 2)
                annex, _, span = rest.rpartition(":")
                offset, length = (hex_field(x) for x in span.split(","))
                read_object = getattr(backend, "read_object", None)
                data = (None if operation != "read" else backend.description_file(annex) if obj == "features"
                        else read_object(obj, annex, offset) if read_object is not None else None)
                if data is None:
                    return "E00"
                chunk = data[offset:offset + min(length, MAX_READ)]
                return (b"m" if offset + len(chunk) < len(data) else b"l") + escape_binary(chunk)
            if text == "qAttached":
                return "1"
            if text == "qC":
                return "QC1"
            if text == "qfThreadInfo":
                return "m1"
            if text == "qsThreadInfo":
                return "l"
            if text[:1] in ("H", "T"):
                return "OK"
            return backend.reply(text)
        except TargetError:
            return "E01"
        except (ValueError, IndexError, OverflowError):
            return MALFORMED
