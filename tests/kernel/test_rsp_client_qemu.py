"""rsp:// against QEMU's real gdbstub on the booted kernel (split from unit/test_rsp_client.py, which keeps the scripted
servers: this part boots a kernel)."""

from __future__ import annotations

import pytest

from xipscope.errors import TargetError
from xipscope.targets import open_target
from xipscope.targets.rsp import RspTarget


@pytest.fixture
def qemu_target(dwarf_qemu):
    target = RspTarget("127.0.0.1", dwarf_qemu.port)
    yield target
    target.close()


@pytest.mark.kernel
def test_registers_and_csrs_by_name(qemu_target, dwarf_qemu):
    symbols = __import__("xipscope.elf.symbols", fromlist=["load_symbols"]).load_symbols(dwarf_qemu.build.vmlinux)
    regs = qemu_target.read_registers()
    assert set(regs) >= {"zero", "ra", "sp", "pc"} and regs["zero"] == 0
    assert qemu_target.read_register("pc") == regs["pc"]
    assert qemu_target.read_register("sp") == regs["sp"]
    misa = qemu_target.read_register("misa")
    assert misa >> 30 == 1                                  # MXL = 1: a 32-bit hart
    assert all(misa >> (ord(ext) - ord("a")) & 1 for ext in "imac")
    assert qemu_target.read_register("mtvec") == symbols.address_of("handle_exception")
    names = {r.name for r in qemu_target.registers}
    assert {"mcause", "mepc", "mtval", "mscratch"} <= names


@pytest.mark.kernel
def test_memory_reads_agree_across_chunk_sizes(qemu_target, dwarf_qemu):
    from xipscope.elf.symbols import load_symbols
    symbols = load_symbols(dwarf_qemu.build.system_map)
    start = symbols.address_of("_start")
    big = qemu_target.read_memory(start, 3 * qemu_target.max_read + 17)
    pieces = b"".join(qemu_target.read_memory(start + o, 1000) for o in range(0, len(big), 1000))
    assert big == pieces[:len(big)]
    image = dwarf_qemu.build.image.read_bytes()
    assert big == image[:len(big)]   # the kernel runs where QEMU loaded Image: at the start of RAM


@pytest.mark.kernel
def test_polled_replies_read_the_same_memory(qemu_target, dwarf_qemu):
    start = dwarf_qemu.build.image.read_bytes()[:2 * qemu_target.max_read + 5]
    qemu_target.conn.poll_replies = True
    assert qemu_target.read_memory(0x80000000, len(start)) == start
    assert qemu_target.read_register("pc") == qemu_target.read_registers()["pc"]


@pytest.mark.kernel
def test_unmapped_memory_is_a_clear_error(qemu_target):
    with pytest.raises(TargetError, match=r"cannot read memory at 0x0\b|memory ends at"):
        qemu_target.read_memory(0x0, 64)
    assert qemu_target.read_memory(0x80000000, 4)   # the session survives the error


@pytest.mark.kernel
def test_resume_and_interrupt(qemu_target, dwarf_qemu):
    from xipscope.elf.symbols import load_symbols
    symbols = load_symbols(dwarf_qemu.build.system_map)   # _stext/_etext are untyped: System.map lists them
    qemu_target.resume()
    assert qemu_target.state() == "running"
    with pytest.raises(TargetError, match="while the target runs"):
        qemu_target.read_memory(0x80000000, 4)
    stop = qemu_target.halt()
    assert qemu_target.state() == "halted" and stop.signal == 2   # SIGINT, as gdb reports ^C
    # after the panic the kernel spins in panic()'s delay loop, taking timer interrupts: somewhere in its text
    pc = qemu_target.read_register("pc")
    assert symbols.address_of("_stext") <= pc < symbols.address_of("_etext")
    assert symbols.symbolize([pc])[0][0] is not None


@pytest.mark.kernel
def test_open_target_by_url(dwarf_qemu):
    target = open_target(dwarf_qemu.url)
    try:
        assert target.read_memory(0x80000000, 4) == dwarf_qemu.build.image.read_bytes()[:4]
    finally:
        target.close()
