"""Why did it die: decode a RISC-V trap from a halted target or a Linux oops into cause, place, instruction, address and advice.

Hazard3 writes mtval = 0 on every trap (rp2350.md), so the faulting address is recomputed from the instruction at mepc
and the registers; the RP2350's own rules (atomics only in SRAM, LR/SC livelock outside it, XIP flash is read-only)
turn it into an explanation a kernel developer can act on. Live targets and oopses give one TrapReport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import livelock
from .chip import rv_insn
from .chip import riscv as rv
from .chip.memory_map import BUILTIN_MAPS, HAZARD3, MemoryMap, get_memory_map
from .chip.riscv import EXCEPTION_NAMES, INTERRUPT_NAMES
from .errors import SymbolError, TargetError, XipscopeError
from .targets.base import MODEL, REGISTERS, RUN_CONTROL, require

if TYPE_CHECKING:
    from .elf import SymbolIndex
    from .linux.oops import Oops
    from .targets import Target

# Hazard3 raises exceptions 1-8 and 11 only (rp2350.md, DS 3.8); its interrupts are the standard machine three
# (soft, timer, external; the external one fans out through Xh3irq's meinext).
HAZARD3_INTERRUPTS = {3: "machine software interrupt (SIO doorbell / RISCV_SOFTIRQ)",
                      7: "machine timer interrupt (mtime)", 11: "machine external interrupt (Xh3irq: read meinext)"}
PRIVILEGE = {0: "U", 1: "S", 2: "reserved", 3: "M"}
LOAD_FAULTS, STORE_FAULTS, FETCH_FAULTS, MISALIGNED = {5, 13}, {7, 15}, {1, 12}, {0, 4, 6}
ATOMIC_KINDS = ("amo", "lr", "sc")
NOTE_MTVAL_ZERO = "Hazard3 writes mtval = 0 on every trap: the address below is recomputed from the instruction and registers"


@dataclass(frozen=True)
class Frame:
    pc: int
    function: str | None
    location: str | None

    def to_json(self) -> dict:
        return {"pc": self.pc, "function": self.function, "location": self.location}


@dataclass
class TrapReport:
    source: str                         # the target URL or the oops file
    cause_code: int
    interrupt: bool
    cause_name: str
    mepc: int
    function: str | None = None         # func+0xoff
    location: str | None = None         # file:line
    mepc_region: str | None = None
    mstatus: int | None = None
    mtval: int | None = None
    instruction: str | None = None      # disassembly text
    instruction_bytes: str | None = None
    instruction_source: str | None = None   # "target", "elf", "oops Code: line"
    access: str | None = None           # instruction class (load, store, amo, lr, sc, ...)
    access_base: str | None = None      # the register holding a memory access's base address
    access_size: int | None = None
    fault_address: int | None = None
    fault_symbol: str | None = None     # the variable at the fault address, var+0xoff
    fault_region: str | None = None     # region name, or "unmapped"
    fault_region_kind: str | None = None
    explanation: list[str] = field(default_factory=list)
    backtrace: list[Frame] = field(default_factory=list)
    backtrace_stop: str | None = None
    backtrace_source: str = "unwound"   # "unwound" by frame pointers, or "printed": an oops's own call trace
    printed_call_trace: list[dict] = field(default_factory=list)   # an oops's own Call Trace, as printed
    registers: dict[str, int] = field(default_factory=dict)
    memory_map: str | None = None
    notes: list[str] = field(default_factory=list)
    trapped: bool = True                # False: mcause/mepc still hold their reset values; function is the pc's

    @property
    def mstatus_fields(self) -> dict | None:
        if self.mstatus is None:
            return None
        mpp = (self.mstatus & rv.MSTATUS_MPP_MASK) >> rv.MSTATUS_MPP_SHIFT
        return {"mpp": PRIVILEGE[mpp], "mie": bool(self.mstatus & rv.MSTATUS_MIE),
                "mpie": bool(self.mstatus & rv.MSTATUS_MPIE)}

    def to_json(self) -> dict:
        return {
            "source": self.source, "trapped": self.trapped, "cause_code": self.cause_code, "interrupt": self.interrupt,
            "cause_name": self.cause_name, "mepc": self.mepc, "function": self.function, "location": self.location,
            "mepc_region": self.mepc_region, "mstatus": self.mstatus, "mstatus_fields": self.mstatus_fields,
            "mtval": self.mtval, "instruction": self.instruction, "instruction_bytes": self.instruction_bytes,
            "instruction_source": self.instruction_source, "access": self.access, "access_base": self.access_base,
            "access_size": self.access_size,
            "fault_address": self.fault_address, "fault_symbol": self.fault_symbol,
            "fault_region": self.fault_region, "fault_region_kind": self.fault_region_kind,
            "explanation": " ".join(self.explanation), "backtrace": [f.to_json() for f in self.backtrace],
            "backtrace_stop": self.backtrace_stop, "backtrace_source": self.backtrace_source,
            "printed_call_trace": self.printed_call_trace,
            "registers": self.registers, "memory_map": self.memory_map, "notes": self.notes,
        }

    def format(self) -> str:
        """The short report for people."""
        kind = "interrupt" if self.interrupt else "exception"
        place = f"{self.function or '?'}{f' ({self.location})' if self.location else ''}"
        if not self.trapped:
            out = [f"{self.cause_name}; the core is at {self.registers.get('pc', 0):#010x} {place}"]
        else:
            out = [f"trap: {kind} {self.cause_code} ({self.cause_name}) at {self.mepc:#010x} {place}"]
        if self.mepc_region and self.trapped:
            out.append(f"  mepc region:   {self.mepc_region}")
        if self.mstatus is not None and self.trapped:
            f = self.mstatus_fields
            out.append(f"  mstatus:       {self.mstatus:#010x} (MPP={f['mpp']} MIE={int(f['mie'])} MPIE={int(f['mpie'])})")
        if self.mtval is not None and self.trapped:
            out.append(f"  mtval:         {self.mtval:#010x}")
        if self.instruction:
            out.append(f"  instruction:   {self.instruction}   [{self.instruction_bytes}, from {self.instruction_source}]")
        if self.fault_address is not None:
            where = self.fault_region or "?"
            if self.fault_region_kind:
                where += f", {self.fault_region_kind}"
            sym = f" {self.fault_symbol}" if self.fault_symbol else ""
            out.append(f"  address:       {self.fault_address:#010x}{sym} ({where}), {self.access_size}-byte {self.access}")
        for line in self.explanation:
            out.append(f"  why: {line}")
        for note in self.notes:
            out.append(f"  note: {note}")
        if self.backtrace:
            if self.backtrace_source == "printed":
                out.append("backtrace (the call trace the kernel printed):")
            else:
                out.append("backtrace:" + (f" (stopped: {self.backtrace_stop})" if self.backtrace_stop else ""))
            for i, f in enumerate(self.backtrace):
                out.append(f"  #{i:<2} {f.pc:#010x} {f.function or '?'}{f'  {f.location}' if f.location else ''}")
        if self.printed_call_trace and self.backtrace_source != "printed":
            out.append("call trace as the kernel printed it:")
            for entry in self.printed_call_trace:
                out.append(f"  [<{entry['pc']:08x}>] {entry['printed'] or '?'}")
        return "\n".join(out) + "\n"


def render_trap(report: TrapReport, as_json: bool = False) -> str:
    """What `xipscope trap` and gdb's `xs trap` print: the short report, or one JSON object."""
    if as_json:
        import json
        return json.dumps(report.to_json(), indent=1) + "\n"
    return report.format()


