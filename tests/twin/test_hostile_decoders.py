"""Files that reach third-party decoders (pyelftools for ELF/DWARF, pyarrow for Parquet) crafted to make them hold or
do without end: section headers claiming more than the file has, compressed debug sections that inflate to a gigabyte,
NOBITS debug sections claiming 4 GiB of zeros, line programs of millions of rows, overlapping line programs, LEB128
numbers a megabyte long, header file lists that never end, DWARF types that name themselves, Parquet parts whose row
groups decode to a gigabyte (issue 14: "memory bounded by the request, under 512 MiB for any hostile input").

Each case runs in a child with its address space capped at 1 GiB and a generous timeout (a ceiling for a loaded
machine, not a speed measurement), asserts the project's own one-paragraph error naming the file and what was wrong,
and asserts the child's peak resident memory stayed under 512 MiB (the child reports its own VmHWM at exit).
The ELFs are written here, byte by byte, so each test shows exactly which field lies.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from support.oops_texts import OOPS_61
from test_hostile_files import ADDRESS_SPACE_LIMIT, TIMEOUT, _limit_memory, make_profile, refused

PEAK_LIMIT_KB = 512 << 10           # the bound on memory for any hostile input
GIB = 1 << 30

# Runs `python -m xipscope ...` (or, with -c, a snippet) and writes the process's peak RSS (KiB) where asked, at exit.
# VmHWM, the peak of this process's own memory since exec; not ru_maxrss, which Linux carries across fork and exec,
# so a child of a large pytest process reported the parent's ~600 MB before it had done anything.
_MEASURED = ("import atexit, os, runpy, sys\n"
             "def peak_kb():\n"
             "    for line in open('/proc/self/status'):\n"
             "        if line.startswith('VmHWM:'):\n"
             "            return line.split()[1]\n"
             "atexit.register(lambda: open(os.environ['PEAK_RSS_FILE'], 'w').write(peak_kb()))\n"
             "if sys.argv[1] == '-c':\n"
             "    exec(sys.argv[2])\n"
             "else:\n"
             "    sys.argv[0] = 'xipscope'\n"
             "    runpy.run_module('xipscope', run_name='__main__', alter_sys=True)\n")


@pytest.fixture()
def run(tmp_path):
    """`run(*args)`: xipscope in a child capped at 1 GiB of address space; the result carries `.peak_kb`."""
    env = dict(os.environ, XIPSCOPE_CACHE=str(tmp_path / "cache"), PEAK_RSS_FILE=str(tmp_path / "peak_rss"))
    assert ADDRESS_SPACE_LIMIT == GIB

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-c", _MEASURED, *map(str, args)], capture_output=True, text=True,
                                timeout=TIMEOUT, cwd=tmp_path, env=env, input=stdin, preexec_fn=_limit_memory)
        result.peak_kb = int((tmp_path / "peak_rss").read_text())
        return result
    return run


def bounded(result: subprocess.CompletedProcess, *needles: str) -> str:
    """refused(), and the child's memory stayed under the issue's bound."""
    message = refused(result, *needles)
    assert result.peak_kb < PEAK_LIMIT_KB, f"peak RSS {result.peak_kb} KiB for: {message}"
    return message


# -- ELF writing ------------------------------------------------------------------------------------------------------

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS = 1, 2, 3, 8
SHF_ALLOC, SHF_EXECINSTR, SHF_COMPRESSED = 0x2, 0x4, 0x800
TEXT = 0x10000000


def make_elf(extra: list[dict], *, shentsize: int = 40, shnum: int | None = None, symtab: bytes | None = None,
             strtab: bytes = b"\0main\0") -> bytes:
    """A 32-bit little-endian RISC-V executable: .text (64 bytes at TEXT), .symtab with `main` over it (or `symtab`),
    .strtab, the `extra` sections (dicts: name, type, data, and optionally flags, size (sh_size when it lies), addr),
    .shstrtab."""
    if symtab is None:
        symtab = bytes(16) + struct.pack("<IIIBBH", 1, TEXT, 64, 0x12, 0, 1)     # GLOBAL FUNC main in section 1
    sections = [dict(name=".text", type=SHT_PROGBITS, flags=SHF_ALLOC | SHF_EXECINSTR, addr=TEXT, data=bytes(64)),
                dict(name=".symtab", type=SHT_SYMTAB, data=symtab, link=3, info=1, entsize=16),
                dict(name=".strtab", type=SHT_STRTAB, data=strtab), *extra]
    names = b"\0"
    for s in sections + [dict(name=".shstrtab")]:
        s["name_offset"] = len(names)
        names += s["name"].encode() + b"\0"
    sections.append(dict(name=".shstrtab", type=SHT_STRTAB, data=names, name_offset=names.index(b".shstrtab")))

    body = bytearray(52)
    headers = bytearray(40)                                               # section 0: null
    for s in sections:
        offset = len(body)
        if s["type"] != SHT_NOBITS:
            body += s["data"]
        headers += struct.pack("<10I", s["name_offset"], s["type"], s.get("flags", 0), s.get("addr", 0), offset,
                               s.get("size", len(s["data"])), s.get("link", 0), s.get("info", 0), 1,
                               s.get("entsize", 0))
    shoff = len(body)
    count = len(sections) + 1
    body[:52] = (b"\x7fELF\x01\x01\x01" + bytes(9) +
                 struct.pack("<HHIIIIIHHHHHH", 2, 243, 1, TEXT, 0, shoff, 0, 52, 32, 0, shentsize,
                             count if shnum is None else shnum, count - 1))
    return bytes(body + headers)


def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


ABBREV_CU = bytes([1, 0x11, 0, 0x10, 0x17, 0, 0, 0])     # 1: compile_unit, no children, stmt_list sec_offset


def compile_units(*stmt_lists: int) -> bytes:
    """.debug_info: one DWARF 4 CU per line program offset, each only saying where its line program is."""
    out = b""
    for stmt in stmt_lists:
        body = struct.pack("<HIB", 4, 0, 4) + uleb(1) + struct.pack("<I", stmt)
        out += struct.pack("<I", len(body)) + body
    return out


def line_program(opcodes: bytes, files: bytes = b"a.c\0" + bytes(3) + b"\0", header_length: int | None = None) -> bytes:
    """A DWARF 4 line program: line_base -5, line_range 14, opcode_base 13; `files` is the raw file table."""
    after_length = bytes([1, 1, 1, 0xFB, 14, 13]) + bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1]) + b"\0" + files
    length = len(after_length) if header_length is None else header_length
    unit = struct.pack("<HI", 4, length) + after_length + opcodes
    return struct.pack("<I", len(unit)) + unit


SET_TEXT = bytes([0, 5, 2]) + struct.pack("<I", TEXT)    # DW_LNE_set_address TEXT
END_SEQUENCE = bytes([0, 1, 1])
# Line 3 at TEXT, line 4 at TEXT+8 (special opcode: line +1, address +8), sequence ends at TEXT+16.
GOOD_ROWS = SET_TEXT + bytes([3]) + uleb(2) + bytes([1, (1 + 5) + 14 * 8 + 13, 2]) + uleb(8) + END_SEQUENCE


def dwarf(line: bytes, info: bytes | None = None, **line_section) -> list[dict]:
    """.debug_info (one CU, or `info`), .debug_abbrev, and .debug_line holding `line` (its header fields overridden by
    `line_section`)."""
    return [dict(name=".debug_info", type=SHT_PROGBITS, data=compile_units(0) if info is None else info),
            dict(name=".debug_abbrev", type=SHT_PROGBITS, data=ABBREV_CU),
            dict(dict(name=".debug_line", type=SHT_PROGBITS, data=line), **line_section)]


def rows(count: int) -> bytes:
    """A sequence of `count` rows, one byte each (special opcode 0x20: address +1, line +0)."""
    return line_program(SET_TEXT + b"\x20" * count + END_SEQUENCE)


def compressed(data: bytes, claimed: int | None = None) -> bytes:
    """An SHF_COMPRESSED section's bytes: Elf32_Chdr (zlib, size, alignment), then the zlib stream."""
    return struct.pack("<III", 1, len(data) if claimed is None else claimed, 1) + zlib.compress(data)


