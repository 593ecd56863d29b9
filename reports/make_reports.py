"""`make reports`: regenerate the example reports in reports/ with the project's own commands, so a visitor sees what
`xipscope report` and `xipscope compare` give them: from the RP2350 twin (a model; reproducible: the twin is seeded
and its samples carry modelled time) and from the real test kernel in QEMU after its panic (host timing varies).

The QEMU kernel and one twin run are profiled with `xipscope profile`, as a user would (the twin through its GDB
server, paced to a nominal clock); the other twin examples with analyses/twin_profile.py, which steps the twin by
modelled time (reproducible, and only possible on a model). Reports come from `xipscope report|compare`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPORTS = Path(__file__).resolve().parent
REPO = REPORTS.parent
sys.path.insert(0, str(REPO / "analyses"))
sys.path.insert(0, str(REPO / "toolkit"))

from twin_profile import profile_twin  # noqa: E402

import hit_rate_vs_working_set  # noqa: E402
import xip_vs_psram_vs_sram  # noqa: E402


def xipscope(*args: str) -> None:
    print("$ xipscope", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "xipscope", *args], check=True, cwd=REPO,
                   env=os.environ | {"PYTHONPATH": str(REPO / "toolkit")})


def fresh(name: str) -> Path:
    path = REPORTS / name
    shutil.rmtree(path, ignore_errors=True)
    return path


def main() -> int:
    from xipscope.sim.counters import Timing

    rel = lambda p: str(p.relative_to(REPO))   # noqa: E731  (paths in the reports stay repository-relative)

    # 1. xipbench: the same loop from XIP flash, SRAM and PSRAM, with a working set that fits the cache and one that
    #    thrashes it. Default (assumed) miss penalties: flash 24 cycles, PSRAM 40.
    bench = fresh("twin-xipbench")
    profile_twin("firmware/xipbench.elf", bench, every=2000, seed=0)
    xipscope("report", rel(bench))
    xip_vs_psram_vs_sram.plot(xip_vs_psram_vs_sram.phases(bench), bench / "report" / "phases.png")

    # 2. The same firmware with a slower PSRAM (120 cycles per miss), compared with the first run.
    slow = fresh("twin-xipbench-slow-psram")
    profile_twin("firmware/xipbench.elf", slow, every=2000, seed=0, timing=Timing(psram_miss_cycles=120))
    xipscope("report", rel(slow))
    xipscope("compare", rel(bench), rel(slow), "--out", rel(fresh("compare-psram-40-vs-120")))

    # 3. lrscspin: an LR/SC lock in PSRAM, the RP2350 livelock.
    spin = fresh("twin-lrscspin")
    profile_twin("firmware/lrscspin.elf", spin, every=2000, seed=0, max_instructions=300_000)
    xipscope("report", rel(spin))

    # 4. Hit rate against working-set size (the analysis script over saved profiles).
    ws = fresh("twin-working-set")
    hit_rate_vs_working_set.collect(ws, every=4000)
    hit_rate_vs_working_set.plot(hit_rate_vs_working_set.hit_rates(ws), ws / "hit_rate_vs_working_set.png")
    # 5. xipbench profiled by `xipscope profile` through the twin's GDB server, as a board behind a probe would be.
    live = fresh("twin-xipbench-profiled")
    server = subprocess.Popen([sys.executable, "-m", "xipscope", "sim", "firmware/xipbench.elf", "--gdb-port", "0",
                               "--clock-hz", "1000000"], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env=os.environ | {"PYTHONPATH": str(REPO / "toolkit")})
    try:
        port = re.search(r"127\.0\.0\.1:(\d+)", server.stdout.readline()).group(1)
        xipscope("profile", "--target", f"rsp://127.0.0.1:{port}", "--elf", "firmware/xipbench.elf", "--cycles",
                 "--samples", "4000", "--rate", "500", "--out", rel(live))
    finally:
        server.kill()
        server.wait()
        server.stdout.close()

    # 6. The pico2 Linux kernel's boot on the twin from reset to its panic's delay loop, profiled in-process
    #    (sim://vmlinux?kernel=...&dtb=...) so that the profile holds the twin's truth: halts scheduled in the twin's
    #    cycles (5,000 apart on average at its 1 MHz pacing, seed 1), so the samples do not depend on the host; the
    #    report sets them beside the truth and gives the emulated atomics (N from the kernel's amo_emulated_count, X
    #    from the truth).
    sys.path.insert(0, str(REPO / "kernel"))
    from qemu import boot_kernel, built_kernel

    pico2 = built_kernel("pico2")
    xipscope("profile", "--target", f"sim://{pico2.vmlinux}?kernel={pico2.image}&dtb={pico2.dtb}", "--elf",
             str(pico2.vmlinux), "--cycles", "--rate", "200", "--until", "__delay", "--samples", "25000", "--seed", "1",
             "--out", rel(fresh("twin-linux-boot")))

    # 7. The real rv32 nommu Linux kernel in QEMU after its panic, with stacks (speedscope, collapsed stacks).

    kernel = fresh("qemu-kernel-panic")
    build = built_kernel("dwarf")
    with tempfile.TemporaryDirectory() as work, boot_kernel(build, Path(work)) as qemu:
        xipscope("profile", "--target", qemu.url, "--elf", str(build.vmlinux), "--samples", "1000", "--stacks",
                 "--map", "qemu-virt", "--out", rel(kernel))
    print("reports written under", REPORTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
