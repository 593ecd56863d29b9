"""Benchmark the symbol index on the real DWARF vmlinux: cold build, warm load, 1M lookups, and addr2line in the same run.

    .venv/bin/python bench/bench_symbols.py [--repeat N]

Goals (issue 2): cold index build <= 15 s; symbolizing 1,000,000 addresses to function + file:line < 1 s warm;
at least 20x the throughput of `riscv64-linux-gnu-addr2line -f` on the same machine, same addresses, same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from elftools.elf.elffile import ELFFile

from common import built_kernel
from xipscope.elf import load_symbols


def dwarf_vmlinux() -> Path:
    return built_kernel("dwarf").vmlinux


def text_addresses(elf: Path, n: int, seed: int) -> np.ndarray:
    """Seeded uniform addresses over the executable sections, 2-byte aligned (what sampled RV32C PCs look like)."""
    with open(elf, "rb") as f:
        secs = [(s["sh_addr"], s["sh_size"]) for s in ELFFile(f).iter_sections() if s["sh_flags"] & 0x4]
    base = np.array([b for b, _ in secs], dtype=np.uint64)
    sizes = np.array([sz for _, sz in secs], dtype=np.uint64)
    cum = np.concatenate([[0], np.cumsum(sizes)]).astype(np.uint64)
    r = np.random.default_rng(seed).integers(0, int(cum[-1]) // 2, n, dtype=np.uint64) * np.uint64(2)
    sec = np.searchsorted(cum, r, side="right") - 1
    return base[sec] + (r - cum[sec])


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--addr2line-addresses", type=int, default=20_000)
    args = ap.parse_args()

    vmlinux = dwarf_vmlinux()
    print(f"vmlinux: {vmlinux} ({vmlinux.stat().st_size / 1e6:.1f} MB)")

    def cold():
        with tempfile.TemporaryDirectory() as d:
            index = load_symbols(vmlinux, cache_dir=d)
            assert not index.from_cache
            return index

    cold_s, index = timed(cold, args.repeat)
    cache = Path(tempfile.mkdtemp(prefix="xipscope-bench-"))
    load_symbols(vmlinux, cache_dir=cache)

    def warm():
        ix = load_symbols(vmlinux, cache_dir=cache)
        assert ix.from_cache
        return ix

    warm_s, index = timed(warm, max(args.repeat, 5))
    print(f"index: {index!r}")

    addresses = text_addresses(vmlinux, 1_000_000, seed=2350)

    def lookup():
        s = index.symbolize(addresses)
        return s, s.function, s.file  # materialize names, as a caller building a table would

    index.symbolize(addresses[:1000])
    lookup_s, (sym, _, _) = timed(lookup, max(args.repeat, 5))
    known = np.count_nonzero(sym.line > 0) / len(sym)

    n = args.addr2line_addresses
    text = "\n".join(hex(int(a)) for a in addresses[:n]) + "\n"

    def a2l():
        out = subprocess.run(["riscv64-linux-gnu-addr2line", "-f", "-e", str(vmlinux)], input=text, check=True,
                             capture_output=True, text=True).stdout
        assert out.count("\n") == 2 * n
        return out

    a2l_s, _ = timed(a2l, args.repeat)
    ours_rate = len(addresses) / lookup_s
    a2l_rate = n / a2l_s
    ratio = ours_rate / a2l_rate

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print(f"cold index build (DWARF vmlinux)      {cold_s:8.2f} s    goal <= 15 s    {verdict(cold_s <= 15)}")
    print(f"warm load (from cache)                {warm_s * 1e3:8.1f} ms   goal well under 1 s  {verdict(warm_s < 0.5)}")
    print(f"symbolize 1,000,000 addresses (warm)  {lookup_s * 1e3:8.1f} ms   goal < 1 s      {verdict(lookup_s < 1)}"
          f"   ({known:.1%} with file:line)")
    print(f"  ours        {ours_rate:14,.0f} addresses/s")
    print(f"  addr2line -f {a2l_rate:13,.0f} addresses/s   ({n:,} addresses in {a2l_s:.2f} s)")
    print(f"  ratio       {ratio:14,.0f}x              goal >= 20x     {verdict(ratio >= 20)}")
    print(f"(medians of {args.repeat}-{max(args.repeat, 5)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
