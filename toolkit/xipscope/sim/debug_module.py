"""A RISC-V Debug Module (debug spec 0.13.2) over the twin's core, as RP2350 has one for its Hazard3 harts (a model).

What it offers is what rp2350.md "Debug access" lists: dmcontrol/dmstatus/hartinfo, abstract commands that reach the
GPRs only (CSRs and memory go through the program buffer), a 2-word program buffer with an implicit ebreak, one data
register, System Bus Access, hart array mask bits and 4 instruction-address triggers. The faces (jtag.py's DTM, a DAP
later) turn their scans into `read(address)` / `write(address, value)` here, and between requests they let the hart run
with `run_slice()`: the core only ever halts at a slice boundary, so a halt request is served at the next one.

Modelling choices: one hart (hart 0; hartsel has no bits); every command finishes at once (abstractcs.busy and
sbcs.sbbusy are never set); the program buffer is interpreted here (loads, stores, CSR instructions, addi/lui/simple
ALU, fence, ebreak), with memory through the Machine's side-effect-free debugger view; an instruction it does not know,
or an access the twin does not model, is an exception (cmderr 3), as on hardware.
"""

from __future__ import annotations

from ..chip import riscv as rv
from ..errors import TargetError
from .machine import Machine

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

PROGBUF_SIZE = 2
DATA_COUNT = 1
TRIGGER_COUNT = 4

# abstractcs.cmderr values
CMDERR_NONE, CMDERR_BUSY, CMDERR_NOT_SUPPORTED, CMDERR_EXCEPTION, CMDERR_HALT_RESUME = 0, 1, 2, 3, 4
# dcsr.cause values
CAUSE_EBREAK, CAUSE_TRIGGER, CAUSE_HALTREQ, CAUSE_STEP, CAUSE_RESETHALTREQ = 1, 2, 3, 4, 5

# Debug-mode CSRs and the trigger CSRs live in the DM model, not in unicorn.
CSR_TSELECT, CSR_TDATA1, CSR_TDATA2, CSR_TINFO = 0x7A0, 0x7A1, 0x7A2, 0x7A4
CSR_DCSR, CSR_DPC, CSR_DSCRATCH0, CSR_DSCRATCH1 = 0x7B0, 0x7B1, 0x7B2, 0x7B3
CSR_DMDATA0 = 0xBFF   # Hazard3 maps data0 at this CSR (hartinfo.dataaccess)

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


class ProgramBufferException(Exception):
    """An instruction in the program buffer faulted (or is not one the model executes): cmderr 3."""


