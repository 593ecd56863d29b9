"""`xipscope report DIR`: the analyses of a profile directory (profile/report.py); print_report serves `profile` too."""

from __future__ import annotations

import argparse

from . import options

DESCRIPTION = ("Analyse the samples of a profile directory (written by xipscope profile) by memory region, "
               "function and source line, with the XIP cache hit rate, misses attributed to functions and an "
               "LR/SC livelock check. Writes DIR/report/report.html and machine-readable files beside it.")
EPILOG = """examples:
  xipscope report prof1
  xipscope report prof1 --elf build/firmware.elf --top 30 --out /tmp/prof1-report"""


def add_arguments(p) -> None:
    p.add_argument("profile", metavar="DIR", help="profile directory (samples/ and meta.json)")
    options.add_elf(p, "the image that ran (default: meta.json's elf)")
    options.add_map(p, default=None, default_text="default: meta.json's map, else rp2350")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default DIR/report)")
    p.add_argument("--top", type=int, default=15, help="functions and lines to show (default 15)")


def run(args: argparse.Namespace) -> int:
    return print_report(args.profile, args.elf, args.map, out=args.out, top=args.top)


def print_report(profile_dir, symbols, memory_map, out=None, top: int = 15) -> int:
    """Write the report of a profile directory and print its summary and where it is (`report`, end of `profile`)."""
    import json

    from ..profile.report import summary_text, write_report

    path = write_report(profile_dir, symbols=symbols, memory_map=memory_map, out=out, top=top)
    print(summary_text(json.loads((path.parent / "summary.json").read_text())))
    print(path)
    return 0