@pytest.fixture(scope="module")
def zlib_gigabyte() -> bytes:
    """1 GiB of zeros as a zlib stream of about a megabyte (deflate's ratio tops out near 1:1000)."""
    deflate, chunk = zlib.compressobj(9), bytes(1 << 20)
    return b"".join(deflate.compress(chunk) for _ in range(1024)) + deflate.flush()


def write(tmp_path: Path, data: bytes, name: str = "vmlinux") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def load_via_trap(run, elf: Path) -> subprocess.CompletedProcess:
    """What `xipscope trap --oops - --elf vmlinux` does with a crafted vmlinux (it builds the symbol index)."""
    return run("trap", "--oops", "-", "--elf", elf, stdin=OOPS_61)


# -- the controls: crafted ELFs the checks must not refuse ------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
def test_a_crafted_elf_with_dwarf_reads_back(tmp_path, compress):
    """The ELF the cases below damage: symbols and lines come back, plain or with an SHF_COMPRESSED .debug_line."""
    from xipscope.elf.symbols import load_symbols

    line = line_program(GOOD_ROWS)
    section = dict(data=compressed(line), flags=SHF_COMPRESSED) if compress else {}
    elf = write(tmp_path, make_elf(dwarf(line, **section)))
    index = load_symbols(elf, cache_dir=tmp_path / "cache")
    found = index.symbolize([TEXT + 4, TEXT + 12, TEXT + 16])
    assert (found[0], found[1]) == (("main", 4, "a.c", 3), ("main", 12, "a.c", 4))
    assert found[2][2:] == (None, 0)                      # past the end of the sequence: no line


