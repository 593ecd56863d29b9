"""xipscope profile against the RP2350 twin (a model), whose ground truth is known: the sampled distribution of time
over functions, the XIP hit rate of each xipbench phase from the sampled counters, and SRAM phases that make no XIP
accesses of their own.

The twin is served by its GDB server in a separate process (as a board behind a probe would be) and paced to a nominal
clock (sim/pacing.py), so a halt lands at the simulated cycle of the moment it was asked for. Samples are taken as fast
as rsp:// allows, with mcycle read at each one: weighting each sample by the cycles since the previous one makes the
estimate independent of how evenly the sampler managed to space its samples on a loaded host.

Nothing here assumes an idle host: amounts are sample counts or "until the firmware is done" (the paced clock stops
while the core is halted, and a loaded host halts longer per sample, so a duration covers less of the run), and the
checks are on samples weighted by simulated cycles, not on wall-clock rates.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xipscope.chip.memory_map import get_memory_map
from xipscope.elf.symbols import load_symbols
from xipscope.profile.sampler import sample_profile
from xipscope.profile.store import read_samples
from xipscope.targets.rsp import RspTarget

REPO = Path(__file__).resolve().parents[2]
XIPBENCH = REPO / "firmware" / "xipbench.elf"
PHASE = re.compile(r"phase (\S+) cycles=(\d+) instret=(\d+) xip_acc=(\d+) xip_hit=(\d+)")
SAMPLES = 20_000


def monitor(target: RspTarget, command: str) -> str:
    reply = target._request(b"qRcmd," + command.encode().hex().encode(), f"the reply to monitor {command}")
    return bytes.fromhex(reply.decode()).decode()


def stop_when_done(uart_log: Path, stop: threading.Event, finished: threading.Event) -> None:
    """Set `stop` once xipbench has printed its last line to the twin's UART log (or the run has finished)."""
    while not finished.is_set():
        if uart_log.exists() and b"xipbench: done" in uart_log.read_bytes():
            stop.set()
            return
        finished.wait(0.05)


def profile_twin(out: Path, clock_hz: float, until_done: bool = False, **sampling):
    """Profile xipbench from reset on the twin's GDB server; then its ground truth for exactly the run sampled.
    until_done: sample until the firmware has printed its last line (`samples` then only caps the run)."""
    uart_log = out.parent / f"{out.name}-uart.log"
    server = subprocess.Popen([sys.executable, "-m", "xipscope", "sim", str(XIPBENCH), "--gdb-port", "0",
                               "--clock-hz", str(clock_hz), "--uart-log", str(uart_log)], stdout=subprocess.PIPE,
                              text=True, env={"PYTHONPATH": str(REPO / "toolkit"), "PATH": "/usr/bin:/bin"})
    stop, finished = threading.Event(), threading.Event()
    watcher = threading.Thread(target=stop_when_done, args=(uart_log, stop, finished), daemon=True)
    try:
        port = int(re.search(r"127\.0\.0\.1:(\d+)", server.stdout.readline()).group(1))
        target = RspTarget("127.0.0.1", port)
        try:
            symbols = load_symbols(XIPBENCH)
            if until_done:
                watcher.start()
            run = sample_profile(target, out, memory_map=get_memory_map("rp2350"), cycles=True, symbols=symbols,
                                 elf=XIPBENCH, stop=stop if until_done else None, **sampling)
            target.halt()   # the truth includes the few hundred cycles run after the last sample: negligible
            truth = json.loads(monitor(target, "stats-json"))
            clock = monitor(target, "clock")
        finally:
            target.close()
    finally:
        finished.set()
        server.kill()
        server.wait()
        server.stdout.close()
    df = read_samples(out)
    df["function"] = symbols.symbolize(df["pc"].to_numpy()).function
    df["weight"] = (df["mcycle"].diff() % 2**32).fillna(0)
    return df, truth, run.meta, clock


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """20k samples at 1,000/s, the twin paced to 300 kHz (a few hundred simulated cycles between samples), from reset;
    the truth is the twin's for the same stretch. A fixed rate keeps each running interval long against the server's
    own jitter (tens of us); as fast as rsp:// goes, the twin would run only a few cycles between samples."""
    return profile_twin(tmp_path_factory.mktemp("twin") / "profile", 300e3, samples=SAMPLES, rate_hz=1000)


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """All of xipbench at 500 samples/s, the twin paced to 1 MHz (up to 2,000 cycles between samples): every phase,
    for the counters. Hit rates do not depend on where samples land, only on reading the counters inside a phase.
    Until the firmware is done, not a duration or a fixed count: the paced clock stops while the core is halted, so
    a loaded host that halts longer per sample runs fewer cycles between samples (down to a few hundred when the
    halt takes longer than the 2 ms period) and needs more samples to cover xipbench's 4.2 M cycles. The cap only
    bounds a run that never finishes."""
    return profile_twin(tmp_path_factory.mktemp("twin") / "whole", 1e6, until_done=True, samples=200_000,
                        rate_hz=500)


