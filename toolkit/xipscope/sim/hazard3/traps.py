"""Hazard3's traps and interrupts on the twin (a model): how the core enters its trap handler, when it takes an
interrupt, how it sleeps in `wfi`, and the rule for atomics outside SRAM. A mixin of Machine (core.py), which holds
the state these methods use.

- Traps: M-mode only (ecall -> mcause 11); mtval reads 0 (Hazard3 hardwires it); in vectored mode an interrupt goes
  to its vector, an exception to the base. The instructions of a block from the trapping one on do not retire
  (`_unretire_from`), and each trap entry costs the slice one unit of its budget, so a firmware looping through its
  handler ends its slices like any other loop. A trap taken inside a memory hook defers its mstatus write to the next
  block (`_apply_pending`): writing mstatus flushes QEMU's TLB, which crashes unicorn 2.1.4 while an atomic
  instruction holds a host pointer. The latest TRAP_HISTORY to 2x of them are kept; REPEATED_TRAP in a row, all the
  same, is a trap loop, and a handler that faults at its own first instruction stops the run (StopReason.TRAP_LOOP).
- Interrupts: the SIO timer (mcause 0x80000007) and software (0x80000003) interrupts (sio_timer.py), taken at the
  start of a translated block, never inside one: a block is at most a few hundred instructions, and while an
  interrupt is pending but masked the twin looks again every IRQ_POLL_CYCLES, so an interrupt is taken at most that
  many cycles plus one block after it is both pending and enabled. unicorn ignores writes to mip (2.1.4), so the twin
  enters the handler itself, as for AMO faults. Software before timer (the privileged spec's priority).
- Returns: each `mret` (hooked at its address) ends the latest trap entered that returns where it goes; a store/AMO
  fault (mcause 7) whose handler returns to epc + 4 had its AMO emulated (a kernel's patch for atomics outside SRAM),
  and the cycles from its entry to that return are counted (`emulated_amos`).
- `wfi` with an interrupt due sleeps until it is due (simulated cycles, charged to the function holding the wfi); a
  core parked in `wfi` with nothing that can wake it is idle, and the twin stops simulating it.
- Atomics outside SRAM (rp2350.md, "Atomics outside SRAM"): an amo*.w faults with a store/AMO access fault and leaves
  memory untouched; an lr.w loads but sets no reservation (the twin emulates it so unicorn never records one).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...chip import riscv as rv
from ...chip import rp2350 as rp
from ..runner import StopReason
from .csrs import gpr_const
from .hooks import B_ADDR, B_INSNS, B_SIZE

TRAP_HISTORY = 4096          # traps kept in Machine.traps (the latest); a firmware in a trap loop takes millions
REPEATED_TRAP = 100          # the same trap this many times in a row, and nothing else: a trap loop (repeated_trap)
OPEN_TRAPS = 64              # traps entered and not yet returned from that the mret accounting keeps (the latest)
IRQ_POLL_CYCLES = 64         # while an interrupt is pending but masked, the block hook looks again this often
NEVER = 1 << 62              # a cycle count the twin never reaches


@dataclass(frozen=True)
class Trap:
    cause: int
    epc: int
    instret: int        # ground-truth instructions retired before the trap


class Traps:
    """Machine's traps, interrupts, wfi and atomics rules (a mixin: Machine holds the state; see core.py)."""

    # --- precise exceptions ----------------------------------------------------------------------------------------
    def _unretire_from(self, epc: int) -> None:
        """The instructions of the current block from `epc` on did not retire (a trap or a stop cut the block)."""
        b, live = self._last
        if b is None or not b[B_ADDR] <= epc < b[B_ADDR] + b[B_SIZE]:
            return   # epc is not in the current block: the block retired whole (it jumped to epc, or trapped after it)
        insns = b[B_INSNS]
        i = 0
        while i < live and insns[i][0] < epc:
            i += 1
        for _a, f in insns[i:live]:
            self._f_instr_adj[f] -= 1
        gone = live - i
        self._st[1] -= gone
        self._st[0] += gone
        self._last[1] = i

    def _take_trap(self, cause: int, epc: int, *, in_memory_hook: bool = False) -> None:
        """Enter the firmware's trap handler as Hazard3 does (mtval hardwired to 0; M-mode only).

        From inside a memory hook the mstatus write waits for the next block: writing mstatus makes QEMU flush its
        TLB, and doing that while an atomic instruction holds a host pointer crashes unicorn 2.1.4.
        """
        from unicorn.riscv_const import (UC_RISCV_REG_MCAUSE, UC_RISCV_REG_MEPC, UC_RISCV_REG_MSTATUS,
                                         UC_RISCV_REG_MTVAL, UC_RISCV_REG_MTVEC, UC_RISCV_REG_PC)

        uc = self._uc
        self._unretire_from(epc)
        if cause == rp.CAUSE_BREAKPOINT and self.ebreak_halts:
            # Debug mode instead of the trap handler (a debugger's software breakpoint): pc stays on the ebreak.
            uc.reg_write(UC_RISCV_REG_PC, epc)
            self._request_stop(StopReason.EBREAK)
            return
        mstatus = self._pending_mstatus[0]
        if mstatus is None:
            mstatus = uc.reg_read(UC_RISCV_REG_MSTATUS)
        mpie = rv.MSTATUS_MPIE if mstatus & rv.MSTATUS_MIE else 0
        mstatus = (mstatus & ~(rv.MSTATUS_MIE | rv.MSTATUS_MPIE | rv.MSTATUS_MPP_MASK)) | mpie \
            | (rv.PRV_M << rv.MSTATUS_MPP_SHIFT)
        if in_memory_hook:
            self._pending_mstatus[0] = mstatus
        else:
            uc.reg_write(UC_RISCV_REG_MSTATUS, mstatus)
        uc.reg_write(UC_RISCV_REG_MCAUSE, cause)
        uc.reg_write(UC_RISCV_REG_MEPC, epc)
        uc.reg_write(UC_RISCV_REG_MTVAL, rp.HAZARD3_MTVAL_HARDWIRED)
        self._record_trap(Trap(cause, epc, self._st[1]))
        self._st[0] -= 1   # entering the handler is work the slice's budget pays for, though no instruction retires
        mtvec = uc.reg_read(UC_RISCV_REG_MTVEC)
        handler = mtvec & ~3   # direct mode, and exceptions in vectored mode, go to the base
        if cause & rp.CAUSE_INTERRUPT and mtvec & 1:
            handler += 4 * (cause & ~rp.CAUSE_INTERRUPT)
        if handler == epc:
            # The handler itself faults at its first instruction: a real core would spin here forever.
            self._request_stop(StopReason.TRAP_LOOP)
        uc.reg_write(UC_RISCV_REG_PC, handler)

    def _apply_pending(self) -> None:
        from unicorn.riscv_const import UC_RISCV_REG_MSTATUS
        value, self._pending_mstatus[0] = self._pending_mstatus[0], None
        if value is not None:
            self._uc.reg_write(UC_RISCV_REG_MSTATUS, value)

    def _record_trap(self, trap: Trap) -> None:
        """Every trap the core enters passes here once, after its CSRs are written and before its handler runs
        (exceptions, interrupts, faults found by the hooks, the AMO rule's; not an ebreak a debugger halts on). The
        place for whatever must see each trap, such as a per-trap cost observer (the cost of emulating an AMO)."""
        self.trap_count += 1
        run = self._trap_run
        key = (trap.cause, trap.epc)
        if run[0] == key:
            run[1] += 1
        else:
            run[0], run[1] = key, 1
        self.traps.append(trap)
        if len(self.traps) >= 2 * TRAP_HISTORY:
            del self.traps[:TRAP_HISTORY]   # memory stays bounded however long a firmware loops through traps
        entered = self._entered
        entered.append((trap.cause, trap.epc, self.cycles))
        if len(entered) > OPEN_TRAPS:
            del entered[0]

    def _on_mret(self, uc, address: int, size: int, _ud) -> None:
        """An `mret` is about to return to mepc: it ends the latest trap entered that returns there (to its epc, or
        past it: a store/AMO fault whose AMO the handler emulated returns to epc + 4; the twin runs M-mode only, so
        every trap is the kernel's). The traps entered after that one are done too (a handler that switched tasks
        returns elsewhere, to a trap entered earlier, or never)."""
        from unicorn.riscv_const import UC_RISCV_REG_MEPC

        try:
            mepc = uc.reg_read(UC_RISCV_REG_MEPC)
            entered = self._entered
            for i in range(len(entered) - 1, -1, -1):
                cause, epc, cycles = entered[i]
                if mepc == epc + 4 and cause == rp.CAUSE_STORE_FAULT:
                    self.emulated_amos[0] += 1
                    self.emulated_amos[1] += self.cycles - cycles
                elif mepc != epc:
                    continue
                del entered[i:]
                return
        except BaseException as e:
            self._hook_error = e
            self._request_stop(StopReason.ERROR)

    def repeated_trap(self) -> tuple[Trap, int] | None:
        """(the latest trap, times taken in a row) when the latest REPEATED_TRAP or more traps were all the same
        (cause and epc): the firmware loops through its trap handler back to an instruction that traps again."""
        n = self._trap_run[1]
        return (self.traps[-1], n) if n >= REPEATED_TRAP else None


    # --- interrupts and wfi --------------------------------------------------------------------------------------
    def pending_interrupts(self) -> int:
        """mip as Hazard3 shows it: MTIP while MTIME >= MTIMECMP, MSIP while core 0's RISCV_SOFTIRQ bit is set."""
        t = self.sio_timer
        return (rp.MIE_MTIE if t.timer_pending() else 0) | (rp.MIE_MSIE if t.software_pending() else 0)

    def _replan_interrupts(self) -> None:
        self._irq_at[0] = 0   # look at the next block

    def _interrupt_at_block(self, address: int) -> bool:
        """At the start of the block at `address`: take an interrupt that is pending and enabled (True), or plan the
        next look: when the timer becomes due, or soon while one is pending but masked (mie or mstatus.MIE)."""
        from unicorn.riscv_const import UC_RISCV_REG_MIE, UC_RISCV_REG_MSTATUS

        uc = self._uc
        now = self.cycles
        pending = self.pending_interrupts()
        if not pending:
            due = self.sio_timer.timer_due()
            self._irq_at[0] = NEVER if due is None else due
            return False
        self._irq_at[0] = now + IRQ_POLL_CYCLES
        enabled = pending & uc.reg_read(UC_RISCV_REG_MIE)
        if not enabled or not uc.reg_read(UC_RISCV_REG_MSTATUS) & rv.MSTATUS_MIE:
            return False
        # Priority (privileged spec): software before timer.
        cause = rp.CAUSE_MACHINE_SOFTWARE_IRQ if enabled & rp.MIE_MSIE else rp.CAUSE_MACHINE_TIMER_IRQ
        self._last[0] = None   # the block about to start does not run: the one before it retired whole
        self._take_trap(cause, address)
        return True

    def _sleep_in_wfi(self, pc: int) -> bool:
        """The core stopped in `wfi` (pc just after it): sleep until an interrupt enabled in mie is pending, in
        simulated time, and go on (the handler is entered at the next block if mstatus.MIE allows). False if
        nothing enabled can ever wake it (idle)."""
        from unicorn.riscv_const import UC_RISCV_REG_MIE

        mie = self._uc.reg_read(UC_RISCV_REG_MIE)
        if not self.pending_interrupts() & mie:
            due = self.sio_timer.timer_due() if mie & rp.MIE_MTIE else None
            if due is None or due >= NEVER:
                return False
            sleep = max(0, due - self.cycles)
            self._st[2] += sleep
            self._f_stall[self._fidx_at(pc - 4)] += sleep
        self._irq_at[0] = 0
        return True

    def _is_idle(self, pc: int) -> bool:
        try:
            return self._insn_at(pc - 4) == rv.INSN_WFI
        except Exception:
            return False


    # --- atomics outside SRAM --------------------------------------------------------------------------------------
    def _atomic_outside_sram(self, address: int, is_write: bool) -> bool:
        """Called from data hooks in blocks holding an A-extension instruction. True if the access was consumed."""
        from unicorn.riscv_const import UC_RISCV_REG_PC

        if rp.in_exclusive_monitor(address):
            return False
        pc = self._pc()
        kind = rv.decode_amo(self._insn_at(pc))
        if kind == "amo":
            # amo*.w outside SRAM: store/AMO access fault, memory untouched (rp2350.md, Atomics outside SRAM).
            self._take_trap(rp.CAUSE_STORE_FAULT, pc, in_memory_hook=True)
            return True
        if kind == "lr" and not is_write:
            # lr.w outside SRAM loads but sets no reservation: emulate it so unicorn never records one.
            insn = self._insn_at(pc)
            rd = (insn >> 7) & 31
            value = self.read_memory_word_for_lr(address)
            if rd:
                self._uc.reg_write(gpr_const(rd), value)
            self._uc.reg_write(UC_RISCV_REG_PC, pc + 4)
            return False  # the load itself is still an access
        return False

    def read_memory_word_for_lr(self, address: int) -> int:
        value = self.bus.read(address)
        return value if value is not None else int.from_bytes(self.read_memory(address, 4), "little")
