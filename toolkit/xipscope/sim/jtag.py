"""The twin's JTAG face: a remote_bitbang server (OpenOCD's protocol) with a TAP holding a RISC-V DTM (a model).

OpenOCD (`adapter driver remote_bitbang`) sends one ASCII byte per pin change: '0'..'7' set TCK/TMS/TDI
(4*tck + 2*tms + tdi), 'R' asks for TDO ('0'/'1'), 'r'..'u' set TRST/SRST, 'B'/'b' blink, 'Q' quit. The TAP follows
IEEE 1149.1 on each rising TCK edge; its instructions are the RISC-V debug spec 0.13.2 DTM's: IDCODE (1), dtmcs (0x10),
dmi (0x11), BYPASS (0x1f), IR length 5. DMI accesses go to debug_module.DebugModule and complete at once (op 0).

RP2350 itself offers SWD only; this JTAG path exists so that Debian's stock OpenOCD 0.12 can drive the same Debug
Module the board has (reached there through the APB-AP at 0xa000). While the hart runs, the server simulates it in
slices and looks at the socket between slices, as the GDB server does.

For the probe model (probe_model.py) the TAP counts what a probe would spend (`counts`, a ProbeCounts): wire bits are
TCK rising edges; round trips are the TDO reads OpenOCD waits for. OpenOCD's bitbang driver (src/jtag/drivers/
bitbang.c, bitbang_scan) queues an 'R' per captured bit and collects them all when the scan ends, blocking on the
socket then (remote_bitbang_read_sample): one wait per scan that captures TDO, counted as the shift state is left.
An 'R' outside a shift state (OpenOCD sends none) counts as a wait of its own. Transfers are DMI accesses.
"""

from __future__ import annotations

import select
import socket
import sys

from ..probe_model import ProbeCounts
from ..rsp.server import Listener
from . import MODEL_NOTE
from .debug_module import DebugModule
from .hazard3 import Machine
from .runner import Runner

IDCODE = 0x10000E21   # the model's own (version 1, part 0, JEDEC-style id 0x710 | 1); OpenOCD is told to expect it
IR_LENGTH = 5
IR_IDCODE, IR_DTMCS, IR_DMI, IR_BYPASS = 0x01, 0x10, 0x11, 0x1F
DMI_ABITS = 7
DMI_LENGTH = DMI_ABITS + 34
DTMCS_IDLE = 1        # Run-Test/Idle cycles OpenOCD should add after a DMI access (hint)
SLICE_SECONDS = 0.002  # host time between looks at the socket while the hart runs: a halt request waits that long
IDLE_POLL_S = 0.05

# TAP states and their successors for TMS = 0 / 1.
(TLR, RTI, SEL_DR, CAP_DR, SH_DR, EX1_DR, PAU_DR, EX2_DR, UPD_DR,
 SEL_IR, CAP_IR, SH_IR, EX1_IR, PAU_IR, EX2_IR, UPD_IR) = range(16)
NEXT_STATE = (
    (RTI, TLR), (RTI, SEL_DR), (CAP_DR, SEL_IR), (SH_DR, EX1_DR), (SH_DR, EX1_DR), (PAU_DR, UPD_DR),
    (PAU_DR, EX2_DR), (SH_DR, UPD_DR), (RTI, SEL_DR),
    (CAP_IR, TLR), (SH_IR, EX1_IR), (SH_IR, EX1_IR), (PAU_IR, UPD_IR), (PAU_IR, EX2_IR), (SH_IR, UPD_IR),
    (RTI, SEL_DR),
)


