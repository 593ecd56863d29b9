"""The one Target protocol every transport implements; applications take a Target and never know the transport."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

# Capability names a transport may list in `Target.capabilities`.
MEMORY = "memory"          # read_memory
REGISTERS = "registers"    # read_registers / read_register (GPRs, pc, CSRs by name)
RUN_CONTROL = "run-control"  # halt / resume / state
ARM_REGISTERS = "arm-registers"  # r0-r12, sp, lr, pc, xpsr, msp, psp instead of RISC-V's: an RP2350 core in Arm mode

# What xipscope gives on an RP2350 core in Arm mode (pyocd://...?core=arm, through pyOCD's own rp2350 target).
ARM_MODE_FEATURES = ("In Arm mode xipscope reads memory (also while the core runs), registers and run control, so "
                     "profile (pc and XIP counters, by function and region; no --stacks or --cycles), dmesg and "
                     "dump apply; trap, doctor, snapshot, stacks and mcycle are for the RISC-V cores.")


@runtime_checkable
class Target(Protocol):
    """A running or stopped RP2350 (or a stand-in for one), reached one way or another.

    Register names are the RISC-V ABI names gdb uses: x1..x31 as `ra`, `sp`, ..., `pc`, and CSRs by their
    lower-case names (`mcause`, `mepc`, `mstatus`, `mtval`, ...).
    """

    url: str
    capabilities: frozenset[str]

    def read_memory(self, address: int, size: int) -> bytes: ...

    def read_registers(self) -> dict[str, int]: ...

    def read_register(self, name: str) -> int: ...

    def halt(self) -> None: ...

    def resume(self) -> None: ...

    def state(self) -> str:
        """'halted' or 'running'."""
        ...

    def close(self) -> None: ...


def require_riscv(target, what: str) -> None:
    """Stop with a clear error when `what` (a RISC-V feature: traps, CSRs, frame-pointer stacks) meets an Arm core."""
    from ..errors import CapabilityError
    if ARM_REGISTERS in getattr(target, "capabilities", ()):
        raise CapabilityError(f"{target.url}: {what} is for the RP2350's RISC-V cores (Hazard3), and this target is "
                              f"a core in Arm mode. {ARM_MODE_FEATURES}")
