"""A Target that reads through the gdb we run inside (`gdb.selected_inferior()` and gdb's registers), for the xs commands (xipscope.gdb).

Only importable inside gdb's embedded Python. Run control stays gdb's own (continue, Ctrl-C): the commands built on
this target read a stopped program, as gdb's own commands do.
"""

from __future__ import annotations

import re

import gdb  # noqa: F401  (provided by gdb's embedded Python)

from ..chip.riscv import GPR_NAMES
from ..errors import CapabilityError, TargetError
from .base import MEMORY, REGISTERS, WRITE_MEMORY, Target
from .rsp import RegisterInfo

# A row of `maint print remote-registers`: name, gdb's number, ..., size in bytes, type, the server's number.
REMOTE_REGISTER_ROW = re.compile(r"^ (\S+)\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s+\S+\s+(\d+)\s+\d+\s*$")
TDESC_REG = re.compile(r'<reg name="([^"]+)"[^>]*\bregnum="(\d+)"')


class GdbInferiorTarget(Target):
    capabilities = frozenset({MEMORY, WRITE_MEMORY, REGISTERS})

    def __init__(self):
        inferior = gdb.selected_inferior()
        connection = getattr(inferior, "connection", None)
        details = getattr(connection, "details", None) if connection else None
        self.url = f"gdb-inferior:{details or inferior.num}"
        # "HOST:PORT" of a `target remote` over TCP (what `xs profile` reconnects to), else None
        self.remote_kind = getattr(connection, "type", None)     # "remote", "extended-remote", "native", ...
        self.remote_address = details if self.remote_kind in ("remote", "extended-remote") else None
        self._layout: list[RegisterInfo] | None = None

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
        return _raw_value(value)

    def read_registers(self) -> dict[str, int]:
        # all of them, zero too, as a `g` packet holds them (rsp:// reports the same set)
        return {name: self.read_register(name) for name in (*GPR_NAMES, "pc")}

    @property
    def registers(self) -> list[RegisterInfo]:
        """Every register gdb has from the server, numbered as the server numbers them (snapshots keep that)."""
        if self._layout is None:
            try:
                table = gdb.execute("maint print remote-registers", to_string=True)
            except gdb.error as e:
                raise TargetError(f"gdb cannot list the target's registers: {e}") from None
            try:
                csrs = {r.name for r in gdb.selected_frame().architecture().registers("csr")}
            except (gdb.error, ValueError):
                csrs = set()
            layout = []
            for line in table.splitlines():
                row = REMOTE_REGISTER_ROW.match(line)
                if row and row[1] != "''" and int(row[3]):
                    layout.append(RegisterInfo(row[1], int(row[4]), 8 * int(row[3]),
                                               "csr" if row[1] in csrs else None))
            self._layout = sorted(layout, key=lambda r: r.number)
        return self._layout

    @property
    def description_files(self) -> dict[str, bytes]:
        """The target description gdb uses, as one target.xml, when its register numbers are the server's."""
        try:
            xml = gdb.execute("maint print xml-tdesc", to_string=True)
        except gdb.error:
            return {}
        numbers = {name: int(number) for name, number in TDESC_REG.findall(xml)}
        if numbers != {r.name: r.number for r in self.registers}:
            return {}    # gdb's own default description, not the server's: snapshots build one from the layout
        return {"target.xml": xml.encode()}

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


def _raw_value(value) -> int:
    """A register's bits as an unsigned integer; a floating-point register (a float/double union) by its widest
    member, whose /x format is its raw bits."""
    code = value.type.strip_typedefs().code
    if code == gdb.TYPE_CODE_UNION:
        widest = max(value.type.strip_typedefs().fields(), key=lambda f: f.type.sizeof)
        value = value[widest.name]
        code = value.type.strip_typedefs().code
    bits = 8 * value.type.sizeof
    if code == gdb.TYPE_CODE_FLT:
        return int(value.format_string(format="x"), 16)
    return int(value) & ((1 << bits) - 1)
