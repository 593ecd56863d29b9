"""The real openocd binary against the twin's JTAG face (a model), and openocd:// / rsp:// through it.

The same firmware state is read four ways: in-process (sim://), the twin's own GDB server (rsp://), OpenOCD's Tcl
server (openocd://) and OpenOCD's gdb port (rsp://). amofault dies with a store/AMO fault on a PSRAM spinlock, so its
trap registers are fixed, known values: mcause 7, mepc inside spin_lock, mtval 0, pc parked in _park.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import struct
import time
import types

import pytest

from support.openocd_twin import REPO, openocd, twin_jtag
from support.servers import twin_gdb_server
from xipscope.chip import riscv as rv
from xipscope.chip import rp2350 as rp
from xipscope.errors import TargetError
from xipscope.profile.store import read_samples
from xipscope.elf.program import ElfImage
from xipscope.sim.target import SimTarget
from xipscope.targets import open_target
from xipscope.targets.openocd import OpenOcdTarget
from xipscope.targets.base import SampleRequest


COUNTERS = SampleRequest(reads=((rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT, 8),), read_names=("counters",))


def counter_sample(sampler) -> types.SimpleNamespace:
    """One sample of pc and the XIP counters (CTR_HIT, CTR_ACC) through the transport's batched sampler."""
    sample = sampler.take()
    hit, acc = struct.unpack("<II", sample.memory[0])
    return types.SimpleNamespace(pc=sample.pc, xip_hit=hit, xip_acc=acc, round_trips=sample.round_trips)

AMOFAULT = REPO / "firmware" / "amofault.elf"
XIPBENCH = REPO / "firmware" / "xipbench.elf"
TRAP_CSRS = ("mcause", "mepc", "mtval", "mstatus", "mtvec")
COMPARED = list(rv.GPR_NAMES) + ["pc"] + list(TRAP_CSRS)


def function_span(image: ElfImage, name: str) -> tuple[int, int]:
    fn = next(f for f in image.functions if f.name == name)
    return fn.start, fn.end


@pytest.fixture(scope="module")
def amofault_openocd(tmp_path_factory):
    with twin_jtag(AMOFAULT, "--quiet-uart") as jtag_port:
        with openocd(jtag_port, tmp_path_factory.mktemp("openocd")) as session:
            yield session


@pytest.fixture(scope="module")
def amofault_sim():
    """The ground truth: the twin in-process, run until amofault parks after its trap."""
    target = SimTarget(str(AMOFAULT), uart_echo=lambda b: None)
    result = target.run(1_000_000)
    assert result.reason == "idle", result
    yield target
    target.close()


@pytest.fixture(scope="module")
def amofault_twin_rsp():
    """The twin's own GDB server, run until amofault parks, then halted."""
    with twin_gdb_server(AMOFAULT) as port:
        target = open_target(f"rsp://127.0.0.1:{port}")
        park = function_span(ElfImage(AMOFAULT), "_park")
        for _ in range(50):   # the run is a few thousand instructions: it parks within the first resume
            target.resume()
            time.sleep(0.05)
            target.halt()
            if park[0] <= target.read_register("pc") < park[1]:
                break
        yield target
        target.close()


def test_openocd_examines_the_twin_and_reads_the_trap_with_its_own_commands(amofault_openocd):
    log = amofault_openocd.log_text()
    assert "tap/device found: 0x10000e21" in log, log
    assert "datacount=1 progbufsize=2" in log, log
    assert "Examined RISC-V core; found 2 harts" in log, log          # RP2350: two harts on one DM (rp2350.md)
    target = OpenOcdTarget("127.0.0.1", amofault_openocd.tcl_port)
    try:
        assert target.target_name == "rp2350.rv0"
        target.halt()
        assert target.command("reg mcause").strip() == "mcause (/32): 0x00000007"
        assert target.command("reg mtval").strip() == "mtval (/32): 0x00000000"
        # OpenOCD's own memory display of the PSRAM lock word: the faulting amoswap.w left it untouched.
        lock = ElfImage(AMOFAULT).symbol("psram_lock")
        assert target.command(f"mdw {lock:#x}").strip() == f"{lock:#010x}: 00000000"
    finally:
        target.close()


