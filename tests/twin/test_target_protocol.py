"""The Target protocol's own promises, on real transports: close twice, `with`, write_memory, capabilities checked by
name with an error naming the transport, and a batched sample that says what it cost (round trips, transfers)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from xipscope.chip import rp2350 as rp
from xipscope.errors import CapabilityError
from xipscope.sim.target import SimTarget
from xipscope.targets import open_target
from xipscope.targets.base import (MODEL, PACING, RUN_CONTROL, SAMPLE, ProtocolSampler, SampleRequest, Target,
                                  open_sampler, require)

REPO = Path(__file__).resolve().parents[2]
XIPBENCH = REPO / "firmware" / "xipbench.elf"
COUNTERS = SampleRequest(reads=((rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT, 8),), read_names=("counters",))
SCRATCH = 0x20070000      # SRAM xipbench leaves alone (its data and stack sit low in SRAM)


def test_the_twin_in_process_closes_twice_and_as_a_context_manager():
    with open_target(f"sim://{XIPBENCH}") as target:
        assert isinstance(target, Target) and {MODEL, PACING} <= target.capabilities
        target.write_memory(SCRATCH, b"\x11\x22\x33\x44\x55")
        assert target.read_memory(SCRATCH, 5) == b"\x11\x22\x33\x44\x55"
        target.resume()
        assert target.state() == "running"
    assert target.state() == "halted"       # `with` closed it: the run thread is stopped
    target.close()                          # a second close does nothing
    assert target.state() == "halted"


def test_a_missing_capability_is_an_error_naming_the_transport(tmp_path):
    target = SimTarget(str(XIPBENCH))
    try:
        with pytest.raises(CapabilityError, match=r"sim://.*: the test needs a batched sample, which the sim:// "
                                                  r"transport does not offer \(it offers "):
            require(target, SAMPLE, "the test")
    finally:
        target.close()
    from xipscope.snapshot.take import take_snapshot
    from xipscope.chip.memory_map import get_memory_map
    with SimTarget(str(XIPBENCH)) as live:
        take_snapshot(live, tmp_path / "s", get_memory_map("rp2350"), sizes={"psram": 4096})
    with open_target(f"snapshot://{tmp_path / 's'}") as saved:
        assert RUN_CONTROL not in saved.capabilities
        with pytest.raises(CapabilityError, match=r"sampling \(halt, read, resume\) needs halt, resume and run "
                                                  r"state, which the snapshot:// transport does not offer"):
            open_sampler(saved, COUNTERS)
        with pytest.raises(CapabilityError, match="writing 4 bytes at 0x20070000 needs writing memory, which the "
                                                  "snapshot:// transport does not offer"):
            saved.write_memory(SCRATCH, b"abcd")


def test_the_protocol_sampler_counts_its_calls_on_the_in_process_twin():
    with SimTarget(str(XIPBENCH)) as target:
        target.resume()
        sampler = open_sampler(target, SampleRequest(reads=COUNTERS.reads, read_names=("counters",), cycles=True))
        assert isinstance(sampler, ProtocolSampler)
        assert sampler.description == "sim: halt, read pc, mcycle, counters, resume through the Target protocol"
        samples = [sampler.take() for _ in range(5)]
        assert target.state() == "running"
    # halt, pc, mcycle, the counters, resume: five calls, each awaited
    assert {(s.round_trips, s.transfers) for s in samples} == {(5, 5)}
    assert all(s.cycles is not None for s in samples)
    assert [s.cycles for s in samples] == sorted(s.cycles for s in samples)     # mcycle moves on between samples
    for s in samples:
        hit, acc = struct.unpack("<II", s.memory[0])
        assert hit <= acc


@pytest.mark.parametrize("pipeline, round_trips", [(None, 1), (False, 3)], ids=["pipelined", "waiting"])
def test_an_rsp_sample_says_what_it_cost(sim_server, pipeline, round_trips):
    """Against the twin's GDB server (no-ack mode): pipelined, interrupt + g + m + c go out in one write and the three
    replies come back: one round trip; waiting, the stop reply, g's and m's are each awaited: three. Four transfers
    (the interrupt, g, m, c) either way."""
    with open_target(f"rsp://127.0.0.1:{sim_server}") as target:
        target.write_memory(SCRATCH, bytes(range(200)) * 3)       # several `M` packets
        assert target.read_memory(SCRATCH, 600) == bytes(range(200)) * 3
        target.resume()
        request = SampleRequest(reads=COUNTERS.reads, read_names=("counters",), pipeline=pipeline, reply_wait="block")
        sampler = open_sampler(target, request)
        assert sampler.description.startswith("rsp pipelined" if pipeline is None else "rsp waiting")
        samples = [sampler.take() for _ in range(20)]
        assert target.state() == "running"
        assert sampler.details() == {"reply_wait": {"replies": "blocked on", "chosen_by": "request",
                                                    "us_per_sample": None, "checks": None}}
    assert {(s.round_trips, s.transfers) for s in samples} == {(round_trips, 4)}
    pcs = [s.pc for s in samples]
    assert all(0x10000000 <= pc < 0x20082000 for pc in pcs), [hex(pc) for pc in pcs]
    assert all(len(s.memory[0]) == 8 for s in samples)
