"""The twin's SW-DP (sim/dap.py DapPort, a model) as strict as the chip's where a connect meets it: dormant at
power-on, line reset then DPIDR read, TARGETSEL, the power-up handshake. pyOCD's own connect code drives it, and
sequences that are wrong get what the chip gives (facts: chip/armv8m.py, chip/rp2350.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyocd.core import exceptions
from pyocd.probe.swj import SWJSequenceSender

from xipscope.chip import armv8m
from xipscope.chip import rp2350 as rp
from xipscope.sim.arm_core import ArmCore
from xipscope.sim.dap import TwinDapProbe
from xipscope.sim.hazard3 import Machine
from xipscope.targets.pyocd import PyocdArmTarget, PyocdTarget

REPO = Path(__file__).resolve().parents[2]
ARMXIP = REPO / "firmware" / "armxip.elf"
XIPBENCH = REPO / "firmware" / "xipbench.elf"
DP_IDR, DP_CTRL_STAT, DP_SELECT, DP_ABORT = 0x0, 0x4, 0x8, 0x0
ROM_TABLE_DEVARCH = 0xFBC            # AP address 0 is the ROM table (BASEPTR0): SELECT picks the bank, A[3:2] the word
ACKS = armv8m.CDBGPWRUPACK | armv8m.CSYSPWRUPACK
REQS = armv8m.CDBGPWRUPREQ | armv8m.CSYSPWRUPREQ

# pyOCD's rp2350 target sends no TARGETSEL (only its RP2040 targets do) and starts with the JTAG-to-SWD sequence
# (dap_swj_use_dormant is False by default): two attempts of line reset, 0xe79e, line reset, with a DPIDR read that
# gets no ACK from a dormant DP; the third attempt goes through dormant: line reset, JTAG-to-dormant, the selection
# alert, the SWD activation code, line reset, and then the DPIDR read is answered.
PYOCD_CONNECT = ["line reset"] * 5 + ["selection alert", "SWD activation", "line reset"]


def woken(probe: TwinDapProbe) -> SWJSequenceSender:
    """The wake-up pyOCD sends (its own SWJSequenceSender): dormant to SWD, which ends in a line reset and idle."""
    swj = SWJSequenceSender(probe, use_dormant=True)
    swj.dormant_to_swd()
    return swj


@pytest.mark.parametrize("core", ["riscv", "arm"])
def test_pyocds_own_connect_wakes_the_dormant_dp_and_powers_it_up(core):
    if core == "riscv":
        probe = TwinDapProbe(Machine(XIPBENCH, uart_echo=lambda b: None), halted=True)
        target = PyocdTarget(probe)
    else:
        probe = TwinDapProbe(ArmCore(ARMXIP))
        target = PyocdArmTarget(probe, f"pyocd://twin:{ARMXIP}?core=arm")
    assert probe.port.sequences == PYOCD_CONNECT
    assert probe.port.line == "active" and probe.port.acks == ACKS
    assert target.read_memory(rp.XIP_BASE, 4) == probe.machine.read_memory(rp.XIP_BASE, 4)
    target.close()
    if core == "arm":
        assert probe.port.acks == 0                      # pyOCD's session powers the debug domain down on close


def test_a_dormant_dp_does_not_answer():
    probe = TwinDapProbe(ArmCore(ARMXIP))
    with pytest.raises(exceptions.TransferError, match="no ACK: the SW-DP is dormant") as e:
        probe.read_dp(DP_IDR)
    assert not isinstance(e.value, exceptions.TransferFaultError)     # nothing drives the line: not a FAULT
    SWJSequenceSender(probe, use_dormant=False).switch_to_swd()       # JTAG-to-SWD does not wake it either
    with pytest.raises(exceptions.TransferError, match="dormant"):
        probe.read_dp(DP_IDR)
    woken(probe)
    assert probe.read_dp(DP_IDR) == rp.DPIDR


def test_after_a_line_reset_only_a_dpidr_read_is_answered():
    probe = TwinDapProbe(ArmCore(ARMXIP))
    swj = woken(probe)
    with pytest.raises(exceptions.TransferFaultError, match="before the DPIDR read"):
        probe.read_dp(DP_CTRL_STAT)
    assert probe.read_dp(DP_IDR) == rp.DPIDR
    assert probe.read_dp(DP_CTRL_STAT) == 0              # powered down, no sticky error
    swj.line_reset()
    swj.idle_cycles(2)
    with pytest.raises(exceptions.TransferFaultError, match="before the DPIDR read"):
        probe.write_dp(DP_SELECT, 0)
        probe.flush()


def test_ap_accesses_fault_until_the_power_up_handshake_completes():
    probe = TwinDapProbe(ArmCore(ARMXIP))
    woken(probe)
    assert probe.read_dp(DP_IDR) == rp.DPIDR
    probe.write_dp(DP_SELECT, ROM_TABLE_DEVARCH & ~0xF)
    with pytest.raises(exceptions.TransferFaultError, match="CDBGPWRUPACK 0"):
        probe.read_ap(ROM_TABLE_DEVARCH & 0xF)
    assert probe.read_dp(DP_CTRL_STAT) & armv8m.CTRL_STAT_STICKYERR
    probe.write_dp(DP_ABORT, armv8m.ABORT_STKERRCLR)
    # The handshake: the ACKs are not there at the first read after the request, and are at the next.
    probe.write_dp(DP_CTRL_STAT, REQS)
    assert probe.read_dp(DP_CTRL_STAT) == REQS
    assert probe.read_dp(DP_CTRL_STAT) == REQS | ACKS
    assert probe.read_ap(ROM_TABLE_DEVARCH & 0xF) == armv8m.DEVARCH_PRESENT | armv8m.ARCHID_ROM_TABLE


def test_targetsel_selects_the_rp2350_dp_and_an_rp2040_id_deselects_it():
    """pyOCD's own multidrop selection (target_rp2.py select_dp: dormant to SWD, line reset, TARGETSEL by
    swd_sequence, DPIDR read) with RP2040's core 0 id: the RP2350's DP is deselected and answers nothing until a line
    reset; with the RP2350's own TARGETSEL it answers, and TARGETID and DLPIDR say who it is."""
    from pyocd.core.session import Session

    probe = TwinDapProbe(ArmCore(ARMXIP))
    session = Session(probe, auto_open=False, target_override="rp2040_core0")
    rp2040 = session.target
    with pytest.raises(exceptions.TransferError, match="deselected by a TARGETSEL") as e:
        rp2040.select_dp(rp.RP2040_TARGETSEL_CORE0)
    assert not isinstance(e.value, exceptions.TransferFaultError)
    assert probe.port.sequences[-1] == f"TARGETSEL {rp.RP2040_TARGETSEL_CORE0:#010x}"
    with pytest.raises(exceptions.TransferError, match="deselected"):
        probe.read_dp(DP_IDR)
    rp2040.select_dp(rp.DP_TARGETSEL)                    # a line reset first, then the right id: selected
    assert probe.port.line == "active"
    probe.write_dp(DP_SELECT, armv8m.DP_BANK_TARGETID)
    assert probe.read_dp(DP_CTRL_STAT) == rp.DP_TARGETID
    probe.write_dp(DP_SELECT, armv8m.DP_BANK_DLPIDR)
    assert probe.read_dp(DP_CTRL_STAT) == (rp.DP_TINSTANCE << 28) | armv8m.DLPIDR_PROTVSN_SWD_V2


def test_a_targetsel_sent_as_a_normal_transfer_gets_no_ack():
    """No target drives a TARGETSEL write's ACK (ADIv5.2 B4.3.4): through write_dp a probe sees none; the DP still
    acts on the value (here another target's id, so it is deselected)."""
    probe = TwinDapProbe(ArmCore(ARMXIP))
    woken(probe)
    with pytest.raises(exceptions.TransferError, match="TARGETSEL write 0xf1002927: no ACK"):
        probe.write_dp(armv8m.DP_TARGETSEL, rp.RP2040_TARGETSEL_RESCUE)
        probe.flush()
    assert probe.port.line == "deselected"