def test_trap_registers_are_the_same_through_openocd_both_rsp_servers_and_sim(amofault_openocd, amofault_sim,
                                                                             amofault_twin_rsp):
    image = ElfImage(AMOFAULT)
    expected = {name: amofault_sim.read_register(name) for name in COMPARED}
    spin_lock, park = function_span(image, "spin_lock"), function_span(image, "_park")
    # Real values first, so that four equal wrong answers cannot pass.
    assert expected["mcause"] == rp.CAUSE_STORE_FAULT == 7
    assert spin_lock[0] <= expected["mepc"] < spin_lock[1]
    assert expected["mtval"] == 0
    assert park[0] <= expected["pc"] < park[1]
    assert expected["mtvec"] == image.symbol("trap_entry")

    tcl = open_target(amofault_openocd.url)
    try:
        tcl.halt()
        assert tcl.state() == "halted"
        through_tcl = tcl.read_registers()
        assert {n: through_tcl[n] for n in COMPARED} == expected
        assert tcl.read_register("s0") == expected["fp"]
    finally:
        tcl.close()
    gdb_port = open_target(amofault_openocd.gdb_url)
    try:
        assert {n: gdb_port.read_register(n) for n in COMPARED} == expected
    finally:
        gdb_port.close()
    assert {n: amofault_twin_rsp.read_register(n) for n in COMPARED} == expected


def test_memory_is_the_same_through_openocd_and_the_twin(amofault_openocd, amofault_sim, amofault_twin_rsp):
    image = ElfImage(AMOFAULT)
    spin_lock = image.symbol("spin_lock")
    sp = amofault_sim.read_register("sp")
    ranges = [(spin_lock, 64),                        # code in flash
              (spin_lock + 1, 7),                     # unaligned head and tail
              (image.symbol("psram_lock"), 4),        # the lock word in PSRAM
              (sp, 64),                               # the trap handler's stack in SRAM
              (rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTRL, 4)]
    tcl = open_target(amofault_openocd.url)
    gdb_port = open_target(amofault_openocd.gdb_url)
    try:
        tcl.halt()
        for address, size in ranges:
            expected = amofault_sim.read_memory(address, size)
            assert len(expected) == size
            assert tcl.read_memory(address, size) == expected, hex(address)
            assert gdb_port.read_memory(address, size) == expected, hex(address)
            assert amofault_twin_rsp.read_memory(address, size) == expected, hex(address)
        assert amofault_sim.read_memory(image.symbol("psram_lock"), 4) == bytes(4)
        assert tcl.read_memory(rp.XIP_CTRL_BASE, 4) == rp.XIP_CTRL_CTRL_RESET.to_bytes(4, "little")
        # A block larger than one read_memory command (4 KiB) of flash, compared with the ELF's own bytes.
        code = image.functions[0].start
        assert tcl.read_memory(code, 5000) == amofault_sim.read_memory(code, 5000)
    finally:
        gdb_port.close()
        tcl.close()


def test_openocd_target_says_what_went_wrong(amofault_openocd):
    tcl = open_target(amofault_openocd.url)
    try:
        tcl.halt()
        with pytest.raises(TargetError, match=r"read_memory.*0x30000000.*mapped"):
            tcl.read_memory(0x30000000, 8)
        with pytest.raises(TargetError, match=r"read_memory.*mapped"):
            tcl.read_memory(rp.SRAM_END - 8, 16)     # runs off the end of SRAM
        with pytest.raises(TargetError, match="unknown register 'nosuchreg'"):
            tcl.read_register("nosuchreg")
        assert tcl.read_register("mcause") == 7   # the connection is still good after the errors
    finally:
        tcl.close()
    from support.openocd_twin import free_port
    with pytest.raises(TargetError, match="cannot connect to OpenOCD's Tcl server"):
        open_target(f"openocd://127.0.0.1:{free_port()}")


