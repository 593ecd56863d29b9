"""Struct sizes and member offsets (bitfields included) from an ELF's DWARF, read from one compilation unit.

Reading every CU of a 34 MB vmlinux with pyelftools takes seconds, so we find the one CU that defines a given function
through .debug_aranges and read only its top-level types.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SymbolError

_QUALIFIERS = ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_atomic_type")
# Types nest a few levels (typedef of const of array of struct); a hostile DWARF can make them refer to themselves.
MAX_TYPE_DEPTH = 64


# pyelftools makes an object of every arange and every DIE it parses (hundreds of bytes each, from as little as one
# byte of DWARF), so what it is given to parse is bounded: the RP2350 vmlinux has 22 KB of .debug_aranges and its
# largest compilation unit is 144 KB.
MAX_ARANGES_BYTES = 1 << 20
MAX_UNIT_BYTES = 512 << 10


class DwarfBoundsError(ValueError):
    """A DWARF type that reaches itself, or DWARF past the bounds above."""


@dataclass(frozen=True)
class Member:
    offset: int            # byte offset of the member (of its storage unit, for a bitfield)
    size: int              # bytes (of the storage unit, for a bitfield)
    bit_shift: int = 0     # bitfields: position of the lowest bit inside the storage unit, little-endian
    bit_size: int = 0      # 0 for a plain member
    type_die: object = None


@dataclass(frozen=True)
class Struct:
    name: str
    size: int
    members: dict[str, Member]

    def member(self, name: str) -> Member:
        try:
            return self.members[name]
        except KeyError:
            raise SymbolError(f"struct {self.name} has no member {name!r} in this kernel's DWARF "
                              f"(members: {', '.join(self.members)})") from None


def _strip(die):
    for _ in range(MAX_TYPE_DEPTH):
        if die is None or die.tag not in _QUALIFIERS or "DW_AT_type" not in die.attributes:
            return die
        die = die.get_DIE_from_attribute("DW_AT_type")
    raise DwarfBoundsError(f"a DWARF type at offset {die.offset:#x} that names itself (qualifiers more than "
                      f"{MAX_TYPE_DEPTH} deep)")


def _type_size(die, depth: int = 0) -> int:
    die = _strip(die)
    if die is None:
        return 0
    if depth > MAX_TYPE_DEPTH:
        raise DwarfBoundsError(f"a DWARF array type at offset {die.offset:#x} that contains itself (nested more than "
                          f"{MAX_TYPE_DEPTH} deep)")
    if "DW_AT_byte_size" in die.attributes:
        return die.attributes["DW_AT_byte_size"].value
    if die.tag == "DW_TAG_array_type":
        count = 0
        for sub in die.iter_children():
            if sub.tag == "DW_TAG_subrange_type":
                if "DW_AT_count" in sub.attributes:
                    count = sub.attributes["DW_AT_count"].value
                elif "DW_AT_upper_bound" in sub.attributes:
                    count = sub.attributes["DW_AT_upper_bound"].value + 1
        return count * _type_size(die.get_DIE_from_attribute("DW_AT_type"), depth + 1)
    return 0


def _read_struct(die) -> Struct:
    members: dict[str, Member] = {}
    for child in die.iter_children():
        if child.tag != "DW_TAG_member" or "DW_AT_name" not in child.attributes:
            continue
        name = child.attributes["DW_AT_name"].value.decode()
        type_die = child.get_DIE_from_attribute("DW_AT_type")
        size = _type_size(type_die)
        attrs = child.attributes
        if "DW_AT_bit_size" in attrs:
            bits = attrs["DW_AT_bit_size"].value
            if "DW_AT_data_bit_offset" in attrs:          # DWARF 4+/5 style: bits from the struct's start
                absolute = attrs["DW_AT_data_bit_offset"].value
            else:                                          # DWARF 2/3 style: from the storage unit's top bit
                unit = attrs.get("DW_AT_byte_size")
                unit_size = unit.value if unit else size
                base = attrs["DW_AT_data_member_location"].value if "DW_AT_data_member_location" in attrs else 0
                absolute = base * 8 + unit_size * 8 - attrs["DW_AT_bit_offset"].value - bits
            members[name] = Member(absolute // 8, 1, absolute % 8, bits, type_die)
        else:
            offset = attrs["DW_AT_data_member_location"].value if "DW_AT_data_member_location" in attrs else 0
            if not isinstance(offset, int):
                raise SymbolError(f"member {name}: location expression {offset!r} is not a constant offset")
            members[name] = Member(offset, size, 0, 0, type_die)
    return Struct(die.attributes["DW_AT_name"].value.decode(), die.attributes["DW_AT_byte_size"].value, members)


def _unit_top_dies(elf, elf_path, defined_near: str):
    """Top-level DIEs of the compilation unit that defines function `defined_near`."""
    from .symbols import load_symbols

    if not elf.has_dwarf_info():
        raise SymbolError(f"{elf_path} has no DWARF")
    # The symbol index (numpy, cached, bounded) rather than pyelftools' table, which makes an object per symbol.
    symbols = [s for s in load_symbols(elf_path).symbols_named(defined_near) if s.kind == "function"]
    if not symbols:
        raise SymbolError(f"{elf_path}: no function {defined_near!r} to find its compilation unit by")
    address = symbols[0].address
    dwarf = elf.get_dwarf_info()
    aranges_section = elf.get_section_by_name(".debug_aranges")
    if aranges_section is not None and aranges_section.data_size > MAX_ARANGES_BYTES:
        raise DwarfBoundsError(f".debug_aranges of {aranges_section.data_size:,} bytes, more than the "
                             f"{MAX_ARANGES_BYTES:,} read")
    aranges = dwarf.get_aranges()
    cu_offset = aranges.cu_offset_at_addr(address) if aranges else None
    from .line_table import MAX_COMPILE_UNITS, check_abbreviation_table, section_bytes

    abbrev = section_bytes(dwarf.debug_abbrev_sec)
    if cu_offset is None:
        units = (c for i, c in enumerate(dwarf.iter_CUs()) if i < MAX_COMPILE_UNITS)
        cu = next((c for c in units if _cu_covers(c, address, abbrev)), None)
    else:
        cu = dwarf.get_CU_at(cu_offset)
    if cu is None:
        raise SymbolError(f"{elf_path}: no DWARF compilation unit covers {defined_near} at {address:#x}")
    if cu.size > MAX_UNIT_BYTES:
        raise DwarfBoundsError(f"the compilation unit at .debug_info offset {cu.cu_offset:#x} holding {defined_near} "
                             f"is {cu.size:,} bytes, more than the {MAX_UNIT_BYTES:,} read")
    check_abbreviation_table(abbrev, cu["debug_abbrev_offset"])
    return cu.get_top_DIE().iter_children()


def _named(die) -> str | None:
    name = die.attributes.get("DW_AT_name")
    return name.value.decode() if name else None


def read_unit(elf_path, defined_near: str, structs: set[str], functions: set[str] = frozenset()):
    """The named structs, and which of the named functions exist (even fully inlined), as the compilation unit
    defining function `defined_near` sees them. Returns (structs by name, set of functions present)."""
    import os

    from .elf_reader import open_elf, parse_elf

    try:
        with open_elf(elf_path) as f:
            elf = parse_elf(f, os.fstat(f.fileno()).st_size, dwarf=True)
            found: dict[str, Struct] = {}
            present: set[str] = set()
            for die in _unit_top_dies(elf, elf_path, defined_near):
                name = _named(die)
                if name is None:
                    continue
                if die.tag == "DW_TAG_structure_type" and name in structs and name not in found \
                        and "DW_AT_declaration" not in die.attributes:
                    found[name] = _read_struct(die)
                elif die.tag == "DW_TAG_subprogram" and name in functions:
                    present.add(name)
    except SymbolError:
        raise
    except Exception as e:   # pyelftools and construct raise many types on damaged DWARF (a RecursionError too)
        raise SymbolError(f"{elf_path}: cannot read DWARF ({type(e).__name__}: {e})") from None
    missing = structs - found.keys()
    if missing:
        raise SymbolError(f"{elf_path}: DWARF of the unit defining {defined_near} lacks "
                          f"struct {', '.join(sorted(missing))}")
    return found, present


def _cu_covers(cu, address: int, abbrev: bytes) -> bool:
    from .line_table import check_abbreviation_table

    check_abbreviation_table(abbrev, cu["debug_abbrev_offset"])
    top = cu.get_top_DIE()
    low = top.attributes.get("DW_AT_low_pc")
    high = top.attributes.get("DW_AT_high_pc")
    if not low or not high:
        return False
    end = high.value if high.form == "DW_FORM_addr" else low.value + high.value
    return low.value <= address < end
