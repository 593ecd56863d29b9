"""gdbservers that lie, for test_hostile_rsp.py in unit/ and kernel/: each LyingServer answers honestly except for one
lie (CASES), and run() runs an xipscope command against it in a subprocess with its data segment capped."""

from __future__ import annotations

import os
import re
import resource
import socket
import subprocess
import sys
import threading
from pathlib import Path


from xipscope.rsp.packets import INTERRUPT, Packet, PacketParser, frame

REPO = Path(__file__).resolve().parents[2]
XIPBENCH = REPO / "firmware" / "xipbench.elf"
MEMORY_CAP = 512 << 20
HANG = 90         # seconds: far past any --timeout 2 run, even on a loaded machine

GPRS = "zero ra sp gp tp t0 t1 t2 fp s1 a0 a1 a2 a3 a4 a5 a6 a7 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 t3 t4 t5 t6".split()
TARGET_XML = ("<?xml version=\"1.0\"?><target><architecture>riscv:rv32</architecture>"
              "<feature name=\"org.gnu.gdb.riscv.cpu\">"
              + "".join(f'<reg name="{n}" bitsize="32" regnum="{i}"/>' for i, n in enumerate(GPRS))
              + '<reg name="pc" bitsize="32" regnum="32"/></feature><feature name="org.gnu.gdb.riscv.csr">'
              + "".join(f'<reg name="{n}" bitsize="32" regnum="{65 + c}"/>' for n, c in
                        (("mstatus", 0x300), ("mtvec", 0x305), ("mepc", 0x341), ("mcause", 0x342), ("mtval", 0x343)))
              + "</feature></target>").encode()


def honest(payload: bytes) -> bytes | None:
    """What a plain RISC-V gdbserver with a halted hart answers (None: nothing, as after `c`)."""
    if payload.startswith(b"qSupported"):
        return b"PacketSize=1000;qXfer:features:read+"
    if payload == b"?":
        return b"S05"
    if payload.startswith(b"qXfer:features:read:target.xml:"):
        offset = int(payload.rsplit(b":", 1)[1].split(b",")[0], 16)
        return b"l" + TARGET_XML[offset:]
    if payload == b"g":
        return b"00000000" * 33
    if payload.startswith(b"p"):
        return b"00000000"
    if payload.startswith(b"m"):
        return b"00" * int(payload.split(b",")[1], 16)
    if payload == b"c":
        return None
    if payload == bytes((INTERRUPT,)):
        return b"S02"
    if payload in (b"D", b"QStartNoAckMode") or payload[:1] in b"ZzMP":
        return b"OK"
    return b""


class LyingServer:
    """Serves each connection with `lie(payload, sock)`: True when it answered (or lied) itself, else the honest
    answer goes out. Acks every packet ('+'); never offers no-ack mode, so our client's ack handling is in play."""

    def __init__(self, lie):
        self.lie = lie
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"rsp://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, sock):
        parser = PacketParser()
        self.last = b""
        with sock:
            try:
                while not self.stopping.is_set():
                    data = sock.recv(65536)
                    if not data:
                        return
                    for item in parser.feed(data):
                        if isinstance(item, Packet):
                            sock.sendall(b"+")
                            payload = item.payload
                        elif item == bytes((INTERRUPT,)):
                            payload = item
                        else:
                            if item == b"-":
                                sock.sendall(self.last)     # the client asks again: the same answer again
                            continue
                        self.lie(payload, self.recording(sock)) or self.answer(payload, sock)
            except OSError:
                return      # the client went away: what a lie usually ends in

    def recording(self, sock):
        """The socket as a lie sees it: what it sends is what a '-' gets again."""
        server = self

        class Recorder:
            def sendall(self, data):
                server.last = data
                sock.sendall(data)
        return Recorder()

    def answer(self, payload, sock):
        reply = honest(payload)
        if reply is not None:
            self.last = frame(reply)
            sock.sendall(self.last)

    def close(self):
        self.stopping.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


def bad_checksums(payload, sock):
    sock.sendall(b"$" + (honest(payload) or b"") + b"#00")      # every reply, every resend: the wrong checksum
    return True


def ack_flood(payload, sock):
    if payload == b"?":
        chunk = b"+" * 65536
        while True:                                            # acks and nothing else, until the client gives up
            sock.sendall(chunk)
    return False


