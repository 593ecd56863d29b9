"""PC samples per second through OpenOCD against the twin's JTAG face (a model), vs OpenOCD's own `profile` (the anchor).

The workload is firmware/lrscspin.elf: a spinlock in PSRAM that never gets taken, so the hart runs for ever, like a
kernel stuck on a lock. Three ways to take a sample, all through the real openocd 0.12 on free loopback ports:
  - OpenOCD's `profile` command (halt, read pc, resume, 10 ms sleep; "<100 samples/s" on RISC-V): the anchor; its rate
    is the sample count in the gmon.out it writes over the measured time;
  - openocd://: its sampler (TclSampler) for pc and the counters, one Tcl script (one round trip) per sample: halt, pc, CTR_HIT/CTR_ACC, resume;
  - rsp:// to OpenOCD's gdb port: interrupt, `p` pc, `c` (three round trips, no counters).
  - pyocd://: our Debug Module driver on pyOCD's DAP layer against the twin's DAP face (in this process): halt, dpc,
    counters and resume as one batch of deferred transfers.
Also counted: DM register accesses per sample on both paths (DMI scans behind OpenOCD, APB-AP transfers behind
pyOCD) and probe round trips per pyocd:// sample (the batches the probe runs).
The pyocd:// twin runs in this process and its hart only between batches, so its rate is the protocol's cost alone.
Absolute rates include the twin's simulation slices (a halt request waits for the running slice, ~2 ms); ratios
against the anchor measured in the same run are what to compare.
"""

from __future__ import annotations

import statistics
import struct
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "toolkit"))
sys.path.insert(0, str(REPO / "tests"))

from support.openocd_twin import openocd, twin_jtag  # noqa: E402

from xipscope.sim.dap import TwinDapProbe  # noqa: E402
from xipscope.sim.jtag import JtagServer  # noqa: E402
from xipscope.sim import MODEL_NOTE  # noqa: E402
from xipscope.sim.hazard3 import Machine  # noqa: E402
from xipscope.chip import rp2350 as rp  # noqa: E402
from xipscope.targets import open_target  # noqa: E402
from xipscope.targets.base import SampleRequest  # noqa: E402
from xipscope.targets.pyocd import PyocdTarget  # noqa: E402

FIRMWARE = REPO / "firmware" / "lrscspin.elf"
ARM_FIRMWARE = REPO / "firmware" / "armxip.elf"
ROUNDS = 3
TCL_SAMPLES = 100
RSP_SAMPLES = 50
PROFILE_SECONDS = 2


def gmon_samples(path: Path) -> int:
    """Samples in a gmon.out histogram as OpenOCD writes it (20-byte header, tag 0, 32-bit lowpc/highpc/size/rate)."""
    data = path.read_bytes()
    if data[:4] != b"gmon" or data[20] != 0:
        raise SystemExit(f"{path}: not the gmon.out OpenOCD writes (starts {data[:24]!r})")
    _low, _high, buckets, _rate = struct.unpack_from("<IIII", data, 21)
    return sum(struct.unpack_from(f"<{buckets}H", data, 53))


def anchor_rate(url: str, workdir: Path) -> float:
    tcl = open_target(url)
    try:
        out = workdir / "gmon.out"
        t0 = time.perf_counter()
        tcl.command(f"profile {PROFILE_SECONDS} {out}")
        elapsed = time.perf_counter() - t0
        return gmon_samples(out) / elapsed
    finally:
        tcl.close()

COUNTERS = SampleRequest(reads=((rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT, 8),), read_names=("counters",))


def tcl_rate(url: str) -> float:
    tcl = open_target(url)
    try:
        take = tcl.sampler(COUNTERS).take
        t0 = time.perf_counter()
        for _ in range(TCL_SAMPLES):
            take()
        return TCL_SAMPLES / (time.perf_counter() - t0)
    finally:
        tcl.close()


def rsp_rate(url: str) -> float:
    gdb = open_target(url)   # attaching halts the hart
    try:
        t0 = time.perf_counter()
        for _ in range(RSP_SAMPLES):
            gdb.resume()
            gdb.halt()
            gdb.read_register("pc")
        return RSP_SAMPLES / (time.perf_counter() - t0)
    finally:
        gdb.close()


