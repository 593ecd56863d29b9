"""`pyocd://[UID][?core=arm][?hart=1]`: Targets over pyOCD, for the RP2350's RISC-V cores and for its Arm cores.

RISC-V (the default): pyOCD connects the probe and the (ADIv6) DP with its own code, then we open the APB-AP at 0xa000
and drive the RISC-V Debug Module behind it (riscv_dm.py); pyOCD has no RISC-V support of its own. `hart=0` (the
default) or `hart=1` picks the Hazard3 hart. Memory goes through System Bus Access, so it reads while the hart runs.
A chip booted in Arm mode holds its harts in reset: connecting says so, and how to switch.

Arm (`?core=arm`): pyOCD's own `rp2350` target does everything (its ADIv6 discovery finds core 0's AHB-AP and the
Cortex-M33 behind it): memory through the AHB-AP, also while the core runs, core registers, halt and resume. Which
xipscope features apply in Arm mode is targets/base.py's ARM_MODE_FEATURES. One of its connect steps is left out:
with a Non-secure core it would switch the core to Secure and reset ACCESSCTRL (AttachWithoutSecureMode). The profile
sample goes around pyOCD's core calls, as one batch of transfers on the core's AHB-AP (_ArmSampler: one round trip).

The twin's DAP face (sim/dap.py, a model) is a pyOCD probe too: `pyocd://twin:FIRMWARE.elf` runs the firmware on the
core its ELF is built for, so an Arm ELF gives the Arm path. For a real probe, pyOCD's `rp2350` target is the
session's container on both paths (checked against the twin); against a real RP2350, with its multidrop SW-DP, both
are untested here (no board on this machine).
"""

from __future__ import annotations

from ..chip import armv8m
from ..chip import riscv as rv
from ..chip import rp2350 as rp
from ..errors import TargetError
from .base import (ARM_REGISTERS, MEMORY, MODEL, PACING, READ_WHILE_RUNNING, REGISTERS, RUN_CONTROL, SAMPLE,
                   WRITE_MEMORY, ProtocolSampler, Sample, SampleRequest, Target, describe_reads)

DM_AP_ADDRESS = rp.DM_AP_ADDRESS
BLOCK_WORDS = 256
REGISTER_CSRS = rv.REGISTER_CSRS


class PyocdTarget(Target):
    capabilities = frozenset({MEMORY, WRITE_MEMORY, REGISTERS, RUN_CONTROL, READ_WHILE_RUNNING, SAMPLE})

    def __init__(self, probe, url: str | None = None, target_type: str = "cortex_m", hart: int = 0):
        from pyocd.core.session import Session
        from pyocd.coresight.ap import APB_AP, APv2Address

        from .riscv_dm import RiscvDebugModule

        self.url = url or f"pyocd://{probe.unique_id}" + (f"?hart={hart}" if hart else "")
        self.probe = probe
        self.hart = hart
        # A session only as pyOCD's container for options and the DP; no core discovery (pyOCD has no RISC-V).
        self.session = Session(probe, auto_open=False, target_override=target_type)
        try:
            probe.open()
            self.dp = self.session.target.dp
            self.dp.connect()
            self.ap = APB_AP(self.dp, APv2Address(DM_AP_ADDRESS))
            self.ap.init()
            self.dm = RiscvDebugModule(self.ap, f"{self.url} DM @ AP {DM_AP_ADDRESS:#x}", hart)
            self.dm.activate()
        except TargetError:
            probe.close()
            raise
        except Exception as e:   # pyOCD's own errors (probe gone, transfer faults) named for the user
            probe.close()
            raise TargetError(f"{self.url}: pyOCD could not reach the RISC-V Debug Module at AP "
                              f"{DM_AP_ADDRESS:#x}: {e}") from None
        if callable(getattr(probe, "ground_truth", None)):
            # the twin's DAP face (sim/dap.py): a model, with its exact counts and a clock it can be paced to
            self.capabilities = PyocdTarget.capabilities | {MODEL, PACING}

    # --- MODEL and PACING: the twin's DAP face behind the probe (sim/dap.py TwinDapProbe answers) ---
    def ground_truth(self) -> dict:
        return self.probe.ground_truth()

    def pace(self, clock_hz: float | None = None) -> None:
        """Pace the twin to clock_hz simulated cycles per second of running wall time (default: DEFAULT_CLOCK_HZ,
        as `xipscope profile` paces sim://)."""
        from ..sim.pacing import DEFAULT_CLOCK_HZ
        self.probe.pace(clock_hz or DEFAULT_CLOCK_HZ)

    def pacing(self) -> dict | None:
        return self.probe.pacing()

    def halt_after(self, seconds: float) -> None:
        self.probe.halt_after(seconds)

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
            return self.dm.read_csr(rv.CSRS["dpc"])       # the pc the hart halted at
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

    def sampler(self, request: SampleRequest):
        """The batched sample (base.Sampler): pc and one two-word read, resumed after, go to the Debug Module as one
        batch of deferred transfers (riscv_dm.py: one probe round trip); any other request through the protocol."""
        if (request.registers == ("pc",) and len(request.reads) == 1 and request.reads[0][1] == 8
                and request.reads[0][0] % 4 == 0 and not request.cycles and request.resume):
            return _DmSampler(self, request)
        return ProtocolSampler(self, request, round_trips=self._probe_round_trips())

    def _probe_round_trips(self):
        return (lambda: self.probe.round_trips) if hasattr(self.probe, "round_trips") else None

    def close(self) -> None:
        if self.session is None:
            return      # closed already
        try:
            self.probe.close()
        finally:
            self.session = None


