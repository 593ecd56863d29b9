"""Statistical PC sampling of a running target: halt, read pc (and the XIP counters, and a stack), resume, repeat.

One sample is: stop the core, read pc (with stacks: sp, fp and ra from the same `g`, then the stack memory in one batched
read, unwound locally with unwind.py), read XIP_CTRL CTR_HIT and CTR_ACC in one 8-byte read when the memory map has
XIP_CTRL, and let the core run on. Each sample records how long the core was held (halted_ns), so a report can state
how intrusive the run was.

Transports:
- rsp:// gets a fast path (RspTarget.sample): the interrupt, `g`, the counter `m` and `c` go out in one write and the
  replies are read after it, one round trip per sample. Whether the server allows that is probed at the start
  (RspTarget.probe_pipelining), not assumed; where it does not, each reply is awaited (still no extra requests).
- Any other Target (sim://, ...) is sampled through the protocol: halt(), read_register("pc"), read_memory(), resume().

Counters are stored as read and never cleared (see samples.py): clearing them would race with firmware that reads them
itself (xipbench does) and would cost a write per sample. Analyses take deltas and treat a saturated or backwards
interval as unknown.

Samples go to disk in Parquet parts as they are taken (SampleWriter), and meta.json is written at the end, also when the
target dies (with the error) or the user stops the run (Ctrl-C: the sample in progress completes, then the run ends).

With a rate, samples follow a fixed schedule (a late one does not shift the rest). Where the spacing is uneven anyway
(a loaded host, a slow probe), cycles=True reads mcycle with each sample: weighting each sample by the cycles since the
previous one keeps the estimate honest (on the twin under a load of 6 on 2 cores: TV 0.024 weighted, 0.039 not).
"""

from __future__ import annotations

import hashlib
import statistics
import time
from binascii import unhexlify
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..chip import rp2350 as rp
from ..errors import TargetError
from ..unwind import linux_stack_top, unwind_frame_pointers
from .samples import SampleWriter, write_meta

COUNTER_POLICY = "raw readings, deltas in analysis (never cleared by the sampler; saturated or backwards = unknown)"
COUNTER_REGION = "xip_ctrl"         # the memory map region whose presence means CTR_HIT/CTR_ACC can be read
STACK_BLOCK = 512                   # bytes of stack read in one transfer from sp; frames beyond it are read one by one
CODE_KINDS = ("rom", "xip-flash", "xip-psram", "sram")


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


def _rsp_sampler(target, where: dict, counters_at: int | None, stacks: bool, is_code, pipelined: bool,
                 mcycle_regnum: int | None):
    """take() -> (pc, stack, hit, acc, mcycle) over RspTarget.sample: one round trip per sample when pipelined."""
    pc_at = where["pc"]
    reads = ((counters_at, 8),) if counters_at is not None else ()
    singles = (mcycle_regnum,) if mcycle_regnum is not None else ()
    sample = target.sample

    def take():
        regs, mems, values = sample(reads, pipelined=pipelined, resume=not stacks, singles=singles)
        pc = int.from_bytes(unhexlify(regs[pc_at]), "little")
        hit = acc = stack = None
        mcycle = values[0] & 0xFFFFFFFF if values else None
        if mems:
            c = mems[0]
            hit = int.from_bytes(c[0:4], "little")
            acc = int.from_bytes(c[4:8], "little")
        if stacks:
            try:
                sp, fp, ra = (int.from_bytes(unhexlify(regs[where[n]]), "little") for n in ("sp", "fp", "ra"))
                stack = unwind_stack(target, pc, sp, fp, ra, is_code)
            finally:
                target.resume()
        return pc, stack, hit, acc, mcycle

    return take


