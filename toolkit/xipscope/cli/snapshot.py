"""`xipscope snapshot`: halt a target and save its registers and RAM (snapshot.py), for snapshot://DIR."""

from __future__ import annotations

from . import options

DESCRIPTION = ("Halt the target, save every register and CSR it offers and the RAM regions of the memory map "
               "(SRAM and PSRAM on rp2350, dram on qemu-virt; flash with --flash) into DIR with a manifest, "
               "then resume it. Later, any command reads it as --target snapshot://DIR, and `xipscope serve DIR` "
               "hands it to gdb.")
EPILOG = """examples:
  xipscope snapshot --target rsp://127.0.0.1:3333 --elf firmware.elf --out crash-1
  xipscope snapshot --target rsp://127.0.0.1:1234 --map qemu-virt --size dram=64M --no-resume --out crash-2
  xipscope dmesg --elf vmlinux --target snapshot://crash-2"""


def add_arguments(p) -> None:
    options.add_target(p, what="the live target")
    p.add_argument("--out", required=True, metavar="DIR", help="a new (or empty) directory for the snapshot")
    options.add_map(p)
    p.add_argument("--flash", action="store_true", help="also save XIP flash")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="leave the target halted (rsp:// closes the connection without detaching)")
    options.add_elf(p, "the ELF (vmlinux) running on the target; its hash goes into the manifest")
    p.add_argument("--size", action="append", default=[], metavar="REGION=SIZE",
                   help="save this much of a region (e.g. dram=64M) instead of probing how much the board has")
    options.add_timeout(p)


def run(args) -> int:
    import sys
    from pathlib import Path

    from ..chip.memory_map import get_memory_map
    from ..snapshot.take import check_request, parse_sizes, take_snapshot
    from ..targets import open_target
    from .progress import ProgressDisplay

    memory_map = get_memory_map(args.map)
    sizes = parse_sizes(args.size)
    check_request(Path(args.out), memory_map, args.flash, sizes)   # before the target is halted for nothing
    target = open_target(args.target, timeout=args.timeout)
    leave_halted = not args.resume and hasattr(target, "disconnect")
    try:
        with ProgressDisplay("snapshot") as shown:
            manifest = take_snapshot(target, args.out, memory_map, elf=args.elf, include_flash=args.flash,
                                     resume=args.resume, sizes=sizes, progress=shown.show_bytes,
                                     log=lambda text: print(f"xipscope snapshot: {text}", file=sys.stderr))
    finally:
        target.disconnect() if leave_halted else target.close()
    total = sum(r["size"] for r in manifest["regions"])
    on_disk = sum((Path(args.out) / r["file"]).stat().st_blocks * 512 for r in manifest["regions"])
    print(f"snapshot of {manifest['target']} in {args.out}: {len(manifest['registers'])} registers, "
          f"{len(manifest['regions'])} regions, {total} bytes ({on_disk} on disk), {manifest['seconds']} s")
    return 0
