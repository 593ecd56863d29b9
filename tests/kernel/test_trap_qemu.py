"""`xipscope trap` on real faults injected into the real rv32 Linux kernel in QEMU, live and from the oops it prints.

The fault is real (QEMU raises it; the kernel's own handler prints the oops); kernel/faults.py says how it is injected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faults import UNMAPPED, find_instruction, inject_fault
from qemu import boot_kernel_halted, wait_for_console
from xipscope.chip.memory_map import get_memory_map
from xipscope.elf import load_symbols
from xipscope.targets.rsp import RspTarget

REPO = Path(__file__).resolve().parents[2]


def xipscope(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit"))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "xipscope", *args], capture_output=True, text=True, env=env,
                            timeout=120)
    return result, time.perf_counter() - started


def let_kernel_print_oops(kernel, title: str) -> str:
    target = RspTarget("127.0.0.1", kernel.port, timeout=30)
    try:
        target.resume()
        wait_for_console(kernel, title)
        console = wait_for_console(kernel, "end trace")
        time.sleep(0.3)
        target.halt()
    finally:
        target.close()
    return console


@pytest.mark.parametrize("kind, function, cause, title", [
    ("store", "prepare_namespace", 7, "Oops - store (or AMO) access fault"),
    ("amo", None, 5, "Oops - load access fault"),          # QEMU 7.2: an AMO to unmapped memory is a load fault
])
def test_injected_fault_live_and_from_oops(dwarf_kernel, tmp_path, kind, function, cause, title):
    vmlinux = dwarf_kernel.vmlinux
    symbols = load_symbols(vmlinux)
    insn = find_instruction(vmlinux, symbols, kind, function)
    assert get_memory_map("qemu-virt").find(UNMAPPED) is None
    func, off, file, line = symbols.symbolize([insn.address])[0]

    with boot_kernel_halted(dwarf_kernel, tmp_path) as kernel:
        assert inject_fault(kernel.port, symbols, insn) == cause

        # live: stopped at handle_exception
        result, seconds = xipscope("trap", "--target", kernel.url, "--elf", str(vmlinux), "--map", "qemu-virt",
                                   "--json")
        assert result.returncode == 0, result.stderr
        live = json.loads(result.stdout)
        print(f"xipscope trap --target (live, {kind}): {seconds * 1000:.0f} ms end to end")
        assert live["cause_code"] == cause and live["interrupt"] is False
        assert live["mepc"] == insn.address
        assert live["function"] == f"{func}+{off:#x}"
        assert live["location"] == f"{file}:{line}" and file.endswith((".c", ".h", ".S"))
        assert live["instruction"] == insn.text and live["instruction_source"] == "target"
        assert live["fault_address"] == UNMAPPED and live["fault_region"] == "unmapped"
        assert live["mtval"] == UNMAPPED      # QEMU fills mtval (Hazard3 doesn't): a check of the recomputed address
        assert not any("mtval says" in note for note in live["notes"])
        assert live["mstatus_fields"]["mpp"] == "M"
        assert live["backtrace"][0]["pc"] == insn.address and len(live["backtrace"]) >= 2
        if kind == "amo":
            assert live["explanation"].startswith("atomic access: amo")
            assert "cause 5" in live["explanation"]
        else:
            assert "store to 0x800000" in live["explanation"] and "bad pointer" in live["explanation"]

        if kind == "store":
            # a snapshot taken at the trap vector gives the same answer, later, without the target
            snap = tmp_path / "at-trap"
            result, seconds = xipscope("snapshot", "--target", kernel.url, "--map", "qemu-virt", "--elf", str(vmlinux),
                                       "--out", str(snap), "--no-resume")
            assert result.returncode == 0, result.stderr
            result, _ = xipscope("trap", "--target", f"snapshot://{snap}", "--elf", str(vmlinux), "--json")
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout) | {"source": kernel.url} == live

        # the human report names the same things
        text, _ = xipscope("trap", "--target", kernel.url, "--elf", str(vmlinux), "--map", "qemu-virt")
        assert f"exception {cause}" in text.stdout and insn.text in text.stdout and "unmapped" in text.stdout

        console = let_kernel_print_oops(kernel, title)
        assert title in console

        # post-mortem: the log as xipscope dmesg reads it back, decoded through --oops
        log, _ = xipscope("dmesg", "--target", kernel.url, "--elf", str(vmlinux))
        assert log.returncode == 0, log.stderr
        (tmp_path / "dmesg.txt").write_text(log.stdout)
        result, seconds = xipscope("trap", "--oops", str(tmp_path / "dmesg.txt"), "--elf", str(vmlinux), "--json")
        assert result.returncode == 0, result.stderr
        print(f"xipscope trap --oops: {seconds * 1000:.0f} ms end to end")
        post = json.loads(result.stdout)
        for key in ("cause_code", "mepc", "function", "fault_address", "fault_region", "instruction"):
            assert post[key] == live[key], key
        assert post["memory_map"] == "qemu-virt"          # picked from mepc, as no --map was given
        assert post["instruction_source"] == "elf"         # 6.1 prints no Code: line and no target was given
        printed = post["printed_call_trace"]
        assert printed[0]["pc"] == insn.address and printed[0]["printed"].startswith(f"{func}+{off:#x}/")
        assert [e["pc"] for e in post["backtrace"]] == [e["pc"] for e in printed]

        # the same from `xipscope dmesg --json`
        log, _ = xipscope("dmesg", "--target", kernel.url, "--elf", str(vmlinux), "--json")
        (tmp_path / "dmesg.json").write_text(log.stdout)
        result, _ = xipscope("trap", "--oops", str(tmp_path / "dmesg.json"), "--elf", str(vmlinux), "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["mepc"] == insn.address

        if kind == "store":
            # a snapshot of the panicked kernel: the same log, and the same unwind of the printed registers
            snap = tmp_path / "panicked"
            result, _ = xipscope("snapshot", "--target", kernel.url, "--map", "qemu-virt", "--elf", str(vmlinux),
                                 "--out", str(snap))
            assert result.returncode == 0, result.stderr
            snap_log, _ = xipscope("dmesg", "--target", f"snapshot://{snap}", "--elf", str(vmlinux))
            assert snap_log.stdout == (tmp_path / "dmesg.txt").read_text()
            result, _ = xipscope("trap", "--oops", str(tmp_path / "dmesg.txt"), "--target", f"snapshot://{snap}",
                                 "--elf", str(vmlinux), "--json")
            assert [f["pc"] for f in json.loads(result.stdout)["backtrace"]] == [f["pc"] for f in live["backtrace"]]

        # the printed registers unwound through the target's memory give the kernel's own call trace
        result, _ = xipscope("trap", "--oops", str(tmp_path / "dmesg.txt"), "--target", kernel.url,
                             "--elf", str(vmlinux), "--json")
        unwound = json.loads(result.stdout)
        assert [f["pc"] for f in unwound["backtrace"]][:len(printed)] == [e["pc"] for e in printed]
        assert [f["pc"] for f in unwound["backtrace"]] == [f["pc"] for f in live["backtrace"]]


def test_kernel_without_dwarf_decoded_from_system_map(nodwarf_kernel, tmp_path):
    """The kernel a board ships: no DWARF, no caller ids, a 4 KiB log that wraps. Live with only its System.map
    (the instruction comes from the target), then the oops with the DWARF-less vmlinux (the instruction from the ELF)."""
    vmlinux, system_map = nodwarf_kernel.vmlinux, nodwarf_kernel.system_map
    symbols = load_symbols(vmlinux)
    insn = find_instruction(vmlinux, symbols, "store", "prepare_namespace")
    with boot_kernel_halted(nodwarf_kernel, tmp_path) as kernel:
        assert inject_fault(kernel.port, symbols, insn) == 7
        result, _ = xipscope("trap", "--target", kernel.url, "--elf", str(system_map), "--json")
        assert result.returncode == 0, result.stderr
        live = json.loads(result.stdout)
        assert live["memory_map"] == "qemu-virt" and live["function"].startswith("prepare_namespace+0x")
        assert live["location"] is None and live["instruction"] == insn.text
        assert live["instruction_source"] == "target" and live["fault_region"] == "unmapped"
        let_kernel_print_oops(kernel, "Oops - store (or AMO) access fault")
        log, _ = xipscope("dmesg", "--target", kernel.url, "--elf", str(vmlinux))
        (tmp_path / "dmesg.txt").write_text(log.stdout)
        assert "[    T1]" not in log.stdout
        result, _ = xipscope("trap", "--oops", str(tmp_path / "dmesg.txt"), "--elf", str(vmlinux), "--json")
        post = json.loads(result.stdout)
        assert (post["cause_code"], post["mepc"], post["function"]) == (7, insn.address, live["function"])
        assert post["instruction_source"] == "elf" and post["fault_address"] == UNMAPPED
        assert post["printed_call_trace"][0]["pc"] == insn.address
