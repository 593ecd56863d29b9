"""pyocd://...?core=arm attaches without disturbing the core: no Security-state switch, no ACCESSCTRL CFGRESET.

pyOCD's stock `rp2350` target (pyocd/target/family/target_rp2.py, RP2350._set_secure_mode) switches a Non-secure core
to Secure on connect and writes ACCESSCTRL CFGRESET, which puts back to reset every ACCESSCTRL setting but LOCK and
FORCE_CORE_NS (pico-sdk accessctrl.h). The twin's Arm core (sim/arm_core.py, a model) holds ACCESSCTRL's registers
and DSCSR.CDS, so both connects run against it: the stock one to show what it would do, xipscope's to show it does not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xipscope.chip import armv8m
from xipscope.chip import rp2350 as rp
from xipscope.chip.memory_map import get_memory_map
from xipscope.profile.store import read_meta
from xipscope.profile.sampler import sample_profile
from xipscope.sim.arm_core import AccessCtrl, ArmCore
from xipscope.sim.dap import TwinDapProbe
from xipscope.targets.pyocd import PyocdArmTarget

REPO = Path(__file__).resolve().parents[2]
ARMXIP = REPO / "firmware" / "armxip.elf"
PW = rp.ACCESSCTRL_PASSWORD

# What a firmware that partitions the chip might have written (core 0, Secure, with the password where one applies):
# ROM, XIP and SRAM0 Secure-only for both cores, the debugger and the DMA; GPIO 2..31 Non-secure; core 1 forced
# Non-secure.
CONFIGURED = {
    rp.ACCESSCTRL_ROM: 0xF8, rp.ACCESSCTRL_XIP_MAIN: 0xF8, rp.ACCESSCTRL_SRAM0: 0xF8,
    rp.ACCESSCTRL_GPIO_NSMASK0: 0xFFFFFFFC, rp.ACCESSCTRL_FORCE_CORE_NS: 0x2,
}


def configured_core(*, halted: bool) -> ArmCore:
    core = ArmCore(ARMXIP)
    for offset, value in CONFIGURED.items():
        core.accessctrl.write(offset, value if offset in rp.ACCESSCTRL_NO_PASSWORD else PW | value, "core0")
    core.secure = False            # the firmware runs Non-secure (the model reports it in DSCSR.CDS)
    core.run_slice(5_000)
    if halted:                     # e.g. left halted by an earlier debugger session
        core.write_word(armv8m.DHCSR, armv8m.DBGKEY << 16 | armv8m.C_DEBUGEN | armv8m.C_HALT)
    return core


def registers(accessctrl: AccessCtrl) -> dict[int, int]:
    return {offset: accessctrl.read(offset) for offset in rp.ACCESSCTRL_REGISTERS}


def test_accessctrl_model_follows_accessctrl_h():
    a = AccessCtrl()
    # Reset values (accessctrl.h *_RESET): LOCK 0x4 (DMA), ROM/XIP_MAIN/SRAM0 0xff ("fully open"), the rest 0.
    assert registers(a) == {
        0x00: 0x4, 0x04: 0x0, 0x0C: 0x0, 0x10: 0x0, 0x14: 0xFF, 0x18: 0xFF, 0x1C: 0xFF}
    a.write(rp.ACCESSCTRL_ROM, 0x38, "core0")                     # no password: ignored
    assert a.read(rp.ACCESSCTRL_ROM) == 0xFF
    a.write(rp.ACCESSCTRL_ROM, PW | 0x38, "core0")
    a.write(rp.ACCESSCTRL_GPIO_NSMASK1, 0xFFFFFFFF, "core0")      # 32-bit field, no password; reserved bits stay 0
    a.write(rp.ACCESSCTRL_FORCE_CORE_NS, PW | 0x2, "core0")
    assert a.read(rp.ACCESSCTRL_ROM) == 0x38 and a.read(rp.ACCESSCTRL_GPIO_NSMASK1) == 0xFF00FFFF
    # CFGRESET: everything but LOCK and FORCE_CORE_NS back to reset; the register itself reads 0 (self-clearing).
    a.write(rp.ACCESSCTRL_CFGRESET, PW | 1, "debug")
    assert a.cfgresets == 1 and a.read(rp.ACCESSCTRL_CFGRESET) == 0
    assert a.read(rp.ACCESSCTRL_ROM) == 0xFF and a.read(rp.ACCESSCTRL_GPIO_NSMASK1) == 0
    assert a.read(rp.ACCESSCTRL_FORCE_CORE_NS) == 0x2
    # LOCK.DEBUG: the debugger is locked out, CFGRESET included; LOCK bits never clear.
    a.write(rp.ACCESSCTRL_ROM, PW | 0x38, "core0")
    a.write(rp.ACCESSCTRL_LOCK, PW | rp.ACCESSCTRL_LOCK_DEBUG, "core0")
    a.write(rp.ACCESSCTRL_CFGRESET, PW | 1, "debug")
    a.write(rp.ACCESSCTRL_LOCK, PW | 0, "core0")
    assert a.cfgresets == 1 and a.read(rp.ACCESSCTRL_ROM) == 0x38 and a.read(rp.ACCESSCTRL_LOCK) == 0xC


def test_pyocds_stock_rp2350_connect_resets_accessctrl_and_makes_the_core_secure():
    """Why xipscope changes pyOCD's connect: the stock sequence, on a core found Non-secure, writes DSCSR.CDS and
    CFGRESET (0xacce0001), and the firmware's ACCESSCTRL settings are gone."""
    from pyocd.core.session import Session

    core = configured_core(halted=True)
    before = registers(core.accessctrl)
    with Session(TwinDapProbe(core), target_override="rp2350", connect_mode="attach"):
        pass
    assert core.secure and core.accessctrl.cfgresets == 1
    after = registers(core.accessctrl)
    for offset in (rp.ACCESSCTRL_ROM, rp.ACCESSCTRL_XIP_MAIN, rp.ACCESSCTRL_SRAM0, rp.ACCESSCTRL_GPIO_NSMASK0):
        assert before[offset] == CONFIGURED[offset] and after[offset] == rp.ACCESSCTRL_REGISTERS[offset][1]
    assert after[rp.ACCESSCTRL_FORCE_CORE_NS] == 0x2          # CFGRESET leaves FORCE_CORE_NS (and LOCK) alone


@pytest.mark.parametrize("halted", [False, True], ids=["running", "halted"])
def test_arm_attach_and_sampling_keep_accessctrl_and_the_security_state(tmp_path, halted):
    core = configured_core(halted=halted)
    before = registers(core.accessctrl)
    target = PyocdArmTarget(TwinDapProbe(core), f"pyocd://twin:{ARMXIP}?core=arm")
    try:
        assert target.state() == ("halted" if halted else "running")
        run = sample_profile(target, tmp_path / "prof", memory_map=get_memory_map("rp2350"), samples=20, cycles=True)
        assert run.samples == 20
    finally:
        target.close()
    assert read_meta(tmp_path / "prof")["samples"] == 20
    assert registers(core.accessctrl) == before and core.accessctrl.cfgresets == 0
    assert core.secure is False
