"""The twin's Debug Module (a model) driven register by register, for the spec 0.13.2 rules OpenOCD and pyOCD do not
happen to exercise in the other tests: cmderr while running and its W1C, ignored commands while cmderr is set,
abstractauto, SBA auto-increment and errors, dmactive reset, triggers as Machine breakpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from xipscope.chip import rp2350 as rp
from xipscope.sim import debug_module as d
from xipscope.elf.program import ElfImage
from xipscope.sim.hazard3 import Machine

REPO = Path(__file__).resolve().parents[2]
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


def run(dm, command: int) -> None:
    """Write a command and wait out abstractcs.busy, as a debugger must before touching data0 or progbuf."""
    dm.write(d.COMMAND, command)
    for _ in range(10):
        if not dm.read(d.ABSTRACTCS) & d.ABSTRACTCS_BUSY:
            return
    raise AssertionError("the command stayed busy")


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
    run(dm, access_register(9))
    assert dm.read(d.DATA0) == 0x12345678
    dm.write(d.DATA0, 0xCAFEF00D)
    run(dm, access_register(10, write=True))
    assert m.read_register("a0") == 0xCAFEF00D
    # csrr s0, mvendorid through the program buffer; the implicit ebreak ends it.
    dm.write(d.PROGBUF0, (0xF11 << 20) | (2 << 12) | (8 << 7) | 0x73)
    dm.write(d.PROGBUF0 + 1, 0x00000013)
    run(dm, access_register(8, postexec=True, transfer=False))
    run(dm, access_register(8))
    assert cmderr(dm) == 0 and dm.read(d.DATA0) == rp.HAZARD3_MVENDORID
    # Memory words via abstractauto: lw s1, 0(s0); addi s0, s0, 4 re-run on every read of data0.
    base = ElfImage(XIPBENCH).entry
    m.write_register("fp", base)
    dm.write(d.PROGBUF0, 0x00042483)
    dm.write(d.PROGBUF0 + 1, 0x00440413)
    run(dm, access_register(9, postexec=True, transfer=False))
    dm.write(d.ABSTRACTAUTO, 1)
    run(dm, access_register(9, postexec=True))
    words = []
    for _ in range(3):    # each read of data0 re-runs the command: wait out busy before the next
        words.append(dm.read(d.DATA0))
        dm.read(d.ABSTRACTCS)
    dm.write(d.ABSTRACTAUTO, 0)
    expected = m.read_memory(base, 12)
    assert words == [int.from_bytes(expected[i:i + 4], "little") for i in (0, 4, 8)]
    # An instruction the program buffer does not execute is an exception, cmderr 3.
    dm.write(d.PROGBUF0, 0x02B50533)    # mul a0, a0, a1
    run(dm, access_register(8, postexec=True, transfer=False))
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


def csrr(rd: int, csr: int) -> int:
    return (csr << 20) | (2 << 12) | (rd << 7) | 0x73


def csrrw(rd: int, csr: int, rs: int) -> int:
    return (csr << 20) | (rs << 15) | (1 << 12) | (rd << 7) | 0x73


def test_hartinfo_and_csrs_are_hazard3s(dm):
    """chip/rp2350.py: hartinfo 0x00001bff (nscratch 0, data0 shadowed at CSR 0xbff); no dscratch CSRs, so touching
    one is an illegal instruction (cmderr 3); data0 is the CSR dmdata0 to program-buffer code."""
    hartinfo = dm.read(d.HARTINFO)
    assert hartinfo == rp.DM_HARTINFO == 0x00001BFF
    assert (hartinfo >> 20) & 0xF == 0 and not hartinfo >> 16 & 1 and (hartinfo >> 12) & 0xF == 1
    assert hartinfo & 0xFFF == 0xBFF
    for dscratch in (0x7B2, 0x7B3):
        dm.write(d.PROGBUF0, csrr(8, dscratch))
        run(dm, access_register(8, postexec=True, transfer=False))
        assert cmderr(dm) == d.CMDERR_EXCEPTION, hex(dscratch)
        dm.write(d.ABSTRACTCS, 7 << 8)
    # The driver's CSR read: s0 -> data0 (transfer), then csrr s0, mhartid; csrrw s0, dmdata0, s0 (postexec).
    dm.machine.write_register("fp", 0x5EED)
    dm.write(d.PROGBUF0, csrr(8, 0xF11))
    dm.write(d.PROGBUF0 + 1, csrrw(8, 0xBFF, 8))
    run(dm, access_register(8, postexec=True))
    assert cmderr(dm) == 0
    assert dm.read(d.DATA0) == rp.HAZARD3_MVENDORID and dm.machine.read_register("fp") == 0x5EED
    # aarpostincrement is not supported by Hazard3's DM: cmderr 2.
    dm.write(d.COMMAND, access_register(8) | (1 << 19))
    assert cmderr(dm) == d.CMDERR_NOT_SUPPORTED


def test_busy_forbids_command_data0_and_progbuf_accesses(dm):
    """Debug spec 0.13.2 abstractcs.cmderr / hazard3_dm.v: while busy, writing command, abstractcs, abstractauto,
    data0 or progbuf, or reading data0 or progbuf, sets cmderr 1 and does nothing; reading abstractcs is allowed."""
    assert rp.DM_BUSY_ACCESSES == 1
    dm.machine.write_register("s1", 0x1111)
    dm.write(d.COMMAND, access_register(9))
    dm.write(d.DATA0, 0x2222)                          # while busy: ignored, cmderr 1
    assert cmderr(dm) == d.CMDERR_BUSY
    assert dm.read(d.DATA0) == 0x1111                  # the command did complete
    dm.write(d.COMMAND, access_register(9, write=True))
    assert dm.machine.read_register("s1") == 0x1111    # not run: cmderr is set
    dm.write(d.ABSTRACTCS, 7 << 8)
    assert cmderr(dm) == 0
    dm.write(d.COMMAND, access_register(9))
    status = dm.read(d.ABSTRACTCS)                     # allowed while busy; says so
    assert status & d.ABSTRACTCS_BUSY and (status >> 8) & 7 == 0
    assert not dm.read(d.ABSTRACTCS) & d.ABSTRACTCS_BUSY
    dm.write(d.COMMAND, access_register(9))
    dm.write(d.PROGBUF0, 0x13)                         # a progbuf write while busy
    dm.write(d.ABSTRACTCS, 7 << 8)                     # is not busy any more: clears
    assert cmderr(dm) == 0 and dm.read(d.PROGBUF0) == 0
    dm.write(d.COMMAND, access_register(9))
    dm.write(d.ABSTRACTCS, 7 << 8)                     # a W1C while busy is itself forbidden
    assert cmderr(dm) == d.CMDERR_BUSY


def test_two_harts_hart1_present_and_parked(dm):
    """rp2350.md: two harts on one DM, hartsel 0 and 1. Hart 1 is the model's parked hart: running (not simulated),
    halts and resumes on request, reads mhartid 1; hart 0 is untouched by requests to hart 1."""
    hart1 = 1 << 16
    dm.write(d.DMCONTROL, 0xFFFFF << 6 | 1)           # hartsel all ones: the DM keeps one bit (hartsellen 1)
    assert (dm.read(d.DMCONTROL) >> 6) & 0xFFFFF == 1 << 10
    status = dm.read(d.DMSTATUS)
    assert status & (3 << 10) and not status & (3 << 8) and not status & (3 << 14)   # running, exists
    assert status & (3 << 18)                                                         # havereset after power-up
    dm.write(d.DMCONTROL, hart1 | (1 << 28) | 1)                                     # ackhavereset for hart 1
    assert not dm.read(d.DMSTATUS) & (3 << 18)
    dm.write(d.DMCONTROL, hart1 | (1 << 31) | 1)                                     # haltreq hart 1
    dm.write(d.DMCONTROL, hart1 | 1)
    assert dm.read(d.DMSTATUS) & (3 << 8) and dm.read(d.HALTSUM0) == 0b11            # both halted now
    dm.write(d.PROGBUF0, csrr(8, 0xF14))                                             # mhartid
    dm.write(d.PROGBUF0 + 1, csrrw(8, 0xBFF, 8))
    run(dm, access_register(8, postexec=True))
    assert dm.read(d.DATA0) == 1
    dm.write(d.DMCONTROL, hart1 | (1 << 30) | 1)                                     # resume hart 1
    assert dm.read(d.DMSTATUS) & (3 << 16) and dm.read(d.HALTSUM0) == 0b01
    dm.write(d.DMCONTROL, 1)                                                         # hart 0: still halted
    assert dm.read(d.DMSTATUS) & (3 << 8) and dm.halted
    run(dm, access_register(8, postexec=True))
    assert dm.read(d.DATA0) == 0                                                     # hart 0's mhartid
    dm.write(d.HAWINDOW, 0b11)
    dm.write(d.DMCONTROL, (1 << 26) | 1)                                             # hasel: both harts
    status = dm.read(d.DMSTATUS)
    assert status >> 8 & 3 == 0b01 and status >> 10 & 3 == 0b01                      # anyhalted, anyrunning


def test_an_arm_booted_chip_leaves_the_harts_unavailable():
    """rp2350.md: a hart is available only out of reset; booted in Arm mode the DM answers with allunavail."""
    dm = d.DebugModule(Machine(XIPBENCH, uart_echo=lambda b: None), boot_arch="arm")
    dm.write(d.DMCONTROL, 1)
    status = dm.read(d.DMSTATUS)
    assert status & (3 << 12) and not status & (0xF << 8)
    dm.write(d.DMCONTROL, (1 << 31) | 1)
    assert not dm.read(d.DMSTATUS) & (3 << 8) and not dm.needs_simulation
    dm.write(d.COMMAND, access_register(8))
    assert cmderr(dm) == d.CMDERR_HALT_RESUME
