"""The RP2350 kernel fixtures (kernel/build.py pico2, pico2-stock) hold what the board's port needs.

Linux 6.12 for one Hazard3 hart, configured like the real ports (linux-on-rp2350.md): rv32ima without C, nommu
M-mode, linked at the PSRAM (0x11000000), earlycon on the PL011, the SIO timer, and our patches
(kernel/patches/pico2/). pico2-stock is the same kernel without the two atomics patches. These tests read the
build products; booting them on the twin is tested elsewhere.
"""

from __future__ import annotations

import struct
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from qemu import built_kernel
from xipscope.elf.symbols import load_symbols

pytestmark = pytest.mark.kernel

PSRAM = 0x11000000
EF_RISCV_RVC = 0x1
EF_RISCV_FLOAT_ABI = 0x6
SHF_EXECINSTR = 0x4
IMAGE_HEADER = 64   # arch/riscv/include/asm/image.h: struct riscv_image_header
AMO_OPCODE = 0x2F


@pytest.fixture(scope="module", params=["pico2", "pico2-stock"])
def kernel(request):
    return built_kernel(request.param)


@pytest.fixture(scope="module")
def pico2():
    return built_kernel("pico2")


@pytest.fixture(scope="module")
def pico2_stock():
    return built_kernel("pico2-stock")


