"""Decode DWARF `.debug_line` programs (versions 2-5) into sorted address -> (file, line) arrays.

pyelftools parses the CU and line-program headers for us (the fiddly, version-dependent part), but its row decoder
builds a Python object per opcode and takes minutes on a vmlinux (pyelftools issues 83 and 465). The rows themselves
are decoded here by one tight loop over the section bytes, which is what keeps a cold kernel index within seconds.
"""

from __future__ import annotations

import io
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Standard opcodes (DWARF 5, 6.2.5.2) and the extended ones we act on.
_COPY, _ADVANCE_PC, _ADVANCE_LINE, _SET_FILE, _SET_COLUMN = 1, 2, 3, 4, 5
_NEGATE_STMT, _SET_BASIC_BLOCK, _CONST_ADD_PC, _FIXED_ADVANCE_PC = 6, 7, 8, 9
_SET_PROLOGUE_END, _SET_EPILOGUE_BEGIN, _SET_ISA = 10, 11, 12
_LNE_END_SEQUENCE, _LNE_SET_ADDRESS = 1, 2

# Bounds on what a hostile .debug_line can make us hold or do. The RP2350 vmlinux with DWARF has 517 line programs,
# the largest header 5 KB, the largest program 83 KB, 500k rows in all; these allow 50x to 8x that.
MAX_LINE_HEADER_BYTES = 256 << 10
MAX_LINE_PROGRAM_BYTES = 4 << 20
MAX_LINE_ROWS = 4_000_000
MAX_COMPILE_UNITS = 20_000      # it has 517 (pyelftools keeps an object per unit; 8 MiB of empty units took 80 s)
MAX_ABBREVS_SCANNED = 10_000    # abbreviations read to find a unit's first; a kernel unit's table has a few hundred
MAX_ATTRIBUTES = 256            # attributes of one abbreviation: a compile_unit DIE has about ten
_MAX_LEB128_BITS = 7 * 16       # as elf_reader.MAX_LEB128_BYTES


class LineTableError(ValueError):
    """A line program outside the bounds above, or a LEB128 longer than any producer writes."""


@dataclass
class LineTable:
    """Rows sorted by address. `file == -1` marks an end of sequence: addresses from there up to the next row have no line."""

    address: "np.ndarray"  # uint64
    file: "np.ndarray"  # int32, index into `files`, -1 = no line here
    line: "np.ndarray"  # int32
    files: list[str]


