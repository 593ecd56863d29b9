"""Read an ELF's identity, symbol table and line table into plain arrays (the raw material of a SymbolIndex)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SymbolError
from ..files import open_regular

if TYPE_CHECKING:
    import numpy as np

    from .line_table import LineTable

# Symbol kinds and bindings as stored in the index (small ints so they live in numpy arrays).
KIND_FUNC, KIND_OBJECT = 0, 1
BIND_LOCAL, BIND_GLOBAL, BIND_WEAK = 0, 1, 2

_STT_NOTYPE, _STT_OBJECT, _STT_FUNC, _STT_GNU_IFUNC = 0, 1, 2, 10
_SHF_EXECINSTR = 0x4
_SHN_LORESERVE = 0xFF00
_ELF_BIND = {0: BIND_LOCAL, 1: BIND_GLOBAL, 2: BIND_WEAK, 10: BIND_GLOBAL}  # 10 = STB_GNU_UNIQUE

# The largest ELF read: an RP2350 vmlinux with full DWARF is ~34 MB, a firmware ELF far less. Anything bigger is
# not the image that ran, and is read whole: with the DWARF bound below, the largest file and DWARF allowed (and 4M
# line rows) peak at 460 MB, inside the 512 MiB any input may cost (issue 14).
MAX_ELF_BYTES = 128 << 20
ELF_LIMIT_WHY = "an ELF xipscope reads may have (an RP2350 vmlinux with DWARF is ~40 MB)"
# .symtab entries and the bytes of their names: an RP2350 vmlinux has 15k and 238 KB. Each symbol kept costs a few
# hundred bytes through the index build (2M of them peaked at 1.3 GB), each name byte about six.
MAX_SYMBOLS = 250_000
MAX_SYMBOL_NAME_BYTES = 16 << 20
# The most DWARF pyelftools is let hold in memory, decompressed (it copies every debug section into its own buffer):
# the RP2350 vmlinux with DWARF has ~31 MB.
MAX_DWARF_BYTES = 96 << 20
_DWARF_PREFIXES = (".debug_", ".zdebug_", ".eh_frame", ".gnu_debugaltlink")
_ELFCOMPRESS_ZLIB = 1
# The longest LEB128 a DWARF producer writes: 10 bytes hold 64 bits; assemblers pad a few more for relaxation.
MAX_LEB128_BYTES = 16
ELF_HINT = "Pass the unstripped vmlinux (or firmware ELF) from the build directory, or its System.map."

_ARCH_NAMES = {"EM_RISCV": "riscv", "EM_ARM": "arm", "EM_AARCH64": "aarch64", "EM_X86_64": "x86_64", "EM_386": "i386"}


@dataclass
class RawSymbols:
    """Symbols in file order with their section end (for sizing labels), before the index sorts and resolves them."""

    address: "np.ndarray"  # uint64
    size: "np.ndarray"  # uint64, 0 = unknown (inferred later)
    kind: "np.ndarray"  # uint8 KIND_*
    bind: "np.ndarray"  # uint8 BIND_*
    typed: "np.ndarray"  # bool: an ELF FUNC/OBJECT (not a bare label); breaks ties between aliases
    limit: "np.ndarray"  # uint64, where an unsized symbol must stop (its section's end; 2**64-1 if unknown)
    names: list[str]
    arch: str = ""
    word_size: int = 4
    little_endian: bool = True
    lines: "LineTable | None" = None
    has_dwarf: bool = False
    extra: dict = field(default_factory=dict)


def _fail(path: Path, found: str) -> SymbolError:
    return SymbolError(
        f"{path}: expected an ELF with a symbol table (e.g. vmlinux) or a System.map; found {found}. "
        "Pass the unstripped vmlinux from the kernel build directory, or its System.map.")


def open_elf(path: str | Path, what: str = "an ELF", hint: str = ELF_HINT):
    """The ELF (or System.map) at `path` open for reading, if it is a regular file of a sane size; else SymbolError.
    Every reader of an ELF opens it here, so /dev/zero or a FIFO is refused instead of read for ever."""
    return open_regular(path, what, max_size=MAX_ELF_BYTES, why=ELF_LIMIT_WHY, error=SymbolError, hint=hint)


class ElfLayoutError(ValueError):
    """An ELF whose headers don't fit its file, or whose sections would decode to more than we hold (parse_elf)."""