def test_sampled_time_by_function_matches_the_twins_cycles(profiled):
    df, truth, meta, clock = profiled
    assert len(df) == SAMPLES and meta["transport"].startswith("rsp pipelined")
    # A host too loaded to simulate 300 kHz makes the clock slip (counted); the mcycle weights count the cycles
    # actually run whatever the slips, so the estimate below holds either way. What holds on any host: the clock
    # accounts for its slips.
    slips = int(re.search(r"'slips': (\d+)", clock).group(1))
    slipped = int(re.search(r"'slipped_cycles': (\d+)", clock).group(1))
    assert (slips == 0) == (slipped == 0), clock
    print(f"\nclock: {clock.strip()}")
    cycles = pd.Series({f["name"]: f["cycles"] for f in truth["functions"] if f["name"] != "_park"})
    true_share = cycles / cycles.sum()
    running = df[df["function"] != "_park"]        # parked in wfi: the twin simulates nothing, the truth has no cycles
    sampled_share = running.groupby("function")["weight"].sum() / running["weight"].sum()
    both = pd.concat([sampled_share.rename("sampled"), true_share.rename("truth")], axis=1).fillna(0)
    tv = 0.5 * (both["sampled"] - both["truth"]).abs().sum()
    unweighted = running["function"].value_counts(normalize=True)
    tv_unweighted = 0.5 * (unweighted.reindex(both.index).fillna(0) - both["truth"]).abs().sum()
    print(f"\ntotal variation distance {tv:.4f} weighted by mcycle, {tv_unweighted:.4f} unweighted, over "
          f"{len(running)} samples of running code\n{both}")
    assert tv < 0.05, both
    assert set(true_share[true_share > 0.05].index) <= set(sampled_share[sampled_share > 0.03].index)


def _phases(df: pd.DataFrame) -> list[pd.DataFrame]:
    """Samples split where the counters were cleared (xipbench clears them as each phase starts), keeping the
    stretches that ran a work_* function.

    Within a phase both counters only grow, and every hit is an access: a reading with fewer accesses or hits than
    the one before, or with more new hits than new accesses, comes after a clear. That finds a clear even when no
    sample landed between one phase's work and the next's (a loaded host halts late now and then, so an interval
    can span the few thousand cycles of phase() in between): sram-fit reads 3 accesses, 2 hits in work_sram and
    sram-thrash 3 and 3. A sample in another work_* function than the one before starts a stretch too."""
    d_acc, d_hit = df["xip_acc"].diff(), df["xip_hit"].diff()
    work = df["function"].where(df["function"].str.startswith("work_", na=False)).ffill()
    reset = ((d_acc < 0) | (d_hit < 0) | (d_hit > d_acc) | (work.notna() & (work != work.shift()))).cumsum()
    stretches = [g for _, g in df.groupby(reset)]
    return [g for g in stretches if g["function"].str.startswith("work_", na=False).any()]


def _work_intervals(phase: pd.DataFrame) -> pd.DataFrame:
    """Counter deltas of the intervals that began and ended inside the phase's work function, and the function."""
    work = phase["function"].where(phase["function"].str.startswith("work_", na=False)).dropna().mode()[0]
    d = pd.DataFrame({"hit": phase["xip_hit"].diff(), "acc": phase["xip_acc"].diff(),
                      "inside": (phase["function"] == work) & (phase["function"].shift() == work)
                      & (phase["weight"] > 0)})     # the core ran in between (mcycle moved)
    return d[d["inside"]], work


