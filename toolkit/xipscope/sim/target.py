"""`sim://FIRMWARE.elf[?flash=IMAGE]`: the RP2350 twin (a model) opened in-process as a Target.

The core starts halted at the ELF entry, as if a debugger attached at reset. `resume()` runs it on a background
thread in slices; every read takes the twin's lock, so it lands between slices and sees a consistent state.
`run(n)` runs synchronously for tests and scripts that want a reproducible point.

Paced (clock_hz, or pace(); `xipscope profile` paces a sim:// target at DEFAULT_CLOCK_HZ), the twin runs to a nominal
simulated clock (sim/pacing.py) and `halt()` stops the core at the simulated cycle of the moment it was called, so
wall-clock samplers see simulated time. Unpaced (the default, fastest), a halt lands at the next block boundary in
host time. In-process, a sampler and
the simulation share the GIL, so the sampler's own timing depends on the code being simulated: profile the twin
through its GDB server (sim/gdbserver.py) instead, as a board behind a probe.
"""

from __future__ import annotations

import threading
import time

from ..errors import TargetError
from ..targets.base import (FIRMWARE, MEMORY, MODEL, PACING, READ_WHILE_RUNNING, REGISTERS, RUN_CONTROL,
                           STOP_REASON, WRITE_MEMORY, Target)
from . import MODEL_NOTE
from .hazard3 import Machine, RunResult
from .pacing import DEFAULT_CLOCK_HZ
from .runner import Runner, StopReason