def parse_elf(stream, size: int, dwarf: bool = False):
    """pyelftools' ELFFile over `stream` (`size` bytes long), once its section headers are checked against the file:
    pyelftools trusts them, so a section claiming more bytes than the file has, or a compressed or NOBITS debug section
    claiming gigabytes, would otherwise be read, inflated or zero-filled whole. `dwarf`: the caller will read the DWARF,
    so its decoded size is bounded too (and GNU .zdebug sections inflated once, bounded, to check their claim).
    ElfLayoutError says what doesn't fit; the caller names the file in its own error."""
    from elftools.elf.elffile import ELFFile

    _bound_leb128()
    elf = ELFFile(stream)
    header_size = elf.structs.Elf_Shdr.sizeof()
    shoff, shnum, shentsize = elf["e_shoff"], elf["e_shnum"], elf["e_shentsize"]
    if shnum and shentsize != header_size:
        raise ElfLayoutError(f"section headers of {shentsize} bytes where this ELF class has {header_size}")
    if shoff + shnum * shentsize > size:
        raise ElfLayoutError(f"a truncated ELF: section headers end at byte {shoff + shnum * shentsize} "
                          f"but the file has {size} bytes")
    decoded = 0
    for s in elf.iter_sections():
        name = s.name or f"#{s.header['sh_name']}"
        end = s["sh_offset"] + s["sh_size"]
        if s["sh_type"] != "SHT_NOBITS" and end > size:
            raise ElfLayoutError(f"a truncated ELF: section {name} ends at byte {end} but the file has {size} bytes")
        if s.compressed:
            if s._compression_type not in ("ELFCOMPRESS_ZLIB", _ELFCOMPRESS_ZLIB):
                raise ElfLayoutError(f"section {name} compressed with {s._compression_type}, which xipscope can't "
                                  "inflate; decompress it first (objcopy --decompress-debug-sections)")
            this = s.data_size                      # the size it claims; pyelftools inflates no more than that
        elif dwarf and s.name.startswith(_DWARF_PREFIXES):
            this = s.data_size                      # what pyelftools copies, or zero-fills for a NOBITS one
            if s.name.startswith(".zdebug_") and s["sh_type"] != "SHT_NOBITS":
                this += _zdebug_size(name, stream, s["sh_offset"], s["sh_size"])
        else:
            continue
        decoded += this
        if decoded > MAX_DWARF_BYTES:
            raise ElfLayoutError(f"debug or compressed sections that decode to more than {MAX_DWARF_BYTES:,} bytes "
                              f"(section {name}: {this:,} bytes), where an RP2350 vmlinux's DWARF has ~31 MB")
    return elf


def _zdebug_size(name: str, stream, offset: int, size: int) -> int:
    """The inflated size of a GNU .zdebug section ("ZLIB", big-endian size, zlib data), checked by inflating it in
    bounded chunks: pyelftools inflates it whole, believing the data rather than the size it claims."""
    import zlib

    stream.seek(offset)
    header = stream.read(12)
    claimed = int.from_bytes(header[4:12], "big") if len(header) == 12 and header[:4] == b"ZLIB" else None
    if claimed is None:
        raise ElfLayoutError(f"section {name} without its ZLIB header")
    if claimed > MAX_DWARF_BYTES:
        raise ElfLayoutError(f"section {name} claiming {claimed:,} bytes inflated, more than the {MAX_DWARF_BYTES:,} "
                          "allowed for DWARF")
    inflate, inflated, left = zlib.decompressobj(), 0, size - 12
    try:
        while left > 0 and inflated <= claimed:
            chunk = stream.read(min(left, 1 << 20))
            left -= len(chunk)
            while chunk and inflated <= claimed:
                inflated += len(inflate.decompress(chunk, 1 << 20))
                chunk = inflate.unconsumed_tail
    except zlib.error as e:
        raise ElfLayoutError(f"section {name} whose zlib data is damaged ({e})") from None
    if inflated != claimed:
        raise ElfLayoutError(f"section {name} claiming {claimed:,} bytes inflated but holding "
                          f"{'more' if inflated > claimed else inflated}")
    return claimed


