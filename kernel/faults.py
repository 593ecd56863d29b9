"""Real faults injected into the QEMU test kernel through its gdbstub, for tests and benches of `xipscope trap`.

Run to a hardware breakpoint at `prepare_namespace` (before the kernel panics and printk goes quiet), point pc at a
store or AMO in kernel text and its base register at unmapped memory, and stop at `handle_exception`, the trap vector,
before its first instruction. QEMU raises the fault; the kernel's own handler prints the oops once it runs on.
"""

from __future__ import annotations

from pathlib import Path

UNMAPPED = 0x0080_0000          # nothing in QEMU virt's memory map (hw/riscv/virt.c) between 0x102000 and 0x2000000
AVOID_BASES = ("zero", "sp", "gp", "tp")   # the trap handler itself needs these


def find_instruction(vmlinux: Path, symbols, kind: str, function: str | None):
    """The first `kind` instruction (store, amo) in `function` (or anywhere in .text) with an ordinary base register."""
    from elftools.elf.elffile import ELFFile

    from xipscope.chip import rv_insn
    from xipscope.elf.code import read_elf_bytes

    if function is not None:
        start = symbols.address_of(function)
        code = read_elf_bytes(vmlinux, start, symbols.symbols_named(function)[0].size)
    else:
        with open(vmlinux, "rb") as f:
            text = ELFFile(f).get_section_by_name(".text")
            start, code = text["sh_addr"], text.data()
    for insn in rv_insn.disassemble(code, start):
        if insn.kind == kind and insn.base_name not in AVOID_BASES:
            return insn
    raise LookupError(f"no {kind} instruction in {function or '.text'}")


def inject_fault(port: int, symbols, insn) -> int:
    """Make QEMU (halted at reset, `boot_kernel_halted`) execute `insn` with its base register pointing at UNMAPPED;
    return mcause, leaving QEMU paused at handle_exception with no client attached."""
    from xipscope.chip.riscv import MSTATUS_MIE
    from xipscope.targets.rsp import RspTarget

    target = RspTarget("127.0.0.1", port, timeout=30)
    try:
        entry = symbols.address_of("prepare_namespace")
        target.set_breakpoint(entry)
        target.continue_until_stop(timeout=60)
        assert target.read_register("pc") == entry, "did not stop at prepare_namespace"
        target.remove_breakpoint(entry)
        target.write_register("pc", insn.address)
        target.write_register(insn.base_name, UNMAPPED - insn.offset)
        # A timer interrupt falls due while we sit at the breakpoint; taken first, it would bring the scheduler in
        # before our instruction runs. Mask interrupts (mstatus.MIE) so that the instruction's own fault comes first.
        target.write_register("mstatus", target.read_register("mstatus") & ~MSTATUS_MIE)
        vector = symbols.address_of("handle_exception")
        target.set_breakpoint(vector)
        target.continue_until_stop(timeout=30)
        assert target.read_register("pc") == vector, "did not stop at handle_exception"
        assert target.read_register("mepc") == insn.address
        target.remove_breakpoint(vector)   # (QEMU 7.2 drops a client's breakpoints when it goes anyway)
        return target.read_register("mcause")
    finally:
        target.disconnect()    # no `D`: QEMU stays paused at the trap vector for the next client
