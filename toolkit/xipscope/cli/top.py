"""`xipscope top`: the live terminal view (profile/top.py) drawn with curses, refreshed every second."""

from __future__ import annotations

import sys

from . import options

REFRESH_S = 1.0
KEYS = "q quit   p pause   r reset"

DESCRIPTION = ("Sample a running target as `xipscope profile` does and show, refreshed every second, the hottest "
               "functions since the last reset with their memory region, the XIP cache hit rate of the last "
               "interval, samples per second and the share of the time the core was held halted. "
               f"Keys: {KEYS}. The samples are written to --out as a profile directory (`xipscope report` reads it "
               "afterwards).")
EPILOG = """examples:
  xipscope top --target sim://firmware/xipbench.elf --elf firmware/xipbench.elf --rate 500 --out top1
  xipscope top --target rsp://127.0.0.1:3333 --elf vmlinux --rate 1000 --out top2"""


def add_arguments(p) -> None:
    options.add_target(p, what="the running target to watch")
    options.add_elf(p, "the ELF running on the target (for symbols)", required=True)
    p.add_argument("--out", required=True, metavar="DIR", help="new directory for samples/ and meta.json")
    p.add_argument("--rate", type=float, metavar="HZ", help="samples per second (default: as fast as the transport allows)")
    options.add_map(p)
    options.add_timeout(p)


def run(args) -> int:
    import curses

    from ..chip.memory_map import get_memory_map
    from ..elf.symbols import load_symbols
    from ..profile.top import TopView, start_sampling
    from ..targets import open_target

    memory_map = get_memory_map(args.map)
    symbols = load_symbols(args.elf)
    target = open_target(args.target, timeout=args.timeout)
    from ..targets.base import PACING
    view = TopView(symbols, memory_map, pacing=target.pacing if PACING in target.capabilities else None)
    thread, stop, outcome = start_sampling(target, args.out, view, memory_map=memory_map, symbols=symbols,
                                           elf=args.elf, rate_hz=args.rate, map_name=args.map)
    try:
        curses.wrapper(_screen, view, thread, args.target)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        thread.join()
        target.close()
    run = outcome.get("run")
    if run is not None:
        print(f"xipscope top: {run.samples} samples in {run.meta['duration_s']:.1f} s written to {args.out} "
              f"(`xipscope report {args.out}`)", file=sys.stderr)
    if "error" in outcome:
        print(f"xipscope top: error: {outcome['error']}", file=sys.stderr)
        return 1
    return 0


def _screen(screen, view, thread, url: str) -> None:
    import curses
    import time

    curses.curs_set(0)
    screen.timeout(100)                  # getch waits at most 0.1 s, so keys answer at once and refreshes keep time
    next_refresh = 0.0
    frame = None
    while True:
        key = screen.getch()
        if key in (ord("q"), ord("Q")):
            return
        if key in (ord("p"), ord("P")):
            view.toggle_pause()
            next_refresh = 0.0
        elif key in (ord("r"), ord("R")):
            view.reset()
            next_refresh = 0.0
        now = time.monotonic()
        if now >= next_refresh:
            frame = view.refresh()
            next_refresh = now + REFRESH_S
            _draw(screen, frame, url, sampling=thread.is_alive())


def _draw(screen, frame, url: str, *, sampling: bool) -> None:
    height, width = screen.getmaxyx()
    state = "PAUSED (sampling goes on to disk)" if frame.paused else ("running" if sampling else "sampling ended")
    hit = f"{frame.hit_rate:6.1%}" if frame.hit_rate is not None else "   n/a"
    halted = f"{frame.halted_share:6.1%}" if frame.halted_share is not None else "   n/a"
    rate = f"{frame.samples_per_s:,.0f}" if frame.samples_per_s is not None else "-"
    lines = [f"xipscope top  {url}  [{state}]",
             f"XIP hit rate, last {frame.interval_s:.1f} s {hit}   samples/s {rate:>7}   "
             f"halted {halted} (as the {frame.halted_seen_by} sees it)",
             f"samples since reset {frame.samples:,}",
             "",
             f"{'share':>7} {'samples':>8}  {'function':<40} region"]
    for function, region, samples, share in frame.functions:
        lines.append(f"{share:7.1%} {samples:8d}  {function[:40]:<40} {region}")
    screen.erase()
    for row, text in enumerate(lines[:height - 1]):
        screen.addnstr(row, 0, text, width - 1)
    screen.addnstr(height - 1, 0, f"keys: {KEYS}", width - 1)
    screen.refresh()
