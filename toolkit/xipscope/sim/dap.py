"""The twin's DAP face (a model): an ADIv6-style SW-DP, its ROM table and the APs of whichever cores the twin runs,
offered to pyOCD as a debug probe, so pyOCD's own DP/AP code drives them.

As on RP2350 (rp2350.md "Debug access"): DPIDR 0x4c013477 (DPv3, ADIv6), APs by address, a class 0x9 ROM table at
AP address 0 (BASEPTR0) listing them. The twin runs one architecture, the firmware's:
  - RISC-V: the APB-AP at 0x0a000 whose bus holds the Debug Module (debug_module.py), register addresses x4;
    driven by xipscope's own Debug Module driver (targets/riscv_dm.py) on pyOCD's DP and AP classes;
  - Arm: core 0's AHB-AP at 0x02000 onto the Cortex-M33's bus (arm_core.py), so pyOCD's own rp2350 target
    discovers the core through the ROM tables and drives it.
The other APs of the chip (core 1, the RP-AP at 0x80000, the other architecture's) are not modelled: the ROM table
lists only the modelled AP, and an access anywhere else faults. Transfers queue in the probe and run as one batch when
a result is needed or on flush(), like a CMSIS-DAP probe's packets; `round_trips` counts the batches. The core runs
on a background thread in slices of about 2 ms between batches.

The twin's clock while its core is halted: a probe's time between a halt and its resume is the board's halted time,
and the host's (simulating, pyOCD's Python) is not. The counting wrapper (target/counting_probe.py) queues the probe
model's time at each point of a batch (`elapse`); whatever of it passes while the core is halted is `halted_cycles`, in
clk_sys cycles (chip/debug_wire.py CLK_SYS_HZ). Nothing runs in those cycles: the RISC-V timer stops while a debugger
holds a core halted (SIO MTIME_CTRL resets with DBGPAUSE_CORE0/1 set, chip/rp2350.py), and the twin's time is its
core's cycles.

Paced (pace(), RISC-V: as SimTarget, sim/pacing.py), the core runs to a nominal simulated clock between batches, a
batch acts at the simulated cycle of the moment it arrives, and halt_after() schedules the next halt in the twin's own
time: the batch that halts the core first runs it on to that cycle (never past it), however late it arrives.

The SW-DP is as strict as the chip's where pyOCD's connect meets it (DapPort): it powers on dormant, wakes on the
selection alert and SWD activation code sent with swj_sequence, answers a DPIDR read first after a line reset, is
deselected by a TARGETSEL naming another target, acknowledges power-up only after a request and a CTRL/STAT read,
and faults AP accesses before that.
"""

from __future__ import annotations

import threading
import time

from pyocd.core import exceptions
from pyocd.probe.debug_probe import DebugProbe

from ..chip import armv8m
from ..chip import debug_wire as dw
from ..chip import rp2350 as rp
from ..chip.armv8m import ARCHID_MEM_AP, ARCHID_ROM_TABLE, DEVARCH_PRESENT, PPB_ROM_TABLE, coresight_id
from ..errors import TargetError
from . import MODEL_NOTE
from .debug_module import DebugModule
from .hazard3 import Machine
from .runner import Runner, run_to_cycle

DPIDR = rp.DPIDR
DPIDR1 = 0x20                 # 32-bit AP addresses, no ERRMODE
BASEPTR0 = 0x00000001         # valid, base 0: the ROM table
DM_AP = 0xA000                # the APB-AP in front of the RISC-V Debug Module
ARM_CORE0_AP = 0x2000         # the AHB-AP onto Cortex-M33 core 0's bus
AP_WINDOW = 0x1000

# DP register addresses (bits 3:2) and CTRL/STAT fields.
DP_ABORT_IDR, DP_CTRL_STAT, DP_SELECT, DP_RDBUFF = 0x0, 0x4, 0x8, 0xC
CSYSPWRUPREQ, CDBGPWRUPREQ, STICKYERR = armv8m.CSYSPWRUPREQ, armv8m.CDBGPWRUPREQ, armv8m.CTRL_STAT_STICKYERR

