"""The hang doctor: read a stuck target's core, XIP and QMI state and a burst of PC samples, then name what is wrong.

`diagnose(target, symbols, memory_map)` gathers the evidence once (halting the core briefly) and runs each check in
CHECKS over it. A check is a plain function `check(evidence) -> list[Finding]`. The pending-trap check names and
explains the trap through trap.py, the livelock check judges its loop through livelock.py: the doctor, `xipscope
trap` and the profile report say the same thing. The facts behind each check are in
../shared/reference/rp2350-flash.md and rp2350.md; the addresses come from chip/rp2350.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import livelock
from .chip import riscv as rv
from .chip import rp2350 as rp
from .chip.memory_map import MemoryMap
from .errors import TargetError
from .trap import explain_trap, gdb_registers, name_cause

SEVERITIES = ("critical", "error", "warning")   # most serious first: critical = the core is hung
DEFAULT_SAMPLES = 32
CSRS_READ = (*rv.TRAP_CSRS, "mcountinhibit", *rv.COUNTER_CSRS)
QMI_READ_SIZE = rp.QMI_ATRANS0 + 4 * rp.QMI_ATRANS_COUNT
PANIC_FUNCTIONS = ("panic", "__panic", "do_exit")   # Linux's panic() ends in an mdelay loop; do_exit for init's death
LOOP_SPAN = 64     # sampled PCs within this many bytes: the core is spinning in one small loop


@dataclass
class Finding:
    id: str
    severity: str          # one of SEVERITIES
    title: str
    evidence: list[str]
    advice: str

    def to_json(self) -> dict:
        return {"id": self.id, "severity": self.severity, "title": self.title, "evidence": self.evidence,
                "advice": self.advice}


@dataclass
class Evidence:
    """What the doctor read from the target, in one place; checks only look here (and at memory through `word`)."""

    url: str
    memory_map: MemoryMap
    symbols: object | None                    # xipscope.elf.SymbolIndex
    was_running: bool
    registers: dict[str, int]                 # GPRs, pc and the CSRs that could be read, after the burst
    pc_samples: list[int]
    xip_ctrl_before: dict[str, int] | None    # CTRL, CTR_HIT, CTR_ACC before the burst (None: no XIP_CTRL in the map)
    xip_ctrl: dict[str, int] | None           # the same after it
    qmi: dict[str, int] | None                # DIRECT_CSR, M0_*/M1_*, ATRANS0-7 (None: the map has no QMI)
    notes: list[str] = field(default_factory=list)
    sample_frames: list[dict[str, int]] = field(default_factory=list)   # pc, sp, fp, ra at each sample
    _target: object = None
    _words: dict[int, int | None] = field(default_factory=dict)

    def word(self, address: int) -> int | None:
        """A 32-bit word of target memory (the target is halted while checks run); None where it can't be read."""
        if address not in self._words:
            try:
                self._words[address] = int.from_bytes(self._target.read_memory(address, 4), "little")
            except TargetError:
                self._words[address] = None
        return self._words[address]

    def code(self, address: int, size: int) -> bytes:
        out = b""
        for a in range(address & ~3, address + size, 4):
            w = self.word(a)
            if w is None:
                return b""
            out += w.to_bytes(4, "little")
        skip = address & 3
        return out[skip:skip + size]

    def read(self, address: int, size: int) -> bytes | None:
        """`size` bytes of target memory in one read; None where it can't be read."""
        try:
            return self._target.read_memory(address, size)
        except TargetError:
            return None

    def where(self, address: int) -> str:
        """`0x10000068 trap_entry+0x0 (firmware/start.S:40), flash`: symbol and region of an address."""
        text = f"{address:#010x}"
        if self.symbols is not None:
            described = self.symbols.describe(address)
            if not described.startswith("0x"):
                text += f" {described}"
        return f"{text}, {self.memory_map.region_name(address)}"

    def function(self, address: int) -> str | None:
        if self.symbols is None:
            return None
        return self.symbols.symbolize([address])[0][0]

    @property
    def pc(self) -> int:
        return self.registers["pc"]

    def reg(self, name: str) -> int | None:
        return self.registers.get(name)

    def loop_samples(self) -> list[int]:
        """The trailing PC samples that all sit within LOOP_SPAN bytes: where the core ended up spinning."""
        pcs = self.pc_samples + [self.pc]
        tail = [pcs[-1]]
        for pc in reversed(pcs[:-1]):
            if max(tail + [pc]) - min(tail + [pc]) > LOOP_SPAN:
                break
            tail.append(pc)
        return tail

    def stuck_loop(self) -> tuple[int, int] | None:
        """(lowest, highest) pc of the small loop at least half the samples (and the final pc) ended in, else None.

        Trailing samples, because a target started at reset (sim://) or caught just before its hang has a few
        samples from before it.
        """
        tail = self.loop_samples()
        if len(tail) < max(2, (len(self.pc_samples) + 1) // 2):
            return None
        return min(tail), max(tail)


@dataclass
class Diagnosis:
    findings: list[Finding]
    checked: list[str]
    evidence: Evidence

    def to_json(self) -> dict:
        ev = self.evidence
        return {"target": ev.url, "memory_map": ev.memory_map.name, "pc": ev.pc, "pc_samples": ev.pc_samples,
                "findings": [f.to_json() for f in self.findings], "checked": self.checked, "notes": ev.notes}


# --- gathering ---------------------------------------------------------------------------------------------------

def _has_region(memory_map: MemoryMap, name: str) -> bool:
    try:
        memory_map[name]
        return True
    except KeyError:
        return False


def _read_words(target, base: int, size: int) -> list[int]:
    data = target.read_memory(base, size)
    return [int.from_bytes(data[i:i + 4], "little") for i in range(0, size, 4)]


def _read_xip_ctrl(target) -> dict[str, int]:
    words = _read_words(target, rp.XIP_CTRL_BASE, rp.XIP_CTRL_CTR_ACC + 4)
    return {"CTRL": words[rp.XIP_CTRL_CTRL // 4], "CTR_HIT": words[rp.XIP_CTRL_CTR_HIT // 4],
            "CTR_ACC": words[rp.XIP_CTRL_CTR_ACC // 4]}


def _read_qmi(target) -> dict[str, int]:
    words = _read_words(target, rp.XIP_QMI_BASE, QMI_READ_SIZE)
    regs = {"DIRECT_CSR": words[rp.QMI_DIRECT_CSR // 4]}
    for w, base in enumerate((rp.QMI_M0_TIMING, rp.QMI_M1_TIMING)):
        for name, off in (("TIMING", rp.QMI_TIMING), ("RFMT", rp.QMI_RFMT), ("RCMD", rp.QMI_RCMD)):
            regs[f"M{w}_{name}"] = words[(base + off) // 4]
    for n in range(rp.QMI_ATRANS_COUNT):
        regs[f"ATRANS{n}"] = words[rp.QMI_ATRANS0 // 4 + n]
    return regs


def _read_csrs(target, names) -> dict[str, int]:
    values = {}
    for name in names:
        try:
            values[name] = target.read_register(name)
        except TargetError:
            pass
    return values


def gather(target, symbols, memory_map: MemoryMap, samples: int = DEFAULT_SAMPLES,
           interval: float = 0.002) -> Evidence:
    """Halt; take `samples` PCs (resume, wait, halt, read pc); then read registers, CSRs, XIP_CTRL and the QMI.

    The state is read after the burst, where the samples left the core: for a hung core it is the same before and
    after, and a target that was just started (sim:// begins at reset) has run a little by then. Counters are read
    on both sides of the burst to see whether they move. Leaves the target halted.
    """
    was_running = target.state() == "running"
    if was_running:
        target.halt()
    notes: list[str] = []
    has_ctrl = _has_region(memory_map, "xip_ctrl")
    has_qmi = _has_region(memory_map, "xip_qmi")
    if not has_qmi:
        notes.append(f"the {memory_map.name} map has no QMI: skipped the direct-mode, XIP window and ATRANS checks")
    if not has_ctrl:
        notes.append(f"the {memory_map.name} map has no XIP_CTRL: skipped the XIP cache and XIP counter checks")
    xip_ctrl_before = _read_xip_ctrl(target) if has_ctrl else None
    counters_before = _read_csrs(target, rv.COUNTER_CSRS)
    pcs, frames = [], []
    for _ in range(samples):
        try:
            target.resume()
            time.sleep(interval)
            target.halt()
            regs = target.read_registers()   # one round trip, like reading pc alone; gives unwind starting points
            pcs.append(regs["pc"])
            frames.append({n: regs[n] for n in ("pc", "sp", "fp", "s0", "ra") if n in regs})
        except TargetError as e:
            # Keep the samples taken; if the target is really gone, the register reads below say so.
            notes.append(f"sampling stopped after {len(pcs)} of {samples} PC samples: {e}")
            break
    registers = dict(target.read_registers())
    registers.update(_read_csrs(target, [n for n in CSRS_READ if n not in registers]))
    registers.update({f"{n}_before": v for n, v in counters_before.items()})
    missing = [n for n in ("mcause", "mepc", "mtvec") if n not in registers]
    if missing:
        notes.append(f"could not read {', '.join(missing)}: trap checks use what was read")
    xip_ctrl = _read_xip_ctrl(target) if has_ctrl else None
    qmi = _read_qmi(target) if has_qmi else None
    return Evidence(target.url, memory_map, symbols, was_running, registers, pcs, xip_ctrl_before, xip_ctrl, qmi,
                    notes, frames, _target=target)


# --- the checks ----------------------------------------------------------------------------------------------------

def _exception_recorded(ev: Evidence) -> int | None:
    """The exception code in mcause, or None for an interrupt or no trap at all (Hazard3 never raises code 0)."""
    mcause = ev.reg("mcause")
    if mcause is None or mcause >> 31 or mcause == 0:
        return None
    return mcause


def _caller_lines(ev: Evidence) -> list[str]:
    """ra and, when the instruction before it is a call, the function that was called: who started what."""
    ra = ev.reg("ra")
    if not ra:
        return []
    lines = [f"ra = {ev.where(ra)}: the routine that was running returns there (a leaf keeps ra untouched)"]
    callee = rv.call_before(ra, ev.code(ra - 4, 4))
    if callee is not None:
        lines.append(f"the call before ra is to {ev.where(callee)}: that call started the flash operation")
    return lines


def check_direct_mode(ev: Evidence) -> list[Finding]:
    """The hang rule: DIRECT_CSR.EN = 1 and a core fetching or loading from XIP (rp2350-flash.md)."""
    if ev.qmi is None:
        return []
    csr = ev.qmi["DIRECT_CSR"]
    if not csr & rp.DIRECT_CSR_EN:
        return []
    evidence = [f"QMI DIRECT_CSR = {csr:#010x}: EN = 1, direct mode is on (a flash command is in progress) and "
                "XIP is unavailable: fetches and loads from 0x10000000-0x13ffbfff and 0x14000000-0x1fffffff "
                "bus-fault"]
    in_xip = [pc for pc in ev.pc_samples if rp.xip_blocked_by_direct_mode(pc)]
    offenders = []
    if rp.xip_blocked_by_direct_mode(ev.pc):
        offenders.append(f"pc = {ev.where(ev.pc)}: the core is executing from XIP")
    if in_xip:
        offenders.append(f"{len(in_xip)} of {len(ev.pc_samples)} PC samples are in XIP "
                         f"({', '.join(sorted({ev.where(pc) for pc in in_xip})[:3])})")
    cause, mepc = ev.reg("mcause"), ev.reg("mepc")
    if cause in (rp.CAUSE_FETCH_FAULT, rp.CAUSE_LOAD_FAULT) and mepc is not None:
        what = "fetch" if cause == rp.CAUSE_FETCH_FAULT else "load"
        if cause == rp.CAUSE_LOAD_FAULT or rp.xip_blocked_by_direct_mode(mepc):
            offenders.append(f"mcause = {cause} ({name_cause(cause, ev.memory_map)}), mepc = {ev.where(mepc)}: "
                             f"the bus error an XIP {what} gets in direct mode")
    if not offenders:
        return [Finding("direct-mode-on", "warning", "QMI direct mode is on: XIP is unavailable", evidence,
                        "Normal while a flash erase/program runs; if it stays on, the code that turned it on never "
                        "finished: whoever next touches flash (either core, DMA, the debugger) gets a bus fault.")]
    evidence += offenders
    mtvec = ev.reg("mtvec")
    if mtvec is not None and (mtvec & ~3) == ev.pc and rp.xip_blocked_by_direct_mode(ev.pc):
        evidence.append(f"mtvec = {ev.where(mtvec & ~3)}: the trap vector is in flash too, so every fault "
                        "re-enters it and faults again; mepc now holds the vector, not the first fault")
    elif mtvec is not None and cause == rp.CAUSE_FETCH_FAULT and mepc is not None:
        evidence += _handler_retry_loop(ev, mtvec & ~3, mepc)
    evidence += _caller_lines(ev)
    return [Finding(
        "xip-in-direct-mode", "critical",
        "hang: the core touches XIP while QMI direct mode is on (a flash write/erase from code or data in flash)",
        evidence,
        "Everything that runs between turning direct mode on and off must be in SRAM: the flash routine "
        "(pico-sdk __no_inline_not_in_flash_func, a .ram/.time_critical section), the trap vector and interrupt "
        "handlers (or keep interrupts off), and the source data: copy data that lives in flash to RAM before the "
        "flash call (the Zephyr fix, PR 68951). Park the other core, or use the boot ROM's flash functions "
        "from SRAM as pico-sdk's flash_range_program does.")]


def _handler_retry_loop(ev: Evidence, handler: int, mepc: int) -> list[str]:
    """The trap vector outside XIP runs, and returns to mepc, whose fetch faults again: a trap loop that never
    parks (RTOSes that keep their vector table in RAM do this with a handler that retries a bus fault)."""
    if rp.xip_blocked_by_direct_mode(handler):
        return []
    fn = ev.function(handler)
    pcs = ev.pc_samples + [ev.pc]
    looping = [pc for pc in pcs if pc == mepc or (ev.function(pc) == fn if fn else 0 <= pc - handler < LOOP_SPAN)]
    if 2 * len(looping) <= len(pcs) or all(pc == mepc for pc in looping):
        return []
    before, after = ev.reg("minstret_before"), ev.reg("minstret")
    moving = f"; minstret {before} -> {after}: it keeps retiring instructions" if None not in (before, after) else ""
    return [f"mtvec = {ev.where(handler)}: the trap handler is outside XIP, so it runs, and returns to mepc, whose "
            f"fetch faults again: a trap loop ({len(looping)} of {len(pcs)} PC samples, the final pc included, in "
            f"the handler or at mepc{moving})"]


def check_lrsc_livelock(ev: Evidence) -> list[Finding]:
    """A PC stuck in a tiny lr.w/sc.w loop whose address register points outside the exclusive monitor (SRAM)."""
    stuck = ev.stuck_loop()
    if stuck is None:
        return []
    lo, hi = stuck
    loop = livelock.find_lrsc_loop(ev.code, lo, hi, ev.symbols)
    lock = livelock.judge_lock(loop, ev.registers, ev.memory_map, ev.symbols) if loop is not None else None
    if lock is None or not lock.outside_monitor:
        return []
    lock_name = lock.variable or "the lock word"
    return [Finding(
        "lrsc-livelock", "critical",
        f"livelock: an LR/SC loop on {lock_name} at {lock.address:#010x}, outside SRAM, where sc.w never succeeds",
        [f"{len(ev.loop_samples()) - 1} of {len(ev.pc_samples)} PC samples and the final pc in {ev.where(lo)} .. "
         f"{hi:#010x} (a loop of {hi - lo + 2} bytes)",
         f"the loop holds lr.w at {ev.where(loop.lr.address)}, sc.w at {ev.where(loop.sc.address)}",
         f"lr.w's address register {lock.register} = {ev.memory_map.describe(lock.address)}"
         + (f": {lock.variable}" if lock.variable else ""),
         livelock.explain(loop, lock, ev.memory_map)],
        f"Put {lock_name} in SRAM (a section placed at {livelock.sram_text(ev.memory_map)}). For Linux on PSRAM, keep "
        "the data that atomics touch (locks, atomic_t, per-cpu counters) in SRAM, as the seed's note says: \"Atomics "
        "will only work in SRAM\".")]


def check_pending_trap(ev: Evidence) -> list[Finding]:
    """A recorded exception with the core parked (wfi loop, trap handler or trap loop) instead of running on.

    The trap is named and explained by trap.py's explain_trap, as `xipscope trap` does; this check adds only why
    the core counts as parked.
    """
    cause = _exception_recorded(ev)
    if cause is None:
        return []
    mepc = ev.reg("mepc") or 0
    if ev.qmi is not None and ev.qmi["DIRECT_CSR"] & rp.DIRECT_CSR_EN and cause in (rp.CAUSE_FETCH_FAULT,
                                                                                   rp.CAUSE_LOAD_FAULT):
        return []   # check_direct_mode explains this one
    mtvec = (ev.reg("mtvec") or 0) & ~3
    handler = ev.function(mtvec) if mtvec else None
    parked = []
    loop = ev.stuck_loop()
    insn_before = ev.word(ev.pc - 4)
    if insn_before == rv.INSN_WFI or ev.word(ev.pc) == rv.INSN_WFI:
        parked.append(f"pc = {ev.where(ev.pc)}: parked at wfi")
    if handler is not None and ev.function(ev.pc) == handler:
        parked.append(f"pc = {ev.where(ev.pc)}: inside the trap handler (mtvec = {mtvec:#010x})")
    if mtvec and ev.pc == mtvec and mepc == mtvec:
        parked.append("pc = mepc = mtvec: the handler's own first fetch faults, a trap loop")
    if not parked and loop is None:
        return []   # an old trap the firmware handled: the core has moved on
    if not parked:
        parked.append(f"the PC samples end in {ev.where(loop[0])} .. {loop[1]:#010x}: not making progress")
    # At mepc or the vector the registers are still the trapping instruction's; elsewhere the handler has run.
    at_trap = ev.pc in (mepc, mtvec)
    report = explain_trap(ev.url, cause, mepc, gdb_registers(ev.registers) if at_trap else {},
                          lambda address, size: ev.code(address, size) or None, ev.memory_map, ev.symbols,
                          mstatus=ev.reg("mstatus"), mtval=ev.reg("mtval"))
    evidence = [f"mcause = {cause} ({report.cause_name}), mepc = {ev.where(mepc)}, mtval = "
                f"{ev.reg('mtval') or 0:#x} (Hazard3 hardwires mtval to 0)"]
    if report.instruction and report.access_base:
        text = f"the instruction at mepc is `{report.instruction}`, {_ACCESS_TEXT[report.access]} through " \
               f"{report.access_base}"
        if report.fault_address is not None:
            text += f" = {ev.memory_map.describe(report.fault_address)}" + (
                f" ({report.fault_symbol})" if report.fault_symbol else "")
        else:
            text += " (the handler has run since, so its value at the trap is not in the registers now)"
        evidence.append(text)
    evidence += parked
    advice = " ".join(report.explanation) or "Decode the trap with the ELF and fix the faulting access."
    return [Finding("pending-trap", "error", f"trap: {report.cause_name} at {ev.where(mepc)}; the core is parked",
                    evidence, f"{advice} (`xipscope trap --target URL --elf ELF` adds the backtrace.)")]


def check_nested_kernel_traps(ev: Evidence) -> list[Finding]:
    """A Linux kernel whose fault path faulted again: the trap frames it pushed, and the first cause, which is in the
    outermost one (linux/trap_frames.py). On an RP2350 with the kernel in PSRAM that is the first AMO, and the
    fault path's own AMOs (debug_locks_off's xchg) nest the faults until the stack runs over the kernel's data."""
    from .linux.trap_frames import PT_SIZE_ON_STACK, find_kernel_trap_frames

    sp = ev.reg("sp")
    if ev.symbols is None or sp is None or not ev.symbols.symbols_named("handle_exception"):
        return []      # not a RISC-V Linux kernel (its trap entry names it)
    frames = find_kernel_trap_frames(ev.read, sp, lambda a: ev.function(a) is not None)
    pending = _exception_recorded(ev) is not None and ev.function(ev.pc) == ev.function((ev.reg("mtvec") or 0) & ~3)
    depth = len(frames) + (1 if pending else 0)
    if depth < 2 or not frames:
        return []
    first = frames[-1]
    cause = first.cause & 0x7FFFFFFF
    report = explain_trap(ev.url, first.cause, first.epc, first.registers,
                          lambda address, size: ev.code(address, size) or None, ev.memory_map, ev.symbols,
                          mstatus=first.status, mtval=first.badaddr)
    evidence = [f"the outermost trap frame the kernel saved (struct pt_regs at {first.address:#010x}): mcause = "
                f"{cause} ({report.cause_name}), mepc = {ev.where(first.epc)}, mtval = {first.badaddr:#x}"]
    if report.instruction:
        text = f"the instruction at mepc is `{report.instruction}`"
        if report.fault_address is not None:
            text += f", to {ev.memory_map.describe(report.fault_address)}" + (
                f" ({report.fault_symbol})" if report.fault_symbol else "")
        evidence.append(text)
    nested = [ev.function(f.epc) or f"{f.epc:#x}" for f in reversed(frames[:-1])]
    evidence.append(f"{depth} faults nested: {len(frames)} trap frames saved between {frames[0].address:#010x} and "
                    f"{first.address + PT_SIZE_ON_STACK:#010x}" + (", and one being taken at pc" if pending else "")
                    + (f"; the faults after the first at: {', '.join(dict.fromkeys(nested))}" if nested else ""))
    evidence += _log_ring_lines(ev)
    advice = " ".join(report.explanation) or "Fix the first fault; the others are its fault path faulting again."
    return [Finding("nested-kernel-traps", "critical",
                    f"the kernel's first fault, {report.cause_name} at {ev.where(first.epc)}, nested {depth} deep",
                    evidence, f"The first fault is the cause; the nested ones are its fault path faulting again. "
                              f"{advice}")]


def _log_ring_lines(ev: Evidence) -> list[str]:
    """What the kernel's log ring holds: empty means the kernel died before printing its banner."""
    from .errors import XipscopeError
    from .linux.printk import kernel_log_facts, read_kernel_log

    if not ev.symbols.symbols_named("prb"):
        return []
    try:
        log = read_kernel_log(ev._target, kernel_log_facts(ev.symbols.path))
    except XipscopeError as e:
        return [f"the log ring could not be read: {e}"]
    if not log.records:
        return ["the log ring (prb) holds no record: the kernel died before its banner (start_kernel's first "
                "printk, `Linux version ...`), so `xipscope dmesg` has nothing to show and the console printed "
                "nothing"]
    return [f"the log ring holds {len(log.records)} records; the last: {log.records[-1].text!r}"]


_ACCESS_TEXT = {"amo": "an AMO", "lr": "an lr.w", "sc": "an sc.w", "load": "a load", "store": "a store"}


def check_panic_loop(ev: Evidence) -> list[Finding]:
    """Linux's panic(): after printing, it spins in an mdelay loop forever (kernel/panic.c)."""
    if ev.symbols is None:
        return []
    from .unwind import unwind_frame_pointers

    def is_code(address: int) -> bool:
        return ev.function(address) is not None

    def chain_from(regs: dict[str, int]) -> list[int]:
        return unwind_frame_pointers(regs["pc"], regs.get("sp", 0), regs.get("fp", regs.get("s0", 0)),
                                     regs.get("ra", 0), read_word=ev.word, is_code=is_code, max_frames=16).pcs

    # The final halt may land in an interrupt entry, where the frame chain is cut: try the samples' frames too.
    starts = [ev.registers] + list({r["pc"]: r for r in ev.sample_frames if "pc" in r}.values())[:8]
    sampled = {ev.function(pc) for pc in ev.pc_samples}
    hit = None
    for regs in starts:
        chain = chain_from(regs)
        names = [ev.function(pc) for pc in chain]
        hit = next((n for n in names if n in PANIC_FUNCTIONS), None)
        if hit is not None:
            break
    if hit is None:
        return []
    stack = " <- ".join(n or f"{pc:#x}" for n, pc in zip(names, chain))
    return [Finding(
        "panic-loop", "error", f"the kernel panicked: the core spins in {hit}()'s delay loop",
        [f"pc = {ev.where(chain[0])}", f"call chain (frame pointers): {stack}",
         f"PC samples in: {', '.join(sorted(n or '?' for n in sampled))}"],
        "Read the panic message and the log before it: `xipscope dmesg --elf vmlinux --target URL`.")]


def _rfmt_text(rfmt: int, rcmd: int) -> str:
    prefix = f"command {rcmd & 0xFF:#04x}" if rfmt & rp.RFMT_PREFIX_LEN else "no command"
    suffix_len = (rfmt >> rp.RFMT_SUFFIX_LEN_SHIFT) & 3
    suffix = f", mode bits {(rcmd >> rp.RCMD_SUFFIX_SHIFT) & 0xFF:#04x}" if suffix_len else ", no mode bits"
    width = ("single", "dual", "quad", "?")[(rfmt >> rp.RFMT_DATA_WIDTH_SHIFT) & 3]
    return f"{prefix}{suffix}, {width} data"


def check_xip_windows(ev: Evidence) -> list[Finding]:
    """ATRANS apertures, XIP_CTRL's NO_UNCACHED/NO_UNTRANSLATED bits, and RFMT/RCMD that lose continuous read."""
    findings = []
    if ev.qmi is not None:
        touched = [ev.pc, *ev.pc_samples] + [v for k, v in ev.registers.items() if k in ("mepc", "ra", "sp", "gp")]
        for n in range(rp.QMI_ATRANS_COUNT):
            atrans = ev.qmi[f"ATRANS{n}"]
            pages = rp.atrans_size_pages(atrans)
            if pages >= rp.QMI_ATRANS_WINDOW // rp.QMI_ATRANS_PAGE:
                continue
            start = rp.XIP_BASE + n * rp.QMI_ATRANS_WINDOW + pages * rp.QMI_ATRANS_PAGE
            end = rp.XIP_BASE + (n + 1) * rp.QMI_ATRANS_WINDOW
            used = [a for a in touched if any(start <= a - alias + rp.XIP_BASE < end
                                              for alias in (rp.XIP_ALIASES["cached"], rp.XIP_ALIASES["nocache"]))]
            evidence = [f"ATRANS{n} = {atrans:#010x}: SIZE {pages} sectors ({pages * 4} KiB) of its 4 MiB window; "
                        f"{start:#010x}-{end - 1:#010x} (and the same in the 0x14000000 alias) bus-faults"]
            evidence += [f"in use there: {ev.where(a)}" for a in used]
            findings.append(Finding(
                f"atrans{n}-size", "error" if used else "warning",
                f"XIP window: accesses beyond ATRANS{n}'s {pages * 4} KiB bus-fault", evidence,
                "Set SIZE to cover what the image uses (0x400 = the whole 4 MiB), or keep code and data inside the "
                "aperture; the untranslated alias 0x1c000000 bypasses ATRANS."))
        for w in (0, 1):
            rfmt, rcmd = ev.qmi[f"M{w}_RFMT"], ev.qmi[f"M{w}_RCMD"]
            direct = ev.qmi["DIRECT_CSR"] & rp.DIRECT_CSR_EN
            if (rfmt, rcmd) == rp.QMI_ROM_FLASH_OP_READ and not direct:
                findings.append(Finding(
                    f"m{w}-rom-flash-op-mode", "warning",
                    f"XIP on M{w} still reads the way the boot ROM's flash functions leave it: slow serial reads",
                    [f"M{w}_RFMT = {rfmt:#010x}, M{w}_RCMD = {rcmd:#010x}: {_rfmt_text(rfmt, rcmd)}; the ROM flash "
                     "functions set this and it stays until the boot-time XIP mode is restored (rp2350-flash.md)",
                     "direct mode is off, so no flash operation is in progress"],
                    "After flash_range_erase/program (ROM), restore the fast read mode: pico-sdk does it with "
                    "flash_enable_xip_via_boot2 / the ROM's flash_select_xip_read_mode."))
            if rfmt & rp.RFMT_PREFIX_LEN:
                continue   # every read sends its command: works whatever mode the chip is in
            suffix_len = (rfmt >> rp.RFMT_SUFFIX_LEN_SHIFT) & 3
            mode = (rcmd >> rp.RCMD_SUFFIX_SHIFT) & 0xFF
            if suffix_len == rp.RFMT_SUFFIX_LEN_8 and mode >> 4 == rp.CONTINUOUS_READ_MODE_NIBBLE:
                continue   # continuous read, kept alive by 0xAx mode bits
            chip = "flash (CS0)" if w == 0 else "PSRAM (CS1)"
            findings.append(Finding(
                f"m{w}-not-continuous", "error",
                f"XIP reads from {chip} send no command but do not keep the chip in continuous-read mode: "
                "reads return garbage",
                [f"M{w}_RFMT = {rfmt:#010x}, M{w}_RCMD = {rcmd:#010x}: {_rfmt_text(rfmt, rcmd)}",
                 "without a command prefix the chip must be in continuous-read mode, which needs 0xAx mode bits "
                 "in the suffix of every read; a chip out of that mode answers garbage with no bus fault "
                 "(illegal-instruction traps from XIP point here)"],
                "Restore the boot-time XIP setup after a flash operation (pico-sdk's flash_range_* do it via "
                "flash_enable_xip_via_boot2 / the ROM's flash_select_xip_read_mode), or send the command on every "
                "read (RFMT.PREFIX_LEN = 1)."))
    if ev.xip_ctrl is not None:
        ctrl = ev.xip_ctrl["CTRL"]
        refused = [(rp.CTRL_NO_UNCACHED_SEC, "no-uncached-sec", "Secure", "uncached 0x14000000"),
                   (rp.CTRL_NO_UNCACHED_NONSEC, "no-uncached-nonsec", "Non-secure", "uncached 0x14000000"),
                   (rp.CTRL_NO_UNTRANSLATED_SEC, "no-untranslated-sec", "Secure", "untranslated 0x1c000000")]
        for bit, finding_id, who, alias in refused:
            if ctrl & bit:
                findings.append(Finding(
                    finding_id, "warning", f"XIP_CTRL refuses {who} accesses to the {alias} alias",
                    [f"XIP_CTRL.CTRL = {ctrl:#010x}: bit {bit.bit_length() - 1} set; such accesses bus-fault"],
                    "Clear the bit if code or the debugger reads flash through that alias (e.g. to read flash "
                    "without polluting the cache)."))
    return findings


def check_xip_cache(ev: Evidence) -> list[Finding]:
    """The XIP cache switched off or powered down: slow, not a hang."""
    if ev.xip_ctrl is None:
        return []
    ctrl = ev.xip_ctrl["CTRL"]
    problems = []
    if ctrl & rp.CTRL_POWER_DOWN:
        problems.append("POWER_DOWN = 1: the cache memories are powered down (it also forces both EN bits off)")
    if not ctrl & rp.CTRL_EN_SECURE:
        problems.append("EN_SECURE = 0: Secure accesses (Hazard3 in M-mode) bypass the cache")
    if not ctrl & rp.CTRL_EN_NONSECURE:
        problems.append("EN_NONSECURE = 0: Non-secure accesses bypass the cache")
    if not problems:
        return []
    return [Finding("xip-cache-off", "warning",
                    "XIP cache off or powered down: every XIP access goes to the QSPI device (slow, not a hang)",
                    [f"XIP_CTRL.CTRL = {ctrl:#010x}"] + problems,
                    f"Write {rp.XIP_CTRL_CTRL_RESET:#x} (the reset value) to XIP_CTRL.CTRL unless the cache is "
                    "deliberately used as SRAM.")]


def check_counters(ev: Evidence) -> list[Finding]:
    """mcycle/minstret held by mcountinhibit (Hazard3 resets it to 1s); XIP counters saturated."""
    findings = []
    inhibit = ev.reg("mcountinhibit")
    if inhibit is not None and inhibit & 0b101:
        findings.append(Finding(
            "counters-inhibited", "warning", "mcycle/minstret are not counting",
            [f"mcountinhibit = {inhibit:#x}: CY = {inhibit & 1}, IR = {(inhibit >> 2) & 1} (Hazard3 resets both to 1)"]
            + ([f"mcycle = {ev.reg('mcycle_before'):#x} before the samples and {ev.reg('mcycle'):#x} after"]
               if ev.reg("mcycle_before") is not None and ev.reg("mcycle") is not None else []),
            "Clear mcountinhibit (`csrw mcountinhibit, zero`) early in boot if anything reads cycle or instret "
            "(Linux's sched_clock fallback, profilers, delay loops)."))
    if ev.xip_ctrl is not None:
        saturated = [n for n in ("CTR_HIT", "CTR_ACC") if ev.xip_ctrl[n] == rp.XIP_COUNTER_MAX]
        if saturated:
            findings.append(Finding(
                "xip-counters-saturated", "warning", f"XIP counter{'s' if len(saturated) > 1 else ''} saturated",
                [f"{n} = 0xffffffff: it saturates and stops there" for n in saturated],
                "Write any value to CTR_HIT and CTR_ACC to clear them before measuring."))
    return findings


# Each entry: (what it checks, for the "nothing wrong" report; the check; region it needs in the map, or None).
CHECKS = [
    ("XIP accessed while QMI direct mode is on (the flash-write hang rule)", check_direct_mode, "xip_qmi"),
    ("LR/SC loops on addresses outside SRAM (livelock)", check_lrsc_livelock, None),
    ("a Linux kernel's nested faults and its first cause (the outermost trap frame)", check_nested_kernel_traps,
     None),
    ("a pending trap with the core parked (mcause/mepc)", check_pending_trap, None),
    ("the Linux panic loop", check_panic_loop, None),
    ("XIP window settings: ATRANS sizes, M0/M1 RFMT/RCMD continuous read, XIP_CTRL alias bits", check_xip_windows,
     "xip_qmi"),
    ("XIP cache enabled and powered", check_xip_cache, "xip_ctrl"),
    ("mcycle/minstret and XIP counters running", check_counters, None),
]


def run_checks(ev: Evidence, checks=None) -> Diagnosis:
    findings: list[Finding] = []
    checked: list[str] = []
    for what, check, needs in (CHECKS if checks is None else checks):
        if needs is not None and not _has_region(ev.memory_map, needs):
            continue
        if check is check_panic_loop and ev.symbols is None:
            ev.notes.append("no --elf: skipped the panic-loop check and symbol names")
            continue
        checked.append(what)
        findings += check(ev)
    findings.sort(key=lambda f: SEVERITIES.index(f.severity))
    return Diagnosis(findings, checked, ev)


def diagnose(target, symbols=None, memory_map: MemoryMap | None = None, samples: int = DEFAULT_SAMPLES,
             checks=None) -> Diagnosis:
    """Gather the evidence (halting briefly), run the checks, and leave the target running if it was."""
    from .targets.base import REGISTERS, require, require_riscv
    require_riscv(target, "doctor (its checks decode the RISC-V code at pc)")
    require(target, REGISTERS, "doctor (it reads the CSRs)")     # a snapshot will do: its samples are skipped
    if memory_map is None:
        from .chip.memory_map import get_memory_map
        memory_map = get_memory_map("rp2350")
    ev = gather(target, symbols, memory_map, samples)
    try:
        return run_checks(ev, checks)
    finally:
        if ev.was_running:
            target.resume()


def format_diagnosis(d: Diagnosis) -> str:
    ev = d.evidence
    lines = [f"xipscope doctor: {ev.url} (map {ev.memory_map.name}): pc {ev.where(ev.pc)}, "
             f"{len(ev.pc_samples)} PC samples"]
    if not d.findings:
        lines.append("Nothing wrong found. Checked:")
        lines += [f"  - {c}" for c in d.checked]
    for f in d.findings:
        lines.append(f"{f.severity.upper():9} {f.id}: {f.title}")
        lines += [f"    - {e}" for e in f.evidence]
        lines.append(f"    what to do: {f.advice}")
    lines += [f"note: {n}" for n in ev.notes]
    return "\n".join(lines) + "\n"