# --- the two entry points ------------------------------------------------------------------------------------------

def decode_trap(target: "Target", symbols: "SymbolIndex | None", memory_map: MemoryMap | str | None = None) -> TrapReport:
    """Decode the trap a halted target holds: mcause/mepc/mstatus/mtval and the GPRs as they were at the trap."""
    from .targets.base import require_riscv
    require_riscv(target, "trap decoding (mcause, mepc)")
    require(target, REGISTERS, "trap decoding (mcause, mepc)")
    registers = dict(target.read_registers())
    csrs: dict[str, int | None] = {}
    notes = []
    for name in rv.TRAP_CSRS:
        try:
            csrs[name] = registers[name] if name in registers else target.read_register(name)
        except XipscopeError as e:
            csrs[name] = None
            notes.append(f"{name} unreadable: {e}")
    if csrs["mcause"] is None or csrs["mepc"] is None:
        raise TargetError(f"{target.url}: cannot decode a trap without mcause and mepc ({'; '.join(notes)})")
    gprs = gdb_registers(registers)
    mmap = _resolve_map(memory_map, csrs["mepc"])
    pc = registers.get("pc")

    def read(address: int, size: int) -> bytes | None:
        try:
            return target.read_memory(address, size)
        except XipscopeError:
            return None

    if csrs["mcause"] == 0 and csrs["mepc"] == 0:
        # Nothing trapped (Hazard3 never raises code 0): say so, and look for the hang that raises no trap.
        report = _new_report(target.url, 0, 0, csrs["mstatus"], csrs["mtval"], mmap, symbols)
        report.registers = gprs
        report.cause_name = "no trap taken since reset (mcause and mepc are 0)"
        report.trapped = False
        report.notes = notes
        if MODEL in target.capabilities and RUN_CONTROL in target.capabilities:
            report.notes.append("the twin opens halted at reset: to catch its trap, serve it (`xipscope sim FW "
                                "--gdb-port N`), stop at the trap vector from gdb and run `xipscope trap --target "
                                "rsp://127.0.0.1:N`")
        _livelock_check(report, read, gprs, mmap, symbols)
        if pc is not None:
            place = _place(symbols, pc)
            report.function, report.location = place["function"], place["location"]
            _unwind(report, read, gprs, symbols, start=pc)
        return report
    vector = (csrs["mtvec"] or 0) & ~3
    moved = pc is not None and csrs["mtvec"] is not None and pc != vector and pc != csrs["mepc"]
    if moved:
        notes.append(f"the core is at {pc:#x}, not at the trap vector {vector:#x} or mepc: the handler has run since "
                     "the trap, so the registers no longer hold the faulting address (stop at the trap vector to "
                     "know it)")
    report = explain_trap(target.url, csrs["mcause"], csrs["mepc"], {} if moved else gprs, read, mmap, symbols,
                          mstatus=csrs["mstatus"], mtval=csrs["mtval"], notes=notes)
    report.registers = gprs
    _livelock_check(report, read, gprs, mmap, symbols)
    _unwind(report, read, gprs, symbols)
    return report


