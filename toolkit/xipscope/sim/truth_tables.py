"""Ground-truth tables of a twin run, as text (CLI, gdb `monitor stats`) and JSON, always labelled as a model."""

from __future__ import annotations

from . import MODEL_NOTE
from .hazard3 import Machine


def _rate(hits: int, acc: int) -> str:
    return f"{100.0 * hits / acc:5.1f}%" if acc else "    -"


def format_function_table(m: Machine, limit: int | None = None) -> str:
    rows = sorted(m.function_stats(), key=lambda r: r.cycles, reverse=True)
    if limit is not None:
        rows = rows[:limit]
    total_i = m.instructions
    total_c = m.cycles
    lines = [f"{MODEL_NOTE}: ground truth per function ({m.firmware.name}; timing: flash miss "
             f"{m.timing.flash_miss_cycles} cycles, PSRAM miss {m.timing.psram_miss_cycles} cycles)",
             f"{'function':<22} {'region':<7} {'instr':>10} {'cycles':>11} {'cyc%':>6} {'xip acc':>10} "
             f"{'hits':>10} {'misses':>9} {'hit rate':>8}"]
    for r in rows:
        lines.append(f"{r.name[:22]:<22} {r.region:<7} {r.instructions:>10} {r.cycles:>11} "
                     f"{100.0 * r.cycles / total_c if total_c else 0:5.1f}% {r.xip_accesses:>10} {r.xip_hits:>10} "
                     f"{r.xip_misses:>9} {_rate(r.xip_hits, r.xip_accesses):>8}")
    lines.append(f"{'total':<22} {'':<7} {total_i:>10} {total_c:>11}")
    lines.append("")
    lines.append(f"{MODEL_NOTE}: XIP accesses by device")
    lines.append(f"{'device':<8} {'accesses':>10} {'hits':>10} {'hit rate':>8}")
    for dev, s in m.region_stats().items():
        lines.append(f"{dev:<8} {s['accesses']:>10} {s['hits']:>10} {_rate(s['hits'], s['accesses']):>8}")
    ctr_acc, ctr_hit = m.cache.read_counter(0), m.cache.read_counter(1)
    lines.append(f"XIP_CTRL CTR_ACC={ctr_acc} CTR_HIT={ctr_hit} (since the firmware last cleared them)")
    if m.traps:
        lines.append(format_traps(m))
    return "\n".join(lines) + "\n"


def format_traps(m: Machine) -> str:
    """`traps: mcause 5 at 0x20000100, mcause 1 at 0x100002ba (x 90909 in a row)`: runs of the same trap counted."""
    runs: list[list] = []
    for t in m.traps:
        if runs and runs[-1][0] == (t.cause, t.epc):
            runs[-1][1] += 1
        else:
            runs.append([(t.cause, t.epc), 1])
    text = ", ".join(f"mcause {c} at {e:#x}" + (f" (x {n} in a row)" if n > 1 else "") for (c, e), n in runs)
    kept = "" if m.trap_count == len(m.traps) else f" (the latest {len(m.traps)} of {m.trap_count})"
    return f"traps{kept}: {text}"


def trap_loop_text(m: Machine) -> str | None:
    """One line naming a trap loop the run ended in (Machine.repeated_trap), else None."""
    from ..chip import riscv as rv

    repeated = m.repeated_trap()
    if repeated is None:
        return None
    trap, n = repeated
    mtvec = m.read_register("mtvec") & ~3
    return (f"trap loop: the last {n} traps were all mcause {trap.cause} "
            f"({rv.EXCEPTION_NAMES.get(trap.cause, 'unknown cause')}) at mepc = {_where(m, trap.epc)}: the handler "
            f"at mtvec = {_where(m, mtvec)} returns to an instruction that traps again (a board spins here until a "
            "debugger halts it)")


def _where(m: Machine, address: int) -> str:
    i = m.elf.function_index(address)
    if i < 0 or i >= len(m.elf.functions):
        return f"{address:#010x}"
    fn = m.elf.functions[i]
    return f"{address:#010x} {fn.name}+{address - fn.start:#x}"


def _cycles_by_region(functions) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in functions:
        out[f.region] = out.get(f.region, 0) + f.cycles
    return out


def stats_json(m: Machine, limit: int | None = None) -> dict:
    """The ground truth as JSON. With `limit`, a summary short enough for one GDB reply (a kernel has thousands of
    functions and traps): the `limit` functions with the most cycles, hottest first, the latest `limit` traps, and
    no UART text (`monitor uart` gives it)."""
    functions, traps = m.function_stats(), list(m.traps)
    by_region = _cycles_by_region(functions)
    if limit is not None:
        functions = sorted(functions, key=lambda r: r.cycles, reverse=True)[:limit]
        traps = traps[-limit:] if limit else []
    stats = {
        "model": MODEL_NOTE,
        "firmware": str(m.firmware),
        "timing": {"flash_miss_cycles": m.timing.flash_miss_cycles, "psram_miss_cycles": m.timing.psram_miss_cycles},
        "instructions": m.instructions,
        "cycles": m.cycles,
        "functions": [vars(r) | {"hit_rate": r.hit_rate} for r in functions],
        "devices": m.region_stats(),
        # cycles by the memory region each function is in, over every function (a summary's too)
        "cycles_by_region": by_region,
        "traps": [{"mcause": t.cause, "mepc": t.epc, "instret": t.instret} for t in traps],   # the latest
        "trap_count": m.trap_count,
        # store/AMO faults whose handler did the AMO and returned past it (a kernel's AMO emulation; mret-observed)
        "emulated_atomics": {"traps": m.emulated_amos[0], "cycles": m.emulated_amos[1],
                             "share": m.emulated_amos[1] / m.cycles if m.cycles else None},
    }
    if limit is None:
        stats["uart"] = m.uart.text()
    return stats
