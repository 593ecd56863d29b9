"""snapshot://DIR : a snapshot written by `xipscope snapshot` (snapshot/take.py) read back as a halted Target.

Memory is exactly what was saved: a read outside the saved regions is an error, never zeros. Registers come from the
manifest. Opening checks the manifest's shape, each region file's size and its hash, so a damaged or truncated
snapshot is refused with a message that says which file is wrong, instead of answering with wrong bytes later.
A snapshot may come from anyone: its regions must lie inside the chip's address space and its memory map (checked
before any file is hashed), and every file it names must be a regular file inside the directory (files.py).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import mmap
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..chip.memory_map import ADDRESS_BITS, ADDRESS_SPACE
from . import FORMAT, FORMAT_VERSION, MANIFEST
from ..errors import CapabilityError, FormatError, TargetError
from ..files import open_regular, read_regular, read_regular_text
from ..targets.base import MEMORY, REGISTERS, Target
from ..targets.rsp import REGISTER_ALIASES, RegisterInfo

HASH_CHUNK = 1 << 20
MAX_MANIFEST = 16 << 20              # ~300 registers and a few regions take ~40 KB; far above any real manifest
MAX_DESCRIPTION = 1 << 20            # one target description file (QEMU's riscv CSR file, the largest, is ~100 KB)


@dataclass(frozen=True)
class SavedRegion:
    name: str
    start: int
    size: int
    file: str
    hash: str

    @property
    def end(self) -> int:
        return self.start + self.size


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    """Field checks that raise one FormatError naming the manifest, the field and what it should be."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, expected: str, found) -> FormatError:
        shown = repr(found)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return FormatError(f"{self.path}: {where} should be {expected}, found {shown}; the snapshot is damaged "
                           "or not one xipscope wrote (take it again with `xipscope snapshot`)")

    def field(self, record: dict, key: str, where: str, kind: str, optional: bool = False):
        if key not in record:
            if optional:
                return None
            raise self.fail(f"{where}.{key}", kind, "nothing")
        value = record[key]
        if optional and value is None:
            return None
        ok = {"int": _is_int(value), "str": isinstance(value, str), "bool": isinstance(value, bool),
              "list": isinstance(value, list), "dict": isinstance(value, dict)}[kind.split()[0]]
        if not ok:
            raise self.fail(f"{where}.{key}", kind, value)
        return value


