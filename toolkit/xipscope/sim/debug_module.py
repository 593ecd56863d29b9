"""A RISC-V Debug Module (debug spec 0.13.2) over the twin's core, as RP2350 has one for its two Hazard3 harts (a model).

What it offers is what rp2350.md "Debug access" lists and Hazard3's DM (hdl/debug/dm/hazard3_dm.v) does, with the
facts in chip/rp2350.py (DM_*): dmcontrol/dmstatus/hartinfo (0x00001bff: no dscratch, data0 also the CSR dmdata0 at
0xbff), abstract commands that reach the 32-bit GPRs only (CSRs and memory go through the program buffer), a 2-word
program buffer with an implicit ebreak, one data register, System Bus Access, the hart array mask and 4
instruction-address triggers. Two harts: hartsel is one bit. A command keeps abstractcs.busy set for
DM_BUSY_ACCESSES further DM accesses, and an access the spec forbids while busy sets cmderr 1 and does nothing.
The faces (jtag.py's DTM, dap.py's APB-AP) turn their scans into `read(address)` / `write(address, value)` here, and
between requests they let hart 0 run with `run_slice()`: it only ever halts at a slice boundary.

Modelling choices: hart 0 is the simulated core (hazard3/). Hart 1 is present and parked (ParkedCore): it runs
nothing the model simulates, halts and resumes on request, and has registers of its own that start at zero.
`boot_arch="arm"` is a chip booted in Arm mode: its RISC-V harts are held in reset, so every hart reads unavailable
and commands end in cmderr 4. System Bus Access finishes at once (sbbusy is never set). The program buffer is
interpreted here (loads, stores, CSR instructions, addi/lui/simple ALU, fence, ebreak), with memory through the
Machine's side-effect-free debugger view; an instruction it does not know, a CSR Hazard3 lacks (dscratch0/1) or an
access the twin does not model is an exception (cmderr 3), as on hardware.
"""

from __future__ import annotations

from ..chip import riscv as rv
from ..chip import rp2350 as rp
from ..errors import TargetError
from .hazard3 import Machine
from .runner import StopReason

# DM register addresses (debug spec 0.13.2, 3.12).
DATA0 = 0x04
DMCONTROL = 0x10
DMSTATUS = 0x11
HARTINFO = 0x12
HALTSUM1 = 0x13
HAWINDOWSEL = 0x14
HAWINDOW = 0x15
ABSTRACTCS = 0x16
COMMAND = 0x17
ABSTRACTAUTO = 0x18
PROGBUF0 = 0x20
SBCS = 0x38
SBADDRESS0 = 0x39
SBDATA0 = 0x3C
HALTSUM0 = 0x40

PROGBUF_SIZE = rp.DM_PROGBUF_SIZE
DATA_COUNT = rp.DM_DATA_COUNT
TRIGGER_COUNT = 4
HARTS = rp.DM_HARTS
ABSTRACTCS_BUSY = 1 << 12

# abstractcs.cmderr values
CMDERR_NONE, CMDERR_BUSY, CMDERR_NOT_SUPPORTED, CMDERR_EXCEPTION, CMDERR_HALT_RESUME = 0, 1, 2, 3, 4
# dcsr.cause values
CAUSE_EBREAK, CAUSE_TRIGGER, CAUSE_HALTREQ, CAUSE_STEP, CAUSE_RESETHALTREQ = 1, 2, 3, 4, 5

# Debug-mode CSRs and the trigger CSRs live in the DM model, not in unicorn. Hazard3 has no dscratch0/1 (0x7b2/0x7b3).
CSR_TSELECT, CSR_TDATA1, CSR_TDATA2, CSR_TINFO = 0x7A0, 0x7A1, 0x7A2, 0x7A4
CSR_DCSR, CSR_DPC, CSR_DSCRATCH0, CSR_DSCRATCH1 = 0x7B0, 0x7B1, 0x7B2, 0x7B3
CSR_DMDATA0 = rp.DM_DATA0_CSR   # Hazard3 maps data0 at this CSR (hartinfo.dataaddr)

DCSR_XDEBUGVER = 4 << 28
DCSR_EBREAKM = 1 << 15
DCSR_STEP = 1 << 2
DCSR_WRITABLE = DCSR_EBREAKM | (1 << 11) | (1 << 10) | (1 << 9) | DCSR_STEP   # ebreakm, stepie, stopcount, stoptime, step

