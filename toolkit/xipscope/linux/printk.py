"""Read the kernel log out of a target's memory: the printk ring buffer (5.10+) and the older `__log_buf` format.

Follows kernel/printk/printk_ringbuffer.{h,c} of Linux 6.1 (unchanged in layout up to 6.18): start from the pointer
`prb`, walk descriptor ids from tail to head, accept a record only when the id in its state word matches, and find
its text by the logical positions of its data block, which may wrap to the start of the data ring.
"""

from __future__ import annotations

import os
import struct
from dataclasses import asdict, dataclass, field

from ..errors import FormatError, TargetError, XipscopeError

LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
LOG_NEWLINE = 2
LOG_CONT = 8

# Descriptor states (top two bits of the state word).
DESC_RESERVED, DESC_COMMITTED, DESC_FINALIZED, DESC_REUSABLE = range(4)

MAX_COUNT_BITS = 24   # 16 M descriptors: far beyond any kernel config, small enough to refuse garbage quickly
MAX_SIZE_BITS = 28    # 256 MiB of text


@dataclass
class PrintkRecord:
    seq: int
    ts_ns: int
    level: int
    facility: int
    flags: int
    caller_id: int | None     # None when the kernel does not record callers
    text: str
    dev_info: dict | None = None

    @property
    def caller(self) -> str | None:
        """`T<pid>` or `C<cpu>` as CONFIG_PRINTK_CALLER prints it."""
        if self.caller_id is None:
            return None
        kind = "C" if self.caller_id & 0x80000000 else "T"
        return f"{kind}{self.caller_id & 0x7FFFFFFF}"

    def to_json(self) -> dict:
        out = asdict(self)
        del out["caller_id"]
        out["caller"] = self.caller
        return out


@dataclass
class PrintkLog:
    """What the ring held: the records in order, and what could not be read (kept, not raised)."""
    records: list[PrintkRecord]
    format: str                       # "printk_ringbuffer" or "log_buf"
    lost: int = 0                     # records whose text was overwritten or whose descriptor was inconsistent
    notes: list[str] = field(default_factory=list)


def parse_levels(text: str) -> set[int]:
    """`err,warn` or `0-3` or `3,4`: the log levels to keep, as dmesg(1) names them (an argparse `type=`, for
    `xipscope dmesg --level` and `xs dmesg --level`)."""
    import argparse

    levels: set[int] = set()
    for item in text.split(","):
        item = item.strip().lower()
        if item in LEVEL_NAMES:
            levels.add(LEVEL_NAMES.index(item))
        elif "-" in item and all(p.isdigit() for p in item.split("-", 1)):
            low, high = map(int, item.split("-", 1))
            levels.update(range(low, high + 1))
        elif item.isdigit() and int(item) < 8:
            levels.add(int(item))
        else:
            raise argparse.ArgumentTypeError(
                f"unknown level {item!r}; use {', '.join(LEVEL_NAMES)} or 0-7, comma-separated")
    return levels


