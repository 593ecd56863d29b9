"""The probe model (probe_model.py, a model: counts priced on a virtual clock), its counting faces (pyocd://'s counting
probe, the twin's JTAG face), `xipscope probe-latency`, and the profiler's jittered sampling intervals.

The costs are checked against the facts they come from (chip/debug_wire.py: the ADIv5/ADIv6 SWD packet, CMSIS-DAP's
command layout, the Debug Probe's read rate) and the counts against independent counts (the twin's own probe batches,
its Debug Module's accesses). No assertion here depends on how fast this machine is.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from xipscope.chip import debug_wire as dw
from xipscope.chip import rp2350 as rp
from xipscope.chip.memory_map import get_memory_map
from xipscope.cli import main
from xipscope.probe_latency import measure_probe
from xipscope.probe_model import ProbeCounts, ProbeModel, SwdLinkCounter, load_model
from xipscope.profile import sampler as sampler_module
from xipscope.profile.sampler import sample_intervals, sample_profile
from xipscope.profile.store import read_samples
from xipscope.sim import jtag
from xipscope.sim.debug_module import DebugModule
from xipscope.sim.hazard3 import Machine
from xipscope.targets import open_target
from xipscope.targets.base import SampleRequest

REPO = Path(__file__).resolve().parents[2]
XIPBENCH = REPO / "firmware" / "xipbench.elf"
ARMXIP = REPO / "firmware" / "armxip.elf"
COUNTERS = SampleRequest(reads=((rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT, 8),), read_names=("counters",))


# --- the facts and the SWD/CMSIS-DAP counting -----------------------------------------------------------------------

def test_an_swd_transfer_costs_what_the_adi_packet_holds_and_the_default_latency_is_the_debug_probes_read_rate():
    # ADIv5/ADIv6 B4: 8-bit request, turnaround, 3-bit ACK, 32 data + parity, turnaround.
    assert dw.SWD_TRANSFER_BITS == 8 + 1 + 3 + 33 + 1 == 46
    # rgrr/yapicoprobe issue 108: 4-byte reads at 8,587 B/s, one round trip each: 466 us, the model's 470 us.
    assert 4 / dw.DEBUG_PROBE_READ_RATE_BYTES_S == pytest.approx(dw.DEBUG_PROBE_ROUND_TRIP_S, rel=0.01)
    assert ProbeModel().latency_s == dw.DEBUG_PROBE_ROUND_TRIP_S and ProbeModel().wire_hz == 5e6


def test_posted_ap_reads_end_with_an_rdbuff_read_on_the_wire():
    link = SwdLinkCounter()
    link.transfer(read=True, ap=False)                     # a DP read: not posted
    assert link.counts.wire_bits == 46
    link.transfer(read=True, ap=True)
    link.transfer(read=True, ap=True)                      # a run of two AP reads ...
    link.transfer(read=False, ap=True)                     # ... ended by a write: RDBUFF collects the second
    assert link.counts.wire_bits == 46 * (1 + 2 + 1 + 1)
    assert link.counts.transfers == 4                      # the RDBUFF read is the probe's, not the host's
    link.transfer(read=True, ap=True)
    link.wait()                                            # a run ended by the end of the batch
    assert link.counts.wire_bits == 46 * (5 + 2)


def test_transfers_pack_into_64_byte_packets_and_a_wait_costs_one_round_trip_per_8_packets_in_flight():
    link = SwdLinkCounter()
    for _ in range(12):                                    # 3-byte header + 12 writes of 5 bytes = 63: one packet
        link.transfer(read=False, ap=True)
    link.wait()
    assert (link.counts.packets, link.counts.round_trips) == (1, 1)
    for _ in range(13):                                    # the 13th write needs a second packet
        link.transfer(read=False, ap=True)
    link.wait()
    assert (link.counts.packets, link.counts.round_trips) == (3, 2)
    link.block(15, read=True)                              # DAP_TransferBlock: 4-byte header + 15 words = 64
    link.wait()
    assert link.counts.packets == 4
    link.block(16 * 9, read=True)                          # 10 packets: more than 8 in flight, two round trips
    link.wait()
    assert (link.counts.packets, link.counts.round_trips) == (14, 5)
    link.wait()                                            # nothing queued: no wait
    assert link.counts.round_trips == 5


def test_the_model_prices_round_trips_and_wire_bits_on_a_virtual_clock():
    model = ProbeModel(latency_s=470e-6, wire_hz=5e6)
    priced = model.price(ProbeCounts(round_trips=10, transfers=200, packets=10, wire_bits=20_000), samples=10)
    assert priced["per_sample"] == {"round_trips": 1, "transfers": 20, "packets": 1, "wire_bits": 2000}
    assert priced["samples_per_s"] == pytest.approx(1 / (470e-6 + 2000 / 5e6))
    assert priced["samples_per_s"] == pytest.approx(priced["one_round_trip_ceiling_per_s"])
    assert priced["halted_us"] == pytest.approx(400)               # one round trip: the wire time only
    assert priced["halted_clk_sys_cycles"] == pytest.approx(400e-6 * 150e6)
    assert "a model" in priced["model"]
    assert model.halted_s(7, 1000) == pytest.approx(6 * 470e-6 + 200e-6)
    assert model.sample_s(80, 5000, sleep_s=0.01) == pytest.approx(80 * 470e-6 + 1e-3 + 0.01)


# --- counting at the faces ------------------------------------------------------------------------------------------

def test_pyocd_counts_a_riscv_sample_as_one_round_trip_as_the_twins_own_probe_does():
    """The counting wrapper's round trips agree with the twin's DAP face's own batches; each Debug Module access is
    pyOCD's TAR write and DRW transfer (CSW cached), so transfers are twice the DM's accesses."""
    with open_target(f"pyocd://twin:{XIPBENCH}") as target:
        twin = target.probe._probe
        sampler = target.sampler(COUNTERS)
        sampler.take()
        counts, batches, accesses = target.probe_counts(), twin.round_trips, twin.dm.accesses
        samples = [sampler.take() for _ in range(10)]
        spent = target.probe_counts() - counts
        twin_batches, twin_accesses = twin.round_trips - batches, twin.dm.accesses - accesses
    assert {s.round_trips for s in samples} == {1}
    assert spent.round_trips == twin_batches == 10
    assert spent.transfers == 2 * twin_accesses
    assert spent.packets >= spent.round_trips
    assert spent.wire_bits >= 46 * spent.transfers


def test_pyocd_counts_the_arm_modes_sample_as_the_twins_probe_batches_it():
    from xipscope.profile.sampler import choose_sampler
    with open_target(f"pyocd://twin:{ARMXIP}") as target:
        twin = target.probe._probe
        take, _ = choose_sampler(target, get_memory_map("rp2350"), stacks=False)
        take()
        counts, batches = target.probe_counts(), twin.round_trips
        for _ in range(5):
            take()
        spent = target.probe_counts() - counts
        twin_batches = twin.round_trips - batches
    assert spent.round_trips == twin_batches == 5         # halt, pc, counters and resume: one batch a sample


def _clock(tap: jtag.Tap, tms: int, tdi: int = 0, read: bool = False) -> str:
    """One TCK cycle as OpenOCD's bitbang driver sends it: pins with TCK low, 'R' to sample TDO, TCK high."""
    low = str(2 * tms + tdi)
    return low + ("R" if read else "") + str(4 + 2 * tms + tdi)


