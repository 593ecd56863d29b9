"""A GDB remote protocol server in front of the RP2350 twin (a model), so gdb-multiarch and rsp:// both connect.

All-stop, one core, one client at a time, bound to 127.0.0.1. While the core runs, the server simulates it in slices
and looks at the socket between slices: an interrupt stops it, and requests (e.g. `m` for memory) are answered at a
slice boundary, so a read while running is consistent and the run it sees is reproducible.
Framing comes from target/rsp_packets.py (shared with our client).
"""

from __future__ import annotations

import select
import socket
import struct
import sys
import time

from ..chip import riscv as rv
from ..errors import TargetError
from ..target.description import CSR_REGNUM_BASE  # OpenOCD's numbering: CSR n is 65 + n
from ..target.description import GPR_TYPES as _GPR_TYPES
from ..target.rsp_packets import INTERRUPT, Packet, PacketParser, decode_payload, escape_binary, frame
from .machine import MODEL_NOTE, REGISTER_CSRS, Machine
from .pacing import SimClock, run_to_cycle

SLICE = 50_000            # instructions between looks at the socket while running
IDLE_POLL_S = 0.05        # a core parked in wfi: nothing to simulate until the client speaks
SIGINT, SIGTRAP, SIGSEGV = 2, 5, 11
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux's value; Python does not export it


def target_xml() -> str:
    regs = []
    for i, name in enumerate(rv.GPR_NAMES):
        regs.append(f'    <reg name="{name}" bitsize="32" type="{_GPR_TYPES.get(name, "int")}" regnum="{i}"/>')
    regs.append('    <reg name="pc" bitsize="32" type="code_ptr" regnum="32"/>')
    csrs = [f'    <reg name="{name}" bitsize="32" type="int" regnum="{CSR_REGNUM_BASE + rv.CSRS[name]}" group="csr"/>'
            for name in REGISTER_CSRS]
    return ("<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
            f"<!-- {MODEL_NOTE}: Hazard3 core 0 as xipscope's twin models it -->\n"
            "<target version=\"1.0\">\n  <architecture>riscv:rv32</architecture>\n"
            "  <feature name=\"org.gnu.gdb.riscv.cpu\">\n" + "\n".join(regs) + "\n  </feature>\n"
            "  <feature name=\"org.gnu.gdb.riscv.csr\">\n" + "\n".join(csrs) + "\n  </feature>\n</target>\n")


def regnum_name(n: int) -> str | None:
    if 0 <= n < 32:
        return rv.GPR_NAMES[n]
    if n == 32:
        return "pc"
    name = rv.CSR_NAMES.get(n - CSR_REGNUM_BASE)
    return name if name in REGISTER_CSRS else None


def _le32(value: int) -> str:
    return (value & 0xFFFFFFFF).to_bytes(4, "little").hex()


class GdbServer:
    """Serve one Machine on 127.0.0.1:port (0 picks a free port; see `.port`)."""

    def __init__(self, machine: Machine, port: int = 0, log=None, clock_hz: float | None = None):
        self.machine = machine
        self.log = log
        self.clock = SimClock(clock_hz) if clock_hz else None   # None: unpaced (sim/pacing.py)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind(("127.0.0.1", port))
        except OSError as e:
            raise TargetError(f"{MODEL_NOTE}: cannot listen on 127.0.0.1:{port}: {e.strerror}; "
                              "pick another --gdb-port (0 = any free port)") from None
        self._listener.listen(1)
        self.port = self._listener.getsockname()[1]
        self._xml = target_xml().encode()
        self._stop = False

    def close(self) -> None:
        self._stop = True
        self._listener.close()

    def serve_forever(self) -> None:
        """Accept clients one after another until close() or a `k` packet."""
        while not self._stop:
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                _Session(self, conn).run()
            except (ConnectionError, OSError):
                pass
            finally:
                conn.close()

    def _log(self, text: str) -> None:
        if self.log is not None:
            print(text, file=self.log, flush=True)


