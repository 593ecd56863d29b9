"""Run the twin with its native (C) hooks or its Python hooks, and everything the model computed, to compare the two
(twin/test_sim_native_hooks.py, kernel/test_sim_native_hooks_kernel.py)."""

from __future__ import annotations

from xipscope.chip import rp2350 as rp
from xipscope.sim.hazard3 import Machine


def machine(native: bool, monkeypatch, *args, **kwargs) -> Machine:
    monkeypatch.setenv("XIPSCOPE_NATIVE", "1" if native else "0")
    m = Machine(*args, **kwargs)
    assert (m._native is not None) == native
    return m


def state(m: Machine) -> dict:
    """Everything the model computed that a face, a test or the profiler can read."""
    counters = [int.from_bytes(m.read_memory(rp.XIP_CTRL_BASE + off, 4), "little")
                for off in (rp.XIP_CTRL_CTR_ACC, rp.XIP_CTRL_CTR_HIT)]
    return {
        "registers": m.read_registers(),
        "instructions": m.instructions,
        "cycles": m.cycles,
        "ctr": list(m.cache.ctr),
        "xip_ctrl_counters": counters,
        "tags": [list(t) for t in m.cache.tags],
        "functions": m.function_stats(),
        "regions": m.region_stats(),
        "traps": list(m.traps),
        "trap_count": m.trap_count,
        "emulated_amos": list(m.emulated_amos),
        "uart": m.uart.text(),
    }
