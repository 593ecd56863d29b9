"""The RP2350 twin (a model) halts on request whatever loop its firmware is in, here a trap loop through a handler in
SRAM (firmware/flasherase_ramvec.c): a flash erase from XIP code turns QMI direct mode on, the next fetch faults
(mcause 1, rp2350-flash.md), and the handler returns to the faulting fetch, which faults again, forever. A board in
that state is halted by a probe at once; every face of the twin must halt it too, and every slice must end within its
instruction budget (trap entries count), not after however many host loops the firmware makes it do."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from xipscope.chip import rp2350 as rp
from xipscope.elf.program import ElfImage
from xipscope.sim.hazard3 import Machine
from xipscope.sim.hazard3.traps import TRAP_HISTORY
from xipscope.sim.target import SimTarget
from xipscope.rsp.packets import Packet, PacketParser, frame

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware" / "flasherase_ramvec.elf"
HANDLER_BLOCK = 11          # ram_trap_entry: 11 instructions ending in mret, one translated block
SAFETY_S = 120              # only so that a regression fails instead of hanging the suite; nothing is timed
IMAGE = ElfImage(FIRMWARE)
# A twin that never leaves unicorn cannot be interrupted by a signal: the thread method ends the run with a stack dump.
pytestmark = pytest.mark.timeout(300, method="thread")
ERASE = IMAGE.symbol("flash_erase_sector")
MEPC = ERASE + 0xE          # the fetch after `c.sw a3,0(a4)`, the store that turns DIRECT_CSR.EN on


def function_at(pc: int) -> str | None:
    i = IMAGE.function_index(pc)
    return IMAGE.functions[i].name if i >= 0 else None


def in_the_loop_at(pc: int) -> bool:
    """Where a halt may find the core: at the faulting fetch, or in the handler."""
    return pc == MEPC or function_at(pc) == "ram_trap_entry"


def in_the_loop(m: Machine, traps: int = 100) -> None:
    """Run until the firmware has gone round its trap loop `traps` times."""
    while m.trap_count < traps:
        assert m.run_slice(10_000) == "budget"


def test_the_firmware_loops_through_its_sram_handler_as_the_facts_say():
    m = Machine(FIRMWARE)
    in_the_loop(m)
    erase = m.elf.symbol("flash_erase_sector")
    handler = m.elf.symbol("ram_trap_entry")
    assert handler >> 28 == 2 and m.read_register("mtvec") == handler         # the vector is in SRAM
    first = m.traps[0]
    # The fetch right after the store that turns DIRECT_CSR.EN on is refused: mcause 1 (rp2350-flash.md).
    assert first.cause == rp.CAUSE_FETCH_FAULT and first.epc == MEPC
    assert m.read_memory(erase, 14)[-2:] == b"\x14\xc3"                      # c.sw a3,0(a4)
    assert {(t.cause, t.epc) for t in m.traps} == {(first.cause, first.epc)}  # the same fault, again and again
    assert m.read_memory(rp.XIP_QMI_BASE, 4)[0] & rp.DIRECT_CSR_EN
    # The handler really runs: it counts each fault in SRAM (it may be stopped before its count of the last one).
    counted = int.from_bytes(m.read_memory(m.elf.symbol("ram_fault_count"), 4), "little")
    assert m.trap_count - 1 <= counted <= m.trap_count
    assert "sector erased" not in m.uart.text()
    stats = {f.name: f.instructions for f in m.function_stats()}
    assert stats["ram_trap_entry"] == HANDLER_BLOCK * counted


@pytest.mark.parametrize("budget", [1, 7, 1_000, 50_000])
def test_every_slice_ends_within_its_budget_counting_trap_entries(budget):
    m = Machine(FIRMWARE)
    in_the_loop(m)
    for _ in range(3):
        i0, t0 = m.instructions, m.trap_count
        assert m.run_slice(budget) == "budget"
        spent = (m.instructions - i0) + (m.trap_count - t0)
        # Block granularity: the slice stops at the first block boundary once the budget is spent.
        assert budget <= spent < budget + HANDLER_BLOCK, (budget, spent)


def test_trap_history_stays_bounded_while_the_count_goes_on():
    m = Machine(FIRMWARE)
    result = m.run(3 * 2 * TRAP_HISTORY * (HANDLER_BLOCK + 1))
    assert result.reason == "budget"
    assert m.trap_count > 2 * TRAP_HISTORY and len(m.traps) < 2 * TRAP_HISTORY
    trap, times = m.repeated_trap()
    assert times == m.trap_count and trap.epc == m.traps[0].epc


def test_a_halt_request_stops_the_running_loop():
    m = Machine(FIRMWARE)
    in_the_loop(m)
    m.request_halt()
    i0 = m.instructions
    assert m.run_slice(1_000_000) == "halt" and m.instructions == i0
    m.clear_halt_request()
    # Asked for while a slice runs (from a block hook, as another thread would): the slice stops at the next block.
    asked = []

    def ask_when_counting(*_):
        if not asked and m.trap_count > 200:
            asked.append(m.instructions)
            m.request_halt()

    from unicorn import UC_HOOK_BLOCK
    m._uc.hook_add(UC_HOOK_BLOCK, ask_when_counting)
    m._uc.ctl_flush_tb()    # translated blocks call the hooks that existed when they were translated
    assert m.run_slice(10_000_000) == "halt"
    assert asked and m.instructions - asked[0] <= HANDLER_BLOCK


@pytest.mark.parametrize("clock_hz", [None, 1e6])
def test_sim_target_halts_the_loop_and_reads_registers(clock_hz):
    t = SimTarget(str(FIRMWARE), clock_hz=clock_hz)
    try:
        t.resume()
        entered = threading.Event()

        def watch():
            while t.machine.trap_count < 50 and t.state() == "running":
                entered.wait(0.01)
            entered.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        assert entered.wait(SAFETY_S)
        halter = threading.Thread(target=t.halt, daemon=True)
        halter.start()
        halter.join(SAFETY_S)
        assert not halter.is_alive(), "halt() never returned: a slice did not end"
        assert t.state() == "halted"
        i0 = t.machine.instructions
        regs = t.read_registers()
        assert in_the_loop_at(regs["pc"]), hex(regs["pc"])
        assert t.read_register("mcause") == rp.CAUSE_FETCH_FAULT and t.read_register("mepc") == MEPC
        assert t.machine.instructions == i0       # halted means halted: nothing runs until the next resume
    finally:
        t.close()


class RawRsp:
    """Just enough of a GDB client to send what gdb sends: packets and a bare ^C (0x03)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SAFETY_S)
        self.parser = PacketParser()
        self.items: list = []

    def close(self) -> None:
        self.sock.close()

    def reply(self) -> bytes:
        while True:
            while self.items:
                item = self.items.pop(0)
                if isinstance(item, Packet):
                    assert item.checksum_ok
                    self.sock.sendall(b"+")
                    return item.payload
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            self.items += self.parser.feed(data)

    def ask(self, payload: str, expect_reply: bool = True) -> bytes | None:
        self.sock.sendall(frame(payload.encode()))
        return self.reply() if expect_reply else None