def test_per_phase_hit_rates_match_the_twins_exact_counters(whole_run):
    df, truth, _meta, _clock = whole_run
    printed = PHASE.findall(truth["uart"])
    phases = _phases(df)
    assert len(printed) == len(phases) == 6, (printed, len(phases))
    for (name, _c, _i, acc, hit), phase in zip(printed, phases):
        intervals, work = _work_intervals(phase)
        assert work == "work_" + name.split("-")[0]
        assert len(intervals) > 20, name
        # xipbench clears the counters as a phase starts, so the raw reading at the phase's last sample inside its
        # work function is the phase's own count up to there (all but the last interval of the phase).
        last = phase[phase["function"] == work].iloc[-1]
        sampled = last["xip_hit"] / last["xip_acc"]
        exact = int(hit) / int(acc)
        print(f"{name:13} sampled hit rate {sampled:.5f} exact {exact:.5f} ({last['xip_acc']} of {acc} accesses)")
        if name.startswith("sram"):
            continue    # the next test: the few accesses there are phase()'s own, around the call
        assert abs(sampled - exact) < 0.002, (name, sampled, exact)
        # The accesses after that reading are those of the one interval that crossed the phase's end: at most two
        # per cycle (a fetch word and a data access per instruction, each at least a cycle). On an idle host that
        # interval is about 2,000 cycles; a loaded one can halt later, and its weight says by how much.
        crossing = df.loc[df.index[df.index.get_loc(last.name) + 1], "weight"]
        assert 0 <= int(acc) - last["xip_acc"] <= 2 * crossing, (name, last["xip_acc"], acc, crossing)


def test_sram_phases_make_no_xip_accesses_of_their_own(whole_run):
    df, _truth, _meta, _clock = whole_run
    sram = [p for p in _phases(df) if _work_intervals(p)[1] == "work_sram"]
    assert len(sram) == 2
    for phase in sram:
        intervals, _ = _work_intervals(phase)
        assert len(intervals) > 20
        assert (intervals["acc"] == 0).all() and (intervals["hit"] == 0).all()
    # ...while the flash phases' work intervals all saw XIP accesses
    flash = [p for p in _phases(df) if _work_intervals(p)[1] == "work_flash"]
    assert all((_work_intervals(p)[0]["acc"] > 0).all() for p in flash)


def _cli(*args: str, **popen):
    import os
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit"))
    return subprocess.Popen([sys.executable, "-m", "xipscope", "profile", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def test_cli_on_the_in_process_twin_paces_it_and_reports(tmp_path):
    cli = _cli("--target", f"sim://{XIPBENCH}", "--elf", str(XIPBENCH), "--samples", "400", "--rate", "400",
               "--cycles", "--out", str(tmp_path / "p"))
    out, err = cli.communicate(timeout=300)
    assert cli.returncode == 0, err
    assert "400 samples" in err and "sim: halt, read pc, mcycle, counters, resume" in err
    assert (tmp_path / "p" / "report" / "report.html").is_file(), out     # xipscope report ran at the end
    # ... and printed its summary: 400 samples at 1 MHz cover xipbench's first phases, in work_flash from flash
    assert re.search(r"\d%  work_flash +flash \(cached\)", out), out
    assert "XIP hit rate" in out and out.rstrip().endswith("report.html"), out
    meta = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert meta["sim_clock"]["clock_hz"] == 1e6 and meta["map"] == "rp2350"   # profile paced the twin itself
    df = read_samples(tmp_path / "p")
    assert len(df) == 400 and df["xip_acc"].notna().all() and df["mcycle"].notna().all()


def test_ctrl_c_stops_cleanly_and_keeps_the_samples(tmp_path):
    import signal
    import time

    out_dir = tmp_path / "p"
    cli = _cli("--target", f"sim://{XIPBENCH}", "--elf", str(XIPBENCH), "--duration", "120", "--out", str(out_dir))
    deadline = time.monotonic() + 60
    while not list((out_dir / "samples").glob("part-*.parquet")) and time.monotonic() < deadline:
        assert cli.poll() is None, cli.stderr.read()
        time.sleep(0.05)
    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    assert "Traceback" not in err and "ended early: stopped by the user" in err
    meta = json.loads((out_dir / "meta.json").read_text())
    assert meta["ended_early"] == "stopped by the user" and meta["error"] is None
    assert len(read_samples(out_dir)) == meta["samples"] > 0
