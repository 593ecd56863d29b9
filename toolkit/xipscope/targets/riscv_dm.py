"""A RISC-V Debug Module driver (debug spec 0.13.2) on pyOCD's DAP layer: DM registers through a pyOCD MEM-AP.

pyOCD has no RISC-V support; on RP2350 the DM sits behind the APB-AP at 0xa000 with its register addresses
multiplied by 4 (rp2350.md "Debug access"). GPRs go through abstract commands, CSRs through the 2-word program buffer,
memory through System Bus Access. Hazard3 has no dscratch CSRs, but data0 is also its CSR dmdata0 (0xbff, hartinfo):
a CSR read is one command that copies s0 into data0 and then runs `csrr s0, CSR; csrrw s0, dmdata0, s0`, which
restores s0 and leaves the CSR in data0 (chip/rp2350.py DM_*).

Every access is queued with pyOCD's deferred transfers (`now=False`) and a whole PC sample - halt, dpc,
CTR_HIT/CTR_ACC, resume - goes to the probe as one batch: one round trip when the hart halts and each command
finishes as fast as the DM answers. After each command the batch reads abstractcs once before touching data0 (a
command may still be busy for that access, and data0 or progbuf accessed while busy sets cmderr 1); if cmderr still
says busy or halt/resume, the same reads are redone with real waits.
"""

from __future__ import annotations

from typing import Callable

from ..chip import riscv as rv
from ..chip import rp2350 as rp
from ..errors import TargetError

DATA0, DMCONTROL, DMSTATUS, ABSTRACTCS, COMMAND, PROGBUF0 = 0x04, 0x10, 0x11, 0x16, 0x17, 0x20
SBCS, SBADDRESS0, SBDATA0 = 0x38, 0x39, 0x3C
DMACTIVE, HALTREQ, RESUMEREQ, ACKHAVERESET = 1, 1 << 31, 1 << 30, 1 << 28
ALLHALTED, ALLRUNNING, ANYUNAVAIL, ANYNONEXISTENT, ALLRESUMEACK = 1 << 9, 1 << 11, 1 << 12, 1 << 14, 1 << 17
ABSTRACTCS_BUSY = 1 << 12
CMDERR_MASK = 7 << 8
CMDERR_BUSY, CMDERR_HALT_RESUME = 1, 4
SBCS_WORD_AUTOINCREMENT = (2 << 17) | (1 << 16)
SBCS_READ_ON_ADDR_AND_DATA = SBCS_WORD_AUTOINCREMENT | (1 << 20) | (1 << 15)
SBCS_ERRORS = (1 << 22) | (7 << 12)
CSR_DPC = 0x7B1
S0 = 8
POLLS = 100
CMDERR_TEXT = {1: "busy", 2: "not supported", 3: "exception", 4: "halt/resume (the hart is not halted)", 7: "other"}


def _csrr(rd: int, csr: int) -> int:
    return (csr << 20) | (2 << 12) | (rd << 7) | rv.OPCODE_SYSTEM        # csrrs rd, csr, x0


def _csrrw(rd: int, csr: int, rs: int) -> int:
    return (csr << 20) | (rs << 15) | (1 << 12) | (rd << 7) | rv.OPCODE_SYSTEM


def _access_register(gpr: int, write: bool = False, transfer: bool = True, postexec: bool = False) -> int:
    return (2 << 20) | (int(postexec) << 18) | (int(transfer) << 17) | (int(write) << 16) | (0x1000 + gpr)


class RetrySlowly(Exception):
    """A batch met a busy command or a hart not yet halted: redo it with real waits."""


