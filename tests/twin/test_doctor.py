"""`xipscope doctor` on the RP2350 twin (a model) running firmware that hangs the ways boards hang, on healthy
firmware, and on the real rv32 Linux kernel in QEMU after its panic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xipscope.chip import riscv as rv
from xipscope.chip import rp2350 as rp
from xipscope.chip.memory_map import get_memory_map
from xipscope.cli import main
from xipscope.doctor import CHECKS, diagnose
from xipscope.elf.symbols import load_symbols
from xipscope.sim.target import SimTarget

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
RP2350 = get_memory_map("rp2350")


def twin(name: str, instructions: int | None = 5_000_000) -> SimTarget:
    t = SimTarget(str(FIRMWARE / f"{name}.elf"))
    t.run(instructions)
    return t


def doctor(t: SimTarget):
    return diagnose(t, load_symbols(t.machine.firmware), RP2350)


def text(finding) -> str:
    return "\n".join([finding.title, *finding.evidence, finding.advice])


def test_names_the_flash_write_hang_with_the_routine_and_its_caller():
    t = twin("flashwrite_hang")
    try:
        assert t.machine.traps[-1].cause == rp.CAUSE_FETCH_FAULT
        d = doctor(t)
    finally:
        t.close()
    first = d.findings[0]
    assert (first.id, first.severity) == ("xip-in-direct-mode", "critical")
    body = text(first)
    assert "DIRECT_CSR = 0x03000001: EN = 1" in body
    assert "pc = 0x10000068 trap_entry+0x0" in body and "mtvec = 0x10000068 trap_entry" in body
    assert "mcause = 1 (instruction access fault)" in body
    assert "ra = 0x" in body and "save_settings+" in body
    assert "the call before ra is to 0x100002ac flash_program_page+0x0" in body
    assert t.machine.elf.symbol("flash_program_page") == 0x100002AC
    # The fetch fault is the hang's own symptom: no second finding repeats it as a generic trap.
    assert [f.id for f in d.findings] == ["xip-in-direct-mode"]


def test_names_the_lrsc_livelock_and_the_lock_variable():
    t = twin("lrscspin", 200_000)   # spins forever: stop it somewhere in the loop
    try:
        d = doctor(t)
    finally:
        t.close()
    first = d.findings[0]
    assert (first.id, first.severity) == ("lrsc-livelock", "critical")
    assert "psram_lock at 0x11000000" in first.title
    body = text(first)
    assert "lr.w at 0x100002ae spin_lock+0x2" in body and "sc.w at 0x100002b4 spin_lock+0x8" in body
    assert "a0 = 0x11000000: psram +0x0" in body
    # lrscspin never clears mcountinhibit: that is reported too, below the livelock.
    assert [f.id for f in d.findings] == ["lrsc-livelock", "counters-inhibited"]


def test_names_the_trap_on_amofault():
    t = twin("amofault")
    try:
        d = doctor(t)
        spin_lock = t.machine.elf.symbol("spin_lock")
    finally:
        t.close()
    assert [f.id for f in d.findings] == ["pending-trap", "counters-inhibited"]
    trap = d.findings[0]
    assert trap.severity == "error"
    assert f"store/AMO access fault at {spin_lock + 4:#010x} spin_lock+0x4" in trap.title
    body = text(trap)
    assert "mcause = 7" in body and "`amoswap.w.aq a5, a5, (a0)`, an AMO through a0" in body   # trap.py's decode
    assert "atomics only in SRAM (0x20000000-0x20082000)" in trap.advice                         # and explanation
    assert "_park+0x4" in body and "parked at wfi" in body


@pytest.mark.parametrize("name", ["flashwrite_ok", "xipbench"])
def test_finds_nothing_on_healthy_firmware_and_says_what_it_checked(name):
    t = twin(name, None)    # to the end: the firmware parks itself in wfi
    try:
        assert t.machine.traps == []
        d = doctor(t)
    finally:
        t.close()
    assert d.findings == []
    assert d.checked == [what for what, _check, _needs in CHECKS]
    assert d.evidence.qmi["DIRECT_CSR"] == 0 if name == "flashwrite_ok" else rp.QMI_DIRECT_CSR_RESET


def test_xip_window_settings_that_fault_or_return_garbage():
    t = twin("xipprobe")
    m = t.machine
    try:
        m.write_memory(rp.XIP_QMI_BASE + rp.QMI_ATRANS0 + 4, (0x01000400).to_bytes(4, "little"))  # ATRANS1: 1 MiB
        m.write_memory(rp.XIP_QMI_BASE + rp.QMI_M0_TIMING + rp.QMI_RFMT, (0x00000200).to_bytes(4, "little"))
        m.write_memory(rp.XIP_QMI_BASE + rp.QMI_M0_TIMING + rp.QMI_RCMD, (0x000000EB).to_bytes(4, "little"))
        m.write_memory(rp.XIP_CTRL_BASE, (rp.XIP_CTRL_CTRL_RESET | rp.CTRL_POWER_DOWN).to_bytes(4, "little"))
        d = doctor(t)
    finally:
        t.close()
    by_id = {f.id: f for f in d.findings}
    assert set(by_id) == {"m0-not-continuous", "atrans1-size", "xip-cache-off", "counters-inhibited"}
    assert by_id["m0-not-continuous"].severity == "error"
    assert "M0_RFMT = 0x00000200, M0_RCMD = 0x000000eb: no command, no mode bits, quad data" in text(
        by_id["m0-not-continuous"])
    atrans = by_id["atrans1-size"]
    assert atrans.severity == "warning"     # nothing the core uses lies there
    assert "SIZE 256 sectors (1024 KiB)" in text(atrans) and "0x10500000-0x107fffff" in text(atrans)
    cache_off = text(by_id["xip-cache-off"])
    # Writing POWER_DOWN forces both EN bits to 0 (xip.h): the twin's CTRL reads 0x88, not 0x8b.
    assert "XIP_CTRL.CTRL = 0x00000088" in cache_off
    assert "POWER_DOWN = 1" in cache_off and "EN_SECURE = 0" in cache_off and "EN_NONSECURE = 0" in cache_off
    assert [f.severity for f in d.findings] == sorted((f.severity for f in d.findings),
                                                      key=("critical", "error", "warning").index)


def test_a_running_target_is_left_running():
    t = SimTarget(str(FIRMWARE / "xipbench.elf"))
    try:
        t.resume()
        d = doctor(t)
        assert t.state() == "running"
        assert d.evidence.was_running and len(d.evidence.pc_samples) == 32
    finally:
        t.close()


def test_call_before_decodes_jal_and_c_jal():
    jal_forward = (0x80 << 21) | (1 << 7) | 0x6F          # jal ra, +0x100
    assert rv.call_before(0x1004, jal_forward.to_bytes(4, "little")) == 0x1100
    jal_back = 0xFF9FF0EF                                 # jal ra, -8
    assert rv.call_before(0x1004, jal_back.to_bytes(4, "little")) == 0x1000 - 8
    assert rv.call_before(0x100003B0, bytes.fromhex("0005fd3d")) == 0x100002AC   # flashwrite_hang's c.jal
    assert rv.call_before(0x1004, (0x00008067).to_bytes(4, "little")) is None     # ret is no call


def test_cli_json_one_entry_per_finding(capsys):
    assert main(["doctor", "--target", f"sim://{FIRMWARE / 'lrscspin.elf'}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [f["id"] for f in out["findings"]] == ["lrsc-livelock", "counters-inhibited"]
    assert all(set(f) == {"id", "severity", "title", "evidence", "advice"} for f in out["findings"])
    assert out["memory_map"] == "rp2350" and len(out["pc_samples"]) == 32


def test_cli_target_gone_is_a_clear_error(capsys):
    import sys
    sys.path.insert(0, str(FIRMWARE.parent / "kernel"))
    from qemu import free_port

    assert main(["doctor", "--target", f"rsp://127.0.0.1:{free_port()}", "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xipscope doctor: error:") and "Traceback" not in err


def test_cli_over_rsp_to_the_twins_gdb_server(capsys):
    """The same diagnosis through a real GDB remote protocol server: `xipscope sim --gdb-port 0` in its own process."""
    from support.servers import twin_gdb_server

    elf = FIRMWARE / "flashwrite_hang.elf"
    with twin_gdb_server(elf) as port:
        assert main(["doctor", "--target", f"rsp://127.0.0.1:{port}", "--elf", str(elf)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("CRITICAL  xip-in-direct-mode: hang:")
    assert "flash_program_page+0x0" in out and "what to do: Everything that runs between" in out


def test_xip_left_in_the_rom_flash_operation_read_mode():
    t = twin("flashwrite_ok", None)
    m = t.machine
    try:
        # What the ROM flash functions leave behind (rp2350-flash.md): RFMT 0x1000, RCMD 0x03, direct mode off.
        m.write_memory(rp.XIP_QMI_BASE + rp.QMI_M0_TIMING + rp.QMI_RCMD, (0x00000003).to_bytes(4, "little"))
        d = doctor(t)
        assert [f.id for f in d.findings] == ["m0-rom-flash-op-mode"]
        assert "M0_RFMT = 0x00001000, M0_RCMD = 0x00000003: command 0x03, no mode bits, single data" in text(
            d.findings[0])
        # The same registers while direct mode is on are a flash operation in progress, not a leftover.
        m.write_memory(rp.XIP_QMI_BASE, (0x03000001).to_bytes(4, "little"))
        d = doctor(t)
        assert "m0-rom-flash-op-mode" not in [f.id for f in d.findings]
    finally:
        t.close()


def test_a_loop_is_where_the_samples_end_up():
    from xipscope.doctor import Evidence

    def ev(samples, pc):
        return Evidence("test", RP2350, None, False, {"pc": pc}, samples, None, None, None)

    loop = [0x100002AE, 0x100002B2, 0x100002B4]
    # Three samples from before the hang (a target sampled from reset), then the loop: still a loop.
    assert ev([0x100000EC, 0x100000F0, 0x10000200] + loop * 3, 0x100002B2).stuck_loop() == (0x100002AE, 0x100002B4)
    # Code that moves around is no loop, nor is a loop that only the last few samples reached.
    assert ev([0x10000000 + 0x100 * i for i in range(12)], 0x10001000).stuck_loop() is None
    assert ev([0x10000000 + 0x100 * i for i in range(10)] + loop, 0x100002B2).stuck_loop() is None


def test_names_a_load_from_flash_data_during_a_flash_operation_run_from_sram():
    """The Zephyr hang (rp2350-flash.md): the routine is in SRAM, but the data it is handed lives in flash."""
    t = twin("xipprobe")
    m = t.machine
    sram_code = 0x20040000
    # lw a0, 0(a0); then a park loop (wfi; j .-4) that also serves as the trap vector, so the handler is in SRAM.
    m.write_memory(sram_code, b"".join(i.to_bytes(4, "little") for i in (0x00052503, 0x10500073, 0xFFDFF06F)))
    m.write_memory(rp.XIP_QMI_BASE, (0x03000001).to_bytes(4, "little"))       # direct mode on, as the ROM does
    m.write_register("mtvec", sram_code + 4)
    m.write_register("a0", 0x10200000)                                        # source data in flash
    m.write_register("pc", sram_code)
    try:
        t.run(10_000)
        assert [(tr.cause, tr.epc) for tr in m.traps] == [(rp.CAUSE_LOAD_FAULT, sram_code)]
        d = doctor(t)
    finally:
        t.close()
    assert d.findings[0].id == "xip-in-direct-mode"
    body = text(d.findings[0])
    assert f"mcause = 5 (load access fault), mepc = {sram_code:#010x}" in body and "an XIP load" in body
    # The core itself runs from SRAM: only the load is the problem.
    assert not any(e.startswith("pc = ") or "PC samples are in XIP" in e for e in d.findings[0].evidence)
