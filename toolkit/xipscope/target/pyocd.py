"""`pyocd://[UID]`: a Target over pyOCD's probe, DP and AP layers, with our RISC-V Debug Module driver on top.

pyOCD connects the probe and the (ADIv6) DP with its own code, then we open the APB-AP at 0xa000 and drive the RISC-V
Debug Module behind it (riscv_dm.py). Memory goes through System Bus Access, so it reads while the hart runs.
The twin's DAP face (sim/dap.py, a model) is a pyOCD probe too: `PyocdTarget(TwinDapProbe(machine))`.
For a real probe, pyOCD's `rp2350` target is the session's container (checked against the twin: it connects the DP
the same way); against a real RP2350, with its multidrop SW-DP, this path is untested here (no board on this machine).
"""

from __future__ import annotations

from typing import NamedTuple

from ..chip import riscv as rv
from ..chip import rp2350 as rp
from ..errors import TargetError
from .base import MEMORY, REGISTERS, RUN_CONTROL

DM_AP_ADDRESS = 0xA000
BLOCK_WORDS = 256
REGISTER_CSRS = ("mstatus", "misa", "mie", "mtvec", "mscratch", "mepc", "mcause", "mtval", "mip",
                 "mcycle", "mcycleh", "minstret", "minstreth", "mvendorid", "mimpid", "mhartid")


class PcSample(NamedTuple):
    pc: int
    xip_hit: int
    xip_acc: int


class PyocdTarget:
    capabilities = frozenset({MEMORY, REGISTERS, RUN_CONTROL})

    def __init__(self, probe, url: str | None = None, target_type: str = "cortex_m"):
        from pyocd.core.session import Session
        from pyocd.coresight.ap import APB_AP, APv2Address

        from .riscv_dm import RiscvDebugModule

        self.url = url or f"pyocd://{probe.unique_id}"
        self.probe = probe
        # A session only as pyOCD's container for options and the DP; no core discovery (pyOCD has no RISC-V).
        self.session = Session(probe, auto_open=False, target_override=target_type)
        try:
            probe.open()
            self.dp = self.session.target.dp
            self.dp.connect()
            self.ap = APB_AP(self.dp, APv2Address(DM_AP_ADDRESS))
            self.ap.init()
            self.dm = RiscvDebugModule(self.ap, f"{self.url} DM @ AP {DM_AP_ADDRESS:#x}")
            self.dm.activate()
        except TargetError:
            probe.close()
            raise
        except Exception as e:   # pyOCD's own errors (probe gone, transfer faults) named for the user
            probe.close()
            raise TargetError(f"{self.url}: pyOCD could not reach the RISC-V Debug Module at AP "
                              f"{DM_AP_ADDRESS:#x}: {e}") from None

    @property
    def round_trips(self) -> int:
        """Probe round trips so far, where the probe counts them (the twin's DAP face does)."""
        return getattr(self.probe, "round_trips", -1)

    def read_memory(self, address: int, size: int) -> bytes:
        first = address & ~3
        end = (address + size + 3) & ~3
        out = bytearray()
        for block in range(first, end, 4 * BLOCK_WORDS):
            words = min(BLOCK_WORDS, (end - block) // 4)
            for word in self.dm.read_words(block, words):
                out += word.to_bytes(4, "little")
        return bytes(out[address - first:address - first + size])

    def write_memory(self, address: int, data: bytes) -> None:
        """Whole words by SBA; a partial first or last word is read, merged and written back."""
        first = address & ~3
        end = (address + len(data) + 3) & ~3
        buffer = bytearray(self.read_memory(first, end - first)) if (address | len(data)) & 3 else bytearray(
            end - first)
        buffer[address - first:address - first + len(data)] = data
        for block in range(first, end, 4 * BLOCK_WORDS):
            chunk = buffer[block - first:min(end, block + 4 * BLOCK_WORDS) - first]
            self.dm.write_words(block, [int.from_bytes(chunk[i:i + 4], "little") for i in range(0, len(chunk), 4)])

    def read_register(self, name: str) -> int:
        name = name.lower()
        self._require_halted(name)
        if name == "pc":
            return self.dm.read_csr(0x7B1)       # dpc: the pc the hart halted at
        if name in rv.GPR_INDEX:
            return self.dm.read_gpr(rv.GPR_INDEX[name]) if rv.GPR_INDEX[name] else 0
        if name in rv.CSRS:
            return self.dm.read_csr(rv.CSRS[name])
        raise TargetError(f"{self.url}: no register {name!r}; known: pc, GPRs by ABI name, CSRs by name")

    def read_registers(self) -> dict[str, int]:
        return {name: self.read_register(name) for name in list(rv.GPR_NAMES) + ["pc"] + list(REGISTER_CSRS)}

    def _require_halted(self, what: str) -> None:
        if not self.dm.is_halted():
            raise TargetError(f"{self.url}: cannot read {what} while the hart runs; halt it first")

    def halt(self) -> None:
        self.dm.halt()

    def resume(self) -> None:
        self.dm.resume()

    def state(self) -> str:
        return "halted" if self.dm.is_halted() else "running"

    def sample_pc_and_counters(self, counters_base: int = rp.XIP_CTRL_BASE) -> PcSample:
        """halt, dpc, XIP CTR_HIT/CTR_ACC, resume as one batch of deferred transfers (see riscv_dm.py)."""
        return PcSample(*self.dm.sample_pc_and_counters(counters_base + rp.XIP_CTRL_CTR_HIT))

    def close(self) -> None:
        try:
            self.probe.close()
        finally:
            self.session = None


def open_pyocd(unique_id: str, url: str) -> PyocdTarget:
    """A connected pyOCD probe by unique id (empty: the only one attached); `twin:FIRMWARE.elf` is the twin's DAP."""
    from pyocd.probe.aggregator import DebugProbeAggregator

    from ..sim.dap import UID_PREFIX, TwinDapProbe
    if unique_id.startswith(UID_PREFIX):
        return PyocdTarget(TwinDapProbe.get_probe_with_id(unique_id, is_explicit=True), url)

    probes = DebugProbeAggregator.get_all_connected_probes(unique_id=unique_id or None)
    if len(probes) != 1:
        found = ", ".join(p.unique_id for p in probes) or "none"
        raise TargetError(f"{url}: expected exactly one debug probe{' with id ' + unique_id if unique_id else ''}, "
                          f"found {found}; name one as pyocd://UID")
    return PyocdTarget(probes[0], url, target_type="rp2350")