def never_ending_packet(payload, sock):
    if payload.startswith(b"m"):
        sock.sendall(b"$")
        chunk = b"0" * 65536
        while True:
            sock.sendall(chunk)
    return False


def megabyte_reply(payload, sock):
    if payload.startswith(b"m"):
        sock.sendall(frame(b"00" * (1 << 20)))
        return True
    return False


def longer_than_asked(payload, sock):
    if payload.startswith(b"m"):
        sock.sendall(frame(b"00" * (int(payload.split(b",")[1], 16) + 4)))
        return True
    return False


def endless_description(payload, sock):
    if payload.startswith(b"qXfer"):
        length = int(payload.rsplit(b",", 1)[1], 16)
        sock.sendall(frame(b"m" + b" " * length))             # always "more to come"
        return True
    return False


def reply_with(prefix: bytes, answer: bytes):
    def lie(payload, sock):
        if payload.startswith(prefix):
            sock.sendall(frame(answer))
            return True
        return False
    return lie


def description(xml: bytes):
    return reply_with(b"qXfer:features:read:target.xml:", b"l" + xml)


def run(command: str, server: LyingServer, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    args = {"trap": ["--elf", str(XIPBENCH)],
            "profile": ["--elf", str(XIPBENCH), "--samples", "20", "--out", str(tmp_path / "p")]}.get(command, [])
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit"))

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_CAP, MEMORY_CAP))

    return subprocess.run([sys.executable, "-m", "xipscope", command, "--target", server.url, "--timeout", "2",
                           *args, *extra], capture_output=True, text=True, timeout=HANG, env=env,
                          preexec_fn=cap_memory)


def assert_clear_error(result: subprocess.CompletedProcess, command: str, pattern: str) -> None:
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"xipscope {command}: error:")]
    assert len(errors) == 1, result.stderr[-3000:]       # one paragraph: the error is one line
    assert re.search(pattern, errors[0]), errors[0]
    assert len(errors[0]) < 1000, errors[0]              # values are cut to a readable length


CASES = {
    # name: (lie, command, what the error must say)
    "bad checksums": (bad_checksums, "trap", r"a packet with a bad checksum 4 times \(b'PacketSize=1000"),
    "ack flood": (ack_flood, "trap", r"no reply within 2 s \(only acks and interrupts\) while waiting for the stop "
                                     r"reply to '\?'"),
    "malformed stop reply": (reply_with(b"?", b"Tzz"), "trap",
                             r"expected a stop reply to '\?', got a malformed reply \(the signal of a stop reply is "
                             r"not two hex digits: b'Tzz'\)"),
    "PacketSize not hex": (reply_with(b"qSupported", b"PacketSize=0xzz;qXfer:features:read+"), "trap",
                           r"qSupported says PacketSize='0xzz', which is not a hex number"),
    "non-hex registers": (reply_with(b"g", b"zz" * 132), "trap",
                          r"the 'g' reply holds b'zzzzzzzz' for zero, which is not hex register data"),
    "bitsize not a number": (description(TARGET_XML.replace(b'"pc" bitsize="32"', b'"pc" bitsize="wide"')), "trap",
                             r"target.xml: <reg name='pc'> has bitsize='wide', not a decimal number"),
    "include without href": (description(b"<target><xi:include/></target>"), "trap",
                             r"target.xml: an <xi:include> without href"),
    "description that never ends": (endless_description, "trap", r"the target description goes on past 4 MiB"),
    "a 1 MiB reply to an 8-byte read": (megabyte_reply, "profile", r"a packet longer than a reply can be \(over 8192 "
                                                                   r"bytes without an end\) while waiting for the "
                                                                   r"replies to a sample's 'g', 'm' \(counters\)"),
    "a packet that never ends": (never_ending_packet, "profile", r"a packet longer than a reply can be"),
    "a reply longer than asked": (longer_than_asked, "profile", r"wanted 8 bytes at 0x[0-9a-f]+ during sampling, "
                                                                r"got 12"),
    "malformed stop reply to a sample": (reply_with(bytes((INTERRUPT,)), b"S?!"), "profile",
                                         r"expected a stop reply to a sample's interrupt, got a malformed reply"),
}
