"""`xipscope snapshot` of the panicked QEMU kernel vs gdb-multiarch's `dump binary memory` of the same RAM.

The anchor saves only the 64 MiB of RAM (no registers, no probing, no manifest, no hashes); we save all that too.
Both are whole commands a user would type, timed as processes, in the same run on the same QEMU.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import boot_kernel, built_kernel, median_seconds, report

REPEAT = 5
RAM_START, RAM_END = 0x80000000, 0x84000000     # boot_kernel gives QEMU -m 64M


def main() -> None:
    build = built_kernel("dwarf")
    with tempfile.TemporaryDirectory() as tmp, boot_kernel(build, Path(tmp)) as qemu:
        out = Path(tmp) / "snap"
        ours = [sys.executable, "-m", "xipscope", "snapshot", "--target", qemu.url, "--out", str(out),
                "--map", "qemu-virt", "--elf", str(build.vmlinux)]
        theirs = ["gdb-multiarch", "-q", "-batch", "-nx", "-ex", f"target remote 127.0.0.1:{qemu.port}",
                  "-ex", f"dump binary memory {tmp}/ram.bin {RAM_START:#x} {RAM_END:#x}", "-ex", "detach"]

        def run_ours():
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run(ours, check=True, capture_output=True)

        def run_theirs():
            subprocess.run(theirs, check=True, capture_output=True)

        run_ours()     # warm-up: the ELF's content hash is memoized after the first run
        manifest = json.loads((out / "manifest.json").read_text())
        on_disk = sum((out / r["file"]).stat().st_blocks * 512 for r in manifest["regions"])
        saved = sum(r["size"] for r in manifest["regions"])
        t_ours = median_seconds(run_ours, REPEAT)
        t_theirs = median_seconds(run_theirs, REPEAT)
    print(f"snapshot of the DWARF kernel in QEMU ({len(manifest['registers'])} registers, {saved >> 20} MiB RAM, "
          f"{on_disk / (1 << 20):.1f} MiB on disk as a sparse file), median of {REPEAT} runs:")
    report([("xipscope snapshot", f"{t_ours:.2f} s  ({saved / t_ours / (1 << 20):.1f} MiB/s)"),
            ("gdb-multiarch dump binary memory (RAM only)", f"{t_theirs:.2f} s  ({saved / t_theirs / (1 << 20):.1f} MiB/s)"),
            ("ratio (ours / theirs)", f"{t_ours / t_theirs:.2f}")])


if __name__ == "__main__":
    main()
