"""A GDB remote protocol server in front of the RP2350 twin (a model), so gdb-multiarch and rsp:// both connect.

All-stop, one core, one client at a time, bound to 127.0.0.1. While the core runs, the server simulates it in slices
and looks at the socket between slices: an interrupt stops it, and requests (e.g. `m` for memory) are answered at a
slice boundary, so a read while running is consistent and the run it sees is reproducible.
Paced (--clock-hz, or `monitor pace HZ`), a client may schedule the next halt in the twin's own time (`monitor
halt-after SECONDS`, announced as the qSupported feature HALT_AFTER_FEATURE): the run the next `c` starts stops at
that many seconds of simulated running time after it, whenever the ^C arrives, so where a sampler's samples land
does not depend on how loaded the host is (SimTarget.halt_after, in-process, does the same).
The model's exact counts (truth_tables.stats_json, every function) are a qXfer object, TRUTH_OBJECT, read while
halted in parts as long as a client's packets allow, so a profile through this server holds the same truth as one
in-process (rsp.py RspTarget.ground_truth).
The listener, framing, acks and the q-packets every server answers alike are rsp/server.py's (shared with `serve`).
"""

from __future__ import annotations

import sys
import time

from ..chip import riscv as rv
from ..rsp.description import CSR_REGNUM_BASE  # OpenOCD's numbering: CSR n is 65 + n
from ..rsp.description import riscv_register_layout
from ..rsp.description import target_xml as description_xml
from ..rsp.server import MAX_READ, Listener, RspConnection, hex_field
from . import MODEL_NOTE
from .hazard3 import Machine
from .runner import Runner, StopReason

IDLE_POLL_S = 0.05        # a core parked in wfi: nothing to simulate until the client speaks
SIGINT, SIGTRAP, SIGSEGV = 2, 5, 11
HALT_AFTER_FEATURE = "xipscope.halt-after"   # qSupported: this server takes `monitor halt-after` (rsp.py looks)
TRUTH_OBJECT = "xipscope-truth"   # qXfer:xipscope-truth:read: the model's exact counts as JSON (rsp.py reads it)


def target_xml() -> str:
    """The twin's target description: the GPRs, pc and the CSRs it models, numbered as OpenOCD numbers them."""
    layout = riscv_register_layout([*rv.GPR_NAMES, "pc", *rv.REGISTER_CSRS])
    return description_xml(layout, f"{MODEL_NOTE}: Hazard3 core 0 as xipscope's twin models it")


def regnum_name(n: int) -> str | None:
    if 0 <= n < 32:
        return rv.GPR_NAMES[n]
    if n == 32:
        return "pc"
    name = rv.CSR_NAMES.get(n - CSR_REGNUM_BASE)
    return name if name in rv.REGISTER_CSRS else None


def _le32(value: int) -> str:
    return (value & 0xFFFFFFFF).to_bytes(4, "little").hex()


class GdbServer:
    """Serve one Machine on 127.0.0.1:port (0 picks a free port; see `.port`)."""

    def __init__(self, machine: Machine, port: int = 0, log=None, clock_hz: float | None = None):
        self.machine = machine
        self.log = log
        self.runner = Runner(machine, clock_hz=clock_hz)   # slices of SLICE_INSTRUCTIONS between looks at the socket
        self._listener = Listener(port, "--gdb-port", f"{MODEL_NOTE}: ")
        self.port = self._listener.port
        self._xml = target_xml().encode()

    @property
    def clock(self):
        """The simulated clock the twin is paced to (sim/pacing.py), or None: unpaced."""
        return self.runner.clock

    def close(self) -> None:
        self._listener.close()

    def serve_forever(self) -> None:
        """Accept clients one after another until close() or a `k` packet."""
        self._listener.serve(lambda conn: _Session(self, conn).run())