# APv2 MEM-AP registers (offsets inside the AP's 4 KiB window) and CoreSight identification.
CSW, TAR, DRW, BD0, TRR, CFG, BASE, IDR = 0xD00, 0xD04, 0xD0C, 0xD10, 0xD24, 0xDF4, 0xDF8, 0xDFC
DEVARCH = 0xFBC
CSW_DEVICE_EN = 1 << 6
CSW_SIZE_MASK = 0x7
CSW_SIZE32 = 2
CSW_ADDRINC_MASK = 3 << 4
CSW_ADDRINC_SINGLE = 1 << 4
CSW_AHB_WRITABLE = 0xFF00F037     # DbgSwEnable, Prot, Type, AddrInc, Size: kept as written
CSW_SDEVICE_EN = 1 << 23          # secure debug enabled (read-only)
DEVARCH_MEM_AP = DEVARCH_PRESENT | ARCHID_MEM_AP          # 0x47700A17: MEM-AP (APv2)
DEVARCH_ROM_TABLE = DEVARCH_PRESENT | ARCHID_ROM_TABLE    # 0x47700AF7: class 0x9 ROM table
# IDR: Arm (JEP106 0x23b), class MEM-AP (8), type APB4 (6) or AHB5 (5).
APB_AP_IDR = (0x23B << 17) | (0x8 << 13) | 0x6
AHB_AP_IDR = (0x23B << 17) | (0x8 << 13) | 0x5
AP_BASE_NOT_PRESENT = 0x2
PART_APB_AP, PART_AHB_AP, PART_ROM_TABLE = 0x9E2, 0x9E3, 0x4C0   # CS-600 parts; the ROM table's is ASSUMED
UID_PREFIX = "twin:"


def _fault(message: str) -> exceptions.TransferFaultError:
    return exceptions.TransferFaultError(f"{MODEL_NOTE}: {message}")


class DpRomTable:
    """The class 0x9 ROM table at AP address 0: one 32-bit entry per modelled AP, then the end marker."""

    def __init__(self, ap_addresses: list[int]):
        self.entries = [address | 0x3 for address in ap_addresses]    # offset from the table, present

    def read(self, reg: int) -> int:
        if reg < 0xF00:
            return self.entries[reg >> 2] if reg >> 2 < len(self.entries) else 0
        return coresight_id(reg, part=PART_ROM_TABLE, component_class=0x9, devarch=DEVARCH_ROM_TABLE) or 0

    def write(self, reg: int, value: int) -> None:
        pass


class MemAp:
    """An APv2 MEM-AP: CSW, TAR, DRW, the banked data registers, and its identification; the bus is a subclass's."""

    IDR = 0
    PART = 0
    BASE_VALUE = AP_BASE_NOT_PRESENT

    def __init__(self):
        self.csw = CSW_DEVICE_EN | CSW_SIZE32
        self.tar = 0

    def _size(self) -> int:
        return 1 << (self.csw & CSW_SIZE_MASK)

    def bus_read(self, address: int, size: int) -> int:
        raise NotImplementedError

    def bus_write(self, address: int, size: int, value: int) -> None:
        raise NotImplementedError

    def read(self, reg: int) -> int:
        if reg == CSW:
            return self.csw
        if reg == TAR:
            return self.tar
        if reg == DRW:
            value = self.bus_read(self.tar, self._size())
            self._increment()
            return value
        if BD0 <= reg < BD0 + 16:
            return self.bus_read((self.tar & ~0xF) | (reg - BD0), 4)
        if reg == IDR:
            return self.IDR
        if reg == BASE:
            return self.BASE_VALUE
        if reg == DEVARCH:
            return DEVARCH_MEM_AP
        if reg >= 0xFC0:
            return coresight_id(reg, part=self.PART, component_class=0x9) or 0
        return 0                       # CFG (no large address/data, little-endian), TRR, the rest

    def write(self, reg: int, value: int) -> None:
        if reg == CSW:
            self._write_csw(value)
        elif reg == TAR:
            self.tar = value & 0xFFFFFFFF
        elif reg == DRW:
            self.bus_write(self.tar, self._size(), value)
            self._increment()
        elif BD0 <= reg < BD0 + 16:
            self.bus_write((self.tar & ~0xF) | (reg - BD0), 4, value)

    def _write_csw(self, value: int) -> None:
        raise NotImplementedError

    def _increment(self) -> None:
        if self.csw & CSW_ADDRINC_MASK == CSW_ADDRINC_SINGLE:
            step = self._size()
            self.tar = (self.tar & ~0x3FF) | ((self.tar + step) & 0x3FF)   # wraps inside the 1 KiB page


