"""`xipscope top` driven as a user drives it: in a terminal (tmux), against the RP2350 twin (a model) running xipbench.

The in-process twin is paced to its own 1 MHz clock, so xipbench's phases follow one another in simulated time; every
wait below polls the screen for what must appear (with a generous deadline for a loaded host) rather than sleeping a
fixed time and expecting a given state.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xipscope.profile.top import TopView

REPO = Path(__file__).resolve().parents[2]
XIPBENCH = REPO / "firmware" / "xipbench.elf"
WAIT_S = 180                      # the longest any screen state may take to appear on a loaded host


class Tmux:
    """One tmux server of our own (its own socket), so the test neither sees nor touches a user's sessions."""

    def __init__(self, socket: str):
        self.base = ["tmux", "-L", socket]

    def run(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, check=True, timeout=30).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "top")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "top", *keys)

    def wait_for(self, predicate, what: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"the screen never showed {what} within {WAIT_S} s; last screen:\n{screen}")


def since_reset(screen: str) -> int:
    return int(re.search(r"samples since reset ([\d,]+)", screen).group(1).replace(",", ""))


def body(screen: str) -> list[str]:
    return [line for line in screen.splitlines() if line.strip()]


@pytest.fixture
def top_session(tmp_path):
    assert shutil.which("tmux"), "tmux is needed (Makefile APT_PACKAGES installs it)"
    tmux = Tmux(f"xipscope-test-{os.getpid()}")
    out = tmp_path / "top"
    env = f"PYTHONPATH={shlex.quote(str(REPO / 'toolkit'))}"
    command = (f"{env} {shlex.quote(sys.executable)} -m xipscope top --target sim://{XIPBENCH} --elf {XIPBENCH} "
               f"--rate 500 --out {out}; echo EXIT=$?; sleep 600")
    tmux.run("new-session", "-d", "-s", "top", "-x", "120", "-y", "32", command)
    try:
        yield tmux, out
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True, timeout=30)


def test_top_shows_the_phases_pauses_resets_and_quits(top_session):
    tmux, out = top_session
    first = tmux.wait_for(lambda s: "work_flash" in s and re.search(r"XIP hit rate, last [\d.]+ s +[\d.]+%", s),
                          "work_flash with a hit rate")
    assert "work_psram" not in first          # xipbench's flash phases come first, its psram phases last
    assert re.search(r"work_flash +flash\b", first), first      # the function's region beside it
    later = tmux.wait_for(lambda s: "work_psram" in s, "work_psram (xipbench's last phases)")
    assert re.search(r"work_psram +psram\b", later), later

    tmux.keys("p")
    paused = tmux.wait_for(lambda s: "PAUSED" in s, "the paused state")
    time.sleep(2.5)                               # two refreshes: a paused view holds still
    assert body(tmux.screen()) == body(paused)
    before_reset = since_reset(paused)

    tmux.keys("p", "r")
    after = tmux.wait_for(lambda s: "[running]" in s and since_reset(s) < before_reset, "the counts reset")
    assert since_reset(after) < before_reset

    tmux.keys("q")
    tmux.wait_for(lambda s: "EXIT=0" in s, "top exiting with status 0")
    meta = json.loads((out / "meta.json").read_text())      # the samples went to disk as `profile` writes them
    assert meta["samples"] > before_reset and meta["stop_reason"] == "stopped by the user"
    assert meta["error"] is None


def test_the_view_counts_only_what_arrived_since_a_reset_and_holds_while_paused():
    """TopView alone, fed rows by hand with a manual clock: counts, the interval's hit rate, pause and reset."""
    from xipscope.chip.memory_map import get_memory_map
    from xipscope.elf.symbols import load_symbols

    symbols = load_symbols(XIPBENCH)
    work_flash = symbols.address_of("work_flash")
    work_sram = symbols.address_of("work_sram")
    now = [0.0]
    view = TopView(symbols, get_memory_map("rp2350"), clock=lambda: now[0])

    def feed(pc, hit, acc, halted_ns=1_000_000):
        view.add(0, pc, halted_ns, hit, acc, None, None)

    feed(work_flash, 100, 200)
    feed(work_flash, 190, 300)         # 90 hits of 100 accesses
    feed(work_sram, 280, 400)          # 90 of 100
    now[0] = 1.0
    frame = view.refresh()
    assert frame.functions[0][:3] == ("work_flash", "flash", 2)
    assert frame.functions[1][:3] == ("work_sram", "sram", 1)
    assert frame.hit_rate == pytest.approx(180 / 200)
    assert frame.samples_per_s == pytest.approx(3.0)
    assert frame.halted_share == pytest.approx(0.003) and frame.halted_seen_by == "host"

    feed(work_sram, 290, 500)          # the interval starts at the previous refresh's last row: 10 hits of 100
    now[0] = 2.0
    frame = view.refresh()
    assert frame.hit_rate == pytest.approx(0.1) and frame.samples == 4

    view.toggle_pause()
    feed(work_sram, 300, 600)
    now[0] = 3.0
    held = view.refresh()
    assert held.paused and held.samples == 4 and held.functions == frame.functions
    view.toggle_pause()
    view.reset()
    feed(work_flash, 350, 700)         # counters from the last row seen while paused: 50 of 100
    now[0] = 4.0
    frame = view.refresh()
    assert frame.samples == 1 and frame.functions[0][:3] == ("work_flash", "flash", 1)
    assert frame.hit_rate == pytest.approx(0.5)
