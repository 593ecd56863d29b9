"""`xipscope profile` of the pico2 kernel's boot on the RP2350 twin (a model), through its GDB server as a board
behind a probe, against the twin's exact counts (issue 15): from reset until a sample lands in __delay (panic()'s
mdelay loop: nothing before the panic runs it), about 20.6k samples scheduled in the twin's own time (`monitor
halt-after`) 5,000 cycles apart on average over the boot's 103 M cycles.

- Shares of the 20 hottest functions (the rest one bucket) within a total variation distance of 0.03 of the twin's
  exact per-function cycles. The noise a perfect sampler shows at that n, multinomial draws from the truth (numpy
  seed 0): mean 0.0097, 95th percentile 0.013 (printed by the test, computed from the run's truth).
- The XIP hit rate the counters give at the last sample within 0.002 of the twin's own accesses and hits.

- The cost of the emulated atomics: N from the kernel's counter (amo_emulated_count, read through the target by
  symbol, as on a board) equals the twin's count of mcause-7 traps returned past their AMO, over the same run; the
  twin's share of cycles from their trap entries to those returns is printed (3.85% of the boot).

The schedule is in the twin's cycles, so where samples land does not depend on the host: --clock-hz 4e6 and a
nominal rate of 800/s give the same 5,000-cycle mean interval as 2 MHz at 400/s, and the twin runs about as fast as
the host simulates it (a 2 MHz clock would hold the boot to 51 s of simulated time plus the halts). Not faster: the
halts that are not scheduled (the transport's probe before sampling, which leaves the twin running, and the first
sample after it) run the twin on to the cycle of the moment they were asked for, and at 1e7 Hz a loaded host took
longer than the 5 s reply timeout to simulate a fraction of a second's worth (measured with `xipscope profile`).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from qemu import built_kernel
from support.servers import xipscope_server
from xipscope.chip.memory_map import get_memory_map
from xipscope.elf.symbols import load_symbols
from xipscope.profile.sampler import sample_profile
from xipscope.profile.store import read_samples
from xipscope.targets.rsp import RspTarget

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(1800, method="thread")]
SAMPLES = 25_000     # a cap: the boot reaches __delay after about 20.6k
CLOCK_HZ, RATE = 4e6, 800     # 5,000 simulated cycles between samples on average (uniform 0.5-1.5x)
TOP = 20


def monitor(target: RspTarget, command: str) -> str:
    reply = target._request(b"qRcmd," + command.encode().hex().encode(), f"the reply to monitor {command}")
    return bytes.fromhex(reply.decode()).decode()


@pytest.fixture(scope="module")
def boot_profile(tmp_path_factory):
    build = built_kernel("pico2")
    out = tmp_path_factory.mktemp("pico2") / "profile"
    symbols = load_symbols(build.vmlinux)
    with xipscope_server("sim", build.vmlinux, "--kernel", build.image, "--dtb", build.dtb, "--gdb-port", "0",
                         "--clock-hz", str(CLOCK_HZ), "--quiet-uart") as port:
        target = RspTarget("127.0.0.1", port)
        try:
            run = sample_profile(target, out, memory_map=get_memory_map("rp2350"), symbols=symbols, elf=build.vmlinux,
                                 rate_hz=RATE, cycles=True, samples=SAMPLES, until="__delay", seed=1)
            target.halt()
            truth = json.loads(monitor(target, f"stats-json {TOP}"))
        finally:
            target.close()
    df = read_samples(out)
    df["function"] = symbols.symbolize(df["pc"].to_numpy()).function
    return run.meta, truth, df, out


def test_the_boots_time_by_function_matches_the_twins_cycles(boot_profile):
    meta, truth, df, _out = boot_profile
    assert meta["stop_reason"].startswith("reached __delay"), meta["stop_reason"]
    assert 19_000 < len(df) < 22_000
    top = pd.Series({f["name"]: f["cycles"] for f in truth["functions"]})
    true_share = pd.concat([top, pd.Series({"(rest)": truth["cycles"] - top.sum()})]) / truth["cycles"]
    sampled = df["function"].where(df["function"].isin(top.index), "(rest)")
    sampled_share = sampled.value_counts(normalize=True).reindex(true_share.index, fill_value=0)
    tv = 0.5 * (sampled_share - true_share).abs().sum()
    draws = np.random.default_rng(0).multinomial(len(df), true_share.to_numpy(), size=2000) / len(df)
    noise = 0.5 * np.abs(draws - true_share.to_numpy()).sum(axis=1)
    print(f"\n{pd.DataFrame({'sampled': sampled_share, 'truth': true_share}).round(4)}\nTV {tv:.4f} over {len(df)} "
          f"samples; a perfect sampler: mean {noise.mean():.4f}, 95th percentile {np.percentile(noise, 95):.4f}")
    assert tv <= 0.03


def test_the_boots_xip_hit_rate_matches_the_twins_counts(boot_profile):
    """Over the same interval: the counters at the last sample against the twin's counts the profile read right
    after it (truth.json's `after`, at the counter's held moment), not at a halt later, which the panic's delay loop
    (all hits) moved by 0.003 on a loaded host."""
    _meta, _truth, df, out = boot_profile
    last = df.iloc[-1]
    sampled = last["xip_hit"] / last["xip_acc"]
    devices = json.loads((out / "truth.json").read_text())["after"]["devices"].values()
    exact = sum(d["hits"] for d in devices) / sum(d["accesses"] for d in devices)
    print(f"\nXIP hit rate sampled {sampled:.5f} ({last['xip_acc']:,} accesses), exact {exact:.5f}")
    assert abs(sampled - exact) <= 0.002


def test_the_boots_emulated_atomics_match_the_twins_count(boot_profile):
    meta, _truth, _df, out = boot_profile
    counted = meta["emulated_atomics"]
    assert counted["counter"] == "amo_emulated_count" and counted["before"] == 0    # the profile began at reset
    # The twin's count over the run, from the truth the profile read at the same held moments as the counter (the
    # server's truth a halt later may hold one or two more: the panic's delay loop still prints).
    truth = json.loads((out / "truth.json").read_text())
    after, before = truth["after"]["emulated_atomics"], truth["before"]["emulated_atomics"]
    assert after["traps"] - before["traps"] == counted["count"] > 10_000
    print(f"\nemulated atomics: N = {counted['count']:,} (counter and twin), "
          f"X = {100 * after['share']:.2f}% of {truth['after']['cycles']:,} cycles")
    assert 0.02 < after["share"] < 0.06


def test_through_the_gdb_server_the_report_gives_the_emulated_atomics_share(boot_profile):
    """The GDB server gives the twin's truth (qXfer:xipscope-truth): the profile holds truth.json as in-process, and
    the report gives X beside N, the twin's count over the run equal to the kernel's counter."""
    from xipscope.profile.report import write_report

    meta, _truth, _df, out = boot_profile
    assert meta["model"] is True and meta["truth"] == "truth.json"
    atomics = json.loads((write_report(out).parent / "summary.json").read_text())["emulated_atomics"]
    assert atomics["counter"] == "amo_emulated_count" and atomics["count"] == atomics["model"]["traps"] > 10_000
    assert 0.02 < atomics["model"]["share"] < 0.06
    print(f"\nthrough the GDB server: N = {atomics['count']:,}, X = {100 * atomics['model']['share']:.2f}%")


def test_in_process_the_report_gives_the_emulated_atomics_share_from_the_twins_truth(tmp_path):
    """sim://vmlinux?kernel=...&dtb=...: the profile holds the twin's truth, so the report gives X beside N."""
    from xipscope.profile.report import write_report
    from xipscope.sim.target import SimTarget

    build = built_kernel("pico2")
    out = tmp_path / "p"
    target = SimTarget(f"{build.vmlinux}?kernel={build.image}&dtb={build.dtb}", clock_hz=5e7)
    try:   # 50,000 cycles apart: the first 20 M cycles of the boot
        sample_profile(target, out, memory_map=get_memory_map("rp2350"), symbols=load_symbols(build.vmlinux),
                       elf=build.vmlinux, rate_hz=1000, samples=400, seed=1)
    finally:
        target.close()
    summary = json.loads((write_report(out).parent / "summary.json").read_text())
    atomics = summary["emulated_atomics"]
    truth = json.loads((out / "truth.json").read_text())
    exact = truth["after"]["emulated_atomics"]["traps"] - truth["before"]["emulated_atomics"]["traps"]
    assert atomics["counter"] == "amo_emulated_count" and atomics["count"] == atomics["model"]["traps"] == exact > 100
    assert 0.005 < atomics["model"]["share"] < 0.2
    print(f"\n{exact} AMOs emulated, X = {100 * atomics['model']['share']:.2f}% of the first "
          f"{truth['after']['cycles']:,} cycles")