class DebugModuleApbAp(MemAp):
    """The APB-AP at 0xa000: 32-bit transfers only; its bus holds the Debug Module, register n at address 4n."""

    IDR = APB_AP_IDR
    PART = PART_APB_AP

    def __init__(self, dm: DebugModule):
        super().__init__()
        self.dm = dm

    def _write_csw(self, value: int) -> None:
        self.csw = (self.csw & ~CSW_ADDRINC_MASK) | (value & CSW_ADDRINC_MASK)   # one size, as an APB-AP has

    def bus_read(self, address: int, size: int) -> int:
        return self.dm.read((address & 0x1FF) >> 2)

    def bus_write(self, address: int, size: int, value: int) -> None:
        self.dm.write((address & 0x1FF) >> 2, value)


class CoreAhbAp(MemAp):
    """Core 0's AHB-AP at 0x2000: 8, 16 and 32-bit transfers onto the Cortex-M33's bus (arm_core.py), byte lanes
    as on AHB (a byte at address A travels in bits 8*(A%4) and up); BASE points at the core's PPB ROM table."""

    IDR = AHB_AP_IDR
    PART = PART_AHB_AP

    def __init__(self, core):
        super().__init__()
        self.core = core
        self.BASE_VALUE = PPB_ROM_TABLE | 0x3     # present, ADIv5+ format

    def _write_csw(self, value: int) -> None:
        self.csw = (value & CSW_AHB_WRITABLE) | CSW_DEVICE_EN | CSW_SDEVICE_EN

    def bus_read(self, address: int, size: int) -> int:
        lane = address & 3 & -size
        try:
            data = self.core.read_memory(address & ~(size - 1), size)
        except TargetError as e:
            raise _fault(f"AHB-AP read of {size} bytes at {address:#x}: {e}") from None
        return int.from_bytes(data, "little") << (8 * lane)

    def bus_write(self, address: int, size: int, value: int) -> None:
        lane = address & 3 & -size
        data = ((value >> (8 * lane)) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        address &= ~(size - 1)
        try:
            self.core.write_memory(address, data)
        except TargetError as e:
            raise _fault(f"AHB-AP write of {size} bytes at {address:#x}: {e}") from None


class DapPort:
    """The wire-level model: the SW-DP's line states, its registers and SELECT, and the ROM table and APs, each in its
    4 KiB of AP space.

    Line states (chip/armv8m.py, chip/rp2350.py): "dormant" at power-on (a multidrop SW-DP) until the selection alert
    and the SWD activation code; "unreset" after them, until a line reset; "reset" after a line reset, until a DPIDR read (or a TARGETSEL
    write naming this DP); "active"; "deselected" after a TARGETSEL naming another target, until the next line reset.
    A dormant, unreset or deselected DP does not drive the line: every transfer ends without an ACK. Before CDBGPWRUPACK the APs
    FAULT and set STICKYERR."""

    WINDOW = 256                # bits of line history kept to recognise sequences

    def __init__(self, aps: dict[int, object]):
        self.aps = aps
        self.select = 0
        self.ctrl_stat = 0                 # the power-up requests and STICKYERR
        self.acks = 0                      # the power-up ACKs as they stand
        self._ack_delay = 0
        self.line = "dormant" if rp.DP_POWER_ON_DORMANT else "reset"
        self._ones = 0                     # consecutive SWDIO-high cycles
        self._recent = 0                   # the last WINDOW bits, newest at the top
        self._alert_at = None              # bits since the selection alert ended, while dormant
        self.sequences: list[str] = []     # what the line saw, in order: for tests and error messages

    # --- the line: swj_sequence bits, LSB first --------------------------------------------------------------------
    def line_bits(self, length: int, bits: int) -> None:
        for i in range(length):
            self._bit((bits >> i) & 1)

    def _bit(self, bit: int) -> None:
        self._recent = (self._recent >> 1) | (bit << (self.WINDOW - 1))
        self._ones = self._ones + 1 if bit else 0
        if self._ones == armv8m.SWD_LINE_RESET_ONES:
            self.sequences.append("line reset")
            if self.line != "dormant":
                self.line = "reset"
        elif self.line == "dormant":
            self._dormant_bit()
        elif self._last(66) == (armv8m.SWD_TO_DORMANT << 50) | ((1 << 50) - 1):   # a line reset, then 0xe3bc
            self.sequences.append("SWD to dormant")
            self.line = "dormant"

    def _last(self, n: int) -> int:
        return self._recent >> (self.WINDOW - n)

    def _dormant_bit(self) -> None:
        if self._last(armv8m.SWD_SELECTION_ALERT_BITS) == armv8m.SWD_SELECTION_ALERT:
            self.sequences.append("selection alert")
            self._alert_at = 0
            return
        if self._alert_at is None:
            return
        self._alert_at += 1
        if self._alert_at == 12:           # 4 cycles low, then the 8-bit activation code
            code, low = self._last(12) >> 4, self._last(12) & 0xF
            if low == 0 and code == armv8m.SWD_ACTIVATION_SWD:
                self.sequences.append("SWD activation")
                self.line = "unreset"      # in SWD, answering nothing until a line reset
            self._alert_at = None

    # --- SWD packets sent as raw bits (swd_sequence): the TARGETSEL write ------------------------------------------
    def swd_packets(self, sequences) -> list[bytes]:
        """A TARGETSEL write as raw bits: the request 0x99, 5 cycles the host reads (turnaround, the ACK no target
        drives, turnaround), 32 data bits and their parity; the line, undriven, reads as ones (the pull-up)."""
        sequences = [tuple(seq) for seq in sequences]
        if len(sequences) < 3 or sequences[0] != (8, armv8m.SWD_TARGETSEL_REQUEST) or sequences[1] != (5,) \
                or len(sequences[2]) != 2 or sequences[2][0] != 33:
            raise _fault(f"swd_sequence {sequences}: the model takes only a TARGETSEL write as raw bits")
        data = sequences[2][1]
        value = data & 0xFFFFFFFF
        if (data >> 32) & 1 == bin(value).count("1") & 1:
            self.sequences.append(f"TARGETSEL {value:#010x}")
            self._targetsel(value)
        else:
            self.sequences.append(f"TARGETSEL {value:#010x} with bad parity (ignored)")
        return [b"\xff" * ((seq[0] + 7) // 8) for seq in sequences if len(seq) == 1]

    def _targetsel(self, value: int) -> None:
        """ADIv5.2 B4.3.4: right after a line reset a TARGETSEL naming another target deselects this DP."""
        if self.line != "reset":
            return                           # only a TARGETSEL right after a line reset selects or deselects
        ours = (value & armv8m.TARGETSEL_ID_MASK) == (rp.DP_TARGETID & armv8m.TARGETSEL_ID_MASK) \
            and value >> 28 == rp.DP_TINSTANCE
        if not ours:
            self.line = "deselected"

    def _no_ack(self, what: str) -> exceptions.TransferError:
        state = {"dormant": "dormant (it wakes on the selection alert and the SWD activation code, then a line reset)",
                 "deselected": "deselected by a TARGETSEL naming another target (a line reset selects it again)",
                 "unreset": "in SWD but waiting for a line reset"}[self.line]
        return exceptions.TransferError(f"{MODEL_NOTE}: {what}: no ACK: the SW-DP is {state}")

    def _transfer(self, what: str, is_dpidr_read: bool = False) -> None:
        """The line-state rules every transfer passes first."""
        if self.line in ("dormant", "deselected", "unreset"):
            raise self._no_ack(what)
        if self.line == "reset":
            if not is_dpidr_read:
                raise _fault(f"{what} before the DPIDR read that must follow a line reset")
            self.line = "active"

    # --- DP registers ------------------------------------------------------------------------------------------------
    def read_dp(self, addr: int) -> int:
        bank = self.select & 0xF
        self._transfer(f"DP read {addr:#x}", is_dpidr_read=addr == DP_ABORT_IDR and bank == 0)
        if addr == DP_ABORT_IDR:
            return {0: DPIDR, 1: DPIDR1, 2: BASEPTR0, 3: 0}.get(bank, 0)
        if addr == DP_CTRL_STAT:
            if bank == armv8m.DP_BANK_TARGETID:
                return rp.DP_TARGETID
            if bank == armv8m.DP_BANK_DLPIDR:
                return (rp.DP_TINSTANCE << 28) | armv8m.DLPIDR_PROTVSN_SWD_V2
            if bank != 0:
                return 0
            return self.ctrl_stat | self._read_acks()
        return 0

    def _read_acks(self) -> int:
        """Each ACK follows its request, withheld from the first CTRL/STAT read after a request changed."""
        if self._ack_delay:
            self._ack_delay -= 1
        else:
            self.acks = (self.ctrl_stat & (CSYSPWRUPREQ | CDBGPWRUPREQ)) << 1
        return self.acks

    def write_dp(self, addr: int, value: int) -> None:
        if addr == armv8m.DP_TARGETSEL:
            # No target drives the ACK of a TARGETSEL write: a probe sees none, the DP acts on it all the same.
            self.sequences.append(f"TARGETSEL {value:#010x}")
            self._targetsel(value)
            raise exceptions.TransferError(f"{MODEL_NOTE}: TARGETSEL write {value:#010x}: no ACK (no target drives "
                                           f"it, ADIv5.2 B4.3.4); send it with swd_sequence and ignore the response")
        self._transfer(f"DP write {addr:#x}")
        if addr == DP_ABORT_IDR:
            if value & armv8m.ABORT_STKERRCLR:
                self.ctrl_stat &= ~STICKYERR
        elif addr == DP_CTRL_STAT and self.select & 0xF == 0:
            requests = value & (CSYSPWRUPREQ | CDBGPWRUPREQ)
            if requests != self.ctrl_stat & (CSYSPWRUPREQ | CDBGPWRUPREQ):
                self._ack_delay = rp.DP_POWER_ACK_DELAY_READS
            self.ctrl_stat = (self.ctrl_stat & STICKYERR) | requests
        elif addr == DP_SELECT:
            self.select = value

    # --- APs ---------------------------------------------------------------------------------------------------------
    def _ap(self, addr: int, what: str):
        self._transfer(what)
        full = (self.select & ~0xF) | (addr & 0xC)
        if not self.acks & armv8m.CDBGPWRUPACK:
            self.ctrl_stat |= STICKYERR
            raise _fault(f"{what} at AP address {full:#x} before the debug power domain is up (CDBGPWRUPACK 0): "
                         "set CTRL/STAT.CDBGPWRUPREQ and wait for the ACK")
        ap = self.aps.get(full & ~(AP_WINDOW - 1))
        if ap is None:
            self.ctrl_stat |= STICKYERR
            known = ", ".join(f"{a:#x}" for a in self.aps)
            raise _fault(f"nothing at AP address {full:#x}; the model has {known}")
        return ap, full & (AP_WINDOW - 1)

    def read_ap(self, addr: int) -> int:
        ap, reg = self._ap(addr, "AP read")
        try:
            return ap.read(reg)
        except exceptions.TransferFaultError:
            self.ctrl_stat |= STICKYERR
            raise

    def write_ap(self, addr: int, value: int) -> None:
        ap, reg = self._ap(addr, "AP write")
        try:
            ap.write(reg, value)
        except exceptions.TransferFaultError:
            self.ctrl_stat |= STICKYERR
            raise


def twin_for(firmware: str):
    """The twin core a firmware ELF runs on: the Hazard3 model (hazard3/) for RV32, the Cortex-M33 one for Arm."""
    from ..elf.program import elf_machine
    if elf_machine(firmware) == "EM_ARM":
        from .arm_core import ArmCore
        return ArmCore(firmware)
    return Machine(firmware)


class TwinDapProbe(DebugProbe):
    """pyOCD's DebugProbe over the twin's DAP model, with deferred transfers batched like a CMSIS-DAP probe."""

    SLICE_SECONDS = 0.002    # host time a slice of the running core takes: a batch waits at most about that long

    def __init__(self, machine, halted: bool = False, boot_arch: str = "riscv"):
        """machine: the twin's RISC-V Machine or its ArmCore (twin_for picks by the firmware); halted: RISC-V only,
        the hart starts halted (an Arm core starts running, as after the bootrom); boot_arch "arm" with a RISC-V
        Machine: a chip booted in Arm mode, whose Debug Module answers with its harts unavailable."""
        super().__init__()
        self.machine = machine
        if isinstance(machine, Machine):
            self.dm = DebugModule(machine, halted=halted, boot_arch=boot_arch)
            self.core = self.dm
            self.port = DapPort({0x0: DpRomTable([DM_AP]), DM_AP: DebugModuleApbAp(self.dm)})
        else:
            self.dm = None
            self.core = machine
            self.port = DapPort({0x0: DpRomTable([ARM_CORE0_AP]), ARM_CORE0_AP: CoreAhbAp(machine)})
        self.round_trips = 0
        self._queue: list = []
        self._queue_lock = threading.Lock()   # only for appending to and taking the queue: never held while running
        self._lock = threading.RLock()
        self._is_open = False
        self._protocol = None
        self._stop = threading.Event()
        self._runner: threading.Thread | None = None
        # The core runs in slices sized by host time between batches; a batch waiting at the runner's gate goes first.
        self.runner = Runner(self.core, machine=machine, budget=5_000, slice_seconds=self.SLICE_SECONDS)
        self.halted_cycles = 0.0              # clk_sys cycles held halted in the probe model's time (docstring)
        self._after_next: float | None = None   # halt_after(): the running time of the run the next resume starts
        self._stop_cycle: int | None = None     # paced: the cycle the current run's halt is scheduled at
        self._landing: int | None = None        # paced: the cycle the batch being run caught up to

    # --- how pyOCD finds probes (through TwinProbePlugin) ---
    @classmethod
    def get_all_connected_probes(cls, unique_id: str | None = None, is_explicit: bool = False):
        """Only when asked by name: `twin:FIRMWARE.elf` starts a twin on that firmware (nothing is attached)."""
        if is_explicit and unique_id and unique_id.startswith(UID_PREFIX):
            return [cls(twin_for(unique_id[len(UID_PREFIX):]))]
        return []

    @classmethod
    def get_probe_with_id(cls, unique_id: str, is_explicit: bool = False):
        probes = cls.get_all_connected_probes(unique_id, is_explicit)
        return probes[0] if probes else None

    # --- identity ---
    @property
    def description(self) -> str:
        return f"{MODEL_NOTE} DAP"

    @property
    def vendor_name(self) -> str:
        return "xipscope"

    @property
    def product_name(self) -> str:
        return f"{MODEL_NOTE} DAP"

    @property
    def supported_wire_protocols(self):
        return frozenset([DebugProbe.Protocol.DEFAULT, DebugProbe.Protocol.SWD])

    @property
    def unique_id(self) -> str:
        return f"{UID_PREFIX}{self.machine.firmware}"

    @property
    def wire_protocol(self):
        return self._protocol

    @property
    def is_open(self) -> bool:
        return self._is_open

    @property
    def capabilities(self):
        # SWJ and SWD sequences as a CMSIS-DAP probe has them: pyOCD sends the line reset, the dormant wake-up and
        # TARGETSEL through them, and the DP model (DapPort) acts on what it receives.
        return {DebugProbe.Capability.BANKED_DP_REGISTERS, DebugProbe.Capability.APv2_ADDRESSES,
                DebugProbe.Capability.SWJ_SEQUENCE, DebugProbe.Capability.SWD_SEQUENCE}

    # --- life cycle ---
    def open(self) -> None:
        self._is_open = True
        self._stop.clear()
        self._runner = threading.Thread(target=self._run_hart, name="xipscope-dap-twin", daemon=True)
        self._runner.start()

    def close(self) -> None:
        self._stop.set()
        if self._runner is not None:
            self._runner.join()
            self._runner = None
        self._is_open = False

    def connect(self, protocol=None) -> None:
        self._protocol = DebugProbe.Protocol.SWD

    def disconnect(self) -> None:
        self._protocol = None

    def lock(self) -> None:
        with self.runner.gate.request():     # the core's run loop lets a waiting user go first
            self._lock.acquire()

    def unlock(self) -> None:
        self._lock.release()

    def set_clock(self, frequency: float) -> None:
        pass

    def swj_sequence(self, length: int, bits: int) -> None:
        """Bits on SWDIO, LSB first, after the transfers already queued (as a probe sends its packets in order)."""
        self.flush()
        with self._lock:
            self.port.line_bits(length, bits)

    def swd_sequence(self, sequences):
        """Raw SWD bits (pyOCD's RP2040 targets send TARGETSEL so): (status 0, the bits read for each input)."""
        self.flush()
        with self._lock:
            return 0, self.port.swd_packets(sequences)

    def reset(self) -> None:
        pass

    def assert_reset(self, asserted: bool) -> None:
        pass

    def is_reset_asserted(self) -> bool:
        return False

    # --- the twin's clock: halted time in the probe model's terms, and pacing (see the module docstring) ---
    def elapse(self, seconds: float) -> None:
        """The probe model's time at this point of the queued transfers: held halted, if the core is halted there."""
        with self._queue_lock:
            self._queue.append((lambda: self._held(seconds), [None]))

    def _held(self, seconds: float) -> None:
        if self.core.halted:
            self.halted_cycles += seconds * dw.CLK_SYS_HZ

    def pace(self, clock_hz: float | None) -> None:
        """Pace the RISC-V core to clock_hz simulated cycles per second of running wall time (None: unpaced)."""
        if self.dm is None:
            raise TargetError(f"{MODEL_NOTE}: pacing the DAP face is modelled for the RISC-V core only; the Arm "
                              "core runs unpaced (profile it through pyocd://twin: unpaced, or the RISC-V build)")
        with self.runner.gate.request(), self._lock, self.machine.lock:
            self.runner.pace(clock_hz)
            self._after_next = self._stop_cycle = None
            self.runner.started()

    def pacing(self) -> dict | None:
        """How the twin's clock ran (a profile's meta.json): nominal Hz and slips, cycles run since reset and the
        clk_sys cycles held halted (the probe model's time between halts and resumes); None when unpaced."""
        clock = self.runner.clock
        if clock is None:
            return None
        return clock.stats() | {"cycles": self.machine.cycles, "halted_cycles": self.halted_cycles,
                                "clk_sys_hz": dw.CLK_SYS_HZ}

    def halt_after(self, seconds: float) -> None:
        """Paced: the first halt after the next resume stops the core `seconds` of its running time after that
        resume, whenever the batch asking for it arrives (SimTarget.halt_after's meaning)."""
        self._after_next = seconds

    def ground_truth(self) -> dict:
        """The model's exact counts since reset (sim/report.py stats_json)."""
        from .truth_tables import stats_json
        with self.runner.gate.request(), self._lock, self.machine.lock:
            return stats_json(self.machine)

    def _catch_up(self) -> None:
        """Paced and running: run the core on to the cycle of this moment, never past a scheduled halt's."""
        clock, m = self.runner.clock, self.machine
        self._landing = None
        if clock is None or not self.core.needs_simulation:
            return
        target = m.cycles + max(clock.behind(m.cycles, time.perf_counter()), 0)
        if self._stop_cycle is not None:
            target = min(target, self._stop_cycle)
        if target > m.cycles:
            run_to_cycle(self.core, target)
        self._landing = target

    def _run_control(self, halted: bool) -> None:
        """The batch halted (or resumed) the core: paced, the next run anchors at the cycle the halt landed on, and a
        resume starts the clock and the run's schedule."""
        clock = self.runner.clock
        if clock is None:
            return
        if halted:
            self._stop_cycle = None
            if self._landing is not None:
                clock.stop_at_cycle(self._landing)
        else:
            now = time.perf_counter()
            self.runner.started(now)
            after, self._after_next = self._after_next, None
            self._stop_cycle = clock.due(now + after) if after is not None else None

    # --- transfers: queued, run as one batch per round trip ---
    def flush(self) -> None:
        """Run the queued transfers as one batch (one probe round trip); a fault fails the rest of the batch."""
        with self.runner.gate.request(), self._lock, self.machine.lock:
            with self._queue_lock:
                queue, self._queue = self._queue, []
            if not queue:
                return
            self.round_trips += 1
            self._catch_up()
            core, halted = self.core, self.core.halted
            error = None
            for run, out in queue:
                if error is None:
                    try:
                        out[0] = run()
                        if core.halted != halted:
                            halted = core.halted
                            self._run_control(halted)
                        continue
                    except exceptions.TransferError as e:
                        error = e
                out[0] = error
            if error is not None:
                raise error

    def _read(self, fn, addr: int, now: bool):
        out = [None]
        with self._queue_lock:
            self._queue.append((lambda: fn(addr), out))

        def result() -> int:
            if out[0] is None:
                self.flush()
            if isinstance(out[0], Exception):
                raise out[0]
            return out[0]

        return result() if now else result

    def _write(self, fn, addr: int, value: int) -> None:
        with self._queue_lock:
            self._queue.append((lambda: fn(addr, value), [None]))

    def read_dp(self, addr: int, now: bool = True):
        return self._read(self.port.read_dp, addr, now)

    def write_dp(self, addr: int, data: int) -> None:
        self._write(self.port.write_dp, addr, data)

    def read_ap(self, addr: int, now: bool = True):
        return self._read(self.port.read_ap, addr, now)

    def write_ap(self, addr: int, data: int) -> None:
        self._write(self.port.write_ap, addr, data)

    def read_ap_multiple(self, addr: int, count: int = 1, now: bool = True):
        results = [self._read(self.port.read_ap, addr, False) for _ in range(count)]

        def collect():
            return [r() for r in results]

        return collect() if now else collect

    def write_ap_multiple(self, addr: int, values) -> None:
        for v in values:
            self.write_ap(addr, v)

    # --- the core runs between batches ---
    def _run_hart(self) -> None:
        core, runner = self.core, self.runner
        while not self._stop.is_set():
            if runner.gate.busy or not (core.needs_simulation or getattr(core, "halt_request", False)):
                time.sleep(0.0005 if runner.gate.busy else 0.005)
                continue
            wait = runner.due_in(self._stop_cycle)      # paced: a slice once one is due, never past a scheduled halt
            if wait:
                self._stop.wait(wait)
                continue
            # Not a blocking acquire: a probe user that keeps the lock (pyOCD's lock() with no unlock() on an error
            # path; seen once, under load, as close() waiting for ever on this thread) must not keep close() waiting.
            if not self._lock.acquire(timeout=0.05):
                continue
            try:
                runner.run_slice(self._stop_cycle)
            finally:
                self._lock.release()
