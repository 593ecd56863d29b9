"""`xipscope image`: the flash image as the boot ROM sees it, from a file, a UF2 or a live target (image/)."""

from __future__ import annotations

import json
import sys

from . import options

DESCRIPTION = ("Find and validate the block loops in the first 4 KiB of flash and of each partition, decode "
               "IMAGE_DEF, ENTRY_POINT, VECTOR_TABLE, LOAD_MAP, VERSION, HASH_DEF and the PARTITION_TABLE, and "
               "say which partitions hold the dtb, the xipImage and the cramfs root. Malformed loops are "
               "findings, not errors; the exit status is 1 when a finding is an error.")
EPILOG = """examples:
  xipscope image firmware.uf2
  xipscope image flash.bin@0x10000000 --elf vmlinux --json
  xipscope image --target rsp://127.0.0.1:3333 --elf vmlinux"""


def add_arguments(p) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE[@ADDR]",
                        help="a flash image (raw, ADDR its first byte's XIP address or flash offset; default "
                             "0x10000000) or a UF2 file")
    options.add_target(source, required=False,
                       what="read flash over the debugger through the uncached alias 0x14000000 (sim:// takes "
                            "?flash=IMAGE)")
    options.add_elf(p, "the kernel ELF: its entry names the kernel's partition", metavar="VMLINUX")
    options.add_json(p, "print the decoded image as one JSON object")
    options.add_timeout(p)


def run(args) -> int:
    from ..image.flash import FileFlash, TargetFlash
    from ..image.inspect import format_report, inspect_flash
    from .progress import ProgressDisplay

    target = None
    if args.target:
        from ..targets import open_target
        target = open_target(args.target, timeout=args.timeout)
        flash = TargetFlash(target)
    else:
        flash = FileFlash.from_spec(args.file)
    try:
        if target is None:
            report = inspect_flash(flash, args.elf)       # a file reads in a moment
        else:
            with ProgressDisplay("image") as shown:
                report = inspect_flash(flash, args.elf, progress=shown.show_bytes)
    finally:
        if target is not None:
            target.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        sys.stdout.write(format_report(report))
    return 1 if any(f.severity == "error" for f in report.all_findings()) else 0
