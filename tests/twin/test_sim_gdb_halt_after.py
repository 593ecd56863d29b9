"""Halts scheduled in the twin's own time over its GDB server (`monitor halt-after`, sim/gdbserver.py): rsp:// to the
twin (a model) is then a paced target, and a profile's samples land at cycles fixed by the sampler's schedule, not
by when a loaded host gets round to sending the ^C.

Nothing here depends on the host's speed: every assertion is on the twin's cycle counts, which the schedule fixes;
the sleeps only give the twin running time, and a halt that comes late (a loaded host) still lands on its cycle.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np

from support.servers import twin_gdb_server
from xipscope.chip.memory_map import get_memory_map
from xipscope.profile.sampler import sample_intervals, sample_profile
from xipscope.profile.store import read_samples
from xipscope.targets.base import PACING
from xipscope.targets.rsp import RspTarget

XIPBENCH = Path(__file__).resolve().parents[2] / "firmware" / "xipbench.elf"
BLOCK = 300      # cycles: a halt lands at the start of the translated block holding its cycle (test_sim_pacing)


def twin_cycles(target: RspTarget) -> int:
    return target.pacing()["cycles"]


def test_a_scheduled_halt_lands_on_its_cycle_however_late_it_is_asked_for():
    with twin_gdb_server(XIPBENCH, "--clock-hz", "1e6") as port:
        target = RspTarget("127.0.0.1", port)
        try:
            assert PACING in target.capabilities and target.pacing()["clock_hz"] == 1e6
            for seconds, wait in ((0.002, 0.0), (0.002, 0.2), (0.005, 0.05)):
                before = twin_cycles(target)
                target.halt_after(seconds)
                target.resume()
                time.sleep(wait)          # 0: asked for before the twin ran its interval; 0.2 s: long after it
                target.halt()
                ran = twin_cycles(target) - before
                assert seconds * 1e6 - BLOCK < ran <= seconds * 1e6 + BLOCK, (seconds, wait, ran)
        finally:
            target.close()


def test_an_unpaced_twin_refuses_halt_after_and_is_paced_on_request():
    with twin_gdb_server(XIPBENCH) as port:
        target = RspTarget("127.0.0.1", port)
        try:
            assert target.pacing() is None
            try:
                target.halt_after(0.001)
            except Exception as e:
                assert "needs a paced twin" in str(e)
            else:
                raise AssertionError("halt-after on an unpaced twin was accepted")
            target.pace(2e5)
            assert target.pacing()["clock_hz"] == 2e5
        finally:
            target.close()


def test_a_profile_over_rsp_samples_on_the_twins_schedule(tmp_path):
    """xipbench enables mcycle at main: from there each sample's mcycle is the previous one's plus its scheduled
    interval (regenerated from the seed meta.json records), give or take the block a halt ends in."""
    rate, clock_hz = 500, 1e6
    with twin_gdb_server(XIPBENCH, "--clock-hz", str(clock_hz)) as port:
        target = RspTarget("127.0.0.1", port)
        try:
            run = sample_profile(target, tmp_path / "p", memory_map=get_memory_map("rp2350"), samples=600,
                                 rate_hz=rate, cycles=True, seed=11)
        finally:
            target.close()
    meta = run.meta
    assert meta["schedule"].startswith("each interval from the previous resume") and meta["sim_clock"]["clock_hz"] == 1e6
    df = read_samples(tmp_path / "p")
    scheduled = np.array([round(ns * clock_hz / 1e9) for ns in
                          itertools.islice(sample_intervals(int(1e9 / rate), 11), len(df))], dtype=np.int64)
    mcycle = df["mcycle"].to_numpy(dtype=np.int64)
    counting = np.flatnonzero(mcycle > 0)[1:]          # both samples of the interval after main enabled mcycle
    ran = (mcycle[counting] - mcycle[counting - 1]) % 2**32
    assert len(counting) > 500
    off = np.abs(ran - scheduled[counting])
    # Each end is within the block holding its cycle; now and then a block of PSRAM misses is longer than BLOCK.
    assert np.median(off) <= 10 and np.mean(off < BLOCK) > 0.98 and off.max() < 2000, np.sort(off)[-10:]
    print(json.dumps(meta["sim_clock"]))