class RiscvDebugModule:
    """The DM behind a pyOCD MEM-AP (`ap`), e.g. pyocd.coresight.ap.APB_AP at APv2Address(0xa000); `hart` is the
    hartsel every request carries (RP2350: 0 or 1)."""

    def __init__(self, ap, name: str = "RISC-V DM", hart: int = 0):
        self.ap = ap
        self.name = name
        self.hart = hart

    # --- DM registers, deferred ---
    def _write(self, reg: int, value: int) -> None:
        self.ap.write_memory(reg * 4, value & 0xFFFFFFFF, 32)

    def _read(self, reg: int, now: bool = True):
        return self.ap.read_memory(reg * 4, 32, now=now)

    def _dmcontrol(self, bits: int = 0) -> None:
        """Write dmcontrol with dmactive and our hart selected (hartsello, bits 25:16)."""
        self._write(DMCONTROL, bits | (self.hart << 16) | DMACTIVE)

    def activate(self) -> None:
        self._dmcontrol()
        status = self._read(DMSTATUS)
        if status & 0xF != 2:
            raise TargetError(f"{self.name}: expected a debug spec 0.13 Debug Module (dmstatus.version 2), "
                              f"found dmstatus {status:#010x}; is this the RISC-V DM's AP?")
        if not status & (1 << 7):
            raise TargetError(f"{self.name}: the Debug Module wants authentication (dmstatus {status:#010x})")
        selected = (self._read(DMCONTROL) >> 16) & 0x3FF
        if selected != self.hart or status & ANYNONEXISTENT:
            raise TargetError(f"{self.name}: there is no hart {self.hart} (dmcontrol kept hartsel {selected}, "
                              f"dmstatus {status:#010x}); RP2350 has harts 0 and 1")
        if status & ANYUNAVAIL:
            raise TargetError(f"{self.name}: hart {self.hart} is unavailable (dmstatus {status:#010x}): "
                              f"{rp.ARM_BOOT_REMEDY}")

    # --- run control ---
    def is_halted(self) -> bool:
        return bool(self._read(DMSTATUS) & ALLHALTED)

    def halt(self) -> None:
        self._dmcontrol(HALTREQ)
        self._wait(ALLHALTED, "halt")
        self._dmcontrol()

    def resume(self) -> None:
        self._dmcontrol(RESUMEREQ)
        self._wait(ALLRESUMEACK, "resume")
        self._dmcontrol()

    def _wait(self, bit: int, what: str) -> None:
        for _ in range(POLLS):
            status = self._read(DMSTATUS)
            if status & bit:
                return
            if status & ANYUNAVAIL:
                raise TargetError(f"{self.name}: hart {self.hart} became unavailable (dmstatus {status:#010x}): it "
                                  f"is in reset, or {rp.ARM_BOOT_REMEDY}")
        raise TargetError(f"{self.name}: hart {self.hart} did not {what} (dmstatus {status:#010x})")

    # --- abstract commands ---
    def _queue_command(self, command: int, wait: bool, result: Callable):
        """Write a command, then read abstractcs once (queued) so that `result`, the data0 read queued after it, does
        not meet a command still busy; with wait, poll until it is not busy (real round trips). Returns `result`
        wrapped so that collecting it also collects the abstractcs read (pyOCD holds the probe until every deferred
        read is collected)."""
        self._write(COMMAND, command)
        if wait:
            self._wait_idle()
            return result()
        spacer = self._read(ABSTRACTCS, now=False)
        value = result()

        def collect() -> int:
            spacer()
            return value()
        return collect

    def _wait_idle(self) -> int:
        for _ in range(POLLS):
            status = self._read(ABSTRACTCS)
            if not status & ABSTRACTCS_BUSY:
                return status
        raise TargetError(f"{self.name}: an abstract command stayed busy for {POLLS} reads (abstractcs "
                          f"{status:#010x})")

    def _queue_data0(self):
        return self._read(DATA0, now=False)

    def _queue_gpr_read(self, gpr: int, wait: bool = False):
        return self._queue_command(_access_register(gpr), wait, self._queue_data0)

    def _queue_csr_read(self, csr: int, wait: bool = False):
        """Queue: program buffer `csrr s0, CSR; csrrw s0, dmdata0, s0`, a command that copies s0 into data0 and
        runs it (s0 back, the CSR in data0), and the read of data0. No round trip in between unless wait."""
        self._write(PROGBUF0, _csrr(S0, csr))
        self._write(PROGBUF0 + 1, _csrrw(S0, rp.DM_DATA0_CSR, S0))
        return self._queue_command(_access_register(S0, postexec=True), wait, self._queue_data0)

    def _clear_cmderr(self) -> None:
        self._wait_idle()                              # a W1C while busy would itself be refused
        self._write(ABSTRACTCS, CMDERR_MASK)
        self.ap.dp.flush()

    def _check_command(self, abstractcs: int, what: str, retry: bool = False) -> None:
        error = (abstractcs & CMDERR_MASK) >> 8
        if error:
            self._clear_cmderr()                       # so the next command runs
            if retry and error in (CMDERR_BUSY, CMDERR_HALT_RESUME):
                raise RetrySlowly()
            raise TargetError(f"{self.name}: {what} failed: cmderr {error} "
                              f"({CMDERR_TEXT.get(error, 'unknown')})")

    def _read_register(self, queue, number: int, what: str) -> int:
        value = queue(number)
        status = self._read(ABSTRACTCS, now=False)
        value, abstractcs = value(), status()        # every deferred read collected, in order
        try:
            self._check_command(abstractcs, what, retry=True)
        except RetrySlowly:
            value = queue(number, wait=True)()
            self._check_command(self._read(ABSTRACTCS), what)
        return value

    def read_gpr(self, gpr: int) -> int:
        return self._read_register(self._queue_gpr_read, gpr, f"reading {rv.GPR_NAMES[gpr]}")

    def read_csr(self, csr: int) -> int:
        return self._read_register(self._queue_csr_read, csr, f"reading CSR {csr:#x} ({rv.CSR_NAMES.get(csr, '?')})")

    # --- memory through System Bus Access ---
    def _queue_sba_read(self, address: int, words: int) -> list:
        self._write(SBCS, SBCS_READ_ON_ADDR_AND_DATA | SBCS_ERRORS)   # also clears (W1C) old errors
        self._write(SBADDRESS0, address)
        values = []
        for i in range(words):
            if i == words - 1:
                self._write(SBCS, SBCS_WORD_AUTOINCREMENT)            # no read beyond the last word
            values.append(self._read(SBDATA0, now=False))
        return values

    def _check_sba(self, sbcs: int, address: int) -> None:
        if sbcs & SBCS_ERRORS:
            raise TargetError(f"{self.name}: System Bus Access failed at {address:#x} (sbcs {sbcs:#010x}: "
                              f"sberror {(sbcs >> 12) & 7}, sbbusyerror {(sbcs >> 22) & 1}); is the address mapped?")

    def read_words(self, address: int, words: int) -> list[int]:
        values = self._queue_sba_read(address, words)
        status = self._read(SBCS, now=False)
        self._check_sba(status(), address)
        return [v() for v in values]

    def write_words(self, address: int, words: list[int]) -> None:
        self._write(SBCS, SBCS_WORD_AUTOINCREMENT | SBCS_ERRORS)
        self._write(SBADDRESS0, address)
        for word in words:
            self._write(SBDATA0, word)
        self._check_sba(self._read(SBCS), address)

    # --- a whole PC sample in one batch ---
    def sample_pc_and_counters(self, counters_address: int) -> tuple[int, int, int]:
        """Halt, read dpc and two counter words by SBA, resume: queued as one batch of deferred transfers.

        If the hart had not halted by the time the program buffer ran (cmderr 4 on a slow hart), or the command was
        still busy when data0 was read (cmderr 1), the sample is taken again with real waits."""
        self._dmcontrol(HALTREQ)
        self._dmcontrol()
        pc = self._queue_csr_read(CSR_DPC)
        command_status = self._read(ABSTRACTCS, now=False)
        counters = self._queue_sba_read(counters_address, 2)
        bus_status = self._read(SBCS, now=False)
        self._dmcontrol(RESUMEREQ)
        self._dmcontrol()
        # Each deferred result is collected exactly once (pyOCD releases the DP lock it holds as it does so).
        abstractcs, value, hit, acc, sbcs = (command_status(), pc(), counters[0](), counters[1](), bus_status())
        try:
            self._check_command(abstractcs, "reading dpc", retry=True)
        except RetrySlowly:
            self.halt()
            value = self.read_csr(CSR_DPC)
            hit, acc = self.read_words(counters_address, 2)
            self.resume()
            return value, hit, acc
        self._check_sba(sbcs, counters_address)
        return value, hit, acc