def decode_oops(oops: "Oops", symbols: "SymbolIndex | None", memory_map: MemoryMap | str | None = None, *,
                target: "Target | None" = None, source: str = "oops") -> TrapReport:
    """Decode a parsed oops; with a target, its memory supplies the instruction and the stack to unwind."""
    gprs = oops.gdb_registers()
    mmap = _resolve_map(memory_map, oops.epc)

    def read(address: int, size: int) -> bytes | None:
        if target is None:
            return None
        try:
            return target.read_memory(address, size)
        except XipscopeError:
            return None

    report = explain_trap(source, oops.cause, oops.epc, gprs, read, mmap, symbols, mstatus=oops.status,
                          mtval=oops.badaddr, oops_code=oops.instruction_bytes())
    report.printed_call_trace = [{"pc": e.pc, "printed": e.symbol, **_place(symbols, e.pc)} for e in oops.call_trace]
    if oops.others:
        report.notes.append(f"the log holds {oops.others} more oops(es) after this one (the first is decoded: "
                            "later ones are often consequences of it)")
    if oops.epc_symbol and report.function and oops.epc_symbol.split("/")[0] != report.function:
        report.notes.append(f"the kernel printed epc as {oops.epc_symbol}, the ELF says {report.function}: "
                            "is this the vmlinux of the kernel that crashed?")
    if target is not None:
        _unwind(report, read, gprs, symbols)
    else:
        report.backtrace = [Frame(e.pc, **_place(symbols, e.pc)) for e in oops.call_trace]
        report.backtrace_source = "printed"     # no target memory to unwind from
    return report


