"""`xipscope image`: the flash image as the boot ROM sees it, from a file, a UF2 or a live target."""

from __future__ import annotations

import argparse
import json
import sys


def add_command(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "image", help="decode the RP2350 flash image: block loops, IMAGE_DEF, partition table, Linux layout",
        description="Find and validate the block loops in the first 4 KiB of flash and of each partition, decode "
                    "IMAGE_DEF, ENTRY_POINT, VECTOR_TABLE, LOAD_MAP, VERSION, HASH_DEF and the PARTITION_TABLE, and "
                    "say which partitions hold the dtb, the xipImage and the cramfs root. Malformed loops are "
                    "findings, not errors; the exit status is 1 when a finding is an error.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE[@ADDR]",
                        help="a flash image (raw, ADDR its first byte's XIP address or flash offset; default "
                             "0x10000000) or a UF2 file")
    source.add_argument("--target", metavar="URL",
                        help="read flash over the debugger through the uncached alias 0x14000000: rsp://HOST:PORT "
                             "or sim://FIRMWARE.elf?flash=IMAGE (the twin, a model)")
    p.add_argument("--elf", metavar="VMLINUX", help="the kernel ELF: its entry names the kernel's partition")
    p.add_argument("--json", action="store_true", help="print the decoded image as one JSON object")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each target reply")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from .flash import FileFlash, TargetFlash
    from .inspect import format_report, inspect_flash

    target = None
    if args.target:
        from ..target import open_target
        target = open_target(args.target, timeout=args.timeout)
        flash = TargetFlash(target)
    else:
        flash = FileFlash.from_spec(args.file)
    try:
        report = inspect_flash(flash, args.elf)
    finally:
        if target is not None:
            target.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        sys.stdout.write(format_report(report))
    return 1 if any(f.severity == "error" for f in report.all_findings()) else 0
