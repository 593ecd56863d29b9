"""`gdb://HOST:PORT`: a Target that drives gdb-multiarch over GDB/MI (pygdbmi), for users who want gdb's own connection handling.

pygdbmi as documented decides that a reply is over by waiting for 0.2 s of silence, so every command costs at least
that (cs01/pygdbmi #50, #89, #104). We use pygdbmi to start gdb and parse MI records, but give every command a token
and read records until the result record carrying that token arrives: a command costs what gdb costs.
"""

from __future__ import annotations

import select
import shutil
import time

from ..errors import CapabilityError, TargetError
from .base import MEMORY, REGISTERS, RUN_CONTROL, Target

GDB = "gdb-multiarch"
REGISTER_ALIASES = {"s0": "fp", "x8": "fp"}


class GdbMiTarget(Target):
    """One gdb-multiarch process, connected with `target remote` to HOST:PORT, driven in MI async mode."""

    capabilities = frozenset({MEMORY, REGISTERS, RUN_CONTROL})

    def __init__(self, host: str, port: int, timeout: float = 5.0, gdb: str = GDB):
        from pygdbmi.gdbcontroller import GdbController

        if shutil.which(gdb) is None:
            raise TargetError(f"gdb:// needs {gdb} on PATH (Debian package gdb-multiarch; `make test` installs it)")
        self.url = f"gdb://{host}:{port}"
        self.timeout = timeout
        self._token = 0
        self._state = "running"
        self._stops: list[dict] = []
        self._register_numbers: dict[str, int] | None = None
        # No extra wait for "additional output": we know when a reply is complete.
        self._gdb = GdbController([gdb, "--nx", "--quiet", "--interpreter=mi3"],
                                  time_to_check_for_additional_output_sec=0)
        self._io = self._gdb.io_manager
        try:
            self.command("-gdb-set mi-async on")
            self.command("-gdb-set confirm off")
            self.command("-gdb-set architecture riscv:rv32")
            self.command("-gdb-set tcp auto-retry off")   # a refused connection is an answer, not a reason to wait 15 s
            self.command(f"-target-select remote {host}:{port}", timeout=max(timeout, 10.0))
            self._state = "halted"    # gdb stops the target when it connects
        except Exception:
            self._gdb.exit()
            raise

    # -- MI plumbing -------------------------------------------------------------------------------------------

    def command(self, mi_command: str, timeout: float | None = None) -> dict:
        """Send one MI command; return its result record's payload, raising TargetError on ^error."""
        self._token += 1
        token = self._token
        try:
            self._io.stdin.write(f"{token}{mi_command}\n".encode())
            self._io.stdin.flush()
        except (BrokenPipeError, OSError):
            raise TargetError(f"{self.url}: gdb has exited ({self._exit_note()})") from None
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for record in self._read_records(deadline, f"the reply to {mi_command!r}"):
                if record["type"] == "result" and record.get("token") == token:
                    if record["message"] == "error":
                        message = (record.get("payload") or {}).get("msg", "unknown error")
                        raise TargetError(f"{self.url}: gdb refused {mi_command!r}: {message}")
                    if record["message"] == "running":
                        self._state = "running"
                    return record.get("payload") or {}

    def _read_records(self, deadline: float, expected: str) -> list[dict]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TargetError(f"{self.url}: timed out waiting for {expected}")
        ready, _, _ = select.select([self._io.stdout_fileno], [], [], remaining)
        if not ready:
            raise TargetError(f"{self.url}: timed out waiting for {expected}")
        records = self._io.get_gdb_response(timeout_sec=0, raise_error_on_timeout=False)
        if not records and self._gdb.gdb_process.poll() is not None:
            raise TargetError(f"{self.url}: gdb has exited ({self._exit_note()})")
        for record in records:
            if record["type"] == "notify" and record["message"] == "stopped":
                self._state = "halted"
                self._stops.append(record.get("payload") or {})
            elif record["type"] == "notify" and record["message"] == "running":
                self._state = "running"
        return records

    def _exit_note(self) -> str:
        code = self._gdb.gdb_process.poll()
        return "still running" if code is None else f"exit status {code}"

    # -- Target protocol ------------------------------------------------------------------------------------------

    def state(self) -> str:
        return self._state

    def _require_halted(self, what: str) -> None:
        if self._state != "halted":
            raise TargetError(f"{self.url}: cannot {what} while the target runs; halt it first")

    def halt(self) -> None:
        if self._state == "halted":
            return
        self._stops.clear()
        self.command("-exec-interrupt")
        deadline = time.monotonic() + self.timeout
        while self._state != "halted":
            self._read_records(deadline, "the target to stop after -exec-interrupt")

    def resume(self) -> None:
        self._require_halted("resume")
        self.command("-exec-continue")

    def read_memory(self, address: int, size: int) -> bytes:
        self._require_halted("read memory")
        try:
            payload = self.command(f"-data-read-memory-bytes {address:#x} {size}")
        except TargetError as e:
            raise TargetError(f"{self.url}: cannot read memory at {address:#x} ({size} bytes): {e}") from None
        out = bytearray()
        expected = address
        for block in payload.get("memory", []):
            begin = int(block["begin"], 16) + int(block.get("offset", "0x0"), 16)
            if begin != expected:
                break
            data = bytes.fromhex(block["contents"])
            out += data
            expected += len(data)
        if len(out) < size:
            raise TargetError(f"{self.url}: cannot read memory at {address + len(out):#x} "
                              f"(wanted {size} bytes from {address:#x}); is that address mapped?")
        return bytes(out[:size])

    def _numbers(self) -> dict[str, int]:
        if self._register_numbers is None:
            names = self.command("-data-list-register-names")["register-names"]
            self._register_numbers = {name: i for i, name in enumerate(names) if name}
        return self._register_numbers

    def _values(self, numbers: list[int]) -> dict[int, int]:
        payload = self.command("-data-list-register-values --skip-unavailable x " + " ".join(map(str, numbers)))
        return {int(v["number"]): int(v["value"], 16) for v in payload.get("register-values", [])}

    def read_registers(self) -> dict[str, int]:
        """The GPRs and pc (what one `g` packet holds), by name; CSRs one by one with read_register."""
        self._require_halted("read registers")
        numbers = self._numbers()
        wanted = {numbers[n]: n for n in numbers if numbers[n] <= numbers.get("pc", 32)}
        return {wanted[i]: value for i, value in self._values(sorted(wanted)).items() if i in wanted}

    def read_register(self, name: str) -> int:
        self._require_halted(f"read {name}")
        numbers = self._numbers()
        number = numbers.get(REGISTER_ALIASES.get(name, name))
        if number is None:
            raise TargetError(f"{self.url}: gdb knows no register named {name!r} on this target")
        values = self._values([number])
        if number not in values:
            raise CapabilityError(f"{self.url}: {name} is unavailable on this target")
        return values[number]

    def close(self) -> None:
        try:
            if self._gdb.gdb_process is not None and self._gdb.gdb_process.poll() is None:   # not closed yet
                if self._state == "running":
                    self.halt()
                self.command("-target-detach")
                self.command("-gdb-exit", timeout=1.0)
        except TargetError:
            pass   # gdb or the server is gone: stopping gdb is all that is left to do
        finally:
            self._gdb.exit()
