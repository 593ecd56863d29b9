"""The Machine: the twin of one Hazard3 core on an RP2350 (a model). unicorn runs the firmware's RV32 machine code;
Python models the XIP cache, its counters, UART0, Hazard3's traps and counters, and records per-function ground truth
as the model runs. Every modelled behaviour comes from a fact in chip/rp2350.py (rp2350.md); where the model has to
choose, the module that models it says so (the package's __init__ lists them).

This module holds the Machine's state (the mixins it is made of use it), loads what it runs (an ELF's segments, a
flash image, a Linux Image and its device tree), runs it (slices, steps, halt requests, breakpoints) and gives a
debugger's view. Debugger reads and writes have no cache or counter side effects, except that a debugger write to
CTR_HIT/CTR_ACC clears it as any write does.

Faces sit on top of the Machine without reaching into unicorn: runner.py drives `run_slice`; the in-process Target
(target.py), the GDB face (gdbserver.py) and the Debug Module behind the JTAG and DAP faces (debug_module.py) use
`read_memory`, `write_memory`, `read_register`, `write_register`, `request_halt`, `step` and `run`.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

from ...chip import riscv as rv
from ...chip import rp2350 as rp
from ...errors import TargetError
from .. import MODEL_NOTE
from ..bus import Bus
from ..xip_cache import XipCache
from ..counters import PerfCounters, Timing
from ...elf.program import ElfImage
from ..memory import TwinMemory
from ..peripherals import Qmi, Uart, XipCtrl, XipMaintenance
from ..runner import StopReason
from ..sio_timer import SioTimer
from .accounting import GroundTruth
from .csrs import EMULATED_CSRS, READ_ONLY_CSRS, CsrEmulation, csr_const, gpr_const
from .hooks import B_ADDR, Fault, Hooks
from .traps import NEVER, Trap, Traps

SLICE_INSTRUCTIONS = 200_000
HALTED_BUDGET = -(1 << 40)   # a slice's budget once a halt is asked for: no take-back of a cut block makes it positive


def fdt_problem(data: bytes) -> str | None:
    """What is wrong with a flattened device tree's header against its bytes (None: nothing): the sizes and offsets
    of its blocks (Devicetree Specification 5.2), the version, and the structure block's first and last tokens."""
    if len(data) < 40:
        return f"the file has {len(data)} bytes, fewer than the header's 40"
    (total, off_struct, off_strings, off_rsvmap, version, last_compatible, _cpu, size_strings,
     size_struct) = (int.from_bytes(data[i:i + 4], "big") for i in range(4, 40, 4))
    if total > len(data):
        return f"its header says {total} bytes (totalsize) and the file has {len(data)}"
    if last_compatible > 17 or version < 16:
        return f"version {version} (last compatible {last_compatible}); the kernel reads versions 16 and 17"
    for what, off, size in (("structure block", off_struct, size_struct), ("strings block", off_strings, size_strings),
                            ("memory reservation block", off_rsvmap, 16)):
        if off < 40 or off + size > total:
            return f"its {what} ({size} bytes at offset {off}) lies outside its {total} bytes"
    first = int.from_bytes(data[off_struct:off_struct + 4], "big")
    last = int.from_bytes(data[off_struct + size_struct - 4:off_struct + size_struct], "big")
    if first != 1 or last != 9:
        return (f"its structure block starts with token {first} and ends with {last} (expected FDT_BEGIN_NODE 1 and "
                "FDT_END 9)")
    return None


@dataclass
class RunResult:
    reason: StopReason
    instructions: int    # retired during this run
    pc: int


