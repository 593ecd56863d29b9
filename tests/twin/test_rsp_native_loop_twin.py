"""rsp://'s native sampling loop (rsp/sample_loop.c) takes the samples its Python path takes: the twin's GDB server
(a model) running xipbench is sampled back to back by the native loop through a recording proxy, and the same replies,
served again, by the Python path; pc and the XIP counters agree sample by sample."""

from __future__ import annotations

from support.rsp_replay import native_and_python_samples
from xipscope.chip.memory_map import get_memory_map
from xipscope.profile.sampler import counter_address
from xipscope.targets.base import SampleRequest


def test_native_batches_match_the_python_path_on_the_twins_server(sim_server, monkeypatch):
    counters = counter_address(get_memory_map("rp2350"))
    request = SampleRequest(registers=("pc",), reads=((counters, 8),), read_names=("counters",), back_to_back=True,
                            reply_wait="block")
    native, python = native_and_python_samples(sim_server, request, 600, monkeypatch)
    assert native == python
    assert len(native) == 600
    assert len({pc for pc, _ in native}) > 1            # the core ran between samples: not one value compared
    assert len({memory for _, memory in native}) > 1    # the counters moved
