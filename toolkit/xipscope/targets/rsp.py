"""rsp:// : our own GDB remote serial protocol client, talking straight to any gdbserver over TCP (no gdb in between).

Written to the protocol (gdb manual, "Remote Protocol"), so QEMU's gdbstub, OpenOCD's gdb port, pyOCD's gdbserver and
the twin all work. Server quirks we handle, each where it bites:
- QEMU 7.2 answers `p`/`P` with an empty (unsupported) reply until the client has read the target description,
  so target.xml is read before the first register access.
- QEMU 7.2 sends an unsolicited stop reply (`T02thread:01;`) as it stops the guest for a newly attached client,
  which arrives ahead of the reply to our first request; a stop reply where none was asked for only updates our
  view of the target's state (`_request`).
- QEMU stops the guest when a client attaches, and resumes it on `D`; OpenOCD halts on attach too. We therefore
  treat a fresh connection as halted once `?` says so, and detaching leaves the target running as we found it.
- QEMU's target.xml writes `<xi:include>` without declaring the XInclude namespace; we read it as plain `include`.
- Servers answer `m` with fewer bytes than asked (or an error) when a read crosses into unmapped memory; the error
  names the address where the readable part ended.
What a server sends is outside data: each exchange has one deadline and bounded resends (RspConnection), no reply is
longer than a packet's worth or than the request can need, the target description is bounded in size and files, and
every parse (registers, stop replies, qSupported, the description) ends in a TargetError naming the server, the field
and the value, cut to a readable length (tests/test_hostile_rsp.py serves each lie).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import re
import socket
import struct
import time
from binascii import unhexlify
from time import monotonic as _monotonic
from dataclasses import dataclass

from ..errors import CapabilityError, TargetError
from .base import (MEMORY, MODEL, PACING, REGISTERS, RUN_CONTROL, SAMPLE, WRITE_MEMORY, Sample, SampleRequest, Target,
                   describe_reads)
from ..rsp.packets import INTERRUPT, Packet, PacketParser, PacketTooLong, checksum, decode_payload, frame

DEFAULT_PACKET_SIZE = 400   # what we assume when a server states no PacketSize (gdb's own default is similar)
MAX_PACKET_SIZE = 1 << 18   # a larger PacketSize is taken as this: it bounds every reply we accept
PIPELINE_DEPTH = 8          # `m` requests in flight at once in no-ack mode
MAX_RESENDS = 3             # naks (ours or the server's) before an exchange fails, as gdb gives up after a few
MIN_PACKET_BOUND = 8192     # the longest packet taken before PacketSize is known, and the least bound after
RLE_EXPANSION_BOUND = 4     # a decoded (run-length expanded) reply may be this many times a packet's worth
MAX_DESCRIPTION_BYTES = 4 << 20   # target.xml and its includes together (QEMU's RISC-V description is ~150 KB)
MAX_DESCRIPTION_FILES = 64
RV32_GPR_NAMES = ("zero ra sp gp tp t0 t1 t2 fp s1 a0 a1 a2 a3 a4 a5 a6 a7 "
                  "s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 t3 t4 t5 t6").split()
REGISTER_ALIASES = {"s0": "fp", "x0": "zero"}


@dataclass(frozen=True)
class RegisterInfo:
    name: str
    number: int
    bits: int
    group: str | None = None


@dataclass(frozen=True)
class StopReply:
    """A parsed stop reply: `S05`, `T05thread:01;`, `W00` (exited), `X09` (killed)."""
    kind: str            # 'S', 'T', 'W' or 'X'
    signal: int
    fields: dict[str, str]

    @property
    def exited(self) -> bool:
        return self.kind in "WX"


def parse_stop_reply(reply: bytes) -> StopReply:
    """`S05`, `T05thread:01;...`, `W00`, `X09`; a ValueError saying what is wrong with anything else."""
    text = reply.decode("ascii", "replace")
    if not text or text[0] not in "STWX" or len(text) < 3:
        raise ValueError(f"not a stop reply: {_cut(reply)}")
    try:
        signal = int(text[1:3], 16)
    except ValueError:
        raise ValueError(f"the signal of a stop reply is not two hex digits: {_cut(reply)}") from None
    fields: dict[str, str] = {}
    if text[0] == "T":
        for item in text[3:].split(";"):
            if ":" in item:
                key, value = item.split(":", 1)
                fields[key] = value
    return StopReply(text[0], signal, fields)


def parse_target_description(fetch) -> list[RegisterInfo]:
    """Registers from target.xml and the files it xi:includes, numbered as gdb numbers them.

    A `<reg>` without `regnum` takes the number after the previous register, in document order across includes.
    `fetch(annex) -> bytes` returns one file of the description (and bounds what it reads). Anything a register
    needs that is missing or not a number is a ValueError naming the file, the field and the value.
    """
    import xml.etree.ElementTree as ET   # only when registers are asked for: dmesg needs none

    registers: list[RegisterInfo] = []
    next_number = 0
    seen: set[str] = set()

    def number(annex: str, element, field: str, default: int | None = None) -> int:
        value = element.get(field)
        if value is None and default is not None:
            return default
        if value is None or not value.strip().isdigit() or len(value) > 9:
            raise ValueError(f"{annex}: <reg name={_cut_text(element.get('name'))}> has {field}="
                             f"{_cut_text(value)}, not a decimal number")
        return int(value)

    def walk(annex: str) -> None:
        nonlocal next_number
        if annex in seen:
            return
        seen.add(annex)
        # QEMU's target.xml uses the xi: prefix without declaring its namespace; a strict parser refuses that.
        root = ET.fromstring(fetch(annex).replace(b"<xi:include", b"<include"))
        for element in root.iter():
            tag = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
            if tag == "include":
                href = element.get("href")
                if not href:
                    raise ValueError(f"{annex}: an <xi:include> without href (which file to include?)")
                walk(href)
            elif tag == "reg":
                name = element.get("name")
                if not name:
                    raise ValueError(f"{annex}: a <reg> without a name")
                regnum = number(annex, element, "regnum", next_number)
                bits = number(annex, element, "bitsize")
                if not 0 < bits <= 4096:
                    raise ValueError(f"{annex}: <reg name={_cut_text(name)}> has bitsize={bits}, not 1..4096")
                registers.append(RegisterInfo(name, regnum, bits, element.get("group")))
                next_number = regnum + 1

    walk("target.xml")
    return registers


def _cut_text(value, limit: int = 40) -> str:
    """A value from outside as an error shows it: quoted, at most `limit` characters, and how long it was."""
    if value is None:
        return "(missing)"
    text = str(value)
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def _timeval(seconds: float) -> bytes:
    """A struct timeval for SO_RCVTIMEO/SO_SNDTIMEO (0 would mean wait forever: at least 1 us)."""
    whole = int(seconds)
    return struct.pack("ll", whole, max(int((seconds - whole) * 1e6), 0 if whole else 1))


class RspConnection:
    """Packets over one TCP connection: acks until QStartNoAckMode, one deadline per operation, clear errors.

    An operation (a request and its reply, or a whole sample: `operation()`) has one deadline, the connection's
    timeout from its start: resends after a nak, stray acks and bad packets all count against it, so a server that
    floods acks or answers with bad checksums ends in an error within the timeout. Resends are bounded too
    (MAX_RESENDS, as gdb gives up after a few naks), and no packet may be longer than `max_packet` bytes (a packet's
    worth, set from the server's PacketSize): a server that never ends a packet is an error, not a growing buffer.

    The socket is in blocking mode with the kernel's SO_RCVTIMEO/SO_SNDTIMEO as its timeouts, so a read is one system
    call (a Python socket timeout would poll before every recv) and MSG_DONTWAIT reads work on it as they are."""

    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.server = f"rsp://{host}:{port}"
        self.timeout = timeout
        self.ack_mode = True
        # How a reply is awaited: blocked on (kind to the host), or polled with the CPU yielded between tries, which
        # skips the wake-up latency of a blocked thread (on this project's 2-core VMs, tens of us per reply) but is
        # slow where we share a CPU with the server. The profiler measures both and picks (ReplyWaitChooser).
        self.poll_replies = False
        self._parser = PacketParser(max_packet=MIN_PACKET_BOUND)
        self._ready: collections.deque = collections.deque()     # items parsed, not yet taken
        self._deadline: float | None = None     # of the operation in progress, if any
        self._span = timeout                    # its length, for the error message
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise TargetError(f"{self.server}: cannot connect ({e.strerror or e}); is the gdbserver running "
                              f"and listening on that port?") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(timeout))
        self._receive_timeout = None
        self._set_receive_timeout(timeout)

    @property
    def max_packet(self) -> int:
        return self._parser.max_packet

    @max_packet.setter
    def max_packet(self, size: int) -> None:
        self._parser.max_packet = max(MIN_PACKET_BOUND, size)

    def _set_receive_timeout(self, seconds: float) -> None:
        if seconds != self._receive_timeout:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))
            self._receive_timeout = seconds

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def _fail(self, what: str, expected: str) -> TargetError:
        return TargetError(f"{self.server}: {what} while waiting for {expected}")

    @contextlib.contextmanager
    def operation(self, timeout: float | None = None):
        """One deadline for everything inside (nested operations share the outermost one)."""
        if self._deadline is not None:
            yield
            return
        self._span = timeout if timeout is not None else self.timeout
        self._deadline = time.monotonic() + self._span
        try:
            yield
        finally:
            self._deadline = None

    def _deadline_for(self, timeout: float | None) -> tuple[float, float]:
        """(deadline, span): the operation's, or a fresh one for a call outside any; an explicit timeout may only
        shorten an operation's."""
        now = time.monotonic()
        if self._deadline is None:
            span = timeout if timeout is not None else self.timeout
            return now + span, span
        if timeout is not None and now + timeout < self._deadline:
            return now + timeout, timeout
        return self._deadline, self._span

    def _next_item(self, expected: str, deadline: float, span: float):
        """The next ack, nack or packet from the server, before the deadline."""
        while not self._ready:
            self._fill(expected, deadline, span)
        return self._ready.popleft()

    def _fill(self, expected: str, deadline: float, span: float) -> None:
        """Read what the server sent next into the parsed items."""
        self._feed(self._read(expected, deadline, span), expected)

    def _feed(self, data: bytes, expected: str) -> None:
        try:
            self._ready.extend(self._parser.feed(data))
        except PacketTooLong as e:
            raise self._fail(f"a packet longer than a reply can be ({e})", expected) from None

    def _read(self, expected: str, deadline: float, span: float) -> bytes:
        """What the server sent next (blocked on or polled for), before the deadline: checked before every read, so
        a server that floods bytes without ever making us wait ends there too."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._fail(f"no reply within {span:g} s", expected)
        data = self._poll() if self.poll_replies else None
        while data is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(f"no reply within {span:g} s", expected)
            # Block for what is left of the deadline, at most the usual timeout at a time (a wait longer than it,
            # e.g. for a breakpoint, blocks again until its own deadline); the usual timeout is kept while within
            # 1% of it, so the fast path makes no setsockopt call.
            self._set_receive_timeout(self.timeout if remaining >= 0.99 * self.timeout else remaining)
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:     # EAGAIN: SO_RCVTIMEO ran out; the loop looks at the deadline
                continue
            except OSError as e:
                raise self._fail(f"connection failed ({e.strerror or e})", expected) from None
        if not data:
            raise self._fail("the server closed the connection", expected)
        return data

    def _poll(self, tries: int = 2000) -> bytes | None:
        """Data from the socket by non-blocking reads, yielding the CPU between them; None if none came in `tries`
        (a few ms: the caller then blocks, with its timeout). b"" means the server closed the connection."""
        recv, yield_cpu, dontwait = self._sock.recv, os.sched_yield, socket.MSG_DONTWAIT
        for _ in range(tries):
            try:
                return recv(65536, dontwait)
            except BlockingIOError:
                yield_cpu()
            except OSError:
                return None     # the blocking read after us reports it
        return None

    def send(self, payload: bytes, timeout: float | None = None) -> None:
        """Send one packet; in ack mode, wait for '+' and resend on '-' (MAX_RESENDS times at most)."""
        packet = frame(payload)
        deadline, span = self._deadline_for(timeout)
        expected = f"an ack of {payload[:24]!r}"
        for _attempt in range(1 + MAX_RESENDS):
            self._write(packet)
            if not self.ack_mode:
                return
            while True:
                item = self._next_item(expected, deadline, span)
                if item == b"+":
                    return
                if item == b"-":
                    break
                if isinstance(item, Packet):  # a reply racing the ack: keep it for receive()
                    self._ready.appendleft(item)
                    return
        raise self._fail(f"the server rejected our packet {1 + MAX_RESENDS} times", expected)

    def _write(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as e:
            raise TargetError(f"{self.server}: connection failed while sending ({e.strerror or e})") from None

    def receive(self, expected: str, timeout: float | None = None, ack: bool = True) -> bytes:
        """The next packet's decoded payload; acks it in ack mode (unless ack=False: see RspSampler), asks again on
        a bad checksum (MAX_RESENDS times at most). Stray acks are skipped, within the deadline."""
        deadline, span = self._deadline_for(timeout)
        bad = 0
        while True:
            item = self._next_item(expected, deadline, span)
            if not isinstance(item, Packet):
                if time.monotonic() > deadline:     # a flood of acks arrives without ever blocking
                    raise self._fail(f"no reply within {span:g} s (only acks and interrupts)", expected)
                continue  # stray ack
            if not item.checksum_ok:
                bad += 1
                if self.ack_mode and ack and bad <= MAX_RESENDS:
                    self._write(b"-")
                    continue
                raise self._fail(f"a packet with a bad checksum{f' {bad} times' if bad > 1 else ''} "
                                 f"({_cut(item.payload)})", expected)
            if self.ack_mode and ack:
                self._write(b"+")
            try:
                return decode_payload(item.payload, self.max_packet * RLE_EXPANSION_BOUND)
            except ValueError as e:
                raise self._fail(f"a malformed packet ({e})", expected) from None

    def receive_matching(self, pattern: re.Pattern, count: int, expected: str, deadline: float) -> tuple | None:
        """A pipelined sample's fast path: the next `count` packets read straight from the socket and matched, with
        the acks around them, by `pattern` (a body and a checksum group per packet); their bodies when all of it
        matches, every checksum is right and every body after the first (a sample's data replies) is hex digits.
        Otherwise None, and what was read goes to the parser, so receive_batch takes it with every check and error
        message of the general path (console output, an error reply, an escape or run-length mark, a bad checksum,
        a reply too long or out of step). Also None when the general path holds data already."""
        if self._ready or self._parser.pending:
            return None
        span = self.timeout
        data = self._read(expected, deadline, span)
        match = pattern.fullmatch(data)     # usually one read brings all of it: matched before it is counted
        if match is None:
            bound = self.max_packet * count
            while data.count(b"#") < count or data.rfind(b"#") + 3 > len(data):
                if len(data) > bound:
                    break
                data += self._read(expected, deadline, span)
            match = pattern.fullmatch(data)
        if match is not None:
            groups = match.groups()
            # The pattern scans a body as [^#]* (a tight C loop; a class of four is a slow one); what the data replies
            # hold is checked here, in one C call each: hex digits only (an escape, a run-length mark, a '$' are not).
            if int(groups[1], 16) == checksum(groups[0]):
                for i in range(2, len(groups), 2):
                    body = groups[i]
                    if int(groups[i + 1], 16) != checksum(body) or body.translate(None, _HEX_DIGITS):
                        break
                else:
                    return groups[0::2]
        self._feed(data, expected)
        return None

    def receive_batch(self, count: int, expected: str, deadline: float | None = None) -> list[bytes]:
        """The decoded payloads of the next `count` packets, none acked, acks between them skipped: the replies of a
        pipelined batch (RspSampler), taken in as few reads as they arrive in. deadline: the time.monotonic() the
        batch must be in by (a sample passes its one deadline to each of its batches); else the open operation's, or
        the timeout from now. A bad checksum is an error, as an unacked batch cannot ask for a resend."""
        if deadline is None:
            deadline, span = self._deadline_for(None)
        else:
            span = self.timeout
        ready, payloads = self._ready, []
        while len(payloads) < count:
            while not ready:
                self._fill(expected, deadline, span)
            item = ready.popleft()
            if item.__class__ is not Packet:
                continue    # an ack (ack mode), or a stray byte the server sent back
            if not item.checksum_ok:
                raise self._fail(f"a packet with a bad checksum ({_cut(item.payload)})", expected)
            try:
                payloads.append(decode_payload(item.payload, self.max_packet * RLE_EXPANSION_BOUND))
            except ValueError as e:
                raise self._fail(f"a malformed packet ({e})", expected) from None
        return payloads

    def request(self, payload: bytes, expected: str, timeout: float | None = None) -> bytes:
        with self.operation(timeout):
            self.send(payload)
            return self.receive(expected)

    def interrupt(self) -> None:
        self._write(bytes((INTERRUPT,)))


_new_sample = functools.partial(tuple.__new__, Sample)   # Sample(...) without the Python-level __new__ (hot path)
_HEX_DIGITS = b"0123456789abcdefABCDEFx"     # all a register or memory reply holds ('x': a register unavailable)
_STOP_REPLY = re.compile(rb"[STWX][0-9a-fA-F]{2}")
_STOPPED = re.compile(rb"[ST][0-9a-fA-F]{2}")      # a stop reply that is not an exit


def _looks_like_stop_reply(reply: bytes) -> bool:
    return _STOP_REPLY.match(reply) is not None


def _error_reply(reply: bytes) -> bool:
    return len(reply) == 3 and reply[:1] == b"E" or reply.startswith(b"E.")


class RspTarget(Target):
    """A Target over the GDB remote protocol (all-stop mode, one hart)."""

    capabilities = frozenset({MEMORY, WRITE_MEMORY, REGISTERS, RUN_CONTROL, SAMPLE})

    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.url = f"rsp://{host}:{port}"
        self.conn = RspConnection(host, port, timeout)
        self._bursts: dict = {}     # the bytes of a pipelined sample, by (reads, resume)
        try:
            self._state = "running"
            self.last_stop: StopReply | None = None
            self.description_files: dict[str, bytes] = {}   # target.xml and its includes, as read (snapshots keep them)
            self.features = self._negotiate()
            if self.features.get(TWIN_HALT_AFTER) == "+":    # the twin's GDB server: its halts can be scheduled
                self.capabilities = RspTarget.capabilities | {PACING}
            if self.features.get(f"qXfer:{TWIN_TRUTH}:read") == "+":    # ... and it gives the model's truth
                self.capabilities |= {MODEL}
            self.packet_size = self._packet_size(self.features.get("PacketSize"))
            self.conn.max_packet = self.packet_size + 16     # a reply is at most a packet's worth (and framing)
            self._description_bytes = 0
            self._query_stop()
        except Exception:
            self.conn.close()
            raise

    def _request(self, payload: bytes, expected: str) -> bytes:
        """A request whose reply is never a stop reply: a stop reply arriving first was sent unsolicited
        (QEMU sends `T02` as it stops the guest for a newly attached client) and only updates our view of the state.
        All of it is one operation: a server that sends stop replies for ever ends at the deadline."""
        with self.conn.operation():
            reply = self.conn.request(payload, expected)
            while _looks_like_stop_reply(reply):
                self._note_stop(self._parse_stop(reply, expected))
                reply = self.conn.receive(expected)
        return reply

    def _parse_stop(self, reply: bytes, expected: str) -> StopReply:
        try:
            return parse_stop_reply(reply)
        except ValueError as e:
            raise TargetError(f"{self.url}: expected {expected}, got a malformed reply ({e})") from None

    def _packet_size(self, value: str | None) -> int:
        """The server's PacketSize (hex), within what we take: 64 bytes .. MAX_PACKET_SIZE."""
        if value is None:
            return DEFAULT_PACKET_SIZE
        try:
            size = int(value, 16)
        except ValueError:
            raise TargetError(f"{self.url}: qSupported says PacketSize={_cut_text(value)}, which is not a hex "
                              "number; is this a GDB server?") from None
        if size < 64:
            raise TargetError(f"{self.url}: qSupported says PacketSize={value} ({size} bytes), too small for any "
                              "reply we need (at least 64)")
        return min(size, MAX_PACKET_SIZE)

    def _note_stop(self, stop: StopReply) -> None:
        self.last_stop = stop
        self._state = "exited" if stop.exited else "halted"

    # -- session set-up ------------------------------------------------------------------------------------

    def _negotiate(self) -> dict[str, str]:
        reply = self._request(b"qSupported:swbreak+;hwbreak+;xmlRegisters=riscv", "the qSupported reply")
        features: dict[str, str] = {}
        for item in reply.decode("ascii", "replace").split(";"):
            if "=" in item:
                key, value = item.split("=", 1)
                features[key] = value
            elif item[-1:] in "+-?" and item:
                features[item[:-1]] = item[-1]
        if features.get("QStartNoAckMode") == "+":
            if self._request(b"QStartNoAckMode", "OK to QStartNoAckMode") == b"OK":
                self.conn.ack_mode = False
        return features

    def _fetch_description(self, annex: str) -> bytes:
        """One file of the target description; all files together at most MAX_DESCRIPTION_BYTES, and at most
        MAX_DESCRIPTION_FILES of them (a description that never ends, or includes itself by other names, stops)."""
        if len(self.description_files) >= MAX_DESCRIPTION_FILES:
            raise TargetError(f"{self.url}: the target description includes more than {MAX_DESCRIPTION_FILES} files "
                              f"(next: {_cut_text(annex)}); no real description has that many")
        data = self._read_object("features", annex, f"target description {_cut_text(annex)}",
                                 MAX_DESCRIPTION_BYTES - self._description_bytes,
                                 f"the target description goes on past {MAX_DESCRIPTION_BYTES >> 20} MiB (in "
                                 f"{_cut_text(annex)}); no real description is that long")
        self._description_bytes += len(data)
        self.description_files[annex] = data
        return data

    def _read_object(self, obj: str, annex: str, what: str, limit: int, too_long: str) -> bytes:
        """A qXfer object (`qXfer:OBJ:read:ANNEX:offset,length`) in parts of a packet's worth, at most `limit`
        bytes (past it: a TargetError saying `too_long`)."""
        data = bytearray()
        chunk = max(256, self.packet_size - 16)
        while True:
            reply = self._request(b"qXfer:%s:read:%s:%x,%x" % (obj.encode(), annex.encode(), len(data), chunk),
                                  f"part of {what}")
            if not reply or reply[:1] not in b"ml" or len(reply) - 1 > chunk:
                raise TargetError(f"{self.url}: reading {what} failed (reply {_cut(reply)}; expected 'm' or 'l' and at "
                                  f"most {chunk} bytes)")
            data += reply[1:]
            if len(data) > limit:
                raise TargetError(f"{self.url}: {too_long}")
            if reply[:1] == b"l":
                return bytes(data)

    @functools.cached_property
    def registers(self) -> list[RegisterInfo]:
        """The register layout, read from the target description on first use: QEMU's is over 100 KB of CSR
        names, and reading memory (dmesg) needs none of it. Also what makes QEMU answer `p` at all."""
        return self._read_register_layout()

    @functools.cached_property
    def _by_name(self) -> dict[str, RegisterInfo]:
        return {r.name: r for r in self.registers}

    def _read_register_layout(self) -> list[RegisterInfo]:
        if self.features.get("qXfer:features:read") == "+":
            try:
                registers = parse_target_description(self._fetch_description)
            except SyntaxError as e:   # xml.etree's ParseError
                raise TargetError(f"{self.url}: the target description is not valid XML ({e})") from None
            except ValueError as e:
                raise TargetError(f"{self.url}: the target description is not one we can use: {e}") from None
            if registers:
                return registers
        # No description: the RISC-V `g` layout every server uses (x0..x31, pc); CSRs are then unreachable by name.
        return [RegisterInfo(n, i, 32) for i, n in enumerate(RV32_GPR_NAMES)] + [RegisterInfo("pc", 32, 32)]

    def _query_stop(self) -> None:
        reply = self.conn.request(b"?", "the stop reply to '?'")
        self._note_stop(self._parse_stop(reply, "a stop reply to '?'"))

    # -- registers ---------------------------------------------------------------------------------------------

    def register_info(self, name: str) -> RegisterInfo:
        info = self._by_name.get(REGISTER_ALIASES.get(name, name))
        if info is None:
            raise TargetError(f"{self.url}: no register named {name!r} in the target description "
                              f"({len(self.registers)} registers; e.g. {', '.join(r.name for r in self.registers[:6])} ...)")
        return info

    def read_registers(self) -> dict[str, int]:
        """The registers of the `g` packet (GPRs and pc on RISC-V), by name."""
        self._require_halted("read registers")
        reply = self._request(b"g", "the register block ('g')")
        if _error_reply(reply):
            raise TargetError(f"{self.url}: 'g' failed with {_cut(reply)}")
        values: dict[str, int] = {}
        offset = 0
        for reg in sorted(self.registers, key=lambda r: r.number):
            width = reg.bits // 4
            if offset + width > len(reply):
                break
            text = reply[offset:offset + width]
            offset += width
            if b"x" not in text:
                values[reg.name] = self._register_value(reg, text, "the 'g' reply")
        return values

    def _register_value(self, reg: RegisterInfo, text: bytes, where: str) -> int:
        """A register's little-endian hex digits from a reply, or an error naming the register and the text."""
        try:
            return int.from_bytes(unhexlify(text), "little")
        except ValueError:
            raise TargetError(f"{self.url}: {where} holds {_cut(text)} for {reg.name}, which is not hex register "
                              "data") from None

    def read_register(self, name: str) -> int:
        self._require_halted(f"read {name}")
        reg = self.register_info(name)
        reply = self._request(b"p%x" % reg.number, f"the value of {name} ('p{reg.number:x}')")
        if not reply:
            raise CapabilityError(f"{self.url}: the server does not support reading single registers ('p')")
        if _error_reply(reply):
            raise TargetError(f"{self.url}: reading {name} (register {reg.number}) failed with {_cut(reply)}")
        if b"x" in reply:
            raise TargetError(f"{self.url}: {name} is unavailable on this target")
        if len(reply) > 2 * ((reg.bits + 7) // 8):
            raise TargetError(f"{self.url}: the 'p' reply for {name} ({reg.bits} bits) is {_cut(reply)}, longer "
                              "than the register")
        return self._register_value(reg, reply, "the 'p' reply")

    def write_register(self, name: str, value: int) -> None:
        """`P`: write one register (GPR, pc or CSR by name), e.g. to inject a fault from a debugger stop."""
        self._require_halted(f"write {name}")
        reg = self.register_info(name)
        data = (value & ((1 << reg.bits) - 1)).to_bytes(reg.bits // 8, "little")
        reply = self._request(b"P%x=%s" % (reg.number, data.hex().encode()), f"OK to writing {name}")
        if not reply:
            raise CapabilityError(f"{self.url}: the server does not support writing single registers ('P')")
        if reply != b"OK":
            raise TargetError(f"{self.url}: writing {name} (register {reg.number}) failed with {reply[:16]!r}")

    # -- memory -----------------------------------------------------------------------------------------------

    @property
    def max_read(self) -> int:
        # The reply carries 2 hex digits a byte plus `$`, `#xx`; keep a margin for servers that count differently.
        return max(16, (self.packet_size - 8) // 2)

    def read_memory(self, address: int, size: int) -> bytes:
        """`m` in chunks of up to PacketSize, several in flight at once once acks are off."""
        self._require_halted("read memory")
        chunks = [(a, min(self.max_read, address + size - a)) for a in range(address, address + size, self.max_read)]
        out = bytearray()
        depth = 1 if self.conn.ack_mode else PIPELINE_DEPTH
        sent = 0
        for index, (chunk_address, chunk_size) in enumerate(chunks):
            while sent < len(chunks) and sent < index + depth:
                a, n = chunks[sent]
                self.conn.send(b"m%x,%x" % (a, n))
                sent += 1
            reply = self.conn.receive(f"{chunk_size} bytes of memory at {chunk_address:#x}")
            if len(reply) > 2 * chunk_size:
                self._drain(sent - index - 1)
                raise TargetError(f"{self.url}: the reply to a read of {chunk_size} bytes at {chunk_address:#x} is "
                                  f"{len(reply)} characters ({_cut(reply)}); at most {2 * chunk_size} can be data")
            try:
                if _error_reply(reply):
                    raise ValueError
                data = unhexlify(reply)
            except ValueError:
                self._drain(sent - index - 1)
                raise TargetError(f"{self.url}: cannot read memory at {chunk_address:#x} "
                                  f"(wanted {size} bytes from {address:#x}; reply {_cut(reply, 16)}); "
                                  f"is that address mapped?") from None
            out += data
            if len(data) < chunk_size:
                self._drain(sent - index - 1)
                raise TargetError(f"{self.url}: memory ends at {chunk_address + len(data):#x} "
                                  f"(wanted {size} bytes from {address:#x})")
        return bytes(out)

    def write_memory(self, address: int, data: bytes) -> None:
        """`M` in chunks that fit a packet (2 hex digits a byte), each answered OK before the next."""
        self._require_halted("write memory")
        for offset in range(0, len(data), self.max_read):
            chunk = data[offset:offset + self.max_read]
            reply = self._request(b"M%x,%x:%s" % (address + offset, len(chunk), chunk.hex().encode()),
                                  f"OK to writing {len(chunk)} bytes at {address + offset:#x}")
            if reply != b"OK":
                raise TargetError(f"{self.url}: cannot write memory at {address + offset:#x} (wrote {offset} of "
                                  f"{len(data)} bytes from {address:#x}; reply {_cut(reply)}); is that address "
                                  "mapped and writable?")

    def _drain(self, replies: int) -> None:
        """Read the replies of requests still in flight so the stream stays in step."""
        for _ in range(replies):
            self.conn.receive("the reply to a pipelined read")

    # -- run control ------------------------------------------------------------------------------------------

    def state(self) -> str:
        return self._state

    def _require_halted(self, what: str) -> None:
        if self._state == "running":
            raise TargetError(f"{self.url}: cannot {what} while the target runs; halt it first")
        if self._state == "exited":
            raise TargetError(f"{self.url}: the target has exited")

    def halt(self, timeout: float | None = None) -> StopReply:
        if self._state != "running":
            return self.last_stop
        self.conn.interrupt()
        return self._wait_stop(timeout)

    def resume(self) -> None:
        self._require_halted("resume")
        self.conn.send(b"c")
        self._state = "running"

    def _wait_stop(self, timeout: float | None) -> StopReply:
        with self.conn.operation(timeout):      # console output for ever ends at the deadline too
            while True:
                reply = self.conn.receive("a stop reply")
                if reply[:1] == b"O" and reply != b"OK":
                    continue  # console output from the server
                stop = self._parse_stop(reply, "a stop reply")
                self._note_stop(stop)
                return stop

    def wait_for_stop(self, timeout: float | None = None) -> StopReply:
        """After resume(): block until the target stops by itself (breakpoint, trap)."""
        if self._state != "running":
            return self.last_stop
        return self._wait_stop(timeout)

    # -- sampling (base.open_sampler) ---------------------------------------------------------------------------

    def sampler(self, request: SampleRequest) -> "RspSampler":
        """A sampler for `request` on this running target (left running): the layout read, pipelining probed."""
        return RspSampler(self, request)

    def probe_pipelining(self) -> bool:
        """Does the server answer a `g` that follows the interrupt in the same write? Detected, not assumed.

        The target must be running; it is halted afterwards. A server that reads the packet before the stop takes
        effect may drop it: we wait a second for the reply, and then know.

        In ack mode (QEMU 7.2 offers no QStartNoAckMode) a pipelined sample cannot ack its replies in time: our '+'
        would reach the server after the `c`, and QEMU stops a running guest on any byte it receives. So pipelined
        samples leave replies unacked and rely on the server taking the next packet's '$' as the end of its wait for
        an ack, as the protocol's "abandon the previous response" rule in QEMU's gdbstub does. The probe tries exactly
        that; a server that instead resends an unacked reply shows up as a reply out of step, which a sample reports.
        """
        self._require_running("probe pipelining")
        self.conn._write(bytes((INTERRUPT,)) + frame(b"g"))
        try:
            with self.conn.operation():
                self._sample_stop()
                reply = self.conn.receive("the 'g' reply pipelined after an interrupt", timeout=1.0, ack=False)
        except TargetError as e:
            if "no reply within" in str(e):
                return False
            raise
        finally:
            self._state = "halted"
        return bool(reply) and not _error_reply(reply) and all(c in b"0123456789abcdefxABCDEF" for c in reply[:16])

    def _sample_stop(self, ack: bool = True, reply: bytes | None = None) -> None:
        """Read up to the stop reply to a sample's interrupt (starting with `reply` if one was read already): console
        output is skipped, an exit or anything else is an error."""
        while True:
            if reply is None:
                reply = self.conn.receive("the stop reply to a sample's interrupt", ack=ack)
            kind = reply[:1]
            if kind in b"ST" and kind:
                if _looks_like_stop_reply(reply):
                    return
                self._parse_stop(reply, "a stop reply to a sample's interrupt")    # raises, naming what is wrong
            if kind == b"O" and reply != b"OK":
                reply = None
                continue   # console output from the server
            if kind in b"WX" and kind:
                self._note_stop(self._parse_stop(reply, "a stop reply to a sample's interrupt"))
                raise TargetError(f"{self.url}: the target exited while being sampled (stop reply {_cut(reply)})")
            raise TargetError(f"{self.url}: expected a stop reply to an interrupt, got {_cut(reply)}")

    def _require_running(self, what: str) -> None:
        if self._state != "running":
            raise TargetError(f"{self.url}: cannot {what} unless the target runs (it is {self._state}); resume it first")

    def set_breakpoint(self, address: int, hardware: bool = True, length: int = 4) -> None:
        """`Z1` (hardware) or `Z0` (software) breakpoint at `address`; length is the instruction size (2 or 4)."""
        self._breakpoint(b"Z", address, hardware, length)

    def remove_breakpoint(self, address: int, hardware: bool = True, length: int = 4) -> None:
        self._breakpoint(b"z", address, hardware, length)

    def _breakpoint(self, verb: bytes, address: int, hardware: bool, length: int) -> None:
        self._require_halted("change breakpoints")
        kind = b"1" if hardware else b"0"
        reply = self._request(verb + kind + b",%x,%x" % (address, length), f"OK to {verb.decode()}{kind.decode()}")
        if not reply:
            raise CapabilityError(f"{self.url}: the server does not support {'hardware' if hardware else 'software'} "
                                  f"breakpoints ('{verb.decode()}{kind.decode()}')")
        if reply != b"OK":
            raise TargetError(f"{self.url}: breakpoint {verb.decode()}{kind.decode()} at {address:#x} failed "
                              f"with {reply[:16]!r}")

    # -- the twin's GDB server (sim/gdbserver.py) paces itself: PACING, where it announces TWIN_HALT_AFTER --------

    def _monitor(self, command: str) -> str:
        reply = self._request(b"qRcmd," + command.encode().hex().encode(), f"the reply to monitor {command}")
        try:
            return bytes.fromhex(reply.decode("ascii")).decode()
        except ValueError:
            raise TargetError(f"{self.url}: monitor {command}: expected hex text, got {_cut(reply)}") from None

    def pacing(self) -> dict | None:
        """The twin's clock as `monitor clock-json` reports it (None: unpaced)."""
        import json
        return json.loads(self._monitor("clock-json"))

    def pace(self, clock_hz: float | None = None) -> None:
        """Pace the (halted) twin to clock_hz simulated cycles per second of running wall time (default: the
        twin's DEFAULT_CLOCK_HZ, as `xipscope profile` paces sim://)."""
        from ..sim.pacing import DEFAULT_CLOCK_HZ
        self._monitor(f"pace {clock_hz or DEFAULT_CLOCK_HZ:g}")

    def ground_truth(self) -> dict:
        """The twin's exact counts since reset (MODEL: qXfer TWIN_TRUTH, sim/truth_tables.py stats_json), read
        halted: a running target is halted for the read and resumed after it."""
        import json
        if MODEL not in self.capabilities:
            raise TargetError(f"{self.url}: not the twin's GDB server: there is no model's truth to read")
        running = self._state == "running"
        if running:
            self.halt()
        try:
            data = self._read_object(TWIN_TRUTH, "", "the twin's truth", MAX_TRUTH_BYTES,
                                     f"the twin's truth goes on past {MAX_TRUTH_BYTES >> 20} MiB")
        finally:
            if running:
                self.resume()
        try:
            return json.loads(data)
        except ValueError as e:     # (UnicodeDecodeError is one)
            raise TargetError(f"{self.url}: the twin's truth is not JSON ({e})") from None

    def halt_after(self, seconds: float) -> None:
        """The run the next resume starts halts after `seconds` of the twin's simulated time, whenever the halt is
        asked for (SimTarget.halt_after's meaning, over the wire)."""
        answer = self._monitor(f"halt-after {seconds!r}")
        if answer.strip() != "OK":
            raise TargetError(f"{self.url}: monitor halt-after: {answer.strip()}")

    def continue_until_stop(self, timeout: float | None = None) -> StopReply:
        """Resume and block until the target stops (breakpoint, trap, exit); a TargetError after `timeout` seconds."""
        self.resume()
        return self._wait_stop(timeout)

    def detach(self) -> None:
        """Leave the target running, as gdb's `detach` does."""
        if self._state == "running":
            self.halt()
        self._request(b"D", "OK to detach")
        self._state = "detached"

    def disconnect(self) -> None:
        """Close the connection without detaching: QEMU and OpenOCD keep a halted target halted (checked on QEMU
        7.2), so it stays as a snapshot taken with --no-resume saw it."""
        self._state = "detached"
        self.conn.close()

    def close(self) -> None:
        try:
            if self._state in ("halted", "running"):
                self.detach()
        except TargetError:
            pass  # the server is gone: closing is all that is left to do
        finally:
            self.conn.close()


TWIN_HALT_AFTER = "xipscope.halt-after"   # sim/gdbserver.py HALT_AFTER_FEATURE
TWIN_TRUTH = "xipscope-truth"             # sim/gdbserver.py TRUTH_OBJECT
MAX_TRUTH_BYTES = 64 << 20                # the twin's truth on a kernel (thousands of functions) is a few MB


class RspSampler:
    """rsp://'s batched sample (base.Sampler): interrupt, `g`, `p` for registers outside the `g` block, `m` for each
    read, then `c`.

    Pipelined (where probe_pipelining finds the server allows it, unless the request says pipeline=False), all of it
    goes out in one write and the replies are read after it: one round trip a sample. Otherwise each reply is awaited
    before the next request, as a strict server needs. How replies are awaited (blocked on or polled for) is
    ReplyWaitChooser's choice. The stop reply may be any S/T form (QEMU says T02thread:01; for an interrupt, T05 if a
    breakpoint won the race).

    Back to back, where the sample is pc and at most one 8-byte read, take_batch(k) takes up to k samples by a C loop
    (rsp/sample_loop.c, built by native.py), the same work without the interpreter's cost per sample; anything it does
    not handle it leaves to the Python path (_take_batch).
    """

    cycle_counter = "mcycle"

    def __init__(self, target: RspTarget, request: SampleRequest):
        self.target, self.request = target, request
        if target.state() == "running":
            target.halt()
        # The register layout comes from the target description, which servers send only while halted.
        pc_number = target.register_info("pc").number
        in_block = [n for n in request.registers if target.register_info(n).number <= pc_number]
        by_number = [n for n in request.registers if n not in in_block] + (["mcycle"] if request.cycles else [])
        self._slices = self._g_slices(in_block)
        self._g_length = max((where.stop for where in self._slices.values()), default=0)
        self._singles = tuple(target.register_info(n).number for n in by_number)
        self._single_names = tuple(by_number)
        self._single_digits = tuple(2 * ((target.register_info(n).bits + 7) // 8) for n in by_number)
        target.resume()
        self.pipelined = target.probe_pipelining() if request.pipeline is not False else False   # halts the target
        if target.state() != "running":
            target.resume()
        reads, singles = request.reads, self._singles
        self._burst = (bytes((INTERRUPT,)) + frame(b"g") + b"".join(frame(b"p%x" % n) for n in singles)
                       + b"".join(frame(b"m%x,%x" % r) for r in reads) + (frame(b"c") if request.resume else b""))
        requests = 1 + len(singles) + len(reads)
        self._replies = requests         # after the stop reply: the g's, each p's and each m's
        # The fast path's view of a sample's replies: a stop reply, then the others, acks around any of them; a
        # body with an escape or run-length mark, or anything else, goes the general way (receive_matching).
        self._fast_replies = re.compile(rb"\+*\$([ST][0-9a-fA-F]{2}[^#$}*]*)#([0-9a-fA-F]{2})\+*"
                                        + rb"\$([^#]*)#([0-9a-fA-F]{2})\+*" * requests)
        self._replies_named = ("the replies to a sample's 'g'" + "".join(f", 'p' ({n})" for n in by_number)
                               + "".join(f", 'm' ({name})" for name in describe_reads(request)))
        self.transfers = 1 + requests + (1 if request.resume else 0)      # the interrupt, the requests, the `c`
        # Waiting: the stop reply, each request's reply and, in ack mode, the ack of the `c`.
        self.round_trips = 1 if self.pipelined else 1 + requests + (1 if request.resume and target.conn.ack_mode else 0)
        counters = "".join(f", m ({name})" for name in describe_reads(request))
        self.description = (f"rsp {'pipelined' if self.pipelined else 'waiting'}: interrupt, g{counters}"
                            f"{', m (stack)' if not request.resume else ''}, c"
                            + (" in one write, replies read after it" if self.pipelined and request.resume else
                               " with the stack read after the g reply" if self.pipelined else ", each reply awaited")
                            + (" (server in ack mode: replies acked by the next packet)"
                               if target.conn.ack_mode and self.pipelined else "")
                            + (f"; {', '.join(by_number)} by 'p'" if by_number else ""))
        if request.pipeline and not self.pipelined:
            self.description += "; pipelining was asked for but the server did not answer a pipelined g (probed)"
        self._slice_items = tuple(self._slices.items())
        self._ahead = False      # a back-to-back burst is out whose replies are not read yet
        self.back_to_back = back_to_back = self.pipelined and request.resume and request.back_to_back
        if back_to_back:
            self.description += "; back to back (the next sample's burst sent before this one's replies are decoded)"
        self._left = b""         # what the native loop read of a sample and left to the Python path (take_batch)
        self._native = _native_loop(self) if back_to_back else None
        # take_batch(k): up to k samples by the native loop (sample_profile uses it where it is not None).
        self.take_batch = self._native and ReplyWaitChooser(self._take_batch, target.conn, request.reply_wait)
        self._wait = self.take_batch or ReplyWaitChooser(
            self._take_back_to_back if back_to_back else self._take_pipelined if self.pipelined else
            self._take_waiting_sample, target.conn, request.reply_wait)
        # The chooser itself, not take() calling it: one call fewer a sample (with the native loop, take() is the
        # Python path's, replies awaited as the batches' chooser last chose).
        self.take = self._take_back_to_back if self.take_batch else self._wait
        if self.take_batch:
            self.description += "; a native (C) loop takes them in batches"

    def _g_slices(self, names) -> dict[str, slice]:
        """Where each named register sits in the hex text of a `g` reply, as read_registers() lays it out."""
        target = self.target
        wanted = {target.register_info(n).name: n for n in names}
        slices: dict[str, slice] = {}
        offset = 0
        for reg in sorted(target.registers, key=lambda r: r.number):
            width = reg.bits // 4
            if reg.name in wanted:
                slices[wanted[reg.name]] = slice(offset, offset + width)
            offset += width
        missing = set(names) - set(slices)
        if missing:
            raise TargetError(f"{target.url}: {', '.join(sorted(missing))} not in the 'g' register block")
        return slices

    def take(self) -> Sample:
        return self._wait()     # (the instance binds take to the chooser: __init__)

    def details(self) -> dict | None:
        return {"reply_wait": self._wait.describe()}

    def _take_waiting_sample(self) -> Sample:
        with self.target.conn.operation():     # one deadline for the whole sample
            return self._take_waiting()

    def _take_pipelined(self) -> Sample:
        """One write, then the replies as they come: the hot loop of a profile, so it keeps to few calls (no context
        manager: the sample's one deadline is passed to each read) while every reply is still checked."""
        target = self.target
        if target._state != "running":
            target._require_running("sample")
        target.conn._write(self._burst)
        replies = self._replies_of_burst()
        if not self.request.resume:
            target._state = "halted"
        return self._sample(replies)    # replies[0] is the stop reply (S or T: the pattern or _sample_stop says so)

    def _take_back_to_back(self) -> Sample:
        """Back to back (request.back_to_back): the next sample's burst goes out as soon as this one's replies are
        in, before they are decoded, so our decoding and the caller's work overlap the server's work on the next
        sample, while the target still runs only from one `c` to the next interrupt, as in a raw loop. One burst at
        most is in flight; finish() takes its replies."""
        conn = self.target.conn
        if not self._ahead:
            if self.target._state != "running":
                self.target._require_running("sample")
            conn._write(self._burst)
        self._ahead = False      # (a failed read leaves the stream out of step: nothing to take later)
        replies = self._replies_of_burst()
        conn._write(self._burst)
        self._ahead = True
        return self._sample(replies)

    def _take_batch(self, k: int) -> tuple[list[int], list[int], list]:
        """Up to k samples back to back by the native loop (rsp/sample_loop.c): (ends, pcs, memory), each sample's
        end (time.perf_counter_ns after the next burst went out), pc and its 8-byte read (an int, little-endian; None
        without one). Fewer when the loop stopped at what only the Python path handles (console output, an error or
        escaped reply, a bad checksum...): it then leaves what it read of that sample to _replies_of_burst, and the
        next batch is that sample taken by _take_back_to_back, with every check and error message it has."""
        conn = self.target.conn
        if self._left or conn._ready or conn._parser.pending:
            sample = self._take_back_to_back()
            memory = [int.from_bytes(sample.memory[0], "little")] if sample.memory else [None]
            return [time.perf_counter_ns()], [sample.registers["pc"]], memory
        if not self._ahead:
            if self.target._state != "running":
                self.target._require_running("sample")
            conn._write(self._burst)
            self._ahead = True
        conn._set_receive_timeout(conn.timeout)     # the loop's blocking reads wait at most this (SO_RCVTIMEO)
        n, status, error = self._native.take(conn._sock.fileno(), k, conn.timeout,
                                             2000 if conn.poll_replies else 0)   # (RspConnection._poll's tries)
        if status == _LEFT_TO_PYTHON:
            self._left = self._native.left()
            if not n:
                return self._take_batch(k)
        elif status:
            self._ahead = False      # the stream is out of step: nothing to take later
            if status == _SEND_FAILED:
                raise TargetError(f"{conn.server}: connection failed while sending ({os.strerror(error)})")
            raise conn._fail("no reply within %g s" % conn.timeout if status == _TIMED_OUT else
                             "the server closed the connection" if status == _CLOSED else
                             f"connection failed ({os.strerror(error)})", self._replies_named)
        return self._native.results(n)

    def _replies_of_burst(self) -> list[bytes]:
        """The replies to the burst just sent, the stop reply first, within one sample's deadline."""
        target = self.target
        conn = target.conn
        if self._left:      # what the native loop read of these replies and left to this path (_take_batch)
            left, self._left = self._left, b""
            conn._feed(left, self._replies_named)
        deadline = _monotonic() + conn.timeout
        replies = conn.receive_matching(self._fast_replies, 1 + self._replies, self._replies_named, deadline)
        if replies is None:
            stop = conn.receive_batch(1, "the stop reply to a sample's interrupt", deadline)[0]
            if _STOPPED.match(stop) is None:     # console output first, an exit, or not a stop reply at all
                with conn.operation(max(0.0, deadline - _monotonic())):
                    target._sample_stop(ack=False, reply=stop)
            replies = [stop] + conn.receive_batch(self._replies, self._replies_named, deadline)
        return replies

    def finish(self) -> None:
        """End sampling: a burst sent ahead (back to back) has its replies taken and dropped, so the stream is in step
        and the target runs, as after any sample."""
        if self._ahead:
            self._ahead = False
            self._replies_of_burst()

    def _take_waiting(self) -> Sample:
        target, request = self.target, self.request
        if target._state != "running":
            target._require_running("sample")
        conn = target.conn
        conn.interrupt()
        target._sample_stop()
        replies = [b"", conn.request(b"g", "the register block ('g') of a sample")]
        replies += [conn.request(b"p%x" % n, "a register ('p') of a sample") for n in self._singles]
        replies += [conn.request(b"m%x,%x" % r, "a memory read of a sample") for r in request.reads]
        if request.resume:
            conn.send(b"c")
        else:
            target._state = "halted"
        return self._sample(replies)

    def _sample(self, replies) -> Sample:
        """The Sample in a sample's replies (the stop reply, the g's, each p's, each m's), each checked: hex of the
        expected length, no error replies. The usual sample is the g reply alone: it returns first."""
        regs = replies[1]
        if len(regs) < self._g_length or _error_reply(regs):
            raise TargetError(f"{self.target.url}: 'g' failed during sampling (reply {_cut(regs)}; expected at least "
                              f"{self._g_length} hex digits of registers)")
        registers = {}
        try:
            for name, where in self._slice_items:
                registers[name] = int.from_bytes(unhexlify(regs[where]), "little")
        except ValueError:
            raise TargetError(f"{self.target.url}: the 'g' reply of a sample is not hex register data "
                              f"({_cut(regs)})") from None
        if len(replies) == 2:
            return _new_sample((registers, (), None, self.round_trips, self.transfers))
        return self._sample_rest(registers, replies[2:2 + len(self._singles)], replies[2 + len(self._singles):])

    def _sample_rest(self, registers: dict, ones: list[bytes], mems: list[bytes]) -> Sample:
        """_sample's part for the `p` and `m` replies."""
        target, reads = self.target, self.request.reads
        cycles = None
        if ones:
            try:
                if any(len(v) > digits for v, digits in zip(ones, self._single_digits)):
                    raise ValueError    # longer than the register
                values = [int.from_bytes(unhexlify(v), "little") for v in ones]
            except ValueError:
                raise TargetError(f"{target.url}: a register read ('p') during sampling failed (replies "
                                  f"{', '.join(_cut(v) for v in ones)})") from None
            if self.request.cycles:
                cycles = values.pop() & 0xFFFFFFFF
            registers.update(zip(self._single_names, values))
        if not mems:
            return Sample(registers, (), cycles, self.round_trips, self.transfers)
        try:
            data = tuple(unhexlify(m) for m in mems)
        except ValueError:
            raise TargetError(f"{target.url}: a memory read during sampling failed (replies "
                              f"{', '.join(_cut(m) for m in mems)}); are "
                              f"{', '.join(f'{a:#x}+{n}' for a, n in reads)} mapped?") from None
        for (address, size), d in zip(reads, data):
            if len(d) != size:
                raise TargetError(f"{target.url}: wanted {size} bytes at {address:#x} during sampling, got {len(d)}")
        return Sample(registers, data, cycles, self.round_trips, self.transfers)


_TOOK_ALL, _LEFT_TO_PYTHON, _TIMED_OUT, _CLOSED, _READ_FAILED, _SEND_FAILED = range(6)   # sample_loop.c's statuses
NATIVE_BATCH = 64       # the most samples one call of the native loop takes


class _NativeLoop:
    """rsp/sample_loop.c's xs_rsp_take for one sampler: its fixed arguments and the arrays it fills."""

    def __init__(self, lib, sampler: RspSampler, pc: slice, memory_digits: int):
        import ctypes

        self._take = lib.xs_rsp_take
        self._ends = (ctypes.c_int64 * NATIVE_BATCH)()
        self._pcs = (ctypes.c_uint64 * NATIVE_BATCH)()
        self._mems = (ctypes.c_uint64 * NATIVE_BATCH)()
        count = 1 + sampler._replies
        bound = sampler.target.conn.max_packet * count      # receive_matching's: read no more before matching
        self._buf = ctypes.create_string_buffer(bound + 65536)
        self._left, self._status, self._error = ctypes.c_long(), ctypes.c_int(), ctypes.c_int()
        self._string_at = ctypes.string_at
        self._memory = memory_digits
        self._fixed = (sampler._burst, len(sampler._burst), count, bound)
        self._decode = (pc.start, pc.stop - pc.start, sampler._g_length, memory_digits)
        self._out = (self._ends, self._pcs, self._mems, self._buf, len(self._buf), ctypes.byref(self._left),
                     ctypes.byref(self._status), ctypes.byref(self._error))

    def take(self, fd: int, k: int, timeout: float, poll_tries: int) -> tuple[int, int, int]:
        n = self._take(fd, *self._fixed, timeout, poll_tries, min(k, NATIVE_BATCH), *self._decode, *self._out)
        return n, self._status.value, self._error.value

    def left(self) -> bytes:
        return self._string_at(self._buf, self._left.value)

    def results(self, n: int) -> tuple[list[int], list[int], list]:
        return self._ends[:n], self._pcs[:n], self._mems[:n] if self._memory else [None] * n


def _native_loop(sampler: RspSampler) -> _NativeLoop | None:
    """The native loop for a back-to-back sampler whose samples it can take (pc from the `g` block, at most one
    8-byte read, no `p`), if the library builds (native.py; XIPSCOPE_NATIVE=0: None)."""
    import ctypes
    from pathlib import Path
    from ..native import native_library

    reads = sampler.request.reads
    slices = dict(sampler._slice_items)
    if set(slices) != {"pc"} or sampler._singles or len(reads) > 1 or any(size != 8 for _, size in reads):
        return None
    if (slices["pc"].stop - slices["pc"].start) not in (8, 16):
        return None

    def check(lib, path) -> None:
        c = ctypes
        lib.xs_rsp_take.restype = c.c_long
        lib.xs_rsp_take.argtypes = [c.c_int, c.c_char_p, c.c_long, c.c_int, c.c_long, c.c_double, c.c_int, c.c_long,
                                    c.c_int, c.c_int, c.c_int, c.c_int, c.c_void_p, c.c_void_p, c.c_void_p,
                                    c.c_void_p, c.c_long, c.c_void_p, c.c_void_p, c.c_void_p]

    lib = native_library(Path(__file__).parent.parent / "rsp" / "sample_loop.c",
                         "the C functions of rsp://'s sampling loop",
                         "the Python loop (slower)", check=check)
    return lib and _NativeLoop(lib, sampler, slices["pc"], 16 if reads else 0)


def _cut(data: bytes, limit: int = 40) -> str:
    """A reply as a person reads it in an error: its first `limit` bytes, and how long it was."""
    shown = repr(bytes(data[:limit]))
    return shown if len(data) <= limit else f"{shown}... ({len(data)} bytes)"


class ReplyWaitChooser:
    """Wraps an rsp:// take(): blocks of samples alternate between blocking on the server's replies and polling for
    them (RspConnection.poll_replies), and the way that took less time per sample stays; every RECHECK samples one more
    block of each way is measured, and the choice follows what it finds.

    Which is faster depends on where the OS puts us and the server, and that changes while a profile runs: on this
    project's 2-core VMs a raw pipelined loop against QEMU on the other CPU took 15,000 samples/s polling against 5,900
    blocked, and sharing a loaded CPU polling fell to a tenth of blocking (bench/bench_rsp_floor.py measures both
    beside the sampler). So it is measured, not assumed, and measured as throughput: the time from one sample to the
    next, all of it, because a polled sample that loses the CPU costs milliseconds and a median would hide that. A
    block of the way that is losing ends early, once it has taken as long as a whole block of the other way, so
    trying the wrong way costs at most a block's time per check. Polling, which keeps a CPU busy, must win clearly
    (POLL_MARGIN) to be kept."""

    WARMUP = 512        # samples blocked on before any is measured (the first ones run slow: see below)
    BLOCK = 64          # samples per block
    ROUNDS = 2          # blocked-on, then polled, this many times at the start
    RECHECK = 8192      # samples between the rounds that check the choice again
    POLL_MARGIN = 0.9   # polling is kept only under this fraction of blocking's time per sample
    GIVE_UP = 1.0       # a block ends once it has taken as long as a whole block of the other way
    MEASURE_BATCH = 8   # samples a batch (take(k)) takes at most while measuring: a block ends between batches

    def __init__(self, take, conn, mode: str = "auto", clock=time.perf_counter_ns):
        """clock: nanoseconds, monotonic (a test gives one that counts what each way costs)."""
        if mode not in ("auto", "block", "poll"):
            raise TargetError(f"reply wait {mode!r}: say block, poll or auto")
        self._take = take
        self._conn = conn
        self._clock = clock
        self.mode = mode
        self._measuring = mode == "auto"
        self._plan = ["block", "poll"] * self.ROUNDS       # the ways still to measure, a block each
        self._latest: dict[str, float] = {}                # ns per sample of each way's latest block
        self._spent = {"block": [0, 0], "poll": [0, 0]}    # ns and samples in all blocks of each way
        self._round = {"block": [0, 0], "poll": [0, 0]}    # the same since the last choice: what the next one weighs
        # Samples left before the next check. The first WARMUP are not measured: against QEMU the first thousand
        # came at half the rate of the rest, and the way measured first took all of that (blocking: 253 us a sample
        # measured, 120-130 us after; polling, chosen on that, kept 185 us).
        self._steady = self.WARMUP if self._measuring else 0
        self._way: str | None = None    # the way of the block being measured
        self._started = self._count = 0
        self.choices = 0            # how many times the way was chosen (the first, then one per check)
        conn.poll_replies = mode == "poll"

    def __call__(self, *batch):
        """One sample (take()), or a batch of up to k (take(k)), counted as k samples; while measuring, batches of
        MEASURE_BATCH at most, so a losing block still ends early (GIVE_UP)."""
        n = batch[0] if batch else 1
        if self._steady:
            self._steady = max(0, self._steady - n)
            return self._take(*batch)
        if self._measuring:
            if n > self.MEASURE_BATCH:
                n, batch = self.MEASURE_BATCH, (self.MEASURE_BATCH,)
            self._measure(self._clock(), n)
        return self._take(*batch)

    def _measure(self, now: int, n: int = 1) -> None:
        """Before a sample, while measuring: count it in the block in progress, or end that block (full, or lost) and
        start the next, or, with every planned block measured, choose by the time per sample of each way over the
        blocks since the last choice, and go on steadily for RECHECK samples."""
        if self._way is not None:
            elapsed = now - self._started     # the block's samples so far, all of their time, the caller's included
            other = self._latest.get("poll" if self._way == "block" else "block")
            if self._count < self.BLOCK and (other is None or elapsed <= self.GIVE_UP * other * self.BLOCK):
                self._count += n
                return
            self._latest[self._way] = elapsed / self._count
            for spent in (self._spent[self._way], self._round[self._way]):
                spent[0] += elapsed
                spent[1] += self._count
        if not self._plan:
            (block_ns, blocked), (poll_ns, polled) = self._round["block"], self._round["poll"]
            self.mode = "poll" if poll_ns / polled < self.POLL_MARGIN * block_ns / blocked else "block"
            self._round = {"block": [0, 0], "poll": [0, 0]}
            self.choices += 1
            self._conn.poll_replies = self.mode == "poll"
            self._way = None
            self._steady = self.RECHECK - n      # this call's samples are the first of them
            # The check measures the way not kept first, then the kept one, each against the other's latest block.
            self._plan = ["block" if self.mode == "poll" else "poll", self.mode]
            return
        self._way = self._plan.pop(0)
        self._conn.poll_replies = self._way == "poll"
        self._started, self._count = now, n

    def describe(self) -> dict:
        measured = {w: round(ns / n / 1000, 1) for w, (ns, n) in self._spent.items() if n}
        chosen = not self._measuring or self.choices
        return {"replies": ("polled" if self.mode == "poll" else "blocked on") if chosen else "still calibrating",
                "chosen_by": "measurement" if self._measuring else "request", "us_per_sample": measured or None,
                "checks": max(0, self.choices - 1) if self._measuring else None}
