"""Benchmark: round trips per openocd:// sample against the floor, counted at the twin's JTAG face (a model).

Issue 16 item 4. OpenOCD 0.12 drives the twin's TAP over remote_bitbang; every TDO value it asks for ('R') comes back
in a reply it waits for, so the replies the face sends are the round trips (also shown: 'R' bits and Debug Module
accesses). Per sample, medians over ROUNDS rounds of SAMPLES samples, the hart running firmware/lrscspin.elf:
- openocd://'s sampler (TclSampler) as it is kept, and its other script: `halt`, `get_reg -force {pc}`, the counters
  by SBA through `riscv dmi_*`, `resume`;
- the floor: the minimal Debug Module sequence as one Tcl script of `riscv dmi_write`/`dmi_read`: haltreq, dmstatus,
  dpc through the program buffer (csrr s0, dpc; s0 saved and restored through data0; abstractcs for cmderr), the
  counters by SBA (sbcs, sbaddress0, two sbdata0 reads, sbcs for errors), resumereq.
The face's counter is this bench's own (a wrapper on Tap.feed), so sim/jtag.py is unchanged here.

    python bench/bench_openocd_floor.py
"""

from __future__ import annotations

import statistics
import sys
import threading
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "toolkit"))
sys.path.insert(0, str(REPO / "tests"))

from support.openocd_twin import openocd  # noqa: E402

from xipscope.chip import rp2350 as rp  # noqa: E402
from xipscope.sim import jtag  # noqa: E402
from xipscope.sim import MODEL_NOTE  # noqa: E402
from xipscope.sim.hazard3 import Machine  # noqa: E402
from xipscope.targets import open_target  # noqa: E402
from xipscope.targets.base import SampleRequest  # noqa: E402

FIRMWARE = REPO / "firmware" / "lrscspin.elf"
ROUNDS = 5
SAMPLES = 20
COUNTERS_AT = rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT
COUNTERS = SampleRequest(reads=((COUNTERS_AT, 8),), read_names=("counters",))

# Debug Module registers and values (RISC-V debug spec 0.13.2)
DATA0, DMCONTROL, DMSTATUS, ABSTRACTCS, COMMAND, PROGBUF0, SBCS, SBADDRESS0, SBDATA0 = (
    0x04, 0x10, 0x11, 0x16, 0x17, 0x20, 0x38, 0x39, 0x3C)
DMACTIVE, HALTREQ, RESUMEREQ = 1, 1 << 31, 1 << 30
READ_S0, READ_S0_THEN_EXEC, WRITE_S0 = 0x221008, 0x261008, 0x231008   # Access Register, 32-bit, x8
CSRR_S0_DPC, EBREAK = 0x7B102473, 0x00100073
SBCS_READ_WORDS = (1 << 22) | (7 << 12) | (2 << 17) | (1 << 16) | (1 << 20) | (1 << 15)   # clear errors, 32-bit,
SBCS_LAST_WORD = (2 << 17) | (1 << 16)                      # autoincrement, read on address and on data; then off


def floor_script(t: str) -> str:
    """The minimal Debug Module sequence for one sample, each access one `riscv dmi_*` command."""
    def w(address: int, value) -> str:
        return f"{t} riscv dmi_write {address:#x} {value if isinstance(value, str) else hex(value)}"

    def r(address: int) -> str:
        return f"[string trim [{t} riscv dmi_read {address:#x}]]"

    return "; ".join([
        w(DMCONTROL, HALTREQ | DMACTIVE), f"set s [list {r(DMSTATUS)}]",
        w(PROGBUF0, CSRR_S0_DPC), w(PROGBUF0 + 1, EBREAK),
        w(COMMAND, READ_S0_THEN_EXEC), f"lappend s {r(DATA0)}",       # s0 saved; s0 = dpc
        w(COMMAND, READ_S0), f"lappend s {r(DATA0)}",                 # dpc
        w(DATA0, "[lindex $s 1]"), w(COMMAND, WRITE_S0), f"lappend s {r(ABSTRACTCS)}",
        w(SBCS, SBCS_READ_WORDS), w(SBADDRESS0, COUNTERS_AT), f"lappend s {r(SBDATA0)}",
        w(SBCS, SBCS_LAST_WORD), f"lappend s {r(SBDATA0)} {r(SBCS)}",
        w(DMCONTROL, RESUMEREQ | DMACTIVE), "set s"])


class FaceCounts:
    """Replies the JTAG face sent (OpenOCD's waits), 'R' commands and DM accesses, from a wrapper on Tap.feed."""

    def __init__(self):
        self.replies = self.tdo_bits = 0
        feed = jtag.Tap.feed

        def counted(tap, data: bytes) -> bytes:
            self.tdo_bits += data.count(b"R")
            reply = feed(tap, data)
            self.replies += bool(reply)
            return reply

        jtag.Tap.feed = counted


def per_sample(counts: FaceCounts, server, take) -> tuple[float, float, float]:
    take()
    replies, bits, accesses = counts.replies, counts.tdo_bits, server.dm.accesses
    for _ in range(SAMPLES):
        take()
    return ((counts.replies - replies) / SAMPLES, (counts.tdo_bits - bits) / SAMPLES,
            (server.dm.accesses - accesses) / SAMPLES)


def main() -> int:
    counts = FaceCounts()
    server = jtag.JtagServer(Machine(FIRMWARE, uart_echo=lambda b: None), 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    results: dict[str, list[tuple[float, float, float]]] = {"sampler": [], "halt/get_reg/resume": [], "floor": []}
    try:
        with TemporaryDirectory() as tmp, openocd(server.port, Path(tmp)) as session:
            tcl = open_target(session.url)
            try:
                sampler = tcl.sampler(COUNTERS)
                take = sampler.take
                script = floor_script(tcl.target_name)
                floor_pcs = {int(tcl.command(script).split()[2], 16) for _ in range(5)}
                sampler_pcs = {take().pc for _ in range(5)}
                for _ in range(ROUNDS):
                    results["sampler"].append(per_sample(counts, server, take))
                    results["halt/get_reg/resume"].append(
                        per_sample(counts, server, lambda: tcl.command(sampler.openocd_script)))
                    results["floor"].append(per_sample(counts, server, lambda: tcl.command(script)))
            finally:
                tcl.close()
    finally:
        server.close()
        thread.join(timeout=10)
    med = {k: [statistics.median(v[i] for v in rows) for i in range(3)] for k, rows in results.items()}
    print(f"openocd:// per sample at the {MODEL_NOTE}'s JTAG face, OpenOCD 0.12, {FIRMWARE.name} running "
          f"(medians of {ROUNDS} rounds of {SAMPLES}):")
    for name, label in (("sampler", f"TclSampler as kept: {sampler.description.split('(')[-1].rstrip(')')}"),
                        ("halt/get_reg/resume", "Tcl script of halt, get_reg pc, SBA, resume"),
                        ("floor", "floor: minimal DM sequence (riscv dmi_*)")):
        trips, bits, accesses = med[name]
        print(f"  {label:<52} {trips:6.1f} round trips, {bits:6.0f} TDO bits, {accesses:5.1f} DM accesses")
    print(f"  sampler / floor: {med['sampler'][0] / med['floor'][0]:.2f}x the round trips (goal: at most 1.10x)")
    print(f"  pcs seen: sampler {sorted(hex(p) for p in sampler_pcs)}, floor {sorted(hex(p) for p in floor_pcs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
