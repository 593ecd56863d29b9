"""Loading a kernel on the twin (a model) as the ports' bootloader does (linux-on-rp2350.md "Boot"): what is checked
before anything runs, each refusal naming the file and what was expected. The boots themselves are in
test_sim_kernel.py (marked kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xipscope.chip import rp2350 as rp
from xipscope.errors import TargetError
from xipscope.sim.hazard3 import Machine

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware" / "xipbench.elf"   # linked in flash, not at 0x11000000


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
    good.write_bytes(b"\xd0\x0d\xfe\xed" + bytes(60))
    m = Machine(FIRMWARE, dtb=good)
    assert m.read_memory(rp.LINUX_DTB_ADDR, 4) == b"\xd0\x0d\xfe\xed"
    assert m.read_register("a0") == 0 and m.read_register("a1") == rp.LINUX_DTB_ADDR