def test_pc_samples_through_one_tcl_round_trip_follow_xipbench(tmp_path):
    """Sample xipbench from its entry until it parks: the samples visit its phases in program order, land mostly in
    the work functions (94% of its instructions), and each costs exactly one Tcl round trip. The twin is paced to
    1 MHz (--clock-hz), so a sample lands every 5,000 or more of its cycles whatever the host's speed or load: several
    in each phase (unpaced, the native hooks ran work_sram between two samples on a loaded host)."""
    image = ElfImage(XIPBENCH)
    park = function_span(image, "_park")
    work = {name: function_span(image, name) for name in ("work_flash", "work_sram", "work_psram", "copy_words")}
    with twin_jtag(XIPBENCH, "--quiet-uart", "--halted", "--clock-hz", "1e6") as jtag_port, \
            openocd(jtag_port, tmp_path) as session:
        tcl = open_target(session.url)
        try:
            assert tcl.state() == "halted"
            assert tcl.read_register("pc") == image.entry
            sampler = tcl.sampler(COUNTERS)           # asks the DM whether it has SBA
            samples = [counter_sample(sampler)]
            before = tcl.round_trips
            while len(samples) < 2000 and not park[0] <= samples[-1].pc < park[1]:
                time.sleep(0.005)                      # the twin runs while the sampler sleeps, as a board would
                samples.append(counter_sample(sampler))
            assert tcl.round_trips - before == len(samples) - 1   # one Tcl round trip per sample
            assert {s.round_trips for s in samples} == {1}        # and each sample says so
            assert tcl.state() == "running"
        finally:
            tcl.close()
    pcs = [s.pc for s in samples]
    assert samples[0].pc == image.entry      # the first halt finds the hart where --halted held it
    assert park[0] <= pcs[-1] < park[1], f"xipbench never parked in {len(pcs)} samples"
    assert all(image.function_index(pc) >= 0 for pc in pcs), [hex(pc) for pc in pcs if image.function_index(pc) < 0]
    def first(name):
        lo, hi = work[name]
        return next(i for i, pc in enumerate(pcs) if lo <= pc < hi)
    assert first("work_flash") < first("work_sram") < first("work_psram")
    in_work = [pc for pc in pcs if any(lo <= pc < hi for lo, hi in work.values())]
    assert len(in_work) >= len(pcs) // 2, (len(in_work), len(pcs))
    # The counters are read while halted beside the pc: never more hits than accesses, and moving as xipbench runs
    # (each phase clears them, so they need not grow from one sample to the next).
    assert all(s.xip_hit <= s.xip_acc for s in samples)
    assert len({s.xip_acc for s in samples}) > len(samples) // 2


def test_gdb_through_openocd_steps_and_stops_at_hardware_and_software_breakpoints(tmp_path):
    """gdb-multiarch -> OpenOCD's gdb port -> the twin: stepi (dcsr.step), hbreak (a trigger), break (an ebreak that
    enters debug mode because OpenOCD sets dcsr.ebreakm)."""
    import shutil
    image = ElfImage(XIPBENCH)
    with twin_jtag(XIPBENCH, "--quiet-uart", "--halted") as jtag_port, openocd(jtag_port, tmp_path) as session:
        args = [shutil.which("gdb-multiarch"), "-nx", "-batch", "-ex", "set confirm off",
                "-ex", f"target extended-remote 127.0.0.1:{session.gdb_port}"]
        for command in ("p/x $pc", "stepi", "p/x $pc", "hbreak work_sram", "continue", "p/x $pc", "p/x $mcause",
                        "delete", "break phase", "continue", "p/x $pc", "detach"):
            args += ["-ex", command]
        out = subprocess.run(args + [str(XIPBENCH)], capture_output=True, text=True, timeout=120)
        text = out.stdout + out.stderr
    values = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)", text, re.M)]
    # `la gp` is auipc + addi: one stepi moves 4 bytes from the entry.
    assert values[:2] == [image.entry, image.entry + 4], text
    assert "Breakpoint 1, work_sram" in text and values[2] == image.symbol("work_sram"), text
    assert values[3] == 0, text                  # no trap on the way: mcause still at its reset value
    assert "Breakpoint 2, phase" in text, text
    lo, hi = function_span(image, "phase")
    assert lo <= values[4] < hi, text