def dmi_accesses_per_sample(workdir: Path) -> float:
    machine = Machine(FIRMWARE, uart_echo=lambda b: None)
    server = JtagServer(machine, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with openocd(server.port, workdir) as session:
            tcl = open_target(session.url)
            try:
                take = tcl.sampler(COUNTERS).take
                take()
                before = server.dm.accesses
                for _ in range(20):
                    take()
                return (server.dm.accesses - before) / 20
            finally:
                tcl.close()
    finally:
        server.close()


def pyocd_rate() -> tuple[float, float, float]:
    """(samples/s, probe round trips per sample, DM accesses per sample) through pyocd:// on the twin's DAP face."""
    probe = TwinDapProbe(Machine(FIRMWARE, uart_echo=lambda b: None))
    target = PyocdTarget(probe)
    try:
        take = target.sampler(COUNTERS).take
        take()
        trips, accesses = probe.round_trips, probe.dm.accesses
        t0 = time.perf_counter()
        for _ in range(TCL_SAMPLES):
            take()
        elapsed = time.perf_counter() - t0
        return (TCL_SAMPLES / elapsed, (probe.round_trips - trips) / TCL_SAMPLES,
                (probe.dm.accesses - accesses) / TCL_SAMPLES)
    finally:
        target.close()


def pyocd_arm_rate() -> tuple[float, float]:
    """(samples/s, probe round trips per sample) of `xipscope profile`'s sample in Arm mode: pyOCD's own rp2350
    target on the twin's Arm core (halt, pc, XIP counters, resume through the Target protocol)."""
    from xipscope.chip.memory_map import get_memory_map
    from xipscope.profile.sampler import choose_sampler

    target = open_target(f"pyocd://twin:{ARM_FIRMWARE}")
    try:
        take, _ = choose_sampler(target, get_memory_map("rp2350"), stacks=False)
        take()
        trips = target.probe.round_trips
        t0 = time.perf_counter()
        for _ in range(TCL_SAMPLES):
            take()
        elapsed = time.perf_counter() - t0
        return TCL_SAMPLES / elapsed, (target.probe.round_trips - trips) / TCL_SAMPLES
    finally:
        target.close()


def main() -> int:
    rates: dict[str, list[float]] = {"anchor": [], "tcl": [], "rsp": [], "pyocd": [], "arm": []}
    with TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with twin_jtag(FIRMWARE, "--quiet-uart") as jtag_port, openocd(jtag_port, workdir) as session:
            for i in range(ROUNDS):
                rates["anchor"].append(anchor_rate(session.url, workdir))
                rates["tcl"].append(tcl_rate(session.url))
                rates["rsp"].append(rsp_rate(session.gdb_url))
                print(f"round {i + 1}: OpenOCD profile {rates['anchor'][-1]:.1f} samples/s, openocd:// "
                      f"{rates['tcl'][-1]:.1f}/s, rsp:// to OpenOCD's gdb port {rates['rsp'][-1]:.1f}/s", flush=True)
        dmi = dmi_accesses_per_sample(workdir)
    for _ in range(ROUNDS):
        rate, trips, dm_accesses = pyocd_rate()
        rates["pyocd"].append(rate)
        arm_rate, arm_trips = pyocd_arm_rate()
        rates["arm"].append(arm_rate)
    anchor = statistics.median(rates["anchor"])
    tcl = statistics.median(rates["tcl"])
    rsp = statistics.median(rates["rsp"])
    pyocd = statistics.median(rates["pyocd"])
    arm = statistics.median(rates["arm"])
    print(f"PC sampling through openocd 0.12 on the {MODEL_NOTE}'s JTAG face, {FIRMWARE.name} running "
          f"(medians of {ROUNDS} rounds):")
    print(f"  OpenOCD `profile` (anchor)           {anchor:7.1f} samples/s")
    print(f"  openocd:// sampler (one Tcl script)  {tcl:7.1f} samples/s  = {tcl / anchor:.2f}x the anchor "
          "(1 Tcl round trip per sample, with CTR_HIT/CTR_ACC)")
    print(f"  rsp:// to OpenOCD's gdb port          {rsp:7.1f} samples/s  = {rsp / anchor:.2f}x the anchor "
          "(3 RSP round trips per sample, pc only)")
    print(f"  pyocd:// on the twin's DAP face      {pyocd:7.1f} samples/s  = {pyocd / anchor:.2f}x the anchor "
          f"({trips:.1f} probe round trip per sample, with CTR_HIT/CTR_ACC)")
    print(f"  pyocd://?core=arm, twin's Arm core   {arm:7.1f} samples/s  = {arm / anchor:.2f}x the anchor "
          f"({arm_trips:.1f} probe round trips per sample through pyOCD's rp2350 target, with CTR_HIT/CTR_ACC)")
    print(f"  DM accesses per sample: openocd:// {dmi:.0f} DMI scans (each one JTAG round trip through "
          f"remote_bitbang); pyocd:// {dm_accesses:.0f} APB-AP transfers in {trips:.1f} probe round trip")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
