"""The Hazard3 twin's ground truth (a model's numbers): what each function and each XIP device cost as the model ran.
A mixin of Machine (core.py), which holds the counters.

The hooks (hooks.py) count as cheaply as they can; this module sums on request:
  - instructions: each block record's runs times its instructions in each function, less those a trap or a stop
    took back (`_f_instr_adj`, traps.py `_unretire_from`);
  - fetches: a block within one function counts its runs and misses in its record; a block spanning functions counts
    each word straight into the per-function lists (`_f_*`, index -1 for code outside every ELF function) and the
    per-device ones (`_mixed_fetch_*_by_cs`; CS0 flash, CS1 PSRAM);
  - data accesses: per device as they happen (`_data_*_by_cs`), per function in the record of the block that made
    them or, from a block spanning functions (or none known), by the pc's function (hooks.py `_data_by_pc`);
  - stall cycles: a record's misses times its penalty plus its data stalls, and `_f_stall` (the rest, and wfi sleep).
"""

from __future__ import annotations

from ..truth import FunctionStats, region_of
from .hooks import B_COUNT, B_CS, B_DACC, B_DHIT, B_DSTALL, B_FIDX, B_MISS, B_PEN, B_SEGS, B_WORDS


class GroundTruth:
    """Machine's ground truth per function and per device (a mixin: Machine holds the counters; see core.py)."""

    def _fidx_at(self, pc: int) -> int:
        f = self._pc_fidx.get(pc)
        if f is None:
            f = self._pc_fidx[pc] = self.elf.function_index(pc)
        return f

    def function_stats(self) -> list[FunctionStats]:
        """Per ELF function (plus `?` for code outside them), exactly as the model ran: only functions that ran."""
        nf = len(self.elf.functions)
        instr = list(self._f_instr_adj)
        facc, fhit = list(self._f_fetch_acc), list(self._f_fetch_hit)
        dacc, dhit = list(self._f_data_acc), list(self._f_data_hit)
        stall = list(self._f_stall)
        for b in self._all_blocks.values():
            c = b[B_COUNT]
            for f, k in b[B_SEGS]:
                instr[f] += c * k
            f = b[B_FIDX]
            if f is None:
                continue   # accounted directly, per line and per access
            facc[f] += c * b[B_WORDS]
            fhit[f] += c * b[B_WORDS] - b[B_MISS]
            dacc[f] += b[B_DACC]
            dhit[f] += b[B_DHIT]
            stall[f] += b[B_MISS] * b[B_PEN] + b[B_DSTALL]
        rows = []
        for i in list(range(nf)) + [-1]:
            if not (instr[i] or facc[i] or dacc[i]):
                continue
            if i == -1:
                name, start, region = "?", 0, "?"
            else:
                fn = self.elf.functions[i]
                name, start, region = fn.name, fn.start, region_of(fn.start)
            rows.append(FunctionStats(name, start, region, instr[i], instr[i] + stall[i],
                                      facc[i], fhit[i], dacc[i], dhit[i]))
        return rows

    def region_stats(self) -> dict[str, dict[str, int]]:
        """XIP accesses and hits by the device they went to (flash = CS0, psram = CS1), fetch and data together."""
        acc = [self._data_acc_by_cs[i] + self._mixed_fetch_acc_by_cs[i] for i in (0, 1)]
        hit = [self._data_hit_by_cs[i] + self._mixed_fetch_hit_by_cs[i] for i in (0, 1)]
        for b in self._all_blocks.values():
            if b[B_FIDX] is not None and b[B_WORDS]:
                acc[b[B_CS]] += b[B_COUNT] * b[B_WORDS]
                hit[b[B_CS]] += b[B_COUNT] * b[B_WORDS] - b[B_MISS]
        return {"flash": {"accesses": acc[0], "hits": hit[0]}, "psram": {"accesses": acc[1], "hits": hit[1]}}
