"""`xipscope profile --stacks` and its report on the real rv32 kernel in QEMU (split from twin/test_analyses.py: this
part boots a kernel)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.kernel
def test_profile_and_report_of_the_panicked_kernel(icount_qemu, dwarf_kernel, tmp_path):
    """`xipscope profile --stacks` against the real kernel in QEMU, then its report: after the panic, the delay loop
    holds the pc, and the stacks run through panic(). At 200 samples/s the kernel runs between samples; as fast as
    rsp:// goes it would be halted nearly all the time, and its pending timer ticks would take the top spot.
    QEMU runs with -icount (conftest's icount_qemu): with guest time on the host's clock, a loaded host gave the
    timer tick the top spot (handle_exception first, or __delay at 0.475)."""
    import pandas as pd

    out = tmp_path / "profile"
    result = subprocess.run([sys.executable, "-m", "xipscope", "profile", "--target", icount_qemu.url,
                             "--elf", str(dwarf_kernel.vmlinux), "--samples", "200", "--rate", "200", "--stacks",
                             "--map", "qemu-virt",
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = out / "report"
    by_function = pd.read_csv(report / "by_function.csv", index_col=0)
    assert by_function.index[0] == "__delay" and by_function.loc["__delay", "share"] > 0.5
    assert by_function["sram"].sum() == 200           # qemu-virt's DRAM is plain RAM (kind sram)
    collapsed = (report / "stacks.collapsed").read_text().splitlines()
    top = collapsed[0]
    assert ";panic;" in top and top.rsplit(" ", 1)[0].endswith("__delay")
    assert sum(int(line.rsplit(" ", 1)[1]) for line in collapsed) == 200
