"""`xipscope trap` on real faults injected into the real rv32 Linux kernel in QEMU, live and from the oops it prints.

The fault is real (QEMU raises it; the kernel's own handler prints the oops): we stop at a hardware breakpoint at
`prepare_namespace` (before the kernel panics and printk goes quiet), point pc at a store or AMO in kernel text and its
base register at unmapped memory, and stop again at `handle_exception`, the trap vector, before its first instruction.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qemu import boot_kernel_halted, wait_for_console
from xipscope.chip import rv_insn
from xipscope.chip.riscv import MSTATUS_MIE
from xipscope.chip.memory_map import get_memory_map
from xipscope.elf import load_symbols
from xipscope.target.rsp import RspTarget
from xipscope.trap import elf_bytes

REPO = Path(__file__).resolve().parent.parent
UNMAPPED = 0x0080_0000          # nothing in QEMU virt's memory map (hw/riscv/virt.c) between 0x102000 and 0x2000000
AVOID_BASES = ("zero", "sp", "gp", "tp")   # the trap handler itself needs these


def xipscope(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit"))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "xipscope", *args], capture_output=True, text=True, env=env,
                            timeout=120)
    return result, time.perf_counter() - started


def find_instruction(vmlinux: Path, symbols, kind: str, function: str | None) -> rv_insn.Insn:
    """The first `kind` instruction (store, amo) in `function` (or anywhere in .text) whose base is an ordinary register."""
    from elftools.elf.elffile import ELFFile

    if function is not None:
        start = symbols.address_of(function)
        size = symbols.symbols_named(function)[0].size
        code = elf_bytes(vmlinux, start, size)
    else:
        with open(vmlinux, "rb") as f:
            text = ELFFile(f).get_section_by_name(".text")
            start, code = text["sh_addr"], text.data()
    for insn in rv_insn.disassemble(code, start):
        if insn.kind == kind and insn.base_name not in AVOID_BASES:
            return insn
    raise AssertionError(f"no {kind} instruction in {function or '.text'}")


def inject_fault(kernel, symbols, insn: rv_insn.Insn) -> int:
    """Run to prepare_namespace, execute `insn` with its base register pointing at UNMAPPED, stop at the trap vector.
    Returns the cause QEMU raised; leaves QEMU paused with no client attached."""
    target = RspTarget("127.0.0.1", kernel.port, timeout=30)
    try:
        entry = symbols.address_of("prepare_namespace")
        target.set_breakpoint(entry)
        target.continue_until_stop(timeout=60)
        assert target.read_register("pc") == entry
        target.remove_breakpoint(entry)
        target.write_register("pc", insn.address)
        target.write_register(insn.base_name, UNMAPPED - insn.offset)
        vector = symbols.address_of("handle_exception")
        # A timer interrupt falls due while we sit at the breakpoint; taken first, it would bring the scheduler in
        # before our instruction runs. Mask interrupts (mstatus.MIE) so that the instruction's own fault comes first.
        target.write_register("mstatus", target.read_register("mstatus") & ~MSTATUS_MIE)
        target.set_breakpoint(vector)
        target.continue_until_stop(timeout=30)
        assert target.read_register("pc") == vector          # stopped before its first instruction
        assert target.read_register("mepc") == insn.address
        target.remove_breakpoint(vector)   # (QEMU 7.2 would drop it anyway when this client goes)
        return target.read_register("mcause")
    finally:
        target.disconnect()    # no `D`: QEMU stays paused at the trap vector for the next client


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
        assert inject_fault(kernel, symbols, insn) == cause

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
        assert live["mstatus_fields"]["mpp"] == "M"
        assert live["backtrace"][0]["pc"] == insn.address and len(live["backtrace"]) >= 2
        if kind == "amo":
            assert live["explanation"].startswith("atomic access: amo")
            assert "cause 5" in live["explanation"]
        else:
            assert "store to 0x800000" in live["explanation"] and "bad pointer" in live["explanation"]

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
        printed = post["printed_call_trace"]
        assert printed[0]["pc"] == insn.address and printed[0]["printed"].startswith(f"{func}+{off:#x}/")
        assert [e["pc"] for e in post["backtrace"]] == [e["pc"] for e in printed]

        # the printed registers unwound through the target's memory give the kernel's own call trace
        result, _ = xipscope("trap", "--oops", str(tmp_path / "dmesg.txt"), "--target", kernel.url,
                             "--elf", str(vmlinux), "--json")
        unwound = json.loads(result.stdout)
        assert [f["pc"] for f in unwound["backtrace"]][:len(printed)] == [e["pc"] for e in printed]
        assert [f["pc"] for f in unwound["backtrace"]] == [f["pc"] for f in live["backtrace"]]