def load_manifest(directory: Path) -> dict:
    """The manifest of a snapshot directory, its shape checked (FormatError) but its files not yet (see SnapshotTarget)."""
    path = directory / MANIFEST
    if not os.path.lexists(path):
        raise TargetError(f"{directory} holds no {MANIFEST}: not a snapshot directory "
                          "(write one with `xipscope snapshot --target URL --out DIR`)")
    text = read_regular_text(MANIFEST, "the snapshot manifest", base=directory, max_size=MAX_MANIFEST,
                             why="a snapshot manifest is allowed", error=TargetError)
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise FormatError(f"{path} is not valid JSON ({str(e)[:80]}); the snapshot is damaged") from None
    check = _Checker(path)
    if not isinstance(manifest, dict):
        raise check.fail("the manifest", "a JSON object", manifest)
    if manifest.get("format") != FORMAT:
        raise check.fail("format", repr(FORMAT), manifest.get("format"))
    if manifest.get("version") != FORMAT_VERSION:
        raise check.fail("version", f"{FORMAT_VERSION} (this xipscope reads no other)", manifest.get("version"))
    check.field(manifest, "complete", "manifest", "bool")
    check.field(manifest, "target", "manifest", "str")
    check.field(manifest, "error", "manifest", "str", optional=True)
    elf = check.field(manifest, "elf", "manifest", "dict", optional=True)
    if elf is not None:
        check.field(elf, "path", "elf", "str")
        check.field(elf, "hash", "elf", "str")
    memory_map = check.field(manifest, "memory_map", "manifest", "dict")
    check.field(memory_map, "name", "memory_map", "str")
    windows = {}       # the map's regions by name: where each saved region must lie
    for i, record in enumerate(check.field(memory_map, "regions", "memory_map", "list")):
        where = f"memory_map.regions[{i}]"
        if not isinstance(record, dict):
            raise check.fail(where, "an object", record)
        name = check.field(record, "name", where, "str")
        start = check.field(record, "start", where, "int")
        end = check.field(record, "end", where, "int")
        if not 0 <= start < end <= ADDRESS_SPACE:
            raise check.fail(f"{where}.start/end", f"a range inside the chip's {ADDRESS_BITS}-bit address space",
                             (start, end))
        windows[name] = (start, end)

    regions = []
    for i, record in enumerate(check.field(manifest, "regions", "manifest", "list")):
        where = f"regions[{i}]"
        if not isinstance(record, dict):
            raise check.fail(where, "an object", record)
        name = check.field(record, "name", where, "str")
        start = check.field(record, "start", where, "int")
        size = check.field(record, "size", where, "int")
        file = check.field(record, "file", where, "str")
        digest = check.field(record, "hash", where, "str")
        # Before any file is opened: a sparse file claiming 2**40 bytes would otherwise be hashed for hours.
        if not 0 <= start < ADDRESS_SPACE or not 0 <= size <= ADDRESS_SPACE - start:
            raise check.fail(f"{where}.start/size", f"a range inside the chip's {ADDRESS_BITS}-bit address space",
                             (start, size))
        if name not in windows:
            raise check.fail(f"{where}.name", "the name of a region of memory_map", name)
        low, high = windows[name]
        if not (low <= start and start + size <= high):
            raise check.fail(f"{where}.start/size", f"a range inside memory_map's {name} ({low:#x}..{high:#x})",
                             (start, size))
        relative = PurePosixPath(file)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts or "\\" in file or "\0" in file:
            raise check.fail(f"{where}.file", "a path inside the snapshot directory", file)
        if len(digest) != 40 or any(c not in "0123456789abcdef" for c in digest):
            raise check.fail(f"{where}.hash", "40 lower-case hex digits (blake2b-160)", digest)
        regions.append(SavedRegion(name, start, size, file, digest))
    regions.sort(key=lambda r: r.start)
    for a, b in zip(regions, regions[1:]):
        if b.start < a.end:
            raise check.fail("regions", "non-overlapping ranges", f"{a.name} and {b.name} overlap")

    registers = []
    for i, record in enumerate(check.field(manifest, "registers", "manifest", "list")):
        where = f"registers[{i}]"
        if not isinstance(record, dict):
            raise check.fail(where, "an object", record)
        name = check.field(record, "name", where, "str")
        number = check.field(record, "number", where, "int")
        bits = check.field(record, "bits", where, "int")
        value = check.field(record, "value", where, "int", optional=True)
        if not 0 <= number < 1 << 16:
            raise check.fail(f"{where}.number", "a register number 0..65535", number)
        if bits not in (8, 16, 32, 64, 128):
            raise check.fail(f"{where}.bits", "8, 16, 32, 64 or 128", bits)
        if value is not None and not 0 <= value < 1 << bits:
            raise check.fail(f"{where}.value", f"an unsigned {bits}-bit value", value)
        registers.append((RegisterInfo(name, number, bits, record.get("group") if isinstance(
            record.get("group"), str) else None), value))

    description = check.field(manifest, "target_description", "manifest", "list")
    for name in description:
        if not isinstance(name, str) or "/" in name or "\\" in name or name in ("", ".", "..") or "\0" in name:
            raise check.fail("target_description", "a list of file names", name)

    manifest["_regions"] = regions
    manifest["_registers"] = registers
    return manifest


def _file_hash(f) -> str:
    digest = hashlib.blake2b(digest_size=20)
    for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


