"""A live view of a running target, as `perf top` gives one: the hottest functions since the last reset with their
memory region, the XIP cache hit rate of the last interval, samples per second and the share of the time the core was
held halted. The samples go to disk exactly as `xipscope profile` writes them (the same sampler, the same directory
layout), so a `top` session can be reported on afterwards.

The sampler runs in a thread of its own (sample_profile with an on_sample hook); the view takes the rows it hands
over, and each refresh annotates only the rows that arrived since the previous one, with the profile's own analyses
(profile/analysis.py: the same regions, functions and counter deltas as `xipscope report`). So a view costs memory by
distinct function, not by sample, however long it runs.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from .store import COLUMNS

TOP_FUNCTIONS = 20


@dataclass
class TopFrame:
    """What one refresh shows."""
    functions: list[tuple[str, str, int, float]]     # (function, region, samples, share), hottest first
    samples: int                                      # samples since the last reset
    interval_s: float                                 # the wall time this refresh covers
    interval_samples: int
    samples_per_s: float | None
    halted_share: float | None                        # the share of the interval the core was held halted
    halted_seen_by: str                               # "target" (a paced model's own clock) or "host" (wall time)
    hit_rate: float | None                            # XIP hits / accesses over the interval; None without counters
    paused: bool
    ended: str | None = None                          # why sampling stopped (the target said so, an error)
    notes: list[str] = field(default_factory=list)


class TopView:
    """Counts per (function, region) since the last reset, fed with sample rows (COLUMNS order) from any thread."""

    def __init__(self, symbols, memory_map, clock=time.monotonic, pacing=None):
        """pacing: a paced model's Target.pacing (its clock's cycles and halted time), so the halted share is the
        target's own; else it is the host's (the sampler's halted_ns against wall time)."""
        self.symbols = symbols
        self.memory_map = memory_map
        self.clock = clock
        self.pacing = pacing
        self._pacing_before = pacing() if pacing is not None else None
        self._frame: TopFrame | None = None
        self.counts: Counter[tuple[str, str]] = Counter()
        self.total = 0
        self.paused = False
        self._arrived: deque[tuple] = deque()
        self._previous_row: tuple | None = None    # the last row of the previous refresh: its counters start this one
        self._last_refresh = clock()
        self._lock = threading.Lock()

    def add(self, *row) -> None:
        """One sample row, as SampleWriter.add takes it (called by the sampler's thread; deque appends are atomic)."""
        self._arrived.append(row)

    def toggle_pause(self) -> None:
        """While paused the view holds still; samples still go to disk."""
        with self._lock:
            self.paused = not self.paused

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.total = 0

    def refresh(self) -> TopFrame:
        """Take the rows that arrived since the previous refresh into the counts and describe the interval."""
        import pandas as pd

        from .analysis import annotate, hit_rate

        now = self.clock()
        rows = []
        while self._arrived:
            rows.append(self._arrived.popleft())
        interval = max(now - self._last_refresh, 1e-9)
        self._last_refresh = now
        with self._lock:
            if self.paused and self._frame is not None:
                if rows:        # on disk already; the view holds still, and the counters start from the newest row
                    self._previous_row = rows[-1]
                self._frame.paused = True
                return self._frame
            hits = None
            if rows:
                frame_rows = ([self._previous_row] if self._previous_row is not None else []) + rows
                frame = pd.DataFrame(frame_rows, columns=list(COLUMNS))
                for name in ("xip_hit", "xip_acc", "mcycle"):
                    frame[name] = frame[name].astype("Int64")
                annotate(frame, self.symbols, self.memory_map)
                hits = hit_rate(frame)["hit_rate"]
                fresh = frame.iloc[len(frame_rows) - len(rows):]
                self.counts.update(zip(fresh["function"].astype(str), fresh["region"].astype(str)))
                self.total += len(rows)
                self._previous_row = rows[-1]
            halted_share, seen_by = self._halted_share(rows, interval)
            hottest = [(f, r, n, n / self.total) for (f, r), n in self.counts.most_common(TOP_FUNCTIONS)]
            self._frame = TopFrame(functions=hottest, samples=self.total, interval_s=interval,
                                   interval_samples=len(rows), samples_per_s=len(rows) / interval,
                                   halted_share=halted_share, halted_seen_by=seen_by, hit_rate=hits, paused=False)
            return self._frame

    def _halted_share(self, rows: list[tuple], interval: float) -> tuple[float | None, str]:
        """The interval's halted share: a paced model's own (time held halted against the cycles it ran at its
        clock), else the host's (each sample's halted_ns against wall time)."""
        now = self.pacing() if self.pacing is not None else None
        before, self._pacing_before = self._pacing_before, now
        if now is not None and before is not None:
            from .sampler import _halted_target     # the one reading of a model's clock (its halted time, its cycles)
            return (_halted_target(before, now) or {}).get("share"), "target"
        halted_s = sum(r[COLUMNS.index("halted_ns")] for r in rows) / 1e9
        return min(halted_s / interval, 1.0), "host"


def start_sampling(target, out_dir, view: TopView, *, memory_map, symbols, elf, rate_hz=None, seed=None,
                   jitter=True, cycles=False, map_name=None):
    """Run `xipscope profile`'s sampler into out_dir in a thread, every row also handed to view; returns (thread,
    stop, outcome): set stop to end the run (the sample in progress completes, meta.json is written), then join the
    thread; outcome["run"] is the SampleRun, outcome["error"] the error that ended it early."""
    from ..errors import XipscopeError
    from .sampler import sample_profile

    stop = threading.Event()
    outcome: dict = {}

    def work():
        try:
            outcome["run"] = sample_profile(target, out_dir, memory_map=memory_map, rate_hz=rate_hz, symbols=symbols,
                                            elf=elf, stop=stop, cycles=cycles, map_name=map_name, jitter=jitter, seed=seed,
                                            on_sample=view.add)
        except XipscopeError as e:
            outcome["error"] = str(e)

    thread = threading.Thread(target=work, name="xipscope-top-sampler", daemon=True)
    thread.start()
    return thread, stop, outcome
