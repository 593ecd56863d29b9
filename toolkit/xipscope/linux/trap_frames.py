"""The trap frames (struct pt_regs) a RISC-V Linux kernel saved on its stack, found in target memory.

When a kernel's fault path faults again (on an RP2350 with the kernel in PSRAM, die() -> oops_enter() ->
debug_locks_off()'s xchg is an AMO that faults like the first one), each fault pushes one more pt_regs below the last,
so the stack holds the whole history, innermost lowest: the first cause is the frame at the highest address.

Facts (../shared/reference/linux-kernel.md, `arch/riscv/kernel/entry.S` and `asm/ptrace.h`): struct pt_regs on rv32 is
144 bytes (a multiple of 16, so PT_SIZE_ON_STACK is the same): epc at 0, then x1..x31 at 4 * n, then status,
badaddr, cause, orig_a0. For a trap taken in kernel mode, handle_exception stores the interrupted sp, which is the
frame's own end (frame + PT_SIZE_ON_STACK), in the frame's sp slot; with CONFIG_RISCV_M_MODE `status` is mstatus, so
its MPP field says M-mode. Those three together pick the frames out of a stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..chip import riscv as rv

PT_REGS_RV32 = {"size": 144, "epc": 0, "status": 128, "badaddr": 132, "cause": 136}
PT_SIZE_ON_STACK = 144       # sizeof(struct pt_regs) rounded up to 16 (STACK_ALIGN): already a multiple
THREAD_SIZE = 8 * 1024       # rv32 kernel stacks; a frame further than this above the last one is another stack's
MPP_MACHINE = 3
_SCAN_CHUNK = 1024


@dataclass(frozen=True)
class TrapFrame:
    address: int             # where the pt_regs sits
    epc: int
    status: int
    badaddr: int
    cause: int
    registers: dict          # the GPRs as they were at the trap, under gdb's names (zero omitted)

    def to_json(self) -> dict:
        return {"address": self.address, "epc": self.epc, "status": self.status, "badaddr": self.badaddr,
                "cause": self.cause}


def _frame_at(buf: bytes, offset: int, address: int, is_kernel_text: Callable[[int], bool]) -> TrapFrame | None:
    size = PT_REGS_RV32["size"]
    if offset + size > len(buf):
        return None

    def word(at: int) -> int:
        return int.from_bytes(buf[offset + at:offset + at + 4], "little")

    if word(4 * rv.GPR_INDEX["sp"]) != address + PT_SIZE_ON_STACK:
        return None
    status, cause, epc = word(PT_REGS_RV32["status"]), word(PT_REGS_RV32["cause"]), word(PT_REGS_RV32["epc"])
    if (status & rv.MSTATUS_MPP_MASK) >> rv.MSTATUS_MPP_SHIFT != MPP_MACHINE:
        return None
    if (cause & 0x7FFFFFFF) >= 32 or not is_kernel_text(epc):
        return None
    registers = {name: word(4 * n) for n, name in enumerate(rv.GPR_NAMES) if n}
    return TrapFrame(address, epc, status, word(PT_REGS_RV32["badaddr"]), cause, registers)


def find_kernel_trap_frames(read: Callable[[int, int], bytes | None], sp: int,
                            is_kernel_text: Callable[[int], bool], max_bytes: int = 1 << 20) -> list[TrapFrame]:
    """The kernel-mode trap frames on the stack above `sp`, innermost (lowest) first.

    Scans upward from sp, word by word, as long as a frame was found within THREAD_SIZE below the scan's end (and
    at most `max_bytes` in all); `read(address, size)` gives memory, None where it can't be read.
    """
    start = sp & ~3
    end = start + THREAD_SIZE
    frames: list[TrapFrame] = []
    buf, buf_start = b"", start
    pos = start
    while pos < end and pos - start < max_bytes:
        need = pos + PT_REGS_RV32["size"] - (buf_start + len(buf))
        if need > 0:
            chunk = read(buf_start + len(buf), max(need, _SCAN_CHUNK))
            if not chunk:
                break
            buf += chunk
        frame = _frame_at(buf, pos - buf_start, pos, is_kernel_text)
        if frame is None:
            pos += 4
            continue
        frames.append(frame)
        pos += PT_SIZE_ON_STACK
        end = max(end, pos + THREAD_SIZE)
        # Drop what lies below the scan: the buffer holds at most a frame's worth behind it.
        drop = (pos - buf_start) & ~3
        buf, buf_start = buf[drop:], buf_start + drop
    return frames
