"""The symbol index against binutils on the real rv32 kernel's builds (split from unit/test_symbols.py: this part
builds kernels)."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from support.addr2line import addr2line, same_function
from xipscope.elf import load_symbols
from xipscope.errors import SymbolError


def random_text_addresses(elf: Path, n: int, seed: int) -> list[int]:
    """Seeded addresses spread uniformly over the executable sections (2-byte aligned: RVC)."""
    with open(elf, "rb") as f:
        secs = [(s["sh_addr"], s["sh_size"]) for s in ELFFile(f).iter_sections() if s["sh_flags"] & 0x4]
    rng = random.Random(seed)
    total = sum(size for _, size in secs)
    out = []
    for _ in range(n):
        r = rng.randrange(total // 2) * 2
        for base, size in secs:
            if r < size:
                out.append(base + r)
                break
            r -= size
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("symcache")


@pytest.fixture(scope="module")
def dwarf_index(dwarf_kernel, cache):
    return load_symbols(dwarf_kernel.vmlinux, cache_dir=cache)


# --- the real kernel


def test_kernel_index_identity(dwarf_index, nodwarf_kernel, cache):
    assert (dwarf_index.arch, dwarf_index.word_size, dwarf_index.little_endian) == ("riscv32", 4, True)
    assert dwarf_index.has_dwarf and dwarf_index.source == "elf" and dwarf_index.elf_path == dwarf_index.path
    nodwarf = load_symbols(nodwarf_kernel.vmlinux, cache_dir=cache)
    assert not nodwarf.has_dwarf and nodwarf.word_size == 4
    smap = load_symbols(nodwarf_kernel.system_map, cache_dir=cache)
    assert smap.source == "system.map" and smap.elf_path is None and not smap.has_dwarf


def test_addr2line_agrees_on_dwarf_kernel(dwarf_kernel, dwarf_index):
    addresses = random_text_addresses(dwarf_kernel.vmlinux, 3000, seed=2350)
    theirs = addr2line(dwarf_kernel.vmlinux, addresses)
    ours = dwarf_index.symbolize(addresses)
    func_bad, line_bad = [], []
    for i, (address, (funcs, locs)) in enumerate(zip(addresses, theirs)):
        func, offset, file, line = ours[i]
        if not same_function(dwarf_index, func, offset, address, funcs[-1]):
            func_bad.append((hex(address), func, funcs))
        if (f"{file}:{line}" if file is not None else "??:0") != locs[0]:
            line_bad.append((hex(address), file, line, locs))
    assert not func_bad, func_bad[:10]
    assert not line_bad, line_bad[:10]
    # Not vacuous: nearly every random text address lands in a function with a line.
    assert np.count_nonzero(ours.function_id >= 0) > 0.95 * len(addresses)
    assert np.count_nonzero(ours.line > 0) > 0.95 * len(addresses)


def test_nodwarf_kernel_agrees_with_addr2line_symtab(nodwarf_kernel, cache):
    index = load_symbols(nodwarf_kernel.vmlinux, cache_dir=cache)
    addresses = random_text_addresses(nodwarf_kernel.vmlinux, 2000, seed=7)
    theirs = addr2line(nodwarf_kernel.vmlinux, addresses, inline=False)
    ours = index.symbolize(addresses)
    bad = [(hex(a), ours[i], funcs) for i, (a, (funcs, _)) in enumerate(zip(addresses, theirs))
           if ours.function_id[i] >= 0 and not same_function(index, ours[i][0], ours[i][1], a, funcs[0])]
    assert not bad, bad[:10]
    assert np.all(ours.file_id == -1) and np.all(ours.line == 0)
    assert np.count_nonzero(ours.function_id >= 0) > 0.95 * len(addresses)


def _inside_function_addresses(index, n: int, seed: int) -> np.ndarray:
    a = index._a
    rng = np.random.default_rng(seed)
    seg = rng.integers(0, len(a["seg_start"]), n)
    span = a["seg_end"][seg] - a["seg_start"][seg]
    return a["seg_start"][seg] + (rng.random(n) * span).astype(np.uint64)


def assert_same_names(elf_index, other, addresses, labels_may_differ: bool):
    """Same function for every address; a System.map may name a label that the ELF knows is inside a typed function."""
    mine, theirs = elf_index.symbolize(addresses), other.symbolize(addresses)
    differ = np.nonzero(mine.function_id != theirs.function_id)[0] if elf_index.names == other.names else None
    bad = []
    for i in (differ if differ is not None else range(len(addresses))):
        f_elf, f_other = mine.function[i], theirs.function[i]
        if f_elf == f_other:
            continue
        if labels_may_differ and f_other is not None:
            start = int(addresses[i]) - int(mine.offset[i])
            end = start + max(s.size for s in elf_index.symbols_at(start) if s.kind != "object")
            if any(s.kind == "label" and start <= s.address < end for s in elf_index.symbols_named(f_other)):
                continue
        bad.append((hex(int(addresses[i])), f_elf, f_other))
    assert not bad, bad[:10]


def test_stripped_vmlinux_and_system_map_name_what_the_dwarf_symtab_names(dwarf_kernel, dwarf_index, cache, tmp_path):
    stripped = tmp_path / "vmlinux.nodebug"
    subprocess.run(["riscv64-linux-gnu-objcopy", "--strip-debug", str(dwarf_kernel.vmlinux), str(stripped)], check=True)
    no_dwarf = load_symbols(stripped, cache_dir=cache)
    assert not no_dwarf.has_dwarf and no_dwarf.content_hash != dwarf_index.content_hash
    addresses = _inside_function_addresses(dwarf_index, 20000, seed=1)
    assert_same_names(dwarf_index, no_dwarf, addresses, labels_may_differ=False)
    smap = load_symbols(dwarf_kernel.system_map, cache_dir=cache)
    assert_same_names(dwarf_index, smap, addresses, labels_may_differ=True)


def test_system_map_agrees_with_nodwarf_vmlinux(nodwarf_kernel, cache):
    elf = load_symbols(nodwarf_kernel.vmlinux, cache_dir=cache)
    smap = load_symbols(nodwarf_kernel.system_map, cache_dir=cache)
    assert_same_names(elf, smap, _inside_function_addresses(elf, 20000, seed=2), labels_may_differ=True)
    # And every name System.map lists is found at the same address in the ELF's index.
    missing = []
    for line in nodwarf_kernel.system_map.read_text().splitlines():
        address, kind, name = line.split()[:3]
        if kind not in "aAUN" and int(address, 16) not in {s.address for s in elf.symbols_named(name)}:
            missing.append(line)
    assert not missing, missing[:10]


def test_kernel_names_to_addresses(dwarf_kernel, dwarf_index):
    nm = {}
    for line in subprocess.run(["riscv64-linux-gnu-nm", str(dwarf_kernel.vmlinux)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        addr, kind, name = line.split()[:3] if len(line.split()) >= 3 else (None, None, None)
        if name:
            nm.setdefault(name, set()).add(int(addr, 16))
    # prb is a static: found because LOCAL symbols are indexed.
    assert dwarf_index.address_of("prb") == min(nm["prb"])
    assert [s.binding for s in dwarf_index.symbols_named("prb")] == ["local"]
    assert dwarf_index.symbols_named("prb")[0].kind == "object"
    assert dwarf_index.address_of("_printk") == min(nm["_printk"])
    assert dwarf_index.describe(dwarf_index.address_of("_printk") + 4).startswith("_printk+0x4 (")
    # A static name defined in several files: ambiguous by name, listed in the error, all returned by symbols_named.
    dup = next(n for n, addrs in sorted(nm.items()) if len(addrs) > 1 and len(dwarf_index.symbols_named(n)) > 1)
    with pytest.raises(SymbolError, match=f"expected one symbol named '{re.escape(dup)}'; found"):
        dwarf_index.address_of(dup)
    assert {s.address for s in dwarf_index.symbols_named(dup)} == nm[dup]
    with pytest.raises(SymbolError, match="found none"):
        dwarf_index.address_of("no_such_symbol_anywhere")
    # Linker-script labels, code and data, as System.map lists them.
    for name in ("_start", "_stext", "_etext", "__bss_start", "_end", "_edata"):
        assert dwarf_index.address_of(name) == min(nm[name]), name
    assert dwarf_index.symbols_named("_end")[0].kind == "label"


def test_kernel_cache_is_used_and_survives_corruption(dwarf_kernel, tmp_path):
    vmlinux = tmp_path / "vmlinux"
    shutil.copy(dwarf_kernel.vmlinux, vmlinux)
    cold = load_symbols(vmlinux, cache_dir=tmp_path / "c")
    warm = load_symbols(vmlinux, cache_dir=tmp_path / "c")
    assert not cold.from_cache and warm.from_cache     # (how much faster: bench/bench_symbols.py)
    probe = random_text_addresses(vmlinux, 500, seed=3)
    expect = cold.symbolize(probe)
    got = warm.symbolize(probe)
    assert list(got.function) == list(expect.function) and list(got.file) == list(expect.file)
    assert np.array_equal(got.line, expect.line) and np.array_equal(got.offset, expect.offset)

    # Flip bytes in the middle of the arrays: the zip CRC (or our checks) must catch it and the index be rebuilt.
    (npz,) = (tmp_path / "c").glob("*.npz")
    blob = bytearray(npz.read_bytes())
    blob[len(blob) // 2:len(blob) // 2 + 64] = bytes(64)
    npz.write_bytes(bytes(blob))
    rebuilt = load_symbols(vmlinux, cache_dir=tmp_path / "c")
    assert not rebuilt.from_cache
    assert list(rebuilt.symbolize(probe).function) == list(expect.function)
    assert load_symbols(vmlinux, cache_dir=tmp_path / "c").from_cache


def test_symbolize_a_million_addresses_in_one_call(dwarf_kernel, dwarf_index):
    """A million addresses in one call (a long profile's pcs) answer as each does alone; how fast is
    bench/bench_symbols.py's to say (goal under 1 s), not a timed test's."""
    rng = np.random.default_rng(0)
    lo, hi = int(dwarf_index._a["seg_start"][0]), int(dwarf_index._a["seg_end"][-1])
    addresses = rng.integers(lo, hi, 1_000_000, dtype=np.uint64)
    s = dwarf_index.symbolize(addresses)
    assert len(s) == 1_000_000
    for i in rng.integers(0, len(addresses), 200):
        alone = dwarf_index.symbolize(addresses[i:i + 1])
        assert (s.function[i], s.file[i], s.line[i]) == (alone.function[0], alone.file[0], alone.line[0])