def explain_trap(source: str, mcause: int, mepc: int, registers: dict[str, int], read, memory_map: MemoryMap,
                 symbols: "SymbolIndex | None", *, mstatus: int | None = None, mtval: int | None = None,
                 notes: list[str] | None = None, oops_code: bytes | None = None) -> TrapReport:
    """Cause, place, instruction, faulting address and explanation of one trap, without a backtrace: the part
    decode_trap, decode_oops and the doctor's pending-trap check share.

    `registers` are the GPRs (gdb's names) as they were at the trap; pass {} when the handler has run since, and
    the address is then left unknown rather than computed from values that changed. `read(address, size)` gives
    memory (None where it can't); `oops_code` is an oops's Code: line, tried after memory.
    """
    report = _new_report(source, mcause, mepc, mstatus, mtval, memory_map, symbols)
    report.notes += notes or []
    report.registers = registers
    insn = _instruction(report, read, symbols, oops_code=oops_code)
    _access(report, insn, registers, memory_map, symbols)
    if HAZARD3 in memory_map.rules and report.mtval == 0:
        report.notes.append(NOTE_MTVAL_ZERO)
    _explain(report, insn, memory_map, symbols)
    return report


# --- pieces ------------------------------------------------------------------------------------------------------------

def gdb_registers(registers: dict[str, int]) -> dict[str, int]:
    """The GPRs and pc out of a register dump, each under gdb's name: servers spell x8 fp, s0 or x8."""
    gprs = {rv.GPR_NAMES[rv.GPR_INDEX[k]]: v for k, v in registers.items() if k in rv.GPR_INDEX}
    if "pc" in registers:
        gprs["pc"] = registers["pc"]
    return gprs


def cause_name(code: int, interrupt: bool) -> str:
    """The privileged spec's name for an mcause code."""
    if interrupt:
        return INTERRUPT_NAMES.get(code, f"interrupt {code} (platform-specific)")
    if code in EXCEPTION_NAMES:
        return EXCEPTION_NAMES[code]
    return f"exception {code} ({'custom' if 24 <= code <= 31 or 48 <= code <= 63 else 'reserved'})"


def name_cause(mcause: int, memory_map: MemoryMap) -> str:
    """What `xipscope trap` calls an mcause value on this map: the spec's name, Hazard3's for its interrupts."""
    interrupt, code = bool(mcause >> 31), mcause & 0x7FFFFFFF
    if interrupt and HAZARD3 in memory_map.rules and code in HAZARD3_INTERRUPTS:
        return HAZARD3_INTERRUPTS[code]
    return cause_name(code, interrupt)


def _resolve_map(memory_map: MemoryMap | str | None, mepc: int) -> MemoryMap:
    if isinstance(memory_map, MemoryMap):
        return memory_map
    if memory_map is not None:
        return get_memory_map(memory_map)
    # No map named: the built-in one where mepc is in memory code can run from.
    for name in BUILTIN_MAPS:
        mmap = get_memory_map(name)
        region = mmap.find(mepc)
        if region is not None and region.kind != "peripheral":
            return mmap
    return get_memory_map("rp2350")


def _place(symbols: "SymbolIndex | None", address: int) -> dict:
    if symbols is None:
        return {"function": None, "location": None}
    func, off, file, line = symbols.symbolize([address])[0]
    return {"function": f"{func}+{off:#x}" if func else None, "location": f"{file}:{line}" if file else None}


