"""Benchmark: `xipscope profile`'s rsp:// sampler against the floor, the raw pipelined socket loop, in the same run.

Issue 16 item 6. Against the QEMU Linux fixture (the dwarf kernel booted to its panic), as the OS places the
processes, each round runs, in an order that rotates from round to round:
- the raw loop, blocking: \\x03 + `g` + `c` in one write, then recv() until both replies are in; no parsing;
- the raw loop, polling: the same with non-blocking reads and sched_yield() between them;
- xipscope's sampler as `xipscope profile` runs it (sample_profile: the reply-wait choice, checks, Parquet writes),
  with rsp://'s native loop (rsp/sample_loop.c), and the same without it (XIPSCOPE_NATIVE=0);
Each is a fresh connection (QEMU takes one client at a time) taking SAMPLES samples, timed over all of them: 40,000
by default, about 3 s here, shorter than `xipscope profile`'s default 5 s run, long enough that the reply-wait
choice's start (512 samples unmeasured, then blocks of each way) weighs as it does in a user's run (at 8,000 samples
it weighed 0.03-0.05 of the ratio). Prints the
medians, the floor (the faster raw median) and the ratio sampler / floor (goal: at least 0.95), and the load average:
these 2-core machines are shared, so only figures from one run, alternating, compare.

    python bench/bench_rsp_floor.py [--rounds N] [--samples N]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, boot_kernel, built_kernel, report

sys.path.insert(0, str(REPO / "toolkit"))

from xipscope.chip.memory_map import get_memory_map  # noqa: E402
from xipscope.profile.sampler import sample_profile  # noqa: E402
from xipscope.targets.base import SampleRequest, open_sampler  # noqa: E402
from xipscope.targets.rsp import RspTarget  # noqa: E402
from xipscope.rsp.packets import frame  # noqa: E402


def raw_rate(port: int, samples: int, poll: bool) -> float:
    """The floor: samples/s of the raw pipelined loop, blocking on recv() or polling (MSG_DONTWAIT + sched_yield).
    A sample is over when two packets (the stop reply and the g reply) are complete; acks are not looked at."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    burst = b"\x03" + frame(b"g") + frame(b"c")
    recv, yield_cpu = sock.recv, os.sched_yield
    flags = socket.MSG_DONTWAIT if poll else 0
    try:
        sock.sendall(frame(b"?"))     # QEMU stopped the guest for us; take its stop reply, then let it run
        buffer = b""
        while buffer.count(b"#") < 1:
            buffer += sock.recv(65536)
        sock.sendall(b"+" + frame(b"c"))
        t0 = time.perf_counter()
        for _ in range(samples):
            sock.sendall(burst)
            buffer = b""
            while buffer.count(b"#") < 2 or len(buffer) < buffer.rindex(b"#") + 3:
                try:
                    buffer += recv(65536, flags)
                except BlockingIOError:
                    yield_cpu()
        rate = samples / (time.perf_counter() - t0)
        sock.sendall(b"\x03")
        time.sleep(0.05)
        sock.sendall(b"+" + frame(b"D"))     # detach: QEMU lets the guest run for the next client
        time.sleep(0.05)
        return rate
    finally:
        sock.close()


def sampler_rate(port: int, samples: int, workdir: Path) -> tuple[float, dict]:
    """samples/s of sample_profile (what `xipscope profile` runs) and how it awaited replies."""
    target = RspTarget("127.0.0.1", port)
    try:
        run = sample_profile(target, workdir / f"run-{time.monotonic_ns()}", memory_map=get_memory_map("qemu-virt"),
                             samples=samples)
    finally:
        target.close()
    return run.meta["rate_hz_achieved"], run.meta["reply_wait"]


def python_sampler_rate(port: int, samples: int, workdir: Path) -> tuple[float, dict]:
    """sampler_rate without the native loop (XIPSCOPE_NATIVE=0: rsp://'s Python path takes every sample)."""
    os.environ["XIPSCOPE_NATIVE"] = "0"
    try:
        return sampler_rate(port, samples, workdir)
    finally:
        del os.environ["XIPSCOPE_NATIVE"]


def take_rate(port: int, samples: int) -> float:
    """samples/s of the sampler's take() alone in a bare loop (no Parquet, no timing per sample): the part of the
    gap to the floor that is the transport's own."""
    target = RspTarget("127.0.0.1", port)
    try:
        sampler = open_sampler(target, SampleRequest(registers=("pc",)))
        take = sampler.take
        if target.state() != "running":
            target.resume()
        t0 = time.perf_counter()
        for _ in range(samples):
            take()
        return samples / (time.perf_counter() - t0)
    finally:
        target.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--samples", type=int, default=40000)
    args = parser.parse_args()
    import pandas  # noqa: F401  (sample_profile imports these first; do it before anything is timed)
    import pyarrow.parquet  # noqa: F401
    build = built_kernel("dwarf")
    loads = [os.getloadavg()[0]]
    rates: dict[str, list[float]] = {"raw blocking": [], "raw polling": [], "xipscope profile": [],
                                     "profile, Python loop": [], "sampler take() alone": []}
    waits: list[str] = []
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, boot_kernel(build, Path(tmp)) as qemu:
        runs = {"raw blocking": lambda: raw_rate(qemu.port, args.samples, poll=False),
                "raw polling": lambda: raw_rate(qemu.port, args.samples, poll=True),
                "xipscope profile": lambda: sampler_rate(qemu.port, args.samples, Path(tmp)),
                "profile, Python loop": lambda: python_sampler_rate(qemu.port, args.samples, Path(tmp)),
                "sampler take() alone": lambda: take_rate(qemu.port, args.samples)}
        names = list(runs)
        for round_ in range(args.rounds):
            got = {}
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                result = runs[name]()
                if name == "profile, Python loop":
                    result = result[0]
                if name == "xipscope profile":
                    result, wait = result
                    measured = ", ".join(f"{w} {us:.0f} us" for w, us in (wait["us_per_sample"] or {}).items())
                    waits.append(f"{wait['replies']} ({measured})")
                got[name] = result
                rates[name].append(result)
            ratios.append(got["xipscope profile"] / max(got["raw blocking"], got["raw polling"]))
            loads.append(os.getloadavg()[0])
            print(f"round {round_ + 1}: " + ", ".join(f"{n} {r:,.0f}/s" for n, r in got.items())
                  + f"; ratio {ratios[-1]:.2f}; replies {waits[-1]}", flush=True)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    floor = max(medians["raw blocking"], medians["raw polling"])
    print(f"\nrsp:// against QEMU (dwarf kernel at its panic), {args.rounds} alternating rounds of {args.samples} "
          f"samples; {os.cpu_count()} CPUs, load average {min(loads):.1f}-{max(loads):.1f} during the run")
    rows = [(name, f"{m:,.0f} samples/s (median; range {min(rates[name]):,.0f}-{max(rates[name]):,.0f})")
            for name, m in medians.items()]
    rows += [("floor (the faster raw loop, by median)", f"{floor:,.0f} samples/s"),
             ("xipscope profile / floor (medians)", f"{medians['xipscope profile'] / floor:.2f}x (goal 0.95x)"),
             ("xipscope profile / floor (median of per-round ratios)", f"{statistics.median(ratios):.2f}x")]
    report(rows)


if __name__ == "__main__":
    main()