class DebugModule:
    """The Debug Module of one hart of the twin. Not thread-safe: one face drives it from one thread."""

    def __init__(self, machine: Machine, halted: bool = False):
        self.machine = machine
        self.halted = halted         # by default the twin runs from its entry, as the board runs after reset
        self.idle = False            # running but parked (wfi, or spinning in a faulting trap handler): not simulated
        self.have_reset = True
        self.resume_ack = False
        self.halt_request = False
        self.reset_halt_request = False
        self.ndmreset = False
        self.dcsr_cause = CAUSE_RESETHALTREQ if halted else 0
        self.dcsr = DCSR_XDEBUGVER | rv.PRV_M
        self.dscratch = [0, 0]
        self.tselect = 0
        self.tdata1 = [MCONTROL_TYPE] * TRIGGER_COUNT
        self.tdata2 = [0] * TRIGGER_COUNT
        self.accesses = 0      # DM register reads and writes, whichever face they came through
        self._reset_dm()

    def _reset_dm(self) -> None:
        """dmactive=0: the DM's own registers to reset values; the hart is not touched."""
        self.active = False
        self.hasel = False
        self.hawindow = 0
        self.data = [0] * DATA_COUNT
        self.progbuf = [0] * PROGBUF_SIZE
        self.cmderr = 0
        self.command = 0
        self.autoexec_data = 0
        self.autoexec_progbuf = 0
        self.sbcs = 0
        self.sbaddress = 0
        self.sbdata = 0
        self.halt_request = False

    # --- the hart, between requests --------------------------------------------------------------------------------
    @property
    def needs_simulation(self) -> bool:
        return not self.halted and not self.idle and not self.ndmreset

    def run_slice(self, budget: int) -> None:
        """Let the running hart execute about `budget` instructions (the faces call this while no request waits)."""
        if self.halt_request:
            self._halt(CAUSE_HALTREQ)
            return
        if not self.needs_simulation:
            return
        reason = self.machine.run_slice(budget)
        if reason == "breakpoint":
            self._halt(CAUSE_TRIGGER)
        elif reason == "ebreak":
            self._halt(CAUSE_EBREAK)
        elif reason in ("idle", "trap-loop"):
            self.idle = True

    def _halt(self, cause: int) -> None:
        self.halted = True
        self.idle = False
        self.dcsr_cause = cause

    def _resume(self) -> None:
        m = self.machine
        self.resume_ack = True
        if self.dcsr & DCSR_STEP:
            pc = m.pc
            m.step()
            self._halt(CAUSE_EBREAK if m.ebreak_halts and m.pc == pc else CAUSE_STEP)
            return
        self.halted = False
        self.idle = False
        m.clear_halt_request()
        if m.pc in m.breakpoints:
            # Leave the instruction a trigger stopped on, as the hart does when it resumes from debug mode.
            m.step()
            if m.pc in m.breakpoints:
                self._halt(CAUSE_TRIGGER)

    # --- DM registers ------------------------------------------------------------------------------------------------
    def read(self, address: int) -> int:
        self.accesses += 1
        if DATA0 <= address < DATA0 + DATA_COUNT:
            value = self.data[address - DATA0]
            self._autoexec(self.autoexec_data >> (address - DATA0) & 1)
            return value
        if PROGBUF0 <= address < PROGBUF0 + PROGBUF_SIZE:
            value = self.progbuf[address - PROGBUF0]
            self._autoexec(self.autoexec_progbuf >> (address - PROGBUF0) & 1)
            return value
        if address == DMCONTROL:
            return (int(self.hasel) << 26) | (int(self.ndmreset) << 1) | int(self.active)
        if address == DMSTATUS:
            return self._dmstatus()
        if not self.active:
            return 0
        if address == HARTINFO:
            # Hazard3: data0 is also the CSR dmdata0 (0xbff), no dscratch registers of its own beyond the model's.
            return (1 << 20) | (1 << 16) | (DATA_COUNT << 12) | CSR_DMDATA0
        if address in (HALTSUM0, HALTSUM1):
            return int(self.halted)
        if address == HAWINDOWSEL:
            return 0
        if address == HAWINDOW:
            return self.hawindow
        if address == ABSTRACTCS:
            return (PROGBUF_SIZE << 24) | (self.cmderr << 8) | DATA_COUNT
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
            self.hawindow = value & 1   # one hart: only its bit exists
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
        if self.ndmreset:
            value |= 3 << 12                           # in reset: unavailable
        elif self.halted:
            value |= 3 << 8
        else:
            value |= 3 << 10
        if self.resume_ack:
            value |= 3 << 16
        if self.have_reset:
            value |= 3 << 18
        return value

    def _write_dmcontrol(self, value: int) -> None:
        if not value & 1:
            self._reset_dm()
            return
        self.active = True
        self.hasel = bool(value >> 26 & 1)
        if value >> 28 & 1:
            self.have_reset = False
        if value >> 3 & 1:
            self.reset_halt_request = True
        if value >> 2 & 1:
            self.reset_halt_request = False
        ndmreset = bool(value >> 1 & 1)
        if ndmreset and not self.ndmreset:
            self.machine.reset()
            self.have_reset = True
        self.halt_request = bool(value >> 31 & 1)
        if self.ndmreset and not ndmreset:
            # Out of reset: halt at the first instruction if asked to, otherwise run.
            self.halted = False
            self.idle = False
            if self.halt_request or self.reset_halt_request:
                self._halt(CAUSE_HALTREQ if self.halt_request else CAUSE_RESETHALTREQ)
        self.ndmreset = ndmreset
        if self.halt_request and not self.halted and not self.ndmreset:
            self._halt(CAUSE_HALTREQ)
        elif value >> 30 & 1 and not self.halt_request:
            self.resume_ack = False
            if self.halted:
                self._resume()
            else:
                self.resume_ack = True

    # --- abstract commands -------------------------------------------------------------------------------------------
    def _autoexec(self, enabled: int) -> None:
        if enabled and self.cmderr == CMDERR_NONE:
            self._execute_command()

    def _execute_command(self) -> None:
        command = self.command
        if command >> 24 != 0:                         # only Access Register (cmdtype 0)
            self.cmderr = CMDERR_NOT_SUPPORTED
            return
        size = (command >> 20) & 7
        postincrement = command >> 19 & 1
        postexec = command >> 18 & 1
        transfer = command >> 17 & 1
        write = command >> 16 & 1
        regno = command & 0xFFFF
        if not self.halted:
            self.cmderr = CMDERR_HALT_RESUME
            return
        if transfer:
            if size != 2 or not _GPR_REGNO <= regno < _GPR_REGNO + 32:
                self.cmderr = CMDERR_NOT_SUPPORTED   # GPRs only, 32 bits (CSRs go through the program buffer)
                return
            name = rv.GPR_NAMES[regno - _GPR_REGNO]
            if write:
                self.machine.write_register(name, self.data[0])
            else:
                self.data[0] = self.machine.read_register(name)
        if postincrement:
            self.command = (command & ~0xFFFF) | ((regno + 1) & 0xFFFF)
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
        return self.machine.read_register(rv.GPR_NAMES[i]) if i else 0

    def _set_x(self, i: int, value: int) -> None:
        if i:
            self.machine.write_register(rv.GPR_NAMES[i], value & 0xFFFFFFFF)

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
        if csr == CSR_DCSR:
            return self.dcsr | (self.dcsr_cause << 6)
        if csr == CSR_DPC:
            return self.machine.pc
        if csr in (CSR_DSCRATCH0, CSR_DSCRATCH1):
            return self.dscratch[csr - CSR_DSCRATCH0]
        if csr == CSR_DMDATA0:
            return self.data[0]
        if csr == CSR_TSELECT:
            return self.tselect
        if csr == CSR_TDATA1:
            return self.tdata1[self.tselect]
        if csr == CSR_TDATA2:
            return self.tdata2[self.tselect]
        if csr == CSR_TINFO:
            return 1 << 2   # type 2 (mcontrol) only
        name = rv.CSR_NAMES.get(csr)
        try:
            if name is None:
                raise TargetError(f"CSR {csr:#x}")
            return self.machine.read_register(name)
        except TargetError as e:
            raise ProgramBufferException(f"csr read: {e}") from None

    def write_csr(self, csr: int, value: int) -> None:
        if csr == CSR_DCSR:
            self.dcsr = (self.dcsr & ~DCSR_WRITABLE) | (value & DCSR_WRITABLE)
            self.machine.ebreak_halts = bool(self.dcsr & DCSR_EBREAKM)
        elif csr == CSR_DPC:
            self.machine.write_register("pc", value & ~1)
        elif csr in (CSR_DSCRATCH0, CSR_DSCRATCH1):
            self.dscratch[csr - CSR_DSCRATCH0] = value
        elif csr == CSR_DMDATA0:
            self.data[0] = value
        elif csr == CSR_TSELECT:
            # WARL: a select past the last trigger keeps the old value, which is how debuggers count triggers.
            if value < TRIGGER_COUNT:
                self.tselect = value
        elif csr == CSR_TDATA1:
            self.tdata1[self.tselect] = MCONTROL_TYPE | (value & MCONTROL_WRITABLE)
            self._apply_triggers()
        elif csr == CSR_TDATA2:
            self.tdata2[self.tselect] = value
            self._apply_triggers()
        elif csr == CSR_TINFO:
            pass
        else:
            name = rv.CSR_NAMES.get(csr)
            try:
                if name is None:
                    raise TargetError(f"CSR {csr:#x}")
                self.machine.write_register(name, value)
            except TargetError as e:
                raise ProgramBufferException(f"csr write: {e}") from None

    def _apply_triggers(self) -> None:
        """Execute triggers that enter debug mode become the Machine's breakpoints."""
        addresses = {self.tdata2[i] for i in range(TRIGGER_COUNT)
                     if self.tdata1[i] & MCONTROL_EXECUTE and self.tdata1[i] & MCONTROL_M
                     and (self.tdata1[i] >> 12) & 0xF == 1}
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
