"""GDB remote serial protocol framing: checksums, escapes, run-length encoding and a byte-stream packet parser.

Shared by our client (rsp.py) and by the twin's server, so both speak exactly one dialect of the protocol
(gdb's "Remote Protocol" appendix: Overview, Binary Data, Run-Length Encoding).
"""

from __future__ import annotations

from typing import NamedTuple
from zlib import adler32

ESCAPE = 0x7D          # '}' : next byte is XORed with 0x20
RLE_MARK = 0x2A        # '*' : previous character repeated (next byte - 29) more times
INTERRUPT = 0x03       # ^C from the client: stop the target
_MUST_ESCAPE = frozenset(b"#$}*")


def checksum(payload: bytes) -> int:
    """The modulo-256 sum of the bytes. zlib's Adler-32 keeps 1 + the byte sum (mod 65521) in its low half, exact for
    up to 256 bytes, so the sum is taken 256 bytes at a time in C: a few times faster than sum() on the 264-byte `g`
    reply a sampler checks with every sample."""
    size = len(payload)
    if size <= 256:
        return ((adler32(payload) & 0xFFFF) - 1) & 0xFF
    if size <= 512:     # an RV32 `g` reply (264 hex digits): two pieces without a loop
        return ((adler32(payload[:256]) & 0xFFFF) + (adler32(payload[256:]) & 0xFFFF) - 2) & 0xFF
    view = memoryview(payload)
    return sum((adler32(view[i:i + 256]) & 0xFFFF) - 1 for i in range(0, size, 256)) & 0xFF


def frame(payload: bytes) -> bytes:
    """`$payload#xx` with the modulo-256 checksum."""
    return b"$" + payload + b"#%02x" % checksum(payload)


def escape_binary(data: bytes) -> bytes:
    """Escape the bytes that may not appear raw inside a packet (for binary replies such as qXfer / X)."""
    if not _MUST_ESCAPE.intersection(data):
        return data
    out = bytearray()
    for b in data:
        if b in _MUST_ESCAPE:
            out += bytes((ESCAPE, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def decode_payload(payload: bytes, limit: int | None = None) -> bytes:
    """Undo run-length encoding and escapes of a received packet body.

    RLE and escapes are undone in one left-to-right pass: `c*N` repeats `c` N-29 more times, and `}` escapes the
    byte after it, which may itself be the character a following `*` repeats. With a limit, a body that expands past
    `limit` bytes is refused (ValueError) instead of grown.
    """
    if ESCAPE not in payload and RLE_MARK not in payload:
        return payload
    out = bytearray()
    i, n = 0, len(payload)
    while i < n:
        b = payload[i]
        if b == ESCAPE:
            if i + 1 >= n:
                raise ValueError("packet ends inside an escape sequence")
            out.append(payload[i + 1] ^ 0x20)
            i += 2
        elif b == RLE_MARK:
            if not out or i + 1 >= n:
                raise ValueError("run-length marker with nothing to repeat")
            count = payload[i + 1] - 29
            if count < 0:
                raise ValueError(f"bad run-length count byte {payload[i + 1]:#x}")
            out += bytes((out[-1],)) * count
            i += 2
            if limit is not None and len(out) > limit:
                raise ValueError(f"run-length encoding expands the packet past {limit} bytes")
        else:
            out.append(b)
            i += 1
    return bytes(out)


class PacketTooLong(ValueError):
    """A packet went on past the parser's bound without its `#xx` end."""


class Packet(NamedTuple):
    """One received packet. A tuple, not a dataclass: a sampler builds several a sample, and a tuple is made fastest."""
    payload: bytes      # raw body between '$' and '#', still escaped / run-length encoded
    checksum_ok: bool


_SIGNALS = {0x2B: b"+", 0x2D: b"-", INTERRUPT: bytes((INTERRUPT,))}


class PacketParser:
    """Incremental parser: feed bytes as they arrive, take acks, packets and interrupts as they complete.

    Items returned by `feed` are `b"+"`, `b"-"`, `b"\\x03"` or a Packet. Stray bytes between packets are dropped,
    as gdb does. With max_packet, a packet body that reaches that many bytes without its end raises PacketTooLong
    (a client bounds what a server's reply may cost it; the packets before it in the same data are lost with it).
    The scan jumps from '$' to '#' with bytes.find: a sampler's replies cost a few calls, not a step per byte.
    """

    def __init__(self, max_packet: int | None = None) -> None:
        self._buf = bytearray()
        self.max_packet = max_packet

    def feed(self, data: bytes) -> list:
        buf = self._buf
        buf += data
        items: list = []
        find, size, i = buf.find, len(buf), 0
        while i < size:
            start = find(b"$", i)
            if start != i:      # acks, naks and interrupts before the next packet (or the end); other bytes dropped
                for b in buf[i:start if start >= 0 else size]:
                    signal = _SIGNALS.get(b)
                    if signal is not None:
                        items.append(signal)
                if start < 0:
                    i = size
                    break
            end = find(b"#", start + 1)
            if end < 0 or end + 3 > size:
                if self.max_packet is not None and (end if end >= 0 else size) - start - 1 > self.max_packet:
                    del buf[:]
                    raise PacketTooLong(f"over {self.max_packet} bytes without an end")
                i = start
                break  # incomplete: wait for more bytes
            body = bytes(buf[start + 1:end])
            try:
                expected = int(buf[end + 1:end + 3], 16)
            except ValueError:
                expected = -1
            items.append(Packet(body, expected == checksum(body)))
            i = end + 3
        del buf[:i]
        return items

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a packet."""
        return len(self._buf)
