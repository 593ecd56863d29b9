"""rsp://'s native sampling loop (rsp/sample_loop.c) against QEMU's gdbstub (ack mode, `T02thread:01;` stop replies):
the kernel at its panic sampled back to back by the native loop through a recording proxy, and the same replies, served
again, by the Python path; pc and an 8-byte read of jiffies agree sample by sample."""

from __future__ import annotations

from support.rsp_replay import native_and_python_samples
from xipscope.elf.symbols import load_symbols
from xipscope.targets.base import SampleRequest


def test_native_batches_match_the_python_path_on_qemu(dwarf_qemu, monkeypatch):
    jiffies = load_symbols(dwarf_qemu.build.vmlinux).address_of("jiffies_64")
    request = SampleRequest(registers=("pc",), reads=((jiffies, 8),), read_names=("jiffies",), back_to_back=True,
                            reply_wait="block")
    native, python = native_and_python_samples(dwarf_qemu.port, request, 2000, monkeypatch)
    assert native == python
    assert len(native) == 2000
    assert len({pc for pc, _ in native}) > 1
