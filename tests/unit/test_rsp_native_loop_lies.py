"""rsp://'s native sampling loop (rsp/sample_loop.c) stops before what it does not handle and leaves it to the Python
path: a server that answers honestly for a while, then sends console output, an error reply or a bad checksum in
the middle of a batch, gives `sample_profile` the same samples and the same error with the native loop as without.

The servers are fakes by necessity (support/lying_rsp.py's LyingServer): no real server lies on demand. Each honest
`g` and `m` reply carries the sample's number, so the samples compare one by one."""

from __future__ import annotations

import json
import re
import socket

import pandas
import pytest

from support.lying_rsp import XIPBENCH, LyingServer
from xipscope.chip.memory_map import get_memory_map
from xipscope.errors import TargetError
from xipscope.profile.sampler import sample_profile
from xipscope.rsp.packets import INTERRUPT, frame
from xipscope.targets.rsp import RspTarget

PC_BASE = 0x50000000    # the pcs the server gives: outside every function of xipbench
MAIN = 0x100003A8       # xipbench's main (firmware/xipbench.elf), where `--until main` ends a run
LIE_AT = 150        # the samples before the lie: it lands in the middle of the third native batch (64 a batch)


def lying_at(kind: str):
    """A lie for LyingServer: `g` and `m` replies numbered by sample; at sample LIE_AT, `kind`."""
    seen = {"g": 0}

    def lie(payload, sock):
        if payload == bytes((INTERRUPT,)) and seen["g"] == LIE_AT + 1 and kind == "console output":
            sock.sendall(frame(b"O" + b"hello\n".hex().encode()) + frame(b"S02"))
            return True
        if payload == b"g":
            seen["g"] += 1
            k = seen["g"]
            if k == LIE_AT + 2 and kind == "error reply":      # (the first `g` was the pipelining probe's)
                sock.sendall(frame(b"E01"))
            elif k == LIE_AT + 2 and kind == "bad checksum":
                sock.sendall(b"$" + b"00000000" * 33 + b"#00")
            else:
                pc = MAIN if k == LIE_AT + 2 and kind == "main" else PC_BASE + 4 * k
                sock.sendall(frame(b"00000000" * 32 + pc.to_bytes(4, "little").hex().encode()))
            return True
        if payload.startswith(b"m"):
            sock.sendall(frame((seen["g"] | 7 << 32).to_bytes(8, "little").hex().encode()))
            return True
        return False
    return lie


class QuickLyingServer(LyingServer):
    """Its ack and its reply go out as two writes: without TCP_NODELAY the second waits for our delayed ACK (40 ms a
    sample)."""

    def _serve(self, sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super()._serve(sock)


def profile(kind: str, tmp_path, name: str, **until):
    server = QuickLyingServer(lying_at(kind))
    error = None
    try:
        target = RspTarget("127.0.0.1", server.port, timeout=2)
        try:
            sample_profile(target, tmp_path / name, memory_map=get_memory_map("rp2350"), samples=400,
                           reply_wait="block", **until)
        except TargetError as e:
            error = str(e).replace(str(tmp_path / name), "OUT").replace(server.url, "SERVER")
        finally:
            target.close()
    finally:
        server.close()
    rows = pandas.read_parquet(tmp_path / name / "samples")
    assert (rows.halted_ns > 0).all() and rows.t_ns.is_monotonic_increasing    # each sample timed from its halt
    meta = json.loads((tmp_path / name / "meta.json").read_text())
    return error, list(zip(rows.pc, rows.xip_hit, rows.xip_acc)), meta.get("native_batch"), meta["stop_reason"]


@pytest.mark.parametrize("kind, error", [
    ("console output", None),
    ("error reply", r"'g' failed during sampling \(reply b'E01'"),
    ("bad checksum", r"a packet with a bad checksum"),
])
def test_a_lie_in_the_middle_of_a_batch_ends_as_without_the_native_loop(kind, error, tmp_path, monkeypatch):
    native_error, native, batched, _ = profile(kind, tmp_path, "native")
    monkeypatch.setenv("XIPSCOPE_NATIVE", "0")
    python_error, python, not_batched, _ = profile(kind, tmp_path, "python")
    assert batched and not not_batched
    assert native == python
    assert native_error == python_error
    if error is None:
        assert native_error is None and len(native) == 400
    else:
        assert native_error is not None
        assert re.search(error, native_error), native_error
        assert f"the {LIE_AT} samples taken before that" in native_error
        assert len(native) == LIE_AT
    # the samples are the server's numbered ones, in order (the probe's `g` was number 1)
    assert native[:3] == [(PC_BASE + 4 * k, k, 7) for k in (2, 3, 4)]


def test_until_ends_a_batch_at_the_sample_that_meets_it(tmp_path, monkeypatch):
    """--until main: the run ends at the first sample in main, in the middle of a batch; the samples that batch took
    after it are dropped and counted."""
    from xipscope.elf.symbols import load_symbols
    symbols = load_symbols(XIPBENCH)
    assert symbols.address_of("main") == MAIN
    _, native, batched, native_reason = profile("main", tmp_path, "native", until="main", symbols=symbols)
    monkeypatch.setenv("XIPSCOPE_NATIVE", "0")
    _, python, not_batched, python_reason = profile("main", tmp_path, "python", until="main", symbols=symbols)
    assert native == python
    assert len(native) == LIE_AT + 1 and native[-1][0] == MAIN
    assert native_reason == python_reason == f"reached main (pc {MAIN:#x})"
    assert batched["dropped_after_until"] == 3 * 64 - (LIE_AT + 1) and not_batched is None
