"""Post-mortem snapshots: halt a target, save its registers and RAM with a manifest, for snapshot://DIR and `xipscope serve`.

A snapshot directory holds `manifest.json`, one raw file per saved memory region under `regions/`, and, when the
target offered one, its GDB target description under `tdesc/` (so a later gdb sees the registers it would have seen).
The manifest is written first and after every step, marked `"complete": false` until the end: a snapshot cut short
(target gone, Ctrl-C, the tool killed) keeps what it saved and says it is partial. snapshot/read.py reads it back.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from .. import __version__
from . import FORMAT, FORMAT_VERSION, MANIFEST
from ..errors import SymbolError, TargetError, XipscopeError

HASH_ALGORITHM = "blake2b-160"       # the digest of xipscope.disk_cache.content_hash, so one tool checks both
BLOCK = 1 << 20                      # bytes per read_memory call: large, so rsp:// pipelines its `m` packets
PROBE_GRANULE = 4096                 # RAM that ends inside a map region is assumed to end on a 4 KiB boundary
RAM_KINDS = ("sram", "xip-psram")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")   # a file name that stays where it is put


def new_hash():
    import hashlib   # here, not at the top: OpenSSL's load would slow `xipscope --help`

    return hashlib.blake2b(digest_size=20)


def regions_to_save(memory_map, include_flash: bool = False) -> list:
    """The map's RAM regions (and XIP flash on request), each piece of memory once.

    The RP2350 map lists PSRAM and flash under several aliases; we save the cached one, because the XIP cache is
    write-back for PSRAM and the uncached aliases would miss data still sitting in dirty lines. An uncached alias is
    skipped only when a cached region of the same kind and size stands for it.
    """
    kinds = set(RAM_KINDS) | ({"xip-flash"} if include_flash else set())
    cached = {(r.kind, r.size) for r in memory_map if r.cached}
    return [r for r in memory_map
            if r.kind in kinds and (r.cached or not r.kind.startswith("xip-") or (r.kind, r.size) not in cached)]


def _readable(target, address: int) -> bool:
    try:
        target.read_memory(address, 1)
        return True
    except TargetError:
        return False


def readable_end(target, start: int, end: int) -> int:
    """The end of the readable part of [start, end), found by binary search with 1-byte reads (about 20 for 2 GiB).

    A map region is the window the chip decodes; the board fills only part of it (QEMU's virt dram window is 2 GiB,
    our fixture has 64 MiB; a Pico Plus 2 has 8 of PSRAM's 16 MiB). Assumes the memory is one block from `start`
    ending on a PROBE_GRANULE boundary, and a server that answers reads of absent memory with an error (QEMU,
    OpenOCD and the twin do; a real PSRAM window without a chip may read as junk: give its size with --size then).
    """
    if not _readable(target, start):
        _check_alive(target, start)
        return start
    if _readable(target, end - 1):
        return end
    low, high = 0, (end - start + PROBE_GRANULE - 1) // PROBE_GRANULE    # granule `low` readable, `high` not
    while high - low > 1:
        middle = (low + high) // 2
        if _readable(target, start + middle * PROBE_GRANULE):
            low = middle
        else:
            high = middle
    _check_alive(target, start)
    return min(end, start + high * PROBE_GRANULE)


def _check_alive(target, start: int) -> None:
    """A failed probe means absent memory only if the target still answers; else it vanished mid-probe."""
    try:
        target.read_register("pc")
    except TargetError as e:
        raise TargetError(f"{e}\n(the target stopped answering while the memory at {start:#x} was being probed)") from None


def read_all_registers(target) -> tuple[list, dict[str, int | None]]:
    """(register layout, values by name; None where the target would not give one).

    The layout is the target's description where it has one (rsp://: every register target.xml lists, CSRs included),
    else gdb's RISC-V numbering of the registers `read_registers()` returns (sim://). The `g` block comes in one
    request, the rest one `p` each (QEMU 7.2 offers no no-ack mode to pipeline them; 215 registers take ~10 ms).
    """
    from ..rsp.description import riscv_register_layout

    values: dict[str, int | None] = dict(target.read_registers())
    layout = getattr(target, "registers", None)
    if not layout:
        layout = riscv_register_layout(values)
    for reg in layout:
        if reg.name in values:
            continue
        try:
            values[reg.name] = target.read_register(reg.name)
        except TargetError:
            values[reg.name] = None
            # A register the server refuses, or a server that is gone? Ask for one it gave a moment ago.
            if "pc" in values:
                target.read_register("pc")
    return list(layout), values


def parse_size(text: str) -> int:
    """`64M`, `512K`, `0x4000000` or `65536` bytes."""
    text = text.strip()
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:].lower(), 1)
    number = text[:-1] if scale != 1 else text
    try:
        value = int(number, 0) * scale
    except ValueError:
        raise XipscopeError(f"{text!r} is not a size; write it like 64M, 512K or 0x4000000") from None
    if value <= 0:
        raise XipscopeError(f"size {text!r} must be above zero")
    return value


class _SnapshotWriter:
    """The directory being written and its manifest, rewritten atomically after every step."""

    def __init__(self, out_dir: Path, manifest: dict):
        self.dir = out_dir
        self.manifest = manifest

    def save_manifest(self) -> None:
        tmp = self.dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.manifest, indent=1) + "\n")
        tmp.replace(self.dir / MANIFEST)

    def save_region(self, target, region, size: int, extent: str, progress=None) -> dict:
        """Read `size` bytes from the region's start in BLOCK reads into regions/NAME.bin; all-zero blocks become
        holes (a sparse file), so 64 MiB of mostly idle RAM costs little disk. The record is in the manifest from the
        first byte on, so a failed read leaves the part that was read, marked partial. progress(n) after each read."""
        # a user's TOML map names regions as it likes ("../x" too): only a plain name becomes a file name
        stem = region.name if SAFE_NAME.match(region.name) else f"region-{len(self.manifest['regions'])}"
        record = {"name": region.name, "kind": region.kind, "start": region.start, "size": 0,
                  "file": f"regions/{stem}.bin", "hash": new_hash().hexdigest(), "extent": extent,
                  "map_size": region.size, "partial": True}
        self.manifest["regions"].append(record)
        path = self.dir / record["file"]
        path.parent.mkdir(exist_ok=True)
        digest = new_hash()
        zeros = bytes(BLOCK)
        done = 0
        with open(path, "wb") as f:
            try:
                while done < size:
                    n = min(BLOCK, size - done)
                    data = target.read_memory(region.start + done, n)
                    if len(data) != n:
                        raise TargetError(f"{target.url}: asked for {n} bytes at {region.start + done:#x}, "
                                          f"got {len(data)}")
                    digest.update(data)
                    if data == zeros[:n]:
                        f.seek(n, os.SEEK_CUR)
                    else:
                        f.write(data)
                    done += n
                    if progress is not None:
                        progress(n)
            finally:
                f.truncate(done)
                record["size"] = done
                record["hash"] = digest.hexdigest()
        record["partial"] = False
        return record


def check_request(out_dir: Path, memory_map, include_flash: bool, sizes: dict[str, int]) -> list:
    """The regions to save, after the checks that need no target: a new output directory, sizes of saved regions."""
    chosen = regions_to_save(memory_map, include_flash)
    unknown = set(sizes) - {r.name for r in chosen}
    if unknown:
        raise XipscopeError(f"--size names {', '.join(sorted(unknown))}, not a region this snapshot saves "
                            f"(saved from map {memory_map.name!r}: {', '.join(r.name for r in chosen) or 'none'})")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise XipscopeError(f"{out_dir} exists and is not an empty directory; give --out a new directory")
    return chosen


def take_snapshot(target, out_dir, memory_map, elf=None, include_flash: bool = False, resume: bool = True,
                  sizes: dict[str, int] | None = None, log=None, progress=None) -> dict:
    """Halt `target`, save its registers and the RAM regions of `memory_map` (flash too with include_flash) into
    `out_dir`, resume it if it was running, and return the manifest.

    `sizes` bounds regions by name (e.g. {"dram": 64 << 20}); other regions are probed for the memory the board
    really has (readable_end). log(text) hears each step; progress(bytes saved, bytes to save) is called after each
    read of memory (the total is known once every region's extent is). On a failure the directory keeps what was saved, its manifest says
    `"complete": false` with the error, and a TargetError says so.
    """
    from ..targets.base import require_riscv
    require_riscv(target, "snapshot (its registers are RISC-V's, served back to gdb as rv32)")
    from datetime import datetime, timezone

    out_dir = Path(out_dir)
    sizes = dict(sizes or {})
    chosen = check_request(out_dir, memory_map, include_flash, sizes)
    elf_record = None
    if elf is not None:
        from ..disk_cache import content_hash
        from ..elf.elf_reader import open_elf
        try:
            with open_elf(elf):     # a regular file of a sane size (not /dev/zero, hashed for ever), or a SymbolError
                elf_record = {"path": str(Path(elf).resolve()), "hash": content_hash(elf)}
        except OSError as e:
            raise SymbolError(f"cannot read the ELF {elf}: {e.strerror or e}") from None
    started = time.monotonic()
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION, "complete": False, "error": "in progress (or cut short)",
        "tool": f"xipscope {__version__}", "target": target.url,
        "taken_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seconds": None,
        "memory_map": memory_map.to_json(), "elf": elf_record, "hash_algorithm": HASH_ALGORITHM,
        "target_description": [], "registers": [], "regions": [],
    }
    writer = _SnapshotWriter(out_dir, manifest)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        writer.save_manifest()
    except OSError as e:
        raise XipscopeError(f"cannot write the snapshot into {out_dir}: {e.strerror or e}") from None
    say = log or (lambda text: None)
    was_running = False
    try:
        was_running = target.state() == "running"
        if was_running:
            target.halt()
        layout, values = read_all_registers(target)
        manifest["registers"] = [
            {"name": r.name, "number": r.number, "bits": r.bits, "value": values.get(r.name)}
            | ({"group": r.group} if r.group else {}) for r in layout]
        _save_description(target, out_dir, manifest)
        writer.save_manifest()
        say(f"registers: {sum(v is not None for v in values.values())} saved")
        planned = []      # every region's extent first, so progress has its total from the first byte
        for region in chosen:
            if region.name in sizes:
                size, extent = min(sizes[region.name], region.size), "given"
            else:
                size = readable_end(target, region.start, region.end) - region.start
                extent = "map" if size == region.size else "probed"
            if size == 0:
                say(f"{region.name}: nothing readable at {region.start:#x}; not saved")
            else:
                planned.append((region, size, extent))
        total = sum(size for _, size, _ in planned)
        saved_bytes = 0

        def count(n: int) -> None:
            nonlocal saved_bytes
            saved_bytes += n
            progress(saved_bytes, total)

        for region, size, extent in planned:
            writer.save_region(target, region, size, extent, count if progress else None)
            writer.save_manifest()
            say(f"{region.name}: {size} bytes from {region.start:#x} ({extent})")
    except (XipscopeError, OSError, KeyboardInterrupt) as e:
        saved = sum(r["size"] for r in manifest["regions"])
        if isinstance(e, OSError):   # our side: the disk, not the target
            e = XipscopeError(f"cannot write the snapshot: {e.strerror or e} ({e.filename or out_dir})")
        manifest["error"] = "interrupted" if isinstance(e, KeyboardInterrupt) else str(e)
        manifest["seconds"] = round(time.monotonic() - started, 3)
        try:
            writer.save_manifest()
        except OSError:
            pass     # the disk is full or gone: the manifest written before still says "complete": false
        if isinstance(e, KeyboardInterrupt):
            raise
        raise type(e)(f"{e}\nthe snapshot in {out_dir} is partial: it keeps {len(manifest['registers'])} "
                      f"registers and {saved} bytes of memory saved before the failure "
                      f"({MANIFEST} says \"complete\": false)") from None
    if resume and was_running:
        target.resume()
    manifest["complete"] = True
    manifest["error"] = None
    manifest["seconds"] = round(time.monotonic() - started, 3)
    writer.save_manifest()
    return manifest


def _save_description(target, out_dir: Path, manifest: dict) -> None:
    """Keep the target description files exactly as the server sent them (rsp:// records them as it reads them)."""
    files = getattr(target, "description_files", None) or {}
    if "target.xml" not in files or not all(SAFE_NAME.match(name) for name in files):
        return
    (out_dir / "tdesc").mkdir(exist_ok=True)
    for name, data in files.items():
        (out_dir / "tdesc" / name).write_bytes(data)
    manifest["target_description"] = sorted(files)


def parse_sizes(items: list[str]) -> dict[str, int]:
    """--size REGION=SIZE items (xipscope snapshot, gdb's xs snapshot) as {region: bytes}."""
    sizes = {}
    for item in items:
        name, sep, size = item.partition("=")
        if not sep or not name:
            raise XipscopeError(f"--size wants REGION=SIZE (e.g. dram=64M), got {item!r}")
        sizes[name] = parse_size(size)
    return sizes
