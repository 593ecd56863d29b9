"""`xipscope profile`: sample a running target into a profile directory (profile/sampler.py), with a progress bar,
then print the report (as `xipscope report` does)."""

from __future__ import annotations

from . import options

DESCRIPTION = ("Statistical profiler: halts the core briefly, reads pc (with --stacks also a frame-pointer stack) "
               "and, when the memory map has XIP_CTRL, the CTR_HIT/CTR_ACC counters; resumes; repeats. Samples "
               "are written as they are taken (Parquet parts) with meta.json beside them.")
EPILOG = """examples:
  xipscope profile --target sim://xipbench.elf --elf xipbench.elf --until exit --out prof1
  xipscope profile --target rsp://127.0.0.1:3333 --elf firmware.elf --duration 10 --stacks --out prof2
  xipscope profile --target rsp://127.0.0.1:1234 --elf vmlinux --map qemu-virt --rate 1000 --out prof3"""


def add_arguments(p) -> None:
    # The idle rule's numbers are the sampler's (one copy): this parser is built only for `xipscope profile`, whose
    # run imports the sampler anyway.
    from ..profile.sampler import IDLE_SAMPLES, IDLE_SPAN

    options.add_target(p, what="the running target to sample")
    options.add_elf(p, "the ELF running on the target (for symbols and the hash)", required=True)
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--duration", type=float, metavar="S",
                        help="sample for S seconds (default 5 without --until; with it, a cap)")
    amount.add_argument("--samples", type=int, metavar="N", help="take N samples (with --until, a cap)")
    p.add_argument("--until", metavar="exit|idle|FUNCTION",
                   help="run the workload to its end: exit (the target says its core stopped by itself, e.g. the "
                        "twin's firmware ended), idle (the pc stays in a park or wfi loop for --idle-samples "
                        "samples), or FUNCTION (a sample lands in it)")
    p.add_argument("--idle-samples", type=int, default=IDLE_SAMPLES, metavar="N",
                   help=f"with --until idle: samples in a row within {IDLE_SPAN} bytes (default {IDLE_SAMPLES})")
    p.add_argument("--rate", type=float, metavar="HZ", help="samples per second (default: as fast as the transport allows)")
    p.add_argument("--no-jitter", action="store_true",
                   help="with --rate: sample at exactly the period (default: intervals uniform in 0.5-1.5x the "
                        "period, so samples can't lock in phase with a periodic tick)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="with --rate: the jitter's seed, to repeat a run's spacing (default: a fresh one, in meta.json)")
    p.add_argument("--stacks", action="store_true", help="also unwind the frame-pointer chain at each sample")
    p.add_argument("--cycles", action="store_true",
                   help="also read mcycle at each sample, so the report can weight samples by the cycles between them")
    options.add_map(p)
    p.add_argument("--out", required=True, metavar="DIR", help="new directory for samples/ and meta.json")
    p.add_argument("--no-pipeline", action="store_true",
                   help="rsp://: wait for each reply instead of pipelining (the default probes what the server allows)")
    p.add_argument("--reply-wait", choices=("auto", "block", "poll"), default="auto",
                   help="rsp://: block on each reply, poll for it (a busy CPU, fewer wake-ups), or measure both on the "
                        "first samples and keep the faster (default auto)")
    options.add_timeout(p)


def run(args) -> int:
    import sys

    from ..chip.memory_map import get_memory_map
    from ..elf.symbols import load_symbols
    from ..profile.sampler import sample_profile
    from ..targets import open_target
    from .ctrl_c import ctrl_c_stops
    from .progress import ProgressDisplay
    from .report import print_report

    memory_map = get_memory_map(args.map)
    symbols = load_symbols(args.elf)
    duration = args.duration if args.duration is not None or args.samples is not None or args.until else 5.0
    # Ctrl-C ends the run cleanly, the samples so far written; a second one stops at once.
    with ctrl_c_stops(second_raises=True) as stop:
        target = open_target(args.target, timeout=args.timeout)
        try:
            by_samples = args.samples is not None      # None (--until alone): no end known
            with ProgressDisplay("profile", args.samples if by_samples else duration) as shown:
                progress = show_samples(shown, by_samples)
                run = sample_profile(target, args.out, memory_map=memory_map, duration=duration,
                                     samples=args.samples, rate_hz=args.rate, stacks=args.stacks, symbols=symbols,
                                     elf=args.elf, progress=progress, stop=stop,
                                     pipeline=False if args.no_pipeline else None, cycles=args.cycles,
                                     map_name=args.map, reply_wait=args.reply_wait, jitter=not args.no_jitter,
                                     seed=args.seed, until=args.until, idle_samples=args.idle_samples)
        finally:
            target.close()
    meta = run.meta
    print(f"xipscope profile: {meta['samples']} samples in {meta['duration_s']:.2f} s "
          f"({meta['rate_hz_achieved'] or 0:.0f}/s) via {meta['transport']}"
          + (f"; ended early: {meta['ended_early']}" if meta["ended_early"] else "")
          + (f"; until {meta['until']}: {meta['stop_reason']}" if meta["until"] and not meta["ended_early"] else ""),
          file=sys.stderr)
    modelled = meta.get("probe_model")
    if modelled:
        print(f"xipscope profile: probe model (a model, not timed): {modelled['samples_per_s']:,.0f} samples/s and "
              f"{modelled['halted_us']:.0f} us halted a sample on a board behind a probe at "
              f"{modelled['latency_us']:.0f} us a round trip, {modelled['wire_hz'] / 1e6:g} MHz wire "
              f"({modelled['per_sample']['round_trips']:.1f} round trips a sample)", file=sys.stderr)
    return print_report(args.out, symbols, memory_map)


def show_samples(shown, by_samples: bool):
    """The sampler's progress(count, elapsed_s) drawn on `shown` (a ProgressDisplay): towards the sample count, or
    towards the duration."""
    def update(count: int, elapsed: float) -> None:
        rate = f"{count / elapsed:,.0f}" if elapsed > 0 else "-"
        completed = count if by_samples else min(elapsed, shown.total or elapsed)
        shown.update(completed, f"{count} samples  {rate}/s")
    return update
