"""The profile on disk: one row per PC sample, written in small Parquet parts so a run cut short keeps every sample taken.

A profile directory holds `samples/part-NNNNNN.parquet` (each part a complete Parquet file, so a crash or a dead target
loses at most the samples not yet flushed, never the file) and `meta.json` (how the run was made). Columns:

    t_ns       int64   host time of the halt, ns since the run started
    pc         int64   program counter at the halt
    halted_ns  int64   how long the target stayed halted for this sample
    xip_hit    int64   raw XIP_CTRL CTR_HIT reading at the halt (null when the map has no counters)
    xip_acc    int64   raw XIP_CTRL CTR_ACC reading at the halt (null likewise)
    stack      list<int64>  return addresses, innermost first, from frame-pointer unwinding (null without --stacks)
    mcycle     int64   low 32 bits of the core's mcycle at the halt (null without --cycles; absent in files written
                       before it existed, read back as null). Hazard3 stops mcycle in Debug Mode, so the delta (mod
                       2**32) between samples is the cycles the core ran: weighting each sample by it corrects for
                       uneven sampling (a descheduled sampler, a busy probe). Return addresses in `stack` name the
                       instruction after the call: symbolize callers at address - 1.

The counters are stored as read, never cleared by the sampler: analyses take deltas between consecutive samples and treat
an interval that reaches the saturation value 0xffffffff, or goes backwards (someone wrote the register), as unknown.
Analyses add columns in memory and never rewrite these files.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import FormatError
from ..files import open_regular, read_regular_text
from ..unwind import MAX_FRAMES

COLUMNS = ("t_ns", "pc", "halted_ns", "xip_hit", "xip_acc", "stack", "mcycle")
COUNTER_SATURATED = 0xFFFFFFFF
META_FILE = "meta.json"
PARTS_DIR = "samples"
MAX_META_BYTES = 4 << 20     # meta.json is a few KB (the memory map, a few hundred registers at most)
MAX_PART_BYTES = 256 << 20   # a part holds flush_rows samples (8192 by default: ~100 KB, a few MB with stacks)
# What a part may decode to (its values at 8 bytes each, as its footer counts them), checked before it is decoded: a
# default part decodes to under 5 MB even with 64-deep stacks, and real parts to 5-20x their file size; a compression
# bomb (a megabyte of zstd that is a gigabyte of zeros) to 1000x.
MAX_PART_DECODED = 128 << 20
MAX_PART_EXPANSION = 128
MAX_PART_FOOTER = 1 << 20    # the footer (schema, row groups, statistics) of a part is a few KB


def _schema():
    import pyarrow as pa
    return pa.schema([("t_ns", pa.int64()), ("pc", pa.int64()), ("halted_ns", pa.int64()),
                      ("xip_hit", pa.int64()), ("xip_acc", pa.int64()), ("stack", pa.list_(pa.int64())),
                      ("mcycle", pa.int64())])


class SampleWriter:
    """Collects samples and flushes them as a new Parquet part every `flush_rows` samples or `flush_seconds`."""

    def __init__(self, directory: str | Path, flush_rows: int = 8192, flush_seconds: float = 1.0):
        self.parts_dir = Path(directory) / PARTS_DIR
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        if any(self.parts_dir.glob("part-*.parquet")):
            raise FormatError(f"{self.parts_dir} already holds samples; profile into a new directory")
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.count = 0
        self._parts = 0
        self._columns: dict[str, list] = {name: [] for name in COLUMNS}
        self._last_flush = time.monotonic()

    def add(self, t_ns: int, pc: int, halted_ns: int, xip_hit: int | None = None, xip_acc: int | None = None,
            stack: list[int] | None = None, mcycle: int | None = None) -> None:
        self.add_columns([t_ns], [pc], [halted_ns], [xip_hit], [xip_acc], [stack], [mcycle])

    def add_columns(self, t_ns: list[int], pc: list[int], halted_ns: list[int], xip_hit: list, xip_acc: list,
                    stack: list, mcycle: list) -> None:
        """Samples by column, each list as long as `pc` (the same values add() takes, one per sample)."""
        c = self._columns
        c["t_ns"] += t_ns
        c["pc"] += pc
        c["halted_ns"] += halted_ns
        c["xip_hit"] += xip_hit
        c["xip_acc"] += xip_acc
        c["stack"] += stack
        c["mcycle"] += mcycle
        self.count += len(pc)
        if len(c["pc"]) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._columns["pc"]:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq
        table = pa.Table.from_pydict(self._columns, schema=_schema())
        path = self.parts_dir / f"part-{self._parts:06d}.parquet"
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp)
        tmp.rename(path)          # a part is either whole or absent
        self._parts += 1
        self._columns = {name: [] for name in COLUMNS}

    def close(self) -> None:
        self.flush()


def read_samples(directory: str | Path):
    """All samples of a profile directory as a pandas DataFrame, in the order they were taken."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory = Path(directory)
    parts = sorted((directory / PARTS_DIR).glob("part-*.parquet"))
    if not parts:
        raise FormatError(f"{directory}: no samples (expected {PARTS_DIR}/part-*.parquet written by xipscope profile)")
    schema = _schema()
    tables = []
    for part in parts:
        # A regular file inside the profile directory: a symlink to elsewhere or a FIFO is an error, not read.
        with open_regular(part.relative_to(directory), "a sample part", base=directory, max_size=MAX_PART_BYTES,
                          why="a sample part xipscope writes may have", error=FormatError,
                          hint="Move it aside to read the others.") as f:
            try:
                table = _checked_part(part, f).read()
                _check_stacks(part, table)
                for name in schema.names:   # parts written before a column existed: that column is null
                    if name not in table.column_names:
                        table = table.append_column(name, pa.nulls(len(table), schema.field(name).type))
                tables.append(table.select(schema.names).cast(schema))
            except (pa.ArrowException, OSError) as e:
                raise FormatError(f"{part}: not a readable sample part ({e}); move it aside to read the "
                                  "others") from None
    return pa.concat_tables(tables).to_pandas()


