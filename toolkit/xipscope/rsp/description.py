"""GDB target descriptions for RISC-V: gdb's register numbering and a target.xml for a list of registers.

Used by servers that have no description of their own to hand on (a snapshot of a target that offered none, e.g.
sim://). The numbering is gdb's: x0..x31 are 0..31, pc is 32, and CSR n is 65 + n (what OpenOCD and the twin's
server use, and what gdb's RISC-V port expects for the CSRs it knows by number).
"""

from __future__ import annotations

from ..chip import riscv as rv
from ..targets.rsp import RegisterInfo

PC_REGNUM = 32
CSR_REGNUM_BASE = 65
GPR_TYPES = {"ra": "code_ptr", "sp": "data_ptr", "gp": "data_ptr", "tp": "data_ptr", "pc": "code_ptr"}


def riscv_register_number(name: str) -> int | None:
    """gdb's register number for a GPR, pc or a CSR name that chip/riscv.py knows; None otherwise."""
    if name == "pc":
        return PC_REGNUM
    if name in rv.GPR_INDEX:
        return rv.GPR_INDEX[name]
    if name in rv.CSRS:
        return CSR_REGNUM_BASE + rv.CSRS[name]
    return None


def riscv_register_layout(names, bits: int = 32) -> list[RegisterInfo]:
    """RegisterInfo for each name gdb can number (others are left out), in register-number order."""
    layout = []
    for name in names:
        number = riscv_register_number(name)
        if number is not None:
            layout.append(RegisterInfo(name, number, bits, "csr" if number >= CSR_REGNUM_BASE else None))
    return sorted(layout, key=lambda r: r.number)


def target_xml(registers: list[RegisterInfo], comment: str = "") -> str:
    """One self-contained target.xml: x0..x31 and pc in the cpu feature, everything else in the csr feature."""
    def reg(r: RegisterInfo) -> str:
        kind = GPR_TYPES.get(r.name, "int")
        group = ' group="csr"' if r.number > PC_REGNUM else ""
        return f'    <reg name="{r.name}" bitsize="{r.bits}" type="{kind}" regnum="{r.number}"{group}/>'

    ordered = sorted(registers, key=lambda r: r.number)
    cpu = [reg(r) for r in ordered if r.number <= PC_REGNUM]
    csr = [reg(r) for r in ordered if r.number > PC_REGNUM]
    note = f"<!-- {comment} -->\n" if comment else ""
    return ("<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n" + note +
            "<target version=\"1.0\">\n  <architecture>riscv:rv32</architecture>\n"
            "  <feature name=\"org.gnu.gdb.riscv.cpu\">\n" + "\n".join(cpu) + "\n  </feature>\n"
            + ("  <feature name=\"org.gnu.gdb.riscv.csr\">\n" + "\n".join(csr) + "\n  </feature>\n" if csr else "")
            + "</target>\n")