def _scan(tap, ir: bool, value: int, length: int, capture: bool) -> bytes:
    """Run-Test/Idle -> a full IR or DR scan -> Run-Test/Idle; returns TDO as OpenOCD collects it."""
    path = [1, 1, 0, 0] if ir else [1, 0, 0]               # to Shift-IR / Shift-DR
    text = "".join(_clock(tap, tms) for tms in path)
    for i in range(length):
        text += _clock(tap, int(i == length - 1), (value >> i) & 1, capture)
    text += _clock(tap, 1) + _clock(tap, 0)                 # Update, back to Run-Test/Idle
    return tap.feed(text.encode())


# --- the twin's clock under the model: halted for the probe's time, paced, and the answers unchanged ---------------

def spy_on_accesses(dm: DebugModule) -> list[tuple[str, bool]]:
    """Record each Debug Module access the twin serves, and whether hart 0 is halted after it (a spy: the accesses
    still go to the model)."""
    log = []
    read, write = dm.read, dm.write

    def spied_read(address):
        value = read(address)
        log.append(("read", dm.halted))
        return value

    def spied_write(address, value):
        write(address, value)
        log.append(("write", dm.halted))

    dm.read, dm.write = spied_read, spied_write
    return log


def wire_bits_while_halted(log: list[tuple[str, bool]]) -> int:
    """The SWD bits from the end of each halt's dmcontrol write to the end of its resume's: pyOCD makes each DM access
    a TAR write and a DRW transfer (46 bits each, ADIv5/v6 B4), and each DRW read is posted, collected by an RDBUFF
    read (46 more) before the next transfer."""
    bits, halted = 0, False
    for kind, halted_after in log:
        if halted:                                    # this access went out with the core halted (the resume too)
            bits += dw.SWD_TRANSFER_BITS * (2 + (kind == "read"))
        halted = halted_after
    return bits


