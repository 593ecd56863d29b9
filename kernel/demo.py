#!/usr/bin/env python3
"""`make demo-kernel`: boot the cached DWARF kernel in QEMU to its panic, then run `xipscope dmesg` on it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from qemu import boot_kernel, built_kernel  # noqa: E402


def main() -> int:
    build = built_kernel("dwarf")
    with tempfile.TemporaryDirectory() as tmp, boot_kernel(build, Path(tmp)) as kernel:
        cmd = ["xipscope", "dmesg", "--elf", str(build.vmlinux), "--target", kernel.url]
        print("$ " + " ".join(cmd), flush=True)
        return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
