"""Loading a kernel on the twin (a model) as the ports' bootloader does (linux-on-rp2350.md "Boot"): what is checked
before anything runs, each refusal naming the file and what was expected, and a boot that runs out of its budget
(the stop named, the console kept). The boots themselves are in test_sim_kernel.py (marked kernel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qemu import built_kernel

from xipscope.chip import rp2350 as rp
from xipscope.errors import SymbolError, TargetError
from xipscope.sim.hazard3 import Machine
from xipscope.sim.hazard3.core import fdt_problem

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware" / "xipbench.elf"   # linked in flash, not at 0x11000000


def minimal_dtb() -> bytes:
    """The smallest well-formed flattened device tree (Devicetree Specification 5.2): a 40-byte header, an empty
    memory reservation block (one zero entry), a structure block holding only the root node, no strings."""
    struct = (1).to_bytes(4, "big") + bytes(4) + (2).to_bytes(4, "big") + (9).to_bytes(4, "big")
    total = 40 + 16 + len(struct)
    fields = (0xD00DFEED, total, 56, total, 40, 17, 16, 0, 0, len(struct))
    return b"".join(v.to_bytes(4, "big") for v in fields) + bytes(16) + struct


def image(tmp_path: Path) -> Path:
    """A minimal Image: the riscv_image_header's two magics (arch/riscv/include/asm/image.h) and nothing else."""
    data = bytearray(64)
    for off, magic in (rp.RISCV_IMAGE_MAGIC, rp.RISCV_IMAGE_MAGIC2):
        data[off:off + len(magic)] = magic
    p = tmp_path / "Image"
    p.write_bytes(bytes(data))
    return p


def test_an_image_that_is_not_riscv_is_refused_by_name(tmp_path):
    bad = tmp_path / "zImage"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(TargetError, match=r"zImage: not a RISC-V Linux Image"):
        Machine(FIRMWARE, kernel_image=bad)


def test_an_elf_not_linked_where_the_image_is_loaded_is_refused(tmp_path):
    with pytest.raises(TargetError, match=r"xipbench.elf: linked at 0x1000.*loaded at 0x11000000"):
        Machine(FIRMWARE, kernel_image=image(tmp_path))


def test_a_dtb_that_is_not_one_is_refused_and_a_good_one_lands_at_0x10010000(tmp_path):
    bad = tmp_path / "board.dtb"
    bad.write_bytes(b"not a tree")
    with pytest.raises(TargetError, match=r"board.dtb: not a flattened device tree"):
        Machine(FIRMWARE, dtb=bad)
    good = tmp_path / "good.dtb"
    good.write_bytes(minimal_dtb())
    m = Machine(FIRMWARE, dtb=good)
    assert m.read_memory(rp.LINUX_DTB_ADDR, len(minimal_dtb())) == minimal_dtb()
    assert m.read_register("a0") == 0 and m.read_register("a1") == rp.LINUX_DTB_ADDR


def test_a_truncated_or_damaged_dtb_is_refused_by_what_its_header_says(tmp_path):
    cut = tmp_path / "cut.dtb"
    cut.write_bytes(minimal_dtb()[:64])          # the magic survives a truncation
    with pytest.raises(TargetError, match=r"cut.dtb: .*header says 72 bytes \(totalsize\) and the file has 64"):
        Machine(FIRMWARE, dtb=cut)
    assert fdt_problem(minimal_dtb()[:30]) == "the file has 30 bytes, fewer than the header's 40"
    damaged = bytearray(minimal_dtb())
    damaged[-4:] = bytes(4)                      # the structure block's FDT_END token gone
    assert "ends with 0" in fdt_problem(bytes(damaged))
    damaged = bytearray(minimal_dtb())
    damaged[8:12] = (70).to_bytes(4, "big")      # off_dt_struct past the end
    assert "structure block (16 bytes at offset 70) lies outside its 72 bytes" in fdt_problem(bytes(damaged))


@pytest.mark.kernel
def test_the_pico2_dtb_passes_and_its_truncation_does_not(tmp_path):
    dtb = built_kernel("pico2").dtb.read_bytes()
    assert fdt_problem(dtb) is None
    assert "and the file has 64" in fdt_problem(dtb[:64])


def test_a_system_map_given_for_the_vmlinux_says_to_pass_the_vmlinux(tmp_path):
    system_map = tmp_path / "System.map"
    system_map.write_text("11000000 T _start\n11000040 T _start_kernel\n")
    with pytest.raises(SymbolError, match=r"System.map: a System.map .* Pass the kernel's vmlinux"):
        Machine(system_map, kernel_image=image(tmp_path))


def test_an_elf_given_for_the_image_says_which_file_goes_where(tmp_path):
    with pytest.raises(TargetError, match=r"xipbench.elf: an ELF \(the vmlinux\?\), where the Image goes"):
        Machine(FIRMWARE, kernel_image=FIRMWARE)


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
