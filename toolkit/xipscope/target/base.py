"""The one Target protocol every transport implements; applications take a Target and never know the transport."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

# Capability names a transport may list in `Target.capabilities`.
MEMORY = "memory"          # read_memory
REGISTERS = "registers"    # read_registers / read_register (GPRs, pc, CSRs by name)
RUN_CONTROL = "run-control"  # halt / resume / state


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
