"""A Target that reads through the gdb we run inside (`gdb.selected_inferior()` and gdb's registers), for gdb_scripts/.

Only importable inside gdb's embedded Python. Run control stays gdb's own (continue, Ctrl-C): the commands built on
this target read a stopped program, as gdb's own commands do.
"""

from __future__ import annotations

import gdb  # noqa: F401  (provided by gdb's embedded Python)

from ..chip.riscv import GPR_NAMES
from ..errors import CapabilityError, TargetError
from .base import MEMORY, REGISTERS


class GdbInferiorTarget:
    capabilities = frozenset({MEMORY, REGISTERS})

    def __init__(self):
        inferior = gdb.selected_inferior()
        connection = getattr(inferior, "connection", None)
        details = getattr(connection, "details", None) if connection else None
        self.url = f"gdb-inferior:{details or inferior.num}"
        self.remote_address = details     # "HOST:PORT" for `target remote`, else None

    def _require_stopped(self, what: str) -> None:
        thread = gdb.selected_thread()
        if thread is None:
            raise TargetError(f"cannot {what}: gdb has no running program (connect with `target remote HOST:PORT`)")
        if thread.is_running():
            raise TargetError(f"cannot {what} while the program runs; interrupt it (Ctrl-C) first")

    def read_memory(self, address: int, size: int) -> bytes:
        self._require_stopped("read memory")
        try:
            return gdb.selected_inferior().read_memory(address, size).tobytes()
        except gdb.MemoryError as e:
            raise TargetError(f"cannot read memory at {address:#x} ({size} bytes): {e}") from None

    def read_register(self, name: str) -> int:
        self._require_stopped(f"read {name}")
        try:
            value = gdb.newest_frame().read_register(name)
        except ValueError:
            raise TargetError(f"gdb knows no register named {name!r} on this target") from None
        if value.is_optimized_out:
            raise CapabilityError(f"{name} is unavailable on this target")
        return int(value) & 0xFFFFFFFF

    def read_registers(self) -> dict[str, int]:
        return {name: self.read_register(name) for name in (*GPR_NAMES[1:], "pc")}

    def state(self) -> str:
        thread = gdb.selected_thread()
        return "running" if thread is not None and thread.is_running() else "halted"

    def halt(self) -> None:
        raise CapabilityError("inside gdb, gdb keeps run control: interrupt the program with Ctrl-C")

    def resume(self) -> None:
        raise CapabilityError("inside gdb, gdb keeps run control: use `continue`")

    def write_memory(self, address: int, data: bytes) -> None:
        self._require_stopped("write memory")
        try:
            gdb.selected_inferior().write_memory(address, data)
        except gdb.MemoryError as e:
            raise TargetError(f"cannot write memory at {address:#x}: {e}") from None

    def close(self) -> None:
        pass
