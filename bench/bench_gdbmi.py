"""PC samples per second through gdb:// vs pygdbmi used as its documentation shows, on the same QEMU kernel, in one run.

A sample is: interrupt, read pc, continue. pygdbmi's documented `write()` waits for its default reply window on each
command (anchors.md: about 1.7 samples/s); gdb:// reads MI records until the command's own token comes back.
Goal (issue 6): at least 150 samples/s and 50x the documented pygdbmi loop.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from common import boot_kernel, built_kernel, report

from xipscope.targets.gdbmi import GdbMiTarget

OUR_SAMPLES = 300
THEIR_SAMPLES = 3
REPEAT = 3


def ours_rate(port: int) -> float:
    target = GdbMiTarget("127.0.0.1", port)
    try:
        target.resume()
        t0 = time.perf_counter()
        for _ in range(OUR_SAMPLES):
            target.halt()
            target.read_register("pc")
            target.resume()
        return OUR_SAMPLES / (time.perf_counter() - t0)
    finally:
        target.close()


def documented_pygdbmi_rate(port: int) -> float:
    from pygdbmi.gdbcontroller import GdbController

    gdb = GdbController(["gdb-multiarch", "--nx", "--quiet", "--interpreter=mi3"])
    try:
        for setup in ("-gdb-set mi-async on", "-gdb-set architecture riscv:rv32",
                      f"-target-select remote 127.0.0.1:{port}", "-exec-continue"):
            gdb.write(setup)
        t0 = time.perf_counter()
        for _ in range(THEIR_SAMPLES):
            gdb.write("-exec-interrupt")
            gdb.write("-data-list-register-values x 32")
            gdb.write("-exec-continue")
        return THEIR_SAMPLES / (time.perf_counter() - t0)
    finally:
        gdb.write("-target-detach", raise_error_on_timeout=False)
        gdb.exit()


def main() -> None:
    build = built_kernel("dwarf")
    with tempfile.TemporaryDirectory() as tmp, boot_kernel(build, Path(tmp)) as qemu:
        ours = statistics.median(ours_rate(qemu.port) for _ in range(REPEAT))
        theirs = statistics.median(documented_pygdbmi_rate(qemu.port) for _ in range(REPEAT))
    print(f"PC samples/s through gdb-multiarch on the QEMU kernel (interrupt, read pc, continue), median of {REPEAT} runs:")
    report([("gdb:// (tokens, no reply window)", f"{ours:.0f} samples/s  (goal >= 150)"),
            ("pygdbmi as documented (write())", f"{theirs:.1f} samples/s"),
            ("ratio", f"{ours / theirs:.0f}x  (goal >= 50x)")])


if __name__ == "__main__":
    main()
