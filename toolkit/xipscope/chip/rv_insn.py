"""Decode one RV32 instruction (compressed or not) into what trap decoding needs: its class, the memory it touches, a name.

Our own decode covers the memory-access classes exactly (loads, stores, AMOs, LR/SC, Zcb byte/halfword forms, Zcmp
push/pop) because the trap decoder must recompute the faulting address itself: Hazard3 writes mtval = 0. Text comes
from capstone (imported lazily) where it knows the instruction, and from our own names for what capstone 5 lacks and
Hazard3 has (Zba, Zbb, Zbs, Zbkb, Zcb, Zcmp; rp2350.md "Hazard3, the RISC-V core").
"""

from __future__ import annotations

from dataclasses import dataclass

from .riscv import CSR_NAMES, GPR_NAMES, decode_csr, insn_length

# Instruction classes, as the trap decoder reasons about them.
CLASSES = ("load", "store", "amo", "lr", "sc", "jump", "branch", "csr", "system", "other")

_AMO_FUNCT5 = {0b00000: "amoadd.w", 0b00001: "amoswap.w", 0b00100: "amoxor.w", 0b01100: "amoand.w",
               0b01000: "amoor.w", 0b10000: "amomin.w", 0b10100: "amomax.w", 0b11000: "amominu.w",
               0b11100: "amomaxu.w", 0b00010: "lr.w", 0b00011: "sc.w"}
_LOADS = {0: ("lb", 1), 1: ("lh", 2), 2: ("lw", 4), 4: ("lbu", 1), 5: ("lhu", 2)}
_STORES = {0: ("sb", 1), 1: ("sh", 2), 2: ("sw", 4)}


@dataclass(frozen=True)
class Insn:
    """One decoded instruction. `base`/`offset`/`size` describe its memory access (base None: no access)."""

    address: int
    raw: int                 # the instruction bits (16 or 32 of them)
    length: int              # 2 or 4
    mnemonic: str            # our own name (e.g. c.lbu, cm.push, sh2add), or capstone's where ours is generic
    kind: str                # one of CLASSES
    base: int | None = None  # base register number of a memory access
    offset: int = 0          # signed displacement added to the base register
    size: int = 0            # bytes accessed (for cm.push/pop: all the registers moved)
    extension: str = ""      # "Zcb", "Zcmp", "Zba", ... for the Hazard3 extensions capstone 5 does not know
    operands: str = ""       # our operand text, used when capstone cannot disassemble the instruction
    target: int | None = None  # where a direct jump or branch goes (jal, c.j, c.jal, b*, c.beqz/c.bnez)
    link: int | None = None    # the register a jump writes its return address to (jal/jalr rd; c.jal, c.jalr: ra)

    @property
    def is_memory_access(self) -> bool:
        return self.base is not None

    @property
    def base_name(self) -> str | None:
        return GPR_NAMES[self.base] if self.base is not None else None

    def effective_address(self, registers: dict[str, int]) -> int | None:
        """The lowest address the access touches, from the register values (ABI names); None if no access or unknown."""
        if self.base is None:
            return None
        value = registers.get(GPR_NAMES[self.base]) if self.base else 0
        if value is None and self.base == 8:
            value = registers.get("s0")
        if value is None:
            return None
        return (value + self.offset) & 0xFFFFFFFF

    @property
    def text(self) -> str:
        """Disassembly: capstone's for the instructions it knows, ours for Hazard3's extensions."""
        if not self.extension:
            text = _capstone_text(self.raw, self.length, self.address)
            if text is not None:
                return text
        return f"{self.mnemonic} {self.operands}".strip()


def decode(raw: int | bytes, address: int = 0) -> Insn:
    """Decode the instruction whose bits are `raw` (an int, or at least its bytes, little-endian) at `address`."""
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) < 2:
            raise ValueError(f"an instruction needs at least 2 bytes; got {len(raw)}")
        half = int.from_bytes(raw[:2], "little")
        if insn_length(half) == 4:
            if len(raw) < 4:
                raise ValueError(f"a 32-bit instruction at {address:#x} needs 4 bytes; got {len(raw)}")
            raw = int.from_bytes(raw[:4], "little")
        else:
            raw = half
    if insn_length(raw & 0xFFFF) == 4:
        return _decode32(raw & 0xFFFFFFFF, address)
    return _decode16(raw & 0xFFFF, address)