class SnapshotTarget(Target):
    """A snapshot as a Target: always halted, memory only where saved, registers as they were."""

    capabilities = frozenset({MEMORY, REGISTERS})

    def __init__(self, directory: Path | str, verify: bool = True):
        self.directory = Path(directory)
        self.url = f"snapshot://{self.directory}"
        manifest = load_manifest(self.directory)
        self.manifest = {k: v for k, v in manifest.items() if not k.startswith("_")}
        self.regions: list[SavedRegion] = manifest["_regions"]
        self.register_layout: list[RegisterInfo] = [info for info, _ in manifest["_registers"]]
        self._values: dict[str, int | None] = {info.name: value for info, value in manifest["_registers"]}
        self.values_by_number: dict[int, int | None] = {info.number: value for info, value in manifest["_registers"]}
        self.complete: bool = manifest["complete"]
        self._starts = [r.start for r in self.regions]
        self._maps: list = []
        self._data: list = []
        try:
            for region in self.regions:
                self._data.append(self._open_region(region, verify))
        except BaseException:
            self.close()
            raise

    def _open_region(self, region: SavedRegion, verify: bool):
        path = self.directory / region.file
        with open_regular(region.file, f"the file of region {region.name!r}", base=self.directory,
                          error=TargetError, hint="The snapshot is incomplete or not as xipscope wrote it.") as f:
            actual = os.fstat(f.fileno()).st_size
            if actual != region.size:
                raise TargetError(f"{self.url}: region {region.name!r} file {path} holds {actual} bytes, the manifest "
                                  f"says {region.size}; the file was truncated or replaced")
            if verify and _file_hash(f) != region.hash:
                raise TargetError(f"{self.url}: region {region.name!r} file {path} does not match the hash in the "
                                  "manifest; its contents changed after the snapshot was taken")
            if region.size == 0:
                return b""
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._maps.append(data)
        return data

    def __repr__(self) -> str:
        return f"<SnapshotTarget {self.url} {'complete' if self.complete else 'partial'}, {len(self.regions)} regions>"

    # -- memory ----------------------------------------------------------------------------------------------------

    def region_at(self, address: int) -> SavedRegion | None:
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self.regions[i].end:
            return self.regions[i]
        return None

    def _saved_ranges(self) -> str:
        if not self.regions:
            return "no memory was saved"
        return "saved: " + ", ".join(f"{r.name} {r.start:#x}..{r.end:#x}" for r in self.regions)

    def read_memory(self, address: int, size: int) -> bytes:
        """Bytes saved at [address, address+size), which may run across adjacent saved regions."""
        if size < 0:
            raise TargetError(f"{self.url}: cannot read {size} bytes")
        out = bytearray()
        a, end = address, address + size
        while a < end:
            i = bisect.bisect_right(self._starts, a) - 1
            if i < 0 or a >= self.regions[i].end:
                partial = "" if a == address else f" (the read of {size} bytes at {address:#x} got that far)"
                raise TargetError(f"{self.url}: {a:#x} is outside the memory this snapshot saved{partial}; "
                                  f"{self._saved_ranges()}")
            region = self.regions[i]
            n = min(end, region.end) - a
            offset = a - region.start
            out += self._data[i][offset:offset + n]
            a += n
        return bytes(out)

    # -- registers -------------------------------------------------------------------------------------------------

    def read_registers(self) -> dict[str, int]:
        return {name: value for name, value in self._values.items() if value is not None}

    def read_register(self, name: str) -> int:
        key = REGISTER_ALIASES.get(name, name)
        if key not in self._values and name.startswith("x") and name[1:].isdigit() and int(name[1:]) < 32:
            from ..chip.riscv import GPR_NAMES
            key = GPR_NAMES[int(name[1:])]
        if key not in self._values:
            raise TargetError(f"{self.url}: the snapshot has no register {name!r} "
                              f"({len(self._values)} saved, e.g. {', '.join(list(self._values)[:6])} ...)")
        value = self._values[key]
        if value is None:
            raise TargetError(f"{self.url}: {name} could not be read when the snapshot was taken")
        return value

    # -- run control: a snapshot never runs -----------------------------------------------------------------------

    def halt(self) -> None:
        """Nothing to do: a snapshot is halted for good."""

    def resume(self) -> None:
        raise CapabilityError(f"{self.url} is a snapshot: it cannot run; resume the live target it was taken from")

    def state(self) -> str:
        return "halted"

    def memory_map(self):
        """The memory map the snapshot was taken with (a user's TOML map included), for region look-ups later."""
        from ..chip.memory_map import MemoryMap, Region
        from ..errors import XipscopeError

        saved = self.manifest["memory_map"]
        try:
            if not all(_is_int(r["start"]) and _is_int(r["end"]) and isinstance(r["name"], str)
                       for r in saved["regions"]):
                raise TypeError("a region's name, start or end is of the wrong type")
            return MemoryMap(saved["name"], [
                Region(r["name"], r["start"], r["end"], r["kind"], bool(r.get("cached")), bool(r.get("atomics_ok")),
                       f"{self.url} manifest") for r in saved["regions"]], saved.get("chip"))
        except (XipscopeError, KeyError, TypeError, AttributeError) as e:
            raise FormatError(f"{self.directory / MANIFEST}: memory_map is damaged ({e}); pass the map by name "
                              "(--map rp2350 or qemu-virt) instead") from None

    @property
    def elf(self) -> dict | None:
        """{'path', 'hash'} of the ELF named when the snapshot was taken (hash as xipscope.disk_cache.content_hash)."""
        return self.manifest.get("elf")

    def description_file(self, annex: str) -> bytes | None:
        """A target description file saved with the snapshot (`target.xml` and its includes), or None."""
        if annex not in self.manifest["target_description"]:
            return None
        return read_regular(f"tdesc/{annex}", "a target description file", base=self.directory,
                            max_size=MAX_DESCRIPTION, why="a target description file is allowed", error=TargetError)

    def close(self) -> None:
        for data in self._maps:
            data.close()
        self._maps.clear()