# mcontrol (tdata1 type 2) fields a trigger keeps: type, dmode, action, m, s, u, execute. Loads/stores are not matched
# (RP2350's triggers are instruction-address only), so those bits read back 0 and OpenOCD looks elsewhere. The s bit
# is kept because the twin's misa (unicorn's) claims S-mode, and OpenOCD sets s whenever misa has S.
MCONTROL_TYPE = 2 << 28
MCONTROL_DMODE = 1 << 27
MCONTROL_ACTION_DEBUG = 1 << 12
MCONTROL_M, MCONTROL_S, MCONTROL_U, MCONTROL_EXECUTE = 1 << 6, 1 << 4, 1 << 3, 1 << 2
MCONTROL_WRITABLE = MCONTROL_DMODE | (0xF << 12) | MCONTROL_M | MCONTROL_S | MCONTROL_U | MCONTROL_EXECUTE

_GPR_REGNO = 0x1000
# Accesses the spec forbids while abstractcs.busy (0.13.2 3.12.6): writes to these, reads of data0 and progbuf.
_BUSY_WRITES = {ABSTRACTCS, COMMAND, ABSTRACTAUTO} | set(range(DATA0, DATA0 + DATA_COUNT)) | set(
    range(PROGBUF0, PROGBUF0 + PROGBUF_SIZE))
_BUSY_READS = set(range(DATA0, DATA0 + DATA_COUNT)) | set(range(PROGBUF0, PROGBUF0 + PROGBUF_SIZE))
# ASSUMED: where the parked hart 1's pc reads (the bootrom's core-1 wait loop; its address is not in our sources).
PARKED_PC = rp.ROM_BASE
# CSRs the parked hart shares with hart 0 (the same core design): the identification registers.
_SHARED_CSRS = ("misa", "mvendorid", "marchid", "mimpid")


class ProgramBufferException(Exception):
    """An instruction in the program buffer faulted (or is not one the model executes): cmderr 3."""


class ParkedCore:
    """Hart 1 (a model): present, parked (not simulated), with its own GPRs, pc and M-mode CSRs."""

    def __init__(self, machine: Machine):
        self.machine = machine
        self.reset()

    def reset(self) -> None:
        self.gprs = [0] * 32
        self.pc = PARKED_PC
        self.csrs = {"mhartid": 1}

    def read_register(self, name: str) -> int:
        if name in rv.GPR_INDEX:
            return self.gprs[rv.GPR_INDEX[name]]
        if name == "pc":
            return self.pc
        if name in _SHARED_CSRS:
            return self.machine.read_register(name)
        if name in rv.CSRS:
            return self.csrs.get(name, 0)
        raise TargetError(f"hart 1 (parked, a model): no register {name!r}")

    def write_register(self, name: str, value: int) -> None:
        if name in rv.GPR_INDEX:
            if rv.GPR_INDEX[name]:
                self.gprs[rv.GPR_INDEX[name]] = value & 0xFFFFFFFF
        elif name == "pc":
            self.pc = value & 0xFFFFFFFF
        elif name in rv.CSRS and name not in _SHARED_CSRS and name != "mhartid":
            self.csrs[name] = value & 0xFFFFFFFF
        elif name not in rv.CSRS:
            raise TargetError(f"hart 1 (parked, a model): no register {name!r}")


class Hart:
    """One hart's debug state as the DM sees it; `core` is the Machine (hart 0) or a ParkedCore (hart 1)."""

    def __init__(self, core, halted: bool, parked: bool):
        self.core = core
        self.parked = parked
        self.halted = halted
        self.idle = parked and not halted   # running but parked (wfi, a trap loop, hart 1): not simulated
        self.have_reset = True
        self.resume_ack = False
        self.halt_request = False
        self.reset_halt_request = False
        self.dcsr_cause = CAUSE_RESETHALTREQ if halted else 0
        self.dcsr = DCSR_XDEBUGVER | rv.PRV_M
        self.tselect = 0
        self.tdata1 = [MCONTROL_TYPE] * TRIGGER_COUNT
        self.tdata2 = [0] * TRIGGER_COUNT

    def halt(self, cause: int) -> None:
        self.halted = True
        self.idle = False
        self.dcsr_cause = cause

    def out_of_reset(self) -> None:
        self.halted = False
        self.idle = self.parked
        if self.halt_request or self.reset_halt_request:
            self.halt(CAUSE_HALTREQ if self.halt_request else CAUSE_RESETHALTREQ)


