"""xipscope profile to a workload's end (--until exit|idle|FUNCTION) on the RP2350 twin (a model), and the report's
comparison with the twin's exact truth: the demo's answer, as `make demo` runs it.

Nothing here depends on the host's speed: the in-process twin is paced, and the sampler tells it each interval
(halt_after), so where samples land and how many a workload gets are fixed in simulated cycles; the assertions are on
shares, cycles and sample counts, never on wall-clock rates. Each run covers all of xipbench (4.2 M cycles, about
4 s of simulated time at 1 MHz plus the host's time per sample).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xipscope.chip.memory_map import get_memory_map
from xipscope.elf.symbols import load_symbols
from xipscope.errors import CapabilityError
from xipscope.profile import analysis as an
from xipscope.profile.sampler import sample_intervals, sample_profile, until_condition
from xipscope.profile.store import read_samples
from xipscope.sim.target import SimTarget

REPO = Path(__file__).resolve().parents[2]
XIPBENCH = REPO / "firmware" / "xipbench.elf"
XIPBENCH_CYCLES = 4_235_086       # `xipscope sim firmware/xipbench.elf --json`: cycles to its park
RATE = 500                        # the demo's rate: intervals of 1,000-3,000 cycles at the twin's 1 MHz


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's own command line (Makefile `demo`), into a temporary directory."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    make = (REPO / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", make, re.M).group(1)
    command = recipe.split("-m xipscope profile", 1)[1].replace("\\\n", " ").split()
    assert command[command.index("--out") + 1] == "build/demo"
    command[command.index("--out") + 1] = str(out)
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit"))
    done = subprocess.run([sys.executable, "-m", "xipscope", "profile", *command], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out, done.stdout, done.stderr


def test_the_demo_reaches_xipbenchs_end_and_its_shares_are_the_twins(demo):
    out, stdout, stderr = demo
    meta = json.loads((out / "meta.json").read_text())
    truth = json.loads((out / "truth.json").read_text())
    # the whole of xipbench: it printed its last line and parked, and the run stopped there by itself
    assert "xipbench: done" in truth["after"]["uart"]
    assert meta["until"] == "exit" and meta["ended_early"] is None
    assert meta["stop_reason"].startswith("exit: the core stopped by itself (idle)"), meta["stop_reason"]
    assert truth["after"]["cycles"] - truth["before"]["cycles"] == pytest.approx(XIPBENCH_CYCLES, abs=100)
    # the figure printed is the one the report computed, and it is within 0.03 of the truth
    printed = re.search(r"total variation distance (\d\.\d+) by function, (\d\.\d+) by region", stdout)
    assert printed, stdout
    summary = json.loads((out / "report" / "summary.json").read_text())["truth"]
    print(f"\n{stdout}")
    assert float(printed.group(1)) == round(summary["tv_functions"], 3)
    assert summary["tv_functions"] < 0.03 and summary["tv_regions"] < 0.03
    functions = {r["function"]: r for r in summary["functions"]}
    for name in ("work_psram", "work_flash", "copy_words", "work_sram"):     # xipbench's phases, 93% of its cycles
        assert abs(functions[name]["sampled_share"] - functions[name]["true_share"]) < 0.02, functions[name]
    for name in ("work_psram", "work_flash", "copy_words"):     # hit rates from the counters, beside the exact ones
        assert abs(functions[name]["sampled_hit_rate"] - functions[name]["true_hit_rate"]) < 0.01, functions[name]
    # halted under 20% of the run as the twin saw it; the host's figure beside it
    assert meta["halted_target"]["share"] < 0.20, meta["halted_target"]
    assert re.search(r"halted \d+\.\d% of the run as the target saw it .*; host time: ", stdout), stdout


def test_the_demos_samples_are_fixed_in_simulated_terms(demo):
    """About one sample per 2,000 cycles of xipbench whatever the host's load: the count is the twin's, not the host's."""
    out, _stdout, _stderr = demo
    samples = json.loads((out / "meta.json").read_text())["samples"]
    expected = XIPBENCH_CYCLES / (1e6 / RATE)
    assert abs(samples - expected) < 0.04 * expected, (samples, expected)


def twin_profile(out: Path, **sampling):
    """xipbench from reset on the in-process twin (paced by the sampler), with mcycle at each sample."""
    symbols = load_symbols(XIPBENCH)
    with SimTarget(str(XIPBENCH)) as target:
        run = sample_profile(target, out, memory_map=get_memory_map("rp2350"), symbols=symbols, elf=XIPBENCH,
                             rate_hz=RATE, cycles=True, samples=100_000, **sampling)
    df = read_samples(out)
    df["function"] = symbols.symbolize(df["pc"].to_numpy()).function
    return run.meta, json.loads((out / "truth.json").read_text()), df


