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
                           WRITE_MEMORY, Target)
from .machine import MODEL_NOTE, Machine, RunResult
from .pacing import DEFAULT_CLOCK_HZ
from .runner import Runner, StopReason


class SimTarget(Target):
    # A model (reports say so), paced to a simulated clock on request (profile asks), and it knows its firmware
    # (doctor takes its symbols from it); no batched sample: in-process, the protocol's calls cost no round trips.
    capabilities = frozenset({MEMORY, WRITE_MEMORY, REGISTERS, RUN_CONTROL, READ_WHILE_RUNNING, MODEL, PACING, FIRMWARE})

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
        self.runner = Runner(self.machine, clock_hz=clock_hz)
        self._halt_at: float | None = None     # wall time of a pending halt request (paced runs)
        self._thread: threading.Thread | None = None
        self._running = False
        self._wake = threading.Event()
        self.last_stop: StopReason | None = None

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
            self._halt_at = time.perf_counter()   # the run loop runs on to this moment's simulated cycle, then stops
        else:
            self.machine.request_halt()   # unpaced: cut the slice short at the next block boundary
        self._running = False
        self._wake.set()
        thread.join()
        self._thread = None
        self.machine.clear_halt_request()
        self.last_stop = self.last_stop or StopReason.HALT

    def resume(self) -> None:
        if self._thread is not None:
            if self._thread.is_alive() and self._running:
                return
            self._thread.join()
            self._thread = None
        self._running = True
        self._wake.clear()
        self._halt_at = None
        self.last_stop = None
        self.machine.clear_halt_request()
        self.runner.started()
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
        """How the twin's clock ran (for a profile's meta.json): nominal Hz and any slips, or None when unpaced."""
        return self.clock.stats() if self.clock is not None else None

    @property
    def uart_output(self) -> str:
        return self.machine.uart.text()

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
            wait = runner.due_in()
            if wait:
                self._wake.wait(wait)
                continue
            reason = runner.run_slice()
            if reason in (StopReason.BREAKPOINT, StopReason.TRAP_LOOP):
                self.last_stop = reason
                self._running = False
                return
            if reason == StopReason.IDLE:
                self.last_stop = reason
                idle = True
            elif reason == StopReason.HALT:
                return