class Tap:
    """One TAP with the RISC-V DTM behind it. `feed(bytes)` takes remote_bitbang commands and returns TDO replies."""

    def __init__(self, dm: DebugModule, counts: ProbeCounts | None = None):
        self.dm = dm
        self.counts = counts if counts is not None else ProbeCounts()
        self._captured = 0        # TDO reads answered in the current shift state (OpenOCD collects them at its end)
        self.state = TLR
        self.ir = IR_IDCODE
        self.ir_shift = 0
        self.dr = 0
        self.dr_length = 32
        self.tck = 0
        self.quit = False
        self.dmi_address = 0
        self.dmi_data = 0

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        state = self.state
        tck = self.tck
        counts = self.counts
        for byte in data:
            if 48 <= byte <= 55:                       # '0'..'7': set pins
                bits = byte - 48
                new_tck = bits >> 2
                if new_tck and not tck:
                    counts.wire_bits += 1
                    tms = (bits >> 1) & 1
                    if tms and self._captured and (state == SH_DR or state == SH_IR):
                        counts.round_trips += 1        # the scan ends: OpenOCD now waits for its TDO bits
                        self._captured = 0
                    if state == SH_DR:
                        self.dr = (self.dr >> 1) | ((bits & 1) << (self.dr_length - 1))
                    elif state == SH_IR:
                        self.ir_shift = (self.ir_shift >> 1) | ((bits & 1) << (IR_LENGTH - 1))
                    elif state == CAP_DR:
                        self._capture_dr()
                    elif state == CAP_IR:
                        self.ir_shift = 0b00001   # IEEE 1149.1: the two low bits capture 01
                    state = NEXT_STATE[state][tms]
                    if state == UPD_DR:
                        self._update_dr()
                    elif state == UPD_IR:
                        self.ir = self.ir_shift
                    elif state == TLR:
                        self.ir = IR_IDCODE
                tck = new_tck
            elif byte == 82:                           # 'R': TDO is the low bit of the register being shifted
                if state == SH_DR:
                    out.append(48 + (self.dr & 1))
                    self._captured += 1
                elif state == SH_IR:
                    out.append(48 + (self.ir_shift & 1))
                    self._captured += 1
                else:
                    out.append(48)
                    counts.round_trips += 1
            elif byte == 81:                           # 'Q'
                self.quit = True
                break
            # 'B'/'b' (LED), 'r'..'u' (TRST/SRST) and line breaks need nothing from the model.
        self.state = state
        self.tck = tck
        return bytes(out)

    def _capture_dr(self) -> None:
        ir = self.ir
        if ir == IR_IDCODE:
            self.dr, self.dr_length = IDCODE, 32
        elif ir == IR_DTMCS:
            self.dr, self.dr_length = (DTMCS_IDLE << 12) | (DMI_ABITS << 4) | 1, 32   # version 1 = spec 0.13
        elif ir == IR_DMI:
            # The previous access always completed (op 0): address and data of its result.
            self.dr = (self.dmi_address << 34) | (self.dmi_data << 2)
            self.dr_length = DMI_LENGTH
        else:
            self.dr, self.dr_length = 0, 1             # BYPASS and every unknown instruction

    def _update_dr(self) -> None:
        if self.ir != IR_DMI:
            return                                     # dtmcs writes (dmireset/dmihardreset): nothing is ever stuck
        op = self.dr & 3
        data = (self.dr >> 2) & 0xFFFFFFFF
        address = (self.dr >> 34) & ((1 << DMI_ABITS) - 1)
        if op:
            self.counts.transfers += 1
        if op == 1:
            self.dmi_data = self.dm.read(address)
        elif op == 2:
            self.dm.write(address, data)
        if op:
            self.dmi_address = address


