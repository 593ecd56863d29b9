"""Each modelled RP2350 fact, read back through the twin from firmware (firmware/xipprobe.elf) or the debugger view."""

from __future__ import annotations

from pathlib import Path

import pytest

from xipscope.chip import riscv as rv
from xipscope.chip import rp2350 as rp
from xipscope.sim.hazard3 import Machine

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
LIST = 0x20040000            # an unused SRAM area for address lists
OUT = 0x20048000             # probe_count_reads writes [CTR_ACC, CTR_HIT] here
FLASH_DATA = 0x10400000      # flash nobody's code uses
# Test addresses keep (address & 0x1fff) >= 0x1000: sets 512 and up, which xipprobe's own code lines never use.
PSRAM_WORD = 0x11001000
SET_STRIDE = rp.XIP_CACHE_SETS * rp.XIP_CACHE_LINE   # 8 KiB: same set, next tag


@pytest.fixture()
def probe() -> Machine:
    m = Machine(FIRMWARE / "xipprobe.elf")
    assert m.run(1_000_000).reason == "idle"
    assert "xipprobe ready" in m.uart.text()
    return m


def word(m: Machine, address: int) -> int:
    return int.from_bytes(m.read_memory(address, 4), "little")


def poke(m: Machine, address: int, value: int) -> None:
    m.write_memory(address, value.to_bytes(4, "little"))


def count_reads(m: Machine, addrs: list[int]) -> tuple[int, int]:
    """(CTR_ACC, CTR_HIT) as the firmware reads them around reading `addrs`, minus the same run over SRAM addresses
    (which are not XIP accesses): what is left is the data accesses alone."""
    def run(lst):
        m.write_memory(LIST, b"".join(a.to_bytes(4, "little") for a in lst))
        m.call("probe_count_reads", LIST, len(lst), OUT)
        return word(m, OUT), word(m, OUT + 4)
    sram = [LIST] * len(addrs)
    run(sram)                       # warm the probe's own code lines
    base_acc, base_hit = run(sram)
    acc, hit = run(addrs)
    return acc - base_acc, hit - base_hit


def test_ctrl_resets_to_0x83_and_counters_count(probe):
    assert probe.read_memory(rp.XIP_CTRL_BASE, 4) == (0x83).to_bytes(4, "little")
    assert word(probe, rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_ACC) > 0   # booting fetched from flash


def test_counters_cleared_by_any_write_each_on_its_own(probe):
    hit_reg = rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT
    acc_reg = rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_ACC
    # Firmware writes an arbitrary value to CTR_HIT; then reads both back itself.
    probe.call("probe_write32", hit_reg, 0xDEADBEEF)
    assert probe.call("probe_read32", hit_reg) < 20          # only the few hits since the write
    assert probe.call("probe_read32", acc_reg) > 100         # CTR_ACC kept counting
    probe.call("probe_write32", acc_reg, 0)
    assert probe.call("probe_read32", acc_reg) < 20
    # A debugger write clears too.
    poke(probe, acc_reg, 1)
    assert word(probe, acc_reg) == 0


def test_counters_saturate_at_32_bits(probe):
    # Getting to 2**32 accesses takes an hour of simulated reads: preset the twin's counts just below the top.
    probe.cache.ctr[0] = 0xFFFFFFFF - 3
    probe.cache.ctr[1] = 0xFFFFFFFF - 3
    addrs = [FLASH_DATA] * 20
    probe.write_memory(LIST, b"".join(a.to_bytes(4, "little") for a in addrs))
    probe.call("probe_read_list", LIST, len(addrs))
    assert probe.call("probe_read32", rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_ACC) == 0xFFFFFFFF
    assert probe.call("probe_read32", rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT) == 0xFFFFFFFF
    probe.call("probe_write32", rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT, 0)
    assert probe.call("probe_read32", rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT) < 20


def test_line_is_8_bytes(probe):
    a = FLASH_DATA + 0x1000
    assert count_reads(probe, [a, a + 4]) == (2, 1)              # same line: second read hits
    assert count_reads(probe, [a + 8, a + 12, a + 16]) == (3, 1)  # a+8..a+15 one line, a+16 the next
    assert count_reads(probe, [a + 4, a + 12]) == (2, 2)          # both lines now cached


