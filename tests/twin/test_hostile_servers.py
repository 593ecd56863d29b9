"""Our servers against hostile clients: `xipscope sim --gdb-port`, `xipscope serve DIR` and `xipscope sim --jtag-port`
each take the bytes a hostile or broken local client might send (malformed packets, garbage, an HTTP request from a
browser page, huge packets that never end, a flood of naks, a client gone mid-packet), answer with an error or drop
that client, and then answer a well-behaved client correctly from the same process. Also: `serve` hands out nothing a
symlink inside the snapshot leads to outside it.

The twin is a model (RP2350 twin); what it answers is compared with what it answered before the hostile client came.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from support.servers import xipscope_server_process
from xipscope.chip.memory_map import get_memory_map
from xipscope.elf.program import ElfImage
from xipscope.sim.jtag import IDCODE
from xipscope.snapshot.take import take_snapshot
from xipscope.targets import open_target
from xipscope.rsp.packets import frame
from xipscope.rsp.server import MAX_READ
from xipscope.snapshot.read import SnapshotTarget

REPO = Path(__file__).resolve().parents[2]
XIPBENCH = REPO / "firmware" / "xipbench.elf"
AMOFAULT = REPO / "firmware" / "amofault.elf"
SRAM, PSRAM = get_memory_map("rp2350")["sram"], get_memory_map("rp2350")["psram"]
IO_TIMEOUT_S = 30.0        # per socket operation: only a failing case ever waits this long
E02 = b"+" + frame(b"E02")   # ack, then the reply to a malformed request
FAILED_REQUEST = "dropped a client whose request failed"   # what server.py logs for an error no reply answered


# -- talking to a server -----------------------------------------------------------------------------------------------

def exchange(port: int, data: bytes, *, end: str = "shutdown") -> tuple[bytes, bool]:
    """Send `data`, then end our side (`shutdown`: a FIN, we read on; `reset`: an RST at once, nothing read; `wait`:
    keep the connection and read until the server ends it). Returns what the server sent and whether it ended the
    connection first (closed or reset it while we still sent or listened). We read while we send, as a client
    that reads its replies does."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S) as conn:
        if end == "reset":
            conn.sendall(data)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return b"", False
        send_failed = []

        def send() -> None:
            try:
                conn.sendall(data)
                if end == "shutdown":
                    conn.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError) as e:
                send_failed.append(e)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        received = bytearray()
        try:
            while chunk := conn.recv(65536):
                received += chunk
            reset = False
        except ConnectionResetError:
            reset = True
        sender.join(IO_TIMEOUT_S)
        assert not sender.is_alive(), "still sending after the server closed the connection"
        return bytes(received), reset or bool(send_failed) or end == "wait"


def http_post(body: bytes) -> bytes:
    """What a browser page's fetch() to 127.0.0.1:PORT sends."""
    return (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\nOrigin: http://evil.example"
            b"\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


# Requests whose fields do not parse, answered E02 by both GDB servers.
MALFORMED = [b"m-1,4", b"mzz,4", b"m20000000", b"m1" + b"f" * 20 + b",4", b"p-1", b"pzz",
             b"qXfer:features:read:target.xml:zz,10", b"qXfer:features:read:target.xml:-1,10"]
# ... and by the twin, whose state they would change if they did parse.
MALFORMED_TWIN = [b"Z0,-4,4", b"Z0,100000000,4", b"c-1", b"s100000000", b"X-4,1:a", b"M20000000,1:zz", b"P20=zz",
                  b"qRcmd,zz"]

RSP_CASES = {
    # name: (bytes sent, how our side ends, what the server must send back (None: anything), whether it drops us)
    "escape at the end of a packet": (b"$}#7d", "shutdown", E02, False),
    "run-length mark with nothing to repeat": (frame(b"*!"), "shutdown", E02, False),
    "run-length count below zero": (frame(b"m*\x10"), "shutdown", E02, False),
    "HTTP request with a bad packet as its body": (http_post(b"$}#7d"), "shutdown", E02, False),
    "malformed fields": (b"".join(frame(p) for p in MALFORMED), "shutdown", E02 * len(MALFORMED), False),
    # 32 packets, each from a '$' to the next period's '#', whose checksum digits '$%' take the '$' after it: all bad
    "garbage bytes": (bytes(range(256)) * 64, "shutdown", b"-" * 32, False),
    "bad checksums": (b"$g#00" * 1000, "shutdown", b"-" * 1000, False),
    "nak flood, then a request": (b"-" * (1 << 20) + frame(b"?"), "shutdown", b"+" + frame(b"S05"), False),
    "acks and interrupts while halted, then a request": (b"+\x03" * (1 << 19) + frame(b"?"), "shutdown",
                                                         b"+" + frame(b"S05"), False),
    "16 MiB packet that never ends": (b"$" + b"m" * (16 << 20), "wait", b"", True),
    "gone mid-packet": (b"$m20000000,4", "reset", b"", False),
    "gone mid-packet after a FIN": (b"$qSupported:swbreak+;hw", "shutdown", b"", False),
}


def read_idcode(port: int) -> int:
    """A well-behaved remote_bitbang client: reset the TAP, shift out the 32-bit IDCODE (IEEE 1149.1), quit."""
    def clock(tms: int, tdi: int = 0) -> bytes:
        return bytes((48 + 2 * tms + tdi, 48 + 4 + 2 * tms + tdi))    # TCK low, then high: the TAP acts on the rise

    to_shift_dr = clock(1) * 5 + clock(0) + clock(1) + clock(0) + clock(0)   # TLR, RTI, Select-DR, Capture-DR, Shift-DR
    shift = b"".join(b"R" + clock(tms=int(i == 31)) for i in range(32))
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S) as conn:
        conn.sendall(to_shift_dr + shift + clock(1) + clock(0) + b"Q")
        tdo = bytearray()
        while len(tdo) < 32:
            chunk = conn.recv(64)
            assert chunk, f"the JTAG server closed the connection after {len(tdo)} of 32 TDO bits"
            tdo += chunk
    assert set(tdo) <= set(b"01"), tdo
    return sum((bit - 48) << i for i, bit in enumerate(tdo))


