"""The twin's C hooks (sim/native/xip_hooks.c) compute what its Python hooks compute (hazard3/hooks.py): the same
firmware run both ways ends with the same registers, cycles, XIP counters (as the firmware reads them through
XIP_CTRL), cache contents, traps and per-function ground truth. XIPSCOPE_NATIVE=0 picks the Python hooks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


from support.native_hooks import machine, state
from xipscope.chip import rp2350 as rp
from xipscope.sim.native import hooks_library
from xipscope.sim.runner import StopReason, run_to_cycle

REPO = Path(__file__).resolve().parents[2]
XIPBENCH = REPO / "firmware" / "xipbench.elf"


def test_the_native_hooks_build_here():
    # The exactness tests below compare something only if the C hooks exist; `make test` installs the C compiler.
    assert hooks_library() is not None, "no C compiler (cc) or the build failed: the tests here would compare nothing"


def test_xipbench_is_the_same_with_native_and_python_hooks(monkeypatch):
    runs = {}
    for native in (True, False):
        m = machine(native, monkeypatch, XIPBENCH)
        assert m.run(20_000_000).reason == StopReason.IDLE
        runs[native] = state(m)
    assert runs[True]["uart"].count("phase ") == 6    # the firmware ran all its phases and printed its counters
    assert runs[True] == runs[False]


def test_a_traced_run_is_the_same_with_native_and_python_hooks(monkeypatch):
    """With a trace (every fetch and data access recorded), the C hooks hand each XIP access to Python."""
    runs = {}
    for native in (True, False):
        m = machine(native, monkeypatch, XIPBENCH, trace=True)
        m.run(300_000)
        runs[native] = (state(m), list(m.trace))
    assert len(runs[True][1]) > 100_000
    assert runs[True] == runs[False]


def test_runs_to_cycles_land_alike(monkeypatch):
    """Runs to a cycle (the landing rule, handed back to Python at each block within reach) stop at the same pcs."""
    stops = {}
    for native in (True, False):
        m = machine(native, monkeypatch, XIPBENCH)
        seen = []
        for target in range(1_000, 3_000_000, 99_991):
            assert run_to_cycle(m, target) == StopReason.BUDGET
            seen.append((m.pc, m.cycles, m.instructions, tuple(m.cache.ctr)))
        stops[native] = (seen, state(m))
    assert stops[True] == stops[False]


def test_a_halt_request_stops_both_alike(monkeypatch):
    """A halt asked for before a slice (the budget cell the C hook reads) stops it at once, natively too."""
    for native in (True, False):
        m = machine(native, monkeypatch, XIPBENCH)
        m.run(10_000)
        before = m.instructions
        m.request_halt()
        assert m.run_slice(1_000) == StopReason.HALT
        assert m.instructions == before


def test_without_a_compiler_the_python_hooks_run(tmp_path):
    # Injected fault: a compiler that does not exist (the C hooks cannot be built), in a fresh cache.
    env = dict(os.environ, CC=str(tmp_path / "no-such-cc"), XIPSCOPE_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=str(REPO / "toolkit"))
    env.pop("XIPSCOPE_NATIVE", None)
    code = ("from xipscope.sim.hazard3 import Machine\n"
            f"m = Machine({str(XIPBENCH)!r})\n"
            "m.run(100_000)\n"
            "print(m._native is None, m.instructions >= 100_000)\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True"]
    lines = [line for line in r.stderr.splitlines() if "native hooks" in line]
    assert len(lines) == 1 and "using the Python hooks" in lines[0], r.stderr
