"""The probe model (a model, not a measurement): what a sample would cost on a user's debug probe, on a virtual clock.

Against the twin every transport answers in host time, so a rate measured there says nothing about a board. The model
counts instead, at the face where a probe would see the work, and prices the counts; nothing sleeps:
  - round trips: the times the host waits for the probe's answer before it can go on;
  - USB packets (CMSIS-DAP v2, 64 bytes, several in flight: a wait for p packets costs ceil(p / in-flight) round trips);
  - wire bits: SWD transfers (46 bits each, chip/debug_wire.py) or JTAG TCK cycles, at a wire clock (default 5 MHz).
Modelled time per sample = round trips x latency + wire bits / wire clock (+ a tool's own sleep, OpenOCD `profile`'s
10 ms). The core is held from the halt to the resume: modelled halted time = (round trips - 1) x latency + the
sample's wire time, an upper bound (the halt goes out in the first batch, the resume in the last; the transfers before
the halt and after the resume in those batches are counted too). The twin's DAP face (sim/dap.py) keeps the exact
figure in its own clock: target/counting_probe.py tells it this model's time at each point of its batches, and it
counts in clk_sys cycles what passes while its core is halted; price() takes that figure where there is one. The latency defaults to the Raspberry Pi Debug
Probe's (chip/debug_wire.py); `xipscope probe-latency` measures the user's own and saves it where this module finds it.

SwdLinkCounter does the counting for a CMSIS-DAP probe (targets/counting_probe.py feeds it from pyOCD's probe calls);
the twin's JTAG face counts its own (sim/jtag.py). This module imports no transport.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .chip import debug_wire as dw
from .errors import XipscopeError

MODEL_NAME = "probe model (a model: counted probe work priced at a latency and a wire clock; nothing was timed)"
FIGURES_FILE = "probe-latency.json"


@dataclass
class ProbeCounts:
    """Cumulative counts of probe work; subtract two snapshots for what happened between them."""
    round_trips: int = 0
    transfers: int = 0          # requests the host made (DAP transfers, DMI scans)
    packets: int = 0            # USB packets (CMSIS-DAP); 0 where the face has none (remote_bitbang JTAG)
    wire_bits: int = 0          # SWD bits (RDBUFF reads after posted AP reads included) or JTAG TCK cycles

    def copy(self) -> "ProbeCounts":
        return ProbeCounts(**asdict(self))

    def __sub__(self, other: "ProbeCounts") -> "ProbeCounts":
        return ProbeCounts(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class ProbeModel:
    """A probe's round trip and wire clock; prices counts of probe work (see the module docstring)."""
    latency_s: float = dw.DEBUG_PROBE_ROUND_TRIP_S
    wire_hz: float = dw.DEFAULT_WIRE_HZ
    source: str = dw.DEBUG_PROBE_SOURCE + f"; wire {dw.DEFAULT_WIRE_HZ / 1e6:g} MHz assumed"
    clk_sys_hz: float = dw.CLK_SYS_HZ

    def wire_s(self, wire_bits: float) -> float:
        return wire_bits / self.wire_hz

    def sample_s(self, round_trips: float, wire_bits: float, sleep_s: float = 0.0) -> float:
        """Modelled time of one sample: its round trips, its wire time, and any sleep the tool adds."""
        return round_trips * self.latency_s + self.wire_s(wire_bits) + sleep_s

    def halted_s(self, round_trips: float, wire_bits: float) -> float:
        """Modelled time the core is held: the wire time, and every round trip after the first (upper bound)."""
        return max(round_trips - 1, 0) * self.latency_s + self.wire_s(wire_bits)

    def ceiling_hz(self, wire_bits: float) -> float:
        """The one-round-trip ceiling for a sample of `wire_bits`: 1 / (latency + its wire time)."""
        return 1 / (self.latency_s + self.wire_s(wire_bits))

    def price(self, counts: ProbeCounts, samples: int, sleep_s: float = 0.0,
              halted_cycles: float | None = None) -> dict:
        """What meta.json and the bench report for `counts` spent over `samples` samples. halted_cycles: the clk_sys
        cycles the target's own clock held the core halted over them, where it keeps one (the twin's DAP face:
        this model's time between each halt and its resume); else the halted time is the upper bound above."""
        per = {f.name: getattr(counts, f.name) / samples for f in fields(counts)}
        sample_s = self.sample_s(per["round_trips"], per["wire_bits"], sleep_s)
        if halted_cycles is None:
            halted_s = self.halted_s(per["round_trips"], per["wire_bits"])
            halted_from = "upper bound: (round trips - 1) x latency + the sample's wire time"
        else:
            halted_s = halted_cycles / samples / self.clk_sys_hz
            halted_from = ("the twin's clock: this model's time from each halt to its resume, in clk_sys cycles "
                           "(sim/dap.py)")
        return {
            "model": MODEL_NAME,
            "latency_us": self.latency_s * 1e6, "wire_hz": self.wire_hz, "source": self.source,
            "per_sample": per,
            "samples_per_s": 1 / sample_s,
            "halted_us": halted_s * 1e6,
            "halted_clk_sys_cycles": halted_s * self.clk_sys_hz,
            "halted_from": halted_from,
            "clk_sys_hz": self.clk_sys_hz,
            "one_round_trip_ceiling_per_s": self.ceiling_hz(per["wire_bits"]),
        }