def test_the_twin_is_halted_for_the_wire_time_between_the_halt_and_the_resume_at_the_configured_clock(tmp_path):
    """The twin's DAP face clocks its core's halts in the probe model's time, in its own clk_sys cycles: for a one-round-
    trip sample exactly the wire time from the halt to the resume (at the model's SWD clock, here 2 MHz), none of
    the USB latency and none of the host's time; meta.json reports it per sample."""
    model = ProbeModel(latency_s=470e-6, wire_hz=2e6)
    with open_target(f"pyocd://twin:{XIPBENCH}") as target:
        log = spy_on_accesses(target.probe._probe.dm)
        run = sample_profile(target, tmp_path / "run", memory_map=get_memory_map("rp2350"), samples=20,
                             probe_model=model)
        # The samples' accesses: after the resume that ends the profiler's set-up (it halts the running twin to
        # pace it, then resumes it).
        resumed = next(i for i, (_, halted) in enumerate(log) if i and log[i - 1][1] and not halted)
        bits = wire_bits_while_halted(log[resumed + 1:])
        priced = run.meta["probe_model"]
        assert priced["halted_from"].startswith("the twin's clock")
        assert priced["per_sample"]["round_trips"] == 1.0
        # 14 DM accesses from the halt to the resume, 6 of them reads: 34 transfers of 46 bits
        assert bits == 20 * 46 * (2 * 14 + 6)
        assert priced["halted_clk_sys_cycles"] == pytest.approx(bits / 20 / 2e6 * dw.CLK_SYS_HZ)   # 23,460 cycles
        assert priced["halted_us"] == pytest.approx(bits / 20 / 2e6 * 1e6)
        assert priced["halted_us"] < model.halted_s(1, priced["per_sample"]["wire_bits"]) * 1e6   # within the bound

        # Halted by hand for a host's 0.3 s: only the probe's time counts, priced as the model prices it.
        target.use_probe_model(model)
        held, counts = target.halted_cycles(), target.probe_counts()
        target.halt()
        time.sleep(0.3)
        target.resume()
        held, spent = target.halted_cycles() - held, target.probe_counts() - counts
    assert 0 < held <= model.sample_s(spent.round_trips, spent.wire_bits) * dw.CLK_SYS_HZ < 0.01 * dw.CLK_SYS_HZ


def test_the_profiler_paces_a_running_twin_dap_face_itself(tmp_path):
    """`xipscope profile --target pyocd://twin:FW` opens a twin that runs (as a board does after reset): the profiler
    halts it and paces it before its first sample, so its halts land by the twin's clock, not the host's."""
    with open_target(f"pyocd://twin:{XIPBENCH}") as target:
        assert target.state() == "running" and target.pacing() is None
        run = sample_profile(target, tmp_path / "run", memory_map=get_memory_map("rp2350"), elf=XIPBENCH,
                             rate_hz=1000, samples=200, probe_model=ProbeModel())
        assert target.pacing()["clock_hz"] == 1e6
    meta = run.meta
    assert meta["resumed_at_start"] is False and meta["samples"] == 200
    assert meta["sim_clock"]["clock_hz"] == 1e6 and meta["schedule"].startswith("each interval from the previous")
    # Paced and told each interval: the twin ran 200 jittered intervals of about 1 ms of its running time at 1 MHz
    # (the mean of 200 draws is within a few % of the period), and was held halted for the model's time per sample.
    seen = meta["halted_target"]
    assert abs(seen["cycles"] - 200 * 1000) < 0.1 * 200 * 1000, seen
    assert seen["halted_cycles"] == pytest.approx(200 * meta["probe_model"]["halted_clk_sys_cycles"], rel=1e-2)