class Machine(Hooks, Traps, CsrEmulation, GroundTruth):
    """The twin of one Hazard3 core on an RP2350 with flash, 8 MiB PSRAM and UART0 (a model)."""

    def __init__(self, firmware: str | Path, *, timing: Timing | None = None, seed: int = 0,
                 trace: bool = False, uart_echo=None, flash_image: str | None = None,
                 kernel_image: str | Path | None = None, dtb: str | Path | None = None,
                 clk_hz: int = rp.CLK_SYS_DEFAULT_HZ):
        from unicorn import Uc, UC_ARCH_RISCV, UC_MODE_RISCV32
        from unicorn.unicorn_py3.unicorn import uclib

        self.firmware = Path(firmware)
        self.elf = ElfImage(self.firmware)
        self.timing = timing or Timing()
        self.cache = XipCache(seed)
        self.counters = PerfCounters()
        self.uart = Uart(echo=uart_echo)
        self.xip_ctrl = XipCtrl(self.cache)
        self.qmi = Qmi()
        self._irq_at = [0]             # a list cell the block hook holds: the cycle count at which it looks at interrupts
        self._land_at = [NEVER]        # a cell the block hook holds: the cycle a run to a cycle stops before
        self.sio_timer = SioTimer(lambda: self.cycles, clk_hz, on_change=self._replan_interrupts)
        self.kernel_image = Path(kernel_image) if kernel_image else None
        self.dtb = Path(dtb) if dtb else None
        self._xip_checks = self.qmi.xip_checks   # the hot hooks hold the cell: True while QMI state can fault XIP
        self.traps: list[Trap] = []    # the latest traps (TRAP_HISTORY to 2x of them), oldest first
        self.trap_count = 0            # every trap taken since power-on
        self._trap_run: list = [None, 0]   # [(cause, epc) of the latest trap, times taken in a row]
        self._entered: list = []       # (cause, epc, cycles at entry) of traps not yet returned from (traps.py)
        # Store/AMO faults (mcause 7) whose handler returned to epc + 4, having done the AMO itself (a kernel's AMO
        # emulation): [how many, cycles from their trap entries to those returns] (traps.py `_on_mret`).
        self.emulated_amos = [0, 0]
        self.trace: list | None = [] if trace else None
        self.xip_maintenance = XipMaintenance(self.cache, self.trace)
        self.breakpoints: set[int] = set()
        self.lock = threading.RLock()   # faces serialise on it: one slice or one request at a time

        self._uc = uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV32)
        self._uclib = uclib
        self._uch = uc._uch
        self._buffers: list = []
        nf = len(self.elf.functions)
        # Ground truth as the hooks count it (accounting.py sums it). Per-function lists: index -1 (the extra last
        # slot) collects code outside every ELF function; per-device lists: [flash (CS0), PSRAM (CS1)].
        self._f_fetch_acc = [0] * (nf + 1)
        self._f_fetch_hit = [0] * (nf + 1)
        self._f_data_acc = [0] * (nf + 1)
        self._f_data_hit = [0] * (nf + 1)
        self._f_stall = [0] * (nf + 1)
        self._f_instr_adj = [0] * (nf + 1)
        self._data_acc_by_cs = [0, 0]
        self._data_hit_by_cs = [0, 0]
        self._mixed_fetch_acc_by_cs = [0, 0]
        self._mixed_fetch_hit_by_cs = [0, 0]
        self._st = [0, 0, 0]           # [budget left in this slice, instructions retired, stall cycles]
        self._last: list = [None, 0]   # [block being executed, index of its first instruction not yet retired]
        self._blocks: dict[int, list] = {}
        self._all_blocks: dict[tuple[int, int], list] = {}
        self._pc_fidx: dict[int, int] = {}
        self._pending_mstatus: list = [None]
        self._stop_reason: StopReason | None = None
        self._fault: Fault | None = None
        self._hook_error: BaseException | None = None
        self._halt_requested = False
        self.ebreak_halts = False      # dcsr.ebreakm as a debugger set it: ebreak stops the run (StopReason.EBREAK)
        self._penalty = (self.timing.flash_miss_cycles, self.timing.psram_miss_cycles)

        self.memory = TwinMemory()
        self.memory.map_into(self._uc)
        self.bus = Bus(self)
        self.bus.map_into(self._uc)
        self.flash_image = self._load_flash_image(flash_image) if flash_image else None
        if self.kernel_image is not None:
            self._load_kernel_image(self.kernel_image)   # the ELF gives symbols only: its bytes are the Image's
        else:
            self.memory.load_segments(self.elf)
        if self.dtb is not None:
            self._load_dtb(self.dtb)
        self._install_hooks()
        self.reset()

    # --- setup ---------------------------------------------------------------------------------------------------
    def _load_flash_image(self, spec: str) -> str:
        """Program the twin's flash from FILE.uf2 or FILE[@ADDR] (raw; ADDR defaults to 0x10000000) before the ELF's
        segments are loaded: where both write, the ELF's bytes stand, so the code the twin runs matches its symbols."""
        from ...image.raw import read_image_chunks

        chunks, description = read_image_chunks(spec, rp.XIP_BASE)
        for address, data in chunks:
            alias = rp.xip_alias(address)
            phys = rp.xip_physical(address)
            if alias in (None, "maintenance") or phys + len(data) > len(self.memory.flash):
                raise TargetError(f"flash image {description}: {len(data)} bytes at {address:#x} do not fit the "
                                  f"twin's flash (0x10000000-{rp.XIP_BASE + len(self.memory.flash):#x} or its aliases)")
            ctypes.memmove(ctypes.addressof(self.memory.flash) + phys, data, len(data))
        return description

    def _load_kernel_image(self, path: Path) -> None:
        """Put a Linux Image where the ports' bootloader copies it (PSRAM at 0x11000000), checked against the ELF
        that names its symbols (linked there) and its RISC-V image header."""
        data = path.read_bytes()
        if data[:4] == b"\x7fELF":
            raise TargetError(f"{path}: an ELF (the vmlinux?), where the Image goes: pass arch/riscv/boot/Image as the "
                              "kernel, and the vmlinux as the ELF that names its symbols")
        for off, magic in (rp.RISCV_IMAGE_MAGIC, rp.RISCV_IMAGE_MAGIC2):
            if data[off:off + len(magic)] != magic:
                raise TargetError(f"{path}: not a RISC-V Linux Image (expected {magic!r} at byte {off} of its header, "
                                  f"found {data[off:off + len(magic)]!r}); pass arch/riscv/boot/Image")
        start = self.elf.symbols.get("_start", self.elf.entry)
        if start != rp.LINUX_IMAGE_ADDR:
            raise TargetError(f"{self.firmware}: linked at {start:#x} (_start), but the Image is loaded at "
                              f"{rp.LINUX_IMAGE_ADDR:#x} (PSRAM, as the board's bootloader does); pass the vmlinux "
                              "of a kernel built with PAGE_OFFSET/PHYS_RAM_BASE 0x11000000")
        if len(data) > len(self.memory.psram):
            raise TargetError(f"{path}: {len(data)} bytes do not fit the twin's {len(self.memory.psram)} bytes of PSRAM")
        # The Image is the vmlinux's loaded bytes from _start on: its code must be the ELF's, else the symbols (and
        # the ground truth per function) would name other code, or an Image linked elsewhere would run here.
        for name, address, code in self.elf.exec_sections:
            off = address - rp.LINUX_IMAGE_ADDR
            if 0 <= off and code[:64] and data[off:off + 64] != code[:64]:
                raise TargetError(f"{path}: not the Image of {self.firmware}: its bytes at {address:#x} differ from "
                                  f"the ELF's {name} there (an Image linked elsewhere, or from another build); pass "
                                  "the Image and vmlinux of the same kernel build")
        ctypes.memmove(self.memory.psram, data, len(data))

    def _load_dtb(self, path: Path) -> None:
        """Put a flattened device tree in flash at 0x10010000, where the ports' bootloader leaves it (used in place),
        once its header agrees with the file (the Devicetree Specification's FDT header, v17)."""
        data = path.read_bytes()
        if data[:4] != b"\xd0\x0d\xfe\xed":
            raise TargetError(f"{path}: not a flattened device tree (expected magic d00dfeed, found "
                              f"{data[:4].hex() or 'an empty file'}); pass the .dtb dtc made")
        problem = fdt_problem(data)
        if problem:
            raise TargetError(f"{path}: a flattened device tree's header, but {problem}; pass the whole .dtb dtc "
                              "made (a truncated or damaged copy?)")
        where = self.memory.backing(rp.LINUX_DTB_ADDR)
        if len(data) > len(where[0]) - where[1]:
            raise TargetError(f"{path}: {len(data)} bytes do not fit the twin's flash from {rp.LINUX_DTB_ADDR:#x}")
        ctypes.memmove(ctypes.addressof(where[0]) + where[1], data, len(data))

    # --- running ---------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Registers to their reset state and pc to the ELF entry (the twin boots like `qemu -kernel`)."""
        from unicorn.riscv_const import UC_RISCV_REG_PC

        for i in range(1, 32):
            self._uc.reg_write(gpr_const(i), 0)
        self._uc.reg_write(UC_RISCV_REG_PC, self.elf.entry)
        if self.dtb is not None:
            # The ports' bootloader: a0 = 0 (the kernel reads mhartid itself), a1 = the DTB in flash.
            self._uc.reg_write(gpr_const(rv.GPR_INDEX["a1"]), rp.LINUX_DTB_ADDR)
        self._irq_at[0] = 0

    @property
    def pc(self) -> int:
        return self._pc()

    @property
    def instructions(self) -> int:
        """Ground truth: instructions retired since power-on."""
        return self._st[1]

    @property
    def cycles(self) -> int:
        """Ground truth: modelled cycles since power-on (instructions + XIP stall cycles)."""
        return self._st[1] + self._st[2]

    def request_halt(self) -> None:
        """Ask a running slice to stop at the next block boundary (safe from another thread). Whatever loop the
        firmware is in (its trap handler included), every block starts in the block hook, which stops the run."""
        self._halt_requested = True
        self._st[0] = HALTED_BUDGET

    def clear_halt_request(self) -> None:
        """Forget a halt request once the faces have acted on it (before running again)."""
        self._halt_requested = False

    def set_breakpoints(self, addresses) -> None:
        with self.lock:
            self.breakpoints = set(addresses)
            self._uc.ctl_set_exits(sorted(self.breakpoints))
            self._uc.ctl_flush_tb()

    def _pc(self) -> int:
        from unicorn.riscv_const import UC_RISCV_REG_PC
        return self._uc.reg_read(UC_RISCV_REG_PC)

    def _request_stop(self, reason: StopReason) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._uclib.uc_emu_stop(self._uch)

    def _emu(self, begin: int, count: int = 0) -> None:
        from unicorn import UcError, UC_ERR_INSN_INVALID

        self._fault = None
        try:
            self._uc.emu_start(begin, 0, count=count)
        except UcError as e:
            if self._hook_error is not None:
                pass
            elif self._fault is not None:
                f = self._fault
                self._take_trap(f.cause, f.epc)
            elif e.errno == UC_ERR_INSN_INVALID:
                pc = self._pc()
                insn = self._insn_at(pc)
                is_ebreak = insn == rv.INSN_EBREAK or insn & 0xFFFF == rv.INSN_C_EBREAK
                self._take_trap(rp.CAUSE_BREAKPOINT if is_ebreak else rp.CAUSE_ILLEGAL, pc)
            else:
                raise TargetError(f"{MODEL_NOTE}: unicorn stopped at pc {self._pc():#x}: {e}") from None
        self._apply_pending()
        if self._hook_error is not None:
            err, self._hook_error = self._hook_error, None
            raise err

    def step(self) -> RunResult:
        """Execute one instruction (or take the trap it raises)."""
        with self.lock:
            pc = self._pc()
            before = self._st[1]
            traps_before = self.trap_count
            if pc in self.breakpoints:
                self._uc.ctl_set_exits(sorted(self.breakpoints - {pc}))
            self._stop_reason = None
            self._st[0] = 1 << 30
            self._last[0] = None
            try:
                self._emu(pc, count=1)
            finally:
                if pc in self.breakpoints:
                    self._uc.ctl_set_exits(sorted(self.breakpoints))
            b = self._last[0]
            if b is not None and b[B_ADDR] == pc and self.trap_count == traps_before:
                # unicorn may have counted the whole block at its start: only the first instruction ran.
                half = self._insn_at(pc) & 0xFFFF
                self._unretire_from(pc + rv.insn_length(half))
            self._st[0] = 0
            return RunResult(StopReason.STEP, self._st[1] - before, self._pc())

    def run(self, max_instructions: int | None = None) -> RunResult:
        """Run until idle, a breakpoint, a halt request, a trap loop, or about `max_instructions` (block granularity)."""
        start = self._st[1]
        self._halt_requested = False
        if self._pc() in self.breakpoints:
            r = self.step()
            if r.pc in self.breakpoints:
                return RunResult(StopReason.BREAKPOINT, self._st[1] - start, r.pc)
        while True:
            done = self._st[1] - start
            if max_instructions is not None and done >= max_instructions:
                return RunResult(StopReason.BUDGET, done, self._pc())
            if self._halt_requested:
                return RunResult(StopReason.HALT, done, self._pc())
            budget = SLICE_INSTRUCTIONS if max_instructions is None else min(SLICE_INSTRUCTIONS,
                                                                             max_instructions - done)
            reason = self.run_slice(budget)
            if reason != StopReason.BUDGET:
                return RunResult(reason, self._st[1] - start, self._pc())

    def run_slice(self, budget: int, stop_before_cycle: int | None = None) -> StopReason:
        """One slice of `budget` instructions (block granularity: it ends at the first block boundary once the budget
        is spent); each trap entry counts as one, so a firmware looping through its trap handler ends its slices like
        any other loop. The faces call this between requests; request_halt() cuts a slice short at the next block.

        stop_before_cycle (runner.run_to_cycle): also stop, with StopReason.CYCLE, at the start of the block that
        holds that cycle (hooks.py `_stops_before`)."""
        with self.lock:
            if self._halt_requested:
                return StopReason.HALT
            self._stop_reason = None
            self._st[0] = budget
            if self._halt_requested:    # asked for since the look above: the hook must see it
                self._st[0] = HALTED_BUDGET
            self._last[0] = None
            pc = self._pc()
            self._land_at[0] = NEVER if stop_before_cycle is None else stop_before_cycle
            try:
                self._emu(pc)
            finally:
                self._land_at[0] = NEVER
            reason = self._stop_reason
            if reason == StopReason.BUDGET and self._halt_requested:
                reason = StopReason.HALT
            if reason is not None:
                return reason
            pc = self._pc()
            if pc in self.breakpoints:
                return StopReason.BREAKPOINT
            if self._is_idle(pc):
                return StopReason.BUDGET if self._sleep_in_wfi(pc) else StopReason.IDLE
            return StopReason.BUDGET

    # --- a debugger's view ---------------------------------------------------------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        """Side-effect-free read: no cache lookups, no counter changes. Peripheral registers read as firmware sees them."""
        out = bytearray()
        a = address
        end = address + size
        while a < end:
            where = self.memory.backing(a)
            if where is not None:
                buf, off = where
                n = min(end - a, len(buf) - off)
                out += ctypes.string_at(ctypes.addressof(buf) + off, n)
                a += n
                continue
            reg = self.bus.peek(a & ~3)
            if reg is None:
                raise TargetError(f"{MODEL_NOTE}: nothing at {a:#x} (read of {size} bytes at {address:#x}); "
                                  f"modelled: ROM, XIP flash/PSRAM and their aliases, SRAM, {self.bus.names()}")
            word = reg.to_bytes(4, "little")
            n = min(end - a, 4 - (a & 3))
            out += word[a & 3:(a & 3) + n]
            a += n
        return bytes(out)

    def write_memory(self, address: int, data: bytes) -> None:
        with self.lock:
            a = address
            i = 0
            while i < len(data):
                where = self.memory.backing(a)
                if where is not None:
                    buf, off = where
                    n = min(len(data) - i, len(buf) - off)
                    ctypes.memmove(ctypes.addressof(buf) + off, bytes(data[i:i + n]), n)
                    self._uc.ctl_remove_cache(a, a + n)   # drop translated code the write may have changed
                    a += n
                    i += n
                    continue
                if a % 4 == 0 and len(data) - i >= 4 and self.bus.poke(a, int.from_bytes(data[i:i + 4], "little")):
                    a += 4
                    i += 4
                    continue
                raise TargetError(f"{MODEL_NOTE}: cannot write {len(data)} bytes at {address:#x}: {a:#x} is not "
                                  f"memory the twin models (or not a whole register of {self.bus.names()})")

    def read_register(self, name: str) -> int:
        from unicorn.riscv_const import UC_RISCV_REG_PC

        name = name.lower()
        if name == "pc":
            return self._uc.reg_read(UC_RISCV_REG_PC)
        if name in rv.GPR_INDEX:
            i = rv.GPR_INDEX[name]
            return self._uc.reg_read(gpr_const(i)) if i else 0
        if name == "mip":
            return self.pending_interrupts()   # unicorn's mip stays 0: the twin raises its interrupts itself
        if name in rv.CSRS:
            csr = rv.CSRS[name]
            if csr in EMULATED_CSRS:
                return self._csr_value(csr, self.cycles, self.instructions)
            const = csr_const(name)
            if const is not None:
                return self._uc.reg_read(const)
        raise TargetError(f"{MODEL_NOTE}: no register {name!r}; known: pc, {', '.join(rv.GPR_NAMES)}, "
                          f"{', '.join(rv.REGISTER_CSRS)}")

    def write_register(self, name: str, value: int) -> None:
        from unicorn.riscv_const import UC_RISCV_REG_PC

        name = name.lower()
        value &= 0xFFFFFFFF
        with self.lock:
            if name == "pc":
                self._uc.reg_write(UC_RISCV_REG_PC, value)
                return
            if name in rv.GPR_INDEX:
                i = rv.GPR_INDEX[name]
                if i:
                    self._uc.reg_write(gpr_const(i), value)
                return
            if name in rv.CSRS:
                csr = rv.CSRS[name]
                if csr in EMULATED_CSRS and csr not in READ_ONLY_CSRS:
                    self._csr_store(csr, value, self.cycles, self.instructions)
                    return
                const = csr_const(name)
                if const is not None:
                    self._uc.reg_write(const, value)
                    return
            raise TargetError(f"{MODEL_NOTE}: register {name!r} cannot be written")

    def read_registers(self) -> dict[str, int]:
        regs = {name: self.read_register(name) for name in rv.GPR_NAMES}
        regs["pc"] = self.read_register("pc")
        for name in rv.REGISTER_CSRS:
            regs[name] = self.read_register(name)
        return regs

    # --- calling firmware functions (tests, demos) ------------------------------------------------------------------
    def call(self, function: str | int, *args: int, max_instructions: int = 10_000_000) -> int:
        """Run `function(*args)` from a fresh stack until it returns to the firmware's `_park` (wfi) loop; returns a0."""
        address = self.elf.symbol(function) if isinstance(function, str) else function
        park = self.elf.symbol("_park")
        self.write_register("sp", self.elf.symbol("__stack_top"))
        self.write_register("ra", park)
        for i, a in enumerate(args):
            self.write_register(f"a{i}", a)
        self.write_register("pc", address)
        result = self.run(max_instructions)
        if result.reason != StopReason.IDLE:
            raise TargetError(f"{MODEL_NOTE}: call of {function} stopped ({result.reason}) at pc {result.pc:#x}")
        return self.read_register("a0")

    def close(self) -> None:
        self._uc = None  # unicorn frees its state with the object