class ReplyWaitChooser:
    """Wraps an rsp:// take(): the first samples alternate, in blocks, between blocking on the server's replies and
    polling for them (RspConnection.poll_replies); after that the faster way, by median time per sample, stays.

    Which is faster depends on where the OS puts us and the server: on this project's 2-core VMs a raw pipelined loop
    against QEMU pinned to the other CPU took 15,000 samples/s polling against 5,900 blocked, and sharing QEMU's CPU
    polling fell to 340/s (bench/bench_profile.py measures xipscope both ways). So it is measured, not assumed, and polling, which keeps a CPU busy, must win
    clearly (POLL_MARGIN) to be kept."""

    ROUNDS = 2          # blocked-on, then polled, this many times
    BLOCK = 128         # samples per block
    POLL_MARGIN = 0.9   # polling stays only under this fraction of blocking's median sample time

    def __init__(self, take, conn, mode: str = "auto"):
        self._take = take
        self._conn = conn
        self.mode = mode
        self._times: dict[str, list[int]] = {"block": [], "poll": []}
        self._calibrating = mode == "auto"
        self._count = 0
        conn.poll_replies = mode == "poll"

    def __call__(self):
        if not self._calibrating:
            return self._take()
        way = "poll" if (self._count // self.BLOCK) % 2 else "block"
        self._conn.poll_replies = way == "poll"
        t0 = time.perf_counter_ns()
        sample = self._take()
        self._times[way].append(time.perf_counter_ns() - t0)
        self._count += 1
        if self._count == 2 * self.ROUNDS * self.BLOCK:
            block, poll = (statistics.median(self._times[w]) for w in ("block", "poll"))
            self.mode = "poll" if poll < self.POLL_MARGIN * block else "block"
            self._conn.poll_replies = self.mode == "poll"
            self._calibrating = False
        return sample

    def describe(self) -> dict:
        measured = {w: round(statistics.median(t) / 1000, 1) for w, t in self._times.items() if t}
        return {"replies": ("polled" if self.mode == "poll" else "blocked on") if not self._calibrating
                else "still calibrating", "chosen_by": "measurement" if measured else "request",
                "median_sample_us": measured or None}


def _generic_sampler(target, counters_at: int | None, stacks: bool, is_code, cycles: bool):
    """take() through the Target protocol, for transports without a fast path (sim:// and others). With cycles, the
    cycle counter is mcycle, or the target's own (read_cycle_counter: DWT_CYCCNT on an Arm core)."""
    read_cycles = getattr(target, "read_cycle_counter", None) or (lambda: target.read_register("mcycle"))

    def take():
        target.halt()
        try:
            hit = acc = stack = None
            mcycle = read_cycles() & 0xFFFFFFFF if cycles else None
            if stacks:
                regs = target.read_registers()
                pc = regs["pc"]
                stack = unwind_stack(target, pc, regs["sp"], regs.get("fp", regs.get("s0", 0)), regs["ra"], is_code)
            else:
                pc = target.read_register("pc")
            if counters_at is not None:
                c = target.read_memory(counters_at, 8)
                hit = int.from_bytes(c[0:4], "little")
                acc = int.from_bytes(c[4:8], "little")
        finally:
            target.resume()
        return pc, stack, hit, acc, mcycle

    return take


def choose_sampler(target, memory_map, *, stacks: bool, symbols=None, pipeline: bool | None = None,
                   cycles: bool = False, reply_wait: str = "auto"):
    """(take, transport description) for this target; the target must be running (probing pipelining halts it).
    reply_wait (rsp:// only): "block", "poll" or "auto" (measure both, keep the faster: ReplyWaitChooser)."""
    from ..target.base import require_riscv
    from ..target.rsp import RspTarget

    if stacks:
        require_riscv(target, "--stacks (RISC-V frame-pointer unwinding)")
    if cycles and not hasattr(target, "read_cycle_counter"):
        require_riscv(target, "--cycles (the mcycle CSR)")
    counters_at = counter_address(memory_map)
    is_code = code_predicate(symbols, memory_map)
    if isinstance(target, RspTarget):
        if target.state() == "running":
            target.halt()
        # The register layout comes from the target description, which servers send only while halted.
        where = target.g_slices(["pc", "sp", "fp", "ra"] if stacks else ["pc"])
        mcycle_regnum = target.register_info("mcycle").number if cycles else None
        target.resume()
        allowed = target.probe_pipelining() if pipeline is not False else False   # halts the target
        if target.state() != "running":
            target.resume()
        mode = "pipelined" if allowed else "waiting"
        note = (f"rsp {mode}: interrupt, g{', m (counters)' if counters_at is not None else ''}"
                f"{', m (stack)' if stacks else ''}, c"
                + (" in one write, replies read after it" if allowed and not stacks else
                   " with the stack read after the g reply" if allowed else ", each reply awaited")
                + (" (server in ack mode: replies acked by the next packet)" if target.conn.ack_mode and allowed else "")
                + ("; mcycle by 'p'" if cycles else ""))
        if pipeline and not allowed:
            note += "; pipelining was asked for but the server did not answer a pipelined g (probed)"
        take = _rsp_sampler(target, where, counters_at, stacks, is_code, allowed, mcycle_regnum)
        return ReplyWaitChooser(take, target.conn, reply_wait), note
    sample_once = getattr(target, "sample_pc_and_counters", None)   # openocd://, pyocd://
    if sample_once is not None and counters_at is not None and not stacks and not cycles:
        base = counters_at - rp.XIP_CTRL_CTR_HIT

        def take():
            s = sample_once(base)
            return s.pc, None, s.xip_hit, s.xip_acc, None

        return take, f"{target.url.split(':', 1)[0]}: halt, pc, counters, resume in one round trip " \
                     "(sample_pc_and_counters)"
    return _generic_sampler(target, counters_at, stacks, is_code, cycles), \
        f"{target.url.split(':', 1)[0]}: halt, read pc{', stack' if stacks else ''}" \
        f"{', ' + getattr(target, 'cycle_counter_name', 'mcycle') if cycles else ''}" \
        f"{', counters' if counters_at is not None else ''}, resume through the Target protocol"


def sample_profile(target, out_dir: str | Path, *, memory_map, duration: float | None = None,
                   samples: int | None = None, rate_hz: float | None = None, stacks: bool = False, symbols=None,
                   elf: str | Path | None = None, progress=None, stop=None, pipeline: bool | None = None,
                   cycles: bool = False, map_name: str | None = None, flush_rows: int = 8192,
                   reply_wait: str = "auto") -> SampleRun:
    """Sample `target` into `out_dir` until `samples` were taken, `duration` seconds passed, or `stop` (an Event) is set.

    rate_hz paces the samples (None: as fast as the transport allows). cycles=True also reads mcycle with each
    sample (one more register read), so analyses can weight samples by the cycles between them. progress(count, elapsed_s) is called about ten
    times a second. A target that fails mid-run leaves every sample taken on disk and meta.json saying what happened;
    the TargetError is raised after that, naming the directory.
    """
    if duration is None and samples is None:
        raise ValueError("give duration or samples")
    out_dir = Path(out_dir)
    # Imported now, not at the first flush, where they would stall sampling for a second (pyarrow pulls in pandas).
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    writer = SampleWriter(out_dir, flush_rows=flush_rows)
    started_halted = target.state() != "running"
    if hasattr(target, "pace") and target.pacing() is None and started_halted:
        # The twin in-process: unpaced, its halts would land where the host spends its time (sim/pacing.py).
        from ..sim.pacing import DEFAULT_CLOCK_HZ
        target.pace(DEFAULT_CLOCK_HZ)
    take, transport = choose_sampler(target, memory_map, stacks=stacks, symbols=symbols, pipeline=pipeline,
                                     cycles=cycles, reply_wait=reply_wait)
    if target.state() != "running":
        target.resume()

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
        "samples_requested": samples,
        "duration_requested_s": duration,
        "stacks": stacks,
        "mcycle": f"low 32 bits of {getattr(target, 'cycle_counter_name', 'mcycle')} read with each sample (weight "
                  "samples by its deltas)" if cycles else None,
        "stack_block_bytes": STACK_BLOCK if stacks else None,
        "transport": transport,
        "halted_ns_meaning": "host-measured, from sending the halt until the sample's last reply arrived (pipelined: "
                             "the continue went out in the same write, so this is an upper bound)",
        "resumed_at_start": started_halted,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    pacing = getattr(target, "pacing", None)
    if pacing is not None:
        meta["sim_clock"] = pacing()

    clock = time.perf_counter_ns
    add = writer.add
    period = int(1e9 / rate_hz) if rate_hz else 0
    count = 0
    schedule_resets = 0
    halted: list[int] = []
    ended_early = error = None
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
            if period:
                # A fixed schedule: a late sample does not move the ones after it, so the spacing averages out to
                # the period; only a run more than a period behind gives up the lost slots (counted).
                if now < next_t:
                    time.sleep((next_t - now) / 1e9)
                elif now - next_t > period:
                    next_t = now
                    schedule_resets += 1
                next_t += period
            t0 = clock()
            pc, stack, hit, acc, mcycle = take()
            t1 = clock()
            add(t0 - start, pc, t1 - t0, hit, acc, stack, mcycle)
            halted.append(t1 - t0)
            count += 1
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
        writer.close()
        meta.update({
            "samples": count,
            "duration_s": elapsed,
            "rate_hz_achieved": count / elapsed if elapsed > 0 else None,
            "schedule_resets": schedule_resets if period else None,
            "halted_ns": _halted_stats(halted, elapsed),
            "reply_wait": take.describe() if isinstance(take, ReplyWaitChooser) else None,
            "ended_early": ended_early,
            "error": error,
        })
        if pacing is not None and error is None:
            meta["sim_clock"] = pacing()
        write_meta(out_dir, meta)
        if progress is not None:
            progress(count, elapsed)
    if ended_early == "target error":
        raise TargetError(f"{error}; the {count} samples taken before that are in {out_dir} (meta.json says so)")
    if ended_early == "interrupted":
        raise KeyboardInterrupt
    return SampleRun(out_dir, meta)


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


# --- the command line: `xipscope profile` ---------------------------------------------------------------------------

def add_command(commands) -> None:
    p = commands.add_parser(
        "profile", help="sample the PC (and XIP cache counters, and stacks) of a running target into a profile directory",
        description="Statistical profiler: halts the core briefly, reads pc (with --stacks also a frame-pointer stack) "
                    "and, when the memory map has XIP_CTRL, the CTR_HIT/CTR_ACC counters; resumes; repeats. Samples "
                    "are written as they are taken (Parquet parts) with meta.json beside them.")
    p.add_argument("--target", required=True, metavar="URL",
                   help="rsp://HOST:PORT (any GDB server: QEMU -gdb, OpenOCD :3333, pyOCD, xipscope sim --gdb-port) "
                        "or sim://FIRMWARE.elf (the RP2350 twin, a model, in-process)")
    p.add_argument("--elf", required=True, metavar="FILE", help="the ELF running on the target (for symbols and the hash)")
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--duration", type=float, metavar="S", help="sample for S seconds (default 5)")
    amount.add_argument("--samples", type=int, metavar="N", help="take N samples")
    p.add_argument("--rate", type=float, metavar="HZ", help="samples per second (default: as fast as the transport allows)")
    p.add_argument("--stacks", action="store_true", help="also unwind the frame-pointer chain at each sample")
    p.add_argument("--cycles", action="store_true",
                   help="also read mcycle at each sample, so the report can weight samples by the cycles between them")
    p.add_argument("--map", default="rp2350", metavar="NAME|FILE.toml",
                   help="memory map: rp2350 (has the XIP counters), qemu-virt, or a TOML file (default rp2350)")
    p.add_argument("--out", required=True, metavar="DIR", help="new directory for samples/ and meta.json")
    p.add_argument("--no-pipeline", action="store_true",
                   help="rsp://: wait for each reply instead of pipelining (the default probes what the server allows)")
    p.add_argument("--reply-wait", choices=("auto", "block", "poll"), default="auto",
                   help="rsp://: block on each reply, poll for it (a busy CPU, fewer wake-ups), or measure both on the "
                        "first samples and keep the faster (default auto)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each target reply")
    p.set_defaults(func=cmd_profile)


def cmd_profile(args) -> int:
    import signal
    import sys
    import threading

    from ..chip.memory_map import get_memory_map
    from ..elf.symbols import load_symbols
    from ..target import open_target

    memory_map = get_memory_map(args.map)
    symbols = load_symbols(args.elf)
    duration = args.duration if args.duration is not None or args.samples is not None else 5.0
    stop = threading.Event()

    def on_sigint(_signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt   # a second Ctrl-C: stop now
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    target = open_target(args.target, timeout=args.timeout)
    try:
        with _progress_bar(duration, args.samples) as progress:
            run = sample_profile(target, args.out, memory_map=memory_map, duration=duration, samples=args.samples,
                                 rate_hz=args.rate, stacks=args.stacks, symbols=symbols, elf=args.elf,
                                 progress=progress, stop=stop, pipeline=False if args.no_pipeline else None,
                                 cycles=args.cycles, map_name=args.map, reply_wait=args.reply_wait)
    finally:
        signal.signal(signal.SIGINT, previous)
        target.close()
    meta = run.meta
    print(f"xipscope profile: {meta['samples']} samples in {meta['duration_s']:.2f} s "
          f"({meta['rate_hz_achieved'] or 0:.0f}/s) via {meta['transport']}"
          + (f"; ended early: {meta['ended_early']}" if meta["ended_early"] else ""), file=sys.stderr)
    from .cli import print_report
    return print_report(args.out, symbols, memory_map)


class _progress_bar:
    """A rich progress bar on stderr with the live sample rate; progress(count, elapsed_s) updates it."""

    def __init__(self, duration: float | None, samples: int | None):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.by_samples = samples is not None
        self.total = samples if self.by_samples else duration
        self.bar = Progress(TextColumn("[bold]profile"), BarColumn(), TextColumn("{task.fields[count]} samples"),
                            TextColumn("{task.fields[rate]}/s"), TimeElapsedColumn(),
                            console=Console(stderr=True))
        self.task = None

    def __enter__(self):
        self.bar.start()
        self.task = self.bar.add_task("profile", total=self.total, count=0, rate="-")
        return self.update

    def update(self, count: int, elapsed: float) -> None:
        rate = f"{count / elapsed:,.0f}" if elapsed > 0 else "-"
        self.bar.update(self.task, completed=count if self.by_samples else min(elapsed, self.total),
                        count=count, rate=rate)

    def __exit__(self, *exc):
        self.bar.stop()
        return False
