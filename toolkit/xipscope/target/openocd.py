"""`openocd://HOST:6666[?hart=1]`: a Target over OpenOCD's Tcl RPC server (a command, then its reply, each ended by 0x1a).

At connect it picks OpenOCD's RISC-V target for the hart (`hart=0`, the default, or 1: the target whose `-coreid` it
is) and makes it current; when OpenOCD has no RISC-V target it says which config to start it with (the Raspberry Pi
fork's `target/rp2350-riscv.cfg`; its `rp2350.cfg` defaults to the Cortex-M33 cores), and when the hart is unavailable
(a chip booted in Arm mode) it says how to switch (rp2350.md "Debug access").

Every request is one Tcl script wrapped in `catch`, so a failing command comes back as an error we can name instead of
as plain text. OpenOCD 0.12 gives us `get_reg -force` (registers and CSRs by name, read from the hart, not the cache),
`read_memory ADDR 32 COUNT` (words), `halt`/`resume` and `TARGET curstate`. A sampler (TclSampler) takes a whole
sample - halt, pc, the reads asked for (the profiler's: XIP_CTRL CTR_HIT/CTR_ACC), resume - in one script, i.e. one
round trip to OpenOCD.

OpenOCD 0.12 on RISC-V reads a word it cannot reach inside a multi-word `read_memory` as 0 and reports success
(riscv-013.c read_memory_progbuf does so on purpose, for IDE memory views that read ahead); only a one-word read
fails. So each block's first and last words are also read alone, in the same script: a block that starts or ends
outside memory fails with a clear error, as a hole in the middle of a block would not.
"""

from __future__ import annotations

import re
import socket

from ..chip import riscv as rv
from ..chip import rp2350 as rp
from ..errors import TargetError
from .base import MEMORY, REGISTERS, RUN_CONTROL, SAMPLE, WRITE_MEMORY, Sample, SampleRequest, Target, describe_reads

TERMINATOR = b"\x1a"
DEFAULT_PORT = 6666
READ_BLOCK_WORDS = 1024        # words per read_memory command (4 KiB; the reply is ~11 characters a word)
# The CSRs read_registers() adds to the GPRs and pc: the ones a trap or profile looks at.
REGISTER_CSRS = rv.REGISTER_CSRS
_OPENOCD_NAME = {"s0": "fp", "x8": "fp"}   # OpenOCD calls x8 "fp", like gdb's register list
_GET_REG = re.compile(r"(\S+) (0x[0-9a-fA-F]+)")


