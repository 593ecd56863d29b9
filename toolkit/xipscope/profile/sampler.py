"""Statistical PC sampling of a running target: halt, read pc (and the XIP counters, and a stack), resume, repeat.

One sample is: stop the core, read pc (with stacks: sp, fp and ra from the same `g`, then the stack memory in one batched
read, unwound locally with unwind.py), read XIP_CTRL CTR_HIT and CTR_ACC in one 8-byte read when the memory map has
XIP_CTRL, and let the core run on. Each sample records how long the core was held (halted_ns), so a report can state
how intrusive the run was.

A sample is one SampleRequest (registers, the counter read, the cycle counter) handed to the target's sampler
(targets/base.py open_sampler): the transport plans how to take it (rsp:// pipelines it into one write, openocd:// into
one Tcl script, pyocd:// into one batch of probe transfers) and counts the round trips and transfers each sample cost;
a target without a sampler of its own is sampled through the protocol (halt, reads, resume). This module knows no
transport.

Counters are stored as read and never cleared (see store.py): clearing them would race with firmware that reads them
itself (xipbench does) and would cost a write per sample. Analyses take deltas and treat a saturated or backwards
interval as unknown.

Samples go to disk in Parquet parts as they are taken (SampleWriter), and meta.json is written at the end, also when the
target dies (with the error) or the user stops the run (Ctrl-C: the sample in progress completes, then the run ends).

With a rate, samples follow a schedule fixed in advance (a late one does not shift the rest), jittered by default: each
interval is uniform in JITTER x the period, from a seeded generator whose seed meta.json records (`--seed` repeats a
run's spacing, `--no-jitter` keeps the period exactly). A fixed rate can lock in phase with a periodic tick (Linux's
250 Hz timer): every sample then lands at the same point of the tick, and the handler gets all of them or none.

A run ends after a duration, a sample count, or `until` a condition on the target: "exit" (the target says its core
stopped by itself: the twin's firmware ended and parked in wfi, or a trap loop; STOP_REASON), "idle" (the pc stayed
within IDLE_SPAN bytes, a `j .` spin or a loop around a `wfi`, for IDLE_SAMPLES samples in a row: any target) or a function's name
(the first sample whose pc is in it: a sample must land there, so name a function the workload stays in or ends in).
With `until`, a duration or count only caps the run, and meta.json says when the cap came first.

On a model (MODEL: the twin), the model's exact counts at the start and the end go to truth.json, so the report sets
the samples beside the truth. On a paced model (PACING) the clock stops while the core is halted, so a sampling
interval counts from the resume, not on a fixed wall-clock schedule, and the sampler tells the model the interval
(halt_after): each halt lands at the simulated cycle its interval ends on, however late a loaded host asks, so where
samples land and how many a workload gets do not depend on the host.
On a Linux kernel that counts the AMOs it emulates in its trap path (`amo_emulated_count`, our pico2 patch 0004: on
the RP2350 an AMO outside SRAM faults), the counter is read at the start and the end (halting a running target for
the read): meta.json's `emulated_atomics` holds how many the run took, on a board as on the twin.
meta.json's `halted_target` is the halted share as the twin sees it: the wall time it was held halted against the
cycles it ran at its nominal clock (host-measured halts, which include simulating the cycles due at each halt, are
`halted_ns`).

Where the target counts its probe's work (pyocd://: targets/counting_probe.py), meta.json's `probe_model` prices the
counts per sample with the probe model (probe_model.py, a model: the user's figures from `xipscope probe-latency`, else
the Raspberry Pi Debug Probe's): modelled samples/s and halted time per sample on a board behind that probe. The twin's
DAP face (pyocd://twin:) clocks that time itself: held halted for the model's time between each halt and its resume,
in its clk_sys cycles, which is then the halted time reported (`halted_from` says which).

Where the spacing is uneven anyway
(a loaded host, a slow probe), cycles=True reads mcycle with each sample: weighting each sample by the cycles since the
previous one keeps the estimate honest (on the twin under a load of 6 on 2 cores: TV 0.024 weighted, 0.039 not).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import secrets
import json
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..chip import rp2350 as rp
from ..errors import SymbolError, TargetError
from ..targets.base import MODEL, PACING, STOP_REASON, SampleRequest, open_sampler, require, require_riscv
from ..unwind import linux_stack_top, unwind_frame_pointers
from .store import SampleWriter, write_meta

COUNTER_POLICY = "raw readings, deltas in analysis (never cleared by the sampler; saturated or backwards = unknown)"
COUNTER_REGION = "xip_ctrl"         # the memory map region whose presence means CTR_HIT/CTR_ACC can be read
STACK_BLOCK = 512                   # bytes of stack read in one transfer from sp; frames beyond it are read one by one
CODE_KINDS = ("rom", "xip-flash", "xip-psram", "sram")
JITTER = (0.5, 1.5)                 # sampling intervals, uniform in this range x the period, unless --no-jitter
UNTIL_EXIT, UNTIL_IDLE = "exit", "idle"
IDLE_SPAN = 8                       # bytes: a park loop (`wfi; j .-4`) or a `j .` spin fits in them
IDLE_SAMPLES = 20                   # samples in a row inside IDLE_SPAN make the target idle
TRUTH_FILE = "truth.json"           # a model's exact counts at the start and the end of the run
BATCH = 64                          # samples asked of a batch (a transport with take_batch: rsp:// back to back)
EMULATED_AMO_COUNTER = "amo_emulated_count"   # a kernel's count of the AMOs it emulated (kernel/patches/pico2/0004)


def sample_intervals(period_ns: int, seed: int | None):
    """The intervals between scheduled samples, for ever: the period itself (seed None: a fixed rate), else uniform
    in JITTER x the period from random.Random(seed), so the same seed gives the same spacing."""
    if seed is None:
        while True:
            yield period_ns
    rng = random.Random(seed)
    low, high = JITTER
    while True:
        yield round(period_ns * rng.uniform(low, high))


@dataclass
class SampleRun:
    """What a run did, as meta.json records it."""
    out_dir: Path
    meta: dict = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return self.meta["samples"]


def counter_address(memory_map) -> int | None:
    """Address of CTR_HIT (CTR_ACC follows it) when the map has XIP_CTRL, else None."""
    for region in memory_map:
        if region.name == COUNTER_REGION:
            return region.start + rp.XIP_CTRL_CTR_HIT
    return None


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def code_predicate(symbols, memory_map):
    """is_code(address) for the unwinder: inside an ELF function if we have symbols, else in a code-holding region."""
    cache: dict[int, bool] = {}
    if symbols is not None:
        def is_code(address: int) -> bool:
            known = cache.get(address)
            if known is None:
                known = cache[address] = bool(symbols.symbolize([address]).function_id[0] >= 0)
            return known
    else:
        def is_code(address: int) -> bool:
            known = cache.get(address)
            if known is None:
                region = memory_map.find(address)
                known = cache[address] = region is not None and region.kind in CODE_KINDS
            return known
    return is_code


def unwind_stack(target, pc: int, sp: int, fp: int, ra: int, is_code) -> list[int]:
    """A halted target's return addresses, innermost first (pc excluded): one block read at sp, single reads past it."""
    top = linux_stack_top(sp)
    size = max(0, min(STACK_BLOCK, top - sp))
    try:
        block = target.read_memory(sp, size) if size else b""
    except TargetError:
        block = b""

    def read_word(address: int) -> int | None:
        offset = address - sp
        if 0 <= offset and offset + 4 <= len(block):
            return int.from_bytes(block[offset:offset + 4], "little")
        try:
            return int.from_bytes(target.read_memory(address, 4), "little")
        except TargetError:
            return None

    return unwind_frame_pointers(pc, sp, fp, ra, read_word=read_word, is_code=is_code).pcs[1:]