def test_the_measured_child_reports_its_peak(run, tmp_path):
    """The harness: a child that holds 300 MB reports a peak above it, so the bound below can fail."""
    result = run("-c", "x = bytearray(300_000_000); x[::4096] = b'1' * len(x[::4096])")
    assert result.returncode == 0, result.stderr
    assert result.peak_kb > 300_000_000 // 1024


# -- ELF headers that lie about sizes ---------------------------------------------------------------------------------

def test_symtab_claiming_10_8_entries(run, tmp_path):
    elf = make_elf([])
    shoff = struct.unpack_from("<I", elf, 0x20)[0]
    lie = bytearray(elf)
    struct.pack_into("<I", lie, shoff + 2 * 40 + 20, 16 * 10**8)          # .symtab's sh_size: 10^8 entries
    bounded(load_via_trap(run, write(tmp_path, bytes(lie))),
            "vmlinux", "section .symtab ends at byte", "but the file has")


def symbols(count: int, name_offset: int = 1) -> bytes:
    """A .symtab of `count` GLOBAL FUNC symbols over .text, all named by the string at `name_offset` of .strtab."""
    return bytes(16) + struct.pack("<IIIBBH", name_offset, TEXT, 4, 0x12, 0, 1) * count


def test_symtab_of_more_symbols_than_any_kernel(run, tmp_path):
    """250,001 entries (2M peaked at 1.3 GB building the index)."""
    bounded(load_via_trap(run, write(tmp_path, make_elf([], symtab=symbols(250_000)))),
            "vmlinux", "a .symtab of 250,001 entries, more than the 250,000 allowed")


def test_symbols_all_named_by_one_8_mib_string(run, tmp_path):
    """Each symbol's name is decoded on its own: 200,000 names sharing 8 MiB of .strtab were 1.6 TB."""
    elf = make_elf([], symtab=symbols(200_000), strtab=b"\0" + b"x" * (8 << 20) + b"\0")
    bounded(load_via_trap(run, write(tmp_path, elf)), "vmlinux", "symbol names of more than 16,777,216 bytes in all")


def test_section_headers_of_size_zero_repeated_65535_times(run, tmp_path):
    bounded(load_via_trap(run, write(tmp_path, make_elf([], shentsize=0, shnum=65535))), "vmlinux", "section headers of 0 bytes where this ELF class has 40")


def test_nobits_debug_line_claiming_4_gib(run, tmp_path):
    """pyelftools hands out a NOBITS section's data as that many zero bytes."""
    elf = write(tmp_path, make_elf(dwarf(b"", type=SHT_NOBITS, size=0xFFFFFF00)))
    bounded(load_via_trap(run, elf), "vmlinux", "decode to more than 100,663,296 bytes", "section .debug_line")


def test_compressed_debug_section_claiming_a_gigabyte(run, tmp_path, zlib_gigabyte):
    bomb = struct.pack("<III", 1, GIB, 1) + zlib_gigabyte
    elf = write(tmp_path, make_elf(dwarf(bomb, flags=SHF_COMPRESSED)))
    bounded(load_via_trap(run, elf), "vmlinux", "section .debug_line: 1,073,741,824 bytes")


