"""`xipscope compare DIR_A DIR_B`: two profiles side by side (profile/compare.py)."""

from __future__ import annotations

import argparse

from . import options

DESCRIPTION = ("Compare two profile directories (e.g. the same workload from XIP flash and from PSRAM): "
               "shares of samples and XIP hit rates per region and per function, B minus A.")
EPILOG = """example:
  xipscope compare prof-flash prof-psram --out flash-vs-psram"""


def add_arguments(p) -> None:
    p.add_argument("a", metavar="DIR_A")
    p.add_argument("b", metavar="DIR_B")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write compare.html and the CSV files")
    p.add_argument("--elf-a", metavar="FILE", help="ELF of run A (default: its meta.json's elf)")
    p.add_argument("--elf-b", metavar="FILE", help="ELF of run B (default: its meta.json's elf)")
    options.add_map(p, default=None, default_text="for both; default: each meta.json's map")
    p.add_argument("--top", type=int, default=20, help="functions to show (default 20)")


def run(args: argparse.Namespace) -> int:
    from ..profile.compare import compare_profiles

    path = compare_profiles(args.a, args.b, args.out, args.elf_a, args.elf_b, args.map, top=args.top)
    print(path)
    return 0
