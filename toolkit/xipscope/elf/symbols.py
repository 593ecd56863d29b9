"""The symbol index: address <-> function/object names and file:line for an ELF or System.map, looked up vectorized."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..errors import SymbolError
from . import index_cache
from ..disk_cache import content_hash
from .elf_reader import (BIND_GLOBAL, BIND_LOCAL, BIND_WEAK, ELF_LIMIT_WHY, KIND_FUNC, KIND_OBJECT, MAX_ELF_BYTES,
                         RawSymbols, open_elf)

if TYPE_CHECKING:
    import numpy as np

_BIND_NAMES = {BIND_LOCAL: "local", BIND_GLOBAL: "global", BIND_WEAK: "weak"}
# Binding preference when several names share an address (global beats weak beats local).
_BIND_RANK = {BIND_GLOBAL: 2, BIND_WEAK: 1, BIND_LOCAL: 0}


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int
    kind: str  # "function", "object", or "label" (an untyped ELF symbol: an assembly branch target, _end)
    binding: str  # "global", "weak" or "local"

    def __str__(self) -> str:
        return f"{self.name} ({self.binding} {self.kind} at {self.address:#x}, {self.size} bytes)"


@dataclass
class Symbolized:
    """Per-address results as parallel arrays; `function` and `file` are object arrays with None where unknown."""

    address: "np.ndarray"  # uint64
    function_id: "np.ndarray"  # int32 into index.names, -1 = not inside any function
    offset: "np.ndarray"  # uint64, address minus the function's start (0 where no function)
    file_id: "np.ndarray"  # int32 into index.files, -1 = no line information
    line: "np.ndarray"  # int32, 0 where unknown
    _index: "SymbolIndex"

    def __len__(self) -> int:
        return len(self.address)

    @cached_property
    def function(self) -> "np.ndarray":
        return self._index._name_table()[self.function_id]

    @cached_property
    def file(self) -> "np.ndarray":
        return self._index._file_table()[self.file_id]

    def __getitem__(self, i: int) -> tuple[str | None, int, str | None, int]:
        """(function, offset, file, line) for the i-th address."""
        f, fi = int(self.function_id[i]), int(self.file_id[i])
        return (self._index.names[f] if f >= 0 else None, int(self.offset[i]),
                self._index.files[fi] if fi >= 0 else None, int(self.line[i]))

    def columns(self) -> dict[str, "np.ndarray"]:
        """Ready for pandas.DataFrame(...): function, offset, file, line."""
        return {"function": self.function, "offset": self.offset, "file": self.file, "line": self.line}


class SymbolIndex:
    """Sorted arrays built once per file content (and cached); build with `load_symbols`."""

    def __init__(self, arrays: dict, meta: dict, path: Path, from_cache: bool):
        self.path = path
        self.from_cache = from_cache
        self.content_hash: str = meta["content_hash"]
        self.source: str = meta["source"]  # "elf" or "system.map"
        self.arch: str | None = meta["arch"]
        self.word_size: int = meta["word_size"]
        self.little_endian: bool | None = meta["little_endian"]
        self.has_dwarf: bool = meta["has_dwarf"]
        self.names: list[str] = _unpack_strings(arrays["names_blob"])
        self.files: list[str] = _unpack_strings(arrays["files_blob"])
        self._a = arrays
        self._by_name: dict[str, list[int]] | None = None
        self._names_obj = None
        self._files_obj = None

    @property
    def elf_path(self) -> Path | None:
        """The ELF this index came from (for DWARF type lookups elsewhere); None for a System.map."""
        return self.path if self.source == "elf" else None

    def __repr__(self) -> str:
        return (f"<SymbolIndex {self.path} {self.arch or '?'} {self.word_size * 8}-bit, {len(self._a['sym_address'])} "
                f"symbols, {len(self._a['line_address'])} line rows{'' if self.has_dwarf else ', no DWARF'}>")

    # --- names -> addresses

    def symbols_named(self, name: str) -> list[Symbol]:
        """Every symbol with this exact name (several when a static name repeats across files)."""
        if self._by_name is None:
            by: dict[str, list[int]] = {}
            for i, n in enumerate(self._a["sym_name"].tolist()):
                by.setdefault(self.names[n], []).append(i)
            self._by_name = by
        return [self._symbol(i) for i in self._by_name.get(name, [])]

    def address_of(self, name: str) -> int:
        """The address of the one symbol called `name`; an error names the candidates when it is ambiguous."""
        found = self.symbols_named(name)
        addresses = sorted({s.address for s in found})
        if len(addresses) == 1:
            return addresses[0]
        if not found:
            raise SymbolError(f"{self.path}: expected a symbol named {name!r}; found none among "
                              f"{len(self._a['sym_address'])} symbols. Check the spelling, or that this is the "
                              "ELF/System.map of the kernel actually running.")
        listing = "; ".join(str(s) for s in found)
        raise SymbolError(f"{self.path}: expected one symbol named {name!r}; found {len(found)}: {listing}. "
                          "Pick one by address (index.symbols_named(name)).")

    def _symbol(self, i: int) -> Symbol:
        a = self._a
        kind = "label" if a["sym_label"][i] else "object" if a["sym_kind"][i] == KIND_OBJECT else "function"
        return Symbol(self.names[int(a["sym_name"][i])], int(a["sym_address"][i]), int(a["sym_size"][i]), kind,
                      _BIND_NAMES[int(a["sym_bind"][i])])

    def symbols_at(self, address: int) -> list[Symbol]:
        """Every symbol starting exactly at `address` (aliases), the one lookups report first."""
        import numpy as np

        sa = self._a["sym_address"]
        lo, hi = np.searchsorted(sa, [address, address + 1])
        return [self._symbol(i) for i in range(int(lo), int(hi))]

    def variable_at(self, address: int) -> str | None:
        """`name` or `name+0xoff` of the data object holding `address` (a lock, the target of a bad store), or of a
        non-function symbol exactly there (a System.map gives no sizes); None when no variable is known there."""
        symbol = self.containing(address)
        if symbol is not None and symbol.kind == "object":
            return symbol.name + (f"+{address - symbol.address:#x}" if address != symbol.address else "")
        exact = [s for s in self.symbols_at(address) if s.kind != "function"]
        return exact[0].name if exact else None

    def symbols_in(self, start: int, end: int) -> list[Symbol]:
        """Every symbol (function, object or label) starting in [start, end), in address order."""
        import numpy as np

        sa = self._a["sym_address"]
        lo, hi = np.searchsorted(sa, [start, end])
        return [self._symbol(i) for i in range(int(lo), int(hi))]

    def containing(self, address: int, look_back: int = 256) -> Symbol | None:
        """The function or object whose extent holds `address` (the latest-starting one), or None; sized symbols only."""
        import numpy as np

        a = self._a
        i = int(np.searchsorted(a["sym_address"], address, side="right")) - 1
        for j in range(i, max(i - look_back, -1), -1):
            start, size = int(a["sym_address"][j]), int(a["sym_size"][j])
            if size and not a["sym_label"][j] and start <= address < start + size:
                return self._symbol(j)
        return None

    def code_extents(self) -> list[tuple[str, int, int]]:
        """(name, start, end) of each piece of code the index attributes to one function, in address order: what
        symbolize() answers, as a list. Assembly routines without a type (the kernel's handle_exception, _start)
        and unsized ones, bounded by the next symbol, are among them, as nm/addr2line-based tools attribute them;
        the twin's ground truth per function takes its functions from here so that it names code as we do."""
        a = self._a
        return [(self.names[int(a["sym_name"][i])], int(b), int(e))
                for b, e, i in zip(a["seg_start"].tolist(), a["seg_end"].tolist(), a["seg_sym"].tolist())]

    # --- addresses -> names and lines

    def symbolize(self, addresses: "Iterable[int] | np.ndarray") -> Symbolized:
        """Function+offset and file:line for many addresses at once (two binary searches per address, all in numpy)."""
        import numpy as np

        addr = np.asarray(addresses)
        if addr.dtype != np.uint64:
            addr = addr.astype(np.uint64)
        addr = addr.reshape(-1)
        a = self._a
        seg_start, la = a["seg_start"], a["line_address"]

        if len(addr) >= 65536:
            # Random probes into a 500k-row table miss the CPU cache on every step; sorted probes walk it in order
            # (numpy reuses the previous position), which more than pays for the sort on big batches.
            order = np.argsort(addr, kind="stable")
            probe = addr[order]
            i = np.empty(len(addr), dtype=np.intp)
            i[order] = np.searchsorted(seg_start, probe, side="right")
            j = np.empty(len(addr), dtype=np.intp)
            j[order] = np.searchsorted(la, probe, side="right")
        else:
            i = np.searchsorted(seg_start, addr, side="right")
            j = np.searchsorted(la, addr, side="right")
        i -= 1
        j -= 1

        func_id = np.full(len(addr), -1, dtype=np.int32)
        offset = np.zeros(len(addr), dtype=np.uint64)
        if len(seg_start):
            ic = np.maximum(i, 0)
            inside = (i >= 0) & (addr < a["seg_end"][ic])
            sym = a["seg_sym"][ic[inside]]
            func_id[inside] = a["sym_name"][sym]
            offset[inside] = addr[inside] - a["sym_address"][sym]

        file_id = np.full(len(addr), -1, dtype=np.int32)
        line = np.zeros(len(addr), dtype=np.int32)
        if len(la):
            ok = j >= 0
            jj = j[ok]
            file_id[ok] = a["line_file"][jj]
            line[ok] = a["line_line"][jj]
            line[file_id < 0] = 0
        return Symbolized(addr, func_id, offset, file_id, line, self)

    def describe(self, address: int) -> str:
        """`func+0x12 (path/file.c:34)`, or as much of it as is known."""
        func, off, file, line = self.symbolize([address])[0]
        text = f"{func}+{off:#x}" if func is not None else f"{address:#x}"
        if file is not None:
            text += f" ({file}:{line})"
        return text

    def _name_table(self):
        # Object arrays with a trailing None so id -1 maps to None in one fancy-indexing step.
        if self._names_obj is None:
            import numpy as np

            self._names_obj = np.array(self.names + [None], dtype=object)
        return self._names_obj

    def _file_table(self):
        if self._files_obj is None:
            import numpy as np

            self._files_obj = np.array(self.files + [None], dtype=object)
        return self._files_obj


def load_symbols(path: Path | str, cache_dir: Path | str | None = None) -> SymbolIndex:
    """The index for an ELF or a System.map (told apart by content), from the cache when this exact content was seen."""
    from ..files import read_bounded

    path = Path(path)
    with open_elf(path, "a readable ELF or System.map") as f:     # a regular file of a sane size, or a SymbolError
        try:
            key = content_hash(path)   # remembered per file identity: a warm load doesn't read the file
            directory = index_cache.cache_dir(cache_dir)
            hit = index_cache.load(directory, key)
            if hit is not None and _valid(*hit):
                arrays, meta = hit
                return SymbolIndex(arrays, meta, path, from_cache=True)
            data = read_bounded(f, path, "a readable ELF or System.map", MAX_ELF_BYTES, ELF_LIMIT_WHY, SymbolError)
        except OSError as e:
            raise SymbolError(f"{path}: expected a readable ELF or System.map; found {e.strerror or e}. "
                              "Check the path.") from None
    arrays, meta = _build(path, data)
    meta["content_hash"] = key
    index_cache.store(directory, key, arrays, meta)
    return SymbolIndex(arrays, meta, path, from_cache=False)


def _build(path: Path, data: bytes) -> tuple[dict, dict]:
    from ..files import check_size
    from .system_map import MAX_SYSTEM_MAP_BYTES, looks_like_system_map, read_system_map

    if data[:4] == b"\x7fELF":
        from .elf_reader import read_elf

        raw = read_elf(path, data)
        source = "elf"
    elif looks_like_system_map(data):
        check_size(path, "a System.map", len(data), MAX_SYSTEM_MAP_BYTES,
                   "a System.map may have (an RP2350 kernel's is under 1 MB)", SymbolError)
        raw = read_system_map(path, data)
        source = "system.map"
    else:
        raise SymbolError(f"{path}: expected an ELF (starting with \\x7fELF) or a System.map (lines 'ADDRESS TYPE "
                          f"NAME'); found {data[:16]!r}{'...' if len(data) > 16 else ''} ({len(data)} bytes). "
                          "Pass the vmlinux or System.map of the kernel build.")
    arrays = _arrays_from_raw(raw, infer_from_all=(source == "system.map"))
    meta = {"source": source, "arch": raw.arch or None, "word_size": raw.word_size,
            "little_endian": raw.little_endian if source == "elf" else None, "has_dwarf": raw.has_dwarf}
    return arrays, meta


def _arrays_from_raw(raw: RawSymbols, infer_from_all: bool) -> dict:
    import numpy as np

    n = len(raw.names)
    # Distinct names, stored once: the index refers to them by number.
    name_ids: dict[str, int] = {}
    sym_name = np.fromiter((name_ids.setdefault(s, len(name_ids)) for s in raw.names), dtype=np.int32, count=n)
    names = list(name_ids)

    # Sort by address; at one address the preferred alias comes first, so it is the one lookups report: typed, then
    # not a linker section marker (a System.map says __do_softirq and __softirqentry_text_start at one address), then
    # the name with fewest leading underscores (memmove over __memmove, memset over __memset: the kernel makes the
    # public name a weak alias of the implementation), then global > weak > local, then first by name.
    bind_rank = np.array([_BIND_RANK[b] for b in raw.bind.tolist()], dtype=np.int8)
    name_rank = np.empty(len(names), dtype=np.int64)
    name_rank[np.array(sorted(range(len(names)), key=names.__getitem__), dtype=np.int64)] = np.arange(len(names))
    underscores = np.array([len(s) - len(s.lstrip("_")) for s in names], dtype=np.int64)
    markers = np.array([_is_marker(s) for s in names], dtype=bool)
    order = np.lexsort((name_rank[sym_name], -bind_rank, underscores[sym_name], markers[sym_name], ~raw.typed,
                        raw.address))
    address, size, kind = raw.address[order], raw.size[order].copy(), raw.kind[order]
    bind, limit, sym_name, typed = raw.bind[order], raw.limit[order], sym_name[order], raw.typed[order]

    # Unsized symbols (labels, System.map entries) reach to the next symbol at a higher address, never past their
    # section's end. ELF functions look only at other code; a System.map has nothing else to go on.
    unsized = size == 0
    if infer_from_all:
        pool = np.unique(address)
        grow = unsized
    else:
        pool = np.unique(address[kind == KIND_FUNC])
        grow = unsized & (kind == KIND_FUNC)
    if len(pool):
        nxt_i = np.searchsorted(pool, address, side="right")
        nxt = np.where(nxt_i < len(pool), pool[np.minimum(nxt_i, len(pool) - 1)], limit)
        nxt = np.minimum(nxt, limit)
        size = np.where(grow & (nxt > address), nxt - address, size).astype(np.uint64)

    seg_start, seg_end, seg_sym = _function_segments(address, size, kind, typed)
    lines = raw.lines
    return {
        "sym_address": address, "sym_size": size, "sym_kind": kind, "sym_bind": bind, "sym_name": sym_name,
        "sym_label": (~typed) & (not infer_from_all),
        "seg_start": seg_start, "seg_end": seg_end, "seg_sym": seg_sym,
        "line_address": lines.address if lines else np.zeros(0, np.uint64),
        "line_file": lines.file if lines else np.zeros(0, np.int32),
        "line_line": lines.line if lines else np.zeros(0, np.int32),
        "names_blob": _pack_strings(names), "files_blob": _pack_strings(lines.files if lines else []),
    }


_MARKERS = frozenset({"_text", "_stext", "_etext", "_sinittext", "_einittext", "_sdata", "_edata", "_end", "_start"})


def _is_marker(name: str) -> bool:
    """Linker-script boundary symbols (__sched_text_start, _etext): they label a place, not code."""
    if name in _MARKERS:
        return name != "_start"  # the entry point is real code
    return name.startswith("_") and name.endswith(("_start", "_end", "_begin"))


def _function_segments(address, size, kind, typed):
    """Non-overlapping [start, end) pieces of code, each owned by one function, for a single searchsorted lookup.

    Typed functions (ELF STT_FUNC) own their whole extent even over bare labels inside them: the branch targets in
    assembly routines (memmove's byte_copy_reverse) are not where a person or addr2line says the time went. Labels
    (and every System.map entry, which carries no type) own only code no typed function covers. Within a tier the
    innermost (latest starting) function wins, and among aliases at one address the first in index order.
    """
    import numpy as np

    funcs = np.nonzero((kind == KIND_FUNC) & (size > 0))[0]
    starts = address[funcs].tolist()
    ends = (address[funcs] + size[funcs]).tolist()
    tiers = np.where(typed[funcs], 0, 1).tolist()
    ids = funcs.tolist()
    bounds = sorted(set(starts) | set(ends))
    out_s: list[int] = []
    out_e: list[int] = []
    out_id: list[int] = []
    heap: list[tuple[int, int, int, int, int]] = []  # (tier, -start, order, end, id): the owner on top
    k = 0
    for bi, b in enumerate(bounds[:-1]):
        while k < len(ids) and starts[k] == b:
            heapq.heappush(heap, (tiers[k], -starts[k], k, ends[k], ids[k]))
            k += 1
        # Expired entries may linger below the top; they are dropped when they surface, before they could own a piece.
        while heap and heap[0][3] <= b:
            heapq.heappop(heap)
        if not heap:
            continue
        owner = heap[0][4]
        nb = bounds[bi + 1]
        if out_id and out_id[-1] == owner and out_e[-1] == b:
            out_e[-1] = nb
        else:
            out_s.append(b)
            out_e.append(nb)
            out_id.append(owner)
    return (np.asarray(out_s, dtype=np.uint64), np.asarray(out_e, dtype=np.uint64), np.asarray(out_id, dtype=np.int32))


def _valid(arrays: dict, meta: dict) -> bool:
    """Cheap consistency checks so a cache entry that decodes but makes no sense is rebuilt, not trusted."""
    import numpy as np

    try:
        n = len(arrays["sym_address"])
        if not all(len(arrays[k]) == n for k in ("sym_size", "sym_kind", "sym_bind", "sym_name", "sym_label")):
            return False
        if not (len(arrays["seg_start"]) == len(arrays["seg_end"]) == len(arrays["seg_sym"])):
            return False
        if not (len(arrays["line_address"]) == len(arrays["line_file"]) == len(arrays["line_line"])):
            return False
        for k in ("seg_start", "line_address"):
            v = arrays[k]
            if len(v) > 1 and not bool(np.all(v[1:] >= v[:-1])):
                return False
        names = _unpack_strings(arrays["names_blob"])
        files = _unpack_strings(arrays["files_blob"])
        if n and (arrays["sym_name"].min() < 0 or arrays["sym_name"].max() >= len(names)):
            return False
        if len(arrays["seg_sym"]) and (arrays["seg_sym"].min() < 0 or arrays["seg_sym"].max() >= n):
            return False
        lf = arrays["line_file"]
        if len(lf) and (lf.min() < -1 or lf.max() >= len(files)):
            return False
        return all(k in meta for k in ("content_hash", "source", "arch", "word_size", "little_endian", "has_dwarf"))
    except (KeyError, TypeError, ValueError, UnicodeDecodeError):
        return False


def _pack_strings(strings: list[str]) -> "np.ndarray":
    # One NUL-joined byte blob: loads in a single split instead of a pickled object array.
    import numpy as np

    # Each string is NUL-terminated so an empty string survives the round trip.
    blob = "".join(s + "\0" for s in strings).encode("utf-8", "surrogateescape")
    return np.frombuffer(blob, dtype=np.uint8)


def _unpack_strings(arr) -> list[str]:
    return arr.tobytes().decode("utf-8", "surrogateescape").split("\0")[:-1]
