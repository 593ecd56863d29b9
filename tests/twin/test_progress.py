"""Long operations report progress (snapshots, dumps, flash images read over a debugger, profiles), drawn by the CLI's
one ProgressDisplay: a bar on a terminal, plain lines without control characters anywhere else. The targets are the
RP2350 twin (a model)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xipscope.chip.memory_map import get_memory_map
from xipscope.cli import progress as progress_module
from xipscope.cli.progress import ProgressDisplay, byte_text
from xipscope.dump import READ_BLOCK, dump_lines
from xipscope.image.flash import TargetFlash
from xipscope.image.inspect import inspect_flash
from xipscope.image.picobin import SEARCH_WINDOW
from xipscope.sim.target import SimTarget
from xipscope.snapshot.take import BLOCK, take_snapshot

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
XIPPROBE = FIRMWARE / "xipprobe.elf"
EXAMPLE = FIRMWARE / "seedlayout.uf2"
RP2350 = get_memory_map("rp2350")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")     # anything but \t and \n: escapes, \r, backspace


def xipscope(*args, cwd=REPO, timeout=120):
    return subprocess.run([sys.executable, "-m", "xipscope", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def assert_counts_rise_to_the_total(calls):
    counts = [done for done, _ in calls]
    assert counts == sorted(set(counts)), calls              # strictly increasing
    assert calls[-1][0] == calls[-1][1], calls                # the last call is done == total


@pytest.fixture()
def twin():
    t = SimTarget(f"{XIPPROBE}?flash={EXAMPLE}")
    yield t
    t.close()


def test_snapshot_progress_counts_every_byte_saved_against_one_total(twin, tmp_path):
    calls = []
    psram = 5 * BLOCK // 2               # 2.5 blocks: two full reads and a half one
    manifest = take_snapshot(twin, tmp_path / "s", RP2350, sizes={"psram": psram},
                             progress=lambda done, total: calls.append((done, total)))
    sram = RP2350["sram"].size           # the twin has all of SRAM: saved whole ("map" extent)
    assert [(r["name"], r["size"]) for r in manifest["regions"]] == [("psram", psram), ("sram", sram)]
    assert_counts_rise_to_the_total(calls)
    assert {total for _, total in calls} == {sram + psram}    # known before the first byte is read
    assert [done for done, _ in calls] == [BLOCK, 2 * BLOCK, psram, psram + sram]


def test_dump_progress_follows_the_blocks_across_regions(twin):
    calls = []
    length = 3 * READ_BLOCK + 0x100
    lines = list(dump_lines(twin, 0x10000000, length, RP2350, progress=lambda d, t: calls.append((d, t))))
    assert sum(len(ln.data) for ln in lines) == length
    assert calls == [(READ_BLOCK, length), (2 * READ_BLOCK, length), (3 * READ_BLOCK, length), (length, length)]
    calls.clear()
    list(dump_lines(twin, 0x10FFFFF0, 0x20, RP2350, progress=lambda d, t: calls.append((d, t))))
    assert calls == [(0x10, 0x20), (0x20, 0x20)]              # flash's last line, then psram's first


def test_image_progress_counts_the_search_windows_of_flash_0_and_each_partition(twin):
    calls = []
    report = inspect_flash(TargetFlash(twin), progress=lambda d, t: calls.append((d, t)))
    assert len(report.partitions) == 3                        # the seed's dtb, LINUX, rootfs: each over 4 KiB
    total = 4 * SEARCH_WINDOW
    assert calls == [(0, SEARCH_WINDOW), (SEARCH_WINDOW, total), (2 * SEARCH_WINDOW, total),
                     (3 * SEARCH_WINDOW, total), (total, total)]


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_a_terminal_gets_a_bar_and_anything_else_plain_lines(monkeypatch):
    monkeypatch.delenv("TERM", raising=False)
    monkeypatch.setenv("COLUMNS", "100")
    terminal = Stream(tty=True)
    with ProgressDisplay("snapshot", stream=terminal) as shown:
        shown.show_bytes(64 << 20, 64 << 20)
    drawn = terminal.getvalue()
    assert "snapshot" in drawn and "64.0 of 64.0 MiB" in drawn and "\x1b[" in drawn   # rich's cursor moves

    monkeypatch.setattr(progress_module, "PLAIN_EVERY_S", 0.0)   # every update is due: no waiting in a test
    log = Stream(tty=False)
    with ProgressDisplay("snapshot", stream=log) as shown:
        shown.show_bytes(1 << 20, 2 << 20)
        shown.show_bytes(2 << 20, 2 << 20)
    assert log.getvalue() == "xipscope snapshot: 1.0 of 2.0 MiB\nxipscope snapshot: 2.0 of 2.0 MiB\n"


def test_a_short_run_off_a_terminal_prints_nothing():
    log = Stream(tty=False)
    with ProgressDisplay("dump", stream=log) as shown:
        shown.show_bytes(512, 1024)           # well inside the first PLAIN_EVERY_S seconds
    assert log.getvalue() == ""


def test_byte_text():
    assert byte_text(512, 2048) == "0.5 of 2.0 KiB"
    assert byte_text(3 << 20, 24 << 20) == "3.0 of 24.0 MiB"
    assert byte_text(5 << 20, None) == "5.0 MiB"


def test_long_commands_with_stderr_not_a_terminal_print_no_control_characters(tmp_path):
    url = f"sim://{XIPPROBE}?flash={EXAMPLE}"
    runs = {
        "snapshot": xipscope("snapshot", "--target", url, "--flash", "--out", str(tmp_path / "snap")),
        "dump": xipscope("dump", "0x10000000", "0x40000", "--target", url, "--raw", str(tmp_path / "raw.bin")),
        "image": xipscope("image", "--target", url),
        "profile": xipscope("profile", "--target", "sim://xipbench.elf", "--elf", "xipbench.elf", "--samples", "200",
                            "--out", str(tmp_path / "prof")),
    }
    for name, run in runs.items():
        assert run.returncode == 0, (name, run.stderr)
        assert not CONTROL.search(run.stderr), (name, run.stderr)
        # no bar drawn once at the end either: each line is a plain `xipscope COMMAND: ...`
        assert all(line.startswith(f"xipscope {name}: ") for line in run.stderr.splitlines()), (name, run.stderr)
    assert "xipscope snapshot: flash: 16777216 bytes" in runs["snapshot"].stderr     # its log lines still come
    assert (tmp_path / "raw.bin").stat().st_size == 0x40000
