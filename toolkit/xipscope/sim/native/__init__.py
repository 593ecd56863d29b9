"""The twin's hot hooks in C (xip_hooks.c, a model: the same as hazard3/hooks.py's Python hooks, faster).

`hooks_library()` builds xip_hooks.c with the system C compiler on first use, into the cache (keyed by the source and
unicorn's version), and loads it (xipscope/native.py); None when XIPSCOPE_NATIVE=0, or (with one line on stderr) when
there is no compiler or the build fails: the Python hooks then do the same work.

`NativeState(lib, machine)` moves the numbers the hot hooks change (the slice budget, instructions and stalls, the XIP
cache's tags, pins, random state and counters, the per-device data counters, each block record's counters) into one C
struct, leaving the Machine's attributes as views of it with the same indexing, so Python reads and writes the same
values as before. Block records become `NativeBlock`s: lists whose counter fields live in the struct's rows.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

SOURCE = Path(__file__).with_name("xip_hooks.c")
SETS = 1024
CHUNK_SHIFT = 12
CHUNK = 1 << CHUNK_SHIFT
CHUNKS = 4096
MT_N = 624
INT64_MAX = (1 << 63) - 1


class _Cells:
    """A fixed run of integers in the struct, compared by value like the lists they replace."""

    def __eq__(self, other):
        try:
            return list(self) == list(other)
        except TypeError:
            return NotImplemented

    __hash__ = None

    def __repr__(self):
        return repr(list(self))


class I64x1(_Cells, ctypes.c_int64 * 1):
    pass


class Moment(I64x1):
    """A cycle count the hooks compare against (Machine._irq_at, _land_at): Python may store one past int64 (a timer
    compare register of all ones is due after about 2**71 cycles), which holds as int64's largest, equal for every
    comparison with a count the twin reaches."""

    def __setitem__(self, i, value):
        super().__setitem__(i, min(value, INT64_MAX))


class I64x2(_Cells, ctypes.c_int64 * 2):
    pass


class I64x3(_Cells, ctypes.c_int64 * 3):
    pass


class Lines(_Cells, ctypes.c_int32 * SETS):
    pass


class Row(ctypes.Structure):
    """xip_hooks.c `struct row`: one translated block's counters and what the hot hooks need of it."""
    _fields_ = [(name, ctypes.c_int64) for name in ("count", "miss", "dacc", "dhit", "dstall", "epoch",
                                                     "n", "size", "reach", "words", "pen", "nlines")] + [
        ("lines", ctypes.c_void_p)] + [(name, ctypes.c_int32) for name in ("fast", "cached", "atomic", "mixed")]


class State(ctypes.Structure):
    """xip_hooks.c `struct state`."""
    _fields_ = [("st", I64x3), ("ctr", I64x2), ("epoch", I64x1), ("on", I64x1), ("irq_at", Moment),
                ("land_at", Moment), ("xip_checks", I64x1), ("acs", I64x2), ("hcs", I64x2), ("penalty", I64x2),
                ("pending", I64x2), ("last", I64x2), ("trace", ctypes.c_int64),
                ("tags", Lines * 2), ("pinned", Lines * 2), ("mt", ctypes.c_uint32 * MT_N), ("mti", ctypes.c_int64),
                ("py_entry", ctypes.c_void_p), ("py_run", ctypes.c_void_p), ("py_mem", ctypes.c_void_p),
                ("py_periph", ctypes.c_void_p),
                ("py_ud", ctypes.c_void_p), ("chunks", ctypes.c_void_p * CHUNKS),
                ("map_keys", ctypes.c_void_p), ("map_vals", ctypes.c_void_p), ("map_cap", ctypes.c_int64),
                ("map_used", ctypes.c_int64)]


def hooks_library():
    """The built xip_hooks.c (a ctypes CDLL), or None: XIPSCOPE_NATIVE=0, or no compiler / a failed build
    (native.native_library builds and loads it)."""
    import unicorn
    from ...native import native_library

    return native_library(SOURCE, "the twin's native hooks", "the Python hooks (slower)",
                          f"unicorn {unicorn.__version__}", _check)


def _check(lib, lib_path) -> None:
    lib.xs_random_bit.argtypes = [ctypes.c_void_p]
    lib.xs_map_put.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int64]
    lib.xs_free.argtypes = [ctypes.c_void_p]
    lib.xs_free.restype = None
    lib.xs_sizeof_state.restype = lib.xs_sizeof_row.restype = ctypes.c_int64
    for what, size in (("state", State), ("row", Row)):
        found = getattr(lib, f"xs_sizeof_{what}")()
        if found != ctypes.sizeof(size):
            raise ValueError(f"{lib_path}: struct {what} is {found} bytes, its mirror here {ctypes.sizeof(size)}")


def hook_address(lib, name: str) -> int:
    return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value


class NativeRng:
    """XipCache.rng over the struct's Mersenne Twister: Python's fills draw from the stream the C hooks draw from."""

    def __init__(self, lib, state: State):
        self._bit = lib.xs_random_bit
        self._state = ctypes.byref(state)

    def getrandbits(self, k: int) -> int:
        if k != 1:
            raise ValueError(f"the XIP cache draws one bit at a time, not {k}")
        return self._bit(self._state)


class LastCell:
    """Machine._last over the struct: [block being executed or None, its instructions not yet taken back]."""

    __slots__ = ("_last", "_rows")

    def __init__(self, state: State, rows: list):
        self._last, self._rows = state.last, rows

    def __getitem__(self, i: int):
        if i == 0:
            k = self._last[0]
            return None if k < 0 else self._rows[k]
        return self._last[1]

    def __setitem__(self, i: int, value) -> None:
        if i == 0:
            self._last[0] = -1 if value is None else value.idx
        else:
            self._last[1] = value

    def __iter__(self):
        return iter((self[0], self[1]))