def choose_sampler(target, memory_map, *, stacks: bool, symbols=None, pipeline: bool | None = None,
                   cycles: bool = False, reply_wait: str = "auto", back_to_back: bool = False):
    """(take, sampler): take() -> (pc, stack, hit, acc, cycles) over the transport's sampler (targets/base.py
    open_sampler), which plans the halt, the reads and the resume; the target must be running (planning may halt and
    resume it). pipeline, reply_wait and back_to_back are passed on to the transport (rsp:// uses them; others have no
    such choice; back_to_back only without stacks, whose unwinding reads between samples).
    """
    if stacks:
        require_riscv(target, "--stacks (RISC-V frame-pointer unwinding)")
    counters_at = counter_address(memory_map)
    request = SampleRequest(registers=("pc", "sp", "fp", "ra") if stacks else ("pc",),
                            reads=((counters_at, 8),) if counters_at is not None else (),
                            read_names=("counters",) if counters_at is not None else (), cycles=cycles,
                            resume=not stacks, pipeline=pipeline, reply_wait=reply_wait,
                            back_to_back=back_to_back and not stacks)
    sampler = open_sampler(target, request)
    is_code = code_predicate(symbols, memory_map)
    grab = sampler.take
    cost = sampler.cost = [0, 0, 0]        # samples, round trips, transfers (summed where the transport counts)

    def take():
        sample = grab()
        registers, pc = sample.registers, sample.registers["pc"]
        hit = acc = stack = None
        if sample.memory:
            c = sample.memory[0]
            hit = int.from_bytes(c[0:4], "little")
            acc = int.from_bytes(c[4:8], "little")
        cost[0] += 1
        if sample.round_trips is not None:
            cost[1] += sample.round_trips
        if sample.transfers is not None:
            cost[2] += sample.transfers
        if stacks:
            try:
                stack = unwind_stack(target, pc, registers["sp"], registers["fp"], registers["ra"], is_code)
            finally:
                target.resume()
        return pc, stack, hit, acc, sample.cycles

    return take, sampler


