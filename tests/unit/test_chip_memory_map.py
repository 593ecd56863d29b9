"""Memory maps as data: the built-in rp2350 and qemu-virt maps and users' TOML maps."""

from __future__ import annotations

import pytest

from xipscope.chip import get_memory_map
from xipscope.chip import rp2350 as rp
from xipscope.errors import XipscopeError


def test_rp2350_regions():
    m = get_memory_map("rp2350")
    assert m.find(0x10200000).name == "flash" and m.find(0x10200000).cached
    assert m.find(0x11000000).kind == "xip-psram" and m.find(0x11000000).cached
    assert not m.find(0x14000000).cached and m.find(0x14000000).kind == "xip-flash"
    assert not m.find(0x1C000000).cached
    assert m.find(0x20081FFF).name == "sram" and m.find(0x20082000) is None
    assert m.find(0x40070000).name == "uart0" and m.find(0x400C8010).name == "xip_ctrl"
    assert [r.name for r in m if r.atomics_ok] == ["sram"]
    assert m.find(0x30000000) is None and m.region_name(0x30000000) == "unmapped"


def test_alias_helpers():
    assert rp.xip_alias(0x10000000) == "cached"
    assert rp.xip_alias(0x15000004) == "nocache"
    assert rp.xip_alias(0x18000002) == "maintenance"
    assert rp.xip_alias(0x1D000000) == "untranslated"
    assert rp.xip_alias(0x20000000) is None
    assert rp.xip_physical(0x15000004) == rp.xip_physical(0x11000004) == 0x01000004
    assert rp.in_exclusive_monitor(0x20081FFC) and not rp.in_exclusive_monitor(0x11000000)


def test_qemu_virt():
    m = get_memory_map("qemu-virt")
    assert m.find(0x80200000).kind == "sram" and m.find(0x80200000).atomics_ok


def test_user_toml(tmp_path):
    p = tmp_path / "board.toml"
    p.write_text('name = "myboard"\n[[region]]\nname = "flash"\nstart = 0x10000000\nend = 0x10100000\n'
                 'kind = "xip-flash"\ncached = true\n[[region]]\nname = "ram"\nstart = 0x20000000\n'
                 'end = 0x20010000\nkind = "sram"\natomics_ok = true\n')
    m = get_memory_map(p)
    assert m.name == "myboard" and m.find(0x10000100).cached and m.find(0x20000000).atomics_ok


def test_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(XipscopeError, match="not a built-in map"):
        get_memory_map("nope")
    p = tmp_path / "bad.toml"
    p.write_text('[[region]]\nname = "a"\nstart = 0\nend = 16\nkind = "sram"\n'
                 '[[region]]\nname = "b"\nstart = 8\nend = 32\nkind = "rom"\n')
    with pytest.raises(XipscopeError, match="overlap"):
        get_memory_map(p)
    p.write_text('[[region]]\nname = "a"\nstart = 0\nend = 16\nkind = "dram"\n')
    with pytest.raises(XipscopeError, match="kind"):
        get_memory_map(p)


def test_describe_says_region_cache_and_atomics():
    m = get_memory_map("rp2350")
    assert m.describe(0x10000100) == "0x10000100: flash +0x100 (xip-flash, through the XIP cache, no atomics " \
                                     "(on RP2350: AMOs fault, LR/SC never succeeds outside SRAM))"
    assert m.describe(0x15000000).startswith("0x15000000: psram-nocache +0x0 (xip-psram, uncached, no atomics")
    assert m.describe(0x20001000) == "0x20001000: sram +0x1000 (sram, atomics ok)"
    assert m.describe(0x30000000) == "0x30000000: unmapped in the rp2350 map"
