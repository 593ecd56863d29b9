"""`xipscope report DIR` and `xipscope compare DIR_A DIR_B`: thin adapters over profile/report.py and compare.py."""

from __future__ import annotations

import argparse


def add_command(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="analyse a profile directory: HTML report with plots, CSV, speedscope, collapsed stacks",
        description="Analyse the samples of a profile directory (written by xipscope profile) by memory region, "
                    "function and source line, with the XIP cache hit rate, misses attributed to functions and an "
                    "LR/SC livelock check. Writes DIR/report/report.html and machine-readable files beside it.")
    p.add_argument("profile", metavar="DIR", help="profile directory (samples/ and meta.json)")
    p.add_argument("--elf", metavar="FILE", help="the image that ran (default: meta.json's elf)")
    p.add_argument("--map", metavar="NAME|FILE.toml", help="memory map: rp2350, qemu-virt or a TOML file "
                                                           "(default: meta.json's map, else rp2350)")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default DIR/report)")
    p.add_argument("--top", type=int, default=15, help="functions and lines to show (default 15)")
    p.set_defaults(func=cmd_report)

    c = subparsers.add_parser(
        "compare", help="compare two profiles: per-region and per-function deltas with a plot",
        description="Compare two profile directories (e.g. the same workload from XIP flash and from PSRAM): "
                    "shares of samples and XIP hit rates per region and per function, B minus A.")
    c.add_argument("a", metavar="DIR_A")
    c.add_argument("b", metavar="DIR_B")
    c.add_argument("--out", required=True, metavar="DIR", help="where to write compare.html and the CSV files")
    c.add_argument("--elf-a", metavar="FILE", help="ELF of run A (default: its meta.json's elf)")
    c.add_argument("--elf-b", metavar="FILE", help="ELF of run B (default: its meta.json's elf)")
    c.add_argument("--map", metavar="NAME|FILE.toml", help="memory map for both (default: each meta.json's map)")
    c.add_argument("--top", type=int, default=20, help="functions to show (default 20)")
    c.set_defaults(func=cmd_compare)


def cmd_report(args: argparse.Namespace) -> int:
    return print_report(args.profile, args.elf, args.map, out=args.out, top=args.top)


def print_report(profile_dir, symbols, memory_map, out=None, top: int = 15) -> int:
    """Write the report of a profile directory and print its summary and where it is (`report`, end of `profile`)."""
    import json

    from .report import summary_text, write_report

    path = write_report(profile_dir, symbols=symbols, memory_map=memory_map, out=out, top=top)
    print(summary_text(json.loads((path.parent / "summary.json").read_text())))
    print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_profiles

    path = compare_profiles(args.a, args.b, args.out, args.elf_a, args.elf_b, args.map, top=args.top)
    print(path)
    return 0
