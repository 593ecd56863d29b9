"""pyocd://...?core=arm's sample in one probe round trip (targets/pyocd.py _ArmSampler), against the twin's Arm core (a
model, sim/arm_core.py) behind the DAP face, with pyOCD's own API (read_core_register, read32, get_state) as the
reference for every value, and the counting probe (targets/counting_probe.py) counting the round trips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xipscope.chip import armv8m
from xipscope.chip import rp2350 as rp
from xipscope.errors import TargetError
from xipscope.sim.arm_core import ArmCore
from xipscope.sim.dap import TwinDapProbe
from xipscope.elf.program import ElfImage
from xipscope.targets.base import SampleRequest
from xipscope.targets.counting_probe import CountingProbe
from xipscope.targets.pyocd import PyocdArmTarget

REPO = Path(__file__).resolve().parents[2]
ARMXIP = REPO / "firmware" / "armxip.elf"
CODE = ("flash_spin", "sram_spin", "table_walk", "main", "__sram_spin_veneer")
COUNTERS = rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT


def counters_request(**kw) -> SampleRequest:
    return SampleRequest(reads=((COUNTERS, 8),), read_names=("counters",), **kw)


def word(data: bytes, i: int) -> int:
    return int.from_bytes(data[4 * i:4 * i + 4], "little")


@pytest.fixture()
def twin():
    """open_twin(**ArmCore options) -> (PyocdArmTarget through the counting probe on the DAP face, the model)."""
    def open_twin(**options):
        model = ArmCore(ARMXIP, **options)
        target = PyocdArmTarget(CountingProbe(TwinDapProbe(model)))
        opened.append(target)
        return target, model
    opened = []
    yield open_twin
    for target in opened:
        target.close()


def function_at(image: ElfImage, address: int) -> str | None:
    i = image.function_index(address)
    return image.functions[i].name if i >= 0 else None


def test_a_halting_sample_is_one_round_trip_and_pyocds_own_reads_agree(twin):
    from pyocd.core.target import Target

    target, model = twin()
    soc = target.soc
    held = target.sampler(counters_request(cycles=True, resume=False))      # the core stays halted after it
    assert "halt, pc, DWT_CYCCNT, counters in one round trip" in held.description
    sample = held.take()
    assert sample.round_trips == 1
    assert soc.get_state() == Target.State.HALTED
    assert sample.pc == soc.read_core_register("pc") == model.read_register("pc")
    assert function_at(model.elf, sample.pc) in CODE
    hit, acc = word(sample.memory[0], 0), word(sample.memory[0], 1)
    assert (hit, acc) == (soc.read32(COUNTERS), soc.read32(COUNTERS + 4)) and 0 < hit <= acc
    assert sample.cycles == soc.read32(armv8m.DWT_CYCCNT)          # DWT_CYCCNT stands still while halted
    target.resume()

    sampler = target.sampler(counters_request())
    before, entries = target.probe_counts(), model.debug_entries
    previous_acc = acc
    for _ in range(50):
        sample = sampler.take()
        assert sample.round_trips == 1
        assert not model.halted                                    # resumed in the same batch
        assert function_at(model.elf, sample.pc) in CODE
        assert word(sample.memory[0], 1) >= previous_acc         # CTR_ACC only grows
        previous_acc = word(sample.memory[0], 1)
    assert (target.probe_counts() - before).round_trips == 50
    assert model.debug_entries == entries + 50                    # one halt a sample
    # The resume clears the debug-cause bits, as pyOCD's own resume does: a later halt's DFSR says only that halt.
    assert soc.read32(armv8m.DFSR) == 0
    assert sampler.details()["arm_sample"] == {"pc_from": "DCRSR/DCRDR at a halt", "batches_retried": 0,
                                               "pcsr_no_sample": 0}


def test_an_incomplete_register_transfer_is_retried_and_counted(twin):
    """S_REGRDY clear after the DCRSR write is injected (a model fault: the twin's transfers complete at once, a real
    core's only usually do). pyOCD's own read sees it too; the sample is taken again, in a second round trip."""
    from pyocd.core import exceptions

    target, model = twin()
    target.halt()
    model.slow_register_transfers = 1
    with pytest.raises(exceptions.CoreRegisterAccessError):
        target.soc.read_core_register("pc")
    target.resume()

    held = target.sampler(counters_request(resume=False))
    model.slow_register_transfers = 1
    sample = held.take()
    assert sample.round_trips == 2 and held.details()["arm_sample"]["batches_retried"] == 1
    assert sample.pc == target.soc.read_core_register("pc") == model.read_register("pc")
    target.resume()

    sampler = target.sampler(counters_request())
    model.slow_register_transfers = 100                             # never completes: the sampler gives up, saying so
    with pytest.raises(TargetError, match=r"expected the core halted and its register transfers done .* found DHCSR "
                                          r"0x\w+ after the halt and 0x\w+ after the DCRSR writes, 4 samples in a row"):
        sampler.take()
    assert sampler.details()["arm_sample"]["batches_retried"] == 4
    assert not model.halted                                         # each attempt resumed the core


def test_a_bus_fault_in_the_batch_is_a_clear_error_and_the_core_runs_on(twin):
    """A fault ends the probe's batch (the twin's DAP face, as a CMSIS-DAP probe's transfer does), resume included."""
    target, model = twin()
    sampler = target.sampler(SampleRequest(reads=((0x30000000, 4),)))
    with pytest.raises(TargetError, match=r"a sample's batch of AHB-AP transfers failed in pyOCD: .*0x30000000"):
        sampler.take()
    assert target.state() == "running" and not model.halted
    assert target.sampler(counters_request()).take().round_trips == 1


def test_with_dwt_pcsr_the_sample_does_not_halt(twin):
    """The twin's DWT_PCSR (an option, off by default): read non-zero, so pc comes from it without halting (OpenOCD's
    rule for Cortex-M); pyOCD's own reads show what the sampler relies on: DEMCR.TRCENA set, PCSR all ones when
    halted."""
    from pyocd.core.target import Target

    target, model = twin(pcsr=True)
    sampler = target.sampler(counters_request(cycles=True))
    assert "from DWT_PCSR without halting, in one round trip" in sampler.description
    assert target.soc.read32(armv8m.DEMCR) & armv8m.DEMCR_TRCENA
    entries, before, cycles = model.debug_entries, target.probe_counts(), 0
    for _ in range(50):
        sample = sampler.take()
        assert sample.round_trips == 1 and function_at(model.elf, sample.pc) in CODE and sample.pc % 2 == 0
        assert word(sample.memory[0], 0) <= word(sample.memory[0], 1) and sample.cycles >= cycles
        cycles = sample.cycles
    assert model.debug_entries == entries                           # not one halt
    assert (target.probe_counts() - before).round_trips == 50
    assert sampler.details()["arm_sample"]["pc_from"] == "DWT_PCSR"

    target.halt()
    assert target.soc.get_state() == Target.State.HALTED
    assert target.soc.read32(armv8m.DWT_PCSR) == armv8m.PCSR_NO_SAMPLE
    target.resume()
    # A sample that leaves the core halted still halts for it.
    assert "halt, pc" in target.sampler(counters_request(resume=False)).description


def test_without_dwt_pcsr_the_sample_halts(twin):
    target, model = twin()                                          # the twin's default: no PCSR
    assert target.soc.read32(armv8m.DWT_PCSR) == 0
    sampler = target.sampler(counters_request())
    assert "halt, pc, counters, resume in one round trip" in sampler.description
    entries = model.debug_entries
    assert sampler.take().round_trips == 1 and model.debug_entries == entries + 1
