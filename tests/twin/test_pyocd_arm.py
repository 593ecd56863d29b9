"""RP2350 in Arm mode: pyOCD's own rp2350 target (its ADIv6 discovery, its Cortex-M33 core code) against the twin's
Arm core (sim/arm_core.py, a model) behind the DAP face's AHB-AP at 0x2000, and xipscope's pyocd://...?core=arm path.

The model is held against ARMv8-M and RP2350 facts: pyOCD finds a Cortex-M33 with the Security Extension through the
ROM tables; DHCSR halts and resumes; registers read through DCRSR/DCRDR equal the core's own; the XIP cache counters
count 32-bit fetch words and data reads through 8-byte lines, and code in SRAM makes no XIP accesses.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from xipscope.chip import rp2350 as rp
from xipscope.errors import CapabilityError, TargetError
from xipscope.sim.arm_core import ArmCore
from xipscope.sim.dap import TwinDapProbe
from xipscope.elf.program import ElfImage
from xipscope.targets import open_target
from xipscope.targets.pyocd import PyocdArmTarget

REPO = Path(__file__).resolve().parents[2]
ARMXIP = REPO / "firmware" / "armxip.elf"
PHASES = ("flash_spin", "sram_spin", "table_walk")
TABLE_WORDS = 8192           # armxip.S: the table table_walk sums, 32 KiB, twice the XIP cache


@pytest.fixture()
def arm_target():
    target = open_target(f"pyocd://twin:{ARMXIP}")
    yield target
    target.close()


def until(condition, what: str, safety_s: float = 120.0) -> None:
    """Wait for `condition()` to hold: progress is asserted, not a rate, so a loaded host only makes it take longer.
    The safety bound only turns a regression into a failure instead of a hang."""
    deadline = time.monotonic() + safety_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {safety_s:.0f} s"
        time.sleep(0.01)


def function_at(image: ElfImage, address: int) -> str | None:
    i = image.function_index(address)
    return image.functions[i].name if i >= 0 else None


def test_the_arm_core_model_counts_xip_accesses_as_the_cache_facts_say():
    core = ArmCore(ARMXIP)
    while int.from_bytes(core.read_memory(core.elf.symbol("rounds"), 4), "little") < 3:
        core.run_slice(20_000)
    stats = {s.name: s for s in core.function_stats()}
    # Code copied to SRAM runs without a single XIP access; the same loop in flash fetches through the cache.
    assert stats["sram_spin"].region == "sram" and stats["sram_spin"].xip_accesses == 0
    flash = stats["flash_spin"]
    assert flash.region == "flash" and flash.data_accesses == 0
    assert flash.fetch_accesses > 0.99 * flash.instructions / 2      # a 2-instruction loop of 16-bit Thumb code
    assert flash.hit_rate > 0.999                                      # after the first pass it is all in the cache
    # table_walk reads each word of a 32 KiB table once per call: one miss per 8-byte line, then a hit, so about half
    # hit (a line that survives the random eviction of a 2-way, 16 KiB cache hits on both words).
    walk = stats["table_walk"]
    calls = int.from_bytes(core.read_memory(core.elf.symbol("rounds"), 4), "little")
    assert walk.data_accesses >= calls * TABLE_WORDS
    assert 0.5 <= walk.data_hits / walk.data_accesses < 0.6
    assert walk.cycles > walk.instructions                             # misses stall
    # CTR_ACC/CTR_HIT (the counters a debugger reads) hold every XIP access and hit the model accounted.
    total = sum(s.xip_accesses for s in stats.values())
    hits = sum(s.xip_hits for s in stats.values())
    assert core.xip_ctrl.read(rp.XIP_CTRL_CTR_ACC) == total and core.xip_ctrl.read(rp.XIP_CTRL_CTR_HIT) == hits
    assert int.from_bytes(core.read_memory(core.elf.symbol("checksum"), 4), "little") == TABLE_WORDS


def test_pyocds_own_rp2350_target_discovers_a_cortex_m33_through_the_rom_tables():
    from pyocd.core.session import Session

    probe = TwinDapProbe(ArmCore(ARMXIP))
    with Session(probe, target_override="rp2350", connect_mode="attach") as session:
        soc = session.target
        assert type(soc).__name__ == "RP2350"          # pyOCD's own target class, not ours
        assert soc.dp.dpidr.idr == 0x4C013477 and soc.dp.dpidr.version == 3
        [ap] = soc.aps.values()
        assert ap.address.address == 0x2000 and ap.ap_class == 0x8 and ap.ap_type == 0x5   # AHB5-AP, core 0's
        [core] = soc.cores.values()
        assert type(core).__name__ == "CortexM_v8M" and core.name == "Cortex-M33"
        assert core.has_security_extension


def test_pyocd_steps_and_resets_the_arm_core():
    """pyOCD's own step (DHCSR.C_STEP, waiting for C_HALT to read 1 again) and reset_and_halt (DEMCR.VC_CORERESET,
    AIRCR.SYSRESETREQ): the core runs one instruction, then restarts from the vector table and stops there."""
    from pyocd.core.session import Session
    from pyocd.core.target import Target

    model = ArmCore(ARMXIP)
    image = ElfImage(ARMXIP, machine="EM_ARM")
    with Session(TwinDapProbe(model), target_override="rp2350", connect_mode="attach") as session:
        soc = session.target
        soc.halt()
        before = model.instructions
        soc.step()
        assert model.instructions == before + 1 and soc.get_state() == Target.State.HALTED
        soc.reset_and_halt()
        assert soc.get_state() == Target.State.HALTED
        assert soc.read_core_register("pc") == image.symbol("_start") & ~1
        assert soc.read_core_register("sp") == 0x20080000 and soc.read_core_register("xpsr") == 1 << 24
        soc.resume()
        until(lambda: int.from_bytes(soc.read_memory_block8(image.symbol("rounds"), 4), "little") > 0,
              "armxip completes a round after reset and resume")


def test_memory_and_registers_through_pyocds_rp2350_target(arm_target):
    t = arm_target
    assert isinstance(t, PyocdArmTarget) and t.state() == "running"     # attaching does not stop the core
    image = ElfImage(ARMXIP, machine="EM_ARM")
    # Flash holds the ELF's loadable bytes at their load addresses, read while the core runs.
    with open(ARMXIP, "rb") as f:
        for segment in ELFFile(f).iter_segments():
            if segment["p_type"] == "PT_LOAD" and segment["p_filesz"]:
                assert t.read_memory(segment["p_paddr"], segment["p_filesz"]) == segment.data()
    rounds = image.symbol("rounds")
    first = int.from_bytes(t.read_memory(rounds, 4), "little")
    until(lambda: int.from_bytes(t.read_memory(rounds, 4), "little") > first,
          "the loop goes on while we read")
    with pytest.raises(TargetError, match="while the core runs"):
        t.read_register("pc")

    t.halt()
    assert t.state() == "halted"
    registers = t.read_registers()
    core = t.probe.machine                                              # the model's own view of its core
    for name in ("r0", "r1", "r2", "r3", "sp", "lr", "pc", "xpsr", "msp"):
        assert registers[name] == core.read_register(name), name
    assert function_at(image, registers["pc"]) in PHASES + ("main", "__sram_spin_veneer")
    assert registers["sp"] == registers["msp"] == 0x20080000           # MSP from the vector table; no pushes
    assert registers["xpsr"] >> 24 & 1                                 # the Thumb bit
    assert t.read_register("pc") == registers["pc"]
    halted_at = int.from_bytes(t.read_memory(rounds, 4), "little")
    time.sleep(0.1)
    assert int.from_bytes(t.read_memory(rounds, 4), "little") == halted_at     # halted means halted

    scratch = rp.SRAM_BASE + 0x40001                                    # unaligned at both ends
    payload = bytes(range(256)) * 3
    t.write_memory(scratch, payload)
    assert t.read_memory(scratch, len(payload)) == payload
    t.resume()
    assert t.state() == "running"


def test_profile_in_arm_mode_weighs_samples_by_dwt_cyccnt(tmp_path):
    """xipscope profile through pyOCD's rp2350 target: samples land in armxip's phases, and weighted by DWT_CYCCNT
    their shares match the model's own cycle counts (host time per instruction differs between phases, so unweighted
    shares would not)."""
    from xipscope.profile.analysis import load_profile
    from xipscope.profile.store import read_meta

    out = tmp_path / "arm"
    result = subprocess.run([sys.executable, "-m", "xipscope", "profile", "--target", f"pyocd://twin:{ARMXIP}",
                             "--elf", str(ARMXIP), "--rate", "200", "--samples", "600", "--cycles", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    meta = read_meta(out)
    # A sample count, not a duration: a loaded host takes fewer samples a second, and as many in the end.
    assert meta["samples"] == 600 and "DWT_CYCCNT" in meta["mcycle"] and meta["error"] is None
    frame = load_profile(out, ARMXIP).samples
    assert set(frame["function"]) <= set(PHASES) | {"main", "__sram_spin_veneer", "_start"}
    weights = frame["weight"]
    shares = {name: weights[frame["function"] == name].sum() / weights.sum() for name in PHASES}
    # The model's cycles per round: table_walk about 60% (its misses stall), the two spin loops about 20% each.
    core = ArmCore(ARMXIP)
    while int.from_bytes(core.read_memory(core.elf.symbol("rounds"), 4), "little") < 4:
        core.run_slice(50_000)
    truth = {s.name: s.cycles for s in core.function_stats() if s.name in PHASES}
    expected = {name: cycles / sum(truth.values()) for name, cycles in truth.items()}
    distance = 0.5 * sum(abs(shares[n] - expected[n]) for n in PHASES)
    assert distance < 0.1, (shares, expected)
    # The XIP counters were read with every sample: they only grow here (no saturation in a short run).
    assert (np.diff(frame["xip_acc"].to_numpy()) >= 0).all() and (frame["xip_hit"] <= frame["xip_acc"]).all()


@pytest.mark.parametrize("command", [
    ["trap", "--elf", str(ARMXIP)],
    ["doctor"],
    ["snapshot", "--out", "{tmp}/snap"],
    ["profile", "--elf", str(ARMXIP), "--stacks", "--samples", "5", "--out", "{tmp}/prof"],
])
def test_riscv_only_commands_say_so_in_arm_mode(command, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    result = subprocess.run([sys.executable, "-m", "xipscope", args[0], "--target", f"pyocd://twin:{ARMXIP}",
                             *args[1:]], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "is for the RP2350's RISC-V cores" in result.stderr and "In Arm mode xipscope reads memory" in \
        result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_firmware_decides_the_twins_core():
    with pytest.raises(TargetError, match="on its arm core, the architecture of the ELF"):
        open_target(f"pyocd://twin:{ARMXIP}?core=riscv")
    with pytest.raises(TargetError, match="core=mips is not known"):
        open_target(f"pyocd://twin:{ARMXIP}?core=mips")
    target = open_target(f"pyocd://twin:{ARMXIP}?core=arm")
    try:
        with pytest.raises(CapabilityError, match="trap decoding"):
            from xipscope.trap import decode_trap
            decode_trap(target, None)
    finally:
        target.close()


def test_a_bus_fault_is_a_clear_error_and_the_session_survives(arm_target):
    with pytest.raises(TargetError, match=r"reading 4 bytes at 0x30000000 failed"):
        arm_target.read_memory(0x30000000, 4)
    assert arm_target.read_memory(rp.XIP_BASE, 4) == ArmCore(ARMXIP).read_memory(rp.XIP_BASE, 4)


def test_dump_reads_the_vector_table_in_arm_mode():
    result = subprocess.run([sys.executable, "-m", "xipscope", "dump", "--target", f"pyocd://twin:{ARMXIP}",
                             "0x10000000", "8"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # MSP = __stack_top (0x20080000), then the reset handler _start with the Thumb bit.
    start = ElfImage(ARMXIP, machine="EM_ARM").symbol("_start")
    assert result.stdout.split()[1:9] == [f"{b:02x}" for b in (0x20080000).to_bytes(4, "little")
                                          + (start | 1).to_bytes(4, "little")]