class _DmSampler:
    cycle_counter = "mcycle"

    def __init__(self, target: PyocdTarget, request: SampleRequest):
        self.target, self.address = target, request.reads[0][0]
        self._round_trips = target._probe_round_trips()
        self.description = (f"pyocd: halt, pc, {', '.join(describe_reads(request))}, resume in one round trip "
                            "(one batch of Debug Module transfers)")

    def take(self) -> Sample:
        before = self._round_trips() if self._round_trips else None
        pc, first, second = self.target.dm.sample_pc_and_counters(self.address)
        trips = self._round_trips() - before if before is not None else None
        return Sample({"pc": pc}, (first.to_bytes(4, "little") + second.to_bytes(4, "little"),), None, trips, None)

    def details(self) -> dict | None:
        return None


class AttachWithoutSecureMode:
    """A pyOCD session delegate that drops the `rp2350` target's secure-mode step from its connect sequence.

    That step (RP2350._set_secure_mode, "only needed for the flash algo") finds a core running Non-secure, writes
    DSCSR to make it Secure, and writes ACCESSCTRL CFGRESET, which puts every ACCESSCTRL setting the firmware made
    (peripheral and GPIO security, bus masters' access) back to reset. Attaching to profile must change neither.
    Memory still reads through the AHB-AP; regions the firmware closed to the debugger stay closed."""

    def will_init_target(self, target, init_sequence) -> None:
        if init_sequence.has_task(rp.PYOCD_RP2350_SECURE_MODE_TASK):
            init_sequence.remove_task(rp.PYOCD_RP2350_SECURE_MODE_TASK)