def _decode_str(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or (len(path) > 2 and path[1] == ":" and path[2] in "/\\")


def render_file_names(header, version: int, comp_dir: str | None) -> list[str | None]:
    """The CU's file table as addr2line (binutils dwarf2.c `concat_filename`) prints it, indexed by DWARF file number.

    Before DWARF 5 file 0 and directory 0 mean "unknown" / "the compilation directory"; from 5 on both tables are
    used from index 0. A relative directory is prefixed with the compilation directory, as binutils does.
    """
    dirs = [_decode_str(d) for d in header["include_directory"]]
    entries = header["file_entry"]
    names: list[str | None] = [None] if version < 5 else []
    for entry in entries:
        name = _decode_str(entry["name"])
        if _is_absolute(name):
            names.append(name)
            continue
        dir_index = entry["dir_index"] if version >= 5 else entry["dir_index"] - 1
        subdir = dirs[dir_index] if 0 <= dir_index < len(dirs) else None
        dir_name = comp_dir if (subdir is None or not _is_absolute(subdir)) else None
        if dir_name is None:
            dir_name, subdir = subdir, None
        if dir_name is None:
            names.append(name)
        elif subdir is not None:
            names.append(f"{dir_name}/{subdir}/{name}")
        else:
            names.append(f"{dir_name}/{name}")
    return names


def decode_rows(data: bytes, start: int, end: int, header, byteorder: str,
                rows_addr: array, rows_file: array, rows_line: array, seq_bounds: list) -> None:
    """Run one line program, appending its rows with the CU's raw file numbers.

    Each finished sequence is recorded as (first row index, end row index) in `seq_bounds`; its end-of-sequence row
    carries file -1. Only what addr2line reports is tracked (address, file, line): columns, is_stmt, views and
    discriminators don't change which line binutils prints.
    """
    opcode_base = header["opcode_base"]
    line_base = header["line_base"]
    line_range = header["line_range"]
    min_len = header["minimum_instruction_length"]
    default_line = 1
    std_lengths = list(header["standard_opcode_lengths"])
    # Special opcodes dominate every real program: precompute both advances per opcode.
    addr_adv = [0] * 256
    line_adv = [0] * 256
    for op in range(opcode_base, 256):
        adj = op - opcode_base
        addr_adv[op] = (adj // line_range) * min_len
        line_adv[op] = line_base + adj % line_range
    const_add = ((255 - opcode_base) // line_range) * min_len

    A, F, L = rows_addr.append, rows_file.append, rows_line.append
    address, file, line = 0, 1, default_line
    seq_first = len(rows_addr)
    pos = start
    while pos < end:
        op = data[pos]
        pos += 1
        if op >= opcode_base:
            address += addr_adv[op]
            line += line_adv[op]
            A(address)
            F(file)
            L(line)
        elif op == _ADVANCE_LINE:
            value, pos = _sleb(data, pos)
            line += value
        elif op == _COPY:
            A(address)
            F(file)
            L(line)
        elif op == _ADVANCE_PC or op == _SET_FILE or op == _SET_COLUMN or op == _SET_ISA:
            value, pos = _uleb(data, pos)
            if op == _ADVANCE_PC:
                address += value * min_len
            elif op == _SET_FILE:
                file = value
        elif op == _CONST_ADD_PC:
            address += const_add
        elif op == 0:
            length, pos = _uleb(data, pos)
            if length == 0:
                continue
            sub = data[pos]
            if sub == _LNE_END_SEQUENCE:
                A(address)
                F(-1)
                L(0)
                seq_bounds.append((seq_first, len(rows_addr)))
                seq_first = len(rows_addr)
                address, file, line = 0, 1, default_line
            elif sub == _LNE_SET_ADDRESS:
                address = int.from_bytes(data[pos + 1:pos + length], byteorder)
            # define_file (DWARF <= 4, unused by GCC since 2000), set_discriminator and vendor opcodes carry nothing we keep.
            pos += length
        elif op == _FIXED_ADVANCE_PC:
            address += int.from_bytes(data[pos:pos + 2], byteorder)
            pos += 2
        elif op in (_NEGATE_STMT, _SET_BASIC_BLOCK, _SET_PROLOGUE_END, _SET_EPILOGUE_BEGIN):
            pass
        else:
            # An opcode from a newer standard: the header says how many ULEB operands to skip.
            for _ in range(std_lengths[op - 1] if op - 1 < len(std_lengths) else 0):
                while data[pos] & 0x80:
                    pos += 1
                pos += 1


def build_line_table(dwarfinfo, little_endian: bool) -> LineTable:
    """Every CU's line program, flattened: overlapping sequences (code from discarded sections, relocated to 0) dropped."""
    import numpy as np

    line_sec = dwarfinfo.debug_line_sec
    if line_sec is None:
        return LineTable(np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0, np.int32), [])
    data = line_sec.stream.getvalue() if hasattr(line_sec.stream, "getvalue") else _read_all(line_sec.stream)

    files: list[str] = []
    file_index: dict[str, int] = {}
    # Typed arrays, 16 bytes a row (Python lists of ints took ~90); an address or line that doesn't fit is an error.
    rows_addr = array("Q")
    rows_file = array("i")  # global file id, or -1 at an end of sequence
    rows_line = array("i")
    decoded = 0
    seq_bounds: list[tuple[int, int]] = []
    seen_offsets: set[int] = set()
    byteorder = "little" if little_endian else "big"

    sections = _RawSections(dwarfinfo)
    for count, cu in enumerate(dwarfinfo.iter_CUs()):
        if count >= MAX_COMPILE_UNITS:
            raise LineTableError(f"a .debug_info of more than {MAX_COMPILE_UNITS:,} compilation units")
        try:
            stmt, comp_dir = _top_die_fast(cu, sections)
        except _Unsupported:
            check_abbreviation_table(sections.abbrev, cu["debug_abbrev_offset"])
            stmt, comp_dir = _top_die_slow(cu)
        if stmt is None or stmt in seen_offsets:
            continue
        seen_offsets.add(stmt)
        # pyelftools parses the header from a copy of just its bytes: a header whose file list never ends would
        # otherwise be parsed (a Python object per entry) to the end of the section.
        dwarfinfo.debug_line_sec = line_sec._replace(stream=_Window(data, stmt, _header_end(data, stmt, byteorder)))
        program = _line_program_at(dwarfinfo, cu, stmt)
        header = program.header
        start, end = program.program_start_offset, min(program.program_end_offset, len(data))
        decoded += end - start
        if end - start > MAX_LINE_PROGRAM_BYTES:
            raise LineTableError(f"a line program at .debug_line offset {stmt:#x} of {end - start:,} bytes, more "
                                 f"than the {MAX_LINE_PROGRAM_BYTES:,} allowed")
        if decoded > len(data):     # programs that overlap: each decoded again would cost time without end
            raise LineTableError(f"line programs that overlap (the one at .debug_line offset {stmt:#x} brings "
                                 f"them to {decoded:,} bytes in a section of {len(data):,})")
        dwarfinfo._linetable_cache.pop(stmt, None)     # the header's objects are done with; don't hoard them
        version = header["version"]
        names = render_file_names(header, version, comp_dir)
        ids = []
        for name in names:
            if name is None:
                name = "??"
            gid = file_index.get(name)
            if gid is None:
                gid = file_index[name] = len(files)
                files.append(name)
            ids.append(gid)
        first_row = len(rows_addr)
        decode_rows(data, start, end, header, byteorder, rows_addr, rows_file, rows_line, seq_bounds)
        if len(rows_addr) > MAX_LINE_ROWS:
            raise LineTableError(f"line programs with more than {MAX_LINE_ROWS:,} rows")
        # Map this CU's raw file numbers to global ids in one numpy step; out-of-range numbers become "??".
        if len(rows_addr) > first_row:
            raw = np.frombuffer(rows_file, dtype=np.int32)[first_row:].astype(np.int64)
            lut = np.asarray(ids + [_unknown_id(files, file_index)], dtype=np.int32)
            mapped = np.where(raw < 0, -1, lut[np.clip(raw, 0, len(ids))]).astype(np.int32)
            if version < 5:
                # File 0 is "unknown" before DWARF 5: binutils prints ?? for it.
                mapped = np.where(raw == 0, _unknown_id(files, file_index), mapped).astype(np.int32)
            np.frombuffer(rows_file, dtype=np.int32)[first_row:] = mapped

    return _flatten(np.frombuffer(rows_addr, dtype=np.uint64), np.frombuffer(rows_file, dtype=np.int32),
                    np.frombuffer(rows_line, dtype=np.int32), seq_bounds, files)


class _Window(io.BytesIO):
    """data[start:end] read as if it were the whole of `data` (offsets as in the section), ending at `end`."""

    def __init__(self, data: bytes, start: int, end: int):
        super().__init__(data[start:end])
        self.start = start

    def seek(self, pos: int, whence: int = 0) -> int:
        return super().seek(pos - self.start if whence == 0 else pos, whence) + self.start

    def tell(self) -> int:
        return super().tell() + self.start


def _header_end(data: bytes, offset: int, byteorder: str) -> int:
    """Where the line program header at `offset` ends, by its header_length; LineTableError past the bounds."""
    unit_length = int.from_bytes(data[offset:offset + 4], byteorder)
    offset_size, pos = (8, offset + 12) if unit_length == 0xFFFFFFFF else (4, offset + 4)
    version = int.from_bytes(data[pos:pos + 2], byteorder)
    pos += 2 + (2 if version >= 5 else 0)     # DWARF 5 adds address_size and segment_selector_size
    header_length = int.from_bytes(data[pos:pos + offset_size], byteorder)
    end = pos + offset_size + header_length
    if pos + offset_size > len(data) or header_length > MAX_LINE_HEADER_BYTES or end > len(data):
        raise LineTableError(f"a line program header at .debug_line offset {offset:#x} of {header_length:,} bytes "
                             f"(at most {MAX_LINE_HEADER_BYTES:,}, inside the section's {len(data):,})")
    return end


def _line_program_at(dwarfinfo, cu, offset: int):
    # The private parser takes the offset we already have; line_program_for_CU would re-parse the top DIE for it.
    parse = getattr(dwarfinfo, "_parse_line_program_at_offset", None)
    if parse is not None:
        return parse(offset, cu.structs)
    return dwarfinfo.line_program_for_CU(cu)


class _Unsupported(Exception):
    """The fast top-DIE reader met a form it doesn't decode; pyelftools takes over for that CU."""


def section_bytes(sec) -> bytes:
    """The bytes of a pyelftools DWARF section (b"" for None)."""
    if sec is None:
        return b""
    stream = sec.stream
    return stream.getvalue() if hasattr(stream, "getvalue") else _read_all(stream)


class _RawSections:
    def __init__(self, dwarfinfo):
        self.info = section_bytes(dwarfinfo.debug_info_sec)
        self.abbrev = section_bytes(dwarfinfo.debug_abbrev_sec)
        self.str = section_bytes(dwarfinfo.debug_str_sec)
        self.line_str = section_bytes(getattr(dwarfinfo, "debug_line_str_sec", None))


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos
        if shift > _MAX_LEB128_BITS:   # a run of 0x80 bytes: each further one would cost more than the last
            raise LineTableError(f"a LEB128 value longer than {_MAX_LEB128_BITS // 7} bytes at offset {pos}")


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    value, end = _uleb(data, pos)
    bits = 7 * (end - pos)
    if data[end - 1] & 0x40:
        value -= 1 << bits
    return value, end


def _cstr(data: bytes, pos: int) -> str:
    end = data.index(b"\0", pos)
    return data[pos:end].decode("utf-8", "replace")


_AT_STMT_LIST, _AT_COMP_DIR = 0x10, 0x1B
# Fixed-size forms: (form, size or "offset"/"address") for skipping attributes we don't need.
_FIXED = {0x0B: 1, 0x11: 1, 0x0C: 1, 0x05: 2, 0x12: 2, 0x06: 4, 0x13: 4, 0x1C: 4, 0x07: 8, 0x14: 8, 0x20: 8,
          0x24: 8, 0x1E: 16, 0x19: 0, 0x21: 0, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4}
_OFFSET_FORMS = frozenset({0x0E, 0x17, 0x1D, 0x1F, 0x1F20, 0x1F21})
_ULEB_FORMS = frozenset({0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02})


def _abbreviation(abbrev: bytes, a: int) -> tuple[int, list[tuple[int, int]], int]:
    """The abbreviation at offset `a` of .debug_abbrev: (code, its (attribute, form) pairs, the next one's offset);
    code 0 ends a table. LineTableError past MAX_ATTRIBUTES or the section's end."""
    try:
        c, a = _uleb(abbrev, a)
        if c == 0:
            return 0, [], a
        _tag, a = _uleb(abbrev, a)
        a += 1  # has_children
        specs = []
        while True:
            name, a = _uleb(abbrev, a)
            form, a = _uleb(abbrev, a)
            if form == 0x21:  # implicit_const carries its value in the abbreviation
                _, a = _uleb(abbrev, a)
            if name == 0 and form == 0:
                return c, specs, a
            specs.append((name, form))
            if len(specs) > MAX_ATTRIBUTES:
                raise LineTableError(f"an abbreviation at .debug_abbrev offset {a:#x} with more than "
                                     f"{MAX_ATTRIBUTES} attributes")
    except IndexError:
        raise LineTableError(f"an abbreviation table that runs past the end of .debug_abbrev "
                             f"({len(abbrev):,} bytes)") from None


def check_abbreviation_table(abbrev: bytes, offset: int) -> None:
    """LineTableError unless the abbreviation table at `offset` ends (code 0) within MAX_ABBREVS_SCANNED entries:
    pyelftools parses a unit's whole table, an object per entry, before it reads the unit's first DIE (a million
    entries took 15 s and 500 MB), so a unit goes to it only once its table is walked here."""
    at = offset
    for _ in range(MAX_ABBREVS_SCANNED):
        code, _specs, at = _abbreviation(abbrev, at)
        if code == 0:
            return
    raise LineTableError(f"an abbreviation table at .debug_abbrev offset {offset:#x} of more than "
                         f"{MAX_ABBREVS_SCANNED:,} abbreviations (a kernel unit's has a few hundred)")


def _top_die_fast(cu, sec: _RawSections) -> tuple[int | None, str | None]:
    """DW_AT_stmt_list and DW_AT_comp_dir of the CU's first DIE, read straight from the bytes.

    pyelftools would parse the CU's whole abbreviation table (hundreds of entries per kernel CU) to read this one
    DIE; that was two thirds of a cold kernel index build.
    """
    info, abbrev = sec.info, sec.abbrev
    offset_size = 8 if cu.structs.dwarf_format == 64 else 4
    address_size = cu["address_size"]
    order = "little" if cu.structs.little_endian else "big"
    pos = cu.cu_die_offset
    code, pos = _uleb(info, pos)
    a = cu["debug_abbrev_offset"]
    for _ in range(MAX_ABBREVS_SCANNED):
        c, specs, a = _abbreviation(abbrev, a)
        if c == 0:
            raise _Unsupported("abbreviation not found")
        if c == code:
            break
    else:
        raise LineTableError(f"the compilation unit at .debug_info offset {cu.cu_offset:#x} has no abbreviation "
                             f"{code} among the first {MAX_ABBREVS_SCANNED:,} of its table")
    stmt = comp_dir = None
    for name, form in specs:
        if form == 0x16:  # indirect
            form, pos = _uleb(info, pos)
        if name == _AT_STMT_LIST:
            if form in (0x17, 0x06):
                stmt = int.from_bytes(info[pos:pos + (offset_size if form == 0x17 else 4)], order)
            elif form == 0x07:
                stmt = int.from_bytes(info[pos:pos + 8], order)
            else:
                raise _Unsupported(f"stmt_list form {form:#x}")
        elif name == _AT_COMP_DIR:
            if form == 0x08:
                comp_dir = _cstr(info, pos)
            elif form == 0x0E:
                comp_dir = _cstr(sec.str, int.from_bytes(info[pos:pos + offset_size], order))
            elif form == 0x1F:
                comp_dir = _cstr(sec.line_str, int.from_bytes(info[pos:pos + offset_size], order))
            else:
                raise _Unsupported(f"comp_dir form {form:#x}")
        if stmt is not None and comp_dir is not None:
            break
        # Skip this attribute's value.
        if form in _FIXED:
            pos += _FIXED[form]
        elif form in _OFFSET_FORMS:
            pos += offset_size
        elif form == 0x01:
            pos += address_size
        elif form == 0x10:
            pos += offset_size if cu["version"] >= 3 else address_size
        elif form == 0x08:
            pos = info.index(b"\0", pos) + 1
        elif form in _ULEB_FORMS or form == 0x0D:
            _, pos = _uleb(info, pos)
        elif form in (0x09, 0x18):
            n, pos = _uleb(info, pos)
            pos += n
        elif form in (0x0A, 0x03, 0x04):
            width = {0x0A: 1, 0x03: 2, 0x04: 4}[form]
            pos += width + int.from_bytes(info[pos:pos + width], order)
        else:
            raise _Unsupported(f"form {form:#x}")
    return stmt, comp_dir


def _top_die_slow(cu) -> tuple[int | None, str | None]:
    top = cu.get_top_DIE()
    stmt = top.attributes.get("DW_AT_stmt_list")
    comp_dir = top.attributes.get("DW_AT_comp_dir")
    return (stmt.value if stmt is not None else None, _decode_str(comp_dir.value) if comp_dir is not None else None)


def _unknown_id(files: list[str], file_index: dict[str, int]) -> int:
    gid = file_index.get("??")
    if gid is None:
        gid = file_index["??"] = len(files)
        files.append("??")
    return gid


def _read_all(stream) -> bytes:
    stream.seek(0)
    return stream.read()


def _flatten(addr, file, line, seq_bounds, files) -> LineTable:
    """Order whole sequences by start address, keeping the first of any that overlap, so one searchsorted finds the row.

    Within a sequence rows are in address order and, at equal addresses, the last row wins (binutils keeps only the
    last one too); the end row of one sequence and the first row of the next may share an address, and the next
    sequence's row must win there, which ordering by sequence then row gives.
    """
    import numpy as np

    if not seq_bounds:
        return LineTable(addr[:0], file[:0], line[:0], files)
    bounds = np.asarray(seq_bounds, dtype=np.int64)
    lo = addr[bounds[:, 0]]
    hi = addr[bounds[:, 1] - 1]
    order = np.lexsort((np.arange(len(lo)), lo))
    keep = []
    reach = 0
    for s in order.tolist():
        if hi[s] <= lo[s]:
            continue  # empty sequence
        if lo[s] < reach:
            continue  # overlaps a kept sequence: typically several discarded-section sequences all at 0
        keep.append(s)
        reach = int(hi[s])
    pieces = [np.arange(bounds[s, 0], bounds[s, 1]) for s in keep]
    idx = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
    out_addr, out_file, out_line = addr[idx], file[idx], line[idx]
    if len(out_addr) > 1 and np.any(out_addr[1:] < out_addr[:-1]):
        # A sequence that moved backwards (never seen from GCC/gas): fall back to a stable sort by address.
        o = np.argsort(out_addr, kind="stable")
        out_addr, out_file, out_line = out_addr[o], out_file[o], out_line[o]
    # A row that repeats its predecessor's file and line changes no lookup (the predecessor answers the same), and
    # such rows (column changes, is_stmt flips, views) are a large share of a GCC line program.
    if len(out_addr) > 1:
        keep = np.ones(len(out_addr), dtype=bool)
        keep[1:] = (out_file[1:] != out_file[:-1]) | (out_line[1:] != out_line[:-1])
        out_addr, out_file, out_line = out_addr[keep], out_file[keep], out_line[keep]
    return LineTable(out_addr, out_file, out_line, files)
