"""The instruction decoder against capstone on every instruction of the real kernel's .text (split from
unit/test_rv_insn.py: this part builds a kernel)."""

from __future__ import annotations

from support.rv_operands import MEM_OPERAND
from xipscope.chip import rv_insn


def kernel_text(vmlinux):
    from elftools.elf.elffile import ELFFile

    with open(vmlinux, "rb") as f:
        section = ELFFile(f).get_section_by_name(".text")
        return section["sh_addr"], section.data()


def test_decoder_agrees_with_capstone_on_kernel_text(dwarf_kernel):
    import capstone

    address, code = kernel_text(dwarf_kernel.vmlinux)
    md = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV32 | capstone.CS_MODE_RISCVC)
    seen: dict[tuple[str, int], int] = {}
    checked = targets = 0
    for insn in md.disasm(code, address):
        ours = rv_insn.decode(bytes(insn.bytes), insn.address)
        assert ours.length == insn.size, insn
        seen[(ours.kind, ours.length)] = seen.get((ours.kind, ours.length), 0) + 1
        assert ours.text == f"{insn.mnemonic} {insn.op_str}".strip()
        m = MEM_OPERAND.search(insn.op_str)
        if m and not insn.mnemonic.endswith("jalr"):
            base = "fp" if m.group(2) == "s0" else m.group(2)
            assert (ours.base_name, ours.offset) == (base, int(m.group(1) or "0", 0)), (insn, ours)
            if insn.mnemonic.startswith(("lr.", "sc.", "amo")):
                assert ours.kind == insn.mnemonic[:2].replace("am", "amo")
            else:
                assert ours.kind in ("load", "store")
        else:
            assert ours.base is None, (insn, ours)
        if insn.mnemonic.lstrip("c.") in ("j", "jal", "jr", "jalr"):
            assert ours.kind == "jump", insn
        if insn.mnemonic.startswith(("b", "c.b")):
            assert ours.kind == "branch", insn
        if ours.target is not None:   # direct jumps and branches: capstone prints the offset
            assert ours.target == (insn.address + int(insn.op_str.split(", ")[-1], 0)) & 0xFFFFFFFF, insn
            targets += 1
        checked += 1
    assert checked > 100_000 and targets > 10_000
    # both encodings of every memory class occur in kernel text
    for key in [("load", 2), ("load", 4), ("store", 2), ("store", 4), ("amo", 4), ("lr", 4), ("sc", 4)]:
        assert seen.get(key, 0) > 10, key
