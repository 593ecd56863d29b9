"""The profile analyses and report: exact answers on synthetic profiles, ground truth from the RP2350 twin (a model),
the LR/SC livelock on lrscspin, the machine formats, compare, and clear errors on bad input."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from xipscope.cli import main as cli_main
from xipscope.elf import load_symbols
from xipscope.errors import FormatError, SymbolError
from xipscope.profile import analysis as an
from xipscope.profile.compare import compare_profiles
from xipscope.profile.export import collapsed_stacks, speedscope
from xipscope.profile.report import write_report
from xipscope.profile.store import SampleWriter, write_meta

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "analyses"))
from twin_profile import profile_twin  # noqa: E402

XIPBENCH = REPO / "firmware" / "xipbench.elf"
LRSCSPIN = REPO / "firmware" / "lrscspin.elf"


@pytest.fixture(scope="module")
def bench_symbols():
    return load_symbols(XIPBENCH)


def addr(symbols, name, offset=4):
    return symbols.address_of(name) + offset


def write_profile(directory, rows, meta=None):
    """rows: (t_ns, pc, halted_ns, xip_hit, xip_acc, stack)."""
    writer = SampleWriter(directory, flush_rows=1000)
    for t, pc, halted, hit, acc, stack in rows:
        writer.add(t, pc, halted, hit, acc, stack)
    writer.close()
    write_meta(directory, {"map": "rp2350", "target": "synthetic"} | (meta or {}))
    return directory


def test_shares_by_region_function_and_line_are_exact(tmp_path, bench_symbols):
    s = bench_symbols
    pcs = ([addr(s, "work_flash")] * 60 + [addr(s, "work_psram")] * 30 + [addr(s, "work_sram")] * 10
           + [0x00000100] * 5 + [0x14000100] * 3 + [0x50000000] * 2)
    write_profile(tmp_path, [(i * 1000, pc, 100, None, None, None) for i, pc in enumerate(pcs)])
    profile = an.load_profile(tmp_path, s)
    by_region = an.share_by_region(profile.samples)
    assert by_region["samples"].to_dict() == {"flash (cached)": 60, "flash (uncached)": 3, "psram (cached)": 30,
                                              "psram (uncached)": 0, "sram": 10, "rom": 5, "other": 2}
    assert by_region.loc["psram (cached)", "share"] == pytest.approx(30 / 110)
    by_function = an.share_by_function(profile.samples)
    assert list(by_function.index[:3]) == ["work_flash", "work_psram", "work_sram"]
    assert by_function.loc["work_flash", "samples"] == 60 and by_function.loc["(no symbol)", "samples"] == 10
    assert by_function.loc["work_flash", "flash (cached)"] == 60
    by_line = an.share_by_line(profile.samples)
    # The DEFINE_WORK macro body is on xipbench.c lines 25-27 (one instantiation per line).
    assert by_line.loc["firmware/firmware/xipbench.c:25", "samples"] == 60
    assert by_line.loc["firmware/firmware/xipbench.c:25", "function"] == "work_flash"
    rate = an.hit_rate(profile.samples)
    assert rate["has_counters"] is False and rate["hit_rate"] is None
    intr = an.intrusiveness(profile.samples)
    assert intr["halted_ns_median"] == 100
    assert intr["halted_share"] == pytest.approx(110 * 100 / (109 * 1000 + 100))


def test_shares_weigh_samples_by_the_cycles_before_them(tmp_path, bench_symbols):
    # work_flash sampled 3 times after 100-cycle gaps, work_sram 2 times after 700-cycle gaps (a sampler that
    # lagged while sram ran): by cycles sram held 1400 of 1700, though it has fewer samples.
    s = bench_symbols
    writer = SampleWriter(tmp_path)
    rows = [("work_flash", 1000), ("work_flash", 1100), ("work_flash", 1200), ("work_sram", 1900),
            ("work_sram", 2600), ("work_flash", 2700)]
    for i, (name, mcycle) in enumerate(rows):
        writer.add(i * 1000, addr(s, name), 10, mcycle=mcycle)
    writer.close()
    write_meta(tmp_path, {"map": "rp2350"})
    profile = an.load_profile(tmp_path, s)
    by_function = an.share_by_function(profile.samples)
    assert list(by_function.index) == ["work_sram", "work_flash"]
    assert by_function.loc["work_sram", "share"] == pytest.approx(1400 / 1700)
    assert by_function.loc["work_flash", "samples"] == 4              # counts stay counts
    assert an.share_by_region(profile.samples).loc["sram", "share"] == pytest.approx(1400 / 1700)
    assert any("weighted by the target's cycles" in note for note in profile.notes)


def test_counter_deltas_skip_saturation_and_writes(tmp_path):
    acc = [0, 10, 25, 5, 15, 0xFFFFFFFF, 0xFFFFFFFF, 20, 30, 40]
    hit = [0, 8, 20, 4, 12, 100, 100, 16, 24, 50]      # the last interval has more hits than accesses: unknown
    rows = [(i * 1000, 0x10000100, 10, h, a, None) for i, (a, h) in enumerate(zip(acc, hit))]
    write_profile(tmp_path, rows)
    frame = an.load_profile(tmp_path).samples
    d_acc = frame["d_acc"].tolist()
    expected = [None, 10, 15, None, 10, None, None, None, 10, None]
    assert [None if math.isnan(v) else v for v in d_acc] == expected
    rate = an.hit_rate(frame)
    assert (rate["accesses"], rate["hits"], rate["unknown_intervals"]) == (45, 8 + 12 + 8 + 8, 5)
    assert rate["hit_rate"] == pytest.approx(36 / 45)
    over = an.hit_rate_over_time(frame, buckets=3)            # t = 0..9000 ns: buckets of 3000 ns
    assert over["accesses"].tolist() == [25, 10, 10] and over["hits"].tolist() == [20, 8, 8]


def synthetic_attribution(directory, symbols, rates, n=20000, seed=7):
    """Runs of functions; each interval's accesses and misses drawn half from each end's function (Poisson)."""
    rng = np.random.default_rng(seed)
    names = list(rates)
    labels = []
    while len(labels) < n:
        labels += [rng.integers(len(names))] * int(rng.geometric(1 / 20))
    labels = np.array(labels[:n])
    miss_rate = np.array([rates[f][0] for f in names])
    acc_rate = np.array([rates[f][1] for f in names])
    mixed_miss = 0.5 * (miss_rate[labels[:-1]] + miss_rate[labels[1:]])
    mixed_hit = 0.5 * (acc_rate[labels[:-1]] + acc_rate[labels[1:]]) - mixed_miss
    misses, hits = rng.poisson(mixed_miss), rng.poisson(mixed_hit)
    acc = np.concatenate([[1000], 1000 + np.cumsum(misses + hits)])
    hit = np.concatenate([[900], 900 + np.cumsum(hits)])
    pcs = [addr(symbols, names[k]) for k in labels]
    write_profile(directory, [(i * 10_000, pcs[i], 50, int(hit[i]), int(acc[i]), None) for i in range(n)])
    return int(np.sum(misses))


def test_attribution_recovers_known_miss_rates(tmp_path, bench_symbols):
    # (misses, accesses) per interval spent wholly in the function
    rates = {"work_flash": (40.0, 400.0), "work_psram": (15.0, 300.0), "work_sram": (0.0, 0.0),
             "copy_words": (4.0, 200.0)}
    total = synthetic_attribution(tmp_path, bench_symbols, rates)
    frame = an.load_profile(tmp_path, bench_symbols).samples
    table = an.attribute_misses(frame)
    assert "(other)" not in table.index
    for name, (miss, access) in rates.items():
        row = table.loc[name]
        assert row["misses_per_interval_low"] <= miss <= row["misses_per_interval_high"], (name, row)
        assert row["misses_per_interval"] == pytest.approx(miss, abs=max(0.05 * miss, 0.3))
        assert row["accesses_per_interval"] == pytest.approx(access, abs=max(0.05 * access, 0.5))
    assert table["misses"].sum() == pytest.approx(total, rel=0.01)
    assert table.loc["work_flash", "hit_rate"] == pytest.approx(0.9, abs=0.01)


def test_nnls_matches_a_known_solution():
    rng = np.random.default_rng(1)
    x = rng.random((200, 5))
    truth = np.array([3.0, 0.0, 1.5, 0.0, 7.0])
    y = x @ truth - 0.01 * x[:, 1]                    # pushes column 1 below zero: NNLS must clamp it
    got = an.nnls(x.T @ x, x.T @ y)
    assert got[1] == 0.0 and (got >= 0).all()
    assert got[[0, 2, 4]] == pytest.approx(truth[[0, 2, 4]], abs=0.02)


@pytest.fixture(scope="module")
def xipbench_profile(tmp_path_factory):
    out = tmp_path_factory.mktemp("xipbench")
    profile_twin(XIPBENCH, out, every=1500, seed=3)
    return out


def test_twin_xipbench_shares_match_ground_truth(xipbench_profile):
    """The twin (a model) knows what ran: sampled shares against its exact per-function cycle counts."""
    truth = json.loads((xipbench_profile / "truth.json").read_text())
    profile = an.load_profile(xipbench_profile)
    frame = profile.samples
    assert len(frame) > 2500
    true_share = {f["name"]: f["cycles"] / truth["cycles"] for f in truth["functions"]}
    sampled = an.share_by_function(frame)["share"].to_dict()
    names = set(true_share) | set(sampled)
    tvd = 0.5 * sum(abs(true_share.get(n, 0) - sampled.get(n, 0)) for n in names)
    assert tvd < 0.03, tvd       # sampling every ~1500 cycles (jittered) gives 0.012-0.016 here (seeds 3, 4)

    by_region = an.share_by_region(frame)
    true_region = {}
    for f in truth["functions"]:
        true_region[f["region"]] = true_region.get(f["region"], 0) + f["cycles"] / truth["cycles"]
    assert by_region.loc["flash (cached)", "share"] == pytest.approx(true_region["flash"], abs=0.03)
    assert by_region.loc["psram (cached)", "share"] == pytest.approx(true_region["psram"], abs=0.03)
    assert by_region.loc["sram", "share"] == pytest.approx(true_region["sram"], abs=0.03)
    # The counters count for the whole chip; intervals with both samples in one function see only that function's
    # traffic (one core), so their hit rate is the twin's exact per-function hit rate.
    fn = frame["function"].astype(str).to_numpy()
    d_acc, d_hit = frame["d_acc"].to_numpy(), frame["d_hit"].to_numpy()
    for name in ("work_flash", "work_psram"):
        exact = next(f for f in truth["functions"] if f["name"] == name)
        inside = np.zeros(len(frame), bool)
        inside[1:] = (fn[1:] == name) & (fn[:-1] == name)
        inside &= ~np.isnan(d_acc)
        assert d_hit[inside].sum() / d_acc[inside].sum() == pytest.approx(
            exact["xip_hits"] / exact["xip_accesses"], abs=0.005)
    # Code running from SRAM on SRAM data makes no XIP access at all.
    cat = frame["category"].astype(str).to_numpy()
    pure_sram = np.zeros(len(frame), bool)
    pure_sram[1:] = (cat[1:] == "sram") & (cat[:-1] == "sram")
    d = frame["d_acc"].to_numpy()[pure_sram]
    d = d[~np.isnan(d)]
    assert len(d) > 200 and (d == 0).mean() >= 0.99
    # xipbench clears the counters at each of its six phases: those intervals are unknown, not negative.
    rate = an.hit_rate(frame)
    assert 6 <= rate["unknown_intervals"] <= 8
    assert an.detect_lrsc_livelock(frame, profile.elf_path, profile.symbols, profile.memory_map) is None


def test_livelock_on_lrscspin(tmp_path):
    profile_twin(LRSCSPIN, tmp_path, every=300, max_instructions=150_000)
    truth = json.loads((tmp_path / "truth.json").read_text())
    profile = an.load_profile(tmp_path)
    symbols = profile.symbols
    lock = symbols.address_of("psram_lock")
    found = an.detect_lrsc_livelock(profile.samples, profile.elf_path, symbols, profile.memory_map)
    assert found is not None and found.verdict == "likely-rp2350-livelock"
    # spin_lock: li a5,1; lr.w.aq a4,(a0); bnez a4; sc.w a4,a5,(a0); bnez a4 (objdump of the committed ELF)
    spin = symbols.address_of("spin_lock")
    assert found.function == "spin_lock" and found.lock_register == "a0"
    assert (found.lr_pc, found.sc_pc) == (spin + 2, spin + 8)
    assert found.share >= 0.9 and found.lock_address is None
    # With the registers read at a halt in the loop, the lock address is known: PSRAM, so it is certain.
    sure = an.detect_lrsc_livelock(profile.samples, profile.elf_path, symbols, profile.memory_map,
                                   registers=truth["registers"])
    assert sure.verdict == "rp2350-livelock"
    assert sure.lock_address == lock and sure.lock_region == "psram"
    # The same loop on a lock in SRAM is a wait, not the RP2350 livelock.
    regs = dict(truth["registers"], **{found.lock_register: 0x20001000})
    assert an.detect_lrsc_livelock(profile.samples, profile.elf_path, symbols, profile.memory_map,
                                   registers=regs).verdict == "contention"
    # The report takes the registers the collector recorded at its last halt (meta.json) and is sure.
    page = write_report(tmp_path).read_text()
    # livelock.py's sentence, shared with `xipscope trap` and `xipscope doctor`, names the lock variable too.
    assert "<b>rp2350-livelock</b>" in page and f"lock at {lock:#x} (`psram_lock`) in psram, read from a0" in page
    assert sure.lock_variable == "psram_lock"


def test_speedscope_and_collapsed_stacks(tmp_path, bench_symbols):
    s = bench_symbols
    main_ra, phase_ra = addr(s, "main", 0x20), addr(s, "phase", 0x10)
    rows = [(0, addr(s, "work_flash"), 10, None, None, [phase_ra, main_ra]),
            (1000, addr(s, "work_flash"), 10, None, None, [phase_ra, main_ra]),
            (2000, addr(s, "uart_puts"), 10, None, None, [phase_ra, main_ra]),
            (3000, addr(s, "main"), 10, None, None, [])]
    write_profile(tmp_path, rows)
    frame = an.load_profile(tmp_path, s).samples
    assert collapsed_stacks(frame, s) == ("main;phase;work_flash 2\n"
                                          "main 1\n"
                                          "main;phase;uart_puts 1\n")
    # Without symbols a frame is its address: the return address itself, not the ra - 1 used for lookups.
    assert collapsed_stacks(frame, None).splitlines()[0] == f"{main_ra:#x};{phase_ra:#x};{addr(s, 'work_flash'):#x} 2"
    doc = speedscope(frame, s, "t")
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = [f["name"] for f in doc["shared"]["frames"]]
    prof = doc["profiles"][0]
    assert prof["type"] == "sampled" and len(prof["samples"]) == len(prof["weights"]) == 4
    assert [[frames[i] for i in sample] for sample in prof["samples"]] == [
        ["main", "phase", "work_flash"], ["main", "phase", "work_flash"], ["main", "phase", "uart_puts"], ["main"]]
    assert prof["weights"] == [1000, 1000, 1000, 1000] and prof["endValue"] == 4000
    out = write_report(tmp_path, s).parent
    assert json.loads((out / "profile.speedscope.json").read_text())["profiles"][0]["weights"] == [1000] * 4
    assert (out / "stacks.collapsed").read_text().startswith("main;phase;work_flash 2\n")


def test_compare_deltas(tmp_path, bench_symbols):
    s = bench_symbols
    a = write_profile(tmp_path / "a", [(i, addr(s, "work_flash") if i < 75 else addr(s, "work_sram"), 1, None, None,
                                        None) for i in range(100)])
    b = write_profile(tmp_path / "b", [(i, addr(s, "work_psram") if i < 40 else addr(s, "work_sram"), 1, None, None,
                                        None) for i in range(200)])
    html = compare_profiles(a, b, tmp_path / "cmp", s, s)
    import pandas as pd
    regions = pd.read_csv(tmp_path / "cmp" / "regions.csv", index_col=0)
    assert regions.loc["flash (cached)", "share_delta"] == pytest.approx(-0.75)
    assert regions.loc["psram (cached)", "share_delta"] == pytest.approx(0.2)
    assert regions.loc["sram", "share_delta"] == pytest.approx(0.8 - 0.25)
    functions = pd.read_csv(tmp_path / "cmp" / "functions.csv", index_col=0)
    assert functions.index[0] == "work_flash"                     # the biggest move first
    assert functions.loc["work_sram", ["samples_a", "samples_b"]].tolist() == [25, 160]
    se = math.sqrt(0.25 * 0.75 / 100 + 0.8 * 0.2 / 200)
    assert functions.loc["work_sram", "share_delta_se"] == pytest.approx(se, rel=1e-5)
    assert (tmp_path / "cmp" / "functions.png").stat().st_size > 1000 and "work_sram" in html.read_text()
    assert cli_main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp2"), "--elf-a", str(XIPBENCH),
                     "--elf-b", str(XIPBENCH)]) == 0


def test_report_files_and_cli(tmp_path, bench_symbols, capsys):
    synthetic_attribution(tmp_path, bench_symbols, {"work_flash": (40.0, 400.0), "work_sram": (0.0, 0.0)}, n=3000)
    meta = json.loads((tmp_path / "meta.json").read_text())
    write_meta(tmp_path, meta | {"elf": str(XIPBENCH)})
    assert cli_main(["report", str(tmp_path)]) == 0
    out = tmp_path / "report"
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(out / "report.html")                     # the summary, then where the report is
    assert printed[0] == "3000 samples, memory map rp2350" and any("work_flash" in line for line in printed)
    for name in ("report.html", "summary.json", "by_region.csv", "by_map_region.csv", "by_function.csv", "by_line.csv",
                 "over_time.csv",
                 "miss_attribution.csv", "top_functions.png", "hit_rate_over_time.png", "regions_over_time.png"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "stacks.collapsed").exists()                  # no stacks were sampled
    summary = json.loads((out / "summary.json").read_text())
    assert summary["by_region"][0] == {"category": "flash (cached)", "samples": summary["by_region"][0]["samples"],
                                       "share": pytest.approx(summary["by_region"][0]["share"]),
                                       "accesses": summary["by_region"][0]["accesses"],
                                       "hits": summary["by_region"][0]["hits"],
                                       "hit_rate": pytest.approx(0.9, abs=0.01)}
    page = (out / "report.html").read_text()
    for part in ("XIP misses by function", "Intrusiveness", "Median halt per sample 50 ns", "work_flash"):
        assert part in page


def test_bad_input_gives_clear_errors(tmp_path, bench_symbols, capsys):
    with pytest.raises(FormatError, match="no such profile directory"):
        an.load_profile(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no meta.json"):
        an.load_profile(tmp_path / "empty")
    d = write_profile(tmp_path / "p", [(0, 0x10000100, 1, None, None, None)],
                      {"elf": "gone.elf", "elf_sha256": "ab" * 32})
    with pytest.raises(SymbolError, match="names the ELF 'gone.elf', which is not there"):
        an.load_profile(d)
    with pytest.raises(SymbolError, match="the samples came from another build"):
        an.load_profile(d, XIPBENCH)
    assert cli_main(["report", str(d), "--elf", str(tmp_path / "nope.elf")]) == 1
    assert "expected a readable ELF" in capsys.readouterr().err
    assert cli_main(["report", str(tmp_path / "absent")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xipscope report: error:") and "Traceback" not in err
    with pytest.raises(Exception, match="not a built-in map"):
        an.load_profile(write_profile(tmp_path / "q", [(0, 1, 1, None, None, None)]), memory_map="nosuchmap")
    # A sample file cut short: the report says which part to move aside.
    (tmp_path / "q" / "samples" / "part-000009.parquet").write_bytes(b"PAR1")
    with pytest.raises(FormatError, match="part-000009.parquet: not a readable sample part"):
        write_report(tmp_path / "q")


def test_a_wrong_elf_without_a_recorded_hash_is_noted(tmp_path, bench_symbols):
    # Samples of xipbench's workers read with lrscspin.elf (no sha256 in meta.json to catch it): most pcs fall in
    # no function there, and the report says so instead of showing an empty profile as if it were right.
    s = bench_symbols
    write_profile(tmp_path, [(i, addr(s, "work_psram"), 1, None, None, None) for i in range(10)])
    profile = an.load_profile(tmp_path, LRSCSPIN)
    assert profile.notes and "100% of the samples fall in no function" in profile.notes[0]
    assert "is it the image that ran?" in write_report(tmp_path, LRSCSPIN).read_text()


def test_attribution_on_the_twin_matches_its_exact_misses(xipbench_profile):
    """The twin (a model) counts misses per function exactly; the attribution sees only the chip-wide counters."""
    truth = {f["name"]: f for f in json.loads((xipbench_profile / "truth.json").read_text())["functions"]}
    frame = an.load_profile(xipbench_profile).samples
    table = an.attribute_misses(frame)
    total = sum(f["xip_accesses"] - f["xip_hits"] for f in truth.values())
    for name in ("work_flash", "work_psram", "copy_words"):
        exact = truth[name]["xip_accesses"] - truth[name]["xip_hits"]
        row = table.loc[name]
        assert row["misses_low"] <= exact <= row["misses_high"], (name, exact, row)
        assert row["miss_share"] == pytest.approx(exact / total, abs=0.02)
        assert row["hit_rate"] == pytest.approx(truth[name]["xip_hits"] / truth[name]["xip_accesses"], abs=0.01)
    assert table.loc["work_sram", "miss_share"] < 0.005          # SRAM code on SRAM data misses nothing


def test_shares_by_the_maps_own_region_names(tmp_path):
    pcs = [0x80001000] * 3 + [0x10000010] + [0x1000]            # qemu-virt: dram, uart0, mrom
    write_profile(tmp_path, [(i, pc, 1, None, None, None) for i, pc in enumerate(pcs)], {"map": "qemu-virt"})
    table = an.share_by_map_region(an.load_profile(tmp_path).samples)
    assert table.to_dict("index") == {"dram": {"category": "sram", "samples": 3, "share": 0.6},
                                      "uart0": {"category": "other", "samples": 1, "share": 0.2},
                                      "mrom": {"category": "rom", "samples": 1, "share": 0.2}}


def test_emulated_atomics_from_the_kernels_counter_and_the_models_truth():
    from xipscope.profile.report import emulated_atomics, emulated_atomics_text

    meta = {"emulated_atomics": {"counter": "amo_emulated_count", "before": 10, "after": 1010, "count": 1000}}
    truth = {"before": {"cycles": 5_000, "emulated_atomics": {"traps": 10, "cycles": 400}},
             "after": {"cycles": 1_005_000, "emulated_atomics": {"traps": 1010, "cycles": 40_400}}}
    both = emulated_atomics(meta, truth)
    assert both == {"count": 1000, "counter": "amo_emulated_count",
                    "model": {"traps": 1000, "cycles": 40_000, "share": 0.04}}
    assert emulated_atomics_text(both) == (
        "emulated atomics: N = 1,000 AMOs trapped (mcause 7) and emulated by the kernel (amo_emulated_count); the "
        "model counted 1,000, taking X = 4.0% of the cycles (40,000) from their trap entries to their returns")
    board = emulated_atomics(meta, None)      # a board: the counter only
    assert board["model"] is None and "not known from samples" in emulated_atomics_text(board)
    # firmware without the counter, on the twin with no emulated AMOs: nothing to report
    idle = {"before": {"cycles": 0, "emulated_atomics": {"traps": 0, "cycles": 0}},
            "after": {"cycles": 9, "emulated_atomics": {"traps": 0, "cycles": 0}}}
    assert emulated_atomics({}, idle) is None and emulated_atomics({}, None) is None