class _Session:
    """One client of the twin: the run loop that simulates between requests, and the twin's answers to the packets
    rsp/server.py leaves to its backend."""

    features = ("swbreak+", "hwbreak+", HALT_AFTER_FEATURE + "+", f"qXfer:{TRUTH_OBJECT}:read+")

    def __init__(self, server: GdbServer, conn):
        self.server = server
        self.m = server.machine
        self.rsp = RspConnection(conn, self, stamp_arrivals=server.clock is not None, log=server.log)
        self.running = False
        self.idle = False
        self.after_next: float | None = None   # `monitor halt-after`: the running time of the run the next `c` starts
        self.stop_cycle: int | None = None     # the cycle the current run's halt is scheduled at (paced), or None
        self._truth: bytes | None = None       # TRUTH_OBJECT as the read in progress took it

    def run(self) -> None:
        """Simulate between requests: a slice whenever one is due (at once unpaced; paced, once at least a short one
        is due, sim/pacing.py) and no request waits on the socket; halted or idle, wait for the client."""
        rsp, runner = self.rsp, self.server.runner
        while not rsp.done:
            if self.running and not self.idle:
                wait = runner.due_in(self.stop_cycle)    # never past a scheduled halt's cycle
                if rsp.readable(wait):
                    rsp.receive()
                    continue
                if not wait:
                    self._after_slice(runner.run_slice(self.stop_cycle))
            else:
                self._wait_for_client()

    def _after_slice(self, reason: str) -> None:
        """Report why a slice stopped: a breakpoint or a trap loop stops the target; wfi with nothing to wake it
        is idle (the twin stops simulating it)."""
        if reason == StopReason.BREAKPOINT:
            self._stopped(SIGTRAP)
        elif reason == StopReason.TRAP_LOOP:
            self._stopped(SIGSEGV)
        elif reason == StopReason.IDLE:
            self.idle = True

    def _wait_for_client(self) -> None:
        """Halted or idle: nothing to simulate, so wait for the client (polling now and then while idle)."""
        if self.rsp.readable(IDLE_POLL_S if self.running else None):
            self.rsp.receive()

    def interrupt(self, arrived: float) -> None:
        if not self.running:
            return
        if not self.idle:
            # Paced: stop at the simulated cycle of the moment the interrupt arrived (sim/pacing.py), or at the one
            # `monitor halt-after` scheduled.
            runner = self.server.runner
            if self.stop_cycle is not None:
                reason = runner.halt_at(runner.clock.stop_at_cycle(self.stop_cycle))
            else:
                reason = runner.run_to(arrived)
            if reason in (StopReason.BREAKPOINT, StopReason.TRAP_LOOP):
                self._stopped(SIGTRAP if reason == StopReason.BREAKPOINT else SIGSEGV)
                return
        self._stopped(SIGINT)

    def _stopped(self, signal: int) -> None:
        self.running = False
        self.idle = False
        self.rsp.send(f"T{signal:02x}thread:1;")

    # --- packets (rsp/server.py answers the ones every server answers alike) ---
    def description_file(self, annex: str) -> bytes | None:
        return self.server._xml if annex == "target.xml" else None

    def read_object(self, obj: str, annex: str, offset: int) -> bytes | None:
        """TRUTH_OBJECT while halted (a run would change it between parts), taken afresh at offset 0."""
        if obj != TRUTH_OBJECT or annex or self.running:
            return None
        if offset == 0 or self._truth is None:
            import json

            from .truth_tables import stats_json
            self._truth = json.dumps(stats_json(self.m)).encode()
        return self._truth

    def reply(self, text: str):
        m = self.m
        cmd = text[:1]
        if text.startswith("qRcmd,"):
            return self._monitor(bytes.fromhex(text[6:]).decode("utf-8", "replace").strip())
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
            name = regnum_name(hex_field(text[1:]))
            return _le32(m.read_register(name)) if name else "xxxxxxxx"
        if cmd == "P":
            num, value = text[1:].split("=")
            name = regnum_name(hex_field(num))
            if name is None:
                return "E01"
            m.write_register(name, int.from_bytes(bytes.fromhex(value), "little"))
            return "OK"
        if cmd == "m":
            addr, length = text[1:].split(",")
            return m.read_memory(hex_field(addr, 32), min(hex_field(length), MAX_READ)).hex()
        if cmd == "M":
            head, data = text[1:].split(":", 1)
            addr, _length = head.split(",")
            m.write_memory(hex_field(addr, 32), bytes.fromhex(data))
            return "OK"
        if cmd == "X":
            head, data = text[1:].split(":", 1)
            addr, _length = head.split(",")
            if data:
                m.write_memory(hex_field(addr, 32), data.encode("latin-1"))
            return "OK"
        if cmd in ("c", "C"):
            # C sig[;addr]: gdb resumes with the signal it stopped for (SIGSEGV after a trap loop). A bare core has
            # no signals to deliver, so the signal is dropped, as OpenOCD does; the address is honoured.
            address = text[1:] if cmd == "c" else text[1:].partition(";")[2]
            if address:
                m.write_register("pc", hex_field(address, 32))
            self._resume()
            return None
        if cmd in ("s", "S"):
            address = text[1:] if cmd == "s" else text[1:].partition(";")[2]
            if address:
                m.write_register("pc", hex_field(address, 32))
            m.step()
            return f"T{SIGTRAP:02x}thread:1;"
        if cmd in ("Z", "z") and text[1:2] in ("0", "1"):
            _kind, addr, _size = text[1:].split(",")
            bps = set(m.breakpoints)
            (bps.add if cmd == "Z" else bps.discard)(hex_field(addr, 32))
            m.set_breakpoints(bps)
            return "OK"
        if cmd == "D":
            m.set_breakpoints(set())
            return "OK"
        if cmd == "k":
            self.server.close()      # gdb's `kill`: the twin's server ends with its session
            return None
        return ""   # not supported: the empty reply, as the protocol asks

    def _resume(self) -> None:
        # Step off a breakpoint we are sitting on before running freely, as a probe would.
        self.running = True
        self.idle = False
        self.m.clear_halt_request()
        runner, now = self.server.runner, time.perf_counter()
        runner.started(now)
        after, self.after_next = self.after_next, None
        self.stop_cycle = runner.clock.due(now + after) if after is not None and runner.clock is not None else None
        if self.m.pc in self.m.breakpoints:
            self.m.step()
            if self.m.pc in self.m.breakpoints:
                self._stopped(SIGTRAP)

    def _monitor(self, command: str) -> str:
        m = self.m
        words = command.split()
        if command in ("", "help"):
            text = f"{MODEL_NOTE}. monitor commands: stats (ground truth per function), stats-json [N] (the same as JSON; N: a summary, the N hottest functions and latest traps), uart (output so far), clock, clock-json (pacing), pace HZ (halted: pace to HZ, 0 = unpaced), halt-after S (paced: the run the next continue starts halts after S seconds of simulated time)\n"
        elif command == "stats":
            from .truth_tables import format_function_table
            text = format_function_table(m)
        elif command == "uart":
            text = m.uart.text()
        elif words[:1] == ["stats-json"] and (len(words) == 1 or len(words) == 2 and words[1].isdigit()):
            import json

            from .truth_tables import stats_json
            text = json.dumps(stats_json(m, int(words[1]) if len(words) == 2 else None)) + "\n"
        elif command == "clock":
            clock = self.server.clock
            text = (f"{clock.stats()}\n" if clock is not None else "unpaced\n") + f"cycles {m.cycles}\n"
        elif command == "clock-json":
            import json

            clock = self.server.clock
            text = json.dumps(clock.stats() | {"cycles": m.cycles} if clock is not None else None) + "\n"
        elif words[:1] == ["pace"] and len(words) == 2 and not self.running:
            hz = float(words[1])
            self.server.runner.pace(hz if hz > 0 else None)
            text = f"paced to {hz:g} simulated cycles/s\n" if hz > 0 else "unpaced\n"
        elif words[:1] == ["halt-after"] and len(words) == 2:
            if self.server.clock is None:
                text = "error: halt-after needs a paced twin (--clock-hz, or `monitor pace HZ` first)\n"
            else:
                self.after_next = float(words[1])
                text = "OK\n"
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