class _Session:
    def __init__(self, server: GdbServer, conn: socket.socket):
        self.server = server
        self.m = server.machine
        self.conn = conn
        self.parser = PacketParser()
        self.ack = True
        self.running = False
        self.idle = False
        self.done = False
        self.stamped = False
        if server.clock is not None:
            try:
                conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.stamped = True
            except OSError:
                pass   # not Linux: the arrival time is when we read the bytes

    # --- plumbing ---
    def send(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        self.conn.sendall(frame(payload))

    def run(self) -> None:
        if self.server.clock is not None:
            self._run_paced()
            return
        while not self.done:
            if self.running and not self.idle:
                ready, _, _ = select.select([self.conn], [], [], 0)
                if ready:
                    self._receive()
                    continue
                self._after_slice(self.m.run_slice(SLICE))
            else:
                self._wait_for_client()

    def _after_slice(self, reason: str) -> None:
        """Report why a slice stopped: a breakpoint or a trap loop stops the target; wfi with nothing to wake it
        is idle (the twin stops simulating it)."""
        if reason == "breakpoint":
            self._stopped(SIGTRAP)
        elif reason == "trap-loop":
            self._stopped(SIGSEGV)
        elif reason == "idle":
            self.idle = True

    def _wait_for_client(self) -> None:
        """Halted or idle: nothing to simulate, so wait for the client (polling now and then while idle)."""
        ready, _, _ = select.select([self.conn], [], [], IDLE_POLL_S if self.running else None)
        if ready:
            self._receive()

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

    def _run_paced(self) -> None:
        """The run loop with the twin paced to its clock (sim/pacing.py): run a slice whenever at least a short one is
        due, else wait on the socket until it is. An interrupt runs the core on to the simulated cycle of the
        moment it arrived, and stops it there (_receive)."""
        clock, m = self.server.clock, self.m
        while not self.done:
            if self.running and not self.idle:
                lag = clock.behind(m.cycles, time.perf_counter())
                if lag < clock.min_slice:
                    ready, _, _ = select.select([self.conn], [], [], (clock.min_slice - lag) / clock.hz)
                    if ready:
                        self._receive()
                    continue
                ready, _, _ = select.select([self.conn], [], [], 0)
                if ready:
                    self._receive()
                    continue
                self._after_slice(run_to_cycle(m, m.cycles + min(lag, clock.max_slice), clock))
            else:
                self._wait_for_client()

    def _receive(self) -> None:
        data, arrived = self._recv_stamped()
        if not data:
            self.done = True
            return
        for item in self.parser.feed(data):
            if item == bytes((INTERRUPT,)):
                if self.running:
                    clock = self.server.clock
                    if clock is not None and not self.idle:
                        # Paced: stop at the simulated cycle of the moment the interrupt arrived (sim/pacing.py).
                        reason = run_to_cycle(self.m, clock.stop_at(self.m.cycles, arrived), clock)
                        if reason in ("breakpoint", "trap-loop"):
                            self._stopped(SIGTRAP if reason == "breakpoint" else SIGSEGV)
                            continue
                    self._stopped(SIGINT)
            elif isinstance(item, Packet):
                if not item.checksum_ok:
                    if self.ack:
                        self.conn.sendall(b"-")
                    continue
                if self.ack:
                    self.conn.sendall(b"+")
                self._handle(decode_payload(item.payload))
            # '+' / '-' acks from the client need no action: we never resend.

    def _stopped(self, signal: int) -> None:
        self.running = False
        self.idle = False
        self.send(f"T{signal:02x}thread:1;")

    # --- packets ---
    def _handle(self, p: bytes) -> None:
        text = p.decode("latin-1")
        self.server._log(f"<- {text[:80]}")
        cmd = text[:1]
        try:
            reply = self._dispatch(cmd, text, p)
        except TargetError:
            reply = "E01"
        except (ValueError, IndexError):
            reply = "E02"
        if reply is not None:
            self.send(reply)

    def _dispatch(self, cmd: str, text: str, raw: bytes):
        m = self.m
        if text.startswith("qSupported"):
            return "PacketSize=4000;qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+;vContSupported-"
        if text == "QStartNoAckMode":
            self.send("OK")
            self.ack = False
            return None
        if text.startswith("qXfer:features:read:target.xml:"):
            offset, length = (int(x, 16) for x in text.rsplit(":", 1)[1].split(","))
            chunk = self.server._xml[offset:offset + length]
            more = offset + length < len(self.server._xml)
            return (b"m" if more else b"l") + escape_binary(chunk)
        if text == "qAttached":
            return "1"
        if text == "qC":
            return "QC1"
        if text == "qfThreadInfo":
            return "m1"
        if text == "qsThreadInfo":
            return "l"
        if text.startswith("qRcmd,"):
            return self._monitor(bytes.fromhex(text[6:]).decode("utf-8", "replace").strip())
        if text.startswith("H") or text.startswith("T"):
            return "OK"
        if text == "?":
            return "S05" if not self.running else None
        if cmd == "g":
            regs = [m.read_register(n) for n in rv.GPR_NAMES] + [m.read_register("pc")]
            return "".join(_le32(v) for v in regs)
        if cmd == "G":
            data = bytes.fromhex(text[1:])
            for i, name in enumerate(list(rv.GPR_NAMES) + ["pc"]):
                if 4 * i + 4 <= len(data):
                    m.write_register(name, int.from_bytes(data[4 * i:4 * i + 4], "little"))
            return "OK"
        if cmd == "p":
            name = regnum_name(int(text[1:], 16))
            return _le32(m.read_register(name)) if name else "xxxxxxxx"
        if cmd == "P":
            num, value = text[1:].split("=")
            name = regnum_name(int(num, 16))
            if name is None:
                return "E01"
            m.write_register(name, int.from_bytes(bytes.fromhex(value), "little"))
            return "OK"
        if cmd == "m":
            addr, length = (int(x, 16) for x in text[1:].split(","))
            return m.read_memory(addr, length).hex()
        if cmd == "M":
            head, data = text[1:].split(":", 1)
            addr, _length = (int(x, 16) for x in head.split(","))
            m.write_memory(addr, bytes.fromhex(data))
            return "OK"
        if cmd == "X":
            head, data = raw[1:].split(b":", 1)
            addr, _length = (int(x, 16) for x in head.decode().split(","))
            if data:
                m.write_memory(addr, data)
            return "OK"
        if cmd in ("c", "C"):
            # C sig[;addr]: gdb resumes with the signal it stopped for (SIGSEGV after a trap loop). A bare core has
            # no signals to deliver, so the signal is dropped, as OpenOCD does; the address is honoured.
            address = text[1:] if cmd == "c" else text[1:].partition(";")[2]
            if address:
                m.write_register("pc", int(address, 16))
            self._resume()
            return None
        if cmd in ("s", "S"):
            address = text[1:] if cmd == "s" else text[1:].partition(";")[2]
            if address:
                m.write_register("pc", int(address, 16))
            m.step()
            return f"T{SIGTRAP:02x}thread:1;"
        if cmd in ("Z", "z") and text[1:2] in ("0", "1"):
            _kind, addr, _size = text[1:].split(",")
            bps = set(m.breakpoints)
            (bps.add if cmd == "Z" else bps.discard)(int(addr, 16))
            m.set_breakpoints(bps)
            return "OK"
        if cmd == "D":
            m.set_breakpoints(set())
            self.send("OK")
            self.done = True
            return None
        if cmd == "k":
            self.done = True
            self.server._stop = True
            return None
        return ""   # not supported: the empty reply, as the protocol asks

    def _resume(self) -> None:
        # Step off a breakpoint we are sitting on before running freely, as a probe would.
        self.running = True
        self.idle = False
        self.m.clear_halt_request()
        if self.server.clock is not None:
            self.server.clock.start(self.m.cycles)
        if self.m.pc in self.m.breakpoints:
            self.m.step()
            if self.m.pc in self.m.breakpoints:
                self._stopped(SIGTRAP)

    def _monitor(self, command: str) -> str:
        m = self.m
        if command in ("", "help"):
            text = f"{MODEL_NOTE}. monitor commands: stats (ground truth per function), stats-json (the same as JSON), uart (output so far), clock (pacing)\n"
        elif command == "stats":
            from .report import format_function_table
            text = format_function_table(m)
        elif command == "uart":
            text = m.uart.text()
        elif command == "stats-json":
            import json

            from .report import stats_json
            text = json.dumps(stats_json(m)) + "\n"
        elif command == "clock":
            clock = self.server.clock
            text = (f"{clock.stats()}\n" if clock is not None else "unpaced\n") + f"cycles {m.cycles}\n"
        else:
            text = f"unknown monitor command {command!r}; try `monitor help`\n"
        return text.encode().hex()


def serve(firmware: str, port: int, machine_kwargs: dict | None = None, announce=sys.stdout,
          clock_hz: float | None = None) -> None:
    """Open the twin on `firmware` and serve it until killed; prints the port it listens on."""
    machine = Machine(firmware, **(machine_kwargs or {}))
    server = GdbServer(machine, port, clock_hz=clock_hz)
    pace = f"paced to {clock_hz:g} simulated cycles/s" if clock_hz else "unpaced"
    print(f"{MODEL_NOTE}: GDB server for {firmware} on 127.0.0.1:{server.port} ({pace})", file=announce, flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