class DebugModule:
    """The Debug Module of the twin's two harts. Not thread-safe: one face drives it from one thread.

    halted: hart 0 starts halted at the entry (default: it runs, as the board runs after reset); boot_arch "arm":
    the chip booted its Arm cores, so the harts are unavailable; busy_accesses: how many DM accesses a command stays
    busy for (chip/rp2350.py DM_BUSY_ACCESSES)."""

    def __init__(self, machine: Machine, halted: bool = False, boot_arch: str = "riscv",
                 busy_accesses: int = rp.DM_BUSY_ACCESSES):
        if boot_arch not in ("riscv", "arm"):
            raise ValueError(f"boot_arch {boot_arch!r}: riscv or arm")
        self.machine = machine
        self.available = boot_arch == "riscv"
        self.busy_accesses = busy_accesses
        self.harts = [Hart(machine, halted, parked=False), Hart(ParkedCore(machine), False, parked=True)]
        self.ndmreset = False
        self.accesses = 0      # DM register reads and writes, whichever face they came through
        self._reset_dm()

    def _reset_dm(self) -> None:
        """dmactive=0: the DM's own registers to reset values; the harts are not touched."""
        self.active = False
        self.hartsel = 0
        self.hasel = False
        self.hawindow = 0
        self.data = [0] * DATA_COUNT
        self.progbuf = [0] * PROGBUF_SIZE
        self.cmderr = 0
        self.busy = 0          # DM accesses the running command stays busy for
        self.command = 0
        self.autoexec_data = 0
        self.autoexec_progbuf = 0
        self.sbcs = 0
        self.sbaddress = 0
        self.sbdata = 0
        for hart in self.harts:
            hart.halt_request = False

    # --- hart 0, the simulated one, as the faces see it -----------------------------------------------------------
    @property
    def halted(self) -> bool:
        return self.harts[0].halted

    @property
    def idle(self) -> bool:
        return self.harts[0].idle

    @property
    def halt_request(self) -> bool:
        return self.harts[0].halt_request

    @property
    def hart(self) -> Hart:
        """The hart hartsel selects: abstract commands and the program buffer act on it."""
        return self.harts[self.hartsel]

    @property
    def cycles(self) -> int:
        """Hart 0's modelled cycles (a paced face runs the DM to a cycle: runner.run_to_cycle)."""
        return self.machine.cycles

    @property
    def instructions(self) -> int:
        return self.machine.instructions

    @property
    def needs_simulation(self) -> bool:
        hart = self.harts[0]
        return self.available and not hart.halted and not hart.idle and not self.ndmreset

    def run_slice(self, budget: int, stop_before_cycle: int | None = None) -> StopReason | None:
        """Let the running hart 0 execute about `budget` instructions (the faces call this while no request waits);
        stop_before_cycle as Machine.run_slice takes it (a paced face running the hart to a cycle)."""
        hart = self.harts[0]
        if not self.available or self.ndmreset:
            return
        if hart.halt_request and not hart.halted:
            hart.halt(CAUSE_HALTREQ)
            return
        if not self.needs_simulation:
            return
        reason = self.machine.run_slice(budget, stop_before_cycle=stop_before_cycle)
        if reason == StopReason.BREAKPOINT:
            hart.halt(CAUSE_TRIGGER)
        elif reason == StopReason.EBREAK:
            hart.halt(CAUSE_EBREAK)
        elif reason in (StopReason.IDLE, StopReason.TRAP_LOOP):
            hart.idle = True
        return reason

    def _resume(self, hart: Hart) -> None:
        hart.resume_ack = True
        if hart.parked:
            # Hart 1 goes back to its wait loop; a step leaves it where it was.
            if hart.dcsr & DCSR_STEP:
                hart.halt(CAUSE_STEP)
            else:
                hart.halted, hart.idle = False, True
            return
        m = self.machine
        if hart.dcsr & DCSR_STEP:
            pc = m.pc
            m.step()
            hart.halt(CAUSE_EBREAK if m.ebreak_halts and m.pc == pc else CAUSE_STEP)
            return
        hart.halted = False
        hart.idle = False
        m.clear_halt_request()
        if m.pc in m.breakpoints:
            # Leave the instruction a trigger stopped on, as the hart does when it resumes from debug mode.
            m.step()
            if m.pc in m.breakpoints:
                hart.halt(CAUSE_TRIGGER)

    def _selected(self) -> list[Hart]:
        """The harts a run-control request acts on: hartsel's, plus the hart array mask's when hasel is set."""
        return [h for i, h in enumerate(self.harts) if i == self.hartsel or (self.hasel and self.hawindow >> i & 1)]

    def _available(self, hart: Hart) -> bool:
        return self.available and not self.ndmreset

    # --- DM registers ------------------------------------------------------------------------------------------------
    def read(self, address: int) -> int:
        self.accesses += 1
        busy = self.busy > 0
        if busy:
            self.busy -= 1
            if address in _BUSY_READS and self.active:
                self.cmderr = self.cmderr or CMDERR_BUSY
                return self.data[address - DATA0] if address < PROGBUF0 else self.progbuf[address - PROGBUF0]
        if DATA0 <= address < DATA0 + DATA_COUNT:
            value = self.data[address - DATA0]
            self._autoexec(self.autoexec_data >> (address - DATA0) & 1)
            return value
        if PROGBUF0 <= address < PROGBUF0 + PROGBUF_SIZE:
            value = self.progbuf[address - PROGBUF0]
            self._autoexec(self.autoexec_progbuf >> (address - PROGBUF0) & 1)
            return value
        if address == DMCONTROL:
            return (int(self.hasel) << 26) | (self.hartsel << 16) | (int(self.ndmreset) << 1) | int(self.active)
        if address == DMSTATUS:
            return self._dmstatus()
        if not self.active:
            return 0
        if address == HARTINFO:
            return rp.DM_HARTINFO
        if address == HALTSUM0:
            return sum(1 << i for i, h in enumerate(self.harts) if h.halted and self._available(h))
        if address == HALTSUM1:
            return int(any(h.halted and self._available(h) for h in self.harts))
        if address == HAWINDOWSEL:
            return 0
        if address == HAWINDOW:
            return self.hawindow
        if address == ABSTRACTCS:
            return (PROGBUF_SIZE << 24) | (ABSTRACTCS_BUSY if busy else 0) | (self.cmderr << 8) | DATA_COUNT
        if address == COMMAND:
            return 0
        if address == ABSTRACTAUTO:
            return (self.autoexec_progbuf << 16) | self.autoexec_data
        if address == SBCS:
            # sbversion 1, sbasize 32, 8/16/32-bit accesses.
            return (1 << 29) | self.sbcs | (32 << 5) | 0b111
        if address == SBADDRESS0:
            return self.sbaddress
        if address == SBDATA0:
            value = self.sbdata
            if self.sbcs & (1 << 15) and not self._sb_error():   # sbreadondata
                self._sb_read()
            return value
        return 0

    def write(self, address: int, value: int) -> None:
        self.accesses += 1
        value &= 0xFFFFFFFF
        if self.busy > 0:
            self.busy -= 1
            if address in _BUSY_WRITES and self.active:
                self.cmderr = self.cmderr or CMDERR_BUSY
                return
        if address == DMCONTROL:
            self._write_dmcontrol(value)
            return
        if not self.active:
            return
        if DATA0 <= address < DATA0 + DATA_COUNT:
            self.data[address - DATA0] = value
            self._autoexec(self.autoexec_data >> (address - DATA0) & 1)
        elif PROGBUF0 <= address < PROGBUF0 + PROGBUF_SIZE:
            self.progbuf[address - PROGBUF0] = value
            self._autoexec(self.autoexec_progbuf >> (address - PROGBUF0) & 1)
        elif address == HAWINDOW:
            self.hawindow = value & ((1 << HARTS) - 1)
        elif address == ABSTRACTCS:
            self.cmderr &= ~(value >> 8) & 7   # W1C
        elif address == COMMAND:
            if self.cmderr == CMDERR_NONE:
                self.command = value
                self._execute_command()
        elif address == ABSTRACTAUTO:
            self.autoexec_data = value & ((1 << DATA_COUNT) - 1)
            self.autoexec_progbuf = (value >> 16) & ((1 << PROGBUF_SIZE) - 1)
        elif address == SBCS:
            keep = (1 << 20) | (7 << 17) | (1 << 16) | (1 << 15)   # readonaddr, access, autoincrement, readondata
            errors = self.sbcs & ((1 << 22) | (7 << 12))
            errors &= ~(value & ((1 << 22) | (7 << 12)))            # sbbusyerror and sberror are W1C
            self.sbcs = (value & keep) | errors
        elif address == SBADDRESS0:
            self.sbaddress = value
            if self.sbcs & (1 << 20) and not self._sb_error():     # sbreadonaddr
                self._sb_read()
        elif address == SBDATA0:
            self.sbdata = value
            if not self._sb_error():
                self._sb_write()

    def _dmstatus(self) -> int:
        value = 2 | (1 << 7) | (1 << 5) | (1 << 22)   # version 0.13, authenticated, hasresethaltreq, impebreak
        if not self.active:
            return value
        harts = self._selected()

        def all_any(predicate, shift: int) -> int:
            hits = [predicate(h) for h in harts]
            return (int(all(hits)) << (shift + 1)) | (int(any(hits)) << shift)

        value |= all_any(lambda h: h.halted and self._available(h), 8)
        value |= all_any(lambda h: not h.halted and self._available(h), 10)
        value |= all_any(lambda h: not self._available(h), 12)
        value |= all_any(lambda h: h.resume_ack, 16)
        value |= all_any(lambda h: h.have_reset, 18)
        return value

    def _write_dmcontrol(self, value: int) -> None:
        if not value & 1:
            self._reset_dm()
            return
        self.active = True
        self.hartsel = value >> 16 & (HARTS - 1)      # hartsello is one bit wide: two harts
        self.hasel = bool(value >> 26 & 1)
        selected = self._selected()
        halt = bool(value >> 31 & 1)
        for hart in selected:
            if value >> 28 & 1:
                hart.have_reset = False
            if value >> 3 & 1:
                hart.reset_halt_request = True
            if value >> 2 & 1:
                hart.reset_halt_request = False
            hart.halt_request = halt
        ndmreset = bool(value >> 1 & 1)
        if ndmreset and not self.ndmreset:
            self.machine.reset()
            self.harts[1].core.reset()
            for hart in self.harts:
                hart.have_reset = True
        if self.ndmreset and not ndmreset and self.available:
            for hart in self.harts:     # out of reset: halt at the first instruction if asked to, otherwise run
                hart.out_of_reset()
        self.ndmreset = ndmreset
        if not self.available or self.ndmreset:
            return
        for hart in selected:
            if hart.halt_request and not hart.halted:
                hart.halt(CAUSE_HALTREQ)
            elif value >> 30 & 1 and not halt:
                hart.resume_ack = False
                if hart.halted:
                    self._resume(hart)
                else:
                    hart.resume_ack = True

    # --- abstract commands -------------------------------------------------------------------------------------------
    def _autoexec(self, enabled: int) -> None:
        if enabled and self.cmderr == CMDERR_NONE:
            self._execute_command()

    def _execute_command(self) -> None:
        """Access Register on the selected hart, as Hazard3's DM decodes it: the hart must be halted and available
        (else cmderr 4), then 32-bit GPRs only and no aarpostincrement (else cmderr 2)."""
        command = self.command
        size = (command >> 20) & 7
        postexec = command >> 18 & 1
        transfer = command >> 17 & 1
        write = command >> 16 & 1
        regno = command & 0xFFFF
        hart = self.hart
        if not hart.halted or not self._available(hart):
            self.cmderr = CMDERR_HALT_RESUME
            return
        if (command >> 24 != 0 or command >> 19 & 1
                or transfer and (size != 2 or not _GPR_REGNO <= regno < _GPR_REGNO + 32)):
            self.cmderr = CMDERR_NOT_SUPPORTED   # GPRs only, 32 bits (CSRs go through the program buffer)
            return
        self.busy = self.busy_accesses
        if transfer:
            if write:
                self._set_x(regno - _GPR_REGNO, self.data[0])
            else:
                self.data[0] = self._x(regno - _GPR_REGNO)
        if postexec:
            try:
                self._execute_progbuf()
            except ProgramBufferException:
                self.cmderr = CMDERR_EXCEPTION

    # --- the program buffer ------------------------------------------------------------------------------------------
    def _execute_progbuf(self) -> None:
        for insn in self.progbuf + [rv.INSN_EBREAK]:   # impebreak: an ebreak follows the last word
            if self._execute_instruction(insn):
                return

    def _execute_instruction(self, insn: int) -> bool:
        """Run one program-buffer instruction; True at ebreak."""
        if insn == rv.INSN_EBREAK or insn & 0xFFFF == rv.INSN_C_EBREAK:
            return True
        if insn & 0xFFFF == 0x0001:   # c.nop
            return False
        opcode = insn & 0x7F
        rd = (insn >> 7) & 31
        funct3 = (insn >> 12) & 7
        rs1 = (insn >> 15) & 31
        rs2 = (insn >> 20) & 31
        imm_i = _sext(insn >> 20, 12)
        if opcode == 0x03:                                   # loads
            size, signed = {0: (1, True), 1: (2, True), 2: (4, False), 4: (1, False), 5: (2, False)}.get(
                funct3, (0, False))
            if not size:
                raise ProgramBufferException(f"load funct3 {funct3}")
            value = int.from_bytes(self._memory_read((self._x(rs1) + imm_i) & 0xFFFFFFFF, size), "little")
            self._set_x(rd, _sext(value, 8 * size) if signed else value)
        elif opcode == 0x23:                                 # stores
            if funct3 > 2:
                raise ProgramBufferException(f"store funct3 {funct3}")
            size = 1 << funct3
            imm_s = _sext(((insn >> 25) << 5) | rd, 12)
            address = (self._x(rs1) + imm_s) & 0xFFFFFFFF
            self._memory_write(address, (self._x(rs2) & ((1 << 8 * size) - 1)).to_bytes(size, "little"))
        elif opcode == 0x13:                                 # OP-IMM
            self._set_x(rd, _alu_imm(funct3, insn, self._x(rs1), imm_i))
        elif opcode == 0x37:                                 # lui
            self._set_x(rd, insn & 0xFFFFF000)
        elif opcode == 0x0F:                                 # fence, fence.i: nothing is buffered in the twin
            pass
        elif opcode == 0x73 and funct3 in (1, 2, 3, 5, 6, 7):
            self._csr_instruction(insn)
        else:
            raise ProgramBufferException(f"instruction {insn:#010x}")
        return False

    def _x(self, i: int) -> int:
        return self.hart.core.read_register(rv.GPR_NAMES[i]) if i else 0

    def _set_x(self, i: int, value: int) -> None:
        if i:
            self.hart.core.write_register(rv.GPR_NAMES[i], value & 0xFFFFFFFF)

    def _memory_read(self, address: int, size: int) -> bytes:
        try:
            return self.machine.read_memory(address, size)
        except TargetError as e:
            raise ProgramBufferException(str(e)) from None

    def _memory_write(self, address: int, data: bytes) -> None:
        try:
            self.machine.write_memory(address, data)
        except TargetError as e:
            raise ProgramBufferException(str(e)) from None

    def _csr_instruction(self, insn: int) -> None:
        op, rd, rs, csr = rv.decode_csr(insn)
        source = rs if op.endswith("i") else self._x(rs)
        writes = op in ("csrrw", "csrrwi") or rs != 0
        old = self.read_csr(csr)
        if writes:
            new = source if op in ("csrrw", "csrrwi") else (old | source if op in ("csrrs", "csrrsi")
                                                          else old & ~source)
            self.write_csr(csr, new & 0xFFFFFFFF)
        self._set_x(rd, old)

    def read_csr(self, csr: int) -> int:
        """A CSR of the selected hart, as the program buffer reads it."""
        hart = self.hart
        if csr == CSR_DCSR:
            return hart.dcsr | (hart.dcsr_cause << 6)
        if csr == CSR_DPC:
            return hart.core.pc
        if csr == CSR_DMDATA0:
            return self.data[0]
        if csr == CSR_TSELECT:
            return hart.tselect
        if csr == CSR_TDATA1:
            return hart.tdata1[hart.tselect]
        if csr == CSR_TDATA2:
            return hart.tdata2[hart.tselect]
        if csr == CSR_TINFO:
            return 1 << 2   # type 2 (mcontrol) only
        return self._core_csr(csr, None)

    def write_csr(self, csr: int, value: int) -> None:
        hart = self.hart
        if csr == CSR_DCSR:
            hart.dcsr = (hart.dcsr & ~DCSR_WRITABLE) | (value & DCSR_WRITABLE)
            if not hart.parked:
                self.machine.ebreak_halts = bool(hart.dcsr & DCSR_EBREAKM)
        elif csr == CSR_DPC:
            hart.core.write_register("pc", value & ~1)
        elif csr == CSR_DMDATA0:
            self.data[0] = value
        elif csr == CSR_TSELECT:
            # WARL: a select past the last trigger keeps the old value, which is how debuggers count triggers.
            if value < TRIGGER_COUNT:
                hart.tselect = value
        elif csr == CSR_TDATA1:
            hart.tdata1[hart.tselect] = MCONTROL_TYPE | (value & MCONTROL_WRITABLE)
            self._apply_triggers()
        elif csr == CSR_TDATA2:
            hart.tdata2[hart.tselect] = value
            self._apply_triggers()
        elif csr == CSR_TINFO:
            pass
        else:
            self._core_csr(csr, value)

    def _core_csr(self, csr: int, value: int | None) -> int:
        """Read (value None) or write a CSR the core holds; one Hazard3 lacks (dscratch0/1 among them) is an illegal
        instruction, i.e. cmderr 3."""
        name = rv.CSR_NAMES.get(csr)
        try:
            if name is None or csr in (CSR_DSCRATCH0, CSR_DSCRATCH1):
                raise TargetError(f"CSR {csr:#x} is not implemented (an illegal instruction on Hazard3)")
            if value is None:
                return self.hart.core.read_register(name)
            self.hart.core.write_register(name, value)
            return value
        except TargetError as e:
            raise ProgramBufferException(f"csr {'read' if value is None else 'write'}: {e}") from None

    def _apply_triggers(self) -> None:
        """Hart 0's execute triggers that enter debug mode become the Machine's breakpoints (hart 1 runs nothing)."""
        hart = self.harts[0]
        addresses = {hart.tdata2[i] for i in range(TRIGGER_COUNT)
                     if hart.tdata1[i] & MCONTROL_EXECUTE and hart.tdata1[i] & MCONTROL_M
                     and (hart.tdata1[i] >> 12) & 0xF == 1}
        self.machine.set_breakpoints(addresses)

    # --- System Bus Access ---------------------------------------------------------------------------------------------
    def _sb_error(self) -> bool:
        return bool(self.sbcs & ((1 << 22) | (7 << 12)))

    def _sb_size(self) -> int | None:
        access = (self.sbcs >> 17) & 7
        if access > 2:
            self.sbcs |= 4 << 12   # sberror 4: size not supported
            return None
        return 1 << access

    def _sb_read(self) -> None:
        size = self._sb_size()
        if size is None:
            return
        try:
            self.sbdata = int.from_bytes(self.machine.read_memory(self.sbaddress, size), "little")
        except TargetError:
            self.sbcs |= 2 << 12   # sberror 2: bad address
            return
        self._sb_increment(size)

    def _sb_write(self) -> None:
        size = self._sb_size()
        if size is None:
            return
        try:
            self.machine.write_memory(self.sbaddress, (self.sbdata & ((1 << 8 * size) - 1)).to_bytes(size, "little"))
        except TargetError:
            self.sbcs |= 2 << 12
            return
        self._sb_increment(size)

    def _sb_increment(self, size: int) -> None:
        if self.sbcs & (1 << 16):
            self.sbaddress = (self.sbaddress + size) & 0xFFFFFFFF


def _sext(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _alu_imm(funct3: int, insn: int, a: int, imm: int) -> int:
    shamt = (insn >> 20) & 31
    if funct3 == 0:
        return a + imm
    if funct3 == 4:
        return a ^ imm
    if funct3 == 6:
        return a | imm
    if funct3 == 7:
        return a & imm
    if funct3 == 1:
        return a << shamt
    if funct3 == 5:
        return (_sext(a, 32) >> shamt) if insn >> 30 & 1 else (a & 0xFFFFFFFF) >> shamt
    if funct3 == 2:
        return int(_sext(a, 32) < imm)
    return int((a & 0xFFFFFFFF) < (imm & 0xFFFFFFFF))