class PendingCell:
    """Machine._pending_mstatus over the struct: [the mstatus value a trap deferred, or None]."""

    __slots__ = ("_p",)

    def __init__(self, state: State):
        self._p = state.pending

    def __getitem__(self, i: int):
        return self._p[1] if self._p[0] else None

    def __setitem__(self, i: int, value) -> None:
        if value is None:
            self._p[0] = 0
        else:
            self._p[1] = value
            self._p[0] = 1


class NativeBlock(list):
    """A block record (hooks.py) whose counters live in the struct's row `idx`."""

    __slots__ = ("idx", "row", "lines")
    FIELDS: dict = {}   # record index -> Row field, filled by NativeState

    def __getitem__(self, i):
        name = self.FIELDS.get(i) if i.__class__ is int else None
        return list.__getitem__(self, i) if name is None else getattr(self.row, name)

    def __setitem__(self, i, value):
        name = self.FIELDS.get(i) if i.__class__ is int else None
        if name is None:
            list.__setitem__(self, i, value)
        else:
            setattr(self.row, name, value)


class NativeState:
    """The C hooks' state for one Machine; rebinds the Machine's hot cells to views of it (before its hooks exist)."""

    def __init__(self, lib, m):
        from ..hazard3 import hooks as h

        NativeBlock.FIELDS = {h.B_COUNT: "count", h.B_MISS: "miss", h.B_DACC: "dacc", h.B_DHIT: "dhit",
                              h.B_DSTALL: "dstall", h.B_EPOCH: "epoch"}
        self.lib = lib
        self.state = s = State()
        self.rows: list[NativeBlock] = []
        self._chunks: list = []
        cache = m.cache
        for name, cell in (("st", m._st), ("ctr", cache.ctr), ("epoch", cache.epoch), ("on", cache.on),
                           ("irq_at", m._irq_at), ("land_at", m._land_at), ("xip_checks", m.qmi.xip_checks),
                           ("acs", m._data_acc_by_cs), ("hcs", m._data_hit_by_cs), ("penalty", m._penalty)):
            for i, v in enumerate(cell):
                getattr(s, name)[i] = int(v)
        for way in range(2):
            s.tags[way][:] = cache.tags[way]
            s.pinned[way][:] = [int(p) for p in cache.pinned[way]]
        internal = cache.rng.getstate()[1]
        s.mt[:] = internal[:MT_N]
        s.mti = internal[MT_N]
        s.pending[:] = [0, 0] if m._pending_mstatus[0] is None else [1, m._pending_mstatus[0]]
        s.last[:] = [-1, 0]
        s.trace = m.trace is not None
        m._st, m._irq_at, m._land_at = s.st, s.irq_at, s.land_at
        m._data_acc_by_cs, m._data_hit_by_cs = s.acs, s.hcs
        m.qmi.xip_checks = m._xip_checks = s.xip_checks
        m._pending_mstatus = PendingCell(s)
        m._last = LastCell(s, self.rows)
        cache.ctr, cache.epoch, cache.on = s.ctr, s.epoch, s.on
        cache.tags = [s.tags[0], s.tags[1]]
        cache.pinned = [s.pinned[0], s.pinned[1]]
        cache.rng = NativeRng(lib, s)

    def __del__(self):
        self.lib.xs_free(ctypes.byref(self.state))

    def adopt(self, b: list) -> NativeBlock:
        """A new block record, as a NativeBlock with a row of its own."""
        from ..hazard3 import hooks as h

        idx = len(self.rows)
        if idx >> CHUNK_SHIFT == len(self._chunks):
            if len(self._chunks) == CHUNKS:
                raise MemoryError(f"the twin's native hooks hold {idx} translated blocks, their most")
            chunk = (Row * CHUNK)()
            self.state.chunks[len(self._chunks)] = ctypes.addressof(chunk)
            self._chunks.append(chunk)
        nb = NativeBlock(b)
        nb.idx = idx
        nb.row = r = self._chunks[idx >> CHUNK_SHIFT][idx & (CHUNK - 1)]
        r.count, r.miss, r.dacc = b[h.B_COUNT], b[h.B_MISS], b[h.B_DACC]
        r.dhit, r.dstall, r.epoch = b[h.B_DHIT], b[h.B_DSTALL], b[h.B_EPOCH]
        r.n, r.size, r.reach, r.words, r.pen = b[h.B_N], b[h.B_SIZE], b[h.B_REACH], b[h.B_WORDS], b[h.B_PEN]
        lines = b[h.B_LINES]
        nb.lines = (ctypes.c_int32 * (2 * len(lines) or 1))(*(v for pair in lines for v in pair))
        r.lines, r.nlines = ctypes.addressof(nb.lines), len(lines)
        r.fast, r.cached, r.atomic = bool(b[h.B_FAST]), bool(b[h.B_CACHED]), bool(b[h.B_ATOMIC])
        r.mixed = b[h.B_FIDX] is None
        self.rows.append(nb)
        return nb

    def map(self, address: int, b: NativeBlock) -> None:
        """Block `b` is the one decoded latest at `address` (Machine._blocks[address])."""
        if self.lib.xs_map_put(ctypes.byref(self.state), address, b.idx):
            raise MemoryError("the twin's native hooks could not grow their block map")