def _check_stacks(path: Path, table) -> None:
    """FormatError if a sample's stack is deeper than the sampler unwinds (MAX_FRAMES): a part that holds one was not
    written by xipscope, and the report's call trees would recurse as deep as it claims."""
    import pyarrow.compute as pc

    if "stack" not in table.column_names:
        return
    deepest = pc.max(pc.list_value_length(table["stack"])).as_py()
    if deepest is not None and deepest > MAX_FRAMES:
        raise FormatError(f"{path}: not a readable sample part (a stack of {deepest:,} frames; xipscope unwinds at "
                          f"most {MAX_FRAMES}); move it aside to read the others")


def _checked_part(path: Path, f):
    """pyarrow's ParquetFile over `f` once its footer and the size it decodes to are sane (FormatError if not):
    pyarrow believes both, and would parse a footer of any size and decode rows into as much memory as they claim."""
    import pyarrow.parquet as pq

    size = os.fstat(f.fileno()).st_size
    f.seek(max(0, size - 8))
    tail = f.read(8)
    f.seek(0)
    footer = int.from_bytes(tail[:4], "little") if len(tail) == 8 and tail[4:] == b"PAR1" else None
    if footer is None or footer + 12 > size:
        raise FormatError(f"{path}: not a readable sample part (not Parquet: its last 8 bytes are {tail!r}); move it "
                          "aside to read the others")
    if footer > MAX_PART_FOOTER:
        raise FormatError(f"{path}: not a readable sample part (a Parquet footer of {footer:,} bytes, more than the "
                          f"{MAX_PART_FOOTER:,} a sample part's has); move it aside to read the others")
    parquet = pq.ParquetFile(f)
    meta = parquet.metadata
    values = sum(meta.row_group(g).column(c).num_values
                 for g in range(meta.num_row_groups) for c in range(meta.num_columns))
    decoded = 8 * max(values, meta.num_rows)
    limit = min(MAX_PART_DECODED, max(MAX_PART_EXPANSION * size, 16 << 20))
    if decoded > limit:
        raise FormatError(f"{path}: not a readable sample part ({meta.num_rows:,} samples, {values:,} values that "
                          f"decode to {decoded:,} bytes from {size:,}; a part may decode to {limit:,}: at most "
                          f"{MAX_PART_EXPANSION}x its size, {MAX_PART_DECODED:,} in all); move it aside to read the "
                          "others")
    return parquet


def write_meta(directory: str | Path, meta: dict) -> None:
    path = Path(directory) / META_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    tmp.rename(path)


def read_meta(directory: str | Path) -> dict:
    """meta.json of a profile directory, the keys the analyses use checked (FormatError naming the key and value)."""
    directory = Path(directory)
    path = directory / META_FILE
    if not os.path.lexists(path):
        raise FormatError(f"{directory}: no {META_FILE}; is this a directory written by xipscope profile?")
    text = read_regular_text(META_FILE, "the profile's metadata", base=directory, max_size=MAX_META_BYTES,
                             why="a profile's meta.json may have", error=FormatError)
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise FormatError(f"{path}: not JSON ({str(e)[:80]})") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{path}: expected a JSON object, found {type(meta).__name__}")
    for key, expected, ok in _META_CHECKS:
        if meta.get(key) is not None and not ok(meta[key]):
            raise FormatError(f"{path}: {key} should be {expected}, found {_shown(meta[key])}; the profile's "
                              "metadata is damaged: fix that key, or remove it and pass the value on the command line")
    return meta


def _is_path(value) -> bool:
    return isinstance(value, str) and 0 < len(value) < 4096 and "\0" not in value


def _is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _is_registers(value) -> bool:
    return isinstance(value, dict) and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 64
                                           for v in value.values())


# meta.json keys the analyses read (None, or absent, stands for "not recorded")
_META_CHECKS = (("elf", "the path of the ELF that ran (a string)", _is_path),
                ("elf_sha256", "64 lower-case hex digits (the ELF's sha256)", _is_sha256),
                ("map", "a memory map name or TOML path (a string)", _is_path),
                ("target", "the target URL (a string)", lambda v: isinstance(v, str)),
                ("registers", "an object of register names and unsigned 64-bit values", _is_registers))


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