def test_two_ways_and_8k_set_stride(probe):
    b = FLASH_DATA + 0x3000
    # Two lines 8 KiB apart share a set: both stay (2 ways).
    count_reads(probe, [b, b + SET_STRIDE])
    assert count_reads(probe, [b, b + SET_STRIDE]) == (2, 2)
    # Three lines in one set cannot all stay: a second round always misses at least once.
    c = FLASH_DATA + 0x5100
    count_reads(probe, [c, c + SET_STRIDE, c + 2 * SET_STRIDE])
    acc, hit = count_reads(probe, [c, c + SET_STRIDE, c + 2 * SET_STRIDE])
    assert acc == 3 and hit < 3
    # Two lines 8 KiB apart and one 2 KiB off: only two share a set, so all three stay.
    e = FLASH_DATA + 0x11400   # sets 640 and 896: untouched so far, so the first round fills invalid ways
    count_reads(probe, [e, e + 2048, e + SET_STRIDE])
    assert count_reads(probe, [e, e + 2048, e + SET_STRIDE]) == (3, 3)


def test_capacity_is_16k(probe):
    f = FLASH_DATA + 0x20000
    lines = [f + 8 * i for i in range(rp.XIP_CACHE_SIZE // 8)]
    # The probe's own code lines take a few sets; use the sets they leave alone (512 and up).
    lines = [a for a in lines if ((a >> 3) & 1023) >= 512]
    count_reads(probe, lines)
    acc, hit = count_reads(probe, lines)
    assert acc == len(lines) and hit == len(lines)   # 16 KiB of distinct lines spread over the sets all fit


def test_uncached_alias_counted_never_hits(probe):
    u = rp.XIP_ALIASES["nocache"] + (FLASH_DATA - rp.XIP_BASE) + 0x9000
    assert count_reads(probe, [u, u, u, u + 4]) == (4, 0)
    cached = u - rp.XIP_ALIASES["nocache"] + rp.XIP_BASE
    assert count_reads(probe, [cached, cached]) == (2, 1)   # the uncached reads allocated nothing
    untranslated = rp.XIP_ALIASES["untranslated"] + (cached - rp.XIP_BASE)
    assert count_reads(probe, [untranslated]) == (1, 0)     # even with the line cached


def test_psram_is_behind_the_same_cache(probe):
    p = PSRAM_WORD + 0x100
    assert count_reads(probe, [p, p, p + 4]) == (3, 2)


def test_caching_off_when_ctrl_disables_it(probe):
    ctrl = rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTRL
    probe.call("probe_write32", ctrl, rp.XIP_CTRL_CTRL_RESET & ~rp.CTRL_EN_SECURE)
    g = FLASH_DATA + 0x5000
    assert count_reads(probe, [g, g, g]) == (3, 0)
    probe.call("probe_write32", ctrl, rp.XIP_CTRL_CTRL_RESET)
    count_reads(probe, [g])
    assert count_reads(probe, [g, g]) == (2, 2)


def test_maintenance_invalidate_by_address(probe):
    h = FLASH_DATA + 0x7000
    count_reads(probe, [h])
    assert count_reads(probe, [h]) == (1, 1)
    op = 2  # invalidate by address
    probe.call("probe_write32", rp.XIP_ALIASES["maintenance"] + (h - rp.XIP_BASE) + op, 0)
    assert count_reads(probe, [h]) == (1, 0)


def _trap_resume(m: Machine) -> None:
    poke(m, m.elf.symbol("trap_resume"), 1)


def _last_trap(m: Machine) -> dict[str, int]:
    base = m.elf.symbol("last_trap")
    return {k: word(m, base + 4 * i) for i, k in enumerate(("mcause", "mepc", "mstatus", "mtval"))}


def _insn(m: Machine, address: int) -> int:
    return int.from_bytes(m.read_memory(address, 4), "little")


@pytest.mark.parametrize("where", [PSRAM_WORD, FLASH_DATA, rp.UART0_BASE + rp.PL011_FR])
def test_amo_outside_sram_traps_once_with_mcause_7_memory_untouched(probe, where):
    _trap_resume(probe)
    if where == PSRAM_WORD:
        poke(probe, where, 0x1234)
    before = probe.read_memory(where, 4)
    traps = len(probe.traps)
    probe.call("probe_amoswap", where, 0x99)
    assert [t.cause for t in probe.traps[traps:]] == [7]
    trap = _last_trap(probe)
    assert trap["mcause"] == 7 and trap["mtval"] == 0
    fn = probe.elf.functions[probe.elf.function_index(trap["mepc"])]
    assert fn.name == "probe_amoswap" and rv.decode_amo(_insn(probe, trap["mepc"])) == "amo"
    assert probe.read_memory(where, 4) == before
    assert word(probe, probe.elf.symbol("trap_count")) == 1


def test_amo_in_sram_works(probe):
    poke(probe, LIST, 0x1234)
    assert probe.call("probe_amoswap", LIST, 0x99) == 0x1234
    assert word(probe, LIST) == 0x99
    assert probe.traps == []


def test_lr_sc_succeeds_in_sram_never_outside(probe):
    poke(probe, LIST, 5)
    assert probe.call("probe_lrsc", LIST, 7) == 0
    assert word(probe, LIST) == 7
    poke(probe, PSRAM_WORD, 5)
    for _ in range(3):
        assert probe.call("probe_lrsc", PSRAM_WORD, 7) != 0
    assert word(probe, PSRAM_WORD) == 5
    assert probe.traps == []


def test_lrsc_lock_in_psram_spins_forever():
    m = Machine(FIRMWARE / "lrscspin.elf")
    r = m.run(200_000)
    assert r.reason == "budget" and m.traps == []
    spin = m.elf.functions[m.elf.function_index(r.pc)]
    assert spin.name == "spin_lock"
    assert m.read_memory(m.elf.symbol("psram_lock"), 4) == bytes(4)
    assert "lock taken" not in m.uart.text()


def test_amofault_dies_with_mcause_7():
    m = Machine(FIRMWARE / "amofault.elf")
    r = m.run(1_000_000)
    assert r.reason == "idle"
    assert [t.cause for t in m.traps] == [7]
    assert "TRAP mcause=0x00000007" in m.uart.text() and "mtval=0x00000000" in m.uart.text()
    assert m.read_register("mcause") == 7 and m.read_register("mtval") == 0
    epc = m.read_register("mepc")
    assert m.elf.functions[m.elf.function_index(epc)].name == "spin_lock"
    assert rv.decode_amo(_insn(m, epc)) == "amo"
    assert m.read_memory(m.elf.symbol("psram_lock"), 4) == bytes(4)
    assert "lock taken" not in m.uart.text()


@pytest.mark.parametrize("call,cause,fn", [
    (("probe_read32", 0x30000000), 5, "probe_read32"),
    (("probe_write32", 0x30000000, 1), 7, "probe_write32"),
    (("probe_write32", rp.XIP_BASE + 0x100, 1), 7, "probe_write32"),   # flash is not writable
    (("probe_ecall",), 11, "probe_ecall"),
    (("probe_ebreak",), 3, "probe_ebreak"),
])
def test_traps_as_hazard3_takes_them(probe, call, cause, fn):
    _trap_resume(probe)
    mie_before = 1
    probe.write_register("mstatus", probe.read_register("mstatus") | rv.MSTATUS_MIE)
    probe.call(*call)   # returns: the handler resumed past the faulting instruction with mret
    assert [t.cause for t in probe.traps] == [cause]
    trap = _last_trap(probe)
    assert trap["mcause"] == cause and trap["mtval"] == 0
    assert probe.elf.functions[probe.elf.function_index(trap["mepc"])].name == fn
    assert (trap["mstatus"] & rv.MSTATUS_MPP_MASK) >> rv.MSTATUS_MPP_SHIFT == rv.PRV_M
    assert trap["mstatus"] & rv.MSTATUS_MIE == 0                      # MIE cleared on entry
    assert bool(trap["mstatus"] & rv.MSTATUS_MPIE) == bool(mie_before)  # ... and saved in MPIE
    assert probe.read_register("mstatus") & rv.MSTATUS_MIE               # mret restored it


def test_mcountinhibit_resets_to_1_and_counters_then_count(probe):
    probe.call("probe_counters", OUT)
    inhibit, cycle0, instret0, dinstret, dcycle = (word(probe, OUT + 4 * i) for i in range(5))
    assert inhibit == rp.HAZARD3_MCOUNTINHIBIT_RESET == 0b101
    assert cycle0 == 0 and instret0 == 0            # nothing counted while inhibited
    assert 100 <= dinstret <= 110                   # the 100 nops and the counter reads around them
    assert dcycle >= dinstret                       # cold flash lines stall
    assert probe.read_register("mcountinhibit") == 0
    assert probe.read_register("mvendorid") == rp.HAZARD3_MVENDORID


def test_ground_truth_instret_matches_firmware_minstret(probe):
    probe.call("probe_counters", OUT)
    before = probe.read_register("minstret")
    n = probe.instructions
    probe.call("probe_read32", LIST)
    assert probe.read_register("minstret") - before == probe.instructions - n



def test_illegal_instruction_and_fetch_fault(probe):
    poke(probe, LIST, 0)                    # c.unimp: illegal
    probe.call(LIST)                        # the handler reports it and parks
    assert [(t.cause, t.epc) for t in probe.traps] == [(2, LIST)]
    assert probe.read_register("mepc") == LIST and probe.read_register("mtval") == 0
    probe.call(0x30000000)                  # nothing there to fetch
    assert [(t.cause, t.epc) for t in probe.traps][1:] == [(1, 0x30000000)]
    assert "TRAP mcause=0x00000001 mepc=0x30000000" in probe.uart.text()
