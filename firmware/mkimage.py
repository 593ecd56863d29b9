#!/usr/bin/env python3
"""Build a flash image laid out as the seed's XIP Linux fork (rp2350-flash.md "The seed's layout") around a twin
firmware: the firmware at flash 0 with an IMAGE_DEF + PARTITION_TABLE block loop after it, placeholder dtb, xipImage
header and cramfs in the dtb, LINUX and rootfs partitions. Written as UF2 (family absolute) or, for .bin, raw from
flash 0.

    python firmware/mkimage.py                       # firmware/seedlayout.uf2 from firmware/xipprobe.elf
    python firmware/mkimage.py --bootloader X.elf --dtb board.dtb --kernel xipImage --rootfs root.cramfs out.uf2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "toolkit"))

from xipscope.image.build import build_seed_image  # noqa: E402
from xipscope.image.uf2 import build_uf2  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", default=str(HERE / "seedlayout.uf2"), help="output .uf2 or .bin")
    p.add_argument("--bootloader", default=str(HERE / "xipprobe.elf"), help="firmware ELF placed at flash 0")
    p.add_argument("--dtb", help="device tree blob for the dtb partition")
    p.add_argument("--kernel", help="xipImage for the LINUX partition")
    p.add_argument("--rootfs", help="cramfs image for the rootfs partition")
    args = p.parse_args(argv)
    contents = {name: Path(path).read_bytes() for name, path in
                (("dtb", args.dtb), ("LINUX", args.kernel), ("rootfs", args.rootfs)) if path}
    chunks = build_seed_image(args.bootloader, contents)
    out = Path(args.out)
    if out.suffix == ".bin":
        end = max(a + len(d) for a, d in chunks)
        flash = bytearray(b"\xff" * (end - 0x10000000))
        for address, data in chunks:
            flash[address - 0x10000000:address - 0x10000000 + len(data)] = data
        out.write_bytes(bytes(flash))
    else:
        out.write_bytes(build_uf2(chunks, "absolute"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