def test_compressed_with_zstd_is_named(run, tmp_path):
    elf = write(tmp_path, make_elf(dwarf(struct.pack("<III", 2, 100, 1) + bytes(16), flags=SHF_COMPRESSED)))
    bounded(load_via_trap(run, elf), "vmlinux", "section .debug_line compressed with", "objcopy")


@pytest.mark.parametrize("claimed, expected", [
    (1000, "claiming 1,000 bytes inflated but holding more"),           # pyelftools inflates all of it, whatever
    (1 << 40, "claiming 1,099,511,627,776 bytes inflated, more than"),  # the claim alone is refused
])
def test_gnu_zdebug_section_inflating_to_a_gigabyte(run, tmp_path, zlib_gigabyte, claimed, expected):
    sections = dwarf(line_program(GOOD_ROWS))
    sections[2] = dict(name=".zdebug_line", type=SHT_PROGBITS, data=b"ZLIB" + struct.pack(">Q", claimed) + zlib_gigabyte)
    bounded(load_via_trap(run, write(tmp_path, make_elf(sections))), "vmlinux", ".zdebug_line", expected)


# -- line programs ----------------------------------------------------------------------------------------------------

def test_one_line_program_of_five_million_rows(run, tmp_path):
    elf = write(tmp_path, make_elf(dwarf(rows(5 << 20))))
    bounded(load_via_trap(run, elf), "vmlinux", "a line program at .debug_line offset 0x0 of", "more than the 4,194,304")


def test_line_programs_of_six_million_rows_in_all(run, tmp_path):
    """Two programs, each within the per-program bound, 6M rows together (Python lists held them at ~90 bytes a row)."""
    one = rows(3 << 20)
    elf = write(tmp_path, make_elf(dwarf(one + one, info=compile_units(0, len(one)))))
    bounded(load_via_trap(run, elf), "vmlinux", "line programs with more than 4,000,000 rows")


def test_line_programs_that_overlap(run, tmp_path):
    """A second CU points into the middle of the first's line program, at a header that runs to the section's end:
    a thousand such CUs would decode the section a thousand times."""
    inner = rows(1 << 16)
    outer_opcodes = SET_TEXT + b"\x20" * 100 + END_SEQUENCE
    outer = line_program(outer_opcodes + inner)
    inner_at = len(outer) - len(inner)
    elf = write(tmp_path, make_elf(dwarf(outer, info=compile_units(inner_at, 0))))
    bounded(load_via_trap(run, elf), "vmlinux", "line programs that overlap", "offset 0x0")


def test_leb128_a_megabyte_long_in_a_line_program(run, tmp_path):
    """DW_LNS_advance_line whose operand is a million continuation bytes: shifting a growing int per byte was hours."""
    program = line_program(SET_TEXT + bytes([3]) + b"\x80" * (1 << 20) + b"\x01" + END_SEQUENCE)
    bounded(load_via_trap(run, write(tmp_path, make_elf(dwarf(program)))), "vmlinux", "a LEB128 value longer than 16")


def test_leb128_run_in_a_header_parsed_by_pyelftools(run, tmp_path):
    files = b"a.c\0" + b"\x80" * (200 << 10) + b"\x00" + bytes(2) + b"\0"
    program = line_program(GOOD_ROWS, files=files)
    bounded(load_via_trap(run, write(tmp_path, make_elf(dwarf(program)))), "vmlinux", "DWARFError",
            "a LEB128 value longer than 16 bytes")


