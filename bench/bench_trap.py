"""`xipscope trap` end to end vs the manual way in gdb-multiarch (mcause, mepc, mstatus, x/i $mepc, bt), on a real
store fault injected into the QEMU kernel and held at the trap vector. Both are whole commands a user would type,
timed as processes; both leave QEMU paused (our CLI disconnects without resuming, gdb uses `disconnect`).
gdb prints the raw facts; the decode (the address recomputed from the instruction, its region, the explanation)
is what xipscope adds, so the ratio says what that costs."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import built_kernel, median_seconds, report

from faults import find_instruction, inject_fault
from qemu import boot_kernel_halted

REPEAT = 7


def main() -> None:
    from xipscope.elf import load_symbols

    build = built_kernel("dwarf")
    symbols = load_symbols(build.vmlinux)
    insn = find_instruction(build.vmlinux, symbols, "store", "prepare_namespace")
    with tempfile.TemporaryDirectory() as tmp, boot_kernel_halted(build, Path(tmp)) as qemu:
        assert inject_fault(qemu.port, symbols, insn) == 7
        live = [sys.executable, "-m", "xipscope", "trap", "--elf", str(build.vmlinux), "--target", qemu.url,
                "--map", "qemu-virt", "--json"]
        gdb = ["gdb-multiarch", "-q", "-batch", "-nx", "-ex", f"file {build.vmlinux}",
               "-ex", f"target remote 127.0.0.1:{qemu.port}", "-ex", "p/x $mcause", "-ex", "p/x $mepc",
               "-ex", "p/x $mstatus", "-ex", "x/i $mepc", "-ex", "info symbol $mepc", "-ex", "bt", "-ex", "disconnect"]

        def run(cmd):
            return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

        decoded = json.loads(run(live))               # warm-up: symbol index cache
        run(gdb)
        t_live = median_seconds(lambda: run(live), REPEAT)
        t_gdb = median_seconds(lambda: run(gdb), REPEAT)
        oops_file = Path(tmp) / "oops.txt"
        # an oops as the kernel would print it for this stop, from the decode's own registers
        oops_file.write_text(_oops_text(decoded))
        offline = [sys.executable, "-m", "xipscope", "trap", "--elf", str(build.vmlinux), "--oops", str(oops_file)]
        run(offline)
        t_oops = median_seconds(lambda: run(offline), REPEAT)
    print(f"trap decode of a store fault at {decoded['function']} ({decoded['instruction']} -> "
          f"{decoded['fault_address']:#x}, {decoded['fault_region']}), median of {REPEAT} warm runs:")
    report([("xipscope trap --target (live QEMU)", f"{t_live * 1000:.0f} ms"),
            ("gdb-multiarch: mcause, mepc, mstatus, x/i, bt", f"{t_gdb * 1000:.0f} ms"),
            ("ratio (ours / gdb)", f"{t_live / t_gdb:.2f}"),
            ("xipscope trap --oops (no target)", f"{t_oops * 1000:.0f} ms")])


def _oops_text(decoded: dict) -> str:
    regs = decoded["registers"]
    names = ["epc", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "a6",
             "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"]
    values = {n: regs.get("fp" if n == "s0" else "pc" if n == "epc" else n, 0) for n in names}
    lines = ["Oops - store (or AMO) access fault [#1]"]
    for i in range(0, len(names), 3):
        lines.append(" ".join(f"{n:>3}: {values[n]:08x}" for n in names[i:i + 3]))
    lines.append(f"status: {decoded['mstatus']:08x} badaddr: 00000000 cause: {decoded['cause_code']:08x}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
