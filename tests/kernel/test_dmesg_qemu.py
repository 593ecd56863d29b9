"""`xipscope dmesg` against a real rv32 Linux 6.1 kernel in QEMU: every console line, in order, same timestamps."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.console_match import CONSOLE_LOGLEVEL, console_lines, match_console
from support.kernel_image import read_kernel_image

pytestmark = pytest.mark.kernel


def xipscope(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xipscope", *args], capture_output=True, text=True, timeout=120)


def expected_console_records(records: list[dict]) -> list[dict]:
    return [r for r in records if r["level"] < CONSOLE_LOGLEVEL]


def dmesg_json(symbols_file, source: list[str]) -> list[dict]:
    result = xipscope("dmesg", "--elf", str(symbols_file), *source, "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def check_against_console(kernel, dmesg_args: list[str], symbols_file) -> None:
    wrapped = kernel.build.variant == "nodwarf-wrap"
    levels = ",".join(str(level) for level in range(CONSOLE_LOGLEVEL))
    result = xipscope("dmesg", "--elf", str(symbols_file), *dmesg_args, "--level", levels)
    assert result.returncode == 0, result.stderr
    ours = result.stdout.splitlines()
    console = console_lines(kernel.console_text())
    match_console(console, ours, tail_only=wrapped)
    if wrapped:
        assert len(ours) < len(console) - 10, "the 4 KiB ring should have wrapped during boot"
        assert not any("Linux version" in line for line in ours)
    else:
        assert ours[0].startswith("[    0.000000][    T0] Linux version 6.1.")


def test_dmesg_reproduces_the_console(booted_kernel):
    check_against_console(booted_kernel, ["--target", booted_kernel.url], booted_kernel.build.vmlinux)


def test_dmesg_from_system_map(booted_kernel):
    check_against_console(booted_kernel, ["--target", booted_kernel.url], booted_kernel.build.system_map)


def test_dmesg_from_a_ram_image_dumped_through_rsp(booted_kernel, tmp_path):
    start, image, _ = read_kernel_image(booted_kernel)
    dump = tmp_path / "ram.bin"
    dump.write_bytes(image)
    check_against_console(booted_kernel, ["--dump", f"{dump}@{start:#x}"], booted_kernel.build.vmlinux)


def test_json_records_and_debug_level(booted_kernel):
    records = dmesg_json(booted_kernel.build.vmlinux, ["--target", booted_kernel.url])
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert set(records[0]) == {"seq", "ts_ns", "level", "facility", "flags", "caller", "text", "dev_info"}
    assert all(r["facility"] == 0 for r in records)   # kernel messages
    assert records[-1]["text"].startswith("---[ end Kernel panic - not syncing: VFS: Unable to mount root fs")
    assert any(r["text"].startswith("Kernel panic - not syncing") and r["level"] == 0 for r in records)
    if booted_kernel.build.variant == "dwarf":
        # CONFIG_PRINTK_CALLER: boot records come from the idle task, later ones from init (T1)
        assert records[0]["caller"] == "T0" and records[-1]["caller"] == "T1"
        assert seqs[0] == 0
        debug = [r["text"] for r in records if r["level"] == 7]
        assert debug and all(t.startswith("pcpu-alloc:") for t in debug)   # in the ring, never on the console
        console = booted_kernel.console_text()
        assert not any(t in console for t in debug)
    else:
        assert all(r["caller"] is None for r in records)
        assert seqs[0] > 0   # the oldest records were overwritten


def test_warm_dmesg_opens_no_elf_and_imports_no_numpy(dwarf_qemu):
    vmlinux = str(dwarf_qemu.build.vmlinux)
    assert xipscope("dmesg", "--elf", vmlinux, "--target", dwarf_qemu.url).returncode == 0   # fills the caches
    warm = subprocess.run([sys.executable, "-X", "importtime", "-m", "xipscope", "dmesg", "--elf", vmlinux,
                           "--target", dwarf_qemu.url], capture_output=True, text=True, timeout=60)
    assert warm.returncode == 0 and "Kernel panic" in warm.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in warm.stderr.splitlines() if "|" in line}
    assert "xipscope.linux.printk" in imported
    assert not {"numpy", "elftools", "pandas"} & imported


def test_wrong_elf_or_truncated_image_is_a_clear_error(dwarf_qemu, nodwarf_kernel, tmp_path):
    # the other variant's vmlinux: `prb` sits elsewhere, so what it points at is no ring
    wrong = xipscope("dmesg", "--elf", str(nodwarf_kernel.vmlinux), "--target", dwarf_qemu.url)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert "xipscope dmesg: error:" in wrong.stderr
    assert "not a printk_ringbuffer" in wrong.stderr or "cannot read memory" in wrong.stderr

    short = tmp_path / "short.bin"
    short.write_bytes(b"\0" * 4096)
    cut = xipscope("dmesg", "--elf", str(dwarf_qemu.build.vmlinux), "--dump", f"{short}@0x80000000")
    assert cut.returncode == 1 and "falls outside the image (0x80000000..0x80001000)" in cut.stderr

    not_elf = tmp_path / "vmlinux"
    not_elf.write_bytes(b"\x7fELF" + b"\x01" * 60)
    bad = xipscope("dmesg", "--elf", str(not_elf), "--target", dwarf_qemu.url)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and str(not_elf) in bad.stderr