def test_shares_under_the_model_with_jitter_are_the_twins_truth_on_xipbench(tmp_path):
    """xipbench to its end through pyocd://twin: (the counting probe, the probe model, jittered intervals), the twin's
    DAP face paced to its clock and told each interval (halt_after), so samples land at their scheduled cycles however
    loaded the host: the model changes timing, not answers (issue 16: TV under 0.03 of the twin's truth)."""
    from xipscope.profile.analysis import load_profile, versus_truth
    out = tmp_path / "run"
    with open_target(f"pyocd://twin:{XIPBENCH}") as target:
        assert {"model", "pacing"} <= target.capabilities
        target.halt()        # at once, so the run covers xipbench from (about) its start; the profiler paces it
        run = sample_profile(target, out, memory_map=get_memory_map("rp2350"), elf=XIPBENCH, rate_hz=1000,
                             until="idle", samples=100_000, probe_model=ProbeModel())
    meta = run.meta
    assert meta["transport"].startswith("pyocd: halt, pc, counters, resume in one round trip")
    assert meta["jitter"]["seed"] is not None and meta["sim_clock"]["clock_hz"] == 1e6
    assert meta["stop_reason"].startswith("idle")
    # about one sample per 1,000 of xipbench's 4.2 M cycles: the count is the twin's, not the host's
    assert abs(meta["samples"] - 4_235_086 / 1000) < 0.04 * 4_235_086 / 1000, meta["samples"]
    # halted in the twin's own clock for the model's wire time of each sample (and of the resume that started the
    # run: its clock is read before it), not for the host's time: 26 s of wall time on a loaded host is 4e9 cycles
    seen = meta["halted_target"]
    per_sample = meta["probe_model"]["halted_clk_sys_cycles"]
    assert per_sample == 46 * (2 * 14 + 6) / 5e6 * dw.CLK_SYS_HZ          # the sample's 34 transfers, at 5 MHz
    assert seen["halted_cycles"] == pytest.approx(meta["samples"] * per_sample, rel=1e-3)
    truth = json.loads((out / "truth.json").read_text())
    profile = load_profile(out, XIPBENCH)
    versus = versus_truth(profile.samples, truth, profile.memory_map)
    print(f"\nTV {versus['tv_functions']:.4f} by function, {versus['tv_regions']:.4f} by region over "
          f"{meta['samples']} samples\n{versus['functions'].head(6)}")
    assert versus["tv_functions"] < 0.03 and versus["tv_regions"] < 0.03


def test_the_jtag_face_counts_tck_cycles_and_one_wait_per_scan_that_captures_tdo():
    """OpenOCD's bitbang driver samples TDO for each bit of a scan it reads and blocks once, at the scan's end."""
    machine = Machine(XIPBENCH, uart_echo=lambda b: None)
    tap = jtag.Tap(DebugModule(machine, busy_accesses=0))
    tap.feed(("".join(_clock(tap, 1) for _ in range(5)) + _clock(tap, 0)).encode())   # Test-Logic-Reset, Idle
    assert (tap.counts.round_trips, tap.counts.wire_bits) == (0, 6)
    _scan(tap, True, jtag.IR_DMI, jtag.IR_LENGTH, capture=False)     # OpenOCD writes IR without reading it
    assert tap.counts.round_trips == 0 and tap.counts.wire_bits == 6 + 4 + 5 + 2
    read_dmstatus = (0x11 << 34) | 1                                  # op 1: read dmstatus
    _scan(tap, False, read_dmstatus, jtag.DMI_LENGTH, capture=True)
    tdo = _scan(tap, False, 0, jtag.DMI_LENGTH, capture=True)        # op 0: collect the result
    assert tap.counts.round_trips == 2 and tap.counts.transfers == 1
    assert tap.counts.wire_bits == 17 + 2 * (3 + jtag.DMI_LENGTH + 2)
    captured = int(tdo.decode()[::-1], 2)
    assert (captured >> 2) & 0xF == 2                                 # dmstatus.version 2: debug spec 0.13


# --- probe-latency --------------------------------------------------------------------------------------------------

def test_probe_latency_recovers_the_round_trip_and_wire_rate_of_a_virtual_clock():
    """Timed by a virtual clock that advances by the model's own price of the twin's counted work, the measurement
    must give back that model's latency and wire rate."""
    model = ProbeModel(latency_s=1e-3, wire_hz=2e6)
    with open_target(f"pyocd://twin:{XIPBENCH}") as target:
        def clock():
            counts = target.probe_counts()
            return model.sample_s(counts.round_trips, counts.wire_bits)
        figures = measure_probe(target, single_reads=20, block_bytes=4096, clock=clock)
    assert figures["counted"] and figures["single_round_trips"] == 1.0
    assert figures["block_round_trips"] > 1
    assert figures["latency_s"] == pytest.approx(1e-3, rel=1e-9)
    assert figures["wire_hz"] == pytest.approx(2e6, rel=1e-9)


