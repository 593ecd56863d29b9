"""xipbench on the twin: the phases the firmware measures itself, held against the twin's ground truth."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xipscope.sim.hazard3 import Machine

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
PHASE = re.compile(r"phase (\S+) cycles=(\d+) instret=(\d+) xip_acc=(\d+) xip_hit=(\d+) result=(0x[0-9a-f]+)")


@pytest.fixture(scope="module")
def bench():
    m = Machine(FIRMWARE / "xipbench.elf")
    r = m.run(20_000_000)
    assert r.reason == "idle", r
    phases = {p[0]: dict(zip(("cycles", "instret", "acc", "hit"), map(int, p[1:5])), result=p[5])
              for p in PHASE.findall(m.uart.text())}
    stats = {row.name: row for row in m.function_stats()}
    return m, phases, stats


def test_all_phases_ran_and_agree(bench):
    m, phases, _ = bench
    assert list(phases) == ["flash-fit", "flash-thrash", "sram-fit", "sram-thrash", "psram-fit", "psram-thrash"]
    assert len({p["result"] for p in phases.values()}) == 1       # same work wherever the code ran
    assert "xipbench: done" in m.uart.text()
    assert m.traps == []


@pytest.mark.parametrize("region", ["flash", "psram"])
def test_thrashing_has_lower_hit_rate_than_fitting(bench, region):
    _, phases, _ = bench
    fit, thrash = phases[f"{region}-fit"], phases[f"{region}-thrash"]
    assert thrash["hit"] / thrash["acc"] < fit["hit"] / fit["acc"] - 0.1
    assert thrash["cycles"] > 2 * fit["cycles"]                   # the misses cost time
    assert abs(thrash["instret"] - fit["instret"]) < 0.01 * fit["instret"]


def test_sram_phase_adds_no_xip_accesses_of_its_own_code(bench):
    _, phases, stats = bench
    work = stats["work_sram"]
    assert work.region == "sram"
    assert work.instructions > 0
    assert work.fetch_accesses == 0 and work.data_accesses == 0
    assert work.cycles == work.instructions                         # no stalls: nothing went to XIP
    for name in ("sram-fit", "sram-thrash"):
        # The counters see only the few flash instructions of phase() around the call, not the loop.
        assert phases[name]["acc"] < 32
        assert phases[name]["cycles"] - phases[name]["instret"] < 200


def test_psram_costs_more_than_flash_per_miss(bench):
    _, phases, stats = bench
    assert phases["psram-thrash"]["cycles"] > phases["flash-thrash"]["cycles"]
    assert stats["work_psram"].region == "psram" and stats["work_flash"].region == "flash"


def test_firmware_minstret_matches_ground_truth(bench):
    _, phases, stats = bench
    for region in ("flash", "sram", "psram"):
        measured = phases[f"{region}-fit"]["instret"] + phases[f"{region}-thrash"]["instret"]
        truth = stats[f"work_{region}"].instructions
        assert 0 <= measured - truth < 40    # the csrr reads and the call/return around the work


def test_run_is_deterministic():
    a = Machine(FIRMWARE / "xipbench.elf")
    b = Machine(FIRMWARE / "xipbench.elf")
    a.run(300_000)
    b.run(300_000)
    assert (a.pc, a.instructions, a.cycles, a.cache.ctr) == (b.pc, b.instructions, b.cycles, b.cache.ctr)
    assert a.read_memory(0x20000000, 4096) == b.read_memory(0x20000000, 4096)


def test_cycles_are_instructions_plus_miss_penalties(bench):
    m, _, stats = bench
    for name, penalty in (("work_flash", m.timing.flash_miss_cycles), ("work_psram", m.timing.psram_miss_cycles),
                          ("work_sram", 0)):
        r = stats[name]
        assert r.cycles == r.instructions + r.xip_misses * penalty


def test_miss_penalty_is_configurable():
    from xipscope.sim.counters import Timing

    m = Machine(FIRMWARE / "xipbench.elf", timing=Timing(flash_miss_cycles=10, psram_miss_cycles=100))
    m.run(20_000_000)
    stats = {r.name: r for r in m.function_stats()}
    assert stats["work_psram"].cycles == stats["work_psram"].instructions + 100 * stats["work_psram"].xip_misses
    assert stats["work_flash"].cycles == stats["work_flash"].instructions + 10 * stats["work_flash"].xip_misses
