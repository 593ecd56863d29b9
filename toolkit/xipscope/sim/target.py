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
from ..target.base import (FIRMWARE, MEMORY, MODEL, PACING, READ_WHILE_RUNNING, REGISTERS, RUN_CONTROL,
                           STOP_REASON, WRITE_MEMORY, Target)
from .machine import MODEL_NOTE, Machine, RunResult
from .pacing import DEFAULT_CLOCK_HZ, SimClock, run_to_cycle

SLICE = 50_000


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
        if options:
            raise TargetError(f"{self.url}: unknown option(s) {', '.join(options)}; sim:// knows "
                              "?flash=IMAGE.uf2 or ?flash=IMAGE.bin[@ADDR]")
        self.firmware = firmware
        self.machine = Machine(firmware, **machine_kwargs)
        self.clock = SimClock(clock_hz) if clock_hz else None
        self._halt_at: float | None = None     # wall time of a pending halt request (paced runs)
        self._halt_after: float | None = None  # the next halt's running time since the last resume (halt_after)
        self._after_next: float | None = None  # halt_after() given, for the run that the next resume starts
        self._resumed_at = 0.0                 # wall time of the last resume (the clock's anchor)
        self._thread: threading.Thread | None = None
        self._running = False
        self._wake = threading.Event()
        self._requests = threading.Condition()   # requests waiting for the lock (see _between_slices)
        self._waiting = 0
        self.last_stop: str | None = None
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
        """Serve a request under the twin's lock, holding the run loop off until it is served.

        Python's locks are not fair: a run loop that releases the lock and takes it straight back for its next slice
        would starve a reader until the firmware parked itself. So a waiting request makes the loop wait too.
        """
        with self._requests:
            self._waiting += 1
        try:
            with self.machine.lock:
                return request(*args)
        finally:
            with self._requests:
                self._waiting -= 1
                self._requests.notify_all()

    def halt(self) -> None:
        thread = self._thread
        if thread is None:
            return
        if self.clock is not None:
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
        self.last_stop = self.last_stop or "halt"

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
        if self.clock is not None:
            self._resumed_at = time.perf_counter()
            self.clock.start(self.machine.cycles, self._resumed_at)
        loop = self._paced_loop if self.clock is not None else self._loop
        self._thread = threading.Thread(target=loop, name="xipscope-sim", daemon=True)
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
        self.clock = SimClock(clock_hz) if clock_hz else None

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
        if self.last_stop in ("trap-loop", "breakpoint"):
            return self.last_stop
        m = self.machine
        return "idle" if self._between_slices(lambda: m._is_idle(m.read_register("pc"))) else None

    def ground_truth(self) -> dict:
        """The model's exact counts since reset (sim/report.py stats_json: cycles and XIP accesses per function)."""
        from .report import stats_json
        return self._between_slices(stats_json, self.machine)

    @property
    def uart_output(self) -> str:
        return self.machine.uart.text()

    def _loop(self) -> None:
        m = self.machine
        while self._running:
            with self._requests:
                self._requests.wait_for(lambda: self._waiting == 0)
            reason = m.run_slice(SLICE)
            if reason in ("breakpoint", "trap-loop"):
                self.last_stop = reason
                self._running = False
                return
            if reason == "idle":
                # Parked in wfi: nothing can change until someone halts us.
                self.last_stop = "idle"
                self._wake.wait()
            elif reason == "halt":
                return

    def _paced_loop(self) -> None:
        """Keep the core within a short slice of its clock (sim/pacing.py); a halt runs it on to the simulated
        cycle of the moment halt() was called, and stops there."""
        m, clock = self.machine, self.clock
        idle = False
        while True:
            with self._requests:
                self._requests.wait_for(lambda: self._waiting == 0)
            if not self._running:
                if self._halt_at is not None and not idle:
                    reason = run_to_cycle(m, clock.stop_at(m.cycles, self._halt_at), clock)
                    if reason in ("breakpoint", "trap-loop", "idle"):
                        self.last_stop = reason
                return
            if idle:
                self._wake.wait()     # parked in wfi: nothing changes until a halt
                continue
            lag = clock.behind(m.cycles, time.perf_counter())
            after = self._halt_after
            if after is not None:    # a sampler's scheduled halt (halt_after): never run past its cycle
                lag = min(lag, clock.due(self._resumed_at + after) - m.cycles)
            if lag < clock.min_slice:
                self._wake.wait((clock.min_slice - lag) / clock.hz)
                continue
            reason = run_to_cycle(m, m.cycles + min(lag, clock.max_slice), clock)
            if reason in ("breakpoint", "trap-loop"):
                self.last_stop = reason
                self._running = False
                return
            if reason == "idle":
                self.last_stop = "idle"
                idle = True
