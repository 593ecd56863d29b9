"""Profile any GDB server (QEMU -gdb, OpenOCD) the plain way: halt, read the registers, walk the frame pointers,
resume, one round trip after another. A simple, honest collector for the example reports, writing the same sample
files as `xipscope profile` (which pipelines these requests and is much faster; use it for real work).

    python analyses/rsp_profile.py rsp://127.0.0.1:1234 --elf vmlinux --out DIR [--samples 2000] [--map qemu-virt]

No XIP counters are read (QEMU's virt board has none); halted_ns is the host time from the halt request to the resume.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "toolkit"))

from xipscope.elf import load_symbols  # noqa: E402
from xipscope.profile.samples import SampleWriter, write_meta  # noqa: E402
from xipscope.target import open_target  # noqa: E402
from xipscope.unwind import unwind_frame_pointers  # noqa: E402


def profile_rsp(url: str, elf: str | Path, out: str | Path, samples: int = 2000, interval_s: float = 0.001,
                memory_map: str = "qemu-virt") -> dict:
    symbols = load_symbols(elf)
    target = open_target(url)
    writer = SampleWriter(out)
    start = time.perf_counter_ns()
    try:
        target.halt()
        for _ in range(samples):
            target.resume()
            time.sleep(interval_s)
            t0 = time.perf_counter_ns()
            target.halt()
            regs = target.read_registers()
            words: dict[int, int | None] = {}

            def read_word(address: int) -> int | None:
                if address not in words:
                    try:
                        words[address] = int.from_bytes(target.read_memory(address, 4), "little")
                    except Exception:   # an unreadable stack ends the walk; the unwinder says so
                        words[address] = None
                return words[address]

            def is_code(address: int) -> bool:
                return bool(symbols.symbolize([address]).function_id[0] >= 0)

            walk = unwind_frame_pointers(regs["pc"], regs["sp"], regs.get("fp", regs.get("s0", 0)), regs["ra"],
                                         read_word=read_word, is_code=is_code)
            writer.add(t_ns=t0 - start, pc=regs["pc"], halted_ns=time.perf_counter_ns() - t0,
                       stack=walk.pcs[1:])
    finally:
        writer.close()
        target.close()
    meta = {"target": url, "target_note": "sampled by analyses/rsp_profile.py (halt, g, frame walk, continue)",
            "elf": str(Path(elf).resolve()), "elf_sha256": hashlib.sha256(Path(elf).read_bytes()).hexdigest(),
            "map": memory_map, "samples": writer.count, "interval_s": interval_s, "stacks": True,
            "counters": "none (the map has no XIP_CTRL)"}
    write_meta(out, meta)
    return meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("--elf", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--interval", type=float, default=0.001, help="seconds the target runs between samples")
    p.add_argument("--map", default="qemu-virt")
    args = p.parse_args(argv)
    meta = profile_rsp(args.url, args.elf, args.out, args.samples, args.interval, args.map)
    print(f"{meta['samples']} samples of {args.url} in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
