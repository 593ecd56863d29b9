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
DM_DATA0, DM_DMCONTROL, DM_ABSTRACTCS, DM_COMMAND, DM_PROGBUF0 = 0x04, 0x10, 0x16, 0x17, 0x20
DMSTATUS_ANYUNAVAIL = 1 << 12
DMSTATUS_ALLHALTED = 1 << 9
DMCONTROL_DMACTIVE, DMCONTROL_HALTREQ, DMCONTROL_RESUMEREQ = 1, 1 << 31, 1 << 30
ABSTRACTCS_CMDERR = 7 << 8
# Access Register commands on s0 (x8, regno 0x1008), 32 bits: read it into data0, write it from data0; postexec
# runs the program buffer after the transfer (alone: without one).
COMMAND_READ_S0, COMMAND_WRITE_S0 = (2 << 20) | (1 << 17) | 0x1008, (2 << 20) | (1 << 17) | (1 << 16) | 0x1008
COMMAND_POSTEXEC = 1 << 18
SBCS_WORD_AUTOINCREMENT = (2 << 17) | (1 << 16)                       # sbaccess 32-bit, sbautoincrement
SBCS_READ_ON_ADDR_AND_DATA = SBCS_WORD_AUTOINCREMENT | (1 << 20) | (1 << 15)   # + sbreadonaddr, sbreadondata
SBCS_READ_ON_ADDR = SBCS_WORD_AUTOINCREMENT | (1 << 20)                 # + sbreadonaddr
SBCS_ERRORS = (1 << 22) | (7 << 12)                                     # sbbusyerror, sberror