def gdb_pc(port: int) -> int:
    exe = shutil.which("gdb-multiarch")
    assert exe, "gdb-multiarch is needed: apt-get install gdb-multiarch"
    out = subprocess.run([exe, "-nx", "-batch", "-ex", "set architecture riscv:rv32",
                          "-ex", f"target remote 127.0.0.1:{port}", "-ex", "p/x $pc", "-ex", "detach"],
                         capture_output=True, text=True, timeout=120)
    values = [line.split("=")[1].strip() for line in out.stdout.splitlines() if line.startswith("$1 = ")]
    assert values, out.stdout + out.stderr
    return int(values[0], 16)


# -- the servers -------------------------------------------------------------------------------------------------------

def rsp_answers(port: int) -> dict:
    """What our rsp:// client reads: a few registers and memory the hostile clients never wrote."""
    target = open_target(f"rsp://127.0.0.1:{port}")
    try:
        regs = target.read_registers()
        return {"pc": regs["pc"], "sp": regs["sp"], "mcause": target.read_register("mcause"),
                "sram": target.read_memory(SRAM.start, 256), "psram": target.read_memory(PSRAM.start, 64)}
    finally:
        target.close()


@pytest.fixture(scope="module")
def twin():
    with xipscope_server_process("sim", XIPBENCH, "--gdb-port", "0") as server:
        before = rsp_answers(server.port)
        assert before["pc"] == ElfImage(XIPBENCH).entry     # halted at the entry, as the twin starts
        yield server, before
        assert FAILED_REQUEST not in server.stderr_text() and "Traceback" not in server.stderr_text(), \
            server.stderr_text()


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory) -> Path:
    target = open_target(f"sim://{AMOFAULT}")
    try:
        assert target.run(1_000_000).reason == "idle"
        out = tmp_path_factory.mktemp("hostile") / "snap"
        take_snapshot(target, out, get_memory_map("rp2350"), sizes={"psram": 64 << 10})
    finally:
        target.close()
    return out


@pytest.fixture(scope="module")
def served(snapshot_dir):
    with xipscope_server_process("serve", snapshot_dir, "--port", "0") as server:
        before = rsp_answers(server.port)
        saved = SnapshotTarget(snapshot_dir)
        try:
            assert before["sram"] == saved.read_memory(SRAM.start, 256)
            assert before["pc"] == saved.read_register("pc")
        finally:
            saved.close()
        yield server, before
        assert FAILED_REQUEST not in server.stderr_text() and "Traceback" not in server.stderr_text(), \
            server.stderr_text()


@pytest.fixture(scope="module")
def jtag():
    with xipscope_server_process("sim", XIPBENCH, "--jtag-port", "0") as server:
        assert read_idcode(server.port) == IDCODE
        yield server


# -- the cases ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(RSP_CASES))
@pytest.mark.parametrize("which", ["twin", "served"])
def test_gdb_servers_survive_a_hostile_client(which, case, request):
    server, before = request.getfixturevalue(which)
    data, end, expected, dropped = RSP_CASES[case]
    received, was_dropped = exchange(server.port, data, end=end)
    if end != "reset":
        assert received == expected, received[:200]
        assert was_dropped == dropped
    assert server.process.poll() is None
    assert rsp_answers(server.port) == before      # the next client is served, with the same answers


def test_the_twin_refuses_requests_that_would_change_it_if_they_parsed(twin):
    server, before = twin
    received, _ = exchange(server.port, b"".join(frame(p) for p in MALFORMED_TWIN))
    assert received == E02 * len(MALFORMED_TWIN)
    assert rsp_answers(server.port) == before


@pytest.mark.parametrize("which", ["twin", "served"])
def test_a_read_of_4_gib_answers_one_packet(which, request):
    server, before = request.getfixturevalue(which)
    received, _ = exchange(server.port, frame(b"m%x,ffffffff" % SRAM.start))
    reply = received[2:received.rindex(b"#")]          # after '+$'
    assert len(reply) == 2 * MAX_READ and reply.startswith(before["sram"].hex().encode())


