"""`xipscope dump` of 1 MiB of kernel RAM vs gdb-multiarch's `dump binary memory`, on the same QEMU kernel.

Both are whole commands a user would type, timed as processes; ours also formats 65,536 annotated hexdump lines
(stdout to /dev/null) besides writing the raw bytes. The bytes must agree. No goal is set in the issue: for the record.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from common import boot_kernel, built_kernel, median_seconds, report

REPEAT = 5
START = 0x80000000
LENGTH = 1 << 20


def main() -> None:
    build = built_kernel("dwarf")
    with tempfile.TemporaryDirectory() as tmp, boot_kernel(build, Path(tmp)) as qemu:
        ours_raw, theirs_raw = Path(tmp) / "ours.bin", Path(tmp) / "theirs.bin"
        ours = [sys.executable, "-m", "xipscope", "dump", "--target", qemu.url, "--map", "qemu-virt",
                hex(START), str(LENGTH), "--raw", str(ours_raw)]
        theirs = ["gdb-multiarch", "-q", "-batch", "-nx", "-ex", "set architecture riscv:rv32",
                  "-ex", f"target remote 127.0.0.1:{qemu.port}",
                  "-ex", f"dump binary memory {theirs_raw} {START:#x} {START + LENGTH:#x}", "-ex", "detach"]

        def run(cmd):
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        run(ours)
        run(theirs)
        same = ours_raw.read_bytes() == theirs_raw.read_bytes()
        t_ours = median_seconds(lambda: run(ours), REPEAT)
        t_theirs = median_seconds(lambda: run(theirs), REPEAT)
    print(f"1 MiB at {START:#x} from the DWARF kernel in QEMU, median of {REPEAT} runs:")
    report([("xipscope dump (hexdump + --raw)", f"{t_ours * 1000:.0f} ms ({LENGTH / t_ours / 1e6:.1f} MB/s)"),
            ("gdb-multiarch dump binary memory", f"{t_theirs * 1000:.0f} ms ({LENGTH / t_theirs / 1e6:.1f} MB/s)"),
            ("ratio (ours / theirs)", f"{t_ours / t_theirs:.2f}  (no goal set)"),
            ("bytes identical", str(same))])
    if not same:
        raise SystemExit("xipscope dump and gdb read different bytes")


if __name__ == "__main__":
    main()