def test_probe_latency_saves_the_figures_that_profile_then_prices_with(tmp_path, monkeypatch, capsys):
    """Against the twin's DAP face the figures are host time: their structure and their use are what is checked."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert load_model() == ProbeModel()                    # nothing saved yet: the Debug Probe's figures
    assert main(["probe-latency", "--target", f"pyocd://twin:{XIPBENCH}"]) == 0
    out = capsys.readouterr().out
    assert "round trip:" in out and "the twin (a model)" in out
    saved = json.loads((tmp_path / "config" / "xipscope" / "probe-latency.json").read_text())
    assert saved["latency_us"] > 0 and saved["counted"] is True and saved["single_round_trips"] == 1.0
    assert saved["target"] == f"pyocd://twin:{XIPBENCH}"
    model = load_model()
    assert model.latency_s == pytest.approx(saved["latency_us"] / 1e6)
    assert "measured by xipscope probe-latency" in model.source

    with open_target(f"pyocd://twin:{XIPBENCH}") as target:
        run = sample_profile(target, tmp_path / "run", memory_map=get_memory_map("rp2350"), samples=20)
    priced = run.meta["probe_model"]
    assert priced["latency_us"] == pytest.approx(saved["latency_us"])
    assert priced["per_sample"]["round_trips"] == 1.0
    assert priced["samples_per_s"] == pytest.approx(
        1 / (model.latency_s + priced["per_sample"]["wire_bits"] / model.wire_hz))
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["probe_model"] == priced

    (tmp_path / "config" / "xipscope" / "probe-latency.json").write_text("{not json")
    assert main(["profile", "--target", f"pyocd://twin:{XIPBENCH}", "--elf", str(XIPBENCH), "--samples", "2",
                 "--out", str(tmp_path / "broken")]) == 1
    assert "run `xipscope probe-latency --target URL` again" in capsys.readouterr().err


# --- jittered sampling ----------------------------------------------------------------------------------------------

def test_a_seed_repeats_the_intervals_exactly_and_no_jitter_keeps_the_period():
    def first(n, seed):
        intervals = sample_intervals(4_000_000, seed)
        return [next(intervals) for _ in range(n)]
    assert first(1000, 7) == first(1000, 7)
    assert first(1000, 7) != first(1000, 8)
    jittered = first(10_000, 7)
    assert min(jittered) >= 0.5 * 4_000_000 and max(jittered) <= 1.5 * 4_000_000
    assert sum(jittered) / len(jittered) == pytest.approx(4_000_000, rel=0.01)
    assert first(100, None) == [4_000_000] * 100


def test_a_fixed_rate_locks_in_phase_with_a_periodic_tick_and_a_jittered_one_does_not():
    """Linux's 250 Hz timer: a handler busy for the first 10% of every 4 ms. Sampled at 125 Hz from an arbitrary
    start, a fixed rate finds the handler in every sample or in none; jittered spacing finds it in about 10%."""
    tick_ns, busy_ns = 4_000_000, 400_000

    def share_in_handler(seed, start_ns):
        t, hits, intervals = start_ns, 0, sample_intervals(8_000_000, seed)
        for _ in range(20_000):
            hits += t % tick_ns < busy_ns
            t += next(intervals)
        return hits / 20_000

    assert {share_in_handler(None, start) for start in (100_000, 2_000_000)} == {1.0, 0.0}
    for seed in (1, 2, 3):
        assert share_in_handler(seed, 2_000_000) == pytest.approx(0.1, abs=0.01)


class VirtualClock:
    """The sampler's clock made virtual: sleeping advances it, nothing else does (no wall-clock assertion)."""

    def __init__(self):
        self.ns = 0

    def perf_counter_ns(self) -> int:
        return self.ns

    def sleep(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)

    strftime, gmtime = staticmethod(time.strftime), staticmethod(time.gmtime)


@pytest.mark.parametrize("jitter", [True, False])
def test_the_profiler_takes_its_samples_on_the_seeded_schedule(tmp_path, monkeypatch, jitter):
    """A target the profiler does not pace (a board; here the twin's Arm core behind its DAP face, which is not
    paced) is sampled on a schedule in host time fixed in advance, each interval the seeded generator's."""
    monkeypatch.setattr(sampler_module, "time", VirtualClock())
    with open_target(f"pyocd://twin:{REPO / 'firmware' / 'armxip.elf'}") as target:
        assert "pacing" not in target.capabilities
        run = sample_profile(target, tmp_path / "run", memory_map=get_memory_map("rp2350"), samples=50,
                             rate_hz=250, jitter=jitter, seed=1234)
    t_ns = read_samples(tmp_path / "run")["t_ns"].tolist()
    intervals = sample_intervals(4_000_000, 1234 if jitter else None)
    expected = [0]
    for _ in range(49):
        expected.append(expected[-1] + next(intervals))
    assert t_ns == expected
    assert run.meta["jitter"] == ({"seed": 1234, "intervals": run.meta["jitter"]["intervals"]} if jitter else None)
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["jitter"] == run.meta["jitter"]
