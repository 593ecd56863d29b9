"""The symbol index against binutils on small ELFs compiled here; its errors and its cache (on the real rv32 kernel:
kernel/test_symbols_kernel.py)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from support.addr2line import addr2line, same_function
from xipscope.elf import load_symbols
from xipscope.errors import SymbolError


# --- small ELFs compiled here: DWARF 4 and 5, rv32 and rv64


SOURCES = {
    "a.c": """
static int counter;
static inline int sq(int x) { return x * x + counter; }
static int helper(int x) { counter += x; return sq(x) + 3; }
int table[16] = {1};
int fa(int x) {
    int s = 0;
    for (int i = 0; i < x; i++)
        s += helper(i) * table[i & 15];
    return s;
}
""",
    "sub/b.c": """
static int counter = 5;
static int helper(int x) { return x + counter++; }
extern int fa(int);
int main(void) { return fa(helper(3)) + helper(4); }
""",
}


@pytest.fixture(scope="module")
def small_elves(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("elves")
    for name, text in SOURCES.items():
        (d / name).parent.mkdir(exist_ok=True)
        (d / name).write_text(text)
    out = {}
    for v in (4, 5):
        out[f"rv32-dwarf{v}"] = d / f"t{v}.elf"
        subprocess.run(["riscv64-unknown-elf-gcc", "-march=rv32imac", "-mabi=ilp32", "-O2", f"-gdwarf-{v}",
                        "-nostdlib", "-Wl,-e,main", "-o", str(out[f"rv32-dwarf{v}"]), "a.c", "sub/b.c"],
                       cwd=d, check=True)
    out["rv64"] = d / "t64.elf"
    subprocess.run(["riscv64-unknown-elf-gcc", "-march=rv64imac", "-mabi=lp64", "-O2", "-g", "-nostdlib",
                    "-Wl,-e,main", "-o", str(out["rv64"]), "a.c", "sub/b.c"], cwd=d, check=True)
    out["rv64-obj"] = d / "a64.o"
    subprocess.run(["riscv64-linux-gnu-gcc", "-O2", "-g", "-c", "-o", str(out["rv64-obj"]), "a.c"], cwd=d, check=True)
    return out


@pytest.mark.parametrize("variant", ["rv32-dwarf4", "rv32-dwarf5"])
def test_small_elf_every_address_agrees_with_addr2line(small_elves, variant, tmp_path):
    elf = small_elves[variant]
    index = load_symbols(elf, cache_dir=tmp_path)
    assert (index.arch, index.word_size, index.has_dwarf) == ("riscv32", 4, True)
    lo, hi = int(index._a["seg_start"][0]), int(index._a["seg_end"][-1])
    addresses = list(range(lo - 8, hi + 8, 2))  # every instruction slot, and a little outside the code
    ours = index.symbolize(addresses)
    for i, (address, (funcs, locs)) in enumerate(zip(addresses, addr2line(elf, addresses))):
        func, offset, file, line = ours[i]
        assert same_function(index, func, offset, address, funcs[-1]), (hex(address), ours[i], funcs)
        assert (f"{file}:{line}" if file is not None else "??:0") == locs[0], (hex(address), ours[i], locs)
    assert any(f and f.endswith("/sub/b.c") for f in ours.file)  # a file in a subdirectory of the comp dir


def test_small_elf_duplicate_statics_and_objects(small_elves, tmp_path):
    index = load_symbols(small_elves["rv32-dwarf4"], cache_dir=tmp_path)
    counters = index.symbols_named("counter")
    assert len(counters) == 2 and {s.binding for s in counters} == {"local"} and {s.kind for s in counters} == {"object"}
    with pytest.raises(SymbolError) as e:
        index.address_of("counter")
    assert all(f"{s.address:#x}" in str(e.value) for s in counters)
    assert index.symbols_named("table")[0].size == 64
    assert index.describe(index.address_of("fa")).startswith("fa+0x0 (")
    assert index.describe(0x10) == "0x10"


def test_rv64_elf(small_elves, tmp_path):
    elf = small_elves["rv64"]
    index = load_symbols(elf, cache_dir=tmp_path)
    assert (index.arch, index.word_size, index.little_endian, index.has_dwarf) == ("riscv64", 8, True, True)
    fa = index.address_of("fa")
    ours = index.symbolize([fa, fa + 8])
    for i, (funcs, locs) in enumerate(addr2line(elf, [fa, fa + 8])):
        assert ours.function[i] == funcs[-1] and f"{ours.file[i]}:{ours.line[i]}" == locs[0]


def test_relocatable_object_is_a_clear_error(small_elves, tmp_path):
    # pyelftools can't apply RISC-V relocations to a .o's DWARF; say so rather than report wrong lines.
    with pytest.raises(SymbolError, match="expected a linked ELF"):
        load_symbols(small_elves["rv64-obj"], cache_dir=tmp_path)


# --- what is not an index


@pytest.fixture(scope="module")
def good_elf(small_elves) -> bytes:
    return small_elves["rv32-dwarf4"].read_bytes()


def _bad_inputs(good: bytes) -> dict[str, bytes]:
    bad = {
        "empty": b"",
        "text": b"hello, this is not a symbol file\n",
        "gzip": b"\x1f\x8b\x08\x00" + bytes(100),
        "elf magic only": b"\x7fELF",
        "header cut": good[:40],
        "headers only": good[:64],
        "half": good[:len(good) // 2],
        "last byte missing": good[:-1],
        "bad class": good[:4] + b"\x07" + good[5:],
    }
    # Section header table pointing past the end of the file.
    b = bytearray(good)
    b[0x20:0x24] = (len(good) + 1000).to_bytes(4, "little")
    bad["shoff past end"] = bytes(b)
    # Symbol table section offset pointing past the end.
    elf = ELFFile(__import__("io").BytesIO(good))
    idx = next(i for i, s in enumerate(elf.iter_sections()) if s.name == ".symtab")
    shoff, shentsize = elf["e_shoff"], elf["e_shentsize"]
    b = bytearray(good)
    b[shoff + idx * shentsize + 16:shoff + idx * shentsize + 20] = (len(good) - 8).to_bytes(4, "little")
    bad["symtab past end"] = bytes(b)
    # Garbage over the DWARF line program section.
    line = next(s for s in elf.iter_sections() if s.name == ".debug_line")
    b = bytearray(good)
    b[line["sh_offset"]:line["sh_offset"] + line["sh_size"]] = bytes([0xFF]) * line["sh_size"]
    bad["garbage debug_line"] = bytes(b)
    return bad


def test_corrupt_truncated_and_foreign_files_are_symbol_errors(good_elf, tmp_path):
    for name, data in _bad_inputs(good_elf).items():
        p = tmp_path / name.replace(" ", "_")
        p.write_bytes(data)
        try:
            index = load_symbols(p, cache_dir=tmp_path / "c")
        except SymbolError as e:
            assert str(p) in str(e) and "expected" in str(e), (name, str(e))
            continue
        # Damage confined to the line program may still leave a usable index; it must then answer sanely.
        assert name == "garbage debug_line", f"{name}: loaded without error"
        index.symbolize([0x10094, 0])


def test_random_damage_never_escapes_as_a_traceback(good_elf, tmp_path):
    rng = random.Random(5)
    for i in range(60):
        b = bytearray(good_elf)
        for _ in range(rng.choice([1, 4, 32])):
            pos = rng.randrange(len(b))
            b[pos] = rng.randrange(256)
        p = tmp_path / f"fuzz{i}.elf"
        p.write_bytes(bytes(b))
        try:
            load_symbols(p, cache_dir=tmp_path / "c").symbolize([0x10094])
        except SymbolError:
            pass


def test_stripped_elf_and_missing_file(small_elves, tmp_path):
    stripped = tmp_path / "stripped.elf"
    subprocess.run(["riscv64-linux-gnu-strip", "-o", str(stripped), str(small_elves["rv32-dwarf4"])], check=True)
    with pytest.raises(SymbolError, match=r"without \.symtab"):
        load_symbols(stripped, cache_dir=tmp_path)
    with pytest.raises(SymbolError, match="expected a readable ELF"):
        load_symbols(tmp_path / "nope", cache_dir=tmp_path)


def test_system_map_parsing_and_errors(tmp_path):
    smap = tmp_path / "System.map"
    smap.write_text("80000000 T _start\n80000040 t helper\n80000040 W helper_alias\n80000100 T _etext\n"
                    "80001000 D some_data\n80001010 b static_bss\n80001020 A absolute_thing\n")
    index = load_symbols(smap, cache_dir=tmp_path / "c")
    assert (index.source, index.word_size, index.arch, index.little_endian) == ("system.map", 4, None, None)
    s = index.symbolize([0x80000000, 0x8000003E, 0x80000040, 0x800000FF, 0x80001004])
    assert list(s.function) == ["_start", "_start", "helper_alias", "helper_alias", None]
    assert list(s.offset[:4]) == [0, 0x3E, 0, 0xBF]
    assert index.address_of("static_bss") == 0x80001010
    assert index.symbols_named("some_data")[0].kind == "object"
    bad = tmp_path / "bad.map"
    bad.write_text("80000000 T _start\n80000040 t helper\nthis line is not a symbol\n" + "80000050 t x\n" * 10)
    with pytest.raises(SymbolError, match=r"bad.map:3: expected a System.map line"):
        load_symbols(bad, cache_dir=tmp_path / "c")


def test_cache_entry_damage_is_rebuilt(small_elves, tmp_path):
    elf = small_elves["rv32-dwarf5"]
    first = load_symbols(elf, cache_dir=tmp_path)
    assert not first.from_cache and load_symbols(elf, cache_dir=tmp_path).from_cache
    (meta,) = tmp_path.glob("*.json")
    (npz,) = tmp_path.glob("*.npz")
    expect = list(first.symbolize(range(0x10090, 0x10110, 2)).function)
    for damage in (lambda: npz.write_bytes(npz.read_bytes()[:100]),
                   lambda: meta.write_text("{not json"),
                   lambda: npz.unlink(),
                   lambda: meta.write_text(meta.read_text().replace('"format": ', '"format": 1')),
                   lambda: npz.write_bytes(b"PK\x03\x04" + bytes(200))):
        damage()
        again = load_symbols(elf, cache_dir=tmp_path)
        assert not again.from_cache
        assert list(again.symbolize(range(0x10090, 0x10110, 2)).function) == expect
        assert load_symbols(elf, cache_dir=tmp_path).from_cache