# --- the user's own figures (xipscope probe-latency) ----------------------------------------------------------------

def figures_path() -> Path:
    """$XDG_CONFIG_HOME/xipscope/probe-latency.json (default ~/.config/xipscope/)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "xipscope" / FIGURES_FILE


def save_figures(latency_s: float, wire_hz: float | None, target_url: str, details: dict) -> Path:
    path = figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"latency_us": latency_s * 1e6, "wire_hz": wire_hz, "target": target_url,
              "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **details}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
    return path


def load_model() -> ProbeModel:
    """The user's measured figures where `xipscope probe-latency` saved them, else the default (the Debug Probe's)."""
    path = figures_path()
    if not path.exists():
        return ProbeModel()
    try:
        record = json.loads(path.read_text())
        latency_s = float(record["latency_us"]) / 1e6
        wire_hz = float(record["wire_hz"]) if record.get("wire_hz") else dw.DEFAULT_WIRE_HZ
        if not (latency_s > 0 and wire_hz > 0 and math.isfinite(latency_s) and math.isfinite(wire_hz)):
            raise ValueError("latency and wire rate must be positive")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise XipscopeError(f"{path}: expected the figures `xipscope probe-latency` saves (latency_us, wire_hz), "
                            f"found something unreadable ({e}); run `xipscope probe-latency --target URL` again or "
                            "delete the file to use the default") from None
    wire_note = f"wire {wire_hz:,.0f} bit/s" + ("" if record.get("wire_hz") else " (assumed: not measured)")
    return ProbeModel(latency_s, wire_hz, f"measured by xipscope probe-latency on {record.get('target')} at "
                                          f"{record.get('measured_utc')}: {latency_s * 1e6:.0f} us a round trip, "
                                          f"{wire_note} ({path})")


# --- counting a CMSIS-DAP probe on SWD ------------------------------------------------------------------------------

class SwdLinkCounter:
    """Counts a CMSIS-DAP v2 probe's work on SWD from the transfers a host queues and the moments it waits.

    Single transfers pack into DAP_Transfer commands, one per USB packet, while both the request and the response fit;
    a block (read_ap_multiple / write_ap_multiple) is DAP_TransferBlock commands of its own. A wait sends what is
    queued and costs ceil(packets / in_flight) round trips. Each run of posted AP reads ends with an RDBUFF read on
    the wire (in the same command; the host did not ask for it, so it adds wire bits, not transfers).
    """

    def __init__(self, packet_bytes: int = dw.USB_PACKET_BYTES, in_flight: int = dw.PACKETS_IN_FLIGHT):
        self.packet_bytes, self.in_flight = packet_bytes, in_flight
        self.counts = ProbeCounts()
        self.batch = 0                      # the id of the batch being queued (not yet sent)
        self._packets = 0                   # packets in it
        self._command: list[int] | None = None   # [request bytes, response bytes] of the open DAP_Transfer
        self._ap_reads = False              # the open command ends in a run of posted AP reads

    def _end_ap_reads(self) -> None:
        if self._ap_reads:
            self.counts.wire_bits += dw.SWD_TRANSFER_BITS      # the RDBUFF read that collects the last one
            self._ap_reads = False

    def _close_command(self) -> None:
        self._end_ap_reads()
        self._command = None

    def transfer(self, read: bool, ap: bool) -> int:
        """One DP or AP register transfer queued; returns the batch it goes in."""
        request = dw.DAP_REQUEST_BYTE + (0 if read else dw.DAP_WORD_BYTES)
        response = dw.DAP_WORD_BYTES if read else 0
        command = self._command
        if command is None or command[0] + request > self.packet_bytes or command[1] + response > self.packet_bytes:
            self._close_command()
            self._packets += 1
            command = self._command = [dw.DAP_TRANSFER_HEADER, dw.DAP_TRANSFER_HEADER]
        command[0] += request
        command[1] += response
        if not (read and ap):
            self._end_ap_reads()
        self._ap_reads = read and ap
        self.counts.transfers += 1
        self.counts.wire_bits += dw.SWD_TRANSFER_BITS
        return self.batch

    def block(self, words: int, read: bool) -> int:
        """`words` transfers to one AP register as DAP_TransferBlock commands; returns the batch they go in."""
        self._close_command()
        if words <= 0:
            return self.batch
        if read:
            per_packet = (self.packet_bytes - dw.DAP_TRANSFER_BLOCK_RESPONSE_HEADER) // dw.DAP_WORD_BYTES
        else:
            per_packet = (self.packet_bytes - dw.DAP_TRANSFER_BLOCK_REQUEST_HEADER) // dw.DAP_WORD_BYTES
        commands = math.ceil(words / per_packet)
        self._packets += commands
        self.counts.transfers += words
        # Posted reads: each command's run of AP reads ends with its RDBUFF read.
        self.counts.wire_bits += (words + (commands if read else 0)) * dw.SWD_TRANSFER_BITS
        return self.batch

    def wait(self) -> None:
        """The host waits for everything queued (a result it needs, or a flush)."""
        self._close_command()
        if not self._packets:
            return
        self.counts.round_trips += math.ceil(self._packets / self.in_flight)
        self.counts.packets += self._packets
        self._packets = 0
        self.batch += 1

    def sent(self, batch: int) -> bool:
        return batch != self.batch