def _bound_leb128() -> None:
    """Make pyelftools refuse a LEB128 longer than MAX_LEB128_BYTES. Its parser shifts a growing int per byte, so a run
    of a million 0x80 bytes in a hostile abbreviation table or line header costs hours; DWARF never needs that.
    The loop is pyelftools' own (common/construct_utils.py) with the bound added."""
    from elftools.common import construct_utils
    from elftools.common.exceptions import DWARFError

    if getattr(construct_utils.ULEB128, "_xipscope_bounded", False):
        return

    def bounded(signed: bool):
        def _parse(self, stream, context) -> int:
            value = shift = 0
            while True:
                data = stream.read(1)
                if len(data) != 1:
                    raise DWARFError("unexpected end of stream while parsing a LEB128 encoded value")
                b = data[0]
                value |= (b & 0x7F) << shift
                shift += 7
                if b & 0x80 == 0:
                    return value | (~0 << shift) if signed and b & 0x40 else value
                if shift >= 7 * MAX_LEB128_BYTES:
                    raise DWARFError(f"a LEB128 value longer than {MAX_LEB128_BYTES} bytes, at offset {stream.tell()}")
        return _parse

    construct_utils.ULEB128._parse = bounded(False)
    construct_utils.SLEB128._parse = bounded(True)
    construct_utils.ULEB128._xipscope_bounded = True


def read_elf(path: Path, data: bytes) -> RawSymbols:
    """Everything the index needs from an ELF already read into `data`; any malformation becomes a SymbolError."""
    import io

    from elftools.common.exceptions import ELFRelocationError

    from .line_table import LineTableError

    _check_extent(path, data)
    try:
        elf = parse_elf(io.BytesIO(data), len(data), dwarf=True)
        raw = _read_symtab(path, elf, data)
        raw.has_dwarf = elf.has_dwarf_info() and elf.get_section_by_name(".debug_line") is not None
        if raw.has_dwarf:
            from .line_table import build_line_table

            raw.lines = build_line_table(elf.get_dwarf_info(relocate_dwarf_sections=True), raw.little_endian)
        return raw
    except SymbolError:
        raise
    except (ElfLayoutError, LineTableError) as e:
        raise _fail(path, str(e)) from None
    except ELFRelocationError as e:
        raise SymbolError(f"{path}: expected a linked ELF (executable or vmlinux); found a relocatable object whose "
                          f"DWARF can't be relocated here ({e}). Pass the linked binary instead of the .o.") from None
    except Exception as e:
        # Any failure while decoding these bytes (pyelftools' own errors, construct's stream errors, a zero
        # line_range dividing, an index off the end) means the file is damaged; the type names the spot.
        raise _fail(path, f"a damaged ELF ({type(e).__name__}: {e})") from None


def _check_extent(path: Path, data: bytes) -> None:
    """Catch truncation up front: pyelftools would otherwise fail deep inside with an unhelpful stream error."""
    if len(data) < 52 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise _fail(path, f"an ELF header that is cut short or invalid ({len(data)} bytes)")
    is64, order = data[4] == 2, "little" if data[5] == 1 else "big"

    def u(off: int, n: int) -> int:
        return int.from_bytes(data[off:off + n], order)

    if is64 and len(data) < 64:
        raise _fail(path, f"a 64-bit ELF header cut short ({len(data)} bytes)")
    shoff, shentsize, shnum = (u(0x28, 8), u(0x3A, 2), u(0x3C, 2)) if is64 else (u(0x20, 4), u(0x2E, 2), u(0x30, 2))
    if shoff == 0 or shnum == 0:
        raise _fail(path, "an ELF without section headers")
    if shoff + shentsize * shnum > len(data):
        raise _fail(path, f"a truncated ELF: section headers end at byte {shoff + shentsize * shnum} "
                          f"but the file has {len(data)} bytes")


