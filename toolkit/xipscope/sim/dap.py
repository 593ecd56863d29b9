"""The twin's DAP face (a model): an ADIv6-style SW-DP and the APB-AP at 0xa000 that reaches the RISC-V Debug Module,
offered to pyOCD as a debug probe, so pyOCD's own DP/AP code drives our Debug Module driver against the twin.

As on RP2350 (rp2350.md "Debug access"): DPIDR 0x4c013477 (DPv3, ADIv6), APs by address, the APB-AP at 0x0a000 whose
bus holds the Debug Module with its register addresses multiplied by 4. Only that AP is modelled (no ROM table, no
Arm cores, no RP-AP); an access anywhere else faults. Transfers queue in the probe and run as one batch when a result
is needed or on flush(), like a CMSIS-DAP probe's packets; `round_trips` counts the batches. The hart runs on a
background thread in slices of about 2 ms between batches.
"""

from __future__ import annotations

import threading
import time

from pyocd.core import exceptions
from pyocd.probe.debug_probe import DebugProbe

from .debug_module import DebugModule
from .machine import MODEL_NOTE, Machine

DPIDR = 0x4C013477
DPIDR1 = 0x20                 # 32-bit AP addresses, no ERRMODE
BASEPTR0 = 0x00000001         # valid, base 0: RP2350's ROM table (not modelled; pyOCD's discovery would fault there)
DM_AP = 0xA000                # the APB-AP in front of the RISC-V Debug Module
AP_WINDOW = 0x1000

# DP register addresses (bits 3:2) and CTRL/STAT fields.
DP_ABORT_IDR, DP_CTRL_STAT, DP_SELECT, DP_RDBUFF = 0x0, 0x4, 0x8, 0xC
CSYSPWRUPREQ, CDBGPWRUPREQ = 1 << 30, 1 << 28
STICKYERR = 1 << 5

# APv2 MEM-AP registers (offsets inside the AP's 4 KiB window).
CSW, TAR, DRW, BD0, TRR, CFG, BASE, IDR = 0xD00, 0xD04, 0xD0C, 0xD10, 0xD24, 0xDF4, 0xDF8, 0xDFC
DEVARCH, CIDR0 = 0xFBC, 0xFF0
CSW_DEVICE_EN = 1 << 6
CSW_SIZE32 = 2
CSW_ADDRINC_MASK = 3 << 4
CSW_ADDRINC_SINGLE = 1 << 4
# IDR: Arm (JEP106 0x23b), class MEM-AP (8), type APB4 (6).
AP_IDR = (0x23B << 17) | (0x8 << 13) | 0x6
AP_BASE_NOT_PRESENT = 0x2
UID_PREFIX = "twin:"


class DapPort:
    """The wire-level model: DP registers, SELECT, and the APB-AP's CSW/TAR/DRW in front of the Debug Module."""

    def __init__(self, dm: DebugModule):
        self.dm = dm
        self.select = 0
        self.ctrl_stat = 0
        self.csw = CSW_DEVICE_EN | CSW_SIZE32
        self.tar = 0

    def read_dp(self, addr: int) -> int:
        bank = self.select & 0xF
        if addr == DP_ABORT_IDR:
            return {0: DPIDR, 1: DPIDR1, 2: BASEPTR0, 3: 0}.get(bank, 0)
        if addr == DP_CTRL_STAT:
            if bank != 0:
                return 0
            # Power-up acknowledges follow the requests at once.
            return self.ctrl_stat | ((self.ctrl_stat & CSYSPWRUPREQ) << 1) | ((self.ctrl_stat & CDBGPWRUPREQ) << 1)
        if addr == DP_RDBUFF:
            return 0
        return 0

    def write_dp(self, addr: int, value: int) -> None:
        if addr == DP_ABORT_IDR:
            if value & (1 << 2):        # STKERRCLR
                self.ctrl_stat &= ~STICKYERR
        elif addr == DP_CTRL_STAT and self.select & 0xF == 0:
            self.ctrl_stat = value & (CSYSPWRUPREQ | CDBGPWRUPREQ)
        elif addr == DP_SELECT:
            self.select = value

    def _ap_register(self, addr: int) -> int:
        full = (self.select & ~0xF) | (addr & 0xC)
        if not DM_AP <= full < DM_AP + AP_WINDOW:
            self.ctrl_stat |= STICKYERR
            raise exceptions.TransferFaultError(f"{MODEL_NOTE}: no AP at {full:#x}; the model has only the "
                                                f"APB-AP to the RISC-V Debug Module at {DM_AP:#x}")
        return full - DM_AP

    def read_ap(self, addr: int) -> int:
        reg = self._ap_register(addr)
        if reg == CSW:
            return self.csw
        if reg == TAR:
            return self.tar
        if reg == DRW:
            value = self.dm.read((self.tar & 0x1FF) >> 2)
            self._increment()
            return value
        if BD0 <= reg < BD0 + 16:
            return self.dm.read((((self.tar & ~0xF) | (reg - BD0)) & 0x1FF) >> 2)
        if reg == IDR:
            return AP_IDR
        if reg == BASE:
            return AP_BASE_NOT_PRESENT
        if reg == DEVARCH:
            return 0x47700A17          # Arm, present, MEM-AP (APv2)
        if CIDR0 <= reg < CIDR0 + 16:
            return (0x0D, 0x90, 0x05, 0xB1)[(reg - CIDR0) >> 2]
        return 0                       # CFG (no large address/data), TRR and the ID registers we do not model

    def write_ap(self, addr: int, value: int) -> None:
        reg = self._ap_register(addr)
        if reg == CSW:
            # Only AddrInc is writable: one transfer size (32 bits), as an APB-AP has.
            self.csw = (self.csw & ~CSW_ADDRINC_MASK) | (value & CSW_ADDRINC_MASK)
        elif reg == TAR:
            self.tar = value & 0xFFFFFFFF
        elif reg == DRW:
            self.dm.write((self.tar & 0x1FF) >> 2, value)
            self._increment()
        elif BD0 <= reg < BD0 + 16:
            self.dm.write((((self.tar & ~0xF) | (reg - BD0)) & 0x1FF) >> 2, value)

    def _increment(self) -> None:
        if self.csw & CSW_ADDRINC_MASK == CSW_ADDRINC_SINGLE:
            self.tar = (self.tar & ~0x3FF) | ((self.tar + 4) & 0x3FF)   # wraps inside the 1 KiB auto-increment page