def test_until_idle_stops_when_the_pc_stays_in_the_park_loop(tmp_path):
    meta, truth, df = twin_profile(tmp_path / "idle", until="idle")
    assert meta["ended_early"] is None
    assert re.fullmatch(r"idle: the pc stayed within \d bytes of 0x[0-9a-f]+ for 20 samples", meta["stop_reason"])
    assert "xipbench: done" in truth["after"]["uart"]
    assert (df["function"].iloc[-20:] == "_park").all() and df["function"].iloc[-21] != "_park"
    # In simulated terms, whatever the host's load: one sample per scheduled interval of xipbench's cycles (1,000-3,000
    # at 1 MHz and 500/s, regenerated from the seed in meta.json), up to the park.
    intervals = itertools.islice(sample_intervals(int(1e9 / RATE), meta["jitter"]["seed"]), 10 * len(df))
    scheduled = int(np.searchsorted(np.cumsum([round(ns * 1e6 / 1e9) for ns in intervals]), XIPBENCH_CYCLES))
    running = int((df["function"] != "_park").sum())
    # How far each halt landed from its scheduled cycle (mcycle counts from main, where xipbench enables it): within
    # the block holding it (sim/runner.py run_to_cycle), the clock anchored at the scheduled cycle (measured: -148 to
    # +49 cycles; before halts stopped in the block holding their cycle, thousands).
    asked = np.cumsum([round(ns * 1e6 / 1e9) for ns in itertools.islice(
        sample_intervals(int(1e9 / RATE), meta["jitter"]["seed"]), len(df))])
    cycles = df["mcycle"].to_numpy(dtype=np.int64)
    counted = (cycles > 0) & (df["function"].to_numpy() != "_park")
    late = (cycles[counted] - cycles[counted][0]) - (asked[counted] - asked[counted][0])
    late -= int(np.median(late))
    print(f"\n{running} samples before the park, {scheduled} scheduled; landings from their scheduled cycle: "
          f"median 0, 90th percentile {np.percentile(late, 90):.0f}, extremes {late.min()} and {late.max()} cycles")
    assert np.abs(late).max() < 1000, (late.min(), late.max())
    assert abs(running - scheduled) <= 0.03 * scheduled, (running, scheduled)


def test_until_a_function_stops_at_the_first_sample_in_it(tmp_path):
    meta, truth, df = twin_profile(tmp_path / "symbol", until="work_sram")
    assert meta["ended_early"] is None and meta["stop_reason"].startswith("reached work_sram (pc 0x2")
    assert df["function"].iloc[-1] == "work_sram" and (df["function"].iloc[:-1] != "work_sram").all()
    uart = truth["after"]["uart"]
    # xipbench's SRAM phase had begun (both flash phases printed), and not yet finished its first pass
    assert "phase flash-thrash" in uart and "phase sram-fit" not in uart, uart


def test_until_with_a_cap_says_the_cap_came_first(tmp_path):
    symbols = load_symbols(XIPBENCH)
    with SimTarget(str(XIPBENCH)) as target:
        run = sample_profile(target, tmp_path / "capped", memory_map=get_memory_map("rp2350"), symbols=symbols,
                             elf=XIPBENCH, rate_hz=RATE, samples=50, until="exit")
    assert run.meta["samples"] == 50
    assert run.meta["ended_early"] == run.meta["stop_reason"] == "the sample count ran out before --until exit"


def test_until_exit_needs_a_target_that_says_why_it_stopped(tmp_path):
    """A memory image can't say its core stopped by itself (it has none), and --until exit says so up front."""
    from xipscope.targets.memory_image import MemoryImageTarget

    image = tmp_path / "sram.bin"
    image.write_bytes(bytes(64))
    with pytest.raises(CapabilityError, match=r"--until exit .* needs saying why the core stopped by itself"):
        until_condition(MemoryImageTarget(image, 0x20000000), "exit")


def test_total_variation():
    assert an.total_variation({"a": 0.5, "b": 0.5}, {"a": 1.0}) == 0.5
    assert an.total_variation({"a": 0.2, "b": 0.8}, {"b": 0.8, "a": 0.2}) == 0.0
    assert an.total_variation({"a": 1.0}, {"b": 1.0}) == 1.0