class SimTarget(Target):
    # A model (reports say so), paced to a simulated clock on request (profile asks), and it knows its firmware
    # (doctor takes its symbols from it), and says when its firmware has ended (parked in wfi); no batched sample:
    # in-process, the protocol's calls cost no round trips.
    capabilities = frozenset({MEMORY, WRITE_MEMORY, REGISTERS, RUN_CONTROL, READ_WHILE_RUNNING, MODEL, PACING, FIRMWARE,
                              STOP_REASON})

    def __init__(self, firmware: str, *, clock_hz: float | None = None, **machine_kwargs):
        from urllib.parse import parse_qs

        from .firmware import find_firmware

        self.url = f"sim://{firmware}"
        firmware, _, query = firmware.partition("?")
        if not firmware:
            raise TargetError("sim:// needs a firmware ELF path, e.g. sim://firmware/xipbench.elf")
        firmware = find_firmware(firmware)   # a bare name of a shipped example (sim://xipbench.elf) finds its copy
        options = parse_qs(query, keep_blank_values=True)
        if "flash" in options:   # sim://FW.elf?flash=IMAGE: program the flash from a UF2 or raw image first
            machine_kwargs.setdefault("flash_image", find_firmware(options.pop("flash")[-1]))
        # sim://vmlinux?kernel=Image&dtb=pico2.dtb: boot Linux as `xipscope sim --kernel --dtb` does
        for option, kwarg in (("kernel", "kernel_image"), ("dtb", "dtb")):
            if option in options:
                machine_kwargs.setdefault(kwarg, options.pop(option)[-1])
        if options:
            raise TargetError(f"{self.url}: unknown option(s) {', '.join(options)}; sim:// knows "
                              "?flash=IMAGE.uf2 or ?flash=IMAGE.bin[@ADDR], ?kernel=Image and ?dtb=FILE.dtb")
        self.firmware = firmware
        self.machine = Machine(firmware, **machine_kwargs)
        self.runner = Runner(self.machine, clock_hz=clock_hz)
        self._halt_at: float | None = None     # wall time of a pending halt request (paced runs)
        self._halt_after: float | None = None  # the next halt's running time since the last resume (halt_after)
        self._after_next: float | None = None  # halt_after() given, for the run that the next resume starts
        self._resumed_at = 0.0                 # wall time of the last resume (the clock's anchor)
        self._thread: threading.Thread | None = None
        self._running = False
        self._wake = threading.Event()
        self.last_stop: StopReason | None = None
        self._halted_since: float | None = None   # wall time the core stopped at its halt's cycle
        self._halted_s = 0.0                       # wall time held halted by a debugger, resume to resume

    def __repr__(self) -> str:
        return f"<SimTarget {self.url} ({MODEL_NOTE}) {self.state()}>"

    # --- Target protocol ---
    def read_memory(self, address: int, size: int) -> bytes:
        return self._between_slices(self.machine.read_memory, address, size)

    def write_memory(self, address: int, data: bytes) -> None:
        self._between_slices(self.machine.write_memory, address, data)

    def read_registers(self) -> dict[str, int]:
        return self._between_slices(self.machine.read_registers)

    def read_register(self, name: str) -> int:
        return self._between_slices(self.machine.read_register, name)

    def _between_slices(self, request, *args):
        """Serve a request between slices, ahead of the run loop (the runner's fair gate)."""
        with self.runner.request():
            return request(*args)

    def halt(self) -> None:
        thread = self._thread
        if thread is None:
            return
        if self.runner.clock is not None:
            # the run loop runs on to this moment's simulated cycle (or the one halt_after() asked for), then stops
            # (kept until the next resume replaces it: the loop, still running until _running drops, stays capped)
            after = self._halt_after
            self._halt_at = self._resumed_at + after if after is not None else time.perf_counter()
        else:
            self.machine.request_halt()   # unpaced: cut the slice short at the next block boundary
        self._running = False
        self._wake.set()
        thread.join()
        self._thread = None
        self._halted_since = time.perf_counter()   # the core is at its halt's cycle: held from here to resume()
        self.machine.clear_halt_request()
        self.last_stop = self.last_stop or StopReason.HALT

    def resume(self) -> None:
        if self._thread is not None:
            if self._thread.is_alive() and self._running:
                return
            self._thread.join()
            self._thread = None
        if self._halted_since is not None:
            self._halted_s += time.perf_counter() - self._halted_since
            self._halted_since = None
        self._running = True
        self._wake.clear()
        self._halt_at = None
        self._halt_after, self._after_next = self._after_next, None
        self.last_stop = None
        self.machine.clear_halt_request()
        self._resumed_at = time.perf_counter()
        self.runner.started(self._resumed_at)
        self._thread = threading.Thread(target=self._loop, name="xipscope-sim", daemon=True)
        self._thread.start()

    def state(self) -> str:
        return "running" if self._thread is not None and self._running else "halted"

    def close(self) -> None:
        self.halt()

    # --- beyond the protocol ---
    def run(self, max_instructions: int | None = None) -> RunResult:
        """Run synchronously (the target must be halted) until idle, a breakpoint or about max_instructions."""
        if self._thread is not None:
            raise TargetError(f"{self.url}: halt the target before run()")
        return self.machine.run(max_instructions)

    def pace(self, clock_hz: float | None = DEFAULT_CLOCK_HZ) -> None:
        """Pace the twin to clock_hz simulated cycles per second of running wall time from the next resume on
        (None: unpaced). The target must be halted."""
        if self._thread is not None:
            raise TargetError(f"{self.url}: halt the target before changing its pacing")
        self.runner.pace(clock_hz)

    @property
    def clock(self):
        """The simulated clock the twin is paced to (sim/pacing.py), or None: unpaced."""
        return self.runner.clock

    def pacing(self) -> dict | None:
        """How the twin's clock ran (for a profile's meta.json): nominal Hz and any slips, the cycles run since
        reset and the wall time a debugger held the core halted (from the halt's cycle to the resume: catching up
        with the clock at a halt is the host simulating cycles already due, not halted time), or None when unpaced."""
        if self.clock is None:
            return None
        return self.clock.stats() | {"cycles": self.machine.cycles, "halted_s": self._halted_s}

    def halt_after(self, seconds: float) -> None:
        """Paced: from the next resume on, the first halt() stops the core `seconds` of running time after that
        resume, at that simulated cycle, whenever the host gets round to asking (a sampler's schedule, given before
        the resume so that the run loop never runs past it meanwhile). In-process the sampler and the model share the GIL: a halt stamped when halt() is called lands
        late by however long the model's Python code held the GIL, longer in miss-heavy code (xipbench at 1,000
        samples/s on a host loaded 6 on 2 cores: TV 0.056, copy_words 17% against 21%); scheduled, where samples
        land depends on the schedule alone."""
        self._after_next = seconds

    def stop_reason(self) -> str | None:
        """Why the core stopped by itself: "idle" (parked in wfi with nothing to wake it: the firmware ended),
        "trap-loop" or "breakpoint" (the run loop stopped), else None (running, or halted by a debugger)."""
        if self.last_stop in (StopReason.TRAP_LOOP, StopReason.BREAKPOINT):
            return self.last_stop
        m = self.machine
        return StopReason.IDLE if self._between_slices(lambda: m._is_idle(m.read_register("pc"))) else None

    def ground_truth(self) -> dict:
        """The model's exact counts since reset (sim/truth_tables.py stats_json: cycles and XIP accesses per function)."""
        from .truth_tables import stats_json
        return self._between_slices(stats_json, self.machine)

    @property
    def uart_output(self) -> str:
        return self.machine.uart.text()

    def _scheduled_cycle(self) -> int | None:
        """The cycle halt_after() scheduled the next halt at (paced), or None: no schedule."""
        after, clock = self._halt_after, self.runner.clock
        return clock.due(self._resumed_at + after) if after is not None and clock is not None else None

    def _loop(self) -> None:
        """Run the core in slices until it stops by itself or is halted. Paced, a halt runs it on to the simulated
        cycle of the moment halt() was called, and stops there; unpaced, halt() cuts the slice short."""
        runner = self.runner
        idle = False
        while True:
            runner.gate.wait_clear()
            if not self._running:
                if self._halt_at is not None and not idle:
                    reason = runner.run_to(self._halt_at)
                    if reason in (StopReason.BREAKPOINT, StopReason.TRAP_LOOP, StopReason.IDLE):
                        self.last_stop = reason
                return
            if idle:
                self._wake.wait()     # parked in wfi: nothing changes until a halt
                continue
            limit = self._scheduled_cycle()   # a sampler's scheduled halt (halt_after): never run past its cycle
            wait = runner.due_in(limit)
            if wait:
                self._wake.wait(wait)
                continue
            reason = runner.run_slice(limit)
            if reason in (StopReason.BREAKPOINT, StopReason.TRAP_LOOP):
                self.last_stop = reason
                self._running = False
                return
            if reason == StopReason.IDLE:
                self.last_stop = reason
                idle = True
            elif reason == StopReason.HALT:
                return