class TwinDapProbe(DebugProbe):
    """pyOCD's DebugProbe over the twin's DAP model, with deferred transfers batched like a CMSIS-DAP probe."""

    SLICE_SECONDS = 0.002

    def __init__(self, machine: Machine, halted: bool = False):
        super().__init__()
        self.machine = machine
        self.dm = DebugModule(machine, halted=halted)
        self.port = DapPort(self.dm)
        self.round_trips = 0
        self._queue: list = []
        self._lock = threading.RLock()
        self._is_open = False
        self._protocol = None
        self._stop = threading.Event()
        self._runner: threading.Thread | None = None
        self._budget = 5_000
        self._waiting = 0        # batches waiting for the lock: the hart's runner lets them go first

    # --- how pyOCD finds probes (through TwinProbePlugin) ---
    @classmethod
    def get_all_connected_probes(cls, unique_id: str | None = None, is_explicit: bool = False):
        """Only when asked by name: `twin:FIRMWARE.elf` starts a twin on that firmware (nothing is attached)."""
        if is_explicit and unique_id and unique_id.startswith(UID_PREFIX):
            return [cls(Machine(unique_id[len(UID_PREFIX):]))]
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
        return {DebugProbe.Capability.BANKED_DP_REGISTERS, DebugProbe.Capability.APv2_ADDRESSES}

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
        self._lock.acquire()

    def unlock(self) -> None:
        self._lock.release()

    def set_clock(self, frequency: float) -> None:
        pass

    def swj_sequence(self, length: int, bits: int) -> None:
        pass

    def reset(self) -> None:
        pass

    def assert_reset(self, asserted: bool) -> None:
        pass

    def is_reset_asserted(self) -> bool:
        return False

    # --- transfers: queued, run as one batch per round trip ---
    def flush(self) -> None:
        """Run the queued transfers as one batch (one probe round trip); a fault fails the rest of the batch."""
        self._waiting += 1
        try:
            with self._lock, self.machine.lock:
                queue, self._queue = self._queue, []
                if not queue:
                    return
                self.round_trips += 1
                error = None
                for run, out in queue:
                    if error is None:
                        try:
                            out[0] = run()
                            continue
                        except exceptions.TransferError as e:
                            error = e
                    out[0] = error
                if error is not None:
                    raise error
        finally:
            self._waiting -= 1

    def _read(self, fn, addr: int, now: bool):
        out = [None]
        with self._lock:
            self._queue.append((lambda: fn(addr), out))

        def result() -> int:
            if out[0] is None:
                self.flush()
            if isinstance(out[0], Exception):
                raise out[0]
            return out[0]

        return result() if now else result

    def _write(self, fn, addr: int, value: int) -> None:
        with self._lock:
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

    # --- the hart runs between batches ---
    def _run_hart(self) -> None:
        while not self._stop.is_set():
            if self._waiting or not (self.dm.needs_simulation or self.dm.halt_request):
                time.sleep(0.0005 if self._waiting else 0.005)
                continue
            with self._lock, self.machine.lock:
                t0 = time.perf_counter()
                self.dm.run_slice(self._budget)
                elapsed = max(time.perf_counter() - t0, 1e-5)
            wanted = self._budget * self.SLICE_SECONDS / elapsed
            self._budget = int(min(max((self._budget + wanted) / 2, 100), 50_000))