class OpenOcdTarget(Target):
    """One OpenOCD Tcl RPC connection; the RISC-V target for `hart`, made OpenOCD's current one, is what we talk to."""

    capabilities = frozenset({MEMORY, WRITE_MEMORY, REGISTERS, RUN_CONTROL, SAMPLE})

    def __init__(self, host: str, port: int = DEFAULT_PORT, timeout: float = 5.0, hart: int = 0):
        self.url = f"openocd://{host}:{port}" + (f"?hart={hart}" if hart else "")
        self.hart = hart
        self.round_trips = 0
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise TargetError(f"{self.url}: cannot connect to OpenOCD's Tcl server: {e.strerror or e}; is OpenOCD "
                              f"running with `tcl_port {port}` (its default is 6666)?") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""
        self._has_sba: bool | None = None
        try:
            self.version = self.command("version")
            if "Open On-Chip Debugger" not in self.version:
                raise TargetError(f"{self.url}: expected OpenOCD's Tcl server, but `version` answered "
                                  f"{self.version[:60]!r}")
            self.target_name = self._riscv_target(hart)
        except Exception:
            self._sock.close()
            raise

    def _riscv_target(self, hart: int) -> str:
        """The name of OpenOCD's RISC-V target for `hart`, made current; a TargetError saying what to do if there is
        none or its hart is unavailable."""
        found = self.command("set r {}; foreach t [target names] {lappend r $t [$t cget -type] [$t cget -coreid]}; "
                             "set r").split()
        targets = [(found[i], found[i + 1], int(found[i + 2])) for i in range(0, len(found) - 2, 3)]
        riscv = [(name, coreid) for name, kind, coreid in targets if kind == "riscv"]
        listed = ", ".join(f"{name} ({kind})" for name, kind, _ in targets) or "none"
        if not riscv:
            raise TargetError(f"{self.url}: OpenOCD has no RISC-V target (its targets: {listed}); it was started "
                              "with a config for the Arm cores (the Raspberry Pi fork's target/rp2350.cfg defaults "
                              "to the Cortex-M33 cores). Start it with the fork's target/rp2350-riscv.cfg, e.g. "
                              "`openocd -f interface/cmsis-dap.cfg -f target/rp2350-riscv.cfg`, or use "
                              "pyocd://...?core=arm for the Arm cores")
        name = next((n for n, coreid in riscv if coreid == hart or coreid == -1 and hart == 0), None)
        if name is None:
            raise TargetError(f"{self.url}: OpenOCD has no RISC-V target for hart {hart} (its targets: {listed}); "
                              "rp2350-riscv.cfg creates rv0 and rv1 (-coreid 0 and 1)")
        self.command(f"targets {name}")
        state = self.command(f"{name} curstate").strip()
        if state not in ("halted", "running"):
            try:
                dmstatus = int(self.command(f"{name} riscv dmi_read {DM_DMSTATUS:#x}").strip(), 16)
            except (TargetError, ValueError):
                dmstatus = 0
            if state == "unavailable" or dmstatus & DMSTATUS_ANYUNAVAIL:
                raise TargetError(f"{self.url}: hart {hart} ({name}) is unavailable (curstate {state}, dmstatus "
                                  f"{dmstatus:#010x}): {rp.ARM_BOOT_REMEDY}")
            raise TargetError(f"{self.url}: {name} is in state {state!r}, not halted or running; OpenOCD could not "
                              "examine it (see its log)")
        return name

    def __repr__(self) -> str:
        return f"<OpenOcdTarget {self.url} {self.target_name}>"

    # --- the Tcl RPC ---------------------------------------------------------------------------------------------
    def evaluate(self, script: str) -> str:
        """Send one Tcl script and return OpenOCD's reply text as is (errors are not told apart here)."""
        try:
            self._sock.sendall(script.encode() + TERMINATOR)
            while TERMINATOR not in self._buffer:
                data = self._sock.recv(65536)
                if not data:
                    raise TargetError(f"{self.url}: OpenOCD closed the Tcl connection (after {script[:60]!r}); "
                                      "did it exit? see its log")
                self._buffer += data
        except socket.timeout:
            raise TargetError(f"{self.url}: no reply from OpenOCD within {self._sock.gettimeout()} s to "
                              f"{script[:60]!r}") from None
        except OSError as e:
            raise TargetError(f"{self.url}: the Tcl connection failed: {e.strerror or e}") from None
        reply, _, self._buffer = self._buffer.partition(TERMINATOR)
        self.round_trips += 1
        return reply.decode("utf-8", "replace")

    def command(self, script: str) -> str:
        """Run a Tcl script; its result, or a TargetError carrying OpenOCD's message if it failed."""
        reply = self.evaluate(f'set xipscope_reply "[catch {{{script}}} xipscope_result] $xipscope_result"')
        code, _, result = reply.partition(" ")
        if code != "0":
            raise TargetError(f"{self.url}: OpenOCD failed `{script[:80]}`: {result.strip() or f'error {code}'}")
        return result

    # --- Target protocol -----------------------------------------------------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        """Whole words through `read_memory` (OpenOCD picks program buffer or System Bus Access), in 4 KiB blocks."""
        if size <= 0:
            return b""
        first = address & ~3
        end = (address + size + 3) & ~3
        out = bytearray()
        for block in range(first, end, 4 * READ_BLOCK_WORDS):
            count = min(READ_BLOCK_WORDS, (end - block) // 4)
            last = block + 4 * (count - 1)
            check = (f"{self.target_name} read_memory {block:#x} 32 1; {self.target_name} read_memory {last:#x} 32 1; "
                     if count > 1 else "")
            try:
                words = self.command(f"{check}{self.target_name} read_memory {block:#x} 32 {count}").split()
            except TargetError as e:
                raise TargetError(f"{e}; wanted {size} bytes at {address:#x}, got {len(out)} bytes from "
                                  f"{first:#x}; is the address mapped?") from None
            if len(words) != count:
                raise TargetError(f"{self.url}: read_memory at {block:#x} returned {len(words)} words, expected "
                                  f"{count}")
            for word in words:
                out += int(word, 16).to_bytes(4, "little")
        skip = address - first
        return bytes(out[skip:skip + size])

    def write_memory(self, address: int, data: bytes) -> None:
        """Bytes through `write_memory ADDR 8 {...}` in 4 KiB blocks (OpenOCD picks the access method)."""
        for offset in range(0, len(data), 4 * READ_BLOCK_WORDS):
            chunk = data[offset:offset + 4 * READ_BLOCK_WORDS]
            values = " ".join(f"{b:#x}" for b in chunk)
            try:
                self.command(f"{self.target_name} write_memory {address + offset:#x} 8 {{{values}}}")
            except TargetError as e:
                raise TargetError(f"{e}; wrote {offset} of {len(data)} bytes at {address:#x}") from None

    def read_register(self, name: str) -> int:
        return self._get_registers([name])[name]

    def read_registers(self) -> dict[str, int]:
        return self._get_registers(list(rv.GPR_NAMES) + ["pc"] + list(REGISTER_CSRS))

    def _get_registers(self, names: list[str]) -> dict[str, int]:
        wanted = {_OPENOCD_NAME.get(n.lower(), n.lower()): n for n in names}
        reply = self.command(f"{self.target_name} get_reg -force {{{' '.join(wanted)}}}")
        values = {wanted[m.group(1)]: int(m.group(2), 16) for m in _GET_REG.finditer(reply)
                  if m.group(1) in wanted}
        missing = [n for n in names if n not in values]
        if missing:
            raise TargetError(f"{self.url}: OpenOCD gave no value for {', '.join(missing)} (reply {reply[:80]!r}); "
                              "is the target halted?")
        return values

    def halt(self) -> None:
        self.command("halt")
        if self.state() != "halted":
            raise TargetError(f"{self.url}: `halt` did not stop {self.target_name} (state {self.state()})")

    def resume(self) -> None:
        self.command("resume")

    def state(self) -> str:
        """'halted' or 'running' (OpenOCD's other states, e.g. 'reset' or 'unknown', are passed on)."""
        return self.command(f"{self.target_name} curstate").strip()

    def close(self) -> None:
        self._sock.close()

    # --- beyond the protocol -------------------------------------------------------------------------------------
    def sampler(self, request: SampleRequest) -> "TclSampler":
        """The batched sample (base.Sampler): one Tcl script, one round trip to OpenOCD, per sample."""
        return TclSampler(self, request)

    def _probe_sba(self) -> bool:
        """Does the Debug Module offer 32-bit System Bus Access (sbcs.sbversion 1, sbaccess32)?"""
        try:
            sbcs = int(self.command(f"{self.target_name} riscv dmi_read {DM_SBCS:#x}").strip(), 16)
        except (TargetError, ValueError):
            return False
        return (sbcs >> 29) == 1 and bool(sbcs & 4) and (sbcs >> 5) & 0x7F >= 32


# RISC-V Debug Module registers (debug spec 0.13.2) the sampler drives through `riscv dmi_read/dmi_write`.
DM_DMSTATUS, DM_SBCS, DM_SBADDRESS0, DM_SBDATA0 = 0x11, 0x38, 0x39, 0x3C
DMSTATUS_ANYUNAVAIL = 1 << 12
SBCS_WORD_AUTOINCREMENT = (2 << 17) | (1 << 16)                       # sbaccess 32-bit, sbautoincrement
SBCS_READ_ON_ADDR_AND_DATA = SBCS_WORD_AUTOINCREMENT | (1 << 20) | (1 << 15)   # + sbreadonaddr, sbreadondata
SBCS_READ_ON_ADDR = SBCS_WORD_AUTOINCREMENT | (1 << 20)                 # + sbreadonaddr
SBCS_ERRORS = (1 << 22) | (7 << 12)                                     # sbbusyerror, sberror


class TclSampler:
    """One sample of a running target in one Tcl round trip: halt, the registers by `get_reg -force`, each memory read,
    resume. The reads are made while halted, so they belong to the same instant as the pc.

    Word-aligned reads go through the Debug Module's System Bus Access with raw `riscv dmi_write/dmi_read` (for two
    words 6 DMI accesses), not `read_memory`, which on OpenOCD 0.12 takes ~55 (s0/s1 saves, dcsr and mstatus reads, a
    fence) and leaves registers dirty for the resume to write back. Without SBA, or unaligned, they go through
    `read_memory`. Each read ends with sbcs read back, so a bus error is named.
    """

    cycle_counter = "mcycle"

    def __init__(self, target: OpenOcdTarget, request: SampleRequest):
        self.target, self.request = target, request
        if target._has_sba is None:
            target._has_sba = target._probe_sba()
        t = target.target_name
        self._names = list(request.registers) + (["mcycle"] if request.cycles else [])
        wanted = " ".join(_OPENOCD_NAME.get(n.lower(), n.lower()) for n in self._names)
        script = [f"halt; set s [{t} get_reg -force {{{wanted}}}]"]
        for address, size in request.reads:
            words = (size + 3) // 4
            if target._has_sba and address % 4 == 0 and size % 4 == 0:
                # The first sbcs write also clears (W1C) errors left from earlier accesses; sbreadondata stays on
                # until the last word, so no read past the request reaches the bus.
                on_data = SBCS_READ_ON_ADDR_AND_DATA if words > 1 else SBCS_READ_ON_ADDR
                script.append(f"{t} riscv dmi_write {DM_SBCS:#x} {on_data | SBCS_ERRORS:#x}; "
                              f"{t} riscv dmi_write {DM_SBADDRESS0:#x} {address:#x}")
                script += [f"lappend s [{t} riscv dmi_read {DM_SBDATA0:#x}]"] * (words - 1)
                if words > 1:
                    script.append(f"{t} riscv dmi_write {DM_SBCS:#x} {SBCS_WORD_AUTOINCREMENT:#x}")
                script.append(f"lappend s [{t} riscv dmi_read {DM_SBDATA0:#x}] [{t} riscv dmi_read {DM_SBCS:#x}]")
            else:
                first = address & ~3
                words = (address + size - first + 3) // 4
                script.append(f"lappend s {{*}}[{t} read_memory {first:#x} 32 {words}] 0")
        script.append("resume; set s" if request.resume else "set s")
        self._script = "; ".join(script)
        self._words = [((address + size - (address & ~3) + 3) // 4) for address, size in request.reads]
        what = ", ".join(self._names + describe_reads(request))
        self.description = (f"openocd: halt, {what}{', resume' if request.resume else ''} in one round trip "
                            "(one Tcl script)")

    def take(self) -> Sample:
        target, request = self.target, self.request
        before = target.round_trips
        reply = target.command(self._script)
        tokens = reply.replace("{", " ").replace("}", " ").split()     # dmi_read's values come braced, with a newline
        count = len(self._names)
        try:
            pairs = {name.lower(): int(value, 16) for name, value in zip(tokens[0:2 * count:2], tokens[1:2 * count:2])}
            values = [pairs[_OPENOCD_NAME.get(n.lower(), n.lower())] for n in self._names]
            numbers = [int(v, 16) for v in tokens[2 * count:]]
        except (ValueError, KeyError):
            numbers = values = None
        if values is None or len(numbers) != sum(w + 1 for w in self._words):
            raise TargetError(f"{target.url}: a sample came back as {reply[:80]!r}; expected "
                              f"'{' 0x... '.join(self._names)} 0x...' then {sum(self._words)} words and sbcs")
        registers = dict(zip(self._names, values))
        cycles = registers.pop("mcycle") & 0xFFFFFFFF if request.cycles else None
        memory = []
        for (address, size), words in zip(request.reads, self._words):
            chunk, sbcs = numbers[:words], numbers[words]
            del numbers[:words + 1]
            if sbcs & SBCS_ERRORS:
                raise TargetError(f"{target.url}: System Bus Access failed reading {size} bytes at {address:#x} "
                                  f"(sbcs {sbcs:#010x}: sberror {(sbcs >> 12) & 7}, sbbusyerror {(sbcs >> 22) & 1})")
            data = b"".join(w.to_bytes(4, "little") for w in chunk)
            skip = address - (address & ~3)
            memory.append(data[skip:skip + size])
        return Sample(registers, tuple(memory), cycles, target.round_trips - before, None)

    def details(self) -> dict | None:
        return None