def _new_report(source, mcause, mepc, mstatus, mtval, mmap: MemoryMap, symbols) -> TrapReport:
    interrupt = bool(mcause >> 31)
    code = mcause & 0x7FFFFFFF
    report = TrapReport(source, code, interrupt, name_cause(mcause, mmap), mepc, mstatus=mstatus, mtval=mtval,
                        memory_map=mmap.name, **_place(symbols, mepc))
    region = mmap.find(mepc)
    report.mepc_region = region.name if region else "unmapped"
    if HAZARD3 in mmap.rules:
        from .chip.rp2350 import HAZARD3_EXCEPTION_CAUSES
        if not interrupt and code not in HAZARD3_EXCEPTION_CAUSES:
            report.notes.append(f"Hazard3 never raises exception {code}: is mcause stale, or written by software?")
    return report


def _instruction(report: TrapReport, read, symbols, oops_code: bytes | None = None):
    """The instruction at mepc: target memory first, then the oops's Code: line, then the ELF."""
    address = report.mepc
    sources = [("target", lambda: _read_insn(read, address))]
    if oops_code is not None:
        sources.append(("oops Code: line", lambda: oops_code))
    if symbols is not None and symbols.elf_path is not None:
        sources.append(("elf", lambda: _read_insn(lambda a, n: _elf_bytes(symbols.elf_path, a, n), address)))
    for name, get in sources:
        data = get()
        if data:
            try:
                insn = rv_insn.decode(data, address)
            except ValueError:
                continue
            report.instruction = insn.text
            report.instruction_bytes = int.from_bytes(data[:insn.length], "little").to_bytes(
                insn.length, "big").hex()
            report.instruction_source = name
            report.access = insn.kind
            report.access_base = insn.base_name
            return insn
    hint = "; a System.map holds no code: pass the vmlinux" if symbols is not None and symbols.elf_path is None else ""
    report.notes.append(f"the instruction at {address:#x} could not be read from the target, the oops or the ELF"
                        f"{hint}; without it the faulting address is unknown")
    return None


def _read_insn(read, address: int) -> bytes | None:
    first = read(address, 2)
    if first is None or len(first) < 2:
        return None
    if first[0] & 3 != 3:
        return first
    rest = read(address + 2, 2)
    return first + rest if rest is not None and len(rest) == 2 else None


def _elf_bytes(path, address: int, size: int) -> bytes | None:
    from .elf.code import read_elf_bytes

    try:
        return read_elf_bytes(path, address, size)
    except SymbolError:   # a damaged ELF: the instruction is simply unknown
        return None


def _access(report: TrapReport, insn, gprs: dict, mmap: MemoryMap, symbols) -> None:
    if insn is None or not insn.is_memory_access:
        return
    address = insn.effective_address(gprs)
    if address is None:
        report.notes.append(f"register {insn.base_name} unknown: the address cannot be recomputed")
        return
    report.fault_address = address
    report.access_size = insn.size
    region = mmap.find(address)
    report.fault_region = region.name if region else "unmapped"
    report.fault_region_kind = region.kind if region else None
    report.fault_symbol = symbols.variable_at(address) if symbols is not None else None
    if report.mtval and report.mtval != address and report.cause_code in LOAD_FAULTS | STORE_FAULTS | MISALIGNED:
        report.notes.append(f"mtval says {report.mtval:#x}, the instruction and registers say {address:#x} "
                            "(registers may have changed since the trap)")


def _variable(report: TrapReport) -> str:
    return f" (`{report.fault_symbol}`)" if report.fault_symbol else ""