PARK_INSNS = (0x10500073, 0x0000006F, 0xA001)    # wfi, `j .` (jal x0, 0) and its compressed form (c.j 0)


def _is_park(target, elf, lo: int, hi: int) -> bool:
    """Does the code from lo to hi (and the instruction before: a halted wfi shows the pc after it) hold a `wfi` or a
    jump to itself? Read from the target where it reads while running, else from the ELF; unknown is no."""
    from ..chip import riscv as rv
    from ..targets.base import READ_WHILE_RUNNING

    start, size = lo - 4, hi - lo + 8
    code = b""
    try:
        if READ_WHILE_RUNNING in target.capabilities:
            code = target.read_memory(start, size)
        elif elf is not None:
            from ..elf.code import read_elf_bytes
            code = read_elf_bytes(elf, start, size)
    except (TargetError, SymbolError):
        return False
    words = [int.from_bytes(code[i:i + 4], "little") for i in range(0, max(len(code) - 3, 0), 2)]
    halves = [int.from_bytes(code[i:i + 2], "little") for i in range(0, max(len(code) - 1, 0), 2)]
    return rv.INSN_WFI in words or PARK_INSNS[1] in words or PARK_INSNS[2] in halves


def until_condition(target, until: str, symbols=None, idle_samples: int = IDLE_SAMPLES, elf=None):
    """check(pc) -> why the run ends (a sentence) or None, for `until` = "exit", "idle" or a function's name.

    Idle is the pc within IDLE_SPAN bytes for idle_samples samples in a row around a `wfi` or a `j .`: a hot loop
    can stay as close (xipbench's copy loop; on the twin a halt lands on a translated block's start, so a one-block
    loop shows one pc), and is not idle."""
    if until == UNTIL_EXIT:
        require(target, STOP_REASON, "--until exit (the target saying its core stopped by itself)")

        def check(pc: int) -> str | None:
            reason = target.stop_reason()
            return f"exit: the core stopped by itself ({reason}) after the last sample (pc {pc:#x})" if reason else None
        return check
    if until == UNTIL_IDLE:
        recent: deque[int] = deque(maxlen=idle_samples)

        parks: dict[tuple[int, int], bool] = {}

        def check(pc: int) -> str | None:
            recent.append(pc)
            lo, hi = min(recent), max(recent)
            if len(recent) < idle_samples or hi - lo > IDLE_SPAN:
                return None
            if (lo, hi) not in parks:
                parks[lo, hi] = _is_park(target, elf, lo, hi)
            if parks[lo, hi]:
                return f"idle: the pc stayed within {hi - lo} bytes of {lo:#x} for {idle_samples} samples"
            return None
        return check
    if symbols is None:
        raise ValueError(f"--until {until}: a function's name needs the ELF's symbols")
    found = [s for s in symbols.symbols_named(until) if s.kind == "function"]
    if not found:
        symbols.address_of(until)     # the project's error, naming what was expected (raises)
        raise TargetError(f"--until {until}: expected a function; {until} is a data symbol or label")
    ranges = [(s.address, s.address + max(s.size, 2)) for s in found]

    def check(pc: int) -> str | None:
        return f"reached {until} (pc {pc:#x})" if any(lo <= pc < hi for lo, hi in ranges) else None
    return check