class JtagServer:
    """Serve the twin's TAP over remote_bitbang on 127.0.0.1:port (0 picks a free port; see `.port`)."""

    def __init__(self, machine: Machine, port: int = 0, halted: bool = False, boot_arch: str = "riscv",
                 clock_hz: float | None = None):
        """clock_hz: pace the running hart to that many simulated cycles per second of running wall time (runner.py,
        as the GDB server's --clock-hz), so what a sampler sees between its samples is the twin's time, not the host's
        speed; None: as fast as the host goes."""
        self.machine = machine
        # busy_accesses=0: OpenOCD paces a busy DM with Run-Test/Idle cycles, which this TAP does not count as time;
        # RP2350 has no JTAG, so abstractcs.busy is modelled on the DAP face (dap.py) only.
        self.dm = DebugModule(machine, halted=halted, boot_arch=boot_arch, busy_accesses=0)
        self._listener = Listener(port, "--jtag-port", f"{MODEL_NOTE}: ")
        self.port = self._listener.port
        # Slices sized by host time (runner.py): the socket is looked at between them.
        self.runner = Runner(self.dm, machine=machine, budget=5_000, slice_seconds=SLICE_SECONDS)
        self.runner.pace(clock_hz)
        self._anchored = False           # paced: the clock starts at the first slice after a halt (halted time
        #                                  is not simulated time)
        self.counts = ProbeCounts()      # probe work over every session (the probe model's input)

    def _run_slice(self) -> None:
        """One slice of the running hart (about SLICE_SECONDS of host time; paced, the cycles due)."""
        if not self._anchored:
            self.runner.started()
            self._anchored = True
        self.runner.run_slice()

    def _wait(self) -> float:
        """Seconds to look at the socket before the next slice: none while a slice is due, else until one is."""
        return self.runner.due_in() if self.dm.needs_simulation else IDLE_POLL_S

    def close(self) -> None:
        self._listener.close()

    def serve_forever(self) -> None:
        """Accept OpenOCD sessions one after another; the hart runs between them too (a board does)."""
        self._listener.serve(self._session, idle=self._run_slice, idle_wait=self._wait)

    def _session(self, conn: socket.socket) -> None:
        tap = Tap(self.dm, self.counts)
        dm = self.dm
        while not tap.quit and not self._listener.closed:
            ready, _, _ = select.select([conn], [], [], self._wait())
            if not ready:
                if dm.needs_simulation or dm.halt_request:
                    self._run_slice()
                continue
            data = conn.recv(65536)
            if not data:
                return
            reply = tap.feed(data)
            if dm.halted:
                self._anchored = False
            if reply:
                conn.sendall(reply)


def openocd_args(jtag_port: int, gdb_port: int = 3333, tcl_port: int = 6666) -> list[str]:
    """The command line that connects Debian's stock OpenOCD 0.12 to the twin's JTAG face (no config file needed)."""
    commands = ["adapter driver remote_bitbang", "remote_bitbang host 127.0.0.1", f"remote_bitbang port {jtag_port}",
                "transport select jtag", f"jtag newtap rp2350 riscv -irlen {IR_LENGTH} -expected-id {IDCODE:#010x}",
                "target create rp2350.rv0 riscv -chain-position rp2350.riscv",
                f"gdb_port {gdb_port}", f"tcl_port {tcl_port}", "telnet_port disabled"]
    args = ["openocd"]
    for c in commands:
        args += ["-c", c]
    return args


def serve(firmware: str, port: int, machine_kwargs: dict | None = None, announce=sys.stdout,
          halted: bool = False, boot_arch: str = "riscv", clock_hz: float | None = None) -> None:
    """Open the twin on `firmware` and serve its TAP until killed; prints the port and an OpenOCD command line."""
    import shlex

    machine = Machine(firmware, **(machine_kwargs or {}))
    server = JtagServer(machine, port, halted=halted, boot_arch=boot_arch, clock_hz=clock_hz)
    print(f"{MODEL_NOTE}: remote_bitbang JTAG (RISC-V DTM, IDCODE {IDCODE:#010x}) for {firmware} "
          f"on 127.0.0.1:{server.port}; the hart is "
          f"{'unavailable (booted Arm)' if boot_arch == 'arm' else 'halted at the entry' if halted else 'running'}",
          file=announce, flush=True)
    print("connect with: " + shlex.join(openocd_args(server.port)), file=announce, flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