def _explain(report: TrapReport, insn, mmap: MemoryMap, symbols) -> None:
    code, why = report.cause_code, report.explanation
    if report.interrupt:
        why.append("an interrupt, not a fault: the code at mepc was interrupted, not wrong.")
        return
    addr = report.fault_address
    region = mmap.find(addr) if addr is not None else None
    at = f"{addr:#x}{_variable(report)}" if addr is not None else "an unknown address"
    where = f"in {region.name} ({region.kind})" if region else "in no region of the memory map"
    known = insn is not None and insn.base and insn.base_name in report.registers
    base = f"{insn.base_name} = {report.registers[insn.base_name]:#x}" if known else ""
    sram = f" ({livelock.sram_text(mmap)})"
    if insn is not None and insn.kind in ATOMIC_KINDS and code in LOAD_FAULTS | STORE_FAULTS:
        name = insn.mnemonic
        if addr is None:
            why.append(f"atomic access: {name} through {insn.base_name}, whose value at the trap is not known. The "
                       f"RP2350 does atomics only in SRAM{sram}: an AMO anywhere else (XIP flash, PSRAM, "
                       f"peripherals) raises a store/AMO access fault (cause 7), so look at where {insn.base_name} "
                       "pointed: move that variable to SRAM.")
        elif region is not None and not region.atomics_ok:
            why.append(f"atomic access: {name} to {at} {where}. The RP2350 does atomics only in SRAM{sram}, where the "
                       f"global exclusive monitor is; an AMO anywhere else (XIP flash, PSRAM, peripherals) raises a "
                       f"store/AMO access fault (cause 7), whatever mtval says.")
            why.append(f"Fix: place {('`' + report.fault_symbol.split('+')[0] + '`') if report.fault_symbol else 'the variable'} "
                       "in SRAM (a section the linker puts in SRAM), or for Linux keep locks, atomics and per-CPU data "
                       "out of PSRAM.")
        elif region is None:
            why.append(f"atomic access: {name} to {at}, which is {where}: a bad pointer ({base}). "
                       f"QEMU 7.2 reports an AMO to unmapped memory as a load access fault (cause 5); Hazard3 as cause 7.")
        else:
            why.append(f"atomic access: {name} to {at} {where}, where atomics are allowed: check the pointer ({base}) "
                       "and its alignment.")
        return
    if code == 0:
        why.append(f"instruction address misaligned: a jump or branch to {report.mepc:#x}, which is not on an "
                   "instruction boundary (a corrupted function pointer or return address).")
        return
    if code in MISALIGNED:
        size = insn.size if insn is not None else None
        why.append(f"misaligned access: {at} is not a multiple of {size or 'the access size'}"
                   f"{'; ' + base if base else ''}. Hazard3 does not split misaligned accesses: use "
                   "get_unaligned()/memcpy, or fix the structure's packing.")
        return
    if code in FETCH_FAULTS:
        region = mmap.find(report.mepc)
        ra = report.registers.get("ra")
        came = f" ra = {ra:#x} ({_place(symbols, ra)['function'] or '?'}) is where it probably came from." \
            if ra is not None else ""
        if region is None:
            why.append(f"instruction fetch from {report.mepc:#x}, which no region of the map covers: a call through a "
                       f"bad function pointer or a corrupted return address.{came}")
        elif region.kind == "peripheral":
            why.append(f"instruction fetch from {report.mepc:#x} in {region.name}, a peripheral: not executable."
                       f"{came}")
        else:
            why.append(f"instruction fetch from {report.mepc:#x} in {region.name} ({region.kind}) faulted: is the "
                       f"memory powered and set up (XIP/QMI for flash and PSRAM)?{came}")
        return
    if code in STORE_FAULTS and region is not None and region.kind in ("xip-flash", "rom"):
        why.append(f"store into {region.kind} at {at} ({region.name}): it is read-only through XIP. A write through a "
                   "pointer to const data, or to a variable the linker left in flash; writing flash takes the flash "
                   "programming path (bootrom flash_range_program), not a store.")
        return
    if code in LOAD_FAULTS | STORE_FAULTS:
        kind = "load from" if code in LOAD_FAULTS else "store to"
        if addr is None and insn is not None and insn.base is not None:
            why.append(f"{kind} the address in {insn.base_name}, whose value at the trap is not known: an unmapped "
                       "address, an XIP alias XIP_CTRL refuses, or an address beyond an ATRANS window.")
        elif region is None:
            why.append(f"{kind} {at}, {where}: a bad pointer{' (' + base + ')' if base else ''}.")
        else:
            xip = " Is the address inside its ATRANS window, and not in an alias XIP_CTRL refuses?" \
                if region.kind.startswith("xip-") else ""
            why.append(f"{kind} {at} {where} faulted: is that memory set up (PSRAM enabled in QMI, XIP writable "
                       f"for PSRAM stores)?{xip}")
        return
    if code == 2:
        ext = f" ({insn.extension})" if insn is not None and insn.extension else ""
        mepc_region = mmap.find(report.mepc)
        xip = " From XIP it can also be a flash out of continuous-read mode, which returns garbage with no bus fault " \
              "(`xipscope doctor` checks the QMI RFMT/RCMD)." \
            if mepc_region is not None and mepc_region.kind.startswith("xip-") else ""
        why.append(f"illegal instruction{ext} at mepc: code built for another ISA, a corrupt image, or a jump into "
                   f"data.{xip}")
    elif code == 3:
        why.append("breakpoint (ebreak): in Linux a BUG() or WARN(); otherwise a debugger's software breakpoint.")
    elif code in (8, 9, 11):
        why.append("environment call (ecall): a system call or SBI call, not a fault.")