class PyocdArmTarget(Target):
    """An RP2350 core in Arm mode through pyOCD's own `rp2350` target: memory, core registers, run control."""

    capabilities = frozenset({MEMORY, WRITE_MEMORY, ARM_REGISTERS, RUN_CONTROL, READ_WHILE_RUNNING, SAMPLE})
    REGISTER_NAMES = tuple(f"r{i}" for i in range(13)) + ("sp", "lr", "pc", "xpsr", "msp", "psp")
    cycle_counter_name = "DWT_CYCCNT"       # what read_cycle_counter reads (profile --cycles names it in meta.json)

    def __init__(self, probe, url: str | None = None):
        from pyocd.core.session import Session

        self.url = url or f"pyocd://{probe.unique_id}?core=arm"
        self.probe = probe
        self._cycle_counter_started = False
        # connect_mode=attach: a profiler or a log reader must not stop the core it connects to, nor change its
        # Security state or ACCESSCTRL (AttachWithoutSecureMode).
        self.session = Session(probe, target_override="rp2350", connect_mode="attach")
        self.session.delegate = AttachWithoutSecureMode()
        try:
            self.session.open()
            self.soc = self.session.target
            if not self.soc.cores:
                raise TargetError(f"{self.url}: pyOCD's rp2350 target found no Arm core behind the probe")
        except TargetError:
            self._close_session()
            raise
        except Exception as e:   # pyOCD's own errors (probe gone, discovery failed) named for the user
            self._close_session()
            raise TargetError(f"{self.url}: pyOCD's rp2350 target could not connect to the Arm core: {e}") from None

    def _pyocd(self, what: str, call, *args):
        from pyocd.core import exceptions
        try:
            return call(*args)
        except exceptions.Error as e:
            raise TargetError(f"{self.url}: {what} failed in pyOCD: {e}") from None

    def read_memory(self, address: int, size: int) -> bytes:
        if size <= 0:
            return b""
        return bytes(self._pyocd(f"reading {size} bytes at {address:#x}", self.soc.read_memory_block8, address, size))

    def write_memory(self, address: int, data: bytes) -> None:
        self._pyocd(f"writing {len(data)} bytes at {address:#x}", self.soc.write_memory_block8, address, list(data))

    def read_register(self, name: str) -> int:
        name = name.lower()
        if name not in self.REGISTER_NAMES:
            raise TargetError(f"{self.url}: no register {name!r} on the Arm core; known: "
                              f"{', '.join(self.REGISTER_NAMES)}")
        self._require_halted(name)
        return self._pyocd(f"reading {name}", self.soc.read_core_register, name) & 0xFFFFFFFF

    def read_registers(self) -> dict[str, int]:
        self._require_halted("the registers")
        values = self._pyocd("reading the registers", self.soc.read_core_registers_raw, list(self.REGISTER_NAMES))
        return {name: value & 0xFFFFFFFF for name, value in zip(self.REGISTER_NAMES, values)}

    def _require_halted(self, what: str) -> None:
        if self.state() != "halted":
            raise TargetError(f"{self.url}: cannot read {what} while the core runs; halt it first")

    def read_cycle_counter(self) -> int:
        """DWT_CYCCNT, the Arm cores' cycle counter (what mcycle is on RISC-V); started on first use by setting
        DEMCR.TRCENA and DWT_CTRL.CYCCNTENA, as debuggers' profilers do."""
        self._start_cycle_counter()
        return self._pyocd("reading DWT_CYCCNT", self.soc.read32, armv8m.DWT_CYCCNT)

    def _start_cycle_counter(self) -> None:
        if not self._cycle_counter_started:
            self._enable_dwt()
            ctrl = self._pyocd("reading DWT_CTRL", self.soc.read32, armv8m.DWT_BASE)
            self._pyocd("starting DWT_CYCCNT", self.soc.write32, armv8m.DWT_BASE, ctrl | armv8m.DWT_CTRL_CYCCNTENA)
            self._cycle_counter_started = True

    def _enable_dwt(self) -> None:
        """DEMCR.TRCENA, the DWT's global enable (its registers read UNKNOWN without it)."""
        demcr = self._pyocd("reading DEMCR", self.soc.read32, armv8m.DEMCR)
        if not demcr & armv8m.DEMCR_TRCENA:
            self._pyocd("setting DEMCR.TRCENA", self.soc.write32, armv8m.DEMCR, demcr | armv8m.DEMCR_TRCENA)

    def has_pcsr(self) -> bool:
        """Whether the core has DWT_PCSR, by OpenOCD's rule for Cortex-M: it is there if it reads non-zero."""
        self._enable_dwt()
        return self._pyocd("reading DWT_PCSR", self.soc.read32, armv8m.DWT_PCSR) != 0

    def sampler(self, request: SampleRequest):
        """One batch of deferred AP transfers per sample (_ArmSampler) for registers by name and word-aligned reads;
        any other request through the protocol (pyOCD's own calls), with DWT_CYCCNT as the cycle counter."""
        if (all(name in armv8m.DCRSR_REGSEL for name in request.registers)
                and all(address % 4 == 0 and size % 4 == 0 for address, size in request.reads)):
            return _ArmSampler(self, request)
        return ProtocolSampler(self, request, read_cycles=self.read_cycle_counter,
                               cycle_counter=self.cycle_counter_name,
                               round_trips=(lambda: self.probe.round_trips) if hasattr(self.probe, "round_trips")
                               else None)

    def halt(self) -> None:
        self._pyocd("halting", self.soc.halt)

    def resume(self) -> None:
        self._pyocd("resuming", self.soc.resume)

    def state(self) -> str:
        from pyocd.core.target import Target
        state = self._pyocd("reading the core state", self.soc.get_state)
        return "halted" if state == Target.State.HALTED else "running"

    def _close_session(self) -> None:
        try:
            self.session.close()
        except Exception:   # noqa: BLE001 - closing a broken session: the first error is the one to report
            pass

    def close(self) -> None:
        if self.session is not None:
            self._close_session()
            self.session = None


