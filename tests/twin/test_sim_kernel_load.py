"""Loading a kernel on the twin (a model) as the ports' bootloader does (linux-on-rp2350.md "Boot"): what is checked
before anything runs, each refusal naming the file and what was expected. With the built kernels (the pico2 dtb, a boot
that runs out of its budget): kernel/test_sim_kernel_load_builds.py; the boots themselves: kernel/test_sim_kernel.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from xipscope.chip import rp2350 as rp
from xipscope.errors import SymbolError, TargetError
from xipscope.sim.hazard3 import Machine
from xipscope.sim.hazard3.core import fdt_problem

REPO = Path(__file__).resolve().parents[2]
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


def test_a_system_map_given_for_the_vmlinux_says_to_pass_the_vmlinux(tmp_path):
    system_map = tmp_path / "System.map"
    system_map.write_text("11000000 T _start\n11000040 T _start_kernel\n")
    with pytest.raises(SymbolError, match=r"System.map: a System.map .* Pass the kernel's vmlinux"):
        Machine(system_map, kernel_image=image(tmp_path))


def test_an_elf_given_for_the_image_says_which_file_goes_where(tmp_path):
    with pytest.raises(TargetError, match=r"xipbench.elf: an ELF \(the vmlinux\?\), where the Image goes"):
        Machine(FIRMWARE, kernel_image=FIRMWARE)