def format_timestamp(ts_ns: int) -> str:
    """`[%5lu.%06lu]` by the kernel's integer arithmetic (lx-dmesg's float is off by 1 us on some lines)."""
    return "[%5d.%06d]" % (ts_ns // 1_000_000_000, (ts_ns % 1_000_000_000) // 1000)


def format_record(record: PrintkRecord, show_caller: bool) -> list[str]:
    """The lines the console prints for one record: the prefix repeats on every line of a multi-line text."""
    prefix = format_timestamp(record.ts_ns)
    if show_caller and record.caller is not None:
        prefix += "[%6s]" % record.caller
    return [f"{prefix} {line}" for line in record.text.split("\n")]


def format_log(log: PrintkLog, levels: set[int] | None = None) -> list[str]:
    """The console's lines for every record (of the given levels): what `xipscope dmesg` and `xs dmesg` print."""
    show_caller = any(r.caller_id is not None for r in log.records)
    return [line for record in log.records if levels is None or record.level in levels
            for line in format_record(record, show_caller)]


# -- layouts ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bitfield:
    byte: int      # offset of the byte (or storage unit) holding it
    shift: int     # position of its least significant bit, little-endian
    bits: int


@dataclass(frozen=True)
class RingLayout:
    """Offsets of the printk ring structures. Built in for ILP32/LP64, or read from DWARF."""
    word: int
    # struct printk_ringbuffer (desc_ring first, then text_data_ring)
    count_bits: int
    descs: int
    infos: int
    head_id: int
    tail_id: int
    size_bits: int
    data: int
    ring_size: int
    # struct prb_desc
    desc_size: int
    state_var: int
    lpos_begin: int
    lpos_next: int
    # struct printk_info
    info_size: int
    seq: int
    ts_nsec: int
    text_len: int
    facility: int
    flags: Bitfield
    level: Bitfield
    caller_id: int
    subsystem: int
    subsystem_len: int
    device: int
    device_len: int


def builtin_layout(word: int) -> RingLayout:
    """The layout every 5.10–6.18 kernel has when `unsigned long` is `word` bytes (see linux-kernel.md's table)."""
    if word not in (4, 8):
        raise FormatError(f"no built-in printk layout for a {word * 8}-bit kernel; give an ELF with DWARF")
    w = word
    return RingLayout(
        word=w, count_bits=0, descs=w, infos=2 * w, head_id=3 * w, tail_id=4 * w,
        size_bits=6 * w, data=7 * w, ring_size=11 * w,
        desc_size=3 * w, state_var=0, lpos_begin=w, lpos_next=2 * w,
        info_size=88, seq=0, ts_nsec=8, text_len=16, facility=18,
        flags=Bitfield(19, 0, 5), level=Bitfield(19, 5, 3), caller_id=20,
        subsystem=24, subsystem_len=16, device=40, device_len=48)


# -- reading ---------------------------------------------------------------------------------------------------------

class _Reader:
    """Unsigned integer fields, in the target's byte order, out of byte strings read from it."""

    def __init__(self, word: int, little_endian: bool = True):
        e = "<" if little_endian else ">"
        self.word = word
        self._u = {1: struct.Struct(e + "B"), 2: struct.Struct(e + "H"), 4: struct.Struct(e + "I"),
                   8: struct.Struct(e + "Q")}

    def u(self, buf, offset: int, size: int) -> int:
        return self._u[size].unpack_from(buf, offset)[0]

    def ulong(self, buf, offset: int) -> int:
        return self._u[self.word].unpack_from(buf, offset)[0]

    def bitfield(self, buf, bf: Bitfield) -> int:
        return (buf[bf.byte] >> bf.shift) & ((1 << bf.bits) - 1)


def _read(target, address: int, size: int, what: str) -> bytes:
    try:
        return target.read_memory(address, size)
    except TargetError as e:
        raise TargetError(f"reading {what} ({size} bytes at {address:#x}): {e}") from None


def _cstring(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def read_printk_ring(target, prb_address: int, layout: RingLayout, has_caller: bool,
                     little_endian: bool = True) -> PrintkLog:
    """Records of the ring whose `struct printk_ringbuffer` sits at `prb_address`, oldest first."""
    r = _Reader(layout.word, little_endian)
    bits = layout.word * 8
    word_mask = (1 << bits) - 1
    id_mask = word_mask >> 2
    state_shift = bits - 2

    ring = _read(target, prb_address, layout.ring_size, "struct printk_ringbuffer")
    count_bits = r.u(ring, layout.count_bits, 4)
    size_bits = r.u(ring, layout.size_bits, 4)
    if not 0 < count_bits <= MAX_COUNT_BITS or not 0 < size_bits <= MAX_SIZE_BITS:
        raise FormatError(f"printk ring at {prb_address:#x} has count_bits={count_bits}, size_bits={size_bits}: "
                          f"not a printk_ringbuffer (wrong ELF for this memory, or a corrupt image?)")
    count, size = 1 << count_bits, 1 << size_bits
    descs_address, infos_address = r.ulong(ring, layout.descs), r.ulong(ring, layout.infos)
    data_address = r.ulong(ring, layout.data)
    head_id, tail_id = r.ulong(ring, layout.head_id) & id_mask, r.ulong(ring, layout.tail_id) & id_mask

    # A few large reads rather than one per record.
    descs = _read(target, descs_address, count * layout.desc_size, "the descriptor array")
    infos = _read(target, infos_address, count * layout.info_size, "the printk_info array")
    data = _read(target, data_address, size, "the text data ring")

    log = PrintkLog([], "printk_ringbuffer")
    ident = tail_id
    for _ in range(count):
        index = ident & (count - 1)
        sv = r.ulong(descs, index * layout.desc_size + layout.state_var)
        state = sv >> state_shift
        if (sv & id_mask) != ident:
            log.lost += 1   # between tail and head every slot should hold its id: this one is inconsistent
        elif state in (DESC_COMMITTED, DESC_FINALIZED):
            record = _ring_record(r, layout, infos, index, descs, data, size_bits, has_caller, ident, word_mask)
            if record is None:
                log.lost += 1
            else:
                log.records.append(record)
        # DESC_REUSABLE: retired to make room, its text may be gone (the kernel skips it too);
        # DESC_RESERVED: being written right now, nothing to print yet.
        if ident == head_id:
            break
        ident = (ident + 1) & id_mask
    else:
        log.notes.append(f"stopped after {count} descriptors without reaching head_id {head_id:#x}")
    if log.lost:
        log.notes.append(f"{log.lost} record(s) had no readable text (overwritten or inconsistent)")
    return log


def _ring_record(r: _Reader, layout: RingLayout, infos: bytes, index: int, descs: bytes, data: bytes,
                 size_bits: int, has_caller: bool, ident: int, word_mask: int) -> PrintkRecord | None:
    base = index * layout.info_size
    d = index * layout.desc_size
    begin = r.ulong(descs, d + layout.lpos_begin)
    nxt = r.ulong(descs, d + layout.lpos_next)
    text_len = r.u(infos, base + layout.text_len, 2)
    text_bytes = _block_text(r, data, size_bits, begin, nxt, ident, word_mask)
    if text_bytes is None:
        return None
    text_bytes = text_bytes[:text_len]
    info = memoryview(infos)[base:base + layout.info_size]
    subsystem = _cstring(bytes(info[layout.subsystem:layout.subsystem + layout.subsystem_len]))
    device = _cstring(bytes(info[layout.device:layout.device + layout.device_len]))
    return PrintkRecord(
        seq=r.u(infos, base + layout.seq, 8),
        ts_ns=r.u(infos, base + layout.ts_nsec, 8),
        level=r.bitfield(info, layout.level),
        facility=r.u(infos, base + layout.facility, 1),
        flags=r.bitfield(info, layout.flags),
        caller_id=r.u(infos, base + layout.caller_id, 4) if has_caller else None,
        text=text_bytes.decode("utf-8", "replace"),
        dev_info={"subsystem": subsystem, "device": device} if subsystem or device else None,
    )


def _block_text(r: _Reader, data: bytes, size_bits: int, begin: int, nxt: int, ident: int,
                word_mask: int) -> bytes | None:
    """The text of one data block, as get_data() finds it; None when the data is lost or inconsistent."""
    if begin & 1 and nxt & 1:
        return b"" if begin == 3 and nxt == 3 else None   # (3,3) is an empty line, (1,1) lost data
    size = 1 << size_bits
    mask = size - 1
    if begin >> size_bits == nxt >> size_bits and begin < nxt:
        start, length = begin & mask, nxt - begin
    elif ((begin + size) & word_mask) >> size_bits == nxt >> size_bits:
        start, length = 0, nxt & mask   # wrapped: the block was written from the start of the ring
    else:
        return None
    if begin % r.word or nxt % r.word or length < r.word or start + length > size:
        return None
    if r.ulong(data, start) & (word_mask >> 2) != ident:
        return None   # the block belongs to another record: overwritten since
    return data[start + r.word:start + length]


# -- the pre-5.10 format ---------------------------------------------------------------------------------------------

def read_log_buf(target, log_buf: int, log_buf_len: int, first_idx: int, next_idx: int,
                 little_endian: bool = True, first_seq: int = 0) -> PrintkLog:
    """Records of the pre-5.10 `__log_buf`: `struct printk_log` headers walked from log_first_idx to log_next_idx.

    The header is 16 bytes, or with CONFIG_PRINTK_CALLER 20 (packed, on architectures with efficient unaligned
    access) or 24 (naturally aligned, as on RISC-V); records are padded to 4 or 8 bytes likewise. Which of these
    the kernel used is decided by the one walk in which every record's `len` is exactly its padded size.
    """
    if not 0 < log_buf_len <= 1 << MAX_SIZE_BITS:
        raise FormatError(f"log_buf_len {log_buf_len} is not a plausible log buffer size")
    if first_idx >= log_buf_len or next_idx >= log_buf_len:
        raise FormatError(f"log_first_idx {first_idx} / log_next_idx {next_idx} lie outside the "
                          f"{log_buf_len}-byte log buffer")
    buf = _read(target, log_buf, log_buf_len, "__log_buf")
    e = "<" if little_endian else ">"
    errors = []
    for header, align, has_caller in ((16, 4, False), (16, 8, False), (20, 4, True), (24, 8, True)):
        try:
            records = _walk_log_buf(buf, first_idx, next_idx, header, align, has_caller, e, first_seq)
        except FormatError as err:
            errors.append(f"{header}-byte header: {err}")
            continue
        return PrintkLog(records, "log_buf")
    raise FormatError("the log buffer fits no known record header: " + "; ".join(errors))


def _walk_log_buf(buf: bytes, first: int, nxt: int, header: int, align: int, has_caller: bool,
                  e: str, first_seq: int) -> list[PrintkRecord]:
    fmt = struct.Struct(e + "QHHHBB" + ("I" if has_caller else ""))
    records: list[PrintkRecord] = []
    idx, wrapped = first, False
    for _ in range(len(buf) // header + 2):
        if idx == nxt and (records or wrapped or first == nxt):
            return records
        if idx + header > len(buf):
            if wrapped:
                raise FormatError(f"record at {idx} runs past the end of the buffer")
            idx, wrapped = 0, True   # no room for a header: the kernel wrapped without a marker
            continue
        ts, length, text_len, dict_len, facility, flags_level, *caller = fmt.unpack_from(buf, idx)
        if length == 0:   # wrap marker: the next record starts at offset 0
            if wrapped:
                raise FormatError(f"second wrap marker at {idx}")
            idx, wrapped = 0, True
            continue
        expected = -(-(header + text_len + dict_len) // align) * align
        if length != expected or idx + length > len(buf):
            raise FormatError(f"record at {idx} has len {length}, expected {expected}")
        text = buf[idx + header:idx + header + text_len].decode("utf-8", "replace")
        records.append(PrintkRecord(first_seq + len(records), ts, flags_level >> 5, facility, flags_level & 0x1F,
                                    caller[0] if has_caller else None, text))
        idx += length
    raise FormatError("the walk did not reach log_next_idx")


# -- from symbols to records -----------------------------------------------------------------------------------------

_RING_STRUCTS = {"printk_ringbuffer", "prb_desc_ring", "prb_data_ring", "prb_desc", "prb_data_blk_lpos",
                 "printk_info", "dev_printk_info"}
FACTS_CACHE_VERSION = 1


def dwarf_layout(elf_path, word: int) -> RingLayout:
    """The ring layout as this kernel's DWARF describes it (any word size, any field order)."""
    from ..elf.struct_layout import read_unit

    s, _ = read_unit(elf_path, "prb_read_valid", _RING_STRUCTS)
    rb, desc_ring, data_ring = s["printk_ringbuffer"], s["prb_desc_ring"], s["prb_data_ring"]
    desc, lpos, info, dev = s["prb_desc"], s["prb_data_blk_lpos"], s["printk_info"], s["dev_printk_info"]
    dr, tr = rb.member("desc_ring").offset, rb.member("text_data_ring").offset
    blk = desc.member("text_blk_lpos").offset
    dev_info = info.member("dev_info").offset
    flags, level = info.member("flags"), info.member("level")
    return RingLayout(
        word=word,
        count_bits=dr + desc_ring.member("count_bits").offset, descs=dr + desc_ring.member("descs").offset,
        infos=dr + desc_ring.member("infos").offset, head_id=dr + desc_ring.member("head_id").offset,
        tail_id=dr + desc_ring.member("tail_id").offset,
        size_bits=tr + data_ring.member("size_bits").offset, data=tr + data_ring.member("data").offset,
        ring_size=rb.size,
        desc_size=desc.size, state_var=desc.member("state_var").offset,
        lpos_begin=blk + lpos.member("begin").offset, lpos_next=blk + lpos.member("next").offset,
        info_size=info.size, seq=info.member("seq").offset, ts_nsec=info.member("ts_nsec").offset,
        text_len=info.member("text_len").offset, facility=info.member("facility").offset,
        flags=Bitfield(flags.offset, flags.bit_shift, flags.bit_size),
        level=Bitfield(level.offset, level.bit_shift, level.bit_size),
        caller_id=info.member("caller_id").offset,
        subsystem=dev_info + dev.member("subsystem").offset, subsystem_len=dev.member("subsystem").size,
        device=dev_info + dev.member("device").offset, device_len=dev.member("device").size)


def _config_beside(path) -> dict[str, str] | None:
    """The kernel .config next to vmlinux / System.map, as build trees and distro /boot directories keep it."""
    from pathlib import Path

    folder = Path(path).parent
    for candidate in (folder / ".config", folder / "config"):
        if candidate.is_file():
            options = {}
            for line in candidate.read_text(errors="replace").splitlines():
                if line.startswith("CONFIG_") and "=" in line:
                    key, value = line.split("=", 1)
                    options[key] = value
            return options
    return None


@dataclass
class KernelLogFacts:
    """Everything reading the log needs from a kernel's symbols, small enough to cache as JSON per kernel build.

    With it, `xipscope dmesg` on a kernel seen before opens no ELF and imports no numpy.
    """
    format: str                        # "printk_ringbuffer" or "log_buf"
    addresses: dict[str, int]          # prb, or log_buf / log_buf_len / log_first_idx / log_next_idx / log_first_seq
    word_size: int
    little_endian: bool
    layout: RingLayout | None          # the ring's layout (from DWARF, or built in)
    has_caller: bool | None            # CONFIG_PRINTK_CALLER, None when neither DWARF nor a .config tells


def _facts_from_symbols(symbols) -> KernelLogFacts:
    little = symbols.little_endian is not False   # a System.map doesn't say; RISC-V and Arm are little-endian
    word = symbols.word_size
    if symbols.symbols_named("prb"):
        if symbols.has_dwarf:
            from ..elf.struct_layout import read_unit

            layout = dwarf_layout(symbols.path, word)
            # print_caller() exists (as a function or an inlined one) only with CONFIG_PRINTK_CALLER.
            _, present = read_unit(symbols.path, "vprintk_store", set(), {"print_caller"})
            has_caller = "print_caller" in present
        else:
            layout = builtin_layout(word)
            config = _config_beside(symbols.path)
            has_caller = None if config is None else config.get("CONFIG_PRINTK_CALLER") == "y"
        return KernelLogFacts("printk_ringbuffer", {"prb": symbols.address_of("prb")}, word, little, layout,
                              has_caller)
    if symbols.symbols_named("log_first_idx"):
        names = ["log_buf", "log_buf_len", "log_first_idx", "log_next_idx"]
        names += ["log_first_seq"] if symbols.symbols_named("log_first_seq") else []
        return KernelLogFacts("log_buf", {n: symbols.address_of(n) for n in names}, word, little, None, None)
    raise FormatError(f"{symbols.path}: neither `prb` (Linux 5.10+) nor `log_first_idx` (older kernels) is among "
                      f"its symbols; is it the vmlinux or System.map of the kernel running on the target?")


def kernel_log_facts(symbol_file) -> KernelLogFacts:
    """The facts for this vmlinux or System.map: from the cache (keyed by its content hash), else from its symbols."""
    import json

    from ..disk_cache import cache_root, content_hash

    from ..errors import SymbolError

    try:
        digest = content_hash(symbol_file)
    except OSError as e:
        raise SymbolError(f"{symbol_file}: expected the kernel's vmlinux or System.map; "
                          f"cannot read it ({e.strerror or e})") from None
    cached = cache_root() / "printk-facts" / f"{digest}-v{FACTS_CACHE_VERSION}.json"
    try:
        raw = json.loads(cached.read_text())
        if raw["layout"] is not None:
            layout = raw["layout"]
            layout["flags"], layout["level"] = Bitfield(**layout["flags"]), Bitfield(**layout["level"])
            raw["layout"] = RingLayout(**layout)
        return KernelLogFacts(**raw)
    except (OSError, ValueError, KeyError, TypeError):
        pass   # absent or from another version: derive again
    from ..elf.symbols import load_symbols

    facts = _facts_from_symbols(load_symbols(symbol_file))
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(facts)))
    tmp.replace(cached)
    return facts


def read_kernel_log(target, facts: KernelLogFacts, caller: bool | None = None) -> PrintkLog:
    """The kernel log in `target`'s memory.

    `caller`: whether the kernel records callers (CONFIG_PRINTK_CALLER); None takes it from the facts, and where
    they can't tell, assumes not and says so in the log's notes.
    """
    order = "little" if facts.little_endian else "big"

    def read_uint(name: str, size: int) -> int:
        return int.from_bytes(_read(target, facts.addresses[name], size, name), order)

    if facts.format == "printk_ringbuffer":
        notes = []
        if caller is None and facts.has_caller is None:
            notes.append("could not tell whether the kernel records callers (no DWARF, no .config beside "
                         "the symbols); printing without; pass --caller if it has CONFIG_PRINTK_CALLER")
        show = caller if caller is not None else bool(facts.has_caller)
        prb = read_uint("prb", facts.word_size)
        try:
            log = read_printk_ring(target, prb, facts.layout, show, facts.little_endian)
        except XipscopeError as e:
            raise type(e)(f"{e}\n(`prb` at {facts.addresses['prb']:#x} holds {prb:#x}; if that is no printk ring, "
                          f"the symbols are not those of the kernel running on the target)") from None
        log.notes[:0] = notes
        return log
    first_seq = read_uint("log_first_seq", 8) if "log_first_seq" in facts.addresses else 0
    return read_log_buf(target, read_uint("log_buf", facts.word_size), read_uint("log_buf_len", 4),
                        read_uint("log_first_idx", 4), read_uint("log_next_idx", 4), facts.little_endian, first_seq)


# -- following the log as the kernel writes it -----------------------------------------------------------------------

@dataclass
class LostRecords:
    """Records the kernel wrote and then overwrote before a poll could read them."""
    count: int


@dataclass
class PrintkCursor:
    """Where a follower is in the log: the next descriptor id to read, and what it knows of the ring.

    The ring's geometry is read once (and again when `prb` changes: a kernel that grows its log buffer at boot moves
    it); an idle poll then reads only `prb` and the head and tail ids.
    """
    facts: KernelLogFacts
    show_caller: bool
    prb: int | None = None           # the value of `prb` the geometry below belongs to
    count_bits: int = 0
    size_bits: int = 0
    descs: int = 0
    infos: int = 0
    data: int = 0
    next_id: int | None = None       # the next descriptor id to print; None: start at the tail (or after the head)
    from_start: bool = True
    last_seq: int = -1               # the seq printed last: a moved ring is read on from after it
    log_buf_next_seq: int | None = None    # the pre-5.10 format: the next seq to print


def open_printk_cursor(target, facts: KernelLogFacts, caller: bool | None = None,
                       from_start: bool = True) -> PrintkCursor:
    """A cursor at the oldest record in the ring (from_start) or after the newest (only what is written next)."""
    show = caller if caller is not None else bool(facts.has_caller)
    return PrintkCursor(facts, show, from_start=from_start)


def _poll_reads(target, cursor: PrintkCursor, body):
    """body() with the target's memory readable: while the core runs where the transport says it reads memory then
    (READ_WHILE_RUNNING: System Bus Access through pyOCD, the twin), else inside one brief halt; a halted target
    stays halted."""
    from ..targets.base import READ_WHILE_RUNNING, RUN_CONTROL

    capabilities = getattr(target, "capabilities", ())
    if RUN_CONTROL not in capabilities or READ_WHILE_RUNNING in capabilities or target.state() != "running":
        return body()
    target.halt()
    try:
        return body()
    finally:
        target.resume()


def poll_printk_records(target, cursor: PrintkCursor) -> list:
    """The records written since the cursor's last poll, oldest first, with a LostRecords where some were
    overwritten before this poll could read them; advances the cursor. A record still being written is left for
    the next poll."""
    if cursor.facts.format != "printk_ringbuffer":
        return _poll_log_buf(target, cursor)
    events, state = _poll_reads(target, cursor, lambda: _read_new_records(target, cursor))
    for name, value in state.items():
        setattr(cursor, name, value)
    return events


def _read_new_records(target, cursor: PrintkCursor) -> tuple[list, dict]:
    """One poll's reads, touching nothing in the cursor: (events, updates)."""
    facts, layout = cursor.facts, cursor.facts.layout
    order = "little" if facts.little_endian else "big"
    r = _Reader(layout.word, facts.little_endian)
    word_mask = (1 << layout.word * 8) - 1
    id_mask = word_mask >> 2
    state_shift = layout.word * 8 - 2
    prb = int.from_bytes(_read(target, facts.addresses["prb"], facts.word_size, "prb"), order)
    geometry = {}
    if prb != cursor.prb:
        ring = _read(target, prb, layout.ring_size, "struct printk_ringbuffer")
        count_bits, size_bits = r.u(ring, layout.count_bits, 4), r.u(ring, layout.size_bits, 4)
        if not 0 < count_bits <= MAX_COUNT_BITS or not 0 < size_bits <= MAX_SIZE_BITS:
            raise FormatError(f"printk ring at {prb:#x} has count_bits={count_bits}, size_bits={size_bits}: "
                              f"not a printk_ringbuffer (wrong ELF for this memory?)")
        geometry = {"prb": prb, "count_bits": count_bits, "size_bits": size_bits, "descs": r.ulong(ring, layout.descs),
                    "infos": r.ulong(ring, layout.infos), "data": r.ulong(ring, layout.data)}
        # A new ring (the first poll, or the kernel moved its log): read it from its tail, skipping what was printed.
        geometry["next_id"] = None
    g = {k: geometry.get(k, getattr(cursor, k)) for k in ("prb", "count_bits", "size_bits", "descs", "infos", "data",
                                                          "next_id")}
    count, size = 1 << g["count_bits"], 1 << g["size_bits"]
    ids_at = min(layout.head_id, layout.tail_id)
    ids_len = max(layout.head_id, layout.tail_id) + layout.word - ids_at

    def head_and_tail() -> tuple[int, int]:
        raw = _read(target, prb + ids_at, ids_len, "the ring's head and tail ids")
        return (r.ulong(raw, layout.head_id - ids_at) & id_mask, r.ulong(raw, layout.tail_id - ids_at) & id_mask)

    head_id, tail_id = head_and_tail()
    fresh = g["next_id"] is None                   # nothing of this ring read yet: what was retired is no loss
    next_id = g["next_id"]
    if fresh:
        next_id = tail_id if cursor.from_start or cursor.last_seq >= 0 else (head_id + 1) & id_mask
    events: list = []
    lost = 0
    # ids next_id..head_id are new; next_id one past the head means nothing is.
    pending = 0 if next_id == (head_id + 1) & id_mask else ((head_id - next_id) & id_mask) + 1
    behind = (tail_id - next_id) & id_mask                   # ids the tail has passed since the last poll
    if pending and behind and behind < pending:
        if not fresh:
            lost += behind
        next_id, pending = tail_id, pending - behind
    pending = min(pending, count)                            # head and tail read apart by a busy kernel
    updates = dict(geometry)
    if not pending:
        updates["next_id"] = next_id
        return events, updates

    def span(base: int, item: int, what: str) -> bytes:
        """The array entries of ids next_id..head_id, read as one or two blocks, at their index's place."""
        buf = bytearray(count * item)
        first = next_id & (count - 1)
        n1 = min(pending, count - first)
        buf[first * item:(first + n1) * item] = _read(target, base + first * item, n1 * item, what)
        if pending > n1:
            buf[0:(pending - n1) * item] = _read(target, base, (pending - n1) * item, what)
        return bytes(buf)

    descs = span(g["descs"], layout.desc_size, "the new descriptors")
    infos = span(g["infos"], layout.info_size, "the new records' printk_info")
    # The new records' text lies from the first one's begin to the last one's next (logical positions, in order).
    blocks = []
    for k in range(pending):
        d = ((next_id + k) & (count - 1)) * layout.desc_size
        if r.ulong(descs, d + layout.state_var) & id_mask == (next_id + k) & id_mask:
            begin, nxt = r.ulong(descs, d + layout.lpos_begin), r.ulong(descs, d + layout.lpos_next)
            if not (begin & 1 and nxt & 1):                 # (odd, odd): no data block
                blocks.append((begin, nxt))
    data = bytearray(size)
    if blocks:
        low = blocks[0][0]
        extent = (blocks[-1][1] - low) & word_mask
        if extent >= size:
            data[:] = _read(target, g["data"], size, "the text data ring")
        else:
            start = low & (size - 1)
            n1 = min(extent, size - start)
            data[start:start + n1] = _read(target, g["data"] + start, n1, "the new records' text")
            if extent > n1:
                data[:extent - n1] = _read(target, g["data"], extent - n1, "the new records' text")
    data = bytes(data)
    # Anything the tail passed while we read may have been overwritten under us: count it lost, not garbled.
    _, tail_after = head_and_tail()
    overwritten = (tail_after - next_id) & id_mask
    if overwritten > pending:
        overwritten = 0
    ident = next_id
    for k in range(pending):
        index = ident & (count - 1)
        sv = r.ulong(descs, index * layout.desc_size + layout.state_var)
        state = sv >> state_shift
        if (sv & id_mask) == ident and state == DESC_RESERVED:
            break                                           # being written: read it at the next poll
        if (sv & id_mask) == ident and state == DESC_COMMITTED and ident == head_id:
            break                                           # may still be extended (a continuation line)
        if k < overwritten:
            lost += 1
        elif (sv & id_mask) != ident or state == DESC_REUSABLE:
            lost += 0 if fresh else 1
        else:
            record = _ring_record(r, layout, infos, index, descs, data, g["size_bits"], cursor.show_caller,
                                  ident, word_mask)
            if record is None:
                lost += 1
            elif record.seq > cursor.last_seq or not fresh:
                if lost:
                    events.append(LostRecords(lost))
                    lost = 0
                events.append(record)
                updates["last_seq"] = record.seq
        ident = (ident + 1) & id_mask
    if lost:
        events.append(LostRecords(lost))
    updates["next_id"] = ident
    return events, updates


def _poll_log_buf(target, cursor: PrintkCursor) -> list:
    """The pre-5.10 `__log_buf` has no descriptor ring to watch: each poll reads it whole and keeps the new seqs."""
    records = _poll_reads(target, cursor, lambda: read_kernel_log(target, cursor.facts)).records
    if cursor.log_buf_next_seq is None:
        cursor.log_buf_next_seq = (records[0].seq if cursor.from_start else records[-1].seq + 1) if records else 0
    new = [record for record in records if record.seq >= cursor.log_buf_next_seq]
    events: list = []
    if new and new[0].seq > cursor.log_buf_next_seq:
        events.append(LostRecords(new[0].seq - cursor.log_buf_next_seq))
    events += new
    if new:
        cursor.last_seq = new[-1].seq
        cursor.log_buf_next_seq = cursor.last_seq + 1
    return events


def follow_printk_records(target, facts: KernelLogFacts, caller: bool | None = None, from_start: bool = True,
                          interval: float = 0.25, stop=None):
    """Yield the kernel's records as it writes them (a LostRecords where some were overwritten between two polls),
    polling every `interval` seconds until `stop` (a threading.Event or cli/ctrl_c.py's
    StopRequest) is set or the caller stops iterating (Ctrl-C).
    from_start: first the records already in the ring, as `dmesg --follow` does; else only the ones written next."""
    import time

    cursor = open_printk_cursor(target, facts, caller, from_start)
    while stop is None or not stop.is_set():
        yield from poll_printk_records(target, cursor)
        if stop is not None:
            stop.wait(interval)
        else:
            time.sleep(interval)