def _halted_target(before: dict | None, after: dict | None) -> dict | None:
    """The halted share as a paced twin sees it: wall time held halted against the cycles run at its clock."""
    if not before or not after:
        return None
    if "halted_cycles" in after:
        # the twin's DAP face: held halted for the probe model's time, in its own clk_sys cycles
        halted, cycles = after["halted_cycles"] - before["halted_cycles"], after["cycles"] - before["cycles"]
        return {"halted_s": halted / after["clk_sys_hz"], "halted_cycles": halted, "cycles": cycles,
                "share": halted / (halted + cycles) if halted + cycles > 0 else None,
                "meaning": "the twin's view in its own clk_sys cycles: the probe model's time from each halt to its "
                           "resume (halted_s at clk_sys) against the cycles it ran; not the host's time"}
    if "halted_s" not in after:
        return None
    halted = after["halted_s"] - before["halted_s"]
    running = (after["cycles"] - before["cycles"]) / after["clock_hz"]
    return {"halted_s": halted, "cycles": after["cycles"] - before["cycles"], "running_s_at_clock": running,
            "share": halted / (halted + running) if halted + running > 0 else None,
            "meaning": "the twin's view: wall time held halted (from each halt's cycle to the resume) against the "
                       "cycles it ran at its nominal clock; host-measured halts (halted_ns) also hold the host "
                       "simulating the cycles due at each halt"}


def _cost_per_sample(sampler) -> dict | None:
    """Mean probe round trips and transfers per sample as the transport counted them (the probe model's input)."""
    samples, trips, transfers = sampler.cost
    if not samples:
        return None
    return {"round_trips": trips / samples if trips else None, "transfers": transfers / samples if transfers else None}


