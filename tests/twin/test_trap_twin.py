"""Trap decoding on the RP2350 twin (a model): amofault's spinlock in PSRAM dies with mcause 7 and mtval 0, and the
decoder still names the lock variable and its region, from the instruction and the registers alone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.servers import twin_gdb_server
from xipscope.elf import load_symbols
from xipscope.sim.target import SimTarget
from xipscope.targets.rsp import RspTarget
from xipscope.trap import decode_trap

REPO = Path(__file__).resolve().parents[2]
AMOFAULT = REPO / "firmware" / "amofault.elf"
LRSCSPIN = REPO / "firmware" / "lrscspin.elf"
PSRAM_LOCK = 0x11000000      # amofault.c's psram_lock, in .psram_bss (the firmware prints it)


def run_to_trap_vector(target: SimTarget, symbols) -> None:
    target.machine.set_breakpoints([symbols.address_of("trap_entry")])
    result = target.run(1_000_000)
    assert result.reason == "breakpoint" and result.pc == symbols.address_of("trap_entry")


def check_amofault(report: dict, symbols) -> None:
    spin_lock = symbols.address_of("spin_lock")
    assert report["cause_code"] == 7 and report["cause_name"] == "store/AMO access fault"
    assert report["interrupt"] is False and report["mtval"] == 0
    assert report["function"].startswith("spin_lock+") and spin_lock <= report["mepc"] < spin_lock + 64
    assert report["location"].endswith("amofault.c:20")
    assert re.fullmatch(r"amoswap\.w\.aq \w+, \w+, \(a0\)", report["instruction"])
    assert report["fault_address"] == PSRAM_LOCK and report["fault_symbol"] == "psram_lock"
    assert report["fault_region"] == "psram" and report["fault_region_kind"] == "xip-psram"
    assert report["mepc_region"] == "flash" and report["memory_map"] == "rp2350"
    assert report["explanation"].startswith("atomic access: amoswap.w.aq to 0x11000000 (`psram_lock`) in psram")
    assert "only in SRAM (0x20000000-0x20082000)" in report["explanation"]
    assert report["mstatus_fields"] == {"mpp": "M", "mie": False, "mpie": False}
    assert any("mtval = 0" in note for note in report["notes"])
    assert report["backtrace"][0]["pc"] == report["mepc"]
    # the firmware has no frame pointers: the walk stops at once and ra names main as the caller
    assert any(re.search(r"ra = 0x[0-9a-f]+ main\+0x[0-9a-f]+ is the likely caller", n) for n in report["notes"])


def test_amofault_in_process():
    symbols = load_symbols(AMOFAULT)
    target = SimTarget(str(AMOFAULT))
    try:
        run_to_trap_vector(target, symbols)
        assert target.read_register("mtval") == 0
        report = decode_trap(target, symbols, "rp2350")
        check_amofault(report.to_json(), symbols)
        assert report.instruction_source == "target"
    finally:
        target.close()


def test_amofault_through_the_twins_gdb_server_and_the_cli():
    """The same through `xipscope sim --gdb-port` and `xipscope trap --target rsp://` (map picked from mepc)."""
    symbols = load_symbols(AMOFAULT)
    env = dict(os.environ, PYTHONPATH=str(REPO / "toolkit"))
    with twin_gdb_server(AMOFAULT) as port:
        target = RspTarget("127.0.0.1", port)
        target.set_breakpoint(symbols.address_of("trap_entry"))
        target.continue_until_stop(timeout=30)
        assert target.read_register("pc") == symbols.address_of("trap_entry")
        target.disconnect()     # the twin stays halted at the trap vector
        out = subprocess.run([sys.executable, "-m", "xipscope", "trap", "--target", f"rsp://127.0.0.1:{port}",
                              "--elf", str(AMOFAULT), "--json"], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        check_amofault(json.loads(out.stdout), symbols)
        text = subprocess.run([sys.executable, "-m", "xipscope", "trap", "--target", f"rsp://127.0.0.1:{port}",
                               "--elf", str(AMOFAULT)], capture_output=True, text=True, env=env, timeout=60).stdout
        assert "exception 7 (store/AMO access fault)" in text and "psram_lock (psram, xip-psram)" in text


def test_lrsc_livelock_is_named_without_a_trap():
    symbols = load_symbols(LRSCSPIN)
    target = SimTarget(str(LRSCSPIN))
    try:
        result = target.run(200_000)
        assert result.reason == "budget"            # it never finishes: the livelock
        spin_lock = symbols.symbols_named("spin_lock")[0]
        assert spin_lock.address <= result.pc < spin_lock.address + spin_lock.size
        report = decode_trap(target, symbols, "rp2350")
        assert report.cause_code == 0 and report.mepc == 0
        assert not report.trapped and report.function.startswith("spin_lock+")
        why = " ".join(report.explanation)
        assert "LR/SC outside SRAM" in why and "0x11000000 (`psram_lock`) in psram" in why
        assert "livelock detector" in why
    finally:
        target.close()


def test_no_trap_source_is_a_clear_error():
    from xipscope.cli import main

    assert main(["trap", "--elf", str(AMOFAULT)]) == 1      # neither --target nor --oops: a clear error


@pytest.mark.parametrize("text", ["", "not an oops\n"])
def test_cli_oops_errors_are_clean(tmp_path, capsys, text):
    from xipscope.cli import main

    path = tmp_path / "log.txt"
    path.write_text(text)
    assert main(["trap", "--oops", str(path), "--elf", str(AMOFAULT)]) == 1
    assert "no oops found" in capsys.readouterr().err


def test_store_into_xip_flash_on_the_twin():
    """A store the firmware doesn't contain: `sw a5, 0(a0)` written into SRAM and run by the model with a0 in flash."""
    probe = REPO / "firmware" / "xipprobe.elf"
    symbols = load_symbols(probe)
    target = SimTarget(str(probe))
    try:
        machine = target.machine
        assert target.run(100_000).reason == "idle"          # through _start: mtvec set, parked
        machine.write_memory(0x20040000, (0x00F52023).to_bytes(4, "little"))
        machine.write_register("a0", 0x10001000)
        machine.write_register("pc", 0x20040000)
        run_to_trap_vector(target, symbols)
        report = decode_trap(target, symbols, "rp2350").to_json()
        assert (report["cause_code"], report["mepc"], report["mepc_region"]) == (7, 0x20040000, "sram")
        assert report["instruction"] == "sw a5, 0(a0)" and report["mtval"] == 0
        assert (report["fault_address"], report["fault_region"]) == (0x10001000, "flash")
        assert report["explanation"].startswith("store into xip-flash at 0x10001000 (flash): it is read-only")
    finally:
        target.close()