@pytest.mark.parametrize("which", ["twin", "served"])
def test_gdb_connects_after_the_hostile_clients(which, request):
    server, before = request.getfixturevalue(which)
    exchange(server.port, b"$}#7d" + b"$" + b"x" * (1 << 20), end="wait")
    assert gdb_pc(server.port) == before["pc"]


JTAG_CASES = {
    "garbage bytes (a 'Q' among them ends the session)": (bytes(range(256)) * 64, "wait"),
    "HTTP request": (http_post(b"$}#7d"), "shutdown"),
    "4 MiB of pin changes": (bytes(range(48, 56)) * (1 << 19), "shutdown"),
    "gone mid-stream": (b"0426" * 1000, "reset"),
}


@pytest.mark.parametrize("case", list(JTAG_CASES))
def test_jtag_server_survives_a_hostile_client(jtag, case):
    data, end = JTAG_CASES[case]
    exchange(jtag.port, data, end=end)
    assert jtag.process.poll() is None
    assert read_idcode(jtag.port) == IDCODE


def test_jtag_server_answers_a_flood_of_tdo_reads(jtag):
    """1 MiB of 'R' in Test-Logic-Reset: one TDO bit each, all 0 (no register is being shifted)."""
    received, dropped = exchange(jtag.port, b"R" * (1 << 20))
    assert received == b"0" * (1 << 20) and not dropped
    assert read_idcode(jtag.port) == IDCODE
    assert FAILED_REQUEST not in jtag.stderr_text() and "Traceback" not in jtag.stderr_text(), jtag.stderr_text()


# -- files a snapshot must not lead `serve` to -------------------------------------------------------------------------

def serve_once(directory: Path) -> subprocess.CompletedProcess:
    """`xipscope serve DIR` expected to refuse DIR: it must exit by itself (a bounded wait, not a served port)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit"))
    return subprocess.run([sys.executable, "-m", "xipscope", "serve", str(directory), "--port", "0"],
                          capture_output=True, text=True, timeout=120, env=env)


def copy_snapshot(snapshot_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(snapshot_dir, copy)
    return copy


def add_description(directory: Path, make) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["target_description"] = ["target.xml"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / "tdesc").mkdir(exist_ok=True)
    make(directory / "tdesc" / "target.xml")


def test_serve_refuses_a_description_symlinked_outside_the_snapshot(snapshot_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the recipient's private key\n")
    copy = copy_snapshot(snapshot_dir, tmp_path)
    add_description(copy, lambda path: path.symlink_to(secret))
    result = serve_once(copy)
    assert result.returncode == 1 and "found a path leading out of it" in result.stderr, result.stderr
    assert "tdesc/target.xml" in result.stderr and "Traceback" not in result.stderr
    assert "private key" not in result.stdout + result.stderr


def test_serve_refuses_a_tdesc_directory_symlinked_outside(snapshot_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "target.xml").write_text("<target/>")
    copy = copy_snapshot(snapshot_dir, tmp_path)
    (copy / "tdesc").symlink_to(elsewhere)
    add_description(copy, lambda path: None)
    result = serve_once(copy)
    assert result.returncode == 1 and "found a path leading out of it" in result.stderr, result.stderr


def test_serve_refuses_a_region_symlinked_outside_even_with_the_right_bytes(snapshot_dir, tmp_path):
    """Size and hash match (the file outside is a copy of the region), so only where it lies says it is not ours."""
    copy = copy_snapshot(snapshot_dir, tmp_path)
    region = json.loads((copy / "manifest.json").read_text())["regions"][0]["file"]
    outside = tmp_path / "outside.bin"
    shutil.move(copy / region, outside)
    (copy / region).symlink_to(outside)
    result = serve_once(copy)
    assert result.returncode == 1 and "found a path leading out of it" in result.stderr, result.stderr
    assert region in result.stderr


def test_serve_refuses_a_fifo_description_at_once(snapshot_dir, tmp_path):
    copy = copy_snapshot(snapshot_dir, tmp_path)
    add_description(copy, os.mkfifo)
    result = serve_once(copy)          # a read of the FIFO would block forever; the timeout would fail the test
    assert result.returncode == 1 and "FIFO" in result.stderr, result.stderr


def test_serve_follows_symlinks_that_stay_inside(snapshot_dir, tmp_path):
    copy = copy_snapshot(snapshot_dir, tmp_path)
    (copy / "keep").mkdir()
    (copy / "keep" / "real.xml").write_text("<target/>")
    add_description(copy, lambda path: path.symlink_to(copy / "keep" / "real.xml"))
    with xipscope_server_process("serve", copy, "--port", "0") as server:
        received, _ = exchange(server.port, frame(b"qXfer:features:read:target.xml:0,100"))
    assert received == b"+" + frame(b"l<target/>")