def sample_profile(target, out_dir: str | Path, *, memory_map, duration: float | None = None,
                   samples: int | None = None, rate_hz: float | None = None, stacks: bool = False, symbols=None,
                   elf: str | Path | None = None, progress=None, stop=None, pipeline: bool | None = None,
                   cycles: bool = False, map_name: str | None = None, flush_rows: int = 8192,
                   reply_wait: str = "auto", jitter: bool = True, seed: int | None = None,
                   probe_model=None, until: str | None = None, idle_samples: int = IDLE_SAMPLES,
                   on_sample=None) -> SampleRun:
    """Sample `target` into `out_dir` until `samples` were taken, `duration` seconds passed, `until` is met ("exit",
    "idle" or a function's name: see the module docstring; a duration or count then caps it) or `stop` (a
    threading.Event, or the StopRequest Ctrl-C sets: cli/ctrl_c.py) is set.

    rate_hz paces the samples (None: as fast as the transport allows), with intervals jittered around the period
    unless jitter=False; seed repeats a run's intervals (None: a fresh one, recorded in meta.json). probe_model prices
    the probe work the target counts (probe_model.ProbeModel; None: probe_model.load_model()). cycles=True also reads mcycle with each
    sample (one more register read), so analyses can weight samples by the cycles between them. progress(count, elapsed_s) is called about ten
    times a second; on_sample(*row) gets every row as it goes to disk (`xipscope top`'s live view). With only `stop`
given, the run lasts until it is set. A target that fails mid-run leaves every sample taken on disk and meta.json saying what happened;
    the TargetError is raised after that, naming the directory.
    """
    if duration is None and samples is None and until is None and stop is None:
        raise ValueError("give duration, samples, until or stop")
    out_dir = Path(out_dir)
    # Imported now, not at the first flush, where they would stall sampling for a second (pyarrow pulls in pandas).
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    writer = SampleWriter(out_dir, flush_rows=flush_rows)
    started_halted = target.state() != "running"
    paced = PACING in target.capabilities
    if paced and target.pacing() is None and (started_halted or MODEL in target.capabilities):
        # A twin in-process (sim://, pyocd://twin:): unpaced, its halts would land where the host spends its time
        # (sim/pacing.py). One that runs is halted for it first (its clock then starts at the resume below); a
        # served twin runs as its server was started (--clock-hz).
        if not started_halted:
            target.halt()
        target.pace()
    # The kernel's emulated-AMO counter and the model's truth as the run starts, read at one moment and before
    # choosing a sampler (probing one resumes the target).
    amo_counter = _amo_counter(symbols)
    truth_before = amos_before = None
    with _held(target) if amo_counter is not None else contextlib.nullcontext():
        if amo_counter is not None:
            amos_before = _read_word(target, amo_counter, symbols)
        if MODEL in target.capabilities and hasattr(target, "ground_truth"):
            truth_before = target.ground_truth()
    # Without a rate, each sample follows the last at once: the transport may overlap them (back_to_back).
    take, sampler = choose_sampler(target, memory_map, stacks=stacks, symbols=symbols, pipeline=pipeline,
                                   cycles=cycles, reply_wait=reply_wait, back_to_back=not rate_hz)
    finish = getattr(sampler, "finish", None)
    # rsp:// back to back with its native loop: samples come in batches (BATCH at most), checked per batch for the
    # deadline, a stop and progress; an `until` met inside one ends the run there, the samples after it dropped.
    batch = getattr(sampler, "take_batch", None)
    dropped = 0
    # Back to back, a sample's halt went out as the last one ended: its halted time counts from there.
    overlapped = getattr(sampler, "back_to_back", False)
    until_met = until_condition(target, until, symbols, idle_samples, elf) if until else None
    from_resume = paced and target.pacing() is not None   # a paced model: intervals count running time (docstring)
    if rate_hz and jitter and seed is None:
        seed = secrets.randbits(32)
    jittered = bool(rate_hz and jitter)
    if probe_model is None:
        from ..probe_model import load_model
        probe_model = load_model()
    target.use_probe_model(probe_model)     # the twin's DAP face holds its core halted for this model's time

    meta = {
        "tool": f"xipscope {__version__}",
        "target": target.url,
        "hart": getattr(target, "hart", None),    # the RISC-V hart sampled (openocd://, pyocd://: ?hart=N)
        "elf": str(Path(elf).resolve()) if elf else None,
        "elf_sha256": file_sha256(elf) if elf else None,
        "map": map_name or memory_map.name,    # what `xipscope report` loads the map by (a name or a TOML path)
        "memory_map": memory_map.to_json(),
        "counters": {"address": counter_address(memory_map), "policy": COUNTER_POLICY}
        if counter_address(memory_map) is not None else None,
        "rate_hz_requested": rate_hz,
        "jitter": {"seed": seed, "intervals": f"uniform in [{JITTER[0]}, {JITTER[1]}] x the period "
                                              "(random.Random(seed); --seed repeats them)"} if jittered else None,
        "samples_requested": samples,
        "duration_requested_s": duration,
        "until": until,
        "schedule": "each interval from the previous resume (a paced model's clock stops while halted)"
        if from_resume and rate_hz else None,
        "stacks": stacks,
        "mcycle": f"low 32 bits of {sampler.cycle_counter} read with each sample (weight "
                  "samples by its deltas)" if cycles else None,
        "stack_block_bytes": STACK_BLOCK if stacks else None,
        "transport": sampler.description,
        "model": MODEL in target.capabilities,     # the target is the twin: reports say so
        "halted_ns_meaning": "host-measured, from sending the halt until the sample's last reply arrived (pipelined: "
                             "the continue went out in the same write, so this is an upper bound)"
                             + ("; back to back, the halt went out as the sample before ended, and each sample's "
                                "time counts from there" if overlapped else ""),
        "resumed_at_start": started_halted,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if paced:
        meta["sim_clock"] = target.pacing()

    # The model's clock as the run starts, then the core runs: the first sample's interval (weight 0, its mcycle has
    # no reading before it) is one period, not the time spent setting up.
    clock_before = target.pacing() if paced else None
    period = int(1e9 / rate_hz) if rate_hz else 0
    intervals = sample_intervals(period, seed if jittered else None)
    scheduled = period and from_resume      # the interval the next resume starts, told to the model before it
    interval = next(intervals) if scheduled else 0
    if scheduled:
        target.halt_after(interval / 1e9)
    if target.state() != "running":
        target.resume()
    clock = time.perf_counter_ns
    counts_before = _probe_counts(target)
    halted_before = target.halted_cycles()
    count = 0
    schedule_resets = 0
    halted: list[int] = []
    ended_early = error = stop_reason = None
    start = clock()
    deadline = start + int(duration * 1e9) if duration is not None else None
    limit = samples if samples is not None else -1
    next_t = start
    next_progress = start
    try:
        while count != limit:
            now = clock()
            if deadline is not None and now >= deadline:
                break
            if stop is not None and stop.is_set():
                ended_early = "stopped by the user"
                break
            if scheduled:
                # Running time: the next halt one interval after the last resume (the sample's end); the model
                # stops at that interval's cycle however late the host asks, and is told the next interval now,
                # before this sample's resume starts it.
                next_t = (t1 if count else start) + interval
                if now < next_t:
                    time.sleep((next_t - now) / 1e9)
                interval = next(intervals)
                target.halt_after(interval / 1e9)
            elif period:
                # A fixed schedule: a late sample does not move the ones after it, so the spacing averages out to
                # the period; only a run more than a period behind gives up the lost slots (counted).
                if now < next_t:
                    time.sleep((next_t - now) / 1e9)
                elif now - next_t > period:
                    next_t = now
                    schedule_resets += 1
                next_t += next(intervals)
            if batch is None:
                t0 = t1 if overlapped and count else clock()
                pc, stack, hit, acc, mcycle = take()
                t1 = clock()
                columns = ([t0 - start], [pc], [t1 - t0], [hit], [acc], [stack], [mcycle])
            else:
                t0 = t1 if count else clock()
                columns = _batch_columns(batch(BATCH if limit < 0 else min(BATCH, limit - count)), t0, start,
                                         sampler.cost, sampler.round_trips, sampler.transfers)
            pcs = columns[1]
            if until_met is not None:
                for i, pc in enumerate(pcs):
                    stop_reason = until_met(pc)
                    if stop_reason is not None:
                        dropped = len(pcs) - i - 1
                        columns = [column[:i + 1] for column in columns]
                        break
            writer.add_columns(*columns)
            if on_sample is not None:
                for row in zip(*columns):
                    on_sample(*row)
            halted += columns[2]
            count += len(columns[1])
            t1 = start + columns[0][-1] + columns[2][-1]
            if stop_reason is not None:
                break
            if progress is not None and t1 >= next_progress:
                progress(count, (t1 - start) / 1e9)
                next_progress = t1 + 100_000_000
    except TargetError as e:
        error = str(e)
        ended_early = "target error"
    except KeyboardInterrupt:
        ended_early = "interrupted"
        error = "KeyboardInterrupt"
    finally:
        elapsed = (clock() - start) / 1e9
        if finish is not None and (error is None or ended_early == "interrupted"):
            try:    # (a sample cut short by Ctrl-C or an error sent nothing ahead: finish() then has nothing to do)
                finish()
            except TargetError as e:
                error, ended_early = str(e), "target error"
        if until and stop_reason is None and ended_early is None:
            ended_early = f"the {'duration' if count != limit else 'sample count'} ran out before --until {until}"
        after = truth_after = clock_after = None
        try:    # the counter and the truth first, as close to the last sample as the host allows; the rows after
            clock_after = target.pacing() if paced and error is None else None
            if error is None and (amo_counter is not None or truth_before is not None):
                with _held(target) if amo_counter is not None else contextlib.nullcontext():
                    if amo_counter is not None:
                        after = _read_word(target, amo_counter, symbols)
                    if truth_before is not None:
                        truth_after = target.ground_truth()
        finally:
            writer.close()
        if after is not None:
            meta["emulated_atomics"] = {
                "counter": EMULATED_AMO_COUNTER, "address": amo_counter, "before": amos_before, "after": after,
                "count": (after - amos_before) % (1 << 8 * symbols.word_size),
                "meaning": "AMOs the kernel emulated in its trap path during the run (store/AMO access faults, "
                           "mcause 7, returned past the AMO), from its counter"}
        if truth_after is not None:
            (out_dir / TRUTH_FILE).write_text(json.dumps(
                {"model": truth_after.get("model"), "before": truth_before, "after": truth_after}, indent=1) + "\n")
        meta.update({
            "samples": count,
            "duration_s": elapsed,
            "rate_hz_achieved": count / elapsed if elapsed > 0 else None,
            "schedule_resets": schedule_resets if period else None,
            "halted_ns": _halted_stats(halted, elapsed),
            "reply_wait": None,
            **(sampler.details() or {}),
            "cost_per_sample": _cost_per_sample(sampler),
            "probe_model": _probe_model(target, counts_before, halted_before, count, probe_model),
            "ended_early": ended_early,
            "stop_reason": stop_reason or ended_early or ("duration" if count != limit else "sample count"),
            "error": error,
            **({"native_batch": {"size": BATCH, "dropped_after_until": dropped,
                                 "meaning": "samples taken in batches by a native loop; those a batch took after "
                                            "the sample that met --until are dropped"}} if batch else {}),
            "truth": TRUTH_FILE if truth_before is not None and error is None else None,
        })
        if clock_after is not None:
            meta["sim_clock"] = clock_after
            meta["halted_target"] = _halted_target(clock_before, clock_after)
        write_meta(out_dir, meta)
        if progress is not None:
            progress(count, elapsed)
    if ended_early == "target error":
        raise TargetError(f"{error}; the {count} samples taken before that are in {out_dir} (meta.json says so)")
    if ended_early == "interrupted":
        raise KeyboardInterrupt
    return SampleRun(out_dir, meta)


def _batch_columns(taken, t0: int, start: int, cost: list, round_trips: int, transfers: int) -> tuple[list, ...]:
    """A batch's samples as the writer's columns (t_ns, pc, halted_ns, xip_hit, xip_acc, stack, mcycle): back to
    back, a sample's halt went out as the one before it ended, so its time counts from there; the counters split from
    the 8-byte read (CTR_HIT, then CTR_ACC, little-endian)."""
    ends, pcs, memory = taken
    n = len(pcs)
    cost[0] += n
    cost[1] += n * round_trips
    cost[2] += n * transfers
    begins = [t0, *ends[:-1]]
    nothing = [None] * n
    if memory[0] is None:
        hits = accs = nothing
    else:
        hits = [m & 0xFFFFFFFF for m in memory]
        accs = [m >> 32 for m in memory]
    return ([b - start for b in begins], pcs, [e - b for b, e in zip(begins, ends)], hits, accs, nothing, nothing)


def _amo_counter(symbols) -> int | None:
    """The address of a kernel's emulated-AMO counter (EMULATED_AMO_COUNTER), or None: not this kernel's."""
    found = symbols.symbols_named(EMULATED_AMO_COUNTER) if symbols is not None else []
    return found[0].address if len(found) == 1 else None


@contextlib.contextmanager
def _held(target):
    """The target halted for what the block reads, and resumed after if it ran: the kernel's counter and the model's
    truth read at one moment, so the two count the same instructions. (Only around a counter read, which halts
    anyway: a hold costs the twin's DAP face halted time, which the probe model would price.)"""
    running = target.state() == "running"
    if running:
        target.halt()
    try:
        yield
    finally:
        if running:
            target.resume()


def _read_word(target, address: int, symbols) -> int:
    """A word of the target's memory (the target halted or held by the caller)."""
    return int.from_bytes(target.read_memory(address, symbols.word_size), "little")


def _probe_model(target, before, halted_before, samples: int, model) -> dict | None:
    """The probe model's price of the run's counted probe work per sample, where the target counts it; the halted
    time from the target's own clock where it keeps one (the twin's DAP face)."""
    if before is None or not samples:
        return None
    halted = target.halted_cycles() - halted_before if halted_before is not None else None
    return model.price(_probe_counts(target) - before, samples, halted_cycles=halted)


def _probe_counts(target):
    counts = getattr(target, "probe_counts", None)     # Target.probe_counts (base.py); None where not counted
    return counts() if counts is not None else None


def _halted_stats(halted: list[int], elapsed_s: float) -> dict | None:
    if not halted:
        return None
    ordered = sorted(halted)
    return {
        "median": int(statistics.median(ordered)),
        "p90": ordered[int(0.9 * (len(ordered) - 1))],
        "max": ordered[-1],
        "mean": int(sum(ordered) / len(ordered)),
        "fraction_of_run": sum(ordered) / (elapsed_s * 1e9) if elapsed_s > 0 else None,
    }
