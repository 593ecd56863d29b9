"""The RP2350 LR/SC livelock in one place: find the lr.w/sc.w loop a core spins in, judge its lock, name it, say why.

rp2350.md "Atomics outside SRAM": lr.w outside the global exclusive monitor's range (SRAM) does not fault, it sets
no reservation, so every sc.w fails and an LR/SC retry loop spins forever without a trap. trap.py (a halted pc),
doctor.py (a burst of PC samples) and profile/analysis.py (a profile's samples) each bring their own evidence of
where the core spins and present the answer their own way; the decoding and the judgement live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .chip.rv_insn import Insn, disassemble

if TYPE_CHECKING:
    from .chip.memory_map import MemoryMap, Region
    from .elf import SymbolIndex

SEARCH_BEFORE = 64          # the lr.w heading the loop may lie this far before the lowest pc seen (samples miss it)
SEARCH_AFTER = 32           # and the sc.w this far past the highest pc (or the lr.w)
FUNCTION_START_LIMIT = 256  # decode from the function's start when it is at most this far back (bytes read: few)
VERDICTS = ("rp2350-livelock", "likely-rp2350-livelock", "contention")
SOURCE = 'rp2350.md, "Atomics outside SRAM"'


@dataclass(frozen=True)
class LrScLoop:
    """The lr.w and the sc.w after it on the same address register: the head and the test of a retry loop."""

    lr: Insn
    sc: Insn
    function: str | None        # the function holding the lr.w, when the symbols know it

    @property
    def lock_register(self) -> str:
        """The lr.w's rs1 (gdb's name): it holds the lock address while the core is in the loop."""
        return self.lr.base_name


@dataclass(frozen=True)
class Lock:
    """The word an LR/SC loop spins on, judged against the memory map."""

    address: int
    register: str
    region: "Region | None"     # None: no region of the map holds it
    variable: str | None        # the variable there (name or name+0xoff), when the symbols know one

    @property
    def region_name(self) -> str:
        return self.region.name if self.region is not None else "unmapped"

    @property
    def outside_monitor(self) -> bool:
        """True where lr.w sets no reservation: every region but those the map marks atomics_ok (SRAM)."""
        return self.region is None or not self.region.atomics_ok

    def text(self) -> str:
        """`0x11000000 (`psram_lock`) in psram`."""
        return f"{self.address:#x}" + (f" (`{self.variable}`)" if self.variable else "") + f" in {self.region_name}"


def find_lrsc_loop(read: Callable[[int, int], bytes | None], lo: int, hi: int,
                   symbols: "SymbolIndex | None" = None) -> LrScLoop | None:
    """The lr.w/sc.w loop a core spinning at pcs lo..hi is in, decoded from code bytes `read(address, size)` gives
    (target memory or the ELF); None when there is no such pair.

    RISC-V instruction lengths are only certain decoding forwards from a known boundary: the function's start when
    the symbols know it and it is near, else lo itself (a pc) widened back to the target of a branch from lo on
    that jumps behind it (a retry loop branches back to its lr.w).
    """
    base = None
    if symbols is not None:
        func, offset, _file, _line = symbols.symbolize([lo])[0]
        if func is not None and offset <= FUNCTION_START_LIMIT:
            base = lo - offset
    end = hi + SEARCH_AFTER + 4
    if base is not None:
        code = read(base, end - base) or b""
    if base is None or (not code and base < lo):   # no symbols, or the function start cannot be read
        base, code = lo, read(lo, end - lo) or b""
        behind = [i.target for i in disassemble(code, lo)
                  if i.target is not None and lo - SEARCH_BEFORE <= i.target < lo]
        if behind:
            wider = read(min(behind), end - min(behind))
            if wider:
                base, code = min(behind), wider
    insns = disassemble(code, base)
    lrs = [i for i in insns if i.kind == "lr" and lo - SEARCH_BEFORE <= i.address <= hi + SEARCH_AFTER]
    if not lrs:
        return None
    before = [i for i in lrs if i.address <= hi]
    lr = before[-1] if before else lrs[0]   # the lr.w nearest the pcs: the one whose loop they are in
    limit = max(hi, lr.address) + SEARCH_AFTER
    sc = next((i for i in insns if i.kind == "sc" and i.base == lr.base and lr.address < i.address <= limit), None)
    if sc is None:
        return None
    function = symbols.symbolize([lr.address])[0][0] if symbols is not None else None
    return LrScLoop(lr, sc, function)


def judge_lock(loop: LrScLoop, registers: dict[str, int] | None, memory_map: "MemoryMap",
               symbols: "SymbolIndex | None" = None) -> Lock | None:
    """The lock the loop spins on, from the lr.w's address register read at a halt inside the loop; None when the
    registers (or that one) are unknown."""
    address = loop.lr.effective_address(registers or {})
    if address is None:
        return None
    variable = symbols.variable_at(address) if symbols is not None else None
    return Lock(address, loop.lock_register, memory_map.find(address), variable)


def verdict(lock: Lock | None) -> str:
    """One of VERDICTS: certain outside SRAM, inferred when the lock is unknown, a real wait inside SRAM."""
    if lock is None:
        return "likely-rp2350-livelock"
    return "rp2350-livelock" if lock.outside_monitor else "contention"


def sram_text(memory_map: "MemoryMap") -> str:
    """The ranges where atomics work, `0x20000000-0x20082000`, from the map's atomics_ok regions."""
    return ", ".join(f"{r.start:#x}-{r.end:#x}" for r in memory_map if r.atomics_ok) or "none in this map"


def explain(loop: LrScLoop, lock: Lock | None, memory_map: "MemoryMap") -> str:
    """One sentence on what the loop means, for the verdict the lock gives."""
    reg, sram = loop.lock_register, sram_text(memory_map)
    if lock is None:
        return (f"the lock address (in {reg} at the lr.w) is not known: a loop that never exits is what lr.w outside "
                f"SRAM ({sram}) does on the RP2350, setting no reservation so every sc.w fails ({SOURCE}), but a lock "
                f"in SRAM held that long by another hart looks the same; halt in the loop and read {reg} to be sure.")
    if not lock.outside_monitor:
        return (f"the lock at {lock.text()}, read from {reg}, is inside the exclusive monitor's range ({sram}): "
                "sc.w can succeed, so this is a wait for another holder, not the RP2350 livelock.")
    return (f"the lock at {lock.text()}, read from {reg}, is outside SRAM ({sram}), where lr.w sets no reservation, "
            f"so every sc.w fails and the loop retries forever without a trap ({SOURCE}).")
