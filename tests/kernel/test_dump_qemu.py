"""`xipscope dump` of the real kernel in QEMU, byte for byte what gdb's `x` reads (split from twin/test_dump.py: this part
boots a kernel)."""

from __future__ import annotations

from support.dump_vs_gdb import gdb_bytes, our_bytes


def test_dump_agrees_with_gdb_on_the_qemu_kernel(dwarf_qemu):
    from xipscope.elf.symbols import load_symbols

    vmlinux = dwarf_qemu.build.vmlinux
    banner = load_symbols(vmlinux).address_of("linux_banner")
    ours, lines = our_bytes(dwarf_qemu.url, banner, 64, "--elf", str(vmlinux), "--map", "qemu-virt")
    assert ours.startswith(b"Linux version 6.1")
    assert all(" dram [SRAM]" in ln for ln in lines)
    assert lines[0].endswith("<linux_banner>") and lines[1].endswith("<linux_banner+0x10>")
    assert ours == gdb_bytes(dwarf_qemu.port, banner, 64)