def test_header_whose_file_list_never_ends(run, tmp_path):
    """header_length says 40 bytes, the file table runs on for 8 MiB (pyelftools made an object per entry)."""
    files = b"a.c\0\0\0\0" * ((8 << 20) // 7) + b"\0"
    program = line_program(GOOD_ROWS, files=files, header_length=40)
    bounded(load_via_trap(run, write(tmp_path, make_elf(dwarf(program)))), "vmlinux", "a damaged ELF")


def test_header_length_past_the_bound(run, tmp_path):
    program = line_program(GOOD_ROWS, header_length=1 << 30)
    bounded(load_via_trap(run, write(tmp_path, make_elf(dwarf(program)))), "vmlinux",
            "a line program header at .debug_line offset 0x0 of 1,073,741,824 bytes")


# -- DWARF types (struct_layout, read by dmesg for the printk ring) ----------------------------------------------------

def struct_with_a_self_naming_typedef() -> list[dict]:
    """A CU over main holding `struct s { t m; }` where typedef t's type is t itself."""
    abbrev = bytes([1, 0x11, 1, 0x11, 0x01, 0x12, 0x06, 0, 0,            # compile_unit: low_pc addr, high_pc data4
                    2, 0x13, 1, 0x03, 0x08, 0x0B, 0x0B, 0, 0,            # structure_type: name, byte_size
                    3, 0x0D, 0, 0x03, 0x08, 0x49, 0x13, 0x38, 0x0B, 0, 0,  # member: name, type ref4, location
                    4, 0x16, 0, 0x03, 0x08, 0x49, 0x13, 0, 0, 0])          # typedef: name, type ref4
    typedef_at = 33
    dies = (bytes([1]) + struct.pack("<II", TEXT, 64) +
            bytes([2]) + b"s\0" + bytes([4]) +
            bytes([3]) + b"m\0" + struct.pack("<I", typedef_at) + bytes([0]) + bytes([0]) +
            bytes([4]) + b"t\0" + struct.pack("<I", typedef_at) + bytes([0]))
    body = struct.pack("<HIB", 4, 0, 4) + dies
    assert body.index(bytes([4]) + b"t\0") + 4 == typedef_at
    return [dict(name=".debug_info", type=SHT_PROGBITS, data=struct.pack("<I", len(body)) + body),
            dict(name=".debug_abbrev", type=SHT_PROGBITS, data=abbrev)]


def test_typedef_that_names_itself(run, tmp_path):
    elf = write(tmp_path, make_elf(struct_with_a_self_naming_typedef()))
    result = run("-c", "from xipscope.elf.struct_layout import read_unit\n"
                       "from xipscope.errors import SymbolError\n"
                       f"try:\n    read_unit({str(elf)!r}, 'main', {{'s'}})\n"
                       "except SymbolError as e:\n    print(e)\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "vmlinux: cannot read DWARF" in result.stdout and "at offset 0x21 that names itself" in result.stdout, \
        result.stdout
    assert result.peak_kb < PEAK_LIMIT_KB


# -- profile sample parts (Parquet, read with pyarrow) ----------------------------------------------------------------

def zero_samples_part(path: Path, row_groups: int, rows_per_group: int = 1 << 20) -> Path:
    """A sample part of zeros in zstd: 32 MB of rows per row group in about a kilobyte, its footer honest."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xipscope.profile.store import _schema

    schema = _schema()
    zeros = pa.array(np.zeros(rows_per_group, dtype=np.int64))
    columns = [zeros if field.name in ("t_ns", "pc", "halted_ns") else pa.nulls(rows_per_group, field.type)
               for field in schema]
    group = pa.table(columns, schema=schema)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for _ in range(row_groups):
            writer.write_table(group)
    return path


def test_sample_part_that_decodes_to_a_gigabyte(run, tmp_path):
    profile = make_profile(tmp_path / "prof")
    part = zero_samples_part(profile / "samples" / "part-000001.parquet", row_groups=32)
    assert part.stat().st_size < 4 << 20                   # 32M samples, 1.8 GB decoded, in a few hundred KB
    bounded(run("report", profile), "part-000001.parquet", "33,554,432 samples", "may decode to")


def test_sample_part_within_its_bound_reads(tmp_path):
    """The control: a part of a million samples as a sampler writes them (host times that jitter, a few hot PCs, the
    halt's length varying) decodes to 56 MB, ~10x its size, and reads back whole."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xipscope.profile.store import _schema, read_samples

    rng, n = np.random.default_rng(14), 1 << 20
    profile = make_profile(tmp_path / "prof")
    t_ns = np.cumsum(rng.integers(300_000, 400_000, n))
    pc = 0x10000000 + 4 * rng.integers(0, 300, n)
    halted = rng.integers(4_000, 9_000, n)
    schema = _schema()
    columns = [pa.array(t_ns), pa.array(pc), pa.array(halted)] + [pa.nulls(n, f.type) for f in list(schema)[3:]]
    pq.write_table(pa.table(columns, schema=schema), profile / "samples" / "part-000001.parquet")
    samples = read_samples(profile)
    assert len(samples) == 20 + n
    assert int(samples["pc"].iloc[-1]) == int(pc[-1]) and int(samples["t_ns"].iloc[-1]) == int(t_ns[-1])


def stacks_part(path: Path, rows: int, depth: int, **options) -> Path:
    """A sample part whose every sample has a stack `depth` return addresses deep, in zstd."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xipscope.profile.store import _schema

    schema = _schema()
    columns = {field.name: pa.array(range(rows), field.type) for field in schema if field.name != "stack"}
    columns["stack"] = pa.array([[0x10000100 + 4 * (i % 7)] * depth for i in range(rows)], schema.field("stack").type)
    pq.write_table(pa.table(columns, schema=schema), path, compression="zstd", **options)
    return path


def test_sample_part_with_a_stack_deeper_than_xipscope_unwinds(run, tmp_path):
    """One sample whose stack is 256 Ki frames: the report's call tree recursed as deep (a RecursionError
    traceback). The sampler unwinds at most MAX_FRAMES, so a deeper stack is refused on reading, by name."""
    profile = make_profile(tmp_path / "prof")
    stacks_part(profile / "samples" / "part-000001.parquet", rows=1, depth=256 << 10)
    bounded(run("report", profile), "part-000001.parquet: not a readable sample part (a stack of 262,144 frames",
            "at most 64")


def test_sample_part_whose_page_header_overstates_its_page(run, tmp_path):
    """A page header is not in the footer the reader checks first: here one claims 134 MB for a 4 MB page (8,192
    samples with 64-frame stacks, in zstd). pyarrow reserves the claimed size and decompresses what the page holds;
    the mismatch is an error, and the memory touched is the page's, not the claim's (peak RSS within 32 MiB of
    reading the honest part), so a claim of 2 GiB, the most its int32 holds, costs no more. The control: the same
    bytes with the page's true size read back whole."""
    import pyarrow.parquet as pq

    from xipscope.profile.store import _schema

    profile = make_profile(tmp_path / "prof")
    part = stacks_part(profile / "samples" / "part-000001.parquet", rows=8192, depth=64, use_dictionary=False,
                       write_statistics=False, data_page_size=16 << 20)
    data = part.read_bytes()
    at = pq.ParquetFile(part).metadata.row_group(0).column(_schema().names.index("stack")).data_page_offset
    # The page header (Thrift compact): field 1 `type` (0x15, 0x00: a data page), field 2 `uncompressed_page_size`
    # (0x15, then a zigzag varint): rewritten in the varint's own 4 bytes, so nothing after it moves.
    assert data[at:at + 3] == b"\x15\x00\x15"
    varint = data[at + 3:at + 7]
    assert [b & 0x80 for b in varint] == [0x80, 0x80, 0x80, 0], "the page's size takes a 4-byte varint"
    true_size = sum((b & 0x7F) << 7 * k for k, b in enumerate(varint)) >> 1
    assert 4 << 20 <= true_size < 5 << 20

    def with_size(size: int) -> bytes:
        zigzag = size << 1
        return data[:at + 3] + bytes((zigzag >> 7 * k) & 0x7F | (0x80 if k < 3 else 0) for k in range(4)) \
            + data[at + 7:]

    part.write_bytes(with_size(true_size))
    honest = run("report", profile)
    assert honest.returncode == 0, honest.stderr[-2000:]
    part.write_bytes(with_size(134_000_000))
    lying = run("report", profile)
    assert "move it aside" in bounded(lying, "part-000001.parquet: not a readable sample part")
    assert lying.peak_kb < honest.peak_kb + (32 << 10), (lying.peak_kb, honest.peak_kb)


def test_sample_part_with_a_150_mib_footer(run, tmp_path):
    profile = make_profile(tmp_path / "prof")
    part = profile / "samples" / "part-000001.parquet"
    with open(part, "wb") as f:
        f.write(b"PAR1")
        f.truncate(160 << 20)                                 # sparse: the footer is 150 MiB of zeros
        f.seek(0, 2)
        f.write(struct.pack("<I", 150 << 20) + b"PAR1")
    bounded(run("report", profile), "part-000001.parquet", "a Parquet footer of 157,286,400 bytes")


def test_sample_part_that_is_not_parquet(run, tmp_path):
    profile = make_profile(tmp_path / "prof")
    (profile / "samples" / "part-000001.parquet").write_bytes(b"t_ns,pc\n" + b"1" * (1 << 20))
    bounded(run("report", profile), "part-000001.parquet: not a readable sample part (not Parquet")


def test_a_million_empty_compilation_units(run, tmp_path):
    """11 bytes each, all naming one line program: pyelftools keeps an object per unit (8 MiB of them took 80 s)."""
    info = compile_units(0) * (1 << 20)
    elf = write(tmp_path, make_elf(dwarf(line_program(GOOD_ROWS), info=info)))
    bounded(load_via_trap(run, elf), "vmlinux", "more than 20,000 compilation units")


def test_abbreviation_table_searched_for_a_code_it_lacks(run, tmp_path):
    """Every unit names abbreviation 200000 of a table holding 100,000 others: each unit scanned all of it (hours for
    20,000 units and a 10 MB table); now the first 10,000 at most."""
    table = b"".join(uleb(code) + bytes([0x11, 0, 0x10, 0x17, 0, 0]) for code in range(1, 100_001)) + b"\0"
    unit = struct.pack("<HIB", 4, 0, 4) + uleb(200_000) + struct.pack("<I", 0)
    sections = dwarf(line_program(GOOD_ROWS), info=(struct.pack("<I", len(unit)) + unit) * 1000)
    sections[1]["data"] = table
    bounded(load_via_trap(run, write(tmp_path, make_elf(sections))), "vmlinux",
            "has no abbreviation 200000 among the first 10,000")


def test_twin_firmware_whose_code_inflates_to_a_gigabyte(run, tmp_path, zlib_gigabyte):
    """The twin loads every executable section: a compressed .text claiming 1 GiB was inflated whole."""
    elf = bytearray(make_elf([dict(name=".text.big", type=SHT_PROGBITS, flags=SHF_ALLOC | SHF_EXECINSTR | SHF_COMPRESSED,
                                   addr=TEXT + 0x1000, data=struct.pack("<III", 1, GIB, 1) + zlib_gigabyte)]))
    bounded(run("sim", write(tmp_path, bytes(elf), "fw.elf"), "--run"), "fw.elf", "section .text.big: 1,073,741,824")


COMPILE_UNIT_ABBREV = bytes([1, 0x11, 1, 0x11, 0x01, 0x12, 0x06, 0, 0])   # compile_unit: low_pc addr, high_pc data4


def read_unit_of(run, tmp_path: Path, abbrev: bytes, dies: bytes, *needles: str) -> None:
    """dmesg's struct reading (read_unit, through pyelftools) on one unit (a compile_unit DIE covering `main`, then
    `dies`) with the abbreviation table `abbrev`, in the measured child: a SymbolError holding every needle, in
    bounded memory."""
    body = struct.pack("<HIB", 4, 0, 4) + bytes([1]) + struct.pack("<II", TEXT, 64) + dies + b"\0"
    elf = write(tmp_path, make_elf([dict(name=".debug_info", type=SHT_PROGBITS, data=struct.pack("<I", len(body)) + body),
                                    dict(name=".debug_abbrev", type=SHT_PROGBITS, data=abbrev)]))
    result = run("-c", "from xipscope.elf.struct_layout import read_unit\n"
                       "from xipscope.errors import SymbolError\n"
                       f"try:\n    read_unit({str(elf)!r}, 'main', {{'s'}})\n"
                       "except SymbolError as e:\n    print(e)\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert all(needle in result.stdout for needle in ("vmlinux: cannot read DWARF", *needles)), result.stdout
    assert result.peak_kb < PEAK_LIMIT_KB


def test_compilation_unit_whose_abbreviation_table_holds_a_million_entries(run, tmp_path):
    """pyelftools parses a unit's whole abbreviation table before its first DIE, an object per entry: here a small
    unit whose table holds 1,000,000 more after the one it uses (6 MB; 15 s and 500 MB before the table was walked
    to its end first, within 10,000 entries)."""
    abbrev = COMPILE_UNIT_ABBREV + b"".join(uleb(code) + bytes([0x34, 0, 0, 0]) for code in range(2, 1_000_002))
    read_unit_of(run, tmp_path, abbrev + b"\0", b"", "more than 10,000 abbreviations")


def test_compilation_unit_of_four_million_one_byte_dies(run, tmp_path):
    """dmesg reads the unit defining prb_read_valid through pyelftools, an object per DIE: 4 MiB of one-byte DIEs."""
    abbrev = COMPILE_UNIT_ABBREV + bytes([2, 0x34, 0, 0, 0])     # variable: no attributes
    read_unit_of(run, tmp_path, abbrev + b"\0", b"\x02" * (4 << 20), "more than the 524,288 read")
