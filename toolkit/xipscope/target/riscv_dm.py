"""A RISC-V Debug Module driver (debug spec 0.13.2) on pyOCD's DAP layer: DM registers through a pyOCD MEM-AP.

pyOCD has no RISC-V support; on RP2350 the DM sits behind the APB-AP at 0xa000 with its register addresses
multiplied by 4 (rp2350.md "Debug access"). GPRs go through abstract commands, CSRs through the 2-word program buffer
(saving s0 in dscratch0, so nothing needs a round trip in between), memory through System Bus Access. Every access is
queued with pyOCD's deferred transfers (`now=False`) and a whole PC sample - halt, dpc, CTR_HIT/CTR_ACC, resume - goes
to the probe as one batch: one round trip when the hart halts as fast as the DM answers.
"""

from __future__ import annotations

from ..chip import riscv as rv
from ..errors import TargetError

DATA0, DMCONTROL, DMSTATUS, ABSTRACTCS, COMMAND, PROGBUF0 = 0x04, 0x10, 0x11, 0x16, 0x17, 0x20
SBCS, SBADDRESS0, SBDATA0 = 0x38, 0x39, 0x3C
DMACTIVE, HALTREQ, RESUMEREQ = 1, 1 << 31, 1 << 30
ALLHALTED, ALLRUNNING, ALLRESUMEACK = 1 << 9, 1 << 11, 1 << 17
CMDERR_MASK = 7 << 8
SBCS_WORD_AUTOINCREMENT = (2 << 17) | (1 << 16)
SBCS_READ_ON_ADDR_AND_DATA = SBCS_WORD_AUTOINCREMENT | (1 << 20) | (1 << 15)
SBCS_ERRORS = (1 << 22) | (7 << 12)
CSR_DPC, CSR_DSCRATCH0 = 0x7B1, 0x7B2
EBREAK = rv.INSN_EBREAK
POLLS = 100
CMDERR_TEXT = {1: "busy", 2: "not supported", 3: "exception", 4: "halt/resume (the hart is not halted)", 7: "other"}


def _csrr(rd: int, csr: int) -> int:
    return (csr << 20) | (2 << 12) | (rd << 7) | rv.OPCODE_SYSTEM        # csrrs rd, csr, x0


def _csrw(csr: int, rs: int) -> int:
    return (csr << 20) | (rs << 15) | (1 << 12) | rv.OPCODE_SYSTEM       # csrrw x0, csr, rs


def _access_register(gpr: int, write: bool = False, transfer: bool = True, postexec: bool = False) -> int:
    return (2 << 20) | (int(postexec) << 18) | (int(transfer) << 17) | (int(write) << 16) | (0x1000 + gpr)


class RiscvDebugModule:
    """The DM behind a pyOCD MEM-AP (`ap`), e.g. pyocd.coresight.ap.APB_AP at APv2Address(0xa000)."""

    def __init__(self, ap, name: str = "RISC-V DM"):
        self.ap = ap
        self.name = name

    # --- DM registers, deferred ---
    def _write(self, reg: int, value: int) -> None:
        self.ap.write_memory(reg * 4, value & 0xFFFFFFFF, 32)

    def _read(self, reg: int, now: bool = True):
        return self.ap.read_memory(reg * 4, 32, now=now)

    def activate(self) -> None:
        self._write(DMCONTROL, DMACTIVE)
        status = self._read(DMSTATUS)
        if status & 0xF != 2:
            raise TargetError(f"{self.name}: expected a debug spec 0.13 Debug Module (dmstatus.version 2), "
                              f"found dmstatus {status:#010x}; is this the RISC-V DM's AP?")
        if not status & (1 << 7):
            raise TargetError(f"{self.name}: the Debug Module wants authentication (dmstatus {status:#010x})")

    # --- run control ---
    def is_halted(self) -> bool:
        return bool(self._read(DMSTATUS) & ALLHALTED)

    def halt(self) -> None:
        self._write(DMCONTROL, HALTREQ | DMACTIVE)
        self._wait(ALLHALTED, "halt")
        self._write(DMCONTROL, DMACTIVE)

    def resume(self) -> None:
        self._write(DMCONTROL, RESUMEREQ | DMACTIVE)
        self._wait(ALLRESUMEACK, "resume")
        self._write(DMCONTROL, DMACTIVE)

    def _wait(self, bit: int, what: str) -> None:
        for _ in range(POLLS):
            status = self._read(DMSTATUS)
            if status & bit:
                return
        raise TargetError(f"{self.name}: the hart did not {what} (dmstatus {status:#010x})")

    # --- registers ---
    def _queue_gpr_read(self, gpr: int):
        self._write(COMMAND, _access_register(gpr))
        return self._read(DATA0, now=False)

    def _queue_csr_read(self, csr: int):
        """Queue: s0 -> dscratch0, s0 = csr, s0 -> data0 (read), s0 <- dscratch0. No round trip in between."""
        self._write(PROGBUF0, _csrw(CSR_DSCRATCH0, 8))
        self._write(PROGBUF0 + 1, _csrr(8, csr))
        self._write(COMMAND, _access_register(8, transfer=False, postexec=True))
        value = self._queue_gpr_read(8)
        self._write(PROGBUF0, _csrr(8, CSR_DSCRATCH0))
        self._write(PROGBUF0 + 1, EBREAK)
        self._write(COMMAND, _access_register(8, transfer=False, postexec=True))
        return value

    def _check_command(self, abstractcs: int, what: str) -> None:
        error = (abstractcs & CMDERR_MASK) >> 8
        if error:
            self._write(ABSTRACTCS, CMDERR_MASK)       # W1C, so the next command runs
            self.ap.dp.flush()
            raise TargetError(f"{self.name}: {what} failed: cmderr {error} "
                              f"({CMDERR_TEXT.get(error, 'unknown')})")

    def read_gpr(self, gpr: int) -> int:
        value = self._queue_gpr_read(gpr)
        status = self._read(ABSTRACTCS, now=False)
        self._check_command(status(), f"reading {rv.GPR_NAMES[gpr]}")
        return value()

    def read_csr(self, csr: int) -> int:
        value = self._queue_csr_read(csr)
        status = self._read(ABSTRACTCS, now=False)
        self._check_command(status(), f"reading CSR {csr:#x} ({rv.CSR_NAMES.get(csr, '?')})")
        return value()

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

        If the hart had not halted by the time the program buffer ran (cmderr 4 on a slow hart), the batch is retried
        with a real wait for the halt."""
        self._write(DMCONTROL, HALTREQ | DMACTIVE)
        self._write(DMCONTROL, DMACTIVE)
        pc = self._queue_csr_read(CSR_DPC)
        command_status = self._read(ABSTRACTCS, now=False)
        counters = self._queue_sba_read(counters_address, 2)
        bus_status = self._read(SBCS, now=False)
        self._write(DMCONTROL, RESUMEREQ | DMACTIVE)
        self._write(DMCONTROL, DMACTIVE)
        # Each deferred result is collected exactly once (pyOCD releases the DP lock it holds as it does so).
        abstractcs, value, hit, acc, sbcs = (command_status(), pc(), counters[0](), counters[1](), bus_status())
        if (abstractcs & CMDERR_MASK) >> 8 == 4:
            self._write(ABSTRACTCS, CMDERR_MASK)
            self.halt()
            value = self.read_csr(CSR_DPC)
            hit, acc = self.read_words(counters_address, 2)
            self.resume()
            return value, hit, acc
        self._check_command(abstractcs, "reading dpc")
        self._check_sba(sbcs, counters_address)
        return value, hit, acc
