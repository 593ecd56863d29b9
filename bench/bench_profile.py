"""Benchmark: PC samples per second of `xipscope profile` over rsp:// (pipelined and waiting) against the QEMU Linux
fixture, the same halt/read-pc/resume loop through pygdbmi (the anchor) and as a raw socket loop (the floor), all in
the same run, and the twin's GDB server (a model). Prints medians over rounds, halted time per sample, and ratios.

The QEMU loops run twice: as the OS places the processes, and pinned apart (QEMU on one CPU, the client and gdb on
another). On 2-core VMs the placement decides how long a blocked thread takes to wake, which dominates a sample."""

from __future__ import annotations

import os
import re
import socket
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
from xipscope.targets.rsp import RspTarget  # noqa: E402
from xipscope.rsp.packets import frame  # noqa: E402

ROUNDS = 5


def xipscope_rounds(port: int, map_name: str, samples: int, pipeline: bool, workdir: Path) -> tuple[float, float, str, str]:
    """Median samples/s and median halted us over ROUNDS runs of sample_profile; the transport it used and how
    replies were awaited (ReplyWaitChooser's choice in the last round)."""
    rates, halted = [], []
    transport = replies = ""
    for i in range(ROUNDS):
        target = RspTarget("127.0.0.1", port)
        try:
            run = sample_profile(target, workdir / f"{port}-{pipeline}-{i}-{time.monotonic_ns()}",
                                 memory_map=get_memory_map(map_name), samples=samples, pipeline=pipeline)
        finally:
            target.close()
        rates.append(run.meta["rate_hz_achieved"])
        halted.append(run.meta["halted_ns"]["median"] / 1000)
        transport = run.meta["transport"]
        wait = run.meta["reply_wait"]
        replies = f"{wait['replies']} (us/sample: " + \
            ", ".join(f"{w} {us:.0f}" for w, us in wait["us_per_sample"].items()) + ")"
    return statistics.median(rates), statistics.median(halted), transport, replies


def raw_pipelined_rate(port: int, samples: int) -> float:
    """The floor: anchors.md's raw loop (interrupt + g + c in one write, both replies read, blocking), no parsing."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    burst = b"\x03" + frame(b"g") + frame(b"c")
    try:
        sock.sendall(frame(b"?"))
        buffer = b""
        while buffer.count(b"#") < 1:
            buffer += sock.recv(65536)
        sock.sendall(b"+" + frame(b"c"))
        rates = []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            for _ in range(samples):
                sock.sendall(burst)
                buffer = b""
                while buffer.count(b"#") < 2 or len(buffer) < buffer.rindex(b"#") + 3:
                    buffer += sock.recv(65536)
            rates.append(samples / (time.perf_counter() - t0))
        sock.sendall(b"\x03")
        time.sleep(0.1)
        sock.sendall(b"+" + frame(b"D"))
        time.sleep(0.1)
        return statistics.median(rates)
    finally:
        sock.close()


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


def pin_apart(qemu_pid: int) -> bool:
    """QEMU (all its threads) on CPU 1, this process and its children (gdb) on CPU 0; False on a 1-CPU machine."""
    if len(os.sched_getaffinity(0)) < 2:
        return False
    cpus = sorted(os.sched_getaffinity(0))
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpus[1]), str(qemu_pid)], check=True, capture_output=True)
    os.sched_setaffinity(0, {cpus[0]})
    return True


def qemu_rates(build, work: Path) -> dict:
    """The QEMU kernel sampled by xipscope (pipelined, waiting), by the raw loop and by pygdbmi: as the OS places the
    processes, then with QEMU and the clients pinned to different CPUs (the same for every loop)."""
    results = {}
    with boot_kernel(build, work) as qemu:
        for placement in ("as placed by the OS", "pinned apart"):
            if placement == "pinned apart" and not pin_apart(qemu.process.pid):
                break
            results[placement] = {
                "pipelined": xipscope_rounds(qemu.port, "qemu-virt", 4000, True, work),
                "waiting": xipscope_rounds(qemu.port, "qemu-virt", 2000, False, work),
                "raw": raw_pipelined_rate(qemu.port, 4000),
                "pygdbmi": pygdbmi_rate(qemu.port, build.vmlinux, 100),
            }
    os.sched_setaffinity(0, range(os.cpu_count()))
    return results


def main() -> None:
    build = built_kernel("dwarf")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        qemu = qemu_rates(build, work)
        proc, port = twin_server("1e6")
        try:
            twin_piped, twin_piped_halted, _, _ = xipscope_rounds(port, "rp2350", 2000, True, work)
            twin_waiting, twin_waiting_halted, _, _ = xipscope_rounds(port, "rp2350", 2000, False, work)
        finally:
            proc.kill()
            proc.wait()
    print(f"PC sampling, medians of {ROUNDS} rounds (pygdbmi: 3 rounds of 100 samples)")
    rows = []
    for placement, r in qemu.items():
        piped, piped_halted, transport, replies = r["pipelined"]
        waiting, waiting_halted, _, _ = r["waiting"]
        rows += [
            (f"QEMU kernel, {placement}: xipscope rsp:// pipelined",
             f"{piped:,.0f} samples/s, halted {piped_halted:.0f} us/sample; replies {replies}"),
            (f"QEMU kernel, {placement}: xipscope rsp:// waiting",
             f"{waiting:,.0f} samples/s, halted {waiting_halted:.0f} us/sample"),
            (f"QEMU kernel, {placement}: raw pipelined loop (blocking, no parsing)", f"{r['raw']:,.0f} samples/s"),
            (f"QEMU kernel, {placement}: pygdbmi (anchor)", f"{r['pygdbmi']:,.0f} samples/s"),
            (f"  {placement}: pipelined / pygdbmi", f"{piped / r['pygdbmi']:,.0f}x (goal 75x)"),
            (f"  {placement}: pipelined / raw loop", f"{piped / r['raw']:.2f}x"),
            (f"  {placement}: goal 15,000 samples/s", "met" if piped >= 15000 else f"not met ({piped:,.0f})"),
        ]
    rows += [
        ("twin (a model) gdbserver, pipelined, with counters",
         f"{twin_piped:,.0f} samples/s, halted {twin_piped_halted:.0f} us/sample"),
        ("twin (a model) gdbserver, waiting, with counters",
         f"{twin_waiting:,.0f} samples/s, halted {twin_waiting_halted:.0f} us/sample"),
        ("transport (QEMU)", transport),
    ]
    report(rows)


if __name__ == "__main__":
    main()
