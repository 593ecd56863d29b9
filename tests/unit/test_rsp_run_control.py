"""The run control trap decoding's tests need from rsp://: writing registers, hardware breakpoints and continuing until
a stop. The real thing runs in test_trap_qemu.py and test_trap_twin.py; here scripted servers (fakes, on purpose)
refuse or fail each request, which QEMU can't be made to do on demand."""

from __future__ import annotations

import pytest

from test_rsp_client import BASIC, scripted_target
from xipscope.errors import CapabilityError, TargetError

RUN = {**BASIC, b"Z1": b"OK", b"z1": b"OK", b"P": b"OK", b"c": b"T05thread:01;"}


def test_breakpoint_write_register_and_continue_until_stop():
    seen = []
    with scripted_target(RUN, fault=lambda conn, payload: seen.append(payload) and False) as target:
        target.set_breakpoint(0x80001C74)
        target.write_register("pc", 0x80131234)   # no target description: the RISC-V `g` layout, pc is 32
        stop = target.continue_until_stop(timeout=2)
        assert stop.signal == 5 and target.state() == "halted"
        target.remove_breakpoint(0x80001C74)
    assert b"Z1,80001c74,4" in seen and b"z1,80001c74,4" in seen and b"P20=34121380" in seen and b"c" in seen


def test_unsupported_requests_are_capability_errors():
    with scripted_target(BASIC) as target:
        with pytest.raises(CapabilityError, match=r"does not support hardware breakpoints \('Z1'\)"):
            target.set_breakpoint(0x1000)
        with pytest.raises(CapabilityError, match=r"writing single registers \('P'\)"):
            target.write_register("a0", 1)


def test_refused_requests_are_target_errors():
    with scripted_target({**BASIC, b"Z1": b"E22", b"P": b"E01"}) as target:
        with pytest.raises(TargetError, match=r"breakpoint Z1 at 0x1000 failed with b'E22'"):
            target.set_breakpoint(0x1000)
        with pytest.raises(TargetError, match=r"writing a0 \(register 10\) failed"):
            target.write_register("a0", 1)


def test_no_stop_within_the_timeout():
    silent_on_c = lambda conn, payload: payload == b"c" and not conn.recv(1)  # noqa: E731
    with scripted_target(BASIC, silent_on_c, timeout=0.5) as target:
        with pytest.raises(TargetError, match="no reply within 0.3 s while waiting for a stop reply"):
            target.continue_until_stop(timeout=0.3)
