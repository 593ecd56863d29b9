"""The one Target protocol every transport implements; applications take a Target and never know the transport.

A transport declares what it can do in `capabilities` (the names below); an application that needs one asks
`require(target, NAME, what)`, which names the transport and the missing capability instead of failing later or
falling back silently. A profile's sample goes through `open_sampler(target, request)`: the transport's own batched
sample where it has one (SAMPLE), the protocol's halt/read/resume otherwise, with the per-sample cost either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Protocol, runtime_checkable

# Capability names a transport may list in `Target.capabilities`.
MEMORY = "memory"          # read_memory
WRITE_MEMORY = "write-memory"   # write_memory
REGISTERS = "registers"    # read_registers / read_register (GPRs, pc, CSRs by name)
RUN_CONTROL = "run-control"  # halt / resume / state
READ_WHILE_RUNNING = "read-while-running"   # read_memory works while the core runs (System Bus Access), no halt
ARM_REGISTERS = "arm-registers"  # r0-r12, sp, lr, pc, xpsr, msp, psp instead of RISC-V's: an RP2350 core in Arm mode
SAMPLE = "sample"          # sampler(request): halt, registers, memory reads (and resume) as one operation it plans
MODEL = "model"            # the target is a model (the RP2350 twin): reports say so beside what it shows, and set
                           # samples beside ground_truth() (dict: its exact cycles and XIP counts per function)
PACING = "pacing"          # pace(clock_hz=None) / pacing(): a model run to a nominal simulated clock (sim/pacing.py);
                           # halt_after(seconds): the next halt lands that much running time after the resume
FIRMWARE = "firmware"      # `firmware`: the path of the ELF the target runs (the twin knows it; a board does not)
STOP_REASON = "stop-reason"  # stop_reason(): why the core stopped by itself ("idle": parked in wfi for good,
                           # "trap-loop", "breakpoint"), else None: `profile --until exit` asks it

CAPABILITY_NAMES = {
    MEMORY: "reading memory", WRITE_MEMORY: "writing memory", REGISTERS: "RISC-V registers and CSRs by name",
    RUN_CONTROL: "halt, resume and run state", READ_WHILE_RUNNING: "reading memory while the core runs",
    ARM_REGISTERS: "Arm core registers", SAMPLE: "a batched sample",
    MODEL: "being a model", PACING: "pacing to a simulated clock", FIRMWARE: "knowing its firmware",
    STOP_REASON: "saying why the core stopped by itself",
}

# What xipscope gives on an RP2350 core in Arm mode (pyocd://...?core=arm, through pyOCD's own rp2350 target).
ARM_MODE_FEATURES = ("In Arm mode xipscope reads memory (also while the core runs), registers and run control, so "
                     "profile (pc and XIP counters, by function and region; --cycles weights samples by DWT_CYCCNT; "
                     "no --stacks), dmesg and dump apply; trap, doctor, snapshot and stacks are for the RISC-V "
                     "cores.")


@dataclass(frozen=True)
class SampleRequest:
    """What one sample reads while the core is held: registers by name, memory as (address, size), the cycle counter.

    pipeline and reply_wait say how the transport may take it where it has a choice (rsp://: requests in flight
    together, and whether the host blocks on or polls for replies); a transport without that choice ignores them.
    back_to_back says the caller takes each sample as soon as the last one returns (no rate): a transport may then
    send a sample's requests before the last one's replies are decoded (rsp://), and the caller ends with the
    sampler's finish().
    """
    registers: tuple[str, ...] = ("pc",)
    reads: tuple[tuple[int, int], ...] = ()
    read_names: tuple[str, ...] = ()     # what each read is ("counters"), for the transport's description
    cycles: bool = False         # also the core's cycle counter (mcycle; DWT_CYCCNT on an Arm core)
    resume: bool = True          # False: the core stays halted after the sample (the caller reads on, then resume()s)
    pipeline: bool | None = None     # None: the transport decides (rsp:// probes what the server allows)
    reply_wait: str = "auto"         # "block", "poll" or "auto" (measure both on the first samples, keep the faster)
    back_to_back: bool = False       # samples follow each other with no pause (see above)


class Sample(NamedTuple):
    """One sample's values and what it cost: the probe model (bench) builds on the counts.

    round_trips: the times the host waited for an answer from the server or probe; transfers: the requests inside
    them (RSP packets and the interrupt, Debug Module or DAP accesses, Tcl commands). None: the transport can't tell.
    A NamedTuple, not a frozen dataclass: a profile makes one a sample, and a tuple is made in half the time.
    """
    registers: dict[str, int]
    memory: tuple[bytes, ...]
    cycles: int | None = None
    round_trips: int | None = None
    transfers: int | None = None

    @property
    def pc(self) -> int:
        return self.registers["pc"]


def describe_reads(request: SampleRequest) -> list[str]:
    """Each read of a request by its name, else as `SIZE bytes at ADDRESS`."""
    names = list(request.read_names) + [""] * len(request.reads)
    return [name or f"{size} bytes at {address:#x}" for name, (address, size) in zip(names, request.reads)]


class Sampler(Protocol):
    description: str                 # how the transport takes a sample, for meta.json
    cycle_counter: str               # what `Sample.cycles` counts ("mcycle", "DWT_CYCCNT")

    def take(self) -> Sample: ...

    def details(self) -> dict | None:
        """What the transport chose while sampling (rsp://: how replies were awaited), or None."""
        ...

    # finish() -> None, where a sampler has one: ends sampling (a back-to-back sample sent ahead is taken and
    # dropped). One with nothing in flight between samples has none, so callers look it up: getattr(s, "finish").


@runtime_checkable
class Target(Protocol):
    """A running or stopped RP2350 (or a stand-in for one), reached one way or another.

    Register names are the RISC-V ABI names gdb uses: x1..x31 as `ra`, `sp`, ..., `pc`, and CSRs by their
    lower-case names (`mcause`, `mepc`, `mstatus`, `mtval`, ...).

    close() may be called more than once (the second call does nothing), and a Target is a context manager that
    closes it: `with open_target(url) as target: ...`. Transports subclass this class for those two methods.
    """

    url: str
    capabilities: frozenset[str]

    def read_memory(self, address: int, size: int) -> bytes: ...

    def write_memory(self, address: int, data: bytes) -> None:
        """Write `data` at `address`; a transport without WRITE_MEMORY says so (this default)."""
        require(self, WRITE_MEMORY, f"writing {len(data)} bytes at {address:#x}")
        raise NotImplementedError(f"{type(self).__name__} lists {WRITE_MEMORY} but has no write_memory")

    def read_registers(self) -> dict[str, int]: ...

    def read_register(self, name: str) -> int: ...

    def halt(self) -> None: ...

    def resume(self) -> None: ...

    def state(self) -> str:
        """'halted' or 'running'."""
        ...

    def close(self) -> None: ...

    def probe_counts(self):
        """Probe work counted so far (probe_model.ProbeCounts: round trips, transfers, USB packets, wire bits) where
        the transport counts it at the probe (pyocd://, targets/counting_probe.py), else None."""
        counts = getattr(getattr(self, "probe", None), "probe_counts", None)
        return counts() if counts is not None else None

    def use_probe_model(self, model) -> None:
        """Price the probe's time with `model` (probe_model.ProbeModel) where the counting probe tells it to a core
        that clocks its halts (the twin's DAP face behind pyocd://); elsewhere nothing to do."""
        probe = getattr(self, "probe", None)
        if hasattr(probe, "probe_counts"):
            probe.model = model

    def halted_cycles(self) -> float | None:
        """clk_sys cycles the core was held halted so far, in the probe model's time between each halt and its
        resume, where the target clocks them (the twin's DAP face: sim/dap.py), else None."""
        return getattr(getattr(self, "probe", None), "halted_cycles", None)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def require(target, capability: str, what: str) -> None:
    """Stop with a clear error when `target` lacks `capability`, naming the transport and what needed it."""
    from ..errors import CapabilityError
    if capability not in getattr(target, "capabilities", ()):
        scheme = target.url.split(":", 1)[0]
        offers = ", ".join(CAPABILITY_NAMES.get(c, c) for c in sorted(getattr(target, "capabilities", ()))) or "nothing"
        raise CapabilityError(f"{target.url}: {what} needs {CAPABILITY_NAMES.get(capability, capability)}, which "
                              f"the {scheme}:// transport does not offer (it offers {offers})")


def require_riscv(target, what: str) -> None:
    """Stop with a clear error when `what` (a RISC-V feature: traps, CSRs, frame-pointer stacks) meets an Arm core."""
    from ..errors import CapabilityError
    if ARM_REGISTERS in getattr(target, "capabilities", ()):
        raise CapabilityError(f"{target.url}: {what} is for the RP2350's RISC-V cores (Hazard3), and this target is "
                              f"a core in Arm mode. {ARM_MODE_FEATURES}")


def open_sampler(target, request: SampleRequest) -> Sampler:
    """The transport's own sampler where it has one (SAMPLE), else one through the protocol (ProtocolSampler).
    The target must be running; sampling needs run control."""
    require(target, RUN_CONTROL, "sampling (halt, read, resume)")
    if SAMPLE in target.capabilities:
        return target.sampler(request)
    return ProtocolSampler(target, request)


class ProtocolSampler:
    """A sample through the Target protocol: halt(), the registers, the reads, resume(), each its own call.
    The calls are counted as round trips and transfers: the least the transport spends (it may spend more)."""

    cycle_counter = "mcycle"

    def __init__(self, target, request: SampleRequest, read_cycles: Callable[[], int] | None = None,
                 cycle_counter: str = "mcycle", round_trips: Callable[[], int] | None = None):
        """read_cycles/cycle_counter: the target's own cycle counter (default mcycle by name); round_trips: a
        counter the probe keeps (the twin's DAP face does), measured per sample instead of counting calls."""
        if request.cycles and read_cycles is None:
            require(target, REGISTERS, f"reading {cycle_counter} with each sample")
        self.target, self.request = target, request
        self.cycle_counter = cycle_counter
        self._read_cycles = read_cycles or (lambda: target.read_register("mcycle"))
        self._round_trips = round_trips
        names = request.registers
        self._by_register_block = len(names) > 1     # several registers: one read_registers() call
        self._calls = 2 + (1 if names else 0) + len(request.reads) + (1 if request.cycles else 0) - (
            0 if request.resume else 1)
        self.description = (f"{target.url.split(':', 1)[0]}: halt, read {', '.join(names)}"
                            f"{', ' + cycle_counter if request.cycles else ''}"
                            + "".join(f", {name}" for name in describe_reads(request))
                            + f"{', resume' if request.resume else ''} through the Target protocol")

    def take(self) -> Sample:
        target, request = self.target, self.request
        before = self._round_trips() if self._round_trips is not None else None
        target.halt()
        try:
            cycles = self._read_cycles() & 0xFFFFFFFF if request.cycles else None
            if self._by_register_block:
                block = target.read_registers()
                registers = {n: _from_block(target, block, n) for n in request.registers}
            else:
                registers = {n: target.read_register(n) for n in request.registers}
            memory = tuple(target.read_memory(address, size) for address, size in request.reads)
        except BaseException:
            target.resume()
            raise
        if request.resume:
            target.resume()
        if before is not None:
            trips = self._round_trips() - before
            return Sample(registers, memory, cycles, trips, None)
        return Sample(registers, memory, cycles, self._calls, self._calls)

    def details(self) -> dict | None:
        return None


_ALIASES = {"fp": "s0", "s0": "fp"}    # servers and transports spell x8 either way


def _from_block(target, block: dict[str, int], name: str) -> int:
    """A register out of read_registers(), under either spelling of x8, else read by name."""
    if name in block:
        return block[name]
    if _ALIASES.get(name) in block:
        return block[_ALIASES[name]]
    return target.read_register(name)
