"""The twin's QMI (a model) against the facts in ../shared/reference/rp2350-flash.md and pico-sdk qmi.h: register
resets, the hang rule while DIRECT_CSR.EN = 1, and ATRANS sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from xipscope.chip import rp2350 as rp
from xipscope.sim.hazard3 import Machine

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
SRAM_CODE = 0x20040000            # unused SRAM: the tests put a two-instruction loader here
# lw a0, 0(a0); ret; then a park loop in SRAM (wfi; j .-4) to return to while flash is out of reach.
LW_A0_RET = b"".join(i.to_bytes(4, "little") for i in (0x00052503, 0x00008067, 0x10500073, 0xFFDFF06F))
SRAM_PARK = SRAM_CODE + 8
FLASH_WORD = 0x10200000           # 2 MiB into flash: ATRANS0's window, nobody's code
DIRECT_ON = 0x03000001            # what the ROM writes between commands plus EN (rp2350-flash.md)


def word(m: Machine, address: int) -> int:
    return int.from_bytes(m.read_memory(address, 4), "little")


def poke(m: Machine, address: int, value: int) -> None:
    m.write_memory(address, value.to_bytes(4, "little"))


@pytest.fixture()
def probe() -> Machine:
    m = Machine(FIRMWARE / "xipprobe.elf")
    assert m.run(1_000_000).reason == "idle"
    m.write_memory(SRAM_CODE, LW_A0_RET)
    return m


def start(m: Machine, pc: int, a0: int) -> None:
    m.write_register("sp", m.elf.symbol("__stack_top"))
    m.write_register("ra", m.elf.symbol("_park"))
    m.write_register("a0", a0)
    m.write_register("pc", pc)


def test_qmi_registers_reset_to_the_documented_values(probe):
    q = rp.XIP_QMI_BASE
    assert word(probe, q + 0x00) == 0x01800000                      # DIRECT_CSR
    for window in (0x0C, 0x20):                                     # M0_*, M1_*
        assert [word(probe, q + window + 4 * i) for i in range(5)] == [0x40000004, 0x1000, 0xA003, 0x1000, 0xA002]
    assert [word(probe, q + 0x34 + 4 * i) for i in range(8)] == [
        0x04000000, 0x04000400, 0x04000800, 0x04000C00, 0x04000000, 0x04000400, 0x04000800, 0x04000C00]


def test_firmware_reads_and_writes_qmi_registers(probe):
    rcmd = rp.XIP_QMI_BASE + 0x14
    probe.call("probe_write32", rcmd, 0xA0EB)
    assert probe.call("probe_read32", rcmd) == 0xA0EB
    assert word(probe, rcmd) == 0xA0EB


def test_load_from_xip_with_direct_mode_on_is_a_load_fault_and_rd_is_kept(probe):
    assert probe.call(SRAM_CODE, FLASH_WORD) == word(probe, FLASH_WORD)   # EN = 0: an ordinary load
    poke(probe, rp.XIP_QMI_BASE, DIRECT_ON)
    start(probe, SRAM_CODE, FLASH_WORD)
    result = probe.run(100_000)
    # The handler (trap_entry) is in flash too: its fetch faults at once, and the core spins on that.
    assert [(t.cause, t.epc) for t in probe.traps] == [(5, SRAM_CODE), (1, probe.elf.symbol("trap_entry"))]
    assert result.reason == "trap-loop"
    assert probe.read_register("a0") == FLASH_WORD                  # a faulting load writes nothing
    assert probe.read_register("mtval") == 0


def test_every_alias_faults_in_direct_mode_but_sram_does_not(probe):
    for address in (0x10000000 + 0x1000, 0x11000000, 0x14200000, 0x1C200000):
        m = Machine(FIRMWARE / "xipprobe.elf")
        m.run(1_000_000)
        m.write_memory(SRAM_CODE, LW_A0_RET)
        poke(m, rp.XIP_QMI_BASE, DIRECT_ON)
        start(m, SRAM_CODE, address)
        m.run(100_000)
        assert m.traps[0].cause == rp.CAUSE_LOAD_FAULT and m.traps[0].epc == SRAM_CODE, hex(address)
    poke(probe, rp.XIP_QMI_BASE, DIRECT_ON)
    start(probe, SRAM_CODE, 0x20000000)
    probe.write_register("ra", SRAM_PARK)
    assert probe.run(100_000).reason == "idle" and probe.traps == []
    assert probe.read_register("a0") == word(probe, 0x20000000)


def test_direct_mode_switched_on_from_flash_faults_the_next_fetch():
    m = Machine(FIRMWARE / "flashwrite_hang.elf")
    result = m.run(2_000_000)
    fn = m.elf.symbol("flash_program_page")
    first = m.traps[0]
    assert first.cause == rp.CAUSE_FETCH_FAULT
    # The store that turns EN on is flash_program_page's first store; the fetch right after it is refused.
    code = m.read_memory(fn, 16)
    assert fn < first.epc <= fn + 16 and code[first.epc - fn - 2:first.epc - fn] == b"\x14\xc3"  # c.sw a3,0(a4)
    assert word(m, rp.XIP_QMI_BASE + 0x04) == 0 and m.read_register("a3") == DIRECT_ON
    assert result.reason == "trap-loop" and m.traps[-1].epc == m.elf.symbol("trap_entry")
    assert word(m, rp.XIP_QMI_BASE) & rp.DIRECT_CSR_EN
    assert "settings saved" not in m.uart.text()


def test_flash_operation_from_sram_completes():
    m = Machine(FIRMWARE / "flashwrite_ok.elf")
    assert m.run(2_000_000).reason == "idle"
    assert m.traps == [] and "flashwrite: settings saved" in m.uart.text()
    assert word(m, rp.XIP_QMI_BASE) == 0                            # direct mode off again


def test_atrans_size_limits_translated_aliases_only(probe):
    # ATRANS0 SIZE 0x100: the first 1 MiB of CS0 stays reachable (the firmware runs there), the rest faults.
    poke(probe, rp.XIP_QMI_BASE + 0x34, 0x01000000)
    probe.write_register("mtvec", probe.elf.symbol("trap_entry"))
    assert probe.call(SRAM_CODE, 0x10000000 + 0x0FFFFC) == word(probe, 0x100FFFFC)
    assert probe.traps == []
    probe.call(SRAM_CODE, FLASH_WORD)
    assert [(t.cause, t.epc) for t in probe.traps] == [(rp.CAUSE_LOAD_FAULT, SRAM_CODE)]
    assert "TRAP mcause=0x00000005" in probe.uart.text()
    probe.call(SRAM_CODE, 0x14000000 + 0x200000)                    # uncached alias: translated, faults
    assert len(probe.traps) == 2
    assert probe.call(SRAM_CODE, 0x1C200000) == word(probe, FLASH_WORD)   # untranslated alias: no ATRANS
    assert len(probe.traps) == 2
    assert probe.call(SRAM_CODE, 0x10400000) == word(probe, 0x10400000)   # ATRANS1's window is untouched


def test_fetch_beyond_atrans_size_is_an_instruction_fault(probe):
    poke(probe, rp.XIP_QMI_BASE + 0x34, 0x00000000)                 # ATRANS0 SIZE 0: all of CS0's first 4 MiB
    start(probe, probe.elf.symbol("probe_read32"), 0x20000000)
    assert probe.run(100_000).reason == "trap-loop"
    assert probe.traps[0] .cause == rp.CAUSE_FETCH_FAULT and probe.traps[0].epc == probe.elf.symbol("probe_read32")
