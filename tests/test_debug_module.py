"""The twin's Debug Module (a model) driven register by register, for the spec 0.13.2 rules OpenOCD and pyOCD do not
happen to exercise in the other tests: cmderr while running and its W1C, ignored commands while cmderr is set,
abstractauto, SBA auto-increment and errors, dmactive reset, triggers as Machine breakpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from xipscope.chip import rp2350 as rp
from xipscope.sim import debug_module as d
from xipscope.sim.elfimage import ElfImage
from xipscope.sim.machine import Machine

REPO = Path(__file__).resolve().parent.parent
XIPBENCH = REPO / "firmware" / "xipbench.elf"


@pytest.fixture()
def dm():
    module = d.DebugModule(Machine(XIPBENCH, uart_echo=lambda b: None), halted=True)
    module.write(d.DMCONTROL, 1)
    return module


def access_register(gpr: int, write: bool = False, postexec: bool = False, transfer: bool = True) -> int:
    return (2 << 20) | (postexec << 18) | (transfer << 17) | (write << 16) | (0x1000 + gpr)


def cmderr(dm) -> int:
    return (dm.read(d.ABSTRACTCS) >> 8) & 7


def test_status_and_halt_resume(dm):
    status = dm.read(d.DMSTATUS)
    assert status & 0xF == 2 and status & (1 << 22) and status & (3 << 8)      # 0.13, impebreak, allhalted
    assert dm.read(d.ABSTRACTCS) == (2 << 24) | 1                              # progbufsize 2, datacount 1
    dm.write(d.DMCONTROL, (1 << 30) | 1)                                       # resumereq
    status = dm.read(d.DMSTATUS)
    assert status & (3 << 10) and status & (3 << 16) and not status & (3 << 8)  # running, resumeack
    dm.write(d.COMMAND, access_register(10))                                   # a0 while running
    assert cmderr(dm) == d.CMDERR_HALT_RESUME
    dm.write(d.DMCONTROL, (1 << 31) | 1)                                       # haltreq
    assert dm.read(d.DMSTATUS) & (3 << 8)
    dm.write(d.COMMAND, access_register(10))
    assert cmderr(dm) == d.CMDERR_HALT_RESUME                                  # ignored until cmderr is cleared
    dm.write(d.ABSTRACTCS, 7 << 8)
    assert cmderr(dm) == 0


def test_gprs_csrs_and_abstractauto(dm):
    m = dm.machine
    m.write_register("s1", 0x12345678)
    dm.write(d.COMMAND, access_register(9))
    assert dm.read(d.DATA0) == 0x12345678
    dm.write(d.DATA0, 0xCAFEF00D)
    dm.write(d.COMMAND, access_register(10, write=True))
    assert m.read_register("a0") == 0xCAFEF00D
    # csrr s0, mvendorid through the program buffer; the implicit ebreak ends it.
    dm.write(d.PROGBUF0, (0xF11 << 20) | (2 << 12) | (8 << 7) | 0x73)
    dm.write(d.PROGBUF0 + 1, 0x00000013)
    dm.write(d.COMMAND, access_register(8, postexec=True, transfer=False))
    dm.write(d.COMMAND, access_register(8))
    assert cmderr(dm) == 0 and dm.read(d.DATA0) == rp.HAZARD3_MVENDORID
    # Memory words via abstractauto: lw s1, 0(s0); addi s0, s0, 4 re-run on every read of data0.
    base = ElfImage(XIPBENCH).entry
    m.write_register("fp", base)
    dm.write(d.PROGBUF0, 0x00042483)
    dm.write(d.PROGBUF0 + 1, 0x00440413)
    dm.write(d.COMMAND, access_register(9, postexec=True, transfer=False))
    dm.write(d.ABSTRACTAUTO, 1)
    dm.write(d.COMMAND, access_register(9, postexec=True))
    words = [dm.read(d.DATA0) for _ in range(3)]
    dm.write(d.ABSTRACTAUTO, 0)
    expected = m.read_memory(base, 12)
    assert words == [int.from_bytes(expected[i:i + 4], "little") for i in (0, 4, 8)]
    # An instruction the program buffer does not execute is an exception, cmderr 3.
    dm.write(d.PROGBUF0, 0x02B50533)    # mul a0, a0, a1
    dm.write(d.COMMAND, access_register(8, postexec=True, transfer=False))
    assert cmderr(dm) == d.CMDERR_EXCEPTION


def test_system_bus_access(dm):
    sram = rp.SRAM_BASE + 0x1000
    dm.write(d.SBCS, (2 << 17) | (1 << 16))                  # 32-bit, autoincrement
    dm.write(d.SBADDRESS0, sram)
    for value in (1, 2, 3):
        dm.write(d.SBDATA0, value)
    assert dm.machine.read_memory(sram, 12) == b"".join(v.to_bytes(4, "little") for v in (1, 2, 3))
    dm.write(d.SBCS, (1 << 20) | (2 << 17) | (1 << 16) | (1 << 15))   # read on address and on data
    dm.write(d.SBADDRESS0, sram)
    assert [dm.read(d.SBDATA0) for _ in range(3)] == [1, 2, 3]
    dm.write(d.SBADDRESS0, 0x30000000)                       # nothing there
    assert (dm.read(d.SBCS) >> 12) & 7 == 2
    dm.write(d.SBCS, 7 << 12)                                # W1C
    assert (dm.read(d.SBCS) >> 12) & 7 == 0


def test_triggers_become_breakpoints_and_dmactive_resets(dm):
    target = ElfImage(XIPBENCH).symbol("work_flash")
    dm.write_csr(d.CSR_TSELECT, 1)
    dm.write_csr(d.CSR_TSELECT, 9)                           # WARL: no trigger 9, stays 1
    assert dm.read_csr(d.CSR_TSELECT) == 1
    dm.write_csr(d.CSR_TDATA2, target)
    dm.write_csr(d.CSR_TDATA1, d.MCONTROL_DMODE | d.MCONTROL_ACTION_DEBUG | d.MCONTROL_M | d.MCONTROL_EXECUTE
                 | 1)                                       # + load: not kept
    assert dm.read_csr(d.CSR_TDATA1) & 1 == 0
    assert dm.machine.breakpoints == {target}
    dm.write(d.DMCONTROL, (1 << 30) | 1)
    for _ in range(200):
        dm.run_slice(50_000)
        if dm.halted:
            break
    assert dm.halted and dm.machine.pc == target and (dm.read_csr(d.CSR_DCSR) >> 6) & 7 == d.CAUSE_TRIGGER
    dm.write(d.DATA0, 5)
    dm.write(d.DMCONTROL, 0)                                 # dmactive 0: DM registers reset, the hart untouched
    assert dm.read(d.DMSTATUS) & (3 << 8) == 0 and dm.halted
    dm.write(d.DMCONTROL, 1)
    assert dm.read(d.DATA0) == 0