def test_openocd_target_reports_an_openocd_that_exits(tmp_path):
    with twin_jtag(AMOFAULT, "--quiet-uart") as jtag_port:
        with openocd(jtag_port, tmp_path) as session:
            tcl = open_target(session.url)
            tcl.halt()
            assert tcl.read_register("mcause") == 7
            tcl.evaluate("shutdown")         # OpenOCD exits as if someone closed it
            with pytest.raises(TargetError, match="OpenOCD closed the Tcl connection|Tcl connection failed"):
                tcl.read_register("mcause")
            tcl.close()


def test_openocd_target_refuses_a_server_that_is_not_openocd():
    """A fake server (a real OpenOCD cannot be made to answer wrongly): it replies in the Tcl RPC framing, but is not
    OpenOCD."""
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer():
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"0 SEGGER J-Link GDB Server\x1a")
        conn.recv(4096)
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(TargetError, match="expected OpenOCD's Tcl server"):
            open_target(f"openocd://127.0.0.1:{listener.getsockname()[1]}")
    finally:
        listener.close()
        thread.join(timeout=5)


def test_memory_written_through_openocd_reads_back_through_openocd_and_gdb(amofault_openocd):
    sram = rp.SRAM_BASE + 0x40000 + 1                    # unaligned, away from amofault's data and stack
    payload = bytes(range(7, 91)) * 2                     # 168 bytes: a few hundred DMI scans over remote_bitbang
    tcl = open_target(amofault_openocd.url)
    try:
        tcl.halt()
        tcl.write_memory(sram, payload)
        assert tcl.read_memory(sram, len(payload)) == payload
        with pytest.raises(TargetError, match="write_memory"):
            tcl.write_memory(0x30000000, b"\x01\x02\x03\x04")
    finally:
        tcl.close()
    gdb_port = open_target(amofault_openocd.gdb_url)
    try:
        assert gdb_port.read_memory(sram, len(payload)) == payload
    finally:
        gdb_port.close()


