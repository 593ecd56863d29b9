"""Memory maps as data: named address regions with the attributes the toolkit reasons about.

A region says what sits at an address (kind), whether accesses there go through the XIP cache (cached) and whether
the exclusive monitor covers it (atomics_ok). Built-in maps: `rp2350` and `qemu-virt`; users add their own in TOML:

    [[region]]
    name = "flash"
    start = 0x10000000
    end = 0x11000000          # exclusive
    kind = "xip-flash"        # rom | xip-flash | xip-psram | sram | peripheral
    cached = true
    atomics_ok = false

A map also says which chip it describes (`chip = "rp2350"` at the top of a TOML file; the built-in `rp2350` map does),
and the chip says which rules apply to it (CHIP_RULES): a trap on a Hazard3 map gets Hazard3's facts (mtval always 0,
the exceptions it raises, its interrupt names) whatever the map is called.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import XipscopeError
from . import rp2350 as _rp

KINDS = ("rom", "xip-flash", "xip-psram", "sram", "peripheral")
# Both chips these maps describe address 32 bits: the RP2350 (Hazard3 RV32, Cortex-M33) and QEMU virt running the
# rv32 fixture kernels. No region, saved snapshot region or memory image reaches past it.
ADDRESS_BITS = 32
ADDRESS_SPACE = 1 << ADDRESS_BITS
MAX_MAP_FILE = 1 << 20       # a TOML map is a few [[region]] tables; a megabyte is thousands of them
HAZARD3 = "hazard3"     # the rules of RP2350's RISC-V cores (rp2350.md; chip/rp2350.py HAZARD3_*): trap.py applies them
CHIP_RULES = {"rp2350": frozenset({HAZARD3})}    # which rule sets hold on each chip a map may name


@dataclass(frozen=True)
class Region:
    name: str
    start: int
    end: int            # exclusive
    kind: str           # one of KINDS
    cached: bool = False
    atomics_ok: bool = False
    source: str = ""    # where the fact was read (rp2350.md section or datasheet)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise XipscopeError(f"region {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.end <= self.start:
            raise XipscopeError(f"region {self.name!r}: end {self.end:#x} is not above start {self.start:#x}")

    @property
    def size(self) -> int:
        return self.end - self.start

    def __contains__(self, address: int) -> bool:
        return self.start <= address < self.end


class MemoryMap:
    """Non-overlapping regions, looked up by address."""

    def __init__(self, name: str, regions: list[Region], chip: str | None = None):
        if chip is not None and chip not in CHIP_RULES:
            raise XipscopeError(f"memory map {name!r}: chip {chip!r} is not one xipscope knows "
                                f"({', '.join(CHIP_RULES)}); leave `chip` out for a map of another chip")
        self.name = name
        self.chip = chip
        self.rules: frozenset[str] = CHIP_RULES.get(chip, frozenset())
        self.regions = sorted(regions, key=lambda r: r.start)
        for a, b in zip(self.regions, self.regions[1:]):
            if b.start < a.end:
                raise XipscopeError(f"memory map {name!r}: regions {a.name!r} and {b.name!r} overlap")
        self._starts = [r.start for r in self.regions]

    def find(self, address: int) -> Region | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self.regions[i].end:
            return self.regions[i]
        return None

    def describe(self, address: int) -> str:
        """One line a person reads: which region, whether the XIP cache sits in front of it, whether atomics work."""
        r = self.find(address)
        if r is None:
            return f"{address:#010x}: unmapped in the {self.name} map"
        facts = [r.kind]
        if r.kind.startswith("xip-"):
            facts.append("through the XIP cache" if r.cached else "uncached")
        facts.append("atomics ok" if r.atomics_ok else
                     "no atomics (on RP2350: AMOs fault, LR/SC never succeeds outside SRAM)")
        return f"{address:#010x}: {r.name} +{address - r.start:#x} ({', '.join(facts)})"

    def region_name(self, address: int) -> str:
        r = self.find(address)
        return r.name if r else "unmapped"

    def __getitem__(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    def __iter__(self):
        return iter(self.regions)

    def to_json(self) -> dict:
        return {"name": self.name, "chip": self.chip, "regions": [
            {"name": r.name, "start": r.start, "end": r.end, "kind": r.kind, "cached": r.cached,
             "atomics_ok": r.atomics_ok} for r in self.regions]}


def _rp2350_regions() -> list[Region]:
    src_map = "rp2350.md, Memory map (pico-sdk addressmap.h)"
    xip = _rp.XIP_ALIASES
    regions = [
        Region("rom", _rp.ROM_BASE, _rp.ROM_BASE + _rp.ROM_SIZE, "rom", source=src_map),
        Region("flash", xip["cached"] + _rp.XIP_CS0_OFFSET, xip["cached"] + _rp.XIP_CS1_OFFSET, "xip-flash",
               cached=True, source=src_map),
        Region("psram", xip["cached"] + _rp.XIP_CS1_OFFSET, xip["cached"] + _rp.XIP_CS1_OFFSET + _rp.XIP_CS_SIZE,
               "xip-psram", cached=True, source=src_map),
        Region("flash-nocache", xip["nocache"] + _rp.XIP_CS0_OFFSET, xip["nocache"] + _rp.XIP_CS1_OFFSET,
               "xip-flash", source=src_map),
        Region("psram-nocache", xip["nocache"] + _rp.XIP_CS1_OFFSET,
               xip["nocache"] + _rp.XIP_CS1_OFFSET + _rp.XIP_CS_SIZE, "xip-psram", source=src_map),
        Region("flash-untranslated", xip["untranslated"] + _rp.XIP_CS0_OFFSET,
               xip["untranslated"] + _rp.XIP_CS1_OFFSET, "xip-flash", source=src_map),
        Region("psram-untranslated", xip["untranslated"] + _rp.XIP_CS1_OFFSET,
               xip["untranslated"] + _rp.XIP_CS1_OFFSET + _rp.XIP_CS_SIZE, "xip-psram", source=src_map),
        Region("sram", _rp.SRAM_BASE, _rp.SRAM_END, "sram", atomics_ok=True,
               source="rp2350.md, Memory map; Atomics outside SRAM (exclusive monitor 0x20000000-0x20082000)"),
    ]
    regions += [Region(name, base, base + size, "peripheral", source=src_map)
                for name, (base, size) in _rp.PERIPHERALS.items()]
    return regions


def _qemu_virt_regions() -> list[Region]:
    # QEMU's riscv `virt` board (hw/riscv/virt.c memmap): the Linux fixture this project boots.
    src = "QEMU hw/riscv/virt.c virt_memmap"
    return [
        Region("mrom", 0x1000, 0x1000 + 0xF000, "rom", source=src),
        Region("clint", 0x2000000, 0x2010000, "peripheral", source=src),
        Region("plic", 0xC000000, 0x10000000, "peripheral", source=src),
        Region("uart0", 0x10000000, 0x10000100, "peripheral", source=src),
        Region("virtio", 0x10001000, 0x10009000, "peripheral", source=src),
        Region("flash", 0x20000000, 0x24000000, "rom", source=src),
        Region("dram", 0x80000000, 0x100000000, "sram", atomics_ok=True, source=src),
    ]


BUILTIN_MAPS = {"rp2350": _rp2350_regions, "qemu-virt": _qemu_virt_regions}
BUILTIN_CHIPS = {"rp2350": "rp2350"}     # the chip each built-in map describes (QEMU's virt board is no chip we know)


def get_memory_map(name_or_path: str | Path = "rp2350") -> MemoryMap:
    """A built-in map by name (`rp2350`, `qemu-virt`) or a user's TOML file of [[region]] tables."""
    key = str(name_or_path)
    if key in BUILTIN_MAPS:
        return MemoryMap(key, BUILTIN_MAPS[key](), BUILTIN_CHIPS.get(key))
    path = Path(key)
    if not os.path.lexists(path):
        raise XipscopeError(f"memory map {key!r}: not a built-in map ({', '.join(BUILTIN_MAPS)}) and no such file")
    import tomllib

    from ..files import read_regular_text
    text = read_regular_text(path, "a memory map", max_size=MAX_MAP_FILE, why="a TOML memory map is allowed",
                             hint="Pass a TOML file of [[region]] tables, or rp2350 or qemu-virt.")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise XipscopeError(f"memory map {path}: cannot read it as TOML: {e}") from None
    tables = data.get("region", [])
    if not isinstance(tables, list):
        raise XipscopeError(f"memory map {path}: 'region' should be an array of [[region]] tables, found "
                            f"{_shown(tables)}")
    regions = []
    for i, r in enumerate(tables):
        where = f"memory map {path}: region #{i}"
        if not isinstance(r, dict):
            raise XipscopeError(f"{where} should be a [[region]] table, found {_shown(r)}")
        missing = [k for k in ("name", "start", "end", "kind") if k not in r]
        if missing:
            raise XipscopeError(f"{where} lacks {missing[0]!r}; each [[region]] needs name, start, end and kind")
        for key, kind, ok in (("name", "a string", isinstance(r["name"], str)),
                              ("kind", "a string", isinstance(r["kind"], str)),
                              ("start", "an integer", _is_int(r["start"])), ("end", "an integer", _is_int(r["end"])),
                              ("cached", "true or false", isinstance(r.get("cached", False), bool)),
                              ("atomics_ok", "true or false", isinstance(r.get("atomics_ok", False), bool))):
            if not ok:
                raise XipscopeError(f"{where}: {key} should be {kind}, found {_shown(r[key])}")
        if not 0 <= r["start"] < r["end"] <= ADDRESS_SPACE:
            raise XipscopeError(f"{where} ({r['name']!r}): {_shown(r['start'])}..{_shown(r['end'])} should be a "
                                f"range inside the {ADDRESS_BITS}-bit address space (0..{ADDRESS_SPACE:#x})")
        if any(region.name == r["name"] for region in regions):
            raise XipscopeError(f"{where}: name {_shown(r['name'])} is already taken; region names are unique")
        regions.append(Region(r["name"], r["start"], r["end"], r["kind"], r.get("cached", False),
                              r.get("atomics_ok", False), str(path)))
    if not regions:
        raise XipscopeError(f"memory map {path}: no [[region]] tables found")
    name = data.get("name", path.stem)
    if not isinstance(name, str):
        raise XipscopeError(f"memory map {path}: name should be a string, found {_shown(name)}")
    chip = data.get("chip")
    if chip is not None and not isinstance(chip, str):
        raise XipscopeError(f"memory map {path}: chip should be a name such as \"rp2350\", found {_shown(chip)}")
    return MemoryMap(name, regions, chip)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value) -> str:
    """A value from a file as an error shows it: hex for integers, cut to a readable length."""
    text = hex(value) if _is_int(value) and abs(value) < 1 << 128 else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
