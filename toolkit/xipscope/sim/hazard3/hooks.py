"""The Hazard3 twin's unicorn hooks (a model): where the firmware's execution meets the XIP model, the traps and the
ground truth. A mixin of Machine (core.py), which holds the state these methods use. The model's choices here:
  - instruction fetch is accounted per 32-bit word (Hazard3 fetches words) when unicorn enters a translated block,
    in address order; data accesses are accounted as they happen;
  - every instruction costs one cycle; an XIP access not served by the cache stalls for its region's miss penalty
    (counters.Timing; assumed values);
  - QMI (peripherals.Qmi): while DIRECT_CSR.EN = 1, XIP fetches fault with mcause 1 and XIP loads with mcause 5
    (stores and AMOs with 7), cache hits included (INFERRED: the datasheet does not say whether hits still succeed);
    a fetch is checked when a translated block is entered, and an EN write from code in XIP faults the very next
    fetch. An access through a translated alias (cached, nocache) beyond its ATRANS SIZE faults the same way;
    ATRANS BASE is not applied.

The hooks:
  - the block hook, at the start of every translated block: ends the slice once its budget is spent, applies a
    trap's deferred mstatus write, takes a due interrupt (traps.py), refuses a fetch the QMI faults, stops a run to
    a cycle before the block that holds it (`_stops_before`), retires the block's instructions and accounts its
    fetch through the XIP cache (cache.py);
  - the XIP memory hook: accounts each data access to XIP (the cache, its counters, the miss stall), faults one the
    QMI refuses and applies the atomics-outside-SRAM rule (traps.py); the peripheral hook applies that rule there;
  - unicorn's interrupt, bad-access and DIRECT_CSR write hooks: Hazard3 traps (traps.py) or CSR emulation (csrs.py).
A block record (a list indexed by the B_ fields, for speed) holds what the block hook needs of a translated block,
decoded once from the backing store (`_fetch_bytes`; never unicorn's mem_read from inside a hook).

The block and XIP memory hooks are the hot paths: raw ctypes callbacks (not unicorn's Python wrapper) and closures
over the list cells they need, so that a block or an access costs local lookups only; they reach the Machine's
attributes on the rare paths (a slice's end, an interrupt due, a QMI check, a trap, a block spanning functions).
A raw callback must not raise: a hook keeps its error and stops the emulation, and core.py's `_emu` raises it.

The same hot paths also exist in C (../native/xip_hooks.c, built on first use): `_install_hooks` registers those when
they build (unless XIPSCOPE_NATIVE=0) and hands them the Python hooks for every unusual call (the block hook's two
halves, `on_entry` and `on_run`, separately). Then the cells the hooks hold and the block records' counters live in
the C hooks' struct (native/__init__.py), read and written from Python through views with the same indexing.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from ...chip import riscv as rv
from ...chip import rp2350 as rp
from ...errors import TargetError
from ..xip_cache import SET_MASK, SET_SHIFT, TAG_SHIFT, set_and_tag
from ..runner import StopReason

# Block record fields (a list, for speed in the hook).
(B_COUNT, B_N, B_SIZE, B_ADDR, B_INSNS, B_SEGS, B_FIDX, B_ATOMIC, B_LINE_INFO, B_LINES, B_WORDS, B_CACHED, B_CS,
 B_PEN, B_EPOCH, B_MISS, B_DACC, B_DHIT, B_DSTALL, B_FAST, B_REACH, B_FIELDS) = range(22)


@dataclass
class Fault:
    """A bad access unicorn reported (`_on_bad_access`): the trap `_emu` takes once emu_start has returned."""

    cause: int
    epc: int
    detail: str = ""


class Hooks:
    """Machine's unicorn hooks, block decoding and code fetch (a mixin: Machine holds the state; see core.py)."""

    def xip_unavailable(self, address: int) -> str | None:
        """Why the QMI would bus-fault an access to `address` now ('direct mode', 'ATRANSn size'), or None."""
        if self.qmi.direct_mode and rp.xip_blocked_by_direct_mode(address):
            return "direct mode"
        if rp.xip_alias(address) in ("cached", "nocache"):
            n = rp.atrans_index(address)
            if rp.beyond_atrans_size(address, self.qmi.atrans[n]):
                return f"ATRANS{n} size"
        return None

    def _install_hooks(self) -> None:
        from unicorn import (UC_HOOK_BLOCK, UC_HOOK_INTR, UC_HOOK_MEM_PROT, UC_HOOK_MEM_READ, UC_HOOK_MEM_UNMAPPED,
                             UC_HOOK_MEM_WRITE)

        from ..native import NativeState, hook_address, hooks_library

        uc = self._uc
        # The one place the twin picks its hot hooks: the C ones (native/xip_hooks.c) when they build, else Python.
        # Either way the Python hooks below exist: the C ones hand them every unusual call. They must be made after
        # NativeState has moved the cells they hold into its struct.
        lib = hooks_library()
        self._native = NativeState(lib, self) if lib is not None else None
        block_cb_t = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p)
        entry_cb_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p)
        mem_cb_t = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_int,
                                    ctypes.c_int64, ctypes.c_void_p)
        on_block, on_entry, on_run = self._make_block_hook()
        self._raw_cbs = [block_cb_t(on_block), mem_cb_t(self._make_xip_mem_hook()),
                         mem_cb_t(self._make_periph_mem_hook()), entry_cb_t(on_entry), block_cb_t(on_run)]
        cbs = [ctypes.cast(cb, ctypes.c_void_p).value for cb in self._raw_cbs]
        ud = None
        if self._native is not None:
            state = self._native.state
            _, state.py_mem, state.py_periph, state.py_entry, state.py_run = cbs
            cbs = [hook_address(lib, name) for name in ("xs_on_block", "xs_on_xip_mem", "xs_on_periph_mem")]
            ud = ctypes.addressof(state)
        self._raw_hook(UC_HOOK_BLOCK, cbs[0], 1, 0, ud)
        self._raw_hook(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, cbs[1], rp.XIP_BASE, rp.XIP_END - 1, ud)
        self._raw_hook(UC_HOOK_MEM_READ, cbs[2], 0x40000000, 0x4FFFFFFF, ud)
        uc.hook_add(UC_HOOK_MEM_WRITE, self._on_direct_csr_write, begin=rp.XIP_QMI_BASE + rp.QMI_DIRECT_CSR,
                    end=rp.XIP_QMI_BASE + rp.QMI_DIRECT_CSR + 3)
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._on_bad_access)
        uc.hook_add(UC_HOOK_MEM_PROT, self._on_bad_access)
        self._hook_instructions(uc)
        uc.ctl_exits_enabled(True)
        uc.ctl_set_exits([])

    def _raw_hook(self, htype: int, cb: int, begin: int, end: int, user_data: int | None) -> None:
        handle = ctypes.c_size_t()
        err = self._uclib.uc_hook_add(self._uch, ctypes.byref(handle), htype, ctypes.c_void_p(cb),
                                      ctypes.c_void_p(user_data), ctypes.c_uint64(begin), ctypes.c_uint64(end))
        if err:
            raise TargetError(f"unicorn refused a hook (error {err}); is unicorn 2.1 installed?")

    def _make_block_hook(self):
        blocks = self._blocks
        st = self._st
        last = self._last
        cache = self.cache
        ctr = cache.ctr
        epoch = cache.epoch
        t0, t1 = cache.tags
        fill = cache._fill
        decode = self._decode_block
        slow = self._fetch_slow
        enabled = cache.on
        pending = self._pending_mstatus
        uclib, uch = self._uclib, self._uch
        machine = self
        xip_checks = self._xip_checks
        irq_at = self._irq_at
        land = self._land_at

        def on_entry(_uc, address, _size, _ud) -> int:
            """What comes before a block starts, when the guard in on_block says any of it may apply: 1 if the block
            does not start."""
            try:
                # The budget is looked at before anything else, so that no block, and no trap entered from this
                # hook, starts once the slice has spent it (trap entries are charged to it in _take_trap): a
                # firmware looping through its trap handler ends its slice like any other loop.
                if st[0] <= 0:
                    if machine._stop_reason is None:
                        machine._stop_reason = StopReason.BUDGET
                    uclib.uc_emu_stop(uch)
                    return 1
                if pending[0] is not None:
                    machine._apply_pending()
                if st[1] + st[2] >= irq_at[0] and machine._interrupt_at_block(address):
                    return 1   # the handler runs instead of this block: nothing of it retired
                if xip_checks[0] and machine.xip_unavailable(address):
                    # The block's first fetch is refused: an instruction access fault before anything of it
                    # retires. The block before it retired whole: nothing of it is taken back.
                    last[0] = None
                    machine._take_trap(rp.CAUSE_FETCH_FAULT, address)
                    return 1
                return 0
            except BaseException as e:  # a raw ctypes callback must not raise: stop and re-raise after emu_start
                machine._hook_error = e
                uclib.uc_emu_stop(uch)
                return 1

        def on_block(_uc, address, size, _ud):
            if (st[0] <= 0 or pending[0] is not None or st[1] + st[2] >= irq_at[0] or xip_checks[0]) \
                    and on_entry(_uc, address, size, _ud):
                return
            on_run(_uc, address, size, _ud)

        def on_run(_uc, address, size, _ud):
            """The block starts: it retires and its fetch is accounted, unless a run to a cycle stops before it."""
            try:
                now = st[1] + st[2]
                b = blocks.get(address)
                if b is None or b[B_SIZE] != size:
                    b = decode(address, size)
                n = b[B_N]
                # A run to a cycle (Machine.run_slice's stop_before_cycle; NEVER otherwise) looks at each block that
                # may hold its cycle, before anything of it is charged.
                if now + b[B_REACH] > land[0] and machine._stops_before(b):
                    return
                st[0] -= n
                st[1] += n
                b[B_COUNT] += 1
                last[0] = b
                last[1] = n
                w = b[B_WORDS]
                if w:
                    if not b[B_FAST]:
                        slow(b)
                        return
                    ctr[0] += w
                    if b[B_CACHED] and enabled[0]:
                        if b[B_EPOCH] == epoch[0]:
                            # Nothing was filled or invalidated since this block's lines were last all present.
                            ctr[1] += w
                            return
                        m = 0
                        complete = True
                        for s, t in b[B_LINES]:
                            if t0[s] != t and t1[s] != t:
                                m += 1
                                if not fill(s, t):
                                    complete = False
                        ctr[1] += w - m
                        if complete:
                            b[B_EPOCH] = epoch[0]
                    else:
                        m = w   # uncached alias, or caching disabled: every word goes to the device
                    if m:
                        b[B_MISS] += m
                        st[2] += m * b[B_PEN]
            except BaseException as e:
                machine._hook_error = e
                uclib.uc_emu_stop(uch)

        return on_block, on_entry, on_run

    def _stops_before(self, b: list) -> bool:
        """A run to a cycle (run_slice's stop_before_cycle) at the start of block `b`, which may hold its cycle (the
        cycle lies within the block's reach, the most it can cost): stop here, nothing of `b` run, when the cycle
        falls within what `b` is expected to cost (or is already past).

        The expected cost is its instructions, its fetch stalls as the cache stands now (exact: each line absent
        from the cache misses once) and its mean data stall so far (a data access's outcome is known only as it
        happens). So a halt lands in the block holding its cycle, where halting a real core at that cycle would
        find it, rather than after it (which gave callees and trap entries their predecessors' cycles)."""
        left = self._land_at[0] - self.cycles
        cost = b[B_N] + self._fetch_stall_ahead(b)
        if b[B_FAST] and b[B_COUNT]:
            cost += b[B_DSTALL] / b[B_COUNT]
        if left < cost:
            self._request_stop(StopReason.CYCLE)
            return True
        return False

    def _fetch_stall_ahead(self, b: list) -> int:
        """The stall cycles block `b`'s fetch would cost if it started now (what the block hook will charge)."""
        w = b[B_WORDS]
        if not w:
            return 0
        if b[B_CACHED] and self.cache.enabled:
            t0, t1 = self.cache.tags
            return b[B_PEN] * sum(1 for s, t in b[B_LINES] if t0[s] != t and t1[s] != t)
        return b[B_PEN] * w

    def _fetch_slow(self, b: list) -> None:
        """Fetch accounting word by word: for blocks spanning functions (attributed per line) and trace recording."""
        cache = self.cache
        st = self._st
        trace = self.trace
        cached = b[B_CACHED] and cache.enabled
        mixed = b[B_FIDX] is None
        pen = b[B_PEN]
        for phys, nw, f, cs in b[B_LINE_INFO]:
            for i in range(nw):
                if trace is not None:
                    trace.append(("fetch", phys + 4 * i, b[B_CACHED]))
                hit = cache.lookup(phys + 4 * i) if cached else cache.count_uncached()
                if not hit:
                    st[2] += pen
                if mixed:
                    self._f_fetch_acc[f] += 1
                    self._mixed_fetch_acc_by_cs[cs] += 1
                    if hit:
                        self._f_fetch_hit[f] += 1
                        self._mixed_fetch_hit_by_cs[cs] += 1
                    else:
                        self._f_stall[f] += pen
                elif not hit:
                    b[B_MISS] += 1

    def _make_xip_mem_hook(self):
        from unicorn import UC_MEM_WRITE

        st = self._st
        last = self._last
        cache = self.cache
        ctr = cache.ctr
        t0, t1 = cache.tags
        fill = cache._fill
        acs, hcs = self._data_acc_by_cs, self._data_hit_by_cs
        penalty = self._penalty
        enabled = cache.on
        trace = self.trace
        uclib, uch = self._uclib, self._uch
        machine = self
        xip_checks = self._xip_checks

        def on_xip_mem(_uc, access, address, size, _value, _ud):
            try:
                alias = (address >> 26) & 3
                if alias == 2:
                    return  # maintenance alias: an operation, not an XIP access (INFERRED); see peripherals.XipMaintenance
                if xip_checks[0] and machine.xip_unavailable(address):
                    pc = machine._pc()
                    write = access == UC_MEM_WRITE or rv.decode_amo(machine._insn_at(pc)) in ("amo", "sc")
                    machine._take_trap(rp.CAUSE_STORE_FAULT if write else rp.CAUSE_LOAD_FAULT, pc,
                                       in_memory_hook=True)
                    return
                b = last[0]
                if b is not None and b[B_ATOMIC] and machine._atomic_outside_sram(address, access == UC_MEM_WRITE):
                    return
                phys = address & 0x01FFFFFF
                cs = phys >> 24
                if access == UC_MEM_WRITE and cs == 0:
                    return  # flash is not writable: the protection fault that follows is the whole story
                ctr[0] += 1
                acs[cs] += 1
                hit = False
                if alias == 0 and enabled[0]:
                    s = (phys >> SET_SHIFT) & SET_MASK
                    t = phys >> TAG_SHIFT
                    if t0[s] == t or t1[s] == t:
                        hit = True
                    else:
                        fill(s, t)
                if trace is not None:
                    trace.append(("data", phys, alias == 0))
                if b is None or b[B_FIDX] is None:
                    machine._data_by_pc(hit, penalty[cs])
                    if hit:
                        ctr[1] += 1
                        hcs[cs] += 1
                    else:
                        st[2] += penalty[cs]
                    return
                b[B_DACC] += 1
                if hit:
                    ctr[1] += 1
                    hcs[cs] += 1
                    b[B_DHIT] += 1
                else:
                    pen = penalty[cs]
                    st[2] += pen
                    b[B_DSTALL] += pen
            except BaseException as e:
                machine._hook_error = e
                uclib.uc_emu_stop(uch)

        return on_xip_mem

    def _data_by_pc(self, hit: bool, pen: int) -> None:
        f = self._fidx_at(self._pc())
        self._f_data_acc[f] += 1
        if hit:
            self._f_data_hit[f] += 1
        else:
            self._f_stall[f] += pen

    def _make_periph_mem_hook(self):
        last = self._last
        uclib, uch = self._uclib, self._uch
        machine = self

        def on_periph_mem(_uc, access, address, size, _value, _ud):
            try:
                b = last[0]
                if b is not None and b[B_ATOMIC]:
                    machine._atomic_outside_sram(address, False)
            except BaseException as e:
                machine._hook_error = e
                uclib.uc_emu_stop(uch)

        return on_periph_mem

    def _decode_block(self, address: int, size: int) -> list:
        key = (address, size)
        b = self._all_blocks.get(key)
        native = self._native
        if b is None:
            b = self._build_block(address, size)
            if native is not None:
                b = native.adopt(b)
            self._all_blocks[key] = b
        self._blocks[address] = b
        if native is not None:
            native.map(address, b)
        return b

    def _build_block(self, address: int, size: int) -> list:
        data = self._fetch_bytes(address, size + 2)
        insns = []
        off = 0
        atomic = False
        while off < size:
            half = int.from_bytes(data[off:off + 2], "little")
            n = rv.insn_length(half)
            if n == 4 and rv.decode_amo(int.from_bytes(data[off:off + 4], "little")):
                atomic = True
            insns.append((address + off, self.elf.function_index(address + off)))
            off += n
        segs: dict[int, int] = {}
        for _a, f in insns:
            segs[f] = segs.get(f, 0) + 1
        line_info = []
        alias = rp.xip_alias(address)
        if alias in ("cached", "nocache", "untranslated"):
            per_line: dict[int, list] = {}
            for word in range(address & ~3, address + size, 4):
                phys = rp.xip_physical(word)
                line = phys & ~(rp.XIP_CACHE_LINE - 1)
                if line not in per_line:
                    per_line[line] = [phys, 0, self.elf.function_index(max(word, address)), phys >> 24]
                per_line[line][1] += 1
            line_info = [tuple(v) for v in per_line.values()]
        funcs = set(segs) | {f for _p, _n, f, _cs in line_info}
        fidx = insns[0][1] if len(funcs) == 1 else None
        cs = line_info[0][3] if line_info else 0
        b = [None] * B_FIELDS
        b[B_COUNT] = 0
        b[B_N] = len(insns)
        b[B_SIZE] = size
        b[B_ADDR] = address
        b[B_INSNS] = tuple(insns)
        b[B_SEGS] = tuple(segs.items())
        b[B_FIDX] = fidx
        b[B_FAST] = fidx is not None and self.trace is None
        b[B_ATOMIC] = atomic
        b[B_LINE_INFO] = tuple(line_info)
        b[B_LINES] = tuple(set_and_tag(p) for p, _n, _f, _c in line_info)
        b[B_WORDS] = sum(n for _p, n, _f, _c in line_info)
        b[B_CACHED] = alias == "cached"
        b[B_CS] = cs
        b[B_PEN] = self._penalty[cs]
        b[B_EPOCH] = -1
        b[B_MISS] = b[B_DACC] = b[B_DHIT] = b[B_DSTALL] = 0
        # The most the block can cost: every fetch word and every data access missing (the landing rule's bound).
        b[B_REACH] = len(insns) + b[B_WORDS] * b[B_PEN] + max(self._penalty) * sum(
            rv.data_accesses(int.from_bytes(data[a - address:a - address + 4], "little")) for a, _f in insns)
        return b

    def _fetch_bytes(self, address: int, size: int) -> bytes:
        """Code bytes from the backing store. Never unicorn's mem_read from inside a hook: on 2.1.4 that can leave
        an atomic instruction in flight with a stale TLB entry and crash (seen with amoswap.w on read-only flash)."""
        where = self.memory.backing(address)
        if where is None:
            return bytes(size)
        buf, off = where
        n = max(0, min(size, len(buf) - off))
        return ctypes.string_at(ctypes.addressof(buf) + off, n) + bytes(size - n)

    def _insn_at(self, address: int) -> int:
        return int.from_bytes(self._fetch_bytes(address, 4), "little")

    def _on_direct_csr_write(self, uc, access: int, address: int, size: int, value: int, _ud) -> None:
        """Direct mode switched on by code running from XIP: that code's very next fetch is refused."""
        try:
            self.qmi.write(rp.QMI_DIRECT_CSR, value)
            pc = self._pc()
            if self.qmi.direct_mode and self.xip_unavailable(pc):
                self._take_trap(rp.CAUSE_FETCH_FAULT, pc + rv.insn_length(self._insn_at(pc) & 0xFFFF),
                                in_memory_hook=True)
        except BaseException as e:
            self._hook_error = e
            self._request_stop(StopReason.ERROR)

    def _on_intr(self, uc, intno: int, _ud) -> None:
        try:
            # unicorn reports these with pc 4 past the faulting instruction, whatever its length (checked on 2.1.4).
            epc = (self._pc() - 4) & 0xFFFFFFFF
            if intno == 2 and self._emulate_csr(epc):
                return
            cause = rp.CAUSE_ECALL_M if intno == rp.CAUSE_ECALL_U else intno
            self._take_trap(cause, epc)
        except BaseException as e:
            self._hook_error = e
            self._request_stop(StopReason.ERROR)

    def _on_bad_access(self, uc, access: int, address: int, size: int, value: int, _ud) -> bool:
        from unicorn import UC_MEM_FETCH_PROT, UC_MEM_FETCH_UNMAPPED, UC_MEM_READ_PROT, UC_MEM_READ_UNMAPPED

        pc = self._pc()
        if access in (UC_MEM_FETCH_UNMAPPED, UC_MEM_FETCH_PROT):
            self._fault = Fault(rp.CAUSE_FETCH_FAULT, address, f"fetch at {address:#x}")
            return False
        cause = rp.CAUSE_LOAD_FAULT if access in (UC_MEM_READ_UNMAPPED, UC_MEM_READ_PROT) else rp.CAUSE_STORE_FAULT
        try:
            if rv.decode_amo(self._insn_at(pc)) in ("amo", "sc"):
                cause = rp.CAUSE_STORE_FAULT
        except Exception:
            pass
        self._fault = Fault(cause, pc, f"access at {address:#x}")
        return False
