"""Samples per second as a user's probe would deliver them: each transport's sample counted at the probe's face and
priced by the probe model (toolkit/xipscope/probe_model.py, a model: nothing here is timed except OpenOCD `profile`'s
own wall-clock rate, printed beside for reference).

Faces: pyocd:// through the counting wrapper on the twin's DAP face (RISC-V: the batched Debug Module sample; Arm:
the batched AHB-AP sample, halting, and with the twin's DWT_PCSR option on, without halting); openocd:// (its Tcl sampler), rsp:// to OpenOCD's gdb port, and
OpenOCD's own `profile` through Debian's openocd on the twin's JTAG face, counted there (TCK cycles; every TDO read
OpenOCD waits for is a round trip). OpenOCD `profile` is priced with its 10 ms sleep per sample, from the marginal
counts between a short and a long run (its set-up left out). Medians of ROUNDS runs. The pyocd:// rows' halted time
is the twin's own clock (sim/dap.py: the model's time from each halt to its resume); the JTAG rows' the model's bound.

Then the answers under the model: xipbench to its end through pyocd://twin: with jitter, the twin paced and told each
interval, its shares against the twin's truth (total variation distance; issue 16's goal: under 0.03).
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "toolkit"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from bench_openocd import gmon_samples  # noqa: E402
from support.openocd_twin import openocd  # noqa: E402

from xipscope.chip import rp2350 as rp  # noqa: E402
from xipscope.chip.memory_map import get_memory_map  # noqa: E402
from xipscope.probe_model import ProbeCounts, ProbeModel  # noqa: E402
from xipscope.profile.sampler import choose_sampler  # noqa: E402
from xipscope.sim.arm_core import ArmCore  # noqa: E402
from xipscope.sim.dap import TwinDapProbe  # noqa: E402
from xipscope.sim.jtag import JtagServer  # noqa: E402
from xipscope.sim import MODEL_NOTE  # noqa: E402
from xipscope.sim.hazard3 import Machine  # noqa: E402
from xipscope.targets import open_target  # noqa: E402
from xipscope.targets.base import SampleRequest  # noqa: E402
from xipscope.targets.counting_probe import CountingProbe  # noqa: E402
from xipscope.targets.pyocd import PyocdArmTarget  # noqa: E402

XIPBENCH = REPO / "firmware" / "xipbench.elf"
ARMXIP = REPO / "firmware" / "armxip.elf"
ROUNDS = 3
SAMPLES = 30
OPENOCD_PROFILE_SLEEP_S = 0.010     # src/target/target.c, handle_profile_command: alive_sleep(10) per sample on RISC-V
PROFILE_SECONDS = (1, 3)
COUNTERS = SampleRequest(reads=((rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT, 8),), read_names=("counters",))


def per_sample(counts: ProbeCounts, samples: int) -> dict:
    return {"round_trips": counts.round_trips / samples, "packets": counts.packets / samples,
            "wire_bits": counts.wire_bits / samples}


def pyocd_counts(firmware: Path, model: ProbeModel, pcsr: bool = False) -> dict:
    """Per-sample counts of `xipscope profile`'s sample (pc and the XIP counters) through pyocd:// on the twin, and
    the twin's halted time for them (its clock, priced by `model`); pcsr: the Arm twin with its DWT_PCSR option on
    (a model option: RP2350's M33 may not have it)."""
    with (arm_twin_with_pcsr(firmware) if pcsr else open_target(f"pyocd://twin:{firmware}")) as target:
        target.use_probe_model(model)
        take, _ = choose_sampler(target, get_memory_map("rp2350"), stacks=False)
        take()
        before, held = target.probe_counts(), target.halted_cycles()
        for _ in range(SAMPLES):
            take()
        counts = per_sample(target.probe_counts() - before, SAMPLES)
        return counts | {"halted_us": (target.halted_cycles() - held) / SAMPLES / model.clk_sys_hz * 1e6}


def shares_under_the_model(workdir: Path) -> dict:
    """xipbench to its end through pyocd://twin: (counting probe, the model, jitter), the twin paced: the report's
    total variation distances from the twin's truth."""
    from xipscope.profile.analysis import load_profile, versus_truth
    from xipscope.profile.sampler import sample_profile
    out = workdir / "shares"
    with open_target(f"pyocd://twin:{XIPBENCH}") as target:
        target.halt()                        # halted: the profiler paces the twin before it resumes it
        run = sample_profile(target, out, memory_map=get_memory_map("rp2350"), elf=XIPBENCH, rate_hz=1000,
                             until="idle", samples=100_000, probe_model=ProbeModel())
    profile = load_profile(out, XIPBENCH)
    versus = versus_truth(profile.samples, json.loads((out / "truth.json").read_text()), profile.memory_map)
    return {"tv_functions": versus["tv_functions"], "tv_regions": versus["tv_regions"],
            "samples": run.meta["samples"], "seed": run.meta["jitter"]["seed"]}


def arm_twin_with_pcsr(firmware: Path) -> PyocdArmTarget:
    return PyocdArmTarget(CountingProbe(TwinDapProbe(ArmCore(firmware, pcsr=True))))


def jtag_counts(workdir: Path) -> tuple[dict, dict, dict, float]:
    """Per-sample counts at the twin's JTAG face for openocd://'s sampler, rsp:// to OpenOCD's gdb port and OpenOCD's
    own `profile` (marginal, per gmon.out sample), and `profile`'s measured wall-clock rate."""
    server = JtagServer(Machine(XIPBENCH, uart_echo=lambda b: None), 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with openocd(server.port, workdir) as session:
            with open_target(session.url) as tcl:
                take = tcl.sampler(COUNTERS).take
                take()
                before = server.counts.copy()
                for _ in range(SAMPLES):
                    take()
                tcl_sample = per_sample(server.counts - before, SAMPLES)

                runs = []
                for seconds in PROFILE_SECONDS:
                    before = server.counts.copy()
                    out = workdir / f"gmon-{seconds}.out"
                    t0 = time.perf_counter()
                    tcl.command(f"profile {seconds} {out}")
                    elapsed = time.perf_counter() - t0
                    runs.append((server.counts - before, gmon_samples(out), elapsed))
            (short, short_n, _), (long, long_n, long_s) = runs
            profile_sample = per_sample(long - short, max(long_n - short_n, 1))
            profile_wall = long_n / long_s

            gdb = open_target(session.gdb_url)      # attaching halts the hart
            try:
                gdb.resume()
                gdb.halt()
                gdb.read_register("pc")
                before = server.counts.copy()
                for _ in range(SAMPLES):
                    gdb.resume()
                    gdb.halt()
                    gdb.read_register("pc")
                rsp_sample = per_sample(server.counts - before, SAMPLES)
            finally:
                gdb.close()
    finally:
        server.close()
        thread.join(timeout=10)
    return tcl_sample, rsp_sample, profile_sample, profile_wall


def median_counts(rounds: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main() -> int:
    model = ProbeModel()
    measured: dict[str, list[dict]] = {"riscv": [], "arm": [], "arm-pcsr": [], "tcl": [], "rsp": [], "profile": []}
    walls = []
    with TemporaryDirectory() as tmp:
        for i in range(ROUNDS):
            measured["riscv"].append(pyocd_counts(XIPBENCH, model))
            measured["arm"].append(pyocd_counts(ARMXIP, model))
            measured["arm-pcsr"].append(pyocd_counts(ARMXIP, model, pcsr=True))
            tcl, rsp, profile, wall = jtag_counts(Path(tmp))
            measured["tcl"].append(tcl)
            measured["rsp"].append(rsp)
            measured["profile"].append(profile)
            walls.append(wall)
            print(f"round {i + 1}: counted", flush=True)
        shares = shares_under_the_model(Path(tmp))
    rows = [
        ("pyocd:// RISC-V, pc + XIP counters (twin DAP face)", "riscv", 0.0, True),
        ("pyocd://?core=arm, pc + XIP counters (twin Arm core), halting", "arm", 0.0, True),
        ("pyocd://?core=arm, DWT_PCSR + XIP counters (twin option), no halt", "arm-pcsr", 0.0, True),
        ("openocd:// Tcl sampler, pc + XIP counters (JTAG face)", "tcl", 0.0, False),
        ("rsp:// to OpenOCD's gdb port, pc only (JTAG face)", "rsp", 0.0, False),
        ("OpenOCD `profile`, pc only, + its 10 ms sleep (JTAG face)", "profile", OPENOCD_PROFILE_SLEEP_S, False),
    ]
    counts = {key: median_counts(measured[key]) for _, key, _, _ in rows}

    def rate(key, sleep):
        c = counts[key]
        return 1 / model.sample_s(c["round_trips"], c["wire_bits"], sleep)

    anchor = rate("profile", OPENOCD_PROFILE_SLEEP_S)
    print(f"\nProbe model (a model, nothing timed): {model.latency_s * 1e6:.0f} us a round trip, "
          f"{model.wire_hz / 1e6:g} MHz wire (SWD for pyocd://, JTAG TCK for the OpenOCD rows); "
          f"{model.source}. Counts are medians of {ROUNDS} rounds of {SAMPLES} samples on the {MODEL_NOTE}.")
    header = ("transport", "round trips", "packets", "wire bits", "model samples/s", "model halted us",
              "x OpenOCD profile", "x 1-RT ceiling")
    table = []
    for name, key, sleep, usb in rows:
        c = counts[key]
        r = rate(key, sleep)
        # the twin's clock where it keeps one (pyocd://; DWT_PCSR samples a running core: 0), else the model's bound
        halted = c["halted_us"] if "halted_us" in c else model.halted_s(c["round_trips"], c["wire_bits"]) * 1e6
        table.append((name, f"{c['round_trips']:.1f}", f"{c['packets']:.1f}" if usb else "-",
                      f"{c['wire_bits']:,.0f}", f"{r:,.1f}", f"{halted:,.0f}", f"{r / anchor:.1f}x",
                      f"{r / model.ceiling_hz(c['wire_bits']):.2f}x"))
    widths = [max(len(str(row[i])) for row in table + [header]) for i in range(len(header))]
    for row in [header] + table:
        print("  " + "  ".join(str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))))
    print(f"  OpenOCD `profile` measured on the twin (wall clock, host time): {statistics.median(walls):.1f} "
          f"samples/s (median of {ROUNDS})")
    print(f"  shares under the model with jitter (xipbench to its end through pyocd://twin:, paced, seed "
          f"{shares['seed']}, {shares['samples']:,} samples): total variation distance from the twin's truth "
          f"{shares['tv_functions']:.4f} by function, {shares['tv_regions']:.4f} by region; goal < 0.03: "
          f"{'met' if max(shares['tv_functions'], shares['tv_regions']) < 0.03 else 'not met'}")
    for name, key, _, _ in rows[:3]:
        c = counts[key]
        r = rate(key, 0.0)
        ceiling = r / model.ceiling_hz(c["wire_bits"])
        met = c["round_trips"] <= 1 and ceiling >= 0.9 and r / anchor >= 10
        print(f"  goal for {name}: 1 round trip, >= 0.9x the ceiling, >= 10x OpenOCD profile: "
              f"{'met' if met else 'not met'} ({c['round_trips']:.1f} round trips, {ceiling:.2f}x, "
              f"{r / anchor:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
