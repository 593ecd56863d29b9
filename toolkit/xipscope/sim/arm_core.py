"""The twin in Arm mode (a model): one Cortex-M33 core of the RP2350 running a Thumb firmware in unicorn, behind the
same XIP cache and counters as the RISC-V twin (hazard3/), with the debug registers an external debugger reaches
through core 0's AHB-AP (rp2350.md "Debug access": AP 0x2000). The DAP face (dap.py) puts it under pyOCD.

The RP2350 boots either its Cortex-M33 or its Hazard3 cores; the twin runs whichever architecture the firmware ELF is
built for. Modelled, from the ARMv8-M architecture (DDI0553) as pyOCD uses it:
  - DHCSR (C_DEBUGEN, C_HALT, C_STEP; S_HALT, S_REGRDY, S_RETIRE_ST, S_RESET_ST, S_LOCKUP), DCRSR/DCRDR (core
    registers by REGSEL), DEMCR (VC_CORERESET), DFSR, AIRCR (SYSRESETREQ resets the core), VTOR, DSCSR (the core
    runs Secure), CPUID of a Cortex-M33 r1p0 (ASSUMED revision), ID_PFR1 with the Security Extension;
  - the PPB ROM table, SCS, DWT and FPB as CoreSight components with their ID registers, so pyOCD's own discovery
    finds the core;
  - DSCSR.CDS, the core's Security state: Secure unless a test sets `secure = False` (unicorn runs the same code
    either way); a debugger's write with CDSKEY 0 changes it while the core is halted;
  - ACCESSCTRL (chip/rp2350.py): LOCK, FORCE_CORE_NS, CFGRESET, GPIO_NSMASK0/1, ROM, XIP_MAIN, SRAM0, with the
    password and the LOCK bits; what it grants is recorded, not enforced (every access is allowed);
  - DWT_CYCCNT counts the model's cycles while DEMCR.TRCENA and DWT_CTRL.CYCCNTENA are set (not while halted);
  - DWT_PCSR, an option of the architecture, off by default (`pcsr=True` turns it on; whether RP2350's M33 has it is
    not yet known): reads 0 when absent or while DEMCR.TRCENA is clear (the model's choice of UNKNOWN), 0xFFFFFFFF
    while halted, else the pc the core stands at between slices (ASSUMED: the next instruction, not the last one run);
  - one injected fault a real part gives only by chance: `slow_register_transfers = N` leaves the next N DCRSR
    transfers incomplete (S_REGRDY reads clear, DCRDR keeps its old value) until the next DCRSR write;
  - XIP: instruction fetch accounted per 32-bit word of each translated block as it is entered, data accesses as they
    happen, through the cache model (cache.py); every instruction one cycle plus XIP miss stalls (counters.Timing).
    When a slice ends inside a block, the instructions not executed are taken back, the fetches are not.
Not modelled: exceptions and interrupts (an instruction unicorn cannot run stops the core in lockup), the FPU (CPACR
reads 0, so debuggers see none; the RP2350's cores have one), MPU/SAU, FPB breakpoints and DWT watchpoints (the
registers hold what is written), the second core, sleep, the bootrom (the core starts from the vector table at the
start of flash: MSP, then the reset handler; a board needs the bootrom's IMAGE_DEF, which the twin does not check).
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

from ..chip import rp2350 as rp
from ..chip.armv8m import (AIRCR, AIRCR_SYSRESETREQ, AIRCR_VECTKEY, ARCHID_DWT_V2, ARCHID_FPB_V2, ARCHID_V8M_DEBUG,
                           CPACR, CPUID, C_DEBUGEN, C_HALT, C_STEP, DBGKEY, DCRDR, DCRSR, DCRSR_REGSEL, DCRSR_REGWNR,
                           DEMCR, DEMCR_TRCENA, DEMCR_VC_CORERESET, DEVARCH_PRESENT, DFSR, DFSR_HALTED, DFSR_VCATCH,
                           DHCSR, DSCSR, DSCSR_CDS, DSCSR_CDSKEY, DWT_BASE, DWT_CTRL_CYCCNTENA, DWT_CYCCNT, DWT_PCSR,
                           FPB_BASE, ID_PFR1, PCSR_NO_SAMPLE, PPB_ROM_TABLE, SCS_BASE, S_HALT, S_LOCKUP, S_REGRDY,
                           S_RESET_ST, S_RETIRE_ST, S_SDE, VTOR, coresight_id)
from ..errors import TargetError
from . import MODEL_NOTE
from .bus import Bus
from .xip_cache import XipCache
from .counters import Timing
from ..elf.program import ElfImage
from .memory import TwinMemory
from .peripherals import Uart, XipCtrl
from .truth import FunctionStats, region_of

# --- the model's choices for the System Control Space and debug components ---------------------------------------
CPUID_CORTEX_M33_R1P0 = 0x411FD210      # implementer Arm, variant 1, ARMv8-M, part 0xD21, revision 0 (ASSUMED)
ID_PFR1_SECURITY = 0x00000210            # M-profile programmers' model, Security Extension implemented
DWT_CTRL_4_COMPARATORS = 4 << 28
FPB_CTRL_V2_4_CODE = (1 << 28) | (4 << 4)   # FPBv2, four instruction comparators

PART_CORTEX_M33 = 0xD21
PART_PPB_ROM_TABLE = 0x4C9                   # ASSUMED part number of the M33's PPB ROM table


def _rom_entry(component: int, table: int) -> int:
    """A 32-bit ROM table entry: the component's offset from the table, present, 32-bit format."""
    return ((component - table) & 0xFFFFF000) | 0x3