def _read_symtab(path: Path, elf, data: bytes) -> RawSymbols:
    import numpy as np

    little = elf.little_endian
    word = elf.elfclass // 8
    machine = elf["e_machine"]
    arch_base = _ARCH_NAMES.get(machine, str(machine).removeprefix("EM_").lower())
    arch = f"riscv{elf.elfclass}" if arch_base == "riscv" else arch_base

    sections = list(elf.iter_sections())   # their extents were checked by parse_elf
    symtab = elf.get_section_by_name(".symtab")
    if symtab is None:
        raise _fail(path, "an ELF without .symtab (stripped)")

    # Parse the symbol table with numpy rather than pyelftools' per-symbol objects: a kernel has tens of thousands.
    e = "<" if little else ">"
    if word == 4:
        dt = np.dtype([("name", e + "u4"), ("value", e + "u4"), ("size", e + "u4"),
                       ("info", "u1"), ("other", "u1"), ("shndx", e + "u2")])
    else:
        dt = np.dtype([("name", e + "u4"), ("info", "u1"), ("other", "u1"), ("shndx", e + "u2"),
                       ("value", e + "u8"), ("size", e + "u8")])
    off, size = symtab["sh_offset"], symtab["sh_size"]
    if symtab["sh_entsize"] != dt.itemsize:
        raise _fail(path, f".symtab entries of {symtab['sh_entsize']} bytes where {dt.itemsize} were expected")
    if size // dt.itemsize > MAX_SYMBOLS:
        raise _fail(path, f"a .symtab of {size // dt.itemsize:,} entries, more than the {MAX_SYMBOLS:,} allowed "
                          "(an RP2350 vmlinux has 15k)")
    syms = np.frombuffer(data, dtype=dt, count=size // dt.itemsize, offset=off)
    strtab_hdr = sections[symtab["sh_link"]] if symtab["sh_link"] < len(sections) else None
    if strtab_hdr is None or strtab_hdr["sh_type"] != "SHT_STRTAB":
        raise _fail(path, ".symtab whose string table link is missing")
    strtab = data[strtab_hdr["sh_offset"]:strtab_hdr["sh_offset"] + strtab_hdr["sh_size"]]

    stype = syms["info"] & 0xF
    sbind = syms["info"] >> 4
    shndx = syms["shndx"].astype(np.int64)
    defined = (shndx != 0) & (shndx < _SHN_LORESERVE)
    exec_sec = np.array([bool(s["sh_flags"] & _SHF_EXECINSTR) for s in sections] + [False])
    sec_end = np.array([s["sh_addr"] + s["sh_size"] for s in sections] + [2**64 - 1], dtype=np.uint64)
    sec_of = np.where(defined, shndx, len(sections))
    sec_of = np.minimum(sec_of, len(sections))
    in_exec = exec_sec[sec_of]

    typed_func = (stype == _STT_FUNC) | (stype == _STT_GNU_IFUNC)
    # Bare labels are kept too: in code they are assembly entry points (nm's t/T, so System.map has them); elsewhere
    # linker-script boundaries people ask for by name (_end, __bss_start, _edata).
    label = stype == _STT_NOTYPE
    is_obj = stype == _STT_OBJECT
    keep = defined & (typed_func | label | is_obj) & (syms["name"] != 0)
    idx = np.nonzero(keep)[0]

    names = []
    name_offsets = syms["name"][idx].tolist()
    keep_mask = np.ones(len(idx), dtype=bool)
    find = strtab.find
    name_bytes = 0
    for i, o in enumerate(name_offsets):
        end = find(b"\0", o)
        end = end if end >= 0 else len(strtab)
        name_bytes += end - o
        if name_bytes > MAX_SYMBOL_NAME_BYTES:    # names may share or overlap their bytes in .strtab: count each
            raise _fail(path, f"symbol names of more than {MAX_SYMBOL_NAME_BYTES:,} bytes in all (at symbol "
                              f"#{int(idx[i])}), where an RP2350 vmlinux's have 238 KB")
        name = strtab[o:end].decode("utf-8", "replace")
        # Mapping symbols ($x, $d) and assembler-local labels are not places a person would name.
        if name.startswith(("$", ".L")) or name == "":
            keep_mask[i] = False
        names.append(name)
    idx = idx[keep_mask]
    names = [n for n, k in zip(names, keep_mask.tolist()) if k]

    address = syms["value"][idx].astype(np.uint64)
    if machine == "EM_ARM":
        # Thumb functions carry bit 0 in their value; the code starts one byte lower.
        address = np.where(typed_func[idx], address & ~np.uint64(1), address)
    kind = np.where(is_obj[idx] | (label[idx] & ~in_exec[idx]), KIND_OBJECT, KIND_FUNC).astype(np.uint8)
    bind = np.array([_ELF_BIND.get(b, BIND_GLOBAL) for b in sbind[idx].tolist()], dtype=np.uint8)
    return RawSymbols(address=address, size=syms["size"][idx].astype(np.uint64), kind=kind, bind=bind,
                      typed=(typed_func | is_obj)[idx], limit=sec_end[sec_of[idx]], names=names,
                      arch=arch, word_size=word, little_endian=little)