def test_gdb_server_answers_an_interrupt_and_a_register_read_in_the_loop():
    from support.servers import twin_gdb_server

    with twin_gdb_server(FIRMWARE) as port:
        c = RawRsp(port)
        try:
            c.ask("qSupported:swbreak+")
            count = f"{IMAGE.symbol('ram_fault_count'):x}"
            c.ask("c", expect_reply=False)
            # While it runs the server answers reads between slices: wait until the handler has counted 1000 faults.
            while int.from_bytes(bytes.fromhex(c.ask(f"m{count},4").decode()), "little") < 1000:
                pass
            c.sock.sendall(b"\x03")
            assert c.reply() == b"T02thread:1;"                            # SIGINT: stopped by the interrupt
            mcause = int.from_bytes(bytes.fromhex(c.ask(f"p{65 + 0x342:x}").decode()), "little")
            assert mcause == rp.CAUSE_FETCH_FAULT
            regs = bytes.fromhex(c.ask("g").decode())
            pc = int.from_bytes(regs[32 * 4:33 * 4], "little")
            assert in_the_loop_at(pc), hex(pc)
            # Halted: the count stands still between two reads.
            first = c.ask(f"m{count},4")
            assert c.ask(f"m{count},4") == first
        finally:
            c.close()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO / "toolkit")}
    return subprocess.run([sys.executable, "-m", "xipscope", "sim", str(FIRMWARE), "--run", *args],
                          capture_output=True, text=True, timeout=SAFETY_S, env=env)


def test_sim_run_stops_at_its_budget_and_names_the_trap_loop():
    out = run_cli("--max-instructions", "300000")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    stop = next(line for line in lines if "stopped (" in line)
    assert stop.startswith("== RP2350 twin (a model): stopped (budget: the 300,000 instructions of --max-instructions "
                           "ran out) at pc 0x")
    done = int(stop.split(" after ")[1].split()[0].replace(",", ""))
    assert 300_000 <= done < 300_000 + HANDLER_BLOCK
    loop = lines[lines.index(stop) + 1]
    assert loop.startswith("== trap loop: the last ") and "traps were all mcause 1 (instruction access fault) " \
        f"at mepc = {MEPC:#010x} flash_erase_sector+0xe: the handler at mtvec = 0x20000000 ram_trap_entry+0x0 " \
        "returns to an instruction that traps again" in loop
    traps = next(line for line in lines if line.startswith("traps"))
    assert traps.endswith("in a row)") and len(traps) < 200                  # one line, however many traps


def test_sim_run_json_carries_the_stop_and_the_loop():
    out = run_cli("--max-instructions", "100000", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["stop"] == "budget" and "mcause 1" in doc["trap_loop"]
    assert doc["trap_count"] >= 100_000 // (HANDLER_BLOCK + 1) and len(doc["traps"]) <= doc["trap_count"]


def test_a_firmware_that_parks_names_no_trap_loop():
    out = subprocess.run([sys.executable, "-m", "xipscope", "sim", str(REPO / "firmware" / "flashwrite_hang.elf"),
                          "--run", "--quiet-uart"], capture_output=True, text=True, timeout=SAFETY_S,
                         env={"PYTHONPATH": str(REPO / "toolkit")})
    assert "stopped (trap-loop)" in out.stdout and "== trap loop" not in out.stdout


def test_doctor_names_the_trap_loop(capsys):
    from xipscope.cli import main

    assert main(["doctor", "--target", f"sim://{FIRMWARE}", "--elf", str(FIRMWARE)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("CRITICAL  xip-in-direct-mode: hang:")
    assert f"mepc = {MEPC:#010x} flash_erase_sector+0xe" in out
    assert ("mtvec = 0x20000000 ram_trap_entry+0x0, sram: the trap handler is outside XIP, so it runs, and returns "
            "to mepc, whose fetch faults again: a trap loop") in out
    assert f"the call before ra is to {ERASE:#010x} flash_erase_sector+0x0" in out