def _sext(value: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    return (value & (sign - 1)) - (value & sign)


def _r(i: int) -> str:
    return "s0" if i == 8 else GPR_NAMES[i]   # disassemblers spell x8 s0; gdb's register list calls it fp


def _mem(off: int, base: int) -> str:
    return f"{off}({_r(base)})"


# --- 32-bit forms -----------------------------------------------------------------------------------------------------

_OP_EXT = {  # (funct7, funct3) on OP (0x33): Zba, Zbb, Zbs, Zbkb register-register forms
    (0b0010000, 2): ("sh1add", "Zba"), (0b0010000, 4): ("sh2add", "Zba"), (0b0010000, 6): ("sh3add", "Zba"),
    (0b0100000, 7): ("andn", "Zbb"), (0b0100000, 6): ("orn", "Zbb"), (0b0100000, 4): ("xnor", "Zbb"),
    (0b0000101, 4): ("min", "Zbb"), (0b0000101, 5): ("minu", "Zbb"), (0b0000101, 6): ("max", "Zbb"),
    (0b0000101, 7): ("maxu", "Zbb"), (0b0110000, 1): ("rol", "Zbb"), (0b0110000, 5): ("ror", "Zbb"),
    (0b0100100, 1): ("bclr", "Zbs"), (0b0100100, 5): ("bext", "Zbs"), (0b0110100, 1): ("binv", "Zbs"),
    (0b0010100, 1): ("bset", "Zbs"), (0b0000100, 4): ("pack", "Zbkb"), (0b0000100, 7): ("packh", "Zbkb"),
}
_OPIMM_UNARY = {  # imm[11:0] with funct3 on OP-IMM (0x13): Zbb and Zbkb unary forms
    (0x600, 1): ("clz", "Zbb"), (0x601, 1): ("ctz", "Zbb"), (0x602, 1): ("cpop", "Zbb"),
    (0x604, 1): ("sext.b", "Zbb"), (0x605, 1): ("sext.h", "Zbb"), (0x287, 5): ("orc.b", "Zbb"),
    (0x698, 5): ("rev8", "Zbb"), (0x687, 5): ("brev8", "Zbkb"), (0x08F, 1): ("zip", "Zbkb"),
    (0x08F, 5): ("unzip", "Zbkb"),
}
_OPIMM_SHAMT = {  # imm[11:5] with funct3 on OP-IMM: Zbb/Zbs immediate forms
    (0b0110000, 5): ("rori", "Zbb"), (0b0100100, 1): ("bclri", "Zbs"), (0b0100100, 5): ("bexti", "Zbs"),
    (0b0110100, 1): ("binvi", "Zbs"), (0b0010100, 1): ("bseti", "Zbs"),
}


def _decode32(w: int, address: int) -> Insn:
    opcode = w & 0x7F
    rd, funct3, rs1, rs2, funct7 = (w >> 7) & 31, (w >> 12) & 7, (w >> 15) & 31, (w >> 20) & 31, w >> 25

    def make(mnemonic, kind, operands="", **kw):
        return Insn(address, w, 4, mnemonic, kind, operands=operands, **kw)

    if opcode == 0x03 and funct3 in _LOADS:
        name, size = _LOADS[funct3]
        off = _sext(w >> 20, 12)
        return make(name, "load", f"{_r(rd)}, {_mem(off, rs1)}", base=rs1, offset=off, size=size)
    if opcode == 0x23 and funct3 in _STORES:
        name, size = _STORES[funct3]
        off = _sext(((w >> 25) << 5) | rd, 12)
        return make(name, "store", f"{_r(rs2)}, {_mem(off, rs1)}", base=rs1, offset=off, size=size)
    if opcode == 0x2F and funct3 == 2 and (w >> 27) in _AMO_FUNCT5:
        name = _AMO_FUNCT5[w >> 27]
        suffix = (".aq" if w >> 26 & 1 else "") + (".rl" if w >> 25 & 1 else "")
        kind = "lr" if name == "lr.w" else "sc" if name == "sc.w" else "amo"
        operands = f"{_r(rd)}, ({_r(rs1)})" if kind == "lr" else f"{_r(rd)}, {_r(rs2)}, ({_r(rs1)})"
        return make(name + suffix, kind, operands, base=rs1, offset=0, size=4)
    if opcode == 0x07 or opcode == 0x27:   # F/D loads and stores: Hazard3 has none, but the address is still clear
        off = _sext(w >> 20, 12) if opcode == 0x07 else _sext(((w >> 25) << 5) | rd, 12)
        size = {2: 4, 3: 8}.get(funct3, 4)
        kind = "load" if opcode == 0x07 else "store"
        return make(("fl" if kind == "load" else "fs") + {2: "w", 3: "d"}.get(funct3, "?"), kind,
                    _mem(off, rs1), base=rs1, offset=off, size=size)
    if opcode == 0x6F:
        off = _sext(((w >> 31) << 20) | (((w >> 12) & 0xFF) << 12) | (((w >> 20) & 1) << 11)
                    | (((w >> 21) & 0x3FF) << 1), 21)
        target = (address + off) & 0xFFFFFFFF
        return make("jal", "jump", f"{_r(rd)}, {target:#x}", target=target, link=rd)
    if opcode == 0x67 and funct3 == 0:
        return make("jalr", "jump", f"{_r(rd)}, {_mem(_sext(w >> 20, 12), rs1)}", link=rd)
    if opcode == 0x63 and funct3 not in (2, 3):
        off = _sext(((w >> 31) << 12) | (((w >> 7) & 1) << 11) | (((w >> 25) & 0x3F) << 5) | (((w >> 8) & 0xF) << 1), 13)
        name = ("beq", "bne", "", "", "blt", "bge", "bltu", "bgeu")[funct3]
        target = (address + off) & 0xFFFFFFFF
        return make(name, "branch", f"{_r(rs1)}, {_r(rs2)}, {target:#x}", target=target)
    if opcode == 0x73:
        if funct3 in (1, 2, 3, 5, 6, 7):
            name, _rd, _rs1, csr = decode_csr(w)
            src = str(rs1) if funct3 >= 5 else _r(rs1)
            return make(name, "csr", f"{_r(rd)}, {CSR_NAMES.get(csr, hex(csr))}, {src}")
        names = {0x00000073: "ecall", 0x00100073: "ebreak", 0x30200073: "mret", 0x10500073: "wfi"}
        return make(names.get(w, "system"), "system")
    if opcode == 0x33 and (funct7, funct3) in _OP_EXT:
        name, ext = _OP_EXT[(funct7, funct3)]
        if name == "pack" and rs2 == 0:
            name, ext = "zext.h", "Zbb"   # zext.h on rv32 is pack rd, rs1, zero
            return make(name, "other", f"{_r(rd)}, {_r(rs1)}", extension=ext)
        return make(name, "other", f"{_r(rd)}, {_r(rs1)}, {_r(rs2)}", extension=ext)
    if opcode == 0x13 and funct3 in (1, 5):
        imm = w >> 20
        if (imm, funct3) in _OPIMM_UNARY:
            name, ext = _OPIMM_UNARY[(imm, funct3)]
            return make(name, "other", f"{_r(rd)}, {_r(rs1)}", extension=ext)
        if (funct7, funct3) in _OPIMM_SHAMT:
            name, ext = _OPIMM_SHAMT[(funct7, funct3)]
            return make(name, "other", f"{_r(rd)}, {_r(rs1)}, {rs2}", extension=ext)
    return make("insn", "other", f"{w:#010x}")


# --- 16-bit forms -----------------------------------------------------------------------------------------------------

def _zcmp_rlist(rlist: int) -> tuple[list[int], str]:
    """Registers a Zcmp rlist names (ra first, then s0..sN) and its text, e.g. ({ra, s0-s2})."""
    count = 13 if rlist == 15 else rlist - 3    # rlist 15 is {ra, s0-s11}: s10 has no rlist of its own
    saved = [8, 9] + list(range(18, 28))         # s0, s1, s2..s11
    regs = [1] + saved[:count - 1]
    if count == 1:
        text = "{ra}"
    elif count == 2:
        text = "{ra, s0}"
    else:
        text = "{ra, s0-" + _r(saved[count - 2]) + "}"
    return regs, text


def _decode16(h: int, address: int) -> Insn:
    quadrant, funct3 = h & 3, h >> 13
    rd_p, rs1_p = ((h >> 2) & 7) + 8, ((h >> 7) & 7) + 8     # the x8..x15 register fields of CL/CS/CA/CB forms
    rd, rs2 = (h >> 7) & 31, (h >> 2) & 31

    def make(mnemonic, kind, operands="", **kw):
        return Insn(address, h, 2, mnemonic, kind, operands=operands, **kw)

    if h == 0:
        return make("c.unimp", "other")
    if quadrant == 0:
        if funct3 in (2, 6, 3, 7):   # c.lw c.sw (c.flw c.fsw on rv32)
            off = (((h >> 10) & 7) << 3) | (((h >> 6) & 1) << 2) | (((h >> 5) & 1) << 6)
            name = {2: "c.lw", 6: "c.sw", 3: "c.flw", 7: "c.fsw"}[funct3]
            kind = "load" if funct3 in (2, 3) else "store"
            return make(name, kind, f"{_r(rd_p)}, {_mem(off, rs1_p)}", base=rs1_p, offset=off, size=4)
        if funct3 in (1, 5):         # c.fld c.fsd
            off = (((h >> 10) & 7) << 3) | (((h >> 5) & 3) << 6)
            kind = "load" if funct3 == 1 else "store"
            return make("c.fld" if funct3 == 1 else "c.fsd", kind, _mem(off, rs1_p), base=rs1_p, offset=off, size=8)
        if funct3 == 4:              # Zcb loads and stores
            funct6_low = (h >> 10) & 7
            b6, b5 = (h >> 6) & 1, (h >> 5) & 1
            if funct6_low == 0:
                return make("c.lbu", "load", f"{_r(rd_p)}, {_mem(b6 | b5 << 1, rs1_p)}", base=rs1_p,
                            offset=b6 | b5 << 1, size=1, extension="Zcb")
            if funct6_low == 1:
                name = "c.lh" if b6 else "c.lhu"
                return make(name, "load", f"{_r(rd_p)}, {_mem(b5 << 1, rs1_p)}", base=rs1_p, offset=b5 << 1,
                            size=2, extension="Zcb")
            if funct6_low == 2:
                return make("c.sb", "store", f"{_r(rd_p)}, {_mem(b6 | b5 << 1, rs1_p)}", base=rs1_p,
                            offset=b6 | b5 << 1, size=1, extension="Zcb")
            if funct6_low == 3 and b6:   # bit 6 set, as binutils (MATCH_C_SH 0x8c40) and LLVM encode it
                return make("c.sh", "store", f"{_r(rd_p)}, {_mem(b5 << 1, rs1_p)}", base=rs1_p, offset=b5 << 1,
                            size=2, extension="Zcb")
        return make("c.addi4spn" if funct3 == 0 else "c.insn", "other")
    if quadrant == 1:
        if funct3 in (1, 5):         # c.jal (rv32), c.j
            bits = h >> 2
            # CJ immediate: inst[12:2] = offset[11|4|9:8|10|6|7|3:1|5]
            off = _sext((((bits >> 10) & 1) << 11) | (((bits >> 9) & 1) << 4) | (((bits >> 7) & 3) << 8)
                        | (((bits >> 6) & 1) << 10) | (((bits >> 5) & 1) << 6) | (((bits >> 4) & 1) << 7)
                        | (((bits >> 1) & 7) << 1) | ((bits & 1) << 5), 12)
            target = (address + off) & 0xFFFFFFFF
            return make("c.jal" if funct3 == 1 else "c.j", "jump", f"{target:#x}", target=target,
                        link=1 if funct3 == 1 else 0)
        if funct3 in (6, 7):
            off = _sext((((h >> 12) & 1) << 8) | (((h >> 10) & 3) << 3) | (((h >> 5) & 3) << 6)
                        | (((h >> 3) & 3) << 1) | (((h >> 2) & 1) << 5), 9)
            target = (address + off) & 0xFFFFFFFF
            return make("c.beqz" if funct3 == 6 else "c.bnez", "branch", f"{_r(rs1_p)}, {target:#x}", target=target)
        if funct3 == 4 and (h >> 10) & 7 == 7:   # funct6 100111: Zcb unary ops and c.mul
            op2 = (h >> 5) & 3
            if op2 == 3:
                names = {0: "c.zext.b", 1: "c.sext.b", 2: "c.zext.h", 3: "c.sext.h", 5: "c.not"}
                if (h >> 2) & 7 in names:
                    return make(names[(h >> 2) & 7], "other", _r(rs1_p), extension="Zcb")
            if op2 == 2:
                return make("c.mul", "other", f"{_r(rs1_p)}, {_r(rd_p)}", extension="Zcb")
        return make("c.alu", "other")
    # quadrant 2
    if funct3 in (2, 3):             # c.lwsp (c.flwsp)
        off = (((h >> 12) & 1) << 5) | (((h >> 4) & 7) << 2) | (((h >> 2) & 3) << 6)
        name = "c.lwsp" if funct3 == 2 else "c.flwsp"
        return make(name, "load", f"{_r(rd)}, {_mem(off, 2)}", base=2, offset=off, size=4)
    if funct3 in (6, 7):             # c.swsp (c.fswsp)
        off = (((h >> 9) & 15) << 2) | (((h >> 7) & 3) << 6)
        name = "c.swsp" if funct3 == 6 else "c.fswsp"
        return make(name, "store", f"{_r(rs2)}, {_mem(off, 2)}", base=2, offset=off, size=4)
    if funct3 == 5:                  # Zcmp (Hazard3 has no D, so this is not c.fsdsp)
        top = (h >> 8) & 0x1F
        rlist, spimm = (h >> 4) & 15, (h >> 2) & 3
        if top in (0b11000, 0b11010, 0b11100, 0b11110) and rlist >= 4:
            regs, rtext = _zcmp_rlist(rlist)
            nbytes = 4 * len(regs)
            stack_adj = ((nbytes + 15) // 16) * 16 + 16 * spimm
            if top == 0b11000:
                # push stores ra at sp-4, s0 at sp-8, ...: the access spans [sp - 4n, sp)
                return make("cm.push", "store", f"{rtext}, {-stack_adj}", base=2, offset=-nbytes, size=nbytes,
                            extension="Zcmp")
            name = {0b11010: "cm.pop", 0b11100: "cm.popretz", 0b11110: "cm.popret"}[top]
            # pop loads from the new frame top down: [sp + stack_adj - 4n, sp + stack_adj)
            return make(name, "load", f"{rtext}, {stack_adj}", base=2, offset=stack_adj - nbytes, size=nbytes,
                        extension="Zcmp")
        if (h >> 10) & 7 == 0b011 and (h >> 5) & 3 in (1, 3):
            s_regs = (8, 9, 18, 19, 20, 21, 22, 23)
            r1s, r2s = s_regs[(h >> 7) & 7], s_regs[(h >> 2) & 7]
            name = "cm.mvsa01" if (h >> 5) & 3 == 1 else "cm.mva01s"
            return make(name, "other", f"{_r(r1s)}, {_r(r2s)}", extension="Zcmp")
        return make("c.fsdsp", "store", _mem((((h >> 10) & 7) << 3) | (((h >> 7) & 7) << 6), 2), base=2,
                    offset=(((h >> 10) & 7) << 3) | (((h >> 7) & 7) << 6), size=8)
    if funct3 == 1:                  # c.fldsp
        off = (((h >> 12) & 1) << 5) | (((h >> 5) & 3) << 3) | (((h >> 2) & 7) << 6)
        return make("c.fldsp", "load", _mem(off, 2), base=2, offset=off, size=8)
    if funct3 == 4:
        bit12 = (h >> 12) & 1
        if rs2 == 0 and rd:
            if bit12:
                return make("c.jalr", "jump", _r(rd), link=1)
            return make("c.jr", "jump", _r(rd), link=0)
        if bit12 and rd == 0 and rs2 == 0:
            return make("c.ebreak", "system")
    return make("c.insn", "other")


# --- capstone ---------------------------------------------------------------------------------------------------------

_capstone = None


def _disassembler():
    global _capstone
    if _capstone is None:
        import capstone   # lazy: heavy, and only text needs it

        _capstone = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV32 | capstone.CS_MODE_RISCVC)
    return _capstone


def _capstone_text(raw: int, length: int, address: int) -> str | None:
    try:
        md = _disassembler()
    except ImportError:
        return None
    for insn in md.disasm(raw.to_bytes(length, "little"), address, 1):
        return f"{insn.mnemonic} {insn.op_str}".strip()
    return None


def disassemble(code: bytes, address: int) -> list[Insn]:
    """Decode a run of code: our decode for every instruction, stopping at a truncated tail."""
    out = []
    i = 0
    while i + 2 <= len(code):
        n = insn_length(int.from_bytes(code[i:i + 2], "little"))
        if i + n > len(code):
            break
        out.append(decode(code[i:i + n], address + i))
        i += n
    return out
