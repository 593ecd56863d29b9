"""Frame-pointer unwinding for rv32 code built with frame pointers (Linux CONFIG_FRAME_POINTER, or -fno-omit-frame-pointer).

The rules are the kernel's own (arch/riscv/kernel/stacktrace.c, see ../shared/reference/linux-kernel.md): a frame record
{saved fp, saved ra} sits just below fp, so on rv32 the caller's fp is at fp-8 and the return address at fp-4. A leaf
function saves only fp, at fp-4; the first frame detects that by the slot holding a plausible frame pointer and takes the
return address from the ra register instead.

The unwinder reads words through a callable, so the same code walks a live target, a snapshot, or a block of stack
memory a profiler read in one transfer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

LINUX_THREAD_SIZE = 8 * 1024   # rv32 kernel stacks (THREAD_SIZE_ORDER 1 with 4 KiB pages)
MAX_FRAMES = 64


def linux_stack_top(sp: int) -> int:
    """ALIGN(sp, THREAD_SIZE), the upper bound the kernel's own unwinder allows a frame pointer."""
    return (sp + LINUX_THREAD_SIZE - 1) & ~(LINUX_THREAD_SIZE - 1)


@dataclass(frozen=True)
class Unwound:
    pcs: list[int]          # the trap/sample pc first, then each caller's return address
    stop_reason: str        # why the walk ended, for people reading a short backtrace


def unwind_frame_pointers(pc: int, sp: int, fp: int, ra: int, *,
                          read_word: Callable[[int], int | None],
                          is_code: Callable[[int], bool],
                          stack_top: Callable[[int], int] = linux_stack_top,
                          max_frames: int = MAX_FRAMES) -> Unwound:
    """Walk the frame-pointer chain from a register set; read_word returns None where memory can't be read."""
    pcs = [pc]
    first = True
    while len(pcs) < max_frames:
        top = stack_top(sp)
        if fp & 7 or not sp + 8 <= fp <= top:
            return Unwound(pcs, f"frame pointer {fp:#x} outside the stack [{sp + 8:#x}, {top:#x}] or misaligned")
        saved_fp = read_word(fp - 8)
        saved_ra = read_word(fp - 4)
        if saved_ra is None or saved_fp is None:
            return Unwound(pcs, f"stack memory at {fp - 8:#x} could not be read")
        if first and sp + 8 <= saved_ra <= top and saved_ra & 7 == 0:
            # A leaf function: fp-4 holds the caller's fp, and the return address is still in ra.
            next_fp, next_pc = saved_ra, ra
        else:
            next_fp, next_pc = saved_fp, saved_ra
        first = False
        if not is_code(next_pc):
            return Unwound(pcs, f"return address {next_pc:#x} is not in code")
        pcs.append(next_pc)
        sp, fp = fp, next_fp
    return Unwound(pcs, f"stopped after {max_frames} frames")