# Core registers by DCRSR REGSEL (ARMv8-M), as unicorn names them.
def _regsel_table():
    from unicorn import arm_const as a

    table = {i: getattr(a, f"UC_ARM_REG_R{i}") for i in range(13)}
    table.update({13: a.UC_ARM_REG_SP, 14: a.UC_ARM_REG_LR, 15: a.UC_ARM_REG_PC, 16: a.UC_ARM_REG_XPSR,
                  17: a.UC_ARM_REG_MSP, 18: a.UC_ARM_REG_PSP, 0x1A: a.UC_ARM_REG_MSP, 0x1B: a.UC_ARM_REG_PSP})
    return table


REGISTER_NAMES = DCRSR_REGSEL


class AccessCtrl:
    """ACCESSCTRL's registers (a model, chip/rp2350.py): written by core 0 or the debugger, each write with the
    password; a master whose LOCK bit is set is ignored; CFGRESET puts everything but LOCK and FORCE_CORE_NS back to
    reset. `cfgresets` counts the CFGRESETs that took effect."""

    LOCK_OF = {"core0": rp.ACCESSCTRL_LOCK_CORE0, "core1": rp.ACCESSCTRL_LOCK_CORE1, "debug": rp.ACCESSCTRL_LOCK_DEBUG}

    def __init__(self):
        self.registers = {offset: reset for offset, (_bits, reset) in rp.ACCESSCTRL_REGISTERS.items()}
        self.cfgresets = 0

    def read(self, offset: int) -> int:
        if offset == rp.ACCESSCTRL_CFGRESET:
            return 0                                           # self-clearing
        if offset not in self.registers:
            raise TargetError(f"{MODEL_NOTE}: ACCESSCTRL register {offset:#x} is not modelled")
        return self.registers[offset]

    peek = read

    def write(self, offset: int, value: int, master: str = "core0") -> None:
        """A write by `master`: the firmware's stores come from core 0, the debugger's through poke."""
        if self.registers[rp.ACCESSCTRL_LOCK] & self.LOCK_OF[master]:
            return
        if offset not in rp.ACCESSCTRL_NO_PASSWORD and value & 0xFFFF0000 != rp.ACCESSCTRL_PASSWORD:
            return
        if offset == rp.ACCESSCTRL_CFGRESET:
            if value & 1:
                kept = (rp.ACCESSCTRL_LOCK, rp.ACCESSCTRL_FORCE_CORE_NS)
                for reg, (_bits, reset) in rp.ACCESSCTRL_REGISTERS.items():
                    if reg not in kept:
                        self.registers[reg] = reset
                self.cfgresets += 1
            return
        if offset not in self.registers:
            raise TargetError(f"{MODEL_NOTE}: ACCESSCTRL register {offset:#x} is not modelled")
        bits = rp.ACCESSCTRL_REGISTERS[offset][0]
        if offset == rp.ACCESSCTRL_LOCK:       # LOCK bits only ever go from 0 to 1
            self.registers[offset] |= value & bits
        else:
            self.registers[offset] = (self.registers[offset] & ~bits) | (value & bits)

    def poke(self, offset: int, value: int) -> None:
        self.write(offset, value, "debug")


