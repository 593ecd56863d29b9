"""Pacing the twin (a model) to a nominal simulated clock, so that a wall-clock sampler sees simulated time, not host time.

Why: a profiler halts the core at moments spread evenly in wall time. On a real RP2350 wall time is cycle time, so
the samples fall on functions in proportion to the cycles they take. An unpaced twin runs as fast as the host can
simulate each piece of code, and its "halt at the next slice boundary" lands wherever the host spends its time (a
function full of cache misses costs the host Python work per miss, a tight SRAM loop costs it almost nothing):
samples would measure the simulator, not the model.

The scheme: while the core runs, simulated cycles are tied to wall time, cycle(t) = c0 + clock_hz * (t - t0), anchored
at each resume (halted time is not simulated time: the core does not run while halted, and Hazard3's mcycle stops in
Debug Mode too). After a halt the anchor is the cycle the halt asked for, not the block boundary where it stopped.
- A halt requested at wall time T runs the core on to cycle(T) and stops at the start of the translated block that
  holds that cycle (runner.run_to_cycle), where halting a real core at that cycle would find it. So where a sample lands
  depends only on when it was asked for, whatever the host was doing. On the GDB server face, T is the kernel's
  arrival stamp of the interrupt (SO_TIMESTAMPNS), not the moment the server got round to reading it; in-process
  (sim://), T is the moment halt() was called.
- Between halts the twin never runs ahead of its clock: it runs in slices up to the cycle now due, once at least
  MIN_SLICE_S of simulated time is due, and otherwise waits (on the socket or an event). A long `continue` in gdb
  therefore runs at clock_hz, and a sampler's short intervals cost the host nothing until the halt.
- The host must be able to simulate faster than clock_hz. When it cannot (or is starved), the twin falls behind; past
  MAX_LAG_S the clock slips (its anchor moves) and the slips are counted (`stats()`, `monitor clock`, meta.json).

What makes a profile of the twin honest, measured on xipbench (tests/test_profile_twin.py):
- With exactly known request times (in-process, no wall clock) the landing rule is unbiased: total variation distance
  0.006 between sampled and true per-function cycles (0.033 when anchoring at the stop boundary instead).
- Over the GDB server at a fixed rate (1,000 samples/s, clock 300 kHz, 20k samples, a host loaded 6 on 2 cores):
  0.039 unweighted, 0.024 when each sample is weighted by the mcycle cycles since the previous one.
- As fast as pipelined rsp:// goes, a sample's running interval is tens of microseconds: the same order as the server's
  own latency in answering and resuming, which then decides where samples land. Sample the twin at a fixed rate.
- In-process (sim://) the sampler and the simulation share the GIL, so the sampler's timing depends on the code
  being simulated; profile the twin through its GDB server (`xipscope sim --gdb-port`), as a board behind a probe.

Pacing is opt-in where the twin is served (`xipscope sim --gdb-port N --clock-hz 1e6`, SimTarget(clock_hz=...)):
unpaced is fastest, and what gdb sessions, the JTAG/DAP faces and tests that do not sample by wall time want.
`xipscope profile` paces a sim:// target itself at DEFAULT_CLOCK_HZ = 1 MHz (150x slower than the chip's 150 MHz).
"""

from __future__ import annotations

import time

DEFAULT_CLOCK_HZ = 1_000_000
MIN_SLICE_S = 2e-3       # caught up: wait until this much simulated time is due (keeps the host idle between samples)
MAX_SLICE_S = 4e-3       # longest slice of simulated time between looks at requests
MAX_LAG_S = 0.5          # further behind than this, the clock slips (the host is too slow for clock_hz, or starved)


class SimClock:
    """Simulated cycles <-> wall time while the core runs (see the module docstring)."""

    def __init__(self, hz: float):
        if hz <= 0:
            raise ValueError(f"clock_hz must be positive, got {hz}")
        self.hz = hz
        self.min_slice = max(1, int(hz * MIN_SLICE_S))
        self.max_slice = max(self.min_slice, int(hz * MAX_SLICE_S))
        self.max_lag = max(self.max_slice, int(hz * MAX_LAG_S))
        self._c0 = 0
        self._t0 = 0.0
        self._asked: int | None = None   # the cycle the last halt asked for (see start)
        self.slips = 0
        self.slipped_cycles = 0

    def start(self, cycles: int, now: float | None = None) -> None:
        """Anchor the clock as the core starts running (every resume): halted time is not simulated time.

        After a halt the anchor is the cycle the halt asked for, not the start of the block where the core stopped
        (the one holding that cycle): anchoring at the block would take each block's cycles before the asked one
        from the next interval, and skew samples by block length (measured on xipbench with exact intervals, when
        halts stopped after the block: TV 0.033 anchored at the boundary, 0.0015 anchored at the request). A halt
        that stopped short of its cycle for another reason (`stopped_short`) anchors where the core is.
        """
        asked, self._asked = self._asked, None
        self._c0 = asked if asked is not None else cycles
        self._t0 = time.perf_counter() if now is None else now

    def stop_at(self, cycles: int, now: float) -> int:
        """The cycle a halt requested at wall time `now` stops at (slipping first if the twin is too far behind).

        A request stamped before the resume was processed (a pipelined client is quick, a busy server slow) had
        no running time before it: it stops where the core is."""
        now = max(now, self._t0)
        self.behind(cycles, now)
        self._asked = self.due(now)
        return self._asked

    def stop_at_cycle(self, cycles: int) -> int:
        """A halt scheduled at `cycles` (a sampler's interval in the twin's own time): the next start anchors there,
        as at a halt asked for by wall time (see start)."""
        self._asked = cycles
        return cycles

    def stopped_short(self) -> None:
        """The halt stopped before its cycle (a breakpoint, idle, a trap loop): the next start anchors where the
        core is."""
        self._asked = None

    def due(self, now: float) -> int:
        """The simulated cycle that wall time `now` stands for."""
        return self._c0 + round((now - self._t0) * self.hz)

    def behind(self, cycles: int, now: float) -> int:
        """Cycles due but not yet run; slips the clock (and counts it) when that exceeds max_lag."""
        lag = self.due(now) - cycles
        if lag > self.max_lag:
            excess = lag - self.max_lag
            self._t0 += excess / self.hz
            self.slips += 1
            self.slipped_cycles += excess
            lag = self.max_lag
        return lag

    def stats(self) -> dict:
        return {"clock_hz": self.hz, "slips": self.slips, "slipped_cycles": self.slipped_cycles,
                "note": "RP2350 twin (a model) paced to a nominal clock; samples land at the simulated cycle of the "
                        "halt request (sim/pacing.py)"}