def _xipscope(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xipscope", *args], capture_output=True, text=True, timeout=300)


def test_xipscope_trap_gives_the_same_answer_through_openocd_its_gdb_port_and_the_twin(tmp_path):
    """amofault stopped at its trap vector (a hardware breakpoint at trap_entry, before its first instruction, so the
    registers are still the faulting ones) and decoded by `xipscope trap` through OpenOCD's Tcl port, OpenOCD's gdb
    port, and the twin's own GDB server: the same cause, place, instruction, address and explanation."""
    image = ElfImage(AMOFAULT)
    vector = image.symbol("trap_entry")
    answers = {}

    def trap(name: str, url: str) -> None:
        result = _xipscope("trap", "--target", url, "--elf", str(AMOFAULT), "--json")
        assert result.returncode == 0, (name, result.stderr)
        answers[name] = json.loads(result.stdout)

    with twin_jtag(AMOFAULT, "--quiet-uart", "--halted") as jtag_port, openocd(jtag_port, tmp_path) as session:
        tcl = OpenOcdTarget("127.0.0.1", session.tcl_port)
        try:
            tcl.command(f"bp {vector:#x} 2 hw")
            tcl.resume()
            deadline = time.monotonic() + 30
            while tcl.state() != "halted":
                assert time.monotonic() < deadline, "amofault never reached its trap vector"
                time.sleep(0.02)
            assert tcl.read_register("pc") == vector
        finally:
            tcl.close()            # OpenOCD keeps the core halted after we hang up
        trap("openocd://", session.url)
        trap("rsp:// to OpenOCD", session.gdb_url)

    with twin_gdb_server(AMOFAULT) as port:
        twin = open_target(f"rsp://127.0.0.1:{port}")
        twin.set_breakpoint(vector)
        twin.continue_until_stop(timeout=30)
        twin.remove_breakpoint(vector)
        twin.disconnect()          # hang up without detaching: the twin stays at the vector for the next client
        trap("rsp:// to the twin", f"rsp://127.0.0.1:{port}")

    first = answers["openocd://"]
    assert first["cause_code"] == 7 and first["function"].startswith("spin_lock+")
    assert first["fault_address"] == image.symbol("psram_lock") and first["fault_region"] == "psram"
    keys = ("cause_code", "cause_name", "mepc", "function", "location", "instruction", "fault_address",
            "fault_region", "explanation", "backtrace")
    for name, answer in answers.items():
        assert {k: answer[k] for k in keys} == {k: first[k] for k in keys}, name


def test_a_sample_by_debug_module_accesses_leaves_openocds_view_whole(tmp_path):
    """The sampler's Debug Module script on lrscspin (a hart spinning in spin_lock, which never touches s0): pc in
    spin_lock, mcycle between OpenOCD's readings of it before and after, SBA counters; OpenOCD still sees the hart running; and s0 (saved and put back
    around the program buffer run) and mtvec (read by OpenOCD's own program buffer, after ours wrote it) read the same
    through OpenOCD before and after."""
    image = ElfImage(REPO / "firmware" / "lrscspin.elf")
    spin = function_span(image, "spin_lock")
    with twin_jtag(REPO / "firmware" / "lrscspin.elf", "--quiet-uart") as jtag_port, \
            openocd(jtag_port, tmp_path) as session:
        tcl = open_target(session.url)
        try:
            deadline = time.monotonic() + 30     # main reaches spin_lock (a few thousand instructions; a loaded
            tcl.halt()                           # host may give the twin little time for them)
            while not spin[0] <= tcl.read_register("pc") < spin[1]:
                assert time.monotonic() < deadline, "lrscspin never reached spin_lock"
                tcl.resume()
                time.sleep(0.05)
                tcl.halt()
            before = {name: tcl.read_register(name) for name in ("s0", "mtvec", "mcycle")}
            tcl.resume()
            sampler = tcl.sampler(SampleRequest(reads=COUNTERS.reads, read_names=("counters",), cycles=True))
            assert sampler.by_debug_module and "Debug Module accesses" in sampler.description
            samples = [sampler.take() for _ in range(30)]
            assert tcl.state() == "running"          # OpenOCD never saw the hart halted
            tcl.halt()
            after = {name: tcl.read_register(name) for name in ("s0", "mtvec", "mcycle")}
            tcl.resume()
        finally:
            tcl.close()
    assert (after["s0"], after["mtvec"]) == (before["s0"], before["mtvec"]) and before["mtvec"] != 0
    assert all(spin[0] <= s.pc < spin[1] for s in samples), [hex(s.pc) for s in samples]
    assert {s.round_trips for s in samples} == {1}
    # mcycle as OpenOCD reads it before and after bounds every sample's (lrscspin leaves mcountinhibit as reset
    # leaves it, so the twin's mcycle may stand still: then all of them are that one value).
    assert all(before["mcycle"] <= s.cycles <= after["mcycle"] for s in samples), (before, after, samples[:3])
    assert all(len(s.memory[0]) == 8 for s in samples)
    hits = [int.from_bytes(s.memory[0][:4], "little") for s in samples]
    accesses = [int.from_bytes(s.memory[0][4:], "little") for s in samples]
    assert all(h <= a for h, a in zip(hits, accesses))


def test_xipscope_profile_through_openocd_takes_one_round_trip_per_sample(tmp_path):
    """xipbench profiled from its entry through OpenOCD's Tcl port (one round trip a sample) and through its gdb port:
    both see xipbench's workers and its XIP counters; the Tcl path says it used the one-round-trip sample.

    The twin is paced to 1 MHz, so what runs between two samples is the twin's time, not the host's speed (unpaced,
    on a loaded host, it ran past every worker before the gdb port's first sample). A sample through the bitbang face
    keeps the core halted 11 ms (Tcl) or 30 ms (gdb port: OpenOCD reads every register) on an idle host, so the rate is
    10/s: every period leaves the core tens of thousands of cycles to run even at three times those costs (at 100/s
    the halts filled the periods and every sample found the core where the last one left it, at its entry)."""
    image = ElfImage(XIPBENCH)
    found = {}
    for via in ("openocd", "gdb-port"):
        (tmp_path / via).mkdir()
        with twin_jtag(XIPBENCH, "--quiet-uart", "--halted", "--clock-hz", "1e6") as jtag_port, \
                openocd(jtag_port, tmp_path / via) as session:
            out = tmp_path / via / "profile"
            url = session.url if via == "openocd" else session.gdb_url
            result = _xipscope("profile", "--target", url, "--elf", str(XIPBENCH), "--samples", "30",
                               "--rate", "10", "--out", str(out))
            assert result.returncode == 0, result.stderr
        frame = read_samples(out)
        names = {image.functions[i].name for i in map(image.function_index, frame["pc"]) if i >= 0}
        found[via] = (names, json.loads((out / "meta.json").read_text())["transport"], frame)
    assert "one round trip" in found["openocd"][1] and found["gdb-port"][1].startswith("rsp")
    for via, (names, _transport, frame) in found.items():
        assert names & {"work_flash", "work_sram", "work_psram", "copy_words"}, (via, names)
        assert frame["xip_acc"].notna().all() and (frame["xip_hit"] <= frame["xip_acc"]).all(), via


def test_openocd_with_a_non_riscv_target_names_the_config_to_use(tmp_path):
    """A user who started OpenOCD with the fork's rp2350.cfg (Cortex-M33 targets) used to get "unknown register
    'zero'". Debian's OpenOCD 0.12 cannot build a cortex_m target on the twin's JTAG TAP (its DAP needs a JTAG-DP),
    so the non-RISC-V target here is OpenOCD's own `testee` type: the check is on the target type, whatever it is."""
    with twin_jtag(XIPBENCH, "--quiet-uart") as jtag_port:
        with openocd(jtag_port, tmp_path, target="target create rp2350.cm0 testee -chain-position rp2350.riscv",
                     gdb=False) as session:
            with pytest.raises(TargetError, match=r"no RISC-V target \(its targets: rp2350.cm0 \(testee\)\).*"
                                                  r"target/rp2350.cfg defaults to the Cortex-M33.*"
                                                  r"target/rp2350-riscv.cfg"):
                open_target(session.url)


def test_openocd_on_an_arm_booted_chip_says_how_to_switch_and_hart_1_needs_its_target(tmp_path):
    """rp2350.md: booted in Arm mode the DM reads allunavail; OpenOCD 0.12 leaves the target unexamined ('unknown'),
    the fork says 'unavailable'; either way openocd:// fails at connect with the remedy."""
    with twin_jtag(XIPBENCH, "--quiet-uart", "--boot-arch", "arm") as jtag_port:
        with openocd(jtag_port, tmp_path, gdb=False) as session:
            with pytest.raises(TargetError, match=r"hart 0 \(rp2350.rv0\) is unavailable .*runs its Arm cores.*"
                                                  r"picotool reboot -u -c riscv.*core=arm"):
                open_target(session.url)
            with pytest.raises(TargetError, match=r"no RISC-V target for hart 1 .*-coreid 0 and 1"):
                open_target(session.url + "?hart=1")