def code_words(build) -> dict[str, list[int]]:
    """Each executable section of vmlinux (.head.text, .text, .init.text ...) as little-endian 32-bit words.

    .head.text starts with the 64-byte Image header (data: sizes, magic) and ends in zero padding up to the next
    section's alignment; only the instructions between are kept."""
    sections = {}
    with open(build.vmlinux, "rb") as f:
        for section in ELFFile(f).iter_sections():
            if section["sh_flags"] & SHF_EXECINSTR and section["sh_type"] == "SHT_PROGBITS" and section["sh_size"]:
                addr, size = section["sh_addr"], section["sh_size"]
                assert addr % 4 == 0 and size % 4 == 0, \
                    f"{section.name} is not whole 4-byte instructions ({size:#x} bytes at {addr:#x})"
                data = section.data()
                words = list(struct.unpack(f"<{len(data) // 4}I", data))
                if section.name == ".head.text":
                    words = words[IMAGE_HEADER // 4:]
                    while words and words[-1] == 0:
                        words.pop()
                sections[section.name] = words
    assert {".head.text", ".text", ".init.text"} <= set(sections), sorted(sections)
    return sections


def all_code(build) -> list[int]:
    return [w for words in code_words(build).values() for w in words]


def atomics(words: list[int]) -> dict[str, int]:
    """Counts of the A extension's 32-bit instructions by kind (funct5 2 = lr.w, 3 = sc.w, the rest AMOs)."""
    counts = {"lr.w": 0, "sc.w": 0, "amo": 0}
    for w in words:
        if w & 0x7F == AMO_OPCODE and (w >> 12) & 7 == 2:
            funct5 = w >> 27
            counts["lr.w" if funct5 == 2 else "sc.w" if funct5 == 3 else "amo"] += 1
    return counts


def fdtget(build, *args: str) -> str:
    result = subprocess.run(["fdtget", str(build.dtb), *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_vmlinux_is_rv32_without_c_linked_at_psram(kernel):
    with open(kernel.vmlinux, "rb") as f:
        elf = ELFFile(f)
        assert (elf.elfclass, elf["e_machine"]) == (32, "EM_RISCV")
        assert elf["e_flags"] & EF_RISCV_RVC == 0, "vmlinux is marked as using compressed instructions"
        assert elf["e_flags"] & EF_RISCV_FLOAT_ABI == 0, "not the soft-float ABI (the kernel has no FPU)"
        assert elf["e_entry"] == PSRAM
        loads = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
        assert loads[0]["p_vaddr"] == PSRAM
        assert elf.get_section_by_name(".text")["sh_addr"] > PSRAM
        assert elf.get_section_by_name(".debug_info") is not None, "no DWARF"
    symbols = load_symbols(kernel.system_map)
    assert symbols.address_of("_start") == PSRAM
    assert PSRAM < symbols.address_of("_end") < PSRAM + 0x800000, "the kernel must fit the 8 MiB PSRAM"


def test_image_is_a_riscv_image_of_vmlinux(kernel):
    header = kernel.image.read_bytes()[:64]
    assert header[48:56] == b"RISCV\0\0\0" and header[56:60] == b"RSC\x05"
    text_offset, image_size = struct.unpack_from("<QQ", header, 8)
    assert text_offset == 0   # loaded at the start of RAM: the bootloader copies it to 0x11000000
    symbols = load_symbols(kernel.system_map)
    assert image_size == symbols.address_of("_end") - PSRAM


def test_no_compressed_instructions_in_code(kernel):
    sections = code_words(kernel)
    assert len(sections[".text"]) > 50_000
    # A 32-bit instruction's two low bits are 11; a 16-bit (C) one's are 00, 01 or 10. Without C every instruction is
    # 4 bytes and 4-byte aligned, so each word of code is one instruction.
    for name, words in sections.items():
        compressed = [i * 4 for i, w in enumerate(words) if w & 3 != 3]
        assert compressed == [], \
            f"{name}: {len(compressed)} words are not 32-bit instructions, the first at +{compressed[0]:#x}"


@pytest.mark.parametrize("option, value", [
    ("CONFIG_ARCH_RV32I", "y"), ("CONFIG_RISCV_M_MODE", "y"), ("CONFIG_PAGE_OFFSET", "0x11000000"),
    ("CONFIG_PHYS_RAM_BASE", "0x11000000"), ("CONFIG_LOG_BUF_SHIFT", "16"), ("CONFIG_DEBUG_INFO_DWARF4", "y"),
    ("CONFIG_FRAME_POINTER", "y"), ("CONFIG_KALLSYMS", "y"), ("CONFIG_SERIAL_AMBA_PL011_CONSOLE", "y"),
    ("CONFIG_SERIAL_EARLYCON", "y"), ("CONFIG_CLINT_TIMER", "y"),
    ("CONFIG_CMDLINE", '"earlycon=pl011,mmio32,0x40070000 keep_bootcon"'), ("CONFIG_CMDLINE_FORCE", "y"),
    ("CONFIG_XIPSCOPE_PICO2", "y"), ("CONFIG_XIPSCOPE_PICO2_PSRAM_BASE", "y"), ("CONFIG_XIPSCOPE_PICO2_SIO_TIMER", "y"),
    ("CONFIG_MMU", None), ("CONFIG_SMP", None), ("CONFIG_RISCV_ISA_C", None), ("CONFIG_FPU", None),
    ("CONFIG_RISCV_ISA_ZBB", None), ("CONFIG_FUTEX", None),
])
def test_config_is_the_ports(kernel, option, value):
    assert kernel.config(option) == value


def test_config_is_linux_6_12(kernel):
    first_lines = (kernel.dir / ".config").read_text().splitlines()[:3]
    assert any(line.startswith("# Linux/riscv 6.12.") for line in first_lines), first_lines


def test_atomics_patches_are_on_in_pico2_only(pico2, pico2_stock):
    for option in ("CONFIG_XIPSCOPE_PICO2_AMO_EMULATION", "CONFIG_XIPSCOPE_PICO2_NO_LRSC"):
        assert pico2.config(option) == "y"
        assert pico2_stock.config(option) is None


def test_amo_emulated_count_in_pico2_only(pico2, pico2_stock):
    counter = load_symbols(pico2.system_map).address_of("amo_emulated_count")
    assert PSRAM < counter < PSRAM + 0x800000
    assert "amo_emulated_count" not in pico2_stock.system_map.read_text()


def test_lrsc_loops_gone_from_pico2_amos_kept(pico2, pico2_stock):
    patched, stock = atomics(all_code(pico2)), atomics(all_code(pico2_stock))
    assert patched["lr.w"] == 0 and patched["sc.w"] == 0, patched
    # The stock kernel's cmpxchg loops and the sc.w of the trap return are there...
    assert stock["lr.w"] > 10 and stock["sc.w"] > 10, stock
    # ...and both keep their AMOs: on the board the patched kernel's trap path emulates them.
    assert patched["amo"] > 100 and stock["amo"] > 100, (patched, stock)


def test_board_drivers_are_built_in(kernel):
    names = kernel.system_map.read_text()
    for symbol in ("pl011_early_console_setup", "clint_timer_init_dt", "do_trap_store_fault"):
        assert f" {symbol}\n" in names, symbol


def test_dtb_describes_the_board(kernel):
    assert set(fdtget(kernel, "-l", "/").split()) == {"chosen", "cpus", "memory@11000000", "soc"}
    assert fdtget(kernel, "-t", "x", "/memory@11000000", "reg") == "11000000 800000"
    assert fdtget(kernel, "/memory@11000000", "device_type") == "memory"
    assert fdtget(kernel, "/cpus", "timebase-frequency") == "1000000"
    assert fdtget(kernel, "/cpus/cpu@0", "riscv,isa") == "rv32ima"
    assert fdtget(kernel, "/cpus/cpu@0", "mmu-type") == "riscv,none"
    assert fdtget(kernel, "/cpus/cpu@0/interrupt-controller", "compatible") == "riscv,cpu-intc"
    intc = fdtget(kernel, "/cpus/cpu@0/interrupt-controller", "phandle")
    assert set(fdtget(kernel, "-l", "/soc").split()) == {"clint@d0000000", "serial@40070000"}
    assert fdtget(kernel, "/soc/clint@d0000000", "compatible") == "riscv,clint0"
    assert fdtget(kernel, "-t", "x", "/soc/clint@d0000000", "reg") == "d0000000 400"
    # machine software (3) and timer (7) interrupts of the hart's cpu-intc
    assert fdtget(kernel, "/soc/clint@d0000000", "interrupts-extended") == f"{intc} 3 {intc} 7"
    assert fdtget(kernel, "/soc/serial@40070000", "compatible") == "arm,sbsa-uart"
    assert fdtget(kernel, "-t", "x", "/soc/serial@40070000", "reg") == "40070000 1000"


def test_dtb_round_trips_through_dtc(kernel):
    """dtc itself decodes the DTB without complaint (a DTB the kernel's unflattener would also accept)."""
    result = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", str(kernel.dtb)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "memory@11000000" in result.stdout and 'compatible = "riscv-minimal-nommu"' in result.stdout
