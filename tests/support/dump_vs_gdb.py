"""`xipscope dump` run as a command, and gdb-multiarch's `x` on the same bytes: the two sides the dump tests compare
(twin/test_dump.py on the twin, kernel/test_dump_qemu.py on the kernel in QEMU)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def xipscope(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "xipscope", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def gdb_bytes(port: int, address: int, length: int, elf: Path | None = None) -> bytes:
    exe = shutil.which("gdb-multiarch")
    assert exe, "gdb-multiarch is needed: apt-get install gdb-multiarch"
    args = [exe, "-nx", "-batch", "-ex", "set confirm off", "-ex", "set architecture riscv:rv32",
            "-ex", f"target remote 127.0.0.1:{port}", "-ex", f"x/{length}xb {address:#x}"]
    out = subprocess.run(args + ([str(elf)] if elf else []), capture_output=True, text=True, timeout=120).stdout
    values = []
    for line in out.splitlines():
        if re.match(r"^0x[0-9a-f]+( <[^>]*>)?:", line):
            values += [int(v, 16) for v in re.findall(r"\t0x([0-9a-f]{2})", line)]
    return bytes(values)


def our_bytes(url: str, address: int, length: int, *extra) -> tuple[bytes, list[str]]:
    out = xipscope("dump", "--target", url, hex(address), str(length), *extra)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()[:-1]
    data = b"".join(bytes.fromhex(line[10:59].replace(" ", "")) for line in lines)
    return data, lines
