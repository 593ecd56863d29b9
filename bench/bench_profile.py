"""Benchmark: PC samples per second of `xipscope profile` over rsp:// (pipelined and waiting) against the QEMU Linux
fixture, the same halt/read-pc/resume loop through pygdbmi (the anchor, measured in the same run), and the twin's
GDB server (a model). Prints medians over rounds, halted time per sample, and ratios."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, boot_kernel, built_kernel, report

sys.path.insert(0, str(REPO / "toolkit"))

from xipscope.chip.memory_map import get_memory_map  # noqa: E402
from xipscope.profile.sampler import sample_profile  # noqa: E402
from xipscope.target.rsp import RspTarget  # noqa: E402

ROUNDS = 5


def xipscope_rounds(port: int, map_name: str, samples: int, pipeline: bool, workdir: Path) -> tuple[float, float, str]:
    """Median samples/s and median halted us over ROUNDS runs of sample_profile; the transport it used."""
    rates, halted = [], []
    transport = ""
    for i in range(ROUNDS):
        target = RspTarget("127.0.0.1", port)
        try:
            run = sample_profile(target, workdir / f"{port}-{pipeline}-{i}", memory_map=get_memory_map(map_name),
                                 samples=samples, pipeline=pipeline)
        finally:
            target.close()
        rates.append(run.meta["rate_hz_achieved"])
        halted.append(run.meta["halted_ns"]["median"] / 1000)
        transport = run.meta["transport"]
    return statistics.median(rates), statistics.median(halted), transport


def pygdbmi_rate(port: int, vmlinux: Path, samples: int) -> float:
    """The anchor: interrupt, read $pc, continue through gdb/MI with pygdbmi, polling replies as tightly as it allows."""
    from pygdbmi.gdbcontroller import GdbController

    gdb = GdbController(command=["gdb-multiarch", "--nx", "--quiet", "--interpreter=mi3", str(vmlinux)])

    def wait(predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in gdb.get_gdb_response(timeout_sec=0.001, raise_error_on_timeout=False):
                if predicate(record):
                    return record
        raise TimeoutError("pygdbmi: no reply")

    def command(text, predicate):
        gdb.write(text, timeout_sec=0, read_response=False)
        return wait(predicate)

    done = lambda r: r.get("type") == "result" and r.get("message") in ("done", "connected", "error")  # noqa: E731
    try:
        command("-gdb-set mi-async on", done)
        command(f"-target-select remote 127.0.0.1:{port}", done)
        rates = []
        for _ in range(3):
            command("-exec-continue", lambda r: r.get("message") == "running")
            t0 = time.perf_counter()
            for _ in range(samples):
                command("-exec-interrupt", lambda r: r.get("type") == "notify" and r.get("message") == "stopped")
                command("-data-evaluate-expression $pc", done)
                command("-exec-continue", lambda r: r.get("message") == "running")
            rates.append(samples / (time.perf_counter() - t0))
            command("-exec-interrupt", lambda r: r.get("type") == "notify" and r.get("message") == "stopped")
        command("-target-detach", done)
        return statistics.median(rates)
    finally:
        gdb.exit()


def twin_server(clock_hz: str):
    proc = subprocess.Popen([sys.executable, "-m", "xipscope", "sim", str(REPO / "firmware" / "xipbench.elf"),
                             "--gdb-port", "0", "--clock-hz", clock_hz], stdout=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(REPO / "toolkit"), "PATH": "/usr/bin:/bin"})
    port = int(re.search(r"127\.0\.0\.1:(\d+)", proc.stdout.readline()).group(1))
    return proc, port


def main() -> None:
    build = built_kernel("dwarf")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with boot_kernel(build, work) as qemu:
            piped, piped_halted, piped_transport = xipscope_rounds(qemu.port, "qemu-virt", 4000, True, work)
            waiting, waiting_halted, _ = xipscope_rounds(qemu.port, "qemu-virt", 2000, False, work)
            anchor = pygdbmi_rate(qemu.port, build.vmlinux, 100)
        proc, port = twin_server("1e6")
        try:
            twin_piped, twin_piped_halted, _ = xipscope_rounds(port, "rp2350", 2000, True, work)
            twin_waiting, twin_waiting_halted, _ = xipscope_rounds(port, "rp2350", 2000, False, work)
        finally:
            proc.kill()
            proc.wait()
    print(f"PC sampling, medians of {ROUNDS} rounds (pygdbmi: 3 rounds of 100 samples)")
    report([
        ("QEMU kernel, xipscope rsp:// pipelined", f"{piped:,.0f} samples/s, halted {piped_halted:.0f} us/sample"),
        ("QEMU kernel, xipscope rsp:// waiting", f"{waiting:,.0f} samples/s, halted {waiting_halted:.0f} us/sample"),
        ("QEMU kernel, pygdbmi (anchor)", f"{anchor:,.0f} samples/s"),
        ("pipelined / pygdbmi", f"{piped / anchor:,.0f}x (goal 75x)"),
        ("pipelined / waiting", f"{piped / waiting:.2f}x"),
        ("goal 15,000 samples/s", "met" if piped >= 15000 else f"not met ({piped:,.0f})"),
        ("twin (a model) gdbserver, pipelined, with counters",
         f"{twin_piped:,.0f} samples/s, halted {twin_piped_halted:.0f} us/sample"),
        ("twin (a model) gdbserver, waiting, with counters",
         f"{twin_waiting:,.0f} samples/s, halted {twin_waiting_halted:.0f} us/sample"),
        ("transport (QEMU)", piped_transport),
    ])


if __name__ == "__main__":
    main()
