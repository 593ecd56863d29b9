"""RISC-V names and numbers: GPR ABI names as gdb spells them, CSR numbers, and the few instruction decodes the toolkit needs."""

from __future__ import annotations

GPR_NAMES = ("zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
             "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6")
# gdb calls x8 "fp" in its register list but accepts "s0"; both map to 8.
GPR_INDEX = {name: i for i, name in enumerate(GPR_NAMES)}
GPR_INDEX["s0"] = 8
GPR_INDEX.update({f"x{i}": i for i in range(32)})

# CSR numbers (RISC-V privileged spec; Hazard3 doc/sections/csr.adoc for the custom ones).
CSRS = {
    "mstatus": 0x300, "misa": 0x301, "mie": 0x304, "mtvec": 0x305, "mcounteren": 0x306, "mstatush": 0x310,
    "mcountinhibit": 0x320, "mscratch": 0x340, "mepc": 0x341, "mcause": 0x342, "mtval": 0x343, "mip": 0x344,
    "tselect": 0x7A0, "tdata1": 0x7A1, "tdata2": 0x7A2, "dcsr": 0x7B0, "dpc": 0x7B1,
    "mcycle": 0xB00, "minstret": 0xB02, "mcycleh": 0xB80, "minstreth": 0xB82,
    "cycle": 0xC00, "instret": 0xC02, "cycleh": 0xC80, "instreth": 0xC82,
    "mvendorid": 0xF11, "marchid": 0xF12, "mimpid": 0xF13, "mhartid": 0xF14,
    "pmpcfgm0": 0xBD0, "meiea": 0xBE0, "meipa": 0xBE1, "meifa": 0xBE2, "meipra": 0xBE3, "meinext": 0xBE4,
    "meicontext": 0xBE5, "msleep": 0xBF0, "dmdata0": 0xBFF,
}
CSR_NAMES = {num: name for name, num in CSRS.items()}

# The CSRs the toolkit reads from a core, listed once; each user takes its part. A target's read_registers() gives
# REGISTER_CSRS with the GPRs and pc (the twin, OpenOCD, pyOCD); a trap report decodes TRAP_CSRS; doctor reads
# TRAP_CSRS, mcountinhibit and COUNTER_CSRS (whether the counters move) where read_registers() did not give them.
TRAP_CSRS = ("mcause", "mepc", "mstatus", "mtval", "mtvec")
COUNTER_CSRS = ("mcycle", "minstret")
REGISTER_CSRS = ("mstatus", "misa", "mie", "mtvec", "mscratch", "mepc", "mcause", "mtval", "mip", "mcountinhibit",
                 "mcycle", "mcycleh", "minstret", "minstreth", "mvendorid", "mimpid", "mhartid")

# Exception and interrupt codes (RISC-V privileged spec, mcause table).
EXCEPTION_NAMES = {
    0: "instruction address misaligned", 1: "instruction access fault", 2: "illegal instruction", 3: "breakpoint",
    4: "load address misaligned", 5: "load access fault", 6: "store/AMO address misaligned",
    7: "store/AMO access fault", 8: "environment call from U-mode", 9: "environment call from S-mode",
    11: "environment call from M-mode", 12: "instruction page fault", 13: "load page fault",
    15: "store/AMO page fault", 18: "software check", 19: "hardware error",
}
INTERRUPT_NAMES = {
    1: "supervisor software interrupt", 3: "machine software interrupt", 5: "supervisor timer interrupt",
    7: "machine timer interrupt", 9: "supervisor external interrupt", 11: "machine external interrupt",
}

# mstatus fields
MSTATUS_MIE = 1 << 3
MSTATUS_MPIE = 1 << 7
MSTATUS_MPP_SHIFT = 11
MSTATUS_MPP_MASK = 3 << 11
PRV_M = 3

# Opcodes (low 7 bits)
OPCODE_AMO = 0x2F
OPCODE_SYSTEM = 0x73
INSN_EBREAK = 0x00100073
INSN_ECALL = 0x00000073
INSN_C_EBREAK = 0x9002
INSN_WFI = 0x10500073
INSN_MRET = 0x30200073


def insn_length(first_halfword: int) -> int:
    """2 for a compressed instruction, 4 otherwise (rv32: no 48-bit forms)."""
    return 4 if first_halfword & 3 == 3 else 2


def data_accesses(insn: int) -> int:
    """At most how many data accesses `insn` makes (rv32 with A, F/D and Zcb; a 16-bit one in the low half): 2 for
    an AMO (its read and its write), 1 for a load or store, 0 otherwise. An upper bound: the twin's landing rule
    bounds a block's cycles with it (sim/hazard3/hooks.py)."""
    if insn & 3 == 3:
        op = insn & 0x7F
        return 2 if op == OPCODE_AMO else 1 if op in (0x03, 0x07, 0x23, 0x27) else 0
    funct3 = (insn >> 13) & 7
    if insn & 3 == 0:
        return 1 if funct3 else 0        # all but c.addi4spn load or store
    if insn & 3 == 2:
        return 1 if funct3 in (1, 2, 3, 5, 6, 7) else 0   # c.fldsp c.lwsp c.flwsp c.fsdsp c.swsp c.fswsp
    return 0


def decode_amo(insn: int) -> str | None:
    """'lr', 'sc' or 'amo' for an A-extension word instruction, else None: rv_insn.decode's class, for the twin."""
    if insn & 0x7F != OPCODE_AMO:
        return None   # the twin asks for every instruction of a block: answer the common case without decoding
    from .rv_insn import decode

    kind = decode(insn).kind
    return kind if kind in ("lr", "sc", "amo") else None


def decode_csr(insn: int) -> tuple[str, int, int, int] | None:
    """(op, rd, rs1_or_uimm, csr) for a Zicsr instruction; op is csrrw/csrrs/csrrc/csrrwi/csrrsi/csrrci."""
    if insn & 0x7F != OPCODE_SYSTEM:
        return None
    funct3 = (insn >> 12) & 7
    if funct3 in (0, 4):
        return None
    op = ("", "csrrw", "csrrs", "csrrc", "", "csrrwi", "csrrsi", "csrrci")[funct3]
    return op, (insn >> 7) & 31, (insn >> 15) & 31, insn >> 20


def call_before(return_address: int, code: bytes) -> int | None:
    """The target of the call that left `return_address` in ra: `jal ra` or `c.jal` just before it.

    `code` holds the 4 bytes that end at `return_address`. None when neither form is there (an indirect call,
    or ra does not follow a call).
    """
    from .rv_insn import decode

    if len(code) < 4:
        return None
    for length in (4, 2):   # the 4-byte form first: its upper half can look like a c.jal
        if insn_length(int.from_bytes(code[-length:][:2], "little")) != length:
            continue
        insn = decode(code[-length:], return_address - length)
        if insn.link == 1 and insn.target is not None:
            return insn.target
    return None