class _ArmSampler:
    """A sample of the Arm core as one batch of deferred transfers on its AHB-AP: one probe round trip.

    pyOCD's CortexM calls flush after each step (halt, resume) and read the core state in round trips of their own
    (resume first reads DHCSR; a register read first checks the core is halted), so the batch goes to the AP itself
    (MEM-AP write_memory and read_memory with now=False), in an order that needs no host poll in between:
      halt: DHCSR <- C_HALT; DHCSR read (S_HALT: the core was halted before the DCRSR write that follows);
      for each register: DCRSR <- REGSEL, DHCSR read (S_REGRDY: the transfer completed), DCRDR read;
      DWT_CYCCNT read if asked; the request's memory reads, word by word;
      resume as pyOCD's does: DFSR <- its debug-cause bits (write one to clear), DHCSR <- C_DEBUGEN.
    pyOCD 0.46 has no API for CMSIS-DAP's value match, so S_HALT and S_REGRDY are read in the same batch and checked
    when it returns; a sample that finds either clear is taken again (up to RETRIES times; details() counts them).

    With a pc-only request that resumes, and a core whose DWT_PCSR reads non-zero (OpenOCD's rule for Cortex-M), pc
    comes from DWT_PCSR instead, without halting: PCSR, DWT_CYCCNT and the memory reads while the core runs."""

    RETRIES = 3

    def __init__(self, target: PyocdArmTarget, request: SampleRequest):
        self.target, self.request = target, request
        self.ap = target.soc.selected_core.ap
        self.cycle_counter = target.cycle_counter_name
        if request.cycles:
            target._start_cycle_counter()
        self.words = [address + offset for address, size in request.reads for offset in range(0, size, 4)]
        self.pcsr = request.registers == ("pc",) and request.resume and target.has_pcsr()
        self.retried = 0            # batches taken again: S_HALT or S_REGRDY read clear
        self.pcsr_no_sample = 0     # DWT_PCSR read 0xFFFFFFFF (the core in Debug state or not sampleable)
        what = ", ".join([*request.registers] + ([self.cycle_counter] if request.cycles else [])
                         + describe_reads(request))
        self.description = (f"pyocd (Arm): {what} from DWT_PCSR without halting, in one round trip"
                             if self.pcsr else
                             f"pyocd (Arm): halt, {what}{', resume' if request.resume else ''} in one round trip "
                             "(one batch of AHB-AP transfers; S_HALT and S_REGRDY checked in it)")

    def take(self) -> Sample:
        before = self.target.probe_counts()
        sample = self._take_pcsr() if self.pcsr else self._take_halting()
        if before is None:
            return sample
        spent = self.target.probe_counts() - before
        return Sample(sample.registers, sample.memory, sample.cycles, spent.round_trips, spent.transfers)

    def _batch(self, queue) -> list[int]:
        """queue(pending) queues the transfers, appending each deferred read to `pending`; then every deferred read
        is collected once (pyOCD holds the AP's lock until then), in order, and the first error raised after."""
        from pyocd.core import exceptions
        pending, values, error = [], [], None
        try:
            queue(pending)
        except exceptions.Error as e:
            error = e
        for result in pending:
            try:
                values.append(result())
            except exceptions.Error as e:
                error = error or e
        if error is not None:
            raise TargetError(f"{self.target.url}: a sample's batch of AHB-AP transfers failed in pyOCD: {error}")
        return values

    def _queue_tail(self, pending: list) -> None:
        read = self.ap.read_memory
        if self.request.cycles:
            pending.append(read(armv8m.DWT_CYCCNT, 32, now=False))
        pending += [read(address, 32, now=False) for address in self.words]

    def _sample(self, registers: dict, tail: list[int]) -> Sample:
        cycles = tail.pop(0) if self.request.cycles else None
        memory, at = [], 0
        for _address, size in self.request.reads:
            memory.append(b"".join(word.to_bytes(4, "little") for word in tail[at:at + size // 4]))
            at += size // 4
        return Sample(registers, tuple(memory), cycles)

    def _take_pcsr(self) -> Sample:
        def queue(pending):
            pending.append(self.ap.read_memory(armv8m.DWT_PCSR, 32, now=False))
            self._queue_tail(pending)
        pc, *tail = self._batch(queue)
        self.pcsr_no_sample += pc == armv8m.PCSR_NO_SAMPLE
        return self._sample({"pc": pc}, tail)

    def _take_halting(self) -> Sample:
        ap, request = self.ap, self.request
        key = armv8m.DBGKEY << 16

        def queue(pending):
            ap.write_memory(armv8m.DHCSR, key | armv8m.C_DEBUGEN | armv8m.C_HALT)
            pending.append(ap.read_memory(armv8m.DHCSR, 32, now=False))
            for name in request.registers:
                ap.write_memory(armv8m.DCRSR, armv8m.DCRSR_REGSEL[name])
                pending += [ap.read_memory(armv8m.DHCSR, 32, now=False), ap.read_memory(armv8m.DCRDR, 32, now=False)]
            self._queue_tail(pending)
            if request.resume:
                ap.write_memory(armv8m.DFSR, armv8m.DFSR_ALL)
                ap.write_memory(armv8m.DHCSR, key | armv8m.C_DEBUGEN)

        end = 1 + 2 * len(request.registers)
        for _attempt in range(1 + self.RETRIES):
            try:
                values = self._batch(queue)
            except TargetError:
                if request.resume:          # a fault ends the probe's batch before its resume: resume on our own
                    self.target.resume()
                raise
            halted, statuses, registers = values[0], values[1:end:2], values[2:end:2]
            if halted & armv8m.S_HALT and all(dhcsr & armv8m.S_REGRDY for dhcsr in statuses):
                return self._sample(dict(zip(request.registers, registers)), values[end:])
            self.retried += 1
        raise TargetError(f"{self.target.url}: expected the core halted and its register transfers done (DHCSR "
                          f"S_HALT, bit 17, and S_REGRDY, bit 16), found DHCSR {halted:#010x} after the halt and "
                          f"{', '.join(f'{v:#010x}' for v in statuses)} after the DCRSR writes, {1 + self.RETRIES} "
                          "samples in a row; the core may be locked up or held in a long bus access: read DHCSR with "
                          "`xipscope dump --target URL 0xe000edf0 4`")

    def details(self) -> dict:
        return {"arm_sample": {"pc_from": "DWT_PCSR" if self.pcsr else "DCRSR/DCRDR at a halt",
                               "batches_retried": self.retried, "pcsr_no_sample": self.pcsr_no_sample}}


def open_pyocd(rest: str, url: str):
    """A connected pyOCD probe by unique id (empty: the only one attached), for the RISC-V Debug Module or, with
    `?core=arm`, for Arm core 0; `twin:FIRMWARE.elf` is the twin's DAP face, in the architecture of its ELF."""
    from urllib.parse import parse_qs

    from pyocd.probe.aggregator import DebugProbeAggregator

    from ..sim.dap import UID_PREFIX, TwinDapProbe
    from . import url_hart
    from .counting_probe import CountingProbe     # the probe model's counts (probe_model.py), on any probe
    unique_id, _, query = rest.partition("?")
    core = parse_qs(query).get("core", [None])[-1]
    if core not in (None, "riscv", "arm"):
        raise TargetError(f"{url}: core={core} is not known; say core=riscv (the default) or core=arm")
    hart = url_hart(query, url)
    if core == "arm" and hart:
        raise TargetError(f"{url}: hart= names a RISC-V hart; with core=arm pyOCD's rp2350 target drives Arm core 0")
    if unique_id.startswith(UID_PREFIX):
        probe = CountingProbe(TwinDapProbe.get_probe_with_id(unique_id, is_explicit=True))
        twin_core = "riscv" if probe.dm is not None else "arm"
        if core not in (None, twin_core):
            raise TargetError(f"{url}: the twin runs {unique_id[len(UID_PREFIX):]} on its {twin_core} core, the "
                              f"architecture of the ELF; core={core} needs a firmware built for {core}")
        return PyocdArmTarget(probe, url) if twin_core == "arm" else PyocdTarget(probe, url, hart=hart)

    probes = DebugProbeAggregator.get_all_connected_probes(unique_id=unique_id or None)
    if len(probes) != 1:
        found = ", ".join(p.unique_id for p in probes) or "none"
        raise TargetError(f"{url}: expected exactly one debug probe{' with id ' + unique_id if unique_id else ''}, "
                          f"found {found}; name one as pyocd://UID")
    probe = CountingProbe(probes[0])
    if core == "arm":
        return PyocdArmTarget(probe, url)
    return PyocdTarget(probe, url, target_type="rp2350", hart=hart)