def _livelock_check(report: TrapReport, read, gprs: dict, mmap: MemoryMap, symbols) -> None:
    """A core halted in an LR/SC loop on a lock outside SRAM: no trap, but it never gets out (livelock.py)."""
    pc = gprs.get("pc")
    if pc is None:
        return
    loop = livelock.find_lrsc_loop(read, pc, pc, symbols)
    lock = livelock.judge_lock(loop, gprs, mmap, symbols) if loop is not None else None
    if lock is None or not lock.outside_monitor:
        return
    report.explanation.append(
        f"LR/SC outside SRAM: the core is at {pc:#x}, in the loop of {loop.lr.text} at {loop.lr.address:#x} and "
        f"{loop.sc.mnemonic} at {loop.sc.address:#x}; {livelock.explain(loop, lock, mmap)} The profiler's LR/SC "
        "livelock detector (`xipscope profile`) and `xipscope doctor` confirm it from PC samples; move the lock "
        "into SRAM.")


def _unwind(report: TrapReport, read, gprs: dict, symbols, start: int | None = None) -> None:
    from .unwind import linux_stack_top, unwind_frame_pointers

    needed = ("sp", "fp", "ra")
    if any(k not in gprs for k in needed):
        report.backtrace = [Frame(report.mepc, report.function, report.location)]
        report.backtrace_stop = "sp, fp or ra unknown"
        return

    def read_word(address: int) -> int | None:
        data = read(address, 4)
        return int.from_bytes(data, "little") if data is not None and len(data) == 4 else None

    def is_code(address: int) -> bool:
        return symbols is not None and _place(symbols, address)["function"] is not None

    linux = symbols is not None and bool(symbols.symbols_named("linux_banner"))
    stack_top = linux_stack_top
    if not linux:
        top = None
        if symbols is not None and symbols.symbols_named("__stack_top"):
            top = symbols.address_of("__stack_top")
        stack_top = (lambda sp: top) if top is not None else (lambda sp: sp + 0x10000)
    result = unwind_frame_pointers(report.mepc if start is None else start, gprs["sp"], gprs["fp"], gprs["ra"], read_word=read_word,
                                   is_code=is_code, stack_top=stack_top)
    report.backtrace = [Frame(pc, **_place(symbols, pc)) for pc in result.pcs]
    report.backtrace_stop = result.stop_reason
    ra = gprs["ra"]
    if len(result.pcs) == 1 and is_code(ra):
        # Code built without frame pointers (firmware at -O2) ends the walk at once; ra still names the caller
        # when the trap is in a leaf or before the callee saved it.
        report.notes.append(f"the frame-pointer walk stopped at the first frame (built without frame pointers?); "
                            f"ra = {ra:#x} {_place(symbols, ra)['function']} is the likely caller")
