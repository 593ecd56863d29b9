"""livelock.py, the one LR/SC livelock detector behind `xipscope trap`, `xipscope doctor` and the profile report, on
the real code bytes of firmware/lrscspin.elf, and elf/code.py's reader of those bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from xipscope import livelock
from xipscope.chip.memory_map import get_memory_map
from xipscope.elf.code import read_elf_bytes
from xipscope.elf.symbols import load_symbols
from xipscope.errors import SymbolError

LRSCSPIN = Path(__file__).resolve().parents[2] / "firmware" / "lrscspin.elf"
RP2350 = get_memory_map("rp2350")


@pytest.fixture(scope="module")
def symbols():
    return load_symbols(LRSCSPIN)


def elf_read(address: int, size: int) -> bytes:
    return read_elf_bytes(LRSCSPIN, address, size)


# spin_lock (objdump of the committed ELF): +0 c.li a5,1; +2 lr.w.aq a4,(a0); +6 c.bnez a4,-4;
# +8 sc.w a4,a5,(a0); +12 c.bnez a4,-10; +14 c.jr ra
@pytest.mark.parametrize("pcs", [(2, 2), (6, 6), (8, 8), (12, 12), (2, 12)])
def test_finds_the_loop_from_any_pc_in_it_with_and_without_symbols(symbols, pcs):
    spin = symbols.address_of("spin_lock")
    lo, hi = spin + pcs[0], spin + pcs[1]
    for syms, function in ((symbols, "spin_lock"), (None, None)):
        # Without symbols the only known boundary is the pc: the loop's branch back names the lr.w's.
        loop = livelock.find_lrsc_loop(elf_read, lo, hi, syms)
        assert loop is not None, (pcs, syms)
        assert (loop.lr.address, loop.sc.address) == (spin + 2, spin + 8)
        assert loop.lr.mnemonic == "lr.w.aq" and loop.lock_register == "a0" and loop.function == function


def test_no_loop_where_there_is_none_or_no_code(symbols):
    main = symbols.address_of("main")
    assert livelock.find_lrsc_loop(elf_read, main, main + 4, symbols) is None      # no lr.w near main's start
    spin = symbols.address_of("spin_lock")
    assert livelock.find_lrsc_loop(lambda a, n: None, spin + 6, spin + 6, symbols) is None   # unreadable memory


def test_judges_the_lock_and_says_why(symbols):
    spin, lock_address = symbols.address_of("spin_lock"), symbols.address_of("psram_lock")
    loop = livelock.find_lrsc_loop(elf_read, spin + 6, spin + 6, symbols)
    lock = livelock.judge_lock(loop, {"a0": lock_address, "pc": spin + 6}, RP2350, symbols)
    assert (lock.address, lock.region_name, lock.variable, lock.outside_monitor) == (0x11000000, "psram",
                                                                                     "psram_lock", True)
    assert livelock.verdict(lock) == "rp2350-livelock"
    why = livelock.explain(loop, lock, RP2350)
    assert why.startswith("the lock at 0x11000000 (`psram_lock`) in psram, read from a0, is outside SRAM "
                          "(0x20000000-0x20082000)")
    assert why.endswith('(rp2350.md, "Atomics outside SRAM").')
    # The same loop on a word in SRAM can succeed: a wait, not the livelock.
    in_sram = livelock.judge_lock(loop, {"a0": 0x20001000}, RP2350, symbols)
    assert not in_sram.outside_monitor and livelock.verdict(in_sram) == "contention"
    assert "not the RP2350 livelock" in livelock.explain(loop, in_sram, RP2350)
    # No registers (a profile's samples carry none): the lock is unknown and the verdict says it is inferred.
    assert livelock.judge_lock(loop, {}, RP2350, symbols) is None
    assert livelock.verdict(None) == "likely-rp2350-livelock"
    assert "halt in the loop and read a0" in livelock.explain(loop, None, RP2350)
    # Unmapped is outside the monitor too.
    assert livelock.judge_lock(loop, {"a0": 0x0}, RP2350, None).outside_monitor


def test_read_elf_bytes(symbols, tmp_path):
    spin = symbols.address_of("spin_lock")
    assert read_elf_bytes(LRSCSPIN, spin, 6) == bytes.fromhex("85472f270514")   # c.li a5,1; lr.w.aq a4,(a0) = 0x1405272f
    text_end = 0x10000000 + 932
    assert len(read_elf_bytes(LRSCSPIN, text_end - 2, 16)) == 2        # clipped where .text ends
    assert read_elf_bytes(LRSCSPIN, 0x11000000, 4) == b""              # .psram_bss: NOBITS, nothing in the file
    broken = tmp_path / "broken.elf"
    broken.write_bytes(LRSCSPIN.read_bytes()[:200])
    with pytest.raises(SymbolError, match="broken.elf: cannot read code"):
        read_elf_bytes(broken, spin, 4)