class TclSampler:
    """One sample of a running target in one Tcl round trip. The reads are made while halted, so they belong to the
    same instant as the pc.

    Where it can (System Bus Access, word-aligned reads, pc and mcycle only, the hart resumed after), the script is the
    Debug Module sequence itself through `riscv dmi_write/dmi_read`: haltreq; dmstatus; dpc (and mcycle) through the
    program buffer, s0 saved and put back through data0; abstractcs; each read by SBA; resumereq. OpenOCD's own
    `halt`/`get_reg`/`resume` cost more at the probe (OpenOCD 0.12 counted at the twin's JTAG face: 127 round trips a
    sample against 92; bench/bench_openocd_floor.py), and OpenOCD never sees the hart halted, as the whole script
    runs between its polls. OpenOCD drops its program-buffer cache when `riscv dmi_write` writes progbuf (riscv.c,
    the riscv_dmi_write handler), so its own later programs are written afresh. While OpenOCD itself holds the hart
    halted, the script goes through `halt`/`get_reg -force`/`resume` instead, as it does for other registers, without
    SBA, or with the hart left halted (--stacks).

    SBA reads (6 DM accesses for two words, not `read_memory`'s ~55 on OpenOCD 0.12, which also leaves registers
    dirty for the resume to write back) end with sbcs read back, so a bus error is named. Without SBA, or unaligned,
    they go through `read_memory`.
    """

    cycle_counter = "mcycle"

    def __init__(self, target: OpenOcdTarget, request: SampleRequest):
        self.target, self.request = target, request
        if target._has_sba is None:
            target._has_sba = target._probe_sba()
        t = target.target_name
        self._names = list(request.registers) + (["mcycle"] if request.cycles else [])
        self._words = [((address + size - (address & ~3) + 3) // 4) for address, size in request.reads]
        by_sba = target._has_sba and all(a % 4 == 0 and n % 4 == 0 for a, n in request.reads)
        wanted = " ".join(_OPENOCD_NAME.get(n.lower(), n.lower()) for n in self._names)
        script = [f"halt; set s [{t} get_reg -force {{{wanted}}}]"]
        for address, size in request.reads:
            if by_sba:
                script.append(_sba_read(t, address, size))
            else:
                first = address & ~3
                words = (address + size - first + 3) // 4
                script.append(f"lappend s {{*}}[{t} read_memory {first:#x} 32 {words}] 0")
        script.append("resume; set s" if request.resume else "set s")
        self.openocd_script = self._script = "; ".join(script)     # through OpenOCD's halt/get_reg/resume
        self.by_debug_module = by_sba and request.resume and list(request.registers) == ["pc"]
        if self.by_debug_module:
            # OpenOCD's view decides, at no cost to the probe: a hart it holds halted is sampled its way.
            self._script = (f"if {{[{t} curstate] eq {{halted}}}} {{{self._script}}} "
                            f"else {{{_dm_sample(t, target.hart, request)}}}")
        what = ", ".join(self._names + describe_reads(request))
        self.description = (f"openocd: halt, {what}{', resume' if request.resume else ''} in one round trip "
                            + ("(one Tcl script of Debug Module accesses)" if self.by_debug_module else
                               "(one Tcl script)"))

    def take(self) -> Sample:
        target, request = self.target, self.request
        before = target.round_trips
        reply = target.command(self._script)
        tokens = reply.replace("{", " ").replace("}", " ").split()     # dmi_read's values come braced, with a newline
        if tokens[:1] == [_DM_MARK]:
            return self._from_debug_module(tokens[1:], reply, target.round_trips - before)
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
        return Sample(registers, self._memory(numbers), cycles, target.round_trips - before, None)

    def _from_debug_module(self, tokens: list[str], reply: str, round_trips: int) -> Sample:
        """dmstatus, dpc, [mcycle], abstractcs, then each read's words and sbcs, as _dm_sample's script lists them."""
        target, request = self.target, self.request
        try:
            numbers = [int(v, 16) for v in tokens]
        except ValueError:
            numbers = []
        head = 4 if request.cycles else 3
        if len(numbers) != head + sum(w + 1 for w in self._words):
            raise TargetError(f"{target.url}: a sample came back as {reply[:80]!r}; expected dmstatus, dpc"
                              f"{', mcycle' if request.cycles else ''}, abstractcs, then {sum(self._words)} words "
                              "and sbcs")
        dmstatus, pc, abstractcs = numbers[0], numbers[1], numbers[head - 1]
        if not dmstatus & DMSTATUS_ALLHALTED or abstractcs & ABSTRACTCS_CMDERR:
            raise TargetError(f"{target.url}: the hart did not halt for a sample, or reading dpc through the program "
                              f"buffer failed (dmstatus {dmstatus:#010x}, abstractcs {abstractcs:#010x}: cmderr "
                              f"{(abstractcs >> 8) & 7}); it was told to resume and cmderr was cleared")
        cycles = numbers[2] & 0xFFFFFFFF if request.cycles else None
        return Sample({"pc": pc}, self._memory(numbers[head:]), cycles, round_trips, None)

    def _memory(self, numbers: list[int]) -> tuple[bytes, ...]:
        """Each read's bytes out of its words and the sbcs after them (an SBA error named)."""
        memory = []
        for (address, size), words in zip(self.request.reads, self._words):
            chunk, sbcs = numbers[:words], numbers[words]
            del numbers[:words + 1]
            if sbcs & SBCS_ERRORS:
                raise TargetError(f"{self.target.url}: System Bus Access failed reading {size} bytes at {address:#x} "
                                  f"(sbcs {sbcs:#010x}: sberror {(sbcs >> 12) & 7}, sbbusyerror {(sbcs >> 22) & 1})")
            data = b"".join(w.to_bytes(4, "little") for w in chunk)
            skip = address - (address & ~3)
            memory.append(data[skip:skip + size])
        return tuple(memory)

    def details(self) -> dict | None:
        return None


def _sba_read(t: str, address: int, size: int) -> str:
    """Tcl appending to `s` the words at `address` read by System Bus Access, then sbcs (for its error bits)."""
    words = (size + 3) // 4
    # The first sbcs write also clears (W1C) errors left from earlier accesses; sbreadondata stays on until the last
    # word, so no read past the request reaches the bus.
    on_data = SBCS_READ_ON_ADDR_AND_DATA if words > 1 else SBCS_READ_ON_ADDR
    script = [f"{t} riscv dmi_write {DM_SBCS:#x} {on_data | SBCS_ERRORS:#x}; "
              f"{t} riscv dmi_write {DM_SBADDRESS0:#x} {address:#x}"]
    script += [f"lappend s [{t} riscv dmi_read {DM_SBDATA0:#x}]"] * (words - 1)
    if words > 1:
        script.append(f"{t} riscv dmi_write {DM_SBCS:#x} {SBCS_WORD_AUTOINCREMENT:#x}")
    script.append(f"lappend s [{t} riscv dmi_read {DM_SBDATA0:#x}] [{t} riscv dmi_read {DM_SBCS:#x}]")
    return "; ".join(script)


_DM_MARK = "dm"     # the first word of a sample taken by Debug Module accesses (the other script's is a register name)


def _csrr_s0(csr: int) -> int:
    """`csrr s0, CSR` (csrrs x8, csr, x0), for the program buffer."""
    return (csr << 20) | (2 << 12) | (8 << 7) | 0x73


def _dm_sample(t: str, hart: int, request: SampleRequest) -> str:
    """The Tcl of a sample as the Debug Module sequence (TclSampler): the fewest DM accesses for halt, dpc (and
    mcycle) through the program buffer, the reads by SBA, resume."""
    def write(address: int, value: int | str) -> str:
        return f"{t} riscv dmi_write {address:#x} {value if isinstance(value, str) else hex(value)}"

    def read(address: int) -> str:
        return f"[string trim [{t} riscv dmi_read {address:#x}]]"

    select = DMCONTROL_DMACTIVE | hart << 16            # hartsello: the hart of OpenOCD's target
    script = [write(DM_DMCONTROL, DMCONTROL_HALTREQ | select), f"set s [list {_DM_MARK} {read(DM_DMSTATUS)}]",
              write(DM_PROGBUF0, _csrr_s0(rv.CSRS["dpc"])), write(DM_PROGBUF0 + 1, rv.INSN_EBREAK),
              write(DM_COMMAND, COMMAND_READ_S0 | COMMAND_POSTEXEC), f"set saved {read(DM_DATA0)}",   # then s0 = dpc
              write(DM_COMMAND, COMMAND_READ_S0), f"lappend s {read(DM_DATA0)}"]
    if request.cycles:
        script += [write(DM_PROGBUF0, _csrr_s0(rv.CSRS["mcycle"])), write(DM_COMMAND, COMMAND_POSTEXEC),
                   write(DM_COMMAND, COMMAND_READ_S0), f"lappend s {read(DM_DATA0)}"]
    script += [write(DM_DATA0, "$saved"), write(DM_COMMAND, COMMAND_WRITE_S0),
               f"set cs {read(DM_ABSTRACTCS)}; lappend s $cs",
               # cmderr is sticky: cleared (W1C) here, or OpenOCD's next command would find it set
               f"if {{$cs & {ABSTRACTCS_CMDERR:#x}}} {{{write(DM_ABSTRACTCS, ABSTRACTCS_CMDERR)}}}"]
    script += [_sba_read(t, address, size) for address, size in request.reads]
    script += [write(DM_DMCONTROL, DMCONTROL_RESUMEREQ | select), "set s"]
    return "; ".join(script)
