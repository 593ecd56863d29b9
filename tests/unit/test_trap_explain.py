"""The explanations, from oops texts for an RP2350 kernel (registers + Code: line, 6.13+ format): each RP2350 rule
gives the advice it should. The decode is a pure function of the registers and the instruction, so text is enough;
the live paths are covered on QEMU (test_trap_qemu.py) and the twin (test_trap_twin.py)."""

from __future__ import annotations

import pytest

from xipscope.linux.oops import parse_oops
from xipscope.trap import decode_oops

NAMES = ("epc ra sp gp tp t0 t1 t2 s0 s1 a0 a1 a2 a3 a4 a5 a6 a7 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 "
         "t3 t4 t5 t6").split()


def oops_text(cause: int, epc: int, insn: int | None, **regs: int) -> str:
    values = {n: 0 for n in NAMES} | {"epc": epc, "sp": 0x20001F00, "s0": 0x20001F20, "ra": 0x10200100} | regs
    lines = ["[    1.000000] Oops - something [#1]", "[    1.000001] CPU: 0 UID: 0 PID: 1 Comm: init Not tainted 6.13.7 #1"]
    for i in range(0, len(NAMES), 3):
        lines.append("[    1.000002] " + " ".join(f"{n:>3}: {values[n]:08x}" for n in NAMES[i:i + 3]))
    lines.append(f"[    1.000003] status: 00001880 badaddr: 00000000 cause: {cause:08x}")
    if insn is not None:
        halves = [insn & 0xFFFF, insn >> 16] if insn & 3 == 3 else [insn]
        code = ["0001"] * 10 + [f"({halves[0]:04x})"] + [f"{h:04x}" for h in halves[1:]] + ["0001"] * (2 - len(halves))
        lines.append("[    1.000004] Code: " + " ".join(code))
    return "\n".join(lines) + "\n"


def decode(cause, epc, insn, **regs):
    return decode_oops(parse_oops(oops_text(cause, epc, insn, **regs)), None, "rp2350").to_json()


def test_amo_in_psram():
    r = decode(7, 0x10200010, 0x0CF527AF, a0=0x11000040)       # amoswap.w.aq a5, a5, (a0)
    assert r["instruction"] == "amoswap.w.aq a5, a5, (a0)" and r["instruction_source"] == "oops Code: line"
    assert (r["fault_address"], r["fault_region"]) == (0x11000040, "psram")
    assert r["explanation"].startswith("atomic access: amoswap.w.aq to 0x11000040 in psram (xip-psram)")
    assert "only in SRAM" in r["explanation"]


def test_store_into_xip_flash():
    r = decode(7, 0x10200010, 0x00F52023, a0=0x10001000)       # sw a5, 0(a0)
    assert r["instruction"] == "sw a5, 0(a0)" and r["fault_region"] == "flash"
    assert r["explanation"].startswith("store into xip-flash at 0x10001000 (flash): it is read-only")


def test_misaligned_load():
    r = decode(4, 0x10200010, 0x00252783, a0=0x20000001)       # lw a5, 2(a0)
    assert r["fault_address"] == 0x20000003 and r["access_size"] == 4
    assert r["explanation"].startswith("misaligned access: 0x20000003 is not a multiple of 4")


@pytest.mark.parametrize("epc, words", [(0x40070010, "in uart0, a peripheral: not executable"),
                                        (0x30000000, "which no region of the map covers")])
def test_fetch_faults(epc, words):
    r = decode(1, epc, None, ra=0x10200100)
    assert r["cause_name"] == "instruction access fault" and words in r["explanation"]
    assert "ra = 0x10200100" in r["explanation"]


def test_zcb_store_address_from_registers():
    r = decode(7, 0x10200010, 0x8F7C, a4=0x10000FFE)           # c.sh a5, 2(a4): Zcb, capstone 5 lacks it
    assert r["instruction"] == "c.sh a5, 2(a4)" and r["fault_address"] == 0x10001000
    assert r["fault_region"] == "flash" and r["access_size"] == 2


def test_interrupt_and_hazard3_cause_names():
    r = decode(0x8000000B, 0x10200010, None)
    assert r["interrupt"] and r["cause_code"] == 11 and "meinext" in r["cause_name"]
    assert r["explanation"].startswith("an interrupt, not a fault")
    r = decode(13, 0x10200010, None)
    assert r["cause_name"] == "load page fault" and any("Hazard3 never raises exception 13" in n for n in r["notes"])


def test_a_users_toml_map_of_the_rp2350_gets_the_hazard3_rules(tmp_path):
    """The chip a map names, not the map's name, says which rules apply: a user's own TOML map of the RP2350 (here
    only flash and SRAM, under another name) gets Hazard3's cause names and notes; the same map without `chip` does
    not, as a map of some other RISC-V chip should not."""
    regions = ('[[region]]\nname = "flash"\nstart = 0x10000000\nend = 0x11000000\nkind = "xip-flash"\ncached = true\n'
               '[[region]]\nname = "sram"\nstart = 0x20000000\nend = 0x20082000\nkind = "sram"\natomics_ok = true\n')
    (tmp_path / "mine.toml").write_text('name = "my-board"\nchip = "rp2350"\n' + regions)
    (tmp_path / "other.toml").write_text('name = "other-chip"\n' + regions)
    text = oops_text(13, 0x10200010, None)
    mine = decode_oops(parse_oops(text), None, str(tmp_path / "mine.toml")).to_json()
    other = decode_oops(parse_oops(text), None, str(tmp_path / "other.toml")).to_json()
    assert mine["memory_map"] == "my-board" and other["memory_map"] == "other-chip"
    assert any("Hazard3 never raises exception 13" in n for n in mine["notes"])
    assert any("Hazard3 writes mtval = 0" in n for n in mine["notes"])
    assert not any("Hazard3" in n for n in other["notes"])
    interrupt = oops_text(0x8000000B, 0x10200010, None)
    assert "meinext" in decode_oops(parse_oops(interrupt), None, str(tmp_path / "mine.toml")).to_json()["cause_name"]
    assert "meinext" not in decode_oops(parse_oops(interrupt), None, str(tmp_path / "other.toml")).to_json()["cause_name"]


def test_a_map_naming_an_unknown_chip_is_a_clear_error(tmp_path):
    from xipscope.chip.memory_map import get_memory_map
    from xipscope.errors import XipscopeError
    (tmp_path / "m.toml").write_text('chip = "rp9999"\n[[region]]\nname = "ram"\nstart = 0\nend = 0x1000\nkind = "sram"\n')
    with pytest.raises(XipscopeError, match=r"chip 'rp9999' is not one xipscope knows \(rp2350\)"):
        get_memory_map(tmp_path / "m.toml")
