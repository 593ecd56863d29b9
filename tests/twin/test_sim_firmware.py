"""The committed firmware ELFs are what firmware/Makefile builds (reproducibly) from the committed sources."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
ELFS = ("xipbench", "amofault", "lrscspin", "xipprobe", "flashwrite_hang", "flashwrite_ok", "flasherase_ramvec")
ARM_ELFS = ("armxip",)      # Arm mode (Cortex-M33): the twin's DAP face under pyOCD's own rp2350 target


def test_rebuilt_elfs_match_committed(tmp_path):
    assert shutil.which("riscv64-unknown-elf-gcc"), "riscv64-unknown-elf-gcc is needed: apt-get install gcc-riscv64-unknown-elf"
    assert shutil.which("arm-none-eabi-as"), "arm-none-eabi-as is needed: apt-get install binutils-arm-none-eabi"
    subprocess.run(["make", "-s", "-C", str(FIRMWARE), f"OUT={tmp_path}"], check=True, capture_output=True)
    for name in ELFS + ARM_ELFS:
        built = (tmp_path / f"{name}.elf").read_bytes()
        committed = (FIRMWARE / f"{name}.elf").read_bytes()
        assert built == committed, f"{name}.elf differs from a fresh build: run `make -C firmware` and commit"


def test_elfs_carry_symbols_and_dwarf():
    from elftools.elf.elffile import ELFFile

    for name in ELFS + ARM_ELFS:
        with open(FIRMWARE / f"{name}.elf", "rb") as f:
            elf = ELFFile(f)
            assert elf.get_section_by_name(".symtab") is not None
            assert elf.has_dwarf_info() and elf.get_section_by_name(".debug_line") is not None
            machine = "EM_ARM" if name in ARM_ELFS else "EM_RISCV"
            assert elf["e_machine"] == machine and elf.elfclass == 32


def test_register_header_is_generated_from_chip_data():
    out = subprocess.run([sys.executable, str(FIRMWARE / "gen_regs.py")], check=True, capture_output=True,
                         text=True).stdout
    assert out == (FIRMWARE / "include" / "rp2350_regs.h").read_text()


def test_no_instructions_unicorn_cannot_run():
    """The twin's ISA is rv32imac_zicsr(_zifencei): no Zb*/Zcb/Zcmp, which Hazard3 has but unicorn lacks."""
    import capstone

    from xipscope.elf.program import ElfImage

    md = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV32 | capstone.CS_MODE_RISCVC)
    for name in ELFS:
        image = ElfImage(FIRMWARE / f"{name}.elf")
        checked = 0
        for fn in image.functions:
            for _sec, addr, data in image.exec_sections:
                if addr <= fn.start < addr + len(data):
                    code = data[fn.start - addr:fn.end - addr]
                    decoded = sum(i.size for i in md.disasm(code, fn.start))
                    assert decoded == len(code), f"{name}.elf {fn.name}: undecodable code at {fn.start + decoded:#x}"
                    checked += 1
        assert checked >= 5
