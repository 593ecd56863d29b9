"""Loading the built pico2 and QEMU kernels on the twin (a model): the pico2 dtb, an Image beside the wrong vmlinux, and a
boot that runs out of its budget (split from twin/test_sim_kernel_load.py: this part builds kernels)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qemu import built_kernel

from xipscope.errors import TargetError
from xipscope.sim.hazard3 import Machine
from xipscope.sim.hazard3.core import fdt_problem

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.kernel
def test_the_pico2_dtb_passes_and_its_truncation_does_not(tmp_path):
    dtb = built_kernel("pico2").dtb.read_bytes()
    assert fdt_problem(dtb) is None
    assert "and the file has 64" in fdt_problem(dtb[:64])


@pytest.mark.kernel
def test_an_image_linked_elsewhere_is_refused_against_the_vmlinux():
    # QEMU virt's kernel is linked at 0x80000000; its Image is a RISC-V Image all the same. Beside the pico2 vmlinux
    # (linked at 0x11000000) its code is not the code the symbols name.
    pico2, qemu_virt = built_kernel("pico2"), built_kernel("dwarf")
    with pytest.raises(TargetError, match=r"Image: not the Image of .*vmlinux: its bytes at 0x11000000 differ"):
        Machine(pico2.vmlinux, kernel_image=qemu_virt.image, dtb=pico2.dtb)
    with pytest.raises(TargetError, match=r"vmlinux: linked at 0x80000000 \(_start\), but the Image is loaded at "
                                          r"0x11000000"):
        Machine(qemu_virt.vmlinux, kernel_image=qemu_virt.image)


@pytest.mark.kernel
def test_a_boot_that_runs_out_of_its_budget_names_the_stop_and_keeps_the_console(tmp_path):
    build = built_kernel("pico2")
    log = tmp_path / "uart.log"
    args = [sys.executable, "-m", "xipscope", "sim", str(build.vmlinux), "--kernel", str(build.image), "--dtb",
            str(build.dtb), "--run", "--max-instructions", "3000000", "--uart-log", str(log)]
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit"))
    text = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert text.returncode == 0, text.stderr
    assert "stopped (budget: the 3,000,000 instructions of --max-instructions ran out)" in text.stdout
    assert log.read_text().startswith("[    0.000000] Linux version 6.12")     # what it printed is kept
    assert "Linux version 6.12" in text.stdout
    report = json.loads(subprocess.run(args + ["--json"], env=env, capture_output=True, text=True,
                                       timeout=600).stdout)
    assert report["stop"] == "budget" and report["max_instructions"] == 3_000_000
    assert report["uart"].startswith("[    0.000000] Linux version 6.12")
