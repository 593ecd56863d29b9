"""The CSRs the Hazard3 twin answers itself (a model): the cycle and instret counters and mcountinhibit, which unicorn
lacks or would answer with values derived from the host, and the ID registers, which read Hazard3's (chip/rp2350.py).

Every Zicsr instruction on one of them is found before the firmware runs, by scanning each executable section of the
ELF at its run address, every halfword, and gets a code hook at its address; an instruction unicorn refuses as illegal
is looked at too (hooks.py `_on_intr`) and emulated when it is one of these. The counters read what the model ran up to
the instruction (counters.PerfCounters); a write to a read-only one takes an illegal-instruction trap.

Also here: unicorn's numbers for the registers, which the rest of the package reads and writes by.
"""

from __future__ import annotations

from ...chip import riscv as rv
from ...chip import rp2350 as rp
from ..counters import PerfCounters
from ..runner import StopReason

# CSRs the twin answers itself (unicorn lacks them or reads host-derived values).
COUNTER_CSRS = {
    rv.CSRS["mcycle"]: (PerfCounters.CY, 0), rv.CSRS["mcycleh"]: (PerfCounters.CY, 32),
    rv.CSRS["minstret"]: (PerfCounters.IR, 0), rv.CSRS["minstreth"]: (PerfCounters.IR, 32),
    rv.CSRS["cycle"]: (PerfCounters.CY, 0), rv.CSRS["cycleh"]: (PerfCounters.CY, 32),
    rv.CSRS["instret"]: (PerfCounters.IR, 0), rv.CSRS["instreth"]: (PerfCounters.IR, 32),
}
READ_ONLY_CSRS = {rv.CSRS["mvendorid"]: rp.HAZARD3_MVENDORID, rv.CSRS["mimpid"]: rp.HAZARD3_MIMPID,
                  rv.CSRS["cycle"]: None, rv.CSRS["cycleh"]: None, rv.CSRS["instret"]: None,
                  rv.CSRS["instreth"]: None}
EMULATED_CSRS = frozenset(COUNTER_CSRS) | {rv.CSRS["mcountinhibit"], rv.CSRS["mvendorid"], rv.CSRS["mimpid"]}


def gpr_const(i: int) -> int:
    """unicorn's number for x<i>."""
    from unicorn.riscv_const import UC_RISCV_REG_X0
    return UC_RISCV_REG_X0 + i


def csr_const(name: str) -> int | None:
    """unicorn's number for the CSR `name`, or None if unicorn has none."""
    import unicorn.riscv_const as c
    return getattr(c, f"UC_RISCV_REG_{name.upper()}", None)


class CsrEmulation:
    """Machine's CSR emulation (a mixin: Machine holds the state; see core.py)."""

    def _hook_instructions(self, uc) -> None:
        """Hooks at the addresses of the instructions the twin must see (found by scanning every executable section at
        its run address, every halfword; a code hook on one address costs nothing elsewhere): counter CSR
        instructions are emulated (unicorn would otherwise answer with host-derived values), and each `mret` tells
        the trap accounting where a handler returns (traps.py `_on_mret`)."""
        from unicorn import UC_HOOK_CODE

        import re

        seen = set()
        for _name, addr, data in self.elf.exec_sections:
            # Both are SYSTEM instructions (opcode 0x73: a first byte of 0x73 or 0xf3): only those offsets are decoded
            # (a kernel's text is megabytes; decoding every halfword took seconds).
            for match in re.finditer(b"[\x73\xf3]", data):
                off = match.start()
                if off % 2 or off + 4 > len(data):
                    continue
                insn = int.from_bytes(data[off:off + 4], "little")
                if insn == rv.INSN_MRET:
                    uc.hook_add(UC_HOOK_CODE, self._on_mret, begin=addr + off, end=addr + off)
                    continue
                dec = rv.decode_csr(insn)
                if dec and dec[3] in EMULATED_CSRS and addr + off not in seen:
                    seen.add(addr + off)
                    uc.hook_add(UC_HOOK_CODE, self._on_csr_insn, begin=addr + off, end=addr + off)
        self._csr_hook_addrs = seen

    def _on_csr_insn(self, uc, address: int, size: int, _ud) -> None:
        try:
            self._emulate_csr(address)
        except BaseException as e:
            self._hook_error = e
            self._request_stop(StopReason.ERROR)

    def _emulate_csr(self, address: int) -> bool:
        """Run a Zicsr instruction on a CSR the twin owns; False if the instruction at `address` is not one."""
        from unicorn.riscv_const import UC_RISCV_REG_PC

        uc = self._uc
        insn = self._insn_at(address)
        dec = rv.decode_csr(insn)
        if dec is None or dec[3] not in EMULATED_CSRS:
            return False
        op, rd, rs, csr = dec
        src = rs if op.endswith("i") else (uc.reg_read(gpr_const(rs)) if rs else 0)
        writes = op in ("csrrw", "csrrwi") or rs != 0
        # The block hook has already counted this instruction: the CSR sees everything before it.
        now_i = self._st[1] - 1
        now_c = now_i + self._st[2]
        old = self._csr_value(csr, now_c, now_i)
        if writes:
            if csr in READ_ONLY_CSRS:
                self._take_trap(rp.CAUSE_ILLEGAL, address)
                return True
            new = src if op in ("csrrw", "csrrwi") else (old | src if op in ("csrrs", "csrrsi") else old & ~src)
            self._csr_store(csr, new & 0xFFFFFFFF, now_c, now_i)
        if rd:
            uc.reg_write(gpr_const(rd), old)
        uc.reg_write(UC_RISCV_REG_PC, address + 4)
        return True

    def _csr_value(self, csr: int, now_c: int, now_i: int) -> int:
        if csr == rv.CSRS["mcountinhibit"]:
            return self.counters.inhibit
        if csr in COUNTER_CSRS:
            which, shift = COUNTER_CSRS[csr]
            now = now_c if which == PerfCounters.CY else now_i
            return (self.counters.read(which, now) >> shift) & 0xFFFFFFFF
        return READ_ONLY_CSRS[csr]

    def _csr_store(self, csr: int, value: int, now_c: int, now_i: int) -> None:
        if csr == rv.CSRS["mcountinhibit"]:
            self.counters.set_inhibit(value, now_c, now_i)
            return
        which, shift = COUNTER_CSRS[csr]
        now = now_c if which == PerfCounters.CY else now_i
        old = self.counters.read(which, now)
        mask = 0xFFFFFFFF << shift
        self.counters.write(which, (old & ~mask) | (value << shift), now)
