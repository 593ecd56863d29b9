"""The twin's one runner (a model's run loop parts): every face (in-process target.py, GDB gdbserver.py, JTAG jtag.py,
DAP dap.py) runs its core through a Runner and only translates its protocol into these calls.

- A slice is a budget of simulated instructions (block granularity). Faces that cannot cut a slice short when a
  request arrives (the JTAG and DAP faces look at their probe between slices) size the budget so that a slice takes
  about `slice_seconds` of host time: an lr.w spin loop costs ~100x more per instruction to simulate than
  straight-line code, and a fixed budget would make a halt wait that much longer.
- The request gate is fair: Python's locks are not, so a run loop that releases the core's lock and takes it straight
  back for its next slice would starve a request until the firmware parked itself. A request waiting at the gate
  holds the run loop off until it is served.
- Paced (clock_hz), the runner keeps the core on its simulated clock (sim/pacing.py): a slice runs once a short one is
  due, and a halt runs the core on to the simulated cycle of the moment it was asked for.
- Why a slice stopped is a StopReason (a str enum: it compares equal to its value, as the faces' clients read it).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from enum import StrEnum

from .pacing import SimClock

SLICE_INSTRUCTIONS = 50_000     # a slice's budget where the face does not size it by host time
SLICE_RANGE = (100, 50_000)     # instructions per slice when sized by host time
RUN_TO_CYCLE_SLICE = 200_000    # cycles per slice of a run to a cycle


class StopReason(StrEnum):
    BUDGET = "budget"           # the slice's budget is spent: the core runs on
    IDLE = "idle"               # parked in wfi with nothing to wake it: the twin stops simulating it
    BREAKPOINT = "breakpoint"   # pc reached a breakpoint (a trigger)
    EBREAK = "ebreak"           # an ebreak with dcsr.ebreakm set
    HALT = "halt"               # a debugger's halt request
    STEP = "step"               # one instruction, as asked
    TRAP_LOOP = "trap-loop"     # the same trap over and over, and nothing else (hazard3/traps.py REPEATED_TRAP)
    CYCLE = "cycle"             # the next block holds the cycle a run to a cycle asked for (run_to_cycle)
    ERROR = "error"             # a hook failed (the error is raised to the caller)


class RequestGate:
    """Requests go before the run loop (see the module docstring)."""

    def __init__(self):
        self._changed = threading.Condition()
        self._waiting = 0

    @contextmanager
    def request(self):
        """Count a request as waiting while it takes its locks and is served."""
        with self._changed:
            self._waiting += 1
        try:
            yield
        finally:
            with self._changed:
                self._waiting -= 1
                self._changed.notify_all()

    @property
    def busy(self) -> bool:
        return self._waiting > 0

    def wait_clear(self, timeout: float | None = None) -> bool:
        """Block the run loop until no request waits (or timeout); True when none does."""
        with self._changed:
            return self._changed.wait_for(lambda: self._waiting == 0, timeout)


class Runner:
    """Runs one core in slices for a face.

    core: what the face runs (the Machine, the Debug Module in front of it, or the ArmCore): `run_slice(budget)`.
    machine: the model holding the clock and the lock (`cycles`, `instructions`, `lock`); the core by default."""

    def __init__(self, core, *, machine=None, clock_hz: float | None = None,
                 budget: int = SLICE_INSTRUCTIONS, slice_seconds: float | None = None):
        self.core = core
        self.machine = machine if machine is not None else core
        self.clock = SimClock(clock_hz) if clock_hz else None   # None: unpaced
        self.budget = budget
        self.slice_seconds = slice_seconds
        self.gate = RequestGate()

    @contextmanager
    def request(self):
        """Serve a face's request under the core's lock, ahead of the run loop."""
        with self.gate.request(), self.machine.lock:
            yield

    def pace(self, clock_hz: float | None) -> None:
        self.clock = SimClock(clock_hz) if clock_hz else None

    def started(self, now: float | None = None) -> None:
        """The core starts running (every resume, at wall time `now`, default now): a paced clock anchors here, as
        halted time is not simulated."""
        if self.clock is not None:
            self.clock.start(self.machine.cycles, now)

    def due_in(self, limit: int | None = None) -> float:
        """Seconds until a slice is due: 0 unpaced, or once a paced core is at least a short slice behind its clock
        (and, given a `limit` cycle it must not run past, at least a short slice short of it)."""
        clock = self.clock
        if clock is None:
            return 0.0
        lag = self._lag(limit)
        return 0.0 if lag >= clock.min_slice else (clock.min_slice - lag) / clock.hz

    def _lag(self, limit: int | None) -> int:
        """Paced: the cycles due and not yet run, no further than `limit` (a cycle the core must not run past)."""
        m = self.machine
        lag = self.clock.behind(m.cycles, time.perf_counter())
        return lag if limit is None else min(lag, limit - m.cycles)

    def run_slice(self, limit: int | None = None):
        """One slice: the budget unpaced, else up to the cycle now due (at most the clock's longest slice, and not
        past `limit`: a halt scheduled at that cycle, see SimTarget.halt_after)."""
        m, clock = self.machine, self.clock
        if clock is not None:
            return run_to_cycle(self.core, m.cycles + min(self._lag(limit), clock.max_slice))
        if self.slice_seconds is None:
            return self.core.run_slice(self.budget)
        with m.lock:
            before = m.instructions
            t0 = time.perf_counter()
            reason = self.core.run_slice(self.budget)
            elapsed = max(time.perf_counter() - t0, 1e-5)
            executed = m.instructions - before
        # Size the next slice from slices that ran (a core halted in between ran none).
        if executed >= self.budget // 2:
            wanted = executed * self.slice_seconds / elapsed
            self.budget = int(min(max((self.budget + wanted) / 2, SLICE_RANGE[0]), SLICE_RANGE[1]))
        return reason

    def run_to(self, asked_at: float) -> StopReason:
        """A halt asked for at wall time `asked_at`: paced, run on to that moment's simulated cycle and stop there
        (BUDGET when reached, or why the core stopped before); unpaced, the core stops where it is (HALT)."""
        clock = self.clock
        if clock is None:
            return StopReason.HALT
        return self.halt_at(clock.stop_at(self.machine.cycles, asked_at))

    def halt_at(self, cycle: int) -> StopReason:
        """Paced: run on to the halt's `cycle` (run_to_cycle) and stop there; the next resume anchors the clock at
        that cycle, or where the core is if it stopped short (a breakpoint, idle)."""
        reason = run_to_cycle(self.core, cycle)
        if reason != StopReason.BUDGET:
            self.clock.stopped_short()
        return reason


def run_to_cycle(machine, target: int) -> StopReason:
    """Run `machine` (a hazard3 Machine) to simulated cycle `target`: it stops at the start of the translated block
    that holds that cycle (Machine.run_slice's stop_before_cycle), so the pc is where halting a real core at that cycle
    would find it, in proportion to each block's cycles. Slices of at most RUN_TO_CYCLE_SLICE cycles, so that a long
    run releases the core's lock now and then.
    Returns BUDGET when there, else the machine's stop reason (IDLE, BREAKPOINT, TRAP_LOOP, HALT)."""
    while True:
        if machine.cycles >= target:
            return StopReason.BUDGET
        stop = min(target, machine.cycles + RUN_TO_CYCLE_SLICE)
        # A budget of as many instructions as cycles to go: an instruction costs at least a cycle, so it never ends
        # the slice first.
        reason = machine.run_slice(stop - machine.cycles + 1, stop_before_cycle=stop)
        if reason == StopReason.CYCLE:
            if stop == target:
                return StopReason.BUDGET
        elif reason != StopReason.BUDGET:
            return reason
