"""`xipscope dump ADDR LEN`: the seed bootloader's hexdump of target memory, each line with its region and symbols
(dump.py)."""

from __future__ import annotations

from . import options

DESCRIPTION = ("Hexdump LEN bytes at ADDR in the format the seed's Linux bootloader prints (Rom/Kernel/Ram "
               "dump), each line labelled with its region (flash XIP cached/uncached, PSRAM, SRAM, ROM, "
               "peripheral) and, with --elf, its symbols. A range outside the memory map is an error "
               "naming it.")
EPILOG = """examples:
  xipscope dump 0x10000000 256 --target rsp://127.0.0.1:3333 --elf firmware.elf
  xipscope dump 0x80000000 0x100 --dump ram.bin@0x80000000 --map qemu-virt --json"""


def add_arguments(p) -> None:
    p.add_argument("address", type=options.number, metavar="ADDR")
    p.add_argument("length", type=options.number, metavar="LEN")
    options.add_source(p)
    options.add_elf(p, "ELF (or System.map) whose symbols label the lines")
    options.add_map(p)
    p.add_argument("--raw", metavar="FILE", help="also write the bytes read to FILE")
    options.add_json(p, "one JSON object per line: address, hex, region, kind, symbol")
    options.add_timeout(p)


def run(args) -> int:
    import contextlib
    import json
    import sys

    from ..chip.memory_map import get_memory_map
    from ..dump import dump_lines, format_line, plan_ranges
    from .progress import ProgressDisplay

    memory_map = get_memory_map(args.map)
    symbols = None
    if args.elf:
        from ..elf.symbols import load_symbols
        symbols = load_symbols(args.elf)
    plan_ranges(memory_map, args.address, args.length)      # a bad range fails before connecting
    target = options.open_source(args)
    raw = open(args.raw, "wb") if args.raw else None
    out = sys.stdout
    # The lines themselves show progress on a terminal; the bar is for output going to a file or a pipe.
    shown = ProgressDisplay("dump", args.length) if not out.isatty() else None
    try:
        with shown or contextlib.nullcontext():
            for line in dump_lines(target, args.address, args.length, memory_map, symbols, raw,
                                   progress=shown.show_bytes if shown else None):
                out.write((json.dumps(line.to_json()) if args.json else format_line(line)) + "\n")
        if not args.json:
            out.write(f"{args.address + args.length:08x}\n")
    finally:
        out.flush()
        if raw is not None:
            raw.close()
        target.close()
    return 0
