"""The instruction decoder against binutils for Zb*, against capstone on any 32 bits, and against LLVM's published
encodings for Zcb/Zcmp (no disassembler on this machine knows those two). Against capstone on the real kernel's text:
kernel/test_rv_insn_kernel_text.py."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.rv_operands import MEM_OPERAND
from xipscope.chip import rv_insn
from xipscope.chip.riscv import GPR_NAMES


@pytest.mark.parametrize("source, kind, size", [
    ("lw a5, 12(a0)", "load", 4), ("lbu a0, -1(sp)", "load", 1), ("lhu t0, 2046(s1)", "load", 2),
    ("sw ra, -2048(s0)", "store", 4), ("sb zero, 7(a3)", "store", 1), ("sh a1, 0(t6)", "store", 2),
    ("amoswap.w.aq a0, a1, (a2)", "amo", 4), ("amoadd.w a5, a5, (s1)", "amo", 4),
    ("lr.w t0, (a0)", "lr", 4), ("sc.w.rl t1, t2, (a0)", "sc", 4),
    ("c.lw a2, 4(a5)", "load", 4), ("c.sw s1, 124(a0)", "store", 4), ("c.lwsp ra, 252(sp)", "load", 4),
    ("c.swsp s0, 8(sp)", "store", 4),
])
def test_decoder_against_binutils_for_memory_forms(tmp_path, source, kind, size):
    encoded = assemble(tmp_path, source, "rv32imac")
    insn = rv_insn.decode(encoded, 0x80000000)
    m = re.search(r"(-?\d+)?\((\w+)\)$", source)
    assert insn.kind == kind and insn.size == size
    assert insn.base_name == ("fp" if m.group(2) == "s0" else m.group(2))
    assert insn.offset == int(m.group(1) or 0)
    regs = {name: 0x20001000 for name in GPR_NAMES}
    assert insn.effective_address(regs) == (0x20001000 + insn.offset) & 0xFFFFFFFF


@pytest.mark.parametrize("source, name", [
    ("sh1add a0, a1, a2", "sh1add"), ("sh3add t0, t1, t2", "sh3add"), ("andn a0, a1, a2", "andn"),
    ("orn a0, a1, a2", "orn"), ("xnor a0, a1, a2", "xnor"), ("clz a0, a1", "clz"), ("ctz a0, a1", "ctz"),
    ("cpop a0, a1", "cpop"), ("max a0, a1, a2", "max"), ("minu a0, a1, a2", "minu"), ("sext.b a0, a1", "sext.b"),
    ("sext.h a0, a1", "sext.h"), ("zext.h a0, a1", "zext.h"), ("rol a0, a1, a2", "rol"), ("rori a0, a1, 5", "rori"),
    ("orc.b a0, a1", "orc.b"), ("rev8 a0, a1", "rev8"), ("bclr a0, a1, a2", "bclr"), ("bseti a0, a1, 31", "bseti"),
    ("binvi a0, a1, 3", "binvi"), ("bexti a0, a1, 3", "bexti"), ("pack a0, a1, a2", "pack"),
    ("packh a0, a1, a2", "packh"), ("brev8 a0, a1", "brev8"), ("zip a0, a1", "zip"), ("unzip a0, a1", "unzip"),
])
def test_bitmanip_names_against_binutils(tmp_path, source, name):
    encoded = assemble(tmp_path, source, "rv32ima_zba_zbb_zbs_zbkb")
    insn = rv_insn.decode(encoded, 0)
    assert insn.mnemonic == name and insn.kind == "other" and insn.extension
    assert insn.text.split()[0] == name          # capstone 5 does not know these: the text is ours
    assert insn.text.replace(" ", "") == source.replace(" ", "")


# Encodings from LLVM's MC tests (llvm/test/MC/RISCV/rv32zcb-valid.s and rv32zcmp-valid.s).
ZCB = [(0x833C, "c.lbu", "load", 1, 2), (0x873C, "c.lhu", "load", 2, 2), (0x877C, "c.lh", "load", 2, 2),
       (0x8B3C, "c.sb", "store", 1, 2), (0x8F7C, "c.sh", "store", 2, 2)]


@pytest.mark.parametrize("raw, name, kind, size, offset", ZCB)
def test_zcb_loads_and_stores(raw, name, kind, size, offset):
    insn = rv_insn.decode(raw.to_bytes(2, "little"), 0x10000100)
    assert (insn.mnemonic, insn.kind, insn.size, insn.offset, insn.base_name) == (name, kind, size, offset, "a4")
    assert insn.text == f"{name} a5, 2(a4)"
    assert insn.effective_address({"a4": 0x11000000}) == 0x11000002


ZCMP = [(0xB842, "cm.push", "{ra}, -16", 1), (0xB856, "cm.push", "{ra, s0}, -32", 2),
        (0xB862, "cm.push", "{ra, s0-s1}, -16", 3), (0xB8C2, "cm.push", "{ra, s0-s7}, -48", 9),
        (0xB8FE, "cm.push", "{ra, s0-s11}, -112", 13), (0xBA42, "cm.pop", "{ra}, 16", 1),
        (0xBAF2, "cm.pop", "{ra, s0-s11}, 64", 13), (0xBE76, "cm.popret", "{ra, s0-s2}, 32", 4),
        (0xBC62, "cm.popretz", "{ra, s0-s1}, 16", 3)]


@pytest.mark.parametrize("raw, name, operands, nregs", ZCMP)
def test_zcmp_push_pop_addresses(raw, name, operands, nregs):
    insn = rv_insn.decode(raw.to_bytes(2, "little"), 0)
    assert insn.text == f"{name} {operands}"
    assert insn.size == 4 * nregs and insn.base_name == "sp"
    sp = 0x20080000
    stack_adj = abs(int(operands.rsplit(" ", 1)[1]))
    if name == "cm.push":
        assert insn.kind == "store" and insn.effective_address({"sp": sp}) == sp - 4 * nregs
    else:
        assert insn.kind == "load" and insn.effective_address({"sp": sp}) == sp + stack_adj - 4 * nregs


def test_zcmp_moves_and_zcb_unary():
    assert rv_insn.decode(0xACA2.to_bytes(2, "little")).text == "cm.mvsa01 s1, s0"   # from a Hazard3 test program
    assert rv_insn.decode(0x9C61.to_bytes(2, "little")).text == "c.zext.b s0"
    assert rv_insn.decode(0x9C45.to_bytes(2, "little")).text == "c.mul s0, s1"


def test_truncated_input_is_an_error():
    with pytest.raises(ValueError):
        rv_insn.decode(b"\x03")
    with pytest.raises(ValueError):
        rv_insn.decode(b"\x83\x27")


def assemble(tmp_path, source: str, march: str) -> bytes:
    assert shutil.which("riscv64-linux-gnu-as"), "binutils-riscv64-linux-gnu is needed (Makefile APT_PACKAGES)"
    src, obj = tmp_path / "x.s", tmp_path / "x.o"
    src.write_text(".option norvc\n" * (not source.startswith("c.")) + source + "\n")
    subprocess.run(["riscv64-linux-gnu-as", f"-march={march}", "-mabi=ilp32", str(src), "-o", str(obj)], check=True)
    from elftools.elf.elffile import ELFFile

    with open(obj, "rb") as f:
        return ELFFile(f).get_section_by_name(".text").data()


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 0xFFFFFFFF))
def test_any_bits_decode_and_agree_with_capstone_on_length(word):
    """Whatever the bits, a decode (never an exception), and where capstone knows the instruction, the same length."""
    import capstone

    data = word.to_bytes(4, "little")
    insn = rv_insn.decode(data, 0x1000)
    assert insn.length == (4 if word & 3 == 3 else 2) and insn.kind in rv_insn.CLASSES
    assert insn.text
    md = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV32 | capstone.CS_MODE_RISCVC)
    for theirs in md.disasm(data, 0x1000, 1):
        assert theirs.size == insn.length
        if not insn.extension and insn.is_memory_access and "(" in theirs.op_str:
            m = MEM_OPERAND.search(theirs.op_str)
            if m:
                assert insn.offset == int(m.group(1) or "0", 0), (theirs.mnemonic, theirs.op_str, insn)


def test_riscv_helpers_delegate_to_the_decoder():
    """chip/riscv.py's decode_amo and call_before answer from rv_insn.decode (one decoder)."""
    from xipscope.chip import riscv as rv

    assert [rv.decode_amo(w) for w in (0x1405272F, 0x18F5272F, 0x0CF5272F, 0x00452783, 0x4501)] == \
        ["lr", "sc", "amo", None, None]      # lr.w.aq, sc.w, amoswap.w.aq, lw, c.li
    jal = rv_insn.decode((0x80 << 21) | (1 << 7) | 0x6F, 0x1000)          # jal ra, +0x100
    assert (jal.target, jal.link) == (0x1100, 1)
    c_jal = rv_insn.decode(bytes.fromhex("fd3d"), 0x100003AE)            # flashwrite_hang's c.jal
    assert (c_jal.mnemonic, c_jal.target, c_jal.link) == ("c.jal", 0x100002AC, 1)
    assert rv.call_before(0x100003B0, bytes.fromhex("0005fd3d")) == 0x100002AC
    c_j = rv_insn.decode(bytes.fromhex("fd3d")[:1] + bytes([0xBD]), 0x1000)   # same immediate, funct3 101: c.j
    assert c_j.mnemonic == "c.j" and c_j.link == 0
    assert rv.call_before(0x1004, b"\x01\x00" + c_j.raw.to_bytes(2, "little")) is None   # c.nop; c.j: no link