class ArmCore:
    """The twin of core 0 of an RP2350 in Arm mode, with flash, 8 MiB PSRAM, SRAM and the peripherals its bus maps
    (bus.py: UART0, XIP_CTRL, ACCESSCTRL) (a model)."""

    def __init__(self, firmware: str | Path, *, timing: Timing | None = None, seed: int = 0, pcsr: bool = False):
        from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
        from unicorn.arm_const import UC_CPU_ARM_CORTEX_M33

        self.firmware = Path(firmware)
        self.elf = ElfImage(self.firmware, machine="EM_ARM")
        self.timing = timing or Timing()
        self.cache = XipCache(seed)
        self.xip_ctrl = XipCtrl(self.cache)
        self.uart = Uart()
        self.lock = threading.RLock()       # the DAP face serialises on it: one slice or one batch at a time
        self._uc = uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M33)
        self._regsel = _regsel_table()
        nf = len(self.elf.functions)
        # Ground truth per ELF function; the extra last slot (-1) collects code outside every function.
        self._instructions = [0] * (nf + 1)
        self._stalls = [0] * (nf + 1)
        self._fetches = [[0, 0] for _ in range(nf + 1)]     # [XIP accesses, hits] per function
        self._data = [[0, 0] for _ in range(nf + 1)]
        self._blocks: dict[int, tuple[int, tuple[int, ...]]] = {}   # address -> (function, instruction addresses)
        self._last_block: tuple[int, tuple[int, ...]] | None = None
        self._disassembler = None
        # Debug state (DHCSR and friends).
        self.dhcsr_control = 0
        self.halted = False
        self.lockup: str | None = None     # why the core stopped on its own (an instruction it could not run)
        self.retired_since_read = False
        self.reset_since_read = True
        self.dfsr = 0
        self.demcr = 0
        self.dcrdr = 0
        self.pcsr = pcsr                       # DWT_PCSR implemented (an option; see the module docstring)
        self.debug_entries = 0                 # times the core entered Debug state (halts, steps, catches)
        self.slow_register_transfers = 0       # injected fault: DCRSR transfers left incomplete (module docstring)
        self._register_transfer_done = True    # S_REGRDY: the last DCRSR transfer completed
        self.vtor = rp.XIP_BASE
        self.secure = True                     # the Security state DSCSR.CDS reports (the bootrom enters Secure)
        self.accessctrl = AccessCtrl()
        self.ppb_writes: dict[int, int] = {}   # DWT/FPB and other registers kept as written
        self._cyccnt_mark = (0, 0)             # (DWT_CYCCNT, cycles) when it last started, stopped or was written
        self.memory = TwinMemory()
        self.memory.map_into(self._uc)
        self.bus = Bus(self)
        self.bus.map_into(self._uc)
        self.memory.load_segments(self.elf)
        self._install_hooks()
        self.reset()

    # --- setup ---------------------------------------------------------------------------------------------------
    def _install_hooks(self) -> None:
        from unicorn import UC_HOOK_BLOCK, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE

        self._uc.hook_add(UC_HOOK_BLOCK, self._on_block)
        self._uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, self._on_xip_data, begin=rp.XIP_BASE,
                          end=rp.XIP_END - 1)

    # --- accounting (the hot paths) ----------------------------------------------------------------------------------
    def _block(self, address: int, size: int) -> tuple[int, tuple[int, ...]]:
        block = self._blocks.get(address)
        if block is None:
            if self._disassembler is None:
                from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, CS_MODE_V8, Cs
                self._disassembler = Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS | CS_MODE_V8)
            code = self.read_memory(address, size)
            starts = tuple(address + offset for offset, _size, _m, _o in self._disassembler.disasm_lite(code, 0))
            block = self._blocks[address] = (self.elf.function_index(address), starts or (address,))
        return block

    def _xip_access(self, address: int) -> tuple[bool, bool]:
        """One access to XIP address `address`: (counted, hit); cached aliases look up and allocate."""
        alias = rp.xip_alias(address)
        if alias == "cached":
            return True, self.cache.lookup(rp.xip_physical(address))
        if alias in ("nocache", "untranslated"):
            return True, self.cache.count_uncached()
        return False, False

    def _stall(self, address: int) -> int:
        cs1 = rp.xip_physical(address) >= rp.XIP_CS1_OFFSET
        return self.timing.psram_miss_cycles if cs1 else self.timing.flash_miss_cycles

    def _on_block(self, _uc, address: int, size: int, _ud) -> None:
        f, starts = block = self._block(address, size)
        self._last_block = block
        self._instructions[f] += len(starts)
        if rp.XIP_BASE <= address < rp.XIP_END:
            fetches = self._fetches[f]
            for word in range(address & ~3, address + size, 4):
                counted, hit = self._xip_access(word)
                fetches[0] += counted
                fetches[1] += hit
                if counted and not hit:
                    self._stalls[f] += self._stall(word)

    def _on_xip_data(self, _uc, _access, address: int, _size, _value, _ud) -> None:
        counted, hit = self._xip_access(address)
        if counted:
            f = self._last_block[0] if self._last_block else -1
            self._data[f][0] += 1
            self._data[f][1] += hit
            if not hit:
                self._stalls[f] += self._stall(address)

    # --- running ---------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Core reset: MSP and pc from the vector table at VTOR; a reset catch (DEMCR.VC_CORERESET) halts there."""
        from unicorn import arm_const as a

        self.vtor = rp.XIP_BASE
        msp = int.from_bytes(self.read_memory(self.vtor, 4), "little")
        entry = int.from_bytes(self.read_memory(self.vtor + 4, 4), "little")
        for i in range(13):
            self._uc.reg_write(self._regsel[i], 0)
        self._uc.reg_write(a.UC_ARM_REG_LR, 0xFFFFFFFF)
        self._uc.reg_write(a.UC_ARM_REG_MSP, msp)
        self._uc.reg_write(a.UC_ARM_REG_SP, msp)
        self._uc.reg_write(a.UC_ARM_REG_PC, entry & ~1)
        self._uc.reg_write(a.UC_ARM_REG_XPSR, (entry & 1) << 24)     # EPSR.T from the reset vector's bit 0
        self.lockup = None
        self.reset_since_read = True
        self._last_block = None
        if self.demcr & DEMCR_VC_CORERESET and self.dhcsr_control & C_DEBUGEN:
            self._enter_halt(DFSR_VCATCH)

    @property
    def pc(self) -> int:
        from unicorn.arm_const import UC_ARM_REG_PC
        return self._uc.reg_read(UC_ARM_REG_PC)

    @property
    def instructions(self) -> int:
        """Ground truth: instructions executed since power-on."""
        return sum(self._instructions)

    @property
    def cycles(self) -> int:
        """Ground truth: modelled cycles since power-on (instructions + XIP stall cycles)."""
        return sum(self._instructions) + sum(self._stalls)

    def _cyccnt_counting(self) -> bool:
        return bool(self.demcr & DEMCR_TRCENA and self.ppb_writes.get(DWT_BASE, 0) & DWT_CTRL_CYCCNTENA)

    def _cyccnt(self) -> int:
        value, at = self._cyccnt_mark
        return (value + (self.cycles - at if self._cyccnt_counting() else 0)) & 0xFFFFFFFF

    @property
    def needs_simulation(self) -> bool:
        return not self.halted and self.lockup is None

    def run_slice(self, budget: int) -> None:
        """Execute about `budget` instructions unless halted (the DAP face calls this between batches)."""
        if not self.needs_simulation:
            return
        self._execute(budget)
        if self.dhcsr_control & C_STEP and self.dhcsr_control & C_DEBUGEN:
            self._enter_halt(DFSR_HALTED)

    def step(self) -> None:
        """One instruction (DHCSR.C_STEP with C_HALT clear), then halted again."""
        self.halted = False
        self._execute(1)
        self._enter_halt(DFSR_HALTED)

    def _execute(self, count: int) -> None:
        """Run up to `count` instructions from pc. A run that ends inside a block counted all of it on entry: the
        instructions from pc on are taken back. An instruction or access unicorn cannot run leaves the core in lockup."""
        self._last_block = None
        try:
            self._uc.emu_start(self.pc | 1, 0xFFFFFFFF, count=count)
        except Exception as e:   # unicorn's UcError
            self.lockup = f"{e} at pc {self.pc:#x}"
        block, self._last_block = self._last_block, None
        if block is not None:
            pc = self.pc
            f, starts = block
            if starts[0] <= pc <= starts[-1]:
                self._instructions[f] -= sum(1 for s in starts if s >= pc)
            self.retired_since_read = True

    def _enter_halt(self, reason: int) -> None:
        """Debug state: S_HALT, and C_HALT reads 1 (the PE sets it on entry, after a step too), DFSR says why."""
        self.halted = True
        self.debug_entries += 1
        self.dhcsr_control |= C_HALT
        self.dfsr |= reason

    # --- the debugger's view of the bus (the AHB-AP) ------------------------------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        """What a debugger reads: no cache or counter side effects; the PPB and MMIO word by word."""
        where = self.memory.backing(address)
        if where is not None and self.memory.backing(address + size - 1) is not None:
            buf, off = where
            return ctypes.string_at(ctypes.addressof(buf) + off, size)
        out = bytearray()
        for word in range(address & ~3, address + size, 4):
            out += self.read_word(word).to_bytes(4, "little")
        start = address & 3
        return bytes(out[start:start + size])

    def write_memory(self, address: int, data: bytes) -> None:
        where = self.memory.backing(address)
        if where is not None and self.memory.backing(address + len(data) - 1) is not None:
            buf, off = where
            ctypes.memmove(ctypes.addressof(buf) + off, data, len(data))
            self._blocks.clear()
            self._uc.ctl_flush_tb()
            return
        # Registers take whole words: a partial first or last word is read, merged and written back.
        first, end = address & ~3, (address + len(data) + 3) & ~3
        words = bytearray(self.read_memory(first, end - first)) if (address | len(data)) & 3 else bytearray(end - first)
        words[address - first:address - first + len(data)] = data
        for word in range(first, end, 4):
            self.write_word(word, int.from_bytes(words[word - first:word - first + 4], "little"))

    def read_word(self, address: int) -> int:
        where = self.memory.backing(address)
        if where is not None:
            buf, off = where
            return int.from_bytes(ctypes.string_at(ctypes.addressof(buf) + off, 4), "little")
        if address >= 0xE0000000:
            return self._ppb_read(address)
        value = self.bus.peek(address)
        if value is not None:
            return value
        raise TargetError(f"{MODEL_NOTE}: nothing at {address:#x} on the Arm core's bus")

    def write_word(self, address: int, value: int) -> None:
        where = self.memory.backing(address)
        if where is not None:
            self.write_memory(address, value.to_bytes(4, "little"))
        elif address >= 0xE0000000:
            self._ppb_write(address, value)
        elif not self.bus.poke(address, value):
            raise TargetError(f"{MODEL_NOTE}: nothing at {address:#x} on the Arm core's bus")

    # --- the PPB: SCS debug registers, DWT, FPB, ROM table ------------------------------------------------------------
    def _ppb_read(self, address: int) -> int:
        block, offset = address & ~0xFFF, address & 0xFFF
        ids = self._component_ids(block, offset)
        if ids is not None:
            return ids
        if address == DHCSR:
            value = (self.dhcsr_control & 0xFFFF) | S_SDE
            value |= S_REGRDY if self._register_transfer_done else 0
            value |= S_HALT if self.halted else 0
            value |= S_LOCKUP if self.lockup else 0
            value |= S_RETIRE_ST if self.retired_since_read else 0
            value |= S_RESET_ST if self.reset_since_read else 0
            self.retired_since_read = self.reset_since_read = False
            return value
        fixed = {CPUID: CPUID_CORTEX_M33_R1P0, ID_PFR1: ID_PFR1_SECURITY, DSCSR: DSCSR_CDS if self.secure else 0,
                 CPACR: 0,
                 AIRCR: 0xFA050000, VTOR: self.vtor, DFSR: self.dfsr, DEMCR: self.demcr, DCRDR: self.dcrdr,
                 DWT_BASE: DWT_CTRL_4_COMPARATORS | self.ppb_writes.get(DWT_BASE, 0) & 0xFFFF,
                 FPB_BASE: FPB_CTRL_V2_4_CODE | self.ppb_writes.get(FPB_BASE, 0) & 0x1}
        if address in fixed:
            return fixed[address]
        if address == DWT_CYCCNT:
            return self._cyccnt()
        if address == DWT_PCSR:
            if not (self.pcsr and self.demcr & DEMCR_TRCENA):
                return 0
            return PCSR_NO_SAMPLE if self.halted else self.pc
        return self.ppb_writes.get(address, 0)

    def _component_ids(self, block: int, offset: int) -> int | None:
        if block == PPB_ROM_TABLE:
            if offset < 0xF00:
                entries = [_rom_entry(base, PPB_ROM_TABLE) for base in (SCS_BASE, DWT_BASE, FPB_BASE)]
                return entries[offset >> 2] if offset >> 2 < len(entries) else 0
            return coresight_id(offset, part=PART_PPB_ROM_TABLE, component_class=0x1, type_register=0x1)
        archids = {SCS_BASE: ARCHID_V8M_DEBUG, DWT_BASE: ARCHID_DWT_V2, FPB_BASE: ARCHID_FPB_V2}
        if block in archids and offset >= 0xFBC:
            return coresight_id(offset, part=PART_CORTEX_M33, component_class=0x9,
                                devarch=DEVARCH_PRESENT | archids[block])
        return None

    def _ppb_write(self, address: int, value: int) -> None:
        from unicorn.arm_const import UC_ARM_REG_PC

        if address == DHCSR:
            if value >> 16 != DBGKEY:
                return                      # writes without the key are ignored
            self.dhcsr_control = value & 0xFFFF
            if not value & C_DEBUGEN:
                self.halted = False
            elif value & C_HALT and not self.halted:
                self._enter_halt(DFSR_HALTED)
            elif not value & C_HALT and self.halted:
                if value & C_STEP:
                    self.step()
                else:
                    self.halted = False
        elif address == DCRSR:
            regsel = value & 0x7F
            reg = self._regsel.get(regsel)
            self._register_transfer_done = not self.slow_register_transfers
            if self.slow_register_transfers:       # the injected fault: this transfer does not complete
                self.slow_register_transfers -= 1
                return
            if value & DCRSR_REGWNR:
                if reg is not None:
                    data = self.dcrdr & ~1 if reg == UC_ARM_REG_PC else self.dcrdr
                    self._uc.reg_write(reg, data)
            else:
                self.dcrdr = self._uc.reg_read(reg) & 0xFFFFFFFF if reg is not None else 0
        elif address == DCRDR:
            self.dcrdr = value & 0xFFFFFFFF
        elif address in (DEMCR, DWT_BASE):     # DEMCR.TRCENA and DWT_CTRL.CYCCNTENA start and stop DWT_CYCCNT
            count = self._cyccnt()
            if address == DEMCR:
                self.demcr = value & 0xFFFFFFFF
            else:
                self.ppb_writes[DWT_BASE] = value & 0xFFFFFFFF
            self._cyccnt_mark = (count, self.cycles)      # its value runs on from where it stood
        elif address == DWT_CYCCNT:
            self._cyccnt_mark = (value & 0xFFFFFFFF, self.cycles)
        elif address == DFSR:
            self.dfsr &= ~value                                # write one to clear
        elif address == AIRCR:
            if value >> 16 == AIRCR_VECTKEY and value & AIRCR_SYSRESETREQ:
                self.reset()
        elif address == VTOR:
            self.vtor = value & ~0x7F
        elif address == DSCSR:
            # CDS changes only with CDSKEY written 0 (DDI0553 DSCSR; pyOCD's rp2350 target writes it so).
            # INFERRED: only in Debug state; a write while the core runs is ignored.
            if not value & DSCSR_CDSKEY and self.halted:
                self.secure = bool(value & DSCSR_CDS)
        else:
            self.ppb_writes[address] = value & 0xFFFFFFFF

    # --- registers by name, for tests and faces ----------------------------------------------------------------------
    def read_register(self, name: str) -> int:
        try:
            return self._uc.reg_read(self._regsel[REGISTER_NAMES[name.lower()]]) & 0xFFFFFFFF
        except KeyError:
            raise TargetError(f"{MODEL_NOTE}: no Arm register {name!r}; known: {', '.join(REGISTER_NAMES)}") from None

    # --- ground truth ------------------------------------------------------------------------------------------------
    def function_stats(self) -> list[FunctionStats]:
        """Per ELF function (plus `?` for code outside them), as the model ran it: only functions that ran."""
        rows = []
        for i in list(range(len(self.elf.functions))) + [-1]:
            instructions = self._instructions[i]
            (facc, fhit), (dacc, dhit) = self._fetches[i], self._data[i]
            if not (instructions or facc or dacc):
                continue
            fn = self.elf.functions[i] if i >= 0 else None
            rows.append(FunctionStats(fn.name if fn else "?", fn.start if fn else 0, region_of(fn.start) if fn else "?",
                                      instructions, instructions + self._stalls[i], facc, fhit, dacc, dhit))
        return rows

    def close(self) -> None:
        self._uc = None
