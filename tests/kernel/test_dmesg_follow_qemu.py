"""`xipscope dmesg --follow` against the real rv32 Linux 6.1 kernel in QEMU: followed from reset through its boot to
its panic, every console line once, in order, as the console printed it; an idle poll reads the ring's head only; the
command prints the log and stops cleanly on Ctrl-C. Rings that lose records between polls: test_dmesg_follow.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from support.console_match import CONSOLE_LOGLEVEL, console_lines, match_console
from qemu import boot_kernel_halted, wait_for_console
from xipscope.linux.printk import (LostRecords, format_record, kernel_log_facts, open_printk_cursor,
                                   poll_printk_records)
from xipscope.targets.base import READ_WHILE_RUNNING
from xipscope.targets.rsp import RspTarget

pytestmark = pytest.mark.kernel

PANIC_END = "---[ end Kernel panic - not syncing: VFS: Unable to mount root fs"


class CountingTarget:
    """The target, with the bytes of memory read through it counted."""

    def __init__(self, target):
        self.target = target
        self.bytes_read = 0

    def read_memory(self, address: int, size: int) -> bytes:
        self.bytes_read += size
        return self.target.read_memory(address, size)

    def __getattr__(self, name):
        return getattr(self.target, name)


def test_follow_from_reset_prints_each_console_line_once(dwarf_kernel, tmp_path):
    facts = kernel_log_facts(dwarf_kernel.vmlinux)
    with boot_kernel_halted(dwarf_kernel, tmp_path) as kernel:
        target = CountingTarget(RspTarget("127.0.0.1", kernel.port))
        try:
            cursor = open_printk_cursor(target, facts)
            assert poll_printk_records(target, cursor) == []         # at reset the ring is empty
            target.resume()
            events: list = []
            busy_polls = 0
            deadline = time.monotonic() + 300        # a bound against a hang, not a speed requirement
            while not any(not isinstance(e, LostRecords) and e.text.startswith(PANIC_END) for e in events):
                assert time.monotonic() < deadline, f"no panic after {len(events)} records"
                new = poll_printk_records(target, cursor)
                busy_polls += bool(new)
                events += new
                time.sleep(0.05)
            # QEMU's gdbstub reads no memory while the guest runs: each poll was a brief halt, and it runs again.
            assert READ_WHILE_RUNNING not in target.capabilities and target.state() == "running"

            target.bytes_read = 0
            assert poll_printk_records(target, cursor) == []         # after the panic nothing more is written
            # `prb` (4 bytes) and the ring's head_id and tail_id (8): not its 64 KiB of text and 1024 descriptors.
            assert target.bytes_read == 12
        finally:
            target.close()
        print(f"{len(events)} records in {busy_polls} polls")
        assert busy_polls > 1                       # followed while the kernel wrote, not read once at the end
        assert not any(isinstance(e, LostRecords) for e in events)    # the 64 KiB ring holds the whole boot
        assert [r.seq for r in events] == list(range(len(events)))     # each record once, in order, from the first
        ours = [line for r in events if r.level < CONSOLE_LOGLEVEL for line in format_record(r, True)]
        match_console(console_lines(wait_for_console(kernel, PANIC_END)), ours)
        assert ours[0].startswith("[    0.000000][    T0] Linux version 6.1.")


def test_follow_command_prints_the_log_and_stops_on_ctrl_c(dwarf_qemu):
    elf = str(dwarf_qemu.build.vmlinux)
    cli = subprocess.Popen([sys.executable, "-m", "xipscope", "dmesg", "--follow", "--elf", elf, "--target",
                            dwarf_qemu.url, "--interval", "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        lines = []
        while not lines or PANIC_END not in lines[-1]:
            line = cli.stdout.readline()
            assert line, f"--follow ended before the panic line: {cli.stderr.read()}"
            lines.append(line.rstrip("\n"))
        cli.send_signal(signal.SIGINT)
        rest, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0 and "Traceback" not in err, err
    assert "resumed rsp://" in err                 # QEMU stops the guest for an attaching client; follow runs it
    whole = subprocess.run([sys.executable, "-m", "xipscope", "dmesg", "--elf", elf, "--target", dwarf_qemu.url],
                           capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0, whole.stderr
    assert lines + rest.splitlines() == whole.stdout.splitlines()

