"""A counting wrapper around whatever pyOCD DebugProbe pyocd:// uses (a CMSIS-DAP probe, or the twin's DAP face):
it feeds the probe model (probe_model.SwdLinkCounter) from the DP/AP transfers pyOCD and our Debug Module driver queue
and the moments they wait for results, and passes every call on unchanged.

A wait is a read asked for now, a deferred read collected before its batch went out, or a flush with transfers
queued. Everything else about the probe (open, connect, lock, session, the twin's own attributes) is the wrapped
probe's. A probe that reaches memory by its own accelerated interface (an ST-Link's MEM-AP commands) bypasses these
calls and is not counted.

A probe that clocks its core's halts (the twin's DAP face, sim/dap.py: `elapse`) is told `model`'s time at each point
of its batches: each transfer's wire time before the transfer (a halt or a resume acts as its write ends), and at each
wait the wire time of the RDBUFF read closing the batch and the round trips' latency. So the twin holds its core halted
for exactly this model's time between the halt and the resume, and for none of the host's.
"""

from __future__ import annotations

from ..probe_model import ProbeCounts, ProbeModel, SwdLinkCounter

_OWN = ("_probe", "link", "model", "_elapse")


class CountingProbe:
    """pyOCD's DebugProbe interface over `probe`, counting SWD transfers, USB packets and round trips in `link`;
    `model` prices the time a probe that clocks its core is told (Target.use_probe_model sets it)."""

    def __init__(self, probe, link: SwdLinkCounter | None = None, model: ProbeModel | None = None):
        object.__setattr__(self, "_probe", probe)
        object.__setattr__(self, "link", link or SwdLinkCounter())
        object.__setattr__(self, "model", model or ProbeModel())
        object.__setattr__(self, "_elapse", getattr(probe, "elapse", None))

    def __getattr__(self, name):
        return getattr(self._probe, name)

    def __setattr__(self, name, value):      # pyOCD sets probe.session: it belongs to the wrapped probe
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self._probe, name, value)

    def __repr__(self) -> str:
        return f"<CountingProbe {self._probe!r}>"

    @property
    def round_trips(self) -> int:
        """Modelled probe round trips so far (what the samplers report per sample)."""
        return self.link.counts.round_trips

    def probe_counts(self) -> ProbeCounts:
        return self.link.counts.copy()

    def _count(self, count, *args, **kwargs):
        """Count a transfer or a block in `link` and tell a probe that clocks its core the wire time it took (with an
        RDBUFF read it closed), queued ahead of the transfer; returns the batch it goes in."""
        counts = self.link.counts
        bits = counts.wire_bits
        batch = count(*args, **kwargs)
        if self._elapse is not None and counts.wire_bits != bits:
            self._elapse(self.model.wire_s(counts.wire_bits - bits))
        return batch

    def _wait(self) -> None:
        """The host waits for the batch: the probe that clocks its core is told the batch's last wire time and the
        round trips' latency, at the end of the batch."""
        counts = self.link.counts
        bits, trips = counts.wire_bits, counts.round_trips
        self.link.wait()
        if self._elapse is not None and counts.round_trips != trips:
            self._elapse(self.model.sample_s(counts.round_trips - trips, counts.wire_bits - bits))

    def _collect(self, deferred, batch: int, now: bool):
        def result():
            if not self.link.sent(batch):
                self._wait()
            return deferred()
        return result() if now else result

    def read_dp(self, addr: int, now: bool = True):
        batch = self._count(self.link.transfer, read=True, ap=False)
        return self._collect(self._probe.read_dp(addr, now=False), batch, now)

    def write_dp(self, addr: int, data: int) -> None:
        self._count(self.link.transfer, read=False, ap=False)
        self._probe.write_dp(addr, data)

    def read_ap(self, addr: int, now: bool = True):
        batch = self._count(self.link.transfer, read=True, ap=True)
        return self._collect(self._probe.read_ap(addr, now=False), batch, now)

    def write_ap(self, addr: int, data: int) -> None:
        self._count(self.link.transfer, read=False, ap=True)
        self._probe.write_ap(addr, data)

    def read_ap_multiple(self, addr: int, count: int = 1, now: bool = True):
        batch = self._count(self.link.block, count, read=True)
        return self._collect(self._probe.read_ap_multiple(addr, count, now=False), batch, now)

    def write_ap_multiple(self, addr: int, values) -> None:
        values = list(values)
        self._count(self.link.block, len(values), read=False)
        self._probe.write_ap_multiple(addr, values)

    def flush(self) -> None:
        self._wait()
        self._probe.flush()
